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

extension Scratch {
    var workspace: String { workspacePath }

    var state: String { statePath }

    func toolhost(_ arguments: [String], stdin: String = "") async throws -> Ran {
        try await runProgram(toolhostBinary, arguments, stdin: stdin)
    }

    func call(_ tool: String, _ json: String, session: String = "default") async throws -> Ran {
        try await toolhost(["call", tool, json, "--workspace", workspace, "--state-dir", state, "--session", session])
    }
}
