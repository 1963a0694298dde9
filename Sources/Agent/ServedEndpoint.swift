import Foundation
import ModelEndpoints
import Sandbox
import Subprocess
import SystemPackage

/// A showdown contestant's own model server, started by its `serve:` command the way the public
/// showdown switched local models on one GPU: one at a time, each stopped (its whole process group)
/// before the next starts.
final class ServedEndpoint: Sendable {
    /// The server's process group: the shell leads a session of its own, so the server and
    /// whatever the shell starts share it, and one signal to the group stops them all.
    let group: pid_t
    let log: String
    /// swift-subprocess's run of the shell: it returns when the shell exits, and its
    /// cancellation is the stop (SIGTERM to the group, SIGKILL 3 s later).
    private let running: Task<Void, Never>
    /// How the shell ended, once it has ("exited with status 1").
    private let ended: LockedBox<String?>

    /// Why the server never became ready: said as a harness error, not a model failure.
    struct StartFailure: Error, CustomStringConvertible {
        let description: String
    }

    private init(group: pid_t, log: String, running: Task<Void, Never>, ended: LockedBox<String?>) {
        self.group = group
        self.log = log
        self.running = running
        self.ended = ended
    }

    /// Starts `command` in a session of its own (output to `log`) and waits for the endpoint's /health.
    static func start(command: String, endpoint: Endpoint, seconds: Int, log: String) async throws -> ServedEndpoint {
        let output: FileDescriptor, errors: FileDescriptor
        do {
            output = try FileDescriptor.open(
                log, .writeOnly, options: [.create, .truncate, .closeOnExec, .noFollow], permissions: [.ownerReadWrite, .groupRead, .otherRead])
            errors = try output.duplicate()
        } catch {
            throw StartFailure(description: "cannot write the server's log \(log): \(error)")
        }
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(3))]
        let ended = LockedBox<String?>(nil)
        let (spawned, spawn) = AsyncStream.makeStream(of: pid_t.self)
        let running = Task { [options] in
            do {
                let result = try await Subprocess.run(
                    .path("/bin/sh"), arguments: ["-c", command], platformOptions: options, input: .none,
                    output: .fileDescriptor(output, closeAfterSpawningProcess: true), error: .fileDescriptor(errors, closeAfterSpawningProcess: true)
                ) { execution in
                    spawn.yield(execution.processIdentifier.value)
                }
                ended.value = switch result.terminationStatus {
                case .exited(let code): "exited with status \(code)"
                case .signaled(let signal): "was killed by signal \(signal)"
                }
            } catch {
                ended.value = "could not start: \(error)"
            }
            spawn.finish()
        }
        guard let group = await spawned.first(where: { _ in true }) else {
            throw StartFailure(description: "serve: \(command.debugDescription) \(ended.value ?? "could not start")")
        }
        LiveProcesses.add(group)
        let served = ServedEndpoint(group: group, log: log, running: running, ended: ended)
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if let status = ended.value {
                await served.stop()
                throw StartFailure(description: "serve: the server \(status) before \(endpoint.display)/health answered; its log ends: \(served.logTail)")
            }
            if await serverIsHealthy(endpoint) { return served }
            try await Task.sleep(for: .milliseconds(500))
        }
        await served.stop()
        throw StartFailure(description: "serve: \(endpoint.display)/health did not answer 200 within \(seconds) s (raise startup_seconds?); the log ends: \(served.logTail)")
    }

    /// The last lines of the server's log, for errors.
    var logTail: String {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(3).joined(separator: " | ")
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after 3 s, and SIGKILL again for
    /// what the shell left behind when it went first.
    func stop() async {
        running.cancel()
        await running.value
        kill(-group, SIGKILL)
        LiveProcesses.remove(group)
    }
}
