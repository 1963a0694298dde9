import CSandbox
public import Foundation
import WorkspaceAccess

/// What this kernel lets toolhost use, found by trying each mechanism in a throwaway child.
public struct Mechanisms: Sendable {
    /// Why each missing mechanism is missing.
    public let missing: [SandboxProfile.Mechanism: String]

    public func has(_ mechanism: SandboxProfile.Mechanism) -> Bool { missing[mechanism] == nil }

    /// Set to a comma-separated list of mechanism names to have toolhost treat them as missing:
    /// a way to see (and test) the refusals of a kernel that lacks them. One variable with the
    /// opener's, which sits below this module.
    public static let simulateVariable = Beneath.simulateVariable

    /// This machine's mechanisms, probed once per process (a probe spawns one child, or five when a namespace is missing).
    public static let current = probe()

    public static func probe(environment: [String: String] = ProcessInfo.processInfo.environment) -> Mechanisms {
        let simulated = Set((environment[simulateVariable] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        var missing: [SandboxProfile.Mechanism: String] = [:]
        let root = geteuid() == 0
        let userFlag = root ? 0 : Namespaces.user
        let tries: [(SandboxProfile.Mechanism, Int32)] = [
            (.userNamespace, Namespaces.user), (.mountNamespace, Namespaces.mount | userFlag),
            (.pidNamespace, Namespaces.pid | userFlag), (.networkNamespace, Namespaces.network | userFlag),
        ]
        // One child in all four namespaces at once, as commands get them, answers for all four;
        // only when it fails does each get a child of its own, to say which is missing and why.
        if tryClone(flags: tries.reduce(0) { $0 | $1.1 }) != nil {
            for (mechanism, flags) in tries {
                if let failure = tryClone(flags: flags) { missing[mechanism] = failure }
            }
        }
        let seccompErrno = csandbox_seccomp_available()
        if seccompErrno != 0 {
            missing[.seccomp] = "prctl(PR_GET_SECCOMP) failed: \(String(cString: strerror(seccompErrno))); the kernel has no seccomp"
        }
        if ProcessCgroup.parent(for: .pids) == nil {
            missing[.cgroups] = "no writable pids cgroup (tried cgroup v1's pids hierarchy and the cgroup v2 tree)"
        }
        for name in simulated {
            if let mechanism = SandboxProfile.Mechanism(rawValue: name) {
                missing[mechanism] = "simulated as missing by \(simulateVariable)"
            }
        }
        return Mechanisms(missing: missing)
    }

    /// Runs /bin/true in new namespaces; nil when that worked, else the reason.
    private static func tryClone(flags: Int32) -> String? {
        let uid = getuid(), gid = getgid()
        let uidMap = strdup("0 \(uid) 1")!, gidMap = strdup("0 \(gid) 1")!
        defer { free(uidMap); free(gidMap) }
        var confinement = csandbox_confinement(
            clone_flags: flags, netns_fd: -1, mntns_fd: -1, userns_fd: -1, idmap_userns_fd: -1, uid_map: (flags & Namespaces.user) != 0 ? UnsafePointer(uidMap) : nil,
            gid_map: (flags & Namespaces.user) != 0 ? UnsafePointer(gidMap) : nil, hostname: nil, loopback_up: 0,
            cgroup_procs_fds: (-1, -1), mounts: nil, mount_count: 0, rlimits: nil, rlimit_count: 0, filter: nil, filter_len: 0)
        let spec = ProcessSpec(executable: "/bin/true", environment: [:], workingDirectory: "/")
        do {
            let pid = try withUnsafePointer(to: &confinement) { try Spawn.start(spec, fds: [], confinement: $0) }
            reap(pid)
            return nil
        } catch {
            return "\(error)"
        }
    }
}

/// CLONE_NEW* flags as Swift values.
enum Namespaces {
    static let mount = Int32(CSANDBOX_NEWNS.rawValue)
    static let uts = Int32(CSANDBOX_NEWUTS.rawValue)
    static let ipc = Int32(CSANDBOX_NEWIPC.rawValue)
    static let user = Int32(CSANDBOX_NEWUSER.rawValue)
    static let pid = Int32(CSANDBOX_NEWPID.rawValue)
    static let network = Int32(CSANDBOX_NEWNET.rawValue)
}
