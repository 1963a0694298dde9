import Foundation
import Sandbox

/// Puts files back as a checkpoint had them, on descriptors only like every host-side write:
/// folders are walked with O_NOFOLLOW from the root's descriptor, whatever stands in the way of
/// a file (a symlink, a file where a folder was, a folder where a file was) is removed, never
/// followed, and each file is written to a temporary name and renamed into place.
extension Workspace {
    /// Writes `data` as `relative` with the executable bit as given, making (or clearing the way
    /// for) its folders.
    func restore(_ data: Data, executable: Bool, to relative: String) throws {
        var components = relative.split(separator: "/").map(String.init)
        guard let name = components.popLast() else { return }
        let folder = try folderClearingTheWay(components)
        defer { close(folder) }
        var info = stat()
        if fstatat(folder, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
            Self.removeTree(folder, name)
        }
        let mode: mode_t = executable ? 0o755 : 0o644
        let temp = ".\(name.prefix(200)).toolhost-\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = openat(folder, temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw ToolError("cannot restore \(relative): \(String(cString: strerror(errno)))") }
        let failure = data.withUnsafeBytes { Descriptor.writeAll(fd, $0) }
        fchmod(fd, mode)
        close(fd)
        guard failure == 0, renameat(folder, temp, folder, name) == 0 else {
            let code = failure != 0 ? failure : errno
            unlinkat(folder, temp, 0)
            throw ToolError("restoring \(relative) failed: \(String(cString: strerror(code)))")
        }
    }

    /// Removes the file `relative` (a symlink itself, never what it points to), then the folders
    /// above it that are left empty, up to (not including) the first of `keepFolders`.
    func remove(_ relative: String, keepFolders: Set<String>) {
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

    /// The folder at `components`, made where missing, with any non-folder in its place removed.
    private func folderClearingTheWay(_ components: [String]) throws -> Int32 {
        var current = try open("", Beneath.pathOnly | O_DIRECTORY)
        for component in components {
            var info = stat()
            if fstatat(current, component, &info, AT_SYMLINK_NOFOLLOW) == 0 && (info.st_mode & S_IFMT) != S_IFDIR {
                unlinkat(current, component, 0)
            }
            if mkdirat(current, component, 0o755) != 0 && errno != EEXIST {
                let code = errno
                close(current)
                throw ToolError("cannot make the folder \(component) to restore into: \(String(cString: strerror(code)))")
            }
            let next = openat(current, component, Beneath.pathOnly | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let code = errno
            close(current)
            guard next >= 0 else {
                throw ToolError("cannot open the folder \(component) to restore into: \(String(cString: strerror(code))) (it changed during the call)")
            }
            current = next
        }
        return current
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
