import Agent
import ArgumentParser
import Foundation
import Tools

struct ShowdownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "showdown",
        abstract: "Run one task against several endpoints and compare them.",
        discussion: """
            Each endpoint works on its own copy of the workspace's repository, on its own branch \
            run-N from the same base commit. Which endpoint gets which run number is drawn at random \
            and sealed: sealed.txt publishes the git blob id of the assignment when the runs start, \
            and mapping.json reveals it at the end (check with `git hash-object mapping.json`).

            With `repeats: N` each contestant runs N times, each repeat its own sealed run. A \
            contestant with `serve:` has its own model server: the showdown starts the command (in \
            a process group of its own, output in serve-LABEL.log), waits for /health on the \
            endpoint's host and port (`startup_seconds`, default 300), runs that contestant's \
            repeats, and stops the whole group before the next contestant: local models one at a \
            time, as on one GPU. A server that never starts, or an endpoint that fails, is a \
            harness error, counted apart from the model's failures.

            The output folder gets run-N/ (transcript.jsonl, summary.json, trajectory.json), results.md (each run in \
            the public showdown's columns, then per model: pass@1, pass@k with k = the runs that \
            counted, median tokens and tool calls, well-formed-call rate, replies that came back \
            cut and their share of the time, tokens/s, harness errors), \
            results.json (each run), models.json (per model), chart.svg and chart.png (tokens and \
            outcome per run, rendered by the screenshot engine).

            Config (YAML or JSON; paths relative to it):
              task: fixtures/tasks/tag-manager.md
              workspace: ./blog                 # a git repository
              parallel: 1                       # contestants at once
              repeats: 3
              endpoints:
                - {label: qwen, url: "localhost:8080", model: qwen3-coder}
                - label: smollm2
                  url: "localhost:8081"
                  serve: "llama-server -m smollm2.gguf --port 8081 -c 8192 -t 2"
                  constrain: true               # replies shaped by the server's grammar
                  tools: [write_file, read_file, git_commit]
                  schemas: compact              # or full: tools.json as MCP clients get it
                - {label: claude, url: "https://api.anthropic.com", model: claude-sonnet-4-5, api_key_env: ANTHROPIC_API_KEY}

            On Ray (--ray ADDRESS, `auto` for the local cluster's): every sealed run is a Ray task, \
            placed by the cluster on a node that has its endpoint's `ray_resources` (e.g. {gpu-box: 1}, \
            given to the boxes that serve that model by `ray start --resources`); a `serve:` then starts \
            the server on whichever node takes the run. Each node runs this same toolhost binary (same \
            path) with the config, task and workspace at the same paths, and sends the run's files back: \
            results, transcripts and the chart are written here, as a local showdown writes them, and \
            each run's summary.json records `node`. A node that dies mid-run is retried once \
            elsewhere, then counted as a harness error. The Ray driver is toolhost_eval.ray_showdown \
            (python/), run by $TOOLHOST_PYTHON, else this checkout's .venv-eval.

            docs/showdown-on-kubernetes.md sketches one Kubernetes Job per endpoint for larger showdowns.
            """)

    @Option(help: "The showdown config file.")
    var config: String

    @Option(help: "The output folder (default: a new folder under the state dir's showdowns/).")
    var out: String?

    @Option(help: "How many runs at once (default: the config's, else 1).")
    var parallel: Int?

    // SessionOptions' own --config (toolhost's settings) would clash with the showdown's --config.
    @Option(help: "Directory with the sessions and saved outputs (as for run).")
    var stateDir: String?

    @Option(help: "Sandbox profile for the runs' commands.")
    var profile: String = "default"

    @Option(help: "toolhost's config file (protected branches, push patterns, identity), --config of run.")
    var toolhostConfig: String?

    @Flag(help: "Run commands without the sandbox (said loudly).")
    var unconfined = false

    @Option(help: ArgumentHelp(
        "Send each run to the Ray cluster at this address (`auto`: the local cluster's).",
        discussion: "Each node needs this toolhost at the same path, and the config, task and workspace at theirs."))
    var ray: String?

    // One run of a showdown sent to this node by --ray (the driver adds --out and --node).
    @Option(help: .hidden) var onlyRun: String?
    @Option(help: .hidden) var label: String?
    @Option(help: .hidden) var attempt: Int?
    @Option(help: .hidden) var branch: String?
    @Option(help: .hidden) var node: String?

    func validate() throws {
        if onlyRun != nil && (label == nil || attempt == nil || branch == nil || out == nil) {
            throw ValidationError("--only-run is the Ray driver's: it needs --label, --attempt, --branch and --out")
        }
        if onlyRun != nil && ray != nil { throw ValidationError("--only-run and --ray do not go together") }
    }

    /// What a node runs for one run: this binary, the same config and sandbox options.
    func nodeCommand(_ slot: Showdown.RemoteSlot) -> [String] {
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        var command = [binary, "showdown", "--config", URL(fileURLWithPath: config).standardizedFileURL.path, "--profile", profile,
                       "--only-run", slot.run, "--label", slot.label, "--attempt", String(slot.attempt), "--branch", slot.branch]
        if let stateDir { command += ["--state-dir", stateDir] }
        if let toolhostConfig { command += ["--toolhost-config", toolhostConfig] }
        if unconfined { command.append("--unconfined") }
        return command
    }

    func run() async throws {
        var arguments = ["--profile", profile]
        if let stateDir { arguments += ["--state-dir", stateDir] }
        if let toolhostConfig { arguments += ["--config", toolhostConfig] }
        if unconfined { arguments.append("--unconfined") }
        let options = try SessionOptions.parse(arguments)
        Signals.killChildrenOnExit()
        var loaded: Showdown.Config
        do {
            loaded = try Showdown.Config.load(path: config)
        } catch {
            throw ValidationError("\(error)")
        }
        if let parallel {
            guard parallel > 0 else { throw ValidationError("--parallel must be positive") }
            loaded.parallel = parallel
        }
        let makeSession: Showdown.SessionFactory = { workspace, name in try options.openSession(workspace: workspace, name: name, fresh: true) }
        if let onlyRun, let label, let attempt, let branch, let out {
            let showdown = Showdown(
                config: loaded, out: URL(fileURLWithPath: out).standardizedFileURL.path, registry: try makeRegistry(),
                environment: ProcessInfo.processInfo.environment, makeSession: makeSession, version: Toolhost.version, node: node, log: { warn($0) })
            let result = try await showdown.runOne(onlyRun, label: label, attempt: attempt, branch: branch)
            if result.summary.harnessError { throw ExitCode(1) }
            return
        }
        let state = StateDirectory(options.stateDir ?? StateDirectory.defaultPath())
        let stamp = ISO8601DateFormatter.string(from: Date(), timeZone: .current, formatOptions: [.withFullDate, .withTime])
        let folder = out.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? state.path + "/showdowns/\(stamp)-\(getpid())"
        if FileManager.default.fileExists(atPath: folder + "/sealed.txt") {
            throw ValidationError("\(folder) already holds a showdown; pick another --out")
        }
        var remote: Showdown.RemoteRunner?
        var driver: RayDriver?
        if let ray {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let connected = try RayDriver(address: ray, log: folder + "/ray-driver.log")
            driver = connected
            let command = self
            remote = { slot, runFolder in try await connected.run(slot, command: command.nodeCommand(slot), folder: runFolder) }
        }
        defer { driver?.close() }
        let showdown = Showdown(
            config: loaded, out: folder, registry: try makeRegistry(), environment: ProcessInfo.processInfo.environment,
            makeSession: makeSession, version: Toolhost.version, remote: remote, log: { warn($0) })
        let results = try await showdown.run()
        if let problem = await showdown.renderChart() { warn(problem) }
        print(try String(contentsOfFile: folder + "/results.md", encoding: .utf8), terminator: "")
        print("Files: \(folder) (results.md, results.json, models.json, mapping.json, sealed.txt, chart.svg, chart.png)")
        if results.contains(where: { $0.summary.stopReason == .error }) { throw ExitCode(1) }
    }
}
