import Foundation
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

    @Test func everyModuleImportsOnlyWhatTheArchitecturePageAllows() throws {
        let table = try allowed()
        let sources = Self.root.appendingPathComponent("Sources")
        let modules = try FileManager.default.contentsOfDirectory(atPath: sources.path).sorted()
        #expect(modules.count >= 10)
        for module in modules {
            let rules = try #require(table[module], "docs/ARCHITECTURE.md has no row for \(module)")
            let walker = FileManager.default.enumerator(atPath: sources.appendingPathComponent(module).path)
            while let file = walker?.nextObject() as? String {
                guard file.hasSuffix(".swift") else { continue }
                let text = try String(contentsOf: sources.appendingPathComponent(module).appendingPathComponent(file), encoding: .utf8)
                for match in text.matches(of: #/(?m)^(?:@_exported |@testable |public |internal |package )?import (?:(?:struct|class|enum|func|protocol|typealias) )?([A-Za-z_][A-Za-z0-9_]*)/#) {
                    let imported = String(match.output.1)
                    #expect(Self.system.contains(imported) || rules.contains(imported), "\(module)/\(file) imports \(imported), which docs/ARCHITECTURE.md does not allow it")
                }
            }
        }
    }
}
