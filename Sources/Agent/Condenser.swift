import Foundation
import JSONCore
import ModelEndpoints

/// Keeps a long run's prompt small, deterministically. Every request carries the whole history,
/// so a read of a file, a build log or a file written twenty turns ago is paid for again on every
/// turn. When the prompt passes `threshold` (estimated tokens), every message before the last
/// `keptTurns` turns is condensed in one step: a tool result longer than a few lines becomes a
/// one-line stub that says where it came from and how to get it again, a long string argument of
/// an old call (a file's content, an edit's text) becomes its line count, and an old screenshot
/// loses its image. When the stubs themselves outgrow the threshold (a long run), the condensed
/// turns are folded into one line after the task: how many turns, which tools, the paths they
/// named. What was condensed stays so, and nothing is condensed again until the prompt passes the
/// threshold once more: between two steps the history only grows at its end, so a server's prompt
/// cache keeps its prefix. The system prompt, the task and the last turns are never touched; the
/// transcript keeps everything whole.
struct Condenser: Sendable {
    /// Estimated prompt tokens that start a step; 0 never condenses.
    let threshold: Int
    /// The most recent turns (assistant messages and what follows them) left whole.
    var keptTurns = 3
    /// Messages before this index are condensed (the first two are the system prompt and the task).
    private(set) var condensedUpTo = 2
    /// The tools of the folded turns, in the order first called, with their counts and paths.
    private var folded: [(tool: String, count: Int, paths: [String])] = []
    private var foldedTurns = 0

    /// What one step did, for the transcript.
    struct Step: Sendable {
        var messages: Int
        var charactersBefore: Int
        var charactersAfter: Int
        /// Turns folded into the line after the task (0: none this step).
        var foldedTurns = 0
    }

    /// Results up to this many characters stay: they are cheap, and say what happened.
    static let shortResult = 240
    /// String arguments up to this many characters stay.
    static let shortArgument = 300

    init(threshold: Int) {
        self.threshold = threshold
    }

    /// The estimate the threshold is measured in: 3 characters a token (code and JSON tokenize
    /// denser than prose, so this errs towards condensing early), with each message's and call's
    /// own markup (roles, ids, the chat template's tokens) counted, and an image as 1,600 tokens.
    static func tokens(_ messages: [ChatMessage], tools: [ToolSpec]) -> Int {
        let markup = messages.reduce(0) { total, message in
            if case .assistant(_, let calls) = message { return total + 60 + calls.reduce(0) { $0 + 80 + $1.name.count } }
            return total + 60
        }
        let schemas = tools.reduce(0) { $0 + 40 + $1.name.count + $1.description.count + $1.inputSchema.jsonText.count }
        return (messages.reduce(0) { $0 + characters($1) } + markup + schemas) / 3
    }

    /// The characters of a message's own text (its content, its calls' arguments).
    static func characters(_ message: ChatMessage) -> Int {
        switch message {
        case .system(let text), .user(let text): text.count
        case .assistant(let text, let calls): text.count + calls.reduce(0) { $0 + $1.arguments.count }
        case .toolResult(_, let content, _, let images): content.count + images.count * 1600 * 4
        }
    }

    /// Condenses `messages` (the system prompt, the task, then the turns) when they pass the
    /// threshold; nil when nothing needed to change.
    mutating func step(_ messages: inout [ChatMessage], tools: [ToolSpec]) -> Step? {
        guard threshold > 0, messages.count > 2, Self.tokens(messages, tools: tools) > threshold else { return nil }
        let turns = messages.indices.filter { if case .assistant = messages[$0] { true } else { false } }
        guard turns.count > keptTurns else { return nil }
        let end = turns[turns.count - keptTurns]
        guard end > condensedUpTo else { return nil }
        let before = messages[2..<end].reduce(0) { $0 + Self.characters($1) }
        let calls = Dictionary(messages[..<end].flatMap { message -> [(String, ToolCall)] in
            if case .assistant(_, let toolCalls) = message { toolCalls.map { ($0.id, $0) } } else { [] }
        }, uniquingKeysWith: { first, _ in first })
        var changed = 0
        for index in condensedUpTo..<end {
            let condensed = Self.condense(messages[index], calls: calls)
            if condensed != messages[index] {
                messages[index] = condensed
                changed += 1
            }
        }
        condensedUpTo = end
        var step = Step(messages: changed, charactersBefore: before, charactersAfter: 0)
        if Self.tokens(messages, tools: tools) > threshold, condensedUpTo > 2 { step.foldedTurns = fold(&messages) }
        step.charactersAfter = messages[2..<condensedUpTo].reduce(0) { $0 + Self.characters($1) }
        return changed == 0 && step.foldedTurns == 0 ? nil : step
    }

    /// Takes the condensed turns out, and says after the task what they did.
    private mutating func fold(_ messages: inout [ChatMessage]) -> Int {
        var turns = 0
        for case .assistant(_, let calls) in messages[2..<condensedUpTo] {
            turns += 1
            for call in calls {
                let path = (try? JSONValue.parse(call.arguments))?["path"]?.stringValue
                if let index = folded.firstIndex(where: { $0.tool == call.name }) {
                    folded[index].count += 1
                    if let path, !folded[index].paths.contains(path) { folded[index].paths.append(path) }
                } else {
                    folded.append((call.name, 1, path.map { [$0] } ?? []))
                }
            }
        }
        foldedTurns += turns
        messages.removeSubrange(2..<condensedUpTo)
        condensedUpTo = 2
        guard case .user(let text) = messages[1] else { return turns }
        let task = text.components(separatedBy: "\n\n" + Self.foldMark)[0]
        let calls = folded.map { entry in
            let paths = entry.paths.prefix(8).joined(separator: ", ") + (entry.paths.count > 8 ? ", …" : "")
            return "\(entry.tool) ×\(entry.count)" + (paths.isEmpty ? "" : " (\(paths))")
        }
        messages[1] = .user(task + "\n\n" + Self.foldMark + " your first \(foldedTurns) turns were taken out to save context. Their calls: \(calls.joined(separator: ", ")). The workspace has what they did; call a tool again to see anything.]")
        return turns
    }

    static let foldMark = "[condensed by toolhost:"

    static func condense(_ message: ChatMessage, calls: [String: ToolCall]) -> ChatMessage {
        switch message {
        case .toolResult(let id, let content, let isError, let images):
            guard content.count > shortResult || !images.isEmpty else { return message }
            return .toolResult(callID: id, content: stub(content, call: calls[id]), isError: isError)
        case .assistant(let text, let toolCalls):
            return .assistant(text: text, toolCalls: toolCalls.map(condense))
        case .system, .user:
            return message
        }
    }

    /// One line in place of an old result: the call it answered, its size, its first line.
    static func stub(_ content: String, call: ToolCall?) -> String {
        let lines = content.split(separator: "\n", omittingEmptySubsequences: false)
        let first = lines.first { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map { String($0.prefix(120)) } ?? ""
        var source = call?.name ?? "a tool"
        if let call, let path = (try? JSONValue.parse(call.arguments))?["path"]?.stringValue { source += " of \(path)" }
        return "[condensed by toolhost: \(lines.count) lines from \(source), the first: \(first.debugDescription). Call it again to see it as it is now.]"
    }

    /// An old call with its long string arguments cut to their line counts (the workspace has them).
    static func condense(_ call: ToolCall) -> ToolCall {
        guard case .object(var arguments)? = try? JSONValue.parse(call.arguments) else { return call }
        var changed = false
        for (key, value) in arguments {
            guard let text = value.stringValue, text.count > shortArgument else { continue }
            arguments[key] = .string("[condensed by toolhost: \(text.split(separator: "\n", omittingEmptySubsequences: false).count) lines]")
            changed = true
        }
        guard changed else { return call }
        var condensed = call
        condensed.arguments = JSONValue.object(arguments).jsonText
        return condensed
    }
}
