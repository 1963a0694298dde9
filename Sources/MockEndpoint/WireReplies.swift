import Foundation
import JSONCore

/// A scripted reply written in each wire format, whole or as server-sent events, shaped as
/// llama-server / OpenAI and the Anthropic API send them.
struct WireReply {
    var reply: MockScript.Reply
    /// Add llama-server's `timings` (as if generating at 20 tokens/s).
    var timings = false
    let model: String
    /// The request's number: ids and timestamps derive from it, so runs are reproducible.
    let turn: Int
    let promptEstimate: Int

    var promptTokens: Int { reply.usage?.prompt ?? promptEstimate }
    var completionTokens: Int {
        reply.usage?.completion ?? max(1, (reply.text.count + reply.toolCalls.reduce(0) { $0 + $1.argumentsText.count + $1.name.count }) / 4)
    }

    /// The reply as a grammar-constrained server writes it: the first call as
    /// `{"name", "parameters"}` text, or the text as `{"final_answer"}`.
    var constrainedReply: MockScript.Reply {
        var shaped = reply
        if let call = reply.toolCalls.first {
            let parameters = (try? JSONValue.parse(call.argumentsText)) ?? .string(call.argumentsText)
            shaped.text = (["name": .string(call.name), "parameters": parameters] as JSONValue).jsonText
        } else {
            shaped.text = (["final_answer": .string(reply.text)] as JSONValue).jsonText
        }
        shaped.toolCalls = []
        return shaped
    }

    var llamaTimings: JSONValue {
        [
            "cache_n": 0, "prompt_n": .int(promptTokens), "prompt_ms": .double(Double(promptTokens) * 5), "prompt_per_second": .double(200),
            "predicted_n": .int(completionTokens), "predicted_ms": .double(Double(completionTokens) * 50), "predicted_per_second": .double(20),
        ]
    }

    func callID(_ index: Int, wire: RequestView.Wire) -> String {
        wire == .openai ? "call_m\(turn)x\(index)" : "toolu_m\(turn)x\(index)"
    }

    /// Text in pieces of chunkSize characters (a marker may straddle two pieces, as in real streams).
    func pieces(_ text: String) -> [String] {
        var result: [String] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            result.append(String(rest.prefix(reply.chunkSize)))
            rest = rest.dropFirst(reply.chunkSize)
        }
        return result
    }

    // MARK: OpenAI

    var openAIFinish: String { reply.finishReason ?? (reply.toolCalls.isEmpty ? "stop" : "tool_calls") }
    var openAIUsage: JSONValue {
        ["prompt_tokens": .int(promptTokens), "completion_tokens": .int(completionTokens), "total_tokens": .int(promptTokens + completionTokens)]
    }

    func openAIWhole() -> JSONValue {
        var message: [String: JSONValue] = ["role": "assistant", "content": reply.text.isEmpty && !reply.toolCalls.isEmpty ? .null : .string(reply.text)]
        if !reply.reasoning.isEmpty { message["reasoning_content"] = .string(reply.reasoning) }
        if !reply.toolCalls.isEmpty {
            message["tool_calls"] = .array(reply.toolCalls.enumerated().map { index, call in
                ["id": .string(callID(index, wire: .openai)), "type": "function", "function": ["name": .string(call.name), "arguments": .string(call.argumentsText)]]
            })
        }
        var whole: [String: JSONValue] = [
            "id": .string("chatcmpl-mock\(turn)"), "object": "chat.completion", "created": .int(1_764_000_000 + turn), "model": .string(model),
            "choices": [["index": 0, "message": .object(message), "finish_reason": .string(openAIFinish)]],
            "usage": openAIUsage,
        ]
        if timings { whole["timings"] = llamaTimings }
        return .object(whole)
    }

    func openAIChunk(_ delta: JSONValue, finish: String? = nil) -> JSONValue {
        [
            "id": .string("chatcmpl-mock\(turn)"), "object": "chat.completion.chunk", "created": .int(1_764_000_000 + turn), "model": .string(model),
            "choices": [["index": 0, "delta": delta, "finish_reason": finish.map(JSONValue.string) ?? .null]],
        ]
    }

    func openAIEvents(includeUsage: Bool) -> [String] {
        var chunks: [JSONValue] = [openAIChunk(["role": "assistant", "content": ""])]
        for piece in pieces(reply.reasoning) { chunks.append(openAIChunk(["reasoning_content": .string(piece)])) }
        for piece in pieces(reply.text) { chunks.append(openAIChunk(["content": .string(piece)])) }
        for (index, call) in reply.toolCalls.enumerated() {
            chunks.append(openAIChunk(["tool_calls": [[
                "index": .int(index), "id": .string(callID(index, wire: .openai)), "type": "function",
                "function": ["name": .string(call.name), "arguments": ""],
            ]]]))
            for piece in pieces(call.argumentsText) {
                chunks.append(openAIChunk(["tool_calls": [["index": .int(index), "function": ["arguments": .string(piece)]]]]))
            }
        }
        chunks.append(openAIChunk([:], finish: openAIFinish))
        if includeUsage {
            var last = openAIChunk([:])
            if case .object(var fields) = last {
                fields["choices"] = []
                fields["usage"] = openAIUsage
                if timings { fields["timings"] = llamaTimings }
                last = .object(fields)
            }
            chunks.append(last)
        }
        return chunks.map { "data: \($0.jsonText)\n\n" } + ["data: [DONE]\n\n"]
    }

    // MARK: Anthropic

    var anthropicStop: String { reply.finishReason ?? (reply.toolCalls.isEmpty ? "end_turn" : "tool_use") }

    /// Tool input as an object; arguments the script wrote as broken JSON go as {} (the API only carries objects).
    func input(_ call: MockScript.Call) -> JSONValue {
        (try? JSONValue.parse(call.argumentsText)).flatMap { $0.objectValue.map(JSONValue.object) } ?? [:]
    }

    func anthropicWhole() -> JSONValue {
        var content: [JSONValue] = []
        if !reply.text.isEmpty { content.append(["type": "text", "text": .string(reply.text)]) }
        for (index, call) in reply.toolCalls.enumerated() {
            content.append(["type": "tool_use", "id": .string(callID(index, wire: .anthropic)), "name": .string(call.name), "input": input(call)])
        }
        return [
            "id": .string("msg_mock\(turn)"), "type": "message", "role": "assistant", "model": .string(model), "content": .array(content),
            "stop_reason": .string(anthropicStop), "stop_sequence": .null,
            "usage": ["input_tokens": .int(promptTokens), "output_tokens": .int(completionTokens)],
        ]
    }

    func anthropicEvents() -> [String] {
        var events: [(String, JSONValue)] = [
            ("message_start", [
                "type": "message_start",
                "message": [
                    "id": .string("msg_mock\(turn)"), "type": "message", "role": "assistant", "model": .string(model), "content": [],
                    "stop_reason": .null, "stop_sequence": .null, "usage": ["input_tokens": .int(promptTokens), "output_tokens": 1],
                ],
            ]),
            ("ping", ["type": "ping"]),
        ]
        var block = 0
        if !reply.text.isEmpty {
            events.append(("content_block_start", ["type": "content_block_start", "index": .int(block), "content_block": ["type": "text", "text": ""]]))
            for piece in pieces(reply.text) {
                events.append(("content_block_delta", ["type": "content_block_delta", "index": .int(block), "delta": ["type": "text_delta", "text": .string(piece)]]))
            }
            events.append(("content_block_stop", ["type": "content_block_stop", "index": .int(block)]))
            block += 1
        }
        for (index, call) in reply.toolCalls.enumerated() {
            events.append(("content_block_start", [
                "type": "content_block_start", "index": .int(block),
                "content_block": ["type": "tool_use", "id": .string(callID(index, wire: .anthropic)), "name": .string(call.name), "input": [:]],
            ]))
            for piece in pieces(call.argumentsText) {
                events.append(("content_block_delta", [
                    "type": "content_block_delta", "index": .int(block), "delta": ["type": "input_json_delta", "partial_json": .string(piece)],
                ]))
            }
            events.append(("content_block_stop", ["type": "content_block_stop", "index": .int(block)]))
            block += 1
        }
        events.append(("message_delta", [
            "type": "message_delta", "delta": ["stop_reason": .string(anthropicStop), "stop_sequence": .null],
            "usage": ["output_tokens": .int(completionTokens)],
        ]))
        events.append(("message_stop", ["type": "message_stop"]))
        return events.map { "event: \($0.0)\ndata: \($0.1.jsonText)\n\n" }
    }
}
