import CSandbox
import Foundation

/// The egress proxy of one `network: "allowlist"` session. It listens on 127.0.0.1:3128 inside the
/// session's network namespace (which has nothing else but loopback) and connects out from the
/// host's, so a command reaches exactly what the policy allows: plain HTTP in absolute form and
/// CONNECT tunnels. Each decision is kept for the command's denial note and appended to a log.
/// The address checked is the address connected to: a name is resolved once, so DNS cannot point
/// it elsewhere between the check and the connect.
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
    /// Per secret: the dummy commands see and the real value.
    let dummies: [(secret: EgressPolicy.Secret, dummy: String, real: String)]
    private let lock = NSLock()
    private var unreported: [Decision] = []
    private var moved = 0
    private var stopped = false

    /// - Parameters:
    ///   - listener: a listening socket (see `csandbox_listen_in_netns`); the proxy owns it.
    ///   - secrets: the real value of each of the policy's secrets.
    ///   - resolve: a host's addresses (getaddrinfo unless a test says otherwise).
    init(policy: EgressPolicy, profile: String, listener: Int32, logPath: String?, secrets: [String: String],
         resolve: @escaping @Sendable (String) -> [IPAddress] = EgressProxy.systemResolve) {
        self.policy = policy
        self.profile = profile
        self.listener = listener
        log = logPath.map { Glibc.open($0, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600) } ?? -1
        self.resolve = resolve
        dummies = policy.secrets.map { secret in
            (secret, "toolhost-dummy-" + (0..<12).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined(), secrets[secret.from] ?? "")
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

    deinit { if log >= 0 { Glibc.close(log) } }

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
        guard let (head, rest) = Self.readHead(client) else { return }
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
        guard let (upstream, address) = usable.lazy.compactMap({ address in Self.connect(address, port: target.port).map { ($0, address) } }).first else {
            _ = record(Decision(method: method, host: target.host, port: target.port, allowed: false, rule: "unreachable", address: usable[0].text))
            return respond(client, 502, "Bad Gateway", "toolhost's egress proxy: \(target.host):\(target.port) does not answer.\n")
        }
        defer { Glibc.close(upstream) }
        _ = record(Decision(method: method, host: target.host, port: target.port, allowed: true, rule: rule, address: address.text))
        if method == "CONNECT" {
            guard Self.writeAll(client, Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8)) else { return }
            if !rest.isEmpty && !Self.writeAll(upstream, rest) { return }
        } else {
            // Origin form, no hop-by-hop headers, one request per connection.
            let kept = lines.filter { line in
                let lower = line.lowercased()
                return !line.isEmpty && !lower.hasPrefix("proxy-") && !lower.hasPrefix("connection:") && !lower.hasPrefix("keep-alive:")
            }
            var text = ([method + " " + target.path + " " + parts[2]] + kept + ["Connection: close", "", ""]).joined(separator: "\r\n")
            for (secret, dummy, real) in dummies where secret.host.matches(host: name, port: target.port) && !real.isEmpty {
                text = text.replacingOccurrences(of: dummy, with: real)
            }
            guard Self.writeAll(upstream, Array(text.utf8) + rest) else { return }
        }
        relay(client, upstream)
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
        lock.withLock { unreported.append(decision) }
        if log >= 0 {
            let entry: [String: Any] = [
                "t": Date().ISO8601Format(), "method": decision.method, "host": decision.host, "port": decision.port,
                "allowed": decision.allowed, "rule": decision.rule, "address": decision.address ?? NSNull(),
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
    private func relay(_ client: Int32, _ upstream: Int32) {
        var open = [client: true, upstream: true]
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while open.values.contains(true) {
            var fds = [client, upstream].filter { open[$0]! }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), 300_000)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { return }
            for entry in fds where entry.revents != 0 {
                let source = entry.fd, sink = source == client ? upstream : client
                let count = read(source, &buffer, buffer.count)
                if count <= 0 {
                    open[source] = false
                    shutdown(sink, Int32(SHUT_WR))
                    continue
                }
                guard Self.writeAll(sink, Array(buffer[0..<count])) else { return }
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
        _ = Self.writeAll(client, Array((head + "\r\n" + body).utf8))
    }

    // MARK: Sockets

    /// The request head (up to 64 KB) and whatever came after it.
    private static func readHead(_ fd: Int32) -> (String, [UInt8])? {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        while data.count < 64 << 10 {
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { return nil }
            data += buffer[0..<count]
            if let range = data.firstRange(of: end) {
                return (String(decoding: data[..<range.lowerBound], as: UTF8.self), Array(data[range.upperBound...]))
            }
        }
        return nil
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
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
