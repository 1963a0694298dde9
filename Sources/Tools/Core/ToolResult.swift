public import Foundation

/// What a tool hands back to the model, whichever front door asked.
public struct ToolResult: Sendable {
    public enum Content: Sendable, Equatable {
        case text(String)
        case image(Data, mimeType: String)
    }

    /// Why a call failed (defined beside `ToolError`, which the workspace throws too).
    public typealias ErrorKind = ToolErrorKind

    public var content: [Content]
    /// Machine-readable facts (exit code, cwd, counts) for clients that take structured results.
    public var structured: JSONValue?
    public var error: ErrorKind?
    /// Host secrets replaced by `[redacted]` before the result left toolhost.
    public var redactions = 0

    public var isError: Bool { error != nil }

    public init(content: [Content], structured: JSONValue? = nil, error: ErrorKind? = nil) {
        self.content = content
        self.structured = structured
        self.error = error
    }

    public static func text(_ text: String, structured: JSONValue? = nil) -> ToolResult {
        ToolResult(content: [.text(text)], structured: structured)
    }

    public static func failure(_ message: String, kind: ErrorKind = .failure) -> ToolResult {
        ToolResult(content: [.text("Error: \(message)")], error: kind)
    }

    /// The structured result as MCP clients get it, complete on its own: the tool's facts plus
    /// `text`, the very text the model reads, so a client that prefers structured content loses
    /// nothing (the file text, the command output). Matches the tool's outputSchema. Nil for errors,
    /// which carry their message as text only.
    public var structuredContent: JSONValue? {
        guard !isError else { return nil }
        var object = structured?.objectValue ?? [:]
        object["text"] = .string(text)
        return .object(object)
    }

    /// All text content joined, as `toolhost call` prints it.
    public var text: String {
        content.compactMap { if case .text(let t) = $0 { t } else { nil } }.joined(separator: "\n")
    }
}
