import CLibGit2
public import Foundation

/// A failed libgit2 call, with the call's name and what to do next.
public struct GitError: Error, CustomStringConvertible {
    public let call: String
    public let message: String
    public var hint: String?

    public var description: String {
        "\(call) failed: \(message)" + (hint.map { ". \($0)" } ?? "")
    }
}

/// Throws a GitError built from `git_error_last()` when a libgit2 call returned < 0.
@discardableResult
func check(_ result: Int32, _ call: String, hint: String? = nil) throws -> Int32 {
    guard result < 0 else { return result }
    let message = git_error_last().flatMap { $0.pointee.message.map { String(cString: $0) } } ?? "error \(result)"
    throw GitError(call: call, message: message, hint: hint)
}

/// A git repository at the workspace root, opened through libgit2 for one tool call.
final class Repository {
    let pointer: OpaquePointer
    /// The working directory, without a trailing slash.
    let root: String

    /// `git_libgit2_init` once per process.
    private static let initialized: Bool = git_libgit2_init() >= 0

    /// Opens the repository whose working directory is `root`; never one above it, which would
    /// reach outside the workspace.
    init(root: String) throws {
        _ = Self.initialized
        var repository: OpaquePointer?
        let result = git_repository_open_ext(&repository, root, UInt32(GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue), nil)
        if result == GIT_ENOTFOUND.rawValue {
            throw ToolError("the workspace \(root) is not a git repository (no .git at its root): git_commit creates one with your first commit")
        }
        try check(result, "git_repository_open_ext")
        pointer = repository!
        self.root = root
    }

    /// Creates a repository with branch main at `root`, in its `.git` (which may be the empty,
    /// read-only-to-the-sandbox placeholder).
    static func create(at root: String) throws {
        _ = initialized
        var options = git_repository_init_options()
        try check(git_repository_init_options_init(&options, UInt32(GIT_REPOSITORY_INIT_OPTIONS_VERSION)), "git_repository_init_options_init")
        options.flags = GIT_REPOSITORY_INIT_MKPATH.rawValue | GIT_REPOSITORY_INIT_NO_REINIT.rawValue
        var repository: OpaquePointer?
        let result = "main".withCString { head in
            options.initial_head = head
            return git_repository_init_ext(&repository, root, &options)
        }
        try check(result, "git_repository_init_ext")
        git_repository_free(repository)
    }

    deinit { git_repository_free(pointer) }

    // MARK: - HEAD

    struct Head {
        /// The branch HEAD points at (also for an unborn branch); nil when detached.
        var branch: String?
        var unborn: Bool
        var commit: String?
        var upstream: String?
        var ahead = 0
        var behind = 0
    }

    func head() throws -> Head {
        if git_repository_head_unborn(pointer) == 1 {
            var reference: OpaquePointer?
            try check(git_reference_lookup(&reference, pointer, "HEAD"), "git_reference_lookup")
            defer { git_reference_free(reference) }
            let target = git_reference_symbolic_target(reference).map { String(cString: $0) } ?? "refs/heads/main"
            return Head(branch: target.replacingOccurrences(of: "refs/heads/", with: ""), unborn: true)
        }
        var reference: OpaquePointer?
        try check(git_repository_head(&reference, pointer), "git_repository_head")
        defer { git_reference_free(reference) }
        let oid = git_reference_target(reference)!
        var head = Head(unborn: false, commit: Self.hex(oid.pointee))
        if git_repository_head_detached(pointer) == 1 { return head }
        head.branch = String(cString: git_reference_shorthand(reference))
        var upstream: OpaquePointer?
        if git_branch_upstream(&upstream, reference) == 0 {
            defer { git_reference_free(upstream) }
            head.upstream = String(cString: git_reference_shorthand(upstream))
            if let upstreamOID = git_reference_target(upstream) {
                var ahead = 0, behind = 0
                if git_graph_ahead_behind(&ahead, &behind, pointer, oid, upstreamOID) == 0 {
                    head.ahead = ahead
                    head.behind = behind
                }
            }
        }
        return head
    }

    // MARK: - Status

    struct Change: Equatable {
        var path: String
        var kind: String
    }

    struct Status {
        var staged: [Change] = []
        var unstaged: [Change] = []
        var untracked: [String] = []
        var conflicted: [String] = []
        var isClean: Bool { staged.isEmpty && unstaged.isEmpty && untracked.isEmpty && conflicted.isEmpty }
        /// This status with the working-tree side of `paths` replaced by `fresh`'s, which looked
        /// at those paths alone; in git's order (byte order of the paths).
        func updating(_ paths: Set<String>, from fresh: Status) -> Status {
            let before = { (a: String, b: String) in a.utf8.lexicographicallyPrecedes(b.utf8) }
            var status = self
            status.unstaged = (unstaged.filter { !paths.contains($0.path) } + fresh.unstaged).sorted { before($0.path, $1.path) }
            status.untracked = (untracked.filter { !paths.contains($0) } + fresh.untracked).sorted(by: before)
            return status
        }

        /// Every path with a change, staged or not.
        var allPaths: [String] {
            Array(Set(staged.map(\.path) + unstaged.map(\.path) + untracked + conflicted)).sorted()
        }
    }

    /// The last status and HEAD, and what tells whether they still hold.
    private var watcher: ChangeWatcher?
    private var cached: (head: Head, status: Status)?

    /// HEAD and status, from the cache when nothing changed since they were read.
    func headAndStatus() throws -> (head: Head, status: Status) {
        if watcher == nil {
            watcher = ChangeWatcher(root: root) { [pointer] path in
                var ignored: Int32 = 0
                return git_ignore_path_is_ignored(&ignored, pointer, path) == 0 && ignored == 1
            }
        }
        var fresh: (head: Head, status: Status)
        switch (cached, watcher?.changes() ?? .everything) {
        case (let cached?, .nothing): return cached
        case (let cached?, .files(let paths)) where cached.status.conflicted.allSatisfy({ !paths.contains($0) }):
            // HEAD, refs and the index are as they were: only these files' working-tree side can differ.
            fresh = (cached.head, cached.status.updating(paths, from: try status(onlyWorkingTree: paths.sorted())))
        default:
            fresh = (try head(), try status())
        }
        watcher?.settle()
        cached = watcher?.broken == false ? fresh : nil
        return fresh
    }

    /// Forgets the cached status (after this process changed the repository itself).
    func invalidateStatus() {
        cached = nil
    }

    /// The whole status; with `onlyWorkingTree`, the working tree's side of those paths alone
    /// (each a file's exact path, no pattern), which is all that a write of them can change.
    func status(onlyWorkingTree paths: [String]? = nil) throws -> Status {
        var options = git_status_options()
        try check(git_status_options_init(&options, UInt32(GIT_STATUS_OPTIONS_VERSION)), "git_status_options_init")
        options.show = paths == nil ? GIT_STATUS_SHOW_INDEX_AND_WORKDIR : GIT_STATUS_SHOW_WORKDIR_ONLY
        options.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED.rawValue | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS.rawValue
            | GIT_STATUS_OPT_RENAMES_HEAD_TO_INDEX.rawValue | GIT_STATUS_OPT_SORT_CASE_SENSITIVELY.rawValue
            // Like `git status`, refresh the stat data of racily-clean entries, so they are not re-hashed every call.
            | GIT_STATUS_OPT_UPDATE_INDEX.rawValue
            | (paths == nil ? 0 : GIT_STATUS_OPT_DISABLE_PATHSPEC_MATCH.rawValue)
        var list: OpaquePointer?
        try withStrarray(paths ?? []) { pathspec in
            options.pathspec = pathspec.pointee
            try check(git_status_list_new(&list, pointer, &options), "git_status_list_new")
        }
        defer { git_status_list_free(list) }
        var status = Status()
        for index in 0..<git_status_list_entrycount(list) {
            guard let entry = git_status_byindex(list, index)?.pointee else { continue }
            let flags = entry.status.rawValue
            let indexPath = entry.head_to_index.flatMap { ($0.pointee.new_file.path).map { String(cString: $0) } }
            let workPath = entry.index_to_workdir.flatMap { ($0.pointee.new_file.path).map { String(cString: $0) } }
            if flags & GIT_STATUS_CONFLICTED.rawValue != 0 {
                status.conflicted.append(workPath ?? indexPath ?? "?")
                continue
            }
            let indexKinds: [(git_status_t, String)] = [
                (GIT_STATUS_INDEX_NEW, "new"), (GIT_STATUS_INDEX_MODIFIED, "modified"), (GIT_STATUS_INDEX_DELETED, "deleted"),
                (GIT_STATUS_INDEX_RENAMED, "renamed"), (GIT_STATUS_INDEX_TYPECHANGE, "typechange"),
            ]
            if let kind = indexKinds.first(where: { flags & $0.0.rawValue != 0 }) {
                status.staged.append(Change(path: indexPath ?? "?", kind: kind.1))
            }
            if flags & GIT_STATUS_WT_NEW.rawValue != 0 {
                status.untracked.append(workPath ?? "?")
                continue
            }
            let workKinds: [(git_status_t, String)] = [
                (GIT_STATUS_WT_MODIFIED, "modified"), (GIT_STATUS_WT_DELETED, "deleted"),
                (GIT_STATUS_WT_RENAMED, "renamed"), (GIT_STATUS_WT_TYPECHANGE, "typechange"),
            ]
            if let kind = workKinds.first(where: { flags & $0.0.rawValue != 0 }) {
                status.unstaged.append(Change(path: workPath ?? "?", kind: kind.1))
            }
        }
        return status
    }

    /// The repository's index, re-read when the file changed on disk (a command may have run
    /// `git add` since the repository was opened).
    private func freshIndex() throws -> OpaquePointer {
        var index: OpaquePointer?
        try check(git_repository_index(&index, pointer), "git_repository_index")
        try check(git_index_read(index, 0), "git_index_read")
        return index!
    }

    // MARK: - Diff

    /// A unified diff of the working tree against the index (or, `staged`, of the index against
    /// HEAD), limited to `paths`, cut at `cap` bytes.
    func diff(staged: Bool, paths: [String], cap: Int) throws -> (text: String, files: Int, truncated: Bool) {
        var options = git_diff_options()
        try check(git_diff_options_init(&options, UInt32(GIT_DIFF_OPTIONS_VERSION)), "git_diff_options_init")
        options.flags = GIT_DIFF_INCLUDE_UNTRACKED.rawValue | GIT_DIFF_SHOW_UNTRACKED_CONTENT.rawValue
            | GIT_DIFF_RECURSE_UNTRACKED_DIRS.rawValue
        var diff: OpaquePointer?
        try withStrarray(paths) { pathspec in
            options.pathspec = pathspec.pointee
            if staged {
                let tree = try headTree()
                defer { git_tree_free(tree) }
                let index = try freshIndex()
                defer { git_index_free(index) }
                try check(git_diff_tree_to_index(&diff, pointer, tree, index, &options), "git_diff_tree_to_index")
            } else {
                try check(git_diff_index_to_workdir(&diff, pointer, nil, &options), "git_diff_index_to_workdir")
            }
        }
        defer { git_diff_free(diff) }
        final class Collector {
            var bytes: [UInt8] = []
            var truncated = false
            let cap: Int
            init(cap: Int) { self.cap = cap }
        }
        let collector = Collector(cap: cap)
        let callback: git_diff_line_cb = { _, _, line, payload in
            let collector = Unmanaged<Collector>.fromOpaque(payload!).takeUnretainedValue()
            guard let line = line?.pointee else { return 0 }
            if collector.bytes.count >= collector.cap {
                collector.truncated = true
                return 0
            }
            let origin = UInt8(bitPattern: line.origin)
            if [UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: " ")].contains(origin) { collector.bytes.append(origin) }
            line.content.withMemoryRebound(to: UInt8.self, capacity: line.content_len) {
                collector.bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: line.content_len))
            }
            return 0
        }
        try check(
            git_diff_print(diff, GIT_DIFF_FORMAT_PATCH, callback, Unmanaged.passUnretained(collector).toOpaque()),
            "git_diff_print")
        return (String(decoding: collector.bytes, as: UTF8.self), git_diff_num_deltas(diff), collector.truncated)
    }

    /// HEAD's tree, or nil for an unborn branch (libgit2 then compares against an empty tree).
    private func headTree() throws -> OpaquePointer? {
        guard git_repository_head_unborn(pointer) != 1 else { return nil }
        var object: OpaquePointer?
        try check(git_revparse_single(&object, pointer, "HEAD^{tree}"), "git_revparse_single")
        return object
    }

    // MARK: - Commit

    /// Stages `paths` (new, changed or deleted files), or every change when `paths` is nil.
    func stage(_ paths: [String]?) throws {
        invalidateStatus()
        let index = try freshIndex()
        defer { git_index_free(index) }
        // add_all takes new and changed files (and whole folders), update_all takes deletions.
        try withStrarray(paths ?? ["*"]) { pathspec in
            try check(git_index_add_all(index, pathspec, GIT_INDEX_ADD_DEFAULT.rawValue, nil, nil), "git_index_add_all")
            try check(git_index_update_all(index, pathspec, nil, nil), "git_index_update_all")
        }
        try check(git_index_write(index), "git_index_write")
    }

    /// The identity git would commit as (the repository's config, then the user's), or nil when none is set.
    func defaultIdentity() -> (name: String, email: String)? {
        var signature: UnsafeMutablePointer<git_signature>?
        guard git_signature_default(&signature, pointer) == 0, let signature else { return nil }
        defer { git_signature_free(signature) }
        return (String(cString: signature.pointee.name), String(cString: signature.pointee.email))
    }

    /// Commits the index on HEAD as `identity`. Returns the new commit and the paths it changed;
    /// nil when the index holds exactly HEAD's tree (nothing to commit).
    func commit(message: String, as identity: (name: String, email: String)) throws -> (sha: String, paths: [String])? {
        let index = try freshIndex()
        defer { git_index_free(index) }
        var treeID = git_oid()
        try check(git_index_write_tree(&treeID, index), "git_index_write_tree")
        var tree: OpaquePointer?
        try check(git_tree_lookup(&tree, pointer, &treeID), "git_tree_lookup")
        defer { git_tree_free(tree) }

        var parent: OpaquePointer?
        if git_repository_head_unborn(pointer) != 1 {
            var object: OpaquePointer?
            try check(git_revparse_single(&object, pointer, "HEAD^{commit}"), "git_revparse_single")
            parent = object
        }
        defer { if let parent { git_commit_free(parent) } }
        let parentTree = try parent.map { commit -> OpaquePointer? in
            var tree: OpaquePointer?
            try check(git_commit_tree(&tree, commit), "git_commit_tree")
            return tree
        } ?? nil
        defer { git_tree_free(parentTree) }
        if let parentTree, git_oid_equal(git_tree_id(parentTree), &treeID) == 1 { return nil }
        if parentTree == nil && git_tree_entrycount(tree) == 0 { return nil }  // a first commit of nothing

        var signature: UnsafeMutablePointer<git_signature>?
        try check(git_signature_now(&signature, identity.name, identity.email), "git_signature_now")
        defer { git_signature_free(signature) }
        var commitID = git_oid()
        var parents: [OpaquePointer?] = parent.map { [$0] } ?? []
        _ = try parents.withUnsafeMutableBufferPointer { buffer in
            try check(
                git_commit_create(
                    &commitID, pointer, "HEAD", signature, signature, nil, message, tree, buffer.count, buffer.baseAddress),
                "git_commit_create")
        }
        var diff: OpaquePointer?
        try check(git_diff_tree_to_tree(&diff, pointer, parentTree, tree, nil), "git_diff_tree_to_tree")
        defer { git_diff_free(diff) }
        let paths = (0..<git_diff_num_deltas(diff)).compactMap { index in
            git_diff_get_delta(diff, index).flatMap { delta in
                (delta.pointee.new_file.path ?? delta.pointee.old_file.path).map { String(cString: $0) }
            }
        }
        return (Self.hex(commitID), paths)
    }

    // MARK: - Branch

    /// The commit a revision names (a branch, a tag, a sha).
    func resolveCommit(_ revision: String) throws -> OpaquePointer {
        var object: OpaquePointer?
        try check(
            git_revparse_single(&object, pointer, revision + "^{commit}"), "git_revparse_single(\(revision))",
            hint: "give an existing branch, tag or commit")
        return object!
    }

    /// The full id of the commit a revision names.
    func commitID(_ revision: String) throws -> String {
        let commit = try resolveCommit(revision)
        defer { git_commit_free(commit) }
        return Self.hex(git_commit_id(commit).pointee)
    }

    /// Creates `name` at `from` (default HEAD) and switches to it; on an unborn HEAD, only points
    /// HEAD at the new name. Refuses when the switch would overwrite local changes, listing them.
    func createAndSwitch(to name: String, from: String?) throws -> String? {
        invalidateStatus()
        guard git_reference_is_valid_name("refs/heads/\(name)") == 1 else {
            throw ToolError("'\(name)' is not a valid branch name: no spaces, '..', '~', '^', ':' or a trailing '/'", kind: .usage)
        }
        var existing: OpaquePointer?
        if git_branch_lookup(&existing, pointer, name, GIT_BRANCH_LOCAL) == 0 {
            git_reference_free(existing)
            throw ToolError("branch \(name) exists already; pick another name (git_status shows the current branch)", kind: .usage)
        }
        if git_repository_head_unborn(pointer) == 1 && from == nil {
            try check(git_repository_set_head(pointer, "refs/heads/\(name)"), "git_repository_set_head")
            return nil
        }
        let target = try resolveCommit(from ?? "HEAD")
        defer { git_commit_free(target) }
        var options = git_checkout_options()
        try check(git_checkout_options_init(&options, UInt32(GIT_CHECKOUT_OPTIONS_VERSION)), "git_checkout_options_init")
        options.checkout_strategy = GIT_CHECKOUT_SAFE.rawValue
        final class Conflicts { var paths: [String] = [] }
        let conflicts = Conflicts()
        options.notify_flags = GIT_CHECKOUT_NOTIFY_CONFLICT.rawValue
        options.notify_cb = { _, path, _, _, _, payload in
            let conflicts = Unmanaged<Conflicts>.fromOpaque(payload!).takeUnretainedValue()
            if let path { conflicts.paths.append(String(cString: path)) }
            return 0
        }
        options.notify_payload = Unmanaged.passUnretained(conflicts).toOpaque()
        // Check out first: if local changes would be lost, nothing is created.
        let result = git_checkout_tree(pointer, target, &options)
        if result == GIT_ECONFLICT.rawValue || !conflicts.paths.isEmpty {
            throw ToolError(
                "switching to \(name) would overwrite local changes in: \(conflicts.paths.joined(separator: ", ")). Commit them (git_commit) or create the branch from HEAD (no 'base').")
        }
        try check(result, "git_checkout_tree")
        var branch: OpaquePointer?
        try check(git_branch_create(&branch, pointer, name, target, 0), "git_branch_create")
        git_reference_free(branch)
        try check(git_repository_set_head(pointer, "refs/heads/\(name)"), "git_repository_set_head")
        return Self.hex(git_commit_id(target).pointee)
    }

    // MARK: - Push

    /// Where a push to the remote goes (its push URL when one is set), or nil when there is no such remote.
    func remoteURL(_ name: String) -> String? {
        var remote: OpaquePointer?
        guard git_remote_lookup(&remote, pointer, name) == 0 else { return nil }
        defer { git_remote_free(remote) }
        return (git_remote_pushurl(remote) ?? git_remote_url(remote)).map { String(cString: $0) }
    }

    /// The remote's default branch (what its HEAD points at), asked of the remote itself.
    func remoteDefaultBranch(_ name: String, credentials: GitCredentials, pinned: String) throws -> String? {
        var remote: OpaquePointer?
        try check(git_remote_lookup(&remote, pointer, name), "git_remote_lookup(\(name))")
        defer { git_remote_free(remote) }
        var callbacks = git_remote_callbacks()
        try check(git_remote_init_callbacks(&callbacks, UInt32(GIT_REMOTE_CALLBACKS_VERSION)), "git_remote_init_callbacks")
        let context = RemoteContext(credentials: credentials, pinned: pinned)
        context.install(in: &callbacks)
        // Only the fetch side advertises where HEAD points (receive-pack does not).
        try check(git_remote_connect(remote, GIT_DIRECTION_FETCH, &callbacks, nil, nil), "git_remote_connect(\(name))",
                  hint: "check the remote's URL and your credentials")
        defer { git_remote_disconnect(remote) }
        var buffer = git_buf()
        defer { git_buf_dispose(&buffer) }
        guard git_remote_default_branch(&buffer, remote) == 0, let text = buffer.ptr else { return nil }
        return String(cString: text).replacingOccurrences(of: "refs/heads/", with: "")
    }

    /// Pushes `branch` to the same name on `remote`, never forced. Returns the rejection the
    /// remote gave for the ref, if any.
    func push(branch: String, remote name: String, credentials: GitCredentials, pinned: String) throws -> String? {
        var remote: OpaquePointer?
        try check(git_remote_lookup(&remote, pointer, name), "git_remote_lookup(\(name))")
        defer { git_remote_free(remote) }
        var options = git_push_options()
        try check(git_push_options_init(&options, UInt32(GIT_PUSH_OPTIONS_VERSION)), "git_push_options_init")
        let context = RemoteContext(credentials: credentials, pinned: pinned)
        context.install(in: &options.callbacks)
        let refspec = "refs/heads/\(branch):refs/heads/\(branch)"  // no '+': a push never forces
        let result = withStrarray([refspec]) { refspecs in git_remote_push(remote, refspecs, &options) }
        if result == GIT_ENONFASTFORWARD.rawValue {
            return "the remote's \(branch) has commits this branch lacks (non-fast-forward)"
        }
        try check(result, "git_remote_push(\(name) \(branch))", hint: "check the remote's URL and your credentials")
        return context.rejection
    }

    static func hex(_ oid: git_oid) -> String {
        withUnsafeBytes(of: oid.id) { $0.map { String(format: "%02x", $0) }.joined() }
    }
}

/// Calls `body` with a `git_strarray` over `strings`, valid only inside it.
func withStrarray<T>(_ strings: [String], _ body: (UnsafeMutablePointer<git_strarray>) throws -> T) rethrows -> T {
    let pointers = strings.map { strdup($0) }
    defer { pointers.forEach { free($0) } }
    var array = pointers
    return try array.withUnsafeMutableBufferPointer { buffer in
        var strarray = git_strarray(strings: buffer.baseAddress, count: buffer.count)
        return try body(&strarray)
    }
}

/// Credentials for remotes, taken on the host side: the sandboxed shell never sees them.
/// Git's object ids for data that is no repository's: a published digest anyone can check with
/// `git hash-object FILE`.
public enum GitHash {
    /// The id git would give `data` stored as a blob.
    public static func blobID(_ data: Data) -> String {
        _ = git_libgit2_init()
        var oid = git_oid()
        let result = data.withUnsafeBytes { git_odb_hash(&oid, $0.baseAddress, data.count, GIT_OBJECT_BLOB) }
        return result == 0 ? Repository.hex(oid) : ""
    }
}

public struct GitCredentials: Sendable {
    /// For https remotes: a token (GIT_TOKEN, else GITHUB_TOKEN) sent as the password.
    public var token: String?

    public init(token: String?) {
        self.token = token
    }

    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> GitCredentials {
        GitCredentials(token: environment["GIT_TOKEN"] ?? environment["GITHUB_TOKEN"])
    }
}

/// What the remote callbacks share through libgit2's single payload pointer.
final class RemoteContext {
    let credentials: GitCredentials
    /// The remote's URL as pinned at session start: credentials go only there (https or ssh).
    let pinned: String
    var rejection: String?
    var attempts = 0

    init(credentials: GitCredentials, pinned: String) {
        self.credentials = credentials
        self.pinned = pinned
    }

    /// Sets the credential and push-status callbacks; `self` must outlive the remote operation.
    func install(in callbacks: inout git_remote_callbacks) {
        callbacks.payload = Unmanaged.passUnretained(self).toOpaque()
        callbacks.credentials = { out, url, username, allowed, payload in
            let context = Unmanaged<RemoteContext>.fromOpaque(payload!).takeUnretainedValue()
            context.attempts += 1
            guard context.attempts <= 3 else { return GIT_EAUTH.rawValue }  // a wrong token must not loop
            // Asked by a redirect target, a plain-http server or another host: no credential at all.
            guard let url, CredentialScope.allows(String(cString: url), pinned: context.pinned) else { return GIT_PASSTHROUGH.rawValue }
            if allowed & GIT_CREDENTIAL_SSH_KEY.rawValue != 0, let username {
                return git_credential_ssh_key_from_agent(out, username)
            }
            if allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0, let token = context.credentials.token {
                return git_credential_userpass_plaintext_new(out, "x-access-token", token)
            }
            return GIT_PASSTHROUGH.rawValue
        }
        callbacks.push_update_reference = { _, status, payload in
            if let status { Unmanaged<RemoteContext>.fromOpaque(payload!).takeUnretainedValue().rejection = String(cString: status) }
            return 0
        }
    }
}
