import CSandbox
import Foundation
@testable import Sandbox
import TestSupport
import Testing
@testable import Tools

/// libgit2 walks and writes the working tree by path. A command that swaps a folder for a symlink
/// to a host folder while git tools run must never make them read, list, commit, write or delete
/// anything in that host folder: their working-tree calls run in the sandbox's own view.
@Suite(.serialized) struct GitRaceTests: UsesFixture {
    let fixture: Fixture

    init() throws { fixture = try Fixture() }

    /// What the confined view's thread is: the session's uid, no procfs, the host's hidden paths
    /// empty, nothing outside the workspace writable, and the workspace's .git writable.
    @Test func theConfinedViewSeesWhatCommandsSee() async throws {
        let runner = try #require(session.runner as? ConfinedRunner)
        guard geteuid() == 0 else {
            // An ordinary user cannot join the session's mounts: no view, and the runner says so.
            #expect(try runner.makeConfinedThread() == nil)
            #expect(runner.notes.contains { $0.hasPrefix("WARNING: git_status") })
            return
        }
        let thread = try #require(try runner.makeConfinedThread(), "a root toolhost has a confined view")
        defer { thread.stop() }
        let secret = scratch.root + "/host-view"
        try FileManager.default.createDirectory(atPath: secret, withIntermediateDirectories: true)
        try "HOSTSECRET\n".write(toFile: secret + "/f", atomically: true, encoding: .utf8)
        let workspace = scratch.workspacePath
        try FileManager.default.createDirectory(atPath: workspace + "/.git", withIntermediateDirectories: true)
        struct Seen: Sendable {
            var uid: UInt32, euid: UInt32, proc: Bool, selfRoot: Bool, hostFile: Bool, hostWrite: Int32, etcWrite: Int32, gitWrite: Int32, workspaceWrite: Int32
            var threadStart: Int32, unshare: Int32, blocksSignals: Bool
        }
        let seen = try await thread.perform { () -> Seen in
            func create(_ path: String) -> Int32 {
                let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                if fd >= 0 { close(fd) }
                return fd >= 0 ? 0 : errno
            }
            return Seen(
                uid: getuid(), euid: geteuid(), proc: FileManager.default.fileExists(atPath: "/proc/self"),
                selfRoot: FileManager.default.fileExists(atPath: "/proc/1/root/etc"),
                hostFile: FileManager.default.fileExists(atPath: secret + "/f"), hostWrite: create(secret + "/planted"),
                etcWrite: create("/etc/toolhost-planted"), gitWrite: create(workspace + "/.git/planted"), workspaceWrite: create(workspace + "/planted"),
                threadStart: Self.startThread(), unshare: -csandbox_new_netns(), blocksSignals: Self.blocks(SIGTERM) && Self.blocks(SIGCHLD))
        }
        // A thread it started would inherit its view and uid, and could hand them to the runtime.
        #expect(seen.threadStart == EPERM, "the confined thread can start no thread")
        #expect(seen.unshare == EPERM, "nor leave its namespace")
        #expect(seen.blocksSignals, "signals are handled by the process's other threads")
        #expect(seen.uid == runner.hostIdentity.uid && seen.euid == runner.hostIdentity.uid && seen.uid != 0)
        #expect(!seen.proc && !seen.selfRoot, "no procfs: its magic links would lead to the host's root")
        #expect(!seen.hostFile, "the host's /tmp is the sandbox's own, empty")
        #expect(seen.hostWrite != 0 && seen.etcWrite != 0, "nothing outside the workspace is writable")
        #expect(seen.gitWrite == 0 && seen.workspaceWrite == 0, "the workspace and its .git are writable in the view")
        #expect(!FileManager.default.fileExists(atPath: secret + "/planted"))
        #expect(FileManager.default.fileExists(atPath: workspace + "/.git/planted"))
        // The thread's uid is its own: the process around it is still root.
        #expect(geteuid() == 0)
    }

    /// Whether the calling thread blocks `signal`.
    static func blocks(_ signal: Int32) -> Bool {
        var mask = sigset_t()
        pthread_sigmask(SIG_BLOCK, nil, &mask)
        return sigismember(&mask, signal) == 1
    }

    /// pthread_create's result, from the calling thread.
    static func startThread() -> Int32 {
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { _ in nil }, nil)
        if result == 0 { pthread_join(thread, nil) }
        return result
    }

    /// The attack of the report: a background command exchanges a tracked folder with a symlink
    /// to a host folder (renameat2 RENAME_EXCHANGE) in a loop, while every git tool that touches
    /// the working tree runs again and again. The host folder's files are never listed, shown,
    /// committed, overwritten or deleted.
    @Test func gitToolsWinAgainstARacingSwapper() async throws {
        let secret = scratch.root + "/host-git"
        try FileManager.default.createDirectory(atPath: secret, withIntermediateDirectories: true)
        try "HOSTGITSECRET\n".write(toFile: secret + "/f", atomically: true, encoding: .utf8)
        try "HOSTEVIL\n".write(toFile: secret + "/evil", atomically: true, encoding: .utf8)
        try "listed\n".write(toFile: secret + "/hostonlyname", atomically: true, encoding: .utf8)
        let before = try FileManager.default.contentsOfDirectory(atPath: secret).sorted()
        // main has d/f; the branch with-evil adds an executable d/evil (a checkout writes it, a
        // switch back deletes it).
        _ = try await scratch.makeRepositoryWithRemote()
        try scratch.write("d/f", "inside\n")
        try await git("add", ".", in: scratch.workspacePath)
        try await git("commit", "-qm", "d", in: scratch.workspacePath)
        try await git("checkout", "-qb", "with-evil", in: scratch.workspacePath)
        try scratch.write("d/evil", "#!/bin/sh\necho planted\n")
        chmod(scratch.workspacePath + "/d/evil", 0o755)
        try await git("add", ".", in: scratch.workspacePath)
        try await git("commit", "-qm", "evil", in: scratch.workspacePath)
        try await git("checkout", "-q", "main", in: scratch.workspacePath)
        let session = try scratch.session("race")

        let swapper = "ln -sfn \(secret) l && " + exchangeLoop(seconds: 90)
        let started = await call("execute", ["command": .string(swapper), "background": true], in: session)
        try #require(!started.isError, "\(started.text)")
        // Wait until the swapper runs: d is then sometimes the symlink.
        for _ in 0..<300 {
            var info = stat()
            if lstat(scratch.workspacePath + "/d", &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        var texts: [String] = []
        var calls = 0, failures = 0
        for round in 0..<250 {
            let batch: [(String, JSONValue)] = [
                ("git_status", [:]),
                ("git_diff", [:]),
                ("git_diff", ["paths": ["d/f"]]),
                ("git_branch", ["name": .string("evil-\(round)"), "from": "with-evil"]),
                ("git_branch", ["name": .string("back-\(round)"), "from": "main"]),
                ("git_commit", ["message": .string("round \(round)")]),
            ]
            for (tool, arguments) in batch {
                let result = await call(tool, arguments, in: session)
                calls += 1
                if result.isError { failures += 1 }
                texts.append(result.text + (result.structured?.jsonText ?? ""))
            }
        }
        _ = await call("stop_background", ["id": "all"], in: session)
        await session.close()
        // The calling threads never took the view on (a thread started from the confined one would have).
        #expect(geteuid() == 0 && FileManager.default.fileExists(atPath: "/proc/self"))

        #expect(calls == 1500 && failures < calls, "\(failures) of \(calls) calls failed")
        let leaks = texts.filter { $0.contains("HOSTGITSECRET") || $0.contains("HOSTEVIL") || $0.contains("hostonlyname") }
        #expect(leaks.isEmpty, "\(leaks.count) results showed the host folder, e.g. \(leaks.first ?? "")")
        #expect(try FileManager.default.contentsOfDirectory(atPath: secret).sorted() == before, "nothing was written in or deleted from the host folder")
        #expect(try String(contentsOfFile: secret + "/f", encoding: .utf8) == "HOSTGITSECRET\n")
        #expect(try String(contentsOfFile: secret + "/evil", encoding: .utf8) == "HOSTEVIL\n")
        // Every object in the repository, loose or packed: none holds a host file's content.
        let objects = try await capture(
            "/usr/bin/git", ["cat-file", "--batch-all-objects", "--batch"], in: scratch.workspacePath,
            environment: ["PATH": "/usr/bin:/bin", "HOME": scratch.root, "GIT_CONFIG_NOSYSTEM": "1"])
        #expect(objects.status == 0 && !objects.stdout.isEmpty)
        #expect(!objects.stdout.contains("HOSTGITSECRET") && !objects.stdout.contains("HOSTEVIL") && !objects.stdout.contains("hostonlyname"),
                "no host file went into the repository")
    }

    /// git_status's change watch adds a watch for each folder that appears, here d after every
    /// exchange with the symlink l to a host folder. A swapper slow enough for inotify's queue to
    /// keep up (a fast one overflows it, and the watch gives up for a whole status every call)
    /// has the watch follow it: the folder gets watched, the host folder never (no watch of this
    /// process, from its fdinfo, is on its inode). As root git runs on the confined thread, which
    /// watches through its own working directory; otherwise on the host, through /proc/self/fd.
    @Test func gitStatusWatchesNoFolderASwapLeadsTo() async throws {
        // Not under the scratch root: /tmp is the view's own, and the link must lead to a folder
        // the view shows (its read-only root), where a watch would see the host's files change.
        let secret = "/var/tmp/toolhost-watched-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: secret, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: secret) }
        _ = try await scratch.makeRepositoryWithRemote()
        try scratch.write("d/f", "inside\n")
        try await git("add", ".", in: scratch.workspacePath)
        try await git("commit", "-qm", "d", in: scratch.workspacePath)
        let session = try scratch.session("watch-race")
        let swapper = "ln -sfn \(secret) l && " + exchangeLoop(seconds: 60, pause: 0.002)
        let started = await call("execute", ["command": .string(swapper), "background": true], in: session)
        try #require(!started.isError, "\(started.text)")
        var hostFolder = stat(), folder = stat()
        #expect(stat(secret, &hostFolder) == 0)
        var sawFolderWatched = false
        for _ in 0..<150 {
            let status = await call("git_status", [:], in: session)
            #expect(!status.isError, "\(status.text)")
            let watched = watchedInodes()
            #expect(!watched.contains(UInt64(hostFolder.st_ino)), "a watch is on the host folder \(secret)")
            if lstat(scratch.workspacePath + "/d", &folder) == 0 && (folder.st_mode & S_IFMT) == S_IFDIR && watched.contains(UInt64(folder.st_ino)) {
                sawFolderWatched = true
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        _ = await call("stop_background", ["id": "all"], in: session)
        await session.close()
        #expect(sawFolderWatched, "the watch followed the swaps into the folder")
    }

    /// A repository with symlinks inside it keeps working: a committed symlink stays a link, and
    /// a link to a folder inside the workspace is committed as the link, not what it points to.
    @Test func symlinksInsideTheRepositoryStayLinks() async throws {
        _ = try await scratch.makeRepositoryWithRemote()
        try scratch.write("src/a.txt", "a\n")
        try scratch.symlink("link-to-src", to: "src")
        try scratch.symlink("README.link", to: "README.md")
        let session = try scratch.session("links")
        let commit = await call("git_commit", ["message": "add links"], in: session)
        #expect(!commit.isError, "\(commit.text)")
        let tree = try await git("ls-tree", "HEAD", in: scratch.workspacePath)
        #expect(tree.contains("120000 blob") && tree.contains("link-to-src") && tree.contains("README.link"), "\(tree)")
        let branch = await call("git_branch", ["name": "other", "from": "main"], in: session)
        #expect(!branch.isError, "\(branch.text)")
        var info = stat()
        #expect(lstat(scratch.workspacePath + "/link-to-src", &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK)
        let status = await call("git_status", [:], in: session)
        #expect(status.text.contains("Nothing to commit"), "\(status.text)")
    }

    /// A repository git_commit creates lives in the workspace's .git and belongs to the
    /// workspace's owner, like everything else git writes there.
    @Test func aNewRepositoryIsMadeWhereCommandsCannotWrite() async throws {
        try scratch.write("a.txt", "a\n")
        let commit = await call("git_commit", ["message": "first"], in: session)
        #expect(!commit.isError && commit.text.contains("Created the repository"), "\(commit.text)")
        var owner = stat(), head = stat()
        stat(scratch.workspacePath, &owner)
        #expect(stat(scratch.workspacePath + "/.git/HEAD", &head) == 0 && head.st_uid == owner.st_uid)
        let planted = await run("echo x > .git/planted 2>&1; echo done")
        #expect(planted.text.contains("Read-only") || planted.text.contains("Permission denied"), "\(planted.text)")
    }
}

/// The inodes this process's inotify descriptors watch, read from /proc/self/fdinfo.
func watchedInodes() -> Set<UInt64> {
    var inodes = Set<UInt64>()
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fdinfo")) ?? [] {
        guard let text = try? String(contentsOfFile: "/proc/self/fdinfo/" + name, encoding: .utf8) else { continue }
        for line in text.split(separator: "\n") where line.hasPrefix("inotify wd:") {
            let field = line.split(separator: " ").first { $0.hasPrefix("ino:") }
            if let field, let inode = UInt64(field.dropFirst(4), radix: 16) { inodes.insert(inode) }
        }
    }
    return inodes
}
