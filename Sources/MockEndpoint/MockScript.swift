import Foundation
import JSONCore
import Yams

/// A scripted conversation: each request the endpoint receives takes the next turn, checks the
/// turn's expectations against the request, then answers with the turn's reply or fault.
public struct MockScript: Sendable {
    /// The one model `/v1/models` lists.
    public var model: String
    /// When set, every request must carry it (`Authorization: Bearer`, or `x-api-key`).
    public var apiKey: String?
    public var turns: [Turn]
    public var name: String
    /// Instead of taking turns in order, each request is answered by the first turn whose
    /// expectations it meets; turns can answer many times (personas answer any question in any order).
    public var match = false
    /// A request that opens a new conversation (no assistant message yet) starts the script over:
    /// one mock serves every repeat of a showdown contestant.
    public var repeats = false
    /// "llama-server": answer as llama-server does where it differs from OpenAI (a `timings`
    /// object in every answer, `owned_by: llamacpp` in /v1/models).
    public var server: String?
    /// /health and chat answer 503 "Loading model" for this long after start, as llama-server
    /// does while it loads the weights.
    public var loading: Duration = .zero
    /// The context size llama-server's /props reports (`default_generation_settings.n_ctx`); a
    /// request whose prompt (estimated as its body's bytes / 4) is larger gets llama-server's
    /// HTTP 400 exceed_context_size_error.
    public var contextSize: Int?

    public struct Turn: Sendable {
        public var expect: Expectations
        public var delay: Duration
        public var reply: Reply?
        public var fault: Fault?
    }

    /// What the request must show: each one names what it found when it fails.
    public struct Expectations: Sendable {
        /// The last message's text contains this (a user prompt, or the tool results of the last turn).
        public var lastMessageContains: [String] = []
        /// The tool results that answer the previous reply's calls contain each of these.
        public var toolResultsContain: [String] = []
        /// Some message in the conversation contains each of these.
        public var anyMessageContains: [String] = []
        /// No message in the conversation contains any of these (what the host should have dropped).
        public var noMessageContains: [String] = []
        public var systemContains: [String] = []
        /// The request offers at least these tools.
        public var toolsInclude: [String] = []
        public var stream: Bool?
        /// "auto", "none", "required", or the tool a request names (either API's form).
        public var toolChoice: String?
        /// Image blocks in the tool results since the last assistant message (Anthropic's form).
        public var toolResultImages: Int?
        /// The request's message count (system included).
        public var messageCount: Int?
        /// The request asks for grammar-shaped replies (`response_format` json_schema), or not.
        public var constrained: Bool?
        /// The request's max_tokens (0: none).
        public var maxTokens: Int?
    }

    public struct Reply: Sendable {
        public var text: String
        public var toolCalls: [Call]
        public var usage: (prompt: Int, completion: Int)?
        public var finishReason: String?
        /// Characters per streamed delta: small values split markers across chunks.
        public var chunkSize: Int
        /// Reasoning the server split off, sent as `reasoning_content` (llama-server's
        /// `--reasoning-format deepseek`) before the text.
        public var reasoning = ""
    }

    public struct Call: Sendable {
        public var name: String
        /// The arguments exactly as sent: JSON text, valid or not.
        public var argumentsText: String
    }

    public enum Fault: Sendable {
        /// An HTTP error with this body (llama-server's 500 "Failed to parse input", a 429, …).
        case status(Int, body: String)
        /// Half the answer, then the connection is closed.
        case cut
        /// This text as the response body, with the SSE content type.
        case garbage(String)
    }

    /// Loads a script from YAML (or JSON); errors name the file, the turn and the field.
    public static func load(path: String) throws -> MockScript {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ScriptError("cannot read the script \(path): \(error.localizedDescription)")
        }
        let root: JSONValue
        do {
            root = try JSONValue(yaml: Yams.load(yaml: text) as Any)
        } catch let error as ScriptError {
            throw ScriptError("\(path): \(error.message)")
        } catch {
            throw ScriptError("\(path) is not valid YAML: \(error)")
        }
        do {
            return try parse(root, name: URL(fileURLWithPath: path).lastPathComponent)
        } catch let error as ScriptError {
            throw ScriptError("\(path): \(error.message)")
        }
    }

    static func parse(_ root: JSONValue, name: String) throws -> MockScript {
        let fields = try Fields(root, at: "the script", known: ["model", "api_key", "turns", "description", "match", "repeats", "server", "loading_ms", "context_size"])
        let turns = try fields.array("turns", required: true).enumerated().map { index, turn in
            try parseTurn(turn, at: "turns[\(index)]")
        }
        guard !turns.isEmpty else { throw ScriptError("'turns' is empty: a script needs at least one turn") }
        var script = MockScript(
            model: try fields.string("model") ?? "mock-model", apiKey: try fields.string("api_key"), turns: turns, name: name,
            match: try fields.bool("match") ?? false)
        script.repeats = try fields.bool("repeats") ?? false
        script.server = try fields.string("server")
        if let server = script.server, server != "llama-server" { throw ScriptError("'server' must be llama-server (or absent), got \(server)") }
        script.loading = .milliseconds(try fields.int("loading_ms") ?? 0)
        script.contextSize = try fields.int("context_size")
        if let size = script.contextSize, size <= 0 { throw ScriptError("'context_size' must be a positive number of tokens") }
        return script
    }

    static func parseTurn(_ value: JSONValue, at path: String) throws -> Turn {
        let fields = try Fields(value, at: path, known: ["expect", "delay_ms", "reply", "fault", "note"])
        var expect = Expectations()
        if let raw = fields["expect"] {
            let e = try Fields(raw, at: path + ".expect", known: [
                "last_message_contains", "tool_results_contain", "any_message_contains", "no_message_contains", "system_contains", "tools_include", "stream",
                "message_count", "tool_choice", "tool_result_images", "constrained", "max_tokens",
            ])
            expect.lastMessageContains = try e.strings("last_message_contains")
            expect.toolResultsContain = try e.strings("tool_results_contain")
            expect.anyMessageContains = try e.strings("any_message_contains")
            expect.noMessageContains = try e.strings("no_message_contains")
            expect.systemContains = try e.strings("system_contains")
            expect.toolsInclude = try e.strings("tools_include")
            expect.stream = try e.bool("stream")
            expect.toolChoice = try e.string("tool_choice")
            expect.toolResultImages = try e.int("tool_result_images")
            expect.messageCount = try e.int("message_count")
            expect.constrained = try e.bool("constrained")
            expect.maxTokens = try e.int("max_tokens")
        }
        var turn = Turn(expect: expect, delay: .milliseconds(try fields.int("delay_ms") ?? 0))
        if let raw = fields["reply"] { turn.reply = try parseReply(raw, at: path + ".reply") }
        if let raw = fields["fault"] { turn.fault = try parseFault(raw, at: path + ".fault") }
        guard (turn.reply == nil) != (turn.fault == nil) else {
            throw ScriptError("\(path) needs exactly one of 'reply' and 'fault'")
        }
        return turn
    }

    static func parseReply(_ value: JSONValue, at path: String) throws -> Reply {
        let fields = try Fields(value, at: path, known: ["text", "tool_calls", "usage", "finish_reason", "chunk_size", "reasoning"])
        let calls = try fields.array("tool_calls").enumerated().map { index, call in
            let c = try Fields(call, at: "\(path).tool_calls[\(index)]", known: ["name", "arguments", "arguments_json"])
            guard let name = try c.string("name") else { throw ScriptError("\(path).tool_calls[\(index)] needs 'name'") }
            let text = try c.string("arguments_json") ?? (c["arguments"] ?? [:]).jsonText
            return Call(name: name, argumentsText: text)
        }
        var usage: (Int, Int)?
        if let raw = fields["usage"] {
            let u = try Fields(raw, at: path + ".usage", known: ["prompt_tokens", "completion_tokens"])
            usage = (try u.int("prompt_tokens") ?? 0, try u.int("completion_tokens") ?? 0)
        }
        return Reply(
            text: try fields.string("text") ?? "", toolCalls: calls, usage: usage, finishReason: try fields.string("finish_reason"),
            chunkSize: max(1, try fields.int("chunk_size") ?? 16), reasoning: try fields.string("reasoning") ?? "")
    }

    static func parseFault(_ value: JSONValue, at path: String) throws -> Fault {
        let fields = try Fields(value, at: path, known: ["status", "body", "cut", "garbage"])
        if let status = try fields.int("status") {
            return .status(status, body: try fields.string("body") ?? #"{"error":{"code":\#(status),"message":"mock fault"}}"#)
        }
        if try fields.bool("cut") == true { return .cut }
        if let garbage = try fields.string("garbage") { return .garbage(garbage) }
        throw ScriptError("\(path) needs 'status', 'cut: true' or 'garbage'")
    }
}

/// A script that cannot be used, with where and why.
public struct ScriptError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// An object's fields, read with type checks that name the field; unknown fields are refused
/// (a typo in a script must not silently drop an expectation).
struct Fields {
    let values: [String: JSONValue]
    let path: String

    init(_ value: JSONValue, at path: String, known: Set<String>) throws {
        guard let values = value.objectValue else { throw ScriptError("\(path) must be a mapping, got \(value.typeName)") }
        if let unknown = values.keys.sorted().first(where: { !known.contains($0) }) {
            var message = "\(path) has an unknown field '\(unknown)'"
            if let guess = closest(to: unknown, in: known.sorted()) { message += " (did you mean '\(guess)'?)" }
            throw ScriptError(message + "; the fields are: \(known.sorted().joined(separator: ", "))")
        }
        self.values = values
        self.path = path
    }

    subscript(key: String) -> JSONValue? { values[key] }

    func string(_ key: String) throws -> String? {
        guard let value = values[key] else { return nil }
        guard let text = value.stringValue else { throw wrongType(key, "a string", value) }
        return text
    }

    func int(_ key: String) throws -> Int? {
        guard let value = values[key] else { return nil }
        guard case .int(let number) = value else { throw wrongType(key, "an integer", value) }
        return number
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = values[key] else { return nil }
        guard let flag = value.boolValue else { throw wrongType(key, "true or false", value) }
        return flag
    }

    func array(_ key: String, required: Bool = false) throws -> [JSONValue] {
        guard let value = values[key] else {
            if required { throw ScriptError("\(path) needs '\(key)'") }
            return []
        }
        guard let items = value.arrayValue else { throw wrongType(key, "a list", value) }
        return items
    }

    /// A string or a list of strings.
    func strings(_ key: String) throws -> [String] {
        guard let value = values[key] else { return [] }
        if let one = value.stringValue { return [one] }
        guard let items = value.arrayValue?.compactMap(\.stringValue), items.count == value.arrayValue?.count else {
            throw wrongType(key, "a string or a list of strings", value)
        }
        return items
    }

    private func wrongType(_ key: String, _ expected: String, _ value: JSONValue) -> ScriptError {
        ScriptError("\(path).\(key) must be \(expected), got \(value.typeName)")
    }
}

extension JSONValue {
    /// What Yams.load returns, as JSON: quoted scalars stay strings, as YAML's tags say.
    init(yaml: Any) throws {
        switch yaml {
        case is NSNull: self = .null
        case let value as Bool: self = .bool(value)
        case let value as Int: self = .int(value)
        case let value as Double: self = .double(value)
        case let value as String: self = .string(value)
        case let value as [Any]: self = .array(try value.map { try JSONValue(yaml: $0) })
        case let value as [String: Any]: self = .object(try value.mapValues { try JSONValue(yaml: $0) })
        case let value as [AnyHashable: Any]:
            self = .object(Dictionary(uniqueKeysWithValues: try value.map { ("\($0.key)", try JSONValue(yaml: $0.value)) }))
        case let value as Date: self = .string(ISO8601DateFormatter().string(from: value))
        case let value as Data: self = .string(value.base64EncodedString())
        default:
            if case Optional<Any>.none = yaml { self = .null; return }
            throw ScriptError("cannot use the YAML value \(yaml) (\(type(of: yaml)))")
        }
    }
}
