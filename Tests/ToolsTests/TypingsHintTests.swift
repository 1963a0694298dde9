import Foundation
import TestSupport
import Testing
@testable import Tools

let typingsFixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("fixtures/typings").path

/// The signature hint on the shapes real packages ship, through a real tsc build: a gray-matter
/// shaped `declare namespace` + `export =`, Debian's own @types/js-yaml (an `exports` map to a
/// `.d.mts` that re-exports), overloads behind `.d.mts` re-exports, and `typesVersions`.
@Suite struct TypingsHintTests {
    @Test func hintsQuoteWholeDeclarationsFromRealTypings() async throws {
        let scratch = try Scratch()
        let modules = scratch.workspacePath + "/node_modules"
        try FileManager.default.createDirectory(atPath: modules + "/@types", withIntermediateDirectories: true)
        for package in ["front-matter-kit", "dual-kit", "old-kit"] {
            try FileManager.default.copyItem(atPath: typingsFixture + "/" + package, toPath: modules + "/" + package)
        }
        try FileManager.default.copyItem(atPath: "/usr/share/nodejs/@types/js-yaml", toPath: modules + "/@types/js-yaml")
        try scratch.write("package.json", #"{ "name": "typings-check", "private": true, "type": "module", "scripts": { "build": "tsc -p ." } }"#)
        try scratch.write("tsconfig.json", """
            { "compilerOptions": { "target": "ES2020", "module": "node16", "moduleResolution": "node16", "strict": true, "noEmit": true },
              "include": ["src"] }
            """)
        try scratch.write("src/main.ts", """
            import matter from "front-matter-kit";
            import * as yaml from "js-yaml";
            import { format as fmt } from "dual-kit";
            import { slugify } from "old-kit";

            export const page = matter.stringify({ title: "Hello" }, "body text");
            export const docs = yaml.loadAll("a: 1", 5);
            export const when = fmt("2026", "en",
                true);
            export const slug = slugify(42);
            export const parsed = matter(7);

            """)
        let session = try scratch.session(profile: "build")
        let result = await call("build", [:], in: session)
        await session.close()
        let hints = result.text.split(separator: "\n").filter { $0.hasPrefix("  hint: ") }.map { String($0.dropFirst(8)) }
        #expect(hints.count == 5, "\(result.text)")
        // The object type and the generics stay whole (a regex stopped at the first brace).
        #expect(hints.contains(
            "front-matter-kit declares: export function stringify<O extends GrayMatterOption<string, O>>(file: string | { content: string },"
                + " data: { [key: string]: any }, options?: GrayMatterOption<string, O>): string"), "\(hints)")
        // Two overloads: both, the function-typed parameter whole.
        #expect(hints.contains(
            "js-yaml declares: export function loadAll(str: string, iterator?: null, opts?: LoadOptions): unknown[];"
                + " export function loadAll(str: string, iterator: (doc: unknown) => void, opts?: LoadOptions): void"), "\(hints)")
        // Four overloads: the two that take three arguments, under the name it was imported as.
        #expect(hints.contains(
            "dual-kit declares: export declare function format(value: string, locale: string, options: FormatOptions): string;"
                + " export declare function format(values: number[], separator?: string, locale?: string, width?: number): string[] (and 2 more overloads)"),
            "\(hints)")
        // typesVersions: the declaration tsc read, not the outdated top-level one.
        #expect(hints.contains("old-kit declares: export declare function slugify(text: string, options?: SlugOptions): string"), "\(hints)")
        // The module itself called, through `export =`.
        #expect(hints.contains(
            "front-matter-kit declares: declare function matter<I extends matter.Input, O extends matter.GrayMatterOption<I, O>>(input: I | { content: I },"
                + " options?: O): matter.GrayMatterFile<I>"), "\(hints)")
    }
}

/// The declaration reader on Debian's typings and on hostile or odd text.
@Suite struct TypeDeclarationsTests {
    @Test func typeScriptsOwnLibraryNamespaceAndOverloads() throws {
        let text = try String(contentsOfFile: "/usr/share/nodejs/typescript/lib/typescript.d.ts", encoding: .utf8)
        let programs = TypeDeclarations.functions(named: "createProgram", in: text)
        #expect(programs.count == 2, "\(programs.map(\.text))")
        #expect(programs.first?.text == "export function createProgram(createProgramOptions: CreateProgramOptions): Program")
        #expect(programs.last?.accepts(2) == true && programs.last?.accepts(6) == false)
        // A member of an interface, found by its line break alone or its semicolon.
        #expect(TypeDeclarations.functions(named: "getSourceFile", in: text).contains { $0.text.hasPrefix("getSourceFile(fileName: string") })
    }

    @Test func restParametersAndFunctionTypedParameters() throws {
        let sprintf = try String(contentsOfFile: "/usr/share/nodejs/@types/sprintf-js/index.d.ts", encoding: .utf8)
        let found = TypeDeclarations.functions(named: "sprintf", in: sprintf)
        #expect(found.map(\.text) == ["export function sprintf(format: string, ...args: any[]): string"])
        #expect(found.first?.accepts(9) == true && found.first?.accepts(0) == false)
        let esprima = try String(contentsOfFile: "/usr/share/nodejs/@types/esprima/index.d.ts", encoding: .utf8)
        #expect(TypeDeclarations.functions(named: "parseScript", in: esprima).map(\.text) == [
            "export function parseScript(input: string, config?: ParseOptions, delegate?: (node: ESTree.Node, meta: any) => void): Program"
        ])
    }

    @Test func callsCommentsAndStringsAreNotDeclarations() {
        let text = """
            // export function stringify(a: string): string;
            const s = "function stringify(b: number): void";
            foo();
            stringify(a, b);
            export const stringify: <T>(value: T, space?: number) => string;
            export function body(a: string): Promise<void> { stringify(1, 2); }
            """
        #expect(TypeDeclarations.functions(named: "stringify", in: text).map(\.text) == [
            "export const stringify: <T>(value: T, space?: number) => string"
        ])
        #expect(TypeDeclarations.functions(named: "body", in: text).map(\.text) == ["export function body(a: string): Promise<void>"])
    }

    @Test func reexportsAndArgumentCounts() {
        #expect(TypeDeclarations.reexports(in: "export * from './a.js';\nexport { b as c } from \"./b\";\nexport type { T } from './t';\n// export * from 'x'")
            == ["./a.js", "./b", "./t"])
        let call = "f(a, { b: 1, c: [2, 3] }, \"x,y\", (p, q) => p)"
        #expect(TypeDeclarations.argumentCount(in: call, after: call.index(call.startIndex, offsetBy: 2)) == 4)
        #expect(TypeDeclarations.argumentCount(in: "f( )", after: "f( )".index("f( )".startIndex, offsetBy: 2)) == 0)
    }
}
