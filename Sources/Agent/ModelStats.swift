import Foundation

/// One contestant's showdown over its repeats: pass@1 and pass@k over the runs the harness did
/// not spoil, medians of tokens and tool calls, the well-formed-call rate, and harness errors
/// (a server that never started, an endpoint that failed) counted apart from model failures.
struct ModelStats: Sendable, Codable, Equatable {
    var label: String
    var model: String
    var runs: Int
    /// Runs the harness spoiled: not held against the model.
    var harnessErrors: Int
    /// Runs that count: `runs - harnessErrors`.
    var scored: Int
    var passed: Int
    /// The chance that one run passes: passed / scored (nil when no run counts).
    var passAt1: Double?
    /// k = scored: whether any of them passed (nil when no run counts).
    var passAtK: Double?
    var k: Int
    var medianTokens: Int?
    /// Median prompt tokens sent and processed (a prompt cache skips the difference).
    var medianPromptTokensSent: Int?
    var medianPromptTokensProcessed: Int?
    var medianToolCalls: Int?
    /// Well-formed calls over attempted ones, summed over the scored runs.
    var wellFormedRate: Double?
    var medianTokensPerSecond: Double?
    /// The share of the scored runs' time spent waiting for cut replies (`RunSummary.cutReplies`;
    /// nil when no run counted them).
    var cutReplyTimeShare: Double?
    var cutReplies: Int
    /// What spoiled the runs the harness spoiled.
    var harnessErrorMessages: [String]

    // Spelled out: the snake_case strategy would write pass_at1.
    enum CodingKeys: String, CodingKey {
        case label, model, runs, harnessErrors, scored, passed, k, medianTokens, medianPromptTokensSent, medianPromptTokensProcessed, medianToolCalls,
            wellFormedRate, medianTokensPerSecond, cutReplyTimeShare, cutReplies, harnessErrorMessages
        case passAt1 = "pass_at_1"
        case passAtK = "pass_at_k"
    }

    init(label: String, runs summaries: [RunSummary]) {
        let counted = summaries.filter { !$0.harnessError }
        self.label = label
        model = summaries.first(where: { $0.model != "?" })?.model ?? summaries.first?.model ?? "?"
        runs = summaries.count
        harnessErrors = summaries.count - counted.count
        harnessErrorMessages = Array(Set(summaries.filter(\.harnessError).compactMap(\.error))).sorted()
        scored = counted.count
        passed = counted.filter { $0.outcome == .complete }.count
        k = scored
        passAt1 = scored == 0 ? nil : (Double(passed) / Double(scored) * 100).rounded() / 100
        passAtK = scored == 0 ? nil : (passed > 0 ? 1 : 0)
        medianTokens = Self.median(counted.map { Double($0.totalTokens) }).map { Int($0.rounded()) }
        medianPromptTokensSent = Self.median(counted.map { Double($0.promptTokensSent ?? $0.promptTokens) }).map { Int($0.rounded()) }
        medianPromptTokensProcessed = Self.median(counted.compactMap { $0.promptTokensProcessed.map(Double.init) }).map { Int($0.rounded()) }
        medianToolCalls = Self.median(counted.map { Double($0.toolCalls) }).map { Int($0.rounded()) }
        let formed = counted.reduce(0) { $0 + $1.wellFormedCalls }, attempted = counted.reduce(0) { $0 + $1.wellFormedCalls + $1.malformedCalls }
        wellFormedRate = attempted == 0 ? nil : (Double(formed) / Double(attempted) * 100).rounded() / 100
        medianTokensPerSecond = Self.median(counted.compactMap(\.tokensPerSecond))
        let timed = counted.filter { $0.cutReplySeconds != nil }, seconds = timed.reduce(0) { $0 + $1.durationSeconds }
        cutReplyTimeShare = seconds > 0 ? (timed.reduce(0) { $0 + ($1.cutReplySeconds ?? 0) } / seconds * 100).rounded() / 100 : nil
        cutReplies = counted.reduce(0) { $0 + ($1.cutReplies ?? 0) }
    }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// The per-model table of results.md.
    static func table(_ models: [ModelStats]) -> String {
        func percent(_ value: Double?) -> String { value.map { "\(Int(($0 * 100).rounded()))%" } ?? "n/a" }
        func number(_ value: Int?) -> String { value.map { Report.grouped($0) } ?? "n/a" }
        var lines = [
            "| model | runs | passed | pass@1 | pass@k | median tokens | median prompt sent / processed | median tool calls | well-formed calls | cut replies (share of time) | tokens/s | harness errors |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for model in models {
            let errors = model.harnessErrors == 0 ? "0" : "\(model.harnessErrors): \(model.harnessErrorMessages.joined(separator: "; ").prefix(160))"
            let passAtK = model.passAtK.map { "\(percent($0)) (k=\(model.k))" } ?? "n/a"
            let cut = model.cutReplyTimeShare.map { "\(model.cutReplies) (\(percent($0)))" } ?? "n/a"
            let speed = model.medianTokensPerSecond.map { String(format: "%.1f", $0) } ?? "n/a"
            lines.append(
                "| \(model.label) | \(model.runs) | \(model.passed)/\(model.scored) | \(percent(model.passAt1)) | \(passAtK) | \(number(model.medianTokens)) | \(number(model.medianPromptTokensSent)) / \(number(model.medianPromptTokensProcessed)) | \(number(model.medianToolCalls)) | \(percent(model.wellFormedRate)) | \(cut) | \(speed) | \(errors.replacingOccurrences(of: "|", with: "\\|")) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
