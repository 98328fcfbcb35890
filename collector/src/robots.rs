//! robots.txt per RFC 9309, cached per origin.
//!
//! 2xx: the rules apply (group token [`ROBOTS_TOKEN`], longest match wins, `Allow` wins a tie);
//! 4xx: "unavailable", everything may be fetched; 5xx or a network failure: "unreachable",
//! everything is disallowed and robots.txt is tried again after [`UNREACHABLE_RETRY`]. Results are
//! cached for [`ROBOTS_TTL`]. `Crawl-delay` is read and capped at [`MAX_CRAWL_DELAY`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gleaner_protocol::RobotsVerdict;
use tokio::time::Instant;
use url::Url;

use crate::fetch::{FetchError, FetchHooks, Fetcher, Purpose, ROBOTS_TOKEN};

/// How long a robots.txt answer is trusted (RFC 9309: at most 24 hours).
pub const ROBOTS_TTL: Duration = Duration::from_secs(24 * 3600);
/// After an unreachable robots.txt, when to try again: soon enough that a brief outage does not
/// block a site for a day.
pub const UNREACHABLE_RETRY: Duration = Duration::from_secs(10 * 60);
/// Largest Crawl-delay honoured (StormCrawler's cap). Longer delays are clamped to this.
pub const MAX_CRAWL_DELAY: Duration = Duration::from_secs(30);

/// The parsed outcome of one robots.txt fetch.
#[derive(Debug, Clone)]
pub enum RobotsRules {
    /// 2xx: rules for our token.
    Parsed(Arc<texting_robots::Robot>),
    /// 4xx: no restrictions.
    Unavailable,
    /// 5xx or network failure: everything disallowed for now.
    Unreachable(String),
}

#[derive(Debug, Clone)]
struct Entry {
    rules: RobotsRules,
    crawl_delay: Option<Duration>,
    expires: Instant,
}

/// What robots.txt says about one URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RobotsDecision {
    pub verdict: RobotsVerdict,
    /// Crawl-delay (capped), when robots.txt set one.
    pub crawl_delay: Option<Duration>,
}

/// One origin's slot: fetches of the same robots.txt are serialised behind its lock.
type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;

/// A per-origin robots.txt cache. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RobotsCache {
    entries: Arc<Mutex<HashMap<String, Slot>>>,
}

/// Fetch hooks that ask robots.txt before every hop of a fetch, redirects included, as a node's
/// own hooks do: for fetchers outside a node (the validator's sitemap and tie-break fetches).
/// Every purpose but robots.txt itself is checked.
#[derive(Debug, Clone, Copy)]
pub struct RobotsHooks<'a> {
    pub robots: &'a RobotsCache,
    pub fetcher: &'a Fetcher,
}

impl FetchHooks for RobotsHooks<'_> {
    fn before_hop<'a>(
        &'a self,
        url: &'a Url,
        purpose: Purpose,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), FetchError>> + Send + 'a>>
    {
        Box::pin(async move {
            if purpose != Purpose::Robots {
                self.robots
                    .check(self.fetcher, &crate::fetch::NoHooks, url)
                    .await?;
            }
            Ok(())
        })
    }
}

/// `scheme://host:port`, the robots.txt scope.
pub fn origin(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// Interprets a robots.txt answer.
pub fn rules_from(status: u16, body: &[u8]) -> RobotsRules {
    match status {
        200..=299 => match texting_robots::Robot::new(ROBOTS_TOKEN, body) {
            Ok(r) => RobotsRules::Parsed(Arc::new(r)),
            // Unparseable rules are no rules (like an empty file).
            Err(_) => RobotsRules::Unavailable,
        },
        400..=499 => RobotsRules::Unavailable,
        s => RobotsRules::Unreachable(format!("robots.txt answered {s}")),
    }
}

impl RobotsCache {
    pub fn new() -> Self {
        RobotsCache::default()
    }

    /// Decides whether `url` may be fetched, fetching robots.txt through `fetcher` (with
    /// `hooks`, so the request is logged and throttled) when not cached.
    pub async fn check(
        &self,
        fetcher: &Fetcher,
        hooks: &dyn FetchHooks,
        url: &Url,
    ) -> Result<RobotsDecision, FetchError> {
        let key = origin(url);
        let slot = {
            let mut map = self.entries.lock().map_err(|_| FetchError::Other {
                url: url.to_string(),
                what: "robots cache poisoned".into(),
            })?;
            map.entry(key.clone()).or_default().clone()
        };
        let mut guard = slot.lock().await;
        let now = Instant::now();
        let entry = match guard.as_ref() {
            Some(e) if e.expires > now => e.clone(),
            _ => {
                let e = self.fetch_entry(fetcher, hooks, url).await;
                *guard = Some(e.clone());
                e
            }
        };
        drop(guard);
        let decision = |verdict| RobotsDecision {
            verdict,
            crawl_delay: entry.crawl_delay,
        };
        match &entry.rules {
            RobotsRules::Unavailable => Ok(decision(RobotsVerdict::Unavailable)),
            RobotsRules::Unreachable(why) => Err(FetchError::RobotsUnreachable {
                url: url.to_string(),
                why: why.clone(),
            }),
            RobotsRules::Parsed(robot) => {
                if robot.allowed(url.as_str()) {
                    Ok(decision(RobotsVerdict::Allowed))
                } else {
                    Err(FetchError::RobotsDisallowed {
                        url: url.to_string(),
                    })
                }
            }
        }
    }

    async fn fetch_entry(&self, fetcher: &Fetcher, hooks: &dyn FetchHooks, url: &Url) -> Entry {
        let mut robots_url = url.clone();
        robots_url.set_path("/robots.txt");
        robots_url.set_query(None);
        robots_url.set_fragment(None);
        let now = Instant::now();
        match fetcher
            .fetch_with(robots_url.as_str(), Purpose::Robots, hooks)
            .await
        {
            Ok(f) => {
                let rules = rules_from(f.status, &f.body);
                let crawl_delay = match &rules {
                    RobotsRules::Parsed(r) => r.delay.and_then(|d| {
                        (d.is_finite() && d > 0.0)
                            .then(|| Duration::from_secs_f32(d.min(MAX_CRAWL_DELAY.as_secs_f32())))
                    }),
                    _ => None,
                };
                let ttl = match rules {
                    RobotsRules::Unreachable(_) => UNREACHABLE_RETRY,
                    _ => ROBOTS_TTL,
                };
                Entry {
                    rules,
                    crawl_delay,
                    expires: now + ttl,
                }
            }
            Err(e) => Entry {
                rules: match &e {
                    // A robots.txt that redirects too often is "unavailable" (RFC 9309 §2.3.1.2).
                    FetchError::TooManyRedirects { .. } => RobotsRules::Unavailable,
                    _ => RobotsRules::Unreachable(e.to_string()),
                },
                crawl_delay: None,
                expires: now + UNREACHABLE_RETRY,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert!(matches!(rules_from(404, b""), RobotsRules::Unavailable));
        assert!(matches!(rules_from(503, b""), RobotsRules::Unreachable(_)));
        let RobotsRules::Parsed(r) = rules_from(
            200,
            b"User-agent: *\nDisallow: /\n\nUser-agent: GleanerBot\nAllow: /ok\nDisallow: /\nCrawl-delay: 99",
        ) else {
            panic!("parsed")
        };
        assert!(r.allowed("http://a.example/ok/page"));
        assert!(!r.allowed("http://a.example/other"));
        assert_eq!(r.delay, Some(99.0));
    }
}
