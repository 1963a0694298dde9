public import Foundation
import Synchronization

/// Progress on stderr: on a terminal, one line that updates in place (turn, tool calls, tokens,
/// tokens/s, what is running); otherwise plain lines, one per step, for logs.
public final class Progress: Sendable {
    private let terminal: Bool
    private let enabled: Bool
    private let state = Mutex(State())

    private struct State {
        var turn = 0
        var toolCalls = 0
        var tokens = 0
        var rate: Double?
        var activity = ""
        var lastDraw = ContinuousClock.now - .seconds(1)
    }

    public init(enabled: Bool = true, terminal: Bool = isatty(STDERR_FILENO) == 1) {
        self.enabled = enabled
        self.terminal = terminal
    }

    /// New counts and what is happening now. Plain output prints only when `log` is set.
    public func update(turn: Int? = nil, toolCalls: Int? = nil, tokens: Int? = nil, rate: Double? = nil, activity: String, log: String? = nil) {
        guard enabled else { return }
        let line: String? = state.withLock { state in
            if let turn { state.turn = turn }
            if let toolCalls { state.toolCalls = toolCalls }
            if let tokens { state.tokens = tokens }
            if let rate { state.rate = rate }
            state.activity = activity
            guard terminal else { return nil }
            // Streaming text redraws at most ten times a second.
            let now = ContinuousClock.now
            guard log != nil || now - state.lastDraw >= .milliseconds(100) else { return nil }
            state.lastDraw = now
            var text = "turn \(state.turn) · \(state.toolCalls) tool calls · \(state.tokens) tokens"
            if let rate = state.rate { text += " · \(Int(rate.rounded())) tok/s" }
            text += " · \(state.activity)"
            let width = max(40, Int(ProcessInfo.processInfo.environment["COLUMNS"] ?? "") ?? 100)
            return "\r\u{1B}[2K" + String(text.prefix(width - 1))
        }
        if let line { emit(line) } else if let log, !terminal { emit("toolhost: \(log)\n") }
    }

    /// A line that stays (a note, an error), above the status line.
    public func say(_ text: String) {
        guard enabled else { return }
        emit((terminal ? "\r\u{1B}[2K" : "") + "toolhost: \(text)\n")
    }

    /// Clears the status line at the end of a run.
    public func finish() {
        if enabled && terminal { emit("\r\u{1B}[2K") }
    }

    private func emit(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}

