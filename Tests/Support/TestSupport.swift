public import Foundation

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
public func isGone(_ pid: Int32) -> Bool {
    for _ in 0..<100 {
        if isZombie(pid) { return true }
        usleep(20_000)
    }
    return false
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
public func appears(withArgument marker: String) -> Bool {
    for _ in 0..<1000 {
        if !livePids(withArgument: marker).isEmpty { return true }
        usleep(10_000)
    }
    return false
}

/// Waits up to 10 s for every process with `marker` among its arguments to be gone. (The markers
/// are 300 s sleeps, so a survivor is still caught; two loaded cores can take seconds to reap.)
public func allGone(withArgument marker: String) -> Bool {
    let deadline = ContinuousClock.now + .seconds(10)
    repeat {
        if livePids(withArgument: marker).isEmpty { return true }
        usleep(20_000)
    } while ContinuousClock.now < deadline
    return false
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
public func git(_ arguments: String..., in directory: String) throws -> String {
    let (status, output) = try capture(
        "/usr/bin/git", arguments, in: directory, environment: ["PATH": "/usr/bin:/bin", "HOME": directory, "GIT_CONFIG_NOSYSTEM": "1"])
    guard status == 0 else { throw CocoaError(.fileReadUnknown) }
    return output
}

/// Runs a program to its end: its exit status and stdout (stderr is dropped).
public func capture(_ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil) throws -> (status: Int32, stdout: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    if let environment { process.environment = environment }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
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
