//! Ordered parallelism over scoped threads, for export and verification.
//!
//! Work is split so that results never depend on how many threads ran or which thread did what:
//! every item is processed by a pure function of the item (plus caches that do not change
//! results), and results are consumed in input order. Exported files are byte-identical whatever
//! the thread count, and verification reports the same failures in the same order.

use std::num::NonZeroUsize;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Most worker threads used. Export and verification are CPU-bound per row; beyond a handful of
/// threads the sequential parts (Parquet decoding and file writes) dominate, and each worker holds
/// its own tokenizer (a few MB) and up to [`DEPTH`] items in flight.
pub(crate) const MAX_THREADS: usize = 8;

/// Items queued per worker (in and out). Two lets a worker start its next item while the
/// consumer is still taking the previous one, and bounds memory to `2 × DEPTH × threads` items.
const DEPTH: usize = 2;

/// Worker threads to use: the machine's parallelism, capped at [`MAX_THREADS`].
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .clamp(1, MAX_THREADS)
}

/// Maps `f` over `items` on up to [`threads`] threads, in contiguous chunks; the result is in
/// input order.
pub(crate) fn map_slice<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    let n = threads();
    // Below this many items per thread, spawning costs more than it saves.
    const MIN_PER_THREAD: usize = 256;
    if n < 2 || items.len() < 2 * MIN_PER_THREAD {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(n);
    let f = &f;
    std::thread::scope(|scope| {
        let mut chunks = items.chunks(chunk);
        let first = chunks.next().unwrap_or_default();
        let handles: Vec<_> = chunks
            .map(|c| scope.spawn(move || c.iter().map(f).collect::<Vec<U>>()))
            .collect();
        let mut out: Vec<U> = first.iter().map(f).collect();
        out.reserve(items.len() - out.len());
        for h in handles {
            match h.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// Runs `work` over `items` on up to [`threads`] worker threads and hands every result to `sink`
/// in input order. Each worker first builds its own state with `init` (caches, encoders).
///
/// Items are dealt round-robin and at most `DEPTH` per worker are in flight, so memory stays
/// bounded however long the input. The first error in input order (from `init`, `work` or
/// `sink`) stops the run and is returned; later items may or may not have been processed.
pub(crate) fn ordered<I, S, U, E>(
    items: impl Iterator<Item = I>,
    init: impl Fn() -> Result<S, E> + Sync,
    work: impl Fn(&mut S, I) -> Result<U, E> + Sync,
    mut sink: impl FnMut(U) -> Result<(), E>,
) -> Result<(), E>
where
    I: Send,
    U: Send,
    E: Send,
{
    let n = threads();
    if n < 2 {
        let mut state = init()?;
        for item in items {
            sink(work(&mut state, item)?)?;
        }
        return Ok(());
    }
    let (init, work) = (&init, &work);
    std::thread::scope(|scope| {
        let mut inputs: Vec<SyncSender<I>> = Vec::with_capacity(n);
        let mut outputs: Vec<Receiver<Result<U, E>>> = Vec::with_capacity(n);
        for _ in 0..n {
            let (in_tx, in_rx) = sync_channel::<I>(DEPTH);
            let (out_tx, out_rx) = sync_channel::<Result<U, E>>(DEPTH);
            scope.spawn(move || {
                let mut state = match init() {
                    Ok(s) => s,
                    Err(e) => {
                        // The consumer takes this error when it reaches this worker's first item.
                        let _ = out_tx.send(Err(e));
                        return;
                    }
                };
                for item in in_rx {
                    let result = work(&mut state, item);
                    let failed = result.is_err();
                    if out_tx.send(result).is_err() || failed {
                        return;
                    }
                }
            });
            inputs.push(in_tx);
            outputs.push(out_rx);
        }
        let mut sent = 0usize;
        let mut taken = 0usize;
        // Takes the next result in input order. `Ok(false)`: that worker is gone without a result,
        // which only happens when it panicked (the scope re-raises the panic on exit).
        let mut take = |taken: &mut usize| -> Result<bool, E> {
            let Ok(result) = outputs[*taken % n].recv() else {
                return Ok(false);
            };
            *taken += 1;
            sink(result?)?;
            Ok(true)
        };
        // A worker that stopped (its `init` failed, or its `work` returned an error) has dropped
        // its queue.
        let mut stopped = None;
        for item in items {
            if sent - taken == n * DEPTH && !take(&mut taken)? {
                return Ok(());
            }
            if inputs[sent % n].send(item).is_err() {
                stopped = Some(sent % n);
                break;
            }
            sent += 1;
        }
        drop(inputs);
        while taken < sent {
            if !take(&mut taken)? {
                return Ok(());
            }
        }
        // Every item sent was fine, so the stopped worker's error is from its `init`.
        if let Some(w) = stopped
            && let Ok(Err(e)) = outputs[w].recv()
        {
            return Err(e);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_slice_keeps_order() {
        let v: Vec<u64> = (0..10_000).collect();
        let out = map_slice(&v, |x| x * 3);
        assert_eq!(out, v.iter().map(|x| x * 3).collect::<Vec<_>>());
        assert_eq!(map_slice(&v[..3], |x| x + 1), vec![1, 2, 3]);
    }

    #[test]
    fn ordered_keeps_order_and_stops_at_the_first_error() {
        let mut seen = Vec::new();
        let r: Result<(), String> = ordered(
            0..1_000u64,
            || Ok(0u64),
            |calls, i| {
                *calls += 1;
                Ok(i * 2)
            },
            |x| {
                seen.push(x);
                Ok(())
            },
        );
        assert!(r.is_ok());
        assert_eq!(seen, (0..1_000).map(|i| i * 2).collect::<Vec<_>>());

        let mut seen = Vec::new();
        let r = ordered(
            0..1_000u64,
            || Ok(()),
            |(), i| if i == 500 { Err(i) } else { Ok(i) },
            |x| {
                seen.push(x);
                if x == 700 { Err(0) } else { Ok(()) }
            },
        );
        assert_eq!(r, Err(500));
        assert_eq!(seen, (0..500).collect::<Vec<_>>());

        let r: Result<(), &str> = ordered(0..10u64, || Err("init"), |(), _| Ok(()), |()| Ok(()));
        assert_eq!(r, Err("init"));
    }
}
