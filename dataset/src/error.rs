//! Typed errors with stable snake_case reason codes.

use std::fmt;
use std::path::PathBuf;

/// An error that stops an export, a manifest operation or a download.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// Reading or writing a file failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The Parquet or Arrow library refused the data.
    #[error("parquet error on {path}: {why}")]
    Parquet { path: PathBuf, why: String },
    /// A JSON document could not be encoded or decoded.
    #[error("bad json in {what}: {why}")]
    Json { what: String, why: String },
    /// A row's batch has no receipt in the export input.
    #[error("record {record_id} names batch {batch_id}, which has no receipt")]
    MissingReceipt { record_id: String, batch_id: String },
    /// A receipt was signed by another validator than the one exporting.
    #[error(
        "receipt for batch {batch_id} is signed by {found}, not by the exporting validator {expected}"
    )]
    ForeignReceipt {
        batch_id: String,
        found: String,
        expected: String,
    },
    /// A piece of a streamed export holds a row that sorts before rows already added.
    #[error(
        "record {record_id} (epoch {epoch}) is out of order: pieces of an export must come in \
         (epoch, record id) order, and epoch {after_epoch} record {after_id} was already added"
    )]
    OutOfOrder {
        record_id: String,
        epoch: u64,
        after_id: String,
        after_epoch: u64,
    },
    /// The tokenizer could not be loaded.
    #[error("tokenizer unavailable: {why}")]
    Tokenizer { why: String },
    /// A manifest names a file outside the dataset directory or with a suspicious path.
    #[error("unsafe path in manifest: {path}")]
    UnsafePath { path: String },
    /// A manifest's signature or content is invalid.
    #[error("invalid manifest: {why}")]
    BadManifest { why: String },
    /// An HTTP request failed (pull client).
    #[error("http error fetching {url}: {why}")]
    Http { url: String, why: String },
    /// A downloaded file does not match its manifest entry.
    #[error("downloaded {path} does not match the manifest: {why}")]
    DownloadMismatch { path: String, why: String },
    /// A validator's revocation log holds an entry not signed by the dataset's validator.
    #[error("revocation {seq} from {url} is not the dataset validator's: {why}")]
    BadRevocation { url: String, seq: u64, why: String },
}

impl DatasetError {
    /// The stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            DatasetError::Io { .. } => "io_error",
            DatasetError::Parquet { .. } => "parquet_error",
            DatasetError::Json { .. } => "bad_json",
            DatasetError::MissingReceipt { .. } => "missing_receipt",
            DatasetError::ForeignReceipt { .. } => "foreign_receipt",
            DatasetError::OutOfOrder { .. } => "export_out_of_order",
            DatasetError::Tokenizer { .. } => "tokenizer_unavailable",
            DatasetError::UnsafePath { .. } => "unsafe_path",
            DatasetError::BadManifest { .. } => "bad_manifest",
            DatasetError::Http { .. } => "http_error",
            DatasetError::DownloadMismatch { .. } => "download_mismatch",
            DatasetError::BadRevocation { .. } => "bad_revocation",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DatasetError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parquet(path: impl Into<PathBuf>, why: impl fmt::Display) -> Self {
        DatasetError::Parquet {
            path: path.into(),
            why: why.to_string(),
        }
    }
}

/// Where a verification failure was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// `manifest.json` itself.
    Manifest,
    /// A file listed in the manifest (shard, receipts, card), as a whole.
    File { path: String },
    /// One line of `receipts.jsonl` (1-based).
    Receipt { line: usize },
    /// One row of a shard (0-based row index within the shard).
    Row { shard: String, row: u64 },
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Manifest => f.write_str("manifest.json"),
            Place::File { path } => f.write_str(path),
            Place::Receipt { line } => write!(f, "{}:{line}", crate::RECEIPTS_FILE),
            Place::Row { shard, row } => write!(f, "{shard} row {row}"),
        }
    }
}

/// One verification failure: where, a stable reason code, and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub place: Place,
    /// Stable snake_case reason, e.g. `bad_record_signature`, `shard_digest_mismatch`.
    pub code: &'static str,
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.place, self.code, self.detail)
    }
}
