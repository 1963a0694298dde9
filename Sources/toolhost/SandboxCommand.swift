import ArgumentParser
import Foundation
import Sandbox
import Tools

struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run one command confined by a profile, to try what a profile allows.",
        discussion: """
            The command starts in the workspace with the profile's clean environment. Its output is \
            printed (capped at its first and last megabyte), the rules it ran into go to stderr, and \
            toolhost exits with its exit status (128+N for signal N, 124 on timeout).

            Examples:
              toolhost sandbox --workspace . -- ls -la /root
              toolhost sandbox --profile strict --workspace . -- curl -sS https://example.com
            """)

    @Option(help: "The folder the command may write.")
    var workspace: String

    @Option(help: "Kill the command and everything it started after this many seconds. Default: the profile's.")
    var timeout: Int?

    @OptionGroup var options: SessionOptions

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).")
    var command: [String] = []

    /// The command without the `--` that separates it from toolhost's options.
    var argv: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    func validate() throws {
        guard !argv.isEmpty else { throw ValidationError("give the command after --, e.g. toolhost sandbox --workspace . -- ls") }
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
        let spec = ProcessSpec(
            executable: program, arguments: Array(argv.dropFirst()),
            environment: runner.baseEnvironment(host: ProcessInfo.processInfo.environment),
            workingDirectory: session.workspace.root, timeout: .seconds(timeout ?? runner.defaultTimeoutSeconds),
            outputCap: OutputCap(head: 1 << 20, tail: 1 << 20))
        let outcome = try await runner.run(spec)
        await session.close()
        FileHandle.standardOutput.write(Data(outcome.head))
        if outcome.truncated { warn("[… \(outcome.totalBytes - outcome.head.count - outcome.tail.count) bytes cut …]") }
        FileHandle.standardOutput.write(Data(outcome.tail))
        let output = String(decoding: outcome.head + outcome.tail, as: UTF8.self)
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
