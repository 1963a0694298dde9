import Foundation
import JSONCore

/// OpenAI-compatible chat completions: llama-server, vLLM, Ollama's /v1, LM Studio and OpenAI.
public struct OpenAIClient: ModelClient {
    public let endpoint: Endpoint
    let transport: HTTPTransport

    init(endpoint: Endpoint, key: String?, policy: TransportPolicy, connection: ConnectionOptions) {
        self.endpoint = endpoint
        transport = HTTPTransport(
            display: endpoint.display, headers: key.map { [("authorization", "Bearer \($0)")] } ?? [], policy: policy, options: connection)
    }

    /// Nothing stays open between requests: each transfer's connection ends with it.
    public func close() async {}

    public func listModels() async throws -> [String] {
        let url = endpoint.modelsURL
        let json = try await transport.send(url, body: nil, onEvent: { _ in .proceed }) { try await transport.json($0, url: url) }
        return (json["data"]?.arrayValue ?? json["models"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue ?? $0["name"]?.stringValue }
    }

    public func complete(_ request: ChatRequest, onEvent: @escaping StreamHandler) async throws -> ChatResponse {
        let url = endpoint.chatURL
        let body = Self.body(for: request).jsonData
        let response = try await transport.send(url, body: body, onEvent: onEvent) { responseBody in
            if request.stream {
                var assembly = Assembly()
                let ended = try await ServerSentEvents(url: url).read(responseBody) { event in
                    try assembly.add(event.data, url: url, onEvent: onEvent)
                }
                // Some servers close right after the finish_reason chunk without [DONE]; that answer is whole.
                guard ended || assembly.finishReason != nil else { throw StreamCut() }
                return assembly.response
            }
            return try Self.decode(try await transport.json(responseBody, url: url), url: url)
        }
        return request.constrained && ConstrainedCalls.schema(tools: request.tools, choice: request.toolChoice) != nil
            ? ConstrainedCalls.decode(response) : response
    }

    /// The request body: messages, tools as functions, tool_choice, and usage in the stream; or,
    /// constrained, the tools in the prompt and the reply schema as `response_format`.
    static func body(for request: ChatRequest) -> JSONValue {
        var request = request
        var constraint: JSONValue?
        if request.constrained {
            constraint = ConstrainedCalls.schema(tools: request.tools, choice: request.toolChoice)
            if constraint != nil { request.messages = ConstrainedCalls.messages(request.messages, tools: request.tools, choice: request.toolChoice) }
            request.tools = []
        }
        var body: [String: JSONValue] = [
            "model": .string(request.model),
            "messages": .array(request.messages.map(message)),
            "stream": .bool(request.stream),
        ]
        if let constraint {
            body["response_format"] = ["type": "json_schema", "json_schema": ["name": "reply", "strict": true, "schema": constraint]]
        }
        if request.stream { body["stream_options"] = ["include_usage": true] }
        if let maxTokens = request.maxTokens { body["max_tokens"] = .int(maxTokens) }
        if !request.tools.isEmpty {
            body["tools"] = .array(request.tools.map { tool in
                ["type": "function", "function": ["name": .string(tool.name), "description": .string(tool.description), "parameters": tool.inputSchema]]
            })
            body["parallel_tool_calls"] = true
            switch request.toolChoice {
            case .auto: body["tool_choice"] = "auto"
            case .none: body["tool_choice"] = "none"
            case .required: body["tool_choice"] = "required"
            case .named(let name): body["tool_choice"] = ["type": "function", "function": ["name": .string(name)]]
            }
        }
        return .object(body)
    }

    static func message(_ message: ChatMessage) -> JSONValue {
        switch message {
        case .system(let text): return ["role": "system", "content": .string(text)]
        case .user(let text): return ["role": "user", "content": .string(text)]
        case .assistant(let text, let calls):
            var json: [String: JSONValue] = ["role": "assistant", "content": calls.isEmpty || !text.isEmpty ? .string(text) : .null]
            if !calls.isEmpty {
                json["tool_calls"] = .array(calls.map { call in
                    ["id": .string(call.id), "type": "function", "function": ["name": .string(call.name), "arguments": .string(call.arguments)]]
                })
            }
            return .object(json)
        case .toolResult(let id, let content, _, _):
            return ["role": "tool", "tool_call_id": .string(id), "content": .string(content)]
        }
    }

    /// A whole chat.completion object.
    static func decode(_ json: JSONValue, url: URL) throws -> ChatResponse {
        guard let choice = json["choices"]?.arrayValue?.first, let message = choice["message"] else {
            throw EndpointError.badResponse(url.absoluteString, "no choices[0].message in \(json.jsonText.prefix(200))")
        }
        let calls = (message["tool_calls"]?.arrayValue ?? []).enumerated().map { index, call in
            ToolCall(
                id: call["id"]?.stringValue ?? "call_\(index)", name: call["function"]?["name"]?.stringValue ?? "",
                arguments: argumentsText(call["function"]?["arguments"]))
        }
        let text = message["content"]?.stringValue ?? ""
        // Past a turn marker the model was making up the next turn: the answer ended there.
        let answer = TurnMarkers.cut(text)
        return ChatResponse(
            text: answer ?? text, toolCalls: calls,
            finishReason: answer == nil ? choice["finish_reason"]?.stringValue : "stop", usage: usage(json["usage"]), timings: timings(json["timings"]),
            reasoning: (message["reasoning_content"] ?? message["reasoning"])?.stringValue ?? "")
    }

    /// llama-server's `timings` (prompt_n, prompt_ms, predicted_n, predicted_ms).
    static func timings(_ json: JSONValue?) -> Timings? {
        guard let json, let generated = json["predicted_n"]?.intValue, let milliseconds = json["predicted_ms"]?.doubleValue else { return nil }
        return Timings(
            promptTokens: json["prompt_n"]?.intValue ?? 0, promptMilliseconds: json["prompt_ms"]?.doubleValue ?? 0,
            generatedTokens: generated, generationMilliseconds: milliseconds)
    }

    /// Arguments are a JSON string by the spec; Ollama-style objects are accepted as they are.
    static func argumentsText(_ value: JSONValue?) -> String {
        switch value {
        case .string(let text): text
        case nil, .null: ""
        case let other?: other.jsonText
        }
    }

    static func usage(_ json: JSONValue?) -> Usage? {
        guard let json, let prompt = json["prompt_tokens"]?.intValue else { return nil }
        return Usage(
            promptTokens: prompt, completionTokens: json["completion_tokens"]?.intValue ?? 0,
            cachedPromptTokens: json["prompt_tokens_details"]?["cached_tokens"]?.intValue)
    }

    /// Chunks put back together: text deltas joined, tool-call fragments concatenated per index.
    struct Assembly {
        var text = ""
        var calls: [Int: ToolCall] = [:]
        var finishReason: String?
        var usage: Usage?
        var timings: Timings?
        var reasoning = ""

        /// False when the listener cut the answer.
        mutating func add(_ chunk: JSONValue, url: URL, onEvent: StreamHandler) throws -> Bool {
            if let found = OpenAIClient.usage(chunk["usage"]) { usage = found }
            if let found = OpenAIClient.timings(chunk["timings"]) { timings = found }
            guard let choice = chunk["choices"]?.arrayValue?.first else { return true }
            if let reason = choice["finish_reason"]?.stringValue { finishReason = reason }
            guard let delta = choice["delta"] else { return true }
            if let piece = (delta["reasoning_content"] ?? delta["reasoning"])?.stringValue { reasoning += piece }
            if let piece = delta["content"]?.stringValue, !piece.isEmpty {
                // A marker may straddle two pieces: search from just before this one.
                let start = text.index(text.endIndex, offsetBy: -min(text.count, TurnMarkers.longest))
                text += piece
                if let answer = TurnMarkers.cut(text, searchingFrom: start) {
                    // The model ran past the end of its turn: the answer is whole, the rest is noise.
                    text = answer
                    finishReason = "stop"
                    return false
                }
                if onEvent(.text(piece)) == .stop {
                    finishReason = ChatResponse.cutByHost
                    return false
                }
            }
            for fragment in delta["tool_calls"]?.arrayValue ?? [] {
                let index = fragment["index"]?.intValue ?? calls.count
                var call = calls[index] ?? ToolCall(id: "", name: "", arguments: "")
                if let id = fragment["id"]?.stringValue, !id.isEmpty { call.id = id }
                if let name = fragment["function"]?["name"]?.stringValue, !name.isEmpty {
                    call.name += name
                    _ = onEvent(.toolCall(name: call.name))
                }
                call.arguments += OpenAIClient.argumentsText(fragment["function"]?["arguments"])
                calls[index] = call
            }
            return true
        }

        var response: ChatResponse {
            let ordered = calls.keys.sorted().map { index in
                var call = calls[index]!
                if call.id.isEmpty { call.id = "call_\(index)" }
                return call
            }
            return ChatResponse(text: text, toolCalls: ordered, finishReason: finishReason, usage: usage, timings: timings, reasoning: reasoning)
        }
    }
}
