import Foundation

/// `edit_file`: exact-match replacement, refusing zero or ambiguous matches with where they are.
struct EditFileTool: Tool {
    let name = "edit_file"
    let changesWorkspace = true
    static let maxBytes = 10 << 20

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        let workspace = session.workspace
        let resolved = try workspace.resolve(try arguments.string("path"), for: .write)
        switch resolved.kind {
        case .missing: throw FileAccess.missing(resolved, in: workspace)
        case .directory: throw ToolError(ReadFileTool.directoryMessage(resolved, in: workspace))
        case .file: break
        }
        let old = try arguments.string("old_string")
        let new = try arguments.string("new_string")
        let replaceAll = arguments.bool("replace_all") ?? false
        guard !old.isEmpty else {
            throw ToolError("old_string is empty: give the exact text to replace (to create a file, use write_file)", kind: .usage)
        }
        guard old != new else { throw ToolError("old_string and new_string are the same: nothing would change", kind: .usage) }

        let data = try workspace.readWhole(resolved, limit: Self.maxBytes)
        guard let text = String(validating: data, as: UTF8.self) else {
            throw ToolError("\(resolved.display) is not valid UTF-8 text; edit it with execute instead, so no bytes are lost")
        }
        let matches = Self.occurrences(of: old, in: text)
        if matches.isEmpty { throw ToolError(Self.noMatchMessage(old, text: text, display: resolved.display)) }
        let lines = matches.map { Self.lineNumber(of: $0.lowerBound, in: text) }
        if matches.count > 1 && !replaceAll {
            throw ToolError(
                "old_string occurs \(matches.count) times in \(resolved.display) (lines \(lines.map(String.init).joined(separator: ", "))). Include more surrounding lines to make it unique, or set replace_all: true.")
        }
        var updated = text
        for range in matches.reversed() { updated.replaceSubrange(range, with: new) }
        try workspace.writeAtomically(UTF8Bytes(text: updated), to: resolved)

        let firstLine = lines[0]
        let newLineCount = new.split(separator: "\n", omittingEmptySubsequences: false).count
        let snippet = Self.snippet(of: updated, around: firstLine, span: newLineCount)
        let count = matches.count == 1 ? "1 occurrence" : "\(matches.count) occurrences"
        return .text(
            "Replaced \(count) in \(resolved.display) (line\(lines.count > 1 ? "s" : "") \(lines.map(String.init).joined(separator: ", "))). Now:\n\(snippet)",
            structured: ["path": .string(resolved.display), "replacements": .int(matches.count), "lines": .array(lines.map { .int($0) })])
    }

    /// Non-overlapping ranges of `needle`, first to last.
    static func occurrences(of needle: String, in text: String) -> [Range<String.Index>] {
        var found: [Range<String.Index>] = []
        var searchStart = text.startIndex
        while let range = text.range(of: needle, range: searchStart..<text.endIndex) {
            found.append(range)
            searchStart = range.upperBound
        }
        return found
    }

    static func lineNumber(of index: String.Index, in text: String) -> Int {
        text.utf8[..<index].reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
    }

    /// Why nothing matched, with the likeliest cause.
    static func noMatchMessage(_ old: String, text: String, display: String) -> String {
        var message = "old_string was not found in \(display)."
        let oldLines = old.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        if old.split(separator: "\n").contains(where: { $0.range(of: #"^\s*\d+\t"#, options: .regularExpression) != nil }) {
            message += " It seems to contain read_file's line-number prefixes: copy the text after the tab only."
        } else if let line = firstLooseMatch(oldLines, in: text) {
            message += " Text that differs only in indentation or spacing starts at line \(line): copy it exactly from read_file."
        } else {
            message += " Read the file again (it may have changed) and copy old_string exactly, including whitespace."
        }
        return message
    }

    /// The line where `wanted` matches when leading and trailing spaces are ignored.
    private static func firstLooseMatch(_ wanted: [String], in text: String) -> Int? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !wanted.isEmpty, wanted.count <= lines.count else { return nil }
        for start in 0...(lines.count - wanted.count) where lines[start] == wanted[0] {
            if Array(lines[start..<(start + wanted.count)]) == wanted { return start + 1 }
        }
        return nil
    }

    /// The changed lines with two lines of context, numbered like read_file. A long replacement
    /// shows only its first and last three lines: the model wrote the middle itself, and the joins
    /// are where an edit goes wrong.
    static func snippet(of text: String, around line: Int, span: Int) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if text.hasSuffix("\n") { lines.removeLast() }
        let first = max(1, line - 2)
        let last = min(lines.count, line + span + 1)
        guard first <= last else { return "" }
        let elided = span > 8 ? (line + 3)..<(line + span - 3) : 0..<0
        var shown: [String] = []
        for number in first...last {
            if elided.contains(number) {
                if number == elided.lowerBound { shown.append("   ...\t(\(elided.count) more lines, as you wrote them)") }
                continue
            }
            shown.append("\(String(repeating: " ", count: max(0, 6 - String(number).count)))\(number)\t\(lines[number - 1])")
        }
        return shown.joined(separator: "\n")
    }
}
