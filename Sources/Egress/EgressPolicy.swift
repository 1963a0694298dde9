import Foundation

/// What commands of a profile with `network: "allowlist"` may reach through toolhost's egress
/// proxy (the profile's `egress` object). Deny wins over allow; a host on neither list is refused.
/// A name never opens a private, loopback or link-local address, whatever it resolves to: only
/// an allow rule written as that address does.
public struct EgressPolicy: Sendable, Equatable {
    /// One host pattern: `example.com`, `*.example.com` (its subdomains), `*` (any host), or an
    /// IP address; each with an optional `:port`.
    public struct Rule: Sendable, Equatable, CustomStringConvertible {
        let host: String
        let port: Int?
        public let description: String

        /// Parses a rule; nil when it is not one of the forms above.
        public init?(_ text: String) {
            var rest = text.trimmingCharacters(in: .whitespaces).lowercased()
            var port: Int?
            if rest.hasPrefix("[") {
                // [v6]:port
                guard let close = rest.firstIndex(of: "]") else { return nil }
                let after = rest[rest.index(after: close)...]
                if after.hasPrefix(":") {
                    guard let value = Int(after.dropFirst()), (1...65535).contains(value) else { return nil }
                    port = value
                } else if !after.isEmpty { return nil }
                rest = String(rest[rest.index(after: rest.startIndex)..<close])
            } else if rest.filter({ $0 == ":" }).count == 1, let colon = rest.lastIndex(of: ":") {
                guard let value = Int(rest[rest.index(after: colon)...]), (1...65535).contains(value) else { return nil }
                port = value
                rest = String(rest[..<colon])
            }
            guard !rest.isEmpty else { return nil }
            if rest != "*" {
                let name = rest.hasPrefix("*.") ? String(rest.dropFirst(2)) : rest
                let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-.:")
                guard !name.isEmpty, name.allSatisfy(allowed.contains), !name.contains("*") else { return nil }
            }
            host = rest
            self.port = port
            description = text
        }

        /// Whether the rule names an IP address rather than a name or a pattern.
        var isAddress: Bool { IPAddress(host) != nil }

        func matches(host name: String, port requested: Int) -> Bool {
            if let port, port != requested { return false }
            if host == "*" { return true }
            if host.hasPrefix("*.") { return name.hasSuffix(host.dropFirst(1)) }
            if let mine = IPAddress(host), let theirs = IPAddress(name) { return mine == theirs }
            return host == name
        }
    }

    /// A secret the proxy puts into requests to one host in place of the dummy that commands see.
    public struct Secret: Sendable, Equatable {
        /// The host (a rule) whose requests get the real value.
        public let host: Rule
        /// The variable commands see, holding the dummy.
        public let variable: String
        /// The host's variable holding the real value.
        public let from: String
        /// The one request header whose dummy is replaced (`Authorization` unless the profile says).
        public var header: String = "Authorization"
        /// Whether the host also gets the real value over plain http (`insecure_http`), where anyone
        /// on the path reads it; otherwise only inside TLS.
        public var insecureHTTP: Bool = false

        public init(host: Rule, variable: String, from: String) {
            self.host = host
            self.variable = variable
            self.from = from
        }

        /// Whether `name` can be the header a secret goes in (an HTTP token).
        public static func isHeaderName(_ name: String) -> Bool {
            !name.isEmpty && name.utf8.allSatisfy(RequestHead.isTokenByte)
        }
    }

    public var allow: [Rule]
    public var deny: [Rule]
    /// Only GET, HEAD and OPTIONS; CONNECT (whose methods cannot be seen) is refused.
    public var readOnly: Bool
    /// What a session may move through the proxy, both ways; nil for no cap.
    public var maxBytes: Int?
    public var secrets: [Secret]

    public init(allow: [Rule], deny: [Rule] = [], readOnly: Bool = false, maxBytes: Int? = nil, secrets: [Secret] = []) {
        self.allow = allow
        self.deny = deny
        self.readOnly = readOnly
        self.maxBytes = maxBytes
        self.secrets = secrets
    }

    /// Where a request stands before its host is resolved.
    public enum Verdict: Equatable {
        /// Allowed by `rule`; `addressRule` when the rule names the address itself.
        case allowed(rule: String, addressRule: Bool)
        /// Refused, by `rule` (as the profile spells it, or a built-in reason).
        case denied(rule: String)
    }

    public static let readOnlyMethods: Set<String> = ["GET", "HEAD", "OPTIONS"]

    func decide(method: String, host: String, port: Int) -> Verdict {
        let name = Self.normalized(host)
        if let rule = deny.first(where: { $0.matches(host: name, port: port) }) { return .denied(rule: "deny \"\(rule)\"") }
        if readOnly && !Self.readOnlyMethods.contains(method) {
            return .denied(rule: method == "CONNECT" ? "read_only (https cannot be inspected, so CONNECT is refused)" : "read_only (GET, HEAD and OPTIONS only)")
        }
        guard let rule = allow.first(where: { $0.matches(host: name, port: port) }) else { return .denied(rule: "not in allow") }
        return .allowed(rule: "allow \"\(rule)\"", addressRule: rule.isAddress)
    }

    static func normalized(_ host: String) -> String {
        var name = host.lowercased()
        if name.hasPrefix("[") && name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        while name.hasSuffix(".") { name.removeLast() }
        return name
    }
}

/// An IPv4 or IPv6 address, with the ranges no name may lead to.
struct IPAddress: Equatable {
    /// 16 bytes; IPv4 as ::ffff:a.b.c.d.
    let bytes: [UInt8]

    init?(_ text: String) {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = Array(repeating: 0, count: 10) + [0xff, 0xff] + withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// The IPv4 address of an IPv4-mapped one (::ffff:a.b.c.d), which is how IPv4 is kept here.
    var mappedV4: [UInt8]? {
        Array(bytes[0..<12]) == Array(repeating: 0, count: 10) + [0xff, 0xff] ? Array(bytes[12...]) : nil
    }

    /// The IPv4 address of a mapped or a NAT64 (64:ff9b::/96) one: where a connection to it goes.
    var v4: [UInt8]? {
        mappedV4 ?? (Array(bytes[0..<12]) == [0, 0x64, 0xff, 0x9b] + Array(repeating: 0, count: 8) ? Array(bytes[12...]) : nil)
    }

    /// Every IPv4 address this one carries by a transition scheme: mapped (::ffff:0:0/96), SIIT
    /// (::ffff:0:0:0/96), compatible (::/96), NAT64 (64:ff9b::/96 and 64:ff9b:1::/48), 6to4
    /// (2002::/16) and Teredo (2001::/32: its server, and its client with the bits flipped).
    var embeddedV4: [[UInt8]] {
        let zeros = { (count: Int) in Array(repeating: UInt8(0), count: count) }
        let last = Array(bytes[12...])
        var found: [[UInt8]] = []
        if let v4 { found.append(v4) }
        if Array(bytes[0..<12]) == zeros(8) + [0xff, 0xff, 0, 0] { found.append(last) }
        if Array(bytes[0..<12]) == zeros(12) { found.append(last) }
        if Array(bytes[0..<6]) == [0, 0x64, 0xff, 0x9b, 0, 1] { found.append(last) }
        if bytes[0] == 0x20 && bytes[1] == 0x02 { found.append(Array(bytes[2..<6])) }
        if Array(bytes[0..<4]) == [0x20, 0x01, 0, 0] {
            found.append(Array(bytes[4..<8]))
            found.append(last.map { $0 ^ 0xff })
        }
        return found
    }

    var text: String {
        if let a = mappedV4 { return a.map(String.init).joined(separator: ".") }
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count))
        return String(characters: buffer)
    }

    /// Loopback, private, shared (CGNAT), link-local, multicast, reserved or unspecified: the
    /// host's own side of the network, which a sandboxed command reaches only when a rule names it.
    var isInternal: Bool {
        if let v4 { return Self.isInternalV4(v4) }
        if embeddedV4.contains(where: Self.isInternalV4) { return true }
        if bytes == Array(repeating: 0, count: 16) || bytes == Array(repeating: 0, count: 15) + [1] { return true }
        if Array(bytes[0..<12]) == Array(repeating: 0, count: 12) { return true }  // ::/96, IPv4-compatible (deprecated)
        if bytes[0] & 0xfe == 0xfc { return true }  // fc00::/7 unique local
        if bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80 { return true }  // fe80::/10 link-local
        if bytes[0] == 0xfe && bytes[1] & 0xc0 == 0xc0 { return true }  // fec0::/10 site-local (deprecated)
        if bytes[0] == 0xff { return true }  // multicast
        if Array(bytes[0..<8]) == [0x01, 0, 0, 0, 0, 0, 0, 0] { return true }  // 100::/64 discard
        if Array(bytes[0..<4]) == [0x20, 0x01, 0x0d, 0xb8] { return true }  // 2001:db8::/32 documentation
        return false
    }

    private static func isInternalV4(_ a: [UInt8]) -> Bool {
        switch (a[0], a[1]) {
        case (0, _), (10, _), (127, _), (169, 254), (192, 168), (198, 18), (198, 19): return true
        case (100, 64...127), (172, 16...31): return true
        case (192, 0) where a[2] == 0: return true
        case (224...255, _): return true
        default: return false
        }
    }
}

extension String {
    /// The text of a NUL-terminated C buffer that a C function filled.
    init(characters buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
