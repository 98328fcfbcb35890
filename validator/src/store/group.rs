//! Group commit: several requests' writes in one SQLite transaction, each in its own savepoint.
//!
//! Committing is the dearest part of a small write (every touched page goes to the WAL), so the
//! server's writer runs all pending node writes (batch ingests, leases, failure reports,
//! releases, registrations) in one transaction and commits once.
//! Each operation runs inside `SAVEPOINT op … RELEASE op`; one that fails is rolled back to its
//! savepoint, so a refused batch still changes nothing while the others in the group stand.
//! Callers must not act on an operation's result (send a receipt, hand out a lease) until
//! [`Store::group`] has returned `Ok`, i.e. the shared commit is done.

use gleaner_protocol::api::{JobFailure, LeaseResponse};
use gleaner_protocol::{Digest, PublicKey, SecretKey};
use rusqlite::Connection;

use super::bands::BandIndex;
use super::bodies::Appender;
use super::ingest::{IngestError, IngestOutcome, IngestParams, PreparedRecord};
use super::jobs::{LeaseParams, ReportOutcome};
use super::nodes::{NodeResumed, NodeSuspended};
use super::{NodeRow, Op, Store, StoreError};

/// An open write transaction shared by several operations. See the module docs.
pub struct Group<'c> {
    conn: &'c Connection,
    /// The in-memory band index, changed in step with the transaction.
    bands: BandIndex,
    /// Appends record bodies; what it wrote is fsynced before the commit.
    bodies: Appender,
    /// Set when a savepoint could not be rolled back: the transaction's state is unknown, so
    /// nothing more runs in it and it is not committed.
    broken: Option<String>,
}

impl std::fmt::Debug for Group<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("broken", &self.broken)
            .finish()
    }
}

impl Group<'_> {
    /// Runs `f` in a savepoint: released when it returns `Ok`, rolled back when it returns `Err`.
    pub(super) fn savepoint<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&Connection, &mut BandIndex, &mut Appender) -> Result<T, E>,
    ) -> Result<T, E> {
        if let Some(why) = &self.broken {
            return Err(StoreError::GroupAborted { why: why.clone() }.into());
        }
        self.conn.execute_batch("SAVEPOINT op").op("savepoint")?;
        let mark = self.bands.mark();
        // A body written by an operation rolled back lies past its segment's committed length
        // (kept in the database), where the next append overwrites it.
        let out = f(self.conn, &mut self.bands, &mut self.bodies);
        if out.is_err() {
            self.bands.undo_to(mark);
        }
        let end = if out.is_ok() {
            self.conn.execute_batch("RELEASE op")
        } else {
            self.conn.execute_batch("ROLLBACK TO op; RELEASE op")
        };
        if let Err(e) = end {
            let why = format!("ending a savepoint failed: {e}");
            tracing::error!(error = %e, "group transaction aborted");
            self.broken = Some(why.clone());
            return Err(StoreError::GroupAborted { why }.into());
        }
        out
    }

    /// [`Store::ingest`] inside the group.
    pub fn ingest(
        &mut self,
        batch_id: Digest,
        node: &PublicKey,
        records: &[PreparedRecord],
        now_ms: i64,
        key: &SecretKey,
        p: &IngestParams,
    ) -> Result<IngestOutcome, IngestError> {
        self.savepoint(|conn, bands, bodies| {
            super::ingest::ingest_in(conn, bands, bodies, batch_id, node, records, now_ms, key, p)
        })
    }

    /// [`Store::lease`] inside the group.
    pub fn lease(
        &mut self,
        node: &PublicKey,
        max: u32,
        now_ms: i64,
        p: &LeaseParams,
    ) -> Result<LeaseResponse, StoreError> {
        self.savepoint(|conn, _, _| super::jobs::lease_in(conn, node, max, now_ms, p))
    }

    /// [`Store::register_node`] inside the group.
    pub fn register_node(
        &mut self,
        node: &PublicKey,
        payout: &PublicKey,
        client: &str,
        now_ms: i64,
    ) -> Result<NodeRow, StoreError> {
        self.savepoint(|conn, _, _| super::nodes::register_in(conn, node, payout, client, now_ms))
    }

    /// [`Store::report_failures`] inside the group.
    pub fn report_failures(
        &mut self,
        node: &PublicKey,
        failures: &[JobFailure],
        now_ms: i64,
        domain_delay_ms: i64,
        validator_fetches: bool,
    ) -> Result<ReportOutcome, StoreError> {
        self.savepoint(|conn, _, _| {
            super::jobs::report_in(
                conn,
                node,
                failures,
                now_ms,
                domain_delay_ms,
                validator_fetches,
            )
        })
    }

    /// [`Store::suspend_node`] inside the group.
    pub fn suspend_node(
        &mut self,
        node: &PublicKey,
        reason: &str,
        now_ms: i64,
    ) -> Result<NodeSuspended, StoreError> {
        self.savepoint(|conn, _, _| super::nodes::suspend_in(conn, node, reason, now_ms))
    }

    /// [`Store::resume_node`] inside the group.
    pub fn resume_node(&mut self, node: &PublicKey) -> Result<NodeResumed, StoreError> {
        self.savepoint(|conn, _, _| super::nodes::resume_in(conn, node))
    }

    /// [`Store::release`] inside the group.
    pub fn release(
        &mut self,
        node: &PublicKey,
        lease_ids: &[String],
        now_ms: i64,
    ) -> Result<ReportOutcome, StoreError> {
        self.savepoint(|conn, _, _| super::jobs::release_in(conn, node, lease_ids, now_ms))
    }
}

impl Store {
    /// Runs `f` with a [`Group`] in one write transaction and commits it. `Err` means nothing
    /// `f` did is stored (the transaction was not begun, a savepoint broke, or the commit failed).
    pub fn group<T>(&self, f: impl FnOnce(&mut Group<'_>) -> T) -> Result<T, StoreError> {
        let mut conn = self.writer()?;
        let mut slot = self.bands.lock().map_err(|_| StoreError::Poisoned)?;
        // Taken out for the group and put back after it; if a panic unwinds through `f`, the
        // slot stays empty, so no half-changed index is ever used.
        let bands = match slot.take() {
            Some(bands) => bands,
            None => BandIndex::load(&conn)?,
        };
        let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                *slot = Some(bands);
                return Err(e).op("group");
            }
        };
        let mut g = Group {
            conn: &tx,
            bands,
            bodies: Appender::new(self.bodies_dir.clone(), self.segment_limit),
            broken: None,
        };
        let out = f(&mut g);
        let Group {
            mut bands,
            mut bodies,
            broken,
            ..
        } = g;
        // The bodies are made durable before the rows that point at them.
        let done = match broken {
            Some(why) => Err(StoreError::GroupAborted { why }),
            None => bodies.sync().and_then(|()| tx.commit().op("group commit")),
        };
        match done {
            Ok(()) => bands.committed(),
            Err(_) => bands.undo_to(0),
        }
        if let Ok(mut size) = self.band_size.lock() {
            *size = Some(bands.size());
        }
        *slot = Some(bands);
        done.map(|()| out)
    }

    /// Builds the in-memory band index now rather than at the first ingest (the server calls
    /// this before it listens, so no request waits for it).
    pub fn load_band_index(&self) -> Result<(), StoreError> {
        self.group(|_| ())
    }

    /// The band index's size after the last write, once it is built (never waits for a write).
    pub fn band_index_size(&self) -> Option<super::BandIndexSize> {
        *self.band_size.lock().ok()?
    }
}
