//! Deduplication: an exact key (blake3 of normalised text) and MinHash signatures with LSH bands
//! for near-duplicates, in FineWeb's configuration (word 5-grams, 14 bands × 8 hashes = 112).
//!
//! `minhash/v3` (stored signatures depend on it: a change to any of this is a new version and a
//! schema step that recomputes them from the stored texts, as versions 13 and 17 did):
//! * text is simplified: lower-cased, ASCII digits → `0`, diacritics stripped (each character
//!   canonically decomposed, as NFD does, and its nonspacing marks, General_Category Mn,
//!   dropped: `é` → `e`; a nonspacing mark on its own is dropped too, so decomposed and
//!   precomposed text simplify alike), every other non-alphanumeric character → space;
//! * words are hashed with [`word_hash`], shingles are 5 consecutive words (a shorter text is one
//!   shingle) combined by a fixed mixing function into a 64-bit hash `s`;
//! * one-permutation hashing (Li, Owen and Zhang, 2012): shingle `s` falls into bin
//!   `⌊(s >> 32) · 112 / 2³²⌋` and bin `i`'s value is the minimum of `s mod 2³²` over its shingles;
//! * an empty bin (texts of fewer than a few hundred shingles have some) takes the value of the
//!   first filled bin on its own probe sequence (optimal densification, Shrivastava, 2017): probe
//!   `p₀ = fmix64(`[`MINHASH_SEED`]` ^ i)`, `pₖ₊₁ = pₖ · 6364136223846793005 + 1442695040888963407
//!   mod 2⁶⁴`, bin `⌊(pₖ >> 32) · 112 / 2³²⌋`; after 2¹⁶ misses, the next filled bin after `i`. So
//!   two texts agree on a value with probability equal to their shingles' Jaccard similarity, as
//!   with 112 independent permutations, for one hash per shingle instead of 112; a text without
//!   words has every value all ones;
//! * each value is kept to its low 16 bits (b-bit minwise hashing, Li and König, 2010): the low
//!   bits of a minimum are uniform, so two different minima agree by chance with odds 2⁻¹⁶,
//!   which raises an estimate by at most 1.5 × 10⁻⁵ and a band of 8 values by 2⁻¹²⁸; a stored
//!   signature is 224 bytes where 32-bit values took 448, half of a record's row;
//! * the LSH band keys mix each band's number and 8 values with the shingle mix
//!   ([`MinHash::bands`]); they are not stored, so they are not part of `minhash/v3`.
//!
//! `minhash/v2` (schema versions 13 to 16) was the same but for the diacritics, which it kept.
//! `minhash/v1` (schema versions 1 to 12) kept, for each of 112 hashes
//! `((A[i] · s + B[i]) mod 2⁶⁴) >> 32`, the minimum over the shingles: 112 multiply-adds per
//! shingle. Schema version 13 recomputes the stored signatures from the stored texts
//! (`store/migrate.rs`).

use std::hash::Hasher;

use gleaner_protocol::Digest;

/// Hashes per signature.
pub const NUM_HASHES: usize = 112;
/// LSH bands; `NUM_HASHES / NUM_BANDS` = 8 rows per band gives a threshold near Jaccard 0.72.
pub const NUM_BANDS: usize = 14;
/// Bytes of a stored signature: each value is kept to its low 16 bits (see the module docs).
pub const SIGNATURE_BYTES: usize = 2 * NUM_HASHES;
/// Rows per band.
pub const ROWS_PER_BAND: usize = NUM_HASHES / NUM_BANDS;
/// Words per shingle.
pub const SHINGLE_WORDS: usize = 5;
/// Seed of the densification probes (`gleaner` in ASCII).
pub const MINHASH_SEED: u64 = 0x0067_6c65_616e_6572;

/// A MinHash signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinHash(pub [u16; NUM_HASHES]);

/// A hasher that passes through an already well-mixed `u64` key.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = word_hash(bytes);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A fast, stable 64-bit hash of a short byte string (FxHash-style, 8 bytes at a time, finished
/// with a murmur3 mix). Not for adversarial keys' security, only for counting and sketching.
pub fn word_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(WORD_HASH_K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        h = (h.rotate_left(5) ^ le_padded(rest)).wrapping_mul(WORD_HASH_K);
    }
    fmix64(h)
}

const WORD_HASH_K: u64 = 0x517c_c1b7_2722_0a95;

/// [`word_hash`] of a word of 1 to 7 bytes, given its length and its bytes as
/// `u64::from_le_bytes` of the word padded with zeros (for callers that already hold the word in
/// a register).
#[inline]
pub(crate) fn short_word_hash(len: usize, padded: u64) -> u64 {
    fmix64(short_word_key(len, padded))
}

/// A key for counting a word within one text (the quality rules' n-grams), not stored anywhere:
/// a word of 1 to 7 bytes is its [`short_word_key`] (one multiply by an odd constant of its
/// bytes and length: distinct for distinct words, as counting needs, without [`word_hash`]'s
/// finishing mix, which the n-gram hash's own multiply makes up for); a longer one is its
/// [`word_hash`].
pub(crate) fn word_key(bytes: &[u8]) -> u64 {
    match bytes.len() {
        1..=7 => short_word_key(bytes.len(), le_padded(bytes)),
        _ => word_hash(bytes),
    }
}

/// [`word_key`] of a word of 1 to 7 bytes, given as for [`short_word_hash`].
#[inline]
pub(crate) fn short_word_key(len: usize, padded: u64) -> u64 {
    ((len as u64).rotate_left(5) ^ padded).wrapping_mul(WORD_HASH_K)
}

/// `u64::from_le_bytes` of `rest` (1 to 7 bytes) padded with zeros, from two overlapping loads
/// (the same bytes land on the same places) instead of a copy into a buffer.
#[inline]
fn le_padded(rest: &[u8]) -> u64 {
    let n = rest.len();
    if let (Some(lo), Some(hi)) = (rest.first_chunk::<4>(), rest.last_chunk::<4>()) {
        return u64::from(u32::from_le_bytes(*lo))
            | (u64::from(u32::from_le_bytes(*hi)) << (8 * (n - 4)));
    }
    match rest {
        [] => 0,
        [a] => u64::from(*a),
        [a, b] => u64::from(*a) | (u64::from(*b) << 8),
        [a, b, c, ..] => u64::from(*a) | (u64::from(*b) << 8) | (u64::from(*c) << 16),
    }
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// The exact-duplicate key: blake3 of the text lower-cased with whitespace runs collapsed to one
/// space and trimmed.
pub fn exact_key(text: &str) -> Digest {
    // The normalised text is built in one buffer and hashed once: feeding blake3 a character at a
    // time costs more than everything else in ingest. Same bytes, same digest. Stretches of
    // ASCII (nearly all of most web text, which still has the odd curly quote or accented
    // letter) are copied and lower-cased in bulk ([`push_ascii_words`]); only the other
    // characters are taken one by one.
    let mut buf = Vec::with_capacity(text.len());
    // Whitespace was seen since the last word character.
    let mut pending = false;
    let mut utf8 = [0u8; 4];
    for stretch in ascii_stretches(text) {
        let c = match stretch {
            Stretch::Ascii(ascii) => {
                pending = push_ascii_words(&mut buf, ascii.as_bytes(), pending);
                continue;
            }
            Stretch::Other(c) => c,
        };
        if c.is_whitespace() {
            pending = true;
            continue;
        }
        if std::mem::take(&mut pending) && !buf.is_empty() {
            buf.push(b' ');
        }
        for l in c.to_lowercase() {
            buf.extend_from_slice(l.encode_utf8(&mut utf8).as_bytes());
        }
    }
    Digest::of(&buf)
}

/// The length of the ASCII prefix of `bytes`: std's word-at-a-time `is_ascii`, on the whole
/// (an ASCII text, the common case, in one call), else on 32-byte blocks, then the block that
/// fails byte by byte.
fn ascii_prefix_len(bytes: &[u8]) -> usize {
    if bytes.is_ascii() {
        return bytes.len();
    }
    let mut at = 0;
    for block in bytes.chunks(32) {
        if !block.is_ascii() {
            return at + block.iter().position(|b| !b.is_ascii()).unwrap_or(0);
        }
        at += block.len();
    }
    at
}

/// A piece of a text as [`ascii_stretches`] cuts it.
pub(crate) enum Stretch<'a> {
    /// A maximal run of ASCII.
    Ascii(&'a str),
    /// One character outside ASCII.
    Other(char),
}

/// `text` as maximal ASCII runs and the characters outside ASCII between them, in order: the
/// text passes handle the runs in bulk (most web text is ASCII but for the odd curly quote or
/// accented letter) and only the other characters through `char`'s Unicode tables.
pub(crate) fn ascii_stretches(text: &str) -> impl Iterator<Item = Stretch<'_>> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let n = ascii_prefix_len(rest.as_bytes());
        if n > 0 {
            let (ascii, tail) = rest.split_at_checked(n)?;
            rest = tail;
            return Some(Stretch::Ascii(ascii));
        }
        let mut chars = rest.chars();
        let c = chars.next()?;
        rest = chars.as_str();
        Some(Stretch::Other(c))
    })
}

/// Appends the words of the ASCII stretch `ascii` to the normalised text in `buf`, as
/// [`exact_key`] normalises: lower-cased, one space between words (also before the first, when
/// `pending` whitespace preceded it and `buf` holds a word). Returns whether `ascii` ends in
/// whitespace (or is all whitespace and some was pending).
///
/// `char::is_whitespace` on ASCII is exactly space and U+0009..=U+000D. With the ends trimmed, a
/// single space between two words is already normalised, so the stretch is copied in runs that
/// end only at a whitespace run of another kind (a longer run, or any other whitespace byte),
/// found by `memchr`'s vector searches ([`IrregularSpaces`]); each such run becomes one space.
/// Then the copy is lower-cased in place.
fn push_ascii_words(buf: &mut Vec<u8>, ascii: &[u8], pending: bool) -> bool {
    let Some(start) = ascii.iter().position(|&b| !is_ascii_space(b)) else {
        return pending || !ascii.is_empty();
    };
    let end = ascii
        .iter()
        .rposition(|&b| !is_ascii_space(b))
        .map_or(start, |e| e + 1);
    if (pending || start > 0) && !buf.is_empty() {
        buf.push(b' ');
    }
    let copied = buf.len();
    let t = ascii.get(start..end).unwrap_or_default();
    // `t[from..]` is not copied yet.
    let mut from = 0;
    let mut irregular = IrregularSpaces::new(t);
    while let Some(at) = irregular.first_from(from) {
        let mut run_end = at + 1;
        while t.get(run_end).is_some_and(|&b| is_ascii_space(b)) {
            run_end += 1;
        }
        buf.extend_from_slice(t.get(from..at).unwrap_or_default());
        buf.push(b' ');
        from = run_end;
    }
    buf.extend_from_slice(t.get(from..).unwrap_or_default());
    if let Some(copy) = buf.get_mut(copied..) {
        copy.make_ascii_lowercase();
    }
    end < ascii.len()
}

/// `char::is_whitespace` on an ASCII byte: space and `\t`, `\n`, vertical tab, form feed, `\r`.
#[inline]
pub(crate) fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t'..=b'\r')
}

/// For 8 ASCII bytes (all below 0x80) as a little-endian `u64`: the high bit of every byte that
/// is at most 0x20, i.e. may be whitespace (control characters are marked too). `b + 0x5f` sets
/// a byte's high bit exactly when `b > 0x20` and carries into no other byte.
#[inline]
pub(crate) fn ascii_space_candidates(x: u64) -> u64 {
    !x.wrapping_add(0x5f5f_5f5f_5f5f_5f5f) & 0x8080_8080_8080_8080
}

/// The starts of the whitespace runs of ASCII `t` that the exact key rewrites, found with
/// `memchr`'s vector searches: a byte in U+0009..=U+000D, or a space followed by whitespace (a
/// space before one of those bytes, or two spaces). Each search runs once over the text, left to
/// right, as [`IrregularSpaces::first_from`] is asked for later and later positions.
struct IrregularSpaces<'a> {
    t: &'a [u8],
    /// Tab, line feed, carriage return.
    common: std::iter::Peekable<memchr::Memchr3<'a>>,
    /// Vertical tab, form feed.
    rare: std::iter::Peekable<memchr::Memchr2<'a>>,
    /// Two spaces (non-overlapping: a skipped one lies inside a run already found).
    doubles: std::iter::Peekable<memchr::memmem::FindIter<'a, 'static>>,
}

impl<'a> IrregularSpaces<'a> {
    fn new(t: &'a [u8]) -> Self {
        IrregularSpaces {
            t,
            common: memchr::memchr3_iter(b'\t', b'\n', b'\r', t).peekable(),
            rare: memchr::memchr2_iter(0x0b, 0x0c, t).peekable(),
            doubles: memchr::memmem::find_iter(t, b"  ").peekable(),
        }
    }

    /// The first such run start at or after `from`. `from` must not decrease from one call to
    /// the next, and must not fall inside a run returned before (the caller skips whole runs).
    fn first_from(&mut self, from: usize) -> Option<usize> {
        fn next_at_or_after(
            it: &mut std::iter::Peekable<impl Iterator<Item = usize>>,
            from: usize,
        ) -> Option<usize> {
            while it.next_if(|&p| p < from).is_some() {}
            it.peek().copied()
        }
        let control = [
            next_at_or_after(&mut self.common, from),
            next_at_or_after(&mut self.rare, from),
        ]
        .into_iter()
        .flatten()
        .min()
        // A space just before it starts the run.
        .map(|p| {
            if p > from && self.t.get(p - 1) == Some(&b' ') {
                p - 1
            } else {
                p
            }
        });
        [control, next_at_or_after(&mut self.doubles, from)]
            .into_iter()
            .flatten()
            .min()
    }
}

/// What each ASCII byte becomes in a simplified word: digits `0`, letters lower-cased, every
/// other byte 0 (it ends the word). The definition [`simplify_ascii`] is tested against.
#[cfg(test)]
const ASCII_SIMPLIFIED: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_digit() {
            b'0'
        } else if c.is_ascii_alphabetic() {
            c.to_ascii_lowercase()
        } else {
            0
        };
        b += 1;
    }
    t
};

/// `ASCII_SIMPLIFIED[b]` by arithmetic: setting bit 5 makes a letter lower-case and makes nothing
/// else a lower-case letter.
#[inline]
fn simplify_ascii(b: u8) -> u8 {
    let lower = b | 0x20;
    if b.wrapping_sub(b'0') < 10 {
        b'0'
    } else if lower.wrapping_sub(b'a') < 26 {
        lower
    } else {
        0
    }
}

/// Hashes of the simplified words of `text`.
fn simplified_word_hashes(text: &str) -> Vec<u64> {
    let mut out = Vec::with_capacity(text.len() / 5);
    // The whole text simplified in one pass, then each run of non-zero bytes hashed where it
    // lies: no byte-at-a-time pushes into a word buffer. A word of at most 7 bytes (most
    // words) is found and hashed from one 8-byte load: the lowest byte flagged by the
    // classic zero-byte test `(x - 0x01…) & !x & 0x80…` is the first zero byte (whatever the
    // other bytes are, so words outside ASCII too).
    let simplified = simplify(text);
    let mut i = 0;
    while let Some(&b) = simplified.get(i) {
        if b == 0 {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = start + 1;
        if let Some(chunk) = simplified.get(start..).and_then(|r| r.first_chunk::<8>()) {
            let x = u64::from_le_bytes(*chunk);
            let zeros = x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080;
            if zeros != 0 {
                // k ≥ 1: byte 0 is not zero.
                let k = (zeros.trailing_zeros() / 8) as usize;
                out.push(short_word_hash(k, x & ((1u64 << (8 * k)) - 1)));
                i = start + k + 1;
                continue;
            }
            end = start + 8;
        }
        while simplified.get(end).is_some_and(|&b| b != 0) {
            end += 1;
        }
        out.push(word_hash(simplified.get(start..end).unwrap_or_default()));
        i = end;
    }
    out
}

/// `text` simplified, with a 0 byte wherever a word ends: ASCII through [`simplify_ascii`] (a
/// stretch at a time), every other character through [`push_simplified`].
fn simplify(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for stretch in ascii_stretches(text) {
        match stretch {
            Stretch::Ascii(ascii) => out.extend(ascii.bytes().map(simplify_ascii)),
            Stretch::Other(c) => push_simplified(&mut out, c),
        }
    }
    out
}

/// Appends a character outside ASCII, simplified (`minhash/v3`): a nonspacing mark (a diacritic
/// written on its own, as in decomposed text) is dropped without ending the word; an
/// alphanumeric character is lower-cased, canonically decomposed and stripped of its nonspacing
/// marks (`é` → `e`, `ǘ` → `u`; [`push_decomposed`]); any other character ends the word (a 0).
fn push_simplified(out: &mut Vec<u8>, c: char) {
    if c.is_alphanumeric() {
        // An alphanumeric nonspacing mark (a few are) is dropped by the decomposition's filter.
        for lower in c.to_lowercase() {
            push_decomposed(out, lower);
        }
    } else if !is_nonspacing_mark(c) {
        out.push(0);
    }
}

/// Appends `c`'s full canonical decomposition (the one-step decompositions applied until none is
/// left, as NFD does, Hangul included) without its nonspacing marks. A character that decomposes
/// to ASCII goes through [`simplify_ascii`] as ASCII text does.
fn push_decomposed(out: &mut Vec<u8>, c: char) {
    use icu_normalizer::properties::{CanonicalDecompositionBorrowed, Decomposed};
    match CanonicalDecompositionBorrowed::new().decompose(c) {
        Decomposed::Default => {
            if let Ok(b) = u8::try_from(c)
                && b.is_ascii()
            {
                out.push(simplify_ascii(b));
            } else if !is_nonspacing_mark(c) {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
        Decomposed::Singleton(d) => push_decomposed(out, d),
        Decomposed::Expansion(a, b) => {
            push_decomposed(out, a);
            push_decomposed(out, b);
        }
    }
}

/// Whether `c` is a nonspacing mark (General_Category Mn): what FineWeb's simplification strips
/// after decomposing.
fn is_nonspacing_mark(c: char) -> bool {
    use icu_properties::CodePointMapData;
    use icu_properties::props::GeneralCategory;
    // The first nonspacing mark is U+0300 (checked in the tests): Latin-1 punctuation and
    // letters skip the table.
    c >= FIRST_NONSPACING_MARK
        && CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::NonspacingMark
}

/// The lowest code point of General_Category Mn (COMBINING GRAVE ACCENT).
const FIRST_NONSPACING_MARK: char = '\u{300}';

impl MinHash {
    /// The signature of `text` (see the module docs).
    pub fn of(text: &str) -> Self {
        let words = simplified_word_hashes(text);
        let mut sketch = Sketch::new();
        if words.len() < SHINGLE_WORDS {
            if !words.is_empty() {
                sketch.add(shingle(&words));
            }
        } else {
            for w in words.windows(SHINGLE_WORDS) {
                sketch.add(shingle(w));
            }
        }
        MinHash(sketch.densified().map(|m| m as u16))
    }

    /// The LSH band keys, one per band: the band's number and its 8 values (four to a word)
    /// mixed as a shingle's words are. The keys live only in the in-memory band index (rebuilt
    /// from the stored signatures at start), so this mix is not part of `minhash/v3` and may
    /// change between versions. Until schema version 7 they were stored, as blake3 of the values
    /// truncated to 8 bytes; a collision only makes two texts candidates of each other, and
    /// whoever can choose a text could as well submit the other one, so a non-cryptographic
    /// 64-bit mix (a few ns a band against ~100 for blake3's set-up and one compression) serves.
    pub fn bands(&self) -> [i64; NUM_BANDS] {
        let mut out = [0i64; NUM_BANDS];
        for ((b, rows), key) in self
            .0
            .chunks_exact(ROWS_PER_BAND)
            .enumerate()
            .zip(out.iter_mut())
        {
            let mut words = [b as u64; 1 + ROWS_PER_BAND / 4];
            for (word, four) in words.iter_mut().skip(1).zip(rows.chunks_exact(4)) {
                *word = four
                    .iter()
                    .rev()
                    .fold(0u64, |w, &v| (w << 16) | u64::from(v));
            }
            *key = shingle(&words) as i64;
        }
        out
    }

    /// Estimated Jaccard similarity: the share of equal positions.
    pub fn similarity(&self, other: &MinHash) -> f64 {
        let same = self.0.iter().zip(&other.0).filter(|(a, b)| a == b).count();
        same as f64 / NUM_HASHES as f64
    }

    /// Little-endian bytes, for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// From [`MinHash::to_bytes`]; `None` when the length is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != SIGNATURE_BYTES {
            return None;
        }
        let mut sig = [0u16; NUM_HASHES];
        for (v, c) in sig.iter_mut().zip(bytes.chunks_exact(2)) {
            *v = u16::from_le_bytes([c[0], c[1]]);
        }
        Some(MinHash(sig))
    }
}

/// One-permutation MinHash of a stream of shingle hashes: each shingle falls into one of the
/// [`NUM_HASHES`] bins by the high half of its hash and keeps the bin's minimum of the low half.
struct Sketch {
    mins: [u32; NUM_HASHES],
    /// Bit `i % 64` of word `i / 64`: bin `i` holds a shingle (a minimum may be `u32::MAX`).
    filled: [u64; NUM_HASHES.div_ceil(64)],
}

impl Sketch {
    fn new() -> Self {
        Sketch {
            mins: [u32::MAX; NUM_HASHES],
            filled: [0; NUM_HASHES.div_ceil(64)],
        }
    }

    #[inline]
    fn add(&mut self, s: u64) {
        let bin = bin_of(s >> 32);
        if let Some(m) = self.mins.get_mut(bin) {
            *m = (*m).min(s as u32);
        }
        if let Some(w) = self.filled.get_mut(bin / 64) {
            *w |= 1 << (bin % 64);
        }
    }

    fn is_filled(&self, bin: usize) -> bool {
        self.filled
            .get(bin / 64)
            .is_some_and(|w| w & (1 << (bin % 64)) != 0)
    }

    /// The minima, each empty bin given the minimum of the first filled bin on its own probe
    /// sequence (optimal densification); all `u32::MAX` when no bin is filled.
    fn densified(&self) -> [u32; NUM_HASHES] {
        let mut out = self.mins;
        if self.filled.iter().all(|&w| w == 0) {
            return out;
        }
        for (bin, value) in out.iter_mut().enumerate() {
            if self.is_filled(bin) {
                continue;
            }
            let mut probe = fmix64(MINHASH_SEED ^ bin as u64);
            let mut from = None;
            for _ in 0..MAX_PROBES {
                let j = bin_of(probe >> 32);
                if self.is_filled(j) {
                    from = Some(j);
                    break;
                }
                probe = probe
                    .wrapping_mul(PROBE_MULTIPLIER)
                    .wrapping_add(PROBE_INCREMENT);
            }
            // Past MAX_PROBES (odds below 10^-200 with one bin filled): the next filled bin.
            let j = from.unwrap_or_else(|| {
                (1..NUM_HASHES)
                    .map(|k| (bin + k) % NUM_HASHES)
                    .find(|&j| self.is_filled(j))
                    .unwrap_or(bin)
            });
            *value = self.mins.get(j).copied().unwrap_or(u32::MAX);
        }
        out
    }
}

/// The bin of a 32-bit hash: `⌊h · NUM_HASHES / 2³²⌋` (multiply-shift, no division).
#[inline]
fn bin_of(h: u64) -> usize {
    (((h & 0xffff_ffff) * NUM_HASHES as u64) >> 32) as usize
}

/// Probes an empty bin tries before the fallback scan: with a single filled bin each probe hits
/// it with odds 1/112, so 2^16 misses in a row have odds (111/112)^65536 < 10^-250.
const MAX_PROBES: usize = 1 << 16;
/// The probe sequence's step (Knuth's MMIX LCG): `p ← p·M + C mod 2⁶⁴`, whose high half is used.
const PROBE_MULTIPLIER: u64 = 6_364_136_223_846_793_005;
const PROBE_INCREMENT: u64 = 1_442_695_040_888_963_407;

fn shingle(words: &[u64]) -> u64 {
    fmix64(words.iter().fold(0x243f_6a88_85a3_08d3u64, |acc, h| {
        (acc.rotate_left(27) ^ h).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(seed: u64, n: usize) -> String {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = fmix64(s.wrapping_add(1));
                let mut n = s % 5000;
                let mut w = String::from("w");
                while n > 0 {
                    w.push(char::from(b'a' + (n % 26) as u8));
                    n /= 26;
                }
                w
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A sketch of `n` pseudo-random shingle hashes from `seed`.
    fn sketch_of(hashes: impl IntoIterator<Item = u64>) -> MinHash {
        let mut sketch = Sketch::new();
        for h in hashes {
            sketch.add(h);
        }
        MinHash(sketch.densified().map(|m| m as u16))
    }

    fn hashes(seed: u64, n: u64) -> impl Iterator<Item = u64> {
        (0..n).map(move |i| fmix64(seed.wrapping_mul(0x1_0000_0001) ^ i))
    }

    /// Two sets with a known Jaccard similarity: the signatures' share of equal values estimates
    /// it without bias, for large sets (few empty bins) and small ones (mostly densified).
    #[test]
    fn similarity_estimates_jaccard() {
        for (size, tolerance) in [(2_000u64, 0.02), (300, 0.03), (40, 0.05)] {
            for jaccard in [0.1, 0.3, 0.5, 0.7, 0.9] {
                // |A ∩ B| = common, |A ∪ B| = size: J = common / size.
                let common = (jaccard * size as f64).round() as u64;
                let only = (size - common) / 2;
                let trials = 60;
                let mut sum = 0.0;
                for t in 0..trials {
                    let shared: Vec<u64> = hashes(3 * t, common).collect();
                    let a = sketch_of(shared.iter().copied().chain(hashes(3 * t + 1, only)));
                    let b = sketch_of(shared.iter().copied().chain(hashes(3 * t + 2, only)));
                    sum += a.similarity(&b);
                }
                let truth = common as f64 / (common + 2 * only) as f64;
                let mean = sum / trials as f64;
                assert!(
                    (mean - truth).abs() < tolerance,
                    "{size} shingles, Jaccard {truth:.3}: mean estimate {mean:.3}"
                );
            }
        }
    }

    #[test]
    fn empty_bins_take_a_filled_bins_value() {
        assert_eq!(sketch_of([]), MinHash([u16::MAX; NUM_HASHES]));
        assert_eq!(MinHash::of(""), MinHash([u16::MAX; NUM_HASHES]));
        assert_eq!(MinHash::of(" ,.; "), MinHash([u16::MAX; NUM_HASHES]));
        // One shingle: every bin holds its value.
        let one = sketch_of([0xdead_beef_0000_1234]);
        assert_eq!(one, MinHash([0x1234; NUM_HASHES]));
        // A value of u16::MAX in a filled bin is a value like any other.
        assert_eq!(sketch_of([u64::MAX]), MinHash([u16::MAX; NUM_HASHES]));
        // The low 16 bits of the bin's 32-bit minimum, not the minimum of the low 16 bits.
        let low = sketch_of([0x0000_0001_0002_0003, 0x0000_0001_0001_ffff]);
        assert_eq!(low.0[bin_of(1)], 0xffff);
        // Two shingles in different bins: each bin holds one of the two, both occur, and the
        // order of the shingles does not matter.
        let (x, y) = (0x0000_0001_0000_0005u64, 0xffff_ff00_0000_0007u64);
        assert_ne!(bin_of(x >> 32), bin_of(y >> 32));
        let two = sketch_of([x, y]);
        assert_eq!(two, sketch_of([y, x]));
        assert!(two.0.iter().all(|&v| v == 5 || v == 7));
        assert!(two.0.contains(&5) && two.0.contains(&7));
        assert_eq!(two.0[bin_of(x >> 32)], 5);
        assert_eq!(two.0[bin_of(y >> 32)], 7);
        // A bin's value is its minimum.
        let min = sketch_of([x, x + 3, x - 2]);
        assert_eq!(min.0[bin_of(x >> 32)], 3);
    }

    #[test]
    fn bins_cover_the_range_evenly() {
        assert_eq!(bin_of(0), 0);
        assert_eq!(bin_of(u64::from(u32::MAX)), NUM_HASHES - 1);
        let mut counts = [0u32; NUM_HASHES];
        for h in hashes(9, 112_000) {
            counts[bin_of(h >> 32)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (850..1150).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn simplify_ascii_is_the_table() {
        for b in 0..128u8 {
            assert_eq!(simplify_ascii(b), ASCII_SIMPLIFIED[usize::from(b)], "{b}");
        }
    }

    #[test]
    fn word_hash_matches_the_copying_version() {
        let reference = |bytes: &[u8]| {
            const K: u64 = 0x517c_c1b7_2722_0a95;
            let mut h: u64 = bytes.len() as u64;
            for c in bytes.chunks(8) {
                let mut w = [0u8; 8];
                w[..c.len()].copy_from_slice(c);
                h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
            }
            fmix64(h)
        };
        let mut s = 7u64;
        for len in 0..64 {
            for _ in 0..20 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        s = fmix64(s.wrapping_add(1));
                        s as u8
                    })
                    .collect();
                assert_eq!(word_hash(&bytes), reference(&bytes), "{bytes:?}");
                if (1..8).contains(&len) {
                    let mut padded = [0u8; 8];
                    padded[..len].copy_from_slice(&bytes);
                    let short = short_word_hash(len, u64::from_le_bytes(padded));
                    assert_eq!(short, word_hash(&bytes), "{bytes:?}");
                }
            }
        }
    }

    /// Band keys depend on every value of their band and on nothing else, and differ between
    /// bands with the same values.
    #[test]
    fn band_keys_follow_their_values() {
        let base = MinHash([7; NUM_HASHES]);
        let keys = base.bands();
        let distinct: std::collections::HashSet<i64> = keys.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            NUM_BANDS,
            "the same values in every band, other keys"
        );
        for i in 0..NUM_HASHES {
            let mut changed = base.clone();
            changed.0[i] ^= 1 << (i % 16);
            let after = changed.bands();
            for b in 0..NUM_BANDS {
                assert_eq!(
                    keys[b] != after[b],
                    b == i / ROWS_PER_BAND,
                    "value {i}, band {b}"
                );
            }
        }
        // No two of 20,000 texts' signatures share a band key unless they share the band.
        let mut seen = std::collections::HashMap::new();
        for seed in 0..20_000u64 {
            let m = MinHash::of(&format!("text number {seed} with {} words", seed * 7919));
            for (b, key) in m.bands().into_iter().enumerate() {
                let rows = m.0[b * ROWS_PER_BAND..(b + 1) * ROWS_PER_BAND].to_vec();
                if let Some(other) = seen.insert(key, rows.clone()) {
                    assert_eq!(other, rows, "a band key for two different bands");
                }
            }
        }
    }

    #[test]
    fn exact_key_ignores_case_and_spacing() {
        assert_eq!(
            exact_key("Hello   World\n\nAgain"),
            exact_key("hello world again")
        );
        assert_ne!(exact_key("hello world"), exact_key("hello there"));
    }

    #[test]
    fn similar_texts_share_a_band_and_different_ones_do_not() {
        let base = words(1, 800);
        let edited = format!("Updated 12:45 today. {base} 1,234 views. Advertisement.");
        let (a, b) = (MinHash::of(&base), MinHash::of(&edited));
        assert!(a.similarity(&b) > 0.8, "{}", a.similarity(&b));
        assert!(a.bands().iter().zip(b.bands()).any(|(x, y)| *x == y));
        let other = MinHash::of(&words(2, 800));
        assert!(a.similarity(&other) < 0.1);
        assert!(!a.bands().iter().zip(other.bands()).any(|(x, y)| *x == y));
        assert_eq!(MinHash::from_bytes(&a.to_bytes()), Some(a));
        // Digits are simplified: a changed counter is the same shingle.
        assert_eq!(
            MinHash::of("seen 123 times by many people here"),
            MinHash::of("seen 456 times by many people here")
        );
    }

    /// `minhash/v3` and the exact key written plainly (a character at a time, NFD by the
    /// normaliser over each character's lower case): the fast paths
    /// must give the same bytes, signatures and digests on any text.
    mod reference {
        use super::super::*;

        pub fn exact_key(text: &str) -> Digest {
            let mut h = blake3::Hasher::new();
            let mut first = true;
            let mut buf = [0u8; 4];
            for word in text.split_whitespace() {
                if !first {
                    h.update(b" ");
                }
                first = false;
                for c in word.chars().flat_map(char::to_lowercase) {
                    h.update(c.encode_utf8(&mut buf).as_bytes());
                }
            }
            Digest::from_bytes(*h.finalize().as_bytes())
        }

        pub fn word_hashes(text: &str) -> Vec<u64> {
            let mut out = Vec::new();
            let mut word = String::new();
            let flush = |word: &mut String, out: &mut Vec<u64>| {
                if !word.is_empty() {
                    out.push(word_hash(word.as_bytes()));
                    word.clear();
                }
            };
            let nfd = icu_normalizer::DecomposingNormalizerBorrowed::new_nfd();
            // Written here from the property table, not by the fast path's own test.
            let is_nonspacing_mark = |c: char| {
                use icu_properties::CodePointMapData;
                use icu_properties::props::GeneralCategory;
                CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::NonspacingMark
            };
            for c in text.chars() {
                if c.is_ascii_digit() {
                    word.push('0');
                } else if is_nonspacing_mark(c) {
                    continue;
                } else if c.is_alphanumeric() {
                    if c.is_ascii() {
                        word.push(c.to_ascii_lowercase());
                    } else {
                        let lower: String = c.to_lowercase().collect();
                        for d in nfd.normalize(&lower).chars() {
                            if is_nonspacing_mark(d) {
                                continue;
                            }
                            if d.is_ascii_digit() {
                                word.push('0');
                            } else if d.is_ascii_alphabetic() {
                                word.push(d.to_ascii_lowercase());
                            } else if d.is_ascii() {
                                flush(&mut word, &mut out);
                            } else {
                                word.push(d);
                            }
                        }
                    }
                } else {
                    flush(&mut word, &mut out);
                }
            }
            flush(&mut word, &mut out);
            out
        }

        /// One-permutation hashing written plainly: bins by division, probes one at a time.
        pub fn minhash(text: &str) -> MinHash {
            let words = word_hashes(text);
            let shingles: Vec<u64> = if words.len() < SHINGLE_WORDS {
                words.first().map(|_| shingle(&words)).into_iter().collect()
            } else {
                words.windows(SHINGLE_WORDS).map(shingle).collect()
            };
            let n = NUM_HASHES as u128;
            let bin = |h: u64| ((u128::from(h) * n) / (1u128 << 32)) as usize;
            let mut mins: Vec<Option<u32>> = vec![None; NUM_HASHES];
            for s in shingles {
                let m = &mut mins[bin(s >> 32)];
                *m = Some(m.map_or(s as u32, |m| m.min(s as u32)));
            }
            if mins.iter().all(Option::is_none) {
                return MinHash([u16::MAX; NUM_HASHES]);
            }
            let mut sig = [0u16; NUM_HASHES];
            for i in 0..NUM_HASHES {
                sig[i] = match mins[i] {
                    Some(v) => v as u16,
                    None => {
                        let mut p = fmix64(MINHASH_SEED ^ i as u64);
                        loop {
                            if let Some(v) = mins[bin(p >> 32)] {
                                break v as u16;
                            }
                            p = p
                                .wrapping_mul(6_364_136_223_846_793_005)
                                .wrapping_add(1_442_695_040_888_963_407);
                        }
                    }
                };
            }
            MinHash(sig)
        }
    }

    #[test]
    fn words_are_hashed_as_their_simplified_bytes() {
        let mut s = 0x9e37_79b9u64;
        let mut texts: Vec<String> = vec![
            String::new(),
            "a".into(),
            "abcdefg".into(),
            "abcdefgh".into(),
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".into(),
            " x1y2z3-Q...  tail".into(),
        ];
        // Runs of letters and digits of every length to 40, separated by every other byte.
        for _ in 0..300 {
            let mut t = String::new();
            for _ in 0..((s % 30) as usize) {
                s = fmix64(s.wrapping_add(1));
                let run = (s >> 8) as usize % 41;
                for k in 0..run {
                    let r = fmix64(s ^ k as u64);
                    t.push(char::from(match r % 3 {
                        0 => b'a' + (r >> 8) as u8 % 26,
                        1 => b'A' + (r >> 8) as u8 % 26,
                        _ => b'0' + (r >> 8) as u8 % 10,
                    }));
                }
                let sep = (s >> 20) as u8 % 128;
                if !sep.is_ascii_alphanumeric() {
                    t.push(char::from(sep));
                }
            }
            texts.push(t);
        }
        for t in &texts {
            assert_eq!(
                simplified_word_hashes(t),
                reference::word_hashes(t),
                "{t:?}"
            );
        }
    }

    #[test]
    fn no_nonspacing_mark_comes_before_the_first() {
        use icu_properties::CodePointMapData;
        use icu_properties::props::GeneralCategory;
        let gc = CodePointMapData::<GeneralCategory>::new();
        let first = (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .find(|&c| gc.get(c) == GeneralCategory::NonspacingMark);
        assert_eq!(first, Some(FIRST_NONSPACING_MARK));
    }

    /// `minhash/v3` strips diacritics as FineWeb's simplification does: accented and plain,
    /// precomposed and decomposed spellings of a text are one text; other letters are kept.
    #[test]
    fn diacritics_are_stripped_and_other_letters_kept() {
        let plain = "the cafe serves creme brulee to naive visitors from sao paulo every day";
        for accented in [
            "the café serves crème brûlée to naïve visitors from são paulo every day",
            "THE CAFÉ SERVES CRÈME BRÛLÉE TO NAÏVE VISITORS FROM SÃO PAULO EVERY DAY",
            // The same text in decomposed form: each accent a combining mark of its own.
            "the cafe\u{301} serves cre\u{300}me bru\u{302}le\u{301}e to nai\u{308}ve visitors \
             from sa\u{303}o paulo every day",
        ] {
            assert_eq!(simplify(accented), simplify(plain), "{accented}");
            assert_eq!(MinHash::of(accented), MinHash::of(plain), "{accented}");
        }
        // A combining mark joins its word: "cafe" and "au", not "caf", "e" and "au".
        assert_eq!(simplify("cafe\u{301} au"), b"cafe\0au".to_vec());
        // Letters without a decomposition stay as they are, and still differ from others.
        assert_eq!(simplify("Øre straße 日本"), "øre\0straße\0日本".as_bytes());
        assert_ne!(
            MinHash::of("øre øre øre øre øre"),
            MinHash::of("ore ore ore ore ore")
        );
        // Hangul syllables decompose into their letters (jamo), which are kept.
        assert_eq!(simplify("한"), "\u{1112}\u{1161}\u{11ab}".as_bytes());
    }

    #[test]
    fn fast_paths_match_the_reference() {
        let mut texts: Vec<String> = vec![
            String::new(),
            "one".into(),
            "a b c d".into(),
            "a b c d e".into(),
            "  Hello,   WORLD!\n\n 2024-01-01  ".into(),
            "İstanbul'da ΣΟΦΟΣ Straße ÉCOLE naïve café ǅungla".into(),
            "日本語のテキストと中文文本 and English 混合 ١٢٣ ٤٥٦ numbers ⅫⅣ".into(),
            "emoji 😀 between 🎉words, combining e\u{301}e\u{301} marks\u{200b}zero width".into(),
            "Ωmega ΑΒΓ ΔΕΖ αβγ δεζ ΗΘΙ ηθι ΚΛΜ κλμ ΝΞΟ νξο ΠΡΣ πρσ ΤΥΦ τυφ".into(),
            crate::testkit::sample_text(7, 5_000),
            " \t\x0b\x0c\r\n lead\x0b\x0cand\x1ftrail\x1c \r\n".into(),
            words(3, 300),
        ];
        let mut s = 0x1234_5678u64;
        for _ in 0..50 {
            let mut t = String::new();
            for _ in 0..200 {
                s = fmix64(s.wrapping_add(1));
                let c = match s % 9 {
                    0 => ' ',
                    1 => '\n',
                    2 => char::from(b'0' + (s >> 8) as u8 % 10),
                    3 => char::from_u32(0xC0 + (s >> 8) as u32 % 0x180).unwrap_or('x'),
                    4 => char::from_u32(0x391 + (s >> 8) as u32 % 0x50).unwrap_or('x'),
                    5 => ['.', ',', '-', '\'', '’', '#'][(s >> 8) as usize % 6],
                    _ => char::from(b'A' + (s >> 8) as u8 % 58),
                };
                t.push(c);
            }
            texts.push(t);
        }
        // ASCII only (the branch-free path of the exact key), whitespace runs everywhere.
        for _ in 0..200 {
            let mut t = String::new();
            for _ in 0..((s % 64) as usize) {
                s = fmix64(s.wrapping_add(1));
                t.push(char::from(match s % 7 {
                    0 => b' ',
                    1 => b"\t\n\x0b\x0c\r"[(s >> 8) as usize % 5],
                    2 => b'\x1f',
                    _ => b'!' + (s >> 8) as u8 % 94,
                }));
            }
            texts.push(t);
        }
        // Longer ASCII texts: words of every length around the 8-byte loads, single spaces
        // and runs, control characters next to whitespace.
        for _ in 0..100 {
            let mut t = String::new();
            for _ in 0..((s % 400) as usize) {
                s = fmix64(s.wrapping_add(1));
                t.push(char::from(match s % 16 {
                    0..=2 => b' ',
                    3 => b"\t\n\x0b\x0c\r"[(s >> 8) as usize % 5],
                    4 => b"\x00\x1f\x7f"[(s >> 8) as usize % 3],
                    5 => b'0' + (s >> 8) as u8 % 10,
                    _ => b'!' + (s >> 8) as u8 % 94,
                }));
            }
            texts.push(t);
        }
        // Mostly ASCII, as web text is: words and whitespace runs of every kind, with now and
        // then a character outside ASCII (Unicode whitespace, curly quotes, letters whose lower
        // case is longer, shorter or ASCII, digits of other scripts) inside or between words.
        for _ in 0..300 {
            let mut t = String::new();
            for _ in 0..((s % 300) as usize) {
                s = fmix64(s.wrapping_add(1));
                match s % 24 {
                    0..=3 => t.push(' '),
                    4 => t.push(char::from(b"\t\n\x0b\x0c\r"[(s >> 8) as usize % 5])),
                    5 => t.push(
                        [
                            '\u{a0}', '\u{2003}', '\u{3000}', '\u{85}', '’', '“', 'É', 'ß', 'Σ',
                            'İ', '\u{212a}', 'ǅ', '٣', 'é', '—', '😀',
                        ][(s >> 8) as usize % 16],
                    ),
                    6 => t.push(char::from(b'0' + (s >> 8) as u8 % 10)),
                    7 => t.push_str(["The", "COOKIE", "naïve", "x"][(s >> 8) as usize % 4]),
                    _ => t.push(char::from(b'!' + (s >> 8) as u8 % 94)),
                }
            }
            texts.push(t);
        }
        for t in &texts {
            assert_eq!(exact_key(t), reference::exact_key(t), "{t:?}");
            assert_eq!(MinHash::of(t), reference::minhash(t), "{t:?}");
        }
    }
}
