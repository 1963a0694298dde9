import Foundation
@testable import Agent
import ModelEndpoints
import Testing

/// The probe's verdict from its checks alone.
@Suite struct ProbeVerdictTests {
    /// A client that is never asked: the verdict reads the checks only.
    struct Unasked: ModelClient {
        let endpoint: Endpoint
        func complete(_ request: ChatRequest, onEvent: @escaping StreamHandler) async throws -> ChatResponse { throw CancellationError() }
        func listModels() async throws -> [String] { [] }
        func close() async {}
    }

    /// Calls that came through a parsed text dialect count in the verdict even when the round
    /// trip failed (Qwen2.5-Coder 0.5B: 7 of 9 through text).
    @Test func textDialectCallsCountWhenARoundTripFails() throws {
        let probe = Probe(client: Unasked(endpoint: try Endpoint("localhost:1")), model: "m", constrainedPass: false)
        let checks: [Probe.Check] = [
            .init(name: "bare_call", result: .passText, dialect: "hermes", detail: ""),
            .init(name: "round_trip", result: .fail, dialect: nil, detail: ""),
            .init(name: "parallel_calls", result: .passText, dialect: "hermes", detail: ""),
        ]
        let report = probe.verdict(checks)
        #expect(report.kind == "unusable" && report.dialect == "hermes")
        #expect(report.verdict.hasSuffix("; 2 of 3 checks passed through text dialect hermes, which toolhost parses, but round_trip failed"), "\(report.verdict)")
    }
}
