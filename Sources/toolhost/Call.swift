import ArgumentParser
import Foundation
import Tools

struct Call: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "call",
        abstract: "Call one tool and print its result.",
        discussion: """
            Exit status: 0 when the tool succeeded, 1 when it reported an error, 2 on usage errors \
            (unknown tool, arguments that are not JSON or do not fit the tool's schema).

            Examples:
              toolhost call execute '{"command":"cd src && pwd"}' --workspace ~/project
              toolhost call execute '{"command":"pwd"}' --workspace ~/project     # still in src
              echo '{"path":"README.md"}' | toolhost call read_file - --workspace ~/project
            """)

    @Argument(help: "The tool's name (see `toolhost tools`).")
    var tool: String

    @Argument(help: "The arguments as one JSON object, or - to read them from stdin.")
    var arguments: String = "{}"

    @Option(help: "The folder the tools may touch.")
    var workspace: String

    @OptionGroup var options: SessionOptions

    func run() async throws {
        Signals.killChildrenOnExit()
        let registry = try makeRegistry()
        let session = try options.openSession(workspace: workspace)
        let json = arguments == "-" ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) : arguments
        let result = await registry.call(tool, argumentsJSON: json, session: session)
        await session.close()
        for item in result.content {
            switch item {
            case .text(let text): print(text)
            case .image(let data, let mimeType): print("[image: \(mimeType), \(data.count) bytes]")
            }
        }
        switch result.error {
        case nil: return
        case .failure: throw ExitCode(1)
        case .usage: throw ExitCode(2)
        }
    }
}
