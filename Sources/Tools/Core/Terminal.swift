/// Turns raw program output into text a model can read: lossy UTF-8, ANSI escape sequences removed.
enum Terminal {
    static func clean(_ bytes: [UInt8]) -> String {
        var kept: [UInt8] = []
        kept.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x1B, index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "[") {
                // CSI: ESC [ parameters… final byte in 0x40-0x7E.
                index += 2
                while index < bytes.count, !(0x40...0x7E).contains(bytes[index]) { index += 1 }
                index += 1
                continue
            }
            kept.append(byte)
            index += 1
        }
        return String(decoding: kept, as: UTF8.self)
    }
}

/// "1 line", "2 lines".
func counted(_ count: Int, _ noun: String) -> String {
    "\(count) \(noun)\(count == 1 ? "" : "s")"
}
