//! Datasets on the validator: export accepted records with [`gleaner_dataset`] (command
//! `gleaner-validator dataset export` and an optional timer), and serve them to labs:
//! `GET /v1/datasets`, `/v1/datasets/{name}/manifest.json` and `/v1/datasets/{name}/files/{path}`
//! with range requests, strong ETags (the file's blake3 from the signed manifest) and content
//! types. When `lab_tokens` are configured, dataset routes require `Authorization: Bearer TOKEN`.
//!
//! **Architecture invariant:** only files listed in a dataset's manifest (and the manifest) are
//! ever served; paths are never joined from the request without that check.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gleaner_dataset::{
    DatasetError, ExportConfig, ExportInput, ExportRow, ExportSummary, ExportWriter, MANIFEST_FILE,
    Manifest, list_datasets, safe_join,
};
use gleaner_protocol::{Digest, Receipt, SecretKey};
use serde::Serialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::server::{ApiError, AppState};
use crate::store::{Store, StoreError};

/// Directory under the data directory where datasets are written and served from.
pub const DATASETS_DIR: &str = "datasets";
/// Name of the dataset the export timer rewrites (every accepted record so far).
pub const LATEST_DATASET: &str = "gleaner-latest";
/// Environment variable: export [`LATEST_DATASET`] every this many seconds (0 or unset: never).
pub const EXPORT_INTERVAL_ENV: &str = "GLEANER_DATASET_EXPORT_SECS";
/// Most records handed to the dataset writer at once by [`export_from_store_with`].
pub const EXPORT_PIECE_ROWS: usize = 8_192;
/// Most text bytes handed to the dataset writer at once by [`export_from_store_with`].
pub const EXPORT_PIECE_TEXT_BYTES: usize = 64 * 1024 * 1024;
/// Longest dataset name accepted in a URL.
const MAX_NAME_BYTES: usize = 128;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading accepted records: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("no accepted records to export{}", .since.map(|e| format!(" since epoch {e}")).unwrap_or_default())]
    NothingToExport { since: Option<u64> },
    #[error("invalid dataset name {0:?}: use letters, digits, '.', '_' and '-'")]
    BadName(String),
}

impl ExportError {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            ExportError::Store(e) => e.code(),
            ExportError::Dataset(e) => e.code(),
            ExportError::NothingToExport { .. } => "nothing_to_export",
            ExportError::BadName(_) => "bad_dataset_name",
        }
    }
}

/// Where datasets live for a data directory.
pub fn datasets_root(data_dir: &Path) -> PathBuf {
    data_dir.join(DATASETS_DIR)
}

/// A dataset name is one plain path segment: `[A-Za-z0-9._-]+`, not starting with a dot.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Exports accepted records with `epoch >= since` into `root/name` (default name
/// `gleaner-eFROM-eTO`), signed with the validator's key.
pub fn export_from_store(
    store: &Store,
    key: &SecretKey,
    root: &Path,
    since: Option<u64>,
    name: Option<&str>,
) -> Result<ExportSummary, ExportError> {
    export_from_store_with(store, key, root, since, name, false)
}

/// [`export_from_store`], optionally also writing JSON Lines + zstd copies of the shards.
///
/// Records stream from the store into a [`gleaner_dataset::ExportWriter`] in pieces of at most
/// [`EXPORT_PIECE_ROWS`] rows or [`EXPORT_PIECE_TEXT_BYTES`] of text, so the export's memory does
/// not grow with the history: one piece of records, a row group, and per record kept its id and
/// text digest, plus the receipts of the batches (see `validator/README.md`).
pub fn export_from_store_with(
    store: &Store,
    key: &SecretKey,
    root: &Path,
    since: Option<u64>,
    name: Option<&str>,
    jsonl: bool,
) -> Result<ExportSummary, ExportError> {
    export_in_pieces(store, key, root, since, name, jsonl, EXPORT_PIECE_ROWS)
}

/// [`export_from_store_with`] with pieces of at most `piece_rows` records.
fn export_in_pieces(
    store: &Store,
    key: &SecretKey,
    root: &Path,
    since: Option<u64>,
    name: Option<&str>,
    jsonl: bool,
    piece_rows: usize,
) -> Result<ExportSummary, ExportError> {
    let Some((from, to)) = store.accepted_epochs(since)? else {
        return Err(ExportError::NothingToExport { since });
    };
    let name = match name {
        Some(n) => n.to_string(),
        None => format!("gleaner-e{from:06}-e{to:06}"),
    };
    if !valid_name(&name) {
        return Err(ExportError::BadName(name));
    }
    let config = ExportConfig {
        jsonl,
        ..ExportConfig::new(root.join(&name))
    };
    let mut writer = ExportWriter::create(key, config)?;
    let mut piece = ExportInput::default();
    let mut piece_text = 0usize;
    // Batches whose receipt the writer already has.
    let mut given: HashSet<Digest> = HashSet::new();
    // The rows that came without a token count, by record id: the writer counts them, and the
    // counts go back to the store so that the next export writes them as given.
    let mut uncounted: HashMap<Digest, i64> = HashMap::new();
    // Only the epochs counted above, so the name matches the rows even if an epoch opens
    // meanwhile.
    store.for_each_accepted_in(from..=to, |a| -> Result<(), ExportError> {
        if given.insert(a.batch_id) {
            piece.receipts.push(Receipt::clone(&a.receipt));
        }
        if a.token_count.is_none() {
            uncounted.insert(a.record.id(), a.seq);
        }
        piece_text += a.record.text.len();
        piece.rows.push(ExportRow {
            record: a.record,
            batch_id: a.batch_id,
            epoch: a.epoch,
            accepted_at_ms: a.accepted_at_ms,
            quality: a.quality,
            minhash_cluster_size: a.minhash_cluster_size,
            token_count: a.token_count,
        });
        if piece.rows.len() >= piece_rows || piece_text >= EXPORT_PIECE_TEXT_BYTES {
            writer.add(std::mem::take(&mut piece))?;
            piece_text = 0;
            keep_token_counts(store, &mut uncounted, writer.take_counted());
        }
        Ok(())
    })?;
    writer.add(piece)?;
    let mut summary = writer.finish()?;
    keep_token_counts(store, &mut uncounted, std::mem::take(&mut summary.counted));
    Ok(summary)
}

/// Stores the token counts the export made (by record id) on the rows they belong to
/// (`uncounted`). Counting again later costs time, never correctness, so a store opened read-only
/// or a failed write leaves the export as it is.
fn keep_token_counts(
    store: &Store,
    uncounted: &mut HashMap<Digest, i64>,
    counted: Vec<(Digest, u64)>,
) {
    let counts: Vec<(i64, u64)> = counted
        .into_iter()
        .filter_map(|(id, n)| Some((uncounted.remove(&id)?, n)))
        .collect();
    match store.set_token_counts(&counts) {
        Ok(_) | Err(StoreError::ReadOnly) => {}
        Err(e) => {
            tracing::warn!(error = %e, "token counts not stored; the next export counts again")
        }
    }
}

/// Re-exports [`LATEST_DATASET`] every `GLEANER_DATASET_EXPORT_SECS` seconds when set, skipping
/// ticks where nothing new was accepted. Returns the task, or `None` when disabled.
pub fn spawn_export_timer(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let secs: u64 = std::env::var(EXPORT_INTERVAL_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|s| *s > 0)?;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(secs));
        let mut last_rows = None;
        loop {
            tick.tick().await;
            let state = state.clone();
            let root = state.config().datasets_dir.clone();
            let prev = last_rows;
            let res = tokio::task::spawn_blocking(move || {
                let rows = state.store().accepted_count()?;
                if Some(rows) == prev {
                    return Ok(rows);
                }
                export_from_store(
                    state.store(),
                    state.identity().secret(),
                    &root,
                    None,
                    Some(LATEST_DATASET),
                )
                .map(|s| s.manifest.rows)
            })
            .await;
            match res {
                Ok(Ok(rows)) => last_rows = Some(rows),
                Ok(Err(ExportError::NothingToExport { .. })) => {}
                Ok(Err(e)) => {
                    tracing::error!(code = e.code(), cause = %e, "dataset export timer failed")
                }
                Err(e) => tracing::error!(cause = %e, "dataset export task failed"),
            }
        }
    }))
}

/// `gleaner-validator dataset …`
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

/// Dataset admin commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Export accepted, deduplicated records as a signed Parquet dataset.
    Export {
        /// Only records credited in this epoch or later.
        #[arg(long)]
        since: Option<u64>,
        /// Directory holding datasets (default: where the server serves them from, the config's
        /// `datasets_dir`, else DATA/datasets).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Dataset name (default gleaner-eFROM-eTO).
        #[arg(long)]
        name: Option<String>,
        /// Also write each shard as JSON Lines + zstd under jsonl/ (listed in the manifest).
        #[arg(long)]
        jsonl: bool,
    },
    /// List exported datasets (JSON lines).
    List {
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Runs a dataset command against the data directory.
pub fn main(data_dir: &Path, args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Export {
            since,
            out,
            name,
            jsonl,
        } => {
            let identity = crate::Identity::load_or_create(data_dir)?;
            let store = Store::open(data_dir)?;
            let root = match out {
                Some(out) => out,
                None => served_root(data_dir)?,
            };
            let summary = export_from_store_with(
                &store,
                identity.secret(),
                &root,
                since,
                name.as_deref(),
                jsonl,
            )?;
            let m = &summary.manifest;
            println!(
                "{}",
                serde_json::json!({
                    "dataset": m.name,
                    "dir": summary.dir,
                    "rows": m.rows,
                    "shards": m.shards.len(),
                    "jsonl_files": m.jsonl.len(),
                    "epoch_from": m.epoch_from,
                    "epoch_to": m.epoch_to,
                    "duplicates_dropped": summary.duplicates_dropped,
                    "validator": m.validator.to_string(),
                })
            );
            Ok(())
        }
        Command::List { out } => {
            let root = match out {
                Some(out) => out,
                None => served_root(data_dir)?,
            };
            for m in list_datasets(&root)? {
                println!("{}", serde_json::to_string(&DatasetInfo::of(&m))?);
            }
            Ok(())
        }
    }
}

/// The directory a server on `data_dir` serves datasets from: the config file's (or the
/// environment's) `datasets_dir`, else `DATA/datasets`.
pub fn served_root(data_dir: &Path) -> anyhow::Result<PathBuf> {
    Ok(crate::config::Config::load(None, data_dir)?.datasets_dir)
}

/// One dataset in `GET /v1/datasets`.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetInfo {
    pub name: String,
    pub validator: String,
    pub rows: u64,
    pub epoch_from: u64,
    pub epoch_to: u64,
    pub bytes: u64,
    pub manifest_url: String,
    pub files: Vec<FileInfo>,
}

/// One file of a dataset, with its download URL.
#[derive(Debug, Clone, Serialize)]
pub struct FileInfo {
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub blake3: Digest,
    pub url: String,
}

impl DatasetInfo {
    /// The listing entry of a manifest.
    pub fn of(m: &Manifest) -> Self {
        DatasetInfo {
            name: m.name.clone(),
            validator: m.validator.to_string(),
            rows: m.rows,
            epoch_from: m.epoch_from,
            epoch_to: m.epoch_to,
            bytes: m.files().map(|f| f.bytes).sum(),
            manifest_url: format!("/v1/datasets/{}/{MANIFEST_FILE}", m.name),
            files: m
                .files()
                .map(|f| FileInfo {
                    path: f.path.clone(),
                    rows: f.rows,
                    bytes: f.bytes,
                    blake3: f.blake3,
                    url: format!("/v1/datasets/{}/files/{}", m.name, f.path),
                })
                .collect(),
        }
    }
}

/// The dataset routes, merged into the server's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/datasets", get(list))
        .route("/v1/datasets/{name}/manifest.json", get(manifest))
        .route("/v1/datasets/{name}/files/{*path}", get(file))
}

/// The datasets directory the server serves (set by `serve` from the data directory).
fn root(state: &AppState) -> PathBuf {
    state.config().datasets_dir.clone()
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let tokens = &state.config().lab_tokens;
    if tokens.is_empty() {
        return Ok(());
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t)
            if tokens
                .iter()
                .any(|k| constant_time_eq(k.as_bytes(), t.as_bytes())) =>
        {
            Ok(())
        }
        _ => Err(ApiError::new(
            401,
            "unauthorized",
            "datasets require a lab API key: Authorization: Bearer KEY",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let root = root(&state);
    let manifests = crate::server::blocking(move || list_datasets(&root))
        .await?
        .map_err(|e| ApiError::internal(e.code(), &e))?;
    let infos: Vec<DatasetInfo> = manifests.iter().map(DatasetInfo::of).collect();
    Ok(axum::Json(infos).into_response())
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(404, "not_found", format!("no such {what}"))
}

async fn load_manifest(state: &AppState, name: &str) -> Result<(PathBuf, Manifest), ApiError> {
    if !valid_name(name) {
        return Err(not_found("dataset"));
    }
    let dir = root(state).join(name);
    let d = dir.clone();
    let m = crate::server::blocking(move || Manifest::read(&d))
        .await?
        .map_err(|_| not_found("dataset"))?;
    Ok((dir, m))
}

fn etag_matches(headers: &HeaderMap, name: header::HeaderName, etag: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

async fn manifest(
    State(state): State<AppState>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let (dir, _) = load_manifest(&state, &name).await?;
    let path = dir.join(MANIFEST_FILE);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| not_found("dataset"))?;
    let etag = format!("\"{}\"", Digest::of(&bytes));
    if etag_matches(&headers, header::IF_NONE_MATCH, &etag) {
        return Ok(not_modified(&etag));
    }
    let mut res = Response::new(Body::from(bytes));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Ok(res)
}

fn not_modified(etag: &str) -> Response {
    let mut res = StatusCode::NOT_MODIFIED.into_response();
    if let Ok(v) = HeaderValue::from_str(etag) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

/// Content type of a dataset file.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("parquet") => "application/vnd.apache.parquet",
        Some("jsonl") => "application/jsonl",
        Some("md") => "text/markdown; charset=utf-8",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

async fn file(
    State(state): State<AppState>,
    UrlPath((name, path)): UrlPath<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    authorize(&state, req.headers())?;
    let (dir, manifest) = load_manifest(&state, &name).await?;
    let entry = manifest
        .files()
        .find(|f| f.path == path)
        .ok_or_else(|| not_found("file in this dataset"))?;
    let full = safe_join(&dir, &entry.path).map_err(|_| not_found("file in this dataset"))?;
    let etag = format!("\"{}\"", entry.blake3);
    if etag_matches(req.headers(), header::IF_NONE_MATCH, &etag) {
        return Ok(not_modified(&etag));
    }
    let (mut parts, body) = req.into_parts();
    // If-Range with our strong ETag keeps the range; anything else (another ETag, a date) gets
    // the whole file, as RFC 9110 asks when the validator does not match.
    if let Some(v) = parts.headers.remove(header::IF_RANGE)
        && v.to_str().ok().map(str::trim) != Some(etag.as_str())
    {
        parts.headers.remove(header::RANGE);
    }
    parts.headers.remove(header::IF_MODIFIED_SINCE);
    let req = Request::from_parts(parts, body);
    let res = ServeFile::new(&full)
        .oneshot(req)
        .await
        .map_err(|e| ApiError::internal("serve_file", &e))?;
    let mut res = res.map(Body::new);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&entry.path)),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.remove(header::LAST_MODIFIED);
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        crate::testkit::files_under(dir).unwrap()
    }

    /// The store's records stream to the dataset writer in pieces; small pieces (cut inside
    /// batches, row groups and epochs) give the same files as one piece, and they verify.
    #[test]
    fn records_streamed_in_pieces_export_the_same_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let (identity, accepted) = crate::testkit::fill_store(tmp.path(), 30).unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let key = identity.secret();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let one = export_in_pieces(&store, key, &a, None, None, true, usize::MAX).unwrap();
        let many = export_in_pieces(&store, key, &b, None, None, true, 3).unwrap();
        assert_eq!(one.manifest.rows, accepted as u64);
        assert_eq!(many.manifest, one.manifest);
        let (fa, fb) = (files(&one.dir), files(&many.dir));
        assert!(
            fa.len() >= 6,
            "{:?}",
            fa.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
        assert!(fa == fb, "the files differ");
        let report = gleaner_dataset::verify_dir(
            &many.dir,
            &gleaner_dataset::VerifyOptions {
                trust: vec![identity.public()],
                ..Default::default()
            },
        );
        assert!(report.is_ok(), "{:?}", report.failures);
        assert_eq!(report.rows_checked, accepted as u64);
    }

    #[test]
    fn names_are_single_plain_segments() {
        for ok in ["gleaner-e000001-e000003", "latest", "a.b_c-1"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", ".hidden", "..", "a/b", "a b", "a%2Fb", &"x".repeat(200)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type("data/x/part-00000.parquet"),
            "application/vnd.apache.parquet"
        );
        assert_eq!(content_type("receipts.jsonl"), "application/jsonl");
        assert_eq!(content_type("README.md"), "text/markdown; charset=utf-8");
    }
}
