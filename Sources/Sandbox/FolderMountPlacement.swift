import Foundation
import WorkspaceAccess

/// Where `--mount` targets go in a sandbox's new root: the part of a folder mount that is
/// confinement, not workspace access.
extension FolderMount {
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
