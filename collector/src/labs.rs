//! The lab side of a validator's crawl API (`gleaner crawl`): submit crawl requests with the
//! lab's API key and follow how far each has got. The wire types are the protocol crate's
//! ([`CrawlRequest`], [`CrawlRequestAdded`], [`CrawlProgress`], [`CrawlCancelled`]); refusals
//! come back as the
//! validator's problem documents, their reason codes kept.

use std::time::Duration;

use gleaner_protocol::api::{
    CrawlCancelled, CrawlProgress, CrawlRequest, CrawlRequestAdded, Problem,
};
use serde::de::DeserializeOwned;

/// The crawl API's path: `POST` adds a request, `GET` lists the key's own, `DELETE …/{id}`
/// cancels one.
pub const PATH_CRAWL_REQUESTS: &str = "/v1/crawl-requests";

/// How long one call may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest answer read (a list of many requests stays far below it).
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// A crawl request's command-line arguments, for both sides: a lab's `gleaner crawl add` and an
/// operator's `gleaner-validator crawl add`.
#[derive(Debug, Clone, clap::Args)]
pub struct CrawlArgs {
    /// Seed URL (repeatable).
    #[arg(long = "seed", required_unless_present = "sitemaps")]
    pub seeds: Vec<String>,
    /// Another registered domain whose pages may be followed (repeatable); the seeds' own are.
    #[arg(long = "domain")]
    pub domains: Vec<String>,
    /// Sitemap URL (repeatable): the validator fetches it (robots.txt permitting) and queues
    /// what it lists.
    #[arg(long = "sitemap")]
    pub sitemaps: Vec<String>,
    /// Most pages crawled for this request, seeds included.
    #[arg(long, default_value_t = 10_000)]
    pub max_pages: u32,
    /// How many links away from a seed the crawl may go (0: the seeds alone).
    #[arg(long, default_value_t = 3)]
    pub max_depth: u32,
}

impl From<CrawlArgs> for CrawlRequest {
    fn from(a: CrawlArgs) -> Self {
        CrawlRequest {
            seeds: a.seeds,
            domains: a.domains,
            sitemaps: a.sitemaps,
            max_pages: a.max_pages,
            max_depth: a.max_depth,
        }
    }
}

/// Why a call to the crawl API failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("cannot reach {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error("{url} refused the call ({status}): {detail}")]
    Refused {
        url: String,
        status: u16,
        /// The validator's reason code (`bad_token`, `invalid_request`, …).
        code: String,
        detail: String,
    },
    #[error("{url} answered something that is not the crawl API's: {why}")]
    BadAnswer { url: String, why: String },
}

impl LabError {
    /// Stable reason code: the validator's own for a refusal.
    pub fn code(&self) -> &str {
        match self {
            LabError::Unreachable { .. } => "validator_unreachable",
            LabError::Refused { code, .. } => code,
            LabError::BadAnswer { .. } => "bad_answer",
        }
    }
}

/// A validator's crawl API, called with a lab's API key.
#[derive(Debug, Clone)]
pub struct LabClient {
    base: String,
    api_key: String,
    http: reqwest::Client,
}

impl LabClient {
    /// `base`: the validator's base URL (`https://validator.example`); `api_key`: the lab's key
    /// (the admin token also works, and then lists every request).
    pub fn new(base: &str, api_key: &str) -> Result<Self, LabError> {
        let unreachable = |why: String| LabError::Unreachable {
            url: base.to_string(),
            why,
        };
        let tls = crate::fetch::tls_config().map_err(|e| unreachable(e.to_string()))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(crate::fetch::DEFAULT_CONNECT_TIMEOUT)
            .user_agent(concat!("gleaner/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(LabClient {
            base: base.trim_end_matches('/').to_string(),
            api_key: api_key.to_string(),
            http,
        })
    }

    /// Submits a crawl request; the validator says what it queued and what it refused.
    pub async fn add(&self, request: &CrawlRequest) -> Result<CrawlRequestAdded, LabError> {
        let url = self.url();
        let body = serde_json::to_vec(request).map_err(|e| LabError::BadAnswer {
            url: url.clone(),
            why: format!("the request would not encode: {e}"),
        })?;
        let call = self
            .http
            .post(&url)
            .bearer_auth(&self.api_key)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        answer(&url, call).await
    }

    /// The key's own crawl requests, oldest first, each with how far it has got (the
    /// validator reads them at most every few seconds).
    pub async fn list(&self) -> Result<Vec<CrawlProgress>, LabError> {
        let url = self.url();
        answer(&url, self.http.get(&url).bearer_auth(&self.api_key)).await
    }

    /// Cancels one of the key's crawl requests: its queued pages leave the frontier; pages out
    /// with nodes finish.
    pub async fn cancel(&self, id: i64) -> Result<CrawlCancelled, LabError> {
        let url = format!("{}/{id}", self.url());
        answer(&url, self.http.delete(&url).bearer_auth(&self.api_key)).await
    }

    fn url(&self) -> String {
        format!("{}{PATH_CRAWL_REQUESTS}", self.base)
    }
}

/// Sends `call` and reads its JSON answer, or the problem document of a refusal.
async fn answer<T: DeserializeOwned>(
    url: &str,
    call: reqwest::RequestBuilder,
) -> Result<T, LabError> {
    let unreachable = |e: reqwest::Error| LabError::Unreachable {
        url: url.to_string(),
        why: e.to_string(),
    };
    let mut response = call.send().await.map_err(unreachable)?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(LabError::BadAnswer {
                url: url.to_string(),
                why: format!("an answer over {MAX_ANSWER_BYTES} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let problem: Option<Problem> = serde_json::from_slice(&body).ok();
        return Err(match problem {
            Some(p) => LabError::Refused {
                url: url.to_string(),
                status: status.as_u16(),
                code: p.code,
                detail: p.detail,
            },
            None => LabError::Refused {
                url: url.to_string(),
                status: status.as_u16(),
                code: format!("http_{}", status.as_u16()),
                detail: String::from_utf8_lossy(&body).chars().take(200).collect(),
            },
        });
    }
    serde_json::from_slice(&body).map_err(|e| LabError::BadAnswer {
        url: url.to_string(),
        why: e.to_string(),
    })
}
