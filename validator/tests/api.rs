//! The validator over a real socket on 127.0.0.1 with a real SQLite file: the node protocol end to
//! end, and every kind of bad input refused with a problem document that changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use gleaner_protocol::api::{
    ClaimProof, Job, LeaseResponse, NodeStatus, PATH_BATCHES, PATH_LEASE, PATH_ME, PATH_REGISTER,
    PATH_RELEASE, PATH_REPORT, PATH_REVOCATIONS, Problem, RegisterResponse, Revocation,
};
use gleaner_protocol::{
    BATCH_CONTENT_TYPE, Batch, EpochRoot, PublicKey, Receipt, RequestAuth, SecretKey, Verdict,
    verify_reward_proof,
};
use gleaner_validator::server::{self, AppState, ServerHandle};
use gleaner_validator::store::UNCLAIMABLE_WAIT_MS;
use gleaner_validator::testkit::{record_for, sample_text};
use gleaner_validator::{Clock, Config, CrawlRequest, Identity, Store};
use serde_json::{Value, json};

const ADMIN: &str = "admin-secret";
const LAB: &str = "lab-key";
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;

struct Net {
    _dir: tempfile::TempDir,
    handle: ServerHandle,
    state: AppState,
    clock: Clock,
    http: reqwest::Client,
    nonce: std::sync::atomic::AtomicU64,
}

fn key(n: u8) -> SecretKey {
    SecretKey::from_bytes(&[n; 32])
}

async fn start(tune: impl FnOnce(&mut Config)) -> Net {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        admin_token: ADMIN.into(),
        lab_tokens: vec![LAB.into()],
        domain_delay_ms: 0,
        per_ip_rps: 10_000,
        per_ip_burst: 10_000,
        per_node_rps: 1_000,
        per_node_burst: 1_000,
        cross_check_rate: 0.0,
        new_node_cross_check_rate: 0.0,
        // No audits unless a test says so: which agreed checks are audited is a keyed hash of
        // record ids, which carry random lease ids, so any other rate makes a test's outcomes
        // vary from run to run (`agreed_checks_are_audited_by_the_validators_own_fetch`).
        audit_rate: 0.0,
        // Tie-breaks by third nodes unless a test says otherwise (the validator's own fetch
        // needs a site it may reach: `disputes_are_settled_by_the_validators_own_fetch`).
        tiebreak_interval_secs: 0,
        ..Config::default()
    };
    tune(&mut config);
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let clock = Clock::manual(T0);
    let state = AppState::new(store, Identity::from_key(key(200)), config, clock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = server::spawn(listener, state.clone()).unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    Net {
        _dir: dir,
        handle,
        state,
        clock,
        http,
        nonce: std::sync::atomic::AtomicU64::new(1),
    }
}

impl Net {
    /// `k`'s row in the validator's node table, as it stands now.
    fn node(&self, k: &SecretKey) -> gleaner_validator::store::NodeRow {
        self.state
            .store()
            .nodes()
            .unwrap()
            .into_iter()
            .find(|n| n.node == k.public())
            .unwrap()
    }

    /// A connection of the test's own to the validator's database.
    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self._dir.path().join(gleaner_validator::store::DB_FILE))
            .unwrap()
    }

    /// The outcome of the cross-check of `url` and who made its third fetch.
    fn check_of(&self, url: &str) -> (String, Option<String>) {
        self.db()
            .query_row(
                "SELECT outcome, tiebreak_node FROM cross_checks WHERE url = ?1",
                [url],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    }

    /// Whether a record of `url` is in the accepted set (what datasets are made of).
    fn accepted(&self, url: &str) -> bool {
        self.state
            .store()
            .accepted_records(None)
            .unwrap()
            .iter()
            .any(|r| r.record.url == url)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.handle.local_addr())
    }

    /// `GET path` with no credentials, as JSON; fails unless it answered 200.
    async fn public_json(&self, path: &str) -> Value {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    /// Stops the server (in-flight requests finish, its timers stop) and starts it again on the
    /// same state and database, at a new address: a restart, whose timers make their first
    /// pass at once.
    async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let old = std::mem::replace(
            &mut self.handle,
            server::spawn(listener, self.state.clone()).unwrap(),
        );
        old.shutdown().await.unwrap();
    }

    fn auth(&self, key: &SecretKey, method: &str, path: &str, body: &[u8], ts: i64) -> RequestAuth {
        let n = self.nonce.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&n.to_le_bytes());
        RequestAuth::sign(key, method, path, ts, nonce, body)
    }

    fn request(
        &self,
        auth: Option<&RequestAuth>,
        method: &str,
        path: &str,
        body: Vec<u8>,
        ct: &str,
    ) -> reqwest::RequestBuilder {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self.http.request(m, self.url(path)).body(body);
        if !ct.is_empty() {
            r = r.header("content-type", ct);
        }
        if let Some(a) = auth {
            for (k, v) in a.headers() {
                r = r.header(k, v);
            }
        }
        r
    }

    async fn signed(
        &self,
        key: &SecretKey,
        method: &str,
        path: &str,
        body: Vec<u8>,
        ct: &str,
    ) -> reqwest::Response {
        let a = self.auth(key, method, path, &body, self.clock.now_ms());
        self.request(Some(&a), method, path, body, ct)
            .send()
            .await
            .unwrap()
    }

    async fn post_json(&self, key: &SecretKey, path: &str, v: Value) -> reqwest::Response {
        self.signed(
            key,
            "POST",
            path,
            serde_json::to_vec(&v).unwrap(),
            "application/json",
        )
        .await
    }

    /// The node's standing (`GET /v1/nodes/me`), signed by `key`.
    async fn me<T: serde::de::DeserializeOwned>(&self, key: &SecretKey) -> T {
        let r = self.signed(key, "GET", PATH_ME, vec![], "").await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn register(&self, key: &SecretKey) -> RegisterResponse {
        self.register_paid_to(key, &key.public()).await
    }

    /// Registers `key` with `payout` as its payout key.
    async fn register_paid_to(&self, key: &SecretKey, payout: &PublicKey) -> RegisterResponse {
        let r = self
            .post_json(
                key,
                PATH_REGISTER,
                json!({ "payout": payout.to_string(), "client": "test/1" }),
            )
            .await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn lease(&self, key: &SecretKey, max: u32) -> LeaseResponse {
        let r = self.post_json(key, PATH_LEASE, json!({ "max": max })).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn submit(&self, key: &SecretKey, batch: &Batch) -> reqwest::Response {
        self.signed(
            key,
            "POST",
            PATH_BATCHES,
            batch.encode().unwrap(),
            BATCH_CONTENT_TYPE,
        )
        .await
    }

    async fn metrics(&self) -> String {
        let r = self.http.get(self.url("/metrics")).send().await.unwrap();
        r.text().await.unwrap()
    }
    fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(ADMIN)
    }

    /// The store's own check (`gleaner-validator check`) finds nothing wrong.
    fn assert_store_checks(&self) {
        let report = self
            .state
            .store()
            .check(&self.state.identity().public())
            .unwrap();
        assert!(report.ok(), "{report:#?}");
    }

    /// A page of `node`'s check history (`query` as `?after=…&limit=…`, or empty) read with
    /// the admin token, and the `Link` to the next page if the server gave one.
    async fn checks_page(&self, node: &SecretKey, query: &str) -> (Vec<Value>, Option<String>) {
        let path = format!("/v1/admin/nodes/{}/checks{query}", node.public());
        let r = self
            .admin(reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let link = r
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_string());
        (r.json().await.unwrap(), link)
    }

    /// `node`'s whole check history, as (verdict, role, outcome) of each row, oldest first.
    async fn checks_of(&self, node: &SecretKey) -> Vec<(String, String, String)> {
        let (rows, link) = self.checks_page(node, "").await;
        assert_eq!(link, None);
        rows.iter()
            .map(|j| {
                let field = |f: &str| j[f].as_str().unwrap().to_string();
                (field("verdict"), field("role"), field("outcome"))
            })
            .collect()
    }

    async fn crawl(&self, seeds: &[&str]) -> Value {
        let r = self
            .admin(reqwest::Method::POST, "/v1/admin/crawl-requests")
            .json(&json!({ "seeds": seeds, "max_pages": 100, "max_depth": 2 }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    fn ledger_len(&self) -> u64 {
        self.state.store().ledger_len().unwrap()
    }

    fn batch(&self, key: &SecretKey, jobs: &[Job], seed: u64) -> Batch {
        let recs = jobs
            .iter()
            .enumerate()
            .map(|(i, j)| {
                record_for(
                    key,
                    j,
                    sample_text(seed + i as u64, 3000),
                    self.clock.now_ms(),
                )
            })
            .collect();
        Batch::new(key, self.clock.now_ms(), recs)
    }

    /// Submits `batch` of `key` on another task, for a submit that waits in a queue.
    fn submit_in_background(
        &self,
        key: &SecretKey,
        batch: &Batch,
    ) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
        let body = batch.encode().unwrap();
        let auth = self.auth(key, "POST", PATH_BATCHES, &body, self.clock.now_ms());
        let request = self.request(Some(&auth), "POST", PATH_BATCHES, body, BATCH_CONTENT_TYPE);
        tokio::spawn(request.send())
    }

    /// Registers `key`, crawls `urls` (one site each) and leases it one job: the start of the
    /// lease-gate tests.
    async fn one_job_of(&self, key: &SecretKey, urls: &[&str]) -> LeaseResponse {
        self.register(key).await;
        self.crawl(urls).await;
        let first = self.lease(key, 1).await;
        assert_eq!(first.jobs.len(), 1);
        first
    }

    async fn healthy(&self) {
        let r = self.http.get(self.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
}

/// A deferred lease: no jobs, a retry time spread over 0.5–1.5 s, and jobs still pending, so
/// that the node reads it as "later", not "done".
fn assert_later(later: &LeaseResponse) {
    assert!(later.jobs.is_empty(), "{later:?}");
    assert!((500..1_500).contains(&later.retry_after_ms), "{later:?}");
    assert!(later.pending >= 1, "later, not done: {later:?}");
}

async fn problem(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = r.text().await.unwrap();
    assert_eq!(ct, "application/problem+json", "status {status}: {body}");
    let p: Problem = serde_json::from_str(&body).unwrap();
    assert_eq!(p.status, status);
    assert!(!p.detail.is_empty());
    (status, p.code)
}

#[tokio::test]
async fn node_lifecycle_receipts_ledger_and_epoch_proofs() {
    let net = start(|_| {}).await;
    let validator = key(200).public();
    let a = key(1);
    let added = net
        .crawl(&[
            "http://site-a.example/",
            "http://site-b.example/",
            "http://site-c.example/x#frag",
        ])
        .await;
    assert_eq!(added["queued"], 3);
    let reg = net.register(&a).await;
    assert_eq!(reg.validator, validator);
    assert_eq!(reg.credibility, 0.0);

    let leased = net.lease(&a, 10).await;
    assert_eq!(leased.jobs.len(), 3, "one job per free domain");
    assert!(
        leased
            .jobs
            .iter()
            .any(|j| j.url == "http://site-c.example/x")
    );
    let mut batch = net.batch(&a, &leased.jobs, 1);
    // An outlink inside the scope joins the frontier; one outside does not.
    batch = {
        let mut recs: Vec<_> = batch.records.clone();
        let j = &leased.jobs[0];
        let domain_url = j.url.trim_end_matches('/').to_string();
        let mut d = gleaner_protocol::RecordDraft {
            lease_id: j.lease_id.clone(),
            url: j.url.clone(),
            final_url: j.url.clone(),
            fetched_at_ms: net.clock.now_ms(),
            status: 200,
            content_type: "text/html".into(),
            charset: "utf-8".into(),
            wire_bytes: 9000,
            body_bytes: 9000,
            truncated: false,
            raw_digest: gleaner_protocol::Digest::of(b"x"),
            title: "t".into(),
            text: sample_text(1, 3000),
            lang: "en".into(),
            robots: gleaner_protocol::RobotsVerdict::Allowed,
            crawl_delay_ms: 0,
            outlinks: vec![
                format!("{domain_url}/next"),
                "http://elsewhere.example/".into(),
            ],
        };
        d.text = sample_text(1, 3000);
        recs[0] = d.sign(&a);
        Batch::new(&a, net.clock.now_ms(), recs)
    };
    let ledger_before = net.ledger_len();
    let r = net.submit(&a, &batch).await;
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    let receipt: Receipt = serde_json::from_slice(&bytes).unwrap();
    receipt.verify_for(&validator, &batch.id()).unwrap();
    assert_eq!(receipt.scoring, "points/v1");
    assert_eq!(receipt.epoch, 1);
    assert!(
        receipt
            .verdicts
            .iter()
            .all(|v| v.verdict == Verdict::Accepted),
        "{receipt:?}"
    );
    assert!(receipt.points > 0);
    assert_eq!(net.ledger_len(), ledger_before + 1);

    // Resubmitting returns the same receipt, byte for byte, and credits nothing.
    let again = net.submit(&a, &batch).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.bytes().await.unwrap(), bytes);
    assert_eq!(net.ledger_len(), ledger_before + 1);

    // The in-scope outlink was queued.
    let stats: Value = net
        .admin(reqwest::Method::GET, "/v1/admin/stats")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["frontier_queued"], 1, "{stats}");
    assert_eq!(stats["records_accepted"], 3);

    // The node's standing.
    let me = net.signed(&a, "GET", PATH_ME, vec![], "").await;
    assert_eq!(me.status(), 200);
    let me: NodeStatus = me.json().await.unwrap();
    assert_eq!(me.points_pending, receipt.points);
    assert_eq!(me.points_total, receipt.points, "one batch credited so far");
    assert_eq!(me.epoch, 1);

    // Epoch close over the admin API; the proof verifies with the protocol crate alone.
    let root: EpochRoot = net
        .admin(reqwest::Method::POST, "/v1/admin/epochs/close")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    root.verify().unwrap();
    assert_eq!(root.total, receipt.points);
    let proof: ClaimProof = net
        .http
        .get(net.url(&format!("/v1/epochs/1/proof/{}", a.public())))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let siblings: Vec<[u8; 32]> = proof.proof.iter().map(|d| *d.as_bytes()).collect();
    verify_reward_proof(proof.epoch.root.as_bytes(), &proof.leaf, &siblings).unwrap();
    assert_eq!(proof.leaf.amount, receipt.points);
    let missing = net
        .http
        .get(net.url(&format!("/v1/epochs/1/proof/{}", key(9).public())))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(missing).await, (404, "not_found".into()));

    // The read API for datasets.
    let accepted = net.state.store().accepted_records(None).unwrap();
    assert_eq!(accepted.len(), 3);
    assert_eq!(net.state.store().accepted_count().unwrap(), 3);
    assert!(
        accepted
            .windows(2)
            .all(|w| w[0].record.id() < w[1].record.id())
    );
    assert_eq!(*accepted[0].receipt, receipt);
    assert_eq!(accepted[0].minhash_cluster_size, 1);
    assert!(accepted[0].quality.contains_key("gopher_words"));
    assert!(
        net.state
            .store()
            .accepted_records(Some(2))
            .unwrap()
            .is_empty()
    );

    // Public documents.
    let doc = net.public_json("/openapi.json").await;
    assert!(doc["paths"]["/v1/batches"]["post"].is_object());
    assert!(doc["components"]["schemas"]["Receipt"].is_object());
    let metrics = net.metrics().await;
    assert!(
        metrics.contains("gleaner_batches_total{outcome=\"ingested\"} 1"),
        "{metrics}"
    );
    // The three accepted records are in the near-duplicate index, and its memory is reported.
    assert!(
        metrics.contains("\ngleaner_band_index_records 3\n"),
        "{metrics}"
    );
    let bytes: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("gleaner_band_index_bytes "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(bytes >= 3.0 * 14.0 * 17.0, "{metrics}");
    // Every write went through the store writer (at least the registration, the lease and the
    // batch), and each one's wait for it is in the histogram.
    let writes: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("gleaner_writer_wait_seconds_count "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(writes >= 3, "{metrics}");
    assert!(
        metrics.contains(&format!(
            "gleaner_writer_wait_seconds_bucket{{le=\"+Inf\"}} {writes}\n"
        )),
        "{metrics}"
    );
    net.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn quality_and_duplicates_get_verdicts_not_points() {
    let net = start(|_| {}).await;
    let a = key(1);
    net.register(&a).await;
    net.crawl(&[
        "http://q1.example/",
        "http://q2.example/",
        "http://q3.example/",
        "http://q4.example/",
    ])
    .await;
    let jobs = net.lease(&a, 10).await.jobs;
    assert_eq!(jobs.len(), 4);
    let now = net.clock.now_ms();
    let original = sample_text(7, 4000);
    let near = format!("Updated 12 March. {original} Share this page. 1,024 views.");
    let recs = vec![
        record_for(&a, &jobs[0], original.clone(), now),
        record_for(&a, &jobs[1], original.to_uppercase(), now),
        record_for(&a, &jobs[2], near, now),
        record_for(
            &a,
            &jobs[3],
            format!("{original}\n\nLorem ipsum dolor sit amet."),
            now,
        ),
    ];
    let r = net.submit(&a, &Batch::new(&a, now, recs)).await;
    assert_eq!(r.status(), 200);
    let receipt: Receipt = r.json().await.unwrap();
    let got: Vec<(Verdict, &str)> = receipt
        .verdicts
        .iter()
        .map(|v| (v.verdict, v.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (Verdict::Accepted, "ok"),
            (Verdict::Duplicate, "exact_duplicate"),
            (Verdict::Duplicate, "near_duplicate"),
            (Verdict::Rejected, "c4_lorem_ipsum"),
        ]
    );
    assert!(receipt.verdicts[1..].iter().all(|v| v.points == 0));
    let accepted = net.state.store().accepted_records(None).unwrap();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].minhash_cluster_size, 3);
}

#[tokio::test]
async fn politeness_one_lease_per_domain_and_expiry_reissues() {
    let net = start(|c| {
        c.domain_delay_ms = 5_000;
        c.lease_ttl_ms = 60_000;
    })
    .await;
    let (a, b) = (key(1), key(2));
    net.register(&a).await;
    net.register(&b).await;
    net.crawl(&[
        "http://news.example.co.uk/1",
        "http://www.example.co.uk/2",
        "http://other.example/",
    ])
    .await;
    let ja = net.lease(&a, 10).await;
    assert_eq!(ja.jobs.len(), 2, "example.co.uk is one registered domain");
    let jb = net.lease(&b, 10).await;
    assert!(jb.jobs.is_empty());
    assert!(jb.retry_after_ms > 0);
    // A release makes the job available at once.
    let uk = ja.jobs.iter().find(|j| j.url.contains("co.uk")).unwrap();
    let r = net
        .post_json(&a, PATH_RELEASE, json!({ "lease_ids": [uk.lease_id] }))
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["accepted"], 1);
    let jb = net.lease(&b, 10).await;
    assert_eq!(jb.jobs.len(), 1);
    // b lets it expire: after the TTL it goes to a again, and b's late record is refused.
    net.clock.advance_ms(61_000);
    let rest = net.lease(&a, 10).await;
    assert!(
        rest.jobs.is_empty(),
        "the domain rests after an expired lease too"
    );
    assert_eq!(rest.retry_after_ms, 5_000);
    net.clock.advance_ms(5_000);
    let ja2 = net.lease(&a, 10).await;
    assert_eq!(ja2.jobs.len(), 2, "both expired jobs are reissued: {ja2:?}");
    let late = net.batch(&b, &jb.jobs, 50);
    let before = net.ledger_len();
    assert_eq!(
        problem(net.submit(&b, &late).await).await,
        (409, "lease_expired".into())
    );
    assert_eq!(net.ledger_len(), before);
    // A failure report with a crawl delay is accepted; a foreign lease is not counted.
    let r = net
        .post_json(
            &a,
            PATH_REPORT,
            json!({ "failures": [
                { "lease_id": ja2.jobs[0].lease_id, "reason": "timeout", "detail": "slow",
                  "status": null, "crawl_delay_ms": 10000 },
                { "lease_id": "nope", "reason": "other", "detail": "", "status": null,
                  "crawl_delay_ms": null }
            ]}),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["accepted"], 1);
}

/// Waits (up to 10 s) until `cond` holds.
async fn until(cond: impl Fn() -> bool) {
    for _ in 0..5_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    panic!("condition not reached in 10 s");
}

/// While batches queue for the ingest workers, a lease is answered "later" (no jobs, a retry
/// time, jobs still pending) without touching the queue of jobs; batches keep being accepted;
/// once the queue is gone, leases go out again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_wait_while_batches_queue_for_the_checks() {
    let net = start(|c| {
        c.ingest_workers = 1;
        c.lease_defer_after_ms = 20;
    })
    .await;
    let a = key(1);
    let first = net
        .one_job_of(
            &a,
            &[
                "http://one.example/",
                "http://two.example/",
                "http://three.example/",
            ],
        )
        .await;
    let gate = net.state.ingest_gate();
    assert_eq!(gate.workers(), 1);

    // The one worker is busy; batches q1 and q2 queue for it. Whichever gets it when it frees
    // keeps it (the gate counts a batch as waiting just before it takes its place in line, so
    // the order between the two is not for the test to assume) while the other queues behind.
    let busy = gate.admit().await.expect("slot");
    let (release, hold) = tokio::sync::watch::channel(false);
    let queue = |mut hold: tokio::sync::watch::Receiver<bool>| {
        let state = net.state.clone();
        tokio::spawn(async move {
            let slot = state.ingest_gate().admit().await.expect("slot");
            let _ = hold.wait_for(|go| *go).await;
            slot.waited
        })
    };
    let q1 = queue(hold.clone());
    until(|| gate.waiting() == 1).await;
    let q2 = queue(hold);
    until(|| gate.waiting() == 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    assert!(!gate.defer_leases(), "the last batch admitted did not wait");
    drop(busy);
    until(|| gate.waiting() == 1).await;
    assert!(gate.defer_leases());

    let later = net.lease(&a, 5).await;
    assert_later(&later);
    let metrics = net.metrics().await;
    assert!(
        metrics.contains(r#"gleaner_leases_deferred_total{reason="checks"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("gleaner_ingest_waiting 1"), "{metrics}");

    // Work already leased is never turned away: the batch queues and gets its receipt.
    let batch = net.batch(&a, &first.jobs, 1);
    let submit = net.submit_in_background(&a, &batch);
    until(|| gate.waiting() == 2).await;
    release.send(true).unwrap();
    for q in [q1, q2] {
        assert!(q.await.unwrap() > std::time::Duration::from_millis(20));
    }
    let r = submit.await.unwrap().unwrap();
    assert_eq!(r.status(), 200);
    let receipt: Receipt = r.json().await.unwrap();
    assert_eq!(receipt.verdicts.len(), 1);

    // Nothing queues now: the two jobs left go out, none lost to the deferral.
    assert!(!gate.defer_leases());
    let rest = net.lease(&a, 5).await;
    assert_eq!(rest.jobs.len(), 2, "{rest:?}");
}

/// While the store's writer is stuck (here, an operation holds it), a lease is answered "later"
/// once the oldest operation queued behind it has waited past the target, without joining the
/// queue; the batch already queued keeps its place and gets its receipt, and once the queue is
/// gone, leases go out again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_wait_while_the_store_writer_is_behind() {
    // A target long enough that no stall of a loaded machine between seeing the batch queued
    // and asking whether the writer is behind passes it.
    let net = start(|c| c.lease_defer_after_ms = 1_000).await;
    let a = key(1);
    let first = net
        .one_job_of(
            &a,
            &[
                "http://w1.example/",
                "http://w2.example/",
                "http://w3.example/",
            ],
        )
        .await;

    // An operation that holds the writer until told to let go.
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let (entered, inside) = tokio::sync::oneshot::channel::<()>();
    let holder = {
        let state = net.state.clone();
        tokio::spawn(async move {
            state
                .write(move |_| {
                    let _ = entered.send(());
                    let _ = hold.recv();
                })
                .await
        })
    };
    inside.await.unwrap();
    assert_eq!(net.state.writer_queue(), (0, None), "nothing waits yet");
    assert!(!net.state.writer_behind());

    // A batch is checked and queues for the writer; once it has waited past the target, the
    // writer is behind.
    let batch = net.batch(&a, &first.jobs, 1);
    let submit = net.submit_in_background(&a, &batch);
    until(|| net.state.writer_queue().0 == 1).await;
    assert!(!net.state.writer_behind(), "not yet past the target");
    until(|| net.state.writer_behind()).await;
    let (_, oldest) = net.state.writer_queue();
    assert!(oldest.unwrap() > std::time::Duration::from_millis(1_000));

    // A lease now is answered at once, with no jobs and a retry time, and does not queue (a
    // lease that joined the queue would wait for the holder: the timeout says so).
    let later = tokio::time::timeout(std::time::Duration::from_secs(5), net.lease(&a, 5))
        .await
        .expect("answered without waiting for the writer");
    assert_later(&later);
    assert_eq!(
        net.state.writer_queue().0,
        1,
        "the lease did not join the queue"
    );
    let metrics = net.metrics().await;
    assert!(
        metrics.contains(r#"gleaner_leases_deferred_total{reason="writer"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("gleaner_writer_queued 1"), "{metrics}");
    assert!(
        !metrics.contains("gleaner_writer_oldest_wait_seconds 0\n"),
        "{metrics}"
    );

    // The writer lets go: the queued batch is stored and receipted, the queue is empty, and
    // the two jobs left go out.
    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    let r = submit.await.unwrap().unwrap();
    assert_eq!(r.status(), 200);
    let receipt: Receipt = r.json().await.unwrap();
    assert_eq!(receipt.verdicts.len(), 1);
    assert_eq!(net.state.writer_queue(), (0, None));
    assert!(!net.state.writer_behind());
    let rest = net.lease(&a, 5).await;
    assert_eq!(rest.jobs.len(), 2, "{rest:?}");
    let metrics = net.metrics().await;
    assert!(metrics.contains("gleaner_writer_queued 0"), "{metrics}");
    assert!(
        metrics.contains("gleaner_writer_oldest_wait_seconds 0\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn cross_check_catches_a_fabricating_node_and_penalises_it() {
    let (liar, checker, judge) = (key(1), key(2), key(3));
    let net = start_checking_everything(&[&liar, &checker, &judge]).await;
    let url = "http://fraud.example/page";
    let receipt = fetch_primary(&net, &liar, url, &sample_text(666, 3000)).await;
    assert!(receipt.points > 0);
    // A lab exports the dataset now, while the fabricated record stands accepted.
    let exports = tempfile::tempdir().unwrap();
    let exported = gleaner_validator::dataset::export_from_store(
        net.state.store(),
        net.state.identity().secret(),
        exports.path(),
        None,
        None,
    )
    .unwrap();
    assert_eq!(exported.manifest.rows, 1);
    // The liar cannot check itself.
    assert!(net.lease(&liar, 5).await.jobs.is_empty());
    let real = sample_text(1234, 3000);
    fetch_check(&net, &checker, url, &real).await;
    // Disagreement: a third node breaks the tie.
    assert!(net.lease(&checker, 5).await.jobs.is_empty());
    fetch_check(&net, &judge, url, &format!("{real} Posted today.")).await;

    let nodes = net.state.store().nodes().unwrap();
    let row = |k: &SecretKey| nodes.iter().find(|n| n.node == k.public()).unwrap().clone();
    assert_eq!(row(&liar).checks_failed, 1);
    assert_eq!(row(&liar).credibility, 0.0);
    assert_eq!(row(&checker).checks_passed, 1);
    assert!(row(&checker).credibility > 0.1);
    assert_eq!(
        row(&liar).points_total,
        0,
        "the fabricated record's points were clawed back"
    );
    let ledger = net.state.store().ledger(&liar.public()).unwrap();
    assert_eq!(ledger.last().unwrap().kind, "penalty");
    // Each node's check history says what the check found of it and what that did.
    let history = |part: &str, verdict: &str| {
        vec![(
            verdict.to_string(),
            part.to_string(),
            "check_upheld".to_string(),
        )]
    };
    assert_eq!(net.checks_of(&liar).await, history("primary", "failed"));
    assert_eq!(net.checks_of(&checker).await, history("checker", "passed"));
    assert_eq!(net.checks_of(&judge).await, history("tiebreak", "passed"));
    let (rows, _) = net.checks_page(&liar, "").await;
    let doc = net.public_json("/openapi.json").await;
    assert_described(&doc, "Judgement", &rows[0]);
    let (liar_row, checker_row) = (&rows[0], &net.checks_page(&checker, "").await.0[0]);
    assert_eq!(liar_row["url"], url);
    assert_eq!(
        liar_row["check"], checker_row["check"],
        "one check judged both"
    );
    assert_eq!(liar_row["credibility_after"], 0.0);
    let similarity = liar_row["similarity"].as_f64().unwrap();
    assert!(similarity < 0.5, "{liar_row}");
    let (before, after) = (
        checker_row["credibility_before"].as_f64().unwrap(),
        checker_row["credibility_after"].as_f64().unwrap(),
    );
    assert!(before < after, "{checker_row}");
    assert_eq!(after, row(&checker).credibility);
    // The store's own check holds each history to its node's row.
    net.assert_store_checks();
    // Monitoring sees the checks: one failure (the liar), two passes (checker and judge).
    let metrics = net.metrics().await;
    for line in [
        "gleaner_node_checks_passed 2",
        "gleaner_node_checks_failed 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
    // Only with the admin token, and only for a node key.
    let path = format!("/v1/admin/nodes/{}/checks", liar.public());
    assert_eq!(
        problem(net.http.get(net.url(&path)).send().await.unwrap()).await,
        (401, "bad_token".into())
    );
    let bad = net
        .admin(reqwest::Method::GET, "/v1/admin/nodes/not-a-key/checks")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(bad).await.0, 400);
    // The liar's counts are its records as they stand now: the one it was credited for, revoked.
    let counts = |r: &gleaner_validator::store::NodeRow| {
        [
            r.records_accepted,
            r.records_duplicate,
            r.records_rejected,
            r.records_revoked,
        ]
    };
    assert_eq!(counts(&row(&liar)), [0, 0, 0, 1]);
    // The liar's receipt said accepted and never changes: its standing tells it otherwise.
    let me: NodeStatus = net.me(&liar).await;
    assert_eq!((me.records_revoked, me.points_total), (1, 0));
    assert_eq!((me.checks_passed, me.checks_failed), (0, 1));
    let me: NodeStatus = net.me(&checker).await;
    assert_eq!((me.checks_passed, me.checks_failed), (1, 0));
    assert_eq!(counts(&row(&checker))[3], 0, "{:?}", counts(&row(&checker)));
    // The network's counts are the nodes' summed.
    let stats = net.state.store().network_stats(0).unwrap();
    let network = [
        stats.records_accepted,
        stats.records_duplicate,
        stats.records_rejected,
        stats.records_revoked,
    ];
    let summed = nodes.iter().map(counts).fold([0; 4], |mut sum, c| {
        for (s, c) in sum.iter_mut().zip(c) {
            *s += c;
        }
        sum
    });
    assert_eq!(summed, network);
    assert_eq!(stats.records_revoked, 1);
    assert_eq!(
        stats.records_total,
        network.iter().sum::<u64>(),
        "every record has one of the four verdicts"
    );
    // Anyone can read the revocation: a lab whose dataset was exported before holds a row
    // the validator no longer stands by, and finds it by the record's id.
    let get = |path: String| {
        let r = net.http.get(net.url(&path)).send();
        async move { r.await.unwrap() }
    };
    let r = get(PATH_REVOCATIONS.to_string()).await;
    assert_eq!(r.status(), 200);
    let revoked: Vec<Revocation> = r.json().await.unwrap();
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    let first = &revoked[0];
    assert_eq!(first.record_id, receipt.verdicts[0].record_id);
    assert_eq!(first.node, liar.public());
    assert_eq!(
        (first.url.as_str(), first.epoch, first.reason.as_str()),
        (url, receipt.epoch, "failed_cross_check")
    );
    // Signed by the validator that signed the receipt: a lab can show why it dropped the row.
    assert_eq!(first.validator, receipt.validator);
    first.verify().unwrap();
    let after: Vec<Revocation> = get(format!("{PATH_REVOCATIONS}?after={}", first.seq))
        .await
        .json()
        .await
        .unwrap();
    assert!(after.is_empty(), "{after:?}");
    // One node's revocations: the liar's one, none of the checker's.
    for (node, want) in [(&liar, 1), (&checker, 0)] {
        let page: Vec<Revocation> =
            get(format!("{PATH_REVOCATIONS}?node={}&limit=5", node.public()))
                .await
                .json()
                .await
                .unwrap();
        assert_eq!(page.len(), want, "{page:?}");
    }
    let twice = format!("node={0}&node={0}", liar.public());
    for query in ["limit=0", "after=x", "since=1", "node=nobody", &twice] {
        let r = get(format!("{PATH_REVOCATIONS}?{query}")).await;
        assert_eq!(problem(r).await, (400, "bad_query".into()), "{query}");
    }
    // The lab's dataset, exported before, holds the row: the lab finds it by its id.
    let rows = gleaner_dataset::dataset_rows(&exported.dir, &exported.manifest).unwrap();
    let found = gleaner_dataset::pull::revoked_rows(
        &net.url(""),
        &exported.manifest.validator,
        &rows,
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(found.listed, 1);
    let ids: Vec<&str> = found.rows.iter().map(|(row, _)| row.id.as_str()).collect();
    assert_eq!(ids, [first.record_id.to_string()]);
    assert_eq!(found.rows[0].0.url, url);
    // The fabricated record never reaches a dataset.
    let urls: Vec<_> = net
        .state
        .store()
        .accepted_records(None)
        .unwrap()
        .into_iter()
        .map(|r| r.record.node)
        .collect();
    assert!(!urls.contains(&liar.public()));
}

/// A check fetch the quality rules reject is still compared with the primary: the store
/// computes its signature itself (ingest computes dedup keys only for what the rules pass), so a
/// page that really is a stub still catches a node that submitted an article for it.
#[tokio::test]
async fn a_check_fetch_the_rules_reject_is_still_compared() {
    let (liar, checker, judge) = (key(21), key(22), key(23));
    let net = start_checking_everything(&[&liar, &checker, &judge]).await;
    let url = "http://stub.example/page";
    let receipt = fetch_primary(&net, &liar, url, &sample_text(667, 3000)).await;
    assert!(receipt.points > 0);
    // The page is a stub: too short for the rules.
    let stub = "Coming soon. This page has not been written yet.";
    let check_receipt = fetch_check(&net, &checker, url, stub).await;
    assert_eq!(check_receipt.verdicts[0].verdict, Verdict::Rejected);
    assert_eq!(check_receipt.verdicts[0].reason, "text_too_short");
    // Compared all the same: the two fetches disagree, so a third node is asked, and it sees the
    // stub too.
    fetch_check(&net, &judge, url, stub).await;
    let nodes = net.state.store().nodes().unwrap();
    let row = |k: &SecretKey| nodes.iter().find(|n| n.node == k.public()).unwrap().clone();
    assert_eq!(row(&liar).checks_failed, 1);
    assert_eq!(row(&checker).checks_passed, 1);
    assert_eq!(
        row(&liar).points_total,
        0,
        "the article's points were clawed back"
    );
}

/// A site on 127.0.0.1 for the validator's own tie-break fetches: an article, robots.txt that
/// forbids `/private/`, `/moved` redirecting to a copy of the article under `/private/` (whose
/// requests are counted), and nothing else (404).
async fn article_site() -> (std::net::SocketAddr, String) {
    article_site_counting(Arc::default()).await
}

async fn article_site_counting(
    private_hits: Arc<std::sync::atomic::AtomicUsize>,
) -> (std::net::SocketAddr, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut html = String::from(
        "<html><head><title>Harbour notes</title></head><body><nav><a href=\"/\">Home</a></nav>\
         <article><h1>Harbour notes</h1>",
    );
    for i in 0..12 {
        html.push_str(&format!("<p>{}</p>", sample_text(900 + i, 400)));
    }
    html.push_str("</article><footer>Contact us</footer></body></html>");
    let page = html.clone();
    let private = html.clone();
    let app = axum::Router::new()
        .route(
            "/moved",
            axum::routing::get(|| async {
                axum::response::Redirect::permanent("/private/article")
            }),
        )
        .route(
            "/private/article",
            axum::routing::get(move || async move {
                private_hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                axum::response::Html(private)
            }),
        )
        .route(
            "/robots.txt",
            axum::routing::get(|| async { "User-agent: *\nDisallow: /private/\n" }),
        )
        .route(
            "/article",
            axum::routing::get(move || async move { axum::response::Html(page) }),
        )
        // A wall some crawlers' addresses meet and others' do not.
        .route(
            "/walled",
            axum::routing::get(|| async { axum::http::StatusCode::FORBIDDEN }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, html)
}

/// The validator's tie-break fetch asks robots.txt before every hop, as a node does: a redirect
/// into a path robots.txt forbids is refused without requesting it; the page itself is fetched
/// and cleaned as a node would.
#[tokio::test]
async fn the_validators_fetch_obeys_robots_on_every_redirect() {
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (site, html) = article_site_counting(hits.clone()).await;
    let fetcher = gleaner_validator::tiebreak::TiebreakFetcher::new(&[site]).unwrap();
    let moved = fetcher.fetch(&format!("http://{site}/moved")).await;
    assert_eq!(
        moved,
        gleaner_validator::store::ValidatorFetch::NoPage {
            code: "robots_disallowed".into()
        }
    );
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    let url = format!("http://{site}/article");
    let expected = gleaner_validator::dedup::MinHash::of(
        &gleaner_collector::clean::clean(&html, Some(&url)).text,
    );
    assert_eq!(
        fetcher.fetch(&url).await,
        gleaner_validator::store::ValidatorFetch::Text(expected)
    );
    // The site's word that there is no page, and a refusal that may be the fetcher's address's
    // alone.
    assert_eq!(
        fetcher.fetch(&format!("http://{site}/gone")).await,
        gleaner_validator::store::ValidatorFetch::NoPage {
            code: "http_404".into()
        }
    );
    assert_eq!(
        fetcher.fetch(&format!("http://{site}/walled")).await,
        gleaner_validator::store::ValidatorFetch::Failed {
            code: "http_error".into()
        }
    );
}

/// A validator that checks every record and settles disputes itself every second, the article
/// site it may reach, and the site's article page; `nodes` registered.
async fn dispute_net(nodes: &[&SecretKey]) -> (Net, std::net::SocketAddr, String) {
    let (site, html) = article_site().await;
    let net = start(|c| {
        c.cross_check_rate = 1.0;
        c.new_node_cross_check_rate = 1.0;
        c.tiebreak_interval_secs = 1;
        c.fetch_allow_addrs = vec![site];
    })
    .await;
    for k in nodes {
        net.register(k).await;
    }
    (net, site, html)
}

/// A disputed check is settled by the validator's own fetch (on its timer) when it can reach the
/// page: the fetch it agrees with is upheld and the liar penalised, with no third node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disputes_are_settled_by_the_validators_own_fetch() {
    let (liar, checker, judge) = (key(1), key(2), key(3));
    let (net, site, html) = dispute_net(&[&liar, &checker, &judge]).await;
    let store = net.state.store().clone();
    let row = |k: &SecretKey| net.node(k);

    // The page as the node's cleaner gives it: what an honest node submits.
    let url = format!("http://{site}/article");
    let real = gleaner_collector::clean::clean(&html, Some(&url)).text;
    assert!(real.len() > 2_000, "{real}");
    let receipt = fetch_primary(&net, &liar, &url, &sample_text(666, 3000)).await;
    assert!(receipt.points > 0);
    fetch_check(&net, &checker, &url, &real).await;
    // Disputed: it waits for the validator, not for a third node.
    assert!(net.lease(&judge, 5).await.jobs.is_empty());
    until(|| row(&liar).checks_failed == 1).await;
    assert!(store.tiebreak_fetches_waiting().unwrap() == 0);
    assert_eq!(row(&liar).credibility, 0.0);
    assert_eq!(
        row(&liar).points_total,
        0,
        "the liar's points were clawed back"
    );
    assert_eq!(row(&checker).checks_passed, 1);
    assert_eq!(row(&judge).checks_passed, 0, "no third node was involved");
    let ledger = store.ledger(&liar.public()).unwrap();
    assert_eq!(ledger.last().unwrap().kind, "penalty");
    assert_eq!(
        net.check_of(&url),
        ("check_upheld".into(), Some("validator".into()))
    );
    net.healthy().await;
}

/// A dispute over a page the validator cannot fetch (here a 403, which a site may give the
/// validator's address and not the nodes') goes to a third node, and the failed fetch counts
/// against nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_the_validator_cannot_fetch_goes_to_a_third_node() {
    let (checker, judge, liar2) = (key(2), key(3), key(4));
    let (net, site, _) = dispute_net(&[&checker, &judge, &liar2]).await;
    let store = net.state.store().clone();
    let row = |k: &SecretKey| net.node(k);
    let gone = format!("http://{site}/walled");
    fetch_primary(&net, &liar2, &gone, &sample_text(667, 3000)).await;
    let real_gone = sample_text(1235, 3000);
    fetch_check(&net, &checker, &gone, &real_gone).await;
    until(|| store.tiebreak_fetches_waiting().unwrap() == 0).await;
    assert_eq!(
        row(&liar2).checks_failed,
        0,
        "a validator-side failure blames nobody"
    );
    assert_eq!(row(&checker).checks_failed, 0);
    fetch_check(&net, &judge, &gone, &format!("{real_gone} Posted today.")).await;
    assert_eq!(row(&liar2).checks_failed, 1);
    assert_eq!(row(&judge).checks_passed, 1);
    assert_eq!(
        net.check_of(&gone),
        ("check_upheld".into(), Some(judge.public().to_string()))
    );
    net.healthy().await;
}

/// Two nodes that claim different texts for a page the site says is not there (404, or
/// robots.txt's refusal after a redirect) both lose that record and its points and fail a check
/// by a pass's weight; nothing else they earned goes, and no third node is asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_over_a_page_that_is_not_there_goes_against_both() {
    let (one, other, judge) = (key(51), key(52), key(53));
    let (net, site, html) = dispute_net(&[&one, &other, &judge]).await;
    let store = net.state.store().clone();
    let row = |k: &SecretKey| net.node(k);
    let accepted = |url: &str| net.accepted(url);
    // A page both fetch alike first: each passes a check, and keeps this record throughout.
    let kept = format!("http://{site}/article");
    let real = gleaner_collector::clean::clean(&html, Some(&kept)).text;
    fetch_primary(&net, &one, &kept, &real).await;
    fetch_check(&net, &other, &kept, &real).await;
    assert_eq!(net.check_of(&kept).0, "agreed");
    for (n, path) in ["/gone", "/moved"].into_iter().enumerate() {
        let url = format!("http://{site}{path}");
        let (one_before, other_before) = (row(&one), row(&other));
        let primary = fetch_primary(&net, &one, &url, &sample_text(720 + n as u64, 3000)).await;
        let check = fetch_check(&net, &other, &url, &sample_text(730 + n as u64, 3000)).await;
        assert!(primary.points > 0 && check.points > 0);
        until(|| net.check_of(&url).0 != "disputed").await;
        assert_eq!(
            net.check_of(&url),
            ("page_gone".into(), Some("validator".into())),
            "{path}"
        );
        for (k, before) in [(&one, one_before), (&other, other_before)] {
            let now = row(k);
            assert_eq!(now.checks_failed, before.checks_failed + 1, "{path}");
            assert_eq!(
                now.points_total, before.points_total,
                "{path}: this record's points only"
            );
            assert!(
                (now.credibility - before.credibility * 0.85).abs() < 1e-9,
                "{path}: a pass's weight, {} → {}",
                before.credibility,
                now.credibility
            );
            let last = store.ledger(&k.public()).unwrap().pop().unwrap();
            assert_eq!(
                (last.kind.as_str(), last.note.as_str()),
                ("penalty", "page_not_found")
            );
        }
        assert!(!accepted(&url), "{path}: the primary record is revoked");
    }
    assert!(accepted(&kept), "nothing else is revoked");
    assert!(row(&one).points_total > 0 && row(&other).points_total > 0);
    assert_eq!(store.tiebreak_fetches_waiting().unwrap(), 0);
    assert!(
        net.lease(&judge, 5).await.jobs.is_empty(),
        "no third node was asked"
    );
    assert_eq!(row(&judge).checks_passed + row(&judge).checks_failed, 0);
    net.healthy().await;
}

/// `checker` leases its next job, which must be the check of `url`, and reports it failed for
/// `reason` (with HTTP `status`).
async fn report_check_failed(
    net: &Net,
    checker: &SecretKey,
    url: &str,
    reason: &str,
    status: Option<u16>,
) {
    wait_out_judging_pause(net);
    let job = net.lease(checker, 1).await.jobs.remove(0);
    assert_eq!(job.url, url, "a job for {url} was queued");
    let r = net
        .post_json(
            checker,
            PATH_REPORT,
            json!({ "failures": [
                { "lease_id": job.lease_id, "reason": reason, "detail": "no page",
                  "status": status, "crawl_delay_ms": null }
            ]}),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["accepted"], 1);
}

/// A check whose checker finds no page (404, robots.txt) where a node claimed one is not
/// abandoned: the validator fetches the page itself. No page there either: the node's record is
/// revoked, its points taken back and it fails a check, but nothing else it earned goes. The page
/// there and agreeing: the node passes; disagreeing: penalised as a refuted text. A refusal that
/// may be the checker's address's alone (403) is not "no page": the validator's fetch stands in
/// as the checker (a check nobody got done), and meets the wall too here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_finds_no_page_goes_to_the_validators_own_fetch() {
    let (liar, checker, honest) = (key(41), key(42), key(43));
    let (net, site, html) = dispute_net(&[&liar, &checker, &honest]).await;
    let store = net.state.store().clone();
    let row = |k: &SecretKey| net.node(k);
    let check_of = |url: &str| net.check_of(url);
    let accepted = |url: &str| net.accepted(url);

    // Text invented for a dead link, and for a page robots.txt closes (after a redirect).
    let kept = fetch_primary(
        &net,
        &liar,
        &format!("http://{site}/kept"),
        &sample_text(701, 3000),
    )
    .await;
    fetch_check(
        &net,
        &checker,
        &format!("http://{site}/kept"),
        &sample_text(701, 3000),
    )
    .await;
    assert_eq!(row(&liar).checks_passed, 1);
    for (n, (path, reason, status)) in [
        ("/gone", "http_error", Some(404)),
        ("/moved", "robots_disallowed", None),
    ]
    .into_iter()
    .enumerate()
    {
        let url = format!("http://{site}{path}");
        let before = row(&liar).points_total;
        let receipt = fetch_primary(&net, &liar, &url, &sample_text(702 + n as u64, 3000)).await;
        assert!(receipt.points > 0);
        assert_eq!(row(&liar).points_total, before + receipt.points as i64);
        report_check_failed(&net, &checker, &url, reason, status).await;
        until(|| check_of(&url).0 != "unfound").await;
        assert_eq!(
            check_of(&url),
            ("page_gone".into(), Some("validator".into()))
        );
        let now = row(&liar);
        assert_eq!(now.checks_failed, 1 + n as u64, "{path}");
        assert_eq!(
            now.points_total, before,
            "{path}: this record's points only are taken back"
        );
        assert!(
            !accepted(&url),
            "{path}: the record leaves the accepted set"
        );
        let last = store.ledger(&liar.public()).unwrap().pop().unwrap();
        assert_eq!(
            (last.kind.as_str(), last.note.as_str()),
            ("penalty", "page_not_found")
        );
        assert_eq!(last.amount, -(receipt.points as i64));
    }
    assert!(
        accepted(&format!("http://{site}/kept")),
        "nothing else is revoked"
    );
    assert!(kept.points > 0 && row(&liar).points_total >= kept.points as i64);
    assert_eq!(
        row(&checker).checks_failed,
        0,
        "reporting no page blames nobody"
    );

    // A wall (403) may stand before the checker only: not "no page", so the validator fetches as
    // the checker; the wall stands before it too, and the check is abandoned, blaming nobody.
    let url = format!("http://{site}/walled");
    fetch_primary(&net, &honest, &url, &sample_text(711, 3000)).await;
    report_check_failed(&net, &checker, &url, "http_error", Some(403)).await;
    until(|| check_of(&url).0 != "unchecked").await;
    assert_eq!(
        check_of(&url),
        ("abandoned".into(), Some("validator".into()))
    );
    assert_eq!(store.tiebreak_fetches_waiting().unwrap(), 0);
    assert!(accepted(&url));
    assert_eq!(row(&honest).checks_failed, 0);

    // The page is there: the validator's fetch decides as in a dispute.
    let url = format!("http://{site}/article");
    let real = gleaner_collector::clean::clean(&html, Some(&url)).text;
    let before = row(&honest).points_total;
    let receipt = fetch_primary(&net, &honest, &url, &real).await;
    report_check_failed(&net, &checker, &url, "http_error", Some(404)).await;
    until(|| check_of(&url).0 != "unfound").await;
    assert_eq!(check_of(&url).0, "primary_upheld");
    assert_eq!(row(&honest).checks_passed, 1);
    assert_eq!(row(&checker).checks_failed, 0, "the checker is not blamed");
    assert_eq!(row(&honest).points_total, before + receipt.points as i64);
    // A page that has gone since: the record and a pass's weight of credibility, no more.
    let standing = row(&honest).credibility;
    assert!(standing > 0.0);
    let url = format!("http://{site}/removed");
    fetch_primary(&net, &honest, &url, &sample_text(712, 3000)).await;
    assert!(
        net.lease(&checker, 1).await.jobs.is_empty(),
        "the checker whose \"no page\" the validator did not bear out sits out checks"
    );
    report_check_failed(&net, &checker, &url, "http_error", Some(410)).await;
    until(|| check_of(&url).0 != "unfound").await;
    assert_eq!(check_of(&url).0, "page_gone");
    let after = row(&honest);
    assert_eq!(after.checks_failed, 1);
    assert!(
        (after.credibility - standing * 0.85).abs() < 1e-9,
        "{standing} → {}",
        after.credibility
    );
    assert_eq!(after.points_total, before + receipt.points as i64);
    let url = format!("http://{site}/article?copy=2");
    fetch_primary(&net, &liar, &url, &sample_text(710, 3000)).await;
    report_check_failed(&net, &checker, &url, "not_html", None).await;
    until(|| check_of(&url).0 != "unfound").await;
    assert_eq!(check_of(&url).0, "check_upheld");
    assert_eq!(
        row(&liar).points_total,
        0,
        "a refuted text forfeits the epoch's points"
    );

    net.healthy().await;
}

/// `sitter` leases the check of `url` and lets the lease expire, as often as a task is tried;
/// the next lease call gives the check up.
async fn sit_on_check(net: &Net, sitter: &SecretKey, url: &str) {
    let ttl = net.state.config().lease_ttl_ms;
    let attempts = gleaner_validator::store::MAX_TASK_ATTEMPTS;
    for attempt in 1..=attempts {
        wait_out_judging_pause(net);
        let job = net.lease(sitter, 1).await.jobs.remove(0);
        assert_eq!(job.url, url, "the check of {url} was queued");
        net.clock.advance_ms(ttl + 1);
        if attempt < attempts {
            assert!(
                net.lease(sitter, 1).await.jobs.is_empty(),
                "the lease call that expires a check pauses its node"
            );
        }
    }
    assert!(net.lease(sitter, 1).await.jobs.is_empty());
}

/// A node that gave back a check unfinished (let it expire, said a page that is there was not)
/// sits out checks for a while; moves the clock past that, before a test node leases a check
/// again.
fn wait_out_judging_pause(net: &Net) {
    net.clock
        .advance_ms(gleaner_validator::store::JUDGING_PAUSE_MS);
}

/// A check no node gets done (here: a node leases it and lets the lease expire, every time) is
/// not abandoned: the validator's own fetch stands in as the checker. It agrees with an honest
/// page; where it disagrees a third node decides, as between two nodes: bearing the validator
/// out refutes the primary, bearing the primary out blames nobody (the validator's text alone
/// refutes no one); no page there is `page_gone`. The node sitting on the check is not blamed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_no_node_gets_done_is_made_by_the_validators_own_fetch() {
    let (honest, liar, sitter, judge) = (key(61), key(62), key(63), key(64));
    let (net, site, html) = dispute_net(&[&honest, &liar, &sitter, &judge]).await;
    let store = net.state.store().clone();
    let row = |k: &SecretKey| net.node(k);
    let check_node = |url: &str| -> Option<String> {
        net.db()
            .query_row(
                "SELECT check_node FROM cross_checks WHERE url = ?1",
                [url],
                |r| r.get(0),
            )
            .unwrap()
    };
    let url = format!("http://{site}/article");
    let real = gleaner_collector::clean::clean(&html, Some(&url)).text;

    // The page as it is: the validator's fetch agrees, and the primary passes a check.
    fetch_primary(&net, &honest, &url, &real).await;
    sit_on_check(&net, &sitter, &url).await;
    until(|| net.check_of(&url).0 != "unchecked").await;
    assert_eq!(net.check_of(&url), ("agreed".into(), None));
    assert_eq!(check_node(&url).as_deref(), Some("validator"));
    assert_eq!(row(&honest).checks_passed, 1);

    // The validator shown another page than the nodes: the third node bears the primary out,
    // which passes a check, and nobody is blamed for the validator's text.
    let url = format!("http://{site}/article?copy=2");
    let theirs = sample_text(741, 3000);
    let kept = fetch_primary(&net, &honest, &url, &theirs).await;
    sit_on_check(&net, &sitter, &url).await;
    until(|| net.check_of(&url).0 != "unchecked").await;
    assert_eq!(net.check_of(&url).0, "disputed");
    let standing = row(&honest);
    fetch_check(&net, &judge, &url, &format!("{theirs} Updated today.")).await;
    assert_eq!(
        net.check_of(&url),
        ("primary_upheld".into(), Some(judge.public().to_string()))
    );
    assert_eq!(row(&honest).checks_passed, standing.checks_passed + 1);
    assert_eq!(row(&honest).checks_failed, 0);
    assert!(kept.points > 0 && row(&honest).points_total >= kept.points as i64);
    assert_eq!(row(&judge).checks_passed, 1);

    // No page there: `page_gone`, as when a checker found none.
    let url = format!("http://{site}/gone");
    let gone = fetch_primary(&net, &liar, &url, &sample_text(742, 3000)).await;
    sit_on_check(&net, &sitter, &url).await;
    until(|| net.check_of(&url).0 != "unchecked").await;
    assert_eq!(
        net.check_of(&url),
        ("page_gone".into(), Some("validator".into()))
    );
    let last = store.ledger(&liar.public()).unwrap().pop().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.note.as_str(), last.amount),
        ("penalty", "page_not_found", -(gone.points as i64))
    );

    // Invented text: the validator disagrees, and a third node's fetch decides against it (last:
    // the liar's pages of the epoch go back to the frontier).
    let url = format!("http://{site}/article?copy=1");
    let (before, failed) = (row(&liar).points_total, row(&liar).checks_failed);
    let invented = fetch_primary(&net, &liar, &url, &sample_text(740, 3000)).await;
    assert!(invented.points > 0);
    assert_eq!(row(&liar).points_total, before + invented.points as i64);
    sit_on_check(&net, &sitter, &url).await;
    until(|| net.check_of(&url).0 != "unchecked").await;
    assert_eq!(net.check_of(&url), ("disputed".into(), None));
    assert_eq!(check_node(&url).as_deref(), Some("validator"));
    assert_eq!(
        row(&liar).checks_failed,
        failed,
        "not on the validator's word alone"
    );
    fetch_check(&net, &judge, &url, &real).await;
    assert_eq!(
        net.check_of(&url),
        ("check_upheld".into(), Some(judge.public().to_string()))
    );
    assert_eq!(row(&liar).checks_failed, failed + 1);
    assert_eq!(
        row(&liar).points_total,
        0,
        "the epoch's points are forfeited"
    );
    assert_eq!(row(&judge).checks_passed, 2);

    let sat = row(&sitter);
    assert_eq!(
        sat.checks_passed + sat.checks_failed,
        0,
        "letting leases expire blames nobody"
    );
    assert_eq!(store.tiebreak_fetches_waiting().unwrap(), 0);
    net.healthy().await;
}

/// A network of one node can check none of its pages (a check never goes to the node it
/// checks): the check waits in the queue until `check_wait_secs` is up, then the server gives
/// it up and the validator's own fetch stands in as the checker. Before, the check stayed
/// queued for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_no_node_may_take_is_given_to_the_validators_fetch_after_the_wait() {
    let (site, html) = article_site().await;
    let net = start(|c| {
        c.cross_check_rate = 1.0;
        c.new_node_cross_check_rate = 1.0;
        c.tiebreak_interval_secs = 1;
        c.check_wait_secs = 10;
        c.fetch_allow_addrs = vec![site];
    })
    .await;
    let alone = key(71);
    net.register(&alone).await;
    let url = format!("http://{site}/article");
    let real = gleaner_collector::clean::clean(&html, Some(&url)).text;
    fetch_primary(&net, &alone, &url, &real).await;
    assert!(
        net.lease(&alone, 5).await.jobs.is_empty(),
        "not its own page's check"
    );
    // Within the wait (the server looks every second) the check stays queued.
    net.clock.advance_ms(9_000);
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(net.check_of(&url).0, "pending");
    net.clock.advance_ms(2_000);
    given_up_and_agreed_by_the_validators_fetch(&net, &url, &alone).await;
    assert!(net.lease(&alone, 5).await.jobs.is_empty(), "nothing left");
    net.healthy().await;
}

/// Waits until the check of `url`, given up by the server's pass (once, in `/metrics`), is
/// settled `agreed` by the validator's own fetch standing in as the checker, and `node`, whose
/// page it is, has passed it.
async fn given_up_and_agreed_by_the_validators_fetch(net: &Net, url: &str, node: &SecretKey) {
    until(|| net.check_of(url).0 == "agreed").await;
    let by: Option<String> = net
        .db()
        .query_row(
            "SELECT check_node FROM cross_checks WHERE url = ?1",
            [url],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(by.as_deref(), Some("validator"));
    assert_eq!(net.node(node).checks_passed, 1);
    assert!(
        net.metrics()
            .await
            .contains("gleaner_check_jobs_given_up_total 1\n")
    );
}

/// With the server's own wait (a day), a check no active node may take goes to the validator's
/// fetch after a quarter of an hour: here a network whose only other node was caught
/// fabricating, which the lease gives no checks. The give-up pass runs every minute and at
/// start-up, so the test moves the clock and restarts the server. Within the quarter of an hour,
/// the check waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_only_caught_nodes_could_take_goes_to_the_validators_fetch_within_the_hour() {
    let (site, html) = article_site().await;
    let mut net = start(|c| {
        c.cross_check_rate = 1.0;
        c.new_node_cross_check_rate = 1.0;
        c.tiebreak_interval_secs = 1;
        c.fetch_allow_addrs = vec![site];
    })
    .await;
    assert_eq!(net.state.config().check_wait_secs, 24 * 60 * 60);
    let (alone, caught) = (key(72), key(73));
    net.register(&alone).await;
    net.register(&caught).await;
    net.db()
        .execute(
            "UPDATE nodes SET checks_failed = 1 WHERE node = ?1",
            [caught.public().to_string()],
        )
        .unwrap();
    let url = format!("http://{site}/article");
    let real = gleaner_collector::clean::clean(&html, Some(&url)).text;
    fetch_primary(&net, &alone, &url, &real).await;
    // The caught node leases (so it is active) and is given no check.
    assert!(net.lease(&caught, 5).await.jobs.is_empty());
    net.clock.advance_ms(UNCLAIMABLE_WAIT_MS - 1_000);
    net.restart().await;
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(
        net.check_of(&url).0,
        "pending",
        "within the quarter of an hour"
    );
    net.clock.advance_ms(2_000);
    net.restart().await;
    given_up_and_agreed_by_the_validators_fetch(&net, &url, &alone).await;
    net.healthy().await;
}

/// Agreed checks are audited by the validator's own fetch (here every one): a real page stays
/// `agreed`, audited; two nodes agreeing on text for a page the site says is not there lose
/// both records (`page_gone`); two agreeing on invented text for a real page are disputed
/// against the validator, and a third node bearing the validator out refutes both; one bearing
/// the pair out leaves the check agreed and blames nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agreed_checks_are_audited_by_the_validators_own_fetch() {
    let (site, html) = article_site().await;
    let net = start(|c| {
        c.cross_check_rate = 1.0;
        c.new_node_cross_check_rate = 1.0;
        c.audit_rate = 1.0;
        c.tiebreak_interval_secs = 1;
        c.fetch_allow_addrs = vec![site];
    })
    .await;
    let (a, b, x, y, judge) = (key(91), key(92), key(93), key(94), key(95));
    for k in [&a, &b, &x, &y, &judge] {
        net.register(k).await;
    }
    let row = |k: &SecretKey| net.node(k);
    let url = format!("http://{site}/article");
    let real = gleaner_collector::clean::clean(&html, Some(&url)).text;
    // `primary` and `checker` fetch `url` alike (`text`); the check once the audit is done.
    let audited = |primary, checker, url: &str, text: &str| {
        let (net, url, text) = (&net, url.to_string(), text.to_string());
        async move {
            fetch_primary(net, primary, &url, &text).await;
            fetch_check(net, checker, &url, &text).await;
            until(|| net.check_of(&url).0 != "auditing").await;
            net.check_of(&url)
        }
    };

    // An honest pair: the audit agrees.
    assert_eq!(
        audited(&a, &b, &url, &real).await,
        ("agreed".into(), Some("validator".into()))
    );
    assert_eq!((row(&a).checks_passed, row(&b).checks_passed), (1, 1));

    // The validator shown another page than the pair: the third node bears the pair out.
    let other = format!("http://{site}/article?copy=2");
    let theirs = sample_text(772, 3000);
    assert_eq!(
        audited(&a, &b, &other, &theirs).await,
        ("audit_disputed".into(), None)
    );
    fetch_check(&net, &judge, &other, &format!("{theirs} Updated today.")).await;
    assert_eq!(
        net.check_of(&other),
        ("agreed".into(), Some(judge.public().to_string()))
    );
    for k in [&a, &b] {
        assert_eq!(
            (row(k).checks_passed, row(k).checks_failed),
            (2, 0),
            "one pass for agreeing, none taken away"
        );
    }
    assert_eq!(row(&judge).checks_passed, 1);

    // The same, and no node gets the deciding fetch done (here it finds no page): the pair
    // stays agreed, as when the audit's own fetch fails, and nobody is blamed.
    let undecided = format!("http://{site}/article?copy=3");
    let theirs = sample_text(773, 3000);
    assert_eq!(
        audited(&a, &b, &undecided, &theirs).await,
        ("audit_disputed".into(), None)
    );
    report_check_failed(&net, &judge, &undecided, "http_error", Some(404)).await;
    assert_eq!(net.check_of(&undecided), ("agreed".into(), None));
    for k in [&a, &b] {
        assert_eq!((row(k).checks_passed, row(k).checks_failed), (3, 0));
    }
    assert_eq!(row(&judge).checks_passed, 1);
    // Their check histories: three passes each, the one the judge decided among them, read a
    // page at a time.
    let agreed = |part: &str| vec![("passed".into(), part.into(), "agreed".into()); 3];
    assert_eq!(net.checks_of(&a).await, agreed("primary"));
    assert_eq!(net.checks_of(&b).await, agreed("checker"));
    assert_eq!(
        net.checks_of(&judge).await,
        agreed("tiebreak")[..1].to_vec()
    );
    let (first, link) = net.checks_page(&a, "?limit=2").await;
    assert_eq!(first.len(), 2);
    let link = link.expect("a next page");
    let next = link
        .strip_prefix('<')
        .and_then(|l| l.split_once('>'))
        .unwrap()
        .0;
    assert_eq!(
        next,
        format!(
            "/v1/admin/nodes/{}/checks?after={}&limit=2",
            a.public(),
            first[1]["seq"]
        )
    );
    let query = next.split_once('?').unwrap().1;
    let (rest, link) = net.checks_page(&a, &format!("?{query}")).await;
    assert_eq!((rest.len(), link), (1, None));
    assert!(rest[0]["seq"].as_i64() > first[1]["seq"].as_i64());
    assert!(net.accepted(&undecided));

    // A pair agreeing on text for a dead link.
    let gone = format!("http://{site}/gone");
    let made_up = sample_text(770, 3000);
    assert_eq!(
        audited(&x, &y, &gone, &made_up).await,
        ("page_gone".into(), Some("validator".into()))
    );
    assert!(!net.accepted(&gone));
    // Each passed when the two agreed, then failed gently when the audit found no page.
    let gone_for = |part: &str| {
        ["passed", "page_gone"]
            .map(|verdict| (verdict.into(), part.into(), "page_gone".into()))
            .to_vec()
    };
    assert_eq!(net.checks_of(&x).await, gone_for("primary"));
    assert_eq!(net.checks_of(&y).await, gone_for("checker"));
    net.assert_store_checks();
    let (x_failed, y_failed) = (row(&x).checks_failed, row(&y).checks_failed);
    assert_eq!((x_failed, y_failed), (1, 1));

    // A pair agreeing on invented text for a real page: the validator disagrees, a third node
    // decides against the pair.
    let copy = format!("http://{site}/article?copy=1");
    let invented = sample_text(771, 3000);
    assert_eq!(
        audited(&x, &y, &copy, &invented).await,
        ("audit_disputed".into(), None)
    );
    assert_eq!(
        row(&x).checks_failed,
        x_failed,
        "not on the validator's word alone"
    );
    fetch_check(&net, &judge, &copy, &real).await;
    assert_eq!(
        net.check_of(&copy),
        ("audit_refuted".into(), Some(judge.public().to_string()))
    );
    for k in [&x, &y] {
        assert_eq!(row(k).checks_failed, 2);
        assert_eq!(row(k).points_total, 0, "the epoch's points are forfeited");
    }
    assert_eq!(row(&judge).checks_passed, 2);
    assert!(row(&a).points_total > 0 && row(&b).points_total > 0);
    net.healthy().await;
}

/// Two nodes that claim different texts, neither of them the page the validator fetches: the
/// validator's text alone refutes nobody (a page may change, or show the validator's address
/// another page), so a fourth fetch, a node's independent of both, decides. Bearing the
/// validator out, it refutes both nodes; bearing one node out, it refutes the other; agreeing
/// with nobody, or not made, nobody is penalised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_the_validator_agrees_with_neither_side_of_goes_to_a_fourth_fetch() {
    let (a, b, c, d, judge) = (key(101), key(102), key(103), key(104), key(105));
    let (net, site, html) = dispute_net(&[&a, &b, &c, &d, &judge]).await;
    let store = net.state.store().clone();
    let row = |k: &SecretKey| net.node(k);
    let real = gleaner_collector::clean::clean(&html, Some(&format!("http://{site}/article"))).text;
    // Both nodes claim a text of their own; the validator's fetch finds the article's.
    let three_way = |path: &'static str, primary, checker, seed: u64| {
        let net = &net;
        async move {
            let url = format!("http://{site}{path}");
            let (mine, theirs) = (sample_text(seed, 3000), sample_text(seed + 1, 3000));
            fetch_primary(net, primary, &url, &mine).await;
            fetch_check(net, checker, &url, &theirs).await;
            until(|| net.check_of(&url).0 != "disputed").await;
            assert_eq!(net.check_of(&url), ("three_way".into(), None), "{path}");
            (url, mine)
        }
    };

    // A fourth text: nobody is penalised, nobody passes.
    let (url, _) = three_way("/article?side=1", &a, &b, 810).await;
    assert_eq!(
        (row(&a).checks_failed, row(&b).checks_failed),
        (0, 0),
        "not on the validator's word alone"
    );
    fetch_check(&net, &judge, &url, &sample_text(812, 3000)).await;
    assert_eq!(
        net.check_of(&url),
        ("inconclusive".into(), Some(judge.public().to_string()))
    );
    for k in [&a, &b, &judge] {
        assert_eq!((row(k).checks_passed, row(k).checks_failed), (0, 0));
    }
    assert!(net.accepted(&url), "the primary's record stands");

    // No fourth fetch to be had (the fourth node finds no page): as inconclusive, nobody blamed.
    let (url, _) = three_way("/article?side=4", &a, &b, 840).await;
    report_check_failed(&net, &judge, &url, "http_error", Some(404)).await;
    assert_eq!(net.check_of(&url).0, "inconclusive");
    for k in [&a, &b, &judge] {
        assert_eq!((row(k).checks_passed, row(k).checks_failed), (0, 0));
    }
    assert!(net.accepted(&url));

    // The fourth fetch bears the primary out: the validator was shown another page, and the
    // checker is refuted.
    let (url, mine) = three_way("/article?side=2", &a, &b, 820).await;
    fetch_check(&net, &judge, &url, &format!("{mine} Updated today.")).await;
    assert_eq!(
        net.check_of(&url),
        ("primary_upheld".into(), Some(judge.public().to_string()))
    );
    assert_eq!((row(&a).checks_passed, row(&a).checks_failed), (1, 0));
    assert_eq!((row(&b).checks_passed, row(&b).checks_failed), (0, 1));
    assert_eq!(
        row(&b).points_total,
        0,
        "the checker's points are forfeited"
    );
    assert!(row(&a).points_total > 0);
    assert_eq!(row(&judge).checks_passed, 1);

    // The fourth fetch bears the validator out: both nodes invented their texts.
    let (url, _) = three_way("/article?side=3", &c, &d, 830).await;
    fetch_check(&net, &judge, &url, &format!("{real} Updated today.")).await;
    assert_eq!(
        net.check_of(&url),
        ("both_refuted".into(), Some(judge.public().to_string()))
    );
    for k in [&c, &d] {
        assert_eq!((row(k).checks_passed, row(k).checks_failed), (0, 1));
        assert_eq!(row(k).points_total, 0, "the epoch's points are forfeited");
        let last = store.ledger(&k.public()).unwrap().pop().unwrap();
        assert_eq!(last.kind, "penalty");
    }
    assert!(!net.accepted(&url), "the primary's record is revoked");
    assert_eq!(row(&judge).checks_passed, 2);
    assert!(
        row(&a).points_total > 0,
        "nothing of the others' is touched"
    );
    net.healthy().await;
}

/// The server pauses a node that gave a check back for the configured time
/// (`judging_pause_secs`, here a minute), not the default hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pause_for_giving_a_check_back_is_the_servers_setting() {
    let net = start(|c| {
        c.cross_check_rate = 1.0;
        c.new_node_cross_check_rate = 1.0;
        c.judging_pause_secs = 60;
    })
    .await;
    let (primary, checker) = (key(111), key(112));
    for k in [&primary, &checker] {
        net.register(k).await;
    }
    let url = "https://pause.example/page";
    fetch_primary(&net, &primary, url, &sample_text(900, 3000)).await;
    report_check_failed(&net, &checker, url, "timeout", None).await;
    net.clock.advance_ms(59_000);
    assert!(
        net.lease(&checker, 5).await.jobs.is_empty(),
        "within the minute the check is not for it"
    );
    net.clock.advance_ms(1_000);
    let jobs = net.lease(&checker, 5).await.jobs;
    assert_eq!(
        jobs.iter().map(|j| j.url.as_str()).collect::<Vec<_>>(),
        [url],
        "after the minute it is"
    );
    net.healthy().await;
}

/// The server holds back checks from a node at its setting's count of unsettled "no page"
/// reports (`max_unsettled_unfound`, here one), not at the default three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_on_unsettled_no_page_reports_is_the_servers_setting() {
    let net = start(|c| {
        c.cross_check_rate = 1.0;
        c.new_node_cross_check_rate = 1.0;
        // Fetches on, the next pass an hour away: the report stays unsettled.
        c.tiebreak_interval_secs = 3600;
        c.max_unsettled_unfound = 1;
    })
    .await;
    let (primary, checker) = (key(113), key(114));
    for k in [&primary, &checker] {
        net.register(k).await;
    }
    let (first, second) = ("https://cap1.example/page", "https://cap2.example/page");
    fetch_primary(&net, &primary, first, &sample_text(901, 3000)).await;
    fetch_primary(&net, &primary, second, &sample_text(902, 3000)).await;
    report_check_failed(&net, &checker, first, "http_error", Some(404)).await;
    assert_eq!(net.check_of(first).0, "unfound");
    assert!(
        net.lease(&checker, 5).await.jobs.is_empty(),
        "one unsettled report holds the next check back"
    );
    assert_eq!(net.check_of(second).0, "pending");
    net.healthy().await;
}

/// Turning the validator's own fetches off strands no check: a server started with
/// `tiebreak_interval_secs = 0` hands on, once, what a run with them on left waiting: the
/// dispute goes to a third node, the check whose checker found no page and the one no node got
/// done end `abandoned`, and nobody is blamed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_the_validators_fetches_off_strands_no_check() {
    let (site, html) = article_site().await;
    // Fetches on, but the next pass an hour away: the checks below wait.
    let net = start(|c| {
        c.cross_check_rate = 1.0;
        c.new_node_cross_check_rate = 1.0;
        c.tiebreak_interval_secs = 3600;
        c.fetch_allow_addrs = vec![site];
    })
    .await;
    let (primary, checker, sitter, judge) = (key(71), key(72), key(73), key(74));
    for k in [&primary, &checker, &sitter, &judge] {
        net.register(k).await;
    }
    let store = net.state.store().clone();
    let disputed = format!("http://{site}/article");
    let real = gleaner_collector::clean::clean(&html, Some(&disputed)).text;
    fetch_primary(&net, &primary, &disputed, &sample_text(750, 3000)).await;
    fetch_check(&net, &checker, &disputed, &real).await;
    let unfound = format!("http://{site}/gone");
    fetch_primary(&net, &primary, &unfound, &sample_text(751, 3000)).await;
    report_check_failed(&net, &checker, &unfound, "http_error", Some(404)).await;
    let unchecked = format!("http://{site}/article?copy=1");
    fetch_primary(&net, &primary, &unchecked, &real).await;
    sit_on_check(&net, &sitter, &unchecked).await;
    assert_eq!(net.check_of(&disputed).0, "disputed");
    assert_eq!(net.check_of(&unfound).0, "unfound");
    assert_eq!(net.check_of(&unchecked).0, "unchecked");
    assert_eq!(store.tiebreak_fetches_waiting().unwrap(), 3);
    assert!(
        net.metrics()
            .await
            .lines()
            .any(|l| l == "gleaner_checks_waiting_for_validator 3"),
        "the gauge operators watch"
    );

    // The same store served with the fetches off.
    let mut config = net.state.config().clone();
    config.tiebreak_interval_secs = 0;
    let off = AppState::new(
        store.clone(),
        Identity::from_key(key(200)),
        config,
        net.clock.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _off = server::spawn(listener, off).unwrap();
    until(|| store.tiebreak_fetches_waiting().unwrap() == 0).await;
    assert_eq!(net.check_of(&disputed), ("disputed".into(), None));
    let jobs = net.lease(&judge, 5).await.jobs;
    assert_eq!(
        jobs.iter().map(|j| j.url.as_str()).collect::<Vec<_>>(),
        [disputed.as_str()],
        "the dispute's tie-break is a third node's job"
    );
    assert_eq!(net.check_of(&unfound), ("abandoned".into(), None));
    assert_eq!(net.check_of(&unchecked), ("abandoned".into(), None));
    assert_eq!(net.node(&primary).checks_failed, 0, "nobody is blamed");
    assert!(
        net.metrics()
            .await
            .lines()
            .any(|l| l == "gleaner_checks_waiting_for_validator 0")
    );
    net.healthy().await;
}

/// One crawl of a single fresh URL: `primary` fetches it with `text`; returns the receipt.
async fn fetch_primary(net: &Net, primary: &SecretKey, url: &str, text: &str) -> Receipt {
    net.crawl(&[url]).await;
    fetch_check(net, primary, url, text).await
}

/// `checker` leases the next job, which must be the check (or tie-break) of `url`, and answers it
/// with `text`: the receipt.
async fn fetch_check(net: &Net, checker: &SecretKey, url: &str, text: &str) -> Receipt {
    let job = net.lease(checker, 1).await.jobs.remove(0);
    assert_eq!(job.url, url, "a job for {url} was queued");
    let now = net.clock.now_ms();
    let rec = record_for(checker, &job, text.to_string(), now);
    let r = net
        .submit(checker, &Batch::new(checker, now, vec![rec]))
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// A validator that cross-checks every record, with `nodes` registered.
async fn start_checking_everything(nodes: &[&SecretKey]) -> Net {
    let net = start(|c| {
        c.cross_check_rate = 1.0;
        c.new_node_cross_check_rate = 1.0;
    })
    .await;
    for k in nodes {
        net.register(k).await;
    }
    net
}

/// A check goes to an independent node: not to the primary, nor to a node paid to the primary's
/// payout key (one beneficiary's two identities checking each other prove nothing); a
/// tie-break likewise avoids both earlier fetchers and their payout keys.
#[tokio::test]
async fn checks_go_to_nodes_paid_to_another_key() {
    let (primary, sibling, checker, judge) = (key(81), key(82), key(83), key(84));
    let net = start(|c| {
        c.cross_check_rate = 1.0;
        c.new_node_cross_check_rate = 1.0;
    })
    .await;
    net.register(&primary).await;
    net.register_paid_to(&sibling, &primary.public()).await;
    net.register(&checker).await;
    net.register(&judge).await;

    let url = "http://indep.example/a";
    fetch_primary(&net, &primary, url, &sample_text(760, 3000)).await;
    assert!(
        net.lease(&sibling, 5).await.jobs.is_empty(),
        "a node paid to the primary's key is not given its check"
    );
    fetch_check(&net, &checker, url, &sample_text(761, 3000)).await;
    assert_eq!(net.check_of(url).0, "disputed");
    // The tie-break (a third node's: the validator's own fetches are off here).
    assert!(
        net.lease(&sibling, 5).await.jobs.is_empty(),
        "nor the tie-break"
    );
    fetch_check(&net, &judge, url, &sample_text(761, 3000)).await;
    assert_eq!(
        net.check_of(url),
        ("check_upheld".into(), Some(judge.public().to_string()))
    );
    net.healthy().await;
}

#[tokio::test]
async fn a_node_caught_fabricating_is_new_again() {
    // Proven nodes are never checked here, new ones always: whether a record is checked says
    // which the node is.
    let net = start(|c| {
        c.cross_check_rate = 0.0;
        c.new_node_cross_check_rate = 1.0;
    })
    .await;
    let (b, a, c) = (key(11), key(12), key(13));
    for k in [&b, &a, &c] {
        net.register(k).await;
    }
    let row = |k: &SecretKey| net.node(k);
    // Ten agreeing checks prove b (and a, its checker).
    for i in 0..10u64 {
        let url = format!("http://site{i}.example/page");
        let text = sample_text(100 + i, 3000);
        fetch_primary(&net, &b, &url, &text).await;
        fetch_check(&net, &a, &url, &text).await;
    }
    assert_eq!(row(&b).checks_passed, 10);
    assert!(row(&b).credibility >= 0.8, "{}", row(&b).credibility);
    assert!(row(&b).points_total > 0);
    // Proven: b's next record is not checked.
    fetch_primary(
        &net,
        &b,
        "http://site10.example/page",
        &sample_text(110, 3000),
    )
    .await;
    assert!(
        net.lease(&a, 5).await.jobs.is_empty(),
        "no check of a proven node"
    );

    // b checks a new node's page and fabricates; a third fetch sides with the new node.
    let url = "http://site11.example/page";
    let real = sample_text(111, 3000);
    fetch_primary(&net, &c, url, &real).await;
    fetch_check(&net, &b, url, &sample_text(666, 3000)).await;
    fetch_check(&net, &a, url, &format!("{real} Updated today.")).await;
    let caught = row(&b);
    assert_eq!(caught.checks_failed, 1);
    assert_eq!(
        caught.credibility, 0.0,
        "one failed check undoes ten passes"
    );
    assert_eq!(
        caught.points_total, 0,
        "the open epoch's earnings are forfeited"
    );

    // Caught and not passed since, b judges nobody: another new node's record is checked, but
    // not by b (its revoked pages, queued again, are for others too).
    fetch_primary(
        &net,
        &c,
        "http://site13.example/page",
        &sample_text(113, 3000),
    )
    .await;
    let offered = net.lease(&b, 50).await.jobs;
    assert!(offered.is_empty(), "{offered:?}");

    // New again: b's next record is checked, and earns at the floor.
    let text = sample_text(112, 3000);
    let url = "http://site12.example/page";
    fetch_primary(&net, &b, url, &text).await;
    // a's jobs: the checks of b's and c's new records, and b's revoked pages queued again for
    // others.
    let jobs = net.lease(&a, 50).await.jobs;
    assert_eq!(jobs.len(), 13, "{jobs:?}");
    assert!(jobs.iter().any(|j| j.url.contains("site13")));
    let check = jobs
        .iter()
        .find(|j| j.url == url)
        .expect("b's record is checked");
    let now = net.clock.now_ms();
    let rec = record_for(&a, check, text.clone(), now);
    let r = net.submit(&a, &Batch::new(&a, now, vec![rec])).await;
    assert_eq!(r.status(), 200);
    assert_eq!(row(&b).checks_passed, 11);
    let ledger = net.state.store().ledger(&b.public()).unwrap();
    let credit = ledger.iter().rev().find(|e| e.kind == "credit").unwrap();
    let floor = gleaner_validator::scoring::points(text.len(), 1.0, 0.0);
    assert!(
        credit.amount > 0 && credit.amount <= i64::try_from(floor).unwrap(),
        "{} points, at most {floor} at the floor: {ledger:?}",
        credit.amount
    );
}

#[tokio::test]
async fn a_new_node_is_leased_its_own_pages_beside_checks() {
    // Every record of a new node is checked.
    let net = start(|c| {
        c.cross_check_rate = 0.0;
        c.new_node_cross_check_rate = 1.0;
    })
    .await;
    let (b, a, c) = (key(21), key(22), key(23));
    for k in [&b, &a, &c] {
        net.register(k).await;
    }
    // Checks of b's pages wait, each first in its domain; four of the domains have another page
    // queued behind the check.
    for i in 0..8u64 {
        let url = format!("http://checked{i}.example/page");
        fetch_primary(&net, &b, &url, &sample_text(300 + i, 3000)).await;
    }
    let more: Vec<String> = (0..4)
        .map(|i| format!("http://checked{i}.example/more"))
        .collect();
    net.crawl(&more.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let is_check = |j: &Job| j.url.ends_with("/page");

    // a is new: half of its lease checks others, half is its own pages (to be checked in turn),
    // taken from behind the checks of the first domains in line.
    let jobs = net.lease(&a, 4).await.jobs;
    assert_eq!(jobs.len(), 4, "{jobs:?}");
    assert_eq!(jobs.iter().filter(|j| is_check(j)).count(), 2, "{jobs:?}");

    // Only checks left: a new node still gets them, half a lease at a time, and one job at a
    // time may be a check.
    let jobs = net.lease(&c, 4).await.jobs;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(jobs.iter().all(is_check), "{jobs:?}");
    let jobs = net.lease(&c, 1).await.jobs;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert!(is_check(&jobs[0]), "{jobs:?}");
}

#[tokio::test]
async fn bad_input_is_refused_with_a_reason_and_changes_nothing() {
    let net = start(|c| {
        c.max_body_bytes = 256 * 1024;
        c.max_batch_decompressed_bytes = 1024 * 1024;
        c.lease_ttl_ms = 60_000;
    })
    .await;
    let (a, b, stranger) = (key(1), key(2), key(3));
    net.register(&a).await;
    net.register(&b).await;
    net.crawl(&[
        "http://bad1.example/",
        "http://bad2.example/",
        "http://bad3.example/",
    ])
    .await;
    let ja = net.lease(&a, 2).await.jobs;
    let jb = net.lease(&b, 1).await.jobs;
    let good = net.batch(&a, &ja, 1);
    let ledger = net.ledger_len();
    let now = net.clock.now_ms();

    let mut cases: Vec<(&str, reqwest::Response, u16, &str)> = Vec::new();
    // Transport-level problems.
    let body = good.encode().unwrap();
    cases.push((
        "wrong content type",
        net.signed(&a, "POST", PATH_BATCHES, body.clone(), "application/json")
            .await,
        415,
        "unsupported_media_type",
    ));
    cases.push((
        "oversized body",
        net.signed(
            &a,
            "POST",
            PATH_BATCHES,
            vec![0u8; 300 * 1024],
            BATCH_CONTENT_TYPE,
        )
        .await,
        413,
        "body_too_large",
    ));
    cases.push((
        "malformed body",
        net.signed(
            &a,
            "POST",
            PATH_BATCHES,
            b"not zstd at all".to_vec(),
            BATCH_CONTENT_TYPE,
        )
        .await,
        400,
        "malformed",
    ));
    cases.push((
        "truncated body",
        net.signed(
            &a,
            "POST",
            PATH_BATCHES,
            body[..body.len() / 2].to_vec(),
            BATCH_CONTENT_TYPE,
        )
        .await,
        400,
        "malformed",
    ));
    let bomb = zstd::bulk::compress(&vec![b' '; 4 * 1024 * 1024], 3).unwrap();
    cases.push((
        "zstd bomb",
        net.signed(&a, "POST", PATH_BATCHES, bomb, BATCH_CONTENT_TYPE)
            .await,
        413,
        "too_large",
    ));
    let json = serde_json::to_vec(&good).unwrap();
    let bad_json = zstd::bulk::compress(&json[..json.len() - 10], 3).unwrap();
    cases.push((
        "truncated JSON",
        net.signed(&a, "POST", PATH_BATCHES, bad_json, BATCH_CONTENT_TYPE)
            .await,
        400,
        "malformed",
    ));
    // Authentication problems.
    cases.push((
        "missing signature",
        net.request(None, "POST", PATH_BATCHES, body.clone(), BATCH_CONTENT_TYPE)
            .send()
            .await
            .unwrap(),
        401,
        "missing_auth",
    ));
    let stale = net.auth(&a, "POST", PATH_BATCHES, &body, now - 10 * 60 * 1000);
    cases.push((
        "stale request",
        net.request(
            Some(&stale),
            "POST",
            PATH_BATCHES,
            body.clone(),
            BATCH_CONTENT_TYPE,
        )
        .send()
        .await
        .unwrap(),
        401,
        "stale_request",
    ));
    let other_body = net.auth(&a, "POST", PATH_BATCHES, b"something else", now);
    cases.push((
        "signature over another body",
        net.request(
            Some(&other_body),
            "POST",
            PATH_BATCHES,
            body.clone(),
            BATCH_CONTENT_TYPE,
        )
        .send()
        .await
        .unwrap(),
        401,
        "bad_signature",
    ));
    let once = net.auth(&a, "POST", PATH_LEASE, b"{\"max\":0}", now);
    let first = net
        .request(
            Some(&once),
            "POST",
            PATH_LEASE,
            b"{\"max\":0}".to_vec(),
            "application/json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    cases.push((
        "replayed request",
        net.request(
            Some(&once),
            "POST",
            PATH_LEASE,
            b"{\"max\":0}".to_vec(),
            "application/json",
        )
        .send()
        .await
        .unwrap(),
        401,
        "replayed_request",
    ));
    cases.push((
        "unknown node",
        net.submit(&stranger, &net.batch(&stranger, &ja, 1)).await,
        403,
        "unknown_node",
    ));
    cases.push((
        "batch from another key",
        net.signed(&b, "POST", PATH_BATCHES, body.clone(), BATCH_CONTENT_TYPE)
            .await,
        403,
        "wrong_node",
    ));
    // Batch and record forgeries.
    let mut lie = good.clone();
    lie.header.record_count += 1;
    cases.push((
        "record count lie",
        net.submit(&a, &lie).await,
        400,
        "count_mismatch",
    ));
    let mut forged = good.clone();
    forged.header.signature = key(9).sign(&forged.header.signing_bytes());
    cases.push((
        "header signed by another key",
        net.submit(&a, &forged).await,
        422,
        "bad_signature",
    ));
    let mut tampered = good.clone();
    tampered.records[0].text.push_str(" Extra words.");
    cases.push((
        "text digest mismatch",
        net.submit(&a, &tampered).await,
        400,
        "digest_mismatch",
    ));
    let mut resigned = good.clone();
    resigned.records[0].title = "changed".into();
    let resigned = Batch::new(&a, now, resigned.records);
    cases.push((
        "record signature broken",
        net.submit(&a, &resigned).await,
        422,
        "bad_signature",
    ));
    // Lease problems.
    let never = Job {
        lease_id: "00000000000000000000000000000000".into(),
        url: "http://bad1.example/".into(),
        expires_at_ms: now,
        follow_links: false,
    };
    cases.push((
        "never leased",
        net.submit(&a, &net.batch(&a, &[never], 5)).await,
        400,
        "unknown_lease",
    ));
    cases.push((
        "leased to someone else",
        net.submit(&a, &net.batch(&a, &jb, 6)).await,
        403,
        "lease_not_yours",
    ));
    let mut wrong_url = ja[0].clone();
    wrong_url.url = "http://bad1.example/other".into();
    cases.push((
        "lease for another URL",
        net.submit(&a, &net.batch(&a, &[wrong_url], 7)).await,
        400,
        "lease_url_mismatch",
    ));
    // Absurd field values.
    let mut huge = ja[0].clone();
    huge.url = format!("http://bad1.example/{}", "a".repeat(9000));
    cases.push((
        "huge URL",
        net.submit(&a, &net.batch(&a, &[huge], 8)).await,
        400,
        "too_large",
    ));
    let mut ctl = ja[0].clone();
    ctl.url = "http://bad1.example/\u{7}".into();
    cases.push((
        "control character",
        net.submit(&a, &net.batch(&a, &[ctl], 9)).await,
        400,
        "invalid_field",
    ));
    let future = record_for(&a, &ja[0], sample_text(10, 3000), now + 24 * 3600 * 1000);
    cases.push((
        "future timestamp",
        net.submit(&a, &Batch::new(&a, now, vec![future])).await,
        400,
        "future_timestamp",
    ));
    let dup = record_for(&a, &ja[0], sample_text(11, 3000), now);
    cases.push((
        "same record twice in a batch",
        net.submit(&a, &Batch::new(&a, now, vec![dup.clone(), dup]))
            .await,
        400,
        "duplicate_in_batch",
    ));
    // JSON endpoints.
    cases.push((
        "malformed JSON",
        net.signed(&a, "POST", PATH_LEASE, b"{".to_vec(), "application/json")
            .await,
        400,
        "malformed",
    ));
    cases.push((
        "register with a bad payout",
        net.post_json(&a, PATH_REGISTER, json!({"payout": "xyz", "client": "c"}))
            .await,
        400,
        "malformed",
    ));
    cases.push((
        "admin without token",
        net.http
            .get(net.url("/v1/admin/nodes"))
            .send()
            .await
            .unwrap(),
        401,
        "bad_token",
    ));
    cases.push((
        "lab with a wrong key",
        net.http
            .post(net.url("/v1/crawl-requests"))
            .bearer_auth("nope")
            .json(&json!({"seeds": ["http://x.example/"]}))
            .send()
            .await
            .unwrap(),
        401,
        "bad_token",
    ));
    cases.push((
        "bad epoch in path",
        net.http
            .get(net.url("/v1/epochs/abc/proof/x"))
            .send()
            .await
            .unwrap(),
        400,
        "bad_path",
    ));
    cases.push((
        "unknown route",
        net.http.get(net.url("/v1/nothing")).send().await.unwrap(),
        404,
        "not_found",
    ));

    for (name, resp, status, code) in cases {
        let got = problem(resp).await;
        assert_eq!(got, (status, code.to_string()), "case: {name}");
    }
    assert_eq!(net.ledger_len(), ledger, "bad input changed the ledger");
    assert!(net.state.store().accepted_records(None).unwrap().is_empty());

    // The good batch still goes through afterwards; a different batch repeating its records is a
    // duplicate submission.
    net.healthy().await;
    assert_eq!(net.submit(&a, &good).await.status(), 200);
    let ledger = net.ledger_len();
    let repeat = Batch::new(&a, now + 1, good.records.clone());
    assert_eq!(
        problem(net.submit(&a, &repeat).await).await,
        (409, "already_submitted".into())
    );
    assert_eq!(net.ledger_len(), ledger);
    // Lab key works.
    let r = net
        .http
        .post(net.url("/v1/crawl-requests"))
        .bearer_auth(LAB)
        .json(&json!({"seeds": ["http://lab.example/"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    net.healthy().await;
}

#[tokio::test]
async fn per_node_rate_limit_and_crawl_request_validation() {
    let net = start(|c| {
        c.per_node_rps = 1;
        c.per_node_burst = 3;
    })
    .await;
    let a = key(1);
    net.register(&a).await;
    let mut codes = Vec::new();
    for _ in 0..6 {
        let r = net.post_json(&a, PATH_LEASE, json!({ "max": 1 })).await;
        codes.push(r.status().as_u16());
    }
    assert!(codes.contains(&429), "{codes:?}");
    let req = CrawlRequest {
        seeds: vec!["ftp://x.example/".into(), "http://ok.example/".into()],
        domains: vec![],
        sitemaps: vec![],
        max_pages: 10,
        max_depth: 1,
    };
    let added = net.state.store().add_crawl_request("t", &req, T0).unwrap();
    assert_eq!(added.queued, 1);
    assert_eq!(added.refused[0].1, "url_scheme");
    let again = net.state.store().add_crawl_request("t", &req, T0).unwrap();
    assert_eq!(again.already_seen, 1, "the seen-set keeps URLs once");
    let _: PublicKey = a.public();
}

/// The admin ledger comes in pages: `limit` entries after `after`, oldest first, with an RFC
/// 8288 `Link` to the next page while entries remain. Following the links gives the whole
/// ledger once; a bad query is a `bad_query` problem.
#[tokio::test]
async fn the_admin_ledger_comes_in_pages_linked_to_the_next() {
    let net = start(|_| {}).await;
    let node = key(9);
    // Seven batches of one record each: seven credits.
    let store = net.state.store().clone();
    let now = net.clock.now_ms();
    let jobs = gleaner_validator::testkit::leased_jobs(&store, &node, 7, now).unwrap();
    for (i, job) in jobs.iter().enumerate() {
        let rec = record_for(&node, job, sample_text(400 + i as u64, 3000), now);
        gleaner_validator::testkit::ingest_batch(&store, &node, &key(200), vec![rec], now + 1)
            .unwrap();
    }
    let whole = store.ledger(&node.public()).unwrap();
    assert_eq!(whole.len(), 7, "{whole:?}");

    let base = format!("/v1/admin/nodes/{}/ledger", node.public());
    let mut next = Some(format!("{base}?limit=3"));
    let (mut seen, mut pages) = (Vec::new(), Vec::new());
    while let Some(path) = next.take() {
        let r = net.admin(reqwest::Method::GET, &path).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        next = r.headers().get("link").map(|v| {
            let v = v.to_str().unwrap();
            assert!(v.ends_with(">; rel=\"next\""), "{v}");
            v.trim_start_matches('<')
                .trim_end_matches(">; rel=\"next\"")
                .to_string()
        });
        let page: Vec<Value> = r.json().await.unwrap();
        pages.push(page.len());
        seen.extend(page.iter().map(|e| e["seq"].as_i64().unwrap()));
    }
    assert_eq!(pages, [3, 3, 1], "no link after the last page, none empty");
    let expected: Vec<i64> = whole.iter().map(|e| e.seq).collect();
    assert_eq!(seen, expected, "every entry once, oldest first");

    // Without a query: the first page of the default size (here, all of it), no link.
    let r = net.admin(reqwest::Method::GET, &base).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("link").is_none());
    assert_eq!(r.json::<Vec<Value>>().await.unwrap().len(), 7);
    // A full page that ends the ledger has no link (no empty page to fetch after it).
    let r = net
        .admin(reqwest::Method::GET, &format!("{base}?limit=7"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("link").is_none());
    assert_eq!(r.json::<Vec<Value>>().await.unwrap().len(), 7);
    // After the fifth entry: the last two.
    let path = format!("{base}?after={}", expected[4]);
    let r = net.admin(reqwest::Method::GET, &path).send().await.unwrap();
    let tail: Vec<Value> = r.json().await.unwrap();
    let tail: Vec<i64> = tail.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(tail, expected[5..]);
    // Past the end, and another node's ledger: empty pages.
    let path = format!("{base}?after={}", expected[6]);
    let r = net.admin(reqwest::Method::GET, &path).send().await.unwrap();
    assert_eq!(r.json::<Vec<Value>>().await.unwrap().len(), 0);
    let other = format!("/v1/admin/nodes/{}/ledger", key(10).public());
    let r = net
        .admin(reqwest::Method::GET, &other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Vec<Value>>().await.unwrap().len(), 0);

    for query in [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "limit=-1",
        "after=-1",
        "after=1.5",
        "after=",
        "limit=2&limit=3",
        "after=1&after=2",
        "page=2",
    ] {
        let r = net
            .admin(reqwest::Method::GET, &format!("{base}?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(problem(r).await, (400, "bad_query".into()), "{query}");
    }
    let r = net
        .http
        .get(net.url(&format!("{base}?limit=3")))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, 401, "admin only");
    assert_eq!(store.ledger(&node.public()).unwrap().len(), 7);
    net.healthy().await;
}

/// A lab sees its own crawl requests and how far each has got; another lab's key sees only its
/// own, the admin token every one, and no key none.
#[tokio::test]
async fn labs_see_their_own_crawl_requests_and_their_progress() {
    const OTHER_LAB: &str = "other-lab-key";
    let net = start(|c| c.lab_tokens.push(OTHER_LAB.into())).await;
    let add = |token: &'static str, seeds: Value| {
        let req = net
            .http
            .post(net.url("/v1/crawl-requests"))
            .bearer_auth(token)
            .json(&json!({ "seeds": seeds, "max_pages": 20 }));
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
        }
    };
    let mine = add(
        LAB,
        json!(["http://mine0.example/", "http://mine1.example/"]),
    )
    .await;
    let theirs = add(OTHER_LAB, json!(["http://theirs.example/"])).await;
    let list = |token: Option<&'static str>| {
        let mut req = net.http.get(net.url("/v1/crawl-requests"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap() }
    };
    let r = list(Some(LAB)).await;
    assert_eq!(r.status(), 200);
    let listed: Vec<Value> = r.json().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], mine);
    assert_eq!(listed[0]["requester"], "lab:0");
    assert_eq!(listed[0]["pages_queued"], 2);
    assert_eq!(listed[0]["pages"], json!({"queued": 2}));
    assert_eq!(listed[0]["finished"], false);
    let listed: Vec<Value> = list(Some(OTHER_LAB)).await.json().await.unwrap();
    let ids: Vec<&Value> = listed.iter().map(|r| &r["id"]).collect();
    assert_eq!(ids, [&json!(theirs)]);
    let listed: Vec<Value> = list(Some(ADMIN)).await.json().await.unwrap();
    assert_eq!(listed.len(), 2);
    // A request just added is in the next list (the progress is read at most every 5 s, but
    // read again after a request is added).
    let another = add(LAB, json!(["http://mine2.example/"])).await;
    let listed: Vec<Value> = list(Some(LAB)).await.json().await.unwrap();
    let ids: Vec<&Value> = listed.iter().map(|r| &r["id"]).collect();
    assert_eq!(ids, [&json!(mine), &json!(another)]);
    assert_eq!(problem(list(None).await).await, (401, "bad_token".into()));
    assert_eq!(
        problem(list(Some("nope")).await).await,
        (401, "bad_token".into())
    );
    // A lab cancels its own request, not another's: the pages still queued leave the frontier.
    let cancel = |token: Option<&'static str>, id: String| {
        let mut req = net
            .http
            .delete(net.url(&format!("/v1/crawl-requests/{id}")));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap() }
    };
    assert_eq!(
        problem(cancel(Some(OTHER_LAB), mine.to_string()).await).await,
        (404, "not_found".into())
    );
    assert_eq!(
        problem(cancel(Some(LAB), "abc".into()).await).await,
        (400, "bad_path".into())
    );
    assert_eq!(
        problem(cancel(None, mine.to_string()).await).await,
        (401, "bad_token".into())
    );
    let r = cancel(Some(LAB), mine.to_string()).await;
    assert_eq!(r.status(), 200);
    let cancelled: Value = r.json().await.unwrap();
    assert_eq!(cancelled["pages_cancelled"], 2, "{cancelled}");
    let listed: Vec<Value> = list(Some(LAB)).await.json().await.unwrap();
    assert_eq!(listed[0]["pages"], json!({"cancelled": 2}));
    assert_eq!(listed[0]["finished"], true);
    // The admin token cancels any request.
    let r = cancel(Some(ADMIN), theirs.to_string()).await;
    assert_eq!(r.status(), 200);

    // The document describes it.
    let doc = net.public_json("/openapi.json").await;
    assert!(doc["paths"]["/v1/crawl-requests/{id}"]["delete"].is_object());
    assert!(doc["paths"]["/v1/crawl-requests"]["get"].is_object());
    assert!(doc["components"]["schemas"]["CrawlProgress"].is_object());
    net.handle.shutdown().await.unwrap();
}

/// Why `value` does not conform to `schema` (a schema object of `doc`), or `None`: its JSON type is
/// one the schema allows, a string matches the schema's pattern, an object sends only the
/// schema's properties and every required one, and arrays, properties and references are
/// followed down. The subset of JSON Schema utoipa writes; anything else in a schema fails.
fn nonconformity(doc: &Value, schema: &Value, value: &Value, at: &str) -> Option<String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.strip_prefix("#/components/schemas/")?;
        let target = &doc["components"]["schemas"][name];
        if target.is_null() {
            return Some(format!("{at}: no schema {name} in the document"));
        }
        return nonconformity(doc, target, value, at);
    }
    if let Some(branches) = schema["oneOf"].as_array() {
        let fails: Vec<String> = branches
            .iter()
            .filter_map(|b| nonconformity(doc, b, value, at))
            .collect();
        return (fails.len() == branches.len())
            .then(|| format!("{at}: no branch of oneOf fits: {fails:?}"));
    }
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ if schema["enum"].is_array() => vec!["string"],
        other => {
            return Some(format!(
                "{at}: a schema without a type: {other} in {schema}"
            ));
        }
    };
    let fits = allowed.contains(&kind) || (kind == "integer" && allowed.contains(&"number"));
    if !fits {
        return Some(format!(
            "{at}: {value} is {kind}, the schema allows {allowed:?}"
        ));
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(value)
    {
        return Some(format!("{at}: {value} is not one of {values:?}"));
    }
    match value {
        Value::String(text) => {
            let pattern = schema["pattern"].as_str()?;
            let re = regex::Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            (!re.is_match(text)).then(|| format!("{at}: {text:?} does not match {pattern}"))
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let each = match schema["prefixItems"].get(i) {
                Some(fixed) => fixed,
                None if schema["items"].is_object() => &schema["items"],
                None => return Some(format!("{at}: item {i} is past the schema's items")),
            };
            nonconformity(doc, each, item, &format!("{at}[{i}]"))
        }),
        Value::Object(fields) => {
            let properties = &schema["properties"];
            let extra = &schema["additionalProperties"];
            for (name, v) in fields {
                let field = &properties[name.as_str()];
                let field = if field.is_null() { extra } else { field };
                if !field.is_object() {
                    return Some(format!(
                        "{at}: the server sends {name:?}, which the document does not list"
                    ));
                }
                if let Some(why) = nonconformity(doc, field, v, &format!("{at}.{name}")) {
                    return Some(why);
                }
            }
            let required = schema["required"].as_array().cloned().unwrap_or_default();
            required
                .iter()
                .filter_map(Value::as_str)
                .find(|k| !fields.contains_key(*k))
                .map(|k| {
                    format!("{at}: the document requires {k:?}, which the server did not send")
                })
        }
        _ => None,
    }
}

/// The document's schema `name` describes `answer` (see [`nonconformity`]). The schemas are
/// derived from the served types by utoipa, but serde's attributes and the types' own
/// `Serialize` can still say otherwise; this keeps the document honest for clients generated
/// from it.
fn assert_described(doc: &Value, name: &str, answer: &Value) {
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "no schema {name} in the document");
    if let Some(why) = nonconformity(doc, schema, answer, name) {
        panic!("{why}\nanswer: {answer}\nschema: {schema}");
    }
}

/// The document's descriptions and summaries that still hold rustdoc syntax (an intra-doc link
/// such as ``[`Store::x`]`` or a `crate::` path): they come from doc comments, and a client
/// generated from the document would show them as they are.
fn rustdoc_in_prose(value: &Value, at: &str) -> Vec<String> {
    match value {
        Value::Object(fields) => fields
            .iter()
            .flat_map(|(k, v)| match v.as_str() {
                Some(text)
                    if (k == "description" || k == "summary")
                        && (text.contains("[`") || text.contains("crate::")) =>
                {
                    vec![format!("{at}/{k}: {text}")]
                }
                _ => rustdoc_in_prose(v, &format!("{at}/{k}")),
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, v)| rustdoc_in_prose(v, &format!("{at}/{i}")))
            .collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn the_openapi_document_describes_what_the_server_answers() {
    let net = start(|_| {}).await;
    let get = |path: String, admin: bool| {
        let req = if admin {
            net.admin(reqwest::Method::GET, &path)
        } else {
            net.http.get(net.url(&path))
        };
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.json::<Value>().await.unwrap()
        }
    };
    let doc = net.public_json("/openapi.json").await;
    let leaks = rustdoc_in_prose(&doc, "");
    assert!(
        leaks.is_empty(),
        "rustdoc syntax in the document: {leaks:#?}"
    );
    let a = key(1);
    let added = net
        .crawl(&["http://doc-a.example/", "http://doc-b.example/"])
        .await;
    assert_described(&doc, "CrawlRequestAdded", &added);
    let r = net
        .post_json(
            &a,
            PATH_REGISTER,
            json!({"payout": a.public().to_string(), "client": "t/1"}),
        )
        .await;
    assert_described(&doc, "RegisterResponse", &r.json::<Value>().await.unwrap());
    let r = net.post_json(&a, PATH_LEASE, json!({ "max": 5 })).await;
    let leased: Value = r.json().await.unwrap();
    assert_described(&doc, "LeaseResponse", &leased);
    assert_described(&doc, "Job", &leased["jobs"][0]);
    let jobs: LeaseResponse = serde_json::from_value(leased).unwrap();
    let receipt: Value = net
        .submit(&a, &net.batch(&a, &jobs.jobs, 1))
        .await
        .json()
        .await
        .unwrap();
    assert_described(&doc, "Receipt", &receipt);
    assert_described(&doc, "RecordVerdict", &receipt["verdicts"][0]);
    // The check fails an answer that is not what the document says.
    let schema = &doc["components"]["schemas"]["Receipt"];
    let tampered = |change: &dyn Fn(&mut Value)| {
        let mut r = receipt.clone();
        change(&mut r);
        nonconformity(&doc, schema, &r, "Receipt")
    };
    for (what, change) in [
        (
            "an extra field",
            &(|r: &mut Value| r["surprise"] = json!(1)) as &dyn Fn(&mut Value),
        ),
        ("a required field missing", &|r| {
            r.as_object_mut().unwrap().remove("epoch");
        }),
        ("a string for a number", &|r| r["points"] = json!("7")),
        ("a hex key", &|r| r["node"] = json!("ab".repeat(32))),
        ("a short digest", &|r| r["batch_id"] = json!("abcd")),
        ("an unknown verdict", &|r| {
            r["verdicts"][0]["verdict"] = json!("maybe")
        }),
        ("a nested extra field", &|r| {
            r["verdicts"][0]["x"] = json!(null)
        }),
    ] {
        assert!(tampered(change).is_some(), "{what} passed");
    }
    let me: Value = net.me(&a).await;
    assert_described(&doc, "NodeStatus", &me);
    assert_described(
        &doc,
        "ValidatorInfo",
        &get(gleaner_protocol::api::PATH_INFO.into(), false).await,
    );
    assert_described(
        &doc,
        "NetworkStats",
        &get("/v1/admin/stats".into(), true).await,
    );
    let nodes = get("/v1/admin/nodes".into(), true).await;
    assert_described(&doc, "NodeRow", &nodes[0]);
    let ledger = get(format!("/v1/admin/nodes/{}/ledger", a.public()), true).await;
    assert_described(&doc, "LedgerEntry", &ledger[0]);
    let crawls = get("/v1/crawl-requests".into(), true).await;
    assert_described(&doc, "CrawlProgress", &crawls[0]);
    let extra = net.crawl(&["http://doc-c.example/"]).await;
    let admin_json = |method: reqwest::Method, path: String| {
        let req = net.admin(method, &path);
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.json::<Value>().await.unwrap()
        }
    };
    let path = format!("/v1/crawl-requests/{}", extra["id"]);
    let cancelled = admin_json(reqwest::Method::DELETE, path).await;
    assert_described(&doc, "CrawlCancelled", &cancelled);
    let root = admin_json(reqwest::Method::POST, "/v1/admin/epochs/close".into()).await;
    assert_described(&doc, "EpochRoot", &root);
    assert_described(&doc, "EpochRoot", &get("/v1/epochs".into(), false).await[0]);
    let detail = get("/v1/epochs/1".into(), false).await;
    assert_described(&doc, "EpochDetail", &detail);
    assert_described(&doc, "RewardLeaf", &detail["leaves"][0]);
    let proof = get(format!("/v1/epochs/1/proof/{}", a.public()), false).await;
    assert_described(&doc, "ClaimProof", &proof);
    // A suspension, and the answers that carry one.
    let suspension = format!("/v1/admin/nodes/{}/suspension", a.public());
    let r = net
        .admin(reqwest::Method::PUT, &suspension)
        .json(&json!({ "reason": "documented" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_described(&doc, "NodeSuspended", &r.json::<Value>().await.unwrap());
    assert_described(
        &doc,
        "NodeRow",
        &get("/v1/admin/nodes".into(), true).await[0],
    );
    let me: Value = net.me(&a).await;
    assert_eq!(me["suspended"], "documented");
    assert_described(&doc, "NodeStatus", &me);
    let resumed = admin_json(reqwest::Method::DELETE, suspension).await;
    assert_described(&doc, "NodeResumed", &resumed);
    let refused = net.http.get(net.url("/v1/nothing")).send().await.unwrap();
    assert_described(&doc, "Problem", &refused.json::<Value>().await.unwrap());
    // And the bodies clients send, as the protocol's types serialise them.
    use gleaner_protocol::api::{
        FailureReason, JobFailure, LeaseRequest, RegisterRequest, ReleaseRequest, ReportRequest,
    };
    fn sent<T: serde::Serialize>(body: &T) -> Value {
        serde_json::to_value(body).unwrap()
    }
    assert_described(
        &doc,
        "RegisterRequest",
        &sent(&RegisterRequest {
            payout: a.public(),
            client: "t/1".into(),
        }),
    );
    assert_described(&doc, "LeaseRequest", &sent(&LeaseRequest { max: 3 }));
    assert_described(&doc, "SuspendRequest", &json!({ "reason": "spam" }));
    let failure = |status, crawl_delay_ms| JobFailure {
        lease_id: "l1".into(),
        reason: FailureReason::RobotsDisallowed,
        detail: "disallowed".into(),
        status,
        crawl_delay_ms,
    };
    assert_described(
        &doc,
        "ReportRequest",
        &sent(&ReportRequest {
            failures: vec![failure(Some(403), Some(2_000)), failure(None, None)],
        }),
    );
    assert_described(
        &doc,
        "ReleaseRequest",
        &sent(&ReleaseRequest {
            lease_ids: vec!["l1".into()],
        }),
    );
    assert_described(
        &doc,
        "CrawlRequest",
        &sent(&CrawlRequest {
            seeds: vec!["http://doc-d.example/".into()],
            domains: vec!["doc-d.example".into()],
            sitemaps: vec!["http://doc-d.example/sitemap.xml".into()],
            max_pages: 10,
            max_depth: 2,
        }),
    );
    net.handle.shutdown().await.unwrap();
}

/// The operator suspends a node over HTTP: it gets no lease and no batch of its is taken (403
/// `node_suspended`, with the reason), its open lease goes to another node, its standing says
/// why, and nothing is credited; resumed, it works again. Only the admin token may do it, for a
/// registered node, with a readable reason.
#[tokio::test]
async fn a_suspended_node_gets_no_work_until_it_is_resumed() {
    let net = start(|_| {}).await;
    let (a, b) = (key(71), key(72));
    let held = net
        .one_job_of(&a, &["http://sus-a.example/", "http://sus-b.example/"])
        .await;
    net.register(&b).await;
    let path = format!("/v1/admin/nodes/{}/suspension", a.public());
    let suspend = |token: Option<&str>, node_path: &str, body: Value| {
        let req = net.http.put(net.url(node_path)).json(&body);
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        async move { req.send().await.unwrap() }
    };

    // Refused, changing nothing: no token, a lab's, an unknown node, no reason, a bad body.
    let why = json!({ "reason": "fabricated pages on sus-a.example" });
    let stranger = format!("/v1/admin/nodes/{}/suspension", key(73).public());
    for (token, at, body, status, code) in [
        (None, path.as_str(), why.clone(), 401, "bad_token"),
        (Some(LAB), path.as_str(), why.clone(), 401, "bad_token"),
        (
            Some(ADMIN),
            stranger.as_str(),
            why.clone(),
            404,
            "not_found",
        ),
        (
            Some(ADMIN),
            path.as_str(),
            json!({ "reason": " " }),
            400,
            "invalid_request",
        ),
        (
            Some(ADMIN),
            path.as_str(),
            json!({ "why": "x" }),
            400,
            "malformed",
        ),
    ] {
        let got = problem(suspend(token, at, body.clone()).await).await;
        assert_eq!(got, (status, code.to_string()), "{token:?} {at} {body}");
    }
    assert_eq!(net.node(&a).suspended_reason, None);

    let r = suspend(Some(ADMIN), &path, why.clone()).await;
    assert_eq!(r.status(), 200);
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["leases_released"], 1, "{done}");
    assert_eq!(done["reason"], why["reason"]);

    let ledger = net.ledger_len();
    let r = net.post_json(&a, PATH_LEASE, json!({ "max": 5 })).await;
    let (status, body) = (r.status().as_u16(), r.json::<Value>().await.unwrap());
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("node_suspended"))
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("fabricated pages"),
        "{body}"
    );
    let r = net.submit(&a, &net.batch(&a, &held.jobs, 7_100)).await;
    assert_eq!(problem(r).await, (403, "node_suspended".to_string()));
    assert_eq!(net.ledger_len(), ledger, "nothing credited");
    // Its page went back to the queue: the other node gets both sites.
    let theirs = net.lease(&b, 5).await;
    assert_eq!(theirs.jobs.len(), 2, "{theirs:?}");
    // It reads why in its standing.
    let me: Value = net.me(&a).await;
    assert_eq!(me["suspended"], why["reason"], "{me}");

    let resume = |token: &str| net.http.delete(net.url(&path)).bearer_auth(token).send();
    assert_eq!(resume(LAB).await.unwrap().status(), 401);
    let r = resume(ADMIN).await.unwrap();
    assert_eq!(r.status(), 200);
    let resumed: Value = r.json().await.unwrap();
    assert_eq!(resumed["was_suspended"], true);
    assert_eq!(net.lease(&a, 5).await.jobs.len(), 0, "both sites are out");
    let me: Value = net.me(&a).await;
    assert!(me.get("suspended").is_none(), "{me}");
    net.handle.shutdown().await.unwrap();
}
