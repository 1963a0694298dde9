import Foundation
import TestSupport
import Testing
@testable import Egress
@testable import Sandbox
@testable import Tools

/// `network: "allowlist"`: real clients in the sandbox (curl, npm, git) through toolhost's egress
/// proxy to stand-in servers on the host, which listen on 127.0.0.2 (outside the sandbox's
/// NO_PROXY, and an internal address a rule must name).
@Suite(.serialized) struct EgressTests {
    static let profilesFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("sandbox-profiles").path

    /// A profile file: the network profile with `network: allowlist` and `egress`.
    func profile(_ scratch: Scratch, _ egress: [String: Any], name: String = "egress-test") throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.profilesFolder + "/network.json"))
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        object["network"] = "allowlist"
        object["egress"] = egress
        object["requires"] = ["mount_namespace", "pid_namespace", "network_namespace", "seccomp"]
        let path = scratch.root + "/\(name).json"
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        return path
    }

    func run(_ command: String, in session: Session, timeout: Int = 60) async -> ToolResult {
        await call("execute", ["command": .string(command), "timeout_seconds": .int(timeout)], in: session)
    }

    /// A stopped proxy (its session closing) accepts nothing more: the command that could reach
    /// an allowed host through it a moment ago now finds nothing listening.
    @Test func aStoppedProxyAcceptsNothing() async throws {
        let scratch = try Scratch()
        let open = try StandIn(scratch, name: "open")
        try "from the allowed host\n".write(toFile: open.folder + "/hello.txt", atomically: true, encoding: .utf8)
        let session = try scratch.session("egress", profile: try profile(scratch, ["allow": ["127.0.0.2:\(open.port)"]]), ownProfileOnly: true)
        let reached = await run("curl -sS http://127.0.0.2:\(open.port)/hello.txt", in: session)
        #expect(reached.text.hasPrefix("from the allowed host\n"), "\(reached.text)")
        try #require(session.runner as? ConfinedRunner).egress?.stop()
        let after = await run("curl -sS -m 5 http://127.0.0.2:\(open.port)/hello.txt 2>&1", in: session)
        #expect(!after.text.contains("from the allowed host"), "\(after.text)")
        #expect(after.text.contains("Failed to connect") || after.text.contains("Connection refused"), "\(after.text)")
        #expect(open.requests.count == 1, "only the first request reached the host")
    }

    @Test func anAllowedHostIsReachedAndOthersAreRefusedWithTheirRule() async throws {
        let scratch = try Scratch()
        let open = try StandIn(scratch, name: "open"), closed = try StandIn(scratch, name: "closed")
        try "from the allowed host\n".write(toFile: open.folder + "/hello.txt", atomically: true, encoding: .utf8)
        let path = try profile(scratch, ["allow": ["127.0.0.2:\(open.port)", "127.0.0.2:\(closed.port)", "localhost"], "deny": ["127.0.0.2:\(closed.port)"]])
        let session = try scratch.session("egress", profile: path, ownProfileOnly: true)

        let reached = await run("curl -sS http://127.0.0.2:\(open.port)/hello.txt", in: session)
        #expect(reached.text.hasPrefix("from the allowed host\n"), "\(reached.text)")

        let denied = await run("curl -sS -D - -o /dev/null -f http://127.0.0.2:\(closed.port)/hello.txt", in: session)
        #expect(denied.text.contains("[exit_code: 22"), "curl -f failed on the 403")
        #expect(denied.text.contains("HTTP/1.1 403"), "\(denied.text)")
        #expect(denied.text.contains("X-Toolhost-Blocked: deny \"127.0.0.2:\(closed.port)\"; profile=egress-test"), "\(denied.text)")
        #expect(denied.text.contains("was refused by deny \"127.0.0.2:\(closed.port)\""), "the denial note names the rule: \(denied.text)")
        #expect(closed.requests.isEmpty, "the denied server saw nothing")

        let stranger = await run("curl -sS -f http://example.invalid/ 2>&1", in: session)
        #expect(stranger.text.contains("GET example.invalid was refused by not in allow"), "\(stranger.text)")
        #expect(stranger.text.contains("add \"example.invalid\" to egress.allow"), "\(stranger.text)")

        // "localhost" is allowed by name, but a name never leads to the host's loopback.
        let loopback = await run("curl -sS -f --noproxy '' http://localhost:\(open.port)/hello.txt 2>&1", in: session)
        #expect(!loopback.text.contains("from the allowed host"))
        #expect(loopback.text.contains("refused by internal address 127.0.0.1"), "\(loopback.text)")

        // Without the proxy nothing is reachable at all.
        let direct = await run("curl -sS -m 5 --noproxy '*' http://127.0.0.2:\(open.port)/hello.txt 2>&1", in: session)
        #expect(!direct.text.contains("from the allowed host"), "\(direct.text)")

        // Every decision is in the session's log.
        let log = try String(contentsOfFile: scratch.statePath + "/egress.jsonl", encoding: .utf8)
        #expect(log.contains("\"allowed\":true") && log.contains("\"rule\":\"not in allow\""), "\(log)")
        await session.close()
    }

    /// A name that resolves to an internal address is refused even when allowed; its public
    /// addresses are used and pinned (the proxy connects to the address it checked).
    @Test func aPublicLookingNameThatResolvesInsideIsRefused() async throws {
        let scratch = try Scratch()
        let server = try StandIn(scratch, name: "inside")
        let listener = try loopbackListener()
        let policy = EgressPolicy(allow: [try #require(EgressPolicy.Rule("*.example.test"))])
        let proxy = try EgressProxy(policy: policy, profile: "p", listener: listener.fd, logPath: nil, secrets: [:]) { host in
            host == "registry.example.test" ? [IPAddress("127.0.0.2")!] : [IPAddress("::ffff:10.1.2.3")!]
        }
        defer { proxy.stop() }
        let ran = try await capture("/usr/bin/curl", ["-sS", "-D", "-", "-x", "http://127.0.0.1:\(listener.port)", "http://registry.example.test:\(server.port)/"])
        #expect(ran.stdout.contains("403 Forbidden") && ran.stdout.contains("X-Toolhost-Blocked: internal address 127.0.0.2"), "\(ran.stdout)")
        #expect(server.requests.isEmpty)
        let refusals = proxy.takeRefusals()
        #expect(refusals.count == 1 && refusals[0].host == "registry.example.test" && refusals[0].address == "127.0.0.2")
        #expect(proxy.explain(refusals[0]).contains("add the address itself (127.0.0.2)"))
    }

    @Test func readOnlyAllowsReadingOnly() async throws {
        let scratch = try Scratch()
        let server = try StandIn(scratch, name: "ro")
        try "x\n".write(toFile: server.folder + "/x.txt", atomically: true, encoding: .utf8)
        let path = try profile(scratch, ["allow": ["127.0.0.2"], "read_only": true])
        let session = try scratch.session("ro", profile: path, ownProfileOnly: true)
        let get = await run("curl -sS http://127.0.0.2:\(server.port)/x.txt", in: session)
        #expect(get.text.hasPrefix("x\n"), "\(get.text)")
        let post = await run("curl -sS -f -d data http://127.0.0.2:\(server.port)/x.txt 2>&1", in: session)
        #expect(post.text.contains("refused by read_only"), "\(post.text)")
        let tunnel = await run("curl -sS -f https://127.0.0.2:\(server.port)/ 2>&1", in: session)
        #expect(tunnel.text.contains("CONNECT cannot") || tunnel.text.contains("refused by read_only (https"), "\(tunnel.text)")
        await session.close()
    }

    /// The command sees a dummy; the proxy swaps in the real value only for the secret's host, only
    /// in its header, only over plain http where the profile says `insecure_http`; what the host
    /// sends back (an echo, a redirect, the value's base64 or hex) comes back with the dummy.
    @Test func aSecretNeverEntersTheSandboxAndReachesOnlyItsHost() async throws {
        let scratch = try Scratch()
        let registry = try StandIn(scratch, name: "registry"), other = try StandIn(scratch, name: "other")
        let clear = try StandIn(scratch, name: "clear")
        let secret = "real-token-\(UUID().uuidString)"
        let path = try profile(scratch, [
            "allow": ["127.0.0.2"],
            "secrets": [
                ["host": "127.0.0.2:\(registry.port)", "variable": "REGISTRY_TOKEN", "from": "TOOLHOST_TEST_REGISTRY_TOKEN", "insecure_http": true],
                ["host": "127.0.0.2:\(clear.port)", "variable": "CLEAR_TOKEN", "from": "TOOLHOST_TEST_REGISTRY_TOKEN"],
            ],
        ])
        var host = ProcessInfo.processInfo.environment
        host["TOOLHOST_TEST_REGISTRY_TOKEN"] = secret
        let session = try scratch.session("secret", profile: path, host: host, ownProfileOnly: true)
        let result = await run(
            """
            echo "seen: $REGISTRY_TOKEN"
            curl -sS -o /dev/null -H "Authorization: Bearer $REGISTRY_TOKEN" http://127.0.0.2:\(registry.port)/
            curl -sS -o /dev/null -H "Authorization: Bearer $REGISTRY_TOKEN" http://127.0.0.2:\(other.port)/
            curl -sS -o /dev/null -H "X-Token: $REGISTRY_TOKEN" "http://127.0.0.2:\(registry.port)/?q=$REGISTRY_TOKEN"
            curl -sS -o /dev/null -H "Authorization: Bearer $CLEAR_TOKEN" http://127.0.0.2:\(clear.port)/
            curl -sS -D - -H "Authorization: Bearer $REGISTRY_TOKEN" http://127.0.0.2:\(registry.port)/echo
            cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c TOOLHOST_TEST_REGISTRY_TOKEN
            grep -rl "\(secret)" /tmp /proc/self/environ . 2>/dev/null | head -3; echo end
            """, in: session)
        #expect(result.text.contains("seen: toolhost-dummy-"), "\(result.text)")
        #expect(!result.text.contains(secret))
        #expect(result.text.contains("\n0\n"), "no process in the sandbox has the host's variable: \(result.text)")
        #expect(registry.requests.first?.contains("Authorization: Bearer \(secret)") == true, "\(registry.requests)")
        #expect(other.requests.first?.contains("Authorization: Bearer toolhost-dummy-") == true, "\(other.requests)")
        #expect(!(other.requests.first ?? "").contains(secret))
        // Only the secret's own header gets it: not another header, not the URL.
        let second = registry.requests.dropFirst().first ?? ""
        #expect(second.contains("X-Token: toolhost-dummy-") && second.contains("?q=toolhost-dummy-") && !second.contains(secret), "\(second)")
        // Over plain http only where the profile says so.
        #expect(clear.requests.first?.contains("Authorization: Bearer toolhost-dummy-") == true && !clear.requests.joined().contains(secret), "\(clear.requests)")
        // The echo got the real value, and the sandbox got the dummy back in every form.
        #expect(registry.requests.last?.contains("Bearer \(secret)") == true)
        #expect(result.text.contains("X-Echo: Bearer toolhost-dummy-") && result.text.contains("Location: /next?k=toolhost-dummy-"), "\(result.text)")
        for form in SecretForms.of(secret) + SecretForms.of("Bearer " + secret) + SecretForms.of("x-access-token:" + secret) {
            #expect(!result.text.contains(form), "the echo's \(form) reached the sandbox: \(result.text)")
        }
        await session.close()
    }

    /// A secret bound to an https host: the proxy opens that host's TLS with a certificate from the
    /// session's CA (which the sandbox's clients trust, and which may certify that host only),
    /// checks the real host's certificate, and puts the real value into the request; a tunnel to
    /// any other host stays closed, and a host whose certificate the proxy cannot check never gets it.
    @Test func aSecretReachesItsHttpsHostThroughTheSessionsCA() async throws {
        let scratch = try Scratch()
        let trusted = try await certificate(scratch, "trusted"), untrusted = try await certificate(scratch, "untrusted")
        let registry = try StandIn(scratch, name: "tls-registry", tls: trusted)
        let other = try StandIn(scratch, name: "tls-other", tls: trusted)
        let impostor = try StandIn(scratch, name: "tls-impostor", tls: untrusted)
        try await registry.publish(package: "tiny-greeting", scratch: scratch)
        let remote = registry.folder + "/repo.git"
        try await git("init", "-q", "--bare", "-b", "main", remote, in: scratch.root)
        try await git("--git-dir", remote, "update-server-info", in: scratch.root)
        let secret = "real-token-\(UUID().uuidString)"
        let path = try profile(scratch, [
            "allow": ["127.0.0.2"],
            "secrets": [
                ["host": "127.0.0.2:\(registry.port)", "variable": "REGISTRY_TOKEN", "from": "TOOLHOST_TEST_REGISTRY_TOKEN"],
                ["host": "127.0.0.2:\(impostor.port)", "variable": "IMPOSTOR_TOKEN", "from": "TOOLHOST_TEST_REGISTRY_TOKEN"],
            ],
        ])
        var host = ProcessInfo.processInfo.environment
        host["TOOLHOST_TEST_REGISTRY_TOKEN"] = secret
        host["SSL_CERT_FILE"] = trusted.certificate  // what the proxy trusts for real hosts, beside the system's store
        try scratch.write(".npmrc", "//127.0.0.2:\(registry.port)/:_authToken=${REGISTRY_TOKEN}\n")
        try scratch.write("package.json", #"{"name": "app", "version": "1.0.0"}"# + "\n")
        let session = try scratch.session("tls", profile: path, host: host, ownProfileOnly: true)

        // No -k: curl trusts the session's CA through the variables the sandbox gets.
        let reached = await run(
            """
            curl -sS -o /dev/null -w 'registry %{http_code}\\n' -H "Authorization: Bearer $REGISTRY_TOKEN" https://127.0.0.2:\(registry.port)/ 2>&1
            curl -sS -k -o /dev/null -w 'other %{http_code}\\n' -H "Authorization: Bearer $REGISTRY_TOKEN" https://127.0.0.2:\(other.port)/ 2>&1
            curl -sS -o /dev/null https://127.0.0.2:\(other.port)/ 2>&1 | head -1
            curl -sS -o /dev/null -H "Authorization: Bearer $IMPOSTOR_TOKEN" https://127.0.0.2:\(impostor.port)/ 2>&1 | head -1
            curl -sS -o /dev/null -w 'fronted %{http_code}\n' -H "Host: other-tenant.example" -H "Authorization: Bearer $REGISTRY_TOKEN" https://127.0.0.2:\(registry.port)/ 2>&1
            curl -sS -D - -H "Authorization: Bearer $REGISTRY_TOKEN" https://127.0.0.2:\(registry.port)/echo 2>&1
            printf 'GET /sni HTTP/1.1\r\nHost: 127.0.0.2:\(registry.port)\r\nAuthorization: Bearer %s\r\n\r\n' "$REGISTRY_TOKEN" | timeout 10 openssl s_client -quiet -proxy 127.0.0.1:3128 -connect 127.0.0.2:\(registry.port) -servername other-tenant.example >/dev/null 2>&1; echo sni done
            grep -rl "\(secret)" /tmp . 2>/dev/null | head -3; echo end
            """, in: session)
        #expect(reached.text.contains("registry 200"), "\(reached.text)")
        #expect(reached.text.contains("other 200"), "\(reached.text)")
        #expect(!reached.text.contains(secret))
        #expect(registry.requests.first?.contains("Authorization: Bearer \(secret)") == true, "\(registry.requests)")
        // The other host's tunnel is blind: its own certificate, which the sandbox does not trust, and the dummy.
        #expect(reached.text.contains("SSL certificate problem"), "\(reached.text)")
        #expect(other.requests.first?.contains("Authorization: Bearer toolhost-dummy-") == true, "\(other.requests)")
        #expect(!other.requests.joined().contains(secret))
        // A secret's host whose certificate the proxy cannot check gets nothing at all.
        #expect(impostor.requests.isEmpty)
        #expect(reached.text.contains("TLS to the host failed"), "the denial note says why: \(reached.text)")
        // A Host naming another tenant of the same front end gets nothing (domain fronting).
        #expect(reached.text.contains("fronted 400"), "\(reached.text)")
        #expect(!registry.requests.contains { $0.contains("other-tenant") || $0.hasPrefix("GET /sni") }, "\(registry.requests)")
        // What the host echoes comes back with the dummy, whatever the form.
        #expect(reached.text.contains("X-Echo: Bearer toolhost-dummy-"), "\(reached.text)")
        for form in SecretForms.of(secret) + SecretForms.of("Bearer " + secret) + SecretForms.of("x-access-token:" + secret) {
            #expect(!reached.text.contains(form), "the echo's \(form) reached the sandbox")
        }

        // npm sends the registry token from .npmrc; git clones and pip installs over https, all through the session's CA.
        let installed = await run(
            "npm install --no-audit --no-fund --registry https://127.0.0.2:\(registry.port)/ tiny-greeting 2>&1; node -e 'console.log(require(\"tiny-greeting\"))'",
            in: session, timeout: 120)
        #expect(installed.text.contains("hello from tiny-greeting"), "\(installed.text)")
        #expect(registry.requests.contains { $0.hasPrefix("GET /tiny-greeting ") && $0.contains("Bearer \(secret)") }, "\(registry.requests)")
        let cloned = await run("git clone -q https://127.0.0.2:\(registry.port)/repo.git copy 2>&1; echo cloned $?", in: session)
        #expect(cloned.text.contains("cloned 0"), "\(cloned.text)")
        try await registry.publishWheel(project: "tiny-greeting", module: "tiny_greeting")
        let pip = await run(
            "python3 -m venv /tmp/v && /tmp/v/bin/pip install -q --no-deps --target /tmp/t --index-url https://127.0.0.2:\(registry.port)/simple/ tiny-greeting 2>&1 && PYTHONPATH=/tmp/t python3 -c 'import tiny_greeting; print(tiny_greeting.GREETING)'",
            in: session, timeout: 120)
        #expect(pip.text.contains("hello from pip"), "\(pip.text)")
        #expect(!installed.text.contains(secret) && !cloned.text.contains(secret) && !pip.text.contains(secret))

        // The session's CA may certify the secrets' hosts and nothing else, and is gone with the session.
        let trust = scratch.statePath + "/egress-trust"
        let folder = try #require(try FileManager.default.contentsOfDirectory(atPath: trust).first)
        let bundle = try String(contentsOfFile: "\(trust)/\(folder)/ca-bundle.pem", encoding: .utf8)
        let authority = scratch.root + "/session-ca.pem"
        try ("-----BEGIN CERTIFICATE-----" + bundle.components(separatedBy: "-----BEGIN CERTIFICATE-----").last!).write(toFile: authority, atomically: true, encoding: .utf8)
        let constraints = try await capture("/usr/bin/openssl", ["x509", "-noout", "-ext", "nameConstraints,basicConstraints", "-in", authority])
        #expect(constraints.stdout.contains("IP:127.0.0.2/255.255.255.255") && constraints.stdout.contains("DNS:toolhost.invalid"), "\(constraints.stdout)")
        #expect(constraints.stdout.contains("CA:TRUE, pathlen:0"), "\(constraints.stdout)")
        #expect(!bundle.contains("PRIVATE KEY"))
        await session.close()
        #expect(!FileManager.default.fileExists(atPath: "\(trust)/\(folder)"))
    }

    /// The session CA's name constraints: wildcards become their domain, addresses exact (v4 and
    /// v6), each name type constrained even when no secret uses it, and "*" leaves the CA unconstrained.
    @Test func theSessionCAMayCertifyOnlyTheSecretsHosts() async throws {
        func rules(_ hosts: String...) throws -> [EgressPolicy.Rule] { try hosts.map { try #require(EgressPolicy.Rule($0)) } }
        #expect(EgressProxy.nameConstraints(try rules("*.example.com", "registry.test:8443", "2001:db8::1"))
            == "permitted;DNS:example.com,permitted;DNS:registry.test,permitted;IP:2001:db8::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        #expect(EgressProxy.nameConstraints(try rules("10.0.0.7:4873")) == "permitted;DNS:toolhost.invalid,permitted;IP:10.0.0.7/255.255.255.255")
        #expect(EgressProxy.nameConstraints(try rules("npm.example.com")) == "permitted;DNS:npm.example.com,permitted;IP:0.0.0.0/255.255.255.255")
        #expect(EgressProxy.nameConstraints(try rules("npm.example.com", "*")) == nil)
    }

    /// A self-signed certificate for 127.0.0.2, and its key.
    func certificate(_ scratch: Scratch, _ name: String) async throws -> (certificate: String, key: String) {
        let certificate = scratch.root + "/\(name).pem", key = scratch.root + "/\(name)-key.pem"
        let made = try await capture("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", certificate, "-days", "1",
            "-subj", "/CN=127.0.0.2", "-addext", "subjectAltName=IP:127.0.0.2",
        ])
        try #require(made.status == 0, "openssl could not make a certificate")
        return (certificate, key)
    }

    /// npm install from a registry stand-in works under allowlist, and fails clearly for a host
    /// that is not on the list; git clones over http and pip installs from an allowed host.
    @Test func npmInstallAndGitCloneThroughTheProxy() async throws {
        let scratch = try Scratch()
        let registry = try StandIn(scratch, name: "npm")
        try await registry.publish(package: "tiny-greeting", scratch: scratch)
        let remote = registry.folder + "/repo.git"
        try await git("init", "-q", "--bare", "-b", "main", remote, in: scratch.root)
        let source = scratch.root + "/source"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try await git("init", "-q", "-b", "main", in: source)
        try "cloned\n".write(toFile: source + "/README", atomically: true, encoding: .utf8)
        try await git("add", ".", in: source)
        try await git("-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qm", "one", in: source)
        try await git("push", "-q", remote, "main", in: source)
        try await git("update-server-info", in: remote)

        let path = try profile(scratch, ["allow": ["127.0.0.2:\(registry.port)"]])
        try scratch.write("package.json", #"{"name": "app", "version": "1.0.0"}"# + "\n")
        let session = try scratch.session("npm", profile: path, ownProfileOnly: true)
        let installed = await run("npm install --no-audit --no-fund --registry http://127.0.0.2:\(registry.port)/ tiny-greeting 2>&1; node -e 'console.log(require(\"tiny-greeting\"))'", in: session, timeout: 120)
        #expect(installed.text.contains("hello from tiny-greeting"), "\(installed.text)")

        let refused = await run("npm install --no-audit --no-fund --fetch-retries 0 --registry http://registry.blocked.test/ left-pad 2>&1", in: session, timeout: 120)
        #expect(refused.text.contains("E403") && !refused.text.contains("[exit_code: 0"), "\(refused.text)")
        #expect(refused.text.contains("registry.blocked.test was refused by not in allow"), "\(refused.text)")

        let cloned = await run("git clone -q http://127.0.0.2:\(registry.port)/repo.git copy 2>&1 && cat copy/README", in: session)
        #expect(cloned.text.hasPrefix("cloned\n"), "\(cloned.text)")

        // pip (in a venv made inside the sandbox) from a simple index on the allowed host, and from one that is not.
        try await registry.publishWheel(project: "tiny-greeting", module: "tiny_greeting")
        let index = "--trusted-host 127.0.0.2 --index-url http://127.0.0.2:\(registry.port)/simple/"
        let pip = await run(
            "python3 -m venv /tmp/v && /tmp/v/bin/pip install -q --no-deps --target /tmp/t \(index) tiny-greeting 2>&1 && PYTHONPATH=/tmp/t python3 -c 'import tiny_greeting; print(tiny_greeting.GREETING)'",
            in: session, timeout: 120)
        #expect(pip.text.contains("hello from pip"), "\(pip.text)")
        let pipRefused = await run("/tmp/v/bin/pip download -q --retries 0 --no-deps -d /tmp/d --trusted-host pypi.blocked.test --index-url http://pypi.blocked.test/simple/ left-pad 2>&1", in: session, timeout: 120)
        #expect(pipRefused.text.contains("GET pypi.blocked.test was refused by not in allow"), "\(pipRefused.text)")
        await session.close()
    }

    @Test func badEgressSettingsAreRefusedByName() async throws {
        let scratch = try Scratch()
        for (egress, expected) in [
            (["allow": ["exa mple.com"]] as [String: Any], "field 'egress.allow[0]'"),
            (["allow": ["*"], "read_only": "yes"], "field 'egress.read_only': must be true or false"),
            (["allow": ["*"], "proxy": 1], "field 'egress.proxy': unknown field"),
        ] {
            let path = try profile(scratch, egress)
            #expect(throws: ProfileError.self) { try SandboxProfile.load(path) }
            do { _ = try SandboxProfile.load(path) } catch { #expect("\(error)".contains(expected), "\(error)") }
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.profilesFolder + "/default.json"))
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        object["egress"] = ["allow": ["*"]]
        let path = scratch.root + "/loopback-with-egress.json"
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        #expect(throws: ProfileError.self) { try SandboxProfile.load(path) }
    }

    /// A listening socket on the host's loopback at a port the kernel picks.
    func loopbackListener() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        try #require(bound)
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }
}

/// A stand-in server on 127.0.0.2 (an npm registry, a git host, an API): Python's http.server
/// over a folder, recording each request's head.
final class StandIn: @unchecked Sendable {
    let folder: String
    let port: Int
    let scheme: String
    private let process = Process()
    private let log: String

    static let script = #"""
        import base64, http.server, os, ssl, sys
        folder, log = sys.argv[1], sys.argv[2]
        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k): super().__init__(*a, directory=folder, **k)
            def record(self):
                with open(log, "a") as f: f.write(self.requestline + "\n" + str(self.headers) + "\0")
            def echo(self):
                # What a careless or hostile server does: hands the credential back, in several forms.
                auth = self.headers.get("Authorization", "")
                token = auth.split(" ")[-1]
                body = ("auth=" + auth + "\nb64=" + base64.b64encode(auth.encode()).decode() + "\nhex=" + token.encode().hex()
                        + "\nbasic=" + base64.b64encode(("x-access-token:" + token).encode()).decode() + "\n").encode()
                self.send_response(200); self.send_header("X-Echo", auth); self.send_header("Location", "/next?k=" + token)
                self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
            def do_DELETE(self):
                self.record(); self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
            def do_GET(self):
                self.record()
                if self.path.startswith("/echo"): return self.echo()
                name = self.path.strip("/")
                if name and os.path.isfile(os.path.join(folder, name + ".json")):
                    self.path = "/" + name + ".json"
                super().do_GET()
            def do_POST(self):
                self.record(); self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
            def log_message(self, *a): pass
        server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        if len(sys.argv) > 4:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(sys.argv[3], sys.argv[4])
            server.socket = context.wrap_socket(server.socket, server_side=True)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """#

    /// Serves http, or https with `tls`'s certificate and key.
    init(_ scratch: Scratch, name: String, tls: (certificate: String, key: String)? = nil) throws {
        folder = scratch.root + "/standin-\(name)"
        log = folder + ".log"
        scheme = tls == nil ? "http" : "https"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", Self.script, folder, log] + (tls.map { [$0.certificate, $0.key] } ?? [])
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = ""
        while let byte = try output.fileHandleForReading.read(upToCount: 1)?.first, byte != 0x0A { line.append(Character(UnicodeScalar(byte))) }
        port = try #require(Int(line), "the stand-in did not start")
    }

    /// Each request's line and headers, in order.
    var requests: [String] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\0").map(String.init)
    }

    /// Packs a one-file package with npm and serves it the way a registry does (metadata at
    /// /NAME, the tarball beside it).
    func publish(package name: String, scratch: Scratch) async throws {
        let source = scratch.root + "/pkg-\(name)"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try #"{"name": "\#(name)", "version": "1.0.0", "main": "index.js"}"#.write(toFile: source + "/package.json", atomically: true, encoding: .utf8)
        try "module.exports = 'hello from \(name)';\n".write(toFile: source + "/index.js", atomically: true, encoding: .utf8)
        let packed = try await capture("/usr/bin/npm", ["pack", "--json", "--pack-destination", folder], in: source)
        let info = try #require((try JSONSerialization.jsonObject(with: Data(packed.stdout.utf8)) as? [[String: Any]])?.first, "\(packed.stdout)")
        let file = try #require(info["filename"] as? String)
        let tarball = "\(scheme)://127.0.0.2:\(port)/\(file)"
        let metadata: [String: Any] = [
            "name": name, "dist-tags": ["latest": "1.0.0"],
            "versions": ["1.0.0": ["name": name, "version": "1.0.0", "main": "index.js",
                                   "dist": ["tarball": tarball, "shasum": info["shasum"] as Any, "integrity": info["integrity"] as Any]]],
        ]
        try JSONSerialization.data(withJSONObject: metadata).write(to: URL(fileURLWithPath: folder + "/\(name).json"))
    }

    /// Builds a one-module wheel (a zip, as PEP 427 has it) and a PEP 503 simple index page for it.
    func publishWheel(project: String, module: String) async throws {
        let wheel = "\(module)-1.0.0-py3-none-any.whl"
        let build = """
            import sys, zipfile
            wheel, module, project = sys.argv[1:4]
            info = f"{module}-1.0.0.dist-info"
            files = {f"{module}/__init__.py": "GREETING = 'hello from pip'\\n",
                     f"{info}/METADATA": f"Metadata-Version: 2.1\\nName: {project}\\nVersion: 1.0.0\\n",
                     f"{info}/WHEEL": "Wheel-Version: 1.0\\nGenerator: toolhost-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
            files[f"{info}/RECORD"] = "".join(f"{name},,\\n" for name in [*files, f"{info}/RECORD"])
            with zipfile.ZipFile(wheel, "w") as z:
                for name, text in files.items(): z.writestr(name, text)
            """
        let made = try await capture("/usr/bin/python3", ["-c", build, folder + "/" + wheel, module, project])
        try #require(made.status == 0)
        let page = folder + "/simple/\(project)"
        try FileManager.default.createDirectory(atPath: page, withIntermediateDirectories: true)
        try "<html><body><a href=\"../../\(wheel)\">\(wheel)</a></body></html>\n".write(toFile: page + "/index.html", atomically: true, encoding: .utf8)
    }

    /// SIGKILL: a test process's children inherit a blocked SIGTERM.
    deinit {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
