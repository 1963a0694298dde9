import CSandbox
public import Egress
import Foundation
public import WorkspaceAccess

/// The C description of how to confine a child, with everything it points to kept alive.
final class ConfinementHandle: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<csandbox_confinement>
    private let plan: MountPlan
    private let filter: UnsafeMutableRawBufferPointer
    private let rlimits: UnsafeMutableBufferPointer<csandbox_rlimit>
    private let strings: [UnsafeMutablePointer<CChar>]

    init(flags: Int32, netnsFD: Int32 = -1, mntnsFD: Int32 = -1, loopbackUp: Bool = false, joinUser: Int32 = -1, idmapUser: Int32 = -1,
         userMaps: (uid: String, gid: String)? = nil, cgroupFDs: [Int32] = [], plan: MountPlan, filter bpf: [UInt8] = [],
         rlimits limits: [(resource: Int32, value: UInt64)] = []) {
        self.plan = plan
        filter = .allocate(byteCount: max(bpf.count, 8), alignment: 8)
        filter.copyBytes(from: bpf)
        rlimits = .allocate(capacity: max(limits.count, 1))
        for (index, limit) in limits.enumerated() {
            rlimits[index] = csandbox_rlimit(resource: limit.resource, value: limit.value)
        }
        var strings: [UnsafeMutablePointer<CChar>] = [strdup("toolhost")!]
        if let userMaps { strings += [strdup(userMaps.uid)!, strdup(userMaps.gid)!] }
        self.strings = strings
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: csandbox_confinement(
            clone_flags: flags, netns_fd: netnsFD, mntns_fd: mntnsFD, userns_fd: joinUser, idmap_userns_fd: idmapUser,
            uid_map: userMaps == nil ? nil : UnsafePointer(strings[1]),
            gid_map: userMaps == nil ? nil : UnsafePointer(strings[2]),
            hostname: (flags & Namespaces.uts) != 0 ? UnsafePointer(strings[0]) : nil,
            loopback_up: loopbackUp ? 1 : 0,
            cgroup_procs_fds: (cgroupFDs.count > 0 ? cgroupFDs[0] : -1, cgroupFDs.count > 1 ? cgroupFDs[1] : -1),
            mounts: UnsafePointer(plan.mounts.baseAddress), mount_count: Int32(plan.mounts.count),
            rlimits: UnsafePointer(rlimits.baseAddress), rlimit_count: Int32(limits.count),
            filter: UnsafeRawPointer(filter.baseAddress), filter_len: UInt16(bpf.count / 8)))
    }

    /// Sets the value of an rlimit in the list for the children spawned from now on. Spawns on
    /// other threads read it as it stands when they fork: a word, written whole.
    func setLimit(_ resource: Int32, to value: UInt64) {
        for index in rlimits.indices where rlimits[index].resource == resource { rlimits[index].value = value }
    }

    /// What mount step `index` was doing, for errors.
    func describeMount(_ index: Int) -> String? {
        plan.descriptions.indices.contains(index) ? plan.descriptions[index] : nil
    }

    deinit {
        pointer.deallocate()
        filter.deallocate()
        rlimits.deallocate()
        strings.forEach { free($0) }
    }
}

/// Runs every command confined by a profile: new mount, pid, ipc and uts namespaces, the session's
/// network namespace, a read-only root with the workspace and a private /tmp writable, a fresh /proc
/// and a minimal /dev, hidden paths covered, rlimits and a pids cgroup, no capabilities,
/// no_new_privs and the profile's seccomp filter.
public final class ConfinedRunner: ProcessRunner, @unchecked Sendable {
    public let profile: SandboxProfile
    public let confinement: Confinement
    public var reachesHostNetwork: Bool { profile.network == .host }
    private let workspace: String
    public var defaultTimeoutSeconds: Int { profile.limits.wallSeconds }
    public let outputCap: OutputCap
    /// What this runner could not use, said once at start (e.g. no pids cgroup).
    public let notes: [String]
    private let handle: ConfinementHandle
    public let sharedNetwork: SharedNetwork?
    /// The session's egress proxy, for `network: "allowlist"`.
    public let egress: EgressProxy?
    /// The folder of the trust bundle with the egress proxy's CA, if it has one; removed with the runner.
    private let trustFolder: String?
    private let mountNamespaceFD: Int32
    private let cgroups: [ProcessCgroup]
    /// The cgroup controllers that bound this session's commands.
    public let activeCgroups: [ProcessCgroup.Controller]
    private let userMapping: UserMapping?
    /// Makes the mounts of the view a `ConfinedThread` enters: the session's, with .git writable
    /// and the host's procfs covered (read from mountinfo), on the first git call rather than at
    /// every session's start; nil when the view cannot be joined (toolhost is not root).
    private let makeViewPlan: (() -> MountPlan)?
    /// What this session's commands may still add to the workspace's disk.
    public let disk: DiskBudget
    /// The host uid and gid commands run as: an unprivileged pair of their own when toolhost is
    /// root, else toolhost's own user (mapped to root inside).
    public var hostIdentity: (uid: UInt32, gid: UInt32) { userMapping.map { ($0.uid, $0.gid) } ?? (getuid(), getgid()) }

    /// Prepares the confinement once: the mount plan, the BPF program, the session's network namespace.
    /// Refuses, with the exact reason, when the kernel lacks a mechanism the profile requires.
    /// - Parameter readable: folders commands may read even inside hidden paths (the session's saved
    ///   outputs and background logs, which results name); created when missing.
    /// - Parameter other: the network of a runner of the same session, which this one joins
    ///   (a server started by one is then reachable from the other's commands).
    /// - Parameter mounts: workspace folders commands also see at other paths (`--mount`).
    public init(profile: SandboxProfile, workspace: String, stateDirectory: String, readable: [String] = [],
                host: [String: String], mechanisms: Mechanisms, sharingNetworkWith other: SharedNetwork? = nil,
                mounts: [FolderMount] = []) throws {
        self.profile = profile
        self.workspace = workspace
        try Self.checkMountedFolders(mounts, workspace: workspace)
        disk = DiskBudget(path: workspace, megabytes: profile.limits.diskMB)
        confinement = .confined(profile: profile.name)
        let root = geteuid() == 0
        try Self.checkMechanisms(profile, mechanisms, root: root)
        let head = profile.limits.outputBytes * 2 / 5
        outputCap = OutputCap(head: head, tail: profile.limits.outputBytes - head)
        var paths = try Self.preparePaths(
            profile, workspace: workspace, stateDirectory: stateDirectory, home: host["HOME"] ?? NSHomeDirectory(), readable: readable)
        paths.mounts = mounts
        let network = try Self.network(profile, root: root, joining: other)
        sharedNetwork = network.shared
        let proxy = try Self.startEgress(profile, in: network.shared, host: host, stateDirectory: stateDirectory)
        egress = proxy?.proxy
        trustFolder = proxy?.trustFolder
        if let trustFolder { paths.readable.append(trustFolder) }
        var notes: [String] = []
        let identity = try Self.mapUserAndMount(paths, root: root, notes: &notes)
        userMapping = identity.mapping
        mountNamespaceFD = identity.mountNamespace
        makeViewPlan = identity.makeViewPlan
        let netnsFD = network.shared?.descriptor ?? -1
        if netnsFD < 0 && profile.network == .loopback {
            notes.append("each command gets a loopback network of its own (a shared one needs root): background servers are not reachable from later commands")
        }
        let made = Self.makeCgroups(profile, root: root, notes: &notes)
        cgroups = made.map(\.1)
        activeCgroups = made.map(\.0)
        self.notes = notes
        handle = ConfinementHandle(
            flags: Namespaces.pid | Namespaces.ipc | Namespaces.uts | network.flags | identity.flags, netnsFD: netnsFD,
            mntnsFD: mountNamespaceFD, loopbackUp: network.loopbackUp, joinUser: identity.mapping?.processNamespace ?? -1,
            userMaps: identity.userMaps, cgroupFDs: cgroups.map(\.procsFD), plan: identity.callPlan, filter: try profile.seccomp.compileBPF(),
            rlimits: Self.rlimits(profile.limits))

        // Try the whole setup once now, so a failure is reported at start with its exact step.
        do {
            _ = try Supervisor.run(
                ProcessSpec(executable: "/bin/true", environment: [:], workingDirectory: workspace, timeout: .seconds(10)),
                confinement: handle)
        } catch var error as SpawnError {
            if error.step == .mount { error.context = handle.describeMount(error.detail) }
            throw SandboxUnavailable("profile \(profile.name) cannot confine commands on this machine: \(error)")
        }
    }

    deinit {
        close()
        if mountNamespaceFD >= 0 { Glibc.close(mountNamespaceFD) }
    }

    /// Checks the mounts and that each folder is one in the workspace now, for a clear refusal
    /// (a `MountError`: the caller's to correct)
    /// (the child opens each again, beneath the root, each time it sets a sandbox up).
    private static func checkMountedFolders(_ mounts: [FolderMount], workspace: String) throws {
        guard !mounts.isEmpty else { return }
        try FolderMount.checkTargets(mounts)
        // A target in the workspace would make the child show workspace entries (which commands
        // change) by name in its new root.
        if let inside = mounts.first(where: { FolderMount.isUnder($0.target, workspace) || FolderMount.isUnder(workspace, $0.target) }) {
            throw MountError("--mount \(inside): the target may not lie in the workspace \(workspace) or hold it; choose a path outside it, e.g. /app")
        }
        guard Beneath.usesOpenat2 else { throw SandboxUnavailable("--mount needs openat2 (Linux 5.6 or later), which this kernel lacks") }
        let root = open(workspace, Beneath.pathOnly | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw SandboxUnavailable("cannot open the workspace \(workspace): \(String(cString: strerror(errno)))") }
        for mount in mounts {
            let folder = Beneath.open(root, mount.relative, Beneath.pathOnly | O_DIRECTORY)
            guard folder >= 0 else {
                Glibc.close(root)
                throw MountError(
                    "--mount \(mount): \(mount.relative.isEmpty ? "." : mount.relative) is not a folder in the workspace \(workspace) (\(String(cString: strerror(-folder)))); create it first, and not as a symlink")
            }
            Glibc.close(folder)
        }
        Glibc.close(root)
    }

    public func baseEnvironment(host: [String: String]) -> [String: String] {
        CleanEnvironment.base(from: host, pass: Set(profile.environment.pass), set: profile.environment.set)
            .merging(egress?.environment ?? [:]) { $1 }
            .merging(trustFolder.map { EgressProxy.trustVariables(bundle: $0 + "/" + Self.trustBundleName) } ?? [:]) { $1 }
    }

    public func run(_ spec: ProcessSpec) async throws -> ProcessOutcome {
        boundFileSizeByTheDiskBudget()
        do {
            return try await Supervisor.runOnThread(spec, confinement: handle, disk: disk)
        } catch var error as SpawnError where error.step == .mount {
            error.context = handle.describeMount(error.detail)
            throw error
        }
    }

    public func start(_ spec: ProcessSpec, logFile: String) throws -> BackgroundProcess {
        boundFileSizeByTheDiskBudget()
        return try Supervisor.startBackground(spec, logFile: logFile, confinement: handle, disk: disk)
    }

    /// No one file a command writes (or fallocates, which takes no time) may pass what is left
    /// of the disk budget: the budget's sampler could not see it in time.
    private func boundFileSizeByTheDiskBudget() {
        handle.setLimit(Int32(RLIMIT_FSIZE.rawValue), to: UInt64(min(Int64(profile.limits.fileSizeMB) << 20, disk.remaining)))
    }

    public func makeConfinedThread() throws -> ConfinedThread? {
        guard let makeViewPlan else { return nil }
        let namespace: Int32
        do {
            namespace = try Self.prepareMountNamespace(ConfinementHandle(
                flags: Namespaces.mount, idmapUser: userMapping?.idmapNamespace ?? -1, plan: makeViewPlan()))
        } catch let error as SandboxUnavailable {
            throw SandboxUnavailable("the working tree's confined view cannot be made: \(error)")
        }
        defer { Glibc.close(namespace) }
        let identity = hostIdentity
        return try ConfinedThread(mountNamespace: namespace, uid: identity.uid, gid: identity.gid)
    }

    public func takeEgressDecisions() -> [EgressProxy.Decision] { egress?.takeDecisions() ?? [] }

    public func close() {
        egress?.stop()
        if let trustFolder { try? FileManager.default.removeItem(atPath: trustFolder) }
        cgroups.forEach { $0.remove() }
    }

    public func denials(output: String, exitCode: Int32?, signal: Int32?) -> [String] {
        // The proxy knows what it refused: those notes replace the guess from the output.
        let refused = egress?.takeRefusals() ?? []
        var seen = Set<String>()
        let notes = refused.map { egress!.explain($0) }.filter { seen.insert($0).inserted }
        return notes + Denials(profile: profile, workspace: workspace).explain(output: output, exitCode: exitCode, signal: signal)
            .filter { notes.isEmpty || !$0.hasPrefix("network:") }
    }
}

/// The sandbox cannot be set up as the profile asks; the message says why and what to do.
public struct SandboxUnavailable: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
