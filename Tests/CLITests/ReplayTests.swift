import Foundation
import TestSupport
import Testing

/// Scripted replays of the showdown's failure patterns (fixtures/endpoints/replays): each is
/// caught within three repeats with its note or stop, and with the guardrails off the replay
/// runs on to its budget.
@Suite struct ReplayTests {
    func replay(_ script: String, in scratch: Scratch, _ flags: [String]) async throws -> AgentRun {
        let mock = try await MockEndpointProcess(scratch, fixture: "replays/\(script)")
        return try await scratch.agent(mock.url, flags, prompt: "Do the task.")
    }

    func notes(_ run: AgentRun) throws -> [(turn: Int, text: String)] {
        try run.events.filter { $0["event"] as? String == "note" }.map { ($0["turn"] as? Int ?? 0, $0["text"] as? String ?? "") }
    }

    @Test(arguments: [true, false])
    func cwdAmnesia(guarded: Bool) async throws {
        let scratch = try Scratch()
        try scratch.write("src/index.ts", "export {}\n")
        let run = try await replay("cwd-amnesia.yaml", in: scratch, guarded ? [] : ["--no-guards", "--max-tool-calls", "7"])
        let results = try run.events.filter { $0["event"] as? String == "tool_result" }.compactMap { $0["content"] as? String }
        #expect(results.dropFirst().allSatisfy { $0.hasPrefix(scratch.workspace + "/src\n") }, "the cwd persisted: \(results)")
        let summary = try run.summary
        if guarded {
            let said = try notes(run)
            // Turn 4 is the third identical pwd.
            #expect(said.first?.turn == 4 && said.first?.text.contains("with the same arguments 3 times") == true, "\(said)")
            #expect(summary["stop_reason"] as? String == "loop")
            #expect(summary["tool_calls"] as? Int == 6)
            #expect((summary["loops"] as? Int ?? 0) >= 1)
        } else {
            #expect(try notes(run).isEmpty)
            #expect(summary["stop_reason"] as? String == "budget_tool_calls")
        }
    }

    static let buildLoops: [(name: String, file: String, old: String, new: String, hint: String)] = [
        ("off-by-one import", "src/app/admin/posts/page.ts", #""../../../lib/posts""#, #""../../lib/posts""#, "import it as '../../../lib/posts'"),
        ("reversed arguments", "src/lib/posts.ts", "stringify(post.body, data)", "stringify(data, post.body)", "stringify(content: string, data: object)"),
    ]

    @Test(arguments: buildLoops.map(\.name), [true, false])
    func buildLoop(name: String, guarded: Bool) async throws {
        let loop = Self.buildLoops.first { $0.name == name }!
        let scratch = try Scratch()
        for entry in try FileManager.default.contentsOfDirectory(atPath: repositoryRoot + "/fixtures/repos/blog") where entry != "dist" {
            try FileManager.default.copyItem(atPath: repositoryRoot + "/fixtures/repos/blog/" + entry, toPath: scratch.workspace + "/" + entry)
        }
        let path = scratch.workspace + "/" + loop.file
        let source = try String(contentsOfFile: path, encoding: .utf8)
        #expect(source.contains(loop.old))
        try source.replacingOccurrences(of: loop.old, with: loop.new).write(toFile: path, atomically: true, encoding: .utf8)
        let run = try await replay("build-loop.yaml", in: scratch, ["--max-tool-calls", "5"] + (guarded ? [] : ["--no-guards"]))
        let summary = try run.summary
        #expect(summary["stop_reason"] as? String == "budget_tool_calls")
        #expect((summary["builds"] as? [String: Any])?["attempts"] as? Int == 3)
        let said = try notes(run)
        if guarded {
            // The second identical build (turn 3) already brings the hint back.
            let note = try #require(said.first, "no note")
            #expect(note.turn == 3)
            #expect(note.text.contains("The last 2 builds failed with the same errors") && note.text.contains(loop.hint), "\(note.text)")
            #expect((summary["loops"] as? Int ?? 0) >= 1)
        } else {
            #expect(said.isEmpty)
        }
    }

    @Test(arguments: [true, false])
    func twentySixRepeatedLines(guarded: Bool) async throws {
        let scratch = try Scratch()
        let run = try await replay("repeated-lines.yaml", in: scratch, guarded ? [] : ["--no-guards"])
        let summary = try run.summary
        #expect(summary["stop_reason"] as? String == "completed")
        let first = try #require(try run.events.first { $0["event"] as? String == "assistant" }?["text"] as? String)
        let repeats = first.components(separatedBy: "I will now fix the import in the tags page.\n").count - 1
        if guarded {
            #expect(repeats == 3, "the stream was cut at the third repeat: \(repeats)")
            let cut = try #require(try run.events.first { $0["event"] as? String == "cut" })
            #expect(cut["count"] as? Int == 3)
            #expect(try notes(run).first?.text.contains("repeated the line") == true)
            #expect(summary["loops"] as? Int == 1)
        } else {
            #expect(repeats == 26)
            #expect(summary["loops"] as? Int == 0)
        }
    }

    /// Degenerate text every turn, with and without newlines: one note, then the run stops by
    /// itself (the seed's author had to type "stop"); streamed and whole alike.
    @Test(arguments: ["degenerate-every-turn.yaml", "degenerate-no-newlines.yaml"], [true, false])
    func degenerateTextEndsTheRun(fixture: String, stream: Bool) async throws {
        let scratch = try Scratch()
        let run = try await replay(fixture, in: scratch, ["--max-turns", "20"] + (stream ? [] : ["--no-stream"]))
        let summary = try run.summary
        #expect(summary["stop_reason"] as? String == "degenerate_text", "\(summary)")
        #expect(summary["turns"] as? Int == 2)
        #expect(try notes(run).filter { $0.text.contains("repeated the line") }.count == 1)
        let cuts = try run.events.filter { $0["event"] as? String == "cut" }
        #expect(cuts.count == 2)
        if stream {
            // The generation was cut as it came: the rest was never read.
            let first = try #require(try run.events.first { $0["event"] as? String == "assistant" }?["text"] as? String)
            #expect(first.count < 400, "\(first.count) characters read")
        }
        let start = try #require(try run.events.first { $0["event"] as? String == "start" })
        #expect((start["guardrails"] as? [String: Any])?["degenerate_notes"] as? Int == 1)
    }

    /// A sentence said twice, or a line of markup on every call, is no loop: nothing is cut.
    @Test(arguments: [true, false])
    func legitimateRepeatsAreNotCut(stream: Bool) async throws {
        let scratch = try Scratch()
        let twice = String(repeating: "The tags page lists every tag with its count.\\n", count: 2)
        let mock = try await MockEndpointProcess(scratch, script: """
            turns:
              - reply: {text: "\(twice)Done.", chunk_size: 5}
            """)
        let run = try await scratch.agent(mock.url, stream ? [] : ["--no-stream"])
        let summary = try run.summary
        #expect(summary["stop_reason"] as? String == "completed")
        #expect(summary["loops"] as? Int == 0)
        #expect(run.ran.stdout.contains("with its count.\nThe tags page lists every tag with its count.\nDone."))
    }

    @Test(arguments: [true, false])
    func aPassingBuildNeverCommitted(guarded: Bool) async throws {
        let scratch = try Scratch()
        try await git("init", "-q", "-b", "main", in: scratch.workspace)
        try await git("config", "user.name", "T", in: scratch.workspace)
        try await git("config", "user.email", "t@example.com", in: scratch.workspace)
        try scratch.write("package.json", #"{"name": "app", "scripts": {"build": "echo built"}}"# + "\n")
        try await git("add", ".", in: scratch.workspace)
        try await git("commit", "-qm", "init", in: scratch.workspace)
        let run = try await replay("screenshot-yak-shave.yaml", in: scratch, ["--max-tool-calls", "8"] + (guarded ? [] : ["--no-guards"]))
        let summary = try run.summary
        #expect(summary["stop_reason"] as? String == "budget_tool_calls")
        #expect((summary["builds"] as? [String: Any])?["passed"] as? Bool == true)
        #expect(summary["commits"] as? Int == 0)
        let said = try notes(run)
        if guarded {
            #expect(said.first?.turn == 2 && said.first?.text.contains("The build passes and 1 changed file is uncommitted: commit now") == true, "\(said)")
            #expect(said.contains { $0.turn == 5 && $0.text.contains("still uncommitted after 3 more calls") }, "\(said)")
            #expect(said.contains { $0.text.contains("80% of the tool-call budget is spent (7 of 8)") }, "\(said)")
        } else {
            #expect(said.isEmpty)
        }
    }

    @Test func withTheTextCallGuardOffAnUnparseableCallEndsTheRun() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, fixture: "personas/devstral.yaml")
        let run = try await scratch.agent(mock.url, ["--no-guard", "text-calls"], prompt: "Create notes/a.txt containing alpha, then read it back with read_file.")
        let summary = try run.summary
        #expect(summary["stop_reason"] as? String == "completed")
        #expect(summary["notes"] as? Int == 0)
    }

    /// A 150-message run against a server with an 8K context (the mock answers /props and refuses
    /// a longer prompt as llama-server does): without the condenser it ends context_full; with
    /// it (at half the context /props gives) it completes and no request passes half the context.
    @Test func aLongRunStaysUnderHalfItsContext() async throws {
        let scratch = try Scratch()
        let page = String(repeating: "Notes on the blog's admin pages and their tags. ", count: 30)
        var turns = ""
        for file in 1...75 {
            try scratch.write("docs/f\(file).md", "# f\(file)\n" + page + "\n")
            turns += "  - reply: {tool_calls: [{name: read_file, arguments: {path: docs/f\(file).md}}]}\n"
        }
        let script = "server: llama-server\ncontext_size: 8192\nrepeats: true\nturns:\n" + turns + "  - reply: {text: \"Read them all.\"}\n"
        let unbounded = try await MockEndpointProcess(scratch, script: script)
        let full = try await scratch.agent(unbounded.url, ["--condense-at", "0"], prompt: "Read every file under docs.")
        #expect(try full.summary["stop_reason"] as? String == "context_full", "\(full.ran.stderr)")

        let record = scratch.root + "/requests"
        try FileManager.default.createDirectory(atPath: record, withIntermediateDirectories: true)
        let mock = try await MockEndpointProcess(scratch, script: script, record: record)
        let run = try await scratch.agent(mock.url, [], prompt: "Read every file under docs.")
        #expect(run.ran.status == 0, "\(run.ran.stderr)")
        let stop = try run.summary["stop_reason"] as? String
        #expect(stop == "completed", "stopped: \(stop ?? "-")")
        let sizes = try FileManager.default.contentsOfDirectory(atPath: record).map { try Data(contentsOf: URL(fileURLWithPath: record + "/" + $0)).count / 4 }
        #expect(sizes.count == 76)
        let largest = sizes.max() ?? 0
        #expect(largest <= 4096, "the largest request")
        let last = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: record + "/request-076.json"))) as! [String: Any]
        let kept = (last["messages"] as! [Any]).count
        #expect(kept <= 20, "the oldest turns were folded")
        #expect(try run.events.contains { $0["event"] as? String == "condensed" })
        let whole = try run.events.filter { $0["event"] as? String == "tool_result" }
        #expect(whole.count == 75 && whole.allSatisfy { ($0["content"] as? String ?? "").contains("Notes on the blog") }, "the transcript keeps every result whole")
    }
}
