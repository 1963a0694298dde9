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
    static func diagnostics(in rawOutput: String) -> [Diagnostic] {
        let text = Terminal.clean(Array(rawOutput.utf8))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var found: [Diagnostic] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            if let diagnostic = tscPlain(line) ?? tscPretty(line) {
                found.append(diagnostic)
            } else if let (severity, message) = esbuildHeader(line) {
                // The location follows a blank line: "    src/a.ts:1:23:".
                if let location = lines[(index + 1)..<min(index + 4, lines.count)].lazy.compactMap(esbuildLocation).first {
                    found.append(Diagnostic(
                        file: location.file, line: location.line, column: location.column + 1, severity: severity, code: nil,
                        message: message))
                }
            }
            index += 1
        }
        var seen = Set<String>()
        return found.filter { seen.insert($0.line1).inserted }
    }

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
