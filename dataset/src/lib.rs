//! Gleaner datasets: Parquet shards with per-row provenance, a signed manifest, a dataset card, and
//! offline verification.
//!
//! ## Layout of an exported dataset directory
//! ```text
//! <name>/
//!   manifest.json                      signed by the validator (see [`Manifest::signing_bytes`])
//!   README.md                          Hugging Face dataset card (YAML header: license, configs, features)
//!   receipts.jsonl                     every receipt the rows refer to, one JSON object per line
//!   data/<dump>/part-00000.parquet     shards, zstd, page index, rows sorted by (epoch, id)
//!   jsonl/<dump>/part-00000.jsonl.zst  optional (`ExportConfig::jsonl`): each shard's rows as
//!                                      JSON Lines + zstd, same order and field names
//! ```
//! Each row carries every signed field of its [`gleaner_protocol::Record`] (except the outlinks,
//! which are covered by `outlinks_digest`), so [`verify_dir`] can rebuild the record's signing
//! bytes, check the node's signature, and check that the validator's signed receipt for the row's
//! batch lists the record as accepted — offline, with nothing but the directory.
//!
//! **Architecture invariant:** this crate does file I/O only under the directories it is given,
//! and network I/O only in [`pull`] (feature `pull`). It never signs records; it signs manifests.

mod card;
mod error;
mod export;
pub mod fixtures;
mod manifest;
mod par;
#[cfg(feature = "pull")]
pub mod pull;
mod revoked;
mod sample;
mod schema;
mod tokens;
mod verify;

pub use card::render_card;
pub use error::{DatasetError, Failure, Place};
pub use export::{
    ExportConfig, ExportInput, ExportSummary, ExportWriter, PARQUET_ZSTD_LEVEL, export,
};
pub use manifest::{
    CARD_FILE, FileEntry, MANIFEST_DOMAIN, MANIFEST_FILE, MANIFEST_FORMAT, Manifest, RECEIPTS_FILE,
    list_datasets, safe_join,
};
pub use revoked::{RowRef, dataset_rows};
pub use sample::{SampleRow, sample_rows};
pub use schema::{ExportRow, arrow_schema, columns, dump_label};
pub use tokens::{TOKENIZER_NAME, TokenCounter};
pub use verify::{VerifyOptions, VerifyReport, verify_dir};

/// The language detector named in the card and the manifest: the node's, whose ISO 639-1 code is
/// signed in each record (`lang`).
pub const LANGUAGE_DETECTOR: &str =
    "whatlang 0.18 (run by the collecting node; ISO 639-1, `und` when unsure)";
