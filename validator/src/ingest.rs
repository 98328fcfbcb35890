//! The CPU side of ingest, done before the store's write transaction: decoding within limits,
//! header and record verification (batch ed25519), freshness, quality rules and MinHash.

use std::collections::HashSet;

use gleaner_protocol::auth::MAX_CLOCK_SKEW_MS;
use gleaner_protocol::{Batch, DecodeLimits, Digest, PublicKey, verify_records};

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

/// Verifies `batch` as sent by `sender` at `now_ms` and computes everything the transaction
/// needs. Any failure refuses the whole batch.
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
    for (index, res) in verify_records(&batch.records).into_iter().enumerate() {
        res.map_err(|source| IngestError::Record { index, source })?;
    }
    let mut seen = HashSet::with_capacity(batch.records.len());
    let mut out = Vec::with_capacity(batch.records.len());
    for (index, record) in batch.records.iter().enumerate() {
        if record.fetched_at_ms > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
            return Err(IngestError::FutureTimestamp {
                index,
                fetched_at_ms: record.fetched_at_ms,
            });
        }
        let id = record.id();
        if !seen.insert(id) {
            return Err(IngestError::DuplicateInBatch { index });
        }
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
        out.push(PreparedRecord {
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
        });
    }
    Ok((batch.id(), out))
}
