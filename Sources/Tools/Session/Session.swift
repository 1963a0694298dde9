public import Foundation
public import Sandbox

/// One agent's view of a workspace: its shell's cwd and exported variables, which persist under
/// the state dir (so a restarted server carries on), and the background processes it owns.
public actor Session {
    public nonisolated let name: String
    public nonisolated let workspace: Workspace
    public nonisolated let runner: any ProcessRunner
    /// This workspace's folder under the state dir.
    public nonisolated let stateFolder: String
    /// The environment every command starts from, before the session's own exports.
    public nonisolated let baseEnvironment: [String: String]
    /// Takes the host's secrets out of every result, whichever front door asked.
    public nonisolated let redactor: Redactor
    /// Makes the runner of another profile (build: more time and memory; browser: Chromium's
    /// processes), on first use; it shares the session's network, so servers stay reachable.
    private let makeProfileRunner: (@Sendable (_ profile: String) throws -> any ProcessRunner)?
    private var profileRunners: [String: any ProcessRunner] = [:]

    /// The runner for `profile` when the session can make one, else the session's own.
    func runner(profile: String) throws -> any ProcessRunner {
        if let made = profileRunners[profile] { return made }
        let runner = try makeProfileRunner?(profile) ?? self.runner
        profileRunners[profile] = runner
        return runner
    }

    /// The session's headless browser, started by the first screenshot, or ahead of it.
    private(set) var browser: Browser?
    /// Whether the browser starts when a client lists the tools, before the first screenshot.
    public nonisolated let startsBrowserAhead: Bool
    private var browserAhead: Task<Void, Never>?

    /// The session's browser, made (not yet started) on first use.
    func sessionBrowser() throws -> Browser {
        if let browser { return browser }
        let made = Browser(
            runner: try runner(profile: "browser"), executable: try Browser.findExecutable(), stateFolder: stateFolder, workspace: workspace.root)
        browser = made
        return made
    }

    /// A client listed the tools: with `startsBrowserAhead`, the browser starts now, in the
    /// background (once; a browser that cannot start says why at the first screenshot).
    public func toolsListed(offering tools: Set<String>) {
        guard startsBrowserAhead, browserAhead == nil, tools.contains("screenshot"), let browser = try? sessionBrowser() else { return }
        browserAhead = Task { await browser.startAhead() }
    }

    /// What the git tools may do, and the credentials they push with (host side only).
    public nonisolated let gitPolicy: GitPolicy
    public nonisolated let gitCredentials: GitCredentials

    /// The shell's directory, relative to the workspace root ("" is the root).
    public private(set) var cwd: String
    /// Variables the session exported or changed, over the base environment.
    public private(set) var exported: [String: String]
    /// Base variables the session unset.
    public private(set) var unset: Set<String>
    private var background: [String: BackgroundJob] = [:]
    /// The workspace before each call that can change it, for `undo`.
    private(set) var checkpoints: CheckpointStore
    /// Tool calls so far: the numbers `checkpoints` lists.
    private var calls = 0
    /// A build passed and no call changed the workspace since.
    private var passUnmarked = false
    /// The checkpoint that holds the workspace of the last passing build.
    private(set) var passingCheckpoint: Int?
    private var counter = 0
    private var backgroundCounter = 0

    private struct Saved: Codable {
        var workspace: String
        var session: String
        var cwd: String
        var exported: [String: String]
        var unset: [String]
    }

    /// Opens the session named `name`, restoring its saved state when there is some (unless `fresh`).
    /// - Parameter startsBrowserAhead: start Chromium when a client lists the tools (`toolsListed`),
    ///   so that the first screenshot does not wait for it.
    public init(
        name: String = "default", fresh: Bool = false, workspace: Workspace, state: StateDirectory, runner: any ProcessRunner,
        hostEnvironment: [String: String] = ProcessInfo.processInfo.environment, gitPolicy: GitPolicy = GitPolicy(),
        gitCredentials: GitCredentials? = nil, makeProfileRunner: (@Sendable (_ profile: String) throws -> any ProcessRunner)? = nil,
        startsBrowserAhead: Bool = false
    ) throws {
        self.makeProfileRunner = makeProfileRunner
        self.startsBrowserAhead = startsBrowserAhead
        try Self.validate(name: name)
        self.name = name
        self.workspace = workspace
        self.runner = runner
        self.stateFolder = state.folder(for: workspace)
        self.baseEnvironment = runner.baseEnvironment(host: hostEnvironment)
        self.redactor = Redactor(environment: hostEnvironment)
        self.gitPolicy = gitPolicy
        self.gitCredentials = gitCredentials ?? .fromEnvironment(hostEnvironment)
        self.gitSnapshot = GitSnapshot.take(of: workspace)
        checkpoints = CheckpointStore(folder: "\(stateFolder)/checkpoints/\(name)")
        let file = "\(stateFolder)/sessions/\(name).json"
        if !fresh, let data = FileManager.default.contents(atPath: file),
            let saved = try? JSONDecoder().decode(Saved.self, from: data), saved.workspace == workspace.root
        {
            cwd = saved.cwd
            exported = saved.exported
            unset = Set(saved.unset)
        } else {
            cwd = ""
            exported = [:]
            unset = []
        }
    }

    private var stateFile: String { "\(stateFolder)/sessions/\(name).json" }

    /// Whether a session named `name` saved its state for `workspace`.
    public static func hasSavedState(name: String, workspace: Workspace, state: StateDirectory) -> Bool {
        (try? validate(name: name)) != nil && FileManager.default.fileExists(atPath: "\(state.folder(for: workspace))/sessions/\(name).json")
    }

    /// Refuses a session name that could not be a file name of its own.
    static func validate(name: String) throws {
        guard !name.isEmpty, name.count <= 64,
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }), name.first != "."
        else {
            throw ToolError("session name '\(name)' is not allowed: use 1-64 letters, digits, '-', '_' or '.'", kind: .usage)
        }
    }

    /// The folders whose files results name (this session's saved outputs and background logs):
    /// its sandbox must let commands read them, and no other session's sandbox may.
    public static func readableFolders(state: StateDirectory, workspace: Workspace, session: String) throws -> [String] {
        try validate(name: session)
        let folder = state.folder(for: workspace)
        return [folder + "/outputs/" + session, folder + "/background/" + session]
    }

    /// The workspace's repository as the host opens it, once: for the trust checks and for what
    /// touches `.git` alone (HEAD, remotes, push). It never reads the working tree.
    private var hostRepository: Repository?
    /// Where the calls that touch the working tree run; made on first use.
    private var workingTreeSide: WorkingTree?
    /// The repository as it was before any command ran: what every git call is checked against.
    public private(set) var gitSnapshot: GitSnapshot

    private func workingTree() throws -> WorkingTree {
        if let workingTreeSide { return workingTreeSide }
        let made = WorkingTree(root: workspace.root, thread: try runner.makeConfinedThread())
        workingTreeSide = made
        return made
    }

    /// Runs `body` on the working tree's repository (see `WorkingTree`: in the sandbox's view when
    /// the runner has one), serialized with the session's other working-tree calls, once the
    /// repository is checked to be the one the session started with.
    func withRepository<T: Sendable>(_ body: @escaping @Sendable (Repository) throws -> T) async throws -> T {
        try checkedHostRepository()
        return try await workingTree().run(body)
    }

    /// Runs `body` on the host's handle of the repository, for calls that touch `.git` alone
    /// (refs, remotes, push with the host's credentials), once the repository is checked.
    func withHostRepository<T: Sendable>(_ body: @Sendable (Repository) throws -> T) throws -> T {
        try body(checkedHostRepository())
    }

    /// Who commits: the repository's (or the host user's global) identity, read on the host,
    /// else the policy's fallback.
    func commitIdentity() throws -> (name: String, email: String) {
        try checkedHostRepository().defaultIdentity() ?? (gitPolicy.identityName, gitPolicy.identityEmail)
    }

    @discardableResult
    private func checkedHostRepository() throws -> Repository {
        guard gitSnapshot.identity != nil else {
            if GitSnapshot.gitEntry(in: workspace) != nil {
                throw ToolError(
                    "refusing to use .git: it was created after the session started, by a command, not by toolhost. Remove it with execute (rm -rf .git is refused in the sandbox: do it outside), or start a new session.")
            }
            throw ToolError("the workspace \(workspace.root) is not a git repository yet: git_commit creates one (branch main) with your first commit")
        }
        if hostRepository == nil { hostRepository = try Repository(root: workspace.root) }
        if let refusal = gitSnapshot.refusal(for: hostRepository!, in: workspace) {
            hostRepository = nil
            throw ToolError("refusing to use the repository: \(refusal). toolhost trusts only the repository the session started with; nothing was read or written.")
        }
        return hostRepository!
    }

    /// Does ahead what a session's first call would otherwise do (the workspace's first
    /// checkpoint snapshot), for a session prepared before anyone uses it. What changes in the
    /// workspace meanwhile is still seen: the snapshot's folder watch runs from here on.
    public func prepareAhead() {
        checkpoints.prime(workspace)
    }

    /// Starts a session that was prepared ahead (a warm pool): from now on it trusts the
    /// repository as it is now, as a session opened now would.
    public func beginNow() {
        gitSnapshot = GitSnapshot.take(of: workspace)
    }

    /// Whether the workspace has no repository yet (and none appeared since the session started).
    var hasNoRepository: Bool { gitSnapshot.identity == nil && GitSnapshot.gitEntry(in: workspace) == nil }

    /// Creates the workspace's repository (branch main) where working-tree calls run, in the
    /// `.git` placeholder commands cannot write; the session then trusts it.
    func createRepository() async throws {
        let root = workspace.root
        try await workingTree().perform { try Repository.create(at: root) }
        gitSnapshot = GitSnapshot.take(of: workspace)
    }

    /// The environment for the next command.
    public var environment: [String: String] {
        baseEnvironment.filter { !unset.contains($0.key) }.merging(exported) { _, own in own }
    }

    /// Records the shell state a command left and saves it, atomically.
    func record(cwd: String, environment: [String: String]) throws {
        let exported = environment.filter { baseEnvironment[$0.key] != $0.value }
        let unset = Set(baseEnvironment.keys.filter { environment[$0] == nil })
        // Most commands change neither: skip the write.
        guard cwd != self.cwd || exported != self.exported || unset != self.unset else { return }
        self.cwd = cwd
        self.exported = exported
        self.unset = unset
        let saved = Saved(
            workspace: workspace.root, session: name, cwd: cwd, exported: exported, unset: unset.sorted())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileManager.default.createDirectory(
            atPath: "\(stateFolder)/sessions", withIntermediateDirectories: true)
        try encoder.encode(saved).write(to: URL(fileURLWithPath: stateFile), options: .atomic)
    }

    /// A fresh path under the state dir for a saved output or log.
    func newStatePath(kind: String, suffix: String = "log") -> String {
        counter += 1
        let stamp = Int(Date().timeIntervalSince1970 * 1000)
        let folder = "\(stateFolder)/\(kind)/\(name)"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return "\(folder)/\(stamp)-\(getpid())-\(counter).\(suffix)"
    }

    /// A background process with what started it.
    public struct BackgroundJob: Sendable {
        public let process: BackgroundProcess
        public let command: String
        public let started: Date
    }

    /// Keeps a background process until the session closes (or it is stopped); returns its id.
    func adopt(_ process: BackgroundProcess, command: String) -> String {
        backgroundCounter += 1
        let id = "bg-\(backgroundCounter)"
        background[id] = BackgroundJob(process: process, command: command, started: Date())
        return id
    }

    /// Builds so far: attempts, passes, and the last one's error fingerprint.
    public private(set) var builds = BuildHistory()

    public struct BuildHistory: Sendable {
        public var attempts = 0
        public var passes = 0
        /// Whether the last build passed (nil: none yet).
        public var lastPassed: Bool?
        public var firstPass: Int?
        var lastFingerprint: String?
        var lastFingerprintAttempt = 0
    }

    /// Counts a build; returns its attempt number and, when it failed with the same errors as the
    /// build before, the attempt that first had them.
    func recordBuild(passed: Bool, fingerprint: String) -> (attempt: Int, sameAs: Int?) {
        builds.attempts += 1
        builds.lastPassed = passed
        passUnmarked = passed
        if passed {
            builds.passes += 1
            builds.firstPass = builds.firstPass ?? builds.attempts
            builds.lastFingerprint = nil
            return (builds.attempts, nil)
        }
        if fingerprint == builds.lastFingerprint { return (builds.attempts, builds.lastFingerprintAttempt) }
        builds.lastFingerprint = fingerprint
        builds.lastFingerprintAttempt = builds.attempts
        return (builds.attempts, nil)
    }

    /// Numbers a call and, when it can change the workspace, records a checkpoint first.
    func beginCall(_ tool: String, changesWorkspace: Bool) -> Int {
        calls += 1
        guard changesWorkspace else { return calls }
        if passUnmarked {
            passingCheckpoint = calls
            passUnmarked = false
        }
        checkpoints.begin(call: calls, tool: tool, workspace: workspace, buildPassed: builds.lastPassed)
        return calls
    }

    /// Records what a call that can change the workspace changed.
    func endCall(_ call: Int) {
        checkpoints.end(call: call, workspace: workspace)
    }

    /// What an undo did.
    struct Undone: Sendable {
        let call: Int
        let tool: String
        let restored: [String]
        let removed: [String]
        /// Paths the checkpoint could not put back (not kept: too large, or the store was full).
        let notKept: [String]
    }

    /// Puts every file that this session's calls from `call` on changed back as it was before
    /// `call` (without `call`: the last call that changed something). Files the session's calls
    /// did not touch (another session's work, ignored folders) stay as they are.
    func undo(to call: Int?) throws -> Undone {
        let chosen: Int
        if let call {
            chosen = call
        } else {
            guard let last = checkpoints.checkpoints.last(where: { $0.changes.map { !$0.isEmpty } ?? false }) else {
                throw ToolError("nothing to undo: no call of this session has changed the workspace yet", kind: .usage)
            }
            chosen = last.call
        }
        guard let (target, paths) = checkpoints.undoing(from: chosen) else {
            let known = checkpoints.checkpoints.map { String($0.call) }.suffix(20).joined(separator: ", ")
            throw ToolError("there is no checkpoint before call \(chosen); the checkpoints are before calls \(known.isEmpty ? "(none yet)" : known). See checkpoints {}.", kind: .usage)
        }
        let now = checkpoints.snapshot(of: workspace).files
        var folders = Set<String>()
        for path in target.files.keys {
            var components = path.split(separator: "/").dropLast()
            while !components.isEmpty {
                folders.insert(components.joined(separator: "/"))
                components.removeLast()
            }
        }
        var restored: [String] = [], removed: [String] = [], notKept: [String] = []
        for (path, entry) in paths.sorted(by: { $0.key < $1.key }) {
            if target.notKept.contains(path) {
                notKept.append(path)
            } else if let entry {
                guard !entry.sameContent(as: now[path]) else { continue }
                guard let data = checkpoints.contents(of: entry.blob) else {
                    notKept.append(path)
                    continue
                }
                try workspace.restore(data, executable: entry.executable, to: path)
                restored.append(path)
            } else if now[path] != nil {
                workspace.remove(path, keepFolders: folders)
                removed.append(path)
            }
        }
        return Undone(call: target.call, tool: target.tool, restored: restored, removed: removed, notKept: notKept)
    }

    /// The background processes, by id.
    public var backgroundJobs: [String: BackgroundJob] { background }

    /// Stops one background process (and everything it started); false when there is no such id.
    func stopBackground(_ id: String) -> Bool {
        guard let job = background.removeValue(forKey: id) else { return false }
        job.process.stop()
        return true
    }

    /// Ends the session: every background process and what it started is killed, and the runner
    /// lets go of what it held.
    public func close() async {
        // Cancelled first, so a start that has not begun yet never begins (see Browser.startAhead).
        browserAhead?.cancel()
        browserAhead = nil
        await browser?.close()
        browser = nil
        for job in background.values { job.process.stop() }
        background = [:]
        workingTreeSide?.stop()
        workingTreeSide = nil
        runner.close()
        for made in profileRunners.values { made.close() }
        profileRunners = [:]
    }
}
