import Foundation

/// `undo`: puts back what this session's calls changed, from a checkpoint on, shell commands'
/// changes included; files it did not change (another session's, ignored folders) stay.
struct UndoTool: Tool {
    let name = "undo"
    let changesWorkspace = true

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        let undone = try await session.undo(to: arguments.int("to"))
        var text = "Put the workspace back as it was before call \(undone.call) (\(undone.tool))"
        if undone.restored.isEmpty && undone.removed.isEmpty {
            text += ": it already was; nothing changed.\n"
        } else {
            text += ".\n"
            if !undone.restored.isEmpty { text += "Restored: \(Self.list(undone.restored)).\n" }
            if !undone.removed.isEmpty { text += "Removed (they did not exist then): \(Self.list(undone.removed)).\n" }
        }
        if !undone.notKept.isEmpty {
            text += "Not put back (too large to keep, or the store was full): \(Self.list(undone.notKept)).\n"
        }
        text += "Ignored files (node_modules, dist) and the shell's directory are as they were. undo again (without \"to\") takes this back.\n"
        return .text(text, structured: [
            "to": .int(undone.call), "restored": .array(undone.restored.map(JSONValue.string)),
            "removed": .array(undone.removed.map(JSONValue.string)), "not_kept": .array(undone.notKept.map(JSONValue.string)),
        ])
    }

    static func list(_ paths: [String]) -> String {
        paths.prefix(20).joined(separator: ", ") + (paths.count > 20 ? " and \(paths.count - 20) more" : "")
    }
}
