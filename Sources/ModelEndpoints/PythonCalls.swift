import Foundation
import JSONCore

/// Python-style calls, `get_weather(city='SF', days=3), now()`, as pythonic and tool_code
/// dialects write them: keyword arguments with Python literals (strings, numbers, True/False/None,
/// lists, tuples, dicts).
enum PythonCalls {
    struct Call {
        var name: String
        var arguments: [String: JSONValue]
    }

    /// The calls in `text`, separated by commas or line breaks. An element that is not a call is
    /// skipped (its text goes to `skipped`) and the others still count, as a list with one bad
    /// element should not lose its good siblings; nil when no element is a call.
    static func parse(_ text: String, skipped: inout [String]) -> [Call]? {
        var parser = Parser(characters: Array(text))
        var calls: [Call] = []
        parser.skipSpace()
        while !parser.atEnd {
            let start = parser.index
            if let call = parser.call(), parser.atSeparator {
                calls.append(call)
            } else {
                parser.index = start
                parser.skipElement()
                skipped.append(String(parser.characters[start..<parser.index]).trimmingCharacters(in: .whitespacesAndNewlines))
            }
            parser.skipSpace()
            if parser.peek == "," { parser.index += 1; parser.skipSpace() }
        }
        return calls.isEmpty ? nil : calls
    }

    private struct Parser {
        let characters: [Character]
        var index = 0
        /// Bounds recursion on hostile input.
        var depth = 0

        var atEnd: Bool { index >= characters.count }
        var peek: Character? { atEnd ? nil : characters[index] }

        mutating func skipSpace() {
            while let c = peek, c.isWhitespace { index += 1 }
        }

        /// Whether what follows (spaces aside) ends an element: a comma, a line break, or the end.
        var atSeparator: Bool {
            var next = index
            while next < characters.count, characters[next] == " " || characters[next] == "\t" { next += 1 }
            return next >= characters.count || characters[next] == "," || characters[next].isNewline
        }

        /// Past an element that is not a call: to the next comma or line break outside quotes and
        /// brackets, or to the end of its line when its brackets never close.
        mutating func skipElement() {
            let start = index
            var depth = 0
            var quote: Character?
            while let c = peek {
                if let open = quote {
                    if c == "\\" { index += 1 } else if c == open { quote = nil }
                } else if c == "'" || c == "\"" {
                    quote = c
                } else if "([{".contains(c) {
                    depth += 1
                } else if ")]}".contains(c) {
                    depth -= 1
                } else if (c == "," || c.isNewline) && depth <= 0 {
                    return
                }
                index += 1
            }
            // An escape may step past the last character.
            index = min(index, characters.count)
            // Unbalanced to the end: give up on this element at its line's end instead.
            if depth != 0 || quote != nil, let newline = characters[start...].firstIndex(where: \.isNewline) { index = newline }
            // Always past something, so a list of bad elements ends.
            if index == start { index = min(start + 1, characters.count) }
        }

        mutating func identifier() -> String? {
            let start = index
            while let c = peek, c.isLetter || c.isNumber || c == "_" || c == "." { index += 1 }
            guard index > start, !characters[start].isNumber else { return nil }
            return String(characters[start..<index])
        }

        mutating func call() -> Call? {
            guard let name = identifier() else { return nil }
            skipSpace()
            guard peek == "(" else { return nil }
            index += 1
            var arguments: [String: JSONValue] = [:]
            skipSpace()
            while peek != ")" {
                guard let key = identifier() else { return nil }
                skipSpace()
                guard peek == "=" else { return nil }
                index += 1
                skipSpace()
                guard let value = value() else { return nil }
                arguments[key] = value
                skipSpace()
                if peek == "," { index += 1; skipSpace() } else if peek != ")" { return nil }
            }
            index += 1
            return Call(name: name, arguments: arguments)
        }

        mutating func value() -> JSONValue? {
            depth += 1
            defer { depth -= 1 }
            guard depth < 64, let c = peek else { return nil }
            switch c {
            case "'", "\"": return string(quote: c)
            case "[", "(": return list(close: c == "[" ? "]" : ")")
            case "{": return dictionary()
            default:
                if c.isNumber || c == "-" || c == "+" { return number() }
                guard let word = identifier() else { return nil }
                // Models write JSON's spellings in Python calls too (LFM2, Llama 4, Olmo 3 do).
                return ["True": JSONValue.bool(true), "False": .bool(false), "None": .null, "true": .bool(true), "false": .bool(false), "null": .null][word]
            }
        }

        mutating func string(quote: Character) -> JSONValue? {
            index += 1
            var out = ""
            // A quote that is not followed by what may follow a value is part of the value: models
            // write `bash(command='sed -n '360,450p' f')` with the inner quotes unescaped.
            while let c = peek, c != quote || !closesValue(after: index) {
                index += 1
                guard c == "\\", let next = peek else { out.append(c); continue }
                index += 1
                switch next {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                default: out.append(next)
                }
            }
            guard peek == quote else { return nil }
            index += 1
            return .string(out)
        }

        /// Whether the quote at `position` ends a value: what comes next (spaces aside) is a
        /// separator, a closing bracket, a colon, or the end.
        func closesValue(after position: Int) -> Bool {
            var next = position + 1
            while next < characters.count, characters[next] == " " || characters[next] == "\t" { next += 1 }
            return next >= characters.count || [",", ")", "]", "}", ":", "\n", ";"].contains(characters[next])
        }

        mutating func number() -> JSONValue? {
            let start = index
            index += 1
            while let c = peek, c.isNumber || c == "." || c == "e" || c == "E" || c == "-" || c == "+" || c == "_" { index += 1 }
            let text = String(characters[start..<index]).replacingOccurrences(of: "_", with: "")
            if let integer = Int(text) { return .int(integer) }
            guard let number = Double(text), number.isFinite else { return nil }
            return .double(number)
        }

        mutating func list(close: Character) -> JSONValue? {
            index += 1
            var items: [JSONValue] = []
            skipSpace()
            while peek != close {
                guard let item = value() else { return nil }
                items.append(item)
                skipSpace()
                if peek == "," { index += 1; skipSpace() } else if peek != close { return nil }
            }
            index += 1
            return .array(items)
        }

        mutating func dictionary() -> JSONValue? {
            index += 1
            var fields: [String: JSONValue] = [:]
            skipSpace()
            while peek != "}" {
                guard let key = value()?.stringValue else { return nil }
                skipSpace()
                guard peek == ":" else { return nil }
                index += 1
                skipSpace()
                guard let item = value() else { return nil }
                fields[key] = item
                skipSpace()
                if peek == "," { index += 1; skipSpace() } else if peek != "}" { return nil }
            }
            index += 1
            return .object(fields)
        }
    }
}
