import Foundation
import Sandbox

/// The working-tree side of a session's git: every libgit2 call that reads or writes the working
/// tree (status, diffs against it, staging, checkout, a new repository) runs on the runner's
/// confined thread, on a repository opened there. libgit2 resolves working-tree paths by name
/// (and follows symlinks in their folders), so in the host a command racing it with a swapped
/// symlink could make it read, list, commit, write or delete host files; in the sandbox's view
/// the same symlink leads only where commands can go themselves.
///
/// Calls on `.git` alone (HEAD, remotes, push with its credentials) stay in the host.
final class WorkingTree: @unchecked Sendable {
    private let thread: ConfinedThread?
    private let root: String
    /// Opened on first use and kept (libgit2 keeps config, index and objects, the watcher its
    /// watches); touched only on `thread`, or by the session's actor when there is no thread.
    private var repository: Repository?

    init(root: String, thread: ConfinedThread?) {
        self.root = root
        self.thread = thread
    }

    deinit { thread?.stop() }

    /// Runs `body` on the working tree's repository.
    func run<T: Sendable>(_ body: @escaping @Sendable (Repository) throws -> T) async throws -> T {
        try await perform { [self] in
            if repository == nil { repository = try Repository(root: root) }
            return try body(repository!)
        }
    }

    /// Runs `body` where working-tree calls run, with no repository opened (to create one).
    func perform<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        guard let thread else { return try body() }
        return try await thread.perform(body)
    }

    func stop() { thread?.stop() }
}
