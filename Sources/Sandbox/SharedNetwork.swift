import CSandbox
import Foundation

/// A network namespace that one session's runners share, so that a server one of them starts is
/// reachable from the other's commands; it lives while any runner holds it.
public final class SharedNetwork: Sendable {
    /// The namespace's descriptor, for `setns` in a child or a thread.
    let descriptor: Int32

    /// A new network namespace with only loopback in it, up. Made on a thread of its own, as
    /// `unshare` changes the calling thread's namespace.
    init() throws {
        let result = LockedBox<Int32>(-1)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            result.value = csandbox_new_netns()
            done.signal()
        }
        thread.start()
        done.wait()
        guard result.value >= 0 else { throw SpawnError(executable: "network namespace", errno: -result.value) }
        descriptor = result.value
    }

    /// A socket listening on 127.0.0.1:`port` inside the namespace, made on a thread of its own
    /// that joins the namespace and ends.
    func listen(port: UInt16) throws -> Int32 {
        let result = LockedBox<Int32>(-1)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread { [descriptor] in
            result.value = csandbox_listen_in_netns(descriptor, port)
            done.signal()
        }
        thread.start()
        done.wait()
        guard result.value >= 0 else { throw SpawnError(executable: "egress proxy listener", errno: -result.value) }
        return result.value
    }

    deinit { close(descriptor) }
}
