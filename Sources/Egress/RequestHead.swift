import Foundation
import NIOHTTP1

/// A request head read strictly, so that what the egress proxy decides on is exactly what it sends
/// on: names are tokens, no control bytes, one Host, and a body framed one way only. The proxy
/// then writes a head of its own from these fields, never the client's bytes.
struct RequestHead: Equatable {
    var method: String
    var target: String
    var version: String
    var fields: [Field]

    struct Field: Equatable {
        var name: String
        var value: String
    }

    /// Why a head was refused, in words for the 400.
    struct Malformed: Error, Equatable, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// How the body after the head is framed.
    enum Framing: Equatable {
        case none
        case length(Int)
        case chunked
    }

    /// Every value of the field `name` (any case), in order.
    func values(_ name: String) -> [String] {
        fields.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
    }

    /// The head llhttp parsed (NIOHTTP1's decoder, with none of llhttp's lenient flags set: it
    /// refuses bare CR or LF, folded lines, spaces before a colon, and framing two readers could
    /// read apart), checked once more field by field, so the proxy never decides on a reading that
    /// differs from what it writes on.
    init(_ parsed: HTTPRequestHead) throws(Malformed) {
        method = parsed.method.rawValue
        target = parsed.uri
        version = "HTTP/\(parsed.version.major).\(parsed.version.minor)"
        fields = parsed.headers.map { Field(name: $0.name, value: $0.value) }
        guard !method.isEmpty, method.utf8.allSatisfy(Self.isTokenByte) else { throw Malformed("the method is not a token") }
        guard !target.isEmpty, target.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw Malformed("the request target holds a byte that is not visible ASCII")
        }
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else { throw Malformed("the version \(version) is not HTTP/1.1 or HTTP/1.0") }
        for field in fields {
            guard !field.name.isEmpty, field.name.utf8.allSatisfy(Self.isTokenByte) else { throw Malformed("a header name that is not a token") }
            guard field.value.utf8.allSatisfy({ $0 == 0x09 || $0 >= 0x20 && $0 != 0x7F }) else { throw Malformed("a control byte in a header value") }
        }
        guard values("Host").count <= 1 else { throw Malformed("more than one Host header") }
        _ = try framing()
    }

    /// The body's framing (RFC 9112 section 6), refusing every head two readers could frame apart.
    func framing() throws(Malformed) -> Framing {
        let encodings = values("Transfer-Encoding"), lengths = values("Content-Length")
        if !encodings.isEmpty {
            guard lengths.isEmpty else { throw Malformed("both Transfer-Encoding and Content-Length") }
            guard version == "HTTP/1.1", encodings.count == 1, encodings[0].lowercased() == "chunked" else {
                throw Malformed("a Transfer-Encoding other than one \"chunked\" on HTTP/1.1")
            }
            return .chunked
        }
        guard let length = lengths.first else { return .none }
        guard lengths.count == 1, !length.isEmpty, length.count <= 15, length.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(length)
        else { throw Malformed("a Content-Length that is not one decimal number") }
        return value == 0 ? .none : .length(value)
    }

    /// tchar of RFC 9110.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }
}

/// A host and port as the egress proxy matches, resolves and dials them: the same bytes each time.
/// Only `[a-z0-9.-]` names (lower-cased, one trailing dot dropped, labels of 1-63 bytes, 253 at
/// most), IPv4 literals, and bracketed IPv6 literals pass; anything a resolver or a C string
/// could read differently (NUL, percent signs, CR, LF, spaces, `@`, `\`, a zone id) is refused.
struct Authority: Equatable {
    /// The name or address, as matched and resolved; IPv6 without its brackets.
    let host: String
    let port: Int

    /// `host[:port]` as it goes into the Host header.
    var hostHeader: String {
        let shown = host.contains(":") ? "[\(host)]" : host
        return port == defaultPort ? shown : "\(shown):\(port)"
    }

    /// The port a missing one means (80 for http); nil for CONNECT, where a port is required.
    private let defaultPort: Int?

    /// Parses `host[:port]`; without a port, `defaultPort` (nil: the port is required).
    static func parse(_ text: String, defaultPort: Int?) throws(RequestHead.Malformed) -> Authority {
        var hostPart = Substring(text), portPart: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .init("an IPv6 literal without its closing bracket") }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if after.hasPrefix(":") { portPart = after.dropFirst() } else if !after.isEmpty { throw .init("bytes after the IPv6 literal") }
            let literal = hostPart.utf8.allSatisfy { byte in
                (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte | 0x20) || byte == 0x3A || byte == 0x2E
            }
            guard literal, hostPart.contains(":"), IPAddress(String(hostPart)) != nil else { throw .init("'\(text)' is not an IPv6 literal (a zone id is refused)") }
        } else if let colon = text.lastIndex(of: ":") {
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            guard !hostPart.contains(":") else { throw .init("an IPv6 address without brackets") }
        }
        let port: Int
        if let portPart {
            guard !portPart.isEmpty, portPart.count <= 5, portPart.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(portPart),
                (1...65535).contains(value)
            else { throw .init("the port '\(portPart)' is not a number from 1 to 65535") }
            port = value
        } else {
            guard let defaultPort else { throw .init("no port") }
            port = defaultPort
        }
        var host = String(hostPart).lowercased()
        if !host.contains(":") {
            if host.hasSuffix(".") { host.removeLast() }
            guard !host.isEmpty else { throw .init("an empty host name") }
            guard host.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2E || $0 == 0x2D }) else {
                throw .init("the host name '\(Self.visible(hostPart))' holds a byte outside a-z, 0-9, '.' and '-'")
            }
            guard host.utf8.count <= 253 else { throw .init("a host name over 253 bytes") }
            guard host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy({ (1...63).contains($0.utf8.count) }) else {
                throw .init("the host name '\(host)' has an empty label or one over 63 bytes")
            }
        }
        return Authority(host: host, port: port, defaultPort: defaultPort)
    }

    /// The text with every byte that is not visible ASCII written as \xNN, for messages.
    static func visible(_ text: Substring) -> String {
        text.utf8.map { (0x21...0x7E).contains($0) ? String(UnicodeScalar($0)) : String(format: "\\x%02X", $0) }.joined()
    }

    /// Whether a Host header names this authority (its port may be left out when it is the default).
    func isNamed(by header: String) -> Bool {
        guard let other = try? Authority.parse(header, defaultPort: defaultPort ?? port) else { return false }
        return other.host == host && other.port == port
    }
}
