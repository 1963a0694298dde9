// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "toolhost",
    platforms: [.macOS("14.0")],
    products: [
        .executable(name: "toolhost", targets: ["toolhost"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // clone/exec for the runners: namespaces, mounts, rlimits, capabilities, no_new_privs, a ready
        // BPF program; the child's errno comes back through a close-on-exec pipe.
        .target(name: "CSandbox", cSettings: [.define("_GNU_SOURCE")]),
        // libseccomp, to compile each profile's filter to BPF in the parent.
        .systemLibrary(name: "CLibSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        // OpenSSL (libssl-dev, which libcurl4-openssl-dev brings): the egress proxy's per-session CA
        // and TLS for hosts whose requests carry a brokered secret.
        .target(name: "CTLS", linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        // The allow-list proxy and credential broker of `network: "allowlist"`: strict request heads,
        // host names checked byte for byte, secrets only where they belong, responses scrubbed.
        // Served on swift-nio's event loops, requests read by NIOHTTP1 (llhttp).
        .target(
            name: "Egress",
            dependencies: [
                "CTLS", "JSONCore", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // The trust boundary: the one place where host code touches what a sandbox can write. The
        // confined opener, the workspace's paths, files, walks and restores, `--mount` folders,
        // all on descriptors from the root's, never by name.
        .target(
            name: "WorkspaceAccess",
            dependencies: ["CSandbox", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict),
        // Confinement: profiles, seccomp compilation, and the runners: confined and (loudly) unconfined.
        .target(
            name: "Sandbox",
            dependencies: [
                "CSandbox", "CLibSeccomp", "Egress", "WorkspaceAccess", "JSONCore",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: ["default", "build", "network", "browser", "strict", "seccomp-base"].map { .embedInCode("Resources/\($0).json") },
            swiftSettings: strict
        ),
        // JSON values and the schema checks shared by the tools and the model clients.
        .target(name: "JSONCore", swiftSettings: strict),
        // libgit2: git runs in the host, so push credentials never enter the sandbox.
        .systemLibrary(name: "CLibGit2", pkgConfig: "libgit2", providers: [.apt(["libgit2-dev"])]),
        // Sessions, checkpoints, the registry and one file per tool.
        .target(
            name: "Tools",
            dependencies: ["JSONCore", "WorkspaceAccess", "Sandbox", "Egress", "CLibGit2", .product(name: "SystemPackage", package: "swift-system")],
            resources: [.embedInCode("Resources/tools.json"), .embedInCode("Resources/tools-compact.json")],
            swiftSettings: strict
        ),
        // The MCP front doors, stdio and Streamable HTTP, on a JSON-RPC layer of our own (see MCPConnection).
        .target(
            name: "MCPServer",
            dependencies: [
                "Tools", "Sandbox", "JSONCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationEssentialsCompat", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        // libcurl: the model endpoints' HTTP, with curl's proxies, unix sockets, CA store and HTTP/2.
        .systemLibrary(name: "CLibCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // Model endpoints: OpenAI-compatible chat completions and Anthropic Messages, streaming, retries.
        .target(name: "ModelEndpoints", dependencies: ["JSONCore", "CLibCurl"], swiftSettings: strict),
        // The agent loop: budgets, transcript, summary, report, task files.
        .target(
            name: "Agent",
            dependencies: [
                "Tools", "Sandbox", "Egress", "ModelEndpoints", "JSONCore", .product(name: "Yams", package: "Yams"),
                .product(name: "SystemPackage", package: "swift-system"), .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: strict
        ),
        // A scripted model server speaking both wire formats: the test double for models.
        .target(
            name: "MockEndpoint",
            dependencies: [
                "JSONCore", .product(name: "Hummingbird", package: "hummingbird"), .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"), .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "toolhost",
            dependencies: [
                "Tools", "MCPServer", "Agent", "MockEndpoint", "ModelEndpoints", "Sandbox", "WorkspaceAccess", "JSONCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Temporary workspaces and process checks shared by the test targets.
        .target(
            name: "TestSupport",
            dependencies: [.product(name: "Subprocess", package: "swift-subprocess"), .product(name: "SystemPackage", package: "swift-system")],
            path: "Tests/Support", swiftSettings: strict),
        .testTarget(
            name: "ToolsTests",
            dependencies: [
                "Tools", "WorkspaceAccess", "Sandbox", "Egress", "TestSupport", .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(name: "WorkspaceAccessTests", dependencies: ["WorkspaceAccess", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "MCPServerTests",
            dependencies: ["MCPServer", "Tools", "JSONCore", "Sandbox", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "AgentTests",
            dependencies: ["Agent", "ModelEndpoints", "JSONCore", .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: strict),
        // Drives the built `toolhost` binary end to end (CLI, MCP interop with the Python client).
        .testTarget(
            name: "CLITests",
            dependencies: [
                "toolhost", "TestSupport", .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: strict),
    ]
)
