import CSandbox
import Foundation

/// The one place that turns a `ProcessSpec` into a running child through `csandbox_spawn`, and
/// makes the pipes children are given.
public enum Spawn {
    /// Starts the child with stdin on /dev/null and `fds` mapped (source -> target). Returns its pid,
    /// which is also its process group id: the child leads a new session.
    static func start(
        _ spec: ProcessSpec, fds: [(source: Int32, target: Int32)],
        confinement: UnsafePointer<csandbox_confinement>? = nil
    ) throws -> pid_t {
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard devNull >= 0 else { throw SpawnError(executable: "/dev/null", errno: errno) }
        defer { close(devNull) }
        let mapped = [csandbox_fd(source: devNull, target: 0)]
            + fds.map { csandbox_fd(source: $0.source, target: $0.target) }

        let argv = CStringArray([spec.executable] + spec.arguments)
        let envp = CStringArray(spec.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
        var pid: pid_t = 0
        var step: Int32 = 0
        var detail: Int32 = 0
        let err = spec.executable.withCString { path in
            spec.workingDirectory.withCString { cwd in
                mapped.withUnsafeBufferPointer { fdBuffer in
                    var args = csandbox_spawn_args(
                        path: path, argv: argv.pointers, envp: envp.pointers, cwd: cwd,
                        fds: fdBuffer.baseAddress, fd_count: Int32(fdBuffer.count), confinement: confinement)
                    return csandbox_spawn(&args, &pid, &step, &detail)
                }
            }
        }
        guard err == 0 else {
            throw SpawnError(executable: spec.executable, errno: err, step: SpawnError.Step(rawValue: step), detail: Int(detail))
        }
        return pid
    }

    /// Makes a close-on-exec pipe: (read end, write end).
    public static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        let err = csandbox_pipe(&fds)
        guard err == 0 else { throw SpawnError(executable: "pipe", errno: err) }
        return (fds[0], fds[1])
    }
}

/// A NULL-terminated `char *const *` that lives as long as this value.
final class CStringArray {
    let pointers: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private let count: Int

    init(_ strings: [String]) {
        count = strings.count
        pointers = .allocate(capacity: strings.count + 1)
        for (index, string) in strings.enumerated() {
            pointers[index] = strdup(string)
        }
        pointers[strings.count] = nil
    }

    deinit {
        for index in 0..<count { free(pointers[index]) }
        pointers.deallocate()
    }
}
