public import CSandbox
import Foundation

/// Opens paths beneath a directory descriptor, never outside it, whatever a sandboxed command does
/// to the tree meanwhile: host code that touches the workspace goes through here, never by name.
public enum Beneath {
    /// Names mechanisms (comma-separated) that toolhost acts as if this machine lacked, for tests
    /// of the fallbacks: the opener reads it for "openat2", Sandbox's `Mechanisms` for the rest.
    public static let simulateVariable = "TOOLHOST_SIMULATE_MISSING"

    /// O_PATH: a descriptor that names a file or folder without opening it for reading.
    public static let pathOnly = Int32(CSANDBOX_O_PATH)

    /// Whether opens use openat2 (Linux 5.6+). Without it they walk one component at a time with
    /// O_NOFOLLOW, which is as strict for the symlink-free paths the callers pass.
    public static let usesOpenat2: Bool = {
        if ProcessInfo.processInfo.environment[simulateVariable]?.contains("openat2") == true { return false }
        let fd = csandbox_openat2(AT_FDCWD, "/", pathOnly | O_CLOEXEC, 0, 0)
        if fd >= 0 { close(fd) }
        return fd != -ENOSYS
    }()

    /// How `toolhost doctor` describes the opener this machine gets.
    public static var summary: String {
        usesOpenat2
            ? "openat2 with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS on a descriptor of the workspace root"
            : "no openat2 on this kernel: a walk from the workspace root's descriptor, one component at a time with O_NOFOLLOW"
    }

    /// Opens `relative` (plain names separated by "/", no "..", "" for the root itself) beneath the
    /// directory `root`. Any symlink on the way, even one that appeared a moment ago, fails the
    /// open (ELOOP or EXDEV) instead of being followed. Returns the descriptor (close-on-exec) or -errno.
    public static func open(_ root: Int32, _ relative: String, _ flags: Int32, mode: mode_t = 0o644) -> Int32 {
        let components = relative.split(separator: "/")
        if components.contains("..") { return -EXDEV }
        let path = components.isEmpty ? "." : components.joined(separator: "/")
        if usesOpenat2 {
            let resolve = UInt64(CSANDBOX_RESOLVE_BENEATH.rawValue | CSANDBOX_RESOLVE_NO_MAGICLINKS.rawValue | CSANDBOX_RESOLVE_NO_SYMLINKS.rawValue)
            return csandbox_openat2(root, path, flags | O_CLOEXEC | O_NOFOLLOW, UInt32(mode), resolve)
        }
        return walking(root, components, flags, mode: mode)
    }

    /// The fallback without openat2: one component at a time, none of them followed if a symlink.
    static func walking(_ root: Int32, _ components: [Substring], _ flags: Int32, mode: mode_t) -> Int32 {
        if components.isEmpty { return retrying { openat(root, ".", flags | O_CLOEXEC, mode) } }
        var current = root
        defer { if current != root { close(current) } }
        for component in components.dropLast() {
            let next = retrying { openat(current, String(component), pathOnly | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            if next < 0 { return next }
            if current != root { close(current) }
            current = next
        }
        return retrying { openat(current, String(components.last!), flags | O_CLOEXEC | O_NOFOLLOW, mode) }
    }

    private static func retrying(_ call: () -> Int32) -> Int32 {
        while true {
            let fd = call()
            if fd >= 0 { return fd }
            if errno != EINTR { return -errno }
        }
    }
}
