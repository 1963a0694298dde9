import ArgumentParser
import Foundation
import Sandbox
import WorkspaceAccess

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Report what this machine lets toolhost use: namespaces, seccomp, cgroups, profiles, tools.",
        discussion: """
            Each mechanism is tried for real in a throwaway child. A profile lists the mechanisms it \
            requires; toolhost refuses to run a profile whose requirements are missing, and says why.
            Exit status: 0 when the default profile can confine commands here, 1 otherwise.
            """)

    func run() throws {
        let mechanisms = Mechanisms.probe()
        var kernel = utsname()
        uname(&kernel)
        let release = withUnsafeBytes(of: &kernel.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        print("toolhost \(Toolhost.version) on Linux \(release), running as uid \(getuid())\(geteuid() == 0 ? " (root)" : "")")
        print("\nmechanisms:")
        for mechanism in SandboxProfile.Mechanism.allCases {
            let state = mechanisms.missing[mechanism].map { "missing: \($0)" } ?? "yes"
            print("  \(mechanism.rawValue.padding(toLength: 18, withPad: " ", startingAt: 0)) \(state)")
        }
        let cgroupPlaces = [ProcessCgroup.Controller.pids, .memory].map { controller in
            "\(controller.rawValue): " + (ProcessCgroup.parent(for: controller).map { "\($0.path)\($0.v2 ? " (v2)" : " (v1)")" } ?? "not writable")
        }
        print("  cgroup controllers  \(cgroupPlaces.joined(separator: "; "))")
        print("  cgroup joins        \(ProcessCgroup.movesSummary)")
        print("  commands run as     \(UserMapping.summary)")
        print("  host-side opens     \(Beneath.summary)")
        print("\nprofiles:")
        var defaultWorks = false
        for name in SandboxProfile.builtInNames {
            let line: String
            do {
                let profile = try SandboxProfile.load(name)
                let missing = profile.requires.filter { !mechanisms.has($0) }
                let bpf = try profile.seccomp.compileBPF()
                if missing.isEmpty {
                    let network = profile.network == .host
                        ? "host: shares the host's whole network, its loopback servers and abstract sockets included"
                        : profile.network.rawValue
                    line = "ok (network \(network), seccomp filter \(bpf.count / 8) instructions)"
                    if name == "default" { defaultWorks = true }
                } else {
                    line = "refused: requires \(missing.map(\.rawValue).joined(separator: ", "))"
                }
            } catch {
                line = "broken: \(error)"
            }
            print("  \(name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(line)")
        }
        print("\ntools:")
        let packages = ["chromium": "chromium", "tsc": "node-typescript", "esbuild": "esbuild", "node": "nodejs", "npm": "npm", "git": "git", "bwrap": "bubblewrap"]
        for (tool, package) in packages.sorted(by: { $0.key < $1.key }) {
            let path = Self.which(tool).map { "found at \($0)" } ?? "missing: apt-get install \(package)"
            print("  \(tool.padding(toLength: 8, withPad: " ", startingAt: 0)) \(path)")
        }
        if !defaultWorks { throw ExitCode(1) }
    }

    static func which(_ tool: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(tool)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
