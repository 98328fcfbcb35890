//! Authentication of node → validator HTTP requests.
//!
//! The node signs the method, the path with its query, a timestamp, a random nonce and the blake3
//! digest of the body, and sends the result in four headers ([`HEADER_NODE`], [`HEADER_TIMESTAMP`],
//! [`HEADER_NONCE`], [`HEADER_SIGNATURE`]). The validator recomputes the signing bytes, checks the
//! signature, refuses timestamps more than [`MAX_CLOCK_SKEW_MS`] from its clock, and refuses a nonce
//! it has seen within that window (replay); the nonce memory is the validator's, not this crate's.

use serde::{Deserialize, Serialize};

use crate::{Canon, Digest, ProtocolError, PublicKey, SecretKey, Signature};

/// Domain tag of a request's signing bytes.
pub const REQUEST_DOMAIN: &str = "gleaner/request/v1";

pub const HEADER_NODE: &str = "x-gleaner-node";
pub const HEADER_TIMESTAMP: &str = "x-gleaner-timestamp";
pub const HEADER_NONCE: &str = "x-gleaner-nonce";
pub const HEADER_SIGNATURE: &str = "x-gleaner-signature";

/// Largest accepted difference between a request's timestamp and the validator's clock. Five
/// minutes tolerates ordinary consumer clock drift; the validator remembers nonces this long.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// The authentication part of one signed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAuth {
    pub node: PublicKey,
    /// Unix milliseconds UTC.
    pub timestamp_ms: i64,
    /// 16 random bytes, hex (32 characters).
    pub nonce: String,
    pub signature: Signature,
}

/// Domain tag `gleaner/request/v1`, then `method` str (upper case), `path_and_query` str,
/// `timestamp_ms` i64, `nonce` str, blake3 of the body 32 bytes, `node` 32 bytes.
pub fn request_signing_bytes(
    method: &str,
    path_and_query: &str,
    timestamp_ms: i64,
    nonce: &str,
    body: &[u8],
    node: &PublicKey,
) -> Vec<u8> {
    let mut c = Canon::new(REQUEST_DOMAIN);
    c.str(&method.to_ascii_uppercase())
        .str(path_and_query)
        .i64(timestamp_ms)
        .str(nonce)
        .digest(&Digest::of(body))
        .key(node);
    c.finish()
}

impl RequestAuth {
    /// Signs a request. `nonce` must be fresh random bytes for every request.
    pub fn sign(
        key: &SecretKey,
        method: &str,
        path_and_query: &str,
        timestamp_ms: i64,
        nonce: [u8; 16],
        body: &[u8],
    ) -> Self {
        let node = key.public();
        let nonce = hex::encode(nonce);
        let bytes =
            request_signing_bytes(method, path_and_query, timestamp_ms, &nonce, body, &node);
        RequestAuth {
            node,
            timestamp_ms,
            nonce,
            signature: key.sign(&bytes),
        }
    }

    /// Parses the four header values.
    pub fn from_headers(
        node: &str,
        timestamp: &str,
        nonce: &str,
        signature: &str,
    ) -> Result<Self, ProtocolError> {
        let timestamp_ms =
            timestamp
                .trim()
                .parse::<i64>()
                .map_err(|e| ProtocolError::BadEncoding {
                    what: "timestamp",
                    why: e.to_string(),
                })?;
        let nonce = nonce.trim();
        if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ProtocolError::BadEncoding {
                what: "nonce",
                why: "expected 32 hex digits".into(),
            });
        }
        Ok(RequestAuth {
            node: node.parse()?,
            timestamp_ms,
            nonce: nonce.to_ascii_lowercase(),
            signature: signature.parse()?,
        })
    }

    /// The four headers as `(name, value)` pairs.
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            (HEADER_NODE, self.node.to_string()),
            (HEADER_TIMESTAMP, self.timestamp_ms.to_string()),
            (HEADER_NONCE, self.nonce.clone()),
            (HEADER_SIGNATURE, self.signature.to_string()),
        ]
    }

    /// Checks freshness against `now_ms`, then the signature. Replays within the window must be
    /// refused by the caller, which remembers `(node, nonce)` pairs.
    pub fn verify(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now_ms: i64,
    ) -> Result<(), ProtocolError> {
        let skew_ms = now_ms.saturating_sub(self.timestamp_ms).saturating_abs();
        if skew_ms > MAX_CLOCK_SKEW_MS {
            return Err(ProtocolError::StaleRequest {
                timestamp_ms: self.timestamp_ms,
                skew_ms,
                max_skew_ms: MAX_CLOCK_SKEW_MS,
            });
        }
        let bytes = request_signing_bytes(
            method,
            path_and_query,
            self.timestamp_ms,
            &self.nonce,
            body,
            &self.node,
        );
        self.node.verify(&bytes, &self.signature, "request")
    }
}

/// 16 fresh random bytes for a request nonce.
pub fn random_nonce() -> Result<[u8; 16], rand_core::Error> {
    use rand_core::RngCore;
    let mut n = [0u8; 16];
    rand_core::OsRng.try_fill_bytes(&mut n)?;
    Ok(n)
}
