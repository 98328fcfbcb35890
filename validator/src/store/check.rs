//! A data directory checked end to end (`gleaner-validator check`): after a crash, a restore or a
//! move to another disk, or on a schedule, an operator learns whether everything the validator
//! has promised is still there and still verifies. Read-only, and safe next to a serving writer:
//! every read happens in one read transaction, so the check sees one commit, as a backup does.
//!
//! What is checked, each failure a [`Problem`] with a stable code:
//! * `database_corrupt`: SQLite's `quick_check` (pages, records and indexes well formed). A
//!   database that fails it is read no further: what else it holds cannot be trusted.
//! * `segment_short`: a body segment shorter than its committed length.
//! * `body_mismatch`: a stored record whose body cannot be read, does not parse, or is not the
//!   record its row names (the id of its signed fields, its text digest, its node, URL and
//!   lease); `body_missing`: an accepted or duplicate record without a body.
//! * `receipt_invalid`: a batch's stored receipt that does not verify (signature, total), was
//!   not signed by this validator, or disagrees with its row (batch, node, epoch, records,
//!   points); `batch_records_mismatch`: a batch whose stored records are not the receipt's.
//! * `ledger_totals_mismatch`: the running totals (per epoch and payout key, per node and epoch)
//!   are not the sums of the ledger's entries.
//! * `node_counts_mismatch`: a node's record counts (accepted, duplicate, rejected, revoked) are
//!   not its records counted by verdict.
//! * `request_counts_mismatch`: a crawl request's record counts are not the records its pages
//!   brought counted by verdict.
//! * `revocations_mismatch`: the revocation log (`GET /v1/revocations`) does not name each
//!   revoked record exactly once, and nothing else.
//! * `check_history_mismatch`: a node's check history (`node_judgements`, since version 25)
//!   does not chain (each row's credibility before is the one after the row before it), does
//!   not end at the node's credibility, or holds more passes or failures than its counts.
//! * `epoch_invalid`: a closed epoch's root that does not verify, was not signed by this
//!   validator, or is not the root, total and leaf count of its stored leaves.
//! * `dataset_invalid` ([`CheckReport::check_datasets`], when asked): an exported dataset that
//!   does not verify offline as a lab would verify it, against this validator's key (manifest,
//!   shard digests, every row's signature and receipt).

use std::path::Path;

use gleaner_protocol::{PublicKey, Receipt, RewardTree};
use rusqlite::{Connection, params};
use serde::Serialize;

use super::bodies::{self, BodyAt, Reader};
use super::{Op, Store, StoreError, key_from, migrate};

/// Problems listed in a report; past this many they are only counted.
pub const MAX_LISTED_PROBLEMS: usize = 100;

/// One thing that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Stable code (see the module's documentation).
    pub code: &'static str,
    /// What, and where: the record's `seq`, the batch, the epoch, the segment file.
    pub detail: String,
}

/// What a check read, and what it found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub schema_version: i64,
    /// Record rows read.
    pub records: u64,
    /// Record bodies read back and checked.
    pub bodies: u64,
    /// Batch receipts verified.
    pub batches: u64,
    pub ledger_entries: u64,
    /// Closed epochs whose roots were rebuilt from their leaves.
    pub epochs: u64,
    /// Exported datasets verified ([`CheckReport::check_datasets`]), and their rows.
    pub datasets: u64,
    pub dataset_rows: u64,
    /// Problems found, all of them.
    pub problems: u64,
    /// The first [`MAX_LISTED_PROBLEMS`] of them.
    pub listed: Vec<Problem>,
}

impl CheckReport {
    /// Whether nothing was found.
    pub fn ok(&self) -> bool {
        self.problems == 0
    }

    fn found(&mut self, code: &'static str, detail: String) {
        self.problems += 1;
        if self.listed.len() < MAX_LISTED_PROBLEMS {
            self.listed.push(Problem { code, detail });
        }
    }

    /// Verifies each exported dataset under `root` (its directories but hidden ones, as a
    /// backup copies them) as a lab would, trusting `validator` alone: one `dataset_invalid`
    /// problem per dataset that fails, naming its first failures. Reads only the files; the
    /// rows are checked at the dataset verifier's speed (tens of thousands a second a core).
    /// Errors: `store_io` for a dataset replaced during each of its reads.
    pub fn check_datasets(&mut self, root: &Path, validator: &PublicKey) -> Result<(), StoreError> {
        let opts = gleaner_dataset::VerifyOptions {
            trust: vec![*validator],
            max_reported_failures: 3,
        };
        self.check_datasets_with(root, &mut |dir| gleaner_dataset::verify_dir(dir, &opts))
    }

    /// [`CheckReport::check_datasets`] with `verify` reading each dataset's directory.
    fn check_datasets_with(
        &mut self,
        root: &Path,
        verify: &mut dyn FnMut(&Path) -> gleaner_dataset::VerifyReport,
    ) -> Result<(), StoreError> {
        for name in super::backup::dataset_dirs(root)? {
            let dir = root.join(&name);
            // A dataset replaced by a new export while it was read (beside a serving validator
            // with its export timer) is read again, as a backup copies it again; one removed
            // is not checked.
            let verified =
                super::backup::read_standing(&dir, &mut || Ok(verify(&dir)), &mut || Ok(()))?;
            let Some(verified) = verified else {
                continue;
            };
            self.datasets += 1;
            self.dataset_rows += verified.rows_checked;
            if !verified.is_ok() {
                let first: Vec<String> =
                    verified.failures.iter().map(ToString::to_string).collect();
                self.found(
                    "dataset_invalid",
                    format!(
                        "dataset {name}: {} failure(s): {}",
                        verified.failure_count,
                        first.join("; ")
                    ),
                );
            }
        }
        Ok(())
    }
}

impl Store {
    /// Checks everything stored against everything it must agree with (see the module's
    /// documentation); `validator` is this validator's public key, which must have signed every
    /// receipt and epoch root. Problems go in the report; an error means the check itself could
    /// not run (the database cannot be read, or has another schema version than this build's).
    pub fn check(&self, validator: &PublicKey) -> Result<CheckReport, StoreError> {
        let conn = self.reader()?;
        let schema_version = migrate::user_version(&conn)?;
        if schema_version != migrate::SCHEMA_VERSION {
            return Err(StoreError::Invalid {
                field: "database",
                why: format!(
                    "schema version {schema_version}, where this build checks version {}: \
                     open it once with this build (any admin command) to migrate it",
                    migrate::SCHEMA_VERSION
                ),
            });
        }
        conn.execute_batch("BEGIN").op("check")?;
        let mut report = CheckReport {
            schema_version,
            records: 0,
            bodies: 0,
            batches: 0,
            ledger_entries: 0,
            epochs: 0,
            datasets: 0,
            dataset_rows: 0,
            problems: 0,
            listed: Vec::new(),
        };
        let checked = check_all(&conn, &self.bodies_dir, validator, &mut report);
        // A read transaction: ending it can only fail if it already ended.
        let _ = conn.execute_batch("COMMIT");
        // Damage the quick check did not show stops the read where it is found.
        if let Err(e) = checked {
            match corruption(&e) {
                Some(why) => report.found("database_corrupt", why),
                None => return Err(e),
            }
        }
        Ok(report)
    }
}

/// Every check in turn, into `report`.
fn check_all(
    conn: &Connection,
    dir: &Path,
    validator: &PublicKey,
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    check_database(conn, report)?;
    if !report.ok() {
        // A database that fails SQLite's own check is read no further: its other reads may
        // fail, and what they give cannot be trusted.
        return Ok(());
    }
    check_segments(conn, dir, report)?;
    check_records(conn, dir, report)?;
    check_receipts(conn, validator, report)?;
    check_ledger(conn, report)?;
    check_counts(
        conn,
        report,
        NODE_COUNTS_DIFF,
        "node_counts_mismatch",
        "node",
    )?;
    check_counts(
        conn,
        report,
        REQUEST_COUNTS_DIFF,
        "request_counts_mismatch",
        "crawl request",
    )?;
    check_revocations(conn, report)?;
    check_history(conn, report)?;
    check_epochs(conn, validator, report)
}

/// Every row `sql` (with `params`) gives, through `map`.
fn all_rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).op("check")?;
    stmt.query_map(params, map)
        .op("check")?
        .collect::<Result<Vec<_>, _>>()
        .op("check")
}

/// `f` on every row `sql` gives, one at a time (for tables too large to collect).
fn each_row(
    conn: &Connection,
    sql: &str,
    mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(sql).op("check")?;
    let mut rows = stmt.query([]).op("check")?;
    while let Some(r) = rows.next().op("check")? {
        f(r)?;
    }
    Ok(())
}

/// What SQLite's `quick_check` finds wrong with the database: nothing when it says `ok`. Damage
/// that stops the check itself (a page SQLite cannot read as one, `SQLITE_CORRUPT`) is a finding
/// too, not an error: which of the two a damaged page gives depends on where it is.
pub(super) fn quick_check_failures(conn: &Connection) -> Result<Vec<String>, StoreError> {
    match all_rows(conn, "PRAGMA quick_check", [], |r| r.get::<_, String>(0)) {
        Ok(lines) => Ok(lines.into_iter().filter(|l| l != "ok").collect()),
        Err(e) => corruption(&e).map(|why| vec![why]).ok_or(e),
    }
}

/// What SQLite said, when `e` is SQLite finding the database damaged (`SQLITE_CORRUPT`,
/// `SQLITE_NOTADB`): a page `quick_check` passed can still fail to read as what it should be.
pub(super) fn corruption(e: &StoreError) -> Option<String> {
    match e {
        StoreError::Sqlite { op, source }
            if matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            ) =>
        {
            Some(format!("{source} (while reading for {op})"))
        }
        _ => None,
    }
}

fn check_database(conn: &Connection, report: &mut CheckReport) -> Result<(), StoreError> {
    for line in quick_check_failures(conn)? {
        report.found("database_corrupt", line);
    }
    Ok(())
}

fn check_segments(
    conn: &Connection,
    dir: &Path,
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    for (segment, bytes) in bodies::committed_segments(conn)? {
        let path = bodies::segment_path(dir, segment);
        match std::fs::metadata(&path) {
            // Nothing committed: no file is needed.
            Err(_) if bytes == 0 => {}
            Err(e) => report.found("segment_short", format!("{}: {e}", path.display())),
            Ok(m) if m.len() < bytes => report.found(
                "segment_short",
                format!(
                    "{} holds {} bytes where {bytes} are committed",
                    path.display(),
                    m.len()
                ),
            ),
            Ok(_) => {}
        }
    }
    Ok(())
}

/// One `records` row as the check reads it.
struct Row {
    seq: i64,
    record_id: Vec<u8>,
    node: String,
    lease_id: String,
    url: String,
    verdict: String,
    body: Option<BodyAt>,
    json: Option<Vec<u8>>,
}

fn check_records(
    conn: &Connection,
    dir: &Path,
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    // In seq order, which is the order the bodies were appended in: the reader's window reads
    // neighbours with one read.
    let mut reader = Reader::new(dir);
    let sql = "SELECT seq, record_id, node, lease_id, url, verdict, body_segment, body_offset,
                      body_len, record_json
                 FROM records ORDER BY seq";
    each_row(conn, sql, |r| {
        let body = match (r.get(6), r.get(7), r.get(8)) {
            (Ok(Some(segment)), Ok(Some(offset)), Ok(Some(len))) => Some(BodyAt {
                segment,
                offset,
                len,
            }),
            _ => None,
        };
        let row = Row {
            seq: r.get(0).op("check")?,
            record_id: r.get(1).op("check")?,
            node: r.get(2).op("check")?,
            lease_id: r.get(3).op("check")?,
            url: r.get(4).op("check")?,
            verdict: r.get(5).op("check")?,
            body,
            json: r.get(9).op("check")?,
        };
        report.records += 1;
        let stored = match (row.body, &row.json) {
            (Some(at), _) => Some(reader.read(at)),
            (None, Some(json)) => Some(Ok(json.clone())),
            (None, None) => None,
        };
        let Some(stored) = stored else {
            // The quality rules' rejections keep no body; every other record does.
            if row.verdict != "rejected" {
                report.found(
                    "body_missing",
                    format!("record seq {} ({}) has no body", row.seq, row.verdict),
                );
            }
            return Ok(());
        };
        report.bodies += 1;
        if let Err(why) = body_matches(&row, stored) {
            report.found("body_mismatch", format!("record seq {}: {why}", row.seq));
        }
        Ok(())
    })
}

/// Whether `stored` (the body as read) is the record `row` names.
fn body_matches(row: &Row, stored: Result<Vec<u8>, StoreError>) -> Result<(), String> {
    let json = stored.map_err(|e| e.to_string())?;
    let id: [u8; 32] = row
        .record_id
        .as_slice()
        .try_into()
        .map_err(|_| format!("record_id has {} bytes", row.record_id.len()))?;
    let record = bodies::check(&json, &gleaner_protocol::Digest::from_bytes(id))
        .map_err(|e| e.to_string())?;
    let node = record.node.to_string();
    if node != row.node || record.url != row.url || record.lease_id != row.lease_id {
        return Err(format!(
            "the body is of node {node}, URL {}, lease {}; the row says {}, {}, {}",
            record.url, record.lease_id, row.node, row.url, row.lease_id
        ));
    }
    Ok(())
}

fn check_receipts(
    conn: &Connection,
    validator: &PublicKey,
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    let sql = "SELECT batch_id, node, epoch, record_count, points, receipt_json FROM batches
                ORDER BY received_at_ms, batch_id";
    each_row(conn, sql, |r| {
        let batch_id: Vec<u8> = r.get(0).op("check")?;
        let node: String = r.get(1).op("check")?;
        let epoch: i64 = r.get(2).op("check")?;
        let record_count: i64 = r.get(3).op("check")?;
        let points: i64 = r.get(4).op("check")?;
        let json: Vec<u8> = r.get(5).op("check")?;
        report.batches += 1;
        let batch = hex::encode(&batch_id);
        let receipt = match serde_json::from_slice::<Receipt>(&json) {
            Ok(receipt) => receipt,
            Err(e) => {
                report.found("receipt_invalid", format!("batch {batch}: {e}"));
                return Ok(());
            }
        };
        let why = if let Err(e) = receipt.verify() {
            Some(e.to_string())
        } else if receipt.validator != *validator {
            Some(format!(
                "signed by {}, not by this validator",
                receipt.validator
            ))
        } else if receipt.batch_id.as_bytes().as_slice() != batch_id.as_slice()
            || receipt.node.to_string() != node
            || i64::try_from(receipt.epoch) != Ok(epoch)
            || i64::try_from(receipt.verdicts.len()) != Ok(record_count)
            || i64::try_from(receipt.points) != Ok(points)
        {
            Some(format!(
                "the receipt says batch {}, node {}, epoch {}, {} records, {} points; the row \
                 says batch {batch}, node {node}, epoch {epoch}, {record_count} records, \
                 {points} points",
                receipt.batch_id,
                receipt.node,
                receipt.epoch,
                receipt.verdicts.len(),
                receipt.points
            ))
        } else {
            None
        };
        if let Some(why) = why {
            report.found("receipt_invalid", format!("batch {batch}: {why}"));
        }
        Ok(())
    })?;
    // Each batch's stored records are as many as its receipt's verdicts, with its points.
    let mismatches = all_rows(
        conn,
        "SELECT hex(b.batch_id), b.record_count, b.points, COUNT(r.seq), COALESCE(SUM(r.points), 0)
           FROM batches b LEFT JOIN records r ON r.batch_id = b.batch_id
          GROUP BY b.batch_id
         HAVING COUNT(r.seq) != b.record_count OR COALESCE(SUM(r.points), 0) != b.points",
        [],
        |r| {
            Ok(format!(
                "batch {}: the receipt has {} records and {} points, the records table {} and {}",
                r.get::<_, String>(0)?.to_lowercase(),
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?
            ))
        },
    )?;
    for detail in mismatches {
        report.found("batch_records_mismatch", detail);
    }
    Ok(())
}

/// The running totals against the ledger's own sums, both ways round.
const LEDGER_TOTALS_DIFF: [(&str, &str); 2] = [
    (
        "per epoch and payout key",
        "SELECT epoch, payout, amount FROM (
             SELECT epoch, payout, SUM(amount) AS amount FROM ledger GROUP BY epoch, payout
             EXCEPT SELECT epoch, payout, amount FROM ledger_totals)
         UNION ALL
         SELECT epoch, payout, amount FROM (
             SELECT epoch, payout, amount FROM ledger_totals
             EXCEPT SELECT epoch, payout, SUM(amount) FROM ledger GROUP BY epoch, payout)",
    ),
    (
        "per node and epoch",
        "SELECT epoch, node, amount FROM (
             SELECT epoch, node, SUM(amount) AS amount FROM ledger GROUP BY node, epoch
             EXCEPT SELECT epoch, node, amount FROM node_ledger_totals)
         UNION ALL
         SELECT epoch, node, amount FROM (
             SELECT epoch, node, amount FROM node_ledger_totals
             EXCEPT SELECT epoch, node, SUM(amount) FROM ledger GROUP BY node, epoch)",
    ),
];

fn check_ledger(conn: &Connection, report: &mut CheckReport) -> Result<(), StoreError> {
    report.ledger_entries = conn
        .query_row("SELECT COUNT(*) FROM ledger", [], |r| r.get::<_, i64>(0))
        .op("check")
        .map(|n| u64::try_from(n).unwrap_or(0))?;
    for (what, sql) in LEDGER_TOTALS_DIFF {
        // Each disagreeing key shows up once from each side (or once, where one side lacks it).
        let mut keys = all_rows(conn, sql, [], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        keys.sort_unstable();
        keys.dedup();
        for (epoch, key) in keys {
            report.found(
                "ledger_totals_mismatch",
                format!(
                    "the running total {what} for epoch {epoch}, {key}, is not the ledger's sum"
                ),
            );
        }
    }
    Ok(())
}

/// Each node whose four record counts are not its records counted by verdict (in one pass over
/// the records), with both sets of figures.
const NODE_COUNTS_DIFF: &str = "
    SELECT n.node, n.records_accepted, n.records_duplicate, n.records_rejected,
           n.records_revoked, COALESCE(c.accepted, 0), COALESCE(c.duplicate, 0),
           COALESCE(c.rejected, 0), COALESCE(c.revoked, 0)
      FROM nodes n LEFT JOIN (
           SELECT node, SUM(verdict = 'accepted') AS accepted,
                  SUM(verdict = 'duplicate') AS duplicate, SUM(verdict = 'rejected') AS rejected,
                  SUM(verdict = 'revoked') AS revoked
             FROM records GROUP BY node) c ON c.node = n.node
     WHERE (n.records_accepted, n.records_duplicate, n.records_rejected, n.records_revoked)
           != (COALESCE(c.accepted, 0), COALESCE(c.duplicate, 0), COALESCE(c.rejected, 0),
                   COALESCE(c.revoked, 0))
     ORDER BY n.node";

/// Reports each row `diff` returns (a name, then four stored record counts and the same four
/// counted from the records) as a `code` problem naming `what` and both sets of figures.
fn check_counts(
    conn: &Connection,
    report: &mut CheckReport,
    diff: &str,
    code: &'static str,
    what: &str,
) -> Result<(), StoreError> {
    let wrong = all_rows(conn, diff, [], |r| {
        let mut n = [0i64; 8];
        for (i, v) in n.iter_mut().enumerate() {
            *v = r.get(i + 1)?;
        }
        let name = match r.get_ref(0)? {
            rusqlite::types::ValueRef::Integer(i) => i.to_string(),
            other => String::from_utf8_lossy(other.as_bytes().unwrap_or_default()).into_owned(),
        };
        Ok((name, n))
    })?;
    for (name, [a, d, rj, rv, ca, cd, crj, crv]) in wrong {
        report.found(
            code,
            format!(
                "{what} {name} counts {a} accepted, {d} duplicate, {rj} rejected, {rv} revoked; \
                 its records are {ca}, {cd}, {crj}, {crv}"
            ),
        );
    }
    Ok(())
}

/// Each crawl request whose four record counts are not the records its pages brought (primary
/// fetches, through their leases and tasks) counted by verdict, with both sets of figures.
const REQUEST_COUNTS_DIFF: &str = "
    SELECT q.id, q.records_accepted, q.records_duplicate, q.records_rejected,
           q.records_revoked, COALESCE(c.accepted, 0), COALESCE(c.duplicate, 0),
           COALESCE(c.rejected, 0), COALESCE(c.revoked, 0)
      FROM crawl_requests q LEFT JOIN (
           SELECT t.request_id AS id, SUM(r.verdict = 'accepted') AS accepted,
                  SUM(r.verdict = 'duplicate') AS duplicate,
                  SUM(r.verdict = 'rejected') AS rejected, SUM(r.verdict = 'revoked') AS revoked
             FROM records r JOIN leases l ON l.lease_id = r.lease_id
                  JOIN tasks t ON t.id = l.task_id
            WHERE r.role = 'primary'
            GROUP BY t.request_id) c ON c.id = q.id
     WHERE (q.records_accepted, q.records_duplicate, q.records_rejected, q.records_revoked)
           != (COALESCE(c.accepted, 0), COALESCE(c.duplicate, 0), COALESCE(c.rejected, 0),
                   COALESCE(c.revoked, 0))
     ORDER BY q.id";

/// The revocation log against the revoked records: one pass over the records, set differences
/// in SQLite's temporary b-trees (the records have no index on their id).
fn check_revocations(conn: &Connection, report: &mut CheckReport) -> Result<(), StoreError> {
    let count = |sql: &str| -> Result<i64, StoreError> {
        conn.query_row(sql, [], |r| r.get(0))
            .op("check revocations")
    };
    let missing = count(
        "SELECT COUNT(*) FROM (SELECT record_id FROM records WHERE verdict = 'revoked'
                               EXCEPT SELECT record_id FROM revocations)",
    )?;
    let extra = count(
        "SELECT COUNT(*) FROM (SELECT record_id FROM revocations
                               EXCEPT SELECT record_id FROM records WHERE verdict = 'revoked')",
    )?;
    let twice = count("SELECT COUNT(*) - COUNT(DISTINCT record_id) FROM revocations")?;
    for (n, what) in [
        (missing, "revoked records missing from the revocation log"),
        (extra, "revocations logged for records that are not revoked"),
        (twice, "revocations logged more than once"),
    ] {
        if n > 0 {
            report.found("revocations_mismatch", format!("{n} {what}"));
        }
    }
    Ok(())
}

/// Each node's check history against itself and its row: every credibility change is written
/// with its row (`nodes::apply_check_with`), so the rows chain and the last one ends where the
/// node stands. Rows from before version 25 were never written, so the counts may exceed the
/// history's, never the other way.
fn check_history(conn: &Connection, report: &mut CheckReport) -> Result<(), StoreError> {
    let broken = all_rows(
        conn,
        "WITH j AS (
             SELECT node, seq, credibility_before, credibility_after,
                    LAG(credibility_after) OVER (PARTITION BY node ORDER BY seq) AS previous,
                    LEAD(seq) OVER (PARTITION BY node ORDER BY seq) AS next
               FROM node_judgements)
         SELECT j.node, j.seq, CASE
                    WHEN j.previous IS NOT NULL AND j.previous != j.credibility_before
                        THEN 'does not start where the row before it ended'
                    ELSE 'is the last, and the node''s credibility is not where it ended'
                END
           FROM j LEFT JOIN nodes n ON n.node = j.node
          WHERE (j.previous IS NOT NULL AND j.previous != j.credibility_before)
             OR (j.next IS NULL AND (n.node IS NULL OR n.credibility != j.credibility_after))",
        [],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        },
    )?;
    for (node, seq, why) in broken {
        report.found(
            "check_history_mismatch",
            format!("node {node}: history row {seq} {why}"),
        );
    }
    let overcounted = all_rows(
        conn,
        "SELECT j.node, SUM(j.verdict = 'passed'), SUM(j.verdict != 'passed'),
                COALESCE(n.checks_passed, 0), COALESCE(n.checks_failed, 0)
           FROM node_judgements j LEFT JOIN nodes n ON n.node = j.node
          GROUP BY j.node
         HAVING SUM(j.verdict = 'passed') > COALESCE(n.checks_passed, 0)
             OR SUM(j.verdict != 'passed') > COALESCE(n.checks_failed, 0)",
        [],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                [r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?, r.get(4)?],
            ))
        },
    )?;
    for (node, [passes, failures, passed, failed]) in overcounted {
        report.found(
            "check_history_mismatch",
            format!(
                "node {node}: its history holds {passes} passes and {failures} failures, \
                 its counts {passed} and {failed}"
            ),
        );
    }
    Ok(())
}

fn check_epochs(
    conn: &Connection,
    validator: &PublicKey,
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    let epochs = all_rows(
        conn,
        "SELECT epoch, root_json FROM epochs ORDER BY epoch",
        [],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
    )?;
    for (epoch, json) in epochs {
        report.epochs += 1;
        let leaves = all_rows(
            conn,
            "SELECT claimant, amount FROM epoch_leaves WHERE epoch = ?1",
            params![epoch],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )?;
        if let Err(why) = epoch_matches(epoch, &json, leaves, validator) {
            report.found("epoch_invalid", format!("epoch {epoch}: {why}"));
        }
    }
    Ok(())
}

/// Whether the signed root `json` of `epoch` verifies, is this validator's, and is the root,
/// total and leaf count of `leaves` (claimant, amount).
fn epoch_matches(
    epoch: i64,
    json: &str,
    leaves: Vec<(String, i64)>,
    validator: &PublicKey,
) -> Result<(), String> {
    let root: gleaner_protocol::EpochRoot =
        serde_json::from_str(json).map_err(|e| e.to_string())?;
    root.verify().map_err(|e| e.to_string())?;
    if root.validator != *validator {
        return Err(format!(
            "signed by {}, not by this validator",
            root.validator
        ));
    }
    if i64::try_from(root.epoch) != Ok(epoch) {
        return Err(format!("the root is of epoch {}", root.epoch));
    }
    let leaves = leaves
        .into_iter()
        .map(|(claimant, amount)| {
            Ok(gleaner_protocol::RewardLeaf {
                claimant: key_from(&claimant, "claimant").map_err(|e| e.to_string())?,
                amount: u64::try_from(amount).map_err(|_| format!("a leaf of {amount}"))?,
                locked: 0,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let tree = RewardTree::new(leaves).map_err(|e| e.to_string())?;
    let (count, total) = (tree.leaves().len(), tree.total());
    if tree.root() != *root.root.as_bytes()
        || u32::try_from(count) != Ok(root.leaf_count)
        || total != root.total
    {
        return Err(format!(
            "the signed root is {} over {} leaves totalling {}; the stored leaves make {} over \
             {count} totalling {total}",
            root.root,
            root.leaf_count,
            root.total,
            gleaner_protocol::Digest::from_bytes(tree.root()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, Ordering};

    use gleaner_protocol::SecretKey;

    use super::*;
    use crate::store::DB_FILE;
    use crate::testkit::{FILL_T0, fill_store, leased_jobs_on, submit_sample_texts};

    /// A filled data directory (two epochs, one closed) and the validator's public key.
    fn filled() -> (tempfile::TempDir, PublicKey) {
        let dir = tempfile::tempdir().unwrap();
        let (identity, accepted) = fill_store(dir.path(), 30).unwrap();
        assert!(accepted >= 20, "{accepted}");
        (dir, identity.public())
    }

    fn check(dir: &Path, validator: &PublicKey) -> CheckReport {
        Store::open_read_only(dir)
            .unwrap()
            .check(validator)
            .unwrap()
    }

    fn codes(report: &CheckReport) -> BTreeSet<&'static str> {
        report.listed.iter().map(|p| p.code).collect()
    }

    fn sql(dir: &Path, statement: &str) {
        let conn = Connection::open(dir.join(DB_FILE)).unwrap();
        let changed = conn.execute(statement, []).unwrap();
        assert!(changed > 0, "{statement}");
    }

    /// Adds a row to the check history of the first node (by key): check `check`'s `verdict`,
    /// the credibility before and after as SQL over its `nodes` row (`credibility`, `0.5`).
    fn judged(dir: &Path, check: i64, verdict: &str, before: &str, after: &str) {
        sql(
            dir,
            &format!(
                "INSERT INTO node_judgements(node, check_id, at_ms, verdict, credibility_before,
                                             credibility_after)
                 SELECT node, {check}, 0, '{verdict}', {before}, {after} FROM nodes
                  WHERE node = (SELECT MIN(node) FROM nodes)"
            ),
        );
    }

    /// A dataset an export replaces while the check reads it (the server's export timer beside
    /// it) is read again, and what the second read found stands: a read that saw two datasets'
    /// files mixed is not reported. One replaced at every read is an error; one removed is not
    /// checked.
    #[test]
    fn a_dataset_replaced_while_checked_is_read_again() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("nightly");
        std::fs::create_dir(&dir).unwrap();
        // An export's replacement: a new directory renamed into the dataset's place.
        let replace = |dir: &Path| {
            let new = dir.with_extension("new");
            std::fs::create_dir(&new).unwrap();
            std::fs::remove_dir_all(dir).unwrap();
            std::fs::rename(&new, dir).unwrap();
        };
        let mixed = gleaner_dataset::VerifyReport {
            failure_count: 1,
            ..Default::default()
        };
        let whole = gleaner_dataset::VerifyReport {
            rows_checked: 7,
            ..Default::default()
        };

        let mut reads = 0;
        let mut report = CheckReport::default();
        report
            .check_datasets_with(root.path(), &mut |d| {
                reads += 1;
                if reads == 1 {
                    replace(d);
                    mixed.clone()
                } else {
                    whole.clone()
                }
            })
            .unwrap();
        assert_eq!(reads, 2);
        assert_eq!((report.datasets, report.dataset_rows), (1, 7));
        assert!(report.ok(), "{report:#?}");

        let mut report = CheckReport::default();
        let err = report
            .check_datasets_with(root.path(), &mut |d| {
                replace(d);
                whole.clone()
            })
            .unwrap_err();
        assert_eq!(err.code(), "store_io");
        assert!(err.to_string().contains("replaced during each of"), "{err}");

        let mut report = CheckReport::default();
        report
            .check_datasets_with(root.path(), &mut |d| {
                std::fs::remove_dir_all(d).unwrap();
                mixed.clone()
            })
            .unwrap();
        assert_eq!((report.datasets, report.problems), (0, 0), "{report:#?}");
    }

    #[test]
    fn a_store_as_ingest_left_it_checks_clean() {
        let (dir, validator) = filled();
        let report = check(dir.path(), &validator);
        assert!(report.ok(), "{report:#?}");
        let store = Store::open_read_only(dir.path()).unwrap();
        assert_eq!(report.records, 30);
        assert_eq!(report.bodies, 30, "every record of these texts has a body");
        assert_eq!(report.batches, 3);
        assert_eq!(report.ledger_entries, store.ledger_len().unwrap());
        assert_eq!(report.epochs, 1);
        assert_eq!(report.schema_version, migrate::SCHEMA_VERSION);
    }

    /// Exported datasets verify as a lab verifies them; a damaged shard, a dataset that is not
    /// one, and one another key signed are each one `dataset_invalid`, named.
    #[test]
    fn exported_datasets_are_verified_and_damage_in_them_found() {
        let dir = tempfile::tempdir().unwrap();
        let (identity, accepted) = fill_store(dir.path(), 30).unwrap();
        let validator = identity.public();
        let root = dir.path().join("datasets");
        let store = Store::open_read_only(dir.path()).unwrap();
        let export = |store: &Store, name: &str, key: &SecretKey| {
            crate::dataset::export_from_store(store, key, &root, None, Some(name)).unwrap()
        };
        let good = export(&store, "good", identity.secret());
        let mut report = check(dir.path(), &validator);
        report.check_datasets(&root, &validator).unwrap();
        assert!(report.ok(), "{report:#?}");
        assert_eq!((report.datasets, report.dataset_rows), (1, accepted as u64));
        // No datasets at all: nothing to check, nothing found.
        let mut none = check(dir.path(), &validator);
        none.check_datasets(&dir.path().join("none"), &validator)
            .unwrap();
        assert!(none.ok() && none.datasets == 0);

        export(&store, "damaged", identity.secret());
        let shard = root.join("damaged").join(&good.manifest.shards[0].path);
        let mut bytes = std::fs::read(&shard).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        std::fs::write(&shard, bytes).unwrap();
        // Another validator's dataset (its own store and key).
        let other = tempfile::tempdir().unwrap();
        let (stranger, _) = fill_store(other.path(), 10).unwrap();
        let other_store = Store::open_read_only(other.path()).unwrap();
        export(&other_store, "stranger", stranger.secret());
        std::fs::create_dir_all(root.join("empty")).unwrap();
        // An export's staging directory is not a dataset.
        std::fs::create_dir_all(root.join(".next.staging")).unwrap();

        let mut report = check(dir.path(), &validator);
        report.check_datasets(&root, &validator).unwrap();
        assert_eq!(report.datasets, 4, "{report:#?}");
        assert_eq!(report.problems, 3, "{report:#?}");
        assert_eq!(codes(&report), BTreeSet::from(["dataset_invalid"]));
        let named: Vec<&str> = report
            .listed
            .iter()
            .map(|p| p.detail.split(':').next().unwrap())
            .collect();
        assert_eq!(
            named,
            ["dataset damaged", "dataset empty", "dataset stranger"]
        );
    }

    /// Each kind of damage is found, under its own code and no other.
    #[test]
    fn each_kind_of_damage_is_found_under_its_code() {
        type Damage = fn(&Path);
        let cases: [(&str, Damage, &[&str]); 14] = [
            (
                "a byte of a body flipped",
                |dir| {
                    let seg = bodies::segment_path(&bodies::dir_for(&dir.join(DB_FILE)), 1);
                    let mut bytes = std::fs::read(&seg).unwrap();
                    // Inside the first body's text.
                    let at = bytes.windows(6).position(|w| w == b"\"text\"").unwrap() + 20;
                    bytes[at] ^= 0x01;
                    std::fs::write(&seg, bytes).unwrap();
                },
                &["body_mismatch"],
            ),
            (
                "two rows' bodies swapped",
                |dir| {
                    sql(
                        dir,
                        "UPDATE records SET body_offset = CASE seq
                             WHEN 1 THEN (SELECT body_offset FROM records WHERE seq = 2)
                             ELSE (SELECT body_offset FROM records WHERE seq = 1) END,
                           body_len = CASE seq
                             WHEN 1 THEN (SELECT body_len FROM records WHERE seq = 2)
                             ELSE (SELECT body_len FROM records WHERE seq = 1) END
                         WHERE seq IN (1, 2)",
                    );
                },
                &["body_mismatch"],
            ),
            (
                "a segment cut short",
                |dir| {
                    let seg = bodies::segment_path(&bodies::dir_for(&dir.join(DB_FILE)), 1);
                    let len = std::fs::metadata(&seg).unwrap().len();
                    std::fs::File::options()
                        .write(true)
                        .open(&seg)
                        .unwrap()
                        .set_len(len / 2)
                        .unwrap();
                },
                &["segment_short", "body_mismatch"],
            ),
            (
                "an accepted record's body forgotten",
                |dir| {
                    sql(
                        dir,
                        "UPDATE records SET body_segment = NULL, body_offset = NULL,
                                body_len = NULL WHERE seq = 5",
                    );
                },
                &["body_missing"],
            ),
            (
                "a receipt's bytes changed",
                |dir| {
                    sql(
                        dir,
                        "UPDATE batches SET receipt_json = CAST(replace(CAST(receipt_json AS TEXT),
                             '\"epoch\":1', '\"epoch\":7') AS BLOB)
                          WHERE rowid = (SELECT MIN(rowid) FROM batches)",
                    );
                },
                &["receipt_invalid"],
            ),
            (
                "a batch's points changed",
                |dir| {
                    sql(
                        dir,
                        "UPDATE batches SET points = points + 1
                          WHERE rowid = (SELECT MIN(rowid) FROM batches)",
                    );
                },
                &["receipt_invalid", "batch_records_mismatch"],
            ),
            (
                "a running total changed",
                |dir| {
                    sql(
                        dir,
                        "UPDATE ledger_totals SET amount = amount + 5
                          WHERE (epoch, payout) = (SELECT epoch, payout FROM ledger_totals
                                                    ORDER BY epoch, payout LIMIT 1)",
                    );
                },
                &["ledger_totals_mismatch"],
            ),
            (
                "a node's count changed",
                |dir| {
                    sql(
                        dir,
                        "UPDATE nodes SET records_revoked = records_revoked + 1
                          WHERE node = (SELECT MIN(node) FROM nodes)",
                    );
                },
                &["node_counts_mismatch"],
            ),
            (
                "a crawl request's count changed",
                |dir| {
                    sql(
                        dir,
                        "UPDATE crawl_requests SET records_accepted = records_accepted + 1
                          WHERE id = (SELECT MIN(id) FROM crawl_requests)",
                    );
                },
                &["request_counts_mismatch"],
            ),
            (
                "a revocation logged for a record that was not revoked",
                |dir| {
                    sql(
                        dir,
                        "INSERT INTO revocations(record_id, node, url, epoch, reason)
                         SELECT record_id, node, url, epoch, 'failed_cross_check' FROM records
                          WHERE verdict = 'accepted' LIMIT 1",
                    );
                },
                &["revocations_mismatch"],
            ),
            (
                "a node's credibility changed outside its check history",
                |dir| {
                    judged(dir, 1, "passed", "credibility", "credibility");
                    sql(
                        dir,
                        "UPDATE nodes SET credibility = credibility + 0.25, checks_passed = 1
                          WHERE node = (SELECT MIN(node) FROM nodes)",
                    );
                },
                &["check_history_mismatch"],
            ),
            (
                "a row cut out of a node's check history",
                |dir| {
                    // The row between them, from 0.45 to the node's credibility, is gone.
                    judged(dir, 1, "failed", "0.5", "0.45");
                    judged(dir, 3, "failed", "credibility", "credibility");
                    sql(
                        dir,
                        "UPDATE nodes SET checks_failed = 3
                          WHERE node = (SELECT MIN(node) FROM nodes)",
                    );
                },
                &["check_history_mismatch"],
            ),
            (
                "a failure in a node's history its counts lack",
                |dir| {
                    judged(dir, 1, "page_gone", "credibility", "credibility");
                },
                &["check_history_mismatch"],
            ),
            (
                "a closed epoch's leaf changed",
                |dir| sql(dir, "UPDATE epoch_leaves SET amount = amount + 1"),
                &["epoch_invalid"],
            ),
        ];
        for (what, damage, want) in cases {
            let (dir, validator) = filled();
            damage(dir.path());
            let report = check(dir.path(), &validator);
            assert!(!report.ok(), "{what}: {report:#?}");
            assert_eq!(report.problems, report.listed.len() as u64, "{what}");
            let want: BTreeSet<&str> = want.iter().copied().collect();
            assert_eq!(codes(&report), want, "{what}: {report:#?}");
        }
    }

    #[test]
    fn each_wrong_running_total_is_one_problem() {
        let (dir, validator) = filled();
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let count = |table: &str| -> u64 {
            let n: i64 = conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap();
            n as u64
        };
        let wrong = count("ledger_totals") + count("node_ledger_totals");
        assert!(wrong >= 4, "{wrong}");
        conn.execute_batch(
            "UPDATE ledger_totals SET amount = amount - 1;
             UPDATE node_ledger_totals SET amount = amount + 1;",
        )
        .unwrap();
        let report = check(dir.path(), &validator);
        assert_eq!(report.problems, wrong, "{report:#?}");
        assert_eq!(codes(&report), BTreeSet::from(["ledger_totals_mismatch"]));
    }

    #[test]
    fn another_validators_key_fails_every_receipt_and_root() {
        let (dir, _) = filled();
        let other = SecretKey::from_bytes(&[77; 32]).public();
        let report = check(dir.path(), &other);
        assert_eq!(
            codes(&report),
            BTreeSet::from(["receipt_invalid", "epoch_invalid"])
        );
        assert_eq!(report.problems, report.batches + report.epochs);
        assert!(
            report
                .listed
                .iter()
                .all(|p| p.detail.contains("not by this validator")),
            "{report:#?}"
        );
    }

    #[test]
    fn a_database_of_another_schema_version_is_not_checked() {
        let (dir, validator) = filled();
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA user_version = {}",
            migrate::SCHEMA_VERSION - 1
        ))
        .unwrap();
        let err = Store::open_read_only(dir.path())
            .unwrap()
            .check(&validator)
            .unwrap_err();
        assert_eq!(err.code(), "invalid_request", "{err}");
        assert!(err.to_string().contains("schema version"), "{err}");
    }

    /// Checks run while batches go in: each sees one commit, so none finds a problem.
    #[test]
    fn a_check_beside_a_writer_sees_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap().with_segment_limit(30_000);
        let node = SecretKey::from_bytes(&[9; 32]);
        let validator = SecretKey::from_bytes(&[200; 32]);
        let jobs = leased_jobs_on(&store, &node, "live", 80, FILL_T0).unwrap();
        let writing = AtomicBool::new(true);
        let mut checks = 0;
        std::thread::scope(|s| {
            s.spawn(|| {
                let submitted =
                    submit_sample_texts(&store, &node, &validator, &jobs, 4, FILL_T0, |n, now| {
                        if n == 9 {
                            store.close_epoch(&validator, now + 1)?;
                        }
                        Ok(())
                    });
                // Whatever happened, the checks below stop.
                writing.store(false, Ordering::SeqCst);
                submitted.unwrap();
            });
            let reading = Store::open_read_only(dir.path()).unwrap();
            while writing.load(Ordering::SeqCst) {
                let report = reading.check(&validator.public()).unwrap();
                assert!(report.ok(), "{report:#?}");
                checks += 1;
            }
        });
        assert!(checks >= 1, "no check ran while writing");
        let report = check(dir.path(), &validator.public());
        assert!(
            report.ok() && report.records == 80 && report.epochs == 1,
            "{report:#?}"
        );
    }
}
