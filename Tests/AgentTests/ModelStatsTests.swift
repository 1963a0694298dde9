@testable import Agent
import Foundation
import Testing

@Suite struct ModelStatsTests {
    func run(_ outcome: RunSummary.Outcome, tokens: Int, calls: Int, formed: Int = 0, malformed: Int = 0, harness: Bool = false) -> RunSummary {
        var summary = RunSummary(model: "m.gguf", endpoint: "e", api: "openai", task: "t", workspace: "w", requires: [.commit])
        summary.outcome = outcome
        summary.totalTokens = tokens
        summary.toolCalls = calls
        summary.wellFormedCalls = formed
        summary.malformedCalls = malformed
        summary.harnessError = harness
        if harness { summary.error = "serve: the server exited" }
        return summary
    }

    @Test func harnessErrorsAreCountedApart() {
        let stats = ModelStats(label: "a", runs: [
            run(.complete, tokens: 100, calls: 3, formed: 3), run(.failed, tokens: 300, calls: 5, formed: 4, malformed: 2),
            run(.failed, tokens: 0, calls: 0, harness: true), run(.failed, tokens: 200, calls: 4, formed: 2, malformed: 1),
        ])
        #expect(stats.runs == 4 && stats.harnessErrors == 1 && stats.scored == 3 && stats.passed == 1)
        #expect(stats.passAt1 == 0.33 && stats.passAtK == 1 && stats.k == 3)
        #expect(stats.medianTokens == 200 && stats.medianToolCalls == 4)
        #expect(stats.wellFormedRate == 0.75)
        #expect(stats.harnessErrorMessages == ["serve: the server exited"])
        let json = String(decoding: try! ModelStats.encoder.encode(stats), as: UTF8.self)
        #expect(json.contains(#""pass_at_1" : 0.33"#) && json.contains(#""pass_at_k" : 1"#) && json.contains(#""median_tool_calls" : 4"#), "\(json)")
    }

    @Test func onlyHarnessErrorsScoreNothing() {
        let stats = ModelStats(label: "b", runs: [run(.failed, tokens: 0, calls: 0, harness: true), run(.failed, tokens: 0, calls: 0, harness: true)])
        #expect(stats.scored == 0 && stats.passAt1 == nil && stats.passAtK == nil && stats.medianTokens == nil)
        #expect(ModelStats.table([stats]).contains("| b | 2 | 0/0 | n/a | n/a |"))
    }

    @Test func cutRepliesAreTheShareOfTimeTheyTook() {
        var slow = run(.failed, tokens: 900, calls: 2)
        slow.durationSeconds = 100
        slow.cutReplies = 2
        slow.cutReplySeconds = 60
        var quick = run(.complete, tokens: 100, calls: 3)
        quick.durationSeconds = 20
        quick.cutReplies = 0
        quick.cutReplySeconds = 0
        // A summary written before cut replies were counted does not dilute the share.
        var old = run(.failed, tokens: 100, calls: 1)
        old.durationSeconds = 1000
        let stats = ModelStats(label: "c", runs: [slow, quick, old])
        #expect(stats.cutReplies == 2 && stats.cutReplyTimeShare == 0.5)
        #expect(ModelStats.table([stats]).contains("| 2 (50%) |"), "\(ModelStats.table([stats]))")
        #expect(ModelStats(label: "d", runs: [old]).cutReplyTimeShare == nil)
    }

    @Test func anEvenCountTakesTheMiddleTwo() {
        #expect(ModelStats.median([4, 1, 3, 2]) == 2.5)
        #expect(ModelStats.median([]) == nil)
    }
}
