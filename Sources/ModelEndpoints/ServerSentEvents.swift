import Foundation
import JSONCore

/// One server-sent event: its `event:` name (if any) and its data as JSON.
struct SSEEvent {
    var name: String?
    var data: JSONValue
}

/// Reads a text/event-stream body event by event. It returns true when the stream ended as
/// it should (`data: [DONE]`, or the handler said it was the last event), false when the body
/// just stopped; the caller decides whether that is a cut. Lines that are not SSE are refused
/// with the line quoted; a connection closed mid-body is a cut (`StreamCut`).
struct ServerSentEvents {
    let url: URL

    func read(_ body: ResponseBody, handle: (SSEEvent) throws -> Bool) async throws -> Bool {
        var pending: [UInt8] = []
        var name: String?
        var data = ""
        var lineNumber = 0
        do {
            for try await buffer in body {
                pending.append(contentsOf: buffer)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    var line = String(decoding: pending[..<newline], as: UTF8.self)
                    pending.removeSubrange(...newline)
                    if line.hasSuffix("\r") { line.removeLast() }
                    lineNumber += 1
                    if line.isEmpty {
                        if data.isEmpty { name = nil; continue }
                        if data == "[DONE]" { return true }
                        let event = try parse(data, name: name, line: lineNumber)
                        name = nil
                        data = ""
                        if try handle(event) == false { return true }
                    } else if line.hasPrefix(":") {
                        continue
                    } else if let value = field("data", line) {
                        data += data.isEmpty ? value : "\n" + value
                    } else if let value = field("event", line) {
                        name = value
                    } else if field("id", line) != nil || field("retry", line) != nil {
                        continue
                    } else {
                        throw EndpointError.badStream(url.absoluteString, "line \(lineNumber) is \(quote(line)), not 'data: …'")
                    }
                }
            }
        } catch {
            throw StreamCut.unlessFatal(error)
        }
        if data == "[DONE]" { return true }
        let rest = String(decoding: pending, as: UTF8.self)
        if !rest.trimmingCharacters(in: .whitespaces).isEmpty, field("data", rest) == nil, field("event", rest) == nil, !rest.hasPrefix(":") {
            throw EndpointError.badStream(url.absoluteString, "line \(lineNumber + 1) is \(quote(rest)), not 'data: …'")
        }
        return false
    }

    private func field(_ name: String, _ line: String) -> String? {
        guard line.hasPrefix(name + ":") else { return nil }
        var value = line.dropFirst(name.count + 1)
        if value.hasPrefix(" ") { value = value.dropFirst() }
        return String(value)
    }

    private func parse(_ data: String, name: String?, line: Int) throws -> SSEEvent {
        guard let json = try? JSONValue.parse(data) else {
            throw EndpointError.badStream(url.absoluteString, "the event ending at line \(line) carries \(quote(data)), not JSON")
        }
        if let error = json["error"], name == "error" || json["type"]?.stringValue == "error" || json["choices"] == nil {
            let message = error["message"]?.stringValue ?? error.stringValue ?? error.jsonText
            if EndpointError.saysContextOverflow(type: error["type"]?.stringValue, message: message) {
                throw EndpointError.contextOverflow(message: message, promptTokens: error["n_prompt_tokens"]?.intValue, contextSize: error["n_ctx"]?.intValue)
            }
            throw EndpointError.badResponse(url.absoluteString, "the server reported an error mid-stream: \(message)")
        }
        return SSEEvent(name: name, data: json)
    }

    private func quote(_ text: String) -> String {
        (text.count > 80 ? String(text.prefix(80)) + "…" : text).debugDescription
    }
}
