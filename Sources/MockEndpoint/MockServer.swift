import Foundation
import HTTPTypes
import Hummingbird
import JSONCore
import Logging
import NIOCore
import UnixSignals

/// `toolhost mock-endpoint`: serves a script over both wire formats, streaming or not as each
/// request asks. Every request takes the next turn; a request that misses the turn's
/// expectations, or comes after the last turn, gets HTTP 400 with an error naming what differed.
public struct MockServer: Sendable {
    /// Where the server listens.
    public enum Address: Sendable {
        case tcp(host: String, port: Int)
        /// A unix socket at this absolute path (created; an old socket file there is replaced).
        case unixSocket(String)
    }

    let script: MockScript
    let address: Address
    /// A folder that gets each chat request's body as it came, `request-001.json` on.
    let record: String?
    let state = TurnCounter()
    let recorded = TurnCounter()
    let started = ContinuousClock.now

    public init(script: MockScript, address: Address, record: String? = nil) {
        self.script = script
        self.address = address
        self.record = record
    }

    /// Serves until SIGINT or SIGTERM; `onListening` gets the endpoint as toolhost spells it
    /// (`http://host:port` with the bound port, or `unix:/path`).
    public func run(onListening: @escaping @Sendable (String) async -> Void) async throws {
        let router = Router()
        for path in ["/v1/chat/completions", "/chat/completions"] {
            router.post(RouterPath(path)) { request, _ in await self.chat(request, wire: .openai) }
        }
        for path in ["/v1/messages", "/messages"] {
            router.post(RouterPath(path)) { request, _ in await self.chat(request, wire: .anthropic) }
        }
        router.get("/health") { _, _ in self.loadingRefusal() ?? Self.json(200, ["status": "ok"]) }
        if let context = script.contextSize {
            router.get("/props") { _, _ in Self.json(200, ["default_generation_settings": ["n_ctx": .int(context)], "model_path": .string(script.model)]) }
        }
        for path in ["/v1/models", "/models"] {
            router.get(RouterPath(path)) { request, _ in
                if let refusal = self.refuseKey(request) ?? self.loadingRefusal() { return refusal }
                let owner: JSONValue = script.server == nil ? "toolhost" : "llamacpp"
                let entry: JSONValue = ["id": .string(script.model), "object": "model", "type": "model", "display_name": .string(script.model), "owned_by": owner]
                return Self.json(200, ["object": "list", "data": [entry], "has_more": false])
            }
        }
        var logger = Logger(label: "mock-endpoint")
        logger.logLevel = .warning
        let bind: BindAddress
        let endpoint: @Sendable (any Channel) -> String
        switch address {
        case .tcp(let host, let port):
            bind = .hostname(host, port: port)
            endpoint = { channel in "http://\(host):\(channel.localAddress?.port ?? port)" }
        case .unixSocket(let path):
            // A socket file left by a killed server would make bind fail with EADDRINUSE.
            if let kind = try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType, kind == .typeSocket {
                try? FileManager.default.removeItem(atPath: path)
            }
            bind = .unixDomainSocket(path: path)
            endpoint = { _ in "unix:\(path)" }
        }
        let app = Application(
            router: router, configuration: .init(address: bind),
            onServerRunning: { channel in await onListening(endpoint(channel)) }, logger: logger)
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
    }

    /// llama-server's answer while the model loads.
    private func loadingRefusal() -> Response? {
        guard ContinuousClock.now - started < script.loading else { return nil }
        return Self.json(503, ["error": ["code": 503, "message": "Loading model", "type": "unavailable_error"]])
    }

    private func chat(_ request: Request, wire: RequestView.Wire) async -> Response {
        if let refusal = refuseKey(request) ?? loadingRefusal() { return refusal }
        var number = await state.next()
        var label: String { script.match ? "request \(number + 1) (\(script.name))" : "turn \(number + 1) of \(script.turns.count) (\(script.name))" }
        var request = request
        guard let buffer = try? await request.collectBody(upTo: 64 << 20) else { return refuse(wire, "mock-endpoint: \(label): the request body could not be read") }
        if let record {
            let path = record + "/request-" + String(format: "%03d", await recorded.next() + 1) + ".json"
            if !FileManager.default.createFile(atPath: path, contents: Data(buffer.readableBytesView)) { log("could not record the request at \(path)") }
        }
        guard let body = try? JSONValue.parse(Data(buffer.readableBytesView)) else { return refuse(wire, "mock-endpoint: \(label): the request body is not JSON") }
        let view: RequestView
        do {
            view = try RequestView(wire: wire, body: body, bodyBytes: buffer.readableBytes)
        } catch {
            return refuse(wire, "mock-endpoint: \(label): \(error)")
        }
        if let context = script.contextSize, view.bodyBytes / 4 > context {
            log("\(label): the prompt (\(view.bodyBytes / 4) tokens) exceeds the context (\(context))")
            return Self.json(400, ["error": [
                "code": 400, "message": .string("request (\(view.bodyBytes / 4) tokens) exceeds the available context size (\(context) tokens), try increasing it"),
                "type": "exceed_context_size_error", "n_prompt_tokens": .int(view.bodyBytes / 4), "n_ctx": .int(context),
            ]])
        }
        if let problem = view.wellFormedness() {
            log("\(label): \(problem)")
            return refuse(wire, "mock-endpoint: \(label): \(problem)")
        }
        if script.repeats, number > 0, !view.messages.contains(where: { $0.role == "assistant" }) {
            number = await state.restart()
            log("a new conversation: the script starts over")
        }
        let turn: MockScript.Turn
        if script.match {
            let misses = script.turns.map { view.unmet($0.expect) }
            guard let chosen = misses.firstIndex(where: { $0 == nil }) else {
                let why = misses.enumerated().map { "turn \($0.offset + 1): \($0.element!)" }.joined(separator: "; ")
                log("request \(number + 1): no turn matches")
                return refuse(wire, "mock-endpoint: request \(number + 1) to \(script.name): no turn matches (\(why))")
            }
            turn = script.turns[chosen]
        } else {
            guard number < script.turns.count else {
                return refuse(wire, "mock-endpoint: the script \(script.name) has \(script.turns.count) turns and this is request \(number + 1)")
            }
            turn = script.turns[number]
            if let problem = view.unmet(turn.expect) {
                log("\(label): \(problem)")
                return refuse(wire, "mock-endpoint: \(label): \(problem)")
            }
        }
        if turn.delay > .zero { try? await Task.sleep(for: turn.delay) }
        if let fault = turn.fault {
            log("\(label): fault \(fault)")
            return respond(fault, view: view, turn: number)
        }
        var reply = WireReply(reply: turn.reply!, model: script.model, turn: number + 1, promptEstimate: view.bodyBytes / 4)
        reply.timings = script.server == "llama-server"
        if view.constrained { reply.reply = reply.constrainedReply }
        log("\(label): \(wire.rawValue) \(view.stream ? "stream" : "whole"), \(reply.reply.toolCalls.count) tool calls")
        if !view.stream { return Self.json(200, wire == .openai ? reply.openAIWhole() : reply.anthropicWhole()) }
        let events = wire == .openai ? reply.openAIEvents(includeUsage: view.includeUsage) : reply.anthropicEvents()
        return Self.stream(events)
    }

    private func respond(_ fault: MockScript.Fault, view: RequestView, turn: Int) -> Response {
        switch fault {
        case .status(let status, let body):
            return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        case .garbage(let text):
            return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: .init(byteBuffer: ByteBuffer(string: text)))
        case .cut:
            // Half of a real answer, then the connection drops: the body writer fails mid-stream.
            let reply = WireReply(reply: .init(text: "This answer will be cut short by the server.", toolCalls: [], usage: nil, finishReason: nil, chunkSize: 8), model: script.model, turn: turn + 1, promptEstimate: 1)
            let events = view.wire == .openai ? reply.openAIEvents(includeUsage: false) : reply.anthropicEvents()
            let half = Array(events.prefix(max(1, events.count / 2)))
            let body = ResponseBody { writer in
                for event in half { try await writer.write(ByteBuffer(string: event)) }
                throw CutConnection()
            }
            return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: body)
        }
    }

    /// A script with api_key wants it in `Authorization: Bearer` or `x-api-key`.
    private func refuseKey(_ request: Request) -> Response? {
        guard let key = script.apiKey else { return nil }
        let bearer = request.headers[.authorization]
        let header = request.headers[HTTPField.Name("x-api-key")!]
        if bearer == "Bearer \(key)" || header == key { return nil }
        return Self.json(401, ["error": ["type": "authentication_error", "message": "mock-endpoint: this script needs its api_key in Authorization: Bearer or x-api-key"]])
    }

    private func refuse(_ wire: RequestView.Wire, _ message: String) -> Response {
        let body: JSONValue = wire == .openai
            ? ["error": ["code": 400, "type": "invalid_request_error", "message": .string(message)]]
            : ["type": "error", "error": ["type": "invalid_request_error", "message": .string(message)]]
        return Self.json(400, body)
    }

    static func json(_ status: Int, _ body: JSONValue) -> Response {
        Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body.jsonText)))
    }

    static func stream(_ events: [String]) -> Response {
        let body = ResponseBody { writer in
            for event in events { try await writer.write(ByteBuffer(string: event)) }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    private func log(_ line: String) {
        FileHandle.standardError.write(Data("mock-endpoint: \(line)\n".utf8))
    }
}

struct CutConnection: Error {}

/// Which turn the next request takes.
actor TurnCounter {
    private var count = 0
    func next() -> Int {
        defer { count += 1 }
        return count
    }

    /// Starts over: this request takes the first turn.
    func restart() -> Int {
        count = 1
        return 0
    }
}
