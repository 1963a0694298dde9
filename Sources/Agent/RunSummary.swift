public import Foundation
import ModelEndpoints

/// summary.json: what a run did and how it ended, in the public showdown's terms.
public struct RunSummary: Sendable, Codable, Equatable {
    public struct Builds: Sendable, Codable, Equatable {
        public var attempts = 0
        /// Whether the latest build passed.
        public var passed = false
        public var firstPassAttempt: Int?
    }

    public var label: String?
    public var model: String
    public var endpoint: String
    public var api: String
    public var task: String
    public var workspace: String
    public var branch: String?
    public var requires: [Requirement]
    public var turns = 0
    public var toolCalls = 0
    public var toolErrors = 0
    /// The model's messages (one per response).
    public var messages = 0
    /// The prompt tokens sent over the run (every request's whole prompt).
    public var promptTokens = 0
    public var completionTokens = 0
    public var totalTokens = 0
    /// The same count under a name that says it: what was sent.
    public var promptTokensSent: Int?
    /// Prompt tokens the server processed: llama-server's `timings.prompt_n` (its prompt cache
    /// skips the rest), else what was sent less what the API says came from its cache. A cached
    /// local run and an uncached cloud one compare on this, not on what was sent.
    public var promptTokensProcessed: Int?
    /// True when the server sent no usage and the counts are estimated from the text.
    public var tokensEstimated = false
    public var builds = Builds()
    public var commits = 0
    public var pushedBranch: String?
    /// What toolhost shipped itself (`ship_on_pass`), when the model did not.
    public var shippedByToolhost: Shipped?

    public struct Shipped: Sendable, Codable, Equatable {
        public var commit: String?
        public var pushedBranch: String?
    }
    public var screenshot: String?
    public var notes = 0
    /// Host secrets found in tool results and replaced before the model saw them.
    public var redactions = 0
    public var loops = 0
    /// How the model wrote its tool calls: "native" for structured calls, else the text dialect
    /// toolhost parsed ("hermes", "mistral", …); several are joined with "+".
    public var dialect: String?
    /// Repairs made to tool-call arguments (trailing commas, quotes, types, …).
    public var repairs = 0
    /// Calls of a registered tool with arguments valid against its schema (after repair).
    public var wellFormedCalls = 0
    /// Calls nothing could run: an unknown tool, arguments that fail the schema even after
    /// repair, a call written as text no parser reads, or one cut at the token limit.
    public var malformedCalls = 0
    /// Whether the server's grammar shaped the replies (`run --constrain`).
    public var constrained = false
    /// Generation speed over the turns, from llama-server's `timings` (nil when none came).
    public var tokensPerSecond: Double?
    /// Prompt processing speed, likewise.
    public var promptTokensPerSecond: Double?
    public var durationSeconds = 0.0
    /// Replies that ended cut (at the server's token limit, by toolhost's repeated-item stop, or
    /// by the minutes budget while still coming), and the seconds spent waiting for them: the time
    /// the run lost to replies nothing could use.
    /// Nil in a summary written before they were counted.
    public var cutReplies: Int?
    public var cutReplySeconds: Double?
    public var outcome = Outcome.failed
    public var stopReason = StopReason.completed
    /// Requirements not met.
    public var missing: [Requirement] = []
    public var error: String?
    /// The run failed for the harness's sake (the endpoint or its server, not the model's answers).
    public var harnessError = false
    /// The Ray node the run ran on (`showdown --ray`); nil for a local run.
    public var node: String?

    public init(label: String? = nil, model: String, endpoint: String, api: String, task: String, workspace: String, branch: String? = nil, requires: [Requirement]) {
        self.label = label
        self.model = model
        self.endpoint = endpoint
        self.api = api
        self.task = task
        self.workspace = workspace
        self.branch = branch
        self.requires = requires
    }

    public enum Outcome: String, Sendable, Codable {
        case complete, partial, failed
        /// Every requirement met, but only because toolhost shipped the passing build itself.
        case shippedByToolhost = "shipped_by_toolhost"

        /// How tables show it.
        public var shown: String { self == .shippedByToolhost ? "shipped by toolhost" : rawValue }
    }

    public enum StopReason: String, Sendable, Codable {
        /// The model answered without a tool call, and the task's requirements (if any) were met.
        case completed
        /// The model answered without a tool call while requirements were still unmet.
        case answeredUnfinished = "answered_unfinished"
        case budgetToolCalls = "budget_tool_calls"
        case budgetTokens = "budget_tokens"
        case budgetMinutes = "budget_minutes"
        case budgetTurns = "budget_turns"
        case interrupted
        case error
        case loop
        /// The model kept writing tool calls as text that no dialect parser understood.
        case unparsedToolCalls = "unparsed_tool_calls"
        /// The conversation outgrew the server's context window.
        case contextFull = "context_full"
        /// Replies kept ending at the token limit before a call or an answer was whole.
        case replyCut = "reply_cut"
        /// The model kept repeating itself after being told (the repeated-line guardrail's stop).
        case degenerateText = "degenerate_text"
    }

    /// Well-formed calls over attempted ones (nil when the model attempted none).
    public var wellFormedRate: Double? {
        let attempted = wellFormedCalls + malformedCalls
        return attempted == 0 ? nil : Double(wellFormedCalls) / Double(attempted)
    }

    /// Adds the speeds llama-server reported.
    mutating func record(_ timings: Timings) {
        if timings.generationMilliseconds > 0 { tokensPerSecond = (Double(timings.generatedTokens) * 1000 / timings.generationMilliseconds * 10).rounded() / 10 }
        if timings.promptMilliseconds > 0 { promptTokensPerSecond = (Double(timings.promptTokens) * 1000 / timings.promptMilliseconds * 10).rounded() / 10 }
    }

    /// Counts a reply that took `seconds`: toward the cut ones when it was cut.
    mutating func countReply(cut: Bool, seconds: Double) {
        cutReplies = (cutReplies ?? 0) + (cut ? 1 : 0)
        cutReplySeconds = (((cutReplySeconds ?? 0) + (cut ? seconds : 0)) * 1000).rounded() / 1000
    }

    /// Whether the model met a requirement.
    public func met(_ requirement: Requirement) -> Bool {
        switch requirement {
        case .build: builds.passed
        case .screenshot: screenshot != nil
        case .commit: commits > 0
        case .push: pushedBranch != nil
        }
    }

    /// Whether toolhost's safety net met it instead.
    func shipped(_ requirement: Requirement) -> Bool {
        switch requirement {
        case .commit: shippedByToolhost?.commit != nil
        case .push: shippedByToolhost?.pushedBranch != nil
        default: false
        }
    }

    /// complete: every requirement met (with none, the model finished by itself);
    /// shipped_by_toolhost: met only with what the safety net committed or pushed; partial: code
    /// pushed but something missing; failed: otherwise. A model that answered with requirements
    /// unmet stopped `answered_unfinished`, not `completed`.
    public mutating func decideOutcome() {
        missing = requires.filter { !met($0) }
        if stopReason == .completed && !missing.isEmpty { stopReason = .answeredUnfinished }
        if requires.isEmpty ? stopReason == .completed : missing.isEmpty {
            outcome = .complete
        } else if !requires.isEmpty, missing.allSatisfy(shipped) {
            outcome = .shippedByToolhost
        } else if pushedBranch != nil || shippedByToolhost?.pushedBranch != nil {
            outcome = .partial
        } else {
            outcome = .failed
        }
    }

    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    public static func load(runDirectory: String) throws -> RunSummary {
        let path = (runDirectory as NSString).appendingPathComponent("summary.json")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TaskError("\(runDirectory) has no summary.json: is it a run folder (toolhost run --out DIR)?")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(RunSummary.self, from: data)
        } catch {
            throw TaskError("\(path) is not a toolhost run summary: \(error)")
        }
    }

    /// Writes summary.json atomically (a crash never leaves half a summary).
    public func write(to runDirectory: String) throws {
        let path = (runDirectory as NSString).appendingPathComponent("summary.json")
        try (Self.encoder.encode(self) + Data("\n".utf8)).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
