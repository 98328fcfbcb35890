//! Per-registered-domain politeness: a minimum delay between requests to the same registered
//! domain (public-suffix list), robots.txt `Crawl-delay`, `Retry-After` on 429/503, and a back-off
//! after repeated errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Default minimum delay between two requests to one registered domain from this node. The
/// validator spreads a domain's jobs across the network; per node, 2 s sits between StormCrawler
/// (1 s) and Nutch (5 s).
pub const DEFAULT_MIN_DELAY: Duration = Duration::from_secs(2);
/// Consecutive errors after which a domain is rested.
pub const ERRORS_BEFORE_REST: u32 = 5;
/// How long a failing domain is rested.
pub const ERROR_REST: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone, Copy)]
struct DomainState {
    next_at: Instant,
    errors: u32,
}

/// Per-domain schedule. Cheap to clone; shared by all workers.
#[derive(Debug, Clone)]
pub struct Politeness {
    min_delay: Duration,
    domains: Arc<Mutex<HashMap<String, DomainState>>>,
}

impl Politeness {
    pub fn new(min_delay: Duration) -> Self {
        Politeness {
            min_delay,
            domains: Arc::default(),
        }
    }

    /// Reserves the next slot for `domain` and returns when it starts. The slot after it is
    /// `max(min_delay, crawl_delay)` later.
    pub fn reserve(&self, domain: &str, crawl_delay: Option<Duration>) -> Instant {
        let now = Instant::now();
        let gap = self.min_delay.max(crawl_delay.unwrap_or_default());
        let Ok(mut map) = self.domains.lock() else {
            return now + gap;
        };
        let st = map.entry(domain.to_string()).or_insert(DomainState {
            next_at: now,
            errors: 0,
        });
        let start = st.next_at.max(now);
        st.next_at = start + gap;
        start
    }

    /// When `domain` could next be requested, without reserving.
    pub fn next_free(&self, domain: &str) -> Instant {
        let now = Instant::now();
        self.domains
            .lock()
            .ok()
            .and_then(|m| m.get(domain).map(|s| s.next_at.max(now)))
            .unwrap_or(now)
    }

    /// The server asked us to wait (429/503 `Retry-After`).
    pub fn retry_after(&self, domain: &str, wait: Duration) {
        self.push_back(domain, wait);
    }

    /// Records the outcome of a request; repeated errors rest the domain.
    pub fn outcome(&self, domain: &str, ok: bool) {
        let rest = {
            let Ok(mut map) = self.domains.lock() else {
                return;
            };
            let now = Instant::now();
            let st = map.entry(domain.to_string()).or_insert(DomainState {
                next_at: now,
                errors: 0,
            });
            if ok {
                st.errors = 0;
                false
            } else {
                st.errors += 1;
                st.errors >= ERRORS_BEFORE_REST
            }
        };
        if rest {
            self.push_back(domain, ERROR_REST);
        }
    }

    fn push_back(&self, domain: &str, wait: Duration) {
        let Ok(mut map) = self.domains.lock() else {
            return;
        };
        let now = Instant::now();
        let st = map.entry(domain.to_string()).or_insert(DomainState {
            next_at: now,
            errors: 0,
        });
        st.next_at = st.next_at.max(now + wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_spaced() {
        let p = Politeness::new(Duration::from_secs(2));
        let t0 = Instant::now();
        assert_eq!(p.reserve("example.com", None), t0);
        assert_eq!(p.reserve("example.com", None), t0 + Duration::from_secs(2));
        assert_eq!(
            p.reserve("example.com", Some(Duration::from_secs(10))),
            t0 + Duration::from_secs(4)
        );
        assert_eq!(p.reserve("example.com", None), t0 + Duration::from_secs(14));
        assert_eq!(p.reserve("other.org", None), t0);
        p.retry_after("other.org", Duration::from_secs(60));
        assert!(p.next_free("other.org") >= t0 + Duration::from_secs(60));
    }
}
