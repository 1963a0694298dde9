import Foundation
@testable import Sandbox
import TestSupport
import Testing
@testable import Tools

/// `--mount FOLDER:TARGET`: a workspace folder that commands and the file tools also see at a fixed
/// path (Harbor's /app, /tests, /logs), and that a command cannot turn into a door out.
@Suite(.serialized) struct FolderMountTests {
    let scratch: Scratch

    init() throws {
        scratch = try Scratch()
        for folder in ["app", "logs/agent", "tests"] {
            try FileManager.default.createDirectory(atPath: scratch.workspacePath + "/" + folder, withIntermediateDirectories: true)
        }
    }

    static func mounts(_ texts: String...) throws -> [FolderMount] { try texts.map { try FolderMount(parsing: $0) } }

    /// A top-level folder this machine's / lacks, so the test proves the new root makes it.
    static let newTop = "/toolhost-mount-\(getpid())"

    @Test func commandsSeeTheFoldersAtTheirTargetsAndTheHostRootStaysAsItWas() async throws {
        try scratch.write("tests/test.sh", "echo from tests\n")
        let session = try scratch.session(mounts: Self.mounts("app:/app", "logs:\(Self.newTop)", "logs/agent:\(Self.newTop)/agent", "tests:/tests"))
        let result = await call("execute", ["command": .string("""
            echo made > /app/hello.txt && sh /tests/test.sh && echo log > \(Self.newTop)/agent/a.txt && ls \(Self.newTop)
            touch /not-a-mount 2>&1; echo done
            """)], in: session)
        #expect(result.text.contains("from tests") && result.text.contains("agent"), "\(result.text)")
        #expect(result.text.contains("Read-only file system"), "the new root is read-only: \(result.text)")
        #expect(try scratch.read("app/hello.txt") == "made\n")
        #expect(try scratch.read("logs/agent/a.txt") == "log\n")
        #expect(!FileManager.default.fileExists(atPath: Self.newTop), "the mount point lives only in the sandbox's root")
        #expect(!FileManager.default.fileExists(atPath: "/not-a-mount"))
        let home = await call("execute", ["command": "cat /etc/hostname >/dev/null && ls /usr/bin/env && echo ok"], in: session)
        #expect(home.text.contains("ok"), "the host's userland is still there: \(home.text)")
    }

    /// A target inside a host folder that lacks it (/srv/app, /etc/...): that folder shows on a
    /// tmpfs with its host entries bound in, plus the mount point; the host folder is untouched.
    @Test func aTargetInAHostFolderGetsItsPlaceWithoutTouchingTheHost() async throws {
        let target = "/etc/toolhost-mount-\(getpid())/deep"
        let session = try scratch.session(mounts: Self.mounts("app:\(target)"))
        let result = await call("execute", ["command": .string("""
            echo made > \(target)/x && cat /etc/hostname >/dev/null && ls /etc/passwd && touch /etc/planted 2>&1; echo done
            """)], in: session)
        #expect(result.text.contains("/etc/passwd") && result.text.contains("Read-only file system"), "\(result.text)")
        #expect(try scratch.read("app/x") == "made\n")
        #expect(!FileManager.default.fileExists(atPath: "/etc/toolhost-mount-\(getpid())") && !FileManager.default.fileExists(atPath: "/etc/planted"))
    }

    @Test func theFileToolsTakeTargetPaths() async throws {
        let session = try scratch.session(mounts: Self.mounts("app:/app"))
        let write = await call("write_file", ["path": "/app/src/note.txt", "content": "note\n"], in: session)
        #expect(!write.isError, "\(write.text)")
        #expect(try scratch.read("app/src/note.txt") == "note\n")
        let read = await call("read_file", ["path": "/app/src/note.txt"], in: session)
        #expect(read.text.contains("note"))
        let outside = await call("read_file", ["path": "/application/x"], in: session)
        #expect(outside.isError, "a path that only starts like the target is outside: \(outside.text)")
    }

    @Test func gitStaysReadOnlyWhereTheWorkspaceShowsToo() async throws {
        try scratch.write(".git/HEAD", "ref: refs/heads/main\n")
        let session = try scratch.session(mounts: Self.mounts(".:/app"))
        let result = await call("execute", ["command": "echo evil > /app/.git/HEAD; echo x > /app/ok.txt; cat /app/ok.txt"], in: session)
        #expect(result.text.contains("Read-only file system"), "\(result.text)")
        #expect(try scratch.read(".git/HEAD") == "ref: refs/heads/main\n")
        #expect(try scratch.read("ok.txt") == "x\n")
    }

    @Test func aFolderThatIsASymlinkIsRefused() throws {
        let outside = scratch.root + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.removeItem(atPath: scratch.workspacePath + "/app")
        try scratch.symlink("app", to: outside)
        #expect(throws: MountError.self) { try scratch.session(mounts: Self.mounts("app:/app")) }
    }

    /// A target in the workspace, or one holding it, is refused (a workspace outside /tmp, whose
    /// targets the parse alone would refuse).
    @Test func aTargetInTheWorkspaceOrHoldingItIsRefused() throws {
        let root = "/var/tmp/toolhost-mount-test-\(getpid())"
        try FileManager.default.createDirectory(atPath: root + "/ws/app", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        for target in [root + "/ws/shown", root] {
            let mounts = try Self.mounts("app:\(target)")
            #expect {
                try ConfinedRunner(
                    profile: SandboxProfile.load("default"), workspace: root + "/ws", stateDirectory: scratch.statePath,
                    host: ProcessInfo.processInfo.environment, mechanisms: machineMechanisms, mounts: mounts)
            } throws: { "\($0)".contains("may not lie in the workspace") }
        }
    }

    /// The real attack: a process swaps the folder for a symlink to an outside folder and back as
    /// fast as it can while sessions start and write through the mount. Each start either refuses
    /// or mounts the real folder; nothing ever lands outside.
    @Test func aFolderSwappedForASymlinkMidStartNeverLeadsOut() async throws {
        let outside = scratch.root + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let app = scratch.workspacePath + "/app", parked = scratch.workspacePath + "/app.real", link = scratch.workspacePath + "/app.link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: outside)
        let stop = LockedFlag()
        let racer = Thread {
            // rename(2) swaps each in place, so at every instant app is the folder or the link.
            while !stop.isSet {
                rename(app, parked)
                rename(link, app)
                rename(app, link)
                rename(parked, app)
            }
        }
        racer.start()
        var started = 0, refused = 0
        for _ in 0..<40 {
            do {
                let session = try scratch.session(mounts: Self.mounts("app:/app"))
                _ = await call("execute", ["command": "echo pwned > /app/planted 2>/dev/null; true"], in: session)
                started += 1
            } catch {
                refused += 1
            }
        }
        stop.set()
        #expect(await eventually(within: .seconds(60)) { !racer.isExecuting }, "the racer stopped before the check")
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty, "nothing was written through the swapped-in link")
        #expect(started + refused == 40)
    }

    @Test func badMountsAreRefusedWithTheWayForward() throws {
        for (text, words) in [
            ("app", "FOLDER:TARGET"), ("/abs:/app", "relative"), ("../up:/app", "'..'"), ("app:/", "plain absolute"),
            ("app:/proc/x", "sandbox's own"), ("app:/tmp/x", "sandbox's own"), ("app:/a/../b", "'..'"),
        ] {
            #expect {
                try FolderMount(parsing: text)
            } throws: { "\($0)".contains(words) }
        }
        #expect(try FolderMount(parsing: "./app/:/app/").description == "app:/app")
        #expect(throws: MountError.self) { try FolderMount.checkTargets(Self.mounts("app:/bin/x")) }  // /bin is a symlink to usr/bin
        #expect(throws: MountError.self) { try FolderMount.checkTargets(Self.mounts("app:/etc/hostname/x")) }
        #expect(throws: MountError.self) { try FolderMount.checkTargets(Self.mounts("app:/app", "tests:/app")) }
    }
}

/// A flag one thread sets and another polls.
private final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
