//! The server's single writer for batch ingest and leases: requests queue on a channel, and one
//! thread runs everything pending in one shared transaction ([`Store::group`]), commits once and
//! only then answers each request. Under load many requests share a commit instead of paying
//! for one each; alone, a request waits for nothing but its own transaction.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
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
    queue: Arc<Queue>,
}

/// When each operation still waiting for its group was queued, oldest first: the channel's
/// order, since an operation is noted and sent under one lock, and the writer takes its note
/// off as it takes the operation into a group.
#[derive(Debug, Default)]
struct Queue(Mutex<VecDeque<Instant>>);

impl Queue {
    fn started(&self) {
        if let Ok(mut q) = self.0.lock() {
            q.pop_front();
        }
    }
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
        let queue = Arc::new(Queue::default());
        let taken = queue.clone();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(&store, &rx, &taken))?;
        Ok(Writer { tx, queue })
    }

    /// Operations waiting for a group now.
    pub fn queued(&self) -> usize {
        self.queue.0.lock().map_or(0, |q| q.len())
    }

    /// How long the oldest operation still waiting for a group has waited so far; `None` when
    /// none waits. Unlike the wait an operation reports once its group starts, this grows
    /// while the writer is stuck (a slow disk, an epoch close holding the database's write
    /// lock), so whoever reads it learns of a stall while it lasts.
    pub fn oldest_wait(&self) -> Option<Duration> {
        self.queue
            .0
            .lock()
            .ok()
            .and_then(|q| q.front().map(Instant::elapsed))
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
        {
            // Noted and sent under one lock, so that the notes keep the channel's order.
            let mut q = self.queue.0.lock().map_err(|_| {
                ApiError::new(503, "store_unavailable", "the writer queue is poisoned")
            })?;
            self.tx.send(job).map_err(|_| {
                ApiError::new(503, "store_unavailable", "the store writer has stopped")
            })?;
            q.push_back(queued);
        }
        answer.await.map_err(|_| {
            ApiError::new(
                503,
                "store_unavailable",
                "the store writer dropped the request",
            )
        })?
    }
}

fn run(store: &Store, rx: &mpsc::Receiver<Job>, queue: &Queue) {
    while let Ok(first) = rx.recv() {
        queue.started();
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => {
                    queue.started();
                    jobs.push(j);
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The queue's notes follow the operations: each waiting operation is counted until its
    /// group takes it, the oldest wait grows while the writer is held, and after many
    /// concurrent writes nothing is left noted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_queue_counts_what_waits_and_empties_when_the_writer_catches_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let writer = Writer::start(store).expect("writer");
        assert_eq!((writer.queued(), writer.oldest_wait()), (0, None));

        let (release, hold) = mpsc::channel::<()>();
        let (entered, inside) = tokio::sync::oneshot::channel::<()>();
        let holder = {
            let w = writer.clone();
            tokio::spawn(async move {
                w.write(move |_| {
                    let _ = entered.send(());
                    let _ = hold.recv();
                })
                .await
            })
        };
        inside.await.expect("the holder runs");
        let waiting: Vec<_> = (0..3)
            .map(|i| {
                let w = writer.clone();
                tokio::spawn(async move { w.write(move |_| i).await })
            })
            .collect();
        for _ in 0..5_000 {
            if writer.queued() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(writer.queued(), 3);
        let first = writer.oldest_wait().expect("an operation waits");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let later = writer.oldest_wait().expect("it still waits");
        assert!(
            later >= first + Duration::from_millis(20),
            "{first:?} then {later:?}"
        );

        release.send(()).expect("release");
        holder.await.expect("join").expect("held write");
        let mut outs = Vec::new();
        for w in waiting {
            let (out, waited) = w.await.expect("join").expect("write");
            assert!(waited >= Duration::from_millis(20), "{waited:?}");
            outs.push(out);
        }
        outs.sort_unstable();
        assert_eq!(outs, [0, 1, 2]);

        let many: Vec<_> = (0..200)
            .map(|i| {
                let w = writer.clone();
                tokio::spawn(async move { w.write(move |_| i).await })
            })
            .collect();
        for w in many {
            w.await.expect("join").expect("write");
        }
        assert_eq!((writer.queued(), writer.oldest_wait()), (0, None));
    }
}
