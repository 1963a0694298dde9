import Egress
import Foundation
import JSONCore
public import ModelEndpoints
import Sandbox
import Synchronization
public import Tools

/// How one run is set up.
public struct RunSettings: Sendable {
    public var model: String
    public var task: AgentTask
    public var budgets: Budgets
    public var stream: Bool
    /// max_tokens per reply (Anthropic requires one; nil lets the client choose).
    public var maxTokensPerReply: Int?
    public var label: String?
    public var guardrails: GuardrailSettings
    /// Every reply shaped by the server's grammar into one tool call or a final answer (`ConstrainedCalls`).
    public var constrained: Bool
    /// The tools offered to the model (nil: all). Small models choose better among few.
    public var tools: [String]?
    /// How much of each schema the model is sent: compact by default, as every request carries them.
    public var schemas: SchemaStyle
    /// Estimated prompt tokens past which the older history is condensed (`Condenser`); 0 never.
    public var condenseAt: Int
    /// The threshold when neither the caller nor the server's context size says otherwise: half
    /// of an 8K context, the smallest a coding model runs in. Condensing early costs little: a
    /// step only rewrites the messages since the last one, so a prompt cache keeps the rest.
    public static let defaultCondenseAt = 4096
    /// A constrained reply's cap when none is given: a grammar keeps a weak model's reply valid,
    /// not short, and one such reply from Gemma 3 270M (greedy) ran through a 4-minute budget.
    public static let constrainedReplyTokens = 2048

    public init(
        model: String, task: AgentTask, budgets: Budgets, stream: Bool = true, maxTokensPerReply: Int? = nil, label: String? = nil,
        guardrails: GuardrailSettings = GuardrailSettings(), constrained: Bool = false, tools: [String]? = nil, schemas: SchemaStyle = .compact,
        condenseAt: Int = RunSettings.defaultCondenseAt
    ) {
        self.model = model
        self.task = task
        self.budgets = budgets
        self.stream = stream
        self.maxTokensPerReply = maxTokensPerReply ?? (constrained ? Self.constrainedReplyTokens : nil)
        self.label = label
        self.guardrails = guardrails
        self.constrained = constrained
        self.tools = tools
        self.schemas = schemas
        self.condenseAt = condenseAt
    }
}

/// The agent loop: ask the model, run the tool calls it makes, hand back the results, until it
/// answers without a call, a budget runs out, or the run is cancelled. Every step goes to the
/// transcript as it happens; the summary comes back at the end.
public final class AgentLoop: Sendable {
    let client: any ModelClient
    let registry: ToolRegistry
    let session: Session
    let settings: RunSettings
    let transcript: Transcript
    let progress: Progress

    public init(client: any ModelClient, registry: ToolRegistry, session: Session, settings: RunSettings, transcript: Transcript, progress: Progress) {
        self.client = client
        self.registry = registry
        self.session = session
        self.settings = settings
        self.transcript = transcript
        self.progress = progress
    }

    /// The tools the model is offered: all, or the ones the settings name in the order they name
    /// them (a tiny model leans on the first tool it is shown, so the order is the user's to set).
    var offered: [ToolDefinition] {
        guard let names = settings.tools else { return registry.definitions }
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }.compactMap { name in registry.definitions.first { $0.name == name } }
    }

    /// A run's mutable state.
    struct Run {
        var summary: RunSummary
        var messages: [ChatMessage]
        var finalText = ""
        var dialects: [String] = []
        /// Turns in a row whose text looked like a tool call that could not be parsed.
        var unparsedInARow = 0
        /// Replies in a row cut at the token limit.
        var cutInARow = 0
        /// Repetitions cut since the last turn with a tool call.
        var degenerateInARow = 0
        /// llama-server's timings summed over the turns that sent them.
        var timed = Timings(promptTokens: 0, promptMilliseconds: 0, generatedTokens: 0, generationMilliseconds: 0)
        var guards: GuardrailState
        /// Notes earned during a turn's calls, said after its results (a note cannot sit between them).
        var pendingNotes: [String] = []
        /// The commit HEAD was at when the model started: a push of it ships nothing.
        var baseCommit: String?
        /// The model's call count at its first passing build, and that build's arguments.
        var firstPass: (call: Int, arguments: JSONValue)?
        /// The safety net has tried to ship (it tries once).
        var shipTried = false
        var condenser: Condenser
    }


    /// Runs the task to its end and returns the summary (outcome decided, end event written).
    public func run() async -> (summary: RunSummary, finalText: String) {
        let task = settings.task
        var summary = RunSummary(
            label: settings.label, model: settings.model, endpoint: client.endpoint.address, api: client.endpoint.api.rawValue,
            task: task.source, workspace: session.workspace.root, branch: task.branch, requires: task.requires)
        let system = SystemPrompt.text(workspace: session.workspace.root, branch: task.branch, requires: task.requires, offered: offeredNames)
        await session.toolsListed(offering: offeredNames)
        transcript.record("start", [
            "started_at": .string(ISO8601DateFormatter().string(from: Date().addingTimeInterval(-transcript.elapsed))),
            "model": .string(settings.model), "endpoint": .string(summary.endpoint), "api": .string(summary.api), "task": .string(task.source),
            "workspace": .string(summary.workspace), "branch": task.branch.map(JSONValue.string) ?? .null,
            "requires": .array(task.requires.map { .string($0.rawValue) }), "budgets": budgetsJSON,
            "tools": .array(offered.map { .string($0.name) }), "schemas": .string(settings.schemas.rawValue), "condense_at": .int(settings.condenseAt),
            "stream": .bool(settings.stream),
            "constrained": .bool(settings.constrained), "guardrails": settings.guardrails.json,
        ])
        transcript.record("message", ["role": "system", "content": .string(system)])
        transcript.record("message", ["role": "user", "content": .string(task.prompt)])
        var run = Run(
            summary: summary, messages: [.system(system), .user(task.prompt)], guards: GuardrailState(settings: settings.guardrails),
            condenser: Condenser(threshold: settings.condenseAt))
        if let branch = task.branch { await switchBranch(to: branch, run: &run) }
        if task.branch != nil || task.requires.contains(.push) {
            run.baseCommit = await registry.call("git_status", arguments: [:], session: session).structured?["commit"]?.stringValue
        }
        let started = ContinuousClock.now
        run.summary.stopReason = await turns(&run, started: started)
        if task.shipOnPass && !run.shipTried && run.firstPass != nil && !Task.isCancelled { await ship(&run, turn: run.summary.turns) }
        run.summary.dialect = run.dialects.isEmpty ? nil : run.dialects.joined(separator: "+")
        run.summary.constrained = settings.constrained
        run.summary.record(run.timed)
        summary = run.summary
        summary.durationSeconds = (seconds(since: started) * 1000).rounded() / 1000
        summary.decideOutcome()
        transcript.record("end", [
            "stop_reason": .string(summary.stopReason.rawValue), "outcome": .string(summary.outcome.rawValue),
            "tool_calls": .int(summary.toolCalls), "total_tokens": .int(summary.totalTokens), "duration_seconds": .double(summary.durationSeconds),
            "missing": .array(summary.missing.map { .string($0.rawValue) }),
        ])
        progress.finish()
        return (summary, run.finalText)
    }

    private var budgetsJSON: JSONValue {
        let b = settings.budgets
        return [
            "tool_calls": b.toolCalls.map(JSONValue.int) ?? .null, "tokens": b.tokens.map(JSONValue.int) ?? .null,
            "minutes": b.minutes.map(JSONValue.double) ?? .null, "turns": b.turns.map(JSONValue.int) ?? .null,
        ]
    }

    /// Turns until one ends the run; returns why it ended.
    private func turns(_ run: inout Run, started: ContinuousClock.Instant) async -> RunSummary.StopReason {
        // The schemas shown are compact or full; a constrained reply's grammar holds to the full
        // ones (a compact schema has no bounds, and Gemma 3 270M wrote offset -10^15 without them).
        let tools = offered.map { full in
            let shown = registry.definitions(settings.schemas).first { $0.name == full.name } ?? full
            return ToolSpec(name: full.name, description: shown.description, inputSchema: shown.inputSchema, grammarSchema: full.inputSchema)
        }
        // Text calls are read against the full schemas: a parameter the compact ones leave out still counts.
        let textCalls = TextToolCalls(tools: offered.map { ToolSpec(name: $0.name, description: $0.description, inputSchema: $0.inputSchema) })
        let budgets = settings.budgets
        while true {
            if Task.isCancelled { return .interrupted }
            if let limit = budgets.turns, run.summary.turns >= limit { return .budgetTurns }
            if let limit = budgets.tokens, run.summary.totalTokens >= limit { return .budgetTokens }
            let remaining = budgets.minutes.map { $0 * 60 - seconds(since: started) }
            if let remaining, remaining <= 0 { return .budgetMinutes }

            run.summary.turns += 1
            let turn = run.summary.turns
            if let step = run.condenser.step(&run.messages, tools: tools) {
                transcript.record("condensed", [
                    "turn": .int(turn), "messages": .int(step.messages), "up_to_message": .int(run.condenser.condensedUpTo),
                    "characters_before": .int(step.charactersBefore), "characters_after": .int(step.charactersAfter), "threshold_tokens": .int(settings.condenseAt),
                ])
                progress.say("turn \(turn): condensed \(step.messages) older messages (\(step.charactersBefore) to \(step.charactersAfter) characters): the prompt passed \(settings.condenseAt) tokens")
            }
            transcript.record("request", ["turn": .int(turn), "messages": .int(run.messages.count), "stream": .bool(settings.stream)])
            progress.update(turn: turn, activity: "waiting for the model", log: "turn \(turn): asking the model")
            let request = ChatRequest(
                model: settings.model, messages: run.messages, tools: tools, stream: settings.stream, maxTokens: settings.maxTokensPerReply,
                constrained: settings.constrained)
            let asked = ContinuousClock.now
            var response: ChatResponse
            let lines = RepeatedLines(limit: settings.guardrails.repeatedLine)
            do {
                response = try await withDeadline(seconds: remaining) { [client, transcript, progress] in
                    let streamed = Mutex(0)
                    return try await client.complete(request) { event in
                        switch event {
                        case .text(let piece):
                            let total = streamed.withLock { $0 += piece.count; return $0 }
                            progress.update(activity: "model writing (\(total) chars)")
                            // A degenerate loop: cut the generation rather than pay for the rest of it.
                            return lines.feed(piece) ? .proceed : .stop
                        case .toolCall(let name):
                            progress.update(activity: "model calling \(name)")
                        case .retrying(let attempt, let reason):
                            streamed.withLock { $0 = 0 }
                            lines.reset()
                            transcript.record("retry", ["turn": .int(turn), "attempt": .int(attempt), "reason": .string(reason)])
                            progress.say("retrying (attempt \(attempt)): \(reason)")
                        }
                        return .proceed
                    }
                }
            } catch is CancellationError {
                return .interrupted
            } catch is DeadlineReached {
                // The reply still coming when the time ran out is cut too: by the budget.
                run.summary.countReply(cut: true, seconds: seconds(since: asked))
                return .budgetMinutes
            } catch {
                if Task.isCancelled { return .interrupted }
                let message = transcript.redact("\(error)")
                transcript.record("error", ["turn": .int(turn), "message": .string(message)])
                progress.say("error: \(message)")
                run.summary.error = message
                switch error as? EndpointError {
                case .contextOverflow?: return .contextFull
                // The server's template refused what the model wrote: the model's doing.
                case .unparsedOutput?: return .error
                default:
                    run.summary.harnessError = true
                    return .error
                }
            }
            account(response, run: &run, turn: turn, seconds: seconds(since: asked))
            // A streamed answer was fed piece by piece: only its last, unterminated line is left. A
            // whole answer is fed now, and cut after the repeat as the stream would have been.
            if response.finishReason != ChatResponse.cutByHost, lines.found == nil, !lines.feed(settings.stream ? "\n" : response.text + "\n") {
                response.text = Self.cut(response.text, after: lines.found!)
                response.toolCalls = []
            }
            if let repeated = lines.found {
                run.summary.loops += 1
                run.messages.append(.assistant(text: response.text, toolCalls: []))
                transcript.record("cut", ["turn": .int(turn), "line": .string(repeated.line), "count": .int(repeated.count)])
                run.degenerateInARow += 1
                if let limit = settings.guardrails.degenerateNotes, run.degenerateInARow > limit {
                    transcript.record("note", [
                        "turn": .int(turn), "source": "host",
                        "text": .string("The reply repeated itself again after \(limit) note\(limit == 1 ? "" : "s"): the run stops as degenerate text."),
                    ])
                    return .degenerateText
                }
                note(
                    lines.foundItem
                        ? "Your call listed \(repeated.line.prefix(120)) three times in a row, so it was cut there and nothing ran. Name each item once, then call again."
                        : "Your message repeated the line \(JSONValue.string(String(repeated.line.prefix(120))).jsonText) \(repeated.count) times, so it was cut there. Do not repeat it: take the next step (a tool call), or say what blocks you.",
                    run: &run, turn: turn)
                continue
            }
            var calls = response.toolCalls
            var text = response.text
            var dialect = "native"
            // The server passed a tool call through as text (or left it in the reasoning it split
            // off): run it, and keep the history as structured calls so the results that follow
            // form a conversation the server accepts.
            let inText = calls.isEmpty ? textCalls.parse(response.text) : nil
            let inReasoning = calls.isEmpty && inText == nil && !response.reasoning.isEmpty ? textCalls.reasoningCalls(response.reasoning) : nil
            if let found = inText ?? inReasoning {
                calls = found.calls.map { ToolCall(id: generatedCallID(), name: $0.name, arguments: $0.arguments) }
                if inText != nil { text = found.prose }
                dialect = found.dialect.rawValue
                run.summary.repairs += found.repairs.count
                transcript.record("text_tool_calls", [
                    "turn": .int(turn), "dialect": .string(dialect), "prose": .string(text), "repairs": .array(found.repairs.map(JSONValue.string)),
                    "tool_calls": .array(calls.map { ["id": .string($0.id), "name": .string($0.name), "arguments": .string($0.arguments)] }),
                    "in_reasoning": .bool(inReasoning != nil),
                ])
                progress.say("turn \(turn): tool calls written as text (\(dialect)\(inReasoning != nil ? ", inside the reasoning" : "")); parsed \(calls.count)")
            }
            run.messages.append(.assistant(text: text, toolCalls: calls))
            if response.cutAtLimit && (calls.isEmpty || calls.contains { !isWellFormed($0) }) {
                // A reply cut at the token limit is no final answer, and its calls are fragments.
                // Re-sent whole every turn, it would fill the context and be copied: the history
                // keeps its first line (the transcript keeps it all).
                run.messages[run.messages.count - 1] = .assistant(text: Self.shortened(cut: response.text), toolCalls: [])
                run.cutInARow += 1
                if !calls.isEmpty || textCalls.looksLikeAttempt(response.text) { run.summary.malformedCalls += max(1, calls.count) }
                if run.cutInARow > 2 { return .replyCut }
                let limit = response.usage.map { " (\($0.completionTokens) tokens)" } ?? ""
                note(
                    "Your reply was cut at the token limit\(limit) before it ended, so nothing ran. Write less at a time: one tool call with short arguments, or a short final answer.",
                    run: &run, turn: turn)
                continue
            }
            run.cutInARow = 0
            guard !calls.isEmpty else {
                // Under the grammar a reply is a call or a final answer by construction: an answer that
                // reads like a call is still an answer, and the text-call advice is what the grammar forbids.
                if let limit = settings.guardrails.textCalls, !settings.constrained, textCalls.looksLikeAttempt(response.text) {
                    run.summary.malformedCalls += 1
                    run.unparsedInARow += 1
                    if run.unparsedInARow > limit { return .unparsedToolCalls }
                    note(unparsedNote(response.text), run: &run, turn: turn)
                    continue
                }
                if let keepGoing = run.guards.keepGoing(missing: run.summary.requires.filter { !run.summary.met($0) }, offered: offeredNames) {
                    note(keepGoing, run: &run, turn: turn)
                    continue
                }
                run.finalText = response.text
                return .completed
            }
            run.unparsedInARow = 0
            run.degenerateInARow = 0
            if !run.dialects.contains(dialect) { run.dialects.append(dialect) }
            for call in calls {
                if Task.isCancelled { return .interrupted }
                if let limit = budgets.toolCalls, run.summary.toolCalls >= limit { return .budgetToolCalls }
                if let loop = await execute(call, run: &run, turn: turn) {
                    run.summary.notes += 1
                    transcript.record("note", ["turn": .int(turn), "text": .string(loop), "source": "host"])
                    return .loop
                }
            }
            run.pendingNotes += run.guards.budgetNotes(used: [
                ("tool-call", Double(run.summary.toolCalls), budgets.toolCalls.map(Double.init)),
                ("token", Double(run.summary.totalTokens), budgets.tokens.map(Double.init)),
                ("time", seconds(since: started) / 60, budgets.minutes), ("turn", Double(run.summary.turns), budgets.turns.map(Double.init)),
            ], offered: offeredNames)
            if !run.pendingNotes.isEmpty {
                note(run.pendingNotes.joined(separator: "\n"), run: &run, turn: turn, count: run.pendingNotes.count)
                run.pendingNotes = []
            }
        }
    }

    /// The text up to the end of the line's last counted repeat (for a line that never ended,
    /// three of its units).
    static func cut(_ text: String, after repeated: (line: String, count: Int)) -> String {
        if !text.contains(repeated.line + "\n"), !text.hasSuffix(repeated.line), let first = text.range(of: repeated.line) {
            var end = first.upperBound
            for _ in 0..<2 where text[end...].hasPrefix(repeated.line) { end = text.index(end, offsetBy: repeated.line.count) }
            return String(text[..<end])
        }
        var seen = 0
        var kept: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            kept.append(line)
            if line.trimmingCharacters(in: .whitespaces) == repeated.line {
                seen += 1
                if seen == repeated.count { break }
            }
        }
        return kept.joined(separator: "\n")
    }

    /// Counts the response's tokens (estimated from the text when the server sent no usage) and records it.
    private func account(_ response: ChatResponse, run: inout Run, turn: Int, seconds: Double) {
        run.summary.messages += 1
        let usage = response.usage ?? Usage(
            promptTokens: run.messages.reduce(0) { $0 + Condenser.characters($1) } / 4,
            completionTokens: (response.text.count + response.toolCalls.reduce(0) { $0 + $1.arguments.count + $1.name.count }) / 4)
        if response.usage == nil { run.summary.tokensEstimated = true }
        run.summary.countReply(cut: response.cutAtLimit || response.finishReason == ChatResponse.cutByHost, seconds: seconds)
        if let timings = response.timings {
            run.timed.promptTokens += timings.promptTokens
            run.timed.promptMilliseconds += timings.promptMilliseconds
            run.timed.generatedTokens += timings.generatedTokens
            run.timed.generationMilliseconds += timings.generationMilliseconds
        }
        run.summary.promptTokens += usage.promptTokens
        run.summary.promptTokensSent = run.summary.promptTokens
        let processed = response.timings?.promptTokens ?? max(0, usage.promptTokens - (usage.cachedPromptTokens ?? 0))
        run.summary.promptTokensProcessed = (run.summary.promptTokensProcessed ?? 0) + processed
        run.summary.completionTokens += usage.completionTokens
        run.summary.totalTokens = run.summary.promptTokens + run.summary.completionTokens
        // The server's own generation speed when it reports one; else tokens over wall time.
        let rate = response.timings.flatMap { $0.generationMilliseconds > 0 ? Double($0.generatedTokens) * 1000 / $0.generationMilliseconds : nil }
            ?? (seconds > 0 ? Double(usage.completionTokens) / seconds : nil)
        transcript.record("assistant", [
            "turn": .int(turn), "text": .string(response.text),
            "tool_calls": .array(response.toolCalls.map { ["id": .string($0.id), "name": .string($0.name), "arguments": .string($0.arguments)] }),
            "finish_reason": response.finishReason.map(JSONValue.string) ?? .null, "duration_ms": .int(Int(seconds * 1000)),
        ])
        transcript.record("usage", [
            "turn": .int(turn), "prompt_tokens": .int(usage.promptTokens), "prompt_tokens_processed": .int(processed),
            "completion_tokens": .int(usage.completionTokens),
            "estimated": .bool(response.usage == nil), "total_tokens": .int(run.summary.totalTokens),
        ])
        let calls = response.toolCalls.map(\.name).joined(separator: ", ")
        progress.update(
            tokens: run.summary.totalTokens, rate: rate, activity: calls.isEmpty ? "model answered" : "model called \(calls)",
            log: "turn \(turn): \(calls.isEmpty ? "answer without a tool call" : "tool calls: \(calls)") (\(usage.totalTokens) tokens)")
    }

    /// The names of the tools offered.
    var offeredNames: Set<String> { Set(offered.map(\.name)) }

    /// What to say of a reply that looks like a tool call no parser could read: when it names an
    /// offered tool, what that tool's arguments must be; always one exact call to copy, of a tool
    /// the run offers, with real values (a model copies placeholders word for word).
    func unparsedNote(_ text: String) -> String {
        var note = "Your last message looks like a tool call written as text, but it could not be read as one, so nothing ran."
        let named = text.firstMatch(of: #/"name"\s*:\s*"([A-Za-z_]+)"/#).map { String($0.output.1) }
        if let named, let tool = offered.first(where: { $0.name == named }) {
            let required = tool.inputSchema["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let optional = (tool.inputSchema["properties"]?.objectValue?.keys.sorted() ?? []).filter { !required.contains($0) }
            note += " \(named) takes a JSON object with \(required.isEmpty ? "no required fields" : "the fields " + required.joined(separator: ", "))"
            note += optional.isEmpty ? "." : " (and optionally \(optional.joined(separator: ", ")))."
        }
        let example = Self.exampleCalls.first { offeredNames.contains($0.name) }
        let call = example.map { #"{"name": "\#($0.name)", "arguments": \#($0.arguments)}"# } ?? #"{"name": "\#(offered.first?.name ?? "")", "arguments": {}}"#
        return note + " Call tools through the API's tool calls; written as text, a call looks exactly like this one: <tool_call>\(call)</tool_call>"
    }

    /// Calls that are safe to make as they stand, in the order an example is taken from.
    static let exampleCalls: [(name: String, arguments: String)] = [
        ("glob", #"{"pattern": "*"}"#), ("execute", #"{"command": "ls"}"#), ("git_status", "{}"), ("read_file", #"{"path": "README.md"}"#),
        ("list_background", "{}"), ("checkpoints", "{}"),
    ]

    /// A message from the host to the model, in the conversation and the transcript; `count`
    /// notes may travel in one message.
    func note(_ text: String, run: inout Run, turn: Int, count: Int = 1) {
        run.summary.notes += count
        run.messages.append(.user("[toolhost] " + text))
        transcript.record("note", ["turn": .int(turn), "text": .string(text), "source": "host"])
        progress.say("note to the model: \(text.prefix(100))")
    }

    /// Runs one call through the registry and appends its result to the conversation. Arguments
    /// are repaired first when they need it; what cannot be repaired goes back as an error that
    /// quotes the problem and the schema.
    /// - Returns: the note that ends the run as a loop, when the guardrails say so.
    private func execute(_ call: ToolCall, run: inout Run, turn: Int) async -> String? {
        run.summary.toolCalls += 1
        if isWellFormed(call) { run.summary.wellFormedCalls += 1 } else { run.summary.malformedCalls += 1 }
        let schema = offered.first { $0.name == call.name }?.inputSchema
        let repaired = ArgumentRepair.repair(call.arguments, schema: schema).map { fixed in
            let own = registry.repair(call.name, fixed.value)
            return ArgumentRepair.Repaired(value: own.arguments, repairs: fixed.repairs + own.repairs)
        }
        var fields: [String: JSONValue] = ["turn": .int(turn), "id": .string(call.id), "name": .string(call.name), "arguments": .string(call.arguments)]
        if case .success(let fixed) = repaired, !fixed.repairs.isEmpty {
            fields["repairs"] = .array(fixed.repairs.map(JSONValue.string))
            run.summary.repairs += fixed.repairs.count
        }
        transcript.record("tool_call", fields)
        progress.update(toolCalls: run.summary.toolCalls, activity: "running \(call.name)", log: "turn \(turn): running \(call.name) \(call.arguments.prefix(120))")
        let started = ContinuousClock.now
        let result: ToolResult
        switch repaired {
        case .success(let fixed): result = await registry.call(call.name, arguments: .object(fixed.value), session: session)
        case .failure(let problem) where schema != nil: result = .failure("\(call.name): \(problem.message).", kind: .usage)
        case .failure where registry.definition(named: call.name) != nil:
            result = .failure("\(call.name) is not offered in this run; the tools are: \(offered.map(\.name).joined(separator: ", ")).", kind: .usage)
        case .failure: result = await registry.call(call.name, argumentsJSON: "{}", session: session)
        }
        let used = (try? repaired.get()).map { JSONValue.object($0.value) } ?? .string(call.arguments)
        let verdict = run.guards.afterCall(name: call.name, arguments: used, result: result)
        if verdict.loop { run.summary.loops += 1 }
        if let text = verdict.note, !verdict.stop { run.pendingNotes.append(text) }
        if let nudge = await run.guards.commitNudge(name: call.name, result: result, offered: offeredNames, uncommitted: uncommittedFiles) {
            run.pendingNotes.append(nudge)
        }
        if result.isError { run.summary.toolErrors += 1 }
        observe(result, of: call.name, run: &run)
        if call.name == "build", run.firstPass == nil, result.structured?["passed"]?.boolValue == true {
            run.firstPass = (run.summary.toolCalls, used)
        }
        if settings.task.shipOnPass, !run.shipTried, let pass = run.firstPass, run.summary.toolCalls - pass.call >= Self.shipAfterCalls {
            await ship(&run, turn: turn)
        }
        transcript.record("tool_result", [
            "turn": .int(turn), "id": .string(call.id), "name": .string(call.name), "is_error": .bool(result.isError),
            "content": .string(result.text), "duration_ms": .int(Int(seconds(since: started) * 1000)),
            "structured": result.structured ?? .null,
        ])
        // What the egress proxy decided meanwhile (network "allowlist"), allowed and refused alike.
        for decision in session.runner.takeEgressDecisions() {
            transcript.record("egress", [
                "turn": .int(turn), "id": .string(call.id), "method": .string(decision.method), "host": .string(decision.host),
                "port": .int(decision.port), "allowed": .bool(decision.allowed), "rule": .string(decision.rule),
                "address": decision.address.map(JSONValue.string) ?? .null, "secrets": .array(decision.secrets.map(JSONValue.string)),
            ])
        }
        let images = result.content.compactMap { if case .image(let data, _) = $0 { data } else { nil } }
        // A command may have printed a host secret it found: the model never sees one.
        let (content, redactions) = transcript.redactCounting(result.text)
        run.summary.redactions += result.redactions + redactions
        run.messages.append(.toolResult(callID: call.id, content: content, isError: result.isError, images: images))
        return verdict.stop ? verdict.note : nil
    }

    /// Calls the model gets after its first passing build to ship it itself, before the safety
    /// net (`ship_on_pass`) does.
    static let shipAfterCalls = 3

    /// The safety net: when the model has a passing build it has not committed (or, when the task
    /// requires it, pushed), toolhost builds once more and, if that passes, commits and pushes
    /// itself, with a message that says so. The summary then tells it apart from the model's work.
    private func ship(_ run: inout Run, turn: Int) async {
        let requires = settings.task.requires
        let wantsCommit = run.summary.commits == 0 && (requires.isEmpty || requires.contains(.commit) || requires.contains(.push))
        let wantsPush = requires.contains(.push) && run.summary.pushedBranch == nil
        guard wantsCommit || wantsPush, let pass = run.firstPass else { return }
        run.shipTried = true
        func record(_ text: String) {
            transcript.record("ship", ["turn": .int(turn), "text": .string(text)])
            progress.say("ship_on_pass: \(text)")
        }
        let build = await registry.call("build", arguments: pass.arguments, session: session)
        guard build.structured?["passed"]?.boolValue == true else {
            record("the build passed at call \(pass.call) but fails now; toolhost shipped nothing")
            return
        }
        var shipped = RunSummary.Shipped()
        if wantsCommit {
            let commit = await registry.call("git_commit", arguments: [
                "message": "Ship the passing build\n\nCommitted by toolhost (ship_on_pass): the model got the build to pass and did not commit it.",
            ], session: session)
            guard !commit.isError else {
                record("committing the passing build failed: \(commit.text)")
                return
            }
            shipped.commit = commit.structured?["commit"]?.stringValue
        }
        if wantsPush {
            let push = await registry.call("git_push", arguments: [:], session: session)
            if push.isError { record("pushing the passing build failed: \(push.text)") } else { shipped.pushedBranch = push.structured?["branch"]?.stringValue }
        }
        run.summary.shippedByToolhost = shipped
        let what = [shipped.commit.map { "committed it as \($0.prefix(7))" }, shipped.pushedBranch.map { "pushed \($0)" }].compactMap { $0 }
        record("the build passes; toolhost " + what.joined(separator: " and "))
        note("Your build passed and was not shipped, so toolhost " + what.joined(separator: " and ") + " (ship_on_pass). Keep any further change small, build it, and commit it yourself.", run: &run, turn: turn)
    }

    /// What the history keeps of a reply cut at the token limit: its first line, at most
    /// `cutKept` characters, and a marker saying the rest was dropped.
    static func shortened(cut text: String) -> String {
        let first = text.split(whereSeparator: \.isNewline).first.map { String($0.prefix(cutKept)) } ?? ""
        return first + (first.count < text.count ? " [… cut at the token limit; the rest of this reply is not kept]" : "")
    }

    static let cutKept = 160

    /// A call something can run: a registered tool, and arguments that match its schema (after repair).
    private func isWellFormed(_ call: ToolCall) -> Bool {
        ArgumentRepair.isWellFormed(call.arguments, schema: offered.first { $0.name == call.name }?.inputSchema)
    }

    /// Files git would commit now (0 when the workspace is no repository).
    private func uncommittedFiles() async -> Int {
        let status = await registry.call("git_status", arguments: [:], session: session)
        guard !status.isError, let facts = status.structured else { return 0 }
        return ["staged", "unstaged", "untracked"].reduce(0) { $0 + (facts[$1]?.arrayValue?.count ?? 0) }
    }

    /// What the results say about the requirements: builds, commits, the push, the screenshot.
    private func observe(_ result: ToolResult, of tool: String, run: inout Run) {
        let facts = result.structured
        switch tool {
        case "git_push" where !result.isError && run.baseCommit != nil && facts?["commit"]?.stringValue == run.baseCommit:
            // The branch is not ahead of where the run started: nothing of the model's was shipped.
            run.pendingNotes.append(
                "That push sent \(run.baseCommit!.prefix(7)), the commit the task started from: none of your work is in it. Commit your changes with git_commit, then push again.")
        default:
            observe(result, of: tool, summary: &run.summary)
        }
    }

    private func observe(_ result: ToolResult, of tool: String, summary: inout RunSummary) {
        let facts = result.structured
        switch tool {
        case "build":
            guard let passed = facts?["passed"]?.boolValue else { return }
            summary.builds.attempts += 1
            summary.builds.passed = passed
            if passed && summary.builds.firstPassAttempt == nil { summary.builds.firstPassAttempt = summary.builds.attempts }
        case "git_commit" where !result.isError:
            summary.commits += 1
        case "git_push" where !result.isError:
            summary.pushedBranch = facts?["branch"]?.stringValue
        case "screenshot" where !result.isError:
            summary.screenshot = facts?["path"]?.stringValue ?? "taken"
        default:
            break
        }
    }

    /// Puts the workspace on the run's branch before the model starts (creating it when needed).
    private func switchBranch(to branch: String, run: inout Run) async {
        let status = await registry.call("git_status", arguments: [:], session: session)
        if status.structured?["branch"]?.stringValue == branch { return }
        let result = await registry.call("git_branch", arguments: ["name": .string(branch)], session: session)
        let text = result.isError ? "could not switch to the branch \(branch): \(result.text)" : result.text
        transcript.record("note", ["text": .string(text), "source": "host"])
        if result.isError { progress.say(text) }
    }

    private func seconds(since instant: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - instant
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}

/// The minutes budget ran out while waiting.
struct DeadlineReached: Error {}

/// `body`, unless `seconds` pass first.
func withDeadline<T: Sendable>(seconds: Double?, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    guard let seconds else { return try await body() }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw DeadlineReached() }
        return value
    }
}
