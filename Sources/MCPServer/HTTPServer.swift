import Foundation
import HTTPTypes
import Hummingbird
import JSONCore
public import Logging
import NIOFoundationEssentialsCompat
import Sandbox
public import Tools

/// How `toolhost serve --http` listens and what it lets in.
public struct HTTPServeOptions: Sendable {
    public var host: String
    public var port: Int
    /// Required as `Authorization: Bearer TOKEN` when set.
    public var token: String?
    /// A session unused this long is closed (its background processes killed).
    public var idleTimeout: Duration
    /// Larger request bodies get 413.
    public var maxBodyBytes: Int
    /// On SIGTERM, running commands get this long before they are killed.
    public var shutdownGrace: Duration
    /// Sessions alive at once; see `HTTPSessions.admit`.
    public var maxSessions = 64
    /// New sessions kept prepared for clients to come (`WarmSessions`); 0 makes each when asked.
    public var warmSessions = 0
    /// Connections open at once; more wait in the listen queue.
    public var maxConnections = 512
    /// How long a client may take to send a request's headers, and again its body.
    public var requestTimeout: Duration = .seconds(30)
    /// Session names any client may join by sending `Toolhost-Session: NAME` (`--shared-session`):
    /// for a single trusted operator. Every other session is reached only by its minted handle.
    public var sharedSessions: Set<String> = []

    public init(host: String, port: Int, token: String?, idleTimeout: Duration, maxBodyBytes: Int, shutdownGrace: Duration) {
        self.host = host
        self.port = port
        self.token = token
        self.idleTimeout = idleTimeout
        self.maxBodyBytes = maxBodyBytes
        self.shutdownGrace = shutdownGrace
    }

    /// Whether the address only takes connections from this machine: every address the host name
    /// resolves to (and so whichever one is bound) is in 127.0.0.0/8 or is ::1. A name is never
    /// judged by its text: "127.evil.example" may resolve anywhere.
    public var isLoopback: Bool {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let list else { return false }
        defer { freeaddrinfo(list) }
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            guard let address = current.pointee.ai_addr, Self.isLoopback(address) else { return false }
            entry = current.pointee.ai_next
        }
        return true
    }

    static func isLoopback(_ address: UnsafeMutablePointer<sockaddr>) -> Bool {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) >> 24 == 127 }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                let bytes = withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                let mappedV4 = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
                return bytes == Array(repeating: 0, count: 15) + [1] || (mappedV4 && bytes[12] == 127)
            }
        default:
            return false
        }
    }
}

/// MCP over Streamable HTTP at /mcp, behind Hummingbird.
///
/// No client reaches another's shell by accident or by naming it. Each toolhost session has a
/// handle the server mints (`th-` and 128 random bits, SEP-2567's explicit state handle), sent in
/// the `Toolhost-Session` response header. Handshake-era clients (2025-11-25 and before)
/// `initialize` and get an `Mcp-Session-Id` and a session of their own. 2026-07-28 clients send
/// self-contained requests: a `tools/call` without a handle gets a new shell, and its result says
/// how to keep it (the handle in `_meta["toolhost/session"]` and a closing note): send it back as
/// the `Toolhost-Session` header, or as a `session` argument of the call where a client cannot set
/// headers. A handle whose session was saved (before a restart) finds its state again; any other
/// name is refused unless the operator shared it (`--shared-session`).
///
/// A request is answered as an SSE stream when the client accepts one (its progress and log
/// notifications, keep-alive comments while it runs, then the answer), else as one JSON body.
public struct ToolHTTPServer: Sendable {
    public typealias SessionFactory = @Sendable (_ name: String) async throws -> Session

    let options: HTTPServeOptions
    let sessions: HTTPSessions
    let logger: Logger
    /// Comments sent on an open SSE stream so proxies and clients do not take a long call for a dead one.
    static let keepAlive: Duration = .seconds(15)

    /// - Parameters:
    ///   - makeSession: opens (or restores) the toolhost session of a handle or shared name.
    ///   - hasSaved: whether a session of that name was saved before (a handle from before a restart).
    public init(
        options: HTTPServeOptions, registry: ToolRegistry, version: String, logger: Logger, makeSession: @escaping SessionFactory,
        hasSaved: @escaping @Sendable (_ name: String) -> Bool = { _ in false }
    ) {
        self.options = options
        self.logger = logger
        sessions = HTTPSessions(
            registry: registry, version: version, logger: logger, makeSession: makeSession, hasSaved: hasSaved, maxSessions: options.maxSessions,
            shared: options.sharedSessions, warmSessions: options.warmSessions)
    }

    /// Serves until SIGTERM, SIGINT or SIGHUP, then gives running commands `shutdownGrace`, kills
    /// what is left (its streams end) and closes every session (their state is already saved);
    /// see `ServerLifecycle`.
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let router = Router()
        for method in [HTTPRequest.Method.post, .get, .delete] {
            router.on("/mcp", method: method) { request, _ in try await self.respond(to: request) }
        }
        let app = Application(
            router: router, server: options.serverBuilder(gate: ConnectionGate(limit: options.maxConnections)),
            configuration: .init(address: .hostname(options.host, port: options.port), availableConnectionsDelegate: options.connectionLimit),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? options.port) },
            logger: logger)
        await sessions.warmUp()
        try await ServerLifecycle.run(app: app, sessions: sessions, options: options, logger: logger)
    }

    private func respond(to request: Request) async throws -> Response {
        var request = request
        let started = ContinuousClock.now
        let method = request.method.rawValue
        func refuse(_ status: Int, _ text: String, extra: [String: String] = [:]) -> Response {
            log(method, nil, status: status, since: started)
            return Self.plain(status, text, extra: extra)
        }
        if let token = options.token, !Self.bearerMatches(request.headers[.authorization], token: token) {
            return refuse(
                401, "Unauthorized: send the token as 'Authorization: Bearer TOKEN' (the token the server was started with, --token-file or TOOLHOST_TOKEN).\n",
                extra: ["WWW-Authenticate": "Bearer"])
        }
        if let problem = originProblem(request) { return refuse(403, "Forbidden: \(problem)\n") }
        let sessionID = request.headers[.mcpSessionID]
        switch request.method {
        case .get:
            return refuse(405, "Method Not Allowed: this server opens no standalone SSE stream; each POST streams its own answer.\n", extra: ["Allow": "POST, DELETE"])
        case .delete:
            guard let sessionID else { return refuse(400, "Bad Request: DELETE needs the Mcp-Session-Id header\n") }
            guard await sessions.close(sessionID) else { return refuse(404, "Not Found: no session \(sessionID) (it expired or was closed)\n") }
            log(method, "close session", status: 200, since: started)
            return Response(status: .ok)
        default:
            break
        }
        // The media type itself, not a substring: `text/plain;application/json` is a "simple" type a
        // web page may send cross-origin without asking first.
        let mediaType = request.headers[.contentType]?.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first
        guard mediaType?.trimmingCharacters(in: .whitespaces).lowercased() == "application/json" else {
            return refuse(415, "Unsupported Media Type: send the JSON-RPC message as Content-Type: application/json\n")
        }
        let accept = request.headers[.accept]?.lowercased() ?? "*/*"
        let streams = accept.contains("text/event-stream") || accept.contains("*/*")
        guard streams || accept.contains("application/json") else {
            return refuse(406, "Not Acceptable: accept application/json or text/event-stream\n")
        }
        let body: Data
        do {
            body = Data(buffer: try await request.collectBody(upTo: options.maxBodyBytes))
        } catch {
            return refuse(413, "Payload Too Large: request bodies are limited to \(options.maxBodyBytes) bytes.\n")
        }
        let message = JSONRPC.classify(body)
        let what = Self.describe(message)
        if let stated = request.headers[.mcpProtocolVersion],
            !(MCPConnection.modernRevisions + MCPConnection.handshakeRevisions).contains(stated) {
            return jsonError(400, nil, JSONRPC.unsupportedProtocolVersion, "Unsupported MCP-Protocol-Version \(stated)", method, what, started)
        }

        if case .invalid(let reply) = message {
            log(method, what, status: 400, since: started)
            return Self.json(400, reply)
        }
        let route: HTTPSessions.Route
        switch await sessions.route(message, sessionID: sessionID, name: request.headers[.toolhostSession], headers: request.headers) {
        case .success(let found): route = found
        case .failure(let refusal):
            log(method, what, status: refusal.status, since: started)
            return Self.json(refusal.status, refusal.body, extra: refusal.extra)
        }
        var headers = HTTPFields()
        if let id = route.sessionID { headers[.mcpSessionID] = id }
        if let handle = route.handle { headers[.toolhostSession] = handle }
        // The call as the tools get it: a `session` argument, which named the handle, is gone.
        let routed = route.message
        // A session with a request running is never evicted to make room for another.
        let key = route.sessionID ?? route.handle
        if let key { await sessions.hold(key) }
        let isToolCall = routed.method == "tools/call"
        let release: @Sendable () async -> Void = { [sessions, isToolCall] in if let key { await sessions.release(key, afterToolCall: isToolCall) } }
        guard case .request(let id, _, _) = routed else {
            // Notifications and responses: act, then 202 with no body.
            await route.connection.receive(routed, sink: ReplySink(send: { _ in }))
            await release()
            log(method, what, status: 202, since: started)
            return Response(status: .accepted, headers: headers)
        }
        guard streams else {
            let reply = await Self.collect { await route.connection.receive(routed, sink: $0) }
            await release()
            log(method, what, status: 200, since: started)
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: reply)))
        }
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let (events, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        let alive = Task {
            while !Task.isCancelled {
                do { try await Task.sleep(for: Self.keepAlive) } catch { return }
                continuation.yield(ByteBuffer(string: ": keep-alive\n\n"))
            }
        }
        let connection = route.connection
        continuation.onTermination = { _ in alive.cancel() }
        let sink = ReplySink(
            send: { continuation.yield(ByteBuffer(string: "event: message\ndata: \(String(decoding: $0, as: UTF8.self))\n\n")) },
            finish: {
                continuation.finish()
                await release()
                self.log(method, what, status: 200, since: started)
            })
        await connection.receive(routed, sink: sink)
        guard route.sessionID == nil else {
            // An older client's disconnect is not a cancellation (the specification says so): its
            // call runs to its end.
            return Response(status: .ok, headers: headers, body: ResponseBody(asyncSequence: events))
        }
        // A 2026-07-28 client cancels by closing the stream: the call is cancelled the moment the
        // connection's inbound side closes, not at the next write.
        let requestBody = request.body
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await requestBody.consumeWithInboundCloseHandler { _ in
                for await event in events { try await writer.write(event) }
            } onInboundClosed: {
                Task { await connection.cancel(id) }
            }
            try await writer.finish(nil)
        })
    }

    private func jsonError(
        _ status: Int, _ id: JSONRPC.ID?, _ code: Int, _ message: String, _ method: String, _ what: String?, _ started: ContinuousClock.Instant
    ) -> Response {
        log(method, what, status: status, since: started)
        return Self.json(status, JSONRPC.error(id: id, code: code, message: message))
    }

    /// The one answer of a request that is not streamed: the last message its sink got.
    static func collect(_ start: (ReplySink) async -> Void) async -> Data {
        let (messages, continuation) = AsyncStream.makeStream(of: Data.self)
        await start(ReplySink(send: { continuation.yield($0) }, finish: { continuation.finish() }))
        var last = Data()
        for await message in messages { last = message }
        return last
    }

    /// DNS rebinding: a browser page may not reach a loopback server through a name of its own,
    /// and no foreign web origin may call it at all.
    private func originProblem(_ request: Request) -> String? {
        let loopbackNames: Set<String> = ["localhost", "127.0.0.1", "[::1]", "::1"]
        var allowed = loopbackNames
        if !options.isLoopback { allowed.insert(options.host.lowercased()) }
        if options.isLoopback, let authority = request.head.authority, !allowed.contains(Self.hostName(authority)) {
            return "Host \(authority) is not this server's name"
        }
        // "null" is what a sandboxed frame, a file:// page or a redirected request sends: a web page all the same.
        if request.headers[.origin] == "null" { return "Origin null (a sandboxed or opaque web page) may not call this server" }
        if let origin = request.headers[.origin] {
            let host = URL(string: origin)?.host.map { $0.contains(":") ? "[\($0)]" : $0 } ?? origin
            if !allowed.contains(host.lowercased()) { return "Origin \(origin) may not call this server" }
        }
        return nil
    }

    static func hostName(_ authority: String) -> String {
        if authority.hasPrefix("["), let end = authority.firstIndex(of: "]") { return String(authority[...end]).lowercased() }
        return String(authority.split(separator: ":", maxSplits: 1).first ?? "").lowercased()
    }

    /// One line per request: method, JSON-RPC method and tool, status, duration. Never arguments.
    private func log(_ method: String, _ what: String?, status: Int, since started: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - started
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        logger.info("\(method) /mcp\(what.map { " \($0)" } ?? "") \(status) \(String(format: "%.1f", ms))ms")
    }

    /// "tools/call read_file" for a call, the JSON-RPC method otherwise.
    static func describe(_ message: JSONRPC.Message) -> String? {
        switch message {
        case .request(_, "tools/call", let params): "tools/call \(params?["name"]?.stringValue ?? "?")"
        default: message.method
        }
    }

    /// Compares in time independent of where the strings differ.
    static func bearerMatches(_ header: String?, token: String) -> Bool {
        let given = Array((header ?? "").utf8)
        let expected = Array("Bearer \(token)".utf8)
        var difference = UInt8(given.count == expected.count ? 0 : 1)
        for index in expected.indices {
            difference |= expected[index] ^ (index < given.count ? given[index] : 0)
        }
        return difference == 0
    }

    static func plain(_ code: Int, _ text: String, extra: [String: String] = [:]) -> Response {
        body(code, "text/plain; charset=utf-8", ByteBuffer(string: text), extra: extra)
    }

    static func json(_ code: Int, _ data: Data, extra: [String: String] = [:]) -> Response {
        body(code, "application/json", ByteBuffer(bytes: data), extra: extra)
    }

    private static func body(_ code: Int, _ type: String, _ bytes: ByteBuffer, extra: [String: String]) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        for (name, value) in extra {
            if let fieldName = HTTPField.Name(name) { headers[fieldName] = value }
        }
        return Response(status: .init(code: code), headers: headers, body: ResponseBody(byteBuffer: bytes))
    }
}

extension HTTPField.Name {
    static let mcpSessionID = Self("Mcp-Session-Id")!
    static let mcpProtocolVersion = Self("MCP-Protocol-Version")!
    static let mcpMethod = Self("Mcp-Method")!
    static let mcpName = Self("Mcp-Name")!
    static let toolhostSession = Self("Toolhost-Session")!
}

/// The sessions of an HTTP server: by `Mcp-Session-Id` for handshake-era clients, by minted
/// handle (or a shared name) for 2026-07-28 ones.
actor HTTPSessions {
    struct Entry {
        let connection: MCPConnection
        let session: Session
        var lastUsed: ContinuousClock.Instant
    }

    /// Where a request goes: its connection, the session id and handle to send back, and the
    /// message as the tools get it.
    struct Route {
        let connection: MCPConnection
        let sessionID: String?
        let handle: String?
        let message: JSONRPC.Message
    }

    struct Refusal: Error {
        let status: Int
        let body: Data
        let extra: [String: String]

        init(_ status: Int, _ code: Int, _ message: String, id: JSONRPC.ID? = nil, data: JSONValue? = nil, extra: [String: String] = [:]) {
            self.status = status
            self.body = JSONRPC.error(id: id, code: code, message: message, data: data)
            self.extra = extra
        }
    }

    /// At the cap, the session used longest ago gives way to a new one once it has been idle this
    /// long with nothing running: a flood of new clients cannot lock the others out for long.
    static let idleGrace: Duration = .seconds(5)

    /// Handshake-era sessions by Mcp-Session-Id.
    private var entries: [String: Entry] = [:]
    /// 2026-07-28 sessions by handle or shared name; each request gets a connection of its own on one of them.
    private var named: [String: (session: Session, lastUsed: ContinuousClock.Instant)] = [:]
    /// Requests running per session key (an Mcp-Session-Id or a handle): a busy session is never evicted.
    private var busy: [String: Int] = [:]
    /// Answers requests that need no shell (discover, tools/list, ping) from clients without a handle.
    private var catalog: MCPConnection?
    private let registry: ToolRegistry
    private let version: String
    private let logger: Logger
    private let makeSession: ToolHTTPServer.SessionFactory
    private let hasSaved: @Sendable (String) -> Bool
    private let maxSessions: Int
    private let shared: Set<String>
    /// Sessions for clients without a handle, prepared ahead.
    private let warm: WarmSessions

    init(
        registry: ToolRegistry, version: String, logger: Logger, makeSession: @escaping ToolHTTPServer.SessionFactory,
        hasSaved: @escaping @Sendable (String) -> Bool = { _ in false }, maxSessions: Int, shared: Set<String> = [], warmSessions: Int = 0
    ) {
        self.maxSessions = maxSessions
        warm = WarmSessions(target: warmSessions) {
            let name = Self.mintHandle()
            return (name, try await makeSession(name))
        }
        self.registry = registry
        self.version = version
        self.logger = logger
        self.makeSession = makeSession
        self.hasSaved = hasSaved
        self.shared = shared
    }

    /// The key argument of `tools/call` that names a handle where a client cannot set headers.
    static let handleArgument = "session"

    /// A new handle: "th-" and 128 bits from the system's random source, as hex.
    static func mintHandle() -> String {
        var generator = SystemRandomNumberGenerator()
        return "th-" + (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Whether `text` has the shape of a minted handle.
    static func isHandle(_ text: String) -> Bool {
        text.count == 35 && text.hasPrefix("th-") && text.dropFirst(3).allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    func route(_ message: JSONRPC.Message, sessionID: String?, name header: String?, headers: HTTPFields) async -> Result<Route, Refusal> {
        var message = message, handle = header
        // A handle passed as the call's `session` argument: taken out before the tool sees it.
        if case .request(let id, "tools/call", let params) = message, var arguments = params?["arguments"]?.objectValue,
            let given = arguments.removeValue(forKey: Self.handleArgument)
        {
            guard let text = given.stringValue, header == nil || header == text else {
                return .failure(Refusal(400, JSONRPC.invalidParams, "Invalid params: the session argument must be a string, the same handle as any Toolhost-Session header", id: id))
            }
            handle = text
            var rewritten = params?.objectValue ?? [:]
            rewritten["arguments"] = .object(arguments)
            message = .request(id: id, method: "tools/call", params: .object(rewritten))
        }
        if let handle, !Self.isHandle(handle), !shared.contains(handle) {
            return .failure(Refusal(
                403, JSONRPC.invalidRequest,
                "Forbidden: '\(handle)' is not a session handle this server minted. Leave Toolhost-Session out to get a shell of your own; its handle comes back in the Toolhost-Session response header and in each result's _meta[\"toolhost/session\"]. Names any client may join are the operator's (serve --shared-session NAME)."))
        }
        if case .request(_, "initialize", _) = message { return await open(handle: handle, message: message) }
        if let sessionID {
            guard var entry = entries[sessionID] else {
                return .failure(Refusal(404, JSONRPC.invalidRequest, "Not Found: no session \(sessionID) (it expired or was closed); initialize a new one"))
            }
            entry.lastUsed = .now
            entries[sessionID] = entry
            return .success(Route(connection: entry.connection, sessionID: sessionID, handle: entry.session.name, message: message))
        }
        if case .request(let id, let method, let params) = message, let stated = params?["_meta"]?[MCPConnection.versionKey] {
            if let mismatch = Self.headerMismatch(headers, stated: stated, method: method, params: params) {
                return .failure(Refusal(400, JSONRPC.headerMismatch, mismatch, id: id))
            }
            if let handle { return await openNamed(handle, message: message) }
            guard method == "tools/call" else { return await catalogRoute(message) }
            return await openMinted(message: message)
        }
        return .failure(Refusal(
            400, JSONRPC.invalidRequest,
            "Bad Request: no Mcp-Session-Id header; start with an initialize request (or send 2026-07-28 requests, which carry their protocol version in params._meta)"))
    }

    /// 2026-07-28: the HTTP headers must repeat what the body says.
    static func headerMismatch(_ headers: HTTPFields, stated: JSONValue, method: String, params: JSONValue?) -> String? {
        if headers[.mcpProtocolVersion] != stated.stringValue {
            return "MCP-Protocol-Version header does not match params._meta's protocol version"
        }
        if let header = headers[.mcpMethod], header != method { return "Mcp-Method header \(header) does not match the method \(method)" }
        if method == "tools/call", let header = headers[.mcpName], header != params?["name"]?.stringValue {
            return "Mcp-Name header \(header) does not match the tool's name"
        }
        return nil
    }

    /// A request started on the session `key`; `release` ends it.
    func hold(_ key: String) { busy[key, default: 0] += 1 }

    /// Ends a request of the session `key`. After a tool call the warm pool refills: the client
    /// is reading the result and its model thinking, while a refill started when the session was
    /// handed out would set up namespaces and mounts beside the session's first command (whose
    /// spawn took 17 ms beside a refill's setup, 1 ms without).
    func release(_ key: String, afterToolCall: Bool = false) async {
        busy[key, default: 1] -= 1
        if busy[key] == 0 { busy[key] = nil }
        if afterToolCall { await warmUp() }
    }

    /// Makes room for one more session: at the cap, the least recently used one that has been idle
    /// past `idleGrace` with no request running gives way; if none may, 503 with Retry-After.
    private func admit() async -> Refusal? {
        guard entries.count + named.count >= maxSessions else { return nil }
        let now = ContinuousClock.now
        let idle = entries.map { ($0.key, $0.value.lastUsed, true) } + named.map { ($0.key, $0.value.lastUsed, false) }
        let candidates = idle.filter { busy[$0.0] == nil && now - $0.1 > Self.idleGrace }
        guard let oldest = candidates.min(by: { $0.1 < $1.1 }) else {
            return Refusal(
                503, JSONRPC.internalError,
                "Service Unavailable: \(maxSessions) sessions are busy or were used in the last \(Self.idleGrace) (--max-sessions); retry later",
                extra: ["Retry-After": "5"])
        }
        logger.info("session cap reached: closing \(oldest.0), the least recently used")
        if oldest.2 { _ = await close(oldest.0) } else { await closeNamed(oldest.0) }
        return nil
    }

    private func open(handle: String?, message: JSONRPC.Message) async -> Result<Route, Refusal> {
        if let handle, let refusal = unknown(handle) { return .failure(refusal) }
        if let handle, named[handle] != nil || entries.values.contains(where: { $0.session.name == handle }) {
            return .failure(Refusal(409, JSONRPC.invalidRequest, "Conflict: the session \(handle) is open already; use its Mcp-Session-Id, or leave Toolhost-Session out for a new one"))
        }
        if let refusal = await admit() { return .failure(refusal) }
        let id = UUID().uuidString
        do {
            let (name, session) = if let handle { (handle, try await makeSession(handle)) } else { try await warm.take() }
            let connection = MCPConnection(registry: registry, session: session, version: version, logger: logger, logsCalls: false, byHandle: true)
            entries[id] = Entry(connection: connection, session: session, lastUsed: .now)
            return .success(Route(connection: connection, sessionID: id, handle: name, message: message))
        } catch {
            return .failure(Refusal(400, JSONRPC.invalidRequest, "cannot open the toolhost session: \(error)"))
        }
    }

    /// A handle that is neither live nor saved, and no shared name: the client holds a stale one.
    private func unknown(_ handle: String) -> Refusal? {
        guard !shared.contains(handle), named[handle] == nil, !entries.values.contains(where: { $0.session.name == handle }), !hasSaved(handle) else {
            return nil
        }
        return Refusal(404, JSONRPC.invalidRequest, "Not Found: no session \(handle) (it expired, or another server minted it); leave Toolhost-Session out to get a new one")
    }

    private func openNamed(_ name: String, message: JSONRPC.Message) async -> Result<Route, Refusal> {
        if let session = named[name]?.session {
            named[name]?.lastUsed = .now
            return .success(Route(connection: freshConnection(session, announce: false), sessionID: nil, handle: name, message: message))
        }
        if entries.values.contains(where: { $0.session.name == name }) {
            return .failure(Refusal(409, JSONRPC.invalidRequest, "Conflict: the session \(name) belongs to a handshake-era client (it has an Mcp-Session-Id)"))
        }
        if let refusal = unknown(name) { return .failure(refusal) }
        if let refusal = await admit() { return .failure(refusal) }
        do {
            let session = try await makeSession(name)
            named[name] = (session, .now)
            return .success(Route(connection: freshConnection(session, announce: false), sessionID: nil, handle: name, message: message))
        } catch {
            return .failure(Refusal(400, JSONRPC.invalidRequest, "cannot open the toolhost session \(name): \(error)"))
        }
    }

    /// A 2026-07-28 call without a handle: a new shell under a new handle, which the result announces.
    private func openMinted(message: JSONRPC.Message) async -> Result<Route, Refusal> {
        if let refusal = await admit() { return .failure(refusal) }
        do {
            let (name, session) = try await warm.take()
            named[name] = (session, .now)
            return .success(Route(connection: freshConnection(session, announce: true), sessionID: nil, handle: name, message: message))
        } catch {
            return .failure(Refusal(400, JSONRPC.invalidRequest, "cannot open the toolhost session: \(error)"))
        }
    }

    /// Prepares the warm pool's sessions, within what the session cap leaves.
    func warmUp() async {
        await warm.fill(room: maxSessions - entries.count - named.count)
    }

    /// Requests that need no shell, from a client without a handle: answered without opening one.
    private func catalogRoute(_ message: JSONRPC.Message) async -> Result<Route, Refusal> {
        if let catalog { return .success(Route(connection: catalog, sessionID: nil, handle: nil, message: message)) }
        do {
            let made = MCPConnection(
                registry: registry, session: try await makeSession("catalog-" + Self.mintHandle()), version: version, logger: logger, logsCalls: false,
                byHandle: true)
            catalog = made
            return .success(Route(connection: made, sessionID: nil, handle: nil, message: message))
        } catch {
            return .failure(Refusal(400, JSONRPC.invalidRequest, "cannot open the toolhost session: \(error)"))
        }
    }

    /// 2026-07-28 requests are independent exchanges: two clients may both use id 1 at once.
    private func freshConnection(_ session: Session, announce: Bool) -> MCPConnection {
        MCPConnection(registry: registry, session: session, version: version, logger: logger, logsCalls: false, byHandle: true, announcesHandle: announce)
    }

    /// Closes a handshake-era session; false when there is none by that id.
    func close(_ id: String) async -> Bool {
        guard let entry = entries.removeValue(forKey: id) else { return false }
        await entry.connection.cancelAll()
        await entry.session.close()
        logger.info("closed session \(id) (\(entry.session.name))")
        return true
    }

    private func closeNamed(_ name: String) async {
        guard let entry = named.removeValue(forKey: name) else { return }
        await entry.session.close()
        logger.info("closed session \(name)")
    }

    func expire(idle: Duration) async {
        let now = ContinuousClock.now
        for (id, entry) in entries where now - entry.lastUsed > idle && busy[id] == nil {
            logger.info("session \(id) idle for over \(idle): closing it")
            _ = await close(id)
        }
        for (name, entry) in named where now - entry.lastUsed > idle && busy[name] == nil { await closeNamed(name) }
    }

    func closeAll() async {
        await warm.closeAll()
        for id in entries.keys { _ = await close(id) }
        for name in named.keys { await closeNamed(name) }
        await (try? catalog?.session())?.close()
    }
}
