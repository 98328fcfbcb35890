//! The frontier: crawl requests, the seen-set, per-domain politeness, tasks and leases.
//!
//! Politeness is network-wide and keyed on the registered domain: a domain has at most
//! `max_leases_per_domain` open leases (1 by default), and after each fetch (or failure) it rests
//! for max(configured delay, reported robots Crawl-delay) before the next lease; repeated transient
//! failures back off exponentially. Leases expire and their task is reissued to another node.

use gleaner_protocol::PublicKey;
use gleaner_protocol::api::{FailureReason, Job, JobFailure, LeaseResponse};
use rusqlite::{Connection, OptionalExtension, params};

use super::ingest::{TiebreakPlace, queue_validator_fetch};
use super::nodes::Network;
use super::{Cached, Op, Store, StoreError};
use crate::frontier::{NormalUrl, in_scope, normalize, plain_registered_domain, registered_domain};

/// Most jobs handed out in one lease call: a node works through a few dozen pages at a time.
pub const MAX_JOBS_PER_LEASE: u32 = 64;
/// How long a node that gave back a check or tie-break job without its record (released it,
/// let its lease expire, or reported a failure that may pass, such as a time-out, so that the
/// job goes to another node) is given no check or tie-break jobs by default: an hour
/// (`Config::judging_pause_secs`, passed as [`JudgingRules::pause_ms`]). A report that the
/// page is not there, or refused, is the job's result and pauses nothing, unless the
/// validator's fetch then finds the page as the primary had it (`settle_unfound`).
/// Giving back costs a node nothing otherwise, so without the pause a node could lease, hand back
/// the checks it does not want and lease again until it drew the one it wants: a partner's page
/// to vouch for. With it, it draws checks at most as often as any node that does them.
pub const JUDGING_PAUSE_MS: i64 = 60 * 60 * 1000;

/// Most checks a node may have reported as having no page while the validator's fetch has not
/// settled them yet (outcome `unfound`) and still be given check or tie-break jobs, by default
/// (`Config::max_unsettled_unfound`, passed as [`JudgingRules::max_unsettled_unfound`]); at this
/// many it gets none until one settles (or is abandoned, after `UNFOUND_MAX_WAIT_MS`). Such a
/// report is the check's result and pauses nothing by itself (a page can go between two
/// fetches), and the validator's fetch that bears it out or not comes only at the domain's turn:
/// without a cap a node could report every check it does not want as gone, faster than the
/// validator settles them, and lease again until it drew the one it wanted, making the
/// validator fetch each page it dumped. An honest checker meets a page gone since the
/// primary's fetch now and then.
pub const MAX_UNSETTLED_UNFOUND: i64 = 3;

/// A task is given up after this many failed or expired leases.
pub const MAX_TASK_ATTEMPTS: i64 = 3;
/// Largest robots Crawl-delay honoured (Nutch and StormCrawler skip or cap at 30 s); a node
/// reporting more cannot starve a domain for everyone.
pub const MAX_CRAWL_DELAY_MS: i64 = 30_000;
/// Most seeds (and domains, and sitemaps) in one crawl request.
pub const MAX_SEEDS_PER_REQUEST: usize = 10_000;
/// Cap of consecutive-failure exponent in domain back-off (2^6 = 64× the delay).
pub(super) const MAX_BACKOFF_SHIFT: i64 = 6;
/// Candidate domains read at first per job wanted, when some domains only have tasks this node
/// may not take (its own pages' checks).
const DOMAIN_SCAN_FACTOR: u32 = 4;
/// Candidate domains read at a time after the first window, while the lease is short.
const DOMAIN_SCAN_WINDOW: i64 = 256;
/// Most domains one lease looks at for tasks the node may take. Domains holding only tasks it
/// may not take (its own pages' checks, in a network with no node independent of it) would keep
/// their place at the head of the order, since no lease of theirs ends to move them back; the
/// lease reads on past them in windows, up to this many, and moves those it passed over to the
/// back of the order, so they do not starve the node.
const MAX_DOMAINS_EXAMINED: i64 = 4096;
/// Longest failure detail kept from a node.
const MAX_FAILURE_DETAIL: usize = 256;

pub use gleaner_protocol::api::{CrawlCancelled, CrawlRequest, CrawlRequestAdded};

/// Lease settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeaseParams {
    pub ttl_ms: i64,
    pub max_per_domain: u32,
    pub domain_delay_ms: i64,
    /// Most open leases one node may hold.
    pub max_open_per_node: u32,
    /// Whether the validator fetches pages itself (its tie-break timer runs): then a check no
    /// node gets done before its lease expires for the last time waits for the validator's fetch
    /// (outcome `unchecked`) rather than ending `abandoned`.
    pub validator_fetches: bool,
    /// The network the node asks from, kept as its network: checks of its fetches avoid it, and
    /// it gets no check of a node on it.
    pub network: Option<Network>,
    /// Who may take check and tie-break jobs.
    pub judging: JudgingRules,
}

/// What keeps a node from taking check and tie-break jobs, besides each job's exclusions: the
/// lease's rules, which the early give-up ([`Store::give_up_unclaimed_jobs`]) reads the same way
/// to tell which active nodes could take a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JudgingRules {
    /// How long a node that gave back a check or tie-break job unfinished gets no such jobs
    /// ([`JUDGING_PAUSE_MS`] by default; 0: no pause).
    pub pause_ms: i64,
    /// How many checks a node may hold reported as having no page, unsettled by the
    /// validator's fetch, and still be given check or tie-break jobs
    /// ([`MAX_UNSETTLED_UNFOUND`] by default; 0: no cap).
    pub max_unsettled_unfound: i64,
}

/// A node's standing as its `nodes` row has it, for [`JudgingRules::allow`]: checks failed,
/// credibility, and when it last gave a check or tie-break job back unfinished.
type JudgeStanding = (i64, f64, Option<i64>);

impl JudgingRules {
    /// The defaults: [`JUDGING_PAUSE_MS`] and [`MAX_UNSETTLED_UNFOUND`].
    pub const DEFAULT: JudgingRules = JudgingRules {
        pause_ms: JUDGING_PAUSE_MS,
        max_unsettled_unfound: MAX_UNSETTLED_UNFOUND,
    };

    /// Whether `node`, with `standing`, may take check and tie-break jobs at `now_ms`: not while
    /// it is caught ([`crate::scoring::may_judge`]), nor within [`JudgingRules::pause_ms`] of
    /// giving such a job back, nor while it holds [`JudgingRules::max_unsettled_unfound`]
    /// "no page" reports the validator has not settled.
    fn allow(
        &self,
        conn: &Connection,
        node: &str,
        (failed, credibility, given_back): JudgeStanding,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let paused = given_back.is_some_and(|t| now_ms < t.saturating_add(self.pause_ms));
        if !crate::scoring::may_judge(failed, credibility) || paused {
            return Ok(false);
        }
        Ok(self.max_unsettled_unfound <= 0
            || unsettled_unfound(conn, node)? < self.max_unsettled_unfound)
    }
}

/// Answer to a failure report or release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportOutcome {
    pub accepted: u32,
}

impl Store {
    /// Adds a crawl request and queues its seeds.
    pub fn add_crawl_request(
        &self,
        requester: &str,
        req: &CrawlRequest,
        now_ms: i64,
    ) -> Result<CrawlRequestAdded, StoreError> {
        if req.seeds.len() > MAX_SEEDS_PER_REQUEST
            || req.domains.len() > MAX_SEEDS_PER_REQUEST
            || req.sitemaps.len() > MAX_SEEDS_PER_REQUEST
        {
            return Err(StoreError::Invalid {
                field: "seeds",
                why: format!("at most {MAX_SEEDS_PER_REQUEST} seeds, domains and sitemaps"),
            });
        }
        if req.seeds.is_empty() && req.sitemaps.is_empty() {
            return Err(StoreError::Invalid {
                field: "seeds",
                why: "a crawl request needs seeds or sitemaps".into(),
            });
        }
        let mut refused = Vec::new();
        let mut seeds: Vec<NormalUrl> = Vec::new();
        for s in &req.seeds {
            match normalize(s) {
                Ok(n) => seeds.push(n),
                Err(e) => refused.push((truncate(s, 200), e.code().to_string())),
            }
        }
        let mut scope: Vec<String> = seeds.iter().map(|n| n.domain.clone()).collect();
        let sitemaps: Vec<NormalUrl> = req
            .sitemaps
            .iter()
            .filter_map(|s| match normalize(s) {
                Ok(n) => Some(n),
                Err(e) => {
                    refused.push((truncate(s, 200), e.code().to_string()));
                    None
                }
            })
            .collect();
        // A sitemap's own site is in scope: what it lists is what the request asks for.
        scope.extend(sitemaps.iter().map(|n| n.domain.clone()));
        for d in &req.domains {
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            if d.is_empty() || d.len() > 253 || d.chars().any(|c| c.is_control() || c == '/') {
                refused.push((truncate(&d, 200), "domain_invalid".into()));
                continue;
            }
            scope.push(registered_domain(&d));
        }
        scope.sort();
        scope.dedup();
        let sitemap_urls: Vec<String> = sitemaps.iter().map(|n| n.url.clone()).collect();
        let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let mut conn = self.writer()?;
        let tx = conn.transaction().op("add_crawl_request")?;
        tx.exec_cached(
            "INSERT INTO crawl_requests(created_at_ms, requester, scope_json, sitemaps_json,
                                        max_pages, max_depth)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                now_ms,
                truncate(requester, 128),
                json(&scope),
                json(&sitemap_urls),
                req.max_pages,
                req.max_depth
            ],
        )
        .op("add_crawl_request")?;
        let id = tx.last_insert_rowid();
        let (mut queued, mut already_seen) = (0u32, 0u32);
        for n in seeds.iter().take(req.max_pages as usize) {
            if enqueue(&tx, n, id, 0, now_ms)? {
                queued += 1;
            } else {
                already_seen += 1;
            }
        }
        tx.exec_cached(
            "UPDATE crawl_requests SET pages_queued = ?2 WHERE id = ?1",
            params![id, queued],
        )
        .op("add_crawl_request")?;
        for url in &sitemap_urls {
            super::sitemaps::queue_sitemap(&tx, id, url, 0, now_ms)?;
        }
        tx.commit().op("add_crawl_request")?;
        tracing::info!(
            request = id,
            queued,
            already_seen,
            refused = refused.len(),
            "crawl request added"
        );
        Ok(CrawlRequestAdded {
            id,
            queued,
            already_seen,
            refused,
        })
    }

    /// Cancels crawl request `id`: its queued pages leave the frontier (state `cancelled`, each
    /// out of its domain's queue and of the seen-set, so another request may ask for it), its
    /// page budget is closed at what it queued (no outlink or sitemap adds more), and its
    /// sitemaps not yet read are never read. Pages already leased finish as any other. With
    /// `requester`, only that requester's request is found (a lab cancels its own).
    ///
    /// Errors: `not_found` for no such request (or another requester's). Reads every queued
    /// job once to find the request's (no index by request: see [`Store::crawl_requests`]).
    pub fn cancel_crawl_request(
        &self,
        id: i64,
        requester: Option<&str>,
        now_ms: i64,
    ) -> Result<CrawlCancelled, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction().op("cancel_crawl_request")?;
        let owner: Option<String> = tx
            .query_row(
                "SELECT requester FROM crawl_requests WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .op("cancel_crawl_request")?;
        if owner.is_none() || requester.is_some_and(|r| owner.as_deref() != Some(r)) {
            return Err(StoreError::NotFound {
                what: format!("crawl request {id}"),
            });
        }
        let queued: Vec<(i64, String, String)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT id, domain, url FROM tasks INDEXED BY tasks_queued
                     WHERE state = 'queued' AND kind = 'primary' AND request_id = ?1",
                )
                .op("cancel_crawl_request")?;
            let rows = stmt
                .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .op("cancel_crawl_request")?;
            rows.collect::<Result<_, _>>().op("cancel_crawl_request")?
        };
        for (task, domain, url) in &queued {
            tx.exec_cached(
                "UPDATE tasks SET state = 'cancelled' WHERE id = ?1",
                params![task],
            )
            .op("cancel_crawl_request")?;
            tx.exec_cached(
                "UPDATE domains SET queued = queued - 1 WHERE domain = ?1",
                params![domain],
            )
            .op("cancel_crawl_request")?;
            tx.exec_cached(
                "DELETE FROM urls WHERE url = ?1 AND request_id = ?2",
                params![url, id],
            )
            .op("cancel_crawl_request")?;
        }
        add_pending(&tx, -count(queued.len()))?;
        tx.exec_cached(
            "UPDATE crawl_requests SET max_pages = min(max_pages, pages_queued) WHERE id = ?1",
            params![id],
        )
        .op("cancel_crawl_request")?;
        let sitemaps = tx
            .exec_cached(
                "UPDATE sitemaps SET state = 'failed', fetched_at_ms = ?2, error = 'cancelled'
                 WHERE request_id = ?1 AND state = 'queued'",
                params![id, now_ms],
            )
            .op("cancel_crawl_request")?;
        tx.commit().op("cancel_crawl_request")?;
        tracing::info!(
            request = id,
            pages = queued.len(),
            sitemaps,
            "crawl request cancelled"
        );
        Ok(CrawlCancelled {
            id,
            pages_cancelled: queued.len() as u64,
            sitemaps_cancelled: sitemaps as u64,
        })
    }

    /// Leases up to `max` jobs to `node`, at most one per free domain.
    pub fn lease(
        &self,
        node: &PublicKey,
        max: u32,
        now_ms: i64,
        p: &LeaseParams,
    ) -> Result<LeaseResponse, StoreError> {
        self.group(|g| g.lease(node, max, now_ms, p))?
    }

    /// Records jobs that ended without a record. Unknown, foreign or closed leases are skipped
    /// (not counted in `accepted`). With `validator_fetches` (the server's tie-break timer
    /// runs), a check whose checker found no page waits for the validator's own fetch instead of
    /// being abandoned (`requeue_or_fail`).
    pub fn report_failures(
        &self,
        node: &PublicKey,
        failures: &[JobFailure],
        now_ms: i64,
        domain_delay_ms: i64,
        validator_fetches: bool,
    ) -> Result<ReportOutcome, StoreError> {
        self.group(|g| {
            g.report_failures(node, failures, now_ms, domain_delay_ms, validator_fetches)
        })?
    }

    /// Gives leases back unfetched; their tasks return to the queue at once.
    pub fn release(
        &self,
        node: &PublicKey,
        lease_ids: &[String],
        now_ms: i64,
    ) -> Result<ReportOutcome, StoreError> {
        self.group(|g| g.release(node, lease_ids, now_ms))?
    }

    /// Expires overdue leases now (also done at every lease call). Returns how many expired.
    /// `validator_fetches`: as [`LeaseParams::validator_fetches`].
    pub fn expire_leases(
        &self,
        now_ms: i64,
        domain_delay_ms: i64,
        validator_fetches: bool,
    ) -> Result<u32, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction().op("expire")?;
        let n = expire_leases(&tx, now_ms, domain_delay_ms, validator_fetches)?;
        tx.commit().op("expire")?;
        Ok(n)
    }
}

/// [`Store::report_failures`] on `conn` (inside a group's savepoint).
pub(super) fn report_in(
    conn: &Connection,
    node: &PublicKey,
    failures: &[JobFailure],
    now_ms: i64,
    domain_delay_ms: i64,
    validator_fetches: bool,
) -> Result<ReportOutcome, StoreError> {
    let node_s = node.to_string();
    let mut accepted = 0u32;
    for f in failures {
        let Some((task_id, domain)) = open_lease_of(conn, &f.lease_id, &node_s)? else {
            continue;
        };
        accepted += 1;
        conn.exec_cached(
            "UPDATE leases SET state = 'failed', closed_at_ms = ?2, failure_reason = ?3
             WHERE lease_id = ?1",
            params![f.lease_id, now_ms, f.reason.code()],
        )
        .op("report")?;
        conn.exec_cached(
            "UPDATE nodes SET jobs_failed = jobs_failed + 1, last_seen_ms = ?2 WHERE node = ?1",
            params![node_s, now_ms],
        )
        .op("report")?;
        if let Some(cd) = f.crawl_delay_ms {
            note_crawl_delay(conn, &domain, i64::from(cd))?;
        }
        // Host trouble backs the domain off; a client error (404, 410, …) is the page's
        // problem, not the host's.
        let host_error = match f.reason {
            FailureReason::HttpError => f.status.is_none_or(|s| s >= 500 || s == 429),
            FailureReason::Timeout
            | FailureReason::NetworkError
            | FailureReason::RobotsUnreachable => true,
            _ => false,
        };
        let transient = host_error || matches!(f.status, Some(429 | 503));
        close_domain_lease(conn, &domain, now_ms, domain_delay_ms, Some(transient))?;
        // A client error other than 429 will not change on a retry: the page is gone.
        let gone = f.reason == FailureReason::HttpError
            && f.status
                .is_some_and(|s| (400..500).contains(&s) && s != 429);
        let permanent = gone
            || matches!(
                f.reason,
                FailureReason::RobotsDisallowed
                    | FailureReason::BlockedAddress
                    | FailureReason::BlockedDomain
                    | FailureReason::NotHtml
                    | FailureReason::TooLarge
                    | FailureReason::InvalidUrl
                    | FailureReason::NoIndex
            );
        let no_page = super::tiebreaks::no_page(f.reason, f.status).is_some();
        requeue_or_fail(
            conn,
            task_id,
            &domain,
            &node_s,
            Ended::Failed { permanent, no_page },
            validator_fetches,
            now_ms,
        )?;
        tracing::debug!(lease = %truncate(&f.lease_id, 64), reason = f.reason.code(),
            detail = %truncate(&f.detail, MAX_FAILURE_DETAIL), "job failure reported");
    }
    Ok(ReportOutcome { accepted })
}

/// [`Store::release`] on `conn` (inside a group's savepoint).
pub(super) fn release_in(
    conn: &Connection,
    node: &PublicKey,
    lease_ids: &[String],
    now_ms: i64,
) -> Result<ReportOutcome, StoreError> {
    let node_s = node.to_string();
    let mut accepted = 0u32;
    for id in lease_ids {
        let Some((task_id, domain)) = open_lease_of(conn, id, &node_s)? else {
            continue;
        };
        accepted += 1;
        conn.exec_cached(
            "UPDATE leases SET state = 'released', closed_at_ms = ?2 WHERE lease_id = ?1",
            params![id, now_ms],
        )
        .op("release")?;
        let closed = conn
            .exec_cached(
                "UPDATE domains SET active_leases = active_leases - 1
                 WHERE domain = ?1 AND active_leases > 0",
                params![domain],
            )
            .op("release")?;
        add_pending(conn, -count(closed))?;
        // Never given up (no attempt counted), so the validator's fetches play no part.
        requeue_or_fail(
            conn,
            task_id,
            &domain,
            &node_s,
            Ended::Released,
            false,
            now_ms,
        )?;
    }
    Ok(ReportOutcome { accepted })
}

/// Ready domains in lease order after `(next_allowed_ms, domain)` = (?3, ?4), at most ?2, with
/// no lease out (the default of one lease per domain). The literal `active_leases = 0` is what
/// lets SQLite use the partial index `domains_idle_order`.
pub(super) const IDLE_DOMAINS_SQL: &str = "SELECT next_allowed_ms, domain FROM domains
     WHERE queued > 0 AND active_leases = 0 AND next_allowed_ms <= ?1
       AND (next_allowed_ms, domain) > (?3, ?4)
     ORDER BY next_allowed_ms, domain LIMIT ?2";

/// Ready domains in lease order after (?3, ?4), at most ?2, with room for another lease (?5 per
/// domain allowed, more than one).
pub(super) const READY_DOMAINS_SQL: &str = "SELECT next_allowed_ms, domain FROM domains
     WHERE queued > 0 AND next_allowed_ms <= ?1 AND active_leases < ?5
       AND (next_allowed_ms, domain) > (?3, ?4)
     ORDER BY next_allowed_ms, domain LIMIT ?2";

/// The end of a task query for the asking node: the task's `excluded` list ([`push_task`])
/// names neither the node (?2), its payout key (?3) nor its network (?4), each given as
/// ` token ` so that only a whole token matches (?3 and ?4 may be NULL); oldest first, one.
macro_rules! for_the_node {
    () => {
        " AND instr(' ' || excluded || ' ', ?2) = 0
          AND (?3 IS NULL OR instr(' ' || excluded || ' ', ?3) = 0)
          AND (?4 IS NULL OR instr(' ' || excluded || ' ', ?4) = 0)
        ORDER BY id LIMIT 1"
    };
}

/// Domain ?1's queued check and tie-break jobs, oldest first, with their exclusion lists, over
/// the partial index `tasks_queued_judging`: what [`first_judging_task`] reads first.
pub(super) const DOMAIN_JUDGING_TASKS_SQL: &str = "SELECT id, url, excluded FROM tasks
     WHERE domain = ?1 AND state = 'queued' AND kind <> 'primary' ORDER BY id";

/// Domain ?1's oldest queued check or tie-break job whose exclusion list sorts at or after ?2,
/// over the partial index `tasks_queued_judging_excluded`: the oldest job of the first such
/// list, one seek.
pub(super) const DOMAIN_JUDGING_LIST_FROM_SQL: &str = "SELECT id, url, excluded FROM tasks
     WHERE domain = ?1 AND state = 'queued' AND kind <> 'primary' AND excluded >= ?2
     ORDER BY excluded, id LIMIT 1";

/// [`DOMAIN_JUDGING_LIST_FROM_SQL`] for the lists that sort after ?2: the next list's oldest job.
/// (A row-value bound `(excluded, id) > (?2, ?3)` would seek to the list ?2 itself and read
/// through all its jobs.)
pub(super) const DOMAIN_JUDGING_LIST_SQL: &str = "SELECT id, url, excluded FROM tasks
     WHERE domain = ?1 AND state = 'queued' AND kind <> 'primary' AND excluded > ?2
     ORDER BY excluded, id LIMIT 1";

/// Domain ?1's oldest queued check or tie-break job with an id in (?5, ?6] that the asking node
/// may take (see `for_the_node`), over `tasks_queued_judging`: [`first_judging_task`]'s last
/// resort.
pub(super) const DOMAIN_JUDGING_TASK_AFTER_SQL: &str = concat!(
    "SELECT id, url FROM tasks
      WHERE domain = ?1 AND state = 'queued' AND kind <> 'primary' AND id > ?5 AND id <= ?6",
    for_the_node!()
);

/// The id of domain ?1's ?3th queued check or tie-break job after id ?2 (from 0), read from the
/// index alone: where [`first_judging_task`]'s last resort stops.
pub(super) const DOMAIN_JUDGING_NTH_SQL: &str = "SELECT id FROM tasks
     WHERE domain = ?1 AND state = 'queued' AND kind <> 'primary' AND id > ?2
     ORDER BY id LIMIT 1 OFFSET ?3";

/// Check and tie-break jobs [`first_judging_task`] reads in id order before it turns to reading
/// them an exclusion list at a time.
const JUDGING_HEAD_ROWS: usize = 64;
/// Most exclusion lists (or runs of lists) [`first_judging_task`] reads one at a time; a queue
/// with more is read on in id order.
const MAX_JUDGING_LISTS: usize = 64;
/// Most check and tie-break jobs [`first_judging_task`] then reads on in id order: a lease reads
/// a bounded number of a domain's jobs however its queue is made.
const MAX_JUDGING_ROWS_AFTER_LISTS: i64 = 4_096;

/// What a task's `excluded` list ([`push_task`]) is matched against for one node: its key, its
/// payout key and its network when known, each padded as [`exclusion_token`] pads it, in the
/// order `for_the_node` binds them (?2, ?3, ?4).
#[derive(Debug)]
struct NodeTokens {
    node: String,
    payout: Option<String>,
    network: Option<String>,
}

impl NodeTokens {
    /// The tokens of `node`, paid to `payout`, on `network` (as [`Network`] writes it).
    fn of(node: &str, payout: Option<&str>, network: Option<&str>) -> Self {
        NodeTokens {
            node: exclusion_token(node),
            payout: payout.map(exclusion_token),
            network: network.map(|n| exclusion_token(&super::nodes::network_token(n))),
        }
    }

    /// Whether `word` (one space-separated piece of an `excluded` list) is one of the node's
    /// tokens.
    fn names(&self, word: &str) -> bool {
        !word.is_empty()
            && std::iter::once(&self.node)
                .chain(&self.payout)
                .chain(&self.network)
                .any(|t| t.trim_matches(' ') == word)
    }

    /// Whether `excluded` names the node, its payout key or its network: the node may not take
    /// the task. The same test as `for_the_node`'s `instr`s (tokens hold no space), without
    /// padding the list.
    fn excluded_by(&self, excluded: &str) -> bool {
        excluded.split(' ').any(|w| self.names(w))
    }

    /// The first token of `excluded`, when it is one of the node's: every list that starts
    /// with it excludes the node too.
    fn first_of<'e>(&self, excluded: &'e str) -> Option<&'e str> {
        excluded.split(' ').next().filter(|w| self.names(w))
    }
}

/// Domain `domain`'s oldest queued check or tie-break job that the node of `tokens` may take:
/// (id, URL). Its links are never wanted (a check's record grows no frontier). A domain's checks
/// go before its pages: a check fetched soon after the page it checks finds the page as it was
/// (pages change), and a new node is proven, and paid by its credibility, as soon as its checks
/// are done rather than after the site's whole queue.
///
/// The jobs are read oldest first ([`DOMAIN_JUDGING_TASKS_SQL`]) until one may be taken, but
/// not through a long run of jobs the node may not take: its own pages' checks waiting for
/// another node can be a day's worth, tens of thousands, and each lease would read them all.
/// After [`JUDGING_HEAD_ROWS`] such jobs the queue is read an exclusion list at a time instead
/// ([`DOMAIN_JUDGING_LIST_SQL`]): each list's oldest job, one seek each. Whether a node may
/// take a job depends on its list alone, so the oldest job the node may take is the oldest
/// among the lists that allow it: the same job. A list that starts with one of the node's own
/// tokens is passed over with every list that starts the same way, in one seek: lists start
/// with the checked node's network ([`super::nodes::not_independent_of`]), so the checks of
/// every node on the asking node's network go by at once. Lists are few where one node's
/// checks fill the queue; past [`MAX_JUDGING_LISTS`] seeks the queue is read on in id order, at
/// most [`MAX_JUDGING_ROWS_AFTER_LISTS`] jobs, inside SQLite. A job past those (only in a queue
/// of more lists than that, most of them excluding the node, and more jobs) is not found by
/// this lease: the node is given pages instead, and the job waits for another node or for the
/// give-up.
fn first_judging_task(
    conn: &Connection,
    domain: &str,
    tokens: &NodeTokens,
) -> Result<Option<(i64, String)>, StoreError> {
    type Row = (i64, String, String);
    let row =
        |r: &rusqlite::Row<'_>| -> rusqlite::Result<Row> { Ok((r.get(0)?, r.get(1)?, r.get(2)?)) };
    // The oldest jobs, in id order.
    let mut last = i64::MIN;
    {
        let mut stmt = conn.prepare_cached(DOMAIN_JUDGING_TASKS_SQL).op("lease")?;
        let mut rows = stmt.query(params![domain]).op("lease")?;
        for _ in 0..JUDGING_HEAD_ROWS {
            let Some(r) = rows.next().op("lease")? else {
                return Ok(None);
            };
            let (id, url, excluded) = row(r).op("lease")?;
            if !tokens.excluded_by(&excluded) {
                return Ok(Some((id, url)));
            }
            last = id;
        }
    }
    // An exclusion list at a time: the oldest job of each list that allows the node.
    let mut best: Option<(i64, String)> = None;
    // Where the next list starts: at or after a bound (the first list: at or after ''), or
    // after a list.
    let mut from = (DOMAIN_JUDGING_LIST_FROM_SQL, String::new());
    for _ in 0..MAX_JUDGING_LISTS {
        let next = conn
            .query_row_cached(from.0, params![domain, from.1], row)
            .optional()
            .op("lease")?;
        let Some((id, url, excluded)) = next else {
            return Ok(best);
        };
        from = match tokens.first_of(&excluded) {
            // Past every list that starts with the token: they sort before the token and
            // `!`, the character after the space that ends it (tokens hold no character
            // below `!`).
            Some(first) => (DOMAIN_JUDGING_LIST_FROM_SQL, format!("{first}!")),
            None => {
                if !tokens.excluded_by(&excluded) && best.as_ref().is_none_or(|(b, _)| id < *b) {
                    best = Some((id, url));
                }
                (DOMAIN_JUDGING_LIST_SQL, excluded)
            }
        };
    }
    // Too many lists: on in id order, filtered inside SQLite, up to a bound.
    let end: i64 = conn
        .query_row_cached(
            DOMAIN_JUDGING_NTH_SQL,
            params![domain, last, MAX_JUDGING_ROWS_AFTER_LISTS - 1],
            |r| r.get(0),
        )
        .optional()
        .op("lease")?
        .unwrap_or(i64::MAX);
    let t = tokens;
    conn.query_row_cached(
        DOMAIN_JUDGING_TASK_AFTER_SQL,
        params![domain, t.node, t.payout, t.network, last, end],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .op("lease")
}

/// Domain ?1's oldest queued page to fetch first (`primary`) the asking node may take (see
/// `for_the_node`), and whether its links are wanted ([`Job::follow_links`]): its crawl request
/// reaches deeper than the page and has pages left to queue, as ingest checks before it follows
/// them. Every queued page of the domain is a candidate, so checks the node may not take,
/// however many are queued, never hide the pages.
pub(super) const DOMAIN_PAGE_TASK_SQL: &str = concat!(
    "SELECT id, url, coalesce((SELECT tasks.depth < r.max_depth AND r.pages_queued < r.max_pages
                                 FROM crawl_requests r WHERE r.id = tasks.request_id), 0)
       FROM tasks WHERE domain = ?1 AND state = 'queued' AND kind = 'primary'",
    for_the_node!()
);

/// Domain `domain`'s oldest queued page the node of `tokens` may take ([`DOMAIN_PAGE_TASK_SQL`]):
/// (id, URL, whether its links are wanted).
fn first_page_task(
    conn: &Connection,
    domain: &str,
    tokens: &NodeTokens,
) -> Result<Option<(i64, String, bool)>, StoreError> {
    let t = tokens;
    conn.query_row_cached(
        DOMAIN_PAGE_TASK_SQL,
        params![domain, t.node, t.payout, t.network],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()
    .op("lease")
}

/// Most check and tie-break jobs (fetches of other nodes' pages) in one lease of `want` jobs: none
/// for a node that may not judge ([`crate::scoring::may_judge`]); all of them for a proven node;
/// half (at least one) for a node not yet proven. A node is judged by the pages it fetches
/// first; one that took only other nodes' pages would never be, and an unproven node checking a
/// fabricator's invented page can lie there unseen (the validator's fetch agrees with neither
/// and blames nobody). So a new node's leases carry its own pages for others to check, while
/// there are any; checks still go out at every lease, so a network of new nodes checks itself.
pub(super) fn judging_jobs_allowed(want: i64, judges: bool, proven: bool) -> i64 {
    match (judges, proven) {
        (false, _) => 0,
        (true, true) => want,
        (true, false) => (want / 2).max(1),
    }
}

/// The body of [`Store::lease`], inside a transaction or savepoint the caller ends.
pub(super) fn lease_in(
    tx: &Connection,
    node: &PublicKey,
    max: u32,
    now_ms: i64,
    p: &LeaseParams,
) -> Result<LeaseResponse, StoreError> {
    let node_s = node.to_string();
    expire_leases(tx, now_ms, p.domain_delay_ms, p.validator_fetches)?;
    tx.exec_cached(
        "UPDATE nodes SET last_seen_ms = ?2, network = coalesce(?3, network) WHERE node = ?1",
        params![node_s, now_ms, p.network.map(|n| n.to_string())],
    )
    .op("lease")?;
    let open: i64 = tx
        .query_row_cached(
            "SELECT COUNT(*) FROM leases WHERE node = ?1 AND state = 'open'",
            params![node_s],
            |r| r.get(0),
        )
        .op("lease")?;
    // A node caught fabricating, with no pass since, gets no check or tie-break jobs; nor does
    // one that gave such a job back unfinished lately, or holds too many unsettled "no page"
    // reports (`JudgingRules::allow`). A node not registered judges, unproven.
    let row: Option<(JudgeStanding, String, Option<String>)> = tx
        .query_row_cached(
            "SELECT checks_failed, credibility, judging_given_back_ms, payout, suspended_reason
               FROM nodes WHERE node = ?1",
            params![node_s],
            |r| Ok(((r.get(0)?, r.get(1)?, r.get(2)?), r.get(3)?, r.get(4)?)),
        )
        .optional()
        .op("lease")?;
    let (standing, payout) = match row {
        // A node the operator suspended gets nothing.
        Some((_, _, Some(reason))) => {
            return Err(StoreError::Suspended {
                node: node_s,
                reason,
            });
        }
        Some((standing, payout, None)) => (standing, Some(payout)),
        None => ((0, 0.0, None), None),
    };
    let judges = p.judging.allow(tx, &node_s, standing, now_ms)?;
    let proven = crate::scoring::is_proven(standing.1);
    // A task names the nodes it must not go to, their payout keys and their networks (see
    // `push_task`): a node paid to the same key as the node it would check, or on the same
    // network, is not independent of it.
    let network = p.network.map(|n| n.to_string());
    let tokens = NodeTokens::of(&node_s, payout.as_deref(), network.as_deref());
    let room = i64::from(p.max_open_per_node).saturating_sub(open).max(0);
    let want = i64::from(max.min(MAX_JOBS_PER_LEASE)).min(room);
    let max_judging = judging_jobs_allowed(want, judges, proven);
    let mut judging = 0;
    let mut jobs = Vec::new();
    // Ready domains, a window at a time, until the lease is full or none are left.
    let mut window = want * i64::from(DOMAIN_SCAN_FACTOR);
    let mut after = (i64::MIN, String::new());
    let mut examined = 0;
    let mut passed_over = Vec::new();
    while (jobs.len() as i64) < want && examined < MAX_DOMAINS_EXAMINED {
        let domains: Vec<(i64, String)> = {
            let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?));
            let mut stmt;
            let rows = if p.max_per_domain == 1 {
                stmt = tx.prepare_cached(IDLE_DOMAINS_SQL).op("lease")?;
                stmt.query_map(params![now_ms, window, after.0, after.1], row)
            } else {
                stmt = tx.prepare_cached(READY_DOMAINS_SQL).op("lease")?;
                stmt.query_map(
                    params![now_ms, window, after.0, after.1, p.max_per_domain],
                    row,
                )
            }
            .op("lease")?;
            rows.collect::<Result<_, _>>().op("lease")?
        };
        let last_window = (domains.len() as i64) < window;
        window = DOMAIN_SCAN_WINDOW;
        for (next_allowed_ms, domain) in domains {
            if jobs.len() as i64 >= want || examined >= MAX_DOMAINS_EXAMINED {
                break;
            }
            examined += 1;
            after = (next_allowed_ms, domain.clone());
            // A task: its id, its URL, whether its links are wanted, whether it is a check or
            // tie-break job.
            let check = if judging < max_judging {
                first_judging_task(tx, &domain, &tokens)?
            } else {
                None
            };
            let task = match check {
                Some((id, url)) => Some(((id, url, false), true)),
                None => first_page_task(tx, &domain, &tokens)?.map(|page| (page, false)),
            };
            let Some(((task_id, url, follow_links), judging_task)) = task else {
                passed_over.push(domain);
                continue;
            };
            judging += i64::from(judging_task);
            let lease_id = hex::encode(rand::random::<[u8; 16]>());
            let expires = now_ms.saturating_add(p.ttl_ms);
            tx.exec_cached(
                "INSERT INTO leases(lease_id, task_id, node, url, domain, issued_at_ms,
                                        expires_at_ms, state)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open')",
                params![lease_id, task_id, node_s, url, domain, now_ms, expires],
            )
            .op("lease")?;
            tx.exec_cached(
                "UPDATE tasks SET state = 'leased' WHERE id = ?1",
                params![task_id],
            )
            .op("lease")?;
            tx.exec_cached(
                "UPDATE domains SET active_leases = active_leases + 1, queued = queued - 1
                     WHERE domain = ?1",
                params![domain],
            )
            .op("lease")?;
            jobs.push(Job {
                lease_id,
                url,
                expires_at_ms: expires,
                follow_links,
            });
        }
        if last_window {
            break;
        }
    }
    // Domains with nothing for this node go to the back of the ready order (their rest ends
    // now, still ready for any node), so the next lease reads others first: without it, domains
    // holding only jobs this node may not take would lead every lease it makes. Never sooner
    // than their rest would end.
    for domain in passed_over {
        tx.exec_cached(
            "UPDATE domains SET next_allowed_ms = ?2 WHERE domain = ?1 AND next_allowed_ms < ?2",
            params![domain, now_ms],
        )
        .op("lease")?;
    }
    let retry_after_ms = if jobs.is_empty() {
        let next: Option<i64> = tx
            .query_row_cached(
                "SELECT MIN(next_allowed_ms) FROM domains WHERE queued > 0",
                [],
                |r| r.get(0),
            )
            .op("lease")?;
        match next {
            Some(t) => u64::try_from((t - now_ms).clamp(1_000, 60_000)).unwrap_or(1_000),
            None => 10_000,
        }
    } else {
        0
    };
    let pending: i64 = tx
        .query_row_cached(
            "SELECT value FROM counters WHERE name = 'pending'",
            [],
            |r| r.get(0),
        )
        .op("lease")?;
    Ok(LeaseResponse {
        pending: u64::try_from(pending)
            .unwrap_or(0)
            .saturating_sub(jobs.len() as u64),
        jobs,
        retry_after_ms,
    })
}

fn truncate(s: &str, max: usize) -> String {
    s[..s.floor_char_boundary(max)]
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

/// How many checks node `?1` reported as having no page that the validator's fetch has not
/// settled yet: read through the partial index `cross_checks_unfound` (tested on this text).
pub(super) const UNSETTLED_UNFOUND: &str =
    "SELECT COUNT(*) FROM cross_checks WHERE outcome = 'unfound' AND check_node = ?1";

/// [`UNSETTLED_UNFOUND`] for `node`.
fn unsettled_unfound(conn: &Connection, node: &str) -> Result<i64, StoreError> {
    conn.query_row_cached(UNSETTLED_UNFOUND, params![node], |r| r.get(0))
        .op("unsettled_unfound")
}

/// Notes `now_ms` as when `node` gave a check or tie-break job back unfinished, or said a
/// checked page was not there where the validator's fetch found it: no such jobs for the
/// pause ([`JudgingRules::pause_ms`]) from then.
pub(super) fn pause_judging(conn: &Connection, node: &str, now_ms: i64) -> Result<(), StoreError> {
    conn.exec_cached(
        "UPDATE nodes SET judging_given_back_ms = max(coalesce(judging_given_back_ms, ?2), ?2)
          WHERE node = ?1",
        params![node, now_ms],
    )
    .op("pause_judging")?;
    Ok(())
}

/// The task and domain of an open lease held by `node`.
fn open_lease_of(
    conn: &Connection,
    lease_id: &str,
    node: &str,
) -> Result<Option<(i64, String)>, StoreError> {
    conn.query_row_cached(
        "SELECT task_id, domain FROM leases WHERE lease_id = ?1 AND node = ?2 AND state = 'open'",
        params![lease_id, node],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .op("lease_lookup")
}

/// A crawl request's scope and page budget, loaded once per transaction; [`RequestScope::offer`]
/// queues URLs within them and [`RequestScope::save`] stores the new page count.
pub(crate) struct RequestScope {
    request_id: i64,
    /// The scope as stored, parsed on first use ([`RequestScope::contains`]): most accepted
    /// records come from requests that follow none of their links (at the depth limit, budget
    /// spent), and a request's scope may list 10,000 domains.
    scope_json: String,
    scope: Option<Vec<String>>,
    max_pages: i64,
    pub(crate) max_depth: i64,
    pages_queued: i64,
}

impl RequestScope {
    /// The scope of crawl request `request_id`, or `None` if there is no such request.
    pub(crate) fn load(conn: &Connection, request_id: i64) -> Result<Option<Self>, StoreError> {
        let row: Option<(String, i64, i64, i64)> = conn
            .query_row_cached(
                "SELECT scope_json, max_pages, max_depth, pages_queued FROM crawl_requests
                 WHERE id = ?1",
                params![request_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .op("request_scope")?;
        let Some((scope_json, max_pages, max_depth, pages_queued)) = row else {
            return Ok(None);
        };
        Ok(Some(RequestScope {
            request_id,
            scope_json,
            scope: None,
            max_pages,
            max_depth,
            pages_queued,
        }))
    }

    /// Whether a URL on registered domain `domain` belongs to the request.
    pub(crate) fn contains(&mut self, domain: &str) -> Result<bool, StoreError> {
        let scope = match &mut self.scope {
            Some(scope) => scope,
            None => {
                let mut scope: Vec<String> =
                    serde_json::from_str(&self.scope_json).map_err(|e| StoreError::Corrupt {
                        what: "crawl scope",
                        why: e.to_string(),
                    })?;
                // Stored sorted; sorting again costs one pass then, and keeps `in_scope` right
                // if not.
                scope.sort_unstable();
                self.scope.insert(scope)
            }
        };
        Ok(in_scope(domain, scope))
    }

    /// Whether the page budget is spent.
    pub(crate) fn full(&self) -> bool {
        self.pages_queued >= self.max_pages
    }

    /// Queues `url` at `depth` if it is in scope, never seen, and the budget allows. Returns
    /// whether it was queued.
    pub(crate) fn offer(
        &mut self,
        conn: &Connection,
        url: &NormalUrl,
        depth: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if self.full()
            || !self.contains(&url.domain)?
            || !enqueue(conn, url, self.request_id, depth, now_ms)?
        {
            return Ok(false);
        }
        self.pages_queued += 1;
        Ok(true)
    }

    /// [`RequestScope::offer`] of a URL as a page or sitemap lists it: normalised first, unless
    /// it is plainly outside the scope, which a plain URL's registered domain tells before
    /// anything is allocated (most of a page's links to other sites). A URL that does not
    /// normalise is not queued.
    pub(crate) fn offer_listed(
        &mut self,
        conn: &Connection,
        raw: &str,
        depth: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if let Some(domain) = plain_registered_domain(raw)
            && !self.contains(domain)?
        {
            return Ok(false);
        }
        match normalize(raw) {
            Ok(url) => self.offer(conn, &url, depth, now_ms),
            Err(_) => Ok(false),
        }
    }

    /// Stores the request's page count.
    pub(crate) fn save(&self, conn: &Connection) -> Result<(), StoreError> {
        conn.exec_cached(
            "UPDATE crawl_requests SET pages_queued = ?2 WHERE id = ?1",
            params![self.request_id, self.pages_queued],
        )
        .op("request_scope")?;
        Ok(())
    }
}

/// Queues a URL if it was never seen. Returns whether it was new.
pub(crate) fn enqueue(
    conn: &Connection,
    n: &NormalUrl,
    request_id: i64,
    depth: i64,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let added = conn
        .exec_cached(
            "INSERT OR IGNORE INTO urls(url, domain, request_id, depth, added_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![n.url, n.domain, request_id, depth, now_ms],
        )
        .op("enqueue")?;
    if added == 0 {
        return Ok(false);
    }
    push_task(
        conn, &n.url, &n.domain, request_id, depth, "primary", None, "", now_ms,
    )?;
    Ok(true)
}

/// Adds a queued task and counts it on its domain. `excluded`: space-separated node keys, payout
/// keys and network tokens (`net:` and a [`Network`]) the task must not be leased to (a node is
/// excluded by its own key, its payout key or the network it asks from): for a check, the
/// primary node's network, the node and its payout ([`super::nodes::not_independent_of`]);
/// for a tie-break, both earlier fetchers' so; for a page taken back from a node caught lying,
/// that node. Tokens hold no character at or below the space, and one space separates them
/// ([`first_judging_task`] passes over the lists that start with a token on that ground).
#[allow(clippy::too_many_arguments)]
pub(crate) fn push_task(
    conn: &Connection,
    url: &str,
    domain: &str,
    request_id: i64,
    depth: i64,
    kind: &str,
    check_id: Option<i64>,
    excluded: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO tasks(url, domain, request_id, depth, kind, check_id, excluded, state,
                           created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            url, domain, request_id, depth, kind, check_id, excluded, now_ms
        ])
    })
    .op("push_task")?;
    let counted = conn
        .exec_cached(
            "INSERT INTO domains(domain, queued) VALUES (?1, 1)
             ON CONFLICT(domain) DO UPDATE SET queued = queued + 1",
            params![domain],
        )
        .op("push_task")?;
    add_pending(conn, count(counted))
}

/// Moves the `pending` counter (`SUM(domains.queued) + SUM(domains.active_leases)`) by `delta`.
/// Every statement that changes those columns calls it in the same transaction; the lease, which
/// moves one task from queued to leased, leaves the sum as it is. A counter table with one
/// single-row UPDATE here, rather than triggers on `domains`, keeps those statements single-row
/// writes, which need no statement journal (schema version 6).
pub(crate) fn add_pending(conn: &Connection, delta: i64) -> Result<(), StoreError> {
    if delta != 0 {
        conn.exec_cached(
            "UPDATE counters SET value = value + ?1 WHERE name = 'pending'",
            params![delta],
        )
        .op("pending")?;
    }
    Ok(())
}

/// Rows a statement changed, as a counter delta.
fn count(rows: usize) -> i64 {
    i64::try_from(rows).unwrap_or(i64::MAX)
}

/// A fetch on `domain` ended: one lease fewer, and the domain rests before the next.
/// `failed`: `Some(true)` for a transient failure (back off), `Some(false)` for another failure,
/// `None` for success (resets the failure count).
pub(crate) fn close_domain_lease(
    conn: &Connection,
    domain: &str,
    now_ms: i64,
    domain_delay_ms: i64,
    failed: Option<bool>,
) -> Result<(), StoreError> {
    let pending = close_domain_lease_in(conn, domain, now_ms, domain_delay_ms, failed)?;
    add_pending(conn, pending)
}

/// [`close_domain_lease`] without touching the pending-work counter: returns the change the
/// caller must apply to it ([`add_pending`]), so that a batch applies its records' changes once.
///
/// One `UPDATE` computes everything from the row it changes (its right-hand sides read the row as
/// it was): the failure count (reset on success, one more on a transient failure), and the rest
/// `max(domain_delay_ms, crawl delay) · 2^min(failures, MAX_BACKOFF_SHIFT)`. It first runs
/// taking a lease off a domain that has one out (always so when a lease is closed), which also
/// says the pending sum drops by one; only if no such row changed does it run again for the
/// domain whatever its lease count (none out, so the sum stays; no row at all, nothing changes).
pub(crate) fn close_domain_lease_in(
    conn: &Connection,
    domain: &str,
    now_ms: i64,
    domain_delay_ms: i64,
    failed: Option<bool>,
) -> Result<i64, StoreError> {
    let mut stmt = conn
        .prepare_cached(CLOSE_DOMAIN_LEASE)
        .op("close_domain_lease")?;
    close_domain_lease_with(&mut stmt, domain, now_ms, domain_delay_ms, failed)
}

/// The statement of [`close_domain_lease_in`]: ?1 domain, ?2 now, ?3 base delay, ?4 0 success,
/// 1 transient failure, 2 other failure, ?5 the back-off cap, ?6 1 for only a domain with a
/// lease out, then 0 for any.
/// The validator's tie-break fetch time (`tiebreaks::NEXT_TIEBREAK_SQL`) assumes this rest;
/// keep the two alike.
pub(crate) const CLOSE_DOMAIN_LEASE: &str =
    "UPDATE domains SET active_leases = MAX(active_leases - 1, 0),
                    failures = CASE ?4 WHEN 0 THEN 0 WHEN 1 THEN failures + 1 ELSE failures END,
                    next_allowed_ms = MAX(next_allowed_ms, ?2 + MAX(?3, crawl_delay_ms)
                        * (1 << MIN(MAX(CASE ?4 WHEN 0 THEN 0 WHEN 1 THEN failures + 1
                                                ELSE failures END, 0), ?5)))
             WHERE domain = ?1 AND (?6 = 0 OR active_leases > 0)";

/// [`close_domain_lease_in`] with `stmt` prepared from [`CLOSE_DOMAIN_LEASE`] (once per batch by
/// ingest, rather than taken from the statement cache per record).
pub(crate) fn close_domain_lease_with(
    stmt: &mut rusqlite::Statement<'_>,
    domain: &str,
    now_ms: i64,
    domain_delay_ms: i64,
    failed: Option<bool>,
) -> Result<i64, StoreError> {
    let outcome = match failed {
        None => 0,
        Some(true) => 1,
        Some(false) => 2,
    };
    // Bounded so that the back-off product and its sum with the clock stay within SQLite's
    // 64-bit integers (crawl delays are capped far lower): 2^55 ms is a million years.
    let base = domain_delay_ms.min(i64::MAX >> (MAX_BACKOFF_SHIFT + 2));
    let mut run = |only_leased: bool| {
        let only_leased = i64::from(only_leased);
        stmt.execute(params![
            domain,
            now_ms,
            base,
            outcome,
            MAX_BACKOFF_SHIFT,
            only_leased
        ])
        .op("close_domain_lease")
    };
    // `MAX(active_leases - 1, 0)` takes one lease off the sum only where there was one.
    if run(true)? == 1 {
        return Ok(-1);
    }
    run(false)?;
    Ok(0)
}

/// Remembers a robots Crawl-delay a node reported for `domain` (capped).
pub(crate) fn note_crawl_delay(
    conn: &Connection,
    domain: &str,
    delay_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE domains SET crawl_delay_ms = ?2 WHERE domain = ?1")
        .and_then(|mut s| s.execute(params![domain, delay_ms.clamp(0, MAX_CRAWL_DELAY_MS)]))
        .op("note_crawl_delay")?;
    Ok(())
}

/// How a node's lease of a task ended without a record.
#[derive(Debug, Clone, Copy)]
enum Ended {
    /// Given back unfetched: no attempt counted.
    Released,
    /// The lease ran out.
    Expired,
    /// The node reported a failure: `permanent` when a retry will not change it, `no_page` when
    /// the site says there is no page there ([`super::tiebreaks::no_page`]).
    Failed { permanent: bool, no_page: bool },
}

/// After `node`'s lease of a task ended as `ended`: puts the task back in the queue, or gives it
/// up (permanent failure or too many attempts). A check or tie-break that `node` gives back
/// unfinished, every way but a permanent failure (the job's result: the page is gone, closed to
/// robots, refused), pauses `node` for such jobs ([`JudgingRules::pause_ms`]). A check
/// given up counts against nobody. With the validator's own fetches on (`validator_fetches`) it
/// is not abandoned but waits for the validator's fetch, as a disputed
/// check does:
/// - with the outcome `unfound` when its checker `node` found no page where the primary claimed
///   one (`no_page`: 404, 410, robots.txt, not HTML, noindex).
///   Abandoned, such a check would let a node invent text for dead links (the frontier hands
///   them out: links to pages since removed, to ads, to share buttons) and never be
///   contradicted, since no honest checker can fetch such a page
///   ([`super::ingest::settle_unfound`] settles it);
/// - with the outcome `unchecked` otherwise (every lease expired, or every attempt failed for a
///   reason that may pass, or a refusal such as 403 that may be the checker's address's alone):
///   abandoned, it would let nodes that lease a partner's checks and sit on them shield its
///   inventions; the validator's fetch stands in as the checker
///   ([`super::ingest::settle_unchecked`]).
///
/// Without them the check ends `abandoned`; a third node's tie-break given up ends so too, a
/// fourth node's ends `inconclusive` (outcome `three_way`) or `agreed` (`audit_disputed`).
fn requeue_or_fail(
    conn: &Connection,
    task_id: i64,
    domain: &str,
    node: &str,
    ended: Ended,
    validator_fetches: bool,
    now_ms: i64,
) -> Result<(), StoreError> {
    let (permanent, count_attempt, no_page) = match ended {
        Ended::Released => (false, false, false),
        Ended::Expired => (false, true, false),
        Ended::Failed { permanent, no_page } => (permanent, true, no_page),
    };
    let unfound_by = no_page.then_some(node);
    type TaskRow = (i64, String, Option<i64>, String, i64, i64);
    let (attempts, kind, check_id, url, request_id, depth): TaskRow = conn
        .query_row_cached(
            "SELECT attempts, kind, check_id, url, request_id, depth FROM tasks WHERE id = ?1",
            params![task_id],
            |r| TaskRow::try_from(r),
        )
        .op("requeue")?;
    if !permanent && kind != "primary" {
        pause_judging(conn, node, now_ms)?;
    }
    let attempts = attempts + i64::from(count_attempt);
    if permanent || attempts >= MAX_TASK_ATTEMPTS {
        conn.exec_cached(
            "UPDATE tasks SET state = 'failed', attempts = ?2 WHERE id = ?1",
            params![task_id, attempts],
        )
        .op("requeue")?;
        if let (Some(c), false) = (check_id, kind == "primary") {
            let place = TiebreakPlace {
                url,
                domain: domain.to_string(),
                request_id,
                depth,
            };
            let to_validator = kind == "check" && validator_fetches;
            give_up_check(conn, c, to_validator, place, unfound_by, now_ms)?;
        }
    } else {
        conn.exec_cached(
            "UPDATE tasks SET state = 'queued', attempts = ?2 WHERE id = ?1",
            params![task_id, attempts],
        )
        .op("requeue")?;
        let requeued = conn
            .exec_cached(
                "UPDATE domains SET queued = queued + 1 WHERE domain = ?1",
                params![domain],
            )
            .op("requeue")?;
        add_pending(conn, count(requeued))?;
    }
    Ok(())
}

/// Ends check `check_id` whose check or tie-break job at `place` was given up (its nodes failed
/// it, or no node took it in time: [`Store::give_up_unclaimed_jobs`]). With `to_validator` (a
/// check's job, with the validator's own fetches on) the check waits for the validator's fetch:
/// as `unfound` when `unfound_by`, its checker, found no page where the primary claimed one,
/// else as `unchecked`, the validator standing in as the checker. Otherwise it counts against
/// nobody: a check or a dispute ends `abandoned`, and a check whose fourth fetch nobody made
/// stands where the validator's fetch left it: a dispute with three texts is inconclusive, an
/// audit that disagreed with an agreeing pair leaves the pair agreed, unaudited (as an audit
/// whose fetch failed does).
fn give_up_check(
    conn: &Connection,
    check_id: i64,
    to_validator: bool,
    place: TiebreakPlace,
    unfound_by: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    let to_validator = to_validator && {
        let (outcome, checker) = match unfound_by {
            Some(checker) => ("unfound", Some(checker)),
            None => ("unchecked", None),
        };
        conn.exec_cached(
            "UPDATE cross_checks SET outcome = ?2, check_node = ?3
              WHERE id = ?1 AND outcome = 'pending'",
            params![check_id, outcome, checker],
        )
        .op("give_up_check")?
            == 1
    };
    if to_validator {
        queue_validator_fetch(conn, check_id, &place, now_ms)?;
        if unfound_by.is_some() {
            tracing::info!(check = check_id, url = %truncate(&place.url, 200),
                "a checker found no page where a node claimed one; the validator will fetch it");
        } else {
            tracing::info!(check = check_id, url = %truncate(&place.url, 200),
                "no node got a check done; the validator will fetch the page itself");
        }
    } else {
        conn.exec_cached(
            "UPDATE cross_checks
                SET outcome = CASE outcome WHEN 'three_way' THEN 'inconclusive'
                                           WHEN 'audit_disputed' THEN 'agreed'
                                           ELSE 'abandoned' END
              WHERE id = ?1
                AND outcome IN ('pending', 'disputed', 'three_way', 'audit_disputed')",
            params![check_id],
        )
        .op("give_up_check")?;
    }
    Ok(())
}

/// Check and tie-break jobs still queued that were made before ?1, at most ?2: those no node
/// that may take them leased in time (they go before their domain's pages, so they do not wait
/// behind a large site's queue). Reads every queued such job through the lease's partial index
/// `tasks_queued_judging` (a check backlog, not the crawl's queue), in its order.
pub(super) const UNCLAIMED_JOBS_SQL: &str =
    "SELECT id, kind, check_id, url, domain, request_id, depth
       FROM tasks INDEXED BY tasks_queued_judging
      WHERE state = 'queued' AND kind <> 'primary' AND created_at_ms < ?1
      ORDER BY domain, id LIMIT ?2";

/// Most jobs [`Store::give_up_unclaimed_jobs`] gives up in one transaction.
const UNCLAIMED_PER_STEP: usize = 256;

/// How long a check job waits before it goes to the validator's own fetch when no active node
/// may take it (every node that leased within [`ACTIVE_NODE_MS`] is one it excludes, its own
/// page, a node paid to its payout key or on its network, or one the lease gives no checks at
/// all: caught, paused, see [`JudgingRules`]), if that is sooner than the server's
/// wait: a network of one node, or of one operator's nodes, is checked by the validator's fetch
/// within the hour, not a day later, and its nodes are proven as soon. Only with the
/// validator's fetches on (off, the check would be abandoned, where a node back within the
/// server's wait could still have done it), and not tie-break jobs (given up, a dispute ends
/// unsettled).
pub const UNCLAIMABLE_WAIT_MS: i64 = 15 * 60 * 1000;
/// How recently a node must have leased to count as one that may still take a job.
pub const ACTIVE_NODE_MS: i64 = 60 * 60 * 1000;
/// Most active nodes that may take checks for which jobs are looked at for the early give-up:
/// with more, some node independent of a job's fetchers is all but certain, and each pass would
/// compare every job with every node.
const MAX_ACTIVE_NODES_FOR_EARLY_GIVE_UP: usize = 64;
/// Most active nodes the early give-up reads to find those that may take checks: a network
/// with more active nodes than this, most of them caught or paused, waits the server's wait,
/// so that a pass never reads an unbounded number of rows on the writer.
const MAX_ACTIVE_NODES_READ_FOR_EARLY_GIVE_UP: usize = 4_096;

/// Check jobs still queued that were made before ?1, after `(domain, id)` = (?2, ?3) in the
/// index's order, at most ?4, with their exclusion lists: the candidates for the early give-up
/// ([`UNCLAIMABLE_WAIT_MS`]). (`kind <> 'primary'` is the index's condition, which SQLite needs
/// to see to use it.)
pub(super) const EARLY_UNCLAIMED_JOBS_SQL: &str =
    "SELECT id, kind, check_id, url, domain, request_id, depth, excluded
       FROM tasks INDEXED BY tasks_queued_judging
      WHERE state = 'queued' AND kind <> 'primary' AND kind = 'check' AND created_at_ms < ?1
        AND (domain, id) > (?2, ?3)
      ORDER BY domain, id LIMIT ?4";

impl Store {
    /// Gives up every check and tie-break job queued for longer than `max_wait_ms` (no node that
    /// may take it leased it meanwhile, though such jobs go before their domain's pages: there
    /// may be none independent of the nodes it checks), as its nodes giving it up would: a
    /// check goes to the validator's own fetch with `validator_fetches`, or is abandoned; a
    /// tie-break ends its check. The job leaves its domain's queue. In steps of at most 256
    /// jobs, each one transaction. Returns how many were given up.
    ///
    /// With `validator_fetches`, and `max_wait_ms` longer than [`UNCLAIMABLE_WAIT_MS`], a check
    /// job no active node may take (none that leased within [`ACTIVE_NODE_MS`] is outside its
    /// exclusions and allowed checks by `judging`: a network of one node, or of one operator's
    /// nodes, or whose other nodes are caught or paused) goes to the validator's fetch once it
    /// has waited that long instead, unless more than 64 active nodes may take checks or more
    /// than 4,096 nodes are active.
    pub fn give_up_unclaimed_jobs(
        &self,
        now_ms: i64,
        max_wait_ms: i64,
        validator_fetches: bool,
        judging: JudgingRules,
    ) -> Result<usize, StoreError> {
        let before = now_ms.saturating_sub(max_wait_ms);
        let mut total = 0;
        loop {
            let n = self.group(|g| {
                g.savepoint(|conn, _, _| give_up_unclaimed(conn, before, validator_fetches, now_ms))
            })??;
            total += n;
            if n < UNCLAIMED_PER_STEP {
                break;
            }
        }
        if max_wait_ms <= UNCLAIMABLE_WAIT_MS || !validator_fetches {
            return Ok(total);
        }
        let Some(active) =
            self.group(|g| g.savepoint(|conn, _, _| active_node_tokens(conn, now_ms, judging)))??
        else {
            return Ok(total);
        };
        let early = now_ms.saturating_sub(UNCLAIMABLE_WAIT_MS);
        let mut after = (String::new(), i64::MIN);
        loop {
            let (n, read, last) = self.group(|g| {
                g.savepoint(|conn, _, _| give_up_unclaimable(conn, early, &after, &active, now_ms))
            })??;
            total += n;
            match last {
                Some(last) if read == UNCLAIMED_PER_STEP => after = last,
                _ => return Ok(total),
            }
        }
    }
}

/// `k` (a node key, a payout key or a network token) as it is matched in a task's `excluded`
/// list padded with a space at each end (see `for_the_node`): a whole token only.
fn exclusion_token(k: &str) -> String {
    format!(" {k} ")
}

/// The tokens ([`push_task`]'s `excluded`) of each node that leased within [`ACTIVE_NODE_MS`]
/// of `now_ms` and that `judging` lets take checks: its key, its payout key and its network
/// when known. `None` when more than [`MAX_ACTIVE_NODES_FOR_EARLY_GIVE_UP`] such nodes leased,
/// or more than [`MAX_ACTIVE_NODES_READ_FOR_EARLY_GIVE_UP`] nodes of any standing.
fn active_node_tokens(
    conn: &Connection,
    now_ms: i64,
    judging: JudgingRules,
) -> Result<Option<Vec<NodeTokens>>, StoreError> {
    // A node, its payout key, its network, its standing.
    type Active = (String, String, Option<String>, JudgeStanding);
    let mut stmt = conn
        .prepare_cached(
            "SELECT node, payout, network, checks_failed, credibility, judging_given_back_ms
               FROM nodes WHERE last_seen_ms >= ?1",
        )
        .op("active_nodes")?;
    // Read one at a time, and no further than the loop needs: in a large network the cap is
    // reached after its first rows, and the read bound ends the scan in any other.
    let rows = stmt
        .query_map(
            params![now_ms.saturating_sub(ACTIVE_NODE_MS)],
            |r| -> rusqlite::Result<Active> {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    (r.get(3)?, r.get(4)?, r.get(5)?),
                ))
            },
        )
        .op("active_nodes")?;
    let mut nodes = Vec::new();
    for (read, row) in rows.enumerate() {
        let (node, payout, network, standing) = row.op("active_nodes")?;
        if read == MAX_ACTIVE_NODES_READ_FOR_EARLY_GIVE_UP {
            return Ok(None);
        }
        if !judging.allow(conn, &node, standing, now_ms)? {
            continue;
        }
        if nodes.len() == MAX_ACTIVE_NODES_FOR_EARLY_GIVE_UP {
            return Ok(None);
        }
        nodes.push(NodeTokens::of(&node, Some(&payout), network.as_deref()));
    }
    Ok(Some(nodes))
}

/// A job's place in `tasks_queued_judging`'s order: its domain and id.
type IndexPlace = (String, i64);

/// One step of the early give-up: reads up to [`UNCLAIMED_PER_STEP`] check jobs made before
/// `early`, after `after` in the index's order, and gives up those no node of `active` may take
/// (each node's tokens from [`active_node_tokens`]; a job excludes a node when its list holds
/// any of them), handing each check to the validator's fetch. Returns how many were given up,
/// how many were read and the last one's place.
fn give_up_unclaimable(
    conn: &Connection,
    early: i64,
    after: &IndexPlace,
    active: &[NodeTokens],
    now_ms: i64,
) -> Result<(usize, usize, Option<IndexPlace>), StoreError> {
    // An [`UnclaimedJob`] and its exclusion list.
    type Candidate = (i64, String, Option<i64>, String, String, i64, i64, String);
    let rows: Vec<Candidate> = {
        let mut stmt = conn
            .prepare_cached(EARLY_UNCLAIMED_JOBS_SQL)
            .op("give_up_unclaimable")?;
        let rows = stmt
            .query_map(
                params![early, after.0, after.1, UNCLAIMED_PER_STEP as i64],
                |r| Candidate::try_from(r),
            )
            .op("give_up_unclaimable")?;
        rows.collect::<Result<_, _>>().op("give_up_unclaimable")?
    };
    let read = rows.len();
    let last = rows.last().map(|c| (c.4.clone(), c.0));
    let unclaimable: Vec<UnclaimedJob> = rows
        .into_iter()
        .filter_map(
            |(id, kind, check_id, url, domain, request_id, depth, excluded)| {
                let no_node_may = active.iter().all(|tokens| tokens.excluded_by(&excluded));
                no_node_may.then_some((id, kind, check_id, url, domain, request_id, depth))
            },
        )
        .collect();
    // Only ever run with the validator's fetches on: each check goes to that fetch.
    let n = give_up_jobs(conn, unclaimable, true, now_ms)?;
    if n > 0 {
        tracing::info!(
            jobs = n,
            "check jobs no active node may take went to the validator's fetch"
        );
    }
    Ok((n, read, last))
}

/// One step of [`Store::give_up_unclaimed_jobs`]: the jobs made before `before`.
fn give_up_unclaimed(
    conn: &Connection,
    before: i64,
    validator_fetches: bool,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let jobs: Vec<UnclaimedJob> = {
        let mut stmt = conn
            .prepare_cached(UNCLAIMED_JOBS_SQL)
            .op("give_up_unclaimed")?;
        let rows = stmt
            .query_map(params![before, UNCLAIMED_PER_STEP as i64], |r| {
                UnclaimedJob::try_from(r)
            })
            .op("give_up_unclaimed")?;
        rows.collect::<Result<_, _>>().op("give_up_unclaimed")?
    };
    let n = give_up_jobs(conn, jobs, validator_fetches, now_ms)?;
    if n > 0 {
        tracing::info!(
            jobs = n,
            "check and tie-break jobs no node took in time were given up"
        );
    }
    Ok(n)
}

/// A queued check or tie-break job to give up: id, kind, check id, URL, domain, crawl request
/// and depth.
type UnclaimedJob = (i64, String, Option<i64>, String, String, i64, i64);

/// Gives up `jobs` (see [`Store::give_up_unclaimed_jobs`]): each leaves its domain's queue and
/// its check is given up as its nodes giving it up would. Returns how many.
fn give_up_jobs(
    conn: &Connection,
    jobs: Vec<UnclaimedJob>,
    validator_fetches: bool,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let n = jobs.len();
    for (id, kind, check_id, url, domain, request_id, depth) in jobs {
        conn.exec_cached(
            "UPDATE tasks SET state = 'failed' WHERE id = ?1",
            params![id],
        )
        .op("give_up_unclaimed")?;
        let dequeued = conn
            .exec_cached(
                "UPDATE domains SET queued = queued - 1 WHERE domain = ?1",
                params![domain],
            )
            .op("give_up_unclaimed")?;
        add_pending(conn, -count(dequeued))?;
        let Some(c) = check_id else { continue };
        let place = TiebreakPlace {
            url,
            domain,
            request_id,
            depth,
        };
        give_up_check(
            conn,
            c,
            kind == "check" && validator_fetches,
            place,
            None,
            now_ms,
        )?;
    }
    Ok(n)
}

fn expire_leases(
    conn: &Connection,
    now_ms: i64,
    domain_delay_ms: i64,
    validator_fetches: bool,
) -> Result<u32, StoreError> {
    let expired: Vec<(String, i64, String, String)> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT lease_id, task_id, domain, node FROM leases
                 WHERE state = 'open' AND expires_at_ms < ?1",
            )
            .op("expire")?;
        let rows = stmt
            .query_map(params![now_ms], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .op("expire")?;
        rows.collect::<Result<_, _>>().op("expire")?
    };
    for (lease_id, task_id, domain, node) in &expired {
        conn.exec_cached(
            "UPDATE leases SET state = 'expired', closed_at_ms = ?2 WHERE lease_id = ?1",
            params![lease_id, now_ms],
        )
        .op("expire")?;
        close_domain_lease(conn, domain, now_ms, domain_delay_ms, Some(false))?;
        requeue_or_fail(
            conn,
            *task_id,
            domain,
            node,
            Ended::Expired,
            validator_fetches,
            now_ms,
        )?;
    }
    if !expired.is_empty() {
        tracing::info!(count = expired.len(), "leases expired; tasks requeued");
    }
    Ok(u32::try_from(expired.len()).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gleaner_protocol::SecretKey;

    /// An empty store with one registered node (paid to its own key), and the node's key.
    fn store_with_node() -> (tempfile::TempDir, Store, SecretKey) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = SecretKey::from_bytes(&[7; 32]);
        store
            .register_node(&key.public(), &key.public(), "test", 0)
            .unwrap();
        (dir, store, key)
    }

    /// A store with one registered node and a request for `pages` URLs on each of `sites` sites.
    fn store_with(sites: usize, pages: usize) -> (tempfile::TempDir, Store, PublicKey) {
        let (dir, store, key) = store_with_node();
        let node = key.public();
        let seeds = (0..sites)
            .flat_map(|s| (0..pages).map(move |p| format!("http://site{s}.example/p{p}")))
            .collect();
        let request = CrawlRequest {
            seeds,
            domains: Vec::new(),
            sitemaps: Vec::new(),
            max_pages: 1_000,
            max_depth: 0,
        };
        store.add_crawl_request("test", &request, 0).unwrap();
        (dir, store, node)
    }

    /// The default rules for who may take checks.
    const RULES: JudgingRules = JudgingRules::DEFAULT;

    fn params(max_per_domain: u32) -> LeaseParams {
        LeaseParams {
            ttl_ms: 3_600_000,
            max_per_domain,
            domain_delay_ms: 0,
            max_open_per_node: 100,
            validator_fetches: false,
            network: None,
            judging: JudgingRules::DEFAULT,
        }
    }

    /// Queues a task of `kind` for `url`, on its host's domain (request 1, depth 0), made at `at`.
    fn queue(
        conn: &Connection,
        url: &str,
        kind: &str,
        check_id: Option<i64>,
        excluded: &str,
        at: i64,
    ) {
        let domain = url.split('/').nth(2).unwrap();
        push_task(conn, url, domain, 1, 0, kind, check_id, excluded, at).unwrap();
    }

    /// Queues a `kind` job (check or tie-break) for check `id` on `http://c{id}.example/`, made
    /// at `at`, with the check's row in `outcome`.
    fn queue_judging(
        conn: &Connection,
        id: i64,
        kind: &str,
        outcome: &str,
        excluded: &str,
        at: i64,
    ) {
        let url = format!("http://c{id}.example/");
        conn.execute(
            "INSERT INTO cross_checks(id, url, primary_record, primary_node, outcome,
                                      created_at_ms)
             VALUES (?1, ?2, x'00', 'someone', ?3, 0)",
            params![id, url, outcome],
        )
        .unwrap();
        queue(conn, &url, kind, Some(id), excluded, at);
    }

    /// Check `id`'s outcome.
    fn check_outcome(store: &Store, id: i64) -> String {
        store
            .writer()
            .unwrap()
            .query_row(
                "SELECT outcome FROM cross_checks WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// The URLs of the jobs `node` is leased at `at`, asking for `want`.
    fn leased(store: &Store, node: &PublicKey, want: u32, at: i64, p: &LeaseParams) -> Vec<String> {
        let jobs = store.lease(node, want, at, p).unwrap().jobs;
        jobs.into_iter().map(|j| j.url).collect()
    }

    fn domains(jobs: &[Job]) -> Vec<String> {
        let mut d: Vec<String> = jobs
            .iter()
            .map(|j| j.url.split('/').nth(2).unwrap().to_string())
            .collect();
        d.sort();
        d
    }

    #[test]
    fn checks_in_a_lease_follow_the_node_s_standing() {
        assert_eq!(
            judging_jobs_allowed(64, true, true),
            64,
            "proven: any number"
        );
        assert_eq!(judging_jobs_allowed(64, true, false), 32, "new: half");
        assert_eq!(judging_jobs_allowed(3, true, false), 1);
        assert_eq!(judging_jobs_allowed(1, true, false), 1, "new: at least one");
        for want in [1, 3, 64] {
            for proven in [false, true] {
                assert_eq!(judging_jobs_allowed(want, false, proven), 0, "caught: none");
            }
        }
    }

    /// However many checks a node may not take lead a domain's queue (here twenty of its own
    /// pages' checks, more than a lease used to look at), the page behind them is leased to it;
    /// a node the checks do not name takes the oldest check first.
    #[test]
    fn checks_a_node_may_not_take_never_hide_its_domain_s_pages() {
        let (_dir, store, node) = store_with(1, 1);
        let other = SecretKey::from_bytes(&[8; 32]).public();
        store.register_node(&other, &other, "test", 0).unwrap();
        {
            let conn = store.writer().unwrap();
            // The other node's key with a character more is another token, not its key.
            let excluded = format!("{node} {other}0");
            for i in 0..20 {
                let url = format!("http://busy.example/check{i}");
                queue(&conn, &url, "check", Some(i), &excluded, 0);
            }
            queue(&conn, "http://busy.example/page", "primary", None, "", 0);
        }
        let mut urls = leased(&store, &node, 4, 1, &params(1));
        urls.sort();
        assert_eq!(
            urls,
            ["http://busy.example/page", "http://site0.example/p0"]
        );
        assert_eq!(
            leased(&store, &other, 4, 2, &params(2)),
            ["http://busy.example/check0"]
        );
    }

    /// Through the lease itself: a node on the network of a node whose checks fill a domain's
    /// queue (lists as ingest writes them) is leased the one check behind them it may take,
    /// found past the run by its network token; the checked node itself is not leased its own.
    #[test]
    fn a_lease_finds_the_check_behind_a_run_of_its_network_s() {
        let (_dir, store, node) = store_with(1, 1);
        let key = |b: u8| SecretKey::from_bytes(&[b; 32]).public();
        let (other, neighbour) = (key(8), key(9));
        for k in [other, neighbour] {
            store.register_node(&k, &k, "test", 0).unwrap();
        }
        {
            let conn = store.writer().unwrap();
            conn.execute(
                "UPDATE nodes SET network = '203.0.113.0/24' WHERE node = ?1",
                [node.to_string()],
            )
            .unwrap();
            let run = crate::store::nodes::not_independent_of(&conn, &[&node.to_string()]).unwrap();
            assert!(run.starts_with("net:203.0.113.0/24 "), "{run}");
            let others =
                crate::store::nodes::not_independent_of(&conn, &[&other.to_string()]).unwrap();
            for i in 0..3 * JUDGING_HEAD_ROWS {
                let url = format!("http://busy.example/check{i}");
                queue(&conn, &url, "check", None, &run, 0);
            }
            queue(
                &conn,
                "http://busy.example/theirs",
                "check",
                None,
                &others,
                0,
            );
        }
        let on_network = LeaseParams {
            network: Network::of("203.0.113.9".parse().unwrap()),
            ..params(1)
        };
        assert_eq!(
            leased(&store, &neighbour, 1, 1, &on_network),
            ["http://busy.example/theirs"]
        );
        // The node's own checks stay where they are: it gets its page.
        assert_eq!(
            leased(&store, &node, 2, 2, &on_network),
            ["http://site0.example/p0"]
        );
    }

    /// A domain's check and tie-break jobs go before its pages: a check queued after three pages
    /// is leased first to a node that may take it; a node that may judge nobody (caught, no pass
    /// since) gets the oldest page.
    #[test]
    fn a_domain_s_checks_go_before_its_pages() {
        let (_dir, store, node) = store_with(1, 3);
        let caught = SecretKey::from_bytes(&[9; 32]).public();
        store.register_node(&caught, &caught, "test", 0).unwrap();
        {
            let conn = store.writer().unwrap();
            queue(
                &conn,
                "http://site0.example/checked",
                "check",
                Some(1),
                "another",
                0,
            );
            conn.execute(
                "UPDATE nodes SET checks_failed = 1, credibility = 0 WHERE node = ?1",
                [caught.to_string()],
            )
            .unwrap();
        }
        let p = LeaseParams {
            max_per_domain: 2,
            ..params(1)
        };
        assert_eq!(
            leased(&store, &node, 1, 1, &p),
            ["http://site0.example/checked"]
        );
        assert_eq!(
            leased(&store, &caught, 1, 1, &p),
            ["http://site0.example/p0"]
        );
    }

    /// Domains holding only checks the node may not take stay first in lease order (no lease of
    /// theirs ends to move them back); however many there are, more than the first window of
    /// candidates, the lease reads on past them to a page the node may fetch.
    #[test]
    fn domains_holding_only_checks_a_node_may_not_take_never_starve_it() {
        let (_dir, store, node) = store_with(1, 1);
        {
            let conn = store.writer().unwrap();
            for i in 0..600 {
                let url = format!("http://a{i:03}.example/check");
                queue(&conn, &url, "check", Some(i), &node.to_string(), 0);
            }
        }
        for (want, max_per_domain) in [(1, 1), (1, 2), (3, 1)] {
            let jobs = store
                .lease(&node, want, 1, &params(max_per_domain))
                .unwrap()
                .jobs;
            let urls: Vec<&str> = jobs.iter().map(|j| j.url.as_str()).collect();
            assert_eq!(urls, ["http://site0.example/p0"], "{want} {max_per_domain}");
            store
                .release(&node, &[jobs[0].lease_id.clone()], 1)
                .unwrap();
        }
    }

    /// A check job that no node seen within the hour may take (a network of one node checks
    /// none of its own pages; one operator's nodes share a network) goes to the validator's
    /// fetch after `UNCLAIMABLE_WAIT_MS` rather than the server's wait; one an active node may
    /// take waits, until that node has not been seen for an hour. Tie-break jobs, and checks
    /// with the validator's fetches off, wait the server's wait.
    #[test]
    fn jobs_no_active_node_may_take_are_given_up_within_the_hour() {
        const DAY: i64 = 86_400_000;
        let (_dir, store, node) = store_with(1, 1);
        let me = node.to_string();
        let other = SecretKey::from_bytes(&[9; 32]).public();
        store.register_node(&other, &other, "test", 0).unwrap();
        let net = "net:203.0.113.0/24";
        // (check id, kind, excluded, the check's outcome)
        let jobs = [
            (1, "check", me.clone(), "pending"),
            (2, "check", "someone".to_string(), "pending"),
            (3, "check", format!("{me} {net}"), "pending"),
            (4, "tiebreak", format!("{me} {net}"), "three_way"),
        ];
        {
            let conn = store.writer().unwrap();
            conn.execute(
                "UPDATE nodes SET network = '203.0.113.0/24' WHERE node = ?1",
                [other.to_string()],
            )
            .unwrap();
            for (id, kind, excluded, outcome) in &jobs {
                queue_judging(&conn, *id, kind, outcome, excluded, 0);
            }
        }
        let outcome = |id: i64| check_outcome(&store, id);
        let seen = |k: &PublicKey, at: i64| store.register_node(k, k, "test", at).unwrap();
        let t = UNCLAIMABLE_WAIT_MS;
        seen(&node, t);
        seen(&other, t);
        // Not yet the quarter of an hour.
        assert_eq!(
            store
                .give_up_unclaimed_jobs(t - 1, DAY, true, RULES)
                .unwrap(),
            0
        );
        // Jobs 3 and 4 exclude both active nodes (`node` by its key, `other` by its network):
        // with the validator's fetches off, both wait; on, check 3 goes to the validator's
        // fetch and tie-break 4 waits. `other` may take job 1, and both may take job 2.
        assert_eq!(
            store
                .give_up_unclaimed_jobs(t + 1, DAY, false, RULES)
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .give_up_unclaimed_jobs(t + 1, DAY, true, RULES)
                .unwrap(),
            1
        );
        assert_eq!(outcome(3), "unchecked");
        assert_eq!(outcome(4), "three_way");
        assert_eq!(
            (outcome(1), outcome(2)),
            ("pending".into(), "pending".into())
        );
        // `other` unseen for an hour, `node` alone: its own page's check goes to the
        // validator's fetch; job 2, which `node` may take, still waits.
        let later = t + ACTIVE_NODE_MS + 1;
        seen(&node, later);
        assert_eq!(
            store
                .give_up_unclaimed_jobs(later, DAY, true, RULES)
                .unwrap(),
            1
        );
        assert_eq!(outcome(1), "unchecked");
        assert_eq!(outcome(2), "pending");
        let (counter, recount) = pending_and_recount(&store);
        assert_eq!(counter, recount);
    }

    /// The early give-up reads the backlog in steps and passes over the jobs it keeps: in 600
    /// jobs on three domains, every other one for the node alone, it gives up the 300 others.
    #[test]
    fn the_early_give_up_reads_past_the_jobs_it_keeps() {
        const DAY: i64 = 86_400_000;
        let (_dir, store, node) = store_with(1, 1);
        let me = node.to_string();
        {
            let conn = store.writer().unwrap();
            conn.execute_batch("BEGIN").unwrap();
            for i in 0..600 {
                let excluded = if i % 2 == 0 { me.as_str() } else { "someone" };
                let url = format!("http://d{}.example/{i}", i % 2 + i / 300);
                queue(&conn, &url, "check", None, excluded, 0);
            }
            conn.execute_batch("COMMIT").unwrap();
        }
        store.register_node(&node, &node, "test", 1).unwrap();
        let now = UNCLAIMABLE_WAIT_MS + 1;
        assert_eq!(
            store.give_up_unclaimed_jobs(now, DAY, true, RULES).unwrap(),
            300
        );
        assert_eq!(
            store.give_up_unclaimed_jobs(now, DAY, true, RULES).unwrap(),
            0
        );
        let left: i64 = store
            .writer()
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM tasks WHERE state = 'queued' AND excluded = 'someone'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 300);
    }

    /// With more active nodes that may take checks than the early give-up looks at, it gives
    /// up nothing, even a job that excludes them all (here by their network): the server's wait
    /// stands. Caught nodes do not count towards that cap, up to the most nodes it reads.
    #[test]
    fn the_early_give_up_stands_aside_for_a_large_network() {
        const DAY: i64 = 86_400_000;
        let cap = MAX_ACTIVE_NODES_FOR_EARLY_GIVE_UP;
        let read = MAX_ACTIVE_NODES_READ_FOR_EARLY_GIVE_UP;
        // (nodes that may take checks, caught nodes beside them, jobs given up)
        for (allowed, caught, given_up) in [
            (cap, 0, 1),
            (cap + 1, 0, 0),
            (cap, 100, 1),
            (1, read - 1, 1),
            (1, read, 0),
        ] {
            let (_dir, store, node) = store_with(1, 1);
            // `node` and allowed - 1 others.
            for i in 1..allowed {
                let k = SecretKey::from_bytes(&[u8::try_from(i + 10).unwrap(); 32]).public();
                store.register_node(&k, &k, "test", 0).unwrap();
            }
            {
                let conn = store.writer().unwrap();
                // Caught: a failed check and credibility no higher than a new node's.
                conn.execute(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                     INSERT INTO nodes(node, payout, client, registered_at_ms, last_seen_ms,
                                       credibility, checks_failed)
                     SELECT 'caught' || i, 'caught' || i, 'test', 0, 0, 0.0, 1 FROM n
                      WHERE ?1 > 0",
                    [caught as i64],
                )
                .unwrap();
                conn.execute("UPDATE nodes SET network = '203.0.113.0/24'", [])
                    .unwrap();
                let excluded = format!("{node} net:203.0.113.0/24");
                queue_judging(&conn, 1, "check", "pending", &excluded, 0);
            }
            let now = UNCLAIMABLE_WAIT_MS + 1;
            assert_eq!(
                store.give_up_unclaimed_jobs(now, DAY, true, RULES).unwrap(),
                given_up,
                "{allowed} active nodes that may take checks, {caught} caught"
            );
        }
    }

    /// A page's job asks for its links only when ingest would follow them: its crawl request
    /// reaches deeper than the page and has pages left to queue. A check's job never does. The
    /// lease decides in SQL and ingest in `grow_frontier`: each page's record is then submitted
    /// with an in-scope link, which is queued exactly where the job asked for links.
    #[test]
    fn jobs_ask_for_links_only_where_ingest_follows_them() {
        let (_dir, store, key) = store_with_node();
        let node = key.public();
        // (seed, max_pages, max_depth, whether its links are wanted)
        let requests = [
            ("http://deeper.example/", 10, 1, true),
            ("http://limit.example/", 10, 0, false),
            ("http://spent.example/", 1, 1, false),
        ];
        for (seed, max_pages, max_depth, _) in requests {
            let request = CrawlRequest {
                seeds: vec![seed.to_string()],
                domains: Vec::new(),
                sitemaps: Vec::new(),
                max_pages,
                max_depth,
            };
            store.add_crawl_request("test", &request, 0).unwrap();
        }
        {
            let conn = store.writer().unwrap();
            queue_judging(&conn, 1, "check", "pending", "someone", 0);
        }
        let now = crate::testkit::FILL_T0;
        let jobs = store.lease(&node, 10, now, &params(1)).unwrap().jobs;
        let wanted: std::collections::HashMap<&str, bool> = jobs
            .iter()
            .map(|j| (j.url.as_str(), j.follow_links))
            .collect();
        for (seed, _, _, want) in requests {
            assert_eq!(wanted.get(seed), Some(&want), "{seed}");
        }
        assert_eq!(wanted.get("http://c1.example/"), Some(&false), "a check");
        assert_eq!(jobs.len(), 4);
        let link = |page: &str| format!("{page}next");
        let records = jobs
            .iter()
            .filter(|j| j.url != "http://c1.example/")
            .enumerate()
            .map(|(i, j)| {
                let text = crate::testkit::sample_text(i as u64, 3_000);
                crate::testkit::record_with_outlinks(&key, j, text, vec![link(&j.url)], now)
            })
            .collect();
        let validator = SecretKey::from_bytes(&[200; 32]);
        crate::testkit::ingest_batch(&store, &key, &validator, records, now + 1).unwrap();
        let conn = store.writer().unwrap();
        for (seed, _, _, want) in requests {
            let queued: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM tasks WHERE url = ?1",
                    [link(seed)],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(queued, i64::from(want), "{seed}: the link followed");
        }
    }

    /// An active node the lease gives no checks counts for the early give-up as one that cannot
    /// take the job: caught (a failed check, no pass since), paused (gave such a job back within
    /// the pause) or holding the cap of unsettled "no page" reports. Once it may judge again,
    /// the next check waits for it.
    #[test]
    fn the_early_give_up_passes_over_nodes_the_lease_gives_no_checks() {
        const DAY: i64 = 86_400_000;
        let (_dir, store, node) = store_with(1, 1);
        let other = SecretKey::from_bytes(&[9; 32]).public();
        store.register_node(&other, &other, "test", 0).unwrap();
        let other_s = other.to_string();
        let now = UNCLAIMABLE_WAIT_MS + 1;
        // Each way `other` may not judge, then the row put back.
        let unable = [
            "UPDATE nodes SET checks_failed = 1 WHERE node = ?1",
            "UPDATE nodes SET judging_given_back_ms = 1000 WHERE node = ?1",
        ];
        let mut id = 0;
        let mut pending_check = |store: &Store| {
            id += 1;
            let conn = store.writer().unwrap();
            queue_judging(&conn, id, "check", "pending", &node.to_string(), 0);
            id
        };
        for sql in unable {
            let check = pending_check(&store);
            store.writer().unwrap().execute(sql, [&other_s]).unwrap();
            store.register_node(&other, &other, "test", now).unwrap();
            assert_eq!(
                store.give_up_unclaimed_jobs(now, DAY, true, RULES).unwrap(),
                1,
                "{sql}"
            );
            assert_eq!(check_outcome(&store, check), "unchecked", "{sql}");
            store
                .writer()
                .unwrap()
                .execute(
                    "UPDATE nodes SET checks_failed = 0, judging_given_back_ms = NULL
                      WHERE node = ?1",
                    [&other_s],
                )
                .unwrap();
        }
        // The cap of unsettled "no page" reports: `other` holds three.
        {
            let conn = store.writer().unwrap();
            for i in 0..MAX_UNSETTLED_UNFOUND {
                conn.execute(
                    "INSERT INTO cross_checks(id, url, primary_record, primary_node, outcome,
                                              check_node, created_at_ms)
                     VALUES (?1, 'http://u.example/', x'00', 'someone', 'unfound', ?2, 0)",
                    params![100 + i, other_s],
                )
                .unwrap();
            }
        }
        let check = pending_check(&store);
        assert_eq!(
            store.give_up_unclaimed_jobs(now, DAY, true, RULES).unwrap(),
            1
        );
        assert_eq!(check_outcome(&store, check), "unchecked");
        // No cap: `other` may take the next one, which waits.
        let no_cap = JudgingRules {
            max_unsettled_unfound: 0,
            ..RULES
        };
        let check = pending_check(&store);
        assert_eq!(
            store
                .give_up_unclaimed_jobs(now, DAY, true, no_cap)
                .unwrap(),
            0
        );
        assert_eq!(check_outcome(&store, check), "pending");
    }

    /// Check and tie-break jobs no node took within the wait are given up as their nodes giving
    /// them up would be: a check goes to the validator's own fetch (or is abandoned with those
    /// off), a tie-break ends its check where the validator's fetch left it. Pages, younger
    /// jobs and leased ones stay; the queue's counters follow.
    #[test]
    fn check_jobs_no_node_takes_in_time_are_given_up() {
        let (_dir, store, node) = store_with(1, 1);
        let me = node.to_string();
        // (check id, kind, made at, the check's outcome)
        let jobs = [
            (1, "check", 0, "pending"),
            (2, "tiebreak", 100, "three_way"),
            (3, "tiebreak", 200, "audit_disputed"),
            (4, "tiebreak", 300, "disputed"),
            (5, "check", 5_000, "pending"),
            (6, "check", 9_000, "pending"),
        ];
        {
            let conn = store.writer().unwrap();
            // A page queued on check 6's domain before its job (which goes first all the same).
            queue(&conn, "http://c6.example/first", "primary", None, "", 0);
            for (id, kind, at, outcome) in jobs {
                queue_judging(&conn, id, kind, outcome, &me, at);
            }
        }
        // Check 1's job goes out on a lease to a node it does not exclude: not given up.
        let other = SecretKey::from_bytes(&[9; 32]).public();
        store.register_node(&other, &other, "test", 0).unwrap();
        assert_eq!(
            leased(&store, &other, 1, 1, &params(1)),
            ["http://c1.example/"],
            "the oldest job first"
        );
        let outcome = |id: i64| check_outcome(&store, id);
        let waiting = |id: i64| -> bool {
            store
                .writer()
                .unwrap()
                .query_row(
                    "SELECT COUNT(*) FROM tiebreak_fetches WHERE check_id = ?1",
                    [id],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap()
                == 1
        };
        let (counter, recount) = pending_and_recount(&store);
        assert_eq!(counter, recount);

        // At 1,000 + 300 with a wait of 1,000: the jobs made before 300 are given up (check 1's
        // is leased, so it stays).
        assert_eq!(
            store
                .give_up_unclaimed_jobs(1_300, 1_000, true, RULES)
                .unwrap(),
            2
        );
        assert_eq!(outcome(1), "pending", "a leased job is not given up");
        assert_eq!(outcome(2), "inconclusive");
        assert_eq!(outcome(3), "agreed");
        assert_eq!(outcome(4), "disputed", "made at 300: not yet");
        assert_eq!(
            store
                .give_up_unclaimed_jobs(1_301, 1_000, true, RULES)
                .unwrap(),
            1
        );
        assert_eq!(outcome(4), "abandoned");
        // A check with the validator's fetches on waits for one, unchecked; off, it is abandoned.
        assert_eq!(
            store
                .give_up_unclaimed_jobs(6_001, 1_000, true, RULES)
                .unwrap(),
            1
        );
        assert_eq!(outcome(5), "unchecked");
        assert!(waiting(5));
        assert_eq!(
            store
                .give_up_unclaimed_jobs(6_001, 1_000, true, RULES)
                .unwrap(),
            0
        );
        // Check 6's job goes before the page queued on its domain before it, so it has not
        // waited behind it: with the validator's fetches off it is abandoned.
        assert_eq!(
            store
                .give_up_unclaimed_jobs(10_001, 1_000, false, RULES)
                .unwrap(),
            1
        );
        assert_eq!(outcome(6), "abandoned");
        assert!(!waiting(6));
        let (counter, recount) = pending_and_recount(&store);
        assert_eq!((counter, recount), (3, 3), "two pages and check 1's lease");
        // The pages are still there to lease, and the given-up jobs are not.
        let mut urls = leased(&store, &node, 10, 20_000, &params(1));
        urls.sort();
        assert_eq!(urls, ["http://c6.example/first", "http://site0.example/p0"]);
    }

    /// More domains holding only jobs a node may not take than one lease looks at: the lease
    /// moves those it passed over to the back of the order (still ready), so the node's next
    /// lease reaches the page behind them, and a node that may take their jobs still gets them.
    #[test]
    fn domains_a_lease_passed_over_go_to_the_back_of_the_order() {
        let (_dir, store, node) = store_with(1, 1);
        let other = SecretKey::from_bytes(&[8; 32]).public();
        store.register_node(&other, &other, "test", 0).unwrap();
        {
            let conn = store.writer().unwrap();
            conn.execute_batch("BEGIN").unwrap();
            for i in 0..MAX_DOMAINS_EXAMINED + 100 {
                let url = format!("http://a{i:05}.example/check");
                queue(&conn, &url, "check", Some(i), &node.to_string(), 0);
            }
            conn.execute_batch("COMMIT").unwrap();
        }
        let urls = |k: &PublicKey, at: i64| leased(&store, k, 1, at, &params(1));
        assert!(
            urls(&node, 1).is_empty(),
            "the first lease looks at 4,096 of them"
        );
        assert_eq!(urls(&node, 2), ["http://site0.example/p0"]);
        assert_eq!(urls(&other, 3), ["http://a00000.example/check"]);
    }

    /// `first_judging_task`'s pick on `domain` for the node of `tokens`, and the virtual machine
    /// steps its statements took: a few per row read, a few dozen per seek.
    fn pick_and_steps(
        conn: &Connection,
        domain: &str,
        tokens: &NodeTokens,
    ) -> (Option<(i64, String)>, i32) {
        let statements = [
            DOMAIN_JUDGING_TASKS_SQL,
            DOMAIN_JUDGING_LIST_FROM_SQL,
            DOMAIN_JUDGING_LIST_SQL,
            DOMAIN_JUDGING_NTH_SQL,
            DOMAIN_JUDGING_TASK_AFTER_SQL,
        ];
        let steps = |reset: bool| -> i32 {
            statements
                .iter()
                .map(|sql| {
                    let stmt = conn.prepare_cached(sql).unwrap();
                    if reset {
                        stmt.reset_status(rusqlite::StatementStatus::VmStep)
                    } else {
                        stmt.get_status(rusqlite::StatementStatus::VmStep)
                    }
                })
                .sum()
        };
        steps(true);
        let got = first_judging_task(conn, domain, tokens).unwrap();
        (got, steps(false))
    }

    /// The lease's check pick as one query, the form it had before [`first_judging_task`]:
    /// the domain's queued check and tie-break jobs in id order, the first the node may take.
    const JUDGING_IN_ID_ORDER_SQL: &str = concat!(
        "SELECT id, url FROM tasks WHERE domain = ?1 AND state = 'queued' AND kind <> 'primary'",
        for_the_node!()
    );

    /// However the queue is read (in id order; past a long head of jobs the node may not take,
    /// an exclusion list at a time; past too many lists, in id order again), the job picked is
    /// the one the whole queue read in id order gives, for every node: nodes sharing a payout key
    /// or a network, one whose key is a prefix of another's, one with no payout or network known.
    #[test]
    fn the_check_a_lease_picks_is_the_oldest_the_node_may_take_however_the_queue_is_read() {
        const LONG_RUN: usize = 2_000;
        let (_dir, store, _) = store_with_node();
        let conn = store.writer().unwrap();
        // Twelve nodes `k0`..`k11` (`k1` a prefix of `k10` and `k11`); pairs share a payout key,
        // threes a network.
        let key = |i: usize| format!("k{i}");
        let payout = |i: usize| format!("pay{}", i / 2);
        let network = |i: usize| format!("10.0.{}.0/24", i / 3);
        let net = |i: usize| crate::store::nodes::network_token(&network(i));
        // A check of node `i`'s page, its list as `not_independent_of` writes it (network
        // first), and as lists were written before (node first).
        let own = |i: usize| format!("{} {} {}", net(i), key(i), payout(i));
        let own_before = |i: usize| format!("{} {} {}", key(i), payout(i), net(i));
        // A small linear congruential generator: the same queue every run.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize % n
        };
        let mut pushed = 0;
        let mut push = |domain: &str, kind: &str, excluded: &str, state: &str| {
            pushed += 1;
            let url = format!("http://{domain}/{pushed}");
            push_task(&conn, &url, domain, 1, 0, kind, Some(pushed), excluded, 0).unwrap();
            if state != "queued" {
                conn.execute(
                    "UPDATE tasks SET state = ?2 WHERE url = ?1",
                    params![url, state],
                )
                .unwrap();
            }
        };
        let mut random_job = |domain: &str, push: &mut dyn FnMut(&str, &str, &str, &str)| {
            let excluded = match next(8) {
                0 => String::new(),
                1 => own(next(12)),
                2 => format!("{} {}", own(next(12)), own(next(12))),
                3 => format!("k1{}", next(3)),
                4 => own_before(next(12)),
                5 => format!("net:10.0.{}.0/24 someone{}", next(4), next(50)),
                6 => format!("k{} zz", next(12)),
                _ => format!("someone{} net:10.0.{}.0/24", next(50), next(4)),
            };
            let kind = ["check", "tiebreak", "primary"][next(3)];
            let state = ["queued", "queued", "queued", "leased", "done"][next(5)];
            push(domain, kind, &excluded, state);
        };
        // Few jobs: the head alone.
        for _ in 0..20 {
            random_job("few.example", &mut push);
        }
        // Node 0's own checks fill the head (a day's worth is tens of thousands), then jobs
        // whose lists sort in another order than their ages (the oldest one node 0 may take
        // has the last list), then jobs of every kind: a few lists.
        for _ in 0..LONG_RUN {
            push("long.example", "check", &own(0), "queued");
        }
        // Lists that start with node 1's key (passed over with it) beside one that starts with
        // a longer key (`k10`: not passed over).
        push("long.example", "check", "k1", "queued");
        push("long.example", "check", "k1 zz", "queued");
        push("long.example", "check", "k10 zz", "queued");
        push("long.example", "check", "zz", "queued");
        push("long.example", "tiebreak", "", "queued");
        push("long.example", "check", "aa", "queued");
        for _ in 0..40 {
            random_job("long.example", &mut push);
        }
        // Checks of many nodes on nodes 0–2's network, lists network first (passed over in one
        // seek by those nodes), then one each node may take, then jobs of every kind.
        for k in 0..LONG_RUN {
            push(
                "net.example",
                "check",
                &format!("{} m{k}", net(0)),
                "queued",
            );
        }
        push("net.example", "check", "zz", "queued");
        push("net.example", "check", "", "queued");
        for _ in 0..40 {
            random_job("net.example", &mut push);
        }
        // The same with lists written node first: each its own list, more than are read one at
        // a time, so the rest is read in id order.
        for k in 0..(MAX_JUDGING_LISTS + 20) {
            push(
                "many.example",
                "check",
                &format!("m{k} net:10.0.0.0/24"),
                "queued",
            );
        }
        push("many.example", "check", "zz", "queued");
        push("many.example", "check", "", "queued");
        for _ in 0..40 {
            random_job("many.example", &mut push);
        }
        let lists = |domain: &str| -> i64 {
            conn.query_row(
                "SELECT COUNT(DISTINCT excluded) FROM tasks
                  WHERE domain = ?1 AND state = 'queued' AND kind <> 'primary'",
                [domain],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert!(lists("many.example") > MAX_JUDGING_LISTS as i64);

        let mut picked = 0;
        for domain in [
            "few.example",
            "long.example",
            "net.example",
            "many.example",
            "none.example",
        ] {
            for i in 0..12 {
                for (known_payout, known_net) in [(true, true), (false, true), (true, false)] {
                    let tokens = NodeTokens::of(
                        &key(i),
                        known_payout.then(|| payout(i)).as_deref(),
                        known_net.then(|| network(i)).as_deref(),
                    );
                    let t = &tokens;
                    let expected: Option<(i64, String)> = conn
                        .query_row(
                            JUDGING_IN_ID_ORDER_SQL,
                            params![domain, t.node, t.payout, t.network],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()
                        .unwrap();
                    let got = first_judging_task(&conn, domain, &tokens).unwrap();
                    assert_eq!(got, expected, "{domain}, node {i}, {tokens:?}");
                    picked += usize::from(got.is_some());
                }
            }
        }
        assert!(picked > 50, "most nodes find a job: {picked}");
        // Where the picks lie: past the head, found a list at a time (node 1's past lists that
        // start with its key, and past the network's lists in one seek), and past every list
        // read one at a time.
        let tokens = |i: usize, known_net: bool| {
            NodeTokens::of(
                &key(i),
                Some(&payout(i)),
                known_net.then(|| network(i)).as_deref(),
            )
        };
        let position = |domain: &str, tokens: &NodeTokens| -> i64 {
            let (id, _) = first_judging_task(&conn, domain, tokens).unwrap().unwrap();
            conn.query_row(
                "SELECT COUNT(*) FROM tasks WHERE domain = ?1 AND state = 'queued'
                    AND kind <> 'primary' AND id < ?2",
                params![domain, id],
                |r| r.get(0),
            )
            .unwrap()
        };
        let run = LONG_RUN as i64;
        assert_eq!(position("long.example", &tokens(0, true)), run);
        assert_eq!(position("long.example", &tokens(1, false)), run + 2);
        assert_eq!(position("net.example", &tokens(1, true)), run);
        assert_eq!(
            position("many.example", &tokens(1, true)),
            MAX_JUDGING_LISTS as i64 + 20
        );

        // Those reading past a run read far fewer rows than it: the virtual machine steps of
        // the statements, a few per row read, stay below the run's length (read row by row,
        // they are several times it).
        for (domain, i, network) in [("long.example", 1, false), ("net.example", 1, true)] {
            let (got, read) = pick_and_steps(&conn, domain, &tokens(i, network));
            assert!(got.is_some(), "{domain}");
            assert!(read < LONG_RUN as i32, "{domain}: {read} steps");
        }
    }

    /// Past the lists read one at a time, a lease reads on at most
    /// [`MAX_JUDGING_ROWS_AFTER_LISTS`] of a domain's checks: a check the node may take behind
    /// more than that many it may not, each its own list written node first, is found by no
    /// lease of that node, however long the queue; one within the bound is.
    #[test]
    fn a_lease_reads_a_bounded_number_of_a_domain_s_checks() {
        let (_dir, store, _) = store_with_node();
        let conn = store.writer().unwrap();
        let tokens = NodeTokens::of("me", None, Some("10.0.0.0/24"));
        let bound = JUDGING_HEAD_ROWS + MAX_JUDGING_ROWS_AFTER_LISTS as usize;
        let queue = |domain: &str, untakeable: usize| {
            for k in 0..untakeable {
                let excluded = format!("m{k} net:10.0.0.0/24");
                queue(
                    &conn,
                    &format!("http://{domain}/{k}"),
                    "check",
                    None,
                    &excluded,
                    0,
                );
            }
            queue(
                &conn,
                &format!("http://{domain}/mine"),
                "check",
                None,
                "zz",
                0,
            );
        };
        let tx = conn.unchecked_transaction().unwrap();
        queue("within.example", bound - 1);
        queue("past.example", 2 * bound);
        tx.commit().unwrap();
        let (within, within_steps) = pick_and_steps(&conn, "within.example", &tokens);
        assert_eq!(within.unwrap().1, "http://within.example/mine");
        let (past, past_steps) = pick_and_steps(&conn, "past.example", &tokens);
        assert_eq!(past, None);
        // Twice the queue, about the same reading.
        assert!(
            f64::from(past_steps) < 1.2 * f64::from(within_steps),
            "{past_steps} steps past the bound, {within_steps} within it"
        );
    }

    /// A lease looks at many domains, each with its own binding of the cached task query; the
    /// query planner stability guarantee (`store::prepare_connection`) keeps SQLite from parsing
    /// and planning it again for each one (without it, every new domain re-planned it).
    #[test]
    fn leasing_across_domains_reuses_the_task_query_plan() {
        let (_dir, store, node) = store_with(12, 1);
        for round in 0..3 {
            let lease = store.lease(&node, 4, round, &params(1)).unwrap();
            assert_eq!(lease.jobs.len(), 4, "round {round}");
        }
        let conn = store.writer().unwrap();
        for sql in [DOMAIN_JUDGING_TASKS_SQL, DOMAIN_PAGE_TASK_SQL] {
            let stmt = conn.prepare_cached(sql).unwrap();
            assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
            // It ran once per domain leased: the count above is about the statement the leases
            // used.
            assert!(stmt.get_status(rusqlite::StatementStatus::VmStep) > 0);
        }
    }

    /// How a domain lease was closed before the one-statement `UPDATE`: read the row, compute in
    /// Rust, write. The reference the statement is checked against.
    fn close_domain_lease_by_reading(
        conn: &Connection,
        domain: &str,
        now_ms: i64,
        domain_delay_ms: i64,
        failed: Option<bool>,
    ) -> i64 {
        let (crawl_delay, failures, active): (i64, i64, i64) = conn
            .query_row(
                "SELECT crawl_delay_ms, failures, active_leases FROM domains WHERE domain = ?1",
                params![domain],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .unwrap()
            .unwrap_or((0, 0, 0));
        let failures = match failed {
            Some(true) => failures + 1,
            Some(false) => failures,
            None => 0,
        };
        let base = domain_delay_ms.max(crawl_delay);
        let delay = base.saturating_mul(1 << failures.clamp(0, MAX_BACKOFF_SHIFT));
        conn.execute(
            "UPDATE domains SET active_leases = MAX(active_leases - 1, 0), failures = ?3,
                    next_allowed_ms = MAX(next_allowed_ms, ?2)
             WHERE domain = ?1",
            params![domain, now_ms.saturating_add(delay), failures],
        )
        .unwrap();
        -i64::from(active > 0)
    }

    /// The one-statement close leaves every domain row and the pending counter exactly as reading
    /// then writing did, whatever the row held and however the fetch ended; and backs off.
    #[test]
    fn closing_a_domain_lease_in_one_statement_matches_reading_then_writing() {
        let rows: [(&str, i64, i64, i64, i64, i64); 7] = [
            // (domain, crawl delay, next allowed, active leases, queued, failures)
            ("busy.example", 0, 0, 5, 3, 0),
            ("slow.example", 5_000, 1_000, 4, 0, 4),
            ("later.example", 0, 9_000_000, 3, 1, 2),
            ("faster.example", 100, 0, 2, 0, 9),
            ("idle.example", 2_000, 0, 0, 1, 1),
            ("odd.example", 0, 0, -1, 0, 0),
            ("gone.example", 0, 0, 0, 0, 0),
        ];
        let open = || {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            {
                let conn = store.writer().unwrap();
                for (d, delay, next, active, queued, failures) in rows {
                    if d == "gone.example" {
                        continue;
                    }
                    conn.execute(
                        "INSERT INTO domains(domain, crawl_delay_ms, next_allowed_ms,
                                             active_leases, queued, failures)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![d, delay, next, active, queued, failures],
                    )
                    .unwrap();
                }
            }
            (dir, store)
        };
        let (_a, reference) = open();
        let (_b, store) = open();
        let snapshot = |store: &Store| -> Vec<(String, i64, i64, i64, i64, i64)> {
            let conn = store.writer().unwrap();
            let mut stmt = conn
                .prepare(
                    "SELECT domain, crawl_delay_ms, next_allowed_ms, active_leases, queued,
                            failures FROM domains ORDER BY domain",
                )
                .unwrap();
            stmt.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        let mut now = 1_000_000;
        for failed in [Some(true), Some(false), None] {
            for (d, ..) in rows {
                for delay in [0, 3_000] {
                    now += 1_000;
                    let expected = {
                        let conn = reference.writer().unwrap();
                        close_domain_lease_by_reading(&conn, d, now, delay, failed)
                    };
                    let got = {
                        let conn = store.writer().unwrap();
                        close_domain_lease_in(&conn, d, now, delay, failed).unwrap()
                    };
                    let at = format!("{d}, delay {delay}, failed {failed:?}");
                    assert_eq!(got, expected, "pending change: {at}");
                    assert_eq!(snapshot(&store), snapshot(&reference), "{at}");
                }
            }
        }
        // Every lease ran out, and the last closes (successes) reset the failures.
        assert!(snapshot(&store).iter().all(|r| r.3 == 0 && r.5 == 0));

        // The back-off itself: a third transient failure rests 2^3 times the crawl delay, and
        // the exponent stops at MAX_BACKOFF_SHIFT.
        let conn = store.writer().unwrap();
        conn.execute(
            "INSERT INTO domains(domain, crawl_delay_ms, next_allowed_ms, active_leases, queued,
                                 failures)
             VALUES ('flaky.example', 1000, 0, 2, 0, 2), ('down.example', 1000, 0, 1, 0, 30)",
            [],
        )
        .unwrap();
        assert_eq!(
            close_domain_lease_in(&conn, "flaky.example", now, 0, Some(true)).unwrap(),
            -1
        );
        assert_eq!(
            close_domain_lease_in(&conn, "down.example", now, 0, Some(true)).unwrap(),
            -1
        );
        let row = |d: &str| -> (i64, i64, i64) {
            conn.query_row(
                "SELECT next_allowed_ms, failures, active_leases FROM domains WHERE domain = ?1",
                [d],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
        };
        assert_eq!(row("flaky.example"), (now + 8_000, 3, 1));
        assert_eq!(
            row("down.example"),
            (now + (1_000 << MAX_BACKOFF_SHIFT), 31, 0)
        );
    }

    #[test]
    fn one_lease_per_domain_by_default_however_many_domains_are_busy() {
        let (_dir, store, node) = store_with(20, 3);
        let p = params(1);
        let first = store.lease(&node, 10, 1, &p).unwrap().jobs;
        assert_eq!(first.len(), 10);
        let mut seen = domains(&first);
        seen.dedup();
        assert_eq!(seen.len(), 10, "one job per domain: {seen:?}");
        // The ten busy domains come first in lease order; the other ten are still found.
        let second = store.lease(&node, 20, 2, &p).unwrap().jobs;
        assert_eq!(second.len(), 10);
        let both: Vec<String> = [domains(&first), domains(&second)].concat();
        let mut unique = both.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 20, "no domain leased twice: {both:?}");
        // Every domain has its one lease out: nothing more, though 40 URLs are queued.
        let third = store.lease(&node, 20, 3, &p).unwrap();
        assert!(third.jobs.is_empty(), "{:?}", third.jobs);
        assert_eq!(third.pending, 60);
    }

    /// The `pending` counter, and `SUM(queued) + SUM(active_leases)` recounted from `domains`.
    fn pending_and_recount(store: &Store) -> (i64, i64) {
        let conn = store.conn().unwrap();
        let counter = conn
            .query_row(
                "SELECT value FROM counters WHERE name = 'pending'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let recount = conn
            .query_row(
                "SELECT COALESCE(SUM(queued), 0) + COALESCE(SUM(active_leases), 0) FROM domains",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (counter, recount)
    }

    /// Registrations, failure reports and releases run in the writer's shared transaction like
    /// leases and ingests: each in its own savepoint, so a refused one changes nothing while the
    /// others in the group are committed together.
    #[test]
    fn node_writes_share_a_group_and_a_refused_one_changes_nothing() {
        let (_dir, store, node) = store_with(4, 2);
        let jobs = store.lease(&node, 4, 1, &params(1)).unwrap().jobs;
        assert_eq!(jobs.len(), 4);
        let second = SecretKey::from_bytes(&[8; 32]).public();
        let refused = SecretKey::from_bytes(&[9; 32]).public();
        let gone = JobFailure {
            lease_id: jobs[0].lease_id.clone(),
            reason: FailureReason::HttpError,
            detail: String::new(),
            status: Some(404),
            crawl_delay_ms: None,
        };
        let (registered, bad, reported, released, foreign) = store
            .group(|g| {
                (
                    g.register_node(&second, &second, "second", 2),
                    g.register_node(&refused, &refused, "bell\u{7}", 2),
                    g.report_failures(&node, std::slice::from_ref(&gone), 2, 0, false),
                    g.release(&node, &[jobs[1].lease_id.clone()], 2),
                    // Another node's lease is not the second node's to give back.
                    g.release(&second, &[jobs[2].lease_id.clone()], 2),
                )
            })
            .unwrap();
        assert_eq!(registered.unwrap().client, "second");
        let bad = bad.unwrap_err();
        assert!(
            matches!(
                bad,
                StoreError::Invalid {
                    field: "client",
                    ..
                }
            ),
            "{bad}"
        );
        assert_eq!(reported.unwrap().accepted, 1);
        assert_eq!(released.unwrap().accepted, 1);
        assert_eq!(foreign.unwrap().accepted, 0);
        assert!(store.is_registered(&second).unwrap());
        assert!(!store.is_registered(&refused).unwrap());
        assert_eq!(store.node(&node).unwrap().unwrap().jobs_failed, 1);
        // Eight URLs: the 404 leaves the queue, the released one is queued again.
        assert_eq!(pending_and_recount(&store), (7, 7));
        let state = |id: &str| -> String {
            store
                .conn()
                .unwrap()
                .query_row("SELECT state FROM leases WHERE lease_id = ?1", [id], |r| {
                    r.get(0)
                })
                .unwrap()
        };
        assert_eq!(state(&jobs[0].lease_id), "failed");
        assert_eq!(state(&jobs[1].lease_id), "released");
        assert_eq!(state(&jobs[2].lease_id), "open");
    }

    #[test]
    fn the_pending_counter_follows_every_change_to_the_queue() {
        let (_dir, store, node) = store_with(6, 3);
        let check = |what: &str, expected: i64| {
            let (counter, recount) = pending_and_recount(&store);
            assert_eq!(counter, recount, "{what}: counter against the table");
            assert_eq!(counter, expected, "{what}");
        };
        check("18 URLs queued", 18);
        let p = params(1);
        let jobs = store.lease(&node, 6, 1, &p).unwrap().jobs;
        assert_eq!(jobs.len(), 6);
        check("a lease moves a task from queued to leased", 18);
        let failure = |lease: &Job, reason, status| JobFailure {
            lease_id: lease.lease_id.clone(),
            reason,
            detail: String::new(),
            status,
            crawl_delay_ms: None,
        };
        let reported = store
            .report_failures(
                &node,
                &[
                    // transient: the task goes back to the queue
                    failure(&jobs[0], FailureReason::Timeout, None),
                    // permanent: the task fails and leaves the queue
                    failure(&jobs[1], FailureReason::HttpError, Some(404)),
                ],
                2,
                0,
                true,
            )
            .unwrap();
        assert_eq!(reported.accepted, 2);
        check("one failure requeued, one gone", 17);
        let released = store
            .release(
                &node,
                &[jobs[2].lease_id.clone(), jobs[2].lease_id.clone()],
                3,
            )
            .unwrap();
        assert_eq!(released.accepted, 1, "a lease is released once");
        check("a released lease is queued again", 17);
        // Three leases are still out; past their expiry they are requeued.
        let expired = store.expire_leases(3_600_000 + 10, 0, false).unwrap();
        assert_eq!(expired, 3);
        check("expired leases are queued again", 17);
        store.expire_leases(3_600_000 + 20, 0, false).unwrap();
        check("nothing left to expire changes nothing", 17);
    }

    #[test]
    fn a_higher_per_domain_limit_allows_that_many_leases() {
        let (_dir, store, node) = store_with(1, 5);
        let p = params(2);
        let mut jobs = Vec::new();
        for now in 1..=4 {
            jobs.extend(store.lease(&node, 5, now, &p).unwrap().jobs);
        }
        assert_eq!(jobs.len(), 2, "two leases on the one domain: {jobs:?}");
    }
}
