//! The lease where queues hold check jobs the asking node may not take (checks of its own pages,
//! or of nodes paid to its payout key or on its network), waiting for another node or for the
//! give-up: after `check_wait_secs` (a day by default), or a quarter of an hour when no active
//! node may take them (a network of one node). Each lease asks a domain for its oldest check the
//! node may take before its oldest page: it reads the checks oldest first, and past 64 the node
//! may not take, one exclusion list at a time (each list's oldest check, one index seek; every
//! list that starts with one of the node's tokens in one seek), up to 64 seeks, then on in id
//! order, at most 4,096 checks; a lease also reads on past domains holding nothing for the
//! node (up to 4,096 a lease), and moves them to the back of the ready order.
//!
//! `cargo bench -p gleaner-validator --bench lease` (optional: `-- LEASES`, default 200). Three
//! cases, each on a fresh store:
//! - one large site whose queue holds B such checks beside its pages (B = 0, 1,000, 10,000,
//!   50,000, 200,000; a site gives at most ~86,400 pages a day at one page a second, so a day of
//!   one node's checks at the new-node rate of one in two is ~43,000): the median time of a
//!   lease of one page;
//! - the same site, its B checks (B = 1,000, 10,000, 50,000) each of another node on the asking
//!   node's network, so each its own exclusion list: written network first, as ingest writes
//!   them (passed over together), and node first, as it wrote them before (the lease reads on
//!   in id order past 64 lists);
//! - D domains holding one such check each, ahead of the node's pages in the lease order
//!   (D = 100, 1,000, 4,196): the first lease, which reads past them, then the median of the
//!   leases after it.
//!
//! The leases run on the store's writer connection, as the server's group-commit writer runs
//! them: while one runs, no batch is stored.

// A benchmark binary: failing loudly on setup errors is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Instant;

use gleaner_protocol::SecretKey;
use gleaner_validator::store::{CrawlRequest, JudgingRules, LeaseParams, Network};
use gleaner_validator::{Store, testkit};

const T0: i64 = 1_767_225_600_000;

fn params() -> LeaseParams {
    LeaseParams {
        ttl_ms: 3_600_000,
        // Room for every lease of the run on the one site, and no rest between them.
        max_per_domain: 1_000_000,
        domain_delay_ms: 0,
        max_open_per_node: 1_000_000,
        validator_fetches: true,
        network: None,
        judging: JudgingRules::DEFAULT,
    }
}

/// A store with one registered node and a crawl request for `pages` pages of `site`.
fn store_with_pages(
    site: &str,
    pages: usize,
) -> (tempfile::TempDir, Store, gleaner_protocol::PublicKey) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let node = SecretKey::from_bytes(&[7; 32]).public();
    store.register_node(&node, &node, "bench", T0).unwrap();
    let request = CrawlRequest {
        seeds: (0..pages).map(|p| format!("http://{site}/p{p}")).collect(),
        domains: Vec::new(),
        sitemaps: Vec::new(),
        max_pages: u32::try_from(pages).unwrap(),
        max_depth: 0,
    };
    store.add_crawl_request("bench", &request, T0).unwrap();
    (dir, store, node)
}

/// `node` leases one job `leases` times, one a millisecond from `T0 + 1`, each a page (never a
/// check): each lease's time in ms.
fn page_lease_times(
    store: &Store,
    node: &gleaner_protocol::PublicKey,
    leases: usize,
    p: &LeaseParams,
) -> Vec<f64> {
    (0..leases)
        .map(|k| {
            let t = Instant::now();
            let lease = store.lease(node, 1, T0 + 1 + k as i64, p).unwrap();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            assert_eq!(lease.jobs.len(), 1, "a page each lease");
            assert!(lease.jobs[0].url.contains("/p"), "{:?}", lease.jobs[0]);
            ms
        })
        .collect()
}

fn median_ms(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let leases: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let p = params();

    println!("one site, its queue holding checks the node may not take beside its pages:");
    for backlog in [0usize, 1_000, 10_000, 50_000, 200_000] {
        let (_dir, store, node) = store_with_pages("big.example", leases);
        let other = SecretKey::from_bytes(&[8; 32]).public();
        testkit::queue_checks_excluding(&store, "big.example", backlog, &node, T0).unwrap();
        let times = page_lease_times(&store, &node, leases, &p);
        // Another node takes the oldest check: the backlog was there to be read past.
        if backlog > 0 {
            store.register_node(&other, &other, "bench", T0).unwrap();
            let lease = store.lease(&other, 1, T0 + 10_000_000, &p).unwrap();
            assert!(lease.jobs[0].url.ends_with("/check/0"), "{:?}", lease.jobs);
        }
        println!(
            "  {backlog:>7} checks queued: {:.3} ms a lease of one page (median of {leases})",
            median_ms(times)
        );
    }

    println!(
        "one site, its queue holding checks of as many other nodes on the node's network (each \
         its own exclusion list) beside its pages:"
    );
    let network = Network::of("203.0.113.7".parse().unwrap());
    let on_network = LeaseParams {
        network,
        ..params()
    };
    // Lists as ingest writes them (the network first), and as it wrote them before (the node
    // first), which the lease reads on in id order past 64 lists.
    let network_first = |i: usize| format!("net:203.0.113.0/24 other{i}");
    let node_first = |i: usize| format!("other{i} net:203.0.113.0/24");
    let cases: [(&str, &dyn Fn(usize) -> String); 2] = [
        ("network first", &network_first),
        ("node first", &node_first),
    ];
    for ((order, list), backlog) in cases
        .into_iter()
        .flat_map(|c| [1_000usize, 10_000, 50_000].map(|b| (c, b)))
    {
        let (_dir, store, node) = store_with_pages("big.example", leases);
        testkit::queue_checks(&store, "big.example", backlog, list, T0).unwrap();
        let times = page_lease_times(&store, &node, leases, &on_network);
        println!(
            "  {backlog:>7} checks queued, lists {order}: {:.3} ms a lease of one page (median \
             of {leases})",
            median_ms(times)
        );
    }

    println!("domains holding only a check the node may not take, ahead of its pages:");
    for domains in [100usize, 1_000, 4_196] {
        let (_dir, store, node) = store_with_pages("zz-pages.example", leases);
        for d in 0..domains {
            let domain = format!("a{d:05}.example");
            testkit::queue_checks_excluding(&store, &domain, 1, &node, T0 - 1).unwrap();
        }
        let t = Instant::now();
        let first = store.lease(&node, 1, T0 + 1, &p).unwrap();
        let first_ms = t.elapsed().as_secs_f64() * 1e3;
        let mut times = Vec::with_capacity(leases);
        let mut pages = first.jobs.len();
        for k in 1..leases {
            let t = Instant::now();
            let lease = store.lease(&node, 1, T0 + 1 + k as i64, &p).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e3);
            pages += lease.jobs.len();
        }
        println!(
            "  {domains:>5} domains: first lease {first_ms:.1} ms ({} page), then {:.3} ms a \
             lease (median of {}; {pages} pages in all)",
            first.jobs.len(),
            median_ms(times),
            leases - 1
        );
    }
}
