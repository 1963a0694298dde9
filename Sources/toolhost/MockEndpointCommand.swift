import ArgumentParser
import Foundation
import MockEndpoint

struct MockEndpointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mock-endpoint",
        abstract: "Serve a scripted model over the OpenAI and Anthropic wire formats (a test double for models).",
        discussion: """
            Each chat request takes the next turn of the script: its expectations are checked (a miss \
            is answered with HTTP 400 naming it), then it answers with its reply (text, tool calls, \
            usage), streaming or not as the request asks, or with its fault (an HTTP status, a cut \
            stream, garbage). Paths: /v1/chat/completions, /v1/messages, /v1/models.

            The first line on stdout is the endpoint it listens at, as --endpoint takes it: \
            http://HOST:PORT (useful with --port 0), or unix:PATH with --unix-socket.

            Script (YAML or JSON):
              model: mock-coder
              api_key: sk-test            # optional: requests must carry it
              match: false                # true: each request takes the first turn it matches
              context_size: 8192          # optional: /props reports it; a longer prompt (body bytes / 4) gets llama-server's 400
              turns:
                - expect: {tools_include: [write_file], last_message_contains: "hello"}
                  reply:
                    text: "Writing it."
                    tool_calls: [{name: write_file, arguments: {path: hello.txt, content: "hi"}}]
                    usage: {prompt_tokens: 120, completion_tokens: 30}
                    chunk_size: 5             # characters per streamed delta (default 16)
                - expect: {tool_results_contain: "Created"}
                  reply: {text: "Done."}
                - fault: {status: 500, body: '{"error":{"message":"busy"}}'}   # or cut: true, garbage: "…"
                  delay_ms: 100

            expect: last_message_contains, tool_results_contain, any_message_contains, \
            system_contains, tools_include, stream, tool_choice (auto, none, required or a \
            tool name), message_count. A tool call's arguments_json gives the arguments as raw \
            text (broken JSON included). Every request is also checked as a real server would: \
            tool results must answer calls that were made, and Anthropic roles must alternate.

            Scripts live in fixtures/endpoints/; personas of model families (native, Hermes, \
            Qwen3-Coder XML, Mistral, Llama 3 JSON, Devstral-like, broken JSON) in \
            fixtures/endpoints/personas/.
            """)

    @Option(help: "The script file.")
    var script: String

    @Option(help: "Port to listen on (0: any free port).")
    var port: Int = 8080

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "Listen on a unix socket at this path instead of a TCP port (reach it with --endpoint unix:PATH).")
    var unixSocket: String?

    @Option(help: ArgumentHelp("Save each chat request's body in this folder (request-001.json on), to measure or inspect what a client sent.", valueName: "dir"))
    var record: String?

    func validate() throws {
        if let unixSocket, !unixSocket.hasPrefix("/") {
            throw ValidationError("--unix-socket needs an absolute path, got '\(unixSocket)'.")
        }
        if let record {
            var folder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: record, isDirectory: &folder), folder.boolValue else {
                throw ValidationError("--record: \(record) is not a folder; create it first.")
            }
        }
    }

    func run() async throws {
        let loaded: MockScript
        do {
            loaded = try MockScript.load(path: script)
        } catch {
            throw ValidationError("\(error)")
        }
        let address: MockServer.Address = unixSocket.map { .unixSocket($0) } ?? .tcp(host: host, port: port)
        try await MockServer(script: loaded, address: address, record: record).run { endpoint in
            FileHandle.standardOutput.write(Data("\(endpoint)\n".utf8))
            FileHandle.standardError.write(Data("mock-endpoint: serving \(loaded.name) (\(loaded.turns.count) turns) at \(endpoint)\n".utf8))
        }
    }
}
