import Foundation

/// `grep`: lines of the workspace's files that match a regular expression (or a fixed string),
/// grouped by file, a page at a time, without what .gitignore ignores or binary files.
struct GrepTool: Tool {
    let name = "grep"
    static let defaultLimit = 100
    /// A longer line is shown as a window around its match.
    static let lineWidth = 200
    /// Bigger files are skipped (and counted): they are data or bundles, not source.
    static let fileLimit = 8 << 20

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        let workspace = session.workspace
        let pattern = try arguments.string("pattern")
        guard !pattern.isEmpty else { throw ToolError("the pattern is empty: give a regular expression such as \"getAllPosts\\\\(\"", kind: .usage) }
        let ignoreCase = arguments.bool("case_insensitive") ?? false
        let matcher = try LineMatcher(pattern, fixed: arguments.bool("fixed_strings") ?? false, ignoreCase: ignoreCase)
        let folder = try workspace.searchFolder(arguments.optionalString("path"))
        if folder?.kind == .missing { throw ToolError("\(folder!.display) does not exist: give a folder or file inside the workspace, or leave path out", kind: .usage) }
        let filter = arguments.optionalString("glob").flatMap { $0.isEmpty ? nil : $0 }.map { PathPattern($0.contains("/") ? $0 : "**/" + $0) }
        let offset = max(1, arguments.int("offset") ?? 1), limit = arguments.int("limit") ?? Self.defaultLimit

        // A file named by `path` is read through the confined opener; a walk's files from their
        // folders' descriptors, on every core.
        let scan = { @Sendable (bytes: [UInt8]?) -> [(Int, String)]? in
            bytes.map { isBinary($0) ? [] : matcher.lines(in: $0) }
        }
        var scanned: [(path: String, lines: [(Int, String)]?)] = []
        var complete = true
        if let folder, folder.kind == .file {
            if filter?.matches(folder.relative) ?? true {
                scanned = [(folder.relative, scan(workspace.searchableBytes(of: folder.relative, limit: Self.fileLimit)))]
            }
        } else {
            (scanned, complete) = workspace.scanSearchableFiles(
                under: folder?.relative ?? "", includeIgnored: arguments.bool("include_ignored") ?? false, limit: Self.fileLimit,
                including: { filter?.matches($0) ?? true }
            ) { path, bytes in (path, scan(bytes)) }
        }
        var total = 0, files = 0, returned = 0
        let searched = scanned.count { $0.lines != nil }, skipped = scanned.count - searched
        var page: [(file: String, lines: [(Int, String)])] = []
        for (path, found) in scanned {
            guard let found, !found.isEmpty else { continue }
            files += 1
            for (number, line) in found {
                total += 1
                guard total >= offset, returned < limit else { continue }
                if page.last?.file != path { page.append((path, [])) }
                page[page.count - 1].lines.append((number, line))
                returned += 1
            }
        }
        var text = page.map { file in file.file + "\n" + file.lines.map { "\($0.0): \($0.1)" }.joined(separator: "\n") }.joined(separator: "\n\n")
        let scope = folder?.display ?? "the workspace"
        if total == 0 {
            text = "No line matches \(pattern) in \(scope) (\(searched) files searched"
                + (arguments.optionalString("glob").map { ", only \($0)" } ?? "") + "; .gitignore'd and binary files are left out)."
        } else {
            text += "\n\n\(total) matching line\(total == 1 ? "" : "s") in \(files) file\(files == 1 ? "" : "s")"
            if returned < total { text += " (\(offset)-\(offset + returned - 1) shown)" }
            text += "."
        }
        let next = returned > 0 && offset + returned <= total ? offset + returned : nil
        if let next { text += " For more, call grep again with offset=\(next), or narrow it with path or glob." }
        if skipped > 0 { text += " \(skipped) files were skipped: over \(Self.fileLimit >> 20) MB, or no longer regular files." }
        if !complete { text += " The search stopped after \(Workspace.searchEntryLimit) entries: narrow it with path." }
        return .text(text, structured: [
            "matches": .int(total), "files": .int(files), "searched": .int(searched), "returned": .int(returned), "offset": .int(offset),
            "next_offset": next.map(JSONValue.int) ?? .null, "complete": .bool(complete),
        ])
    }
}

/// Binary files hold no lines worth showing: a NUL in the first 8 KB says binary, as in grep.
private func isBinary(_ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { raw in raw.baseAddress.map { memchr($0, 0, min(raw.count, 8192)) != nil } ?? false }
}

/// Finds matching lines in a file's bytes. A fixed string, and the longest run of plain
/// characters any match of a pattern must contain, are found with memmem, so the regular
/// expression only runs on lines that can match.
struct LineMatcher: Sendable {
    private let regex: NSRegularExpression?
    /// Bytes every matching line contains (lowercased when ignoring ASCII case).
    private let literal: [UInt8]
    private let ignoreCase: Bool
    /// The literal's rarest byte and its offset, searched for first.
    private let rarest: (Int, UInt8)

    init(_ pattern: String, fixed: Bool, ignoreCase: Bool) throws {
        self.ignoreCase = ignoreCase
        let plain = fixed || !pattern.contains(where: { "\\^$.|?*+()[]{}".contains($0) })
        var literal = plain ? pattern : Self.requiredLiteral(pattern)
        if ignoreCase { literal = literal.allSatisfy(\.isASCII) ? literal.lowercased() : "" }
        self.literal = Array(literal.utf8)
        rarest = Self.rarest(in: self.literal)
        if plain && (!ignoreCase || pattern.allSatisfy(\.isASCII)) {
            regex = nil
        } else {
            do {
                regex = try NSRegularExpression(
                    pattern: plain ? NSRegularExpression.escapedPattern(for: pattern) : pattern, options: ignoreCase ? [.caseInsensitive] : [])
            } catch {
                throw ToolError("the pattern \(pattern) is not a valid regular expression: \(error.localizedDescription). Escape ( [ { . * + ? with a backslash, or set fixed_strings to true", kind: .usage)
            }
        }
    }

    /// The matching lines, numbered from 1, each cut to a window around its match.
    func lines(in original: [UInt8]) -> [(Int, String)] {
        let haystack = ignoreCase && !literal.isEmpty ? original.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 } : original
        var bytes = original
        // Where matches start and end, in bytes, in order.
        var matches: [Range<Int>] = []
        if let regex {
            if !literal.isEmpty {
                let candidates = candidateLines(haystack)
                if candidates.isEmpty { return [] }
                // Few lines hold the literal: the expression runs on those alone.
                if candidates.reduce(0, { $0 + $1.count }) * 8 < original.count { return matchingLines(regex, candidates, original) }
            }
            // One pass of the expression over the whole file: per line, its setup costs more than the match.
            let text = String(decoding: original, as: UTF8.self)
            if text.utf8.count != original.count { bytes = Array(text.utf8) }  // invalid UTF-8 became U+FFFD
            matches = regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { match in
                Range(match.range, in: text).map {
                    text.utf8.distance(from: text.startIndex, to: $0.lowerBound)..<text.utf8.distance(from: text.startIndex, to: $0.upperBound)
                }
            }
        } else {
            haystack.withUnsafeBytes { raw in
                var cursor = 0
                while let hit = find(literal, in: raw, from: cursor) {
                    matches.append(hit..<(hit + literal.count))
                    cursor = hit + 1
                }
            }
        }
        var found: [(Int, String)] = []
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var lineNumber = 1, counted = 0  // newlines counted up to `counted`
            var lineEnd = -1  // the end of the last line taken: one entry per line
            for match in matches where match.lowerBound > lineEnd {
                var start = match.lowerBound
                while start > 0, raw[start - 1] != 0x0A { start -= 1 }
                let end = memchr(base + match.lowerBound, 0x0A, raw.count - match.lowerBound).map { base.distance(to: UnsafeRawPointer($0)) } ?? raw.count
                lineEnd = end
                if start > counted {
                    lineNumber += Self.newlines(base + counted, start - counted)
                    counted = start
                }
                let line = String(decoding: bytes[start..<end], as: UTF8.self)
                var column = String(decoding: bytes[start..<match.lowerBound], as: UTF8.self).count
                if match.upperBound > end, let regex {
                    // The match ran past the line's end (\s, [^x]): lines match on their own, as in grep.
                    guard let alone = regex.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)), let range = Range(alone.range, in: line)
                    else { continue }
                    column = line.distance(from: line.startIndex, to: range.lowerBound)
                }
                found.append((lineNumber, Self.window(line, around: column)))
            }
        }
        return found
    }

    /// The byte ranges of the lines (without their newline) that hold the literal, in order.
    private func candidateLines(_ haystack: [UInt8]) -> [Range<Int>] {
        haystack.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return [] }
            var lines: [Range<Int>] = [], cursor = 0
            while let hit = find(literal, in: raw, from: cursor) {
                var start = hit
                while start > 0, raw[start - 1] != 0x0A { start -= 1 }
                let end = memchr(base + hit, 0x0A, raw.count - hit).map { base.distance(to: UnsafeRawPointer($0)) } ?? raw.count
                lines.append(start..<end)
                cursor = end + 1
                if cursor >= raw.count { break }
            }
            return lines
        }
    }

    /// The lines among `candidates` that the expression matches on their own, as grep matches
    /// lines, numbered and cut to a window around the match.
    private func matchingLines(_ regex: NSRegularExpression, _ candidates: [Range<Int>], _ original: [UInt8]) -> [(Int, String)] {
        var found: [(Int, String)] = []
        var lineNumber = 1, counted = 0
        original.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            for candidate in candidates {
                let line = String(decoding: original[candidate], as: UTF8.self)
                guard let match = regex.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)), let range = Range(match.range, in: line)
                else { continue }
                lineNumber += Self.newlines(base + counted, candidate.lowerBound - counted)
                counted = candidate.lowerBound
                found.append((lineNumber, Self.window(line, around: line.distance(from: line.startIndex, to: range.lowerBound))))
            }
        }
        return found
    }

    /// The offset of the first occurrence of `needle` at or after `from`: memchr for the
    /// needle's rarest byte, then a compare (Glibc's memmem is not visible to Swift).
    private func find(_ needle: [UInt8], in raw: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard let base = raw.baseAddress, !needle.isEmpty else { return nil }
        let (rare, byte) = rarest
        var cursor = from + rare
        while raw.count - (cursor - rare) >= needle.count,
            let hit = memchr(base + cursor, Int32(byte), raw.count - (cursor - rare) - needle.count + 1)
        {
            let at = base.distance(to: UnsafeRawPointer(hit)) - rare
            if memcmp(base + at, needle, needle.count) == 0 { return at }
            cursor = at + rare + 1
        }
        return nil
    }

    /// Where in the literal its rarest byte is, by how often bytes occur in source code: common
    /// lowercase letters and spaces make memchr stop at every other byte.
    private static func rarest(in literal: [UInt8]) -> (Int, UInt8) {
        let rank = { (byte: UInt8) -> Int in common.firstIndex(of: byte).map { common.count - $0 } ?? 0 }
        let index = literal.indices.min { rank(literal[$0]) < rank(literal[$1]) } ?? 0
        return (index, literal.isEmpty ? 0 : literal[index])
    }

    private static func newlines(_ from: UnsafeRawPointer, _ count: Int) -> Int {
        var total = 0, cursor = from, left = count
        while left > 0, let next = memchr(cursor, 0x0A, left) {
            total += 1
            let step = cursor.distance(to: UnsafeRawPointer(next)) + 1
            cursor += step
            left -= step
        }
        return total
    }

    /// A long line (a minified bundle) as the part around its match.
    private static func window(_ line: String, around column: Int) -> String {
        let trimmed = line.hasSuffix("\r") ? String(line.dropLast()) : line
        guard trimmed.count > GrepTool.lineWidth else { return trimmed }
        let start = max(0, min(column - GrepTool.lineWidth / 4, trimmed.count - GrepTool.lineWidth))
        let from = trimmed.index(trimmed.startIndex, offsetBy: start)
        let to = trimmed.index(from, offsetBy: GrepTool.lineWidth)
        return (start > 0 ? "…" : "") + trimmed[from..<to] + (to < trimmed.endIndex ? "…" : "")
    }

    /// The bytes most frequent in source code, most frequent first.
    private static let common = Array(" etaoinsrlcdu.(),;_=\n\t\"'".utf8)

    /// The run of plain characters that every match contains with the most uncommon bytes (the
    /// longest among equals); "" when there is none (alternation at the top, or only classes).
    static func requiredLiteral(_ pattern: String) -> String {
        var depth = 0
        for c in pattern {
            if c == "(" { depth += 1 } else if c == ")" { depth -= 1 } else if c == "|" && depth == 0 { return "" }
        }
        var runs: [String] = [], current = ""
        let characters = Array(pattern)
        var index = 0
        func cut() {
            runs.append(current)
            current = ""
        }
        while index < characters.count {
            let c = characters[index]
            let next = index + 1 < characters.count ? characters[index + 1] : nil
            switch c {
            case "\\":
                guard let escaped = next else { index += 1; continue }
                if "\\.^$|?*+()[]{}/-".contains(escaped) {
                    if let after = index + 2 < characters.count ? characters[index + 2] : nil, "?*{".contains(after) { cut() } else { current.append(escaped) }
                } else {
                    cut()
                }
                index += 2
                continue
            case "[", "(":
                // A class or group: skip it whole (a group may be optional or alternate).
                cut()
                var level = 0
                let open = c, close: Character = c == "[" ? "]" : ")"
                while index < characters.count {
                    if characters[index] == "\\" { index += 2; continue }
                    if characters[index] == open { level += 1 } else if characters[index] == close { level -= 1; if level == 0 { break } }
                    index += 1
                }
            case ".", "^", "$", "+", ")", "]", "}", "|":
                cut()
            case "?", "*", "{":
                // The character before was optional: drop it from the run.
                if !current.isEmpty { current.removeLast() }
                cut()
                if c == "{" { while index < characters.count && characters[index] != "}" { index += 1 } }
            default:
                if let next, "?*{".contains(next) { cut() } else { current.append(c) }
            }
            index += 1
        }
        cut()
        let score = { (run: String) in run.utf8.filter { !common.contains($0) }.count * 1000 + run.utf8.count }
        return runs.max { score($0) < score($1) } ?? ""
    }
}
