import Glibc

/// Waits for the child `pid` to end, through EINTR, and returns its wait status: the one loop
/// every spawn of this module ends in.
@discardableResult
func reap(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return status
}
