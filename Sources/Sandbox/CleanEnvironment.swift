/// The environment a command starts from: a short allowlist of the host's variables, never its
/// secrets (API keys, tokens, cloud credentials), plus settings that keep tools non-interactive.
public enum CleanEnvironment {
    /// Host variables that pass through when set.
    public static let passed: Set<String> = [
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "NODE_PATH",
    ]

    /// Set for every command: no pagers, no colours, no prompts.
    public static let fixed: [String: String] = [
        "TERM": "dumb", "PAGER": "cat", "GIT_PAGER": "cat", "NO_COLOR": "1", "GIT_TERMINAL_PROMPT": "0",
        "DEBIAN_FRONTEND": "noninteractive",
    ]

    /// The host's `pass` variables (never one that looks secret, whatever the list says), a PATH
    /// and a UTF-8 LANG when the host has none, then `set` over them.
    public static func base(
        from host: [String: String], pass: Set<String> = passed, set: [String: String] = fixed
    ) -> [String: String] {
        var environment = host.filter { pass.contains($0.key) && !looksSecret($0.key) }
        environment["PATH"] = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        environment["LANG"] = environment["LANG"] ?? "C.UTF-8"
        environment.merge(set) { _, set in set }
        return environment
    }

    /// Names that hold credentials by convention (Codex drops the same patterns).
    public static func looksSecret(_ name: String) -> Bool {
        let upper = name.uppercased()
        return ["KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH"].contains { upper.contains($0) }
    }
}
