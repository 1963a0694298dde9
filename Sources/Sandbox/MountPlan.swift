import CSandbox
import Foundation
import WorkspaceAccess

/// The child's mount steps for one profile and workspace, as C structs ready for `csandbox_spawn`.
/// Built once per runner; the strings live as long as the plan.
final class MountPlan: @unchecked Sendable {
    enum Step {
        case makePrivate
        case clone(source: String, slot: Int)
        case readOnlyTree(String)
        case tmpfs(String, options: String, flags: UInt)
        case mkdir(String)
        case touch(String)
        case attach(slot: Int, target: String)
        case bindReadOnly(String)
        case bindFile(source: String, target: String)
        case proc(String)
        case devpts(String)
        case symlink(target: String, link: String)
        /// nosuid and nodev on a copy, recursively, and idmapped when `idmap` (see `UserMapping`).
        case harden(slot: Int, idmap: Bool)
        case chown(String, uid: UInt32, gid: UInt32)
        /// A copy of the folder `relative` beneath the folder `root`, through no symlink.
        case cloneBeneath(root: String, relative: String, slot: Int)
        /// A new root on a tmpfs mounted at `staging`, with every other entry of / and `folders`
        /// ("+P": the host folder P on a tmpfs with its entries; else a folder to make).
        case newRoot(staging: String, folders: [String])
    }

    static let deviceNodes = ["null", "zero", "full", "random", "urandom", "tty"]

    let steps: [Step]
    private(set) var descriptions: [String] = []
    let mounts: UnsafeMutableBufferPointer<csandbox_mount>
    private var strings: [UnsafeMutablePointer<CChar>] = []

    /// Only a new /proc: what a call adds to a copy of the session's prepared mount namespace.
    static let procOnly = MountPlan(steps: [.proc("/proc")])

    init(steps: [Step]) {
        self.steps = steps
        mounts = .allocate(capacity: steps.count)
        for (index, step) in steps.enumerated() {
            mounts[index] = cStep(step)
            descriptions.append(Self.describe(step))
        }
    }

    /// The whole plan for a profile.
    /// - Parameters:
    ///   - writable: absolute paths that stay writable (the workspace); each must exist.
    ///   - readOnly: paths inside them that stay read-only.
    ///   - hidden: paths covered by an empty folder (or /dev/null for files).
    ///   - withProc: mount /proc too (only in a child that leads a new pid namespace).
    ///   - readable: folders shown read-only even where they lie in a hidden path (saved outputs).
    ///   - owner: with a user mapping, the writable folders are idmapped through it, and the
    ///     private home is given to the sandbox's root (an unprivileged host uid).
    ///   - coverHostProc: cover every procfs of the host with an empty read-only folder, for a view
    ///     that host threads enter: their /proc/self is toolhost's, whose magic links lead out.
    ///   - mounts: workspace folders also shown writable at their targets, opened beneath
    ///     `workspace` (its root); targets / lacks are made in a new root.
    convenience init(
        writable: [String], readOnly: [String], hidden: [String], readable: [String] = [], tmpSizeMB: Int, withProc: Bool,
        owner: (uid: UInt32, gid: UInt32)? = nil, coverHostProc: Bool = false, mounts: [FolderMount] = [], workspace: String = ""
    ) {
        var steps: [Step] = [.makePrivate]
        var slot = 0
        var attachments: [(slot: Int, target: String, readOnly: Bool)] = []
        for (path, readOnly) in writable.map({ ($0, false) }) + readable.map({ ($0, true) }) {
            steps.append(.clone(source: path, slot: slot))
            // A setuid binary or a device node made in the workspace must mean nothing.
            if !readOnly { steps.append(.harden(slot: slot, idmap: owner != nil)) }
            attachments.append((slot, path, readOnly))
            slot += 1
        }
        // Parents first, so /logs/agent is mounted on top of /logs.
        for mount in mounts.sorted(by: { $0.target.count < $1.target.count }) {
            steps.append(.cloneBeneath(root: workspace, relative: mount.relative.isEmpty ? "." : mount.relative, slot: slot))
            steps.append(.harden(slot: slot, idmap: owner != nil))
            attachments.append((slot, mount.target, false))
            slot += 1
        }
        var devices: [(slot: Int, name: String)] = []
        for name in Self.deviceNodes where FileManager.default.fileExists(atPath: "/dev/\(name)") {
            steps.append(.clone(source: "/dev/\(name)", slot: slot))
            devices.append((slot, name))
            slot += 1
        }
        // Checked by the runner before any plan is made (`FolderMount.checkTargets`).
        let mountPoints = (try? FolderMount.newRootLines(mounts)) ?? []
        if !mountPoints.isEmpty { steps.append(.newRoot(staging: "/tmp", folders: mountPoints)) }
        var hiddenFolders: [String] = []
        // A path under /tmp or under another hidden folder is covered already.
        for path in hidden where !FolderMount.isUnder(path, "/tmp") && !hidden.contains(where: { $0 != path && FolderMount.isUnder(path, $0) }) {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { continue }
            if isFolder.boolValue {
                hiddenFolders.append(path)
            } else {
                steps.append(.bindFile(source: "/dev/null", target: path))
            }
        }
        steps.append(.readOnlyTree("/"))
        if coverHostProc {
            let covered = Self.procMounts().filter { path in
                !FolderMount.isUnder(path, "/tmp") && !hiddenFolders.contains { FolderMount.isUnder(path, $0) }
            }
            for path in covered.sorted(by: { $0.count < $1.count }) where !covered.contains(where: { $0 != path && FolderMount.isUnder(path, $0) }) {
                steps.append(.tmpfs(path, options: "mode=0555,size=4k", flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)))
            }
        }
        // Shallow first, so a hidden folder inside another is mounted on top of it.
        for path in hiddenFolders.sorted(by: { $0.count < $1.count }) {
            steps.append(.tmpfs(path, options: "mode=0755,size=1m", flags: UInt(MS_NOSUID | MS_NODEV)))
        }
        steps.append(.tmpfs("/tmp", options: "mode=1777,size=\(tmpSizeMB)m", flags: UInt(MS_NOSUID | MS_NODEV)))
        steps.append(.mkdir("/tmp/home"))
        if let owner { steps.append(.chown("/tmp/home", uid: owner.uid, gid: owner.gid)) }
        for attachment in attachments {
            // The mount point may lie in a tmpfs just made (/tmp, a hidden home): make its folders.
            var prefix = ""
            for component in attachment.target.split(separator: "/") {
                prefix += "/\(component)"
                steps.append(.mkdir(prefix))
            }
            steps.append(.attach(slot: attachment.slot, target: attachment.target))
            if attachment.readOnly { steps.append(.readOnlyTree(attachment.target)) }
        }
        steps += readOnly.map { .bindReadOnly($0) }
        if withProc { steps.append(.proc("/proc")) }
        steps.append(.tmpfs("/dev", options: "mode=0755,size=64k", flags: UInt(MS_NOSUID | MS_NOEXEC)))
        for device in devices {
            steps.append(.touch("/dev/\(device.name)"))
            steps.append(.attach(slot: device.slot, target: "/dev/\(device.name)"))
        }
        steps += [
            .mkdir("/dev/pts"), .devpts("/dev/pts"), .symlink(target: "pts/ptmx", link: "/dev/ptmx"),
            .mkdir("/dev/shm"), .tmpfs("/dev/shm", options: "mode=1777,size=64m", flags: UInt(MS_NOSUID | MS_NODEV)),
            .symlink(target: "/proc/self/fd", link: "/dev/fd"), .symlink(target: "/proc/self/fd/0", link: "/dev/stdin"),
            .symlink(target: "/proc/self/fd/1", link: "/dev/stdout"), .symlink(target: "/proc/self/fd/2", link: "/dev/stderr"),
        ]
        self.init(steps: steps)
    }

    deinit {
        strings.forEach { free($0) }
        mounts.deallocate()
    }

    private func keep(_ text: String?) -> UnsafePointer<CChar>? {
        guard let text else { return nil }
        let copy = strdup(text)!
        strings.append(copy)
        return UnsafePointer(copy)
    }

    private func cStep(_ step: Step) -> csandbox_mount {
        func make(_ kind: csandbox_mount_kind, source: String? = nil, target: String? = nil, data: String? = nil,
                  flags: UInt = 0, slot: Int = -1) -> csandbox_mount {
            csandbox_mount(
                kind: Int32(kind.rawValue), source: keep(source), target: keep(target), data: keep(data), flags: flags,
                slot: Int32(slot))
        }
        switch step {
        case .makePrivate: return make(CSANDBOX_MOUNT_PRIVATE)
        case .clone(let source, let slot): return make(CSANDBOX_MOUNT_CLONE, source: source, slot: slot)
        case .readOnlyTree(let target): return make(CSANDBOX_MOUNT_READONLY_TREE, target: target)
        case .tmpfs(let target, let options, let flags): return make(CSANDBOX_MOUNT_TMPFS, target: target, data: options, flags: flags)
        case .mkdir(let target): return make(CSANDBOX_MOUNT_MKDIR, target: target)
        case .touch(let target): return make(CSANDBOX_MOUNT_TOUCH, target: target)
        case .attach(let slot, let target): return make(CSANDBOX_MOUNT_ATTACH, target: target, slot: slot)
        case .bindReadOnly(let target): return make(CSANDBOX_MOUNT_BIND_READONLY, target: target)
        case .bindFile(let source, let target): return make(CSANDBOX_MOUNT_BIND_FILE, source: source, target: target)
        case .proc(let target): return make(CSANDBOX_MOUNT_PROC, target: target)
        case .devpts(let target): return make(CSANDBOX_MOUNT_DEVPTS, target: target)
        case .symlink(let target, let link): return make(CSANDBOX_MOUNT_SYMLINK, source: target, target: link)
        case .harden(let slot, let idmap): return make(CSANDBOX_MOUNT_HARDEN_SLOT, flags: idmap ? 1 : 0, slot: slot)
        case .chown(let target, let uid, let gid): return make(CSANDBOX_MOUNT_CHOWN, target: target, flags: UInt(uid) << 32 | UInt(gid))
        case .cloneBeneath(let root, let relative, let slot): return make(CSANDBOX_MOUNT_CLONE_BENEATH, source: root, data: relative, slot: slot)
        case .newRoot(let staging, let folders): return make(CSANDBOX_MOUNT_NEW_ROOT, target: staging, data: folders.joined(separator: "\n"))
        }
    }

    static func describe(_ step: Step) -> String {
        switch step {
        case .makePrivate: "making mounts private"
        case .clone(let source, _): "taking a copy of \(source)"
        case .readOnlyTree(let target): "making \(target) read-only"
        case .tmpfs(let target, _, _): "mounting a tmpfs on \(target)"
        case .mkdir(let target): "creating \(target)"
        case .touch(let target): "creating \(target)"
        case .attach(_, let target): "mounting \(target) writable"
        case .bindReadOnly(let target): "making \(target) read-only"
        case .bindFile(_, let target): "hiding \(target)"
        case .proc(let target): "mounting a new proc on \(target)"
        case .devpts(let target): "mounting devpts on \(target)"
        case .symlink(_, let link): "linking \(link)"
        case .harden(_, let idmap): idmap ? "idmapping the workspace (nosuid, nodev)" : "making the workspace nosuid, nodev"
        case .chown(let target, _, _): "giving \(target) to the sandbox's user"
        case .cloneBeneath(_, let relative, _): "taking a copy of the workspace folder \(relative) (it must be a folder, reached through no symlink)"
        case .newRoot(_, let folders): "making a new root with the mount points \(folders.filter { !$0.hasPrefix("+") }.map { "/" + $0 }.joined(separator: ", "))"
        }
    }

    /// Where procfs is mounted in toolhost's view (mountinfo's fifth field, octal escapes undone).
    static func procMounts() -> [String] {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return ["/proc"] }
        var found: [String] = []
        for line in text.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count >= 2, halves[1].split(separator: " ").first == "proc" else { continue }
            let fields = halves[0].split(separator: " ")
            guard fields.count >= 5 else { continue }
            found.append(unescapeMountinfo(String(fields[4])))
        }
        return found.isEmpty ? ["/proc"] : found
    }

    /// mountinfo writes space, tab, newline and backslash as three octal digits after a backslash.
    private static func unescapeMountinfo(_ field: String) -> String {
        var bytes: [UInt8] = []
        let raw = Array(field.utf8)
        var index = 0
        while index < raw.count {
            if raw[index] == UInt8(ascii: "\\"), index + 4 <= raw.count,
                let value = UInt8(String(decoding: raw[(index + 1)..<(index + 4)], as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                index += 4
            } else {
                bytes.append(raw[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
