import Dispatch
import Foundation
import Sandbox

/// On SIGINT, SIGTERM or SIGHUP: kill every process group toolhost started, then exit 128+signal.
/// Without this, commands (which lead sessions of their own) would outlive an interrupted toolhost.
enum Signals {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

    static func killChildrenOnExit() {
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                LiveProcesses.killAll()
                exit(128 + number)
            }
            source.resume()
            sources.append(source)
        }
    }
}
