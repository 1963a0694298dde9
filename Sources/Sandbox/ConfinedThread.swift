import CSandbox
import Foundation

/// A host thread that sees the files as the session's commands do: it lives in a mount namespace
/// made from the session's plan (hidden paths covered, the rest of the host read-only, no procfs,
/// whose magic links would lead back to the host), as the session's unprivileged uid with no
/// capability. Host code that must hand paths to a library which resolves them itself (libgit2
/// walking and writing the working tree) runs its work here, so a symlink a command swaps in
/// mid-call resolves inside the sandbox's view, never to a host file.
///
/// Work runs one piece at a time, in order, on that one thread.
public final class ConfinedThread: @unchecked Sendable {
    /// Closures waiting for a thread, in order.
    private final class Queue: @unchecked Sendable {
        let condition = NSCondition()
        var jobs: [@Sendable () -> Void] = []
        var finished = false

        func push(_ job: @escaping @Sendable () -> Void) -> Bool {
            condition.withLock {
                guard !finished else { return false }
                jobs.append(job)
                condition.signal()
                return true
            }
        }

        func finish() {
            condition.withLock {
                finished = true
                condition.signal()
            }
        }

        /// Runs jobs until the queue is finished and empty.
        func serve() {
            while true {
                let job: (@Sendable () -> Void)? = condition.withLock {
                    while jobs.isEmpty && !finished { condition.wait() }
                    return jobs.isEmpty ? nil : jobs.removeFirst()
                }
                guard let job else { return }
                job()
            }
        }
    }

    /// The work, run on the confined thread.
    private let work = Queue()
    /// The answers, delivered by an ordinary host thread: resuming a task may make the runtime
    /// start a worker thread, and a thread started by the confined one would inherit its view and
    /// uid (its seccomp filter refuses that, so the confined thread never touches the runtime).
    private let answers = Queue()

    /// Starts the thread and waits until it has entered the view; throws when it could not.
    /// The namespace descriptor may be closed afterwards: the thread holds the namespace.
    init(mountNamespace: Int32, uid: UInt32, gid: UInt32) throws {
        let entered = LockedBox<Int32?>(nil)
        let ready = DispatchSemaphore(value: 0)
        let work = self.work, answers = self.answers
        let confined = Thread {
            let result = csandbox_enter_view(mountNamespace, uid, gid)
            entered.value = result
            ready.signal()
            guard result == 0 else { return }
            work.serve()
            answers.finish()
        }
        confined.name = "toolhost-confined-view"
        confined.stackSize = 4 << 20
        confined.start()
        ready.wait()
        if let result = entered.value, result != 0 {
            throw SpawnError(executable: "the confined view's thread", errno: -result, step: .mount)
        }
        let courier = Thread { answers.serve() }
        courier.name = "toolhost-confined-view-answers"
        courier.start()
    }

    deinit { stop() }

    /// Whether the calling thread is a confined one: its working directory is its own, and /proc
    /// is covered in its view.
    public static var isCurrent: Bool { csandbox_thread_in_view() != 0 }

    /// Ends the thread once the work already queued is done.
    public func stop() { work.finish() }

    /// Runs `body` on the thread and returns what it returned or threw.
    public func perform<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let answers = self.answers
            let accepted = work.push {
                let result = Result { try body() }
                // `answers` is finished only after the last job ran, so it always takes this one.
                _ = answers.push { continuation.resume(with: result) }
            }
            if !accepted { continuation.resume(throwing: CancellationError()) }
        }
    }
}
