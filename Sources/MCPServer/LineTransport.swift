public import Foundation
import SystemPackage

/// Newline-delimited JSON-RPC over two descriptors. Reading blocks on a thread of its own (the
/// SDK's stdio transport polled every 10 ms) and looks at each byte once; writes are whole
/// lines, one at a time.
public enum LineTransport {
    /// The lines read from `fd` until end of file, blank lines skipped.
    public static func lines(from fd: Int32, onError: @escaping @Sendable (String) -> Void = { _ in }) -> AsyncStream<Data> {
        let (stream, continuation) = AsyncStream.makeStream(of: Data.self)
        let thread = Thread {
            split(reading: fd, onError: onError) { continuation.yield($0) }
            continuation.finish()
        }
        thread.name = "toolhost-mcp-reader"
        thread.start()
        return stream
    }

    /// Reads to end of file, handing over each complete line. The scan resumes where the last
    /// one stopped (memchr), so a 30 MB message costs what its bytes cost. A line that starts the
    /// buffer is handed over as a slice of it, not copied (a 20 MB write_file was three copies
    /// of its message), and what follows the last line read is moved to a fresh buffer: at
    /// most one read's worth, so the whole stays linear.
    static func split(reading fd: Int32, onError: (String) -> Void, line: (Data) -> Void) {
        var pending = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                if n < 0 { onError("reading requests failed: \(String(cString: strerror(errno)))") }
                break
            }
            var scan = pending.count
            buffer.withUnsafeBytes { pending.append($0.baseAddress!.assumingMemoryBound(to: UInt8.self), count: n) }
            var start = 0
            while let newline = pending.withUnsafeBytes({ raw in
                memchr(raw.baseAddress! + scan, 0x0A, raw.count - scan).map { UnsafeRawPointer($0) - raw.baseAddress! }
            }) {
                let text = pending[start..<newline]
                if !text.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { line(start == 0 ? text : Data(text)) }
                start = newline + 1
                scan = start
            }
            if start > 0 { pending = Data(pending[start...]) }
        }
    }
}

/// Writes whole lines to a descriptor, one message at a time.
public actor LineWriter {
    private let fd: Int32
    private var failed = false

    public init(fd: Int32) { self.fd = fd }

    /// Writes the message and a newline; after the reader has gone (EPIPE) later writes are dropped.
    public func write(_ message: Data) {
        guard !failed else { return }
        var line = message
        line.append(0x0A)
        failed = (try? FileDescriptor(rawValue: fd).writeAll(line)) == nil
    }
}
