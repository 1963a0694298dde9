import Foundation
import JSONCore
import TestSupport
import Testing
@testable import Tools

@Suite struct RegistryTests {
    /// The tools.json at the repository root, which the binary embeds through a symlink.
    static let rootToolsJSON = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tools.json")

    @Test func embeddedToolsJSONIsTheRootFile() throws {
        #expect(try Data(contentsOf: Self.rootToolsJSON) == Data(ToolRegistry.toolsJSON))
    }

    @Test func everyDefinitionHasAnImplementationAndASchemaAModelCanUse() throws {
        let registry = try ToolRegistry()
        #expect(registry.definitions.map(\.name) == [
            "execute", "list_background", "stop_background", "read_file", "write_file", "edit_file", "grep", "glob", "build", "screenshot", "git_status", "git_diff",
            "git_branch", "git_commit", "git_push", "checkpoints", "undo",
        ])
        for definition in registry.definitions {
            #expect(definition.description.count > 60, "\(definition.name) needs a description a model can act on")
            #expect(definition.inputSchema["type"] == "object")
            #expect(definition.inputSchema["additionalProperties"] == .bool(false))
            let properties = try #require(definition.inputSchema["properties"]?.objectValue)
            for (name, property) in properties {
                #expect(property["description"]?.stringValue?.isEmpty == false, "\(definition.name).\(name) lacks a description")
            }
            for required in definition.inputSchema["required"]?.arrayValue ?? [] {
                #expect(properties[required.stringValue ?? ""] != nil)
            }
        }
    }

    /// The compact set `run` sends in every request: each tool of tools.json, no parameter it
    /// lacks or types differently, the same required ones, and at most 30% of the full set's
    /// bytes as a server's chat template writes them (about 3,900 against 13,900 bytes when
    /// written; 1,176 SmolLM2 tokens per request in `bench/run.sh prompt-tokens`, the goal 1,200).
    @Test func theCompactSchemasAreASmallSubsetOfTheFullOnes() throws {
        let registry = try ToolRegistry()
        let compact = registry.definitions(.compact), full = registry.definitions(.full)
        #expect(compact.map(\.name) == full.map(\.name))
        let wire = { (definitions: [ToolDefinition]) in
            definitions.map { (["type": "function", "function": ["name": .string($0.name), "description": .string($0.description), "parameters": $0.inputSchema]] as JSONValue).jsonText }
                .joined(separator: "\n").utf8.count
        }
        #expect(Double(wire(compact)) <= 0.3 * Double(wire(full)), "compact \(wire(compact)) bytes, full \(wire(full))")
        for tool in compact { #expect(tool.description.count <= 200, "\(tool.name): one short sentence") }
        // A compact schema that names a parameter tools.json lacks, or drops a required one, is refused.
        let ghost = String(decoding: ToolRegistry.compactJSON, as: UTF8.self).replacingOccurrences(of: #""command": {"#, with: #""commandline": {"#)
        #expect(throws: CompactMismatch.self) { try ToolRegistry(compactJSON: Array(ghost.utf8)) }
    }

    /// tools.json is read with JSONCore's parser, not Codable: both give the same definitions
    /// of the built-in files, and an entry that lacks a field is refused by its place.
    @Test func toolsJSONReadsAsCodableReadsIt() throws {
        for bytes in [ToolRegistry.toolsJSON, ToolRegistry.compactJSON] {
            #expect(try ToolDefinition.list(bytes) == JSONDecoder().decode([ToolDefinition].self, from: Data(bytes)))
        }
        #expect(try ToolDefinition.list(Array(#"[{"name":"x","description":"d","inputSchema":{},"title":null}]"#.utf8)).first?.title == nil)
        for (bad, says) in [
            (#"{"name":"x"}"#, "not a JSON array"), (#"[{"name":"x","description":"d"}]"#, "entry 0 needs"),
            (#"[{"name":"x","description":"d","inputSchema":{}},{"name":"y","description":"d","inputSchema":"object"}]"#, "entry 1 needs"),
            (#"[{"name":"x","description":"d","inputSchema":{},"title":3}]"#, "title must be a string"),
        ] {
            #expect { try ToolDefinition.list(Array(bad.utf8)) } throws: { $0 is ToolsJSONError && "\($0)".contains(says) }
        }
    }

    @Test func disagreementBetweenToolsJSONAndCodeFails() throws {
        let json = Array(#"[{"name":"execute","description":"d","inputSchema":{"type":"object"}},{"name":"ghost","description":"d","inputSchema":{"type":"object"}}]"#.utf8)
        #expect {
            try ToolRegistry(tools: [ExecuteTool(), ReadFileTool()], toolsJSON: json)
        } throws: { error in
            let text = "\(error)"
            return text.contains("ghost") && text.contains("read_file")
        }
    }

    /// OpenAI's strict mode (and the clients that use it: openai-agents, smolagents) takes a schema
    /// only when every object closes its properties, uses keywords it knows and requires every
    /// property; a client that makes schemas strict sends every property, the optional ones as
    /// null. Each tool must take such a call, and the README's count of schemas strict as served
    /// must stay true.
    @Test func everySchemaPassesStrictModeAndTakesAllNullOptionals() async throws {
        let supported: Set<String> = ["type", "properties", "required", "additionalProperties", "items", "description", "enum", "minimum", "maximum"]
        func check(_ schema: JSONValue, _ path: String) {
            let object = schema.objectValue ?? [:]
            #expect(Set(object.keys).isSubset(of: supported), "\(path) uses \(Set(object.keys).subtracting(supported))")
            if schema["type"] == "object" {
                #expect(schema["additionalProperties"] == .bool(false), "\(path) must set additionalProperties: false")
                for (name, property) in schema["properties"]?.objectValue ?? [:] { check(property, "\(path).\(name)") }
            }
            if let items = schema["items"] { check(items, "\(path)[]") }
        }
        let registry = try ToolRegistry()
        let scratch = try Scratch()
        let session = try scratch.session()
        try "x\n".write(toFile: scratch.workspacePath + "/a.txt", atomically: true, encoding: .utf8)
        let requiredValues: [String: JSONValue] = [
            "command": "true", "path": "a.txt", "content": "x\n", "old_string": "x", "new_string": "y", "id": "all", "url": "a.txt",
            "name": "strict-branch", "message": "strict", "pattern": "x",
        ]
        let strictAsServed = registry.definitions.filter { definition in
            let properties = Set(definition.inputSchema["properties"]?.objectValue?.keys.map { $0 } ?? [])
            return properties == Set(definition.inputSchema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        }.map(\.name)
        #expect(strictAsServed.sorted() == ["checkpoints", "git_status", "list_background", "stop_background", "write_file"], "update the README's Tools section: \(strictAsServed)")
        for definition in registry.definitions {
            check(definition.inputSchema, definition.name)
            let required = Set(definition.inputSchema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            var strictCall: [String: JSONValue] = [:]
            for name in definition.inputSchema["properties"]?.objectValue?.keys ?? [:].keys {
                strictCall[name] = required.contains(name) ? try #require(requiredValues[name], "no value for \(name)") : .null
            }
            let result = await registry.call(definition.name, arguments: .object(strictCall), session: session)
            #expect(!result.text.contains("invalid arguments"), "\(definition.name) refused a strict-mode call: \(result.text)")
        }
    }

    /// A parameter named after a keyword breaks code-writing agents (`git_branch(from="main")` is a
    /// Python SyntaxError) and clients that turn tools into functions (camel-ai dropped git_branch).
    @Test func noParameterIsAKeywordOfPythonJavaScriptOrGo() throws {
        let keywords = Set((
            "False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield match case type "
            + "catch const debugger default delete do export extends function instanceof let new static super switch this throw typeof var void enum implements interface package private protected public "
            + "chan defer fallthrough func go goto map range select struct"
        ).split(separator: " ").map(String.init))
        for definition in try ToolRegistry().definitions {
            for name in definition.inputSchema["properties"]?.objectValue?.keys ?? [:].keys {
                #expect(!keywords.contains(name), "\(definition.name).\(name) is a keyword")
            }
        }
    }

    /// Clients that prefer structured content get all of it, in the declared shape.
    @Test func structuredContentMatchesEachOutputSchema() async throws {
        let registry = try ToolRegistry()
        let scratch = try Scratch()
        let session = try scratch.session()
        let calls: [(String, JSONValue)] = [
            ("write_file", ["path": "a.txt", "content": "one\ntwo\n"]), ("read_file", ["path": "a.txt"]),
            ("edit_file", ["path": "a.txt", "old_string": "one", "new_string": "uno"]), ("execute", ["command": "echo hi"]),
            ("execute", ["command": "exec sleep 30", "background": true]), ("list_background", [:]), ("stop_background", ["id": "all"]),
            ("git_commit", ["message": "first"]), ("git_status", [:]), ("git_branch", ["name": "b1"]), ("git_diff", [:]),
        ]
        for (name, arguments) in calls {
            let result = await registry.call(name, arguments: arguments, session: session)
            #expect(!result.isError, "\(name): \(result.text)")
            let structured = try #require(result.structuredContent)
            #expect(structured["text"]?.stringValue == result.text)
            let schema = try #require(registry.definition(named: name)?.outputSchema)
            #expect(Schema.problems(in: structured, against: schema).isEmpty, "\(name): \(Schema.problems(in: structured, against: schema))")
        }
        await session.close()
    }

    @Test func argumentsAreValidated() async throws {
        let scratch = try Scratch()
        let session = try scratch.session()
        let cases: [(JSONValue, String)] = [
            ([:], "missing required parameter 'command' (a string)"),
            (["command": 5], "parameter 'command' must be a string, got an integer 5"),
            (["command": "ls", "timeout_seconds": "10"], "parameter 'timeout_seconds' must be an integer, got a string \"10\""),
            (["command": "ls", "timeout_seconds": 0], "parameter 'timeout_seconds' must be at least 1"),
            (["command": "ls", "cwd": "src"], "unknown parameter 'cwd'; the parameters are: background, command, timeout_seconds"),
            (["comand": "ls"], "unknown parameter 'comand' (did you mean 'command'?)"),
            ("ls", "the arguments must be an object, got a string \"ls\""),
        ]
        for (arguments, expected) in cases {
            let result = await call("execute", arguments, in: session)
            #expect(result.error == .usage)
            #expect(result.text.contains(expected), "\(result.text)")
        }
        // Whole numbers sent as 2.0 are still integers.
        let result = await call("read_file", ["path": "x", "limit": .double(2.0)], in: session)
        #expect(!result.text.contains("must be an integer"))
    }

    @Test func invalidJSONAndUnknownToolsSayWhatToDo() async throws {
        let scratch = try Scratch()
        let session = try scratch.session()
        let broken = await registry.call("read_file", argumentsJSON: #"{"path": "a.txt""#, session: session)
        #expect(broken.error == .usage)
        #expect(broken.text.contains("not valid JSON"))
        let unknown = await registry.call("read_fil", argumentsJSON: "{}", session: session)
        #expect(unknown.error == .usage)
        #expect(unknown.text.contains("did you mean 'read_file'?"))
        #expect(unknown.text.contains("execute, list_background, stop_background, read_file, write_file, edit_file, grep, glob, build, screenshot, git_status"))
        let empty = await registry.call("read_file", argumentsJSON: "  ", session: session)
        #expect(empty.text.contains("missing required parameter 'path'"))
    }
}

/// Every tool refuses the same kinds of bad input with a usage error that names the parameter.
@Suite struct BadInputTests {
    /// Each tool with a required string parameter, and that parameter.
    static let required = [
        "execute": "command", "read_file": "path", "write_file": "path", "edit_file": "path", "git_branch": "name",
        "git_commit": "message",
    ]
    static let tools = required.keys.sorted()

    @Test(arguments: tools) func missingRequiredParameters(tool: String) async throws {
        let session = try Scratch().session()
        let result = await call(tool, [:], in: session)
        #expect(result.error == .usage)
        #expect(result.text.contains("missing required parameter"))
    }

    @Test(arguments: tools) func wrongTypes(tool: String) async throws {
        let session = try Scratch().session()
        let key = Self.required[tool]!
        let result = await call(tool, [key: .array([1])], in: session)
        #expect(result.error == .usage)
        #expect(result.text.contains("parameter '\(key)' must be a string, got an array [1]"))
    }

    @Test(arguments: try! ToolRegistry().definitions.map(\.name)) func unknownParameters(tool: String) async throws {
        let session = try Scratch().session()
        let result = await call(tool, ["verbose": true], in: session)
        #expect(result.error == .usage)
        #expect(result.text.contains("unknown parameter 'verbose'; the parameters are: "))
    }

    @Test(arguments: tools) func invalidJSON(tool: String) async throws {
        let session = try Scratch().session()
        let result = await registry.call(tool, argumentsJSON: "{'path': 'a'}", session: session)
        #expect(result.error == .usage)
        #expect(result.text.contains("not valid JSON"))
    }
}
