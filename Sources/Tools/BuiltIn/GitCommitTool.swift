import Foundation

/// `git_commit`: commits the given paths (one logical chunk) or every change.
struct GitCommitTool: Tool {
    let name = "git_commit"

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        let message = try arguments.string("message").trimmingCharacters(in: .whitespacesAndNewlines)
        let subject = message.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard !subject.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ToolError(
                "the commit message is empty: say what the change does in one line, e.g. \"feat(tags): add a tags admin page\"",
                kind: .usage)
        }
        let paths = try GitPaths.resolve(arguments.values["paths"], in: session.workspace)
        // The repository is made here, on the host: the sandbox cannot create .git itself.
        let created = await session.hasNoRepository
        if created { try await session.createRepository() }
        let identity = try await session.commitIdentity()
        return try await session.withRepository { repository in
            let head = try repository.head()
            guard head.branch != nil else {
                throw ToolError("HEAD is detached: create a branch with git_branch first, so the commit is not lost")
            }
            let before = try repository.status()
            if let paths {
                let changed = before.allPaths
                let unchanged = paths.filter { path in !changed.contains { $0 == path || $0.hasPrefix(path + "/") } }
                guard unchanged.isEmpty else {
                    throw ToolError(
                        "no changes in \(unchanged.joined(separator: ", ")). Changed files: \(changed.isEmpty ? "none" : changed.joined(separator: ", ")).",
                        kind: .usage)
                }
            }
            try repository.stage(paths)
            guard let commit = try repository.commit(message: message, as: identity) else {
                throw ToolError("nothing to commit: no file differs from the last commit. Create or change the files first, then commit.")
            }
            let left = try repository.status().allPaths
            var text = created ? "Created the repository (branch main).\n" : ""
            text += "Committed \(commit.sha.prefix(7)) on \(head.branch!): \(subject)\n"
            text += "Files in this commit (\(commit.paths.count)):\n" + commit.paths.map { "  \($0)" }.joined(separator: "\n") + "\n"
            text += left.isEmpty
                ? "Nothing left uncommitted.\n"
                : "Still uncommitted (\(left.count)): \(left.prefix(20).joined(separator: ", "))\(left.count > 20 ? ", …" : "")\n"
            if subject.count > 72 {
                text += "hint: the subject has \(subject.count) characters; keep it under 72 and put details in the body after a blank line.\n"
            }
            return .text(
                text,
                structured: [
                    "commit": .string(commit.sha), "branch": .string(head.branch!), "files": .array(commit.paths.map { .string($0) }),
                    "uncommitted": .array(left.map { .string($0) }),
                ])
        }
    }
}
