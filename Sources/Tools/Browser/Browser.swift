import Foundation
import Sandbox

/// The session's headless Chromium, confined by the browser profile inside the session's network
/// namespace (so servers the session started are at localhost). It starts with the first
/// screenshot (or ahead of it, see `Session.toolsListed`), stays warm, restarts when it died, and closes with the session or after ten idle minutes.
actor Browser {
    static let idleTimeout: Duration = .seconds(600)

    private let runner: any ProcessRunner
    private let executable: String
    private let logFile: String
    private let workspace: String
    private var process: BackgroundProcess?
    private var pipe: DevToolsPipe?
    private var lastUse = ContinuousClock.now
    private var idleWatch: Task<Void, Never>?
    /// The next screenshot's target, prepared while the model reads the last one.
    private var spare: Task<PageCapture.Target, any Error>?
    /// How many times the browser was started (a restart after a crash counts).
    private(set) var starts = 0

    init(runner: any ProcessRunner, executable: String, stateFolder: String, workspace: String) {
        self.runner = runner
        self.executable = executable
        self.workspace = workspace
        logFile = stateFolder + "/logs/chromium.log"
    }

    /// The browser binary: TOOLHOST_CHROMIUM, else Debian's or the usual names; missing is an error
    /// that gives the install command.
    /// Debian's /usr/bin/chromium is a shell wrapper around the first; the binary starts faster.
    static let candidates = [
        "/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/chromium-headless-shell",
    ]

    static func findExecutable(environment: [String: String] = ProcessInfo.processInfo.environment, candidates: [String] = candidates) throws -> String {
        if let chosen = environment["TOOLHOST_CHROMIUM"], !chosen.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: chosen) else {
                throw ToolError("TOOLHOST_CHROMIUM is \(chosen), which is not an executable file")
            }
            return chosen
        }
        guard let found = candidates.first(where: FileManager.default.isExecutableFile) else {
            throw ToolError(
                "Chromium is not installed, so screenshots cannot be taken: install it on the host with `sudo apt-get install chromium` (Debian/Ubuntu), or set TOOLHOST_CHROMIUM to a Chrome or Chromium binary. Do not try to install a browser from inside the workspace.")
        }
        return found
    }

    /// The DevTools connection, starting (or restarting) the browser when needed.
    func connection() async throws -> DevToolsPipe {
        lastUse = .now
        if let pipe, !pipe.closed, process?.isRunning == true { return pipe }
        stop()
        return try await start()
    }

    /// Takes one shot in a fresh target (the spare when one is ready). The next spare is made once
    /// this shot is done, while the model reads it: made during the shot, it would compete with it
    /// for the CPU.
    func capture(_ request: PageCapture.Request) async throws -> PageCapture.Shot {
        let reused = pipe != nil
        do {
            return try await captureOnce(request)
        } catch DevToolsPipe.Failure.closed where reused {
            // A browser killed since the last call can still look alive for a moment (its pipe's
            // end not read yet): the shot finds the pipe closed, and a new browser takes it.
            stop()
            return try await captureOnce(request)
        }
    }

    private func captureOnce(_ request: PageCapture.Request) async throws -> PageCapture.Shot {
        let pipe = try await connection()
        let ready = spare
        spare = nil
        let target: PageCapture.Target
        if let ready, let prepared = try? await ready.value, !pipe.closed {
            target = prepared
        } else {
            target = try await PageCapture.Target.prepare(on: pipe)
        }
        let shot = try await PageCapture(pipe: pipe, target: target).capture(request)
        if spare == nil && !pipe.closed { spare = Task { try await PageCapture.Target.prepare(on: pipe) } }
        return shot
    }

    /// Starts the browser and prepares the first shot's target, before any shot is asked for. A
    /// failure is left for that shot, which starts the browser again and says why.
    func startAhead() async {
        // A session closed before this began cancelled it: no browser may outlive the session.
        guard !Task.isCancelled, let pipe = try? await connection(), spare == nil, !pipe.closed else { return }
        spare = Task { try await PageCapture.Target.prepare(on: pipe) }
    }

    /// The browser's host pid while it runs.
    func processID() -> Int32? { process?.isRunning == true ? process?.pid : nil }

    /// Ends the browser and everything it started (its pid namespace goes with it).
    func close() {
        idleWatch?.cancel()
        idleWatch = nil
        stop()
    }

    private func stop() {
        spare?.cancel()
        spare = nil
        pipe?.close()
        pipe = nil
        process?.stop()
        process = nil
    }

    private func start() async throws -> DevToolsPipe {
        let toBrowserPipe = try Spawn.pipe()
        guard let fromBrowserPipe = try? Spawn.pipe() else {
            Glibc.close(toBrowserPipe.read); Glibc.close(toBrowserPipe.write)
            throw ToolError("cannot make a pipe for the browser: \(String(cString: strerror(errno)))")
        }
        let toBrowser = [toBrowserPipe.read, toBrowserPipe.write], fromBrowser = [fromBrowserPipe.read, fromBrowserPipe.write]
        starts += 1
        var spec = ProcessSpec(
            executable: executable,
            arguments: [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", "--user-data-dir=/tmp/toolhost-chromium-\(starts)", "--remote-debugging-pipe",
                "--hide-scrollbars", "--mute-audio", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-default-apps", "--password-store=basic",
                "--use-mock-keychain", "--font-render-hinting=none", "about:blank",
            ],
            environment: runner.baseEnvironment(host: ProcessInfo.processInfo.environment), workingDirectory: workspace)
        spec.extraDescriptors = [3: toBrowser[0], 4: fromBrowser[1]]
        try FileManager.default.createDirectory(atPath: (logFile as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let started: BackgroundProcess
        do {
            started = try runner.start(spec, logFile: logFile)
        } catch {
            for fd in toBrowser + fromBrowser { Glibc.close(fd) }
            throw ToolError("the browser did not start: \(error)")
        }
        Glibc.close(toBrowser[0])
        Glibc.close(fromBrowser[1])
        let box = PipeBox()
        let connection = DevToolsPipe(write: toBrowser[1], read: fromBrowser[0]) { method, _, session in
            // alert(), confirm() and prompt() would block the page for ever: accept them at once.
            guard method == "Page.javascriptDialogOpening", let pipe = box.pipe else { return }
            Task { _ = try? await pipe.send("Page.handleJavaScriptDialog", ["accept": true], session: session) }
        }
        box.pipe = connection
        process = started
        pipe = connection
        do {
            _ = try await connection.send("Browser.getVersion", timeout: .seconds(30))
        } catch {
            stop()
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)).map { String($0.suffix(600)) } ?? ""
            throw ToolError("the browser started but did not answer (\(error)). Its log ends with:\n\(log)")
        }
        watchIdle()
        return connection
    }

    private func watchIdle() {
        idleWatch?.cancel()
        idleWatch = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(30))
                guard let self else { return }
                if await self.idleLongEnough() { await self.close(); return }
            }
        }
    }

    private func idleLongEnough() -> Bool { ContinuousClock.now - lastUse > Self.idleTimeout }
}

/// Lets the pipe's event handler reach the pipe it belongs to.
private final class PipeBox: @unchecked Sendable {
    var pipe: DevToolsPipe?
}
