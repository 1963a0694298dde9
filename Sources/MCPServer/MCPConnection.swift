public import Foundation
public import Logging
import Sandbox
public import Tools

/// Where one request's messages go: its progress and log notifications, then its answer, then
/// `finish` (an HTTP response stream ends there; stdio has nothing to end).
public struct ReplySink: Sendable {
    public let send: @Sendable (Data) async -> Void
    public let finish: @Sendable () async -> Void

    public init(send: @escaping @Sendable (Data) async -> Void, finish: @escaping @Sendable () async -> Void = {}) {
        self.send = send
        self.finish = finish
    }
}

/// One MCP conversation with one toolhost session, whatever carries it: the methods, the
/// protocol revisions, requests in flight (each answered once, or never when cancelled), progress
/// and log notifications. Written here rather than taken from the Swift SDK, which answered bad
/// params with -32603, replaced invalid ids, never answered some, lost the first of two requests
/// sharing an id, and speaks no 2026-07-28.
public actor MCPConnection {
    /// Revisions reached through the `initialize` handshake, newest first.
    public static let handshakeRevisions = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]
    /// Revisions with the per-request envelope (`_meta` carries the version; no handshake).
    public static let modernRevisions = ["2026-07-28"]
    static let versionKey = "io.modelcontextprotocol/protocolVersion"
    static let logLevelKey = "io.modelcontextprotocol/logLevel"
    static let serverInfoKey = "io.modelcontextprotocol/serverInfo"
    /// RFC 5424 levels, as MCP names them, least severe first.
    static let logLevels = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]
    /// How often a call that asked for progress hears from a running tool.
    public static let progressInterval: Duration = .seconds(1)

    let registry: ToolRegistry
    /// The session the tools run in, once it is open (see `init(registry:opening:...)`).
    let opening: Task<Session, any Error>
    let workspaceRoot: String
    let version: String
    let logger: Logger
    /// Whether each call gets a line in toolhost's own log (stderr).
    let logsCalls: Bool
    /// Whether call results say which session handle they ran in and how to keep it: for a
    /// 2026-07-28 HTTP client that sent none, whose shell would otherwise be lost after one call.
    let announcesHandle: Bool
    /// Whether the connection is one of the HTTP server's, where shells are reached by handle.
    let byHandle: Bool
    private let toolList: JSONValue
    private let toolNames: Set<String>
    private var inFlight: [JSONRPC.ID: Task<Void, Never>] = [:]
    private var cancelled: Set<JSONRPC.ID> = []
    /// The least severe level the client wants as notifications/message; nil sends none.
    private var logThreshold: Int?

    public init(registry: ToolRegistry, session: Session, version: String, logger: Logger, logsCalls: Bool = true, byHandle: Bool = false, announcesHandle: Bool = false
    ) {
        self.init(
            registry: registry, workspaceRoot: session.workspace.root, opening: Task { session }, version: version, logger: logger, logsCalls: logsCalls,
            byHandle: byHandle, announcesHandle: announcesHandle)
    }

    /// A connection whose session is still being opened (the sandbox set up) while the client's
    /// handshake runs: `initialize` and `ping` need no session, the rest wait for it, and a session
    /// that fails to open fails them with its reason.
    public init(
        registry: ToolRegistry, workspaceRoot: String, opening: Task<Session, any Error>, version: String, logger: Logger, logsCalls: Bool = true,
        byHandle: Bool = false, announcesHandle: Bool = false
    ) {
        self.announcesHandle = announcesHandle
        self.byHandle = byHandle
        self.registry = registry
        self.workspaceRoot = workspaceRoot
        self.opening = opening
        self.version = version
        self.logger = logger
        self.logsCalls = logsCalls
        toolList = .array(registry.definitions.map(Self.describe))
        toolNames = Set(registry.definitions.map(\.name))
    }

    /// The session, or the reason it could not open as an internal error.
    func session() async throws -> Session {
        do {
            return try await opening.value
        } catch {
            throw RPCError(JSONRPC.internalError, "the toolhost session could not open: \(error)")
        }
    }

    static func describe(_ tool: ToolDefinition) -> JSONValue {
        var entry: [String: JSONValue] = [
            "name": .string(tool.name), "description": .string(tool.description), "inputSchema": tool.inputSchema,
        ]
        if let title = tool.title { entry["title"] = .string(title) }
        if let output = tool.outputSchema { entry["outputSchema"] = output }
        if var annotations = tool.annotations?.objectValue {
            if let title = tool.title { annotations["title"] = .string(title) }
            entry["annotations"] = .object(annotations)
        }
        return .object(entry)
    }

    nonisolated var instructions: String {
        "Tools run inside the workspace \(workspaceRoot). Paths are relative to it; the shell keeps its cwd and exports between execute calls."
            + (byHandle ? " Without a handshake, a call that names no session gets a new shell: its result names the handle (_meta[\"toolhost/session\"]); pass it back as the Toolhost-Session header or as a \"session\" argument of each call to keep that shell." : "")
    }

    /// Takes one message. A request runs on a task of its own and is answered through `sink`; a
    /// notification acts at once. Replies to malformed messages go to `sink` right away.
    public func receive(_ message: JSONRPC.Message, sink: ReplySink) async {
        switch message {
        case .invalid(let reply):
            await sink.send(reply)
            await sink.finish()
        case .response:
            await sink.finish()
        case .notification(let method, let params):
            notify(method, params)
            await sink.finish()
        case .request(let id, let method, let params):
            guard inFlight[id] == nil else {
                await sink.send(JSONRPC.error(
                    id: id, code: JSONRPC.invalidRequest,
                    message: "Invalid Request: request id \(id) is already in flight; give each request an id of its own"))
                await sink.finish()
                return
            }
            inFlight[id] = Task {
                let reply: Data
                do {
                    reply = JSONRPC.result(id: id, try await self.answer(method, params, sink: sink))
                } catch let error as RPCError {
                    reply = JSONRPC.error(id: id, code: error.code, message: error.message, data: error.data)
                } catch {
                    reply = JSONRPC.error(id: id, code: JSONRPC.internalError, message: "Internal error: \(error)")
                }
                await self.complete(id, reply: reply, sink: sink)
            }
        }
    }

    private func complete(_ id: JSONRPC.ID, reply: Data, sink: ReplySink) async {
        inFlight[id] = nil
        if cancelled.remove(id) == nil { await sink.send(reply) }
        await sink.finish()
    }

    /// Cancels one request as `notifications/cancelled` would: its processes are killed and it
    /// gets no answer. For HTTP clients of 2026-07-28, closing the response stream means this.
    public func cancel(_ id: JSONRPC.ID) {
        guard let task = inFlight[id] else { return }
        cancelled.insert(id)
        task.cancel()
    }

    /// Waits until every request received so far has been answered (stdin closed: the answers
    /// still go out before the server exits).
    public func drain() async {
        while let task = inFlight.values.first { await task.value }
    }

    /// Cancels everything in flight (no answers) and waits for the tools to stop.
    public func cancelAll() async {
        for id in inFlight.keys { cancel(id) }
        await drain()
    }

    private func notify(_ method: String, _ params: JSONValue?) {
        switch method {
        case "notifications/cancelled":
            // An id we never saw, or one already answered, is ignored, as the specification says.
            if let raw = params?["requestId"], let id = JSONRPC.ID(raw) { cancel(id) }
        default:
            break  // initialized, progress, roots/list_changed and unknown notifications need nothing
        }
    }

    private func setLogThreshold(_ level: Int) { logThreshold = level }
    private func currentLogThreshold() -> Int? { logThreshold }

    // MARK: - Methods

    private nonisolated func answer(_ method: String, _ params: JSONValue?, sink: ReplySink) async throws -> JSONValue {
        if let params, params.objectValue == nil {
            throw RPCError(JSONRPC.invalidParams, "Invalid params: params must be an object, got \(params.typeName)")
        }
        let meta = params?["_meta"]
        let modern = try Self.modernRevision(meta)
        var result: JSONValue
        switch method {
        case "initialize":
            guard let requested = params?["protocolVersion"]?.stringValue else {
                throw RPCError(JSONRPC.invalidParams, "Invalid params: initialize needs protocolVersion, a string such as \"2025-11-25\"")
            }
            result = [
                "protocolVersion": .string(Self.handshakeRevisions.contains(requested) ? requested : Self.handshakeRevisions[0]),
                "capabilities": capabilities, "serverInfo": serverInfo, "instructions": .string(instructions),
            ]
        case "server/discover":
            guard modern != nil else {
                throw RPCError(JSONRPC.invalidParams, "Invalid params: server/discover needs params._meta[\"\(Self.versionKey)\"]")
            }
            result = [
                "supportedVersions": .array((Self.modernRevisions + Self.handshakeRevisions).map(JSONValue.string)),
                "capabilities": capabilities, "serverInfo": serverInfo, "instructions": .string(instructions),
                "ttlMs": 0, "cacheScope": "private",
            ]
        case "ping":
            result = [:]
        case "tools/list":
            try await session().toolsListed(offering: toolNames)
            result = ["tools": toolList]
            if modern != nil {
                result = ["tools": toolList, "ttlMs": 0, "cacheScope": "private"]
            }
        case "tools/call":
            result = try await call(params ?? [:], modern: modern != nil, sink: sink)
        case "logging/setLevel":
            guard let level = params?["level"]?.stringValue, let index = Self.logLevels.firstIndex(of: level) else {
                throw RPCError(JSONRPC.invalidParams, "Invalid params: level must be one of \(Self.logLevels.joined(separator: ", "))")
            }
            await setLogThreshold(index)
            result = [:]
        default:
            throw RPCError(JSONRPC.methodNotFound, "Method not found: \(method)")
        }
        if modern != nil, case .object(var object) = result {
            object["resultType"] = "complete"
            var resultMeta = object["_meta"]?.objectValue ?? [:]
            resultMeta[Self.serverInfoKey] = serverInfo
            object["_meta"] = .object(resultMeta)
            result = .object(object)
        }
        return result
    }

    /// The 2026-07-28 revision a request names in its envelope, nil for a handshake-era request.
    static func modernRevision(_ meta: JSONValue?) throws -> String? {
        guard let stated = meta?[versionKey] else { return nil }
        guard let revision = stated.stringValue, modernRevisions.contains(revision) else {
            throw RPCError(
                JSONRPC.unsupportedProtocolVersion,
                "Unsupported protocol version \(stated.jsonText): this server speaks \((modernRevisions + handshakeRevisions).joined(separator: ", "))",
                data: ["supported": .array((modernRevisions + handshakeRevisions).map(JSONValue.string)), "requested": stated])
        }
        return revision
    }

    nonisolated var capabilities: JSONValue { ["tools": ["listChanged": false], "logging": [:]] }
    nonisolated var serverInfo: JSONValue { ["name": "toolhost", "title": "toolhost", "version": .string(version)] }

    private nonisolated func call(_ params: JSONValue, modern: Bool, sink: ReplySink) async throws -> JSONValue {
        guard let name = params["name"]?.stringValue else {
            throw RPCError(JSONRPC.invalidParams, "Invalid params: tools/call needs name, the tool's name as a string")
        }
        guard registry.definition(named: name) != nil else {
            throw RPCError(JSONRPC.invalidParams, "Invalid params: \(registry.unknownToolMessage(name))")
        }
        let arguments = params["arguments"] == .null ? nil : params["arguments"]
        if let arguments, arguments.objectValue == nil {
            throw RPCError(JSONRPC.invalidParams, "Invalid params: arguments must be an object, got \(arguments.typeName)")
        }
        let meta = params["_meta"]
        let threshold = modern
            ? meta?[Self.logLevelKey]?.stringValue.flatMap(Self.logLevels.firstIndex(of:)) : await currentLogThreshold()
        let log: @Sendable (String, String) async -> Void = { level, text in
            guard let threshold, let index = Self.logLevels.firstIndex(of: level), index >= threshold else { return }
            await sink.send(JSONRPC.notification("notifications/message", ["level": .string(level), "logger": "toolhost", "data": .string(text)]))
        }

        let session = try await session()
        let started = ContinuousClock.now
        await log("debug", "\(name) started")
        let result: ToolResult
        if let token = meta?["progressToken"], JSONRPC.ID(token) != nil {
            result = await withProgress(token: token, sink: sink) {
                await self.registry.call(name, arguments: arguments, session: session)
            }
        } else {
            result = await registry.call(name, arguments: arguments, session: session)
        }
        try Task.checkCancellation()
        let elapsed = ContinuousClock.now - started
        if logsCalls { logger.info("tools/call \(name) \(result.isError ? "error" : "ok") \(elapsed)") }
        await log(result.isError ? "warning" : "info", "\(name) \(result.isError ? "returned an error" : "finished") in \(Self.seconds(elapsed)) s")
        guard announcesHandle, case .object(var object) = Self.encode(result) else { return Self.encode(result) }
        let handle = session.name
        object["content"] = .array((object["content"]?.arrayValue ?? []) + [[
            "type": "text",
            "text": .string("[toolhost: this call ran in a new shell, session \(handle). To keep its cwd and exported variables, pass \"session\": \"\(handle)\" among the next call's arguments (or send the header Toolhost-Session: \(handle)).]"),
        ]])
        object["_meta"] = [Self.handleKey: .string(handle)]
        return .object(object)
    }

    /// Where a call's result names the session handle it ran in.
    public static let handleKey = "toolhost/session"

    /// Runs `body` with a `CallActivity` bound, and sends notifications/progress every
    /// `progressInterval` meanwhile: the seconds elapsed as progress, the latest output line as
    /// message. The last notification goes out before the answer does.
    private nonisolated func withProgress(token: JSONValue, sink: ReplySink, _ body: @escaping @Sendable () async -> ToolResult) async -> ToolResult {
        let activity = CallActivity()
        let started = ContinuousClock.now
        let ticker = Task {
            while !Task.isCancelled {
                do { try await Task.sleep(for: Self.progressInterval) } catch { return }
                let elapsed = Self.seconds(ContinuousClock.now - started)
                let line = activity.latestLine.map { "; latest output: \($0)" } ?? ""
                await sink.send(JSONRPC.notification(
                    "notifications/progress",
                    ["progressToken": token, "progress": .double(elapsed), "message": .string("running for \(Self.whole(elapsed)) s\(line)")]))
            }
        }
        let result = await CallActivity.$current.withValue(activity) { await body() }
        ticker.cancel()
        await ticker.value
        return result
    }

    static func seconds(_ duration: Duration) -> Double {
        ((Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18) * 1000).rounded() / 1000
    }

    private static func whole(_ seconds: Double) -> Int { Int(seconds.rounded()) }

    /// A tool result as MCP's CallToolResult.
    static func encode(_ result: ToolResult) -> JSONValue {
        let content: [JSONValue] = result.content.map {
            switch $0 {
            case .text(let text): ["type": "text", "text": .string(text)]
            case .image(let data, let mimeType): ["type": "image", "data": .string(data.base64EncodedString()), "mimeType": .string(mimeType)]
            }
        }
        var object: [String: JSONValue] = ["content": .array(content), "isError": .bool(result.isError)]
        if let structured = result.structuredContent { object["structuredContent"] = structured }
        return .object(object)
    }
}
