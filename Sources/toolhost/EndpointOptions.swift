public import ArgumentParser
import Foundation
import ModelEndpoints

/// Where the model is and how to reach it: the options `run` and `probe` share.
struct EndpointOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "The model server: host:port, http://host:port/v1, a full URL, or unix:/path/to.sock.",
        discussion: """
            A server on a unix socket with a path prefix: http+unix://%2Fpath%2Fto.sock/v1. Requests go through \
            libcurl, which honours http_proxy, HTTPS_PROXY, ALL_PROXY and NO_PROXY as curl does, and trusts \
            CURL_CA_BUNDLE or SSL_CERT_FILE when set.
            """))
    var endpoint: String

    @Option(help: "The wire format: openai or anthropic (default: detected from the URL).")
    var api: API?

    @Option(help: "The model name (default: the server's only model).")
    var model: String?

    @Option(help: ArgumentHelp("The environment variable holding the API key.", discussion: "Default: OPENAI_API_KEY or ANTHROPIC_API_KEY, as the API says."))
    var apiKeyEnv: String?

    @Option(help: ArgumentHelp("A CA bundle (PEM) to trust for an https endpoint instead of the system's.", valueName: "file"))
    var cacert: String?

    @Flag(help: "Do not check the https endpoint's certificate. Anyone on the way can then read the key and the conversation.")
    var insecure = false

    /// The --cacert and --insecure choices; --insecure is said on stderr every time.
    var connection: ConnectionOptions {
        get throws {
            if let cacert, !FileManager.default.isReadableFile(atPath: cacert) {
                throw ValidationError("--cacert \(cacert): no readable file there; give a PEM bundle, e.g. /etc/ssl/certs/ca-certificates.crt")
            }
            if insecure {
                warn("WARNING: --insecure: the endpoint's TLS certificate is not checked; anyone on the way can read the API key and the conversation.")
            }
            return ConnectionOptions(caBundle: cacert, insecure: insecure)
        }
    }

    /// A client for the endpoint and the model to ask for; a bad endpoint is a usage error, an
    /// unreachable one is said on stderr and ends the command with status 1.
    func connect(policy: TransportPolicy) async throws -> (client: any ModelClient, model: String) {
        let parsed: Endpoint
        do {
            parsed = try Endpoint(endpoint, api: api)
        } catch {
            throw ValidationError("\(error)")
        }
        let client = makeClient(
            endpoint: parsed, environment: ProcessInfo.processInfo.environment, keyVariable: apiKeyEnv, policy: policy, connection: try connection)
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
