import Foundation
@testable import Sandbox
import TestSupport
import Testing
@testable import Tools

/// The disk budget against real bursts: parallel writers, fallocate, a background writer and a
/// flood of empty files, each measured from the host afterwards (the bytes the workspace holds).
/// The budget watches the workspace's whole filesystem, so each test's workspace is a filesystem
/// of its own (a tmpfs, as root): the other suites writing meanwhile would count against it too.
@Suite(.serialized) final class DiskBudgetTests {
    static let budgetMB = 64
    let scratch: Scratch
    let runner: ConfinedRunner
    let session: Session
    let mounted: Bool

    init() throws {
        scratch = try Scratch()
        mounted = geteuid() == 0 && mount("tmpfs", scratch.workspacePath, "tmpfs", UInt(MS_NOSUID | MS_NODEV), "size=2g,mode=0755") == 0
        var profile = try SandboxProfile.load("default")
        profile.limits.diskMB = Self.budgetMB
        runner = try ConfinedRunner(
            profile: profile, workspace: scratch.workspacePath, stateDirectory: scratch.statePath, host: [:], mechanisms: machineMechanisms)
        session = try Session(workspace: scratch.workspace, state: StateDirectory(scratch.statePath), runner: runner)
    }

    deinit {
        if mounted { umount2(scratch.workspacePath, Int32(MNT_DETACH)) }
    }

    /// What the workspace's files take on the disk, in bytes, counted as the budget counts them.
    func held() -> Int64 {
        var total: Int64 = 0
        let walker = FileManager.default.enumerator(atPath: scratch.workspacePath)
        while let name = walker?.nextObject() as? String {
            var info = stat()
            if lstat(scratch.workspacePath + "/" + name, &info) == 0 { total += Int64(info.st_blocks) * 512 + DiskBudget.bytesPerInode }
        }
        return total
    }

    func execute(_ command: String, background: Bool = false) async -> ToolResult {
        await call("execute", ["command": .string(command), "background": .bool(background), "timeout_seconds": 120], in: session)
    }

    var overshootMB: Double { Double(held() - (Int64(Self.budgetMB) << 20)) / 1_048_576 }

    /// Eight writers at once and a 4 GB fallocate: stopped with the rule named, a few MB past
    /// the budget at most, and the next write is refused until something is removed.
    @Test func aParallelBurstStopsAtTheBudget() async throws {
        let burst = await execute(
            "for i in 1 2 3 4 5 6 7 8; do head -c 400000000 /dev/zero > big$i & done; fallocate -l 4G huge; wait; echo finished")
        // Stopped by the sampler, or by RLIMIT_FSIZE at what was left: the note names the budget.
        #expect(burst.text.contains("limits.disk_mb = 64"), "\(burst.text)")
        #expect(!burst.text.contains("finished"))
        let overshoot = overshootMB
        print("disk budget: a parallel burst ends \(overshoot) MB past the 64 MB budget")
        // A few MB in practice; the bound leaves room for a loaded machine, and is still far
        // from the 7 GB the burst asks for.
        #expect(overshoot < 64, "\(overshoot) MB past the budget")

        // The budget is spent: the next write stops at once, and the note names the budget.
        let more = await execute("head -c 20000000 /dev/zero > more")
        #expect(more.text.contains("limits.disk_mb = 64"), "\(more.text)")
        // Removing what is not needed gives the budget back.
        _ = await execute("rm -f big* huge more")
        let after = await execute("head -c 2000000 /dev/zero > small && echo wrote")
        #expect(after.text.contains("wrote"), "\(after.text)")
    }

    /// Fifty fallocates at once, each under what is left: reserving space takes no time, so each
    /// must be refused or turned into writes the sampler sees.
    @Test func parallelFallocatesDoNotOutrunTheBudget() async throws {
        let burst = await execute("for i in $(seq 1 50); do fallocate -l 60M f$i & done; wait; echo finished")
        let overshoot = overshootMB
        print("disk budget: 50 parallel fallocates end \(overshoot) MB past the 64 MB budget")
        #expect(overshoot < 64, "\(overshoot) MB past the budget: \(burst.text.suffix(300))")
        // posix_fallocate, which programs use, still works: glibc writes the zeros itself.
        _ = await execute("rm -f f*")
        let posix = await execute("python3 -c \"import os; f = os.open('p', os.O_CREAT | os.O_WRONLY); os.posix_fallocate(f, 0, 1000000); print('reserved')\"")
        #expect(posix.text.contains("reserved"), "\(posix.text)")
        #expect((try? FileManager.default.attributesOfItem(atPath: scratch.workspacePath + "/p")[.size] as? Int) == 1_000_000)
    }

    /// A background writer is metered and stopped like a foreground one.
    @Test func aBackgroundWriterIsStoppedToo() async throws {
        // Files of 1 MB, each under what is left (RLIMIT_FSIZE is what is left at the spawn), so
        // RLIMIT_FSIZE alone would not stop them. The writer waits for `go`, made once the start
        // has returned: a start is judged after 300 ms, and under a whole CI suite that wait once
        // ran past a fixed `sleep 0.5`, so the writer spent the budget and was stopped before the
        // judgement ("exited at once"), and a retry found no budget left.
        let writer = "while [ ! -e go ]; do sleep 0.05; done; for i in $(seq 1 200); do head -c 1000000 /dev/zero > bg$i; done; echo done-writing"
        let started = await execute(writer, background: true)
        #expect(!started.isError, "\(started.text.prefix(600))")
        try scratch.write("go", "")
        for _ in 0..<600 {
            try await Task.sleep(for: .milliseconds(50))
            if !(await call("list_background", [:], in: session)).text.contains("running") { break }
        }
        let overshoot = overshootMB
        print("disk budget: a background writer ends \(overshoot) MB past the 64 MB budget")
        #expect(overshoot < 64, "\(overshoot) MB past the budget")
        _ = await call("stop_background", ["id": "all"], in: session)
    }

    /// A background command the budget stops says that it was the budget: in the tool's answer
    /// when that came before its start was judged ("exited at once"), else in its log. Which of
    /// the two happens is timing (the start is judged after 300 ms, and a loaded CI once took
    /// longer than that to pass the budget even with four 20 MB writers); either must name it.
    @Test func aBackgroundCommandStoppedByTheBudgetNamesIt() async throws {
        let started = await execute("for i in $(seq 1 40); do head -c 20000000 /dev/zero > f$i; done", background: true)
        let budget = "past its budget (limits.disk_mb = 64)"
        if started.isError {
            #expect(started.text.contains("exited at once") && started.text.contains(budget), "\(started.text.prefix(600))")
            return
        }
        let log = try #require(started.structured?["log"]?.stringValue, "\(started.text)")
        for _ in 0..<600 {
            if !(await call("list_background", [:], in: session)).text.contains("running") { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let written = try String(contentsOfFile: log, encoding: .utf8)
        #expect(written.contains(budget), "\(written.suffix(600))")
    }

    /// Empty files cost inodes, not blocks: each counts, so a flood of them stops too.
    @Test func aFloodOfEmptyFilesIsCounted() async throws {
        let flood = await execute("python3 -c \"[open(f'e{i}', 'w').close() for i in range(200000)]\"; echo finished")
        #expect(flood.text.contains("past its budget"), "\(flood.text.suffix(600))")
        let files = try FileManager.default.contentsOfDirectory(atPath: scratch.workspacePath).count
        #expect(files < 20_000, "\(files) files")
    }
}
