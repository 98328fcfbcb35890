//! `Receipt`: the validator's signed attestation of what it made of a batch; `EpochRoot`, its
//! signed publication of an epoch's reward tree; and `Revocation`, its signed word that a record
//! it accepted no longer stands.

use serde::{Deserialize, Serialize};

use crate::{Canon, Digest, ProtocolError, PublicKey, SecretKey, Signature};

/// Domain tag of a receipt's signing bytes.
pub const RECEIPT_DOMAIN: &str = "gleaner/receipt/v1";
/// Domain tag of an epoch root's signing bytes.
pub const EPOCH_DOMAIN: &str = "gleaner/epoch/v1";
/// Domain tag of a revocation's signing bytes.
pub const REVOCATION_DOMAIN: &str = "gleaner/revocation/v1";

/// What the validator decided about one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Verified, unique and good enough: credited.
    Accepted,
    /// Verified but already known (exactly or nearly): recorded, not credited.
    Duplicate,
    /// Failed a check; `reason` says which.
    Rejected,
}

impl Verdict {
    pub fn code(self) -> u8 {
        match self {
            Verdict::Accepted => 1,
            Verdict::Duplicate => 2,
            Verdict::Rejected => 3,
        }
    }
}

/// The verdict on one record of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecordVerdict {
    pub record_id: Digest,
    pub verdict: Verdict,
    /// A stable reason code (`ok` for accepted records), e.g. `bad_signature`, `gopher_word_count`.
    pub reason: String,
    /// Points credited for this record.
    pub points: u64,
}

/// A validator's signed receipt for one batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub validator: PublicKey,
    pub batch_id: Digest,
    pub node: PublicKey,
    /// The epoch the points are credited in.
    pub epoch: u64,
    /// Unix milliseconds UTC.
    pub issued_at_ms: i64,
    /// Name and version of the points formula, e.g. `points/v1`.
    pub scoring: String,
    /// One verdict per record, in batch order.
    pub verdicts: Vec<RecordVerdict>,
    /// Sum of the per-record points.
    pub points: u64,
    pub signature: Signature,
}

impl Receipt {
    /// Builds, totals and signs a receipt.
    pub fn sign(
        key: &SecretKey,
        batch_id: Digest,
        node: PublicKey,
        epoch: u64,
        issued_at_ms: i64,
        scoring: &str,
        verdicts: Vec<RecordVerdict>,
    ) -> Self {
        let points = verdicts
            .iter()
            .map(|v| v.points)
            .fold(0u64, u64::saturating_add);
        let mut receipt = Receipt {
            validator: key.public(),
            batch_id,
            node,
            epoch,
            issued_at_ms,
            scoring: scoring.to_string(),
            verdicts,
            points,
            signature: Signature::from_bytes([0; 64]),
        };
        receipt.signature = key.sign(&receipt.signing_bytes());
        receipt
    }

    /// Domain tag `gleaner/receipt/v1`, then `validator` 32 bytes, `batch_id` 32 bytes, `node`
    /// 32 bytes, `epoch` u64, `issued_at_ms` i64, `scoring` str, the verdict count u32, and per
    /// verdict `record_id` 32 bytes, `verdict` u8 (1 accepted, 2 duplicate, 3 rejected), `reason`
    /// str, `points` u64; finally `points` u64.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut c = Canon::new(RECEIPT_DOMAIN);
        c.key(&self.validator)
            .digest(&self.batch_id)
            .key(&self.node)
            .u64(self.epoch)
            .i64(self.issued_at_ms)
            .str(&self.scoring)
            .u32(u32::try_from(self.verdicts.len()).unwrap_or(u32::MAX));
        for v in &self.verdicts {
            c.digest(&v.record_id)
                .u8(v.verdict.code())
                .str(&v.reason)
                .u64(v.points);
        }
        c.u64(self.points);
        c.finish()
    }

    /// The total matches the verdicts and the validator's signature verifies.
    pub fn verify(&self) -> Result<(), ProtocolError> {
        let sum = self
            .verdicts
            .iter()
            .map(|v| v.points)
            .fold(0u64, u64::saturating_add);
        if sum != self.points {
            return Err(ProtocolError::CountMismatch {
                what: "receipt points",
                declared: self.points,
                actual: sum,
            });
        }
        self.validator
            .verify(&self.signing_bytes(), &self.signature, "receipt")
    }

    /// Verifies and also checks the receipt is from the expected validator for the expected batch.
    pub fn verify_for(
        &self,
        validator: &PublicKey,
        batch_id: &Digest,
    ) -> Result<(), ProtocolError> {
        if &self.validator != validator {
            return Err(ProtocolError::InvalidField {
                field: "validator",
                why: format!("receipt signed by {}, expected {validator}", self.validator),
            });
        }
        if &self.batch_id != batch_id {
            return Err(ProtocolError::InvalidField {
                field: "batch_id",
                why: format!("receipt for batch {}, expected {batch_id}", self.batch_id),
            });
        }
        self.verify()
    }
}

/// A validator's signed publication of an epoch's reward tree root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EpochRoot {
    pub validator: PublicKey,
    pub epoch: u64,
    /// Unix milliseconds UTC.
    pub closed_at_ms: i64,
    /// Root of the sha256 reward tree (`gleaner_protocol::RewardTree`).
    pub root: Digest,
    /// Sum of all cumulative amounts in the tree.
    pub total: u64,
    pub leaf_count: u32,
    pub signature: Signature,
}

impl EpochRoot {
    pub fn sign(
        key: &SecretKey,
        epoch: u64,
        closed_at_ms: i64,
        root: [u8; 32],
        total: u64,
        leaf_count: u32,
    ) -> Self {
        let mut e = EpochRoot {
            validator: key.public(),
            epoch,
            closed_at_ms,
            root: Digest::from_bytes(root),
            total,
            leaf_count,
            signature: Signature::from_bytes([0; 64]),
        };
        e.signature = key.sign(&e.signing_bytes());
        e
    }

    /// Domain tag `gleaner/epoch/v1`, then `validator` 32 bytes, `epoch` u64, `closed_at_ms` i64,
    /// `root` 32 bytes, `total` u64, `leaf_count` u32.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut c = Canon::new(EPOCH_DOMAIN);
        c.key(&self.validator)
            .u64(self.epoch)
            .i64(self.closed_at_ms)
            .digest(&self.root)
            .u64(self.total)
            .u32(self.leaf_count);
        c.finish()
    }

    pub fn verify(&self) -> Result<(), ProtocolError> {
        self.validator
            .verify(&self.signing_bytes(), &self.signature, "epoch root")
    }
}

/// One record a validator revoked after accepting it (a failed cross-check, a page found gone):
/// its points were taken back, and a dataset exported before holds a row it no longer stands by.
/// `GET /v1/revocations` lists them oldest first, a page at a time, each signed by the validator,
/// so a lab can show which rows it dropped and why, and a node can trust what it is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// Position in the validator's revocation log; the next page starts after the last one's.
    pub seq: u64,
    /// The record's id (a dataset row's `id`).
    pub record_id: Digest,
    /// The node that submitted it (a dataset row's `node`).
    pub node: PublicKey,
    pub url: String,
    /// The epoch the record was credited in.
    pub epoch: u64,
    /// Why, as a reason code: `failed_cross_check`, `page_not_found`, …
    pub reason: String,
    /// The validator that revoked it (a dataset manifest's `validator`).
    pub validator: PublicKey,
    pub signature: Signature,
}

impl Revocation {
    /// The entry at `seq` of `key`'s revocation log, signed.
    pub fn sign(
        key: &SecretKey,
        seq: u64,
        record_id: Digest,
        node: PublicKey,
        url: String,
        epoch: u64,
        reason: String,
    ) -> Self {
        let mut r = Revocation {
            seq,
            record_id,
            node,
            url,
            epoch,
            reason,
            validator: key.public(),
            signature: Signature::from_bytes([0; 64]),
        };
        r.signature = key.sign(&r.signing_bytes());
        r
    }

    /// Domain tag `gleaner/revocation/v1`, then `validator` 32 bytes, `seq` u64, `record_id` 32
    /// bytes, `node` 32 bytes, `url` string, `epoch` u64, `reason` string.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut c = Canon::new(REVOCATION_DOMAIN);
        c.key(&self.validator)
            .u64(self.seq)
            .digest(&self.record_id)
            .key(&self.node)
            .str(&self.url)
            .u64(self.epoch)
            .str(&self.reason);
        c.finish()
    }

    /// Checks the signature against the entry's own `validator` key; the caller checks that key
    /// is the validator it asked.
    pub fn verify(&self) -> Result<(), ProtocolError> {
        self.validator
            .verify(&self.signing_bytes(), &self.signature, "revocation")
    }
}
