import Foundation

/// Whole writes to a file descriptor: every caller (atomic file writes, the MCP transport, the
/// transcript, the DevTools pipe) needs the same loop over short writes and EINTR.
public enum Descriptor {
    /// Writes all of `bytes`; returns 0, or the errno that stopped it.
    @discardableResult
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += written
        }
        return 0
    }
}
