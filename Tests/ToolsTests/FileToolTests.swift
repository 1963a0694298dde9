import Foundation
import TestSupport
import Testing
@testable import Tools

@Suite struct ReadFileTests: UsesFixture {
    let fixture: Fixture

    init() throws { fixture = try Fixture() }

    @Test func numberedLinesWithTotals() async throws {
        try scratch.write("a.txt", "one\ntwo\nthree\n")
        let result = await call("read_file", ["path": "a.txt"], in: session)
        #expect(!result.isError)
        #expect(result.text.hasPrefix("     1\tone\n     2\ttwo\n     3\tthree\n"))
        #expect(result.text.contains("lines 1-3 of 3"))
        #expect(!result.text.contains("no newline"))
    }

    @Test func pagingWithOffsetAndLimit() async throws {
        try scratch.write("many.txt", (1...1000).map { "line \($0)" }.joined(separator: "\n") + "\n")
        let page = await call("read_file", ["path": "many.txt", "offset": 500, "limit": 3], in: session)
        #expect(page.text.hasPrefix("   500\tline 500\n   501\tline 501\n   502\tline 502\n"))
        #expect(page.text.contains("lines 500-502 of 1000"))
        #expect(page.text.contains("read on with offset 503"))
        let past = await call("read_file", ["path": "many.txt", "offset": 2000], in: session)
        #expect(past.text.contains("offset 2000 is past the end"))
    }

    @Test func emptyFileAndMissingFinalNewline() async throws {
        try scratch.write("empty.txt", "")
        #expect(await call("read_file", ["path": "empty.txt"], in: session).text.contains("is empty (0 bytes)"))
        try scratch.write("tail.txt", "a\nb")
        let tail = await call("read_file", ["path": "tail.txt"], in: session)
        #expect(tail.text.contains("     2\tb\n(no newline at end of file)"))
        #expect(tail.text.contains("lines 1-2 of 2"))
    }

    @Test func binaryFilesAreRefused() async throws {
        try scratch.write("logo.png", Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D]))
        let result = await call("read_file", ["path": "logo.png"], in: session)
        #expect(result.error == .failure)
        #expect(result.text.contains("binary file (12 bytes)"))
    }

    @Test func nonUTF8BytesAreShownAndFlagged() async throws {
        try scratch.write("latin1.txt", Data("caf".utf8) + Data([0xE9]) + Data("\n".utf8))
        let result = await call("read_file", ["path": "latin1.txt"], in: session)
        #expect(!result.isError)
        #expect(result.text.contains("caf\u{FFFD}"))
        #expect(result.text.contains("not valid UTF-8"))
    }

    @Test func longLinesAreCut() async throws {
        try scratch.write("min.js", String(repeating: "x", count: 10_000) + "\n")
        let result = await call("read_file", ["path": "min.js"], in: session)
        #expect(result.text.contains("line cut at 2000 bytes"))
        #expect(result.text.count < 3000)
    }

    @Test func aMissingFileNamesTheClosestOnes() async throws {
        try scratch.write("src/lib/tags.ts", "export {}\n")
        try scratch.write("src/lib/posts.ts", "export {}\n")
        let result = await call("read_file", ["path": "src/lib/tag.ts"], in: session)
        #expect(result.error == .failure)
        #expect(result.text.contains("src/lib/tag.ts does not exist"))
        #expect(result.text.contains("Closest existing files: src/lib/tags.ts"))
    }

    @Test func aFolderListsItsEntries() async throws {
        try scratch.write("src/a.ts", "")
        try scratch.write("src/b.ts", "")
        let result = await call("read_file", ["path": "src"], in: session)
        #expect(result.text.contains("src is a folder, not a file. It holds: a.ts, b.ts"))
    }

    @Test func a50MBFileIsPagedInOnePass() async throws {
        try scratch.writeLargeFile("big.log", megabytes: 50)
        let result = await call("read_file", ["path": "big.log", "offset": 250_000, "limit": 2], in: session)
        #expect(result.text.contains("lines 250000-250001 of 500000, 50000000 bytes"))
        #expect(result.structured?["lines_returned"] == 2)
    }
}

@Suite struct WriteFileTests: UsesFixture {
    let fixture: Fixture

    init() throws { fixture = try Fixture() }

    @Test func createsParentsAndReportsBytesAndLines() async throws {
        let result = await call("write_file", ["path": "src/app/page.tsx", "content": "a\nbé\n"], in: session)
        #expect(result.text == "Created src/app/page.tsx: 6 bytes, 2 lines.")
        #expect(try scratch.read("src/app/page.tsx") == "a\nbé\n")
        let again = await call("write_file", ["path": "src/app/page.tsx", "content": "x"], in: session)
        #expect(again.text == "Replaced src/app/page.tsx: 1 byte, 1 line.")
        let crlf = await call("write_file", ["path": "dos.txt", "content": "one\r\ntwo\r\nthree"], in: session)
        #expect(crlf.text == "Created dos.txt: 15 bytes, 3 lines.", "CRLF lines are lines")
        let empty = await call("write_file", ["path": "empty.txt", "content": ""], in: session)
        #expect(empty.text == "Created empty.txt: 0 bytes, 0 lines.")
    }

    /// A rewrite to the bytes already there says so and leaves the file alone (same inode); one
    /// byte more, or less, is a real write.
    @Test func aRewriteToTheSameContentSaysSo() async throws {
        let path = try scratch.write("notes.md", "hello\n")
        var before = stat(), after = stat()
        stat(path, &before)
        let same = await call("write_file", ["path": "notes.md", "content": "hello\n"], in: session)
        #expect(same.text.hasPrefix("Unchanged: notes.md already holds exactly this content (6 bytes)"), "\(same.text)")
        #expect(same.structured?["unchanged"] == true)
        stat(path, &after)
        #expect(after.st_ino == before.st_ino, "an unchanged file is not replaced")
        let longer = await call("write_file", ["path": "notes.md", "content": "hello\n\n"], in: session)
        #expect(longer.text == "Replaced notes.md: 7 bytes, 2 lines.")
        let shorter = await call("write_file", ["path": "notes.md", "content": "hello"], in: session)
        #expect(shorter.text == "Replaced notes.md: 5 bytes, 1 line.")
        #expect(try scratch.read("notes.md") == "hello")
    }

    @Test func replacesAtomicallyKeepingPermissionsAndLeavingNoTemporaryFiles() async throws {
        let path = try scratch.write("run.sh", "old\n")
        chmod(path, 0o755)
        _ = await call("write_file", ["path": "run.sh", "content": "#!/bin/sh\n"], in: session)
        var info = stat()
        stat(path, &info)
        #expect(info.st_mode & 0o777 == 0o755)
        // .git is the empty placeholder the sandbox keeps read-only, so commands cannot create a repository.
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.workspacePath).sorted() == [".git", "run.sh"])
    }

    @Test func refusesGitInternalsFoldersAndEscapes() async throws {
        try scratch.write(".git/HEAD", "ref: refs/heads/main\n")
        try scratch.symlink("out", to: scratch.root)
        let git = await call("write_file", ["path": ".git/HEAD", "content": "x"], in: session)
        #expect(git.text.contains("inside .git"))
        #expect(try scratch.read(".git/HEAD") == "ref: refs/heads/main\n")
        let folder = await call("write_file", ["path": ".", "content": "x"], in: session)
        #expect(folder.text.contains("is a folder"))
        let escape = await call("write_file", ["path": "out/evil.txt", "content": "x"], in: session)
        #expect(escape.text.contains("outside the workspace"))
        #expect(!FileManager.default.fileExists(atPath: scratch.root + "/evil.txt"))
    }
}

@Suite struct EditFileTests: UsesFixture {
    let fixture: Fixture

    init() throws {
        fixture = try Fixture()
        try fixture.scratch.write("tags.ts", "import { a } from '../../../lib/tags'\nconst x = 1\nconst y = 1\n")
    }

    @Test func replacesTheSingleMatchAndShowsTheResult() async throws {
        let result = await call(
            "edit_file", ["path": "tags.ts", "old_string": "'../../../lib/tags'", "new_string": "'@/lib/tags'"], in: session)
        #expect(!result.isError)
        #expect(result.text.hasPrefix("Replaced 1 occurrence in tags.ts (line 1). Now:\n     1\timport { a } from '@/lib/tags'"))
        #expect(try scratch.read("tags.ts").hasPrefix("import { a } from '@/lib/tags'\n"))
    }

    /// A long replacement is not echoed whole: its first and last three lines, with the context around.
    @Test func aLongReplacementShowsItsEdgesOnly() async throws {
        let body = (1...20).map { "const v\($0) = \($0)" }.joined(separator: "\n")
        let result = await call("edit_file", ["path": "tags.ts", "old_string": "const x = 1", "new_string": .string(body)], in: session)
        #expect(!result.isError)
        #expect(result.text == """
            Replaced 1 occurrence in tags.ts (line 2). Now:
                 1\timport { a } from '../../../lib/tags'
                 2\tconst v1 = 1
                 3\tconst v2 = 2
                 4\tconst v3 = 3
               ...\t(14 more lines, as you wrote them)
                19\tconst v18 = 18
                20\tconst v19 = 19
                21\tconst v20 = 20
                22\tconst y = 1
            """)
        #expect(try scratch.read("tags.ts").contains("const v10 = 10\n"))
    }

    @Test func severalMatchesAreRefusedWithTheirLinesUnlessReplaceAll() async throws {
        let refused = await call("edit_file", ["path": "tags.ts", "old_string": "= 1", "new_string": "= 2"], in: session)
        #expect(refused.error == .failure)
        #expect(refused.text.contains("occurs 2 times in tags.ts (lines 2, 3)"))
        #expect(try scratch.read("tags.ts").contains("const x = 1"))
        let all = await call(
            "edit_file", ["path": "tags.ts", "old_string": "= 1", "new_string": "= 2", "replace_all": true], in: session)
        #expect(all.text.contains("Replaced 2 occurrences"))
        #expect(try scratch.read("tags.ts").hasSuffix("const x = 2\nconst y = 2\n"))
    }

    @Test func noMatchExplainsTheLikelyCause() async throws {
        let spacing = await call("edit_file", ["path": "tags.ts", "old_string": "  const x = 1", "new_string": "z"], in: session)
        #expect(spacing.text.contains("differs only in indentation or spacing starts at line 2"))
        let prefixed = await call("edit_file", ["path": "tags.ts", "old_string": "     2\tconst x = 1", "new_string": "z"], in: session)
        #expect(prefixed.text.contains("line-number prefixes"))
        let absent = await call("edit_file", ["path": "tags.ts", "old_string": "nothing like it", "new_string": "z"], in: session)
        #expect(absent.text.contains("old_string was not found in tags.ts"))
    }

    @Test func badRequestsChangeNothing() async throws {
        let before = try scratch.read("tags.ts")
        let empty = await call("edit_file", ["path": "tags.ts", "old_string": "", "new_string": "z"], in: session)
        #expect(empty.error == .usage)
        let same = await call("edit_file", ["path": "tags.ts", "old_string": "x", "new_string": "x"], in: session)
        #expect(same.text.contains("are the same"))
        let missing = await call("edit_file", ["path": "tag.ts", "old_string": "x", "new_string": "y"], in: session)
        #expect(missing.text.contains("Closest existing files: tags.ts"))
        try scratch.write("bin.dat", Data([0x66, 0xFF, 0x0A]))
        let binary = await call("edit_file", ["path": "bin.dat", "old_string": "f", "new_string": "g"], in: session)
        #expect(binary.text.contains("not valid UTF-8"))
        #expect(try scratch.read("tags.ts") == before)
    }
}
