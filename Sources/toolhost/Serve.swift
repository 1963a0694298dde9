import ArgumentParser
import Foundation
import Logging
import MCPServer
import Tools

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the tools to MCP clients over stdio, or over Streamable HTTP with --http.",
        discussion: """
            stdio: stdout carries only MCP messages; logs go to stderr. The session's cwd and exported \
            variables are saved under the state dir, so a restarted server carries on where it stopped; \
            a second server on the same workspace and --session refuses while the first runs. \
            Background processes started with execute end when the server exits.

            HTTP (--http HOST:PORT, MCP at /mcp): every client gets a shell of its own (cwd, environment, \
            background processes), named by a handle the server mints and sends in the Toolhost-Session \
            response header. Handshake-era clients keep theirs by Mcp-Session-Id; 2026-07-28 clients send \
            the handle back as the Toolhost-Session header or a "session" argument of tools/call (each \
            result without one says so). A saved handle finds its state after a restart; other names \
            are refused unless given with --shared-session. A bearer token (--token-file or \
            TOOLHOST_TOKEN) is required when HOST is not loopback. Foreign Origins get 403, bodies \
            over --max-body-bytes 413. SIGTERM gives running commands --shutdown-grace, then kills them.

            Example MCP client entry:
              {"mcpServers": {"toolhost": {"command": "toolhost", "args": ["serve", "--workspace", "/path/to/project"]}}}
            """)

    @Option(help: "The folder the tools may touch. Default: the current directory.")
    var workspace: String = "."

    @Option(help: ArgumentHelp("Serve MCP over Streamable HTTP at http://HOST:PORT/mcp instead of stdio.", valueName: "host:port"))
    var http: String?

    @Option(help: "File holding the bearer token HTTP clients must send (or set TOOLHOST_TOKEN).")
    var tokenFile: String?

    @Option(help: "Close an HTTP session after this many idle seconds.")
    var idleTimeout: Int = 1800

    @Option(help: "Refuse HTTP request bodies larger than this many bytes (413).")
    var maxBodyBytes: Int = 4 << 20

    @Option(help: "On SIGTERM, SIGINT or SIGHUP (HTTP), seconds running commands get before they are killed.")
    var shutdownGrace: Int = 10

    @Option(help: ArgumentHelp(
        "The most HTTP sessions alive at once (each holds namespaces, cgroups and descriptors).",
        discussion: "At the cap, a session that never made a call and has been idle for 5 s gives way to a new one; otherwise initialize gets 503 with Retry-After."))
    var maxSessions: Int = 64

    @Option(help: ArgumentHelp(
        "New HTTP sessions kept prepared for clients to come (0, the default: make each when a client arrives).",
        discussion: "Each is a sandbox made ahead under a fresh handle no client has seen, so a new client's first call does not wait for its namespaces and mounts; it is handed out once, trusts the repository as it is then, and another is prepared in its place once that client's first tool call has answered (while its model reads the result, not beside that call). They count against --max-sessions only when handed out, and are never made past it."))
    var warmSessions: Int = 0

    @Option(help: ArgumentHelp(
        "The most HTTP connections open at once.",
        discussion: "Past it, a new connection closes the one that has owed its request longest (a slow or idle client), never one whose answer is on its way."))
    var maxConnections: Int = 512

    @Option(help: "Seconds a client has to send a request's headers, and again its body, before the connection is closed.")
    var requestTimeout: Int = 30

    @Option(help: ArgumentHelp(
        "A session name any HTTP client may join by sending 'Toolhost-Session: NAME' (repeatable).",
        discussion: "For a single trusted operator: every client that names it shares its shell. A --session other than 'default' is shared the same way. Other sessions are reached only by their minted handles."))
    var sharedSession: [String] = []

    @Option(help: ArgumentHelp(
        "Start Chromium when a client lists the tools, so the first screenshot does not wait for it (auto, on or off).",
        discussion: "auto, the default: over stdio, not over HTTP, where every session would hold a browser of its own. The browser runs confined by the browser profile, and closes with the session or after ten idle minutes; without the screenshot tool (--tools) it never starts ahead.",
        valueName: "when"))
    var browserAhead: BrowserAhead = .auto

    enum BrowserAhead: String, ExpressibleByArgument, CaseIterable {
        case auto, on, off
    }

    @OptionGroup var options: SessionOptions

    mutating func validate() throws {
        workspace = absolutePath(workspace)
    }

    func run() async throws {
        if let http { return try await serveHTTP(http) }
        Signals.killChildrenOnExit()
        // Keep the real stdout for MCP alone: anything else that prints lands on stderr instead.
        let mcpOut = dup(STDOUT_FILENO)
        dup2(STDERR_FILENO, STDOUT_FILENO)
        bootstrapLogging()
        let root = try options.lockSession(workspace: workspace).root
        let opening = try options.startOpeningSession(workspace: workspace, browserAhead: browserAhead != .off)
        let server = ToolServer(
            registry: try makeRegistry(), workspaceRoot: root, opening: opening, version: Toolhost.version, logger: Logger(label: "toolhost"))
        let name = options.session
        Task {
            // A session that cannot open (no namespaces, a bad profile) ends the server as it
            // would have before serving: its reason on stderr, exit 2.
            do { _ = try await opening.value } catch { Toolhost.fail(error) }
            warn("serving MCP on stdio for workspace \(root), session \(name)")
        }
        await server.serve(input: STDIN_FILENO, output: mcpOut)
    }

    private func serveHTTP(_ address: String) async throws {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            throw ValidationError("--http takes HOST:PORT, e.g. 127.0.0.1:8765 (port 0 picks a free one)")
        }
        let host = String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        var token = ProcessInfo.processInfo.environment["TOOLHOST_TOKEN"]
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw ValidationError("cannot read --token-file \(tokenFile)")
            }
            token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if token?.isEmpty == true { token = nil }
        guard maxSessions > 0, maxConnections > 0, requestTimeout > 0 else {
            throw ValidationError("--max-sessions, --max-connections and --request-timeout take a number above 0")
        }
        guard warmSessions >= 0 else { throw ValidationError("--warm-sessions takes 0 or more") }
        var httpOptions = HTTPServeOptions(
            host: host, port: port, token: token, idleTimeout: .seconds(idleTimeout), maxBodyBytes: maxBodyBytes,
            shutdownGrace: .seconds(shutdownGrace))
        httpOptions.maxSessions = maxSessions
        httpOptions.warmSessions = warmSessions
        httpOptions.maxConnections = maxConnections
        httpOptions.requestTimeout = .seconds(requestTimeout)
        // A --session named on the command line is the operator's too, as it is on stdio.
        let shared = Set(sharedSession + (self.options.session == "default" ? [] : [self.options.session]))
        httpOptions.sharedSessions = shared
        guard httpOptions.isLoopback || token != nil else {
            throw ValidationError(
                "\(host) does not resolve to loopback addresses only, so clients must authenticate: give --token-file FILE or set TOOLHOST_TOKEN")
        }
        bootstrapLogging()
        _ = try Workspace(workspace)  // fail now, not at the first client
        let options = options, workspace = workspace, browserAhead = browserAhead == .on
        let server = ToolHTTPServer(
            options: httpOptions, registry: try makeRegistry(), version: Toolhost.version, logger: Logger(label: "toolhost")
        ) { name in
            try options.openSession(workspace: workspace, name: name, browserAhead: browserAhead)
        } hasSaved: { name in
            options.hasSavedSession(workspace: workspace, name: name)
        }
        for name in shared.sorted() {
            warn("session \(name) is shared: any client that sends 'Toolhost-Session: \(name)' joins its shell")
        }
        let required = token != nil
        try await server.run { port in
            warn("serving MCP at http://\(host.contains(":") ? "[\(host)]" : host):\(port)/mcp for workspace \(workspace)\(required ? " (bearer token required)" : "")")
        }
    }

    private func bootstrapLogging() {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
    }
}
