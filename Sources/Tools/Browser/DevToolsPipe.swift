import Foundation
import SystemPackage

/// The Chrome DevTools protocol over `--remote-debugging-pipe`: Chromium reads commands on its
/// fd 3 and writes replies and events on its fd 4, each message JSON followed by a NUL byte. No
/// WebSocket, no Node. Sessions are flattened: page commands carry a top-level `sessionId`.
final class DevToolsPipe: @unchecked Sendable {
    /// What went wrong on the pipe.
    enum Failure: Error, CustomStringConvertible {
        case closed
        case timeout(String, Duration)
        case protocolError(String, String)

        var description: String {
            switch self {
            case .closed: "the browser closed the DevTools pipe (it exited or crashed)"
            case .timeout(let what, let after): "the browser did not answer \(what) within \(after)"
            case .protocolError(let method, let message): "\(method) failed: \(message)"
            }
        }
    }

    private struct Waiter {
        let session: String
        let match: @Sendable (String, JSONValue) -> Bool
        let continuation: CheckedContinuation<JSONValue, any Error>
    }

    private let writeFD: Int32
    private let readFD: Int32
    private let lock = NSLock()
    private var nextID = 1
    private var pending: [Int: (method: String, continuation: CheckedContinuation<JSONValue, any Error>)] = [:]
    /// Events seen per session ("" for the browser), so a waiter registered late still finds them;
    /// at most `keptEvents` of them and `keptEventBytes` bytes per session, oldest dropped first.
    private var events: [String: [(method: String, params: JSONValue, bytes: Int)]] = [:]
    private var eventBytes: [String: Int] = [:]

    /// A page decides what the browser sends (a flood of requests with megabyte URLs, say), and
    /// all of it lands in this host process, outside every cgroup: so everything is bounded.
    struct Limits {
        /// A larger message (a full-page shot at the size caps is far below) is dropped unread.
        var messageBytes = 192 << 20
        /// Events kept per session, in count and in bytes; the oldest go first.
        var events = 5000
        var eventBytes = 16 << 20
    }

    private let limits: Limits
    private var waiters: [UUID: Waiter] = [:]
    private var isClosed = false
    /// Called on the reader thread for every event (to answer dialogs at once, say).
    private let onEvent: @Sendable (_ method: String, _ params: JSONValue, _ session: String) -> Void

    /// Takes ownership of both descriptors.
    init(write: Int32, read: Int32, limits: Limits = Limits(), onEvent: @escaping @Sendable (String, JSONValue, String) -> Void) {
        self.limits = limits
        // A write to a browser that just died must fail with EPIPE, not kill toolhost.
        signal(SIGPIPE, SIG_IGN)
        writeFD = write
        readFD = read
        self.onEvent = onEvent
        let thread = Thread { [self] in readLoop() }
        thread.name = "devtools-pipe"
        thread.start()
    }

    var closed: Bool { lock.withLock { isClosed } }

    /// Sends a command and waits for its result.
    func send(_ method: String, _ params: JSONValue = [:], session: String? = nil, timeout: Duration = .seconds(10)) async throws -> JSONValue {
        var message: [String: JSONValue] = ["method": .string(method), "params": params]
        if let session { message["sessionId"] = .string(session) }
        let id: Int = lock.withLock {
            defer { nextID += 1 }
            return nextID
        }
        message["id"] = .int(id)
        let bytes = Array(JSONValue.object(message).jsonText.utf8) + [0]
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.finish(id, with: .failure(Failure.timeout(method, timeout)))
        }
        defer { timer.cancel() }
        // A cancelled call (the MCP client gave up) stops waiting at once.
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let open: Bool = lock.withLock {
                    guard !isClosed else { return false }
                    pending[id] = (method, continuation)
                    return true
                }
                guard open else { return continuation.resume(throwing: Failure.closed) }
                if (try? FileDescriptor(rawValue: writeFD).writeAll(bytes)) == nil { finish(id, with: .failure(Failure.closed)) }
                if Task.isCancelled { finish(id, with: .failure(CancellationError())) }
            }
        } onCancel: {
            finish(id, with: .failure(CancellationError()))
        }
    }

    /// The first event of `session` that `match` accepts, including ones that came before the call.
    func waitForEvent(session: String, timeout: Duration, where match: @escaping @Sendable (String, JSONValue) -> Bool) async throws -> JSONValue {
        let key = UUID()
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.finishWaiter(key, with: .failure(Failure.timeout("the awaited event", timeout)))
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let ready: Result<JSONValue, any Error>? = lock.withLock {
                    if let seen = events[session, default: []].first(where: { match($0.method, $0.params) }) { return .success(seen.params) }
                    if isClosed { return .failure(Failure.closed) }
                    waiters[key] = Waiter(session: session, match: match, continuation: continuation)
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
                if Task.isCancelled { finishWaiter(key, with: .failure(CancellationError())) }
            }
        } onCancel: {
            finishWaiter(key, with: .failure(CancellationError()))
        }
    }

    /// The events seen so far for a session.
    func events(of session: String) -> [(method: String, params: JSONValue)] {
        lock.withLock { (events[session] ?? []).map { ($0.method, $0.params) } }
    }

    /// Drops what was kept for a session that has ended.
    func forget(session: String) {
        lock.withLock {
            events.removeValue(forKey: session)
            eventBytes.removeValue(forKey: session)
        }
    }

    /// Fails what is waiting and closes our write end; the reader closes its end when the
    /// browser's side reaches EOF (closing it under a blocked read could hand the number to another file).
    func close() {
        failAll()
        Glibc.close(writeFD)
    }

    private func finish(_ id: Int, with result: Result<JSONValue, any Error>) {
        let waiting = lock.withLock { pending.removeValue(forKey: id) }
        waiting?.continuation.resume(with: result)
    }

    private func finishWaiter(_ key: UUID, with result: Result<JSONValue, any Error>) {
        let waiter = lock.withLock { waiters.removeValue(forKey: key) }
        waiter?.continuation.resume(with: result)
    }

    /// Splits the stream at NUL bytes. Linear: each byte is scanned once, and consumed messages are
    /// dropped from the front only once they are half the buffer. An oversized message is skipped.
    private func readLoop() {
        var buffer: [UInt8] = []
        var start = 0  // where the message being assembled begins
        var skipping = false  // inside a message over the size cap: drop it up to its NUL
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            var scanFrom = buffer.count
            buffer.append(contentsOf: chunk[0..<count])
            while let end = buffer[scanFrom...].firstIndex(of: 0) {
                if !skipping, let message = try? JSONValue.parse(String(decoding: buffer[start..<end], as: UTF8.self)) {
                    dispatch(message, bytes: end - start)
                }
                skipping = false
                start = end + 1
                scanFrom = start
            }
            if buffer.count - start > limits.messageBytes {
                skipping = true
                buffer.removeAll(keepingCapacity: false)
                start = 0
            } else if start > 0 && start * 2 >= buffer.count {
                buffer.removeSubrange(0..<start)
                start = 0
            }
        }
        Glibc.close(readFD)
        failAll()
    }

    private func dispatch(_ message: JSONValue, bytes: Int) {
        if let id = message["id"]?.intValue {
            let method = lock.withLock { pending[id]?.method } ?? "?"
            if let error = message["error"] {
                finish(id, with: .failure(Failure.protocolError(method, error["message"]?.stringValue ?? error.jsonText)))
            } else {
                finish(id, with: .success(message["result"] ?? [:]))
            }
            return
        }
        guard let method = message["method"]?.stringValue else { return }
        let params = message["params"] ?? [:]
        let session = message["sessionId"]?.stringValue ?? ""
        onEvent(method, params, session)
        let matched: [Waiter] = lock.withLock {
            events[session, default: []].append((method, params, bytes))
            eventBytes[session, default: 0] += bytes
            var dropped = 0
            while let kept = events[session], dropped < kept.count - 1,
                kept.count - dropped > limits.events || eventBytes[session]! > limits.eventBytes
            {
                eventBytes[session]! -= kept[dropped].bytes
                dropped += 1
            }
            if dropped > 0 { events[session]!.removeFirst(dropped) }
            let ready = waiters.filter { $0.value.session == session && $0.value.match(method, params) }
            for key in ready.keys { waiters.removeValue(forKey: key) }
            return Array(ready.values)
        }
        for waiter in matched { waiter.continuation.resume(returning: params) }
    }

    /// Fails everything still waiting: the pipe is gone.
    private func failAll() {
        let (calls, waiting): ([CheckedContinuation<JSONValue, any Error>], [Waiter]) = lock.withLock {
            if isClosed { return ([], []) }
            isClosed = true
            defer { pending = [:]; waiters = [:] }
            return (pending.values.map(\.continuation), Array(waiters.values))
        }
        for call in calls { call.resume(throwing: Failure.closed) }
        for waiter in waiting { waiter.continuation.resume(throwing: Failure.closed) }
    }
}
