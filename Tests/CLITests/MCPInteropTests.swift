import Foundation
import TestSupport
import Testing

/// `toolhost serve` against the official Python MCP client (pinned in .venv by scripts/setup.sh).
@Suite struct MCPInteropTests {
    static let python = repositoryRoot + "/.venv/bin/python"
    static let script = repositoryRoot + "/Tests/Interop/mcp_stdio_client.py"

    private func client(_ mode: String, _ scratch: Scratch) async throws -> [String: Any] {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.python),
            "no .venv with the Python MCP client: run scripts/setup.sh (make test does)")
        let ran = try await runProgram(Self.python, [Self.script, toolhostBinary, scratch.workspace, scratch.state, mode])
        #expect(ran.status == 0, "client failed: \(ran.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(ran.stdout.utf8))
        return try #require(json as? [String: Any])
    }

    @Test func pythonClientListsAndCallsEveryTool() async throws {
        let scratch = try Scratch()
        let seen = try await client("full", scratch)
        #expect(seen["tools"] as? [String] == [
            "execute", "list_background", "stop_background", "read_file", "write_file", "edit_file", "grep", "glob", "build", "screenshot", "git_status", "git_diff",
            "git_branch", "git_commit", "git_push", "checkpoints", "undo",
        ])
        #expect(seen["schemas_are_objects"] as? Bool == true)
        let calls = try #require(seen["calls"] as? [String: [String: Any]])
        for (name, result) in calls {
            #expect(result["isError"] as? Bool == false, "\(name): \(result["text"] ?? "")")
        }
        #expect((calls["read_file"]?["text"] as? String)?.hasPrefix("     1\talpha\n     2\tbeta\n") == true)
        #expect((calls["execute"]?["text"] as? String)?.hasPrefix("alpha\ngamma\n") == true)
        #expect((calls["grep"]?["text"] as? String)?.hasPrefix("notes/a.txt\n2: gamma\n") == true, "\(calls["grep"] ?? [:])")
        #expect((calls["glob"]?["text"] as? String)?.hasPrefix("notes/a.txt\n") == true)
        #expect((seen["pwd_after_cd"] as? String)?.hasPrefix(scratch.workspace + "/notes\n") == true)
        let gitCalls = try #require(seen["git"] as? [String: [String: Any]])
        for name in ["git_branch", "git_status", "git_diff", "git_commit"] {
            #expect(gitCalls[name]?["isError"] as? Bool == false, "\(name): \(gitCalls[name]?["text"] ?? "")")
        }
        #expect((gitCalls["execute"]?["text"] as? String)?.contains("git_commit (which also creates the repository)") == true)
        #expect((gitCalls["git_commit"]?["text"] as? String)?.contains("Created the repository (branch main).\nCommitted") == true)
        #expect((gitCalls["git_status"]?["text"] as? String)?.contains("run-1") == true)
        #expect((gitCalls["git_push"]?["text"] as? String)?.contains("no remote named origin") == true)
        let unknown = try #require(seen["unknown"] as? [String: Any])
        #expect(unknown["protocol_error"] as? Int == -32602)
        #expect((unknown["text"] as? String)?.contains("unknown tool 'no_such_tool'") == true)
        for key in ["escape", "missing_param"] {
            let result = try #require(seen[key] as? [String: Any])
            #expect(result["isError"] as? Bool == true)
            #expect((result["text"] as? String)?.hasPrefix("Error: ") == true)
        }
    }

    @Test func aScreenshotArrivesAsMCPImageContent() async throws {
        let scratch = try Scratch()
        let seen = try await client("screenshot", scratch)
        #expect(seen["isError"] as? Bool == false, "\(seen["text"] ?? "")")
        #expect((seen["text"] as? String)?.contains("title \"Shot\": 640×480") == true)
        let images = try #require(seen["images"] as? [[String: Any]])
        #expect(images.count == 1 && images.first?["mimeType"] as? String == "image/png")
        #expect((images.first?["bytes"] as? Int ?? 0) > 1000)
    }

    @Test func aRestartedServerKeepsTheCwd() async throws {
        let scratch = try Scratch()
        _ = try await client("full", scratch)
        let seen = try await client("pwd", scratch)
        #expect((seen["pwd"] as? String)?.hasPrefix(scratch.workspace + "/notes\n") == true)
    }
}
