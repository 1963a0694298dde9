import JSONCore
import ModelEndpoints
import Testing

let testTools: [ToolSpec] = [
    ToolSpec(name: "get_weather", description: "", inputSchema: [
        "type": "object", "properties": ["city": ["type": "string"], "days": ["type": "integer"]], "required": ["city"],
        "additionalProperties": false,
    ]),
    ToolSpec(name: "write_file", description: "", inputSchema: [
        "type": "object", "properties": ["path": ["type": "string"], "content": ["type": "string"]], "required": ["path", "content"],
        "additionalProperties": false,
    ]),
]

/// Each dialect, written byte for byte as ../shared/reference/tool-call-formats.md shows it.
@Suite struct TextToolCallsTests {
    let parser = TextToolCalls(tools: testTools)

    func calls(_ text: String) -> [String] {
        (parser.parse(text)?.calls ?? []).map { call in
            "\(call.name) \((try? JSONValue.parse(call.arguments).jsonText) ?? call.arguments)"
        }
    }

    @Test(arguments: [
        // Hermes / Qwen: closing tag optional, several in a row, a json fence around it.
        ("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>", "hermes"),
        ("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}", "hermes"),
        ("Let me check.\n```json\n<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}</tool_call>\n```", "hermes"),
        ("<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>", "qwen3-coder-xml"),
        ("[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]", "mistral"),
        ("[TOOL_CALLS]get_weather{\"city\": \"Paris\"}", "mistral"),
        ("[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}", "mistral"),
        ("[TOOL_CALLS]get_weather[CALL_ID]a1b2c3d4e[ARGS]{\"city\": \"Paris\"}", "mistral"),
        ("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}", "llama3-json"),
        ("{\"type\": \"function\", \"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}", "llama3-json"),
        ("<|python_tag|>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}", "llama3-json"),
        ("[get_weather(city='Paris')]", "pythonic"),
        ("```json\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n```", "json-fence"),
        ("```tool_code\nget_weather(city=\"Paris\")\n```", "tool-code-fence"),
        ("```tool_code\nprint(get_weather(city=\"Paris\"))\n```", "tool-code-fence"),
        ("{\"tool_call\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}}", "generic-json"),
        ("{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]}", "generic-json"),
        ("<function=get_weather>{\"city\": \"Paris\"}</function>", "function-tag"),
    ])
    func eachDialectParses(text: String, dialect: String) throws {
        let found = try #require(parser.parse(text), "nothing parsed from \(text.debugDescription)")
        #expect(found.dialect.rawValue == dialect)
        #expect(calls(text) == [#"get_weather {"city":"Paris"}"#])
    }

    @Test func severalCallsKeepTheirOrder() {
        let hermes = """
            I'll check both.
            <tool_call>
            {"name": "get_weather", "arguments": {"city": "Paris"}}
            </tool_call>
            <tool_call>
            {"name": "get_weather", "arguments": {"city": "Tokyo"}}
            </tool_call>
            """
        #expect(calls(hermes) == [#"get_weather {"city":"Paris"}"#, #"get_weather {"city":"Tokyo"}"#])
        #expect(parser.parse(hermes)?.prose == "I'll check both.")
        #expect(calls("[TOOL_CALLS]get_weather{\"city\": \"Paris\"}[TOOL_CALLS]get_weather{\"city\": \"Tokyo\"}").count == 2)
        #expect(calls("<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}; {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Tokyo\"}}").count == 2)
        #expect(calls("[get_weather(city='Paris'), get_weather(city=\"Tokyo\", days=3)]") == [#"get_weather {"city":"Paris"}"#, #"get_weather {"city":"Tokyo","days":3}"#])
    }

    /// A string keeps its bytes but the markup's own opening and closing newline (as vLLM's
    /// Qwen3-Coder parser takes them); other types are read without the space around them.
    @Test func qwenXMLValuesKeepTheirBytesAndAreTypedBySchema() {
        let text = "<tool_call>\n<function=get_weather>\n<parameter=city>\n  New York \n</parameter>\n<parameter=days>\n 3 \n</parameter>\n</function>\n</tool_call>"
        #expect(calls(text) == [#"get_weather {"city":"  New York ","days":3}"#])
        let indented = "<tool_call>\n<function=write_file>\n<parameter=path>\na.py\n</parameter>\n<parameter=content>\n    if x:\n        y()\n</parameter>\n</function>\n</tool_call>"
        #expect(calls(indented) == [#"write_file {"content":"    if x:\n        y()","path":"a.py"}"#])
        let code = "<tool_call>\n<function=write_file>\n<parameter=path>\na.ts\n</parameter>\n<parameter=content>\nexport const x = 1;\nconsole.log(\"hi\")\n</parameter>\n</function>\n</tool_call>"
        #expect(calls(code) == [#"write_file {"content":"export const x = 1;\nconsole.log(\"hi\")","path":"a.ts"}"#])
    }

    /// Every call in one block: two objects in a row, or a list, inside one `<tool_call>`.
    @Test func everyCallInOneBlockRuns() {
        let paris = #"{"name": "get_weather", "arguments": {"city": "Paris"}}"#, tokyo = #"{"name": "get_weather", "arguments": {"city": "Tokyo"}}"#
        let expected = [#"get_weather {"city":"Paris"}"#, #"get_weather {"city":"Tokyo"}"#]
        #expect(calls("<tool_call>\n\(paris)\n\(tokyo)\n</tool_call>") == expected)
        #expect(calls("<tool_call>[\(paris), \(tokyo)]</tool_call>") == expected)
    }

    /// Inner quotes a model left unescaped in a Python-style call stay part of the value.
    @Test func unescapedInnerQuotesStayInThePythonValue() {
        #expect(calls("[write_file(path='a.sh', content='sed -n '360,450p' f')]") == [#"write_file {"content":"sed -n '360,450p' f","path":"a.sh"}"#])
        #expect(calls("[get_weather(city='Paris', days=2)]") == [#"get_weather {"city":"Paris","days":2}"#])
    }

    @Test func unregisteredNamesAreRefused() {
        #expect(parser.parse("<tool_call>{\"name\": \"rm_rf\", \"arguments\": {\"path\": \"/\"}}</tool_call>") == nil)
        #expect(parser.parse("[TOOL_CALLS]delete_everything{\"x\": 1}") == nil)
        #expect(parser.parse("[os.system(cmd='rm -rf /')]") == nil)
        // A registered call next to an unregistered one: only the registered one runs.
        let mixed = "<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}</tool_call>"
        #expect(calls(mixed) == [#"get_weather {"city":"Oslo"}"#])
    }

    @Test func proseContainingJSONIsNotACall() {
        let prose = [
            "The API returns {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}} when it works.",
            "Use a config like:\n```json\n{\"name\": \"my-app\", \"version\": \"1.0.0\"}\n```",
            // Names a tool, but the arguments do not fit its schema: an example, not a call.
            "```json\n{\"name\": \"get_weather\", \"arguments\": {\"town\": \"Paris\"}}\n```",
            "{\"name\": \"get_weather\", \"parameters\": {\"city\": 3, \"extra\": true}}",
            "[1, 2, 3]",
            "Call [get_weather] when you need it.",
        ]
        for text in prose {
            #expect(parser.parse(text) == nil, "\(text)")
        }
    }

    @Test func attemptsThatDoNotParseAreRecognised() {
        #expect(parser.looksLikeAttempt("<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Par"))
        #expect(parser.looksLikeAttempt("{\"tool_calls\": [{\"name\": \"unknown_tool\"}]}"))
        #expect(!parser.looksLikeAttempt("The weather in Paris is sunny."))
    }
}
