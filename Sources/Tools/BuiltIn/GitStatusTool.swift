import Foundation

/// `git_status`: branch, upstream ahead/behind, staged, unstaged and untracked files.
struct GitStatusTool: Tool {
    let name = "git_status"

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        return try await session.withRepository { repository in
            let (head, status) = try repository.headAndStatus()
            var text = Self.describe(head) + "\n"
            func section(_ title: String, _ lines: [String]) {
                guard !lines.isEmpty else { return }
                text += "\(title):\n" + lines.map { "  \($0)" }.joined(separator: "\n") + "\n"
            }
            section("Staged (goes into the next git_commit without paths)", status.staged.map { "\($0.kind.padding(toLength: 10, withPad: " ", startingAt: 0)) \($0.path)" })
            section("Not staged", status.unstaged.map { "\($0.kind.padding(toLength: 10, withPad: " ", startingAt: 0)) \($0.path)" })
            section("Untracked", status.untracked)
            section("Conflicted", status.conflicted)
            if status.isClean { text += "Nothing to commit: the working tree is clean.\n" }
            return .text(
                text,
                structured: [
                    "branch": head.branch.map { .string($0) } ?? .null, "detached": .bool(head.branch == nil),
                    "unborn": .bool(head.unborn), "commit": head.commit.map { .string($0) } ?? .null,
                    "upstream": head.upstream.map { .string($0) } ?? .null, "ahead": .int(head.ahead), "behind": .int(head.behind),
                    "staged": .array(status.staged.map { .string($0.path) }), "unstaged": .array(status.unstaged.map { .string($0.path) }),
                    "untracked": .array(status.untracked.map { .string($0) }),
                ])
        }
    }

    static func describe(_ head: Repository.Head) -> String {
        if head.unborn { return "On branch \(head.branch ?? "main"), no commits yet." }
        let short = head.commit.map { String($0.prefix(7)) } ?? "?"
        guard let branch = head.branch else {
            return "HEAD is detached at \(short): create a branch with git_branch before committing."
        }
        var line = "On branch \(branch) at \(short)"
        if let upstream = head.upstream {
            line += ", tracking \(upstream) (\(head.ahead) ahead, \(head.behind) behind)"
        } else {
            line += ", no upstream set"
        }
        return line + "."
    }
}
