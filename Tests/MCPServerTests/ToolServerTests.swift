import Foundation
import JSONCore
import Logging
import Sandbox
import SystemPackage
import Testing
@testable import MCPServer
import Tools

/// Collects what a connection sends, and finds replies and notifications in it.
actor Wire {
    private(set) var messages: [JSONValue] = []
    /// The same messages as sent, byte for byte.
    private(set) var raw: [String] = []

    nonisolated var sink: ReplySink { ReplySink(send: { data in await self.append(data) }) }

    private func append(_ data: Data) {
        messages.append((try? JSONValue.parse(data)) ?? .null)
        raw.append(String(decoding: data, as: UTF8.self))
    }

    /// The reply to `id`, waiting up to `seconds` for it. Replies take milliseconds; the bound
    /// leaves room for two cores loaded by the whole suite's child processes.
    func reply(_ id: JSONValue, within seconds: Double = 30) async throws -> JSONValue? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if let found = messages.first(where: { $0["id"] == id && $0["method"] == nil }) { return found }
            try await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    func notifications(_ method: String) -> [JSONValue] { messages.filter { $0["method"] == .string(method) } }
}

/// The protocol layer, message by message, as raw JSON-RPC: every edge the specification names.
@Suite struct ToolServerTests {
    let base: String
    let connection: MCPConnection
    let wire = Wire()

    init() throws {
        base = FileManager.default.temporaryDirectory.path + "/toolhost-mcp-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: base + "/ws/src", withIntermediateDirectories: true)
        let session = try Session(
            workspace: Workspace(base + "/ws"), state: StateDirectory(base + "/state"), runner: UnconfinedRunner(reason: "tests"))
        connection = MCPConnection(
            registry: try ToolRegistry(), session: session, version: "test", logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }

    /// Sends raw text; returns the reply to `id` (nil when none came within `seconds`).
    @discardableResult
    func send(_ text: String, id: JSONValue = .null, within seconds: Double = 30) async throws -> JSONValue? {
        await connection.receive(JSONRPC.classify(Data(text.utf8)), sink: wire.sink)
        return try await wire.reply(id, within: seconds)
    }

    func request(_ id: Int, _ method: String, _ params: JSONValue = [:]) async throws -> JSONValue {
        let message: JSONValue = ["jsonrpc": "2.0", "id": .int(id), "method": .string(method), "params": params]
        return try #require(try await send(message.jsonText, id: .int(id)))
    }

    func call(_ id: Int, _ tool: String, _ arguments: JSONValue, meta: JSONValue? = nil) async throws -> JSONValue {
        var params: [String: JSONValue] = ["name": .string(tool), "arguments": arguments]
        if let meta { params["_meta"] = meta }
        return try #require(try await request(id, "tools/call", .object(params))["result"])
    }

    @Test func listsEveryToolWithTitleAnnotationsAndOutputSchema() async throws {
        let tools = try #require(try await request(1, "tools/list")["result"]?["tools"]?.arrayValue)
        #expect(tools.compactMap { $0["name"]?.stringValue } == (try ToolRegistry()).definitions.map(\.name))
        for tool in tools {
            #expect(tool["title"]?.stringValue?.isEmpty == false)
            #expect(tool["outputSchema"]?["type"] == "object")
            let hints = try #require(tool["annotations"]?.objectValue)
            #expect(Set(hints.keys).isSuperset(of: ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"]))
        }
        let readOnly = tools.filter { $0["annotations"]?["readOnlyHint"] == true }.compactMap { $0["name"]?.stringValue }
        #expect(Set(readOnly) == ["read_file", "grep", "glob", "git_status", "git_diff", "list_background", "checkpoints"])
    }

    @Test func structuredContentIsCompleteAndKeepsTheShellState() async throws {
        _ = try await call(1, "execute", ["command": "cd src && echo hello"])
        let result = try await call(2, "execute", ["command": "pwd"])
        let text = try #require(result["content"]?.arrayValue?.first?["text"]?.stringValue)
        #expect(text.hasPrefix(base + "/ws/src\n"))
        #expect(result["structuredContent"]?["text"]?.stringValue == text)
        #expect(result["structuredContent"]?["exit_code"] == 0)
        let written = try await call(3, "write_file", ["path": "notes.txt", "content": "alpha\nbeta\n"])
        #expect(written["isError"] == false)
        let read = try await call(4, "read_file", ["path": "notes.txt"])
        #expect(read["structuredContent"]?["text"]?.stringValue?.contains("2\tbeta") == true)
        // Clients that show the model structured content as JSON (Claude Code) show the text
        // first, before the facts, in every object the answer holds.
        let sent = try #require(await wire.raw.last(where: { $0.contains(#""id":4"#) }))
        #expect(sent.contains(#""structuredContent":{"text":"#), "\(sent.prefix(300))")
        #expect(sent.contains(#"{"text":"#) && !sent.contains(#""type":"text","text""#), "\(sent.prefix(300))")
    }

    @Test func nullOptionalsCountAsAbsent() async throws {
        _ = try await call(1, "write_file", ["path": "a.txt", "content": "one\ntwo\n"])
        let read = try await call(2, "read_file", ["path": "a.txt", "offset": .null, "limit": .null])
        #expect(read["isError"] == false, "\(read)")
        let ran = try await call(3, "execute", ["command": "echo ok", "timeout_seconds": .null, "background": false])
        #expect(ran["isError"] == false, "\(ran)")
        // A client still holding the old execute schema in strict mode sends the old modes unset.
        let old = try await call(4, "execute", ["command": "echo ok", "list_background": false, "stop_background": ""])
        #expect(old["isError"] == false, "\(old)")
        let moved = try await call(5, "execute", ["list_background": true])
        #expect(moved["content"]?.arrayValue?.first?["text"]?.stringValue?.contains("call list_background {}") == true)
        let required = try await call(6, "read_file", ["path": .null])
        #expect(required["isError"] == true)
    }

    @Test func malformedMessagesGetTheSpecifiedErrors() async throws {
        let parse = try #require(try await send("{not json"))
        #expect(parse["error"]?["code"] == .int(JSONRPC.parseError) && parse["id"] == .null)
        for id in ["null", "1.5", "true", "{}", "[1]"] {
            await connection.receive(JSONRPC.classify(Data(#"{"jsonrpc":"2.0","id":\#(id),"method":"ping"}"#.utf8)), sink: wire.sink)
        }
        try await Task.sleep(for: .milliseconds(100))
        let invalid = await wire.messages.filter { $0["error"]?["code"] == .int(JSONRPC.invalidRequest) && $0["id"] == .null }
        #expect(invalid.count == 5)
        try await send(#"[{"jsonrpc":"2.0","id":9,"method":"ping"}]"#, within: 0)
        let batch = try #require(await wire.messages.last)
        #expect(batch["error"]?["code"] == .int(JSONRPC.invalidRequest) && batch["id"] == .null)
        #expect(try await request(2, "nope/nothing")["error"]?["code"] == .int(JSONRPC.methodNotFound))
        #expect(try await request(3, "tools/call", ["arguments": [:]])["error"]?["code"] == .int(JSONRPC.invalidParams))
        let unknown = try await request(4, "tools/call", ["name": "read_fil"])
        #expect(unknown["error"]?["code"] == .int(JSONRPC.invalidParams))
        #expect(unknown["error"]?["message"]?.stringValue?.contains("did you mean 'read_file'") == true)
        #expect(try await request(5, "tools/call", ["name": "read_file", "arguments": "x"])["error"]?["code"] == .int(JSONRPC.invalidParams))
        let stringID = try #require(try await send(#"{"jsonrpc":"2.0","id":"abc","method":"ping"}"#, id: "abc"))
        #expect(stringID["result"] == [:])
        // A tool's own failure is a result the model can read, not a protocol error.
        let escape = try await call(6, "read_file", ["path": "../../etc/passwd"])
        #expect(escape["isError"] == true && escape["structuredContent"] == nil)
    }

    @Test func revisionsAreNegotiated() async throws {
        let older = try await request(1, "initialize", ["protocolVersion": "2025-06-18", "capabilities": [:], "clientInfo": ["name": "t", "version": "1"]])
        #expect(older["result"]?["protocolVersion"] == "2025-06-18")
        #expect(older["result"]?["capabilities"]?["logging"] != nil)
        let unknown = try await request(2, "initialize", ["protocolVersion": "1999-01-01", "capabilities": [:]])
        #expect(unknown["result"]?["protocolVersion"] == "2025-11-25")
        let envelope: JSONValue = ["io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": [:]]
        let discover = try await request(3, "server/discover", ["_meta": envelope])
        #expect(discover["result"]?["supportedVersions"]?.arrayValue?.contains("2026-07-28") == true)
        #expect(discover["result"]?["resultType"] == "complete" && discover["result"]?["ttlMs"] != nil)
        let listed = try await request(4, "tools/list", ["_meta": envelope])
        #expect(listed["result"]?["resultType"] == "complete" && listed["result"]?["cacheScope"] == "private")
        let future = try await request(5, "tools/list", ["_meta": ["io.modelcontextprotocol/protocolVersion": "2030-01-01"]])
        #expect(future["error"]?["code"] == .int(JSONRPC.unsupportedProtocolVersion))
        #expect(future["error"]?["data"]?["supported"]?.arrayValue?.contains("2026-07-28") == true)
        let called = try await call(6, "execute", ["command": "echo modern"], meta: envelope)
        #expect(called["resultType"] == "complete" && called["isError"] == false)
    }

    @Test func aDuplicateInFlightIDIsRefusedAndTheFirstStillAnswers() async throws {
        let slow: JSONValue = ["jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": ["name": "execute", "arguments": ["command": "sleep 1; echo first"]]]
        await connection.receive(JSONRPC.classify(Data(slow.jsonText.utf8)), sink: wire.sink)
        let again = try #require(try await send(#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#, id: 7))
        #expect(again["error"]?["code"] == .int(JSONRPC.invalidRequest))
        func replies() async -> [JSONValue] { await wire.messages.filter { $0["id"] == 7 } }
        for _ in 0..<3000 where await replies().count < 2 { try await Task.sleep(for: .milliseconds(10)) }
        let replies = await replies()
        #expect(replies.count == 2)
        #expect(replies.last?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue?.hasPrefix("first\n") == true)
    }

    @Test func cancellationKillsTheCommandAndSendsNoAnswer() async throws {
        let pidFile = base + "/ws/pid"
        let message: JSONValue = [
            "jsonrpc": "2.0", "id": 11, "method": "tools/call",
            "params": ["name": "execute", "arguments": ["command": "sleep 60 & echo $! > pid; wait"]],
        ]
        await connection.receive(JSONRPC.classify(Data(message.jsonText.utf8)), sink: wire.sink)
        var pid: pid_t = 0
        for _ in 0..<200 where pid == 0 {
            try await Task.sleep(for: .milliseconds(20))
            pid = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        }
        #expect(pid > 0)
        #expect(kill(pid, 0) == 0)
        try await send(#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":11,"reason":"user"}}"#, within: 0)
        await connection.drain()
        #expect(await wire.messages.filter { $0["id"] == 11 }.isEmpty)
        // The sleep was in the command's process group: gone (or a zombie nobody waits for).
        let state = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.split(separator: " ").dropFirst(2).first
        #expect(state == nil || state == "Z")
    }

    @Test func progressCarriesElapsedTimeAndTheLatestLine() async throws {
        // The command runs until the test has seen a tick, so a tick that comes late on two loaded
        // cores cannot miss it; the pace itself is checked from a client process (MCPClientsTests).
        let message: JSONValue = [
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": [
                "name": "execute", "_meta": ["progressToken": "p1"],
                "arguments": ["command": "for i in $(seq 300); do echo step $i; [ -f go ] && break; sleep 0.2; done", "timeout_seconds": 90],
            ],
        ]
        await connection.receive(JSONRPC.classify(Data(message.jsonText.utf8)), sink: wire.sink)
        func ticked() async -> Bool {
            await wire.notifications("notifications/progress").contains { $0["params"]?["message"]?.stringValue?.contains("latest output: step") == true }
        }
        for _ in 0..<150 where await !ticked() { try await Task.sleep(for: .milliseconds(200)) }
        #expect(FileManager.default.createFile(atPath: base + "/ws/go", contents: nil))
        let result = try #require(try await wire.reply(1)?["result"])
        #expect(result["isError"] == false)
        let progress = await wire.notifications("notifications/progress")
        #expect(await ticked())
        #expect(progress.allSatisfy { $0["params"]?["progressToken"] == "p1" })
        let values = progress.compactMap { $0["params"]?["progress"]?.doubleValue }
        #expect(values == values.sorted() && Set(values).count == values.count)
        // Nothing follows the answer.
        let messages = await wire.messages
        #expect(messages.last?["id"] == 1)
    }

    @Test func setLevelIsHonoured() async throws {
        #expect(try await request(1, "logging/setLevel", ["level": "loud"])["error"]?["code"] == .int(JSONRPC.invalidParams))
        _ = try await call(2, "execute", ["command": "true"])
        #expect(await wire.notifications("notifications/message").isEmpty)
        #expect(try await request(3, "logging/setLevel", ["level": "debug"])["result"] == [:])
        _ = try await call(4, "execute", ["command": "true"])
        let levels = await wire.notifications("notifications/message").compactMap { $0["params"]?["level"]?.stringValue }
        #expect(levels == ["debug", "info"])
        _ = try await request(5, "logging/setLevel", ["level": "error"])
        _ = try await call(6, "execute", ["command": "true"])
        #expect(await wire.notifications("notifications/message").count == 2)
    }
}

/// The stdio transport: linear in message size, and answers what it got before stdin closed.
@Suite struct LineTransportTests {
    @Test func linesAreSplitWhateverTheReadBoundaries() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let big = String(repeating: "x", count: 3 << 20)
        let text = "a\n\n  \nb\r\n\(big)\nlast"
        let writeEnd = fds[1]
        let writer = Thread {
            _ = try? FileDescriptor(rawValue: writeEnd).writeAll(text.utf8)
            close(writeEnd)
        }
        writer.start()
        var lines: [Data] = []
        LineTransport.split(reading: fds[0], onError: { _ in }) { lines.append($0) }
        close(fds[0])
        #expect(lines.map(\.count) == [1, 2, big.count])
    }

    @Test func stdinClosingDrainsRequestsInFlight() async throws {
        let base = FileManager.default.temporaryDirectory.path + "/toolhost-drain-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: base + "/ws", withIntermediateDirectories: true)
        let session = try Session(workspace: Workspace(base + "/ws"), state: StateDirectory(base + "/state"), runner: UnconfinedRunner(reason: "tests"))
        let server = ToolServer(registry: try ToolRegistry(), session: session, version: "t", logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        var input: [Int32] = [0, 0], output: [Int32] = [0, 0]
        #expect(pipe(&input) == 0 && pipe(&output) == 0)
        let requests = (1...3).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"tools/call","params":{"name":"execute","arguments":{"command":"sleep 0.5; echo done \#($0)"}}}"# }
        let text = requests.joined(separator: "\n") + "\n"
        _ = try FileDescriptor(rawValue: input[1]).writeAll(text.utf8)
        close(input[1])
        await server.serve(input: input[0], output: output[1])
        close(output[1])
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while case let n = read(output[0], &buffer, buffer.count), n > 0 { bytes += buffer[..<n] }
        let replies = String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
        #expect(Set(replies.compactMap { $0["id"]?.intValue }) == [1, 2, 3])
    }
}

/// A stdio server opens its session while the client's handshake runs: `initialize` is answered
/// before the sandbox is ready, calls wait for it, and a session that cannot open fails them
/// with its reason instead of hanging.
@Suite struct OpeningSessionTests {
    struct Refused: Error, CustomStringConvertible {
        var description: String { "no user namespaces here" }
    }

    static func connection(_ opening: Task<Session, any Error>) -> MCPConnection {
        MCPConnection(
            registry: try! ToolRegistry(), workspaceRoot: "/nowhere", opening: opening, version: "test",
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }

    static func send(_ connection: MCPConnection, _ wire: Wire, _ id: Int, _ method: String, _ params: JSONValue) async throws -> JSONValue? {
        let message: JSONValue = ["jsonrpc": "2.0", "id": .int(id), "method": .string(method), "params": params]
        await connection.receive(JSONRPC.classify(Data(message.jsonText.utf8)), sink: wire.sink)
        return try await wire.reply(.int(id))
    }

    static let initialize: JSONValue = ["protocolVersion": "2025-06-18", "capabilities": [:], "clientInfo": ["name": "t", "version": "1"]]

    @Test func theHandshakeDoesNotWaitForTheSession() async throws {
        let base = FileManager.default.temporaryDirectory.path + "/toolhost-opening-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: base + "/ws", withIntermediateDirectories: true)
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        let opening = Task<Session, any Error> {
            for await _ in gate { break }
            return try Session(workspace: Workspace(base + "/ws"), state: StateDirectory(base + "/state"), runner: UnconfinedRunner(reason: "tests"))
        }
        let connection = Self.connection(opening)
        let wire = Wire()
        let reply = try #require(try await Self.send(connection, wire, 1, "initialize", Self.initialize))
        #expect(reply["result"]?["instructions"]?.stringValue?.contains("/nowhere") == true, "answered while the session is still closed")
        let call = Task { try await Self.send(connection, wire, 2, "tools/call", ["name": "execute", "arguments": ["command": "echo opened"]]) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(await wire.messages.contains { $0["id"] == 2 } == false, "the call waits for the session")
        open.yield()
        let result = try #require(try await call.value?["result"])
        #expect(result["isError"] == false)
        #expect(result["content"]?.arrayValue?.first?["text"]?.stringValue?.hasPrefix("opened\n") == true, "\(result)")
    }

    @Test func aSessionThatCannotOpenFailsTheCallsWithItsReason() async throws {
        let connection = Self.connection(Task { throw Refused() })
        let wire = Wire()
        #expect(try await Self.send(connection, wire, 1, "initialize", Self.initialize)?["result"] != nil)
        for (id, method, params) in [(2, "tools/list", [:]), (3, "tools/call", ["name": "execute", "arguments": ["command": "true"]])] as [(Int, String, JSONValue)] {
            let error = try #require(try await Self.send(connection, wire, id, method, params)?["error"], "\(method) answers")
            #expect(error["code"] == .int(JSONRPC.internalError))
            #expect(error["message"]?.stringValue == "the toolhost session could not open: no user namespaces here", "\(error)")
        }
    }
}
