import ArgumentParser
import Foundation
import Logging
import MCPServer
import Tools

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the tools to an MCP client over stdio.",
        discussion: """
            stdout carries only MCP messages; logs go to stderr. The session's cwd and exported \
            variables are saved under the state dir, so a restarted server carries on where it stopped. \
            Background processes started with execute end when the server exits.

            Example MCP client entry:
              {"mcpServers": {"toolhost": {"command": "toolhost", "args": ["serve", "--workspace", "/path/to/project"]}}}
            """)

    @Option(help: "The folder the tools may touch. Default: the current directory.")
    var workspace: String = "."

    @OptionGroup var options: SessionOptions

    func run() async throws {
        // Keep the real stdout for MCP alone: anything else that prints lands on stderr instead.
        let mcpOut = dup(STDOUT_FILENO)
        dup2(STDERR_FILENO, STDOUT_FILENO)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        Signals.killChildrenOnExit()
        let session = try options.openSession(workspace: workspace)
        let server = ToolServer(
            registry: try makeRegistry(), session: session, version: Toolhost.version,
            logger: Logger(label: "toolhost"))
        warn("serving MCP on stdio for workspace \(session.workspace.root), session \(session.name)")
        try await server.serve(input: STDIN_FILENO, output: mcpOut)
    }
}
