@testable import Agent
import JSONCore
import Testing
import Tools

@Suite struct GuardrailTests {
    func failed(_ text: String) -> ToolResult { .failure(text) }

    @Test func aChangeInBetweenResetsTheRepeatCount() {
        var state = GuardrailState(settings: GuardrailSettings())
        let read: JSONValue = ["path": "a.ts"]
        #expect(state.afterCall(name: "read_file", arguments: read, result: .text("x")).note == nil)
        #expect(state.afterCall(name: "read_file", arguments: read, result: .text("x")).note == nil)
        _ = state.afterCall(name: "edit_file", arguments: ["path": "a.ts"], result: .text("ok"))
        #expect(state.afterCall(name: "read_file", arguments: read, result: .text("x")).note == nil)
        #expect(state.afterCall(name: "read_file", arguments: read, result: .text("x")).note == nil)
        let third = state.afterCall(name: "read_file", arguments: read, result: .text("x"))
        #expect(third.loop && third.note?.contains("3 times") == true)
    }

    /// Staged like Cline's: a note at the third identical call, a stop at the fifth; a poll whose
    /// result moves on (a build getting further, a server coming up) is progress, not a loop.
    @Test func identicalCallsAreNotedThenStoppedUnlessTheResultMovesOn() {
        var state = GuardrailState(settings: GuardrailSettings())
        let poll: JSONValue = ["command": "curl -s localhost:3000/health"]
        let outcomes = ["starting (11 s)", "starting (12 s)", "starting (13 s)", "ready", "ready", "ready"]
        let results = outcomes.map { state.afterCall(name: "execute", arguments: poll, result: .text($0)) }
        #expect(results.map(\.stop) == Array(repeating: false, count: 6))
        #expect(results[2].note?.contains("3 times") == true, "the numbers in a result are not progress")
        #expect(results[3].note == nil && results[4].note == nil)
        #expect(results[5].note?.contains("3 times") == true)
        let sameError = (0..<5).map { attempt in
            state.afterCall(name: "build", arguments: [:], result: failed("FAILED in \(attempt).2 s (attempt \(attempt + 1)): src/a.ts:3:1 error TS2304"))
        }
        #expect(sameError.map(\.stop) == [false, false, false, false, true])
        #expect(sameError[4].note?.contains("stops here as a loop") == true)
    }

    @Test func theSameFailureThreeTimesAsksForAReport() {
        var state = GuardrailState(settings: GuardrailSettings())
        var notes: [String?] = []
        for path in ["a", "b", "c"] {
            notes.append(state.afterCall(name: "git_push", arguments: ["branch": .string(path)], result: failed("no remote named origin")).note)
        }
        #expect(notes[0] == nil && notes[1] == nil)
        #expect(notes[2]?.contains("git_push has failed the same way 3 times") == true)
        #expect(notes[2]?.contains("Stop and report what blocks you") == true)
    }

    @Test func budgetNotesComeOncePerBudget() {
        var state = GuardrailState(settings: GuardrailSettings())
        let early = state.budgetNotes(used: [("token", 700, 1000)], offered: allTools)
        let at80 = state.budgetNotes(used: [("token", 800, 1000)], offered: allTools)
        let again = state.budgetNotes(used: [("token", 900, 1000)], offered: allTools)
        let unlimited = state.budgetNotes(used: [("turn", 5, nil)], offered: allTools)
        #expect(early.isEmpty && again.isEmpty && unlimited.isEmpty)
        #expect(at80 == ["80% of the token budget is spent (800 of 1000): commit and push what works, then continue."])
    }

    let allTools: Set<String> = Set((try? ToolRegistry())?.definitions.map(\.name) ?? [])

    /// A run offered write_file, read_file and git_commit hears of nothing else.
    @Test func notesNameOnlyTheToolsOffered() {
        var state = GuardrailState(settings: GuardrailSettings())
        let offered: Set<String> = ["write_file", "read_file", "git_commit"]
        let note = state.keepGoing(missing: [.commit, .push], offered: offered)
        #expect(note == "The task is not complete yet: nothing is committed (git_commit). Continue with that; if something blocks you, say what.")
        #expect(state.keepGoing(missing: [.push], offered: offered) == nil, "a push cannot be made without git_push")
        let prompt = SystemPrompt.text(workspace: "/w", branch: "b", requires: [.commit], offered: offered)
        for absent in ["execute", "grep", "git_push", "git_status", "build", "push it"] { #expect(!prompt.contains(absent), "\(absent) in \(prompt)") }
        #expect(prompt.contains("git_commit") && prompt.contains("read_file") && prompt.contains("commit there."))
        var fresh = GuardrailState(settings: GuardrailSettings())
        #expect(fresh.budgetNotes(used: [("turn", 8, 10)], offered: offered) == ["80% of the turn budget is spent (8 of 10): commit what works, then continue."])
        var bare = GuardrailState(settings: GuardrailSettings())
        #expect(bare.budgetNotes(used: [("turn", 8, 10)], offered: ["read_file"]) == ["80% of the turn budget is spent (8 of 10): finish what you are doing, then continue."])
    }

    /// The third identical item in a row of an argument array stops the stream; items inside a
    /// string (file contents) and items that differ do not.
    @Test func aThirdIdenticalArrayItemStopsTheStream() {
        let looping = #"{"name": "git_commit", "parameters": {"message": "Add", "paths": ["src/app/admin/tags/page.tsx", "#
        let lines = RepeatedLines(limit: 3)
        #expect(lines.feed(looping + #""src/app/admin/tags/page.tsx", "#))
        #expect(!lines.feed(#""src/app/admin/tags/page.tsx", "#))
        #expect(lines.found?.line == #""src/app/admin/tags/page.tsx""# && lines.foundItem)
        #expect(RepeatedLines.repeatedItem(in: #"{"paths": ["a", "b", "a", "b", "c"]"#) == nil)
        #expect(RepeatedLines.repeatedItem(in: #"{"content": "const x = {\"tags\": [\"a\", \"a\", \"a\"]}"#) == nil)
        #expect(RepeatedLines.repeatedItem(in: #"{"paths": ["x", "y", "y", "y""#) == #""y""#)
    }

    @Test func keepGoingSaysWhatIsMissingTwiceThenLetsTheRunEnd() {
        var state = GuardrailState(settings: GuardrailSettings())
        let none = state.keepGoing(missing: [], offered: allTools)
        let first = state.keepGoing(missing: [.commit, .push], offered: allTools)
        let second = state.keepGoing(missing: [.push], offered: allTools)
        let third = state.keepGoing(missing: [.push], offered: allTools)
        #expect(none == nil && second != nil && third == nil)
        #expect(first == "The task is not complete yet: nothing is committed (git_commit); the branch is not pushed (git_push). Continue with that; if something blocks you, say what.")
    }

    @Test func offMeansOff() {
        var state = GuardrailState(settings: .off)
        for _ in 0..<10 {
            let verdict = state.afterCall(name: "execute", arguments: ["command": "pwd"], result: failed("x"))
            #expect(verdict.note == nil && !verdict.loop && !verdict.stop)
        }
        let keepGoing = state.keepGoing(missing: [.build], offered: allTools)
        let budget = state.budgetNotes(used: [("token", 999, 1000)], offered: allTools)
        #expect(keepGoing == nil && budget.isEmpty)
        var settings = GuardrailSettings()
        let known = settings.disable("repeated-call")
        let unknown = settings.disable("everything")
        #expect(known && !unknown && settings.repeatedCall == nil && settings.loopStop == nil)
    }

    @Test func repeatedLinesStopAtTheThirdCopyAcrossChunks() {
        let lines = RepeatedLines(limit: 3)
        let text = String(repeating: "the same sentence again\n", count: 5)
        var stoppedAt: Int?
        for (index, character) in text.enumerated() where stoppedAt == nil {
            if !lines.feed(String(character)) { stoppedAt = index }
        }
        #expect(stoppedAt == "the same sentence again\n".count * 3 - 1)
        #expect(lines.found?.count == 3)
        // Markup and short code lines repeat legitimately.
        let code = RepeatedLines(limit: 3)
        #expect(code.feed("}\n}\n}\n}\n\n\n\n" + String(repeating: "<tool_call>\n{\"name\": \"x\"}\n</tool_call>\n", count: 5)))
    }
}
