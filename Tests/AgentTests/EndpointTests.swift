import Foundation
import JSONCore
@testable import ModelEndpoints
import Testing

@Suite struct EndpointTests {
    /// What the APIs say they took from their prompt caches: a cached run's processed tokens are
    /// what was sent less that.
    @Test func cachedPromptTokensAreRead() throws {
        let openai = try JSONValue.parse(#"{"prompt_tokens": 1000, "completion_tokens": 10, "prompt_tokens_details": {"cached_tokens": 900}}"#)
        #expect(OpenAIClient.usage(openai) == Usage(promptTokens: 1000, completionTokens: 10, cachedPromptTokens: 900))
        let anthropic = try JSONValue.parse(#"{"input_tokens": 100, "cache_creation_input_tokens": 50, "cache_read_input_tokens": 850, "output_tokens": 7}"#)
        #expect(AnthropicClient.usage(anthropic) == Usage(promptTokens: 1000, completionTokens: 7, cachedPromptTokens: 850))
    }

    @Test(arguments: [
        ("localhost:8080", "openai", "http://localhost:8080/v1/chat/completions"),
        ("http://10.0.0.5:8000", "openai", "http://10.0.0.5:8000/v1/chat/completions"),
        ("http://h:1234/v1", "openai", "http://h:1234/v1/chat/completions"),
        ("http://h:1234/v1/", "openai", "http://h:1234/v1/chat/completions"),
        ("http://h:11434/v1/chat/completions", "openai", "http://h:11434/v1/chat/completions"),
        ("https://api.openai.com", "openai", "https://api.openai.com/v1/chat/completions"),
        ("https://api.anthropic.com", "anthropic", "https://api.anthropic.com/v1/messages"),
        ("http://127.0.0.1:9000/v1/messages", "anthropic", "http://127.0.0.1:9000/v1/messages"),
        ("https://gateway.example/openai/v2", "openai", "https://gateway.example/openai/v2/chat/completions"),
    ])
    func endpointsParse(text: String, api: String, chat: String) throws {
        let endpoint = try Endpoint(text)
        #expect(endpoint.api.rawValue == api)
        #expect(endpoint.chatURL.absoluteString == chat)
        #expect(endpoint.modelsURL.absoluteString == chat.replacingOccurrences(of: api == "openai" ? "chat/completions" : "messages", with: "models"))
    }

    @Test func apiOverridesDetection() throws {
        let endpoint = try Endpoint("localhost:8080", api: .anthropic)
        #expect(endpoint.chatURL.absoluteString == "http://localhost:8080/v1/messages")
        #expect(endpoint.display == "localhost:8080")
    }

    @Test(arguments: [
        ("", "empty"), ("ftp://host:21", "http or https"), ("http://", "not host:port"),
        ("http://h:1/v1/chat/completions --api anthropic", "contains spaces"),
    ])
    func badEndpointsSayWhy(text: String, why: String) {
        #expect {
            try Endpoint(text)
        } throws: { error in
            "\(error)".contains(why) && "\(error)".contains("localhost:8080")
        }
    }

    @Test func aPathOfTheOtherAPIIsRefused() {
        #expect {
            try Endpoint("http://h:1/v1/chat/completions", api: .anthropic)
        } throws: { error in
            "\(error)".contains("the openai API's, but --api is anthropic")
        }
    }

    @Test func theKeyComesFromTheAPIsVariableOrTheOverride() throws {
        #expect(try Endpoint("localhost:1").keyVariable(override: nil) == "OPENAI_API_KEY")
        #expect(try Endpoint("https://api.anthropic.com").keyVariable(override: nil) == "ANTHROPIC_API_KEY")
        #expect(try Endpoint("localhost:1").keyVariable(override: "GROQ_KEY") == "GROQ_KEY")
    }
}
