import Foundation
import Testing

@Suite struct CLITests {
    @Test func toolsPrintsToolsJSON() throws {
        let ran = try runProgram(toolhostBinary, ["tools"])
        #expect(ran.status == 0)
        #expect(ran.stdout == (try String(contentsOfFile: repositoryRoot + "/tools.json", encoding: .utf8)))
    }

    @Test func versionAndHelpSpeakToANewcomer() throws {
        #expect(try runProgram(toolhostBinary, ["--version"]).stdout == "0.1.0\n")
        let help = try runProgram(toolhostBinary, ["--help"]).stdout
        for word in ["serve", "call", "tools", "workspace"] { #expect(help.contains(word)) }
        let callHelp = try runProgram(toolhostBinary, ["call", "--help"]).stdout
        #expect(callHelp.contains("Exit status: 0"))
        let serveHelp = try runProgram(toolhostBinary, ["serve", "--help"]).stdout
        #expect(serveHelp.contains("mcpServers"))
    }

    @Test func callExitCodes() throws {
        let scratch = try Scratch()
        let ok = try scratch.call("execute", #"{"command":"echo hi"}"#)
        #expect(ok.status == 0)
        #expect(ok.stdout.hasPrefix("hi\n[exit_code: 0"))
        #expect(ok.stderr.contains("UNCONFINED"), "running unconfined must be said loudly")
        let failed = try scratch.call("read_file", #"{"path":"missing.txt"}"#)
        #expect(failed.status == 1)
        #expect(failed.stdout.contains("does not exist"))
        for bad in [#"{"path":"#, #"{"pat":"x"}"#, "[1]"] {
            #expect(try scratch.call("read_file", bad).status == 2)
        }
        #expect(try scratch.call("no_such_tool", "{}").status == 2)
        let noWorkspace = try runProgram(toolhostBinary, ["call", "execute", "{}"])
        #expect(noWorkspace.status == 2)
        #expect(noWorkspace.stderr.contains("--workspace"))
        let missingWorkspace = try runProgram(toolhostBinary, ["call", "execute", "{}", "--workspace", "/nonexistent/ws"])
        #expect(missingWorkspace.status == 2)
        #expect(missingWorkspace.stderr.contains("does not exist"))
        let badSession = try scratch.call("execute", #"{"command":"true"}"#, session: "../x")
        #expect(badSession.status == 2)
    }

    @Test func argumentsCanComeFromStdin() throws {
        let scratch = try Scratch()
        let ran = try scratch.toolhost(
            ["call", "write_file", "-", "--workspace", scratch.workspace, "--state-dir", scratch.state],
            stdin: #"{"path":"a.txt","content":"from stdin\n"}"#)
        #expect(ran.status == 0)
        #expect(try String(contentsOfFile: scratch.workspace + "/a.txt", encoding: .utf8) == "from stdin\n")
    }

    @Test func cwdPersistsAcrossSeparateCalls() throws {
        let scratch = try Scratch()
        try FileManager.default.createDirectory(atPath: scratch.workspace + "/src", withIntermediateDirectories: true)
        #expect(try scratch.call("execute", #"{"command":"cd src"}"#).status == 0)
        #expect(try scratch.call("execute", #"{"command":"pwd"}"#).stdout.hasPrefix(scratch.workspace + "/src\n"))
    }

    /// The process's peak memory is measured by the kernel for the finished child.
    @Test func a50MBFileIsNeverLoadedWhole() throws {
        let scratch = try Scratch()
        let path = scratch.workspace + "/big.log"
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        let block = Data(String(repeating: String(repeating: "z", count: 99) + "\n", count: 10_000).utf8)
        for _ in 0..<50 { handle.write(block) }
        try handle.close()
        let ran = try runWithPeakMemory(
            toolhostBinary,
            ["call", "read_file", #"{"path":"big.log","offset":499999}"#, "--workspace", scratch.workspace, "--state-dir", scratch.state])
        #expect(ran.output.contains("lines 499999-500000 of 500000, 50000000 bytes"))
        #expect(ran.peakKB < 45_000, "peak RSS \(ran.peakKB) KB: the 50 MB file must be streamed, not loaded")
    }
}

/// Runs a program with output to a file and returns its peak resident memory, read with wait4.
func runWithPeakMemory(_ path: String, _ arguments: [String]) throws -> (output: String, peakKB: Int) {
    let outPath = FileManager.default.temporaryDirectory.path + "/toolhost-peak-\(UUID().uuidString.prefix(8))"
    defer { try? FileManager.default.removeItem(atPath: outPath) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    #expect(posix_spawn(&pid, path, &actions, nil, argv, environ) == 0)
    var status: Int32 = 0
    var usage = rusage()
    wait4(pid, &status, 0, &usage)
    return (try String(contentsOfFile: outPath, encoding: .utf8), usage.ru_maxrss)
}
