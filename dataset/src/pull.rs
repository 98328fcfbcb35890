//! Resumable HTTP download of a dataset (feature `pull`): fetch and check the signed manifest,
//! then every file with `Range` requests that resume interrupted transfers, checking each file's
//! size and blake3 digest before it takes its final name.
//!
//! Server layout (what the validator serves): `{base}/manifest.json` and `{base}/files/{path}`,
//! where `base` is e.g. `https://validator.example/v1/datasets/{name}`.

use std::collections::HashMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use gleaner_protocol::PublicKey;
use gleaner_protocol::api::{PATH_REVOCATIONS, Revocation};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_RANGE, IF_RANGE, RANGE};

use crate::manifest::{MAX_MANIFEST_BYTES, digest_file, safe_join};
use crate::{DatasetError, FileEntry, MANIFEST_FILE, Manifest, RowRef};

/// Attempts per file before giving up: enough to ride out a flaky link or a restarting server.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// First retry delay; doubled per attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest delay between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Connecting must succeed within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A stalled transfer (no bytes for this long) is abandoned and resumed.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Suffix of a file being downloaded.
pub const PARTIAL_SUFFIX: &str = ".part";

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Sent as `Authorization: Bearer …` when the validator requires lab API keys.
    pub api_key: Option<String>,
    pub max_attempts: u32,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            api_key: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            progress: true,
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullReport {
    pub manifest: Manifest,
    pub dir: PathBuf,
    /// Bytes received in this run.
    pub bytes_downloaded: u64,
    /// Files already complete and correct, not downloaded again.
    pub files_skipped: usize,
    /// Requests that resumed a partial file with a `Range` header.
    pub resumed_requests: usize,
}

/// The base URL of a dataset from what the user typed (the dataset URL, with or without a
/// trailing slash or `/manifest.json`).
pub fn dataset_base(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    url.strip_suffix(MANIFEST_FILE)
        .map(|u| u.trim_end_matches('/'))
        .unwrap_or(url)
        .to_string()
}

/// The base URL of the validator serving the dataset at `url` (`{base}/v1/datasets/{name}`), if
/// the URL has that shape.
pub fn validator_base(url: &str) -> Option<&str> {
    let url = url.trim();
    url.find("/v1/datasets/").map(|at| &url[..at])
}

/// Downloads the dataset at `url` into `out`, resuming partial files, and checks the manifest's
/// signature and every file's digest. Verifying rows is [`crate::verify_dir`]'s job.
pub async fn pull(url: &str, out: &Path, opts: &PullOptions) -> Result<PullReport, DatasetError> {
    let client = http_client(url)?;
    let base = dataset_base(url);
    let manifest_bytes = fetch_manifest(&client, &base, opts).await?;
    let manifest = Manifest::from_json(&manifest_bytes)?;
    manifest.verify_signature()?;
    tracing::info!(dataset = %manifest.name, validator = %manifest.validator, rows = manifest.rows, "pulling dataset");

    std::fs::create_dir_all(out).map_err(|e| DatasetError::io(out, e))?;
    let total: u64 = manifest.files().map(|f| f.bytes).sum();
    let bar = if opts.progress {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut report = PullReport {
        manifest: manifest.clone(),
        dir: out.to_path_buf(),
        bytes_downloaded: 0,
        files_skipped: 0,
        resumed_requests: 0,
    };
    for entry in manifest.files() {
        bar.set_message(entry.path.clone());
        let dest = safe_join(out, &entry.path)?;
        if let Ok((digest, bytes)) = digest_file(&dest)
            && digest == entry.blake3
            && bytes == entry.bytes
        {
            bar.inc(entry.bytes);
            report.files_skipped += 1;
            continue;
        }
        pull_file(&client, &base, entry, &dest, opts, &bar, &mut report).await?;
    }
    bar.finish_and_clear();
    // The manifest goes last: its presence means every file arrived and matched.
    let path = out.join(MANIFEST_FILE);
    std::fs::write(&path, &manifest_bytes).map_err(|e| DatasetError::io(&path, e))?;
    Ok(report)
}

/// Revocations asked for in one page (the validator's largest page).
const REVOCATION_PAGE: usize = 1_000;
/// Most pages of revocations read from one validator (ten million revocations): a bound on what
/// a validator can make a lab read.
pub const MAX_REVOCATION_PAGES: u64 = 10_000;
/// Largest page of revocations read (a thousand are ~250 KB).
const MAX_REVOCATION_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// What [`revoked_rows`] found.
#[derive(Debug, Clone)]
pub struct RevokedRows {
    /// Revocations the validator lists, whichever dataset they touch.
    pub listed: u64,
    /// The dataset's rows among them, each with its revocation, in the validator's order.
    pub rows: Vec<(RowRef, Revocation)>,
}

/// Pages through the revocations of the validator at `validator` (its base URL) and keeps those
/// that name a row of `rows` ([`crate::dataset_rows`]). Every entry must be signed by `key`, the
/// validator that signed the dataset's manifest. A validator whose pages do not follow each
/// other (a `seq` not above the one before) or do not end is refused.
pub async fn revoked_rows(
    validator: &str,
    key: &PublicKey,
    rows: &HashMap<String, RowRef>,
    opts: &PullOptions,
) -> Result<RevokedRows, DatasetError> {
    let base = validator.trim().trim_end_matches('/');
    let http = |url: &str, why: String| DatasetError::Http {
        url: url.to_string(),
        why,
    };
    let client = http_client(base)?;
    let mut found = RevokedRows {
        listed: 0,
        rows: Vec::new(),
    };
    let mut after = 0u64;
    for _ in 0..MAX_REVOCATION_PAGES {
        let url = format!("{base}{PATH_REVOCATIONS}?after={after}&limit={REVOCATION_PAGE}");
        let body = get_body(
            &client,
            &url,
            opts,
            MAX_REVOCATION_PAGE_BYTES,
            "page of revocations",
        )
        .await?;
        let page: Vec<Revocation> = serde_json::from_slice(&body)
            .map_err(|e| http(&url, format!("not revocations: {e}")))?;
        for r in &page {
            if r.seq <= after {
                return Err(http(
                    &url,
                    format!("revocation {} listed after {after}: out of order", r.seq),
                ));
            }
            let foreign = |why: String| DatasetError::BadRevocation {
                url: url.clone(),
                seq: r.seq,
                why,
            };
            if r.validator != *key {
                return Err(foreign(format!("signed by {}, not {key}", r.validator)));
            }
            r.verify().map_err(|e| foreign(e.to_string()))?;
            after = r.seq;
        }
        found.listed += page.len() as u64;
        for r in &page {
            if let Some(row) = rows.get(&r.record_id.to_string()) {
                found.rows.push((row.clone(), r.clone()));
            }
        }
        if page.len() < REVOCATION_PAGE {
            return Ok(found);
        }
    }
    Err(http(
        base,
        format!("more than {MAX_REVOCATION_PAGES} pages of revocations"),
    ))
}

fn get(client: &reqwest::Client, url: &str, opts: &PullOptions) -> reqwest::RequestBuilder {
    let req = client.get(url);
    match &opts.api_key {
        Some(key) => req.header(AUTHORIZATION, format!("Bearer {key}")),
        None => req,
    }
}

async fn fetch_manifest(
    client: &reqwest::Client,
    base: &str,
    opts: &PullOptions,
) -> Result<Vec<u8>, DatasetError> {
    let url = format!("{base}/{MANIFEST_FILE}");
    let max = usize::try_from(MAX_MANIFEST_BYTES).unwrap_or(usize::MAX);
    get_body(client, &url, opts, max, "manifest").await
}

/// The HTTP client of pulls and revocation checks. reqwest is built without a bundled crypto
/// provider; this uses ring (already installed is fine).
fn http_client(url: &str) -> Result<reqwest::Client, DatasetError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .user_agent(concat!("gleaner-dataset/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DatasetError::Http {
            url: url.to_string(),
            why: e.to_string(),
        })
}

/// GETs `url` whole, at most `max` bytes of it (`what` names it in the error); any status but
/// a success is an error that quotes the start of the answer.
async fn get_body(
    client: &reqwest::Client,
    url: &str,
    opts: &PullOptions,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, DatasetError> {
    let http = |why: String| DatasetError::Http {
        url: url.to_string(),
        why,
    };
    let mut resp = get(client, url, opts)
        .send()
        .await
        .map_err(|e| http(e.to_string()))?;
    let status = resp.status();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| http(e.to_string()))? {
        if body.len() + chunk.len() > max {
            return Err(http(format!("{what} larger than {max} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let detail: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        return Err(http(format!("status {status}: {detail}")));
    }
    Ok(body)
}

fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(PARTIAL_SUFFIX);
    PathBuf::from(name)
}

/// Downloads one file into `dest.part`, resuming from its current length, then checks and renames.
async fn pull_file(
    client: &reqwest::Client,
    base: &str,
    entry: &FileEntry,
    dest: &Path,
    opts: &PullOptions,
    bar: &ProgressBar,
    report: &mut PullReport,
) -> Result<(), DatasetError> {
    let url = format!("{base}/files/{}", entry.path);
    let part = partial_path(dest);
    if let Some(parent) = part.parent() {
        std::fs::create_dir_all(parent).map_err(|e| DatasetError::io(parent, e))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(false)
        .write(true)
        .truncate(false)
        .open(&part)
        .map_err(|e| DatasetError::io(&part, e))?;
    let mut offset = file
        .seek(SeekFrom::End(0))
        .map_err(|e| DatasetError::io(&part, e))?;
    if offset > entry.bytes {
        offset = restart(&mut file, &part)?;
    }
    bar.inc(offset);
    let mut attempt = 0u32;
    let mut last_error = String::new();
    while offset < entry.bytes {
        if attempt >= opts.max_attempts {
            return Err(DatasetError::Http {
                url,
                why: format!("gave up after {attempt} attempts: {last_error}"),
            });
        }
        if attempt > 0 {
            let backoff = FIRST_BACKOFF
                .saturating_mul(1 << attempt.min(16))
                .min(MAX_BACKOFF);
            tracing::debug!(file = %entry.path, offset, attempt, cause = %last_error, "retrying");
            tokio::time::sleep(backoff).await;
        }
        attempt += 1;
        match transfer(
            client, &url, entry, &mut file, &part, offset, opts, bar, report,
        )
        .await
        {
            Ok(o) => offset = o,
            Err(TransferError::Fatal(e)) => return Err(e),
            Err(TransferError::Retry { offset: o, why }) => {
                offset = o;
                last_error = why;
            }
        }
    }
    file.flush().map_err(|e| DatasetError::io(&part, e))?;
    drop(file);
    let (digest, bytes) = digest_file(&part)?;
    if digest != entry.blake3 || bytes != entry.bytes {
        // A corrupt download must not be resumed from: start over next time.
        let _ = std::fs::remove_file(&part);
        return Err(DatasetError::DownloadMismatch {
            path: entry.path.clone(),
            why: format!(
                "got {bytes} bytes with blake3 {digest}, manifest says {} bytes with blake3 {}",
                entry.bytes, entry.blake3
            ),
        });
    }
    std::fs::rename(&part, dest).map_err(|e| DatasetError::io(dest, e))
}

fn restart(file: &mut std::fs::File, part: &Path) -> Result<u64, DatasetError> {
    file.set_len(0).map_err(|e| DatasetError::io(part, e))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| DatasetError::io(part, e))
}

enum TransferError {
    /// Worth retrying (connection cut, timeout, 5xx); `offset` is how far the file got.
    Retry {
        offset: u64,
        why: String,
    },
    Fatal(DatasetError),
}

/// One request: from `offset` (a `Range` request when > 0) to the end or until the connection
/// breaks. Returns the new length of the partial file.
#[allow(clippy::too_many_arguments)]
async fn transfer(
    client: &reqwest::Client,
    url: &str,
    entry: &FileEntry,
    file: &mut std::fs::File,
    part: &Path,
    mut offset: u64,
    opts: &PullOptions,
    bar: &ProgressBar,
    report: &mut PullReport,
) -> Result<u64, TransferError> {
    let fatal = |why: String| {
        TransferError::Fatal(DatasetError::Http {
            url: url.to_string(),
            why,
        })
    };
    let mut req = get(client, url, opts);
    let resumed = offset > 0;
    if resumed {
        // If-Range: the server only honours the range if the file is still the one we started.
        req = req
            .header(RANGE, format!("bytes={offset}-"))
            .header(IF_RANGE, format!("\"{}\"", entry.blake3));
    }
    let mut resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            return Err(TransferError::Retry {
                offset,
                why: e.to_string(),
            });
        }
    };
    let status = resp.status();
    match status {
        StatusCode::PARTIAL_CONTENT if resumed => {
            let expected = format!("bytes {offset}-");
            let ok = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with(&expected));
            if !ok {
                return Err(fatal(format!(
                    "206 without a Content-Range starting at {offset}"
                )));
            }
        }
        StatusCode::OK => {
            if offset > 0 {
                // The server ignored the range (or the file changed): start over.
                bar.set_position(bar.position().saturating_sub(offset));
                offset = restart(file, part).map_err(TransferError::Fatal)?;
            }
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            bar.set_position(bar.position().saturating_sub(offset));
            offset = restart(file, part).map_err(TransferError::Fatal)?;
            return Err(TransferError::Retry {
                offset,
                why: "range not satisfiable".into(),
            });
        }
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            return Err(TransferError::Retry {
                offset,
                why: format!("status {s}"),
            });
        }
        s => return Err(fatal(format!("status {s}"))),
    }
    if status == StatusCode::PARTIAL_CONTENT {
        report.resumed_requests += 1;
    }
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if offset + chunk.len() as u64 > entry.bytes {
                    let _ = restart(file, part);
                    return Err(TransferError::Fatal(DatasetError::DownloadMismatch {
                        path: entry.path.clone(),
                        why: format!("server sent more than the {} bytes listed", entry.bytes),
                    }));
                }
                file.write_all(&chunk)
                    .map_err(|e| TransferError::Fatal(DatasetError::io(part, e)))?;
                offset += chunk.len() as u64;
                report.bytes_downloaded += chunk.len() as u64;
                bar.inc(chunk.len() as u64);
            }
            Ok(None) => {
                if offset < entry.bytes {
                    return Err(TransferError::Retry {
                        offset,
                        why: "connection closed early".into(),
                    });
                }
                return Ok(offset);
            }
            Err(e) => {
                return Err(TransferError::Retry {
                    offset,
                    why: e.to_string(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        for u in [
            "http://h/v1/datasets/x",
            "http://h/v1/datasets/x/",
            "http://h/v1/datasets/x/manifest.json",
        ] {
            assert_eq!(dataset_base(u), "http://h/v1/datasets/x");
            assert_eq!(validator_base(u), Some("http://h"));
        }
        assert_eq!(validator_base("http://h/datasets/x"), None);
    }
}
