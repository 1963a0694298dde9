import Agent
import ArgumentParser
import Foundation
import JSONCore

/// The Ray side of `showdown --ray`: one Python process (`toolhost_eval.ray_showdown`) connected to
/// the cluster, sent a line per run (the command a node runs, the resources it needs, the local
/// folder for its files) and answering a line when the run's files are in that folder.
final class RayDriver: @unchecked Sendable {
    private let process = Process()
    private let input: FileHandle
    private let lock = NSLock()
    private var waiting: [String: CheckedContinuation<Void, any Error>] = [:]
    private var exited: String?

    /// Starts the driver on `address` and waits until it is connected; its log goes to `log`.
    init(address: String, log: String) throws {
        let python = Self.python()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-m", "toolhost_eval.ray_showdown", "--address", address]
        let toDriver = Pipe(), fromDriver = Pipe()
        // Never through a link planted where the log goes, as the showdown's serve: logs.
        let logFD = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard logFD >= 0 else { throw ValidationError("--ray: cannot write the driver's log \(log): \(String(cString: strerror(errno)))") }
        let logHandle = FileHandle(fileDescriptor: logFD, closeOnDealloc: true)
        process.standardInput = toDriver
        process.standardOutput = fromDriver
        process.standardError = logHandle
        do {
            try process.run()
        } catch {
            throw ValidationError("--ray: cannot start \(python): \(error). Set TOOLHOST_PYTHON to a Python with ray and toolhost-eval (pip install ray -e python)")
        }
        input = toDriver.fileHandleForWriting
        let output = Lines(fromDriver.fileHandleForReading)
        guard let first = output.next(), let ready = Self.object(first), ready["ready"]?.boolValue == true else {
            process.waitUntilExit()
            let tail = (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(1500)) } ?? ""
            throw ValidationError("--ray \(address): the Ray driver (\(python) -m toolhost_eval.ray_showdown) did not connect:\n\(tail)\nIs the cluster up (ray start --head), and does that Python have ray and toolhost-eval? TOOLHOST_PYTHON picks another.")
        }
        warn("showdown: connected to the Ray cluster at \(address) (\(ready["nodes"]?.jsonText ?? "?") nodes alive)")
        Thread { self.readReplies(output) }.start()
    }

    /// $TOOLHOST_PYTHON, else the .venv-eval of the checkout this binary was built in, else python3.
    static func python() -> String {
        if let chosen = ProcessInfo.processInfo.environment["TOOLHOST_PYTHON"] { return chosen }
        var folder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            let candidate = folder.appendingPathComponent(".venv-eval/bin/python").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            folder.deleteLastPathComponent()
        }
        return "/usr/bin/python3"
    }

    private static func object(_ line: String) -> [String: JSONValue]? {
        (try? JSONValue.parse(line))?.objectValue
    }

    /// Sends one run and returns when its files are in `folder`; throws the driver's reason when
    /// the cluster could not carry it out (a node that died twice, no node with its resources).
    func run(_ slot: Showdown.RemoteSlot, command: [String], folder: String) async throws {
        let request: JSONValue = [
            "id": .string(slot.run), "argv": .array(command.map(JSONValue.string)), "resources": .object(slot.resources.mapValues(JSONValue.double)),
            "folder": .string(folder),
        ]
        let line = Data((request.jsonText + "\n").utf8)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            lock.lock()
            if let exited {
                lock.unlock()
                continuation.resume(throwing: RayError(exited))
                return
            }
            waiting[slot.run] = continuation
            input.write(line)
            lock.unlock()
        }
    }

    private func readReplies(_ output: Lines) {
        while let line = output.next() {
            guard let reply = Self.object(line), let id = reply["id"]?.stringValue else { continue }
            lock.lock()
            let continuation = waiting.removeValue(forKey: id)
            lock.unlock()
            if reply["ok"]?.boolValue == true {
                continuation?.resume()
            } else {
                continuation?.resume(throwing: RayError("on Ray: \(reply["error"]?.stringValue ?? "the run failed")"))
            }
        }
        lock.lock()
        exited = "the Ray driver exited before the run ended (its log: ray-driver.log in the showdown's folder)"
        let pending = waiting
        waiting = [:]
        lock.unlock()
        for continuation in pending.values { continuation.resume(throwing: RayError(exited!)) }
    }

    func close() {
        try? input.close()
        process.waitUntilExit()
    }
}

/// The lines a pipe brings, read in chunks (the driver's replies are one JSON object a line).
private final class Lines: @unchecked Sendable {
    private let handle: FileHandle
    private var buffer = Data()

    init(_ handle: FileHandle) { self.handle = handle }

    /// The next line without its newline; nil at the end.
    func next() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[buffer.startIndex..<newline]
                buffer.removeSubrange(buffer.startIndex...newline)
                return String(decoding: line, as: UTF8.self)
            }
            let chunk = handle.availableData
            guard !chunk.isEmpty else { return nil }
            buffer += chunk
        }
    }
}

/// Why the cluster could not carry a run out.
struct RayError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
