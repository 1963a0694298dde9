import JSONCore

/// A chat request, either wire format, reduced to what expectations look at.
struct RequestView {
    enum Wire: String { case openai, anthropic }

    struct Message {
        var role: String
        var text: String
        var toolCallIDs: [String] = []
        /// (id answered, content) for each tool result the message carries.
        var toolResults: [(id: String, content: String)] = []
        /// Image blocks inside those tool results.
        var resultImages = 0
    }

    let wire: Wire
    let stream: Bool
    let includeUsage: Bool
    let system: String
    let messages: [Message]
    let tools: [String]
    /// "auto", "none", "required" or the named tool.
    let toolChoice: String
    let bodyBytes: Int
    /// The request asked for replies shaped by a JSON schema (constrained calls).
    let constrained: Bool
    /// max_tokens, 0 when the request sets none.
    let maxTokens: Int

    init(wire: Wire, body: JSONValue, bodyBytes: Int) throws {
        self.wire = wire
        self.bodyBytes = bodyBytes
        guard case .object = body else { throw ScriptError("the request body is not a JSON object") }
        stream = body["stream"]?.boolValue ?? false
        includeUsage = body["stream_options"]?["include_usage"]?.boolValue ?? false
        constrained = body["response_format"]?["type"]?.stringValue == "json_schema"
        maxTokens = body["max_tokens"]?.intValue ?? 0
        guard let raw = body["messages"]?.arrayValue else { throw ScriptError("the request has no 'messages' list") }
        var system = body["system"].map(Self.text) ?? ""
        var messages: [Message] = []
        for item in raw {
            guard let role = item["role"]?.stringValue else { throw ScriptError("a message has no 'role': \(item.jsonText.prefix(200))") }
            if role == "system" {
                system += Self.text(item["content"] ?? "")
                continue
            }
            var message = Message(role: role, text: Self.text(item["content"] ?? ""))
            if wire == .openai {
                message.toolCallIDs = (item["tool_calls"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
                if role == "tool" { message.toolResults = [(item["tool_call_id"]?.stringValue ?? "", message.text)] }
            } else {
                for block in item["content"]?.arrayValue ?? [] {
                    if block["type"]?.stringValue == "tool_use", let id = block["id"]?.stringValue { message.toolCallIDs.append(id) }
                    if block["type"]?.stringValue == "tool_result" {
                        message.toolResults.append((block["tool_use_id"]?.stringValue ?? "", Self.text(block["content"] ?? "")))
                        message.resultImages += (block["content"]?.arrayValue ?? []).filter { $0["type"]?.stringValue == "image" }.count
                    }
                }
            }
            messages.append(message)
        }
        self.system = system
        self.messages = messages
        tools = (body["tools"]?.arrayValue ?? []).compactMap { $0["function"]?["name"]?.stringValue ?? $0["name"]?.stringValue }
        let choice = body["tool_choice"]
        if let text = choice?.stringValue {
            toolChoice = text
        } else if let name = choice?["function"]?["name"]?.stringValue ?? choice?["name"]?.stringValue {
            toolChoice = name
        } else {
            toolChoice = ["any": "required"][choice?["type"]?.stringValue ?? "auto"] ?? choice?["type"]?.stringValue ?? "auto"
        }
    }

    /// Text of a content field: a string, or the text of its blocks (tool results' content included).
    static func text(_ content: JSONValue) -> String {
        if let text = content.stringValue { return text }
        return (content.arrayValue ?? []).map { block in
            block["text"]?.stringValue ?? block["content"].map(text) ?? ""
        }.joined(separator: "\n")
    }

    /// The tool results that answer the last assistant message.
    var latestToolResults: [(id: String, content: String)] {
        let start = (messages.lastIndex { $0.role == "assistant" } ?? -1) + 1
        return messages[start...].flatMap(\.toolResults)
    }

    /// What a real server would refuse: tool results that answer no call, calls left unanswered,
    /// and (Anthropic) roles that do not alternate starting with the user.
    func wellFormedness() -> String? {
        var open: [String] = []
        for (index, message) in messages.enumerated() {
            if wire == .anthropic {
                let expected = index % 2 == 0 ? "user" : "assistant"
                if message.role != expected { return "message \(index) has role '\(message.role)'; Anthropic needs user and assistant turns alternating, starting with user" }
            }
            for result in message.toolResults {
                guard let at = open.firstIndex(of: result.id) else {
                    return "message \(index) answers tool call '\(result.id)', which no assistant message made (or was answered already)"
                }
                open.remove(at: at)
            }
            if message.role == "assistant" {
                if !open.isEmpty { return "tool calls \(open) were never answered before message \(index)" }
                open = message.toolCallIDs
            } else if !open.isEmpty && message.toolResults.isEmpty && message.role != "tool" {
                return "tool calls \(open) were never answered before message \(index)"
            }
        }
        return nil
    }

    /// The first expectation the request does not meet, in words that name both sides.
    func unmet(_ expect: MockScript.Expectations) -> String? {
        let last = messages.last.map { $0.text + $0.toolResults.map(\.content).joined(separator: "\n") } ?? ""
        for wanted in expect.lastMessageContains where !last.contains(wanted) {
            return "expected the last message to contain \(quote(wanted)); it was \(quote(last))"
        }
        let results = latestToolResults.map(\.content).joined(separator: "\n")
        for wanted in expect.toolResultsContain where !results.contains(wanted) {
            return "expected the tool results to contain \(quote(wanted)); they were \(quote(results))"
        }
        for wanted in expect.anyMessageContains where !messages.contains(where: { $0.text.contains(wanted) || $0.toolResults.contains { $0.content.contains(wanted) } }) {
            return "expected some message to contain \(quote(wanted)); none does"
        }
        for unwanted in expect.noMessageContains {
            if let found = messages.first(where: { $0.text.contains(unwanted) || $0.toolResults.contains { $0.content.contains(unwanted) } }) {
                return "expected no message to contain \(quote(unwanted)); one does: \(quote(found.text))"
            }
        }
        for wanted in expect.systemContains where !system.contains(wanted) {
            return "expected the system prompt to contain \(quote(wanted)); it was \(quote(system))"
        }
        let missing = expect.toolsInclude.filter { !tools.contains($0) }
        if !missing.isEmpty { return "expected the tools to include \(missing.joined(separator: ", ")); they were \(tools.joined(separator: ", "))" }
        if let stream = expect.stream, stream != self.stream { return "expected stream: \(stream), got \(self.stream)" }
        if let choice = expect.toolChoice, choice != toolChoice { return "expected tool_choice \(choice), got \(toolChoice)" }
        let start = (messages.lastIndex { $0.role == "assistant" } ?? -1) + 1
        let images = messages[start...].reduce(0) { $0 + $1.resultImages }
        if let wanted = expect.toolResultImages, wanted != images { return "expected \(wanted) images in the tool results, got \(images)" }
        let count = messages.count + (system.isEmpty ? 0 : 1)
        if let wanted = expect.messageCount, wanted != count { return "expected \(wanted) messages, got \(count)" }
        if let wanted = expect.constrained, wanted != constrained {
            return wanted ? "expected response_format json_schema (constrained calls), got none" : "expected no response_format, got json_schema"
        }
        if let wanted = expect.maxTokens, wanted != maxTokens { return "expected max_tokens \(wanted), got \(maxTokens == 0 ? "none" : String(maxTokens))" }
        return nil
    }

    private func quote(_ text: String) -> String {
        (text.count > 400 ? String(text.prefix(200)) + " … " + String(text.suffix(200)) : text).debugDescription
    }
}
