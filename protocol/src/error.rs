//! Typed protocol errors. Every variant has a stable, machine-readable reason code.

/// What went wrong while decoding or verifying a protocol object.
///
/// The [`ProtocolError::code`] of each variant is stable and part of the wire contract: validators put
/// it in `application/problem+json` bodies and receipts, nodes and labs match on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A signature does not verify against the claimed public key and the recomputed signing bytes.
    #[error("bad signature on {what}")]
    BadSignature { what: &'static str },
    /// A digest carried in an object differs from the digest recomputed from its content.
    #[error("{what} digest mismatch: claimed {claimed}, computed {computed}")]
    DigestMismatch {
        what: &'static str,
        claimed: String,
        computed: String,
    },
    /// An input exceeds a limit (size, count, length).
    #[error("{what} too large: {actual} exceeds the limit of {limit}")]
    TooLarge {
        what: &'static str,
        limit: u64,
        actual: u64,
    },
    /// A declared count disagrees with the actual count.
    #[error("{what} count mismatch: declared {declared}, found {actual}")]
    CountMismatch {
        what: &'static str,
        declared: u64,
        actual: u64,
    },
    /// A key, signature or digest is not validly encoded.
    #[error("invalid {what}: {why}")]
    BadEncoding { what: &'static str, why: String },
    /// A field has a value outside its allowed domain (control characters, absurd times, ...).
    #[error("invalid field `{field}`: {why}")]
    InvalidField { field: &'static str, why: String },
    /// The body could not be decompressed or parsed.
    #[error("malformed {what}: {why}")]
    Malformed { what: &'static str, why: String },
    /// A signed request's timestamp is too far from the verifier's clock.
    #[error(
        "stale request: timestamp {timestamp_ms} is {skew_ms} ms away from now (max {max_skew_ms})"
    )]
    StaleRequest {
        timestamp_ms: i64,
        skew_ms: i64,
        max_skew_ms: i64,
    },
    /// A Merkle proof does not lead to the expected root.
    #[error("merkle proof does not match the root")]
    BadProof,
}

impl ProtocolError {
    /// The stable reason code, in `snake_case`.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::BadSignature { .. } => "bad_signature",
            ProtocolError::DigestMismatch { .. } => "digest_mismatch",
            ProtocolError::TooLarge { .. } => "too_large",
            ProtocolError::CountMismatch { .. } => "count_mismatch",
            ProtocolError::BadEncoding { .. } => "bad_encoding",
            ProtocolError::InvalidField { .. } => "invalid_field",
            ProtocolError::Malformed { .. } => "malformed",
            ProtocolError::StaleRequest { .. } => "stale_request",
            ProtocolError::BadProof => "bad_proof",
        }
    }
}
