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
    /// The project's package.json says `"type": "module"`: packages resolve by their `import` condition.
    private let esModules: Bool

    static let extensions = [".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".json"]

    init(workspace: Workspace, project: String) {
        self.workspace = workspace
        self.project = project
        let text = workspace.text(of: Self.join(project, "tsconfig.json")) ?? "{}"
        let withoutComments = text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }
            .joined(separator: "\n")
        let options = (try? JSONValue.parse(withoutComments))?["compilerOptions"]
        baseURL = Self.join(project, options?["baseUrl"]?.stringValue ?? ".")
        esModules = workspace.text(of: Self.join(project, "package.json")).flatMap { try? JSONValue.parse($0) }?["type"]?.stringValue == "module"
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
        guard let file = resolve(specifier, from: inProject((importer as NSString).deletingLastPathComponent)), let text = workspace.text(of: file) else {
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

    /// The declaration of the function called at the diagnostic's position, read from what its
    /// module declares: every overload when there are few, else those that take as many arguments
    /// as the call passes.
    private func declaredSignature(at diagnostic: Diagnostic) -> String? {
        guard let source = workspace.text(of: inProject(diagnostic.file)) else { return nil }
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.indices.contains(diagnostic.line - 1) else { return nil }
        let lineText = lines[diagnostic.line - 1]
        let line = Array(lineText)
        let isName = { (c: Character) in c.isLetter || c.isNumber || c == "_" || c == "$" }
        let column = min(diagnostic.column - 1, line.count - 1)
        // "No overload matches" may point at the callee: its '(' follows the name.
        var index = column
        while index < line.count, isName(line[index]) || line[index] == "." { index += 1 }
        if diagnostic.code != "TS2769" || index == column || index == line.count || line[index] != "(" {
            // Walk left from the argument to the unmatched '(' and read the name before it.
            var depth = 0
            index = column
            while index >= 0 {
                if line[index] == ")" { depth += 1 } else if line[index] == "(" {
                    if depth == 0 { break }
                    depth -= 1
                }
                index -= 1
            }
        }
        guard index > 0 else { return nil }
        let before = line[..<index].reversed().drop { $0 == " " }
        let name = String(before.prefix(while: isName).reversed())
        let rest = before.dropFirst(name.count)
        // `matter.stringify(…)`: the qualifier is what was imported.
        let qualifier = rest.first == "." ? String(rest.dropFirst().prefix(while: isName).reversed()) : nil
        guard !name.isEmpty, let imported = importOf(qualifier ?? name, in: source),
            let file = resolve(imported.module, from: inProject((diagnostic.file as NSString).deletingLastPathComponent), preferDeclarations: true)
        else { return nil }
        var seen = Set<String>()
        var wanted = qualifier == nil ? imported.name : name
        if wanted == nil, let text = workspace.text(of: file) {
            // A default or `export =` import called directly: the name it exports.
            wanted = text.firstMatch(of: #/export\s*(?:=|default)\s*(?:function\s+)?(?<name>[A-Za-z_$][\w$]*)/#).map { String($0.name) }
        }
        guard let wanted else { return nil }
        let overloads = declarations(of: wanted, in: file, seen: &seen)
        guard !overloads.isEmpty else { return nil }
        let open = lineText.index(lineText.startIndex, offsetBy: index + 1)
        let passed = TypeDeclarations.argumentCount(in: source, after: open)
        var quoted = overloads
        if overloads.count > 3 {
            let fitting = overloads.filter { passed.map($0.accepts) ?? false }
            quoted = Array((fitting.isEmpty ? overloads : fitting).prefix(3))
        }
        let more = overloads.count - quoted.count
        return "\(imported.module) declares: " + quoted.map(\.text).joined(separator: "; ")
            + (more > 0 ? " (and \(more) more overloads)" : "")
    }

    /// How `local` came into the file: its module, and the exported name it stands for (nil for
    /// a default, namespace or `require` import, which stand for the module itself).
    private func importOf(_ local: String, in source: String) -> (module: String, name: String?)? {
        let quotedModule = #"\s*["']([^"']+)["']"#
        for statement in source.matches(of: try! Regex(#"import\s+(?:type\s+)?\{([^}]*)\}\s*from"# + quotedModule)) {
            for item in statement.output[1].substring!.split(separator: ",") {
                let words = item.split(whereSeparator: { $0.isWhitespace }).filter { $0 != "type" }
                if words.last.map(String.init) == local { return (String(statement.output[2].substring!), String(words[0])) }
            }
        }
        let whole = [
            #"import\s+(?:\*\s*as\s+)?"# + local + #"\b[^;]*?from"# + quotedModule,
            #"import\s+"# + local + #"\s*=\s*require\("# + quotedModule,
            #"(?:const|let|var)\s+"# + local + #"\s*=\s*require\("# + quotedModule,
        ]
        for pattern in whole {
            if let match = source.firstMatch(of: try! Regex(pattern)), let module = match.output[1].substring { return (String(module), nil) }
        }
        return nil
    }

    /// The declarations of `name` in a declaration file, or in the files it re-exports.
    private func declarations(of name: String, in file: String, seen: inout Set<String>) -> [TypeDeclarations.Function] {
        guard seen.count < 8, seen.insert(file).inserted, let text = workspace.text(of: file) else { return [] }
        let found = TypeDeclarations.functions(named: name, in: text)
        if !found.isEmpty { return found }
        for specifier in TypeDeclarations.reexports(in: text) {
            if let next = resolve(specifier, from: (file as NSString).deletingLastPathComponent, preferDeclarations: true) {
                let inner = declarations(of: name, in: next, seen: &seen)
                if !inner.isEmpty { return inner }
            }
        }
        return []
    }

    // MARK: - Resolution

    /// The file a module specifier names, as tsc would find it (relative, tsconfig paths,
    /// node_modules with its package.json), relative to the workspace root; nil when none
    /// resolves inside the workspace. `folder` is the importing file's folder, from the root.
    private func resolve(_ specifier: String, from folder: String, preferDeclarations: Bool = false) -> String? {
        var bases: [String] = []
        if specifier.hasPrefix(".") { bases.append(Self.join(folder, specifier)) }
        for (pattern, targets) in paths {
            if pattern.hasSuffix("/*"), specifier.hasPrefix(pattern.dropLast(1)) {
                let rest = specifier.dropFirst(pattern.count - 1)
                bases += targets.map { Self.join(baseURL, $0.replacingOccurrences(of: "*", with: rest)) }
            } else if pattern == specifier {
                bases += targets.map { Self.join(baseURL, $0) }
            }
        }
        let order = preferDeclarations ? [".d.ts", ".ts", ".tsx", ".d.mts", ".d.cts", ".js"] : [".ts", ".tsx", ".d.ts", ".js", ".jsx"]
        for base in bases {
            if let file = file(at: base, order: order) { return file }
        }
        return specifier.hasPrefix(".") ? nil : packageFile(specifier, order: order)
    }

    /// A file for `base`: itself, with an extension, a `.js` name's declarations, or the entry of
    /// the folder (its package.json, else its index).
    private func file(at base: String, order: [String], depth: Int = 0) -> String? {
        let normalized = Self.normalized(base)
        // `..` above the root, or an absolute path, resolves outside: no hint from there.
        guard !normalized.hasPrefix("/"), normalized != "..", !normalized.hasPrefix("../"), depth < 4 else { return nil }
        var candidates = order.map { normalized + $0 }
        // An import of `x.js` means the declarations tsc writes beside it: x.d.ts, x.d.mts for .mjs.
        for (script, typed) in [(".js", [".d.ts", ".ts"]), (".mjs", [".d.mts", ".mts"]), (".cjs", [".d.cts", ".cts"]), (".jsx", [".tsx", ".d.ts"])]
        where normalized.hasSuffix(script) {
            candidates = typed.map { normalized.dropLast(script.count) + $0 }
        }
        if [".ts", ".tsx", ".d.mts", ".d.cts", ".mts", ".cts"].contains(where: normalized.hasSuffix) { candidates.insert(normalized, at: 0) }
        for candidate in candidates {
            if let found = try? workspace.resolve(candidate), found.kind == .file { return found.relative }
        }
        guard let folder = try? workspace.resolve(normalized), folder.kind == .directory else { return nil }
        if workspace.text(of: normalized + "/package.json") != nil { return entry(of: normalized, subpath: "", order: order, depth: depth + 1) }
        return order.lazy.compactMap { try? self.workspace.resolve(normalized + "/index" + $0) }.first { $0.kind == .file }?.relative
    }

    /// A package in the project's node_modules, or its `@types` package.
    private func packageFile(_ specifier: String, order: [String]) -> String? {
        let parts = specifier.split(separator: "/").map(String.init)
        let nameParts = specifier.hasPrefix("@") ? 2 : 1
        guard parts.count >= nameParts else { return nil }
        let package = parts.prefix(nameParts).joined(separator: "/"), subpath = parts.dropFirst(nameParts).joined(separator: "/")
        let typesName = nameParts == 2 ? parts[0].dropFirst() + "__" + parts[1] : package
        for root in [inProject("node_modules/" + package), inProject("node_modules/@types/" + typesName)] {
            if let file = entry(of: root, subpath: subpath, order: order, depth: 0) { return file }
        }
        return nil
    }

    /// The declarations a package gives for a subpath ("" for the package itself): its `exports`
    /// map (conditions `types`, `import`, `require`, `node`, `default`), then `typesVersions`,
    /// `types`/`typings`/`main`, then the path itself.
    private func entry(of root: String, subpath: String, order: [String], depth: Int) -> String? {
        guard let folder = try? workspace.resolve(Self.normalized(root)), folder.kind == .directory else { return nil }
        let manifest = workspace.text(of: root + "/package.json").flatMap { try? JSONValue.parse($0) }
        if let exports = manifest?["exports"], let target = exportTarget(exports, key: subpath.isEmpty ? "." : "./" + subpath),
            let found = file(at: root + "/" + target, order: order, depth: depth + 1)
        {
            return found
        }
        var path = subpath
        if path.isEmpty {
            path = manifest?["types"]?.stringValue ?? manifest?["typings"]?.stringValue ?? manifest?["main"]?.stringValue ?? "index"
            if path.isEmpty { path = "index" }
        }
        if let versions = manifest?["typesVersions"]?.objectValue, let mapped = Self.typesVersion(versions, path: Self.normalized(path)) {
            path = mapped
        }
        let base = Self.normalized(root + "/" + path)
        return base == Self.normalized(root) ? nil : file(at: base, order: order, depth: depth + 1)
    }

    /// The target of an `exports` map for a subpath key, conditions resolved.
    private func exportTarget(_ exports: JSONValue, key: String) -> String? {
        if let object = exports.objectValue, object.keys.contains(where: { $0.hasPrefix(".") }) {
            if let exact = object[key] { return condition(exact) }
            for (pattern, value) in object where pattern.contains("*") {
                let parts = pattern.split(separator: "*", maxSplits: 1, omittingEmptySubsequences: false)
                guard key.hasPrefix(parts[0]), key.hasSuffix(parts[1]), key.count >= pattern.count - 1 else { continue }
                let star = key.dropFirst(parts[0].count).dropLast(parts[1].count)
                return condition(value)?.replacingOccurrences(of: "*", with: star)
            }
            return nil
        }
        return key == "." ? condition(exports) : nil
    }

    /// The path a conditional export gives tsc: `types` first, then `import` in an ES-module
    /// project or `require` in a CommonJS one, then `node` and `default`.
    private func condition(_ value: JSONValue) -> String? {
        if let path = value.stringValue { return path }
        if let list = value.arrayValue { return list.lazy.compactMap(condition).first }
        guard let object = value.objectValue else { return nil }
        return ["types", esModules ? "import" : "require", "node", "default"].lazy.compactMap { object[$0].flatMap(self.condition) }.first
    }

    /// A path mapped by the first `typesVersions` entry whose patterns match it.
    static func typesVersion(_ versions: [String: JSONValue], path: String) -> String? {
        for (_, mapping) in versions.sorted(by: { $0.key > $1.key }) {
            for (pattern, targets) in mapping.objectValue ?? [:] {
                guard let target = targets.arrayValue?.first?.stringValue else { continue }
                if pattern == path { return target }
                let parts = pattern.split(separator: "*", maxSplits: 1, omittingEmptySubsequences: false)
                if parts.count == 2, path.hasPrefix(parts[0]), path.hasSuffix(parts[1]) {
                    return target.replacingOccurrences(of: "*", with: path.dropFirst(parts[0].count).dropLast(parts[1].count))
                }
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
