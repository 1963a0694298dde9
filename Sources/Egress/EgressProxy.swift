import CTLS
import Foundation
import JSONCore
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The egress proxy of one `network: "allowlist"` session. It listens on 127.0.0.1:3128 inside the
/// session's network namespace (which has nothing else but loopback) and connects out from the
/// host's, so a command reaches exactly what the policy allows: plain HTTP in absolute form and
/// CONNECT tunnels. Each decision is kept for the command's denial note and appended to a log.
/// The address checked is the address connected to: a name is resolved once, so DNS cannot point
/// it elsewhere between the check and the connect. A CONNECT to a host that a secret is bound to
/// is opened (TLS with a certificate from the session's own CA, which only the sandbox trusts) so
/// that the dummy in its requests can be replaced; every other tunnel stays closed to the proxy.
/// Connections are served on NIO's shared event loops (no thread per connection), read by llhttp,
/// at most `connectionCap` at once per session.
public final class EgressProxy: @unchecked Sendable {
    /// One request's fate.
    public struct Decision: Sendable, Equatable {
        public let method: String
        public let host: String
        public let port: Int
        public let allowed: Bool
        /// The rule that decided, as the profile spells it, or the built-in reason.
        public let rule: String
        /// The address connected to, or the internal one refused.
        public let address: String?
        /// The variables whose dummies this request may carry and get replaced.
        public var secrets: [String] = []
    }

    public static let port: UInt16 = 3128
    /// What commands get as their proxy.
    public static let url = "http://127.0.0.1:\(port)"

    let policy: EgressPolicy
    let profile: String
    /// The decision log, opened once (append-only, never through a symlink); -1 for none.
    private let log: Int32
    let resolve: @Sendable (String) -> [IPAddress]
    /// A secret, the dummy commands see, and the real value.
    typealias Swap = (secret: EgressPolicy.Secret, dummy: String, real: String)
    /// One per secret.
    let dummies: [Swap]
    /// Every real secret's forms beside its dummy's, for scrubbing what hosts send back.
    let scrubPairs: [(find: [UInt8], replace: [UInt8])]
    /// The session's CA, when the policy has secrets (see `RequestStage.broker`).
    let authority: OpaquePointer?
    /// The CA certificate in PEM, for the sandbox's trust store; nil when no secret needs one.
    public let authorityPEM: String?
    private struct State {
        /// The listening channel, on the session's listener.
        var server: (any Channel)?
        var unreported: [Decision] = []
        /// Every decision since the last `takeDecisions()`, the newest 1,000 (a session nobody asks keeps no more).
        var journal: [Decision] = []
        /// Bytes moved either way, for `max_bytes`.
        var moved = 0
        /// Connections open now, for `connectionCap`.
        var connections = 0
    }
    private let state = Mutex(State())

    /// - Parameters:
    ///   - listener: a listening socket (see `csandbox_listen_in_netns`); the proxy owns it.
    ///   - secrets: the real value of each of the policy's secrets.
    ///   - upstreamTrust: a CA file trusted for real hosts beside the system's store (the host's SSL_CERT_FILE).
    ///   - resolve: a host's addresses (getaddrinfo unless a test says otherwise).
    public convenience init(
        policy: EgressPolicy, profile: String, listener: Int32, logPath: String?, secrets: [String: String], upstreamTrust: String? = nil
    ) throws {
        try self.init(policy: policy, profile: profile, listener: listener, logPath: logPath, secrets: secrets, upstreamTrust: upstreamTrust,
                      resolve: EgressProxy.systemResolve)
    }

    init(policy: EgressPolicy, profile: String, listener: Int32, logPath: String?, secrets: [String: String], upstreamTrust: String? = nil,
         resolve: @escaping @Sendable (String) -> [IPAddress]) throws {
        self.policy = policy
        self.profile = profile
        log = logPath.map { Glibc.open($0, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600) } ?? -1
        self.resolve = resolve
        dummies = policy.secrets.map { secret in
            let real = secrets[secret.from] ?? ""
            return (secret, Self.dummy(as: real.utf8.count), real)
        }
        scrubPairs = dummies.flatMap { SecretForms.pairs(real: $0.real, dummy: $0.dummy) }.sorted { $0.find.count > $1.find.count }
        if policy.secrets.isEmpty {
            authority = nil
            authorityPEM = nil
        } else {
            var error = [CChar](repeating: 0, count: 512)
            guard let made = ctls_authority_new(Self.nameConstraints(policy.secrets.map(\.host)), upstreamTrust, &error, error.count) else {
                Glibc.close(listener)
                throw EgressUnavailable("profile \(profile): \(String(characters: error)). Check SSL_CERT_FILE in toolhost's environment.")
            }
            authority = made
            authorityPEM = String(cString: ctls_authority_pem(made))
        }
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            // A small reply written in two pieces must not wait on the command's delayed ACK.
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [weak self] channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let self else { throw ChannelError.ioOnClosedChannel }
                    try self.admit(channel)
                }
            }
        do {
            let server = try bootstrap.withBoundSocket(listener).wait()
            state.withLock { $0.server = server }
        } catch {
            throw EgressUnavailable("profile \(profile): the egress proxy cannot serve its listener (\(error)).")
        }
    }

    /// A random stand-in as long as the real value (so a scrubbed body keeps its length), marked as
    /// toolhost's where there is room; never shorter than 24 characters.
    static func dummy(as length: Int) -> String {
        let random = (0..<max(length, 24)).map { _ in String("0123456789abcdef".randomElement()!) }.joined()
        let marked = "toolhost-dummy-" + random
        return String(marked.prefix(max(length, 24)))
    }

    /// The variables commands get: the proxy, and each secret's dummy.
    public var environment: [String: String] {
        var variables = ["HTTP_PROXY": Self.url, "HTTPS_PROXY": Self.url, "http_proxy": Self.url, "https_proxy": Self.url,
                         "NO_PROXY": "localhost,127.0.0.1,::1", "no_proxy": "localhost,127.0.0.1,::1"]
        for (secret, dummy, _) in dummies { variables[secret.variable] = dummy }
        return variables
    }

    /// Stops accepting, and returns once nothing listens (off the event loop): a connection made
    /// after it is refused, not taken into the backlog and reset. Tunnels already open end with
    /// their connections.
    public func stop() {
        let server = state.withLock { state in
            defer { state.server = nil }
            return state.server
        }
        guard let server else { return }
        if server.eventLoop.inEventLoop {
            server.close(promise: nil)
        } else {
            try? server.close().wait()
        }
    }

    deinit {
        state.withLock { $0.server }?.close(promise: nil)
        if log >= 0 { Glibc.close(log) }
        ctls_authority_free(authority)
    }

    /// What the session's CA may certify: the secrets' hosts and nothing else (nil: anything, for a
    /// secret bound to "*"). Each name type is constrained, so an address cannot slip past a list of
    /// names, nor a name past a list of addresses.
    static func nameConstraints(_ hosts: [EgressPolicy.Rule]) -> String? {
        guard !hosts.contains(where: { $0.host == "*" }) else { return nil }
        var names: [String] = [], addresses: [String] = []
        for rule in hosts {
            if let address = IPAddress(rule.host) {
                addresses.append(address.mappedV4 != nil
                    ? "IP:\(address.text)/255.255.255.255" : "IP:\(address.text)/" + Array(repeating: "ffff", count: 8).joined(separator: ":"))
            } else {
                names.append("DNS:" + (rule.host.hasPrefix("*.") ? String(rule.host.dropFirst(2)) : rule.host))
            }
        }
        // A list with one type only gets an impossible entry of the other.
        if names.isEmpty { names = ["DNS:toolhost.invalid"] }
        if addresses.isEmpty { addresses = ["IP:0.0.0.0/255.255.255.255"] }
        return (names + addresses).map { "permitted;" + $0 }.joined(separator: ",")
    }

    /// The variables that make common clients trust the session's CA beside the system's roots,
    /// given the bundle file that holds both. npm needs its own: Debian's npm sets `cafile` to the
    /// system bundle, which replaces node's roots and NODE_EXTRA_CA_CERTS.
    public static func trustVariables(bundle: String) -> [String: String] {
        ["SSL_CERT_FILE": bundle, "CURL_CA_BUNDLE": bundle, "REQUESTS_CA_BUNDLE": bundle, "PIP_CERT": bundle,
         "GIT_SSL_CAINFO": bundle, "NODE_EXTRA_CA_CERTS": bundle, "npm_config_cafile": bundle, "DENO_CERT": bundle]
    }

    /// Every decision, allowed or not, since the last call, oldest first: for a run's transcript.
    public func takeDecisions() -> [Decision] {
        state.withLock { state in
            defer { state.journal = [] }
            return state.journal
        }
    }

    /// The refusals not yet reported, oldest first.
    public func takeRefusals() -> [Decision] {
        state.withLock { state in
            defer { state.unreported = [] }
            return state.unreported.filter { !$0.allowed }
        }
    }

    /// What a model should read about a refusal: which host, which rule of which profile, and how to allow it.
    public func explain(_ decision: Decision) -> String {
        let target = decision.port == 80 || decision.port == 443 ? decision.host : "\(decision.host):\(decision.port)"
        let how: String
        switch decision.rule {
        case let rule where rule.hasPrefix("deny"): how = "the profile's deny list wins over its allow list; remove that rule to reach it"
        case let rule where rule.hasPrefix("read_only"): how = "the profile is read-only; set egress.read_only to false to send other methods"
        case let rule where rule.hasPrefix("internal address"):
            how = "a name never leads to the host's own network; add the address itself (\(decision.address ?? "?")) to egress.allow if it must be reached"
        case let rule where rule.hasPrefix("max_bytes"): how = "raise egress.max_bytes, or move less"
        case let rule where rule.hasPrefix("malformed"):
            how = "the proxy reads requests strictly (RFC 9112): CRLF line ends, one Host that matches the target, a host name of a-z, 0-9, '.' and '-' only"
        case let rule where Self.echoingMethods.contains(where: { rule.hasPrefix($0) }):
            how = "the proxy never sends it, since its answer would carry the request's credentials back"
        case let rule where rule.hasPrefix("TLS to the host"):
            how = "toolhost opens this host's TLS to put in its secret and could not check its certificate; give toolhost the host's CA in SSL_CERT_FILE"
        default: how = "add \"\(decision.host)\" to egress.allow in the profile if the task needs it"
        }
        return "network: allowlist (profile \(profile)): \(decision.method) \(target) was refused by \(decision.rule); \(how). Use what is installed, or what the allowed hosts serve."
    }

    // MARK: Connections

    /// Connections served at once, at most; more get a 503 at once.
    static let connectionCap = 64

    /// Sets up a new connection's pipeline, or turns it away when the session is at its cap.
    private func admit(_ channel: any Channel) throws {
        let sync = channel.pipeline.syncOperations
        let admitted = state.withLock { state in
            guard state.connections < Self.connectionCap else { return false }
            state.connections += 1
            return true
        }
        guard admitted else {
            return try sync.addHandler(Turnaway(Self.answer(503, "Service Unavailable",
                "toolhost's egress proxy: \(Self.connectionCap) connections are open already; retry when one ends.\n", extra: "Retry-After: 1")))
        }
        channel.closeFuture.whenComplete { [self] _ in state.withLock { $0.connections -= 1 } }
        try sync.addHandlers([
            IdleStateHandler(allTimeout: .minutes(5)), CloseWhenIdle(), RequestLineCheck(proxy: self), ByteToMessageHandler(Self.requestDecoder()),
            RequestStage(proxy: self),
        ])
    }

    /// llhttp through NIOHTTP1, strict (no lenient flag is set), with heads held to 64 KB.
    static func requestDecoder() -> HTTPRequestDecoder {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = 64 << 10
        limits.maxHeaderListSize = 64 << 10
        limits.maxHeaderFieldCount = 256
        return HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .drop, limitConfiguration: limits)
    }

    /// A connected channel to the first of `addresses` that answers within 15 seconds, on `loop`,
    /// not reading until told to.
    func connect(_ addresses: [IPAddress], port: Int, on loop: any EventLoop) -> EventLoopFuture<(any Channel, IPAddress)> {
        guard let address = addresses.first else { return loop.makeFailedFuture(ChannelError.connectTimeout(.seconds(15))) }
        let bytes = address.mappedV4 ?? address.bytes
        let target: SocketAddress
        do {
            target = try SocketAddress(packedIPAddress: ByteBuffer(bytes: bytes), port: port)
        } catch {
            return loop.makeFailedFuture(error)
        }
        return ClientBootstrap(group: loop)
            .connectTimeout(.seconds(15))
            .channelOption(ChannelOptions.autoRead, value: false)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandlers([IdleStateHandler(allTimeout: .minutes(5)), CloseWhenIdle()]) }
            }
            .connect(to: target)
            .map { ($0, address) }
            .flatMapError { [self] _ in connect(Array(addresses.dropFirst()), port: port, on: loop) }
    }

    /// Methods whose answer is the request itself: refused, since the request may carry a real secret.
    static let echoingMethods: Set<String> = ["TRACE", "TRACK"]

    static let established = Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8)

    /// Where a request goes: CONNECT's authority, or an absolute http:// URL's, with the path in
    /// origin form; a Host header, when there is one, must name the same authority.
    static func target(of head: RequestHead) throws(RequestHead.Malformed) -> (Authority, String) {
        let authority: Authority, path: String
        if head.method == "CONNECT" {
            authority = try Authority.parse(head.target, defaultPort: nil)
            path = ""
        } else {
            guard head.target.lowercased().hasPrefix("http://") else {
                throw .init("the target is not an absolute http:// URL (https goes through CONNECT)")
            }
            let rest = head.target.dropFirst("http://".count)
            guard !rest.contains("#") else { throw .init("a fragment (#) in the target") }
            let end = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
            authority = try Authority.parse(String(rest[..<end]), defaultPort: 80)
            let tail = rest[end...]
            path = tail.isEmpty ? "/" : tail.hasPrefix("?") ? "/" + tail : String(tail)
        }
        if let host = head.values("Host").first, !authority.isNamed(by: host) {
            throw .init("the Host header '\(Authority.visible(Substring(host)))' names another host than the target's \(authority.hostHeader)")
        }
        return (authority, path)
    }

    /// A refusal by rule: 403 with the rule named and the note a model reads, the decision kept.
    func refuse(_ channel: any Channel, _ decision: Decision) {
        record(decision)
        respond(channel, 403, "Forbidden", explain(decision) + "\n", extra: "X-Toolhost-Blocked: \(decision.rule); profile=\(profile)")
    }

    /// A request that cannot be read one way only: 400, and the decision kept like any other.
    func refuseMalformed(_ channel: any Channel, method: String, _ error: RequestHead.Malformed) {
        let rule = "malformed request (\(error))"
        record(Decision(method: method, host: "-", port: 0, allowed: false, rule: rule, address: nil))
        respond(channel, 400, "Bad Request",
                "toolhost's egress proxy refused the request: \(error). It reads requests strictly (RFC 9112): CRLF line ends, one Host that matches the target, a host name of a-z, 0-9, '.' and '-' only.\n",
                extra: "X-Toolhost-Blocked: \(rule); profile=\(profile)")
    }

    /// An allowed host the proxy cannot reach (no address, no answer, TLS that cannot be checked): 502.
    func refuseUnreachable(_ channel: any Channel, _ method: String, _ target: Authority, rule: String, address: String?, _ why: String) {
        record(Decision(method: method, host: target.host, port: target.port, allowed: false, rule: rule, address: address))
        respond(channel, 502, "Bad Gateway", "toolhost's egress proxy: \(why).\n")
    }

    /// The head the host gets, written from the parsed fields: origin form, the Host the proxy
    /// checked, no hop-by-hop field (nor one that Connection names), `Connection: close` (one
    /// request per connection), and each bound secret's dummy replaced in its own header only.
    /// A request carrying a secret asks for no compression, so a reflection stays scrubbable.
    static func upstreamHead(_ head: RequestHead, path: String, authority: Authority, swaps: [Swap]) -> [UInt8] {
        let named = Set(head.values("Connection").flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
        var lines = ["\(head.method) \(path) HTTP/1.1", "Host: \(authority.hostHeader)"]
        for field in head.fields {
            let name = field.name.lowercased()
            if hopByHop.contains(name) || name.hasPrefix("proxy-") || named.contains(name) { continue }
            if !swaps.isEmpty && name == "accept-encoding" { continue }
            var value = field.value
            for (secret, dummy, real) in swaps where secret.header.lowercased() == name {
                value = value.replacingOccurrences(of: dummy, with: real)
            }
            lines.append("\(field.name): \(value)")
        }
        return Array((lines + ["Connection: close", "", ""]).joined(separator: "\r\n").utf8)
    }

    private static let hopByHop: Set<String> = ["host", "connection", "keep-alive", "te", "trailer", "upgrade"]

    /// Whether the session has moved its max_bytes already.
    var isPastCap: Bool { state.withLock { state in policy.maxBytes.map { state.moved >= $0 } ?? false } }

    /// Counts `count` bytes about to go out, unless they would take the session past its cap.
    func reserve(_ count: Int) -> Bool {
        state.withLock { state in
            guard policy.maxBytes.map({ state.moved + count <= $0 }) ?? true else { return false }
            state.moved += count
            return true
        }
    }

    /// Counts bytes moved either way; false once the session is past its cap.
    func charge(_ count: Int) -> Bool {
        state.withLock { state in
            state.moved += count
            return policy.maxBytes.map { state.moved <= $0 } ?? true
        }
    }

    func record(_ decision: Decision) {
        state.withLock { state in
            state.unreported.append(decision)
            state.journal.append(decision)
            if state.journal.count > 1000 { state.journal.removeFirst(state.journal.count - 1000) }
        }
        if log >= 0 {
            let entry: JSONValue = [
                "t": .string(Date().ISO8601Format()), "method": .string(decision.method), "host": .string(decision.host), "port": .int(decision.port),
                "allowed": .bool(decision.allowed), "rule": .string(decision.rule), "address": decision.address.map(JSONValue.string) ?? .null,
                "secrets": .array(decision.secrets.map(JSONValue.string)),
            ]
            let line = Array(entry.jsonText.utf8) + [0x0A]
            // One write per line on an O_APPEND descriptor: concurrent connections never interleave.
            _ = line.withUnsafeBytes { Glibc.write(log, $0.baseAddress, $0.count) }
        }
    }

    /// Writes a plain-text answer and closes the connection after it.
    private func respond(_ channel: any Channel, _ status: Int, _ reason: String, _ body: String, extra: String? = nil) {
        channel.writeAndFlush(ByteBuffer(bytes: Self.answer(status, reason, body, extra: extra))).whenComplete { _ in channel.close(promise: nil) }
    }

    private static func answer(_ status: Int, _ reason: String, _ body: String, extra: String? = nil) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n"
        if let extra { head += extra + "\r\n" }
        return Array((head + "\r\n" + body).utf8)
    }

    // MARK: Names

    /// getaddrinfo's addresses for `host`, in its order.
    static let systemResolve: @Sendable (String) -> [IPAddress] = { host in
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0 else { return [] }
        defer { freeaddrinfo(list) }
        var addresses: [IPAddress] = []
        var entry = list
        while let info = entry?.pointee {
            if info.ai_family == AF_INET, let raw = info.ai_addr {
                let v4 = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in withUnsafeBytes(of: pointer.pointee.sin_addr) { Array($0) } }
                addresses.append(IPAddress(bytes: Array(repeating: 0, count: 10) + [0xff, 0xff] + v4))
            } else if info.ai_family == AF_INET6, let raw = info.ai_addr {
                addresses.append(IPAddress(bytes: raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) } }))
            }
            entry = info.ai_next
        }
        var seen: [IPAddress] = []
        for address in addresses where !seen.contains(address) { seen.append(address) }
        return seen
    }
}

/// The proxy cannot be set up as the profile asks; the message says why and what to do.
public struct EgressUnavailable: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
