//! Disputed cross-checks settled by the validator's own fetch (schema version 15).
//!
//! When a check fetch disagrees with the primary, the dispute waits in `tiebreak_fetches` (with
//! ingest's `validator_tiebreaks`). The server's tie-break timer fetches the page with the
//! node's own safe fetcher and cleaner (`crate::tiebreak`) and hands the text's signature to
//! [`Store::settle_by_validator`]: the fetch it agrees with is upheld and the other node
//! penalised, as a third node's fetch would. If the validator cannot fetch the page, nobody is
//! blamed for it: the tie-break goes to a third node instead.

use rusqlite::{OptionalExtension, params};

use super::ingest::{Third, TiebreakPlace, dispute_of, settle_dispute, third_node_tiebreak};
use super::{Cached, Group, Op, Store, StoreError, open_epoch};
use crate::dedup::MinHash;

/// A disputed check waiting for the validator's fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TiebreakFetch {
    pub check_id: i64,
    pub url: String,
    /// The page's registered domain, as the frontier keys its politeness.
    pub domain: String,
}

/// What the validator's fetch of a disputed page gave.
#[derive(Debug, Clone, PartialEq)]
pub enum ValidatorFetch {
    /// The page's main text, as a node's cleaner extracts it, by its MinHash signature.
    Text(MinHash),
    /// No text: a reason code (the fetch error's, or why the page gave no text).
    Failed { code: String },
    /// Not fetched (the site made no request): why, e.g. its domain stayed busy too long.
    NotTried { code: String },
}

/// Longest a dispute waits for its domain to be free for the validator's fetch before a third
/// node takes it through the frontier's own queue: on a domain nodes keep busy, a free moment
/// may not come at a pass.
pub const TIEBREAK_MAX_WAIT_MS: i64 = 120_000;

/// How a disputed check ended after the validator's fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TiebreakSettled {
    /// Settled: `primary_upheld`, `check_upheld` or `inconclusive`.
    Settled(&'static str),
    /// The validator's fetch failed: a third node fetches the page instead.
    ToNodes,
    /// Nothing to do: the check is not disputed (any more), or not queued.
    Nothing,
}

/// A [`TiebreakFetch`] from a row of `check_id, url, domain`.
fn fetch_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TiebreakFetch> {
    Ok(TiebreakFetch {
        check_id: r.get(0)?,
        url: r.get(1)?,
        domain: r.get(2)?,
    })
}

impl Store {
    /// Up to `limit` disputed checks waiting for the validator's fetch, oldest first, whose
    /// domains the network's politeness lets the validator fetch at `now_ms`: no node holds a
    /// lease there and the domain is not resting. The validator's fetch keeps the same
    /// per-domain rules as the nodes' ([`Store::settle_by_validator`] rests the domain after it).
    pub fn pending_tiebreak_fetches(
        &self,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<TiebreakFetch>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT t.check_id, t.url, t.domain FROM tiebreak_fetches t
                   LEFT JOIN domains d ON d.domain = t.domain
                  WHERE d.domain IS NULL OR (d.active_leases = 0 AND d.next_allowed_ms <= ?2)
                  ORDER BY t.queued_at_ms, t.check_id LIMIT ?1",
            )
            .op("pending_tiebreak_fetches")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![limit, now_ms], fetch_row)
            .op("pending_tiebreak_fetches")?;
        rows.collect::<Result<Vec<_>, _>>()
            .op("pending_tiebreak_fetches")
    }

    /// Disputes that have waited longer than `max_wait_ms` for their domain to be free, oldest
    /// first (the validator hands them to third nodes: [`ValidatorFetch::NotTried`]).
    pub fn stale_tiebreak_fetches(
        &self,
        now_ms: i64,
        max_wait_ms: i64,
    ) -> Result<Vec<TiebreakFetch>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT check_id, url, domain FROM tiebreak_fetches WHERE queued_at_ms < ?1
                  ORDER BY queued_at_ms, check_id",
            )
            .op("stale_tiebreak_fetches")?;
        let rows = stmt
            .query_map(params![now_ms.saturating_sub(max_wait_ms)], fetch_row)
            .op("stale_tiebreak_fetches")?;
        rows.collect::<Result<Vec<_>, _>>()
            .op("stale_tiebreak_fetches")
    }

    /// Waiting disputes in all, whatever their domains' state.
    pub fn tiebreak_fetches_waiting(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .reader()?
            .query_row_cached("SELECT COUNT(*) FROM tiebreak_fetches", [], |r| r.get(0))
            .op("tiebreak_fetches_waiting")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Settles disputed check `check_id` with the validator's fetch (see the module docs), in
    /// one transaction, and rests the page's domain as a node's fetch would (`domain_delay_ms`,
    /// or the site's crawl delay if longer).
    pub fn settle_by_validator(
        &self,
        check_id: i64,
        fetched: &ValidatorFetch,
        now_ms: i64,
        domain_delay_ms: i64,
    ) -> Result<TiebreakSettled, StoreError> {
        self.group(|g| g.settle_by_validator(check_id, fetched, now_ms, domain_delay_ms))?
    }
}

impl Group<'_> {
    /// [`Store::settle_by_validator`] inside the group.
    pub fn settle_by_validator(
        &mut self,
        check_id: i64,
        fetched: &ValidatorFetch,
        now_ms: i64,
        domain_delay_ms: i64,
    ) -> Result<TiebreakSettled, StoreError> {
        self.savepoint(|conn, bands, _| {
            let place: Option<TiebreakPlace> = conn
                .query_row_cached(
                    "SELECT url, domain, request_id, depth FROM tiebreak_fetches
                     WHERE check_id = ?1",
                    params![check_id],
                    |r| {
                        Ok(TiebreakPlace {
                            url: r.get(0)?,
                            domain: r.get(1)?,
                            request_id: r.get(2)?,
                            depth: r.get(3)?,
                        })
                    },
                )
                .optional()
                .op("settle_by_validator")?;
            let Some(place) = place else {
                return Ok(TiebreakSettled::Nothing);
            };
            conn.exec_cached(
                "DELETE FROM tiebreak_fetches WHERE check_id = ?1",
                params![check_id],
            )
            .op("settle_by_validator")?;
            // The validator asked the site for a page (or tried to): the domain rests as after
            // a node's fetch.
            let asked = !matches!(fetched, ValidatorFetch::NotTried { .. });
            if asked {
                conn.exec_cached(
                    "UPDATE domains SET next_allowed_ms = MAX(next_allowed_ms,
                                                          ?2 + MAX(?3, crawl_delay_ms))
                 WHERE domain = ?1",
                    params![place.domain, now_ms, domain_delay_ms],
                )
                .op("settle_by_validator")?;
            }
            match fetched {
                ValidatorFetch::Text(sig) => {
                    let epoch = open_epoch(conn)?;
                    let settled = settle_dispute(
                        conn,
                        bands,
                        check_id,
                        sig,
                        Third::Validator,
                        epoch,
                        now_ms,
                    )?;
                    Ok(settled.map_or(TiebreakSettled::Nothing, TiebreakSettled::Settled))
                }
                ValidatorFetch::Failed { code } | ValidatorFetch::NotTried { code } => {
                    let Some(d) = dispute_of(conn, check_id)? else {
                        return Ok(TiebreakSettled::Nothing);
                    };
                    let check_node = d.check_node.unwrap_or_default();
                    third_node_tiebreak(
                        conn,
                        check_id,
                        &place,
                        &d.primary_node,
                        &check_node,
                        now_ms,
                    )?;
                    tracing::debug!(check = check_id, code = %code, "tie-break handed to a third node");
                    Ok(TiebreakSettled::ToNodes)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::store::DB_FILE;

    const NOW: i64 = 1_767_225_600_000;

    /// Three disputes on a domain with a lease out, an idle one and a resting one: only the idle
    /// domain's is offered; a failed fetch hands it to a third node (excluding both earlier
    /// nodes) and rests the domain; settling it again does nothing; the resting domain's is
    /// offered once its rest is over.
    #[test]
    fn the_validators_fetches_keep_the_networks_politeness() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let db = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        for (id, domain) in [
            (1, "busy.example"),
            (2, "idle.example"),
            (3, "resting.example"),
        ] {
            db.execute(
                "INSERT INTO cross_checks(id, url, primary_record, primary_node, check_record,
                                          check_node, outcome, created_at_ms)
                 VALUES (?1, ?2, x'01', 'P', x'02', 'C', 'disputed', 0)",
                params![id, format!("http://{domain}/p")],
            )
            .unwrap();
            db.execute(
                "INSERT INTO tiebreak_fetches(check_id, url, domain, request_id, depth,
                                              queued_at_ms)
                 VALUES (?1, ?2, ?3, 1, 0, ?1)",
                params![id, format!("http://{domain}/p"), domain],
            )
            .unwrap();
        }
        db.execute_batch(&format!(
            "INSERT INTO domains(domain, active_leases) VALUES ('busy.example', 1);
             INSERT INTO domains(domain) VALUES ('idle.example');
             INSERT INTO domains(domain, next_allowed_ms) VALUES ('resting.example', {});",
            NOW + 10_000
        ))
        .unwrap();
        let ids = |now| -> Vec<i64> {
            store
                .pending_tiebreak_fetches(10, now)
                .unwrap()
                .iter()
                .map(|t| t.check_id)
                .collect()
        };
        assert_eq!(ids(NOW), [2]);
        assert_eq!(store.tiebreak_fetches_waiting().unwrap(), 3);

        let failed = ValidatorFetch::Failed {
            code: "http_404".into(),
        };
        assert_eq!(
            store.settle_by_validator(2, &failed, NOW, 5_000).unwrap(),
            TiebreakSettled::ToNodes
        );
        let (kind, excluded): (String, String) = db
            .query_row(
                "SELECT kind, excluded FROM tasks WHERE check_id = 2",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((kind.as_str(), excluded.as_str()), ("tiebreak", "P C"));
        let rest: i64 = db
            .query_row(
                "SELECT next_allowed_ms FROM domains WHERE domain = 'idle.example'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            rest,
            NOW + 5_000,
            "the domain rests after the validator's fetch"
        );
        let outcome: String = db
            .query_row("SELECT outcome FROM cross_checks WHERE id = 2", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(outcome, "disputed", "a failed fetch settles nothing");
        assert_eq!(
            store.settle_by_validator(2, &failed, NOW, 5_000).unwrap(),
            TiebreakSettled::Nothing,
            "a dispute leaves the queue once"
        );
        assert!(ids(NOW + 1).is_empty());
        assert_eq!(ids(NOW + 10_000), [3]);
        assert_eq!(store.tiebreak_fetches_waiting().unwrap(), 2);

        // The busy domain's dispute (queued at 1) waits at most TIEBREAK_MAX_WAIT_MS, then goes
        // to a third node without a request made, so without resting the domain.
        let stale = |now| -> Vec<i64> {
            store
                .stale_tiebreak_fetches(now, TIEBREAK_MAX_WAIT_MS)
                .unwrap()
                .iter()
                .map(|t| t.check_id)
                .collect()
        };
        assert!(stale(TIEBREAK_MAX_WAIT_MS).is_empty());
        assert_eq!(stale(TIEBREAK_MAX_WAIT_MS + 2), [1]);
        let busy = ValidatorFetch::NotTried {
            code: "domain_busy".into(),
        };
        assert_eq!(
            store.settle_by_validator(1, &busy, NOW, 5_000).unwrap(),
            TiebreakSettled::ToNodes
        );
        let rest: i64 = db
            .query_row(
                "SELECT next_allowed_ms FROM domains WHERE domain = 'busy.example'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rest, 0, "no request, no rest");
        let tasks: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM tasks WHERE check_id = 1 AND kind = 'tiebreak'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tasks, 1);
    }
}
