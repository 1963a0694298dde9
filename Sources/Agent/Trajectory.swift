import Foundation
public import JSONCore

/// trajectory.json: a run in ATIF v1.4 (the Agent Trajectory Interchange Format that Harbor reads
/// and `harbor view` opens), made from transcript.jsonl, so the two never disagree. The system
/// prompt and the task are the first steps; each model turn is an agent step with its tool calls,
/// their results as the observation and the turn's tokens as metrics; toolhost's notes to the
/// model (guardrails, the safety net) are system steps.
public enum Trajectory {
    public static let schemaVersion = "ATIF-v1.4"
    public static let fileName = "trajectory.json"

    /// The trajectory of the run whose transcript is `transcript` (its lines, in order).
    public static func make(transcript lines: [JSONValue], summary: RunSummary, sessionID: String, version: String) -> JSONValue {
        let started = lines.first { $0["event"] == "start" }?["started_at"]?.stringValue.flatMap { ISO8601DateFormatter().date(from: $0) }
        let stamp = ISO8601DateFormatter()
        stamp.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var steps: [[String: JSONValue]] = []
        /// The agent step of the turn being read, until its results are in.
        var open: [String: JSONValue]?
        var results: [JSONValue] = []
        func close() {
            guard var step = open else { return }
            if !results.isEmpty { step["observation"] = ["results": .array(results)] }
            steps.append(step)
            open = nil
            results = []
        }
        func base(_ line: JSONValue, source: String, message: String) -> [String: JSONValue] {
            var step: [String: JSONValue] = ["source": .string(source), "message": .string(message)]
            if let started, let t = line["t"]?.doubleValue { step["timestamp"] = .string(stamp.string(from: started.addingTimeInterval(t))) }
            return step
        }
        for line in lines {
            switch line["event"]?.stringValue {
            case "message":
                close()
                let role = line["role"]?.stringValue == "system" ? "system" : "user"
                steps.append(base(line, source: role, message: line["content"]?.stringValue ?? ""))
            case "assistant":
                close()
                var step = base(line, source: "agent", message: line["text"]?.stringValue ?? "")
                step["model_name"] = .string(summary.model)
                let calls = line["tool_calls"]?.arrayValue ?? []
                if !calls.isEmpty { step["tool_calls"] = .array(calls.map(toolCall)) }
                if let reason = line["finish_reason"]?.stringValue { step["extra"] = ["finish_reason": .string(reason)] }
                open = step
            case "text_tool_calls":
                // Calls the model wrote as text: the step's calls are the ones parsed and run.
                guard open != nil else { continue }
                open?["message"] = line["prose"] ?? ""
                open?["tool_calls"] = .array((line["tool_calls"]?.arrayValue ?? []).map(toolCall))
                var extra = open?["extra"]?.objectValue ?? [:]
                extra["dialect"] = line["dialect"] ?? .null
                open?["extra"] = .object(extra)
            case "usage":
                guard open != nil else { continue }
                let prompt = line["prompt_tokens"]?.intValue ?? 0
                var metrics: [String: JSONValue] = ["prompt_tokens": .int(prompt), "completion_tokens": line["completion_tokens"] ?? 0]
                if let processed = line["prompt_tokens_processed"]?.intValue { metrics["cached_tokens"] = .int(max(0, prompt - processed)) }
                open?["metrics"] = .object(metrics)
            case "tool_result":
                let known = open?["tool_calls"]?.arrayValue?.contains { $0["tool_call_id"] == line["id"] } ?? false
                results.append(known
                    ? ["source_call_id": line["id"] ?? .null, "content": line["content"] ?? ""]
                    : ["content": line["content"] ?? ""])
            case "note", "ship", "error":
                close()
                let text = line["text"]?.stringValue ?? line["message"]?.stringValue ?? ""
                var step = base(line, source: "system", message: text)
                step["extra"] = ["toolhost_event": line["event"] ?? .null]
                steps.append(step)
            default:
                continue
            }
        }
        close()
        let numbered: [JSONValue] = steps.enumerated().map { index, step in
            var step = step
            step["step_id"] = .int(index + 1)
            return .object(step)
        }
        let cached = summary.promptTokensProcessed.map { max(0, summary.promptTokens - $0) }
        var final: [String: JSONValue] = [
            "total_prompt_tokens": .int(summary.promptTokens), "total_completion_tokens": .int(summary.completionTokens),
            "total_steps": .int(numbered.count),
            "extra": [
                "outcome": .string(summary.outcome.rawValue), "stop_reason": .string(summary.stopReason.rawValue),
                "tool_calls": .int(summary.toolCalls), "missing": .array(summary.missing.map { .string($0.rawValue) }),
            ],
        ]
        if let cached { final["total_cached_tokens"] = .int(cached) }
        return [
            "schema_version": .string(schemaVersion), "session_id": .string(sessionID),
            "agent": ["name": "toolhost", "version": .string(version), "model_name": .string(summary.model)],
            "steps": .array(numbered), "final_metrics": .object(final),
        ]
    }

    /// An ATIF tool call from a transcript call: arguments as the object the model sent (text
    /// that is no JSON object is kept under `raw`, as ATIF wants an object).
    private static func toolCall(_ call: JSONValue) -> JSONValue {
        let text = call["arguments"]?.stringValue ?? "{}"
        let arguments = (try? JSONValue.parse(text)).flatMap { $0.objectValue.map(JSONValue.object) } ?? ["raw": .string(text)]
        return ["tool_call_id": call["id"] ?? "", "function_name": call["name"] ?? "", "arguments": arguments]
    }

    /// The number of steps of a run folder's trajectory (nil when it has none, as runs before
    /// trajectories did not).
    public static func stepCount(runFolder folder: String) -> Int? {
        guard let data = FileManager.default.contents(atPath: folder + "/" + fileName), let json = try? JSONValue.parse(data) else { return nil }
        return json["steps"]?.arrayValue?.count
    }

    /// Writes `folder`/trajectory.json from `folder`/transcript.jsonl.
    public static func write(runFolder folder: String, summary: RunSummary, version: String) throws {
        let text = try String(contentsOfFile: folder + "/transcript.jsonl", encoding: .utf8)
        let lines = text.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
        let trajectory = make(transcript: lines, summary: summary, sessionID: (folder as NSString).lastPathComponent, version: version)
        try trajectory.jsonData.write(to: URL(fileURLWithPath: folder + "/" + fileName), options: .atomic)
    }
}
