import Foundation
import ModelEndpoints
import Sandbox

/// A showdown contestant's own model server, started by its `serve:` command the way the public
/// showdown switched local models on one GPU: one at a time, each stopped (its whole process group)
/// before the next starts.
final class ServedEndpoint: Sendable {
    let process: Process
    let log: String

    /// Why the server never became ready: said as a harness error, not a model failure.
    struct StartFailure: Error, CustomStringConvertible {
        let description: String
    }

    private init(process: Process, log: String) {
        self.process = process
        self.log = log
    }

    /// Starts `command` in a session of its own (output to `log`) and waits for the endpoint's /health.
    static func start(command: String, endpoint: Endpoint, seconds: Int, log: String) async throws -> ServedEndpoint {
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        guard let output = FileHandle(forWritingAtPath: log) else { throw StartFailure(description: "cannot write the server's log \(log)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw StartFailure(description: "serve: could not start \(command.debugDescription): \(error.localizedDescription)")
        }
        try? output.close()
        // Foundation spawns each child as the leader of a new process group: the server and
        // whatever the shell starts share it, and one signal to the group stops them all.
        setpgid(process.processIdentifier, process.processIdentifier)
        LiveProcesses.add(process.processIdentifier)
        let served = ServedEndpoint(process: process, log: log)
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if !process.isRunning {
                let status = process.terminationStatus
                served.stop()
                throw StartFailure(description: "serve: the server exited with status \(status) before \(endpoint.display)/health answered; its log ends: \(served.logTail)")
            }
            if await serverIsHealthy(endpoint) { return served }
            try await Task.sleep(for: .milliseconds(500))
        }
        served.stop()
        throw StartFailure(description: "serve: \(endpoint.display)/health did not answer 200 within \(seconds) s (raise startup_seconds?); the log ends: \(served.logTail)")
    }

    /// The last lines of the server's log, for errors.
    var logTail: String {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(3).joined(separator: " | ")
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after 3 s.
    func stop() {
        let group = process.processIdentifier
        kill(-group, SIGTERM)
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        kill(-group, SIGKILL)
        process.waitUntilExit()
        LiveProcesses.remove(group)
    }
}
