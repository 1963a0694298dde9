import Foundation
import Sandbox

/// `execute`: runs a bash command in the session's shell state (cwd and exports persist).
struct ExecuteTool: Tool {
    let name = "execute"
    let changesWorkspace = true
    /// The descriptor on which the wrapper reports the final state; the command's output never goes there.
    static let statusFD: Int32 = 3

    /// Runs the command, then (from an EXIT trap, so `exit 3` reports too) writes a marker, the exit
    /// code and the final directory, NUL-separated, and `export -p` to the status descriptor. Only
    /// the last report counts, so stray writes to fd 3 cannot stand in for it. `export -p` is a
    /// builtin: the report forks nothing and costs a tenth of a millisecond. One line, so bash's
    /// own errors say "bash: line 1:" as they would for the command alone.
    static let wrapper =
        #"__toolhost_report() { builtin printf '\001toolhost-state\001\0%s\0%s\0' "$?" "$PWD" >&3; builtin export -p >&3; }; "#
        + #"trap __toolhost_report EXIT; __toolhost_cmd=$1; shift; eval "unset __toolhost_cmd; $__toolhost_cmd""#

    /// The background modes were execute's parameters once; they are tools of their own now. A
    /// client with the old schema in strict mode sends them unset (false, "", null): that is fine.
    func normalize(_ arguments: [String: JSONValue]) throws -> [String: JSONValue] {
        var arguments = arguments
        for (old, tool, example) in [("list_background", "list_background", "{}"), ("stop_background", "stop_background", "{\"id\": \"bg-1\"}")] {
            guard let value = arguments.removeValue(forKey: old) else { continue }
            if [.null, .bool(false), .string("")].contains(value) { continue }
            throw ToolError("\(old) is a tool of its own now, not a parameter of execute: call \(tool) \(example)", kind: .usage)
        }
        return arguments
    }

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        let command = try arguments.string("command")
        guard !command.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ToolError("command is empty: give a bash command line, e.g. \"ls -la\"", kind: .usage)
        }
        let (cwd, cwdNote) = await startDirectory(session)
        let environment = await session.environment
        if arguments.bool("background") == true {
            return try await startBackground(command, cwd: cwd, environment: environment, session: session)
        }

        let timeout = arguments.int("timeout_seconds") ?? session.runner.defaultTimeoutSeconds
        let spill = await session.newStatePath(kind: "outputs")
        let spec = ProcessSpec(
            executable: "/bin/bash", arguments: ["--noprofile", "--norc", "-c", Self.wrapper, "bash", command],
            environment: environment, workingDirectory: cwd.absolute, timeout: .seconds(timeout),
            outputCap: session.runner.outputCap, spillFile: spill, statusChannelFD: Self.statusFD,
            exitCodeFromStatus: { ShellState($0)?.exitCode })
        let outcome = try await session.runner.run(spec)

        var notes = cwdNote.map { [$0] } ?? []
        let state = ShellState(outcome.status)
        var finalCwd = cwd.relative
        if let state {
            if let inside = session.workspace.relativeToRoot(state.directory) {
                finalCwd = inside
            } else {
                notes.append("the command left the shell in \(state.directory), outside the workspace; the next command starts in \(cwd.display) again")
            }
            try await session.record(cwd: finalCwd, environment: state.environment)
        } else if !outcome.timedOut {
            notes.append("the shell's final state could not be read (did the command replace the EXIT trap or close fd 3?); cwd and exports were not updated")
        }
        let output = Terminal.clean(outcome.head) + Terminal.clean(outcome.tail)
        notes += session.runner.denials(output: output, exitCode: outcome.exitCode, signal: outcome.signal).map { "denied by \($0)" }
        if outcome.exitCode != 0, command.range(of: #"\bgit\s+push\b"#, options: .regularExpression) != nil {
            notes.append("commands have no git credentials or network: push with the git_push tool instead")
        }
        return Self.render(outcome, cwd: finalCwd, root: session.workspace.root, timeout: timeout, spill: spill, notes: notes)
    }

    /// The session's directory, or the root with a note when it no longer exists or lies outside.
    private func startDirectory(_ session: Session) async -> (Workspace.Resolved, String?) {
        let recorded = await session.cwd
        if let resolved = try? session.workspace.resolve(recorded.isEmpty ? "." : recorded), resolved.kind == .directory {
            return (resolved, nil)
        }
        return (session.workspace.resolvedRoot, "the previous directory \(recorded) no longer exists; starting in the workspace root")
    }

    private func startBackground(
        _ command: String, cwd: Workspace.Resolved, environment: [String: String], session: Session
    ) async throws -> ToolResult {
        let log = await session.newStatePath(kind: "background")
        let spec = ProcessSpec(
            executable: "/bin/bash", arguments: ["--noprofile", "--norc", "-c", command],
            environment: environment, workingDirectory: cwd.absolute)
        let process = try session.runner.start(spec, logFile: log)
        // A server that dies at once (port taken, syntax error) should say so now, not on the next call.
        do {
            try await Task.sleep(for: .milliseconds(300))
        } catch {
            process.stop()
            throw error
        }
        // Exited at once means the leader is gone and so is every holder of its output: a leader
        // whose exit was seen while its group still writes is running (under load a check of the
        // leader alone has said "exited" of a pipeline still writing its log).
        if !process.isRunning && process.waitForLog(seconds: 1) {
            process.stop()
            let tail = (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(2000)) } ?? ""
            throw ToolError("the background command exited at once. Its output:\n\(tail)\nLog: \(log)")
        }
        let id = await session.adopt(process, command: command)
        return .text(
            """
            Started \(id) (pid \(process.pid)) in \(cwd.display); it runs until the session ends or stop_background {"id": "\(id)"}. \
            Its output: list_background {}, or `tail -n 50 \(log)`.
            """,
            structured: ["id": .string(id), "pid": .int(Int(process.pid)), "log": .string(log)])
    }

    static func render(
        _ outcome: ProcessOutcome, cwd: String, root: String, timeout: Int, spill: String, notes: [String]
    ) -> ToolResult {
        var notes = notes
        var text = Terminal.clean(outcome.head)
        if outcome.truncated {
            let cut = outcome.totalBytes - outcome.head.count - outcome.tail.count
            let saved = outcome.totalBytes > ProcessOutcome.spillLimit
                ? "the first \(ProcessOutcome.spillLimit >> 20) MiB of the \(outcome.totalBytes) bytes are in \(spill) (saved output stops there)"
                : "all \(outcome.totalBytes) bytes are in \(spill)"
            text += "\n[… \(cut) bytes cut from the middle; \(saved) …]\n"
        }
        text += Terminal.clean(outcome.tail)
        if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
        if outcome.timedOut {
            notes.append("timed out after \(timeout) s: the command and everything it started were killed. For a server, use background: true")
        }
        let seconds = Double(outcome.duration.components.attoseconds) / 1e18 + Double(outcome.duration.components.seconds)
        let exit = outcome.exitCode.map(String.init) ?? "signal \(outcome.signal ?? 0)"
        let cwdShown = cwd.isEmpty ? ". (\(root))" : "\(cwd) (\(root)/\(cwd))"
        text += notes.map { "note: \($0)\n" }.joined()
        // Flags appear only when set; the structured result always has them.
        let flags = (outcome.timedOut ? " | timed_out: true" : "") + (outcome.truncated ? " | truncated: true" : "")
        text += "[exit_code: \(exit) | duration: \(String(format: "%.3f", seconds))s | cwd: \(cwdShown)\(flags)]"
        var structured: [String: JSONValue] = [
            "exit_code": outcome.exitCode.map { .int(Int($0)) } ?? .null,
            "duration_ms": .int(Int(seconds * 1000)), "cwd": .string(cwd.isEmpty ? "." : cwd),
            "timed_out": .bool(outcome.timedOut), "truncated": .bool(outcome.truncated),
            "output_bytes": .int(outcome.totalBytes),
        ]
        if outcome.truncated { structured["full_output"] = .string(spill) }
        if let signal = outcome.signal { structured["signal"] = .int(Int(signal)) }
        return .text(text, structured: .object(structured))
    }
}

/// What the wrapper reported on the status descriptor.
struct ShellState {
    let exitCode: Int32
    let directory: String
    let environment: [String: String]

    static let marker = Array("\u{1}toolhost-state\u{1}\0".utf8)
    /// Set by bash itself; never part of the session's state.
    static let volatile: Set<String> = ["PWD", "OLDPWD", "SHLVL", "_"]

    init?(_ bytes: [UInt8]) {
        guard let start = Self.lastMarker(in: bytes) else { return nil }
        // After the marker: rc NUL, PWD NUL, then `export -p` text.
        let fields = bytes[start...].split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3, let code = Int32(String(decoding: fields[0], as: UTF8.self)) else { return nil }
        exitCode = code
        directory = String(decoding: fields[1], as: UTF8.self)
        guard directory.hasPrefix("/") else { return nil }
        environment = ExportParser.parse(Array(fields[2])).filter { !Self.volatile.contains($0.key) }
    }

    /// Where the fields after the last marker begin.
    private static func lastMarker(in bytes: [UInt8]) -> Int? {
        guard bytes.count >= marker.count else { return nil }
        for start in stride(from: bytes.count - marker.count, through: 0, by: -1)
        where bytes[start] == marker[0] && bytes[start..<(start + marker.count)].elementsEqual(marker) {
            return start + marker.count
        }
        return nil
    }
}

/// Reads bash's `export -p`: one `declare -FLAGS NAME[=VALUE]` per line, the value in double
/// quotes (with \\ \" \$ \` escaped) or, when it holds control or non-ASCII bytes, in $'...'.
/// Arrays and names exported without a value are skipped: they never reach a child's environment.
enum ExportParser {
    static func parse(_ text: [UInt8]) -> [String: String] {
        var result: [String: String] = [:]
        var index = 0
        let prefix = Array("declare -".utf8)
        while index < text.count {
            guard text[index...].starts(with: prefix) else {
                skipLine(text, &index)
                continue
            }
            index += prefix.count
            let flagsStart = index
            while index < text.count, text[index] != 0x20 { index += 1 }
            let flags = text[flagsStart..<index]
            index += 1
            let nameStart = index
            while index < text.count, text[index] != 0x3D, text[index] != 0x0A { index += 1 }
            let name = String(decoding: text[nameStart..<min(index, text.count)], as: UTF8.self)
            guard index < text.count, text[index] == 0x3D else {
                index += 1
                continue
            }
            index += 1
            let value: [UInt8]
            if text[index...].starts(with: [0x24, 0x27]) {  // $'...'
                index += 2
                value = ansiC(text, &index)
            } else if index < text.count, text[index] == 0x22 {  // "..."
                index += 1
                value = doubleQuoted(text, &index)
            } else {
                skipLine(text, &index)
                continue
            }
            skipLine(text, &index)
            if !flags.contains(UInt8(ascii: "a")) && !flags.contains(UInt8(ascii: "A")) {
                result[name] = String(decoding: value, as: UTF8.self)
            }
        }
        return result
    }

    private static func skipLine(_ text: [UInt8], _ index: inout Int) {
        while index < text.count, text[index] != 0x0A { index += 1 }
        index += 1
    }

    private static func doubleQuoted(_ text: [UInt8], _ index: inout Int) -> [UInt8] {
        var value: [UInt8] = []
        while index < text.count, text[index] != 0x22 {
            if text[index] == 0x5C, index + 1 < text.count, [0x5C, 0x22, 0x24, 0x60].contains(text[index + 1]) {
                index += 1
            }
            value.append(text[index])
            index += 1
        }
        index += 1
        return value
    }

    private static func ansiC(_ text: [UInt8], _ index: inout Int) -> [UInt8] {
        let simple: [UInt8: UInt8] = [
            UInt8(ascii: "a"): 7, UInt8(ascii: "b"): 8, UInt8(ascii: "e"): 27, UInt8(ascii: "E"): 27,
            UInt8(ascii: "f"): 12, UInt8(ascii: "n"): 10, UInt8(ascii: "r"): 13, UInt8(ascii: "t"): 9,
            UInt8(ascii: "v"): 11, 0x5C: 0x5C, 0x27: 0x27, 0x22: 0x22, UInt8(ascii: "?"): UInt8(ascii: "?"),
        ]
        var value: [UInt8] = []
        while index < text.count, text[index] != 0x27 {
            guard text[index] == 0x5C, index + 1 < text.count else {
                value.append(text[index])
                index += 1
                continue
            }
            let escape = text[index + 1]
            index += 2
            if let byte = simple[escape] {
                value.append(byte)
            } else if (0x30...0x37).contains(escape) {  // \NNN octal
                var number = Int(escape - 0x30)
                var digits = 1
                while digits < 3, index < text.count, (0x30...0x37).contains(text[index]) {
                    number = number * 8 + Int(text[index] - 0x30)
                    index += 1
                    digits += 1
                }
                value.append(UInt8(truncatingIfNeeded: number))
            } else if escape == UInt8(ascii: "x") {  // \xHH
                var number = 0
                var digits = 0
                while digits < 2, index < text.count, let digit = hexValue(text[index]) {
                    number = number * 16 + digit
                    index += 1
                    digits += 1
                }
                value.append(UInt8(number))
            } else {
                value += [0x5C, escape]
            }
        }
        index += 1
        return value
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: Int(byte - 0x30)
        case 0x61...0x66: Int(byte - 0x61 + 10)
        case 0x41...0x46: Int(byte - 0x41 + 10)
        default: nil
        }
    }
}
