import Foundation

/// "Did you mean" suggestions for the file tools.
enum FileAccess {
    /// Up to `count` existing workspace files whose names are closest to the missing `relative` path.
    static func suggestions(for relative: String, in workspace: Workspace, count: Int = 5) -> [String] {
        let wanted = (relative as NSString).lastPathComponent.lowercased()
        var scored: [(path: String, score: Int)] = []
        workspace.walkFiles(skipping: ["node_modules", ".git", ".build", "dist", ".next"]) { entry in
            let lower = (entry as NSString).lastPathComponent.lowercased()
            var score = editDistance(wanted, lower)
            if lower == wanted { score = 0 }
            else if lower.hasPrefix((wanted as NSString).deletingPathExtension) { score = min(score, 1) }
            if score <= max(2, wanted.count / 3) { scored.append((entry, score)) }
        }
        return scored.sorted { ($0.score, $0.path.count, $0.path) < ($1.score, $1.path.count, $1.path) }
            .prefix(count).map(\.path)
    }

    /// The error for a path that does not exist, with the nearest names that do.
    static func missing(_ resolved: Workspace.Resolved, in workspace: Workspace) -> ToolError {
        let near = suggestions(for: resolved.relative, in: workspace)
        var message = "\(resolved.display) does not exist (paths are relative to the workspace root \(workspace.root), not to the shell's cwd)."
        if !near.isEmpty { message += " Closest existing files: \(near.joined(separator: ", "))." }
        return ToolError(message)
    }
}
