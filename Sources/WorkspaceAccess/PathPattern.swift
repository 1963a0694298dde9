import Foundation

/// A glob over `/`-separated paths, as git and most tools read one: `*` and `?` and `[…]` stay
/// within one name (through fnmatch), `**` spans any number of folders.
public struct PathPattern: Sendable {
    private let segments: [String]

    public init(_ pattern: String) {
        segments = pattern.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    /// Whether the whole of `path` (relative, `/`-separated) matches.
    public func matches(_ path: String) -> Bool {
        Self.match(segments[...], path.split(separator: "/").map(String.init)[...])
    }

    /// Whether one name matches one pattern segment.
    public static func matchesName(_ pattern: String, _ name: String) -> Bool {
        fnmatch(pattern, name, 0) == 0
    }

    private static func match(_ pattern: ArraySlice<String>, _ path: ArraySlice<String>) -> Bool {
        guard let first = pattern.first else { return path.isEmpty }
        if first == "**" {
            let rest = pattern.dropFirst()
            if rest.isEmpty { return true }
            var tail = path
            while true {
                if match(rest, tail) { return true }
                guard !tail.isEmpty else { return false }
                tail = tail.dropFirst()
            }
        }
        guard let name = path.first, matchesName(first, name) else { return false }
        return match(pattern.dropFirst(), path.dropFirst())
    }
}

/// The rules of the `.gitignore` files met on the way down a tree. The files are workspace
/// content, so hostile: they can only hide files from a search, never widen it.
struct IgnoreRules: Sendable {
    private struct Rule: Sendable {
        /// The folder holding the .gitignore, relative to the root ("" for it).
        var base: String
        var pattern: PathPattern
        var name: String?
        var negated: Bool
        var foldersOnly: Bool
    }

    private var rules: [Rule] = []

    /// Adds the rules of one .gitignore found in `folder`.
    mutating func add(_ text: String, in folder: String) {
        for raw in text.split(whereSeparator: \.isNewline).prefix(10_000) {
            var line = String(raw)
            while line.hasSuffix(" ") && !line.hasSuffix("\\ ") { line.removeLast() }
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            let negated = line.hasPrefix("!")
            if negated { line.removeFirst() }
            let foldersOnly = line.hasSuffix("/")
            if foldersOnly { line.removeLast() }
            // A pattern with a slash before its end is anchored to its folder; one without
            // matches a name at any depth.
            let anchored = line.dropLast().contains("/")
            if line.hasPrefix("/") { line.removeFirst() }
            guard !line.isEmpty else { continue }
            rules.append(Rule(base: folder, pattern: PathPattern(line), name: anchored ? nil : line, negated: negated, foldersOnly: foldersOnly))
        }
    }

    /// Whether `path` (relative to the root) is ignored; the last rule that matches decides.
    func ignores(_ path: String, isFolder: Bool) -> Bool {
        var ignored = false
        let name = path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
        for rule in rules where !rule.foldersOnly || isFolder {
            guard rule.base.isEmpty || path.hasPrefix(rule.base + "/") else { continue }
            let matched: Bool
            if let pattern = rule.name {
                matched = PathPattern.matchesName(pattern, name)
            } else {
                matched = rule.pattern.matches(rule.base.isEmpty ? path : String(path.dropFirst(rule.base.count + 1)))
            }
            if matched { ignored = !rule.negated }
        }
        return ignored
    }
}
