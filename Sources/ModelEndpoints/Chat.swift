public import Foundation
public import JSONCore

/// A tool as a model sees it: name, description, JSON-schema parameters.
public struct ToolSpec: Sendable, Equatable {
    public let name: String
    public let description: String
    /// The schema the model is shown.
    public let inputSchema: JSONValue
    /// The schema a constrained reply's grammar enforces, when it is stricter than the one shown
    /// (compact schemas leave out bounds that a grammar still should hold a tiny model to).
    public let grammarSchema: JSONValue?

    public init(name: String, description: String, inputSchema: JSONValue, grammarSchema: JSONValue? = nil) {
        self.name = name
        self.description = description
        self.inputSchema = inputSchema
        self.grammarSchema = grammarSchema
    }
}

/// One call the model asked for. `arguments` stays the JSON text the model wrote, because
/// models do not always write valid JSON and the caller decides how to treat that.
public struct ToolCall: Sendable, Equatable {
    public var id: String
    public var name: String
    public var arguments: String

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}

/// One message of the conversation, in a form both wire formats can be written from.
public enum ChatMessage: Sendable, Equatable {
    case system(String)
    case user(String)
    case assistant(text: String, toolCalls: [ToolCall])
    /// `images` reach models whose API carries them in tool results (Anthropic); elsewhere the
    /// text (which names the saved file) stands alone.
    case toolResult(callID: String, content: String, isError: Bool, images: [Data] = [])
}

/// Which tools the model may or must call.
public enum ToolChoice: Sendable, Equatable {
    case auto
    case none
    case required
    case named(String)
}

public struct ChatRequest: Sendable {
    public var model: String
    public var messages: [ChatMessage]
    public var tools: [ToolSpec]
    public var toolChoice: ToolChoice
    public var stream: Bool
    /// Anthropic requires a limit; OpenAI-compatible servers get one only when it is set.
    public var maxTokens: Int?
    /// The server's grammar shapes every reply into one call of a listed tool or a final answer
    /// (see `ConstrainedCalls`), for models that cannot call tools on their own.
    public var constrained: Bool

    public init(
        model: String, messages: [ChatMessage], tools: [ToolSpec], toolChoice: ToolChoice = .auto, stream: Bool = true, maxTokens: Int? = nil,
        constrained: Bool = false
    ) {
        self.model = model
        self.messages = messages
        self.tools = tools
        self.toolChoice = toolChoice
        self.stream = stream
        self.maxTokens = maxTokens
        self.constrained = constrained
    }
}

/// Token counts as the server reported them (nil when it did not).
public struct Usage: Sendable, Equatable {
    /// The whole prompt sent, cached part included.
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt tokens the server took from its cache instead of processing them again (OpenAI's
    /// `prompt_tokens_details.cached_tokens`, Anthropic's `cache_read_input_tokens`); nil when it did not say.
    public var cachedPromptTokens: Int?
    public var totalTokens: Int { promptTokens + completionTokens }

    public init(promptTokens: Int, completionTokens: Int, cachedPromptTokens: Int? = nil) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedPromptTokens = cachedPromptTokens
    }
}

/// How fast the server read the prompt and generated the answer, as llama-server reports it
/// (`timings`); other servers send none.
public struct Timings: Sendable, Equatable {
    public var promptTokens: Int
    public var promptMilliseconds: Double
    public var generatedTokens: Int
    public var generationMilliseconds: Double

    public init(promptTokens: Int, promptMilliseconds: Double, generatedTokens: Int, generationMilliseconds: Double) {
        self.promptTokens = promptTokens
        self.promptMilliseconds = promptMilliseconds
        self.generatedTokens = generatedTokens
        self.generationMilliseconds = generationMilliseconds
    }
}

/// The model's answer to one request.
public struct ChatResponse: Sendable, Equatable {
    public var text: String
    public var toolCalls: [ToolCall]
    /// finish_reason (OpenAI) or stop_reason (Anthropic), as sent.
    public var finishReason: String?
    public var usage: Usage?
    public var timings: Timings?
    /// The reasoning the server split off (`reasoning_content`, or `reasoning`): models sometimes
    /// write their calls there.
    public var reasoning: String

    public init(text: String, toolCalls: [ToolCall], finishReason: String?, usage: Usage?, timings: Timings? = nil, reasoning: String = "") {
        self.text = text
        self.toolCalls = toolCalls
        self.finishReason = finishReason
        self.usage = usage
        self.timings = timings
        self.reasoning = reasoning
    }

    /// The reply stopped at a token limit (max_tokens, or the server's context filled up).
    public var cutAtLimit: Bool { finishReason == "length" || finishReason == "max_tokens" }

    /// The finish reason of an answer toolhost stopped reading (a StreamHandler said `.stop`).
    public static let cutByHost = "cut_by_toolhost"
}

/// What a streaming response shows while it arrives (for progress lines and live checks).
public enum StreamEvent: Sendable, Equatable {
    case text(String)
    case toolCall(name: String)
    /// The attempt failed and a new one starts: forget what the failed one streamed.
    case retrying(attempt: Int, reason: String)
}

/// What the listener wants after a streamed piece: more, or the generation cut here.
public enum StreamDecision: Sendable {
    case proceed
    /// Stop reading: the answer is what arrived so far, with finish reason "cut_by_toolhost".
    case stop
}

/// Hears each piece of a streaming answer as it arrives.
public typealias StreamHandler = @Sendable (StreamEvent) -> StreamDecision

/// A model endpoint: one request in, one complete answer out, whatever the wire format.
public protocol ModelClient: Sendable {
    var endpoint: Endpoint { get }
    func complete(_ request: ChatRequest, onEvent: @escaping StreamHandler) async throws -> ChatResponse
    /// The model ids the server lists.
    func listModels() async throws -> [String]
    func close() async
}
