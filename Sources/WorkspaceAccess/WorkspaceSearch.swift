import Foundation

/// What the search tools look at: regular files below a folder, never `.git`, and not what the
/// `.gitignore` files on the way ignore (unless asked). Folders are opened and files read through
/// the same confined opener as the file tools; symlinks are neither followed nor listed.
extension Workspace {
    /// How far a search goes, so that a huge tree costs a bounded time.
    public static let searchEntryLimit = 300_000

    /// Calls `visit` with each searchable file's path (relative to the root) in name order;
    /// `visit` returns false to stop.
    /// - Returns: false when the walk stopped before the end of the tree.
    @discardableResult
    public func searchableFiles(under folder: String, includeIgnored: Bool, _ visit: (String) -> Bool) -> Bool {
        searchableEntries(under: folder, includeIgnored: includeIgnored) { visit($0.path) }
    }

    /// The same files, each with its folder's descriptor (see `WalkEntry`); `folders` gets the
    /// path and descriptor of each folder the walk enters, the root included; a searchable
    /// folder is entered only when `entering` says so.
    @discardableResult
    public func searchableEntries(
        under folder: String, includeIgnored: Bool, folders: (String, Int32) -> Void = { _, _ in }, entering: (String) -> Bool = { _ in true },
        _ visit: (WalkEntry) -> Bool
    ) -> Bool {
        var rules = IgnoreRules()
        if !includeIgnored {
            // The .gitignore files above the folder apply too.
            var ancestor = ""
            for component in folder.split(separator: "/").map(String.init) {
                if let text = self.text(of: Self.join(ancestor, ".gitignore"), limit: 1 << 20) { rules.add(text, in: ancestor) }
                ancestor = Self.join(ancestor, component)
            }
        }
        return walk(
            under: folder, limit: Self.searchEntryLimit,
            enter: { path in
                guard !path.hasSuffix("/.git") && path != ".git" else { return false }
                return (includeIgnored || !rules.ignores(path, isFolder: true)) && entering(path)
            },
            listed: { path, fd, names in
                folders(path, fd)
                // Read only the .gitignore files the listing shows: looking for one in every folder costs more than the search.
                if !includeIgnored, names.contains(".gitignore"), let text = self.text(of: Self.join(path, ".gitignore"), limit: 1 << 20) {
                    rules.add(text, in: path)
                }
            },
            visit: { entry in includeIgnored || !rules.ignores(entry.path, isFolder: false) ? visit(entry) : true })
    }

    /// The bytes of the regular file at `path`, or nil for anything else, a file over `limit`
    /// bytes, or one that changed into something else meanwhile.
    public func searchableBytes(of path: String, limit: Int) -> [UInt8]? {
        guard let fd = try? open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY) else { return nil }
        return Self.regularBytes(fd, limit: limit)
    }

    /// The same for a file a walk found, opened from its folder's descriptor by its one-component
    /// name with O_NOFOLLOW: nothing is resolved on the way, so it costs one openat, not a walk
    /// from the root, and a symlink swapped in is refused as the confined opener refuses it.
    private static func searchableBytes(in folder: Int32, named name: String, limit: Int) -> [UInt8]? {
        let fd = folder < 0 ? -1 : openat(folder, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC)
        return fd >= 0 ? regularBytes(fd, limit: limit) : nil
    }

    /// Reads each searchable file below `folder` that `including` takes (by its path) and hands
    /// its bytes, or nil as `searchableBytes` gives nil, to `scan`, on more than one core for a big
    /// tree. This thread walks; each file is opened from a copy of its folder's descriptor (see
    /// `searchableBytes(in:named:limit:)`), read and scanned on worker threads once more than a few files wait, and on this thread while the
    /// queue is full.
    /// - Returns: `scan`'s results in walk order, and false when the walk stopped before the end.
    public func scanSearchableFiles<Result: Sendable>(
        under folder: String, includeIgnored: Bool, limit: Int, including: (String) -> Bool,
        _ scan: @escaping @Sendable (_ path: String, _ bytes: [UInt8]?) -> Result
    ) -> (results: [Result], complete: Bool) {
        let results = ScanResults<Result>()
        let queue = ScanQueue { batch in
            results.put(batch.map { scan($0.path, Self.searchableBytes(in: $0.folder.fd, named: $0.name, limit: limit)) }, from: batch[0].index)
        }
        // The walk closes a folder once it is listed and walked; a queued file keeps its copy open.
        // Keyed by descriptor number: the newest folder listed under a number is the one open now.
        var open: [Int32: FolderCopy] = [:]
        var count = 0
        let complete = searchableEntries(under: folder, includeIgnored: includeIgnored, folders: { _, fd in open[fd] = FolderCopy(fd) }) { entry in
            guard including(entry.path), let copy = open[entry.folder] else { return true }
            queue.add(count, entry.path, copy, entry.name)
            count += 1
            return true
        }
        queue.finish()
        return (results.all(count), complete)
    }

    /// Reads `fd` whole and closes it, when it is a regular file of at most `limit` bytes.
    private static func regularBytes(_ fd: Int32, limit: Int) -> [UInt8]? {
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) <= limit else { return nil }
        let size = Int(info.st_size)
        // Uninitialized: zeroing what the read overwrites costs as much as the search of a small file.
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, filled in
            filled = 0
            while filled < size {
                let got = read(fd, buffer.baseAddress! + filled, size - filled)
                if got <= 0 { break }
                filled += got
            }
        }
    }

    /// A search's folder as the tools take it: "" or "." for the root.
    public func searchFolder(_ path: String?) throws -> Resolved? {
        guard let path, !path.isEmpty, path != "." else { return nil }
        return try resolve(path)
    }

    private static func join(_ folder: String, _ name: String) -> String { folder.isEmpty ? name : folder + "/" + name }
}

/// A copy of a folder's descriptor, open while a queued file in it waits; -1 when `dup` failed,
/// so that the folder's files read as gone.
private final class FolderCopy: Sendable {
    let fd: Int32
    init(_ folder: Int32) { fd = fcntl(folder, F_DUPFD_CLOEXEC, 0) }
    deinit { if fd >= 0 { close(fd) } }
}

/// What a search's scans gave, a batch of files at a time: one lock per batch, and at the end a
/// sort of the batches, not of every file's result.
private final class ScanResults<Result: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var batches: [(from: Int, results: [Result])] = []  // guarded by `lock`

    /// The results of the files numbered `from` onwards, in order.
    func put(_ results: [Result], from: Int) {
        lock.withLock { batches.append((from, results)) }
    }

    func all(_ count: Int) -> [Result] {
        lock.withLock {
            let all = batches.sorted { $0.from < $1.from }.flatMap(\.results)
            precondition(all.count == count, "a search scanned \(all.count) of the \(count) files its walk found")
            return all
        }
    }
}

/// The files a search walk found and has not scanned yet, and the worker threads that take them
/// a batch at a time. A batch is the queue's oldest files, so its files are numbered in a row.
/// Everything mutable is guarded by `condition`.
private final class ScanQueue: @unchecked Sendable {
    typealias File = (index: Int, path: String, folder: FolderCopy, name: String)
    /// Enough waiting files to keep the workers busy.
    private static let capacity = 128
    /// Files a worker takes at once: each wakeup costs about what a file's scan does.
    private static let batch = 32
    /// A search of fewer files ends before a thread would have started.
    private static let workersAfter = 16
    private let condition = NSCondition()
    private let scan: @Sendable ([File]) -> Void
    private var waiting: [File] = []
    private var walked = false
    private var workers = 0
    private var sleeping = 0

    init(scan: @escaping @Sendable (_ batch: [File]) -> Void) {
        self.scan = scan
    }

    /// Queues a file; while the queue is full, the caller scans one itself.
    func add(_ index: Int, _ path: String, _ folder: FolderCopy, _ name: String) {
        condition.lock()
        waiting.append((index, path, folder, name))
        let full = waiting.count >= Self.capacity
        if workers == 0 && waiting.count > Self.workersAfter {
            // The walking thread is one of the cores.
            workers = max(1, min(7, ProcessInfo.processInfo.activeProcessorCount - 1))
            for _ in 0..<workers { Thread { [self] in work() }.start() }
        }
        if sleeping > 0 && waiting.count >= Self.batch { condition.signal() }
        condition.unlock()
        // The workers may have taken everything since: a scan is never handed an empty batch.
        if full, case let mine = take(waiting: false, batch: 1), !mine.isEmpty { scan(mine) }
    }

    /// Scans what is left on this thread beside the workers, and waits for them.
    func finish() {
        condition.lock()
        walked = true
        condition.broadcast()
        condition.unlock()
        while case let batch = take(waiting: false), !batch.isEmpty {
            scan(batch)
        }
        condition.lock()
        while workers > 0 { condition.wait() }
        condition.unlock()
    }

    private func work() {
        while case let batch = take(waiting: true), !batch.isEmpty {
            scan(batch)
        }
        condition.lock()
        workers -= 1
        condition.broadcast()
        condition.unlock()
    }

    /// Up to `batch` waiting files, the oldest; with `wait`, sleeps until there are some or the
    /// walk ended. Empty only when none wait.
    private func take(waiting wait: Bool, batch: Int = ScanQueue.batch) -> [File] {
        condition.lock()
        defer { condition.unlock() }
        while wait && waiting.isEmpty && !walked {
            sleeping += 1
            condition.wait()
            sleeping -= 1
        }
        let taken = Array(waiting.prefix(batch))
        waiting.removeFirst(taken.count)
        return taken
    }
}
