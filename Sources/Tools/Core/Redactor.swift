import Egress
import Foundation
import Sandbox

/// Replaces host secrets with `[redacted]`: every value of a variable the clean environment treats
/// as secret, and of any variable named outright (an API key's `--api-key-env`), in each of its
/// encoded forms (see `SecretForms`), whatever a tool
/// result or a log line holds. A command cannot see them, but a file it planted or a server's echo
/// may still carry one.
public struct Redactor: Sendable {
    public let secrets: [String]

    public init(environment: [String: String], named: [String] = []) {
        // Short values would redact common words; real keys and tokens are long. Each value goes
        // in every form a server's echo or a file may hold it: raw, hex, percent-encoded, base64.
        let values = environment.filter { name, value in
            (CleanEnvironment.looksSecret(name) || named.contains(name)) && value.count >= 8
        }.map(\.value)
        secrets = Array(Set(values.flatMap(SecretForms.of))).sorted { $0.count > $1.count }
    }

    /// The text with every secret replaced, and how many replacements that took.
    public func redact(_ text: String) -> (text: String, count: Int) {
        var count = 0
        let redacted = secrets.reduce(text) { text, secret in
            let parts = text.components(separatedBy: secret)
            count += parts.count - 1
            return parts.count == 1 ? text : parts.joined(separator: "[redacted]")
        }
        return (redacted, count)
    }

    /// A tool result with every secret replaced in its text and its structured content.
    func redact(_ result: ToolResult) -> ToolResult {
        guard !secrets.isEmpty else { return result }
        var result = result
        var count = 0
        result.content = result.content.map { part in
            guard case .text(let text) = part else { return part }
            let (clean, found) = redact(text)
            count += found
            return .text(clean)
        }
        if let structured = result.structured {
            let (clean, found) = redact(structured.jsonText)
            if found > 0, let parsed = try? JSONValue.parse(clean) { result.structured = parsed }
        }
        result.redactions += count
        return result
    }
}
