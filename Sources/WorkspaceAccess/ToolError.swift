/// Why a call failed: the caller's words were off (usage) or the tool ran and failed (failure).
public enum ToolErrorKind: Sendable, Equatable {
    case usage
    case failure
}

/// A tool's failure, worded for the model: what went wrong and what to do next. It lives here,
/// below the tools, because the workspace's own refusals (a path outside, a file that changed
/// during the call) are such failures and reach the model as they are.
public struct ToolError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let kind: ToolErrorKind

    public init(_ message: String, kind: ToolErrorKind = .failure) {
        self.message = message
        self.kind = kind
    }

    public var description: String { message }
}
