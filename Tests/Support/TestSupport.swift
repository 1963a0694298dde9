public import Foundation
import Subprocess
import SystemPackage

/// A temporary folder holding a workspace (`ws`) and a state dir (`state`), removed when released.
public final class Scratch: @unchecked Sendable {
    public let root: String
    public var workspacePath: String { root + "/ws" }
    public var statePath: String { root + "/state" }

    public init() throws {
        root = FileManager.default.temporaryDirectory.path + "/toolhost-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: workspacePath, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    @discardableResult
    public func write(_ relative: String, _ content: String) throws -> String {
        try write(relative, Data(content.utf8))
    }

    @discardableResult
    public func write(_ relative: String, _ data: Data) throws -> String {
        let path = workspacePath + "/" + relative
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    public func read(_ relative: String) throws -> String {
        try String(contentsOfFile: workspacePath + "/" + relative, encoding: .utf8)
    }

    public func symlink(_ relative: String, to target: String) throws {
        try FileManager.default.createSymbolicLink(atPath: workspacePath + "/" + relative, withDestinationPath: target)
    }

    /// Writes `count` lines of 99 bytes plus a newline, a megabyte at a time.
    public func writeLargeFile(_ relative: String, megabytes: Int, character: Character = "y") throws {
        let path = workspacePath + "/" + relative
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let handle = FileHandle(forWritingAtPath: path)
        else { throw CocoaError(.fileWriteUnknown) }
        let block = Data(String(repeating: String(repeating: character, count: 99) + "\n", count: 10_000).utf8)
        for _ in 0..<megabytes { handle.write(block) }
        try handle.close()
    }
}

/// True when the process no longer runs (gone, or a zombie that nobody reaps), waiting up to 2 s.
public func isGone(_ pid: Int32) async -> Bool {
    await eventually(within: .seconds(2)) { isZombie(pid) }
}

/// Host pids of live (not zombie) processes whose command line has `marker` as one argument.
/// Sandboxed commands live in pid namespaces of their own, so their pids mean nothing here.
public func livePids(withArgument marker: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
            data.split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == marker })
        else { return false }
        return !isZombie(pid)
    }
}

/// Waits up to 10 s for a process with `marker` among its arguments to appear; true when it did.
public func appears(withArgument marker: String) async -> Bool {
    await eventually(within: .seconds(10)) { !livePids(withArgument: marker).isEmpty }
}

/// Waits up to 10 s for every process with `marker` among its arguments to be gone. (The markers
/// are 300 s sleeps, so a survivor is still caught; two loaded cores can take seconds to reap.)
public func allGone(withArgument marker: String) async -> Bool {
    await eventually(within: .seconds(10)) { livePids(withArgument: marker).isEmpty }
}

/// Polls `condition` every 10 ms until it holds or `limit` passes; true when it held. It sleeps
/// with `Task.sleep`, so a waiting test leaves the cooperative threads to the others.
public func eventually(within limit: Duration, _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + limit
    while true {
        if try condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: .milliseconds(10))
    }
}

private func isZombie(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return true }
    return stat[stat.index(close, offsetBy: 2)] == "Z"
}

/// A sleep duration no other process on the machine uses, to find the sleeper by its arguments.
public func uniqueSleep() -> String {
    "300.\(UInt32.random(in: 100_000...999_999))"
}

/// Runs the git command line (for setting up and checking, never by the tools themselves).
@discardableResult
public func git(_ arguments: String..., in directory: String) async throws -> String {
    let ran = try await runProgram(
        "/usr/bin/git", arguments, in: directory, environment: ["PATH": "/usr/bin:/bin", "HOME": directory, "GIT_CONFIG_NOSYSTEM": "1"])
    guard ran.status == 0 else { throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "git \(arguments): \(ran.stderr)"]) }
    return ran.stdout
}

/// How a program that ran to its end ended, and what it printed.
public struct Ran: Sendable {
    /// The exit status, or 128 + the signal that killed it.
    public let status: Int32
    public let stdout: String
    public let stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Runs a program to its end, feeding it `stdin`. It awaits the child (swift-subprocess) instead
/// of blocking in a wait: the machine has two cooperative threads, and a test parked in
/// `waitUntilExit` on one of them starves every async test of the run.
public func runProgram(
    _ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil, stdin: String = ""
) async throws -> Ran {
    let result = try await Subprocess.run(
        .path(FilePath(executable)), arguments: Arguments(arguments),
        environment: environment.map { .custom(Dictionary(uniqueKeysWithValues: $0.compactMap { key, value in Environment.Key(rawValue: key).map { ($0, value) } })) } ?? .inherit,
        workingDirectory: directory.map { FilePath($0) }, input: .string(stdin),
        output: .string(limit: 64 << 20), error: .string(limit: 64 << 20))
    let status: Int32 = switch result.terminationStatus {
    case .exited(let code): code
    case .signaled(let signal): 128 + signal
    }
    return Ran(status: status, stdout: result.standardOutput, stderr: result.standardError)
}

/// Runs a program to its end: its exit status and stdout.
public func capture(_ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil) async throws -> (status: Int32, stdout: String) {
    let ran = try await runProgram(executable, arguments, in: directory, environment: environment)
    return (ran.status, ran.stdout)
}

extension FileHandle {
    /// One line, read byte by byte so nothing after it is consumed; nil at the end with nothing
    /// read. The blocking reads run on a thread of their own: a child slow to print its first
    /// line (a Ray cluster takes a minute) holds no cooperative thread meanwhile.
    public func readLine() async -> String? {
        await withCheckedContinuation { continuation in
            Thread {
                var bytes: [UInt8] = []
                while true {
                    guard let byte = self.readData(ofLength: 1).first else {
                        return continuation.resume(returning: bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self))
                    }
                    if byte == 0x0A { return continuation.resume(returning: String(decoding: bytes, as: UTF8.self)) }
                    bytes.append(byte)
                }
            }.start()
        }
    }
}

extension Process {
    /// Waits for the process to end, polling with `Task.sleep` instead of blocking a cooperative
    /// thread in `waitUntilExit`.
    public func exited() async {
        while isRunning { try? await Task.sleep(for: .milliseconds(10)) }
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on now, as the kernel hands one out (a random
/// one can be taken: Ray's nodes and other suites' servers hold many).
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
