public import Foundation
import JSONCore
public import ModelEndpoints
import Tools

/// `toolhost probe`: short, independent conversations that tell, before anyone spends hours,
/// whether an endpoint's model can call tools, natively or in a text dialect toolhost parses.
public struct Probe: Sendable {
    public struct Check: Sendable, Codable, Equatable {
        public enum Result: String, Sendable, Codable {
            case pass
            /// Passed, but the calls came back as text in a dialect toolhost parses.
            case passText = "pass_text"
            case fail
        }

        public var name: String
        public var result: Result
        public var dialect: String?
        public var detail: String
    }

    /// How many of the replies that should hold a call held only calls something can run: a
    /// tool that was offered, with arguments valid against its schema (after repair).
    public struct WellFormed: Sendable, Codable, Equatable {
        public var calls: Int
        public var of: Int
        public var rate: Double { of == 0 ? 0 : (Double(calls) / Double(of) * 100).rounded() / 100 }

        public init(calls: Int, of: Int) {
            self.calls = calls
            self.of = of
        }

        enum CodingKeys: String, CodingKey { case calls, of, rate }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            calls = try container.decode(Int.self, forKey: .calls)
            of = try container.decode(Int.self, forKey: .of)
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(calls, forKey: .calls)
            try container.encode(of, forKey: .of)
            try container.encode(rate, forKey: .rate)
        }
    }

    /// `probe --json`, documented in docs/probe-json.md; `format` changes only when a field's
    /// meaning does.
    public struct Report: Sendable, Codable {
        public var format = Report.currentFormat
        public var endpoint: String
        public var api: String
        public var model: String
        public var checks: [Check]
        /// The same checks with every reply shaped by the server's grammar (`run --constrain`);
        /// nil when the API takes no grammar (Anthropic) or the pass was skipped.
        public var constrainedChecks: [Check]?
        public var wellFormed: WellFormed
        public var wellFormedConstrained: WellFormed?
        /// "native", "text", "constrained" or "unusable".
        public var kind: String
        public var verdict: String
        public var dialect: String?
        /// What the server told us on the way (a missing --jinja, …).
        public var notes: [String] = []
        /// Whether the server's chat template shows the model the tools (llama-server's /props
        /// `chat_template_caps.supports_tools`); nil when the server does not say.
        public var templateShowsTools: Bool?

        public static let currentFormat = "toolhost-probe/1"
    }

    let client: any ModelClient
    let model: String
    let maxTokens: Int
    let constrainedPass: Bool

    /// `constrainedPass`: also run the checks constrained (OpenAI-compatible APIs only).
    public init(client: any ModelClient, model: String, maxTokens: Int = 400, constrainedPass: Bool = true) {
        self.client = client
        self.model = model
        self.maxTokens = maxTokens
        self.constrainedPass = constrainedPass && client.endpoint.api == .openai
    }

    // The questions, fixed so that scripted personas can recognise them.
    public static let prompts = [
        "bare_call": "What is the weather in Paris right now? Use the get_weather tool.",
        "text_then_call": "First write one short sentence saying what you are about to do, then call get_weather for Berlin.",
        "parallel_calls": "Get the weather for both Paris and Tokyo: call get_weather twice, once per city, in this one reply.",
        "round_trip": "What is the weather in Oslo right now? Use the get_weather tool.",
        "streamed_deltas": "What is the weather in Lyon? Use the get_weather tool.",
        "irrelevance": "What is 17 + 25? Reply with the number only, no tools.",
        "tool_choice_required": "Say hello.",
        "tool_choice_named": "What is the weather in Madrid?",
        "tool_choice_none": "What is the weather in Rome?",
        "argument_types": "Set an alarm for 7:30 labelled standup that repeats every day.",
        "required_parameters": "Search the docs for sandbox profiles and return 5 results.",
    ]
    static let system = "You are a helpful assistant with tools. Call a tool when the user asks for something a tool does; otherwise answer directly."
    static let roundTripResult = #"{"city": "Oslo", "temperature_c": 18, "conditions": "sunny"}"#

    static let weather = ToolSpec(name: "get_weather", description: "Current weather for a city.", inputSchema: [
        "type": "object", "additionalProperties": false, "required": ["city"],
        "properties": ["city": ["type": "string", "description": "City name"], "unit": ["type": "string", "enum": ["celsius", "fahrenheit"]]],
    ])
    static let time = ToolSpec(name: "get_time", description: "Current time in a timezone.", inputSchema: [
        "type": "object", "additionalProperties": false, "required": ["timezone"],
        "properties": ["timezone": ["type": "string", "description": "IANA timezone, e.g. Europe/Madrid"]],
    ])
    static let alarm = ToolSpec(name: "set_alarm", description: "Sets an alarm.", inputSchema: [
        "type": "object", "additionalProperties": false, "required": ["hour", "minute", "label"],
        "properties": [
            "hour": ["type": "integer", "minimum": 0, "maximum": 23], "minute": ["type": "integer", "minimum": 0, "maximum": 59],
            "label": ["type": "string"], "repeat": ["type": "boolean"],
        ],
    ])
    static let search = ToolSpec(name: "search_docs", description: "Searches the documentation.", inputSchema: [
        "type": "object", "additionalProperties": false, "required": ["query", "limit"],
        "properties": ["query": ["type": "string"], "limit": ["type": "integer", "minimum": 1]],
    ])

    /// The calls of a response: structured ones, else those written in a text dialect.
    struct Calls {
        var calls: [ToolCall]
        var dialect: String?
        var prose: String
        var native: Bool { dialect == nil }
    }

    private func calls(_ response: ChatResponse, tools: [ToolSpec]) -> Calls {
        if !response.toolCalls.isEmpty { return Calls(calls: response.toolCalls, dialect: nil, prose: response.text) }
        let parser = TextToolCalls(tools: tools)
        if let found = parser.parse(response.text) ?? parser.parse(response.reasoning) {
            let calls = found.calls.enumerated().map { ToolCall(id: "call\($0.offset)", name: $0.element.name, arguments: $0.element.arguments) }
            let inReasoning = parser.parse(response.text) == nil
            return Calls(calls: calls, dialect: found.dialect.rawValue + (inReasoning ? " (inside the reasoning)" : ""), prose: inReasoning ? response.text : found.prose)
        }
        return Calls(calls: [], dialect: nil, prose: response.text)
    }

    /// Runs every check, then (OpenAI-compatible APIs) the same checks constrained; a transport
    /// failure (nothing listening) is thrown, other errors fail their check.
    public func run() async throws -> Report {
        let plain = try await pass(constrained: false)
        var report = verdict(plain.checks)
        report.wellFormed = plain.wellFormed
        report.notes = plain.notes
        if client.endpoint.api == .openai, let shows = await serverProperties(client.endpoint)?["chat_template_caps"]?["supports_tools"]?.boolValue {
            report.templateShowsTools = shows
            if !shows {
                report.notes.append(
                    "the server's chat template does not render tools (llama-server's /props: chat_template_caps.supports_tools is false): the model never saw the tool list, so the plain checks measure the template, not the model. Constrained calls put the tools in the prompt (run --constrain); a GGUF whose template renders tools is the other way.")
                if report.kind == "unusable" { report.verdict += " (its chat template does not show it the tools)" }
            }
        }
        if constrainedPass {
            let constrained = try await pass(constrained: true)
            report.constrainedChecks = constrained.checks
            report.wellFormedConstrained = constrained.wellFormed
            report.notes += constrained.notes.filter { !report.notes.contains($0) }
            // The promise of constraint is calls something can run, not good choices: a model
            // that calls well-formed but chooses badly is still told so.
            let bare = constrained.checks.first { $0.name == "bare_call" }
            if report.kind == "unusable", bare?.result == .pass, constrained.wellFormed.rate >= 0.8 {
                report.kind = "constrained"
                let failed = constrained.checks.filter { $0.result == .fail }.map(\.name)
                report.verdict = "no usable tool calls of its own, but well-formed ones under the server's grammar (\(constrained.wellFormed.calls)/\(constrained.wellFormed.of)): toolhost run constrains its replies (--constrain)"
                    + (failed.isEmpty ? "" : "; it still chooses badly in \(failed.joined(separator: ", "))")
            }
        }
        return report
    }

    /// One pass over the checks.
    private func pass(constrained: Bool) async throws -> (checks: [Check], wellFormed: WellFormed, notes: [String]) {
        var checks: [Check] = []
        var notes: [String] = []
        var usageSeen = false
        var formed = WellFormed(calls: 0, of: 0)
        var answered = 0
        func ask(_ messages: [ChatMessage], tools: [ToolSpec], choice: ToolChoice = .auto, stream: Bool = false) async throws -> ChatResponse {
            let response = try await client.complete(
                ChatRequest(
                    model: model, messages: [.system(Self.system)] + messages, tools: tools, toolChoice: choice, stream: stream, maxTokens: maxTokens,
                    constrained: constrained),
                onEvent: { _ in .proceed })
            answered += 1
            usageSeen = usageSeen || (response.usage.map { $0.promptTokens > 0 && $0.completionTokens > 0 } ?? false)
            return response
        }
        /// Counts a reply that should hold a call: well-formed when it holds calls, all runnable.
        func tally(_ found: Calls, tools: [ToolSpec]) {
            formed.of += 1
            if !found.calls.isEmpty && found.calls.allSatisfy({ Self.isWellFormed($0, tools: tools) }) { formed.calls += 1 }
        }
        func record(_ name: String, expectsCall: Bool = true, _ body: () async throws -> Check) async throws {
            do {
                checks.append(try await body())
            } catch let error as EndpointError {
                switch error {
                case .notListening, .connectTimeout, .badEndpoint: throw error
                case .needsJinja: if !notes.contains("\(error)") { notes.append("\(error)") }
                default: break
                }
                if expectsCall { formed.of += 1 }
                checks.append(Check(name: name, result: .fail, detail: "\(error)"))
            }
        }
        let weatherTools = [Self.weather, Self.time]
        func city(_ call: ToolCall) -> String {
            (try? ArgumentRepair.repair(call.arguments, schema: Self.weather.inputSchema).get())?.value["city"]?.stringValue ?? ""
        }
        func single(_ name: String, city wanted: String, stream: Bool = false) async throws -> Check {
            let response = try await ask([.user(Self.prompts[name]!)], tools: weatherTools, stream: stream)
            let found = calls(response, tools: weatherTools)
            tally(found, tools: weatherTools)
            guard let call = found.calls.first else { return Check(name: name, result: .fail, detail: "no tool call; the reply was \(Self.quote(response.text))") }
            guard call.name == "get_weather", city(call).localizedCaseInsensitiveContains(wanted) else {
                return Check(name: name, result: .fail, detail: "called \(call.name) \(call.arguments), not get_weather for \(wanted)")
            }
            if name == "text_then_call" && found.prose.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                return Check(name: name, result: .fail, dialect: found.dialect, detail: "the call came without the sentence before it")
            }
            return passed(name, found, detail: "get_weather \(call.arguments)")
        }

        try await record("bare_call") { try await single("bare_call", city: "Paris") }
        try await record("text_then_call") { try await single("text_then_call", city: "Berlin") }
        try await record("parallel_calls") {
            let response = try await ask([.user(Self.prompts["parallel_calls"]!)], tools: weatherTools)
            let found = calls(response, tools: weatherTools)
            tally(found, tools: weatherTools)
            let cities = Set(found.calls.filter { $0.name == "get_weather" }.map { city($0).lowercased() })
            guard found.calls.count >= 2, cities.isSuperset(of: ["paris", "tokyo"]) else {
                return Check(name: "parallel_calls", result: .fail, dialect: found.dialect, detail: "\(found.calls.count) calls (\(found.calls.map(\.arguments).joined(separator: "; "))); wanted one per city")
            }
            if found.native && Set(found.calls.map(\.id)).count != found.calls.count {
                return Check(name: "parallel_calls", result: .fail, detail: "the calls share an id, so results cannot be paired")
            }
            return passed("parallel_calls", found, detail: "\(found.calls.count) calls, one per city")
        }
        try await record("round_trip") {
            let question = ChatMessage.user(Self.prompts["round_trip"]!)
            let first = calls(try await ask([question], tools: weatherTools), tools: weatherTools)
            tally(first, tools: weatherTools)
            guard let call = first.calls.first else { return Check(name: "round_trip", result: .fail, detail: "no tool call to answer") }
            let id = first.native ? call.id : "a1b2c3d4e"
            let history: [ChatMessage] = [
                question, .assistant(text: first.prose, toolCalls: [ToolCall(id: id, name: call.name, arguments: call.arguments)]),
                .toolResult(callID: id, content: Self.roundTripResult, isError: false),
            ]
            let answer = try await ask(history, tools: weatherTools)
            let after = calls(answer, tools: weatherTools)
            guard after.calls.isEmpty, answer.text.contains("18") else {
                return Check(name: "round_trip", result: .fail, dialect: first.dialect, detail: "after the result the model said \(Self.quote(answer.text)) with \(after.calls.count) calls; wanted an answer with 18")
            }
            return passed("round_trip", first, detail: "answered from the result: \(Self.quote(answer.text))")
        }
        try await record("streamed_deltas") { try await single("streamed_deltas", city: "Lyon", stream: true) }
        try await record("irrelevance", expectsCall: false) {
            let response = try await ask([.user(Self.prompts["irrelevance"]!)], tools: weatherTools)
            let found = calls(response, tools: weatherTools)
            guard found.calls.isEmpty else { return Check(name: "irrelevance", result: .fail, dialect: found.dialect, detail: "called \(found.calls[0].name) for arithmetic") }
            guard response.text.contains("42") else { return Check(name: "irrelevance", result: .fail, detail: "no call, but the answer was \(Self.quote(response.text))") }
            return Check(name: "irrelevance", result: .pass, detail: "answered without a tool")
        }
        try await record("tool_choice_required") {
            let response = try await ask([.user(Self.prompts["tool_choice_required"]!)], tools: weatherTools, choice: .required)
            let found = calls(response, tools: weatherTools)
            tally(found, tools: weatherTools)
            guard !found.calls.isEmpty else { return Check(name: "tool_choice_required", result: .fail, detail: "tool_choice required, but no call: \(Self.quote(response.text))") }
            return passed("tool_choice_required", found, detail: "called \(found.calls[0].name)")
        }
        try await record("tool_choice_named") {
            let response = try await ask([.user(Self.prompts["tool_choice_named"]!)], tools: weatherTools, choice: .named("get_time"))
            let found = calls(response, tools: weatherTools)
            tally(found, tools: weatherTools)
            guard let call = found.calls.first, found.calls.allSatisfy({ $0.name == "get_time" }) else {
                return Check(name: "tool_choice_named", result: .fail, dialect: found.dialect, detail: "tool_choice named get_time, but the calls were \(found.calls.map(\.name))")
            }
            return passed("tool_choice_named", found, detail: "get_time \(call.arguments)")
        }
        // Without tools to choose from there is nothing to constrain: the pass skips this check.
        if !constrained { try await record("tool_choice_none", expectsCall: false) {
            let response = try await ask([.user(Self.prompts["tool_choice_none"]!)], tools: weatherTools, choice: .none)
            let found = calls(response, tools: weatherTools)
            guard found.calls.isEmpty else { return Check(name: "tool_choice_none", result: .fail, dialect: found.dialect, detail: "tool_choice none, but it called \(found.calls[0].name)") }
            return Check(name: "tool_choice_none", result: .pass, detail: "answered without a tool")
        } }
        try await record("argument_types") {
            let response = try await ask([.user(Self.prompts["argument_types"]!)], tools: [Self.alarm])
            let found = calls(response, tools: [Self.alarm])
            tally(found, tools: [Self.alarm])
            guard let call = found.calls.first, call.name == "set_alarm" else { return Check(name: "argument_types", result: .fail, dialect: found.dialect, detail: "no set_alarm call") }
            guard case .success(let fixed) = ArgumentRepair.repair(call.arguments, schema: Self.alarm.inputSchema) else {
                return Check(name: "argument_types", result: .fail, dialect: found.dialect, detail: "arguments not usable: \(call.arguments)")
            }
            let v = fixed.value
            guard v["hour"] == 7, v["minute"] == 30, v["label"]?.stringValue != nil, v["repeat"] == nil || v["repeat"]?.boolValue != nil else {
                return Check(name: "argument_types", result: .fail, dialect: found.dialect, detail: "wrong values or types: \(call.arguments)")
            }
            let note = fixed.repairs.isEmpty ? "integers, string and boolean as typed" : "after repair (\(fixed.repairs.joined(separator: "; ")))"
            return passed("argument_types", found, detail: note)
        }
        try await record("required_parameters") {
            let response = try await ask([.user(Self.prompts["required_parameters"]!)], tools: [Self.search])
            let found = calls(response, tools: [Self.search])
            tally(found, tools: [Self.search])
            guard let call = found.calls.first, call.name == "search_docs",
                case .success(let fixed) = ArgumentRepair.repair(call.arguments, schema: Self.search.inputSchema)
            else { return Check(name: "required_parameters", result: .fail, dialect: found.dialect, detail: "no usable search_docs call") }
            let problems = Schema.problems(in: .object(fixed.value), against: Self.search.inputSchema)
            guard problems.isEmpty else { return Check(name: "required_parameters", result: .fail, dialect: found.dialect, detail: problems.joined(separator: "; ")) }
            return passed("required_parameters", found, detail: "query and limit given")
        }
        if !constrained {
            checks.append(Check(
                name: "usage", result: usageSeen ? .pass : .fail,
                detail: usageSeen ? "prompt and completion tokens reported"
                    : answered == 0 ? "not measured: no request was answered" : "no usage numbers: token budgets will be estimated"))
        }
        return (checks, formed, notes)
    }

    /// A call something can run: an offered tool, and arguments valid against its schema after repair.
    static func isWellFormed(_ call: ToolCall, tools: [ToolSpec]) -> Bool {
        ArgumentRepair.isWellFormed(call.arguments, schema: tools.first { $0.name == call.name }?.inputSchema)
    }

    private func passed(_ name: String, _ found: Calls, detail: String) -> Check {
        Check(name: name, result: found.native ? .pass : .passText, dialect: found.dialect, detail: detail)
    }

    /// Native when the core checks (a bare call and a round trip) pass with structured calls;
    /// a text dialect when they pass only through one; otherwise unusable for agents.
    func verdict(_ checks: [Check]) -> Report {
        let core = checks.filter { ["bare_call", "round_trip"].contains($0.name) }
        var report = Report(
            endpoint: client.endpoint.address, api: client.endpoint.api.rawValue, model: model, checks: checks,
            wellFormed: WellFormed(calls: 0, of: 0), kind: "unusable", verdict: "cannot call tools: do not use for agents")
        if core.count == 2, core.allSatisfy({ $0.result == .pass }) {
            report.kind = "native"
            report.verdict = "native tool calls"
        } else if core.count == 2, core.allSatisfy({ $0.result != .fail }), let dialect = core.compactMap(\.dialect).first {
            report.kind = "text"
            report.dialect = dialect
            report.verdict = "text dialect \(dialect): toolhost parses it"
        } else {
            // Calls in a dialect toolhost parses count, even when a core check failed.
            let throughText = checks.filter { $0.result == .passText }
            if let dialect = throughText.compactMap(\.dialect).first {
                report.dialect = dialect
                let failed = core.filter { $0.result == .fail }.map(\.name)
                report.verdict += "; \(throughText.count) of \(checks.count) checks passed through text dialect \(dialect), which toolhost parses, but \(failed.joined(separator: " and ")) failed"
            }
        }
        return report
    }

    static func quote(_ text: String) -> String {
        (text.count > 80 ? String(text.prefix(80)) + "…" : text).debugDescription
    }

    /// The report as a table for people: each check, plain and (when run) constrained.
    public static func table(_ report: Report) -> String {
        func shown(_ check: Check?) -> String {
            guard let check else { return "" }
            return check.result == .passText ? "pass through text (\(check.dialect ?? "?"))" : check.result.rawValue
        }
        let constrained = Dictionary((report.constrainedChecks ?? []).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let columns: [[String]] = report.checks.map { check in
            [check.name, shown(check)] + (report.constrainedChecks == nil ? [] : [shown(constrained[check.name])]) + [check.detail]
        }
        let header = ["check", "result"] + (report.constrainedChecks == nil ? [] : ["constrained"]) + ["detail"]
        let widths = (0..<header.count - 1).map { index in ([header] + columns).map { $0[index].count }.max()! + 2 }
        func row(_ cells: [String]) -> String {
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined() + cells.last!
        }
        var lines = ["toolhost probe: \(report.model) at \(report.endpoint) (\(report.api))", "", row(header)]
        lines += columns.map(row)
        lines.append("")
        func rate(_ formed: WellFormed) -> String { "\(formed.calls)/\(formed.of) (\(Int((formed.rate * 100).rounded()))%)" }
        var formed = "well-formed calls: \(rate(report.wellFormed))"
        if let other = report.wellFormedConstrained { formed += "; constrained: \(rate(other))" }
        lines.append(formed)
        lines += report.notes.map { "note: \($0)" }
        lines.append("verdict: \(report.verdict)")
        return lines.joined(separator: "\n") + "\n"
    }
}

extension Probe.Report {
    /// The JSON form: snake_case keys, sorted, pretty.
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Where `probe` keeps its latest report on an endpoint's model: `run` reads it to decide
    /// whether to constrain replies.
    static func savedPath(stateDirectory: String, endpoint: String, model: String) -> String {
        "\(stateDirectory)/probes/\(GitHash.blobID(Data("\(endpoint)\n\(model)".utf8)).prefix(16)).json"
    }

    public func save(stateDirectory: String) throws {
        let path = Self.savedPath(stateDirectory: stateDirectory, endpoint: endpoint, model: model)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Self.encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// The latest saved report for this endpoint and model, if a probe ran.
    public static func saved(stateDirectory: String, endpoint: String, model: String) -> Probe.Report? {
        guard let data = FileManager.default.contents(atPath: savedPath(stateDirectory: stateDirectory, endpoint: endpoint, model: model)) else { return nil }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try? decoder.decode(Probe.Report.self, from: data)
    }
}
