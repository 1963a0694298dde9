import Foundation

/// The one registry every front door (MCP, the agent loop, `toolhost call`) goes through.
/// It pairs tools.json's definitions with their implementations and validates arguments.
public struct ToolRegistry: Sendable {
    /// tools.json as built into the binary.
    public static let toolsJSON: [UInt8] = PackageResources.tools_json

    /// The built-in tools, in no particular order: tools.json fixes the order.
    public static let builtIn: [any Tool] = [
        ExecuteTool(), ListBackgroundTool(), StopBackgroundTool(), ReadFileTool(), WriteFileTool(), EditFileTool(), GrepTool(), GlobTool(), BuildTool(), ScreenshotTool(),
        GitStatusTool(), GitDiffTool(), GitBranchTool(), GitCommitTool(), GitPushTool(), CheckpointsTool(), UndoTool(),
    ]

    /// tools-compact.json as built into the binary: the schemas the agent loop sends by default.
    public static let compactJSON: [UInt8] = PackageResources.tools_compact_json

    public let definitions: [ToolDefinition]
    /// The compact rendering of each tool, by name (see `definitions(_:)`).
    private let compact: [String: ToolDefinition]
    private let tools: [String: any Tool]

    /// Fails when tools.json and the implementations disagree, naming the tools that differ, or
    /// when a compact schema is no subset of its full one. Without `compactJSON`, a registry of
    /// the built-in tools.json takes the built-in compact set, and any other renders compact as full.
    public init(tools: [any Tool] = ToolRegistry.builtIn, toolsJSON: [UInt8] = ToolRegistry.toolsJSON, compactJSON: [UInt8]? = nil) throws {
        let definitions = try ToolDefinition.list(toolsJSON)
        let byName = Dictionary(tools.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let declared = Set(definitions.map(\.name))
        let implemented = Set(byName.keys)
        guard declared == implemented, declared.count == definitions.count else {
            throw RegistryMismatch(
                missingImplementations: declared.subtracting(implemented).sorted(),
                missingDefinitions: implemented.subtracting(declared).sorted())
        }
        let compactBytes = compactJSON ?? (toolsJSON == Self.toolsJSON ? Self.compactJSON : toolsJSON)
        let compact = try ToolDefinition.list(compactBytes)
        try Self.checkCompact(compact, against: definitions)
        self.definitions = definitions
        self.compact = Dictionary(compact.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.tools = byName
    }

    /// Calls a tool with arguments given as JSON text (as the CLI and text-dialect parsers have them).
    public func call(_ name: String, argumentsJSON: String, session: Session) async -> ToolResult {
        let trimmed = argumentsJSON.trimmingCharacters(in: .whitespacesAndNewlines)
        let arguments: JSONValue
        do {
            arguments = trimmed.isEmpty ? .object([:]) : try JSONValue.parse(trimmed)
        } catch {
            return .failure(
                "the arguments for '\(name)' are not valid JSON (\(error)). Send one JSON object, e.g. {\"path\": \"README.md\"}.",
                kind: .usage)
        }
        return await call(name, arguments: arguments, session: session)
    }

    /// The definitions in one of the two renderings, in tools.json's order.
    public func definitions(_ schemas: SchemaStyle) -> [ToolDefinition] {
        schemas == .full ? definitions : definitions.map { compact[$0.name] ?? $0 }
    }

    /// The definition of the tool with this name, if there is one.
    public func definition(named name: String) -> ToolDefinition? {
        definitions.first { $0.name == name }
    }

    /// The tool's own repairs of `arguments` (see `Tool.repair`); `call` applies them too.
    public func repair(_ name: String, _ arguments: [String: JSONValue]) -> (arguments: [String: JSONValue], repairs: [String]) {
        tools[name]?.repair(arguments) ?? (arguments, [])
    }

    /// What to say about a name that is no tool: the closest name and the whole list.
    public func unknownToolMessage(_ name: String) -> String {
        var message = "unknown tool '\(name)'"
        if let guess = closest(to: name, in: definitions.map(\.name)) { message += " (did you mean '\(guess)'?)" }
        return message + ". The tools are: \(definitions.map(\.name).joined(separator: ", "))."
    }

    /// Calls a tool; every failure, including bad arguments and unknown tools, comes back as an error result.
    /// Cancelling the calling task kills what the tool runs; the result is then a failure nobody reads.
    public func call(_ name: String, arguments: JSONValue?, session: Session) async -> ToolResult {
        guard let tool = tools[name], let definition = definition(named: name) else {
            return .failure(unknownToolMessage(name), kind: .usage)
        }
        guard case .object(let given) = arguments ?? .object([:]) else {
            let problems = Schema.problems(in: arguments ?? .null, against: definition.inputSchema)
            return .failure("invalid arguments for '\(name)': \(problems.joined(separator: "; ")).", kind: .usage)
        }
        let values: [String: JSONValue]
        do {
            values = try tool.normalize(tool.repair(Self.droppingUnset(given, schema: definition.inputSchema)).arguments)
        } catch let error as ToolError {
            return .failure(error.message, kind: error.kind)
        } catch {
            return .failure("\(name) failed: \(error)")
        }
        let problems = Schema.problems(in: .object(values), against: definition.inputSchema)
        guard problems.isEmpty else {
            return .failure(
                "invalid arguments for '\(name)': \(problems.joined(separator: "; ")).", kind: .usage)
        }
        let number = await session.beginCall(name, changesWorkspace: tool.changesWorkspace)
        let result: ToolResult
        do {
            result = session.redactor.redact(try await tool.run(Arguments(values), in: session))
        } catch let error as ToolError {
            result = .failure(error.message, kind: error.kind)
        } catch {
            result = .failure("\(name) failed: \(error)")
        }
        if tool.changesWorkspace { await session.endCall(number) }
        return result
    }
}

/// How much of each tool's schema a model is sent.
public enum SchemaStyle: String, Sendable, CaseIterable, Codable {
    /// tools.json as written: every parameter with its description, bounds and examples. What MCP
    /// clients get, as they show it to people too.
    case full
    /// tools-compact.json: one short sentence per tool, the parameters a task needs, no bounds.
    /// About a third of the tokens (the agent loop sends them in every request), with the
    /// teaching moved to the system prompt, which says it once. Calls are still checked against
    /// the full schema, so a parameter left out here is still taken.
    case compact
}

extension ToolRegistry {
    /// Each compact tool is a tool of tools.json, in the same order, whose parameters are among
    /// the full schema's with the same types, and which requires what the full one requires.
    static func checkCompact(_ compact: [ToolDefinition], against full: [ToolDefinition]) throws {
        guard compact.map(\.name) == full.map(\.name) else {
            throw CompactMismatch(problem: "tools-compact.json names \(compact.map(\.name)) where tools.json names \(full.map(\.name))")
        }
        for (short, whole) in zip(compact, full) {
            let properties = whole.inputSchema["properties"]?.objectValue ?? [:]
            for (key, schema) in short.inputSchema["properties"]?.objectValue ?? [:] {
                guard let declared = properties[key] else { throw CompactMismatch(problem: "\(short.name).\(key) is not a parameter of tools.json's \(short.name)") }
                guard declared["type"] == schema["type"] else { throw CompactMismatch(problem: "\(short.name).\(key) has another type than in tools.json") }
            }
            let required = { (definition: ToolDefinition) in Set(definition.inputSchema["required"]?.arrayValue?.compactMap(\.stringValue) ?? []) }
            guard required(short) == required(whole) else { throw CompactMismatch(problem: "\(short.name) requires \(required(short).sorted()) where tools.json requires \(required(whole).sorted())") }
        }
    }

    /// Optional parameters sent as `null`, or as "" when they take a string, count as not given:
    /// strict-schema clients (OpenAI strict mode, pydantic models) send every parameter, and a
    /// model that has nothing to say for one fills in one of those. Nested objects get the same
    /// treatment from their own schema; required parameters are left for validation to judge.
    static func droppingUnset(_ object: [String: JSONValue], schema: JSONValue) -> [String: JSONValue] {
        let required = Set(schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        let properties = schema["properties"]?.objectValue ?? [:]
        var kept: [String: JSONValue] = [:]
        for (key, value) in object {
            let declared = properties[key]
            if !required.contains(key), declared != nil {
                if value == .null { continue }
                if value == .string(""), declared?["type"] == .string("string") { continue }
            }
            kept[key] = declared.map { droppingUnset(value, schema: $0) } ?? value
        }
        return kept
    }

    private static func droppingUnset(_ value: JSONValue, schema: JSONValue) -> JSONValue {
        switch value {
        case .object(let object): .object(droppingUnset(object, schema: schema))
        case .array(let items): .array(items.map { droppingUnset($0, schema: schema["items"] ?? .object([:])) })
        default: value
        }
    }
}

/// tools.json and the code disagree.
public struct RegistryMismatch: Error, CustomStringConvertible {
    public let missingImplementations: [String]
    public let missingDefinitions: [String]
    public var description: String {
        var parts: [String] = []
        if !missingImplementations.isEmpty {
            parts.append("tools.json lists tools with no implementation: \(missingImplementations.joined(separator: ", "))")
        }
        if !missingDefinitions.isEmpty {
            parts.append("implemented tools missing from tools.json: \(missingDefinitions.joined(separator: ", "))")
        }
        if parts.isEmpty { parts.append("tools.json lists a tool twice") }
        return parts.joined(separator: "; ")
    }
}

/// tools-compact.json does not match tools.json.
public struct CompactMismatch: Error, CustomStringConvertible {
    public let problem: String
    public var description: String { problem + ": change tools-compact.json to match tools.json" }
}
