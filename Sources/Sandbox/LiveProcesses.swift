import Foundation
public import Glibc
public import ServiceLifecycle
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

/// The processes of a long-running server as one service of its `ServiceGroup`, listed first so
/// that it stops last: once the services that start commands have stopped, it kills whatever
/// they left running and takes the cgroups away.
public struct ProcessesService: Service {
    public init() {}

    /// Kills every command still running, now (a shutdown's grace is over); the service goes on.
    public func killRunning() {
        LiveProcesses.killAll()
    }

    public func run() async {
        // Returns on the group's graceful shutdown, or throws when the group is cancelled:
        // either way nothing toolhost started may outlive it.
        try? await gracefulShutdown()
        LiveProcesses.killAll()
        ProcessCgroup.removeAll()
    }
}
