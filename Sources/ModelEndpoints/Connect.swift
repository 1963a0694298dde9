import Foundation
public import JSONCore

/// A client for the endpoint's API. The key is read from `keyVariable` in `environment` and
/// goes only into the request headers.
public func makeClient(
    endpoint: Endpoint, environment: [String: String], keyVariable: String? = nil, policy: TransportPolicy = TransportPolicy(),
    connection: ConnectionOptions = ConnectionOptions()
) -> any ModelClient {
    let key = environment[endpoint.keyVariable(override: keyVariable)].flatMap { $0.isEmpty ? nil : $0 }
    var connection = connection
    connection.unixSocket = endpoint.unixSocket ?? connection.unixSocket
    switch endpoint.api {
    case .openai: return OpenAIClient(endpoint: endpoint, key: key, policy: policy, connection: connection)
    case .anthropic: return AnthropicClient(endpoint: endpoint, key: key, policy: policy, connection: connection)
    }
}

/// `--model` when given; otherwise the server's only model. Several or none is an error that lists them.
public func chooseModel(_ requested: String?, client: any ModelClient) async throws -> String {
    if let requested, !requested.isEmpty { return requested }
    let models: [String]
    do {
        models = try await client.listModels()
    } catch let error as EndpointError {
        if case .notListening = error { throw error }
        throw EndpointError.noModel("the server did not list its models (\(error)); pass --model NAME")
    }
    switch models.count {
    case 1: return models[0]
    case 0: throw EndpointError.noModel("the server lists no models; pass --model NAME")
    default:
        let shown = models.prefix(10).joined(separator: ", ") + (models.count > 10 ? ", …" : "")
        throw EndpointError.noModel("the server lists \(models.count) models (\(shown)); pass --model NAME")
    }
}

/// Whether the server at `endpoint` says it is ready: llama-server's `/health` (beside /v1, on the
/// same host and port) answers 200 once the model is loaded and 503 while it loads.
public func serverIsHealthy(_ endpoint: Endpoint) async -> Bool {
    await fetchBeside(endpoint, path: "/health") != nil
}

/// llama-server's `/props` (the model, its chat template and what the template can render, in
/// `chat_template_caps`), or nil when the server has none.
public func serverProperties(_ endpoint: Endpoint) async -> JSONValue? {
    await fetchBeside(endpoint, path: "/props").flatMap { try? JSONValue.parse(Data($0)) }
}

/// A GET of `path` on the endpoint's host and port (beside /v1), quickly: the body, or nil.
private func fetchBeside(_ endpoint: Endpoint, path: String) async -> [UInt8]? {
    var parts = URLComponents(url: endpoint.base, resolvingAgainstBaseURL: false)
    parts?.path = path
    guard let url = parts?.url else { return nil }
    let transport = HTTPTransport(
        display: endpoint.display, headers: [], policy: TransportPolicy(connectTimeout: 2, readTimeout: 5, attempts: 1),
        options: ConnectionOptions(unixSocket: endpoint.unixSocket))
    return try? await transport.send(url, body: nil, onEvent: { _ in .proceed }) { try await $0.collect(upTo: 4 << 20) }
}
