import Foundation
import Sandbox

/// File operations the file tools share: atomic writes, bounded reads, "did you mean" suggestions.
enum FileAccess {
    /// Writes `data` to a temporary file in the same folder and renames it over `path`, so a reader
    /// never sees half a file. An existing file keeps its permissions.
    static func writeAtomically(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var mode: mode_t = 0o644
        var info = stat()
        if stat(path, &info) == 0 { mode = info.st_mode & 0o7777 }
        let temp = "\(folder)/.\(url.lastPathComponent).toolhost-\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw ToolError("cannot create a file in \(folder): \(String(cString: strerror(errno)))") }
        let failure = data.withUnsafeBytes { Descriptor.writeAll(fd, $0) }
        fchmod(fd, mode)
        close(fd)
        guard failure == 0, rename(temp, path) == 0 else {
            let code = failure != 0 ? failure : errno
            unlink(temp)
            throw ToolError("writing \(path) failed: \(String(cString: strerror(code)))")
        }
    }

    /// Reads a whole file for editing, refusing ones too large to rewrite in one piece.
    static func readWhole(_ path: String, limit: Int) throws -> Data {
        var info = stat()
        guard stat(path, &info) == 0 else { throw ToolError("cannot read \(path): \(String(cString: strerror(errno)))") }
        guard Int(info.st_size) <= limit else {
            throw ToolError("the file is \(info.st_size) bytes, over the \(limit)-byte limit for this tool; change it with execute (sed, a script) instead")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ToolError("cannot read \(path)")
        }
        return data
    }

    /// Up to `count` existing workspace files whose names are closest to the missing `relative` path.
    static func suggestions(for relative: String, in workspace: Workspace, count: Int = 5) -> [String] {
        let wanted = (relative as NSString).lastPathComponent.lowercased()
        guard let walker = FileManager.default.enumerator(atPath: workspace.root) else { return [] }
        var scored: [(path: String, score: Int)] = []
        var seen = 0
        while let entry = walker.nextObject() as? String, seen < 20_000 {
            seen += 1
            let name = (entry as NSString).lastPathComponent
            if ["node_modules", ".git", ".build", "dist", ".next"].contains(name) {
                walker.skipDescendants()
                continue
            }
            let lower = name.lowercased()
            var score = editDistance(wanted, lower)
            if lower == wanted { score = 0 }
            else if lower.hasPrefix((wanted as NSString).deletingPathExtension) { score = min(score, 1) }
            if score <= max(2, wanted.count / 3) { scored.append((entry, score)) }
        }
        return scored.sorted { ($0.score, $0.path.count, $0.path) < ($1.score, $1.path.count, $1.path) }
            .prefix(count).map(\.path)
    }

    /// The error for a path that does not exist, with the nearest names that do.
    static func missing(_ resolved: Workspace.Resolved, in workspace: Workspace) -> ToolError {
        let near = suggestions(for: resolved.relative, in: workspace)
        var message = "\(resolved.display) does not exist (paths are relative to the workspace root \(workspace.root), not to the shell's cwd)."
        if !near.isEmpty { message += " Closest existing files: \(near.joined(separator: ", "))." }
        return ToolError(message)
    }
}
