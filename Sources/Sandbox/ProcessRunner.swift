public import Egress
import Foundation

/// A program to run and how to bound it.
public struct ProcessSpec: Sendable {
    /// Absolute path of the program.
    public var executable: String
    /// Arguments after the program name.
    public var arguments: [String]
    /// The complete environment: nothing of the host's passes unless it is listed here.
    public var environment: [String: String]
    /// Absolute directory to start in.
    public var workingDirectory: String
    /// Wall-clock bound; the whole process group is killed when it passes.
    public var timeout: Duration?
    /// Bytes of merged stdout/stderr kept from the start and from the end.
    public var outputCap: OutputCap
    /// Where the full output goes once it is larger than the cap.
    public var spillFile: String?
    /// When set, the child gets a pipe on this descriptor and the parent collects what it writes
    /// (the command's own stdout cannot reach it).
    public var statusChannelFD: Int32?
    /// More descriptors for the child, target -> source in the parent (Chromium's DevTools pipe
    /// wants fds 3 and 4). The parent keeps and closes its own ends.
    public var extraDescriptors: [Int32: Int32] = [:]
    /// Reads the exit code from what the child wrote to the status channel, when it reports one:
    /// the runner can then answer without waiting for the process to be reaped.
    public var exitCodeFromStatus: (@Sendable ([UInt8]) -> Int32?)?

    public init(
        executable: String, arguments: [String] = [], environment: [String: String],
        workingDirectory: String, timeout: Duration? = nil, outputCap: OutputCap = .init(),
        spillFile: String? = nil, statusChannelFD: Int32? = nil, exitCodeFromStatus: (@Sendable ([UInt8]) -> Int32?)? = nil
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.timeout = timeout
        self.outputCap = outputCap
        self.spillFile = spillFile
        self.statusChannelFD = statusChannelFD
        self.exitCodeFromStatus = exitCodeFromStatus
    }
}

/// How much output a result keeps: the first `head` and the last `tail` bytes.
public struct OutputCap: Sendable, Equatable {
    public var head: Int
    public var tail: Int
    public init(head: Int = 6 * 1024, tail: Int = 10 * 1024) {
        self.head = head
        self.tail = tail
    }
}

/// What happened to a finished process.
public struct ProcessOutcome: Sendable {
    /// The most a spill file keeps: it is the host's disk, outside every sandbox limit.
    public static let spillLimit = 64 << 20

    /// The exit code, or nil when a signal ended it.
    public var exitCode: Int32?
    public var signal: Int32?
    public var timedOut: Bool
    public var duration: Duration
    /// The merged output when it fit the cap; otherwise its head and tail.
    public var head: [UInt8]
    public var tail: [UInt8]
    public var totalBytes: Int
    /// True when the output was larger than the cap; the spill file then holds all of it.
    public var truncated: Bool { totalBytes > head.count + tail.count }
    /// What the child wrote to the status channel.
    public var status: [UInt8]
}

/// How strongly a runner confines what it runs; shown to the user, never hidden.
public enum Confinement: Sendable, Equatable {
    case unconfined(reason: String)
    case confined(profile: String)
}

/// Runs programs for the tools. The sandbox plugs in here; tools never spawn processes themselves.
public protocol ProcessRunner: Sendable {
    var confinement: Confinement { get }
    /// Whether what it runs reaches the host's network (other machines), not only loopback.
    var reachesHostNetwork: Bool { get }
    /// The environment commands start from, built from the host's: never its secrets.
    func baseEnvironment(host: [String: String]) -> [String: String]
    /// The wall-clock bound when a call names none.
    var defaultTimeoutSeconds: Int { get }
    /// How much of a command's output a result keeps.
    var outputCap: OutputCap { get }
    /// Runs to completion (or timeout) and kills whatever the program left running in its group.
    func run(_ spec: ProcessSpec) async throws -> ProcessOutcome
    /// Starts a long-lived process whose output goes to `logFile`; it runs until stopped.
    func start(_ spec: ProcessSpec, logFile: String) throws -> BackgroundProcess
    /// A thread that sees the workspace as this runner's commands do (see `ConfinedThread`), for
    /// host code whose library resolves workspace paths itself; nil when the runner has no such
    /// view (unconfined, or toolhost not root), which its notes or confinement say loudly.
    func makeConfinedThread() throws -> ConfinedThread?
    /// The network namespace this runner's commands share, for another runner of the same session
    /// to join; nil when each command gets its own, or the host's.
    var sharedNetwork: SharedNetwork? { get }
    /// What the egress proxy decided since the last call, allowed and refused alike; empty when
    /// the runner has no proxy.
    func takeEgressDecisions() -> [EgressProxy.Decision]
    /// Releases what the runner holds for its session (cgroups); called when the session ends.
    func close()
    /// The confinement rules a failed command most likely ran into, each with the way forward.
    func denials(output: String, exitCode: Int32?, signal: Int32?) -> [String]
}

/// A failure to start a program (not a non-zero exit, which is a normal outcome).
public struct SpawnError: Error, CustomStringConvertible {
    /// Where in the child's setup it failed.
    public enum Step: Int32, Sendable {
        case setup = 1, cgroup, userNamespace, networkNamespace, loopback, hostname, mount, joinUserNamespace, rlimit, fds, chdir,
            capabilities, noNewPrivs, seccomp, exec
    }

    public let executable: String
    public let errno: Int32
    public var step: Step? = nil
    /// For a mount, the index of the step in the mount plan; for an rlimit, its index.
    public var detail: Int = 0
    /// What the failed step was doing, filled in by whoever knows the plan.
    public var context: String? = nil

    public var description: String {
        let reason = String(cString: strerror(errno))
        switch step {
        case nil, .setup?, .exec?: return "could not start \(executable): \(reason)"
        case .chdir?: return "could not enter the working directory: \(reason)"
        case let step?:
            return "the sandbox could not be set up (step \(step)\(context.map { ": \($0)" } ?? "")): \(reason)"
        }
    }
}
