import Foundation
import Synchronization

/// What the processes of one running tool call are printing, for progress reports: a front door
/// that wants progress binds one with `CallActivity.$current.withValue` around the call, and every
/// process the call runs records its output here. Only the last few hundred bytes are kept.
public final class CallActivity: Sendable {
    @TaskLocal public static var current: CallActivity?

    static let kept = 512
    private let recent = Mutex<[UInt8]>([])

    public init() {}

    func record(_ bytes: UnsafeRawBufferPointer) {
        recent.withLock { recent in
            recent.append(contentsOf: bytes.suffix(Self.kept))
            if recent.count > Self.kept { recent.removeFirst(recent.count - Self.kept) }
        }
    }

    /// The last non-blank line printed so far, cleaned of control characters and cut to 200
    /// characters; nil before anything was printed.
    public var latestLine: String? {
        let bytes = recent.withLock { $0 }
        let line = bytes.split(whereSeparator: { $0 == 0x0A || $0 == 0x0D })
            .map { String(decoding: $0, as: UTF8.self).filter { !$0.isASCII || $0 >= " " } }
            .last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        return line.map { String($0.trimmingCharacters(in: .whitespaces).prefix(200)) }
    }
}

/// Set when the task running a process is cancelled; the supervisor then kills the process group.
final class StopFlag: Sendable {
    private let raised = Atomic<Bool>(false)
    func raise() { raised.store(true, ordering: .relaxed) }
    var isRaised: Bool { raised.load(ordering: .relaxed) }
}
