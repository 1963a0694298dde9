import Foundation

/// A request head read strictly, so that what the egress proxy decides on is exactly what it sends
/// on: lines end in CRLF and nothing else (a bare CR or LF is refused, not read as a line end the
/// way some upstreams do), names are tokens followed at once by a colon, no folded lines, no
/// control bytes, one Host, and a body framed one way only. The proxy then writes a head of its
/// own from these fields, never the client's bytes.
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

    /// Parses the bytes of a head, without the blank line that ends it.
    static func parse(_ bytes: some Collection<UInt8>) throws(Malformed) -> RequestHead {
        var lines: [[UInt8]] = []
        var line: [UInt8] = []
        var iterator = Array(bytes)[...]
        while let byte = iterator.popFirst() {
            switch byte {
            case 0x0D:
                guard iterator.first == 0x0A else { throw Malformed("a CR not followed by LF") }
                iterator.removeFirst()
                lines.append(line)
                line = []
            case 0x0A: throw Malformed("a bare LF (lines end in CRLF)")
            case 0x00: throw Malformed("a NUL byte")
            default: line.append(byte)
            }
        }
        lines.append(line)
        let requestLine = lines.removeFirst()
        let parts = requestLine.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw Malformed("the request line is not METHOD SP TARGET SP VERSION") }
        guard !parts[0].isEmpty, parts[0].allSatisfy(isTokenByte) else { throw Malformed("the method is not a token") }
        guard !parts[1].isEmpty, parts[1].allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw Malformed("the request target holds a byte that is not visible ASCII")
        }
        let version = String(decoding: parts[2], as: UTF8.self)
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else { throw Malformed("the version \(version) is not HTTP/1.1 or HTTP/1.0") }
        var fields: [Field] = []
        for raw in lines {
            guard let first = raw.first else { throw Malformed("an empty line inside the head") }
            guard first != 0x20 && first != 0x09 else { throw Malformed("a folded header line") }
            guard let colon = raw.firstIndex(of: UInt8(ascii: ":")) else { throw Malformed("a header line without a colon") }
            let name = raw[..<colon]
            guard !name.isEmpty, name.allSatisfy(isTokenByte) else { throw Malformed("a header name that is not a token") }
            var value = raw[(colon + 1)...]
            guard value.allSatisfy({ $0 == 0x09 || $0 >= 0x20 && $0 != 0x7F }) else { throw Malformed("a control byte in a header value") }
            while let byte = value.first, byte == 0x20 || byte == 0x09 { value.removeFirst() }
            while let byte = value.last, byte == 0x20 || byte == 0x09 { value.removeLast() }
            fields.append(Field(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self)))
        }
        let head = RequestHead(
            method: String(decoding: parts[0], as: UTF8.self), target: String(decoding: parts[1], as: UTF8.self), version: version,
            fields: fields)
        guard head.values("Host").count <= 1 else { throw Malformed("more than one Host header") }
        _ = try head.framing()
        return head
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

/// Follows a request body's framing byte by byte, so the proxy passes on that body and nothing
/// after it: a second request pipelined behind the first never reaches the upstream.
struct BodyReader {
    private enum State: Equatable {
        case length(Int)
        case size([UInt8])
        case data(Int)
        case dataEnd(sawCR: Bool)
        case trailer([UInt8])
        case done
    }

    private var state: State
    var isDone: Bool { state == .done }

    init(_ framing: RequestHead.Framing) {
        switch framing {
        case .none: state = .done
        case .length(let count): state = .length(count)
        case .chunked: state = .size([])
        }
    }

    /// How many of `bytes`, from the start, belong to the body.
    mutating func take(_ bytes: ArraySlice<UInt8>) throws(RequestHead.Malformed) -> Int {
        var index = bytes.startIndex
        while index < bytes.endIndex && state != .done {
            switch state {
            case .length(let left):
                let taken = min(left, bytes.endIndex - index)
                index += taken
                state = left == taken ? .done : .length(left - taken)
            case .data(let left):
                let taken = min(left, bytes.endIndex - index)
                index += taken
                state = left == taken ? .dataEnd(sawCR: false) : .data(left - taken)
            case .dataEnd(let sawCR):
                let byte = bytes[index]
                index += 1
                if !sawCR {
                    guard byte == 0x0D else { throw .init("a chunk longer than its size") }
                    state = .dataEnd(sawCR: true)
                } else {
                    guard byte == 0x0A else { throw .init("a CR not followed by LF after a chunk") }
                    state = .size([])
                }
            case .size(var line), .trailer(var line):
                let byte = bytes[index]
                index += 1
                let inTrailer: Bool = if case .trailer = state { true } else { false }
                if byte == 0x0A {
                    guard line.last == 0x0D else { throw .init("a bare LF in the chunked body") }
                    line.removeLast()
                    state = inTrailer ? (line.isEmpty ? .done : .trailer([])) : try Self.afterSize(line)
                } else {
                    guard byte != 0 && line.count < 4096 else { throw .init("a chunk line that is too long or holds NUL") }
                    if line.last == 0x0D { throw .init("a CR not followed by LF in the chunked body") }
                    line.append(byte)
                    state = inTrailer ? .trailer(line) : .size(line)
                }
            case .done: break
            }
        }
        return index - bytes.startIndex
    }

    private static func afterSize(_ line: [UInt8]) throws(RequestHead.Malformed) -> State {
        let digits = line.prefix { $0 != UInt8(ascii: ";") }
        guard !digits.isEmpty, digits.count <= 15,
            digits.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0 | 0x20) }),
            let size = Int(String(decoding: digits, as: UTF8.self), radix: 16)
        else { throw .init("a chunk size that is not a hex number") }
        return size == 0 ? .trailer([]) : .data(size)
    }
}
