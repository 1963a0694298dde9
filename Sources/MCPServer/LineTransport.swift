import Foundation
import Logging
import MCP
import Sandbox

/// Newline-delimited JSON-RPC over two file descriptors, with blocking reads on a thread of its own.
/// The SDK's StdioTransport polls a non-blocking stdin and sleeps 10 ms whenever it is empty, which
/// put a 10 ms floor under every call; this one wakes the moment a byte arrives.
public actor LineTransport: Transport {
    public nonisolated let logger: Logger
    private let input: Int32
    private let output: Int32
    private let stream: AsyncThrowingStream<Data, any Error>
    private let continuation: AsyncThrowingStream<Data, any Error>.Continuation
    private var reader: Thread?

    /// - Parameters:
    ///   - input: where requests arrive (stdin for `toolhost serve`).
    ///   - output: where responses go; nothing else may write to it.
    public init(input: Int32, output: Int32, logger: Logger) {
        self.input = input
        self.output = output
        self.logger = logger
        (stream, continuation) = AsyncThrowingStream.makeStream(of: Data.self)
    }

    public func connect() async throws {
        guard reader == nil else { return }
        let input = input, continuation = continuation, logger = logger
        let thread = Thread { Self.readLines(from: input, into: continuation, logger: logger) }
        thread.name = "toolhost-mcp-reader"
        reader = thread
        thread.start()
    }

    public func disconnect() async {
        continuation.finish()
    }

    public func send(_ data: Data) async throws {
        var message = data
        message.append(0x0A)
        let failure = message.withUnsafeBytes { Descriptor.writeAll(output, $0) }
        if failure != 0 { throw MCPError.transportError(POSIXError(POSIXErrorCode(rawValue: failure) ?? .EIO)) }
    }

    public func receive() -> AsyncThrowingStream<Data, any Error> {
        stream
    }

    private static func readLines(
        from fd: Int32, into continuation: AsyncThrowingStream<Data, any Error>.Continuation, logger: Logger
    ) {
        var pending = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                if n < 0 { logger.error("reading requests failed: \(String(cString: strerror(errno)))") }
                break
            }
            pending.append(contentsOf: buffer[..<n])
            while let newline = pending.firstIndex(of: 0x0A) {
                let line = pending[pending.startIndex..<newline]
                pending = Data(pending[(newline + 1)...])
                if !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continuation.yield(Data(line)) }
            }
        }
        continuation.finish()
    }
}
