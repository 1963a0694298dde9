public import Foundation
public import Sandbox

/// How a session is put together: the workspace and its `--mount` folders, the state directory,
/// the runner of the session's profile, the runners of the profiles its tools ask for (sharing
/// the first one's network), the git policy. The one composition root: the CLI's commands, MCP
/// over HTTP, the showdown and the tests all open sessions here.
public struct SessionFactory: Sendable {
    /// Makes a runner for `profile` (nil: the session's own) on the session's workspace, sharing
    /// the network of `sharing` when given.
    public typealias MakeRunner = @Sendable (
        _ profile: String?, _ workspace: Workspace, _ state: StateDirectory, _ session: String, _ sharing: (any ProcessRunner)?
    ) throws -> any ProcessRunner

    public let state: StateDirectory
    public let mounts: [FolderMount]
    public let gitPolicy: GitPolicy
    public let hostEnvironment: [String: String]
    /// Whether builds and the browser get their own profiles' runners; off keeps every command
    /// on the session's runner.
    public let profileRunners: Bool
    private let makeRunner: MakeRunner

    public init(
        state: StateDirectory, mounts: [FolderMount] = [], gitPolicy: GitPolicy = GitPolicy(),
        hostEnvironment: [String: String] = ProcessInfo.processInfo.environment, profileRunners: Bool = true, makeRunner: @escaping MakeRunner
    ) {
        self.state = state
        self.mounts = mounts
        self.gitPolicy = gitPolicy
        self.hostEnvironment = hostEnvironment
        self.profileRunners = profileRunners
        self.makeRunner = makeRunner
    }

    /// Confined runners: `profile` (a built-in name or a file) for the session, each tool's own
    /// profile beside it.
    public static func confined(
        profile: String, state: StateDirectory, mounts: [FolderMount] = [], gitPolicy: GitPolicy = GitPolicy(),
        hostEnvironment: [String: String] = ProcessInfo.processInfo.environment, mechanisms: Mechanisms = .current,
        profileRunners: Bool = true
    ) -> SessionFactory {
        SessionFactory(
            state: state, mounts: mounts, gitPolicy: gitPolicy, hostEnvironment: hostEnvironment, profileRunners: profileRunners
        ) { chosen, workspace, state, session, sharing in
            try confinedRunner(
                SandboxProfile.load(chosen ?? profile), workspace: workspace, state: state, session: session, hostEnvironment: hostEnvironment,
                mechanisms: mechanisms, mounts: mounts, sharing: sharing)
        }
    }

    /// A confined runner of `profile` for the session `session`: it sees the workspace, the
    /// `mounts` (in the order given: a folder mounted inside another comes after it) and, of the
    /// state directory, that session's own outputs and logs.
    public static func confinedRunner(
        _ profile: SandboxProfile, workspace: Workspace, state: StateDirectory, session: String, hostEnvironment: [String: String],
        mechanisms: Mechanisms = .current, mounts: [FolderMount] = [], sharing: (any ProcessRunner)? = nil
    ) throws -> ConfinedRunner {
        try ConfinedRunner(
            profile: profile, workspace: workspace.root, stateDirectory: state.path,
            readable: Session.readableFolders(state: state, workspace: workspace, session: session), host: hostEnvironment,
            mechanisms: mechanisms, sharingNetworkWith: sharing?.sharedNetwork, mounts: mounts)
    }

    /// Opens the session `name` on the workspace at `path` (restoring what was saved under that
    /// name unless `fresh`); with `browserAhead`, Chromium starts when a client lists the tools.
    public func open(workspace path: String, name: String = "default", fresh: Bool = false, browserAhead: Bool = false) throws -> Session {
        let workspace = try Workspace(path, mounts: mounts)
        let runner = try makeRunner(nil, workspace, state, name, nil)
        let profileRunner: (@Sendable (String) throws -> any ProcessRunner)? =
            profileRunners ? { @Sendable [makeRunner, state] (profile: String) in try makeRunner(profile, workspace, state, name, runner) } : nil
        return try Session(
            name: name, fresh: fresh, workspace: workspace, state: state, runner: runner, hostEnvironment: hostEnvironment,
            gitPolicy: gitPolicy, makeProfileRunner: profileRunner, startsBrowserAhead: browserAhead)
    }
}
