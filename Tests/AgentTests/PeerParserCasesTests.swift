import JSONCore
import ModelEndpoints
import Testing

/// Cases carried from other projects' tool-call parser tests (the raw text and the calls their
/// parser takes from it; the source is named beside each table), and the classes a held-out run
/// of such cases found: every call of a block, recovery element by element, calls that cannot be
/// read whole not run.
@Suite struct PeerParserCasesTests {
    let parser = TextToolCalls(tools: Dialects2026Tests.tools)

    func calls(_ text: String) -> [String] {
        (parser.parse(text)?.calls ?? []).map { call in
            "\(call.name) \((try? JSONValue.parse(call.arguments).jsonText) ?? call.arguments)"
        }
    }

    static let paris = #"get_weather {"location":"Paris"}"#
    static let tokyo = #"get_weather {"location":"Tokyo"}"#
    static let call = #"{"name": "get_weather", "arguments": {"location": "Paris"}}"#

    /// llama.cpp's Hermes 2 Pro parser (tests/test-chat.cpp, test_hermes_2_pro): the tags and
    /// fences Hermes-style models wrap their JSON call in.
    static let hermesVariants: [String] = [
        "<tool>\n  \(call)\n</tool>",
        "<tools>\n  \(call)\n</tools>",
        "<response>\n  \(call)\n</response>",
        "```xml\n<response>\n    \(call)\n</response>\n```",
        "```xml\n  \(call)\n```",
        "```\n  \(call)\n```",
        "```json\n\n  <function_call> \(call) \n  </function_call> \n``` ",
        "<json>\n  \(call)\n</json>",
        "<xml>\n  {\n    \"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}\n  }\n</xml>",
        "<JSON>\n  \(call)\n</JSON>",
        "<tool_call>\n[\(call)]\n</tool_call>",
    ]

    @Test(arguments: hermesVariants) func hermesVariantsParse(text: String) {
        #expect(calls(text) == [Self.paris], "\(text.debugDescription)")
    }

    /// Prose inside those tags is not a call: only a known tool with fitting arguments is.
    @Test func proseInAResponseTagIsNoCall() {
        #expect(calls("<response>{\"name\": \"Paris\", \"note\": \"sunny\"}</response>").isEmpty)
        #expect(calls("<json>{\"name\": \"get_weather\", \"arguments\": {\"city\": 1}}</json>").isEmpty)
    }

    /// vLLM's pythonic, Llama 4 and Olmo 3 parsers take each good element of a list; one that
    /// cannot be read is skipped with a note naming it.
    @Test func aBadElementDoesNotLoseItsSiblings() throws {
        let text = "[get_weather(location='Paris'), get_weather(location=), get_weather(location='Tokyo')]"
        let found = try #require(parser.parse(text))
        #expect(calls(text) == [Self.paris, Self.tokyo])
        #expect(found.repairs.contains { $0.contains("get_weather(location=)") }, "\(found.repairs)")
        #expect(calls("<|python_start|>[get_weather(location=\"Paris\"), ghost(x=1)]<|python_end|>") == [Self.paris])
        #expect(calls("<function_calls>\nget_weather(location=\"Paris\")\nget_weather(location=)\nget_weather(location=\"Tokyo\")\n</function_calls>") == [Self.paris, Self.tokyo])
        #expect(calls("[1, 2, 3]").isEmpty && calls("[see get_weather(location='x') below]").isEmpty)
    }

    /// A number no tool can take (1e999 overflows a double) makes the call unreadable: vLLM
    /// rejects it, and running it with null would be a call the model never made.
    @Test func anOverflowingNumberIsNoCall() {
        #expect(calls(#"<tool_call>{"name": "get_weather", "arguments": {"location": "Paris", "days": 1e999}}</tool_call>"#).isEmpty)
        #expect(calls("[get_weather(location='Paris', days=1e999)]").isEmpty)
    }

    /// Gemma 4 with an ordinary JSON string where its quote token belongs: the quotes are markup.
    @Test func aGemma4ValueInJSONQuotesLosesThem() {
        #expect(calls(#"<|tool_call>call:get_weather{location:"Paris"}<tool_call|>"#) == [Self.paris])
        #expect(calls(#"<|tool_call>call:get_weather{location:"Pa\"ris"}<tool_call|>"#) == [#"get_weather {"location":"Pa\"ris"}"#])
    }

    /// Harmony: a call cut inside its JSON (the reply hit its token limit) is not run, and the
    /// final answer after it stays the reply; a second call without a message header of its own is
    /// not run either.
    @Test func harmonyCallsThatCannotBeReadWholeDoNotRun() throws {
        let cut = #"<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location": "Par"#
        #expect(calls(cut).isEmpty)
        let swallowing = cut + "<|end|><|start|>assistant<|channel|>final<|message|>It is sunny."
        #expect(calls(swallowing).isEmpty)
        let second = #"<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location":"Paris"}<|call|> to=functions.get_weather <|constrain|>json<|message|>{"location":"Tokyo"}<|call|>"#
        #expect(calls(second) == [Self.paris])
        let two = #"<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location":"Paris"}<|call|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location":"Tokyo"}<|call|>"#
        let found = try #require(parser.parse(two))
        #expect(calls(two) == [Self.paris, Self.tokyo] && found.prose.isEmpty, "\(found.prose)")
    }

    /// DeepSeek V3.2's DSML with a JSON body instead of parameter tags runs with that body.
    @Test func dsmlWithAJSONBody() {
        let text = "<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"get_weather\">\n{\"location\": \"Paris\", \"days\": 2}\n</｜DSML｜invoke>\n</｜DSML｜function_calls>"
        #expect(calls(text) == [#"get_weather {"days":2,"location":"Paris"}"#])
    }

    /// MiniMax's older `<tool_calls>`, one JSON call per line: a broken line is skipped, the lines
    /// after it still run.
    @Test func aBadLineDoesNotEndAMiniMaxBlock() {
        let text = "<tool_calls>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Tokyo\"}}\n</tool_calls>"
        #expect(calls(text) == [Self.paris, Self.tokyo])
    }

    /// Qwen3-Coder: a function left open ends where the next begins, which keeps its own parameters.
    @Test func anOpenQwenFunctionDoesNotSwallowTheNext() {
        let text = "<tool_call>\n<function=get_weather>\n<parameter=location>\nParis\n</parameter>\n<function=get_weather>\n<parameter=location>\nTokyo\n</parameter>\n</function>\n</tool_call>"
        #expect(calls(text) == [Self.paris, Self.tokyo])
    }
}
