//! Deduplication: an exact key (blake3 of normalised text) and MinHash signatures with LSH bands
//! for near-duplicates, in FineWeb's configuration (word 5-grams, 14 bands × 8 hashes = 112).
//!
//! `minhash/v1` (stored signatures depend on it; change the version if any of this changes):
//! * text is simplified: lower-cased, ASCII digits → `0`, every non-alphanumeric character → space
//!   (diacritics are *not* stripped: that needs Unicode decomposition tables we do not ship);
//! * words are hashed with [`word_hash`], shingles are 5 consecutive words (a shorter text is one
//!   shingle) combined by a fixed mixing function;
//! * hash `i` of a shingle `s` is `((A[i] · s + B[i]) mod 2^64) >> 32`, with `A`, `B` drawn from
//!   splitmix64 seeded with [`MINHASH_SEED`]; the signature keeps the minimum of each;
//! * the LSH band keys mix each band's number and 8 values with the shingle mix
//!   ([`MinHash::bands`]); they are not stored, so they are not part of `minhash/v1`.

use std::hash::Hasher;

use gleaner_protocol::Digest;

/// Hashes per signature.
pub const NUM_HASHES: usize = 112;
/// LSH bands; `NUM_HASHES / NUM_BANDS` = 8 rows per band gives a threshold near Jaccard 0.72.
pub const NUM_BANDS: usize = 14;
/// Rows per band.
pub const ROWS_PER_BAND: usize = NUM_HASHES / NUM_BANDS;
/// Words per shingle.
pub const SHINGLE_WORDS: usize = 5;
/// Seed of the hash family (`gleaner` in ASCII).
pub const MINHASH_SEED: u64 = 0x0067_6c65_616e_6572;
/// Version label of the scheme, stored with signatures.
pub const MINHASH_VERSION: &str = "minhash/v1";

/// A MinHash signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinHash(pub [u32; NUM_HASHES]);

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
    fmix64(((len as u64).rotate_left(5) ^ padded).wrapping_mul(WORD_HASH_K))
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
    // time costs more than everything else in ingest. Same bytes, same digest.
    if text.is_ascii() {
        // `char::is_whitespace` on ASCII is exactly space and U+0009..=U+000D. With the ends
        // trimmed, a single space between two words is already normalised, so the text is
        // copied in runs that end only at a whitespace run of another kind (a longer run, or
        // any other whitespace byte), found 8 bytes at a time; each such run becomes one
        // space. Then the copy is lower-cased in place.
        let bytes = text.as_bytes();
        let Some(start) = bytes.iter().position(|&b| !is_ascii_space(b)) else {
            return Digest::of(&[]);
        };
        let end = bytes
            .iter()
            .rposition(|&b| !is_ascii_space(b))
            .map_or(start, |e| e + 1);
        let t = bytes.get(start..end).unwrap_or_default();
        let mut buf = Vec::with_capacity(t.len());
        // `t[from..]` is not copied yet.
        let mut from = 0;
        while let Some(at) = next_irregular_space(t, from) {
            let mut run_end = at + 1;
            while t.get(run_end).is_some_and(|&b| is_ascii_space(b)) {
                run_end += 1;
            }
            buf.extend_from_slice(t.get(from..at).unwrap_or_default());
            buf.push(b' ');
            from = run_end;
        }
        buf.extend_from_slice(t.get(from..).unwrap_or_default());
        buf.make_ascii_lowercase();
        return Digest::of(&buf);
    }
    let mut buf = Vec::with_capacity(text.len());
    let mut utf8 = [0u8; 4];
    for word in text.split_whitespace() {
        if !buf.is_empty() {
            buf.push(b' ');
        }
        if word.is_ascii() {
            buf.extend(word.bytes().map(|b| b.to_ascii_lowercase()));
        } else {
            for c in word.chars().flat_map(char::to_lowercase) {
                buf.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    Digest::of(&buf)
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

/// For 8 ASCII bytes (all below 0x80) as a little-endian `u64`: the high bit of every byte in
/// U+0009..=U+000D, and of every space. Exact: adding a constant below 0x80 to a byte below 0x80
/// carries into no other byte.
#[inline]
fn ascii_space_masks(x: u64) -> (u64, u64) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // `b + 0x77` has its high bit set exactly when `b >= 0x09`, `b + 0x72` when `b >= 0x0e`.
    let control = x.wrapping_add(0x77 * ONES) & !x.wrapping_add(0x72 * ONES) & HIGH;
    // The zero bytes of `x ^ 0x20…`: `(z & 0x7f) + 0x7f` reaches the high bit unless `z` is 0.
    let z = x ^ (0x20 * ONES);
    let space = !(((z & (0x7f * ONES)).wrapping_add(0x7f * ONES)) | z) & HIGH;
    (control, space)
}

/// The first byte at or after `i` of ASCII `bytes` that starts whitespace other than a lone
/// space: a byte in U+0009..=U+000D, or a space followed by whitespace. From a byte that is not
/// whitespace, that is the first byte of the next whitespace run the exact key rewrites.
fn next_irregular_space(bytes: &[u8], mut i: usize) -> Option<usize> {
    while let Some(chunk) = bytes.get(i..).and_then(|rest| rest.first_chunk::<9>()) {
        let (here, next) = chunk.split_at(8);
        let x = u64::from_le_bytes(here.try_into().unwrap_or_default());
        // The byte after each of them: `x` shifted down a byte, the ninth on top.
        let y = (x >> 8) | (u64::from(next.first().copied().unwrap_or(0)) << 56);
        let (control, space) = ascii_space_masks(x);
        let (next_control, next_space) = ascii_space_masks(y);
        let irregular = control | (space & (next_control | next_space));
        if irregular != 0 {
            return Some(i + (irregular.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        let follows = bytes.get(i + 1).is_some_and(|&n| is_ascii_space(n));
        if matches!(b, b'\t'..=b'\r') || (b == b' ' && follows) {
            return Some(i);
        }
        i += 1;
    }
    None
}

struct Family {
    a: [u64; NUM_HASHES],
    b: [u64; NUM_HASHES],
}

fn family() -> &'static Family {
    static FAMILY: std::sync::OnceLock<Family> = std::sync::OnceLock::new();
    FAMILY.get_or_init(|| {
        let mut state = MINHASH_SEED;
        let mut next = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            fmix64(state)
        };
        let mut f = Family {
            a: [0; NUM_HASHES],
            b: [0; NUM_HASHES],
        };
        for i in 0..NUM_HASHES {
            f.a[i] = next() | 1;
            f.b[i] = next();
        }
        f
    })
}

/// What each ASCII byte becomes in a simplified word: digits `0`, letters lower-cased, every
/// other byte 0 (it ends the word).
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

/// Hashes of the simplified words of `text`. ASCII bytes take a byte-wise path; everything else
/// goes through `char`'s Unicode tables, exactly as before.
fn simplified_word_hashes(text: &str) -> Vec<u64> {
    let mut out = Vec::with_capacity(text.len() / 5);
    if text.is_ascii() {
        // The whole text simplified in one pass, then each run of non-zero bytes hashed where it
        // lies: no byte-at-a-time pushes into a word buffer. A word of at most 7 bytes (most
        // words) is found and hashed from one 8-byte load: the lowest byte flagged by the
        // classic zero-byte test `(x - 0x01…) & !x & 0x80…` is the first zero byte.
        let simplified: Vec<u8> = text.bytes().map(simplify_ascii).collect();
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
        return out;
    }
    let mut word: Vec<u8> = Vec::with_capacity(64);
    let mut utf8 = [0u8; 4];
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() {
            i += 1;
            // ASCII_SIMPLIFIED: digits → '0', letters lower-cased, anything else 0 (a separator).
            let m = ASCII_SIMPLIFIED[usize::from(b)];
            if m != 0 {
                word.push(m);
            } else if !word.is_empty() {
                out.push(word_hash(&word));
                word.clear();
            }
            continue;
        }
        let Some(c) = text.get(i..).and_then(|rest| rest.chars().next()) else {
            break;
        };
        i += c.len_utf8();
        if c.is_alphanumeric() {
            for l in c.to_lowercase() {
                word.extend_from_slice(l.encode_utf8(&mut utf8).as_bytes());
            }
        } else if !word.is_empty() {
            out.push(word_hash(&word));
            word.clear();
        }
    }
    if !word.is_empty() {
        out.push(word_hash(&word));
    }
    out
}

/// Hash indices computed together per pass over the shingles: their multipliers, offsets and
/// running minima stay in registers.
const LANES: usize = 8;

impl MinHash {
    /// The signature of `text` (see the module docs).
    pub fn of(text: &str) -> Self {
        let words = simplified_word_hashes(text);
        let shingles: Vec<u64> = if words.len() < SHINGLE_WORDS {
            if words.is_empty() {
                Vec::new()
            } else {
                vec![shingle(&words)]
            }
        } else {
            words.windows(SHINGLE_WORDS).map(shingle).collect()
        };
        MinHash(min_hashes(&shingles))
    }

    /// The LSH band keys, one per band: the band's number and its 8 values (two to a word)
    /// mixed as a shingle's words are. The keys live only in the in-memory band index (rebuilt
    /// from the stored signatures at start), so this mix is not part of `minhash/v1` and may
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
            let mut words = [b as u64; 1 + ROWS_PER_BAND / 2];
            for (word, pair) in words.iter_mut().skip(1).zip(rows.chunks_exact(2)) {
                if let &[low, high] = pair {
                    *word = u64::from(low) | (u64::from(high) << 32);
                }
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
        if bytes.len() != NUM_HASHES * 4 {
            return None;
        }
        let mut sig = [0u32; NUM_HASHES];
        for (i, c) in bytes.chunks_exact(4).enumerate() {
            sig[i] = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Some(MinHash(sig))
    }
}

/// The signature's minima over `shingles`: the hot loop of MinHash (112 multiply-adds per
/// shingle). The baseline x86-64 target has no vector 64-bit multiply, so on CPUs that have one
/// (AVX-512DQ) the portable code is run compiled for it, and on AVX2 CPUs a variant built from
/// 32-bit multiplies ([`min_hashes_avx2`]), chosen at run time. Every variant computes exactly
/// the same values.
fn min_hashes(shingles: &[u64]) -> [u32; NUM_HASHES] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            // SAFETY: the CPU supports AVX-512F and AVX-512DQ, checked just above; that is the
            // only requirement of calling a `#[target_feature]` function.
            #[allow(unsafe_code)]
            return unsafe { min_hashes_avx512(shingles) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            #[allow(unsafe_code)]
            return unsafe { min_hashes_avx2(shingles) };
        }
    }
    min_hashes_portable(shingles)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
fn min_hashes_avx512(shingles: &[u64]) -> [u32; NUM_HASHES] {
    min_hashes_portable(shingles)
}

/// The AVX2 minima from 32-bit halves, written with intrinsics (LLVM's own vectorisation of the
/// portable loop emulates each 64-bit multiply with three `vpmuludq`, shifts and adds). With
/// `a = ah·2³² + al`, `s = sh·2³² + sl`, and `al·sl + b` computed in 64 bits (`vpmuludq` + `vpaddq`;
/// `al·sl + (b mod 2³²)` cannot overflow, so its high half plus `b`'s high half is the high half
/// of `al·sl + b` mod 2⁶⁴):
///
/// `((a·s + b) mod 2⁶⁴) >> 32 = (((al·sl + b) mod 2⁶⁴) >> 32) + ah·sl + al·sh  (mod 2³²)`
///
/// where the last two products are 32-bit `vpmulld`s. Eleven instructions per 8 hashes and
/// shingle; the same values as [`min_hashes_portable`] (tested).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn min_hashes_avx2(shingles: &[u64]) -> [u32; NUM_HASHES] {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi32, _mm256_add_epi64, _mm256_blend_epi32, _mm256_extract_epi32,
        _mm256_min_epu32, _mm256_mul_epu32, _mm256_mullo_epi32, _mm256_set_epi64x,
        _mm256_set1_epi32, _mm256_set1_epi64x, _mm256_setr_epi32, _mm256_srli_epi64,
    };
    /// Eight hashes' constants. `al_*`, `b_*`: hashes 0-3 and 4-7 in 64-bit lanes (`vpmuludq`
    /// reads the low half of each). `ah`, `al`: 32-bit lanes in the order the blend of the two
    /// 64-bit halves leaves them in, hashes 0, 4, 1, 5, 2, 6, 3, 7.
    struct Group {
        al_lo: __m256i,
        b_lo: __m256i,
        al_hi: __m256i,
        b_hi: __m256i,
        ah: __m256i,
        al: __m256i,
    }
    /// Lane `p` of a group's 32-bit vectors holds hash `ORDER[p]` of the group.
    const ORDER: [usize; 8] = [0, 4, 1, 5, 2, 6, 3, 7];
    const GROUPS: usize = NUM_HASHES / 8;
    let f = family();
    let lo32 = |x: u64| x as u32 as i32;
    let hi32 = |x: u64| (x >> 32) as u32 as i32;
    let group = |g: usize| {
        let a = |j: usize| f.a[8 * g + j];
        let b = |j: usize| f.b[8 * g + j] as i64;
        let low = |j: usize| i64::from(a(j) as u32);
        // 32-bit lanes of one half of each multiplier, in `ORDER`.
        let lanes = |half: fn(u64) -> i32| {
            let v = ORDER.map(|j| half(a(j)));
            _mm256_setr_epi32(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])
        };
        Group {
            al_lo: _mm256_set_epi64x(low(3), low(2), low(1), low(0)),
            b_lo: _mm256_set_epi64x(b(3), b(2), b(1), b(0)),
            al_hi: _mm256_set_epi64x(low(7), low(6), low(5), low(4)),
            b_hi: _mm256_set_epi64x(b(7), b(6), b(5), b(4)),
            ah: lanes(hi32),
            al: lanes(lo32),
        }
    };
    // Half the groups (56 hashes) per pass over the shingles: their 7 minima stay in vector
    // registers with the shingle's three broadcasts, the constants are memory operands, and the
    // broadcasts are paid twice per shingle instead of once per group pair.
    const PER_PASS: usize = GROUPS / 2;
    const _: () = assert!(2 * PER_PASS == GROUPS);
    let passes: [[Group; PER_PASS]; 2] =
        std::array::from_fn(|pass| std::array::from_fn(|i| group(pass * PER_PASS + i)));
    let mut mins = [[_mm256_set1_epi32(-1); PER_PASS]; 2];
    for (groups, m) in passes.iter().zip(mins.iter_mut()) {
        for &s in shingles {
            let s64 = _mm256_set1_epi64x(s as i64);
            let sl = _mm256_set1_epi32(lo32(s));
            let sh = _mm256_set1_epi32(hi32(s));
            for (g, m) in groups.iter().zip(m.iter_mut()) {
                let lo = _mm256_add_epi64(_mm256_mul_epu32(g.al_lo, s64), g.b_lo);
                let hi = _mm256_add_epi64(_mm256_mul_epu32(g.al_hi, s64), g.b_hi);
                // High halves: hashes 0-3 shifted down into the even lanes, 4-7 in the odd.
                let top = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(lo), hi);
                let cross =
                    _mm256_add_epi32(_mm256_mullo_epi32(g.ah, sl), _mm256_mullo_epi32(g.al, sh));
                *m = _mm256_min_epu32(*m, _mm256_add_epi32(top, cross));
            }
        }
    }
    let mut sig = [u32::MAX; NUM_HASHES];
    for (out, m) in sig.chunks_exact_mut(8).zip(mins.into_iter().flatten()) {
        let lanes = [
            _mm256_extract_epi32::<0>(m),
            _mm256_extract_epi32::<1>(m),
            _mm256_extract_epi32::<2>(m),
            _mm256_extract_epi32::<3>(m),
            _mm256_extract_epi32::<4>(m),
            _mm256_extract_epi32::<5>(m),
            _mm256_extract_epi32::<6>(m),
            _mm256_extract_epi32::<7>(m),
        ];
        for (lane, &j) in lanes.into_iter().zip(&ORDER) {
            if let Some(o) = out.get_mut(j) {
                *o = lane as u32;
            }
        }
    }
    sig
}

/// `min over s of ((A[i]·s + B[i]) mod 2^64) >> 32` for each hash `i`, [`LANES`] hashes per pass
/// over the shingles so their multipliers, offsets and minima stay in (vector) registers.
#[inline(always)]
fn min_hashes_portable(shingles: &[u64]) -> [u32; NUM_HASHES] {
    let f = family();
    let mut sig = [u32::MAX; NUM_HASHES];
    for ((m, a), b) in sig
        .chunks_exact_mut(LANES)
        .zip(f.a.chunks_exact(LANES))
        .zip(f.b.chunks_exact(LANES))
    {
        let mut a8 = [0u64; LANES];
        let mut b8 = [0u64; LANES];
        a8.copy_from_slice(a);
        b8.copy_from_slice(b);
        let mut m8 = [u32::MAX; LANES];
        for &s in shingles {
            for j in 0..LANES {
                let v = (a8[j].wrapping_mul(s).wrapping_add(b8[j]) >> 32) as u32;
                m8[j] = m8[j].min(v);
            }
        }
        m.copy_from_slice(&m8);
    }
    sig
}

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

    #[test]
    fn every_min_hash_variant_agrees() {
        let mut shingles: Vec<u64> = (0..1_000u64).map(|i| fmix64(i ^ 0xabcd)).collect();
        // Halves at their extremes (carries out of the low product, zero halves).
        shingles.extend([
            0,
            1,
            u64::MAX,
            u64::from(u32::MAX),
            u64::MAX << 32,
            1 << 32,
            0x8000_0000_8000_0000,
        ]);
        for n in [0, 1, 2, 7, 100, shingles.len()] {
            for from in [0, (shingles.len() - n) / 2, shingles.len() - n] {
                let part = &shingles[from..from + n];
                let portable = min_hashes_portable(part);
                assert_eq!(min_hashes(part), portable);
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: AVX2 is present, checked just above.
                    #[allow(unsafe_code)]
                    let avx2 = unsafe { min_hashes_avx2(part) };
                    assert_eq!(avx2, portable, "{n} shingles from {from}");
                }
            }
        }
        assert_eq!(min_hashes(&[]), [u32::MAX; NUM_HASHES]);
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
            changed.0[i] ^= 1 << (i % 32);
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

    /// `minhash/v1` and the exact key as first written (a character at a time): the fast paths
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

        fn word_hashes(text: &str) -> Vec<u64> {
            let mut out = Vec::new();
            let mut word = String::new();
            let flush = |word: &mut String, out: &mut Vec<u64>| {
                if !word.is_empty() {
                    out.push(word_hash(word.as_bytes()));
                    word.clear();
                }
            };
            for c in text.chars() {
                if c.is_ascii_digit() {
                    word.push('0');
                } else if c.is_alphanumeric() {
                    if c.is_ascii() {
                        word.push(c.to_ascii_lowercase());
                    } else {
                        word.extend(c.to_lowercase());
                    }
                } else {
                    flush(&mut word, &mut out);
                }
            }
            flush(&mut word, &mut out);
            out
        }

        pub fn minhash(text: &str) -> MinHash {
            let words = word_hashes(text);
            let f = family();
            let mut sig = [u32::MAX; NUM_HASHES];
            let mut add = |s: u64| {
                for ((m, a), b) in sig.iter_mut().zip(&f.a).zip(&f.b) {
                    let v = (a.wrapping_mul(s).wrapping_add(*b) >> 32) as u32;
                    if v < *m {
                        *m = v;
                    }
                }
            };
            if words.len() < SHINGLE_WORDS {
                if !words.is_empty() {
                    add(shingle(&words));
                }
            } else {
                for w in words.windows(SHINGLE_WORDS) {
                    add(shingle(w));
                }
            }
            MinHash(sig)
        }
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
        for t in &texts {
            assert_eq!(exact_key(t), reference::exact_key(t), "{t:?}");
            assert_eq!(MinHash::of(t), reference::minhash(t), "{t:?}");
        }
    }
}
