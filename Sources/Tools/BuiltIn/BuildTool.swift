import Foundation
import Sandbox

/// `build`: runs an npm script in the sandbox and answers with diagnostics, hints, and whether
/// the errors are the same as last time, instead of a wall of log.
struct BuildTool: Tool {
    let name = "build"
    let changesWorkspace = true
    static let shownDiagnostics = 10
    static let tailLines = 12
    /// Output beyond this is not parsed (the log keeps it all).
    static let parseLimit = 4 << 20

    /// `npm run build` (or `npm run-script`, `yarn`, `pnpm run` …) as the script is the script `build`.
    func repair(_ arguments: [String: JSONValue]) -> (arguments: [String: JSONValue], repairs: [String]) {
        guard let given = arguments["script"]?.stringValue,
            let match = given.wholeMatch(of: #/\s*(?:npm|pnpm|yarn|bun)\s+(?:run(?:-script)?\s+)?([^\s;&|]+)\s*/#)
        else { return (arguments, []) }
        var repaired = arguments
        repaired["script"] = .string(String(match.output.1))
        return (repaired, ["read script '\(given)' as the script '\(match.output.1)'"])
    }

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        let script = arguments.optionalString("script") ?? "build"
        let folder = try session.workspace.resolve(arguments.optionalString("directory") ?? ".")
        guard folder.kind == .directory else {
            throw ToolError("directory \(folder.display) is not a folder of the workspace", kind: .usage)
        }
        let scripts = try Self.scripts(in: folder, workspace: session.workspace)
        guard scripts[script] != nil else {
            throw ToolError(
                "package.json in \(folder.display) has no script '\(script)'. Its scripts: \(scripts.keys.sorted().map { "\($0) (\(scripts[$0]!))" }.joined(separator: "; ")).",
                kind: .usage)
        }

        let log = await session.newStatePath(kind: "outputs", suffix: "build.log")
        let runner = try await session.runner(profile: "build")
        let spec = ProcessSpec(
            executable: "/usr/bin/env", arguments: ["npm", "run", script], environment: await session.environment,
            workingDirectory: folder.absolute, timeout: .seconds(runner.defaultTimeoutSeconds),
            outputCap: OutputCap(head: 64 << 10, tail: 64 << 10), spillFile: log)
        let outcome = try await runner.run(spec)
        let output = try Self.fullOutput(outcome, log: log)
        let passed = outcome.exitCode == 0 && !outcome.timedOut

        let hints = BuildHints(workspace: session.workspace, project: folder.relative)
        let diagnostics = BuildOutput.diagnostics(in: output, project: folder.absolute).map(hints.annotate)
        let errors = diagnostics.filter { $0.severity == "error" }
        let (attempt, sameAs) = await session.recordBuild(passed: passed, fingerprint: BuildOutput.fingerprint(diagnostics))
        let seconds = Double(outcome.duration.components.seconds) + Double(outcome.duration.components.attoseconds) / 1e18

        var text = "\(passed ? "PASSED" : "FAILED") in \(String(format: "%.1f", seconds)) s: npm run \(script) in \(folder.display) (attempt \(attempt))"
        text += passed ? ".\n" : ", \(counted(errors.count, "error")).\n"
        if outcome.timedOut {
            text += "Timed out after \(runner.defaultTimeoutSeconds) s: the build and everything it started were killed.\n"
        }
        if let sameAs {
            text += "The same \(counted(errors.count, "error")) as the previous build (first seen at attempt \(sameAs)): the last change did not fix them. Read the hints below before trying again.\n"
        }
        if !passed, let checkpoint = await session.passingCheckpoint {
            text += "An earlier build passed: undo {\"to\": \(checkpoint)} puts the workspace back as it was then (checkpoints lists what changed since).\n"
        }
        for diagnostic in diagnostics.prefix(Self.shownDiagnostics) {
            text += diagnostic.line1 + "\n"
            if let hint = diagnostic.hint { text += "  hint: \(hint)\n" }
        }
        // The log is named when the answer leaves something out; otherwise it is only in the structured result.
        if diagnostics.count > Self.shownDiagnostics {
            text += "… and \(diagnostics.count - Self.shownDiagnostics) more in the full log: \(log)\n"
        } else if !passed && diagnostics.isEmpty || outcome.timedOut {
            let tail = Terminal.clean(Array(output.utf8)).split(separator: "\n").suffix(Self.tailLines)
            text += "Output tail:\n" + tail.map { "  \($0)" }.joined(separator: "\n") + "\nFull log: \(log)\n"
        }
        let structured: JSONValue = [
            "passed": .bool(passed), "exit_code": outcome.exitCode.map { .int(Int($0)) } ?? .null,
            "duration_ms": .int(Int(seconds * 1000)), "attempt": .int(attempt), "same_as_attempt": sameAs.map { .int($0) } ?? .null,
            "errors": .int(errors.count), "diagnostics": .array(diagnostics.map(\.json)), "log": .string(log),
            "timed_out": .bool(outcome.timedOut),
        ]
        return ToolResult(content: [.text(text)], structured: structured)
    }

    /// The scripts of the folder's package.json, or an error naming the folders that have one.
    static func scripts(in folder: Workspace.Resolved, workspace: Workspace) throws -> [String: String] {
        guard let text = workspace.text(of: folder.relative.isEmpty ? "package.json" : folder.relative + "/package.json") else {
            let nearby = packageFolders(in: workspace)
            throw ToolError(
                "there is no package.json in \(folder.display). "
                    + (nearby.isEmpty ? "No folder of the workspace has one." : "Folders with one: \(nearby.joined(separator: ", ")); pass one as directory."),
                kind: .usage)
        }
        let json = try? JSONValue.parse(text)
        return (json?["scripts"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
    }

    /// Folders (two levels deep at most) that hold a package.json, outside node_modules.
    static func packageFolders(in workspace: Workspace) -> [String] {
        var found: [String] = []
        for first in workspace.entries(of: "") ?? [] where first != "node_modules" && !first.hasPrefix(".") {
            if (try? workspace.resolve("\(first)/package.json"))?.kind == .file { found.append(first) }
        }
        return found
    }

    /// Everything the build printed: the spill file when the output outgrew the cap, else head and tail.
    static func fullOutput(_ outcome: ProcessOutcome, log: String) throws -> String {
        if outcome.truncated, let handle = FileHandle(forReadingAtPath: log) {
            defer { try? handle.close() }
            return String(decoding: try handle.read(upToCount: parseLimit) ?? Data(), as: UTF8.self)
        }
        let bytes = outcome.head + outcome.tail
        try Data(bytes).write(to: URL(fileURLWithPath: log))
        return String(decoding: bytes, as: UTF8.self)
    }
}
