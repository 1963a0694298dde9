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

    /// Whether the absolute `path` is `folder` or lies below it, component by component
    /// ("/a/bc" is not under "/a/b"): the test every mount placement makes.
    public static func isUnder(_ path: String, _ folder: String) -> Bool {
        path == folder || path.hasPrefix(folder + "/")
    }

    public var description: String { "\(relative.isEmpty ? "." : relative):\(target)" }

    /// `path`, absolute as a command sees it, relative to the workspace root; nil when it does not
    /// lie under the target.
    public func workspacePath(of path: String) -> String? {
        guard FolderMount.isUnder(path, target) else { return nil }
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
        if let clash = Self.reserved.first(where: { FolderMount.isUnder(self.target, $0) }) {
            throw MountError("--mount \(text): \(clash) is the sandbox's own; choose a target outside \(Self.reserved.joined(separator: ", "))")
        }
    }
}

/// A `--mount` that cannot be made, with what to change.
public struct MountError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
