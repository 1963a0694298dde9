import Foundation
import Sandbox
import Testing

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

    @Test func everyBuiltInProfileLoadsAndCompiles() throws {
        for name in SandboxProfile.builtInNames {
            let profile = try SandboxProfile.load(name)
            #expect(try profile.seccomp.compileBPF().count % 8 == 0)
        }
    }

    @Test func badFieldsAreNamed() {
        refused("profile test.json: field 'netwrok': unknown field; allowed: description, requires") { $0["netwrok"] = "none" }
        refused("field 'network': 'internet' is not allowed; allowed: none, loopback, host") { $0["network"] = "internet" }
        refused("field 'limits.memory_mb': must be a whole number above 0") {
            var limits = $0["limits"] as! [String: Any]
            limits["memory_mb"] = "lots"
            $0["limits"] = limits
        }
        refused("field 'limits.processes': must be a whole number above 0") {
            var limits = $0["limits"] as! [String: Any]
            limits["processes"] = true
            $0["limits"] = limits
        }
        refused("field 'requires[0]': unknown mechanism 'magic'") { $0["requires"] = ["magic"] }
        refused("field 'filesystem.hidden': missing (use [] for none)") {
            var filesystem = $0["filesystem"] as! [String: Any]
            filesystem["hidden"] = nil
            $0["filesystem"] = filesystem
        }
        refused("field 'seccomp.syscalls[0].args[0].op': unknown operator 'SCMP_CMP_LIKE'") {
            var seccomp = $0["seccomp"] as! [String: Any]
            seccomp["syscalls"] = [["names": ["clone"], "action": "SCMP_ACT_ERRNO", "args": [["index": 0, "value": 1, "op": "SCMP_CMP_LIKE"]]]]
            $0["seccomp"] = seccomp
        }
        refused("field 'seccomp.defaultAction': unknown action 'SCMP_ACT_MAYBE'") {
            var seccomp = $0["seccomp"] as! [String: Any]
            seccomp["defaultAction"] = "SCMP_ACT_MAYBE"
            $0["seccomp"] = seccomp
        }
        refused("field 'seccomp.architectures[0]': unknown architecture 'SCMP_ARCH_Z80'") {
            var seccomp = $0["seccomp"] as! [String: Any]
            seccomp["architectures"] = ["SCMP_ARCH_Z80"]
            $0["seccomp"] = seccomp
        }
    }

    @Test func unknownNamesAndUnreadableFilesSayWhatExists() {
        #expect { try SandboxProfile.load("paranoid") } throws: { "\($0)".contains("the profiles are default, build, network, browser, strict") }
        #expect { try SandboxProfile.load("/nonexistent/p.json") } throws: { "\($0)".contains("cannot read the file") }
    }
}
