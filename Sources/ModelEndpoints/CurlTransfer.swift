import CLibCurl
import Foundation

/// TLS and routing choices for the endpoint's connections, beside what curl reads from the
/// environment itself (`http_proxy`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`; `HTTP_PROXY` too).
public struct ConnectionOptions: Sendable, Equatable {
    /// A CA bundle to trust instead of the system's (`--cacert`; else `CURL_CA_BUNDLE` or `SSL_CERT_FILE`).
    public var caBundle: String?
    /// Skip certificate checks (`--insecure`): only ever when asked, and said on stderr.
    public var insecure: Bool
    /// Talk HTTP over this unix socket instead of TCP (`unix:/path` and `http+unix://` endpoints).
    public var unixSocket: String?

    public init(caBundle: String? = nil, insecure: Bool = false, unixSocket: String? = nil) {
        self.caBundle = caBundle
        self.insecure = insecure
        self.unixSocket = unixSocket
    }
}

/// One HTTP request through libcurl's easy interface, performed on a thread of its own. The body
/// arrives through curl's write callback into a bounded queue: when the reader falls behind, the
/// callback waits, which stalls the transfer and lets TCP push back on the server. Cancelling the
/// reading task aborts the transfer at the next callback.
final class CurlTransfer: @unchecked Sendable {
    struct Request {
        var url: URL
        var headers: [(String, String)]
        var body: Data?
        var policy: TransportPolicy
        var options: ConnectionOptions
    }

    /// How curl failed: its code and its own words (`curl: (7) Failed to connect to …`).
    struct Failure: Error, CustomStringConvertible {
        let code: CURLcode
        let message: String
        /// Whether any part of an answer had arrived.
        let answered: Bool
        /// Whether the connection was up (a timeout then means silence, not no server).
        let connected: Bool
        /// Whether what could not be reached was a proxy rather than the server.
        var atProxy = false
        var description: String { "curl: (\(code.rawValue)) \(message)" }
    }

    /// The queue's limit: past it, the transfer waits for the reader.
    static let bufferLimit = 1 << 20
    private static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK

    private let request: Request
    // Everything below is guarded by `condition`.
    private let condition = NSCondition()
    private var chunks: [[UInt8]] = []
    private var buffered = 0
    private var finished = false
    private var failure: (any Error)?
    private var cancelled = false
    /// When the reader let go of the transfer; bytes after it are dropped.
    private var released: ContinuousClock.Instant?
    private var drained = 0
    private var status: Int?
    private var headers: [(String, String)] = []
    private var headWaiter: CheckedContinuation<(status: Int, headers: [(String, String)]), any Error>?
    private var bodyWaiter: CheckedContinuation<[UInt8]?, any Error>?

    init(_ request: Request) { self.request = request }

    /// Starts the transfer and waits for the answer's status and headers.
    func start() async throws -> (status: Int, headers: [(String, String)]) {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                condition.lock()
                headWaiter = continuation
                condition.unlock()
                let retained = Unmanaged.passRetained(self)
                let thread = Thread { retained.takeRetainedValue().perform() }
                thread.name = "toolhost-curl"
                thread.start()
            }
        } onCancel: {
            cancel()
        }
    }

    /// The next piece of the body, or nil at its end.
    func next() async throws -> [UInt8]? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                condition.lock()
                defer { condition.unlock() }
                if !chunks.isEmpty {
                    let chunk = chunks.removeFirst()
                    buffered -= chunk.count
                    condition.broadcast()
                    continuation.resume(returning: chunk)
                } else if cancelled {
                    continuation.resume(throwing: CancellationError())
                } else if finished {
                    if let failure { continuation.resume(throwing: failure) } else { continuation.resume(returning: nil) }
                } else {
                    bodyWaiter = continuation
                }
            }
        } onCancel: {
            cancel()
        }
    }

    /// The reader is done. curl may read the little that is left (a stream's closing chunk after
    /// `[DONE]`) so that its connection can serve the next request; more than `drainLimit` bytes
    /// or `drainTime` of waiting aborts the transfer instead.
    func release() {
        condition.lock()
        defer { condition.unlock() }
        guard released == nil else { return }
        released = .now
        chunks = []
        buffered = 0
        condition.broadcast()
    }

    static let drainLimit = 1 << 16
    static let drainTime = Duration.seconds(1)

    /// Aborts the transfer: the waiting callback returns at once, the next progress callback stops curl.
    func cancel() {
        condition.lock()
        defer { condition.unlock() }
        cancelled = true
        condition.broadcast()
        headWaiter?.resume(throwing: CancellationError())
        headWaiter = nil
        bodyWaiter?.resume(throwing: CancellationError())
        bodyWaiter = nil
    }

    // MARK: The transfer thread

    private func perform() {
        _ = Self.initialized
        guard let handle = IdleHandles.shared.take() else {
            finish(Failure(code: CURLE_FAILED_INIT, message: "curl_easy_init failed", answered: false, connected: false), handle: nil)
            return
        }
        defer { IdleHandles.shared.put(handle) }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        var list: UnsafeMutablePointer<curl_slist>?
        for (name, value) in request.headers { list = curl_slist_append(list, "\(name): \(value)") }
        if request.body != nil { list = curl_slist_append(list, "Content-Type: application/json") }
        // curl adds "Expect: 100-continue" to large POSTs: a round trip for nothing here.
        list = curl_slist_append(list, "Expect:")
        defer { curl_slist_free_all(list) }
        let context = Unmanaged.passUnretained(self).toOpaque()
        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errors in
            th_setopt_string(handle, CURLOPT_URL, request.url.absoluteString)
            th_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
            th_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errors.baseAddress)
            th_setopt_pointer(handle, CURLOPT_HTTPHEADER, list)
            th_setopt_string(handle, CURLOPT_ACCEPT_ENCODING, "")
            th_setopt_long(handle, CURLOPT_CONNECTTIMEOUT, request.policy.connectTimeout)
            // The longest silence: less than a byte a second for that long ends the transfer.
            th_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1)
            th_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, request.policy.readTimeout)
            if let body = request.body {
                th_setopt_long(handle, CURLOPT_POSTFIELDSIZE, body.count)
                _ = body.withUnsafeBytes { th_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: $0.baseAddress)) }
            }
            if let socket = request.options.unixSocket { th_setopt_string(handle, CURLOPT_UNIX_SOCKET_PATH, socket) }
            let environment = ProcessInfo.processInfo.environment
            // curl reads only the lower-case http_proxy, a defence for CGI programs ("httpoxy")
            // that toolhost is not; users set HTTP_PROXY beside HTTPS_PROXY and expect both to
            // work. NO_PROXY still applies to a proxy set this way.
            if request.url.scheme == "http", environment["http_proxy"] == nil, let proxy = environment["HTTP_PROXY"], !proxy.isEmpty {
                th_setopt_string(handle, CURLOPT_PROXY, proxy)
            }
            if let bundle = request.options.caBundle ?? environment["CURL_CA_BUNDLE"] ?? environment["SSL_CERT_FILE"] {
                th_setopt_string(handle, CURLOPT_CAINFO, bundle)
            }
            if request.options.insecure {
                th_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 0)
                th_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 0)
            }
            th_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION) { data, size, count, context in
                Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue().received(data, size * count)
            }
            th_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
            th_setopt_data_callback(handle, CURLOPT_HEADERFUNCTION) { data, size, count, context in
                Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue().header(data, size * count)
            }
            th_setopt_pointer(handle, CURLOPT_HEADERDATA, context)
            th_setopt_long(handle, CURLOPT_NOPROGRESS, 0)
            th_setopt_progress_callback(handle) { context, _, _, _, _ in
                Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue().shouldAbort ? 1 : 0
            }
            th_setopt_pointer(handle, CURLOPT_XFERINFODATA, context)
            currentHandle = handle
            return curl_easy_perform(handle)
        }
        guard code != CURLE_OK else { return finish(nil, handle: handle) }
        var connectTime: curl_off_t = 0
        th_getinfo_off(handle, CURLINFO_CONNECT_TIME_T, &connectTime)
        let written = errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        let message = written.isEmpty ? String(cString: curl_easy_strerror(code)) : String(decoding: written, as: UTF8.self)
        condition.lock()
        let answered = status != nil
        condition.unlock()
        var failure = Failure(code: code, message: message, answered: answered, connected: connectTime > 0)
        // libcurl 7.88 has no CURLINFO_USED_PROXY; its message names the host and port it could
        // not reach ("Failed to connect to H port P after …"), and a proxy's are not the server's.
        let server = " \(request.url.host ?? "") port \(request.url.port ?? (request.url.scheme == "https" ? 443 : 80)) "
        failure.atProxy = request.options.unixSocket == nil
            && (message.lowercased().contains("proxy") || (message.contains(" port ") && !message.contains(server)))
        finish(failure, handle: handle)
    }

    /// The handle, for the callbacks on the transfer thread.
    private var currentHandle: UnsafeMutableRawPointer?

    /// Whether curl should stop: cancelled, or released and still going after `drainTime`.
    private var shouldAbort: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelled || released.map { ContinuousClock.now - $0 > Self.drainTime } ?? false
    }

    private func header(_ data: UnsafeMutablePointer<CChar>?, _ count: Int) -> Int {
        guard let data else { return count }
        let line = String(decoding: UnsafeRawBufferPointer(start: data, count: count), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        condition.lock()
        defer { condition.unlock() }
        if line.hasPrefix("HTTP/") {
            // A new response (after a proxy's CONNECT or a 100 Continue): its headers start afresh.
            headers = []
        } else if let colon = line.firstIndex(of: ":") {
            headers.append((line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        return count
    }

    private func received(_ data: UnsafeMutablePointer<CChar>?, _ count: Int) -> Int {
        condition.lock()
        defer { condition.unlock() }
        announceHead()
        while buffered >= Self.bufferLimit && !cancelled && released == nil { condition.wait() }
        guard !cancelled, let data else { return 0 }
        if released != nil {
            drained += count
            return drained > Self.drainLimit ? 0 : count
        }
        let chunk = Array(UnsafeRawBufferPointer(start: data, count: count).bindMemory(to: UInt8.self))
        if let waiter = bodyWaiter {
            bodyWaiter = nil
            waiter.resume(returning: chunk)
        } else {
            chunks.append(chunk)
            buffered += count
        }
        return count
    }

    /// Hands the status and headers to `start` once, when the body begins or the transfer ends.
    /// Called with the lock held.
    private func announceHead() {
        guard status == nil, let handle = currentHandle else { return }
        var code = 0
        th_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &code)
        status = code
        headWaiter?.resume(returning: (code, headers))
        headWaiter = nil
    }

    private func finish(_ error: (any Error)?, handle: UnsafeMutableRawPointer?) {
        condition.lock()
        defer { condition.unlock() }
        finished = true
        failure = cancelled ? CancellationError() : error
        if let failure {
            headWaiter?.resume(throwing: failure)
            headWaiter = nil
        } else if handle != nil {
            announceHead()
        }
        if let waiter = bodyWaiter {
            bodyWaiter = nil
            if let failure { waiter.resume(throwing: failure) } else { waiter.resume(returning: nil) }
        }
        currentHandle = nil
    }
}

/// Easy handles between transfers. A handle keeps its open connections, DNS answers and TLS
/// sessions across `curl_easy_reset`, so the next turn to the same server skips the connect and
/// the TLS handshake. (A share object could pool connections across handles, but libcurl documents
/// sharing its connection cache between threads as unsafe.) curl matches a kept connection on
/// host, port, socket, proxy and TLS settings, so a request never rides a connection made for
/// other settings.
private final class IdleHandles: @unchecked Sendable {
    static let shared = IdleHandles()
    /// Enough for a run's requests and a probe's concurrent ones; more are cleaned up.
    private static let limit = 4
    private let lock = NSLock()
    private var handles: [UnsafeMutableRawPointer] = []

    func take() -> UnsafeMutableRawPointer? {
        lock.withLock { handles.popLast() } ?? curl_easy_init()
    }

    func put(_ handle: UnsafeMutableRawPointer) {
        curl_easy_reset(handle)
        let kept = lock.withLock {
            guard handles.count < Self.limit else { return false }
            handles.append(handle)
            return true
        }
        if !kept { curl_easy_cleanup(handle) }
    }
}

/// An answer's body as it arrives, piece by piece.
struct ResponseBody: AsyncSequence, Sendable {
    typealias Element = [UInt8]
    let transfer: CurlTransfer

    struct AsyncIterator: AsyncIteratorProtocol {
        let transfer: CurlTransfer
        mutating func next() async throws -> [UInt8]? { try await transfer.next() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(transfer: transfer) }

    /// The whole body, refused past `limit` bytes.
    func collect(upTo limit: Int) async throws -> [UInt8] {
        var all: [UInt8] = []
        for try await piece in self {
            all += piece
            if all.count > limit {
                transfer.cancel()
                throw EndpointError.badResponse("the answer", "it is over \(limit) bytes")
            }
        }
        return all
    }
}
