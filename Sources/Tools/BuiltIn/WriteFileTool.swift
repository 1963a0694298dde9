import Foundation

/// `write_file`: replaces a whole file atomically, creating parent folders.
struct WriteFileTool: Tool {
    let name = "write_file"
    let changesWorkspace = true

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        let resolved = try session.workspace.resolve(try arguments.string("path"), for: .write)
        guard resolved.kind != .directory else {
            throw ToolError("\(resolved.display) is a folder; give the path of a file inside it, e.g. \(resolved.display)/index.ts", kind: .usage)
        }
        let content = try arguments.string("content")
        let data = Data(content.utf8)
        try session.workspace.writeAtomically(data, to: resolved)
        let lines = content.isEmpty ? 0 : content.split(separator: "\n", omittingEmptySubsequences: false).count - (content.hasSuffix("\n") ? 1 : 0)
        let verb = resolved.kind == .missing ? "Created" : "Replaced"
        return .text(
            "\(verb) \(resolved.display): \(counted(data.count, "byte")), \(counted(lines, "line")).",
            structured: ["path": .string(resolved.display), "bytes": .int(data.count), "lines": .int(lines), "created": .bool(resolved.kind == .missing)])
    }
}
