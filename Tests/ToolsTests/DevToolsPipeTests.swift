import Foundation
import Sandbox
import SystemPackage
import Testing
@testable import Tools

/// What Chromium sends is shaped by the page, and lands in the host process: the pipe keeps a
/// bounded amount of it, and reads any amount in one pass.
@Suite struct DevToolsPipeTests {
    /// Events with large URLs (a page firing fetches): the pipe keeps the newest few, within its
    /// byte cap, and drops a message larger than its size cap without keeping any of it. (Small
    /// caps here, so a debug build gets through; the product's are 16 MiB and 192 MiB.)
    @Test func keptEventsAreBoundedInCountAndBytes() async throws {
        let toBrowser = try Spawn.pipe(), fromBrowser = try Spawn.pipe()
        let limits = DevToolsPipe.Limits(messageBytes: 4 << 20, events: 100, eventBytes: 2 << 20)
        let pipe = DevToolsPipe(write: toBrowser.write, read: fromBrowser.read, limits: limits) { _, _, _ in }
        let url = String(repeating: "a", count: 64 << 10)
        let writer = Thread {
            for index in 0..<300 {
                let message = #"{"method":"Network.requestWillBeSent","params":{"requestId":"r\#(index)","request":{"url":"\#(url)"}},"sessionId":"S"}"#
                _ = try? FileDescriptor(rawValue: fromBrowser.write).writeAll(Array(message.utf8) + [0])
            }
            // One message over the size cap, sent in pieces, then a small one that must still arrive.
            let chunk = [UInt8](repeating: 0x20, count: 1 << 20)
            for _ in 0..<(limits.messageBytes >> 20) + 2 { _ = try? FileDescriptor(rawValue: fromBrowser.write).writeAll(chunk) }
            let last = Array(#"{"x":1}"#.utf8) + [0] + Array(#"{"method":"Page.loadEventFired","params":{},"sessionId":"S"}"#.utf8) + [0]
            _ = try? FileDescriptor(rawValue: fromBrowser.write).writeAll(last)
            close(fromBrowser.write)
        }
        writer.start()
        let last = try await pipe.waitForEvent(session: "S", timeout: .seconds(120)) { method, _ in method == "Page.loadEventFired" }
        #expect(last == [:])
        let kept = pipe.events(of: "S")
        let bytes = kept.reduce(0) { $0 + $1.params.jsonText.utf8.count }
        #expect(kept.count <= limits.events)
        #expect(bytes <= limits.eventBytes, "\(kept.count) events, \(bytes) bytes kept")
        #expect(kept.count > 10, "the newest events are kept")
        #expect(kept.dropLast().last?.params["requestId"]?.stringValue == "r299", "the newest events are the ones kept")
        #expect(!kept.contains { $0.params["x"] != nil }, "the oversized message was dropped")
        pipe.close()
    }
}
