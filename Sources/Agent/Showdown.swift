import Foundation
import JSONCore
public import ModelEndpoints
public import Tools
import Yams

/// `toolhost showdown`: one task, several endpoints, each on its own branch
/// `showdown-DIGEST/run-N` from the same base commit, run numbers assigned at random and sealed until the report.
public struct Showdown: Sendable {
    public struct Entry: Sendable {
        public var label: String
        public var url: String
        public var api: API?
        public var model: String?
        public var keyVariable: String?
        /// A shell command that starts this contestant's server (one model at a time, as the public
        /// showdown switched models on one GPU): started before its runs, stopped (its whole process group) after.
        public var serve: String?
        /// Seconds to wait for the served server's /health.
        public var startupSeconds = 300
        /// Constrained calls for this contestant (nil: as `run` decides without a probe, off).
        public var constrain = false
        /// The tools offered (nil: all).
        public var tools: [String]?
        /// How much of each schema the model is sent.
        public var schemas = SchemaStyle.compact
        /// This contestant's budgets, over the task's.
        public var budgets = Budgets()
        /// This contestant's guardrails (all on unless the config switches some off).
        public var guardrails = GuardrailSettings()
        /// max_tokens for each of its replies (nil: as `run` decides).
        public var maxReplyTokens: Int?
        /// The Ray resources a node must have to take this contestant's runs (`showdown --ray`).
        public var rayResources: [String: Double] = [:]
    }

    public struct Config: Sendable {
        public var task: AgentTask
        /// A git repository: every run works in a copy of it.
        public var workspace: String
        public var endpoints: [Entry]
        public var parallel: Int
        /// Runs per contestant, each its own sealed run.
        public var repeats = 1

        /// A YAML (or JSON) file: `task`, `workspace` (paths relative to the file), `endpoints` (each
        /// `label`, `url`, and optionally `api`, `model`, `api_key_env`, `serve`, `startup_seconds`,
        /// `constrain`, `tools`), `parallel`, `repeats`.
        public static func load(path: String) throws -> Config {
            let base = URL(fileURLWithPath: path).deletingLastPathComponent()
            func resolve(_ relative: String) -> String {
                relative.hasPrefix("/") ? relative : base.appendingPathComponent(relative).standardizedFileURL.path
            }
            let loaded: Any?
            do {
                loaded = try Yams.load(yaml: String(contentsOfFile: path, encoding: .utf8))
            } catch {
                throw TaskError("cannot read the showdown config \(path): \(error)")
            }
            guard let root = loaded as? [String: Any] else { throw TaskError("\(path) must be a mapping with task, workspace and endpoints") }
            let known = ["task", "workspace", "endpoints", "parallel", "repeats", "ship_on_pass", "description"]
            if let unknown = root.keys.sorted().first(where: { !known.contains($0) }) {
                throw TaskError("\(path): unknown key '\(unknown)'; the keys are: \(known.joined(separator: ", "))")
            }
            guard let task = root["task"] as? String else { throw TaskError("\(path) needs 'task': a task file") }
            guard let workspace = root["workspace"] as? String else { throw TaskError("\(path) needs 'workspace': a git repository") }
            guard let list = root["endpoints"] as? [[String: Any]], !list.isEmpty else {
                throw TaskError("\(path) needs 'endpoints': a list of {label, url, api?, model?}")
            }
            let entries = try list.enumerated().map { index, item in
                guard let label = item["label"] as? String, let url = item["url"] as? String else {
                    throw TaskError("\(path): endpoints[\(index)] needs 'label' and 'url'")
                }
                var api: API?
                if let text = item["api"] as? String {
                    guard let parsed = API(rawValue: text) else { throw TaskError("\(path): endpoints[\(index)].api must be openai or anthropic") }
                    api = parsed
                }
                let keys = [
                    "label", "url", "api", "model", "api_key_env", "serve", "startup_seconds", "constrain", "tools", "schemas", "budgets", "guardrails",
                    "max_reply_tokens", "ray_resources",
                ]
                if let unknown = item.keys.sorted().first(where: { !keys.contains($0) }) {
                    throw TaskError("\(path): endpoints[\(index)] has an unknown key '\(unknown)'; the keys are: \(keys.joined(separator: ", "))")
                }
                var entry = Entry(label: label, url: url, api: api, model: item["model"] as? String, keyVariable: item["api_key_env"] as? String)
                entry.serve = item["serve"] as? String
                if let seconds = item["startup_seconds"] {
                    guard let seconds = seconds as? Int, seconds > 0 else { throw TaskError("\(path): endpoints[\(index)].startup_seconds must be a positive number") }
                    entry.startupSeconds = seconds
                }
                if let constrain = item["constrain"] {
                    guard let constrain = constrain as? Bool else { throw TaskError("\(path): endpoints[\(index)].constrain must be true or false") }
                    entry.constrain = constrain
                }
                if let tools = item["tools"] {
                    guard let tools = tools as? [String], !tools.isEmpty else { throw TaskError("\(path): endpoints[\(index)].tools must be a list of tool names") }
                    entry.tools = tools
                }
                if let schemas = item["schemas"] {
                    guard let style = (schemas as? String).flatMap(SchemaStyle.init(rawValue:)) else {
                        throw TaskError("\(path): endpoints[\(index)].schemas must be compact or full")
                    }
                    entry.schemas = style
                }
                do {
                    if let budgets = item["budgets"] { entry.budgets = try Budgets(yaml: budgets, field: "endpoints[\(index)].budgets") }
                } catch {
                    throw TaskError("\(path): \(error)")
                }
                if let guards = item["guardrails"] {
                    // off (which YAML reads as false), or the names of the guardrails to switch off.
                    if guards as? String == "off" || guards as? Bool == false {
                        entry.guardrails = .off
                    } else if let names = guards as? [String] {
                        for name in names where !entry.guardrails.disable(name) {
                            throw TaskError("\(path): endpoints[\(index)].guardrails: no guardrail named \(name); the names are \(GuardrailSettings.names.joined(separator: ", "))")
                        }
                    } else {
                        throw TaskError("\(path): endpoints[\(index)].guardrails must be off or a list of guardrail names to switch off")
                    }
                }
                if let cap = item["max_reply_tokens"] {
                    guard let cap = cap as? Int, cap > 0 else { throw TaskError("\(path): endpoints[\(index)].max_reply_tokens must be a positive number") }
                    entry.maxReplyTokens = cap
                }
                if let resources = item["ray_resources"] {
                    guard let resources = resources as? [String: Any], !resources.isEmpty,
                        let amounts = try? resources.mapValues({ value -> Double in
                            guard let amount = (value as? NSNumber)?.doubleValue, amount > 0, !(value is Bool) else { throw TaskError("") }
                            return amount
                        })
                    else {
                        throw TaskError("\(path): endpoints[\(index)].ray_resources must map resource names to positive amounts, e.g. {gpu-box: 1}")
                    }
                    entry.rayResources = amounts
                }
                return entry
            }
            if Set(entries.map(\.label)).count != entries.count { throw TaskError("\(path): endpoint labels must differ") }
            let repository = resolve(workspace)
            guard FileManager.default.fileExists(atPath: repository + "/.git") else {
                throw TaskError("\(path): the workspace \(repository) is not a git repository; each run needs a branch of its own")
            }
            var config = Config(task: try AgentTask.load(path: resolve(task)), workspace: repository, endpoints: entries, parallel: max(1, root["parallel"] as? Int ?? 1))
            if let repeats = root["repeats"] {
                guard let repeats = repeats as? Int, (1...100).contains(repeats) else { throw TaskError("\(path): repeats must be a number from 1 to 100") }
                config.repeats = repeats
            }
            // The safety net makes runs compare less well: off unless the showdown itself asks,
            // whatever the task file says.
            if let ship = root["ship_on_pass"], !(ship is Bool) { throw TaskError("\(path): ship_on_pass must be true or false") }
            config.task.shipOnPass = root["ship_on_pass"] as? Bool ?? false
            return config
        }
    }

    public struct Result: Sendable {
        public var run: String
        public var label: String
        /// Which repeat of its contestant this run was (1-based).
        public var attempt: Int
        public var summary: RunSummary
    }

    /// Opens a session on a workspace (the CLI decides the sandbox).
    public typealias SessionFactory = @Sendable (_ workspace: String, _ name: String) throws -> Session

    /// One sealed run as another machine takes it (`showdown --ray`).
    public struct RemoteSlot: Sendable {
        public let run: String
        public let label: String
        public let attempt: Int
        public let branch: String
        public let resources: [String: Double]
    }

    /// Carries a run out elsewhere and leaves its files (summary.json, transcript.jsonl,
    /// trajectory.json) in `folder`; throws when it could not (a harness error).
    public typealias RemoteRunner = @Sendable (_ slot: RemoteSlot, _ folder: String) async throws -> Void

    let config: Config
    let out: String
    let registry: ToolRegistry
    let makeSession: SessionFactory
    let environment: [String: String]
    let log: @Sendable (String) -> Void
    /// toolhost's version, for each run's trajectory.json.
    let version: String
    /// Where each run goes instead of this machine (nil: here).
    let remote: RemoteRunner?
    /// The node this process runs on, recorded in each run's summary (a run taken from a cluster).
    let node: String?

    public init(config: Config, out: String, registry: ToolRegistry, environment: [String: String], makeSession: @escaping SessionFactory,
                version: String, remote: RemoteRunner? = nil, node: String? = nil, log: @escaping @Sendable (String) -> Void) {
        self.config = config
        self.remote = remote
        self.node = node
        self.version = version
        self.out = out
        self.registry = registry
        self.environment = environment
        self.makeSession = makeSession
        self.log = log
    }

    /// One sealed run: a contestant's repeat under its run number.
    struct Slot: Sendable {
        let run: String
        let entry: Entry
        let attempt: Int
        /// The run's branch, `showdown-DIGEST/run-N`: named per showdown, so two showdowns that
        /// push to one remote never meet on a branch.
        var branch = ""
    }

    /// The sealed assignment: which contestant's repeat runs as which number, and the digest published first.
    struct Seal {
        let slots: [Slot]
        let text: String
        let digest: String

        static func draw(_ entries: [Entry], repeats: Int) -> Seal {
            let pairs = entries.flatMap { entry in (1...repeats).map { (entry, $0) } }.shuffled()
            let slots = pairs.enumerated().map { Slot(run: "run-\($0.offset + 1)", entry: $0.element.0, attempt: $0.element.1) }
            let nonce = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            let json: JSONValue = [
                "nonce": .string(nonce), "runs": .object(Dictionary(uniqueKeysWithValues: slots.map { ($0.run, JSONValue.string($0.entry.label)) })),
            ]
            let text = json.jsonText + "\n"
            let digest = GitHash.blobID(Data(text.utf8))
            let named = slots.map { slot in
                var slot = slot
                slot.branch = "showdown-\(digest.prefix(8))/\(slot.run)"
                return slot
            }
            return Seal(slots: named, text: text, digest: digest)
        }
    }

    /// Runs every contestant (its repeats one after another, between starting and stopping its
    /// server when it has a `serve:`), writes results.md, results.json, models.json, mapping.json
    /// and the chart, and returns the results.
    public func run() async throws -> [Result] {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let seal = Seal.draw(config.endpoints, repeats: config.repeats)
        try """
            Run numbers were assigned at random when the runs started (\(ISO8601DateFormatter().string(from: Date()))).
            The assignment is in mapping.json, written when the runs end; its git blob id must be
            \(seal.digest)
            Check it with: git hash-object mapping.json

            """.write(toFile: out + "/sealed.txt", atomically: true, encoding: .utf8)
        log("showdown: \(seal.slots.count) runs, sealed as \(seal.digest.prefix(12))")
        // Contestants in the order their first run number was drawn.
        var contestants: [[Slot]] = []
        for slot in seal.slots {
            if let index = contestants.firstIndex(where: { $0[0].entry.label == slot.entry.label }) {
                contestants[index].append(slot)
            } else {
                contestants.append([slot])
            }
        }
        var results: [Result] = []
        if let remote {
            // The cluster places and queues them: every run is sent at once.
            results = try await withThrowingTaskGroup(of: Result.self) { group in
                for slot in seal.slots { group.addTask { try await self.elsewhere(slot, remote) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        } else {
            results = try await local(contestants)
        }
        results.sort { Int($0.run.dropFirst(4)) ?? 0 < Int($1.run.dropFirst(4)) ?? 0 }
        try seal.text.write(toFile: out + "/mapping.json", atomically: true, encoding: .utf8)
        try write(results, seal: seal)
        return results
    }

    /// Takes one run of a showdown started elsewhere (`showdown --ray` sends it here): `run`,
    /// `label` and `attempt` as the seal drew them, into `out`/`run`, its server started for it
    /// when its contestant has a `serve:`.
    public func runOne(_ run: String, label: String, attempt: Int, branch: String) async throws -> Result {
        guard let entry = config.endpoints.first(where: { $0.label == label }) else {
            throw TaskError("the showdown config has no endpoint labelled \(label)")
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        return try await contestant([Slot(run: run, entry: entry, attempt: attempt, branch: branch)])[0]
    }

    /// A run sent to `remote`; one it could not carry out is a harness error.
    private func elsewhere(_ slot: Slot, _ remote: RemoteRunner) async throws -> Result {
        let folder = try folder(for: slot)
        let sent = RemoteSlot(run: slot.run, label: slot.entry.label, attempt: slot.attempt, branch: slot.branch, resources: slot.entry.rayResources)
        do {
            try await remote(sent, folder)
            let summary = try RunSummary.load(runDirectory: folder)
            log("showdown: \(slot.run) finished on \(summary.node ?? "?"): \(summary.outcome.rawValue) (\(summary.stopReason.rawValue))")
            return Result(run: slot.run, label: slot.entry.label, attempt: slot.attempt, summary: summary)
        } catch {
            log("showdown: \(slot.run): \(error)")
            return try harnessFailure(slot, error: "\(error)")
        }
    }

    /// The contestants on this machine, `parallel` at a time.
    private func local(_ contestants: [[Slot]]) async throws -> [Result] {
        var results: [Result] = []
        try await withThrowingTaskGroup(of: [Result].self) { group in
            var pending = contestants.makeIterator()
            func next() -> Bool {
                guard let slots = pending.next() else { return false }
                group.addTask { try await self.contestant(slots) }
                return true
            }
            for _ in 0..<config.parallel where next() {}
            while let finished = try await group.next() {
                results += finished
                _ = next()
            }
        }
        return results
    }

    /// One contestant's runs, with its server up for them when it has a `serve:` command.
    private func contestant(_ slots: [Slot]) async throws -> [Result] {
        let entry = slots[0].entry
        var served: ServedEndpoint?
        if let command = entry.serve {
            log("showdown: starting \(entry.label)'s server")
            do {
                let endpoint = try Endpoint(entry.url, api: entry.api)
                served = try await ServedEndpoint.start(command: command, endpoint: endpoint, seconds: entry.startupSeconds, log: out + "/serve-\(Self.safe(entry.label)).log")
            } catch {
                log("showdown: \(entry.label): \(error)")
                return try slots.map { try harnessFailure($0, error: "\(error)") }
            }
        }
        var results: [Result] = []
        do {
            for slot in slots {
                let result = try await one(slot)
                log("showdown: \(result.run) finished: \(result.summary.outcome.rawValue) (\(result.summary.stopReason.rawValue))")
                results.append(result)
            }
        } catch {
            await served?.stop()
            throw error
        }
        await served?.stop()
        return results
    }

    private static func safe(_ label: String) -> String {
        String(label.map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "_" })
    }

    private func folder(for slot: Slot) throws -> String {
        let folder = out + "/" + slot.run
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    /// A run that could not happen for the harness's sake (its server never started).
    private func harnessFailure(_ slot: Slot, error: String) throws -> Result {
        var summary = emptySummary(slot, api: (try? Endpoint(slot.entry.url, api: slot.entry.api))?.api.rawValue ?? "?")
        summary.stopReason = .error
        summary.error = error
        summary.harnessError = true
        summary.decideOutcome()
        try summary.write(to: try folder(for: slot))
        return Result(run: slot.run, label: slot.entry.label, attempt: slot.attempt, summary: summary)
    }

    private func emptySummary(_ slot: Slot, api: String) -> RunSummary {
        RunSummary(
            label: slot.run, model: slot.entry.model ?? "?", endpoint: slot.entry.url, api: api, task: config.task.source,
            workspace: out + "/workspaces/" + slot.run, branch: slot.branch, requires: config.task.requires)
    }

    private func one(_ slot: Slot) async throws -> Result {
        let (run, entry) = (slot.run, slot.entry)
        let workspace = out + "/workspaces/" + run
        try FileManager.default.createDirectory(atPath: out + "/workspaces", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: config.workspace, toPath: workspace)
        let folder = try folder(for: slot)
        var task = config.task
        task.branch = slot.branch
        let endpoint = try Endpoint(entry.url, api: entry.api)
        let client = makeClient(endpoint: endpoint, environment: environment, keyVariable: entry.keyVariable)
        let session = try makeSession(workspace, run)
        let transcript = try AgentRun.transcript(in: folder, environment: environment, keyVariable: entry.keyVariable)
        var summary: RunSummary
        do {
            let model = try await chooseModel(entry.model, client: client)
            let loop = AgentLoop(
                client: client, registry: registry, session: session,
                settings: RunSettings(
                    model: model, task: task, budgets: entry.budgets.over(task.budgets).over(.defaults), maxTokensPerReply: entry.maxReplyTokens,
                    label: run, guardrails: entry.guardrails, constrained: entry.constrain, tools: entry.tools ?? task.tools, schemas: entry.schemas),
                transcript: transcript, progress: Progress(enabled: false))
            summary = await loop.run().summary
        } catch {
            summary = emptySummary(slot, api: endpoint.api.rawValue)
            summary.stopReason = .error
            summary.error = "\(error)"
            summary.harnessError = true
            summary.decideOutcome()
        }
        summary.node = node
        // Before results.md is written: its ATIF column counts each run's steps.
        try await AgentRun.finish(summary, in: folder, session: session, client: client, version: version)
        return Result(run: run, label: entry.label, attempt: slot.attempt, summary: summary)
    }

    private func write(_ results: [Result], seal: Seal) throws {
        let runs = results.map { result -> (directory: String, summary: RunSummary) in
            var summary = result.summary
            summary.label = "\(result.run) (\(result.label))"
            return (out + "/" + result.run, summary)
        }
        let models = config.endpoints.map { entry in ModelStats(label: entry.label, runs: results.filter { $0.label == entry.label }.map(\.summary)) }
        let markdown = """
            # Showdown: \(config.task.source)

            Run numbers were sealed before the runs (git blob id \(seal.digest)); mapping.json reveals them.

            \(Report.table(runs))
            ## Per model (\(config.repeats) run\(config.repeats == 1 ? "" : "s") each)

            \(ModelStats.table(models))
            ![tokens and outcome per model](chart.svg)

            """
        try markdown.write(toFile: out + "/results.md", atomically: true, encoding: .utf8)
        let json: JSONValue = .array(try results.map { result in
            let summary = try JSONValue.parse(RunSummary.encoder.encode(result.summary))
            return ["run": .string(result.run), "label": .string(result.label), "repeat": .int(result.attempt), "summary": summary]
        })
        try (json.jsonText + "\n").write(toFile: out + "/results.json", atomically: true, encoding: .utf8)
        try (ModelStats.encoder.encode(models) + Data("\n".utf8)).write(to: URL(fileURLWithPath: out + "/models.json"), options: .atomic)
        try Chart.svg(results.map { ($0.label, $0.summary) }).write(toFile: out + "/chart.svg", atomically: true, encoding: .utf8)
    }

    /// chart.png: chart.svg rendered by the screenshot engine.
    public func renderChart() async -> String? {
        guard let session = try? makeSession(out, "chart") else { return "the chart could not be rendered: no session on \(out)" }
        let result = await registry.call("screenshot", arguments: ["url": "chart.svg", "path": "chart.png", "width": .int(Chart.width), "height": .int(Chart.height)], session: session)
        await session.close()
        return result.isError ? "chart.png was not rendered: \(result.text)" : nil
    }
}

/// The showdown's chart: total tokens per model as bars, coloured by outcome.
enum Chart {
    static let width = 900
    static let height = 500

    static func svg(_ runs: [(label: String, summary: RunSummary)]) -> String {
        let top = max(1, runs.map(\.summary.totalTokens).max() ?? 1)
        let plotLeft = 90.0, plotBottom = Double(height) - 90, plotHeight = Double(height) - 170
        let slot = (Double(width) - plotLeft - 40) / Double(max(1, runs.count))
        let colours: [RunSummary.Outcome: String] = [.complete: "#2e9d5b", .shippedByToolhost: "#7b61c4", .partial: "#e3a008", .failed: "#d64545"]
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        var parts = [
            ##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(width)" height="\##(height)" font-family="sans-serif" font-size="14">"##,
            ##"<rect width="100%" height="100%" fill="#fff"/>"##,
            ##"<text x="\##(width / 2)" y="32" text-anchor="middle" font-size="20">Total tokens and outcome per model</text>"##,
            ##"<line x1="\##(plotLeft)" y1="\##(plotBottom)" x2="\##(Double(width) - 30)" y2="\##(plotBottom)" stroke="#333"/>"##,
            ##"<text x="\##(plotLeft - 10)" y="\##(plotBottom - plotHeight + 5)" text-anchor="end">\##(Report.grouped(top))</text>"##,
            ##"<text x="\##(plotLeft - 10)" y="\##(plotBottom + 5)" text-anchor="end">0</text>"##,
        ]
        for (index, run) in runs.enumerated() {
            let barHeight = plotHeight * Double(run.summary.totalTokens) / Double(top)
            let x = plotLeft + slot * Double(index) + slot * 0.2
            let barWidth = slot * 0.6
            parts.append(##"<rect x="\##(x)" y="\##(plotBottom - barHeight)" width="\##(barWidth)" height="\##(barHeight)" fill="\##(colours[run.summary.outcome]!)"/>"##)
            parts.append(##"<text x="\##(x + barWidth / 2)" y="\##(plotBottom - barHeight - 8)" text-anchor="middle">\##(Report.grouped(run.summary.totalTokens))</text>"##)
            parts.append(##"<text x="\##(x + barWidth / 2)" y="\##(plotBottom + 22)" text-anchor="middle">\##(escape(run.label))</text>"##)
            parts.append(##"<text x="\##(x + barWidth / 2)" y="\##(plotBottom + 42)" text-anchor="middle" fill="#555">\##(run.summary.outcome.shown), \##(run.summary.toolCalls) calls</text>"##)
        }
        var legendX = plotLeft
        for outcome in [RunSummary.Outcome.complete, .shippedByToolhost, .partial, .failed] {
            parts.append(##"<rect x="\##(legendX)" y="\##(height - 28)" width="14" height="14" fill="\##(colours[outcome]!)"/>"##)
            parts.append(##"<text x="\##(legendX + 20)" y="\##(height - 16)">\##(outcome.shown)</text>"##)
            legendX += Double(20 + 9 * outcome.shown.count + 24)
        }
        parts.append("</svg>")
        return parts.joined(separator: "\n") + "\n"
    }
}
