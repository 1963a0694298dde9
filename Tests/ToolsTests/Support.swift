import Foundation
import Sandbox
import TestSupport
@testable import Tools

extension Scratch {
    var workspace: Workspace { get throws { try Workspace(workspacePath) } }

    /// A session whose commands run confined by `profile`, as they do in the product; builds and
    /// the browser get their own profiles' runners unless `ownProfileOnly` keeps everything on `profile`.
    func session(
        _ name: String = "default", profile: String = "default", host: [String: String] = ProcessInfo.processInfo.environment,
        ownProfileOnly: Bool = false, mounts: [FolderMount] = [], browserAhead: Bool = false
    ) throws -> Session {
        try SessionFactory.confined(
            profile: profile, state: StateDirectory(statePath), mounts: mounts, hostEnvironment: host, mechanisms: machineMechanisms,
            profileRunners: !ownProfileOnly
        ).open(workspace: workspacePath, name: name, browserAhead: browserAhead)
    }
}

extension Scratch {
    /// Makes the workspace a repository with one commit on main, whose origin is a bare
    /// repository beside it (returned).
    func makeRepositoryWithRemote() async throws -> String {
        let remote = root + "/remote.git"
        try await git("init", "-q", "--bare", "-b", "main", remote, in: root)
        try await git("init", "-q", "-b", "main", in: workspacePath)
        try await git("config", "user.name", "Test Author", in: workspacePath)
        try await git("config", "user.email", "author@example.com", in: workspacePath)
        try await git("remote", "add", "origin", remote, in: workspacePath)
        try write("README.md", "# blog\n")
        try await git("add", ".", in: workspacePath)
        try await git("commit", "-qm", "init", in: workspacePath)
        return remote
    }
}

/// A shell command that exchanges `d` and `l` in its folder (renameat2 RENAME_EXCHANGE) in a
/// loop for `seconds`, resting `pause` seconds after each exchange: the racing swapper of the
/// host-side escape tests.
func exchangeLoop(seconds: Int, pause: Double = 0) -> String {
    """
    python3 -c '
    import ctypes, time
    libc = ctypes.CDLL(None, use_errno=True)
    end = time.time() + \(seconds)
    while time.time() < end:
        libc.renameat2(-100, b"d", -100, b"l", 2)
        \(pause > 0 ? "time.sleep(\(pause))" : "pass")
    '
    """
}

/// Probed once: what this kernel allows.
let machineMechanisms = Mechanisms.probe()

/// A scratch workspace with a session on it: what most tool tests start from.
struct Fixture {
    let scratch: Scratch
    let session: Session

    init() throws {
        scratch = try Scratch()
        session = try scratch.session()
    }
}

/// A suite built on one `Fixture`, reaching its parts directly.
protocol UsesFixture {
    var fixture: Fixture { get }
}

extension UsesFixture {
    var scratch: Scratch { fixture.scratch }
    var session: Session { fixture.session }

    /// Runs a command through the execute tool, in this fixture's session unless another is given.
    func run(_ command: String, timeout: Int? = nil, in other: Session? = nil) async -> ToolResult {
        var arguments: [String: JSONValue] = ["command": .string(command)]
        if let timeout { arguments["timeout_seconds"] = .int(timeout) }
        return await call("execute", .object(arguments), in: other ?? session)
    }
}

let registry = try! ToolRegistry()

/// Calls a tool through the registry, as every front door does.
func call(_ name: String, _ arguments: JSONValue, in session: Session) async -> ToolResult {
    await registry.call(name, arguments: arguments, session: session)
}
