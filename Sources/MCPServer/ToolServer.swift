import Foundation
import Logging
import MCP
import Tools

/// Serves the registry's tools over MCP: tools/list from tools.json, tools/call to the registry.
/// Tool failures are `isError: true` results; protocol errors are left to the SDK.
public struct ToolServer: Sendable {
    public let registry: ToolRegistry
    public let session: Session
    public let version: String
    let logger: Logger
    /// Whether each call gets a log line here (the HTTP front door logs whole requests instead).
    let logsCalls: Bool

    public init(registry: ToolRegistry, session: Session, version: String, logger: Logger, logsCalls: Bool = true) {
        self.registry = registry
        self.session = session
        self.version = version
        self.logger = logger
        self.logsCalls = logsCalls
    }

    /// An SDK server with the tool handlers registered.
    public func makeServer() async -> Server {
        let server = Server(
            name: "toolhost", version: version,
            instructions: "Tools run inside the workspace \(session.workspace.root). Paths are relative to it; the shell keeps its cwd and exports between execute calls.",
            capabilities: .init(tools: .init(listChanged: false)))
        let tools = registry.definitions.map {
            MCP.Tool(name: $0.name, description: $0.description, inputSchema: $0.inputSchema.mcpValue)
        }
        await server.withMethodHandler(ListTools.self) { _ in .init(tools: tools) }
        let registry = registry, session = session, logger = logger, logsCalls = logsCalls
        await server.withMethodHandler(CallTool.self) { params in
            let started = ContinuousClock.now
            let arguments = params.arguments.map { JSONValue.object($0.mapValues(JSONValue.init)) }
            let result = await registry.call(params.name, arguments: arguments, session: session)
            if logsCalls { logger.info("tools/call \(params.name) \(result.isError ? "error" : "ok") \(ContinuousClock.now - started)") }
            return result.mcpResult
        }
        return server
    }

    /// Serves MCP on the given descriptors until the client closes its end.
    public func serve(input: Int32, output: Int32) async throws {
        let server = await makeServer()
        try await server.start(transport: LineTransport(input: input, output: output, logger: logger))
        await server.waitUntilCompleted()
        await session.close()
    }
}

extension ToolResult {
    var mcpResult: CallTool.Result {
        let content: [MCP.Tool.Content] = content.map {
            switch $0 {
            case .text(let text): .text(text: text, annotations: nil, _meta: nil)
            case .image(let data, let mimeType): .image(data: data.base64EncodedString(), mimeType: mimeType, annotations: nil, _meta: nil)
            }
        }
        return CallTool.Result(content: content, structuredContent: structured?.mcpValue, isError: isError)
    }
}

extension JSONValue {
    init(_ value: MCP.Value) {
        switch value {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .data(let mimeType, let data): self = .string("data:\(mimeType ?? "application/octet-stream");base64,\(data.base64EncodedString())")
        case .array(let a): self = .array(a.map(JSONValue.init))
        case .object(let o): self = .object(o.mapValues(JSONValue.init))
        }
    }

    var mcpValue: MCP.Value {
        switch self {
        case .null: .null
        case .bool(let b): .bool(b)
        case .int(let i): .int(i)
        case .double(let d): .double(d)
        case .string(let s): .string(s)
        case .array(let a): .array(a.map(\.mcpValue))
        case .object(let o): .object(o.mapValues(\.mcpValue))
        }
    }
}
