//! The validator's own fetch of a disputed page (issue: "disagreement is resolved by a third
//! fetch … or the validator's own safe fetcher").
//!
//! When a cross-check's two fetches disagree, a checker finds no page where the primary claimed
//! one (404, 410, robots.txt, …), no node gets the check done, or an agreed check is picked for
//! an audit, the check waits in the store (`tiebreak_fetches`).
//! Every `tiebreak_interval_secs` the server fetches those pages itself, one at a time:
//! - it takes the domain's turn as a node's lease would: it holds the domain, so no node is leased
//!   it, and fetches once the domain's rest is over ([`Store::hold_next_tiebreak`]); a domain with
//!   a node's lease out has its next turn booked for the validator
//!   ([`Store::book_tiebreak_turns`]);
//! - it fetches with the node's own safe fetcher (GET only, no cookies, public addresses only,
//!   checked after DNS and on every redirect, size and time caps), robots.txt asked before
//!   every hop;
//! - it cleans the page with the node's own cleaner, so its text compares with the nodes' texts;
//! - it settles the dispute with the text's MinHash signature ([`Store::settle_by_validator`]),
//!   and the domain rests from then on; a check whose checker found no page is settled by this
//!   fetch alone, the site's own "no page" ([`ValidatorFetch::NoPage`]) included; a dispute
//!   whose page the site says is not there goes against both nodes, which claimed texts for it;
//!   for a check nobody did and for an audit the fetch is one side, and a disagreement goes to
//!   a third node.
//!
//! A fetch that fails otherwise, for whatever reason, is nobody's fault: that dispute goes to a
//! third node instead. The validator is independent of both nodes and cannot lie to itself, so
//! a dispute settles in seconds without waiting for, or trusting, a third node.

use std::sync::Arc;
use std::time::Duration;

use gleaner_collector::fetch::Purpose;
use gleaner_protocol::MAX_TEXT_BYTES;

use crate::dedup::MinHash;
use crate::fetching::ValidatorFetcher;
use crate::store::{
    HeldTiebreak, Store, StoreError, TIEBREAK_HOLD_MS, TiebreakSettled, ValidatorFetch, no_page,
};

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
/// Longest one tie-break fetch may take, robots.txt, redirects and cleaning included: well within
/// the hold on its domain ([`TIEBREAK_HOLD_MS`], counted from the fetch's start), so no node is
/// leased the domain mid-fetch.
const FETCH_LIMIT: Duration = Duration::from_secs(120);
const _: () = assert!((FETCH_LIMIT.as_millis() as i64) < TIEBREAK_HOLD_MS);

/// The validator's fetcher for disputed pages ([`ValidatorFetcher`]: the node's safe fetcher,
/// robots.txt asked before every hop).
#[derive(Debug, Clone)]
pub struct TiebreakFetcher {
    fetcher: ValidatorFetcher,
    /// How long a busy domain's next turn is booked for the validator
    /// ([`Store::book_tiebreak_turns`]), and the longest the validator waits for a domain's rest
    /// to end once it holds it: longer than the interval between passes.
    turn_ms: i64,
}

/// [`TiebreakFetcher::turn_ms`] for passes every `interval`: two intervals and five seconds.
fn turn_ms(interval: Duration) -> i64 {
    i64::try_from(interval.as_millis())
        .unwrap_or(i64::MAX / 4)
        .saturating_mul(2)
        .saturating_add(5_000)
}

impl TiebreakFetcher {
    /// `allow_addrs`: exact socket addresses the fetcher may reach although they are not public
    /// (tests and local development; [`crate::Config::fetch_allow_addrs`]).
    pub fn new(allow_addrs: &[std::net::SocketAddr]) -> Result<Self, TiebreakError> {
        let fetcher = ValidatorFetcher::new(allow_addrs, MAX_PAGE_BYTES, Duration::from_secs(60))
            .map_err(|e| TiebreakError::Setup(e.to_string()))?;
        Ok(TiebreakFetcher {
            fetcher,
            turn_ms: turn_ms(Duration::from_secs(10)),
        })
    }

    /// For passes every `interval` (10 s unless said): a busy domain's next turn is booked for
    /// longer than that.
    pub fn every(mut self, interval: Duration) -> Self {
        self.turn_ms = turn_ms(interval);
        self
    }

    /// Fetches and cleans one page: its text's signature, or why there is none. The site's own
    /// word that there is no page for a crawler (404 or 410, robots.txt's refusal on any hop,
    /// not HTML, not to be indexed) is [`ValidatorFetch::NoPage`]; any other failure (other
    /// statuses, network, time-outs, or `no_text` from the cleaner) is
    /// [`ValidatorFetch::Failed`], which blames nobody.
    pub async fn fetch(&self, url: &str) -> ValidatorFetch {
        let failed = |code: &str| ValidatorFetch::Failed {
            code: code.to_string(),
        };
        let fetched = match self.fetcher.get(url, Purpose::Page).await {
            Ok(f) => f,
            Err(e) => {
                return match no_page(e.reason(), e.status()) {
                    Some(code) => ValidatorFetch::NoPage { code: code.into() },
                    None => failed(e.code()),
                };
            }
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

    /// Fetches up to [`TIEBREAKS_PER_PASS`] disputed pages and settles their disputes, each on a
    /// domain the network's politeness leaves to the validator: no lease out, and fetched once
    /// the domain's rest is over. The validator holds the domain from then until it has fetched
    /// ([`Store::hold_next_tiebreak`]: no node is given a lease there meanwhile); the domain rests
    /// by `domain_delay_ms` (or its crawl delay) after. A domain with a lease out has its next
    /// turn booked for the validator ([`Store::book_tiebreak_turns`]), so a node's lease is
    /// followed by the validator's fetch rather than by another node's lease.
    /// Returns how many were fetched; an `Err` is a store failure, which leaves the rest queued.
    pub async fn run_pending(
        &self,
        store: &Arc<Store>,
        now_ms: impl Fn() -> i64,
        domain_delay_ms: i64,
    ) -> Result<usize, TiebreakError> {
        // Nearly every pass finds no dispute: it then asks one read and takes no write
        // transaction (booking and holding each take the store's write lock).
        let waiting = {
            let store = store.clone();
            blocking(move || store.tiebreak_fetches_waiting()).await?
        };
        if waiting == 0 {
            return Ok(0);
        }
        // Disputes whose domain stayed busy too long go to third nodes, through the frontier's
        // own queue; checks that found no page, after a far longer wait, end abandoned.
        let stale = {
            let (store, now) = (store.clone(), now_ms());
            blocking(move || store.stale_tiebreak_fetches(now)).await?
        };
        for job in stale {
            let (store, now) = (store.clone(), now_ms());
            let busy = ValidatorFetch::NotTried {
                code: "domain_busy".into(),
            };
            let settled =
                blocking(move || store.settle_by_validator(job.check_id, &busy, now, 0)).await?;
            if let TiebreakSettled::Settled(outcome) = settled {
                tracing::info!(check = job.check_id, url = %job.url, outcome,
                    "a page's domain stayed busy; the check ends unsettled");
            } else {
                tracing::info!(check = job.check_id, url = %job.url,
                    "a disputed page's domain stayed busy; a third node will fetch it");
            }
        }
        let turn_ms = self.turn_ms;
        {
            let (store, now) = (store.clone(), now_ms());
            blocking(move || store.book_tiebreak_turns(now, turn_ms)).await?;
        }
        let mut fetched_pages = 0;
        // One at a time: a domain is held only while its own page waits and is fetched. A domain
        // settled in this pass rests, so it comes again only after its rest, as for a node.
        while fetched_pages < TIEBREAKS_PER_PASS {
            let held = {
                let (store, now) = (store.clone(), now_ms());
                blocking(move || {
                    store.hold_next_tiebreak(now, TIEBREAK_HOLD_MS, turn_ms, domain_delay_ms)
                })
                .await?
            };
            let Some(HeldTiebreak {
                fetch: job,
                fetch_at_ms,
                ..
            }) = held
            else {
                break;
            };
            fetched_pages += 1;
            // The domain's rest after its last fetch (a node's or the validator's) ends first
            // (at most `turn_ms` away when held, whatever the clock does meanwhile).
            let wait =
                u64::try_from(fetch_at_ms.saturating_sub(now_ms()).min(turn_ms)).unwrap_or(0);
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            let fetched = match tokio::time::timeout(FETCH_LIMIT, self.fetch(&job.url)).await {
                Ok(fetched) => fetched,
                Err(_) => ValidatorFetch::Failed {
                    code: "timeout".into(),
                },
            };
            let (store, now) = (store.clone(), now_ms());
            let settle = fetched.clone();
            let settled = blocking(move || {
                store.settle_by_validator(job.check_id, &settle, now, domain_delay_ms)
            })
            .await?;
            match (&settled, &fetched) {
                (TiebreakSettled::Settled(outcome), _) => {
                    tracing::info!(check = job.check_id, url = %job.url, outcome,
                        "cross-check after the validator's fetch");
                }
                (
                    TiebreakSettled::ToNodes,
                    ValidatorFetch::Failed { code } | ValidatorFetch::NoPage { code },
                ) => {
                    tracing::warn!(check = job.check_id, url = %job.url, code = %code,
                        "the validator could not fetch a disputed page; a third node will");
                }
                _ => {}
            }
        }
        Ok(fetched_pages)
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
