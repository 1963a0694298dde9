import Foundation

/// The one fact that fixes a diagnostic, found in the project itself: the file an import meant and
/// how to reach it, what a module really exports, the declared signature of a package function.
/// Diagnostics are printed by the sandboxed build, so every path they name is hostile: files are
/// read only through the workspace's confined opener, and a path that leaves it gives no hint.
struct BuildHints {
    let workspace: Workspace
    /// The folder holding package.json and tsconfig.json, relative to the workspace root ("" for it).
    let project: String
    private let baseURL: String
    private let paths: [(pattern: String, targets: [String])]

    static let extensions = [".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".json"]

    init(workspace: Workspace, project: String) {
        self.workspace = workspace
        self.project = project
        let text = workspace.text(of: Self.join(project, "tsconfig.json")) ?? "{}"
        let withoutComments = text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }
            .joined(separator: "\n")
        let options = (try? JSONValue.parse(withoutComments))?["compilerOptions"]
        baseURL = Self.join(project, options?["baseUrl"]?.stringValue ?? ".")
        paths = (options?["paths"]?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { key, value in
            (key, value.arrayValue?.compactMap(\.stringValue) ?? [])
        }
    }

    func annotate(_ diagnostic: Diagnostic) -> Diagnostic {
        var diagnostic = diagnostic
        let message = diagnostic.message
        if diagnostic.code == "TS2307" || message.hasPrefix("Could not resolve") || message.contains("Can't resolve") {
            if let specifier = quoted(in: message) { diagnostic.hint = missingModule(specifier, from: diagnostic.file) }
        } else if diagnostic.code == "TS2305" || diagnostic.code == "TS2724" {
            if let member = message.firstMatch(of: #/member '(?<name>[^']+)'/#)?.name,
                let module = message.firstMatch(of: #/Module '"(?<spec>[^"]+)"'/#)?.spec
            {
                diagnostic.hint = exports(of: String(module), from: diagnostic.file, wanted: String(member))
            }
        } else if ["TS2345", "TS2554", "TS2769"].contains(diagnostic.code ?? "") {
            diagnostic.hint = declaredSignature(at: diagnostic)
        }
        return diagnostic
    }

    // MARK: - Module not found

    private func missingModule(_ specifier: String, from importer: String) -> String? {
        guard specifier.hasPrefix(".") || specifier.hasPrefix("@/") else { return nil }
        let name = (specifier as NSString).lastPathComponent
        let candidates = sourceFiles().filter { path in
            let file = (path as NSString).lastPathComponent
            let stem = Self.extensions.reduce(file) { $0.hasSuffix($1) ? String($0.dropLast($1.count)) : $0 }
            return stem == name || (stem == "index" && (path as NSString).deletingLastPathComponent.hasSuffix("/" + name))
        }
        guard let best = candidates.min(by: { tailMatch($0, specifier) > tailMatch($1, specifier) }) else {
            return "no file named \(name) exists in the project; create it or fix the name"
        }
        let relative = relativeImport(to: best, from: importer)
        var hint = "the file is \(best): import it as '\(relative)'"
        if let alias = alias(for: best) { hint += " (or '\(alias)')" }
        return hint
    }

    /// How many trailing path components two paths share, to prefer the file the import meant.
    private func tailMatch(_ path: String, _ specifier: String) -> Int {
        let a = path.split(separator: "/").reversed(), b = specifier.split(separator: "/").reversed()
        return zip(a, b).prefix { $0.0.hasPrefix($0.1) }.count
    }

    private func relativeImport(to target: String, from importer: String) -> String {
        let from = (importer as NSString).deletingLastPathComponent.split(separator: "/").map(String.init)
        var to = stripExtension(target).split(separator: "/").map(String.init)
        if to.last == "index" { to.removeLast() }
        var common = 0
        while common < from.count && common < to.count - 1 && from[common] == to[common] { common += 1 }
        let up = Array(repeating: "..", count: from.count - common)
        let path = (up + to[common...]).joined(separator: "/")
        return up.isEmpty ? "./" + path : path
    }

    /// The tsconfig `paths` form of a project file, e.g. "@/lib/posts" for src/lib/posts.ts.
    private func alias(for file: String) -> String? {
        let path = Self.normalized(inProject(stripExtension(file)))
        for (pattern, targets) in paths where pattern.hasSuffix("/*") {
            for target in targets where target.hasSuffix("/*") {
                let folder = Self.normalized(Self.join(baseURL, String(target.dropLast(2))))
                if folder.isEmpty || path.hasPrefix(folder + "/") {
                    return String(pattern.dropLast(1)) + String(path.dropFirst(folder.isEmpty ? 0 : folder.count + 1))
                }
            }
        }
        return nil
    }

    private func stripExtension(_ path: String) -> String {
        Self.extensions.first { path.hasSuffix($0) }.map { String(path.dropLast($0.count)) } ?? path
    }

    // MARK: - Missing export

    private func exports(of specifier: String, from importer: String, wanted: String) -> String? {
        guard let file = resolve(specifier, from: importer), let text = workspace.text(of: file) else {
            return nil
        }
        let names = text.matches(of: #/export\s+(?:declare\s+)?(?:async\s+)?(?:function\*?|const|let|var|class|interface|type|enum)\s+(?<name>[A-Za-z_$][\w$]*)/#)
            .map { String($0.name) }
        guard !names.isEmpty else { return nil }
        var hint = "\(specifier) exports: \(names.joined(separator: ", "))"
        if let guess = closest(to: wanted, in: names) { hint += "; did you mean \(guess)?" }
        return hint
    }

    // MARK: - Calls into a package

    /// The declaration of the function called at the diagnostic's position, from its module's .d.ts.
    private func declaredSignature(at diagnostic: Diagnostic) -> String? {
        guard let source = workspace.text(of: inProject(diagnostic.file)) else { return nil }
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.indices.contains(diagnostic.line - 1) else { return nil }
        let line = Array(lines[diagnostic.line - 1])
        // Walk left from the argument to the unmatched '(' and read the name before it.
        var depth = 0
        var index = min(diagnostic.column - 1, line.count - 1)
        while index >= 0 {
            if line[index] == ")" { depth += 1 } else if line[index] == "(" {
                if depth == 0 { break }
                depth -= 1
            }
            index -= 1
        }
        guard index > 0 else { return nil }
        let name = String(line[..<index].reversed().prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "$" }.reversed())
        guard !name.isEmpty,
            let module = source.firstMatch(of: try! Regex("import\\s*\\{[^}]*\\b\(name)\\b[^}]*\\}\\s*from\\s*[\"']([^\"']+)[\"']"))?
                .output[1].substring,
            let file = resolve(String(module), from: diagnostic.file, preferDeclarations: true),
            let text = workspace.text(of: file),
            let declaration = text.firstMatch(of: try! Regex("export\\s+(?:declare\\s+)?function\\s+\(name)\\s*\\([^;{]*"))
        else { return nil }
        let signature = String(text[declaration.range]).replacingOccurrences(of: "\n", with: " ")
            .replacingOccurrences(of: #"\s+"#, with: " ", options: .regularExpression).trimmingCharacters(in: .whitespaces)
        return "\(module) declares: \(signature)"
    }

    // MARK: - Resolution

    /// The file a module specifier names, as tsc would find it (relative, tsconfig paths,
    /// node_modules), relative to the workspace root; nil when none resolves inside the workspace.
    private func resolve(_ specifier: String, from importer: String, preferDeclarations: Bool = false) -> String? {
        var bases: [String] = []
        if specifier.hasPrefix(".") {
            bases.append(Self.join(inProject((importer as NSString).deletingLastPathComponent), specifier))
        }
        for (pattern, targets) in paths {
            if pattern.hasSuffix("/*"), specifier.hasPrefix(pattern.dropLast(1)) {
                let rest = specifier.dropFirst(pattern.count - 1)
                bases += targets.map { Self.join(baseURL, $0.replacingOccurrences(of: "*", with: rest)) }
            } else if pattern == specifier {
                bases += targets.map { Self.join(baseURL, $0) }
            }
        }
        bases.append(inProject("node_modules/" + specifier))
        let order = preferDeclarations ? [".d.ts", ".ts", ".tsx", ".js"] : [".ts", ".tsx", ".d.ts", ".js", ".jsx"]
        for base in bases {
            let normalized = Self.normalized(base)
            // `..` above the root, or an absolute path, resolves outside: no hint from there.
            guard !normalized.hasPrefix("/"), normalized != "..", !normalized.hasPrefix("../") else { continue }
            for suffix in order + order.map({ "/index" + $0 }) {
                let candidate = normalized + suffix
                if let found = try? workspace.resolve(candidate), found.kind == .file { return found.relative }
            }
        }
        return nil
    }

    /// Project files that could be imported (never node_modules, build output or .git), relative
    /// to the project.
    private func sourceFiles() -> [String] {
        var files: [String] = []
        workspace.walkFiles(under: project, skipping: ["node_modules", ".git", "dist", ".next", "build", ".build"]) { path in
            let name = (path as NSString).lastPathComponent
            if Self.extensions.contains(where: { name.hasSuffix($0) }) {
                files.append(project.isEmpty ? path : String(path.dropFirst(project.count + 1)))
            }
        }
        return files
    }

    /// A path of the project's, relative to the workspace root.
    private func inProject(_ path: String) -> String { Self.join(project, path) }

    private static func join(_ folder: String, _ path: String) -> String {
        folder.isEmpty || path.hasPrefix("/") ? path : folder + "/" + path
    }

    /// `a/./b/../c` as `a/c`; a leading `..` stays, so callers can see the path climbs out.
    static func normalized(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") where part != "." {
            if part == "..", let last = parts.last, last != ".." { parts.removeLast() } else { parts.append(part) }
        }
        return (path.hasPrefix("/") ? "/" : "") + parts.joined(separator: "/")
    }

    private func quoted(in message: String) -> String? {
        message.firstMatch(of: #/['"](?<spec>[^'"]+)['"]/#).map { String($0.spec) }
    }
}
