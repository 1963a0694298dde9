import Foundation
import TestSupport
import Testing

/// Inspect AI's sandbox door: `sandbox="toolhost"` (python/toolhost_eval, registered through the
/// `inspect_ai` entry point), checked with Inspect's own conformance suite and a real eval.
@Suite struct InspectSandboxTests {
    static let python = repositoryRoot + "/.venv-eval/bin/python"

    /// The checks that assume a container's freedom, each with its reason (the README lists them).
    static let expectedFailures: [String: String] = [
        // /tmp is a fresh tmpfs for each exec: a file written there is gone at the next call.
        "test_cwd_absolute": "/tmp does not last between execs",
        "test_read_and_write_file_including_directory_absolute": "/tmp does not last between execs",
        "test_write_text_file_is_directory": "/tmp does not last between execs",
        "test_write_binary_file_is_directory": "/tmp does not last between execs",
        // One user: the sandbox's. adduser cannot write /etc.
        "test_exec_as_user": "no other users",
        // The command is its pid namespace's init, which the kernel shields from its own SIGTERM.
        "test_exec_timeout_not_raised_on_fast_signal_death": "the command is pid 1 of its namespace",
    ]

    func run(_ script: String, _ arguments: [String]) async throws -> [String: Any] {
        var environment = ProcessInfo.processInfo.environment
        environment["TOOLHOST_BIN"] = toolhostBinary
        let ran = try await runProgram(Self.python, [repositoryRoot + "/Tests/Interop/" + script] + arguments, environment: environment)
        #expect(ran.status == 0, "\(script) failed: \(ran.stderr.suffix(3000))")
        let start = try #require(ran.stdout.firstIndex(of: "{"), "no JSON in: \(ran.stdout.suffix(2000))")
        return try #require(try JSONSerialization.jsonObject(with: Data(ran.stdout[start...].utf8)) as? [String: Any])
    }

    @Test func inspectsOwnSelfCheckPassesButForTheListedChecks() async throws {
        let results = try await run("inspect_self_check.py", [])
        let failed = try #require(results["failed"] as? [String: String])
        let passed = try #require(results["passed"] as? [String])
        #expect(Set(failed.keys) == Set(Self.expectedFailures.keys), "failed: \(failed)")
        #expect(passed.count >= 25, "passed: \(passed)")
        #expect(passed.contains("test_exec_timeout_kills_child_processes") && passed.contains("test_read_and_write_large_file_binary"))
        // A symlink out of the workspace is followed inside the sandbox, not on the host.
        let leak = try #require(results["symlink_read"] as? String)
        #expect(leak.hasPrefix("FileNotFoundError") && !leak.contains("host secret"), "\(leak)")
    }

    @Test func anEvalOfTwoSamplesRunsEachInItsOwnWorkspace() async throws {
        let logs = try Scratch()
        let results = try await run("inspect_eval.py", [logs.root + "/logs"])
        #expect(results["status"] as? String == "success", "\(results)")
        let samples = try #require(results["samples"] as? [[String: Any]])
        #expect(samples.count == 2)
        var workspaces: Set<String> = []
        for sample in samples {
            #expect((sample["score"] as? [String: String])?["wrote_it"] == "C", "\(sample)")
            let printed = (sample["tool"] as? [String])?.first ?? ""
            #expect(printed.contains("toolhost-inspect-") && printed.hasSuffix("/workspace\n"), "pwd, and /root is hidden: \(printed)")
            workspaces.insert(printed)
        }
        #expect(workspaces.count == 2, "each sample has a workspace of its own")
    }
}
