import Foundation
import JSONCore

/// Anthropic Messages: tools with input_schema, tool_use and tool_result blocks, input_json_delta.
public struct AnthropicClient: ModelClient {
    public let endpoint: Endpoint
    let transport: HTTPTransport
    /// Anthropic requires max_tokens on every request.
    static let defaultMaxTokens = 8192

    init(endpoint: Endpoint, key: String?, policy: TransportPolicy, connection: ConnectionOptions) {
        self.endpoint = endpoint
        var headers = [("anthropic-version", "2023-06-01")]
        if let key { headers.append(("x-api-key", key)) }
        transport = HTTPTransport(display: endpoint.display, headers: headers, policy: policy, options: connection)
    }

    /// Nothing stays open between requests: each transfer's connection ends with it.
    public func close() async {}

    public func listModels() async throws -> [String] {
        let url = endpoint.modelsURL
        let json = try await transport.send(url, body: nil, onEvent: { _ in .proceed }) { try await transport.json($0, url: url) }
        return (json["data"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
    }

    public func complete(_ request: ChatRequest, onEvent: @escaping StreamHandler) async throws -> ChatResponse {
        // Claude calls tools natively; a grammar is an OpenAI-compatible server's feature.
        if request.constrained { throw EndpointError.constrainUnsupported(endpoint.display) }
        let url = endpoint.chatURL
        let body = Self.body(for: request).jsonData
        return try await transport.send(url, body: body, onEvent: onEvent) { responseBody in
            if request.stream {
                var assembly = Assembly()
                let ended = try await ServerSentEvents(url: url).read(responseBody) { event in
                    try assembly.add(event.data, url: url, onEvent: onEvent)
                }
                guard ended else { throw StreamCut() }
                return assembly.response
            }
            return try Self.decode(try await transport.json(responseBody, url: url), url: url)
        }
    }

    static func body(for request: ChatRequest) -> JSONValue {
        var system: [String] = []
        var messages: [(role: String, blocks: [JSONValue])] = []
        // Consecutive messages of one role merge into one: tool results and a host note that
        // follows them belong in the same user turn.
        func append(_ role: String, _ block: JSONValue) {
            if messages.last?.role == role { messages[messages.count - 1].blocks.append(block) } else { messages.append((role, [block])) }
        }
        for message in request.messages {
            switch message {
            case .system(let text): system.append(text)
            case .user(let text): append("user", ["type": "text", "text": .string(text)])
            case .assistant(let text, let calls):
                if !text.isEmpty { append("assistant", ["type": "text", "text": .string(text)]) }
                for call in calls {
                    // The API takes input as an object; arguments that never parsed are sent as {}.
                    let input = (try? JSONValue.parse(call.arguments)).flatMap { $0.objectValue.map(JSONValue.object) } ?? [:]
                    append("assistant", ["type": "tool_use", "id": .string(call.id), "name": .string(call.name), "input": input])
                }
                if text.isEmpty && calls.isEmpty { append("assistant", ["type": "text", "text": "(no answer)"]) }
            case .toolResult(let id, let content, let isError, let images):
                let body: JSONValue = images.isEmpty
                    ? .string(content)
                    : .array([["type": "text", "text": .string(content)]] + images.map { png in
                        ["type": "image", "source": ["type": "base64", "media_type": "image/png", "data": .string(png.base64EncodedString())]]
                    })
                append("user", ["type": "tool_result", "tool_use_id": .string(id), "content": body, "is_error": .bool(isError)])
            }
        }
        var body: [String: JSONValue] = [
            "model": .string(request.model),
            "max_tokens": .int(request.maxTokens ?? defaultMaxTokens),
            "messages": .array(messages.map { ["role": .string($0.role), "content": .array($0.blocks)] }),
            "stream": .bool(request.stream),
        ]
        if !system.isEmpty { body["system"] = .string(system.joined(separator: "\n\n")) }
        if !request.tools.isEmpty {
            body["tools"] = .array(request.tools.map { ["name": .string($0.name), "description": .string($0.description), "input_schema": $0.inputSchema] })
            switch request.toolChoice {
            case .auto: body["tool_choice"] = ["type": "auto"]
            case .none: body["tool_choice"] = ["type": "none"]
            case .required: body["tool_choice"] = ["type": "any"]
            case .named(let name): body["tool_choice"] = ["type": "tool", "name": .string(name)]
            }
        }
        return .object(body)
    }

    static func decode(_ json: JSONValue, url: URL) throws -> ChatResponse {
        guard let blocks = json["content"]?.arrayValue else {
            throw EndpointError.badResponse(url.absoluteString, "no content blocks in \(json.jsonText.prefix(200))")
        }
        var text = ""
        var calls: [ToolCall] = []
        for block in blocks {
            switch block["type"]?.stringValue {
            case "text": text += block["text"]?.stringValue ?? ""
            case "tool_use":
                calls.append(ToolCall(
                    id: block["id"]?.stringValue ?? "toolu_\(calls.count)", name: block["name"]?.stringValue ?? "",
                    arguments: (block["input"] ?? [:]).jsonText))
            default: continue
            }
        }
        return ChatResponse(text: text, toolCalls: calls, finishReason: json["stop_reason"]?.stringValue, usage: usage(json["usage"]))
    }

    /// Input tokens include the cached ones, so prompt tokens mean the same for both APIs.
    static func usage(_ json: JSONValue?) -> Usage? {
        guard let json, let input = json["input_tokens"]?.intValue else { return nil }
        let cached = (json["cache_creation_input_tokens"]?.intValue ?? 0) + (json["cache_read_input_tokens"]?.intValue ?? 0)
        return Usage(
            promptTokens: input + cached, completionTokens: json["output_tokens"]?.intValue ?? 0,
            cachedPromptTokens: json["cache_read_input_tokens"]?.intValue ?? 0)
    }

    /// Stream events put back together: text blocks joined, partial_json concatenated per block.
    struct Assembly {
        var text = ""
        var calls: [Int: ToolCall] = [:]
        var stopReason: String?
        var usage: Usage?

        /// False once message_stop arrives, or when the listener cut the answer.
        mutating func add(_ event: JSONValue, url: URL, onEvent: StreamHandler) throws -> Bool {
            let index = event["index"]?.intValue ?? 0
            switch event["type"]?.stringValue {
            case "message_start":
                usage = AnthropicClient.usage(event["message"]?["usage"])
            case "content_block_start":
                if let block = event["content_block"], block["type"]?.stringValue == "tool_use" {
                    let name = block["name"]?.stringValue ?? ""
                    calls[index] = ToolCall(id: block["id"]?.stringValue ?? "toolu_\(index)", name: name, arguments: "")
                    _ = onEvent(.toolCall(name: name))
                } else if let piece = event["content_block"]?["text"]?.stringValue, !piece.isEmpty {
                    return take(piece, onEvent)
                }
            case "content_block_delta":
                let delta = event["delta"]
                if let piece = delta?["text"]?.stringValue {
                    return take(piece, onEvent)
                } else if let json = delta?["partial_json"]?.stringValue {
                    calls[index]?.arguments += json
                }
            case "message_delta":
                if let reason = event["delta"]?["stop_reason"]?.stringValue { stopReason = reason }
                if let output = event["usage"]?["output_tokens"]?.intValue {
                    usage = Usage(promptTokens: usage?.promptTokens ?? event["usage"]?["input_tokens"]?.intValue ?? 0, completionTokens: output)
                }
            case "message_stop":
                return false
            default:
                break
            }
            return true
        }

        private mutating func take(_ piece: String, _ onEvent: StreamHandler) -> Bool {
            text += piece
            guard onEvent(.text(piece)) == .stop else { return true }
            stopReason = ChatResponse.cutByHost
            return false
        }

        var response: ChatResponse {
            let ordered = calls.keys.sorted().map { index in
                var call = calls[index]!
                // A tool_use with no input deltas has the empty object as input.
                if call.arguments.isEmpty { call.arguments = "{}" }
                return call
            }
            return ChatResponse(text: text, toolCalls: ordered, finishReason: stopReason, usage: usage)
        }
    }
}
