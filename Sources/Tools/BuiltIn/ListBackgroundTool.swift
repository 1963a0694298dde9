import Foundation
import Sandbox

/// `list_background`: the session's background processes, each with its state and latest output.
struct ListBackgroundTool: Tool {
    let name = "list_background"

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        let jobs = await session.backgroundJobs.sorted { $0.value.started < $1.value.started }
        guard !jobs.isEmpty else {
            return .text("No background processes. Start one with execute {\"command\": \"...\", \"background\": true}.", structured: ["background": []])
        }
        var text = ""
        var entries: [JSONValue] = []
        for (id, job) in jobs {
            let running = job.process.isRunning
            let age = Int(Date().timeIntervalSince(job.started))
            text += "\(id) \(running ? "running" : "exited") (pid \(job.process.pid), started \(age) s ago): \(job.command)\n"
            let log = (try? String(contentsOfFile: job.process.logFile, encoding: .utf8)) ?? ""
            let lastLines = log.split(separator: "\n", omittingEmptySubsequences: false).suffix(11).joined(separator: "\n")
            text += "  log \(job.process.logFile), last lines:\n"
            text += lastLines.split(separator: "\n", omittingEmptySubsequences: false).map { "  | \($0)" }.joined(separator: "\n") + "\n"
            entries.append(["id": .string(id), "running": .bool(running), "command": .string(job.command), "log": .string(job.process.logFile)])
        }
        return .text(text, structured: ["background": .array(entries)])
    }
}
