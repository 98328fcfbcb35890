//! The quality rules as they were before the shared tokenisation (commit 6fc3284), kept to test
//! that the current code gives the same verdicts and scores on any text.

use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasherDefault;

use crate::dedup::{IdentityHasher, word_hash};

// The thresholds are parameters, not the code under test: shared with the current rules. The
// top n-gram table and the C4 phrases are v1's own shapes (the current tables name each score
// and put `javascript` with the phrases).
use super::{
    C4_MIN_LINE_WORDS, C4_MIN_SENTENCES, FINEWEB_MAX_DUP_LINE_CHARS, FINEWEB_MAX_NEWLINES_PER_WORD,
    FINEWEB_MAX_SHORT_LINES, FINEWEB_MIN_PUNCT_LINES, FINEWEB_SHORT_LINE_BYTES,
    GOPHER_DUP_LINE_CHAR_FRAC, GOPHER_DUP_LINE_FRAC, GOPHER_DUP_NGRAM, GOPHER_DUP_PARA_CHAR_FRAC,
    GOPHER_DUP_PARA_FRAC, GOPHER_MAX_BULLET_LINES, GOPHER_MAX_ELLIPSIS_LINES,
    GOPHER_MAX_SYMBOL_RATIO, GOPHER_MAX_WORDS, GOPHER_MEAN_WORD_LEN, GOPHER_MIN_ALPHA_WORDS,
    GOPHER_MIN_STOP_WORDS, GOPHER_MIN_WORDS, GOPHER_STOP_WORDS, LANG_SAMPLE_BYTES, MIN_TEXT_BYTES,
    ends_terminal, iso639_1, ratio,
};

const GOPHER_TOP_NGRAM: [(usize, f64, &str); 3] = [
    (2, 0.20, "gopher_top_2gram"),
    (3, 0.18, "gopher_top_3gram"),
    (4, 0.16, "gopher_top_4gram"),
];
const C4_POLICY_PHRASES: [&str; 6] = [
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
];

use super::QualityReport;

type FastSet = HashSet<u64, BuildHasherDefault<IdentityHasher>>;

/// `str::split_whitespace`, with a byte-wise path for ASCII text (where whitespace is exactly
/// space and U+0009..=U+000D), which is most web text and several times faster.
pub(super) fn split_words(text: &str) -> Words<'_> {
    if text.is_ascii() {
        Words::Ascii { text, pos: 0 }
    } else {
        Words::Unicode(text.split_whitespace())
    }
}

pub(super) enum Words<'a> {
    Ascii { text: &'a str, pos: usize },
    Unicode(std::str::SplitWhitespace<'a>),
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match self {
            Words::Unicode(it) => it.next(),
            Words::Ascii { text, pos } => {
                let bytes = text.as_bytes();
                let is_space = |b: u8| matches!(b, b' ' | b'\t'..=b'\r');
                let mut start = *pos;
                while start < bytes.len() && is_space(bytes[start]) {
                    start += 1;
                }
                let mut end = start;
                while end < bytes.len() && !is_space(bytes[end]) {
                    end += 1;
                }
                *pos = end;
                if start == end {
                    None
                } else {
                    text.get(start..end)
                }
            }
        }
    }
}

/// Runs every rule on `text`, declared to be in `lang` (ISO 639-1). `languages` lists accepted
/// languages; empty accepts all.
pub fn assess(text: &str, lang: &str, languages: &[String]) -> QualityReport {
    let mut scores = BTreeMap::new();
    let rejection = run(text, lang, languages, &mut scores);
    QualityReport { scores, rejection }
}

fn run(
    text: &str,
    lang: &str,
    languages: &[String],
    s: &mut BTreeMap<&'static str, f64>,
) -> Option<&'static str> {
    let mut put = |k: &'static str, v: f64| {
        s.insert(k, v);
    };
    put("text_bytes", text.len() as f64);
    if text.len() < MIN_TEXT_BYTES {
        return Some("text_too_short");
    }

    // Language.
    if lang.is_empty() || lang == "und" {
        return Some("lang_unknown");
    }
    if !languages.is_empty() && !languages.iter().any(|l| l == lang) {
        return Some("lang_not_accepted");
    }
    let mut end = text.len().min(LANG_SAMPLE_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if let Some(info) = whatlang::detect(&text[..end]) {
        let detected = iso639_1(info.lang());
        if info.is_reliable() && detected.is_some_and(|d| d != lang) {
            put("language_score", 0.0);
            return Some("lang_mismatch");
        }
        put("language_score", info.confidence());
    } else {
        put("language_score", 0.0);
    }

    let ascii = text.is_ascii();
    let words: Vec<&str> = split_words(text).collect();
    let hashes: Vec<u64> = words.iter().map(|w| word_hash(w.as_bytes())).collect();
    let word_bytes: usize = words.iter().map(|w| w.len()).sum();
    let lines: Vec<&str> = text
        .split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();

    // Gopher repetition.
    let (dup_paras, dup_para_chars, n_paras) = dup_units(text.split("\n\n"));
    put("gopher_dup_para_frac", ratio(dup_paras, n_paras));
    if ratio(dup_paras, n_paras) > GOPHER_DUP_PARA_FRAC
        || ratio(dup_para_chars, text.len()) > GOPHER_DUP_PARA_CHAR_FRAC
    {
        return Some("gopher_dup_paragraphs");
    }
    let (dup_lines, dup_line_chars, n_lines) = dup_units(lines.iter().copied());
    put("gopher_dup_line_frac", ratio(dup_lines, n_lines));
    if ratio(dup_lines, n_lines) > GOPHER_DUP_LINE_FRAC
        || ratio(dup_line_chars, text.len()) > GOPHER_DUP_LINE_CHAR_FRAC
    {
        return Some("gopher_dup_lines");
    }
    let mut counter = Counter::with_capacity(hashes.len());
    for (n, max, name) in GOPHER_TOP_NGRAM {
        let frac = top_ngram_frac(&words, &hashes, n, word_bytes, &mut counter);
        put(name, frac);
        if frac > max {
            return Some("gopher_top_ngram");
        }
    }
    for (n, max) in GOPHER_DUP_NGRAM {
        let frac = dup_ngram_frac(&words, &hashes, n, word_bytes, &mut counter);
        if n == 5 {
            put("gopher_dup_5gram", frac);
        }
        if frac > max {
            return Some("gopher_dup_ngram");
        }
        if frac == 0.0 {
            // No repeated n-gram means no repeated longer n-gram either (each contains one).
            break;
        }
    }

    // Gopher quality. One pass over the words gathers what the rules below need.
    let ws = word_stats(&words, lang == "en");
    put("gopher_words", ws.non_symbol as f64);
    if !(GOPHER_MIN_WORDS..=GOPHER_MAX_WORDS).contains(&ws.non_symbol) {
        return Some("gopher_word_count");
    }
    let mean_len = ws.non_symbol_chars as f64 / ws.non_symbol as f64;
    put("gopher_mean_word_length", mean_len);
    if !(GOPHER_MEAN_WORD_LEN.0..=GOPHER_MEAN_WORD_LEN.1).contains(&mean_len) {
        return Some("gopher_mean_word_length");
    }
    let hashes_n = text.bytes().filter(|&b| b == b'#').count();
    let ellipses = text.matches("...").count()
        + if ascii {
            0
        } else {
            text.matches('…').count()
        };
    if ratio(hashes_n, words.len()) > GOPHER_MAX_SYMBOL_RATIO
        || ratio(ellipses, words.len()) > GOPHER_MAX_SYMBOL_RATIO
    {
        return Some("gopher_symbol_ratio");
    }
    let bullets = lines
        .iter()
        .filter(|l| l.starts_with(['•', '●', '○', '▪', '-', '*', '·']))
        .count();
    if ratio(bullets, lines.len()) > GOPHER_MAX_BULLET_LINES {
        return Some("gopher_bullet_lines");
    }
    let ellipsis_lines = lines
        .iter()
        .filter(|l| l.ends_with("...") || l.ends_with('…'))
        .count();
    if ratio(ellipsis_lines, lines.len()) > GOPHER_MAX_ELLIPSIS_LINES {
        return Some("gopher_ellipsis_lines");
    }
    put("gopher_alpha_ratio", ratio(ws.alpha, words.len()));
    if ratio(ws.alpha, words.len()) < GOPHER_MIN_ALPHA_WORDS {
        return Some("gopher_alpha_words");
    }
    if lang == "en" {
        put("gopher_stop_words", ws.stop as f64);
        if ws.stop < GOPHER_MIN_STOP_WORDS {
            return Some("gopher_stop_words");
        }
    }

    // C4.
    let lower = text.to_lowercase();
    if lower.contains("lorem ipsum") {
        return Some("c4_lorem_ipsum");
    }
    if text.contains('{') {
        return Some("c4_curly_bracket");
    }
    let mut sentences = 0usize;
    for line in lower.split('\n').map(str::trim) {
        // Words and sentence-ending words in one pass over the line.
        let (mut n_words, mut ends) = (0usize, 0usize);
        for w in split_words(line) {
            n_words += 1;
            if w.ends_with(['.', '!', '?']) || w.ends_with(".\"") || w.ends_with("?\"") {
                ends += 1;
            }
        }
        if n_words < C4_MIN_LINE_WORDS
            || !ends_terminal(line)
            || line.contains("javascript")
            || C4_POLICY_PHRASES.iter().any(|p| line.contains(p))
        {
            continue;
        }
        sentences += ends;
    }
    put("c4_sentences", sentences as f64);
    if sentences < C4_MIN_SENTENCES {
        return Some("c4_too_few_sentences");
    }

    // FineWeb.
    let punct = lines.iter().filter(|l| ends_terminal(l)).count();
    let punct_ratio = ratio(punct, lines.len());
    put("fineweb_line_punct_ratio", punct_ratio);
    if punct_ratio < FINEWEB_MIN_PUNCT_LINES {
        return Some("fineweb_punctuation");
    }
    let short = lines
        .iter()
        .filter(|l| l.len() <= FINEWEB_SHORT_LINE_BYTES)
        .count();
    put("fineweb_short_line_ratio", ratio(short, lines.len()));
    if ratio(short, lines.len()) > FINEWEB_MAX_SHORT_LINES {
        return Some("fineweb_short_lines");
    }
    let dup_char_ratio = ratio(dup_line_chars, text.len());
    put("fineweb_dup_line_char_ratio", dup_char_ratio);
    if dup_char_ratio > FINEWEB_MAX_DUP_LINE_CHARS {
        return Some("fineweb_dup_lines");
    }
    let newlines = text.bytes().filter(|&b| b == b'\n').count();
    put("fineweb_newline_ratio", ratio(newlines, words.len()));
    if ratio(newlines, words.len()) > FINEWEB_MAX_NEWLINES_PER_WORD {
        return Some("fineweb_newlines");
    }
    None
}

/// Per-word counts for the Gopher quality rules, gathered in one pass.
struct WordStats {
    /// Words with an alphanumeric character ("non-symbol" words).
    non_symbol: usize,
    /// Characters in those words.
    non_symbol_chars: usize,
    /// Words with an alphabetic character.
    alpha: usize,
    /// Gopher stop words (counted only when asked).
    stop: usize,
}

fn word_stats(words: &[&str], count_stop_words: bool) -> WordStats {
    let mut ws = WordStats {
        non_symbol: 0,
        non_symbol_chars: 0,
        alpha: 0,
        stop: 0,
    };
    for w in words {
        // On ASCII, `char::is_alphanumeric`/`is_alphabetic` are the ASCII tests and a byte is a
        // character.
        let b = w.as_bytes();
        let (alnum, alpha, chars, stop) = if b.is_ascii() {
            let alnum = b.iter().any(u8::is_ascii_alphanumeric);
            (
                alnum,
                alnum && b.iter().any(u8::is_ascii_alphabetic),
                b.len(),
                count_stop_words && alnum && is_ascii_stop_word(b),
            )
        } else {
            (
                w.chars().any(char::is_alphanumeric),
                w.chars().any(char::is_alphabetic),
                w.chars().count(),
                count_stop_words && is_stop_word(w),
            )
        };
        if alnum {
            ws.non_symbol += 1;
            ws.non_symbol_chars += chars;
        }
        ws.alpha += usize::from(alpha);
        ws.stop += usize::from(stop);
    }
    ws
}

/// `w` trimmed of non-alphanumeric characters is a Gopher stop word, ignoring case.
fn is_stop_word(w: &str) -> bool {
    let w = w.trim_matches(|c: char| !c.is_alphanumeric());
    (2..=4).contains(&w.len()) && GOPHER_STOP_WORDS.iter().any(|s| w.eq_ignore_ascii_case(s))
}

/// `w` (ASCII, with an alphanumeric byte) trimmed of non-alphanumeric bytes is a Gopher stop
/// word, ignoring case: the ASCII case of the `trim_matches`/`eq_ignore_ascii_case` test.
fn is_ascii_stop_word(w: &[u8]) -> bool {
    let Some(start) = w.iter().position(u8::is_ascii_alphanumeric) else {
        return false;
    };
    let end = w
        .iter()
        .rposition(u8::is_ascii_alphanumeric)
        .map_or(start, |e| e + 1);
    let t = &w[start..end];
    (2..=4).contains(&t.len())
        && GOPHER_STOP_WORDS
            .iter()
            .any(|s| t.eq_ignore_ascii_case(s.as_bytes()))
}

/// (duplicate units, bytes in duplicate units, units) over trimmed non-empty units.
fn dup_units<'a>(units: impl Iterator<Item = &'a str>) -> (usize, usize, usize) {
    let mut seen = FastSet::default();
    let (mut dups, mut chars, mut n) = (0, 0, 0);
    for u in units.map(str::trim).filter(|u| !u.is_empty()) {
        n += 1;
        if !seen.insert(word_hash(u.as_bytes())) {
            dups += 1;
            chars += u.len();
        }
    }
    (dups, chars, n)
}

fn ngram_hash(hashes: &[u64]) -> u64 {
    hashes.iter().fold(0x9e37_79b9_7f4a_7c15u64, |acc, h| {
        (acc.rotate_left(23) ^ h).wrapping_mul(0x5851_f42d_4c95_7f2d)
    })
}

/// Occurrence counts of `u64` keys (n-gram hashes) in an open-addressing table with linear
/// probing, at most half full: the same counts as a `HashMap<u64, u32>` (keys compared exactly),
/// several times cheaper per key, and reused from one n-gram size to the next.
struct Counter {
    keys: Vec<u64>,
    counts: Vec<u32>,
    shift: u32,
}

impl Counter {
    /// A table for up to `n` distinct keys.
    fn with_capacity(n: usize) -> Self {
        let slots = n.saturating_mul(2).next_power_of_two().max(16);
        Counter {
            keys: vec![0; slots],
            counts: vec![0; slots],
            shift: 64 - slots.trailing_zeros(),
        }
    }

    /// Forgets every key (a key is present while its count is non-zero).
    fn clear(&mut self) {
        self.counts.fill(0);
    }

    /// Counts one more occurrence of `key` and returns its count so far. At most
    /// [`Counter::with_capacity`]'s `n` distinct keys may be added between clears.
    #[inline]
    fn add(&mut self, key: u64) -> u32 {
        let mask = self.keys.len() - 1;
        let mut i = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize & mask;
        loop {
            let c = self.counts[i];
            if c == 0 {
                self.keys[i] = key;
                self.counts[i] = 1;
                return 1;
            }
            if self.keys[i] == key {
                self.counts[i] = c + 1;
                return c + 1;
            }
            i = (i + 1) & mask;
        }
    }
}

/// Share of word bytes covered by the most frequent `n`-gram (when it occurs more than once).
fn top_ngram_frac(
    words: &[&str],
    hashes: &[u64],
    n: usize,
    word_bytes: usize,
    counts: &mut Counter,
) -> f64 {
    if hashes.len() < n || word_bytes == 0 {
        return 0.0;
    }
    counts.clear();
    let mut best = (0u32, 0usize);
    for (i, w) in hashes.windows(n).enumerate() {
        let c = counts.add(ngram_hash(w));
        if c > best.0 {
            best = (c, i);
        }
    }
    if best.0 < 2 {
        return 0.0;
    }
    let len: usize = words[best.1..best.1 + n].iter().map(|w| w.len()).sum();
    ratio(len * best.0 as usize, word_bytes)
}

/// Share of word bytes inside `n`-grams that already occurred earlier (non-overlapping count).
fn dup_ngram_frac(
    words: &[&str],
    hashes: &[u64],
    n: usize,
    word_bytes: usize,
    seen: &mut Counter,
) -> f64 {
    if hashes.len() < n || word_bytes == 0 {
        return 0.0;
    }
    seen.clear();
    let mut dup = 0usize;
    let mut i = 0;
    while i + n <= hashes.len() {
        if seen.add(ngram_hash(&hashes[i..i + n])) == 1 {
            i += 1;
        } else {
            dup += words[i..i + n].iter().map(|w| w.len()).sum::<usize>();
            i += n;
        }
    }
    ratio(dup, word_bytes)
}
