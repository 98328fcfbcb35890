//! Node benchmarks. Prints figures; asserts nothing.
//!
//! `cargo bench -p gleaner-collector --bench node`
//!
//! 1. CPU per page for the whole node pipeline on a ~170 KB page: clean + hash + sign + store,
//!    plus the page's share of batching (zstd encode and persist). Target: ≤ 5 ms median.
//! 2. Upload bytes / downloaded bytes on a realistic corpus (`../shared/bench/wcxb-dev/html/*.gz`
//!    when present, else synthetic pages). Target: ≤ 5 %.
//! 3. Resident memory of `gleaner run` while working against a local stub validator and fixture
//!    site (VmRSS sampled, VmHWM at the end). Target: ≤ 60 MB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use gleaner_collector::clean::clean;
use gleaner_collector::store::Store;
use gleaner_protocol::{Batch, Digest, RecordDraft, RobotsVerdict, SecretKey};

/// The shared benchmark corpus, next to the workspace (`../shared` from the workspace root).
const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/bench/wcxb-dev/html"
);

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The record a node makes of a page, with the links it sends when its job asks for them
/// (`Job::follow_links`), or none.
fn draft(html: &[u8], text: &str, url: &str, follow_links: bool) -> RecordDraft {
    let c = clean(text, Some(url));
    RecordDraft {
        lease_id: "lease-bench".into(),
        url: url.into(),
        final_url: url.into(),
        fetched_at_ms: gleaner_collector::now_ms(),
        status: 200,
        content_type: "text/html".into(),
        charset: "utf-8".into(),
        wire_bytes: html.len() as u64,
        body_bytes: html.len() as u64,
        truncated: false,
        raw_digest: Digest::of(html),
        title: c.title,
        text: c.text,
        lang: c.lang,
        robots: RobotsVerdict::Allowed,
        crawl_delay_ms: 0,
        outlinks: if follow_links {
            gleaner_collector::node::outlinks_to_send(c.outlinks)
        } else {
            Vec::new()
        },
    }
}

fn corpus() -> Vec<(Vec<u8>, u64)> {
    let dir = Path::new(CORPUS);
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        let mut files: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "gz"))
            .take(400)
        {
            let gz = std::fs::read(&f).unwrap();
            let mut html = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut html)
                .unwrap();
            out.push((html, gz.len() as u64));
        }
    }
    out
}

fn cpu_per_page() {
    let key = SecretKey::from_bytes(&[42; 32]);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.sqlite")).unwrap();
    // Pages of about 170 KB: from the corpus when present, else synthetic.
    let mut pages: Vec<Vec<u8>> = corpus()
        .into_iter()
        .map(|(h, _)| h)
        .filter(|h| (120_000..=240_000).contains(&h.len()))
        .take(60)
        .collect();
    let source = if pages.is_empty() {
        "synthetic"
    } else {
        "wcxb-dev"
    };
    if pages.is_empty() {
        pages = (0..60)
            .map(|n| support::article(n, 420).into_bytes())
            .collect();
    }
    let avg_kb = pages.iter().map(|p| p.len()).sum::<usize>() as f64 / pages.len() as f64 / 1000.0;
    let mut per_page = Vec::new();
    let mut parts = [Vec::new(), Vec::new(), Vec::new()];
    let mut n = 0u64;
    for round in 0..5 {
        for (i, html) in pages.iter().enumerate() {
            let url = format!("https://bench.example/{round}/{i}");
            let t0 = Instant::now();
            let text = String::from_utf8_lossy(html);
            let d = draft(html, &text, &url, true);
            let t1 = Instant::now();
            let rec = d.sign(&key);
            let _ = rec.id();
            let t2 = Instant::now();
            store.insert_record("v", &rec).unwrap();
            let t3 = Instant::now();
            per_page.push((t3 - t0).as_secs_f64() * 1e3);
            parts[0].push((t1 - t0).as_secs_f64() * 1e3);
            parts[1].push((t2 - t1).as_secs_f64() * 1e3);
            parts[2].push((t3 - t2).as_secs_f64() * 1e3);
            n += 1;
        }
    }
    let t = Instant::now();
    let mut batched = 0u64;
    while let Some(b) = store
        .create_batch("v", &key, 100, 8 << 20, gleaner_collector::now_ms())
        .unwrap()
    {
        batched += u64::from(b.record_count);
    }
    let batch_share = t.elapsed().as_secs_f64() * 1e3 / batched.max(1) as f64;
    assert_eq!(batched, n);
    per_page.sort_by(f64::total_cmp);
    for p in &mut parts {
        p.sort_by(f64::total_cmp);
    }
    println!(
        "== node CPU per page ({source} pages, {} pages of {avg_kb:.0} KB avg, {n} runs)",
        pages.len()
    );
    println!("   clean+hash     median {:.2} ms", pct(&parts[0], 0.5));
    println!("   sign+id        median {:.3} ms", pct(&parts[1], 0.5));
    println!("   store (WAL)    median {:.3} ms", pct(&parts[2], 0.5));
    println!("   batch share    {batch_share:.3} ms/page (zstd encode + persist, batches of 100)");
    println!(
        "   TOTAL          median {:.2} ms, p90 {:.2} ms   (target <= 5 ms median)",
        pct(&per_page, 0.5) + batch_share,
        pct(&per_page, 0.9) + batch_share
    );
}

fn upload_ratio() {
    let key = SecretKey::from_bytes(&[42; 32]);
    let mut pages = corpus();
    let source = if pages.is_empty() {
        "synthetic"
    } else {
        "wcxb-dev"
    };
    if pages.is_empty() {
        pages = (0..200)
            .map(|n| {
                let h = support::article(n, 20 + n % 200).into_bytes();
                let gz = h.len() as u64 / 5;
                (h, gz)
            })
            .collect();
    }
    let mut raw = 0u64;
    let mut gz = 0u64;
    // Uploaded bytes with the links (jobs whose links the validator follows) and without.
    let mut up = 0u64;
    let mut up_no_links = 0u64;
    let mut records = Vec::new();
    let mut no_links = Vec::new();
    let batch_bytes = |records: &mut Vec<_>| -> u64 {
        let b = Batch::new(&key, gleaner_collector::now_ms(), std::mem::take(records));
        b.encode().unwrap().len() as u64
    };
    for (i, (html, gz_len)) in pages.iter().enumerate() {
        let text = String::from_utf8_lossy(html);
        let url = format!("https://bench.example/{i}");
        records.push(draft(html, &text, &url, true).sign(&key));
        no_links.push(draft(html, &text, &url, false).sign(&key));
        raw += html.len() as u64;
        gz += gz_len;
        if records.len() == 100 || i + 1 == pages.len() {
            up += batch_bytes(&mut records);
            up_no_links += batch_bytes(&mut no_links);
        }
    }
    println!("== upload / download ({source}, {} pages)", pages.len());
    println!(
        "   downloaded (decoded HTML) {:.1} MB; as gzip {:.1} MB; uploaded (zstd batches) {:.2} MB",
        raw as f64 / 1e6,
        gz as f64 / 1e6,
        up as f64 / 1e6
    );
    println!(
        "   upload/download = {:.2} % of decoded HTML, {:.2} % of gzip wire bytes   (target <= 5 %)",
        100.0 * up as f64 / raw as f64,
        100.0 * up as f64 / gz as f64
    );
    println!(
        "   jobs whose links the validator will not follow (records without links): {:.2} MB, \
         {:.2} % of decoded HTML, {:.2} % of gzip wire bytes",
        up_no_links as f64 / 1e6,
        100.0 * up_no_links as f64 / raw as f64,
        100.0 * up_no_links as f64 / gz as f64
    );
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn memory() {
    if !Path::new("/proc/self/status").exists() {
        println!("== memory: /proc not available, skipped");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let site = support::spawn_site(support::RobotsMode::NotFound).await;
        let urls: Vec<String> = (0..300).map(|i| site.url(&format!("/big/{i}"))).collect();
        let stub = support::spawn_stub(urls, 600_000).await;
        let dir = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gleaner"))
            .arg("--data")
            .arg(dir.path())
            .args([
                "run",
                "--exit-when-idle",
                "--validator",
                &stub.url(),
                "--allow-addr",
                &site.addr.to_string(),
            ])
            .env("GLEANER_CONFIG", dir.path().join("none.toml"))
            .env("GLEANER_MIN_DOMAIN_DELAY_MS", "0")
            .env("GLEANER_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let t0 = Instant::now();
        let mut samples = Vec::new();
        let mut hwm = 0;
        loop {
            if let Some(rss) = status_kb(pid, "VmRSS:") {
                samples.push(rss);
            }
            if let Some(h) = status_kb(pid, "VmHWM:") {
                hwm = h;
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if t0.elapsed() > Duration::from_secs(300) {
                let _ = child.start_kill();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pages = stub.state.lock().unwrap().credits.len();
        samples.sort_unstable();
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "== memory of `gleaner run` ({pages} pages of ~170 KB in {secs:.1} s, {} samples)",
            samples.len()
        );
        if samples.is_empty() {
            return;
        }
        println!(
            "   VmRSS median {:.1} MB, max {:.1} MB; VmHWM {:.1} MB   (target <= 60 MB)",
            pct(&samples.iter().map(|&k| k as f64).collect::<Vec<_>>(), 0.5) / 1024.0,
            *samples.last().unwrap() as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
    });
}

fn main() {
    // `cargo test --benches` passes --bench-free arguments; run everything either way.
    cpu_per_page();
    upload_ratio();
    memory();
}
