import Agent
import ArgumentParser
import Foundation
import ModelEndpoints

struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Check whether an endpoint's model can call tools, before you spend hours on a run.",
        discussion: """
            Short, independent conversations (max_tokens 400 each): a bare call, text then a call, \
            parallel calls, a full round trip with a result, streamed deltas, irrelevance (no call \
            when none is needed), tool_choice required / named / none, argument types, required \
            parameters, and usage numbers. Each check passes, fails, or passes only through a text \
            dialect that toolhost parses (Hermes, Qwen3-Coder XML, Mistral, Llama 3 JSON, pythonic, \
            fences, …).

            Verdict: "native tool calls", "text dialect X: toolhost parses it", or "cannot call \
            tools: do not use for agents" (exit status 1).

            Example: toolhost probe --endpoint localhost:8080
            """)

    @OptionGroup var endpointOptions: EndpointOptions

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() async throws {
        let (client, model) = try await endpointOptions.connect(policy: TransportPolicy(readTimeout: 120, attempts: 2))
        let report: Probe.Report
        do {
            report = try await Probe(client: client, model: model).run()
        } catch {
            await client.close()
            warn("\(error)")
            throw ExitCode(1)
        }
        await client.close()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(Probe.table(report), terminator: "")
        }
        if report.kind == "unusable" { throw ExitCode(1) }
    }
}
