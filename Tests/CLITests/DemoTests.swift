import Foundation
import TestSupport
import Testing

/// `make demo`'s scenario (scripts/demo.sh): the scripted competent model does the tag-manager
/// task through `toolhost run`, against a copy of the blog with a bare repository as its remote.
@Suite struct DemoTests {
    @Test func theTagManagerTaskEndsComplete() async throws {
        let scratch = try Scratch()
        let folder = scratch.root + "/demo"
        var environment = ProcessInfo.processInfo.environment
        environment["TOOLHOST_DEMO_DIR"] = folder
        let ran = try await runProgram("/bin/bash", [repositoryRoot + "/scripts/demo.sh", toolhostBinary], environment: environment)
        #expect(ran.status == 0, "\(ran.stdout.suffix(2000))\n\(ran.stderr.suffix(2000))")
        let run = AgentRun(ran: ran, folder: folder + "/run")
        let summary = try run.summary
        #expect(summary["outcome"] as? String == "complete")
        #expect((summary["builds"] as? [String: Any])?["passed"] as? Bool == true)
        #expect((summary["builds"] as? [String: Any])?["first_pass_attempt"] as? Int == 2, "one build error, fixed from its hint")
        #expect((summary["commits"] as? Int ?? 0) >= 3)
        #expect(summary["pushed_branch"] as? String == "agent/tag-manager")
        let shot = try #require(summary["screenshot"] as? String)
        #expect(FileManager.default.fileExists(atPath: shot))
        let remote = try await git("log", "--format=%s", "agent/tag-manager", in: folder + "/remote.git")
        #expect(remote.contains("Add the admin tags page with inline rename, delete and sort"))
        #expect(ran.stdout.contains("| mock-competent | 18"))
    }
}
