import Foundation
import Sandbox

/// `screenshot`: one call from URL to image, through the session's warm headless Chromium.
struct ScreenshotTool: Tool {
    let name = "screenshot"

    /// `headers` was a name-to-value object once; strict-schema clients cannot describe an open
    /// object, so it is a list of {name, value} now. The object form is still taken.
    func normalize(_ arguments: [String: JSONValue]) throws -> [String: JSONValue] {
        guard case .object(let map) = arguments["headers"] else { return arguments }
        var arguments = arguments
        arguments["headers"] = .array(map.keys.sorted().map { ["name": .string($0), "value": map[$0]!] })
        return arguments
    }

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        let target = try await resolveTarget(try arguments.string("url"), session: session)
        let fullPage = arguments.bool("full_page") ?? false
        var headers: [String: String] = [:]
        for header in arguments.values["headers"]?.arrayValue ?? [] {
            if let name = header["name"]?.stringValue, let value = header["value"]?.stringValue { headers[name] = value }
        }
        let request = PageCapture.Request(
            url: target.url, width: arguments.int("width") ?? 1280, height: arguments.int("height") ?? 800, fullPage: fullPage,
            waitFor: arguments.optionalString("wait_for"), waitSeconds: arguments.int("wait_seconds") ?? 10,
            timeout: .seconds(arguments.int("timeout_seconds") ?? 20),
            cookies: (arguments.values["cookies"]?.arrayValue ?? []).compactMap(\.objectValue), headers: headers,
            inline: arguments.bool("inline") ?? !fullPage)
        let savePath = try arguments.optionalString("path").map { try session.workspace.resolve($0, for: .write) }
        if let savePath, savePath.kind == .directory {
            throw ToolError("\(savePath.display) is a folder; give a file name such as \(savePath.display)/page.png", kind: .usage)
        }

        let started = ContinuousClock.now
        let shot = try await capture(request, target: target, session: session)
        let shown: String
        if let savePath {
            try session.workspace.writeAtomically(shot.png, to: savePath)
            shown = savePath.display
        } else {
            // The state dir is toolhost's own, out of the sandbox's reach.
            shown = defaultPath(in: session)
            try FileManager.default.createDirectory(atPath: (shown as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try shot.png.write(to: URL(fileURLWithPath: shown), options: .atomic)
        }
        let (width, height) = Self.dimensions(shot.png)

        var lines = ["Screenshot of \(shot.finalURL)\(shot.status.map { " (HTTP \($0))" } ?? ""), title \(JSONValue.string(shot.title).jsonText): \(width)×\(height), saved to \(shown)."]
        var problem: String?
        if let missing = shot.missingSelector {
            problem = "wait_for: nothing matched \(JSONValue.string(missing).jsonText) within \(request.waitSeconds) s; the shot shows the page as it was."
        }
        if shot.status == 401 || shot.status == 403 || (shot.redirected && Self.looksLikeLogin(shot.finalURL)) {
            problem = "the page needs auth (\(shot.status == 401 || shot.status == 403 ? "HTTP \(shot.status!)" : "it redirected to \(URL(string: shot.finalURL)?.path ?? shot.finalURL)")): pass cookies (e.g. [{\"name\": \"session\", \"value\": \"…\"}]) or headers, then take the shot again."
        }
        if let problem { lines.insert(problem, at: 0) }
        var content: [ToolResult.Content] = []
        if let inline = shot.inlinePNG {
            let (w, h) = Self.dimensions(inline)
            if w != width { lines.append("Shown scaled to \(w)×\(h); the file is full size.") }
            content.append(.image(inline, mimeType: "image/png"))
        } else {
            lines.append(fullPage ? "Full-page shots are not shown inline (pass inline: true to see it)." : "Not shown inline (inline: false).")
        }
        content.insert(.text(lines.joined(separator: "\n")), at: 0)
        let structured: JSONValue = [
            "path": .string(shown), "status": shot.status.map(JSONValue.int) ?? .null, "url": .string(shot.finalURL), "title": .string(shot.title),
            "width": .int(width), "height": .int(height), "inline": .bool(shot.inlinePNG != nil),
            "duration_ms": .int(Int((ContinuousClock.now - started) / .milliseconds(1))),
        ]
        return ToolResult(content: content, structured: structured, error: problem == nil ? nil : .failure)
    }

    struct Target {
        var url: String
        /// host:port for an http(s) URL, the workspace path for a file.
        var display: String
        var isHTTP: Bool
    }

    /// http(s) on this machine, or a workspace file; other hosts only when the browser profile has the network.
    private func resolveTarget(_ raw: String, session: Session) async throws -> Target {
        let text = raw.trimmingCharacters(in: .whitespaces)
        let lower = text.lowercased()
        let looksLikeHost = lower.hasPrefix("localhost") || lower.hasPrefix("127.") || lower.hasPrefix("[::1]")
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") || looksLikeHost {
            let withScheme = looksLikeHost ? "http://" + text : text
            guard let parts = URLComponents(string: withScheme), let host = parts.host?.lowercased() else {
                throw ToolError("\(raw) is not a URL I can open: use http://localhost:PORT/path", kind: .usage)
            }
            let local = host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]" || host == "0.0.0.0"
            let browserRunner = try await session.runner(profile: "browser")
            if !local && !browserRunner.reachesHostNetwork {
                throw ToolError(
                    "\(host) is not on this machine, and the browser profile has no network beyond loopback: shoot the app you started at localhost, or run with a profile whose network is \"host\"",
                    kind: .usage)
            }
            return Target(url: withScheme, display: "\(host)\(parts.port.map { ":\($0)" } ?? "")", isHTTP: true)
        }
        let path = lower.hasPrefix("file://") ? String(text.dropFirst(7)) : text
        let resolved = try session.workspace.resolve(path)
        guard resolved.kind == .file else {
            throw ToolError(
                resolved.kind == .missing
                    ? "\(resolved.display) does not exist in the workspace; give an http://localhost:PORT URL or a file that exists"
                    : "\(resolved.display) is a folder; give an HTML file in it, e.g. \(resolved.display)/index.html",
                kind: .usage)
        }
        var url = URLComponents()
        url.scheme = "file"
        url.path = resolved.absolute
        return Target(url: url.string ?? "file://" + resolved.absolute, display: resolved.display, isHTTP: false)
    }

    /// Runs the capture on the session's browser: a browser that died is started again once; a
    /// page that hangs gets the browser stopped (nothing of it survives) and a one-line error.
    private func capture(_ request: PageCapture.Request, target: Target, session: Session) async throws -> PageCapture.Shot {
        let browser = try await session.sessionBrowser()
        for attempt in 1...2 {
            do {
                return try await browser.capture(request)
            } catch DevToolsPipe.Failure.closed where attempt == 1 {
                continue
            } catch let hung as PageCapture.PageHung {
                await browser.close()
                throw ToolError(
                    "the page did not finish (\(hung.what)) within \(request.timeout): an endless script, a dialog loop or a request that never ends. The browser was stopped and starts fresh on the next call; check the page's code or its server's log.")
            } catch let failed as PageCapture.NavigationFailed {
                throw ToolError(Self.explain(failed.errorText, target: target))
            }
        }
        throw ToolError("the browser crashed twice while taking the shot; its log is \(session.stateFolder)/logs/chromium.log")
    }

    static func explain(_ errorText: String, target: Target) -> String {
        switch errorText {
        case "net::ERR_CONNECTION_REFUSED":
            return "nothing listens at \(target.display): start the app with execute {command: \"npm run dev\", background: true} (the same session), wait for its log to say it listens, then take the shot"
        case "net::ERR_UNSAFE_PORT":
            return "Chromium refuses to open \(target.display): the port is on its list of unsafe ports (1, 25, 6000, …). Serve the app on a port such as 3000 or 8080"
        case "net::ERR_FILE_NOT_FOUND":
            return "\(target.display) could not be opened as a file"
        default:
            return "the browser could not open \(target.url): \(JSONValue.string(errorText).jsonText)"
        }
    }

    static func looksLikeLogin(_ url: String) -> Bool {
        let path = (URL(string: url)?.path ?? url).lowercased()
        return ["login", "signin", "sign-in", "sign_in", "auth"].contains { path.contains($0) }
    }

    private func defaultPath(in session: Session) -> String {
        let stamp = ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withFullDate, .withTime])
        return "\(session.stateFolder)/screenshots/\(stamp)-\(UInt16.random(in: 0...UInt16.max)).png"
    }

    /// Width and height from a PNG's IHDR chunk.
    static func dimensions(_ png: Data) -> (Int, Int) {
        guard png.count >= 24 else { return (0, 0) }
        let bytes = [UInt8](png.prefix(24))
        func word(_ at: Int) -> Int { bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
        return (word(16), word(20))
    }
}
