/// A tool's arguments after schema validation; the accessors only read what the schema allowed.
public struct Arguments: Sendable {
    public let values: [String: JSONValue]

    public init(_ values: [String: JSONValue]) {
        self.values = values
    }

    /// A required string; the schema already guaranteed it, so a miss is a tools.json bug.
    public func string(_ name: String) throws -> String {
        guard let value = values[name]?.stringValue else {
            throw ToolError("missing required parameter '\(name)' (a string)", kind: .usage)
        }
        return value
    }

    public func optionalString(_ name: String) -> String? { values[name]?.stringValue }
    public func int(_ name: String) -> Int? { values[name]?.intValue }
    public func bool(_ name: String) -> Bool? { values[name]?.boolValue }
}
