/// One tool: its name matches an entry in tools.json, which holds its description and schema.
public protocol Tool: Sendable {
    var name: String { get }
    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult
}

/// A tool's entry in tools.json.
public struct ToolDefinition: Sendable, Codable, Equatable {
    public let name: String
    public let description: String
    public let inputSchema: JSONValue
}
