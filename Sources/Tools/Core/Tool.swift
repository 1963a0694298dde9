/// One tool: its name matches an entry in tools.json, which holds its description and schema.
public protocol Tool: Sendable {
    var name: String { get }
    /// Rewrites arguments in a form the schema no longer lists into the current one (or refuses
    /// them with a pointer to what replaced them); runs before schema validation.
    func normalize(_ arguments: [String: JSONValue]) throws -> [String: JSONValue]
    /// Reads what models often write for a parameter as what it means (`npm run build` for the
    /// script `build`), each change named so the agent loop records it with its other repairs.
    func repair(_ arguments: [String: JSONValue]) -> (arguments: [String: JSONValue], repairs: [String])
    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult
    /// Whether a call can change the workspace: a checkpoint is recorded before it, for `undo`.
    var changesWorkspace: Bool { get }
}

extension Tool {
    public func normalize(_ arguments: [String: JSONValue]) throws -> [String: JSONValue] { arguments }
    public func repair(_ arguments: [String: JSONValue]) -> (arguments: [String: JSONValue], repairs: [String]) { (arguments, []) }
    public var changesWorkspace: Bool { false }
}

/// A tool's entry in tools.json.
public struct ToolDefinition: Sendable, Codable, Equatable {
    public let name: String
    /// A short human name for client UIs.
    public let title: String?
    public let description: String
    public let inputSchema: JSONValue
    /// What `ToolResult.structuredContent` holds on success.
    public let outputSchema: JSONValue?
    /// MCP tool annotations: readOnlyHint, destructiveHint, idempotentHint, openWorldHint.
    public let annotations: JSONValue?
}
