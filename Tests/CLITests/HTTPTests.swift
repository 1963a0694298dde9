import Foundation
import TestSupport
import Testing

/// `toolhost serve --http` as a real process, on a port the kernel picks.
final class HTTPServerProcess: @unchecked Sendable {
    let process = Process()
    let url: String
    private let stderrLines = LockedLines()

    init(_ scratch: Scratch, extra: [String] = [], environment: [String: String]? = nil) throws {
        process.executableURL = URL(fileURLWithPath: toolhostBinary)
        process.arguments = ["serve", "--http", "127.0.0.1:0", "--workspace", scratch.workspace, "--state-dir", scratch.state] + extra
        if let environment { process.environment = environment }
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let lines = stderrLines
        Thread {
            var pending = Data()
            while case let chunk = errors.fileHandleForReading.availableData, !chunk.isEmpty {
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 0x0A) {
                    lines.append(String(decoding: pending[..<newline], as: UTF8.self))
                    pending = Data(pending[(newline + 1)...])
                }
            }
        }.start()
        var found: String?
        for _ in 0..<1000 where found == nil {
            found = lines.all.lazy.compactMap { line in
                line.range(of: #"http://127\.0\.0\.1:\d+/mcp"#, options: .regularExpression).map { String(line[$0]) }
            }.first
            if found == nil { usleep(10_000) }
        }
        guard let found else {
            process.terminate()
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "server did not start: \(lines.all)"])
        }
        url = found
    }

    var log: [String] { stderrLines.all }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}

final class LockedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}

/// Runs the Python HTTP client in one mode and decodes its last JSON line.
func httpClient(_ arguments: [String]) throws -> [String: Any] {
    let python = repositoryRoot + "/.venv/bin/python"
    try #require(FileManager.default.isExecutableFile(atPath: python), "run scripts/setup.sh (make test does)")
    let ran = try runProgram(python, [repositoryRoot + "/Tests/Interop/mcp_http_client.py"] + arguments)
    #expect(ran.status == 0, "client failed: \(ran.stderr.suffix(2000))")
    let last = ran.stdout.split(separator: "\n").last.map(String.init) ?? "{}"
    return try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
}

/// An HTTP status from curl for a POST of `body` with the given extra headers.
func curlStatus(_ url: String, body: String, headers: [String] = []) throws -> Int {
    var arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", url,
                     "-H", "Content-Type: application/json", "-H", "Accept: application/json, text/event-stream", "--data-binary", "@-"]
    for header in headers { arguments += ["-H", header] }
    return Int(try runProgram("/usr/bin/curl", arguments, stdin: body).stdout) ?? -1
}

let initializeBody = #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#

@Suite(.serialized) struct HTTPTests {
    @Test func thePythonClientListsAndCalls() throws {
        let scratch = try Scratch()
        try "hi from http\n".write(toFile: scratch.workspace + "/hello.txt", atomically: true, encoding: .utf8)
        let server = try HTTPServerProcess(scratch)
        let seen = try httpClient(["basic", server.url])
        #expect((seen["tools"] as? [String])?.count == 11)
        #expect((seen["read"] as? String)?.hasPrefix("     1\thi from http") == true)
        #expect((seen["execute"] as? String)?.hasPrefix("42\n") == true)
        #expect(server.log.contains { $0.contains("POST /mcp tools/call read_file 200") }, "one log line per request")
        #expect(!server.log.contains { $0.contains("hello.txt") }, "arguments are never logged")
    }

    @Test func twoClientsKeepSeparateCwds() throws {
        let scratch = try Scratch()
        let server = try HTTPServerProcess(scratch)
        let seen = try httpClient(["two", server.url])
        #expect((seen["first"] as? String)?.hasPrefix(scratch.workspace + "/one\n") == true)
        #expect((seen["second"] as? String)?.hasPrefix(scratch.workspace + "/two\n") == true)
    }

    @Test func refusalsHaveTheRightStatus() throws {
        let scratch = try Scratch()
        let tokenFile = scratch.root + "/token"
        try "s3cret-token\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let server = try HTTPServerProcess(scratch, extra: ["--token-file", tokenFile, "--max-body-bytes", "2000"])
        #expect(try curlStatus(server.url, body: initializeBody) == 401)
        #expect(try curlStatus(server.url, body: initializeBody, headers: ["Authorization: Bearer wrong-token"]) == 401)
        #expect(try curlStatus(server.url, body: initializeBody, headers: ["Authorization: Bearer s3cret-token"]) == 200)
        #expect(try curlStatus(server.url, body: initializeBody, headers: ["Authorization: Bearer s3cret-token", "Origin: http://evil.example"]) == 403)
        let huge = String(repeating: "x", count: 5000)
        #expect(try curlStatus(server.url, body: #"{"pad":"\#(huge)"}"#, headers: ["Authorization: Bearer s3cret-token"]) == 413)
    }

    @Test func aNonLoopbackAddressNeedsAToken() throws {
        let scratch = try Scratch()
        var environment = ProcessInfo.processInfo.environment
        environment["TOOLHOST_TOKEN"] = nil
        let ran = try runProgram(
            toolhostBinary, ["serve", "--http", "0.0.0.0:0", "--workspace", scratch.workspace, "--state-dir", scratch.state],
            environment: environment)
        #expect(ran.status == 2)
        #expect(ran.stderr.contains("clients must authenticate"))
    }

    @Test func eightClientsTimesFiveHundredCalls() throws {
        let scratch = try Scratch()
        let server = try HTTPServerProcess(scratch)
        let seen = try httpClient(["load", server.url, "8", "500"])
        #expect((seen["client_failures"] as? [String])?.isEmpty == true, "\(seen)")
        #expect(seen["errors"] as? Int == 0)
        #expect(seen["intact"] as? Bool == true)
    }

    @Test func sigtermKillsARunningCommandAndKeepsState() throws {
        let scratch = try Scratch()
        let server = try HTTPServerProcess(scratch, extra: ["--shutdown-grace", "1"])
        let duration = uniqueSleep()
        let python = Process()
        python.executableURL = URL(fileURLWithPath: repositoryRoot + "/.venv/bin/python")
        python.arguments = [repositoryRoot + "/Tests/Interop/mcp_http_client.py", "session", server.url, "keeper",
                            "mkdir -p kept && cd kept", "sleep \(duration)"]
        python.standardOutput = FileHandle.nullDevice
        python.standardError = FileHandle.nullDevice
        try python.run()
        #expect(appears(withArgument: duration), "the long command started")
        let stopped = ContinuousClock.now
        server.process.terminate()
        server.process.waitUntilExit()
        #expect(ContinuousClock.now - stopped < .seconds(15), "the grace bounds the shutdown")
        #expect(allGone(withArgument: duration), "nothing is left running")
        python.waitUntilExit()

        let again = try HTTPServerProcess(scratch)
        let seen = try httpClient(["session", again.url, "keeper", "pwd"])
        #expect(((seen["outputs"] as? [String])?.first)?.hasPrefix(scratch.workspace + "/kept\n") == true, "\(seen)")
    }
}

@Suite struct HTTPUsageTests {
    @Test func aBadAddressIsAUsageError() throws {
        let scratch = try Scratch()
        for address in ["8765", "127.0.0.1:http", "127.0.0.1:70000"] {
            let ran = try runProgram(toolhostBinary, ["serve", "--http", address, "--workspace", scratch.workspace])
            #expect(ran.status == 2, "\(address)")
            #expect(ran.stderr.contains("--http takes HOST:PORT"))
        }
    }
}
