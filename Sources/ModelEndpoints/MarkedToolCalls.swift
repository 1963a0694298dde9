import Foundation
import JSONCore

/// The dialects of 2025-2026 that mark their calls with special tokens or tags, byte for byte as
/// ../shared/reference/tool-call-dialects-2026.md records them. Each is an opening marker, a
/// closing one (optional: models drop it), section markers around the calls that leave the prose
/// with them, and what the body between holds.
extension TextToolCalls {
    /// What a marked call's body holds.
    enum Body {
        /// One or more JSON call objects (`{"name":…,"arguments":…}`), or a list of them.
        case json
        /// A tool name, separator tokens, then a JSON arguments object.
        case nameThenJSON
        /// `<PREFIXinvoke name="N"><PREFIXparameter name="K">V</PREFIXparameter></PREFIXinvoke>`.
        case invoke(prefix: String)
        /// `NAME<arg_key>K</arg_key><arg_value>V</arg_value>…`.
        case argumentPairs
        /// `call:NAME{k:"v",…}` with strings between `quote` tokens.
        case gemma(quote: String)
        /// Python calls, in a list or one per line.
        case pythonic
        /// `[{"NAME":{…}}]`.
        case nameKeyed
    }

    struct Marked {
        var dialect: ToolCallDialect
        var open: String
        var close: String?
        var sections: [String] = []
        var body: Body
    }

    static let marked: [Marked] = [
        Marked(dialect: .deepseekDSML, open: "<｜DSML｜function_calls>", close: "</｜DSML｜function_calls>", body: .invoke(prefix: "｜DSML｜")),
        // DeepSeek V4 wraps the same invokes in `tool_calls` (vLLM's deepseekv4 parser).
        Marked(dialect: .deepseekDSML, open: "<｜DSML｜tool_calls>", close: "</｜DSML｜tool_calls>", body: .invoke(prefix: "｜DSML｜")),
        Marked(dialect: .step3, open: "<｜tool_call_begin｜>", close: "<｜tool_call_end｜>", sections: ["<｜tool_calls_begin｜>", "<｜tool_calls_end｜>"],
            body: .invoke(prefix: "steptml:")),
        Marked(dialect: .deepseek, open: "<｜tool▁call▁begin｜>", close: "<｜tool▁call▁end｜>", sections: ["<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"],
            body: .nameThenJSON),
        Marked(dialect: .kimiK2, open: "<|tool_call_begin|>", close: "<|tool_call_end|>",
            sections: ["<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"], body: .nameThenJSON),
        Marked(dialect: .minimaxM2, open: "<minimax:tool_call>", close: "</minimax:tool_call>", body: .invoke(prefix: "")),
        Marked(dialect: .gemma4, open: "<|tool_call>", close: "<tool_call|>", body: .gemma(quote: "<|\"|>")),
        Marked(dialect: .functionGemma, open: "<start_function_call>", close: "<end_function_call>", body: .gemma(quote: "<escape>")),
        Marked(dialect: .lfm2, open: "<|tool_call_start|>", close: "<|tool_call_end|>", body: .pythonic),
        Marked(dialect: .llama4Pythonic, open: "<|python_start|>", close: "<|python_end|>", body: .pythonic),
        Marked(dialect: .olmo3, open: "<function_calls>", close: "</function_calls>", body: .pythonic),
        Marked(dialect: .apertus, open: "<|tools_prefix|>", close: "<|tools_suffix|>", body: .nameKeyed),
        Marked(dialect: .solarOpen, open: "<|tool_call:begin|>", close: "<|tool_call:end|>", sections: ["<|tool_calls|>"], body: .nameThenJSON),
        Marked(dialect: .nemotron, open: "<TOOLCALL>", close: "</TOOLCALL>", body: .nameThenJSON),
        Marked(dialect: .longcat, open: "<longcat_tool_call>", close: "</longcat_tool_call>", body: .json),
        Marked(dialect: .minimax, open: "<tool_calls>", close: "</tool_calls>", body: .json),
        Marked(dialect: .glm, open: "<tool_call>", close: "</tool_call>", body: .argumentPairs),
        // GigaChat 3 ends the content before its call with a message separator, and the call with `</s>`.
        Marked(dialect: .gigachat, open: "function call", close: nil, sections: ["<|message_sep|>", "</s>"], body: .json),
        Marked(dialect: .gigachat, open: "<|function_call|>", close: nil, sections: ["</s>"], body: .json),
        Marked(dialect: .granite, open: "<|tool_call|>", close: nil, body: .json),
    ]

    /// Markers that show an attempt at a call even when nothing parses.
    static let markedOpenings = marked.map(\.open) + ["to=functions.", "<|call|>", "<|constrain|>", "<｜DSML｜invoke", "<arg_key>"]

    var markedDialects: [(String) -> Found?] {
        [harmony] + Self.marked.map { dialect in { self.scanMarked($0, dialect) } }
    }

    // MARK: Scanning

    /// Whether some `open`…`close` span holds nothing but a registered tool's name.
    private func holdsBareName(_ text: String, after open: String, before close: String?) -> Bool {
        guard let close else { return false }
        return text.ranges(of: open).contains { start in
            guard let end = text.range(of: close, range: start.upperBound..<text.endIndex) else { return false }
            return tools[text[start.upperBound..<end.lowerBound].trimmingCharacters(in: .whitespacesAndNewlines)] != nil
        }
    }

    private func scanMarked(_ text: String, _ marked: Marked) -> Found? {
        guard text.contains(marked.open) else { return nil }
        // GLM shares `<tool_call>` with Hermes: only its key tags, or a bare tool name, make it GLM's.
        if case .argumentPairs = marked.body, !text.contains("<arg_key>"), !holdsBareName(text, after: marked.open, before: marked.close) { return nil }
        var scan = Scan(text)
        while let open = scan.next(marked.open) {
            let rest = open.upperBound..<text.endIndex
            let nextOpen = text.range(of: marked.open, range: rest)?.lowerBound ?? text.endIndex
            let close = marked.close.flatMap { text.range(of: $0, range: rest) }.flatMap { $0.lowerBound <= nextOpen ? $0 : nil }
            let bodyEnd = close?.lowerBound ?? nextOpen
            let (calls, end) = body(text[open.upperBound..<bodyEnd], marked.body)
            // With no closing marker, the call ends where its JSON does.
            scan.take(open.lowerBound..<(close?.upperBound ?? (marked.close == nil ? end : nil) ?? bodyEnd), calls: calls)
        }
        guard var found = scan.found(marked.dialect) else { return nil }
        found.endsText = scan.endsText(ignoring: marked.sections)
        for section in marked.sections { found.prose = found.prose.replacingOccurrences(of: section, with: "") }
        found.prose = found.prose.trimmingCharacters(in: .whitespacesAndNewlines)
        return found
    }

    /// The calls a body holds, and where the last one ended (for a dialect with no closing marker).
    private func body(_ body: Substring, _ kind: Body) -> ([(String, String)], String.Index?) {
        var repairs: [String] = []
        switch kind {
        case .json:
            var body = body
            // GigaChat 3 may put its role separator between the trigger and the JSON.
            if let separator = body.range(of: "<|role_sep|>"), body[..<separator.lowerBound].allSatisfy(\.isWhitespace) {
                body = body[separator.upperBound...]
            }
            let start = body.firstIndex { !$0.isWhitespace } ?? body.endIndex
            guard start < body.endIndex, body[start] == "{" || body[start] == "[" else { return ([], nil) }
            let text = String(body)
            if let calls = joinedObjects(text, strict: false, repairs: &repairs) { return (calls, body.endIndex) }
            // Object by object (MiniMax writes one per line): a bad one does not end the block.
            var skipped: [String] = []
            let (calls, stop) = eachObject(text, from: text.index(text.startIndex, offsetBy: body.distance(from: body.startIndex, to: start)), skipped: &skipped, repairs: &repairs)
            if !calls.isEmpty { repairs += Self.skippedNotes(skipped) }
            return (calls, body.index(body.startIndex, offsetBy: text.distance(from: text.startIndex, to: stop)))
        case .nameThenJSON:
            let trimmed = body.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.hasPrefix("[") || trimmed.hasPrefix("{") { return (joinedObjects(trimmed, strict: false, repairs: &repairs) ?? [], nil) }
            guard let brace = body.firstIndex(of: "{") else { return ([], nil) }
            // The name is the last word before the arguments that names a tool, once the
            // separator tokens, a `function` type, a fence and Kimi's `functions.` and `:0` are gone.
            let head = body[..<brace].replacingOccurrences(of: #"<[^<>]*>|```\w*"#, with: " ", options: .regularExpression)
            let words = head.split(whereSeparator: { $0.isWhitespace }).map { word -> String in
                var name = word.hasPrefix("functions.") ? String(word.dropFirst(10)) : String(word)
                if let colon = name.lastIndex(of: ":"), name[name.index(after: colon)...].allSatisfy(\.isNumber) { name = String(name[..<colon]) }
                return name
            }
            guard let name = words.last(where: { tools[$0] != nil }) else { return ([], nil) }
            let text = String(body)
            let span = Self.jsonSpan(in: text, from: text.index(text.startIndex, offsetBy: body.distance(from: body.startIndex, to: brace)))
            return ([(name, String(text[span]))], nil)
        case .invoke(let prefix):
            return (invokes(body, prefix: prefix), nil)
        case .argumentPairs:
            guard let first = body.range(of: "<arg_key>") else {
                // A call with no arguments is its name alone: `<tool_call>git_status</tool_call>`.
                let name = body.trimmingCharacters(in: .whitespacesAndNewlines)
                return tools[name] != nil ? ([(name, "{}")], nil) : ([], nil)
            }
            let name = body[..<first.lowerBound].trimmingCharacters(in: .whitespacesAndNewlines)
            guard tools[name] != nil else { return ([], nil) }
            var arguments: [String: JSONValue] = [:]
            for key in body.ranges(of: "<arg_key>") {
                guard let keyEnd = body.range(of: "</arg_key>", range: key.upperBound..<body.endIndex),
                    let value = body.range(of: "<arg_value>", range: keyEnd.upperBound..<body.endIndex)
                else { continue }
                let valueEnd = body.range(of: "</arg_value>", range: value.upperBound..<body.endIndex)?.lowerBound ?? body.endIndex
                let parameter = body[key.upperBound..<keyEnd.lowerBound].trimmingCharacters(in: .whitespaces)
                arguments[parameter] = typed(String(body[value.upperBound..<valueEnd]), tool: name, parameter: parameter)
            }
            return ([(name, JSONValue.object(arguments).jsonText)], nil)
        case .gemma(let quote):
            var reader = GemmaCall(text: Array(body), quote: Array(quote))
            var calls: [(String, String)] = []
            while let (name, arguments) = reader.call() {
                guard tools[name] != nil else { continue }
                calls.append((name, JSONValue.object(typedArguments(arguments, tool: name)).jsonText))
            }
            return (calls, nil)
        case .pythonic:
            var code = body.trimmingCharacters(in: .whitespacesAndNewlines)
            if code.hasPrefix("["), code.hasSuffix("]") { code = String(code.dropFirst().dropLast()) }
            if code.hasPrefix("{") { return (joinedObjects(code, strict: false, repairs: &repairs) ?? [], nil) }
            var skipped: [String] = []
            let found = known(PythonCalls.parse(code, skipped: &skipped) ?? [], skipped: &skipped)
            if !found.isEmpty { repairs += Self.skippedNotes(skipped) }
            return (found, nil)
        case .nameKeyed:
            guard case .success(let value) = ArgumentRepair.lenientParse(String(body), repairs: &repairs) else { return ([], nil) }
            let calls = (value.arrayValue ?? [value]).compactMap { item -> (String, String)? in
                guard let object = item.objectValue, object.count == 1, let (name, arguments) = object.first, tools[name] != nil else { return nil }
                return (name, arguments.jsonText)
            }
            return (calls, nil)
        }
    }

    /// `<PREFIXinvoke name="N">` calls with `<PREFIXparameter name="K" string="true|false">V` values;
    /// `string="false"` values are JSON, the others are typed by the schema.
    private func invokes(_ body: Substring, prefix: String) -> [(String, String)] {
        var calls: [(String, String)] = []
        let invoke = "<\(prefix)invoke", parameter = "<\(prefix)parameter", parameterEnd = "</\(prefix)parameter>"
        var rest = body
        while let open = rest.range(of: invoke) {
            guard let headEnd = rest[open.upperBound...].firstIndex(of: ">") else { break }
            let head = rest[open.upperBound..<headEnd]
            let end = rest.range(of: "</\(prefix)invoke>", range: headEnd..<rest.endIndex)
            let inner = rest[headEnd..<(end?.lowerBound ?? rest.endIndex)]
            rest = rest[(end?.upperBound ?? rest.endIndex)...]
            guard let name = Self.attribute("name", in: head), tools[name] != nil else { continue }
            var arguments: [String: JSONValue] = [:]
            // Some write the arguments as one JSON object instead of parameter tags.
            let body = inner.dropFirst().trimmingCharacters(in: .whitespacesAndNewlines)
            if !inner.contains(parameter), body.hasPrefix("{") {
                var fixes: [String] = []
                guard case .success(let json) = ArgumentRepair.lenientParse(body, repairs: &fixes), let object = json.objectValue else { continue }
                calls.append((name, JSONValue.object(object).jsonText))
                continue
            }
            for found in inner.ranges(of: parameter) {
                guard let tagEnd = inner[found.upperBound...].firstIndex(of: ">"),
                    let key = Self.attribute("name", in: inner[found.upperBound..<tagEnd])
                else { continue }
                let valueEnd = inner.range(of: parameterEnd, range: tagEnd..<inner.endIndex)?.lowerBound ?? inner.endIndex
                let raw = String(inner[inner.index(after: tagEnd)..<valueEnd])
                if Self.attribute("string", in: inner[found.upperBound..<tagEnd]) == "false", let json = try? JSONValue.parse(raw) {
                    arguments[key] = json
                } else {
                    arguments[key] = typed(raw, tool: name, parameter: key)
                }
            }
            calls.append((name, JSONValue.object(arguments).jsonText))
        }
        return calls
    }

    private static func attribute(_ name: String, in tag: Substring) -> String? {
        guard let start = tag.range(of: name + "=\"") else { return nil }
        guard let end = tag[start.upperBound...].firstIndex(of: "\"") else { return nil }
        return String(tag[start.upperBound..<end])
    }

    /// Bare values (Gemma writes numbers and booleans unquoted) typed by the schema.
    private func typedArguments(_ arguments: [String: JSONValue], tool: String) -> [String: JSONValue] {
        arguments.reduce(into: [:]) { result, pair in
            guard case .string(let raw) = pair.value else { return result[pair.key] = pair.value }
            result[pair.key] = typed(raw, tool: tool, parameter: pair.key)
        }
    }

    // MARK: Harmony

    /// gpt-oss: a message addressed `to=functions.NAME` (in the header or after the channel),
    /// whose JSON follows `<|message|>` and ends at `<|call|>`.
    private func harmony(_ text: String) -> Found? {
        guard text.contains("to=functions.") else { return nil }
        var scan = Scan(text)
        while let recipient = scan.next("to=functions.") {
            var cursor = recipient.upperBound
            while cursor < text.endIndex, text[cursor].isLetter || text[cursor].isNumber || "_-.".contains(text[cursor]) {
                cursor = text.index(after: cursor)
            }
            let name = String(text[recipient.upperBound..<cursor])
            guard let message = text.range(of: "<|message|>", range: cursor..<text.endIndex) else { break }
            let start = scan.skipSpace(from: message.upperBound)
            guard start < text.endIndex, text[start] == "{" else { continue }
            // The message ends at the next special token: JSON cut off before it closes (a reply
            // cut at its token limit) is no call, and what follows stays the reply's text.
            let bodyEnd = text.range(of: "<|", range: start..<text.endIndex)?.lowerBound ?? text.endIndex
            let span = Self.jsonSpan(in: text, from: start)
            guard span.upperBound <= bodyEnd, text[text.index(before: span.upperBound)] == "}",
                case .success(let arguments) = ArgumentRepair.lenientParse(String(text[span]), repairs: &scan.repairs), arguments.objectValue != nil
            else { continue }
            // The call's message begins at its `<|start|>`, or at its `<|channel|>` when the server
            // dropped that; one that has neither after the previous message is not a message of its own.
            let before = text.startIndex..<recipient.lowerBound
            let channel = text.range(of: "<|channel|>", options: .backwards, range: before)?.lowerBound
            let opening = text.range(of: "<|start|>", options: .backwards, range: before)?.lowerBound
            let own = [opening, channel].compactMap { $0 }.filter { index in
                let between = text[index..<recipient.lowerBound]
                return !between.contains("<|end|>") && !between.contains("<|call|>")
            }
            let previousCall = text.range(of: "<|call|>", options: .backwards, range: before) != nil
            guard let header = own.min() ?? (previousCall ? nil : recipient.lowerBound) else { continue }
            scan.take(header..<scan.closing("<|call|>", after: span.upperBound), calls: tools[name] == nil ? [] : [(name, String(text[span]))])
        }
        guard var found = scan.found(.harmony) else { return nil }
        // What is left is the other messages' text (reasoning on the analysis channel), without their headers.
        found.prose = found.prose.replacingOccurrences(of: #"<\|start\|>\w*|<\|channel\|>\w*|<\|message\|>|<\|end\|>|<\|return\|>"#, with: "\n", options: .regularExpression)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return found
    }
}

/// Gemma's call syntax: `call:NAME{key:value,…}` with bare keys, strings between quote tokens,
/// bare numbers and booleans, nested objects and lists; calls may follow each other directly.
private struct GemmaCall {
    let text: [Character]
    let quote: [Character]
    var index = 0
    var depth = 0

    mutating func call() -> (String, [String: JSONValue])? {
        guard let found = find(Array("call:")) else { return nil }
        index = found + 5
        let start = index
        while index < text.count, text[index] != "{" { index += 1 }
        let name = String(text[start..<index]).trimmingCharacters(in: .whitespaces)
        guard case .object(let arguments)? = value() else { return nil }
        return (name, arguments)
    }

    private func find(_ word: [Character]) -> Int? {
        var at = index
        while at + word.count <= text.count {
            if Array(text[at..<(at + word.count)]) == word { return at }
            at += 1
        }
        return nil
    }

    private var atQuote: Bool { index + quote.count <= text.count && Array(text[index..<(index + quote.count)]) == quote }

    private mutating func skipSpace() { while index < text.count, text[index].isWhitespace { index += 1 } }

    /// A JSON string starting at `index` (its escapes decoded); nil, and `index` unmoved, when it never closes.
    private mutating func jsonString() -> String? {
        var end = index + 1
        while end < text.count, text[end] != "\"" {
            end += text[end] == "\\" ? 2 : 1
        }
        guard end < text.count, case .string(let decoded)? = try? JSONValue.parse(String(text[index...end])) else { return nil }
        index = end + 1
        return decoded
    }

    mutating func value() -> JSONValue? {
        skipSpace()
        guard index < text.count, depth < 64 else { return nil }
        if atQuote {
            index += quote.count
            let start = index
            while index < text.count, !atQuote { index += 1 }
            let string = String(text[start..<min(index, text.count)])
            index = min(index + quote.count, text.count)
            return .string(string)
        }
        // Models also write an ordinary JSON string where their quote token belongs: its quotes
        // are markup, not part of the value.
        if text[index] == "\"", let string = jsonString() { return .string(string) }
        if text[index] == "{" || text[index] == "[" {
            let isObject = text[index] == "{"
            let close: Character = isObject ? "}" : "]"
            index += 1
            depth += 1
            defer { depth -= 1 }
            var object: [String: JSONValue] = [:]
            var list: [JSONValue] = []
            while true {
                skipSpace()
                guard index < text.count else { return nil }
                if text[index] == close { index += 1; break }
                if text[index] == "," { index += 1; continue }
                if isObject {
                    let key: String
                    if atQuote, case .string(let quoted)? = value() {
                        key = quoted
                    } else {
                        let start = index
                        while index < text.count, text[index] != ":", text[index] != close { index += 1 }
                        key = String(text[start..<index]).trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
                    }
                    skipSpace()
                    guard index < text.count, text[index] == ":" else { return nil }
                    index += 1
                    guard let item = value() else { return nil }
                    object[key] = item
                } else {
                    guard let item = value() else { return nil }
                    list.append(item)
                }
            }
            return isObject ? .object(object) : .array(list)
        }
        // A bare scalar, up to the next comma or closer.
        let start = index
        while index < text.count, !",}]".contains(text[index]) { index += 1 }
        let raw = String(text[start..<index]).trimmingCharacters(in: .whitespaces)
        switch raw {
        case "true": return .bool(true)
        case "false": return .bool(false)
        case "null": return .null
        default: return (try? JSONValue.parse(raw)).flatMap { $0.typeName == "number" || $0.typeName == "integer" ? $0 : nil } ?? .string(raw)
        }
    }
}
