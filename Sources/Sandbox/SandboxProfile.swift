public import Egress
public import Foundation
import JSONCore

/// A sandbox profile (sandbox-profiles/NAME.json): what a command may see, write, reach and use.
/// Loading validates every field; an error names the file, the field and what is allowed.
public struct SandboxProfile: Sendable, Equatable {
    public enum Network: String, Sendable, CaseIterable {
        /// A network namespace with nothing in it, not even loopback; new for every command.
        case none
        /// Loopback only, one namespace per session: servers started in it are reachable by later
        /// commands of the same session and by nothing outside.
        case loopback
        /// The host's network.
        case host
        /// Loopback, one namespace per session, plus toolhost's egress proxy in it, which reaches
        /// what the profile's `egress` allows and nothing else.
        case allowlist
    }

    /// Mechanisms a profile cannot do without; missing ones make toolhost refuse, never run unconfined.
    public enum Mechanism: String, Sendable, CaseIterable {
        case userNamespace = "user_namespace"
        case mountNamespace = "mount_namespace"
        case pidNamespace = "pid_namespace"
        case networkNamespace = "network_namespace"
        case seccomp
        case cgroups
    }

    public struct Limits: Sendable, Equatable {
        public var wallSeconds: Int
        public var cpuSeconds: Int
        public var memoryMB: Int
        /// RLIMIT_AS per process; nil for none. Chromium reserves terabytes of address space it
        /// never uses (V8's cage) and traps under any limit, so the browser profile sets 0 and
        /// leaves memory to the cgroup. Default: memory_mb.
        public var addressSpaceMB: Int?
        public var processes: Int
        public var fileSizeMB: Int
        public var openFiles: Int
        public var outputBytes: Int
        /// How much a session's commands may grow the workspace's disk (see `DiskBudget`). Default 8192.
        public var diskMB: Int = 8192
    }

    public struct Filesystem: Sendable, Equatable {
        /// Paths bound read-write (`${WORKSPACE}` among them); everything else is read-only.
        public var writable: [String]
        /// Paths inside the writable ones that stay read-only (.git/hooks).
        public var readOnly: [String]
        /// Paths covered: an empty folder over folders, /dev/null over files.
        public var hidden: [String]
    }

    public struct Environment: Sendable, Equatable {
        /// Host variables passed through when set.
        public var pass: [String]
        /// Variables set for every command.
        public var set: [String: String]
    }

    public var name: String
    public var description: String
    public var requires: [Mechanism]
    public var filesystem: Filesystem
    public var network: Network
    public var limits: Limits
    public var environment: Environment
    public var seccomp: SeccompPolicy
    /// What `network: "allowlist"` lets through; nil for every other network mode.
    public var egress: EgressPolicy?

    /// The profiles built into the binary, from sandbox-profiles/.
    public static let builtInNames = ["default", "build", "network", "browser", "strict"]

    private static let builtIn: [String: [UInt8]] = [
        "default": PackageResources.default_json, "build": PackageResources.build_json,
        "network": PackageResources.network_json, "browser": PackageResources.browser_json,
        "strict": PackageResources.strict_json,
    ]

    /// A built-in profile by name, or a profile file by path (anything with a '/' or ending in .json).
    public static func load(_ nameOrPath: String) throws -> SandboxProfile {
        if let bytes = builtIn[nameOrPath] {
            return try parse(Data(bytes), name: nameOrPath, file: "sandbox-profiles/\(nameOrPath).json")
        }
        guard nameOrPath.contains("/") || nameOrPath.hasSuffix(".json") else {
            throw ProfileError(
                file: nameOrPath, field: "", message: "no such profile; the profiles are \(builtInNames.joined(separator: ", ")), or give the path of a profile file")
        }
        guard let data = FileManager.default.contents(atPath: nameOrPath) else {
            throw ProfileError(file: nameOrPath, field: "", message: "cannot read the file")
        }
        let name = ((nameOrPath as NSString).lastPathComponent as NSString).deletingPathExtension
        return try parse(data, name: name, file: nameOrPath)
    }

    public static func parse(_ data: Data, name: String, file: String) throws -> SandboxProfile {
        let root: JSONValue
        do {
            root = try JSONValue.parse(data)
        } catch let error as JSONParseError {
            throw ProfileError(file: file, field: "", message: "not valid JSON: \(error.message)")
        }
        let top = try Fields(root, file: file, path: "")
        try top.allow(["description", "requires", "filesystem", "network", "limits", "env", "seccomp", "egress"])
        let network = try top.choice("network", Network.self)
        var egress: EgressPolicy?
        if network == .allowlist {
            egress = try parseEgress(try top.object("egress"))
        } else if top.values["egress"] != nil {
            throw top.fail("egress", "applies only to network \"allowlist\", and this profile's network is \"\(network.rawValue)\"")
        }
        let fs = try top.object("filesystem")
        try fs.allow(["writable", "read_only", "hidden"])
        let limits = try top.object("limits")
        try limits.allow(["wall_seconds", "cpu_seconds", "memory_mb", "address_space_mb", "processes", "file_size_mb", "open_files", "output_bytes", "disk_mb"])
        let memory = try limits.positive("memory_mb")
        let addressSpace = try limits.unsigned("address_space_mb").map(Int.init) ?? memory
        let env = try top.object("env")
        try env.allow(["pass", "set"])
        return SandboxProfile(
            name: name,
            description: try top.string("description", optional: true) ?? "",
            requires: try top.strings("requires").enumerated().map { index, text in
                guard let mechanism = Mechanism(rawValue: text) else {
                    throw ProfileError(file: file, field: "requires[\(index)]", message: "unknown mechanism '\(text)'; allowed: \(Mechanism.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return mechanism
            },
            filesystem: Filesystem(
                writable: try fs.strings("writable"), readOnly: try fs.strings("read_only"), hidden: try fs.strings("hidden")),
            network: network,
            limits: Limits(
                wallSeconds: try limits.positive("wall_seconds"), cpuSeconds: try limits.positive("cpu_seconds"),
                memoryMB: memory, addressSpaceMB: addressSpace == 0 ? nil : addressSpace, processes: try limits.positive("processes"),
                fileSizeMB: try limits.positive("file_size_mb"), openFiles: try limits.positive("open_files"),
                outputBytes: try limits.positive("output_bytes"), diskMB: try limits.unsigned("disk_mb").map(Int.init) ?? 8192),
            environment: Environment(pass: try env.strings("pass"), set: try env.stringMap("set")),
            seccomp: try SeccompPolicy(try top.object("seccomp")), egress: egress)
    }

    private static func parseEgress(_ fields: Fields) throws -> EgressPolicy {
        try fields.allow(["allow", "deny", "read_only", "max_bytes", "secrets"])
        func rules(_ key: String) throws -> [EgressPolicy.Rule] {
            guard fields.values[key] != nil || key == "allow" else { return [] }
            return try fields.strings(key).enumerated().map { index, text in
                guard let rule = EgressPolicy.Rule(text) else {
                    throw fields.fail("\(key)[\(index)]", "'\(text)' is not a host rule; write example.com, *.example.com, *, or an IP address, each with an optional :port")
                }
                return rule
            }
        }
        var readOnly = false
        if let value = fields.values["read_only"] {
            guard let flag = value.boolValue else { throw fields.fail("read_only", "must be true or false") }
            readOnly = flag
        }
        var secrets: [EgressPolicy.Secret] = []
        if let value = fields.values["secrets"] {
            guard let list = value.arrayValue else { throw fields.fail("secrets", "must be an array of {host, variable, from}") }
            for (index, item) in list.enumerated() {
                let entry = try Fields(item, file: fields.file, path: fields.field("secrets[\(index)]"))
                try entry.allow(["host", "variable", "from", "header", "insecure_http"])
                let hostText = try entry.string("host")!
                guard let host = EgressPolicy.Rule(hostText) else { throw entry.fail("host", "'\(hostText)' is not a host rule") }
                var secret = EgressPolicy.Secret(host: host, variable: try entry.string("variable")!, from: try entry.string("from")!)
                if let header = entry.values["header"] {
                    guard let name = header.stringValue, EgressPolicy.Secret.isHeaderName(name) else {
                        throw entry.fail("header", "must be a header name, e.g. \"Authorization\"")
                    }
                    secret.header = name
                }
                if let value = entry.values["insecure_http"] {
                    guard let flag = value.boolValue else { throw entry.fail("insecure_http", "must be true or false") }
                    secret.insecureHTTP = flag
                }
                secrets.append(secret)
            }
        }
        return EgressPolicy(
            allow: try rules("allow"), deny: try rules("deny"), readOnly: readOnly,
            maxBytes: try fields.unsigned("max_bytes").map { Int($0) }, secrets: secrets)
    }
}

/// A profile that does not load, naming where.
public struct ProfileError: Error, CustomStringConvertible {
    public let file: String
    public let field: String
    public let message: String
    public var description: String {
        field.isEmpty ? "profile \(file): \(message)" : "profile \(file): field '\(field)': \(message)"
    }
}

/// A JSON object being validated, which knows its file and path for errors.
struct Fields {
    let values: [String: JSONValue]
    let file: String
    let path: String

    init(_ value: JSONValue, file: String, path: String) throws {
        guard let object = value.objectValue else {
            throw ProfileError(file: file, field: path, message: "must be an object")
        }
        values = object
        self.file = file
        self.path = path
    }

    func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func fail(_ key: String, _ message: String) -> ProfileError {
        ProfileError(file: file, field: field(key), message: message)
    }

    /// Refuses keys outside `known`, so a typo is an error instead of a silently ignored rule.
    func allow(_ known: [String]) throws {
        for key in values.keys.sorted() where !known.contains(key) {
            throw fail(key, "unknown field; allowed: \(known.joined(separator: ", "))")
        }
    }

    func object(_ key: String) throws -> Fields {
        guard let value = values[key] else { throw fail(key, "missing") }
        return try Fields(value, file: file, path: field(key))
    }

    func string(_ key: String, optional: Bool = false) throws -> String? {
        guard let value = values[key] else {
            if optional { return nil }
            throw fail(key, "missing")
        }
        guard let text = value.stringValue else { throw fail(key, "must be a string") }
        return text
    }

    func strings(_ key: String) throws -> [String] {
        guard let value = values[key] else { throw fail(key, "missing (use [] for none)") }
        guard let array = value.arrayValue, case let texts = array.compactMap(\.stringValue), texts.count == array.count else {
            throw fail(key, "must be an array of strings")
        }
        return texts
    }

    func stringMap(_ key: String) throws -> [String: String] {
        guard let value = values[key] else { throw fail(key, "missing (use {} for none)") }
        guard let object = value.objectValue, case let map = object.compactMapValues(\.stringValue), map.count == object.count else {
            throw fail(key, "must be an object of strings")
        }
        return map
    }

    func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) throws -> T where T.RawValue == String {
        let text = try string(key)!
        guard let value = T(rawValue: text) else {
            throw fail(key, "'\(text)' is not allowed; allowed: \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    func positive(_ key: String) throws -> Int {
        guard let value = values[key] else { throw fail(key, "missing") }
        guard let number = value.intValue, number > 0 else { throw fail(key, "must be a whole number above 0") }
        return number
    }

    func unsigned(_ key: String) throws -> UInt64? {
        guard let value = values[key] else { return nil }
        // A whole number written with a fraction (5.0) counts, as it did; JSONValue holds integers as Int.
        guard let number = value.intValue, number >= 0 else { throw fail(key, "must be a whole number from 0 to 2^63 - 1") }
        return UInt64(number)
    }
}
