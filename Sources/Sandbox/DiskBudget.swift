import CSandbox
import Foundation
import Synchronization

/// What a session's commands may add to the disk the workspace is on, foreground and background
/// alike: the filesystem's net growth while any of them runs, sampled by one host thread every
/// `interval` (so commands running side by side are counted once), each file and folder counted
/// at least `bytesPerInode`. Past the budget, every command of the session that is still running
/// is killed while the disk grows; commands that free space still run. Each command also starts
/// with RLIMIT_FSIZE at what is left (see `ConfinedRunner`), so no single file, written or
/// fallocated, outruns the sampler. It measures the filesystem, so another program writing to the
/// same disk while a command runs counts against it too: a guard for the host, not an exact quota.
/// (/tmp is a tmpfs, bounded by its own size and the memory cgroup.)
public final class DiskBudget: Sendable {
    /// The budget, in bytes.
    public let limit: Int64
    /// What a file or folder costs at least: a burst of empty files fills inodes, not blocks.
    static let bytesPerInode: Int64 = 4096
    /// Seconds between two samples (a statvfs costs about a microsecond), and between two within
    /// `nearBytes` of the limit, where a writer at memory speed gains a few MB per millisecond.
    static let interval: TimeInterval = 0.005
    static let nearInterval: TimeInterval = 0.0005
    static let nearBytes: Int64 = 64 << 20
    private let path: String
    private struct Meter {
        var spent: Int64 = 0
        /// The process groups being metered (each by its leader's pid).
        var groups: Set<pid_t> = []
        var lastSample: Int64?
        var sampling = false
        /// Groups killed for the budget, until their `end`.
        var killed: Set<pid_t> = []

        /// Counts the growth since the last sample, `now`; true when the disk grew.
        mutating func count(_ now: Int64?) -> Bool {
            guard let now else { return false }
            let grew = now - (lastSample ?? now)
            lastSample = now
            spent = max(0, spent + grew)
            return grew > 0
        }
    }
    private let meter = Mutex(Meter())

    init(path: String, megabytes: Int) {
        self.path = path
        limit = Int64(megabytes) << 20
    }

    /// What is left of the budget (never below zero), counting space freed since the last command
    /// ended: a filesystem may free a removed file's blocks only after the unlink returns (under
    /// load, after the command that removed it was counted), and that space is the session's again.
    var remaining: Int64 {
        meter.withLock { meter in
            if meter.groups.isEmpty, let last = meter.lastSample, let now = used(), now < last {
                meter.spent = max(0, meter.spent - (last - now))
                meter.lastSample = now
            }
            return max(0, limit - meter.spent)
        }
    }

    /// True when `group` was killed for the budget (until its `end`).
    func stopped(_ group: pid_t) -> Bool { meter.withLock { $0.killed.contains(group) } }

    /// The filesystem's used bytes now, each used inode counted `bytesPerInode`, or nil when it
    /// cannot be read.
    func used() -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_blocks - info.f_bfree) * Int64(info.f_frsize) + Int64(info.f_files - info.f_ffree) * Self.bytesPerInode
    }

    /// Meters the process group `group` (its leader's pid) until `end(group:)`.
    func begin(group: pid_t) {
        let startThread: Bool = meter.withLock { meter in
            if meter.groups.isEmpty {
                // Space freed since the last command ended is the session's again (see `remaining`).
                let now = used()
                if let now, let last = meter.lastSample, now < last { meter.spent = max(0, meter.spent - (last - now)) }
                meter.lastSample = now
            }
            meter.groups.insert(group)
            guard !meter.sampling else { return false }
            meter.sampling = true
            return true
        }
        guard startThread else { return }
        let thread = Thread { [self] in sampleWhileMetered() }
        thread.name = "toolhost-disk-budget"
        thread.start()
    }

    /// Stops metering `group`, counting what it added up to now.
    func end(group: pid_t) {
        meter.withLock { meter in
            _ = meter.count(used())
            meter.groups.remove(group)
            meter.killed.remove(group)
        }
    }

    private func sampleWhileMetered() {
        // The writers it watches may take every core: the sampler must still get its turn, or a
        // burst runs on past the limit. (Only root may raise a priority; otherwise it stays.)
        _ = csandbox_thread_nice(-15)
        while true {
            let sample: (over: [pid_t], near: Bool)? = meter.withLock { meter in
                guard !meter.groups.isEmpty else {
                    meter.sampling = false
                    return nil
                }
                let grew = meter.count(used())
                return (grew && meter.spent > limit ? Array(meter.groups) : [], limit - meter.spent < Self.nearBytes)
            }
            guard let sample else { return }
            if !sample.over.isEmpty {
                meter.withLock { $0.killed.formUnion(sample.over) }
                for group in sample.over { Supervisor.kill(group: group) }
            }
            Thread.sleep(forTimeInterval: sample.near ? Self.nearInterval : Self.interval)
        }
    }

    /// The line a stopped command's output ends with; `Denials` recognises it.
    func stopLine() -> String {
        let spentMB = meter.withLock { $0.spent } >> 20
        return "\ntoolhost: stopped: the session's commands grew the disk by \(spentMB) MB, past its budget (limits.disk_mb = \(limit >> 20))\n"
    }

    static let stopPrefix = "toolhost: stopped: the session's commands grew the disk"
}
