//! Sitemaps named by crawl requests: the queue the validator's own fetcher works through
//! ([`crate::sitemaps`]), and what each fetched sitemap adds to the frontier.

use rusqlite::{Connection, params};

use super::jobs::RequestScope;
use super::{Cached, Op, Store, StoreError};
use crate::frontier::normalize;

/// Sitemap indexes are followed this many levels deep (an index of indexes is allowed by
/// sitemaps.org; deeper nesting is either a mistake or a trap).
pub const MAX_SITEMAP_DEPTH: i64 = 2;
/// Child sitemaps queued from one index at most.
pub const MAX_CHILD_SITEMAPS: usize = 1_000;

/// A sitemap to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitemapJob {
    pub request_id: i64,
    pub url: String,
    /// 0 for a sitemap named by the request, 1 for one listed by that sitemap's index, …
    pub depth: i64,
}

/// What fetching a sitemap gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SitemapOutcome {
    /// The `<loc>`s of a `<urlset>` (`pages`) or of a `<sitemapindex>` (`sitemaps`).
    Parsed {
        pages: Vec<String>,
        sitemaps: Vec<String>,
    },
    /// Not fetched or not a sitemap: a stable reason code and a message.
    Failed { code: String, message: String },
}

/// How a fetched sitemap changed the frontier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SitemapApplied {
    /// `<loc>`s read (pages or child sitemaps).
    pub found: u32,
    /// New pages queued (in scope, never seen, within the request's page budget).
    pub queued: u32,
    /// Child sitemaps queued.
    pub sitemaps_queued: u32,
}

/// Queues a sitemap of request `request_id` unless it is already known. Returns whether it was new.
pub(crate) fn queue_sitemap(
    conn: &Connection,
    request_id: i64,
    url: &str,
    depth: i64,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let added = conn
        .exec_cached(
            "INSERT OR IGNORE INTO sitemaps(request_id, url, depth, added_at_ms)
             VALUES (?1, ?2, ?3, ?4)",
            params![request_id, url, depth, now_ms],
        )
        .op("queue_sitemap")?;
    Ok(added > 0)
}

/// A sitemap of a crawl request and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SitemapStatus {
    pub url: String,
    pub depth: i64,
    /// `queued`, `done` or `failed`.
    pub state: String,
    pub urls_found: u32,
    pub urls_queued: u32,
    /// For `failed`: reason code and message.
    pub error: Option<String>,
}

impl Store {
    /// The sitemaps of crawl request `request_id`, in the order they were queued.
    pub fn sitemap_status(&self, request_id: i64) -> Result<Vec<SitemapStatus>, StoreError> {
        let conn = self.writer()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT url, depth, state, urls_found, urls_queued, error FROM sitemaps
                 WHERE request_id = ?1 ORDER BY added_at_ms, depth, url",
            )
            .op("sitemap_status")?;
        let rows = stmt
            .query_map(params![request_id], |r| {
                Ok(SitemapStatus {
                    url: r.get(0)?,
                    depth: r.get(1)?,
                    state: r.get(2)?,
                    urls_found: r.get(3)?,
                    urls_queued: r.get(4)?,
                    error: r.get(5)?,
                })
            })
            .op("sitemap_status")?;
        rows.collect::<Result<Vec<_>, _>>().op("sitemap_status")
    }

    /// Sitemaps waiting to be fetched, oldest first.
    pub fn pending_sitemaps(&self, max: usize) -> Result<Vec<SitemapJob>, StoreError> {
        let conn = self.writer()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT request_id, url, depth FROM sitemaps
                 WHERE state = 'queued' ORDER BY added_at_ms, request_id, url LIMIT ?1",
            )
            .op("pending_sitemaps")?;
        let rows = stmt
            .query_map(params![i64::try_from(max).unwrap_or(i64::MAX)], |r| {
                Ok(SitemapJob {
                    request_id: r.get(0)?,
                    url: r.get(1)?,
                    depth: r.get(2)?,
                })
            })
            .op("pending_sitemaps")?;
        rows.collect::<Result<Vec<_>, _>>().op("pending_sitemaps")
    }

    /// Records what fetching `job` gave: its pages join the frontier (in the request's scope,
    /// within its page budget, at depth 0 so their outlinks are followed as for seeds), its
    /// child sitemaps join the sitemap queue, and the sitemap is marked done or failed. One
    /// transaction.
    pub fn sitemap_fetched(
        &self,
        job: &SitemapJob,
        outcome: &SitemapOutcome,
        now_ms: i64,
    ) -> Result<SitemapApplied, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction().op("sitemap_fetched")?;
        let mut applied = SitemapApplied::default();
        match outcome {
            SitemapOutcome::Failed { code, message } => {
                tx.exec_cached(
                    "UPDATE sitemaps SET state = 'failed', fetched_at_ms = ?3, error = ?4
                     WHERE request_id = ?1 AND url = ?2",
                    params![
                        job.request_id,
                        job.url,
                        now_ms,
                        format!("{code}: {message}")
                    ],
                )
                .op("sitemap_fetched")?;
            }
            SitemapOutcome::Parsed { pages, sitemaps } => {
                let mut scope = RequestScope::load(&tx, job.request_id)?.ok_or_else(|| {
                    StoreError::NotFound {
                        what: format!("crawl request {}", job.request_id),
                    }
                })?;
                applied.found = u32::try_from(pages.len() + sitemaps.len()).unwrap_or(u32::MAX);
                for page in pages {
                    if scope.full() {
                        break;
                    }
                    if scope.offer_listed(&tx, page, 0, now_ms)? {
                        applied.queued += 1;
                    }
                }
                if job.depth < MAX_SITEMAP_DEPTH {
                    for child in sitemaps.iter().take(MAX_CHILD_SITEMAPS) {
                        if let Ok(n) = normalize(child)
                            && scope.contains(&n.domain)?
                            && queue_sitemap(&tx, job.request_id, &n.url, job.depth + 1, now_ms)?
                        {
                            applied.sitemaps_queued += 1;
                        }
                    }
                }
                scope.save(&tx)?;
                tx.exec_cached(
                    "UPDATE sitemaps SET state = 'done', fetched_at_ms = ?3, urls_found = ?4,
                                         urls_queued = ?5, error = NULL
                     WHERE request_id = ?1 AND url = ?2",
                    params![
                        job.request_id,
                        job.url,
                        now_ms,
                        applied.found,
                        applied.queued
                    ],
                )
                .op("sitemap_fetched")?;
            }
        }
        tx.commit().op("sitemap_fetched")?;
        Ok(applied)
    }
}
