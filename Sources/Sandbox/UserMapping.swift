import CSandbox
import Foundation

/// Who a root toolhost's commands are on the host: an unprivileged uid and gid of their own, never
/// root. Two user namespaces carry it: one whose root is that uid (commands join it once their
/// mounts are made), and one that maps the workspace's owner to it, through which the workspace
/// is idmapped, so files a command creates are still owned by the workspace's owner on disk.
public final class UserMapping: @unchecked Sendable {
    /// The host uid and gid commands run as.
    let uid: UInt32
    let gid: UInt32
    /// The namespace whose root is `uid`, for commands to join.
    let processNamespace: Int32
    /// The namespace mapping the workspace owner to `uid`, for the workspace's idmapped mount.
    let idmapNamespace: Int32

    /// The first of the host ids handed out: far above any real account's.
    static let base: UInt32 = 0x6000_0000
    /// Runners one process hands uids to before it comes round again (and then skips every uid
    /// still in use).
    static let serials: UInt32 = 1 << 15
    static let counter = LockedBox<UInt32>(0)
    /// The uids of this process's runners that are still open: theirs while they live, whether or
    /// not a process runs as them now.
    private static let held = LockedBox<Set<UInt32>>([])

    /// A fresh uid for this runner, so one session's processes never count against another's
    /// RLIMIT_NPROC nor can signal them: never one that a live process has (an earlier session's
    /// process, or another toolhost's whose pid shares the low 16 bits), nor one an open runner
    /// of this process holds. No file outlives a session under its uid: every writable mount is
    /// idmapped to the workspace's owner, and /tmp is the session's own tmpfs.
    init(workspaceOwner owner: (uid: UInt32, gid: UInt32)) throws {
        let busy = Self.uidsInUse()
        var chosen: UInt32?
        for _ in 0..<Self.serials {
            // Two sessions opening at once must not get the same uid.
            let serial = Self.counter.update { counter in
                defer { counter = (counter + 1) % Self.serials }
                return counter
            }
            let candidate = Self.uid(pid: getpid(), serial: serial)
            if !busy.contains(candidate), Self.held.update({ $0.insert(candidate).inserted }) {
                chosen = candidate
                break
            }
        }
        guard let chosen else {
            throw SpawnError(executable: "user namespace (every uid of this process is in use)", errno: EAGAIN, step: .userNamespace)
        }
        uid = chosen
        gid = uid
        do {
            processNamespace = try Self.namespace(uidMap: "0 \(chosen) 1", gidMap: "0 \(chosen) 1")
        } catch {
            Self.held.update { _ = $0.remove(chosen) }
            throw error
        }
        if owner == (0, 0) {
            idmapNamespace = dup(processNamespace)
        } else {
            do {
                idmapNamespace = try Self.namespace(uidMap: "\(owner.uid) \(chosen) 1", gidMap: "\(owner.gid) \(chosen) 1")
            } catch {
                Glibc.close(processNamespace)
                Self.held.update { _ = $0.remove(chosen) }
                throw error
            }
        }
    }

    deinit {
        Glibc.close(processNamespace)
        Glibc.close(idmapNamespace)
        Self.held.update { _ = $0.remove(uid) }
    }

    /// The uid of runner `serial` of process `pid`: 16 bits of the pid, 15 of the serial.
    static func uid(pid: pid_t, serial: UInt32) -> UInt32 {
        base + (UInt32(truncatingIfNeeded: pid) & 0xFFFF) << 15 + serial % serials
    }

    /// The host uids of live processes in toolhost's range (each /proc/PID belongs to its process's uid).
    static func uidsInUse() -> Set<UInt32> {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var found = Set<UInt32>()
        for entry in entries where entry.first?.isNumber == true {
            var info = stat()
            if lstat("/proc/" + entry, &info) == 0 && info.st_uid >= base { found.insert(info.st_uid) }
        }
        return found
    }

    /// Who commands run as on this machine, in words, for `toolhost doctor`.
    public static var summary: String {
        guard geteuid() == 0 else {
            return "your own uid \(getuid()) (root inside a user namespace that maps only it): they cannot do more than you"
        }
        do {
            let mapping = try UserMapping(workspaceOwner: (0, 0))
            return "an unprivileged host uid of each session's own (e.g. \(mapping.uid)), root only inside a user namespace; the workspace is idmapped, so what they write stays its owner's (the filesystem must support idmapped mounts, else toolhost warns that commands run as host root)"
        } catch {
            return "HOST ROOT (uid 0): no user namespace could be made (\(error))"
        }
    }

    /// A user namespace with the given maps, held by descriptor: a child makes it and waits on a
    /// pipe while this (host root) process writes its maps.
    private static func namespace(uidMap: String, gidMap: String) throws -> Int32 {
        let pipe = try Spawn.pipe()
        defer { Glibc.close(pipe.write) }
        var confinement = csandbox_confinement(
            clone_flags: Namespaces.user, netns_fd: -1, mntns_fd: -1, userns_fd: -1, idmap_userns_fd: -1, uid_map: nil, gid_map: nil,
            hostname: nil, loopback_up: 0, cgroup_procs_fds: (-1, -1), mounts: nil, mount_count: 0, rlimits: nil, rlimit_count: 0,
            filter: nil, filter_len: 0)
        let pid: pid_t
        do {
            pid = try withUnsafePointer(to: &confinement) {
                try Spawn.start(ProcessSpec(executable: "/bin/cat", environment: [:], workingDirectory: "/"), fds: [(pipe.read, 0)], confinement: $0)
            }
        } catch {
            Glibc.close(pipe.read)
            throw error
        }
        Glibc.close(pipe.read)
        defer {
            kill(pid, SIGKILL)
            reap(pid)
        }
        for (file, text) in [("uid_map", uidMap), ("gid_map", gidMap)] {
            guard (try? text.write(toFile: "/proc/\(pid)/\(file)", atomically: false, encoding: .utf8)) != nil else {
                throw SpawnError(executable: "user namespace (\(file) \(text))", errno: EPERM, step: .userNamespace)
            }
        }
        let fd = open("/proc/\(pid)/ns/user", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SpawnError(executable: "user namespace", errno: errno, step: .userNamespace) }
        return fd
    }
}
