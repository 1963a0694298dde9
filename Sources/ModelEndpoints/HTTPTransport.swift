import AsyncHTTPClient
import Foundation
import JSONCore
import NIOCore
import NIOHTTP1

/// How long to wait, and how often to try again.
public struct TransportPolicy: Sendable {
    public var connectTimeout: Int
    /// The longest silence between two bytes of an answer.
    public var readTimeout: Int
    /// Attempts per request for 429, 5xx and cut streams.
    public var attempts: Int
    /// The first pause between attempts; it doubles each time (Retry-After wins when the server sends it).
    public var backoff: Duration

    public init(connectTimeout: Int = 10, readTimeout: Int = 300, attempts: Int = 4, backoff: Duration = .milliseconds(250)) {
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
    }
}

/// The answer ended early: the attempt is retried.
struct StreamCut: Error {
    /// An error met while reading a body: the connection dropping mid-answer (closed, reset, an
    /// unexpected EOF) is a cut; our own verdicts, timeouts and cancellation stay what they are.
    static func unlessFatal(_ error: any Error) -> any Error {
        if error is EndpointError || error is CancellationError { return error }
        if let error = error as? HTTPClientError, error == .readTimeout || error == .cancelled || error == .deadlineExceeded { return error }
        return StreamCut()
    }
}

/// JSON over HTTP with the retries every model server needs. Each attempt's body goes to a
/// decoder; a decoder that finds the stream cut throws `StreamCut` and the request is sent again.
final class HTTPTransport: Sendable {
    let client: HTTPClient
    let display: String
    let headers: [(String, String)]
    let policy: TransportPolicy

    init(display: String, headers: [(String, String)], policy: TransportPolicy) {
        self.display = display
        self.headers = headers
        self.policy = policy
        var configuration = HTTPClient.Configuration(
            timeout: .init(connect: .seconds(Int64(policy.connectTimeout)), read: .seconds(Int64(policy.readTimeout))))
        configuration.connectionPool.retryConnectionEstablishment = false
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func shutdown() async {
        try? await client.shutdown()
    }

    func send<T: Sendable>(
        _ url: URL, body: Data?, onEvent: StreamHandler,
        decode: (HTTPClientResponse.Body) async throws -> T
    ) async throws -> T {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = body == nil ? .GET : .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        var parseFailures = 0
        for attempt in 1...policy.attempts {
            let retryReason: String
            var wait = policy.backoff * (1 << (attempt - 1))
            do {
                let response = try await client.execute(request, deadline: .distantFuture)
                let status = Int(response.status.code)
                if (200..<300).contains(status) {
                    do {
                        return try await decode(response.body)
                    } catch is StreamCut {
                        if attempt == policy.attempts { throw EndpointError.cutStream(url.absoluteString, attempts: attempt) }
                        retryReason = "the stream was cut"
                    }
                } else {
                    let errorBody = try? await response.body.collect(upTo: 1 << 16)
                    let message = Self.errorMessage(errorBody)
                    if let known = knownError(status: status, body: errorBody, message: message) { throw known }
                    if status == 500 && message.contains("Failed to parse input") {
                        // llama-server's parser refused the model's output; sampling again often helps once.
                        parseFailures += 1
                        if parseFailures > 1 || attempt == policy.attempts {
                            throw EndpointError.unparsedOutput(message: message, attempts: attempt)
                        }
                    } else if !(status == 429 || status >= 500) || attempt == policy.attempts || message.contains("json.exception") {
                        throw EndpointError.http(status: status, url: url.absoluteString, message: message, attempts: attempt)
                    }
                    if let after = response.headers.first(name: "retry-after").flatMap(Int.init) {
                        wait = .seconds(min(after, 60))
                    }
                    retryReason = "HTTP \(status)\(message.isEmpty ? "" : ": \(message.prefix(200))")"
                }
            } catch let error as EndpointError {
                throw error
            } catch let error as HTTPClientError where error == .remoteConnectionClosed && attempt < policy.attempts {
                retryReason = "the server closed the connection"
            } catch let error as ChannelError where error == .ioOnClosedChannel && attempt < policy.attempts {
                // llama-server closes a kept-alive connection after its 5th request; the next
                // request can find it closed before anything was sent. Sending again is safe.
                retryReason = "the server had closed the kept-alive connection"
                wait = .zero
            } catch {
                throw mapped(error)
            }
            _ = onEvent(.retrying(attempt: attempt + 1, reason: retryReason))
            try await Task.sleep(for: wait)
        }
        preconditionFailure("the loop returns or throws on its last attempt")
    }

    /// AsyncHTTPClient and NIO errors in words that say what to do.
    private func mapped(_ error: any Error) -> any Error {
        if error is CancellationError { return error }
        if let error = error as? HTTPClientError {
            switch error {
            case .cancelled: return CancellationError()
            case .readTimeout: return EndpointError.readTimeout(display, seconds: policy.readTimeout)
            case .connectTimeout: return EndpointError.connectTimeout(display, seconds: policy.connectTimeout)
            case .remoteConnectionClosed: return EndpointError.cutStream(display, attempts: policy.attempts)
            default: break
            }
        }
        let text = String(describing: error)
        if text.contains("refused") || text.contains("ECONNREFUSED") || text.contains("errno: 111") {
            return EndpointError.notListening(display)
        }
        return EndpointError.transport(display, text)
    }

    /// The server's own error text: OpenAI and llama-server `{"error":{"message"}}`, Anthropic
    /// `{"error":{"type","message"}}`, or the body itself when it is short.
    static func errorMessage(_ buffer: ByteBuffer?) -> String {
        guard let buffer else { return "" }
        let data = Data(buffer.readableBytesView)
        if let json = try? JSONValue.parse(data) {
            if let message = json["error"]?["message"]?.stringValue { return message }
            if let message = json["error"]?.stringValue ?? json["message"]?.stringValue { return message }
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.count > 300 ? String(text.prefix(300)) + "…" : text
    }

    /// Error bodies that retrying cannot help and that deserve their own advice. llama-server
    /// answers some request errors with 500 (a missing --jinja, a body it cannot parse), which
    /// would otherwise be retried as server faults.
    func knownError(status: Int, body: ByteBuffer?, message: String) -> EndpointError? {
        let error = body.flatMap { try? JSONValue.parse(Data($0.readableBytesView)) }?["error"]
        let type = error?["type"]?.stringValue ?? error?["code"]?.stringValue
        if type == "exceed_context_size_error" || type == "context_length_exceeded" || message.contains("exceeds the available context size") {
            return .contextOverflow(message: message, promptTokens: error?["n_prompt_tokens"]?.intValue, contextSize: error?["n_ctx"]?.intValue)
        }
        if status == 500 && message.contains("requires --jinja") { return .needsJinja(display) }
        return nil
    }

    /// A whole (non-streamed) body as JSON.
    func json(_ body: HTTPClientResponse.Body, url: URL) async throws -> JSONValue {
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: 64 << 20)
        } catch {
            throw StreamCut.unlessFatal(error)
        }
        do {
            return try JSONValue.parse(Data(buffer.readableBytesView))
        } catch {
            let text = String(buffer: buffer)
            throw EndpointError.badResponse(url.absoluteString, "the body is not JSON (\(text.prefix(120).debugDescription))")
        }
    }
}
