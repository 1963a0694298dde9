import Foundation

/// Whether anything in a set of folders changed since the last look, through inotify: with
/// it a checkpoint of an unchanged tree costs one read instead of a walk. Folders are added by
/// descriptor (the walk's own, through the /proc/self/fd magic link, which names the open
/// folder itself: no IN_DONT_FOLLOW, or the watch would be on the link), so a name swapped
/// meanwhile cannot point a watch anywhere else. Events from the sandbox arrive too: inotify follows inodes,
/// whatever mount they were written through. Lost events, or more folders than the limit,
/// make it say "changed" from then on.
final class FolderWatch: @unchecked Sendable {
    // Used only from its owner's isolation (the session actor's checkpoint store).
    private let fd: Int32
    private var watched = 0
    private var changed = true
    private var broken = false

    static let folderLimit = 16_384
    static let mask = UInt32(
        IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF
            | IN_ONLYDIR)

    init?() {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
    }

    deinit { close(fd) }

    /// Watches the folder open at `folder` (a folder already watched costs nothing more).
    func add(folder: Int32) {
        guard !broken else { return }
        guard watched < Self.folderLimit, inotify_add_watch(fd, "/proc/self/fd/\(folder)", Self.mask) >= 0 else {
            broken = true
            return
        }
        watched += 1
    }

    /// True when anything changed since the last call (or watching broke); the next call then
    /// answers for what happens from now on.
    func takeChanged() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            changed = true
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= count {
                let event = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: inotify_event.self) }
                if event.mask & UInt32(IN_Q_OVERFLOW) != 0 { broken = true }
                offset += MemoryLayout<inotify_event>.size + Int(event.len)
            }
        }
        defer { changed = false }
        return changed || broken
    }
}
