import ArgumentParser
import Foundation
import Tools

struct ToolsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tools",
        abstract: "Print tools.json: every tool's name, description and JSON-schema parameters.",
        discussion: "--schemas compact prints what `toolhost run` sends a model by default instead (tools-compact.json).")

    @Option(help: ArgumentHelp("full (tools.json, what MCP clients get) or compact (what run sends).", valueName: "style"))
    var schemas: SchemaStyle = .full

    func run() throws {
        FileHandle.standardOutput.write(Data(schemas == .full ? ToolRegistry.toolsJSON : ToolRegistry.compactJSON))
    }
}
