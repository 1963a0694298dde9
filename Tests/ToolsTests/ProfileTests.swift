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
        refused("field 'requires[0]': unknown mechanism 'magic'") { $0["requires"] = ["magic"] }
        refused("field 'filesystem.hidden': missing (use [] for none)", setting("filesystem", "hidden", nil))
        refused("field 'seccomp.syscalls[0].args[0].op': unknown operator 'SCMP_CMP_LIKE'", setting("seccomp", "syscalls", [["names": ["clone"], "action": "SCMP_ACT_ERRNO", "args": [["index": 0, "value": 1, "op": "SCMP_CMP_LIKE"]]]]))
        refused("field 'seccomp.defaultAction': unknown action 'SCMP_ACT_MAYBE'", setting("seccomp", "defaultAction", "SCMP_ACT_MAYBE"))
        refused("field 'seccomp.architectures[0]': unknown architecture 'SCMP_ARCH_Z80'", setting("seccomp", "architectures", ["SCMP_ARCH_Z80"]))
    }

    @Test func unknownNamesAndUnreadableFilesSayWhatExists() {
        #expect { try SandboxProfile.load("paranoid") } throws: { "\($0)".contains("the profiles are default, build, network, browser, strict") }
        #expect { try SandboxProfile.load("/nonexistent/p.json") } throws: { "\($0)".contains("cannot read the file") }
    }
}
