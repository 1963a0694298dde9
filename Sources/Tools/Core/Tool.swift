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

    /// The entries of a tools.json, read with JSONCore's parser: Codable's generic decoding of
    /// the schemas took a fifth of `serve`'s start.
    static func list(_ bytes: [UInt8]) throws -> [ToolDefinition] {
        guard let entries = try JSONValue.parse(String(decoding: bytes, as: UTF8.self)).arrayValue else { throw ToolsJSONError("the file is not a JSON array of tools") }
        return try entries.enumerated().map { index, entry in
            guard let name = entry["name"]?.stringValue, let description = entry["description"]?.stringValue,
                let inputSchema = entry["inputSchema"], inputSchema.objectValue != nil
            else { throw ToolsJSONError("entry \(index) needs a string name and description and an object inputSchema") }
            let optional = { (key: String) -> JSONValue? in entry[key].flatMap { $0 == .null ? nil : $0 } }
            let title = optional("title")
            if let title, title.stringValue == nil { throw ToolsJSONError("\(name): title must be a string") }
            return ToolDefinition(
                name: name, title: title?.stringValue, description: description, inputSchema: inputSchema,
                outputSchema: optional("outputSchema"), annotations: optional("annotations"))
        }
    }
}

/// A tools.json that is not a list of tool definitions.
struct ToolsJSONError: Error, CustomStringConvertible {
    let description: String
    init(_ problem: String) { description = "tools.json: \(problem)" }
}
