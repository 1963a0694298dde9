import Foundation
import JSONCore
import ModelEndpoints

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

    public struct Report: Sendable, Codable {
        public var endpoint: String
        public var api: String
        public var model: String
        public var checks: [Check]
        /// "native", "text" or "unusable".
        public var kind: String
        public var verdict: String
        public var dialect: String?
    }

    let client: any ModelClient
    let model: String
    let maxTokens: Int

    public init(client: any ModelClient, model: String, maxTokens: Int = 400) {
        self.client = client
        self.model = model
        self.maxTokens = maxTokens
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
        if let found = TextToolCalls(tools: tools).parse(response.text) {
            let calls = found.calls.enumerated().map { ToolCall(id: "call\($0.offset)", name: $0.element.name, arguments: $0.element.arguments) }
            return Calls(calls: calls, dialect: found.dialect.rawValue, prose: found.prose)
        }
        return Calls(calls: [], dialect: nil, prose: response.text)
    }

    private func ask(_ messages: [ChatMessage], tools: [ToolSpec], choice: ToolChoice = .auto, stream: Bool = false) async throws -> ChatResponse {
        try await client.complete(
            ChatRequest(model: model, messages: [.system(Self.system)] + messages, tools: tools, toolChoice: choice, stream: stream, maxTokens: maxTokens),
            onEvent: { _ in .proceed })
    }

    /// Runs every check; a transport failure (nothing listening) is thrown, other errors fail their check.
    public func run() async throws -> Report {
        var checks: [Check] = []
        var usageSeen = false
        func record(_ name: String, _ body: () async throws -> Check) async throws {
            do {
                checks.append(try await body())
            } catch let error as EndpointError {
                switch error {
                case .notListening, .connectTimeout, .badEndpoint: throw error
                default: checks.append(Check(name: name, result: .fail, detail: "\(error)"))
                }
            }
        }
        let weatherTools = [Self.weather, Self.time]
        func city(_ call: ToolCall) -> String {
            (try? ArgumentRepair.repair(call.arguments, schema: Self.weather.inputSchema).get())?.value["city"]?.stringValue ?? ""
        }
        func single(_ name: String, city wanted: String, stream: Bool = false) async throws -> Check {
            let response = try await ask([.user(Self.prompts[name]!)], tools: weatherTools, stream: stream)
            usageSeen = usageSeen || (response.usage.map { $0.promptTokens > 0 && $0.completionTokens > 0 } ?? false)
            let found = calls(response, tools: weatherTools)
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
        try await record("irrelevance") {
            let response = try await ask([.user(Self.prompts["irrelevance"]!)], tools: weatherTools)
            let found = calls(response, tools: weatherTools)
            guard found.calls.isEmpty else { return Check(name: "irrelevance", result: .fail, dialect: found.dialect, detail: "called \(found.calls[0].name) for arithmetic") }
            guard response.text.contains("42") else { return Check(name: "irrelevance", result: .fail, detail: "no call, but the answer was \(Self.quote(response.text))") }
            return Check(name: "irrelevance", result: .pass, detail: "answered without a tool")
        }
        try await record("tool_choice_required") {
            let response = try await ask([.user(Self.prompts["tool_choice_required"]!)], tools: weatherTools, choice: .required)
            let found = calls(response, tools: weatherTools)
            guard !found.calls.isEmpty else { return Check(name: "tool_choice_required", result: .fail, detail: "tool_choice required, but no call: \(Self.quote(response.text))") }
            return passed("tool_choice_required", found, detail: "called \(found.calls[0].name)")
        }
        try await record("tool_choice_named") {
            let response = try await ask([.user(Self.prompts["tool_choice_named"]!)], tools: weatherTools, choice: .named("get_time"))
            let found = calls(response, tools: weatherTools)
            guard let call = found.calls.first, found.calls.allSatisfy({ $0.name == "get_time" }) else {
                return Check(name: "tool_choice_named", result: .fail, dialect: found.dialect, detail: "tool_choice named get_time, but the calls were \(found.calls.map(\.name))")
            }
            return passed("tool_choice_named", found, detail: "get_time \(call.arguments)")
        }
        try await record("tool_choice_none") {
            let response = try await ask([.user(Self.prompts["tool_choice_none"]!)], tools: weatherTools, choice: .none)
            let found = calls(response, tools: weatherTools)
            guard found.calls.isEmpty else { return Check(name: "tool_choice_none", result: .fail, dialect: found.dialect, detail: "tool_choice none, but it called \(found.calls[0].name)") }
            return Check(name: "tool_choice_none", result: .pass, detail: "answered without a tool")
        }
        try await record("argument_types") {
            let response = try await ask([.user(Self.prompts["argument_types"]!)], tools: [Self.alarm])
            let found = calls(response, tools: [Self.alarm])
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
            guard let call = found.calls.first, call.name == "search_docs",
                case .success(let fixed) = ArgumentRepair.repair(call.arguments, schema: Self.search.inputSchema)
            else { return Check(name: "required_parameters", result: .fail, dialect: found.dialect, detail: "no usable search_docs call") }
            let problems = Schema.problems(in: .object(fixed.value), against: Self.search.inputSchema)
            guard problems.isEmpty else { return Check(name: "required_parameters", result: .fail, dialect: found.dialect, detail: problems.joined(separator: "; ")) }
            return passed("required_parameters", found, detail: "query and limit given")
        }
        checks.append(Check(
            name: "usage", result: usageSeen ? .pass : .fail,
            detail: usageSeen ? "prompt and completion tokens reported" : "no usage numbers: token budgets will be estimated"))
        return verdict(checks)
    }

    private func passed(_ name: String, _ found: Calls, detail: String) -> Check {
        Check(name: name, result: found.native ? .pass : .passText, dialect: found.dialect, detail: detail)
    }

    /// Native when the core checks (a bare call and a round trip) pass with structured calls;
    /// a text dialect when they pass only through one; otherwise unusable for agents.
    func verdict(_ checks: [Check]) -> Report {
        let core = checks.filter { ["bare_call", "round_trip"].contains($0.name) }
        var report = Report(endpoint: client.endpoint.chatURL.absoluteString, api: client.endpoint.api.rawValue, model: model, checks: checks, kind: "unusable", verdict: "cannot call tools: do not use for agents")
        if core.count == 2, core.allSatisfy({ $0.result == .pass }) {
            report.kind = "native"
            report.verdict = "native tool calls"
        } else if core.count == 2, core.allSatisfy({ $0.result != .fail }), let dialect = core.compactMap(\.dialect).first {
            report.kind = "text"
            report.dialect = dialect
            report.verdict = "text dialect \(dialect): toolhost parses it"
        }
        return report
    }

    static func quote(_ text: String) -> String {
        (text.count > 80 ? String(text.prefix(80)) + "…" : text).debugDescription
    }

    /// The report as a table for people.
    public static func table(_ report: Report) -> String {
        let results = report.checks.map { $0.result == .passText ? "pass through text (\($0.dialect ?? "?"))" : $0.result.rawValue }
        let width = (report.checks.map(\.name.count).max() ?? 0) + 2
        let resultWidth = max(8, results.map(\.count).max() ?? 0) + 2
        func row(_ a: String, _ b: String, _ c: String) -> String {
            a.padding(toLength: width, withPad: " ", startingAt: 0) + b.padding(toLength: resultWidth, withPad: " ", startingAt: 0) + c
        }
        var lines = ["toolhost probe: \(report.model) at \(report.endpoint) (\(report.api))", "", row("check", "result", "detail")]
        for (check, result) in zip(report.checks, results) { lines.append(row(check.name, result, check.detail)) }
        lines += ["", "verdict: \(report.verdict)"]
        return lines.joined(separator: "\n") + "\n"
    }
}
