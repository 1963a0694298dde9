import Foundation

/// The forms a secret takes in bytes a server or a file hands back: the value itself, its hex
/// (both cases), its percent-encoding (of all but RFC 3986's unreserved bytes, or of all but
/// letters and digits; either case), and its base64 (standard and URL-safe) at each of the three
/// alignments it can have inside a longer run (an echoed `Authorization: Basic` header holds
/// base64 of `user:token`, where the token starts mid-group). For a base64 form only the
/// characters that the secret's own bytes decide are kept.
public enum SecretForms {
    /// Each form of `value`; forms shorter than 8 characters are left out (they would match noise).
    public static func of(_ value: String) -> [String] {
        forms(Array(value.utf8)).map { String(decoding: $0, as: UTF8.self) }.filter { $0.utf8.count >= 8 }
    }

    /// Each form of `real` beside the same form of `dummy` (which must be as long as `real`), of
    /// equal length, so replacing one with the other never changes a body's length.
    static func pairs(real: String, dummy: String) -> [(find: [UInt8], replace: [UInt8])] {
        let found = forms(Array(real.utf8)), replacements = forms(Array(dummy.utf8))
        var pairs: [(find: [UInt8], replace: [UInt8])] = []
        for (find, replace) in zip(found, replacements) where find.count >= 8 && find != replace {
            guard !pairs.contains(where: { $0.find == find }) else { continue }
            // Percent-encoding may lengthen the real value and not the dummy: pad to the same length.
            let padded = replace.count >= find.count ? Array(replace.prefix(find.count)) : replace + Array(repeating: UInt8(ascii: "x"), count: find.count - replace.count)
            pairs.append((find, padded))
        }
        return pairs.sorted { $0.find.count > $1.find.count }
    }

    /// The forms in a fixed order, so that a real value's and a dummy's line up.
    private static func forms(_ bytes: [UInt8]) -> [[UInt8]] {
        var result: [[UInt8]] = [bytes]
        result.append(Array(bytes.map { String(format: "%02x", $0) }.joined().utf8))
        result.append(Array(bytes.map { String(format: "%02X", $0) }.joined().utf8))
        // RFC 3986's unreserved set kept, or only letters and digits (as many encoders do).
        for keep in ["-._~", ""] {
            result.append(percentEncoded(bytes, upper: true, keeping: keep))
            result.append(percentEncoded(bytes, upper: false, keeping: keep))
        }
        for alignment in 0..<3 {
            let encoded = Array(Data(Array(repeating: 0, count: alignment) + bytes).base64EncodedString().utf8)
            // Characters 0..<skip carry bits of the bytes before; those from `end` on, bits after.
            let skip = (alignment * 8 + 5) / 6
            let end = (alignment + bytes.count) * 8 / 6
            let slice = skip < end ? Array(encoded[skip..<end]) : []
            result.append(slice)
            result.append(slice.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: "-") : $0 == UInt8(ascii: "/") ? UInt8(ascii: "_") : $0 })
        }
        return result
    }

    private static func percentEncoded(_ bytes: [UInt8], upper: Bool, keeping extra: String) -> [UInt8] {
        var out: [UInt8] = []
        for byte in bytes {
            let unreserved = (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || extra.utf8.contains(byte)
            if unreserved { out.append(byte) } else { out += Array(String(format: upper ? "%%%02X" : "%%%02x", byte).utf8) }
        }
        return out
    }
}

/// Replaces each secret form in a stream of bytes with the dummy's form of the same length, across
/// the boundaries of the pieces it is fed.
struct SecretScrubber {
    private let pairs: [(find: [UInt8], replace: [UInt8])]
    private var firstBytes = [Bool](repeating: false, count: 256)
    private let keep: Int
    private var pending: [UInt8] = []
    /// How many forms were replaced so far.
    private(set) var replaced = 0

    init(pairs: [(find: [UInt8], replace: [UInt8])]) {
        self.pairs = pairs
        for pair in pairs { firstBytes[Int(pair.find[0])] = true }
        keep = max(0, (pairs.map(\.find.count).max() ?? 0) - 1)
    }

    var isEmpty: Bool { pairs.isEmpty }

    /// The bytes that are safe to pass on; up to the longest form less one stay behind.
    mutating func feed(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        guard !pairs.isEmpty else { return Array(bytes) }
        pending += bytes
        scrub(from: 0)
        let ready = max(0, pending.count - keep)
        defer { pending.removeFirst(ready) }
        return Array(pending[..<ready])
    }

    /// What is left, at the end of the stream.
    mutating func finish() -> [UInt8] {
        defer { pending = [] }
        return pending
    }

    private mutating func scrub(from start: Int) {
        var index = start
        while index < pending.count {
            if firstBytes[Int(pending[index])],
                let pair = pairs.first(where: { index + $0.find.count <= pending.count && pending[index..<(index + $0.find.count)].elementsEqual($0.find) })
            {
                pending.replaceSubrange(index..<(index + pair.find.count), with: pair.replace)
                replaced += 1
                index += pair.find.count
            } else {
                index += 1
            }
        }
    }
}
