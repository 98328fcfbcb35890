//! Helpers for tests and benchmarks (of this crate and others): natural-looking unique texts that
//! pass the quality rules, and records answering a job. Not used by the service itself.

use gleaner_protocol::api::Job;
use gleaner_protocol::{Batch, Digest, PublicKey, Record, RecordDraft, RobotsVerdict, SecretKey};

use crate::Identity;
use crate::ingest::prepare;
use crate::store::{
    CrawlRequest, IngestError, IngestOutcome, IngestParams, LeaseParams, Store, StoreError,
    push_task,
};

/// Registers `node` (paying itself) and leases it one job on each of `pages` sites
/// (`http://site{i}.example/`, one page each, no politeness delay), as a node does before
/// submitting records.
pub fn leased_jobs(
    store: &Store,
    node: &SecretKey,
    pages: usize,
    now_ms: i64,
) -> Result<Vec<Job>, StoreError> {
    leased_jobs_on(store, node, "site", pages, now_ms)
}

/// [`leased_jobs`] on the sites `http://{site}{i}.example/`: another `site` gives new URLs, for
/// leasing again from a store that has seen the others.
pub fn leased_jobs_on(
    store: &Store,
    node: &SecretKey,
    site: &str,
    pages: usize,
    now_ms: i64,
) -> Result<Vec<Job>, StoreError> {
    leased_jobs_at_depth(store, node, site, pages, 0, now_ms)
}

/// [`leased_jobs_on`] from crawl requests that follow links `max_depth` levels below their
/// seeds (within the seeds' registered domains), with room in their page budget for as many
/// again: the records' outlinks are then considered for the frontier.
pub fn leased_jobs_at_depth(
    store: &Store,
    node: &SecretKey,
    site: &str,
    pages: usize,
    max_depth: u32,
    now_ms: i64,
) -> Result<Vec<Job>, StoreError> {
    store.register_node(&node.public(), &node.public(), "test", now_ms)?;
    // A crawl request takes at most 10,000 seeds: larger runs add several.
    let all: Vec<usize> = (0..pages).collect();
    for part in all.chunks(10_000) {
        let request = CrawlRequest {
            seeds: part
                .iter()
                .map(|i| format!("http://{site}{i}.example/"))
                .collect(),
            domains: Vec::new(),
            sitemaps: Vec::new(),
            max_pages: u32::try_from(part.len() * if max_depth > 0 { 2 } else { 1 })
                .unwrap_or(u32::MAX),
            max_depth,
        };
        store.add_crawl_request("test", &request, now_ms)?;
    }
    let params = lease_params(u32::try_from(pages).unwrap_or(u32::MAX));
    // One lease call hands out at most `store::jobs::MAX_JOBS_PER_LEASE` jobs.
    let mut jobs = Vec::with_capacity(pages);
    while jobs.len() < pages {
        let want = u32::try_from(pages - jobs.len()).unwrap_or(u32::MAX);
        let got = store.lease(&node.public(), want, now_ms, &params)?.jobs;
        if got.is_empty() {
            break;
        }
        jobs.extend(got);
    }
    Ok(jobs)
}

/// Lease settings for tests: hour-long leases, one per domain, no rest between a domain's
/// fetches, at most `max_open_per_node` open per node, no validator fetches, no network.
pub fn lease_params(max_open_per_node: u32) -> LeaseParams {
    LeaseParams {
        ttl_ms: 3_600_000,
        max_per_domain: 1,
        domain_delay_ms: 0,
        max_open_per_node,
        validator_fetches: false,
        network: None,
        judging: crate::store::JudgingRules::DEFAULT,
    }
}

const WORDS: [&str; 96] = [
    "river",
    "valley",
    "people",
    "settled",
    "farmers",
    "learned",
    "seasons",
    "houses",
    "higher",
    "ground",
    "merchants",
    "arrived",
    "tools",
    "ideas",
    "changed",
    "economy",
    "markets",
    "banks",
    "bridges",
    "villages",
    "separated",
    "generations",
    "orchards",
    "quiet",
    "roads",
    "visitors",
    "walk",
    "paths",
    "traditions",
    "shaped",
    "region",
    "winter",
    "summer",
    "harvest",
    "stone",
    "timber",
    "mill",
    "church",
    "school",
    "teacher",
    "children",
    "letters",
    "records",
    "archive",
    "museum",
    "council",
    "mayor",
    "election",
    "railway",
    "station",
    "factory",
    "workers",
    "wages",
    "union",
    "strike",
    "newspaper",
    "editor",
    "printed",
    "stories",
    "journey",
    "mountain",
    "forest",
    "hunters",
    "fishermen",
    "boats",
    "harbor",
    "storm",
    "damage",
    "repair",
    "builders",
    "family",
    "daughter",
    "brother",
    "market",
    "bread",
    "cheese",
    "wine",
    "festival",
    "music",
    "dance",
    "garden",
    "flowers",
    "apples",
    "pears",
    "honey",
    "bees",
    "cattle",
    "sheep",
    "wool",
    "weavers",
    "cloth",
    "trade",
    "silver",
    "coins",
    "ledger",
    "clerk",
];
const GLUE: [&str; 12] = [
    "the", "of", "and", "to", "with", "that", "in", "for", "on", "by", "from", "near",
];

fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A unique English-looking text of about `bytes` bytes for `seed`: paragraphs of sentences
/// separated by blank lines, passing the Gopher, C4 and FineWeb rules. Different seeds give texts
/// that are not near-duplicates of each other.
pub fn sample_text(seed: u64, bytes: usize) -> String {
    let mut s = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed;
    let mut out = String::with_capacity(bytes + 200);
    while out.len() < bytes {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        let sentences = 3 + next(&mut s) % 3;
        for k in 0..sentences {
            if k > 0 {
                out.push(' ');
            }
            let n = 8 + next(&mut s) % 8;
            for i in 0..n {
                let w = if i % 3 == 1 {
                    GLUE[(next(&mut s) % GLUE.len() as u64) as usize]
                } else {
                    WORDS[(next(&mut s) % WORDS.len() as u64) as usize]
                };
                if i == 0 {
                    let mut c = w.chars();
                    if let Some(f) = c.next() {
                        out.extend(f.to_uppercase());
                        out.push_str(c.as_str());
                    }
                } else {
                    out.push(' ');
                    out.push_str(w);
                }
            }
            out.push('.');
        }
    }
    out
}

/// A signed record answering `job` with `text`, fetched at `fetched_at_ms`.
pub fn record_for(key: &SecretKey, job: &Job, text: String, fetched_at_ms: i64) -> Record {
    record_with_outlinks(key, job, text, Vec::new(), fetched_at_ms)
}

/// [`record_for`] with the page's outlinks, as a node's cleaner lists them.
pub fn record_with_outlinks(
    key: &SecretKey,
    job: &Job,
    text: String,
    outlinks: Vec<String>,
    fetched_at_ms: i64,
) -> Record {
    RecordDraft {
        lease_id: job.lease_id.clone(),
        url: job.url.clone(),
        final_url: job.url.clone(),
        fetched_at_ms,
        status: 200,
        content_type: "text/html".into(),
        charset: "utf-8".into(),
        wire_bytes: text.len() as u64 * 2,
        body_bytes: text.len() as u64 * 3,
        truncated: false,
        raw_digest: Digest::of(text.as_bytes()),
        title: "A page".into(),
        text,
        lang: "en".into(),
        robots: RobotsVerdict::Allowed,
        crawl_delay_ms: 0,
        outlinks,
    }
    .sign(key)
}

/// Submits `records` as one batch of `node` at `now_ms`, as the server does: verified and
/// prepared, then stored and receipted (signed by `validator`), without cross-check sampling.
pub fn ingest_batch(
    store: &Store,
    node: &SecretKey,
    validator: &SecretKey,
    records: Vec<Record>,
    now_ms: i64,
) -> Result<IngestOutcome, IngestError> {
    let batch = Batch::new(node, now_ms, records);
    let (batch_id, prepared) = prepare(&batch, &node.public(), now_ms, &[])?;
    let params = IngestParams {
        cross_check_rate: 0.0,
        new_node_cross_check_rate: 0.0,
        audit_rate: 0.0,
        domain_delay_ms: 0,
        validator_tiebreaks: false,
        sample_key: [0; 32],
    };
    store.ingest(
        batch_id,
        &node.public(),
        &prepared,
        now_ms,
        validator,
        &params,
    )
}

/// Queues `n` check jobs on `domain` (for `http://{domain}/check/{i}`) that `primary` may not
/// take, as ingest queues the checks of a node's pages for other nodes. For the lease bench: a
/// large backlog without ingesting its pages first. The tasks name crawl request 1, which must
/// exist.
pub fn queue_checks_excluding(
    store: &Store,
    domain: &str,
    n: usize,
    primary: &PublicKey,
    now_ms: i64,
) -> Result<(), StoreError> {
    let excluded = primary.to_string();
    queue_checks(store, domain, n, |_| excluded.clone(), now_ms)
}

/// Queues `n` check jobs on `domain` as [`queue_checks_excluding`] does, job `i` with the
/// exclusion list `excluded(i)` (space-separated node keys, payout keys and `net:` tokens).
pub fn queue_checks(
    store: &Store,
    domain: &str,
    n: usize,
    excluded: impl Fn(usize) -> String,
    now_ms: i64,
) -> Result<(), StoreError> {
    use crate::store::Op;
    let conn = store.writer()?;
    // Rolled back when dropped unless committed: an error leaves nothing half queued.
    let tx = conn.unchecked_transaction().op("queue_checks")?;
    for i in 0..n {
        let url = format!("http://{domain}/check/{i}");
        let check_id = i64::try_from(i).unwrap_or(i64::MAX);
        push_task(
            &tx,
            &url,
            domain,
            1,
            0,
            "check",
            Some(check_id),
            &excluded(i),
            now_ms,
        )?;
    }
    tx.commit().op("queue_checks")
}

/// Start of the records [`fill_store`] makes, Unix milliseconds (2026-01-01).
pub const FILL_T0: i64 = 1_767_225_600_000;

/// Fills a validator data directory as real use does: a node registers and leases `jobs` jobs,
/// then submits records of ~2 kB answering them in batches of 10 through the real checks and
/// store; epoch 1 is closed after the first batch, so the records span epochs 1 and 2. Returns
/// the validator's identity and how many records were accepted.
pub fn fill_store(data: &std::path::Path, jobs: usize) -> anyhow::Result<(Identity, usize)> {
    let identity = Identity::load_or_create(data)?;
    let store = Store::open(data)?;
    let node = SecretKey::from_bytes(&[7; 32]);
    let jobs = leased_jobs(&store, &node, jobs, FILL_T0)?;
    let key = identity.secret();
    submit_sample_texts(&store, &node, key, &jobs, 10, FILL_T0 + 1_000, |n, now| {
        if n == 0 {
            store.close_epoch(key, now + 1)?;
        }
        Ok(())
    })?;
    let accepted = usize::try_from(store.accepted_count()?)?;
    Ok((identity, accepted))
}

/// Answers each of `jobs` with a record of ~2 kB of [`sample_text`] fetched at `fetched_at_ms`
/// (job `k`'s text from seed `k`), submitted by `node` `per_batch` to a batch through the real
/// checks and store (batch `n` at `fetched_at_ms + 1_000 + n`, receipted by `validator`).
/// `after(n, now_ms)` runs once batch `n` is stored; its error stops the submissions.
pub fn submit_sample_texts(
    store: &Store,
    node: &SecretKey,
    validator: &SecretKey,
    jobs: &[Job],
    per_batch: usize,
    fetched_at_ms: i64,
    mut after: impl FnMut(usize, i64) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for (n, chunk) in jobs.chunks(per_batch).enumerate() {
        let records = chunk
            .iter()
            .enumerate()
            .map(|(i, job)| {
                let text = sample_text((n * per_batch + i) as u64, 2_000);
                record_for(node, job, text, fetched_at_ms)
            })
            .collect();
        let now = fetched_at_ms + 1_000 + n as i64;
        ingest_batch(store, node, validator, records, now)?;
        after(n, now)?;
    }
    Ok(())
}

/// Every file under `dir`, by its path inside `dir`, with its bytes, sorted by path: two trees
/// are the same files when these are equal.
pub fn files_under(dir: &std::path::Path) -> std::io::Result<Vec<(std::path::PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path)?;
                let inside = path.strip_prefix(dir).map_err(std::io::Error::other)?;
                out.push((inside.to_path_buf(), bytes));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leased_jobs_leases_every_page_not_just_one_lease_call() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // More than two lease calls' worth (one call hands out at most 64 jobs).
        let pages = 133;
        let jobs = leased_jobs(&store, &SecretKey::from_bytes(&[7; 32]), pages, 1_000).unwrap();
        assert_eq!(jobs.len(), pages);
        let mut urls: Vec<&str> = jobs.iter().map(|j| j.url.as_str()).collect();
        urls.sort_unstable();
        urls.dedup();
        assert_eq!(urls.len(), pages, "one job per site");
    }
}
