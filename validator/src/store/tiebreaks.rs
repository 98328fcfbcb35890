//! Disputed cross-checks settled by the validator's own fetch (schema version 15).
//!
//! When a check fetch disagrees with the primary, the dispute waits in `tiebreak_fetches` (with
//! ingest's `validator_tiebreaks`). The server's tie-break timer fetches the page with the
//! node's own safe fetcher and cleaner (`crate::tiebreak`) and hands the text's signature to
//! [`Store::settle_by_validator`]: the fetch it agrees with is upheld and the other node
//! penalised, as a third node's fetch would. If the site says there is no page
//! ([`ValidatorFetch::NoPage`]), both nodes claimed text that is not there and both records go
//! (`ingest::settle_gone_dispute`). If the validator cannot fetch the page otherwise, nobody is
//! blamed for it: the tie-break goes to a third node instead. A check whose checker found no page
//! (outcome `unfound`, `jobs::requeue_or_fail`) waits here too and is settled by the
//! validator's fetch alone (`ingest::settle_unfound`).
//!
//! The validator's fetch keeps the frontier's one-at-a-time per domain as a node's lease does:
//! [`Store::hold_next_tiebreak`] takes a free domain (no lease out) in one transaction, resting
//! it past the validator's fetch so no node is leased it, and [`Store::book_tiebreak_turns`]
//! lengthens the rest of a domain with a node's lease out, so that its next turn is the
//! validator's. Both are bounded in time: a hold or booking nobody uses ends by itself.

use gleaner_protocol::api::FailureReason;
use rusqlite::{OptionalExtension, params};

use super::ingest::{
    Third, TiebreakPlace, dispute_of, settle_audit, settle_dispute, settle_gone_dispute,
    settle_unchecked, settle_unfound, third_node_tiebreak,
};
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
    /// The site says there is no page here for a crawler: not found (404) or gone (410),
    /// robots.txt disallows it, not HTML, or not to be indexed (the code says which). Settles a
    /// check whose checker found no page either (`store::ingest::settle_unfound`), and a
    /// dispute, where two nodes claimed different texts for it, against both
    /// (`store::ingest::settle_gone_dispute`).
    NoPage { code: String },
    /// No text: a reason code (the fetch error's, or why the page gave no text).
    Failed { code: String },
    /// Not fetched (the site made no request): why, e.g. its domain stayed busy too long.
    NotTried { code: String },
}

/// Whether a failed fetch is the site's own word that there is no page here for a crawler, and
/// which (its code): not found (`http_404`) or gone (`http_410`), robots.txt disallows it
/// (`robots_disallowed`), not HTML (`not_html`), or not to be indexed (`noindex`). A checker's
/// report and the validator's own fetch are read by this one rule (`jobs::report_in`,
/// `crate::tiebreak`). Not 401, 403 or 451: sites refuse some addresses and not others, and a
/// node's home address may be let in where a checker's is not.
pub fn no_page(reason: FailureReason, status: Option<u16>) -> Option<&'static str> {
    match (reason, status) {
        (FailureReason::HttpError, Some(404)) => Some("http_404"),
        (FailureReason::HttpError, Some(410)) => Some("http_410"),
        (FailureReason::RobotsDisallowed | FailureReason::NotHtml | FailureReason::NoIndex, _) => {
            Some(reason.code())
        }
        _ => None,
    }
}

/// Longest a dispute waits for its domain to be free for the validator's fetch before a third
/// node takes it through the frontier's own queue: on a domain nodes keep busy, a free moment
/// may not come at a pass.
pub const TIEBREAK_MAX_WAIT_MS: i64 = 120_000;

/// Longest a check whose checker found no page (outcome `unfound`) waits for the validator's
/// fetch before it is abandoned. Nobody else can settle it (a third node's "no page" would be
/// one node's word against another's), and abandoning it leaves an invented page's points with
/// its node, so it waits far longer than a dispute: the validator fetches one page per domain
/// rest, and dead links cluster on a site (a whole section gone, links to pages never made), so
/// a queue of them on one busy domain takes minutes to clear.
pub const UNFOUND_MAX_WAIT_MS: i64 = 30 * 60_000;

/// How a check waiting for the validator's fetch stands after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TiebreakSettled {
    /// The check's outcome now: for a dispute `primary_upheld`, `check_upheld`, `inconclusive`
    /// (the validator's text agrees with both), `three_way` (with neither: a fourth fetch, a
    /// node's, is to decide) or `page_gone`; for a check whose checker found no page, also
    /// `abandoned`; for a check no node got done, also `agreed`, or `disputed` when a third
    /// node's fetch is to decide between the primary and the validator; for an audit `agreed`,
    /// `page_gone` or `audit_disputed` (a third node's fetch is to decide between the pair and
    /// the validator).
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

/// The dispute the validator may fetch soonest, and when: its domain has no lease out, and
/// `free_at` is when the rest after the domain's last fetch ends. That is the domain's rest, or
/// at the latest ?1 (now) plus the rest a fetch ending now would get (?3 the base delay or the
/// crawl delay, doubled per failure up to ?4 times, as `jobs::CLOSE_DOMAIN_LEASE` rests a
/// domain; keep the two alike): the last fetch ended before now, so its rest ends by then. A
/// longer rest than that is a booking for the validator ([`Store::book_tiebreak_turns`]), which
/// keeps nodes away but need not keep the validator waiting. Not a domain the validator holds
/// already (for another of its disputes). Only domains free by ?1 + ?2; soonest first, then
/// oldest dispute first; one row.
const NEXT_TIEBREAK_SQL: &str = "SELECT check_id, url, domain, free_at FROM (
        SELECT t.check_id, t.url, t.domain, t.queued_at_ms, d.active_leases,
               MAX(?1, MIN(COALESCE(d.next_allowed_ms, 0),
                           ?1 + MAX(?3, COALESCE(d.crawl_delay_ms, 0))
                                * (1 << MIN(MAX(COALESCE(d.failures, 0), 0), ?4)))) AS free_at
          FROM tiebreak_fetches t LEFT JOIN domains d ON d.domain = t.domain
         WHERE NOT EXISTS (SELECT 1 FROM tiebreak_fetches h
                            WHERE h.domain = t.domain AND h.held_until_ms > ?1))
      WHERE COALESCE(active_leases, 0) = 0 AND free_at <= ?1 + ?2
      ORDER BY free_at, queued_at_ms, check_id LIMIT 1";

/// How long the validator holds a disputed page's domain for its fetch at most: no node gets a
/// lease there meanwhile. Longer than the fetch may take ([`crate::tiebreak`] gives up sooner),
/// so the hold ends with the fetch; if the server stops mid-fetch, it ends by itself.
pub const TIEBREAK_HOLD_MS: i64 = 150_000;

/// A disputed page whose domain the validator holds while it fetches the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldTiebreak {
    pub fetch: TiebreakFetch,
    /// When the domain's rest after its last fetch ends: the validator fetches then, not sooner.
    pub fetch_at_ms: i64,
    /// No node gets a lease on the domain before this time (`fetch_at_ms` and the hold), unless
    /// the dispute is settled sooner ([`Store::settle_by_validator`] then rests the domain from
    /// the settling time).
    pub held_until_ms: i64,
}

impl Store {
    /// The dispute whose domain is free soonest (no lease out, and the rest after its last fetch
    /// over by `now_ms + max_wait_ms`, that rest being the domain's own or at most
    /// `domain_delay_ms` (or its crawl delay, with its failures' back-off) from now; the oldest
    /// dispute of those free as soon), with its domain taken for the validator's fetch in the
    /// same transaction: the domain counts as resting until the rest's end plus `hold_ms`, so
    /// no node is given a lease there until the validator has fetched, as no second node is
    /// while one holds a lease. The validator fetches once the rest is over
    /// ([`HeldTiebreak::fetch_at_ms`]). `None` when no dispute's domain is free so soon.
    pub fn hold_next_tiebreak(
        &self,
        now_ms: i64,
        hold_ms: i64,
        max_wait_ms: i64,
        domain_delay_ms: i64,
    ) -> Result<Option<HeldTiebreak>, StoreError> {
        self.group(|g| g.hold_next_tiebreak(now_ms, hold_ms, max_wait_ms, domain_delay_ms))?
    }

    /// Books the validator the next turn on every domain with a lease out that a waiting
    /// dispute's page is on: the domain's rest is extended to at least `now_ms + turn_ms`, so
    /// when the node's lease closes no other node is given one before the validator's next pass
    /// (`turn_ms` longer than the pass interval) can hold the domain
    /// ([`Store::hold_next_tiebreak`]). Renewed at each pass while the lease is out; a booking
    /// nobody takes ends by itself. A domain with no lease out is not touched: the validator
    /// holds it at once. Returns the domains booked.
    pub fn book_tiebreak_turns(&self, now_ms: i64, turn_ms: i64) -> Result<usize, StoreError> {
        self.group(|g| {
            g.savepoint(|conn, _, _| {
                conn.exec_cached(
                    "UPDATE domains SET next_allowed_ms = MAX(next_allowed_ms, ?1 + ?2)
                      WHERE active_leases > 0
                        AND domain IN (SELECT domain FROM tiebreak_fetches)",
                    params![now_ms, turn_ms],
                )
                .op("book_tiebreak_turns")
            })
        })?
    }

    /// Validator fetches that have waited too long for their domain to be free, oldest first:
    /// disputes after [`TIEBREAK_MAX_WAIT_MS`] (the validator hands them to third nodes); checks
    /// that found no page or that no node got done (abandoned), and audits (the check stands
    /// unaudited), after [`UNFOUND_MAX_WAIT_MS`]; all settled with [`ValidatorFetch::NotTried`].
    pub fn stale_tiebreak_fetches(&self, now_ms: i64) -> Result<Vec<TiebreakFetch>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT t.check_id, t.url, t.domain
                   FROM tiebreak_fetches t JOIN cross_checks c ON c.id = t.check_id
                  WHERE t.queued_at_ms <
                        CASE WHEN c.outcome IN ('unfound', 'unchecked', 'auditing') THEN ?2
                             ELSE ?1 END
                  ORDER BY t.queued_at_ms, t.check_id",
            )
            .op("stale_tiebreak_fetches")?;
        let rows = stmt
            .query_map(
                params![
                    now_ms.saturating_sub(TIEBREAK_MAX_WAIT_MS),
                    now_ms.saturating_sub(UNFOUND_MAX_WAIT_MS)
                ],
                fetch_row,
            )
            .op("stale_tiebreak_fetches")?;
        rows.collect::<Result<Vec<_>, _>>()
            .op("stale_tiebreak_fetches")
    }

    /// With the validator's own fetches off (`tiebreak_interval_secs = 0`), hands on every check
    /// still waiting for one, as a fetch not tried would: a dispute goes to a third node, a check
    /// whose checker found no page, or that no node got done, ends `abandoned`. The server runs
    /// it at start-up, so that turning the fetches off strands no check. Returns how many.
    pub fn hand_on_validator_fetches(&self, now_ms: i64) -> Result<usize, StoreError> {
        let waiting: Vec<i64> = {
            let conn = self.reader()?;
            let mut stmt = conn
                .prepare("SELECT check_id FROM tiebreak_fetches ORDER BY queued_at_ms, check_id")
                .op("hand_on_validator_fetches")?;
            let rows = stmt
                .query_map([], |r| r.get(0))
                .op("hand_on_validator_fetches")?;
            rows.collect::<Result<_, _>>()
                .op("hand_on_validator_fetches")?
        };
        let off = ValidatorFetch::NotTried {
            code: "validator_fetches_off".into(),
        };
        for &check_id in &waiting {
            self.settle_by_validator(check_id, &off, now_ms, 0)?;
        }
        Ok(waiting.len())
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
    /// or the site's crawl delay if longer). The rest replaces the hold
    /// [`Store::hold_next_tiebreak`] noted on the dispute, if the domain still rests until exactly
    /// then (nothing else has pushed its rest further).
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
    /// [`Store::hold_next_tiebreak`] inside the group.
    pub fn hold_next_tiebreak(
        &mut self,
        now_ms: i64,
        hold_ms: i64,
        max_wait_ms: i64,
        domain_delay_ms: i64,
    ) -> Result<Option<HeldTiebreak>, StoreError> {
        self.savepoint(|conn, _, _| {
            let Some((fetch, fetch_at_ms)) = conn
                .query_row_cached(
                    NEXT_TIEBREAK_SQL,
                    params![
                        now_ms,
                        max_wait_ms.max(0),
                        domain_delay_ms.max(0),
                        super::jobs::MAX_BACKOFF_SHIFT
                    ],
                    |r| Ok((fetch_row(r)?, r.get::<_, i64>(3)?)),
                )
                .optional()
                .op("hold_next_tiebreak")?
            else {
                return Ok(None);
            };
            let held_until_ms = fetch_at_ms.saturating_add(hold_ms.max(1));
            conn.exec_cached(
                "INSERT INTO domains(domain, next_allowed_ms) VALUES (?1, ?2)
                 ON CONFLICT(domain) DO UPDATE SET next_allowed_ms = excluded.next_allowed_ms",
                params![fetch.domain, held_until_ms],
            )
            .op("hold_next_tiebreak")?;
            conn.exec_cached(
                "UPDATE tiebreak_fetches SET held_until_ms = ?2 WHERE check_id = ?1",
                params![fetch.check_id, held_until_ms],
            )
            .op("hold_next_tiebreak")?;
            Ok(Some(HeldTiebreak {
                fetch,
                fetch_at_ms,
                held_until_ms,
            }))
        })
    }

    /// [`Store::settle_by_validator`] inside the group.
    pub fn settle_by_validator(
        &mut self,
        check_id: i64,
        fetched: &ValidatorFetch,
        now_ms: i64,
        domain_delay_ms: i64,
    ) -> Result<TiebreakSettled, StoreError> {
        self.savepoint(|conn, bands, _| {
            let place: Option<(TiebreakPlace, Option<i64>)> = conn
                .query_row_cached(
                    "SELECT url, domain, request_id, depth, held_until_ms FROM tiebreak_fetches
                     WHERE check_id = ?1",
                    params![check_id],
                    |r| {
                        let place = TiebreakPlace {
                            url: r.get(0)?,
                            domain: r.get(1)?,
                            request_id: r.get(2)?,
                            depth: r.get(3)?,
                        };
                        Ok((place, r.get(4)?))
                    },
                )
                .optional()
                .op("settle_by_validator")?;
            let Some((place, held_until_ms)) = place else {
                return Ok(TiebreakSettled::Nothing);
            };
            conn.exec_cached(
                "DELETE FROM tiebreak_fetches WHERE check_id = ?1",
                params![check_id],
            )
            .op("settle_by_validator")?;
            // The validator asked the site for a page (or tried to): the domain rests as after
            // a node's fetch, from now, in place of the hold on it for the fetch.
            let asked = !matches!(fetched, ValidatorFetch::NotTried { .. });
            if asked {
                conn.exec_cached(
                    "UPDATE domains SET next_allowed_ms =
                        CASE WHEN next_allowed_ms = ?4 THEN ?2 + MAX(?3, crawl_delay_ms)
                             ELSE MAX(next_allowed_ms, ?2 + MAX(?3, crawl_delay_ms)) END
                     WHERE domain = ?1",
                    params![place.domain, now_ms, domain_delay_ms, held_until_ms],
                )
                .op("settle_by_validator")?;
            }
            let Some(d) = dispute_of(conn, check_id)? else {
                return Ok(TiebreakSettled::Nothing);
            };
            // What the validator's fetch is for: the check of a checker that found no page, of a
            // check nobody did, an audit of an agreed check, or else the third fetch of a dispute.
            let settled = match d.outcome.as_str() {
                "unfound" => Some(settle_unfound(conn, bands, &d, fetched, now_ms)?),
                "unchecked" => Some(settle_unchecked(conn, bands, &d, &place, fetched, now_ms)?),
                "auditing" => Some(settle_audit(conn, bands, &d, &place, fetched, now_ms)?),
                _ => None,
            };
            if let Some(outcome) = settled {
                return Ok(TiebreakSettled::Settled(outcome));
            }
            match fetched {
                ValidatorFetch::Text(sig) => {
                    let epoch = open_epoch(conn)?;
                    let settled = settle_dispute(
                        conn,
                        bands,
                        d,
                        sig,
                        Third::Validator { place: &place },
                        epoch,
                        now_ms,
                    )?;
                    Ok(settled.map_or(TiebreakSettled::Nothing, TiebreakSettled::Settled))
                }
                ValidatorFetch::NoPage { code } => {
                    let settled = settle_gone_dispute(conn, bands, &d, code, now_ms)?;
                    Ok(settled.map_or(TiebreakSettled::Nothing, TiebreakSettled::Settled))
                }
                ValidatorFetch::Failed { code } | ValidatorFetch::NotTried { code } => {
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

    /// Queues dispute `id` of a page on `domain` for the validator's fetch, as ingest does when
    /// a check disagrees with its primary (queued at `id` ms, so lower ids are older).
    fn queue_dispute(db: &rusqlite::Connection, id: i64, domain: &str) {
        let url = format!("http://{domain}/d");
        db.execute(
            "INSERT INTO cross_checks(id, url, primary_record, primary_node, check_record,
                                      check_node, outcome, created_at_ms)
             VALUES (?1, ?2, x'01', 'P', x'02', 'C', 'disputed', 0)",
            params![id, url],
        )
        .unwrap();
        db.execute(
            "INSERT INTO tiebreak_fetches(check_id, url, domain, request_id, depth, queued_at_ms)
             VALUES (?1, ?2, ?3, 1, 0, ?1)",
            params![id, url, domain],
        )
        .unwrap();
    }

    /// Three disputes on a domain with a lease out, an idle one and a resting one: only the idle
    /// domain's is taken; a failed fetch hands it to a third node (excluding both earlier
    /// nodes) and rests the domain in place of the hold; settling it again does nothing; the
    /// resting domain's is taken once its rest is over.
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
            queue_dispute(&db, id, domain);
        }
        db.execute_batch(&format!(
            "INSERT INTO domains(domain, active_leases) VALUES ('busy.example', 1);
             INSERT INTO domains(domain) VALUES ('idle.example');
             INSERT INTO domains(domain, next_allowed_ms) VALUES ('resting.example', {});",
            NOW + 10_000
        ))
        .unwrap();
        // The dispute the validator's pass takes next at `now`, without waiting for a rest.
        let next = |now| -> Option<i64> {
            store
                .hold_next_tiebreak(now, TIEBREAK_HOLD_MS, 0, 5_000)
                .unwrap()
                .map(|h| h.fetch.check_id)
        };
        assert_eq!(next(NOW), Some(2));
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
        assert_eq!(next(NOW + 1), None);
        assert_eq!(next(NOW + 10_000), Some(3));
        assert_eq!(store.tiebreak_fetches_waiting().unwrap(), 2);

        // The busy domain's dispute (queued at 1) waits at most TIEBREAK_MAX_WAIT_MS, then goes
        // to a third node without a request made, so without resting the domain.
        let stale = |now| -> Vec<i64> {
            store
                .stale_tiebreak_fetches(now)
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

    /// The one rule for "the site says there is no page": 404, 410, robots.txt, not HTML and
    /// noindex are; walls some addresses meet (401, 403, 451), host trouble and refusals on the
    /// node's side are not.
    #[test]
    fn no_page_is_the_sites_word_only() {
        use FailureReason as R;
        for (reason, status, code) in [
            (R::HttpError, Some(404), Some("http_404")),
            (R::HttpError, Some(410), Some("http_410")),
            (R::RobotsDisallowed, None, Some("robots_disallowed")),
            (R::NotHtml, Some(200), Some("not_html")),
            (R::NoIndex, None, Some("noindex")),
            (R::HttpError, Some(401), None),
            (R::HttpError, Some(403), None),
            (R::HttpError, Some(451), None),
            (R::HttpError, Some(429), None),
            (R::HttpError, Some(500), None),
            (R::HttpError, None, None),
            (R::RobotsUnreachable, None, None),
            (R::Timeout, None, None),
            (R::BlockedAddress, None, None),
            (R::TooLarge, None, None),
        ] {
            assert_eq!(no_page(reason, status), code, "{reason:?} {status:?}");
        }
    }

    /// A check whose checker found no page (1), or that no node got done (2), when the
    /// validator cannot tell either (its fetch failed, or its domain stayed busy): abandoned,
    /// blaming nobody, and no third node asked; a dispute whose domain stayed busy goes to a
    /// third node; an audit not made leaves its check agreed.
    #[test]
    fn an_unfound_check_the_validator_cannot_settle_is_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let db = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        for (id, domain) in [
            (1, "a.example"),
            (2, "b.example"),
            (3, "c.example"),
            (4, "d.example"),
        ] {
            queue_dispute(&db, id, domain);
        }
        db.execute(
            "UPDATE cross_checks SET outcome = 'unfound', check_record = NULL WHERE id IN (1, 2)",
            [],
        )
        .unwrap();
        db.execute(
            "UPDATE cross_checks SET outcome = 'unchecked', check_node = NULL WHERE id = 2",
            [],
        )
        .unwrap();
        db.execute(
            "UPDATE cross_checks SET outcome = 'auditing' WHERE id = 4",
            [],
        )
        .unwrap();
        // Queued at 1 to 4: the dispute (3) goes stale (to a third node) after two minutes, the
        // checks that found no page (1), that no node got done (2), or that wait for an audit
        // (4) only after half an hour.
        let stale = |now| -> Vec<i64> {
            let fetches = store.stale_tiebreak_fetches(now).unwrap();
            fetches.iter().map(|t| t.check_id).collect()
        };
        assert!(stale(TIEBREAK_MAX_WAIT_MS + 3).is_empty());
        assert_eq!(stale(TIEBREAK_MAX_WAIT_MS + 4), [3]);
        assert_eq!(stale(UNFOUND_MAX_WAIT_MS + 1), [3]);
        assert_eq!(stale(UNFOUND_MAX_WAIT_MS + 2), [1, 3]);
        assert_eq!(stale(UNFOUND_MAX_WAIT_MS + 3), [1, 2, 3]);
        assert_eq!(stale(UNFOUND_MAX_WAIT_MS + 4), [1, 2, 3]);
        assert_eq!(stale(UNFOUND_MAX_WAIT_MS + 5), [1, 2, 3, 4]);
        let failed = ValidatorFetch::Failed {
            code: "timeout".into(),
        };
        let busy = ValidatorFetch::NotTried {
            code: "domain_busy".into(),
        };
        assert_eq!(
            store.settle_by_validator(1, &failed, NOW, 1_000).unwrap(),
            TiebreakSettled::Settled("abandoned")
        );
        assert_eq!(
            store.settle_by_validator(2, &busy, NOW, 1_000).unwrap(),
            TiebreakSettled::Settled("abandoned")
        );
        assert_eq!(
            store.settle_by_validator(3, &busy, NOW, 1_000).unwrap(),
            TiebreakSettled::ToNodes
        );
        assert_eq!(
            store.settle_by_validator(4, &busy, NOW, 1_000).unwrap(),
            TiebreakSettled::Settled("agreed"),
            "an audit not made leaves the check as it was"
        );
        let check = |id: i64| -> (String, Option<String>) {
            db.query_row(
                "SELECT outcome, tiebreak_node FROM cross_checks WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
        };
        assert_eq!(check(1), ("abandoned".into(), Some("validator".into())));
        assert_eq!(check(2), ("abandoned".into(), None), "not fetched");
        assert_eq!(check(3).0, "disputed");
        assert_eq!(check(4), ("agreed".into(), None), "not audited");
        let third_tasks: Vec<i64> = db
            .prepare("SELECT check_id FROM tasks WHERE kind = 'tiebreak' ORDER BY check_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(third_tasks, [3]);
        assert_eq!(store.tiebreak_fetches_waiting().unwrap(), 0);
        let gone = ValidatorFetch::NoPage {
            code: "http_404".into(),
        };
        assert_eq!(
            store.settle_by_validator(1, &gone, NOW, 1_000).unwrap(),
            TiebreakSettled::Nothing,
            "settled once"
        );
        let penalties: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM ledger WHERE kind = 'penalty'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(penalties, 0, "nobody penalised");
    }

    /// While the validator fetches a disputed page its domain is held: no node is leased it,
    /// though its URLs are queued and the domain was idle. Settling replaces the hold with the
    /// domain's rest from the settling time; a hold nobody settles (the server stopped
    /// mid-fetch) ends by itself.
    #[test]
    fn no_node_is_leased_a_domain_the_validator_is_fetching_from() {
        use crate::store::CrawlRequest;
        use gleaner_protocol::SecretKey;

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let db = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        let node = SecretKey::from_bytes(&[7; 32]).public();
        store.register_node(&node, &node, "test", 0).unwrap();
        let seeds = ["held.example", "gone.example", "other.example"]
            .iter()
            .flat_map(|d| (0..3).map(move |p| format!("http://{d}/p{p}")))
            .collect();
        let request = CrawlRequest {
            seeds,
            domains: Vec::new(),
            sitemaps: Vec::new(),
            max_pages: 100,
            max_depth: 0,
        };
        store.add_crawl_request("test", &request, 0).unwrap();
        for (id, domain) in [(1, "held.example"), (2, "gone.example")] {
            queue_dispute(&db, id, domain);
        }
        let p = crate::testkit::lease_params(100);
        let leased_domains = |now| -> Vec<String> {
            let mut d: Vec<String> = store
                .lease(&node, 10, now, &p)
                .unwrap()
                .jobs
                .iter()
                .map(|j| j.url.split('/').nth(2).unwrap().to_string())
                .collect();
            d.sort();
            d
        };

        let first = store
            .hold_next_tiebreak(NOW, TIEBREAK_HOLD_MS, 0, 1_000)
            .unwrap()
            .unwrap();
        assert_eq!(first.fetch.check_id, 1, "oldest first");
        assert_eq!(first.held_until_ms, NOW + TIEBREAK_HOLD_MS);
        let second = store
            .hold_next_tiebreak(NOW, TIEBREAK_HOLD_MS, 0, 1_000)
            .unwrap()
            .unwrap();
        assert_eq!(second.fetch.check_id, 2);
        assert_eq!(
            store
                .hold_next_tiebreak(NOW, TIEBREAK_HOLD_MS, 10_000, 1_000)
                .unwrap(),
            None,
            "a held domain is not taken again, however long the wait allowed"
        );
        assert_eq!(
            leased_domains(NOW + 1),
            ["other.example"],
            "no node is leased a domain the validator is fetching from"
        );

        // The first fetch ends: the domain rests by the delay from now, not until the hold's end.
        let failed = ValidatorFetch::Failed {
            code: "http_404".into(),
        };
        let settled = store
            .settle_by_validator(1, &failed, NOW + 2_000, 5_000)
            .unwrap();
        assert_eq!(settled, TiebreakSettled::ToNodes);
        let rest: i64 = db
            .query_row(
                "SELECT next_allowed_ms FROM domains WHERE domain = 'held.example'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rest, NOW + 7_000, "the rest replaces the hold");
        assert!(leased_domains(NOW + 6_999).is_empty());
        assert_eq!(leased_domains(NOW + 7_000), ["held.example"]);

        // The second is never settled: its hold ends by itself.
        assert!(leased_domains(NOW + TIEBREAK_HOLD_MS - 1).is_empty());
        assert_eq!(leased_domains(NOW + TIEBREAK_HOLD_MS), ["gone.example"]);
    }

    /// A dispute on a domain a node holds a lease on: the validator books the domain's next
    /// turn, so when the node's lease closes no other node is leased the domain before the
    /// validator holds it; the validator then fetches when the domain's rest is over. A resting
    /// domain with no lease out is not booked (its rest is not lengthened): it is held at once,
    /// to be fetched when its rest ends.
    #[test]
    fn a_busy_domains_next_turn_goes_to_the_validator() {
        use crate::store::{CrawlRequest, LeaseParams};
        use gleaner_protocol::SecretKey;
        use gleaner_protocol::api::{FailureReason, JobFailure};

        const TURN: i64 = 25_000;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let db = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        let node = SecretKey::from_bytes(&[7; 32]).public();
        store.register_node(&node, &node, "test", 0).unwrap();
        let request = CrawlRequest {
            seeds: (0..3)
                .map(|p| format!("http://busy.example/p{p}"))
                .collect(),
            domains: Vec::new(),
            sitemaps: Vec::new(),
            max_pages: 100,
            max_depth: 0,
        };
        store.add_crawl_request("test", &request, 0).unwrap();
        let p = LeaseParams {
            domain_delay_ms: 5_000,
            ..crate::testkit::lease_params(100)
        };
        let lease = |now| store.lease(&node, 10, now, &p).unwrap().jobs;
        let first = lease(NOW);
        assert_eq!(first.len(), 1, "one lease per domain");
        for (id, domain) in [(1, "busy.example"), (2, "resting.example")] {
            queue_dispute(&db, id, domain);
        }
        db.execute(
            "INSERT INTO domains(domain, next_allowed_ms) VALUES ('resting.example', ?1)",
            [NOW + 3_000],
        )
        .unwrap();
        let rest = |domain: &str| -> i64 {
            db.query_row(
                "SELECT next_allowed_ms FROM domains WHERE domain = ?1",
                [domain],
                |r| r.get(0),
            )
            .unwrap()
        };

        assert_eq!(store.book_tiebreak_turns(NOW, TURN).unwrap(), 1);
        assert_eq!(
            rest("busy.example"),
            NOW + TURN,
            "the lease-holding domain is booked"
        );
        assert_eq!(
            rest("resting.example"),
            NOW + 3_000,
            "a rest is not lengthened"
        );

        // The resting domain is held at once, for a fetch when its rest ends.
        let held = store
            .hold_next_tiebreak(NOW, TIEBREAK_HOLD_MS, TURN, 5_000)
            .unwrap()
            .unwrap();
        assert_eq!(held.fetch.check_id, 2);
        assert_eq!(held.fetch_at_ms, NOW + 3_000);
        assert_eq!(held.held_until_ms, NOW + 3_000 + TIEBREAK_HOLD_MS);
        assert_eq!(
            store
                .hold_next_tiebreak(NOW, TIEBREAK_HOLD_MS, TURN, 5_000)
                .unwrap(),
            None,
            "a domain with a lease out is not held"
        );

        // The node's lease closes (a failed fetch): the domain would rest 5 s, but its turn is
        // booked, so no node is leased it then.
        let failure = JobFailure {
            lease_id: first[0].lease_id.clone(),
            reason: FailureReason::HttpError,
            detail: String::new(),
            status: Some(503),
            crawl_delay_ms: None,
        };
        store
            .report_failures(&node, &[failure], NOW + 1_000, 5_000, false)
            .unwrap();
        assert_eq!(rest("busy.example"), NOW + TURN);
        assert!(lease(NOW + 6_001).is_empty(), "the validator's turn");

        // The validator's next pass holds the domain. It fetches once the rest after the node's
        // fetch is over, which the booking hides but which cannot end later than a fetch ending
        // now would rest (the delay, doubled per failure): not at the booking's end.
        let failures: u32 = db
            .query_row(
                "SELECT failures FROM domains WHERE domain = 'busy.example'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let backed_off = 5_000 * (1 << failures);
        let held = store
            .hold_next_tiebreak(NOW + 10_000, TIEBREAK_HOLD_MS, TURN, 5_000)
            .unwrap()
            .unwrap();
        assert_eq!(held.fetch.check_id, 1);
        assert_eq!(held.fetch_at_ms, NOW + 10_000 + backed_off);
        assert!(
            held.fetch_at_ms >= NOW + 1_000 + backed_off,
            "not before the node's fetch's rest ends"
        );
        assert!(held.fetch_at_ms < NOW + TURN, "not at the booking's end");
        assert!(lease(held.fetch_at_ms).is_empty());
        assert!(lease(NOW + TURN).is_empty());
        let failed = ValidatorFetch::Failed {
            code: "http_404".into(),
        };
        store
            .settle_by_validator(1, &failed, NOW + TURN + 500, 5_000)
            .unwrap();
        // The failed fetch queued a third node's task on the domain too; either may come next.
        assert_eq!(rest("busy.example"), NOW + TURN + 5_500);
        assert!(lease(NOW + TURN + 5_499).is_empty());
        assert_eq!(lease(NOW + TURN + 5_500).len(), 1);
    }
}
