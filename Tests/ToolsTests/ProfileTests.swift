import Foundation
import Sandbox
import TestSupport
import Testing
@testable import Tools

/// Broken profile files are refused with the file, the field and what is allowed.
@Suite struct ProfileTests {
    static let defaultJSON = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("sandbox-profiles/default.json")

    /// The default profile with one edit, parsed as "test.json".
    private func load(_ edit: (inout [String: Any]) -> Void) throws -> SandboxProfile {
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.defaultJSON)) as? [String: Any])
        edit(&object)
        return try SandboxProfile.parse(try JSONSerialization.data(withJSONObject: object), name: "test", file: "test.json")
    }

    private func refused(_ expected: String, _ edit: @escaping (inout [String: Any]) -> Void) {
        #expect {
            try load(edit)
        } throws: { error in
            "\(error)".contains(expected)
        }
    }

    /// An edit that sets `key` inside the object `section` (nil removes it).
    private func setting(_ section: String, _ key: String, _ value: Any?) -> (inout [String: Any]) -> Void {
        { profile in
            var object = profile[section] as! [String: Any]
            object[key] = value
            profile[section] = object
        }
    }

    @Test func everyBuiltInProfileLoadsAndCompiles() throws {
        for name in SandboxProfile.builtInNames {
            let profile = try SandboxProfile.load(name)
            #expect(try profile.seccomp.compileBPF().count % 8 == 0)
        }
    }

    @Test func badFieldsAreNamed() {
        refused("profile test.json: field 'netwrok': unknown field; allowed: description, requires") { $0["netwrok"] = "none" }
        refused("field 'network': 'internet' is not allowed; allowed: none, loopback, host") { $0["network"] = "internet" }
        refused("field 'limits.memory_mb': must be a whole number above 0", setting("limits", "memory_mb", "lots"))
        refused("field 'limits.processes': must be a whole number above 0", setting("limits", "processes", true))
        refused("field 'limits.processes': must be a whole number above 0", setting("limits", "processes", 1.5))
        refused("field 'limits.open_files': must be a whole number above 0", setting("limits", "open_files", 0))
        for bad: Any in [-1, 2.5, true, "3"] {
            refused("field 'limits.address_space_mb': must be a whole number from 0 to 2^63 - 1", setting("limits", "address_space_mb", bad))
        }
        refused("field 'requires': must be an array of strings") { $0["requires"] = ["seccomp", 1] }
        refused("field 'env.set': must be an object of strings", setting("env", "set", ["A": "x", "B": false]))
        refused("field 'requires[0]': unknown mechanism 'magic'") { $0["requires"] = ["magic"] }
        refused("field 'filesystem.hidden': missing (use [] for none)", setting("filesystem", "hidden", nil))
        refused("field 'seccomp.syscalls[0].args[0].op': unknown operator 'SCMP_CMP_LIKE'", setting("seccomp", "syscalls", [["names": ["clone"], "action": "SCMP_ACT_ERRNO", "args": [["index": 0, "value": 1, "op": "SCMP_CMP_LIKE"]]]]))
        refused("field 'seccomp.defaultAction': unknown action 'SCMP_ACT_MAYBE'", wholePolicy("defaultAction", "SCMP_ACT_MAYBE"))
        refused("field 'seccomp.architectures[0]': unknown architecture 'SCMP_ARCH_Z80'", wholePolicy("architectures", ["SCMP_ARCH_Z80"]))
        refused("field 'seccomp.extends': unknown policy 'docker'; allowed: base", setting("seccomp", "extends", "docker"))
        refused("field 'seccomp.defaultAction': unknown field; allowed: extends, syscalls, comment", setting("seccomp", "defaultAction", "SCMP_ACT_LOG"))
    }

    /// An edit that writes the base policy out in full (no `extends`) with `key` set.
    private func wholePolicy(_ key: String, _ value: Any) -> (inout [String: Any]) -> Void {
        { profile in
            var policy = (try? JSONSerialization.jsonObject(with: Data(contentsOf: Self.basePolicyJSON))) as! [String: Any]
            policy[key] = value
            profile["seccomp"] = policy
        }
    }

    static let basePolicyJSON = defaultJSON.deletingLastPathComponent().appendingPathComponent("seccomp-base.json")

    /// One policy for every built-in profile: each extends the base and compiles to its program,
    /// and the base written out in full is the same policy, so the two forms agree.
    @Test func everyBuiltInProfileHasTheBasePolicy() throws {
        let base = try #require(SeccompPolicy.base.syscalls.first { $0.names.contains("ptrace") }, "the base refuses ptrace")
        #expect(base.action == "SCMP_ACT_ERRNO")
        for name in SandboxProfile.builtInNames {
            let profile = try SandboxProfile.load(name)
            #expect(profile.seccomp == SeccompPolicy.base, "profile \(name) has a policy of its own")
            #expect(try profile.seccomp.compileBPF() == SeccompPolicy.base.compileBPF())
        }
        let written = try load(wholePolicy("comment", "the base, in full"))
        #expect(written.seccomp == SeccompPolicy.base)
    }

    /// A profile that extends the base may add a rule and may not loosen one the base has.
    @Test func aProfileAddsToTheBaseAndCannotChangeIt() throws {
        let extra: [String: Any] = ["names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1]
        let profile = try load(setting("seccomp", "syscalls", [extra]))
        #expect(Array(profile.seccomp.syscalls.dropLast()) == SeccompPolicy.base.syscalls)
        let added = try #require(profile.seccomp.syscalls.last)
        #expect(added.names == ["mkdir", "mkdirat"] && added.action == "SCMP_ACT_ERRNO" && added.errnoRet == 1)
        refused("field 'seccomp.syscalls[1]': ptrace is already ruled by the base policy (SCMP_ACT_ERRNO)", setting("seccomp", "syscalls", [extra, ["names": ["ptrace"], "action": "SCMP_ACT_ALLOW"]]))
    }

    /// The added rule holds in a real sandbox, and so does the base beside it.
    @Test func anAddedRuleAndTheBaseBothHoldInTheSandbox() async throws {
        let scratch = try Scratch()
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.defaultJSON)) as? [String: Any])
        object["seccomp"] = ["extends": "base", "syscalls": [["names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1]]]
        let path = scratch.root + "/no-mkdir.json"
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        let session = try scratch.session("extended", profile: path, ownProfileOnly: true)
        let result = await call("execute", ["command": "mkdir made 2>&1; unshare -U true 2>&1; touch file && echo touched"], in: session)
        let lines = result.text.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("mkdir: cannot create directory") && $0.hasSuffix("Operation not permitted") }, "\(result.text)")
        #expect(result.text.contains("unshare failed: Operation not permitted"), "\(result.text)")
        #expect(result.text.contains("touched"), "\(result.text)")
        #expect(!FileManager.default.fileExists(atPath: scratch.workspacePath + "/made"))
    }

    @Test func unknownNamesAndUnreadableFilesSayWhatExists() {
        #expect { try SandboxProfile.load("paranoid") } throws: { "\($0)".contains("the profiles are default, build, network, browser, strict") }
        #expect { try SandboxProfile.load("/nonexistent/p.json") } throws: { "\($0)".contains("cannot read the file") }
    }
}
