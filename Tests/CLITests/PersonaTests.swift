import Foundation
import TestSupport
import Testing

/// The personas in fixtures/endpoints/personas answer as each model family does: `toolhost probe`
/// must give each its verdict, and `toolhost run` must finish a two-call task with every one
/// that can call tools at all.
@Suite struct PersonaTests {
    static let verdicts: [(persona: String, verdict: String)] = [
        ("native-openai", "native tool calls"),
        ("native-anthropic", "native tool calls"),
        ("hermes", "text dialect hermes: toolhost parses it"),
        ("qwen3-coder-xml", "text dialect qwen3-coder-xml: toolhost parses it"),
        ("mistral", "text dialect mistral: toolhost parses it"),
        ("llama3-json", "text dialect llama3-json: toolhost parses it"),
        ("devstral", "cannot call tools: do not use for agents"),
        ("broken-json", "text dialect hermes: toolhost parses it"),
        ("harmony", "text dialect harmony: toolhost parses it"),
        ("glm", "text dialect glm: toolhost parses it"),
        ("deepseek", "text dialect deepseek: toolhost parses it"),
        ("deepseek-dsml", "text dialect deepseek-dsml: toolhost parses it"),
        ("kimi-k2", "text dialect kimi-k2: toolhost parses it"),
        ("gemma-4", "text dialect gemma-4: toolhost parses it"),
        ("minimax-m2", "text dialect minimax-m2: toolhost parses it"),
        ("seed-oss", "text dialect seed-oss: toolhost parses it"),
        ("lfm2", "text dialect lfm2: toolhost parses it"),
        ("qwen3-coder-ollama", "text dialect qwen3-coder-xml: toolhost parses it"),
        ("hermes-in-reasoning", "text dialect hermes (inside the reasoning): toolhost parses it"),
    ]

    /// The dialect a run records for a persona whose name is not its dialect's.
    static let dialects = ["broken-json": "hermes", "qwen3-coder-ollama": "qwen3-coder-xml", "hermes-in-reasoning": "hermes"]

    static func endpoint(_ mock: MockEndpointProcess, _ persona: String) -> String {
        persona == "native-anthropic" ? mock.url + "/v1/messages" : mock.url
    }

    @Test(arguments: verdicts)
    func probeGivesEachPersonaItsVerdict(persona: String, verdict: String) async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, fixture: "personas/\(persona).yaml")
        let probe = try await scratch.toolhost(["probe", "--endpoint", Self.endpoint(mock, persona)])
        #expect(probe.stdout.contains("verdict: \(verdict)"), "\(probe.stdout)\n\(probe.stderr)")
        #expect(probe.status == (persona == "devstral" ? 1 : 0))
        let json = try await scratch.toolhost(["probe", "--endpoint", Self.endpoint(mock, persona), "--json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(report["verdict"] as? String == verdict)
        let checks = try #require(report["checks"] as? [[String: Any]])
        #expect(checks.map { $0["name"] as? String } == [
            "bare_call", "text_then_call", "parallel_calls", "round_trip", "streamed_deltas", "irrelevance", "tool_choice_required",
            "tool_choice_named", "tool_choice_none", "argument_types", "required_parameters", "usage",
        ])
        if persona == "broken-json" {
            let types = checks.first { $0["name"] as? String == "argument_types" }
            #expect((types?["detail"] as? String)?.contains("coerced 'hour' from \"7\" to integer") == true)
        }
    }

    @Test(arguments: verdicts.map(\.persona))
    func runCompletesATwoCallTaskWithEachPersonaThatCanCallTools(persona: String) async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, fixture: "personas/\(persona).yaml")
        let run = try await scratch.agent(Self.endpoint(mock, persona), prompt: "Create notes/a.txt containing alpha, then read it back with read_file.")
        let summary = try run.summary
        if persona == "devstral" {
            // Nothing parses: told twice how to call, then stopped honestly; nothing was written.
            #expect(run.ran.status == 1)
            #expect(summary["stop_reason"] as? String == "unparsed_tool_calls")
            #expect(summary["notes"] as? Int == 2)
            #expect(!FileManager.default.fileExists(atPath: scratch.workspace + "/notes/a.txt"))
            return
        }
        #expect(run.ran.status == 0, "\(run.ran.stderr)")
        #expect(try scratch.read("notes/a.txt").hasPrefix("alpha"))
        #expect(summary["tool_calls"] as? Int == 2)
        let dialect = persona.hasPrefix("native") ? "native" : Self.dialects[persona] ?? persona
        #expect(summary["dialect"] as? String == dialect)
        if persona == "broken-json" { #expect(summary["repairs"] as? Int == 3) }
        // Text calls were rewritten as structured calls in the history, with ids that pair with the results.
        if !persona.hasPrefix("native") {
            let parsed = try run.events.filter { $0["event"] as? String == "text_tool_calls" }
            #expect(parsed.count == 2)
            #expect(parsed.allSatisfy { $0["dialect"] as? String == dialect })
            #expect(parsed.allSatisfy { $0["in_reasoning"] as? Bool == (persona == "hermes-in-reasoning") })
            let ids = parsed.flatMap { ($0["tool_calls"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String } }
            #expect(ids.allSatisfy { $0.count == 9 && $0.allSatisfy { $0.isLetter || $0.isNumber } })
            let results = try run.events.filter { $0["event"] as? String == "tool_result" }.compactMap { $0["id"] as? String }
            #expect(results == ids)
        }
    }

    @Test func unrepairableArgumentsReachTheModelAsAnErrorItCanActOn() async throws {
        let scratch = try Scratch()
        let mock = try await MockEndpointProcess(scratch, fixture: "unrepairable-arguments.yaml")
        let run = try await scratch.agent(mock.url)
        #expect(run.ran.status == 0, "\(run.ran.stderr)")
        #expect(try scratch.read("notes/b.txt") == "beta")
        let summary = try run.summary
        #expect(summary["tool_errors"] as? Int == 1)
        #expect(summary["repairs"] as? Int == 2)
    }
}
