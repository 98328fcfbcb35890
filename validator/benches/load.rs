//! 1,000 concurrent simulated nodes on loopback against one in-process validator: all register
//! (at once, before the clock starts), then each runs a bounded number of rounds of lease →
//! submit batch → verify receipt, which is what is timed.
//!
//! `cargo bench -p gleaner-validator --bench load` (optional:
//! `-- NODES ROUNDS JOBS_PER_ROUND [FETCH_MS]`). Prints throughput and p50/p99 latencies; target
//! p99 ≤ 250 ms for a submit.
//!
//! By default nodes never pause (a closed loop: every node always has a request in flight, so
//! by Little's law a whole round takes about NODES / throughput whatever the server does). Where
//! that time is spent is the server's choice: it defers new leases while batches queue for its
//! checks (`Config::lease_defer_after_ms`), so nodes wait before fetching rather than after
//! submitting; a deferred node sleeps the answer's `retry_after_ms` and asks again, as the
//! collector does. `--no-defer` turns that off for comparison; the server's
//! `GLEANER_VALIDATOR_*` environment variables apply as they would to `gleaner-validator serve`.
//! A real
//! node spends seconds fetching its pages politely between lease and submit; `FETCH_MS` models
//! that: each node waits 0.5–1.5 × FETCH_MS (fixed per node and round) after a lease.

// A benchmark binary: failing loudly on setup errors is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use gleaner_protocol::api::{LeaseResponse, PATH_BATCHES, PATH_LEASE, PATH_REGISTER};
use gleaner_protocol::{BATCH_CONTENT_TYPE, Batch, Receipt, RequestAuth, SecretKey, random_nonce};
use gleaner_validator::server::{self, AppState};
use gleaner_validator::store::MAX_SEEDS_PER_REQUEST;
use gleaner_validator::testkit::{record_for, sample_text};
use gleaner_validator::{Clock, Config, CrawlRequest, Identity, Store, clock};

fn pct(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

async fn signed(
    http: &reqwest::Client,
    base: &str,
    key: &SecretKey,
    path: &str,
    body: Vec<u8>,
    ct: &str,
) -> reqwest::Response {
    let auth = RequestAuth::sign(
        key,
        "POST",
        path,
        clock::system_now_ms(),
        random_nonce().expect("nonce"),
        &body,
    );
    let mut r = http
        .post(format!("{base}{path}"))
        .header("content-type", ct)
        .body(body);
    for (k, v) in auth.headers() {
        r = r.header(k, v);
    }
    r.send().await.expect("request")
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let nodes: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let per_round: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4);
    let fetch_ms: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(0);
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The validator and the simulated nodes run on separate runtimes (their own threads), as
    // they would on separate machines: on one runtime the server's tasks would wait in the same
    // run queue as a thousand nodes' signing and compressing. They still share this machine's
    // cores, through the OS scheduler.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("validator")
        .enable_all()
        .build()
        .expect("server runtime");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("nodes")
        .enable_all()
        .build()
        .expect("runtime");
    // Only a handle goes into the nodes' runtime: the server's runtime is dropped out here,
    // outside any async context, after both are done.
    let validator_rt = server_rt.handle().clone();
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let total_jobs = nodes * rounds * per_round as usize;
        let seeds: Vec<String> = (0..total_jobs)
            .map(|i| format!("http://site{i}.example/"))
            .collect();
        // As many crawl requests as the seeds need (one may name at most MAX_SEEDS_PER_REQUEST).
        for chunk in seeds.chunks(MAX_SEEDS_PER_REQUEST) {
            store
                .add_crawl_request(
                    "bench",
                    &CrawlRequest {
                        seeds: chunk.to_vec(),
                        domains: vec![],
                        sitemaps: vec![],
                        max_pages: chunk.len() as u32,
                        max_depth: 0,
                    },
                    clock::system_now_ms(),
                )
                .expect("crawl");
        }
        let no_defer = std::env::args().any(|a| a == "--no-defer");
        let mut config = Config {
            domain_delay_ms: 0,
            per_ip_rps: 1_000_000,
            per_ip_burst: 1_000_000,
            max_concurrent_requests: 4_096,
            ..Config::default()
        };
        // The server's own environment variables apply (e.g. GLEANER_VALIDATOR_INGEST_WORKERS,
        // GLEANER_VALIDATOR_LEASE_DEFER_AFTER_MS), as they would to `gleaner-validator serve`.
        config.apply_env(|k| std::env::var(k).ok()).expect("GLEANER_VALIDATOR_* settings");
        if no_defer {
            config.lease_defer_after_ms = 0;
        }
        let state = AppState::new(
            store,
            Identity::from_key(SecretKey::from_bytes(&[200; 32])),
            config,
            Clock::System,
        );
        let handle = validator_rt
            .spawn(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                server::spawn(listener, state).expect("spawn")
            })
            .await
            .expect("server start");
        let base = format!("http://{}", handle.local_addr());
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(nodes)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        eprintln!("pre-generating texts for {total_jobs} jobs…");
        let texts: Arc<Vec<String>> =
            Arc::new((0..total_jobs).map(|i| sample_text(i as u64, 5_000)).collect());
        // Registration is once in a node's life, not part of its work loop: every node
        // registers (all at once) before the clock starts; what is measured is lease → submit
        // → receipt.
        let key_of = |n: usize| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(n as u64 + 1).to_le_bytes());
            SecretKey::from_bytes(&seed)
        };
        let registering = Instant::now();
        let mut registrations = Vec::with_capacity(nodes);
        for n in 0..nodes {
            let (http, base, key) = (http.clone(), base.clone(), key_of(n));
            registrations.push(tokio::spawn(async move {
                let reg = serde_json::json!({ "payout": key.public().to_string(), "client": "bench" });
                let r = signed(&http, &base, &key, PATH_REGISTER, serde_json::to_vec(&reg).expect("json"), "application/json").await;
                assert_eq!(r.status(), 200);
            }));
        }
        for r in registrations {
            r.await.expect("registration");
        }
        let registered_in = registering.elapsed();
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(nodes);
        for n in 0..nodes {
            let key = key_of(n);
            let http = http.clone();
            let base = base.clone();
            let texts = texts.clone();
            tasks.push(tokio::spawn(async move {
                let (mut lease_lat, mut submit_lat, mut records, mut errors) = (Vec::new(), Vec::new(), 0usize, 0usize);
                let (mut work_lat, mut deferred) = (Vec::new(), 0usize);
                for round in 0..rounds {
                    // As a node does: an empty answer with jobs still pending means "later"
                    // (the validator is deferring leases while batches queue for its checks).
                    let asked = Instant::now();
                    let lease = loop {
                        let t = Instant::now();
                        let body = serde_json::to_vec(&serde_json::json!({ "max": per_round })).expect("json");
                        let r = signed(&http, &base, &key, PATH_LEASE, body, "application/json").await;
                        if r.status() != 200 {
                            break None;
                        }
                        let lease: LeaseResponse = r.json().await.expect("lease json");
                        lease_lat.push(t.elapsed());
                        if lease.jobs.is_empty() && lease.pending > 0 {
                            deferred += 1;
                            tokio::time::sleep(Duration::from_millis(lease.retry_after_ms)).await;
                            continue;
                        }
                        break Some(lease);
                    };
                    let Some(lease) = lease else {
                        errors += 1;
                        continue;
                    };
                    if lease.jobs.is_empty() {
                        continue;
                    }
                    work_lat.push(asked.elapsed());
                    if fetch_ms > 0 {
                        // 0.5–1.5 × FETCH_MS, spread by node and round.
                        let spread = (n as u64 * 7_919 + round as u64 * 104_729) % 1_000;
                        let pause = fetch_ms / 2 + fetch_ms * spread / 1_000;
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                    let now = clock::system_now_ms();
                    let recs = lease
                        .jobs
                        .iter()
                        .enumerate()
                        .map(|(i, j)| {
                            let idx = (n * rounds + round) * per_round as usize + i;
                            record_for(&key, j, texts[idx % texts.len()].clone(), now)
                        })
                        .collect();
                    let batch = Batch::new(&key, now, recs);
                    let body = batch.encode().expect("encode");
                    let t = Instant::now();
                    let r = signed(&http, &base, &key, PATH_BATCHES, body, BATCH_CONTENT_TYPE).await;
                    if r.status() != 200 {
                        errors += 1;
                        continue;
                    }
                    let receipt: Receipt = r.json().await.expect("receipt json");
                    submit_lat.push(t.elapsed());
                    records += receipt.verdicts.len();
                }
                (lease_lat, submit_lat, records, errors, work_lat, deferred)
            }));
        }
        let (mut lease_lat, mut submit_lat, mut records, mut errors) = (Vec::new(), Vec::new(), 0, 0);
        let (mut work_lat, mut deferred) = (Vec::new(), 0);
        for t in tasks {
            let (l, s, r, e, w, d) = t.await.expect("task");
            lease_lat.extend(l);
            submit_lat.extend(s);
            records += r;
            errors += e;
            work_lat.extend(w);
            deferred += d;
        }
        let secs = started.elapsed().as_secs_f64();
        println!("load: {nodes} concurrent nodes × {rounds} rounds × up to {per_round} jobs, ~5 KB texts, loopback, fetch pause {fetch_ms} ms (0 = closed loop)");
        println!(
            "load: {nodes} registrations (all at once, before the clock) in {:.2} s",
            registered_in.as_secs_f64()
        );
        println!(
            "load: {:.2} s; {} submits ({:.0}/s), {records} records ({:.0}/s), {} leases, {errors} errors",
            secs,
            submit_lat.len(),
            submit_lat.len() as f64 / secs,
            records as f64 / secs,
            lease_lat.len()
        );
        println!(
            "load: lease p50 {:.1} ms p99 {:.1} ms; submit p50 {:.1} ms p99 {:.1} ms",
            pct(&mut lease_lat, 0.5),
            pct(&mut lease_lat, 0.99),
            pct(&mut submit_lat, 0.5),
            pct(&mut submit_lat, 0.99)
        );
        println!(
            "load: {deferred} lease answers deferred (\"later\": batches were queueing); from asking to holding jobs p50 {:.1} ms p99 {:.1} ms",
            pct(&mut work_lat, 0.5),
            pct(&mut work_lat, 0.99)
        );
        // The server's own view: time from a batch's signature check to its receipt (queueing
        // for a worker, the checks, the group commit), from its /metrics histogram.
        let metrics = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        let buckets = |name: &str| -> String {
            let prefix = format!("{name}_bucket{{le=\"");
            metrics
                .lines()
                .filter_map(|l| l.strip_prefix(prefix.as_str()))
                .map(|l| l.replacen("\"} ", " s: ", 1))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "load: server-side ingest time, cumulative: {}",
            buckets("gleaner_ingest_seconds")
        );
        // Time waiting for the store writer (the group before, and its commit), every write
        // together: batches, leases, and the registrations before the clock.
        println!(
            "load: writes waiting for the store writer, cumulative: {}",
            buckets("gleaner_writer_wait_seconds")
        );
        validator_rt
            .spawn(async move { handle.shutdown().await })
            .await
            .expect("join")
            .expect("shutdown");
    });
}
