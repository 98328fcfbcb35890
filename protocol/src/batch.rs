//! `Batch`: a node's signed bundle of records, sent zstd-compressed to a validator.

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::{Canon, Digest, ProtocolError, PublicKey, Record, SecretKey, Signature, merkle_root};

/// Domain tag of a batch header's signing bytes.
pub const BATCH_DOMAIN: &str = "gleaner/batch/v1";

/// The HTTP media type of an encoded batch body.
pub const BATCH_CONTENT_TYPE: &str = "application/vnd.gleaner.batch+zstd";

/// zstd level for batches: level 3 is zstd's default, ~0.4 ms per 170 KB page here, and text
/// compresses 3–4× at it; higher levels cost CPU on the consumer's machine for little gain.
pub const ZSTD_LEVEL: i32 = 3;

/// Limits applied while decoding an untrusted batch body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest compressed body accepted.
    pub max_compressed_bytes: usize,
    /// Largest decompressed body accepted; decoding stops reading one byte past it.
    pub max_decompressed_bytes: usize,
    /// Most records in one batch.
    pub max_records: usize,
}

impl Default for DecodeLimits {
    /// 8 MiB compressed, 64 MiB decompressed, 1,000 records: a node's batches are bounded far below
    /// (about 256 records of a few KB of text), so these leave headroom and still cap memory.
    fn default() -> Self {
        DecodeLimits {
            max_compressed_bytes: 8 * 1024 * 1024,
            max_decompressed_bytes: 64 * 1024 * 1024,
            max_records: 1_000,
        }
    }
}

/// A batch header: who sent it, when, how many records, and the Merkle root of their ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchHeader {
    pub node: PublicKey,
    /// Unix milliseconds UTC.
    pub created_at_ms: i64,
    pub record_count: u32,
    /// Root of the blake3 Merkle tree ([`crate::merkle`]) over the record ids, in batch order.
    pub records_root: Digest,
    pub signature: Signature,
}

impl BatchHeader {
    /// Domain tag `gleaner/batch/v1`, then `node` 32 bytes, `created_at_ms` i64, `record_count`
    /// u32, `records_root` 32 bytes.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut c = Canon::new(BATCH_DOMAIN);
        c.key(&self.node)
            .i64(self.created_at_ms)
            .u32(self.record_count)
            .digest(&self.records_root);
        c.finish()
    }
}

/// A list of records with a signed header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub header: BatchHeader,
    pub records: Vec<Record>,
}

impl Batch {
    /// Assembles and signs a batch of records the same key signed.
    pub fn new(key: &SecretKey, created_at_ms: i64, records: Vec<Record>) -> Self {
        let ids: Vec<Digest> = records.iter().map(Record::id).collect();
        let mut header = BatchHeader {
            node: key.public(),
            created_at_ms,
            record_count: u32::try_from(records.len()).unwrap_or(u32::MAX),
            records_root: merkle_root(&ids),
            signature: Signature::from_bytes([0; 64]),
        };
        header.signature = key.sign(&header.signing_bytes());
        Batch { header, records }
    }

    /// The batch id: blake3 of the header's signing bytes. It covers the record ids through the
    /// Merkle root, so resubmitting the same batch gives the same id.
    pub fn id(&self) -> Digest {
        Digest::of_canonical(&self.header.signing_bytes())
    }

    /// JSON, then zstd. (JSON is the transport; what is signed is the canonical bytes.)
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        let json = serde_json::to_vec(self).map_err(|e| ProtocolError::Malformed {
            what: "batch",
            why: e.to_string(),
        })?;
        zstd::bulk::compress(&json, ZSTD_LEVEL).map_err(|e| ProtocolError::Malformed {
            what: "batch",
            why: e.to_string(),
        })
    }

    /// Decodes an untrusted body within `limits`. A body that would expand past
    /// `max_decompressed_bytes` is refused after reading one byte more than the limit, never
    /// allocated whole. Checks the declared record count; does not verify signatures (see
    /// [`Batch::verify_header`] and [`Record::verify`]).
    pub fn decode(body: &[u8], limits: &DecodeLimits) -> Result<Self, ProtocolError> {
        let json = Self::decompress(body, limits)?;
        let batch: Batch = serde_json::from_slice(&json).map_err(|e| ProtocolError::Malformed {
            what: "batch",
            why: e.to_string(),
        })?;
        Self::check_count(&batch.header, batch.records.len(), limits)?;
        Ok(batch)
    }

    /// The first step of [`Batch::decode`]: the compressed size limit, then decompression
    /// within the decompressed size limit. For decoders of the JSON other than `Batch`'s own.
    pub fn decompress(body: &[u8], limits: &DecodeLimits) -> Result<Vec<u8>, ProtocolError> {
        if body.len() > limits.max_compressed_bytes {
            return Err(ProtocolError::TooLarge {
                what: "compressed batch",
                limit: limits.max_compressed_bytes as u64,
                actual: body.len() as u64,
            });
        }
        decompress_limited(body, limits.max_decompressed_bytes)
    }

    /// The last step of [`Batch::decode`], on a parsed header and its number of records: the
    /// record count limit, then the declared count.
    pub fn check_count(
        header: &BatchHeader,
        records: usize,
        limits: &DecodeLimits,
    ) -> Result<(), ProtocolError> {
        if records > limits.max_records {
            return Err(ProtocolError::TooLarge {
                what: "record count",
                limit: limits.max_records as u64,
                actual: records as u64,
            });
        }
        if header.record_count as usize != records {
            return Err(ProtocolError::CountMismatch {
                what: "record",
                declared: u64::from(header.record_count),
                actual: records as u64,
            });
        }
        Ok(())
    }

    /// The header is signed by its node, its count and Merkle root match the records, and every
    /// record names the same node. Records' own signatures are checked by [`Record::verify`] or
    /// [`Batch::verify`].
    pub fn verify_header(&self) -> Result<(), ProtocolError> {
        let ids: Vec<Digest> = self.records.iter().map(Record::id).collect();
        self.verify_header_with_ids(&ids)
    }

    /// [`Batch::verify_header`] given the records' ids in order (`ids[i]` is
    /// `records[i].id()`), for a caller that has them already.
    pub fn verify_header_with_ids(&self, ids: &[Digest]) -> Result<(), ProtocolError> {
        if self.header.record_count as usize != self.records.len() {
            return Err(ProtocolError::CountMismatch {
                what: "record",
                declared: u64::from(self.header.record_count),
                actual: self.records.len() as u64,
            });
        }
        if let Some(r) = self.records.iter().find(|r| r.node != self.header.node) {
            return Err(ProtocolError::InvalidField {
                field: "node",
                why: format!(
                    "record signed by {} in a batch from {}",
                    r.node, self.header.node
                ),
            });
        }
        if ids.len() != self.records.len() {
            return Err(ProtocolError::CountMismatch {
                what: "record id",
                declared: self.records.len() as u64,
                actual: ids.len() as u64,
            });
        }
        let root = merkle_root(ids);
        if root != self.header.records_root {
            return Err(ProtocolError::DigestMismatch {
                what: "records root",
                claimed: self.header.records_root.to_string(),
                computed: root.to_string(),
            });
        }
        self.header.node.verify(
            &self.header.signing_bytes(),
            &self.header.signature,
            "batch header",
        )
    }

    /// The header and every record. Record signatures are batch-verified together; only when that
    /// fails are they checked one by one to name the culprit.
    pub fn verify(&self) -> Result<(), ProtocolError> {
        self.verify_header()?;
        let results = verify_records(&self.records);
        results
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
    }
}

/// Verifies each record, returning one result per record in order. Signatures are checked with
/// ed25519 batch verification first (several times faster); only if that fails are the records
/// checked one by one.
pub fn verify_records(records: &[Record]) -> Vec<Result<(), ProtocolError>> {
    let signing: Vec<Vec<u8>> = records.iter().map(Record::signing_bytes).collect();
    verify_records_signed(records, &signing)
}

/// [`verify_records`] given the records' signing bytes in order (`signing[i]` is
/// `records[i].signing_bytes()`), for a caller that has them already (a record's id is their
/// digest). A record without its signing bytes fails as a bad signature.
pub fn verify_records_signed(
    records: &[Record],
    signing: &[Vec<u8>],
) -> Vec<Result<(), ProtocolError>> {
    // A batch's records normally share one node key: it is validated (decompressed) once, not
    // once per record. Same verdict for every record as `check_fields`.
    let mut last: Option<(&PublicKey, bool)> = None;
    let mut results: Vec<Result<(), ProtocolError>> = records
        .iter()
        .map(|r| {
            let valid = match last {
                Some((key, valid)) if *key == r.node => valid,
                _ => r.node.is_valid(),
            };
            last = Some((&r.node, valid));
            r.check_fields_with(valid)
                .and_then(|()| r.check_text_digest())
        })
        .collect();
    for res in results.iter_mut().skip(signing.len()) {
        if res.is_ok() {
            *res = Err(ProtocolError::BadSignature { what: "record" });
        }
    }
    let items: Vec<(&PublicKey, &[u8], &Signature)> = records
        .iter()
        .zip(signing)
        .zip(&results)
        .filter(|(_, res)| res.is_ok())
        .map(|((r, bytes), _)| (&r.node, bytes.as_slice(), &r.signature))
        .collect();
    if crate::keys::verify_batch(&items).is_err() {
        for ((r, bytes), res) in records.iter().zip(signing).zip(results.iter_mut()) {
            if res.is_ok() {
                *res = r.node.verify(bytes, &r.signature, "record");
            }
        }
    }
    results
}

/// zstd-decompresses at most `limit` bytes; more is an error, detected by reading one byte past.
///
/// A body whose frame header declares its size within `limit` (zstd's one-shot compressor,
/// `Batch::encode`'s, always declares it) is first decompressed in one call straight into a buffer
/// of that size. The declaration is not trusted: if the body holds more, or anything else goes
/// wrong, the bounded streaming decoder below decides, so the result and every error are the same
/// as without the fast path. It saves the streaming decoder's window buffer (allocated and
/// cleared per call) and the copy out of it.
pub fn decompress_limited(body: &[u8], limit: usize) -> Result<Vec<u8>, ProtocolError> {
    if let Some(out) = decompress_declared(body, limit) {
        return Ok(out);
    }
    decompress_streaming(body, limit)
}

/// The one-shot path of [`decompress_limited`]: `None` unless the body's first frame declares a
/// size of at most `limit` and the whole body decompresses into exactly that many bytes.
fn decompress_declared(body: &[u8], limit: usize) -> Option<Vec<u8>> {
    let declared = zstd::zstd_safe::get_frame_content_size(body).ok()??;
    let declared = usize::try_from(declared).ok().filter(|&n| n <= limit)?;
    let mut out = Vec::with_capacity(declared);
    // The context is reused per thread: creating one per call costs more than a small body.
    thread_local! {
        static DCTX: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let written = DCTX.with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        let dctx = slot.get_or_insert_with(zstd::zstd_safe::DCtx::create);
        dctx.decompress(&mut out, body).ok()
    })?;
    (written == declared).then_some(out)
}

/// The streaming path of [`decompress_limited`], for any body.
fn decompress_streaming(body: &[u8], limit: usize) -> Result<Vec<u8>, ProtocolError> {
    let decoder = zstd::stream::read::Decoder::new(body).map_err(|e| ProtocolError::Malformed {
        what: "zstd stream",
        why: e.to_string(),
    })?;
    // Grow gradually: the initial capacity is bounded by the compressed size, not the claim.
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ProtocolError::Malformed {
            what: "zstd stream",
            why: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(ProtocolError::TooLarge {
            what: "decompressed batch",
            limit: limit as u64,
            actual: out.len() as u64,
        });
    }
    Ok(out)
}
