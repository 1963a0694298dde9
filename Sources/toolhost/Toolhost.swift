import ArgumentParser
import Foundation

@main
struct Toolhost: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "toolhost",
        abstract: "A sandboxed tool host for coding agents.",
        discussion: """
            toolhost gives a model a small set of tools (execute, files, build, screenshot, git) that run \
            confined to one workspace folder. The shell keeps its cwd and exported variables between calls.

            Serve them to an MCP client:   toolhost serve --workspace ~/project
            Drive a model through a task:  toolhost run --endpoint localhost:8080 --workspace ~/project --prompt "fix the build"
            Try one tool by hand:          toolhost call execute '{"command":"ls"}' --workspace ~/project
            See every tool and its schema: toolhost tools
            """,
        version: version,
        subcommands: [
            Serve.self, Run.self, ProbeCommand.self, ShowdownCommand.self, Call.self, ToolsCommand.self, ReportCommand.self, MockEndpointCommand.self, SandboxCommand.self,
            Doctor.self,
        ]
    )

    /// Like ArgumentParser's own main, but a usage error exits 2 (the documented contract), not 64.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            // A signal killed the command under us: its handler is cleaning up and will exit 128+signal.
            if Signals.pending != nil { while true { pause() } }
        } catch {
            fail(error)
        }
    }

    /// Ends toolhost for `error`: a usage error exits 2 with its message, any other as ArgumentParser says.
    static func fail(_ error: any Error) -> Never {
        if exitCode(for: error) == .validationFailure {
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(2)
        }
        exit(withError: error)
    }
}
