import Foundation
import TestSupport
import Testing

/// What real llama-server does that the OpenAI spec does not say, reproduced by the mock endpoint
/// (fixtures/endpoints/llama-quirks/ and competent-hello.yaml), and how toolhost handles each.
@Suite struct LlamaQuirksTests {
    func run(_ scratch: Scratch, _ mock: MockEndpointProcess, _ extra: [String]) async throws -> (ran: Ran, summary: [String: Any], events: [[String: Any]]) {
        let out = scratch.root + "/run-\(UUID().uuidString.prefix(6))"
        let ran = try await scratch.toolhost(
            ["run", "--endpoint", mock.url, "--workspace", scratch.workspace, "--state-dir", scratch.state, "--out", out, "--quiet"] + extra)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))) as? [String: Any])
        let events = try String(contentsOfFile: out + "/transcript.jsonl", encoding: .utf8).split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        return (ran, summary, events)
    }

    @Test func contextOverflowIsContextFullNotRetried() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, fixture: "llama-quirks/context-overflow.yaml")
        let (ran, summary, events) = try await run(scratch, mock, ["--prompt", "hello"])
        #expect(ran.status == 1)
        #expect(summary["stop_reason"] as? String == "context_full")
        #expect(summary["harness_error"] as? Bool == false)
        #expect((summary["error"] as? String ?? "").contains("431 prompt tokens for a context of 256"))
        #expect(events.filter { $0["event"] as? String == "retry" }.isEmpty)
    }

    /// The context filling while the model writes is the model's context, not the harness's fault.
    @Test func anOverflowMidStreamIsContextFullToo() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, fixture: "llama-quirks/context-overflow-mid-stream.yaml")
        let (ran, summary, _) = try await run(scratch, mock, ["--prompt", "hello"])
        #expect(ran.status == 1)
        #expect(summary["stop_reason"] as? String == "context_full", "\(summary)")
        #expect(summary["harness_error"] as? Bool == false)
    }

    @Test func toolsWithoutJinjaSayWhatToDoAndAreNotRetried() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, fixture: "llama-quirks/no-jinja.yaml")
        let (ran, summary, events) = try await run(scratch, mock, ["--prompt", "hello"])
        #expect(ran.status == 1)
        let error = summary["error"] as? String ?? ""
        #expect(error.contains("without --jinja") && error.contains("--constrain"), "\(error)")
        #expect(summary["harness_error"] as? Bool == true)
        #expect(events.filter { $0["event"] as? String == "retry" }.isEmpty)
    }

    @Test func aLoadingServerIsWaitedFor() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, fixture: "llama-quirks/loading.yaml")
        let (ran, summary, events) = try await run(scratch, mock, ["--prompt", "hello", "--model", "tiny"])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(summary["stop_reason"] as? String == "completed")
        let retries = events.filter { $0["event"] as? String == "retry" }
        #expect(!retries.isEmpty && retries.allSatisfy { ($0["reason"] as? String ?? "").contains("Loading model") })
    }

    @Test(arguments: [true, false]) func textPastTheTurnsEndIsDropped(streaming: Bool) async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, fixture: "llama-quirks/turn-markers.yaml")
        let (ran, summary, _) = try await run(scratch, mock, ["--prompt", "hello"] + (streaming ? [] : ["--no-stream"]))
        #expect(ran.status == 0)
        #expect(summary["stop_reason"] as? String == "completed")
        #expect(ran.stdout.hasPrefix("Done, nothing to do.\n"), "\(ran.stdout)")
        #expect(!ran.stdout.contains("<|im_"))
    }

    /// A constrained run against the mock in llama-server's clothes: the requests carry the reply
    /// schema and no `tools`, the replies are JSON text, the calls run, and tokens/s come from timings.
    /// A grammar keeps a reply valid, not short: constrained replies are capped unless the user
    /// sets a cap; unconstrained ones are not capped at all.
    @Test(arguments: [(["--constrain"], 2048), (["--constrain", "--max-reply-tokens", "100"], 100), (["--no-constrain"], 0)])
    func constrainedRepliesAreCappedByDefault(options: [String], maxTokens: Int) async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, script: """
            server: llama-server
            turns:
              - expect: {max_tokens: \(maxTokens)}
                reply: {text: "\(options.contains("--no-constrain") ? "done" : #"{\"final_answer\": \"done\"}"#)"}
            """)
        let (ran, summary, _) = try await run(scratch, mock, ["--prompt", "Say done."] + options)
        #expect(ran.status == 0, "\(ran.stdout)\n\(ran.stderr)")
        #expect(summary["stop_reason"] as? String == "completed", "\(summary)")
    }

    /// Under the grammar, a final answer whose text reads like a broken call (a tiny model copying
    /// a call into its answer) is an answer: no malformed call, no advice to write text calls.
    @Test func aConstrainedAnswerThatReadsLikeACallIsAnAnswer() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, script: #"""
            server: llama-server
            turns:
              - reply: {text: "{\"final_answer\": \"<tool_call>{\\\"name\\\": \\\"write_file\\\", \\\"arguments\\\": {\"}"}
            """#)
        let (ran, summary, events) = try await run(scratch, mock, ["--prompt", "Write a file.", "--constrain"])
        #expect(ran.status == 0, "\(ran.stdout)\n\(ran.stderr)")
        #expect(summary["malformed_calls"] as? Int == 0 && summary["stop_reason"] as? String == "completed", "\(summary)")
        #expect(!events.contains { ($0["text"] as? String ?? "").contains("<tool_call>{\"name\": \"TOOL\"") }, "no text-call advice under the grammar")
    }

    @Test func constrainedRunAgainstTheScriptedModel() async throws {
        let scratch = try Scratch()
        try await git("init", "-q", "-b", "main", in: scratch.workspace)
        try await git("-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "base", in: scratch.workspace)
        let fixture = try String(contentsOfFile: repositoryRoot + "/fixtures/endpoints/competent-hello.yaml", encoding: .utf8)
        // The same turns, each insisting on a constrained request without tools.
        let script = fixture.replacingOccurrences(of: "  - expect:\n", with: "  - expect:\n      constrained: true\n")
        let mock = try await MockEndpointProcess(scratch, script: script)
        let (ran, summary, events) = try await run(scratch, mock, ["--task", repositoryRoot + "/fixtures/tasks/hello-file.md", "--constrain"])
        #expect(ran.status == 0, "\(ran.stdout)\n\(ran.stderr)")
        #expect(summary["outcome"] as? String == "complete")
        #expect(summary["commits"] as? Int == 1)
        #expect(summary["well_formed_calls"] as? Int == 3 && summary["malformed_calls"] as? Int == 0)
        #expect(summary["tokens_per_second"] as? Double == 20)
        #expect(events.first { $0["event"] as? String == "start" }?["constrained"] as? Bool == true)
        #expect(try String(contentsOfFile: scratch.workspace + "/hello.txt", encoding: .utf8) == "hello from toolhost\n")
    }
}
