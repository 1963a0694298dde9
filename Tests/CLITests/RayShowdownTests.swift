import Foundation
import TestSupport
import Testing

/// `toolhost showdown --ray`: real Ray (a local cluster of two nodes with resources `alpha` and
/// `beta`, Tests/Interop/ray_cluster.py), scripted contestants placed by `ray_resources`, and a
/// node killed while it holds a run.
@Suite(.serialized) struct RayShowdownTests {
    /// The cluster helper, driven over its stdin.
    final class Cluster: @unchecked Sendable {
        let process = Process()
        let input = Pipe(), output = Pipe()
        let address: String
        let nodes: [String: String]

        init() throws {
            process.executableURL = URL(fileURLWithPath: repositoryRoot + "/.venv-eval/bin/python")
            process.arguments = [repositoryRoot + "/Tests/Interop/ray_cluster.py"]
            process.standardInput = input
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            let up = try Self.object(output.fileHandleForReading.readLine())
            address = try #require(up["address"] as? String)
            nodes = try #require(up["nodes"] as? [String: String])
        }

        static func object(_ line: String?) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data((line ?? "").utf8)) as? [String: Any], "the cluster helper said: \(line ?? "nothing")")
        }

        /// `kill NAME` or `replace NAME`; returns the helper's answer.
        func send(_ command: String) throws -> [String: Any] {
            input.fileHandleForWriting.write(Data((command + "\n").utf8))
            return try Self.object(output.fileHandleForReading.readLine())
        }

        deinit {
            input.fileHandleForWriting.write(Data("stop\n".utf8))
            process.waitUntilExit()
        }
    }

    /// A git repository to work on, and the showdown config for `contestants` (label, mock, resource).
    func showdown(_ scratch: Scratch, _ contestants: [(label: String, mock: MockEndpointProcess, resource: String)]) throws -> String {
        let repository = scratch.root + "/repo"
        try FileManager.default.createDirectory(atPath: repository, withIntermediateDirectories: true)
        try "# repo\n".write(toFile: repository + "/README.md", atomically: true, encoding: .utf8)
        _ = try git("init", "-q", "-b", "main", in: repository)
        _ = try git("add", "-A", in: repository)
        _ = try git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base", in: repository)
        let config = scratch.root + "/showdown.yaml"
        try """
            task: \(repositoryRoot)/fixtures/tasks/hello-file.md
            workspace: repo
            endpoints:
            \(contestants.map { "  - {label: \($0.label), url: \"\($0.mock.url)\", ray_resources: {\($0.resource): 1}}" }.joined(separator: "\n"))
            """.write(toFile: config, atomically: true, encoding: .utf8)
        return config
    }

    func summaries(_ out: String) throws -> [String: [String: Any]] {
        let results = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/results.json"))) as? [[String: Any]])
        return Dictionary(uniqueKeysWithValues: results.map { ($0["label"] as? String ?? "?", $0["summary"] as? [String: Any] ?? [:]) })
    }

    /// A script whose first request waits 30 s (the run is on its node when the node dies), then
    /// the competent hello-file answers: the retry's first request takes the second turn at once.
    static let slowThenCompetent = """
        model: retry-mock
        turns:
          - expect: {message_count: 2}
            delay_ms: 30000
            reply: {tool_calls: [{name: write_file, arguments: {path: hello.txt, content: "hello from toolhost\\n"}}]}
          - expect: {message_count: 2}
            reply: {tool_calls: [{name: write_file, arguments: {path: hello.txt, content: "hello from toolhost\\n"}}]}
          - reply: {tool_calls: [{name: read_file, arguments: {path: hello.txt}}]}
          - reply: {tool_calls: [{name: git_commit, arguments: {message: "Add hello.txt", paths: [hello.txt]}}]}
          - reply: {text: done}
        """

    /// ~30 s. Each contestant's run goes to the node with its resource, and is recorded there; the
    /// node holding one run dies mid-run and a new box with the same resource joins: the run is
    /// retried once, there, and completes. Results are gathered here as a local showdown writes them.
    @Test func eachRunGoesWhereItsResourcesAreAndABoxThatDiesIsRetriedOnce() throws {
        let scratch = try Scratch()
        let cluster = try Cluster()
        let competent = try MockEndpointProcess(scratch, fixture: "competent-hello.yaml")
        let slow = try MockEndpointProcess(scratch, script: Self.slowThenCompetent)
        let config = try showdown(scratch, [("fast-one", competent, "alpha"), ("slow-one", slow, "beta")])
        let out = scratch.root + "/out"
        let killer = Thread {
            guard appears(withArgument: "slow-one") else { return }
            _ = try? cluster.send("replace beta")
        }
        killer.start()
        let ran = try scratch.toolhost(["showdown", "--config", config, "--out", out, "--ray", cluster.address, "--state-dir", scratch.state])
        #expect(ran.status == 0, "\(ran.stderr.suffix(3000))")
        let runs = try summaries(out)
        #expect(runs["fast-one"]?["node"] as? String == cluster.nodes["alpha"], "\(runs)")
        #expect(runs["fast-one"]?["outcome"] as? String == "complete")
        let retried = try #require(runs["slow-one"])
        #expect(retried["outcome"] as? String == "complete" && retried["harness_error"] as? Bool == false, "\(retried)")
        let node = retried["node"] as? String
        #expect(node != nil && node != cluster.nodes["beta"] && node != cluster.nodes["alpha"], "retried on the new box: \(node ?? "none")")
        let log = try String(contentsOfFile: out + "/ray-driver.log", encoding: .utf8)
        #expect(log.contains("its node died; retrying it once elsewhere"), "\(log.suffix(2000))")
        for file in ["results.md", "models.json", "mapping.json", "sealed.txt", "chart.svg", "run-1/transcript.jsonl", "run-2/trajectory.json"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + file), "\(file)")
        }
    }

    /// ~25 s. The node holding a run dies and no other node has its resource: the run is a harness
    /// error (counted apart from the models' failures), the other contestant's is unaffected, and
    /// the showdown ends instead of waiting for a node that never comes.
    @Test func aRunNoLiveNodeCanTakeAgainIsAHarnessError() throws {
        let scratch = try Scratch()
        let cluster = try Cluster()
        let competent = try MockEndpointProcess(scratch, fixture: "competent-hello.yaml")
        let slow = try MockEndpointProcess(scratch, script: Self.slowThenCompetent)
        let config = try showdown(scratch, [("fast-one", competent, "alpha"), ("stranded", slow, "beta")])
        let out = scratch.root + "/out"
        let killer = Thread {
            guard appears(withArgument: "stranded") else { return }
            _ = try? cluster.send("kill beta")
        }
        killer.start()
        let ran = try scratch.toolhost(["showdown", "--config", config, "--out", out, "--ray", cluster.address, "--state-dir", scratch.state])
        #expect(ran.status == 1, "a harness error fails the showdown: \(ran.stderr.suffix(2000))")
        let runs = try summaries(out)
        #expect(runs["fast-one"]?["outcome"] as? String == "complete" && runs["fast-one"]?["node"] as? String == cluster.nodes["alpha"], "\(runs)")
        let stranded = try #require(runs["stranded"])
        #expect(stranded["harness_error"] as? Bool == true, "\(stranded)")
        #expect((stranded["error"] as? String ?? "").contains("beta"), "the error names the resource: \(stranded)")
    }

    @Test func aClusterThatIsNotThereIsNamed() throws {
        let scratch = try Scratch()
        let competent = try MockEndpointProcess(scratch, fixture: "competent-hello.yaml")
        let config = try showdown(scratch, [("fast-one", competent, "alpha")])
        let ran = try scratch.toolhost(["showdown", "--config", config, "--out", scratch.root + "/out", "--ray", "127.0.0.1:1", "--state-dir", scratch.state])
        #expect(ran.status != 0)
        #expect(ran.stderr.contains("did not connect") && ran.stderr.contains("ray start --head"), "\(ran.stderr.suffix(1500))")
    }
}
