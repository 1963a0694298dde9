import Foundation
import Synchronization

/// Every process group toolhost started and has not reaped yet. Children lead sessions of their
/// own, so a Ctrl-C at the terminal never reaches them: whoever stops toolhost calls `killAll()`.
public enum LiveProcesses {
    private static let groups = Mutex<Set<pid_t>>([])

    /// Records a process group to kill when toolhost is stopped.
    public static func add(_ pid: pid_t) {
        groups.withLock { _ = $0.insert(pid) }
    }

    public static func remove(_ pid: pid_t) {
        groups.withLock { _ = $0.remove(pid) }
    }

    /// Kills every live group (foreground commands and background servers alike).
    public static func killAll() {
        for pid in groups.withLock({ $0 }) { Supervisor.kill(group: pid) }
    }
}
