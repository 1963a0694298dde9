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
        let content = UTF8Bytes(text: try arguments.string("content"))
        let size = content.withUnsafeBytes(\.count)
        // Weak models rewrite a file they wrote a few calls ago with the same text and go round;
        // saying so (and leaving the file alone) gives them a reason to take the next step.
        if resolved.kind == .file, let existing = try? session.workspace.readWhole(resolved, limit: size),
           content.withUnsafeBytes({ existing.elementsEqual($0) }) {
            return .text(
                "Unchanged: \(resolved.display) already holds exactly this content (\(counted(size, "byte"))), so nothing was written. Go on with the next step.",
                structured: ["path": .string(resolved.display), "bytes": .int(size), "created": false, "unchanged": true])
        }
        try session.workspace.writeAtomically(content, to: resolved)
        // Newline bytes, not Characters: a split made a substring per line, and "\r\n" is one
        // Character that is not "\n", so CRLF files counted as one line.
        let lines = content.withUnsafeBytes { bytes in
            bytes.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) } + (bytes.last.map { $0 == 0x0A ? 0 : 1 } ?? 0)
        }
        let verb = resolved.kind == .missing ? "Created" : "Replaced"
        return .text(
            "\(verb) \(resolved.display): \(counted(size, "byte")), \(counted(lines, "line")).",
            structured: ["path": .string(resolved.display), "bytes": .int(size), "lines": .int(lines), "created": .bool(resolved.kind == .missing), "unchanged": false])
    }
}
