//! GPT-2 token counts for FineWeb's `token_count` column, offline.
//!
//! The ranks are OpenAI's `r50k_base` (the GPT-2 BPE), embedded in the `tiktoken-rs` crate, so
//! nothing is fetched at run time. Counting splits the text with GPT-2's pre-tokenizer pattern and
//! memoises the BPE length of each piece: web text repeats its words, so most pieces are cache
//! hits and counting runs at memory speed. The result equals `len(tiktoken.get_encoding("gpt2")
//! .encode_ordinary(text))` (tested against the crate's own encoder).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};

use regex::Regex;
use rustc_hash::FxHashMap;
use tiktoken_rs::{CoreBPE, Rank};

use crate::DatasetError;

/// The tokenizer named in the card and the manifest.
pub const TOKENIZER_NAME: &str = "gpt2 (r50k_base BPE ranks embedded in tiktoken-rs 0.12)";

/// Most distinct pieces memoised before the cache is cleared: ~1 M pieces of a few bytes is a few
/// tens of MB, while a web corpus's working vocabulary is far smaller.
const MAX_CACHED_PIECES: usize = 1 << 20;

/// Longest piece memoised; longer ones (long runs of punctuation or digits) are rare and counted
/// directly.
const MAX_CACHED_PIECE_BYTES: usize = 64;

/// Pieces shorter than this go through BPE merging directly ([`Ranks::merged_len`], tiktoken's
/// `byte_pair_split`,
/// quadratic in the piece's length); longer ones through the encoder, whose merge loop is
/// `O(n log n)` (tiktoken's own threshold).
const DIRECT_BPE_MAX_BYTES: usize = 100;

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

    fn write_u64(&mut self, v: u64) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(K);
    }

    fn write_u128(&mut self, v: u128) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        self.0 = (self.0.rotate_left(5) ^ v as u64).wrapping_mul(K);
        self.0 = (self.0.rotate_left(5) ^ (v >> 64) as u64).wrapping_mul(K);
    }

    /// The state rotated so that its best-mixed bits come first: hashbrown picks the bucket
    /// from the low bits, and after the last multiply the low bits of the state depend only on
    /// the low bits of what was mixed in (for a packed piece, little more than its first byte),
    /// so without this most keys crowd into a few runs of buckets (rustc-hash rotates the same
    /// way).
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

/// Longest piece kept in the short-piece cache: its bytes and its length fit in one `u128`.
const SHORT_PIECE_BYTES: usize = 15;

/// Slots of the direct-mapped front cache (as a power of two): 16,384 short pieces, 512 KiB,
/// enough for the words that make up most of any text, in front of the hash map.
const FRONT_SLOTS_LOG2: u32 = 14;

/// The front-cache slot of a short key: Fibonacci hashing of its two halves.
fn front_slot(key: u128) -> usize {
    let folded = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - FRONT_SLOTS_LOG2)) as usize
}

/// `SHORT_MASKS[len]` keeps the low `len` bytes of a `u128` (a table: a variable 128-bit shift
/// costs several instructions on the hot path).
static SHORT_MASKS: [u128; SHORT_PIECE_BYTES + 1] = {
    let mut masks = [0u128; SHORT_PIECE_BYTES + 1];
    let mut len = 0;
    while len <= SHORT_PIECE_BYTES {
        masks[len] = (1u128 << (8 * len)) - 1;
        len += 1;
    }
    masks
};

/// The short piece `bytes[start..start + len]` (`len` at most [`SHORT_PIECE_BYTES`]) packed into
/// a `u128`: its bytes little-endian, its length in the top byte. The cache then hashes and
/// compares two machine words instead of a heap string; most pieces of web text (a word with its
/// leading space) are this short. Away from the end of the text this is one unaligned load.
fn short_key(bytes: &[u8], start: usize, len: usize) -> u128 {
    let len = len.min(SHORT_PIECE_BYTES);
    let tag = (len as u128) << 120;
    if let Some(window) = bytes.get(start..).and_then(|rest| rest.first_chunk::<16>()) {
        return (u128::from_le_bytes(*window) & SHORT_MASKS[len]) | tag;
    }
    let piece = bytes.get(start..).unwrap_or_default();
    piece
        .iter()
        .take(len)
        .enumerate()
        .fold(tag, |key, (k, &b)| key | u128::from(b) << (8 * k))
}

/// Byte classes of the ASCII fast path ([`ascii_piece_end`]): letters, digits, other ASCII
/// (punctuation and symbols), ASCII whitespace, and any byte of a character outside ASCII.
const B_LETTER: u8 = 0;
const B_NUMBER: u8 = 1;
const B_OTHER: u8 = 2;
const B_SPACE: u8 = 3;
const B_NON_ASCII: u8 = 4;

/// The fast path's class of every byte value.
static BYTE_CLASS: [u8; 256] = {
    let mut table = [B_NON_ASCII; 256];
    let mut b = 0;
    while b < 128 {
        table[b] = match b as u8 {
            b'a'..=b'z' | b'A'..=b'Z' => B_LETTER,
            b'0'..=b'9' => B_NUMBER,
            // `char::is_whitespace` (Unicode White_Space, the pattern's `\s`) within ASCII.
            b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ' => B_SPACE,
            _ => B_OTHER,
        };
        b += 1;
    }
    table
};

#[inline]
fn byte_class(b: u8) -> u8 {
    BYTE_CLASS[usize::from(b)]
}

/// The end of the piece starting at `i` (whose first byte is `first`) when the pattern's answer
/// there can be read from ASCII bytes alone: ` ?` then a run of letters, digits or other
/// characters that ends before a non-ASCII byte, not starting with an apostrophe. `None` sends
/// the piece to the general path (contractions, whitespace runs, non-ASCII text).
#[inline]
fn ascii_piece_end(bytes: &[u8], i: usize, first: u8) -> Option<usize> {
    let (run_start, class) = match byte_class(first) {
        B_SPACE if first == b' ' => {
            let next = *bytes.get(i + 1)?;
            let class = byte_class(next);
            if class > B_OTHER {
                return None;
            }
            (i + 1, class)
        }
        class if class <= B_OTHER && first != b'\'' => (i, class),
        _ => return None,
    };
    let end = run_end(bytes, run_start, class);
    // A character outside ASCII may continue the run: let the general path decide.
    match bytes.get(end) {
        Some(&b) if b >= 0x80 => None,
        _ => Some(end),
    }
}

/// `b` in every byte of a word.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// The high bit of every byte.
const HIGH: u64 = splat(0x80);

/// The high bit of each byte lane of `word` (all lanes below 0x80) that is at least `c`
/// (`c` at most 0x80): adding `0x80 - c` carries into the high bit exactly then, and never
/// across lanes.
const fn at_least(word: u64, c: u8) -> u64 {
    word.wrapping_add(splat(0x80 - c)) & HIGH
}

/// The high bit of each byte lane of `word` (eight bytes, little-endian) whose byte is in
/// `class` (one of [`B_LETTER`], [`B_NUMBER`], [`B_OTHER`]): the byte table's answer for eight
/// bytes at once, without a branch per byte.
fn class_lanes(word: u64, class: u8) -> u64 {
    let ascii = !word & HIGH;
    let low = word & !HIGH;
    let in_range = |x: u64, lo: u8, hi: u8| at_least(x, lo) & !at_least(x, hi + 1);
    let letter = in_range(low | splat(0x20), b'a', b'z');
    let number = in_range(low, b'0', b'9');
    let lanes = match class {
        B_LETTER => letter,
        B_NUMBER => number,
        _ => {
            let space = in_range(low, 0x09, 0x0D) | in_range(low, b' ', b' ');
            !(letter | number | space)
        }
    };
    lanes & ascii
}

/// The end of the run of `class` bytes starting at `start` (whose first byte is of `class`),
/// eight bytes per step.
fn run_end(bytes: &[u8], start: usize, class: u8) -> usize {
    let mut at = start;
    loop {
        let word = match bytes.get(at..).and_then(|rest| rest.first_chunk::<8>()) {
            Some(window) => u64::from_le_bytes(*window),
            None => {
                // Near the end: pad with a byte of no class (0x80 is not ASCII).
                let mut w = [0x80u8; 8];
                let rest = bytes.get(at..).unwrap_or_default();
                for (slot, &b) in w.iter_mut().zip(rest) {
                    *slot = b;
                }
                u64::from_le_bytes(w)
            }
        };
        let outside = !class_lanes(word, class) & HIGH;
        if outside != 0 {
            return at + (outside.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// Counts GPT-2 tokens. Each thread owns one (it carries caches); [`TokenCounter::share`] gives
/// another thread a counter over the same ranks without loading them again.
pub struct TokenCounter {
    vocab: Arc<Vocabulary>,
    /// The class of each ASCII character, so scanning ASCII text is a table lookup per byte.
    ascii: [Class; 128],
    classes: FxMap<char, Class>,
    /// The most recent piece seen in each [`front_slot`] and its BPE length: one multiply and
    /// one compare for a hit, where the hash map takes several times that. Key 0 (no piece
    /// packs to it: the length byte of a non-empty piece is set) marks an empty slot.
    front: Vec<(u128, u32)>,
    /// BPE lengths of pieces of at most [`SHORT_PIECE_BYTES`], keyed by [`short_key`].
    short: FxMap<u128, u32>,
    /// BPE lengths of longer pieces (up to [`MAX_CACHED_PIECE_BYTES`]).
    cache: FxMap<String, u32>,
}

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCounter")
            .field("cached_pieces", &(self.short.len() + self.cache.len()))
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
    /// A counter with empty caches over the embedded GPT-2 ranks, which are loaded on first use
    /// in the process (~30 ms) and then shared, so later counters cost only their caches.
    pub fn new() -> Result<Self, DatasetError> {
        Ok(Self::over(vocabulary()?))
    }

    /// Another counter over the same ranks with empty caches of its own, for another thread.
    pub fn share(&self) -> Self {
        Self::over(Arc::clone(&self.vocab))
    }

    fn over(vocab: Arc<Vocabulary>) -> Self {
        let mut ascii = [Class::Other; 128];
        for (b, class) in (0u8..).zip(ascii.iter_mut()) {
            *class = ascii_class(char::from(b));
        }
        TokenCounter {
            vocab,
            ascii,
            classes: FxMap::default(),
            front: vec![(0, 0); 1 << FRONT_SLOTS_LOG2],
            short: FxMap::default(),
            cache: FxMap::default(),
        }
    }

    /// The number of GPT-2 tokens in `text` (no special tokens).
    ///
    /// Pieces made of ASCII alone (most pieces of most text) are cut and looked up in one tight
    /// loop over a byte table; any piece touching a byte outside ASCII, or starting with an
    /// apostrophe (contractions), takes the general path, which follows the pattern exactly.
    pub fn count(&mut self, text: &str) -> u64 {
        let bytes = text.as_bytes();
        let mut total = 0u64;
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if let Some(end) = ascii_piece_end(bytes, i, b) {
                total += u64::from(self.count_ascii_piece(text, i, end));
                i = end;
                continue;
            }
            let end = self.piece_end(text, i);
            if end <= i {
                break;
            }
            total += u64::from(self.count_piece(text, i, end));
            i = end;
        }
        total
    }

    /// [`Self::count_piece`] for a piece known to be ASCII: short pieces go straight to the
    /// front cache.
    #[inline]
    fn count_ascii_piece(&mut self, text: &str, start: usize, end: usize) -> u32 {
        let len = end - start;
        if len <= SHORT_PIECE_BYTES {
            let key = short_key(text.as_bytes(), start, len);
            if let Some(&(k, n)) = self.front.get(front_slot(key))
                && k == key
            {
                return n;
            }
        }
        self.count_piece(text, start, end)
    }

    #[inline]
    fn class(&mut self, c: char) -> Class {
        match self.ascii.get(c as usize) {
            Some(&k) => k,
            None => self.class_of_non_ascii(c),
        }
    }

    /// The class of a character outside ASCII, memoised (the Unicode lookups are slow).
    #[inline(never)]
    fn class_of_non_ascii(&mut self, c: char) -> Class {
        if let Some(k) = self.classes.get(&c) {
            return *k;
        }
        let mut buf = [0u8; 4];
        let k = if c.is_whitespace() {
            Class::Space
        } else if self.vocab.letter.is_match(c.encode_utf8(&mut buf)) {
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

    /// End of the pre-tokenizer piece starting at `i` (GPT-2's pattern, alternatives in order),
    /// decoding characters: the pieces [`ascii_piece_end`] leaves (contractions, whitespace
    /// runs, text outside ASCII).
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

    /// The BPE length of the piece `text[start..end]`, from the caches when it was seen before.
    fn count_piece(&mut self, text: &str, start: usize, end: usize) -> u32 {
        let piece = text.get(start..end).unwrap_or_default();
        if piece.len() <= SHORT_PIECE_BYTES {
            let key = short_key(text.as_bytes(), start, piece.len());
            let slot = front_slot(key);
            if let Some(&(k, n)) = self.front.get(slot)
                && k == key
            {
                return n;
            }
            let n = match self.short.get(&key) {
                Some(n) => *n,
                None => {
                    let n = self.bpe_len(piece);
                    if self.short.len() >= MAX_CACHED_PIECES {
                        self.short.clear();
                    }
                    self.short.insert(key, n);
                    n
                }
            };
            if let Some(entry) = self.front.get_mut(slot) {
                *entry = (key, n);
            }
            return n;
        }
        if piece.len() > MAX_CACHED_PIECE_BYTES {
            return self.bpe_len(piece);
        }
        if let Some(n) = self.cache.get(piece) {
            return *n;
        }
        let n = self.bpe_len(piece);
        if self.cache.len() >= MAX_CACHED_PIECES {
            self.cache.clear();
        }
        self.cache.insert(piece.to_string(), n);
        n
    }

    /// The BPE length of one piece, from the ranks (the uncached path). A piece that is a token
    /// is one, as in tiktoken's `encode_ordinary` (which looks the whole piece up before
    /// merging): one look-up instead of a few per byte, and most words of a common language
    /// are GPT-2 tokens with their leading space.
    fn bpe_len(&self, piece: &str) -> u32 {
        let bytes = piece.as_bytes();
        let n = match &self.vocab.ranks {
            _ if bytes.len() <= 1 => bytes.len(),
            Some(ranks) if bytes.len() < DIRECT_BPE_MAX_BYTES => {
                if ranks.get(bytes, 0, bytes.len()) == Rank::MAX {
                    ranks.merged_len(bytes)
                } else {
                    1
                }
            }
            _ => self.vocab.bpe.encode_ordinary(piece).len(),
        };
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// The GPT-2 encoder, its ordinary ranks, and the pre-tokenizer's letter class.
struct Vocabulary {
    bpe: CoreBPE,
    /// `\p{L}`, for characters outside ASCII (compiled once: ~2 M instructions).
    letter: Regex,
    /// Bytes to rank, for merging one piece without the encoder's regex split: a piece is
    /// already one pre-token, and the split cost ~3,000 instructions per uncached piece. `None`
    /// if the ranks could not be read back complete (then the encoder counts every uncached
    /// piece).
    ranks: Option<Ranks>,
}

/// The ordinary ranks, for merging pieces: a token of at most [`SHORT_PIECE_BYTES`] bytes (all
/// but a few hundred of them) keyed by its packed bytes ([`short_key`]: hashed and compared as
/// two machine words, with no pointer to a heap string to follow), longer ones by their bytes.
/// Merging an uncached piece is a few look-ups per byte, each a likely cache miss in a table of
/// 50,256 tokens: one miss instead of two, and no byte-wise hash or `memcmp`.
struct Ranks {
    /// The rank of every two-byte token, indexed by its bytes (first byte low), `u16::MAX` for
    /// a pair that is none: a merge looks up every adjacent pair of its piece first, and this
    /// answers from a 128 KiB table whose common entries stay in the CPU's caches, with no
    /// hashing.
    pairs: Vec<u16>,
    /// Tokens of 3 to 7 bytes (most of them, and most longer parts a merge looks up), in half
    /// the room: 16-byte entries, twice as many to a cache line.
    tiny: FxMap<u64, Rank>,
    short: FxMap<u128, Rank>,
    long: FxHashMap<Vec<u8>, Rank>,
}

/// Longest token in [`Ranks::tiny`]: its bytes and its length fit in one `u64`.
const TINY_TOKEN_BYTES: usize = 7;

/// A token of at most [`TINY_TOKEN_BYTES`] bytes packed into a `u64` as [`short_key`] packs
/// into a `u128`: bytes little-endian, the length in the top byte.
fn tiny_key(bytes: &[u8], start: usize, len: usize) -> u64 {
    let len = len.min(TINY_TOKEN_BYTES);
    // `short_key` puts the bytes in the low 7 bytes and its length tag above them.
    (short_key(bytes, start, len) as u64) | ((len as u64) << 56)
}

impl Ranks {
    /// `None` if a two-byte token's rank does not fit below `u16::MAX` (GPT-2's are below
    /// 50,257), as [`Ranks::pairs`] could not hold it.
    fn new(all: FxHashMap<Vec<u8>, Rank>) -> Option<Self> {
        let mut pairs = vec![u16::MAX; 1 << 16];
        let mut tiny = FxMap::default();
        let mut short = FxMap::default();
        let mut long = FxHashMap::default();
        for (bytes, rank) in all {
            if let &[a, b] = bytes.as_slice() {
                let r = u16::try_from(rank).ok().filter(|&r| r != u16::MAX)?;
                *pairs.get_mut(usize::from(a) | usize::from(b) << 8)? = r;
            } else if bytes.len() <= TINY_TOKEN_BYTES {
                tiny.insert(tiny_key(&bytes, 0, bytes.len()), rank);
            } else if bytes.len() <= SHORT_PIECE_BYTES {
                short.insert(short_key(&bytes, 0, bytes.len()), rank);
            } else {
                long.insert(bytes, rank);
            }
        }
        Some(Ranks {
            pairs,
            tiny,
            short,
            long,
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let pairs = self.pairs.iter().filter(|&&r| r != u16::MAX).count();
        pairs + self.tiny.len() + self.short.len() + self.long.len()
    }

    /// The rank of the token `piece[start..end]`, or `Rank::MAX` when it is none.
    #[inline]
    fn get(&self, piece: &[u8], start: usize, end: usize) -> Rank {
        let len = end.saturating_sub(start);
        if len == 2 {
            return match piece.get(start..end) {
                Some(&[a, b]) => match self.pairs.get(usize::from(a) | usize::from(b) << 8) {
                    Some(&r) if r != u16::MAX => Rank::from(r),
                    _ => Rank::MAX,
                },
                _ => Rank::MAX,
            };
        }
        let rank = if len <= TINY_TOKEN_BYTES {
            self.tiny.get(&tiny_key(piece, start, len))
        } else if len <= SHORT_PIECE_BYTES {
            self.short.get(&short_key(piece, start, len))
        } else {
            piece.get(start..end).and_then(|t| self.long.get(t))
        };
        rank.copied().unwrap_or(Rank::MAX)
    }

    /// The number of tokens byte-pair merging makes of `piece` (2 bytes or more): tiktoken's
    /// `_byte_pair_merge` (the same merges in the same order: at each step the lowest-ranked
    /// adjacent pair, leftmost on ties), with [`Ranks::get`]'s look-ups.
    fn merged_len(&self, piece: &[u8]) -> usize {
        let n = piece.len();
        if n < 2 {
            return n;
        }
        // The piece followed by zero bytes, so that every packed key is one 16-byte load
        // (masked to its length), also near the piece's end. A longer piece (never passed:
        // those go to the encoder) is read as it is.
        let mut padded = [0u8; DIRECT_BPE_MAX_BYTES + 16];
        let bytes = match padded.get_mut(..n) {
            Some(head) => {
                head.copy_from_slice(piece);
                &padded[..]
            }
            None => piece,
        };
        // (start, rank of the pair starting here); two sentinels at the end.
        let mut parts: Vec<(usize, Rank)> = Vec::with_capacity(n + 1);
        let mut min = (Rank::MAX, usize::MAX);
        for i in 0..n - 1 {
            let rank = self.get(bytes, i, i + 2);
            if rank < min.0 {
                min = (rank, i);
            }
            parts.push((i, rank));
        }
        parts.push((n - 1, Rank::MAX));
        parts.push((n, Rank::MAX));
        // The rank of part `i` merged with the next one, before part `i + 1` is removed.
        let rank_at = |parts: &[(usize, Rank)], i: usize| match (parts.get(i), parts.get(i + 3)) {
            (Some(&(a, _)), Some(&(b, _))) => self.get(bytes, a, b),
            _ => Rank::MAX,
        };
        while min.0 != Rank::MAX {
            let i = min.1;
            if i > 0 {
                let rank = rank_at(&parts, i - 1);
                if let Some(p) = parts.get_mut(i - 1) {
                    p.1 = rank;
                }
            }
            let rank = rank_at(&parts, i);
            if let Some(p) = parts.get_mut(i) {
                p.1 = rank;
            }
            parts.remove(i + 1);
            min = (Rank::MAX, usize::MAX);
            for (i, &(_, rank)) in parts.iter().take(parts.len() - 1).enumerate() {
                if rank < min.0 {
                    min = (rank, i);
                }
            }
        }
        parts.len() - 1
    }
}

/// Loaded once per process and shared by every counter: loading costs ~30 ms (~170 M
/// instructions, a tenth of them to free it again), which a validator exporting on a timer
/// would otherwise pay on every export.
static VOCABULARY: OnceLock<Result<Arc<Vocabulary>, String>> = OnceLock::new();

fn vocabulary() -> Result<Arc<Vocabulary>, DatasetError> {
    VOCABULARY
        .get_or_init(|| {
            let bpe = tiktoken_rs::r50k_base().map_err(|e| e.to_string())?;
            let letter = Regex::new(r"^\p{L}$").map_err(|e| e.to_string())?;
            let ranks = ordinary_ranks(&bpe).and_then(Ranks::new);
            Ok(Arc::new(Vocabulary { bpe, letter, ranks }))
        })
        .clone()
        .map_err(|why| DatasetError::Tokenizer { why })
}

/// The encoder's ordinary ranks, read back through `decode_bytes` (tiktoken-rs does not expose
/// the map): ranks from 0 up to the first that does not decode, without special tokens. `None`
/// unless every single byte has a rank, which byte-level BPE merging needs (so a piece always
/// splits into known tokens, and the count equals the encoder's).
fn ordinary_ranks(bpe: &CoreBPE) -> Option<FxHashMap<Vec<u8>, Rank>> {
    let special = bpe.special_tokens();
    let mut ranks = FxHashMap::default();
    for rank in 0..Rank::MAX {
        let Ok(bytes) = bpe.decode_bytes(&[rank]) else {
            break;
        };
        if std::str::from_utf8(&bytes).is_ok_and(|s| special.contains(s)) {
            continue;
        }
        ranks.insert(bytes, rank);
    }
    (0..=u8::MAX)
        .all(|b| ranks.contains_key([b].as_slice()))
        .then_some(ranks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference encoder and a counter, loaded once for all cases (~30 ms each).
    static REFERENCE: std::sync::LazyLock<(CoreBPE, TokenCounter)> =
        std::sync::LazyLock::new(|| {
            (
                tiktoken_rs::r50k_base().unwrap(),
                TokenCounter::new().unwrap(),
            )
        });

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Texts built from the characters where the pre-tokenizer's alternatives meet (spaces
        /// of every kind, apostrophes and contractions, digits, punctuation, letters outside
        /// ASCII, combining marks) count exactly as the reference encoder does, on the ASCII
        /// fast path and the general one alike, with cold and warm caches.
        #[test]
        fn any_text_counts_as_the_reference_encoder(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just(" "), Just("  "), Just("\t"), Just("\n"), Just("\r\n"), Just("\u{a0}"),
                    Just("\u{3000}"), Just("'"), Just("'s"), Just("'ll"), Just("'re"), Just("'x"),
                    Just("word"), Just("Word"), Just("a"), Just("123"), Just("4"), Just("\u{661}"),
                    Just("."), Just("..."), Just("!?"), Just("-"), Just("é"), Just("e\u{301}"),
                    Just("日本"), Just("русский"), Just("🙂"), Just("\u{200b}"), Just("Ⅻ"),
                    Just("averyveryverylongwordthatexceedsfifteenbytes"), Just("\u{b}"),
                    Just("\u{c}"), Just("\u{1c}"), Just("\u{85}"), Just("\"'s"), Just("x'"),
                    Just("—"), Just("-—"), Just("a1b2"), Just("$"), Just("café"),
                ],
                0..40,
            )
        ) {
            let text: String = parts.concat();
            let (reference, base) = &*REFERENCE;
            let expected = reference.encode_ordinary(&text).len() as u64;
            let mut counter = base.share();
            prop_assert_eq!(counter.count(&text), expected, "{:?}", text);
            prop_assert_eq!(counter.count(&text), expected, "warm cache: {:?}", text);
        }
    }

    proptest! {
        /// Eight bytes at a time, the lanes of a class are the bytes the byte table puts in it,
        /// whatever their neighbours (bytes outside ASCII included).
        #[test]
        fn class_lanes_agree_with_the_byte_table(bytes in proptest::array::uniform8(any::<u8>())) {
            let word = u64::from_le_bytes(bytes);
            for class in [B_LETTER, B_NUMBER, B_OTHER] {
                let lanes = class_lanes(word, class);
                for (k, &b) in bytes.iter().enumerate() {
                    let lane = lanes >> (8 * k) & 0x80 != 0;
                    prop_assert_eq!(lane, BYTE_CLASS[usize::from(b)] == class, "{:?} {}", bytes, k);
                }
            }
        }
    }

    #[test]
    fn every_byte_is_in_its_table_class_alone() {
        for b in 0..=255u8 {
            for class in [B_LETTER, B_NUMBER, B_OTHER] {
                let lanes = class_lanes(splat(b), class);
                let expected = if BYTE_CLASS[usize::from(b)] == class {
                    HIGH
                } else {
                    0
                };
                assert_eq!(lanes, expected, "byte {b:#04x} class {class}");
            }
        }
    }

    #[test]
    fn short_keys_depend_on_the_piece_alone() {
        let near_end = b"xx ab";
        let far_from_end = b" ab and more than sixteen bytes after it";
        assert_eq!(short_key(near_end, 2, 3), short_key(far_from_end, 0, 3));
        assert_ne!(short_key(b"ab\0", 0, 2), short_key(b"ab\0", 0, 3));
        assert_ne!(short_key(b" ab", 0, 3), short_key(b" ac", 0, 3));
        let fifteen = b"fifteen-bytes!!and more";
        assert_eq!(short_key(fifteen, 0, 15), short_key(&fifteen[..15], 0, 15));
    }

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

    #[test]
    fn pieces_merge_directly_with_the_full_vocabulary() {
        let (reference, counter) = &*REFERENCE;
        // r50k_base: 50,256 ordinary tokens; `<|endoftext|>` (50256) is special and left out.
        let ranks = counter.vocab.ranks.as_ref().expect("ranks read back");
        assert_eq!(ranks.len(), 50_256);
        let special = b"<|endoftext|>";
        assert_eq!(ranks.get(special, 0, special.len()), Rank::MAX);
        assert_eq!(ranks.get(b" the", 0, 4), 262);
        // Uncached pieces on both sides of the direct-merge threshold, and one far beyond it
        // (a hostile run of letters must not take the quadratic path).
        let mut counter = counter.share();
        for len in [2, 3, 50, 98, 99, 100, 101, 150, 20_000] {
            for unit in ["ab", "qz", "7", "\u{e9}", "!?"] {
                let piece = unit.repeat(len / unit.len() + 1);
                let text = format!("x {piece} {piece}y");
                assert_eq!(
                    counter.count(&text),
                    reference.encode_ordinary(&text).len() as u64,
                    "{len} x {unit:?}"
                );
            }
        }
    }

    /// The packed-key merge makes as many tokens as tiktoken's own merge over the same ranks,
    /// for pieces of every length up to the direct-merge threshold: words with and without a
    /// leading space, text outside ASCII, digits and punctuation runs, and arbitrary bytes.
    #[test]
    fn packed_merge_equals_tiktokens_merge() {
        let (reference, counter) = &*REFERENCE;
        let all = ordinary_ranks(reference).expect("ranks");
        let ranks = counter.vocab.ranks.as_ref().expect("ranks");
        let mut pieces: Vec<Vec<u8>> = Vec::new();
        let words = "the quick brown fox jumps over lazy dogs internationalization \
                     antidisestablishmentarianism caf\u{e9} na\u{ef}ve \u{65e5}\u{672c}\u{8a9e} \
                     \u{440}\u{443}\u{441}\u{441}\u{43a}\u{438}\u{439} 1234567890 !!!??? ... \
                     \u{1f642}\u{1f642} Ⅻ e\u{301}t\u{e9} 'll DON'T";
        for w in words.split(' ') {
            pieces.push(w.as_bytes().to_vec());
            pieces.push(format!(" {w}").into_bytes());
            pieces.push(w.repeat(3).into_bytes());
        }
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 2..DIRECT_BPE_MAX_BYTES {
            for _ in 0..8 {
                let piece: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        // Mostly lower-case letters (long merges), some of any byte.
                        if x.is_multiple_of(4) {
                            (x >> 8) as u8
                        } else {
                            b'a' + (x >> 8) as u8 % 26
                        }
                    })
                    .collect();
                pieces.push(piece);
            }
        }
        for piece in pieces.iter().filter(|p| p.len() >= 2) {
            assert_eq!(
                ranks.merged_len(piece),
                tiktoken_rs::byte_pair_split(piece, &all).len(),
                "{piece:?}"
            );
        }
    }

    /// tiktoken's `encode_ordinary` takes a piece that is a token as that one token before any
    /// merging, and so does the counter: every token of the vocabulary short enough to be
    /// merged directly counts 1. (For GPT-2's ranks, merging a token's bytes rebuilds it
    /// every time, checked when the shortcut was added: it changes no count, only the cost.)
    #[test]
    fn a_piece_that_is_a_token_counts_one() {
        let (reference, counter) = &*REFERENCE;
        let all = ordinary_ranks(reference).expect("ranks");
        let counter = counter.share();
        let mut checked = 0;
        for bytes in all.keys().filter(|b| b.len() < DIRECT_BPE_MAX_BYTES) {
            let Ok(piece) = std::str::from_utf8(bytes) else {
                continue;
            };
            assert_eq!(counter.bpe_len(piece), 1, "{piece:?}");
            checked += 1;
        }
        assert!(checked > 40_000, "{checked}");
    }
}
