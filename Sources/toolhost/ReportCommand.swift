import Agent
import ArgumentParser
import Foundation

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Compare runs: a Markdown table of their summaries.",
        discussion: """
            Columns: tool calls, total tokens (~ when estimated), prompt tokens sent and processed (a server's prompt cache skips the difference), commits, build (attempts and the \
            first that passed), screenshot, outcome (with what is missing) and stop reason.

            Example: toolhost report runs/qwen runs/devstral
            """)

    @Argument(help: "Run folders (each with a summary.json).")
    var runs: [String]

    @Flag(help: "Print the summaries as one JSON array instead.")
    var json = false

    func validate() throws {
        if runs.isEmpty { throw ValidationError("name at least one run folder") }
    }

    func run() async throws {
        let loaded: [(directory: String, summary: RunSummary)]
        do {
            loaded = try runs.map { ($0, try RunSummary.load(runDirectory: $0)) }
        } catch {
            throw ValidationError("\(error)")
        }
        if json {
            let data = try RunSummary.encoder.encode(loaded.map(\.summary))
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(Report.table(loaded), terminator: "")
        }
    }
}
