import Foundation
import TestSupport
import Testing

/// Harbor's door: real Harbor 0.25 (`harbor run`) with toolhost_eval.harbor's environment (trials in
/// confined toolhost workspaces, no Docker) and agent (`toolhost run`), on the tasks in
/// fixtures/harbor: Harbor's hello-world example, toolhost's hello-file, and one that needs a
/// package no machine has.
@Suite(.serialized) struct HarborTests {
    static let harbor = repositoryRoot + "/.venv-eval/bin/harbor"
    static let python = repositoryRoot + "/.venv-eval/bin/python"
    static let tasks = repositoryRoot + "/fixtures/harbor"
    static let environment = "toolhost_eval.harbor:ToolhostEnvironment"
    static let agent = "toolhost_eval.harbor:ToolhostAgent"

    struct Trial {
        let task: String
        let reward: Double?
        let exception: String?
        let folder: String
        let result: [String: Any]
    }

    /// Runs `harbor run` with `arguments` and returns each trial's result, by task name.
    func job(_ scratch: Scratch, _ arguments: [String]) async throws -> [String: Trial] {
        var environment = ProcessInfo.processInfo.environment
        environment["TOOLHOST_BIN"] = toolhostBinary
        let jobs = scratch.root + "/jobs"
        let ran = try await runProgram(Self.harbor, ["run", "--env", Self.environment, "-o", jobs, "-y", "-q"] + arguments, environment: environment)
        #expect(ran.status == 0, "harbor run failed: \(ran.stdout.suffix(2000)) \(ran.stderr.suffix(3000))")
        let job = try #require(try FileManager.default.contentsOfDirectory(atPath: jobs).first, "no job folder")
        var trials: [String: Trial] = [:]
        for trial in try FileManager.default.contentsOfDirectory(atPath: jobs + "/" + job) {
            let folder = "\(jobs)/\(job)/\(trial)"
            guard let data = FileManager.default.contents(atPath: folder + "/result.json"),
                let result = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                let name = result["task_name"] as? String
            else { continue }
            let rewards = (result["verifier_result"] as? [String: Any])?["rewards"] as? [String: Any]
            let exception = (result["exception_info"] as? [String: Any]).map { "\($0["exception_type"] ?? ""): \($0["exception_message"] ?? "")" }
            trials[name] = Trial(task: name, reward: (rewards?["reward"] as? NSNumber)?.doubleValue, exception: exception, folder: folder, result: result)
        }
        return trials
    }

    func expectRefusedNamingThePackage(_ trials: [String: Trial], sourceLocation: SourceLocation = #_sourceLocation) {
        let refused = trials["toolhost/needs-a-package"]
        #expect(refused?.exception?.contains("SandboxBuildFailedError") == true, sourceLocation: sourceLocation)
        #expect(refused?.exception?.contains("frobnicator-toolhost-test") == true, "the refusal names the package: \(refused?.exception ?? "none")", sourceLocation: sourceLocation)
        #expect(refused?.exception?.contains("curl") == false, "curl is installed, so it is not named", sourceLocation: sourceLocation)
    }

    /// ~10 s. Harbor's oracle runs each task's own solution in the toolhost environment.
    @Test func theOracleSolvesEveryTaskThisMachineCanRunAndTheRestAreRefusedNamingWhatIsMissing() async throws {
        let scratch = try Scratch()
        let trials = try await job(scratch, ["-p", Self.tasks, "--agent", "oracle"])
        #expect(trials.count == 3, "\(trials.keys)")
        #expect(trials["harbor/hello-world"]?.reward == 1.0, "\(trials["harbor/hello-world"]?.exception ?? "")")
        #expect(trials["toolhost/hello-file"]?.reward == 1.0, "\(trials["toolhost/hello-file"]?.exception ?? "")")
        expectRefusedNamingThePackage(trials)
    }

    /// ~10 s. toolhost's agent on the scripted model: both tasks pass Harbor's verifier, and each
    /// trial's agent folder holds toolhost's transcript and summary and an ATIF trajectory that
    /// Harbor's own validator accepts; the tokens reach Harbor's context.
    @Test func theToolhostAgentSolvesTheTasksAndLeavesATrajectoryHarborValidates() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, fixture: "harbor-tasks.yaml")
        let trials = try await job(scratch, ["-p", Self.tasks, "--agent", Self.agent, "--ak", "endpoint=\(mock.url)"])
        for name in ["harbor/hello-world", "toolhost/hello-file"] {
            let trial = try #require(trials[name])
            #expect(trial.reward == 1.0, "\(name): \(trial.exception ?? "no exception")")
            let agent = trial.folder + "/agent"
            for file in ["trajectory.json", "transcript.jsonl", "summary.json"] {
                #expect(FileManager.default.fileExists(atPath: "\(agent)/\(file)"), "\(name): \(file)")
            }
            let validated = try await runProgram(Self.python, ["-m", "harbor.utils.trajectory_validator", agent + "/trajectory.json"])
            #expect(validated.status == 0, "\(validated.stdout) \(validated.stderr)")
            let context = try #require(trial.result["agent_result"] as? [String: Any])
            #expect((context["n_input_tokens"] as? Int ?? 0) > 0 && (context["n_output_tokens"] as? Int ?? 0) > 0, "\(context)")
        }
        expectRefusedNamingThePackage(trials)
    }

    /// ~60 s. The same door on a real model: SmolLM2-135M on llama-server, under toolhost's grammar
    /// (`--ak constrain=true`), a few turns. What a 135M model writes is not asserted; that the
    /// trial ran to the verifier with no harness error, and left a trajectory Harbor accepts, is.
    @Test func aTrialOnATinyRealModelRunsToTheVerifier() async throws {
        let binary = try #require(LlamaServer.binary, "scripts/setup.sh builds llama-server")
        let model = try #require(LlamaServer.smolModel, "scripts/setup.sh fetches SmolLM2")
        let server = try await LlamaServer(binary: binary, model: model, context: 8192)
        defer { server.stop() }
        let scratch = try Scratch()
        let trials = try await job(scratch, [
            "-p", Self.tasks + "/hello-world", "--agent", Self.agent, "--ak", "endpoint=\(server.base)", "--ak", "constrain=true",
            "--ak", "max_turns=4", "--agent-timeout-multiplier", "5",  // 120 s is short on two loaded cores
        ])
        let trial = try #require(trials["harbor/hello-world"])
        #expect(trial.exception == nil, "\(trial.exception ?? "")")
        #expect(trial.reward != nil, "the verifier ran")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: trial.folder + "/agent/summary.json"))) as? [String: Any])
        #expect(summary["constrained"] as? Bool == true && summary["harness_error"] as? Bool == false, "\(summary)")
        let validated = try await runProgram(Self.python, ["-m", "harbor.utils.trajectory_validator", trial.folder + "/agent/trajectory.json"])
        #expect(validated.status == 0, "\(validated.stdout) \(validated.stderr)")
    }

    /// A task in the scratch folder: its Dockerfile, files beside it in environment/, its solution
    /// and its verifier (by default, reward 1).
    func scratchTask(
        _ scratch: Scratch, dockerfile: String = "FROM debian:12\nWORKDIR /app\n", files: [String: String] = [:], solve: String,
        test: String = "echo 1 > /logs/verifier/reward.txt"
    ) throws -> String {
        let task = scratch.root + "/tasks/scratch"
        func write(_ relative: String, _ text: String, executable: Bool = false) throws {
            let path = task + "/" + relative
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            if executable { chmod(path, 0o755) }
        }
        try write("task.toml", "schema_version = \"2.0\"\n[task]\nname = \"toolhost/scratch\"\n[verifier]\ntimeout_sec = 30.0\n[agent]\ntimeout_sec = 30.0\n")
        try write("instruction.md", "Do nothing.\n")
        try write("environment/Dockerfile", dockerfile)
        for (name, text) in files { try write("environment/" + name, text) }
        try write("tests/test.sh", "#!/bin/bash\n" + test + "\n", executable: true)
        try write("solution/solve.sh", "#!/bin/bash\n" + solve + "\nexit 0\n", executable: true)
        return task
    }

    /// ~5 s. The Dockerfile is carried out, not built: WORKDIR, ENV, COPY and RUN reach the trial's
    /// commands, and the home (/root) lasts from one command to the next, as a container's does.
    @Test func theDockerfileIsCarriedOutAndTheHomeLasts() async throws {
        let scratch = try Scratch()
        let task = try scratchTask(
            scratch,
            dockerfile: """
                FROM python:3.12-slim
                ENV GREETING=hello \\
                    OTHER="two words"
                WORKDIR /srv/app
                COPY data.txt ./
                RUN apt-get update && apt-get install -y --no-install-recommends git \\
                    && echo built > built.txt && mkdir -p /root/.cache && echo kept > /root/.cache/k \\
                    && rm -rf /var/lib/apt/lists/*
                """,
            files: ["data.txt": "data\n"],
            solve: "echo \"$GREETING|$OTHER|$(cat data.txt)|$(cat built.txt)|$(cat ~/.cache/k)|$PWD\" > out.txt",
            test: "[[ \"$(cat /srv/app/out.txt)\" == 'hello|two words|data|built|kept|/srv/app' ]] && echo 1 > /logs/verifier/reward.txt || { cat /srv/app/out.txt; echo 0 > /logs/verifier/reward.txt; }")
        let trial = try await #require(try job(scratch, ["-p", task, "--agent", "oracle"])["toolhost/scratch"])
        #expect(trial.reward == 1.0, "\(trial.exception ?? "") \((try? String(contentsOfFile: trial.folder + "/verifier/test-stdout.txt", encoding: .utf8)) ?? "")")
    }

    /// ~5 s. A solution plants links to host files in the folder Harbor brings back and tries to
    /// write the host's /etc: the links are left out of the download, the write fails, and the
    /// rest of the folder still comes back.
    @Test func linksAHostileSolutionPlantsAreNotBroughtBack() async throws {
        let scratch = try Scratch()
        let task = try scratchTask(scratch, solve: """
            ln -s /etc/hostname /logs/agent/host-file
            ln -s / /logs/agent/host-root
            { echo pwned > /etc/toolhost-harbor-escape; } 2> /logs/agent/escape.txt
            """)
        let trial = try await #require(try job(scratch, ["-p", task, "--agent", "oracle"])["toolhost/scratch"])
        #expect(trial.reward == 1.0, "\(trial.exception ?? "")")
        #expect(!FileManager.default.fileExists(atPath: "/etc/toolhost-harbor-escape"))
        let escape = (try? String(contentsOfFile: trial.folder + "/agent/escape.txt", encoding: .utf8)) ?? ""
        #expect(escape.contains("Read-only file system"), "the rest came back: \(escape)")
        for link in ["host-file", "host-root"] {
            var info = stat()
            #expect(lstat(trial.folder + "/agent/" + link, &info) != 0, "\(link) was not brought back to the host")
        }
    }

    /// ~5 s. A solution swaps /tests's folder in the trial's workspace (which commands see at its
    /// host path too) for a link to a host folder, so that the verifier's upload would land there.
    /// toolhost refuses the mount: the trial fails naming the folder, and nothing lands outside.
    @Test func aTestsFolderSwappedForALinkIsRefusedNotFollowed() async throws {
        let scratch = try Scratch()
        let outside = scratch.root + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let task = try scratchTask(scratch, solve: """
            workspace=$(ls -d /tmp/toolhost-harbor-*/workspace | head -1)
            rm -rf "$workspace/tests" && ln -s \(outside) "$workspace/tests"
            """)
        let trial = try await #require(try job(scratch, ["-p", task, "--agent", "oracle"])["toolhost/scratch"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty, "the verifier's upload did not follow the link")
        #expect(trial.reward == nil, "the verifier did not run")
        #expect(trial.exception?.contains("tests is not a folder in the workspace") == true, "\(trial.exception ?? "none")")
    }
}
