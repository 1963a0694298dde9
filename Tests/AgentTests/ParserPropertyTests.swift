import JSONCore
import ModelEndpoints
import PropertyBased
import Testing

/// No parser crashes or hangs on what a model (or a cut stream) can produce: random mixes of
/// markers and JSON fragments, and every truncation of well-formed calls.
@Suite(.timeLimit(.minutes(2))) struct ParserPropertyTests {
    static let fragments = [
        "<tool_call>", "</tool_call>", "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]", "<|python_tag|>", "<function=", "<function=get_weather>",
        "</function>", "<parameter=city>", "</parameter>", "```json\n", "```tool_code\n", "```", "{", "}", "[", "]", "(", ")",
        "\"", "'", "\\", ",", ":", ";", "=", "\n", " ", "name", "\"name\"", "\"arguments\"", "\"parameters\"", "\"tool_calls\"",
        "get_weather", "write_file", "city", "Paris", "True", "None", "1e999", "-0", "\\u12", "\u{0}", "é", "🎉",
        #"{"name": "get_weather", "arguments": {"city": "Paris"}}"#, "<tool>", "<response>", "<tool_calls>", "<|tool_call>", "call:", "<|message|>",
        "to=functions.get_weather", "<|call|>", "get_weather(city='",
    ]

    static let wellFormed = [
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>",
        "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]",
        "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}",
        "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
        "[get_weather(city='Paris', days=[1, (2, 3)], extra={'a': None})]",
        "```tool_code\nprint(get_weather(city=\"Paris\"))\n```",
        "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Paris\\\"}\"}]}",
    ]

    let parser = TextToolCalls(tools: testTools)

    /// Whatever is found names a registered tool; the repair never traps.
    func exercise(_ text: String) {
        if let found = parser.parse(text) {
            #expect(found.calls.allSatisfy { ["get_weather", "write_file"].contains($0.name) })
            for call in found.calls { _ = ArgumentRepair.repair(call.arguments, schema: testTools[0].inputSchema) }
        }
        _ = parser.looksLikeAttempt(text)
        _ = ArgumentRepair.repair(text, schema: testTools[0].inputSchema)
        _ = try? JSONValue.parse(text)
    }

    @Test func randomMixesOfMarkersAndFragments() async {
        await propertyCheck(count: 2000, input: Gen<String?>.element(of: Self.fragments).array(of: 0...40)) { parts in
            exercise(parts.compactMap { $0 }.joined())
        }
    }

    /// Found by the property test above: an escape as the last character of a broken element of a
    /// Python-style list stepped past the end of the text.
    @Test func anEscapeAtTheEndOfABrokenElement() {
        for text in ["[get_weather(city='\\]", "[a(\\]", "[get_weather(city='x'), b('\\]", "[,\\]", "[)]"] {
            exercise(text)
        }
    }

    @Test func randomText() async {
        await propertyCheck(count: 1000, input: Gen.character(in: "\u{0}"..."\u{2FF}").string(of: 0...200)) { text in
            exercise(text)
        }
    }

    @Test func everyTruncationOfAWellFormedCall() {
        for text in Self.wellFormed {
            #expect(parser.parse(text) != nil, "\(text)")
            var prefix = ""
            for character in text {
                exercise(prefix)
                prefix.append(character)
            }
        }
    }
}
