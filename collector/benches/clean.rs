//! WCXB benchmark harness for the cleaner: quality (token F1, snippets) and speed.
//!
//! `cargo bench -p gleaner-collector --bench clean` runs over `../shared/bench/wcxb-dev`
//! (relative to the workspace; override with `WCXB_DIR`). `BENCH_LIMIT=N` runs only the first N
//! pages; `BENCH_DUMP=DIR` writes each prediction to `DIR/NNNN.txt` with its F1 in
//! `DIR/scores.tsv`. `BENCH_ORACLE=1` gives the cleaner the true page type
//! (to measure what a better type guess would gain). `BENCH_EXPLAIN=ID:text` prints, for page ID, the
//! ancestors of the first text node containing `text` with their hints and whether they were
//! removed, then exits. `BENCH_TUNE="descend_share=0.8,min_text_chars=100;protect_share=0"` runs
//! one evaluation per `;`-separated variant of the default thresholds. Single thread: all pages are decompressed first, then only `clean()` is
//! timed.
//!
//! Metric (the benchmark's): tokens are lower-cased `\w+` runs; per page, precision and
//! recall from multiset overlap, F1 from those (empty reference + empty prediction = 1);
//! macro-averaged overall and per page type. Snippets: case-insensitive substring.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use gleaner_collector::clean::{PageType, Tuning, clean_tuned, explain};
use regex::Regex;

struct Page {
    id: String,
    url: Option<String>,
    html: String,
    truth: String,
    page_type: String,
    with: Vec<String>,
    without: Vec<String>,
}

/// Lower-cased `\w+` tokens counted as a multiset.
fn tokens(re: &Regex, s: &str) -> HashMap<String, u32> {
    let mut m = HashMap::new();
    for t in re.find_iter(s) {
        *m.entry(t.as_str().to_lowercase()).or_insert(0) += 1;
    }
    m
}

/// Per-page precision, recall, F1 from multiset overlap.
fn prf(re: &Regex, pred: &str, truth: &str) -> (f64, f64, f64) {
    let p = tokens(re, pred);
    let t = tokens(re, truth);
    let np: u32 = p.values().sum();
    let nt: u32 = t.values().sum();
    if np == 0 && nt == 0 {
        return (1.0, 1.0, 1.0);
    }
    if np == 0 || nt == 0 {
        return (0.0, 0.0, 0.0);
    }
    let overlap: u32 = p
        .iter()
        .map(|(k, &c)| c.min(t.get(k).copied().unwrap_or(0)))
        .sum();
    let pr = f64::from(overlap) / f64::from(np);
    let rc = f64::from(overlap) / f64::from(nt);
    let f1 = if pr + rc == 0.0 {
        0.0
    } else {
        2.0 * pr * rc / (pr + rc)
    };
    (pr, rc, f1)
}

fn self_check(re: &Regex) {
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    assert!(close(prf(re, "", "").2, 1.0));
    assert!(close(prf(re, "a", "").2, 0.0));
    assert!(close(prf(re, "The cat", "the CAT").2, 1.0));
    let (p, r, _) = prf(re, "a a b", "a c");
    assert!(close(p, 1.0 / 3.0) && close(r, 0.5));
    assert_eq!(tokens(re, "Grüße, café-au-lait").len(), 4);
}

fn load(dir: &Path, limit: usize) -> anyhow::Result<Vec<Page>> {
    let mut ids: Vec<String> = std::fs::read_dir(dir.join("html"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".html.gz"))
                .map(String::from)
        })
        .collect();
    ids.sort();
    ids.truncate(limit);
    load_ids(dir, &ids)
}

fn load_ids(dir: &Path, ids: &[String]) -> anyhow::Result<Vec<Page>> {
    let mut pages = Vec::with_capacity(ids.len());
    for id in ids {
        let gz = std::fs::read(dir.join("html").join(format!("{id}.html.gz")))?;
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut bytes)?;
        let html = String::from_utf8_lossy(&bytes).into_owned();
        let gt: serde_json::Value = serde_json::from_slice(&std::fs::read(
            dir.join("ground-truth").join(format!("{id}.json")),
        )?)?;
        let g = &gt["ground_truth"];
        let strs = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        pages.push(Page {
            url: gt["url"].as_str().map(String::from),
            html,
            truth: g["main_content"].as_str().unwrap_or("").to_string(),
            page_type: gt["_internal"]["page_type"]["primary"]
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
            with: strs(&g["with"]),
            without: strs(&g["without"]),
            id: id.clone(),
        });
    }
    Ok(pages)
}

#[derive(Default)]
struct Acc {
    n: usize,
    p: f64,
    r: f64,
    f: f64,
}

impl Acc {
    fn add(&mut self, (p, r, f): (f64, f64, f64)) {
        self.n += 1;
        self.p += p;
        self.r += r;
        self.f += f;
    }
    fn line(&self, name: &str) -> String {
        let n = self.n.max(1) as f64;
        format!(
            "{name:<14} n={:<5} P={:.3} R={:.3} F1={:.4}",
            self.n,
            self.p / n,
            self.r / n,
            self.f / n
        )
    }
}

fn main() -> anyhow::Result<()> {
    let dir = match std::env::var_os("WCXB_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/wcxb-dev"),
    };
    if !dir.join("html").is_dir() {
        println!(
            "WCXB dev split not found at {} (set WCXB_DIR); skipping.",
            dir.display()
        );
        return Ok(());
    }
    let limit = std::env::var("BENCH_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let dump = std::env::var_os("BENCH_DUMP").map(PathBuf::from);
    let re = Regex::new(r"\w+")?;
    self_check(&re);

    if let Ok(spec) = std::env::var("BENCH_EXPLAIN") {
        // `BENCH_EXPLAIN=0638:some text`: where that text sits and why it is dropped or kept.
        let (id, needle) = spec.split_once(':').unwrap_or((spec.as_str(), ""));
        let pages = load_ids(&dir, &[id.to_string()])?;
        for p in &pages {
            println!("{} {}", p.id, p.url.as_deref().unwrap_or(""));
            print!("{}", explain(&p.html, p.url.as_deref(), needle));
        }
        return Ok(());
    }
    let pages = load(&dir, limit)?;
    println!("WCXB dev: {} pages from {}", pages.len(), dir.display());
    let variants = std::env::var("BENCH_TUNE").unwrap_or_default();
    let mut tunings = vec![("default".to_string(), Tuning::DEFAULT)];
    for v in variants.split(';').map(str::trim).filter(|v| !v.is_empty()) {
        tunings.push((v.to_string(), parse_tuning(v)?));
    }
    for (name, tuning) in &tunings {
        println!("\n== tuning: {name}");
        run(&pages, tuning, &re, dump.as_deref())?;
    }
    Ok(())
}

fn parse_tuning(spec: &str) -> anyhow::Result<Tuning> {
    let mut t = Tuning::DEFAULT;
    for kv in spec.split(',') {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad tuning {kv:?}"))?;
        let v = v.trim();
        match k.trim() {
            "protect_share" => t.protect_share = v.parse()?,
            "descend_share" => t.descend_share = v.parse()?,
            "main_share" => t.main_share = v.parse()?,
            "min_text_chars" => t.min_text_chars = v.parse()?,
            "link_block_density" => t.link_block_density = v.parse()?,
            "link_keep_share" => t.link_keep_share = v.parse()?,
            "skip_title_h1" => t.skip_title_h1 = v.parse()?,
            "keep_collapsed" => t.keep_collapsed = v.parse()?,
            "drop_reviews" => t.drop_reviews = v.parse()?,
            "product_drops_links" => t.product_drops_links = v.parse()?,
            "protect_max_link_density" => t.protect_max_link_density = v.parse()?,
            "nav_min_links" => t.nav_min_links = v.parse()?,
            "control_chars" => t.control_chars = v.parse()?,
            "dedup_min" => t.dedup_min = v.parse()?,
            "keep_hidden_main" => t.keep_hidden_main = v.parse()?,
            "rec_headings" => t.rec_headings = v.parse()?,
            "repeat_min" => t.repeat_min = v.parse()?,
            "repeat_share" => t.repeat_share = v.parse()?,
            "fallback_links" => t.fallback_links = v.parse()?,
            "fallback_comments" => t.fallback_comments = v.parse()?,
            "comment_keep_share" => t.comment_keep_share = v.parse()?,
            "drop_orphan_headings" => t.drop_orphan_headings = v.parse()?,
            "drop_screen_reader" => t.drop_screen_reader = v.parse()?,
            "descend_share_other" => t.descend_share_other = v.parse()?,
            "hidden_main_plain" => t.hidden_main_plain = v.parse()?,
            "hidden_class_hides" => t.hidden_class_hides = v.parse()?,
            "drop_cta" => t.drop_cta = v.parse()?,
            "hidden_big" => t.hidden_big = v.parse()?,
            other => anyhow::bail!("unknown tuning key {other:?}"),
        }
    }
    Ok(t)
}

fn run(pages: &[Page], tuning: &Tuning, re: &Regex, dump: Option<&Path>) -> anyhow::Result<()> {
    // Warm-up (page cache, allocator) on a few pages, not timed.
    for p in pages.iter().take(5) {
        std::hint::black_box(clean_tuned(&p.html, p.url.as_deref(), tuning));
    }
    let oracle = std::env::var_os("BENCH_ORACLE").is_some();
    let mut times = Vec::with_capacity(pages.len());
    let mut outputs = Vec::with_capacity(pages.len());
    for p in pages {
        let mut tuning = *tuning;
        if oracle {
            // Diagnosis: the true page type instead of the guess.
            // (The ground truth uses the same lower-case names as `PageType`'s serde form.)
            tuning.force_type = Some(
                serde_json::from_value(serde_json::Value::from(p.page_type.as_str()))
                    .unwrap_or(PageType::Other),
            );
        }
        let t = Instant::now();
        let c = clean_tuned(&p.html, p.url.as_deref(), &tuning);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        outputs.push(c);
    }

    let mut all = Acc::default();
    let mut even = Acc::default();
    let mut odd = Acc::default();
    let mut by_type: BTreeMap<String, Acc> = BTreeMap::new();
    let (mut with_n, mut with_hit, mut without_n, mut without_hit, mut empties) = (0, 0, 0, 0, 0);
    let mut type_hits: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut scores = String::new();
    if let Some(d) = dump {
        std::fs::create_dir_all(d)?;
    }
    for (p, c) in pages.iter().zip(&outputs) {
        let s = prf(re, &c.text, &p.truth);
        all.add(s);
        let num: u32 = p.id.parse().unwrap_or(0);
        if num.is_multiple_of(2) {
            even.add(s)
        } else {
            odd.add(s)
        }
        by_type.entry(p.page_type.clone()).or_default().add(s);
        let guessed = serde_json::to_value(c.page_type)?
            .as_str()
            .unwrap_or("")
            .to_string();
        let e = type_hits.entry(p.page_type.clone()).or_default();
        e.0 += 1;
        if guessed == p.page_type {
            e.1 += 1;
        }
        if c.text.trim().is_empty() {
            empties += 1;
        }
        let lower = c.text.to_lowercase();
        for w in &p.with {
            with_n += 1;
            if lower.contains(&w.to_lowercase()) {
                with_hit += 1;
            }
        }
        for w in &p.without {
            without_n += 1;
            if lower.contains(&w.to_lowercase()) {
                without_hit += 1;
            }
        }
        if let Some(d) = dump {
            std::fs::write(d.join(format!("{}.txt", p.id)), &c.text)?;
            scores.push_str(&format!(
                "{}\t{}\t{:?}\t{:.3}\t{:.3}\t{:.3}\n",
                p.id, p.page_type, c.page_type, s.0, s.1, s.2
            ));
        }
    }
    if let Some(d) = dump {
        std::fs::write(d.join("scores.tsv"), scores)?;
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let pct = |q: f64| {
        times
            .get(((times.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let share = |h: usize, n: usize| {
        if n == 0 {
            0.0
        } else {
            h as f64 / n as f64 * 100.0
        }
    };

    println!("{}", all.line("overall"));
    for (t, a) in &by_type {
        let (n, hit) = type_hits.get(t).copied().unwrap_or((0, 0));
        println!("{}  (type guessed {:.0}%)", a.line(t), share(hit, n));
    }
    println!("{}", even.line("even ids"));
    println!("{}", odd.line("odd ids"));
    println!(
        "must-have snippets found:     {with_hit}/{with_n} ({:.1}%)",
        share(with_hit, with_n)
    );
    println!(
        "must-not-have snippets found: {without_hit}/{without_n} ({:.1}%)",
        share(without_hit, without_n)
    );
    println!("empty outputs: {empties}");
    println!(
        "ms/page: median {:.2}, p95 {:.2}, max {:.2}, mean {:.2}",
        pct(0.5),
        pct(0.95),
        times.last().copied().unwrap_or(0.0),
        times.iter().sum::<f64>() / times.len().max(1) as f64
    );
    Ok(())
}
