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
}

/// What the validator's fetch of a disputed page gave.
#[derive(Debug, Clone, PartialEq)]
pub enum ValidatorFetch {
    /// The page's main text, as a node's cleaner extracts it, by its MinHash signature.
    Text(MinHash),
    /// No text: a reason code (the fetch error's, or why the page gave no text).
    Failed { code: String },
}

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

impl Store {
    /// Up to `limit` disputed checks waiting for the validator's fetch, oldest first.
    pub fn pending_tiebreak_fetches(&self, limit: usize) -> Result<Vec<TiebreakFetch>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT check_id, url FROM tiebreak_fetches ORDER BY queued_at_ms, check_id
                 LIMIT ?1",
            )
            .op("pending_tiebreak_fetches")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![limit], |r| {
                Ok(TiebreakFetch {
                    check_id: r.get(0)?,
                    url: r.get(1)?,
                })
            })
            .op("pending_tiebreak_fetches")?;
        rows.collect::<Result<Vec<_>, _>>()
            .op("pending_tiebreak_fetches")
    }

    /// Settles disputed check `check_id` with the validator's fetch (see the module docs), in
    /// one transaction.
    pub fn settle_by_validator(
        &self,
        check_id: i64,
        fetched: &ValidatorFetch,
        now_ms: i64,
    ) -> Result<TiebreakSettled, StoreError> {
        self.group(|g| g.settle_by_validator(check_id, fetched, now_ms))?
    }
}

impl Group<'_> {
    /// [`Store::settle_by_validator`] inside the group.
    pub fn settle_by_validator(
        &mut self,
        check_id: i64,
        fetched: &ValidatorFetch,
        now_ms: i64,
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
                ValidatorFetch::Failed { code } => {
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
                    tracing::info!(check = check_id, code = %code,
                        "the validator could not fetch a disputed page; a third node will");
                    Ok(TiebreakSettled::ToNodes)
                }
            }
        })
    }
}
