import Foundation
public import JSONCore
import SystemPackage
public import Tools

/// transcript.jsonl: one event per line, each written with a single write(2) as it happens, so a
/// crash leaves every earlier line whole. Secrets (the API key) are replaced before anything is written.
public final class Transcript: Sendable {
    private let descriptor: Int32
    private let redactor: Redactor
    private let started: ContinuousClock.Instant
    public let path: String

    public init(path: String, redactor: Redactor) throws {
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw TaskError("cannot write the transcript \(path): \(String(cString: strerror(errno)))")
        }
        self.path = path
        self.redactor = redactor
        started = .now
    }

    deinit { close(descriptor) }

    /// Seconds since the transcript opened.
    public var elapsed: Double {
        let duration = ContinuousClock.now - started
        return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Appends `{"t":…,"event":NAME,…fields}`.
    public func record(_ event: String, _ fields: [String: JSONValue] = [:]) {
        let rest = JSONValue.object(fields).jsonText.dropFirst()
        var line = #"{"t":\#(String(format: "%.3f", elapsed)),"event":\#(JSONValue.string(event).jsonText)"#
        line += rest == "}" ? "}" : "," + rest
        let bytes = Array((redact(line) + "\n").utf8)
        _ = try? FileDescriptor(rawValue: descriptor).writeAll(bytes)
    }

    /// The text with every secret replaced.
    public func redact(_ text: String) -> String {
        redactor.redact(text).text
    }

    /// The text with every secret replaced, and how many replacements that took.
    public func redactCounting(_ text: String) -> (text: String, count: Int) {
        redactor.redact(text)
    }
}
