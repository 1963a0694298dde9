public import Foundation
import SystemPackage

/// Every host-side read, write and listing of workspace contents: each opens through `Beneath` on
/// the root's descriptor, with the symlink-free name `resolve` found, and then works on descriptors
/// only. A symlink swapped in meanwhile fails the call instead of leading the host outside.
extension Workspace {
    /// Opens a resolved path beneath the root; the error names the path and, for a symlink that
    /// appeared, says the workspace changed under the call.
    func open(_ relative: String, _ flags: Int32, mode: mode_t = 0o644) throws -> Int32 {
        let fd = Beneath.open(directory.fd, relative, flags, mode: mode)
        guard fd < 0 else { return fd }
        let shown = relative.isEmpty ? "." : relative
        switch -fd {
        case ELOOP, EXDEV:
            throw ToolError("\(shown) changed while toolhost opened it (a symlink appeared on the way); nothing outside the workspace is opened. Try again.")
        case ENOENT: throw ToolError("\(shown) does not exist (it may have just been removed)")
        default: throw ToolError("cannot open \(shown): \(String(cString: strerror(-fd)))")
        }
    }

    /// A regular file opened for reading; anything else (a fifo, a device, a folder) is refused
    /// without blocking on it.
    public func openRegularFile(_ resolved: Resolved) throws -> FileHandle {
        let fd = try open(resolved.relative, O_RDONLY | O_NONBLOCK | O_NOCTTY)
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ToolError("\(resolved.display) is not a regular file; the file tools only open regular files", kind: .usage)
        }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    /// A whole file, refusing ones over `limit` bytes.
    public func readWhole(_ resolved: Resolved, limit: Int) throws -> Data {
        let handle = try openRegularFile(resolved)
        defer { try? handle.close() }
        var info = stat()
        fstat(handle.fileDescriptor, &info)
        guard Int(info.st_size) <= limit else {
            throw ToolError("\(resolved.display) is \(info.st_size) bytes, over the \(limit)-byte limit for this tool; change it with execute (sed, a script) instead")
        }
        return try handle.readToEnd() ?? Data()
    }

    /// The text of a workspace file named by a path relative to the root, or nil when it does not
    /// resolve inside, is no regular file, or is over `limit` bytes (build hints, package.json).
    public func text(of path: String, limit: Int = 4 << 20) -> String? {
        guard let resolved = try? resolve(path), resolved.kind == .file, let data = try? readWhole(resolved, limit: limit) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// Writes `data` to a temporary file in the same folder and renames it over the file, so a
    /// reader never sees half a file; missing parent folders are made. The temp file, the rename
    /// and every mkdir work on the parent folder's descriptor. An existing file keeps its mode.
    public func writeAtomically(_ data: some ContiguousBytes, to resolved: Resolved) throws {
        var components = resolved.relative.split(separator: "/").map(String.init)
        guard let name = components.popLast() else { throw ToolError("the workspace root is a folder, not a file", kind: .usage) }
        let folder = try openFolder(components, creating: true)
        defer { close(folder) }
        var mode: mode_t = 0o644
        var info = stat()
        if fstatat(folder, name, &info, AT_SYMLINK_NOFOLLOW) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFREG else {
                throw ToolError("\(resolved.display) is no longer a regular file (it changed during the call); nothing was written")
            }
            mode = info.st_mode & 0o777
        }
        try Self.replace(name, in: folder, with: data, mode: mode, saying: resolved.display, folderShown: display(components))
    }

    /// Writes `data` to a new file beside `name` in `folder`, then renames it over `name`: a
    /// reader sees the old file or the new one, never half of it.
    static func replace(_ name: String, in folder: Int32, with data: some ContiguousBytes, mode: mode_t, saying file: String, folderShown: String) throws {
        let temp = ".\(name.prefix(200)).toolhost-\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = openat(folder, temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw ToolError("cannot create a file in \(folderShown): \(String(cString: strerror(errno)))") }
        var failure: Int32 = 0
        do { try data.withUnsafeBytes { _ = try FileDescriptor(rawValue: fd).writeAll($0) } } catch let error as Errno { failure = error.rawValue } catch {}
        fchmod(fd, mode)
        close(fd)
        guard failure == 0, renameat(folder, temp, folder, name) == 0 else {
            let code = failure != 0 ? failure : errno
            unlinkat(folder, temp, 0)
            throw ToolError("writing \(file) failed: \(String(cString: strerror(code)))")
        }
    }

    /// The folder at `components` (symlink-free), made first when `creating`, as a descriptor.
    /// `clearingTheWay` (an undo putting a folder back) first removes a non-folder in its place.
    func openFolder(_ components: [String], creating: Bool, clearingTheWay: Bool = false) throws -> Int32 {
        var current = try open("", Beneath.pathOnly | O_DIRECTORY)
        for (index, component) in components.enumerated() {
            var info = stat()
            if clearingTheWay, fstatat(current, component, &info, AT_SYMLINK_NOFOLLOW) == 0, (info.st_mode & S_IFMT) != S_IFDIR {
                unlinkat(current, component, 0)
            }
            if creating && mkdirat(current, component, 0o755) != 0 && errno != EEXIST {
                let code = errno
                close(current)
                throw ToolError("cannot create the folder \(display(Array(components[...index]))): \(String(cString: strerror(code)))")
            }
            let next = openat(current, component, Beneath.pathOnly | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let code = errno
            close(current)
            guard next >= 0 else {
                throw ToolError("cannot open the folder \(display(Array(components[...index]))): \(String(cString: strerror(code))) (it may have changed during the call)")
            }
            current = next
        }
        return current
    }

    /// The names in a folder, sorted (nil when it cannot be opened).
    public func entries(of relative: String) -> [String]? {
        var names: [String] = []
        let complete = forEachEntry(inFolder: relative) { name, _ in
            names.append(name)
            return true
        }
        return complete == nil ? nil : names.sorted()
    }

    /// Calls `body` with each entry of a folder and its type (readdir's d_type: a symlink is
    /// DT_LNK, never what it points to); stops when `body` returns false. Returns nil when the
    /// folder cannot be opened.
    @discardableResult
    private func forEachEntry(inFolder relative: String, _ body: (String, UInt8) -> Bool) -> Bool? {
        guard let fd = try? open(relative, O_RDONLY | O_DIRECTORY) else { return nil }
        defer { close(fd) }
        return Self.forEachEntry(ofFolder: fd, body)
    }

    /// The same for a folder already open (its descriptor stays open).
    @discardableResult
    private static func forEachEntry(ofFolder fd: Int32, _ body: (String, UInt8) -> Bool) -> Bool? {
        let own = dup(fd)
        guard own >= 0 else { return nil }
        guard let stream = fdopendir(own) else {
            close(own)
            return nil
        }
        defer { closedir(stream) }
        rewinddir(stream)
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name == "." || name == ".." { continue }
            if !body(name, entry.pointee.d_type) { return false }
        }
        return true
    }

    /// Walks the tree below `relative` (never through a symlink), calling `visit` with each
    /// regular file's path relative to the root; folders named in `skipping` are not entered. Stops after
    /// `limit` entries.
    public func walkFiles(under relative: String = "", skipping: Set<String>, limit: Int = 20_000, _ visit: (String) -> Void) {
        walk(under: relative, limit: limit, enter: { !skipping.contains(($0 as NSString).lastPathComponent) }) { entry in
            visit(entry.path)
            return true
        }
    }

    /// Calls `folder` with the path and open descriptor of `relative` and of every folder below it
    /// that `enter` admits, each opened from its parent's descriptor and never through a symlink
    /// (the walk above): for what must act on the folder that was opened, not on a name
    /// (inotify's watches, added through the descriptor).
    public func forEachFolder(under relative: String = "", enter: (String) -> Bool, _ folder: (_ path: String, _ fd: Int32) -> Void) {
        walk(under: relative, limit: .max, enter: enter, listed: { path, fd, _ in folder(path, fd) }) { _ in true }
    }

    /// A file a walk found: its path from the root, and the descriptor of the folder it is in
    /// (open for the visit only) with its name there, for `fstatat`/`openat` that resolve nothing.
    public struct WalkEntry {
        public let path: String
        public let folder: Int32
        public let name: String
    }

    /// Walks the tree below `relative` depth first in name order, so that pages of results stay
    /// put between calls, and never through a symlink: each folder is opened from its parent's
    /// descriptor with O_NOFOLLOW. A folder is entered when `enter` says so; `visit` gets each
    /// file and returns false to stop; `listed` gets each folder (its path and open descriptor)
    /// and its entry names before any of them is visited.
    /// - Returns: false when the walk stopped early (at `visit`'s word, or after `limit` entries).
    @discardableResult
    func walk(
        under relative: String = "", limit: Int = 20_000, enter: (String) -> Bool, listed: (_ folder: String, _ fd: Int32, _ names: [String]) -> Void = { _, _, _ in },
        visit: (WalkEntry) -> Bool
    ) -> Bool {
        var seen = 0
        func descend(_ fd: Int32, _ folder: String, depth: Int) -> Bool {
            var entries: [(name: String, isFolder: Bool)] = []
            Self.forEachEntry(ofFolder: fd) { name, type in
                // Symlinks, sockets and devices are neither entered nor visited; a file system
                // that does not fill d_type is left to the confined open to check.
                if type == DT_DIR || type == DT_REG || type == DT_UNKNOWN { entries.append((name, type == DT_DIR)) }
                return true
            }
            entries.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
            listed(folder, fd, entries.map(\.name))
            for entry in entries {
                seen += 1
                guard seen <= limit else { return false }
                let path = folder.isEmpty ? entry.name : folder + "/" + entry.name
                if entry.isFolder {
                    guard depth < 128, enter(path) else { continue }
                    let child = openat(fd, entry.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    guard child >= 0 else { continue }
                    defer { close(child) }
                    if !descend(child, path, depth: depth + 1) { return false }
                } else if !visit(WalkEntry(path: path, folder: fd, name: entry.name)) {
                    return false
                }
            }
            return true
        }
        guard let root = try? open(relative, O_RDONLY | O_DIRECTORY) else { return true }
        defer { close(root) }
        return descend(root, relative, depth: 0)
    }

    private func display(_ components: [String]) -> String {
        components.isEmpty ? "." : components.joined(separator: "/")
    }
}

/// A string's UTF-8 bytes where they are, for `writeAtomically`: a 20 MB write_file would
/// otherwise copy its content into a Data first.
public struct UTF8Bytes: ContiguousBytes {
    public let text: String

    public init(text: String) { self.text = text }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var text = text
        return try text.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}
