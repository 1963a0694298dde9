import Foundation
import Sandbox

/// `execute`: runs a bash command in the session's shell state (cwd and exports persist).
struct ExecuteTool: Tool {
    let name = "execute"
    /// The descriptor on which the wrapper reports the final state; the command's output never goes there.
    static let statusFD: Int32 = 3

    /// Runs the command, then (from an EXIT trap, so `exit 3` reports too) writes a marker, the exit
    /// code, the final directory and every exported variable to the status descriptor, NUL-separated.
    /// Only the last report counts, so stray writes to fd 3 cannot stand in for it. Variable names
    /// come from `${!X*}` for every first character, so the report forks no subshell.
    static let wrapper = #"""
        __toolhost_report() {
          local __rc=$? __n __out=()
          for __n in ${!A*} ${!B*} ${!C*} ${!D*} ${!E*} ${!F*} ${!G*} ${!H*} ${!I*} ${!J*} ${!K*} ${!L*} ${!M*} ${!N*} ${!O*} ${!P*} ${!Q*} ${!R*} ${!S*} ${!T*} ${!U*} ${!V*} ${!W*} ${!X*} ${!Y*} ${!Z*} ${!a*} ${!b*} ${!c*} ${!d*} ${!e*} ${!f*} ${!g*} ${!h*} ${!i*} ${!j*} ${!k*} ${!l*} ${!m*} ${!n*} ${!o*} ${!p*} ${!q*} ${!r*} ${!s*} ${!t*} ${!u*} ${!v*} ${!w*} ${!x*} ${!y*} ${!z*} ${!_*}; do
            case "$__n" in PWD|OLDPWD|SHLVL|_|__rc|__n|__out) continue ;; esac
            [[ ${!__n@a} == *x* ]] && __out+=("$__n=${!__n}")
          done
          builtin printf '\001toolhost-state\001\0%s\0%s\0' "$__rc" "$PWD" >&3
          builtin printf '%s\0' "${__out[@]}" >&3
        }
        trap __toolhost_report EXIT
        __toolhost_cmd=$1
        shift
        eval "unset __toolhost_cmd; $__toolhost_cmd"
        """#

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
            executable: "/bin/bash", arguments: ["--noprofile", "--norc", "-c", Self.wrapper, "toolhost", command],
            environment: environment, workingDirectory: cwd.absolute, timeout: .seconds(timeout),
            outputCap: session.runner.outputCap, spillFile: spill, statusChannelFD: Self.statusFD)
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
        return Self.render(outcome, cwd: finalCwd, root: session.workspace.root, timeout: timeout, spill: spill, notes: notes)
    }

    /// The session's directory, or the root with a note when it no longer exists or lies outside.
    private func startDirectory(_ session: Session) async -> (Workspace.Resolved, String?) {
        let recorded = await session.cwd
        if let resolved = try? session.workspace.resolve(recorded.isEmpty ? "." : recorded), resolved.kind == .directory {
            return (resolved, nil)
        }
        let root = Workspace.Resolved(absolute: session.workspace.root, relative: "", kind: .directory)
        return (root, "the previous directory \(recorded) no longer exists; starting in the workspace root")
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
        try await Task.sleep(for: .milliseconds(300))
        if !process.isRunning {
            process.stop()
            let tail = (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(2000)) } ?? ""
            throw ToolError("the background command exited at once. Its output:\n\(tail)\nLog: \(log)")
        }
        let id = await session.adopt(process)
        return .text(
            """
            Started \(id) (pid \(process.pid)) in \(cwd.display). It runs until the session ends.
            Its output goes to \(log): read it with execute, e.g. `tail -n 50 \(log)`.
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
            text += "\n[… \(cut) bytes cut from the middle; all \(outcome.totalBytes) bytes are in \(spill) …]\n"
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
        text += "[exit_code: \(exit) | duration: \(String(format: "%.3f", seconds))s | cwd: \(cwdShown) | timed_out: \(outcome.timedOut) | truncated: \(outcome.truncated)]"
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
    let directory: String
    let environment: [String: String]

    static let marker = Array("\u{1}toolhost-state\u{1}\0".utf8)

    init?(_ bytes: [UInt8]) {
        guard let start = Self.lastMarker(in: bytes) else { return nil }
        let fields = bytes[start...].split(separator: 0, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        // After the marker: rc, PWD, then NAME=VALUE fields, each ending with a NUL.
        guard fields.count >= 3, Int32(fields[0]) != nil, fields[1].hasPrefix("/") else { return nil }
        directory = fields[1]
        var environment: [String: String] = [:]
        for field in fields.dropFirst(2) {
            guard let eq = field.firstIndex(of: "=") else { continue }
            environment[String(field[..<eq])] = String(field[field.index(after: eq)...])
        }
        self.environment = environment
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
