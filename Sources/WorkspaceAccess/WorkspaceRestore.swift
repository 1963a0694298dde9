public import Foundation

/// Puts files back as a checkpoint had them, on descriptors only like every host-side write:
/// folders are walked with O_NOFOLLOW from the root's descriptor, whatever stands in the way of
/// a file (a symlink, a file where a folder was, a folder where a file was) is removed, never
/// followed, and each file is written to a temporary name and renamed into place.
extension Workspace {
    /// Writes `data` as `relative` with the executable bit as given, making (or clearing the way
    /// for) its folders.
    public func restore(_ data: Data, executable: Bool, to relative: String) throws {
        var components = relative.split(separator: "/").map(String.init)
        guard let name = components.popLast() else { return }
        let folder = try openFolder(components, creating: true, clearingTheWay: true)
        defer { close(folder) }
        var info = stat()
        if fstatat(folder, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
            Self.removeTree(folder, name)
        }
        try Self.replace(name, in: folder, with: data, mode: executable ? 0o755 : 0o644, saying: relative, folderShown: components.isEmpty ? "." : components.joined(separator: "/"))
    }

    /// Removes the file `relative` (a symlink itself, never what it points to), then the folders
    /// above it that are left empty, up to (not including) the first of `keepFolders`.
    public func remove(_ relative: String, keepFolders: Set<String>) {
        var components = relative.split(separator: "/").map(String.init)
        guard let name = components.popLast(), let folder = try? folder(components) else { return }
        unlinkat(folder, name, 0)
        close(folder)
        while let last = components.popLast() {
            let path = (components + [last]).joined(separator: "/")
            guard !keepFolders.contains(path), let parent = try? self.folder(components) else { return }
            let removed = unlinkat(parent, last, AT_REMOVEDIR) == 0
            close(parent)
            if !removed { return }
        }
    }

    /// The folder at `components` as an O_PATH descriptor, nothing followed.
    private func folder(_ components: [String]) throws -> Int32 {
        try open(components.joined(separator: "/"), Beneath.pathOnly | O_DIRECTORY)
    }

    /// Removes the folder `name` in `parent` and everything in it, each step on descriptors with
    /// nothing followed (a symlink inside is removed as a link).
    static func removeTree(_ parent: Int32, _ name: String) {
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return }
        if let listing = fdopendir(fd) {
            var names: [(String, Bool)] = []
            while let entry = readdir(listing) {
                let entryName = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if entryName != "." && entryName != ".." { names.append((entryName, entry.pointee.d_type == UInt8(DT_DIR))) }
            }
            for (entryName, isFolder) in names {
                // A file system that gives no type says EISDIR to unlinking a folder.
                if isFolder || (unlinkat(fd, entryName, 0) != 0 && errno == EISDIR) { removeTree(fd, entryName) }
            }
            closedir(listing)
        } else {
            close(fd)
        }
        unlinkat(parent, name, AT_REMOVEDIR)
    }
}
