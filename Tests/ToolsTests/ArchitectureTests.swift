import Foundation
import TestSupport
import Testing

/// docs/ARCHITECTURE.md's module table is the truth about imports: every module of Sources/
/// imports only what its row allows, and every module has a row.
@Suite struct ArchitectureTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let system: Set<String> = ["Foundation", "FoundationEssentials", "Glibc", "Dispatch", "Synchronization"]

    /// The table: module name to the modules it may import.
    func allowed() throws -> [String: Set<String>] {
        let text = try String(contentsOf: Self.root.appendingPathComponent("docs/ARCHITECTURE.md"), encoding: .utf8)
        var table: [String: Set<String>] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| ") && !line.hasPrefix("| module") && !line.hasPrefix("|---") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 4 else { continue }
            let imports = Set(cells[2].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
            for module in cells[1].split(separator: ",") { table[module.trimmingCharacters(in: .whitespaces)] = imports }
        }
        return table
    }

    /// Every module of Sources/ with the modules its files import (system modules left out).
    func imports() throws -> [String: [(file: String, module: String)]] {
        let sources = Self.root.appendingPathComponent("Sources")
        var found: [String: [(file: String, module: String)]] = [:]
        for module in try FileManager.default.contentsOfDirectory(atPath: sources.path).sorted() {
            found[module] = []
            let walker = FileManager.default.enumerator(atPath: sources.appendingPathComponent(module).path)
            while let file = walker?.nextObject() as? String {
                guard file.hasSuffix(".swift") else { continue }
                let text = try String(contentsOf: sources.appendingPathComponent(module).appendingPathComponent(file), encoding: .utf8)
                for match in text.matches(of: #/(?m)^(?:@_exported |@testable |public |internal |package )?import (?:(?:struct|class|enum|func|protocol|typealias) )?([A-Za-z_][A-Za-z0-9_]*)/#) {
                    let imported = String(match.output.1)
                    if !Self.system.contains(imported) { found[module, default: []].append((file, imported)) }
                }
            }
        }
        return found
    }

    @Test func everyModuleImportsOnlyWhatTheArchitecturePageAllows() async throws {
        let table = try allowed()
        let found = try imports()
        #expect(found.count >= 10)
        for (module, imported) in found {
            let rules = try #require(table[module], "docs/ARCHITECTURE.md has no row for \(module)")
            for (file, name) in imported {
                #expect(rules.contains(name), "\(module)/\(file) imports \(name), which docs/ARCHITECTURE.md does not allow it")
            }
        }
    }

    /// Every import is a dependency that Package.swift declares for its target: one that compiles
    /// only because another dependency brings it along breaks when that one changes.
    @Test func everyImportIsDeclaredInThePackage() async throws {
        // A scratch path of its own: the package's .build is locked by the `swift test` running this.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("dump-package-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let dumped = try await capture("/usr/bin/env", ["swift", "package", "--package-path", Self.root.path, "--scratch-path", scratch, "dump-package"])
        try #require(dumped.status == 0, "swift package dump-package failed")
        let data = Data(dumped.stdout.utf8)
        let package = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var declared: [String: Set<String>] = [:]
        for target in package["targets"] as? [[String: Any]] ?? [] {
            let names = (target["dependencies"] as? [[String: [Any]]] ?? []).compactMap { $0.values.first?.first as? String }
            declared[target["name"] as! String] = Set(names)
        }
        for (module, imported) in try imports() {
            let dependencies = try #require(declared[module], "Package.swift has no target \(module)")
            for (file, name) in imported {
                #expect(dependencies.contains(name), "\(module)/\(file) imports \(name), which Package.swift does not declare for \(module)")
            }
        }
    }
}
