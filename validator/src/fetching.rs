//! The validator's own fetches (sitemaps, the pages of disputed cross-checks) go through the
//! node's safe fetcher ([`gleaner_collector::Fetcher`]: GET only, no cookies, public addresses
//! only, checked after DNS and on every redirect, size and time caps) and ask robots.txt before
//! every hop, redirects included, as a node does ([`RobotsHooks`]).

use std::time::Duration;

use gleaner_collector::fetch::{Purpose, SetupError};
use gleaner_collector::policy::AddressPolicy;
use gleaner_collector::robots::{RobotsCache, RobotsHooks};
use gleaner_collector::{FetchConfig, FetchError, Fetched, Fetcher};

/// A safe fetcher and its robots.txt cache. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ValidatorFetcher {
    fetcher: Fetcher,
    robots: RobotsCache,
}

impl ValidatorFetcher {
    /// `allow_addrs`: exact socket addresses the fetcher may reach although they are not public
    /// (tests and local development; [`crate::Config::fetch_allow_addrs`]). Bodies are read up to
    /// `max_body_bytes`, a fetch lasts at most `total_timeout`.
    pub fn new(
        allow_addrs: &[std::net::SocketAddr],
        max_body_bytes: u64,
        total_timeout: Duration,
    ) -> Result<Self, SetupError> {
        let config = FetchConfig {
            policy: AddressPolicy::new(allow_addrs, &[]),
            max_body_bytes,
            total_timeout,
            ..FetchConfig::default()
        };
        Ok(ValidatorFetcher {
            fetcher: Fetcher::new(config)?,
            robots: RobotsCache::new(),
        })
    }

    /// Fetches `url` for `purpose`, robots.txt asked before each hop.
    pub async fn get(&self, url: &str, purpose: Purpose) -> Result<Fetched, FetchError> {
        let hooks = RobotsHooks {
            robots: &self.robots,
            fetcher: &self.fetcher,
        };
        self.fetcher.fetch_with(url, purpose, &hooks).await
    }
}

/// Whether `e` is robots.txt's refusal (or robots.txt could not be read).
pub fn is_robots(e: &FetchError) -> bool {
    matches!(
        e,
        FetchError::RobotsDisallowed { .. } | FetchError::RobotsUnreachable { .. }
    )
}
