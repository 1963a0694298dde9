import Foundation
import Subprocess
import SystemPackage
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

/// `runProgram` on swift-subprocess, for a test that waits minutes for a child (a real model
/// server, a showdown): it awaits the child without holding one of the two cooperative threads,
/// which the in-process async tests of other suites need to make progress at all.
func runProgramAsync(_ path: String, _ arguments: [String], stdin: String = "") async throws -> Ran {
    let result = try await Subprocess.run(
        .path(FilePath(path)), arguments: Arguments(arguments), input: .string(stdin),
        output: .string(limit: 64 << 20), error: .string(limit: 64 << 20))
    let status: Int32 = switch result.terminationStatus {
    case .exited(let code): code
    case .signaled(let signal): 128 + signal
    }
    return Ran(status: status, stdout: result.standardOutput, stderr: result.standardError)
}

extension Scratch {
    var workspace: String { workspacePath }

    /// `toolhost` for long runs, awaited (see `runProgramAsync`).
    func toolhostAsync(_ arguments: [String]) async throws -> Ran {
        try await runProgramAsync(toolhostBinary, arguments)
    }
    var state: String { statePath }

    func toolhost(_ arguments: [String], stdin: String = "") throws -> Ran {
        try runProgram(toolhostBinary, arguments, stdin: stdin)
    }

    func call(_ tool: String, _ json: String, session: String = "default") throws -> Ran {
        try toolhost(["call", tool, json, "--workspace", workspace, "--state-dir", state, "--session", session])
    }
}
