/// Explains a failed command in terms of the profile rule that most likely caused it, with the
/// legitimate way forward, so a model does not retry what the sandbox will never allow.
public struct Denials: Sendable {
    let profile: SandboxProfile
    let workspace: String

    /// One line per rule the outcome points at; empty when nothing points at the sandbox.
    public func explain(output: String, exitCode: Int32?, signal: Int32?) -> [String] {
        guard exitCode != 0 || signal != nil else { return [] }
        let name = profile.name
        let limits = profile.limits
        var found: [String] = []
        func has(_ needles: String...) -> Bool { needles.contains { output.contains($0) } }

        if has(".git") && has("Read-only file system", "Device or resource busy") {
            found.append("filesystem.read_only (profile \(name)): .git is read-only to commands, and cannot be moved, replaced or created by them (git status, diff, log and show still work). Use the git tools: git_commit (which also creates the repository), git_branch, git_push.")
        } else if has("Read-only file system") {
            found.append("filesystem (profile \(name)): only the workspace \(workspace) and /tmp are writable; everything else is read-only. Write inside the workspace (or /tmp for scratch files).")
        }
        if has("Could not resolve host", "Temporary failure in name resolution", "getaddrinfo", "ENOTFOUND", "EAI_AGAIN",
               "Network is unreachable", "network is unreachable", "Name or service not known")
            && profile.network != .host
        {
            found.append(profile.network == .allowlist
                ? "network: allowlist (profile \(name)): only the hosts in the profile's egress.allow are reachable, through the proxy in HTTP_PROXY/HTTPS_PROXY; a program that ignores those variables reaches nothing. Use a client that honours them (curl, npm, pip, git)."
                : "network: \(profile.network.rawValue) (profile \(name)): only this session's own localhost is reachable, no internet. Use what is installed, or ask for the network profile (--profile network) for installs and downloads.")
        }
        if has("fork: retry: Resource temporarily unavailable", "fork: Resource temporarily unavailable", "Cannot fork",
               "EAGAIN: resource temporarily unavailable, spawn")
        {
            found.append("limits.processes = \(limits.processes) (profile \(name)): too many processes at once. Run fewer things in parallel (e.g. npm's --maxsockets, make -j2).")
        }
        if has("Cannot allocate memory", "out of memory", "Out of memory", "heap out of memory", "std::bad_alloc", "MemoryError") {
            found.append("limits.memory_mb = \(limits.memoryMB) (profile \(name)): the command ran out of address space. Process less at once, or ask for the build profile.")
        }
        if has(DiskBudget.stopPrefix) {
            found.append("limits.disk_mb = \(limits.diskMB) (profile \(name)): the session's commands may add at most \(limits.diskMB) MB to the disk. Remove what is not needed (build output, caches, large downloads), then go on.")
        }
        if has("Too many open files") {
            found.append("limits.open_files = \(limits.openFiles) (profile \(name)): too many files open at once.")
        }
        // A shell reports a child killed by SIGXFSZ/SIGXCPU in words, and exits 128+signal.
        if signal == 25 || has("File too large", "File size limit exceeded") {
            found.append("limits.file_size_mb = \(limits.fileSizeMB) (profile \(name)): a file grew past the limit, or past what is left of the session's disk budget (limits.disk_mb = \(limits.diskMB)). Write less, split the output, or remove what is not needed.")
        }
        if signal == 24 || has("CPU time limit exceeded") {
            found.append("limits.cpu_seconds = \(limits.cpuSeconds) (profile \(name)): the command used up its CPU time. Make it do less, or ask for the build profile.")
        }
        if has("Operation not permitted") && found.isEmpty {
            found.append("seccomp and capabilities (profile \(name)): the sandbox blocks privileged operations (mount, namespaces, ptrace, kernel keys, setuid and setgid bits, changing owners of files outside the workspace). There is no way around it inside the sandbox: do the task without it.")
        }
        return found
    }
}
