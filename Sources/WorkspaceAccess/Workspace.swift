public import Foundation

/// The one folder the tools may touch. A path is first resolved to a symlink-free name, component
/// by component relative to a descriptor of the root, so nothing (`..`, an absolute path, a symlink
/// at any depth, even the parent of a file that does not exist yet) names anything outside. Then
/// every open goes through `Beneath` on that descriptor, which refuses any symlink, so a folder
/// swapped for a symlink between the two steps makes the call fail, never leave the root
/// (see WorkspaceFiles.swift).
public struct Workspace: Sendable {
    /// The root as a real path (symlinks resolved), without a trailing slash: for messages and for
    /// the sandbox's mounts, never for host-side opens.
    public let root: String
    /// A descriptor of the root, taken once: every host-side access resolves beneath it.
    let directory: RootDirectory
    /// Folders commands also see at other absolute paths (`--mount`): an absolute path (or a
    /// symlink's target) under a mount's target means the same file here as in a command.
    public let mounts: [FolderMount]

    public init(_ path: String, mounts: [FolderMount] = []) throws {
        self.mounts = mounts.sorted { $0.target.count > $1.target.count }
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        guard let real = realpath(absolute, nil) else {
            throw ToolError("workspace \(path) does not exist: create it or pass another --workspace", kind: .usage)
        }
        defer { free(real) }
        var info = stat()
        let resolved = String(cString: real)
        guard stat(resolved, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw ToolError("workspace \(path) is not a directory", kind: .usage)
        }
        root = resolved == "/" ? "" : resolved
        directory = try RootDirectory(resolved)
    }

    /// What a path names once resolved.
    public struct Resolved: Sendable, Equatable {
        /// The real absolute path.
        public let absolute: String
        /// The same path relative to the root ("" for the root itself).
        public let relative: String
        public let kind: Kind

        public enum Kind: Sendable, Equatable {
            case missing, file, directory
        }

        /// The relative path as shown to the model ("." for the root).
        public var display: String { relative.isEmpty ? "." : relative }
    }

    /// What the caller means to do; writes are refused inside `.git`.
    public enum Access: Sendable {
        case read, write
    }

    /// The root itself, resolved.
    public var resolvedRoot: Resolved { Resolved(absolute: root.isEmpty ? "/" : root, relative: "", kind: .directory) }

    /// The status of `relative` beneath the root, its last component not followed (a symlink is
    /// reported as one); nil when it cannot be looked at.
    public func status(of relative: String) -> stat? {
        var info = stat()
        return fstatat(directory.fd, relative, &info, AT_SYMLINK_NOFOLLOW) == 0 ? info : nil
    }

    /// Resolves `path` (relative to the root, or absolute inside it).
    public func resolve(_ path: String, for access: Access = .read) throws -> Resolved {
        guard !path.isEmpty else { throw ToolError("the path is empty: give a path relative to the workspace root", kind: .usage) }
        guard !path.contains("\0") else { throw ToolError("the path contains a NUL byte", kind: .usage) }

        var pending: [Substring]
        if path.hasPrefix("/") {
            guard let inside = relativeToRoot(path) else {
                throw outside(path, because: "it is an absolute path outside the workspace")
            }
            pending = inside.split(separator: "/").reversed()
        } else {
            pending = path.split(separator: "/").reversed()
        }

        var components: [String] = []  // the real path so far, relative to the root
        var hops = 0
        while let part = pending.popLast() {
            if part == "." { continue }
            if part == ".." {
                guard components.popLast() != nil else {
                    throw outside(path, because: "'..' climbs above the workspace root")
                }
                continue
            }
            let candidate = (components + [String(part)]).joined(separator: "/")
            var info = stat()
            guard fstatat(directory.fd, candidate, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                guard errno == ENOENT else {
                    throw ToolError("cannot look at \(display(components + [String(part)])): \(String(cString: strerror(errno)))")
                }
                // Nothing further exists, so no symlink can follow: the rest is plain names.
                guard !pending.contains("..") else {
                    throw ToolError("\(path) climbs with '..' out of \(display(components + [String(part)])), which does not exist", kind: .usage)
                }
                components.append(String(part))
                components += pending.reversed().filter { $0 != "." }.map(String.init)
                return try finish(components, kind: .missing, access: access, original: path)
            }
            switch info.st_mode & S_IFMT {
            case S_IFLNK:
                hops += 1
                guard hops <= 40 else { throw ToolError("too many levels of symlinks in \(path)") }
                let target = try readLink(candidate)
                if target.hasPrefix("/") {
                    guard let inside = relativeToRoot(target) else {
                        throw outside(path, because: "\(display(components + [String(part)])) is a symlink to \(target)")
                    }
                    components = []
                    pending += inside.split(separator: "/").reversed()
                } else {
                    pending += target.split(separator: "/").reversed()
                }
            case S_IFDIR:
                components.append(String(part))
            case S_IFREG:
                components.append(String(part))
                guard pending.allSatisfy({ $0 == "." }) else {
                    throw ToolError("\(display(components)) is a file, not a folder, so \(path) cannot exist", kind: .usage)
                }
                return try finish(components, kind: .file, access: access, original: path)
            default:
                throw ToolError(
                    "\(display(components + [String(part)])) is a device, fifo or socket; the file tools only open regular files",
                    kind: .usage)
            }
        }
        return try finish(components, kind: .directory, access: access, original: path)
    }

    private func finish(_ components: [String], kind: Resolved.Kind, access: Access, original: String) throws -> Resolved {
        if access == .write, components.contains(".git") {
            throw ToolError(
                "\(original) is inside .git, which the file tools may not change: use the git tools or execute git commands",
                kind: .usage)
        }
        return Resolved(absolute: absolute(components), relative: components.joined(separator: "/"), kind: kind)
    }

    /// The part of an absolute path below the root, or nil when it is not below the root.
    public func relativeToRoot(_ path: String) -> String? {
        if let inside = mounts.lazy.compactMap({ $0.workspacePath(of: path) }).first { return inside }
        if root.isEmpty { return path }
        if path == root { return "" }
        guard path.hasPrefix(root + "/") else { return nil }
        return String(path.dropFirst(root.count + 1))
    }

    private func absolute(_ components: [String]) -> String {
        components.isEmpty ? (root.isEmpty ? "/" : root) : root + "/" + components.joined(separator: "/")
    }

    private func display(_ components: [String]) -> String {
        components.isEmpty ? "." : components.joined(separator: "/")
    }

    private func outside(_ path: String, because reason: String) -> ToolError {
        ToolError(
            "\(path) is outside the workspace (\(reason)). Use a path inside \(root.isEmpty ? "/" : root), relative to it, e.g. \"src/index.ts\"",
            kind: .usage)
    }

    private func readLink(_ relative: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlinkat(directory.fd, relative, &buffer, buffer.count - 1)
        guard count >= 0 else { throw ToolError("cannot read the symlink \(relative): \(String(cString: strerror(errno)))") }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The workspace root's descriptor (Beneath.pathOnly), closed with the last workspace value that holds it.
final class RootDirectory: Sendable {
    let fd: Int32

    init(_ path: String) throws {
        fd = open(path, Beneath.pathOnly | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ToolError("cannot open the workspace \(path): \(String(cString: strerror(errno)))", kind: .usage) }
    }

    deinit { close(fd) }
}
