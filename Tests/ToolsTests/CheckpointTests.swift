import Foundation
@testable import Sandbox
import TestSupport
import Testing
@testable import Tools

/// Checkpoints and undo with the real tools: shell changes, rewrites, another session's work, and
/// a racing swapper that tries to lead the restore outside.
@Suite(.serialized) struct CheckpointTests: UsesFixture {
    let fixture: Fixture

    init() throws {
        fixture = try Fixture()
        try scratch.write("src/app.ts", "export const app = 1\n")
        try scratch.write("src/lib/util.ts", "export const util = 2\n")
        try scratch.write(".gitignore", "node_modules/\n")
    }

    @Test func undoBringsBackWhatAShellCommandRemoved() async throws {
        let removed = await run("rm -rf src && mkdir -p node_modules && echo ignored > node_modules/x")
        #expect(!removed.isError, "\(removed.text)")
        let listed = await call("checkpoints", [:], in: session)
        #expect(listed.text.contains("execute") && listed.text.contains("removed src/app.ts, src/lib/util.ts"), "\(listed.text)")
        let undone = await call("undo", [:], in: session)
        #expect(!undone.isError, "\(undone.text)")
        #expect(undone.text.contains("Restored: src/app.ts, src/lib/util.ts"), "\(undone.text)")
        #expect(try scratch.read("src/app.ts") == "export const app = 1\n")
        #expect(try scratch.read("src/lib/util.ts") == "export const util = 2\n")
        // What .gitignore ignores is not the checkpoints' business.
        #expect(try scratch.read("node_modules/x") == "ignored\n")
    }

    /// A session prepared ahead (a warm pool's) took its first snapshot then: what changed
    /// before its first call is what undo puts back, not what that snapshot saw.
    @Test func aSnapshotTakenAheadStillSeesWhatChangedSince() async throws {
        await session.prepareAhead()
        try scratch.write("src/app.ts", "changed before the first call\n")
        try scratch.write("src/lib/late.ts", "new before the first call\n")
        _ = await call("write_file", ["path": "src/app.ts", "content": "by the first call\n"], in: session)
        _ = await call("write_file", ["path": "src/lib/late.ts", "content": "by the second call\n"], in: session)
        let listed = await call("checkpoints", [:], in: session)
        let first = try #require(listed.structured?["checkpoints"]?.arrayValue?.first?["call"]?.intValue, "\(listed.text)")
        let undone = await call("undo", ["to": .int(first)], in: session)
        #expect(!undone.isError, "\(undone.text)")
        #expect(try scratch.read("src/app.ts") == "changed before the first call\n")
        #expect(try scratch.read("src/lib/late.ts") == "new before the first call\n")
    }

    @Test func undoToACallPutsBackEveryLaterChangeAndCanBeUndone() async throws {
        _ = await call("write_file", ["path": "src/app.ts", "content": "broken(\n"], in: session)
        _ = await call("write_file", ["path": "src/new.ts", "content": "export {}\n"], in: session)
        _ = await run("chmod +x src/lib/util.ts && echo more >> src/lib/util.ts")
        let listed = await call("checkpoints", [:], in: session)
        let first = try #require(listed.structured?["checkpoints"]?.arrayValue?.first?["call"]?.intValue, "\(listed.text)")
        let undone = await call("undo", ["to": .int(first)], in: session)
        #expect(undone.text.contains("Removed (they did not exist then): src/new.ts"), "\(undone.text)")
        #expect(try scratch.read("src/app.ts") == "export const app = 1\n")
        #expect(try scratch.read("src/lib/util.ts") == "export const util = 2\n")
        #expect(!FileManager.default.fileExists(atPath: scratch.workspacePath + "/src/new.ts"))
        #expect(!FileManager.default.isExecutableFile(atPath: scratch.workspacePath + "/src/lib/util.ts"))
        // The undo was a call that changed the workspace: undoing it brings the changes back.
        let redone = await call("undo", [:], in: session)
        #expect(try scratch.read("src/app.ts") == "broken(\n", "\(redone.text)")
        #expect(FileManager.default.fileExists(atPath: scratch.workspacePath + "/src/new.ts"))
    }

    /// An unchanged tree is not walked again (the folders are watched), so every change must
    /// reach the watch: a file put into a folder that was empty at the last look, by the shell,
    /// and a file deep in a folder the shell made.
    @Test func changesInWatchedAndNewFoldersAreSeen() async throws {
        _ = await run("mkdir -p src/empty")
        _ = await call("checkpoints", [:], in: session)
        _ = await run("echo late > src/empty/late.ts && mkdir -p src/a/b && echo deep > src/a/b/deep.ts")
        let listed = await call("checkpoints", [:], in: session)
        #expect(listed.text.contains("added src/a/b/deep.ts, src/empty/late.ts"), "\(listed.text)")
        let undone = await call("undo", [:], in: session)
        #expect(!undone.isError, "\(undone.text)")
        #expect(!FileManager.default.fileExists(atPath: scratch.workspacePath + "/src/empty/late.ts"))
        #expect(!FileManager.default.fileExists(atPath: scratch.workspacePath + "/src/a/b/deep.ts"))
        // A change between calls (the person at the keyboard) is part of the next call's "before".
        try scratch.write("src/app.ts", "edited by hand\n")
        _ = await call("write_file", ["path": "src/app.ts", "content": "by the model\n"], in: session)
        _ = await call("undo", [:], in: session)
        #expect(try scratch.read("src/app.ts") == "edited by hand\n")
    }

    /// The watch itself: quiet while nothing changes (so an unchanged tree is not walked), it
    /// names the folder of a write, a new file and a removal, and a moved folder or a touched
    /// `.gitignore` asks for the whole walk.
    @Test func theFolderWatchHearsChangesAndOnlyThen() async throws {
        let watch = try #require(FolderWatch())
        for path in ["src", "src/lib"] {
            let folder = open(scratch.workspacePath + "/" + path, O_RDONLY | O_DIRECTORY)
            defer { close(folder) }
            watch.add(folder: folder, path: path)
        }
        #expect(watch.take() == .everything, "the first look has nothing to compare with")
        #expect(watch.take() == .nothing && watch.take() == .nothing, "quiet while nothing changes")
        try scratch.write("src/app.ts", "export const app = 3\n")
        #expect(watch.take() == .folders(["src"]) && watch.take() == .nothing)
        try scratch.write("src/lib/new.ts", "x\n")
        try scratch.write("src/other.ts", "x\n")
        #expect(watch.take() == .folders(["src", "src/lib"]))
        try FileManager.default.removeItem(atPath: scratch.workspacePath + "/src/lib/new.ts")
        #expect(watch.take() == .folders(["src/lib"]) && watch.take() == .nothing)
        try scratch.write("src/.gitignore", "dist/\n")
        #expect(watch.take() == .everything)
        try FileManager.default.moveItem(atPath: scratch.workspacePath + "/src/lib", toPath: scratch.workspacePath + "/src/moved")
        #expect(watch.take() == .everything && watch.take() == .nothing)
    }

    /// A snapshot after a change lists again only the folders the watch names: after each kind
    /// of change it must be what a whole walk of a fresh store finds.
    @Test func aSnapshotAfterAChangeIsTheWholeWalks() async throws {
        let workspace = try scratch.workspace
        var store = CheckpointStore(folder: scratch.root + "/store")
        _ = store.snapshot(of: workspace)
        let steps = [
            "echo changed >> src/app.ts",
            "mkdir -p src/a/b/c && echo deep > src/a/b/c/deep.ts && echo mid > src/a/mid.ts",
            "rm -rf src/a/b",
            "chmod +x src/lib/util.ts",
            "mv src/lib src/moved && echo new > src/moved/new.ts",
            "mkdir -p node_modules/x && echo ignored > node_modules/x/i.js",
            "echo 'src/moved/' >> .gitignore",
            "rm -rf src/a && echo 'now a file' > src/a",
            "rm src/a && mkdir -p src/a && echo back > src/a/f.ts",
            "printf '' > .gitignore",
            "rm -rf src && echo top > top.ts",
        ]
        for (index, step) in steps.enumerated() {
            let result = try await capture("/bin/bash", ["-c", step], in: scratch.workspacePath)
            #expect(result.status == 0, "\(step): \(result.stdout)")
            let incremental = store.snapshot(of: workspace)
            var fresh = CheckpointStore(folder: scratch.root + "/whole-\(index)")
            let walked = fresh.snapshot(of: workspace)
            #expect(incremental.files == walked.files, "after \(step): \(incremental.files.keys.sorted()) against \(walked.files.keys.sorted())")
            #expect(incremental.notKept == walked.notKept, "after \(step)")
        }
        #expect(store.snapshot(of: workspace).files.keys.sorted() == [".gitignore", "node_modules/x/i.js", "top.ts"])
    }

    @Test func anotherSessionsWorkIsNeverTouched() async throws {
        let other = try scratch.session("other")
        _ = await call("write_file", ["path": "src/app.ts", "content": "mine\n"], in: session)
        _ = await call("write_file", ["path": "src/theirs.ts", "content": "theirs\n"], in: other)
        _ = await call("write_file", ["path": "src/lib/util.ts", "content": "theirs too\n"], in: other)
        let undone = await call("undo", [:], in: session)
        #expect(!undone.isError, "\(undone.text)")
        #expect(try scratch.read("src/app.ts") == "export const app = 1\n")
        #expect(try scratch.read("src/theirs.ts") == "theirs\n")
        #expect(try scratch.read("src/lib/util.ts") == "theirs too\n")
        let nothing = await call("undo", ["to": 999], in: session)
        #expect(nothing.isError && nothing.text.contains("there is no checkpoint before call 999"), "\(nothing.text)")
    }

    /// While undo restores d/f, a command swaps d with a symlink to a host folder: not one write
    /// may land in the host folder.
    @Test func aRacingSwapperCannotLeadTheRestoreOutside() async throws {
        let host = scratch.root + "/host-only"
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        try "HOST\n".write(toFile: host + "/f", atomically: true, encoding: .utf8)
        try scratch.write("d/f", "inside\n")
        _ = await call("write_file", ["path": "d/f", "content": "changed\n"], in: session)
        try FileManager.default.createSymbolicLink(atPath: scratch.workspacePath + "/l", withDestinationPath: host)
        let swapper = await call("execute", ["command": .string(exchangeLoop(seconds: 30)), "background": true], in: session)
        #expect(!swapper.isError, "\(swapper.text)")
        for _ in 0..<200 {
            _ = await call("write_file", ["path": "d/f", "content": "changed again\n"], in: session)
            _ = await call("undo", [:], in: session)
        }
        _ = await call("stop_background", ["id": "all"], in: session)
        #expect(try String(contentsOfFile: host + "/f", encoding: .utf8) == "HOST\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: host) == ["f"])
    }
}
