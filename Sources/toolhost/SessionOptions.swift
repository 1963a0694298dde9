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

    @Option(help: ArgumentHelp(
        "Sandbox profile for commands: default, build, network, browser, strict, or a profile file.",
        discussion: "The profiles live in sandbox-profiles/; `toolhost doctor` shows what this machine supports."))
    var profile: String = "default"

    @Option(help: ArgumentHelp(
        "toolhost's config file (protected branches, allowed push patterns, commit identity).",
        discussion: "Default: $XDG_CONFIG_HOME/toolhost/config.json, else ~/.config/toolhost/config.json."))
    var config: String?

    @Flag(help: "Run commands without the sandbox (said loudly on stderr). Only for machines that cannot confine.")
    var unconfined = false

    @Flag(help: ArgumentHelp(
        "Have the kernel favor cgroup moves, so a command joins its session's cgroups at once (needs root).",
        discussion: """
            Without it, each command's join of its session's pids and memory cgroups waits for an RCU \
            grace period whenever no other cgroup move happened just before: 5-15 ms added to every \
            command after an agent's pause (measured on an idle 2-core machine). This flag makes a \
            cgroup hierarchy with the kernel's favordynmods option (named toolhost, of no controller, \
            mounted nowhere) for as long as toolhost runs. It is machine-wide: forks and exits of every \
            process take one more uncontended lock, and Linux 6.18 and later keep the mode until reboot. \
            Off by default for that reason; a start note says whether the kernel took it.
            """))
    var fastCgroupJoins = false

    @Option(name: .customLong("mount"), help: ArgumentHelp(
        "Show a workspace folder to commands at another absolute path too, e.g. --mount app:/app (repeatable).",
        discussion: """
            FOLDER:TARGET, the folder relative to the workspace ("." for the root) and TARGET absolute. \
            For harnesses whose tasks name fixed paths (Harbor's /app, /tests, /logs). The folder must \
            exist and stays inside the workspace (the disk budget and the file tools cover it; the file \
            tools take TARGET paths too); a TARGET whose top-level folder / lacks is made in a new root.
            """, valueName: "FOLDER:TARGET"))
    var mountTexts: [String] = []

    /// The parsed `--mount`s.
    var mounts: [FolderMount] { get throws { try mountTexts.map { try FolderMount(parsing: $0) } } }

    /// Paths are taken against the directory toolhost starts in, once: MCP client configs give
    /// relative ones, and nothing later (a sandbox's mounts, a session opened after a chdir)
    /// should read them against another.
    mutating func validate() throws {
        stateDir = stateDir.map(absolutePath)
        config = config.map(absolutePath)
        if profile.contains("/") || profile.hasSuffix(".json") { profile = absolutePath(profile) }
        do {
            _ = try mounts
        } catch {
            throw ValidationError("\(error)")
        }
        if unconfined && fastCgroupJoins {
            throw ValidationError("--fast-cgroup-joins speeds up the sandbox's cgroup joins, and --unconfined runs commands in none; drop one of them")
        }
        if unconfined && !mountTexts.isEmpty {
            throw ValidationError("--mount needs the sandbox: without it commands see the host's own paths; drop --unconfined or --mount")
        }
    }

    /// The runner for the chosen profile; a machine that cannot confine as the profile requires
    /// gets a refusal with the reason, never a silent fallback.
    func makeRunner(
        workspace: Workspace, state: StateDirectory, session: String, profile: String? = nil, sharingNetworkWith other: (any ProcessRunner)? = nil
    ) throws -> any ProcessRunner {
        if unconfined {
            let runner = UnconfinedRunner(reason: "--unconfined was given")
            warn("WARNING: commands run UNCONFINED (--unconfined): they can read and change anything your user can.")
            return runner
        }
        if fastCgroupJoins, let note = ProcessCgroup.favorMoves() { warn("note: \(note)") }
        let loaded: SandboxProfile
        do {
            loaded = try SandboxProfile.load(profile ?? self.profile)
        } catch {
            throw ValidationError("\(error)")
        }
        do {
            let runner = try SessionFactory.confinedRunner(
                loaded, workspace: workspace, state: state, session: session, hostEnvironment: ProcessInfo.processInfo.environment,
                mounts: try mounts, sharing: other)
            for note in runner.notes { warn("note: \(note)") }
            return runner
        } catch let error as MountError {
            throw ValidationError(error.description)
        } catch let error as SandboxUnavailable {
            warn("\(error)")
            warn("Refusing to run unconfined. Pass --unconfined to run without the sandbox anyway.")
            throw ExitCode(1)
        }
    }

    /// The sessions this command opens: confined by the chosen profile (or, said loudly, not),
    /// with the `--mount` folders, the state directory and the git policy it was given.
    func sessionFactory() throws -> SessionFactory {
        let options = self
        return SessionFactory(
            state: StateDirectory(stateDir ?? StateDirectory.defaultPath()), mounts: try mounts, gitPolicy: try GitPolicy.load(path: config)
        ) { profile, workspace, state, session, sharing in
            try options.makeRunner(workspace: workspace, state: state, session: session, profile: profile, sharingNetworkWith: sharing)
        }
    }

    /// Opens the session (`--session`, or `name`) through `sessionFactory()`; a `fresh` one
    /// starts at the workspace root with no exports, whatever was saved under its name. With
    /// `browserAhead`, Chromium starts when a client lists the tools.
    func openSession(workspace path: String, name: String? = nil, fresh: Bool = false, browserAhead: Bool = false) throws -> Session {
        try Self.opened(by: sessionFactory(), workspace: path, name: name ?? session, fresh: fresh, browserAhead: browserAhead)
    }

    /// `openSession`, started now on a thread of its own: setting the sandbox up (the mechanisms
    /// probe, the user mapping, the mounts, a dry run) blocks in spawns and waits for tens of
    /// milliseconds, which a stdio server spends answering the client's handshake instead. The
    /// factory's own checks (the config, the mounts) are made before this returns.
    func startOpeningSession(workspace path: String, browserAhead: Bool) throws -> Task<Session, any Error> {
        let factory = try sessionFactory(), name = session
        return Task {
            try await withCheckedThrowingContinuation { continuation in
                Thread {
                    continuation.resume(with: Result { try Self.opened(by: factory, workspace: path, name: name, fresh: false, browserAhead: browserAhead) })
                }.start()
            }
        }
    }

    private static func opened(by factory: SessionFactory, workspace path: String, name: String, fresh: Bool, browserAhead: Bool) throws -> Session {
        do {
            return try factory.open(workspace: path, name: name, fresh: fresh, browserAhead: browserAhead)
        } catch let error as ToolError {
            throw ValidationError(error.message)
        }
    }
}

extension SessionOptions {
    /// Takes the session's lock for as long as this process lives, so that a second server on the
    /// same workspace and session refuses instead of sharing (and overwriting) its cwd and exports.
    /// Throws a message naming the process that holds it; returns the workspace it locked in.
    func lockSession(workspace path: String) throws -> Workspace {
        let workspace = try Workspace(path)
        let folder = StateDirectory(stateDir ?? StateDirectory.defaultPath()).folder(for: workspace) + "/sessions"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let file = "\(folder)/\(session).lock"
        // Never through a link, never inherited by a command: the descriptor stays open until exit.
        let fd = open(file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ValidationError("cannot open the session lock \(file): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(fd)
            throw ValidationError(
                "session \(session) of workspace \(workspace.root) is in use by another toolhost (pid \(holder)): give this one --session OTHER_NAME, or stop that one first")
        }
        ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        return workspace
    }

    /// Whether a session of this name was saved for the workspace (its cwd and exports).
    func hasSavedSession(workspace path: String, name: String) -> Bool {
        guard let workspace = try? Workspace(path) else { return false }
        return Session.hasSavedState(name: name, workspace: workspace, state: StateDirectory(stateDir ?? StateDirectory.defaultPath()))
    }
}

/// `path` against the current directory, unless it is absolute already ("~" is the shell's, not ours).
func absolutePath(_ path: String) -> String {
    path.hasPrefix("/") ? path : URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL.path
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
