import Foundation

/// `glob`: the workspace's files whose paths match a pattern, a page at a time, without what
/// .gitignore ignores.
struct GlobTool: Tool {
    let name = "glob"
    static let defaultLimit = 200

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        let workspace = session.workspace
        let pattern = try arguments.string("pattern").trimmingCharacters(in: .whitespaces)
        guard !pattern.isEmpty else { throw ToolError("the pattern is empty: give one like \"**/*.ts\" or \"src/*.json\"", kind: .usage) }
        let folder = try workspace.searchFolder(arguments.optionalString("path"))
        if let folder, folder.kind != .directory {
            throw ToolError("\(folder.display) is \(folder.kind == .missing ? "missing" : "a file"): give a folder to search in, or leave path out for the whole workspace", kind: .usage)
        }
        let offset = max(1, arguments.int("offset") ?? 1), limit = arguments.int("limit") ?? Self.defaultLimit
        // Like .gitignore and rg -g: a pattern without a slash matches a name at any depth.
        let matcher = PathPattern(pattern.contains("/") ? pattern : "**/" + pattern)
        let base = folder?.relative ?? ""
        var total = 0
        var page: [String] = []
        let complete = workspace.searchableFiles(under: base, includeIgnored: arguments.bool("include_ignored") ?? false) { path in
            if matcher.matches(base.isEmpty ? path : String(path.dropFirst(base.count + 1))) {
                total += 1
                if total >= offset && page.count < limit { page.append(path) }
            }
            return true
        }
        var text = page.joined(separator: "\n")
        let shown = page.isEmpty || page.count == total ? "" : " (\(offset)-\(offset + page.count - 1) shown)"
        text += (text.isEmpty ? "" : "\n\n") + "\(total) file\(total == 1 ? "" : "s") match \(pattern) in \(folder?.display ?? "the workspace")\(shown)."
        let next = offset + page.count <= total && !page.isEmpty ? offset + page.count : nil
        if let next { text += " For more, call glob again with offset=\(next)." }
        if total == 0 { text += " Paths are relative to the searched folder; .gitignore'd files are left out unless include_ignored is true." }
        if !complete { text += " The search stopped after \(Workspace.searchEntryLimit) entries: narrow it with path." }
        return .text(text, structured: [
            "files": .array(page.map(JSONValue.string)), "total": .int(total), "offset": .int(offset),
            "next_offset": next.map(JSONValue.int) ?? .null, "complete": .bool(complete),
        ])
    }
}
