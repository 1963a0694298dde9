import Foundation
import Sandbox
import WorkspaceAccess

/// Tells what git_status looks at may have changed since the last look, through inotify (git's
/// fsmonitor idea): an unchanged tree then costs no scan, and a few changed files cost a status
/// of those files alone. It watches every folder of the working tree that git does not ignore,
/// and .git's HEAD, index, refs and info (whose exclude file is the repository's own .gitignore).
/// Events from the sandbox arrive too: inotify follows inodes, whatever mount they were written
/// through. Each watch is added through the descriptor of the
/// folder a confined walk opened, so a folder swapped for a symlink meanwhile cannot point a
/// watch anywhere else: by its /proc/self/fd link, or on the session's confined thread (whose view
/// covers /proc) by making it the thread's own working directory and watching ".".
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
    private var folders: [Int32: String] = [:]  // watch descriptor -> folder from the root ("" for the root)
    private let tree: Workspace
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
        guard let tree = try? Workspace(root) else { return nil }
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        self.tree = tree
        self.isIgnored = isIgnored
        watchTree("")
        watchTree(".git")
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
        let isGitFolder = folder == ".git"
        if ignoringIndexWrites && isGitFolder && (name == "index" || name == "index.lock") { return }
        if isGitFolder && !["HEAD", "index", "index.lock", "packed-refs", "HEAD.lock", "packed-refs.lock", "info"].contains(name) { return }
        let relative = folder.isEmpty ? name : folder + "/" + name
        if !exact || event.mask & UInt32(IN_ISDIR) != 0 || name.isEmpty || name == ".gitignore" || relative == ".git" || relative.hasPrefix(".git/") {
            everything = true
        } else {
            files.insert(relative)
            if files.count > Self.fileLimit { everything = true }
        }
        if event.mask & UInt32(IN_ISDIR) != 0 && event.mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 && !name.isEmpty {
            watchTree(relative)
        }
    }

    /// Watches `folder` (from the root) and every folder below it that git does not ignore; of
    /// .git, only itself, info and refs.
    private func watchTree(_ folder: String) {
        let insideGit = folder == ".git" || folder.hasPrefix(".git/")
        guard !broken, folder.isEmpty || insideGit || !isIgnored(folder + "/") else { return }
        // Only a confined thread's working directory is its own (elsewhere it is the process's);
        // it is put back after.
        let confined = ConfinedThread.isCurrent
        let previous = confined ? open(".", Beneath.pathOnly | O_DIRECTORY | O_CLOEXEC) : -1
        defer {
            if previous >= 0 {
                fchdir(previous)
                close(previous)
            }
        }
        tree.forEachFolder(under: folder, enter: { path in
            if self.broken || path == ".git" { return false }  // a broken watch walks no further; the root's walk leaves .git to its own
            if path.hasPrefix(".git/") { return path == ".git/info" || path == ".git/refs" || path.hasPrefix(".git/refs/") }
            return !self.isIgnored(path + "/")
        }) { path, descriptor in
            guard !broken else { return }
            let wd = !confined
                ? inotify_add_watch(fd, "/proc/self/fd/\(descriptor)", Self.mask | UInt32(IN_ONLYDIR))
                : fchdir(descriptor) == 0 ? inotify_add_watch(fd, ".", Self.mask | UInt32(IN_ONLYDIR)) : -1
            guard wd >= 0 else {
                broken = true  // the watch limit, most likely
                return
            }
            folders[wd] = path
            if folders.count > Self.folderLimit { broken = true }
        }
    }
}
