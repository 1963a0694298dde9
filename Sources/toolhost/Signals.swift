import Dispatch
import Foundation
import Sandbox

/// On SIGINT, SIGTERM or SIGHUP: kill every process group toolhost started, then exit 128+signal.
/// Without this, commands (which lead sessions of their own) would outlive an interrupted toolhost.
enum Signals {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
    private static let lock = NSLock()
    nonisolated(unsafe) private static var received: Int32?

    /// The signal that is ending toolhost, if one is: the main path must not exit 0 after it.
    static var pending: Int32? { lock.withLock { received } }

    static func killChildrenOnExit() {
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                lock.withLock { received = number }
                LiveProcesses.killAll()
                ProcessCgroup.removeAll()
                exit(128 + number)
            }
            source.resume()
            sources.append(source)
        }
    }
}
