//! JSON wire types of the validator's HTTP API, shared by node and validator.
//!
//! Node endpoints require a signed request ([`crate::auth`]); batches travel as
//! [`crate::BATCH_CONTENT_TYPE`]; errors are `application/problem+json` ([`Problem`]).

use serde::{Deserialize, Serialize};

pub use crate::receipt::Revocation;
use crate::{Digest, EpochRoot, PublicKey, RewardLeaf};

pub const PATH_REGISTER: &str = "/v1/nodes/register";
pub const PATH_LEASE: &str = "/v1/jobs/lease";
pub const PATH_REPORT: &str = "/v1/jobs/report";
pub const PATH_RELEASE: &str = "/v1/jobs/release";
pub const PATH_BATCHES: &str = "/v1/batches";
pub const PATH_INFO: &str = "/v1/info";
pub const PATH_ME: &str = "/v1/nodes/me";
/// `GET /v1/epochs/{epoch}/proof/{claimant}`
pub const PATH_EPOCHS: &str = "/v1/epochs";
/// `GET /v1/revocations?after=SEQ&limit=N`: [`Revocation`]s, oldest first.
pub const PATH_REVOCATIONS: &str = "/v1/revocations";

/// `POST /v1/nodes/register` (signed): the node's payout address and client name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterRequest {
    /// Where rewards go; an ed25519 key (Solana address). Defaults to the node key.
    pub payout: PublicKey,
    /// Client name and version, e.g. `gleaner/0.1.0`.
    pub client: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterResponse {
    pub node: PublicKey,
    pub payout: PublicKey,
    pub validator: PublicKey,
    /// Credibility in [0, 1]; new identities start low.
    pub credibility: f64,
}

/// `GET /v1/info`: who the validator is and what it accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidatorInfo {
    pub validator: PublicKey,
    pub version: String,
    pub epoch: u64,
    pub max_batch_records: u32,
    pub max_batch_bytes: u64,
    pub scoring: String,
}

/// `POST /v1/jobs/lease` (signed): ask for up to `max` jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeaseRequest {
    pub max: u32,
}

/// One crawl job: fetch `url` and answer with a record carrying `lease_id` before `expires_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    pub lease_id: String,
    pub url: String,
    /// Unix milliseconds UTC.
    pub expires_at_ms: i64,
    /// Whether the validator may follow the page's links (its crawl request reaches deeper and
    /// has pages left to queue). When false the record carries none: the validator would read
    /// none, and they would cost the node's upload and the validator's decoding for nothing.
    /// Absent (from validators before this field): true.
    #[serde(default = "links_wanted_by_default")]
    pub follow_links: bool,
}

/// [`Job::follow_links`] when a validator does not say.
fn links_wanted_by_default() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeaseResponse {
    pub jobs: Vec<Job>,
    /// When `jobs` is empty: how long to wait before asking again.
    pub retry_after_ms: u64,
    /// Jobs still waiting in the network (queued, or leased and not yet answered), besides
    /// `jobs`. An empty answer with `pending > 0` means "later" (politeness, or a validator
    /// deferring new work while batches queue for its checks); `0` means done.
    #[serde(default)]
    pub pending: u64,
}

/// Why a node could not produce a record for a job. Stable snake_case codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    RobotsDisallowed,
    /// robots.txt answered 5xx or could not be reached: treated as disallowed for now.
    RobotsUnreachable,
    HttpError,
    BlockedAddress,
    BlockedDomain,
    NotHtml,
    Timeout,
    TooLarge,
    TooManyRedirects,
    NetworkError,
    InvalidUrl,
    NoIndex,
    Other,
}

impl FailureReason {
    pub fn code(self) -> &'static str {
        match self {
            FailureReason::RobotsDisallowed => "robots_disallowed",
            FailureReason::RobotsUnreachable => "robots_unreachable",
            FailureReason::HttpError => "http_error",
            FailureReason::BlockedAddress => "blocked_address",
            FailureReason::BlockedDomain => "blocked_domain",
            FailureReason::NotHtml => "not_html",
            FailureReason::Timeout => "timeout",
            FailureReason::TooLarge => "too_large",
            FailureReason::TooManyRedirects => "too_many_redirects",
            FailureReason::NetworkError => "network_error",
            FailureReason::InvalidUrl => "invalid_url",
            FailureReason::NoIndex => "noindex",
            FailureReason::Other => "other",
        }
    }
}

/// `POST /v1/jobs/report` (signed): jobs that ended without a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportRequest {
    pub failures: Vec<JobFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobFailure {
    pub lease_id: String,
    pub reason: FailureReason,
    /// Human-readable detail (bounded by the validator).
    pub detail: String,
    /// HTTP status when there was one.
    pub status: Option<u16>,
    /// robots.txt Crawl-delay for the domain, when known, for network-wide politeness.
    pub crawl_delay_ms: Option<u32>,
}

/// `POST /v1/jobs/release` (signed): give leases back unfetched (pause, exit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReleaseRequest {
    pub lease_ids: Vec<String>,
}

/// Answer to report and release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ack {
    pub accepted: u32,
}

/// `GET /v1/nodes/me` (signed): the node's standing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeStatus {
    pub node: PublicKey,
    pub payout: PublicKey,
    pub credibility: f64,
    /// Points credited in total (all epochs).
    pub points_total: u64,
    /// Points credited in the open epoch.
    pub points_pending: u64,
    pub epoch: u64,
    /// The node's records this validator accepted and revoked since (a failed cross-check, a
    /// page found gone), their points taken back. A receipt never changes, so this is how a node
    /// learns of it. 0 from validators older than the field.
    #[serde(default)]
    pub records_revoked: u64,
    /// Cross-checks that found this node's fetch right: another node's (or the validator's) fetch
    /// of the same page agreed. Credibility, and with it the points a page earns, grows with
    /// them. 0 from validators older than the field.
    #[serde(default)]
    pub checks_passed: u64,
    /// Cross-checks that found its fetch wrong (its text contradicted, or a page nobody else
    /// found). 0 from validators older than the field.
    #[serde(default)]
    pub checks_failed: u64,
    /// Why this validator's operator suspended the node, while it is suspended: it gets no
    /// lease and no batch of its is taken. Absent otherwise, and from validators older than the
    /// field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<String>,
}

/// `GET /v1/epochs/{epoch}`: a closed epoch's signed root and every leaf of its reward tree.
/// `gleaner_protocol::RewardTree::new` over `leaves` rebuilds `root.root`, which also shows
/// which payout keys have no leaf (the sorted tree has no proof of absence, but all its leaves
/// are public).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EpochDetail {
    pub root: EpochRoot,
    pub leaves: Vec<RewardLeaf>,
}

/// `GET /v1/epochs/{epoch}/proof/{claimant}`: a claim proof, verifiable with
/// `gleaner_protocol::verify_reward_proof` against `epoch.root`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimProof {
    pub epoch: EpochRoot,
    pub leaf: RewardLeaf,
    /// Sibling hashes from the leaf up, hex.
    pub proof: Vec<Digest>,
}

/// `POST /v1/crawl-requests` (lab API key) and `/v1/admin/crawl-requests` (admin token): pages
/// to crawl.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CrawlRequest {
    /// URLs to fetch first.
    pub seeds: Vec<String>,
    /// Registered domains whose outlinks are followed (the seeds' domains always are).
    #[serde(default)]
    pub domains: Vec<String>,
    /// Sitemap URLs, fetched by the validator itself (robots.txt permitting); the pages they
    /// list are queued, and their sites are in scope.
    #[serde(default)]
    pub sitemaps: Vec<String>,
    /// Most pages queued for this request, seeds included.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    /// How many links away from a seed the crawl may go (0 = seeds only).
    #[serde(default = "default_max_depth")]
    pub max_depth: u32,
}

fn default_max_pages() -> u32 {
    10_000
}

fn default_max_depth() -> u32 {
    3
}

/// What adding a crawl request did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CrawlRequestAdded {
    pub id: i64,
    /// New URLs queued.
    pub queued: u32,
    /// Seeds already in the seen-set.
    pub already_seen: u32,
    /// Seeds refused, with a reason code.
    pub refused: Vec<(String, String)>,
}

/// `DELETE /v1/crawl-requests/{id}`: what cancelling a crawl request stopped. Pages already
/// out with nodes finish; nothing more is queued for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CrawlCancelled {
    pub id: i64,
    /// Queued pages taken off the frontier (`cancelled` in its progress), and out of the
    /// seen-set, so a later request may ask for them again.
    pub pages_cancelled: u64,
    /// Sitemaps not yet read, now never read.
    pub sitemaps_cancelled: u64,
}

/// `GET /v1/crawl-requests`: a crawl request and how far it has got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CrawlProgress {
    pub id: i64,
    pub created_at_ms: i64,
    /// `operator`, `admin` or `lab:N` (the lab's key by its place in the validator's config).
    pub requester: String,
    /// The registered domains in scope.
    pub scope: Vec<String>,
    pub max_pages: i64,
    pub max_depth: i64,
    /// Pages queued for it (seeds, outlinks and sitemaps' URLs), at most `max_pages`.
    pub pages_queued: i64,
    /// Its pages' jobs by state: `queued`, `leased` (a node is on it), `done` (a record came
    /// back), `failed` (no record: robots.txt, fetch errors, gone) and `cancelled`.
    pub pages: std::collections::BTreeMap<String, u64>,
    /// Its sitemaps by state: `queued`, `done`, `failed`.
    pub sitemaps: std::collections::BTreeMap<String, u64>,
    /// The records its pages brought, by their verdict now: `accepted` (in the next dataset),
    /// `duplicate`, `rejected` (by the quality rules) and `revoked` (accepted, then found
    /// fabricated or gone). Empty from validators older than the field.
    #[serde(default)]
    pub records: std::collections::BTreeMap<String, u64>,
    /// Nothing of it is queued or out: no page job queued or leased, no sitemap queued.
    pub finished: bool,
}

/// An RFC 9457 problem document with a stable reason `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// A URI naming the problem type, `urn:gleaner:problem:{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable reason code, e.g. `bad_signature`.
    pub code: String,
}

impl Problem {
    pub fn new(status: u16, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:gleaner:problem:{code}"),
            title: code.replace('_', " "),
            status,
            detail: detail.into(),
            code: code.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job from a validator that does not say whether it wants the page's links asks for
    /// them, as every validator did before; one that says is taken at its word.
    #[test]
    fn a_job_wants_its_links_unless_the_validator_says_otherwise() {
        let old: Job = serde_json::from_str(
            r#"{"lease_id":"l","url":"https://a.example/","expires_at_ms":1}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(old.follow_links);
        let no = Job {
            follow_links: false,
            ..old.clone()
        };
        let json = serde_json::to_string(&no).unwrap_or_else(|e| panic!("{e}"));
        assert!(json.contains(r#""follow_links":false"#), "{json}");
        let back: Job = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, no);
    }

    /// A standing from a validator older than `records_revoked` reads as none revoked; a newer
    /// one's count is kept.
    #[test]
    fn a_standing_without_revocations_reads_as_none_revoked() {
        let key = crate::SecretKey::from_bytes(&[3; 32]).public();
        let old = format!(
            r#"{{"node":"{key}","payout":"{key}","credibility":0.5,"points_total":7,
                "points_pending":2,"epoch":4}}"#
        );
        let old: NodeStatus = serde_json::from_str(&old).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((old.records_revoked, old.points_total), (0, 7));
        assert_eq!((old.checks_passed, old.checks_failed), (0, 0));
        let new = NodeStatus {
            records_revoked: 5,
            ..old
        };
        let json = serde_json::to_string(&new).unwrap_or_else(|e| panic!("{e}"));
        let back: NodeStatus = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.records_revoked, 5);
    }
}
