/// Why talking to a model endpoint failed, worded for the person running toolhost.
public enum EndpointError: Error, CustomStringConvertible, Sendable, Equatable {
    case badEndpoint(String, String)
    case notListening(String)
    case connectTimeout(String, seconds: Int)
    case readTimeout(String, seconds: Int)
    /// An HTTP error status; `message` is the server's own words when it sent any.
    case http(status: Int, url: String, message: String, attempts: Int)
    /// llama-server's PEG parser refused the model's output (HTTP 500 "Failed to parse input").
    case unparsedOutput(message: String, attempts: Int)
    case cutStream(String, attempts: Int)
    case badStream(String, String)
    case badResponse(String, String)
    case noModel(String)
    case transport(String, String)
    /// The conversation no longer fits the server's context window (llama-server's
    /// exceed_context_size_error, OpenAI's context_length_exceeded).
    case contextOverflow(message: String, promptTokens: Int?, contextSize: Int?)
    /// llama-server runs without `--jinja` and refuses the `tools` field.
    case needsJinja(String)
    /// Constrained calls asked of an API that takes no grammar.
    case constrainUnsupported(String)

    /// Whether an error's type or words say the context overflowed: at request time
    /// (exceed_context_size_error, context_length_exceeded), or mid-generation, where llama-server
    /// ends the stream (or answers 500) with "Context size has been exceeded."
    static func saysContextOverflow(type: String?, message: String) -> Bool {
        type == "exceed_context_size_error" || type == "context_length_exceeded"
            || message.contains("exceeds the available context size") || message.contains("Context size has been exceeded")
    }

    public var description: String {
        switch self {
        case .badEndpoint(let text, let why):
            return "cannot use '\(text)' as an endpoint: \(why). Pass host:port (localhost:8080), http://host:port/v1 or a full URL."
        case .notListening(let display):
            return "nothing listens at \(display): start llama-server (with --jinja for tool calls) or pass --endpoint"
        case .connectTimeout(let display, let seconds):
            return "no connection to \(display) within \(seconds) s: is the host reachable? Check --endpoint."
        case .readTimeout(let display, let seconds):
            return "\(display) sent nothing for \(seconds) s (read timeout): the model may be loading or the prompt too long; raise --read-timeout or check the server's log"
        case .http(let status, let url, let message, let attempts):
            let tried = attempts > 1 ? " after \(attempts) attempts" : ""
            var text = "HTTP \(status) from \(url)\(tried)"
            if !message.isEmpty { text += ": \(message)" }
            switch status {
            case 401, 403: text += ". The endpoint refused the credentials: set the key's variable (OPENAI_API_KEY, ANTHROPIC_API_KEY or the one --api-key-env names)."
            case 404: text += ". Is the path right? OpenAI-compatible servers answer at /v1/chat/completions, Anthropic at /v1/messages (see --api)."
            default: break
            }
            return text
        case .unparsedOutput(let message, let attempts):
            return "the server could not parse the model's output (HTTP 500 '\(message)', \(attempts) attempts): the model wrote a tool call its chat template does not expect; run llama-server with --jinja and the model's own template, or try another model"
        case .cutStream(let url, let attempts):
            return "the stream from \(url) ended before the answer was complete (\(attempts) attempts): the server closed the connection mid-answer; check its log"
        case .badStream(let url, let why):
            return "the stream from \(url) is not valid server-sent events: \(why). Is this an OpenAI-compatible or Anthropic endpoint? (--api)"
        case .badResponse(let url, let why):
            return "the answer from \(url) is not what the API promises: \(why)"
        case .noModel(let why):
            return "no model chosen: \(why)"
        case .transport(let display, let why):
            return "the request to \(display) failed: \(why)"
        case .contextOverflow(let message, let prompt, let context):
            let sizes = prompt.map { p in context.map { "\(p) prompt tokens for a context of \($0)" } ?? "\(p) prompt tokens" }
            return "the conversation no longer fits the model's context (\(sizes ?? message)): give llama-server a larger context (-c), or lower --max-tokens so the run stops sooner"
        case .needsJinja(let display):
            return "\(display) refuses tools: llama-server runs without --jinja. Restart it with --jinja, or use --constrain (the tools then go in the prompt and need no template)"
        case .constrainUnsupported(let display):
            return "\(display) speaks the Anthropic API, which takes no grammar: --constrain needs an OpenAI-compatible server that honours response_format json_schema (llama-server, vLLM)"
        }
    }
}
