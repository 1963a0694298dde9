import Agent
public import ArgumentParser
import Foundation
import ModelEndpoints
import Tools

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Drive a model through a task with the tools: toolhost is the agent loop.",
        discussion: """
            Each turn asks the endpoint (streaming), runs the tool calls the model makes in the \
            sandboxed workspace, and hands back the results, until the model answers without a tool \
            call, a budget runs out, or Ctrl-C (the transcript is kept and the summary written with \
            stop_reason "interrupted"; a second Ctrl-C kills at once).

            Endpoints: localhost:8080, http://host:port, http://host:port/v1 or a full URL. The API \
            is OpenAI-compatible chat completions (llama-server, vLLM, Ollama's /v1, LM Studio, \
            OpenAI) unless the URL ends in /messages or is Anthropic's, or --api says otherwise. \
            Keys come from OPENAI_API_KEY or ANTHROPIC_API_KEY (or --api-key-env NAME); they are \
            sent to the endpoint only, never written or shown to commands.

            Guardrails (each can be switched off with --no-guard NAME, all with --no-guards): the \
            same call repeated without a change (a note at 3, a stop with stop_reason "loop" at 5); \
            the same build errors again (the hint quoted again); a line repeated 3 times in one \
            message, or the same few words on one line (the generation is cut; a repetition after that \
            note stops the run with stop_reason "degenerate_text"); the model stopping with requirements unmet (told what \
            is missing, twice); a passing build left uncommitted ("commit now"); 80% of a budget \
            ("commit and push what works"); a tool failing the same way 3 times ("stop and report \
            what blocks you"); tool calls written as text nothing can parse (told how to call, \
            twice, then a stop with stop_reason "unparsed_tool_calls").

            Constrained calls (--constrain): for models that cannot call tools, the tools go in the \
            prompt and the server's grammar lets each reply be only one call of a registered tool \
            with arguments valid against its schema, or a final answer. It needs an \
            OpenAI-compatible server that honours response_format json_schema (llama-server, with \
            or without --jinja; vLLM). Without either flag, run constrains when the latest \
            `toolhost probe` of the endpoint's model found no usable tool calls of its own, and says \
            so; --no-constrain never does.

            The run folder (--out; default: a new folder under the state dir's runs/) gets \
            transcript.jsonl (every request, message, tool call, result, usage, note, error, written \
            as it happens) and summary.json. Exit status: 0 when the outcome is complete (every \
            `requires` of the task met), 1 otherwise, 2 on usage errors.

            Task file: Markdown with an optional YAML front matter:
              ---
              branch: feature/tags
              requires: [build, commit, push]      # also: screenshot
              budgets: {tool_calls: 150, tokens: 2000000, minutes: 60, turns: 120}
              ---
              Add a tags page to the admin …

            Examples:
              toolhost run --endpoint localhost:8080 --workspace ~/blog --task fixtures/tasks/tag-manager.md
              toolhost run --endpoint https://api.anthropic.com --model claude-sonnet-4-5 --workspace . --prompt "fix the build"
            """)

    @OptionGroup var endpointOptions: EndpointOptions

    @Option(help: "The folder the tools may touch.")
    var workspace: String

    @Option(help: "The task: a Markdown file with an optional YAML front matter.")
    var task: String?

    @Option(help: "The task as bare text, instead of --task.")
    var prompt: String?

    @Option(help: "Work on this branch (created when missing); overrides the task's.")
    var branch: String?

    @Option(help: "The run folder for transcript.jsonl and summary.json.")
    var out: String?

    @Option(help: "A name for this run in reports.")
    var label: String?

    @Option(help: "Stop after this many tool calls (default 250, or the task's).")
    var maxToolCalls: Int?

    @Option(help: "Stop once this many tokens (prompt + completion, summed over turns) are spent (default 3000000).")
    var maxTokens: Int?

    @Option(help: "Stop after this many minutes (default 90).")
    var maxMinutes: Double?

    @Option(help: "Stop after this many model turns (default 250).")
    var maxTurns: Int?

    @Option(help: "max_tokens for each reply (default: none; 2048 when replies are constrained; Anthropic needs one: 8192).")
    var maxReplyTokens: Int?

    @Flag(help: ArgumentHelp(
        "If the model gets a build to pass but does not ship it, toolhost commits (and pushes, when the task requires it) that build itself.",
        discussion: "The task's ship_on_pass: true does the same. Such a run's outcome is shipped_by_toolhost, never complete: the model did not finish."))
    var shipOnPass = false

    @Flag(help: "Ask for whole responses instead of streams.")
    var noStream = false

    @Flag(inversion: .prefixedNo, help: ArgumentHelp(
        "Shape every reply with the server's grammar into one tool call or a final answer.",
        discussion: "Default: on when the latest probe of this endpoint's model found no usable tool calls."))
    var constrain: Bool?

    @Option(help: ArgumentHelp("Offer only these tools, comma-separated (default: all).", discussion: "Small models choose better among few tools, and lean on the first one shown: they are offered in the order given, --tools write_file,read_file,git_commit.", valueName: "names"))
    var tools: String?

    @Option(help: ArgumentHelp(
        "How much of each tool's schema the model is sent: compact or full.",
        discussion: "compact (the default): one short sentence per tool and the parameters a task needs, about a third of the tokens, sent in every request; the system prompt says once how the tools behave. full: tools.json as MCP clients get it. Calls are checked against the full schemas either way.",
        valueName: "style"))
    var schemas: SchemaStyle = .compact

    @Option(help: ArgumentHelp(
        "Condense the older history once the prompt passes this many tokens (estimated); 0 never.",
        discussion: "Default: half the server's context when it says it (llama-server's /props), else 4096. In one step every message before the last three turns is condensed: long tool results become one-line stubs saying how to get them again, long arguments their line counts. Between steps the history only grows, so a prompt cache keeps its prefix; the transcript keeps everything whole.",
        valueName: "tokens"))
    var condenseAt: Int?

    @Option(help: "Seconds to wait for a connection.")
    var connectTimeout: Int = 10

    @Option(help: "Seconds of silence from the server before a request fails.")
    var readTimeout: Int = 300

    @Option(help: "Attempts per request on HTTP 429/5xx and cut streams.")
    var attempts: Int = 4

    @Option(name: .customLong("no-guard"), help: ArgumentHelp(
        "Switch one guardrail off (repeatable).",
        discussion: "repeated-call, repeated-build, repeated-line, keep-going, commit-now, budget, same-failure, text-calls.", valueName: "name"))
    var disabledGuards: [String] = []

    @Flag(help: "Switch every guardrail off: loops then run until a budget ends them.")
    var noGuards = false

    @Flag(help: "No progress on stderr.")
    var quiet = false

    @OptionGroup var options: SessionOptions

    func validate() throws {
        guard (task == nil) != (prompt == nil) else { throw ValidationError("give the task with --task FILE or --prompt TEXT (one of them)") }
        for (name, value) in [("--max-tool-calls", maxToolCalls), ("--max-tokens", maxTokens), ("--max-turns", maxTurns), ("--max-reply-tokens", maxReplyTokens)] {
            if let value, value <= 0 { throw ValidationError("\(name) must be positive") }
        }
        if let maxMinutes, maxMinutes <= 0 { throw ValidationError("--max-minutes must be positive") }
        if let condenseAt, condenseAt < 0 { throw ValidationError("--condense-at must be 0 (never) or a positive number of tokens") }
        _ = try guardrails()
        _ = try offeredTools()
    }

    /// --tools as a list (else the task's `tools`), each a registered tool.
    func offeredTools(task: AgentTask? = nil) throws -> [String]? {
        let given = tools.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
        guard let names = given ?? task?.tools else { return nil }
        let source = given != nil ? "--tools" : "the task's tools"
        let known = try makeRegistry().definitions.map(\.name)
        if names.isEmpty { throw ValidationError("\(source) needs at least one tool name; the tools are \(known.joined(separator: ", "))") }
        if let unknown = names.first(where: { !known.contains($0) }) {
            throw ValidationError("\(source): no tool named \(unknown); the tools are \(known.joined(separator: ", "))")
        }
        return names
    }

    /// The guardrails after --no-guards and each --no-guard.
    func guardrails() throws -> GuardrailSettings {
        var settings = noGuards ? GuardrailSettings.off : GuardrailSettings()
        for name in disabledGuards where !settings.disable(name) {
            throw ValidationError("--no-guard \(name): no such guardrail; the names are \(GuardrailSettings.names.joined(separator: ", "))")
        }
        return settings
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        var agentTask: AgentTask
        do {
            agentTask = try task.map(AgentTask.load) ?? AgentTask(prompt: prompt!)
        } catch {
            throw ValidationError("\(error)")
        }
        if let branch { agentTask.branch = branch }
        if shipOnPass { agentTask.shipOnPass = true }
        let (client, modelName) = try await endpointOptions.connect(
            policy: TransportPolicy(connectTimeout: connectTimeout, readTimeout: readTimeout, attempts: attempts))
        let state = StateDirectory(options.stateDir ?? StateDirectory.defaultPath())
        let folder = try runFolder(state: state, model: modelName)
        let sessionName = options.session == "default" ? "run-" + URL(fileURLWithPath: folder).lastPathComponent : options.session
        let registry = try makeRegistry()
        // A task that asks for a screenshot gets the browser started while the model works.
        let session = try options.openSession(
            workspace: workspace, name: sessionName, fresh: options.session == "default", browserAhead: agentTask.requires.contains(.screenshot))
        let transcript: Transcript
        do {
            transcript = try AgentRun.transcript(in: folder, environment: environment, keyVariable: endpointOptions.apiKeyEnv)
        } catch {
            throw ValidationError("\(error)")
        }
        let constrained = constrain ?? probedUnusable(client: client, model: modelName, state: state)
        if constrained && constrain == nil {
            warn("constraining replies with the server's grammar: the latest probe of \(modelName) found no usable tool calls of its own (--no-constrain to stop)")
        }
        var condenseAt = self.condenseAt
        if condenseAt == nil, client.endpoint.api == .openai, let context = await serverProperties(client.endpoint)?["default_generation_settings"]?["n_ctx"]?.intValue, context > 0 {
            condenseAt = context / 2
        }
        let budgets = Budgets(toolCalls: maxToolCalls, tokens: maxTokens, minutes: maxMinutes, turns: maxTurns)
            .over(agentTask.budgets).over(.defaults)
        let loop = AgentLoop(
            client: client, registry: registry, session: session,
            settings: RunSettings(
                model: modelName, task: agentTask, budgets: budgets, stream: !noStream, maxTokensPerReply: maxReplyTokens, label: label,
                guardrails: try guardrails(), constrained: constrained, tools: try offeredTools(task: agentTask), schemas: schemas,
                condenseAt: condenseAt ?? RunSettings.defaultCondenseAt),
            transcript: transcript, progress: Progress(enabled: !quiet))
        if !quiet { warn("run folder: \(folder)") }

        let work = Task { await loop.run() }
        // Ctrl-C: stop the model request, kill the running command, and let the loop write its summary.
        Signals.onFirstSignal { _ in work.cancel() }
        let (summary, finalText) = await work.value
        try await AgentRun.finish(summary, in: folder, session: session, client: client, version: Toolhost.version)
        if !finalText.isEmpty { print(finalText) }
        var line = "outcome: \(summary.outcome.rawValue) (stop: \(summary.stopReason.rawValue)) · \(summary.toolCalls) tool calls · \(summary.totalTokens) tokens"
        if let speed = summary.tokensPerSecond { line += " · \(speed) tokens/s" }
        if !summary.missing.isEmpty { line += " · missing: \(summary.missing.map(\.rawValue).joined(separator: ", "))" }
        print(line + " · \(folder)")
        if let error = summary.error, quiet { warn(error) }
        if summary.stopReason == .interrupted { throw ExitCode(130) }
        if summary.outcome != .complete && summary.outcome != .shippedByToolhost { throw ExitCode(1) }
    }

    /// Whether the latest saved probe of this endpoint's model found it unable to call tools.
    private func probedUnusable(client: any ModelClient, model: String, state: StateDirectory) -> Bool {
        guard let report = Probe.Report.saved(stateDirectory: state.path, endpoint: client.endpoint.address, model: model) else { return false }
        return report.kind == "constrained" || (report.kind == "unusable" && report.constrainedChecks != nil)
    }

    /// --out, or a new folder under the state dir; a folder that already holds a run is refused.
    private func runFolder(state: StateDirectory, model: String) throws -> String {
        let path: String
        if let out {
            path = URL(fileURLWithPath: out).standardizedFileURL.path
        } else {
            let stamp = ISO8601DateFormatter.string(from: Date(), timeZone: .current, formatOptions: [.withFullDate, .withTime])
            let safe = model.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" }
            path = state.path + "/runs/\(stamp)-\(String(safe).prefix(40))-\(getpid())"
        }
        if FileManager.default.fileExists(atPath: path + "/transcript.jsonl") {
            throw ValidationError("\(path) already holds a run (transcript.jsonl); pick another --out or remove it")
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ValidationError("cannot create the run folder \(path): \(error.localizedDescription)")
        }
        return path
    }
}

extension SchemaStyle: ExpressibleByArgument {}
