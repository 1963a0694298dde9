import Foundation

/// Which of a set of folders changed since the last look, through inotify: with it a checkpoint
/// of an unchanged tree costs one read instead of a walk, and one after a change lists only the
/// folders that changed. Folders are added by descriptor (the walk's own, through the
/// /proc/self/fd magic link, which names the open folder itself: no IN_DONT_FOLLOW, or the watch
/// would be on the link), so a name swapped meanwhile cannot point a watch anywhere else. Events
/// from the sandbox arrive too: inotify follows inodes, whatever mount they were written through.
final class FolderWatch: @unchecked Sendable {
    // Used only from its owner's isolation (the session actor's checkpoint store).
    private let fd: Int32
    /// Each watch's folder, as the walk that added it named it.
    private var folders: [Int32: String] = [:]
    private var dirty = Set<String>()
    /// Set until the first look, and by what a list of folders cannot say (see `take`).
    private var everything = true
    private var broken = false

    /// What changed since the last look.
    enum Changes: Equatable {
        case nothing
        /// Files, or folders' entries, changed directly in these folders, and nowhere else.
        case folders(Set<String>)
        /// Anything may have: walk the whole tree.
        case everything
    }

    static let folderLimit = 16_384
    static let mask = UInt32(
        IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF
            | IN_ONLYDIR)

    init?() {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
    }

    deinit { close(fd) }

    /// Watches the folder open at `folder`, whose path is `path` (a folder already watched costs
    /// nothing more, and takes the new path: inotify gives one inode one watch).
    func add(folder: Int32, path: String) {
        guard !broken else { return }
        let watch = folders.count < Self.folderLimit ? inotify_add_watch(fd, "/proc/self/fd/\(folder)", Self.mask) : -1
        guard watch >= 0 else {
            broken = true
            return
        }
        folders[watch] = path
    }

    /// What changed since the last call; the next call answers for what happens from now on.
    /// A folder moved (its watch's path is stale), a `.gitignore` touched (what is searched
    /// changes below it), an event of a folder not known, lost events, or more folders than
    /// the limit: everything, the last for good.
    func take() -> Changes {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= count {
                let event = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: inotify_event.self) }
                let nameStart = offset + MemoryLayout<inotify_event>.size
                offset = nameStart + Int(event.len)
                let name = buffer[nameStart..<min(offset, count)].prefix { $0 != 0 }
                note(event, name: String(decoding: name, as: UTF8.self))
            }
        }
        defer {
            dirty = []
            everything = false
        }
        if broken || everything { return .everything }
        return dirty.isEmpty ? .nothing : .folders(dirty)
    }

    private func note(_ event: inotify_event, name: String) {
        let mask = event.mask
        if mask & UInt32(IN_Q_OVERFLOW) != 0 { broken = true }
        if mask & UInt32(IN_IGNORED) != 0 {
            // The folder is gone (its parent heard it go) or unwatched.
            folders[event.wd] = nil
            return
        }
        guard let folder = folders[event.wd] else {
            everything = true
            return
        }
        let moved = mask & UInt32(IN_MOVE_SELF) != 0 || (mask & UInt32(IN_ISDIR) != 0 && mask & UInt32(IN_MOVED_FROM | IN_MOVED_TO) != 0)
        if moved || name == ".gitignore" { everything = true } else { dirty.insert(folder) }
    }
}
