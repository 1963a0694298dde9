import Foundation
import TestSupport
import Testing

/// `toolhost showdown` with three mock endpoints (a competent model, a looping one, one that writes
/// its calls as Hermes text) on the fixture blog with a bare remote.
@Suite struct ShowdownTests {
    @Test func threeEndpointsGiveTheTableTheSealedMappingAndTheChart() async throws {
        let scratch = try Scratch()
        let blog = scratch.root + "/blog", remote = scratch.root + "/remote.git"
        try FileManager.default.createDirectory(atPath: blog, withIntermediateDirectories: true)
        for entry in try FileManager.default.contentsOfDirectory(atPath: repositoryRoot + "/fixtures/repos/blog") where entry != "dist" {
            try FileManager.default.copyItem(atPath: repositoryRoot + "/fixtures/repos/blog/" + entry, toPath: blog + "/" + entry)
        }
        try await git("init", "-q", "-b", "main", in: blog)
        try await git("config", "user.name", "T", in: blog)
        try await git("config", "user.email", "t@example.com", in: blog)
        try await git("add", "-A", in: blog)
        try await git("commit", "-qm", "base", in: blog)
        try await git("init", "-q", "--bare", "-b", "main", remote, in: scratch.root)
        try await git("remote", "add", "origin", remote, in: blog)
        try await git("push", "-q", "origin", "main", in: blog)
        let competent = try await MockEndpointProcess(scratch, fixture: "competent-tag-manager.yaml")
        let hermes = try await MockEndpointProcess(scratch, fixture: "hermes-tag-manager.yaml")
        let looping = try await MockEndpointProcess(scratch, fixture: "replays/cwd-amnesia.yaml")
        let config = scratch.root + "/showdown.yaml"
        try """
            task: \(repositoryRoot)/fixtures/tasks/tag-manager.md
            workspace: blog
            endpoints:
              - {label: competent, url: "\(competent.url)"}
              - {label: hermes-text, url: "\(hermes.url)"}
              - {label: looping, url: "\(looping.url)"}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let out = scratch.root + "/out"
        let ran = try await scratch.toolhost(["showdown", "--config", config, "--out", out, "--parallel", "3", "--state-dir", scratch.state])
        #expect(ran.status == 0, "\(ran.stdout)\n\(ran.stderr)")

        // The seal published first matches the mapping revealed last.
        let sealed = try String(contentsOfFile: out + "/sealed.txt", encoding: .utf8)
        let digest = try await git("hash-object", out + "/mapping.json", in: scratch.root).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(sealed.contains(digest) && digest.count == 40)
        let mapping = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/mapping.json"))) as? [String: Any])
        let runs = try #require(mapping["runs"] as? [String: String])
        #expect(Set(runs.values) == ["competent", "hermes-text", "looping"])
        #expect(Set(runs.keys) == ["run-1", "run-2", "run-3"])

        let results = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/results.json"))) as? [[String: Any]])
        var outcomes: [String: String] = [:]
        for result in results {
            let summary = try #require(result["summary"] as? [String: Any])
            outcomes[result["label"] as? String ?? ""] = summary["outcome"] as? String
            // Each run pushed (or not) its own branch from the same base, named for this showdown.
            #expect(summary["branch"] as? String == "showdown-\(digest.prefix(8))/\(result["run"] as? String ?? "")")
        }
        #expect(outcomes == ["competent": "complete", "hermes-text": "complete", "looping": "failed"])
        let pushed = try await git("branch", "--list", "showdown-\(digest.prefix(8))/run-*", in: remote).split(separator: "\n").count
        #expect(pushed == 2)

        let table = try String(contentsOfFile: out + "/results.md", encoding: .utf8)
        for (run, label) in runs { #expect(table.contains("| \(run) (\(label))")) }
        #expect(table.contains("tool calls") && table.contains("total tokens"))
        // The ATIF column counts each run's trajectory steps: they are written before the table.
        for (run, _) in runs {
            let row = try #require(table.split(separator: "\n").first { $0.hasPrefix("| \(run) (") })
            let steps = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }[3]
            #expect(Int(steps) ?? 0 > 0, "\(row)")
        }
        let svg = try String(contentsOfFile: out + "/chart.svg", encoding: .utf8)
        #expect(svg.contains("hermes-text") && svg.contains("#d64545") && svg.contains("#2e9d5b"))
        let png = try Data(contentsOf: URL(fileURLWithPath: out + "/chart.png"))
        #expect(png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
    }

    /// Each contestant may bring its own budgets, guardrails and reply cap; a bad one is named.
    @Test func aContestantBringsItsOwnBudgetsGuardrailsAndReplyCap() async throws {
        let scratch = try Scratch()
        let repository = scratch.root + "/repo"
        try FileManager.default.createDirectory(atPath: repository, withIntermediateDirectories: true)
        try await git("init", "-q", "-b", "main", in: repository)
        try "x\n".write(toFile: repository + "/a.txt", atomically: true, encoding: .utf8)
        try await git("add", "-A", in: repository)
        try await git("-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qm", "base", in: repository)
        try "Read a.txt over and over.\n".write(toFile: scratch.root + "/task.md", atomically: true, encoding: .utf8)
        let call = "{name: read_file, arguments: {path: a.txt}}"
        let mock = try await MockEndpointProcess(scratch, script: """
            repeats: true
            turns:
              - expect: {max_tokens: 77}
                reply: {tool_calls: [\(call)]}
              - reply: {tool_calls: [\(call)]}
              - reply: {tool_calls: [\(call)]}
              - reply: {tool_calls: [\(call)]}
            """)
        let config = scratch.root + "/showdown.yaml"
        try """
            task: task.md
            workspace: repo
            endpoints:
              - {label: capped, url: "\(mock.url)", budgets: {tool_calls: 3}, guardrails: off, max_reply_tokens: 77}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let out = scratch.root + "/out"
        let ran = try await scratch.toolhost(["showdown", "--config", config, "--out", out, "--state-dir", scratch.state])
        #expect(ran.status == 0, "\(ran.stdout)\n\(ran.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/run-1/summary.json"))) as? [String: Any])
        // With the guardrails on, the third identical read would have earned a note and the fifth a stop.
        #expect(summary["stop_reason"] as? String == "budget_tool_calls", "\(summary)")
        #expect(summary["notes"] as? Int == 0 && summary["tool_calls"] as? Int == 3)

        try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "guardrails: off", with: "guardrails: [repeated-cal]")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let bad = try await scratch.toolhost(["showdown", "--config", config, "--out", scratch.root + "/out2"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("endpoints[0].guardrails: no guardrail named repeated-cal"), "\(bad.stderr)")
    }

    @Test func aBrokenConfigSaysWhatIsWrong() async throws {
        let scratch = try Scratch()
        let config = scratch.root + "/bad.yaml"
        try "task: nope.md\nworkspace: .\nendpoints: []\n".write(toFile: config, atomically: true, encoding: .utf8)
        let ran = try await scratch.toolhost(["showdown", "--config", config])
        #expect(ran.status == 2)
        #expect(ran.stderr.contains("needs 'endpoints'"), "\(ran.stderr)")
    }
}
