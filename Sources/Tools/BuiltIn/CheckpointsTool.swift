import Foundation

/// `checkpoints`: the workspace states `undo` can go back to, one before each call that could
/// change the workspace, with what that call changed and how the build stood.
struct CheckpointsTool: Tool {
    let name = "checkpoints"
    static let shown = 30

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        let store = await session.checkpoints
        let passing = await session.passingCheckpoint
        let changing = store.checkpoints.filter { $0.changes.map { !$0.isEmpty } ?? false }
        guard !changing.isEmpty else {
            return .text("No call of this session has changed the workspace yet: nothing to undo.", structured: ["checkpoints": [], "last_passing_build": .null])
        }
        var text = "Before each call that changed the workspace (undo {\"to\": N} puts back what calls N and later changed):\n"
        if changing.count > Self.shown { text += "… \(changing.count - Self.shown) earlier ones not shown\n" }
        var entries: [JSONValue] = []
        for checkpoint in changing {
            let changes = checkpoint.changes!
            let build = checkpoint.buildPassed.map { $0 ? "build passing" : "build failing" } ?? "no build yet"
            entries.append([
                "call": .int(checkpoint.call), "tool": .string(checkpoint.tool), "added": .array(changes.added.map(JSONValue.string)),
                "changed": .array(changes.changed.map(JSONValue.string)), "removed": .array(changes.removed.map(JSONValue.string)),
                "build_passed": checkpoint.buildPassed.map(JSONValue.bool) ?? .null,
            ])
            guard entries.count > changing.count - Self.shown else { continue }
            var parts: [String] = []
            for (label, paths) in [("added", changes.added), ("changed", changes.changed), ("removed", changes.removed)] where !paths.isEmpty {
                parts.append("\(label) \(paths.prefix(5).joined(separator: ", "))\(paths.count > 5 ? " and \(paths.count - 5) more" : "")")
            }
            text += "- call \(checkpoint.call) \(checkpoint.tool) (\(build) before it): \(parts.joined(separator: "; "))\n"
        }
        if let passing {
            text += "The last passing build's workspace is the one before call \(passing): undo {\"to\": \(passing)} goes back to it.\n"
        }
        return .text(text, structured: ["checkpoints": .array(entries), "last_passing_build": passing.map(JSONValue.int) ?? .null])
    }
}
