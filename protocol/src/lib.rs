//! # Gleaner protocol
//!
//! The wire types, identities, signing bytes and Merkle trees shared by every Gleaner program. This
//! crate does no I/O and has no async runtime: it is the one place that defines which bytes are
//! hashed and signed, so that anyone can verify a record, a batch, a receipt or a reward claim
//! alone, years later, in any language.
//!
//! ## Formats at a glance
//! * Identities are ed25519 keys ([`SecretKey`], [`PublicKey`]); public keys and signatures print in
//!   base58, digests in lowercase hex. Digests are blake3 (32 bytes) unless noted.
//! * Every signed object has `signing_bytes()`: a domain tag such as `gleaner/record/v1` followed
//!   by its fields in the canonical encoding of [`canon`] (fixed-width little-endian integers,
//!   `u32`-length-prefixed strings, raw 32-byte digests and keys). JSON key order and float printing
//!   never matter: the JSON is transport only.
//! * [`Record`]: one fetched, cleaned page, signed by its node. Its id is blake3 of its signing bytes.
//! * [`Batch`]: records plus a signed [`BatchHeader`] (node, time, count, [`merkle`] root of record
//!   ids); its id is blake3 of the header's signing bytes. On the wire: JSON, zstd-compressed,
//!   decoded only within explicit [`DecodeLimits`].
//! * [`Receipt`]: the validator's signed per-record verdicts and points for a batch.
//! * [`EpochRoot`] and [`RewardTree`]: cumulative rewards per payout key, as a Merkle tree in the
//!   Solana merkle-distributor (Jito) convention, with proofs checkable by sha256 alone.
//! * [`auth`]: signed HTTP requests (method, path, timestamp, nonce, body digest).
//!
//! Golden test vectors for all of these live in `protocol/tests/vectors/`.

pub mod api;
pub mod auth;
mod base58;
mod batch;
pub mod canon;
mod digest;
mod error;
mod keys;
pub mod merkle;
#[cfg(feature = "openapi")]
mod openapi;
pub mod outlinks;
mod receipt;
mod record;

pub use auth::{RequestAuth, random_nonce};
pub use batch::{
    BATCH_CONTENT_TYPE, BATCH_DOMAIN, Batch, BatchHeader, DecodeLimits, ZSTD_LEVEL,
    decompress_limited, verify_records, verify_records_signed,
};
pub use canon::Canon;
pub use digest::Digest;
pub use error::ProtocolError;
pub use keys::{PublicKey, SecretKey, Signature, verify_batch};
pub use merkle::{
    MerkleTree, RewardLeaf, RewardTree, merkle_root, verify_proof, verify_reward_proof,
};
pub use outlinks::Outlinks;
pub use receipt::{
    EPOCH_DOMAIN, EpochRoot, RECEIPT_DOMAIN, REVOCATION_DOMAIN, Receipt, RecordVerdict, Revocation,
    Verdict,
};
pub use record::{
    MAX_OUTLINKS, MAX_SHORT_FIELD_BYTES, MAX_TEXT_BYTES, MAX_TITLE_BYTES, MAX_URL_BYTES,
    MIN_FETCH_TIME_MS, OUTLINKS_READ, RECORD_DOMAIN, Record, RecordDraft, RobotsVerdict,
    outlinks_digest,
};
