//! GPT-2 token counts for FineWeb's `token_count` column, offline.
//!
//! The ranks are OpenAI's `r50k_base` (the GPT-2 BPE), embedded in the `tiktoken-rs` crate, so
//! nothing is fetched at run time. Counting splits the text with GPT-2's pre-tokenizer pattern and
//! memoises the BPE length of each piece: web text repeats its words, so most pieces are cache
//! hits and counting runs at memory speed. The result equals `len(tiktoken.get_encoding("gpt2")
//! .encode_ordinary(text))` (tested against the crate's own encoder).

use std::collections::HashMap;

use regex::Regex;
use tiktoken_rs::CoreBPE;

use crate::DatasetError;

/// The tokenizer named in the card and the manifest.
pub const TOKENIZER_NAME: &str = "gpt2 (r50k_base BPE ranks embedded in tiktoken-rs 0.12)";

/// GPT-2's pre-tokenizer, minus its whitespace look-ahead (`\s+(?!\S)`), which [`TokenCounter`]
/// applies by hand because the `regex` crate has no look-around.
const PIECE_PATTERN: &str = r"'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+";

/// Most distinct pieces memoised before the cache is cleared: ~1 M pieces of a few bytes is a few
/// tens of MB, while a web corpus's working vocabulary is far smaller.
const MAX_CACHED_PIECES: usize = 1 << 20;

/// Longest piece memoised; longer ones (long runs of punctuation or digits) are rare and counted
/// directly.
const MAX_CACHED_PIECE_BYTES: usize = 64;

/// Counts GPT-2 tokens. Not `Sync`: each thread owns one (it carries a cache).
pub struct TokenCounter {
    bpe: CoreBPE,
    pieces: Regex,
    cache: HashMap<String, u32>,
}

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCounter")
            .field("cached_pieces", &self.cache.len())
            .finish()
    }
}

impl TokenCounter {
    /// Loads the embedded GPT-2 ranks (~20 ms).
    pub fn new() -> Result<Self, DatasetError> {
        let bpe =
            tiktoken_rs::r50k_base().map_err(|e| DatasetError::Tokenizer { why: e.to_string() })?;
        let pieces = Regex::new(PIECE_PATTERN)
            .map_err(|e| DatasetError::Tokenizer { why: e.to_string() })?;
        Ok(TokenCounter {
            bpe,
            pieces,
            cache: HashMap::new(),
        })
    }

    /// The number of GPT-2 tokens in `text` (no special tokens).
    pub fn count(&mut self, text: &str) -> u64 {
        let mut total = 0u64;
        let mut pos = 0;
        while pos < text.len() {
            let Some(m) = self.pieces.find_at(text, pos) else {
                break;
            };
            let mut end = m.end();
            let piece = m.as_str();
            // `\s+(?!\S)`: a whitespace run followed by a non-space leaves its last character to
            // start the next piece (so " word" keeps its leading space).
            if end < text.len()
                && piece.chars().all(char::is_whitespace)
                && let Some(last) = piece.chars().next_back()
                && piece.len() > last.len_utf8()
            {
                end -= last.len_utf8();
            }
            total += u64::from(self.count_piece(&text[m.start()..end]));
            pos = end;
        }
        total
    }

    fn count_piece(&mut self, piece: &str) -> u32 {
        if piece.len() > MAX_CACHED_PIECE_BYTES {
            return u32::try_from(self.bpe.encode_ordinary(piece).len()).unwrap_or(u32::MAX);
        }
        if let Some(n) = self.cache.get(piece) {
            return *n;
        }
        let n = u32::try_from(self.bpe.encode_ordinary(piece).len()).unwrap_or(u32::MAX);
        if self.cache.len() >= MAX_CACHED_PIECES {
            self.cache.clear();
        }
        self.cache.insert(piece.to_string(), n);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_equal_the_reference_encoder() {
        let reference = tiktoken_rs::r50k_base().unwrap();
        let mut counter = TokenCounter::new().unwrap();
        let texts = [
            "",
            "Hello world",
            "Hello, world! It's a test; they'll see we've done 12345 things.",
            "  leading spaces and trailing   ",
            "tabs\tand\nnew lines\n\n\nparagraphs   \n  indented",
            "Ünïcödé wörds, 日本語のテキスト, русский текст, ελληνικά 🙂🙂 emoji",
            "x  y   z    \n\n w",
            "'s 're 'quoted' don't I'M",
            "numbers 3.14159 and ١٢٣ and Ⅻ roman",
            "punctuation!!!??? ... --- *** ### $$$",
            "a\u{a0}b\u{2003}c \u{3000}d",
            "trailing newline\n",
            "\n",
            "   ",
        ];
        for text in texts {
            assert_eq!(
                counter.count(text),
                reference.encode_ordinary(text).len() as u64,
                "{text:?}"
            );
        }
        // Twice, so the cached path is exercised too.
        for text in texts {
            assert_eq!(
                counter.count(text),
                reference.encode_ordinary(text).len() as u64
            );
        }
    }
}
