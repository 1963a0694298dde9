import Foundation
import JSONCore
@testable import ModelEndpoints
import Testing

@Suite struct ConstrainedCallsTests {
    let tools = [
        ToolSpec(name: "write_file", description: "Writes a file.", inputSchema: [
            "type": "object", "required": ["path", "content"], "properties": ["path": ["type": "string"], "content": ["type": "string"]],
        ]),
        ToolSpec(name: "read_file", description: "Reads a file.", inputSchema: ["type": "object", "required": ["path"], "properties": ["path": ["type": "string"]]]),
    ]

    func branches(_ choice: ToolChoice) -> [JSONValue]? {
        ConstrainedCalls.schema(tools: tools, choice: choice)?["anyOf"]?.arrayValue
    }

    /// A compact schema is what the model reads; the grammar holds it to the full one's bounds
    /// (without them Gemma 3 270M wrote `offset: -1000000000000000`).
    @Test func theGrammarHoldsTheFullSchemaWhileThePromptShowsTheCompactOne() throws {
        let full: JSONValue = ["type": "object", "required": ["path"], "additionalProperties": false,
                               "properties": ["path": ["type": "string", "description": "File path relative to the workspace root."], "offset": ["type": "integer", "minimum": 1]]]
        let compact: JSONValue = ["type": "object", "required": ["path"], "properties": ["path": ["type": "string"], "offset": ["type": "integer"]]]
        let read = [ToolSpec(name: "read_file", description: "Read a file.", inputSchema: compact, grammarSchema: full)]
        let parameters = try #require(ConstrainedCalls.schema(tools: read, choice: .auto)?["anyOf"]?.arrayValue?.first?["properties"]?["parameters"])
        #expect(parameters["properties"]?["offset"]?["minimum"] == 1 && parameters["additionalProperties"] == false)
        let told = ConstrainedCalls.instructions(tools: read, choice: .auto)
        #expect(told.contains(compact.jsonText) && !told.contains("minimum"))
    }

    @Test func theSchemaFollowsToolChoice() throws {
        let auto = try #require(branches(.auto))
        #expect(auto.count == 3)
        #expect(auto.map { $0["properties"]?["name"]?["const"]?.stringValue } == ["write_file", "read_file", nil])
        #expect(auto[2]["required"] == ["final_answer"])
        #expect(auto[0]["properties"]?["parameters"] == ConstrainedCalls.bounded(tools[0].inputSchema))
        #expect(try #require(branches(.required)).count == 2)
        #expect(try #require(branches(.named("read_file"))).map { $0["properties"]?["name"]?["const"]?.stringValue } == ["read_file"])
        #expect(ConstrainedCalls.schema(tools: tools, choice: .none) == nil)
        // "name" is written before "parameters": the tool is chosen before its arguments.
        let text = ConstrainedCalls.schema(tools: tools, choice: .auto)!.jsonText
        #expect(text.range(of: #""name""#)!.lowerBound < text.range(of: #""parameters""#)!.lowerBound)
    }

    /// Bounds under the grammar: arrays and strings other than file contents; no placeholder in
    /// what the model is told.
    @Test func theGrammarHasBoundsAndTheInstructionsNoPlaceholders() throws {
        let commit = ToolSpec(name: "git_commit", description: "Commits.", inputSchema: [
            "type": "object", "required": ["message"],
            "properties": ["message": ["type": "string"], "paths": ["type": "array", "items": ["type": "string"]]],
        ])
        let schema = try #require(ConstrainedCalls.schema(tools: tools + [commit], choice: .auto))
        let parameters = try #require(schema["anyOf"]?.arrayValue?.map { $0["properties"]?["parameters"] })
        #expect(parameters[0]?["properties"]?["content"]?["maxLength"] == nil, "file contents are not cut")
        #expect(parameters[0]?["properties"]?["path"]?["maxLength"] == .int(ConstrainedCalls.maxLength))
        #expect(parameters[2]?["properties"]?["paths"]?["maxItems"] == .int(ConstrainedCalls.maxItems))
        #expect(parameters[2]?["properties"]?["paths"]?["items"]?["maxLength"] == .int(ConstrainedCalls.maxLength))
        let told = ConstrainedCalls.instructions(tools: tools, choice: .auto)
        for placeholder in ["TOOL", "ARGUMENTS", "WHAT YOU SAY", "{...}"] { #expect(!told.contains(placeholder), "\(told)") }
        #expect(told.contains(#"For example: {"name":"read_file","parameters":{"path":"README.md"}}"#), "\(told)")
    }

    @Test func theRequestCarriesTheSchemaAndNoTools() throws {
        let request = ChatRequest(model: "m", messages: [.system("You are an agent."), .user("go")], tools: tools, stream: false, constrained: true)
        let body = OpenAIClient.body(for: request)
        #expect(body["tools"] == nil && body["tool_choice"] == nil)
        #expect(body["response_format"]?["type"] == "json_schema")
        #expect(body["response_format"]?["json_schema"]?["schema"] == ConstrainedCalls.schema(tools: tools, choice: .auto))
        let system = try #require(body["messages"]?.arrayValue?.first?["content"]?.stringValue)
        #expect(system.hasPrefix("You are an agent.") && system.contains("- read_file: Reads a file.") && system.contains("final_answer"))
    }

    @Test func theConversationIsWrittenInTheReplyShape() {
        let call = ToolCall(id: "c1", name: "read_file", arguments: #"{"path":"a.txt"}"#)
        let messages = ConstrainedCalls.messages(
            [.user("read a.txt"), .assistant(text: "", toolCalls: [call]), .toolResult(callID: "c1", content: "1 hello", isError: false),
             .assistant(text: "It says hello.", toolCalls: [])],
            tools: tools, choice: .auto)
        #expect(messages.count == 5)
        guard case .system(let system) = messages[0] else { Issue.record("no system message first"); return }
        #expect(system.contains("Tools:"))
        #expect(messages[2] == .assistant(text: #"{"name":"read_file","parameters":{"path":"a.txt"}}"#, toolCalls: []))
        #expect(messages[3] == .user("Result of read_file:\n1 hello"))
        #expect(messages[4] == .assistant(text: #"{"final_answer":"It says hello."}"#, toolCalls: []))
    }

    @Test func repliesAreReadBack() {
        let call = ConstrainedCalls.decode(ChatResponse(text: #"{"name": "write_file", "parameters": {"path": "h.txt", "content": "hi"}}"#, toolCalls: [], finishReason: "stop", usage: nil))
        #expect(call.text.isEmpty && call.toolCalls.map(\.name) == ["write_file"])
        #expect(call.toolCalls.first?.arguments == #"{"content":"hi","path":"h.txt"}"#)
        #expect(call.toolCalls.first?.id.count == 9)
        let answer = ConstrainedCalls.decode(ChatResponse(text: #"{"final_answer": "done"}"#, toolCalls: [], finishReason: "stop", usage: nil))
        #expect(answer.text == "done" && answer.toolCalls.isEmpty)
        // Cut at the token limit: left as it came, for the loop to judge.
        let cut = ChatResponse(text: #"{"name": "write_file", "parameters": {"pa"#, toolCalls: [], finishReason: "length", usage: nil)
        #expect(ConstrainedCalls.decode(cut) == cut)
    }

    @Test func turnMarkersEndTheAnswer() {
        #expect(TurnMarkers.cut("Done.<|im_end|>\n<|im_start|>user\nmore") == "Done.")
        #expect(TurnMarkers.cut("plain text") == nil)
        #expect(TurnMarkers.cut("a<end_of_turn>b<|im_end|>") == "a")
    }
}
