import Foundation
public import JSONCore

/// Tool-call arguments as the model wrote them, made usable: a strict parse first, then (only
/// if that fails, and only outside string literals) the repairs models need most. Each repair
/// is named so the transcript can say what was changed.
public enum ArgumentRepair {
    public struct Repaired: Sendable, Equatable {
        public var value: [String: JSONValue]
        public var repairs: [String]

        public init(value: [String: JSONValue], repairs: [String]) {
            self.value = value
            self.repairs = repairs
        }
    }

    /// Arguments that could not be used: what is wrong, in words that let the model fix it.
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Whether a call is one something can run: there is a schema (the tool exists), and the
    /// arguments, once repaired, match it.
    public static func isWellFormed(_ arguments: String, schema: JSONValue?) -> Bool {
        guard let schema, case .success(let fixed) = repair(arguments, schema: schema) else { return false }
        return Schema.problems(in: .object(fixed.value), against: schema).isEmpty
    }

    /// The arguments as an object, repaired and coerced to `schema`'s types where needed.
    public static func repair(_ text: String, schema: JSONValue?) -> Result<Repaired, Problem> {
        var repairs: [String] = []
        let value: JSONValue
        switch lenientParse(text, repairs: &repairs) {
        case .success(let parsed): value = parsed
        case .failure(let problem):
            return .failure(Problem(message: "the arguments are not valid JSON (\(problem.message)): \(quote(text))\(expected(schema))"))
        }
        var object: [String: JSONValue]
        switch value {
        case .object(let fields): object = fields
        case .string(let inner):
            // Double encoding: the object arrived as a JSON string.
            guard let fields = (try? JSONValue.parse(inner))?.objectValue else {
                return .failure(Problem(message: "the arguments must be a JSON object, got a string: \(quote(text))\(expected(schema))"))
            }
            object = fields
            repairs.append("decoded arguments that were a JSON object inside a string")
        case .null where text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty:
            object = [:]
        default:
            return .failure(Problem(message: "the arguments must be a JSON object, got \(value.typeName): \(quote(text))\(expected(schema))"))
        }
        if let properties = schema?["properties"]?.objectValue, object.count == 1, let (key, inner) = object.first,
            ["arguments", "input", "parameters", "args"].contains(key), properties[key] == nil, let fields = inner.objectValue
        {
            // `{"arguments": {…}}`: the call's own wrapper, written once more inside the arguments.
            object = fields
            repairs.append("unwrapped the arguments from a '\(key)' object the tool does not take")
        }
        if let properties = schema?["properties"]?.objectValue {
            for (name, property) in properties.sorted(by: { $0.key < $1.key }) {
                guard let current = object[name], let coerced = coerce(current, to: property) else { continue }
                object[name] = coerced
                repairs.append("coerced '\(name)' from \(current.jsonText.prefix(40)) to \(property["type"]?.stringValue ?? "its type")")
            }
        }
        return .success(Repaired(value: object, repairs: repairs))
    }

    /// A JSON value from text a model wrote: strict first, then fence, quote, literal, comma and
    /// control-character repairs, then the first complete value when text follows it.
    public static func lenientParse(_ text: String, repairs: inout [String]) -> Result<JSONValue, Problem> {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return .success(.null) }
        let strictError: String
        do {
            return .success(try JSONValue.parse(trimmed))
        } catch {
            strictError = (error as? JSONParseError)?.message ?? "\(error)"
        }
        var candidate = trimmed
        if let inner = unfenced(candidate) {
            candidate = inner
            repairs.append("removed a markdown fence around the JSON")
            if let value = try? JSONValue.parse(candidate) { return .success(value) }
        }
        let (rewritten, fixes) = rewrite(candidate)
        repairs.append(contentsOf: fixes)
        if let value = try? JSONValue.parse(rewritten) { return .success(value) }
        if let end = firstValueEnd(rewritten), let value = try? JSONValue.parse(String(rewritten[..<end])) {
            repairs.append("dropped text after the JSON value")
            return .success(value)
        }
        return .failure(Problem(message: strictError))
    }

    /// The content of a ```json (or bare ```) fence that wraps the whole text.
    static func unfenced(_ text: String) -> String? {
        guard text.hasPrefix("```"), text.hasSuffix("```"), text.count > 6 else { return nil }
        var inner = text.dropFirst(3).dropLast(3)
        if let newline = inner.firstIndex(of: "\n"), !inner[..<newline].contains("{") { inner = inner[inner.index(after: newline)...] }
        return inner.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// One pass over the text that fixes what models get wrong outside strings (single quotes,
    /// Python's True/False/None, trailing commas) and inside them (raw newlines and control characters).
    static func rewrite(_ text: String) -> (String, [String]) {
        var out = ""
        var fixes = Set<String>()
        let characters = Array(text)
        var index = 0
        while index < characters.count {
            let c = characters[index]
            if c == "\"" || c == "'" {
                if c == "'" { fixes.insert("turned single-quoted strings into JSON strings") }
                out.append("\"")
                index += 1
                while index < characters.count, characters[index] != c {
                    let ch = characters[index]
                    if ch == "\\", index + 1 < characters.count {
                        let next = characters[index + 1]
                        if c == "'" && next == "'" { out.append("'") } else { out.append(ch); out.append(next) }
                        index += 2
                        continue
                    }
                    if c == "'" && ch == "\"" { out += "\\\""; index += 1; continue }
                    if ch.unicodeScalars.contains(where: { $0.value < 0x20 }) {
                        fixes.insert("escaped raw newlines or control characters inside strings")
                        out += JSONValue.string(String(ch)).jsonText.dropFirst().dropLast()
                        index += 1
                        continue
                    }
                    out.append(ch)
                    index += 1
                }
                out.append("\"")
                index += 1
                continue
            }
            if c == "," {
                var next = index + 1
                while next < characters.count, characters[next].isWhitespace { next += 1 }
                if next < characters.count, characters[next] == "}" || characters[next] == "]" {
                    fixes.insert("removed trailing commas")
                    index += 1
                    continue
                }
            }
            if c.isLetter, index == 0 || !(characters[index - 1].isLetter || characters[index - 1].isNumber || characters[index - 1] == "_") {
                var end = index
                while end < characters.count, characters[end].isLetter || characters[end].isNumber || characters[end] == "_" { end += 1 }
                let word = String(characters[index..<end])
                let replacement = ["True": "true", "False": "false", "None": "null"][word]
                if let replacement {
                    fixes.insert("turned Python's True/False/None into JSON")
                    out += replacement
                } else {
                    out += word
                }
                index = end
                continue
            }
            out.append(c)
            index += 1
        }
        return (out, fixes.sorted())
    }

    /// Where the first complete JSON object or array in `text` ends (string-aware).
    static func firstValueEnd(_ text: String) -> String.Index? {
        var depth = 0
        var inString = false
        var escaped = false
        var started = false
        for index in text.indices {
            let c = text[index]
            if inString {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
                continue
            }
            switch c {
            case "\"": inString = true
            case "{", "[": depth += 1; started = true
            case "}", "]":
                depth -= 1
                if started && depth == 0 { return text.index(after: index) }
            default:
                if !started && !c.isWhitespace { return nil }
            }
        }
        return nil
    }

    /// A value the schema types differently, converted when the conversion is unambiguous.
    static func coerce(_ value: JSONValue, to property: JSONValue) -> JSONValue? {
        guard let type = property["type"]?.stringValue else { return nil }
        switch (type, value) {
        case ("integer", .string(let text)): return Int(text.trimmingCharacters(in: .whitespaces)).map(JSONValue.int)
        case ("integer", .double(let number)) where number == number.rounded() && abs(number) < 9e15: return .int(Int(number))
        case ("number", .string(let text)): return Double(text.trimmingCharacters(in: .whitespaces)).map(JSONValue.double)
        case ("boolean", .string(let text)):
            return ["true": JSONValue.bool(true), "false": .bool(false)][text.lowercased()]
        case ("string", .int(let number)): return .string(String(number))
        case ("string", .double(let number)): return .string(JSONValue.double(number).jsonText)
        case ("string", .bool(let flag)): return .string(flag ? "true" : "false")
        case ("array", .string(let text)), ("object", .string(let text)):
            guard let parsed = try? JSONValue.parse(text), parsed.typeName == type else { return nil }
            return parsed
        default: return nil
        }
    }

    /// " Expected: {…}" for the error a model gets, from the tool's schema.
    static func expected(_ schema: JSONValue?) -> String {
        guard let properties = schema?["properties"]?.objectValue else { return "" }
        let required = Set(schema?["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        let fields = properties.keys.sorted().map { name in
            "\"\(name)\": \(properties[name]?["type"]?.stringValue ?? "any")\(required.contains(name) ? " (required)" : "")"
        }
        return ". Send one JSON object like {\(fields.joined(separator: ", "))}"
    }

    static func quote(_ text: String) -> String {
        (text.count > 300 ? String(text.prefix(300)) + "…" : text).debugDescription
    }
}
