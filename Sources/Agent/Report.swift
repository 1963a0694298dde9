import Foundation

/// `toolhost report`: runs side by side, in the public showdown's columns.
public enum Report {
    /// A Markdown table, one row per run.
    public static func table(_ runs: [(directory: String, summary: RunSummary)]) -> String {
        let header = ["run", "model", "tool calls", "ATIF steps", "total tokens", "prompt sent / processed", "commits", "build", "screenshot", "outcome", "stop"]
        let rows = runs.map { run -> [String] in
            let s = run.summary
            return [
                s.label ?? URL(fileURLWithPath: run.directory).lastPathComponent, s.model, String(s.toolCalls),
                Trajectory.stepCount(runFolder: run.directory).map(String.init) ?? "-",
                (s.tokensEstimated ? "~" : "") + grouped(s.totalTokens),
                grouped(s.promptTokensSent ?? s.promptTokens) + " / " + (s.promptTokensProcessed.map(grouped) ?? "?"), String(s.commits), build(s.builds),
                s.screenshot == nil ? "no" : "yes", s.outcome.shown + (s.missing.isEmpty ? "" : " (missing: \(s.missing.map(\.rawValue).joined(separator: ", ")))"),
                s.stopReason.rawValue,
            ]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! }
        func line(_ cells: [String]) -> String {
            "| " + cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: " | ") + " |"
        }
        let rule = "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|"
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n") + "\n"
    }

    static func build(_ builds: RunSummary.Builds) -> String {
        guard builds.attempts > 0 else { return "not run" }
        let attempts = "\(builds.attempts) attempt\(builds.attempts == 1 ? "" : "s")"
        if builds.passed { return "passes (first at \(builds.firstPassAttempt ?? builds.attempts) of \(attempts))" }
        return builds.firstPassAttempt == nil ? "fails (\(attempts))" : "fails now (passed at \(builds.firstPassAttempt!) of \(attempts))"
    }

    static func grouped(_ number: Int) -> String {
        let digits = Array(String(number))
        return String(digits.enumerated().flatMap { index, digit in
            (index > 0 && (digits.count - index) % 3 == 0) ? [",", digit] : [digit]
        })
    }
}
