public import Foundation

/// The two wire formats toolhost speaks.
public enum API: String, Sendable, CaseIterable, Codable {
    /// OpenAI-compatible chat completions: llama-server, vLLM, Ollama's /v1, LM Studio, OpenAI.
    case openai
    /// Anthropic Messages.
    case anthropic

    var standardPath: String { self == .openai ? "/chat/completions" : "/messages" }
    var keyVariable: String { self == .openai ? "OPENAI_API_KEY" : "ANTHROPIC_API_KEY" }
}

/// Where a model listens and how to talk to it.
public struct Endpoint: Sendable, Equatable {
    public let api: API
    /// Scheme, host and port, plus any prefix such as /v1: the chat and model paths hang off it.
    public let base: URL
    /// The URL chat requests go to.
    public let chatURL: URL
    public var modelsURL: URL { base.appendingPathComponent("models") }
    /// host:port (or unix:PATH), as the user would recognise it in an error.
    public let display: String
    /// The unix socket the server listens on, for `unix:` and `http+unix:` endpoints.
    public let unixSocket: String?
    /// The chat URL as a user could pass it back: `http+unix://%2Fpath.sock/v1/…` for a socket.
    public var address: String {
        guard let unixSocket else { return chatURL.absoluteString }
        return "http+unix://" + (unixSocket.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(["-", ".", "_"])) ?? unixSocket) + chatURL.path
    }

    /// Parses `localhost:8080`, `http://host:port`, `http://host:port/v1` or a full URL. No scheme
    /// means http; no path means the API's standard one. The API is `api` when given, else
    /// Anthropic for a path ending in /messages or Anthropic's host, else OpenAI. A server on a
    /// unix socket is `unix:/path/to.sock`, or `http+unix://%2Fpath%2Fto.sock/v1` with a path.
    public init(_ text: String, api: API? = nil) throws {
        var trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw EndpointError.badEndpoint(text, "it is empty") }
        guard !trimmed.contains(where: \.isWhitespace) else { throw EndpointError.badEndpoint(text, "it contains spaces") }
        var socket: String?
        if trimmed.hasPrefix("unix:") && !trimmed.hasPrefix("unix://") {
            socket = String(trimmed.dropFirst(5))
            trimmed = "http://localhost"
        } else if trimmed.hasPrefix("http+unix://") {
            let rest = trimmed.dropFirst(12)
            let host = rest.prefix { $0 != "/" }
            socket = String(host).removingPercentEncoding
            trimmed = "http://localhost" + rest.dropFirst(host.count)
        }
        if let socket, !socket.hasPrefix("/") {
            throw EndpointError.badEndpoint(text, "the socket path must be absolute, e.g. unix:/run/llama.sock or http+unix://%2Frun%2Fllama.sock/v1")
        }
        let withScheme = trimmed.contains("://") ? trimmed : "http://" + trimmed
        guard var parts = URLComponents(string: withScheme), let host = parts.host, !host.isEmpty else {
            throw EndpointError.badEndpoint(text, "it is not host:port or a URL")
        }
        guard parts.scheme == "http" || parts.scheme == "https" else {
            throw EndpointError.badEndpoint(text, "the scheme must be http or https")
        }
        var path = parts.path
        while path.hasSuffix("/") { path.removeLast() }
        let detected: API = api ?? ((path.hasSuffix("/messages") || host.hasSuffix("anthropic.com")) ? .anthropic : .openai)
        if path.hasSuffix(detected.standardPath) {
            path.removeLast(detected.standardPath.count)
        } else if let other = API.allCases.first(where: { $0 != detected && path.hasSuffix($0.standardPath) }) {
            throw EndpointError.badEndpoint(text, "its path is the \(other.rawValue) API's, but --api is \(detected.rawValue)")
        }
        if path.isEmpty { path = "/v1" }
        parts.path = path
        parts.query = nil
        guard let base = parts.url else { throw EndpointError.badEndpoint(text, "it is not a valid URL") }
        self.api = detected
        self.base = base
        self.chatURL = base.appendingPathComponent(String(detected.standardPath.dropFirst()))
        self.display = socket.map { "unix:" + $0 } ?? parts.port.map { "\(host):\($0)" } ?? host
        self.unixSocket = socket
    }

    /// The variable the key is read from: `--api-key-env`, else the API's usual one.
    public func keyVariable(override: String?) -> String { override ?? api.keyVariable }
}
