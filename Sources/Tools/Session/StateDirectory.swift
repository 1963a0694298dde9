public import Foundation

/// Where toolhost keeps what outlives a call: session state, saved outputs, background logs.
/// Each workspace gets a folder of its own, named after it and a hash of its real path.
public struct StateDirectory: Sendable {
    public let path: String

    public init(_ path: String) {
        self.path = path
    }

    /// `$XDG_STATE_HOME/toolhost`, else `~/.local/state/toolhost`.
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let xdg = environment["XDG_STATE_HOME"], xdg.hasPrefix("/") { return xdg + "/toolhost" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.local/state/toolhost"
    }

    /// The folder for one workspace.
    public func folder(for workspace: Workspace) -> String {
        let name = workspace.root.split(separator: "/").last.map(String.init) ?? "root"
        let safe = String(name.map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "_" }.prefix(40))
        return "\(path)/workspaces/\(safe)-\(fnv1a(workspace.root))"
    }
}
