import Foundation
import JSONCore
import Yams

/// What a run must achieve to be complete.
public enum Requirement: String, Sendable, CaseIterable, Codable {
    case build, screenshot, commit, push
}

/// Limits on one run; nil means no limit.
public struct Budgets: Sendable, Equatable, Codable {
    public var toolCalls: Int?
    public var tokens: Int?
    public var minutes: Double?
    public var turns: Int?

    public init(toolCalls: Int? = nil, tokens: Int? = nil, minutes: Double? = nil, turns: Int? = nil) {
        self.toolCalls = toolCalls
        self.tokens = tokens
        self.minutes = minutes
        self.turns = turns
    }

    /// Budgets from a YAML mapping (`tool_calls`, `tokens`, `minutes`, `turns`), as a task's front
    /// matter and a showdown contestant give them; errors name `field`.
    init(yaml: Any, field: String) throws {
        guard let values = yaml as? [String: Any] else { throw TaskError("'\(field)' must be a mapping, e.g. \(field): {tool_calls: 100}") }
        let names = ["tool_calls", "tokens", "minutes", "turns"]
        for (key, value) in values {
            guard names.contains(key) else {
                throw TaskError("'\(field)' has an unknown key '\(key)'; the keys are: \(names.joined(separator: ", "))")
            }
            guard let number = (value as? Int).map(Double.init) ?? (value as? Double), number > 0 else {
                throw TaskError("\(field).\(key) must be a positive number, got '\(value)'")
            }
            switch key {
            case "tool_calls": toolCalls = Int(number)
            case "tokens": tokens = Int(number)
            case "minutes": minutes = number
            default: turns = Int(number)
            }
        }
    }

    /// What a run gets when neither the task nor the command line says otherwise: enough for
    /// the showdown's task several times over, and far below the millions of tokens of a loop.
    public static let defaults = Budgets(toolCalls: 250, tokens: 3_000_000, minutes: 90, turns: 250)

    /// Each limit from `self` when set, else from `other`.
    public func over(_ other: Budgets) -> Budgets {
        Budgets(toolCalls: toolCalls ?? other.toolCalls, tokens: tokens ?? other.tokens, minutes: minutes ?? other.minutes, turns: turns ?? other.turns)
    }
}

/// A task: the prompt, the branch to work on, what must be done, and its budgets.
public struct AgentTask: Sendable {
    public var prompt: String
    /// The task file, or "prompt" for --prompt.
    public var source: String
    public var branch: String?
    public var requires: [Requirement]
    public var budgets: Budgets
    /// The safety net: toolhost itself commits (and, when the task requires it, pushes) a passing
    /// build the model has not shipped within `AgentLoop.shipAfterCalls` calls or by the end.
    public var shipOnPass: Bool
    /// The tools this task offers (nil: all): `run --tools` and a showdown contestant's `tools` override it.
    public var tools: [String]?

    public init(
        prompt: String, source: String = "prompt", branch: String? = nil, requires: [Requirement] = [], budgets: Budgets = Budgets(),
        shipOnPass: Bool = false
    ) {
        self.prompt = prompt
        self.source = source
        self.branch = branch
        self.requires = requires
        self.budgets = budgets
        self.shipOnPass = shipOnPass
    }

    /// A Markdown file with an optional YAML front matter between `---` lines:
    /// `branch`, `requires` (build, screenshot, commit, push), `budgets` (`tool_calls`, `tokens`,
    /// `minutes`, `turns`) and `ship_on_pass`. The body is the prompt.
    public static func load(path: String) throws -> AgentTask {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw TaskError("cannot read the task file \(path): \(error.localizedDescription)")
        }
        do {
            return try parse(text, source: path)
        } catch let error as TaskError {
            throw TaskError("\(path): \(error.message)")
        }
    }

    static func parse(_ text: String, source: String) throws -> AgentTask {
        var lines = text.components(separatedBy: "\n")
        guard lines.first?.trimmingCharacters(in: .whitespaces) == "---" else {
            return try nonEmpty(AgentTask(prompt: text.trimmingCharacters(in: .whitespacesAndNewlines), source: source))
        }
        guard let end = lines.dropFirst().firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "---" }) else {
            throw TaskError("the front matter opened with '---' on line 1 never closes: end it with a line '---'")
        }
        let yaml = lines[1..<end].joined(separator: "\n")
        lines.removeSubrange(0...end)
        let front: Any?
        do {
            front = try Yams.load(yaml: yaml)
        } catch {
            throw TaskError("the front matter is not valid YAML: \(error)")
        }
        var task = AgentTask(prompt: lines.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines), source: source)
        guard let front else { return try nonEmpty(task) }
        guard let fields = front as? [String: Any] else { throw TaskError("the front matter must be a mapping (key: value lines)") }
        let known = ["branch", "requires", "budgets", "ship_on_pass", "title", "tools"]
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw TaskError("the front matter has an unknown key '\(unknown)'; the keys are: \(known.joined(separator: ", "))")
        }
        if let branch = fields["branch"] {
            guard let name = branch as? String, !name.isEmpty else { throw TaskError("'branch' must be a branch name") }
            task.branch = name
        }
        if let ship = fields["ship_on_pass"] {
            guard let flag = ship as? Bool else { throw TaskError("'ship_on_pass' must be true or false, got '\(ship)'") }
            task.shipOnPass = flag
        }
        if let requires = fields["requires"] {
            let items = (requires as? [Any]) ?? [requires]
            task.requires = try items.map { item in
                guard let name = item as? String, let requirement = Requirement(rawValue: name) else {
                    throw TaskError("'requires' takes \(Requirement.allCases.map(\.rawValue).joined(separator: ", ")); got '\(item)'")
                }
                return requirement
            }
        }
        if let budgets = fields["budgets"] { task.budgets = try Budgets(yaml: budgets, field: "budgets") }
        if let tools = fields["tools"] {
            guard let names = tools as? [String], !names.isEmpty else { throw TaskError("'tools' must be a list of tool names, e.g. [write_file, read_file, git_commit]") }
            task.tools = names
        }
        return try nonEmpty(task)
    }

    private static func nonEmpty(_ task: AgentTask) throws -> AgentTask {
        guard !task.prompt.isEmpty else { throw TaskError("the task has no text: write what the agent should do below the front matter") }
        return task
    }
}

/// A task file that cannot be used.
public struct TaskError: Error, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}
