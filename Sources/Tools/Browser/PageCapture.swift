import Foundation

/// One screenshot over DevTools: a target of its own, auth (cookies, headers), the viewport, the
/// navigation, waiting for that navigation's `load` and `networkIdle`, an optional selector, and
/// the PNG (full size, and scaled for the context when it is larger than the caps).
struct PageCapture {
    struct Request {
        var url: String
        var width: Int
        var height: Int
        var fullPage: Bool
        var waitFor: String?
        var waitSeconds: Int
        /// How long the navigation may take to reach `load`.
        var timeout: Duration
        var cookies: [[String: JSONValue]]
        var headers: [String: String]
        /// Produce a scaled copy for the context.
        var inline: Bool
    }

    struct Shot {
        var png: Data
        var inlinePNG: Data?
        var status: Int?
        var finalURL: String
        var title: String
        /// Whether the page came back through a redirect.
        var redirected: Bool
        /// A `wait_for` selector that never matched.
        var missingSelector: String?
    }

    /// A navigation that failed before any page loaded (net::ERR_…).
    struct NavigationFailed: Error {
        let errorText: String
    }

    /// The page did not settle within the bound: the browser is stuck and must be restarted.
    struct PageHung: Error {
        let what: String
    }

    /// The largest inline image: 1568 px a side and 1.15 megapixels, what vision models take without resampling.
    static let maxSide = 1568.0
    static let maxPixels = 1_150_000.0
    static let idleBound: Duration = .seconds(5)

    /// A blank target, attached, with the events a capture needs switched on: made ahead of time
    /// so a warm screenshot starts at navigation.
    struct Target: Sendable {
        let targetID: String
        let session: String
        /// The viewport it was given, so a shot at that size skips the resize.
        let viewport: (width: Int, height: Int)

        static let defaultViewport = (width: 1280, height: 800)

        static func prepare(on pipe: DevToolsPipe) async throws -> Target {
            let created = try await pipe.send("Target.createTarget", ["url": "about:blank"])
            guard let targetID = created["targetId"]?.stringValue else { throw PageHung(what: "Target.createTarget") }
            let attached = try await pipe.send("Target.attachToTarget", ["targetId": .string(targetID), "flatten": true])
            guard let session = attached["sessionId"]?.stringValue else { throw PageHung(what: "Target.attachToTarget") }
            // Independent of each other: sent at once, answered in one round trip's time.
            async let pageEvents = pipe.send("Page.enable", session: session)
            async let lifecycleEvents = pipe.send("Page.setLifecycleEventsEnabled", ["enabled": true], session: session)
            async let networkEvents = pipe.send("Network.enable", session: session)
            async let runtimeEvents = pipe.send("Runtime.enable", session: session)
            async let sized = pipe.send("Emulation.setDeviceMetricsOverride", metrics(defaultViewport), session: session)
            _ = try await (pageEvents, lifecycleEvents, networkEvents, runtimeEvents, sized)
            return Target(targetID: targetID, session: session, viewport: defaultViewport)
        }

        static func metrics(_ size: (width: Int, height: Int)) -> JSONValue {
            ["width": .int(size.width), "height": .int(size.height), "deviceScaleFactor": 1, "mobile": false]
        }
    }

    let pipe: DevToolsPipe
    let target: Target

    /// Takes the shot in `target`, then closes it: every screenshot has a page of its own.
    func capture(_ request: Request) async throws -> Shot {
        let session = target.session
        defer {
            pipe.forget(session: session)
            Task { [pipe, target] in _ = try? await pipe.send("Target.closeTarget", ["targetId": .string(target.targetID)], timeout: .seconds(5)) }
        }
        @Sendable func page(_ method: String, _ params: JSONValue = [:], timeout: Duration = .seconds(10)) async throws -> JSONValue {
            do {
                return try await pipe.send(method, params, session: session, timeout: timeout)
            } catch DevToolsPipe.Failure.timeout {
                throw PageHung(what: method)
            }
        }
        func shoot(_ params: [String: JSONValue]) async throws -> Data {
            let shot = try await page("Page.captureScreenshot", .object(params), timeout: .seconds(30))
            guard let base64 = shot["data"]?.stringValue, let png = Data(base64Encoded: base64) else { throw PageHung(what: "Page.captureScreenshot") }
            return png
        }
        if !request.headers.isEmpty {
            _ = try await page("Network.setExtraHTTPHeaders", ["headers": .object(request.headers.mapValues(JSONValue.string))])
        }
        for cookie in request.cookies {
            var fields = cookie
            if fields["domain"] == nil { fields["url"] = .string(request.url) }
            let set = try await page("Network.setCookie", .object(fields))
            if set["success"]?.boolValue == false { throw ToolError("the browser refused the cookie \(cookie["name"]?.stringValue ?? ""): check its domain and path", kind: .usage) }
        }
        if target.viewport != (request.width, request.height) {
            _ = try await page("Emulation.setDeviceMetricsOverride", Target.metrics((request.width, request.height)))
        }
        let navigation = try await page("Page.navigate", ["url": .string(request.url)], timeout: request.timeout)
        if let errorText = navigation["errorText"]?.stringValue, !errorText.isEmpty { throw NavigationFailed(errorText: errorText) }
        let loader = navigation["loaderId"]?.stringValue ?? ""
        // about:blank fired its own load and networkIdle first: wait for this navigation's.
        func lifecycle(_ name: String) -> @Sendable (String, JSONValue) -> Bool {
            { method, params in method == "Page.lifecycleEvent" && params["name"]?.stringValue == name && params["loaderId"]?.stringValue == loader }
        }
        do {
            _ = try await pipe.waitForEvent(session: session, timeout: request.timeout, where: lifecycle("load"))
        } catch DevToolsPipe.Failure.timeout {
            throw PageHung(what: "the page's load event")
        }
        @Sendable func pageTitle() async throws -> String {
            try await page("Runtime.evaluate", ["expression": "document.title", "returnByValue": true])["result"]?["value"]?.stringValue ?? ""
        }

        var width = Double(request.width), height = Double(request.height)
        var params = Self.shotParameters(width: width, height: height)
        var taken: (png: Data, title: String)?
        // Most pages are done at load. Shoot at once, and keep the shot when no request was open and
        // none started while it was taken: the quiet wait below would have shown the same page.
        // Full-page and large shots, and shots waiting for a selector, always wait.
        if request.waitFor == nil && !request.fullPage && params["optimizeForSpeed"] != nil {
            let before = network(session: session, loader: loader)
            if before.open.isEmpty {
                async let title = pageTitle()
                let png = try await shoot(params)
                let after = network(session: session, loader: loader)
                if after.started == before.started && after.open.isEmpty { taken = (png, try await title) }
            }
        }
        var missingSelector: String?
        if taken == nil {
            try await settle(session: session, loader: loader)
            if let selector = request.waitFor, try await !waitFor(selector, seconds: request.waitSeconds, page: page) { missingSelector = selector }
            if request.fullPage {
                let metrics = try await page("Page.getLayoutMetrics")
                let size = metrics["cssContentSize"] ?? metrics["contentSize"]
                width = max(1, size?["width"]?.doubleValue ?? width)
                height = min(max(1, size?["height"]?.doubleValue ?? height), 16_384)
                params = Self.shotParameters(width: width, height: height)
                params["captureBeyondViewport"] = true
            }
            async let title = pageTitle()
            let png = try await shoot(params)
            taken = (png, try await title)
        }
        let (png, title) = taken!
        let (status, finalURL, redirected) = document(session: session, loader: loader, requested: request.url)
        var inlinePNG: Data?
        if request.inline {
            var scale = min(1, Self.maxSide / max(width, height), (Self.maxPixels / (width * height)).squareRoot())
            // Chromium rounds the scaled size up: step down until the rounded size fits too.
            while scale < 1, (width * scale).rounded(.up) * (height * scale).rounded(.up) > Self.maxPixels { scale -= 0.0005 }
            if scale < 1 {
                params["clip"] = ["x": 0, "y": 0, "width": .double(width), "height": .double(height), "scale": .double(scale)]
                inlinePNG = try await shoot(params)
            } else {
                inlinePNG = png
            }
        }
        return Shot(png: png, inlinePNG: inlinePNG, status: status, finalURL: finalURL, title: title, redirected: redirected, missingSelector: missingSelector)
    }

    /// PNG at scale 1 over the given area; Chromium's faster encoder up to a few megapixels (above
    /// that Chromium 156 stalls with it).
    private static func shotParameters(width: Double, height: Double) -> [String: JSONValue] {
        var params: [String: JSONValue] = ["format": "png", "clip": ["x": 0, "y": 0, "width": .double(width), "height": .double(height), "scale": 1]]
        if width * height <= 2_500_000 { params["optimizeForSpeed"] = true }
        return params
    }

    /// Polls for `selector` until it matches or `seconds` pass; false when it never matched.
    private func waitFor(
        _ selector: String, seconds: Int, page: @Sendable (String, JSONValue, Duration) async throws -> JSONValue
    ) async throws -> Bool {
        let probe = "!!document.querySelector(\(JSONValue.string(selector).jsonText))"
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            let answer = try await page("Runtime.evaluate", ["expression": .string(probe), "returnByValue": true], .seconds(10))
            if let exception = answer["exceptionDetails"] {
                throw ToolError(
                    "wait_for: \(JSONValue.string(selector).jsonText) is not a valid CSS selector (\(exception["exception"]?["description"]?.stringValue ?? "SyntaxError"))",
                    kind: .usage)
            }
            if answer["result"]?["value"]?.boolValue == true { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// The page's requests so far (how many started, which have not finished), and whether
    /// Chromium reported networkIdle for this navigation.
    private func network(session: String, loader: String) -> (started: Int, open: Set<String>, idle: Bool) {
        var started = 0, open = Set<String>(), idle = false
        for event in pipe.events(of: session) {
            let id = event.params["requestId"]?.stringValue ?? ""
            switch event.method {
            case "Network.requestWillBeSent":
                started += 1
                open.insert(id)
            case "Network.loadingFinished", "Network.loadingFailed": open.remove(id)
            case "Page.lifecycleEvent":
                idle = idle || (event.params["name"]?.stringValue == "networkIdle" && event.params["loaderId"]?.stringValue == loader)
            default: break
            }
        }
        return (started, open, idle)
    }

    /// Waits until the page's requests are done and none started for a moment (fetches a script
    /// makes after load count), or Chromium's own networkIdle, within `idleBound`. Chromium's
    /// signal alone waits 500 ms of silence even for a page with no requests at all.
    private func settle(session: String, loader: String) async throws {
        let deadline = ContinuousClock.now + Self.idleBound
        var quietSince = ContinuousClock.now
        while ContinuousClock.now < deadline {
            let state = network(session: session, loader: loader)
            if state.idle { return }
            if !state.open.isEmpty { quietSince = .now } else if ContinuousClock.now - quietSince >= .milliseconds(40) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The main document's response for this navigation: status, final URL, and whether it was redirected.
    private func document(session: String, loader: String, requested: String) -> (Int?, String, Bool) {
        let events = pipe.events(of: session)
        let response = events.last { $0.method == "Network.responseReceived" && $0.params["type"]?.stringValue == "Document" && $0.params["loaderId"]?.stringValue == loader }
        let redirected = events.contains { $0.method == "Network.requestWillBeSent" && $0.params["loaderId"]?.stringValue == loader && $0.params["redirectResponse"] != nil }
        return (response?.params["response"]?["status"]?.intValue, response?.params["response"]?["url"]?.stringValue ?? requested, redirected)
    }
}
