//! The crash-safe queue and the node's local records, in one SQLite file (WAL, `synchronous=NORMAL`:
//! see [`Store::open`]).
//!
//! A record moves through explicit states, each change in one transaction:
//! `fetched` (stored, signed) → `batched` (inside a persisted batch whose encoded bytes are stored)
//! → `submitted` (sent at least once) → `receipted` (a verified receipt is stored). A record id is a
//! primary key and a record joins exactly one batch in the transaction that creates the batch, so a
//! `kill -9` at any point loses no stored record and can never put a record in two batches; a batch
//! is always resent as the same bytes, so the validator's idempotency by batch id does the rest.
//!
//! Also here: open leases (released after a crash), job failures waiting to be reported, the
//! activity log, daily byte usage, what the node last saw of each validator (its standing
//! and reward claim, for `gleaner status` and the next start), and the node's own entries of each
//! validator's revocation log (records accepted, then revoked, their points taken back).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use gleaner_protocol::api::{FailureReason, JobFailure};
use gleaner_protocol::{Batch, Digest, PublicKey, Receipt, Record, SecretKey};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::activity::{ActivityEntry, ActivityKind, ActivityQuery};

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("encoding a batch failed: {0}")]
    Encode(#[from] gleaner_protocol::ProtocolError),
    #[error("the database lock was poisoned")]
    Poisoned,
}

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Sql(_) => "database_error",
            StoreError::Corrupt(_) => "corrupt_store",
            StoreError::Encode(_) => "encode_error",
            StoreError::Poisoned => "poisoned",
        }
    }
}

/// Most title and text bytes in one batch before compression: bounds the node's memory while
/// encoding (ordinary pages carry 5–20 KB of text, so 100 records stay well under it).
pub const MAX_BATCH_TEXT_BYTES: usize = 4 * 1024 * 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records(
  id TEXT PRIMARY KEY,
  validator TEXT NOT NULL,
  lease_id TEXT NOT NULL,
  url TEXT NOT NULL,
  fetched_at_ms INTEGER NOT NULL,
  wire_bytes INTEGER NOT NULL,
  body TEXT,
  state TEXT NOT NULL CHECK (state IN ('fetched','batched','submitted','receipted')),
  batch_id TEXT,
  verdict TEXT,
  reason TEXT,
  points INTEGER
);
CREATE INDEX IF NOT EXISTS records_state ON records(state, validator);
CREATE INDEX IF NOT EXISTS records_url ON records(url, fetched_at_ms);
CREATE TABLE IF NOT EXISTS batches(
  id TEXT PRIMARY KEY,
  validator TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  record_count INTEGER NOT NULL,
  body BLOB,
  body_bytes INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('batched','submitted','receipted','refused')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  receipt TEXT,
  points INTEGER,
  receipted_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS batches_state ON batches(state, next_attempt_ms);
CREATE TABLE IF NOT EXISTS leases(
  lease_id TEXT NOT NULL,
  validator TEXT NOT NULL,
  url TEXT NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  PRIMARY KEY (validator, lease_id)
);
CREATE TABLE IF NOT EXISTS failures(
  id INTEGER PRIMARY KEY,
  validator TEXT NOT NULL,
  lease_id TEXT NOT NULL,
  url TEXT NOT NULL,
  reason TEXT NOT NULL,
  detail TEXT NOT NULL,
  status INTEGER,
  crawl_delay_ms INTEGER,
  at_ms INTEGER NOT NULL,
  reported INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS failures_reported ON failures(reported, validator);
CREATE TABLE IF NOT EXISTS activity(
  id INTEGER PRIMARY KEY,
  at_ms INTEGER NOT NULL,
  kind TEXT NOT NULL,
  url TEXT NOT NULL,
  domain TEXT NOT NULL,
  status INTEGER,
  bytes INTEGER NOT NULL,
  verdict TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS activity_at ON activity(at_ms);
CREATE INDEX IF NOT EXISTS activity_domain ON activity(domain, at_ms);
CREATE TABLE IF NOT EXISTS usage(day INTEGER PRIMARY KEY, bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS validator_health(
  url TEXT PRIMARY KEY,
  health TEXT NOT NULL,
  saved_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS revocations(
  validator TEXT NOT NULL,
  seq INTEGER NOT NULL,
  record_id TEXT NOT NULL,
  url TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  reason TEXT NOT NULL,
  at_ms INTEGER NOT NULL,
  PRIMARY KEY (validator, seq),
  UNIQUE (validator, record_id)
);
CREATE TABLE IF NOT EXISTS revocation_cursor(
  validator TEXT PRIMARY KEY,
  after INTEGER NOT NULL
);
";

/// Points as SQLite stores them (a signed 64-bit integer): a validator's receipt may say anything
/// up to `u64::MAX`, kept as the largest value the column holds.
fn sql_points(points: u64) -> i64 {
    i64::try_from(points).unwrap_or(i64::MAX)
}

/// A `TOTAL(points)` (a float, so no sum of stored points overflows) as points, saturating.
fn total_points(total: f64) -> u64 {
    // `as` saturates: negative and NaN give 0, beyond `u64::MAX` gives `u64::MAX`.
    total as u64
}

/// A batch waiting to be (re)sent.
#[derive(Debug, Clone)]
pub struct PendingBatch {
    pub id: Digest,
    pub validator: String,
    pub body: Vec<u8>,
    pub record_count: u32,
    pub attempts: u32,
}

/// A failure waiting to be reported.
#[derive(Debug, Clone)]
pub struct PendingFailure {
    pub row: i64,
    pub failure: JobFailure,
}

/// Counts for stats.
#[derive(Debug, Clone, Default)]
pub struct QueueCounts {
    pub fetched: u64,
    pub batched: u64,
    pub submitted: u64,
    pub receipted: u64,
    pub accepted: u64,
    pub duplicate: u64,
    pub rejected: u64,
    pub points: u64,
    pub rejected_by_reason: Vec<(String, u64)>,
    pub failures_by_reason: Vec<(String, u64)>,
    pub wire_bytes: u64,
    pub upload_bytes: u64,
}

/// What one epoch brought this node (from its stored receipts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochTotal {
    pub epoch: u64,
    pub points: u64,
    /// Receipted batches.
    pub batches: u64,
}

/// Longest URL and reason kept from a validator's revocation log (a validator may send anything).
const MAX_REVOKED_URL_CHARS: usize = 2_048;
const MAX_REVOKED_REASON_CHARS: usize = 64;

/// One of this node's records that a validator revoked after accepting it, as kept from the
/// validator's revocation log (`GET /v1/revocations?node=…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedRecord {
    /// The validator's URL, as configured.
    pub validator: String,
    /// Position in the validator's log.
    pub seq: u64,
    pub record_id: String,
    pub url: String,
    /// The epoch the record was credited in.
    pub epoch: u64,
    /// Why, as the validator's reason code (`failed_cross_check`, `page_not_found`, …).
    pub reason: String,
    /// The points its receipt credited, now taken back; 0 while this store has no receipt
    /// accepting it (the key was used elsewhere, or the receipt is not stored yet).
    pub points: u64,
    /// Whether this store holds a receipt accepting the record.
    pub known: bool,
    /// When this node learned of it (Unix ms).
    pub at_ms: i64,
}

pub use crate::activity::PageOutcome;

/// Revocations kept for one validator, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevokedTotals {
    pub records: u64,
    pub points: u64,
}

/// The last `seq` this node read of `validator`'s revocation log (0: none).
fn cursor_of(conn: &Connection, validator: &str) -> Result<u64, StoreError> {
    let after: Option<i64> = conn
        .query_row(
            "SELECT after FROM revocation_cursor WHERE validator = ?1",
            params![validator],
            |r| r.get(0),
        )
        .optional()?;
    Ok(after.map_or(0, |a| a.max(0) as u64))
}

fn clipped(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// Kept revocations (`v`), each with the stored receipt's verdict accepting its record (`r`), if
/// any: the points taken back are the ones that receipt credited.
const REVOKED_FROM: &str = "FROM revocations v
LEFT JOIN records r ON r.id = v.record_id AND r.validator = v.validator
                   AND r.state = 'receipted' AND r.verdict = 'accepted'";

/// The columns [`revoked_row`] reads.
const REVOKED_COLUMNS: &str = "v.validator, v.seq, v.record_id, v.url, v.epoch, v.reason,
       r.points, r.id IS NOT NULL, v.at_ms";

fn revoked_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RevokedRecord> {
    let number = |i| {
        r.get::<_, Option<i64>>(i)
            .map(|v| v.unwrap_or(0).max(0) as u64)
    };
    Ok(RevokedRecord {
        validator: r.get(0)?,
        seq: number(1)?,
        record_id: r.get(2)?,
        url: r.get(3)?,
        epoch: number(4)?,
        reason: r.get(5)?,
        points: number(6)?,
        known: r.get(7)?,
        at_ms: r.get(8)?,
    })
}

/// The store. Cheap to clone; one connection behind a mutex (operations are short).
#[derive(Debug, Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    /// Opens (creating) `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // WAL + NORMAL: a commit survives the process being killed at any moment (what the
        // crash tests do); only a power loss or OS crash can drop the last few commits, which
        // costs nothing twice — an unsent record's lease expires and is leased again, and a
        // batch whose receipt was lost is resubmitted and answered with the stored receipt.
        // FULL would fsync every fetched page (about 2.5 ms each here, half the node's CPU
        // budget per page).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn db(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Remembers leased jobs (so they can be released after a crash).
    pub fn add_leases(
        &self,
        validator: &str,
        jobs: &[gleaner_protocol::api::Job],
    ) -> Result<(), StoreError> {
        let mut db = self.db()?;
        let tx = db.transaction()?;
        for j in jobs {
            tx.execute(
                "INSERT OR REPLACE INTO leases(lease_id, validator, url, expires_at_ms) VALUES (?1,?2,?3,?4)",
                params![j.lease_id, validator, j.url, j.expires_at_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Leases not finished (after a crash: to release).
    pub fn open_leases(&self) -> Result<Vec<(String, String)>, StoreError> {
        let db = self.db()?;
        let mut st = db.prepare("SELECT validator, lease_id FROM leases")?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn drop_leases(&self, validator: &str, lease_ids: &[String]) -> Result<(), StoreError> {
        let mut db = self.db()?;
        let tx = db.transaction()?;
        for id in lease_ids {
            tx.execute(
                "DELETE FROM leases WHERE validator = ?1 AND lease_id = ?2",
                params![validator, id],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Stores a signed record (state `fetched`) and closes its lease, in one transaction.
    /// Returns false if the record was already stored.
    pub fn insert_record(&self, validator: &str, record: &Record) -> Result<bool, StoreError> {
        let body = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut db = self.db()?;
        let tx = db.transaction()?;
        let n = tx.execute(
            "INSERT OR IGNORE INTO records(id, validator, lease_id, url, fetched_at_ms, wire_bytes, body, state)
             VALUES (?1,?2,?3,?4,?5,?6,?7,'fetched')",
            params![
                record.id().to_string(),
                validator,
                record.lease_id,
                record.url,
                record.fetched_at_ms,
                record.wire_bytes as i64,
                body
            ],
        )?;
        tx.execute(
            "DELETE FROM leases WHERE validator = ?1 AND lease_id = ?2",
            params![validator, record.lease_id],
        )?;
        tx.commit()?;
        Ok(n == 1)
    }

    /// Queues a job failure for reporting and closes its lease, in one transaction.
    pub fn insert_failure(
        &self,
        validator: &str,
        url: &str,
        failure: &JobFailure,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut db = self.db()?;
        let tx = db.transaction()?;
        tx.execute(
            "INSERT INTO failures(validator, lease_id, url, reason, detail, status, crawl_delay_ms, at_ms)
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
            params![
                validator,
                failure.lease_id,
                url,
                failure.reason.code(),
                failure.detail,
                failure.status,
                failure.crawl_delay_ms,
                at_ms
            ],
        )?;
        tx.execute(
            "DELETE FROM leases WHERE validator = ?1 AND lease_id = ?2",
            params![validator, failure.lease_id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Failures not yet reported to `validator`.
    pub fn pending_failures(
        &self,
        validator: &str,
        max: usize,
    ) -> Result<Vec<PendingFailure>, StoreError> {
        let db = self.db()?;
        let mut st = db.prepare(
            "SELECT id, lease_id, reason, detail, status, crawl_delay_ms FROM failures
             WHERE reported = 0 AND validator = ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = st
            .query_map(params![validator, max as i64], |r| {
                let reason: String = r.get(2)?;
                Ok(PendingFailure {
                    row: r.get(0)?,
                    failure: JobFailure {
                        lease_id: r.get(1)?,
                        reason: reason_from_code(&reason),
                        detail: r.get(3)?,
                        status: r.get(4)?,
                        crawl_delay_ms: r.get(5)?,
                    },
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn mark_failures_reported(&self, rows: &[i64]) -> Result<(), StoreError> {
        let mut db = self.db()?;
        let tx = db.transaction()?;
        for row in rows {
            tx.execute("UPDATE failures SET reported = 1 WHERE id = ?1", [row])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records in state `fetched` for `validator`, and the oldest one's fetch time.
    pub fn fetched_backlog(&self, validator: &str) -> Result<(u64, Option<i64>), StoreError> {
        let db = self.db()?;
        let row = db.query_row(
            "SELECT COUNT(*), MIN(fetched_at_ms) FROM records WHERE state = 'fetched' AND validator = ?1",
            [validator],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Option<i64>>(1)?)),
        )?;
        Ok(row)
    }

    /// Builds, signs, encodes and persists one batch of up to `max_records` fetched records for
    /// `validator`, keeping the encoded body under `max_bytes`. One transaction: either the batch
    /// exists with its records marked `batched`, or nothing changed.
    pub fn create_batch(
        &self,
        validator: &str,
        key: &SecretKey,
        max_records: usize,
        max_bytes: u64,
        now_ms: i64,
    ) -> Result<Option<PendingBatch>, StoreError> {
        let mut db = self.db()?;
        let tx = db.transaction()?;
        let mut records: Vec<(String, Record)> = Vec::new();
        {
            let mut st = tx.prepare(
                "SELECT id, body FROM records WHERE state = 'fetched' AND validator = ?1
                 ORDER BY rowid LIMIT ?2",
            )?;
            let rows = st.query_map(params![validator, max_records as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })?;
            for row in rows {
                let (id, body) = row?;
                let body =
                    body.ok_or_else(|| StoreError::Corrupt(format!("record {id} has no body")))?;
                let rec: Record = serde_json::from_str(&body)
                    .map_err(|e| StoreError::Corrupt(format!("record {id}: {e}")))?;
                records.push((id, rec));
            }
        }
        if records.is_empty() {
            return Ok(None);
        }
        // Bound the uncompressed size (and so the memory of encoding): stop at the text cap.
        let mut text_bytes = 0usize;
        let mut n = 0;
        for (_, r) in &records {
            text_bytes += r.text.len() + r.title.len();
            n += 1;
            if text_bytes >= MAX_BATCH_TEXT_BYTES {
                break;
            }
        }
        let mut ids: Vec<String> = records.iter().map(|(id, _)| id.clone()).collect();
        let mut recs: Vec<Record> = records.into_iter().map(|(_, r)| r).collect();
        recs.truncate(n);
        // Shrink until the encoded batch fits (halving keeps this to a few tries). Records are
        // moved into the batch, not copied.
        let (batch, body) = loop {
            let batch = Batch::new(key, now_ms, recs);
            let body = batch.encode()?;
            if body.len() as u64 <= max_bytes || n == 1 {
                break (batch, body);
            }
            n = n.div_ceil(2);
            recs = batch.records;
            recs.truncate(n);
        };
        ids.truncate(n);
        let id = batch.id();
        tx.execute(
            "INSERT INTO batches(id, validator, created_at_ms, record_count, body, body_bytes, state)
             VALUES (?1,?2,?3,?4,?5,?6,'batched')",
            params![id.to_string(), validator, now_ms, n as i64, body, body.len() as i64],
        )?;
        drop(batch);
        for rid in &ids {
            tx.execute(
                "UPDATE records SET state = 'batched', batch_id = ?1 WHERE id = ?2 AND state = 'fetched'",
                params![id.to_string(), rid],
            )?;
        }
        tx.commit()?;
        Ok(Some(PendingBatch {
            id,
            validator: validator.to_string(),
            body,
            record_count: n as u32,
            attempts: 0,
        }))
    }

    /// Batches due for (re)sending at `now_ms`, oldest first.
    pub fn due_batches(&self, now_ms: i64, max: usize) -> Result<Vec<PendingBatch>, StoreError> {
        let db = self.db()?;
        let mut st = db.prepare(
            "SELECT id, validator, body, record_count, attempts FROM batches
             WHERE state IN ('batched','submitted') AND next_attempt_ms <= ?1
             ORDER BY created_at_ms LIMIT ?2",
        )?;
        let rows = st
            .query_map(params![now_ms, max as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<Vec<u8>>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, validator, body, count, attempts)| {
                Ok(PendingBatch {
                    id: id
                        .parse()
                        .map_err(|_| StoreError::Corrupt(format!("batch id {id}")))?,
                    validator,
                    body: body
                        .ok_or_else(|| StoreError::Corrupt(format!("batch {id} has no body")))?,
                    record_count: count as u32,
                    attempts: attempts as u32,
                })
            })
            .collect()
    }

    /// Marks a batch as sent (before the request goes out) and its records `submitted`.
    pub fn mark_submitted(&self, id: &Digest) -> Result<(), StoreError> {
        let mut db = self.db()?;
        let tx = db.transaction()?;
        tx.execute(
            "UPDATE batches SET state = 'submitted', attempts = attempts + 1 WHERE id = ?1 AND state IN ('batched','submitted')",
            [id.to_string()],
        )?;
        tx.execute(
            "UPDATE records SET state = 'submitted' WHERE batch_id = ?1 AND state = 'batched'",
            [id.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A send failed; try again at `next_ms`. `refused`: the validator refused the batch for good.
    pub fn mark_failed(
        &self,
        id: &Digest,
        error: &str,
        next_ms: i64,
        refused: bool,
    ) -> Result<(), StoreError> {
        let db = self.db()?;
        if refused {
            db.execute(
                "UPDATE batches SET state = 'refused', last_error = ?2 WHERE id = ?1",
                params![id.to_string(), error],
            )?;
        } else {
            db.execute(
                "UPDATE batches SET next_attempt_ms = ?2, last_error = ?3 WHERE id = ?1",
                params![id.to_string(), next_ms, error],
            )?;
        }
        Ok(())
    }

    /// Stores a verified receipt: the batch and its records become `receipted`, with verdicts.
    /// Record and batch bodies are dropped (they are the validator's now).
    pub fn store_receipt(&self, receipt: &Receipt, now_ms: i64) -> Result<(), StoreError> {
        let json =
            serde_json::to_string(receipt).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let id = receipt.batch_id.to_string();
        let mut db = self.db()?;
        let tx = db.transaction()?;
        tx.execute(
            "UPDATE batches SET state = 'receipted', receipt = ?2, points = ?3, receipted_at_ms = ?4, body = NULL
             WHERE id = ?1",
            params![id, json, sql_points(receipt.points), now_ms],
        )?;
        for v in &receipt.verdicts {
            let verdict = match v.verdict {
                gleaner_protocol::Verdict::Accepted => "accepted",
                gleaner_protocol::Verdict::Duplicate => "duplicate",
                gleaner_protocol::Verdict::Rejected => "rejected",
            };
            tx.execute(
                "UPDATE records SET state = 'receipted', verdict = ?2, reason = ?3, points = ?4, body = NULL
                 WHERE id = ?1 AND batch_id = ?5",
                params![v.record_id.to_string(), verdict, v.reason, sql_points(v.points), id],
            )?;
        }
        // Records the receipt did not mention are still covered by it.
        tx.execute(
            "UPDATE records SET state = 'receipted', body = NULL WHERE batch_id = ?1 AND state != 'receipted'",
            [&id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A stored receipt by batch id.
    pub fn receipt(&self, id: &Digest) -> Result<Option<Receipt>, StoreError> {
        let db = self.db()?;
        let json: Option<Option<String>> = db
            .query_row(
                "SELECT receipt FROM batches WHERE id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        json.flatten()
            .map(|j| serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// Points and receipted batches per epoch, newest epoch first, at most `max` epochs.
    pub fn epoch_totals(&self, max: usize) -> Result<Vec<EpochTotal>, StoreError> {
        let db = self.db()?;
        let mut st = db.prepare_cached(
            "SELECT json_extract(receipt, '$.epoch') AS epoch, TOTAL(points), COUNT(*)
             FROM batches WHERE state = 'receipted' AND receipt IS NOT NULL
             GROUP BY epoch ORDER BY epoch DESC LIMIT ?1",
        )?;
        let rows = st.query_map([max as i64], |r| {
            Ok(EpochTotal {
                epoch: r.get::<_, Option<i64>>(0)?.unwrap_or(0).max(0) as u64,
                points: total_points(r.get(1)?),
                batches: r.get::<_, i64>(2)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The `max` most recently received receipts, newest first.
    /// The validator key on the newest stored receipt from the validator at `url`, if any.
    pub fn receipt_validator(&self, url: &str) -> Result<Option<PublicKey>, StoreError> {
        let db = self.db()?;
        let json: Option<String> = db
            .query_row(
                "SELECT receipt FROM batches
                  WHERE validator = ?1 AND state = 'receipted' AND receipt IS NOT NULL
                  ORDER BY receipted_at_ms DESC, rowid DESC LIMIT 1",
                [url],
                |r| r.get(0),
            )
            .optional()?;
        json.map(|j| {
            serde_json::from_str::<Receipt>(&j)
                .map(|r| r.validator)
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .transpose()
    }

    pub fn recent_receipts(&self, max: usize) -> Result<Vec<Receipt>, StoreError> {
        let db = self.db()?;
        let mut st = db.prepare_cached(
            "SELECT receipt FROM batches WHERE state = 'receipted' AND receipt IS NOT NULL
             ORDER BY receipted_at_ms DESC, rowid DESC LIMIT ?1",
        )?;
        let rows = st.query_map([max as i64], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for json in rows {
            out.push(serde_json::from_str(&json?).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        Ok(out)
    }

    /// Whether anything is left to send: fetched records, unsent or unreceipted batches,
    /// unreported failures.
    pub fn queue_drained(&self) -> Result<bool, StoreError> {
        let db = self.db()?;
        let n: i64 = db.query_row(
            "SELECT (SELECT COUNT(*) FROM records WHERE state = 'fetched')
                  + (SELECT COUNT(*) FROM batches WHERE state IN ('batched','submitted'))
                  + (SELECT COUNT(*) FROM failures WHERE reported = 0)",
            [],
            |r| r.get(0),
        )?;
        Ok(n == 0)
    }

    /// Queue and outcome counts.
    pub fn counts(&self) -> Result<QueueCounts, StoreError> {
        let db = self.db()?;
        let mut c = QueueCounts::default();
        {
            let mut st =
                db.prepare("SELECT state, COUNT(*), SUM(wire_bytes) FROM records GROUP BY state")?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            })?;
            for row in rows {
                let (state, n, bytes) = row?;
                let n = n as u64;
                c.wire_bytes += bytes.unwrap_or(0) as u64;
                match state.as_str() {
                    "fetched" => c.fetched = n,
                    "batched" => c.batched = n,
                    "submitted" => c.submitted = n,
                    "receipted" => c.receipted = n,
                    _ => {}
                }
            }
        }
        {
            let mut st = db.prepare(
                "SELECT verdict, reason, COUNT(*), TOTAL(points) FROM records WHERE state = 'receipted' GROUP BY verdict, reason",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, f64>(3)?,
                ))
            })?;
            for row in rows {
                let (verdict, reason, n, points) = row?;
                let n = n as u64;
                c.points = c.points.saturating_add(total_points(points));
                match verdict.as_deref() {
                    Some("accepted") => c.accepted += n,
                    Some("duplicate") => c.duplicate += n,
                    Some("rejected") => {
                        c.rejected += n;
                        c.rejected_by_reason
                            .push((reason.unwrap_or_else(|| "unknown".into()), n));
                    }
                    _ => {}
                }
            }
        }
        {
            let mut st = db
                .prepare("SELECT reason, COUNT(*) FROM failures GROUP BY reason ORDER BY 2 DESC")?;
            c.failures_by_reason = st
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })?
                .collect::<Result<Vec<_>, _>>()?;
        }
        c.upload_bytes = db.query_row(
            "SELECT COALESCE(SUM(body_bytes), 0) FROM batches WHERE state != 'batched'",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64;
        Ok(c)
    }

    /// Adds `bytes` to the usage of `day` (see [`crate::governor::day_of`]).
    pub fn add_usage(&self, day: i64, bytes: u64) -> Result<(), StoreError> {
        let db = self.db()?;
        db.execute(
            "INSERT INTO usage(day, bytes) VALUES (?1, ?2)
             ON CONFLICT(day) DO UPDATE SET bytes = bytes + excluded.bytes",
            params![day, bytes as i64],
        )?;
        Ok(())
    }

    /// Bytes used on days `from_day..=to_day`.
    pub fn usage(&self, from_day: i64, to_day: i64) -> Result<u64, StoreError> {
        let db = self.db()?;
        let n: i64 = db.query_row(
            "SELECT COALESCE(SUM(bytes), 0) FROM usage WHERE day BETWEEN ?1 AND ?2",
            params![from_day, to_day],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Replaces what is remembered of each validator in `seen` (`(url, health as JSON)`), at
    /// `now_ms`, in one transaction.
    pub fn save_validator_health(
        &self,
        seen: &[(String, String)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut db = self.db()?;
        let tx = db.transaction()?;
        for (url, health) in seen {
            tx.execute(
                "INSERT INTO validator_health(url, health, saved_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(url) DO UPDATE SET health = excluded.health, saved_ms = excluded.saved_ms",
                params![url, health, now_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// What [`Store::save_validator_health`] remembered: `(url, health as JSON)` by URL.
    pub fn validator_health(&self) -> Result<Vec<(String, String)>, StoreError> {
        let db = self.db()?;
        let mut st = db.prepare("SELECT url, health FROM validator_health ORDER BY url")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How far this node has read `validator`'s revocation log: the last `seq` seen (0: none).
    pub fn revocation_cursor(&self, validator: &str) -> Result<u64, StoreError> {
        cursor_of(&*self.db()?, validator)
    }

    /// Keeps `entries` of `validator`'s revocation log (this node's own, in log order) and moves
    /// the cursor to `after`, in one transaction. Each revoked record takes back the points its
    /// stored receipt credited (looked up when read, so a receipt stored later counts too); a
    /// record revoked twice, or an entry at or before the cursor, is kept once, and no more than
    /// `max_kept` entries of one validator are kept (a hostile one could list records without
    /// end). Returns the entries kept now.
    pub fn add_revocations(
        &self,
        validator: &str,
        entries: &[gleaner_protocol::api::Revocation],
        after: u64,
        max_kept: u64,
        now_ms: i64,
    ) -> Result<Vec<RevokedRecord>, StoreError> {
        let mut db = self.db()?;
        let tx = db.transaction()?;
        let cursor = cursor_of(&tx, validator)?;
        let mut held: u64 = tx
            .query_row(
                "SELECT COUNT(*) FROM revocations WHERE validator = ?1",
                params![validator],
                |r| r.get::<_, i64>(0),
            )?
            .max(0) as u64;
        let mut kept = Vec::new();
        for e in entries.iter().filter(|e| e.seq > cursor) {
            if held >= max_kept {
                tracing::warn!(
                    validator,
                    max_kept,
                    "revocation log entries beyond the cap skipped"
                );
                break;
            }
            let n = tx.execute(
                "INSERT OR IGNORE INTO revocations(validator, seq, record_id, url, epoch, reason, at_ms)
                 VALUES (?1,?2,?3,?4,?5,?6,?7)",
                params![
                    validator,
                    sql_points(e.seq),
                    e.record_id.to_string(),
                    clipped(&e.url, MAX_REVOKED_URL_CHARS),
                    sql_points(e.epoch),
                    clipped(&e.reason, MAX_REVOKED_REASON_CHARS),
                    now_ms
                ],
            )?;
            if n == 1 {
                held += 1;
                kept.push(tx.query_row(
                    &format!(
                        "SELECT {REVOKED_COLUMNS} {REVOKED_FROM} WHERE v.validator = ?1 AND v.seq = ?2"
                    ),
                    params![validator, sql_points(e.seq)],
                    revoked_row,
                )?);
            }
        }
        tx.execute(
            "INSERT INTO revocation_cursor(validator, after) VALUES (?1, ?2)
             ON CONFLICT(validator) DO UPDATE SET after = MAX(after, excluded.after)",
            params![validator, sql_points(after)],
        )?;
        tx.commit()?;
        Ok(kept)
    }

    /// What became of the newest record stored for each of `urls` (a URL with none is absent).
    pub fn page_outcomes(
        &self,
        urls: &[&str],
    ) -> Result<std::collections::HashMap<String, PageOutcome>, StoreError> {
        let db = self.db()?;
        let mut st = db.prepare_cached(
            "SELECT r.state, r.verdict, r.reason, r.points, v.reason
             FROM records r
             LEFT JOIN revocations v ON v.validator = r.validator AND v.record_id = r.id
             WHERE r.url = ?1 ORDER BY r.fetched_at_ms DESC LIMIT 1",
        )?;
        let mut out = std::collections::HashMap::new();
        for &url in urls {
            let row = st
                .query_row(params![url], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                })
                .optional()?;
            let Some((state, verdict, reason, points, revoked)) = row else {
                continue;
            };
            let points = points.unwrap_or(0).max(0) as u64;
            let outcome = match (state.as_str(), verdict, revoked) {
                ("receipted", _, Some(why)) => PageOutcome {
                    outcome: "revoked".into(),
                    reason: Some(why),
                    points: 0,
                },
                ("receipted", Some(verdict), None) => PageOutcome {
                    outcome: verdict,
                    reason,
                    points,
                },
                _ => PageOutcome {
                    outcome: "queued".into(),
                    reason: None,
                    points: 0,
                },
            };
            out.insert(url.to_string(), outcome);
        }
        Ok(out)
    }

    /// Revocations kept, summed per validator (a validator with none is absent).
    pub fn revoked_totals(
        &self,
    ) -> Result<std::collections::HashMap<String, RevokedTotals>, StoreError> {
        let db = self.db()?;
        let mut st = db.prepare_cached(&format!(
            "SELECT v.validator, COUNT(*), TOTAL(r.points) {REVOKED_FROM} GROUP BY v.validator"
        ))?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                RevokedTotals {
                    records: r.get::<_, i64>(1)?.max(0) as u64,
                    points: total_points(r.get(2)?),
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The `max` newest revocations kept, newest first.
    pub fn revoked_records(&self, max: usize) -> Result<Vec<RevokedRecord>, StoreError> {
        let db = self.db()?;
        let mut st = db.prepare(&format!(
            "SELECT {REVOKED_COLUMNS} {REVOKED_FROM} ORDER BY v.at_ms DESC, v.seq DESC LIMIT ?1"
        ))?;
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = st.query_map(params![max], revoked_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Appends activity entries.
    pub fn log_activity(&self, entries: &[ActivityEntry]) -> Result<(), StoreError> {
        let mut db = self.db()?;
        let tx = db.transaction()?;
        for e in entries {
            tx.execute(
                "INSERT INTO activity(at_ms, kind, url, domain, status, bytes, verdict, detail)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                params![
                    e.at_ms,
                    e.kind.as_str(),
                    e.url,
                    e.domain,
                    e.status,
                    e.bytes as i64,
                    e.verdict,
                    e.detail
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Queries the activity log, newest first.
    pub fn activity(&self, q: &ActivityQuery) -> Result<Vec<ActivityEntry>, StoreError> {
        let db = self.db()?;
        let mut sql = String::from(
            "SELECT at_ms, kind, url, domain, status, bytes, verdict, detail FROM activity WHERE 1=1",
        );
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(d) = &q.domain {
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            sql.push_str(" AND (domain = ? OR url LIKE ?)");
            args.push(crate::util::registered_domain(&d).into());
            args.push(format!("%://{d}%").into());
        }
        if let Some(v) = &q.verdict {
            sql.push_str(" AND verdict = ?");
            args.push(v.clone().into());
        }
        if let Some(k) = q.kind {
            sql.push_str(" AND kind = ?");
            args.push(k.as_str().to_string().into());
        }
        if let Some(t) = &q.text {
            sql.push_str(" AND (url LIKE ? OR detail LIKE ?)");
            let pat = format!("%{}%", t.replace(['%', '_'], ""));
            args.push(pat.clone().into());
            args.push(pat.into());
        }
        if let Some(s) = q.since_ms {
            sql.push_str(" AND at_ms >= ?");
            args.push(s.into());
        }
        if let Some(u) = q.until_ms {
            sql.push_str(" AND at_ms < ?");
            args.push(u.into());
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        args.push((q.limit.unwrap_or(1000).min(1_000_000) as i64).into());
        let mut st = db.prepare(&sql)?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args), |r| {
                let kind: String = r.get(1)?;
                Ok(ActivityEntry {
                    at_ms: r.get(0)?,
                    kind: ActivityKind::from_str_lossy(&kind),
                    url: r.get(2)?,
                    domain: r.get(3)?,
                    status: r.get(4)?,
                    bytes: r.get::<_, i64>(5)? as u64,
                    verdict: r.get(6)?,
                    detail: r.get(7)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Deletes activity older than `before_ms`.
    pub fn prune_activity(&self, before_ms: i64) -> Result<usize, StoreError> {
        let db = self.db()?;
        Ok(db.execute("DELETE FROM activity WHERE at_ms < ?1", [before_ms])?)
    }
}

/// Parses a stored failure reason code.
pub fn reason_from_code(code: &str) -> FailureReason {
    use FailureReason::*;
    [
        RobotsDisallowed,
        RobotsUnreachable,
        HttpError,
        BlockedAddress,
        BlockedDomain,
        NotHtml,
        Timeout,
        TooLarge,
        TooManyRedirects,
        NetworkError,
        InvalidUrl,
        NoIndex,
        Other,
    ]
    .into_iter()
    .find(|r| r.code() == code)
    .unwrap_or(Other)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use gleaner_protocol::api::Revocation;

    use super::*;

    fn entry(seq: u64, record: &[u8]) -> Revocation {
        Revocation::sign(
            &SecretKey::from_bytes(&[2; 32]),
            seq,
            Digest::of(record),
            SecretKey::from_bytes(&[1; 32]).public(),
            format!("https://example.org/{seq}"),
            1,
            "failed_cross_check".into(),
        )
    }

    /// What a validator's log may hold that a node must not keep as it came: a record twice,
    /// entries at or before the cursor, endless entries, oversized fields.
    #[test]
    fn a_validators_revocation_log_is_kept_once_and_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("node.sqlite")).unwrap();
        let v = "http://validator";
        assert_eq!(store.revocation_cursor(v).unwrap(), 0);

        let mut big = entry(2, b"b");
        big.url = "u".repeat(10_000);
        big.reason = "r".repeat(1_000);
        let first = [entry(1, b"a"), big, entry(3, b"a")];
        let kept = store.add_revocations(v, &first, 3, 10, 7).unwrap();
        let seqs: Vec<u64> = kept.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 2], "the record revoked twice is kept once");
        assert_eq!(kept[1].url.len(), MAX_REVOKED_URL_CHARS);
        assert_eq!(kept[1].reason.len(), MAX_REVOKED_REASON_CHARS);
        assert!(
            kept.iter()
                .all(|r| !r.known && r.points == 0 && r.at_ms == 7)
        );
        assert_eq!(store.revocation_cursor(v).unwrap(), 3);

        // At or before the cursor: nothing; past it, no more than the cap.
        let again = [entry(2, b"c"), entry(3, b"d")];
        assert!(
            store
                .add_revocations(v, &again, 3, 10, 8)
                .unwrap()
                .is_empty()
        );
        let endless: Vec<_> = (4..20).map(|i| entry(i, &i.to_le_bytes())).collect();
        let kept = store.add_revocations(v, &endless, 19, 5, 9).unwrap();
        assert_eq!(kept.len(), 3, "two held, three more to the cap of five");
        assert_eq!(store.revocation_cursor(v).unwrap(), 19);
        let totals = store.revoked_totals().unwrap();
        assert_eq!(totals.len(), 1, "{totals:?}");
        assert_eq!((totals[v].records, totals[v].points), (5, 0));
        // The cursor never moves back.
        store.add_revocations(v, &[], 4, 5, 10).unwrap();
        assert_eq!(store.revocation_cursor(v).unwrap(), 19);
        let newest: Vec<u64> = store
            .revoked_records(2)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(newest, [6, 5]);
    }
}
