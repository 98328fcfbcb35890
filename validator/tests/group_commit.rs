//! Group commit (several batches and leases in one SQLite transaction, each in a savepoint):
//! a refused batch changes nothing while the others in its group stand, two copies of one batch
//! in a group get one receipt and one credit, and a group that is not committed stores nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gleaner_protocol::api::Job;
use gleaner_protocol::{Batch, Digest, SecretKey};
use gleaner_validator::ingest::{self, IngestError, IngestOutcome, IngestParams, PreparedRecord};
use gleaner_validator::store::LeaseParams;
use gleaner_validator::testkit::{leased_jobs, record_for, sample_text};
use gleaner_validator::{CrawlRequest, Store};

const NOW: i64 = 1_767_225_600_000;
const PARAMS: IngestParams = IngestParams {
    cross_check_rate: 0.0,
    new_node_cross_check_rate: 0.0,
    audit_rate: 0.0,
    domain_delay_ms: 0,
    validator_tiebreaks: false,
    sample_key: [0; 32],
};
const LEASE: LeaseParams = LeaseParams {
    ttl_ms: 3_600_000,
    max_per_domain: 1,
    domain_delay_ms: 0,
    max_open_per_node: 512,
    validator_fetches: false,
    network: None,
    judging: gleaner_validator::store::JudgingRules::DEFAULT,
};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    node: SecretKey,
    validator: SecretKey,
    jobs: Vec<Job>,
}

fn fixture(pages: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let node = SecretKey::from_bytes(&[7; 32]);
    let jobs = leased_jobs(&store, &node, pages, NOW).unwrap();
    assert_eq!(jobs.len(), pages);
    Fixture {
        _dir: dir,
        store,
        node,
        validator: SecretKey::from_bytes(&[9; 32]),
        jobs,
    }
}

impl Fixture {
    fn batch(&self, jobs: &[Job], seed: u64) -> (Digest, Vec<PreparedRecord>) {
        let recs = jobs
            .iter()
            .enumerate()
            .map(|(i, j)| record_for(&self.node, j, sample_text(seed + i as u64, 2_000), NOW))
            .collect();
        let batch = Batch::new(&self.node, NOW, recs);
        ingest::prepare(&batch, &self.node.public(), NOW, &[]).unwrap()
    }

    fn balance(&self) -> i64 {
        self.store
            .ledger(&self.node.public())
            .unwrap()
            .iter()
            .map(|e| e.amount)
            .sum()
    }
}

#[test]
fn a_refused_batch_in_a_group_changes_nothing_and_the_others_stand() {
    let f = fixture(4);
    let (id_a, a) = f.batch(&f.jobs[0..1], 100);
    // Batch B: a good record for job 1, then one for a lease that does not exist.
    let (id_b, mut b) = f.batch(&f.jobs[1..3], 200);
    b[1].record.lease_id = "no-such-lease".into();
    let (id_c, c) = f.batch(&f.jobs[3..4], 300);
    let (ra, rb, rc) = f
        .store
        .group(|g| {
            let ra = g.ingest(id_a, &f.node.public(), &a, NOW, &f.validator, &PARAMS);
            let rb = g.ingest(id_b, &f.node.public(), &b, NOW, &f.validator, &PARAMS);
            let rc = g.ingest(id_c, &f.node.public(), &c, NOW, &f.validator, &PARAMS);
            (ra, rb, rc)
        })
        .unwrap();
    assert!(matches!(ra, Ok(IngestOutcome::Fresh { .. })));
    assert!(
        matches!(rb, Err(IngestError::UnknownLease { index: 1, .. })),
        "{rb:?}"
    );
    assert!(matches!(rc, Ok(IngestOutcome::Fresh { .. })));
    assert!(f.store.receipt(&id_a).unwrap().is_some());
    assert!(f.store.receipt(&id_b).unwrap().is_none());
    assert!(f.store.receipt(&id_c).unwrap().is_some());
    // The refused batch's good record was rolled back: its lease is still open and takes it.
    let (id_b2, b2) = f.batch(&f.jobs[1..2], 200);
    assert_ne!(id_b2, id_b);
    let out = f
        .store
        .ingest(id_b2, &f.node.public(), &b2, NOW, &f.validator, &PARAMS)
        .unwrap();
    assert!(matches!(out, IngestOutcome::Fresh { .. }));
    let node = f.store.node(&f.node.public()).unwrap().unwrap();
    assert_eq!(node.records_accepted, 3);
    assert_eq!(f.store.ledger(&f.node.public()).unwrap().len(), 3);
}

#[test]
fn two_copies_of_a_batch_in_one_group_get_one_receipt_and_one_credit() {
    let f = fixture(2);
    let (id, recs) = f.batch(&f.jobs, 500);
    let (first, second) = f
        .store
        .group(|g| {
            let first = g.ingest(id, &f.node.public(), &recs, NOW, &f.validator, &PARAMS);
            let second = g.ingest(id, &f.node.public(), &recs, NOW + 5, &f.validator, &PARAMS);
            (first.unwrap(), second.unwrap())
        })
        .unwrap();
    assert!(matches!(first, IngestOutcome::Fresh { .. }));
    assert!(matches!(second, IngestOutcome::Replayed { .. }));
    assert_eq!(first.json(), second.json());
    assert_eq!(f.store.receipt(&id).unwrap().as_deref(), Some(first.json()));
    let ledger = f.store.ledger(&f.node.public()).unwrap();
    assert_eq!(ledger.len(), 1);
    let balance = f.balance();
    assert!(balance > 0);
    // And once more, alone, after the commit.
    let third = f
        .store
        .ingest(id, &f.node.public(), &recs, NOW + 10, &f.validator, &PARAMS)
        .unwrap();
    assert_eq!(third.json(), first.json());
    assert_eq!(f.balance(), balance);
}

#[test]
fn leases_in_a_group_see_each_other() {
    let f = fixture(1);
    // Everything is leased already; give one task back, then two leases race in one group.
    f.store
        .release(&f.node.public(), &[f.jobs[0].lease_id.clone()], NOW)
        .unwrap();
    let other = SecretKey::from_bytes(&[8; 32]);
    f.store
        .register_node(&other.public(), &other.public(), "test", NOW)
        .unwrap();
    let (a, b) = f
        .store
        .group(|g| {
            let a = g.lease(&f.node.public(), 4, NOW, &LEASE).unwrap();
            let b = g.lease(&other.public(), 4, NOW, &LEASE).unwrap();
            (a, b)
        })
        .unwrap();
    assert_eq!(a.jobs.len() + b.jobs.len(), 1, "one task, one lease");
}

#[test]
fn pending_counts_queued_and_leased_work() {
    let f = fixture(4);
    let pending = |f: &Fixture| {
        f.store
            .lease(&f.node.public(), 4, NOW, &LEASE)
            .unwrap()
            .pending
    };
    // Four open leases, nothing queued.
    assert_eq!(pending(&f), 4);
    let (id, recs) = f.batch(&f.jobs[0..1], 900);
    f.store
        .ingest(id, &f.node.public(), &recs, NOW, &f.validator, &PARAMS)
        .unwrap();
    assert_eq!(pending(&f), 3);
    f.store
        .release(&f.node.public(), &[f.jobs[1].lease_id.clone()], NOW)
        .unwrap();
    // The released task is queued again (1) next to two open leases; a lease call takes it.
    let res = f.store.lease(&f.node.public(), 4, NOW, &LEASE).unwrap();
    assert_eq!(res.jobs.len(), 1);
    assert_eq!(res.pending, 2);
    assert_eq!(pending(&f), 3);
    // A fresh crawl request adds to it; reopening the store keeps the count.
    f.store
        .add_crawl_request(
            "test",
            &CrawlRequest {
                seeds: vec!["http://new.example/".into(), "http://new2.example/".into()],
                domains: vec![],
                sitemaps: vec![],
                max_pages: 10,
                max_depth: 0,
            },
            NOW,
        )
        .unwrap();
    let reopened = Store::open(f._dir.path()).unwrap();
    let other = SecretKey::from_bytes(&[8; 32]);
    reopened
        .register_node(&other.public(), &other.public(), "test", NOW)
        .unwrap();
    let res = reopened.lease(&other.public(), 0, NOW, &LEASE).unwrap();
    assert_eq!(res.pending, 5);
}
