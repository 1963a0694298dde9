import Foundation

/// Function declarations read from TypeScript source closely enough to quote a signature whole.
/// Comments are skipped and strings kept intact; brackets of every kind are balanced, so object
/// types, generics, function types and overloads survive. Namespaces need no special case: a
/// declaration is found wherever it sits, and its module tells which file to read.
enum TypeDeclarations {
    /// One declaration of a callable name.
    struct Function: Equatable {
        /// As written, modifiers included, whitespace collapsed, without comments.
        var text: String
        /// Parameters a call must pass.
        var required: Int
        /// Parameters a call may pass; nil after a rest parameter.
        var maximum: Int?
        /// A member of an interface, class or object type rather than a declaration of its own.
        var isMember = false

        func accepts(_ count: Int) -> Bool { count >= required && maximum.map { count <= $0 } ?? true }
    }

    /// Every declaration of `name` as something callable: `function name…` (overloads each on
    /// their own) and `const name: (…) => …`; only when there are none, `name(…)` and
    /// `name: (…) => …` members of interfaces, classes and object types.
    static func functions(named name: String, in source: String) -> [Function] {
        let all = callables(named: name, in: source)
        let declared = all.filter { !$0.isMember }
        return declared.isEmpty ? all : declared
    }

    private static func callables(named name: String, in source: String) -> [Function] {
        let code = withoutComments(Array(source.utf8))
        let word = Array(name.utf8)
        guard !word.isEmpty else { return [] }
        var found: [Function] = []
        var index = 0
        var quote: UInt8?
        while index < code.count {
            if inString(code, &index, &quote) { continue }
            let c = code[index]
            if isIdentifier(c), index == 0 || !isIdentifier(code[index - 1]), code[index...].starts(with: word),
                index + word.count == code.count || !isIdentifier(code[index + word.count]),
                let function = declaration(in: code, name: index, length: word.count)
            {
                found.append(function)
            }
            index += 1
        }
        return found
    }

    /// The module specifiers a file re-exports from (`export * from`, `export {…} from`), in order.
    static func reexports(in source: String) -> [String] {
        let code = String(decoding: withoutComments(Array(source.utf8)), as: UTF8.self)
        return code.matches(of: #/export\s*(?:\*(?:\s*as\s+[\w$]+)?|type\s*\{[^}]*\}|\{[^}]*\})\s*from\s*["'](?<spec>[^"']+)["']/#)
            .map { String($0.spec) }
    }

    /// How many arguments a call passes, counted from just after its opening parenthesis.
    static func argumentCount(in source: String, after open: String.Index) -> Int? {
        let bytes = Array(source[open...].utf8)
        var depth = 0, commas = 0, sawArgument = false
        var quote: UInt8?
        var index = 0
        while index < bytes.count {
            if inString(bytes, &index, &quote) {
                sawArgument = true
                continue
            }
            let c = bytes[index]
            if opens(c) {
                depth += 1
                sawArgument = true
            } else if closes(c) {
                if depth == 0 { return sawArgument ? commas + 1 : 0 }
                depth -= 1
            } else if c == UInt8(ascii: ","), depth == 0 {
                commas += 1
            } else if !isSpace(c) {
                sawArgument = true
            }
            index += 1
        }
        return nil
    }

    // MARK: - Reading one declaration

    /// The declaration whose name starts at `name`, or nil when the name is used some other way
    /// there (a call, a property access, a type reference).
    private static func declaration(in code: [UInt8], name: Int, length: Int) -> Function? {
        let before = previousToken(in: code, before: name)
        var start = name
        var isFunction = false
        // A member must declare its type: `name(a, b);` after a statement is a call.
        var requiresType = false
        var isVariable = false
        if before.text == "function" {
            isFunction = true
            start = before.start
            // `export declare default async function name`: take the modifiers in.
            var cursor = before.start
            while true {
                let modifier = previousToken(in: code, before: cursor)
                guard ["export", "declare", "default", "async"].contains(modifier.text) else { break }
                start = modifier.start
                cursor = modifier.start
            }
        } else {
            // A member: at the start of a statement or member, after optional modifiers.
            var cursor = name
            var token = before
            while ["static", "readonly", "public", "protected", "private", "abstract", "export", "declare", "const", "let", "var"].contains(token.text) {
                if ["const", "let", "var"].contains(token.text) { isVariable = true }
                cursor = token.start
                token = previousToken(in: code, before: cursor)
            }
            // Members of interfaces and object types may be separated by line breaks alone.
            guard ["{", ";", ",", ""].contains(token.text) || code[token.start..<cursor].contains(UInt8(ascii: "\n")) else { return nil }
            start = cursor
            requiresType = true
        }
        var index = skipSpace(code, name + length)
        if index < code.count, code[index] == UInt8(ascii: "?") { index = skipSpace(code, index + 1) }
        var parameters: ArraySlice<UInt8>
        if index < code.count, code[index] == UInt8(ascii: "<") || code[index] == UInt8(ascii: "(") {
            if code[index] == UInt8(ascii: "<") { index = skipSpace(code, balanced(code, from: index)) }
            guard index < code.count, code[index] == UInt8(ascii: "(") else { return nil }
            let close = balanced(code, from: index)
            parameters = code[(index + 1)..<max(index + 1, close - 1)]
            index = skipSpace(code, close)
            if index < code.count, code[index] == UInt8(ascii: ":") {
                index = typeEnd(code, from: index + 1)
            } else if requiresType {
                return nil
            }
        } else if !isFunction, index < code.count, code[index] == UInt8(ascii: ":") {
            // `name: (…) => T` or `name: <T>(…) => T`: a property holding a function.
            var typeStart = skipSpace(code, index + 1)
            if typeStart < code.count, code[typeStart] == UInt8(ascii: "<") { typeStart = skipSpace(code, balanced(code, from: typeStart)) }
            guard typeStart < code.count, code[typeStart] == UInt8(ascii: "(") else { return nil }
            let close = balanced(code, from: typeStart)
            guard code[skipSpace(code, close)...].starts(with: Array("=>".utf8)) else { return nil }
            parameters = code[(typeStart + 1)..<max(typeStart + 1, close - 1)]
            index = typeEnd(code, from: index + 1)
        } else {
            return nil
        }
        let text = collapsed(code[start..<index])
        let (required, maximum) = arity(parameters)
        return Function(text: text, required: required, maximum: maximum, isMember: requiresType && !isVariable)
    }

    /// Where a type that starts at `from` ends: at `;` or `,` or an unmatched closer, at `{` once
    /// the type has begun (an implementation's body), or at a line break that does not continue it.
    private static func typeEnd(_ code: [UInt8], from: Int) -> Int {
        var index = skipSpace(code, from)
        let begin = index
        var depth = 0
        var quote: UInt8?
        while index < code.count {
            if inString(code, &index, &quote) { continue }
            let c = code[index]
            if c == UInt8(ascii: "{"), depth == 0, index > begin, !continues(code, before: index) {
                return trimmedEnd(code, index)
            } else if opens(c) {
                depth += 1
            } else if closesBracket(code, index) {
                if depth == 0 { return trimmedEnd(code, index) }
                depth -= 1
            } else if depth == 0, c == UInt8(ascii: ";") || c == UInt8(ascii: ",") {
                return trimmedEnd(code, index)
            } else if depth == 0, c == UInt8(ascii: "\n"), index > begin, !continues(code, before: index) {
                let next = skipSpace(code, index)
                let continuation = ["|", "&", "=>", ".", "?", ":", "extends", "[", "<"]
                if !continuation.contains(where: { code[next...].starts(with: Array($0.utf8)) }) { return trimmedEnd(code, index) }
            }
            index += 1
        }
        return trimmedEnd(code, index)
    }

    /// Whether the type so far ends in an operator that needs more (`|`, `&`, `=>`, `:`, `,`).
    private static func continues(_ code: [UInt8], before index: Int) -> Bool {
        var cursor = index - 1
        while cursor >= 0, isSpace(code[cursor]) { cursor -= 1 }
        guard cursor >= 0 else { return true }
        if code[cursor] == UInt8(ascii: ">") { return cursor > 0 && code[cursor - 1] == UInt8(ascii: "=") }
        return "|&:,(".utf8.contains(code[cursor])
    }

    /// Required and maximum parameter counts of a parameter list (`this:` is not passed).
    private static func arity(_ list: ArraySlice<UInt8>) -> (Int, Int?) {
        var parameters: [String] = []
        var current: [UInt8] = []
        var depth = 0
        for c in list {
            if opens(c) { depth += 1 } else if closes(c), !(c == UInt8(ascii: ">") && current.last == UInt8(ascii: "=")) { depth -= 1 }
            if c == UInt8(ascii: ","), depth == 0 {
                parameters.append(collapsed(current[...]))
                current = []
            } else {
                current.append(c)
            }
        }
        parameters.append(collapsed(current[...]))
        parameters = parameters.filter { !$0.isEmpty && !$0.hasPrefix("this:") && !$0.hasPrefix("this :") }
        var required = 0
        for parameter in parameters {
            if parameter.hasPrefix("...") { return (required, nil) }
            let head = parameter.prefix { $0 != ":" && $0 != "=" }
            if !head.hasSuffix("?") && !parameter.contains("=") { required += 1 }
        }
        return (required, parameters.count)
    }

    // MARK: - Bytes

    /// The code with `//` and `/* */` comments blanked (line breaks kept), strings untouched.
    static func withoutComments(_ bytes: [UInt8]) -> [UInt8] {
        var out = bytes
        var index = 0
        var quote: UInt8?
        while index < out.count {
            let c = out[index]
            if let open = quote {
                if c == UInt8(ascii: "\\") { index += 2; continue }
                if c == open || (c == UInt8(ascii: "\n") && open != UInt8(ascii: "`")) { quote = nil }
            } else if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") || c == UInt8(ascii: "`") {
                quote = c
            } else if c == UInt8(ascii: "/"), index + 1 < out.count, out[index + 1] == UInt8(ascii: "/") {
                while index < out.count, out[index] != UInt8(ascii: "\n") { out[index] = UInt8(ascii: " "); index += 1 }
                continue
            } else if c == UInt8(ascii: "/"), index + 1 < out.count, out[index + 1] == UInt8(ascii: "*") {
                while index < out.count, !(out[index] == UInt8(ascii: "*") && index + 1 < out.count && out[index + 1] == UInt8(ascii: "/")) {
                    if out[index] != UInt8(ascii: "\n") { out[index] = UInt8(ascii: " ") }
                    index += 1
                }
                for end in index..<min(index + 2, out.count) { out[end] = UInt8(ascii: " ") }
                index += 2
                continue
            }
            index += 1
        }
        return out
    }

    /// Past the bracket that closes the one at `from` (any kind, `=>` aside); the end when it never closes.
    private static func balanced(_ code: [UInt8], from: Int) -> Int {
        var depth = 0
        var quote: UInt8?
        var index = from
        while index < code.count {
            if inString(code, &index, &quote) { continue }
            if opens(code[index]) {
                depth += 1
            } else if closesBracket(code, index) {
                depth -= 1
                if depth == 0 { return index + 1 }
            }
            index += 1
        }
        return code.count
    }

    /// Steps over string literals in a scan: true when the byte at `index` belongs to a string,
    /// its quotes included, and `index` has moved past it.
    private static func inString(_ code: [UInt8], _ index: inout Int, _ quote: inout UInt8?) -> Bool {
        let c = code[index]
        if let open = quote {
            if c == UInt8(ascii: "\\") { index += 1 } else if c == open { quote = nil }
        } else if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") || c == UInt8(ascii: "`") {
            quote = c
        } else {
            return false
        }
        index += 1
        return true
    }

    /// A closing bracket, the `>` of an arrow `=>` aside.
    private static func closesBracket(_ code: [UInt8], _ index: Int) -> Bool {
        closes(code[index]) && !(code[index] == UInt8(ascii: ">") && index > 0 && code[index - 1] == UInt8(ascii: "="))
    }

    /// The token that ends just before `index`: a word, or one punctuation byte; "" at the start.
    private static func previousToken(in code: [UInt8], before index: Int) -> (text: String, start: Int) {
        var end = index - 1
        while end >= 0, isSpace(code[end]) { end -= 1 }
        guard end >= 0 else { return ("", 0) }
        guard isIdentifier(code[end]) else { return (String(UnicodeScalar(code[end])), end) }
        var start = end
        while start > 0, isIdentifier(code[start - 1]) { start -= 1 }
        return (String(decoding: code[start...end], as: UTF8.self), start)
    }

    private static func collapsed(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
            .replacingOccurrences(of: "( ", with: "(").replacingOccurrences(of: " )", with: ")")
            .replacingOccurrences(of: "< ", with: "<").replacingOccurrences(of: " >", with: ">")
    }

    private static func trimmedEnd(_ code: [UInt8], _ index: Int) -> Int {
        var end = index
        while end > 0, isSpace(code[end - 1]) { end -= 1 }
        return end
    }

    private static func skipSpace(_ code: [UInt8], _ from: Int) -> Int {
        var index = from
        while index < code.count, isSpace(code[index]) { index += 1 }
        return index
    }

    private static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x09 || c == 0x0D }
    private static func isIdentifier(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x24 || c >= 0x80
    }
    private static func opens(_ c: UInt8) -> Bool { c == 0x28 || c == 0x5B || c == 0x7B || c == 0x3C }
    private static func closes(_ c: UInt8) -> Bool { c == 0x29 || c == 0x5D || c == 0x7D || c == 0x3E }
}
