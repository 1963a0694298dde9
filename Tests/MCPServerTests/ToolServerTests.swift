import Foundation
import Logging
import MCP
import Sandbox
import Testing
@testable import MCPServer
import Tools

/// The server and the SDK's own client, joined by two pipes through `LineTransport` at both ends.
@Suite struct ToolServerTests {
    let base: String
    let session: Session
    let client: Client

    init() async throws {
        base = FileManager.default.temporaryDirectory.path + "/toolhost-mcp-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: base + "/ws/src", withIntermediateDirectories: true)
        session = try Session(
            workspace: Workspace(base + "/ws"), state: StateDirectory(base + "/state"), runner: UnconfinedRunner(reason: "tests"))
        var toServer: [Int32] = [0, 0]
        var toClient: [Int32] = [0, 0]
        #expect(pipe(&toServer) == 0 && pipe(&toClient) == 0)
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let server = await ToolServer(registry: try ToolRegistry(), session: session, version: "test", logger: logger)
            .makeServer()
        try await server.start(transport: LineTransport(input: toServer[0], output: toClient[1], logger: logger))
        client = Client(name: "test-client", version: "1")
        _ = try await client.connect(transport: LineTransport(input: toClient[0], output: toServer[1], logger: logger))
    }

    @Test func listsToolsFromToolsJSON() async throws {
        let (tools, _) = try await client.listTools()
        let registry = try ToolRegistry()
        #expect(tools.map(\.name) == registry.definitions.map(\.name))
        #expect(tools.first?.description == registry.definitions.first?.description)
    }

    @Test func callsReachTheRegistryAndKeepTheShellState() async throws {
        _ = try await client.callTool(name: "execute", arguments: ["command": "cd src"])
        let (content, isError) = try await client.callTool(name: "execute", arguments: ["command": "pwd"])
        #expect(isError == false)
        guard case .text(let text, _, _) = content.first else { Issue.record("no text"); return }
        #expect(text.hasPrefix(base + "/ws/src\n"))
    }

    @Test func toolFailuresAreErrorResultsNotProtocolErrors() async throws {
        for (name, arguments) in [("read_file", ["path": Value.string("../etc/passwd")]), ("nope", [:]), ("execute", [:])] {
            let (content, isError) = try await client.callTool(name: name, arguments: arguments)
            #expect(isError == true)
            guard case .text(let text, _, _) = content.first else { Issue.record("no text"); continue }
            #expect(text.hasPrefix("Error: "))
        }
    }
}
