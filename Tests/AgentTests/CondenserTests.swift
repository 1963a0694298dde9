import Foundation
import JSONCore
import ModelEndpoints
import Testing
@testable import Agent

/// The condenser keeps a long history small in steps: old long results become stubs that say how
/// to get them again, old long arguments their line counts, and what a step condensed is never
/// rewritten by a later one, so a prompt cache keeps its prefix.
@Suite struct CondenserTests {
    static let file = (1...20).map { "line \($0) of src/big.ts" }.joined(separator: "\n")

    /// The system prompt, the task, then `turns` turns: a read of a big file, a write, a short result.
    static func history(turns: Int) -> [ChatMessage] {
        var messages: [ChatMessage] = [.system("You are a coding agent."), .user("Add a tag manager.")]
        for turn in 1...turns {
            let read = ToolCall(id: "r\(turn)", name: "read_file", arguments: #"{"path":"src/big\#(turn).ts"}"#)
            let write = ToolCall(id: "w\(turn)", name: "write_file", arguments: JSONValue.object(["path": .string("src/new\(turn).ts"), "content": .string(file)]).jsonText)
            messages += [
                .assistant(text: "Turn \(turn).", toolCalls: [read, write]),
                .toolResult(callID: "r\(turn)", content: file, isError: false, images: turn == 1 ? [Data(count: 10)] : []),
                .toolResult(callID: "w\(turn)", content: "Created src/new\(turn).ts (20 lines).", isError: false),
            ]
        }
        return messages
    }

    @Test func belowTheThresholdNothingChanges() {
        var messages = Self.history(turns: 6)
        var condenser = Condenser(threshold: 1_000_000)
        #expect(condenser.step(&messages, tools: []) == nil)
        #expect(messages == Self.history(turns: 6))
        var off = Condenser(threshold: 0)
        #expect(off.step(&messages, tools: []) == nil)
    }

    @Test func oldLongResultsAndArgumentsBecomeStubsAndTheLastTurnsStayWhole() throws {
        let whole = Self.history(turns: 6)
        var messages = whole
        var condenser = Condenser(threshold: 2600)
        let step = try #require(condenser.step(&messages, tools: []))
        #expect(step.charactersAfter < step.charactersBefore / 10, "\(step)")
        #expect(messages[0] == whole[0] && messages[1] == whole[1], "the system prompt and the task are never touched")
        // Turns 4 to 6 (the last three) are whole; turns 1 to 3 are condensed.
        let kept = whole.count - 9
        #expect(Array(messages[kept...]) == Array(whole[kept...]), "the last three turns are whole")
        #expect(condenser.condensedUpTo == kept)
        guard case .toolResult(_, let stub, _, let images) = messages[3], case .assistant(_, let calls) = messages[2],
            case .toolResult(_, let short, _, _) = messages[4]
        else { Issue.record("the shape changed"); return }
        #expect(stub.hasPrefix("[condensed by toolhost: 20 lines from read_file of src/big1.ts") && stub.contains("Call it again"), "\(stub)")
        #expect(images.isEmpty, "an old screenshot loses its image")
        #expect(short == "Created src/new1.ts (20 lines).", "a short result stays")
        let arguments = try JSONValue.parse(calls[1].arguments)
        #expect(arguments["content"] == "[condensed by toolhost: 20 lines]" && arguments["path"] == "src/new1.ts")
        #expect(calls[0] == whole[2].calls[0], "short arguments stay")
    }

    /// A later step condenses only what came after the last one: the prefix it left is unchanged.
    @Test func aLaterStepKeepsThePrefixTheFirstLeft() throws {
        var messages = Self.history(turns: 6)
        var condenser = Condenser(threshold: 2600)
        _ = try #require(condenser.step(&messages, tools: []))
        let first = Array(messages[..<condenser.condensedUpTo])
        #expect(condenser.step(&messages, tools: []) == nil, "nothing new to condense")
        messages += Array(Self.history(turns: 8).suffix(6)).map { $0 }
        let mark = condenser.condensedUpTo
        _ = try #require(condenser.step(&messages, tools: []))
        #expect(Array(messages[..<mark]) == first, "the first step's prefix is unchanged")
        #expect(condenser.condensedUpTo > mark)
    }

    /// When the stubs themselves pass the threshold, the condensed turns fold into one line after
    /// the task, naming their calls; the conversation still opens with the system prompt and the task.
    @Test func aLongRunFoldsItsOldestTurns() throws {
        var messages = Self.history(turns: 60)
        var condenser = Condenser(threshold: 2600)
        let step = try #require(condenser.step(&messages, tools: []))
        #expect(step.foldedTurns == 57)
        #expect(messages.count == 2 + 9)
        guard case .user(let task) = messages[1], case .assistant = messages[2] else { Issue.record("the shape changed"); return }
        #expect(task.hasPrefix("Add a tag manager.\n\n[condensed by toolhost: your first 57 turns"))
        #expect(task.contains("read_file ×57 (src/big1.ts, src/big2.ts,") && task.contains("write_file ×57"), "\(task)")
        // A second fold merges into the same line.
        messages += Array(Self.history(turns: 70).suffix(30))
        _ = try #require(condenser.step(&messages, tools: []))
        guard case .user(let again) = messages[1] else { Issue.record("the shape changed"); return }
        #expect(again.components(separatedBy: "[condensed by toolhost:").count == 2 && again.contains("your first 67 turns"), "\(again)")
    }
}

extension ChatMessage {
    var calls: [ToolCall] { if case .assistant(_, let calls) = self { calls } else { [] } }
}
