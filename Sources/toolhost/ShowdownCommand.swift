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
            the seed's columns, then per model: pass@1, pass@k with k = the runs that counted, \
            median tokens and tool calls, well-formed-call rate, tokens/s, harness errors), \
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
        let state = StateDirectory(options.stateDir ?? StateDirectory.defaultPath())
        let stamp = ISO8601DateFormatter.string(from: Date(), timeZone: .current, formatOptions: [.withFullDate, .withTime])
        let folder = out.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? state.path + "/showdowns/\(stamp)-\(getpid())"
        if FileManager.default.fileExists(atPath: folder + "/sealed.txt") {
            throw ValidationError("\(folder) already holds a showdown; pick another --out")
        }
        let showdown = Showdown(
            config: loaded, out: folder, registry: try makeRegistry(), environment: ProcessInfo.processInfo.environment,
            makeSession: { workspace, name in try options.openSession(workspace: workspace, name: name, fresh: true) },
            version: Toolhost.version, log: { warn($0) })
        let results = try await showdown.run()
        if let problem = await showdown.renderChart() { warn(problem) }
        print(try String(contentsOfFile: folder + "/results.md", encoding: .utf8), terminator: "")
        print("Files: \(folder) (results.md, results.json, models.json, mapping.json, sealed.txt, chart.svg, chart.png)")
        if results.contains(where: { $0.summary.stopReason == .error }) { throw ExitCode(1) }
    }
}
