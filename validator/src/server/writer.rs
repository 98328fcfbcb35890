//! The server's single writer for batch ingest and leases: requests queue on a channel, and one
//! thread runs everything pending in one shared transaction ([`Store::group`]), commits once and
//! only then answers each request. Under load many requests share a commit instead of paying
//! for one each; alone, a request waits for nothing but its own transaction.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::store::{Group, Store, StoreError};

use super::ApiError;

/// Most operations in one shared transaction: bounds how long the first of them waits for the
/// commit and how much one rollback-free group holds.
pub const MAX_GROUP: usize = 256;

/// Called once the group's commit is done (`Ok`) or failed (`Err`).
type Deliver = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;
/// Runs an operation inside the group and returns how to answer it after the commit.
type Job = Box<dyn for<'a, 'c> FnOnce(&'a mut Group<'c>) -> Deliver + Send>;

/// Handle to the writer thread; the thread ends when every handle is dropped.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Starts the writer thread over `store`.
    pub fn start(store: Arc<Store>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(&store, &rx))?;
        Ok(Writer { tx })
    }

    /// Runs `f` in the next group and returns its result once that group is committed, with
    /// how long the operation waited in the queue before its group started it. If the commit
    /// fails, the caller gets an error and `f`'s changes are not stored.
    pub async fn write<T, F>(&self, f: F) -> Result<(T, Duration), ApiError>
    where
        T: Send + 'static,
        F: for<'a, 'c> FnOnce(&'a mut Group<'c>) -> T + Send + 'static,
    {
        let (done, answer) = tokio::sync::oneshot::channel::<Result<(T, Duration), ApiError>>();
        let queued = Instant::now();
        let job: Job = Box::new(move |g| {
            let waited = queued.elapsed();
            let out = f(g);
            Box::new(move |committed| {
                let res = match committed {
                    Ok(()) => Ok((out, waited)),
                    Err(e) => Err(ApiError::internal(e.code(), e)),
                };
                // The request may have timed out and gone; nothing to tell then.
                let _ = done.send(res);
            })
        });
        self.tx
            .send(job)
            .map_err(|_| ApiError::new(503, "store_unavailable", "the store writer has stopped"))?;
        answer.await.map_err(|_| {
            ApiError::new(
                503,
                "store_unavailable",
                "the store writer dropped the request",
            )
        })?
    }
}

fn run(store: &Store, rx: &mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let n = jobs.len();
        let mut answers: Vec<Deliver> = Vec::with_capacity(n);
        let res = store.group(|g| {
            for job in jobs {
                answers.push(job(g));
            }
        });
        if let Err(e) = &res {
            tracing::error!(error = %e, operations = n, "group commit failed; nothing of it is stored");
        }
        for answer in answers {
            answer(res.as_ref().map(|_| ()));
        }
        tracing::trace!(operations = n, "group committed");
    }
    tracing::debug!("store writer stopped");
}
