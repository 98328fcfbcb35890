//! Language identification: exactly whatlang's `detect`, computed faster for Latin-script text.
//!
//! whatlang scores a Latin text against 37 trigram profiles by looking each profile's 300
//! trigrams up in the text's trigram map: ~11,000 hash look-ups whatever the text, most of the
//! cost of the quality rules. This module inverts the profiles once (trigram → its rank in every
//! language's profile, one row) and looks up only the text's own trigrams (at most 600), adding
//! each one's row to all languages' distances at once, then combines the scores with
//! whatlang's own alphabet scores exactly as whatlang does. Same arithmetic, same sorts on the
//! same input order, so the same `Info`; `tests::matches_whatlang` checks it on many texts.
//! Other scripts go to whatlang unchanged. The profiles are copied from whatlang 0.18.0
//! (`lang/latin_trigrams.txt`); if they cannot be read, everything goes to whatlang.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use whatlang::dev::{
    FilterList, LowercaseText, alphabet_latin_calculate_scores, raw_detect_script,
};
use whatlang::{Info, Lang, Script};

use crate::dedup::{Stretch, ascii_stretches};

/// whatlang's `MAX_TRIGRAM_DISTANCE`: the penalty of a profile trigram missing from the text.
const MAX_TRIGRAM_DISTANCE: i64 = 300;
/// whatlang's `MAX_TOTAL_DISTANCE`.
const MAX_TOTAL_DISTANCE: i64 = MAX_TRIGRAM_DISTANCE * MAX_TRIGRAM_DISTANCE;
/// whatlang's `TEXT_TRIGRAMS_SIZE`: only the text's most frequent trigrams are ranked.
const TEXT_TRIGRAMS_SIZE: usize = 600;
const PROFILES: &str = include_str!("lang/latin_trigrams.txt");
/// More than whatlang's languages' discriminants (0 to 68 in 0.18): one slot each.
const LANG_SLOTS: usize = 128;

/// A hasher for packed trigrams (already distinct `u64`s): one multiply-xorshift mix.
#[derive(Default, Clone, Copy)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0 ^ u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        let x = v.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = x ^ (x >> 29);
    }
}

type TrigramMap<V> = HashMap<u64, V, BuildHasherDefault<MixHasher>>;

/// Languages a [`Row`] has room for: more than the 37 Latin ones, a multiple of 8 (16-bit lanes).
const ROW_LANGS: usize = 40;

/// One trigram's rank in each language's profile (by language index), or [`NOT_IN_PROFILE`].
type Row = [i16; ROW_LANGS];
const NOT_IN_PROFILE: i16 = -1;

struct Profiles {
    /// Languages in whatlang's `LATIN_LANGS` order.
    langs: Vec<Lang>,
    /// Each profile trigram's [`Row`].
    rows: Vec<Row>,
    /// Packed trigram → its row in `rows`.
    inverted: TrigramMap<u32>,
    /// The same for the trigrams of a lower-cased ASCII text, indexed directly
    /// ([`ascii_trigram`]): [`NO_ROW`] for a trigram no profile has.
    ascii_rows: Vec<u32>,
}

const NO_ROW: u32 = u32::MAX;

/// Symbols of a lower-cased ASCII text once stop characters are spaces: space, then `a`–`z`, in
/// `char` order (DEL, the one other byte, is left to the general path).
const ASCII_SYMBOLS: usize = 27;
const ASCII_TRIGRAMS: usize = ASCII_SYMBOLS * ASCII_SYMBOLS * ASCII_SYMBOLS;
// An ASCII trigram's index fits a `u16`.
const _: () = assert!(ASCII_TRIGRAMS <= 1 << 16);

/// The trigram of three symbols as an index; index order is packed (`char`) order.
fn ascii_trigram(a: usize, b: usize, c: usize) -> usize {
    (a * ASCII_SYMBOLS + b) * ASCII_SYMBOLS + c
}

/// The `char` of a symbol.
fn ascii_char(symbol: usize) -> char {
    match symbol {
        0 => ' ',
        n => char::from(b'a' + (n as u8 - 1)),
    }
}

/// Packs a trigram so that packed order is whatlang's `Trigram` order (char by char).
fn pack(a: char, b: char, c: char) -> u64 {
    (u64::from(a) << 42) | (u64::from(b) << 21) | u64::from(c)
}

impl Profiles {
    /// The row of ASCII trigram `t` ([`ascii_trigram`]), if a profile has it.
    fn ascii_row(&self, t: usize) -> Option<&Row> {
        self.row_at(*self.ascii_rows.get(t)?)
    }

    /// The row of packed trigram `t` ([`pack`]), if a profile has it.
    fn row(&self, t: u64) -> Option<&Row> {
        self.row_at(*self.inverted.get(&t)?)
    }

    /// Row number `row` of `rows` ([`NO_ROW`] has none).
    fn row_at(&self, row: u32) -> Option<&Row> {
        self.rows.get(usize::try_from(row).ok()?)
    }
}

fn profiles() -> Option<&'static Profiles> {
    static P: OnceLock<Option<Profiles>> = OnceLock::new();
    P.get_or_init(|| {
        let parsed = parse_profiles();
        if parsed.is_none() {
            tracing::error!("language profiles unreadable; using whatlang for every text");
        }
        parsed
    })
    .as_ref()
}

fn parse_profiles() -> Option<Profiles> {
    let mut langs = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut inverted: TrigramMap<u32> = TrigramMap::default();
    for line in PROFILES.lines().filter(|l| !l.starts_with('#')) {
        let (code, trigrams) = line.split_once('|')?;
        let lang = Lang::from_code(code)?;
        let index = langs.len();
        let chars: Vec<char> = trigrams.chars().collect();
        if chars.len() != 3 * MAX_TRIGRAM_DISTANCE as usize {
            return None;
        }
        for (rank, t) in chars.chunks_exact(3).enumerate() {
            let next = u32::try_from(rows.len()).ok()?;
            let row = *inverted.entry(pack(t[0], t[1], t[2])).or_insert(next);
            if row == next {
                rows.push([NOT_IN_PROFILE; ROW_LANGS]);
            }
            let slot = rows.get_mut(usize::try_from(row).ok()?)?.get_mut(index)?;
            // A trigram listed twice in one profile would count twice in whatlang's sum; a row
            // holds one rank, so such profiles are left to whatlang.
            if *slot != NOT_IN_PROFILE {
                return None;
            }
            *slot = i16::try_from(rank).ok()?;
        }
        langs.push(lang);
    }
    let mut ascii_rows = Vec::with_capacity(ASCII_TRIGRAMS);
    for t in 0..ASCII_TRIGRAMS {
        let (a, b, c) = (
            t / (ASCII_SYMBOLS * ASCII_SYMBOLS),
            t / ASCII_SYMBOLS % ASCII_SYMBOLS,
            t % ASCII_SYMBOLS,
        );
        let key = pack(ascii_char(a), ascii_char(b), ascii_char(c));
        ascii_rows.push(inverted.get(&key).copied().unwrap_or(NO_ROW));
    }
    (langs.len() == Script::Latin.langs().len()).then_some(Profiles {
        langs,
        rows,
        inverted,
        ascii_rows,
    })
}

/// whatlang's `is_stop_char`: space, ASCII punctuation and digits.
const fn is_stop_char(ch: char) -> bool {
    matches!(ch, '\u{0000}'..='\u{0040}' | '\u{005B}'..='\u{0060}' | '\u{007B}'..='\u{007E}')
}

/// Builds the tables [`detect`] loads on first use (the trigram profiles, the letter masks).
pub(crate) fn warm_up() {
    let _ = profiles();
    let _ = missing_letter_masks();
}

/// The same answer as `whatlang::detect(text)`.
pub fn detect(text: &str) -> Option<Info> {
    let Some(p) = profiles() else {
        return whatlang::detect(text);
    };
    if text.is_ascii() {
        // whatlang's script detection on ASCII: the letters are Latin, every other byte is a
        // stop character or (DEL) no script's, so the script is Latin when there is a letter.
        let lower = text.to_ascii_lowercase();
        let mut letters = [0u32; 26];
        let mut del = 0u32;
        count_ascii_letters(&lower, &mut letters, &mut del);
        if letters.iter().all(|&n| n == 0) {
            return whatlang::detect(text);
        }
        let (alphabet, count) = alphabet_scores(&letters, del, &[]);
        return Some(combine(alphabet, count, &lower, p));
    }
    if let Some(info) = detect_mostly_latin(text, p) {
        return Some(info);
    }
    let script = raw_detect_script(text);
    match script.counters.first() {
        Some(&(Script::Latin, n)) if n > 0 => Some(detect_latin(text, p)),
        _ => whatlang::detect(text),
    }
}

/// Adds the lower-case letters of lower-cased ASCII `text` to `letters` and its DELs (the other
/// non-stop ASCII byte) to `del`, for [`alphabet_scores`].
fn count_ascii_letters(text: &str, letters: &mut [u32; 26], del: &mut u32) {
    for b in text.bytes() {
        if b.is_ascii_lowercase() {
            letters[usize::from(b - b'a')] += 1;
        } else {
            *del += u32::from(b == 0x7f);
        }
    }
}

/// What whatlang makes of one character outside ASCII (never a stop character), from its own
/// functions on the character alone: the script `raw_detect_script` counts it under (Latin's
/// test comes first, so Latin whenever that test passes), and the Latin languages whose
/// alphabet has it (bit `i` for `Script::Latin.langs()[i]`; `None` when the character is not
/// its own lower case, as no character of a lower-cased text should be).
#[derive(Clone, Copy)]
struct CharFacts {
    script: Option<Script>,
    alphabets: Option<u64>,
}

impl CharFacts {
    fn of(c: char) -> Self {
        let one = c.to_string();
        let script = raw_detect_script(&one)
            .counters
            .iter()
            .find(|(_, n)| *n > 0)
            .map(|&(s, _)| s);
        let alphabets = c.to_lowercase().eq(std::iter::once(c)).then(|| {
            // One non-stop character: 2 − 1 for each language whose alphabet has it, else 0.
            let langs = Script::Latin.langs();
            alphabet_latin_calculate_scores(&LowercaseText::new(&one), &FilterList::default())
                .raw_scores
                .iter()
                .filter(|(_, score)| *score > 0)
                .filter_map(|(l, _)| langs.iter().position(|x| x == l))
                .fold(0u64, |mask, i| mask | 1 << i)
        });
        CharFacts { script, alphabets }
    }
}

/// Most characters [`CharFacts`] keeps per thread before starting over (a text can hold any).
const MAX_CHAR_FACTS: usize = 4_096;

/// [`CharFacts::of`], memoised per thread.
fn char_facts(c: char) -> CharFacts {
    type Memo = HashMap<char, CharFacts, BuildHasherDefault<MixHasher>>;
    thread_local! {
        static MEMO: std::cell::RefCell<Memo> = std::cell::RefCell::new(Memo::default());
    }
    MEMO.with(|memo| {
        let Ok(mut memo) = memo.try_borrow_mut() else {
            return CharFacts::of(c);
        };
        if let Some(facts) = memo.get(&c) {
            return *facts;
        }
        if memo.len() >= MAX_CHAR_FACTS {
            memo.clear();
        }
        *memo.entry(c).or_insert_with(|| CharFacts::of(c))
    })
}

/// Most distinct characters outside ASCII [`detect_mostly_latin`] scores itself.
const MAX_OTHER_CHARS: usize = 64;

/// [`detect_latin`] for a text outside ASCII whose every non-stop character is Latin or of no
/// script (accents, curly quotes, dashes, NBSP: most Latin web text), without whatlang's
/// character-at-a-time passes: the script is then Latin by construction (`raw_detect_script`
/// checks Latin first and never reorders its tests when no other script is met), and the
/// alphabet scores come from letter counts as on ASCII plus each other character's
/// memoised alphabets. `None` (the caller asks whatlang) for any other text: a letter of
/// another script, no Latin letter, more than [`MAX_OTHER_CHARS`] distinct characters outside
/// ASCII, or one whose alphabets are unknown.
fn detect_mostly_latin(text: &str, p: &Profiles) -> Option<Info> {
    let mut latin = 0usize;
    for stretch in ascii_stretches(text) {
        match stretch {
            Stretch::Ascii(ascii) => {
                latin += ascii.bytes().filter(u8::is_ascii_alphabetic).count();
            }
            Stretch::Other(c) => match char_facts(c).script {
                Some(Script::Latin) => latin += 1,
                Some(_) => return None,
                None => {}
            },
        }
    }
    if latin == 0 {
        return None;
    }
    let lower = crate::quality::lowercase(text);
    let mut letters = [0u32; 26];
    let mut del = 0u32;
    let mut others: Vec<(char, u32)> = Vec::new();
    for stretch in ascii_stretches(&lower) {
        match stretch {
            Stretch::Ascii(ascii) => count_ascii_letters(ascii, &mut letters, &mut del),
            Stretch::Other(c) => {
                if let Some((_, n)) = others.iter_mut().find(|(o, _)| *o == c) {
                    *n += 1;
                } else if others.len() < MAX_OTHER_CHARS {
                    others.push((c, 1));
                } else {
                    return None;
                }
            }
        }
    }
    let others = others
        .iter()
        .map(|&(c, n)| Some((char_facts(c).alphabets?, n)))
        .collect::<Option<Vec<_>>>()?;
    let (alphabet, count) = alphabet_scores(&letters, del, &others);
    Some(combine(alphabet, count, &lower, p))
}

/// whatlang's combined (alphabet + trigram) method on a Latin-script text.
fn detect_latin(text: &str, p: &Profiles) -> Info {
    let lower = LowercaseText::new(text);
    let alphabet = alphabet_latin_calculate_scores(&lower, &FilterList::default());
    combine(alphabet.scores, alphabet.count, &lower, p)
}

/// ASCII letters missing from a Latin language's alphabet in whatlang 0.18.0
/// (`alphabets/latin.rs`); every other Latin language has all 26.
const MISSING_ASCII_LETTERS: [(Lang, &str); 5] = [
    (Lang::Aka, "cjqvxz"),
    (Lang::Aze, "w"),
    (Lang::Epo, "qwxy"),
    (Lang::Tuk, "cqvx"),
    (Lang::Uzb, "w"),
];

/// Per Latin language (in `Script::Latin.langs()` order), its missing ASCII letters as a bit mask
/// (bit `l` for letter `b'a' + l`), from [`MISSING_ASCII_LETTERS`].
fn missing_letter_masks() -> &'static [u32] {
    static MASKS: OnceLock<Vec<u32>> = OnceLock::new();
    MASKS.get_or_init(|| {
        Script::Latin
            .langs()
            .iter()
            .map(|&lang| {
                MISSING_ASCII_LETTERS
                    .iter()
                    .filter(|(m, _)| *m == lang)
                    .flat_map(|(_, missing)| missing.bytes())
                    .fold(0u32, |mask, b| mask | 1 << (b - b'a'))
            })
            .collect()
    })
}

/// whatlang's `alphabet_latin_calculate_scores` on a lower-cased text given its counts of
/// ASCII letters, of DEL (the other non-stop ASCII byte) and of each non-stop character outside
/// ASCII as (its alphabets as [`CharFacts`] has them, count): (scores, count).
fn alphabet_scores(
    letters: &[u32; 26],
    del: u32,
    others: &[(u64, u32)],
) -> (Vec<(Lang, f64)>, usize) {
    let langs = Script::Latin.langs();
    let missing = missing_letter_masks();
    // Letters some language lacks; every language has the others.
    let rare = missing.iter().fold(0u32, |all, &m| all | m);
    // whatlang adds 2 per character to each language whose alphabet has it (or to a score
    // common to all when every language has it), then subtracts the count of non-stop
    // characters.
    let max_raw_score = letters.iter().sum::<u32>() as usize
        + del as usize
        + others.iter().map(|&(_, n)| n as usize).sum::<usize>();
    let mut common = 0usize;
    let mut per_lang = [0usize; 37];
    for (l, &n) in letters.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let bit = 1u32 << l;
        if rare & bit == 0 {
            common += 2 * n as usize;
        } else {
            for (s, &m) in per_lang.iter_mut().zip(missing) {
                if m & bit == 0 {
                    *s += 2 * n as usize;
                }
            }
        }
    }
    for &(alphabets, n) in others {
        for (i, s) in per_lang.iter_mut().enumerate() {
            if alphabets >> i & 1 == 1 {
                *s += 2 * n as usize;
            }
        }
    }
    let mut raw: Vec<(Lang, usize)> = langs
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            let own = per_lang.get(i).copied().unwrap_or(0);
            (l, (own + common).saturating_sub(max_raw_score))
        })
        .collect();
    raw.sort_unstable_by_key(|(_, score)| std::cmp::Reverse(*score));
    let scores = raw
        .into_iter()
        .map(|(l, s)| (l, s as f64 / max_raw_score as f64))
        .collect();
    (scores, max_raw_score)
}

/// whatlang's combined::raw_detect and combined::detect, from the alphabet scores and count.
fn combine(
    alphabet_scores: Vec<(Lang, f64)>,
    alphabet_count: usize,
    lower: &str,
    p: &Profiles,
) -> Info {
    let (trigram_scores, trigrams_count) = trigram_scores(lower, p);

    // whatlang's combined::raw_detect.
    // whatlang finds each language's two scores by a linear search of each list; here they are
    // looked up by the language's discriminant (the first entry of a language wins, as `find`'s).
    let mut alphabet_of = [None; LANG_SLOTS];
    let mut trigram_of = [None; LANG_SLOTS];
    let mut listed = [false; LANG_SLOTS];
    let mut all_langs: Vec<Lang> = Vec::with_capacity(alphabet_scores.len());
    for (list, of) in [
        (&alphabet_scores, &mut alphabet_of),
        (&trigram_scores, &mut trigram_of),
    ] {
        for &(lang, score) in list {
            let new = match (of.get_mut(lang as usize), listed.get_mut(lang as usize)) {
                (Some(slot), Some(seen)) => {
                    if slot.is_none() {
                        *slot = Some(score);
                    }
                    !std::mem::replace(seen, true)
                }
                _ => !all_langs.contains(&lang),
            };
            if new {
                all_langs.push(lang);
            }
        }
    }
    let alphabet_weight =
        (-(alphabet_count as f64 / 300.0) + 2.0 / 3.0).clamp(1.0 / 3.0, 2.0 / 3.0);
    let trigram_weight = 1.0 - alphabet_weight;
    let score_of = |of: &[Option<f64>; LANG_SLOTS], list: &[(Lang, f64)], lang: Lang| match of
        .get(lang as usize)
    {
        Some(score) => score.unwrap_or(0.0),
        None => list.iter().find(|(l, _)| *l == lang).map_or(0.0, |x| x.1),
    };
    let mut scores: Vec<(Lang, f64)> = all_langs
        .into_iter()
        .map(|lang| {
            let a = score_of(&alphabet_of, &alphabet_scores, lang);
            let t = score_of(&trigram_of, &trigram_scores, lang);
            (lang, a * alphabet_weight + t * trigram_weight)
        })
        .collect();
    scores.sort_unstable_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Less));

    // whatlang's combined::detect (a Latin text always has at least one candidate).
    let mut it = scores.into_iter();
    let (lang1, score1) = it.next().unwrap_or((Lang::Eng, 0.0));
    let confidence = match it.next() {
        Some((_, score2)) => confidence(score1, score2, trigrams_count),
        None => 1.0,
    };
    Info::new(Script::Latin, lang1, confidence)
}

/// whatlang's `calculate_scores_in_profiles` over the Latin profiles: (scores sorted by
/// distance, number of distinct trigrams in the text).
fn trigram_scores(lower: &str, p: &Profiles) -> (Vec<(Lang, f64)>, usize) {
    if let Some(dist) = ascii_trigram_distances(lower.as_bytes(), p) {
        return scores_from_distances(dist, p);
    }
    if let Some(dist) = small_alphabet_trigram_distances(lower, p) {
        return scores_from_distances(dist, p);
    }
    // Count trigrams exactly as whatlang's `trigrams::utils::count`, in an open-addressing table
    // (linear probing, at most half full; a slot is free while its count is 0).
    let slots = (2 * (lower.len() + 2)).next_power_of_two().max(64);
    let mask = slots - 1;
    let shift = 64 - slots.trailing_zeros();
    let mut keys = vec![0u64; slots];
    let mut counts = vec![0u32; slots];
    // The slots in use, so that ranking reads only those.
    let mut used: Vec<usize> = Vec::with_capacity(lower.len() + 1);
    let mut chars = lower
        .chars()
        .map(|c| if is_stop_char(c) { ' ' } else { c })
        .chain(Some(' '));
    let mut c1 = ' ';
    let mut c2 = chars.next().unwrap_or(' ');
    for c3 in chars {
        if !(c2 == ' ' && (c1 == ' ' || c3 == ' ')) {
            let t = pack(c1, c2, c3);
            let mut i = (t.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> shift) as usize & mask;
            loop {
                if counts[i] == 0 {
                    keys[i] = t;
                    counts[i] = 1;
                    used.push(i);
                    break;
                }
                if keys[i] == t {
                    counts[i] += 1;
                    break;
                }
                i = (i + 1) & mask;
            }
        }
        c1 = c2;
        c2 = c3;
    }
    // Rank: by count, then trigram, both descending (trigrams are distinct, so this is one
    // order whatever the sort); the first 600 only. Count and trigram in one u128 key.
    let mut ranked: Vec<u128> = used
        .iter()
        .map(|&i| (u128::from(counts[i]) << 64) | u128::from(keys[i]))
        .collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    ranked.truncate(TEXT_TRIGRAMS_SIZE);
    let unique = ranked.len();

    let dist = distances(ranked.iter().map(|&key| p.row(key as u64)), p);
    scores_from_distances((dist, unique), p)
}

/// Distance per language: every profile trigram costs MAX_TRIGRAM_DISTANCE unless the text has
/// it, when it costs |text rank − profile rank| instead. `ranked` gives the text's trigrams in
/// rank order (at most [`TEXT_TRIGRAMS_SIZE`]), each as its [`Row`] if a profile has it.
///
/// Each row is taken whole, every language at once, in 16-bit lanes (a difference from
/// MAX_TRIGRAM_DISTANCE is at most 300 either way), summed in 16 bits over [`SUM_RUN`] trigrams at
/// a time and then into 32 (a language's sum is at most 600 ranks × 300): the same arithmetic as
/// one add per (trigram, language) entry, a few wide operations per trigram instead.
fn distances<'e>(ranked: impl Iterator<Item = Option<&'e Row>>, p: &Profiles) -> Vec<i64> {
    let mut sums = [0i32; ROW_LANGS];
    let mut run = [0i16; ROW_LANGS];
    for (pos, row) in ranked.enumerate().take(TEXT_TRIGRAMS_SIZE) {
        if pos % SUM_RUN == 0 {
            for (sum, r) in sums.iter_mut().zip(&mut run) {
                *sum += i32::from(std::mem::take(r));
            }
        }
        let Some(row) = row else {
            continue;
        };
        // Below TEXT_TRIGRAMS_SIZE, so it fits.
        let pos = pos as i16;
        for (r, &rank) in run.iter_mut().zip(row) {
            // 0 where the language's profile lacks the trigram (rank −1: an all-ones mask
            // turned into zeros), else |pos − rank| − 300.
            let d = (pos - rank).abs() - MAX_TRIGRAM_DISTANCE as i16;
            *r += d & !(rank >> 15);
        }
    }
    for (sum, r) in sums.iter_mut().zip(run) {
        *sum += i32::from(r);
    }
    sums.iter()
        .take(p.langs.len())
        .map(|&sum| MAX_TOTAL_DISTANCE + i64::from(sum))
        .collect()
}

/// Trigrams summed in 16 bits before the sums move to 32: 100 × 300 stays below 2¹⁵.
const SUM_RUN: usize = 100;
const _: () = assert!(SUM_RUN as i64 * MAX_TRIGRAM_DISTANCE < i16::MAX as i64);
const _: () = assert!(TEXT_TRIGRAMS_SIZE < i16::MAX as usize);

/// Sums of rank differences per language (see [`trigram_scores`]) and the number of ranked
/// text trigrams, to whatlang's scores, sorted by distance.
fn scores_from_distances(
    (dist, unique): (Vec<i64>, usize),
    p: &Profiles,
) -> (Vec<(Lang, f64)>, usize) {
    let count = unique as i64;
    let mut lang_distances: Vec<(Lang, u32)> = p
        .langs
        .iter()
        .zip(dist)
        .map(|(&lang, mut d)| {
            if MAX_TRIGRAM_DISTANCE > count {
                d -= (MAX_TRIGRAM_DISTANCE - count) * MAX_TRIGRAM_DISTANCE;
            }
            (
                lang,
                u32::try_from(d.clamp(0, MAX_TOTAL_DISTANCE)).unwrap_or(0),
            )
        })
        .collect();
    lang_distances.sort_unstable_by_key(|(_, d)| *d);
    let max_dist = unique as u32 * MAX_TRIGRAM_DISTANCE as u32;
    let scores = lang_distances
        .into_iter()
        .map(|(lang, d)| {
            (
                lang,
                f64::from(max_dist.saturating_sub(d)) / f64::from(max_dist),
            )
        })
        .collect();
    (scores, unique)
}

/// Every byte of a lower-cased ASCII text as a symbol (once stop characters are spaces): 0 for a
/// stop character, 1–26 for a letter, [`NOT_A_SYMBOL`] for any other byte (DEL, upper case,
/// bytes outside ASCII).
const SYMBOLS: [u8; 256] = {
    let mut t = [NOT_A_SYMBOL; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_lowercase() {
            c - b'a' + 1
        } else if is_stop_char(c as char) {
            0
        } else {
            NOT_A_SYMBOL
        };
        b += 1;
    }
    t
};
const NOT_A_SYMBOL: u8 = u8::MAX;
/// Words of a bit set over the ASCII trigrams.
const TRIGRAM_WORDS: usize = ASCII_TRIGRAMS.div_ceil(64);

/// [`trigram_scores`]' counting, ranking and distances for a lower-cased ASCII text without DEL,
/// with the trigrams as direct indexes: counts in a reused table, the trigrams seen in a bit set
/// (read from the highest index down, so in descending trigram order, resetting their counts),
/// then ranked by a stable counting sort on the count, descending: by count, then trigram, both
/// descending, as whatlang's sort orders them (trigrams are distinct). Profile rows are found by
/// direct index. `None` for any other text, and for texts of 65,535 bytes or more (a count could
/// outgrow its `u16`). Index order is `char` order, so the same ranks and the same distances.
fn ascii_trigram_distances(lower: &[u8], p: &Profiles) -> Option<(Vec<i64>, usize)> {
    thread_local! {
        static COUNTS: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    if lower.len() >= usize::from(u16::MAX)
        || lower
            .iter()
            .any(|&b| SYMBOLS[usize::from(b)] == NOT_A_SYMBOL)
    {
        return None;
    }
    COUNTS.with(|counts| {
        let mut counts = counts.try_borrow_mut().ok()?;
        if counts.len() != ASCII_TRIGRAMS {
            *counts = vec![0; ASCII_TRIGRAMS];
        }
        let mut seen = [0u64; TRIGRAM_WORDS];
        let symbols = lower.iter().map(|b| usize::from(SYMBOLS[usize::from(*b)]));
        let ranked = rank_trigrams(symbols, ascii_trigram, &mut counts, &mut seen)?;
        let rows = ranked.iter().map(|&t| p.ascii_row(usize::from(t)));
        Some((distances(rows, p), ranked.len()))
    })
}

/// Most symbols (space and the text's distinct other characters) for which
/// [`small_alphabet_trigram_distances`] indexes trigrams directly: 40³ = 64,000 indexes.
const SMALL_ALPHABET: usize = 40;
const _: () = assert!(SMALL_ALPHABET * SMALL_ALPHABET * SMALL_ALPHABET <= 1 << 16);

/// [`ascii_trigram_distances`] for a text outside ASCII with few distinct characters (a Latin
/// sample with accents, curly quotes or dashes: most that are not ASCII): its symbols are space
/// and its own other characters, numbered in `char` order, so index order is again `char`
/// order and counting, ranking and distances go as on ASCII. A trigram's profile row comes
/// from the ASCII index when its characters are space and ASCII letters, else from the inverted
/// profiles. `None` beyond [`SMALL_ALPHABET`] symbols or 65,535 bytes.
fn small_alphabet_trigram_distances(lower: &str, p: &Profiles) -> Option<(Vec<i64>, usize)> {
    const TRIGRAMS: usize = SMALL_ALPHABET * SMALL_ALPHABET * SMALL_ALPHABET;
    thread_local! {
        static COUNTS: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    if lower.len() >= usize::from(u16::MAX) {
        return None;
    }
    // Symbols: space 0 and the letters 1–26 as on ASCII ([`SYMBOLS`]), then the text's other
    // characters (few on a Latin sample), numbered first as met and renumbered in `char` order
    // once all are known; all of them come after 'z'.
    let mut extras: Vec<char> = Vec::new();
    let mut symbols: Vec<u8> = Vec::with_capacity(lower.len());
    for c in lower.chars() {
        let ascii = u8::try_from(c)
            .ok()
            .map_or(NOT_A_SYMBOL, |b| SYMBOLS[usize::from(b)]);
        if ascii != NOT_A_SYMBOL {
            symbols.push(ascii);
            continue;
        }
        // Only DEL and characters outside ASCII get here in a lower-cased text; anything
        // before 'z' would break the order.
        if c <= 'z' {
            return None;
        }
        let at = match extras.iter().position(|&e| e == c) {
            Some(at) => at,
            None => {
                extras.push(c);
                extras.len() - 1
            }
        };
        symbols.push(u8::try_from(ASCII_SYMBOLS + at).ok()?);
        if ASCII_SYMBOLS + extras.len() > SMALL_ALPHABET {
            return None;
        }
    }
    let mut order: Vec<usize> = (0..extras.len()).collect();
    order.sort_unstable_by_key(|&i| extras.get(i).copied());
    // renumber[first-met number] = number in `char` order.
    let mut renumber = vec![0u8; extras.len()];
    for (rank, &i) in order.iter().enumerate() {
        *renumber.get_mut(i)? = u8::try_from(ASCII_SYMBOLS + rank).ok()?;
    }
    for s in symbols
        .iter_mut()
        .filter(|s| usize::from(**s) >= ASCII_SYMBOLS)
    {
        *s = *renumber.get(usize::from(*s) - ASCII_SYMBOLS)?;
    }
    let mut alphabet: Vec<char> = (0..ASCII_SYMBOLS).map(ascii_char).collect();
    alphabet.extend(order.iter().filter_map(|&i| extras.get(i).copied()));
    let k = alphabet.len();
    COUNTS.with(|counts| {
        let mut counts = counts.try_borrow_mut().ok()?;
        if counts.len() != TRIGRAMS {
            *counts = vec![0; TRIGRAMS];
        }
        let index = |a: usize, b: usize, c: usize| (a * k + b) * k + c;
        let mut seen = vec![0u64; (k * k * k).div_ceil(64)];
        let symbols = symbols.iter().map(|&s| usize::from(s));
        let ranked = rank_trigrams(symbols, index, &mut counts, &mut seen)?;
        // A character's ASCII symbol (space 0, letters 1–26), if it has one.
        let ascii_symbol = |c: char| {
            u8::try_from(c)
                .ok()
                .map(|b| usize::from(SYMBOLS[usize::from(b)]))
                .filter(|&s| s < ASCII_SYMBOLS)
        };
        // A trigram's three symbols without dividing: three 64-bit divisions a trigram were
        // among the hottest instructions of language id on accented text (perf annotate).
        let (per_k, per_kk) = (Reciprocal::of(k), Reciprocal::of(k * k));
        let row = |t: &u16| -> Option<&Row> {
            let t = usize::from(*t);
            let (a, rest) = per_kk.div_rem(t);
            let (b, c) = per_k.div_rem(rest);
            let [a, b, c] = [a, b, c].map(|s| alphabet.get(s).copied().unwrap_or(' '));
            match (ascii_symbol(a), ascii_symbol(b), ascii_symbol(c)) {
                (Some(x), Some(y), Some(z)) => p.ascii_row(ascii_trigram(x, y, z)),
                _ => p.row(pack(a, b, c)),
            }
        };
        Some((distances(ranked.iter().map(row), p), ranked.len()))
    })
}

/// Division by a fixed `d` (`0 < d < 2¹⁶`) of numbers below 2¹⁶, as a multiply and a shift:
/// `m = ⌊2³² / d⌋ + 1` and `t / d = ⌊t·m / 2³²⌋`. Exact in that range: `t·m / 2³²` exceeds
/// `t / d` by less than `t / 2³² < 2⁻¹⁶`, and the fraction of `t / d` is at most `1 − 1/d`,
/// below `1 − 2⁻¹⁶`, so the floor never reaches the next integer.
#[derive(Clone, Copy)]
struct Reciprocal {
    d: usize,
    m: u64,
}

impl Reciprocal {
    fn of(d: usize) -> Self {
        Reciprocal {
            d,
            m: (1u64 << 32) / d.max(1) as u64 + 1,
        }
    }

    /// `(t / d, t % d)` for `t < 2¹⁶`.
    fn div_rem(self, t: usize) -> (usize, usize) {
        let q = ((t as u64 * self.m) >> 32) as usize;
        (q, t - q * self.d)
    }
}

/// Counts the trigrams of a text given as symbols (0 for a stop character, symbol order being
/// `char` order) as whatlang does (the text padded with a space at each end; no trigram whose
/// middle is a space next to another space), in `counts` indexed by `index` (all zero before,
/// and left so: each count is taken as it is read) with the trigrams seen in the bit set `seen`,
/// and ranks them as whatlang's sort does: by count, then trigram, both descending (trigrams are
/// distinct). The bit set is read from the highest index down, then a stable counting sort on
/// the count. The first [`TEXT_TRIGRAMS_SIZE`]; `None` if an index falls outside the tables.
fn rank_trigrams(
    mut symbols: impl Iterator<Item = usize>,
    index: impl Fn(usize, usize, usize) -> usize,
    counts: &mut [u16],
    seen: &mut [u64],
) -> Option<Vec<u16>> {
    let mut c1 = 0;
    let mut c2 = symbols.next().unwrap_or(0);
    for c3 in symbols.chain(Some(0)) {
        if !(c2 == 0 && (c1 == 0 || c3 == 0)) {
            let t = index(c1, c2, c3);
            *counts.get_mut(t)? += 1;
            *seen.get_mut(t / 64)? |= 1 << (t % 64);
        }
        c1 = c2;
        c2 = c3;
    }
    // (trigram, count) in descending trigram order.
    let mut by_trigram: Vec<(u16, u16)> = Vec::new();
    let mut most = 0u16;
    for (w, &word) in seen.iter().enumerate().rev() {
        let mut bits = word;
        while bits != 0 {
            let bit = 63 - bits.leading_zeros() as usize;
            bits &= !(1u64 << bit);
            let t = w * 64 + bit;
            let n = std::mem::take(counts.get_mut(t)?);
            most = most.max(n);
            by_trigram.push((u16::try_from(t).ok()?, n));
        }
    }
    // Where each count's trigrams start in the ranking: after every higher count's.
    let mut start = vec![0u32; usize::from(most) + 1];
    for &(_, n) in &by_trigram {
        *start.get_mut(usize::from(n))? += 1;
    }
    let mut before = 0;
    for slot in start.iter_mut().rev() {
        let here = *slot;
        *slot = before;
        before += here;
    }
    let mut ranked = vec![0u16; by_trigram.len()];
    for &(t, n) in &by_trigram {
        let at = start.get_mut(usize::from(n))?;
        *ranked.get_mut(*at as usize)? = t;
        *at += 1;
    }
    ranked.truncate(TEXT_TRIGRAMS_SIZE);
    Some(ranked)
}

/// whatlang's `calculate_confidence`.
fn confidence(highest: f64, second: f64, count: usize) -> f64 {
    if highest == 0.0 {
        return 0.0;
    }
    if second == 0.0 {
        return highest;
    }
    let confident_rate = (3.0 / count as f64) + 0.015;
    let rate = (highest - second) / second;
    if rate > confident_rate {
        1.0
    } else {
        rate / confident_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(text: &str) {
        let ours = detect(text);
        let theirs = whatlang::detect(text);
        assert_eq!(
            ours.as_ref()
                .map(|i| (i.lang(), i.script(), i.confidence().to_bits())),
            theirs
                .as_ref()
                .map(|i| (i.lang(), i.script(), i.confidence().to_bits())),
            "{text:?}"
        );
    }

    #[test]
    fn reciprocal_division_is_exact_for_every_index_and_alphabet() {
        // Every divisor the small-alphabet path uses (k and k² for k up to SMALL_ALPHABET), the
        // extremes of the range, and every dividend a `u16` index can take.
        let divisors = (1..=SMALL_ALPHABET)
            .flat_map(|k| [k, k * k])
            .chain([7_919, 65_535]);
        for d in divisors {
            let r = Reciprocal::of(d);
            for t in 0..=usize::from(u16::MAX) {
                assert_eq!(r.div_rem(t), (t / d, t % d), "{t} / {d}");
            }
        }
    }

    #[test]
    fn symbols_are_stop_characters_and_letters() {
        for b in 0..=u8::MAX {
            let expected = if b.is_ascii_lowercase() {
                b - b'a' + 1
            } else if b.is_ascii() && is_stop_char(char::from(b)) {
                0
            } else {
                NOT_A_SYMBOL
            };
            assert_eq!(SYMBOLS[usize::from(b)], expected, "byte {b:#x}");
        }
    }

    /// The memoised path takes Latin text with characters outside ASCII and leaves the rest to
    /// whatlang (`matches_whatlang` checks its answers).
    #[test]
    fn mostly_latin_text_takes_the_memoised_path() {
        let p = profiles().expect("profiles");
        let ours = |t: &str| detect_mostly_latin(t, p).map(|i| (i.lang(), i.script()));
        assert_eq!(
            ours("Le renard brun rapide saute par-dessus le chien, à côté de l’église."),
            Some((Lang::Fra, Script::Latin))
        );
        assert_eq!(ours("The café served a Москва special today."), None);
        assert_eq!(ours("… — 🙂 ’"), None);
        let many: String = (0xc0u32..0x180).filter_map(char::from_u32).collect();
        assert_eq!(ours(&many), None);
    }

    /// `distances` adds whole rows in 16-bit runs: the same sums as one 64-bit add per
    /// (trigram, language) entry, for the longest rankings (600 trigrams, where a run summed in
    /// 16 bits without moving to 32 would overflow: case 0 sums to about −80,000), with trigrams
    /// no profile has and rows that lack some languages.
    #[test]
    fn row_sums_match_entry_by_entry_sums() {
        let p = profiles().expect("the profiles parse");
        let mut s = 0x9e37_79b9_u64;
        let mut next = |m: u64| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 33) % m
        };
        for case in 0..20 {
            let rows: Vec<Option<Row>> = (0..TEXT_TRIGRAMS_SIZE)
                .map(|_| {
                    (next(10) != 0).then(|| {
                        let mut row = [NOT_IN_PROFILE; ROW_LANGS];
                        for r in row.iter_mut().take(p.langs.len()) {
                            if case % 2 == 0 || next(3) != 0 {
                                *r = if case == 0 { 299 } else { next(300) as i16 };
                            }
                        }
                        row
                    })
                })
                .collect();
            let expected: Vec<i64> = (0..p.langs.len())
                .map(|l| {
                    let sum: i64 = rows
                        .iter()
                        .enumerate()
                        .filter_map(|(pos, row)| {
                            let rank = i64::from(row.as_ref()?[l]);
                            (rank >= 0).then(|| (pos as i64 - rank).abs() - MAX_TRIGRAM_DISTANCE)
                        })
                        .sum();
                    MAX_TOTAL_DISTANCE + sum
                })
                .collect();
            assert_eq!(
                distances(rows.iter().map(Option::as_ref), p),
                expected,
                "case {case}"
            );
        }
    }

    #[test]
    fn profiles_parse() {
        let p = profiles().map(|p| p.langs.len());
        assert_eq!(p, Some(Script::Latin.langs().len()));
    }

    #[test]
    fn matches_whatlang() {
        let mut texts: Vec<String> = vec![
            String::new(),
            " ".into(),
            "a".into(),
            "Hi!".into(),
            "I am begging pardon".into(),
            "There is no reason not to learn Esperanto.".into(),
            "Además de todo lo anteriormente dicho, también encontramos...".into(),
            "Die Ordnung muss für immer in diesem Codebase bleiben".into(),
            "Mit dem Wissen wächst der Zweifel. Ich weiß nicht, was soll es bedeuten.".into(),
            "Le renard brun rapide saute par-dessus le chien paresseux, à côté de l'église.".into(),
            "O rato roeu a roupa do rei de Roma e a rainha ficou furiosa com ele.".into(),
            "Il gatto è sul tavolo e la cena è pronta per tutti quanti noi stasera.".into(),
            "Zażółć gęślą jaźń, a potem przyjdź do mnie na kawę i ciastko.".into(),
            "Tiếng Việt là ngôn ngữ chính thức của Việt Nam và được nhiều người sử dụng.".into(),
            "Het is een mooie dag en wij gaan samen naar het strand met de kinderen.".into(),
            "Bugün hava çok güzel ve biz parkta yürüyüş yapmaya karar verdik.".into(),
            "Мы хотим видеть дальше, чем окна дома напротив".into(),
            "水は生命にとって欠かせないものです。".into(),
            "Ωmega ΑΒΓ ΔΕΖ αβγ δεζ".into(),
            "12345 !!! ??? ... ---".into(),
            "English words with some Deutsch Wörter und français mélangés ensemble ici.".into(),
            "aaa aaa aaa aaa aaa bbb bbb bbb".into(),
        ];
        for seed in 0..40 {
            let t = crate::testkit::sample_text(seed, 2_000);
            for len in [30, 100, 250, 512, 2_000] {
                texts.push(t[..t.floor_char_boundary(len)].to_string());
            }
        }
        // Pseudo-random Latin letters with diacritics, spaces and punctuation: many trigrams.
        let mut s = 0x1234_5678_u64;
        for n in [20, 80, 300, 600, 1_500] {
            for _ in 0..20 {
                let mut t = String::new();
                for _ in 0..n {
                    s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let c = match (s >> 33) % 10 {
                        0 | 1 => ' ',
                        2 => ['.', ',', '!', '1', '-'][(s >> 40) as usize % 5],
                        3 => ['é', 'ä', 'ö', 'ñ', 'ç', 'ł', 'ş', 'ő', 'à', 'ß']
                            [(s >> 40) as usize % 10],
                        _ => char::from(b'a' + ((s >> 40) % 26) as u8),
                    };
                    t.push(c);
                }
                texts.push(t);
            }
        }
        // Mostly ASCII with a few characters outside it, as web text is: curly quotes, dashes,
        // NBSP, accented letters, and now and then many distinct ones (past the small-alphabet
        // path's limit).
        for n in [10, 60, 300, 512, 1_200] {
            for _ in 0..30 {
                let t: String = (0..n)
                    .map(|_| {
                        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        let r = (s >> 33) as usize;
                        match r % 14 {
                            0 | 1 => ' ',
                            2 => {
                                ['’', '“', '”', '—', '\u{a0}', '…', 'é', 'É', 'ü', 'ñ'][r / 14 % 10]
                            }
                            3 if (r / 14).is_multiple_of(4) => {
                                char::from_u32(0xc0 + (r / 56 % 0x140) as u32).unwrap_or('x')
                            }
                            4 => char::from(b'A' + (r / 14 % 26) as u8),
                            5 => ['.', ',', '\'', '-'][r / 14 % 4],
                            _ => char::from(b'a' + (r / 14 % 26) as u8),
                        }
                    })
                    .collect();
                texts.push(t);
            }
        }
        texts.push("It’s the “best” thing—we’ve seen… since the café opened.".into());
        // Latin with a letter of another script, with characters of no script (emoji,
        // combining marks, symbols), with characters whose lower case is another character
        // or several ('İ', Kelvin sign, 'ǅ', 'ẞ', final sigma), and with more distinct
        // characters outside ASCII than the memoised path scores.
        for t in [
            "The café served a Москва special and the crêpes were great today.",
            "Die Straße war voller Menschen, α und β standen am Rand der Wörter.",
            "Great news 🙂🙂 from the e\u{301}quipe: re\u{301}sultats ✓ are in ★★★ today!",
            "İstanbul’da KELVIN \u{212a} ǅemal ẞTRASSE ΣΟΦΙΑΣ and a plain ending here.",
            "Žluťoučký kůň úpěl ďábelské ódy, łódź gęś, ñandú, smørrebrød, þorn, ðað.",
        ] {
            texts.push(t.into());
        }
        texts.push(
            (0xc0u32..0x180)
                .filter_map(char::from_u32)
                .flat_map(|c| [c, 'a', ' '])
                .collect(),
        );
        // Pure ASCII: every letter, digits, punctuation, controls and DEL (the ASCII path).
        for n in [1, 5, 40, 200, 512, 2_000] {
            for _ in 0..40 {
                let t: String = (0..n)
                    .map(|_| {
                        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        match (s >> 33) % 12 {
                            0 | 1 => ' ',
                            2 => char::from(((s >> 40) % 128) as u8),
                            3 => char::from(b'A' + ((s >> 40) % 26) as u8),
                            4 => ['q', 'w', 'x', 'y', 'z', 'j', 'c', 'v'][(s >> 40) as usize % 8],
                            _ => char::from(b'a' + ((s >> 40) % 26) as u8),
                        }
                    })
                    .collect();
                texts.push(t);
            }
        }
        for t in &texts {
            same(t);
            if t.is_ascii() {
                let lower = LowercaseText::new(t);
                let theirs = alphabet_latin_calculate_scores(&lower, &FilterList::default());
                let mut letters = [0u32; 26];
                let mut del = 0;
                for b in lower.bytes() {
                    match b {
                        b'a'..=b'z' => letters[usize::from(b - b'a')] += 1,
                        0x7f => del += 1,
                        _ => {}
                    }
                }
                if theirs.count > 0 {
                    let (ours, count) = alphabet_scores(&letters, del, &[]);
                    assert_eq!(count, theirs.count, "{t:?}");
                    let bits = |v: &[(Lang, f64)]| -> Vec<(Lang, u64)> {
                        v.iter().map(|(l, x)| (*l, x.to_bits())).collect()
                    };
                    assert_eq!(bits(&ours), bits(&theirs.scores), "{t:?}");
                }
            }
        }
    }
}
