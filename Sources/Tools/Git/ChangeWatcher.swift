import Foundation

/// Tells what git_status looks at may have changed since the last look, through inotify (git's
/// fsmonitor idea): an unchanged tree then costs no scan, and a few changed files cost a status
/// of those files alone. It watches every folder of the working tree that git does not ignore,
/// and .git's HEAD, index and refs. Events from the sandbox arrive too: inotify follows inodes,
/// whatever mount they were written through.
final class ChangeWatcher {
    /// What changed since the last `settle()`.
    enum Changes: Equatable {
        case nothing
        /// Files (paths from the root) were created, written, removed or renamed, and nothing else.
        case files(Set<String>)
        /// A folder, a .gitignore, HEAD, the index or a ref changed, or events were lost: only a
        /// whole status tells.
        case everything
    }

    private let fd: Int32
    private var folders: [Int32: String] = [:]  // watch descriptor -> absolute folder
    private let root: String
    private let isIgnored: (String) -> Bool
    private var everything = true
    private var files: Set<String> = []
    /// Set when watching failed (too many folders, watch limit): every call then scans.
    private(set) var broken = false

    static let folderLimit = 4096
    /// More changed files than this are rescanned whole: a status of the paths would cost more.
    static let fileLimit = 200
    static let mask = UInt32(
        IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF
            | IN_MOVE_SELF)

    /// - Parameter isIgnored: whether a folder (relative to the root) is ignored by git.
    init?(root: String, isIgnored: @escaping (String) -> Bool) {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        self.root = root
        self.isIgnored = isIgnored
        watchTree(root)
        for folder in [".git", ".git/refs"] { watchTree(root + "/" + folder) }
    }

    deinit { close(fd) }

    /// What changed since the last `settle()`; new folders get watched on the way.
    func changes() -> Changes {
        drain(ignoringIndexWrites: false)
        if everything || broken { return .everything }
        return files.isEmpty ? .nothing : .files(files)
    }

    /// Marks the tree as seen. Writes of .git/index that happened meanwhile are status's own
    /// refresh and do not count; anything else still does.
    func settle() {
        everything = false
        files = []
        drain(ignoringIndexWrites: true)
    }

    private func drain(ignoringIndexWrites: Bool) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { return }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= count {
                let event = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: inotify_event.self) }
                let nameStart = offset + MemoryLayout<inotify_event>.size
                let bytes = buffer[nameStart..<(nameStart + Int(event.len))].prefix { $0 != 0 }
                offset = nameStart + Int(event.len)
                // A name that is not UTF-8 has no exact path to give status: it takes a whole one.
                let name = String(decoding: bytes, as: UTF8.self)
                handle(event, name: name, exact: name.utf8.elementsEqual(bytes), ignoringIndexWrites: ignoringIndexWrites)
            }
        }
    }

    /// - Parameter exact: false when the name was not UTF-8 and `name` holds replacement characters.
    private func handle(_ event: inotify_event, name: String, exact: Bool, ignoringIndexWrites: Bool) {
        if event.mask & UInt32(IN_Q_OVERFLOW) != 0 {
            broken = true  // events were lost: trust nothing from now on
            return
        }
        guard let folder = folders[event.wd] else { return }
        if event.mask & UInt32(IN_IGNORED) != 0 {
            folders[event.wd] = nil
            return
        }
        let isGitFolder = folder == root + "/.git"
        if ignoringIndexWrites && isGitFolder && (name == "index" || name == "index.lock") { return }
        if isGitFolder && !["HEAD", "index", "index.lock", "packed-refs", "HEAD.lock", "packed-refs.lock"].contains(name) { return }
        let relative = folder == root ? name : String(folder.dropFirst(root.count + 1)) + "/" + name
        if !exact || event.mask & UInt32(IN_ISDIR) != 0 || name.isEmpty || name == ".gitignore" || relative == ".git" || relative.hasPrefix(".git/") {
            everything = true
        } else {
            files.insert(relative)
            if files.count > Self.fileLimit { everything = true }
        }
        if event.mask & UInt32(IN_ISDIR) != 0 && event.mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 && !name.isEmpty {
            watchTree(folder + "/" + name)
        }
    }

    /// Watches `folder` and every folder below it that git does not ignore (never .git's objects).
    private func watchTree(_ folder: String) {
        guard !broken else { return }
        var pending = [folder]
        while let current = pending.popLast() {
            let relative = current == root ? "" : String(current.dropFirst(root.count + 1))
            let insideGit = relative == ".git" || relative.hasPrefix(".git/")
            if !insideGit && !relative.isEmpty && isIgnored(relative + "/") { continue }
            let wd = inotify_add_watch(fd, current, Self.mask)
            guard wd >= 0 else {
                if errno == ENOENT || errno == ENOTDIR { continue }
                broken = true  // the watch limit, most likely
                return
            }
            folders[wd] = current
            guard folders.count <= Self.folderLimit else {
                broken = true
                return
            }
            // .git's own folders are chosen by name above; the rest of the tree is walked.
            if insideGit && relative != ".git/refs" && !relative.hasPrefix(".git/refs/") { continue }
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: current)) ?? []
            for entry in entries where !(relative.isEmpty && entry == ".git") {
                var isFolder: ObjCBool = false
                let path = current + "/" + entry
                if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue,
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) == nil
                {
                    pending.append(path)
                }
            }
        }
    }
}
