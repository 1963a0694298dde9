import ArgumentParser
import Foundation
import Sandbox
import Synchronization
import Tools

struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run one command confined by a profile, to try what a profile allows.",
        discussion: """
            The command starts in the workspace with the profile's clean environment, and its \
            standard input is /dev/null unless --stdin is given. Its standard output is printed \
            (capped at its first and last megabyte, or at --max-output bytes), its standard error \
            goes to stderr with the rules it ran into, and toolhost exits with its exit status \
            (128+N for signal N, 124 on timeout).

            Examples:
              toolhost sandbox --workspace . -- ls -la /root
              toolhost sandbox --profile strict --workspace . -- curl -sS https://example.com
              printf 'hi' | toolhost sandbox --stdin --workspace . -- sh -c 'cat > note.txt'
            """)

    @Option(help: "The folder the command may write.")
    var workspace: String

    @Option(help: "Kill the command and everything it started after this many seconds. Default: the profile's.")
    var timeout: Int?

    @Flag(help: "Feed toolhost's standard input to the command, through a pipe (the command never gets the host's terminal).")
    var stdin = false

    @Option(help: ArgumentHelp(
        "Print at most the first N bytes of the command's output, instead of its first and last megabyte.",
        discussion: "A caller that must know whether the output fit asks for one byte more than it keeps.",
        valueName: "N"))
    var maxOutput: Int?

    @OptionGroup var options: SessionOptions

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).")
    var command: [String] = []

    /// The command without the `--` that separates it from toolhost's options.
    var argv: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    func validate() throws {
        guard !argv.isEmpty else { throw ValidationError("give the command after --, e.g. toolhost sandbox --workspace . -- ls") }
        if let maxOutput, maxOutput < 1 { throw ValidationError("--max-output must be at least 1 byte, not \(maxOutput)") }
    }

    func run() async throws {
        Signals.killChildrenOnExit()
        let session = try options.openSession(workspace: workspace)
        let runner = session.runner
        let program = argv[0].contains("/") ? argv[0] : Doctor.which(argv[0])
        guard let program else {
            warn("\(argv[0]): command not found on PATH")
            throw ExitCode(127)
        }
        var spec = ProcessSpec(
            executable: program, arguments: Array(argv.dropFirst()),
            environment: runner.baseEnvironment(host: ProcessInfo.processInfo.environment),
            workingDirectory: session.workspace.root, timeout: .seconds(timeout ?? runner.defaultTimeoutSeconds),
            outputCap: maxOutput.map { OutputCap(head: $0, tail: 0) } ?? OutputCap(head: 1 << 20, tail: 1 << 20))
        // Pipes the host copies through, so no host descriptor (a terminal) reaches the command.
        let errors = try Relay(into: STDERR_FILENO)
        spec.extraDescriptors[2] = errors.childEnd
        let input = try stdin ? Relay(from: STDIN_FILENO) : nil
        if let input { spec.extraDescriptors[0] = input.childEnd }
        let outcome: ProcessOutcome
        do {
            defer {
                errors.finish()
                input?.finish()
            }
            outcome = try await runner.run(spec)
        }
        await session.close()
        FileHandle.standardOutput.write(Data(outcome.head))
        if outcome.truncated { warn("[… \(outcome.totalBytes - outcome.head.count - outcome.tail.count) bytes cut …]") }
        FileHandle.standardOutput.write(Data(outcome.tail))
        // The rules show in what the command printed on either stream.
        let output = String(decoding: outcome.head + outcome.tail + errors.lastBytes, as: UTF8.self)
        for denial in runner.denials(output: output, exitCode: outcome.exitCode, signal: outcome.signal) {
            warn("denied by \(denial)")
        }
        if outcome.timedOut {
            warn("timed out after \(timeout ?? runner.defaultTimeoutSeconds) s: killed with everything it started")
            throw ExitCode(124)
        }
        if let code = outcome.exitCode, code != 0 { throw ExitCode(code) }
        if let signal = outcome.signal { throw ExitCode(128 + signal) }
    }
}

/// A pipe between the host and a confined command, copied on a thread of its own: from the
/// command into one of toolhost's descriptors (its stderr), or from one into the command (`--stdin`).
private final class Relay: @unchecked Sendable {
    /// The end the command gets.
    let childEnd: Int32
    private let hostEnd: Int32
    private let fromCommand: Bool
    private let done = DispatchSemaphore(value: 0)
    private let kept = Mutex<[UInt8]>([])
    /// How much of the command's output the relay keeps, for the rules it ran into.
    private static let keptBytes = 64 << 10

    /// The last bytes copied from the command (read after `finish`).
    var lastBytes: [UInt8] { kept.withLock { $0 } }

    init(into target: Int32) throws {
        (hostEnd, childEnd) = try Spawn.pipe()
        fromCommand = true
        start(from: hostEnd, to: target)
    }

    init(from source: Int32) throws {
        (childEnd, hostEnd) = try Spawn.pipe()
        fromCommand = false
        signal(SIGPIPE, SIG_IGN)  // a command that stops reading must not kill toolhost
        start(from: source, to: hostEnd)
    }

    private func start(from source: Int32, to target: Int32) {
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            copying: while true {
                let count = read(source, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                if fromCommand {
                    kept.withLock { kept in
                        kept.append(contentsOf: buffer[..<count])
                        if kept.count > Self.keptBytes { kept.removeFirst(kept.count - Self.keptBytes) }
                    }
                }
                var sent = 0
                while sent < count {
                    let wrote = buffer.withUnsafeBytes { write(target, $0.baseAddress! + sent, count - sent) }
                    if wrote < 0 && errno == EINTR { continue }
                    guard wrote > 0 else { break copying }
                    sent += wrote
                }
            }
            close(hostEnd)  // into the command: its end of file
            done.signal()
        }
        thread.start()
    }

    /// Once the command has ended. Its output: everything it wrote is copied before this returns
    /// (its group is gone, so the pipe ends). Its input: what it did not read is dropped, and
    /// toolhost does not wait for its own input to end.
    func finish() {
        close(childEnd)
        if fromCommand { _ = done.wait(timeout: .now() + 5) }
    }
}
