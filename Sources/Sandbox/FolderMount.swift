import Foundation

/// A folder inside the workspace that commands also see at another absolute path, for harnesses
/// whose tasks name fixed paths (Harbor's `/app`, `/tests`, `/logs`): `--mount app:/app`.
///
/// The folder is opened beneath the workspace through no symlink each time a sandbox is set up,
/// because commands can swap it for a link to anywhere; it stays inside the workspace, so the
/// disk budget and the file tools cover it.
public struct FolderMount: Sendable, Equatable, CustomStringConvertible {
    /// The folder relative to the workspace root ("" for the root itself).
    public let relative: String
    /// Where commands see it: absolute, normalized, not "/".
    public let target: String

    /// Places a mount may not go: the sandbox mounts its own there, or they are the host's kernel.
    static let reserved = ["/proc", "/dev", "/sys", "/tmp"]

    public var description: String { "\(relative.isEmpty ? "." : relative):\(target)" }

    /// `path`, absolute as a command sees it, relative to the workspace root; nil when it does not
    /// lie under the target.
    public func workspacePath(of path: String) -> String? {
        guard MountPlan.isUnder(path, target) else { return nil }
        let rest = path.dropFirst(target.count).drop { $0 == "/" }
        return [relative, String(rest)].filter { !$0.isEmpty }.joined(separator: "/")
    }

    /// Parses `FOLDER:TARGET`, FOLDER relative to the workspace ("." for the root), TARGET absolute.
    public init(parsing text: String) throws {
        guard let colon = text.range(of: ":/") else {
            throw MountError("--mount \(text): give FOLDER:TARGET, the folder relative to the workspace and an absolute target, e.g. --mount app:/app")
        }
        let folder = String(text[..<colon.lowerBound])
        let target = String(text[text.index(after: colon.lowerBound)...])
        guard !text.contains("\0"), !text.contains("\n") else { throw MountError("--mount \(text.debugDescription): a NUL byte or a newline is not allowed") }
        guard !folder.hasPrefix("/") else {
            throw MountError("--mount \(text): the folder must be relative to the workspace (it must lie inside it), not \(folder)")
        }
        let folderParts = folder.split(separator: "/").filter { $0 != "." }
        guard !folderParts.contains("..") else { throw MountError("--mount \(text): the folder may not climb with '..' out of the workspace") }
        let targetParts = target.split(separator: "/")
        guard !targetParts.isEmpty, !targetParts.contains("."), !targetParts.contains("..") else {
            throw MountError("--mount \(text): the target must be a plain absolute path below /, with no '.' or '..'")
        }
        relative = folderParts.joined(separator: "/")
        self.target = "/" + targetParts.joined(separator: "/")
        if let clash = Self.reserved.first(where: { MountPlan.isUnder(self.target, $0) }) {
            throw MountError("--mount \(text): \(clash) is the sandbox's own; choose a target outside \(Self.reserved.joined(separator: ", "))")
        }
    }

    /// Where the target stands on this machine: the deepest folder of its path that exists
    /// (relative to /, "" for / itself) and the components below it that do not. A symlink or a
    /// file on the way is refused: the mount point must be a real folder, or made in one.
    func place() throws -> (existing: String, missing: [String]) {
        let parts = target.split(separator: "/").map(String.init)
        for depth in 1...parts.count {
            let path = "/" + parts[..<depth].joined(separator: "/")
            var info = stat()
            guard lstat(path, &info) == 0 else { return (parts[..<(depth - 1)].joined(separator: "/"), Array(parts[(depth - 1)...])) }
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw MountError("--mount \(self): \(path) is \((info.st_mode & S_IFMT) == S_IFLNK ? "a symlink" : "not a folder") on this machine; give a target whose folders are real folders")
            }
        }
        return (parts.joined(separator: "/"), [])
    }

    /// The lines of a new root (`MountPlan.Step.newRoot`) that give every target a mount point:
    /// "+P" for a host folder P that shows its entries on a tmpfs (the target lies in it and it
    /// lacks the target), then the folders to make, parents first. Empty when every target exists.
    static func newRootLines(_ mounts: [FolderMount]) throws -> [String] {
        var skeletons: [String] = [], folders: [String] = []
        for mount in mounts {
            let (existing, missing) = try mount.place()
            guard !missing.isEmpty else { continue }
            if !existing.isEmpty && !skeletons.contains(existing) { skeletons.append(existing) }
            for depth in 1...missing.count {
                let folder = ([existing].filter { !$0.isEmpty } + missing[..<depth]).joined(separator: "/")
                if !folders.contains(folder) { folders.append(folder) }
            }
        }
        return skeletons.sorted { $0.count < $1.count }.map { "+" + $0 } + folders.sorted { $0.count < $1.count }
    }

    /// Refuses a target that cannot be a mount point and two mounts at one target.
    static func checkTargets(_ mounts: [FolderMount]) throws {
        _ = try newRootLines(mounts)
        var seen: Set<String> = []
        for mount in mounts where !seen.insert(mount.target).inserted {
            throw MountError("--mount: two folders are mounted at \(mount.target)")
        }
    }
}

/// A `--mount` that cannot be made, with what to change.
public struct MountError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
