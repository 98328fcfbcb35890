//! The ingest transaction: lease checks, dedup, cross-checks, frontier growth, ledger and receipt,
//! all in one SQLite transaction (accepted or not, never half).

use std::collections::HashMap;

use gleaner_protocol::auth::MAX_CLOCK_SKEW_MS;
use gleaner_protocol::{
    Digest, Outlinks, ProtocolError, PublicKey, Receipt, Record, RecordVerdict, SecretKey, Verdict,
};
use rusqlite::{Connection, OptionalExtension, Statement, params};

use super::bands::BandIndex;
use super::bodies::{Appender, Bodies};
use super::jobs::{
    CLOSE_DOMAIN_LEASE, RequestScope, add_pending, close_domain_lease_with, note_crawl_delay,
    pause_judging, push_task,
};
use super::nodes::{
    IngestStanding, apply_check, apply_page_gone, epoch_points, ingest_standing,
    not_independent_of, payout_of,
};
use super::tiebreaks::ValidatorFetch;
use super::{Cached, Op, Store, StoreError, open_epoch};
use crate::dedup::{MinHash, NUM_BANDS};
use crate::frontier::MAX_OUTLINKS_FOLLOWED;
use crate::quality::StoredScores;
use crate::scoring::{self, AGREEMENT_SIMILARITY, SCORING};

/// A record after the CPU-side checks ([`crate::ingest::prepare`]), ready for the transaction.
#[derive(Debug, Clone)]
pub struct PreparedRecord {
    pub record: Record,
    /// What the checks computed about it.
    pub derived: Derived,
}

/// What the CPU-side checks computed about one record (its own fields stay in the
/// [`Record`], which `prepare` moves or copies in beside this).
#[derive(Debug, Clone)]
pub struct Derived {
    pub id: Digest,
    /// The record as JSON, stored for export: as received, a slice of the batch's body.
    pub json: bytes::Bytes,
    /// The first quality rule that failed, if any.
    pub rejection: Option<&'static str>,
    /// The quality scores as they are stored.
    pub quality: StoredScores,
    /// FineWeb line-punctuation ratio (points weight).
    pub punct_ratio: f64,
    /// What dedup and the cross-checks compare the record by: computed for a record the quality
    /// rules passed, `None` for one they rejected. A rejected record is never looked up nor kept
    /// for dedup, so its keys would be thrown away, except when it answers a cross-check: then
    /// the store computes its signature itself (rare: a sampled check of a page whose check
    /// fetch fails the rules).
    pub keys: Option<DedupKeys>,
}

/// A record's dedup keys: its exact-duplicate key and its MinHash signature with the signature's
/// LSH band keys.
#[derive(Debug, Clone)]
pub struct DedupKeys {
    pub text_key: Digest,
    pub minhash: MinHash,
    pub bands: [i64; NUM_BANDS],
}

impl DedupKeys {
    /// The keys of `text`.
    pub fn of(text: &str) -> Self {
        let minhash = MinHash::of(text);
        DedupKeys {
            text_key: crate::dedup::exact_key(text),
            bands: minhash.bands(),
            minhash,
        }
    }
}

/// Settings of the ingest transaction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IngestParams {
    pub cross_check_rate: f64,
    pub new_node_cross_check_rate: f64,
    /// Share of agreed checks the validator audits with its own fetch (with
    /// `validator_tiebreaks`; `ingest::settle_audit`).
    pub audit_rate: f64,
    pub domain_delay_ms: i64,
    /// A disputed cross-check waits for the validator's own fetch (`tiebreak_fetches`, settled
    /// by [`Store::settle_by_validator`]) instead of going straight to a third node; audits are
    /// made only then.
    pub validator_tiebreaks: bool,
    /// The validator's secret key for sampling ([`crate::Identity::sampling_key`]): which
    /// records are checked, and which agreed checks audited, is a keyed hash of the record's id
    /// (`ingest::sampled`). A node knows its record's id before it submits (it is a hash of
    /// what the node signs), so sampling on the id alone would let a fabricator change a byte of
    /// its text until its record would not be checked.
    pub sample_key: [u8; 32],
}

/// The result of ingesting a batch.
#[derive(Debug, Clone)]
pub enum IngestOutcome {
    /// Newly ingested: the signed receipt and its stored JSON bytes.
    Fresh {
        receipt: Box<Receipt>,
        json: Vec<u8>,
    },
    /// The batch was ingested before: the stored receipt bytes, unchanged.
    Replayed { json: Vec<u8> },
}

impl IngestOutcome {
    /// The receipt JSON to send back.
    pub fn json(&self) -> &[u8] {
        match self {
            IngestOutcome::Fresh { json, .. } | IngestOutcome::Replayed { json } => json,
        }
    }
}

/// Why a batch was refused as a whole. Nothing is stored when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("batch rejected: {source}")]
    Batch {
        #[source]
        source: ProtocolError,
    },
    #[error("record {index} rejected: {source}")]
    Record {
        index: usize,
        #[source]
        source: ProtocolError,
    },
    #[error("batch header is signed by {header}, but the request by {request}")]
    WrongNode {
        header: PublicKey,
        request: PublicKey,
    },
    #[error("node {0} is not registered")]
    UnknownNode(PublicKey),
    #[error("record {index}: lease {lease_id} does not exist")]
    UnknownLease { index: usize, lease_id: String },
    #[error("record {index}: lease {lease_id} belongs to another node")]
    LeaseNotYours { index: usize, lease_id: String },
    #[error("record {index}: lease {lease_id} is for another URL")]
    LeaseUrlMismatch { index: usize, lease_id: String },
    #[error("record {index}: lease {lease_id} expired at {expired_at_ms}")]
    LeaseExpired {
        index: usize,
        lease_id: String,
        expired_at_ms: i64,
    },
    #[error("record {index}: lease {lease_id} was released or reported failed")]
    LeaseClosed { index: usize, lease_id: String },
    #[error("record {index} ({record_id}) was already submitted")]
    AlreadySubmitted { index: usize, record_id: Digest },
    #[error("record {index} appears twice in the batch")]
    DuplicateInBatch { index: usize },
    #[error("record {index}: fetched_at_ms {fetched_at_ms} is in the future")]
    FutureTimestamp { index: usize, fetched_at_ms: i64 },
    #[error("record {index}: fetched before its lease was issued")]
    FetchedBeforeLease { index: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IngestError {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Batch { source } | IngestError::Record { source, .. } => source.code(),
            IngestError::WrongNode { .. } => "wrong_node",
            IngestError::UnknownNode(_) => "unknown_node",
            IngestError::UnknownLease { .. } => "unknown_lease",
            IngestError::LeaseNotYours { .. } => "lease_not_yours",
            IngestError::LeaseUrlMismatch { .. } => "lease_url_mismatch",
            IngestError::LeaseExpired { .. } => "lease_expired",
            IngestError::LeaseClosed { .. } => "lease_closed",
            IngestError::AlreadySubmitted { .. } => "already_submitted",
            IngestError::DuplicateInBatch { .. } => "duplicate_in_batch",
            IngestError::FutureTimestamp { .. } => "future_timestamp",
            IngestError::FetchedBeforeLease { .. } => "fetched_before_lease",
            IngestError::Store(e) => e.code(),
        }
    }

    /// HTTP status for the problem document.
    pub fn status(&self) -> u16 {
        match self {
            IngestError::Batch {
                source: ProtocolError::TooLarge { .. },
            } => 413,
            IngestError::Batch {
                source: ProtocolError::BadSignature { .. },
            }
            | IngestError::Record {
                source: ProtocolError::BadSignature { .. },
                ..
            } => 422,
            IngestError::WrongNode { .. }
            | IngestError::UnknownNode(_)
            | IngestError::LeaseNotYours { .. } => 403,
            IngestError::LeaseExpired { .. }
            | IngestError::LeaseClosed { .. }
            | IngestError::AlreadySubmitted { .. } => 409,
            IngestError::Store(_) => 500,
            _ => 400,
        }
    }
}

/// A batch's primary records by crawl request and verdict, added to each request's counts
/// once per batch (a batch's pages mostly come from one request or a few).
#[derive(Default)]
struct RequestCounts(Vec<(i64, [i64; 3])>);

impl RequestCounts {
    fn add(&mut self, request: i64, verdict: Verdict) {
        let slot = usize::from(verdict.code() - 1);
        match self.0.iter_mut().find(|(r, _)| *r == request) {
            Some((_, counts)) => counts[slot] += 1,
            None => {
                let mut counts = [0; 3];
                counts[slot] = 1;
                self.0.push((request, counts));
            }
        }
    }

    fn save(&self, tx: &Connection) -> Result<(), StoreError> {
        for (request, [accepted, duplicate, rejected]) in &self.0 {
            tx.exec_cached(
                "UPDATE crawl_requests SET records_accepted = records_accepted + ?2,
                        records_duplicate = records_duplicate + ?3,
                        records_rejected = records_rejected + ?4
                  WHERE id = ?1",
                params![request, accepted, duplicate, rejected],
            )
            .op("ingest")?;
        }
        Ok(())
    }
}

struct LeaseRow {
    node: String,
    url: String,
    state: String,
    issued_at_ms: i64,
    expires_at_ms: i64,
    task_id: i64,
    domain: String,
}

struct TaskRow {
    kind: String,
    check_id: Option<i64>,
    request_id: i64,
    depth: i64,
}

impl Store {
    /// Ingests a verified, prepared batch in one transaction and signs its receipt.
    pub fn ingest(
        &self,
        batch_id: Digest,
        node: &PublicKey,
        records: &[PreparedRecord],
        now_ms: i64,
        key: &SecretKey,
        p: &IngestParams,
    ) -> Result<IngestOutcome, IngestError> {
        self.group(|g| g.ingest(batch_id, node, records, now_ms, key, p))?
    }

    /// The stored receipt JSON of a batch, if it was ingested (as of the last commit: a batch
    /// being stored right now is caught by [`Store::ingest`] itself).
    pub fn receipt(&self, batch_id: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        stored_receipt(&*self.reader()?, batch_id)
    }
}

/// The body of [`Store::ingest`], on a connection inside a transaction (or savepoint) that the
/// caller commits or rolls back: an `Err` leaves changes behind that the caller must undo.
#[allow(clippy::too_many_arguments)]
pub(super) fn ingest_in(
    tx: &Connection,
    bands: &mut BandIndex,
    bodies: &mut Appender,
    batch_id: Digest,
    node: &PublicKey,
    records: &[PreparedRecord],
    now_ms: i64,
    key: &SecretKey,
    p: &IngestParams,
) -> Result<IngestOutcome, IngestError> {
    if let Some(json) = stored_receipt(tx, &batch_id)? {
        return Ok(IngestOutcome::Replayed { json });
    }
    let node_s = node.to_string();
    let IngestStanding {
        payout,
        credibility,
        checks_failed,
        suspended,
    } = ingest_standing(tx, node)?.ok_or(IngestError::UnknownNode(*node))?;
    if let Some(reason) = suspended {
        return Err(StoreError::Suspended {
            node: node_s,
            reason,
        }
        .into());
    }
    let epoch = open_epoch(tx)?;
    let mut verdicts = Vec::with_capacity(records.len());
    let mut counts = [0i64; 3];
    let mut by_request = RequestCounts::default();
    let mut scopes: HashMap<i64, RequestScope> = HashMap::new();
    // The change to the pending-work counter, applied once after the loop (a failure anywhere
    // rolls the whole batch back, counter included).
    let mut pending = 0i64;
    // The statements every record runs, taken from the connection's statement cache once per
    // batch rather than once per record (each take and return copies and hashes the SQL).
    let mut lease_q = tx.prepare_cached(LEASE_ROW).op("lease_row")?;
    let mut task_q = tx.prepare_cached(TASK_ROW).op("task_row")?;
    let mut close_lease = tx
        .prepare_cached("UPDATE leases SET state = 'done', closed_at_ms = ?2 WHERE lease_id = ?1")
        .op("ingest")?;
    let mut close_task = tx
        .prepare_cached("UPDATE tasks SET state = 'done' WHERE id = ?1")
        .op("ingest")?;
    let mut close_domain = tx
        .prepare_cached(CLOSE_DOMAIN_LEASE)
        .op("close_domain_lease")?;
    let mut insert_record = tx
        .prepare_cached(
            "INSERT INTO records(record_id, batch_id, node, lease_id, url, role, epoch,
                     received_at_ms, verdict, reason, points, text_key, minhash, quality_json,
                     dup_of, body_segment, body_offset, body_len, quality)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                         ?17, ?18, ?19)",
        )
        .op("ingest")?;
    // The bodies of the records kept (all but those the quality rules rejected), one after
    // another, written with one call at the end of a segment once every record has passed
    // (store/bodies.rs).
    let kept_bytes: usize = records
        .iter()
        .filter(|pr| pr.derived.rejection.is_none())
        .map(|pr| pr.derived.json.len())
        .sum();
    let body_at = match kept_bytes {
        0 => None,
        n => Some(bodies.place(tx, n as u64)?),
    };
    let mut body_bytes = Bodies::with_capacity(kept_bytes);
    for (index, pr) in records.iter().enumerate() {
        let r = &pr.record;
        let d = &pr.derived;
        let lease =
            lease_row(&mut lease_q, &r.lease_id)?.ok_or_else(|| IngestError::UnknownLease {
                index,
                lease_id: r.lease_id.clone(),
            })?;
        let lease_id = || r.lease_id.clone();
        if lease.node != node_s {
            return Err(IngestError::LeaseNotYours {
                index,
                lease_id: lease_id(),
            });
        }
        if lease.url != r.url {
            return Err(IngestError::LeaseUrlMismatch {
                index,
                lease_id: lease_id(),
            });
        }
        // A record's id covers its lease id, and the transaction that stores a record closes its
        // lease as done (no lease leaves "done"), so a record already stored is a done lease:
        // no look-up by record id is needed, and since schema version 11 the records table has
        // no key on record_id to keep (an entry on a random page per record): this check is what
        // keeps record ids unique.
        if lease.state == "done" {
            return Err(IngestError::AlreadySubmitted {
                index,
                record_id: d.id,
            });
        }
        match lease.state.as_str() {
            "open" if lease.expires_at_ms >= now_ms => {}
            "open" | "expired" => {
                return Err(IngestError::LeaseExpired {
                    index,
                    lease_id: lease_id(),
                    expired_at_ms: lease.expires_at_ms,
                });
            }
            _ => {
                return Err(IngestError::LeaseClosed {
                    index,
                    lease_id: lease_id(),
                });
            }
        }
        if r.fetched_at_ms < lease.issued_at_ms.saturating_sub(MAX_CLOCK_SKEW_MS) {
            return Err(IngestError::FetchedBeforeLease { index });
        }
        let task = task_row(&mut task_q, lease.task_id)?;

        // Close the lease and the task; the domain rests.
        close_lease
            .execute(params![r.lease_id, now_ms])
            .op("ingest")?;
        close_task.execute(params![lease.task_id]).op("ingest")?;
        if r.crawl_delay_ms > 0 {
            note_crawl_delay(tx, &lease.domain, i64::from(r.crawl_delay_ms))?;
        }
        pending += close_domain_lease_with(
            &mut close_domain,
            &lease.domain,
            now_ms,
            p.domain_delay_ms,
            None,
        )?;

        let is_primary = task.kind == "primary";
        // A rejected check or tie-break fetch is still compared (see `Derived::keys`).
        let computed;
        let keys = match &d.keys {
            Some(keys) => Some(keys),
            None if !is_primary => {
                computed = DedupKeys::of(&r.text);
                Some(&computed)
            }
            None => None,
        };
        let (verdict, reason, points, dup_of) = if let Some(reason) = d.rejection {
            (Verdict::Rejected, reason, 0, None)
        } else if !is_primary {
            let pts = scoring::points(r.text.len(), d.punct_ratio, credibility);
            (Verdict::Accepted, "cross_check", pts, None)
        } else if let Some(orig) = keys.and_then(|k| find_duplicate(bands, k)) {
            (Verdict::Duplicate, orig.1, 0, Some(orig.0))
        } else {
            let pts = scoring::points(r.text.len(), d.punct_ratio, credibility);
            (Verdict::Accepted, "ok", pts, None)
        };
        if let Some((_, orig_seq)) = &dup_of {
            tx.prepare_cached("UPDATE records SET cluster_size = cluster_size + 1 WHERE seq = ?1")
                .and_then(|mut s| s.execute(params![orig_seq]))
                .op("ingest")?;
        }
        let verdict_s = match verdict {
            Verdict::Accepted => "accepted",
            Verdict::Duplicate => "duplicate",
            Verdict::Rejected => "rejected",
        };
        counts[usize::from(verdict.code() - 1)] += 1;
        if is_primary {
            by_request.add(task.request_id, verdict);
        }
        let body = body_at
            .filter(|_| verdict != Verdict::Rejected)
            .map(|(segment, start)| {
                let offset = start + body_bytes.len() as u64;
                body_bytes.push(&d.json);
                (
                    segment,
                    i64::try_from(offset).unwrap_or(i64::MAX),
                    i64::try_from(d.json.len()).unwrap_or(i64::MAX),
                )
            });
        insert_record
            .execute(params![
                d.id.as_bytes().as_slice(),
                batch_id.as_bytes().as_slice(),
                node_s,
                r.lease_id,
                r.url,
                task.kind,
                i64::try_from(epoch).unwrap_or(i64::MAX),
                now_ms,
                verdict_s,
                reason,
                i64::try_from(points).unwrap_or(i64::MAX),
                // A rejected primary record has no keys: empty, as a signature that cannot be
                // compared is stored (schema version 13's convention; `minhash_of` reads none).
                keys.map_or(&[][..], |k| k.text_key.as_bytes().as_slice()),
                keys.map_or_else(Vec::new, |k| k.minhash.to_bytes()),
                match &d.quality {
                    StoredScores::Json(json) => json.as_str(),
                    StoredScores::Compact(_) => "",
                },
                dup_of.map(|(d, _)| d.as_bytes().to_vec()),
                body.map(|b| b.0),
                body.map(|b| b.1),
                body.map(|b| b.2),
                match &d.quality {
                    StoredScores::Compact(bytes) => Some(bytes.as_slice()),
                    StoredScores::Json(_) => None,
                },
            ])
            .op("ingest")?;
        let seq = tx.last_insert_rowid();

        if verdict == Verdict::Accepted
            && is_primary
            && let Some(k) = keys
        {
            bands.insert(d.id, seq, &k.text_key, &k.bands);
            let rate = if scoring::is_proven(credibility) {
                p.cross_check_rate
            } else if checks_failed > 0 {
                // A node caught fabricating (its credibility back at the start) has every record
                // checked until it is proven again: what it sends next is no more to be trusted
                // than what it was caught on, and a record left unchecked could reach a dataset.
                1.0
            } else {
                p.new_node_cross_check_rate
            };
            if sampled(&p.sample_key, &d.id, rate) {
                tx.exec_cached(
                    "INSERT INTO cross_checks(url, primary_record, primary_seq, primary_node,
                                              outcome, created_at_ms)
                         VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
                    params![r.url, d.id.as_bytes().as_slice(), seq, node_s, now_ms],
                )
                .op("ingest")?;
                let check_id = tx.last_insert_rowid();
                push_task(
                    tx,
                    &r.url,
                    &lease.domain,
                    task.request_id,
                    task.depth,
                    "check",
                    Some(check_id),
                    // Nor to a node paid to the same key or on the same network: not an
                    // independent check.
                    &not_independent_of(tx, &[&node_s])?,
                    now_ms,
                )?;
            }
            grow_frontier(tx, &mut scopes, &task, &r.outlinks, now_ms)?;
        } else if !is_primary
            && let Some(check_id) = task.check_id
            && let Some(k) = keys
        {
            resolve_check(
                tx, bands, check_id, &task, &lease, pr, &k.minhash, seq, &node_s, epoch, now_ms, p,
            )?;
        }
        verdicts.push(RecordVerdict {
            record_id: d.id,
            verdict,
            reason: reason.to_string(),
            points,
        });
    }
    if let Some((segment, start)) = body_at {
        bodies.write(tx, segment, start, &mut body_bytes)?;
    }
    add_pending(tx, pending)?;
    for s in scopes.values() {
        s.save(tx)?;
    }
    by_request.save(tx)?;
    tx.exec_cached(
        "UPDATE nodes SET records_accepted = records_accepted + ?2,
                    records_duplicate = records_duplicate + ?3,
                    records_rejected = records_rejected + ?4, last_seen_ms = ?5
             WHERE node = ?1",
        params![node_s, counts[0], counts[1], counts[2], now_ms],
    )
    .op("ingest")?;
    let receipt = Receipt::sign(key, batch_id, *node, epoch, now_ms, SCORING, verdicts);
    if receipt.points > 0 {
        tx.exec_cached(
            "INSERT INTO ledger(at_ms, epoch, node, payout, kind, amount, batch_id, note)
                 VALUES (?1, ?2, ?3, ?4, 'credit', ?5, ?6, ?7)",
            params![
                now_ms,
                i64::try_from(epoch).unwrap_or(i64::MAX),
                node_s,
                payout,
                i64::try_from(receipt.points).unwrap_or(i64::MAX),
                batch_id.as_bytes().as_slice(),
                SCORING
            ],
        )
        .op("ingest")?;
    }
    let json = serde_json::to_vec(&receipt).map_err(|e| StoreError::Corrupt {
        what: "receipt",
        why: e.to_string(),
    })?;
    tx.exec_cached(
        "INSERT INTO batches(batch_id, node, received_at_ms, epoch, record_count, points,
                                 receipt_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            batch_id.as_bytes().as_slice(),
            node_s,
            now_ms,
            i64::try_from(epoch).unwrap_or(i64::MAX),
            records.len() as i64,
            i64::try_from(receipt.points).unwrap_or(i64::MAX),
            json
        ],
    )
    .op("ingest")?;
    Ok(IngestOutcome::Fresh {
        receipt: Box::new(receipt),
        json,
    })
}

fn stored_receipt(conn: &Connection, batch_id: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
    conn.prepare_cached("SELECT receipt_json FROM batches WHERE batch_id = ?1")
        .and_then(|mut s| {
            s.query_row(params![batch_id.as_bytes().as_slice()], |r| r.get(0))
                .optional()
        })
        .op("stored_receipt")
}

/// A lease's row, by id ([`lease_row`]).
const LEASE_ROW: &str = "SELECT node, url, state, issued_at_ms, expires_at_ms, task_id, domain
                         FROM leases WHERE lease_id = ?1";

/// A task's row, by id ([`task_row`]).
const TASK_ROW: &str = "SELECT kind, check_id, request_id, depth FROM tasks WHERE id = ?1";

/// The lease `lease_id`, with `stmt` prepared from [`LEASE_ROW`].
fn lease_row(stmt: &mut Statement<'_>, lease_id: &str) -> Result<Option<LeaseRow>, StoreError> {
    stmt.query_row(params![lease_id], |r| {
        Ok(LeaseRow {
            node: r.get(0)?,
            url: r.get(1)?,
            state: r.get(2)?,
            issued_at_ms: r.get(3)?,
            expires_at_ms: r.get(4)?,
            task_id: r.get(5)?,
            domain: r.get(6)?,
        })
    })
    .optional()
    .op("lease_row")
}

/// The task `id`, with `stmt` prepared from [`TASK_ROW`].
fn task_row(stmt: &mut Statement<'_>, id: i64) -> Result<TaskRow, StoreError> {
    stmt.query_row(params![id], |r| {
        Ok(TaskRow {
            kind: r.get(0)?,
            check_id: r.get(1)?,
            request_id: r.get(2)?,
            depth: r.get(3)?,
        })
    })
    .op("task_row")
}

/// An accepted primary record this one duplicates: exactly (same normalised text) or nearly
/// (an LSH band in common, in band order), both looked up in the in-memory dedup index.
fn find_duplicate(bands: &BandIndex, k: &DedupKeys) -> Option<((Digest, i64), &'static str)> {
    if let Some(id) = bands.find_exact(&k.text_key) {
        return Some((id, "exact_duplicate"));
    }
    bands.find(&k.bands).map(|id| (id, "near_duplicate"))
}

/// Takes records about to be revoked out of the dedup index: the accepted primaries of
/// `of_epoch` (a node and an epoch: what `penalise` revokes) and the record at `record_seq`.
/// Each record's bands are recomputed from its stored MinHash and removed, with its text key,
/// where the record owns them.
fn remove_bands(
    conn: &Connection,
    bands: &mut BandIndex,
    of_epoch: Option<(&str, i64)>,
    record_seq: Option<i64>,
) -> Result<(), StoreError> {
    // A NULL node or epoch matches no row.
    let (node, epoch) = (of_epoch.map(|o| o.0), of_epoch.map(|o| o.1));
    let revoked: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT record_id, text_key, minhash FROM records
                  WHERE (node = ?1 AND epoch = ?2 AND verdict = 'accepted' AND role = 'primary')
                     OR (seq = ?3 AND verdict = 'accepted' AND role = 'primary')",
            )
            .op("penalise")?;
        let rows = stmt
            .query_map(params![node, epoch, record_seq], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .op("penalise")?;
        rows.collect::<Result<_, _>>().op("penalise")?
    };
    for (id, text_key, minhash) in &revoked {
        let minhash = MinHash::from_bytes(minhash).ok_or_else(|| StoreError::Corrupt {
            what: "record minhash",
            why: format!("{} bytes", minhash.len()),
        })?;
        bands.remove(
            &super::digest_from(id, "record id")?,
            &super::digest_from(text_key, "record text key")?,
            &minhash.bands(),
        );
    }
    Ok(())
}

/// Whether the record `id` is in the sampled share `rate` under the validator's secret `key`:
/// the first 8 bytes of the record id's keyed blake3 hash as a fraction of 2^64. Deterministic
/// for the validator, unpredictable for nodes (see [`IngestParams::sample_key`]).
fn sampled(key: &[u8; 32], id: &Digest, rate: f64) -> bool {
    let hash = blake3::keyed_hash(key, id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&hash.as_bytes()[..8]);
    (u64::from_le_bytes(b) as f64 / u64::MAX as f64) < rate
}

/// Queues in-scope outlinks of an accepted record (the first [`MAX_OUTLINKS_FOLLOWED`] the node
/// listed), within the request's page and depth budget. Links are normalised here, once the
/// request is known to follow them: most records come from requests at their depth limit or
/// with their page budget spent, and their links would be normalised for nothing.
fn grow_frontier(
    conn: &Connection,
    scopes: &mut HashMap<i64, RequestScope>,
    task: &TaskRow,
    outlinks: &Outlinks,
    now_ms: i64,
) -> Result<(), StoreError> {
    if outlinks.is_empty() {
        return Ok(());
    }
    if let std::collections::hash_map::Entry::Vacant(slot) = scopes.entry(task.request_id) {
        let Some(scope) = RequestScope::load(conn, task.request_id)? else {
            return Ok(());
        };
        slot.insert(scope);
    }
    let Some(s) = scopes.get_mut(&task.request_id) else {
        return Ok(());
    };
    if task.depth + 1 > s.max_depth {
        return Ok(());
    }
    for link in outlinks.iter().take(MAX_OUTLINKS_FOLLOWED) {
        if s.full() {
            break;
        }
        s.offer_listed(conn, link, task.depth + 1, now_ms)?;
    }
    Ok(())
}

/// The stored MinHash of the record at `seq` (`None` for no seq or no such row).
fn minhash_of(conn: &Connection, seq: Option<i64>) -> Result<Option<MinHash>, StoreError> {
    let Some(seq) = seq else {
        return Ok(None);
    };
    let bytes: Option<Vec<u8>> = conn
        .query_row_cached(
            "SELECT minhash FROM records WHERE seq = ?1",
            params![seq],
            |r| r.get(0),
        )
        .optional()
        .op("minhash_of")?;
    Ok(bytes.as_deref().and_then(MinHash::from_bytes))
}

/// Compares a check or tie-break fetch with the earlier fetches and settles credibility. A check
/// that agrees is audited by the validator's own fetch when its record is in `p.audit_rate`'s
/// sample (outcome `auditing`, [`settle_audit`]).
#[allow(clippy::too_many_arguments)]
fn resolve_check(
    conn: &Connection,
    bands: &mut BandIndex,
    check_id: i64,
    task: &TaskRow,
    lease: &LeaseRow,
    pr: &PreparedRecord,
    sig: &MinHash,
    seq: i64,
    node: &str,
    epoch: u64,
    now_ms: i64,
    p: &IngestParams,
) -> Result<(), StoreError> {
    let this = pr.derived.id.as_bytes().as_slice();
    let Some(dispute) = dispute_of(conn, check_id)? else {
        return Ok(());
    };
    if task.kind != "check" {
        // A third node's fetch of a disputed (or audited) check.
        return settle_dispute(
            conn,
            bands,
            dispute,
            sig,
            Third::Node { node, record: this },
            epoch,
            now_ms,
        )
        .map(|_| ());
    }
    let Some(primary_sig) = minhash_of(conn, dispute.primary_seq)? else {
        return Ok(());
    };
    let sim = sig.similarity(&primary_sig);
    let place = || TiebreakPlace {
        url: lease.url.clone(),
        domain: lease.domain.clone(),
        request_id: task.request_id,
        depth: task.depth,
    };
    if sim >= AGREEMENT_SIMILARITY {
        apply_check(conn, &dispute.primary_node, true, check_id, now_ms)?;
        apply_check(conn, node, true, check_id, now_ms)?;
        let audit = p.validator_tiebreaks && sampled(&p.sample_key, &pr.derived.id, p.audit_rate);
        let outcome = if audit { "auditing" } else { "agreed" };
        conn.exec_cached(
            "UPDATE cross_checks SET check_record = ?2, check_node = ?3, similarity = ?4,
                    outcome = ?7, resolved_at_ms = ?5, check_seq = ?6 WHERE id = ?1",
            params![check_id, this, node, sim, now_ms, seq, outcome],
        )
        .op("resolve_check")?;
        if audit {
            queue_validator_fetch(conn, check_id, &place(), now_ms)?;
        }
        return Ok(());
    }
    conn.exec_cached(
        "UPDATE cross_checks SET check_record = ?2, check_node = ?3, similarity = ?4,
                outcome = 'disputed', check_seq = ?5 WHERE id = ?1",
        params![check_id, this, node, sim, seq],
    )
    .op("resolve_check")?;
    if p.validator_tiebreaks {
        queue_validator_fetch(conn, check_id, &place(), now_ms)?;
    } else {
        third_node_tiebreak(
            conn,
            check_id,
            &place(),
            &dispute.primary_node,
            node,
            now_ms,
        )?;
    }
    tracing::info!(
        check = check_id,
        similarity = sim,
        by_validator = p.validator_tiebreaks,
        "cross-check disputed; tie-break queued"
    );
    Ok(())
}

/// Who a check's fetch, or its third fetch, was when the validator made it itself (the
/// `check_node` or `tiebreak_node` of `cross_checks`); no node's key reads so.
pub(super) const VALIDATOR: &str = "validator";

/// Where a disputed check's page is, for its tie-break task.
#[derive(Debug, Clone)]
pub(super) struct TiebreakPlace {
    pub url: String,
    pub domain: String,
    pub request_id: i64,
    pub depth: i64,
}

/// Queues check `check_id`'s page at `place` for the validator's own fetch (`tiebreak_fetches`,
/// `crate::tiebreak`): a disputed check, or one whose checker found no page. Queued once.
pub(super) fn queue_validator_fetch(
    conn: &Connection,
    check_id: i64,
    place: &TiebreakPlace,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.exec_cached(
        "INSERT OR IGNORE INTO tiebreak_fetches(check_id, url, domain, request_id, depth,
                                                queued_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            check_id,
            place.url,
            place.domain,
            place.request_id,
            place.depth,
            now_ms
        ],
    )
    .op("queue_validator_fetch")?;
    Ok(())
}

/// Queues the tie-break of a disputed check for a node that made neither fetch, is paid to
/// neither one's payout key, and is on neither one's network.
pub(super) fn third_node_tiebreak(
    conn: &Connection,
    check_id: i64,
    place: &TiebreakPlace,
    primary_node: &str,
    check_node: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    push_task(
        conn,
        &place.url,
        &place.domain,
        place.request_id,
        place.depth,
        "tiebreak",
        Some(check_id),
        &not_independent_of(conn, &[primary_node, check_node])?,
        now_ms,
    )
}

/// A cross-check's two earlier fetches, as stored.
pub(super) struct Dispute {
    /// The check's id (`cross_checks.id`).
    pub id: i64,
    primary_record: Vec<u8>,
    primary_seq: Option<i64>,
    pub primary_node: String,
    check_record: Option<Vec<u8>>,
    check_seq: Option<i64>,
    pub check_node: Option<String>,
    /// The validator's text's signature when its own fetch was the check
    /// ([`settle_unchecked`]; `check_node` is then [`VALIDATOR`] and there is no check record).
    validator_minhash: Option<Vec<u8>>,
    pub outcome: String,
}

pub(super) fn dispute_of(conn: &Connection, check_id: i64) -> Result<Option<Dispute>, StoreError> {
    conn.query_row_cached(
        "SELECT primary_record, primary_seq, primary_node, check_record, check_seq, check_node,
                outcome, validator_minhash
           FROM cross_checks WHERE id = ?1",
        params![check_id],
        |r| {
            Ok(Dispute {
                id: check_id,
                primary_record: r.get(0)?,
                primary_seq: r.get(1)?,
                primary_node: r.get(2)?,
                check_record: r.get(3)?,
                check_seq: r.get(4)?,
                check_node: r.get(5)?,
                outcome: r.get(6)?,
                validator_minhash: r.get(7)?,
            })
        },
    )
    .optional()
    .op("dispute_of")
}

/// Who made the third fetch of a disputed check.
#[derive(Debug, Clone, Copy)]
pub(super) enum Third<'a> {
    /// A node that made neither earlier fetch, with the record it submitted.
    Node { node: &'a str, record: &'a [u8] },
    /// The validator itself (`tiebreak_node` 'validator', no record), which fetched the page at
    /// `place` (where a fourth fetch goes if it agrees with neither node).
    Validator { place: &'a TiebreakPlace },
}

/// Settles disputed check `d` (as [`dispute_of`] read it) by a third fetch
/// (`third_sig` its text's signature): the earlier
/// fetch it agrees with is upheld, the other node penalised and its credibility lowered; if it
/// agrees with both, or a node's third fetch agrees with neither, the check is inconclusive and
/// nobody is penalised. The validator's own fetch agreeing with neither node means three
/// fetches, three texts: the check becomes `three_way`, the validator's signature is kept and a
/// fourth fetch, a node's independent of both, decides ([`settle_by_fourth`]); the validator's
/// text alone refutes nobody (a page may change between fetches, or show the validator's address
/// another page). An audit's dispute (`audit_disputed`: two agreeing nodes against the
/// validator) is settled by a further node's fetch as [`settle_by_fourth`] says. Returns the
/// outcome, or `None` when the check is not (or no longer) disputed: a second third fetch
/// changes nothing.
pub(super) fn settle_dispute(
    conn: &Connection,
    bands: &mut BandIndex,
    d: Dispute,
    third_sig: &MinHash,
    third: Third<'_>,
    epoch: u64,
    now_ms: i64,
) -> Result<Option<&'static str>, StoreError> {
    if let (Third::Node { node, record }, "audit_disputed" | "three_way") =
        (third, d.outcome.as_str())
    {
        let fourth = Fourth {
            sig: third_sig,
            node,
            record,
        };
        return settle_by_fourth(conn, bands, d, fourth, epoch, now_ms);
    }
    let check_id = d.id;
    let Some(check_node) = d.check_node.as_deref() else {
        return Ok(None);
    };
    if d.outcome != "disputed" {
        return Ok(None);
    }
    // The check's side: a node's record, or the validator's own fetch (no record).
    let by_validator = check_node == VALIDATOR;
    let check_sig = match &d.validator_minhash {
        Some(bytes) if by_validator => MinHash::from_bytes(bytes),
        _ => minhash_of(conn, d.check_seq)?,
    };
    let (Some(primary_sig), Some(check_sig)) = (minhash_of(conn, d.primary_seq)?, check_sig) else {
        return Ok(None);
    };
    let agrees_primary = third_sig.similarity(&primary_sig) >= AGREEMENT_SIMILARITY;
    let agrees_check = third_sig.similarity(&check_sig) >= AGREEMENT_SIMILARITY;
    if let (Third::Validator { place }, false, false) = (third, agrees_primary, agrees_check) {
        conn.exec_cached(
            "UPDATE cross_checks SET outcome = 'three_way', validator_minhash = ?2 WHERE id = ?1",
            params![check_id, third_sig.to_bytes()],
        )
        .op("settle_dispute")?;
        third_node_tiebreak(conn, check_id, place, &d.primary_node, check_node, now_ms)?;
        tracing::info!(
            check = check_id,
            "the validator's fetch agrees with neither node; a fourth fetch will decide"
        );
        return Ok(Some("three_way"));
    }
    let check = Claim::check(&d);
    // Who the third fetch contradicts, and who it bears out.
    let (outcome, refuted, upheld) = match (agrees_primary, agrees_check) {
        (true, false) => ("primary_upheld", check, Some(d.primary_node.as_str())),
        (false, true) => (
            "check_upheld",
            Some(Claim::primary(&d)),
            Some(check_node).filter(|_| !by_validator),
        ),
        _ => ("inconclusive", None, None),
    };
    if outcome != "inconclusive" {
        if let Some(upheld) = upheld {
            apply_check(conn, upheld, true, check_id, now_ms)?;
        }
        if let Third::Node { node, .. } = third {
            apply_check(conn, node, true, check_id, now_ms)?;
        }
    }
    // The validator's own fetch, contradicted, is nobody's lie: the page changed, or its
    // address was shown another page; nobody is penalised for it.
    if let Some(liar) = refuted {
        refute(conn, bands, check_id, outcome, &liar, epoch, now_ms)?;
    }
    let (third_record, third_node) = match third {
        Third::Node { node, record } => (Some(record), node),
        Third::Validator { .. } => (None, VALIDATOR),
    };
    record_settled(conn, check_id, third_record, third_node, outcome, now_ms)?;
    Ok(Some(outcome))
}

/// Fails `liar`'s check and penalises it ([`penalise`]): the fetch that settled check
/// `check_id` to `outcome` contradicted its text.
fn refute(
    conn: &Connection,
    bands: &mut BandIndex,
    check_id: i64,
    outcome: &str,
    liar: &Claim<'_>,
    epoch: u64,
    now_ms: i64,
) -> Result<(), StoreError> {
    apply_check(conn, liar.node, false, check_id, now_ms)?;
    penalise(conn, bands, liar.node, liar.record, liar.seq, epoch, now_ms)?;
    tracing::warn!(check = check_id, node = %liar.node, outcome,
        "a cross-check refuted a node's text; penalised");
    Ok(())
}

/// Notes that the fetch of `node` (its `record`; none for the validator's own) settled check
/// `check_id` to `outcome`.
fn record_settled(
    conn: &Connection,
    check_id: i64,
    record: Option<&[u8]>,
    node: &str,
    outcome: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.exec_cached(
        "UPDATE cross_checks SET tiebreak_record = ?2, tiebreak_node = ?3, outcome = ?4,
                resolved_at_ms = ?5 WHERE id = ?1",
        params![check_id, record, node, outcome, now_ms],
    )
    .op("record_settled")?;
    Ok(())
}

/// Settles check `d` (its outcome `unfound`: its checker found no page,
/// `jobs::requeue_or_fail`) with the validator's own fetch of it, to one of:
/// - `primary_upheld`: the validator's text agrees with the primary's, which passes a check (the
///   checker's failure blames nobody: a page can fail for a while; but the checker sits out
///   checks for the pause ([`super::JudgingRules::pause_ms`]), as one that gave a check
///   back);
/// - `check_upheld`: the validator's text disagrees: the primary is penalised as for any failed
///   check;
/// - `page_gone`: no page either ([`ValidatorFetch::NoPage`]). Two independent fetches find none
///   where the primary claimed a page: its record is revoked (out of the accepted set and the
///   dedup index), its points taken back (a ledger entry noted `page_not_found`) and it fails a
///   check, so its credibility falls and what it earns later with it; but by a pass's weight
///   only ([`crate::scoring::CREDIBILITY_ALPHA_PAGE_GONE`]), not back to the start, and nothing
///   else it earned is forfeited, as for a refuted text, since a page can disappear between two
///   fetches;
/// - `abandoned`: the validator's fetch failed otherwise (or was not tried): nobody's fault.
pub(super) fn settle_unfound(
    conn: &Connection,
    bands: &mut BandIndex,
    d: &Dispute,
    fetched: &ValidatorFetch,
    now_ms: i64,
) -> Result<&'static str, StoreError> {
    let check_id = d.id;
    let epoch = open_epoch(conn)?;
    let outcome = match fetched {
        ValidatorFetch::Text(sig) => match minhash_of(conn, d.primary_seq)? {
            Some(primary_sig) if sig.similarity(&primary_sig) >= AGREEMENT_SIMILARITY => {
                apply_check(conn, &d.primary_node, true, check_id, now_ms)?;
                // Not blamed (a page can fail for a while), but the check came back without a
                // text: as if given back, else a node could dump every check it does not want
                // as "no page" and draw the next.
                if let Some(checker) = &d.check_node {
                    pause_judging(conn, checker, now_ms)?;
                }
                "primary_upheld"
            }
            Some(_) => {
                apply_check(conn, &d.primary_node, false, check_id, now_ms)?;
                penalise(
                    conn,
                    bands,
                    &d.primary_node,
                    &d.primary_record,
                    d.primary_seq,
                    epoch,
                    now_ms,
                )?;
                tracing::warn!(check = check_id, node = %d.primary_node,
                    "the validator's fetch refutes a node's page; penalised");
                "check_upheld"
            }
            // No signature to compare (a record from before signatures were kept).
            None => "abandoned",
        },
        ValidatorFetch::NoPage { code } => {
            apply_page_gone(conn, &d.primary_node, check_id, now_ms)?;
            let gone = Claim::primary(d);
            revoke_gone(conn, bands, &gone, epoch, now_ms)?;
            tracing::warn!(check = check_id, node = %d.primary_node, code = %code,
                "the validator found no page where a node claimed one; revoked");
            "page_gone"
        }
        ValidatorFetch::Failed { .. } | ValidatorFetch::NotTried { .. } => "abandoned",
    };
    let by = (!matches!(fetched, ValidatorFetch::NotTried { .. })).then_some(VALIDATOR);
    conn.exec_cached(
        "UPDATE cross_checks SET tiebreak_node = ?2, outcome = ?3, resolved_at_ms = ?4
          WHERE id = ?1",
        params![check_id, by, outcome, now_ms],
    )
    .op("settle_unfound")?;
    Ok(outcome)
}

/// Settles check `d` (its outcome `unchecked`: no node got it done, `jobs::requeue_or_fail`)
/// with the validator's own fetch as its checker (`check_node` [`VALIDATOR`]), to one of:
/// - `agreed`: the validator's text agrees with the primary's, which passes a check;
/// - `disputed`: it disagrees, and a third node's fetch of the page at `place` decides, as
///   between two nodes ([`settle_dispute`], the validator's signature standing for the check's
///   text). The validator's text alone never refutes a node here: nobody has said the page is
///   gone, and a page may change between two fetches; a third fetch that bears the validator
///   out refutes the primary, one that bears the primary out blames nobody;
/// - `page_gone` or `abandoned`: the site says there is no page, or the fetch failed or was not
///   tried, as for a check whose checker found no page ([`settle_unfound`]).
pub(super) fn settle_unchecked(
    conn: &Connection,
    bands: &mut BandIndex,
    d: &Dispute,
    place: &TiebreakPlace,
    fetched: &ValidatorFetch,
    now_ms: i64,
) -> Result<&'static str, StoreError> {
    let ValidatorFetch::Text(sig) = fetched else {
        return settle_unfound(conn, bands, d, fetched, now_ms);
    };
    let Some(primary_sig) = minhash_of(conn, d.primary_seq)? else {
        // No signature to compare (a record from before signatures were kept).
        return settle_unfound(conn, bands, d, fetched, now_ms);
    };
    let sim = sig.similarity(&primary_sig);
    if sim >= AGREEMENT_SIMILARITY {
        apply_check(conn, &d.primary_node, true, d.id, now_ms)?;
        conn.exec_cached(
            "UPDATE cross_checks SET check_node = ?2, similarity = ?3, outcome = 'agreed',
                    resolved_at_ms = ?4 WHERE id = ?1",
            params![d.id, VALIDATOR, sim, now_ms],
        )
        .op("settle_unchecked")?;
        return Ok("agreed");
    }
    conn.exec_cached(
        "UPDATE cross_checks SET check_node = ?2, validator_minhash = ?3, similarity = ?4,
                outcome = 'disputed' WHERE id = ?1",
        params![d.id, VALIDATOR, sig.to_bytes(), sim],
    )
    .op("settle_unchecked")?;
    third_node_tiebreak(conn, d.id, place, &d.primary_node, VALIDATOR, now_ms)?;
    tracing::info!(
        check = d.id,
        similarity = sim,
        "the validator's fetch disagrees with a node's page; a third node will decide"
    );
    Ok("disputed")
}

/// Settles agreed check `d` picked for an audit (outcome `auditing`, [`resolve_check`]) with the
/// validator's own fetch of the page at `place`. Two nodes that agree are checked by nobody
/// else, so a colluding pair agreeing on invented text is found out only here:
/// - text agreeing with the primary's (and so with the checker's): `agreed` as before, now with
///   `tiebreak_node` 'validator' (audited);
/// - text disagreeing: `audit_disputed`, the validator's signature kept, and a third node's fetch
///   decides between the pair and the validator ([`settle_by_fourth`]); the validator's text
///   alone refutes nobody;
/// - no page: both claims go, `page_gone` for each ([`settle_gone_dispute`]);
/// - fetch failed or not tried: `agreed`, unaudited, blaming nobody.
pub(super) fn settle_audit(
    conn: &Connection,
    bands: &mut BandIndex,
    d: &Dispute,
    place: &TiebreakPlace,
    fetched: &ValidatorFetch,
    now_ms: i64,
) -> Result<&'static str, StoreError> {
    let agreed = |by: Option<&str>| -> Result<&'static str, StoreError> {
        conn.exec_cached(
            "UPDATE cross_checks SET outcome = 'agreed', tiebreak_node = ?2 WHERE id = ?1",
            params![d.id, by],
        )
        .op("settle_audit")?;
        Ok("agreed")
    };
    match fetched {
        ValidatorFetch::Text(sig) => {
            let (Some(primary_sig), Some(check_node)) =
                (minhash_of(conn, d.primary_seq)?, d.check_node.as_deref())
            else {
                return agreed(None);
            };
            if sig.similarity(&primary_sig) >= AGREEMENT_SIMILARITY {
                return agreed(Some(VALIDATOR));
            }
            conn.exec_cached(
                "UPDATE cross_checks SET outcome = 'audit_disputed', validator_minhash = ?2
                  WHERE id = ?1",
                params![d.id, sig.to_bytes()],
            )
            .op("settle_audit")?;
            third_node_tiebreak(conn, d.id, place, &d.primary_node, check_node, now_ms)?;
            tracing::info!(
                check = d.id,
                "the validator's audit disagrees with two agreeing nodes; a third node will decide"
            );
            Ok("audit_disputed")
        }
        ValidatorFetch::NoPage { code } => {
            Ok(settle_gone_dispute(conn, bands, d, code, now_ms)?.unwrap_or("agreed"))
        }
        ValidatorFetch::Failed { .. } | ValidatorFetch::NotTried { .. } => agreed(None),
    }
}

/// A node's fetch that decides a check the validator's own fetch disagreed on
/// ([`settle_by_fourth`]): after the two nodes' and the validator's, the fourth.
#[derive(Clone, Copy)]
struct Fourth<'a> {
    /// Its text's signature.
    sig: &'a MinHash,
    node: &'a str,
    record: &'a [u8],
}

/// Settles check `d` by a node's fetch made after the validator's own disagreed (`fourth`), for
/// the two outcomes that wait for one:
/// - `audit_disputed` (the validator's audit disagreed with two agreeing nodes,
///   [`settle_audit`]): agreeing with the pair, the check stands `agreed` (the validator's text
///   is nobody's fault); agreeing with the validator, both nodes invented the same text:
///   `audit_refuted`, both refuted;
/// - `three_way` (two nodes' texts disagree and the validator's, the third fetch, agreed with
///   neither, [`settle_dispute`]): agreeing with one node's text and not the other's, that node
///   is upheld and the other refuted, as after any third fetch (`primary_upheld`,
///   `check_upheld`; the validator's text was the odd one out, nobody's fault); agreeing with the
///   validator and neither node, each node's text is contradicted by two fetches that agree, so
///   both invented theirs: `both_refuted`, both refuted.
///
/// Anything else is `inconclusive` and penalises nobody; otherwise the deciding node passes a
/// check, and a refuted node fails one and is penalised as any refuted node is. `None` when the
/// check is not (or no longer) so disputed.
fn settle_by_fourth(
    conn: &Connection,
    bands: &mut BandIndex,
    d: Dispute,
    fourth: Fourth<'_>,
    epoch: u64,
    now_ms: i64,
) -> Result<Option<&'static str>, StoreError> {
    let validator_sig = d.validator_minhash.as_deref().and_then(MinHash::from_bytes);
    let (Some(primary_sig), Some(validator_sig)) =
        (minhash_of(conn, d.primary_seq)?, validator_sig)
    else {
        return Ok(None);
    };
    let agrees = |sig: &MinHash| fourth.sig.similarity(sig) >= AGREEMENT_SIMILARITY;
    let (with_primary, with_validator) = (agrees(&primary_sig), agrees(&validator_sig));
    let both = || -> Vec<Claim<'_>> {
        [Some(Claim::primary(&d)), Claim::check(&d)]
            .into_iter()
            .flatten()
            .collect()
    };
    let (outcome, upheld, refuted): (_, Option<&str>, Vec<Claim<'_>>) = match d.outcome.as_str() {
        "audit_disputed" => match (with_primary, with_validator) {
            (true, false) => ("agreed", None, Vec::new()),
            (false, true) => ("audit_refuted", None, both()),
            _ => ("inconclusive", None, Vec::new()),
        },
        "three_way" => {
            let Some(check_sig) = minhash_of(conn, d.check_seq)? else {
                return Ok(None);
            };
            match (with_primary, agrees(&check_sig)) {
                (true, false) => (
                    "primary_upheld",
                    Some(d.primary_node.as_str()),
                    Claim::check(&d).into_iter().collect(),
                ),
                (false, true) => (
                    "check_upheld",
                    d.check_node.as_deref(),
                    vec![Claim::primary(&d)],
                ),
                (false, false) if with_validator => ("both_refuted", None, both()),
                _ => ("inconclusive", None, Vec::new()),
            }
        }
        _ => return Ok(None),
    };
    if outcome != "inconclusive" {
        apply_check(conn, fourth.node, true, d.id, now_ms)?;
    }
    if let Some(upheld) = upheld {
        apply_check(conn, upheld, true, d.id, now_ms)?;
    }
    for liar in &refuted {
        refute(conn, bands, d.id, outcome, liar, epoch, now_ms)?;
    }
    record_settled(
        conn,
        d.id,
        Some(fourth.record),
        fourth.node,
        outcome,
        now_ms,
    )?;
    Ok(Some(outcome))
}

/// One node's claim that a page had text: the node and its record (id and row).
struct Claim<'a> {
    node: &'a str,
    record: &'a [u8],
    seq: Option<i64>,
}

impl<'a> Claim<'a> {
    fn primary(d: &'a Dispute) -> Self {
        Claim {
            node: &d.primary_node,
            record: &d.primary_record,
            seq: d.primary_seq,
        }
    }

    /// The check fetch's claim, if the check has one.
    fn check(d: &'a Dispute) -> Option<Self> {
        Some(Claim {
            node: d.check_node.as_deref()?,
            record: d.check_record.as_deref()?,
            seq: d.check_seq,
        })
    }
}

/// Revokes the record of `claim` (if still accepted) and takes back its points: a negative
/// ledger entry in the open epoch, noted `page_not_found` ([`settle_unfound`],
/// [`settle_gone_dispute`]).
fn revoke_gone(
    conn: &Connection,
    bands: &mut BandIndex,
    claim: &Claim<'_>,
    epoch: u64,
    now_ms: i64,
) -> Result<(), StoreError> {
    let Some(seq) = claim.seq else {
        return Ok(());
    };
    let points: Option<i64> = conn
        .query_row_cached(
            "SELECT points FROM records WHERE seq = ?1 AND verdict = 'accepted'",
            params![seq],
            |r| r.get(0),
        )
        .optional()
        .op("revoke_gone")?;
    let Some(points) = points else {
        return Ok(());
    };
    remove_bands(conn, bands, None, Some(seq))?;
    conn.exec_cached(
        "UPDATE records SET verdict = 'revoked', reason = 'page_not_found' WHERE seq = ?1",
        params![seq],
    )
    .op("revoke_gone")?;
    take_back(
        conn,
        claim.node,
        points,
        claim.record,
        "page_not_found",
        epoch,
        now_ms,
    )
}

/// Settles check `d`, disputed or picked for an audit, whose page the validator's own fetch finds
/// gone ([`ValidatorFetch::NoPage`]: 404, 410, robots.txt, not HTML, noindex): `page_gone` for
/// both nodes. Each claimed text for a page the site now says is not there: in a dispute their
/// texts disagree, so at least one was invented (a page that changed between two honest fetches
/// and was then taken down is the rare case); in an audit they agree, and a page taken down in
/// the minutes since is as rare. Both records are revoked and their points
/// taken back, and both nodes fail a check by a pass's weight
/// ([`crate::scoring::CREDIBILITY_ALPHA_PAGE_GONE`]), as for a page a checker and the validator
/// both found gone ([`settle_unfound`]); nothing else they earned is forfeited. (A third node
/// is not asked: its fetch fails on such a page too, and a failed tie-break abandons the check,
/// which left two inventions their points.) `None` when the check is not (or no longer)
/// disputed or being audited.
pub(super) fn settle_gone_dispute(
    conn: &Connection,
    bands: &mut BandIndex,
    d: &Dispute,
    code: &str,
    now_ms: i64,
) -> Result<Option<&'static str>, StoreError> {
    let Some(check) =
        Claim::check(d).filter(|_| matches!(d.outcome.as_str(), "disputed" | "auditing"))
    else {
        return Ok(None);
    };
    let epoch = open_epoch(conn)?;
    for claim in [Claim::primary(d), check] {
        apply_page_gone(conn, claim.node, d.id, now_ms)?;
        revoke_gone(conn, bands, &claim, epoch, now_ms)?;
    }
    tracing::warn!(check = d.id, primary = %d.primary_node, checker = ?d.check_node, code = %code,
        "two nodes claimed text for a page the site says is not there; both revoked");
    conn.exec_cached(
        "UPDATE cross_checks SET tiebreak_node = ?3, outcome = 'page_gone', resolved_at_ms = ?2
          WHERE id = ?1",
        params![d.id, now_ms, VALIDATOR],
    )
    .op("settle_gone_dispute")?;
    Ok(Some("page_gone"))
}

/// Takes `points` (if any) back from `node`: a negative `penalty` ledger entry in `epoch` for its
/// payout key, naming `record` and why (`note`).
fn take_back(
    conn: &Connection,
    node: &str,
    points: i64,
    record: &[u8],
    note: &str,
    epoch: u64,
    now_ms: i64,
) -> Result<(), StoreError> {
    if points <= 0 {
        return Ok(());
    }
    let payout = payout_of(conn, node)?.ok_or_else(|| StoreError::Corrupt {
        what: "ledger entry's node",
        why: format!("{node} is not registered"),
    })?;
    conn.exec_cached(
        "INSERT INTO ledger(at_ms, epoch, node, payout, kind, amount, record_id, note)
         VALUES (?1, ?2, ?3, ?4, 'penalty', ?5, ?6, ?7)",
        params![
            now_ms,
            i64::try_from(epoch).unwrap_or(i64::MAX),
            node,
            payout,
            -points,
            record,
            note
        ],
    )
    .op("take_back")?;
    Ok(())
}

/// Revokes a fabricated record so it never reaches a dataset, and forfeits everything the node
/// has earned in the open epoch (a negative ledger entry): one lie found by a sampled check
/// stands for the unsampled ones, so fabricating must cost more than it can earn.
fn penalise(
    conn: &Connection,
    bands: &mut BandIndex,
    node: &str,
    record: &[u8],
    record_seq: Option<i64>,
    epoch: u64,
    now_ms: i64,
) -> Result<(), StoreError> {
    let points = epoch_points(conn, node, epoch)?;
    // The lie and everything else the node delivered this epoch leave the accepted set (and the
    // dedup index), so no fabricated text reaches a dataset unsampled; their URLs go back to the
    // frontier for other nodes.
    let epoch_i = i64::try_from(epoch).unwrap_or(i64::MAX);
    let refetch: Vec<(String, String, i64, i64)> = {
        let mut stmt = conn
            .prepare(
                "SELECT l.url, l.domain, t.request_id, t.depth FROM records r
                   JOIN leases l ON l.lease_id = r.lease_id
                   JOIN tasks t ON t.id = l.task_id
                  WHERE r.node = ?1 AND r.epoch = ?2 AND r.verdict = 'accepted'
                    AND r.role = 'primary'",
            )
            .op("penalise")?;
        let rows = stmt
            .query_map(params![node, epoch_i], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .op("penalise")?;
        rows.collect::<Result<_, _>>().op("penalise")?
    };
    for (url, domain, request_id, depth) in &refetch {
        super::jobs::push_task(
            conn,
            url,
            domain,
            *request_id,
            *depth,
            "primary",
            None,
            node,
            now_ms,
        )?;
    }
    remove_bands(conn, bands, Some((node, epoch_i)), record_seq)?;
    conn.exec_cached(
        "UPDATE records SET verdict = 'revoked', reason = 'failed_cross_check'
         WHERE seq = ?3 OR (node = ?1 AND epoch = ?2 AND verdict = 'accepted')",
        params![node, epoch_i, record_seq],
    )
    .op("penalise")?;
    take_back(
        conn,
        node,
        points,
        record,
        "failed_cross_check",
        epoch,
        now_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::jobs::{JUDGING_PAUSE_MS, MAX_UNSETTLED_UNFOUND};
    use crate::store::{CrawlRequest, JudgingRules, LeaseParams, Network};
    use gleaner_protocol::api::{Job, JobFailure};

    fn add_record(
        conn: &Connection,
        bands: &mut BandIndex,
        id: u8,
        node: &str,
        epoch: i64,
        verdict: &str,
        text: &str,
    ) {
        let minhash = MinHash::of(text);
        conn.execute(
            "INSERT INTO records(record_id, batch_id, node, lease_id, url, role, epoch,
                     received_at_ms, verdict, reason, points, text_key, minhash, quality_json)
             VALUES (?1, ?1, ?2, 'l', 'https://example.org/', 'primary', ?3, 0, ?4, 'ok', 0,
                     ?1, ?5, '{}')",
            params![
                [id; 32].as_slice(),
                node,
                epoch,
                verdict,
                minhash.to_bytes()
            ],
        )
        .unwrap();
        // The text key is the id's bytes, as stored above.
        let key = Digest::from_bytes([id; 32]);
        bands.insert(key, conn.last_insert_rowid(), &key, &minhash.bands());
    }

    fn owners(bands: &BandIndex) -> Vec<u8> {
        bands.owners().iter().map(|d| d.as_bytes()[0]).collect()
    }

    /// Which records are sampled follows the rate and the validator's secret key, not the
    /// record id alone: a node that knows its record's id cannot tell whether it will be
    /// checked, so changing its text until it would not be gains it nothing.
    #[test]
    fn sampling_is_keyed_by_the_validators_secret() {
        let ids: Vec<Digest> = (0..4000u32).map(|i| Digest::of(&i.to_le_bytes())).collect();
        let picks = |key: &[u8; 32], rate: f64| -> Vec<bool> {
            ids.iter().map(|id| sampled(key, id, rate)).collect()
        };
        let (a, b) = ([1u8; 32], [2u8; 32]);
        for rate in [0.07, 0.5] {
            let share = |p: &[bool]| p.iter().filter(|&&s| s).count() as f64 / ids.len() as f64;
            let (pa, pb) = (picks(&a, rate), picks(&b, rate));
            assert!((share(&pa) - rate).abs() < 0.03, "{rate}: {}", share(&pa));
            assert!((share(&pb) - rate).abs() < 0.03, "{rate}: {}", share(&pb));
            // Independent keys pick independent sets: about rate² of the ids in both.
            let both = pa.iter().zip(&pb).filter(|(x, y)| **x && **y).count() as f64;
            let both = both / ids.len() as f64;
            assert!((both - rate * rate).abs() < 0.03, "{rate}: {both} in both");
            assert_eq!(pa, picks(&a, rate), "the same key decides the same way");
        }
        // The id's own first bytes (what sampling read before) do not decide.
        let unkeyed = |id: &Digest| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&id.as_bytes()[..8]);
            (u64::from_le_bytes(b) as f64 / u64::MAX as f64) < 0.5
        };
        let same = ids
            .iter()
            .filter(|id| unkeyed(id) == sampled(&a, id, 0.5))
            .count() as f64;
        assert!((same / ids.len() as f64 - 0.5).abs() < 0.05, "{same}");
        assert!(ids.iter().all(|id| sampled(&a, id, 1.0)));
        assert!(!ids.iter().any(|id| sampled(&a, id, 0.0)));
    }

    /// Every way a record can fail its lease refuses the whole batch with its own reason code,
    /// and the batch's good records before it leave their leases open.
    #[test]
    fn each_lease_refusal_has_its_code_and_changes_nothing() {
        use crate::testkit::{ingest_batch, leased_jobs, leased_jobs_on, record_for, sample_text};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t0 = crate::testkit::FILL_T0;
        let node = gleaner_protocol::SecretKey::from_bytes(&[3; 32]);
        let other = gleaner_protocol::SecretKey::from_bytes(&[4; 32]);
        let validator = gleaner_protocol::SecretKey::from_bytes(&[200; 32]);
        let jobs = leased_jobs(&store, &node, 8, t0).unwrap();
        let others = leased_jobs_on(&store, &other, "other", 1, t0).unwrap();
        let good = |i: usize| record_for(&node, &jobs[i], sample_text(i as u64, 1_500), t0 + 10);
        ingest_batch(&store, &node, &validator, vec![good(0)], t0 + 20).unwrap();
        let conn = store.writer().unwrap();
        conn.execute(
            "UPDATE leases SET state = 'failed' WHERE lease_id = ?1",
            [&jobs[2].lease_id],
        )
        .unwrap();
        conn.execute(
            "UPDATE leases SET expires_at_ms = ?2 WHERE lease_id = ?1",
            params![jobs[3].lease_id, t0 + 30],
        )
        .unwrap();
        drop(conn);
        let mut unknown = jobs[4].clone();
        unknown.lease_id = "no-such-lease".into();
        let mut elsewhere = jobs[5].clone();
        elsewhere.url = "http://elsewhere.example/".into();
        let early = record_for(
            &node,
            &jobs[6],
            sample_text(6, 1_500),
            t0 - MAX_CLOCK_SKEW_MS - 1,
        );
        let now = t0 + 60;
        let cases = [
            (
                record_for(&node, &unknown, sample_text(4, 1_500), t0),
                "unknown_lease",
            ),
            (
                record_for(&node, &others[0], sample_text(9, 1_500), t0),
                "lease_not_yours",
            ),
            (
                record_for(&node, &elsewhere, sample_text(5, 1_500), t0),
                "lease_url_mismatch",
            ),
            (good(0), "already_submitted"),
            (good(2), "lease_closed"),
            (good(3), "lease_expired"),
            (early, "fetched_before_lease"),
        ];
        let open = |lease: &str| -> String {
            store
                .conn()
                .unwrap()
                .query_row(
                    "SELECT state FROM leases WHERE lease_id = ?1",
                    [lease],
                    |r| r.get(0),
                )
                .unwrap()
        };
        let records = || -> i64 {
            store
                .conn()
                .unwrap()
                .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
                .unwrap()
        };
        for (bad, code) in cases {
            let bad_lease = bad.lease_id.clone();
            let before = store.conn().unwrap().query_row(
                "SELECT state, closed_at_ms FROM leases WHERE lease_id = ?1",
                [&bad_lease],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)),
            );
            let err = ingest_batch(&store, &node, &validator, vec![good(1), bad], now).unwrap_err();
            assert_eq!(err.code(), code, "{err}");
            assert!((400..500).contains(&err.status()), "{code}: {err}");
            assert_eq!(
                open(&jobs[1].lease_id),
                "open",
                "{code}: the good record's lease"
            );
            let after = store.conn().unwrap().query_row(
                "SELECT state, closed_at_ms FROM leases WHERE lease_id = ?1",
                [&bad_lease],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)),
            );
            assert_eq!(
                format!("{after:?}"),
                format!("{before:?}"),
                "{code}: its lease"
            );
            assert_eq!(records(), 1, "{code}");
        }
        // The good record still goes in, and closes its lease.
        ingest_batch(&store, &node, &validator, vec![good(1)], now).unwrap();
        assert_eq!(open(&jobs[1].lease_id), "done");
        assert_eq!(records(), 2);
    }

    #[test]
    fn revoked_records_leave_the_band_index_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let conn = store.writer().unwrap();
        let mut bands = BandIndex::default();
        let text = |seed: u64| crate::testkit::sample_text(seed, 2_000);
        add_record(&conn, &mut bands, 1, "liar", 3, "accepted", &text(1));
        add_record(&conn, &mut bands, 2, "liar", 3, "accepted", &text(2));
        add_record(&conn, &mut bands, 3, "liar", 2, "accepted", &text(3)); // an earlier epoch: kept
        add_record(&conn, &mut bands, 4, "honest", 3, "accepted", &text(4));
        add_record(&conn, &mut bands, 5, "honest", 2, "accepted", &text(5)); // the lie itself
        assert_eq!(owners(&bands), vec![1, 2, 3, 4, 5]);
        assert_eq!(bands.len(), 5 * (NUM_BANDS + 1));
        // The index built from the stored records is the same.
        let loaded = BandIndex::load(&conn).unwrap();
        assert_eq!(
            (owners(&loaded), loaded.len()),
            (owners(&bands), bands.len())
        );

        // Record 5 is the fifth row of a new store.
        penalise(
            &conn,
            &mut bands,
            "liar",
            [5u8; 32].as_slice(),
            Some(5),
            3,
            0,
        )
        .unwrap();
        assert_eq!(owners(&bands), vec![3, 4]);
        assert_eq!(bands.len(), 2 * (NUM_BANDS + 1));
        for (id, owner) in [(1, None), (2, None), (3, Some(3)), (4, Some(4)), (5, None)] {
            let key = Digest::from_bytes([id; 32]);
            let owner = owner.map(|o: u8| (Digest::from_bytes([o; 32]), i64::from(o)));
            assert_eq!(bands.find_exact(&key), owner, "text key of record {id}");
        }
        // And it is still what a rebuild from the records gives, now that they are revoked.
        let loaded = BandIndex::load(&conn).unwrap();
        assert_eq!(
            (owners(&loaded), loaded.len()),
            (owners(&bands), bands.len())
        );
    }

    #[test]
    fn a_corrupt_stored_minhash_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let conn = store.writer().unwrap();
        let mut bands = BandIndex::default();
        add_record(
            &conn,
            &mut bands,
            1,
            "liar",
            3,
            "accepted",
            "some words here and there",
        );
        conn.execute("UPDATE records SET minhash = x'0102'", [])
            .unwrap();
        let err = remove_bands(&conn, &mut bands, Some(("liar", 3)), Some(9)).unwrap_err();
        assert_eq!(err.code(), "store_corrupt", "{err}");
        let err = BandIndex::load(&conn).unwrap_err();
        assert_eq!(err.code(), "store_corrupt", "{err}");
    }

    /// Leases `n` jobs for `node` on new sites (`site` keeps each call's URLs apart), in URL order.
    fn jobs(store: &Store, node: &SecretKey, site: &str, n: usize, now: i64) -> Vec<Job> {
        let mut jobs = crate::testkit::leased_jobs_on(store, node, site, n, now).unwrap();
        jobs.sort_by_key(|j| {
            j.url
                .trim_start_matches(&format!("http://{site}"))
                .trim_end_matches(".example/")
                .parse::<usize>()
                .unwrap()
        });
        assert_eq!(jobs.len(), n);
        jobs
    }

    /// Submits `records` as one batch of `node` through `prepare` and the store: each record's
    /// verdict and reason, or the batch's error code.
    fn ingest(
        store: &Store,
        node: &SecretKey,
        records: Vec<Record>,
        now: i64,
    ) -> Result<Vec<(Verdict, String)>, String> {
        let validator = SecretKey::from_bytes(&[200; 32]);
        match crate::testkit::ingest_batch(store, node, &validator, records, now) {
            Ok(IngestOutcome::Fresh { receipt, .. }) => Ok(receipt
                .verdicts
                .iter()
                .map(|v| (v.verdict, v.reason.clone()))
                .collect()),
            Ok(IngestOutcome::Replayed { .. }) => Err("replayed".into()),
            Err(e) => Err(e.code().to_string()),
        }
    }

    /// Leases one job per text on new sites and submits the texts as one batch of `node`.
    fn submit(
        store: &Store,
        node: u8,
        site: &str,
        texts: &[String],
        now: i64,
    ) -> Result<Vec<(Verdict, String)>, String> {
        let key = SecretKey::from_bytes(&[node; 32]);
        let records = jobs(store, &key, site, texts.len(), now)
            .iter()
            .zip(texts)
            .map(|(job, text)| crate::testkit::record_for(&key, job, text.clone(), now))
            .collect();
        ingest(store, &key, records, now)
    }

    /// Leases of up to ten open jobs, one per domain, asked from `network`.
    fn lease_params(network: Option<Network>) -> LeaseParams {
        LeaseParams {
            ttl_ms: 3_600_000,
            max_per_domain: 1,
            domain_delay_ms: 0,
            max_open_per_node: 10,
            validator_fetches: false,
            network,
            judging: JudgingRules::DEFAULT,
        }
    }

    /// A store with `nodes` registered, each paid to its own key (only networks and the pause
    /// for giving checks back keep them apart), and one crawl request for the page `seed`.
    fn checking_network(nodes: &[&SecretKey], seed: &str) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = crate::testkit::FILL_T0;
        for k in nodes {
            store
                .register_node(&k.public(), &k.public(), "test", now)
                .unwrap();
        }
        add_page(&store, seed, now);
        (dir, store)
    }

    fn add_page(store: &Store, url: &str, now: i64) {
        let request = CrawlRequest {
            seeds: vec![url.into()],
            domains: Vec::new(),
            sitemaps: Vec::new(),
            max_pages: 10,
            max_depth: 0,
        };
        store.add_crawl_request("test", &request, now).unwrap();
    }

    /// The jobs `k` is leased at `at`, asking from `ip`.
    fn lease_from(store: &Store, k: &SecretKey, ip: &str, at: i64) -> Vec<Job> {
        let params = lease_params(Network::of(ip.parse().unwrap()));
        store.lease(&k.public(), 5, at, &params).unwrap().jobs
    }

    /// Submits a record of `k` for `job` (its text from `seed`), every accepted record sampled
    /// for a check.
    fn submit_checked(store: &Store, k: &SecretKey, job: &Job, seed: u64, at: i64) {
        submit_sampled(store, k, job, seed, at, 1.0);
    }

    /// [`submit_checked`] with `rate` as both sampling rates (proven and new nodes).
    fn submit_sampled(store: &Store, k: &SecretKey, job: &Job, seed: u64, at: i64, rate: f64) {
        let record =
            crate::testkit::record_for(k, job, crate::testkit::sample_text(seed, 3_000), at);
        let batch = gleaner_protocol::Batch::new(k, at, vec![record]);
        let (id, prepared) = crate::ingest::prepare(&batch, &k.public(), at, &[]).unwrap();
        let params = IngestParams {
            cross_check_rate: rate,
            new_node_cross_check_rate: rate,
            audit_rate: 0.0,
            domain_delay_ms: 0,
            validator_tiebreaks: false,
            sample_key: [0; 32],
        };
        let validator = SecretKey::from_bytes(&[200; 32]);
        store
            .ingest(id, &k.public(), &prepared, at, &validator, &params)
            .unwrap();
    }

    fn checks_with_outcome(store: &Store, outcome: &str) -> i64 {
        store
            .conn()
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM cross_checks WHERE outcome = ?1",
                [outcome],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn urls(jobs: &[Job]) -> Vec<&str> {
        jobs.iter().map(|j| j.url.as_str()).collect()
    }

    /// A node caught fabricating has every record checked, whatever the sampling rates, until it
    /// is proven again; a new node with no failed check is sampled at the new-node rate (here 0).
    #[test]
    fn a_node_caught_fabricating_has_every_record_checked() {
        let now = crate::testkit::FILL_T0;
        let (caught, fresh) = (
            SecretKey::from_bytes(&[81; 32]),
            SecretKey::from_bytes(&[82; 32]),
        );
        let (_dir, store) = checking_network(&[&caught, &fresh], "http://caught.example/");
        store
            .conn()
            .unwrap()
            .execute(
                "UPDATE nodes SET checks_failed = 1, credibility = 0 WHERE node = ?1",
                [caught.public().to_string()],
            )
            .unwrap();
        let jobs = |k: &SecretKey, ip: &str| lease_from(&store, k, ip, now);
        let page = jobs(&caught, "203.0.113.7");
        assert_eq!(page.len(), 1);
        submit_sampled(&store, &caught, &page[0], 1, now, 0.0);
        assert_eq!(
            checks_with_outcome(&store, "pending"),
            1,
            "the caught node's page is checked"
        );
        add_page(&store, "http://fresh.example/", now);
        let page = jobs(&fresh, "198.51.100.5");
        let own: Vec<_> = page.iter().filter(|j| j.url.contains("fresh")).collect();
        assert_eq!(own.len(), 1, "{page:?}");
        submit_sampled(&store, &fresh, own[0], 2, now, 0.0);
        assert_eq!(
            checks_with_outcome(&store, "pending"),
            1,
            "the new node's is not"
        );
    }

    /// A check goes to a node on another network than the checked node's, and a tie-break to one
    /// on neither earlier fetcher's network, whatever their keys and payout keys.
    #[test]
    fn checks_and_tie_breaks_go_to_nodes_on_other_networks() {
        let now = crate::testkit::FILL_T0;
        let key = |b: u8| SecretKey::from_bytes(&[b; 32]);
        let (primary, neighbour, checker, checker_neighbour, judge) =
            (key(91), key(92), key(93), key(94), key(95));
        let (_dir, store) = checking_network(
            &[&primary, &neighbour, &checker, &checker_neighbour, &judge],
            "http://net.example/",
        );
        let lease = |k: &SecretKey, ip: &str| lease_from(&store, k, ip, now);

        let page = lease(&primary, "203.0.113.7");
        assert_eq!(page.len(), 1);
        // The one job `k` is given from `ip`: the page's check or tie-break.
        let the_page = |k: &SecretKey, ip: &str, why: &str| {
            let jobs = lease(k, ip);
            assert_eq!(urls(&jobs), [page[0].url.as_str()], "{why}");
            jobs[0].clone()
        };
        submit_checked(&store, &primary, &page[0], 1, now);
        assert_eq!(checks_with_outcome(&store, "pending"), 1);
        assert!(
            lease(&neighbour, "203.0.113.200").is_empty(),
            "a node on the primary's /24 gets no check of it"
        );
        let checking = the_page(&checker, "198.51.100.5", "another network gets the check");
        // The checker's text differs: a third fetch decides (the validator's own are off).
        submit_checked(&store, &checker, &checking, 2, now);
        assert_eq!(checks_with_outcome(&store, "disputed"), 1);
        assert!(
            lease(&neighbour, "203.0.113.9").is_empty(),
            "not the primary's network"
        );
        assert!(
            lease(&checker_neighbour, "198.51.100.77").is_empty(),
            "nor the checker's"
        );
        the_page(&judge, "192.0.2.1", "a third network gets the tie-break");
    }

    /// A node holding `MAX_UNSETTLED_UNFOUND` checks it said had no page, none of them settled by
    /// the validator's fetch yet, is given no more checks until one is; so it cannot report the
    /// checks it does not want as gone faster than the validator can look.
    #[test]
    fn a_node_whose_no_page_reports_wait_for_the_validator_draws_no_more_checks() {
        let now = crate::testkit::FILL_T0;
        let key = |b: u8| SecretKey::from_bytes(&[b; 32]);
        let (primary, dumper) = (key(61), key(62));
        let (_dir, store) = checking_network(&[&primary, &dumper], "http://d0.example/");
        let (p_ip, d_ip) = ("203.0.113.7", "198.51.100.5");
        // Each page its own text (the same one twice would be a duplicate, and go unchecked).
        let primaries = |at: i64| {
            for (i, job) in lease_from(&store, &primary, p_ip, at).iter().enumerate() {
                let seed = 10 * (at - now) as u64 + i as u64;
                submit_checked(&store, &primary, job, seed, at);
            }
        };
        let cap = usize::try_from(MAX_UNSETTLED_UNFOUND).unwrap();
        for d in 1..cap {
            add_page(&store, &format!("http://d{d}.example/"), now);
        }
        primaries(now);
        assert_eq!(checks_with_outcome(&store, "pending"), cap as i64);
        let gone = |job: &Job| JobFailure {
            lease_id: job.lease_id.clone(),
            reason: gleaner_protocol::api::FailureReason::HttpError,
            detail: "not found".into(),
            status: Some(404),
            crawl_delay_ms: None,
        };
        let mut at = now;
        while checks_with_outcome(&store, "unfound") < MAX_UNSETTLED_UNFOUND {
            at += 1;
            let drawn = lease_from(&store, &dumper, d_ip, at);
            assert!(!drawn.is_empty(), "a check to draw");
            let failures: Vec<JobFailure> = drawn.iter().map(gone).collect();
            store
                .report_failures(&dumper.public(), &failures, at, 0, true)
                .unwrap();
        }
        assert_eq!(
            checks_with_outcome(&store, "unfound"),
            MAX_UNSETTLED_UNFOUND
        );

        // One more page, and its check: not for the node with its reports unsettled.
        add_page(&store, "http://next.example/", at);
        primaries(at + 1);
        assert_eq!(checks_with_outcome(&store, "pending"), 1);
        let next = lease_from(&store, &dumper, d_ip, at + 2);
        assert!(
            !urls(&next).contains(&"http://next.example/"),
            "no check while {MAX_UNSETTLED_UNFOUND} reports wait: {:?}",
            urls(&next)
        );
        // The cap is a setting (`JudgingRules::max_unsettled_unfound`): one higher, the check
        // comes.
        let raised = LeaseParams {
            judging: JudgingRules {
                max_unsettled_unfound: MAX_UNSETTLED_UNFOUND + 1,
                ..JudgingRules::DEFAULT
            },
            ..lease_params(Network::of(d_ip.parse().unwrap()))
        };
        let next = store
            .lease(&dumper.public(), 5, at + 2, &raised)
            .unwrap()
            .jobs;
        assert_eq!(urls(&next), ["http://next.example/"]);
        add_page(&store, "http://after.example/", at + 2);
        primaries(at + 2);
        assert!(lease_from(&store, &dumper, d_ip, at + 2).is_empty());

        // The validator's fetch settles one (the page is gone indeed): the node checks again.
        let settled: i64 = store
            .conn()
            .unwrap()
            .query_row(
                "SELECT id FROM cross_checks WHERE outcome = 'unfound' LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let code = "http_404".to_string();
        store
            .settle_by_validator(settled, &ValidatorFetch::NoPage { code }, at + 3, 0)
            .unwrap();
        assert_eq!(
            checks_with_outcome(&store, "unfound"),
            MAX_UNSETTLED_UNFOUND - 1
        );
        let next = lease_from(&store, &dumper, d_ip, at + 4);
        assert_eq!(urls(&next), ["http://after.example/"]);
    }

    /// The pause after giving a check back is the configured one (`JudgingRules::
    /// pause_ms`, from `Config::judging_pause_secs`), and none when it is 0.
    #[test]
    fn the_pause_for_giving_a_check_back_is_the_configured_one() {
        let now = crate::testkit::FILL_T0;
        let key = |b: u8| SecretKey::from_bytes(&[b; 32]);
        let (primary, giver) = (key(71), key(72));
        let (_dir, store) = checking_network(&[&primary, &giver], "http://pause.example/");
        let (p_ip, g_ip) = ("203.0.113.7", "198.51.100.5");
        let page = lease_from(&store, &primary, p_ip, now);
        submit_checked(&store, &primary, &page[0], 1, now);
        let checked = page[0].url.as_str();
        let lease = |pause_ms: i64, at: i64| -> Vec<Job> {
            let params = LeaseParams {
                judging: JudgingRules {
                    pause_ms,
                    ..JudgingRules::DEFAULT
                },
                ..lease_params(Network::of(g_ip.parse().unwrap()))
            };
            store.lease(&giver.public(), 5, at, &params).unwrap().jobs
        };
        let give_back = |jobs: &[Job], at: i64| {
            let ids: Vec<String> = jobs.iter().map(|j| j.lease_id.clone()).collect();
            store.release(&giver.public(), &ids, at).unwrap();
        };
        let minute = 60_000;
        let drawn = lease(minute, now);
        assert_eq!(urls(&drawn), [checked]);
        give_back(&drawn, now);
        assert!(
            lease(minute, now + minute - 1).is_empty(),
            "within the minute"
        );
        let drawn = lease(minute, now + minute);
        assert_eq!(urls(&drawn), [checked], "after the minute");
        give_back(&drawn, now + minute);
        assert_eq!(
            urls(&lease(0, now + minute)),
            [checked],
            "no pause when it is 0"
        );
    }

    /// A node that gives a check back without its record (releases it, reports a failure that
    /// may pass, or lets it expire) is given no check or tie-break for an hour, while its own
    /// pages still come; so it cannot hand back the checks it does not want until it draws the
    /// one it wants. Giving back a page of its own pauses nothing, nor does reporting that a
    /// checked page is not there (the check's result, which the validator's fetch bears out).
    #[test]
    fn a_node_that_gives_a_check_back_sits_out_checks_for_an_hour() {
        let now = crate::testkit::FILL_T0;
        let key = |b: u8| SecretKey::from_bytes(&[b; 32]);
        let (primary, fisher, other, late) = (key(81), key(82), key(83), key(84));
        let (_dir, store) =
            checking_network(&[&primary, &fisher, &other, &late], "http://fish.example/");
        let (p_ip, f_ip, o_ip, l_ip) = ("203.0.113.7", "198.51.100.5", "192.0.2.1", "100.64.0.1");
        let page = lease_from(&store, &primary, p_ip, now);
        assert_eq!(page.len(), 1);
        let checked = page[0].url.as_str();
        submit_checked(&store, &primary, &page[0], 1, now);
        assert_eq!(checks_with_outcome(&store, "pending"), 1);
        let given_back = |k: &SecretKey| -> Option<i64> {
            store
                .conn()
                .unwrap()
                .query_row(
                    "SELECT judging_given_back_ms FROM nodes WHERE node = ?1",
                    [k.public().to_string()],
                    |r| r.get(0),
                )
                .unwrap()
        };

        // Released.
        let drawn = lease_from(&store, &fisher, f_ip, now);
        assert_eq!(urls(&drawn), [checked], "the fisher draws the check");
        let released = store
            .release(&fisher.public(), &[drawn[0].lease_id.clone()], now)
            .unwrap();
        assert_eq!(released.accepted, 1);
        assert_eq!(given_back(&fisher), Some(now));
        add_page(&store, "http://own.example/", now);
        let own = lease_from(&store, &fisher, f_ip, now + 1);
        assert_eq!(
            urls(&own),
            ["http://own.example/"],
            "a page of its own, not the check it gave back"
        );
        store
            .release(&fisher.public(), &[own[0].lease_id.clone()], now + 2)
            .unwrap();
        assert_eq!(
            given_back(&fisher),
            Some(now),
            "a page of its own pauses nothing"
        );

        // Reported failed.
        let drawn = lease_from(&store, &other, o_ip, now + 3);
        assert!(urls(&drawn).contains(&checked), "another node draws it");
        let failure = |job: &Job| JobFailure {
            lease_id: job.lease_id.clone(),
            reason: gleaner_protocol::api::FailureReason::Timeout,
            detail: "timed out".into(),
            status: None,
            crawl_delay_ms: None,
        };
        let failures: Vec<JobFailure> = drawn.iter().map(failure).collect();
        store
            .report_failures(&other.public(), &failures, now + 4, 0, false)
            .unwrap();
        assert_eq!(given_back(&other), Some(now + 4));
        let paused = now + JUDGING_PAUSE_MS - 1;
        for (k, ip) in [(&fisher, f_ip), (&other, o_ip)] {
            assert!(
                !urls(&lease_from(&store, k, ip, paused)).contains(&checked),
                "no check within the hour"
            );
        }

        // Let expire: the pause is over, the check comes again, and the fisher sits on it.
        let drawn = lease_from(&store, &fisher, f_ip, now + JUDGING_PAUSE_MS);
        assert!(
            urls(&drawn).contains(&checked),
            "after the hour, checks again"
        );
        let expired = now + JUDGING_PAUSE_MS + lease_params(None).ttl_ms + 1;
        assert!(
            !urls(&lease_from(&store, &fisher, f_ip, expired)).contains(&checked),
            "its lease expired: the fisher sits out checks again"
        );
        assert_eq!(given_back(&fisher), Some(expired));
        let drawn = lease_from(&store, &late, l_ip, expired);
        assert!(
            urls(&drawn).contains(&checked),
            "a node that gave nothing back gets the check"
        );

        // The page is gone: a result, not a give-back.
        let gone: Vec<JobFailure> = drawn
            .iter()
            .map(|job| JobFailure {
                reason: gleaner_protocol::api::FailureReason::HttpError,
                status: Some(404),
                ..failure(job)
            })
            .collect();
        store
            .report_failures(&late.public(), &gone, expired + 1, 0, false)
            .unwrap();
        assert_eq!(given_back(&late), None, "a dead link pauses nothing");
    }

    /// The replay lookup on the request path reads through the store's second connection: it
    /// answers from the last commit while the writer holds a transaction open (a submit's checks
    /// never wait for another group's commit and fsync).
    #[test]
    fn a_stored_receipt_is_read_while_a_write_is_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::open(dir.path()).unwrap());
        let key = SecretKey::from_bytes(&[5; 32]);
        store
            .register_node(&key.public(), &key.public(), "test", 0)
            .unwrap();
        let now = crate::testkit::FILL_T0;
        let text = crate::testkit::sample_text(1, 2_000);
        let records = jobs(&store, &key, "site", 1, now)
            .iter()
            .map(|job| crate::testkit::record_for(&key, job, text.clone(), now))
            .collect();
        let validator = SecretKey::from_bytes(&[200; 32]);
        let id = match crate::testkit::ingest_batch(&store, &key, &validator, records, now).unwrap()
        {
            IngestOutcome::Fresh { receipt, .. } => receipt.batch_id,
            IngestOutcome::Replayed { .. } => panic!("a first submit is fresh"),
        };
        let found =
            crate::store::tests::read_during_a_write(&store, "DELETE FROM batches", move |s| {
                s.receipt(&id).map(|r| r.is_some())
            });
        // The uncommitted delete is not seen, and the lookup did not wait for the commit.
        assert!(
            found.expect("answered while the write was open").unwrap(),
            "the batch is stored as of the last commit"
        );
        assert!(
            store.receipt(&id).unwrap().is_none(),
            "and sees the commit after it"
        );
    }

    /// An accepted record's outlinks join the frontier normalised, within its request's scope
    /// and depth, and only the first hundred the node listed; a request at its depth limit
    /// queues none.
    #[test]
    fn outlinks_are_followed_normalised_within_scope_depth_and_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = SecretKey::from_bytes(&[9; 32]);
        let now = crate::testkit::FILL_T0;
        store
            .register_node(&key.public(), &key.public(), "test", now)
            .unwrap();
        let queued = |depth: i64| -> Vec<String> {
            let conn = store.conn().unwrap();
            let mut stmt = conn
                .prepare("SELECT url FROM urls WHERE depth = ?1 ORDER BY url")
                .unwrap();
            stmt.query_map([depth], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        // The same links on two sites: one request may follow them, the other is at its depth limit.
        let links = |site: &str| {
            let mut links = vec![
                format!("HTTP://{site}/a/../next#reviews"),
                format!("https://www.{site}/about"),
                "http://elsewhere.example/".to_string(),
                "not a url".to_string(),
            ];
            links.extend((0..120).map(|i| format!("https://{site}/p/{i:03}")));
            links
        };
        for (site, max_depth) in [("shop.example", 1), ("store.example", 0)] {
            let request = CrawlRequest {
                seeds: vec![format!("http://{site}/")],
                domains: Vec::new(),
                sitemaps: Vec::new(),
                max_pages: 1_000,
                max_depth,
            };
            store.add_crawl_request("test", &request, now).unwrap();
        }
        let jobs = store
            .lease(&key.public(), 2, now, &lease_params(None))
            .unwrap()
            .jobs;
        assert_eq!(jobs.len(), 2);
        let records = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| {
                let site = job.url.trim_start_matches("http://").trim_end_matches('/');
                let text = crate::testkit::sample_text(40 + i as u64, 3_000);
                crate::testkit::record_with_outlinks(&key, job, text, links(site), now)
            })
            .collect();
        assert_eq!(
            ingest(&store, &key, records, now),
            Ok(vec![accepted(), accepted()])
        );
        // Normalised, in scope (`www.` is the same registered domain), the first hundred listed.
        let mut want = vec![
            "http://shop.example/next".to_string(),
            "https://www.shop.example/about".to_string(),
        ];
        want.extend((0..96).map(|i| format!("https://shop.example/p/{i:03}")));
        want.sort();
        assert_eq!(queued(1), want);
    }

    fn near(text: &str) -> String {
        format!("Updated 12 March. {text} Share this page. 1,024 views.")
    }

    fn accepted() -> (Verdict, String) {
        (Verdict::Accepted, "ok".into())
    }

    fn near_duplicate() -> (Verdict, String) {
        (Verdict::Duplicate, "near_duplicate".into())
    }

    #[test]
    fn near_duplicates_are_found_after_a_restart_and_after_the_version_7_migration() {
        let dir = tempfile::tempdir().unwrap();
        let text = |seed: u64| crate::testkit::sample_text(seed, 3_000);
        let now = crate::testkit::FILL_T0;
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(
                submit(&store, 1, "a", &[text(1), text(2)], now),
                Ok(vec![accepted(), accepted()])
            );
            assert_eq!(
                submit(&store, 1, "b", &[near(&text(1))], now + 1),
                Ok(vec![near_duplicate()])
            );
        }
        // A restart: the index is rebuilt from the stored records.
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(
                submit(&store, 2, "c", &[near(&text(2)), text(3)], now + 2),
                Ok(vec![near_duplicate(), accepted()])
            );
        }
        // The same database as version 6 left it: bands in the `lsh` table, no `records_bands`.
        {
            super::super::bodies::back_to_version_8(&dir.path().join(super::super::DB_FILE));
            let conn = Connection::open(dir.path().join(super::super::DB_FILE)).unwrap();
            conn.execute_batch(
                "DROP INDEX records_bands;
                 CREATE TABLE lsh (band INTEGER NOT NULL, key INTEGER NOT NULL,
                                   record_id BLOB NOT NULL, PRIMARY KEY (band, key)) WITHOUT ROWID;
                 PRAGMA user_version=6;",
            )
            .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            submit(
                &store,
                3,
                "d",
                &[near(&text(3)), near(&text(1)), text(4)],
                now + 3
            ),
            Ok(vec![near_duplicate(), near_duplicate(), accepted()])
        );
        // Texts 1 to 4 were accepted, and only they are in the index.
        assert_eq!(store.band_index_size().map(|s| s.records), Some(4));
    }

    /// Version 13 recomputes the stored signatures (under `minhash/v2` then) from the stored texts:
    /// records stored before it are found as near-duplicates by their new signatures, a record
    /// stored without its text gets an empty signature, and a damaged body stops the step with
    /// an error that names it, the database left at version 12.
    #[test]
    fn version_13_recomputes_signatures_from_the_stored_texts() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(super::super::DB_FILE);
        let text = |seed: u64| crate::testkit::sample_text(seed, 3_000);
        let now = crate::testkit::FILL_T0;
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(
                submit(&store, 1, "a", &[text(1), text(2)], now),
                Ok(vec![accepted(), accepted()])
            );
            let short = submit(&store, 1, "b", &["Too short to keep.".to_string()], now).unwrap();
            assert_eq!(short[0].0, Verdict::Rejected, "{short:?}");
        }
        let signatures = || -> Vec<(String, Vec<u8>)> {
            let conn = Connection::open(&db).unwrap();
            let mut stmt = conn
                .prepare("SELECT verdict, minhash FROM records ORDER BY seq")
                .unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let current = signatures();
        assert_eq!(current[0].1, MinHash::of(&text(1)).to_bytes());
        super::super::migrate::back_to_version_12(&Connection::open(&db).unwrap());
        assert!(signatures().iter().all(|(_, m)| m == &vec![0u8; 448]));

        let store = Store::open(dir.path()).unwrap();
        let after = signatures();
        assert_eq!(after.len(), 3);
        assert_eq!(
            after[0],
            ("accepted".into(), MinHash::of(&text(1)).to_bytes())
        );
        assert_eq!(
            after[1],
            ("accepted".into(), MinHash::of(&text(2)).to_bytes())
        );
        assert_eq!(
            after[2],
            ("rejected".into(), Vec::new()),
            "no text, no signature"
        );
        // What a cross-check reads: the empty signature is none (the check stays open).
        let conn = Connection::open(&db).unwrap();
        assert_eq!(minhash_of(&conn, Some(3)).unwrap(), None);
        assert_eq!(
            minhash_of(&conn, Some(1)).unwrap(),
            Some(MinHash::of(&text(1)))
        );
        drop(conn);
        assert_eq!(
            submit(&store, 2, "c", &[near(&text(2)), text(3)], now + 2),
            Ok(vec![near_duplicate(), accepted()])
        );
        drop(store);

        // A damaged body: the step stops, naming the record, and nothing changes.
        super::super::migrate::back_to_version_12(&Connection::open(&db).unwrap());
        let segment = super::super::bodies::dir_for(&db).join("000001.seg");
        let mut bytes = std::fs::read(&segment).unwrap();
        let at = bytes.iter().position(|&b| b == b'{').unwrap() + 40;
        bytes[at] ^= 0x01;
        std::fs::write(&segment, &bytes).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert_eq!(err.code(), "store_corrupt", "{err}");
        assert!(err.to_string().contains("record"), "{err}");
        let conn = Connection::open(&db).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 12);
        assert!(signatures().iter().all(|(_, m)| m == &vec![0u8; 448]));
    }

    /// Version 17 recomputes the stored signatures under `minhash/v3` (diacritics stripped): a
    /// text stored before it is then found as the original of its spelling without accents.
    #[test]
    fn version_17_recomputes_signatures_with_diacritics_stripped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(super::super::DB_FILE);
        let plain = crate::testkit::sample_text(1, 3_000);
        let accented = plain
            .replace(" river ", " rivér ")
            .replace(" near ", " néar ");
        assert_ne!(plain, accented);
        assert_eq!(MinHash::of(&accented), MinHash::of(&plain));
        let now = crate::testkit::FILL_T0;
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(
                submit(&store, 1, "a", std::slice::from_ref(&accented), now),
                Ok(vec![accepted()])
            );
        }
        let stored = || -> Vec<u8> {
            Connection::open(&db)
                .unwrap()
                .query_row("SELECT minhash FROM records WHERE seq = 1", [], |r| {
                    r.get(0)
                })
                .unwrap()
        };
        assert_eq!(stored(), MinHash::of(&accented).to_bytes());
        super::super::migrate::back_to_version_16(&Connection::open(&db).unwrap());
        assert_eq!(stored(), vec![0u8; 224]);

        let store = Store::open(dir.path()).unwrap();
        assert_eq!(stored(), MinHash::of(&accented).to_bytes());
        assert_eq!(
            submit(&store, 2, "b", &[plain], now + 2),
            Ok(vec![near_duplicate()])
        );
    }

    #[test]
    fn exact_duplicates_are_found_after_a_restart_and_after_the_version_8_migration() {
        let dir = tempfile::tempdir().unwrap();
        let text = |seed: u64| crate::testkit::sample_text(seed, 3_000);
        let now = crate::testkit::FILL_T0;
        let exact = || (Verdict::Duplicate, "exact_duplicate".to_string());
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(
                submit(&store, 1, "a", &[text(1), text(2)], now),
                Ok(vec![accepted(), accepted()])
            );
            // The same text at another URL, with its spaces doubled: the same normalised text.
            let spaced = text(1).replace(' ', "  ");
            assert_eq!(
                submit(&store, 1, "b", &[spaced], now + 1),
                Ok(vec![exact()])
            );
        }
        // A restart: the text keys are read back with the bands.
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(
                submit(&store, 2, "c", &[text(2), text(3)], now + 2),
                Ok(vec![exact(), accepted()])
            );
        }
        // The same database as version 7 left it: text keys in an index of their own, not in
        // `records_bands`.
        {
            super::super::bodies::back_to_version_8(&dir.path().join(super::super::DB_FILE));
            let conn = Connection::open(dir.path().join(super::super::DB_FILE)).unwrap();
            conn.execute_batch(
                "DROP INDEX records_bands;
                 CREATE INDEX records_bands ON records(received_at_ms, record_id, minhash)
                     WHERE verdict = 'accepted' AND role = 'primary';
                 CREATE INDEX records_text_key ON records(text_key)
                     WHERE verdict = 'accepted' AND role = 'primary';
                 PRAGMA user_version=7;",
            )
            .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            submit(&store, 3, "d", &[text(3), text(1), text(4)], now + 3),
            Ok(vec![exact(), exact(), accepted()])
        );
        // Texts 1 to 4 were accepted, each with its 14 bands and its text key.
        let size = store.band_index_size().unwrap();
        assert_eq!(size.records, 4);
        let conn = store.writer().unwrap();
        let sql = |name: &str| -> Option<String> {
            conn.query_row(
                "SELECT sql FROM sqlite_master WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
        };
        assert_eq!(sql("records_text_key"), None);
        assert_eq!(sql("records_bands"), None, "version 9 drops it");
    }

    #[test]
    fn a_refused_batch_leaves_no_band_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let text = |seed: u64| crate::testkit::sample_text(seed, 3_000);
        let now = crate::testkit::FILL_T0;
        // Record 0 passes every check and takes its bands; record 1 answers a lease that does not
        // exist, so the whole batch is refused and record 0's bands must go with it.
        let key = SecretKey::from_bytes(&[1; 32]);
        let job = jobs(&store, &key, "r", 1, now).remove(0);
        let mut forged = job.clone();
        forged.lease_id = "no-such-lease".into();
        let records = vec![
            crate::testkit::record_for(&key, &job, text(1), now),
            crate::testkit::record_for(&key, &forged, text(2), now),
        ];
        assert_eq!(
            ingest(&store, &key, records, now),
            Err("unknown_lease".to_string())
        );
        // Nothing of record 0 stayed: its text is new to the index, in memory and after a restart.
        assert_eq!(
            submit(&store, 2, "s", &[near(&text(1))], now + 1),
            Ok(vec![accepted()])
        );
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            submit(&store, 2, "t", &[near(&near(&text(1)))], now + 2),
            Ok(vec![near_duplicate()])
        );
    }
}
