import CSandbox
import Egress
import Foundation
import WorkspaceAccess

/// The steps `ConfinedRunner.init` takes, in order, each its own function: check the mechanisms,
/// lay out the paths, set up the network and its egress proxy, map the user and make the mounts,
/// make the cgroups, set the rlimits; the init then tries the whole setup once.
extension ConfinedRunner {
    /// Refuses, with the reason and the way forward, when the kernel lacks a mechanism the profile
    /// needs, or when an ordinary user cannot make user namespaces.
    static func checkMechanisms(_ profile: SandboxProfile, _ mechanisms: Mechanisms, root: Bool) throws {
        for mechanism in profile.requires where !mechanisms.has(mechanism) {
            throw SandboxUnavailable(
                "profile \(profile.name) requires \(mechanism.rawValue), which this machine does not allow: \(mechanisms.missing[mechanism]!). Run `toolhost doctor` to see what is available.")
        }
        if !root && !mechanisms.has(.userNamespace) {
            throw SandboxUnavailable(
                "toolhost runs as an ordinary user here, so it needs user namespaces to confine commands, and this kernel refuses them: \(mechanisms.missing[.userNamespace]!). Enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 or user.max_user_namespaces > 0) or run as root.")
        }
    }

    /// The session's paths with the profile's variables expanded, from which every mount plan of
    /// the session is made.
    struct Paths {
        var writable: [String]
        var readOnly: [String]
        var hidden: [String]
        var readable: [String]
        var tmpSizeMB: Int
        /// The workspace's owner, whom files made by commands belong to.
        var owner: (uid: UInt32, gid: UInt32)
        var gitFolder: String
        var workspace: String
        /// Workspace folders commands also see elsewhere (`--mount`).
        var mounts: [FolderMount] = []

        /// The mounts for commands (`withProc` when each call makes its own), for an idmapped
        /// `owner`, or for the view a host thread enters (`view`: .git writable, host procfs
        /// covered, no `--mount`: host threads use the workspace's own paths).
        func plan(withProc: Bool, owner mapping: UserMapping? = nil, view: Bool = false) -> MountPlan {
            let shown = view ? [] : mounts
            // A protected path inside a mounted folder is protected where the folder shows too.
            let alsoReadOnly = shown.flatMap { mount in
                let source = mount.relative.isEmpty ? workspace : workspace + "/" + mount.relative
                return readOnly.filter { FolderMount.isUnder($0, source) }.map { mount.target + $0.dropFirst(source.count) }
            }
            return MountPlan(
                writable: writable, readOnly: (view ? readOnly.filter { $0 != gitFolder } : readOnly) + alsoReadOnly, hidden: hidden,
                readable: readable, tmpSizeMB: tmpSizeMB, withProc: withProc, owner: mapping.map { ($0.uid, $0.gid) }, coverHostProc: view,
                mounts: shown, workspace: workspace)
        }
    }

    /// Expands the profile's paths, refuses a writable path that is "/" or missing, and makes
    /// the readable folders and the protected paths that do not exist yet.
    static func preparePaths(_ profile: SandboxProfile, workspace: String, stateDirectory: String, home: String, readable: [String]) throws -> Paths {
        let variables = ["${WORKSPACE}": workspace, "${HOME}": home, "${STATE}": stateDirectory]
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
        for path in readOnly where writable.contains(where: { FolderMount.isUnder(path, $0) && path != $0 }) {
            var info = stat()
            if lstat(path, &info) != 0 && errno == ENOENT && mkdir(path, 0o755) == 0 { chown(path, owner.st_uid, owner.st_gid) }
        }
        return Paths(
            writable: writable, readOnly: readOnly, hidden: profile.filesystem.hidden.map(expand), readable: readable,
            tmpSizeMB: min(profile.limits.memoryMB, 2048), owner: (owner.st_uid, owner.st_gid), gitFolder: workspace + "/.git",
            workspace: workspace)
    }

    /// How commands reach the network: the namespace flag a spawn needs, the session's shared
    /// namespace (`other`'s when given), and whether each spawn brings its own loopback up.
    static func network(_ profile: SandboxProfile, root: Bool, joining other: SharedNetwork?) throws
        -> (flags: Int32, shared: SharedNetwork?, loopbackUp: Bool)
    {
        switch profile.network {
        case .host: return (0, nil, false)
        case .none: return (Namespaces.network, nil, false)
        case .allowlist:
            // The proxy listens inside the namespace, which only root can keep and join.
            guard root else {
                throw SandboxUnavailable(
                    "profile \(profile.name) asks for network \"allowlist\", whose proxy lives in the session's own network namespace, which needs toolhost to run as root here. Use network \"loopback\" (no network) or \"host\".")
            }
            return (0, try SharedNetwork(), false)
        case .loopback:
            if root, let other { return (0, other, false) }
            if root, let made = try? SharedNetwork() { return (0, made, false) }
            // Without root the namespace cannot be joined later: each command gets its own.
            return (Namespaces.network, nil, true)
        }
    }

    /// The egress proxy of `network: "allowlist"`, listening in `network`, with the host's secrets
    /// it puts in, and the folder of its CA's trust bundle when it has one.
    static func startEgress(_ profile: SandboxProfile, in network: SharedNetwork?, host: [String: String], stateDirectory: String) throws
        -> (proxy: EgressProxy, trustFolder: String?)?
    {
        guard let policy = profile.egress, profile.network == .allowlist, let network else { return nil }
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
        let folder = try proxy.authorityPEM.map { pem in
            let folder = stateDirectory + "/egress-trust/" + UUID().uuidString
            try writeTrustBundle(pem, in: folder)
            return folder
        }
        return (proxy, folder)
    }

    /// Who commands run as and the mounts they see.
    struct Identity {
        var mapping: UserMapping?
        /// The session's prepared mount namespace, or -1 when each call makes its mounts.
        var mountNamespace: Int32
        var callPlan: MountPlan
        var makeViewPlan: (() -> MountPlan)?
        /// More namespaces each spawn makes, and its uid and gid maps, for an ordinary user.
        var flags: Int32
        var userMaps: (uid: String, gid: String)?
    }

    /// As root: an unprivileged uid of the session's own, the workspace idmapped to its owner, and
    /// the mounts made once. As an ordinary user: a user namespace per call, mounts made per call.
    static func mapUserAndMount(_ paths: Paths, root: Bool, notes: inout [String]) throws -> Identity {
        guard root else {
            // A mount namespace owned by another user namespace cannot be joined: build it per call.
            notes.append(
                "WARNING: git_status, git_diff, git_commit and git_branch read and write the working tree as your own user, outside the sandbox's view (a view of its own needs toolhost to run as root): a symlink a command swaps in mid-call can lead them to any file you can read or write")
            return Identity(
                mapping: nil, mountNamespace: -1, callPlan: paths.plan(withProc: true), makeViewPlan: nil,
                flags: Namespaces.user | Namespaces.mount, userMaps: ("0 \(getuid()) 1", "0 \(getgid()) 1"))
        }
        // Commands must not be host root: they get an unprivileged uid of their own, and the
        // workspace is idmapped so what they write still belongs to its owner.
        var mapping: UserMapping?
        do {
            mapping = try UserMapping(workspaceOwner: paths.owner)
        } catch {
            notes.append("WARNING: commands run as host root (uid 0), not as an unprivileged user: \(error)")
        }
        // The session's mounts are made once; each call copies them and adds its own /proc.
        let namespace: Int32
        do {
            namespace = try prepareMountNamespace(ConfinementHandle(
                flags: Namespaces.mount, idmapUser: mapping?.idmapNamespace ?? -1, plan: paths.plan(withProc: false, owner: mapping)))
        } catch where mapping != nil {
            notes.append("WARNING: commands run as host root (uid 0), not as an unprivileged user: the workspace's filesystem cannot be idmapped (\(error))")
            mapping = nil
            namespace = try prepareMountNamespace(ConfinementHandle(flags: Namespaces.mount, plan: paths.plan(withProc: false)))
        }
        return Identity(
            mapping: mapping, mountNamespace: namespace, callPlan: .procOnly,
            makeViewPlan: { [mapping] in paths.plan(withProc: false, owner: mapping, view: true) }, flags: 0, userMaps: nil)
    }

    /// The pids and memory cgroups that can be made here, with a note for each that cannot.
    static func makeCgroups(_ profile: SandboxProfile, root: Bool, notes: inout [String]) -> [(ProcessCgroup.Controller, ProcessCgroup)] {
        let wanted: [(ProcessCgroup.Controller, UInt64)] = [(.pids, UInt64(profile.limits.processes)), (.memory, UInt64(profile.limits.memoryMB) << 20)]
        let made = wanted.compactMap { controller, limit in ProcessCgroup(controller, limit: limit).map { (controller, $0) } }
        if !made.contains(where: { $0.0 == .pids }) {
            notes.append(root
                ? "no pids cgroup is writable, so the process limit rests on RLIMIT_NPROC, which does not bind uid 0: a fork bomb is stopped only by the timeout"
                : "no pids cgroup is writable, so the process limit rests on RLIMIT_NPROC (which counts all of this user's processes)")
        }
        if !made.contains(where: { $0.0 == .memory }) {
            notes.append(profile.limits.addressSpaceMB == nil
                ? "no memory cgroup is writable, and profile \(profile.name) sets no address-space limit: its memory is not bounded"
                : "no memory cgroup is writable: memory is bounded per process (RLIMIT_AS), not for the session as a whole")
        }
        return made
    }

    /// The rlimits every command starts under.
    static func rlimits(_ limits: SandboxProfile.Limits) -> [(Int32, UInt64)] {
        var rlimits: [(Int32, UInt64)] = [
            (Int32(RLIMIT_CPU.rawValue), UInt64(limits.cpuSeconds)),
            (6 /* RLIMIT_NPROC, hidden from Swift */, UInt64(limits.processes)),
            (Int32(RLIMIT_FSIZE.rawValue), UInt64(limits.fileSizeMB) << 20),
            (Int32(RLIMIT_NOFILE.rawValue), UInt64(limits.openFiles)),
            (Int32(RLIMIT_CORE.rawValue), 0),
        ]
        if let addressSpace = limits.addressSpaceMB { rlimits.append((Int32(RLIMIT_AS.rawValue), UInt64(addressSpace) << 20)) }
        return rlimits
    }

    static let trustBundleName = "ca-bundle.pem"

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
    static func prepareMountNamespace(_ template: ConfinementHandle) throws -> Int32 {
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
}
