import Foundation
public import JSONCore

/// Constrained calls: for models that cannot call tools, the server's grammar (llama-server's
/// `response_format` JSON schema, turned into GBNF) lets every reply be only
/// `{"name": TOOL, "parameters": {...}}` for a listed tool with arguments valid against its
/// schema, or `{"final_answer": TEXT}`. The tools are described in the system prompt instead of
/// the `tools` field, so the server needs no tool-call template (it works without `--jinja`), and
/// the conversation is written in the same shape: earlier calls as those objects, results as
/// user messages.
public enum ConstrainedCalls {
    /// The JSON schema every reply must match; nil when nothing is to be constrained (tool_choice none).
    public static func schema(tools: [ToolSpec], choice: ToolChoice) -> JSONValue? {
        let offered: [ToolSpec]
        switch choice {
        case .none: return nil
        case .named(let name): offered = tools.filter { $0.name == name }
        case .auto, .required: offered = tools
        }
        // "name" sorts before "parameters", and llama-server keeps the schema's key order: the
        // model picks the tool first, then writes arguments under that tool's own grammar.
        var branches: [JSONValue] = offered.map { tool in
            [
                "type": "object", "additionalProperties": false, "required": ["name", "parameters"],
                "properties": ["name": ["const": .string(tool.name)], "parameters": bounded(tool.grammarSchema ?? tool.inputSchema)],
            ]
        }
        if choice == .auto || offered.isEmpty {
            branches.append([
                "type": "object", "additionalProperties": false, "required": ["final_answer"],
                "properties": ["final_answer": ["type": "string"]],
            ])
        }
        return ["anyOf": .array(branches)]
    }

    /// Most items an array parameter may have under the grammar: a tiny model fills an unbounded
    /// array with one path over and over until its reply is cut.
    static let maxItems = 16
    /// Most characters of a string parameter; file contents and edits are not bounded.
    static let maxLength = 1000
    static let unbounded: Set<String> = ["content", "old_string", "new_string"]

    /// The schema with bounds on every array and on strings other than file contents, for the
    /// grammar only (what the tool accepts is unchanged).
    static func bounded(_ schema: JSONValue, name: String? = nil) -> JSONValue {
        guard var object = schema.objectValue else { return schema }
        if let properties = object["properties"]?.objectValue {
            object["properties"] = .object(properties.reduce(into: [:]) { $0[$1.key] = bounded($1.value, name: $1.key) })
        }
        if let items = object["items"] { object["items"] = bounded(items) }
        let types = object["type"]?.arrayValue?.compactMap(\.stringValue) ?? object["type"]?.stringValue.map { [$0] } ?? []
        if types.contains("array"), object["maxItems"] == nil { object["maxItems"] = .int(maxItems) }
        if types.contains("string"), object["maxLength"] == nil, object["enum"] == nil, !unbounded.contains(name ?? "") {
            object["maxLength"] = .int(maxLength)
        }
        return .object(object)
    }

    /// What the model is told: the reply shapes and the tools. No placeholder a model could copy:
    /// the shapes are said in words, with one real call as the example.
    static func instructions(tools: [ToolSpec], choice: ToolChoice) -> String {
        var lines = [
            "Reply with exactly one JSON object and nothing else.",
            #"To call a tool, the object has "name", one of the tools below, and "parameters", its arguments; you will get its result in the next message."#,
        ]
        if let example = tools.first(where: { $0.name == "read_file" }) ?? tools.first(where: { ($0.inputSchema["required"]?.arrayValue ?? []).isEmpty }) {
            let parameters: JSONValue = example.name == "read_file" ? ["path": "README.md"] : [:]
            lines.append("For example: " + JSONValue.object(["name": .string(example.name), "parameters": parameters]).jsonText)
        }
        if choice == .auto { lines.append(#"When the task is done, or needs no tool, the object has only "final_answer": your short answer, as a string."#) }
        lines.append("Tools:")
        for tool in tools { lines.append("- \(tool.name): \(tool.description) Parameters: \(tool.inputSchema.jsonText)") }
        return lines.joined(separator: "\n")
    }

    /// The conversation rewritten for a grammar-constrained server: instructions appended to the
    /// system prompt, calls written as the reply objects, results as user messages naming the tool.
    static func messages(_ messages: [ChatMessage], tools: [ToolSpec], choice: ToolChoice) -> [ChatMessage] {
        let instructions = instructions(tools: tools, choice: choice)
        var names: [String: String] = [:]
        var rewritten: [ChatMessage] = []
        var hasSystem = false
        for message in messages {
            switch message {
            case .system(let text):
                rewritten.append(.system(text + "\n\n" + instructions))
                hasSystem = true
            case .user:
                rewritten.append(message)
            case .assistant(let text, let calls):
                for call in calls { names[call.id] = call.name }
                let objects: [JSONValue] = calls.isEmpty
                    ? [["final_answer": .string(text)]]
                    : calls.map { ["name": .string($0.name), "parameters": (try? JSONValue.parse(Data($0.arguments.utf8))) ?? .string($0.arguments)] }
                rewritten.append(.assistant(text: objects.map(\.jsonText).joined(separator: "\n"), toolCalls: []))
            case .toolResult(let id, let content, let isError, _):
                let name = names[id] ?? "the tool"
                rewritten.append(.user("Result of \(name)\(isError ? " (error)" : ""):\n\(content)"))
            }
        }
        if !hasSystem { rewritten.insert(.system(instructions), at: 0) }
        return rewritten
    }

    /// A constrained reply read back: a call object becomes a tool call, a final answer its text.
    /// Anything else (a reply cut at the token limit) stays text, for the caller to judge.
    static func decode(_ response: ChatResponse) -> ChatResponse {
        guard let json = try? JSONValue.parse(Data(response.text.utf8)) else { return response }
        var decoded = response
        if let name = json["name"]?.stringValue, let parameters = json["parameters"] {
            decoded.text = ""
            decoded.toolCalls = [ToolCall(id: generatedCallID(), name: name, arguments: parameters.jsonText)]
        } else if let answer = json["final_answer"]?.stringValue {
            decoded.text = answer
        }
        return decoded
    }
}

/// An id for a call the server did not number: 9 letters and digits, the form Mistral's templates require.
public func generatedCallID() -> String {
    let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    return String((0..<9).map { _ in alphabet.randomElement()! })
}
