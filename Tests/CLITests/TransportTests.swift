import Foundation
import TestSupport
import Testing

/// The endpoint transport (libcurl) on the routes users have: a unix socket, a proxy from the
/// environment (plain requests and CONNECT tunnels), https with a private CA. Each is a real
/// `toolhost run` against the mock endpoint, with Tests/Interop/relay.py as the proxy or TLS front.
@Suite struct TransportTests {
    static let proxyVariables = ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"]

    /// The test's environment without any proxy of its own, plus `extra`.
    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        for name in Self.proxyVariables { environment[name] = nil }
        return environment.merging(extra) { $1 }
    }

    /// The requests the proxy saw, one `METHOD target` line each.
    func seen(_ log: String) -> [String] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Both wire formats, streamed and whole, over a unix socket, in both spellings; a proxy in the
    /// environment does not apply to a socket.
    @Test(arguments: AgentRunTests.modes)
    func aServerOnAUnixSocket(api: String, stream: Bool) async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, fixture: "write-and-read.yaml", unixSocket: true)
        #expect(mock.url.hasPrefix("unix:/"), "\(mock.url)")
        let socket = String(mock.url.dropFirst(5))
        let endpoint = api == "openai" ? mock.url : "http+unix://" + socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! + "/v1/messages"
        defer { withExtendedLifetime(mock) {} }
        let run = try await scratch.agent(endpoint, stream ? [] : ["--no-stream"], environment: environment(["http_proxy": "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9"]))
        #expect(run.ran.status == 0, "\(run.ran.stderr)")
        #expect(try scratch.read("notes/hello.txt") == "hello from the mock\n")
        let summary = try run.summary
        #expect(summary["api"] as? String == api)
        let encoded = socket.replacingOccurrences(of: "/", with: "%2F")
        #expect(summary["endpoint"] as? String == "http+unix://\(encoded)/v1/" + (api == "openai" ? "chat/completions" : "messages"))
        #expect(summary["tool_calls"] as? Int == 3)
        #expect(summary["stop_reason"] as? String == "completed")
    }

    /// A run's requests ride one kept-alive connection: no connect (or TLS handshake) per turn.
    @Test func theTurnsOfARunShareOneConnection() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, fixture: "write-and-read.yaml")
        let log = scratch.root + "/connections.log"
        let pipe = try await Relay(["tcp", log, String(mock.url.dropFirst(7))])
        defer { withExtendedLifetime((mock, pipe)) {} }
        let run = try await scratch.agent("127.0.0.1:\(pipe.port)", [], environment: environment())
        #expect(run.ran.status == 0, "\(run.ran.stderr)")
        #expect(try run.eventNames().filter { $0 == "request" }.count == 3)
        #expect(seen(log).count == 1, "four requests (the model list and three turns) on \(seen(log).count) connections")
    }

    /// A relative socket path is a usage error that shows the right spelling.
    @Test func aRelativeSocketPathIsRefused() async throws {
        let scratch = try Scratch()
        let run = try await scratch.agent("unix:run/llama.sock")
        #expect(run.ran.status == 2, "\(run.ran.stderr)")
        #expect(run.ran.stderr.contains("unix:/run/llama.sock"), "\(run.ran.stderr)")
    }

    /// http_proxy as curl reads it, HTTP_PROXY as users also write it, ALL_PROXY: every request,
    /// the model list and each turn (streamed or whole), goes through the proxy.
    @Test(arguments: [("http_proxy", true), ("HTTP_PROXY", false), ("ALL_PROXY", true)])
    func aProxyInTheEnvironmentCarriesEveryRequest(variable: String, stream: Bool) async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, fixture: "write-and-read.yaml")
        let log = scratch.root + "/proxy.log"
        let proxy = try await Relay(["proxy", log])
        defer { withExtendedLifetime((mock, proxy)) {} }
        let run = try await scratch.agent(mock.url, stream ? [] : ["--no-stream"], environment: environment([variable: "http://127.0.0.1:\(proxy.port)"]))
        #expect(run.ran.status == 0, "\(run.ran.stderr)")
        #expect(try run.summary["tool_calls"] as? Int == 3)
        let lines = seen(log)
        #expect(lines.first == "GET \(mock.url)/v1/models", "\(lines)")
        #expect(lines.filter { $0 == "POST \(mock.url)/v1/chat/completions" }.count == 3, "\(lines)")
    }

    /// NO_PROXY names the host: the proxy (here one that would refuse everything) is not used.
    @Test func noProxySkipsTheProxy() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, fixture: "write-and-read.yaml")
        let log = scratch.root + "/proxy.log"
        let proxy = try await Relay(["proxy", log])
        defer { withExtendedLifetime((mock, proxy)) {} }
        let run = try await scratch.agent(mock.url, [], environment: environment(["http_proxy": "http://127.0.0.1:\(proxy.port)", "NO_PROXY": "example.com,127.0.0.1"]))
        #expect(run.ran.status == 0, "\(run.ran.stderr)")
        #expect(seen(log).isEmpty)
    }

    /// A proxy that is not there is named as the proxy, not as the model server.
    @Test func anUnreachableProxyIsSaidToBeTheProxy() async throws {
        let scratch = try Scratch()
        let run = try await scratch.agent("127.0.0.1:9", [], environment: environment(["http_proxy": "http://127.0.0.1:1"]))
        #expect(run.ran.status == 1)
        #expect(run.ran.stderr.contains("proxy"), "\(run.ran.stderr)")
        #expect(run.ran.stderr.contains("NO_PROXY") && !run.ran.stderr.contains("nothing listens"), "\(run.ran.stderr)")
    }

    /// https to a server whose certificate a private CA signed: refused by default with curl's
    /// words, trusted with --cacert or CURL_CA_BUNDLE, unchecked with --insecure (said loudly),
    /// and through an HTTPS_PROXY as a CONNECT tunnel that never sees the key.
    @Test func httpsWithAPrivateCertificate() async throws {
        let scratch = try Scratch()
        let certificate = scratch.root + "/cert.pem", key = scratch.root + "/key.pem"
        let made = try await runProgram("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
        ])
        try #require(made.status == 0, "\(made.stderr)")
        let secret = "sk-transport-\(UUID().uuidString)"
        func attempt(_ extra: [String], _ variables: [String: String] = [:]) async throws -> AgentRun {
            let scratch = try Scratch()
            let mock = try await MockEndpointProcess(scratch, fixture: "write-and-read.yaml")
            let front = try await Relay(["tls", certificate, key, String(mock.url.dropFirst(7))])
            defer { withExtendedLifetime((mock, front)) {} }
            return try await scratch.agent("https://localhost:\(front.port)", extra, environment: environment(variables.merging(["OPENAI_API_KEY": secret]) { $1 }))
        }
        let refused = try await attempt([])
        #expect(refused.ran.status == 1)
        #expect(refused.ran.stderr.contains("curl: (60)"), "\(refused.ran.stderr)")
        #expect(refused.ran.stderr.contains("--cacert"), "the error says what to do: \(refused.ran.stderr)")

        let trusted = try await attempt(["--cacert", certificate])
        #expect(trusted.ran.status == 0, "\(trusted.ran.stderr)")
        #expect(!trusted.ran.stderr.contains("WARNING"))

        let bundle = try await attempt([], ["CURL_CA_BUNDLE": certificate])
        #expect(bundle.ran.status == 0, "\(bundle.ran.stderr)")

        let unchecked = try await attempt(["--insecure"])
        #expect(unchecked.ran.status == 0, "\(unchecked.ran.stderr)")
        #expect(unchecked.ran.stderr.contains("WARNING: --insecure"), "\(unchecked.ran.stderr)")

        let log = scratch.root + "/proxy.log"
        let proxy = try await Relay(["proxy", log])
        defer { withExtendedLifetime(proxy) {} }
        let tunnelled = try await attempt(["--cacert", certificate], ["HTTPS_PROXY": "http://127.0.0.1:\(proxy.port)"])
        #expect(tunnelled.ran.status == 0, "\(tunnelled.ran.stderr)")
        let lines = seen(log)
        #expect(!lines.isEmpty && lines.allSatisfy { $0.hasPrefix("CONNECT localhost:") }, "\(lines)")
        for run in [refused, trusted, bundle, unchecked, tunnelled] {
            #expect(!run.ran.stdout.contains(secret) && !run.ran.stderr.contains(secret))
            let transcript = (try? String(contentsOfFile: run.folder + "/transcript.jsonl", encoding: .utf8)) ?? ""
            #expect(!transcript.contains(secret))
        }
        #expect(!((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains(secret))
    }
}

/// Tests/Interop/relay.py on a port the kernel picks: a logging proxy or a TLS front.
final class Relay: @unchecked Sendable {
    let process = Process()
    let port: Int

    init(_ arguments: [String]) async throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [repositoryRoot + "/Tests/Interop/relay.py"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        guard let line = await output.fileHandleForReading.readLine(), let port = Int(line) else {
            process.terminate()
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "relay.py did not start"])
        }
        self.port = port
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
