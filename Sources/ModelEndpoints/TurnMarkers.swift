import Foundation

/// Chat-template markers that a model writes as text when it runs past the end of its turn.
/// For example, Gemma 3 270M under llama-server writes `<|im_end|>` and then makes up the
/// user's next message until max_tokens. The answer ends at the first marker, and reading
/// further only costs time.
enum TurnMarkers {
    static let all = [
        "<|im_end|>", "<|im_start|>", "<end_of_turn>", "<start_of_turn>", "<|eot_id|>", "<|start_header_id|>", "<|endoftext|>",
        "<|end|>", "<|user|>",
    ]
    static let longest = all.map(\.count).max()!

    /// The text before the first marker, or nil when it holds none. `from` skips a prefix
    /// already searched, so that a stream is searched once.
    static func cut(_ text: String, searchingFrom start: String.Index? = nil) -> String? {
        let region = start.map { text[$0...] } ?? text[...]
        // gpt-oss Harmony ends each message of a turn with <|end|> (analysis, then the call).
        let harmony = text.contains("<|channel|>")
        let found = all.filter { !(harmony && $0 == "<|end|>") }.compactMap { region.range(of: $0)?.lowerBound }.min()
        return found.map { String(text[..<$0]) }
    }
}
