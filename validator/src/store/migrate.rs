//! Schema versions: `schema.sql` is the current shape, which a new database gets whole; a database
//! written by an earlier version is first brought to it by the steps below, in order.
//!
//! The version is SQLite's `user_version`. Each step runs in its own `IMMEDIATE` transaction that
//! also sets the new version, so a crash leaves the database at one version or the next, never
//! between, and a second process opening the same file at the same time waits, then finds the
//! work done.

use std::path::Path;

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use super::bodies::{self, BodyAt};
use super::{Op, StoreError, digest_from};
use crate::dedup::MinHash;

/// One step: what takes version `to - 1` to `to`.
struct Step {
    to: i64,
    what: &'static str,
    run: Run,
}

enum Run {
    /// A script.
    Sql(&'static str),
    /// Code, given the step's transaction and the directory of the record bodies.
    Code(fn(&Transaction<'_>, &Path) -> Result<(), StoreError>),
}

const STEPS: &[Step] = &[
    Step {
        to: 2,
        what: "LSH bands in a WITHOUT ROWID table",
        run: Run::Sql(include_str!("migrations/0002_lsh_without_rowid.sql")),
    },
    Step {
        to: 3,
        what: "task queue and lease indexes over live rows only",
        run: Run::Sql(include_str!("migrations/0003_live_row_indexes.sql")),
    },
    Step {
        to: 4,
        what: "an index of idle ready domains",
        run: Run::Sql(include_str!("migrations/0004_idle_domains_index.sql")),
    },
    Step {
        to: 5,
        what: "token counts of records, counted at acceptance",
        run: Run::Sql(include_str!("migrations/0005_records_token_count.sql")),
    },
    Step {
        to: 6,
        what: "the pending counter kept without triggers",
        run: Run::Sql(include_str!("migrations/0006_pending_without_triggers.sql")),
    },
    Step {
        to: 7,
        what: "the LSH band index in memory, rebuilt from the records",
        run: Run::Sql(include_str!("migrations/0007_bands_in_memory.sql")),
    },
    Step {
        to: 8,
        what: "exact duplicates found in memory, beside the LSH bands",
        run: Run::Sql(include_str!("migrations/0008_exact_keys_in_memory.sql")),
    },
    Step {
        to: 9,
        what: "record bodies in segment files beside the database",
        run: Run::Sql(include_str!(
            "migrations/0009_record_bodies_in_segments.sql"
        )),
    },
    Step {
        to: 10,
        what: "the export's index in arrival order",
        run: Run::Sql(include_str!(
            "migrations/0010_export_index_in_arrival_order.sql"
        )),
    },
    Step {
        to: 11,
        what: "records found by seq, without an index on record_id",
        run: Run::Sql(include_str!(
            "migrations/0011_records_without_a_record_id_index.sql"
        )),
    },
    Step {
        to: 12,
        what: "quality scores in a compact form",
        run: Run::Sql(include_str!("migrations/0012_compact_quality_scores.sql")),
    },
    Step {
        to: 13,
        what: "near-duplicate signatures recomputed under minhash/v2",
        run: Run::Code(recompute_signatures),
    },
    Step {
        to: 14,
        what: "per-epoch ledger totals and running balances for epoch closes",
        run: Run::Sql(include_str!("migrations/0014_running_ledger_totals.sql")),
    },
    Step {
        to: 15,
        what: "disputed cross-checks queued for the validator's own fetch",
        run: Run::Sql(include_str!("migrations/0015_validator_tiebreaks.sql")),
    },
    Step {
        to: 16,
        what: "a disputed page's domain held while the validator fetches it",
        run: Run::Code(tiebreak_holds),
    },
    Step {
        to: 17,
        what: "near-duplicate signatures recomputed under minhash/v3 (diacritics stripped)",
        run: Run::Code(recompute_signatures),
    },
    Step {
        to: 18,
        what: "checks no node gets done made by the validator's own fetch",
        run: Run::Code(validator_checks),
    },
    Step {
        to: 19,
        what: "the network each node leases from, kept apart from the nodes it checks",
        run: Run::Code(node_networks),
    },
    Step {
        to: 20,
        what: "when each node last gave back a check or tie-break job unfinished",
        run: Run::Code(judging_given_back),
    },
    Step {
        to: 21,
        what: "nodes' records counted by their verdict now, revocations included",
        run: Run::Code(node_record_counts),
    },
    Step {
        to: 22,
        what: "a log of revocations, for labs holding records exported before",
        run: Run::Sql(include_str!("migrations/0022_revocations.sql")),
    },
    Step {
        to: 23,
        what: "nodes the operator suspended, and why",
        run: Run::Code(node_suspensions),
    },
    Step {
        to: 24,
        what: "each crawl request's records counted by verdict",
        run: Run::Code(request_record_counts),
    },
    Step {
        to: 25,
        what: "each node's check history",
        run: Run::Sql(include_str!("migrations/0025_node_judgements.sql")),
    },
];

/// Schema version this build writes: where the last step leads.
pub(crate) const SCHEMA_VERSION: i64 = STEPS[STEPS.len() - 1].to;

/// Brings the database to [`SCHEMA_VERSION`]: the steps an older database needs, then the
/// current schema (`CREATE … IF NOT EXISTS`, so a no-op on an up-to-date database) and the
/// version, in one transaction.
pub(crate) fn to_current(conn: &mut Connection, bodies_dir: &Path) -> Result<(), StoreError> {
    let found = user_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaVersion {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < 0 {
        return Err(StoreError::Corrupt {
            what: "schema version",
            why: format!("user_version is {found}"),
        });
    }
    // 0 is a new (empty) database: it gets the current schema whole. An up-to-date one takes no
    // step's write lock.
    if found > 0 {
        for step in STEPS.iter().filter(|s| s.to > found) {
            apply(conn, step, bodies_dir)?;
        }
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .op("schema")?;
    tx.execute_batch(include_str!("schema.sql")).op("schema")?;
    tx.execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION}"))
        .op("user_version")?;
    tx.commit().op("schema")
}

fn apply(conn: &mut Connection, step: &Step, bodies_dir: &Path) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .op("migrate")?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let version = user_version(&tx)?;
    if version >= step.to {
        return Ok(());
    }
    if version != step.to - 1 {
        return Err(StoreError::Corrupt {
            what: "schema version",
            why: format!("version {version} has no migration to {}", step.to),
        });
    }
    match step.run {
        Run::Sql(sql) => tx.execute_batch(sql).op("migrate")?,
        Run::Code(run) => run(&tx, bodies_dir)?,
    }
    tx.execute_batch(&format!("PRAGMA user_version={}", step.to))
        .op("migrate")?;
    tx.commit().op("migrate")?;
    tracing::info!(
        from = version,
        to = step.to,
        step = step.what,
        "migrated the store's schema"
    );
    Ok(())
}

/// Step 16: `migrations/0016_tiebreak_holds.sql`.
fn tiebreak_holds(tx: &Transaction<'_>, _bodies_dir: &Path) -> Result<(), StoreError> {
    add_column(
        tx,
        "tiebreak_fetches",
        "held_until_ms",
        include_str!("migrations/0016_tiebreak_holds.sql"),
    )
}

/// Step 18: `migrations/0018_validator_checks.sql`.
fn validator_checks(tx: &Transaction<'_>, _bodies_dir: &Path) -> Result<(), StoreError> {
    add_column(
        tx,
        "cross_checks",
        "validator_minhash",
        include_str!("migrations/0018_validator_checks.sql"),
    )
}

/// Step 19: `migrations/0019_node_networks.sql`.
fn node_networks(tx: &Transaction<'_>, _bodies_dir: &Path) -> Result<(), StoreError> {
    add_column(
        tx,
        "nodes",
        "network",
        include_str!("migrations/0019_node_networks.sql"),
    )
}

/// Step 20: `migrations/0020_judging_given_back.sql`.
fn judging_given_back(tx: &Transaction<'_>, _bodies_dir: &Path) -> Result<(), StoreError> {
    add_column(
        tx,
        "nodes",
        "judging_given_back_ms",
        include_str!("migrations/0020_judging_given_back.sql"),
    )
}

/// Step 21: `migrations/0021_node_record_counts.sql`, then every node's counts recounted.
fn node_record_counts(tx: &Transaction<'_>, _bodies_dir: &Path) -> Result<(), StoreError> {
    add_column(
        tx,
        "nodes",
        "records_revoked",
        include_str!("migrations/0021_node_record_counts.sql"),
    )?;
    tx.execute_batch(include_str!(
        "migrations/0021_node_record_counts_recount.sql"
    ))
    .op("migrate")
}

/// Step 23: `migrations/0023_node_suspensions.sql` (both columns come together).
fn node_suspensions(tx: &Transaction<'_>, _bodies_dir: &Path) -> Result<(), StoreError> {
    add_column(
        tx,
        "nodes",
        "suspended_at_ms",
        include_str!("migrations/0023_node_suspensions.sql"),
    )
}

/// Step 24: `migrations/0024_request_record_counts.sql`, then every request's records counted
/// (the trigger that keeps them in step comes with `schema.sql`, after the steps).
fn request_record_counts(tx: &Transaction<'_>, _bodies_dir: &Path) -> Result<(), StoreError> {
    add_column(
        tx,
        "crawl_requests",
        "records_accepted",
        include_str!("migrations/0024_request_record_counts.sql"),
    )?;
    tx.execute_batch(include_str!(
        "migrations/0024_request_record_counts_recount.sql"
    ))
    .op("migrate")
}

/// Runs `sql`, which adds `column` to `table`, unless the column is there already (a database of
/// the version before made from the current schema, as the tests make older versions).
fn add_column(
    tx: &Transaction<'_>,
    table: &str,
    column: &str,
    sql: &str,
) -> Result<(), StoreError> {
    let present: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
            params![table, column],
            |r| r.get(0),
        )
        .op("migrate")?;
    if present == 0 {
        tx.execute_batch(sql).op("migrate")?;
    }
    Ok(())
}

/// Versions 12 -> 13 (`minhash/v2`) and 16 -> 17 (`minhash/v3`): every stored MinHash signature
/// recomputed from its record's stored text by this build's `MinHash::of` (`dedup.rs`), so that
/// old and new records compare. (A database older than 13 is recomputed twice on its way up, the
/// first time already under the current version: the same result, for one more pass.) A record
/// stored without its text (the quality rules' rejections keep none) gets an empty signature,
/// which compares with nothing: a cross-check whose earlier fetch has none stays open. A stored
/// body that is damaged or is not its record stops the step (and the store's opening) with an
/// error naming it; the database stays at the version before the step.
fn recompute_signatures(tx: &Transaction<'_>, bodies_dir: &Path) -> Result<(), StoreError> {
    /// Rows read at a time (a pre-version-9 row carries its record, ~6 KB).
    const CHUNK: i64 = 4096;
    type Row = (
        i64,
        Vec<u8>,
        Option<Vec<u8>>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let mut reader = bodies::Reader::new(bodies_dir);
    let mut select = tx
        .prepare(
            "SELECT seq, record_id, record_json, body_segment, body_offset, body_len
               FROM records WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .op("recompute_signatures")?;
    let mut update = tx
        .prepare("UPDATE records SET minhash = ?2 WHERE seq = ?1")
        .op("recompute_signatures")?;
    let (mut after, mut with_text, mut without) = (i64::MIN, 0u64, 0u64);
    loop {
        let rows: Vec<Row> = select
            .query_map(params![after, CHUNK], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .op("recompute_signatures")?
            .collect::<Result<_, _>>()
            .op("recompute_signatures")?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.0;
        for (seq, id, json, segment, offset, len) in rows {
            let json = match (json, segment, offset, len) {
                (Some(json), ..) => Some(json),
                (None, Some(segment), Some(offset), Some(len)) => Some(reader.read(BodyAt {
                    segment,
                    offset,
                    len,
                })?),
                _ => None,
            };
            let signature = match json {
                Some(json) => {
                    let record = bodies::check(&json, &digest_from(&id, "record id")?)?;
                    with_text += 1;
                    MinHash::of(&record.text).to_bytes()
                }
                None => {
                    without += 1;
                    Vec::new()
                }
            };
            update
                .execute(params![seq, signature])
                .op("recompute_signatures")?;
        }
    }
    tracing::info!(
        recomputed = with_text,
        without_text = without,
        "near-duplicate signatures recomputed from the stored texts"
    );
    Ok(())
}

pub(super) fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .op("user_version")
}

/// Turns a database of the current shape back into version 16's: signatures under `minhash/v2`,
/// which stand in here as 224 zero bytes (the step to 17 must not read them).
#[cfg(test)]
pub(crate) fn back_to_version_16(conn: &Connection) {
    #![allow(clippy::unwrap_used)]
    conn.execute_batch(
        "UPDATE records SET minhash = zeroblob(224) WHERE length(minhash) > 0;
         PRAGMA user_version=16;",
    )
    .unwrap();
}

/// Turns a database of the current shape back into version 12's: signatures under `minhash/v1`,
/// which stand in here as 448 zero bytes (the step to 13 must not read them).
#[cfg(test)]
pub(crate) fn back_to_version_12(conn: &Connection) {
    #![allow(clippy::unwrap_used)]
    conn.execute_batch("UPDATE records SET minhash = zeroblob(448); PRAGMA user_version=12;")
        .unwrap();
}

/// Turns a database of the current shape back into version 11's: every record's quality scores
/// as JSON in `quality_json` (those stored compactly are converted), no `quality` column.
#[cfg(test)]
pub(crate) fn back_to_version_11(conn: &Connection) {
    #![allow(clippy::unwrap_used)]
    back_to_version_12(conn);
    let compact: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT seq, quality FROM records WHERE quality IS NOT NULL")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (seq, quality) in compact {
        let json =
            serde_json::to_string(&crate::quality::decode_scores(&quality).unwrap()).unwrap();
        conn.execute(
            "UPDATE records SET quality_json = ?2 WHERE seq = ?1",
            rusqlite::params![seq, json],
        )
        .unwrap();
    }
    conn.execute_batch("ALTER TABLE records DROP COLUMN quality; PRAGMA user_version=11;")
        .unwrap();
}

/// Turns a database of the current shape back into version 10's: `records` keyed by
/// `record_id` (no `seq`) with the `(epoch, record_id)` export index of version 9, and
/// `cross_checks` without the records' seqs. Rows keep their rowids.
#[cfg(test)]
pub(crate) fn back_to_version_10(conn: &Connection) {
    #![allow(clippy::unwrap_used)]
    back_to_version_11(conn);
    conn.execute_batch(
        "ALTER TABLE cross_checks DROP COLUMN primary_seq;
         ALTER TABLE cross_checks DROP COLUMN check_seq;
         CREATE TABLE records_v10 (
             record_id       BLOB PRIMARY KEY,
             batch_id        BLOB NOT NULL,
             node            TEXT NOT NULL,
             lease_id        TEXT NOT NULL,
             url             TEXT NOT NULL,
             role            TEXT NOT NULL,
             epoch           INTEGER NOT NULL,
             received_at_ms  INTEGER NOT NULL,
             verdict         TEXT NOT NULL,
             reason          TEXT NOT NULL,
             points          INTEGER NOT NULL,
             text_key        BLOB NOT NULL,
             minhash         BLOB NOT NULL,
             quality_json    TEXT NOT NULL,
             cluster_size    INTEGER NOT NULL DEFAULT 1,
             dup_of          BLOB,
             record_json     BLOB,
             token_count     INTEGER,
             body_segment    INTEGER,
             body_offset     INTEGER,
             body_len        INTEGER
         );
         INSERT INTO records_v10(rowid, record_id, batch_id, node, lease_id, url, role, epoch,
                                 received_at_ms, verdict, reason, points, text_key, minhash,
                                 quality_json, cluster_size, dup_of, record_json, token_count,
                                 body_segment, body_offset, body_len)
             SELECT seq, record_id, batch_id, node, lease_id, url, role, epoch, received_at_ms,
                    verdict, reason, points, text_key, minhash, quality_json, cluster_size,
                    dup_of, record_json, token_count, body_segment, body_offset, body_len
               FROM records;
         DROP TABLE records;
         ALTER TABLE records_v10 RENAME TO records;
         CREATE INDEX records_epoch ON records(epoch, record_id)
             WHERE verdict = 'accepted' AND role = 'primary';
         CREATE INDEX records_time ON records(received_at_ms);
         PRAGMA user_version=10;",
    )
    .unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use std::collections::BTreeMap;

    fn table_sql(conn: &Connection, name: &str) -> Option<String> {
        conn.query_row(
            "SELECT sql FROM sqlite_master WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .ok()
    }

    /// Makes `path` a version 1 database: the current schema with version 1's `lsh` table (and
    /// no `records_bands`), the index on text keys of versions 1 to 7, version 1's task and lease
    /// indexes, and `records` without version 5's token counts.
    fn make_v1(path: &std::path::Path, rows: &[(i64, i64, u8)]) {
        drop(Store::open_file(path).unwrap());
        let conn = Connection::open(path).unwrap();
        back_to_version_10(&conn);
        conn.execute_batch(
            "CREATE TABLE lsh (band INTEGER NOT NULL, key INTEGER NOT NULL, record_id BLOB NOT NULL);
             CREATE INDEX lsh_key ON lsh(band, key);
             DROP INDEX tasks_queued;
             DROP INDEX leases_open_expiry;
             DROP INDEX leases_open_node;
             CREATE INDEX tasks_queue ON tasks(domain, state, id);
             CREATE INDEX leases_open ON leases(state, expires_at_ms);
             CREATE INDEX leases_node ON leases(node, state);
             DROP INDEX domains_idle_order;
             CREATE INDEX records_text_key ON records(text_key)
                 WHERE verdict = 'accepted' AND role = 'primary';
             ALTER TABLE records DROP COLUMN token_count;
             ALTER TABLE records DROP COLUMN body_segment;
             ALTER TABLE records DROP COLUMN body_offset;
             ALTER TABLE records DROP COLUMN body_len;
             DROP TABLE body_segments;
             PRAGMA user_version=1;",
        )
        .unwrap();
        for &(band, key, id) in rows {
            conn.execute(
                "INSERT INTO lsh(band, key, record_id) VALUES (?1, ?2, ?3)",
                rusqlite::params![band, key, [id; 32].as_slice()],
            )
            .unwrap();
        }
    }

    /// A new database made by [`Store::open_file`], and a plain connection to it.
    fn new_database() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        drop(Store::open_file(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        (dir, path, conn)
    }

    #[test]
    fn a_new_database_gets_the_current_schema() {
        let (_dir, _, conn) = new_database();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        assert_eq!(table_sql(&conn, "lsh"), None, "bands are kept in memory");
        assert_eq!(
            table_sql(&conn, "records_text_key"),
            None,
            "so are text keys"
        );
        assert_eq!(
            table_sql(&conn, "records_bands"),
            None,
            "the index is rebuilt from the table itself"
        );
    }

    /// Every step from version 1 on, in order, ends at the current schema: the `lsh` table of
    /// versions 1 to 6 (reshaped by step 2) is gone at 7.
    #[test]
    fn a_version_1_database_reaches_the_current_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        // (0, 7) twice: step 2 keys its table by (band, key) and must keep one of them for the
        // steps after it to run.
        make_v1(
            &path,
            &[(0, 7, 0xA1), (3, -9, 0xB2), (0, 7, 0xC3), (13, 7, 0xC3)],
        );
        drop(Store::open_file(&path).unwrap());

        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        assert_eq!(
            table_sql(&conn, "lsh"),
            None,
            "version 7 drops the band table"
        );
        assert_eq!(table_sql(&conn, "lsh_key"), None, "the old index is gone");
        assert_eq!(table_sql(&conn, "lsh_v2"), None);
        assert_eq!(
            table_sql(&conn, "records_bands"),
            None,
            "version 9 drops the covering index versions 7 and 8 built"
        );
        assert_eq!(table_sql(&conn, "records_text_key"), None);
        assert_eq!(
            table_sql(&conn, "records_epoch"),
            None,
            "version 10 drops the export index keyed by record id"
        );
        assert!(
            table_sql(&conn, "records_export")
                .unwrap()
                .contains("ON records(epoch)"),
            "and keys it by epoch alone"
        );
        assert!(
            table_sql(&conn, "records").unwrap().contains("token_count"),
            "version 5 adds token counts"
        );
        let records = table_sql(&conn, "records").unwrap();
        for column in ["body_segment", "body_offset", "body_len"] {
            assert!(records.contains(column), "version 9 adds {column}");
        }
        assert!(table_sql(&conn, "body_segments").is_some(), "and its table");
        for old in ["tasks_queue", "leases_open", "leases_node"] {
            assert_eq!(table_sql(&conn, old), None, "{old} is dropped");
        }
        for new in [
            "tasks_queued",
            "leases_open_expiry",
            "leases_open_node",
            "domains_idle_order",
        ] {
            assert!(table_sql(&conn, new).unwrap().contains(" WHERE "), "{new}");
        }
        drop(conn);
        // Opening again changes nothing.
        drop(Store::open_file(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn version_5_triggers_are_dropped_and_the_pending_counter_recounted() {
        let (_dir, path, conn) = new_database();
        crate::store::bodies::back_to_version_8(&path);
        conn.execute_batch(
            "INSERT INTO domains(domain, queued, active_leases) VALUES ('a.example', 3, 1),
                                                                 ('b.example', 0, 2);
             UPDATE counters SET value = 999 WHERE name = 'pending';
             CREATE TRIGGER domains_pending_insert AFTER INSERT ON domains
             BEGIN
                 UPDATE counters SET value = value + NEW.queued + NEW.active_leases
                  WHERE name = 'pending';
             END;
             CREATE TRIGGER domains_pending_update AFTER UPDATE OF queued, active_leases ON domains
             BEGIN
                 UPDATE counters SET value = value + (NEW.queued + NEW.active_leases)
                                                   - (OLD.queued + OLD.active_leases)
                  WHERE name = 'pending';
             END;
             CREATE TRIGGER domains_pending_delete AFTER DELETE ON domains
             BEGIN
                 UPDATE counters SET value = value - (OLD.queued + OLD.active_leases)
                  WHERE name = 'pending';
             END;
             PRAGMA user_version=5;",
        )
        .unwrap();
        drop(conn);
        drop(Store::open_file(&path).unwrap());

        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        for trigger in [
            "domains_pending_insert",
            "domains_pending_update",
            "domains_pending_delete",
        ] {
            assert_eq!(table_sql(&conn, trigger), None, "{trigger} is dropped");
        }
        let pending: i64 = conn
            .query_row(
                "SELECT value FROM counters WHERE name = 'pending'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(pending, 6, "recounted from the domains, not kept at 999");
    }

    /// The plan SQLite picks for `sql`, one line per step.
    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = stmt.parameter_count();
        let params: Vec<i64> = vec![0; n];
        stmt.query_map(rusqlite::params_from_iter(params), |r| {
            r.get::<_, String>(3)
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .join("\n")
    }

    /// The partial indexes serve the queries the lease, expiry and node-limit paths run (a
    /// partial index is used only when the query names its state literally).
    #[test]
    fn live_row_indexes_serve_the_hot_queries() {
        let (_dir, _, conn) = new_database();
        for (sql, index) in [
            (super::super::jobs::DOMAIN_PAGE_TASK_SQL, "tasks_queued"),
            (
                super::super::jobs::DOMAIN_JUDGING_TASKS_SQL,
                "tasks_queued_judging",
            ),
            (
                super::super::jobs::DOMAIN_JUDGING_LIST_SQL,
                "tasks_queued_judging_excluded",
            ),
            (
                super::super::jobs::DOMAIN_JUDGING_LIST_FROM_SQL,
                "tasks_queued_judging_excluded",
            ),
            (
                super::super::jobs::DOMAIN_JUDGING_TASK_AFTER_SQL,
                "tasks_queued_judging",
            ),
            (
                super::super::jobs::DOMAIN_JUDGING_NTH_SQL,
                "tasks_queued_judging",
            ),
            (
                super::super::jobs::UNCLAIMED_JOBS_SQL,
                "tasks_queued_judging",
            ),
            (
                "SELECT lease_id, task_id, domain FROM leases
                  WHERE state = 'open' AND expires_at_ms < ?1",
                "leases_open_expiry",
            ),
            (
                "SELECT COUNT(*) FROM leases WHERE node = ?1 AND state = 'open'",
                "leases_open_node",
            ),
            (super::super::jobs::IDLE_DOMAINS_SQL, "domains_idle_order"),
            (super::super::jobs::READY_DOMAINS_SQL, "domains_ready_order"),
        ] {
            let plan = plan(&conn, sql);
            // The index's name as a word: not another index whose name starts with it.
            assert!(plan.split_whitespace().any(|w| w == index), "{sql}\n{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}\n{plan}");
        }
    }

    /// The dedup index's rebuild reads the records table in storage order: no sort, no index.
    #[test]
    fn the_band_index_rebuild_scans_the_records_in_storage_order() {
        let (_dir, _, conn) = new_database();
        let plan = plan(&conn, super::super::bands::LOAD_SQL);
        assert_eq!(plan, "SCAN records", "{plan}");
    }

    /// Tests a step that adds `column` to `table`: makes a database of version `from` (the
    /// current schema without the column, then `seed` run on it), opens it, and calls `check` on
    /// the result at the current version; then sets the version back to `from` and does it again,
    /// which finds the column there already (as a database made from the current schema at an
    /// older version has it) and must leave it as it is.
    fn adds_a_column(
        table: &str,
        column: &str,
        from: i64,
        seed: &str,
        check: impl Fn(&Connection),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("v{from}.db"));
        drop(Store::open_file(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "ALTER TABLE {table} DROP COLUMN {column}; {seed} PRAGMA user_version = {from};"
        ))
        .unwrap();
        let has_column = |conn: &Connection| -> bool {
            conn.query_row(
                "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
                [table, column],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
                == 1
        };
        assert!(!has_column(&conn), "{table}.{column} dropped");
        drop(conn);
        for _ in 0..2 {
            drop(Store::open_file(&path).unwrap());
            let conn = Connection::open(&path).unwrap();
            assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
            assert!(has_column(&conn), "{table}.{column} added");
            check(&conn);
            conn.execute_batch(&format!("PRAGMA user_version = {from};"))
                .unwrap();
        }
    }

    /// Version 16 adds the validator's hold to the disputes a version 15 database queued, which
    /// keep their rows; a database that has the column already is left as it is.
    #[test]
    fn version_16_adds_the_hold_to_queued_disputes() {
        adds_a_column(
            "tiebreak_fetches",
            "held_until_ms",
            15,
            "INSERT INTO tiebreak_fetches(check_id, url, domain, request_id, depth, queued_at_ms)
                  VALUES (7, 'http://a.example/p', 'a.example', 1, 0, 5);",
            |conn| {
                let row: (i64, Option<i64>) = conn
                    .query_row(
                        "SELECT check_id, held_until_ms FROM tiebreak_fetches",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .unwrap();
                assert_eq!(row, (7, None), "the queued dispute is kept, not held");
            },
        );
    }

    /// Version 18 adds the validator's signature to the cross-checks a version 17 database
    /// holds, which keep their rows; a database that has the column already is left as it is.
    #[test]
    fn version_18_adds_the_validators_signature_to_checks() {
        adds_a_column(
            "cross_checks",
            "validator_minhash",
            17,
            "INSERT INTO cross_checks(id, url, primary_record, primary_node, outcome,
                                      created_at_ms)
                  VALUES (7, 'http://a.example/p', x'01', 'n1', 'pending', 5);",
            |conn| {
                let row: (i64, String, Option<Vec<u8>>) = conn
                    .query_row(
                        "SELECT id, outcome, validator_minhash FROM cross_checks",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .unwrap();
                assert_eq!(row, (7, "pending".into(), None), "the check is kept");
            },
        );
    }

    /// Version 19 adds each node's network to the nodes a version 18 database holds, which keep
    /// their rows (network unknown until they next lease); a database that has the column
    /// already is left as it is.
    #[test]
    fn version_19_adds_the_nodes_networks() {
        adds_a_column(
            "nodes",
            "network",
            18,
            "INSERT INTO nodes(node, payout, client, registered_at_ms, last_seen_ms, credibility)
                  VALUES ('n1', 'p1', 'test', 5, 6, 0.25);",
            |conn| {
                let row: (String, String, Option<String>) = conn
                    .query_row("SELECT node, payout, network FROM nodes", [], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .unwrap();
                assert_eq!(row, ("n1".into(), "p1".into(), None), "the node is kept");
            },
        );
    }

    /// Version 23 adds the operator's suspension to the nodes of a version 22 database: none is
    /// suspended, and each keeps its row.
    #[test]
    fn version_23_adds_suspensions_and_suspends_nobody() {
        adds_a_column(
            "nodes",
            "suspended_at_ms",
            22,
            "ALTER TABLE nodes DROP COLUMN suspended_reason;
             INSERT INTO nodes(node, payout, client, registered_at_ms, last_seen_ms, credibility)
                  VALUES ('n1', 'p1', 'test', 5, 6, 0.25);",
            |conn| {
                type Row = (String, Option<i64>, Option<String>);
                let row: Row = conn
                    .query_row(
                        "SELECT node, suspended_at_ms, suspended_reason FROM nodes",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .unwrap();
                assert_eq!(row, ("n1".into(), None, None), "kept, not suspended");
            },
        );
    }

    /// Version 25 adds the nodes' check history to a version 24 database: empty (checks judged
    /// before are only in the nodes' counts), then written with each credibility change.
    #[test]
    fn version_25_adds_an_empty_check_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v24.db");
        drop(Store::open_file(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE node_judgements;
             INSERT INTO nodes(node, payout, client, registered_at_ms, last_seen_ms, credibility,
                               checks_passed)
                  VALUES ('n1', 'p1', 'test', 5, 6, 0.25, 4);
             INSERT INTO cross_checks(id, url, primary_record, primary_node, outcome,
                                      created_at_ms)
                  VALUES (1, 'https://a.example/', x'01', 'n1', 'pending', 5);
             PRAGMA user_version = 24;",
        )
        .unwrap();
        drop(conn);
        drop(Store::open_file(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        let count = |conn: &Connection| -> i64 {
            conn.query_row("SELECT COUNT(*) FROM node_judgements", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(&conn), 0);
        let tx = conn.unchecked_transaction().unwrap();
        super::super::nodes::apply_check(&tx, "n1", true, 1, 7).unwrap();
        tx.commit().unwrap();
        let row: (String, i64, i64, String, f64) = conn
            .query_row(
                "SELECT node, check_id, at_ms, verdict, credibility_before FROM node_judgements",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(row, ("n1".into(), 1, 7, "passed".into(), 0.25));
        let passed: i64 = conn
            .query_row("SELECT checks_passed FROM nodes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(passed, 5, "the count goes on from where it was");
    }

    /// Version 20 adds to each node of a version 19 database when it last gave back a check
    /// unfinished: never, for the nodes it holds, which keep their rows.
    #[test]
    fn version_20_adds_when_nodes_gave_back_checks() {
        adds_a_column(
            "nodes",
            "judging_given_back_ms",
            19,
            "INSERT INTO nodes(node, payout, client, registered_at_ms, last_seen_ms, credibility,
                               network)
                  VALUES ('n1', 'p1', 'test', 5, 6, 0.25, '198.51.100.0/24');",
            |conn| {
                let row: (String, Option<String>, Option<i64>) = conn
                    .query_row(
                        "SELECT node, network, judging_given_back_ms FROM nodes",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .unwrap();
                assert_eq!(
                    row,
                    ("n1".into(), Some("198.51.100.0/24".into()), None),
                    "the node is kept"
                );
            },
        );
    }

    /// SQL inserting record `i` of node `n1` (id, text key and URL numbered `i`) with `verdict`,
    /// `reason` and `epoch`.
    fn record_row(i: usize, verdict: &str, reason: &str, epoch: usize) -> String {
        format!(
            "INSERT INTO records(record_id, batch_id, node, lease_id, url, role, epoch,
                     received_at_ms, verdict, reason, points, text_key, minhash, quality_json)
             VALUES (x'{i:02x}', x'00', 'n1', 'l{i}', 'https://a.example/{i}', 'primary', {epoch},
                     0, '{verdict}', '{reason}', 0, x'{i:02x}', x'', '{{}}');"
        )
    }

    /// Version 21 counts every node's records by their verdict now: a version 20 database's
    /// counts (taken at ingest, blind to revocations) are recounted from its records, a node
    /// without records keeps zeros, and from then on a revocation moves a record between counts.
    /// Run again on a database that has the column, the step recounts to the same figures.
    #[test]
    fn version_21_counts_each_nodes_records_by_their_verdict_now() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v20.db");
        drop(Store::open_file(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let mut seed = String::from(
            "DROP TRIGGER records_revoked_count;
             ALTER TABLE nodes DROP COLUMN records_revoked;
             INSERT INTO nodes(node, payout, client, registered_at_ms, last_seen_ms, credibility,
                               records_accepted, records_duplicate, records_rejected)
                  VALUES ('n1', 'p1', 'test', 5, 6, 0.25, 3, 1, 1),
                         ('n2', 'p2', 'test', 5, 6, 0.25, 0, 0, 0);",
        );
        // n1's records now: two accepted, one duplicate, one rejected, one revoked (accepted at
        // ingest, which is why its old counts say three accepted).
        for (i, verdict) in ["accepted", "accepted", "duplicate", "rejected", "revoked"]
            .iter()
            .enumerate()
        {
            seed.push_str(&record_row(i, verdict, "ok", 1));
        }
        seed.push_str("PRAGMA user_version = 20;");
        conn.execute_batch(&seed).unwrap();
        drop(conn);
        let counts = |conn: &Connection, node: &str| -> [i64; 4] {
            conn.query_row(
                "SELECT records_accepted, records_duplicate, records_rejected, records_revoked
                   FROM nodes WHERE node = ?1",
                [node],
                |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]),
            )
            .unwrap()
        };
        for _ in 0..2 {
            drop(Store::open_file(&path).unwrap());
            let conn = Connection::open(&path).unwrap();
            assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
            assert_eq!(counts(&conn, "n1"), [2, 1, 1, 1]);
            assert_eq!(counts(&conn, "n2"), [0, 0, 0, 0]);
            conn.execute_batch("PRAGMA user_version = 20;").unwrap();
        }
        // The trigger is in place: revoking an accepted record and a duplicate moves each from
        // its own count; revoking a revoked record again moves nothing.
        drop(Store::open_file(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "UPDATE records SET verdict = 'revoked' WHERE verdict IN ('duplicate', 'revoked')
                OR seq = (SELECT MIN(seq) FROM records WHERE verdict = 'accepted');",
        )
        .unwrap();
        assert_eq!(counts(&conn, "n1"), [1, 0, 1, 3]);
        assert_eq!(counts(&conn, "n2"), [0, 0, 0, 0]);
    }

    /// Version 22 lists the records a version 21 database had revoked, in arrival order, and
    /// from then on the trigger logs each revocation as it happens (once: revoking a revoked
    /// record again logs nothing). Run again, the step lists nothing twice.
    #[test]
    fn version_22_lists_the_revocations_before_it_and_logs_those_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v21.db");
        drop(Store::open_file(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let mut seed = String::from(
            "DROP TRIGGER records_revocations_log;
             DROP TABLE revocations;",
        );
        for (i, (verdict, reason)) in [
            ("revoked", "failed_cross_check"),
            ("accepted", "ok"),
            ("revoked", "page_not_found"),
            ("accepted", "ok"),
        ]
        .iter()
        .enumerate()
        {
            seed.push_str(&record_row(i, verdict, reason, i));
        }
        seed.push_str("PRAGMA user_version = 21;");
        conn.execute_batch(&seed).unwrap();
        drop(conn);
        let logged = |conn: &Connection| -> Vec<(Vec<u8>, String, i64, String)> {
            let mut st = conn
                .prepare(
                    "SELECT record_id, url, epoch, reason FROM revocations
                      WHERE node = 'n1' ORDER BY seq",
                )
                .unwrap();
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let before = vec![
            (
                vec![0],
                "https://a.example/0".to_string(),
                0,
                "failed_cross_check".to_string(),
            ),
            (
                vec![2],
                "https://a.example/2".to_string(),
                2,
                "page_not_found".to_string(),
            ),
        ];
        for _ in 0..2 {
            drop(Store::open_file(&path).unwrap());
            let conn = Connection::open(&path).unwrap();
            assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
            assert_eq!(logged(&conn), before);
            conn.execute_batch("PRAGMA user_version = 21;").unwrap();
        }
        drop(Store::open_file(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "UPDATE records SET verdict = 'revoked', reason = 'failed_cross_check'
              WHERE record_id = x'03' OR record_id = x'00';",
        )
        .unwrap();
        let after = logged(&conn);
        assert_eq!(after.len(), 3, "{after:?}");
        assert_eq!(after[..2], before);
        assert_eq!(
            after[2],
            (
                vec![3],
                "https://a.example/3".to_string(),
                3,
                "failed_cross_check".to_string()
            )
        );
    }

    /// The index of the checks each node said had no page (`cross_checks_unfound`, which the
    /// lease reads) needs no version step: the current schema, run at every open, makes it in a
    /// database that lacks it, which keeps its checks.
    #[test]
    fn a_database_without_the_unfound_index_gets_it_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v20.db");
        drop(Store::open_file(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP INDEX cross_checks_unfound;
             INSERT INTO cross_checks(url, primary_record, primary_node, check_node, outcome,
                                      created_at_ms)
                  VALUES ('https://a.example/', x'01', 'p', 'c', 'unfound', 1);",
        )
        .unwrap();
        drop(conn);
        drop(Store::open_file(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        let plan: Vec<String> = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN {}",
                crate::store::jobs::UNSETTLED_UNFOUND
            ))
            .unwrap()
            .query_map(["c"], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|p| p.contains("cross_checks_unfound")),
            "{plan:?}"
        );
        let kept: (String, String) = conn
            .query_row("SELECT check_node, outcome FROM cross_checks", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(kept, ("c".into(), "unfound".into()));
    }

    #[test]
    fn a_newer_database_is_refused_untouched() {
        let (_dir, path, conn) = new_database();
        conn.execute_batch("PRAGMA user_version=99").unwrap();
        drop(conn);
        let err = Store::open_file(&path).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::SchemaVersion {
                    found: 99,
                    supported: SCHEMA_VERSION
                }
            ),
            "{err}"
        );
        assert_eq!(err.code(), "store_schema_version");
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 99);
    }

    #[test]
    fn a_version_without_a_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        make_v1(&path, &[]);
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version=-3")
            .unwrap();
        let err = Store::open_file(&path).unwrap_err();
        assert_eq!(err.code(), "store_corrupt", "{err}");
    }

    /// Version 12 keeps the scores stored before it as JSON and reads them back bit for bit;
    /// records stored after it keep theirs compactly.
    #[test]
    fn version_12_keeps_old_scores_as_json_and_stores_new_ones_compactly() {
        let dir = tempfile::tempdir().unwrap();
        crate::testkit::fill_store(dir.path(), 6).unwrap();
        let path = dir.path().join(crate::store::DB_FILE);
        let exported = |store: &Store| {
            store
                .accepted_records(None)
                .unwrap()
                .into_iter()
                .map(|a| (a.record.id(), a.quality))
                .collect::<Vec<_>>()
        };
        let before = exported(&Store::open(dir.path()).unwrap());
        assert!(before.len() >= 5, "{before:?}");
        assert!(before.iter().all(|(_, q)| q.len() >= 15), "{before:?}");
        let conn = Connection::open(&path).unwrap();
        // Version 11 stored every record's scores as JSON.
        back_to_version_11(&conn);
        let json: String = conn
            .query_row("SELECT quality_json FROM records LIMIT 1", [], |r| r.get(0))
            .unwrap();
        assert!(json.starts_with("{\"c4_sentences\":"), "{json}");
        drop(conn);

        let store = Store::open(dir.path()).unwrap();
        // Old rows are read from their JSON: the same scores, bit for bit (serde_json's
        // `float_roundtrip` parses each to the nearest double).
        let read_back = exported(&store);
        assert_eq!(read_back, before);
        let node = gleaner_protocol::SecretKey::from_bytes(&[7; 32]);
        let validator = gleaner_protocol::SecretKey::from_bytes(&[200; 32]);
        let at = crate::testkit::FILL_T0 + 10_000;
        let jobs = crate::testkit::leased_jobs_on(&store, &node, "new", 1, at).unwrap();
        let text = crate::testkit::sample_text(1_000, 3_000);
        let new = crate::testkit::record_for(&node, &jobs[0], text.clone(), at);
        let new_id = new.id();
        crate::testkit::ingest_batch(&store, &node, &validator, vec![new], at + 1).unwrap();
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        let (json, quality): (String, Option<Vec<u8>>) = conn
            .query_row(
                "SELECT quality_json, quality FROM records ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(json, "");
        let quality = quality.unwrap();
        assert!(quality.len() < 200, "{} bytes", quality.len());
        let after = exported(&store);
        assert_eq!(after.len(), before.len() + 1);
        let old_rows: Vec<_> = after
            .iter()
            .filter(|(id, _)| *id != new_id)
            .cloned()
            .collect();
        assert_eq!(old_rows, read_back);
        let report = crate::quality::assess(&text, "en", &[]);
        let expected: BTreeMap<String, f64> = report
            .scores
            .iter()
            .map(|(k, v)| ((*k).to_string(), *v))
            .collect();
        assert_eq!(
            after.iter().find(|(id, _)| *id == new_id).map(|(_, q)| q),
            Some(&expected)
        );
    }

    /// Version 11 rebuilds `records` without its key on `record_id`: every row keeps its number
    /// (now `seq`), the open cross-checks learn the seqs of the records they compare, the export
    /// reads the same records in the same order, and ingest goes on.
    #[test]
    fn version_11_numbers_records_by_seq_and_drops_the_record_id_key() {
        let dir = tempfile::tempdir().unwrap();
        crate::testkit::fill_store(dir.path(), 12).unwrap();
        let path = dir.path().join(crate::store::DB_FILE);
        let exported = |store: &Store| -> Vec<(u64, gleaner_protocol::Digest)> {
            store
                .accepted_records(None)
                .unwrap()
                .iter()
                .map(|a| (a.epoch, a.record.id()))
                .collect()
        };
        let before = exported(&Store::open(dir.path()).unwrap());
        assert!(before.len() >= 10, "{before:?}");
        let conn = Connection::open(&path).unwrap();
        back_to_version_10(&conn);
        let rows = |conn: &Connection| -> Vec<(i64, Vec<u8>)> {
            conn.prepare("SELECT rowid, record_id FROM records ORDER BY rowid")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let old_rows = rows(&conn);
        let (first, third) = (&old_rows[0], &old_rows[2]);
        conn.execute(
            "INSERT INTO cross_checks(url, primary_record, primary_node, check_record, check_node,
                                      outcome, created_at_ms)
             VALUES ('https://a.example/', ?1, 'p', ?2, 'c', 'disputed', 0),
                    ('https://b.example/', ?3, 'p', NULL, NULL, 'pending', 0)",
            rusqlite::params![first.1, third.1, third.1],
        )
        .unwrap();
        drop(conn);

        let store = Store::open(dir.path()).unwrap();
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        assert_eq!(rows(&conn), old_rows, "every row keeps its number");
        assert!(
            table_sql(&conn, "records")
                .unwrap()
                .contains("seq             INTEGER PRIMARY KEY")
        );
        let indexes: Vec<(String, Option<String>)> = conn
            .prepare(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let names: Vec<&str> = indexes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 2, "{indexes:?}");
        assert!(names.contains(&"records_export") && names.contains(&"records_time"));
        let seqs: Vec<(Option<i64>, Option<i64>)> = conn
            .prepare("SELECT primary_seq, check_seq FROM cross_checks ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            seqs,
            vec![(Some(first.0), Some(third.0)), (Some(third.0), None)]
        );
        assert_eq!(
            exported(&store),
            before,
            "the same records in the same order"
        );
        // The dedup index rebuilt from the new table still finds the stored texts.
        let node = gleaner_protocol::SecretKey::from_bytes(&[7; 32]);
        let validator = gleaner_protocol::SecretKey::from_bytes(&[200; 32]);
        let at = crate::testkit::FILL_T0 + 10_000;
        let jobs = crate::testkit::leased_jobs_on(&store, &node, "again", 1, at).unwrap();
        let again =
            crate::testkit::record_for(&node, &jobs[0], crate::testkit::sample_text(0, 2_000), at);
        let outcome =
            crate::testkit::ingest_batch(&store, &node, &validator, vec![again], at + 1).unwrap();
        let crate::store::IngestOutcome::Fresh { receipt, .. } = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(receipt.verdicts[0].reason, "exact_duplicate", "{receipt:?}");
        // The duplicate's original, found by seq, counts it.
        let cluster: i64 = conn
            .query_row(
                "SELECT cluster_size FROM records WHERE record_id = ?1",
                [&old_rows[0].1],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(cluster, 2);
    }
}
