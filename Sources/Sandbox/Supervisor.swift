import CSandbox
import Foundation

/// Watches one child: collects output and status, enforces the timeout, cleans up its group.
enum Supervisor {
    /// How often to look whether the child exited while something it started still holds the pipes.
    static let exitCheckInterval: Int32 = 20
    /// How long to keep draining after the group was killed (an escaped process may hold the pipe).
    static let drainBound: Duration = .milliseconds(500)

    /// Runs `spec` on a thread of its own: supervision blocks in poll(2), never on a cooperative thread.
    /// Cancelling the calling task kills the process group and throws `CancellationError`.
    static func runOnThread(_ spec: ProcessSpec, confinement: ConfinementHandle?, disk: DiskBudget? = nil) async throws -> ProcessOutcome {
        let stop = StopFlag()
        let activity = CallActivity.current
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let thread = Thread {
                    continuation.resume(with: Result { try run(spec, confinement: confinement, disk: disk, stop: stop, activity: activity) })
                }
                thread.stackSize = 1 << 20
                thread.start()
            }
        } onCancel: {
            stop.raise()
        }
    }

    static func run(
        _ spec: ProcessSpec, confinement: ConfinementHandle?, disk: DiskBudget? = nil, stop: StopFlag? = nil, activity: CallActivity? = nil
    ) throws -> ProcessOutcome {
        if stop?.isRaised == true { throw CancellationError() }
        let clock = ContinuousClock()
        let started = clock.now
        let output = try Spawn.pipe()
        var status: (read: Int32, write: Int32)?
        if spec.statusChannelFD != nil { status = try Spawn.pipe() }
        defer {
            close(output.read)
            if let status { close(status.read) }
        }

        var fds = [(output.write, Int32(1)), (output.write, Int32(2))]
        if let status, let target = spec.statusChannelFD { fds.append((status.write, target)) }
        fds += spec.extraDescriptors.sorted { $0.key < $1.key }.map { ($0.value, $0.key) }
        let pid: pid_t
        do {
            pid = try Spawn.start(spec, fds: fds, confinement: confinement?.pointer)
        } catch {
            close(output.write)
            if let status { close(status.write) }
            throw error
        }
        close(output.write)
        if let status { close(status.write) }
        LiveProcesses.add(pid)
        disk?.begin(group: pid)

        var capture = OutputCapture(cap: spec.outputCap, spillPath: spec.spillFile)
        var statusBytes: [UInt8] = []
        var open: [Int32] = [output.read] + (status.map { [$0.read] } ?? [])
        let deadline = spec.timeout.map { started + $0 }
        var timedOut = false
        var cancelled = false
        var groupKilled = false
        var drainDeadline: ContinuousClock.Instant?
        var buffer = [UInt8](repeating: 0, count: 65536)
        var exitPause: useconds_t = 50

        // Until the output closes and the command exits (or it is killed): coreutils close their
        // output at exit, and a `cat` killed in that moment would report SIGKILL.
        while !open.isEmpty || !groupKilled {
            let now = clock.now
            if let drainDeadline, now >= drainDeadline { break }
            if !groupKilled, let deadline, now >= deadline {
                timedOut = true
                kill(group: pid)
                groupKilled = true
                drainDeadline = now + drainBound
            }
            if !groupKilled, stop?.isRaised == true {
                cancelled = true
                kill(group: pid)
                groupKilled = true
                drainDeadline = now + drainBound
            }
            if !groupKilled, hasExited(pid) {
                // The command is done; whatever it left in its group goes too.
                kill(group: pid)
                groupKilled = true
                drainDeadline = now + drainBound
            }
            if open.isEmpty {
                // A command that reported its exit code is done: its namespace's teardown (a
                // millisecond or more) need not delay the answer.
                if spec.exitCodeFromStatus?(statusBytes) != nil { break }
                // Nothing to read, the command still runs: look again soon.
                if !groupKilled {
                    usleep(exitPause)
                    exitPause = min(exitPause * 2, 5_000)
                }
                continue
            }
            var pollfds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&pollfds, nfds_t(pollfds.count), exitCheckInterval)
            if ready < 0 && errno != EINTR { break }
            for entry in pollfds where entry.revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    buffer.withUnsafeBytes { raw in
                        let chunk = UnsafeRawBufferPointer(rebasing: raw[..<n])
                        if entry.fd == output.read {
                            capture.append(chunk)
                            activity?.record(chunk)
                        } else if statusBytes.count < 4 << 20 {
                            statusBytes.append(contentsOf: chunk)
                        }
                    }
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    open.removeAll { $0 == entry.fd }
                }
            }
        }
        if !groupKilled { kill(group: pid) }  // it reported its exit code, or poll(2) failed
        // The budget's sampler kills the group itself; the output says so.
        if let disk, disk.stopped(pid) { Array(disk.stopLine().utf8).withUnsafeBytes { capture.append($0) } }
        disk?.end(group: pid)
        capture.finish()
        let duration = clock.now - started
        if cancelled {
            reapLater(pid)
            throw CancellationError()
        }

        // The command reported its own exit code, and its group is dead: tearing down its
        // namespaces (a millisecond or more) need not delay the answer.
        if !timedOut, let reported = spec.exitCodeFromStatus?(statusBytes) {
            reapLater(pid)
            return ProcessOutcome(
                exitCode: reported, signal: nil, timedOut: false, duration: duration, head: capture.head,
                tail: capture.tail, totalBytes: capture.total, status: statusBytes)
        }
        let waitStatus = reap(pid)
        LiveProcesses.remove(pid)
        var signal: Int32 = 0
        let code = csandbox_exit_code(waitStatus, &signal)
        return ProcessOutcome(
            exitCode: code >= 0 ? code : nil, signal: code >= 0 ? nil : signal, timedOut: timedOut,
            duration: duration, head: capture.head, tail: capture.tail,
            totalBytes: capture.total, status: statusBytes)
    }

    private static func reapLater(_ pid: pid_t) {
        DispatchQueue.global(qos: .utility).async {
            reap(pid)
            LiveProcesses.remove(pid)
        }
    }

    /// Starts a long-lived process with its output appended to `logFile`, through a pipe the host
    /// drains: the log is the host's disk, outside every sandbox limit, so like saved output it
    /// stops at `ProcessOutcome.spillLimit` bytes with a line saying so (later output is read and
    /// dropped, so the process never blocks on it).
    static func startBackground(_ spec: ProcessSpec, logFile: String, confinement: ConfinementHandle?, disk: DiskBudget? = nil) throws -> BackgroundProcess {
        try FileManager.default.createDirectory(
            atPath: (logFile as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let log = open(logFile, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard log >= 0 else { throw SpawnError(executable: logFile, errno: errno) }
        var ends: [Int32] = [-1, -1]
        let made = csandbox_pipe(&ends)
        guard made == 0 else {
            close(log)
            throw SpawnError(executable: logFile, errno: made)
        }
        let fds = [(ends[1], Int32(1)), (ends[1], Int32(2))] + spec.extraDescriptors.sorted { $0.key < $1.key }.map { ($0.value, $0.key) }
        let pid: pid_t
        do {
            pid = try Spawn.start(spec, fds: fds, confinement: confinement?.pointer)
        } catch {
            close(ends[0])
            close(ends[1])
            close(log)
            throw error
        }
        close(ends[1])
        LiveProcesses.add(pid)
        // Metered until its output closes, which is when the last of its group is gone (or
        // has let go of its standard output and error).
        disk?.begin(group: pid)
        let output = ends[0]
        let process = BackgroundProcess(pid: pid, logFile: logFile)
        let thread = Thread {
            drainLog(from: output, to: log, limit: ProcessOutcome.spillLimit)
            // Like a foreground command's output, the log says when the budget stopped it.
            if let disk, disk.stopped(pid) { _ = Array(disk.stopLine().utf8).withUnsafeBytes { write(log, $0.baseAddress, $0.count) } }
            close(log)
            disk?.end(group: pid)
            process.logDone.signal()
        }
        thread.name = "toolhost-background-log"
        thread.start()
        return process
    }

    /// Copies a background process's output into its log until `limit` bytes, then reads and drops
    /// the rest; closes the pipe when the output closes (the log is the caller's to close).
    static func drainLog(from pipe: Int32, to log: Int32, limit: Int) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        var written = 0
        while true {
            let count = read(pipe, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            guard written < limit else { continue }
            let kept = min(count, limit - written)
            _ = buffer.withUnsafeBytes { write(log, $0.baseAddress, kept) }
            written += kept
            if written == limit {
                let note = Array("\n[toolhost: this log stops at \(limit >> 20) MiB; later output is dropped]\n".utf8)
                _ = note.withUnsafeBytes { write(log, $0.baseAddress, $0.count) }
            }
        }
        close(pipe)
    }

    /// True once the child has exited; it stays a zombie (not reaped) so its pid cannot be reused
    /// while the group is being killed.
    static func hasExited(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else { return true }
        return info._sifields._sigchld.si_pid == pid
    }

    static func kill(group pid: pid_t) {
        _ = Glibc.kill(-pid, SIGKILL)
    }
}
