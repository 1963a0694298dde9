import Foundation
import JSONCore
import ModelEndpoints
import Testing

/// The dialects of 2025-2026, each written byte for byte as ../shared/reference/tool-call-dialects-2026.md
/// shows it: one call to `get_weather(location="Paris")` unless the row says otherwise.
@Suite struct Dialects2026Tests {
    static let tools = [
        ToolSpec(name: "get_weather", description: "", inputSchema: [
            "type": "object", "properties": ["location": ["type": "string"], "days": ["type": "integer"], "metric": ["type": "boolean"]],
            "required": ["location"], "additionalProperties": false,
        ]),
        ToolSpec(name: "ffgrep", description: "", inputSchema: ["type": "object", "properties": ["code": ["type": "string"]]]),
        ToolSpec(name: "edit_file", description: "", inputSchema: ["type": "object", "properties": ["path": ["type": "string"], "old_string": ["type": "string"]]]),
    ]
    let parser = TextToolCalls(tools: tools)
    static let paris = #"get_weather {"location":"Paris"}"#

    func calls(_ text: String) -> [String] {
        (parser.parse(text)?.calls ?? []).map { call in
            "\(call.name) \((try? JSONValue.parse(call.arguments).jsonText) ?? call.arguments)"
        }
    }

    static let rows: [(text: String, dialect: String)] = [
        (#"<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location":"Paris"}<|call|>"#, "harmony"),
        (#"<|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>{"location":"Paris"}"#, "harmony"),
        (#"<|channel|>analysis<|message|>The user wants weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location":"Paris"}<|call|>"#, "harmony"),
        ("<tool_call>get_weather\n<arg_key>location</arg_key><arg_value>Paris</arg_value></tool_call>", "glm"),
        ("<tool_call>get_weather<arg_key>location</arg_key><arg_value>Paris</arg_value></tool_call>", "glm"),
        ("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"location\":\"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>", "deepseek"),
        ("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"location\":\"Paris\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>", "deepseek"),
        ("<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"get_weather\">\n<｜DSML｜parameter name=\"location\" string=\"true\">Paris</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>", "deepseek-dsml"),
        ("<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{\"location\":\"Paris\"}<|tool_call_end|><|tool_calls_section_end|>", "kimi-k2"),
        ("<tool_call>\n<function=get_weather>\n<parameter=location>\nParis\n</parameter>\n</function>\n</tool_call>", "qwen3-coder-xml"),
        ("<function=get_weather>\n<parameter=location>\nParis\n</parameter>\n</function>\n</tool_call>", "qwen3-coder-xml"),
        ("<function=get_weather>\n<parameter=location> Paris", "qwen3-coder-xml"),
        ("<|tool_call>call:get_weather{location:<|\"|>Paris<|\"|>}<tool_call|>", "gemma-4"),
        ("<start_function_call>call:get_weather{location:<escape>Paris<escape>}<end_function_call>", "functiongemma"),
        ("<minimax:tool_call><invoke name=\"get_weather\"><parameter name=\"location\">Paris</parameter></invoke></minimax:tool_call>", "minimax-m2"),
        ("<tool_calls>\n{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Paris\"}}\n</tool_calls>", "minimax"),
        ("<seed:think>The user wants the weather.</seed:think><seed:tool_call>\n<function=get_weather>\n<parameter=location>Paris</parameter>\n</function>\n</seed:tool_call>", "seed-oss"),
        ("<|tool_call_start|>[get_weather(location='Paris')]<|tool_call_end|>", "lfm2"),
        ("[TOOL_CALLS]get_weather[ARGS]{\"location\":\"Paris\"}", "mistral"),
        ("<|tools_prefix|>[{\"get_weather\":{\"location\":\"Paris\"}}]<|tools_suffix|>", "apertus"),
        ("<|tool_calls|><|tool_call:begin|>0<|tool_call:name|>get_weather<|tool_call:args|>{\"location\":\"Paris\"}<|tool_call:end|>", "solar-open"),
        ("<｜tool_calls_begin｜><｜tool_call_begin｜>function<｜tool_sep｜><steptml:invoke name=\"get_weather\"><steptml:parameter name=\"location\">Paris</steptml:parameter></steptml:invoke><｜tool_call_end｜><｜tool_calls_end｜>", "step-3"),
        ("<TOOLCALL>get_weather{\"location\":\"Paris\"}</TOOLCALL>", "nemotron"),
        ("<tool_call>{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Paris\"}}</tool_call>", "hermes"),
        ("<function_calls>\nget_weather(location=\"Paris\")\n</function_calls>", "olmo-3"),
        ("<|python_start|>[get_weather(location=\"Paris\")]<|python_end|>", "llama4-pythonic"),
        ("function call{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Paris\"}}", "gigachat"),
        // GigaChat 3 with its role separator (as vLLM's GigaChat3 plugin documents it), and 3.1's header.
        ("function call<|role_sep|>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}", "gigachat"),
        ("<|function_call|>{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}", "gigachat"),
        // Granite 3: a JSON list after <|tool_call|>.
        ("<|tool_call|>[{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}]", "granite"),
        ("<longcat_tool_call>{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Paris\"}}</longcat_tool_call>", "longcat"),
    ]

    @Test(arguments: rows) func eachRowOfTheReference(text: String, dialect: String) throws {
        let found = try #require(parser.parse(text), "nothing parsed from \(text.debugDescription)")
        #expect(found.dialect.rawValue == dialect)
        #expect(calls(text) == [Self.paris], "\(text.debugDescription)")
        // Nothing of the call's markup is left as prose (reasoning may stay).
        for marker in ["tool", "call", "<|", "<｜", "function", "invoke", "{", "["] {
            #expect(!found.prose.lowercased().contains(marker.lowercased()), "\(marker) left in \(found.prose.debugDescription)")
        }
    }

    @Test func harmonyOnTheAnalysisChannel() {
        #expect(calls(#"<|channel|>analysis to=functions.ffgrep code<|message|>{"code":"x"}<|call|>"#) == [#"ffgrep {"code":"x"}"#])
    }

    @Test func aMalformedHarmonyHeaderIsAnAttemptNotAnAnswer() {
        let text = #"<|channel|>commentary?<|constrain|>json<|message|>{"location":"Paris"}<|call|>"#
        #expect(parser.parse(text) == nil)
        #expect(parser.looksLikeAttempt(text))
        #expect(!parser.looksLikeAttempt("<|channel|>final<|message|>It is sunny in Paris."))
    }

    @Test func valuesAreTypedByTheSchema() {
        #expect(calls("<tool_call>get_weather<arg_key>location</arg_key><arg_value>Paris</arg_value><arg_key>days</arg_key><arg_value>3</arg_value><arg_key>metric</arg_key><arg_value>true</arg_value></tool_call>")
            == [#"get_weather {"days":3,"location":"Paris","metric":true}"#])
        #expect(calls("<|tool_call>call:get_weather{location:<|\"|>Paris<|\"|>,days:3,metric:false}<tool_call|>")
            == [#"get_weather {"days":3,"location":"Paris","metric":false}"#])
        #expect(calls("<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"get_weather\">\n<｜DSML｜parameter name=\"location\" string=\"true\">Paris</｜DSML｜parameter>\n<｜DSML｜parameter name=\"days\" string=\"false\">2</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>")
            == [#"get_weather {"days":2,"location":"Paris"}"#])
        // A numeric-looking string stays a string where the schema says string.
        // A call inside thinking written into the content does not run while the content has one;
        // a call a reasoning quotes, with more thinking after it, never runs.
        let berlin = #"<minimax:tool_call><invoke name="get_weather"><parameter name="location">Berlin</parameter></invoke></minimax:tool_call>"#
        #expect(calls("<think>I could call \(berlin) but Paris was asked.</think>\n" + berlin.replacingOccurrences(of: "Berlin", with: "Paris")) == [Self.paris])
        #expect(parser.parse("<seed:think>The format is <seed:tool_call>\n<function=get_weather>\n<parameter=location>Paris</parameter>\n</function>\n</seed:tool_call> and here no tool is needed.</seed:think>It is sunny, says the user.") == nil)
        // A call that ends the reasoning is the model's own (Qwen 3.6 through llama-server puts it there).
        let hermes = #"<tool_call>{"name": "get_weather", "arguments": {"location": "Paris"}}</tool_call>"#
        #expect(parser.reasoningCalls("The user wants Paris.\n\(hermes)\n")?.calls.map(\.name) == ["get_weather"])
        #expect(parser.reasoningCalls("A call looks like \(hermes), but I will answer directly.") == nil)
        #expect(calls("<think>Paris, then.\n\(hermes)") == [Self.paris])
        // A thinking block the model closed is thought: its calls never run (Ollama's MiniMax-M2
        // parser test "tool call inside think tag"), nor do those before a close whose opening was
        // in the prompt, nor those of a block left open after content.
        #expect(calls("<think>Maybe I should call \(berlin)</think>").isEmpty)
        #expect(calls("<think>Paris, then.\n\(hermes)</think>").isEmpty)
        #expect(calls("Planning. \(berlin)</think>\n" + berlin.replacingOccurrences(of: "Berlin", with: "Paris")) == [Self.paris])
        #expect(calls("<seed:think>I could call it like <seed:tool_call>\n<function=get_weather>\n<parameter=location>Paris</parameter>\n</function>\n</seed:tool_call></seed:think>The tool takes a city.").isEmpty)
        #expect(calls("It is sunny. <think>Check again: \(hermes)").isEmpty)
        #expect(parser.reasoningCalls("<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{\"location\":\"Paris\"}<|tool_call_end|><|tool_calls_section_end|>") != nil)

        // GLM with no arguments is the name alone; Hermes JSON in the same tags stays Hermes'.
        #expect(parser.parse("<tool_call>ffgrep</tool_call>")?.calls.map(\.name) == ["ffgrep"])
        #expect(parser.parse("<tool_call>ffgrep</tool_call>")?.dialect == .glm)
        #expect(parser.parse("<tool_call>not_a_tool</tool_call>") == nil)
        #expect(parser.parse("<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}</tool_call>")?.dialect == .hermes)
        // Python calls take JSON's spellings too.
        #expect(calls("<|tool_call_start|>[get_weather(location='Paris', metric=true, days=null)]<|tool_call_end|>")
            == [#"get_weather {"days":null,"location":"Paris","metric":true}"#])
        // Step-3, MiniMax-M2 and DSML keep a value's indentation (exact-match edits depend on it).
        #expect(calls("<｜tool_calls_begin｜><｜tool_call_begin｜>function<｜tool_sep｜><steptml:invoke name=\"edit_file\"><steptml:parameter name=\"path\">a.py</steptml:parameter><steptml:parameter name=\"old_string\">    if x:</steptml:parameter></steptml:invoke><｜tool_call_end｜><｜tool_calls_end｜>")
            == [#"edit_file {"old_string":"    if x:","path":"a.py"}"#])
        #expect(calls("<minimax:tool_call><invoke name=\"edit_file\"><parameter name=\"path\">a.py</parameter><parameter name=\"old_string\">\t  return 1</parameter></invoke></minimax:tool_call>")
            == [#"edit_file {"old_string":"\t  return 1","path":"a.py"}"#])
        #expect(calls("<minimax:tool_call><invoke name=\"get_weather\"><parameter name=\"location\">10115</parameter></invoke></minimax:tool_call>")
            == [#"get_weather {"location":"10115"}"#])
    }

    @Test func severalCallsInARowAndAfterProse() {
        #expect(calls("<|tool_call>call:get_weather{location:<|\"|>Paris<|\"|>}<tool_call|><|tool_call>call:get_weather{location:<|\"|>Tokyo<|\"|>}<tool_call|>")
            == [Self.paris, #"get_weather {"location":"Tokyo"}"#])
        let kimi = "Checking both.<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{\"location\":\"Paris\"}<|tool_call_end|><|tool_call_begin|>functions.get_weather:1<|tool_call_argument_begin|>{\"location\":\"Tokyo\"}<|tool_call_end|><|tool_calls_section_end|>"
        #expect(calls(kimi) == [Self.paris, #"get_weather {"location":"Tokyo"}"#])
        #expect(parser.parse(kimi)?.prose == "Checking both.")
        #expect(calls("<function_calls>\nget_weather(location=\"Paris\")\nget_weather(location=\"Tokyo\")\n</function_calls>").count == 2)
    }

    @Test func unknownToolsAreNotCalls() {
        #expect(calls("<|tool_call>call:rm_rf{path:<|\"|>/<|\"|>}<tool_call|>").isEmpty)
        #expect(calls("<minimax:tool_call><invoke name=\"rm_rf\"></invoke></minimax:tool_call>").isEmpty)
    }

    @Test func theArgumentsWrapperIsUnwrappedWhenTheSchemaHasNoSuchKey() throws {
        let schema = Self.tools[0].inputSchema
        let fixed = try ArgumentRepair.repair(#"{"arguments": {"location": "Paris"}}"#, schema: schema).get()
        #expect(fixed.value == ["location": "Paris"])
        #expect(fixed.repairs == ["unwrapped the arguments from a 'arguments' object the tool does not take"])
        let input: JSONValue = ["type": "object", "properties": ["input": ["type": "object"]]]
        #expect(try ArgumentRepair.repair(#"{"input": {"a": 1}}"#, schema: input).get().value == ["input": ["a": 1]])
    }
}
