import Foundation

/// A pids cgroup for one session's commands: the reliable fork-bomb limit (RLIMIT_NPROC does not
/// bind uid 0). Children join it themselves through a descriptor opened here; `remove()` (the
/// runner's close, or `removeAll()` on a signal) takes it away.
public final class ProcessCgroup: @unchecked Sendable {
    let directory: String
    let procsFD: Int32

    /// The pids hierarchy toolhost can create cgroups in, if any.
    static let root: String? = {
        let candidates = ["/sys/fs/cgroup/pids"]
            + ((try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8))?
                .split(separator: "\n").first { $0.hasPrefix("0::") }
                .map { ["/sys/fs/cgroup" + $0.dropFirst(3)] } ?? [])
        return candidates.first { folder in
            FileManager.default.fileExists(atPath: folder + "/cgroup.procs") && access(folder, W_OK) == 0
                && (folder.hasSuffix("/pids") || FileManager.default.fileExists(atPath: folder + "/pids.max")
                    || ((try? String(contentsOfFile: folder + "/cgroup.subtree_control", encoding: .utf8))?.contains("pids") ?? false))
        }
    }()

    nonisolated(unsafe) private static var counter = 0
    nonisolated(unsafe) private static var live: [String: ProcessCgroup] = [:]
    private static let lock = NSLock()

    init?(maxProcesses: Int) {
        guard let root = Self.root else { return nil }
        let n = Self.lock.withLock { Self.counter += 1; return Self.counter }
        directory = "\(root)/toolhost-\(getpid())-\(n)"
        guard mkdir(directory, 0o755) == 0 || errno == EEXIST else { return nil }
        guard (try? "\(maxProcesses)\n".write(toFile: directory + "/pids.max", atomically: false, encoding: .utf8)) != nil else {
            rmdir(directory)
            return nil
        }
        procsFD = open(directory + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
        guard procsFD >= 0 else {
            rmdir(directory)
            return nil
        }
        Self.lock.withLock { Self.live[directory] = self }
    }

    /// The number of processes in the cgroup now.
    var current: Int {
        Int((try? String(contentsOfFile: directory + "/pids.current", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
    }

    /// Kills whatever is left in the cgroup and removes it; safe to call more than once.
    func remove() {
        let removed = Self.lock.withLock { Self.live.removeValue(forKey: directory) != nil }
        guard removed else { return }
        close(procsFD)
        for _ in 0..<50 {
            if rmdir(directory) == 0 || errno != EBUSY { return }
            let pids = (try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8)) ?? ""
            for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
            usleep(10_000)
        }
    }

    /// Removes every cgroup this process made (on the way out, after a signal).
    public static func removeAll() {
        for cgroup in lock.withLock({ Array(live.values) }) { cgroup.remove() }
    }
}
