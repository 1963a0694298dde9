import Dispatch
import Foundation
import Sandbox
import Synchronization

/// On SIGINT, SIGTERM or SIGHUP: kill every process group toolhost started, then exit 128+signal.
/// Without this, commands (which lead sessions of their own) would outlive an interrupted toolhost.
/// The one-shot commands' lifecycle; `serve --http` has a ServiceGroup instead (`ServerLifecycle`).
enum Signals {
    /// Kept so the sources live; written only while toolhost starts, before any signal is watched.
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
    private struct State {
        var received: Int32?
        var interrupt: (@Sendable (Int32) -> Void)?
    }
    private static let state = Mutex(State())

    /// The signal that is ending toolhost, if one is: the main path must not exit 0 after it.
    static var pending: Int32? { state.withLock { $0.received } }

    static func killChildrenOnExit() {
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                let graceful: (@Sendable (Int32) -> Void)? = state.withLock { state in
                    defer { state.interrupt = nil }
                    if state.interrupt == nil { state.received = number }
                    return state.interrupt
                }
                LiveProcesses.killAll()
                if let graceful { return graceful(number) }
                ProcessCgroup.removeAll()
                exit(128 + number)
            }
            source.resume()
            sources.append(source)
        }
    }

    /// The first signal kills the running commands and calls `handler` (which must wind down
    /// quickly); a second one kills and exits as usual.
    static func onFirstSignal(_ handler: @escaping @Sendable (Int32) -> Void) {
        killChildrenOnExit()
        state.withLock { $0.interrupt = handler }
    }
}
