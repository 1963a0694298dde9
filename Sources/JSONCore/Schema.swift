/// Checks tool arguments against the subset of JSON Schema that tools.json uses:
/// type, properties, required, additionalProperties, enum, minimum, maximum, items.
/// Each problem names the parameter and what was expected, in words a model can act on.
public enum Schema {
    public static func problems(in value: JSONValue, against schema: JSONValue, at path: String = "") -> [String] {
        if let types = allowedTypes(schema), !types.contains(where: { matches(value, type: $0) }) {
            let name = path.isEmpty ? "the arguments" : "parameter '\(path)'"
            return ["\(name) must be \(types.map(article).joined(separator: " or ")), got \(describe(value))"]
        }
        var found: [String] = []
        if let choices = schema["enum"]?.arrayValue, !choices.contains(value) {
            found.append("parameter '\(path)' must be one of \(choices.map(\.jsonText).joined(separator: ", ")), got \(value.jsonText)")
        }
        if let number = value.doubleValue {
            if let minimum = schema["minimum"]?.doubleValue, number < minimum {
                found.append("parameter '\(path)' must be at least \(format(minimum)), got \(value.jsonText)")
            }
            if let maximum = schema["maximum"]?.doubleValue, number > maximum {
                found.append("parameter '\(path)' must be at most \(format(maximum)), got \(value.jsonText)")
            }
        }
        if case .array(let items) = value, let itemSchema = schema["items"] {
            for (index, item) in items.enumerated() {
                found += problems(in: item, against: itemSchema, at: "\(path)[\(index)]")
            }
        }
        if case .object(let object) = value {
            found += objectProblems(object, schema: schema, path: path)
        }
        return found
    }

    private static func objectProblems(_ object: [String: JSONValue], schema: JSONValue, path: String) -> [String] {
        let properties = schema["properties"]?.objectValue ?? [:]
        let prefix = path.isEmpty ? "" : "\(path)."
        var found: [String] = []
        for name in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where object[name] == nil {
            let expected = properties[name].flatMap(allowedTypes)?.map(article).joined(separator: " or ") ?? "a value"
            found.append("missing required parameter '\(prefix)\(name)' (\(expected))")
        }
        for (name, value) in object.sorted(by: { $0.key < $1.key }) {
            if let propertySchema = properties[name] {
                found += problems(in: value, against: propertySchema, at: prefix + name)
            } else if schema["additionalProperties"] == .bool(false) {
                let known = properties.keys.sorted()
                var message = "unknown parameter '\(prefix)\(name)'"
                if let guess = closest(to: name, in: known) { message += " (did you mean '\(guess)'?)" }
                message += "; the parameters are: \(known.joined(separator: ", "))"
                found.append(message)
            }
        }
        return found
    }

    private static func allowedTypes(_ schema: JSONValue) -> [String]? {
        switch schema["type"] {
        case .string(let t): [t]
        case .array(let ts): ts.compactMap(\.stringValue)
        default: nil
        }
    }

    private static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("integer", _): value.intValue != nil
        case ("number", .int), ("number", .double): true
        default: value.typeName == type
        }
    }

    private static func article(_ type: String) -> String {
        type == "integer" || type == "object" || type == "array" ? "an \(type)" : "a \(type)"
    }

    private static func describe(_ value: JSONValue) -> String {
        let text = value.jsonText
        let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
        return "\(article(value.typeName)) \(shown)"
    }

    private static func format(_ number: Double) -> String {
        number.rounded() == number ? String(Int(number)) : String(number)
    }
}

/// The candidate nearest to `name` by edit distance, when it is near enough to be a likely typo.
public func closest(to name: String, in candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(name.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, name.count / 3) else { return nil }
    return best.0
}

/// Levenshtein distance over characters.
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in stride(from: 1, through: b.count, by: 1) {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
