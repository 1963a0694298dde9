import CSandbox
import CTLS
import Foundation

/// The egress proxy of one `network: "allowlist"` session. It listens on 127.0.0.1:3128 inside the
/// session's network namespace (which has nothing else but loopback) and connects out from the
/// host's, so a command reaches exactly what the policy allows: plain HTTP in absolute form and
/// CONNECT tunnels. Each decision is kept for the command's denial note and appended to a log.
/// The address checked is the address connected to: a name is resolved once, so DNS cannot point
/// it elsewhere between the check and the connect. A CONNECT to a host that a secret is bound to
/// is opened (TLS with a certificate from the session's own CA, which only the sandbox trusts) so
/// that the dummy in its requests can be replaced; every other tunnel stays closed to the proxy.
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
    private let listener: Int32
    /// The decision log, opened once (append-only, never through a symlink); -1 for none.
    private let log: Int32
    private let resolve: @Sendable (String) -> [IPAddress]
    /// A secret, the dummy commands see, and the real value.
    typealias Swap = (secret: EgressPolicy.Secret, dummy: String, real: String)
    /// One per secret.
    let dummies: [Swap]
    /// Every real secret's forms beside its dummy's, for scrubbing what hosts send back.
    private let scrubPairs: [(find: [UInt8], replace: [UInt8])]
    /// The session's CA, when the policy has secrets (see `broker`).
    private let authority: OpaquePointer?
    /// The CA certificate in PEM, for the sandbox's trust store; nil when no secret needs one.
    public let authorityPEM: String?
    private let lock = NSLock()
    private var unreported: [Decision] = []
    /// Every decision since the last `takeDecisions()`, the newest 1,000 (a session nobody asks keeps no more).
    private var journal: [Decision] = []
    private var moved = 0
    private var stopped = false

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
        self.listener = listener
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
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "toolhost-egress"
        thread.start()
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

    /// Stops accepting; tunnels already open end with their connections.
    public func stop() {
        lock.withLock {
            guard !stopped else { return }
            stopped = true
            shutdown(listener, Int32(SHUT_RDWR))
        }
    }

    deinit {
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
        lock.withLock {
            defer { journal = [] }
            return journal
        }
    }

    /// The refusals not yet reported, oldest first.
    public func takeRefusals() -> [Decision] {
        lock.withLock {
            defer { unreported = [] }
            return unreported.filter { !$0.allowed }
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

    private func acceptLoop() {
        while true {
            let client = csandbox_accept(listener)
            if client < 0 {
                if client == -EINTR || client == -ECONNABORTED { continue }
                break
            }
            let thread = Thread { [self] in
                serve(client)
                Glibc.close(client)
            }
            thread.name = "toolhost-egress-connection"
            thread.start()
        }
        Glibc.close(listener)
    }

    /// Connections served at once, at most; more wait for none of them (503).
    static let connectionCap = 64
    private var connections = 0

    private func serve(_ client: Int32) {
        let admitted = lock.withLock {
            guard connections < Self.connectionCap else { return false }
            connections += 1
            return true
        }
        guard admitted else {
            return respond(client, 503, "Service Unavailable", "toolhost's egress proxy: \(Self.connectionCap) connections are open already; retry when one ends.\n", extra: "Retry-After: 1")
        }
        defer { lock.withLock { connections -= 1 } }
        // The whole head must come within the deadline, however slowly it trickles.
        guard let (bytes, rest) = Self.readHead(SocketStream(fd: client), within: .seconds(30)) else { return }
        Self.setTimeout(client, SO_RCVTIMEO, seconds: 0)
        let head: RequestHead, authority: Authority, path: String
        do {
            head = try RequestHead.parse(bytes)
            (authority, path) = try Self.target(of: head)
        } catch {
            return refuseMalformed(SocketStream(fd: client), method: Self.methodForLog(bytes), error)
        }
        let method = head.method
        func refuse(_ rule: String, address: String? = nil) {
            self.refuse(SocketStream(fd: client), Decision(method: method, host: authority.host, port: authority.port, allowed: false, rule: rule, address: address))
        }
        if let cap = policy.maxBytes, lock.withLock({ moved >= cap }) { return refuse("max_bytes = \(cap)") }
        if Self.echoingMethods.contains(method.uppercased()) { return refuse("\(method) (it echoes the request, secrets included)") }
        let verdict = policy.decide(method: method, host: authority.host, port: authority.port)
        guard case .allowed(let rule, let addressRule) = verdict else {
            if case .denied(let rule) = verdict { refuse(rule) }
            return
        }
        // The name resolved is the name matched, byte for byte (see `Authority`).
        let addresses = IPAddress(authority.host).map { [$0] } ?? resolve(authority.host)
        guard !addresses.isEmpty else {
            _ = record(Decision(method: method, host: authority.host, port: authority.port, allowed: false, rule: "no such host", address: nil))
            return respond(client, 502, "Bad Gateway", "toolhost's egress proxy: \(authority.host) does not resolve.\n")
        }
        // A name may resolve to internal and public addresses at once: only the public ones are tried.
        let usable = addresses.filter { addressRule || !$0.isInternal }
        guard !usable.isEmpty else { return refuse("internal address \(addresses[0].text)", address: addresses[0].text) }
        // A plain loop: a lazy compactMap's `first` runs its closure twice, which connected twice,
        // left one connection open, and could crash when the second attempt failed.
        var connected: (Int32, IPAddress)?
        for address in usable {
            if let fd = Self.connect(address, port: authority.port) {
                connected = (fd, address)
                break
            }
        }
        guard let (upstream, address) = connected else {
            _ = record(Decision(method: method, host: authority.host, port: authority.port, allowed: false, rule: "unreachable", address: usable[0].text))
            return respond(client, 502, "Bad Gateway", "toolhost's egress proxy: \(authority.host):\(authority.port) does not answer.\n")
        }
        defer { Glibc.close(upstream) }
        let tunnel = method == "CONNECT"
        // Plain http carries a secret only where the profile says the host may have it in the clear.
        let swaps = dummies.filter { $0.secret.host.matches(host: authority.host, port: authority.port) && !$0.real.isEmpty && (tunnel || $0.secret.insecureHTTP) }
        _ = record(Decision(
            method: method, host: authority.host, port: authority.port, allowed: true, rule: rule, address: address.text, secrets: swaps.map(\.secret.variable)))
        let command = SocketStream(fd: client), real = SocketStream(fd: upstream)
        guard tunnel else {
            return forward(head, path: path, authority: authority, swaps: swaps, early: rest, from: command, to: real) {
                refuse("max_bytes = \(policy.maxBytes ?? 0)")
            }
        }
        if let key = self.authority, !swaps.isEmpty {
            return broker(command, real, target: authority, early: rest, swaps: swaps, authorityKey: key)
        }
        guard command.write(Self.established[...]) else { return }
        if !rest.isEmpty && !(real.write(rest[...]) && charge(rest.count)) { return }
        relay(command, real)
    }

    /// Methods whose answer is the request itself: refused, since the request may carry a real secret.
    static let echoingMethods: Set<String> = ["TRACE", "TRACK"]

    private static let established = Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8)

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
    private func refuse(_ stream: some ByteStream, _ decision: Decision) {
        _ = record(decision)
        respond(stream, 403, "Forbidden", explain(decision) + "\n", extra: "X-Toolhost-Blocked: \(decision.rule); profile=\(profile)")
    }

    /// A request that cannot be read one way only: 400, and the decision kept like any other.
    private func refuseMalformed(_ stream: some ByteStream, method: String, _ error: RequestHead.Malformed) {
        let rule = "malformed request (\(error))"
        _ = record(Decision(method: method, host: "-", port: 0, allowed: false, rule: rule, address: nil))
        respond(stream, 400, "Bad Request",
                "toolhost's egress proxy refused the request: \(error). It reads requests strictly (RFC 9112): CRLF line ends, one Host that matches the target, a host name of a-z, 0-9, '.' and '-' only.\n",
                extra: "X-Toolhost-Blocked: \(rule); profile=\(profile)")
    }

    /// The method as far as it can be read, for the log of a malformed request.
    private static func methodForLog(_ bytes: [UInt8]) -> String {
        let word = bytes.prefix { RequestHead.isTokenByte($0) }.prefix(16)
        return word.isEmpty ? "?" : String(decoding: word, as: UTF8.self)
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

    /// One request to the host: the proxy's own head, then exactly the body the head frames (what
    /// comes after it is dropped), while the answer flows back scrubbed of every real secret.
    /// `overCap` answers instead when the head alone would take the session past max_bytes.
    private func forward(
        _ head: RequestHead, path: String, authority: Authority, swaps: [Swap], early: [UInt8], from client: some ByteStream,
        to upstream: some ByteStream, overCap: () -> Void
    ) {
        let outgoing = Self.upstreamHead(head, path: path, authority: authority, swaps: swaps)
        let fits = lock.withLock {
            guard policy.maxBytes.map({ moved + outgoing.count <= $0 }) ?? true else { return false }
            moved += outgoing.count
            return true
        }
        guard fits else { return overCap() }
        guard upstream.write(outgoing[...]) else { return }
        var body = BodyReader((try? head.framing()) ?? .none)
        var scrubber = SecretScrubber(pairs: scrubPairs)
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        var pendingBody = early
        var reading = !body.isDone
        while true {
            if !pendingBody.isEmpty {
                guard let taken = try? body.take(pendingBody[...]) else { return }
                guard upstream.write(pendingBody[..<taken]), charge(taken) else { return }
                pendingBody = []
                if body.isDone { reading = false }
            }
            var fds = [pollfd(fd: upstream.fd, events: Int16(POLLIN), revents: upstream.buffered ? Int16(POLLIN) : 0)]
            if reading { fds.append(pollfd(fd: client.fd, events: Int16(POLLIN), revents: client.buffered ? Int16(POLLIN) : 0)) }
            if !fds.contains(where: { $0.revents != 0 }) {
                let ready = poll(&fds, nfds_t(fds.count), 300_000)
                if ready < 0 && errno == EINTR { continue }
                guard ready > 0 else { return }
            }
            if fds.count > 1 && fds[1].revents != 0 {
                let count = client.read(into: &buffer)
                if count <= 0 { reading = false } else { pendingBody = Array(buffer[0..<count]) }
            }
            if fds[0].revents != 0 {
                let count = upstream.read(into: &buffer)
                if count <= 0 {
                    let tail = scrubber.finish()
                    _ = client.write(tail[...])
                    client.closeWrite()
                    return
                }
                guard charge(count) else { return }
                if scrubber.isEmpty {
                    guard client.write(buffer[0..<count]) else { return }
                } else {
                    let clean = scrubber.feed(buffer[0..<count])
                    guard client.write(clean[...]) else { return }
                }
            }
        }
    }

    /// Counts bytes moved either way; false once the session is past its cap.
    private func charge(_ count: Int) -> Bool {
        lock.withLock {
            moved += count
            return policy.maxBytes.map { moved <= $0 } ?? true
        }
    }

    /// A tunnel to a host a secret is bound to, opened: TLS to the real host first (checked against
    /// the host's trust store, so a failure is still a plain 502), then the command's TLS with a
    /// certificate from the session's CA, then one request, whose Host must be the tunnel's host,
    /// forwarded like a plain one.
    private func broker(
        _ command: SocketStream, _ real: SocketStream, target: Authority, early: [UInt8], swaps: [Swap], authorityKey authority: OpaquePointer
    ) {
        // A client that sends its handshake before the tunnel is up is not one the proxy can open.
        guard early.isEmpty else { return respond(command.fd, 400, "Bad Request", "toolhost's egress proxy: wait for the CONNECT's answer before the TLS handshake.\n") }
        let host = target.host
        var error = [CChar](repeating: 0, count: 512)
        Self.setTimeout(real.fd, SO_RCVTIMEO, seconds: 30)
        guard let outer = ctls_connect(authority, real.fd, host, &error, error.count) else {
            let reason = String(characters: error)
            _ = record(Decision(method: "CONNECT", host: host, port: target.port, allowed: false, rule: reason, address: nil))
            return respond(command.fd, 502, "Bad Gateway", "toolhost's egress proxy: \(reason) (\(host)). The proxy trusts the system's CAs and toolhost's SSL_CERT_FILE.\n")
        }
        defer { ctls_free(outer) }
        Self.setTimeout(real.fd, SO_RCVTIMEO, seconds: 0)
        guard command.write(Self.established[...]) else { return }
        guard let inner = ctls_accept(authority, command.fd, host, &error, error.count) else { return }
        defer { ctls_free(inner) }
        let secured = TLSStream(fd: command.fd, tls: inner), upstream = TLSStream(fd: real.fd, tls: outer)
        guard let (bytes, rest) = Self.readHead(secured, within: .seconds(30)) else { return }
        Self.setTimeout(command.fd, SO_RCVTIMEO, seconds: 0)
        let head: RequestHead
        do throws(RequestHead.Malformed) {
            head = try RequestHead.parse(bytes)
            guard head.target.hasPrefix("/") else { throw RequestHead.Malformed("inside a tunnel the target must be a path") }
            // The real value goes only to the host it is for: a Host naming another tenant of the
            // same front end (domain fronting) gets nothing.
            guard let named = head.values("Host").first, target.isNamed(by: named) else {
                throw RequestHead.Malformed("the Host header inside the tunnel must be the tunnel's host \(target.hostHeader)")
            }
        } catch {
            return refuseMalformed(secured, method: Self.methodForLog(bytes), error)
        }
        func refuse(_ rule: String) {
            self.refuse(secured, Decision(method: head.method, host: host, port: target.port, allowed: false, rule: rule, address: nil))
        }
        if Self.echoingMethods.contains(head.method.uppercased()) { return refuse("\(head.method) (it echoes the request, secrets included)") }
        forward(head, path: head.target, authority: target, swaps: swaps, early: rest, from: secured, to: upstream) {
            refuse("max_bytes = \(policy.maxBytes ?? 0)")
        }
    }

    private func record(_ decision: Decision) -> Decision {
        lock.withLock {
            unreported.append(decision)
            journal.append(decision)
            if journal.count > 1000 { journal.removeFirst(journal.count - 1000) }
        }
        if log >= 0 {
            let entry: [String: Any] = [
                "t": Date().ISO8601Format(), "method": decision.method, "host": decision.host, "port": decision.port,
                "allowed": decision.allowed, "rule": decision.rule, "address": decision.address ?? NSNull(), "secrets": decision.secrets,
            ]
            if let data = try? JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys]) {
                let line = Array(data) + [0x0A]
                // One write per line on an O_APPEND descriptor: concurrent connections never interleave.
                _ = line.withUnsafeBytes { Glibc.write(log, $0.baseAddress, $0.count) }
            }
        }
        return decision
    }

    /// Copies both ways until both sides are done, an idle spell of five minutes, or the byte cap.
    private func relay(_ client: some ByteStream, _ upstream: some ByteStream) {
        var open = [client.fd: true, upstream.fd: true]
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while open.values.contains(true) {
            var fds = [client.fd, upstream.fd].filter { open[$0]! }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            // Bytes TLS has decrypted already are ready, though poll cannot see them.
            for index in fds.indices where (fds[index].fd == client.fd ? client.buffered : upstream.buffered) { fds[index].revents = Int16(POLLIN) }
            if !fds.contains(where: { $0.revents != 0 }) {
                let ready = poll(&fds, nfds_t(fds.count), 300_000)
                if ready < 0 && errno == EINTR { continue }
                guard ready > 0 else { return }
            }
            for entry in fds where entry.revents != 0 {
                let fromClient = entry.fd == client.fd
                let count = fromClient ? client.read(into: &buffer) : upstream.read(into: &buffer)
                if count <= 0 {
                    open[entry.fd] = false
                    if fromClient { upstream.closeWrite() } else { client.closeWrite() }
                    continue
                }
                guard fromClient ? upstream.write(buffer[0..<count]) : client.write(buffer[0..<count]) else { return }
                guard charge(count) else { return }
            }
        }
    }

    private func respond(_ client: Int32, _ status: Int, _ reason: String, _ body: String, extra: String? = nil) {
        respond(SocketStream(fd: client), status, reason, body, extra: extra)
    }

    private func respond(_ stream: some ByteStream, _ status: Int, _ reason: String, _ body: String, extra: String? = nil) {
        var head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n"
        if let extra { head += extra + "\r\n" }
        _ = stream.write(Array((head + "\r\n" + body).utf8)[...])
    }

    // MARK: Sockets

    /// The request head's bytes (up to 64 KB, without the blank line) and whatever came after it;
    /// nil when the whole head has not come within `deadline`, however slowly it trickled in.
    private static func readHead(_ stream: some ByteStream, within deadline: Duration) -> ([UInt8], [UInt8])? {
        let clock = ContinuousClock()
        let end = clock.now + deadline
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        let blank: [UInt8] = Array("\r\n\r\n".utf8)
        while data.count < 64 << 10 {
            let left = end - clock.now
            guard left > .zero else { return nil }
            let (seconds, attoseconds) = left.components
            var value = timeval(tv_sec: Int(seconds), tv_usec: max(1, Int(attoseconds / 1_000_000_000_000)))
            setsockopt(stream.fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
            let count = stream.read(into: &buffer)
            guard count > 0 else { return nil }
            let searchFrom = max(0, data.count - 3)
            data += buffer[0..<count]
            if let range = data[searchFrom...].firstRange(of: blank) {
                return (Array(data[..<range.lowerBound]), Array(data[range.upperBound...]))
            }
        }
        return nil
    }


    private static func setTimeout(_ fd: Int32, _ option: Int32, seconds: Int) {
        var value = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A connected socket to `address`, or nil; 15 seconds at most (SO_SNDTIMEO bounds connect on Linux).
    static func connect(_ address: IPAddress, port: Int) -> Int32? {
        if let v4 = address.mappedV4 {
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = in_port_t(UInt16(port).bigEndian)
            withUnsafeMutableBytes(of: &socketAddress.sin_addr) { $0.copyBytes(from: v4) }
            return withUnsafePointer(to: &socketAddress) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { open(AF_INET, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        var socketAddress = sockaddr_in6()
        socketAddress.sin6_family = sa_family_t(AF_INET6)
        socketAddress.sin6_port = in_port_t(UInt16(port).bigEndian)
        withUnsafeMutableBytes(of: &socketAddress.sin6_addr) { $0.copyBytes(from: address.bytes) }
        return withUnsafePointer(to: &socketAddress) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { open(AF_INET6, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }

        func open(_ family: Int32, _ pointer: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32? {
            let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return nil }
            setTimeout(fd, SO_SNDTIMEO, seconds: 15)
            guard Glibc.connect(fd, pointer, length) == 0 else {
                Glibc.close(fd)
                return nil
            }
            setTimeout(fd, SO_SNDTIMEO, seconds: 0)
            return fd
        }
    }

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

/// One side of a proxied connection: a socket, or TLS over one.
protocol ByteStream {
    var fd: Int32 { get }
    /// Bytes read into `buffer` (> 0), 0 at the end, < 0 on an error.
    func read(into buffer: inout [UInt8]) -> Int
    /// Whether all of `bytes` was written.
    func write(_ bytes: ArraySlice<UInt8>) -> Bool
    /// Tells the peer nothing more comes.
    func closeWrite()
    /// Whether bytes wait that poll() cannot see.
    var buffered: Bool { get }
}

struct SocketStream: ByteStream {
    let fd: Int32
    var buffered: Bool { false }

    func read(into buffer: inout [UInt8]) -> Int { Glibc.read(fd, &buffer, buffer.count) }

    func write(_ bytes: ArraySlice<UInt8>) -> Bool {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    func closeWrite() { shutdown(fd, Int32(SHUT_WR)) }
}

struct TLSStream: ByteStream {
    let fd: Int32
    let tls: OpaquePointer
    var buffered: Bool { ctls_pending(tls) > 0 }

    func read(into buffer: inout [UInt8]) -> Int { ctls_read(tls, &buffer, buffer.count) }
    func write(_ bytes: ArraySlice<UInt8>) -> Bool { bytes.withUnsafeBytes { ctls_write(tls, $0.baseAddress, $0.count) == 1 } }
    func closeWrite() { ctls_close_write(tls) }
}
