public import Foundation
public import Tools

/// JSON-RPC 2.0 as MCP uses it: what came in, and the bytes of what goes out.
public enum JSONRPC {
    public static let parseError = -32700
    public static let invalidRequest = -32600
    public static let methodNotFound = -32601
    public static let invalidParams = -32602
    public static let internalError = -32603
    /// MCP 2026-07-28: HTTP headers disagree with the body.
    public static let headerMismatch = -32020
    /// MCP 2026-07-28: the request's protocol version is not one this server speaks.
    public static let unsupportedProtocolVersion = -32022

    /// A request id: MCP allows strings and integers, never null.
    public enum ID: Hashable, Sendable, CustomStringConvertible {
        case string(String)
        case int(Int)

        public var json: JSONValue {
            switch self {
            case .string(let s): .string(s)
            case .int(let i): .int(i)
            }
        }

        public var description: String { json.jsonText }

        init?(_ value: JSONValue) {
            switch value {
            case .string(let s): self = .string(s)
            case .int(let i): self = .int(i)
            case .double(let d) where d.rounded() == d && abs(d) < 9e15: self = .int(Int(d))
            default: return nil
            }
        }
    }

    /// One incoming message, classified.
    public enum Message: Sendable {
        case request(id: ID, method: String, params: JSONValue?)
        case notification(method: String, params: JSONValue?)
        /// A response to a request of ours; toolhost sends none, so these are dropped.
        case response
        /// Not a message this server can take; `reply` is the error to send (its id is null when
        /// the request's own id could not be read).
        case invalid(reply: Data)

        public var method: String? {
            switch self {
            case .request(_, let method, _), .notification(let method, _): method
            default: nil
            }
        }
    }

    /// Reads one message. Everything that is not a well-formed request, notification or response
    /// gets the error the specification names: -32700 for text that is not JSON, -32600 for the
    /// rest, with id null unless the message carried a usable one.
    public static func classify(_ data: Data) -> Message {
        let value: JSONValue
        do {
            value = try JSONValue.parse(data)
        } catch {
            return .invalid(reply: self.error(id: nil, code: parseError, message: "Parse error: \(error)"))
        }
        guard case .object(let object) = value else {
            let what = value.arrayValue != nil ? "batches are not supported: send one message at a time" : "a message must be a JSON object"
            return .invalid(reply: self.error(id: nil, code: invalidRequest, message: "Invalid Request: \(what)"))
        }
        let id = object["id"].flatMap(ID.init)
        guard object["jsonrpc"] == .string("2.0") else {
            return .invalid(reply: self.error(id: id, code: invalidRequest, message: "Invalid Request: \"jsonrpc\" must be \"2.0\""))
        }
        if let method = object["method"] {
            guard let name = method.stringValue else {
                return .invalid(reply: self.error(id: id, code: invalidRequest, message: "Invalid Request: \"method\" must be a string"))
            }
            let params = object["params"]
            guard let rawID = object["id"] else { return .notification(method: name, params: params) }
            guard let id else {
                return .invalid(reply: self.error(
                    id: nil, code: invalidRequest,
                    message: "Invalid Request: the id must be a string or an integer, not \(rawID.typeName) \(rawID.jsonText)"))
            }
            return .request(id: id, method: name, params: params)
        }
        if object["result"] != nil || object["error"] != nil { return .response }
        return .invalid(reply: self.error(id: id, code: invalidRequest, message: "Invalid Request: no \"method\", \"result\" or \"error\""))
    }

    public static func result(id: ID, _ result: JSONValue) -> Data {
        encode(["jsonrpc": "2.0", "id": id.json, "result": result])
    }

    public static func error(id: ID?, code: Int, message: String, data: JSONValue? = nil) -> Data {
        var error: [String: JSONValue] = ["code": .int(code), "message": .string(message)]
        if let data { error["data"] = data }
        return encode(["jsonrpc": "2.0", "id": id?.json ?? .null, "error": .object(error)])
    }

    public static func notification(_ method: String, _ params: JSONValue) -> Data {
        encode(["jsonrpc": "2.0", "method": .string(method), "params": params])
    }

    /// A `text` field comes first in every object (see `jsonText(leading:)`).
    static func encode(_ value: JSONValue) -> Data { Data(value.jsonText(leading: "text").utf8) }
}

/// A request answered with a JSON-RPC error instead of a result.
struct RPCError: Error {
    let code: Int
    let message: String
    var data: JSONValue?

    init(_ code: Int, _ message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }
}
