import ArgumentParser
import Foundation
import ModelEndpoints

/// Where the model is and how to reach it: the options `run` and `probe` share.
struct EndpointOptions: ParsableArguments {
    @Option(help: "The model server: host:port, http://host:port/v1 or a full URL.")
    var endpoint: String

    @Option(help: "The wire format: openai or anthropic (default: detected from the URL).")
    var api: API?

    @Option(help: "The model name (default: the server's only model).")
    var model: String?

    @Option(help: ArgumentHelp("The environment variable holding the API key.", discussion: "Default: OPENAI_API_KEY or ANTHROPIC_API_KEY, as the API says."))
    var apiKeyEnv: String?

    /// A client for the endpoint and the model to ask for; a bad endpoint is a usage error, an
    /// unreachable one is said on stderr and ends the command with status 1.
    func connect(policy: TransportPolicy) async throws -> (client: any ModelClient, model: String) {
        let parsed: Endpoint
        do {
            parsed = try Endpoint(endpoint, api: api)
        } catch {
            throw ValidationError("\(error)")
        }
        let client = makeClient(endpoint: parsed, environment: ProcessInfo.processInfo.environment, keyVariable: apiKeyEnv, policy: policy)
        do {
            return (client, try await chooseModel(model, client: client))
        } catch {
            await client.close()
            warn("\(error)")
            throw ExitCode(1)
        }
    }
}

extension API: ExpressibleByArgument {}
