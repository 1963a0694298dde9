import Agent
import ArgumentParser
import Foundation
import ModelEndpoints
import Tools

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

            On OpenAI-compatible servers the checks run a second time constrained: the tools go in \
            the prompt and the server's grammar (response_format json_schema, which llama-server \
            turns into GBNF) lets each reply be only one call of an offered tool with valid \
            arguments, or a final answer. The report gives the well-formed-call rate of both passes: \
            replies that should hold a call and held only calls something can run.

            Verdict: "native tool calls", "text dialect X: toolhost parses it", "… well-formed ones \
            under the server's grammar" (the model can work constrained: `toolhost run` then \
            constrains by itself), or "cannot call tools: do not use for agents" (exit status 1). \
            The report is saved under the state dir's probes/ for `run` to read.

            --json prints the report in the documented, stable form of docs/probe-json.md.

            Example: toolhost probe --endpoint localhost:8080
            """)

    @OptionGroup var endpointOptions: EndpointOptions

    @Flag(help: "Print the report as JSON (docs/probe-json.md).")
    var json = false

    @Flag(help: "Skip the constrained pass (half the requests).")
    var skipConstrained = false

    @Option(help: "max_tokens of each probe reply.")
    var maxReplyTokens = 400

    @Option(help: "Where the report is kept for `run` (default: the state dir of run).")
    var stateDir: String?

    func validate() throws {
        guard maxReplyTokens > 0 else { throw ValidationError("--max-reply-tokens must be positive") }
    }

    func run() async throws {
        let (client, model) = try await endpointOptions.connect(policy: TransportPolicy(readTimeout: 120, attempts: 2))
        let report: Probe.Report
        do {
            report = try await Probe(client: client, model: model, maxTokens: maxReplyTokens, constrainedPass: !skipConstrained).run()
        } catch {
            await client.close()
            warn("\(error)")
            throw ExitCode(1)
        }
        await client.close()
        let state = stateDir.map(absolutePath) ?? StateDirectory.defaultPath()
        do {
            try report.save(stateDirectory: state)
        } catch {
            warn("the report was not saved under \(state)/probes: \(error.localizedDescription)")
        }
        if json {
            print(String(decoding: try Probe.Report.encoder.encode(report), as: UTF8.self))
        } else {
            print(Probe.table(report), terminator: "")
        }
        if report.kind == "unusable" { throw ExitCode(1) }
    }
}
