import Foundation
import Sandbox
import TestSupport
import Testing
@testable import Tools

/// The git tools treat `.git` as hostile input: each attack here is what a command could do to a
/// repository it could write (an unconfined run, an older toolhost), checked from the host side.
@Suite(.serialized) struct GitTrustTests {
    let scratch: Scratch
    let remote: String

    init() async throws {
        scratch = try Scratch()
        remote = try await scratch.makeRepositoryWithRemote()
        try await git("checkout", "-qb", "run-1", in: scratch.workspacePath)
    }

    private func session() throws -> Session {
        try Session(
            workspace: scratch.workspace, state: StateDirectory(scratch.statePath),
            runner: UnconfinedRunner(reason: "git trust tests run no commands"), gitCredentials: GitCredentials(token: "tok-SECRET-123456"))
    }

    @Test func coreWorktreePointingAtAHostFolderIsRefused() async throws {
        let host = scratch.root + "/host-secrets"
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        try "top secret\n".write(toFile: host + "/README.md", atomically: true, encoding: .utf8)
        let session = try session()
        try await git("config", "core.worktree", host, in: scratch.workspacePath)
        for (tool, arguments) in [("git_diff", [:]), ("git_status", [:]), ("git_branch", ["name": "x"])] as [(String, JSONValue)] {
            let result = await call(tool, arguments, in: session)
            #expect(result.isError && result.text.contains("core.worktree"), "\(tool): \(result.text)")
            #expect(!result.text.contains("top secret"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: host) == ["README.md"])
    }

    @Test func aGitlinkToAnotherRepositoryIsRefused() async throws {
        let other = scratch.root + "/other"
        try await git("init", "-q", "-b", "main", other, in: scratch.root)
        let session = try session()
        try FileManager.default.moveItem(atPath: scratch.workspacePath + "/.git", toPath: scratch.root + "/moved.git")
        try "gitdir: \(other)/.git\n".write(toFile: scratch.workspacePath + "/.git", atomically: true, encoding: .utf8)
        try scratch.write("b.txt", "b\n")
        let result = await call("git_commit", ["message": "planted"], in: session)
        #expect(result.isError && result.text.contains("refusing"), "\(result.text)")
        await #expect((try? git("log", "--oneline", in: other)) == nil, "no commit landed in the other repository")
    }

    @Test func aReplacedGitFolderIsRefused() async throws {
        let session = try session()
        let path = scratch.workspacePath
        try FileManager.default.moveItem(atPath: path + "/.git", toPath: scratch.root + "/old.git")
        try await git("init", "-q", "-b", "run-1", in: path)
        let result = await call("git_status", [:], in: session)
        #expect(result.isError && result.text.contains("replaced"), "\(result.text)")
    }

    @Test func aChangedRemoteGetsNoPushAndNoToken() async throws {
        // A listener standing in for the attacker's server: it must never be asked anything.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, size) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &size) } }
        listen(listener, 4)
        defer { close(listener) }
        let port = UInt16(bigEndian: address.sin_port)

        let session = try session()
        try scratch.write("c.txt", "c\n")
        #expect(!(await call("git_commit", ["message": "work"], in: session)).isError)
        try await git("remote", "set-url", "origin", "http://127.0.0.1:\(port)/x.git", in: scratch.workspacePath)
        let result = await call("git_push", [:], in: session)
        #expect(result.isError && result.text.contains("http://127.0.0.1:\(port)/x.git") && result.text.contains(remote), "\(result.text)")
        _ = fcntl(listener, F_SETFL, O_NONBLOCK)
        #expect(accept(listener, nil, nil) < 0, "nothing connected to the planted URL")

        try await git("remote", "add", "evil", "http://127.0.0.1:\(port)/y.git", in: scratch.workspacePath)
        let added = await call("git_push", ["remote": "evil"], in: session)
        #expect(added.isError && added.text.contains("after the session started"), "\(added.text)")
        #expect(accept(listener, nil, nil) < 0)
    }

    @Test func credentialsGoOnlyOverHTTPSOrSSHToThePinnedHost() async {
        #expect(CredentialScope.allows("https://git.example.com/a.git", pinned: "https://git.example.com/a.git"))
        #expect(CredentialScope.allows("git@git.example.com:a.git", pinned: "ssh://git@git.example.com/a.git"))
        #expect(!CredentialScope.allows("http://git.example.com/a.git", pinned: "http://git.example.com/a.git"))
        #expect(!CredentialScope.allows("https://evil.example.net/a.git", pinned: "https://git.example.com/a.git"))
        #expect(!CredentialScope.allows("/srv/a.git", pinned: "/srv/a.git"))
    }
}
