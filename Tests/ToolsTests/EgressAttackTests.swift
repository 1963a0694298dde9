import Foundation
import TestSupport
import NIOHTTP1
import Testing
@testable import Egress
@testable import Sandbox
@testable import Tools

/// Requests built to be read one way by the proxy and another by a resolver, a C string or the
/// upstream: each is sent byte for byte to a real proxy on loopback, whose resolver records every
/// name it is asked for, in front of a real server that records every request it gets.
@Suite(.serialized) struct EgressAttackTests {
    /// A proxy allowing `*.allowed.test` (which "resolves" to the stand-in on 127.0.0.2) and the
    /// stand-in's own address.
    final class Rig: @unchecked Sendable {
        let scratch: Scratch
        let server: StandIn
        let proxy: EgressProxy
        let port: Int
        private let asked = LockedBox<[String]>([])
        var names: [String] { asked.value }

        init(readOnly: Bool = false, maxBytes: Int? = nil, secrets: [EgressPolicy.Secret] = [], real: [String: String] = [:]) throws {
            scratch = try Scratch()
            server = try StandIn(scratch, name: "upstream")
            let listener = try EgressTests().loopbackListener()
            port = listener.port
            let policy = EgressPolicy(
                allow: [try #require(EgressPolicy.Rule("*.allowed.test")), try #require(EgressPolicy.Rule("127.0.0.2"))], readOnly: readOnly,
                maxBytes: maxBytes, secrets: secrets)
            let asked = self.asked
            proxy = try EgressProxy(policy: policy, profile: "attack", listener: listener.fd, logPath: nil, secrets: real) { name in
                asked.update { $0.append(name) }
                return name.hasSuffix(".allowed.test") ? [IPAddress("127.0.0.2")!] : []
            }
        }

        deinit { proxy.stop() }

        /// A connection to the proxy, which the caller closes.
        func connect() throws -> Int32 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            try #require(connected)
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            return fd
        }

        /// Sends `bytes` as one write and reads the answer until the proxy closes.
        func send(_ bytes: [UInt8]) throws -> String {
            let fd = try connect()
            defer { close(fd) }
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            var answer: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = Glibc.read(fd, &buffer, buffer.count)
                guard count > 0 else { break }
                answer += buffer[0..<count]
            }
            return String(decoding: answer, as: UTF8.self)
        }

        func send(_ text: String) throws -> String { try send(Array(text.utf8)) }
    }

    /// The report's attack: a NUL inside the host name passes a `*.allowed.test` rule matched on the
    /// Swift string, and then a C resolver stops at the NUL and dials 203.0.113.7. Refused before
    /// anything is resolved, in the absolute form, percent-encoded, and in CONNECT.
    @Test func aNulInTheHostNameOpensNothing() throws {
        let rig = try Rig()
        let absolute = try rig.send("GET http://203.0.113.7%00.allowed.test/ HTTP/1.1\r\nHost: 203.0.113.7%00.allowed.test\r\n\r\n")
        let raw = try rig.send(Array("GET http://203.0.113.7".utf8) + [0] + Array(".allowed.test/ HTTP/1.1\r\n\r\n".utf8))
        let tunnel = try rig.send(Array("CONNECT 203.0.113.7".utf8) + [0] + Array(".allowed.test:443 HTTP/1.1\r\n\r\n".utf8))
        for answer in [absolute, raw, tunnel] {
            #expect(answer.hasPrefix("HTTP/1.1 400 "), "\(answer)")
            #expect(answer.contains("X-Toolhost-Blocked: malformed request"), "the rule is named: \(answer)")
        }
        #expect(rig.names.isEmpty, "nothing was resolved: \(rig.names)")
        #expect(rig.server.requests.isEmpty)
        #expect(rig.proxy.takeRefusals().count == 3)
    }

    /// OpenShell-style parser differentials: every head that two readers could split, frame or
    /// aim differently is refused with 400 before any name is resolved or any byte goes out.
    @Test(arguments: [
        ("CR in the host", "GET http://a.allowed.test\r.evil/ HTTP/1.1\r\n\r\n"),
        ("LF in the host", "GET http://a.allowed.test\n.evil/ HTTP/1.1\r\n\r\n"),
        ("space in the host", "GET http://a .allowed.test/ HTTP/1.1\r\n\r\n"),
        ("userinfo", "GET http://203.0.113.7@a.allowed.test/ HTTP/1.1\r\n\r\n"),
        ("backslash", "GET http://203.0.113.7\\.allowed.test/ HTTP/1.1\r\n\r\n"),
        ("percent", "GET http://a%2eallowed.test/ HTTP/1.1\r\n\r\n"),
        ("upper-ASCII byte", "GET http://a\u{e9}.allowed.test/ HTTP/1.1\r\n\r\n"),
        ("a label over 63 bytes", "GET http://\(String(repeating: "a", count: 64)).allowed.test/ HTTP/1.1\r\n\r\n"),
        ("an empty label", "GET http://a..allowed.test/ HTTP/1.1\r\n\r\n"),
        ("a bracket left open", "CONNECT [::1:443 HTTP/1.1\r\n\r\n"),
        ("an IPv6 zone id", "CONNECT [fe80::1%25eth0]:443 HTTP/1.1\r\n\r\n"),
        ("unbracketed IPv6", "CONNECT ::1:443 HTTP/1.1\r\n\r\n"),
        ("a signed port", "GET http://a.allowed.test:+80/ HTTP/1.1\r\n\r\n"),
        ("port 0", "CONNECT a.allowed.test:0 HTTP/1.1\r\n\r\n"),
        ("port 65536", "CONNECT a.allowed.test:65536 HTTP/1.1\r\n\r\n"),
        ("CONNECT without a port", "CONNECT a.allowed.test HTTP/1.1\r\n\r\n"),
        ("two Host headers", "GET http://a.allowed.test/ HTTP/1.1\r\nHost: a.allowed.test\r\nHost: evil.test\r\n\r\n"),
        ("Host against the absolute URI", "GET http://a.allowed.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n"),
        ("Host against the CONNECT authority", "CONNECT a.allowed.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n"),
        ("a bare LF ending a header", "GET http://a.allowed.test/ HTTP/1.1\r\nX: a\nConnection: keep-alive\r\n\r\n"),
        ("a bare CR in a header", "GET http://a.allowed.test/ HTTP/1.1\r\nX: a\rb\r\n\r\n"),
        ("a folded header", "GET http://a.allowed.test/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n"),
        ("a space before the colon", "GET http://a.allowed.test/ HTTP/1.1\r\nHost : evil.test\r\n\r\n"),
        ("Transfer-Encoding and Content-Length", "POST http://a.allowed.test/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("two Content-Lengths", "POST http://a.allowed.test/ HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc"),
        ("a Transfer-Encoding that is not chunked", "POST http://a.allowed.test/ HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
        ("two spaces in the request line", "GET  http://a.allowed.test/ HTTP/1.1\r\n\r\n"),
        ("HTTP/0.9 style", "GET http://a.allowed.test/\r\n\r\n"),
        ("a fragment", "GET http://a.allowed.test/#x HTTP/1.1\r\n\r\n"),
    ])
    func aHeadTwoReadersCouldReadApartIsRefused(_ name: String, _ request: String) throws {
        let rig = try Rig()
        let answer = try rig.send(request)
        #expect(answer.hasPrefix("HTTP/1.1 400 "), "\(name): \(answer)")
        #expect(rig.names.isEmpty, "\(name): nothing resolved: \(rig.names)")
        #expect(rig.server.requests.isEmpty, "\(name): nothing reached the server")
    }

    /// What is well-formed still passes: an upper-case name with a trailing dot is matched and
    /// resolved as its lower-case form (and refused here only because it leads inside), and a
    /// request to an allowed address gets a head the proxy wrote itself.
    @Test func aWellFormedRequestStillPasses() throws {
        let rig = try Rig()
        let named = try rig.send("GET http://Files.Allowed.Test.:\(rig.server.port)/x.txt HTTP/1.1\r\nHost: files.allowed.test:\(rig.server.port)\r\n\r\n")
        #expect(named.contains("internal address 127.0.0.2"), "\(named)")
        #expect(rig.names == ["files.allowed.test"])
        try "x\n".write(toFile: rig.server.folder + "/x.txt", atomically: true, encoding: .utf8)
        let answer = try rig.send(
            "GET http://127.0.0.2:\(rig.server.port)?q=1 HTTP/1.1\r\nHost: 127.0.0.2:\(rig.server.port)\r\nProxy-Connection: keep-alive\r\nConnection: X-Drop\r\nX-Drop: 1\r\nUser-Agent: t\r\n\r\n")
        #expect(answer.contains(" 200 "), "\(answer)")
        let head = try #require(rig.server.requests.first)
        #expect(head.hasPrefix("GET /?q=1 HTTP/1.1\nHost: 127.0.0.2:\(rig.server.port)\nUser-Agent: t\nConnection: close\n"), "the proxy writes its own head: \(head)")
        #expect(!head.contains("X-Drop") && !head.contains("Proxy-Connection"))
    }

    /// read_only judged on the parsed request: a POST hidden behind a bare LF is refused, and a
    /// DELETE pipelined behind a GET (with an injected keep-alive) never reaches the server.
    @Test func readOnlyCannotBeSmuggledPast() throws {
        let rig = try Rig(readOnly: true)
        try "x\n".write(toFile: rig.server.folder + "/x.txt", atomically: true, encoding: .utf8)
        let target = "http://127.0.0.2:\(rig.server.port)"
        let hidden = try rig.send("GET \(target)/x.txt HTTP/1.1\r\nX: y\nPOST /x.txt HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        #expect(hidden.hasPrefix("HTTP/1.1 400 "), "\(hidden)")
        let pipelined = try rig.send(
            "GET \(target)/x.txt HTTP/1.1\r\nConnection: keep-alive\r\n\r\nDELETE \(target)/x.txt HTTP/1.1\r\nHost: 127.0.0.2:\(rig.server.port)\r\n\r\n")
        #expect(pipelined.contains("200"), "\(pipelined)")
        let methods = rig.server.requests.map { $0.split(separator: " ").first.map(String.init) ?? "" }
        #expect(methods == ["GET"], "one request per connection: \(rig.server.requests)")
        let delete = try rig.send("DELETE \(target)/x.txt HTTP/1.1\r\n\r\n")
        #expect(delete.contains("403") && delete.contains("read_only"), "\(delete)")
        let trace = try Rig().send("TRACE \(target)/ HTTP/1.1\r\n\r\n")
        #expect(trace.contains("403") && trace.contains("TRACE"), "\(trace)")
    }

    /// A body framed by Content-Length or chunked goes through whole, and what follows it does not.
    @Test func aBodyGoesThroughAndNothingAfterIt() throws {
        let rig = try Rig()
        let target = "http://127.0.0.2:\(rig.server.port)/post"
        let chunked = try rig.send("POST \(target) HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\nTrailer: t\r\n\r\nDELETE /x HTTP/1.1\r\n\r\n")
        #expect(chunked.contains(" 200 "), "\(chunked)")
        let sized = try rig.send("POST \(target) HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcDELETE /x HTTP/1.1\r\n\r\n")
        #expect(sized.contains(" 200 "), "\(sized)")
        #expect(rig.server.requests.count == 2 && rig.server.requests.allSatisfy { $0.hasPrefix("POST /post ") }, "\(rig.server.requests)")
        let bad = try rig.send("POST \(target) HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        #expect(!bad.contains(" 200 "), "a chunk size that is no number ends the exchange: \(bad)")
    }

    /// max_bytes counts heads too: large heads stop at the cap instead of 18 MB going out.
    @Test func maxBytesCountsRequestHeads() throws {
        let rig = try Rig(maxBytes: 100_000)
        let filler = String(repeating: "a", count: 30_000)
        var refused = 0
        for _ in 0..<20 {
            let answer = try rig.send("GET http://127.0.0.2:\(rig.server.port)/ HTTP/1.1\r\nX-Fill: \(filler)\r\n\r\n")
            if answer.contains("max_bytes") { refused += 1 }
        }
        let sent = rig.server.requests.reduce(0) { $0 + $1.utf8.count }
        #expect(refused >= 16, "\(refused) of 20 refused")
        #expect(sent <= 100_000, "\(sent) bytes of heads reached the server")
    }

    /// The proxy serves connections on an event loop: 64 clients that each send half a head hold
    /// no thread each, the 65th gets a 503 at once, and a slot freed is served again.
    @Test func theCapHoldsWithoutAThreadPerConnection() async throws {
        let rig = try Rig()
        try "x\n".write(toFile: rig.server.folder + "/x.txt", atomically: true, encoding: .utf8)
        let threads = { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0 }
        _ = try rig.send("GET http://127.0.0.2:\(rig.server.port)/x.txt HTTP/1.1\r\n\r\n")
        let before = threads()
        var open: [Int32] = []
        defer { open.forEach { close($0) } }
        for _ in 0..<EgressProxy.connectionCap {
            let fd = try rig.connect()
            open.append(fd)
            _ = Array("GET http://127.0.0.2:\(rig.server.port)/x.txt HTTP/1.1\r\n".utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(threads() - before < 8, "\(threads() - before) threads for \(open.count) connections")
        let turned = try rig.send("GET http://127.0.0.2:\(rig.server.port)/x.txt HTTP/1.1\r\n\r\n")
        #expect(turned.hasPrefix("HTTP/1.1 503 ") && turned.contains("Retry-After: 1"), "\(turned)")
        open.prefix(8).forEach { close($0) }
        open.removeFirst(8)
        var served = ""
        for _ in 0..<50 where !served.contains(" 200 ") {
            try await Task.sleep(for: .milliseconds(50))
            served = try rig.send("GET http://127.0.0.2:\(rig.server.port)/x.txt HTTP/1.1\r\n\r\n")
        }
        #expect(served.contains(" 200 "), "\(served)")
    }

    /// Every IPv4-embedding IPv6 form of an internal address is internal.
    @Test func embeddedInternalAddressesAreInternal() throws {
        for text in ["::127.0.0.1", "::ffff:127.0.0.1", "::ffff:0:127.0.0.1", "::ffff:0:a00:1", "64:ff9b::7f00:1", "64:ff9b:1::a00:1",
                     "2002:7f00:1::", "2002:a00:1::1", "2001:0:4136:e378:8000:63bf:80ff:fffe", "::", "::1", "fe80::1", "fd00::1", "fec0::1", "2001:db8::1"] {
            #expect(try #require(IPAddress(text)).isInternal, "\(text)")
        }
        for text in ["2606:4700::1111", "::ffff:1.1.1.1", "2002:101:101::", "64:ff9b::101:101", "8.8.8.8"] {
            #expect(try !#require(IPAddress(text)).isInternal, "\(text)")
        }
    }

    /// A tool result loses a host secret in every form a file or an echo may hold it.
    @Test func toolResultsLoseEveryFormOfASecret() {
        let secret = "ghp_\(UUID().uuidString)/x+y"
        let redactor = Redactor(environment: ["GITHUB_TOKEN": secret])
        let hex = secret.utf8.map { String(format: "%02x", $0) }.joined()
        let basic = Data("x-access-token:\(secret)".utf8).base64EncodedString()
        let percent = secret.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let (text, count) = redactor.redact("raw \(secret)\nhex \(hex)\nbasic \(basic)\nurl \(percent)\n")
        #expect(count == 4, "\(text)")
        #expect(!text.contains(secret) && !text.contains(hex) && !text.contains(percent))
        for form in SecretForms.of(secret) { #expect(!text.contains(form), "\(form) survived: \(text)") }
    }

    /// The checks on llhttp's reading, and the authority parser, on their own.
    @Test func theHeadChecksKeepExactlyWhatWasRead() throws {
        var parsed = HTTPRequestHead(version: .http1_1, method: .GET, uri: "http://a.test/", headers: ["X-A": "spaced value", "Host": "a.test"])
        let head = try RequestHead(parsed)
        #expect(head.method == "GET" && head.target == "http://a.test/" && head.fields == [.init(name: "X-A", value: "spaced value"), .init(name: "Host", value: "a.test")])
        parsed.headers.add(name: "X", value: "\u{1}")
        #expect(throws: RequestHead.Malformed.self) { try RequestHead(parsed) }
        parsed.headers.remove(name: "X")
        parsed.headers.add(name: "Host", value: "b.test")
        #expect(throws: RequestHead.Malformed.self) { try RequestHead(parsed) }
        #expect(try Authority.parse("EXAMPLE.com.", defaultPort: 80) == Authority.parse("example.com:80", defaultPort: 80))
        #expect(try Authority.parse("[2001:db8::1]:8443", defaultPort: nil).host == "2001:db8::1")
        #expect(throws: RequestHead.Malformed.self) { try Authority.parse("\u{ff10}.test", defaultPort: 80) }
    }

    /// A chunked body that breaks its framing (a chunk longer than its size, bare LFs, a negative
    /// size, a bare LF in a trailer) ends the exchange: what follows the break never reaches the host.
    @Test(arguments: ["3\r\nabcd\r\n0\r\n\r\n", "3\nabc\r\n0\r\n\r\n", "-1\r\n", "3\r\nabc\r\n0\r\nX: y\n\r\n"])
    func aBrokenChunkEndsTheExchange(_ body: String) throws {
        let rig = try Rig()
        let answer = try rig.send("POST http://127.0.0.2:\(rig.server.port)/post HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\(body)")
        #expect(!answer.contains(" 200 "), "\(body.debugDescription): \(answer)")
    }

    /// The scrubber replaces a secret's every form even when it arrives split across reads, and
    /// keeps the stream's length.
    @Test func theScrubberCatchesASecretSplitAcrossReads() {
        let real = "real-\(UUID().uuidString)", dummy = EgressProxy.dummy(as: real.utf8.count)
        let basic = Data("x-access-token:\(real)".utf8).base64EncodedString()
        let stream = Array("Location: /next?k=\(real)\r\n\r\nbasic=\(basic)\nend".utf8)
        for cut in [1, 7, 20, stream.count / 2, stream.count - 3] {
            var scrubber = SecretScrubber(pairs: SecretForms.pairs(real: real, dummy: dummy))
            let out = scrubber.feed(stream[..<cut]) + scrubber.feed(stream[cut...]) + scrubber.finish()
            let text = String(decoding: out, as: UTF8.self)
            #expect(out.count == stream.count && !text.contains(real) && text.contains("k=\(dummy)"), "cut at \(cut): \(text)")
            #expect(SecretForms.of(real).allSatisfy { !text.contains($0) }, "cut at \(cut): \(text)")
        }
    }
}
