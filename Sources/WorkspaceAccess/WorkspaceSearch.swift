import Foundation

/// What the search tools look at: regular files below a folder, never `.git`, and not what the
/// `.gitignore` files on the way ignore (unless asked). Folders are opened and files read through
/// the same confined opener as the file tools; symlinks are neither followed nor listed.
extension Workspace {
    /// How far a search goes, so that a huge tree costs a bounded time.
    public static let searchEntryLimit = 300_000

    /// Calls `visit` with each searchable file's path (relative to the root) in name order;
    /// `visit` returns false to stop.
    /// - Returns: false when the walk stopped before the end of the tree.
    @discardableResult
    public func searchableFiles(under folder: String, includeIgnored: Bool, _ visit: (String) -> Bool) -> Bool {
        searchableEntries(under: folder, includeIgnored: includeIgnored) { visit($0.path) }
    }

    /// The same files, each with its folder's descriptor (see `WalkEntry`); `folders` gets the
    /// path and descriptor of each folder the walk enters, the root included; a searchable
    /// folder is entered only when `entering` says so.
    @discardableResult
    public func searchableEntries(
        under folder: String, includeIgnored: Bool, folders: (String, Int32) -> Void = { _, _ in }, entering: (String) -> Bool = { _ in true },
        _ visit: (WalkEntry) -> Bool
    ) -> Bool {
        var rules = IgnoreRules()
        if !includeIgnored {
            // The .gitignore files above the folder apply too.
            var ancestor = ""
            for component in folder.split(separator: "/").map(String.init) {
                if let text = self.text(of: Self.join(ancestor, ".gitignore"), limit: 1 << 20) { rules.add(text, in: ancestor) }
                ancestor = Self.join(ancestor, component)
            }
        }
        return walk(
            under: folder, limit: Self.searchEntryLimit,
            enter: { path in
                guard !path.hasSuffix("/.git") && path != ".git" else { return false }
                return (includeIgnored || !rules.ignores(path, isFolder: true)) && entering(path)
            },
            listed: { path, fd, names in
                folders(path, fd)
                // Read only the .gitignore files the listing shows: looking for one in every folder costs more than the search.
                if !includeIgnored, names.contains(".gitignore"), let text = self.text(of: Self.join(path, ".gitignore"), limit: 1 << 20) {
                    rules.add(text, in: path)
                }
            },
            visit: { entry in includeIgnored || !rules.ignores(entry.path, isFolder: false) ? visit(entry) : true })
    }

    /// The bytes of the regular file at `path`, or nil for anything else, a file over `limit`
    /// bytes, or one that changed into something else meanwhile.
    public func searchableBytes(of path: String, limit: Int) -> [UInt8]? {
        guard let fd = try? open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY) else { return nil }
        return Self.regularBytes(fd, limit: limit)
    }

    /// The same for a file a walk found, opened from its folder's descriptor by its one-component
    /// name with O_NOFOLLOW: nothing is resolved on the way, so it costs one openat, not a walk
    /// from the root, and a symlink swapped in is refused as the confined opener refuses it.
    public func searchableBytes(of entry: WalkEntry, limit: Int) -> [UInt8]? {
        let fd = openat(entry.folder, entry.name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        return Self.regularBytes(fd, limit: limit)
    }

    /// Reads `fd` whole and closes it, when it is a regular file of at most `limit` bytes.
    private static func regularBytes(_ fd: Int32, limit: Int) -> [UInt8]? {
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) <= limit else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while filled < bytes.count {
            let got = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if got <= 0 { break }
            filled += got
        }
        if filled < bytes.count { bytes.removeLast(bytes.count - filled) }
        return bytes
    }

    /// A search's folder as the tools take it: "" or "." for the root.
    public func searchFolder(_ path: String?) throws -> Resolved? {
        guard let path, !path.isEmpty, path != "." else { return nil }
        return try resolve(path)
    }

    private static func join(_ folder: String, _ name: String) -> String { folder.isEmpty ? name : folder + "/" + name }
}
