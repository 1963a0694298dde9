import Foundation
import TestSupport
import Testing

/// `toolhost showdown --ray`: real Ray (a local cluster of a node with resource `alpha` and two with
/// `beta`, Tests/Interop/ray_cluster.py), scripted contestants placed by `ray_resources`, and the
/// node that holds a run killed mid-run.
@Suite(.serialized) struct RayShowdownTests {
    /// The cluster helper, driven over its stdin.
    final class Cluster: @unchecked Sendable {
        let process = Process()
        let input = Pipe(), output = Pipe()
        let address: String
        let nodes: [String: String]
        /// The environment for a showdown driven from here: the driver attaches to the head's
        /// raylet (the nodes share this box), as it would to its own box's.
        let environment: [String: String]

        init() async throws {
            process.executableURL = URL(fileURLWithPath: repositoryRoot + "/.venv-eval/bin/python")
            process.arguments = [repositoryRoot + "/Tests/Interop/ray_cluster.py"]
            process.standardInput = input
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            let up = try Self.object(await output.fileHandleForReading.readLine())
            address = try #require(up["address"] as? String)
            nodes = try #require(up["nodes"] as? [String: String])
            environment = ProcessInfo.processInfo.environment.merging(["TOOLHOST_RAY_NODE_IP": try #require(up["head_ip"] as? String)]) { $1 }
        }

        static func object(_ line: String?) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data((line ?? "").utf8)) as? [String: Any], "the cluster helper said: \(line ?? "nothing")")
        }

        /// `kill NAME` or `kill-node ID`; returns the helper's answer.
        func send(_ command: String) async throws -> [String: Any] {
            input.fileHandleForWriting.write(Data((command + "\n").utf8))
            return try Self.object(await output.fileHandleForReading.readLine())
        }

        deinit {
            input.fileHandleForWriting.write(Data("stop\n".utf8))
            process.waitUntilExit()
        }
    }

    /// A git repository to work on, and the showdown config for `contestants` (label, mock, resource).
    func showdown(_ scratch: Scratch, _ contestants: [(label: String, mock: MockEndpointProcess, resource: String)]) async throws -> String {
        let repository = scratch.root + "/repo"
        try FileManager.default.createDirectory(atPath: repository, withIntermediateDirectories: true)
        try "# repo\n".write(toFile: repository + "/README.md", atomically: true, encoding: .utf8)
        _ = try await git("init", "-q", "-b", "main", in: repository)
        _ = try await git("add", "-A", in: repository)
        _ = try await git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base", in: repository)
        let config = scratch.root + "/showdown.yaml"
        try """
            task: \(repositoryRoot)/fixtures/tasks/hello-file.md
            workspace: repo
            endpoints:
            \(contestants.map { "  - {label: \($0.label), url: \"\($0.mock.url)\", ray_resources: {\($0.resource): 1}}" }.joined(separator: "\n"))
            """.write(toFile: config, atomically: true, encoding: .utf8)
        return config
    }

    /// Waits up to 120 s (a loaded CI machine starts a run on a node slowly) for the node's toolhost
    /// taking the run of the contestant `label`, and returns the node it runs on (its `--node`).
    static func nodeRunning(_ label: String) async -> String? {
        for _ in 0..<1200 {
            for pid in livePids(withArgument: label) {
                let argv = ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").split(separator: "\0").map(String.init)
                if let flag = argv.firstIndex(of: "--node"), flag + 1 < argv.count { return argv[flag + 1] }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    /// `toolhost showdown --ray` on the cluster, driven from here.
    func showdownOnRay(_ cluster: Cluster, config: String, out: String, scratch: Scratch) async throws -> Ran {
        try await runProgram(
            toolhostBinary, ["showdown", "--config", config, "--out", out, "--ray", cluster.address, "--state-dir", scratch.state],
            environment: cluster.environment)
    }

    /// Waits up to 120 s for a file in `folder` (the mock's record of a request).
    static func waitForFile(in folder: String) async -> Bool {
        await eventually(within: .seconds(120)) { !((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).isEmpty }
    }

    /// What a box that dies takes with it: removing a node of this one-box cluster stops its raylet,
    /// but its worker's toolhost would run on and talk to the mock beside the retry.
    static func killWhatRanOn(_ node: String) {
        for pid in livePids(withArgument: node) { kill(pid, SIGKILL) }
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

    /// ~30 s. Each contestant's run goes to a node with its resource, and is recorded there; the
    /// node holding one run dies mid-run: the run is sent again once, and ends either complete on
    /// the other node with that resource or as a harness error naming the death (on this one-box
    /// cluster the retry can die with the dead raylet too), never as the model's failure and never
    /// by waiting forever. Results are gathered here as a local showdown writes them.
    @Test func eachRunGoesWhereItsResourcesAreAndABoxThatDiesIsRetriedOnce() async throws {
        let scratch = try Scratch()
        let cluster = try await Cluster()
        let competent = try await MockEndpointProcess(scratch, fixture: "competent-hello.yaml")
        let requests = scratch.root + "/requests"
        try FileManager.default.createDirectory(atPath: requests, withIntermediateDirectories: true)
        let slow = try await MockEndpointProcess(scratch, script: Self.slowThenCompetent, record: requests)
        let config = try await showdown(scratch, [("fast-one", competent, "alpha"), ("slow-one", slow, "beta")])
        let out = scratch.root + "/out"
        let killed = LockedValue<String?>(nil)
        let killer = Task {
            // Once the run's first request is in (its 30 s wait taken), so the retry's is the second.
            guard await Self.waitForFile(in: requests), let node = await Self.nodeRunning("slow-one") else { return }
            killed.set(node)
            _ = try? await cluster.send("kill-node \(node)")
            Self.killWhatRanOn(node)
        }
        let ran = try await showdownOnRay(cluster, config: config, out: out, scratch: scratch)
        await killer.value
        let log = try String(contentsOfFile: out + "/ray-driver.log", encoding: .utf8)
        let runs = try summaries(out)
        #expect(runs["fast-one"]?["node"] as? String == cluster.nodes["alpha"], "\(runs)")
        #expect(runs["fast-one"]?["outcome"] as? String == "complete")
        let betas = [cluster.nodes["beta-1"], cluster.nodes["beta-2"]]
        #expect(killed.get() != nil && betas.contains(killed.get()), "the node holding the run was killed: \(killed.get() ?? "none")")
        #expect(log.contains("its node died; retrying it once elsewhere"), "\(log.suffix(2000))")
        let retried = try #require(runs["slow-one"])
        if retried["harness_error"] as? Bool == true {
            #expect(ran.status == 1 && (retried["error"] as? String ?? "").contains("died"), "\(retried)")
        } else {
            #expect(ran.status == 0 && retried["outcome"] as? String == "complete", "\(retried) \(ran.stderr.suffix(2000))")
            let node = retried["node"] as? String
            #expect(node != nil && betas.contains(node) && node != killed.get(), "retried on the other beta node: \(node ?? "none")")
        }
        for file in ["results.md", "models.json", "mapping.json", "sealed.txt", "chart.svg"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + file), "\(file)")
        }
        let fast = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/results.json"))) as? [[String: Any]])
            .first { $0["label"] as? String == "fast-one" }?["run"] as? String
        for file in ["transcript.jsonl", "trajectory.json", "summary.json"] {
            #expect(FileManager.default.fileExists(atPath: "\(out)/\(fast ?? "?")/\(file)"), "the node sent \(file) back")
        }
    }

    /// ~25 s. The node holding a run dies, and so does the other one with its resource: the run is a harness
    /// error (counted apart from the models' failures), the other contestant's is unaffected, and
    /// the showdown ends instead of waiting for a node that never comes.
    @Test func aRunNoLiveNodeCanTakeAgainIsAHarnessError() async throws {
        let scratch = try Scratch()
        let cluster = try await Cluster()
        let competent = try await MockEndpointProcess(scratch, fixture: "competent-hello.yaml")
        let slow = try await MockEndpointProcess(scratch, script: Self.slowThenCompetent)
        let config = try await showdown(scratch, [("fast-one", competent, "alpha"), ("stranded", slow, "beta")])
        let out = scratch.root + "/out"
        let killer = Task {
            guard let node = await Self.nodeRunning("stranded") else { return }
            // The idle one first, so that no node with the resource is left for the retry.
            _ = try? await cluster.send(node == cluster.nodes["beta-1"] ? "kill beta-2" : "kill beta-1")
            _ = try? await cluster.send("kill-node \(node)")
            Self.killWhatRanOn(node)
        }
        let ran = try await showdownOnRay(cluster, config: config, out: out, scratch: scratch)
        await killer.value
        #expect(ran.status == 1, "a harness error fails the showdown: \(ran.stderr.suffix(2000))")
        let runs = try summaries(out)
        #expect(runs["fast-one"]?["outcome"] as? String == "complete" && runs["fast-one"]?["node"] as? String == cluster.nodes["alpha"], "\(runs)")
        let stranded = try #require(runs["stranded"])
        #expect(stranded["harness_error"] as? Bool == true, "\(stranded)")
        let error = stranded["error"] as? String ?? ""
        #expect(error.contains("beta") || error.contains("died"), "the error names the resource or the death: \(stranded)")
    }

    @Test func aClusterThatIsNotThereIsNamed() async throws {
        let scratch = try Scratch()
        let competent = try await MockEndpointProcess(scratch, fixture: "competent-hello.yaml")
        let config = try await showdown(scratch, [("fast-one", competent, "alpha")])
        let ran = try await scratch.toolhost(["showdown", "--config", config, "--out", scratch.root + "/out", "--ray", "127.0.0.1:1", "--state-dir", scratch.state])
        #expect(ran.status != 0)
        #expect(ran.stderr.contains("did not connect") && ran.stderr.contains("ray start --head"), "\(ran.stderr.suffix(1500))")
    }
}

/// A value one thread sets and another reads.
final class LockedValue<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func get() -> Value { lock.withLock { value } }
    func set(_ new: Value) { lock.withLock { value = new } }
}
