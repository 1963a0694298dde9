import Foundation

/// A long-lived process (a dev server) owned by a session. Its whole group is killed by `stop()`.
public final class BackgroundProcess: Sendable {
    public let pid: Int32
    public let logFile: String

    init(pid: Int32, logFile: String) {
        self.pid = pid
        self.logFile = logFile
    }

    /// True while the process has not exited.
    public var isRunning: Bool { !Supervisor.hasExited(pid) }

    /// Kills the process group and reaps the leader.
    public func stop() {
        Supervisor.kill(group: pid)
        reap(pid)
        LiveProcesses.remove(pid)
    }
}
