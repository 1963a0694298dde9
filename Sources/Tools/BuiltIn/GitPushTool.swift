/// `git_push`: pushes a branch, never a protected one and never forced; credentials stay in the host.
struct GitPushTool: Tool {
    let name = "git_push"

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        return try await session.withRepository { repository in
            let head = try repository.head()
            guard let branch = arguments.optionalString("branch") ?? head.branch else {
                throw ToolError("HEAD is detached and no branch was given: create one with git_branch, commit, then push it")
            }
            let remote = arguments.optionalString("remote") ?? "origin"
            guard let url = repository.remoteURL(remote) else {
                throw ToolError("there is no remote named \(remote). Add one with execute: git remote add \(remote) URL", kind: .usage)
            }
            let policy = session.gitPolicy
            if let refusal = policy.refusal(toPush: branch, remoteDefault: nil) {
                throw ToolError("refusing to push: \(refusal). Create a branch for your work with git_branch (e.g. run-1) and push that.")
            }
            let commit: String
            do {
                commit = try repository.commitID("refs/heads/\(branch)")
            } catch {
                throw ToolError("there is no local branch \(branch) with commits to push: commit with git_commit first", kind: .usage)
            }
            let remoteDefault = try repository.remoteDefaultBranch(remote, credentials: session.gitCredentials)
            if let refusal = policy.refusal(toPush: branch, remoteDefault: remoteDefault) {
                throw ToolError("refusing to push: \(refusal). Create a branch for your work with git_branch (e.g. run-1) and push that.")
            }
            if let rejection = try repository.push(branch: branch, remote: remote, credentials: session.gitCredentials) {
                throw ToolError(
                    "the remote refused \(branch): \(rejection). toolhost never force-pushes: push your work to a new branch name instead (git_branch, then git_push).")
            }
            return .text(
                "Pushed \(branch) to \(remote) (\(url)) as refs/heads/\(branch) at \(commit.prefix(7)). No pull request was opened.",
                structured: ["branch": .string(branch), "remote": .string(remote), "ref": .string("refs/heads/\(branch)"), "commit": .string(commit)])
        }
    }
}
