import ArgumentParser
import Foundation
import Sandbox
import Tools

/// The options every command that runs tools shares: where, which session, how confined.
struct SessionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Directory with the persisted sessions and saved outputs.", discussion: "Default: $XDG_STATE_HOME/toolhost, else ~/.local/state/toolhost."))
    var stateDir: String?

    @Option(help: "Session name: cwd and exported variables persist per workspace and session.")
    var session: String = "default"

    @Option(help: "Sandbox profile for commands (default, build, network, browser, strict).")
    var profile: String = "default"

    /// Opens the session, saying loudly on stderr that commands are not confined yet.
    func openSession(workspace path: String) throws -> Session {
        let workspace: Workspace
        do {
            workspace = try Workspace(path)
        } catch let error as ToolError {
            throw ValidationError(error.message)
        }
        let runner = UnconfinedRunner()
        if case .unconfined(let reason) = runner.confinement {
            warn(
                "WARNING: commands run UNCONFINED (\(reason)): they can read and change anything your user can. --profile \(profile) is not enforced yet.")
        }
        do {
            return try Session(
                name: session, workspace: workspace,
                state: StateDirectory(stateDir ?? StateDirectory.defaultPath()), runner: runner)
        } catch let error as ToolError {
            throw ValidationError(error.message)
        }
    }
}

func warn(_ message: String) {
    FileHandle.standardError.write(Data("toolhost: \(message)\n".utf8))
}

/// The registry, or a clear failure when this build's tools.json and code disagree.
func makeRegistry() throws -> ToolRegistry {
    do {
        return try ToolRegistry()
    } catch {
        throw ValidationError("this build of toolhost is broken: \(error)")
    }
}
