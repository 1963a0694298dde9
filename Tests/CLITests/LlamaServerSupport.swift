import Foundation
import TestSupport
import Testing

/// A real llama-server with a real (tiny) model, on a port of its own, for as long as a test needs.
/// scripts/setup.sh builds the binary and assembles the model into the cache outside the repository.
final class LlamaServer: @unchecked Sendable {
    static var cache: String {
        let environment = ProcessInfo.processInfo.environment
        if let cache = environment["TOOLHOST_CACHE"] { return cache }
        return (environment["XDG_CACHE_HOME"] ?? NSHomeDirectory() + "/.cache") + "/toolhost"
    }
    static var binary: String? { existing(cache + "/llama-server-0.3.36/llama-server") }
    static var tinyModel: String? { existing(cache + "/models/gemma3-270m-q4_k_m.gguf") }
    /// SmolLM2-135M-Instruct: the smaller and faster of the two, for most real-model tests.
    static var smolModel: String? { existing(cache + "/models/smollm2-135m-instruct-q4_1.gguf") }
    private static func existing(_ path: String) -> String? { FileManager.default.fileExists(atPath: path) ? path : nil }

    let process = Process()
    /// The endpoint as `--endpoint` takes it: http://127.0.0.1:PORT, or unix:PATH.
    let base: String
    /// curl's arguments to reach the server, before the URL.
    private let route: [String]
    private let origin: String

    /// On a random port, or on the unix socket at `socket` (llama-server listens on one when its
    /// --host ends in .sock).
    init(binary: String, model: String, context: Int = 2048, extra: [String] = [], socket: String? = nil) async throws {
        let port = freePort()
        if let socket {
            base = "unix:" + socket
            route = ["--unix-socket", socket]
            origin = "http://localhost"
        } else {
            base = "http://127.0.0.1:\(port)"
            route = []
            origin = base
        }
        process.executableURL = URL(fileURLWithPath: binary)
        // A fixed seed, so a reply to the same prompt repeats (prompts still vary: they hold the
        // workspace's random path, and the tests assert nothing a tiny model chooses). Not greedy:
        // under a grammar, greedy Gemma 3 270M wrote one reply for the whole 4-minute budget.
        process.arguments = ["-m", model, "--host", socket ?? "127.0.0.1", "--port", String(port), "-c", String(context), "-t", "2",
                             "--seed", "7"] + extra
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<240 {
            if await (try? runProgram("/usr/bin/curl", ["-sf", "-o", "/dev/null"] + route + [origin + "/health"]).status) == 0 { return }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        stop()
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "llama-server did not come up at \(base)"])
    }

    func get(_ path: String) async throws -> Data {
        Data(try await runProgram("/usr/bin/curl", ["-sf"] + route + [origin + path]).stdout.utf8)
    }

    func post(_ path: String, _ body: Data) async throws -> Data {
        let ran = try await runProgram(
            "/usr/bin/curl", ["-s", "-X", "POST"] + route + [origin + path, "-H", "Content-Type: application/json", "--data-binary", "@-"],
            stdin: String(decoding: body, as: UTF8.self))
        return Data(ran.stdout.utf8)
    }

    /// SIGKILL: a test process's children inherit a blocked SIGTERM.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}
