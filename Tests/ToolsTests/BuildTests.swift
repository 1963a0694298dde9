import Foundation
import Sandbox
import TestSupport
import Testing
@testable import Tools

/// The fixtures: real tsc and esbuild output from broken copies of fixtures/repos/blog.
let buildOutputs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/build-output")
let blogFixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("fixtures/repos/blog").path

@Suite struct BuildOutputParserTests {
    private func parse(_ name: String) throws -> [Diagnostic] {
        BuildOutput.diagnostics(in: try String(contentsOf: buildOutputs.appendingPathComponent(name), encoding: .utf8))
    }

    @Test func tscPlainAndPrettyGiveTheSameDiagnostics() async throws {
        let plain = try parse("tsc-plain.txt")
        let pretty = try parse("tsc-pretty.txt")
        #expect(plain.count == 4)
        #expect(plain == pretty, "ANSI colours and the pretty layout change nothing")
        #expect(plain[0] == Diagnostic(
            file: "src/app/admin/posts/page.ts", line: 2, column: 29, severity: "error", code: "TS2307",
            message: "Cannot find module '../../lib/posts' or its corresponding type declarations."))
        #expect(plain.map(\.code) == ["TS2307", "TS7006", "TS2305", "TS2345"])
    }

    @Test func esbuildColumnsBecomeOneBased() async throws {
        let diagnostics = try parse("esbuild.txt")
        #expect(diagnostics == [Diagnostic(file: "src/lib/bad.ts", line: 1, column: 24, severity: "error", code: nil, message: #"Unexpected ";""#)])
    }

    /// The formats quoted in the reference notes, one fixture each: (file, expected diagnostics as line1).
    static let quoted: [(String, [String])] = [
        ("next-type-error.txt", ["app/admin/tags/page.tsx:3:5 error: Argument of type 'Record<string, unknown>' is not assignable to parameter of type 'string | { content: string; }'."]),
        ("next-module-not-found.txt", ["app/admin/tags/page.tsx:1:1 error: Module not found: Can't resolve '../../../lib/tags'"]),
        ("turbopack.txt", ["app/admin/tags/page.tsx:2:1 error: Module not found: Can't resolve '../../../lib/tags'"]),
        ("next-eslint.txt", [
            "app/admin/tags/page.tsx:12:7 error @typescript-eslint/no-unused-vars: 'tags' is assigned a value but never used.",
            "app/admin/tags/page.tsx:20:3 warning react-hooks/exhaustive-deps: React Hook useEffect has a missing dependency: 'load'.",
        ]),
        ("webpack5.txt", ["src/index.js:1:1 error: Module not found: Can't resolve '../../package'"]),
        ("vite.txt", [
            #"src/main.ts:56:11 error: ERROR: Expected ";" but found "tags""#,
            "src/util.ts:1:1 error: Module not found: Can't resolve 'lodash-es'",
        ]),
        ("eslint-stylish.txt", [
            "src/lib/tags.ts:12:7 error no-unused-vars: 'unused' is assigned a value but never used",
            "src/lib/tags.ts:30:1 warning no-console: Unexpected console statement",
        ]),
    ]

    @Test(arguments: quoted) func quotedFormats(file: String, expected: [String]) async throws {
        let text = try String(contentsOf: buildOutputs.appendingPathComponent(file), encoding: .utf8)
        #expect(BuildOutput.diagnostics(in: text, project: "/work/app").map(\.line1) == expected)
    }

    @Test func tscDetailLinesStayWithTheirMessage() async throws {
        let diagnostics = try parse("tsc-continuation.txt")
        #expect(diagnostics.count == 1)
        #expect(diagnostics[0].message.hasSuffix("\nProperty 'content' is missing in type 'Record<string, unknown>' but required in type '{ content: string; }'."))
    }

    @Test func unknownOutputGivesNoDiagnostics() async {
        #expect(BuildOutput.diagnostics(in: "make: *** [all] Error 2\nsomething broke\n").isEmpty)
    }

    @Test func theFingerprintIgnoresLineMoves() async {
        let a = Diagnostic(file: "a.ts", line: 3, column: 1, severity: "error", code: "TS2307", message: "m")
        var b = a
        b.line = 9
        #expect(BuildOutput.fingerprint([a]) == BuildOutput.fingerprint([b]))
        b.message = "other"
        #expect(BuildOutput.fingerprint([a]) != BuildOutput.fingerprint([b]))
    }
}

/// Real builds of the fixture blog with Debian's tsc and esbuild, in the sandbox.
@Suite(.serialized) struct BuildToolTests {
    let scratch: Scratch
    let session: Session

    init() throws {
        scratch = try Scratch()
        for entry in try FileManager.default.contentsOfDirectory(atPath: blogFixture) where entry != "dist" {
            try FileManager.default.copyItem(atPath: blogFixture + "/" + entry, toPath: scratch.workspacePath + "/" + entry)
        }
        session = try scratch.session(profile: "build")
    }

    private func edit(_ file: String, _ old: String, _ new: String) throws {
        let text = try scratch.read(file)
        #expect(text.contains(old), "fixture changed: \(file) lacks \(old)")
        try scratch.write(file, text.replacingOccurrences(of: old, with: new))
    }

    @Test func theFixtureBuildsClean() async throws {
        let result = await call("build", [:], in: session)
        #expect(result.text.hasPrefix("PASSED"), "\(result.text)")
        #expect(result.structured?["errors"] == 0)
        #expect(FileManager.default.fileExists(atPath: scratch.workspacePath + "/dist/server.js"))
    }

    /// Models write the command for the script; it is read as the script, and said so.
    @Test func aScriptWrittenAsItsCommandIsRepaired() async throws {
        for written in ["npm run build", "npm run-script build", "pnpm run build", "yarn build"] {
            #expect(registry.repair("build", ["script": .string(written)]).arguments["script"] == "build", "\(written)")
        }
        #expect(registry.repair("build", ["script": "build"]).repairs.isEmpty)
        #expect(registry.repair("build", ["script": "npm run build && rm -rf /"]).repairs.isEmpty, "only one script name is read")
        let result = await call("build", ["script": "npm run build"], in: session)
        #expect(result.text.hasPrefix("PASSED"), "\(result.text)")
    }

    /// A passing build broken by the next change: the failure names the undo that goes back.
    @Test func aBrokenPassingBuildNamesTheUndo() async throws {
        #expect(await call("build", [:], in: session).text.hasPrefix("PASSED"))
        let good = try scratch.read("src/lib/posts.ts")
        let broke = await call("edit_file", ["path": "src/lib/posts.ts", "old_string": "stringify(post.body, data)", "new_string": "stringify(data, post.body)"], in: session)
        #expect(!broke.isError, "\(broke.text)")
        let failed = await call("build", [:], in: session)
        let undo = try #require(failed.text.firstMatch(of: #/undo \{"to": (\d+)\}/#), "\(failed.text)")
        _ = await call("undo", ["to": .int(Int(undo.output.1)!)], in: session)
        #expect(try scratch.read("src/lib/posts.ts") == good)
        #expect(await call("build", [:], in: session).text.hasPrefix("PASSED"))
    }

    @Test func brokenCopiesGetTheFixInTheirHints() async throws {
        try edit("src/app/admin/posts/page.ts", #""../../../lib/posts""#, #""../../lib/posts""#)
        try edit("src/lib/posts.ts", "stringify(post.body, data)", "stringify(data, post.body)")
        try edit("src/app/tags/page.ts", "import { getAllTags } from", "import { getAllTags, getTags } from")
        let result = await call("build", [:], in: session)
        #expect(result.text.hasPrefix("FAILED"))
        #expect(result.text.contains(
            "src/app/admin/posts/page.ts:2:29 error TS2307: Cannot find module '../../lib/posts' or its corresponding type declarations.\n"
                + "  hint: the file is src/lib/posts.ts: import it as '../../../lib/posts' (or '@/lib/posts')"), "\(result.text)")
        #expect(result.text.contains("  hint: matter declares: export function stringify(content: string, data: object): string"))
        #expect(result.text.contains("  hint: @/lib/posts exports: Post, getAllPosts, getAllTags, savePost"))
        #expect(!result.text.contains("The same"))

        let again = await call("build", [:], in: session)
        #expect(again.text.contains("(attempt 2)"))
        #expect(again.text.contains("The same 4 errors as the previous build (first seen at attempt 1)"))
        #expect(again.structured?["same_as_attempt"] == 1)

        try edit("src/app/tags/page.ts", "import { getAllTags, getTags } from", "import { getAllTags } from")
        let changed = await call("build", [:], in: session)
        #expect(!changed.text.contains("The same"), "a different error set is not a repeat")
    }

    @Test func buildsRunUnderTheBuildProfile() async throws {
        let state = StateDirectory(scratch.statePath)
        let workspace = try scratch.workspace
        let session = try Session(
            name: "profiles", workspace: workspace, state: state,
            runner: ConfinedRunner(
                profile: SandboxProfile.load("default"), workspace: workspace.root, stateDirectory: scratch.statePath,
                host: ProcessInfo.processInfo.environment, mechanisms: machineMechanisms),
            makeProfileRunner: { profile in
                try ConfinedRunner(
                    profile: SandboxProfile.load(profile), workspace: workspace.root, stateDirectory: state.path,
                    host: ProcessInfo.processInfo.environment, mechanisms: machineMechanisms)
            })
        try edit("package.json", #""typecheck": "tsc -p .","#, #""typecheck": "tsc -p .", "limits": "echo memory=$(ulimit -v); exit 1","#)
        let result = await call("build", ["script": "limits"], in: session)
        #expect(result.text.contains("memory=\(8192 * 1024)"), "the build profile's 8 GiB, not the default's 4: \(result.text)")
        let shell = await call("execute", ["command": "ulimit -v"], in: session)
        #expect(shell.text.hasPrefix("\(4096 * 1024)\n"))
        await session.close()
    }

    @Test func aTypeErrorInATSXFileIsReported() async throws {
        try edit("src/app/admin/TagTable.tsx", "<td>{row.count}</td>", "<td>{row.total}</td>")
        let result = await call("build", [:], in: session)
        #expect(result.text.contains("src/app/admin/TagTable.tsx:14:40 error TS2339: Property 'total' does not exist on type 'TagRow'."), "\(result.text)")
    }

    @Test func anEsbuildSyntaxErrorIsLocated() async throws {
        try scratch.write("src/lib/bad.ts", "export const broken = (;\n")
        try edit("src/server.ts", #"import { createServer } from "http";"#, "import \"@/lib/bad\";\nimport { createServer } from \"http\";")
        let result = await call("build", ["script": "bundle"], in: session)
        #expect(result.text.contains(#"src/lib/bad.ts:1:24 error: Unexpected ";""#), "\(result.text)")
    }

    @Test func badRequestsAndHangsGiveClearResults() async throws {
        let missingScript = await call("build", ["script": "deploy"], in: session)
        #expect(missingScript.error == .usage)
        #expect(missingScript.text.contains("has no script 'deploy'. Its scripts: build ("))

        try FileManager.default.createDirectory(atPath: scratch.workspacePath + "/empty", withIntermediateDirectories: true)
        let noPackage = await call("build", ["directory": "empty"], in: session)
        #expect(noPackage.text.contains("there is no package.json in empty"))

        // A build that hangs past the profile's wall time: a profile file with a short one.
        var profile = try String(contentsOfFile: blogFixture + "/../../../sandbox-profiles/build.json", encoding: .utf8)
        profile = profile.replacingOccurrences(of: #""wall_seconds": 600"#, with: #""wall_seconds": 2"#)
        let profilePath = scratch.root + "/quick.json"
        try profile.write(toFile: profilePath, atomically: true, encoding: .utf8)
        let duration = uniqueSleep()
        try edit("package.json", #""typecheck": "tsc -p .","#, #""typecheck": "tsc -p .", "hang": "sleep \#(duration)","#)
        let quick = try scratch.session("quick", profile: profilePath, ownProfileOnly: true)
        let hung = await call("build", ["script": "hang"], in: quick)
        #expect(hung.text.hasPrefix("FAILED"))
        #expect(hung.text.contains("Timed out after 2 s"))
        #expect(await allGone(withArgument: duration), "no process is left")
    }
}
