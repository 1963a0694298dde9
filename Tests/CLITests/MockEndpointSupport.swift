import Foundation
import TestSupport
import Testing

/// `toolhost mock-endpoint` as a real process on a port the kernel picks, serving a script.
final class MockEndpointProcess: @unchecked Sendable {
    let process = Process()
    let url: String
    private let errors = Pipe()

    /// Serves `script` (YAML text) or the fixture at `fixture` (relative to fixtures/endpoints),
    /// on a TCP port, or on a unix socket under the scratch root when `unixSocket` is set.
    /// With `record`, each request's body is saved there (`mock-endpoint --record`).
    init(_ scratch: Scratch, script: String? = nil, fixture: String? = nil, unixSocket: Bool = false, record: String? = nil) async throws {
        let path: String
        if let fixture {
            path = repositoryRoot + "/fixtures/endpoints/" + fixture
        } else {
            path = scratch.root + "/script-\(UUID().uuidString.prefix(6)).yaml"
            try script!.write(toFile: path, atomically: true, encoding: .utf8)
        }
        process.executableURL = URL(fileURLWithPath: toolhostBinary)
        process.arguments = ["mock-endpoint", "--script", path]
            + (unixSocket ? ["--unix-socket", scratch.root + "/mock-\(UUID().uuidString.prefix(6)).sock"] : ["--port", "0"])
            + (record.map { ["--record", $0] } ?? [])
        let output = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let line = await output.fileHandleForReading.readLine()
        guard let line, line.hasPrefix("http://") || line.hasPrefix("unix:") else {
            process.terminate()
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "mock-endpoint did not start: \(line ?? "")"])
        }
        url = line
    }

    /// SIGKILL: a graceful stop would wait for a scripted delay to end.
    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// A finished run: exit status, output, and what it wrote.
struct AgentRun {
    let ran: Ran
    let folder: String

    var summary: [String: Any] {
        get throws {
            let data = try Data(contentsOf: URL(fileURLWithPath: folder + "/summary.json"))
            return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        }
    }

    /// Every transcript line, parsed; a line that is not JSON fails the test.
    var events: [[String: Any]] {
        get throws {
            let text = try String(contentsOfFile: folder + "/transcript.jsonl", encoding: .utf8)
            return try text.split(separator: "\n").map { line in
                try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
            }
        }
    }

    func eventNames() throws -> [String] { try events.map { $0["event"] as? String ?? "?" } }
}

extension Scratch {
    /// `toolhost run` against `endpoint`, with its run folder under the scratch root.
    func agent(_ endpoint: String, _ extra: [String] = [], prompt: String = "Write notes/hello.txt with a greeting", environment: [String: String]? = nil) async throws -> AgentRun {
        let folder = root + "/run-\(UUID().uuidString.prefix(6))"
        var arguments = ["run", "--endpoint", endpoint, "--workspace", workspace, "--state-dir", state, "--out", folder]
        if !extra.contains("--task") { arguments += ["--prompt", prompt] }
        return AgentRun(ran: try await runProgram(toolhostBinary, arguments + extra, environment: environment), folder: folder)
    }
}
