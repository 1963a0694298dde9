import CSandbox
import Foundation
import Synchronization

/// A cgroup for one session's commands: `pids` is the reliable fork-bomb limit (RLIMIT_NPROC does
/// not bind uid 0) and `memory` bounds what the session's processes hold together. Children join
/// through a descriptor opened here; `remove()` (the runner's close, or `removeAll()` on a signal)
/// kills what is left and takes the cgroup away.
public final class ProcessCgroup: @unchecked Sendable {
    public enum Controller: String, Sendable {
        case pids, memory

        /// The limit file: cgroup v1 name, cgroup v2 name.
        var limitFiles: (v1: String, v2: String) {
            switch self {
            case .pids: ("pids.max", "pids.max")
            case .memory: ("memory.limit_in_bytes", "memory.max")
            }
        }
    }

    let directory: String
    let procsFD: Int32

    /// How many cgroups this process made (for their names), and the ones not yet removed.
    private static let registry = Mutex<(counter: Int, live: [String: ProcessCgroup])>((0, [:]))

    /// Where toolhost can make a child cgroup with `controller`: under its own cgroup in the v1
    /// hierarchy of that controller, or in the v2 tree when the controller is delegated there.
    public static func parent(for controller: Controller) -> (path: String, v2: Bool)? {
        let lines = ((try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? "").split(separator: "\n")
        var candidates: [(String, Bool)] = []
        for line in lines {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let own = parts[2] == "/" ? "" : String(parts[2])
            if parts[1].split(separator: ",").contains(Substring(controller.rawValue)) {
                candidates.append(("/sys/fs/cgroup/\(controller.rawValue)\(own)", false))
            } else if parts[0] == "0" && parts[1].isEmpty {
                candidates.append(("/sys/fs/cgroup\(own)", true))
            }
        }
        return candidates.first { path, v2 in
            guard access(path, W_OK) == 0, FileManager.default.fileExists(atPath: path + "/cgroup.procs") else { return false }
            if !v2 { return true }
            let delegated = (try? String(contentsOfFile: path + "/cgroup.subtree_control", encoding: .utf8)) ?? ""
            return delegated.split(separator: " ").contains { $0.trimmingCharacters(in: .whitespacesAndNewlines) == controller.rawValue }
        }
    }

    /// Makes the cgroup with its limit; nil when the machine offers no writable place for it.
    init?(_ controller: Controller, limit: UInt64) {
        guard let parent = Self.parent(for: controller) else { return nil }
        if Self.swept.withLock({ $0.insert(parent.path).inserted }) { Self.sweepStale(in: parent.path) }
        let n = Self.registry.withLock { $0.counter += 1; return $0.counter }
        directory = "\(parent.path)/toolhost-\(getpid())-\(controller.rawValue)-\(n)"
        guard mkdir(directory, 0o755) == 0 || errno == EEXIST else { return nil }
        let file = parent.v2 ? controller.limitFiles.v2 : controller.limitFiles.v1
        guard (try? "\(limit)\n".write(toFile: directory + "/" + file, atomically: false, encoding: .utf8)) != nil else {
            rmdir(directory)
            return nil
        }
        procsFD = open(directory + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
        guard procsFD >= 0 else {
            rmdir(directory)
            return nil
        }
        Self.registry.withLock { $0.live[directory] = self }
    }

    /// The parents swept by this process: once each, at its first cgroup there (a sweep lists
    /// every cgroup of every toolhost, which at a thousand live sessions took an eighth of a
    /// session's start).
    private static let swept = Mutex<Set<String>>([])

    /// Recovers what toolhost processes that no longer run left behind (killed with SIGKILL, an
    /// OOM kill, a crash): their sessions' commands, background ones included, are killed and the
    /// cgroups removed. The owner's pid is part of the name; a live owner's cgroups are left alone.
    static func sweepStale(in parent: String) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] where name.hasPrefix("toolhost-") {
            guard let pid = Int32(name.split(separator: "-")[1]), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            let directory = parent + "/" + name
            // cgroup v2 kills the whole cgroup at once, forks in flight included; v1 goes pid by pid.
            if (try? "1\n".write(toFile: directory + "/cgroup.kill", atomically: false, encoding: .utf8)) == nil {
                for _ in 0..<5 {
                    let pids = ((try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8)) ?? "").split(separator: "\n").compactMap { Int32($0) }
                    if pids.isEmpty { break }
                    pids.forEach { kill($0, SIGKILL) }
                }
            }
            for _ in 0..<50 where rmdir(directory) != 0 && errno == EBUSY { usleep(10_000) }
        }
    }

    /// Kills whatever is left in the cgroup and removes it; safe to call more than once.
    func remove() {
        let removed = Self.registry.withLock { $0.live.removeValue(forKey: directory) != nil }
        guard removed else { return }
        close(procsFD)
        for _ in 0..<50 {
            if rmdir(directory) == 0 || errno != EBUSY { return }
            let pids = (try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8)) ?? ""
            for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
            usleep(10_000)
        }
    }

    /// Asks the kernel to favor cgroup moves for as long as this process lives (`--fast-cgroup-joins`):
    /// a cgroup v1 hierarchy named `toolhost`, of no controller and mounted nowhere, made with
    /// the favordynmods option. Without it, a command's write of itself into its session's cgroups
    /// waits for an RCU grace period whenever no other move happened just before: 5-15 ms on an
    /// idle 2-core machine, after every pause an agent takes. The price is the kernel's: forks and
    /// exits machine-wide take one more (uncontended) lock. Made once; returns the note to say at
    /// start the first time, nil after.
    public static func favorMoves() -> String? {
        favorMovesNote.withLock { note in
            defer { note = nil }
            return note
        }
    }

    /// For `toolhost doctor`: whether the kernel can favor cgroup moves, and whether a mounted
    /// hierarchy or another toolhost already has it do so.
    public static var movesSummary: String {
        let features = (try? String(contentsOfFile: "/sys/kernel/cgroup/features", encoding: .utf8)) ?? ""
        guard features.split(separator: "\n").contains("favordynmods") else {
            return "each waits for an RCU grace period after an idle moment (this kernel has no favordynmods)"
        }
        let mounted = ((try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "").split(separator: "\n")
            .contains { $0.contains(" - cgroup") && $0.split(separator: " ").last?.split(separator: ",").contains("favordynmods") == true }
        let held = ((try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? "").contains(":name=toolhost:")
        return mounted || held
            ? "at once: a cgroup hierarchy has favordynmods on"
            : "each may wait for an RCU grace period after an idle moment (no hierarchy has favordynmods on now; Linux 6.18 and later keep it once set since boot); serve and run take --fast-cgroup-joins (root, machine-wide)"
    }

    /// Made on first use. The hierarchy's context stays open until exit: closing it would take the hierarchy away.
    private static let favorMovesNote = Mutex<String?>({
        guard geteuid() == 0 else {
            return "--fast-cgroup-joins needs root (it makes a cgroup hierarchy): each command's join of its cgroups still waits for an RCU grace period"
        }
        let held = csandbox_favor_cgroup_moves("toolhost")
        guard held >= 0 else {
            return "--fast-cgroup-joins: the kernel refused a favordynmods cgroup hierarchy (\(String(cString: strerror(-held)))): each command's join of its cgroups still waits for an RCU grace period"
        }
        return "--fast-cgroup-joins: the kernel favors cgroup moves (favordynmods, on a hierarchy named toolhost that is mounted nowhere) while toolhost runs; Linux 6.18 and later keep that until reboot"
    }())

    /// Removes every cgroup this process made (on the way out, after a signal).
    public static func removeAll() {
        for cgroup in registry.withLock({ Array($0.live.values) }) { cgroup.remove() }
    }
}
