import Foundation
import TestSupport
import Testing

/// toolhost against a real llama-server with real tiny models (SmolLM2-135M, Gemma 3 270M), built
/// and fetched by scripts/setup.sh into a cache outside the repository. Serialized: two cores
/// hold one model server at a time. Rough times on 2 cores are in each test's comment.
@Suite(.serialized) struct RealModelTests {
    /// The binary and SmolLM2, or a recorded failure: setup provides both, so missing is a defect.
    func smol() throws -> (binary: String, model: String) {
        (try #require(LlamaServer.binary, "scripts/setup.sh builds llama-server"), try #require(LlamaServer.smolModel, "scripts/setup.sh fetches SmolLM2"))
    }

    func json(_ path: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    func events(_ runFolder: String) throws -> [[String: Any]] {
        try String(contentsOfFile: runFolder + "/transcript.jsonl", encoding: .utf8).split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// Checks a constrained run's promise: every call that ended is one something can run. The
    /// grammar makes every finished reply a runnable call or an answer; only a reply cut at the
    /// token limit can be a fragment. Each cut is noted, except the third in a row, which ends the
    /// run as reply_cut instead. What the model chose is not checked: the prompt holds the
    /// workspace's random path, so even a seeded tiny model chooses differently from run to run.
    func expectOnlyCutRepliesMalformed(_ runFolder: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let summary = try json(runFolder + "/summary.json")
        let noted = try events(runFolder).filter { ($0["text"] as? String ?? "").contains("cut at the token limit") }.count
        let cut = noted + (summary["stop_reason"] as? String == "reply_cut" ? 1 : 0)
        #expect(summary["constrained"] as? Bool == true, sourceLocation: sourceLocation)
        #expect(summary["well_formed_calls"] as? Int == summary["tool_calls"] as? Int, "\(summary)", sourceLocation: sourceLocation)
        #expect((summary["malformed_calls"] as? Int ?? 99) <= cut, "\(summary)", sourceLocation: sourceLocation)
        #expect(summary["harness_error"] as? Bool == false, "\(summary)", sourceLocation: sourceLocation)
    }

    /// Checks what toolhost said to a constrained run with `offered` tools: no advice the grammar
    /// forbids (a call written as text), no placeholder to copy, no tool that was not offered; and
    /// the summary counts every reply that came back cut.
    func expectNotesFitTheRun(_ runFolder: String, offered: Set<String>, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let events = try events(runFolder)
        // Tool names that are not also plain words; "push" stands for git_push's work.
        let unoffered = ["edit_file", "list_files", "git_status", "git_diff", "git_branch", "git_push", "push"].filter { !offered.contains($0) && !offered.contains("git_" + $0) }
        for note in events where note["event"] as? String == "note" && note["source"] as? String == "host" {
            let text = note["text"] as? String ?? ""
            #expect(!text.contains("<tool_call>") && !text.contains("call tools through the API"), "advice the grammar forbids: \(text)", sourceLocation: sourceLocation)
            #expect(!text.contains("{...}") && !text.contains("\"TOOL\""), "a placeholder: \(text)", sourceLocation: sourceLocation)
            #expect(unoffered.allSatisfy { !text.contains($0) }, "a tool not offered: \(text)", sourceLocation: sourceLocation)
        }
        // Cut at the token limit or by toolhost's repeated-item stop; and the reply a minutes budget
        // ran out on, which never came back (so it has no assistant event).
        let reasons = events.filter { $0["event"] as? String == "assistant" }.map { $0["finish_reason"] as? String ?? "none" }
        let summary = try json(runFolder + "/summary.json")
        let cut = reasons.filter { ["length", "cut_by_toolhost"].contains($0) }.count
        let counted = summary["cut_replies"] as? Int ?? -1
        let byBudget = summary["stop_reason"] as? String == "budget_minutes" ? 1 : 0
        #expect(counted >= cut && counted <= cut + byBudget, "cut_replies \(counted); replies ended by \(reasons); stop \(summary["stop_reason"] ?? "")", sourceLocation: sourceLocation)
    }

    /// ~70 s. SmolLM2's chat template renders no tools (llama-server's /props says so, and the
    /// probe with it). With --jinja the model calls no tools of its own, but under the grammar its calls are
    /// well-formed; without --jinja the server refuses `tools` (HTTP 500, not retried), and the
    /// constrained pass, which sends none, still works. Either way `run` then constrains by itself.
    @Test func probeWithAndWithoutJinja() async throws {
        let (binary, model) = try smol()
        let scratch = try Scratch()
        for jinja in [true, false] {
            let server = try await LlamaServer(binary: binary, model: model, extra: [jinja ? "--jinja" : "--no-jinja"])
            defer { server.stop() }
            let ran = try await scratch.toolhost(["probe", "--endpoint", server.base, "--json", "--max-reply-tokens", "160", "--state-dir", scratch.state])
            // Parsed without throwing, so that a probe that printed no report says why (its status and stderr).
            let parsed = try? JSONSerialization.jsonObject(with: Data(ran.stdout.utf8))
            let report = try #require(parsed as? [String: Any], "probe exited \(ran.status) with no report; jinja \(jinja); stdout: \(ran.stdout)\nstderr: \(ran.stderr)")
            #expect(report["format"] as? String == "toolhost-probe/1")
            #expect(report["model"] as? String == model, "the model comes from /v1/models")
            let checks = try #require(report["checks"] as? [[String: Any]])
            #expect(checks.count == 12)
            let constrained = try #require(report["constrained_checks"] as? [[String: Any]])
            #expect(constrained.count == 10)
            let plain = try #require(report["well_formed"] as? [String: Any]), shaped = try #require(report["well_formed_constrained"] as? [String: Any])
            #expect(plain["of"] as? Int == 9 && shaped["of"] as? Int == 9)
            #expect((shaped["calls"] as? Int ?? 0) >= 7, "the grammar makes the calls well-formed: \(shaped)")
            #expect((shaped["calls"] as? Int ?? 0) > (plain["calls"] as? Int ?? 9))
            let notes = report["notes"] as? [String] ?? []
            // SmolLM2's template ignores tools: /props says so, and so does the probe.
            #expect(report["template_shows_tools"] as? Bool == false)
            #expect(notes.contains { $0.contains("does not render tools") }, "\(notes)")
            if jinja {
                #expect(notes.count == 1, "\(notes)")
                #expect(checks.first { $0["name"] as? String == "usage" }?["result"] as? String == "pass")
            } else {
                #expect(notes.contains { $0.contains("without --jinja") }, "\(notes)")
                let bare = try #require(checks.first { $0["name"] as? String == "bare_call" })
                #expect((bare["detail"] as? String ?? "").contains("--jinja"))
            }
            // Usable through constraint: exit 0, and the verdict says how.
            #expect(report["kind"] as? String == "constrained", "\(report["verdict"] ?? "")")
            #expect(ran.status == 0)
            // run reads the saved probe and constrains by itself, saying so.
            let out = scratch.root + "/run-\(jinja)"
            let run = try await scratch.toolhost(
                ["run", "--endpoint", server.base, "--workspace", scratch.workspace, "--state-dir", scratch.state, "--out", out, "--quiet",
                 "--prompt", "Read the file notes.txt.", "--tools", "read_file", "--max-tool-calls", "1", "--max-reply-tokens", "100"])
            #expect(run.stderr.contains("constraining replies with the server's grammar"), "\(run.stderr)")
            #expect(try json(out + "/summary.json")["constrained"] as? Bool == true)
        }
    }

    /// ~60 s. A constrained run, streamed and whole over TCP, and streamed over a unix socket: every
    /// call the model makes is one something can run, the speed comes from llama-server's timings,
    /// the model from /v1/models.
    @Test(arguments: [(true, false), (false, false), (true, true)]) func constrainedRun(streaming: Bool, overASocket: Bool) async throws {
        let (binary, model) = try smol()
        let scratch = try Scratch()
        let server = try await LlamaServer(binary: binary, model: model, context: 8192, socket: overASocket ? scratch.root + "/llama.sock" : nil)
        #expect(server.base.hasPrefix(overASocket ? "unix:/" : "http://"))
        defer { server.stop() }
        let out = scratch.root + "/run"
        let ran = try await scratch.toolhost(
            ["run", "--endpoint", server.base, "--workspace", scratch.workspace, "--state-dir", scratch.state, "--out", out, "--quiet",
             "--prompt", "Create the file hello.txt containing the line: hello from toolhost. Then read it back with read_file.",
             "--constrain", "--tools", "write_file,read_file", "--max-tool-calls", "3", "--max-reply-tokens", "200"]
                + (streaming ? [] : ["--no-stream"]))
        let summary = try json(out + "/summary.json")
        #expect(summary["model"] as? String == model)
        // In CI SmolLM2 has answered at once, written a file body cut at the limit, and been cut
        // three times in a row: all of them are the model's choices, none a call nothing can run.
        try expectOnlyCutRepliesMalformed(out)
        // llama-server's usage and timings come at a stream's end: a reply toolhost stopped itself
        // (degenerate text, as SmolLM2 once wrote) has neither, and the summary says it estimated.
        let usages = try events(out).filter { $0["event"] as? String == "usage" }
        if !usages.isEmpty && usages.allSatisfy({ $0["estimated"] as? Bool == false }) {
            #expect((summary["tokens_per_second"] as? Double ?? 0) > 0)
            #expect(summary["tokens_estimated"] as? Bool == false)
            #expect(ran.stdout.contains("tokens/s"))
        } else {
            #expect(["degenerate_text", "budget_minutes"].contains(summary["stop_reason"] as? String ?? ""), "\(summary)")
            #expect(summary["tokens_estimated"] as? Bool == true)
        }
        let requests = try events(out).filter { $0["event"] as? String == "request" }
        #expect(requests.allSatisfy { $0["stream"] as? Bool == streaming })
        // Only the offered tools were called.
        for call in try events(out).filter({ $0["event"] as? String == "tool_call" }) {
            #expect(["write_file", "read_file"].contains(call["name"] as? String ?? ""))
        }
    }

    /// ~15 s. finish_reason "length" is no final answer: the model is told, and after three cut
    /// replies the run stops as reply_cut.
    @Test func aReplyCutAtTheTokenLimitIsNoAnswer() async throws {
        let (binary, model) = try smol()
        let scratch = try Scratch()
        let server = try await LlamaServer(binary: binary, model: model, context: 4096)
        defer { server.stop() }
        let out = scratch.root + "/run"
        let ran = try await scratch.toolhost(
            ["run", "--endpoint", server.base, "--workspace", scratch.workspace, "--state-dir", scratch.state, "--out", out, "--quiet",
             "--prompt", "Write a long story about dragons.", "--tools", "read_file", "--max-reply-tokens", "4", "--max-turns", "6", "--no-constrain"])
        #expect(ran.status == 1)
        let summary = try json(out + "/summary.json")
        #expect(summary["stop_reason"] as? String == "reply_cut", "\(summary)")
        let notes = try events(out).filter { $0["event"] as? String == "note" && ($0["text"] as? String ?? "").contains("cut at the token limit") }
        #expect(notes.count == 2)
        let finishes = try events(out).filter { $0["event"] as? String == "assistant" }.map { $0["finish_reason"] as? String }
        #expect(finishes == ["length", "length", "length"])
    }

    /// ~5 s. A conversation larger than the server's context (-c 512: ~1,300 tokens of task) stops as context_full with
    /// the server's numbers and what to do; nothing is retried.
    @Test func contextOverflowStopsWithAdvice() async throws {
        let (binary, model) = try smol()
        let scratch = try Scratch()
        let server = try await LlamaServer(binary: binary, model: model, context: 512)
        defer { server.stop() }
        let out = scratch.root + "/run"
        let ran = try await scratch.toolhost(
            ["run", "--endpoint", server.base, "--workspace", scratch.workspace, "--state-dir", scratch.state, "--out", out, "--quiet",
             "--prompt", "Summarise this: " + String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 120), "--no-constrain"])
        #expect(ran.status == 1)
        let summary = try json(out + "/summary.json")
        #expect(summary["stop_reason"] as? String == "context_full")
        let error = summary["error"] as? String ?? ""
        #expect(error.contains("for a context of 512") && error.contains("-c"), "\(error)")
        #expect(summary["harness_error"] as? Bool == false)
        #expect(try events(out).filter { $0["event"] as? String == "retry" }.isEmpty)
    }

    /// ~20 s. The server dies (SIGKILL) while it streams an answer: the run ends as a harness error
    /// that says the stream was cut, and the transcript and summary are whole.
    @Test func serverKilledMidStream() async throws {
        let (binary, model) = try smol()
        let scratch = try Scratch()
        let server = try await LlamaServer(binary: binary, model: model, context: 4096)
        defer { server.stop() }
        let out = scratch.root + "/run"
        let run = Process()
        run.executableURL = URL(fileURLWithPath: toolhostBinary)
        run.arguments = [
            "run", "--endpoint", server.base, "--workspace", scratch.workspace, "--state-dir", scratch.state, "--out", out, "--quiet",
            "--prompt", "Write a very long story about dragons, at least two thousand words.", "--tools", "read_file",
            "--max-reply-tokens", "3000", "--attempts", "1", "--no-constrain", "--no-guards",
        ]
        run.standardOutput = FileHandle.nullDevice
        run.standardError = FileHandle.nullDevice
        try run.run()
        defer { if run.isRunning { kill(run.processIdentifier, SIGKILL) } }
        // Kill once the server has generated some tokens of the answer.
        var generating = false
        for _ in 0..<240 where !generating {
            try await Task.sleep(for: .milliseconds(250))
            let slots = await (try? JSONSerialization.jsonObject(with: server.get("/slots"))) as? [[String: Any]] ?? []
            generating = slots.contains { (($0["next_token"] as? [[String: Any]])?.first?["n_decoded"] as? Int ?? ($0["next_token"] as? [String: Any])?["n_decoded"] as? Int ?? 0) > 20 }
        }
        #expect(generating, "the server never started answering")
        server.stop()
        for _ in 0..<240 where run.isRunning { try await Task.sleep(for: .milliseconds(250)) }
        #expect(!run.isRunning)
        #expect(run.terminationStatus == 1)
        let summary = try json(out + "/summary.json")
        #expect(summary["stop_reason"] as? String == "error")
        #expect(summary["harness_error"] as? Bool == true)
        #expect((summary["error"] as? String ?? "").contains("ended before the answer was complete"), "\(summary["error"] ?? "")")
        #expect(try events(out).last?["event"] as? String == "end")
    }

    /// ~90 s. The public showdown's model switching: the two tiny models, each started by
    /// `serve:`, against the scripted competent mock (also served), plus a server that cannot
    /// start, each twice. Servers are stopped after their contestant; the broken one is a harness
    /// error, not a model failure.
    @Test func showdownServesEachModelInTurn() async throws {
        let (binary, smol) = try smol()
        let gemma = try #require(LlamaServer.tinyModel, "scripts/setup.sh assembles Gemma 3 270M")
        let scratch = try Scratch()
        let repo = scratch.root + "/repo"
        try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
        try "# starter\n".write(toFile: repo + "/README.md", atomically: true, encoding: .utf8)
        try await git("init", "-q", "-b", "main", in: repo)
        try await git("add", "-A", in: repo)
        try await git("-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qm", "base", in: repo)
        let ports = (0..<4).map { _ in freePort() }
        let config = scratch.root + "/showdown.yaml"
        try """
            task: \(repositoryRoot)/fixtures/tasks/hello-file.md
            workspace: repo
            repeats: 2
            endpoints:
              - label: competent-mock
                url: "127.0.0.1:\(ports[0])"
                serve: "exec '\(toolhostBinary)' mock-endpoint --script '\(repositoryRoot)/fixtures/endpoints/competent-hello.yaml' --port \(ports[0])"
              - label: smollm2-135m
                url: "127.0.0.1:\(ports[1])"
                serve: "exec '\(binary)' -m '\(smol)' --host 127.0.0.1 --port \(ports[1]) -c 8192 -t 2 --seed 7"
                constrain: true
                tools: [write_file, read_file, git_commit]
              - label: gemma3-270m
                url: "127.0.0.1:\(ports[2])"
                serve: "exec '\(binary)' -m '\(gemma)' --host 127.0.0.1 --port \(ports[2]) -c 8192 -t 2 --seed 7"
                constrain: true
                tools: [write_file, read_file, git_commit]
              - label: no-such-model
                url: "127.0.0.1:\(ports[3])"
                serve: "exec '\(binary)' -m /nonexistent.gguf --port \(ports[3])"
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let out = scratch.root + "/out"
        let ran = try await scratch.toolhost(["showdown", "--config", config, "--out", out, "--state-dir", scratch.state])
        // Harness errors (the broken server) make the exit status 1; the results are written all the same.
        #expect(ran.status == 1, "\(ran.stdout)\n\(ran.stderr)")
        let models = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/models.json"))) as? [[String: Any]])
        let byLabel = Dictionary(uniqueKeysWithValues: models.map { ($0["label"] as? String ?? "", $0) })
        #expect(Set(byLabel.keys) == ["competent-mock", "smollm2-135m", "gemma3-270m", "no-such-model"])
        let competent = try #require(byLabel["competent-mock"])
        #expect(competent["runs"] as? Int == 2 && competent["passed"] as? Int == 2 && competent["pass_at_1"] as? Double == 1)
        #expect(competent["median_tokens_per_second"] as? Double == 20, "the mock's llama-server timings")
        for label in ["smollm2-135m", "gemma3-270m"] {
            let model = try #require(byLabel[label])
            #expect(model["runs"] as? Int == 2 && model["scored"] as? Int == 2)
            #expect(model["harness_errors"] as? Int == 0, "\(model)")
        }
        // Each tiny model's runs kept the constrained promise (the rate in models.json counts cut replies too).
        let constrained = try FileManager.default.contentsOfDirectory(atPath: out).filter {
            $0.hasPrefix("run-") && (try? json("\(out)/\($0)/summary.json")["constrained"] as? Bool) == true
        }
        #expect(constrained.count == 4, "two models, two runs each: \(constrained)")
        for folder in constrained {
            try expectOnlyCutRepliesMalformed("\(out)/\(folder)")
            try expectNotesFitTheRun("\(out)/\(folder)", offered: ["write_file", "read_file", "git_commit"])
        }
        let broken = try #require(byLabel["no-such-model"])
        #expect(broken["harness_errors"] as? Int == 2 && broken["scored"] as? Int == 0 && broken["pass_at_1"] == nil)
        #expect((broken["harness_error_messages"] as? [String] ?? []).contains { $0.contains("exited with status") })
        let table = try String(contentsOfFile: out + "/results.md", encoding: .utf8)
        #expect(table.contains("pass@1") && table.contains("| competent-mock | 2 | 2/2 | 100% | 100% (k=2) |"), "\(table)")
        // Every served server is gone: nothing answers on their ports.
        for port in ports {
            await #expect((try? runProgram("/usr/bin/curl", ["-sf", "-m", "2", "http://127.0.0.1:\(port)/health"]).status) != 0)
        }
        let results = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/results.json"))) as? [[String: Any]])
        #expect(results.count == 8)
    }
}
