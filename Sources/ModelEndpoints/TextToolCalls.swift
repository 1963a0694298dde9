import Foundation
import JSONCore

/// How a model wrote its tool calls when the server handed them back as plain text.
public enum ToolCallDialect: String, Sendable, CaseIterable, Codable {
    /// Hermes 2 Pro, Qwen 2.5/3: `<tool_call>{"name":…,"arguments":{…}}</tool_call>` (closing tag optional).
    case hermes
    /// Qwen3-Coder: `<tool_call><function=NAME><parameter=K>V</parameter></function></tool_call>`.
    case qwen3CoderXML = "qwen3-coder-xml"
    /// Mistral: `[TOOL_CALLS][{…}]`, and since tokenizer v11 `[TOOL_CALLS]name{json}` or `name[ARGS]{json}`.
    case mistral
    /// Llama 3.x: `{"name":…,"parameters"|"arguments":…}`, optionally after `<|python_tag|>`, several joined by `;`.
    case llama3JSON = "llama3-json"
    /// `[fn(a=1, b='x')]`.
    case pythonic
    /// A ```json fence holding a call.
    case jsonFence = "json-fence"
    /// A ```tool_code fence (Gemma) holding `fn(a=1)` or JSON.
    case toolCodeFence = "tool-code-fence"
    /// `{"tool_call":{…}}` or `{"tool_calls":[…]}` (llama.cpp's generic format; Devstral writes it as text).
    case genericJSON = "generic-json"
    /// `<function=NAME>{json}</function>`.
    case functionTag = "function-tag"
    /// gpt-oss Harmony: `<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{…}<|call|>`,
    /// the recipient in the header or on the analysis channel too.
    case harmony
    /// GLM-4.5/4.6/4.7: `<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value></tool_call>`.
    case glm
    /// DeepSeek V3/R1 (`function<｜tool▁sep｜>NAME` and a json fence) and V3.1 (`NAME<｜tool▁sep｜>{…}`).
    case deepseek
    /// DeepSeek V3.2: `<｜DSML｜invoke name="N"><｜DSML｜parameter name="K" string="true">V</…>`.
    case deepseekDSML = "deepseek-dsml"
    /// Kimi K2: `<|tool_call_begin|>functions.NAME:0<|tool_call_argument_begin|>{…}<|tool_call_end|>`.
    case kimiK2 = "kimi-k2"
    /// MiniMax-M2: `<minimax:tool_call><invoke name="N"><parameter name="K">V</parameter></invoke>…`.
    case minimaxM2 = "minimax-m2"
    /// Older MiniMax: `<tool_calls>` and one JSON call per line.
    case minimax
    /// Seed-OSS: Qwen3-Coder's XML inside `<seed:tool_call>`.
    case seedOSS = "seed-oss"
    /// Step-3: DeepSeek's markers (with `_`) around `<steptml:invoke name="N">`.
    case step3 = "step-3"
    /// Gemma 4: `<|tool_call>call:NAME{k:<|"|>v<|"|>}<tool_call|>`.
    case gemma4 = "gemma-4"
    /// FunctionGemma: `<start_function_call>call:NAME{k:<escape>v<escape>}<end_function_call>`.
    case functionGemma = "functiongemma"
    /// LFM2: `<|tool_call_start|>[NAME(k='v')]<|tool_call_end|>`.
    case lfm2
    /// Llama 4: `<|python_start|>[NAME(k="v")]<|python_end|>`.
    case llama4Pythonic = "llama4-pythonic"
    /// Olmo 3: `<function_calls>` and one `NAME(k="v")` per line.
    case olmo3 = "olmo-3"
    /// Apertus: `<|tools_prefix|>[{"NAME":{…}}]<|tools_suffix|>`.
    case apertus
    /// Solar Open: `<|tool_call:begin|>0<|tool_call:name|>NAME<|tool_call:args|>{…}<|tool_call:end|>`.
    case solarOpen = "solar-open"
    /// Nemotron: `<TOOLCALL>NAME{…}</TOOLCALL>` or a JSON list of calls inside.
    case nemotron
    /// GigaChat 3: `function call{"name":…,"arguments":{…}}`, with `<|role_sep|>` before the JSON
    /// or 3.1's `<|function_call|>` header.
    case gigachat
    /// Granite 3: `<|tool_call|>[{"name":…,"arguments":{…}}]`.
    case granite
    /// Longcat: `<longcat_tool_call>{"name":…,"arguments":{…}}</longcat_tool_call>`.
    case longcat
}

/// Finds tool calls written as text, in the dialect of each model family. Only registered tools
/// are accepted. Explicit markers (`<tool_call>`, `[TOOL_CALLS]`, `<|python_tag|>`, `<function=`)
/// are enough to make a call; bare or fenced JSON must also name a tool and carry arguments that
/// fit its schema, so prose that merely contains JSON is not a call.
public struct TextToolCalls: Sendable {
    public struct Found: Sendable, Equatable {
        /// The calls in order; ids are left empty for the caller to assign.
        public var calls: [ToolCall]
        public var dialect: ToolCallDialect
        /// The text with the calls taken out.
        public var prose: String
        /// Repairs made to the JSON the calls were written in.
        public var repairs: [String]
        /// Whether nothing but space follows the last call: a call that ends a reasoning is one
        /// the model made; one with more thinking after it is one it was quoting or weighing.
        public var endsText = true
    }

    let tools: [String: ToolSpec]

    public init(tools: [ToolSpec]) {
        self.tools = Dictionary(tools.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    static let markers = ["<tool_call>", "[TOOL_CALLS]", "<|python_tag|>", "<function=", "\"tool_calls\"", "\"tool_call\""] + markedOpenings

    /// The calls the text holds, in the first dialect that yields any. Thinking written into the
    /// content (`<think>…</think>`, Seed-OSS's `<seed:think>`) is thought, not action: a call in a
    /// block the model closed never runs (Ollama's parsers and vLLM's reasoning parsers keep it
    /// out), whether it quotes an example or weighs a call it then drops. Only a thinking block
    /// left open, with no content outside it, may end in the call the model meant to make (see
    /// `reasoningCalls`).
    public func parse(_ text: String) -> Found? {
        guard let split = Self.splitThinking(text) else { return parseAll(text) }
        if let found = parseAll(split.outside) { return found }
        guard split.leftOpen, split.outside.allSatisfy(\.isWhitespace) else { return nil }
        return reasoningCalls(split.thinking).map { found in
            var found = found
            found.prose = ""
            return found
        }
    }

    /// The calls a reasoning holds when they are its last act; nil when it goes on thinking
    /// after them (an example it quotes, a call it weighs and drops), as the peers' reasoning
    /// parsers keep calls out of reasoning. For the reasoning a server split off: a model whose
    /// template puts calls there (llama.cpp#29248) may still write a line of content beside them.
    public func reasoningCalls(_ reasoning: String) -> Found? {
        guard let found = parseAll(reasoning), found.endsText else { return nil }
        return found
    }

    /// The content outside thinking blocks, the thinking, and whether the last block is left
    /// open; nil when there is no block. A close with no opening before it ends a thinking that
    /// began in the prompt (templates that open `<think>` for the model).
    static func splitThinking(_ text: String) -> (outside: String, thinking: String, leftOpen: Bool)? {
        for (open, close) in [("<think>", "</think>"), ("<seed:think>", "</seed:think>")] where text.contains(open) || text.contains(close) {
            var outside = "", thinking = ""
            var rest = text[...]
            if let end = rest.range(of: close), !rest[..<end.lowerBound].contains(open) {
                thinking += rest[..<end.lowerBound]
                rest = rest[end.upperBound...]
            }
            while let start = rest.range(of: open) {
                outside += rest[..<start.lowerBound]
                guard let end = rest.range(of: close, range: start.upperBound..<rest.endIndex) else {
                    return (outside, thinking + rest[start.upperBound...], true)
                }
                thinking += rest[start.upperBound..<end.lowerBound]
                rest = rest[end.upperBound...]
            }
            return (outside + rest, thinking, false)
        }
        return nil
    }

    private func parseAll(_ text: String) -> Found? {
        let attempts: [(String) -> Found?] = markedDialects + [qwenXML, hermes, functionTag, mistral, pythonTag, wholeJSON, pythonic, fences]
        for attempt in attempts {
            if let found = attempt(text), !found.calls.isEmpty { return found }
        }
        return nil
    }

    /// Whether the text looks like an attempt at a tool call that nothing here could parse.
    public func looksLikeAttempt(_ text: String) -> Bool {
        if Self.markers.contains(where: text.contains) { return true }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let jsonish = (trimmed.hasPrefix("{") || trimmed.hasPrefix("```")) && trimmed.contains("\"name\"")
        return jsonish && (trimmed.contains("\"arguments\"") || trimmed.contains("\"parameters\""))
    }

    // MARK: Dialects

    /// `<tool_call>` and the other tags Hermes-style models wrap their JSON in (llama.cpp's
    /// Hermes 2 Pro parser takes the same set). Only `<tool_call>` is a marker of its own: inside
    /// the others the JSON must be a call of a known tool whose arguments fit its schema.
    static let hermesTags: [(open: String, close: String, strict: Bool)] = [("<tool_call>", "</tool_call>", false)]
        + ["function_call", "tools", "tool", "response", "json", "JSON", "xml"].map { ("<\($0)>", "</\($0)>", true) }

    private func hermes(_ text: String) -> Found? {
        for tag in Self.hermesTags where text.contains(tag.open) {
            if let found = hermes(text, tag: tag), !found.calls.isEmpty { return found }
        }
        return nil
    }

    private func hermes(_ text: String, tag: (open: String, close: String, strict: Bool)) -> Found? {
        var scan = Scan(text)
        while let marker = scan.next(tag.open) {
            var start = scan.skipSpace(from: marker.upperBound)
            guard start < text.endIndex, text[start] == "{" || text[start] == "[" else { continue }
            // Every call in the block: one object, a list, or several objects in a row.
            var calls: [(String, String)] = []
            var end = start
            while start < text.endIndex, text[start] == "{" || text[start] == "[" {
                let span = Self.jsonSpan(in: text, from: start)
                calls += items(String(text[span]), strict: tag.strict, repairs: &scan.repairs)
                end = span.upperBound
                start = end
                while start < text.endIndex, text[start].isWhitespace || text[start] == "," || text[start] == ";" { start = text.index(after: start) }
            }
            scan.take(marker.lowerBound..<scan.closing(tag.close, after: end), calls: calls)
        }
        return scan.found(.hermes)
    }

    private func qwenXML(_ text: String) -> Found? {
        guard text.contains("<parameter=") else { return nil }
        var scan = Scan(text)
        while let open = scan.next("<function=") {
            guard let nameEnd = text[open.upperBound...].firstIndex(of: ">") else { break }
            let name = text[open.upperBound..<nameEnd].trimmingCharacters(in: .whitespaces)
            // A function left open ends where the next one starts: it never takes that one's parameters.
            let nextFunction = text.range(of: "<function=", range: nameEnd..<text.endIndex)
            var bodyEnd = text.range(of: "</function>", range: nameEnd..<text.endIndex)
            if let nextFunction, bodyEnd.map({ nextFunction.lowerBound < $0.lowerBound }) ?? true {
                bodyEnd = nextFunction.lowerBound..<nextFunction.lowerBound
            }
            let body = text[text.index(after: nameEnd)..<(bodyEnd?.lowerBound ?? text.endIndex)]
            var arguments: [String: JSONValue] = [:]
            var rest = body[...]
            while let p = rest.range(of: "<parameter=") {
                guard let keyEnd = rest[p.upperBound...].firstIndex(of: ">") else { break }
                let key = rest[p.upperBound..<keyEnd].trimmingCharacters(in: .whitespaces)
                // Without its closing tag (seen with Continue) a value ends at the next parameter.
                let next = rest.range(of: "<parameter=", range: keyEnd..<rest.endIndex)
                var valueEnd = rest.range(of: "</parameter>", range: keyEnd..<rest.endIndex)
                var closed = valueEnd != nil
                if let next, valueEnd.map({ next.lowerBound < $0.lowerBound }) ?? true {
                    valueEnd = next.lowerBound..<next.lowerBound
                    closed = false
                }
                let raw = rest[rest.index(after: keyEnd)..<(valueEnd?.lowerBound ?? rest.endIndex)]
                // A closed value keeps its bytes; an unclosed one has no edge to keep them by.
                arguments[key] = typed(closed ? String(raw) : raw.trimmingCharacters(in: .whitespacesAndNewlines), tool: name, parameter: key, ownLines: true)
                rest = rest[(valueEnd?.upperBound ?? rest.endIndex)...]
            }
            var start = open.lowerBound
            let seed = text.contains("<seed:tool_call>")
            let (opening, closing) = seed ? ("<seed:tool_call>", "</seed:tool_call>") : ("<tool_call>", "</tool_call>")
            if let wrapper = text.range(of: opening, options: .backwards, range: text.startIndex..<open.lowerBound),
                text[wrapper.upperBound..<open.lowerBound].allSatisfy(\.isWhitespace)
            {
                start = wrapper.lowerBound
            }
            let end = scan.closing(closing, after: bodyEnd?.upperBound ?? text.endIndex)
            scan.take(start..<end, calls: tools[name] == nil ? [] : [(name, JSONValue.object(arguments).jsonText)])
        }
        return scan.found(text.contains("<seed:tool_call>") ? .seedOSS : .qwen3CoderXML)
    }

    private func functionTag(_ text: String) -> Found? {
        var scan = Scan(text)
        while let open = scan.next("<function=") {
            guard let nameEnd = text[open.upperBound...].firstIndex(of: ">") else { break }
            let name = text[open.upperBound..<nameEnd].trimmingCharacters(in: .whitespaces)
            let start = scan.skipSpace(from: text.index(after: nameEnd))
            guard start < text.endIndex, text[start] == "{", tools[name] != nil else { continue }
            let span = Self.jsonSpan(in: text, from: start)
            scan.take(open.lowerBound..<scan.closing("</function>", after: span.upperBound), calls: [(name, String(text[span]))])
        }
        return scan.found(.functionTag)
    }

    private func mistral(_ text: String) -> Found? {
        var scan = Scan(text)
        while let marker = scan.next("[TOOL_CALLS]") {
            let start = scan.skipSpace(from: marker.upperBound)
            guard start < text.endIndex else { break }
            if text[start] == "[" {
                let span = Self.jsonSpan(in: text, from: start)
                scan.take(marker.lowerBound..<span.upperBound, calls: items(String(text[span]), strict: false, repairs: &scan.repairs))
                continue
            }
            // v11: name, then optionally [CALL_ID]id and [ARGS], then the arguments object.
            var cursor = start
            while cursor < text.endIndex, text[cursor].isLetter || text[cursor].isNumber || "_-.".contains(text[cursor]) { cursor = text.index(after: cursor) }
            let name = String(text[start..<cursor])
            if text[cursor...].hasPrefix("[CALL_ID]") {
                cursor = text.index(cursor, offsetBy: 9)
                while cursor < text.endIndex, text[cursor].isLetter || text[cursor].isNumber { cursor = text.index(after: cursor) }
            }
            if text[cursor...].hasPrefix("[ARGS]") { cursor = text.index(cursor, offsetBy: 6) }
            cursor = scan.skipSpace(from: cursor)
            guard cursor < text.endIndex, text[cursor] == "{", tools[name] != nil else { continue }
            let span = Self.jsonSpan(in: text, from: cursor)
            scan.take(marker.lowerBound..<span.upperBound, calls: [(name, String(text[span]))])
        }
        return scan.found(.mistral)
    }

    private func pythonTag(_ text: String) -> Found? {
        guard let marker = text.range(of: "<|python_tag|>") else { return nil }
        var scan = Scan(text)
        scan.take(marker.lowerBound..<text.endIndex, calls: joinedObjects(String(text[marker.upperBound...]), strict: false, repairs: &scan.repairs) ?? [])
        return scan.found(.llama3JSON)
    }

    /// The whole message is JSON: a generic `tool_call(s)` object, or Llama 3 call objects joined by `;`.
    private func wholeJSON(_ text: String) -> Found? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("{") || trimmed.hasPrefix("[") else { return nil }
        var repairs: [String] = []
        if case .success(let value) = ArgumentRepair.lenientParse(trimmed, repairs: &repairs),
            value["tool_call"] != nil || value["tool_calls"] != nil
        {
            var scan = Scan(text)
            scan.take(text.startIndex..<text.endIndex, calls: items(trimmed, strict: true, repairs: &scan.repairs))
            return scan.found(.genericJSON)
        }
        var scan = Scan(text)
        guard let calls = joinedObjects(trimmed, strict: true, repairs: &scan.repairs) else { return nil }
        scan.take(text.startIndex..<text.endIndex, calls: calls)
        return scan.found(trimmed.hasPrefix("[") ? .genericJSON : .llama3JSON)
    }

    private func pythonic(_ text: String) -> Found? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        var skipped: [String] = []
        guard trimmed.hasPrefix("["), trimmed.hasSuffix("]"), let calls = PythonCalls.parse(String(trimmed.dropFirst().dropLast()), skipped: &skipped)
        else { return nil }
        var scan = Scan(text)
        scan.take(text.startIndex..<text.endIndex, calls: known(calls, skipped: &skipped))
        scan.repairs += Self.skippedNotes(skipped)
        return scan.found(.pythonic)
    }

    /// The calls of registered tools; the others join `skipped`.
    func known(_ calls: [PythonCalls.Call], skipped: inout [String]) -> [(String, String)] {
        skipped += calls.filter { tools[$0.name] == nil }.map { "\($0.name)(…)" }
        return calls.filter { tools[$0.name] != nil }.map { ($0.name, JSONValue.object($0.arguments).jsonText) }
    }

    /// What the model reads about the elements of a list of calls that did not run.
    static func skippedNotes(_ skipped: [String]) -> [String] {
        skipped.filter { !$0.isEmpty }.map { "skipped `\($0.prefix(120))`: it is not a call of a known tool that can be read; the other calls ran" }
    }

    private func fences(_ text: String) -> Found? {
        var scan = Scan(text)
        var dialect = ToolCallDialect.jsonFence
        while let open = scan.next("```") {
            guard let lineEnd = text[open.upperBound...].firstIndex(of: "\n"),
                let close = text.range(of: "```", range: lineEnd..<text.endIndex)
            else { break }
            let language = text[open.upperBound..<lineEnd].trimmingCharacters(in: .whitespaces).lowercased()
            let body = text[text.index(after: lineEnd)..<close.lowerBound].trimmingCharacters(in: .whitespacesAndNewlines)
            var calls: [(String, String)] = []
            if language == "tool_code" || language == "python" {
                var code = body
                if code.hasPrefix("print("), code.hasSuffix(")") { code = String(code.dropFirst(6).dropLast()) }
                var skipped: [String] = []
                if let parsed = PythonCalls.parse(code, skipped: &skipped) {
                    calls = parsed.filter { valid($0.name, .object($0.arguments)) }.map { ($0.name, JSONValue.object($0.arguments).jsonText) }
                    if !calls.isEmpty {
                        dialect = .toolCodeFence
                        scan.repairs += Self.skippedNotes(skipped)
                    }
                }
            }
            if calls.isEmpty && (language.isEmpty || language == "json" || language == "xml" || language == "tool_code") {
                calls = joinedObjects(body, strict: true, repairs: &scan.repairs) ?? items(body, strict: true, repairs: &scan.repairs)
                if !calls.isEmpty && language == "tool_code" { dialect = .toolCodeFence }
            }
            scan.take(open.lowerBound..<close.upperBound, calls: calls)
        }
        return scan.found(dialect)
    }

    // MARK: Pieces

    /// Calls from a JSON call object, an array of them, or a generic `tool_call(s)` wrapper.
    func items(_ json: String, strict: Bool, repairs: inout [String]) -> [(String, String)] {
        var fixes: [String] = []
        guard case .success(let value) = ArgumentRepair.lenientParse(json, repairs: &fixes) else { return [] }
        let list: [JSONValue]
        if let wrapped = value["tool_calls"] {
            list = wrapped.arrayValue ?? [wrapped]
        } else if let single = value["tool_call"] {
            list = [single]
        } else {
            list = value.arrayValue ?? [value]
        }
        let calls = list.compactMap { call(from: $0, strict: strict) }
        // In a text call the arguments are an object; a string holding one was encoded twice.
        if list.contains(where: { ($0["arguments"] ?? $0["parameters"])?.stringValue != nil }) {
            fixes.append("decoded arguments that were a JSON object inside a string")
        }
        if !calls.isEmpty { repairs += fixes }
        return calls
    }

    /// Call objects joined by `;` (or one array of them); nil when anything else is in the text.
    func joinedObjects(_ text: String, strict: Bool, repairs: inout [String]) -> [(String, String)]? {
        var calls: [(String, String)] = []
        var cursor = text.startIndex
        while true {
            while cursor < text.endIndex, text[cursor].isWhitespace || text[cursor] == ";" { cursor = text.index(after: cursor) }
            guard cursor < text.endIndex else { break }
            guard text[cursor] == "{" || text[cursor] == "[" else { return nil }
            let span = Self.jsonSpan(in: text, from: cursor)
            let found = items(String(text[span]), strict: strict, repairs: &repairs)
            guard !found.isEmpty else { return nil }
            calls += found
            cursor = span.upperBound
        }
        return calls.isEmpty ? nil : calls
    }

    /// Call objects one after another from `start` (space, commas or `;` between them): one that
    /// cannot be read is skipped (its text goes to `skipped`) and its neighbours still count. Stops
    /// at the first text that is not an object; returns where.
    func eachObject(_ text: String, from start: String.Index, skipped: inout [String], repairs: inout [String]) -> ([(String, String)], String.Index) {
        var calls: [(String, String)] = []
        var cursor = start, end = start
        while true {
            while cursor < text.endIndex, text[cursor].isWhitespace || text[cursor] == ";" || text[cursor] == "," { cursor = text.index(after: cursor) }
            guard cursor < text.endIndex, text[cursor] == "{" || text[cursor] == "[" else { break }
            // A line that never closes its braces ends at its line's end, not at the text's.
            var span = Self.jsonSpan(in: text, from: cursor)
            if span.upperBound == text.endIndex, text[text.index(before: text.endIndex)] != "}" && text[text.index(before: text.endIndex)] != "]",
                let newline = text[cursor...].firstIndex(of: "\n")
            {
                span = cursor..<newline
            }
            let found = items(String(text[span]), strict: false, repairs: &repairs)
            if found.isEmpty { skipped.append(String(text[span])) } else { calls += found }
            cursor = span.upperBound
            end = cursor
        }
        return (calls, end)
    }

    private func call(from item: JSONValue, strict: Bool) -> (String, String)? {
        guard let name = item["name"]?.stringValue ?? item["function"]?["name"]?.stringValue ?? item["tool_name"]?.stringValue,
            tools[name] != nil
        else { return nil }
        let arguments = item["arguments"] ?? item["parameters"] ?? item["function"]?["arguments"] ?? item["input"] ?? [:]
        let text = arguments.stringValue ?? arguments.jsonText
        if strict {
            guard case .success(let repaired) = ArgumentRepair.repair(text, schema: tools[name]?.inputSchema),
                valid(name, .object(repaired.value))
            else { return nil }
        }
        return (name, text)
    }

    func valid(_ name: String, _ arguments: JSONValue) -> Bool {
        guard let tool = tools[name] else { return false }
        return Schema.problems(in: arguments, against: tool.inputSchema).isEmpty
    }

    /// A value written between tags, typed by the tool's schema. A string keeps its bytes but for
    /// the markup's own line breaks: indentation and a closing newline are code, and `edit_file`
    /// matches them exactly. Qwen3-Coder's template puts its value on lines of its own, so a
    /// newline at either edge is markup (vLLM's qwen3_coder parser drops each); a value written
    /// inline (Step-3, MiniMax-M2, DSML, GLM) loses its edge newlines only when it has both, as
    /// `<parameter name="k">\nv\n</parameter>` (vLLM keeps Step-3's `"return 1\n"` whole, Ollama
    /// reads MiniMax's `"\nTokyo\n"` as `"Tokyo"`). Other types are read without the space around them.
    func typed(_ raw: String, tool: String, parameter: String, ownLines: Bool = false) -> JSONValue {
        let type = tools[tool]?.inputSchema["properties"]?[parameter]?["type"]?.stringValue
        if type == nil || type == "string" { return .string(Self.withoutMarkupNewlines(raw, eachEdge: ownLines)) }
        let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        return (try? JSONValue.parse(trimmed)) ?? ArgumentRepair.coerce(.string(trimmed), to: ["type": .string(type!)]) ?? .string(trimmed)
    }

    static func withoutMarkupNewlines(_ raw: String, eachEdge: Bool) -> String {
        let opening = ["\r\n", "\n"].first { raw.hasPrefix($0) }
        let closing = ["\r\n", "\n"].first { raw.hasSuffix($0) && raw.count > $0.count }
        guard eachEdge || (opening != nil && closing != nil) else { return raw }
        var value = Substring(raw)
        if let opening { value = value.dropFirst(opening.count) }
        if let closing, value.hasSuffix(closing) { value = value.dropLast(closing.count) }
        return String(value)
    }

    /// From an opening brace or bracket to its match (string-aware, either quote); to the end when it never closes.
    static func jsonSpan(in text: String, from start: String.Index) -> Range<String.Index> {
        var depth = 0
        var quote: Character?
        var escaped = false
        var index = start
        while index < text.endIndex {
            let c = text[index]
            if let open = quote {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == open { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "{" || c == "[" {
                depth += 1
            } else if c == "}" || c == "]" {
                depth -= 1
                if depth == 0 { return start..<text.index(after: index) }
            }
            index = text.index(after: index)
        }
        return start..<text.endIndex
    }
}

/// Walks a text for a marker, collecting call spans and what they yield.
struct Scan {
    let text: String
    var position: String.Index
    var taken: [Range<String.Index>] = []
    var calls: [ToolCall] = []
    var repairs: [String] = []

    init(_ text: String) {
        self.text = text
        position = text.startIndex
    }

    mutating func next(_ marker: String) -> Range<String.Index>? {
        guard position < text.endIndex, let found = text.range(of: marker, range: position..<text.endIndex) else { return nil }
        position = found.upperBound
        return found
    }

    func skipSpace(from index: String.Index) -> String.Index {
        var index = index
        while index < text.endIndex, text[index].isWhitespace { index = text.index(after: index) }
        return index
    }

    /// Past `tag` when it follows `index` (after whitespace), else `index`.
    func closing(_ tag: String, after index: String.Index) -> String.Index {
        let next = skipSpace(from: index)
        return text[next...].hasPrefix(tag) ? text.index(next, offsetBy: tag.count) : index
    }

    mutating func take(_ range: Range<String.Index>, calls found: [(String, String)]) {
        position = max(position, range.upperBound)
        guard !found.isEmpty else { return }
        taken.append(range)
        calls += found.map { ToolCall(id: "", name: $0.0, arguments: $0.1) }
    }

    func found(_ dialect: ToolCallDialect) -> TextToolCalls.Found? {
        guard !calls.isEmpty else { return nil }
        var prose = ""
        var cursor = text.startIndex
        for range in taken.sorted(by: { $0.lowerBound < $1.lowerBound }) where range.lowerBound >= cursor {
            prose += text[cursor..<range.lowerBound]
            cursor = range.upperBound
        }
        prose += text[cursor...]
        // A fence whose call was taken out is left empty: drop it too.
        prose = prose.replacingOccurrences(of: #"```[a-z_]*\s*```"#, with: "", options: .regularExpression)
        var found = TextToolCalls.Found(calls: calls, dialect: dialect, prose: prose.trimmingCharacters(in: .whitespacesAndNewlines), repairs: repairs)
        found.endsText = endsText(ignoring: [])
        return found
    }

    /// Closing tokens that may stand after a last call without being more text.
    static let closers = ["```", "</tool_call>", "</tool_calls>", "<|call|>", "<|end|>", "<|im_end|>", "<|eot_id|>", "</s>", "<|return|>"]

    /// Whether only space (and closing tokens, and `sections`) follows the last call taken.
    func endsText(ignoring sections: [String]) -> Bool {
        let last = taken.map(\.upperBound).max() ?? text.endIndex
        let tail = (sections + Self.closers).reduce(String(text[last...])) { $0.replacingOccurrences(of: $1, with: "") }
        return tail.allSatisfy(\.isWhitespace)
    }
}
