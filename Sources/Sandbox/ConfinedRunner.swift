import CSandbox
import Egress
import Foundation

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
    public init(profile: SandboxProfile, workspace: String, stateDirectory: String, readable: [String] = [],
                host: [String: String], mechanisms: Mechanisms, sharingNetworkWith other: SharedNetwork? = nil) throws {
        var readable = readable
        self.profile = profile
        self.workspace = workspace
        disk = DiskBudget(path: workspace, megabytes: profile.limits.diskMB)
        confinement = .confined(profile: profile.name)
        for mechanism in profile.requires where !mechanisms.has(mechanism) {
            throw SandboxUnavailable(
                "profile \(profile.name) requires \(mechanism.rawValue), which this machine does not allow: \(mechanisms.missing[mechanism]!). Run `toolhost doctor` to see what is available.")
        }
        let root = geteuid() == 0
        if !root && !mechanisms.has(.userNamespace) {
            throw SandboxUnavailable(
                "toolhost runs as an ordinary user here, so it needs user namespaces to confine commands, and this kernel refuses them: \(mechanisms.missing[.userNamespace]!). Enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 or user.max_user_namespaces > 0) or run as root.")
        }
        let head = profile.limits.outputBytes * 2 / 5
        outputCap = OutputCap(head: head, tail: profile.limits.outputBytes - head)

        let variables = ["${WORKSPACE}": workspace, "${HOME}": host["HOME"] ?? NSHomeDirectory(), "${STATE}": stateDirectory]
        func expand(_ path: String) -> String {
            variables.reduce(path) { $0.replacingOccurrences(of: $1.key, with: $1.value) }
        }
        let writable = profile.filesystem.writable.map(expand)
        for path in writable where path == "/" || !FileManager.default.fileExists(atPath: path) {
            throw SandboxUnavailable("profile \(profile.name): writable path \(path) \(path == "/" ? "would make everything writable" : "does not exist")")
        }
        for folder in readable {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        let readOnly = profile.filesystem.readOnly.map(expand)
        var owner = stat()
        stat(workspace, &owner)
        // A protected path that does not exist yet (a workspace with no .git) is made as an empty
        // folder, so that its read-only mount keeps commands from creating it themselves. It is the
        // workspace owner's, as git_commit's repository made in it will be.
        for path in readOnly where writable.contains(where: { MountPlan.isUnder(path, $0) && path != $0 }) {
            var info = stat()
            if lstat(path, &info) != 0 && errno == ENOENT && mkdir(path, 0o755) == 0 { chown(path, owner.st_uid, owner.st_gid) }
        }
        let gitFolder = workspace + "/.git"
        func plan(withProc: Bool, owner: UserMapping? = nil, view: Bool = false) -> MountPlan {
            MountPlan(
                writable: writable, readOnly: view ? readOnly.filter { $0 != gitFolder } : readOnly,
                hidden: profile.filesystem.hidden.map(expand), readable: readable,
                tmpSizeMB: min(profile.limits.memoryMB, 2048), withProc: withProc, owner: owner.map { ($0.uid, $0.gid) },
                coverHostProc: view)
        }

        var flags = Namespaces.pid | Namespaces.ipc | Namespaces.uts
        var network: SharedNetwork? = nil
        var loopbackUp = false
        switch profile.network {
        case .host: break
        case .none: flags |= Namespaces.network
        case .allowlist:
            // The proxy listens inside the namespace, which only root can keep and join.
            guard root else {
                throw SandboxUnavailable(
                    "profile \(profile.name) asks for network \"allowlist\", whose proxy lives in the session's own network namespace, which needs toolhost to run as root here. Use network \"loopback\" (no network) or \"host\".")
            }
            network = try SharedNetwork()
        case .loopback:
            if root, let other {
                network = other
            } else if root, let made = try? SharedNetwork() {
                network = made
            } else {
                // Without root the namespace cannot be joined later: each command gets its own.
                flags |= Namespaces.network
                loopbackUp = true
            }
        }
        sharedNetwork = network
        let netnsFD = network?.descriptor ?? -1
        if let policy = profile.egress, profile.network == .allowlist, let network {
            var secrets: [String: String] = [:]
            for secret in policy.secrets {
                guard let value = host[secret.from], !value.isEmpty else {
                    throw SandboxUnavailable("profile \(profile.name): egress secret \(secret.variable) is to come from the host's \(secret.from), which is not set. Set it in toolhost's environment.")
                }
                secrets[secret.from] = value
            }
            let proxy: EgressProxy
            do {
                proxy = try EgressProxy(
                    policy: policy, profile: profile.name, listener: try network.listen(port: EgressProxy.port),
                    logPath: stateDirectory + "/egress.jsonl", secrets: secrets, upstreamTrust: host["SSL_CERT_FILE"])
            } catch let error as EgressUnavailable {
                throw SandboxUnavailable(error.description)
            }
            egress = proxy
            trustFolder = try proxy.authorityPEM.map { pem in
                let folder = stateDirectory + "/egress-trust/" + UUID().uuidString
                try Self.writeTrustBundle(pem, in: folder)
                readable.append(folder)
                return folder
            }
        } else {
            egress = nil
            trustFolder = nil
        }
        var userMaps: (uid: String, gid: String)?
        let callPlan: MountPlan
        var notes: [String] = []
        var mapping: UserMapping?
        if root {
            // Commands must not be host root: they get an unprivileged uid of their own, and the
            // workspace is idmapped so what they write still belongs to its owner.
            do {
                mapping = try UserMapping(workspaceOwner: (owner.st_uid, owner.st_gid))
            } catch {
                notes.append("WARNING: commands run as host root (uid 0), not as an unprivileged user: \(error)")
            }
            // The session's mounts are made once; each call copies them and adds its own /proc.
            do {
                mountNamespaceFD = try Self.prepareMountNamespace(ConfinementHandle(
                    flags: Namespaces.mount, idmapUser: mapping?.idmapNamespace ?? -1, plan: plan(withProc: false, owner: mapping)))
            } catch where mapping != nil {
                notes.append("WARNING: commands run as host root (uid 0), not as an unprivileged user: the workspace's filesystem cannot be idmapped (\(error))")
                mapping = nil
                mountNamespaceFD = try Self.prepareMountNamespace(ConfinementHandle(flags: Namespaces.mount, plan: plan(withProc: false)))
            }
            callPlan = .procOnly
            makeViewPlan = { [mapping] in plan(withProc: false, owner: mapping, view: true) }
        } else {
            // A mount namespace owned by another user namespace cannot be joined: build it per call.
            mountNamespaceFD = -1
            flags |= Namespaces.user | Namespaces.mount
            userMaps = ("0 \(getuid()) 1", "0 \(getgid()) 1")
            callPlan = plan(withProc: true)
            makeViewPlan = nil
            notes.append(
                "WARNING: git_status, git_diff, git_commit and git_branch read and write the working tree as your own user, outside the sandbox's view (a view of its own needs toolhost to run as root): a symlink a command swaps in mid-call can lead them to any file you can read or write")
        }
        userMapping = mapping
        if netnsFD < 0 && profile.network == .loopback {
            notes.append("each command gets a loopback network of its own (a shared one needs root): background servers are not reachable from later commands")
        }
        let wanted: [(ProcessCgroup.Controller, UInt64)] = [(.pids, UInt64(profile.limits.processes)), (.memory, UInt64(profile.limits.memoryMB) << 20)]
        var made: [ProcessCgroup] = []
        var active: [ProcessCgroup.Controller] = []
        for (controller, limit) in wanted {
            guard let cgroup = ProcessCgroup(controller, limit: limit) else { continue }
            made.append(cgroup)
            active.append(controller)
        }
        cgroups = made
        activeCgroups = active
        if !activeCgroups.contains(.pids) {
            notes.append(root
                ? "no pids cgroup is writable, so the process limit rests on RLIMIT_NPROC, which does not bind uid 0: a fork bomb is stopped only by the timeout"
                : "no pids cgroup is writable, so the process limit rests on RLIMIT_NPROC (which counts all of this user's processes)")
        }
        if !activeCgroups.contains(.memory) {
            notes.append(profile.limits.addressSpaceMB == nil
                ? "no memory cgroup is writable, and profile \(profile.name) sets no address-space limit: its memory is not bounded"
                : "no memory cgroup is writable: memory is bounded per process (RLIMIT_AS), not for the session as a whole")
        }
        self.notes = notes
        let limits = profile.limits
        var rlimits: [(Int32, UInt64)] = [
            (Int32(RLIMIT_CPU.rawValue), UInt64(limits.cpuSeconds)),
            (6 /* RLIMIT_NPROC, hidden from Swift */, UInt64(limits.processes)),
            (Int32(RLIMIT_FSIZE.rawValue), UInt64(limits.fileSizeMB) << 20),
            (Int32(RLIMIT_NOFILE.rawValue), UInt64(limits.openFiles)),
            (Int32(RLIMIT_CORE.rawValue), 0),
        ]
        if let addressSpace = limits.addressSpaceMB { rlimits.append((Int32(RLIMIT_AS.rawValue), UInt64(addressSpace) << 20)) }
        handle = ConfinementHandle(
            flags: flags, netnsFD: netnsFD, mntnsFD: mountNamespaceFD, loopbackUp: loopbackUp,
            joinUser: mapping?.processNamespace ?? -1, userMaps: userMaps,
            cgroupFDs: cgroups.map(\.procsFD), plan: callPlan, filter: try profile.seccomp.compileBPF(), rlimits: rlimits)

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

    private static let trustBundleName = "ca-bundle.pem"

    /// The system's roots (a host file) followed by the session's CA, in a new folder of the
    /// session's own that commands may read.
    private static func writeTrustBundle(_ pem: String, in folder: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            let system = (try? String(contentsOfFile: "/etc/ssl/certs/ca-certificates.crt", encoding: .utf8)) ?? ""
            let bundle = folder + "/" + trustBundleName
            try Data((system + (system.hasSuffix("\n") || system.isEmpty ? "" : "\n") + pem).utf8).write(to: URL(fileURLWithPath: bundle))
            chmod(bundle, 0o644)
        } catch {
            throw SandboxUnavailable("the egress proxy's CA cannot be written to \(folder): \(error.localizedDescription)")
        }
    }

    /// Runs the session's mount plan once in a child of its own (which waits on a pipe) and keeps its
    /// mount namespace by descriptor.
    private static func prepareMountNamespace(_ template: ConfinementHandle) throws -> Int32 {
        let pipe = try Spawn.pipe()
        let pid: pid_t
        do {
            pid = try Spawn.start(
                ProcessSpec(executable: "/bin/cat", environment: [:], workingDirectory: "/"), fds: [(pipe.read, 0)],
                confinement: template.pointer)
        } catch var error as SpawnError {
            Glibc.close(pipe.read)
            Glibc.close(pipe.write)
            if error.step == .mount { error.context = template.describeMount(error.detail) }
            throw SandboxUnavailable("the sandbox's mounts cannot be prepared on this machine: \(error)")
        }
        Glibc.close(pipe.read)
        let fd = open("/proc/\(pid)/ns/mnt", O_RDONLY | O_CLOEXEC)
        let openErrno = errno
        Glibc.close(pipe.write)
        reap(pid)
        guard fd >= 0 else { throw SpawnError(executable: "mount namespace", errno: openErrno) }
        return fd
    }


    /// A network namespace with loopback up, made on a thread of its own (namespaces belong to
    /// threads) that ends at once; the descriptor keeps the namespace alive.
}

/// The sandbox cannot be set up as the profile asks; the message says why and what to do.
public struct SandboxUnavailable: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
