//! The quality rules and language id on real page text: the main content of the WCXB dev set's
//! 1,497 pages (human ground truth, `../shared/bench/wcxb-dev`, CC-BY-4.0), as a node's cleaner
//! would hand them in. The ingest bench's texts are synthetic (a 96-word vocabulary), which
//! repeats n-grams far more than real text does; this bench is the other view.
//!
//! `cargo bench -p gleaner-validator --bench quality` (optional: `-- ROUNDS`, default 5). Prints
//! µs per text and per KB for `quality::assess` (language id included) and for language id alone,
//! medians of the rounds, and the verdicts' reason codes; then `assess` again on every text after
//! one text near the 4 MiB limit on the same thread (its scratch tables must not stay that size
//! for the texts after it). Needs the data set; without it, says so and exits.

// A benchmark binary: failing loudly on setup errors is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Instant;

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/bench/wcxb-dev/ground-truth");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!(
            "quality: no data set at {}; nothing measured",
            dir.display()
        );
        return;
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let texts: Vec<String> = paths
        .iter()
        .filter_map(|p| {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
            let t = v["ground_truth"]["main_content"].as_str()?.to_string();
            (!t.is_empty()).then_some(t)
        })
        .collect();
    let bytes: usize = texts.iter().map(String::len).sum();
    println!(
        "quality: {} texts, {:.1} KB on average",
        texts.len(),
        bytes as f64 / texts.len().max(1) as f64 / 1e3
    );
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut assess = Vec::new();
    let mut lang = Vec::new();
    let mut reasons = std::collections::BTreeMap::<&str, usize>::new();
    for round in 0..rounds {
        let t = Instant::now();
        for text in &texts {
            let report = gleaner_validator::quality::assess(text, "en", &[]);
            if round == 0 {
                *reasons.entry(report.rejection.unwrap_or("ok")).or_default() += 1;
            }
            std::hint::black_box(report);
        }
        assess.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for text in &texts {
            let sample = &text[..text.floor_char_boundary(512)];
            std::hint::black_box(gleaner_validator::lang::detect(sample));
        }
        lang.push(t.elapsed().as_secs_f64());
    }
    let (a, l) = (median(assess), median(lang));
    let n = texts.len().max(1) as f64;
    println!(
        "quality: assess {:.1} µs per text, {:.2} µs per KB (language id on 512 bytes: {:.1} µs per text); medians of {rounds} rounds",
        a * 1e6 / n,
        a * 1e9 / bytes.max(1) as f64,
        l * 1e6 / n
    );
    println!("quality: verdicts {reasons:?}");
    after_a_long_text(&texts, rounds, median);
    lang_by_kind(&texts, rounds, median);
}

/// `assess` on every text, one pass a round: seconds per round.
fn assess_again(texts: &[String], rounds: usize) -> Vec<f64> {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for text in texts {
                std::hint::black_box(gleaner_validator::quality::assess(text, "en", &[]));
            }
            t.elapsed().as_secs_f64()
        })
        .collect()
}

/// `assess` on every text after one text near the 4 MiB limit on the same thread: a text's
/// scratch tables are reused by the next, and one left at a long text's size must not slow
/// every later text down. Prints the per-text time just before and after the long text, each
/// measured the same way (`assess` alone, without language id's passes in between as above).
fn after_a_long_text(texts: &[String], rounds: usize, median: impl Fn(Vec<f64>) -> f64) {
    let before = median(assess_again(texts, rounds));
    // One line of ~1.1 million short English words (no repeated line or paragraph, so the rules
    // get as far as the n-gram counts), in a pseudo-random order.
    const WORDS: [&str; 16] = [
        "the", "of", "and", "to", "in", "is", "it", "that", "was", "for", "on", "are", "as",
        "with", "his", "they",
    ];
    let mut long = String::with_capacity(4 << 20);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    while long.len() < (4 << 20) - 16 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        long.push_str(WORDS[(x % 16) as usize]);
        long.push(' ');
    }
    let words = long.split_whitespace().count();
    let t = Instant::now();
    std::hint::black_box(gleaner_validator::quality::assess(&long, "en", &[]));
    let long_ms = t.elapsed().as_secs_f64() * 1e3;
    let after = median(assess_again(texts, rounds));
    let n = texts.len().max(1) as f64;
    println!(
        "quality: after one text of {words} words ({:.1} MiB, assessed in {long_ms:.0} ms) on \
         the same thread: assess {:.1} µs per text, against {:.1} before it; medians of \
         {rounds} rounds",
        long.len() as f64 / (1u64 << 20) as f64,
        after * 1e6 / n,
        before * 1e6 / n
    );
}

/// Language id on each text's first 512 bytes, by kind of sample: ASCII, Latin script with
/// characters outside ASCII, another script (whatlang's own code). µs per sample, medians of the
/// rounds.
fn lang_by_kind(texts: &[String], rounds: usize, median: impl Fn(Vec<f64>) -> f64) {
    let mut kinds: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for text in texts {
        let sample = &text[..text.floor_char_boundary(512)];
        let kind = if sample.is_ascii() {
            "ascii"
        } else if whatlang::detect_script(sample) == Some(whatlang::Script::Latin) {
            "latin, not ascii"
        } else {
            "other script"
        };
        kinds.entry(kind).or_default().push(sample);
    }
    for (kind, samples) in &kinds {
        let mut times = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            for sample in samples {
                std::hint::black_box(gleaner_validator::lang::detect(sample));
            }
            times.push(t.elapsed().as_secs_f64());
        }
        println!(
            "quality: language id, {kind}: {} samples, {:.1} µs each",
            samples.len(),
            median(times) * 1e6 / samples.len().max(1) as f64
        );
    }
}
