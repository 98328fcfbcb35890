//! Admission control for ingest: the CPU-heavy part of a submit (decode, verify, quality,
//! MinHash) runs for at most `workers` batches at once, first come first served, and while
//! batches queue for it longer than a target, new leases are deferred ("no jobs now, ask again
//! in a moment") instead of handed out.
//!
//! Why at the lease: every lease becomes a submit a little later. A validator handing out work
//! faster than it can verify it builds a queue in front of ingest, and every node's submit
//! waits in it (with 1,000 nodes all submitting, seconds). Deferring new leases instead keeps
//! the queue short, so a submit is answered in about one batch's verification time, and a node
//! does not spend its user's bandwidth fetching pages whose records would only queue (or see
//! their leases expire). Work already leased is never refused: a submit always gets in line.
//!
//! Two signals. The first is CoDel's: the time the last batch to start waited for a worker
//! (queue length alone would mistake a burst of tiny batches for a backlog; the wait is what a
//! node feels). It catches a queue once it has formed. The second keeps one from forming when
//! many nodes ask at once (a validator starting with a thousand nodes waiting): jobs are leased
//! from a token bucket that fills at the rate the workers check records (measured, a moving
//! average of each batch's time per record) and holds at most `target` worth of checking. A
//! node that keeps its pages seconds before submitting is not slowed by it unless the network
//! as a whole leases faster than the validator can check, which would only build a queue.
//!
//! The store's writer is the third place a submit can wait, and the lease handler also defers
//! while the oldest operation queued for it has waited longer than the same target
//! ([`IngestGate::writer_behind`], fed from `writer.rs`): a lease goes through the writer too, so
//! deferred it answers at once instead of queueing in front of the batches already submitted.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The ingest workers and the lease gate (see the module docs).
#[derive(Debug)]
pub struct IngestGate {
    permits: Arc<Semaphore>,
    workers: usize,
    /// Batches waiting for a worker.
    waiting: AtomicUsize,
    /// How long the last batch to get a worker waited, microseconds.
    last_wait_us: AtomicU64,
    /// Leases are deferred while batches wait and the last one waited longer than this, and
    /// the bucket holds this much checking; `None` never defers.
    target: Option<Duration>,
    /// Moving average of a batch's checking time per record, nanoseconds (wall time in a
    /// worker, so what the machine really gives it).
    record_ns: AtomicU64,
    /// Jobs that may be leased now.
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    filled_at: Instant,
}

/// The time per record assumed until batches have been measured: slow, so that a validator
/// starting under a crowd of nodes leases cautiously until it knows its speed.
const INITIAL_RECORD_NS: u64 = 4_000_000;
/// Fewest jobs the bucket holds, whatever the measured speed: a validator with a handful of
/// nodes never makes one wait for a lease while its workers idle.
const MIN_BUCKET: f64 = 128.0;
/// Weight of each batch in the moving average of time per record.
const RECORD_NS_WEIGHT: f64 = 0.1;

/// A worker slot for one batch's checks; released when dropped.
#[derive(Debug)]
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
    /// How long the batch waited for its slot.
    pub waited: Duration,
    at: Instant,
}

impl Admitted {
    /// How long the slot has been held.
    pub fn held(&self) -> Duration {
        self.at.elapsed()
    }
}

/// Counts a batch as waiting until it is admitted or its request goes away.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl IngestGate {
    /// `workers` batches checked at once (at least one); leases deferred past `target` of
    /// waiting (`None`: never).
    pub fn new(workers: usize, target: Option<Duration>) -> Self {
        let workers = workers.max(1);
        IngestGate {
            permits: Arc::new(Semaphore::new(workers)),
            workers,
            waiting: AtomicUsize::new(0),
            last_wait_us: AtomicU64::new(0),
            target,
            record_ns: AtomicU64::new(INITIAL_RECORD_NS),
            bucket: Mutex::new(Bucket {
                tokens: bucket_size(workers, INITIAL_RECORD_NS, target),
                filled_at: Instant::now(),
            }),
        }
    }

    /// Records checked per second at the measured speed, all workers together.
    pub fn records_per_second(&self) -> f64 {
        records_per_second(self.workers, self.record_ns.load(Ordering::Relaxed))
    }

    /// Most jobs the bucket holds now.
    fn bucket_size(&self) -> f64 {
        bucket_size(
            self.workers,
            self.record_ns.load(Ordering::Relaxed),
            self.target,
        )
    }

    /// Notes that a batch of `records` held its worker slot for `took`.
    pub fn checked(&self, records: usize, took: Duration) {
        if records == 0 {
            return;
        }
        let per = took.as_nanos() as f64 / records as f64;
        let old = self.record_ns.load(Ordering::Relaxed) as f64;
        let new = old + RECORD_NS_WEIGHT * (per - old);
        self.record_ns.store(new.max(1.0) as u64, Ordering::Relaxed);
    }

    /// How many of `want` jobs a lease may hand out now, taken from the bucket (give back what
    /// was not leased with [`IngestGate::give_back`]); `None` means defer: the workers' queue is
    /// too long ([`IngestGate::defer_leases`]) or the bucket holds too few.
    pub fn lease_allowance(&self, want: u32) -> Option<u32> {
        if self.target.is_none() || want == 0 {
            return Some(want);
        }
        if self.defer_leases() {
            return None;
        }
        let Ok(mut b) = self.bucket.lock() else {
            return Some(want);
        };
        let now = Instant::now();
        let size = self.bucket_size();
        let refill = now.duration_since(b.filled_at).as_secs_f64() * self.records_per_second();
        b.tokens = (b.tokens + refill).min(size);
        b.filled_at = now;
        // All or nothing, up to a full bucket: a node leasing a few jobs at a time would
        // otherwise be handed one, and submit batches of one, each paying a whole batch's
        // overhead (its signature, its commit) for one record.
        let n = f64::from(want).min(size.floor());
        if b.tokens < n {
            return None;
        }
        b.tokens -= n;
        Some(n as u32)
    }

    /// Returns `n` jobs of an allowance that were not leased.
    pub fn give_back(&self, n: u32) {
        if self.target.is_none() || n == 0 {
            return;
        }
        if let Ok(mut b) = self.bucket.lock() {
            b.tokens = (b.tokens + f64::from(n)).min(self.bucket_size());
        }
    }

    /// Waits for a worker slot, in arrival order. `None` only if the gate was closed, which
    /// nothing does.
    pub async fn admit(&self) -> Option<Admitted> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let counted = Waiting(&self.waiting);
        let started = Instant::now();
        let permit = self.permits.clone().acquire_owned().await.ok()?;
        drop(counted);
        let waited = started.elapsed();
        self.last_wait_us.store(
            u64::try_from(waited.as_micros()).unwrap_or(u64::MAX),
            Ordering::Release,
        );
        Some(Admitted {
            _permit: permit,
            waited,
            at: Instant::now(),
        })
    }

    /// Whether new leases should wait: batches are queued and the last one admitted had waited
    /// longer than the target.
    pub fn defer_leases(&self) -> bool {
        let Some(target) = self.target else {
            return false;
        };
        self.waiting() > 0
            && Duration::from_micros(self.last_wait_us.load(Ordering::Acquire)) > target
    }

    /// Whether new leases should wait for the store's writer: its oldest queued operation
    /// (`oldest_wait`, from `writer.rs`) has waited longer than the same target.
    pub fn writer_behind(&self, oldest_wait: Option<Duration>) -> bool {
        self.target
            .zip(oldest_wait)
            .is_some_and(|(target, waited)| waited > target)
    }

    /// Batches waiting for a worker now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Batches being checked now.
    pub fn busy(&self) -> usize {
        self.workers
            .saturating_sub(self.permits.available_permits())
    }

    /// Worker slots.
    pub fn workers(&self) -> usize {
        self.workers
    }
}

/// Records `workers` check per second at `record_ns` per record each.
fn records_per_second(workers: usize, record_ns: u64) -> f64 {
    workers as f64 * 1e9 / record_ns.max(1) as f64
}

/// Most jobs the bucket holds: `target` worth of checking at that speed, at least
/// [`MIN_BUCKET`].
fn bucket_size(workers: usize, record_ns: u64, target: Option<Duration>) -> f64 {
    let target = target.unwrap_or_default().as_secs_f64();
    (records_per_second(workers, record_ns) * target).max(MIN_BUCKET)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn batches_queue_in_order_and_leases_wait_only_behind_a_long_queue() {
        runtime().block_on(async {
            let gate = Arc::new(IngestGate::new(1, Some(Duration::from_millis(20))));
            let first = gate.admit().await.expect("admitted");
            assert_eq!((gate.busy(), gate.waiting()), (1, 0));
            // Nobody waits: leases go out however busy the workers are.
            assert!(!gate.defer_leases());

            // Two batches queue behind the first, in order.
            let order = Arc::new(std::sync::Mutex::new(Vec::new()));
            let mut queued = Vec::new();
            for k in 0..2 {
                let (gate, order) = (gate.clone(), order.clone());
                queued.push(tokio::spawn(async move {
                    let admitted = gate.admit().await.expect("admitted");
                    order.lock().expect("order").push(k);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    admitted.waited
                }));
                tokio::task::yield_now().await;
            }
            assert_eq!(gate.waiting(), 2);
            // Queued, but the last batch admitted (the first) did not wait: leases still go.
            assert!(!gate.defer_leases());
            tokio::time::sleep(Duration::from_millis(40)).await;
            drop(first);
            tokio::time::sleep(Duration::from_millis(5)).await;
            // Batch 0 got the slot after waiting > 20 ms and batch 1 still queues: defer.
            assert_eq!(gate.waiting(), 1);
            assert!(gate.defer_leases());
            let waits: Vec<Duration> = futures_join(queued).await;
            assert!(
                waits.iter().all(|w| *w > Duration::from_millis(20)),
                "{waits:?}"
            );
            assert_eq!(*order.lock().expect("order"), vec![0, 1]);
            // The queue is empty again: leases go out.
            assert_eq!((gate.busy(), gate.waiting()), (0, 0));
            assert!(!gate.defer_leases());
        });
    }

    #[test]
    fn a_request_that_goes_away_stops_counting_as_waiting() {
        runtime().block_on(async {
            let gate = Arc::new(IngestGate::new(1, Some(Duration::ZERO)));
            let held = gate.admit().await.expect("admitted");
            let waiter = {
                let gate = gate.clone();
                tokio::spawn(async move { gate.admit().await.map(|a| a.waited) })
            };
            tokio::task::yield_now().await;
            assert_eq!(gate.waiting(), 1);
            waiter.abort();
            let _ = waiter.await;
            assert_eq!(gate.waiting(), 0);
            drop(held);
            assert_eq!(gate.busy(), 0);
        });
    }

    #[test]
    fn without_a_target_leases_are_never_deferred() {
        runtime().block_on(async {
            let gate = Arc::new(IngestGate::new(1, None));
            let held = gate.admit().await.expect("admitted");
            let waiter = {
                let gate = gate.clone();
                tokio::spawn(async move { gate.admit().await.map(|a| a.waited) })
            };
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(held);
            let _ = waiter.await;
            assert!(!gate.defer_leases());
        });
    }

    #[test]
    fn jobs_are_leased_no_faster_than_they_are_checked() {
        let gate = IngestGate::new(2, Some(Duration::from_millis(50)));
        // Until batches are measured: 4 ms a record, 500 records/s on two workers, a bucket of
        // MIN_BUCKET jobs.
        assert_eq!(gate.records_per_second().round(), 500.0);
        let mut leased = 0;
        while let Some(n) = gate.lease_allowance(32) {
            assert_eq!(n, 32, "after {leased}");
            leased += n;
        }
        // The bucket is empty (a few jobs may have dripped in meanwhile, never 32).
        assert!((128..128 + 32).contains(&leased), "{leased}");
        assert_eq!(gate.lease_allowance(32), None);
        // Asking for nothing is not a deferral.
        assert_eq!(gate.lease_allowance(0), Some(0));
        // Jobs a lease did not use go back.
        gate.give_back(32);
        assert_eq!(gate.lease_allowance(32), Some(32));
        // It refills at the checking rate: 500 a second, so 32 within ~64 ms.
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(gate.lease_allowance(32), Some(32));
        // Batches measured at 100 µs a record: 20,000 records/s, and a bucket of 1,000.
        for _ in 0..200 {
            gate.checked(100, Duration::from_millis(10));
        }
        assert!((gate.records_per_second() - 20_000.0).abs() < 100.0);
        assert!((gate.bucket_size() - 1_000.0).abs() < 5.0);
        // A lease wanting more than the bucket holds gets a bucketful, not nothing.
        std::thread::sleep(Duration::from_millis(60));
        assert!(gate.lease_allowance(5_000).is_some_and(|n| n >= 990));
        // Without a target there is no bucket.
        let open = IngestGate::new(1, None);
        for _ in 0..100 {
            assert_eq!(open.lease_allowance(1_000), Some(1_000));
        }
    }

    /// The writer is behind only past the target, and never without one.
    #[test]
    fn the_writer_is_behind_only_past_the_target() {
        let gate = IngestGate::new(1, Some(Duration::from_millis(20)));
        assert!(!gate.writer_behind(None));
        assert!(!gate.writer_behind(Some(Duration::from_millis(20))));
        assert!(gate.writer_behind(Some(Duration::from_millis(21))));
        let open = IngestGate::new(1, None);
        assert!(!open.writer_behind(Some(Duration::from_secs(60))));
    }

    async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("task"));
        }
        out
    }
}
