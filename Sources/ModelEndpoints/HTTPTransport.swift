import CLibCurl
import Foundation
import JSONCore

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
        if let failure = error as? CurlTransfer.Failure, failure.code == CURLE_OPERATION_TIMEDOUT { return failure }
        return StreamCut()
    }
}

/// JSON over HTTP, through libcurl, with the retries every model server needs. Each attempt's
/// body goes to a decoder; a decoder that finds the stream cut throws `StreamCut` and the request
/// is sent again.
final class HTTPTransport: Sendable {
    let display: String
    let headers: [(String, String)]
    let policy: TransportPolicy
    let options: ConnectionOptions

    init(display: String, headers: [(String, String)], policy: TransportPolicy, options: ConnectionOptions = ConnectionOptions()) {
        self.display = display
        self.headers = headers
        self.policy = policy
        self.options = options
    }

    func send<T: Sendable>(
        _ url: URL, body: Data?, onEvent: StreamHandler,
        decode: (ResponseBody) async throws -> T
    ) async throws -> T {
        let request = CurlTransfer.Request(url: url, headers: headers, body: body, policy: policy, options: options)
        var parseFailures = 0
        for attempt in 1...policy.attempts {
            let retryReason: String
            var wait = policy.backoff * (1 << (attempt - 1))
            do {
                let transfer = CurlTransfer(request)
                defer { transfer.release() }
                let (status, responseHeaders) = try await transfer.start()
                let body = ResponseBody(transfer: transfer)
                if (200..<300).contains(status) {
                    do {
                        return try await decode(body)
                    } catch is StreamCut {
                        if attempt == policy.attempts { throw EndpointError.cutStream(url.absoluteString, attempts: attempt) }
                        retryReason = "the stream was cut"
                    }
                } else {
                    let errorBody = try? await body.collect(upTo: 1 << 16)
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
                    if let after = responseHeaders.first(where: { $0.0 == "retry-after" }).flatMap({ Int($0.1) }) {
                        wait = .seconds(min(after, 60))
                    }
                    retryReason = "HTTP \(status)\(message.isEmpty ? "" : ": \(message.prefix(200))")"
                }
            } catch let error as EndpointError {
                throw error
            } catch let failure as CurlTransfer.Failure where Self.closedEarly(failure) && attempt < policy.attempts {
                // llama-server closes a kept-alive connection after its 5th request, and servers
                // drop connections under load: nothing was answered, so sending again is safe.
                retryReason = "the server closed the connection before answering (\(failure))"
                wait = .zero
            } catch {
                throw mapped(error)
            }
            _ = onEvent(.retrying(attempt: attempt + 1, reason: retryReason))
            try await Task.sleep(for: wait)
        }
        preconditionFailure("the loop returns or throws on its last attempt")
    }

    /// Connection closed, reset or empty before any answer.
    private static func closedEarly(_ failure: CurlTransfer.Failure) -> Bool {
        !failure.answered && [CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_PARTIAL_FILE].contains(failure.code)
    }

    /// curl's errors in words that say what to do, curl's own words kept for searching.
    private func mapped(_ error: any Error) -> any Error {
        guard let failure = error as? CurlTransfer.Failure else { return error }
        switch failure.code {
        case CURLE_COULDNT_CONNECT where !failure.atProxy:
            return EndpointError.notListening(display)
        case CURLE_OPERATION_TIMEDOUT:
            return failure.connected
                ? EndpointError.readTimeout(display, seconds: policy.readTimeout) : EndpointError.connectTimeout(display, seconds: policy.connectTimeout)
        case CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_PARTIAL_FILE:
            return EndpointError.cutStream(display, attempts: policy.attempts)
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_PROXY:
            return EndpointError.transport(
                display, failure.description + ". The proxy comes from http_proxy, HTTP_PROXY, HTTPS_PROXY or ALL_PROXY: fix it, or list the host in NO_PROXY.")
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE:
            return EndpointError.transport(
                display, failure.description + ". Trust the server's CA with --cacert FILE (or CURL_CA_BUNDLE); --insecure skips the check and exposes the key.")
        default:
            return EndpointError.transport(display, failure.description)
        }
    }

    /// The server's own error text: OpenAI and llama-server `{"error":{"message"}}`, Anthropic
    /// `{"error":{"type","message"}}`, or the body itself when it is short.
    static func errorMessage(_ bytes: [UInt8]?) -> String {
        guard let bytes else { return "" }
        let data = Data(bytes)
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
    func knownError(status: Int, body: [UInt8]?, message: String) -> EndpointError? {
        let error = body.flatMap { try? JSONValue.parse(Data($0)) }?["error"]
        let type = error?["type"]?.stringValue ?? error?["code"]?.stringValue
        if EndpointError.saysContextOverflow(type: type, message: message) {
            return .contextOverflow(message: message, promptTokens: error?["n_prompt_tokens"]?.intValue, contextSize: error?["n_ctx"]?.intValue)
        }
        if status == 500 && message.contains("requires --jinja") { return .needsJinja(display) }
        return nil
    }

    /// A whole (non-streamed) body as JSON.
    func json(_ body: ResponseBody, url: URL) async throws -> JSONValue {
        let bytes: [UInt8]
        do {
            bytes = try await body.collect(upTo: 64 << 20)
        } catch {
            throw StreamCut.unlessFatal(error)
        }
        do {
            return try JSONValue.parse(Data(bytes))
        } catch {
            let text = String(decoding: bytes, as: UTF8.self)
            throw EndpointError.badResponse(url.absoluteString, "the body is not JSON (\(text.prefix(120).debugDescription))")
        }
    }
}
