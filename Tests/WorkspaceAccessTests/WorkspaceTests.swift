import Foundation
import TestSupport
import Testing
@testable import WorkspaceAccess

@Suite struct WorkspaceTests {
    let scratch: Scratch
    let workspace: Workspace

    init() throws {
        scratch = try Scratch()
        try scratch.write("src/index.ts", "export {}\n")
        try FileManager.default.createDirectory(atPath: scratch.root + "/outside", withIntermediateDirectories: true)
        try "secret".write(toFile: scratch.root + "/outside/secret.txt", atomically: true, encoding: .utf8)
        workspace = try Workspace(scratch.workspacePath)
    }

    private func refused(_ path: String, for access: Workspace.Access = .read, mentioning words: String = "outside the workspace") {
        #expect {
            try workspace.resolve(path, for: access)
        } throws: { error in
            (error as? ToolError)?.message.contains(words) == true
        }
    }

    @Test func plainRelativeAndAbsolutePathsInside() throws {
        let file = try workspace.resolve("src/index.ts")
        #expect(file.kind == .file)
        #expect(file.relative == "src/index.ts")
        #expect(try workspace.resolve(workspace.root + "/src/index.ts") == file)
        #expect(try workspace.resolve("./src/../src/index.ts") == file)
        #expect(try workspace.resolve(".").kind == .directory)
        #expect(try workspace.resolve("src/new/deeper.ts", for: .write).kind == .missing)
    }

    @Test func dotDotAboveTheRootIsRefused() {
        refused("../outside/secret.txt")
        refused("src/../../outside/secret.txt")
        refused("src/../..")
    }

    @Test func absolutePathsElsewhereAreRefused() {
        refused("/etc/passwd")
        refused(scratch.root + "/outside/secret.txt")
        // A sibling whose name merely starts with the root's name is not inside it.
        refused(scratch.workspacePath + "-evil/x")
    }

    @Test func symlinksPointingOutAreRefusedAtAnyComponent() throws {
        try scratch.symlink("out-dir", to: scratch.root + "/outside")
        try scratch.symlink("out-file", to: scratch.root + "/outside/secret.txt")
        try scratch.symlink("src/relative-out", to: "../../outside")
        try scratch.symlink("dangling-out", to: scratch.root + "/outside/not-yet")
        refused("out-dir/secret.txt")
        refused("out-file")
        refused("src/relative-out/secret.txt")
        // The parent of a file that does not exist yet.
        refused("out-dir/new.txt", for: .write)
        refused("dangling-out", for: .write)
    }

    @Test func symlinksPointingInsideAreAccepted() throws {
        try scratch.symlink("alias", to: "src")
        try scratch.symlink("src/self", to: scratch.workspacePath + "/src/index.ts")
        let viaAlias = try workspace.resolve("alias/index.ts")
        #expect(viaAlias.relative == "src/index.ts")
        #expect(try workspace.resolve("src/self").relative == "src/index.ts")
    }

    @Test func symlinkLoopsEndWithAClearError() throws {
        try scratch.symlink("a", to: "b")
        try scratch.symlink("b", to: "a")
        refused("a", mentioning: "too many levels of symlinks")
    }

    @Test func fifosAndDevicesAreRefused() throws {
        #expect(mkfifo(scratch.workspacePath + "/pipe", 0o600) == 0)
        refused("pipe", mentioning: "device, fifo or socket")
        if getuid() == 0 {
            #expect(mknod(scratch.workspacePath + "/null", S_IFCHR | 0o600, makedev(1, 3)) == 0)
            refused("null", mentioning: "device, fifo or socket")
        }
    }

    @Test func gitInternalsAreReadOnly() throws {
        try scratch.write(".git/config", "[core]\n")
        #expect(try workspace.resolve(".git/config").kind == .file)
        refused(".git/config", for: .write, mentioning: "inside .git")
        refused(".git/hooks/pre-commit", for: .write, mentioning: "inside .git")
    }

    @Test func aFileUsedAsAFolderIsRefused() {
        refused("src/index.ts/child", mentioning: "is a file, not a folder")
    }

    @Test func badPathsAreUsageErrors() {
        refused("", mentioning: "the path is empty")
        refused("a\0b", mentioning: "NUL")
    }
}

private func makedev(_ major: UInt32, _ minor: UInt32) -> dev_t {
    dev_t((major << 8) | minor)
}
