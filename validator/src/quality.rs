//! Quality rules for cleaned text, in FineWeb's (datatrove's) order: language → Gopher repetition →
//! Gopher quality → C4 → FineWeb. Thresholds are the published ones (see
//! `/work/shared/notes/datasets.md`). The first failing rule names the rejection with a stable
//! reason code; the statistics computed along the way are kept as the record's quality scores.
//!
//! The validator cannot change a signed text, so C4's line filters are used to *measure* (how many
//! sentences survive them), never to rewrite. Character fractions are over UTF-8 bytes.

use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use crate::dedup::{
    IdentityHasher, Stretch, ascii_space_candidates, ascii_stretches, is_ascii_space,
    short_word_key, word_key,
};

/// Texts shorter than this many bytes are not worth a record: below a short paragraph.
pub const MIN_TEXT_BYTES: usize = 200;
/// Only this prefix goes to the language detector: half a kilobyte (~80 words) identifies a
/// language when whatlang calls itself reliable, and detection costs grow with the sample.
const LANG_SAMPLE_BYTES: usize = 512;

/// Gopher quality: bounds on non-symbol words.
const GOPHER_MIN_WORDS: usize = 50;
const GOPHER_MAX_WORDS: usize = 100_000;
const GOPHER_MEAN_WORD_LEN: (f64, f64) = (3.0, 10.0);
const GOPHER_MAX_SYMBOL_RATIO: f64 = 0.1;
const GOPHER_MAX_BULLET_LINES: f64 = 0.9;
const GOPHER_MAX_ELLIPSIS_LINES: f64 = 0.3;
const GOPHER_MIN_ALPHA_WORDS: f64 = 0.8;
const GOPHER_MIN_STOP_WORDS: usize = 2;
const GOPHER_STOP_WORDS: [&str; 8] = ["the", "be", "to", "of", "and", "that", "have", "with"];
/// Gopher repetition limits.
const GOPHER_DUP_PARA_FRAC: f64 = 0.3;
const GOPHER_DUP_PARA_CHAR_FRAC: f64 = 0.2;
const GOPHER_DUP_LINE_FRAC: f64 = 0.3;
const GOPHER_DUP_LINE_CHAR_FRAC: f64 = 0.2;
const GOPHER_TOP_NGRAM: [(usize, f64, &str); 3] = [
    (2, 0.20, "gopher_top_2gram"),
    (3, 0.18, "gopher_top_3gram"),
    (4, 0.16, "gopher_top_4gram"),
];
/// The largest n of the top n-gram rules.
const TOP_NGRAM_MAX_N: usize = GOPHER_TOP_NGRAM[GOPHER_TOP_NGRAM.len() - 1].0;
const GOPHER_DUP_NGRAM: [(usize, f64); 6] = [
    (5, 0.15),
    (6, 0.14),
    (7, 0.13),
    (8, 0.12),
    (9, 0.11),
    (10, 0.10),
];
/// C4: lines need this many words; documents this many sentences.
const C4_MIN_LINE_WORDS: usize = 3;
const C4_MIN_SENTENCES: usize = 5;
/// A line with one of these (lower-cased) is not counted: `javascript`, then the policy phrases.
const C4_LINE_PHRASES: [&str; 7] = [
    "javascript",
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
];
/// [`C4_LINE_PHRASES`], then `"cookie"` and `"lorem ipsum"`, each searcher built once.
static C4_FINDERS: LazyLock<C4Finders> = LazyLock::new(|| C4Finders {
    phrases: C4_LINE_PHRASES.map(|p| Finder::new(p).into_owned()),
    cookie: Finder::new("cookie").into_owned(),
    lorem: Finder::new("lorem ipsum").into_owned(),
    ellipsis: Finder::new("...").into_owned(),
    ellipsis_char: Finder::new("…").into_owned(),
});

struct C4Finders {
    phrases: [Finder<'static>; C4_LINE_PHRASES.len()],
    cookie: Finder<'static>,
    lorem: Finder<'static>,
    ellipsis: Finder<'static>,
    ellipsis_char: Finder<'static>,
}

/// FineWeb line rules.
const FINEWEB_MIN_PUNCT_LINES: f64 = 0.12;
const FINEWEB_MAX_SHORT_LINES: f64 = 0.67;
const FINEWEB_SHORT_LINE_BYTES: usize = 30;
const FINEWEB_MAX_DUP_LINE_CHARS: f64 = 0.01;
const FINEWEB_MAX_NEWLINES_PER_WORD: f64 = 0.3;

/// The outcome of the quality rules for one text.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityReport {
    /// Statistics by stable name (`gopher_words`, `fineweb_line_punct_ratio`, `language_score`, …).
    pub scores: BTreeMap<&'static str, f64>,
    /// The first rule that failed, as a reason code; `None` when the text passed.
    pub rejection: Option<&'static str>,
}

/// Every score name [`assess`] reports, at the index that is its one-byte code in the scores'
/// stored form ([`encode_scores`]). Codes are stored, so names are only ever appended here.
pub const SCORE_NAMES: [&str; 17] = [
    "text_bytes",
    "language_score",
    "gopher_dup_para_frac",
    "gopher_dup_line_frac",
    "gopher_top_2gram",
    "gopher_top_3gram",
    "gopher_top_4gram",
    "gopher_dup_5gram",
    "gopher_words",
    "gopher_mean_word_length",
    "gopher_alpha_ratio",
    "gopher_stop_words",
    "c4_sentences",
    "fineweb_line_punct_ratio",
    "fineweb_short_line_ratio",
    "fineweb_dup_line_char_ratio",
    "fineweb_newline_ratio",
];

/// The first byte of the scores' stored form: which format follows.
const SCORES_FORMAT: u8 = 1;
/// Bytes per score in the stored form: its code, then its value.
const SCORE_BYTES: usize = 9;

/// Scores in their stored form: `SCORES_FORMAT`, then per score its code (index in
/// [`SCORE_NAMES`]) and its value as a little-endian `f64`. About 150 bytes for an accepted
/// record where the same scores as JSON take ~770, and every value comes back bit for bit.
/// `None` when a name has no code (the caller keeps JSON then).
pub fn encode_scores(scores: &BTreeMap<&str, f64>) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(1 + SCORE_BYTES * scores.len());
    out.push(SCORES_FORMAT);
    for (name, value) in scores {
        let code = SCORE_NAMES.iter().position(|n| n == name)?;
        out.push(u8::try_from(code).ok()?);
        out.extend_from_slice(&value.to_le_bytes());
    }
    Some(out)
}

/// A record's scores as the store keeps them: the columns `quality` (compact) and `quality_json`
/// of its row, exactly one of them in use.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredScores {
    /// [`encode_scores`]' form (schema version 12 on).
    Compact(Vec<u8>),
    /// JSON by name: rows stored before version 12, and scores a name of which has no code.
    Json(String),
}

impl StoredScores {
    /// The stored form of `scores`: compact, or JSON when a name has no code.
    pub fn of(scores: &BTreeMap<&str, f64>) -> Self {
        match encode_scores(scores) {
            Some(bytes) => StoredScores::Compact(bytes),
            None => {
                StoredScores::Json(serde_json::to_string(scores).unwrap_or_else(|_| "{}".into()))
            }
        }
    }

    /// The scores back, by name; a message saying what is wrong otherwise.
    pub fn decode(&self) -> Result<BTreeMap<String, f64>, String> {
        match self {
            StoredScores::Compact(bytes) => decode_scores(bytes),
            StoredScores::Json(json) => serde_json::from_str(json).map_err(|e| e.to_string()),
        }
    }
}

/// The scores of [`encode_scores`]' form, by name; a message saying what is wrong otherwise.
pub fn decode_scores(bytes: &[u8]) -> Result<BTreeMap<String, f64>, String> {
    let Some((&format, rest)) = bytes.split_first() else {
        return Err("empty scores".into());
    };
    if format != SCORES_FORMAT {
        return Err(format!(
            "scores format {format} (this build reads {SCORES_FORMAT})"
        ));
    }
    if rest.len() % SCORE_BYTES != 0 {
        return Err(format!(
            "{} bytes of scores, not a whole number of scores",
            rest.len()
        ));
    }
    let mut scores = BTreeMap::new();
    for score in rest.chunks_exact(SCORE_BYTES) {
        let (&code, value) = score.split_first().ok_or("short score")?;
        let name = SCORE_NAMES
            .get(usize::from(code))
            .ok_or_else(|| format!("unknown score code {code}"))?;
        let value: [u8; 8] = value.try_into().map_err(|_| "short score value")?;
        if scores
            .insert((*name).to_string(), f64::from_le_bytes(value))
            .is_some()
        {
            return Err(format!("score {name} twice"));
        }
    }
    Ok(scores)
}

type FastSet = HashSet<u64, BuildHasherDefault<IdentityHasher>>;

fn ends_terminal(line: &str) -> bool {
    matches!(
        line.trim_end().chars().last(),
        Some('.' | '!' | '?' | '"' | '\'' | '”' | '’' | '…' | ')' | '。' | '！' | '？')
    )
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Builds what [`assess`] loads on first use: the C4 phrase finders and language id's tables.
pub(crate) fn warm_up() {
    LazyLock::force(&C4_FINDERS);
    crate::lang::warm_up();
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
    let sample = text.get(..text.floor_char_boundary(LANG_SAMPLE_BYTES));
    if let Some(info) = sample.and_then(crate::lang::detect) {
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
    let cut = Cut::new(text, lang == "en");
    let n_words = cut.hashes.len();
    let lines = LineStats::new(text, &cut);

    // Gopher repetition.
    let (dup_paras, dup_para_chars, n_paras) = dup_units(paragraphs(text, &cut.newlines));
    put("gopher_dup_para_frac", ratio(dup_paras, n_paras));
    if ratio(dup_paras, n_paras) > GOPHER_DUP_PARA_FRAC
        || ratio(dup_para_chars, text.len()) > GOPHER_DUP_PARA_CHAR_FRAC
    {
        return Some("gopher_dup_paragraphs");
    }
    let (dup_lines, dup_line_chars, n_lines) =
        (lines.units.dups, lines.units.dup_bytes, lines.units.n);
    put("gopher_dup_line_frac", ratio(dup_lines, n_lines));
    if ratio(dup_lines, n_lines) > GOPHER_DUP_LINE_FRAC
        || ratio(dup_line_chars, text.len()) > GOPHER_DUP_LINE_CHAR_FRAC
    {
        return Some("gopher_dup_lines");
    }
    // N-gram hashes for n = 1, 2, 3, …, each from the one before: `grams[i]` is the hash of the
    // n words from `i` (see `ngram_hash`), valid for `i + n <= words.len()`.
    let mut grams: Vec<u64> = cut
        .hashes
        .iter()
        .map(|&h| ngram_step(NGRAM_SEED, h))
        .collect();
    let mut grams_n = 1;
    let mut counter = Counter::reused(cut.hashes.len());
    // Every n-gram that occurs twice starts with an (n-1)-gram that occurs twice, so once no
    // n-gram repeats, no longer one does: their fractions are 0 without counting.
    let mut repeats = true;
    // Which n-grams of the last size counted repeat, for counting only the positions that can.
    let mut repeated: Option<Vec<bool>> = None;
    for (n, max, name) in GOPHER_TOP_NGRAM {
        let frac = if repeats {
            // The first size counts every position; a larger one only those whose two
            // (n-1)-grams both repeat (an n-gram anywhere else occurs once), and only their
            // hashes are grown.
            let (frac, now) = match repeated.as_deref() {
                None => {
                    grow_grams(&mut grams, &mut grams_n, &cut.hashes, n);
                    top_ngram_frac(&cut.ends, &grams, n, &mut counter, 0..grams.len())
                }
                Some(prev) => {
                    let at = repeated_pairs(prev);
                    grow_grams_at(&mut grams, &cut.hashes, n, &at);
                    top_ngram_frac(&cut.ends, &grams, n, &mut counter, at.iter().copied())
                }
            };
            repeated = Some(now);
            frac
        } else {
            0.0
        };
        // Positive exactly when some n-gram occurs twice (words are never empty).
        repeats = frac > 0.0;
        put(name, frac);
        if frac > max {
            return Some("gopher_top_ngram");
        }
    }
    // The duplicate passes run only when every top pass found a repeat, and then `repeated` is
    // the 4-grams'. Only the positions whose n-gram may repeat (see [`may_repeat`]) have their
    // hashes grown and counted, fewer at each size (on most text, a small share of the words).
    let words = cut.hashes.len();
    let runs = match repeated.as_deref() {
        Some(r) if repeats => repeated_runs(r),
        _ => Vec::new(),
    };
    let mut alive: Vec<usize> = if repeats {
        (0..words).collect()
    } else {
        Vec::new()
    };
    for (n, max) in GOPHER_DUP_NGRAM {
        if !repeats {
            if n == 5 {
                put("gopher_dup_5gram", 0.0);
            }
            break;
        }
        alive.retain(|&i| may_repeat(&runs, TOP_NGRAM_MAX_N, n, words, i));
        grow_grams_at(&mut grams, &cut.hashes, n, &alive);
        let frac = dup_ngram_frac(&cut.ends, &grams, n, &mut counter, alive.iter().copied());
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

    // Gopher quality, from the counts gathered while cutting the words.
    let ws = &cut.stats;
    put("gopher_words", ws.non_symbol as f64);
    if !(GOPHER_MIN_WORDS..=GOPHER_MAX_WORDS).contains(&ws.non_symbol) {
        return Some("gopher_word_count");
    }
    let mean_len = ws.non_symbol_chars as f64 / ws.non_symbol as f64;
    put("gopher_mean_word_length", mean_len);
    if !(GOPHER_MEAN_WORD_LEN.0..=GOPHER_MEAN_WORD_LEN.1).contains(&mean_len) {
        return Some("gopher_mean_word_length");
    }
    // memchr's searches count what `str::matches` counts (non-overlapping, left to right),
    // several times faster.
    let finders = &*C4_FINDERS;
    let bytes = text.as_bytes();
    let hashes_n = memchr::memchr_iter(b'#', bytes).count();
    let ellipses = finders.ellipsis.find_iter(bytes).count()
        + if ascii {
            0
        } else {
            finders.ellipsis_char.find_iter(bytes).count()
        };
    if ratio(hashes_n, n_words) > GOPHER_MAX_SYMBOL_RATIO
        || ratio(ellipses, n_words) > GOPHER_MAX_SYMBOL_RATIO
    {
        return Some("gopher_symbol_ratio");
    }
    if ratio(lines.bullets, lines.units.n) > GOPHER_MAX_BULLET_LINES {
        return Some("gopher_bullet_lines");
    }
    if ratio(lines.ellipsis, lines.units.n) > GOPHER_MAX_ELLIPSIS_LINES {
        return Some("gopher_ellipsis_lines");
    }
    put("gopher_alpha_ratio", ratio(ws.alpha, n_words));
    if ratio(ws.alpha, n_words) < GOPHER_MIN_ALPHA_WORDS {
        return Some("gopher_alpha_words");
    }
    if lang == "en" {
        put("gopher_stop_words", ws.stop as f64);
        if ws.stop < GOPHER_MIN_STOP_WORDS {
            return Some("gopher_stop_words");
        }
    }

    // C4. The rules read the lower-cased text; lower-casing keeps every line break and every
    // word boundary, and never changes what a word or line ends with (checked for every
    // `char` in the tests), so the per-line word and sentence counts come from the cut words and
    // only the phrase searches need the lower-cased copy: one search of the whole text per
    // phrase, mapping a hit to its line.
    let lower = lowercase(text);
    let lower = lower.as_bytes();
    if finders.lorem.find(lower).is_some() {
        return Some("c4_lorem_ipsum");
    }
    if memchr::memchr(b'{', bytes).is_some() {
        return Some("c4_curly_bracket");
    }
    let mut excluded: Vec<usize> = Vec::new();
    // Four phrases contain "cookie": one search rules them all out on most texts.
    let cookies = finders.cookie.find(lower).is_some();
    for (phrase, finder) in C4_LINE_PHRASES.iter().zip(&finders.phrases) {
        if cookies || !phrase.contains("cookie") {
            excluded.extend(
                finder.find_iter(lower).map(|at| {
                    memchr::memchr_iter(b'\n', lower.get(..at).unwrap_or_default()).count()
                }),
            );
        }
    }
    let sentences: usize = lines
        .c4_sentences
        .iter()
        .enumerate()
        .filter(|(k, _)| !excluded.contains(k))
        .map(|(_, &n)| n as usize)
        .sum();
    put("c4_sentences", sentences as f64);
    if sentences < C4_MIN_SENTENCES {
        return Some("c4_too_few_sentences");
    }

    // FineWeb.
    let punct_ratio = ratio(lines.punct, lines.units.n);
    put("fineweb_line_punct_ratio", punct_ratio);
    if punct_ratio < FINEWEB_MIN_PUNCT_LINES {
        return Some("fineweb_punctuation");
    }
    put(
        "fineweb_short_line_ratio",
        ratio(lines.short, lines.units.n),
    );
    if ratio(lines.short, lines.units.n) > FINEWEB_MAX_SHORT_LINES {
        return Some("fineweb_short_lines");
    }
    let dup_char_ratio = ratio(dup_line_chars, text.len());
    put("fineweb_dup_line_char_ratio", dup_char_ratio);
    if dup_char_ratio > FINEWEB_MAX_DUP_LINE_CHARS {
        return Some("fineweb_dup_lines");
    }
    let newlines = cut.line_words.len() - 1;
    put("fineweb_newline_ratio", ratio(newlines, n_words));
    if ratio(newlines, n_words) > FINEWEB_MAX_NEWLINES_PER_WORD {
        return Some("fineweb_newlines");
    }
    None
}

/// `text.to_lowercase()`, with the ASCII stretches lower-cased in bulk. std lower-cases a
/// leading ASCII prefix that way, then goes a character at a time through its tables from the
/// first other character on: on web text, mostly ASCII with the odd curly quote or accented
/// letter, that is most of the text. The same string: std maps every character by itself
/// except 'Σ' (final sigma depends on the neighbours), and a text with one goes to std whole.
pub(crate) fn lowercase(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for stretch in ascii_stretches(text) {
        match stretch {
            Stretch::Ascii(ascii) => {
                let from = out.len();
                out.push_str(ascii);
                if let Some(copy) = out.get_mut(from..) {
                    copy.make_ascii_lowercase();
                }
            }
            Stretch::Other('Σ') => return text.to_lowercase(),
            Stretch::Other(c) => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Turns `grams` from `grams_n`-gram hashes of `hashes` into `n`-gram hashes (as far as there
/// are words).
fn grow_grams(grams: &mut Vec<u64>, grams_n: &mut usize, hashes: &[u64], n: usize) {
    while *grams_n < n && *grams_n < hashes.len() {
        let tail = hashes.get(*grams_n..).unwrap_or_default();
        for (g, &h) in grams.iter_mut().zip(tail) {
            *g = ngram_step(*g, h);
        }
        *grams_n += 1;
        grams.truncate(hashes.len() + 1 - *grams_n);
    }
}

/// Turns `grams[i]` from the (n − 1)-gram hash into the `n`-gram hash at each position `i` of
/// `at`: for the top passes after the first, [`repeated_pairs`] of the size before; for the
/// duplicate passes, [`may_repeat`]'s positions. Each set lies within the one before it (a
/// position whose n-gram repeats was counted, so grown, at size n), so each of its positions
/// went through every step; the others' hashes are stale and never read.
fn grow_grams_at(grams: &mut [u64], hashes: &[u64], n: usize, at: &[usize]) {
    for &i in at {
        if let (Some(g), Some(&h)) = (grams.get_mut(i), hashes.get(i + n - 1)) {
            *g = ngram_step(*g, h);
        }
    }
}

/// The text cut into words once for every rule: `str::split_whitespace`'s words as their
/// hashes and lengths, the Gopher per-word counts, and per line (`text.split('\n')`, empty lines
/// included) the number of words and of sentence-ending words (C4). A word never spans lines:
/// `\n` is whitespace.
struct Cut {
    /// [`word_key`] of each word.
    hashes: Vec<u64>,
    /// Bytes in the words before each word, then in all of them (one more entry than words): the
    /// words `i..i + n` have `ends[i + n] - ends[i]` bytes.
    ends: Vec<usize>,
    stats: WordStats,
    /// Per line: (words, words ending with `.`, `!`, `?`, `."` or `?"`).
    line_words: Vec<(u32, u32)>,
    /// Byte offsets of the line breaks.
    newlines: Vec<usize>,
}

/// `text.split("\n\n")` from the offsets of its line breaks: the same pieces (leftmost
/// non-overlapping separators).
fn paragraphs<'a>(text: &'a str, newlines: &[usize]) -> impl Iterator<Item = &'a str> {
    let mut k = 0;
    let mut from = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        while let Some(&at) = newlines.get(k) {
            if newlines.get(k + 1) == Some(&(at + 1)) {
                k += 2;
                let piece = text.get(from..at).unwrap_or_default();
                from = at + 2;
                return Some(piece);
            }
            k += 1;
        }
        if done {
            return None;
        }
        done = true;
        Some(text.get(from..).unwrap_or_default())
    })
}

/// Byte classes for the ASCII cut: alphanumeric, alphabetic.
const ALNUM: u8 = 2;
const ALPHA: u8 = 4;
const ASCII_CLASS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphabetic() {
            ALNUM | ALPHA
        } else if c.is_ascii_digit() {
            ALNUM
        } else {
            0
        };
        b += 1;
    }
    t
};

/// C4's sentence end: the word ends with `.`, `!`, `?`, `."` or `?"` (ASCII, so the bytes
/// decide whatever the word's encoding). The definition [`sentence_end`] is tested against.
#[cfg(test)]
fn ends_sentence(w: &[u8]) -> bool {
    matches!(w, [.., b'.' | b'!' | b'?'] | [.., b'.' | b'?', b'"'])
}

/// 1 if `w` ends a sentence as C4 counts them (it ends with `.`, `!`, `?`, `."` or `?"`; ASCII,
/// so the bytes decide whatever the word's encoding), else 0, without branches (which word ends
/// a sentence is what a branch predictor cannot guess).
#[inline]
fn sentence_end(w: &[u8]) -> u32 {
    let last = w.last().copied().unwrap_or(0);
    let prev = match w {
        [.., p, _] => *p,
        _ => 0,
    };
    let terminal = (last == b'.') | (last == b'!') | (last == b'?');
    let quoted = (last == b'"') & ((prev == b'.') | (prev == b'?'));
    u32::from(terminal | quoted)
}

/// Whether the ASCII word `bytes[start..start + len]` (alphanumeric at both ends, so its own
/// trimmed form) is a Gopher stop word: [`stop_key`] of its 2 to 4 bytes is one of
/// [`ASCII_STOP_KEYS`]. The key comes from one 4-byte load and a shift, and is compared with all
/// eight keys at once, without branches on the word's length or letters.
#[inline]
fn is_short_stop_key(bytes: &[u8], start: usize, len: usize) -> bool {
    let Some(four) = bytes.get(start..).and_then(|rest| rest.first_chunk::<4>()) else {
        // The text's last bytes: the general test.
        return bytes
            .get(start..start + len)
            .is_some_and(is_ascii_stop_word);
    };
    let key = if (2..=4).contains(&len) {
        (u32::from_be_bytes(*four) | 0x2020_2020) >> (8 * (4 - len))
    } else {
        0
    };
    ASCII_STOP_KEYS
        .iter()
        .fold(false, |hit, &k| hit | (k == key))
}

impl Cut {
    /// Cuts `text` at whitespace as `split_whitespace` does. ASCII whitespace (all the
    /// whitespace of most web text) is found byte by byte and the words between are hashed and
    /// counted from 8-byte loads; a stretch between two ASCII whitespace bytes that holds a
    /// byte outside ASCII is cut again by `split_whitespace` (it may hold Unicode whitespace)
    /// and its words counted through `char`'s tables ([`WordStats::add`]).
    fn new(text: &str, count_stop_words: bool) -> Self {
        let mut hashes: Vec<u64> = Vec::with_capacity(text.len() / 5 + 1);
        let mut ends: Vec<usize> = Vec::with_capacity(text.len() / 5 + 2);
        ends.push(0);
        let mut word_bytes = 0usize;
        let mut stats = WordStats {
            non_symbol: 0,
            non_symbol_chars: 0,
            alpha: 0,
            stop: 0,
        };
        let mut line_words: Vec<(u32, u32)> = Vec::with_capacity(64);
        let mut newlines: Vec<usize> = Vec::with_capacity(64);
        let mut line = (0u32, 0u32);
        let bytes = text.as_bytes();
        let class = |b: u8| ASCII_CLASS[usize::from(b & 0x7f)];
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if is_ascii_space(b) {
                if b == b'\n' {
                    newlines.push(i);
                    line_words.push(std::mem::take(&mut line));
                }
                i += 1;
                continue;
            }
            let start = i;
            let (end, hash, ascii) = ascii_word(bytes, start);
            i = end;
            if !ascii {
                // Both ends are ASCII whitespace or the text's ends: character boundaries.
                for w in text.get(start..end).unwrap_or_default().split_whitespace() {
                    line.0 += 1;
                    line.1 += sentence_end(w.as_bytes());
                    stats.add(w, count_stop_words);
                    hashes.push(word_key(w.as_bytes()));
                    word_bytes += w.len();
                    ends.push(word_bytes);
                }
                continue;
            }
            let w = bytes.get(start..end).unwrap_or_default();
            let len = end - start;
            line.0 += 1;
            line.1 += sentence_end(w);
            // A word starting with a letter has both classes (most words).
            let seen = if class(b) & ALPHA != 0 {
                ALNUM | ALPHA
            } else {
                w.iter().fold(0, |seen, &b| seen | class(b))
            };
            if seen & ALNUM != 0 {
                stats.non_symbol += 1;
                stats.non_symbol_chars += len;
                if count_stop_words {
                    // A word with an alphanumeric byte at both ends (most words) is its own
                    // trimmed form.
                    let last = w.last().copied().unwrap_or(b);
                    let stop = if class(b) & class(last) & ALNUM != 0 {
                        is_short_stop_key(bytes, start, len)
                    } else {
                        is_ascii_stop_word(w)
                    };
                    stats.stop += usize::from(stop);
                }
            }
            stats.alpha += usize::from(seen & ALPHA != 0);
            hashes.push(hash);
            word_bytes += len;
            ends.push(word_bytes);
        }
        line_words.push(line);
        Cut {
            hashes,
            ends,
            stats,
            line_words,
            newlines,
        }
    }
}

/// The end of the word of `bytes` starting at `start` (not whitespace) as far as ASCII
/// whitespace goes, its [`word_key`], and whether it is all ASCII (if not, the hash is of no
/// use: the caller cuts it again). A word of at most 7 bytes followed by whitespace (most words)
/// is found and hashed from one 8-byte load, its whitespace candidates tested one by one.
#[inline]
fn ascii_word(bytes: &[u8], start: usize) -> (usize, u64, bool) {
    let mut end = start + 1;
    // The word's bytes OR-ed together, for their high bits.
    let mut high = bytes.get(start).copied().map_or(0, u64::from);
    if let Some(chunk) = bytes.get(start..).and_then(|rest| rest.first_chunk::<8>()) {
        let x = u64::from_le_bytes(*chunk);
        let mut candidates = ascii_space_candidates(x);
        while candidates != 0 {
            let k = (candidates.trailing_zeros() / 8) as usize;
            // k ≥ 1: byte 0 is not whitespace.
            if chunk.get(k).is_some_and(|&b| is_ascii_space(b)) {
                let word = x & ((1u64 << (8 * k)) - 1);
                return (
                    start + k,
                    short_word_key(k, word),
                    word & 0x8080_8080_8080_8080 == 0,
                );
            }
            candidates &= candidates - 1;
        }
        // The 8 bytes are all in the word.
        end = start + 8;
        high = x;
    }
    while let Some(&b) = bytes.get(end).filter(|&&b| !is_ascii_space(b)) {
        high |= u64::from(b);
        end += 1;
    }
    let word = bytes.get(start..end).unwrap_or_default();
    (end, word_key(word), high & 0x8080_8080_8080_8080 == 0)
}

/// Per-line counts for the Gopher, C4 and FineWeb line rules, from one pass over the lines.
/// `n` and the counts after it are over trimmed non-empty lines (`str::trim`), as the rules
/// define them.
struct LineStats {
    /// Trimmed non-empty lines (`units.n`), and those equal to an earlier line with their bytes
    /// (Gopher repetition).
    units: DupUnits,
    /// Lines starting with a bullet (Gopher).
    bullets: usize,
    /// Lines ending with an ellipsis (Gopher).
    ellipsis: usize,
    /// Lines ending with terminal punctuation (FineWeb).
    punct: usize,
    /// Lines of at most `FINEWEB_SHORT_LINE_BYTES` bytes (FineWeb).
    short: usize,
    /// Per line of `text.split('\n')`: the sentences C4 counts on it (its sentence-ending words
    /// when it has `C4_MIN_LINE_WORDS` words and ends with terminal punctuation, else 0), before
    /// the phrase filter.
    c4_sentences: Vec<u32>,
}

impl LineStats {
    fn new(text: &str, cut: &Cut) -> Self {
        let mut stats = LineStats {
            units: DupUnits::with_capacity(cut.line_words.len()),
            bullets: 0,
            ellipsis: 0,
            punct: 0,
            short: 0,
            c4_sentences: Vec::with_capacity(cut.line_words.len()),
        };
        let mut from = 0;
        let breaks = cut.newlines.iter().copied().chain(Some(text.len()));
        for (at, &(n_words, ends)) in breaks.zip(&cut.line_words) {
            let raw = text.get(from..at).unwrap_or_default();
            from = at + 1;
            // The last character after `trim_end` is the same for the line and its trimmed
            // copy, so one test serves C4 (on the line) and FineWeb (on the trimmed line).
            let terminal = ends_terminal(raw);
            let c4 = (n_words as usize >= C4_MIN_LINE_WORDS && terminal).then_some(ends);
            stats.c4_sentences.push(c4.unwrap_or(0));
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            stats.units.add(line);
            stats.bullets += usize::from(line.starts_with(['•', '●', '○', '▪', '-', '*', '·']));
            stats.ellipsis += usize::from(line.ends_with("...") || line.ends_with('…'));
            stats.punct += usize::from(terminal);
            stats.short += usize::from(line.len() <= FINEWEB_SHORT_LINE_BYTES);
        }
        stats
    }
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

impl WordStats {
    /// Counts one word (any text; `Cut::new` counts ASCII text's words itself).
    fn add(&mut self, w: &str, count_stop_words: bool) {
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
            self.non_symbol += 1;
            self.non_symbol_chars += chars;
        }
        self.alpha += usize::from(alpha);
        self.stop += usize::from(stop);
    }
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
    let t = w.get(start..end).unwrap_or_default();
    (2..=4).contains(&t.len()) && ASCII_STOP_KEYS.contains(&stop_key(t))
}

/// A trimmed word of 2 to 4 bytes packed as [`ASCII_STOP_KEYS`] holds the stop words: the bytes
/// big-endian in a u32, letters lower-cased by setting bit 5 (which changes no other byte into a
/// lower-case letter).
fn stop_key(t: &[u8]) -> u32 {
    t.iter().fold(0u32, |k, &b| (k << 8) | u32::from(b | 0x20))
}

/// `GOPHER_STOP_WORDS` packed as by [`stop_key`] (all are 2 to 4 lower-case letters).
const ASCII_STOP_KEYS: [u32; 8] = {
    let mut keys = [0u32; 8];
    let mut i = 0;
    while i < 8 {
        let w = GOPHER_STOP_WORDS[i].as_bytes();
        let mut k = 0u32;
        let mut j = 0;
        while j < w.len() {
            k = (k << 8) | w[j] as u32;
            j += 1;
        }
        keys[i] = k;
        i += 1;
    }
    keys
};

/// (duplicate units, bytes in duplicate units, units) over trimmed non-empty units.
fn dup_units<'a>(units: impl Iterator<Item = &'a str>) -> (usize, usize, usize) {
    let mut dups = DupUnits::default();
    for u in units {
        dups.add(u.trim());
    }
    (dups.dups, dups.dup_bytes, dups.n)
}

/// Gopher's repetition count over units (paragraphs or lines), each trimmed by the caller:
/// non-empty units, those equal to an earlier one, and their bytes.
#[derive(Default)]
struct DupUnits {
    seen: FastSet,
    n: usize,
    dups: usize,
    dup_bytes: usize,
}

impl DupUnits {
    fn with_capacity(units: usize) -> Self {
        DupUnits {
            seen: FastSet::with_capacity_and_hasher(units, Default::default()),
            ..DupUnits::default()
        }
    }

    /// Counts `unit` (already trimmed); empty units do not count.
    fn add(&mut self, unit: &str) {
        if unit.is_empty() {
            return;
        }
        self.n += 1;
        if !self.seen.insert(unit_hash(unit)) {
            self.dups += 1;
            self.dup_bytes += unit.len();
        }
    }
}

/// A line's or paragraph's identity within one text, for [`DupUnits`]: foldhash with a fixed
/// seed, which takes a long string in up to six independent lanes where
/// [`word_hash`](crate::dedup::word_hash) chains one multiply per 8 bytes (every byte of a text
/// is hashed twice, in its line and in its paragraph). Never stored; two different units would
/// count as one only on a 64-bit collision.
fn unit_hash(unit: &str) -> u64 {
    use std::hash::BuildHasher;
    static UNITS: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x756e_6974);
    UNITS.hash_one(unit.as_bytes())
}

const NGRAM_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// One word more in an n-gram hash.
#[inline]
fn ngram_step(acc: u64, h: u64) -> u64 {
    (acc.rotate_left(23) ^ h).wrapping_mul(0x5851_f42d_4c95_7f2d)
}

/// The hash of the n-gram of these word hashes: `ngram_step` from `NGRAM_SEED` over them, so the
/// hash of an (n+1)-gram is one step from its first n words' hash.
#[cfg(test)]
fn ngram_hash(hashes: &[u64]) -> u64 {
    hashes.iter().fold(NGRAM_SEED, |acc, &h| ngram_step(acc, h))
}

/// Occurrence counts of `u64` keys (n-gram hashes) in an open-addressing table with linear
/// probing, at most half full: the same counts as a `HashMap<u64, u32>` (keys compared exactly),
/// several times cheaper per key, and reused from one n-gram size to the next and (per thread)
/// from one text to the next. A slot holds a key only while its stamp is the current one, so
/// clearing is one increment. Each slot holds everything a probe reads (key, count, stamp, first
/// position).
///
/// A reused table keeps the size of the largest text it served (up to [`MAX_SPARE_SLOTS`]), but
/// probes only the first [`table_slots`] of its slots for the text at hand: a text of ~8,600
/// words left a 768 KiB table (32,768 slots) behind, and every later text's keys spread over all
/// of it, where ~800 words need 48 KiB; one text of a million short words would have left 96 MiB
/// to every later text on its thread.
struct Counter {
    slots: Vec<Slot>,
    stamp: u32,
    /// The slots probed: the first `mask + 1`, a power of two.
    mask: usize,
    shift: u32,
}

/// Slots for up to `n` distinct keys, at most half full: a power of two, at least 16.
fn table_slots(n: usize) -> usize {
    n.saturating_mul(2).next_power_of_two().max(16)
}

#[derive(Clone, Copy, Default)]
struct Slot {
    key: u64,
    count: u32,
    stamp: u32,
    /// The position given when the key was first added ([`Counter::add_from`]).
    first: u32,
}

thread_local! {
    static SPARE_COUNTER: std::cell::Cell<Option<Counter>> = const { std::cell::Cell::new(None) };
}

/// A [`Counter`] borrowed from this thread's spare (see [`Counter::reused`]).
struct Reused(Option<Counter>);

impl std::ops::Deref for Reused {
    type Target = Counter;
    fn deref(&self) -> &Counter {
        // Some from construction until drop.
        self.0.as_ref().unwrap_or(&EMPTY_COUNTER)
    }
}

/// Never used for counting: what a `Reused` would show if it were empty (it never is).
static EMPTY_COUNTER: Counter = Counter {
    slots: Vec::new(),
    stamp: 1,
    mask: 0,
    shift: 0,
};

impl std::ops::DerefMut for Reused {
    fn deref_mut(&mut self) -> &mut Counter {
        self.0.get_or_insert_with(|| Counter::with_capacity(0))
    }
}

impl Drop for Reused {
    fn drop(&mut self) {
        if let Some(c) = self.0.take().filter(|c| c.slots.len() <= MAX_SPARE_SLOTS) {
            SPARE_COUNTER.with(|s| s.set(Some(c)));
        }
    }
}

/// The largest table a thread keeps for the next text (1.5 MiB, texts of up to ~32,000 words);
/// a larger one, for a text near the 4 MiB limit, is freed after its text.
const MAX_SPARE_SLOTS: usize = 1 << 16;

impl Counter {
    /// A table for up to `n` distinct keys.
    fn with_capacity(n: usize) -> Self {
        let slots = table_slots(n);
        let mut c = Counter {
            slots: vec![Slot::default(); slots],
            stamp: 1,
            mask: 0,
            shift: 0,
        };
        c.probe_first(slots);
        c
    }

    /// Probes only the first `slots` slots (a power of two, at most `self.slots.len()`).
    fn probe_first(&mut self, slots: usize) {
        self.mask = slots - 1;
        self.shift = 64 - slots.trailing_zeros();
    }

    /// This thread's spare counter (or a new one), emptied and probing [`table_slots`]`(n)` of
    /// its slots, enough for `n` distinct keys; it goes back when the guard is dropped.
    fn reused(n: usize) -> Reused {
        let mut c = SPARE_COUNTER.with(|s| s.take());
        let slots = table_slots(n);
        match &mut c {
            Some(c) if c.slots.len() >= slots => {
                c.clear();
                c.probe_first(slots);
            }
            _ => c = Some(Counter::with_capacity(n)),
        }
        Reused(c)
    }

    /// Forgets every key.
    fn clear(&mut self) {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.slots.fill(Slot::default());
            self.stamp = 1;
        }
    }

    /// Counts one more occurrence of `key` and returns its count so far. At most
    /// [`Counter::with_capacity`]'s `n` distinct keys may be added between clears.
    #[inline]
    fn add(&mut self, key: u64) -> u32 {
        self.add_from(key, 0).0
    }

    /// [`Counter::add`] of `key` found at position `at` (below 2³², as word positions are): its
    /// count so far and the position it was first added from (`at` itself on its first
    /// occurrence).
    #[inline]
    fn add_from(&mut self, key: u64, at: usize) -> (u32, usize) {
        let mask = self.mask;
        let mut i = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize & mask;
        loop {
            let slot = &mut self.slots[i];
            if slot.stamp != self.stamp {
                *slot = Slot {
                    key,
                    count: 1,
                    stamp: self.stamp,
                    first: at as u32,
                };
                return (1, at);
            }
            if slot.key == key {
                slot.count += 1;
                return (slot.count, slot.first as usize);
            }
            i = (i + 1) & mask;
        }
    }
}

/// The number of words and their bytes, from [`Cut::ends`].
fn words_and_bytes(ends: &[usize]) -> (usize, usize) {
    (
        ends.len().saturating_sub(1),
        ends.last().copied().unwrap_or(0),
    )
}

/// Share of word bytes covered by the most frequent `n`-gram (when it occurs more than once).
/// `ends` as [`Cut::ends`]; `grams[i]` is the hash of the `n` words from `i`, for every
/// `i + n <= words`.
///
/// Also returns, per position `i`, whether the `n`-gram at `i` occurs more than once.
///
/// Only the n-grams at positions `at` (ascending) are counted: every position, or those whose
/// two `(n - 1)`-grams both repeat ([`repeated_pairs`]); an `n`-gram at any other position occurs
/// once, and leaving it out changes no other count nor the order in which counts grow, so the
/// result is the same.
fn top_ngram_frac(
    ends: &[usize],
    grams: &[u64],
    n: usize,
    counts: &mut Counter,
    at: impl IntoIterator<Item = usize>,
) -> (f64, Vec<bool>) {
    let (words, word_bytes) = words_and_bytes(ends);
    if words < n || word_bytes == 0 {
        return (0.0, Vec::new());
    }
    counts.clear();
    let positions = words + 1 - n;
    let mut repeated = vec![false; positions];
    let mut best = (0u32, 0usize);
    for i in at {
        let Some(&g) = grams.get(i).filter(|_| i < positions) else {
            continue;
        };
        // An n-gram repeats from its second occurrence on, which marks its first one too.
        let (c, first) = counts.add_from(g, i);
        if c >= 2 {
            if c == 2
                && let Some(r) = repeated.get_mut(first)
            {
                *r = true;
            }
            if let Some(r) = repeated.get_mut(i) {
                *r = true;
            }
        }
        if c > best.0 {
            best = (c, i);
        }
    }
    if best.0 < 2 {
        return (0.0, repeated);
    }
    let len = ends[best.1 + n] - ends[best.1];
    (ratio(len * best.0 as usize, word_bytes), repeated)
}

/// Share of word bytes inside `n`-grams that already occurred earlier (non-overlapping count).
/// `ends` and `grams` as for [`top_ngram_frac`].
///
/// Only the n-grams at `positions` (ascending) are counted: every position, or those that
/// [`may_repeat`]; an n-gram anywhere else occurs once, and leaving it out changes no other
/// count (the same result, as for [`top_ngram_frac`]).
fn dup_ngram_frac(
    ends: &[usize],
    grams: &[u64],
    n: usize,
    seen: &mut Counter,
    positions: impl IntoIterator<Item = usize>,
) -> f64 {
    let (words, word_bytes) = words_and_bytes(ends);
    if words < n || word_bytes == 0 {
        return 0.0;
    }
    seen.clear();
    let mut dup = 0usize;
    // The first position not inside an n-gram already counted as a duplicate.
    let mut next = 0;
    for i in positions {
        if i < next || i + n > words {
            continue;
        }
        if let Some(&g) = grams.get(i)
            && seen.add(g) > 1
        {
            dup += ends[i + n] - ends[i];
            next = i + n;
        }
    }
    ratio(dup, word_bytes)
}

/// Whether the `n`-gram at `i` (of `words`) may occur more than once, given `runs`
/// ([`repeated_runs`] of the `m`-grams, `m` < `n`): it does only if every `m`-gram in it does.
fn may_repeat(runs: &[u32], m: usize, n: usize, words: usize, i: usize) -> bool {
    i + n <= words && runs.get(i).is_some_and(|&r| r as usize > n - m)
}

/// The positions whose two `(n - 1)`-grams both repeat, given `repeated` (as [`top_ngram_frac`]
/// leaves it for the `(n - 1)`-grams): where an `n`-gram may occur more than once.
fn repeated_pairs(repeated: &[bool]) -> Vec<usize> {
    repeated
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] & w[1])
        .map(|(i, _)| i)
        .collect()
}

/// For each position, how many `m`-grams in a row from it occur more than once (`repeated` as
/// [`top_ngram_frac`] leaves it): an `n`-gram at `i` contains the `m`-grams `i..=i + n - m`.
fn repeated_runs(repeated: &[bool]) -> Vec<u32> {
    let mut runs = vec![0u32; repeated.len()];
    let mut run = 0u32;
    for (r, &rep) in runs.iter_mut().zip(repeated).rev() {
        run = if rep { run + 1 } else { 0 };
        *r = run;
    }
    runs
}

/// whatlang's language as ISO 639-1, for the common languages; `None` skips the mismatch check.
/// A match on the enum, not on its ISO 639-3 code: no string compares per text.
fn iso639_1(lang: whatlang::Lang) -> Option<&'static str> {
    use whatlang::Lang;
    Some(match lang {
        Lang::Eng => "en",
        Lang::Rus => "ru",
        Lang::Cmn => "zh",
        Lang::Spa => "es",
        Lang::Por => "pt",
        Lang::Ita => "it",
        Lang::Fra => "fr",
        Lang::Deu => "de",
        Lang::Ukr => "uk",
        Lang::Ara => "ar",
        Lang::Hin => "hi",
        Lang::Jpn => "ja",
        Lang::Pol => "pl",
        Lang::Kor => "ko",
        Lang::Nld => "nl",
        Lang::Tur => "tr",
        Lang::Swe => "sv",
        Lang::Dan => "da",
        Lang::Fin => "fi",
        Lang::Ces => "cs",
        Lang::Ell => "el",
        Lang::Hun => "hu",
        Lang::Ron => "ro",
        Lang::Vie => "vi",
        Lang::Ind => "id",
        _ => return None,
    })
}

#[cfg(test)]
mod v1;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::word_hash;

    /// Texts for the equivalence tests against `v1`: every rule reached and failed, ASCII and
    /// not, CJK, long lines, no spaces, repeated lines, case-changing characters next to the
    /// C4 phrases (`K` is the Kelvin sign, which lower-cases to ASCII `k`).
    fn many_texts() -> Vec<String> {
        let mut texts = varied_texts();
        let lines = [
            "This site uses cookies. We use cookies to improve it, as you know.",
            "Read our Privacy Policy and Terms of Use before you go on, please.",
            "Enable JavaScript to see the comments below this article, thanks.",
            "We use of cookies here and there, see our cookie policy for this.",
            "Our COOKIE POLICY is short, and it says what it says, no more.",
            "This site uses coo\u{212a}ies to remember you, and you know it.",
            "İstanbul is a city. İt is large and old, with many people in it.",
            "Lorem Ipsum dolor sit amet, consectetur adipiscing elit, sed do.",
            "var x = 1; function f() { return x; }",
            "- a bullet line with words in it",
            "* another bullet line that goes on...",
            "• unicode bullet with an ellipsis…",
            "# heading ## with ### hashes ####",
            "Short line.",
            "\"Quoted sentence ends here.\" And another one?\" Yes!",
            "Is this a question? It is one? Yes, it is a real question here?",
            "Quotes \"end here!\" and \"there.\" or \"x?\" \" \". ?\" !\"",
            "日本語の文章です。これは二つ目の文です。三つ目！",
            "中文文本没有空格但是有标点符号。这是第二句话？",
            "Ünïcödé wörds ärë hërë, ănd thëy ëñd wïth pünctüätïön.",
            "nospacesatallinthislinejustonelongwordthatgoesonandonandon.",
            "tabs\there\tand\u{a0}nbsp\u{2003}em spaces\u{3000}ideographic.",
            "trailing spaces and CR   \r",
        ];
        let mut s = 0x5eed_u64;
        let mut next = || {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 33) as usize
        };
        for seed in 0..300u64 {
            let base = crate::testkit::sample_text(1_000 + seed, 300 + next() % 4_000);
            let mut parts: Vec<String> = base.split("\n\n").map(str::to_string).collect();
            for _ in 0..next() % 8 {
                let at = next() % (parts.len() + 1);
                let line = lines[next() % lines.len()];
                let sep = ["\n", "\n\n", " ", "\n\n\n"][next() % 4];
                parts.insert(at, format!("{sep}{line}"));
            }
            if seed % 11 == 0 {
                // A repeated line, a repeated paragraph.
                let p = parts[0].clone();
                parts.push(p);
            }
            if seed % 13 == 0 {
                parts.push("word ".repeat(next() % 200));
            }
            if seed % 17 == 0 {
                parts.push("x".repeat(5_000 + next() % 10_000));
            }
            let joiner = ["\n\n", "\n", "\r\n\r\n", " \n \n"][next() % 4];
            let mut t = parts.join(joiner);
            if seed % 9 == 4 {
                t = t.to_uppercase();
            }
            if seed % 19 == 5 {
                t = t.replace(' ', "");
            }
            texts.push(t);
        }
        // Near-repeats: runs of 5 to 10 words copied from elsewhere in the text with one word
        // changed (often the last), so that n-grams equal but for one word must count apart.
        for seed in 0..120u64 {
            let base = crate::testkit::sample_text(5_000 + seed, 1_500 + next() % 3_000);
            let mut words: Vec<String> = base.split(' ').map(str::to_string).collect();
            for _ in 0..3 + next() % 12 {
                let n = 5 + next() % 6;
                if words.len() <= n {
                    break;
                }
                let from = next() % (words.len() - n);
                let mut copy: Vec<String> = words[from..from + n].to_vec();
                let changed = if next() % 2 == 0 { n - 1 } else { next() % n };
                copy[changed] = format!("w{}", next() % 7);
                let at = next() % words.len();
                words.splice(at..at, copy);
            }
            texts.push(words.join(" "));
        }
        // Whole non-Latin and mixed texts.
        for (i, line) in lines.iter().enumerate() {
            texts.push(format!("{line}\n").repeat(3 + i * 7));
        }
        texts.push("日本語の文章です。".repeat(200));
        texts.push("Это русский текст, и он довольно длинный. ".repeat(80));
        texts
    }

    #[test]
    fn same_verdicts_and_scores_as_v1() {
        let mut reasons = BTreeMap::new();
        for text in many_texts() {
            for lang in ["en", "de", "ja"] {
                let new = assess(&text, lang, &[]);
                let old = v1::assess(&text, lang, &[]);
                assert_eq!(
                    new,
                    old,
                    "{lang} {:?}",
                    &text[..text.floor_char_boundary(80)]
                );
                *reasons
                    .entry(new.rejection.unwrap_or("passed"))
                    .or_insert(0) += 1;
            }
        }
        // The texts reach every stage.
        for r in [
            "passed",
            "c4_too_few_sentences",
            "c4_lorem_ipsum",
            "c4_curly_bracket",
            "gopher_top_ngram",
            "gopher_dup_paragraphs",
        ] {
            assert!(reasons.contains_key(r), "{r} not reached: {reasons:?}");
        }
    }

    #[test]
    fn every_score_has_a_code_and_comes_back_bit_for_bit() {
        let mut named = std::collections::BTreeSet::new();
        for text in many_texts() {
            for lang in ["en", "de", "ja", ""] {
                let report = assess(&text, lang, &[]);
                let bytes = encode_scores(&report.scores)
                    .unwrap_or_else(|| panic!("a score without a code: {:?}", report.scores));
                let back = decode_scores(&bytes).unwrap();
                assert_eq!(back.len(), report.scores.len());
                for (name, value) in &report.scores {
                    assert_eq!(back[*name].to_bits(), value.to_bits(), "{name}");
                    named.insert(*name);
                }
            }
        }
        // The texts report every score there is a code for.
        assert_eq!(named.into_iter().collect::<Vec<_>>(), {
            let mut all = SCORE_NAMES.to_vec();
            all.sort_unstable();
            all
        });
    }

    #[test]
    fn scores_without_a_code_are_not_encoded() {
        let scores = BTreeMap::from([("text_bytes", 1.0), ("a_new_score", 2.0)]);
        assert_eq!(encode_scores(&scores), None);
        assert_eq!(encode_scores(&BTreeMap::new()), Some(vec![SCORES_FORMAT]));
        // They are stored as JSON instead, and come back all the same.
        let stored = StoredScores::of(&scores);
        assert!(matches!(stored, StoredScores::Json(_)), "{stored:?}");
        assert_eq!(
            stored.decode().unwrap(),
            BTreeMap::from([("text_bytes".into(), 1.0), ("a_new_score".into(), 2.0)])
        );
    }

    #[test]
    fn malformed_stored_scores_are_refused_with_a_reason() {
        let good = encode_scores(&BTreeMap::from([("text_bytes", 812.0)])).unwrap();
        let mut twice = good.clone();
        twice.extend_from_slice(&good[1..]);
        let mut unknown = good.clone();
        unknown[1] = SCORE_NAMES.len() as u8;
        let mut format = good.clone();
        format[0] = 9;
        for (bytes, why) in [
            (&[][..], "empty"),
            (&format[..], "format 9"),
            (&good[..good.len() - 1], "not a whole number"),
            (&unknown[..], "unknown score code 17"),
            (&twice[..], "text_bytes twice"),
        ] {
            let err = decode_scores(bytes).unwrap_err();
            assert!(err.contains(why), "{err} for {bytes:?}");
        }
        assert_eq!(
            decode_scores(&good).unwrap(),
            BTreeMap::from([("text_bytes".to_string(), 812.0)])
        );
    }

    /// The ingest bench's records (`sample_text(seed, 5_000)`, the texts the instruction counts
    /// in the README are measured on) get the same report as from `v1`.
    #[test]
    fn bench_texts_same_as_v1() {
        for seed in 0..300 {
            let text = crate::testkit::sample_text(seed, 5_000);
            assert_eq!(
                assess(&text, "en", &[]),
                v1::assess(&text, "en", &[]),
                "{seed}"
            );
        }
    }

    /// What C4's per-line counts rely on when they come from the original text's words instead
    /// of the lower-cased text's: lower-casing maps whitespace to itself and nothing else to
    /// whitespace or to a line break, and a character ends with one of the sentence or line
    /// ends (`.`, `!`, `?`, `"`, and `ends_terminal`'s) after lower-casing only if it is that
    /// character.
    #[test]
    fn paragraphs_split_like_str_split() {
        let mut texts: Vec<String> = [
            "",
            "\n",
            "\n\n",
            "\n\n\n",
            "a\n\n\nb",
            "a\n\n\n\nb\n",
            "\n\na\n\n",
            "a\nb\n\nc",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        texts.extend(many_texts());
        for t in &texts {
            let newlines: Vec<usize> = t.match_indices('\n').map(|(i, _)| i).collect();
            let ours: Vec<&str> = paragraphs(t, &newlines).collect();
            let std: Vec<&str> = t.split("\n\n").collect();
            assert_eq!(ours, std, "{t:?}");
            assert_eq!(Cut::new(t, false).newlines, newlines);
        }
    }

    #[test]
    fn lower_casing_keeps_words_lines_and_ends() {
        let ends = [
            '.', '!', '?', '"', '\'', '”', '’', '…', ')', '。', '！', '？',
        ];
        for c in (0..=0x10_ffff).filter_map(char::from_u32) {
            let lower: Vec<char> = c.to_lowercase().collect();
            if c.is_whitespace() {
                assert_eq!(lower, [c]);
            } else {
                assert!(!lower.iter().any(|l| l.is_whitespace()), "{c:?}");
            }
            if let Some(last) = lower.last() {
                assert!(!ends.contains(last) || *last == c, "{c:?}");
            }
        }
    }

    pub(crate) fn good_text() -> String {
        let para = "The history of the river valley is long and varied, and the people who \
                    settled there had to adapt to floods with patience. Farmers learned to read \
                    the seasons and to build their houses on higher ground.";
        let para2 = "Later, merchants arrived with new tools and ideas that changed the local \
                     economy. Markets grew along the banks, and bridges connected villages that \
                     had been separated for generations.";
        let para3 = "Today the valley is known for its orchards and quiet roads. Visitors come to \
                     walk the old paths and to learn about the traditions that shaped the region.";
        format!("{para}\n\n{para2}\n\n{para3}")
    }

    #[test]
    fn natural_text_passes_and_has_scores() {
        let r = assess(&good_text(), "en", &[]);
        assert_eq!(r.rejection, None, "{:?}", r.scores);
        assert!(r.scores["gopher_words"] > 50.0);
        assert!(r.scores["fineweb_line_punct_ratio"] > 0.9);
    }

    #[test]
    fn each_rule_has_its_reason_code() {
        let cases: Vec<(String, &str, &str)> = vec![
            ("short".into(), "en", "text_too_short"),
            (good_text(), "und", "lang_unknown"),
            (good_text(), "de", "lang_mismatch"),
            (
                format!("{}\n\nLorem ipsum dolor sit amet.", good_text()),
                "en",
                "c4_lorem_ipsum",
            ),
            (
                format!("{}\n\nvar x = {{ a: 1 }};", good_text()),
                "en",
                "c4_curly_bracket",
            ),
            ("word ".repeat(300), "en", "gopher_top_ngram"),
            (
                (0..40)
                    .map(|i| format!("wordnumber{i}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                "en",
                "gopher_word_count",
            ),
        ];
        for (text, lang, code) in cases {
            let r = assess(&text, lang, &[]);
            assert_eq!(
                r.rejection,
                Some(code),
                "text {:?}",
                &text[..text.len().min(60)]
            );
        }
        let r = assess(&good_text(), "en", &["fr".to_string()]);
        assert_eq!(r.rejection, Some("lang_not_accepted"));
    }

    #[test]
    fn duplicate_paragraphs_are_rejected() {
        let p = good_text();
        let text = format!("{p}\n\n{p}\n\n{p}");
        assert_eq!(
            assess(&text, "en", &[]).rejection,
            Some("gopher_dup_paragraphs")
        );
    }

    /// Texts with repeats of every kind (words, n-grams, lines, paragraphs), punctuation around
    /// words, and non-ASCII words, for the fast paths' equivalence tests.
    fn varied_texts() -> Vec<String> {
        let mut texts = vec![good_text(), "word ".repeat(300), String::new()];
        for seed in 0..200u64 {
            let base = crate::testkit::sample_text(seed, 200 + (seed as usize * 37) % 6_000);
            let mut t = base.clone();
            if seed % 3 == 0 {
                t.push_str("\n\n");
                t.push_str(&base[..base.len() / 2]);
            }
            if seed % 4 == 1 {
                t = t.replace(" the ", " (The) ").replace(" of ", " \"of\", ");
            }
            if seed % 5 == 2 {
                t = t.replace(" and ", " ÄND and… ");
            }
            if seed % 7 == 3 {
                t = t.replace(". ", ".\n- ");
            }
            if seed % 6 == 5 {
                t = t.replace(". ", "? ").replace(", ", "! ");
            }
            texts.push(t);
        }
        texts
    }

    #[test]
    fn counter_counts_like_a_hash_map() {
        for text in varied_texts() {
            let words: Vec<&str> = v1::split_words(&text).collect();
            let hashes: Vec<u64> = words.iter().map(|w| word_hash(w.as_bytes())).collect();
            let word_bytes: usize = words.iter().map(|w| w.len()).sum();
            let ends: Vec<usize> = std::iter::once(0)
                .chain(words.iter().scan(0, |sum, w| {
                    *sum += w.len();
                    Some(*sum)
                }))
                .collect();
            let mut counter = Counter::with_capacity(hashes.len());
            let (mut grams, mut grams_n) = (
                hashes
                    .iter()
                    .map(|&h| ngram_step(NGRAM_SEED, h))
                    .collect::<Vec<u64>>(),
                1,
            );
            // Which (n-1)-grams repeat, and which 4-grams, for the filtered counts.
            let (mut prev, mut rep4): (Option<Vec<bool>>, Option<Vec<bool>>) = (None, None);
            for n in 1..=10 {
                grow_grams(&mut grams, &mut grams_n, &hashes, n);
                if n <= hashes.len() {
                    let windows: Vec<u64> = hashes.windows(n).map(ngram_hash).collect();
                    assert_eq!(grams, windows, "{n}-gram hashes");
                }
                let top = reference::top_ngram_frac(&words, &hashes, n, word_bytes);
                let dup = reference::dup_ngram_frac(&words, &hashes, n, word_bytes);
                let what = text
                    .char_indices()
                    .nth(60)
                    .map_or(text.as_str(), |(i, _)| &text[..i]);
                let (frac, repeated) =
                    top_ngram_frac(&ends, &grams, n, &mut counter, 0..words.len());
                assert_eq!(frac, top, "top {n}-gram of {what:?}");
                // Counting only where the (n-1)-grams repeat: the same fraction, and the same
                // answer to which n-grams repeat.
                let at: Vec<usize> = match prev.as_deref() {
                    Some(p) => repeated_pairs(p),
                    None => (0..words.len()).collect(),
                };
                let (frac, filtered) =
                    top_ngram_frac(&ends, &grams, n, &mut counter, at.iter().copied());
                assert_eq!(frac, top, "filtered top {n}-gram of {what:?}");
                assert_eq!(filtered, repeated, "repeated {n}-grams of {what:?}");
                let mut occurrences: std::collections::HashMap<&[u64], usize> =
                    std::collections::HashMap::new();
                for w in hashes.windows(n) {
                    *occurrences.entry(w).or_default() += 1;
                }
                let expected: Vec<bool> = hashes.windows(n).map(|w| occurrences[w] > 1).collect();
                if n <= words.len() {
                    assert_eq!(repeated, expected, "repeated {n}-grams of {what:?}");
                }
                assert_eq!(
                    dup_ngram_frac(&ends, &grams, n, &mut counter, 0..words.len()),
                    dup,
                    "dup {n}-gram of {what:?}"
                );
                for (runs_of, m) in [
                    (prev.as_deref(), n.saturating_sub(1)),
                    (rep4.as_deref(), TOP_NGRAM_MAX_N),
                ] {
                    if let Some(r) = runs_of.filter(|_| m >= 1 && m < n) {
                        let runs = repeated_runs(r);
                        let may =
                            (0..words.len()).filter(|&i| may_repeat(&runs, m, n, words.len(), i));
                        assert_eq!(
                            dup_ngram_frac(&ends, &grams, n, &mut counter, may),
                            dup,
                            "dup {n}-gram of {what:?}, filtered by the {m}-grams"
                        );
                    }
                }
                if n == TOP_NGRAM_MAX_N {
                    rep4 = Some(repeated.clone());
                }
                prev = Some(repeated);
            }
        }
        let mut c = Counter::with_capacity(3);
        assert_eq!((c.add(0), c.add(0), c.add(7), c.add(0)), (1, 2, 1, 3));
        c.clear();
        assert_eq!(c.add(0), 1);
    }

    #[test]
    fn a_reused_counter_probes_only_what_the_text_needs() {
        // A long text leaves a large table behind on this thread.
        drop(Counter::reused(20_000));
        let mut c = Counter::reused(40);
        assert_eq!(c.slots.len(), table_slots(20_000));
        assert_eq!(
            c.mask + 1,
            table_slots(40),
            "a short text probes a short table"
        );
        // Counts as a hash map does, with 40 distinct keys (some landing on one slot) in it.
        let keys: Vec<u64> = (0..200u64)
            .map(|i| (i % 40).wrapping_mul(0x1_0000_0001))
            .collect();
        let mut expected: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
        for (at, &k) in keys.iter().enumerate() {
            let n = expected.entry(k).or_default();
            *n += 1;
            let first = keys.iter().position(|&x| x == k).unwrap_or(usize::MAX);
            assert_eq!(c.add_from(k, at), (*n, first), "key {k:#x} at {at}");
        }
        drop(c);
        // A long text after it gets a table for its own size again.
        let c = Counter::reused(20_000);
        assert_eq!(c.mask + 1, table_slots(20_000));
        drop(c);
        // A table larger than a thread keeps is freed with its text.
        let c = Counter::reused(1_000_000);
        assert!(c.slots.len() > MAX_SPARE_SLOTS);
        drop(c);
        assert_eq!(Counter::reused(40).slots.len(), table_slots(40));
    }

    #[test]
    fn ascii_stop_words_match_the_unicode_test() {
        let unicode = |w: &str| {
            let w = w.trim_matches(|c: char| !c.is_alphanumeric());
            (2..=4).contains(&w.len())
                && GOPHER_STOP_WORDS.iter().any(|s| w.eq_ignore_ascii_case(s))
        };
        for w in [
            "the", "The", "(the)", "\"THE\",", "--of--", "to.", "t", "tothe", "with", "with!", "",
            "...", "a&b", "be", "bee", "and/or", "that's", "have", "1of", "of1", "the.", "and,",
            "THE!", "with?", "them.", "toe", "an.", "of.)", "haves", "be.", "(be", "x.", "have.\"",
        ] {
            let ascii =
                w.bytes().any(|b| b.is_ascii_alphanumeric()) && is_ascii_stop_word(w.as_bytes());
            assert_eq!(ascii, unicode(w), "{w:?}");
        }
        // Each word alone, first, last (its bytes the text's last: no 4-byte load there) and
        // between others, so the word cut's stop test meets it at every place.
        let placed = [
            "the", "The", "(the)", "\"THE\",", "--of--", "to.", "t", "tothe", "with", "with!",
            "...", "a&b", "be", "bee", "and/or", "that's", "have", "1of", "of1", "the.", "and,",
            "THE!", "with?", "them.", "toe", "an.", "of.)", "haves", "be.", "(be", "x.", "of",
            "TO", "Be", "wIth", "thAT", "And",
        ]
        .iter()
        .flat_map(|w| {
            [
                w.to_string(),
                format!("x {w}"),
                format!("{w} x"),
                format!("one {w} two\n{w}"),
            ]
        });
        for text in varied_texts().into_iter().chain(placed) {
            let words: Vec<&str> = v1::split_words(&text).collect();
            let fast = Cut::new(&text, true).stats;
            let reference = reference::word_stats(&words);
            assert_eq!(
                (
                    fast.non_symbol,
                    fast.non_symbol_chars,
                    fast.alpha,
                    fast.stop
                ),
                reference,
                "{:?}",
                &text[..text.len().min(60)]
            );
        }
    }

    /// The mismatch check maps exactly these 25 whatlang languages, by their ISO 639-3 codes, to
    /// ISO 639-1, and skips every other language.
    #[test]
    fn iso639_1_maps_the_common_languages_and_no_other() {
        let table = [
            ("eng", "en"),
            ("rus", "ru"),
            ("cmn", "zh"),
            ("spa", "es"),
            ("por", "pt"),
            ("ita", "it"),
            ("fra", "fr"),
            ("deu", "de"),
            ("ukr", "uk"),
            ("ara", "ar"),
            ("hin", "hi"),
            ("jpn", "ja"),
            ("pol", "pl"),
            ("kor", "ko"),
            ("nld", "nl"),
            ("tur", "tr"),
            ("swe", "sv"),
            ("dan", "da"),
            ("fin", "fi"),
            ("ces", "cs"),
            ("ell", "el"),
            ("hun", "hu"),
            ("ron", "ro"),
            ("vie", "vi"),
            ("ind", "id"),
        ];
        for &lang in whatlang::Lang::all() {
            let expected = table
                .iter()
                .find(|(code3, _)| *code3 == lang.code())
                .map(|(_, code1)| *code1);
            assert_eq!(iso639_1(lang), expected, "{lang:?}");
        }
        let mapped = whatlang::Lang::all()
            .iter()
            .filter(|&&l| iso639_1(l).is_some())
            .count();
        assert_eq!(mapped, table.len());
    }

    /// The branch-free sentence end is C4's test, on every word of up to three bytes from a set
    /// that holds each byte the test looks at.
    #[test]
    fn sentence_end_is_ends_sentence() {
        let bytes = [b'.', b'!', b'?', b'"', b'a', b',', b'\'', b')'];
        let mut words: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..3 {
            let longer: Vec<Vec<u8>> = words
                .iter()
                .flat_map(|w| {
                    bytes.iter().map(move |&b| {
                        let mut w = w.clone();
                        w.push(b);
                        w
                    })
                })
                .collect();
            words.extend(longer);
        }
        words.sort();
        words.dedup();
        for w in &words {
            assert_eq!(sentence_end(w) == 1, ends_sentence(w), "{w:?}");
        }
    }

    /// The rules' helpers as they were before the fast paths (hash maps, `char` tests).
    mod reference {
        use super::super::*;
        use std::collections::HashMap;

        type FastMap = HashMap<u64, u32, BuildHasherDefault<IdentityHasher>>;

        pub fn top_ngram_frac(words: &[&str], hashes: &[u64], n: usize, word_bytes: usize) -> f64 {
            if hashes.len() < n || word_bytes == 0 {
                return 0.0;
            }
            let mut counts = FastMap::default();
            let mut best = (0u32, 0usize);
            for (i, w) in hashes.windows(n).enumerate() {
                let c = counts.entry(ngram_hash(w)).or_insert(0);
                *c += 1;
                if *c > best.0 {
                    best = (*c, i);
                }
            }
            if best.0 < 2 {
                return 0.0;
            }
            let len: usize = words[best.1..best.1 + n].iter().map(|w| w.len()).sum();
            ratio(len * best.0 as usize, word_bytes)
        }

        pub fn dup_ngram_frac(words: &[&str], hashes: &[u64], n: usize, word_bytes: usize) -> f64 {
            if hashes.len() < n || word_bytes == 0 {
                return 0.0;
            }
            let mut seen = FastSet::default();
            let mut dup = 0usize;
            let mut i = 0;
            while i + n <= hashes.len() {
                if seen.insert(ngram_hash(&hashes[i..i + n])) {
                    i += 1;
                } else {
                    dup += words[i..i + n].iter().map(|w| w.len()).sum::<usize>();
                    i += n;
                }
            }
            ratio(dup, word_bytes)
        }

        /// (non-symbol words, their characters, alphabetic words, stop words).
        pub fn word_stats(words: &[&str]) -> (usize, usize, usize, usize) {
            let mut out = (0, 0, 0, 0);
            for w in words {
                if w.chars().any(char::is_alphanumeric) {
                    out.0 += 1;
                    out.1 += w.chars().count();
                }
                out.2 += usize::from(w.chars().any(char::is_alphabetic));
                let t = w.trim_matches(|c: char| !c.is_alphanumeric());
                if (2..=4).contains(&t.len())
                    && GOPHER_STOP_WORDS.iter().any(|s| t.eq_ignore_ascii_case(s))
                {
                    out.3 += 1;
                }
            }
            out
        }
    }

    /// The bulk lower-casing gives std's string on mostly-ASCII text with every kind of
    /// character outside ASCII: longer, shorter and ASCII lower cases ('İ', 'ẞ', 'K' the Kelvin
    /// sign), title case, final and medial sigma, and characters without case.
    #[test]
    fn lowercase_is_std_lowercase() {
        let mut texts: Vec<String> = vec![
            String::new(),
            "ASCII ONLY Text".into(),
            "’Tis İstanbul ẞtraße \u{212a}elvin ǅungla ÉCOLE".into(),
            "ΣΟΦΟΣ ΟΔΟΣ. Σ aΣ Σa".into(),
            "日本語 and ENGLISH 混合 ١٢٣ 😀 E\u{301}".into(),
        ];
        let mut s = 0x51_u64;
        for _ in 0..300 {
            let mut t = String::new();
            for _ in 0..(s % 200) {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let r = (s >> 33) as usize;
                match r % 12 {
                    0 => t.push(
                        [
                            'İ', 'ẞ', '\u{212a}', 'ǅ', 'Σ', 'É', '’', '\u{a0}', 'Ω', 'ß', '日', 'Ⅻ',
                        ][r / 12 % 12],
                    ),
                    1 => t.push(' '),
                    _ => t.push(char::from(b' ' + (r / 12 % 95) as u8)),
                }
            }
            texts.push(t);
        }
        texts.extend(many_texts());
        for t in &texts {
            assert_eq!(lowercase(t), t.to_lowercase(), "{t:?}");
        }
    }

    #[test]
    fn ascii_word_split_matches_split_whitespace() {
        let texts = [
            String::new(),
            "   ".to_string(),
            " a  b\tc\n\nd\x0be\x0cf\rg \x1fh\x1c ".to_string(),
            good_text(),
            "non-ASCII\u{a0}nbsp and\u{2003}em space".to_string(),
        ];
        for t in &texts {
            let fast: Vec<&str> = v1::split_words(t).collect();
            let std: Vec<&str> = t.split_whitespace().collect();
            assert_eq!(fast, std, "{t:?}");
        }
    }

    /// The cut's word hashes and byte counts are those of `split_whitespace`'s words, whatever
    /// the word lengths (around the 8-byte load), control characters inside or next to words,
    /// and words at the very end of the text.
    #[test]
    fn cut_words_are_split_whitespace_words() {
        let mut texts: Vec<String> = vec![
            "a".into(),
            "abcdefg".into(),
            "abcdefgh".into(),
            "abcdefghi x".into(),
            "abcdefg abcdefgh abcdefghi\x01abc \x1f\x1fab\x00 c\x7f".into(),
        ];
        let mut s = 0x77_u64;
        for len in [1, 2, 7, 8, 9, 15, 16, 17, 40, 200] {
            for _ in 0..30 {
                let t: String = (0..len)
                    .map(|_| {
                        s = s
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        let r = (s >> 33) as usize;
                        match r % 10 {
                            0 => [' ', '\n', '\t', '\r', '\x0b', '\x0c'][r / 10 % 6],
                            1 => ['\x00', '\x08', '\x0e', '\x1f', '\x7f', '!'][r / 10 % 6],
                            // Outside ASCII: Unicode whitespace, punctuation, letters.
                            2 if (r / 10).is_multiple_of(3) => [
                                '\u{a0}', '\u{2003}', '\u{3000}', '\u{85}', '’', 'é', '日', '—',
                            ][r / 30 % 8],
                            _ => char::from(b'a' + (r / 10 % 26) as u8),
                        }
                    })
                    .collect();
                texts.push(t);
            }
        }
        texts.extend(many_texts());
        for t in &texts {
            let cut = Cut::new(t, true);
            let words: Vec<&str> = t.split_whitespace().collect();
            let hashes: Vec<u64> = words.iter().map(|w| word_key(w.as_bytes())).collect();
            assert_eq!(cut.hashes, hashes, "{t:?}");
            let mut ends = vec![0];
            for w in &words {
                ends.push(ends.last().copied().unwrap_or(0) + w.len());
            }
            assert_eq!(cut.ends, ends, "{t:?}");
            let st = &cut.stats;
            assert_eq!(
                (st.non_symbol, st.non_symbol_chars, st.alpha, st.stop),
                reference::word_stats(&words),
                "{t:?}"
            );
            let newlines = t.bytes().filter(|&b| b == b'\n').count();
            assert_eq!(cut.line_words.len(), newlines + 1, "{t:?}");
            let per_line: Vec<u32> = t
                .split('\n')
                .map(|l| l.split_whitespace().count() as u32)
                .collect();
            let cut_per_line: Vec<u32> = cut.line_words.iter().map(|l| l.0).collect();
            assert_eq!(cut_per_line, per_line, "{t:?}");
        }
    }
}
