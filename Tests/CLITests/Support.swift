import Foundation
import TestSupport
import Testing

/// The repository root, found from this file.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// The `toolhost` binary built beside the test bundle.
let toolhostBinary: String = {
    let buildDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let candidates = [buildDir, buildDir.deletingLastPathComponent()].map { $0.appendingPathComponent("toolhost").path }
        + [repositoryRoot + "/.build/debug/toolhost"]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
}()

struct Ran {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs a program to completion with the given stdin.
func runProgram(_ path: String, _ arguments: [String], stdin: String = "", environment: [String: String]? = nil) throws -> Ran {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let input = Pipe(), output = Pipe(), error = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = error
    try process.run()
    input.fileHandleForWriting.write(Data(stdin.utf8))
    try input.fileHandleForWriting.close()
    // Read both pipes concurrently so neither can fill up and stall the child.
    nonisolated(unsafe) var errData = Data()
    let errReader = Thread { errData = error.fileHandleForReading.readDataToEndOfFile() }
    errReader.start()
    let outData = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !errReader.isFinished { usleep(1000) }
    return Ran(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self))
}

/// `runProgram` on a thread of its own. A test that waits minutes for a child (a real model
/// server, a showdown) must not hold one of the two cooperative threads meanwhile: in-process
/// async tests of other suites need them to make progress at all.
func runProgramOffThePool(_ path: String, _ arguments: [String], stdin: String = "") async throws -> Ran {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try runProgram(path, arguments, stdin: stdin) }) }.start()
    }
}

extension Scratch {
    var workspace: String { workspacePath }

    /// `toolhost` for long runs, off the cooperative pool (see `runProgramOffThePool`).
    func toolhostOffThePool(_ arguments: [String]) async throws -> Ran {
        try await runProgramOffThePool(toolhostBinary, arguments)
    }
    var state: String { statePath }

    func toolhost(_ arguments: [String], stdin: String = "") throws -> Ran {
        try runProgram(toolhostBinary, arguments, stdin: stdin)
    }

    func call(_ tool: String, _ json: String, session: String = "default") throws -> Ran {
        try toolhost(["call", tool, json, "--workspace", workspace, "--state-dir", state, "--session", session])
    }
}
