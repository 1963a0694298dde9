import Testing
@testable import WorkspaceAccess

/// The patterns the search tools take and the .gitignore rules their walks apply.
struct PathPatternTests {
    @Test func ignoreRulesFollowGit() {
        var rules = IgnoreRules()
        rules.add("# comment\n*.log\n!keep.log\nbuild/\n/top.txt\ndocs/**/*.md\n", in: "")
        rules.add("local.ts\n", in: "src")
        #expect(rules.ignores("a/b/debug.log", isFolder: false) && !rules.ignores("a/keep.log", isFolder: false))
        #expect(rules.ignores("x/build", isFolder: true) && !rules.ignores("x/build", isFolder: false))
        #expect(rules.ignores("top.txt", isFolder: false) && !rules.ignores("a/top.txt", isFolder: false))
        #expect(rules.ignores("docs/a/b/c.md", isFolder: false) && rules.ignores("docs/c.md", isFolder: false) && !rules.ignores("c.md", isFolder: false))
        #expect(rules.ignores("src/x/local.ts", isFolder: false) && !rules.ignores("lib/local.ts", isFolder: false))
    }

    @Test func globPatternsMatchByComponent() {
        #expect(PathPattern("**/*.ts").matches("src/a/b.ts") && PathPattern("**/*.ts").matches("b.ts"))
        #expect(PathPattern("src/*.ts").matches("src/b.ts") && !PathPattern("src/*.ts").matches("src/a/b.ts"))
        #expect(!PathPattern("*.ts").matches("src/b.ts"), "one star does not cross a folder")
    }
}
