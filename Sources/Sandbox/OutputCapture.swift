import Foundation

/// Keeps the head and tail of a stream within a cap; once the cap is exceeded, everything so far
/// and everything after goes to a spill file, so memory stays bounded. The spill file is the
/// host's disk, outside every sandbox limit, so it stops at `spillLimit` bytes with a line saying
/// where it was cut; the head and tail still hold the output's true ends.
struct OutputCapture {
    static var spillLimit: Int { ProcessOutcome.spillLimit }
    let cap: OutputCap
    let spillPath: String?
    private(set) var head: [UInt8] = []
    private var ring: [UInt8] = []
    private var ringStart = 0
    private(set) var total = 0
    private var spill: FileHandle?
    private var spilled = 0
    private var pending: [UInt8] = []  // everything while it still fits the cap

    init(cap: OutputCap, spillPath: String?) {
        self.cap = cap
        self.spillPath = spillPath
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        total += bytes.count
        var rest = bytes[...]
        if head.count < cap.head {
            let take = min(cap.head - head.count, rest.count)
            head.append(contentsOf: rest.prefix(take))
            rest = rest.dropFirst(take)
        }
        appendTail(rest)
        if spill != nil {
            writeSpill(bytes)
        } else if spillPath == nil {
            return  // nowhere to save it: no second copy
        } else if total <= cap.head + cap.tail {
            pending.append(contentsOf: bytes)
        } else {
            openSpill(with: bytes)
        }
    }

    private mutating func appendTail(_ bytes: Slice<UnsafeRawBufferPointer>) {
        guard cap.tail > 0, !bytes.isEmpty else { return }
        for byte in bytes.suffix(cap.tail) {
            if ring.count < cap.tail {
                ring.append(byte)
            } else {
                ring[ringStart] = byte
                ringStart = (ringStart + 1) % cap.tail
            }
        }
    }

    private mutating func openSpill(with bytes: UnsafeRawBufferPointer) {
        guard let spillPath else { return }
        let url = URL(fileURLWithPath: spillPath)
        try? FileManager.default.createDirectory(
            at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: spillPath, contents: Data(pending)),
            let handle = FileHandle(forWritingAtPath: spillPath)
        else { return }
        handle.seekToEndOfFile()
        spilled = pending.count
        pending = []
        spill = handle
        writeSpill(bytes)
    }

    private mutating func writeSpill(_ bytes: UnsafeRawBufferPointer) {
        guard let spill, spilled < Self.spillLimit else { return }
        let room = Self.spillLimit - spilled
        try? spill.write(contentsOf: Data(bytes.prefix(room)))
        spilled += min(room, bytes.count)
        if spilled >= Self.spillLimit {
            try? spill.write(contentsOf: Data("\n[toolhost: the saved output stops here, at its \(Self.spillLimit >> 20) MiB cap; the command wrote more]\n".utf8))
        }
    }

    /// The bytes after the head, in order: all of them when the output fit, else the last `cap.tail`.
    var tail: [UInt8] {
        let ordered = Array(ring[ringStart...] + ring[..<ringStart])
        let afterHead = total - head.count
        return Array(ordered.suffix(afterHead))
    }

    mutating func finish() {
        try? spill?.close()
        spill = nil
    }
}
