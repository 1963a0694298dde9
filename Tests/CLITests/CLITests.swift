import Foundation
import TestSupport
import Testing

@Suite struct CLITests {
    @Test func toolsPrintsToolsJSON() async throws {
        let ran = try await runProgram(toolhostBinary, ["tools"])
        #expect(ran.status == 0)
        #expect(ran.stdout == (try String(contentsOfFile: repositoryRoot + "/tools.json", encoding: .utf8)))
    }

    @Test func versionAndHelpSpeakToANewcomer() async throws {
        #expect(try await runProgram(toolhostBinary, ["--version"]).stdout == "0.1.0\n")
        let help = try await runProgram(toolhostBinary, ["--help"]).stdout
        for word in ["serve", "call", "tools", "workspace"] { #expect(help.contains(word)) }
        let callHelp = try await runProgram(toolhostBinary, ["call", "--help"]).stdout
        #expect(callHelp.contains("Exit status: 0"))
        let serveHelp = try await runProgram(toolhostBinary, ["serve", "--help"]).stdout
        #expect(serveHelp.contains("mcpServers"))
    }

    /// Every front door takes host secrets out of results: here `toolhost call`, as MCP clients get them.
    @Test func hostSecretsAreRedactedFromResults() async throws {
        let scratch = try Scratch()
        let token = "ghp_\(UUID().uuidString)"
        try "GIT_TOKEN=\(token)\n".write(toFile: scratch.workspace + "/.env", atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment["GIT_TOKEN"] = token
        let ran = try await runProgram(
            toolhostBinary, ["call", "read_file", #"{"path":".env"}"#, "--workspace", scratch.workspace, "--state-dir", scratch.state],
            environment: environment)
        #expect(ran.status == 0)
        #expect(ran.stdout.contains("GIT_TOKEN=[redacted]") && !ran.stdout.contains(token), "\(ran.stdout)")
    }

    @Test func callExitCodes() async throws {
        let scratch = try Scratch()
        let ok = try await scratch.call("execute", #"{"command":"echo hi"}"#)
        #expect(ok.status == 0)
        #expect(ok.stdout.hasPrefix("hi\n[exit_code: 0"))
        #expect(!ok.stderr.contains("UNCONFINED"), "the default profile confines")
        let loose = try await scratch.toolhost(
            ["call", "execute", #"{"command":"true"}"#, "--workspace", scratch.workspace, "--state-dir", scratch.state, "--unconfined"])
        #expect(loose.status == 0)
        #expect(loose.stderr.contains("UNCONFINED"), "running unconfined must be said loudly")
        let failed = try await scratch.call("read_file", #"{"path":"missing.txt"}"#)
        #expect(failed.status == 1)
        #expect(failed.stdout.contains("does not exist"))
        for bad in [#"{"path":"#, #"{"pat":"x"}"#, "[1]"] {
            #expect(try await scratch.call("read_file", bad).status == 2)
        }
        #expect(try await scratch.call("no_such_tool", "{}").status == 2)
        let noWorkspace = try await runProgram(toolhostBinary, ["call", "execute", "{}"])
        #expect(noWorkspace.status == 2)
        #expect(noWorkspace.stderr.contains("--workspace"))
        let missingWorkspace = try await runProgram(toolhostBinary, ["call", "execute", "{}", "--workspace", "/nonexistent/ws"])
        #expect(missingWorkspace.status == 2)
        #expect(missingWorkspace.stderr.contains("does not exist"))
        let badSession = try await scratch.call("execute", #"{"command":"true"}"#, session: "../x")
        #expect(badSession.status == 2)
    }

    @Test func argumentsCanComeFromStdin() async throws {
        let scratch = try Scratch()
        let ran = try await scratch.toolhost(
            ["call", "write_file", "-", "--workspace", scratch.workspace, "--state-dir", scratch.state],
            stdin: #"{"path":"a.txt","content":"from stdin\n"}"#)
        #expect(ran.status == 0)
        #expect(try String(contentsOfFile: scratch.workspace + "/a.txt", encoding: .utf8) == "from stdin\n")
    }

    @Test func cwdPersistsAcrossSeparateCalls() async throws {
        let scratch = try Scratch()
        try FileManager.default.createDirectory(atPath: scratch.workspace + "/src", withIntermediateDirectories: true)
        #expect(try await scratch.call("execute", #"{"command":"cd src"}"#).status == 0)
        #expect(try await scratch.call("execute", #"{"command":"pwd"}"#).stdout.hasPrefix(scratch.workspace + "/src\n"))
    }

    @Test func a50MBFileIsNeverLoadedWhole() async throws {
        let scratch = try Scratch()
        try scratch.writeLargeFile("big.log", megabytes: 50, character: "z")
        #expect(FileManager.default.createFile(atPath: scratch.workspace + "/small.txt", contents: Data("x\n".utf8)))
        func read(_ arguments: String) async throws -> (output: String, peakKB: Int) {
            try await runWithPeakMemory(
                toolhostBinary, ["call", "read_file", arguments, "--workspace", scratch.workspace, "--state-dir", scratch.state])
        }
        let baseline = try await read(#"{"path":"small.txt"}"#)
        let ran = try await read(#"{"path":"big.log","offset":499999}"#)
        #expect(baseline.output.contains("1\tx"))
        #expect(ran.output.contains("lines 499999-500000 of 500000, 50000000 bytes"))
        let growth = ran.peakKB - baseline.peakKB
        #expect(growth < 16_000, "peak RSS grew by \(growth) KB over a 2-byte file: the 50 MB file must be streamed, not loaded")
    }
}

/// Runs a program and returns its output and peak resident memory. The measuring is done by a small
/// Python parent: a vfork-spawned child's peak counts its parent's memory until exec, so the test
/// process itself (tens of MB) must not be that parent.
func runWithPeakMemory(_ path: String, _ arguments: [String]) async throws -> (output: String, peakKB: Int) {
    let measure = """
        import os, subprocess, sys
        p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = p.stdout.read()
        _, _, usage = os.wait4(p.pid, 0)
        sys.stdout.write(f"{usage.ru_maxrss}\\n" + out.decode())
        """
    let ran = try await runProgram("/usr/bin/env", ["python3", "-c", measure, path] + arguments)
    let newline = ran.stdout.firstIndex(of: "\n") ?? ran.stdout.endIndex
    return (String(ran.stdout[newline...].dropFirst()), Int(ran.stdout[..<newline]) ?? Int.max)
}

@Suite struct HugeOutputTests {
    /// 100 MB of output: the result is capped, the saved file holds all of it, and toolhost's own
    /// memory does not grow with it.
    @Test func hundredMegabytesAreCappedWithBoundedMemory() async throws {
        let scratch = try Scratch()
        func execute(_ command: String) async throws -> (output: String, peakKB: Int) {
            try await runWithPeakMemory(
                toolhostBinary,
                ["call", "execute", #"{"command":"\#(command)"}"#, "--workspace", scratch.workspace, "--state-dir", scratch.state])
        }
        let baseline = try await execute("true")
        let huge = try await execute("head -c 100000000 /dev/zero | tr '\\\\0' a; echo; echo END")
        #expect(huge.output.contains("truncated: true"))
        #expect(huge.output.contains("END\n[exit_code: 0"))
        #expect(huge.output.utf8.count < 40_000)
        let growth = huge.peakKB - baseline.peakKB
        #expect(growth < 20_000, "peak RSS grew by \(growth) KB for 100 MB of output")
        // The saved output is the host's disk: it stops at its cap, and says so at the end.
        let saved = try #require(huge.output.range(of: #"64 MiB of the 100000005 bytes are in (\S+)"#, options: .regularExpression))
        let path = String(huge.output[saved].split(separator: " ").last!)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(size > 64 << 20 && size < (64 << 20) + 200)
        let end = try String(decoding: Data(contentsOf: URL(fileURLWithPath: path)).suffix(150), as: UTF8.self)
        #expect(end.contains("the saved output stops here, at its 64 MiB cap"))
    }
}

@Suite struct SignalTests {
    /// A terminated toolhost takes the command it was running with it, even though the command
    /// leads a session of its own.
    @Test func sigtermKillsTheRunningCommand() async throws {
        let scratch = try Scratch()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: toolhostBinary)
        let duration = uniqueSleep()
        process.arguments = [
            "call", "execute", #"{"command":"sleep \#(duration) & touch started; wait"}"#,
            "--workspace", scratch.workspace, "--state-dir", scratch.state,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        #expect(await appears(withArgument: duration))
        process.terminate()
        await process.exited()
        #expect(process.terminationStatus == 128 + SIGTERM)
        #expect(await allGone(withArgument: duration))
    }

    /// A toolhost killed with SIGKILL cleans nothing up: its command keeps running in the
    /// session's cgroup until the next toolhost opens its first session, which kills what is in
    /// every cgroup whose owner is gone (once per parent cgroup: a sweep lists them all). The
    /// test fails when no sweep runs.
    @Test(.enabled(if: geteuid() == 0, "the pids cgroup is root's here"))
    func aKilledToolhostsCommandGoesWhenTheNextOneOpensASession() async throws {
        let scratch = try Scratch()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: toolhostBinary)
        let duration = uniqueSleep()
        process.arguments = ["call", "execute", #"{"command":"sleep \#(duration)"}"#, "--workspace", scratch.workspace, "--state-dir", scratch.state]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        #expect(await appears(withArgument: duration))
        kill(process.processIdentifier, SIGKILL)
        await process.exited()  // reaped: its pid no longer answers
        // Not checked that the command still runs here: a toolhost another test starts meanwhile
        // sweeps too. Without any sweep it would run on for 300 s.
        let next = try await scratch.call("execute", #"{"command":"true"}"#)
        #expect(next.status == 0, "\(next)")
        #expect(await allGone(withArgument: duration))
    }
}


@Suite struct SandboxCommandTests {
    @Test func doctorReportsMechanismsAndProfiles() async throws {
        let ran = try await runProgram(toolhostBinary, ["doctor"])
        #expect(ran.status == 0)
        for word in ["user_namespace", "seccomp", "cgroups", "default  ok", "strict   ok", "chromium"] {
            #expect(ran.stdout.contains(word), "\(word) in \(ran.stdout)")
        }
    }

    @Test func doctorSaysWhatIsMissing() async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["TOOLHOST_SIMULATE_MISSING"] = "seccomp"
        let ran = try await runProgram(toolhostBinary, ["doctor"], environment: environment)
        #expect(ran.status == 1)
        #expect(ran.stdout.contains("seccomp            missing: simulated"))
        #expect(ran.stdout.contains("default  refused: requires seccomp"))
    }

    /// --fast-cgroup-joins holds a cgroup hierarchy with favordynmods for as long as toolhost runs
    /// (every process is in its root, the command included) and mounts it nowhere, not in the
    /// command's view either; without the flag there is none. The run without comes first: once
    /// made, the hierarchy is the whole machine's until its holder exits.
    @Test(.enabled(if: geteuid() == 0, "making a cgroup hierarchy needs root"))
    func fastCgroupJoinsHoldAHierarchyMountedNowhere() async throws {
        let scratch = try Scratch()
        let base = ["sandbox", "--workspace", scratch.workspace, "--state-dir", scratch.state]
        let probe = ["--", "sh", "-c", "grep -c :name=toolhost: /proc/self/cgroup; grep -c name=toolhost /proc/self/mountinfo; true"]
        let without = try await scratch.toolhost(base + probe)
        #expect(without.stdout == "0\n0\n", "\(without)")
        let with = try await scratch.toolhost(base + ["--fast-cgroup-joins"] + probe)
        #expect(with.stdout == "1\n0\n", "\(with)")
        #expect(with.stderr.contains("note: --fast-cgroup-joins: the kernel favors cgroup moves"), "\(with)")
        let hostMounts = try String(contentsOfFile: "/proc/1/mountinfo", encoding: .utf8)
        #expect(!hostMounts.contains("name=toolhost"))
        let loose = try await scratch.toolhost(base + ["--fast-cgroup-joins", "--unconfined", "--", "true"])
        #expect(loose.status == 2 && loose.stderr.contains("drop one of them"), "\(loose)")
    }

    @Test func sandboxRunsOneConfinedCommandAndReportsTheRule() async throws {
        let scratch = try Scratch()
        let ran = try await scratch.toolhost(["sandbox", "--workspace", scratch.workspace, "--state-dir", scratch.state, "--", "sh", "-c", "echo inside; grep Seccomp: /proc/self/status; touch /usr/x"])
        #expect(ran.stdout.hasPrefix("inside\nSeccomp:\t2\n"))
        #expect(ran.stderr.contains("denied by filesystem (profile default)"))
        #expect(ran.status == 1)
        let timeout = try await scratch.toolhost(["sandbox", "--workspace", scratch.workspace, "--state-dir", scratch.state, "--timeout", "1", "--", "sleep", "30"])
        #expect(timeout.status == 124)
        let missing = try await scratch.toolhost(["sandbox", "--workspace", scratch.workspace, "--state-dir", scratch.state])
        #expect(missing.status == 2)
    }

    /// stdout and stderr stay apart, --stdin feeds the command through a pipe (never the host's
    /// descriptor), and --max-output keeps exactly the first N bytes.
    @Test func sandboxKeepsItsStreamsApartAndTakesInput() async throws {
        let scratch = try Scratch()
        let base = ["sandbox", "--workspace", scratch.workspace, "--state-dir", scratch.state]
        let streams = try await scratch.toolhost(base + ["--", "sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(streams.stdout == "out\n" && streams.stderr == "err\n" && streams.status == 3, "\(streams)")
        let fed = try await runProgram(
            toolhostBinary, base + ["--stdin", "--", "sh", "-c", "cat > got.txt; readlink /proc/self/fd/0"], stdin: "line one\nno newline")
        #expect(fed.status == 0 && fed.stdout.hasPrefix("pipe:"), "\(fed)")
        #expect(try String(contentsOfFile: scratch.workspace + "/got.txt", encoding: .utf8) == "line one\nno newline")
        let closed = try await scratch.toolhost(base + ["--", "cat"])
        #expect(closed.status == 0 && closed.stdout.isEmpty, "without --stdin the command reads /dev/null: \(closed)")
        let capped = try await scratch.toolhost(base + ["--max-output", "5", "--", "sh", "-c", "printf 0123456789"])
        #expect(capped.stdout == "01234" && capped.status == 0, "\(capped)")
        let nothing = try await scratch.toolhost(base + ["--max-output", "0", "--", "true"])
        #expect(nothing.status == 2 && nothing.stderr.contains("--max-output must be at least 1 byte"), "\(nothing)")
    }

    @Test func aMissingRequiredMechanismRefusesInsteadOfRunningUnconfined() async throws {
        let scratch = try Scratch()
        var environment = ProcessInfo.processInfo.environment
        environment["TOOLHOST_SIMULATE_MISSING"] = "pid_namespace"
        let ran = try await runProgram(
            toolhostBinary, ["call", "execute", #"{"command":"echo ran"}"#, "--workspace", scratch.workspace, "--state-dir", scratch.state],
            environment: environment)
        #expect(ran.status == 1)
        #expect(!ran.stdout.contains("ran"))
        #expect(ran.stderr.contains("profile default requires pid_namespace, which this machine does not allow"))
        #expect(ran.stderr.contains("Refusing to run unconfined"))
    }
}

@Suite struct DevToolsFloodTests {
    /// A page that fires 1,500 fetches with 1 MiB URLs sends Chromium's events for them to the host
    /// process, outside every cgroup: what toolhost keeps of them is bounded.
    @Test func aPageFloodingEventsLeavesTheHostProcessBounded() async throws {
        let scratch = try Scratch()
        try """
            <title>flood</title><script>
            const url = 'http://127.0.0.1:9/' + 'a'.repeat(1 << 20);
            for (let i = 0; i < 1500; i++) fetch(url + i).catch(() => {});
            </script>
            """.write(toFile: scratch.workspace + "/flood.html", atomically: true, encoding: .utf8)
        // toolhost's own high-water mark (VmHWM), sampled until it exits: Chromium's memory, which
        // wait4's ru_maxrss would fold in, is the browser cgroup's business, not this bound's.
        let measure = """
            import subprocess, sys, time
            p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            peak = 0
            while p.poll() is None:
                try:
                    for line in open(f"/proc/{p.pid}/status"):
                        if line.startswith("VmHWM:"): peak = max(peak, int(line.split()[1]))
                except OSError:
                    pass
                time.sleep(0.05)
            sys.stdout.write(f"{peak}\\n" + p.stdout.read().decode())
            """
        let ran = try await runProgram("/usr/bin/env", ["python3", "-c", measure, toolhostBinary, "call", "screenshot",
            #"{"url":"flood.html","timeout_seconds":30}"#, "--workspace", scratch.workspace, "--state-dir", scratch.state])
        let newline = ran.stdout.firstIndex(of: "\n") ?? ran.stdout.endIndex
        let peakKB = Int(ran.stdout[..<newline]) ?? Int.max
        let output = ran.stdout[newline...]
        // The page may finish or be given up on; either way the call ends with an answer.
        #expect(output.contains("title \"flood\"") || output.contains("did not finish"), "\(output.prefix(600))")
        #expect(peakKB < 512 << 10, "toolhost's peak RSS was \(peakKB >> 10) MiB under the flood")
    }
}
