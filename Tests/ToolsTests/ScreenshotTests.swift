import Foundation
import Sandbox
import TestSupport
import Testing
@testable import Tools

/// The screenshot tool with real Chromium, confined by the browser profile in the session's network.
@Suite(.serialized) struct ScreenshotTests: UsesFixture {
    let fixture: Fixture

    init() throws {
        fixture = try Fixture()
    }

    func shot(_ arguments: JSONValue, in other: Session? = nil) async -> ToolResult {
        await call("screenshot", arguments, in: other ?? session)
    }

    /// The pid namespace the session's browser runs in (every Chromium process of it, and nothing else).
    func browserNamespace() async throws -> String {
        let pid = try #require(await session.browser?.processID(), "no browser is running")
        return try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/pid")
    }

    func image(_ result: ToolResult) -> Data? {
        result.content.lazy.compactMap { if case .image(let data, _) = $0 { data } else { nil } }.first
    }

    /// Starts `command` in the background with PORT set, and waits until its log says it listens.
    func serve(_ command: String) async throws -> Int {
        let port = Int.random(in: 20_000...40_000)
        let started = await call("execute", ["command": .string("PORT=\(port) \(command)"), "background": true], in: session)
        let log = try #require(started.structured?["log"]?.stringValue, "\(started.text)")
        for _ in 0..<100 where !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("listening") {
            try await Task.sleep(for: .milliseconds(100))
        }
        return port
    }

    @Test func aWorkspaceFileAtExactly800By600() async throws {
        try scratch.write("site/index.html", "<title>Local</title><body style='margin:0'><h1 style='color:#c00'>Hello</h1><div style='height:200px;background:#36c'></div>")
        let result = await shot(["url": "site/index.html", "width": 800, "height": 600, "path": "shots/local.png"])
        #expect(!result.isError, "\(result.text)")
        let file = try Data(contentsOf: URL(fileURLWithPath: scratch.workspacePath + "/shots/local.png"))
        #expect(ScreenshotTool.dimensions(file) == (800, 600))
        #expect(try await distinctBytes(in: file) > 10, "the PNG is blank")
        #expect(image(result).map(ScreenshotTool.dimensions) ?? (0, 0) == (800, 600))
        #expect(result.text.contains("title \"Local\""))
        let namespace = try await browserNamespace()
        #expect(!processes(in: namespace).isEmpty)
        await session.close()
        #expect(await noneLeft(in: namespace), "closing the session ends the browser and its children")
    }

    @Test func theBlogsAdminPageWithAndWithoutItsCookie() async throws {
        for entry in try FileManager.default.contentsOfDirectory(atPath: blogFixture) where entry != "dist" {
            try FileManager.default.copyItem(atPath: blogFixture + "/" + entry, toPath: scratch.workspacePath + "/" + entry)
        }
        let built = await call("build", [:], in: session)
        #expect(!built.isError, "\(built.text)")
        let port = try await serve("npm start")
        let tags = await shot(["url": .string("http://localhost:\(port)/tags")])
        #expect(!tags.isError && tags.text.contains("title \"Tags\"") && tags.text.contains("HTTP 200"), "\(tags.text)")

        let locked = await shot(["url": .string("http://localhost:\(port)/admin")])
        #expect(locked.isError)
        #expect(locked.text.contains("the page needs auth (it redirected to /login): pass cookies"), "\(locked.text)")
        #expect(locked.text.contains("title \"Log in\""))
        let open = await shot(["url": .string("http://localhost:\(port)/admin"), "cookies": [["name": "session", "value": "admin"]]])
        #expect(!open.isError, "\(open.text)")
        #expect(open.text.contains("title \"Admin\""))
        let lockedImage = try #require(image(locked)), openImage = try #require(image(open))
        #expect(lockedImage != openImage)
        await session.close()
    }

    /// A shot is taken at load only when no request is open or starts meanwhile: data a script
    /// fetches after load (slowly) is in the shot and the title.
    @Test func dataFetchedAfterLoadIsInTheShot() async throws {
        try scratch.write("server.js", """
            // At load, or (on /late) a moment after it, while the shot taken at load is being made.
            const page = (delay) => `<title>before</title><body><script>
            addEventListener("load", () => setTimeout(() => fetch("/data").then(r => r.text()).then(t => { document.title = t }), ${delay}))
            </script>`
            require("http").createServer((req, res) => {
              if (req.url === "/data") return setTimeout(() => res.end("fetched"), 300)
              res.setHeader("content-type", "text/html"); res.end(page(req.url === "/late" ? 5 : 0))
            }).listen(process.env.PORT, () => console.log("listening"))
            """)
        let port = try await serve("node server.js")
        for path in ["/", "/late"] {
            let result = await shot(["url": .string("http://localhost:\(port)\(path)"), "width": 400, "height": 300])
            #expect(!result.isError && result.text.contains("title \"fetched\""), "\(result.text)")
        }
        await session.close()
    }

    @Test func fullPageOnATallPageIsSavedWholeAndNotInlined() async throws {
        try scratch.write("tall.html", "<body style='margin:0'><div style='height:3000px;background:linear-gradient(#fff,#09c)'>top</div></body>")
        let result = await shot(["url": "tall.html", "width": 600, "height": 400, "full_page": true, "path": "tall.png"])
        #expect(!result.isError, "\(result.text)")
        let file = try Data(contentsOf: URL(fileURLWithPath: scratch.workspacePath + "/tall.png"))
        #expect(ScreenshotTool.dimensions(file) == (600, 3000))
        #expect(image(result) == nil)
        #expect(result.text.contains("Full-page shots are not shown inline"))
        await session.close()
    }

    @Test func waitForFindsAnElementAddedLater() async throws {
        try scratch.write("late.html", "<body><script>setTimeout(() => { const d = document.createElement('div'); d.id = 'late'; d.textContent = 'here'; document.body.append(d) }, 500)</script></body>")
        let found = await shot(["url": "late.html", "wait_for": "#late"])
        #expect(!found.isError, "\(found.text)")
        let missing = await shot(["url": "late.html", "wait_for": "#never", "wait_seconds": 1])
        #expect(missing.isError)
        #expect(missing.text.contains("wait_for: nothing matched \"#never\" within 1 s"))
        let invalid = await shot(["url": "late.html", "wait_for": "##"])
        #expect(invalid.text.contains("is not a valid CSS selector"), "\(invalid.text)")
        await session.close()
    }

    @Test func nothingListeningAndRemoteHostsGetOneLine() async throws {
        let port = Int.random(in: 40_000...50_000)
        let closed = await shot(["url": .string("http://localhost:\(port)/")])
        #expect(closed.text == #"Error: nothing listens at localhost:\#(port): start the app with execute {command: "npm run dev", background: true} (the same session), wait for its log to say it listens, then take the shot"#)
        let remote = await shot(["url": "https://example.com/"])
        #expect(remote.text.contains("example.com is not on this machine"))
        let outside = await shot(["url": "/etc/passwd"])
        #expect(outside.isError && outside.text.contains("outside the workspace"), "\(outside.text)")
        await session.close()
    }

    @Test func aBrowserKilledBetweenTwoCallsIsStartedAgain() async throws {
        try scratch.write("a.html", "<title>A</title>A")
        #expect(!(await shot(["url": "a.html"])).isError)
        let first = try await browserNamespace()
        for pid in processes(in: first) { kill(pid, SIGKILL) }
        #expect(await noneLeft(in: first))
        let again = await shot(["url": "a.html"])
        #expect(!again.isError, "\(again.text)")
        let second = try await browserNamespace()
        #expect(second != first)
        await session.close()
        #expect(await noneLeft(in: second))
    }

    /// A session that starts its browser ahead has it running once the tools are listed, before
    /// any shot; the first shot uses that browser, and the session's close ends it. Without the
    /// setting, or without the screenshot tool, listing starts nothing.
    @Test func theBrowserStartsAheadWhenTheToolsAreListed() async throws {
        let plain = try scratch.session("plain")
        await plain.toolsListed(offering: ["screenshot", "execute"])
        try await Task.sleep(for: .seconds(1))
        #expect(await plain.browser == nil, "off unless the session asks for it")
        await plain.close()
        let ahead = try scratch.session("ahead", browserAhead: true)
        await ahead.toolsListed(offering: ["execute"])
        #expect(await ahead.browser == nil, "no screenshot tool, no browser")
        await ahead.toolsListed(offering: ["screenshot", "execute"])
        var pid: Int32?
        for _ in 0..<300 where pid == nil {
            pid = await ahead.browser?.processID()
            if pid == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let running = try #require(pid, "the browser started before any shot")
        let namespace = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(running)/ns/pid")
        try scratch.write("a.html", "<title>A</title>A")
        #expect(!(await shot(["url": "a.html"], in: ahead)).isError)
        #expect(await ahead.browser?.starts == 1, "the shot used the browser started ahead")
        await ahead.close()
        #expect(await noneLeft(in: namespace))
        // Closed while the start may still be on its way: no browser outlives the session.
        let closing = try scratch.session("closing", browserAhead: true)
        await closing.toolsListed(offering: ["screenshot"])
        let made = try #require(await closing.browser)
        await closing.close()
        try await Task.sleep(for: .seconds(3))
        #expect(await made.processID() == nil, "a browser started after its session closed")
    }

    @Test func theInlineImageIsCappedTheFileIsNot() async throws {
        try scratch.write("wide.html", "<body style='margin:0;background:linear-gradient(90deg,#fff,#c30)'>wide</body>")
        let result = await shot(["url": "wide.html", "width": 4000, "height": 3000, "path": "wide.png"])
        #expect(!result.isError, "\(result.text)")
        let file = try Data(contentsOf: URL(fileURLWithPath: scratch.workspacePath + "/wide.png"))
        #expect(ScreenshotTool.dimensions(file) == (4000, 3000))
        let (w, h) = ScreenshotTool.dimensions(try #require(image(result)))
        #expect(w <= 1568 && h <= 1568 && w * h <= 1_150_000 && w > 1000, "\(w)×\(h)")
        #expect(result.text.contains("Shown scaled to \(w)×\(h)"))
        await session.close()
    }

    @Test func hostilePagesEndCleanlyAndLeaveNoProcess() async throws {
        try scratch.write("alert.html", "<title>Alerted</title><script>alert('hi'); confirm('sure?')</script>ok")
        let alerted = await shot(["url": "alert.html"])
        #expect(!alerted.isError && alerted.text.contains("title \"Alerted\""), "\(alerted.text)")
        let namespace = try await browserNamespace()
        try scratch.write("loop.html", "<script>while (true) {}</script>")
        let started = ContinuousClock.now
        let looped = await shot(["url": "loop.html", "timeout_seconds": 3])
        #expect(looped.isError && looped.text.contains("did not finish"), "\(looped.text)")
        // The timeout asked for is the one applied; the default would be 20 s.
        #expect(looped.text.contains("within 3.0 seconds"), "\(looped.text)")
        #expect(ContinuousClock.now - started < .seconds(60))
        #expect(await noneLeft(in: namespace), "the stuck browser was stopped, renderer and all")
        // The next call gets a fresh browser.
        #expect(!(await shot(["url": "alert.html"])).isError)
        await session.close()
    }

    @Test func aMissingBrowserGivesTheInstallCommand() {
        #expect {
            try Browser.findExecutable(environment: ["TOOLHOST_CHROMIUM": "/nonexistent/chrome"])
        } throws: { error in
            "\(error)".contains("TOOLHOST_CHROMIUM is /nonexistent/chrome")
        }
        #expect {
            try Browser.findExecutable(environment: [:], candidates: ["/nonexistent/chromium"])
        } throws: { error in
            "\(error)".contains("Chromium is not installed") && "\(error)".contains("sudo apt-get install chromium")
        }
    }
}

/// Live (not zombie) processes in a pid namespace, by host pid.
func processes(in namespace: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        guard (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/pid")) == namespace,
            let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(close, offsetBy: 2)] != "Z"
    }
}

/// Waits up to 5 s for a pid namespace to empty.
func noneLeft(in namespace: String) async -> Bool {
    await eventually(within: .seconds(5)) { processes(in: namespace).isEmpty }
}

/// Distinct byte values in a PNG's pixel data (inflated with Python's zlib): a blank page has a handful.
func distinctBytes(in png: Data) async throws -> Int {
    let path = FileManager.default.temporaryDirectory.path + "/png-\(UUID().uuidString.prefix(8)).png"
    try png.write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }
    let script = """
        import struct, sys, zlib
        d = open(sys.argv[1], 'rb').read(); i = 8; idat = b''
        while i < len(d):
            n = struct.unpack('>I', d[i:i+4])[0]
            if d[i+4:i+8] == b'IDAT': idat += d[i+8:i+8+n]
            i += 12 + n
        print(len(set(zlib.decompress(idat))))
        """
    let text = try await capture("/usr/bin/python3", ["-c", script, path]).stdout
    return Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
}
