//! The CPU side of ingest, done before the store's write transaction: decoding within limits,
//! header and record verification (batch ed25519), freshness, quality rules and MinHash.

use std::collections::HashSet;

use gleaner_protocol::auth::MAX_CLOCK_SKEW_MS;
use gleaner_protocol::{Batch, DecodeLimits, Digest, PublicKey, Record, verify_records};

use crate::dedup::{MinHash, exact_key};
use crate::frontier::normalize;
use crate::quality;
pub use crate::store::{IngestError, IngestOutcome, IngestParams, PreparedRecord};

/// Outlinks of one record considered for the frontier: enough to follow a site's structure,
/// few enough that one page cannot flood the queue.
pub const MAX_OUTLINKS_FOLLOWED: usize = 100;

/// Decodes an untrusted batch body within `limits`.
pub fn decode(body: &[u8], limits: &DecodeLimits) -> Result<Batch, IngestError> {
    Batch::decode(body, limits).map_err(|source| IngestError::Batch { source })
}

/// Fewest records worth handing to another thread: below this, spawning costs more than it saves.
const MIN_RECORDS_PER_THREAD: usize = 8;

/// Verifies `batch` as sent by `sender` at `now_ms` and computes everything the transaction
/// needs. Any failure refuses the whole batch, with the same error the records would give checked
/// one by one in order.
///
/// The per-record work (signatures, quality rules, MinHash) is spread over the machine's cores;
/// results do not depend on how it is split.
pub fn prepare(
    batch: &Batch,
    sender: &PublicKey,
    now_ms: i64,
    languages: &[String],
) -> Result<(Digest, Vec<PreparedRecord>), IngestError> {
    if &batch.header.node != sender {
        return Err(IngestError::WrongNode {
            header: batch.header.node,
            request: *sender,
        });
    }
    batch
        .verify_header()
        .map_err(|source| IngestError::Batch { source })?;
    let verified = par_chunks(&batch.records, |_, part| verify_records(part));
    for (index, res) in verified.into_iter().enumerate() {
        res.map_err(|source| IngestError::Record { index, source })?;
    }
    let computed = par_chunks(&batch.records, |first, part| {
        part.iter()
            .enumerate()
            .map(|(i, record)| prepare_record(first + i, record, languages))
            .collect()
    });
    let mut seen = HashSet::with_capacity(batch.records.len());
    let mut out = Vec::with_capacity(batch.records.len());
    for (index, (record, computed)) in batch.records.iter().zip(computed).enumerate() {
        if record.fetched_at_ms > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
            return Err(IngestError::FutureTimestamp {
                index,
                fetched_at_ms: record.fetched_at_ms,
            });
        }
        let pr = match computed {
            Ok(pr) => pr,
            Err(e) => {
                if !seen.insert(record.id()) {
                    return Err(IngestError::DuplicateInBatch { index });
                }
                return Err(e);
            }
        };
        if !seen.insert(pr.id) {
            return Err(IngestError::DuplicateInBatch { index });
        }
        out.push(pr);
    }
    Ok((batch.id(), out))
}

/// Everything the transaction needs about one verified record.
fn prepare_record(
    index: usize,
    record: &Record,
    languages: &[String],
) -> Result<PreparedRecord, IngestError> {
    let id = record.id();
    let report = quality::assess(&record.text, &record.lang, languages);
    let scores: std::collections::BTreeMap<String, f64> = report
        .scores
        .into_iter()
        .filter(|(_, v)| v.is_finite())
        .collect();
    let punct_ratio = scores
        .get("fineweb_line_punct_ratio")
        .copied()
        .unwrap_or(0.0);
    let minhash = MinHash::of(&record.text);
    let bands = minhash.bands();
    let outlinks = record
        .outlinks
        .iter()
        .take(MAX_OUTLINKS_FOLLOWED)
        .filter_map(|l| normalize(l).ok())
        .collect();
    let json = serde_json::to_vec(record).map_err(|e| IngestError::Record {
        index,
        source: gleaner_protocol::ProtocolError::Malformed {
            what: "record",
            why: e.to_string(),
        },
    })?;
    Ok(PreparedRecord {
        record: record.clone(),
        id,
        json,
        rejection: report.rejection,
        quality_json: serde_json::to_string(&scores).unwrap_or_else(|_| "{}".into()),
        punct_ratio,
        text_key: exact_key(&record.text),
        minhash,
        bands,
        outlinks,
    })
}

/// Splits `items` into one contiguous chunk per available core (at least
/// [`MIN_RECORDS_PER_THREAD`] each), runs `f(first_index, chunk)` on each in its own scoped thread
/// and concatenates the results in order. `f` must return one result per item. Falls back to
/// the calling thread when there is one core, few items, or a thread cannot be started.
fn par_chunks<T, R, F>(items: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(usize, &[T]) -> Vec<R> + Sync,
{
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let threads = cores.min(items.len() / MIN_RECORDS_PER_THREAD).max(1);
    if threads == 1 {
        return f(0, items);
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let others: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .skip(1)
            .map(|(c, part)| {
                let first = c * chunk;
                let handle = std::thread::Builder::new()
                    .name("ingest-prepare".into())
                    .spawn_scoped(scope, move || f(first, part));
                (first, part, handle)
            })
            .collect();
        let mut out = f(0, &items[..chunk.min(items.len())]);
        for (first, part, handle) in others {
            match handle {
                Ok(h) => match h.join() {
                    Ok(v) => out.extend(v),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                Err(_) => out.extend(f(first, part)),
            }
        }
        out
    })
}
