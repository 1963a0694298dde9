import Foundation
public import Logging
public import Tools

/// Serves the registry's tools over MCP on stdio: one session, one connection.
public struct ToolServer: Sendable {
    public let registry: ToolRegistry
    let workspaceRoot: String
    let opening: Task<Session, any Error>
    public let version: String
    let logger: Logger

    public init(registry: ToolRegistry, session: Session, version: String, logger: Logger) {
        self.init(registry: registry, workspaceRoot: session.workspace.root, opening: Task { session }, version: version, logger: logger)
    }

    /// A server that answers the client's handshake while `opening` still sets the session up
    /// (see `MCPConnection.init(registry:workspaceRoot:opening:version:logger:)`).
    public init(registry: ToolRegistry, workspaceRoot: String, opening: Task<Session, any Error>, version: String, logger: Logger) {
        self.registry = registry
        self.workspaceRoot = workspaceRoot
        self.opening = opening
        self.version = version
        self.logger = logger
    }

    /// Serves MCP on the given descriptors until the client closes its end; requests already
    /// received are answered before this returns, and then the session is closed.
    public func serve(input: Int32, output: Int32) async {
        let connection = MCPConnection(registry: registry, workspaceRoot: workspaceRoot, opening: opening, version: version, logger: logger)
        let writer = LineWriter(fd: output)
        let sink = ReplySink(send: { await writer.write($0) })
        let logger = logger
        for await line in LineTransport.lines(from: input, onError: { logger.error("\($0)") }) {
            await connection.receive(JSONRPC.classify(line), sink: sink)
        }
        await connection.drain()
        await (try? opening.value)?.close()
    }
}
