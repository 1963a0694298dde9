/// `git_push`: pushes a branch, never a protected one and never forced; credentials stay in the host.
struct GitPushTool: Tool {
    let name = "git_push"

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        let snapshot = await session.gitSnapshot
        return try await session.withHostRepository { repository in
            let head = try repository.head()
            guard let branch = arguments.optionalString("branch") ?? head.branch else {
                throw ToolError("HEAD is detached and no branch was given: create one with git_branch, commit, then push it")
            }
            let remote = arguments.optionalString("remote") ?? "origin"
            guard let url = repository.remoteURL(remote) else {
                throw ToolError(
                    "there is no remote named \(remote). Remotes: \(snapshot.remotes.isEmpty ? "none" : snapshot.remotes.keys.sorted().joined(separator: ", ")). A remote is set up outside the sandbox, before the session starts.",
                    kind: .usage)
            }
            // The push goes only where the repository pointed when the session started.
            guard let pinned = snapshot.remotes[remote] else {
                throw ToolError("refusing to push: remote \(remote) (\(url)) was added after the session started; toolhost pushes only to remotes that were there before any command ran")
            }
            guard pinned == url else {
                throw ToolError("refusing to push: remote \(remote) now points at \(url), but pointed at \(pinned) when the session started; nothing was sent")
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
            let remoteDefault = try repository.remoteDefaultBranch(remote, credentials: session.gitCredentials, pinned: pinned)
            if let refusal = policy.refusal(toPush: branch, remoteDefault: remoteDefault) {
                throw ToolError("refusing to push: \(refusal). Create a branch for your work with git_branch (e.g. run-1) and push that.")
            }
            if let rejection = try repository.push(branch: branch, remote: remote, credentials: session.gitCredentials, pinned: pinned) {
                throw ToolError(
                    "the remote refused \(branch): \(rejection). toolhost never force-pushes: push your work to a new branch name instead (git_branch, then git_push).")
            }
            return .text(
                "Pushed \(branch) to \(remote) (\(url)) as refs/heads/\(branch) at \(commit.prefix(7)). No pull request was opened.",
                structured: ["branch": .string(branch), "remote": .string(remote), "ref": .string("refs/heads/\(branch)"), "commit": .string(commit)])
        }
    }
}
