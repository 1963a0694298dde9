import Foundation
public import ModelEndpoints
public import Tools

/// What every agent run does around its loop, `toolhost run`'s and each showdown run's alike:
/// a transcript in the run folder with the host's secrets redacted, and at the end the session
/// and the client closed and summary.json and trajectory.json written beside it.
public enum AgentRun {
    /// The run's `transcript.jsonl` in `folder`: the values of `environment`'s secrets, and of
    /// the endpoint's key variable, are redacted from every line.
    public static func transcript(in folder: String, environment: [String: String], keyVariable: String?) throws -> Transcript {
        try Transcript(path: folder + "/transcript.jsonl", redactor: Redactor(environment: environment, named: [keyVariable].compactMap { $0 }))
    }

    /// Closes the session and the client, then writes the summary and, when the run got as far
    /// as a transcript, its ATIF trajectory.
    public static func finish(
        _ summary: RunSummary, in folder: String, session: Session, client: any ModelClient, version: String
    ) async throws {
        await session.close()
        await client.close()
        try summary.write(to: folder)
        if FileManager.default.fileExists(atPath: folder + "/transcript.jsonl") {
            try Trajectory.write(runFolder: folder, summary: summary, version: version)
        }
    }
}
