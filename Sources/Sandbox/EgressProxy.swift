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
    init(policy: EgressPolicy, profile: String, listener: Int32, logPath: String?, secrets: [String: String], upstreamTrust: String? = nil,
         resolve: @escaping @Sendable (String) -> [IPAddress] = EgressProxy.systemResolve) throws {
        self.policy = policy
        self.profile = profile
        self.listener = listener
        log = logPath.map { Glibc.open($0, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600) } ?? -1
        self.resolve = resolve
        dummies = policy.secrets.map { secret in
            (secret, "toolhost-dummy-" + (0..<12).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined(), secrets[secret.from] ?? "")
        }
        if policy.secrets.isEmpty {
            authority = nil
            authorityPEM = nil
        } else {
            var error = [CChar](repeating: 0, count: 512)
            guard let made = ctls_authority_new(Self.nameConstraints(policy.secrets.map(\.host)), upstreamTrust, &error, error.count) else {
                Glibc.close(listener)
                throw SandboxUnavailable("profile \(profile): \(String(characters: error)). Check SSL_CERT_FILE in toolhost's environment.")
            }
            authority = made
            authorityPEM = String(cString: ctls_authority_pem(made))
        }
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "toolhost-egress"
        thread.start()
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

    private func serve(_ client: Int32) {
        Self.setTimeout(client, SO_RCVTIMEO, seconds: 30)
        guard let (head, rest) = Self.readHead(SocketStream(fd: client)) else { return }
        Self.setTimeout(client, SO_RCVTIMEO, seconds: 0)
        var lines = head.components(separatedBy: "\r\n")
        let parts = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard parts.count == 3, let target = Target(method: parts[0], target: parts[1]) else {
            return respond(client, 400, "Bad Request", "toolhost's egress proxy takes absolute http:// URLs and CONNECT host:port.\n")
        }
        let method = parts[0].uppercased()
        func refuse(_ rule: String, address: String? = nil) {
            let decision = record(Decision(method: method, host: target.host, port: target.port, allowed: false, rule: rule, address: address))
            respond(client, 403, "Forbidden", explain(decision) + "\n", extra: "X-Toolhost-Blocked: \(rule); profile=\(profile)")
        }
        if let cap = policy.maxBytes, lock.withLock({ moved >= cap }) { return refuse("max_bytes = \(cap)") }
        let verdict = policy.decide(method: method, host: target.host, port: target.port)
        guard case .allowed(let rule, let addressRule) = verdict else {
            if case .denied(let rule) = verdict { refuse(rule) }
            return
        }
        let name = EgressPolicy.normalized(target.host)
        let addresses = IPAddress(name).map { [$0] } ?? resolve(name)
        guard !addresses.isEmpty else {
            _ = record(Decision(method: method, host: target.host, port: target.port, allowed: false, rule: "no such host", address: nil))
            return respond(client, 502, "Bad Gateway", "toolhost's egress proxy: \(target.host) does not resolve.\n")
        }
        // A name may resolve to internal and public addresses at once: only the public ones are tried.
        let usable = addresses.filter { addressRule || !$0.isInternal }
        guard !usable.isEmpty else { return refuse("internal address \(addresses[0].text)", address: addresses[0].text) }
        // A plain loop: a lazy compactMap's `first` runs its closure twice, which connected twice,
        // left one connection open, and could crash when the second attempt failed.
        var connected: (Int32, IPAddress)?
        for address in usable {
            if let fd = Self.connect(address, port: target.port) {
                connected = (fd, address)
                break
            }
        }
        guard let (upstream, address) = connected else {
            _ = record(Decision(method: method, host: target.host, port: target.port, allowed: false, rule: "unreachable", address: usable[0].text))
            return respond(client, 502, "Bad Gateway", "toolhost's egress proxy: \(target.host):\(target.port) does not answer.\n")
        }
        defer { Glibc.close(upstream) }
        let swaps = dummies.filter { $0.secret.host.matches(host: name, port: target.port) && !$0.real.isEmpty }
        _ = record(Decision(
            method: method, host: target.host, port: target.port, allowed: true, rule: rule, address: address.text, secrets: swaps.map(\.secret.variable)))
        let command = SocketStream(fd: client), real = SocketStream(fd: upstream)
        if method == "CONNECT" {
            if let authority, !swaps.isEmpty {
                return broker(command, real, host: name, port: target.port, early: rest, swaps: swaps, authority: authority)
            }
            guard command.write(Self.established[...]) else { return }
            if !rest.isEmpty && !real.write(rest[...]) { return }
        } else {
            guard real.write((Self.upstreamHead(method + " " + target.path + " " + parts[2], lines, swaps: swaps) + rest)[...]) else { return }
        }
        relay(command, real)
    }

    private static let established = Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8)

    /// A request head as it goes to the host: origin form, no hop-by-hop headers, one request per
    /// connection (so every request's head passes here), each bound secret's dummy replaced.
    private static func upstreamHead(_ requestLine: String, _ lines: [String], swaps: [Swap]) -> [UInt8] {
        let kept = lines.filter { line in
            let lower = line.lowercased()
            return !line.isEmpty && !lower.hasPrefix("proxy-") && !lower.hasPrefix("connection:") && !lower.hasPrefix("keep-alive:")
        }
        var text = ([requestLine] + kept + ["Connection: close", "", ""]).joined(separator: "\r\n")
        for (_, dummy, real) in swaps { text = text.replacingOccurrences(of: dummy, with: real) }
        return Array(text.utf8)
    }

    /// A tunnel to a host a secret is bound to, opened: TLS to the real host first (checked against
    /// the host's trust store, so a failure is still a plain 502), then the command's TLS with a
    /// certificate from the session's CA, then one request whose head gets the real value.
    private func broker(
        _ command: SocketStream, _ real: SocketStream, host: String, port: Int, early: [UInt8], swaps: [Swap],
        authority: OpaquePointer
    ) {
        // A client that sends its handshake before the tunnel is up is not one the proxy can open.
        guard early.isEmpty else { return respond(command.fd, 400, "Bad Request", "toolhost's egress proxy: wait for the CONNECT's answer before the TLS handshake.\n") }
        var error = [CChar](repeating: 0, count: 512)
        Self.setTimeout(real.fd, SO_RCVTIMEO, seconds: 30)
        guard let outer = ctls_connect(authority, real.fd, host, &error, error.count) else {
            let reason = String(characters: error)
            _ = record(Decision(method: "CONNECT", host: host, port: port, allowed: false, rule: reason, address: nil))
            return respond(command.fd, 502, "Bad Gateway", "toolhost's egress proxy: \(reason) (\(host)). The proxy trusts the system's CAs and toolhost's SSL_CERT_FILE.\n")
        }
        defer { ctls_free(outer) }
        Self.setTimeout(real.fd, SO_RCVTIMEO, seconds: 0)
        guard command.write(Self.established[...]) else { return }
        guard let inner = ctls_accept(authority, command.fd, host, &error, error.count) else { return }
        defer { ctls_free(inner) }
        let secured = TLSStream(fd: command.fd, tls: inner), upstream = TLSStream(fd: real.fd, tls: outer)
        guard let (head, rest) = Self.readHead(secured) else { return }
        Self.setTimeout(command.fd, SO_RCVTIMEO, seconds: 0)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst()
        guard upstream.write((Self.upstreamHead(requestLine, lines, swaps: swaps) + rest)[...]) else { return }
        relay(secured, upstream)
    }

    /// Where a request goes: CONNECT's host:port, or an absolute http:// URL's host, port and path.
    private struct Target {
        let host: String
        let port: Int
        let path: String

        init?(method: String, target: String) {
            if method.uppercased() == "CONNECT" {
                guard let colon = target.lastIndex(of: ":"), let port = Int(target[target.index(after: colon)...]), (1...65535).contains(port) else { return nil }
                host = String(target[..<colon])
                self.port = port
                path = ""
            } else {
                guard target.lowercased().hasPrefix("http://"), let url = URLComponents(string: target), let host = url.host, !host.isEmpty else { return nil }
                self.host = host
                port = url.port ?? 80
                let query = url.percentEncodedQuery.map { "?" + $0 } ?? ""
                path = (url.percentEncodedPath.isEmpty ? "/" : url.percentEncodedPath) + query
            }
            guard !host.isEmpty else { return nil }
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
                let over = lock.withLock {
                    moved += count
                    return policy.maxBytes.map { moved > $0 } ?? false
                }
                if over { return }
            }
        }
    }

    private func respond(_ client: Int32, _ status: Int, _ reason: String, _ body: String, extra: String? = nil) {
        var head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n"
        if let extra { head += extra + "\r\n" }
        _ = SocketStream(fd: client).write(Array((head + "\r\n" + body).utf8)[...])
    }

    // MARK: Sockets

    /// The request head (up to 64 KB) and whatever came after it.
    private static func readHead(_ stream: some ByteStream) -> (String, [UInt8])? {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        while data.count < 64 << 10 {
            let count = stream.read(into: &buffer)
            guard count > 0 else { return nil }
            data += buffer[0..<count]
            if let range = data.firstRange(of: end) {
                return (String(decoding: data[..<range.lowerBound], as: UTF8.self), Array(data[range.upperBound...]))
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
