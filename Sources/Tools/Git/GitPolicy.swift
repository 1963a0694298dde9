public import Foundation

/// What git_push and git_commit may do, from toolhost's config file, which lives outside the
/// workspace so that a model cannot edit its own rules:
/// `--config FILE`, else `$XDG_CONFIG_HOME/toolhost/config.json`, else `~/.config/toolhost/config.json`.
///
///     {"git": {"protected_branches": ["release"], "allowed_push_patterns": ["run-*"],
///              "identity": {"name": "toolhost", "email": "toolhost@localhost"}}}
public struct GitPolicy: Sendable, Equatable {
    /// Never pushed to; main and master always are, and so is the remote's default branch.
    public var protectedBranches: [String]
    /// When not empty, a pushed branch must match one of these shell patterns.
    public var allowedPushPatterns: [String]
    /// The author when git config names none.
    public var identityName: String
    public var identityEmail: String

    public static let alwaysProtected = ["main", "master"]

    public init(
        protectedBranches: [String] = [], allowedPushPatterns: [String] = [], identityName: String = "toolhost",
        identityEmail: String = "toolhost@localhost"
    ) {
        self.protectedBranches = Array(Set(Self.alwaysProtected + protectedBranches)).sorted()
        self.allowedPushPatterns = allowedPushPatterns
        self.identityName = identityName
        self.identityEmail = identityEmail
    }

    public static func defaultConfigPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") { return xdg + "/toolhost/config.json" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.config/toolhost/config.json"
    }

    /// Loads the config file; a missing default file means the defaults, a broken one is an error.
    public static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> GitPolicy {
        let file = path ?? defaultConfigPath(environment: environment)
        guard let data = FileManager.default.contents(atPath: file) else {
            if path != nil { throw ToolError("config file \(file) cannot be read", kind: .usage) }
            return GitPolicy()
        }
        let root: JSONValue
        do {
            root = try JSONValue.parse(data)
        } catch {
            throw ToolError("config file \(file) is not valid JSON: \(error)", kind: .usage)
        }
        guard let git = root["git"] else { return GitPolicy() }
        func strings(_ key: String) throws -> [String] {
            guard let value = git[key] else { return [] }
            guard let array = value.arrayValue?.compactMap(\.stringValue), array.count == value.arrayValue?.count else {
                throw ToolError("config file \(file): git.\(key) must be an array of strings", kind: .usage)
            }
            return array
        }
        let defaults = GitPolicy()
        return GitPolicy(
            protectedBranches: try strings("protected_branches"), allowedPushPatterns: try strings("allowed_push_patterns"),
            identityName: git["identity"]?["name"]?.stringValue ?? defaults.identityName,
            identityEmail: git["identity"]?["email"]?.stringValue ?? defaults.identityEmail)
    }

    /// Why `branch` may not be pushed, or nil when it may.
    func refusal(toPush branch: String, remoteDefault: String?) -> String? {
        if protectedBranches.contains(branch) {
            return "\(branch) is a protected branch (protected: \(protectedBranches.joined(separator: ", ")))"
        }
        if let remoteDefault, branch == remoteDefault {
            return "\(branch) is the remote's default branch"
        }
        if !allowedPushPatterns.isEmpty && !allowedPushPatterns.contains(where: { fnmatch($0, branch, 0) == 0 }) {
            return "\(branch) matches none of the allowed patterns (\(allowedPushPatterns.joined(separator: ", ")))"
        }
        return nil
    }
}
