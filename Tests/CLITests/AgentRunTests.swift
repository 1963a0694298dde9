import Foundation
import TestSupport
import Testing

/// `toolhost run` against `toolhost mock-endpoint`: the real loop, the real tools, both wire formats.
@Suite struct AgentRunTests {
    static let modes: [(api: String, stream: Bool)] = [("openai", true), ("openai", false), ("anthropic", true), ("anthropic", false)]

    @Test(arguments: modes)
    func theScriptedRunReachesItsEnd(api: String, stream: Bool) async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, fixture: "write-and-read.yaml")
        let endpoint = api == "openai" ? mock.url : mock.url + "/v1/messages"
        let run = try await scratch.agent(endpoint, stream ? [] : ["--no-stream"])
        #expect(run.ran.status == 0, "\(run.ran.stderr)")
        // The tool calls ran for real, and the script's expectations saw their results.
        #expect(try scratch.read("notes/hello.txt") == "hello from the mock\n")
        #expect(run.ran.stdout.contains("Done: notes/hello.txt holds the greeting"))
        let summary = try run.summary
        #expect(summary["api"] as? String == api)
        #expect(summary["model"] as? String == "mock-coder")
        #expect(summary["tool_calls"] as? Int == 3)
        #expect(summary["messages"] as? Int == 3)
        #expect(summary["prompt_tokens"] as? Int == 1800)
        #expect(summary["prompt_tokens_sent"] as? Int == 1800)
        // The mock caches nothing, so every prompt token sent was processed.
        #expect(summary["prompt_tokens_processed"] as? Int == 1800)
        #expect(summary["completion_tokens"] as? Int == 75)
        #expect(summary["total_tokens"] as? Int == 1875)
        #expect(summary["outcome"] as? String == "complete")
        #expect(summary["stop_reason"] as? String == "completed")
        #expect(summary["dialect"] as? String == "native")
        let names = try run.eventNames()
        #expect(names.first == "start" && names.last == "end")
        #expect(names.filter { $0 == "request" }.count == 3)
        #expect(names.filter { $0 == "tool_result" }.count == 3)
        #expect(names.filter { $0 == "usage" }.count == 3)
    }

    @Test func budgetsStopTheRunWithTheirReason() async throws {
        for (flags, reason, toolCalls) in [
            (["--max-tool-calls", "1"], "budget_tool_calls", 1), (["--max-tokens", "100"], "budget_tokens", 2),
            (["--max-turns", "2"], "budget_turns", 3),
        ] {
            let scratch = try Scratch()
            let mock = try await MockEndpointProcess(scratch, fixture: "write-and-read.yaml")
            let run = try await scratch.agent(mock.url, flags)
            #expect(run.ran.status == 1, "\(flags): \(run.ran.stderr)")
            let summary = try run.summary
            #expect(summary["stop_reason"] as? String == reason, "\(flags)")
            #expect(summary["tool_calls"] as? Int == toolCalls, "\(flags)")
            #expect(summary["outcome"] as? String == "failed", "\(flags)")
            #expect(try run.eventNames().last == "end")
        }
    }

    /// Under network "allowlist" every decision of the egress proxy during a call, allowed or
    /// refused, is an `egress` event in the run's transcript (root only: the proxy lives in the
    /// session's network namespace).
    @Test(.enabled(if: geteuid() == 0)) func egressDecisionsAreInTheTranscript() async throws {
        let scratch = try Scratch()
        let served = scratch.root + "/served"
        try FileManager.default.createDirectory(atPath: served, withIntermediateDirectories: true)
        try "from the allowed host\n".write(toFile: served + "/hello.txt", atomically: true, encoding: .utf8)
        let port = Int.random(in: 30000...39999)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = ["-m", "http.server", String(port), "--bind", "127.0.0.2", "--directory", served]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { kill(server.processIdentifier, SIGKILL) }
        var up = false
        for _ in 0..<100 where !up {
            up = await (try? runProgram("/usr/bin/curl", ["-sf", "-o", "/dev/null", "http://127.0.0.2:\(port)/hello.txt"]).status) == 0
            if !up { try await Task.sleep(for: .milliseconds(100)) }
        }
        try #require(up, "the served folder did not come up")
        let network = try Data(contentsOf: URL(fileURLWithPath: repositoryRoot + "/sandbox-profiles/network.json"))
        var profile = try #require(try JSONSerialization.jsonObject(with: network) as? [String: Any])
        profile["network"] = "allowlist"
        profile["egress"] = ["allow": ["127.0.0.2:\(port)"]]
        let profilePath = scratch.root + "/allowlist.json"
        try JSONSerialization.data(withJSONObject: profile).write(to: URL(fileURLWithPath: profilePath))
        let mock = try await MockEndpointProcess(scratch, script: """
            turns:
              - reply:
                  tool_calls:
                    - {name: execute, arguments: {command: "curl -sS http://127.0.0.2:\(port)/hello.txt; curl -sS http://blocked.test/"}}
              - reply: {text: "done"}
            """)
        let run = try await scratch.agent(mock.url, ["--profile", profilePath])
        #expect(run.ran.status == 0, "\(run.ran.stderr)")
        let egress = try run.events.filter { $0["event"] as? String == "egress" }
        #expect(egress.count == 2, "\(egress)")
        let allowed = try #require(egress.first)
        #expect(allowed["allowed"] as? Bool == true && allowed["host"] as? String == "127.0.0.2" && allowed["port"] as? Int == port)
        #expect(allowed["rule"] as? String == "allow \"127.0.0.2:\(port)\"" && allowed["address"] as? String == "127.0.0.2", "\(allowed)")
        let refused = try #require(egress.last)
        #expect(refused["allowed"] as? Bool == false && refused["host"] as? String == "blocked.test" && refused["rule"] as? String == "not in allow", "\(refused)")
        #expect(refused["id"] as? String == allowed["id"] as? String && refused["turn"] as? Int == 1)
    }

    @Test func theMinutesBudgetStopsAWaitForASlowModel() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, script: """
            turns:
              - delay_ms: 20000
                reply: {text: "too late"}
            """)
        let started = Date()
        let run = try await scratch.agent(mock.url, ["--max-minutes", "0.02"])
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(try run.summary["stop_reason"] as? String == "budget_minutes")
        // The reply the time ran out on counts as cut, with the wait it cost (1.2 s budget).
        let summary = try run.summary
        #expect(summary["cut_replies"] as? Int == 1)
        #expect((summary["cut_reply_seconds"] as? Double).map { $0 >= 1 && $0 < 10 } == true, "\(summary)")
    }

    @Test func ctrlCKeepsTheTranscriptAndWritesTheSummary() async throws {
        let scratch = try Scratch()
        let marker = uniqueSleep()
        let mock = try await MockEndpointProcess(scratch, script: """
            turns:
              - reply:
                  tool_calls: [{name: execute, arguments: {command: "sleep \(marker)"}}]
              - reply: {text: "never reached"}
            """)
        let folder = scratch.root + "/run-int"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: toolhostBinary)
        process.arguments = ["run", "--endpoint", mock.url, "--workspace", scratch.workspace, "--state-dir", scratch.state, "--out", folder, "--prompt", "sleep"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        #expect(await appears(withArgument: marker))
        kill(process.processIdentifier, SIGINT)
        await process.exited()
        #expect(process.terminationStatus == 130)
        let run = AgentRun(ran: Ran(status: 130, stdout: "", stderr: ""), folder: folder)
        #expect(try run.summary["stop_reason"] as? String == "interrupted")
        let names = try run.eventNames()
        #expect(names.contains("tool_call") && names.last == "end")
        #expect(await allGone(withArgument: marker))
    }

    @Test(arguments: ["openai", "anthropic"])
    func a500AndACutStreamAreRetried(api: String) async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, script: """
            turns:
              - fault: {status: 500, body: '{"error":{"code":500,"message":"Failed to parse input at pos 12: <tool_call>"}}'}
              - fault: {cut: true}
              - reply: {text: "made it", usage: {prompt_tokens: 10, completion_tokens: 2}}
            """)
        let run = try await scratch.agent(api == "openai" ? mock.url : mock.url + "/v1/messages")
        #expect(run.ran.status == 0, "\(run.ran.stderr)")
        #expect(run.ran.stdout.contains("made it"))
        let retries = try run.events.filter { $0["event"] as? String == "retry" }.compactMap { $0["reason"] as? String }
        #expect(retries.count == 2)
        #expect(retries.first?.contains("HTTP 500") == true)
        #expect(retries.last?.contains("cut") == true || retries.last?.contains("closed") == true)
        #expect(try run.summary["total_tokens"] as? Int == 12)
    }

    @Test func llamaServersParseFailureIsReportedAsSuchAfterOneRetry() async throws {
        let scratch = try Scratch()
        let body = #"'{"error":{"code":500,"message":"Failed to parse input at pos 7: [TOOL_CALLS]"}}'"#
        let mock = try await MockEndpointProcess(scratch, script: """
            turns:
              - fault: {status: 500, body: \(body)}
              - fault: {status: 500, body: \(body)}
              - reply: {text: "not reached"}
            """)
        let run = try await scratch.agent(mock.url)
        #expect(run.ran.status == 1)
        let error = try #require(try run.summary["error"] as? String)
        #expect(error.contains("could not parse the model's output"))
        #expect(error.contains("Failed to parse input at pos 7"))
        #expect(error.contains("--jinja"))
    }

    @Test func garbageInTheStreamIsAClearError() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, script: """
            turns:
              - fault: {garbage: "data: {\\"choices\\": [\\n<html>502 Bad Gateway</html>\\n"}
            """)
        let run = try await scratch.agent(mock.url)
        #expect(run.ran.status == 1)
        let error = try #require(try run.summary["error"] as? String)
        #expect(error.contains("not valid server-sent events"), "\(error)")
        #expect(error.contains("<html>502 Bad Gateway</html>"), "\(error)")
        #expect(try run.summary["stop_reason"] as? String == "error")
    }

    @Test func nothingListeningIsSaidPlainly() async throws {
        let scratch = try Scratch()
        let started = Date()
        let run = try await scratch.agent("localhost:1", ["--model", "m"])
        #expect(run.ran.status == 1)
        #expect(run.ran.stderr.contains("nothing listens at localhost:1: start llama-server (with --jinja for tool calls) or pass --endpoint"))
        #expect(Date().timeIntervalSince(started) < 5)
        // Without --model the same error comes from the model lookup, before any run folder exists.
        let lookup = try await scratch.agent("localhost:1")
        #expect(lookup.ran.stderr.contains("nothing listens at localhost:1"))
        let probe = try await scratch.toolhost(["probe", "--endpoint", "localhost:1"])
        #expect(probe.status == 1 && probe.stderr.contains("nothing listens at localhost:1"), "\(probe.stderr)")
    }

    @Test func anExpectationTheRunMissesFailsLoudly() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, script: """
            turns:
              - expect: {last_message_contains: "something the prompt never says"}
                reply: {text: "no"}
            """)
        let run = try await scratch.agent(mock.url)
        #expect(run.ran.status == 1)
        let error = try #require(try run.summary["error"] as? String)
        #expect(error.contains("HTTP 400"))
        #expect(error.contains("expected the last message to contain \"something the prompt never says\""))
    }

    @Test(arguments: ["openai", "anthropic"])
    func theKeyIsSentButNeverWrittenOrShownToCommands(api: String) async throws {
        let scratch = try Scratch()
        let key = "sk-live-\(UUID().uuidString)"
        let mock = try await MockEndpointProcess(scratch, script: """
            api_key: \(key)
            turns:
              - reply:
                  text: "I will look for secrets: \(key)"
                  tool_calls: [{name: execute, arguments: {command: "env; echo key=$OPENAI_API_KEY$ANTHROPIC_API_KEY"}}]
              - expect: {tool_results_contain: "key="}
                reply: {text: "found none"}
            """)
        var environment = ProcessInfo.processInfo.environment
        environment[api == "openai" ? "OPENAI_API_KEY" : "ANTHROPIC_API_KEY"] = key
        let run = try await scratch.agent(api == "openai" ? mock.url : mock.url + "/v1/messages", environment: environment)
        #expect(run.ran.status == 0, "\(run.ran.stderr)")
        let transcript = try String(contentsOfFile: run.folder + "/transcript.jsonl", encoding: .utf8)
        let summary = try String(contentsOfFile: run.folder + "/summary.json", encoding: .utf8)
        for (name, text) in [("transcript", transcript), ("summary", summary), ("stdout", run.ran.stdout), ("stderr", run.ran.stderr)] {
            #expect(!text.contains(key), "the key leaked into \(name)")
        }
        #expect(transcript.contains("[redacted]"))
        #expect(transcript.contains("key=\\n") || transcript.contains("key=\""))
        // Without the key the mock refuses, so the key did travel in the request.
        let refused = try await scratch.agent(api == "openai" ? mock.url : mock.url + "/v1/messages", ["--model", "m"])
        #expect(refused.ran.status == 1)
    }

    /// A key named by --api-key-env (whatever its name), and any variable the clean environment
    /// treats as secret, are replaced in tool results before the model sees them, and counted.
    @Test func secretsInToolResultsNeverReachTheModel() async throws {
        let scratch = try Scratch()
        let key = "llm-\(UUID().uuidString)"
        let password = "pw-\(UUID().uuidString)"
        try scratch.write(".env", "LLM=\(key)\nDB=\(password)\n")
        let mock = try await MockEndpointProcess(scratch, script: """
            api_key: \(key)
            turns:
              - reply:
                  tool_calls: [{name: read_file, arguments: {path: .env}}]
              - expect: {tool_results_contain: ["LLM=[redacted]", "DB=[redacted]"]}
                reply: {text: "done"}
            """)
        var environment = ProcessInfo.processInfo.environment
        environment["MODEL_ACCESS"] = key
        environment["DB_PASSWD"] = password
        let run = try await scratch.agent(mock.url, ["--api-key-env", "MODEL_ACCESS"], environment: environment)
        #expect(run.ran.status == 0, "the mock saw the secrets: \(run.ran.stderr.suffix(600))")
        let transcript = try String(contentsOfFile: run.folder + "/transcript.jsonl", encoding: .utf8)
        let summary = try String(contentsOfFile: run.folder + "/summary.json", encoding: .utf8)
        for (name, text) in [("transcript", transcript), ("summary", summary), ("stdout", run.ran.stdout), ("stderr", run.ran.stderr)] {
            #expect(!text.contains(key) && !text.contains(password), "a secret leaked into \(name)")
        }
        #expect(summary.contains(#""redactions" : 2"#) || summary.contains(#""redactions":2"#), "\(summary)")
    }

    @Test(arguments: ["openai", "anthropic"])
    func aScreenshotReachesTheModel(api: String) async throws {
        let scratch = try Scratch()
        try scratch.write("page.html", "<title>Shot</title><h1>Hello</h1>")
        // Anthropic's tool results carry images; OpenAI's tool messages carry text only (the saved path).
        let mock = try await MockEndpointProcess(scratch, script: """
            turns:
              - reply:
                  tool_calls: [{name: screenshot, arguments: {url: page.html, width: 640, height: 480}}]
              - expect: {tool_result_images: \(api == "anthropic" ? 1 : 0), tool_results_contain: ["title \\"Shot\\"", "saved to"]}
                reply: {text: "I see the page."}
            """)
        let run = try await scratch.agent(api == "openai" ? mock.url : mock.url + "/v1/messages")
        #expect(run.ran.status == 0, "\(run.ran.stderr)")
        #expect(try run.summary["screenshot"] as? String != nil)
    }

    /// `run` sends the compact schemas unless told otherwise, and the full ones with
    /// `--schemas full`; a parameter only the full schema has is still taken.
    @Test func runSendsTheCompactSchemasByDefault() async throws {
        let scratch = try Scratch()
        for style in ["compact", "full"] {
            let record = scratch.root + "/requests-" + style
            try FileManager.default.createDirectory(atPath: record, withIntermediateDirectories: true)
            let mock = try await MockEndpointProcess(scratch, script: """
                turns:
                  - reply:
                      tool_calls: [{name: read_file, arguments: {path: notes.txt, limit: 1}}]
                  - expect: {tool_results_contain: "first"}
                    reply: {text: "Read."}
                """, record: record)
            try scratch.write("notes.txt", "first\nsecond\n")
            let run = try await scratch.agent(mock.url, style == "full" ? ["--schemas", "full"] : [])
            #expect(run.ran.status == 0, "\(run.ran.stderr)")
            let body = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: record + "/request-001.json"))) as! [String: Any]
            let tools = body["tools"] as! [[String: Any]]
            let execute = tools.compactMap { $0["function"] as? [String: Any] }.first { $0["name"] as? String == "execute" }!
            let sent = Data(try JSONSerialization.data(withJSONObject: tools)).count
            if style == "compact" {
                #expect((execute["description"] as! String).count < 200)
                #expect(sent < 6000, "\(sent) bytes of schemas")
            } else {
                #expect((execute["description"] as! String).count > 600)
                #expect(sent > 12000, "\(sent) bytes of schemas")
            }
        }
    }

    /// A task's `tools` are all the run offers (`--tools` overrides them), in the order it names
    /// them; an unknown name is refused.
    @Test func aTasksToolsAreTheOnesOffered() async throws {
        let scratch = try Scratch()
        let task = try scratch.write("task.md", "---\ntools: [write_file, read_file]\n---\nWrite notes/hello.txt.\n")
        let mock = try await MockEndpointProcess(scratch, script: """
            turns:
              - expect: {tools_include: [write_file, read_file]}
                reply: {text: "Done."}
            """)
        let run = try await scratch.agent(mock.url, ["--task", task])
        #expect(run.ran.status == 0, "\(run.ran.stderr)")
        let start = try #require(try run.events.first { $0["event"] as? String == "start" })
        #expect(start["tools"] as? [String] == ["write_file", "read_file"], "the task's order, not the registry's")
        let bad = try await scratch.agent(mock.url, ["--task", try scratch.write("bad.md", "---\ntools: [write_file, teleport]\n---\nGo.\n")])
        #expect(bad.ran.status != 0 && bad.ran.stderr.contains("the task's tools: no tool named teleport"), "\(bad.ran.stderr)")
    }

    /// A reply cut at the token limit is not re-sent whole: the history keeps its first line and
    /// a marker, the transcript all of it.
    @Test func aCutReplyLeavesTheHistoryShortened() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, script: """
            turns:
              - reply:
                  text: "I will commit the files.\\n{\\"paths\\": [\\"a.txt\\", \\"b.txt\\", \\"c.txt\\", \\"d.txt\\""
                  finish_reason: length
              - expect:
                  any_message_contains: ["I will commit the files. [… cut at the token limit"]
                  no_message_contains: ["a.txt"]
                reply: {text: "Done."}
            """)
        let run = try await scratch.agent(mock.url, prompt: "commit the files")
        #expect(run.ran.status == 0, "\(run.ran.stderr)")
        let transcript = try String(contentsOfFile: run.folder + "/transcript.jsonl", encoding: .utf8)
        #expect(transcript.contains(#"\"c.txt\", \"d.txt\""#), "the transcript keeps the reply whole")
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run.folder + "/summary.json"))) as? [String: Any]
        #expect(summary?["cut_replies"] as? Int == 1, "the summary counts the cut reply: \(summary ?? [:])")
        #expect((summary?["cut_reply_seconds"] as? Double).map { $0 >= 0 && $0 <= (summary?["duration_seconds"] as? Double ?? 0) } == true)
    }

    /// A call written as text that no parser reads: the note names what the tool takes and one
    /// exact call of an offered tool, with no placeholder to copy.
    @Test func anUnreadableTextCallGetsAnExactCallToMake() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, script: """
            turns:
              - reply: {text: "<tool_call>{\\"name\\": \\"read_file\\", \\"arguments\\": {\\"file\\": \\"notes.txt\\"}</tool_call>"}
              - expect:
                  last_message_contains: ["read_file takes a JSON object with the fields path", "<tool_call>{\\"name\\": \\"read_file\\", \\"arguments\\": {\\"path\\": \\"README.md\\"}}</tool_call>"]
                  no_message_contains: ["TOOL", "{...}"]
                reply: {text: "Done."}
            """)
        let run = try await scratch.agent(mock.url, ["--tools", "read_file,write_file"])
        #expect(run.ran.status == 0, "\(run.ran.stderr)")
    }

    /// A script with `repeats: true` starts over at each new conversation: one mock serves every
    /// repeat of a showdown contestant.
    @Test func aRepeatingScriptServesRunAfterRun() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, script: """
            repeats: true
            turns:
              - expect: {last_message_contains: "greeting"}
                reply:
                  tool_calls:
                    - {name: write_file, arguments: {path: notes/hello.txt, content: "hi\\n"}}
              - expect: {tool_results_contain: ["notes/hello.txt"]}
                reply: {text: "Done."}
            """)
        for _ in 0..<3 {
            let run = try await scratch.agent(mock.url)
            #expect(run.ran.status == 0, "\(run.ran.stderr)")
            #expect(try run.summary["outcome"] as? String == "complete")
        }
    }

    /// Every run leaves trajectory.json in ATIF v1.4 beside its transcript, and Harbor's own
    /// validator takes it: the prompt, each turn with its calls, their results and tokens, and
    /// toolhost's notes as system steps.
    @Test func everyRunLeavesATrajectoryHarborValidates() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, script: """
            turns:
              - reply:
                  text: "Writing it."
                  tool_calls:
                    - {name: write_file, arguments: {path: notes/hello.txt, content: "hi\\n"}}
                    - {name: read_file, arguments: {path: notes/hello.txt}}
              - reply:
                  tool_calls:
                    - {name: read_file, arguments: {path: notes/hello.txt}}
              - reply:
                  tool_calls:
                    - {name: read_file, arguments: {path: notes/hello.txt}}
              - reply: {text: "Done."}
            """)
        let run = try await scratch.agent(mock.url)
        #expect(run.ran.status == 0, "\(run.ran.stderr)")
        let path = run.folder + "/trajectory.json"
        let trajectory = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        #expect(trajectory["schema_version"] as? String == "ATIF-v1.4")
        let steps = try #require(trajectory["steps"] as? [[String: Any]])
        #expect(steps.map { $0["step_id"] as? Int } == Array(1...steps.count))
        #expect(steps.prefix(2).map { $0["source"] as? String } == ["system", "user"])
        let first = try #require(steps.first { $0["source"] as? String == "agent" })
        let calls = try #require(first["tool_calls"] as? [[String: Any]])
        #expect(calls.map { $0["function_name"] as? String } == ["write_file", "read_file"])
        let results = try #require((first["observation"] as? [String: Any])?["results"] as? [[String: Any]])
        #expect(results.map { $0["source_call_id"] as? String } == calls.map { $0["tool_call_id"] as? String })
        #expect((first["metrics"] as? [String: Any])?["prompt_tokens"] as? Int ?? 0 > 0)
        // The repeated read earns a guardrail note: a system step.
        #expect(steps.contains { $0["source"] as? String == "system" && ($0["message"] as? String ?? "").contains("same") }, "\(steps.map { $0["message"] ?? "" })")
        let validated = try await runProgram(repositoryRoot + "/.venv-eval/bin/python", ["-m", "harbor.utils.trajectory_validator", path])
        #expect(validated.status == 0 && validated.stdout.contains("valid"), "\(validated.stdout)\n\(validated.stderr)")
    }

    /// Qwen 3.6's pattern: a passing build, never committed. With ship_on_pass toolhost ships it,
    /// says so in the commit, and the outcome is shipped_by_toolhost, not complete.
    /// The workspace as a git repository on main with an identity, and `remote` (a new bare
    /// repository) as its origin.
    static func repository(in scratch: Scratch, remote: String) async throws {
        try await git("init", "-q", "--bare", "-b", "main", remote, in: scratch.root)
        try await git("init", "-q", "-b", "main", in: scratch.workspace)
        try await git("config", "user.name", "T", in: scratch.workspace)
        try await git("config", "user.email", "t@example.com", in: scratch.workspace)
        try await git("remote", "add", "origin", remote, in: scratch.workspace)
    }

    @Test func theSafetyNetShipsAPassingBuildTheModelLeft() async throws {
        let scratch = try Scratch()
        let remote = scratch.root + "/remote.git"
        try await Self.repository(in: scratch, remote: remote)
        try scratch.write("package.json", #"{"name": "x", "version": "1.0.0", "scripts": {"build": "test -f notes.md"}}"# + "\n")
        try await git("add", ".", in: scratch.workspace)
        try await git("commit", "-qm", "init", in: scratch.workspace)
        try await git("push", "-q", "origin", "main", in: scratch.workspace)
        let task = try scratch.write("../task.md", """
            ---
            branch: agent/ship
            requires: [build, commit, push]
            ship_on_pass: true
            ---
            Add notes.md so that the build passes, then commit and push.
            """)
        let mock = try await MockEndpointProcess(scratch, script: """
            turns:
              - reply:
                  tool_calls:
                    - {name: write_file, arguments: {path: notes.md, content: "notes\\n"}}
                    - {name: build, arguments: {script: "npm run build"}}
              - expect: {tool_results_contain: ["PASSED"]}
                reply: {text: "The build passes."}
              - reply: {text: "The build passes."}
              - reply: {text: "The build passes."}
            """)
        let run = try await scratch.agent(mock.url, ["--task", task])
        #expect(run.ran.status == 0, "\(run.ran.stderr)\n\(run.ran.stdout)")
        let summary = try run.summary
        #expect(summary["outcome"] as? String == "shipped_by_toolhost", "\(summary)")
        #expect(summary["commits"] as? Int == 0, "the model's own commits")
        let shipped = try #require(summary["shipped_by_toolhost"] as? [String: Any], "\(summary)")
        #expect(shipped["pushed_branch"] as? String == "agent/ship")
        #expect(try await git("log", "-1", "--format=%B", "agent/ship", in: remote).contains("Committed by toolhost (ship_on_pass)"))
        #expect(run.ran.stdout.contains("outcome: shipped_by_toolhost"))
    }

    @Test func requirementsDecideTheOutcome() async throws {
        let scratch = try Scratch()
        let remote = scratch.root + "/remote.git"
        try await Self.repository(in: scratch, remote: remote)
        try scratch.write("README.md", "# x\n")
        try await git("add", ".", in: scratch.workspace)
        try await git("commit", "-qm", "init", in: scratch.workspace)
        try await git("push", "-q", "origin", "main", in: scratch.workspace)
        let task = try scratch.write("../task.md", """
            ---
            branch: agent/notes
            requires: [commit, push]
            budgets: {tool_calls: 10}
            ---
            Add notes/todo.md, commit it and push the branch.
            """)
        let script = """
            turns:
              - expect: {system_contains: "agent/notes", last_message_contains: "notes/todo.md"}
                reply:
                  tool_calls:
                    - {name: write_file, arguments: {path: notes/todo.md, content: "- ship\\n"}}
                    - {name: git_commit, arguments: {message: "Add the todo list"}}
                    - {name: git_push, arguments: {}}
              - expect: {tool_results_contain: ["agent/notes"]}
                reply: {text: "Pushed agent/notes."}
            """
        let mock = try await MockEndpointProcess(scratch, script: script)
        let run = try await scratch.agent(mock.url, ["--task", task])
        #expect(run.ran.status == 0, "\(run.ran.stderr)\n\(run.ran.stdout)")
        let summary = try run.summary
        #expect(summary["outcome"] as? String == "complete")
        #expect(summary["commits"] as? Int == 1)
        #expect(summary["pushed_branch"] as? String == "agent/notes")
        #expect(try await git("log", "--format=%s", "agent/notes", in: remote).contains("Add the todo list"))

        // The same run, but the task also wants a build that never ran: pushed, so partial.
        try await git("checkout", "-q", "main", in: scratch.workspace)
        try await git("branch", "-D", "agent/notes", in: scratch.workspace)
        try await git("push", "-q", "origin", ":agent/notes", in: scratch.workspace)
        try String(contentsOfFile: task, encoding: .utf8).replacingOccurrences(of: "[commit, push]", with: "[build, commit, push]")
            .write(toFile: task, atomically: true, encoding: .utf8)
        let again = try await MockEndpointProcess(scratch, script: script)
        let partial = try await scratch.agent(again.url, ["--task", task])
        #expect(partial.ran.status == 1)
        #expect(try partial.summary["outcome"] as? String == "partial")
        #expect(try partial.summary["missing"] as? [String] == ["build"])

        // A push of the commit the run started from ships nothing: it does not count, the model
        // is told, and its answer with the push unmet is answered_unfinished.
        try await git("checkout", "-q", "main", in: scratch.workspace)
        try await git("branch", "-D", "agent/notes", in: scratch.workspace)
        try await git("push", "-q", "origin", ":agent/notes", in: scratch.workspace)
        try String(contentsOfFile: task, encoding: .utf8).replacingOccurrences(of: "[build, commit, push]", with: "[push]")
            .write(toFile: task, atomically: true, encoding: .utf8)
        let unchanged = try await MockEndpointProcess(scratch, script: """
            turns:
              - reply:
                  tool_calls:
                    - {name: git_push, arguments: {}}
              - expect: {last_message_contains: "the commit the task started from"}
                reply: {text: "Pushed."}
              - expect: {last_message_contains: "the branch is not pushed"}
                reply: {text: "It is pushed."}
              - expect: {last_message_contains: "the branch is not pushed"}
                reply: {text: "It is pushed, really."}
            """)
        let nothing = try await scratch.agent(unchanged.url, ["--task", task])
        #expect(nothing.ran.status == 1, "\(nothing.ran.stderr)")
        let told = try nothing.summary
        #expect(told["pushed_branch"] == nil || told["pushed_branch"] is NSNull)
        #expect(told["outcome"] as? String == "failed")
        #expect(told["stop_reason"] as? String == "answered_unfinished", "\(told)")
    }

    @Test(arguments: [
        ("turns:\n  - reply: {txt: hi}\n", "turns[0].reply has an unknown field 'txt' (did you mean 'text'?)"),
        ("turns:\n  - expect: {stream: yes}\n", "turns[0] needs exactly one of 'reply' and 'fault'"),
        ("turns: []\n", "'turns' is empty"),
        ("model: [a\n", "is not valid YAML"),
        ("turns:\n  - fault: {status: '500'}\n", "turns[0].fault.status must be an integer, got string"),
    ])
    func aBrokenScriptIsRefusedWithWhereAndWhy(script: String, message: String) async throws {
        let scratch = try Scratch()
        let path = scratch.root + "/bad.yaml"
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let ran = try await scratch.toolhost(["mock-endpoint", "--script", path, "--port", "0"])
        #expect(ran.status == 2)
        #expect(ran.stderr.contains(message), "\(ran.stderr)")
        #expect(ran.stderr.contains("bad.yaml"))
    }

    @Test func reportPrintsTheRunsSideBySide() async throws {
        let scratch = try Scratch()
        var folders: [String] = []
        for _ in 0..<2 {
            let mock = try await MockEndpointProcess(scratch, fixture: "write-and-read.yaml")
            try? FileManager.default.removeItem(atPath: scratch.workspace + "/notes")
            folders.append(try await scratch.agent(mock.url, ["--label", "run\(folders.count + 1)"]).folder)
        }
        let table = try await scratch.toolhost(["report"] + folders)
        #expect(table.status == 0, "\(table.stderr)")
        let lines = table.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines[0].contains("tool calls") && lines[0].contains("total tokens") && lines[0].contains("screenshot") && lines[0].contains("outcome"))
        for (index, line) in lines[2...].enumerated() {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(cells == ["run\(index + 1)", "mock-coder", "3", "5", "1,875", "1,800 / 1,800", "0", "not run", "no", "complete", "completed"])
        }
        let json = try await scratch.toolhost(["report", "--json"] + folders)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(parsed.map { $0["label"] as? String } == ["run1", "run2"])
        let missing = try await scratch.toolhost(["report", scratch.root])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("has no summary.json"))
    }
}
