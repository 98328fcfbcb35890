//! Node registration and credibility.

use gleaner_protocol::PublicKey;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{Cached, NodeRow, Op, Store, StoreError};
use crate::scoring::{CREDIBILITY_START, update_credibility};

/// A node's standing as of one commit ([`Store::node_standing`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeStanding {
    /// The node's row (its total points are `row.points_total`).
    pub row: NodeRow,
    /// The epoch open for crediting.
    pub open_epoch: u64,
    /// Points credited to the node in `open_epoch`.
    pub epoch_points: i64,
}

/// Longest client name kept (`gleaner/0.1.0 (linux)` is ~25 bytes).
pub const MAX_CLIENT_BYTES: usize = 64;

/// What lifting a node's suspension did (`gleaner-validator nodes resume`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct NodeResumed {
    pub node: PublicKey,
    /// Whether it was suspended (resuming a node free to work changes nothing).
    pub was_suspended: bool,
}

/// Longest reason for a suspension: a sentence for the node's owner, not a report.
pub const MAX_SUSPENSION_REASON_BYTES: usize = 200;

/// What suspending a node did (`gleaner-validator nodes suspend`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct NodeSuspended {
    pub node: PublicKey,
    /// When the suspension began (a node suspended again keeps its first time).
    pub suspended_at_ms: i64,
    pub reason: String,
    /// The node's open leases given back: their pages return to the queue for other nodes.
    pub leases_released: u32,
}

impl Store {
    /// Registers `node` (or updates its payout address and client name). Credibility and history
    /// are kept across re-registration, so a node cannot launder a bad record by registering again.
    pub fn register_node(
        &self,
        node: &PublicKey,
        payout: &PublicKey,
        client: &str,
        now_ms: i64,
    ) -> Result<NodeRow, StoreError> {
        self.group(|g| g.register_node(node, payout, client, now_ms))?
    }

    /// Suspends `node`: until [`Store::resume_node`] it gets no lease (`node_suspended`) and no
    /// batch of its is taken (a batch already taken still gets its receipt again), and its open
    /// leases are given back at once. Its records, credibility and ledger stay as they are; it
    /// may still report failed jobs and read its standing, which says why. Suspending a
    /// suspended node changes only the reason.
    ///
    /// Errors: `not_found` for a node never registered; `invalid_request` for an empty reason,
    /// one longer than [`MAX_SUSPENSION_REASON_BYTES`] or with control characters.
    pub fn suspend_node(
        &self,
        node: &PublicKey,
        reason: &str,
        now_ms: i64,
    ) -> Result<NodeSuspended, StoreError> {
        self.group(|g| g.suspend_node(node, reason, now_ms))?
    }

    /// Lifts `node`'s suspension, saying whether it was suspended. Errors: `not_found` for a
    /// node never registered.
    pub fn resume_node(&self, node: &PublicKey) -> Result<NodeResumed, StoreError> {
        self.group(|g| g.resume_node(node))?
    }

    /// Cross-check judgements of all nodes so far, as (passed, failed): the sums of the nodes'
    /// counts, `page_gone` among the failed. Both only grow.
    pub fn check_judgements(&self) -> Result<(u64, u64), StoreError> {
        let (passed, failed): (i64, i64) = self
            .reader()?
            .query_row_cached(
                "SELECT COALESCE(SUM(checks_passed), 0), COALESCE(SUM(checks_failed), 0)
                   FROM nodes",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .op("check_judgements")?;
        Ok((
            u64::try_from(passed).unwrap_or(0),
            u64::try_from(failed).unwrap_or(0),
        ))
    }

    /// Whether `node` is registered (as of the last commit: never waits for the writer).
    pub fn is_registered(&self, node: &PublicKey) -> Result<bool, StoreError> {
        let found: Option<i64> = self
            .reader()?
            .query_row_cached(
                "SELECT 1 FROM nodes WHERE node = ?1",
                params![node.to_string()],
                |r| r.get(0),
            )
            .optional()
            .op("is_registered")?;
        Ok(found.is_some())
    }

    /// `node`'s standing as of one commit (`None` if it is not registered): its row, the epoch
    /// open for crediting and the points credited to it in that epoch. One reader, one read
    /// transaction: an epoch closing meanwhile cannot pair one epoch's number with another's
    /// points.
    pub fn node_standing(&self, node: &PublicKey) -> Result<Option<NodeStanding>, StoreError> {
        let mut conn = self.reader()?;
        let tx = conn.transaction().op("node_standing")?;
        let open_epoch = super::open_epoch(&tx)?;
        let Some(row) = super::read::node_in(&tx, node)? else {
            return Ok(None);
        };
        let epoch_points = epoch_points(&tx, &node.to_string(), open_epoch)?;
        Ok(Some(NodeStanding {
            row,
            open_epoch,
            epoch_points,
        }))
    }
}

/// Points credited to `node` in `epoch`, net of penalties: one row of the per-node totals the
/// ledger's trigger keeps (schema version 14), not a sum over the node's ledger rows.
pub(crate) fn epoch_points(conn: &Connection, node: &str, epoch: u64) -> Result<i64, StoreError> {
    conn.query_row_cached(
        "SELECT COALESCE(SUM(amount), 0) FROM node_ledger_totals WHERE node = ?1 AND epoch = ?2",
        params![node, i64::try_from(epoch).unwrap_or(i64::MAX)],
        |r| r.get(0),
    )
    .op("epoch_points")
}

/// What ingest reads of a node ([`ingest_standing`]).
pub(crate) struct IngestStanding {
    pub payout: String,
    pub credibility: f64,
    pub checks_failed: i64,
    /// Why the operator suspended the node, if it is suspended.
    pub suspended: Option<String>,
}

/// The node's payout key, credibility, failed checks and suspension (ingest reads them for its
/// points and its sampling, and refuses a suspended node's batch), inside a transaction.
pub(crate) fn ingest_standing(
    conn: &Connection,
    node: &PublicKey,
) -> Result<Option<IngestStanding>, StoreError> {
    conn.query_row_cached(
        "SELECT payout, credibility, checks_failed, suspended_reason FROM nodes WHERE node = ?1",
        params![node.to_string()],
        |r| {
            Ok(IngestStanding {
                payout: r.get(0)?,
                credibility: r.get(1)?,
                checks_failed: r.get(2)?,
                suspended: r.get(3)?,
            })
        },
    )
    .optional()
    .op("node_standing")
}

/// The reason given for a suspension, checked: trimmed, not empty, at most
/// [`MAX_SUSPENSION_REASON_BYTES`], no control characters.
fn suspension_reason(reason: &str) -> Result<&str, StoreError> {
    let reason = reason.trim();
    let why = if reason.is_empty() {
        "a suspension needs a reason the node's owner can read".to_string()
    } else if reason.len() > MAX_SUSPENSION_REASON_BYTES {
        format!("longer than {MAX_SUSPENSION_REASON_BYTES} bytes")
    } else if reason.chars().any(char::is_control) {
        "control characters".to_string()
    } else {
        return Ok(reason);
    };
    Err(StoreError::Invalid {
        field: "reason",
        why,
    })
}

/// [`Store::suspend_node`] in `conn`'s transaction.
pub(crate) fn suspend_in(
    conn: &Connection,
    node: &PublicKey,
    reason: &str,
    now_ms: i64,
) -> Result<NodeSuspended, StoreError> {
    let reason = suspension_reason(reason)?;
    let node_s = node.to_string();
    let since: Option<i64> = conn
        .query_row_cached(
            "UPDATE nodes SET suspended_at_ms = COALESCE(suspended_at_ms, ?2),
                              suspended_reason = ?3
             WHERE node = ?1 RETURNING suspended_at_ms",
            params![node_s, now_ms, reason],
            |r| r.get(0),
        )
        .optional()
        .op("suspend_node")?;
    let Some(suspended_at_ms) = since else {
        return Err(StoreError::NotFound {
            what: format!("node {node_s}"),
        });
    };
    let open: Vec<String> = {
        let mut stmt = conn
            .prepare_cached("SELECT lease_id FROM leases WHERE node = ?1 AND state = 'open'")
            .op("suspend_node")?;
        let rows = stmt
            .query_map(params![node_s], |r| r.get(0))
            .op("suspend_node")?;
        rows.collect::<Result<_, _>>().op("suspend_node")?
    };
    let released = super::jobs::release_in(conn, node, &open, now_ms)?;
    tracing::warn!(
        node = %node_s,
        reason,
        leases_released = released.accepted,
        "node suspended"
    );
    Ok(NodeSuspended {
        node: *node,
        suspended_at_ms,
        reason: reason.to_string(),
        leases_released: released.accepted,
    })
}

/// [`Store::resume_node`] in `conn`'s transaction.
pub(crate) fn resume_in(conn: &Connection, node: &PublicKey) -> Result<NodeResumed, StoreError> {
    let node_s = node.to_string();
    let was: Option<Option<i64>> = conn
        .query_row_cached(
            "SELECT suspended_at_ms FROM nodes WHERE node = ?1",
            params![node_s],
            |r| r.get(0),
        )
        .optional()
        .op("resume_node")?;
    let Some(was) = was else {
        return Err(StoreError::NotFound {
            what: format!("node {node_s}"),
        });
    };
    conn.exec_cached(
        "UPDATE nodes SET suspended_at_ms = NULL, suspended_reason = NULL WHERE node = ?1",
        params![node_s],
    )
    .op("resume_node")?;
    if was.is_some() {
        tracing::info!(node = %node_s, "node resumed");
    }
    Ok(NodeResumed {
        node: *node,
        was_suspended: was.is_some(),
    })
}

/// The network a node connects from, for telling checkers apart: an IPv4 address's /24, an IPv6
/// address's /48 (an IPv4 address written as IPv6 counts as IPv4), held as the prefix's first
/// address and written `203.0.113.0/24` or `2001:db8:1::/48`. Nodes on one network may be one
/// operator's, so a check never goes to a node on the checked node's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network(std::net::IpAddr);

impl Network {
    /// The network of `ip`; `None` for loopback and unspecified addresses: a validator and its
    /// nodes on one machine (development, tests) are all on one network, and keeping them apart
    /// would leave no one to check.
    pub fn of(ip: std::net::IpAddr) -> Option<Self> {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        let ip = ip.to_canonical();
        if ip.is_loopback() || ip.is_unspecified() {
            return None;
        }
        Some(Network(match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
            }
        }))
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bits = if self.0.is_ipv4() { 24 } else { 48 };
        write!(f, "{}/{bits}", self.0)
    }
}

/// A task's exclusion-list entry for nodes on `network` (as [`Network`] writes it): `net:` and the
/// network, never a node key or payout key (those are base-58 without a colon).
pub(crate) fn network_token(network: &str) -> String {
    format!("net:{network}")
}

/// The `excluded` list ([`super::jobs::push_task`]) of a task that checks the fetches of `nodes`
/// (node keys as text): for each node, its network when known (see [`Network`]), the node and
/// its payout key (a node paid to the same key is not independent). The network comes first:
/// the lists of one network's nodes then sort together, and a lease on that network passes
/// over all of them in one seek (`jobs::first_judging_task`).
pub(crate) fn not_independent_of(conn: &Connection, nodes: &[&str]) -> Result<String, StoreError> {
    let mut excluded = Vec::with_capacity(3 * nodes.len());
    for &node in nodes {
        let row: Option<(String, Option<String>)> = conn
            .query_row_cached(
                "SELECT payout, network FROM nodes WHERE node = ?1",
                params![node],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .op("not_independent_of")?;
        let (payout, network) = row.unzip();
        excluded.extend(network.flatten().as_deref().map(network_token));
        excluded.push(node.to_string());
        excluded.extend(payout);
    }
    Ok(excluded.join(" "))
}

/// The payout key of `node` (a node key as text), if it is registered.
pub(crate) fn payout_of(conn: &Connection, node: &str) -> Result<Option<String>, StoreError> {
    conn.query_row_cached(
        "SELECT payout FROM nodes WHERE node = ?1",
        params![node],
        |r| r.get(0),
    )
    .optional()
    .op("payout_of")
}

/// Records a cross-check result for `node` (a node key as text): check `check_id` found it
/// right (`passed`) or wrong at `now_ms`.
pub(crate) fn apply_check(
    conn: &Connection,
    node: &str,
    passed: bool,
    check_id: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    let verdict = if passed {
        CheckVerdict::Passed
    } else {
        CheckVerdict::Failed
    };
    apply_check_with(conn, node, verdict, check_id, now_ms, |c| {
        update_credibility(c, passed)
    })
}

/// Records a failed check of `node` where nobody else found the page it claimed (`page_gone`):
/// counted as failed, with the gentler credibility step of
/// [`crate::scoring::update_credibility_page_gone`].
pub(crate) fn apply_page_gone(
    conn: &Connection,
    node: &str,
    check_id: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    apply_check_with(
        conn,
        node,
        CheckVerdict::PageGone,
        check_id,
        now_ms,
        crate::scoring::update_credibility_page_gone,
    )
}

/// How one cross-check judged one node, in a row of its check history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckVerdict {
    /// Its text agreed with the fetch that decided (or it was the deciding fetch).
    Passed,
    /// A fetch that decided contradicted its text: its record revoked, its open epoch's points
    /// forfeited, its credibility back toward the start.
    Failed,
    /// Nobody else found the page it claimed: its record revoked and its points taken back,
    /// credibility down by a pass's weight only, since a page can go between two fetches.
    PageGone,
}

impl CheckVerdict {
    fn as_str(self) -> &'static str {
        match self {
            CheckVerdict::Passed => "passed",
            CheckVerdict::Failed => "failed",
            CheckVerdict::PageGone => "page_gone",
        }
    }
}

impl rusqlite::types::FromSql for CheckVerdict {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        [
            CheckVerdict::Passed,
            CheckVerdict::Failed,
            CheckVerdict::PageGone,
        ]
        .into_iter()
        .find(|v| v.as_str() == text)
        .ok_or_else(|| rusqlite::types::FromSqlError::Other(format!("verdict {text:?}").into()))
    }
}

fn apply_check_with(
    conn: &Connection,
    node: &str,
    verdict: CheckVerdict,
    check_id: i64,
    now_ms: i64,
    next_credibility: impl FnOnce(f64) -> f64,
) -> Result<(), StoreError> {
    let current: Option<f64> = conn
        .query_row_cached(
            "SELECT credibility FROM nodes WHERE node = ?1",
            params![node],
            |r| r.get(0),
        )
        .optional()
        .op("apply_check")?;
    let Some(current) = current else {
        return Ok(());
    };
    let next = next_credibility(current);
    let sql = if verdict == CheckVerdict::Passed {
        "UPDATE nodes SET credibility = ?2, checks_passed = checks_passed + 1 WHERE node = ?1"
    } else {
        "UPDATE nodes SET credibility = ?2, checks_failed = checks_failed + 1 WHERE node = ?1"
    };
    conn.exec_cached(sql, params![node, next])
        .op("apply_check")?;
    conn.exec_cached(
        "INSERT INTO node_judgements(node, check_id, at_ms, verdict, credibility_before,
                                     credibility_after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![node, check_id, now_ms, verdict.as_str(), current, next],
    )
    .op("apply_check")?;
    Ok(())
}

/// One row of a node's check history: what cross-check `check` said of the node, and what it
/// did to its credibility. Kept since schema version 25; checks judged before are only in the
/// node's counts.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Judgement {
    /// Order of judgements across all nodes; the next page starts after the last one's.
    pub seq: i64,
    /// The cross-check (one page fetched by two nodes, perhaps more when they disagreed).
    pub check: i64,
    pub at_ms: i64,
    pub verdict: CheckVerdict,
    /// The node's part in the check: `primary` (the job's first fetch), `checker` (the second)
    /// or `tiebreak` (a fetch that decided a disagreement).
    pub role: String,
    /// The page.
    pub url: String,
    /// How the check ended (`agreed`, `primary_upheld`, `check_upheld`, `page_gone`, …; see the
    /// validator's README, "Fraud checks"), or where it stands if a later fetch is still to
    /// settle it.
    pub outcome: String,
    /// MinHash similarity of the first two fetches' texts, when both had one.
    pub similarity: Option<f64>,
    pub credibility_before: f64,
    pub credibility_after: f64,
}

/// At most `limit` judgements of `node` whose `seq` is above `after`, oldest first.
pub(super) fn judgements_in(
    conn: &Connection,
    node: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<Judgement>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT j.seq, j.check_id, j.at_ms, j.verdict, j.credibility_before,
                    j.credibility_after, c.url, c.outcome, c.similarity,
                    CASE WHEN c.primary_node = j.node THEN 'primary'
                         WHEN c.check_node = j.node THEN 'checker'
                         ELSE 'tiebreak' END
               FROM node_judgements j JOIN cross_checks c ON c.id = j.check_id
              WHERE j.node = ?1 AND j.seq > ?2 ORDER BY j.seq LIMIT ?3",
        )
        .op("judgements")?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(params![node, after, limit], |r| {
            Ok(Judgement {
                seq: r.get(0)?,
                check: r.get(1)?,
                at_ms: r.get(2)?,
                verdict: r.get(3)?,
                credibility_before: r.get(4)?,
                credibility_after: r.get(5)?,
                url: r.get(6)?,
                outcome: r.get(7)?,
                similarity: r.get(8)?,
                role: r.get(9)?,
            })
        })
        .op("judgements")?;
    rows.map(|row| row.op("judgements")).collect()
}

/// [`Store::register_node`] on `conn` (inside a group's savepoint).
pub(super) fn register_in(
    conn: &Connection,
    node: &PublicKey,
    payout: &PublicKey,
    client: &str,
    now_ms: i64,
) -> Result<NodeRow, StoreError> {
    if client.len() > MAX_CLIENT_BYTES || client.chars().any(char::is_control) {
        return Err(StoreError::Invalid {
            field: "client",
            why: format!("at most {MAX_CLIENT_BYTES} bytes without control characters"),
        });
    }
    if !payout.is_valid() {
        return Err(StoreError::Invalid {
            field: "payout",
            why: "not a valid ed25519 public key".into(),
        });
    }
    conn.exec_cached(
        "INSERT INTO nodes(node, payout, client, registered_at_ms, last_seen_ms, credibility)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5)
         ON CONFLICT(node) DO UPDATE SET payout = ?2, client = ?3, last_seen_ms = ?4",
        params![
            node.to_string(),
            payout.to_string(),
            client,
            now_ms,
            CREDIBILITY_START
        ],
    )
    .op("register_node")?;
    super::read::node_in(conn, node)?.ok_or_else(|| StoreError::NotFound {
        what: format!("node {node}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A suspended node gets no lease and no batch of its is taken; its open leases go back to
    /// the queue for other nodes at once; a batch receipted before is answered again; its
    /// standing says why; resumed, it works again.
    #[test]
    fn a_suspended_node_gets_no_work_and_its_leases_go_back() {
        use crate::store::IngestOutcome;
        use crate::testkit::{ingest_batch, lease_params, leased_jobs, record_for, sample_text};
        use gleaner_protocol::SecretKey;

        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
        let validator = SecretKey::from_bytes(&[61; 32]);
        let (a, b) = (
            SecretKey::from_bytes(&[41; 32]),
            SecretKey::from_bytes(&[42; 32]),
        );
        let now = 1_780_000_000_000;
        let jobs = leased_jobs(&store, &a, 3, now).unwrap();
        assert_eq!(jobs.len(), 3);
        let first = || vec![record_for(&a, &jobs[0], sample_text(1, 3_000), now + 1)];
        let receipted = ingest_batch(&store, &a, &validator, first(), now + 2).unwrap();

        let done = store
            .suspend_node(&a.public(), "  fabricated pages  ", now + 3)
            .unwrap();
        assert_eq!(done.reason, "fabricated pages");
        assert_eq!(done.suspended_at_ms, now + 3);
        assert_eq!(done.leases_released, 2, "the two leases still open");
        // Suspended again: the reason changes, the time stays, nothing more to give back.
        let again = store.suspend_node(&a.public(), "spam", now + 4).unwrap();
        assert_eq!(
            (
                again.suspended_at_ms,
                again.leases_released,
                again.reason.as_str()
            ),
            (now + 3, 0, "spam")
        );

        let refused = store
            .lease(&a.public(), 5, now + 5, &lease_params(10))
            .unwrap_err();
        assert_eq!(refused.code(), "node_suspended");
        assert!(refused.to_string().contains("spam"), "{refused}");
        let late = vec![record_for(&a, &jobs[1], sample_text(2, 3_000), now + 6)];
        let refused = ingest_batch(&store, &a, &validator, late, now + 6).unwrap_err();
        assert_eq!(refused.code(), "node_suspended");
        // The batch it sent before is answered with its receipt, byte for byte.
        match ingest_batch(&store, &a, &validator, first(), now + 2).unwrap() {
            IngestOutcome::Replayed { json } => assert_eq!(json, receipted.json()),
            IngestOutcome::Fresh { .. } => panic!("ingested twice"),
        }

        // The pages it held go to another node.
        store
            .register_node(&b.public(), &b.public(), "test", now)
            .unwrap();
        let mut theirs: Vec<String> = store
            .lease(&b.public(), 5, now + 7, &lease_params(10))
            .unwrap()
            .jobs
            .into_iter()
            .map(|j| j.url)
            .collect();
        theirs.sort();
        assert_eq!(theirs, vec![jobs[1].url.clone(), jobs[2].url.clone()]);

        let row = |store: &Store| {
            let nodes = store.nodes().unwrap();
            nodes.into_iter().find(|n| n.node == a.public()).unwrap()
        };
        let standing = row(&store);
        assert_eq!(standing.suspended_reason.as_deref(), Some("spam"));
        assert_eq!(standing.suspended_at_ms, Some(now + 3));
        assert_eq!(standing.records_accepted, 1, "its records stay");

        assert!(store.resume_node(&a.public()).unwrap().was_suspended);
        assert!(!store.resume_node(&a.public()).unwrap().was_suspended);
        let standing = row(&store);
        assert_eq!(
            (standing.suspended_at_ms, standing.suspended_reason),
            (None, None)
        );
        store
            .lease(&a.public(), 5, now + 8, &lease_params(10))
            .unwrap();
    }

    /// Only a registered node is suspended, and only for a reason its owner can read; a refused
    /// suspension changes nothing.
    #[test]
    fn a_suspension_needs_a_registered_node_and_a_readable_reason() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
        let key = |b: u8| gleaner_protocol::SecretKey::from_bytes(&[b; 32]).public();
        let (node, stranger) = (key(43), key(44));
        store.register_node(&node, &node, "test", 0).unwrap();
        let err = store.suspend_node(&stranger, "spam", 1).unwrap_err();
        assert_eq!(err.code(), "not_found");
        assert_eq!(
            store.resume_node(&stranger).unwrap_err().code(),
            "not_found"
        );
        let long = "x".repeat(MAX_SUSPENSION_REASON_BYTES + 1);
        for bad in ["", "   ", "bell\u{7}", "two\nlines", long.as_str()] {
            let err = store.suspend_node(&node, bad, 1).unwrap_err();
            assert_eq!(err.code(), "invalid_request", "{bad:?}");
        }
        let row = store.nodes().unwrap().remove(0);
        assert_eq!((row.suspended_at_ms, row.suspended_reason), (None, None));
        let at_limit = "y".repeat(MAX_SUSPENSION_REASON_BYTES);
        assert_eq!(
            store.suspend_node(&node, &at_limit, 1).unwrap().reason,
            at_limit
        );
    }

    #[test]
    fn networks_are_ipv4_24s_and_ipv6_48s_and_loopback_is_none() {
        let net = |ip: &str| Network::of(ip.parse().unwrap()).map(|n| n.to_string());
        assert_eq!(net("203.0.113.7").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(net("203.0.113.7"), net("203.0.113.250"), "one /24");
        assert_ne!(net("203.0.113.7"), net("203.0.114.7"));
        // An IPv4 address written as IPv6 is the IPv4 address.
        assert_eq!(net("::ffff:203.0.113.9").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(net("2001:db8:1:2:3::4").as_deref(), Some("2001:db8:1::/48"));
        assert_eq!(net("2001:db8:1:ffff::1"), net("2001:db8:1::9"), "one /48");
        assert_ne!(net("2001:db8:1::1"), net("2001:db8:2::1"));
        // Private networks are networks: nodes behind one router are not independent.
        assert_eq!(net("192.168.1.20").as_deref(), Some("192.168.1.0/24"));
        for none in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "0.0.0.0",
            "::",
            "::ffff:127.0.0.1",
        ] {
            assert_eq!(net(none), None, "{none}");
        }
        // The token never looks like a key.
        assert!(network_token("203.0.113.0/24").contains(':'));
    }

    /// A check's exclusion list starts with the checked node's network when it is known (the
    /// lease passes over a network's lists in one seek), then names the node and its payout;
    /// a tie-break's names both nodes so.
    #[test]
    fn exclusion_lists_start_with_the_network() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
        let key = |b: u8| gleaner_protocol::SecretKey::from_bytes(&[b; 32]).public();
        let (a, b, pay) = (key(1), key(2), key(3));
        store.register_node(&a, &pay, "test", 0).unwrap();
        store.register_node(&b, &b, "test", 0).unwrap();
        let conn = store.writer().unwrap();
        conn.execute(
            "UPDATE nodes SET network = '203.0.113.0/24' WHERE node = ?1",
            [a.to_string()],
        )
        .unwrap();
        let (a, b, pay) = (a.to_string(), b.to_string(), pay.to_string());
        assert_eq!(
            not_independent_of(&conn, &[&a]).unwrap(),
            format!("net:203.0.113.0/24 {a} {pay}")
        );
        assert_eq!(
            not_independent_of(&conn, &[&b]).unwrap(),
            format!("{b} {b}")
        );
        assert_eq!(
            not_independent_of(&conn, &[&a, &b]).unwrap(),
            format!("net:203.0.113.0/24 {a} {pay} {b} {b}")
        );
        // An unknown node is named alone.
        assert_eq!(not_independent_of(&conn, &["someone"]).unwrap(), "someone");
    }
}
