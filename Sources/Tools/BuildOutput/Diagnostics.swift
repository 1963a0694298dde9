import Foundation

/// One problem a build reported, as data a model can act on.
public struct Diagnostic: Sendable, Equatable {
    public var file: String
    public var line: Int
    /// 1-based, whatever the tool printed (esbuild prints 0-based columns).
    public var column: Int
    public var severity: String
    public var code: String?
    public var message: String
    public var hint: String?

    var json: JSONValue {
        var object: [String: JSONValue] = [
            "file": .string(file), "line": .int(line), "column": .int(column), "severity": .string(severity),
            "message": .string(message),
        ]
        if let code { object["code"] = .string(code) }
        if let hint { object["hint"] = .string(hint) }
        return .object(object)
    }

    /// "src/a.ts:2:29 error TS2307: Cannot find …"
    var line1: String {
        "\(file):\(line):\(column) \(severity)\(code.map { " \($0)" } ?? ""): \(message)"
    }
}

/// Reads diagnostics out of build output: tsc (plain and pretty) and esbuild. Unknown output
/// yields none; the caller still has the exit code and a tail.
enum BuildOutput {
    /// - Parameter project: absolute paths under it (Vite, webpack) are shown relative to it.
    static func diagnostics(in rawOutput: String, project: String? = nil) -> [Diagnostic] {
        let text = Terminal.clean(Array(rawOutput.utf8))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var found: [Diagnostic] = []
        // A file named on a line of its own (Next.js, ESLint, webpack) that the next lines refer to.
        var current: (file: String, line: Int, column: Int)?
        var continuing = false
        func relative(_ path: String) -> String {
            var path = path
            if let project, path.hasPrefix(project + "/") { path = String(path.dropFirst(project.count + 1)) }
            return path.hasPrefix("./") ? String(path.dropFirst(2)) : path
        }
        func add(_ message: String, severity: String = "error", code: String? = nil) {
            guard let at = current else { return }
            found.append(Diagnostic(file: at.file, line: at.line, column: at.column, severity: severity, code: code, message: message))
        }
        for (index, line) in lines.enumerated() {
            // tsc prints a message's details indented under it.
            if continuing, line.hasPrefix("  "), !line.trimmingCharacters(in: .whitespaces).isEmpty, !found.isEmpty {
                found[found.count - 1].message += "\n" + line.trimmingCharacters(in: .whitespaces)
                continue
            }
            continuing = false
            if let diagnostic = tscPlain(line) ?? tscPretty(line) {
                found.append(diagnostic)
                continuing = diagnostic == tscPlain(line)
            } else if let (severity, message) = esbuildHeader(line) {
                // The location follows a blank line: "    src/a.ts:1:23:".
                if let location = lines[(index + 1)..<min(index + 4, lines.count)].lazy.compactMap(esbuildLocation).first {
                    found.append(Diagnostic(
                        file: relative(location.file), line: location.line, column: location.column + 1, severity: severity,
                        code: nil, message: message))
                }
            } else if let match = line.firstMatch(of: fileHeader) {
                func number(_ name: String) -> Int? { match[name]?.substring.flatMap { Int($0) } }
                let lineNumber = number("line") ?? number("wline") ?? 1
                let column = number("col") ?? number("wcol").map { $0 + 1 } ?? 1  // webpack's columns are 0-based
                current = (relative(String(match["file"]!.substring!)), lineNumber, column)
            } else if let match = line.firstMatch(of: #/^Type error: (?<msg>.+)$/#) {
                add(String(match.msg))
            } else if let match = line.firstMatch(of: #/^Module not found: (?:Error: )?(?<msg>Can't resolve '[^']+')/#) {
                add("Module not found: \(match.msg)")
            } else if let match = line.firstMatch(of: #/^\s*(?<line>\d+):(?<col>\d+)\s+(?<sev>[Ee]rror|[Ww]arning):?\s+(?<msg>.+?)(?:\s{2,}(?<rule>[\w@/-]+))?\s*$/#),
                let file = current?.file
            {
                found.append(Diagnostic(
                    file: file, line: Int(match.line)!, column: Int(match.col)!, severity: match.sev.lowercased(),
                    code: match.rule.map(String.init), message: String(match.msg)))
            } else if let match = line.firstMatch(of: #/Rollup failed to resolve import "(?<spec>[^"]+)" from "(?<file>[^"]+)"/#) {
                found.append(Diagnostic(
                    file: relative(String(match.file)), line: 1, column: 1, severity: "error", code: nil,
                    message: "Module not found: Can't resolve '\(match.spec)'"))
            } else if let match = line.firstMatch(of: #/^file: (?<file>\S+?):(?<line>\d+):(?<col>\d+)\s*$/#) {
                // Vite names the location after its "[vite:esbuild] Transform failed" line; the reason follows.
                current = (relative(String(match.file)), Int(match.line)!, Int(match.col)!)
                let reason = lines[(index + 1)..<min(index + 4, lines.count)].first { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
                add(reason.map { $0.trimmingCharacters(in: .whitespaces) } ?? "transform failed")
            }
        }
        var seen = Set<String>()
        return found.filter { seen.insert($0.line1).inserted }
    }

    /// A file on a line of its own: `./app/page.tsx:3:5` (Next.js), `./components/x.js` (Next.js,
    /// ESLint), `ERROR in ./src/index.js 1:0-49` (webpack 5), `/abs/src/a.ts` (ESLint stylish).
    nonisolated(unsafe) static let fileHeader = try! Regex(
        #"^(?:ERROR in )?(?<file>\.{0,2}/?[\w@./\[\]()-]+\.(?:[cm]?[jt]sx?|vue|svelte|json|css))(?::(?<line>\d+):(?<col>\d+)| (?<wline>\d+):(?<wcol>\d+)-\d+)?\s*$"#)

    /// `src/a.ts(2,29): error TS2307: Cannot find module …`
    private static func tscPlain(_ line: String) -> Diagnostic? {
        guard let match = line.firstMatch(of: #/^(?<file>[^\s(][^(]*)\((?<line>\d+),(?<col>\d+)\): (?<sev>error|warning) (?<code>TS\d+): (?<msg>.*)$/#) else {
            return nil
        }
        return Diagnostic(
            file: String(match.file), line: Int(match.line)!, column: Int(match.col)!, severity: String(match.sev),
            code: String(match.code), message: String(match.msg))
    }

    /// `src/a.ts:2:29 - error TS2307: Cannot find module …` (tsc --pretty, colours stripped)
    private static func tscPretty(_ line: String) -> Diagnostic? {
        guard let match = line.firstMatch(of: #/^(?<file>\S[^:]*):(?<line>\d+):(?<col>\d+) - (?<sev>error|warning) (?<code>TS\d+): (?<msg>.*)$/#) else {
            return nil
        }
        return Diagnostic(
            file: String(match.file), line: Int(match.line)!, column: Int(match.col)!, severity: String(match.sev),
            code: String(match.code), message: String(match.msg))
    }

    /// `✘ [ERROR] Unexpected ";"` or `▲ [WARNING] …`
    private static func esbuildHeader(_ line: String) -> (String, String)? {
        guard let match = line.firstMatch(of: #/^\s*[✘▲X!]\s*\[(?<kind>ERROR|WARNING)\] (?<msg>.*)$/#) else { return nil }
        return (match.kind == "ERROR" ? "error" : "warning", String(match.msg))
    }

    /// `    src/lib/bad.ts:1:23:` (the column is 0-based)
    private static func esbuildLocation(_ line: String) -> (file: String, line: Int, column: Int)? {
        guard let match = line.firstMatch(of: #/^\s+(?<file>[^\s:][^:]*):(?<line>\d+):(?<col>\d+):\s*$/#) else { return nil }
        return (String(match.file), Int(match.line)!, Int(match.col)!)
    }

    /// A stable name for a set of errors: the same problems give the same fingerprint even when
    /// unrelated edits moved their lines.
    static func fingerprint(_ diagnostics: [Diagnostic]) -> String {
        let keys = diagnostics.filter { $0.severity == "error" }.map { "\($0.file)|\($0.code ?? "")|\($0.message)" }.sorted()
        return fnv1a(keys.joined(separator: "\n"))
    }
}
