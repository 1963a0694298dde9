import Foundation
import TestSupport
import Testing
@testable import Tools

/// grep and glob on a small tree with what real projects hold: .gitignore files (nested, with
/// negation), node_modules, a .git folder, a binary file, a minified bundle, symlinks out.
@Suite struct SearchToolTests {
    let scratch: Scratch
    let session: Session

    init() throws {
        scratch = try Scratch()
        try scratch.write(".gitignore", "node_modules/\n*.log\n!keep.log\n/dist\n")
        try scratch.write("src/lib/posts.ts", "export function getAllPosts(): Post[] {\n  return [];\n}\n\nexport function getPost(slug: string) {\n  return getAllPosts().find((p) => p.slug === slug);\n}\n")
        try scratch.write("src/app/page.tsx", "import { getAllPosts } from \"@/lib/posts\";\nconst Posts = getAllPosts();\n")
        try scratch.write("src/app/.gitignore", "generated.ts\n")
        try scratch.write("src/app/generated.ts", "getAllPosts();\n")
        try scratch.write("node_modules/pkg/index.js", "function getAllPosts() {}\n")
        try scratch.write("dist/server.js", "getAllPosts();\n")
        try scratch.write("src/dist/keep.ts", "getAllPosts(); // /dist is anchored: this folder is not ignored\n")
        try scratch.write("debug.log", "getAllPosts failed\n")
        try scratch.write("keep.log", "getAllPosts kept\n")
        try scratch.write(".git/HEAD", "getAllPosts in git\n")
        try scratch.write("public/bundle.min.js", String(repeating: "var a=1;", count: 2000) + "getAllPosts()" + String(repeating: ";b=2", count: 2000) + "\n")
        try Data([0, 1, 2] + Array("getAllPosts".utf8)).write(to: URL(fileURLWithPath: scratch.workspacePath + "/image.bin"))
        try FileManager.default.createSymbolicLink(atPath: scratch.workspacePath + "/etc-link", withDestinationPath: "/etc")
        try FileManager.default.createSymbolicLink(atPath: scratch.workspacePath + "/passwd", withDestinationPath: "/etc/passwd")
        session = try scratch.session()
    }

    @Test func grepGroupsLinesByFileAndLeavesOutWhatGitIgnores() async throws {
        let result = await call("grep", ["pattern": "getAllPosts"], in: session)
        #expect(!result.isError, "\(result.text)")
        #expect(result.text.hasPrefix("keep.log\n1: getAllPosts kept\n\npublic/bundle.min.js\n"), "\(result.text)")
        #expect(result.text.contains("src/lib/posts.ts\n1: export function getAllPosts(): Post[] {\n6:   return getAllPosts().find((p) => p.slug === slug);"))
        #expect(result.text.contains("src/dist/keep.ts\n1: "))
        for ignored in ["node_modules", "dist/server.js\n", "debug.log", ".git/HEAD", "generated.ts", "image.bin"] {
            #expect(!result.text.contains(ignored), "\(ignored) should be left out")
        }
        #expect(result.structured?["matches"] == 7 && result.structured?["files"] == 5, "\(result.text)")
        // The minified line is a window around the match, not its first 200 characters.
        let bundle = try #require(result.text.split(separator: "\n").first { $0.hasPrefix("1: …") })
        #expect(bundle.contains("getAllPosts()") && bundle.count < 220)
        let everything = await call("grep", ["pattern": "getAllPosts", "include_ignored": true], in: session)
        #expect(everything.text.contains("node_modules/pkg/index.js") && everything.text.contains("debug.log") && !everything.text.contains(".git/HEAD"))
    }

    @Test func pagesFiltersAndPatternKinds() async throws {
        let first = await call("grep", ["pattern": "getAllPosts", "limit": 2], in: session)
        #expect(first.structured?["returned"] == 2 && first.structured?["next_offset"] == 3)
        #expect(first.text.contains("(1-2 shown). For more, call grep again with offset=3"))
        let second = await call("grep", ["pattern": "getAllPosts", "limit": 2, "offset": 3], in: session)
        #expect(second.structured?["returned"] == 2 && !second.text.contains("keep.log"))
        let typed = await call("grep", ["pattern": "getallposts\\(\\)", "glob": "*.tsx", "case_insensitive": true], in: session)
        #expect(typed.structured?["matches"] == 1 && typed.text.hasPrefix("src/app/page.tsx\n2: const Posts = getAllPosts();"), "\(typed.text)")
        let fixed = await call("grep", ["pattern": "getAllPosts().find(", "fixed_strings": true], in: session)
        #expect(fixed.structured?["matches"] == 1)
        let regex = await call("grep", ["pattern": "function \\w+\\(slug", "path": "src"], in: session)
        #expect(regex.text.contains("5: export function getPost(slug: string) {") && regex.structured?["matches"] == 1)
        let oneFile = await call("grep", ["pattern": "return", "path": "src/lib/posts.ts"], in: session)
        #expect(oneFile.structured?["matches"] == 2)
        let bad = await call("grep", ["pattern": "getAllPosts("], in: session)
        #expect(bad.isError && bad.text.contains("fixed_strings"), "\(bad.text)")
        let none = await call("grep", ["pattern": "nothing-like-this"], in: session)
        #expect(!none.isError && none.text.hasPrefix("No line matches nothing-like-this in the workspace"))
    }

    @Test func symlinksAndPathsOutsideAreNotFollowed() async throws {
        let root = await call("grep", ["pattern": "root:", "include_ignored": true], in: session)
        #expect(root.structured?["matches"] == 0, "\(root.text)")
        let through = await call("grep", ["pattern": "root", "path": "etc-link"], in: session)
        #expect(through.isError)
        let above = await call("glob", ["pattern": "*", "path": "../"], in: session)
        #expect(above.isError)
        let listing = await call("glob", ["pattern": "**", "include_ignored": true], in: session)
        #expect(!listing.text.contains("etc-link") && !listing.text.contains("passwd"))
    }

    @Test func globMatchesNamesAnywhereAndPathsFromTheFolder() async throws {
        let ts = await call("glob", ["pattern": "*.ts"], in: session)
        #expect(ts.structured?["files"] == ["src/dist/keep.ts", "src/lib/posts.ts"], "\(ts.text)")
        let deep = await call("glob", ["pattern": "app/*.tsx", "path": "src"], in: session)
        #expect(deep.structured?["files"] == ["src/app/page.tsx"])
        let all = await call("glob", ["pattern": "**/*", "limit": 3], in: session)
        #expect(all.structured?["next_offset"] == 4 && all.text.contains("For more, call glob again with offset=4"))
        let none = await call("glob", ["pattern": "*.py"], in: session)
        #expect(none.text.hasPrefix("0 files match *.py in the workspace."))
        let file = await call("glob", ["pattern": "*", "path": "keep.log"], in: session)
        #expect(file.isError && file.text.contains("give a folder"))
    }

    /// A tree big enough that worker threads read and scan its files: the results keep the
    /// walk's name order, and pages stay put.
    @Test func aBigTreeIsScannedInWalkOrderOnEveryCore() async throws {
        var expected: [String] = []
        for folder in 0..<12 {
            for file in 0..<40 {
                let path = String(format: "big/f%02d/n%03d.ts", folder, file)
                try scratch.write(path, "const a = 1;\nexport const needle\(folder)_\(file) = \(file);\n")
                expected.append(path)
            }
        }
        expected.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let all = await call("grep", ["pattern": "needle", "path": "big", "limit": 1000], in: session)
        #expect(all.structured?["matches"] == 480 && all.structured?["searched"] == 480, "\(all.text.suffix(300))")
        let shown = all.text.split(separator: "\n").filter { $0.hasPrefix("big/") }.map(String.init)
        #expect(shown == expected)
        for (index, path) in expected.enumerated() where index % 97 == 0 {
            let page = await call("grep", ["pattern": "needle\\d+_\\d+ =", "path": "big", "limit": 1, "offset": .int(index + 1)], in: session)
            #expect(page.text.hasPrefix(path + "\n2: export const needle"), "offset \(index + 1): \(page.text.prefix(200))")
        }
    }

    /// A pattern runs on the few lines that hold its literal, or over a file whose lines mostly
    /// do: both give the same lines, numbers and windows, one per line, as grep gives them.
    @Test func sparseAndDenseFilesMatchTheSameLines() throws {
        let matcher = try LineMatcher("function \\w+Options\\(", fixed: false, ignoreCase: false)
        let lines = ["const a = 1;", "export function makeOptions(x) { return makeOptions(x) }", "function ok() {}", "  function buildOptions(", "function\nnoOptions("]
        let dense = Array(lines.joined(separator: "\n").utf8)
        let sparse = Array((Array(repeating: "filler line without the word", count: 400) + lines).joined(separator: "\n").utf8)
        let expected = [(2, lines[1]), (4, lines[3])]
        #expect(matcher.lines(in: dense).map(\.0) == expected.map(\.0), "\(matcher.lines(in: dense))")
        #expect(matcher.lines(in: dense).map(\.1) == expected.map(\.1))
        #expect(matcher.lines(in: sparse).map(\.0) == expected.map { $0.0 + 400 }, "\(matcher.lines(in: sparse))")
        #expect(matcher.lines(in: sparse).map(\.1) == expected.map(\.1))
        // "function\nnoOptions(" matches only across its newline, which is no line's match.
        let insensitive = try LineMatcher("FUNCTION\\s+(make|no)", fixed: false, ignoreCase: true)
        #expect(insensitive.lines(in: sparse).map(\.0) == [402])
        #expect(insensitive.lines(in: dense).map(\.0) == [2])
    }

    @Test func theRequiredLiteralIsOneEveryMatchHas() {
        #expect(LineMatcher.requiredLiteral("function \\w+\\(slug") == "function ", "f is rarer than anything in slug")
        #expect(LineMatcher.requiredLiteral("colou?r") == "colo")
        #expect(LineMatcher.requiredLiteral("a|b") == "")
        #expect(LineMatcher.requiredLiteral("import .* from ['\"]@/lib") == "@/lib")
        #expect(LineMatcher.requiredLiteral("get(All)?Posts") == "Posts")
        #expect(LineMatcher.requiredLiteral("x{2,3}yz\\.ts") == "yz.ts")
    }
}
