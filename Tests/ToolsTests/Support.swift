import Foundation
import Sandbox
import Testing
@testable import Tools

/// A temporary workspace and state dir, removed when the test ends.
final class Scratch {
    let root: String
    let workspacePath: String
    let statePath: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.path + "/toolhost-test-\(UUID().uuidString.prefix(8))"
        root = base
        workspacePath = base + "/ws"
        statePath = base + "/state"
        try FileManager.default.createDirectory(atPath: workspacePath, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    var workspace: Workspace { get throws { try Workspace(workspacePath) } }

    func session(_ name: String = "default", host: [String: String] = ProcessInfo.processInfo.environment) throws -> Session {
        try Session(name: name, workspace: workspace, state: StateDirectory(statePath), runner: UnconfinedRunner(), hostEnvironment: host)
    }

    @discardableResult
    func write(_ relative: String, _ content: String) throws -> String {
        try write(relative, Data(content.utf8))
    }

    @discardableResult
    func write(_ relative: String, _ data: Data) throws -> String {
        let path = workspacePath + "/" + relative
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    func read(_ relative: String) throws -> String {
        try String(contentsOfFile: workspacePath + "/" + relative, encoding: .utf8)
    }

    func symlink(_ relative: String, to target: String) throws {
        try FileManager.default.createSymbolicLink(atPath: workspacePath + "/" + relative, withDestinationPath: target)
    }
}

let registry = try! ToolRegistry()

/// Calls a tool through the registry, as every front door does.
func call(_ name: String, _ arguments: JSONValue, in session: Session) async -> ToolResult {
    await registry.call(name, arguments: arguments, session: session)
}
