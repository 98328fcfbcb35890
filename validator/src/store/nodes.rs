//! Node registration and credibility.

use gleaner_protocol::PublicKey;
use rusqlite::{Connection, OptionalExtension, params};

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

/// The node's payout key, credibility and failed checks (ingest reads them for its points and
/// its sampling), inside a transaction.
pub(crate) fn payout_credibility_failures(
    conn: &Connection,
    node: &PublicKey,
) -> Result<Option<(String, f64, i64)>, StoreError> {
    conn.query_row_cached(
        "SELECT payout, credibility, checks_failed FROM nodes WHERE node = ?1",
        params![node.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()
    .op("node_standing")
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

/// Records a cross-check result for `node` (a node key as text).
pub(crate) fn apply_check(conn: &Connection, node: &str, passed: bool) -> Result<(), StoreError> {
    apply_check_with(conn, node, passed, |c| update_credibility(c, passed))
}

/// Records a failed check of `node` where nobody else found the page it claimed (`page_gone`):
/// counted as failed, with the gentler credibility step of
/// [`crate::scoring::update_credibility_page_gone`].
pub(crate) fn apply_page_gone(conn: &Connection, node: &str) -> Result<(), StoreError> {
    apply_check_with(
        conn,
        node,
        false,
        crate::scoring::update_credibility_page_gone,
    )
}

fn apply_check_with(
    conn: &Connection,
    node: &str,
    passed: bool,
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
    let sql = if passed {
        "UPDATE nodes SET credibility = ?2, checks_passed = checks_passed + 1 WHERE node = ?1"
    } else {
        "UPDATE nodes SET credibility = ?2, checks_failed = checks_failed + 1 WHERE node = ?1"
    };
    conn.exec_cached(sql, params![node, next])
        .op("apply_check")?;
    Ok(())
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
