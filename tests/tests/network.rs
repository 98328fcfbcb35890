//! End-to-end: a whole Gleaner network on 127.0.0.1 — sample sites, a validator process, honest
//! `gleaner run` processes and dishonest nodes — from crawl request to a verified dataset.
//!
//! The tests run one at a time (see [`one_network_at_a_time`]): each already runs a validator,
//! three sites and several node processes on a 2-core machine, and the crawl deadlines assume the
//! network has the machine to itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use gleaner_e2e::adversary::{Adversary, Behaviour};
use gleaner_e2e::network::{Network, NetworkConfig, num};
use gleaner_e2e::site::Site;
use gleaner_protocol::api::ClaimProof;
use gleaner_protocol::{PublicKey, verify_reward_proof};
use serde_json::{Value, json};

/// Serialises the tests of this file, whatever `--test-threads` says.
/// (A tokio mutex: each test has its own runtime, and the guard is held across awaits.)
async fn one_network_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// How the cross-checks of `node`'s records came out (outcome → count), from the validator's
/// database, read-only: what a failed bound on a fabricator's points needs explained.
fn checks_by_outcome(net: &Network, node: &PublicKey) -> BTreeMap<String, i64> {
    counts_of(
        net,
        node,
        "SELECT outcome, COUNT(*) FROM cross_checks WHERE primary_node = ?1 GROUP BY outcome",
    )
}

/// How the cross-checks `node` fetched as the checker came out (outcome → count): a node that
/// only checks others' pages lies there, and only a tie-break can catch it.
fn checks_it_made(net: &Network, node: &PublicKey) -> BTreeMap<String, i64> {
    counts_of(
        net,
        node,
        "SELECT outcome, COUNT(*) FROM cross_checks WHERE check_node = ?1 GROUP BY outcome",
    )
}

/// `node`'s stored records by role and verdict ("primary accepted" → count), read-only: whether
/// a fabricator did primary work that can be cross-checked, or only checks of others' pages.
fn records_by_role(net: &Network, node: &PublicKey) -> BTreeMap<String, i64> {
    counts_of(
        net,
        node,
        "SELECT role || ' ' || verdict, COUNT(*) FROM records WHERE node = ?1
         GROUP BY role, verdict",
    )
}

/// The (label, count) rows `sql` gives for `node` (its `?1`), from the validator's database
/// opened read-only.
fn counts_of(net: &Network, node: &PublicKey, sql: &str) -> BTreeMap<String, i64> {
    let db = net.validator_dir().join(gleaner_validator::store::DB_FILE);
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([node.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Waits until the crawl is done (nothing queued, no lease open, for two polls in a row) and
/// every node process has exited (`--exit-when-idle`), or panics after `timeout`.
async fn wait_crawl(net: &mut Network, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut quiet = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if net.crawl_done().await.unwrap_or(false) {
            quiet += 1;
        } else {
            quiet = 0;
        }
        let exited = net.nodes.iter_mut().all(|n| n.try_wait().is_some());
        if quiet >= 2 && exited {
            return;
        }
        if Instant::now() > deadline {
            let s = net.stats().await.unwrap_or_default();
            let logs: Vec<String> = net
                .nodes
                .iter()
                .map(|n| format!("{}:\n{}", n.name, n.tail(15)))
                .collect();
            panic!(
                "crawl not done after {timeout:?}: {s}\n{}\nvalidator:\n{}",
                logs.join("\n"),
                net.validator.tail(20)
            );
        }
    }
}

/// Points earned per record submitted (accepted, duplicate, rejected or revoked since), by node:
/// what a node earns for the same amount of work. Totals alone depend on how many jobs each node
/// managed to take, which on a loaded machine favours the light in-test adversaries over real
/// collectors.
fn points_per_record(nodes: &[Value]) -> BTreeMap<String, f64> {
    nodes
        .iter()
        .map(|n| {
            let submitted = num(n, "records_accepted")
                + num(n, "records_duplicate")
                + num(n, "records_rejected")
                + num(n, "records_revoked");
            (
                n["node"].as_str().unwrap().to_string(),
                num(n, "points_total") as f64 / submitted.max(1) as f64,
            )
        })
        .collect()
}

fn points_by_node(nodes: &[Value]) -> BTreeMap<String, u64> {
    nodes
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap().to_string(),
                num(n, "points_total"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_path_from_crawl_request_to_verified_dataset() {
    let _serial = one_network_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let mut net = Network::start(NetworkConfig::new(dir.path()))
        .await
        .unwrap();
    // The lab asks for the crawl with its own key, through the lab CLI.
    let seeds: Vec<String> = net.sites.iter().flat_map(Site::public_urls).collect();
    let mut args = vec!["--max-pages", "500", "--max-depth", "3"];
    for seed in &seeds {
        args.extend(["--seed", seed.as_str()]);
    }
    let added = net.lab_crawl("add", &args).unwrap();
    assert_eq!(added.len(), 1);
    assert_eq!(num(&added[0], "queued") as usize, seeds.len(), "{added:?}");
    for i in 0..2 {
        net.start_node(i, &[]).unwrap();
    }
    wait_crawl(&mut net, Duration::from_secs(180)).await;

    let stats = net.stats().await.unwrap();
    let articles: usize = net.sites.iter().map(|s| s.article_urls().len()).sum();
    assert!(
        num(&stats, "records_accepted") as usize >= articles,
        "every article accepted: {stats}"
    );
    assert!(
        num(&stats, "records_duplicate") >= 1,
        "the republished articles are duplicates: {stats}"
    );
    // The lab sees its request finished, a record back for every article at least.
    let listed = net.lab_crawl("list", &[]).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["requester"], "lab:0");
    assert_eq!(listed[0]["finished"], true, "{listed:?}");
    assert!(
        num(&listed[0]["pages"], "done") as usize >= articles,
        "{listed:?}"
    );
    // And what its pages brought: every article accepted, the republished ones duplicates, none
    // of the network's own check fetches counted.
    let records = &listed[0]["records"];
    assert!(num(records, "accepted") as usize >= articles, "{listed:?}");
    assert!(num(records, "duplicate") >= 1, "{listed:?}");
    assert!(
        num(records, "accepted") <= num(&stats, "records_accepted"),
        "{listed:?} {stats}"
    );
    let reasons: Vec<&str> = stats["rejection_reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["reason"].as_str())
        .collect();
    assert!(
        !reasons.is_empty(),
        "thin pages are rejected with a reason: {stats}"
    );
    // robots.txt was obeyed: nobody fetched the disallowed area.
    for site in &net.sites {
        assert!(
            site.hits().iter().all(|h| !h.path.starts_with("/private/")),
            "robots.txt obeyed"
        );
        assert!(site.hits().iter().all(|h| h.method == "GET"), "GET only");
    }

    let nodes = net.nodes_view().await.unwrap();
    let points = points_by_node(&nodes);
    assert_eq!(points.len(), 2);
    assert!(
        points.values().all(|p| *p > 0),
        "both honest nodes earned points: {points:?}"
    );

    // The epoch closes with a signed root; each node's claim verifies with the protocol alone.
    let root = net.close_epoch().await.unwrap();
    let epoch = root["epoch"].as_u64().unwrap();
    let mut leaves = BTreeMap::new();
    for node in points.keys() {
        let node: PublicKey = node.parse().unwrap();
        let proof: ClaimProof = serde_json::from_value(
            net.get(&format!("/v1/epochs/{epoch}/proof/{node}"))
                .await
                .unwrap(),
        )
        .unwrap();
        proof.epoch.verify().unwrap();
        let path: Vec<[u8; 32]> = proof.proof.iter().map(|d| *d.as_bytes()).collect();
        verify_reward_proof(proof.epoch.root.as_bytes(), &proof.leaf, &path).unwrap();
        assert!(proof.leaf.amount > 0);
        leaves.insert(node.to_string(), proof.leaf.amount);
    }
    // Each node checks its own claim (`gleaner rewards`): the same amount, proven against the
    // signed root, by the key on the receipts it holds.
    for i in 0..2 {
        let claims = net.node_rewards(i).unwrap();
        let claim = &claims["claims"][0];
        assert_eq!(claim["epoch"], epoch, "{claims}");
        assert_eq!(
            (&claim["proven"], &claim["leaf"]),
            (&json!(true), &json!(true)),
            "{claims}"
        );
        let claimant = claim["claimant"].as_str().unwrap();
        assert_eq!(
            claim["amount"].as_u64(),
            leaves.get(claimant).copied(),
            "{claims}"
        );
    }

    // A key that earned nothing has no leaf, and the node proves it: every published leaf of
    // the epoch rebuilds the signed root without one for it.
    let stranger = tempfile::tempdir().unwrap();
    let claims = net.rewards_of(stranger.path()).unwrap();
    let claim = &claims["claims"][0];
    assert_eq!(claim["epoch"], epoch, "{claims}");
    assert_eq!(
        (&claim["amount"], &claim["proven"], &claim["leaf"]),
        (&json!(0), &json!(true), &json!(false)),
        "{claims}"
    );

    // A lab exports the accepted records and verifies the dataset offline: one row per record.
    let (dataset, report) = net
        .export_and_verify_dataset(&dir.path().join("dataset"))
        .await
        .unwrap();
    assert_eq!(report["validator_pinned"], true, "{report}");
    // Honest nodes: the validator has revoked none of the dataset's rows.
    let (clean, revoked) = net.dataset_revoked(&dataset).unwrap();
    assert!(clean, "{revoked}");
    assert_eq!(revoked["revoked"], json!([]), "{revoked}");
    assert_eq!(revoked["rows"], report["rows_checked"], "{revoked}");
    // Cross-check fetches of a URL are credited but the dataset keeps the primary record only.
    let store = gleaner_validator::Store::open_read_only(&net.validator_dir()).unwrap();
    let primaries = store.accepted_records(None).unwrap().len() as u64;
    assert!(primaries >= articles as u64, "{primaries} primary records");
    assert_eq!(
        num(&report, "rows_checked"),
        primaries,
        "every accepted record is a verified dataset row: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dishonest_nodes_are_caught_and_earn_little() {
    let _serial = one_network_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = NetworkConfig::new(dir.path());
    config.articles_per_site = 16;
    config.cross_check_rate = 0.5;
    // Every record of a node not yet proven is checked: a fabricator is watched closely from
    // its start and again after each time it is caught, so whether it is caught does not rest
    // on a few coin flips in a run this short.
    config.new_node_cross_check_rate = 1.0;
    let started = Instant::now();
    let mut net = Network::start(config).await.unwrap();
    let seeds: Vec<String> = net.sites.iter().flat_map(Site::public_urls).collect();
    net.add_crawl(&seeds, 500).await.unwrap();
    for i in 0..2 {
        net.start_node(i, &[]).unwrap();
    }
    let url = net.validator_url();
    let addrs = net.site_addrs();
    let mut liar = Adversary::new(
        &url,
        [0xA1; 32],
        Behaviour::FabricateAll,
        &dir.path().join("a1"),
        &addrs,
    )
    .unwrap();
    let mut sometimes = Adversary::new(
        &url,
        [0xA2; 32],
        Behaviour::FabricateShare(0.1),
        &dir.path().join("a2"),
        &addrs,
    )
    .unwrap();
    liar.register().await.unwrap();
    sometimes.register().await.unwrap();
    let mut swarm: Vec<Adversary> = (0..50u8)
        .map(|i| {
            let mut seed = [0xC0; 32];
            seed[0] = i;
            Adversary::new(
                &url,
                seed,
                Behaviour::Unsolicited,
                &dir.path().join("swarm"),
                &addrs,
            )
            .unwrap()
        })
        .collect();
    for s in &swarm {
        let _ = s.register().await;
    }
    let mut swarm_refusals = 0;
    let deadline = Instant::now() + Duration::from_secs(150);
    while Instant::now() < deadline {
        let _ = liar.round(3).await;
        let _ = sometimes.round(3).await;
        for s in swarm.iter_mut().take(10) {
            let r = s.round(2).await.unwrap();
            swarm_refusals += r.refused.len();
            if let Some(receipt) = r.receipt {
                assert_eq!(receipt.points, 0, "unsolicited records earn nothing");
            }
        }
        if net.crawl_done().await.unwrap_or(false) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let looped = started.elapsed();
    // Each time a fabricator is caught its accepted pages of the epoch go back to the frontier
    // (and fabricators' records are all checked), so honest nodes have more left to fetch here
    // than in the other runs: about 170 s after the rounds on this machine kind.
    wait_crawl(&mut net, Duration::from_secs(420)).await;
    // A disputed check is settled by the validator's own tie-break fetch (every 2 s here), possibly
    // after the crawl is done, or by a node's fourth fetch when the validator's text agrees with
    // neither node (`three_way`), and a settled lie forfeits the liar's points of the epoch:
    // points are read once no check of either fabricator's records, nor one they made, waits so.
    let waiting = |outcomes: BTreeMap<String, i64>| {
        outcomes.contains_key("disputed") || outcomes.contains_key("three_way")
    };
    let settled_by = Instant::now() + Duration::from_secs(60);
    while Instant::now() < settled_by
        && [liar.public_key(), sometimes.public_key()]
            .iter()
            .any(|k| waiting(checks_by_outcome(&net, k)) || waiting(checks_it_made(&net, k)))
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "adversary rounds until {:.0} s, crawl done at {:.0} s",
        looped.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    // The replayer copies what honest nodes made: from the validator's accepted records.
    let store = gleaner_validator::Store::open_read_only(&net.validator_dir()).unwrap();
    let seen: Vec<_> = store
        .accepted_records(None)
        .unwrap()
        .into_iter()
        .map(|a| a.record)
        .collect();
    assert!(!seen.is_empty());
    let mut replayer = Adversary::new(
        &url,
        [0xA3; 32],
        Behaviour::Replay(seen),
        &dir.path().join("a3"),
        &addrs,
    )
    .unwrap();
    replayer.register().await.unwrap();
    // More work for it to claim: the same sites again, as a new request.
    let _ = replayer.round(5).await;

    let nodes = net.nodes_view().await.unwrap();
    let points = points_by_node(&nodes);
    let rate = points_per_record(&nodes);
    let honest_keys: Vec<String> = (0..2)
        .map(|i| {
            let key = std::fs::read_to_string(net.node_dir(i).join("node.key")).unwrap();
            let mut seed = [0u8; 32];
            hex::decode_to_slice(key.trim(), &mut seed).unwrap();
            gleaner_protocol::SecretKey::from_bytes(&seed)
                .public()
                .to_string()
        })
        .collect();
    for key in &honest_keys {
        assert!(
            points.get(key).copied().unwrap_or(0) > 0,
            "honest nodes earn: {points:?}"
        );
    }
    let honest_rate = honest_keys
        .iter()
        .map(|k| rate.get(k).copied().unwrap_or(0.0))
        .fold(f64::INFINITY, f64::min);
    let of = |p: &PublicKey| points.get(&p.to_string()).copied().unwrap_or(0);
    let rate_of = |p: &PublicKey| rate.get(&p.to_string()).copied().unwrap_or(0.0);
    eprintln!(
        "points per record after {:.0} s: honest (the lower) {honest_rate:.2}, 10% fabricator \
         {:.2} (cross-checks {:?}, checks it made {:?}, records {:?}), fabricator {:.2} \
         (cross-checks {:?})",
        started.elapsed().as_secs_f64(),
        rate_of(&sometimes.public_key()),
        checks_by_outcome(&net, &sometimes.public_key()),
        checks_it_made(&net, &sometimes.public_key()),
        records_by_role(&net, &sometimes.public_key()),
        rate_of(&liar.public_key()),
        checks_by_outcome(&net, &liar.public_key())
    );
    // Stated bounds, per record submitted (the same work): a node that fabricates everything
    // earns under 5% of what an honest node earns; one that fabricates 10% under 50%; replayers
    // and spam identities nothing.
    assert!(
        rate_of(&liar.public_key()) * 20.0 <= honest_rate,
        "fabricator: {:.2} vs honest {honest_rate:.2} points per record ({points:?})",
        rate_of(&liar.public_key())
    );
    assert!(
        rate_of(&sometimes.public_key()) * 2.0 <= honest_rate,
        "10% fabricator: {:.2} vs honest {honest_rate:.2} points per record, its cross-checks \
         by outcome {:?}, the checks it made {:?}, its records by role {:?} ({points:?})",
        rate_of(&sometimes.public_key()),
        checks_by_outcome(&net, &sometimes.public_key()),
        checks_it_made(&net, &sometimes.public_key()),
        records_by_role(&net, &sometimes.public_key())
    );
    assert_eq!(of(&replayer.public_key()), 0, "replayer earns nothing");
    for s in &swarm {
        assert_eq!(of(&s.public_key()), 0, "spam identities earn nothing");
    }
    assert!(
        swarm_refusals > 0,
        "the swarm's unsolicited submissions are refused"
    );
    let liar_row = nodes
        .iter()
        .find(|n| n["node"] == liar.public_key().to_string().as_str())
        .unwrap();
    assert!(
        num(liar_row, "checks_failed") >= 1,
        "the fabricator failed cross-checks: {liar_row}"
    );
    // The operator reads which checks, with the validator's CLI beside the running server.
    let out = net
        .validator_cli(&[
            "nodes",
            "checks",
            &liar.public_key().to_string(),
            "--data",
            &net.validator_dir().display().to_string(),
        ])
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let history: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let failed: Vec<&Value> = history
        .iter()
        .filter(|j| j["verdict"] != "passed")
        .collect();
    assert!(!failed.is_empty(), "{history:?}");
    for j in failed {
        assert!(j["url"].as_str().unwrap().starts_with("http://"), "{j}");
        assert!(
            j["credibility_after"].as_f64() <= j["credibility_before"].as_f64(),
            "{j}"
        );
    }
    // Its records were revoked, and its counts say so: they are its records by their verdict
    // now, not at ingest (the store check below holds every node's counts to its records).
    assert!(
        num(liar_row, "records_revoked") >= 1,
        "the fabricator's records were revoked: {liar_row}"
    );
    // Labs learn of each revocation from the validator's log, read a page at a time: it only
    // grows, so it holds at least what the counts said a moment ago (the store check below
    // holds it to the revoked records exactly).
    let mut log = Vec::new();
    loop {
        let after = log.last().map_or(0, |r: &Value| num(r, "seq"));
        let page = net
            .get(&format!("/v1/revocations?after={after}&limit=2"))
            .await
            .unwrap();
        let page = page.as_array().unwrap().clone();
        let last = page.len() < 2;
        log.extend(page);
        if last {
            break;
        }
    }
    let revoked_then: u64 = nodes.iter().map(|n| num(n, "records_revoked")).sum();
    assert!(log.len() as u64 >= revoked_then, "{log:?}");
    for r in &log {
        assert!(
            ["failed_cross_check", "page_not_found"].contains(&r["reason"].as_str().unwrap()),
            "{r}"
        );
    }
    // The fabricator's key in the node software reads its own entries of that log at its first
    // standing refresh, and shows them: every one the log held a moment ago, none of them
    // backed by a receipt in this fresh store (so no points to take back here).
    let liar_key = liar.public_key().to_string();
    let theirs: HashSet<&str> = log
        .iter()
        .filter(|r| r["node"] == liar_key.as_str())
        .map(|r| r["record_id"].as_str().unwrap())
        .collect();
    assert!(!theirs.is_empty(), "{log:?}");
    let liar_dir = dir.path().join("liar-node");
    std::fs::create_dir_all(&liar_dir).unwrap();
    std::fs::write(
        liar_dir.join(gleaner_collector::identity::KEY_FILE),
        hex::encode([0xA1; 32]),
    )
    .unwrap();
    let node = gleaner_collector::Node::open(gleaner_collector::NodeConfig {
        data_dir: liar_dir,
        validators: vec![url.clone()],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(node.public_key(), liar.public_key());
    node.submit_round(false, true).await.unwrap();
    let kept = node.revoked(usize::MAX).unwrap();
    let kept_ids: HashSet<&str> = kept.iter().map(|r| r.record_id.as_str()).collect();
    assert!(kept_ids.is_superset(&theirs), "{kept:?} vs {theirs:?}");
    assert!(kept.iter().all(|r| !r.known && r.points == 0), "{kept:?}");
    let stats = node.stats().unwrap();
    assert_eq!(stats.pages.revoked, kept.len() as u64, "{:?}", stats.pages);
    assert_eq!(stats.points.taken_back, 0);
    drop(node);
    // The disputes were settled by the validator's own fetch of the sites' pages, each upholding
    // the honest fetch.
    let db = rusqlite::Connection::open_with_flags(
        net.validator_dir().join(gleaner_validator::store::DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let by_validator: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM cross_checks WHERE tiebreak_node = 'validator'
               AND outcome IN ('primary_upheld', 'check_upheld')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(by_validator >= 1, "no dispute settled by the validator");
    // Text invented for dead links (the sites link to pages that answer 404) was found out: the
    // checker found no page, nor did the validator's own fetch. Honest nodes report such links as
    // failed jobs and never lose a record that way.
    let page_gone: BTreeMap<String, i64> = db
        .prepare(
            "SELECT primary_node, COUNT(*) FROM cross_checks WHERE outcome = 'page_gone'
              GROUP BY primary_node",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        page_gone
            .get(&liar.public_key().to_string())
            .copied()
            .unwrap_or(0)
            >= 1,
        "no invented page for a dead link was found out: {page_gone:?}"
    );
    for key in &honest_keys {
        assert!(
            !page_gone.contains_key(key),
            "an honest node lost a page: {page_gone:?}"
        );
    }
    // Penalties, revoked records, settled disputes: the store still reads back end to end.
    let report = net.check_validator_store().unwrap();
    assert!(
        num(&report, "batches") > 0 && num(&report, "bodies") > 0,
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_pages_do_not_penalise_honest_nodes_and_the_network_stays_polite() {
    let _serial = one_network_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = NetworkConfig::new(dir.path());
    config.sites = 2;
    config.cross_check_rate = 1.0; // every job fetched twice: counters and ads differ each time
    config.new_node_cross_check_rate = 1.0;
    config.crawl_delay_secs = 0.3;
    config.domain_delay_ms = 300;
    let mut net = Network::start(config).await.unwrap();
    let seeds: Vec<String> = net.sites.iter().flat_map(Site::public_urls).collect();
    net.add_crawl(&seeds, 500).await.unwrap();
    for i in 0..5 {
        net.start_node(i, &[]).unwrap();
    }
    wait_crawl(&mut net, Duration::from_secs(240)).await;
    let nodes = net.nodes_view().await.unwrap();
    assert_eq!(nodes.len(), 5);
    for n in &nodes {
        assert_eq!(
            num(n, "checks_failed"),
            0,
            "honest node penalised for a changing page: {n}"
        );
    }
    assert!(
        nodes.iter().map(|n| num(n, "checks_passed")).sum::<u64>() >= 1,
        "cross-checks happened: {nodes:?}"
    );
    // Politeness, counted at the sites: at most one page request per crawl delay (plus one for
    // the window's edge) per site, with five nodes eager to fetch.
    for site in &net.sites {
        let allowed = (1.0 / site.crawl_delay().as_secs_f64()).floor() as usize + 1;
        assert!(
            site.max_requests_per_second() <= allowed,
            "{} saw {} requests in one second (allowed {allowed})",
            site.origin(),
            site.max_requests_per_second()
        );
        let gap = site.min_gap().unwrap();
        assert!(
            gap >= site.crawl_delay().mul_f64(0.8),
            "{} gap {gap:?}",
            site.origin()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_lose_nothing_and_count_nothing_twice() {
    let _serial = one_network_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = NetworkConfig::new(dir.path());
    config.articles_per_site = 16;
    let mut net = Network::start(config).await.unwrap();
    let seeds: Vec<String> = net.sites.iter().flat_map(Site::public_urls).collect();
    net.add_crawl(&seeds, 500).await.unwrap();
    for i in 0..3 {
        net.start_node(i, &[]).unwrap();
    }
    // Kill nodes and the validator at pseudo-random moments, several times, then restart them.
    let mut rng = 0x5EED_u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..5 {
        tokio::time::sleep(Duration::from_millis(700 + next() % 1500)).await;
        let victim = (next() % 4) as usize;
        if victim == 3 || round == 2 {
            net.restart_validator(true).await.unwrap();
        } else {
            net.restart_node(victim).unwrap();
        }
    }
    // Let everything finish; nodes that exited early are restarted to drain their queues.
    for i in 0..3 {
        if net.nodes[i].try_wait().is_some() {
            net.restart_node(i).unwrap();
        }
    }
    wait_crawl(&mut net, Duration::from_secs(240)).await;

    let store = gleaner_validator::Store::open_read_only(&net.validator_dir()).unwrap();
    let accepted = store.accepted_records(None).unwrap();
    let accepted_ids: HashSet<_> = accepted.iter().map(|a| a.record.id()).collect();
    assert_eq!(
        accepted_ids.len(),
        accepted.len(),
        "no record accepted twice"
    );
    let mut credited = HashSet::new();
    let mut ledger_by_node: BTreeMap<String, i64> = BTreeMap::new();
    for n in store.nodes().unwrap() {
        let ledger = store.ledger(&n.node).unwrap();
        // The admin API's pages, followed link by link, give the same entries.
        let via_api: Vec<i64> = net
            .ledger(&n.node.to_string())
            .await
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(via_api, ledger.iter().map(|e| e.seq).collect::<Vec<_>>());
        for e in ledger {
            *ledger_by_node.entry(n.node.to_string()).or_default() += e.amount;
            if let Some(r) = e.record_id
                && e.amount > 0
            {
                assert!(credited.insert(r), "record {r} credited twice");
                assert!(accepted_ids.contains(&r), "credited record {r} is accepted");
            }
        }
    }
    // Every accepted record appears in a receipt the node holds, and the receipts add up to the
    // ledger (per node, credits only: fraud penalties are separate ledger entries).
    for i in 0..3 {
        let conn = rusqlite::Connection::open(net.node_dir(i).join("node.sqlite")).unwrap();
        let mut stmt = conn
            .prepare("SELECT receipt FROM batches WHERE state = 'receipted'")
            .unwrap();
        let receipts: Vec<gleaner_protocol::Receipt> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|r| serde_json::from_str(&r.unwrap()).unwrap())
            .collect();
        let unsent: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM records WHERE state != 'receipted'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unsent, 0, "node-{i}: every fetched record ended receipted");
        let mut sum = 0u64;
        for r in &receipts {
            r.verify().unwrap();
            sum += r.points;
        }
        if let Some(node) = receipts.first().map(|r| r.node.to_string()) {
            let credits: i64 = store
                .ledger(&node.parse().unwrap())
                .unwrap()
                .iter()
                .filter(|e| e.amount > 0)
                .map(|e| e.amount)
                .sum();
            assert_eq!(
                sum as i64, credits,
                "node-{i}: receipts equal ledger credits"
            );
        }
    }
    // And no accepted record is missing from the dataset.
    let (_, report) = net
        .export_and_verify_dataset(&dir.path().join("dataset"))
        .await
        .unwrap();
    assert_eq!(
        num(&report, "rows_checked"),
        accepted.len() as u64,
        "every accepted record is a verified dataset row: {report}"
    );
    // Through the crashes and restarts, nothing stored is torn or disagrees with anything else.
    let report = net.check_validator_store().unwrap();
    assert!(num(&report, "bodies") >= accepted.len() as u64, "{report}");
}
