import CSandbox
public import Egress
import Foundation

/// Runs programs with no confinement beyond a process group, a clean environment and a timeout:
/// only for `--unconfined` (which toolhost says loudly) and for tests of the tools themselves.
public struct UnconfinedRunner: ProcessRunner {
    public let confinement: Confinement
    public var reachesHostNetwork: Bool { true }

    public let defaultTimeoutSeconds = 120
    public let outputCap = OutputCap()

    public init(reason: String) {
        confinement = .unconfined(reason: reason)
    }

    public func baseEnvironment(host: [String: String]) -> [String: String] {
        CleanEnvironment.base(from: host)
    }

    public func run(_ spec: ProcessSpec) async throws -> ProcessOutcome {
        try await Supervisor.runOnThread(spec, confinement: nil)
    }

    public func start(_ spec: ProcessSpec, logFile: String) throws -> BackgroundProcess {
        try Supervisor.startBackground(spec, logFile: logFile, confinement: nil)
    }

    /// Commands use the host's network.
    public var sharedNetwork: SharedNetwork? { nil }

    /// No proxy stands between commands and the network.
    public func takeEgressDecisions() -> [EgressProxy.Decision] { [] }

    /// Nothing is confined here, git's working-tree calls included.
    public func makeConfinedThread() throws -> ConfinedThread? { nil }

    public func close() {}

    public func denials(output: String, exitCode: Int32?, signal: Int32?) -> [String] { [] }
}
