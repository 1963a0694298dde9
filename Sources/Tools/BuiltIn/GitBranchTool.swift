/// `git_branch`: creates a branch and switches to it, refusing to lose local changes.
struct GitBranchTool: Tool {
    let name = "git_branch"
    let changesWorkspace = true

    /// The start point was `from` until it was renamed `base` (a Python keyword cannot be a
    /// parameter in code-writing agents, and camel-ai drops the tool): the old name still works.
    func normalize(_ arguments: [String: JSONValue]) throws -> [String: JSONValue] {
        guard let old = arguments["from"] else { return arguments }
        guard arguments["base"] == nil else {
            throw ToolError("give the start point once, as base (from is its old name)", kind: .usage)
        }
        var renamed = arguments
        renamed["from"] = nil
        renamed["base"] = old
        return renamed
    }

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        let name = try arguments.string("name")
        let from = arguments.optionalString("base")
        return try await session.withRepository { repository in
            let commit = try repository.createAndSwitch(to: name, from: from)
            let uncommitted = try repository.status().allPaths
            var text = commit.map { "Created \(name) at \($0.prefix(7))\(from.map { " (from \($0))" } ?? "") and switched to it." }
                ?? "Switched to the new branch \(name); it gets its first commit with git_commit."
            if !uncommitted.isEmpty {
                text += " Your uncommitted changes came along: \(uncommitted.prefix(10).joined(separator: ", "))\(uncommitted.count > 10 ? ", …" : "")."
            }
            return .text(text, structured: ["branch": .string(name), "commit": commit.map { .string($0) } ?? .null])
        }
    }
}
