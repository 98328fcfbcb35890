//! The validator's own fetch of a disputed page (issue: "disagreement is resolved by a third
//! fetch … or the validator's own safe fetcher").
//!
//! When a cross-check's two fetches disagree, the dispute waits in the store
//! ([`Store::pending_tiebreak_fetches`]); every `tiebreak_interval_secs` the server fetches those
//! pages itself with the node's own safe fetcher (GET only, no cookies, public addresses only,
//! checked after DNS and on every redirect, size and time caps), robots.txt asked before every hop, cleans
//! them with the node's own cleaner, so its text is comparable with the nodes' texts, and settles
//! each dispute with the text's MinHash signature ([`Store::settle_by_validator`]). A fetch that
//! fails, for whatever reason, is nobody's fault: that dispute goes to a third node instead.
//! The validator is independent of both nodes and cannot lie to itself, so a dispute settles in
//! seconds without waiting for, or trusting, a third node.

use std::sync::Arc;
use std::time::Duration;

use gleaner_collector::fetch::Purpose;
use gleaner_protocol::MAX_TEXT_BYTES;

use crate::dedup::MinHash;
use crate::fetching::ValidatorFetcher;
use crate::store::{Store, StoreError, TIEBREAK_MAX_WAIT_MS, TiebreakSettled, ValidatorFetch};

/// Why the tie-break fetcher could not be built or a pass could not finish.
#[derive(Debug, thiserror::Error)]
pub enum TiebreakError {
    #[error("cannot build the tie-break fetcher: {0}")]
    Setup(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a tie-break task failed: {0}")]
    Task(String),
}

/// Disputes settled per pass of [`TiebreakFetcher::run_pending`].
pub const TIEBREAKS_PER_PASS: usize = 16;
/// Largest page read (as a node reads).
const MAX_PAGE_BYTES: u64 = 8 * 1024 * 1024;

/// The validator's fetcher for disputed pages ([`ValidatorFetcher`]: the node's safe fetcher,
/// robots.txt asked before every hop).
#[derive(Debug, Clone)]
pub struct TiebreakFetcher {
    fetcher: ValidatorFetcher,
}

impl TiebreakFetcher {
    /// `allow_addrs`: exact socket addresses the fetcher may reach although they are not public
    /// (tests and local development; [`crate::Config::fetch_allow_addrs`]).
    pub fn new(allow_addrs: &[std::net::SocketAddr]) -> Result<Self, TiebreakError> {
        let fetcher = ValidatorFetcher::new(allow_addrs, MAX_PAGE_BYTES, Duration::from_secs(60))
            .map_err(|e| TiebreakError::Setup(e.to_string()))?;
        Ok(TiebreakFetcher { fetcher })
    }

    /// Fetches and cleans one page: its text's signature, or why there is none (a reason code:
    /// the fetch error's, robots.txt's refusal on any hop included, or `no_text`).
    pub async fn fetch(&self, url: &str) -> ValidatorFetch {
        let failed = |code: &str| ValidatorFetch::Failed {
            code: code.to_string(),
        };
        let fetched = match self.fetcher.get(url, Purpose::Page).await {
            Ok(f) => f,
            Err(e) => return failed(e.code()),
        };
        let cleaned = tokio::task::spawn_blocking(move || {
            gleaner_collector::clean::clean(&fetched.text, Some(&fetched.final_url))
        })
        .await;
        let Ok(cleaned) = cleaned else {
            return failed("cleaner_crashed");
        };
        let text = gleaner_collector::cut(&cleaned.text, MAX_TEXT_BYTES);
        if text.trim().is_empty() {
            return failed("no_text");
        }
        ValidatorFetch::Text(MinHash::of(text))
    }

    /// Fetches up to [`TIEBREAKS_PER_PASS`] disputed pages, one per domain, on domains the
    /// network's politeness leaves free (no lease out, not resting), and settles their
    /// disputes, resting each domain by `domain_delay_ms` (or its crawl delay) after. Returns how
    /// many were handled; an `Err` is a store failure, which leaves the rest queued.
    pub async fn run_pending(
        &self,
        store: &Arc<Store>,
        now_ms: impl Fn() -> i64,
        domain_delay_ms: i64,
    ) -> Result<usize, TiebreakError> {
        // Disputes whose domain stayed busy too long go to third nodes, through the frontier's
        // own queue.
        let stale = {
            let (store, now) = (store.clone(), now_ms());
            blocking(move || store.stale_tiebreak_fetches(now, TIEBREAK_MAX_WAIT_MS)).await?
        };
        for job in stale {
            let (store, now) = (store.clone(), now_ms());
            let busy = ValidatorFetch::NotTried {
                code: "domain_busy".into(),
            };
            blocking(move || store.settle_by_validator(job.check_id, &busy, now, 0)).await?;
            tracing::info!(check = job.check_id, url = %job.url,
                "a disputed page's domain stayed busy; a third node will fetch it");
        }
        let pending = {
            let (store, now) = (store.clone(), now_ms());
            blocking(move || store.pending_tiebreak_fetches(TIEBREAKS_PER_PASS, now)).await?
        };
        // One page per domain per pass: the domain rests after each.
        let mut domains = std::collections::HashSet::new();
        let pending: Vec<_> = pending
            .into_iter()
            .filter(|job| domains.insert(job.domain.clone()))
            .collect();
        let n = pending.len();
        for job in pending {
            let fetched = self.fetch(&job.url).await;
            let (store, now) = (store.clone(), now_ms());
            let settle = fetched.clone();
            let settled = blocking(move || {
                store.settle_by_validator(job.check_id, &settle, now, domain_delay_ms)
            })
            .await?;
            match (&settled, &fetched) {
                (TiebreakSettled::Settled(outcome), _) => {
                    tracing::info!(check = job.check_id, url = %job.url, outcome,
                        "disputed cross-check settled by the validator's fetch");
                }
                (TiebreakSettled::ToNodes, ValidatorFetch::Failed { code }) => {
                    tracing::warn!(check = job.check_id, url = %job.url, code = %code,
                        "the validator could not fetch a disputed page; a third node will");
                }
                _ => {}
            }
        }
        Ok(n)
    }
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, TiebreakError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(TiebreakError::Task(e.to_string())),
    }
}
