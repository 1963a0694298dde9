import Foundation
import JSONCore
import Synchronization
import Tools

/// The host's guardrails for weak models: each catches one failure pattern of the showdown,
/// tells the model the way out, and (for loops) ends the run honestly. Each can be switched off.
public struct GuardrailSettings: Sendable, Equatable {
    /// The same call with the same arguments, nothing changed in between: a note at this many.
    public var repeatedCall: Int? = 3
    /// ... and a stop with `loop` at this many.
    public var loopStop: Int? = 5
    /// Builds in a row with the same errors before the hint is quoted again.
    public var repeatedBuild: Int? = 2
    /// A line repeated this many times in one message (or the same few words over and over on
    /// one line): the generation is cut.
    public var repeatedLine: Int? = 3
    /// Notes about cut repetitions before the next one ends the run as `degenerate_text` (a turn
    /// with a tool call in between starts the count again).
    public var degenerateNotes: Int? = 1
    /// Notes when the model stops with requirements unmet, before the run ends.
    public var keepGoing: Int? = 2
    /// "The build passes and changes are uncommitted: commit now".
    public var commitNow = true
    /// The share of any budget at which "commit and push what works" is said.
    public var budgetWarning: Double? = 0.8
    /// A tool failing the same way this many times: "stop and report what blocks you".
    public var sameFailure: Int? = 3
    /// Tool calls written as text that nothing parses: how to call, said this many times, then a
    /// stop with `unparsed_tool_calls`. Off: such a message ends the run like any answer.
    public var textCalls: Int? = 2

    public init() {}

    /// Every guardrail off: the run goes on until a budget ends it.
    public static var off: GuardrailSettings {
        var settings = GuardrailSettings()
        settings.repeatedCall = nil
        settings.loopStop = nil
        settings.repeatedBuild = nil
        settings.repeatedLine = nil
        settings.degenerateNotes = nil
        settings.keepGoing = nil
        settings.commitNow = false
        settings.budgetWarning = nil
        settings.sameFailure = nil
        settings.textCalls = nil
        return settings
    }

    /// The thresholds as the transcript records them (null: switched off).
    var json: JSONValue {
        func number(_ value: Int?) -> JSONValue { value.map(JSONValue.int) ?? .null }
        return [
            "repeated_call_note": number(repeatedCall), "repeated_call_stop": number(loopStop), "repeated_build": number(repeatedBuild),
            "repeated_line": number(repeatedLine), "degenerate_notes": number(degenerateNotes), "keep_going": number(keepGoing),
            "commit_now": .bool(commitNow), "budget_warning": budgetWarning.map(JSONValue.double) ?? .null, "same_failure": number(sameFailure),
            "text_calls": number(textCalls),
        ]
    }

    /// The names `--no-guard` takes.
    public static let names = ["repeated-call", "repeated-build", "repeated-line", "keep-going", "commit-now", "budget", "same-failure", "text-calls"]

    /// Switches one guardrail off by name; false for an unknown name.
    public mutating func disable(_ name: String) -> Bool {
        switch name {
        case "repeated-call": repeatedCall = nil; loopStop = nil
        case "repeated-build": repeatedBuild = nil
        case "repeated-line": repeatedLine = nil; degenerateNotes = nil
        case "keep-going": keepGoing = nil
        case "commit-now": commitNow = false
        case "budget": budgetWarning = nil
        case "same-failure": sameFailure = nil
        case "text-calls": textCalls = nil
        default: return false
        }
        return true
    }
}

/// What the guardrails remember during a run.
struct GuardrailState {
    let settings: GuardrailSettings
    /// Identical calls since the last call that changed something.
    var repeats: [String: Int] = [:]
    /// The last result of each call, numbers masked.
    var lastOutcome: [String: String] = [:]
    var sameBuilds = 0
    var failures: [String: Int] = [:]
    var keepGoingNotes = 0
    var budgetsWarned: Set<String> = []
    /// Set when a build passed with changes uncommitted; calls since then without a commit.
    var uncommittedSincePass: Int?
    var nudgedAgain = false

    init(settings: GuardrailSettings) { self.settings = settings }

    static let mutating: Set<String> = ["write_file", "edit_file", "execute", "git_commit", "git_branch", "git_push"]

    /// After a call: the note it earns, and whether the run must stop as a loop.
    mutating func afterCall(name: String, arguments: JSONValue, result: ToolResult) -> (note: String?, loop: Bool, stop: Bool) {
        let key = name + " " + arguments.jsonText
        if Self.mutating.contains(name) && repeats[key] == nil { repeats = [:] }
        // Progress is not a loop: polling a build or a server, the same call whose result
        // changes (beyond its numbers: durations, attempt counts) starts counting afresh.
        let outcome = result.text.replacingOccurrences(of: #"[0-9]+"#, with: "#", options: .regularExpression)
        if let previous = lastOutcome[key], previous != outcome { repeats[key] = 0 }
        lastOutcome[key] = outcome
        repeats[key, default: 0] += 1
        let count = repeats[key]!
        var note: String?
        var loop = false
        if let stop = settings.loopStop, count >= stop {
            return ("You called \(name) with the same arguments \(count) times without changing anything: the run stops here as a loop.", true, true)
        }
        if let limit = settings.repeatedCall, count == limit {
            loop = true
            note = "You have called \(name) with the same arguments \(count) times and nothing changed in between, so the result will not change either. Do something else: read the error or hint, change the code, or try another approach."
        }
        if name == "build", let facts = result.structured, let passed = facts["passed"]?.boolValue {
            if passed {
                sameBuilds = 0
            } else if facts["same_as_attempt"]?.intValue != nil {
                sameBuilds += 1
                if let limit = settings.repeatedBuild, sameBuilds + 1 >= limit {
                    loop = true
                    let hint = facts["diagnostics"]?.arrayValue?.compactMap { $0["hint"]?.stringValue }.first
                    let first = facts["diagnostics"]?.arrayValue?.first.map { "\($0["file"]?.stringValue ?? ""):\($0["line"]?.intValue ?? 0) \($0["message"]?.stringValue ?? "")" }
                    note = "The last \(sameBuilds + 1) builds failed with the same errors: what you changed did not touch them. "
                        + (first.map { "The first is \($0). " } ?? "")
                        + (hint.map { "Its hint: \($0). Apply exactly that, then build again." } ?? "Read the file at that line and its imports before you change anything.")
                }
            } else {
                sameBuilds = 0
            }
        }
        if result.isError, let limit = settings.sameFailure {
            let first = result.text.split(separator: "\n").first.map(String.init) ?? ""
            let failureKey = name + " " + first
            failures[failureKey, default: 0] += 1
            if failures[failureKey] == limit && note == nil {
                note = "\(name) has failed the same way \(limit) times (\(first.prefix(160))). Stop and report what blocks you, or take a different approach."
            }
        }
        return (note, loop, false)
    }

    /// The keep-going note when the model stops with requirements unmet, while notes remain.
    /// Only requirements whose tool is `offered` are named: the others the model cannot meet.
    mutating func keepGoing(missing: [Requirement], offered: Set<String>) -> String? {
        let tools: [Requirement: String] = [.build: "build", .screenshot: "screenshot", .commit: "git_commit", .push: "git_push"]
        let reachable = missing.filter { offered.contains(tools[$0]!) }
        guard let limit = settings.keepGoing, !reachable.isEmpty, keepGoingNotes < limit else { return nil }
        keepGoingNotes += 1
        let words: [Requirement: String] = [
            .build: "the build has not passed (run build)", .screenshot: "no screenshot was taken (screenshot)",
            .commit: "nothing is committed (git_commit)", .push: "the branch is not pushed (git_push)",
        ]
        return "The task is not complete yet: " + reachable.compactMap { words[$0] }.joined(separator: "; ")
            + ". Continue with that; if something blocks you, say what."
    }

    /// After a call: the commit nudge, when a passing build has changes waiting.
    mutating func commitNudge(name: String, result: ToolResult, offered: Set<String>, uncommitted: () async -> Int) async -> String? {
        guard settings.commitNow, offered.contains("git_commit") else { return nil }
        if name == "git_commit" && !result.isError {
            uncommittedSincePass = nil
            return nil
        }
        if name == "build", result.structured?["passed"]?.boolValue == true {
            let waiting = await uncommitted()
            guard waiting > 0 else { return nil }
            uncommittedSincePass = 0
            nudgedAgain = false
            return "The build passes and \(waiting) changed file\(waiting == 1 ? " is" : "s are") uncommitted: commit now (git_commit), then continue."
        }
        guard let since = uncommittedSincePass else { return nil }
        uncommittedSincePass = since + 1
        if since + 1 >= 3 && !nudgedAgain {
            nudgedAgain = true
            return "A passing build is still uncommitted after \(since + 1) more calls: commit it now with git_commit before anything else, so the work is safe."
        }
        return nil
    }

    /// The 80% notes, once per budget. They ask for what the `offered` tools can do: commit and
    /// push, commit, or finish (a run without git_commit cannot save its work).
    mutating func budgetNotes(used: [(name: String, used: Double, limit: Double?)], offered: Set<String>) -> [String] {
        guard let share = settings.budgetWarning else { return [] }
        let save = !offered.contains("git_commit") ? "finish what you are doing" : offered.contains("git_push") ? "commit and push what works" : "commit what works"
        var notes: [String] = []
        for budget in used {
            guard let limit = budget.limit, limit > 0, budget.used >= share * limit, !budgetsWarned.contains(budget.name) else { continue }
            budgetsWarned.insert(budget.name)
            notes.append("\(Int(share * 100))% of the \(budget.name) budget is spent (\(Int(budget.used)) of \(Int(limit))): \(save), then continue.")
        }
        return notes
    }
}

/// Watches a streaming message line by line and says stop at a line's Nth repeat.
final class RepeatedLines: Sendable {
    private struct State {
        var partial = ""
        var counts: [String: Int] = [:]
        var repeated: (line: String, count: Int)?
        /// The repeat was an array item, not a line.
        var isItem = false
    }

    private let limit: Int?
    private let state = Mutex(State())

    init(limit: Int?) { self.limit = limit }

    /// The line that repeated and how often, once it has.
    var found: (line: String, count: Int)? { state.withLock { $0.repeated } }
    /// Whether what repeated was an item of an array of arguments.
    var foundItem: Bool { state.withLock { $0.isItem } }

    /// Feeds a piece; `.stop` once a line has come `limit` times, or an array of arguments has
    /// the same string three times in a row.
    func feed(_ piece: String) -> Bool {
        guard let limit else { return true }
        return state.withLock { state in
            state.partial += piece
            if piece.contains(","), let item = Self.repeatedItem(in: state.partial) {
                state.repeated = (item, 3)
                state.isItem = true
                return false
            }
            // The same few words over and over with no newline: a line that never ends.
            if state.partial.utf8.count >= Self.window, let unit = Self.periodicTail(state.partial) {
                state.repeated = (unit, Self.window / max(1, unit.utf8.count))
                return false
            }
            while let newline = state.partial.firstIndex(of: "\n") {
                let line = state.partial[..<newline].trimmingCharacters(in: .whitespaces)
                state.partial = String(state.partial[state.partial.index(after: newline)...])
                if line.utf8.count >= Self.window, let unit = Self.periodicTail(line) {
                    state.repeated = (unit, Self.window / max(1, unit.utf8.count))
                    return false
                }
                // Markup and code repeat legitimately (a brace, "---", <tool_call> before each call):
                // only sentences count, four words or more.
                guard line.count >= 16, line.split(separator: " ").count >= 4 else { continue }
                state.counts[line, default: 0] += 1
                if state.counts[line]! >= limit {
                    state.repeated = (line, state.counts[line]!)
                    return false
                }
            }
            return true
        }
    }

    func reset() {
        state.withLock { $0 = State() }
    }

    /// A string that a JSON array of arguments (`"paths": [...]`, not one inside a string) has
    /// three times in a row, in the last 4 KB of `text`.
    static func repeatedItem(in text: String) -> String? {
        let tail = String(text.utf8.suffix(4096)) ?? ""
        let item = #/(?:^|[^\\])":\s*\[\s*(?:"(?:[^"\\]|\\.)*"\s*,\s*)*?("(?:[^"\\]|\\.)*")\s*,\s*\1\s*,\s*\1/#
        return tail.firstMatch(of: item).map { String($0.output.1) }
    }

    /// How much of an unended line is checked for a period.
    static let window = 240

    /// The unit the line's last `window` bytes repeat, when they are one unit of 2-60 bytes over
    /// and over (with at least three words in it, so that "-----" or "    " is no loop).
    static func periodicTail(_ line: String) -> String? {
        let tail = Array(line.utf8.suffix(window))
        for period in 2...60 {
            var periodic = true
            for index in 0..<(tail.count - period) where tail[index] != tail[index + period] {
                periodic = false
                break
            }
            guard periodic else { continue }
            let unit = String(decoding: tail.suffix(period), as: UTF8.self)
            let words = (String(decoding: tail, as: UTF8.self)).split(separator: " ").count
            return words >= 12 ? unit : nil
        }
        return nil
    }
}
