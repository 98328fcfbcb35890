//! The validator client: registration, leases, reports, releases, batch submission with receipt
//! verification, and the node's standing. Every request is signed ([`RequestAuth`]).
//!
//! Validator URLs come from the user's configuration; the address policy for web pages does not
//! apply to them (a validator may well run on the local network), and nothing a validator answers
//! reaches the fetcher's configuration.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gleaner_protocol::api::{
    Ack, ClaimProof, EpochDetail, JobFailure, LeaseRequest, LeaseResponse, NodeStatus,
    PATH_BATCHES, PATH_EPOCHS, PATH_INFO, PATH_LEASE, PATH_ME, PATH_REGISTER, PATH_RELEASE,
    PATH_REPORT, PATH_REVOCATIONS, Problem, RegisterRequest, RegisterResponse, ReleaseRequest,
    ReportRequest, Revocation, ValidatorInfo,
};
use gleaner_protocol::{
    BATCH_CONTENT_TYPE, Digest, EpochRoot, PublicKey, Receipt, RequestAuth, SecretKey, random_nonce,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::util::now_ms;

/// Time-out of one validator request. Batch uploads of a few hundred KB fit comfortably.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest validator answer read (receipts of 1,000 records are ~200 KB).
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// Largest epoch detail read (every leaf of a reward tree, ~80 bytes of JSON each: about
/// 400,000 payout keys). Read once per closed epoch, and only by a node with no leaf in it.
pub const MAX_EPOCH_DETAIL_BYTES: usize = 32 * 1024 * 1024;
/// First retry delay of a failed batch submission; doubles per attempt up to [`BACKOFF_MAX`].
pub const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

/// A validator call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    #[error("validator {url} unreachable: {why}")]
    Unreachable { url: String, why: String },
    #[error("validator {url} answered {status}: {code}: {detail}")]
    Status {
        url: String,
        status: u16,
        code: String,
        detail: String,
    },
    #[error("validator {url} sent an unreadable answer: {why}")]
    Decode { url: String, why: String },
    #[error("receipt from {url} does not verify: {why}")]
    BadReceipt { url: String, why: String },
    #[error("could not sign the request: {0}")]
    Sign(String),
}

impl SubmitError {
    pub fn code(&self) -> &'static str {
        match self {
            SubmitError::Unreachable { .. } => "validator_unreachable",
            SubmitError::Status { .. } => "validator_error",
            SubmitError::Decode { .. } => "validator_bad_answer",
            SubmitError::BadReceipt { .. } => "bad_receipt",
            SubmitError::Sign(_) => "sign_error",
        }
    }

    /// Whether retrying the same request later can succeed (network trouble, 5xx, 429, 408).
    pub fn is_transient(&self) -> bool {
        match self {
            SubmitError::Unreachable { .. } | SubmitError::Decode { .. } => true,
            SubmitError::Status { status, .. } => {
                *status >= 500 || *status == 429 || *status == 408
            }
            SubmitError::BadReceipt { .. } => true,
            SubmitError::Sign(_) => false,
        }
    }
}

/// Exponential back-off with full jitter: a random delay in `[d/2, d]`, `d = base · 2^attempt`.
pub fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let exp = BACKOFF_BASE.saturating_mul(1u32 << attempt.min(16));
    let d = exp.min(BACKOFF_MAX);
    let ms = d.as_millis() as u64;
    Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms.max(1)))
}

/// A client for one validator. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ValidatorClient {
    base: String,
    http: reqwest::Client,
    key: SecretKey,
    validator_key: Arc<Mutex<Option<PublicKey>>>,
}

impl ValidatorClient {
    /// `base`: the validator's base URL (`http://127.0.0.1:8080`).
    pub fn new(base: &str, key: SecretKey) -> Result<Self, SubmitError> {
        let tls = crate::fetch::tls_config().map_err(|e| SubmitError::Unreachable {
            url: base.to_string(),
            why: e.to_string(),
        })?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(crate::fetch::DEFAULT_CONNECT_TIMEOUT)
            .user_agent(concat!("gleaner/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SubmitError::Unreachable {
                url: base.to_string(),
                why: e.to_string(),
            })?;
        Ok(ValidatorClient {
            base: base.trim_end_matches('/').to_string(),
            http,
            key,
            validator_key: Arc::default(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The validator's key, once learned from `GET /v1/info`.
    pub fn validator_key(&self) -> Option<PublicKey> {
        self.validator_key.lock().ok().and_then(|g| *g)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, SubmitError> {
        self.call_up_to(method, path, content_type, body, MAX_RESPONSE_BYTES)
            .await
    }

    /// [`ValidatorClient::call`] reading at most `max` bytes of answer.
    async fn call_up_to(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        max: usize,
    ) -> Result<Vec<u8>, SubmitError> {
        let url = format!("{}{}", self.base, path);
        let nonce = random_nonce().map_err(|e| SubmitError::Sign(e.to_string()))?;
        let auth = RequestAuth::sign(&self.key, method.as_str(), path, now_ms(), nonce, &body);
        let mut req = self.http.request(method, &url);
        for (name, value) in auth.headers() {
            req = req.header(name, value);
        }
        if !body.is_empty() {
            req = req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body);
        }
        let unreachable = |e: reqwest::Error| SubmitError::Unreachable {
            url: url.clone(),
            why: e.to_string(),
        };
        let mut resp = req.send().await.map_err(unreachable)?;
        let status = resp.status().as_u16();
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            if out.len() + chunk.len() > max {
                return Err(SubmitError::Decode {
                    url,
                    why: "answer too large".into(),
                });
            }
            out.extend_from_slice(&chunk);
        }
        if !(200..300).contains(&status) {
            let problem: Option<Problem> = serde_json::from_slice(&out).ok();
            return Err(SubmitError::Status {
                url,
                status,
                code: problem
                    .as_ref()
                    .map(|p| p.code.clone())
                    .unwrap_or_else(|| "http_error".into()),
                detail: problem
                    .map(|p| p.detail)
                    .unwrap_or_else(|| String::from_utf8_lossy(&out).chars().take(300).collect()),
            });
        }
        Ok(out)
    }

    async fn json<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Req>,
    ) -> Result<Resp, SubmitError> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| SubmitError::Sign(e.to_string()))?,
            None => Vec::new(),
        };
        let out = self.call(method, path, "application/json", bytes).await?;
        serde_json::from_slice(&out).map_err(|e| SubmitError::Decode {
            url: format!("{}{}", self.base, path),
            why: e.to_string(),
        })
    }

    /// `GET /v1/info`; remembers the validator's key for receipt checks.
    pub async fn info(&self) -> Result<ValidatorInfo, SubmitError> {
        let info: ValidatorInfo = self
            .json::<(), _>(reqwest::Method::GET, PATH_INFO, None)
            .await?;
        if let Ok(mut g) = self.validator_key.lock() {
            *g = Some(info.validator);
        }
        Ok(info)
    }

    pub async fn register(&self, payout: PublicKey) -> Result<RegisterResponse, SubmitError> {
        let req = RegisterRequest {
            payout,
            client: concat!("gleaner/", env!("CARGO_PKG_VERSION")).to_string(),
        };
        self.json(reqwest::Method::POST, PATH_REGISTER, Some(&req))
            .await
    }

    pub async fn lease(&self, max: u32) -> Result<LeaseResponse, SubmitError> {
        self.json(
            reqwest::Method::POST,
            PATH_LEASE,
            Some(&LeaseRequest { max }),
        )
        .await
    }

    pub async fn report(&self, failures: Vec<JobFailure>) -> Result<Ack, SubmitError> {
        self.json(
            reqwest::Method::POST,
            PATH_REPORT,
            Some(&ReportRequest { failures }),
        )
        .await
    }

    pub async fn release(&self, lease_ids: Vec<String>) -> Result<Ack, SubmitError> {
        self.json(
            reqwest::Method::POST,
            PATH_RELEASE,
            Some(&ReleaseRequest { lease_ids }),
        )
        .await
    }

    /// `GET /v1/epochs`: the closed epochs' signed roots, newest first, as the validator
    /// publishes them (unverified: [`crate::rewards`] checks them).
    pub async fn epochs(&self) -> Result<Vec<EpochRoot>, SubmitError> {
        self.json::<(), _>(reqwest::Method::GET, PATH_EPOCHS, None)
            .await
    }

    /// `GET /v1/epochs/{epoch}`: the epoch's root and all its leaves, as published (unverified),
    /// at most [`MAX_EPOCH_DETAIL_BYTES`].
    pub async fn epoch_detail(&self, epoch: u64) -> Result<EpochDetail, SubmitError> {
        let path = format!("{PATH_EPOCHS}/{epoch}");
        let out = self
            .call_up_to(
                reqwest::Method::GET,
                &path,
                "application/json",
                Vec::new(),
                MAX_EPOCH_DETAIL_BYTES,
            )
            .await?;
        serde_json::from_slice(&out).map_err(|e| SubmitError::Decode {
            url: format!("{}{}", self.base, path),
            why: e.to_string(),
        })
    }

    /// `GET /v1/epochs/{epoch}/proof/{claimant}`: the claimant's leaf in the epoch's reward tree
    /// and its proof (unverified); `None` when the validator says the tree has no leaf for it.
    pub async fn claim_proof(
        &self,
        epoch: u64,
        claimant: &PublicKey,
    ) -> Result<Option<ClaimProof>, SubmitError> {
        let path = format!("{PATH_EPOCHS}/{epoch}/proof/{claimant}");
        match self.json::<(), _>(reqwest::Method::GET, &path, None).await {
            Ok(proof) => Ok(Some(proof)),
            Err(SubmitError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v1/revocations?node=…&after=…&limit=…`: up to `limit` entries of the validator's
    /// revocation log for `node` after `after`, as published (unverified, possibly out of order).
    pub async fn revocations(
        &self,
        node: &PublicKey,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Revocation>, SubmitError> {
        let path = format!("{PATH_REVOCATIONS}?node={node}&after={after}&limit={limit}");
        self.json::<(), _>(reqwest::Method::GET, &path, None).await
    }

    pub async fn me(&self) -> Result<NodeStatus, SubmitError> {
        self.json::<(), _>(reqwest::Method::GET, PATH_ME, None)
            .await
    }

    /// Sends an encoded batch and verifies the receipt: signed by this validator, for this batch,
    /// for this node, one verdict per record.
    pub async fn submit(
        &self,
        batch_id: &Digest,
        body: Vec<u8>,
        record_count: u32,
    ) -> Result<Receipt, SubmitError> {
        let vkey = match self.validator_key() {
            Some(k) => k,
            None => self.info().await?.validator,
        };
        let out = self
            .call(
                reqwest::Method::POST,
                PATH_BATCHES,
                BATCH_CONTENT_TYPE,
                body,
            )
            .await?;
        let url = format!("{}{}", self.base, PATH_BATCHES);
        let receipt: Receipt = serde_json::from_slice(&out).map_err(|e| SubmitError::Decode {
            url: url.clone(),
            why: e.to_string(),
        })?;
        receipt
            .verify_for(&vkey, batch_id)
            .map_err(|e| SubmitError::BadReceipt {
                url: url.clone(),
                why: e.to_string(),
            })?;
        if receipt.node != self.key.public() {
            return Err(SubmitError::BadReceipt {
                url,
                why: format!("receipt is for node {}", receipt.node),
            });
        }
        if receipt.verdicts.len() != record_count as usize {
            return Err(SubmitError::BadReceipt {
                url,
                why: format!(
                    "{} verdicts for {record_count} records",
                    receipt.verdicts.len()
                ),
            });
        }
        Ok(receipt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..40 {
            let d = backoff(attempt);
            assert!(d <= BACKOFF_MAX);
            let full = BACKOFF_BASE
                .saturating_mul(1u32 << attempt.min(16))
                .min(BACKOFF_MAX);
            assert!(d >= full / 2, "{attempt}: {d:?}");
        }
    }
}
