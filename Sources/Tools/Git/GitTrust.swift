import CLibGit2
import Foundation

/// What the workspace's repository was when the session started, before any command ran: the
/// only source the git tools trust. Everything in `.git` is input a sandboxed command may have
/// shaped, so each git call first checks the repository against this.
public struct GitSnapshot: Sendable {
    /// The `.git` entry's device and inode at start; nil when there was no repository.
    var identity: FileIdentity?
    /// Each remote's URL at start (after `insteadOf`), the only places a push may go.
    var remotes: [String: String]

    struct FileIdentity: Sendable, Equatable {
        let device: UInt64
        let inode: UInt64
    }

    /// Reads the snapshot; call it when the session opens, before any command runs.
    static func take(of workspace: Workspace) -> GitSnapshot {
        guard let identity = gitEntry(in: workspace), let repository = try? Repository(root: workspace.root) else {
            return GitSnapshot(identity: nil, remotes: [:])
        }
        return GitSnapshot(identity: identity, remotes: repository.remoteURLs())
    }

    /// The `.git` entry's identity, when it is a folder holding a repository (an empty one is the
    /// placeholder the sandbox mounts read-only so commands cannot create a repository).
    static func gitEntry(in workspace: Workspace) -> FileIdentity? {
        guard let folder = workspace.status(of: ".git"), (folder.st_mode & S_IFMT) == S_IFDIR, workspace.status(of: ".git/HEAD") != nil
        else { return nil }
        return FileIdentity(device: UInt64(folder.st_dev), inode: UInt64(folder.st_ino))
    }

    /// Why the repository cannot be trusted now, or nil when it is the one the session started with.
    func refusal(for repository: Repository, in workspace: Workspace) -> String? {
        guard let info = workspace.status(of: ".git"), (info.st_mode & S_IFMT) == S_IFDIR else {
            return ".git is not a folder (a gitlink file or a symlink): toolhost only uses a repository whose .git folder is in the workspace"
        }
        let now = FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        if let identity, identity != now {
            return ".git is not the folder it was when the session started (it was replaced)"
        }
        let root = workspace.root
        for (what, path) in [("gitdir", repository.gitDirectory), ("commondir", repository.commonDirectory)] {
            guard path == root + "/.git" || path.hasPrefix(root + "/.git/") else {
                return "the repository's \(what) is \(path), outside the workspace's .git"
            }
        }
        if let worktree = repository.configString("core.worktree") {
            return "the repository's config sets core.worktree = \(worktree)"
        }
        guard repository.workingDirectory == root else {
            return "the repository's working tree is \(repository.workingDirectory ?? "none"), not the workspace \(root)"
        }
        return nil
    }
}

extension Repository {
    /// The git directory, real path without a trailing slash.
    var gitDirectory: String { Self.realFolder(git_repository_path(pointer)) }
    var commonDirectory: String { Self.realFolder(git_repository_commondir(pointer)) }
    var workingDirectory: String? { git_repository_workdir(pointer).map { Self.realFolder($0) } }

    private static func realFolder(_ path: UnsafePointer<CChar>?) -> String {
        guard let path else { return "" }
        guard let real = realpath(path, nil) else { return String(cString: path) }
        defer { free(real) }
        return String(cString: real)
    }

    /// A config value as the repository sees it (every level), or nil when unset.
    func configString(_ name: String) -> String? {
        var config: OpaquePointer?
        guard git_repository_config_snapshot(&config, pointer) == 0 else { return nil }
        defer { git_config_free(config) }
        var value: UnsafePointer<CChar>?
        guard git_config_get_string(&value, config, name) == 0, let value else { return nil }
        return String(cString: value)
    }

    /// Every remote's URL (the push URL where one is set), by name.
    func remoteURLs() -> [String: String] {
        var names = git_strarray()
        guard git_remote_list(&names, pointer) == 0 else { return [:] }
        defer { git_strarray_dispose(&names) }
        var urls: [String: String] = [:]
        for index in 0..<names.count {
            guard let raw = names.strings[index] else { continue }
            let name = String(cString: raw)
            urls[name] = remoteURL(name)
        }
        return urls
    }
}

/// Where a push's credentials may go: https or ssh only, and only to the pinned URL's host.
enum CredentialScope {
    /// The scheme and host of a remote URL (`scp`-style `user@host:path` counts as ssh); nil for a
    /// local path.
    static func endpoint(of url: String) -> (scheme: String, host: String)? {
        if let parsed = URLComponents(string: url), let scheme = parsed.scheme?.lowercased(), scheme != "file" {
            return (scheme, parsed.host?.lowercased() ?? "")
        }
        if !url.hasPrefix("/"), let colon = url.firstIndex(of: ":"), !url[..<colon].contains("/") {
            let host = url[..<colon].split(separator: "@").last.map(String.init) ?? ""
            return ("ssh", host.lowercased())
        }
        return nil
    }

    /// Whether a credential may be sent to `url`, the remote pinned as `pinned`.
    static func allows(_ url: String, pinned: String) -> Bool {
        guard let target = endpoint(of: url), let home = endpoint(of: pinned) else { return false }
        return ["https", "ssh"].contains(target.scheme) && target.host == home.host && target.scheme == home.scheme
    }
}
