import Foundation
import Sandbox
import TestSupport
import Testing
@testable import Tools

/// The git tools against a real repository with a real bare repository as its remote.
@Suite(.serialized) struct GitTests {
    let scratch: Scratch
    let remote: String

    init() async throws {
        scratch = try Scratch()
        remote = try await scratch.makeRepositoryWithRemote()
        try await git("push", "-q", "origin", "main", in: scratch.workspacePath)
    }

    private func session(_ policy: GitPolicy = GitPolicy()) throws -> Session {
        try Session(
            workspace: scratch.workspace, state: StateDirectory(scratch.statePath),
            runner: UnconfinedRunner(reason: "git tests run no commands"), gitPolicy: policy)
    }

    private func remoteLog(_ branch: String) async throws -> [String] {
        try await git("log", "--format=%s", branch, in: remote).split(separator: "\n").map(String.init)
    }

    @Test func twoChunksThenAPushOfRun1() async throws {
        let session = try session()
        #expect(!(await call("git_branch", ["name": "run-1"], in: session)).isError)
        try scratch.write("src/lib/tags.ts", "export const tags = []\n")
        try scratch.write("src/app/tags/page.tsx", "export default function Page() {}\n")
        let first = await call("git_commit", ["message": "feat(tags): add the tags library", "paths": ["src/lib"]], in: session)
        #expect(first.text.contains("Files in this commit (1):\n  src/lib/tags.ts"), "\(first.text)")
        #expect(first.text.contains("Still uncommitted (1): src/app/tags/page.tsx"))
        let second = await call("git_commit", ["message": "feat(tags): add the tags page"], in: session)
        #expect(second.text.contains("Nothing left uncommitted."))
        let pushed = await call("git_push", [:], in: session)
        #expect(!pushed.isError, "\(pushed.text)")
        #expect(pushed.text.contains("Pushed run-1 to origin"))
        await #expect(try remoteLog("run-1") == ["feat(tags): add the tags page", "feat(tags): add the tags library", "init"])
        await #expect(try remoteLog("main") == ["init"], "main is untouched")
        let author = try await git("log", "-1", "--format=%an <%ae>", "run-1", in: remote)
        #expect(author == "Test Author <author@example.com>\n", "the author comes from git config")
    }

    @Test func pushesToProtectedOrUnallowedBranchesAreRefused() async throws {
        let before = try await git("for-each-ref", in: remote)
        let session = try session(GitPolicy(allowedPushPatterns: ["run-*"]))
        let main = await call("git_push", ["branch": "main"], in: session)
        #expect(main.isError && main.text.contains("main is a protected branch"))

        _ = await call("git_branch", ["name": "feature-x"], in: session)
        try scratch.write("x.txt", "x\n")
        _ = await call("git_commit", ["message": "add x"], in: session)
        let outside = await call("git_push", [:], in: session)
        #expect(outside.isError && outside.text.contains("feature-x matches none of the allowed patterns (run-*)"))

        // The remote's default branch is protected whatever it is called.
        try await git("symbolic-ref", "HEAD", "refs/heads/trunk", in: remote)
        try await git("push", "-q", "origin", "main:trunk", in: scratch.workspacePath)
        let trunkBefore = try await git("for-each-ref", in: remote)
        _ = await call("git_branch", ["name": "trunk"], in: try self.session())
        let trunk = await call("git_push", [:], in: try self.session())
        #expect(trunk.isError && trunk.text.contains("trunk is the remote's default branch"), "\(trunk.text)")
        #expect(try await git("for-each-ref", in: remote) == trunkBefore)
        #expect(before != trunkBefore)
    }

    @Test func aNonFastForwardIsRefusedNeverForced() async throws {
        let session = try session()
        _ = await call("git_branch", ["name": "run-1"], in: session)
        try scratch.write("a.txt", "one\n")
        _ = await call("git_commit", ["message": "one"], in: session)
        _ = await call("git_push", [:], in: session)
        try await git("reset", "-q", "--hard", "HEAD~1", in: scratch.workspacePath)
        try scratch.write("b.txt", "other\n")
        _ = await call("git_commit", ["message": "other"], in: session)
        let refused = await call("git_push", [:], in: session)
        #expect(refused.isError)
        #expect(refused.text.contains("non-fast-forward") || refused.text.contains("the remote refused"), "\(refused.text)")
        #expect(refused.text.contains("never force-pushes"))
        await #expect(try remoteLog("run-1") == ["one", "init"], "the remote is unchanged")
    }

    @Test func gitPushInTheSandboxFailsAndPointsAtTheTool() async throws {
        let session = try scratch.session("sandboxed")
        _ = await call("git_branch", ["name": "run-2"], in: session)
        try scratch.write("y.txt", "y\n")
        _ = await call("git_commit", ["message": "add y"], in: session)
        let typed = await call("execute", ["command": "git push origin run-2"], in: session)
        #expect(typed.structured?["exit_code"] != 0)
        #expect(typed.text.contains("push with the git_push tool"))
        await #expect(throws: (any Error).self) { try await git("rev-parse", "--verify", "-q", "run-2", in: remote) }
        let tool = await call("git_push", [:], in: session)
        #expect(!tool.isError, "\(tool.text)")
        await #expect(try remoteLog("run-2").first == "add y")
    }

    @Test func edgeCasesGiveClearResults() async throws {
        // A folder that is not a repository.
        let plain = try Scratch()
        let notRepo = try Session(workspace: plain.workspace, state: StateDirectory(plain.statePath), runner: UnconfinedRunner(reason: "test"))
        let status = await call("git_status", [:], in: notRepo)
        #expect(status.isError && status.text.contains("is not a git repository"))

        // An empty repository: unborn branch, then its first commit.
        let empty = try Scratch()
        try await git("init", "-q", "-b", "main", in: empty.workspacePath)
        let unborn = try Session(workspace: empty.workspace, state: StateDirectory(empty.statePath), runner: UnconfinedRunner(reason: "test"))
        #expect(await call("git_status", [:], in: unborn).text.hasPrefix("On branch main, no commits yet."))
        let nothingYet = await call("git_commit", ["message": "first"], in: unborn)
        #expect(nothingYet.text.contains("nothing to commit"))
        _ = await call("git_branch", ["name": "run-1"], in: unborn)
        try empty.write("a.txt", "a\n")
        let first = await call("git_commit", ["message": "first"], in: unborn)
        #expect(first.text.contains("on run-1: first"), "\(first.text)")

        // Nothing staged, nothing changed.
        let session = try session()
        let nothing = await call("git_commit", ["message": "nothing"], in: session)
        #expect(nothing.isError && nothing.text.contains("nothing to commit"))
        let unchanged = await call("git_commit", ["message": "x", "paths": ["README.md"]], in: session)
        #expect(unchanged.text.contains("no changes in README.md"))

        // A detached HEAD.
        try await git("checkout", "-q", "--detach", "HEAD", in: scratch.workspacePath)
        #expect(await call("git_status", [:], in: session).text.hasPrefix("HEAD is detached at"))
        try scratch.write("d.txt", "d\n")
        #expect(await call("git_commit", ["message": "d"], in: session).text.contains("HEAD is detached"))

        // Bad messages.
        #expect(await call("git_commit", ["message": "  "], in: session).text.contains("the commit message is empty"))
    }

    @Test func pathsOutsideTheWorkspaceAreRefused() async throws {
        let session = try session()
        for tool in ["git_commit", "git_diff"] {
            var arguments: [String: JSONValue] = ["paths": ["../remote.git/config"]]
            if tool == "git_commit" { arguments["message"] = "escape" }
            let result = await call(tool, .object(arguments), in: session)
            #expect(result.error == .usage && result.text.contains("outside the workspace"), "\(tool): \(result.text)")
        }
        let git = await call("git_commit", ["message": "x", "paths": [".git/config"]], in: session)
        #expect(git.text.contains("inside .git"))
    }

    @Test func diffShowsUnstagedAndStagedChangesCapped() async throws {
        let session = try session()
        try scratch.write("README.md", "# blog\nmore\n")
        let diff = await call("git_diff", [:], in: session)
        #expect(diff.text.contains("+more"))
        #expect(await call("git_diff", ["staged": true], in: session).text.hasPrefix("No staged changes"))
        try await git("add", "README.md", in: scratch.workspacePath)
        #expect(await call("git_diff", ["staged": true], in: session).text.contains("+more"))
        try scratch.write("big.txt", (0..<5000).map { "line \($0)" }.joined(separator: "\n"))
        let big = await call("git_diff", ["paths": ["big.txt"]], in: session)
        #expect(big.text.contains("[diff cut at 30000 bytes"))
    }

    /// git_status answers from a cache while nothing changes; every kind of change, made by the
    /// host or by a sandboxed command, must show at once.
    @Test func cachedStatusSeesEveryChange() async throws {
        let session = try scratch.session("watched")
        func status() async -> String { await call("git_status", [:], in: session).text }
        #expect(await status().contains("Nothing to commit"))
        #expect(await status().contains("Nothing to commit"), "a cached answer")
        try scratch.write("README.md", "# changed by the host\n")
        #expect(await status().contains("modified   README.md"))
        _ = await call("execute", ["command": "mkdir -p deep/er && echo x > deep/er/new.ts"], in: session)
        #expect(await status().contains("deep/er/new.ts"), "a file in a folder created inside the sandbox")
        _ = await call("execute", ["command": "echo y > deep/er/second.ts"], in: session)
        #expect(await status().contains("deep/er/second.ts"), "the new folder is watched too")
        try await git("add", "README.md", in: scratch.workspacePath)
        #expect(await status().contains("Staged (goes into the next git_commit without paths):\n  modified   README.md"))
        try await git("commit", "-qm", "external", in: scratch.workspacePath)
        let afterCommit = await status()
        #expect(!afterCommit.contains("README.md"), "\(afterCommit)")
        try await git("checkout", "-q", "-b", "elsewhere", in: scratch.workspacePath)
        #expect(await status().hasPrefix("On branch elsewhere"))
        try FileManager.default.removeItem(atPath: scratch.workspacePath + "/README.md")
        #expect(await status().contains("deleted    README.md"))
    }

    /// After a change of a few files, git_status looks at those files alone and keeps the rest
    /// of its last answer. Every step below must agree with git's own `git status`: edits,
    /// a restore to the committed bytes, new and removed files, a mode change, a symlink for a
    /// file, an atomic rename over a file, writes from the sandbox, and the changes that need a
    /// whole status (the index, a .gitignore, a new folder, many files at once, .git/info/exclude).
    @Test func statusOfTheChangedFilesAgreesWithGit() async throws {
        for index in 0..<30 { try scratch.write("src/m\(index % 3)/f\(index).ts", "export const v\(index) = \(index);\n") }
        try await git("add", ".", in: scratch.workspacePath)
        try await git("commit", "-qm", "files", in: scratch.workspacePath)
        let session = try scratch.session("incremental")
        let path = { (name: String) in self.scratch.workspacePath + "/" + name }
        let steps: [(String, () async throws -> Void)] = [
            ("an edit", { try self.scratch.write("src/m0/f0.ts", "changed\n") }),
            ("a second edit elsewhere", { try self.scratch.write("src/m1/f1.ts", "changed too\n") }),
            ("back to the committed bytes", { try self.scratch.write("src/m0/f0.ts", "export const v0 = 0;\n") }),
            ("a new file", { try self.scratch.write("src/m2/new.ts", "new\n") }),
            ("the new file removed", { try FileManager.default.removeItem(atPath: path("src/m2/new.ts")) }),
            ("a tracked file removed", { try FileManager.default.removeItem(atPath: path("src/m2/f2.ts")) }),
            ("and put back", { try self.scratch.write("src/m2/f2.ts", "export const v2 = 2;\n") }),
            ("a mode change", { #expect(chmod(path("src/m0/f3.ts"), 0o755) == 0) }),
            ("a symlink for a file", {
                try FileManager.default.removeItem(atPath: path("src/m1/f4.ts"))
                try FileManager.default.createSymbolicLink(atPath: path("src/m1/f4.ts"), withDestinationPath: "f1.ts")
            }),
            ("an atomic rename over a file", {
                try self.scratch.write("src/m2/tmp.txt", "renamed in\n")
                #expect(rename(path("src/m2/tmp.txt"), path("src/m2/f5.ts")) == 0)
            }),
            ("a tool's write", { _ = await call("write_file", ["path": "src/m0/f6.ts", "content": "by the tool\n"], in: session) }),
            ("writes from the sandbox", { _ = await call("execute", ["command": "echo x >> src/m1/f7.ts && rm src/m2/f8.ts && echo n > src/m0/n.ts"], in: session) }),
            ("a name that is not UTF-8", { _ = await call("execute", ["command": "echo x > \"$(printf 'src/m1/\\377\\360\\237\\230a.ts')\""], in: session) }),
            ("git add", { try await git("add", "src/m1/f7.ts", in: self.scratch.workspacePath) }),
            ("an edit of the staged file", { try self.scratch.write("src/m1/f7.ts", "staged, then edited\n") }),
            ("a .gitignore", { try self.scratch.write(".gitignore", "*.log\nsrc/m0/n.ts\n") }),
            ("an ignored file", { try self.scratch.write("src/m1/debug.log", "ignored\n") }),
            ("a new folder", { try self.scratch.write("src/m9/deep/x.ts", "deep\n") }),
            ("a file in the new folder", { try self.scratch.write("src/m9/deep/y.ts", "deeper\n") }),
            ("many files at once", { for index in 0..<250 { try self.scratch.write("src/m\(index % 3)/many\(index).ts", "\(index)\n") } }),
            ("one file after many", { try self.scratch.write("src/m0/many0.ts", "again\n") }),
            ("an untracked file", { try self.scratch.write("src/m2/local.tmp", "mine\n") }),
            ("a pattern in .git/info/exclude", { try self.scratch.write(".git/info/exclude", "*.tmp\n") }),
            ("the pattern taken back", { try self.scratch.write(".git/info/exclude", "# none\n") }),
        ]
        _ = await call("git_status", [:], in: session)
        // git's own status must not write the index: that change would make every next status whole.
        for (step, change) in steps {
            try await change()
            let ours = try #require(await call("git_status", [:], in: session).structured)
            var unstaged: [String] = [], untracked: [String] = [], staged: [String] = []
            // -z: paths as they are, not quoted (a name that is not UTF-8 reads as ours does then).
            for line in try await git("--no-optional-locks", "status", "--porcelain=v1", "-z", "-uall", in: scratch.workspacePath).split(separator: "\0") {
                let (index, tree, file) = (line.first!, line.dropFirst().first!, String(line.dropFirst(3)))
                if index == "?" { untracked.append(file) }
                if tree != " " && tree != "?" { unstaged.append(file) }
                if index != " " && index != "?" { staged.append(file) }
            }
            let sorted = { (paths: [String]) in paths.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) } }
            #expect(ours["unstaged"] == .array(sorted(unstaged).map { .string($0) }), "after \(step): \(ours["unstaged"]!) against git's \(unstaged)")
            #expect(ours["untracked"] == .array(sorted(untracked).map { .string($0) }), "after \(step): \(ours["untracked"]!) against git's \(untracked)")
            #expect(ours["staged"] == .array(sorted(staged).map { .string($0) }), "after \(step)")
        }
    }

    @Test func switchingRefusesToLoseLocalChanges() async throws {
        let session = try session()
        _ = await call("git_branch", ["name": "old"], in: session)
        try scratch.write("README.md", "# changed on old\n")
        _ = await call("git_commit", ["message": "change readme"], in: session)
        try scratch.write("README.md", "# local edit\n")
        let refused = await call("git_branch", ["name": "fresh", "from": "main"], in: session)
        #expect(refused.isError && refused.text.contains("would overwrite local changes in: README.md"), "\(refused.text)")
        #expect(try scratch.read("README.md") == "# local edit\n")
        await #expect(throws: (any Error).self) { try await git("rev-parse", "--verify", "-q", "fresh", in: scratch.workspacePath) }
        let status = await call("git_status", [:], in: session)
        #expect(status.text.hasPrefix("On branch old"))
    }

    /// The start point is `base`; `from`, its old name (a Python keyword), still works, and both at once is refused.
    @Test func theStartPointIsBaseAndFromStillWorks() async throws {
        let session = try session()
        let main = try await git("rev-parse", "HEAD", in: scratch.workspacePath).trimmingCharacters(in: .whitespacesAndNewlines)
        _ = await call("git_branch", ["name": "side"], in: session)
        try scratch.write("side.txt", "x\n")
        _ = await call("git_commit", ["message": "side work"], in: session)
        let viaBase = await call("git_branch", ["name": "from-main", "base": "main"], in: session)
        #expect(!viaBase.isError && viaBase.text.contains("Created from-main at \(main.prefix(7)) (from main)"), "\(viaBase.text)")
        let viaFrom = await call("git_branch", ["name": "old-name", "from": "main"], in: session)
        #expect(!viaFrom.isError && viaFrom.text.contains("Created old-name at \(main.prefix(7))"), "\(viaFrom.text)")
        let both = await call("git_branch", ["name": "both", "base": "main", "from": "side"], in: session)
        #expect(both.isError && both.text.contains("once"), "\(both.text)")
        let names = registry.definitions.first { $0.name == "git_branch" }?.inputSchema["properties"]?.objectValue?.keys.sorted()
        #expect(names == ["base", "name"])
    }
}
