//! Read API: accepted records for dataset export, nodes, the ledger and network statistics for the
//! web console.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gleaner_protocol::{Digest, EpochRoot, PublicKey, Receipt, Record};
use gleaner_protocol::{Revocation, SecretKey, Signature};
use rusqlite::{Connection, params};
use serde::Serialize;

use super::bodies::{self, BodyAt};
use super::{Op, Store, StoreError, digest_from, key_from, open_epoch};
use crate::quality::StoredScores;

/// A `Store` method reading one page of a node's rows in `seq` order: the node, the `seq` the
/// page starts after, and the most rows ([`Store::ledger_page`], [`Store::judgements_page`]).
pub type NodePage<T> = fn(&Store, &PublicKey, i64, usize) -> Result<Vec<T>, StoreError>;

pub use gleaner_protocol::api::CrawlProgress;

fn crawl_requests_in(conn: &Connection) -> Result<Vec<CrawlProgress>, StoreError> {
    let counts = |sql: &str| -> Result<HashMap<i64, BTreeMap<String, u64>>, StoreError> {
        let mut stmt = conn.prepare(sql).op("crawl_requests")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .op("crawl_requests")?;
        let mut out: HashMap<i64, BTreeMap<String, u64>> = HashMap::new();
        for row in rows {
            let (request, state, n) = row.op("crawl_requests")?;
            out.entry(request)
                .or_default()
                .insert(state, u64::try_from(n).unwrap_or(0));
        }
        Ok(out)
    };
    let mut pages = counts(
        "SELECT request_id, state, COUNT(*) FROM tasks WHERE kind = 'primary'
         GROUP BY request_id, state",
    )?;
    let mut sitemaps =
        counts("SELECT request_id, state, COUNT(*) FROM sitemaps GROUP BY request_id, state")?;
    let mut stmt = conn
        .prepare(
            "SELECT id, created_at_ms, requester, scope_json, max_pages, max_depth, pages_queued,
                    records_accepted, records_duplicate, records_rejected, records_revoked
             FROM crawl_requests ORDER BY id",
        )
        .op("crawl_requests")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
                [
                    r.get::<_, i64>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, i64>(9)?,
                    r.get::<_, i64>(10)?,
                ],
            ))
        })
        .op("crawl_requests")?;
    let mut out = Vec::new();
    for row in rows {
        let (id, created_at_ms, requester, scope_json, max_pages, max_depth, pages_queued, by) =
            row.op("crawl_requests")?;
        // Verdicts with records only, as the job states are listed.
        let records: BTreeMap<String, u64> = ["accepted", "duplicate", "rejected", "revoked"]
            .into_iter()
            .zip(by)
            .filter(|&(_, n)| n > 0)
            .map(|(verdict, n)| (verdict.to_string(), u64::try_from(n).unwrap_or(0)))
            .collect();
        let scope: Vec<String> =
            serde_json::from_str(&scope_json).map_err(|e| StoreError::Corrupt {
                what: "crawl request scope",
                why: format!("request {id}: {e}"),
            })?;
        let pages = pages.remove(&id).unwrap_or_default();
        let sitemaps = sitemaps.remove(&id).unwrap_or_default();
        let busy = |m: &BTreeMap<String, u64>, state: &str| m.get(state).copied().unwrap_or(0) > 0;
        let finished =
            !busy(&pages, "queued") && !busy(&pages, "leased") && !busy(&sitemaps, "queued");
        out.push(CrawlProgress {
            id,
            created_at_ms,
            requester,
            scope,
            max_pages,
            max_depth,
            pages_queued,
            pages,
            sitemaps,
            records,
            finished,
        });
    }
    Ok(out)
}

/// One accepted (verified, unique, good enough) record with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedRecord {
    /// The full signed record as submitted.
    pub record: Record,
    pub batch_id: Digest,
    /// The full signed receipt of that batch, shared by the batch's records (parsed once).
    pub receipt: Arc<Receipt>,
    /// The epoch the record was credited in.
    pub epoch: u64,
    /// When the validator accepted it, Unix milliseconds UTC.
    pub accepted_at_ms: i64,
    /// Quality statistics (see [`crate::quality`]): `gopher_words`, `language_score`, …
    pub quality: BTreeMap<String, f64>,
    /// 1 = unique; more = size of its near-duplicate cluster (this record is the one kept).
    pub minhash_cluster_size: u32,
    /// GPT-2 token count of the text, stored by the first export that counted it
    /// ([`Store::set_token_counts`]); `None` until then.
    pub token_count: Option<u64>,
    /// The record's row in the store (`records.seq`), for [`Store::set_token_counts`].
    pub seq: i64,
}

/// A registered node and its standing.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NodeRow {
    pub node: PublicKey,
    pub payout: PublicKey,
    pub client: String,
    pub registered_at_ms: i64,
    pub last_seen_ms: i64,
    pub credibility: f64,
    pub checks_passed: u64,
    pub checks_failed: u64,
    pub records_accepted: u64,
    pub records_duplicate: u64,
    pub records_rejected: u64,
    /// Records revoked after they were accepted (a failed cross-check, a page found gone). The
    /// four counts are the node's records by their verdict now.
    pub records_revoked: u64,
    pub jobs_failed: u64,
    /// Sum of the node's ledger entries (all epochs).
    pub points_total: i64,
    /// When the operator suspended the node (`gleaner-validator nodes suspend`); `None` while it
    /// may work.
    pub suspended_at_ms: Option<i64>,
    /// Why, as the operator said it.
    pub suspended_reason: Option<String>,
}

/// One ledger entry (credit or penalty).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub seq: i64,
    pub at_ms: i64,
    pub epoch: u64,
    pub node: PublicKey,
    pub payout: PublicKey,
    /// `credit` or `penalty`.
    pub kind: String,
    pub amount: i64,
    pub batch_id: Option<Digest>,
    pub record_id: Option<Digest>,
    pub note: String,
}

/// A closed epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochSummary {
    /// The signed root (validator, epoch, closed_at_ms, root, total, leaf_count, signature).
    pub root: EpochRoot,
}

/// A reason code and how often it occurred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReasonCount {
    pub reason: String,
    pub count: u64,
}

/// What the web console shows about the network.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NetworkStats {
    pub now_ms: i64,
    pub open_epoch: u64,
    pub nodes_total: u64,
    /// Nodes seen in the last 24 hours.
    pub nodes_active_24h: u64,
    /// Records received per hour over the last 24 hours, oldest first: (hour start ms, count).
    pub pages_per_hour: Vec<(i64, u64)>,
    pub records_total: u64,
    pub records_accepted: u64,
    pub records_duplicate: u64,
    pub records_rejected: u64,
    /// Records revoked after they were accepted; with the three counts before it, every record.
    pub records_revoked: u64,
    /// accepted / total (0 when nothing was received).
    pub acceptance_rate: f64,
    /// Why records were not accepted (rejected, duplicate, revoked): reason codes, most frequent
    /// first.
    pub rejection_reasons: Vec<ReasonCount>,
    /// Job failure reasons reported by nodes, most frequent first.
    pub failure_reasons: Vec<ReasonCount>,
    /// Cross-checks by outcome (the `reason` is the outcome), most frequent first: waiting
    /// (`pending` for a checker, `disputed` for a third fetch, `audit_disputed` and `three_way`
    /// for a node's fetch after the validator's, `unfound`, `unchecked` and `auditing` for the
    /// validator's own fetch) and settled (`agreed`, `primary_upheld`, `check_upheld`,
    /// `audit_refuted`, `both_refuted`, `inconclusive`, `page_gone`, `abandoned`).
    pub check_outcomes: Vec<ReasonCount>,
    pub frontier_queued: u64,
    pub leases_open: u64,
    pub urls_seen: u64,
    /// Closed epochs, newest first.
    pub epochs: Vec<EpochRoot>,
}

/// One entry of the revocation log as stored; the server signs it ([`RevocationEntry::signed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEntry {
    pub seq: u64,
    pub record_id: Digest,
    pub node: PublicKey,
    pub url: String,
    pub epoch: u64,
    pub reason: String,
}

impl RevocationEntry {
    /// The entry as published: signed by the validator's `key`.
    pub fn signed(self, key: &SecretKey) -> Revocation {
        Revocation::sign(
            key,
            self.seq,
            self.record_id,
            self.node,
            self.url,
            self.epoch,
            self.reason,
        )
    }

    /// The entry with a signature `validator` made of it before
    /// ([`crate::identity::RevocationSigner`] keeps them).
    pub fn with_signature(self, validator: PublicKey, signature: Signature) -> Revocation {
        Revocation {
            seq: self.seq,
            record_id: self.record_id,
            node: self.node,
            url: self.url,
            epoch: self.epoch,
            reason: self.reason,
            validator,
            signature,
        }
    }
}

const HOUR_MS: i64 = 3_600_000;

/// The first epoch in `?1..=?2` holding accepted primary records (through `records_export`).
const FIRST_ACCEPTED_EPOCH: &str = "SELECT MIN(epoch) FROM records
     WHERE verdict = 'accepted' AND role = 'primary' AND epoch BETWEEN ?1 AND ?2";

/// The (record id, seq) of every accepted primary record of epoch `?1` (through
/// `records_export`, in its order: storage order).
const ACCEPTED_IDS_OF_EPOCH: &str = "SELECT record_id, seq FROM records
     WHERE verdict = 'accepted' AND role = 'primary' AND epoch = ?1";

/// An epoch and the (record id, seq) of its accepted primary records.
type EpochIds = (i64, Vec<([u8; 32], i64)>);

/// Accepted records per read in [`Store::for_each_accepted_in`].
pub const ACCEPTED_PAGE_ROWS: usize = 2_048;

impl Store {
    /// Accepted primary records with `epoch >= since_epoch`, ordered by (epoch, record id).
    pub fn accepted_records(
        &self,
        since_epoch: Option<u64>,
    ) -> Result<Vec<AcceptedRecord>, StoreError> {
        let mut out = Vec::new();
        self.for_each_accepted(since_epoch, |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// How many records [`Store::accepted_records`] would return for all epochs (one query; the
    /// export timer's "anything new?" check).
    pub fn accepted_count(&self) -> Result<u64, StoreError> {
        let conn = self.conn()?;
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM records WHERE verdict = 'accepted' AND role = 'primary'",
                [],
                |r| r.get(0),
            )
            .op("accepted_count")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Stores GPT-2 token counts a dataset export computed, as (record seq, count), so later
    /// exports write them as given rather than count again. A row that has a count keeps it.
    /// Returns how many rows took one.
    pub fn set_token_counts(&self, counts: &[(i64, u64)]) -> Result<usize, StoreError> {
        if counts.is_empty() {
            return Ok(0);
        }
        let mut conn = self.writer()?;
        let tx = conn.transaction().op("set_token_counts")?;
        let mut updated = 0;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE records SET token_count = ?2 WHERE seq = ?1 AND token_count IS NULL",
                )
                .op("set_token_counts")?;
            for &(seq, count) in counts {
                let count = i64::try_from(count).unwrap_or(i64::MAX);
                updated += stmt.execute(params![seq, count]).op("set_token_counts")?;
            }
        }
        tx.commit().op("set_token_counts")?;
        Ok(updated)
    }

    /// The first and last epoch holding accepted primary records at or after `since_epoch`
    /// (`None` when there are none).
    pub fn accepted_epochs(
        &self,
        since_epoch: Option<u64>,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let conn = self.conn()?;
        let since = i64::try_from(since_epoch.unwrap_or(0)).unwrap_or(i64::MAX);
        let range: (Option<i64>, Option<i64>) = conn
            .query_row(
                "SELECT MIN(epoch), MAX(epoch) FROM records
                 WHERE verdict = 'accepted' AND role = 'primary' AND epoch >= ?1",
                params![since],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .op("accepted_epochs")?;
        Ok(match range {
            (Some(first), Some(last)) => Some((
                u64::try_from(first).unwrap_or(0),
                u64::try_from(last).unwrap_or(0),
            )),
            _ => None,
        })
    }

    /// Streams accepted records in the order of [`Store::accepted_records`] without holding them
    /// all in memory. Stops at the first error `f` returns.
    pub fn for_each_accepted(
        &self,
        since_epoch: Option<u64>,
        f: impl FnMut(AcceptedRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.for_each_accepted_in(since_epoch.unwrap_or(0)..=u64::MAX, f)
    }

    /// Streams the accepted primary records credited in `epochs`, ordered by (epoch, record id),
    /// without holding them all in memory. Stops at the first error `f` returns.
    ///
    /// Each epoch is read as its record ids (one short read through the append-only
    /// `records_export` index), sorted here, then its records in pages of
    /// [`ACCEPTED_PAGE_ROWS`], each page its own short read: a slow consumer (the dataset export)
    /// never holds a read transaction open, which would keep SQLite from checkpointing its
    /// write-ahead log while ingest goes on. Memory: the ids of one epoch (~40 bytes each) and
    /// one page. A record revoked while the stream runs is left out if its page is read after;
    /// records accepted into an epoch after its ids were read come in the next export.
    pub fn for_each_accepted_in<E: From<StoreError>>(
        &self,
        epochs: std::ops::RangeInclusive<u64>,
        f: impl FnMut(AcceptedRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        self.for_each_accepted_paged(epochs, ACCEPTED_PAGE_ROWS, f)
    }

    /// [`Store::for_each_accepted_in`] with pages of `page_rows` (at least 1).
    pub(crate) fn for_each_accepted_paged<E: From<StoreError>>(
        &self,
        epochs: std::ops::RangeInclusive<u64>,
        page_rows: usize,
        mut f: impl FnMut(AcceptedRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        let page_rows = page_rows.max(1);
        let from = i64::try_from(*epochs.start()).unwrap_or(i64::MAX);
        let to = i64::try_from(*epochs.end()).unwrap_or(i64::MAX);
        // Rows come in record-id order, not batch order: each batch's receipt is parsed once and
        // shared (parsing it for every row cost more than the rest of the read).
        let mut receipts: HashMap<Digest, Arc<Receipt>> = HashMap::new();
        // One reader for the whole export: its read buffer is made (and first touched) once.
        let mut bodies = bodies::Reader::new(&self.bodies_dir);
        let mut next = from;
        while next <= to {
            let Some((epoch, mut ids)) = self.accepted_ids(next, to)? else {
                break;
            };
            // Record ids are distinct 32-byte strings: byte order here is SQLite's BLOB order.
            ids.sort_unstable();
            for page in ids.chunks(page_rows) {
                for record in self.accepted_rows(page, &mut receipts, &mut bodies)? {
                    f(record)?;
                }
            }
            match epoch.checked_add(1) {
                Some(e) => next = e,
                None => break,
            }
        }
        Ok(())
    }

    /// The first epoch in `from..=to` with accepted primary records, and their (record id,
    /// seq)s in storage order.
    fn accepted_ids(&self, from: i64, to: i64) -> Result<Option<EpochIds>, StoreError> {
        let conn = self.conn()?;
        let epoch: Option<i64> = conn
            .query_row(FIRST_ACCEPTED_EPOCH, params![from, to], |r| r.get(0))
            .op("accepted_records")?;
        let Some(epoch) = epoch else {
            return Ok(None);
        };
        let mut stmt = conn
            .prepare_cached(ACCEPTED_IDS_OF_EPOCH)
            .op("accepted_records")?;
        let mut rows = stmt.query(params![epoch]).op("accepted_records")?;
        let mut ids = Vec::new();
        while let Some(row) = rows.next().op("accepted_records")? {
            let id: Vec<u8> = row.get(0).op("accepted_records")?;
            let id = <[u8; 32]>::try_from(id.as_slice()).map_err(|_| StoreError::Corrupt {
                what: "record id",
                why: format!("{} bytes", id.len()),
            })?;
            ids.push((id, row.get(1).op("accepted_records")?));
        }
        Ok(Some((epoch, ids)))
    }

    /// The records at these seqs that are still accepted primaries, in the order given, read in
    /// one read transaction (the same snapshot for the whole page): the rows first, then their
    /// bodies in the order they lie on disk (rows come in record-id order, bodies in arrival
    /// order), then the records in row order.
    fn accepted_rows(
        &self,
        ids: &[([u8; 32], i64)],
        receipts: &mut HashMap<Digest, Arc<Receipt>>,
        bodies: &mut bodies::Reader<'_>,
    ) -> Result<Vec<AcceptedRecord>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().op("accepted_records")?;
        let mut rows = page_rows(&tx, ids)?;
        read_bodies(&mut rows, bodies)?;
        let page = {
            let mut receipt_of = tx
                .prepare_cached("SELECT receipt_json FROM batches WHERE batch_id = ?1")
                .op("accepted_records")?;
            rows.into_iter()
                .map(|row| row.into_accepted(&mut receipt_of, receipts))
                .collect::<Result<Vec<_>, _>>()?
        };
        tx.commit().op("accepted_records")?;
        Ok(page)
    }

    /// Every crawl request, oldest first, with how far it has got: what it asked for, the
    /// pages queued for it, its pages' jobs by state and its sitemaps by state. Reads every job
    /// once (no index holds jobs by request, which would cost ingest a write per record), so it
    /// is for the operator's `crawl list`, not for anything polled.
    pub fn crawl_requests(&self) -> Result<Vec<CrawlProgress>, StoreError> {
        let conn = self.reader()?;
        conn.execute_batch("BEGIN").op("crawl_requests")?;
        let read = crawl_requests_in(&conn);
        // A read transaction: ending it can only fail if it already ended.
        let _ = conn.execute_batch("COMMIT");
        read
    }

    /// Every registered node, by key.
    pub fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        nodes_where(&*self.reader()?, None)
    }

    /// One node's row, if registered.
    pub fn node(&self, node: &PublicKey) -> Result<Option<NodeRow>, StoreError> {
        node_in(&*self.reader()?, node)
    }

    /// The ledger entries of one node, oldest first (all of them: tests and small ledgers;
    /// anything facing a long-lived node reads [`Store::ledger_page`]).
    pub fn ledger(&self, node: &PublicKey) -> Result<Vec<LedgerEntry>, StoreError> {
        self.ledger_page(node, 0, usize::MAX)
    }

    /// At most `limit` rows of one node's check history whose `seq` is above `after`, oldest
    /// first: each cross-check's verdict on it and what that did to its credibility, read from
    /// the `(node, seq)` index. The next page starts after the last row's `seq`.
    pub fn judgements_page(
        &self,
        node: &PublicKey,
        after: i64,
        limit: usize,
    ) -> Result<Vec<super::Judgement>, StoreError> {
        super::nodes::judgements_in(&*self.reader()?, &node.to_string(), after, limit)
    }

    /// At most `limit` ledger entries of one node whose `seq` is above `after`, oldest first:
    /// one page of its ledger, read from the `(node, seq)` index, so a page costs the same
    /// however long the ledger is. The next page starts after the last entry's `seq`.
    pub fn ledger_page(
        &self,
        node: &PublicKey,
        after: i64,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, at_ms, epoch, node, payout, kind, amount, batch_id, record_id, note
                 FROM ledger WHERE node = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .op("ledger")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![node.to_string(), after, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, Option<Vec<u8>>>(7)?,
                    r.get::<_, Option<Vec<u8>>>(8)?,
                    r.get::<_, String>(9)?,
                ))
            })
            .op("ledger")?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, at_ms, epoch, node, payout, kind, amount, batch, record, note) =
                row.op("ledger")?;
            out.push(LedgerEntry {
                seq,
                at_ms,
                epoch: u64::try_from(epoch).unwrap_or(0),
                node: key_from(&node, "node key")?,
                payout: key_from(&payout, "payout key")?,
                kind,
                amount,
                batch_id: batch.map(|b| digest_from(&b, "batch id")).transpose()?,
                record_id: record.map(|b| digest_from(&b, "record id")).transpose()?,
                note,
            });
        }
        Ok(out)
    }

    /// At most `limit` revocations whose `seq` is above `after`, oldest first: one page of the
    /// revocation log (`revocations`, appended by a trigger whenever a record is revoked); only
    /// `node`'s records when it is given (read through the log's `(node, seq)` index).
    pub fn revocations(
        &self,
        after: i64,
        limit: usize,
        node: Option<&PublicKey>,
    ) -> Result<Vec<RevocationEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut args: Vec<rusqlite::types::Value> = vec![after.into(), limit.into()];
        args.extend(node.map(|k| k.to_string().into()));
        self.revocation_rows(
            if node.is_some() {
                "SELECT seq, record_id, node, url, epoch, reason FROM revocations
                  WHERE node = ?3 AND seq > ?1 ORDER BY seq LIMIT ?2"
            } else {
                "SELECT seq, record_id, node, url, epoch, reason FROM revocations
                  WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            },
            args,
        )
    }

    /// The `limit` newest revocations, newest first (the console lists them).
    pub fn latest_revocations(&self, limit: usize) -> Result<Vec<RevocationEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.revocation_rows(
            "SELECT seq, record_id, node, url, epoch, reason FROM revocations
              ORDER BY seq DESC LIMIT ?1",
            vec![limit.into()],
        )
    }

    /// The revocations `sql` selects (`seq, record_id, node, url, epoch, reason`) with `args`.
    fn revocation_rows(
        &self,
        sql: &str,
        args: Vec<rusqlite::types::Value>,
    ) -> Result<Vec<RevocationEntry>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(sql).op("revocations")?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .op("revocations")?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, record, node, url, epoch, reason) = row.op("revocations")?;
            out.push(RevocationEntry {
                seq: u64::try_from(seq).unwrap_or(0),
                record_id: digest_from(&record, "record id")?,
                node: key_from(&node, "node key")?,
                url,
                epoch: u64::try_from(epoch).unwrap_or(0),
                reason,
            });
        }
        Ok(out)
    }

    /// Number of ledger entries (tests use it to show bad input changed nothing).
    pub fn ledger_len(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()?
            .query_row("SELECT COUNT(*) FROM ledger", [], |r| r.get(0))
            .op("ledger_len")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Closed epochs, newest first.
    pub fn epochs(&self) -> Result<Vec<EpochRoot>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare("SELECT root_json FROM epochs ORDER BY epoch DESC")
            .op("epochs")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).op("epochs")?;
        let mut out = Vec::new();
        for row in rows {
            let json = row.op("epochs")?;
            out.push(
                serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
                    what: "epoch root",
                    why: e.to_string(),
                })?,
            );
        }
        Ok(out)
    }

    /// Network statistics as of `now_ms`.
    pub fn network_stats(&self, now_ms: i64) -> Result<NetworkStats, StoreError> {
        let conn = self.reader()?;
        let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<u64, StoreError> {
            let n: i64 = conn.query_row(sql, p, |r| r.get(0)).op("network_stats")?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        let nodes_total = count("SELECT COUNT(*) FROM nodes", &[])?;
        let day_ago = now_ms - 24 * HOUR_MS;
        let nodes_active_24h = count(
            "SELECT COUNT(*) FROM nodes WHERE last_seen_ms >= ?1",
            &[&day_ago],
        )?;
        // The records by verdict and reason in one pass over them (there is no index by
        // verdict): the counts, the total and the reasons records were not accepted for.
        let mut by_verdict: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
        {
            let mut stmt = conn
                .prepare("SELECT verdict, reason, COUNT(*) FROM records GROUP BY verdict, reason")
                .op("network_stats")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .op("network_stats")?;
            for row in rows {
                let (verdict, reason, n) = row.op("network_stats")?;
                let n = u64::try_from(n).unwrap_or(0);
                if verdict != "accepted" {
                    *by_reason.entry(reason).or_default() += n;
                }
                *by_verdict.entry(verdict).or_default() += n;
            }
        }
        let verdict = |v: &str| by_verdict.get(v).copied().unwrap_or(0);
        let records_accepted = verdict("accepted");
        let records_duplicate = verdict("duplicate");
        let records_rejected = verdict("rejected");
        let records_revoked = verdict("revoked");
        let records_total = by_verdict.values().sum();
        // Most frequent first, then by name.
        let mut rejection_reasons: Vec<ReasonCount> = by_reason
            .into_iter()
            .map(|(reason, count)| ReasonCount { reason, count })
            .collect();
        rejection_reasons.sort_by_key(|r| std::cmp::Reverse(r.count));
        let start = (now_ms / HOUR_MS - 23) * HOUR_MS;
        let mut per_hour: BTreeMap<i64, u64> = (0..24).map(|h| (start + h * HOUR_MS, 0)).collect();
        {
            let mut stmt = conn
                .prepare(
                    "SELECT (received_at_ms / 3600000) * 3600000 AS h, COUNT(*)
                     FROM records WHERE received_at_ms >= ?1 GROUP BY h",
                )
                .op("network_stats")?;
            let rows = stmt
                .query_map(params![start], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .op("network_stats")?;
            for row in rows {
                let (h, n) = row.op("network_stats")?;
                if let Some(slot) = per_hour.get_mut(&h) {
                    *slot = u64::try_from(n).unwrap_or(0);
                }
            }
        }
        let reasons = |sql: &str| -> Result<Vec<ReasonCount>, StoreError> {
            let mut stmt = conn.prepare(sql).op("network_stats")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .op("network_stats")?;
            let mut out = Vec::new();
            for row in rows {
                let (reason, n) = row.op("network_stats")?;
                out.push(ReasonCount {
                    reason,
                    count: u64::try_from(n).unwrap_or(0),
                });
            }
            Ok(out)
        };
        let failure_reasons = reasons(
            "SELECT failure_reason, COUNT(*) AS n FROM leases WHERE failure_reason IS NOT NULL
             GROUP BY failure_reason ORDER BY n DESC, failure_reason",
        )?;
        let check_outcomes = reasons(
            "SELECT outcome, COUNT(*) AS n FROM cross_checks
             GROUP BY outcome ORDER BY n DESC, outcome",
        )?;
        let frontier_queued = count("SELECT COALESCE(SUM(queued), 0) FROM domains", &[])?;
        let leases_open = count("SELECT COUNT(*) FROM leases WHERE state = 'open'", &[])?;
        let urls_seen = count("SELECT COUNT(*) FROM urls", &[])?;
        let open = open_epoch(&conn)?;
        drop(conn);
        Ok(NetworkStats {
            now_ms,
            open_epoch: open,
            nodes_total,
            nodes_active_24h,
            pages_per_hour: per_hour.into_iter().collect(),
            records_total,
            records_accepted,
            records_duplicate,
            records_rejected,
            records_revoked,
            acceptance_rate: if records_total == 0 {
                0.0
            } else {
                records_accepted as f64 / records_total as f64
            },
            rejection_reasons,
            failure_reasons,
            check_outcomes,
            frontier_queued,
            leases_open,
            urls_seen,
            epochs: self.epochs()?,
        })
    }
}

/// One row of a page of the export, its body not read yet (see `Store::accepted_rows`).
struct PageRow {
    /// The record's JSON: in the row before version 9, from its segment since.
    record_json: Option<Vec<u8>>,
    batch: Vec<u8>,
    epoch: i64,
    at: i64,
    quality: StoredScores,
    cluster: i64,
    tokens: Option<i64>,
    id: Digest,
    seq: i64,
    body: Option<BodyAt>,
}

/// The rows at these seqs that are still accepted primaries, in the order given.
fn page_rows(
    conn: &rusqlite::Connection,
    ids: &[([u8; 32], i64)],
) -> Result<Vec<PageRow>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT record_json, batch_id, epoch, received_at_ms, quality_json, cluster_size,
                    token_count, record_id, body_segment, body_offset, body_len, quality
             FROM records
             WHERE seq = ?1 AND verdict = 'accepted' AND role = 'primary'",
        )
        .op("accepted_records")?;
    let mut rows = Vec::with_capacity(ids.len());
    for &(_, seq) in ids {
        let mut found = stmt.query(params![seq]).op("accepted_records")?;
        let Some(row) = found.next().op("accepted_records")? else {
            continue;
        };
        let record_id: Vec<u8> = row.get(7).op("accepted_records")?;
        let body: (Option<i64>, Option<i64>, Option<i64>) = (
            row.get(8).op("accepted_records")?,
            row.get(9).op("accepted_records")?,
            row.get(10).op("accepted_records")?,
        );
        rows.push(PageRow {
            record_json: row.get(0).op("accepted_records")?,
            batch: row.get(1).op("accepted_records")?,
            epoch: row.get(2).op("accepted_records")?,
            at: row.get(3).op("accepted_records")?,
            quality: match row.get(11).op("accepted_records")? {
                Some(bytes) => StoredScores::Compact(bytes),
                None => StoredScores::Json(row.get(4).op("accepted_records")?),
            },
            cluster: row.get(5).op("accepted_records")?,
            tokens: row.get(6).op("accepted_records")?,
            id: digest_from(&record_id, "record id")?,
            seq,
            body: match body {
                (Some(segment), Some(offset), Some(len)) => Some(BodyAt {
                    segment,
                    offset,
                    len,
                }),
                _ => None,
            },
        });
    }
    Ok(rows)
}

/// Reads the bodies of `rows` that live in segments, in the order they lie there.
fn read_bodies(rows: &mut [PageRow], bodies: &mut bodies::Reader<'_>) -> Result<(), StoreError> {
    let mut order: Vec<(BodyAt, usize)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.record_json.is_none())
        .filter_map(|(i, r)| Some((r.body?, i)))
        .collect();
    order.sort_unstable_by_key(|(at, i)| (at.segment, at.offset, *i));
    let ats: Vec<BodyAt> = order.iter().map(|(at, _)| *at).collect();
    for ((_, i), body) in order.iter().zip(bodies.read_sorted(&ats)?) {
        if let Some(row) = rows.get_mut(*i) {
            row.record_json = Some(body);
        }
    }
    Ok(())
}

impl PageRow {
    /// The accepted record of this row, its body read, its batch's receipt parsed once per
    /// export (`receipts`).
    fn into_accepted(
        self,
        receipt_of: &mut rusqlite::Statement<'_>,
        receipts: &mut HashMap<Digest, Arc<Receipt>>,
    ) -> Result<AcceptedRecord, StoreError> {
        let id = self.id;
        // Records stored before version 9 hold their JSON in the row.
        let Some(record_json) = self.record_json else {
            return Err(StoreError::Corrupt {
                what: "record",
                why: format!("accepted record {id} has no body"),
            });
        };
        let batch_id = digest_from(&self.batch, "batch id")?;
        let receipt = match receipts.get(&batch_id) {
            Some(r) => Arc::clone(r),
            None => {
                let bytes: Vec<u8> = receipt_of
                    .query_row(params![self.batch.as_slice()], |r| r.get(0))
                    .op("accepted_records")?;
                let r: Arc<Receipt> =
                    Arc::new(
                        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                            what: "receipt",
                            why: e.to_string(),
                        })?,
                    );
                receipts.insert(batch_id, Arc::clone(&r));
                r
            }
        };
        let record = bodies::check(&record_json, &id)?;
        let quality = self.quality.decode().map_err(|why| StoreError::Corrupt {
            what: "quality",
            why: format!("record {id}: {why}"),
        })?;
        Ok(AcceptedRecord {
            record,
            batch_id,
            receipt,
            epoch: u64::try_from(self.epoch).unwrap_or(0),
            accepted_at_ms: self.at,
            quality,
            minhash_cluster_size: u32::try_from(self.cluster).unwrap_or(u32::MAX),
            token_count: self.tokens.and_then(|n| u64::try_from(n).ok()),
            seq: self.seq,
        })
    }
}

/// One node's row, if registered, as `conn` sees it.
pub(super) fn node_in(conn: &Connection, node: &PublicKey) -> Result<Option<NodeRow>, StoreError> {
    Ok(nodes_where(conn, Some(node))?.into_iter().next())
}

fn nodes_where(conn: &Connection, only: Option<&PublicKey>) -> Result<Vec<NodeRow>, StoreError> {
    let only = only.map(|k| k.to_string());
    let mut stmt = conn
        .prepare_cached(
            "SELECT n.node, n.payout, n.client, n.registered_at_ms, n.last_seen_ms,
                    n.credibility, n.checks_passed, n.checks_failed, n.records_accepted,
                    n.records_duplicate, n.records_rejected, n.records_revoked, n.jobs_failed,
                    (SELECT COALESCE(SUM(amount), 0) FROM node_ledger_totals t WHERE t.node = n.node),
                    n.suspended_at_ms, n.suspended_reason
             FROM nodes n WHERE (?1 IS NULL OR n.node = ?1) ORDER BY n.node",
        )
        .op("nodes")?;
    let rows = stmt
        .query_map(params![only], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, f64>(5)?,
                [
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, i64>(9)?,
                    r.get::<_, i64>(10)?,
                    r.get::<_, i64>(11)?,
                    r.get::<_, i64>(12)?,
                ],
                r.get::<_, i64>(13)?,
                (
                    r.get::<_, Option<i64>>(14)?,
                    r.get::<_, Option<String>>(15)?,
                ),
            ))
        })
        .op("nodes")?;
    let mut out = Vec::new();
    for row in rows {
        let (node, payout, client, reg, seen, cred, n, pts, suspended) = row.op("nodes")?;
        let u = |v: i64| u64::try_from(v).unwrap_or(0);
        out.push(NodeRow {
            node: key_from(&node, "node key")?,
            payout: key_from(&payout, "payout key")?,
            client,
            registered_at_ms: reg,
            last_seen_ms: seen,
            credibility: cred,
            checks_passed: u(n[0]),
            checks_failed: u(n[1]),
            records_accepted: u(n[2]),
            records_duplicate: u(n[3]),
            records_rejected: u(n[4]),
            records_revoked: u(n[5]),
            jobs_failed: u(n[6]),
            points_total: pts,
            suspended_at_ms: suspended.0,
            suspended_reason: suspended.1,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(
        store: &Store,
        epochs: std::ops::RangeInclusive<u64>,
        page_rows: usize,
    ) -> Vec<(u64, Digest)> {
        let mut out = Vec::new();
        store
            .for_each_accepted_paged(epochs, page_rows, |a| -> Result<(), StoreError> {
                out.push((a.epoch, a.record.id()));
                Ok(())
            })
            .unwrap();
        out
    }

    /// `(state or verdict, count)` pairs as a crawl request's progress maps them.
    fn counted(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), *v)).collect()
    }

    /// Each crawl request says how far it has got: its jobs by state as they are leased,
    /// answered with a record or a failure, and finished once none is queued or out.
    #[test]
    fn crawl_requests_show_their_jobs_by_state_and_when_they_are_finished() {
        use crate::testkit::{ingest_batch, leased_jobs_on, record_for, sample_text};
        use gleaner_protocol::api::{FailureReason, JobFailure};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let node = SecretKey::from_bytes(&[7; 32]);
        let validator = SecretKey::from_bytes(&[200; 32]);
        let t0 = 1_800_000_000_000;
        // Request 1: three pages, all leased; request 2: two pages and a sitemap, none leased.
        let jobs = leased_jobs_on(&store, &node, "one", 3, t0).unwrap();
        assert_eq!(jobs.len(), 3);
        let second = crate::store::CrawlRequest {
            seeds: vec!["http://two0.example/".into(), "http://two1.example/".into()],
            domains: vec!["extra.example".into()],
            sitemaps: vec!["http://two0.example/sitemap.xml".into()],
            max_pages: 50,
            max_depth: 2,
        };
        store.add_crawl_request("lab:0", &second, t0).unwrap();

        let all = store.crawl_requests().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].id, all[0].requester.as_str()), (1, "test"));
        assert_eq!((all[0].pages_queued, all[0].max_pages), (3, 3));
        assert_eq!(all[0].pages, counted(&[("leased", 3)]));
        assert!(!all[0].finished);
        assert_eq!(all[1].requester, "lab:0");
        assert_eq!(
            all[1].scope,
            ["extra.example", "two0.example", "two1.example"]
        );
        assert_eq!((all[1].max_pages, all[1].max_depth), (50, 2));
        assert_eq!(all[1].pages, counted(&[("queued", 2)]));
        assert_eq!(all[1].sitemaps, counted(&[("queued", 1)]));
        assert!(!all[1].finished);

        // Two of request 1's pages come back as records, the third as a failure: finished.
        let records = jobs[..2]
            .iter()
            .enumerate()
            .map(|(i, job)| record_for(&node, job, sample_text(i as u64, 2_000), t0))
            .collect();
        ingest_batch(&store, &node, &validator, records, t0 + 1_000).unwrap();
        let failure = JobFailure {
            lease_id: jobs[2].lease_id.clone(),
            reason: FailureReason::RobotsDisallowed,
            detail: String::new(),
            status: None,
            crawl_delay_ms: None,
        };
        store
            .report_failures(&node.public(), &[failure], t0 + 2_000, 0, false)
            .unwrap();
        let all = store.crawl_requests().unwrap();
        assert_eq!(all[0].pages, counted(&[("done", 2), ("failed", 1)]));
        assert!(all[0].finished, "{:?}", all[0]);
        assert!(!all[1].finished, "untouched");
    }

    /// Each crawl request counts the records its pages brought by their verdict now: ingest adds
    /// them, a revocation moves one to `revoked`, another request's stay apart, and a database
    /// from before the counts (version 23) has them counted when it is opened.
    #[test]
    fn crawl_requests_count_their_records_by_verdict() {
        use crate::testkit::{ingest_batch, leased_jobs_on, record_for, sample_text};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let node = SecretKey::from_bytes(&[77; 32]);
        let validator = SecretKey::from_bytes(&[201; 32]);
        let t0 = 1_800_000_000_000;
        let jobs = leased_jobs_on(&store, &node, "rec", 4, t0).unwrap();
        assert_eq!(jobs.len(), 4);
        let other = crate::store::CrawlRequest {
            seeds: vec!["http://other0.example/".into()],
            domains: Vec::new(),
            sitemaps: Vec::new(),
            max_pages: 5,
            max_depth: 0,
        };
        store.add_crawl_request("lab:0", &other, t0).unwrap();
        let texts = [
            sample_text(1, 2_000),
            sample_text(1, 2_000),
            "Too short.".to_string(),
            sample_text(3, 2_000),
        ];
        let records = jobs
            .iter()
            .zip(texts)
            .map(|(job, text)| record_for(&node, job, text, t0))
            .collect();
        ingest_batch(&store, &node, &validator, records, t0 + 1_000).unwrap();
        let counts = |store: &Store| -> Vec<BTreeMap<String, u64>> {
            let all = store.crawl_requests().unwrap();
            all.into_iter().map(|r| r.records).collect()
        };
        let ingested = counted(&[("accepted", 2), ("duplicate", 1), ("rejected", 1)]);
        assert_eq!(counts(&store), vec![ingested, BTreeMap::new()]);

        // A revocation (as a failed cross-check makes one) moves the record's count.
        store
            .writer()
            .unwrap()
            .execute(
                "UPDATE records SET verdict = 'revoked' WHERE url = ?1",
                [&jobs[3].url],
            )
            .unwrap();
        let now = counted(&[
            ("accepted", 1),
            ("duplicate", 1),
            ("rejected", 1),
            ("revoked", 1),
        ]);
        assert_eq!(counts(&store), vec![now.clone(), BTreeMap::new()]);

        // The same database before version 24: the counts are made from its records.
        drop(store);
        let conn = Connection::open(dir.path().join(super::super::DB_FILE)).unwrap();
        conn.execute_batch(
            "DROP TRIGGER records_revoked_request_count;
             ALTER TABLE crawl_requests DROP COLUMN records_accepted;
             ALTER TABLE crawl_requests DROP COLUMN records_duplicate;
             ALTER TABLE crawl_requests DROP COLUMN records_rejected;
             ALTER TABLE crawl_requests DROP COLUMN records_revoked;
             PRAGMA user_version = 23;",
        )
        .unwrap();
        drop(conn);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(counts(&store), vec![now, BTreeMap::new()]);
    }

    /// Cancelling a request takes its queued pages off the frontier, its domains' queues and
    /// the seen-set, closes its budget and drops its unread sitemaps; leased pages finish, and
    /// another requester cannot cancel it.
    #[test]
    fn a_cancelled_crawl_request_leaves_the_frontier_and_nothing_else() {
        use crate::testkit::leased_jobs_on;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let node = SecretKey::from_bytes(&[7; 32]);
        let t0 = 1_800_000_000_000;
        let leased = leased_jobs_on(&store, &node, "one", 2, t0).unwrap();
        assert_eq!(leased.len(), 2);
        let seeds: Vec<String> = (0..4).map(|i| format!("http://two{i}.example/")).collect();
        let request = crate::store::CrawlRequest {
            seeds: seeds.clone(),
            domains: Vec::new(),
            sitemaps: vec!["http://two0.example/sitemap.xml".into()],
            max_pages: 50,
            max_depth: 2,
        };
        let second = store.add_crawl_request("lab:0", &request, t0).unwrap().id;
        let scalar = |sql: &str| -> i64 {
            let conn = store.conn.lock().unwrap();
            conn.query_row(sql, [], |r| r.get(0)).unwrap()
        };
        let pending = "SELECT value FROM counters WHERE name = 'pending'";
        let queued_in_domains = "SELECT coalesce(sum(queued), 0) FROM domains";
        // Jobs in the network (queued and leased), and queued ones by domain.
        assert_eq!((scalar(pending), scalar(queued_in_domains)), (6, 4));

        let refused = store
            .cancel_crawl_request(second, Some("lab:1"), t0)
            .unwrap_err();
        assert_eq!(refused.code(), "not_found");
        let missing = store.cancel_crawl_request(99, None, t0).unwrap_err();
        assert_eq!(missing.code(), "not_found");
        let cancelled = store
            .cancel_crawl_request(second, Some("lab:0"), t0 + 1)
            .unwrap();
        assert_eq!(
            (cancelled.pages_cancelled, cancelled.sitemaps_cancelled),
            (4, 1)
        );
        assert_eq!((scalar(pending), scalar(queued_in_domains)), (2, 0));
        let progress = store.crawl_requests().unwrap();
        let p = progress.iter().find(|p| p.id == second).unwrap();
        assert_eq!(p.pages, BTreeMap::from([("cancelled".to_string(), 4)]));
        assert_eq!(p.sitemaps, BTreeMap::from([("failed".to_string(), 1)]));
        assert_eq!(p.max_pages, 4, "the budget closed at what it queued");
        assert!(p.finished);
        // Nothing of it is leased any more.
        let params = crate::testkit::lease_params(100);
        assert!(
            store
                .lease(&node.public(), 10, t0 + 2, &params)
                .unwrap()
                .jobs
                .is_empty()
        );
        // The first request's leased pages are untouched by cancelling it.
        let first = store.cancel_crawl_request(1, None, t0 + 3).unwrap();
        assert_eq!(first.pages_cancelled, 0);
        let p = &store.crawl_requests().unwrap()[0];
        assert_eq!(p.pages, BTreeMap::from([("leased".to_string(), 2)]));
        // Its pages are out of the seen-set: asked for again, they are queued again.
        let again = store.add_crawl_request("lab:1", &request, t0 + 4).unwrap();
        assert_eq!((again.queued, again.already_seen), (4, 0));
        assert_eq!(scalar(pending), 6);
    }

    /// Paging resumes exactly after the last (epoch, record id) read, whatever the page size, and
    /// keeps to the epochs asked for.
    #[test]
    fn pages_of_any_size_read_every_accepted_record_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (_, accepted) = crate::testkit::fill_store(dir.path(), 25).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let all = ids(&store, 0..=u64::MAX, ACCEPTED_PAGE_ROWS);
        assert_eq!(all.len(), accepted);
        assert!(all.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        let epochs: Vec<u64> = all.iter().map(|(e, _)| *e).collect();
        assert!(epochs.contains(&1) && epochs.contains(&2), "{epochs:?}");
        for page_rows in [0, 1, 2, 3, 7, accepted - 1, accepted, accepted + 1] {
            assert_eq!(
                ids(&store, 0..=u64::MAX, page_rows),
                all,
                "pages of {page_rows}"
            );
        }
        let second: Vec<_> = all.iter().filter(|(e, _)| *e == 2).copied().collect();
        assert_eq!(ids(&store, 2..=2, 3), second);
        assert!(ids(&store, 3..=9, 3).is_empty());
        assert_eq!(store.accepted_epochs(None).unwrap(), Some((1, 2)));
        assert_eq!(store.accepted_epochs(Some(2)).unwrap(), Some((2, 2)));
        assert_eq!(store.accepted_epochs(Some(3)).unwrap(), None);
    }

    /// The export finds an epoch and its record ids through `records_export`, whose entries are
    /// (epoch, rowid): no scan of the table, and no index keyed by record id to keep.
    #[test]
    fn the_export_reads_epochs_through_the_index_that_grows_at_its_end() {
        let dir = tempfile::tempdir().unwrap();
        crate::testkit::fill_store(dir.path(), 3).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let conn = store.conn().unwrap();
        let plan = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> String {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt.query_map(params, |r| r.get::<_, String>(3)).unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
        };
        let first = plan(FIRST_ACCEPTED_EPOCH, &[&1, &2]);
        assert!(
            first.contains("USING COVERING INDEX records_export"),
            "{first}"
        );
        let ids = plan(ACCEPTED_IDS_OF_EPOCH, &[&1]);
        assert!(
            ids.contains("USING INDEX records_export (epoch=?)"),
            "{ids}"
        );
        let indexed: Vec<String> = conn
            .prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'")
            .unwrap()
            .query_map([], |r| r.get::<_, Option<String>>(0))
            .unwrap()
            .filter_map(Result::unwrap)
            .collect();
        assert!(
            !indexed.iter().any(|sql| sql.contains("epoch, record_id")),
            "{indexed:?}"
        );
    }

    /// A record revoked after its epoch's ids were read is left out of the page that reads it.
    #[test]
    fn a_record_revoked_during_the_stream_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        crate::testkit::fill_store(dir.path(), 6).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let all = ids(&store, 0..=u64::MAX, ACCEPTED_PAGE_ROWS);
        let victim = all.last().unwrap().1;
        let mut seen = Vec::new();
        store
            .for_each_accepted_paged(0..=u64::MAX, 1, |a| -> Result<(), StoreError> {
                if seen.is_empty() {
                    store
                        .writer()
                        .unwrap()
                        .execute(
                            "UPDATE records SET verdict = 'revoked' WHERE record_id = ?1",
                            [victim.as_bytes().as_slice()],
                        )
                        .unwrap();
                }
                seen.push((a.epoch, a.record.id()));
                Ok(())
            })
            .unwrap();
        let expected: Vec<_> = all
            .iter()
            .filter(|(_, id)| *id != victim)
            .copied()
            .collect();
        assert_eq!(seen, expected);
    }

    /// The network's counts are its records by verdict, they add up to the total, and the
    /// reasons records were not accepted for are counted over every other verdict, most
    /// frequent first, then by name.
    #[test]
    fn network_stats_count_records_by_verdict_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        crate::testkit::fill_store(dir.path(), 8).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let before = store.network_stats(0).unwrap();
        assert_eq!(
            (before.records_total, before.records_accepted),
            (8, 8),
            "{before:?}"
        );
        assert!(before.rejection_reasons.is_empty(), "{before:?}");
        // Two revoked for a failed check, one for a page gone, two duplicates, two rejected.
        store
            .writer()
            .unwrap()
            .execute_batch(
                "UPDATE records SET verdict = 'revoked', reason = 'failed_cross_check'
                  WHERE seq IN (1, 2);
                 UPDATE records SET verdict = 'revoked', reason = 'page_not_found' WHERE seq = 3;
                 UPDATE records SET verdict = 'duplicate', reason = 'exact_duplicate'
                  WHERE seq IN (4, 5);
                 UPDATE records SET verdict = 'rejected', reason = 'c4_curly_bracket'
                  WHERE seq IN (6, 7);",
            )
            .unwrap();
        let s = store.network_stats(0).unwrap();
        assert_eq!(
            [
                s.records_accepted,
                s.records_duplicate,
                s.records_rejected,
                s.records_revoked,
                s.records_total
            ],
            [1, 2, 2, 3, 8]
        );
        let reasons: Vec<(&str, u64)> = s
            .rejection_reasons
            .iter()
            .map(|r| (r.reason.as_str(), r.count))
            .collect();
        assert_eq!(
            reasons,
            [
                ("c4_curly_bracket", 2),
                ("exact_duplicate", 2),
                ("failed_cross_check", 2),
                ("page_not_found", 1)
            ]
        );
    }

    #[test]
    fn corrupt_stored_scores_are_an_error_naming_the_record() {
        let dir = tempfile::tempdir().unwrap();
        crate::testkit::fill_store(dir.path(), 3).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let victim = ids(&store, 0..=u64::MAX, ACCEPTED_PAGE_ROWS)[1].1;
        for bad in [
            &[2u8, 0][..],
            &[1, 0, 0][..],
            &[1, 200, 0, 0, 0, 0, 0, 0, 0, 0][..],
        ] {
            store
                .writer()
                .unwrap()
                .execute(
                    "UPDATE records SET quality = ?2 WHERE record_id = ?1",
                    rusqlite::params![victim.as_bytes().as_slice(), bad],
                )
                .unwrap();
            let err = store
                .for_each_accepted_paged(0..=u64::MAX, ACCEPTED_PAGE_ROWS, |_| {
                    Ok::<(), StoreError>(())
                })
                .unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(
                    err,
                    StoreError::Corrupt {
                        what: "quality",
                        ..
                    }
                ) && msg.contains(&victim.to_string()),
                "{msg}"
            );
        }
    }
}
