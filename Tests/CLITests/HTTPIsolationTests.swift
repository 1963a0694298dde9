import Foundation
import TestSupport
import Testing

/// No HTTP client reaches another's shell: by default (two stock clients of each era), nor by naming
/// it; a client that passes its handle back keeps its shell; the session cap gives way by least
/// recent use, never taking a busy session.
@Suite struct HTTPIsolationTests {
    static func handles(_ arguments: [String]) async throws -> [String: Any] {
        let ran = try await runProgram(repositoryRoot + "/.venv/bin/python", [repositoryRoot + "/Tests/Interop/mcp_handles.py"] + arguments)
        return try #require(
            try JSONSerialization.jsonObject(with: Data((ran.stdout.split(separator: "\n").last ?? "{}").utf8)) as? [String: Any],
            "\(ran.stderr.suffix(3000))")
    }

    /// The report's case: two clients with default settings, the first exporting API_KEY and moving
    /// its cwd. The second sees neither; the first keeps both (by its handle, or its MCP session).
    @Test(arguments: ["auto", "legacy"])
    func twoDefaultClientsGetShellsOfTheirOwn(mode: String) async throws {
        let scratch = try Scratch()
        let server = try await HTTPServerProcess(scratch)
        let seen = try await Self.handles(["isolation", server.url, mode])
        let second = try #require(seen["second"] as? String, "\(seen)")
        #expect(!second.contains("alpha-key") && second.contains("key=\n"), "the second client read the first's export: \(second)")
        #expect(second.contains("\n\(scratch.workspace)\n") || second.hasSuffix("\n\(scratch.workspace)"), "the second client starts at the root: \(second)")
        let again = try #require(seen["first_again"] as? String, "\(seen)")
        #expect(again.hasPrefix("key=alpha-key\n\(scratch.workspace)/mine\n"), "the first client kept its shell: \(again)")
        if mode == "auto" {
            let first = try #require(seen["first_handle"] as? String)
            #expect(first.hasPrefix("th-") && first.count == 35)
            #expect(seen["second_handle"] as? String != first)
            #expect((seen["first_note"] as? String)?.contains("\"session\": \"\(first)\"") == true, "the result says how to keep the shell")
        }
    }

    /// Names are not keys: a made-up name is refused (403), a handle nobody minted is not found
    /// (404), a handshake client cannot open a live handle's shell; the minted handle works as a
    /// header and as an argument, and its result then carries no note.
    @Test func aSessionIsReachedOnlyByItsHandle() async throws {
        let scratch = try Scratch()
        let server = try await HTTPServerProcess(scratch)
        let seen = try await Self.handles(["naming", server.url])
        let minted = try #require(seen["minted"] as? [String: Any], "\(seen)")
        let handle = try #require(minted["header"] as? String)
        #expect(minted["meta"] as? String == handle)
        let byHeader = try #require(seen["by_header"] as? [String: Any])
        #expect((byHeader["text"] as? String)?.hasPrefix("kept=yes\n\(scratch.workspace)/kept\n") == true, "\(byHeader)")
        let byArgument = try #require(seen["by_argument"] as? [String: Any])
        let content = try #require(byArgument["content"] as? [[String: Any]])
        #expect(content.count == 1 && (content[0]["text"] as? String)?.hasPrefix("kept=yes\n") == true, "\(byArgument)")
        let madeUp = try #require(seen["made_up"] as? [String: Any])
        #expect(madeUp["status"] as? Int == 403 && (madeUp["message"] as? String)?.contains("--shared-session") == true, "\(madeUp)")
        #expect((seen["unknown"] as? [String: Any])?["status"] as? Int == 404, "\(seen)")
        #expect(seen["not_a_string"] as? Int == 400 && seen["header_and_argument_differ"] as? Int == 400, "\(seen)")
        #expect(seen["handshake_made_up"] as? Int == 403)
        #expect(seen["handshake_live_handle"] as? Int == 409)
        let handshake = try #require(seen["handshake_default"] as? [String: Any])
        #expect(handshake["status"] as? Int == 200 && (handshake["header"] as? String)?.hasPrefix("th-") == true)
    }

    /// The operator's names: `--shared-session` and a `--session` other than the default may be
    /// joined by name; any other name is still refused.
    @Test(arguments: [["--shared-session", "alice"], ["--session", "alice"]])
    func anOperatorsNameMayBeJoined(extra: [String]) async throws {
        let scratch = try Scratch()
        let server = try await HTTPServerProcess(scratch, extra: extra)
        let script = #"""
            import json, sys
            sys.path.insert(0, sys.argv[2])
            from mcp_handles import call
            url = sys.argv[1]
            first = call(url, "export SHARED=yes", {"Toolhost-Session": "alice"})[0]
            _, _, message = call(url, "echo shared=$SHARED", {"Toolhost-Session": "alice"})
            other = call(url, "true", {"Toolhost-Session": "bob"})[0]
            print(json.dumps({"first": first, "text": message["result"]["content"][0]["text"], "other": other}))
            """#
        let ran = try await runProgram(repositoryRoot + "/.venv/bin/python", ["-c", script, server.url, repositoryRoot + "/Tests/Interop"])
        let seen = try #require(try JSONSerialization.jsonObject(with: Data(ran.stdout.utf8)) as? [String: Any], "\(ran.stderr.suffix(2000))")
        #expect(seen["first"] as? Int == 200 && (seen["text"] as? String)?.hasPrefix("shared=yes\n") == true, "\(seen)")
        #expect(seen["other"] as? Int == 403)
        #expect(server.log.contains { $0.contains("session alice is shared") }, "the server says so")
    }

    /// At the cap, the least recently used idle session gives way within seconds; a session with a
    /// call running never does (503 with Retry-After instead).
    @Test func theCapEvictsTheLeastRecentlyUsedIdleSession() async throws {
        let scratch = try Scratch()
        let server = try await HTTPServerProcess(scratch, extra: ["--max-sessions", "2"])
        let script = #"""
            import json, sys, threading, time
            sys.path.insert(0, sys.argv[2])
            from mcp_handles import call
            url = sys.argv[1]
            seen = {}
            _, old, _ = call(url, "echo old")
            time.sleep(0.5)
            _, newer, _ = call(url, "echo newer")
            busy = threading.Thread(target=call, args=(url, "sleep 9", {"Toolhost-Session": newer}))
            busy.start()
            time.sleep(6)
            status, third, _ = call(url, "echo third")
            seen["third"] = status
            status, _, _ = call(url, "echo old again", {"Toolhost-Session": old})
            seen["old_again"] = status
            status, _, message = call(url, "echo fourth")
            seen["fourth"] = status
            busy.join()
            status, _, message = call(url, "echo newer again", {"Toolhost-Session": newer})
            seen["newer_again"] = {"status": status, "text": message["result"]["content"][0]["text"] if status == 200 else None}
            print(json.dumps(seen))
            """#
        let ran = try await runProgram(repositoryRoot + "/.venv/bin/python", ["-c", script, server.url, repositoryRoot + "/Tests/Interop"])
        let seen = try #require(try JSONSerialization.jsonObject(with: Data(ran.stdout.utf8)) as? [String: Any], "\(ran.stderr.suffix(2000))")
        #expect(seen["third"] as? Int == 200, "the idle session gave way: \(seen)")
        // Evicted: not live any more (it could come back from its saved state, but there is no room now).
        #expect([404, 503].contains(seen["old_again"] as? Int), "the evicted one was the least recently used: \(seen)")
        #expect(seen["fourth"] as? Int == 503, "the busy and the just-used sessions stay: \(seen)")
        let newer = try #require(seen["newer_again"] as? [String: Any])
        #expect(newer["status"] as? Int == 200 && (newer["text"] as? String)?.hasPrefix("newer again") == true, "\(seen)")
    }
}

/// stdio: a second server on a live session's workspace and name refuses, naming the first; another
/// name starts, and the same name starts again once the first is gone (restart continuity).
@Suite struct StdioSessionLockTests {
    @Test func aSecondServerOnALiveSessionRefuses() async throws {
        let scratch = try Scratch()
        let arguments = ["serve", "--workspace", scratch.workspace, "--state-dir", scratch.state]
        let first = Process()
        first.executableURL = URL(fileURLWithPath: toolhostBinary)
        first.arguments = arguments
        let input = Pipe(), output = Pipe()
        first.standardInput = input
        first.standardOutput = output
        first.standardError = FileHandle.nullDevice
        try first.run()
        defer { if first.isRunning { first.terminate() } }
        // Once it answers, it holds the lock (taken before the session opens).
        let initialize = #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#
        input.fileHandleForWriting.write(Data((initialize + "\n").utf8))
        let answered = await output.fileHandleForReading.readLine()
        #expect(answered?.contains("\"protocolVersion\"") == true, "\(answered ?? "no answer")")
        let second = try await runProgram(toolhostBinary, arguments)
        #expect(second.status != 0)
        #expect(second.stderr.contains("in use by another toolhost (pid \(first.processIdentifier))"), "\(second.stderr)")
        let other = try await runProgram(toolhostBinary, arguments + ["--session", "other"])
        #expect(other.status == 0, "\(other.stderr)")
        try input.fileHandleForWriting.close()
        await first.exited()
        let again = try await runProgram(toolhostBinary, arguments)
        #expect(again.status == 0, "\(again.stderr)")
    }
}

/// A toolhost killed with SIGKILL cannot clean up: the next toolhost on the machine kills what its
/// sessions left running (their cgroups name the dead owner) before it starts its own.
@Suite struct OrphanRecoveryTests {
    @Test func aKilledServersBackgroundProcessesDieAtTheNextStart() async throws {
        let scratch = try Scratch()
        let duration = uniqueSleep()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: toolhostBinary)
        server.arguments = ["serve", "--workspace", scratch.workspace, "--state-dir", scratch.state]
        let input = Pipe(), output = Pipe()
        server.standardInput = input
        server.standardOutput = output
        server.standardError = FileHandle.nullDevice
        try server.run()
        let lines = [
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#,
            #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"execute","arguments":{"command":"sleep \#(duration)","background":true}}}"#,
        ]
        input.fileHandleForWriting.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        #expect(await appears(withArgument: duration), "the background command started")
        kill(server.processIdentifier, SIGKILL)
        await server.exited()
        // Nothing runs at a SIGKILL, so the orphan lives on until a toolhost starts (in a parallel
        // test run that may be another test's).
        let next = try await runProgram(
            toolhostBinary, ["call", "execute", #"{"command":"true"}"#, "--workspace", scratch.workspace, "--state-dir", scratch.state])
        #expect(next.status == 0, "\(next.stderr)")
        #expect(await allGone(withArgument: duration), "the next toolhost killed the orphan")
    }
}
