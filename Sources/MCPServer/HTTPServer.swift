import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MCP
import Sandbox
import Tools

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
    /// Connections open at once; more wait in the listen queue.
    public var maxConnections = 512
    /// How long a client may take to send a request's headers, and again its body.
    public var requestTimeout: Duration = .seconds(30)

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

/// MCP over Streamable HTTP at /mcp (the SDK's stateful transport behind Hummingbird): one MCP
/// server and one toolhost session per `Mcp-Session-Id`, each with its own cwd, env and
/// background processes. A client may name its session with `Toolhost-Session: NAME` to find its
/// saved state again after a restart.
public struct ToolHTTPServer: Sendable {
    public typealias SessionFactory = @Sendable (_ name: String) async throws -> Session

    let options: HTTPServeOptions
    let sessions: HTTPSessions
    let logger: Logger

    public init(options: HTTPServeOptions, registry: ToolRegistry, version: String, logger: Logger, makeSession: @escaping SessionFactory) {
        self.options = options
        self.logger = logger
        // DNS-rebinding protection is about host names; any port (port 0 is picked at bind time).
        let origins: OriginValidator = options.isLoopback
            ? .localhost()
            : OriginValidator(
                allowedHosts: ["\(options.host):*", "127.0.0.1:*", "localhost:*"],
                allowedOrigins: ["http://\(options.host):*", "http://127.0.0.1:*", "http://localhost:*"])
        sessions = HTTPSessions(
            registry: registry, version: version, logger: logger, makeSession: makeSession, maxSessions: options.maxSessions,
            pipeline: StandardValidationPipeline(validators: [
                origins, AcceptHeaderValidator(mode: .sseRequired), ContentTypeValidator(), ProtocolVersionValidator(),
                SessionValidator(),
            ]))
    }

    /// Serves until SIGTERM or SIGINT, then gives running commands `shutdownGrace`, kills what is
    /// left, and closes every session (their state is already saved).
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let router = Router()
        for method in [HTTPRequest.Method.post, .get, .delete] {
            router.on("/mcp", method: method) { request, _ in try await self.respond(to: request) }
        }
        let app = Application(
            router: router, server: options.serverBuilder,
            configuration: .init(address: .hostname(options.host, port: options.port), availableConnectionsDelegate: options.connectionLimit),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? options.port) },
            logger: logger)
        let expiry = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: min(options.idleTimeout / 4, .seconds(30)))
                await sessions.expire(idle: options.idleTimeout)
            }
        }
        // Open SSE streams (a client's GET stream) would hold graceful shutdown forever: once the
        // grace is over, commands are killed and every session is closed, which ends its streams.
        let grace = ShutdownGrace(options.shutdownGrace) { [sessions] in
            LiveProcesses.killAll()
            await sessions.closeAll()
        }
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        expiry.cancel()
        grace.cancel()
        await sessions.closeAll()
        ProcessCgroup.removeAll()
    }

    private func respond(to request: Request) async throws -> Response {
        var request = request
        let started = ContinuousClock.now
        var fields: [String: String] = [:]
        for field in request.headers { fields[field.name.canonicalName] = field.value }
        if let authority = request.head.authority { fields["Host"] = authority }
        if let token = options.token, !Self.bearerMatches(fields["authorization"], token: token) {
            log(request.method.rawValue, nil, status: 401, since: started)
            return Self.plain(
                401, "Unauthorized: send the token as 'Authorization: Bearer TOKEN' (the token the server was started with, --token-file or TOOLHOST_TOKEN).\n",
                extra: ["WWW-Authenticate": "Bearer"])
        }
        var body: Data?
        if request.method == .post {
            do {
                body = Data(buffer: try await request.collectBody(upTo: options.maxBodyBytes))
            } catch {
                log(request.method.rawValue, nil, status: 413, since: started)
                return Self.plain(413, "Payload Too Large: request bodies are limited to \(options.maxBodyBytes) bytes.\n")
            }
        }
        let mcpRequest = MCP.HTTPRequest(method: request.method.rawValue, headers: fields, body: body, path: request.uri.path)
        let response = await sessions.handle(mcpRequest, sessionName: fields["toolhost-session"])
        let method = request.method.rawValue, what = body.flatMap(Self.describe)
        var headers = HTTPFields()
        for (name, value) in response.headers {
            if let fieldName = HTTPField.Name(name) { headers[fieldName] = value }
        }
        let status = HTTPResponse.Status(code: response.statusCode)
        switch response {
        case .stream(let stream, _):
            // A call's answer streams after this returns: its log line waits for the stream's end.
            let logged = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
                let forward = Task {
                    do {
                        for try await chunk in stream { continuation.yield(ByteBuffer(bytes: chunk)) }
                        continuation.finish()
                    } catch {
                        continuation.finish(throwing: error)
                    }
                    self.log(method, what, status: response.statusCode, since: started)
                }
                continuation.onTermination = { _ in forward.cancel() }
            }
            return Response(status: status, headers: headers, body: ResponseBody(asyncSequence: logged))
        default:
            log(method, what, status: response.statusCode, since: started)
            return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: response.bodyData ?? Data())))
        }
    }

    /// One line per request: method, JSON-RPC method and tool, status, duration. Never arguments.
    private func log(_ method: String, _ what: String?, status: Int, since started: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - started
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        logger.info("\(method) /mcp\(what.map { " \($0)" } ?? "") \(status) \(String(format: "%.1f", ms))ms")
    }

    /// "tools/call read_file" for a call, the JSON-RPC method otherwise.
    static func describe(_ body: Data) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any], let method = object["method"] as? String else {
            return nil
        }
        if method == "tools/call", let name = (object["params"] as? [String: Any])?["name"] as? String { return "tools/call \(name)" }
        return method
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
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        for (name, value) in extra {
            if let fieldName = HTTPField.Name(name) { headers[fieldName] = value }
        }
        return Response(status: .init(code: code), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

/// The MCP sessions of an HTTP server, by `Mcp-Session-Id`.
actor HTTPSessions {
    struct Entry {
        let server: Server
        let transport: StatefulHTTPServerTransport
        let session: Session
        var lastUsed: ContinuousClock.Instant
        /// Requests after initialize: a session that never had one may give way to a new client.
        var requests = 0
    }

    /// A session that never made a request after initialize, idle this long, may be closed to
    /// admit a new one when the cap is reached: a flood of initialize calls cannot lock clients out.
    static let unusedGrace: Duration = .seconds(5)

    private var entries: [String: Entry] = [:]
    private let registry: ToolRegistry
    private let version: String
    private let logger: Logger
    private let makeSession: ToolHTTPServer.SessionFactory
    private let pipeline: any HTTPRequestValidationPipeline
    private let maxSessions: Int

    init(registry: ToolRegistry, version: String, logger: Logger, makeSession: @escaping ToolHTTPServer.SessionFactory,
         maxSessions: Int, pipeline: any HTTPRequestValidationPipeline) {
        self.maxSessions = maxSessions
        self.registry = registry
        self.version = version
        self.logger = logger
        self.makeSession = makeSession
        self.pipeline = pipeline
    }

    private struct FixedSessionID: SessionIDGenerator {
        let id: String
        func generateSessionID() -> String { id }
    }

    func handle(_ request: MCP.HTTPRequest, sessionName: String?) async -> MCP.HTTPResponse {
        let id = request.header(HTTPHeaderName.sessionID)
        if let id, var entry = entries[id] {
            entry.lastUsed = .now
            entry.requests += 1
            entries[id] = entry
            let response = await entry.transport.handleRequest(request)
            if request.method.uppercased() == "DELETE" && response.statusCode == 200 { await close(id) }
            return response
        }
        if request.method.uppercased() == "POST", let body = request.body, ToolHTTPServer.describe(body) == "initialize" {
            return await open(request, sessionName: sessionName)
        }
        if id != nil { return .error(statusCode: 404, .invalidRequest("Not Found: no such session (it expired or was closed); initialize a new one")) }
        return .error(statusCode: 400, .invalidRequest("Bad Request: missing \(HTTPHeaderName.sessionID) header; start with an initialize request"))
    }

    private func open(_ request: MCP.HTTPRequest, sessionName: String?) async -> MCP.HTTPResponse {
        if entries.count >= maxSessions {
            let now = ContinuousClock.now
            let unused = entries.filter { $0.value.requests == 0 && now - $0.value.lastUsed > Self.unusedGrace }
            guard let oldest = unused.min(by: { $0.value.lastUsed < $1.value.lastUsed }) else {
                return .error(
                    statusCode: 503,
                    .internalError("Service Unavailable: \(maxSessions) sessions are open (--max-sessions); close one (DELETE /mcp) or retry later"),
                    extraHeaders: ["Retry-After": "5"])
            }
            logger.info("session cap reached: closing \(oldest.key), which made no request since initialize")
            await close(oldest.key)
        }
        let id = UUID().uuidString
        let transport = StatefulHTTPServerTransport(sessionIDGenerator: FixedSessionID(id: id), validationPipeline: pipeline, logger: logger)
        let session: Session
        do {
            session = try await makeSession(sessionName ?? "http-\(id.prefix(8).lowercased())")
        } catch {
            return .error(statusCode: 400, .invalidRequest("cannot open the toolhost session: \(error)"))
        }
        do {
            let server = await ToolServer(registry: registry, session: session, version: version, logger: logger, logsCalls: false)
                .makeServer()
            try await server.start(transport: transport)
            entries[id] = Entry(server: server, transport: transport, session: session, lastUsed: .now)
            let response = await transport.handleRequest(request)
            if case .error = response { await close(id) }
            return response
        } catch {
            await session.close()
            return .error(statusCode: 500, .internalError("cannot start the MCP session: \(error)"))
        }
    }

    private func close(_ id: String) async {
        guard let entry = entries.removeValue(forKey: id) else { return }
        await entry.server.stop()
        await entry.session.close()
        logger.info("closed session \(id) (\(entry.session.name))")
    }

    func expire(idle: Duration) async {
        let now = ContinuousClock.now
        for (id, entry) in entries where now - entry.lastUsed > idle {
            logger.info("session \(id) idle for over \(idle): closing it")
            await close(id)
        }
    }

    func closeAll() async {
        for id in entries.keys { await close(id) }
    }
}

/// After SIGTERM or SIGINT, running commands get a bound; then `expire` runs (kill what is left,
/// close the sessions), so graceful shutdown never waits on a command that would run for minutes.
final class ShutdownGrace: @unchecked Sendable {
    private var sources: [any DispatchSourceSignal] = []

    init(_ grace: Duration, expire: @escaping @Sendable () async -> Void) {
        for number in [SIGTERM, SIGINT] {
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                Task {
                    try? await Task.sleep(for: grace)
                    await expire()
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() {
        sources.forEach { $0.cancel() }
    }
}
