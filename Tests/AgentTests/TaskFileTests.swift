import Agent
import Foundation
import Testing

@Suite struct TaskFileTests {
    private func load(_ text: String) throws -> AgentTask {
        let path = FileManager.default.temporaryDirectory.path + "/task-\(UUID().uuidString.prefix(8)).md"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try AgentTask.load(path: path)
    }

    @Test func frontMatterSetsBranchRequirementsAndBudgets() throws {
        let task = try load("""
            ---
            branch: feature/tags
            requires: [build, screenshot, commit, push]
            budgets: {tool_calls: 150, tokens: 2000000, minutes: 45.5, turns: 90}
            ---
            # Tag manager

            Add a tags page.
            """)
        #expect(task.branch == "feature/tags")
        #expect(task.requires == [.build, .screenshot, .commit, .push])
        #expect(task.budgets == Budgets(toolCalls: 150, tokens: 2_000_000, minutes: 45.5, turns: 90))
        #expect(task.prompt == "# Tag manager\n\nAdd a tags page.")
    }

    @Test func aFileWithoutFrontMatterIsAllPrompt() throws {
        let task = try load("Fix the build.\n")
        #expect(task.prompt == "Fix the build.")
        #expect(task.requires.isEmpty && task.branch == nil && !task.shipOnPass)
        #expect(try load("---\nship_on_pass: true\n---\nShip it.\n").shipOnPass)
        #expect(try load("---\ntools: [write_file, git_commit]\n---\nShip it.\n").tools == ["write_file", "git_commit"])
        #expect(task.tools == nil)
    }

    @Test(arguments: [
        ("---\nrequires: [deploy]\n---\nx", "'requires' takes build, screenshot, commit, push; got 'deploy'"),
        ("---\ntools: write_file\n---\nx", "'tools' must be a list of tool names"),
        ("---\nbudgets: {tool_call: 3}\n---\nx", "unknown key 'tool_call'"),
        ("---\nbudgets: {tokens: -1}\n---\nx", "budgets.tokens must be a positive number"),
        ("---\nbrnach: x\n---\nx", "unknown key 'brnach'"),
        ("---\nbranch: x\nno end", "never closes"),
        ("---\nbranch: [x\n---\nx", "not valid YAML"),
        ("---\nbranch: x\n---\n\n", "the task has no text"),
        ("---\nship_on_pass: sometimes\n---\nx", "'ship_on_pass' must be true or false"),
    ])
    func badTaskFilesNameTheProblem(text: String, message: String) {
        #expect {
            try load(text)
        } throws: { error in
            "\(error)".contains(message) && "\(error)".contains(".md")
        }
    }

    @Test func commandLineBudgetsWinOverTheTasksAndTheTasksOverTheDefaults() {
        let merged = Budgets(tokens: 10).over(Budgets(toolCalls: 5, tokens: 20)).over(.defaults)
        #expect(merged == Budgets(toolCalls: 5, tokens: 10, minutes: Budgets.defaults.minutes, turns: Budgets.defaults.turns))
    }

    @Test func outcomesFollowTheRules() {
        var summary = RunSummary(model: "m", endpoint: "e", api: "openai", task: "t", workspace: "w", requires: [.build, .push])
        summary.decideOutcome()
        #expect(summary.outcome == .failed && summary.missing == [.build, .push])
        summary.pushedBranch = "b"
        summary.decideOutcome()
        #expect(summary.outcome == .partial && summary.missing == [.build])
        summary.builds.passed = true
        summary.stopReason = .budgetTokens
        summary.decideOutcome()
        #expect(summary.outcome == .complete)
        var bare = RunSummary(model: "m", endpoint: "e", api: "openai", task: "t", workspace: "w", requires: [])
        bare.stopReason = .budgetTurns
        bare.decideOutcome()
        #expect(bare.outcome == .failed)
        bare.stopReason = .completed
        bare.decideOutcome()
        #expect(bare.outcome == .complete)
        // A model that answers with requirements unmet did not complete the task.
        var answered = RunSummary(model: "m", endpoint: "e", api: "openai", task: "t", workspace: "w", requires: [.commit])
        answered.decideOutcome()
        #expect(answered.stopReason == .answeredUnfinished && answered.outcome == .failed)
        answered.commits = 1
        answered.stopReason = .completed
        answered.decideOutcome()
        #expect(answered.stopReason == .completed && answered.outcome == .complete)
    }
}
