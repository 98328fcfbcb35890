//! The safe fetcher: one GET with manual redirects, the address policy applied and the checked
//! addresses pinned on every hop, size and time caps, content decoding with a cap, charset
//! detection. Usable standalone (the validator uses it for its own cross-checks):
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use gleaner_collector::fetch::{FetchConfig, Fetcher};
//! let fetcher = Fetcher::new(FetchConfig::default())?;
//! let page = fetcher.fetch("https://example.com/").await?;
//! println!("{} {} bytes", page.status, page.body.len());
//! # Ok(()) }
//! ```
//!
//! Requests carry only a fixed set of headers chosen here (User-Agent, Accept, Accept-Encoding):
//! no cookies, no credentials, nothing a server or a validator chose.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use gleaner_protocol::api::FailureReason;
use tokio::time::Instant;
use url::Url;

use crate::policy::{AddressPolicy, MAX_REDIRECTS, PolicyError};
use crate::util::now_ms;

/// The node's User-Agent: a name, a version, and a page explaining the crawler and how to opt out.
pub const USER_AGENT: &str = "GleanerBot/0.1 (+https://gleaner.example/bot)";
/// The product token robots.txt groups are matched against.
pub const ROBOTS_TOKEN: &str = "GleanerBot";
/// Default body cap (decoded bytes): 5 MiB holds the largest ordinary pages; beyond it the page is
/// cut and flagged `truncated`.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 5 * 1024 * 1024;
/// Connect time-out: a web server that cannot accept in 10 s is down (Nutch, StormCrawler: 10 s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Total time-out for one hop, headers and body: 30 s covers slow but honest servers.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest silence between two body chunks before the fetch is abandoned.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Slow-drip guard: after [`SLOW_DRIP_GRACE`], a body arriving slower than this is abandoned. A
/// real server sends far faster; a tar-pit dribbles bytes to hold a connection open.
pub const DEFAULT_MIN_BYTES_PER_SEC: u64 = 2 * 1024;
/// Time a body may take before the slow-drip guard applies.
pub const SLOW_DRIP_GRACE: Duration = Duration::from_secs(5);
/// A compressed body expanding more than this many times is a decompression bomb (real HTML
/// compresses 4–15×).
pub const MAX_COMPRESSION_RATIO: u64 = 100;
/// Decoded bytes below which the compression ratio is not judged (tiny pages compress oddly).
const RATIO_FLOOR_BYTES: u64 = 1024 * 1024;
/// How much of a body the charset detector reads.
const CHARSET_SNIFF_BYTES: usize = 64 * 1024;
/// robots.txt cap: RFC 9309 asks crawlers to parse at least 500 KiB.
pub const MAX_ROBOTS_BYTES: u64 = 512 * 1024;

/// Limits and policy for a [`Fetcher`]. Built by the node from the user's settings.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    pub policy: AddressPolicy,
    pub max_body_bytes: u64,
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    pub idle_timeout: Duration,
    pub min_bytes_per_sec: u64,
    pub max_redirects: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            policy: AddressPolicy::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            total_timeout: DEFAULT_TOTAL_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            min_bytes_per_sec: DEFAULT_MIN_BYTES_PER_SEC,
            max_redirects: MAX_REDIRECTS,
        }
    }
}

/// What is being fetched: a page (2xx HTML only), a robots.txt (any type, smaller cap, any
/// status), or a sitemap (2xx, any type: XML, or gzip-compressed XML; the validator's crawl
/// requests name them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Page,
    Robots,
    Sitemap,
}

/// `X-Robots-Tag` directives that apply to Gleaner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XRobots {
    pub noindex: bool,
    pub nofollow: bool,
}

/// A fetched response.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL asked for.
    pub url: String,
    /// The URL of the final response (after redirects).
    pub final_url: String,
    pub status: u16,
    /// Media type, lower case, no parameters ("" when absent).
    pub content_type: String,
    /// WHATWG name of the encoding used, lower case.
    pub charset: String,
    /// Decoded body bytes (after content decoding, before charset decoding).
    pub body: Vec<u8>,
    /// Body as text.
    pub text: String,
    /// Body bytes received on the wire.
    pub wire_bytes: u64,
    pub truncated: bool,
    /// Unix ms when the final response's headers arrived.
    pub fetched_at_ms: i64,
    pub x_robots: XRobots,
    pub redirects: usize,
}

/// Why a fetch failed. `reason()` maps to the job failure reported to the validator.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("robots.txt disallows {url}")]
    RobotsDisallowed { url: String },
    #[error("robots.txt of {url} is unreachable: {why}")]
    RobotsUnreachable { url: String, why: String },
    #[error("HTTP {status} from {url}")]
    Http {
        url: String,
        status: u16,
        /// Server's `Retry-After` on 429/503.
        retry_after: Option<Duration>,
    },
    #[error("not HTML ({content_type:?}): {url}")]
    NotHtml { url: String, content_type: String },
    #[error("time-out ({what}) fetching {url}")]
    Timeout { url: String, what: &'static str },
    #[error("{what} fetching {url}")]
    TooLarge { url: String, what: &'static str },
    #[error("more than {max} redirects (or a loop) from {url}")]
    TooManyRedirects { url: String, max: usize },
    #[error("network error fetching {url}: {why}")]
    Network { url: String, why: String },
    #[error("{url} asks not to be indexed ({source_of})")]
    NoIndex {
        url: String,
        source_of: &'static str,
    },
    #[error("domain of {url} is busy (politeness wait {wait_ms} ms)")]
    Busy { url: String, wait_ms: u64 },
    #[error("{what}: {url}")]
    Other { url: String, what: String },
}

impl FetchError {
    pub fn reason(&self) -> FailureReason {
        match self {
            FetchError::Policy(p) => p.reason(),
            FetchError::RobotsDisallowed { .. } => FailureReason::RobotsDisallowed,
            FetchError::RobotsUnreachable { .. } => FailureReason::RobotsUnreachable,
            FetchError::Http { .. } => FailureReason::HttpError,
            FetchError::NotHtml { .. } => FailureReason::NotHtml,
            FetchError::Timeout { .. } => FailureReason::Timeout,
            FetchError::TooLarge { .. } => FailureReason::TooLarge,
            FetchError::TooManyRedirects { .. } => FailureReason::TooManyRedirects,
            FetchError::Network { .. } => FailureReason::NetworkError,
            FetchError::NoIndex { .. } => FailureReason::NoIndex,
            FetchError::Busy { .. } | FetchError::Other { .. } => FailureReason::Other,
        }
    }

    /// Stable snake_case code (more specific than `reason()` for policy refusals).
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::Policy(p) => p.code(),
            FetchError::Busy { .. } => "busy",
            other => other.reason().code(),
        }
    }

    /// The HTTP status, when there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// One request made (or refused) on the user's connection, for the activity log.
#[derive(Debug, Clone)]
pub struct HopEvent {
    pub at_ms: i64,
    pub purpose: Purpose,
    pub url: String,
    pub status: Option<u16>,
    pub wire_bytes: u64,
    /// `ok`, `redirect`, or a failure code.
    pub verdict: String,
    pub detail: String,
    /// True when no request was made (the URL or its address was refused by the policy).
    pub refused: bool,
}

/// Hooks the node plugs into a fetch: robots/politeness before each hop, bandwidth throttling per
/// chunk, and the activity log. The defaults do nothing.
pub trait FetchHooks: Send + Sync {
    /// Called before each hop is requested (after the policy accepted its URL).
    fn before_hop<'a>(
        &'a self,
        _url: &'a Url,
        _purpose: Purpose,
    ) -> Pin<Box<dyn Future<Output = Result<(), FetchError>> + Send + 'a>> {
        Box::pin(async { Ok(()) })
    }
    /// Called for every chunk received; may wait (token bucket).
    fn on_bytes(&self, _n: u64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
    /// Called once per request made or refused.
    fn on_hop(&self, _event: HopEvent) {}
}

/// Hooks that do nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;
impl FetchHooks for NoHooks {}

/// Could not build the HTTP client.
#[derive(Debug, thiserror::Error)]
#[error("fetcher setup failed: {0}")]
pub struct SetupError(pub String);

/// The safe fetcher. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Fetcher {
    cfg: Arc<FetchConfig>,
    tls: Arc<rustls::ClientConfig>,
}

/// A rustls client configuration with the ring provider and the platform's certificate verifier.
pub fn tls_config() -> Result<rustls::ClientConfig, SetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| SetupError(e.to_string()))?;
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(cfg)
}

/// A resolver that resolves nothing: every connection must use a pinned, checked address.
#[derive(Debug)]
struct NoDns;
impl reqwest::dns::Resolve for NoDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_string();
        Box::pin(async move { Err(format!("{name}: unpinned DNS lookups are refused").into()) })
    }
}

impl Fetcher {
    pub fn new(cfg: FetchConfig) -> Result<Self, SetupError> {
        Ok(Fetcher {
            cfg: Arc::new(cfg),
            tls: Arc::new(tls_config()?),
        })
    }

    pub fn config(&self) -> &FetchConfig {
        &self.cfg
    }

    /// A fetcher with another configuration, sharing the TLS setup.
    pub fn with_config(&self, cfg: FetchConfig) -> Self {
        Fetcher {
            cfg: Arc::new(cfg),
            tls: self.tls.clone(),
        }
    }

    /// Fetches an HTML page with no hooks (no robots.txt check: that is the node's job, see
    /// [`crate::robots`]).
    pub async fn fetch(&self, url: &str) -> Result<Fetched, FetchError> {
        self.fetch_with(url, Purpose::Page, &NoHooks).await
    }

    /// Fetches `url` for `purpose`. Pages must be 2xx HTML; robots.txt answers are returned with
    /// any status.
    pub async fn fetch_with(
        &self,
        url: &str,
        purpose: Purpose,
        hooks: &dyn FetchHooks,
    ) -> Result<Fetched, FetchError> {
        self.fetch_inner(url, purpose, hooks).await
    }

    async fn fetch_inner(
        &self,
        url: &str,
        purpose: Purpose,
        hooks: &dyn FetchHooks,
    ) -> Result<Fetched, FetchError> {
        let refused = |shown: &str, e: PolicyError| {
            hooks.on_hop(HopEvent {
                at_ms: now_ms(),
                purpose,
                url: crate::util::cut(shown, 2048).to_string(),
                status: None,
                wire_bytes: 0,
                verdict: e.code().to_string(),
                detail: e.to_string(),
                refused: true,
            });
            FetchError::Policy(e)
        };
        let mut current = self
            .cfg
            .policy
            .check_str(url)
            .map_err(|e| refused(url, e))?
            .url;
        let mut seen: Vec<Url> = Vec::new();
        for hop in 0..=self.cfg.max_redirects {
            let target = self
                .cfg
                .policy
                .check_url(current.clone())
                .map_err(|e| refused(current.as_str(), e))?;
            if seen.contains(&target.url) {
                break;
            }
            seen.push(target.url.clone());
            hooks.before_hop(&target.url, purpose).await?;
            let addrs = self
                .cfg
                .policy
                .resolve(&target)
                .await
                .map_err(|e| refused(target.url.as_str(), e))?;
            match self
                .one_hop(url, &target.url, &target.host, &addrs, purpose, hooks)
                .await?
            {
                HopResult::Done(mut f) => {
                    f.redirects = hop;
                    return Ok(f);
                }
                HopResult::Redirect(next) => current = next,
            }
        }
        Err(FetchError::TooManyRedirects {
            url: url.to_string(),
            max: self.cfg.max_redirects,
        })
    }

    fn client(&self, host: &str, addrs: &[SocketAddr]) -> Result<reqwest::Client, FetchError> {
        reqwest::Client::builder()
            .tls_backend_preconfigured((*self.tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(NoDns))
            .resolve_to_addrs(host, addrs)
            .connect_timeout(self.cfg.connect_timeout)
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| FetchError::Other {
                url: host.to_string(),
                what: format!("http client: {e}"),
            })
    }

    #[allow(clippy::too_many_arguments)]
    async fn one_hop(
        &self,
        original: &str,
        url: &Url,
        host: &str,
        addrs: &[SocketAddr],
        purpose: Purpose,
        hooks: &dyn FetchHooks,
    ) -> Result<HopResult, FetchError> {
        let start = Instant::now();
        let deadline = start + self.cfg.total_timeout;
        let shown = url.to_string();
        let client = self.client(host, addrs)?;
        let accept = match purpose {
            Purpose::Page => "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
            Purpose::Robots => "text/plain,*/*;q=0.5",
            Purpose::Sitemap => "application/xml,text/xml;q=0.9,*/*;q=0.1",
        };
        let req = client
            .get(url.clone())
            .header(reqwest::header::USER_AGENT, USER_AGENT)
            .header(reqwest::header::ACCEPT, accept)
            .header(reqwest::header::ACCEPT_ENCODING, "gzip, deflate, br");
        let log = |status: Option<u16>, wire: u64, verdict: &str, detail: String| {
            hooks.on_hop(HopEvent {
                at_ms: now_ms(),
                purpose,
                url: shown.clone(),
                status,
                wire_bytes: wire,
                verdict: verdict.to_string(),
                detail,
                refused: false,
            });
        };
        let resp = match tokio::time::timeout_at(deadline, req.send()).await {
            Err(_) => {
                log(None, 0, "timeout", "no response headers in time".into());
                return Err(FetchError::Timeout {
                    url: shown,
                    what: "headers",
                });
            }
            Ok(Err(e)) => {
                let err =
                    if e.is_timeout() || e.is_connect() && format!("{e:?}").contains("Timeout") {
                        FetchError::Timeout {
                            url: shown.clone(),
                            what: "connect",
                        }
                    } else {
                        FetchError::Network {
                            url: shown.clone(),
                            why: error_chain(&e),
                        }
                    };
                log(None, 0, err.code(), err.to_string());
                return Err(err);
            }
            Ok(Ok(r)) => r,
        };
        let fetched_at_ms = now_ms();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();

        if (300..400).contains(&status) && status != 304 {
            let location = headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            log(
                Some(status),
                0,
                "redirect",
                location.clone().unwrap_or_default(),
            );
            let Some(location) = location else {
                return Err(FetchError::Http {
                    url: shown,
                    status,
                    retry_after: None,
                });
            };
            let next = url.join(&location).map_err(|e| {
                FetchError::Policy(PolicyError::InvalidUrl {
                    url: location.clone(),
                    why: e.to_string(),
                })
            })?;
            return Ok(HopResult::Redirect(next));
        }

        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if purpose != Purpose::Robots {
            if !(200..300).contains(&status) {
                let retry_after = if status == 429 || status == 503 {
                    headers
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after)
                } else {
                    None
                };
                log(Some(status), 0, "http_error", String::new());
                return Err(FetchError::Http {
                    url: shown,
                    status,
                    retry_after,
                });
            }
            if purpose == Purpose::Page
                && !(media == "text/html" || media == "application/xhtml+xml" || media.is_empty())
            {
                log(Some(status), 0, "not_html", media.clone());
                return Err(FetchError::NotHtml {
                    url: shown,
                    content_type: media,
                });
            }
        }
        let encoding = headers
            .get(reqwest::header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let cap = match purpose {
            Purpose::Page | Purpose::Sitemap => self.cfg.max_body_bytes,
            Purpose::Robots => MAX_ROBOTS_BYTES.min(self.cfg.max_body_bytes),
        };
        let mut decoder = match Decoder::new(&encoding, cap) {
            Some(d) => d,
            None => {
                log(
                    Some(status),
                    0,
                    "other",
                    format!("content-encoding {encoding}"),
                );
                return Err(FetchError::Other {
                    url: shown,
                    what: format!("unsupported content-encoding {encoding:?}"),
                });
            }
        };
        let mut resp = resp;
        let mut wire: u64 = 0;
        let mut truncated = false;
        let body_start = Instant::now();
        loop {
            let idle = Instant::now() + self.cfg.idle_timeout;
            let chunk = match tokio::time::timeout_at(idle.min(deadline), resp.chunk()).await {
                Err(_) => {
                    log(Some(status), wire, "timeout", "body too slow".into());
                    return Err(FetchError::Timeout {
                        url: shown,
                        what: "body",
                    });
                }
                Ok(Err(e)) => {
                    let err = FetchError::Network {
                        url: shown.clone(),
                        why: error_chain(&e),
                    };
                    log(Some(status), wire, "network_error", err.to_string());
                    return Err(err);
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(c))) => c,
            };
            wire += chunk.len() as u64;
            hooks.on_bytes(chunk.len() as u64).await;
            if decoder.write(&chunk).is_err() {
                log(
                    Some(status),
                    wire,
                    "network_error",
                    "corrupt content encoding".into(),
                );
                return Err(FetchError::Network {
                    url: shown,
                    why: format!("corrupt {encoding} body"),
                });
            }
            let decoded = decoder.len() as u64;
            if decoded >= RATIO_FLOOR_BYTES && decoded > wire.saturating_mul(MAX_COMPRESSION_RATIO)
            {
                log(Some(status), wire, "too_large", "decompression bomb".into());
                return Err(FetchError::TooLarge {
                    url: shown,
                    what: "decompression ratio over the limit",
                });
            }
            if decoder.full() || wire > cap {
                truncated = true;
                break;
            }
            let elapsed = body_start.elapsed();
            if elapsed > SLOW_DRIP_GRACE
                && (wire as f64) / elapsed.as_secs_f64() < self.cfg.min_bytes_per_sec as f64
            {
                log(Some(status), wire, "timeout", "slow drip".into());
                return Err(FetchError::Timeout {
                    url: shown,
                    what: "slow body",
                });
            }
        }
        drop(resp);
        let body = decoder.finish(truncated).map_err(|_| FetchError::Network {
            url: shown.clone(),
            why: format!("corrupt {encoding} body"),
        })?;
        log(
            Some(status),
            wire,
            "ok",
            if truncated {
                "truncated".into()
            } else {
                String::new()
            },
        );

        if purpose == Purpose::Page && media.is_empty() && !looks_like_html(&body) {
            return Err(FetchError::NotHtml {
                url: shown,
                content_type: media,
            });
        }
        let (text, charset) = decode_text(&body, &content_type, url);
        let x_robots = parse_x_robots(
            headers
                .get_all("x-robots-tag")
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        Ok(HopResult::Done(Fetched {
            url: original.to_string(),
            final_url: url.to_string(),
            status,
            content_type: if media.is_empty() {
                "text/html".into()
            } else {
                media
            },
            charset,
            body,
            text,
            wire_bytes: wire,
            truncated,
            fetched_at_ms,
            x_robots,
            redirects: 0,
        }))
    }
}

enum HopResult {
    Done(Fetched),
    Redirect(Url),
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Longest `Retry-After` honoured: an hour; longer answers are treated as an hour.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After`: delta seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let when =
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let delta = when
        .unix_timestamp()
        .saturating_sub(time::OffsetDateTime::now_utc().unix_timestamp());
    Some(Duration::from_secs(delta.max(0) as u64).min(MAX_RETRY_AFTER))
}

/// `X-Robots-Tag` values: `noindex`, `nofollow`, `none`, optionally prefixed by a user agent
/// (`otherbot: noindex` does not apply to us).
pub fn parse_x_robots<'a>(values: impl Iterator<Item = &'a str>) -> XRobots {
    let mut out = XRobots::default();
    for v in values {
        let (agent, rules) = match v.split_once(':') {
            Some((a, r)) if !a.contains(',') && !a.trim().contains(' ') => (Some(a.trim()), r),
            _ => (None, v),
        };
        if let Some(agent) = agent
            && !agent.eq_ignore_ascii_case(ROBOTS_TOKEN)
        {
            continue;
        }
        for rule in rules.split(',') {
            match rule.trim().to_ascii_lowercase().as_str() {
                "noindex" => out.noindex = true,
                "nofollow" => out.nofollow = true,
                "none" => {
                    out.noindex = true;
                    out.nofollow = true;
                }
                _ => {}
            }
        }
    }
    out
}

fn looks_like_html(body: &[u8]) -> bool {
    let head = &body[..body.len().min(1024)];
    let lower = String::from_utf8_lossy(head).to_ascii_lowercase();
    let t = lower.trim_start_matches('\u{feff}').trim_start();
    t.starts_with("<!doctype html") || t.starts_with("<html") || t.contains("<body")
}

/// Decodes a body to text: BOM, then a charset in the header, then `<meta charset>`, then a
/// detector. A declared UTF-8 that is not valid UTF-8 falls back to the detector.
pub fn decode_text(body: &[u8], content_type: &str, url: &Url) -> (String, String) {
    use encoding_rs::Encoding;
    let declared = charset_param(content_type)
        .and_then(|l| Encoding::for_label(l.as_bytes()))
        .or_else(|| meta_charset(body));
    let enc = if let Some((enc, _)) = Encoding::for_bom(body) {
        enc
    } else {
        match declared {
            Some(e) if e == encoding_rs::UTF_8 && std::str::from_utf8(body).is_err() => {
                detect(body, url)
            }
            // A UTF-16 label without a BOM inside an ASCII-compatible document is a lie.
            Some(e) if e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE => {
                encoding_rs::UTF_8
            }
            Some(e) => e,
            None => detect(body, url),
        }
    };
    let (text, used, _) = enc.decode(body);
    (text.into_owned(), used.name().to_ascii_lowercase())
}

fn detect(body: &[u8], url: &Url) -> &'static encoding_rs::Encoding {
    if std::str::from_utf8(body).is_ok() {
        return encoding_rs::UTF_8;
    }
    let mut d = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    d.feed(&body[..body.len().min(CHARSET_SNIFF_BYTES)], true);
    let tld = url
        .host_str()
        .and_then(|h| h.rsplit('.').next())
        .map(str::as_bytes);
    d.guess(tld, chardetng::Utf8Detection::Allow)
}

fn charset_param(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').trim_matches('\'').to_string())
    })
}

/// `<meta charset=...>` or `<meta http-equiv content="...; charset=...">` in the first 1024 bytes
/// (the HTML prescan window).
fn meta_charset(body: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let head = &body[..body.len().min(1024)];
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let mut i = 0;
    while let Some(pos) = find(&lower[i..], b"charset") {
        let mut j = i + pos + 7;
        while j < lower.len()
            && (lower[j] == b' ' || lower[j] == b'=' || lower[j] == b'"' || lower[j] == b'\'')
        {
            j += 1;
        }
        let start = j;
        while j < lower.len()
            && (lower[j].is_ascii_alphanumeric() || matches!(lower[j], b'-' | b'_' | b':' | b'.'))
        {
            j += 1;
        }
        if j > start
            && let Some(enc) = encoding_rs::Encoding::for_label(&lower[start..j])
        {
            // A document cannot declare UTF-16 in an ASCII-compatible prescan.
            if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
                return Some(encoding_rs::UTF_8);
            }
            return Some(enc);
        }
        i = j.max(i + pos + 7);
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A writer that keeps at most `cap` bytes and remembers whether more came.
struct CapWriter {
    buf: Vec<u8>,
    cap: usize,
    full: bool,
}

impl Write for CapWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = self.cap.saturating_sub(self.buf.len());
        if data.len() > room {
            self.full = true;
        }
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Streaming content decoder into a capped buffer.
enum Decoder {
    Identity(CapWriter),
    Gzip(flate2::write::GzDecoder<CapWriter>),
    /// HTTP "deflate" is zlib-wrapped by the standard but raw deflate in practice too; decided on
    /// the first byte.
    DeflatePending(CapWriter),
    Zlib(flate2::write::ZlibDecoder<CapWriter>),
    RawDeflate(flate2::write::DeflateDecoder<CapWriter>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<CapWriter>>),
}

impl Decoder {
    fn new(encoding: &str, cap: u64) -> Option<Self> {
        let w = CapWriter {
            buf: Vec::new(),
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            full: false,
        };
        Some(match encoding {
            "" | "identity" => Decoder::Identity(w),
            "gzip" | "x-gzip" => Decoder::Gzip(flate2::write::GzDecoder::new(w)),
            "deflate" => Decoder::DeflatePending(w),
            "br" => Decoder::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(
                w, 4096,
            ))),
            _ => return None,
        })
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        if let Decoder::DeflatePending(_) = self
            && let Some(&first) = data.first()
        {
            let Decoder::DeflatePending(w) = std::mem::replace(
                self,
                Decoder::Identity(CapWriter {
                    buf: Vec::new(),
                    cap: 0,
                    full: false,
                }),
            ) else {
                return Ok(());
            };
            *self = if first & 0x0f == 8 {
                Decoder::Zlib(flate2::write::ZlibDecoder::new(w))
            } else {
                Decoder::RawDeflate(flate2::write::DeflateDecoder::new(w))
            };
        }
        match self {
            Decoder::Identity(w) | Decoder::DeflatePending(w) => w.write_all(data),
            Decoder::Gzip(d) => d.write_all(data),
            Decoder::Zlib(d) => d.write_all(data),
            Decoder::RawDeflate(d) => d.write_all(data),
            Decoder::Brotli(d) => d.write_all(data),
        }
    }

    fn inner(&self) -> &CapWriter {
        match self {
            Decoder::Identity(w) | Decoder::DeflatePending(w) => w,
            Decoder::Gzip(d) => d.get_ref(),
            Decoder::Zlib(d) => d.get_ref(),
            Decoder::RawDeflate(d) => d.get_ref(),
            Decoder::Brotli(d) => d.get_ref(),
        }
    }

    fn len(&self) -> usize {
        self.inner().buf.len()
    }

    fn full(&self) -> bool {
        self.inner().full
    }

    fn finish(self, truncated: bool) -> std::io::Result<Vec<u8>> {
        if truncated {
            // A cut stream cannot be finished; keep what was decoded.
            return Ok(match self {
                Decoder::Identity(w) | Decoder::DeflatePending(w) => w.buf,
                Decoder::Gzip(mut d) => std::mem::take(&mut d.get_mut().buf),
                Decoder::Zlib(mut d) => std::mem::take(&mut d.get_mut().buf),
                Decoder::RawDeflate(mut d) => std::mem::take(&mut d.get_mut().buf),
                Decoder::Brotli(d) => d.get_ref().buf.clone(),
            });
        }
        Ok(match self {
            Decoder::Identity(w) | Decoder::DeflatePending(w) => w.buf,
            Decoder::Gzip(d) => d.finish()?.buf,
            Decoder::Zlib(d) => d.finish()?.buf,
            Decoder::RawDeflate(d) => d.finish()?.buf,
            Decoder::Brotli(d) => match d.into_inner() {
                Ok(w) => w.buf,
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "brotli stream incomplete",
                    ));
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_precedence() {
        let url = Url::parse("http://example.ru/").unwrap();
        let (t, cs) = decode_text(
            b"<meta charset=\"windows-1251\"><p>\xcf\xf0\xe8",
            "text/html",
            &url,
        );
        assert_eq!(cs, "windows-1251");
        assert!(t.contains("При"));
        let (_, cs) = decode_text(b"\xef\xbb\xbfhi", "text/html; charset=iso-8859-1", &url);
        assert_eq!(cs, "utf-8");
        // Declared UTF-8 that is not: the detector decides.
        let (_, cs) = decode_text(
            b"<p>caf\xe9 cr\xe8me br\xfbl\xe9e</p>",
            "text/html; charset=utf-8",
            &url,
        );
        assert_ne!(cs, "utf-8");
    }

    #[test]
    fn x_robots() {
        let x = parse_x_robots(["otherbot: noindex", "GleanerBot: nofollow"].into_iter());
        assert_eq!(
            x,
            XRobots {
                noindex: false,
                nofollow: true
            }
        );
        let x = parse_x_robots(["none"].into_iter());
        assert!(x.noindex && x.nofollow);
    }

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("999999"), Some(MAX_RETRY_AFTER));
        assert!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT").is_some());
    }
}
