import Foundation

/// What a session's commands may add to the disk the workspace is on: the net growth of that
/// filesystem while they run, watched as they run and stopped the moment it passes the budget.
/// (/tmp is a tmpfs bounded by its own size and the memory cgroup.) It measures the filesystem,
/// so another program writing to the same disk during a command counts against it too: the budget
/// is a guard for the host, not an exact quota.
public final class DiskBudget: @unchecked Sendable {
    /// The budget, in bytes.
    public let limit: Int64
    private let path: String
    private let lock = NSLock()
    private var spent: Int64 = 0

    init(path: String, megabytes: Int) {
        self.path = path
        limit = Int64(megabytes) << 20
    }

    /// What is left of the budget.
    var remaining: Int64 { lock.withLock { limit - spent } }

    /// The filesystem's used bytes now, or nil when it cannot be read.
    func used() -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_blocks - info.f_bfree) * Int64(info.f_frsize)
    }

    /// Counts what a command added (or, when negative, freed).
    func charge(_ bytes: Int64) {
        lock.withLock { spent = max(0, spent + bytes) }
    }

    /// The line a stopped command's output ends with; `Denials` recognises it.
    static func stopLine(grew bytes: Int64, limitMB: Int64) -> String {
        "\ntoolhost: stopped: the command grew the disk by \(bytes >> 20) MB, past what is left of the session's disk budget (limits.disk_mb = \(limitMB))\n"
    }
}
