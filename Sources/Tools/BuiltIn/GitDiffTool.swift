/// `git_diff`: a capped unified diff of unstaged (or staged) changes, optionally for some paths.
struct GitDiffTool: Tool {
    let name = "git_diff"
    static let cap = 30_000

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        let paths = try GitPaths.resolve(arguments.values["paths"], in: session.workspace)
        let staged = arguments.bool("staged") ?? false
        return try await session.withRepository { repository in
            let diff = try repository.diff(staged: staged, paths: paths ?? [], cap: Self.cap)
            if diff.files == 0 {
                let other = staged ? "unstaged (git_diff without staged)" : "staged (git_diff with staged: true)"
                return .text("No \(staged ? "staged" : "unstaged") changes\(paths.map { " in \($0.joined(separator: ", "))" } ?? ""). Look for \(other) changes, or git_status.")
            }
            var text = diff.text
            if diff.truncated {
                text += "\n[diff cut at \(Self.cap) bytes: give paths to see one file at a time]"
            }
            return .text(text, structured: ["files": .int(diff.files), "truncated": .bool(diff.truncated), "staged": .bool(staged)])
        }
    }
}

/// Paths given to the git tools: each must resolve inside the workspace (the repository root).
enum GitPaths {
    static func resolve(_ value: JSONValue?, in workspace: Workspace) throws -> [String]? {
        guard let items = value?.arrayValue else { return nil }
        let paths = try items.compactMap(\.stringValue).map { path -> String in
            let resolved = try workspace.resolve(path)
            guard !resolved.relative.isEmpty else {
                throw ToolError("'\(path)' is the whole workspace: leave paths out to mean every change", kind: .usage)
            }
            guard !resolved.relative.split(separator: "/").contains(".git") else {
                throw ToolError("'\(path)' is inside .git, which git does not track", kind: .usage)
            }
            return resolved.relative
        }
        guard !paths.isEmpty else { throw ToolError("paths is empty: leave it out to mean every change", kind: .usage) }
        return paths
    }
}
