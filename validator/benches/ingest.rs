//! Ingest throughput on one thread, all checks on: batch decode within limits, header and record
//! verification (ed25519 batch), freshness, quality rules, MinHash, then the store transaction
//! (lease checks, exact and LSH dedup, cross-check sampling, ledger, signed receipt).
//!
//! `cargo bench -p gleaner-validator --bench ingest` (optional: `-- RECORDS TEXT_BYTES`).
//! Prints figures; target ≥ 10,000 records/s with ~5 KB texts.

// A benchmark binary: failing loudly on setup errors is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use gleaner_protocol::{Batch, DecodeLimits, SecretKey};
use gleaner_validator::ingest::{self, IngestParams};
use gleaner_validator::store::LeaseParams;
use gleaner_validator::testkit::{record_for, sample_text};
use gleaner_validator::{Config, CrawlRequest, Store};

const BATCH_RECORDS: usize = 100;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let text_bytes: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let validator = SecretKey::from_bytes(&[200; 32]);
    let node = SecretKey::from_bytes(&[1; 32]);
    let now = 1_767_225_600_000i64;
    store
        .register_node(&node.public(), &node.public(), "bench", now)
        .expect("register");
    let seeds: Vec<String> = (0..n)
        .map(|i| format!("http://site{i}.example/page"))
        .collect();
    store
        .add_crawl_request(
            "bench",
            &CrawlRequest {
                seeds,
                domains: vec![],
                sitemaps: vec![],
                max_pages: n as u32,
                max_depth: 0,
            },
            now,
        )
        .expect("crawl");
    let lp = LeaseParams {
        ttl_ms: 3_600_000,
        max_per_domain: 1,
        domain_delay_ms: 0,
        max_open_per_node: u32::MAX,
    };
    let mut jobs = Vec::with_capacity(n);
    while jobs.len() < n {
        let got = store
            .lease(&node.public(), 64, now, &lp)
            .expect("lease")
            .jobs;
        if got.is_empty() {
            break;
        }
        jobs.extend(got);
    }
    eprintln!("preparing {} records of ~{text_bytes} bytes…", jobs.len());
    let bodies: Vec<Vec<u8>> = jobs
        .chunks(BATCH_RECORDS)
        .enumerate()
        .map(|(b, chunk)| {
            let recs = chunk
                .iter()
                .enumerate()
                .map(|(i, j)| {
                    record_for(
                        &node,
                        j,
                        sample_text((b * BATCH_RECORDS + i) as u64, text_bytes),
                        now,
                    )
                })
                .collect();
            Batch::new(&node, now, recs).encode().expect("encode")
        })
        .collect();
    // Per-stage cost per record, measured on the first batch, for the breakdown.
    {
        let limits = DecodeLimits::default();
        let batch = ingest::decode(&bodies[0], &limits).expect("decode");
        let k = batch.records.len().max(1) as f64;
        let reps = 20;
        let time = |f: &mut dyn FnMut()| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / reps as f64 / k
        };
        let dec = time(&mut || {
            std::hint::black_box(ingest::decode(&bodies[0], &limits).expect("decode"));
        });
        let hdr = time(&mut || {
            std::hint::black_box(batch.verify_header()).expect("header");
        });
        let ver = time(&mut || {
            std::hint::black_box(gleaner_protocol::verify_records(&batch.records));
        });
        let q = time(&mut || {
            for r in &batch.records {
                std::hint::black_box(gleaner_validator::quality::assess(&r.text, "en", &[]));
            }
        });
        let l = time(&mut || {
            for r in &batch.records {
                std::hint::black_box(whatlang::detect(&r.text[..512]));
            }
        });
        let m = time(&mut || {
            for r in &batch.records {
                std::hint::black_box(gleaner_validator::dedup::MinHash::of(&r.text));
            }
        });
        let x = time(&mut || {
            for r in &batch.records {
                std::hint::black_box(gleaner_validator::dedup::exact_key(&r.text));
            }
        });
        let all = time(&mut || {
            std::hint::black_box(
                ingest::prepare(&batch, &node.public(), now, &[]).expect("prepare"),
            );
        });
        println!(
            "stages (µs/record): decode {dec:.1}, verify header {hdr:.1}, verify records {ver:.1}, \
             quality {q:.1} (language {l:.1}), minhash {m:.1}, exact key {x:.1}; prepare in all {all:.1}"
        );
    }
    let c = Config::default();
    let limits = DecodeLimits::default();
    let params = IngestParams {
        cross_check_rate: c.cross_check_rate,
        new_node_cross_check_rate: c.cross_check_rate,
        domain_delay_ms: 0,
    };
    let (mut cpu, mut db) = (Duration::ZERO, Duration::ZERO);
    let (mut accepted, mut total) = (0usize, 0usize);
    let started = Instant::now();
    for body in &bodies {
        let t = Instant::now();
        let batch = ingest::decode(body, &limits).expect("decode");
        let (id, prepared) =
            ingest::prepare(&batch, &node.public(), now, &c.languages).expect("prepare");
        let t2 = Instant::now();
        let out = store
            .ingest(id, &node.public(), &prepared, now, &validator, &params)
            .expect("ingest");
        let t3 = Instant::now();
        cpu += t2 - t;
        db += t3 - t2;
        if let ingest::IngestOutcome::Fresh { receipt, .. } = out {
            total += receipt.verdicts.len();
            accepted += receipt
                .verdicts
                .iter()
                .filter(|v| v.verdict == gleaner_protocol::Verdict::Accepted)
                .count();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "ingest: {total} records ({accepted} accepted) of ~{text_bytes} B in {} batches of {BATCH_RECORDS}",
        bodies.len()
    );
    println!(
        "ingest: {secs:.2} s total, {:.0} records/s on one thread",
        total as f64 / secs
    );
    println!(
        "ingest: verify+quality+minhash {:.1} µs/record, store transaction {:.1} µs/record",
        cpu.as_secs_f64() * 1e6 / total.max(1) as f64,
        db.as_secs_f64() * 1e6 / total.max(1) as f64
    );
}
