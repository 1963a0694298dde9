import CLibSeccomp
import Foundation
import JSONCore

/// A seccomp policy in the OCI runtime-spec form (the form of Docker's default profile):
/// `defaultAction`, `architectures`, `syscalls[{names, action, errnoRet, args[{index, value, valueTwo, op}]}]`.
public struct SeccompPolicy: Sendable, Equatable {
    public struct Rule: Sendable, Equatable {
        public var names: [String]
        public var action: String
        public var errnoRet: UInt16?
        public var args: [Argument]
    }

    public struct Argument: Sendable, Equatable {
        public var index: UInt32
        public var value: UInt64
        public var valueTwo: UInt64
        public var op: String
    }

    public var defaultAction: String
    public var defaultErrnoRet: UInt16?
    public var architectures: [String]
    public var syscalls: [Rule]

    static let actions = ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_LOG"]
    static let operators: [String: scmp_compare] = [
        "SCMP_CMP_NE": SCMP_CMP_NE, "SCMP_CMP_LT": SCMP_CMP_LT, "SCMP_CMP_LE": SCMP_CMP_LE, "SCMP_CMP_EQ": SCMP_CMP_EQ,
        "SCMP_CMP_GE": SCMP_CMP_GE, "SCMP_CMP_GT": SCMP_CMP_GT, "SCMP_CMP_MASKED_EQ": SCMP_CMP_MASKED_EQ,
    ]
    /// OCI names to libseccomp's own (the SCMP_ARCH_* tokens are macros Swift cannot see).
    static let architectureNames: [String: String] = [
        "SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X32": "x32",
        "SCMP_ARCH_AARCH64": "aarch64", "SCMP_ARCH_ARM": "arm",
    ]

    /// The policy every built-in profile extends (sandbox-profiles/seccomp-base.json).
    public static let base: SeccompPolicy = {
        do {
            let file = "sandbox-profiles/seccomp-base.json"
            return try SeccompPolicy(Fields(try JSONValue.parse(Data(PackageResources.seccomp_base_json)), file: file, path: ""))
        } catch {
            // The file is built into the binary and tested; a broken one is a build that must not run.
            fatalError("the built-in seccomp base policy does not load: \(error)")
        }
    }()

    /// A policy in full, or `{"extends": "base", "syscalls": [...]}`: the base policy with the
    /// profile's own rules after it. Those may add to the base, never change it, so a rule that
    /// names a syscall the base rules already name is refused.
    init(_ fields: Fields) throws {
        if fields.values["extends"] != nil {
            try fields.allow(["extends", "syscalls", "comment"])
            let extends = try fields.string("extends")!
            guard extends == "base" else { throw fields.fail("extends", "unknown policy '\(extends)'; allowed: base") }
            var policy = Self.base
            let added = fields.values["syscalls"] == nil ? [] : try Self.rules(fields)
            let named = Dictionary(policy.syscalls.flatMap { rule in rule.names.map { ($0, rule.action) } }, uniquingKeysWith: { first, _ in first })
            for (index, rule) in added.enumerated() {
                if let name = rule.names.first(where: { named[$0] != nil }) {
                    throw fields.fail(
                        "syscalls[\(index)]",
                        "\(name) is already ruled by the base policy (\(named[name]!)); a profile that extends it may add rules, not change them. Write the whole policy (without extends) to change it")
                }
            }
            policy.syscalls += added
            self = policy
            return
        }
        try fields.allow(["defaultAction", "defaultErrnoRet", "architectures", "syscalls", "comment"])
        defaultAction = try Self.action(fields, "defaultAction")
        defaultErrnoRet = try fields.unsigned("defaultErrnoRet").map { UInt16(clamping: $0) }
        architectures = try fields.strings("architectures")
        for (index, name) in architectures.enumerated() where Self.architectureNames[name] == nil {
            throw fields.fail("architectures[\(index)]", "unknown architecture '\(name)'; allowed: \(Self.architectureNames.keys.sorted().joined(separator: ", "))")
        }
        syscalls = try Self.rules(fields)
    }

    private static func rules(_ fields: Fields) throws -> [Rule] {
        guard let rules = fields.values["syscalls"]?.arrayValue else { throw fields.fail("syscalls", "must be an array") }
        return try rules.enumerated().map { index, value in
            let rule = try Fields(value, file: fields.file, path: fields.field("syscalls[\(index)]"))
            try rule.allow(["names", "action", "errnoRet", "args", "comment"])
            let names = try rule.strings("names")
            guard !names.isEmpty else { throw rule.fail("names", "must name at least one syscall") }
            let args = try (rule.values["args"]?.arrayValue ?? []).enumerated().map { argIndex, value in
                let arg = try Fields(value, file: fields.file, path: rule.field("args[\(argIndex)]"))
                try arg.allow(["index", "value", "valueTwo", "op"])
                let op = try arg.string("op")!
                guard operators[op] != nil else {
                    throw arg.fail("op", "unknown operator '\(op)'; allowed: \(operators.keys.sorted().joined(separator: ", "))")
                }
                guard let position = try arg.unsigned("index"), position < 6 else { throw arg.fail("index", "must be 0 to 5") }
                return Argument(
                    index: UInt32(position), value: try arg.unsigned("value") ?? 0, valueTwo: try arg.unsigned("valueTwo") ?? 0, op: op)
            }
            return Rule(
                names: names, action: try action(rule, "action"),
                errnoRet: try rule.unsigned("errnoRet").map { UInt16(clamping: $0) }, args: args)
        }
    }

    private static func action(_ fields: Fields, _ key: String) throws -> String {
        let action = try fields.string(key)!
        guard actions.contains(action) else {
            throw fields.fail(key, "unknown action '\(action)'; allowed: \(actions.joined(separator: ", "))")
        }
        return action
    }

    private static func actionValue(_ action: String, errno: UInt16?) -> UInt32 {
        switch action {
        case "SCMP_ACT_ALLOW": clibseccomp_act_allow()
        case "SCMP_ACT_ERRNO": clibseccomp_act_errno(errno ?? UInt16(EPERM))
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": clibseccomp_act_kill_thread()
        case "SCMP_ACT_KILL_PROCESS": clibseccomp_act_kill_process()
        case "SCMP_ACT_TRAP": clibseccomp_act_trap()
        default: clibseccomp_act_log()
        }
    }

    /// Compiles the policy with libseccomp and exports it as a BPF program (raw `sock_filter`
    /// records), ready for the child to install with no allocation. Syscalls this architecture
    /// does not have are skipped, as Docker's runtime does.
    public func compileBPF() throws -> [UInt8] {
        guard let context = seccomp_init(Self.actionValue(defaultAction, errno: defaultErrnoRet)) else {
            throw SeccompError(message: "seccomp_init failed")
        }
        defer { seccomp_release(context) }
        for name in architectures {
            let result = seccomp_arch_add(context, seccomp_arch_resolve_name(Self.architectureNames[name]!))
            guard result == 0 || result == -EEXIST else {
                throw SeccompError(message: "cannot add architecture \(name): \(String(cString: strerror(-result)))")
            }
        }
        for rule in syscalls {
            let action = Self.actionValue(rule.action, errno: rule.errnoRet)
            var comparisons = rule.args.map {
                scmp_arg_cmp(arg: $0.index, op: Self.operators[$0.op]!, datum_a: $0.value, datum_b: $0.valueTwo)
            }
            for name in rule.names {
                let number = seccomp_syscall_resolve_name(name)
                if number == __NR_SCMP_ERROR { continue }
                let result = seccomp_rule_add_array(context, action, number, UInt32(comparisons.count), &comparisons)
                guard result == 0 else {
                    throw SeccompError(message: "cannot add the rule for \(name): \(String(cString: strerror(-result)))")
                }
            }
        }
        let fd = clibseccomp_memfd()
        guard fd >= 0 else { throw SeccompError(message: "memfd_create failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let exported = seccomp_export_bpf(context, fd)
        guard exported == 0 else { throw SeccompError(message: "seccomp_export_bpf failed: \(String(cString: strerror(-exported)))") }
        let size = Int(lseek(fd, 0, SEEK_END))
        lseek(fd, 0, SEEK_SET)
        var program = [UInt8](repeating: 0, count: size)
        let read = program.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, size) }
        guard read == size, size % 8 == 0, size > 0 else { throw SeccompError(message: "the exported BPF program is malformed") }
        return program
    }
}

public struct SeccompError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { "seccomp: \(message)" }
}
