import Foundation
public import Logging
public import Tools

/// Serves the registry's tools over MCP on stdio: one session, one connection.
public struct ToolServer: Sendable {
    public let registry: ToolRegistry
    public let session: Session
    public let version: String
    let logger: Logger

    public init(registry: ToolRegistry, session: Session, version: String, logger: Logger) {
        self.registry = registry
        self.session = session
        self.version = version
        self.logger = logger
    }

    /// Serves MCP on the given descriptors until the client closes its end; requests already
    /// received are answered before this returns, and then the session is closed.
    public func serve(input: Int32, output: Int32) async {
        let connection = MCPConnection(registry: registry, session: session, version: version, logger: logger)
        let writer = LineWriter(fd: output)
        let sink = ReplySink(send: { await writer.write($0) })
        let logger = logger
        for await line in LineTransport.lines(from: input, onError: { logger.error("\($0)") }) {
            await connection.receive(JSONRPC.classify(line), sink: sink)
        }
        await connection.drain()
        await session.close()
    }
}
