//! GPT-2 token counts for FineWeb's `token_count` column, offline.
//!
//! The ranks are OpenAI's `r50k_base` (the GPT-2 BPE), embedded in the `tiktoken-rs` crate, so
//! nothing is fetched at run time. Counting splits the text with GPT-2's pre-tokenizer pattern and
//! memoises the BPE length of each piece: web text repeats its words, so most pieces are cache
//! hits and counting runs at memory speed. The result equals `len(tiktoken.get_encoding("gpt2")
//! .encode_ordinary(text))` (tested against the crate's own encoder).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use regex::Regex;
use tiktoken_rs::CoreBPE;

use crate::DatasetError;

/// The tokenizer named in the card and the manifest.
pub const TOKENIZER_NAME: &str = "gpt2 (r50k_base BPE ranks embedded in tiktoken-rs 0.12)";

/// Most distinct pieces memoised before the cache is cleared: ~1 M pieces of a few bytes is a few
/// tens of MB, while a web corpus's working vocabulary is far smaller.
const MAX_CACHED_PIECES: usize = 1 << 20;

/// Longest piece memoised; longer ones (long runs of punctuation or digits) are rare and counted
/// directly.
const MAX_CACHED_PIECE_BYTES: usize = 64;

/// Character classes of GPT-2's pre-tokenizer pattern
/// `'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Number,
    Space,
    Other,
}

/// FxHash (rustc's hasher): the piece cache hashes millions of short strings, where SipHash's
/// DoS resistance buys nothing (the exporter's own input) and costs most of the lookup.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// Counts GPT-2 tokens. Each thread owns one (it carries caches); [`TokenCounter::share`] gives
/// another thread a counter over the same ranks without loading them again.
pub struct TokenCounter {
    bpe: Arc<CoreBPE>,
    letter: Regex,
    /// The class of each ASCII character, so scanning ASCII text is a table lookup per byte.
    ascii: [Class; 128],
    classes: FxMap<char, Class>,
    cache: FxMap<String, u32>,
}

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCounter")
            .field("cached_pieces", &self.cache.len())
            .finish()
    }
}

/// The class of an ASCII character (the table in [`TokenCounter`] is built from this).
fn ascii_class(c: char) -> Class {
    match c {
        'a'..='z' | 'A'..='Z' => Class::Letter,
        '0'..='9' => Class::Number,
        _ if c.is_whitespace() => Class::Space,
        _ => Class::Other,
    }
}

fn next_char(text: &str, i: usize) -> Option<(char, usize)> {
    text.get(i..)?.chars().next().map(|c| (c, i + c.len_utf8()))
}

impl TokenCounter {
    /// Loads the embedded GPT-2 ranks (~20 ms).
    pub fn new() -> Result<Self, DatasetError> {
        let bpe =
            tiktoken_rs::r50k_base().map_err(|e| DatasetError::Tokenizer { why: e.to_string() })?;
        let letter =
            Regex::new(r"^\p{L}$").map_err(|e| DatasetError::Tokenizer { why: e.to_string() })?;
        let mut ascii = [Class::Other; 128];
        for (b, class) in (0u8..).zip(ascii.iter_mut()) {
            *class = ascii_class(char::from(b));
        }
        Ok(TokenCounter {
            bpe: Arc::new(bpe),
            letter,
            ascii,
            classes: FxMap::default(),
            cache: FxMap::default(),
        })
    }

    /// Another counter over the same ranks (shared, not loaded again) with empty caches of its
    /// own, for another thread.
    pub fn share(&self) -> Self {
        TokenCounter {
            bpe: Arc::clone(&self.bpe),
            letter: self.letter.clone(),
            ascii: self.ascii,
            classes: FxMap::default(),
            cache: FxMap::default(),
        }
    }

    /// The number of GPT-2 tokens in `text` (no special tokens).
    pub fn count(&mut self, text: &str) -> u64 {
        let mut total = 0u64;
        let mut i = 0;
        while i < text.len() {
            let end = self.piece_end(text, i);
            if end <= i {
                break;
            }
            total += u64::from(self.count_piece(&text[i..end]));
            i = end;
        }
        total
    }

    fn class(&mut self, c: char) -> Class {
        if c.is_ascii() {
            return self.ascii.get(c as usize).copied().unwrap_or(Class::Other);
        }
        if let Some(k) = self.classes.get(&c) {
            return *k;
        }
        let mut buf = [0u8; 4];
        let k = if c.is_whitespace() {
            Class::Space
        } else if self.letter.is_match(c.encode_utf8(&mut buf)) {
            Class::Letter
        } else if c.is_numeric() {
            Class::Number
        } else {
            Class::Other
        };
        self.classes.insert(c, k);
        k
    }

    /// End of the run of `class` characters starting at `i`. ASCII bytes are classified by table
    /// without decoding characters (most web text is mostly ASCII).
    fn run(&mut self, text: &str, mut i: usize, class: Class) -> usize {
        let bytes = text.as_bytes();
        while let Some(&b) = bytes.get(i) {
            if let Some(&k) = self.ascii.get(usize::from(b)) {
                if k != class {
                    break;
                }
                i += 1;
                continue;
            }
            match next_char(text, i) {
                Some((c, j)) if self.class(c) == class => i = j,
                _ => break,
            }
        }
        i
    }

    /// End of the pre-tokenizer piece starting at `i` (GPT-2's pattern, alternatives in order).
    fn piece_end(&mut self, text: &str, i: usize) -> usize {
        let Some((c, j)) = next_char(text, i) else {
            return text.len();
        };
        if c == '\'' {
            let rest = &text.as_bytes()[j..];
            if matches!(rest.first(), Some(b's' | b'd' | b'm' | b't')) {
                return j + 1;
            }
            if rest.starts_with(b"ll") || rest.starts_with(b"ve") || rest.starts_with(b"re") {
                return j + 2;
            }
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional single space, then a run.
        let (start, first) = match (c, next_char(text, j)) {
            (' ', Some((c2, _))) if self.class(c2) != Class::Space => (j, c2),
            _ => (i, c),
        };
        let class = self.class(first);
        if class != Class::Space {
            return self.run(text, start, class);
        }
        // `\s+(?!\S)|\s+`: a whitespace run followed by a non-space leaves its last character to
        // start the next piece (so " word" keeps its leading space).
        let end = self.run(text, i, Class::Space);
        if end == text.len() {
            return end;
        }
        match text[i..end].chars().next_back() {
            Some(last) if end - i > last.len_utf8() => end - last.len_utf8(),
            _ => end,
        }
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
            "'''' 's  's\t'll x'  \u{85}y \u{2028}z",
            "Ⓐ circled, देवनागरी लिपि, ١٢٣٤, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢, e\u{301}t\u{e9}",
            "end with space ",
            " \n\t mixed\r\n\r\nlines\u{a0}\u{a0}nbsp",
        ];
        for text in texts {
            assert_eq!(
                counter.count(text),
                reference.encode_ordinary(text).len() as u64,
                "{text:?}"
            );
        }
        // Twice, so the cached path is exercised too, and once more on a counter sharing the
        // ranks with empty caches.
        let mut shared = counter.share();
        for text in texts {
            let expected = reference.encode_ordinary(text).len() as u64;
            assert_eq!(counter.count(text), expected, "{text:?}");
            assert_eq!(shared.count(text), expected, "{text:?}");
        }
    }
}
