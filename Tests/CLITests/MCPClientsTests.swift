import Foundation
import TestSupport
import Testing

/// Real MCP clients against the built binary, in both protocol eras, over stdio and HTTP; and the
/// protocol edges that third-party clients tripped over, as raw JSON-RPC.
@Suite struct MCPClientsTests {
    static let python = repositoryRoot + "/.venv/bin/python"

    enum Carrier: String, CaseIterable { case stdio, http }

    /// `mcp` 2.3's high-level Client: "auto" discovers and speaks 2026-07-28, "legacy" initializes.
    @Test(arguments: Carrier.allCases, ["auto", "legacy", "2026-07-28"])
    func theClientOfEachEraGetsEverything(carrier: Carrier, mode: String) async throws {
        let scratch = try Scratch()
        var server: HTTPServerProcess?
        let target: String
        switch carrier {
        case .stdio: target = "stdio:\(toolhostBinary):\(scratch.workspace):\(scratch.state)"
        case .http:
            server = try await HTTPServerProcess(scratch)
            target = server!.url
        }
        let ran = try await runProgram(Self.python, [repositoryRoot + "/Tests/Interop/mcp_revisions.py", target, mode])
        #expect(ran.status == 0, "client failed: \(ran.stderr.suffix(3000))")
        let seen = try #require(try JSONSerialization.jsonObject(with: Data((ran.stdout.split(separator: "\n").last ?? "{}").utf8)) as? [String: Any])
        #expect(seen["version"] as? String == (mode == "legacy" ? "2025-11-25" : "2026-07-28"))
        #expect((seen["tools"] as? [String])?.count == 17)
        #expect(seen["annotated"] as? Bool == true)
        let pwd = try #require(seen["pwd"] as? String)
        #expect(pwd.hasPrefix(scratch.workspace + "/deep\nfrom-structured\n"), "cwd persists between calls")
        #expect(seen["structured_text"] as? String == pwd, "structured content carries the whole text")
        let progress = try #require(seen["progress"] as? [[String: Any]])
        #expect(progress.count >= 2, "\(progress)")
        #expect(progress.contains { ($0["message"] as? String)?.contains("latest output: tick") == true })
        #expect(seen["timeout"] as? String == "MCPError", "the client gave up on the long call")
        // The client cancelled (a notification, or a closed stream for 2026-07-28 over HTTP): the
        // command was killed before its three seconds were up.
        #expect(!FileManager.default.fileExists(atPath: scratch.workspace + "/deep/survived-cancel"))
        #expect((seen["after_cancel"] as? String)?.hasPrefix("still-serving\n") == true)
        _ = server
    }

    /// MCP client configs give relative paths; stdin closing right after the requests still gets
    /// every answer out; a 30 MB message is not quadratic.
    @Test func relativePathsEOFDrainAndBigMessages() async throws {
        let scratch = try Scratch()
        let big = String(repeating: "0123456789abcdef\n", count: (30 << 20) / 17)
        let lines = [
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#,
            #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"big.txt","content":"\#(big.replacingOccurrences(of: "\n", with: "\\n"))"}}}"#,
            #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"execute","arguments":{"command":"sleep 1; wc -c < big.txt; pwd"}}}"#,
        ]
        let started = ContinuousClock.now
        let ran = try await runProgram(
            "/bin/sh", ["-c", "cd \"$1\" && exec \"$2\" serve --workspace ws --state-dir state", "sh", scratch.root, toolhostBinary],
            stdin: lines.joined(separator: "\n") + "\n")
        let elapsed = ContinuousClock.now - started
        #expect(ran.status == 0, "\(ran.stderr.suffix(2000))")
        let replies = ran.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(replies.compactMap { $0["id"] as? Int }.sorted() == [1, 2, 3])
        let last = try #require(replies.first { $0["id"] as? Int == 3 }?["result"] as? [String: Any])
        let text = try #require((last["content"] as? [[String: Any]])?.first?["text"] as? String)
        #expect(text.hasPrefix("\(big.utf8.count)\n\(scratch.workspace)\n"), "\(text.prefix(300))")
        #expect(FileManager.default.fileExists(atPath: scratch.state), "the relative --state-dir is the one in the start directory")
        #expect(elapsed < .seconds(60), "30 MB took \(elapsed); it took 293 s when the transport rescanned its buffer")
    }

    static let rawHTTP = #"""
        import http.client, json, sys, threading, time
        host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        H = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        def post(body, headers={}, raw=False):
            c = http.client.HTTPConnection(host, port, timeout=60)
            c.request("POST", "/mcp", body if raw else json.dumps(body), {**H, **headers})
            r = c.getresponse(); data = r.read().decode()
            events = [json.loads(l[6:]) for l in data.split("\n") if l.startswith("data: ")]
            return r.status, dict(r.getheaders()), events or ([json.loads(data)] if data.strip().startswith("{") else [])
        status, headers, _ = post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
        sid = {"Mcp-Session-Id": headers["Mcp-Session-Id"]}
        out = {}
        if mode == "edges":
            out["parse"] = post("{oops", sid, raw=True)[0:3:2]
            out["null_id"] = post({"jsonrpc": "2.0", "id": None, "method": "ping"}, sid)[0:3:2]
            out["float_id"] = post({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}, sid)[0:3:2]
            out["unknown_method"] = post({"jsonrpc": "2.0", "id": 3, "method": "no/such"}, sid)[2]
            out["bad_params"] = post({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": 5}}, sid)[2]
            out["set_level"] = post({"jsonrpc": "2.0", "id": 5, "method": "logging/setLevel", "params": {"level": "info"}}, sid)[2]
            out["logged_call"] = post({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "execute", "arguments": {"command": "true"}}}, sid)[2]
            c = http.client.HTTPConnection(host, port); c.request("GET", "/mcp", headers=sid); out["get"] = c.getresponse().status
        else:
            slow = {}
            def first():
                slow["reply"] = post({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "execute", "arguments": {"command": "sleep 1.5; echo first"}}}, sid)[2]
            t = threading.Thread(target=first); t.start(); time.sleep(0.5)
            out["duplicate"] = post({"jsonrpc": "2.0", "id": 7, "method": "ping"}, sid)[2]
            t.join(30)
            out["first"] = slow.get("reply")
        print(json.dumps(out))
        """#

    func raw(_ server: HTTPServerProcess, _ mode: String) async throws -> [String: Any] {
        let port = String(server.url.split(separator: ":").last!.split(separator: "/").first!)
        let ran = try await runProgram(Self.python, ["-c", Self.rawHTTP, "127.0.0.1", port, mode])
        #expect(ran.status == 0, "\(ran.stderr.suffix(2000))")
        return try #require(try JSONSerialization.jsonObject(with: Data(ran.stdout.utf8)) as? [String: Any])
    }

    func code(_ events: Any?) -> Int? {
        ((events as? [Any])?.last as? [String: Any]).flatMap { ($0["error"] as? [String: Any])?["code"] as? Int }
    }

    @Test func httpProtocolEdgesFollowTheSpecification() async throws {
        let scratch = try Scratch()
        let server = try await HTTPServerProcess(scratch)
        let seen = try await raw(server, "edges")
        for (key, expected) in [("parse", -32700), ("null_id", -32600), ("float_id", -32600)] {
            let pair = try #require(seen[key] as? [Any], "\(key)")
            #expect(pair.first as? Int == 400, "\(key): \(pair)")
            let error = try #require((pair.last as? [[String: Any]])?.last)
            #expect((error["error"] as? [String: Any])?["code"] as? Int == expected, "\(key): \(error)")
            #expect(error["id"] is NSNull, "\(key): the id is null when it could not be read")
        }
        #expect(code(seen["unknown_method"]) == -32601)
        #expect(code(seen["bad_params"]) == -32602)
        let logged = try #require(seen["logged_call"] as? [[String: Any]])
        #expect(logged.contains { $0["method"] as? String == "notifications/message" }, "setLevel info: the call logs at info")
        #expect(seen["get"] as? Int == 405)
    }

    @Test func aDuplicateInFlightIDIsRefusedAndTheFirstStreamEnds() async throws {
        let scratch = try Scratch()
        let server = try await HTTPServerProcess(scratch)
        let seen = try await raw(server, "duplicate")
        #expect(code(seen["duplicate"]) == -32600)
        let first = try #require((seen["first"] as? [[String: Any]])?.last?["result"] as? [String: Any])
        #expect(((first["content"] as? [[String: Any]])?.first?["text"] as? String)?.hasPrefix("first\n") == true)
    }

    /// SIGTERM while a 2026-07-28 stream and a legacy stream are open and their clients hold on:
    /// the server is gone within the grace and the last-resort bound.
    @Test func shutdownIsBoundedWhateverTheStreamsDo() async throws {
        let scratch = try Scratch()
        let server = try await HTTPServerProcess(scratch, extra: ["--shutdown-grace", "1"])
        let hold = Process()
        hold.executableURL = URL(fileURLWithPath: Self.python)
        hold.arguments = [repositoryRoot + "/Tests/Interop/mcp_revisions.py", server.url, "auto"]
        hold.standardOutput = FileHandle.nullDevice
        hold.standardError = FileHandle.nullDevice
        try hold.run()
        defer { kill(hold.processIdentifier, SIGKILL) }
        try await Task.sleep(for: .seconds(3))  // inside the three-second progress call
        let stopped = ContinuousClock.now
        server.process.terminate()
        await server.process.exited()
        #expect(ContinuousClock.now - stopped < .seconds(10))
    }
}

/// llama.cpp's own llama-server as the MCP client: it spawns `toolhost serve` to list the tools,
/// stops it, and respawns it for every call. Built by scripts/setup.sh into the cache.
@Suite struct LlamaServerClientTests {
    @Test func llamaServerListsAndCallsToolhostsTools() async throws {
        let llama = try #require(LlamaServer.binary, "no llama-server: run scripts/setup.sh (make test does)")
        let model = try #require(LlamaServer.tinyModel, "no tiny model: run scripts/setup.sh (make test does)")
        let scratch = try Scratch()
        let config = #"{"mcpServers":{"toolhost":{"command":"\#(toolhostBinary)","args":["serve","--workspace","\#(scratch.workspace)","--state-dir","\#(scratch.state)"]}}}"#
        let server = try await LlamaServer(binary: llama, model: model, extra: ["--mcp-servers-json", config])
        defer { server.stop() }
        let tools = try await #require(try JSONSerialization.jsonObject(with: server.get("/tools")) as? [[String: Any]])
        let names = tools.compactMap { $0["tool"] as? String }
        #expect(names.contains("toolhost_execute") && names.contains("toolhost_read_file") && names.contains("toolhost_git_commit"), "\(names)")
        func call(_ tool: String, _ params: [String: Any]) async throws -> String {
            let body = try JSONSerialization.data(withJSONObject: ["tool": tool, "params": params])
            let reply = try #require(try JSONSerialization.jsonObject(with: await server.post("/tools", body)) as? [String: Any])
            return (reply["plain_text_response"] as? String) ?? "error: \(reply)"
        }
        _ = try await call("toolhost_execute", ["command": "mkdir -p sub && cd sub && export GREETING=kept"])
        // A fresh toolhost process answers this one: the cwd and the export come from the state dir.
        let second = try await call("toolhost_execute", ["command": "pwd; echo $GREETING"])
        #expect(second.hasPrefix(scratch.workspace + "/sub\nkept\n"), "\(second)")
        _ = try await call("toolhost_write_file", ["path": "sub/n.txt", "content": "hello\n"])
        #expect(try await call("toolhost_read_file", ["path": "sub/n.txt"]).contains("1\thello"))
    }
}

/// Agent frameworks from PyPI, with scripted models: what reaches the model, and null optionals.
@Suite struct AgentFrameworkTests {
    func run(_ framework: String, python: String) async throws -> (seen: [String: Any], scratch: Scratch) {
        try #require(FileManager.default.isExecutableFile(atPath: python), "run scripts/setup.sh (make test does)")
        let scratch = try Scratch()
        let ran = try await runProgram(
            python, [repositoryRoot + "/Tests/Interop/agent_frameworks.py", framework, toolhostBinary, scratch.workspace, scratch.state])
        #expect(ran.status == 0, "\(framework) failed: \(ran.stderr.suffix(3000))")
        let last = ran.stdout.split(separator: "\n").last.map(String.init) ?? "{}"
        return (try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]), scratch)
    }

    /// pydantic-ai hands the model the structured content when a result has one: it must hold the
    /// command's output and the file's text, not only metadata.
    @Test func pydanticAIsModelSeesTheOutputAndTheFileText() async throws {
        let (seen, _) = try await run("pydantic-ai", python: repositoryRoot + "/.venv/bin/python")
        #expect(seen["output"] as? String == "done")
        let returns = try #require(seen["returns"] as? [[String: Any]])
        #expect(returns.count == 3)
        let execute = try #require(returns.first { $0["tool"] as? String == "execute" }?["content"] as? String)
        #expect(execute.contains("alpha\\nbeta\\n"), "\(execute)")
        let read = try #require(returns.first { $0["tool"] as? String == "read_file" }?["content"] as? String)
        #expect(read.contains("1\\talpha"), "\(read)")
    }

    @Test func mcpUseCallsWithNullsAndKeepsTheCwd() async throws {
        let (seen, scratch) = try await run("mcp-use", python: repositoryRoot + "/.venv-mcp-use/bin/python")
        #expect((seen["tools"] as? [String])?.contains("stop_background") == true)
        #expect(seen["first_error"] as? Bool == false, "\(seen["first"] ?? "")")
        #expect(seen["second_error"] as? Bool == false, "\(seen["second"] ?? "")")
        #expect((seen["second"] as? String)?.hasPrefix(scratch.workspace + "/d\n") == true)
    }
}
