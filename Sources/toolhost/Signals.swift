import Dispatch
import Foundation
import Sandbox

/// On SIGINT, SIGTERM or SIGHUP: kill every process group toolhost started, then exit 128+signal.
/// Without this, commands (which lead sessions of their own) would outlive an interrupted toolhost.
enum Signals {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
    private static let lock = NSLock()
    nonisolated(unsafe) private static var received: Int32?
    nonisolated(unsafe) private static var interrupt: (@Sendable (Int32) -> Void)?

    /// The signal that is ending toolhost, if one is: the main path must not exit 0 after it.
    static var pending: Int32? { lock.withLock { received } }

    static func killChildrenOnExit() {
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                let graceful: (@Sendable (Int32) -> Void)? = lock.withLock {
                    defer { interrupt = nil }
                    if interrupt == nil { received = number }
                    return interrupt
                }
                if let graceful { return graceful(number) }
                LiveProcesses.killAll()
                ProcessCgroup.removeAll()
                exit(128 + number)
            }
            source.resume()
            sources.append(source)
        }
    }

    /// The first signal calls `handler` (which must wind down quickly); a second one kills and exits as usual.
    static func onFirstSignal(_ handler: @escaping @Sendable (Int32) -> Void) {
        killChildrenOnExit()
        lock.withLock { interrupt = handler }
    }
}
