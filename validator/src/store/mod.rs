//! Persistent state: one SQLite database (`DIR/validator.db`, WAL) behind a small struct API,
//! with the records' bodies in append-only segment files beside it (`DIR/validator.db-bodies/`,
//! see `bodies`).
//!
//! **API boundary:** nothing outside this module sees SQL or `rusqlite`. Every operation is one
//! method taking and returning plain types, so a PostgreSQL implementation can replace this one
//! method by method when one server is not enough.
//!
//! Writes are serialised through one connection behind a mutex (SQLite has one writer anyway);
//! the server calls these methods from `spawn_blocking`. Read-only handles
//! ([`Store::open_read_only`]) are for exporters and admin tools running next to the server.

mod backup;
mod bands;
mod bodies;
mod check;
mod epochs;
mod group;
mod ingest;
mod jobs;
mod migrate;
mod nodes;
mod read;
mod sitemaps;
mod tiebreaks;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use gleaner_protocol::{Digest, PublicKey};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

pub use backup::BackupReport;
pub use bands::BandIndexSize;
pub use check::{CheckReport, MAX_LISTED_PROBLEMS, Problem};
pub use group::Group;
pub use ingest::{DedupKeys, Derived, IngestError, IngestOutcome, IngestParams, PreparedRecord};
pub(crate) use jobs::push_task;
pub use jobs::{
    ACTIVE_NODE_MS, CrawlCancelled, CrawlRequest, CrawlRequestAdded, JUDGING_PAUSE_MS,
    JudgingRules, LeaseParams, MAX_SEEDS_PER_REQUEST, MAX_TASK_ATTEMPTS, MAX_UNSETTLED_UNFOUND,
    ReportOutcome, UNCLAIMABLE_WAIT_MS,
};
pub use nodes::{
    CheckVerdict, Judgement, MAX_SUSPENSION_REASON_BYTES, Network, NodeResumed, NodeStanding,
    NodeSuspended,
};
pub use read::{
    ACCEPTED_PAGE_ROWS, AcceptedRecord, CrawlProgress, EpochSummary, LedgerEntry, NetworkStats,
    NodePage, NodeRow, ReasonCount, RevocationEntry,
};
pub use sitemaps::{
    MAX_CHILD_SITEMAPS, MAX_SITEMAP_DEPTH, SitemapApplied, SitemapJob, SitemapOutcome,
    SitemapStatus,
};
pub use tiebreaks::{
    HeldTiebreak, TIEBREAK_HOLD_MS, TIEBREAK_MAX_WAIT_MS, TiebreakFetch, TiebreakSettled,
    UNFOUND_MAX_WAIT_MS, ValidatorFetch, no_page,
};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "validator.db";
/// File in the data directory locked by the process that serves (and so ingests into) it.
pub const SERVE_LOCK_FILE: &str = "serve.lock";

/// Held by the one process that ingests into a data directory; see [`Store::lock_for_serving`].
#[derive(Debug)]
pub struct ServeLock {
    _file: std::fs::File,
}

/// How long a connection waits for another process's write lock (admin CLI next to the server).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database error during {op}: {source}")]
    Sqlite {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("stored {what} is corrupt: {why}")]
    Corrupt { what: &'static str, why: String },
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaVersion { found: i64, supported: i64 },
    #[error("the store was opened read-only")]
    ReadOnly,
    #[error("the store's lock is poisoned by a panic in another thread")]
    Poisoned,
    #[error("the shared write transaction was abandoned: {why}")]
    GroupAborted { why: String },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("node {node} is suspended by this validator's operator: {reason}")]
    Suspended { node: String, reason: String },
    #[error("invalid {field}: {why}")]
    Invalid { field: &'static str, why: String },
    #[error("another process is serving {path}: it holds the lock on {lock}")]
    InUse { path: PathBuf, lock: PathBuf },
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Open { .. } => "store_open",
            StoreError::Sqlite { .. } => "store_error",
            StoreError::Corrupt { .. } => "store_corrupt",
            StoreError::SchemaVersion { .. } => "store_schema_version",
            StoreError::ReadOnly => "store_read_only",
            StoreError::Poisoned => "store_poisoned",
            StoreError::GroupAborted { .. } => "store_error",
            StoreError::NotFound { .. } => "not_found",
            StoreError::Suspended { .. } => "node_suspended",
            StoreError::Invalid { .. } => "invalid_request",
            StoreError::InUse { .. } => "store_in_use",
            StoreError::Io { .. } => "store_io",
        }
    }
}

/// Attaches an operation name to rusqlite errors.
pub(crate) trait Op<T> {
    fn op(self, op: &'static str) -> Result<T, StoreError>;
}

impl<T> Op<T> for Result<T, rusqlite::Error> {
    fn op(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { op, source })
    }
}

/// Statements kept prepared per connection. Ingest alone runs a few dozen distinct statements
/// per batch; with rusqlite's default of 16 the cache thrashes and every statement is parsed and
/// planned again each time.
const STATEMENT_CACHE_CAPACITY: usize = 256;
/// Read-only connections a writable store keeps beside its writer ([`Store::reader`]): the
/// submit path's replay check and the node and public reads (status, epochs, proofs, ledger,
/// statistics) share them, so a slow read holds up neither the writer nor more than one of them.
const READERS: usize = 4;
/// Page cache of the writing connection, in KiB (SQLite's negative `cache_size`): the indexes
/// ingest probes (records, leases, tasks, domains) stay in memory instead of being read back.
const WRITER_CACHE_KIB: i64 = 64 * 1024;
/// Write-ahead log size, in pages, past which a commit checkpoints (SQLite's default is 1,000,
/// ~4 MiB). Ingest dirties pages scattered over the indexes (a record's 14 LSH bands above all):
/// a 100-record batch's commit logged 1.0 MiB in an empty store and 4.6 MiB once 5,000 records
/// were stored, so with the default nearly every commit checkpointed and each dirty page went to
/// disk twice per commit, once into the log and once back into the database. At 10,000
/// (~40 MiB) a checkpoint writes a page back once for all the commits that dirtied it since the
/// last one. Figures in the validator README ("Where the store's writes went").
const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// `execute` and `query_row` through the connection's prepared-statement cache.
pub(crate) trait Cached {
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// Settings every connection to the database gets.
///
/// The query planner stability guarantee (QPSG) makes a statement's plan independent of the
/// values bound to it. Without it SQLite re-plans some cached statements on every new binding:
/// the lease's per-domain task query (`ORDER BY id` over the partial index `tasks_queued`) was
/// parsed and planned again for every domain it looked at, about a tenth of the writer's time
/// under load. No query here needs a plan chosen from its parameters' values.
fn prepare_connection(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).op("busy_timeout")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .op("enable_qpsg")?;
    Ok(())
}

/// A read-only connection to the database file at `path` (which must exist), prepared as every
/// connection is.
fn open_reading(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    prepare_connection(&conn)?;
    Ok(conn)
}

/// The validator's database.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    /// Read-only connections for lookups on the request path that must not wait for the
    /// writer's transaction and its fsync (WAL lets readers run beside a writer; each read sees
    /// the last commit). Empty exactly when the store is read-only: its one connection only
    /// reads.
    readers: Vec<Mutex<Connection>>,
    /// Where the next reader is looked for first, so that lookups spread over the readers.
    next_reader: AtomicUsize,
    /// The LSH band index, built from the records when a writer first needs it. Locked only
    /// while `conn` is held, after it.
    bands: Mutex<Option<bands::BandIndex>>,
    /// The index's size after the last group, readable without waiting for a write in progress.
    band_size: Mutex<Option<BandIndexSize>>,
    /// The record-body segment files' directory ([`bodies`]).
    bodies_dir: PathBuf,
    /// The size past which a body segment is closed ([`bodies::SEGMENT_LIMIT`]; tests lower it).
    segment_limit: u64,
}

impl Store {
    /// Opens (creating if needed) `DIR/validator.db` for reading and writing.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Open {
            path: data_dir.to_path_buf(),
            source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        })?;
        Self::open_file(&data_dir.join(DB_FILE))
    }

    /// Opens a database file for reading and writing, creating it and its schema if needed.
    pub fn open_file(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        prepare_connection(&conn)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .op("journal_mode")?;
        tracing::debug!(path = %path.display(), journal_mode = %mode, "opened store");
        // Durability: a receipt is signed and sent only after its transaction commits, and it
        // must not be issued for data a crash could lose. WAL with synchronous=NORMAL survives a
        // crash of the process but can lose the last commits on power loss (the WAL is fsynced
        // only at checkpoints), so the store runs synchronous=FULL: every commit fsyncs the WAL.
        // Group commit (`store::Group`) is what makes that affordable: under load one fsync
        // covers every batch and lease in the group.
        // temp_store=MEMORY keeps the savepoints' statement journals (group commit) off disk;
        // they only ever serve a rollback inside the open transaction. wal_autocheckpoint: see
        // WAL_AUTOCHECKPOINT_PAGES.
        conn.execute_batch(&format!(
            "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-{WRITER_CACHE_KIB};
             PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES};"
        ))
        .op("pragmas")?;
        migrate::to_current(&mut conn, &bodies::dir_for(path))?;
        conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('open_epoch', '1')",
            [],
        )
        .op("meta")?;
        let readers = (0..READERS)
            .map(|_| open_reading(path).map(Mutex::new))
            .collect::<Result<_, _>>()?;
        Ok(Store {
            conn: Mutex::new(conn),
            readers,
            next_reader: AtomicUsize::new(0),
            bands: Mutex::new(None),
            band_size: Mutex::new(None),
            bodies_dir: bodies::dir_for(path),
            segment_limit: bodies::SEGMENT_LIMIT,
        })
    }

    /// Opens `DIR/validator.db` read-only (the database must exist). Safe while a server writes.
    pub fn open_read_only(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join(DB_FILE);
        let conn = open_reading(&path)?;
        Ok(Store {
            conn: Mutex::new(conn),
            readers: Vec::new(),
            next_reader: AtomicUsize::new(0),
            bands: Mutex::new(None),
            band_size: Mutex::new(None),
            bodies_dir: bodies::dir_for(&path),
            segment_limit: bodies::SEGMENT_LIMIT,
        })
    }

    /// Claims `data_dir` for the process that serves it, until the returned lock is dropped (or
    /// the process ends). The near-duplicate index lives in the ingesting process's memory
    /// (`store/bands.rs`), so two servers ingesting into one store would each miss the other's
    /// records; a second claim, from any process, is refused (`store_in_use`). An advisory lock
    /// (`flock`) on `DIR/serve.lock`, released by the kernel when the process dies however it
    /// dies. Admin commands next to a server do not claim it: they do not ingest.
    pub fn lock_for_serving(data_dir: &Path) -> Result<ServeLock, StoreError> {
        let lock = data_dir.join(SERVE_LOCK_FILE);
        let io = |source: std::io::Error| StoreError::Open {
            path: lock.clone(),
            source: rusqlite::Error::ToSqlConversionFailure(Box::new(source)),
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(ServeLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse {
                path: data_dir.to_path_buf(),
                lock,
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// This store with body segments closed past `limit` bytes instead of [`bodies::SEGMENT_LIMIT`].
    #[cfg(test)]
    pub(crate) fn with_segment_limit(mut self, limit: u64) -> Self {
        self.segment_limit = limit;
        self
    }

    pub(crate) fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    /// A connection for a lookup that may see the state as of the last commit, without
    /// waiting for a write in progress: a free reader if there is one, else the next in turn
    /// (a read-only store has only its one connection).
    pub(crate) fn reader(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        let n = self.readers.len();
        let first = self.next_reader.fetch_add(1, Ordering::Relaxed) % n.max(1);
        let mut turn = self.readers.iter().cycle().skip(first).take(n);
        if let Some(free) = turn.clone().find_map(|r| r.try_lock().ok()) {
            return Ok(free);
        }
        match turn.next() {
            Some(next) => next.lock().map_err(|_| StoreError::Poisoned),
            None => self.conn(),
        }
    }

    pub(crate) fn writer(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        // Only a writable store opens connections just for reading.
        if self.readers.is_empty() {
            return Err(StoreError::ReadOnly);
        }
        self.conn()
    }

    /// The epoch currently open for crediting (epochs count from 1).
    pub fn open_epoch(&self) -> Result<u64, StoreError> {
        open_epoch(&*self.reader()?)
    }
}

pub(crate) fn open_epoch(conn: &Connection) -> Result<u64, StoreError> {
    let v: String = conn
        .query_row_cached("SELECT value FROM meta WHERE key = 'open_epoch'", [], |r| {
            r.get(0)
        })
        .op("open_epoch")?;
    v.parse().map_err(|_| StoreError::Corrupt {
        what: "open_epoch",
        why: v.clone(),
    })
}

pub(crate) fn key_from(s: &str, what: &'static str) -> Result<PublicKey, StoreError> {
    s.parse()
        .map_err(|e: gleaner_protocol::ProtocolError| StoreError::Corrupt {
            what,
            why: e.to_string(),
        })
}

pub(crate) fn digest_from(b: &[u8], what: &'static str) -> Result<Digest, StoreError> {
    let arr: [u8; 32] = b.try_into().map_err(|_| StoreError::Corrupt {
        what,
        why: format!("{} bytes, expected 32", b.len()),
    })?;
    Ok(Digest::from_bytes(arr))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn one_process_at_a_time_serves_a_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::lock_for_serving(dir.path()).unwrap();
        // flock conflicts between open files, so a second claim in this process stands for
        // one from another process.
        let err = Store::lock_for_serving(dir.path()).unwrap_err();
        assert_eq!(err.code(), "store_in_use", "{err}");
        assert!(err.to_string().contains(SERVE_LOCK_FILE), "{err}");
        drop(first);
        let _again = Store::lock_for_serving(dir.path()).unwrap();
    }

    /// A store opened read-only (for exporters and admin tools beside the server) reads but
    /// refuses every write with `store_read_only`; a writable store reads and writes.
    #[test]
    fn a_read_only_store_reads_and_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let node = gleaner_protocol::SecretKey::from_bytes(&[3; 32]).public();
        let writable = Store::open(dir.path()).unwrap();
        writable.register_node(&node, &node, "test", 0).unwrap();
        let read_only = Store::open_read_only(dir.path()).unwrap();
        assert!(read_only.is_registered(&node).unwrap());
        assert_eq!(read_only.receipt(&Digest::of(b"none")).unwrap(), None);
        let err = read_only
            .register_node(&node, &node, "test", 1)
            .unwrap_err();
        assert_eq!(err.code(), "store_read_only", "{err}");
        assert_eq!(read_only.writer().unwrap_err().code(), "store_read_only");
        assert!(writable.writer().is_ok());
    }

    /// Runs `read` on another thread while the writer's connection holds a write transaction
    /// open (after running `sql` in it, uncommitted), and returns its answer, or `None` if it
    /// did not come within 10 s (it waited for the writer). The transaction is committed after.
    pub(crate) fn read_during_a_write<T: Send + 'static>(
        store: &std::sync::Arc<Store>,
        sql: &'static str,
        read: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Option<T> {
        let (held, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || {
                // A bounded wait: a read that wrongly holds the writer's connection must fail
                // the test, not hang it.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                let conn = loop {
                    match store.conn.try_lock() {
                        Ok(conn) => break conn,
                        Err(_) if std::time::Instant::now() < deadline => {
                            std::thread::sleep(std::time::Duration::from_millis(5));
                        }
                        Err(_) => {
                            held.0.send(false).unwrap();
                            return;
                        }
                    }
                };
                conn.execute_batch("BEGIN IMMEDIATE").unwrap();
                conn.execute_batch(sql).unwrap();
                held.0.send(true).unwrap();
                release.1.recv().unwrap();
                conn.execute_batch("COMMIT").unwrap();
            })
        };
        if !held.1.recv().unwrap() {
            writer.join().unwrap();
            return None;
        }
        let (answer, got) = std::sync::mpsc::channel();
        {
            let store = store.clone();
            std::thread::spawn(move || answer.send(read(&store)));
        }
        let out = got.recv_timeout(std::time::Duration::from_secs(10)).ok();
        release.0.send(()).unwrap();
        writer.join().unwrap();
        out
    }

    /// Every node request asks whether its node is registered (once per node and server run);
    /// the answer comes from the last commit, not from behind the writer's open transaction.
    #[test]
    fn whether_a_node_is_registered_is_read_while_a_write_is_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::open(dir.path()).unwrap());
        let node = gleaner_protocol::SecretKey::from_bytes(&[4; 32]).public();
        store.register_node(&node, &node, "test", 0).unwrap();
        let found =
            read_during_a_write(&store, "DELETE FROM nodes", move |s| s.is_registered(&node));
        assert!(
            found.expect("answered while the write was open").unwrap(),
            "registered as of the last commit"
        );
        assert!(
            !store.is_registered(&node).unwrap(),
            "and the commit is seen after it"
        );
    }

    /// What nodes and the public read (a node's status and ledger, the epochs, statistics,
    /// `/healthz`) comes from the readers: it neither waits for the writer's open transaction
    /// nor for a reader busy with something else.
    #[test]
    fn node_and_public_reads_wait_neither_for_the_writer_nor_for_a_busy_reader() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::open(dir.path()).unwrap());
        let node = gleaner_protocol::SecretKey::from_bytes(&[6; 32]).public();
        store.register_node(&node, &node, "before", 0).unwrap();
        // One reader held, as by a slow read; the others still answer.
        let busy = {
            let store = store.clone();
            let (held, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
            let t = std::thread::spawn(move || {
                let _reader = store.reader().unwrap();
                held.0.send(()).unwrap();
                release.1.recv().unwrap();
            });
            held.1.recv().unwrap();
            (t, release.0)
        };
        let seen = read_during_a_write(
            &store,
            "UPDATE nodes SET client = 'during'; UPDATE meta SET value = '7' WHERE key = 'open_epoch'",
            move |s| {
                (
                    s.node(&node).unwrap().map(|n| n.client),
                    s.nodes().unwrap().len(),
                    s.node_standing(&node)
                        .unwrap()
                        .map(|st| (st.open_epoch, st.row.client, st.epoch_points)),
                    s.ledger(&node).unwrap().len(),
                    s.open_epoch().unwrap(),
                    s.epochs().unwrap().len(),
                    s.epoch(1).unwrap().is_none(),
                    s.epoch_proof(1, &node).unwrap().is_none(),
                    s.network_stats(0).unwrap().nodes_total,
                )
            },
        );
        busy.1.send(()).unwrap();
        busy.0.join().unwrap();
        assert_eq!(
            seen.expect("answered while the write was open and a reader was busy"),
            (
                Some("before".into()),
                1,
                Some((1, "before".into(), 0)),
                0,
                1,
                0,
                true,
                true,
                1
            ),
            "as of the last commit"
        );
        assert_eq!(
            store.open_epoch().unwrap(),
            7,
            "and the commit is seen after it"
        );
        assert_eq!(store.node(&node).unwrap().unwrap().client, "during");
    }

    #[test]
    fn the_writer_logs_ahead_fsyncs_every_commit_and_checkpoints_late() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let conn = store.conn().unwrap();
        let pragma = |name: &str| -> String {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .unwrap()
        };
        assert_eq!(pragma("journal_mode"), "wal");
        // 2 = FULL: a receipt is never issued for a commit that power loss could undo.
        assert_eq!(pragma("synchronous"), "2");
        assert_eq!(
            pragma("wal_autocheckpoint"),
            WAL_AUTOCHECKPOINT_PAGES.to_string()
        );
        assert_eq!(pragma("cache_size"), (-WRITER_CACHE_KIB).to_string());
    }
}
