import ArgumentParser
import Foundation
import Tools

struct ToolsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tools",
        abstract: "Print tools.json: every tool's name, description and JSON-schema parameters.")

    func run() throws {
        FileHandle.standardOutput.write(Data(ToolRegistry.toolsJSON))
    }
}
