import Foundation

/// A long-lived process (a dev server) owned by a session. Its whole group is killed by `stop()`.
public final class BackgroundProcess: Sendable {
    public let pid: Int32
    public let logFile: String
    /// Signalled once the log is complete (the output closed and any stop line written).
    let logDone = DispatchSemaphore(value: 0)

    init(pid: Int32, logFile: String) {
        self.pid = pid
        self.logFile = logFile
    }

    /// Waits up to `seconds` for the log to be complete; true when it is. For a process that has
    /// exited: what it left running may still hold its output for a moment.
    public func waitForLog(seconds: Double) -> Bool {
        logDone.wait(timeout: .now() + seconds) == .success
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
