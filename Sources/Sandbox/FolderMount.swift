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

    /// The folders a new root must hold for these targets, parents first: every target whose first
    /// component / lacks, with its parents. Empty when / has a place for each.
    static func missingMountPoints(_ mounts: [FolderMount]) -> [String] {
        var folders: [String] = []
        for mount in mounts {
            let parts = mount.target.split(separator: "/")
            var info = stat()
            guard lstat("/" + parts[0], &info) != 0 else { continue }
            for depth in 1...parts.count {
                let folder = parts[..<depth].joined(separator: "/")
                if !folders.contains(folder) { folders.append(folder) }
            }
        }
        return folders.sorted { $0.count < $1.count }
    }

    /// A target under a folder / has must exist already: the host's tree is read-only to the sandbox.
    static func checkTargets(_ mounts: [FolderMount]) throws {
        let made = missingMountPoints(mounts)
        for mount in mounts where !made.contains(String(mount.target.dropFirst())) {
            var info = stat()
            guard stat(mount.target, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
                throw MountError("--mount \(mount): \(mount.target) does not exist as a folder on this machine and lies in \("/" + mount.target.split(separator: "/")[0]), which does; choose a target in a top-level folder of its own, e.g. /\(mount.target.split(separator: "/").last!)")
            }
        }
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
