import Foundation

/// The workspace as it was before each call that can change it, in a store of the session's own
/// under the state dir (which no sandbox mounts): file contents by their git blob id, each kept
/// once, and per checkpoint the list of files with their ids. What it covers is what the search
/// tools see: regular files, not `.git` and not what `.gitignore` ignores (node_modules, dist),
/// read through the confined opener. Files over `fileLimit` bytes, or past the store's `limit`,
/// are listed as not kept.
struct CheckpointStore: Sendable {
    struct Entry: Sendable, Equatable {
        let blob: String
        let executable: Bool
        /// What says the file is unchanged without reading it again.
        let size: Int64, modified: Int, changed: Int, inode: UInt64

        init(blob: String, _ info: stat) {
            self.blob = blob
            executable = info.st_mode & 0o100 != 0
            size = Int64(info.st_size)
            modified = info.st_mtim.tv_sec * 1_000_000_000 + info.st_mtim.tv_nsec
            changed = info.st_ctim.tv_sec * 1_000_000_000 + info.st_ctim.tv_nsec
            inode = UInt64(info.st_ino)
        }

        /// Whether `info` is this file unchanged: same inode, size, mode and times (a write
        /// always moves the change time, which no command can set back).
        func describes(_ info: stat) -> Bool {
            Entry(blob: blob, info) == self
        }

        func sameContent(as other: Entry?) -> Bool { other.map { $0.blob == blob && $0.executable == executable } ?? false }
    }

    struct Checkpoint: Sendable {
        let call: Int
        let tool: String
        /// The files before the call.
        let files: [String: Entry]
        /// Files that were there but not kept (too large, or the store was full).
        let notKept: [String]
        /// Whether the last build before this call passed (nil: no build yet).
        let buildPassed: Bool?
        /// The walk `files` came from: the same after the call means nothing changed.
        let walk: Int
        /// What the call itself added, changed and removed (nil while it runs). Only these
        /// paths are ever put back by an undo: what another session did in between is not.
        var changes: Changes?
    }

    struct Changes: Sendable, Equatable {
        var added: [String] = [], changed: [String] = [], removed: [String] = []
        var all: [String] { added + changed + removed }
        var isEmpty: Bool { all.isEmpty }
    }

    static let fileLimit = 16 << 20
    static let limit: Int64 = 512 << 20
    /// Checkpoints kept; older ones go first (their contents stay in the store).
    static let kept = 500

    let objects: String
    private(set) var checkpoints: [Checkpoint] = []
    private var stored: Int64 = 0
    /// The last snapshot: what tells an unchanged file without reading it.
    private var latest: [String: Entry] = [:]
    private var latestNotKept = Set<String>()
    /// The last snapshot by folder (every folder it entered): what a folder's new listing replaces.
    private var listings: [String: Listing] = [:]
    /// The walked folders: which of them changed since the last snapshot.
    private let watch = FolderWatch()
    /// Walks so far: a snapshot that found the tree unchanged has the last one's number.
    private var walks = 0

    /// A store in `folder`, emptied first: what a previous process kept has no list left.
    init(folder: String) {
        try? FileManager.default.removeItem(atPath: folder)
        objects = folder + "/objects"
    }

    /// Records the workspace before call `call` of `tool`.
    mutating func begin(call: Int, tool: String, workspace: Workspace, buildPassed: Bool?) {
        let (files, notKept) = snapshot(of: workspace)
        checkpoints.append(Checkpoint(call: call, tool: tool, files: files, notKept: notKept, buildPassed: buildPassed, walk: walks))
        if checkpoints.count > Self.kept { checkpoints.removeFirst(checkpoints.count - Self.kept) }
    }

    /// Takes the first snapshot ahead, for a session prepared before its first call: that call
    /// then reads only what the watch saw change since, as any later call does.
    mutating func prime(_ workspace: Workspace) {
        _ = snapshot(of: workspace)
    }

    /// Records what call `call` changed.
    mutating func end(call: Int, workspace: Workspace) {
        guard let index = checkpoints.lastIndex(where: { $0.call == call }) else { return }
        let after = snapshot(of: workspace).files
        guard walks != checkpoints[index].walk else {
            checkpoints[index].changes = Changes()
            return
        }
        let (added, changed, removed) = Self.changes(from: checkpoints[index].files, to: after)
        checkpoints[index].changes = Changes(added: added, changed: changed, removed: removed)
    }

    /// The files and folders directly in one folder.
    private struct Listing {
        var files: [String] = [], folders: [String] = []
    }

    /// The workspace's files now, reading only those that changed since the last snapshot, and
    /// listing again only the folders the watch says changed.
    mutating func snapshot(of workspace: Workspace) -> (files: [String: Entry], notKept: [String]) {
        // Taken before the walk: what changes during it counts for the next snapshot.
        let changes = watch?.take() ?? .everything
        switch changes {
        case .nothing: return (latest, latestNotKept.sorted())
        case .everything:
            let previous = latest
            latest = [:]
            latestNotKept = []
            listings = [:]
            list("", in: workspace, comparingWith: previous)
        case .folders(let folders):
            // Parents first: a folder a parent's listing found gone is gone with its files.
            for folder in folders.sorted() where listings[folder] != nil {
                list(folder, in: workspace, comparingWith: latest)
            }
        }
        walks += 1
        return (latest, latestNotKept.sorted())
    }

    /// Lists `folder` again: its files replace the ones the last snapshot had there, a folder
    /// in it that is new is walked whole, and one that is gone goes with everything in it.
    private mutating func list(_ folder: String, in workspace: Workspace, comparingWith previous: [String: Entry]) {
        let before = listings[folder] ?? Listing()
        for path in before.files { forget(file: path) }
        listings[folder] = Listing()
        var kept: [String] = []
        workspace.searchableEntries(
            under: folder, includeIgnored: false,
            folders: { path, fd in
                watch?.add(folder: fd, path: path)
                listings[path] = Listing()
                if path != folder { listings[Self.parent(of: path), default: Listing()].folders.append(path) }
            },
            entering: { path in
                // A folder the last snapshot had, and still here, has its own watch.
                guard Self.parent(of: path) == folder, before.folders.contains(path) else { return true }
                kept.append(path)
                return false
            }
        ) { entry in
            switch read(entry, comparingWith: previous) {
            case .skipped: return true
            case .notKept: latestNotKept.insert(entry.path)
            case .kept(let file): latest[entry.path] = file
            }
            listings[Self.parent(of: entry.path), default: Listing()].files.append(entry.path)
            return true
        }
        listings[folder, default: Listing()].folders += kept
        for gone in before.folders where !kept.contains(gone) { forget(folder: gone) }
    }

    private mutating func forget(file path: String) {
        latest[path] = nil
        latestNotKept.remove(path)
    }

    private mutating func forget(folder: String) {
        guard let listing = listings.removeValue(forKey: folder) else { return }
        for path in listing.files { forget(file: path) }
        for path in listing.folders { forget(folder: path) }
    }

    private enum Found {
        case kept(Entry)
        /// A regular file, too large or past the store's limit.
        case notKept
        /// Not a regular file (anymore).
        case skipped
    }

    /// A file a walk found: the last snapshot's entry when the file is unchanged, else the file
    /// read as it is now and kept.
    private mutating func read(_ entry: Workspace.WalkEntry, comparingWith previous: [String: Entry]) -> Found {
        // Looked at in the walk's own folder, by name: nothing on the way is resolved again.
        var info = stat()
        guard fstatat(entry.folder, entry.name, &info, AT_SYMLINK_NOFOLLOW) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return .skipped }
        if let old = previous[entry.path], old.describes(info) { return .kept(old) }
        let fd = openat(entry.folder, entry.name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return .skipped }
        defer { close(fd) }
        // What is kept is the file read, as it is now, whatever was swapped in since the look.
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return .skipped }
        guard Int(info.st_size) <= Self.fileLimit, stored + Int64(info.st_size) <= Self.limit,
            let data = try? FileHandle(fileDescriptor: fd, closeOnDealloc: false).readToEnd() ?? Data()
        else { return .notKept }
        let blob = GitHash.blobID(data)
        return keep(data, as: blob) ? .kept(Entry(blob: blob, info)) : .notKept
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "" }
        return String(path[..<slash])
    }

    /// The contents of a blob the store holds.
    func contents(of blob: String) -> Data? {
        FileManager.default.contents(atPath: path(of: blob))
    }

    private func path(of blob: String) -> String { "\(objects)/\(blob.prefix(2))/\(blob.dropFirst(2))" }

    private mutating func keep(_ data: Data, as blob: String) -> Bool {
        let file = path(of: blob)
        if FileManager.default.fileExists(atPath: file) { return true }
        do {
            try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try data.write(to: URL(fileURLWithPath: file), options: .atomic)
            stored += Int64(data.count)
            return true
        } catch {
            return false
        }
    }

    /// What undoing calls from `call` on puts back: each path those calls changed, with what it
    /// was before `call` (nil: it did not exist, so it goes).
    func undoing(from call: Int) -> (target: Checkpoint, paths: [String: Entry?])? {
        guard let start = checkpoints.firstIndex(where: { $0.call == call }) else { return nil }
        let target = checkpoints[start]
        var paths: [String: Entry?] = [:]
        for checkpoint in checkpoints[start...] {
            for path in checkpoint.changes?.all ?? [] { paths[path] = .some(target.files[path]) }
        }
        return (target, paths)
    }

    /// What differs between two lists of files: added, changed and removed paths, each sorted.
    static func changes(from old: [String: Entry], to new: [String: Entry]) -> (added: [String], changed: [String], removed: [String]) {
        (
            new.keys.filter { old[$0] == nil }.sorted(),
            new.keys.filter { old[$0] != nil && !new[$0]!.sameContent(as: old[$0]) }.sorted(),
            old.keys.filter { new[$0] == nil }.sorted()
        )
    }
}
