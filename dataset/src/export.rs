//! Deterministic export: accepted records → Parquet shards, receipts, card and signed manifest.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, RecordBatch, StringArray,
    StructArray, UInt16Array, UInt32Array, UInt64Array,
};
use arrow_buffer::OffsetBuffer;
use gleaner_protocol::{Digest, PublicKey, Receipt, RobotsVerdict, SecretKey, Signature};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

use crate::manifest::digest_file;
use crate::par;
use crate::schema::{
    LANGUAGE_SCORE_KEY, columns, iso_date, quality_item, quality_struct, with_iso_date,
};
use crate::{
    CARD_FILE, DatasetError, ExportRow, FileEntry, LANGUAGE_DETECTOR, MANIFEST_FILE,
    MANIFEST_FORMAT, Manifest, RECEIPTS_FILE, TOKENIZER_NAME, TokenCounter, arrow_schema,
    dump_label,
};

/// Rows per row group: datatrove's Parquet writer default, small enough for fine-grained range
/// reads and large enough for good compression.
pub const ROW_GROUP_ROWS: usize = 1_000;
/// Text bytes per row group before it is cut early: keeps Arrow's 32-bit string offsets (2 GiB)
/// far away even with 4 MiB texts, and bounds the writer's memory.
pub const ROW_GROUP_MAX_TEXT_BYTES: usize = 64 * 1024 * 1024;
/// Default shard size cap: Hub tooling and `datasets` streaming work best with files of a few
/// hundred MB (datatrove caps at 5 GB; the Hub recommends < 1 GB per file for the viewer).
pub const DEFAULT_SHARD_MAX_BYTES: u64 = 512 * 1024 * 1024;
/// zstd level: 1, zstd's fastest regular level. Against level 3 (zstd's default) it cut export
/// CPU by about a fifth for shards ~4 % larger (37.7 -> 39.4 MB in the dataset bench); negative
/// levels were no faster on text and 23-44 % larger.
pub const PARQUET_ZSTD_LEVEL: i32 = 1;
/// `created_by` written in every shard. Fixed, so shards do not change with the host.
pub const CREATED_BY: &str = "gleaner-dataset v1 (parquet-rs)";
/// What the `file_path` column holds before the batch id: the batch that delivered the record
/// (there are no WARC files).
pub const FILE_PATH_PREFIX: &str = "gleaner:batch:";
/// License of the exported text. The pages belong to their authors; ODC-By is what FineWeb uses,
/// subject to the source sites' terms.
pub const DEFAULT_LICENSE: &str = "odc-by";

/// Columns whose values repeat a lot and get dictionary encoding; the rest (text, ids, digests,
/// signatures) are unique per row, where a dictionary only costs.
const DICTIONARY_COLUMNS: &[&str] = &[
    columns::DUMP,
    columns::LANGUAGE,
    columns::FILE_PATH,
    columns::CONTENT_TYPE,
    columns::CHARSET,
    columns::ROBOTS,
    columns::NODE,
    columns::BATCH_ID,
    columns::VALIDATOR,
    columns::RECEIPT_SIGNATURE,
    QUALITY_NAME,
];

/// The leaf column of the quality scores' names (a dozen names repeated on every row).
pub(crate) const QUALITY_NAME: &str = "quality.list.item.name";

/// Columns without statistics: nobody filters rows by the lexical minimum of a page's text or
/// of random digests and signatures, and computing them compares every value (the largest
/// single cost of the page index after compression). Every other column keeps page statistics,
/// so the page index still serves `url`, `id`, `date`, `language`, `token_count`, … filters.
const NO_STATISTICS_COLUMNS: &[&str] = &[
    columns::TEXT,
    columns::TITLE,
    columns::RAW_DIGEST,
    columns::TEXT_DIGEST,
    columns::OUTLINKS_DIGEST,
    columns::NODE_SIGNATURE,
    columns::RECEIPT_SIGNATURE,
];

/// How to export.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// The dataset directory to create (replaced atomically if it exists).
    pub dir: PathBuf,
    /// The dataset's name (manifest and card).
    pub name: String,
    pub license: String,
    /// A shard is closed once it reaches this size; a shard exceeds it by at most one row group.
    pub shard_max_bytes: u64,
    /// Also write each shard's rows as JSON Lines + zstd (`jsonl/<dump>/part-NNNNN.jsonl.zst`,
    /// the layout datatrove and Dolma readers take), listed and signed in the manifest.
    pub jsonl: bool,
}

impl ExportConfig {
    /// Defaults: the directory's file name as the dataset name, ODC-By, 512 MiB shards.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "gleaner".to_string());
        ExportConfig {
            dir,
            name,
            license: DEFAULT_LICENSE.to_string(),
            shard_max_bytes: DEFAULT_SHARD_MAX_BYTES,
            jsonl: false,
        }
    }
}

/// What to export: accepted rows and the receipts of their batches (extra receipts are ignored).
#[derive(Debug, Clone, Default)]
pub struct ExportInput {
    pub rows: Vec<ExportRow>,
    pub receipts: Vec<Receipt>,
}

/// The outcome of an export.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub manifest: Manifest,
    pub dir: PathBuf,
    /// Rows dropped because an identical record or an identical text was already exported.
    pub duplicates_dropped: u64,
    /// The token counts this export computed (for rows that came without one), by record id,
    /// that [`ExportWriter::take_counted`] had not yet taken: the caller may store them so the
    /// next export of the same rows need not count again.
    pub counted: Vec<(Digest, u64)>,
}

/// A row with the values derived from it before encoding (the rest, token counts and text forms
/// of digests and signatures, is derived per row group on the worker threads).
struct Prepared {
    row: ExportRow,
    id: Digest,
    /// Index of the row's receipt in [`Derived::receipt_signatures`].
    receipt: usize,
}

/// Text forms computed once per receipt and per node rather than once per row (base58 encoding
/// is quadratic in the input length and showed up in profiles).
struct Derived {
    validator: String,
    receipt_signatures: Vec<String>,
    nodes: HashMap<PublicKey, String>,
}

/// What a worker thread keeps between row groups.
struct Encoder {
    /// Counts the rows that come without a token count.
    tokens: TokenCounter,
    columns: ArrowRowGroupWriterFactory,
}

/// Exports `input` as a signed dataset in `config.dir`. Deterministic: the same rows and receipts
/// (in any order) give byte-identical files. Rows are deduplicated by record id and by text
/// digest (keeping the earliest epoch, then the smallest id), sorted by epoch then id, and sharded
/// per epoch (`data/<dump>/part-NNNNN.parquet`).
///
/// Holds every row in memory; [`ExportWriter`] takes them in pieces instead.
pub fn export(
    input: ExportInput,
    key: &SecretKey,
    config: &ExportConfig,
) -> Result<ExportSummary, DatasetError> {
    let mut writer = ExportWriter::create(key, config.clone())?;
    writer.add(input)?;
    writer.finish()
}

/// An export fed in pieces, so that no more than a piece of the rows is in memory at once: the
/// validator streams its accepted records through one.
///
/// Rows within a piece may come in any order, but every row of a piece must sort (by epoch, then
/// record id) at or after every row of the pieces before it; a row that does not is refused with
/// [`DatasetError::OutOfOrder`]. Wherever the pieces are cut, the files are byte-identical to one
/// [`export`] of all the rows. Memory: one piece, the rows of a row group not yet complete, and
/// the record id and text digest of every row kept so far (for deduplication).
///
/// Files are written in a sibling staging directory, swapped in by [`ExportWriter::finish`];
/// dropping the writer unfinished removes them.
pub struct ExportWriter<'k> {
    key: &'k SecretKey,
    config: ExportConfig,
    staging: PathBuf,
    /// Every receipt given so far, by batch id.
    receipts: BTreeMap<Digest, Receipt>,
    /// Batches with exported rows → index of their receipt's signature in `derived`.
    used_receipts: BTreeMap<Digest, usize>,
    derived: Derived,
    seen_ids: HashSet<Digest>,
    seen_texts: HashSet<Digest>,
    /// The largest (epoch, record id) added so far.
    last: Option<(u64, Digest)>,
    /// Kept rows whose row group is not complete yet (the last group may grow with the next
    /// piece).
    pending: Vec<Prepared>,
    shards: Shards,
    rows_in: u64,
    rows_out: u64,
    /// The first and last epoch of the rows kept so far.
    epochs: Option<(u64, u64)>,
    finished: bool,
}

impl<'k> ExportWriter<'k> {
    /// Starts an export into `config.dir` (created on [`ExportWriter::finish`]), signed by `key`.
    pub fn create(key: &'k SecretKey, config: ExportConfig) -> Result<Self, DatasetError> {
        // Build in a sibling directory, then swap it in, so readers never see a half-written
        // dataset.
        let staging = sibling(&config.dir, "partial")?;
        remove_dir_if_exists(&staging)?;
        std::fs::create_dir_all(&staging).map_err(|e| DatasetError::io(&staging, e))?;
        Ok(ExportWriter {
            key,
            shards: Shards::new(&staging, config.jsonl)?,
            config,
            staging,
            receipts: BTreeMap::new(),
            used_receipts: BTreeMap::new(),
            derived: Derived {
                validator: key.public().to_string(),
                receipt_signatures: Vec::new(),
                nodes: HashMap::new(),
            },
            seen_ids: HashSet::new(),
            seen_texts: HashSet::new(),
            last: None,
            pending: Vec::new(),
            rows_in: 0,
            rows_out: 0,
            epochs: None,
            finished: false,
        })
    }

    /// The token counts computed since the last call (for rows that came without one), by record
    /// id, for the caller to store; the rest come with [`ExportSummary::counted`].
    pub fn take_counted(&mut self) -> Vec<(Digest, u64)> {
        std::mem::take(&mut self.shards.counted)
    }

    /// Adds a piece: rows and the receipts of their batches (a receipt may come with any piece
    /// up to the one holding its batch's first row; repeats and extra receipts are ignored).
    /// Writes every row group the piece completes.
    pub fn add(&mut self, input: ExportInput) -> Result<(), DatasetError> {
        let validator = self.key.public();
        for r in input.receipts {
            if r.validator != validator {
                return Err(DatasetError::ForeignReceipt {
                    batch_id: r.batch_id.to_string(),
                    found: r.validator.to_string(),
                    expected: validator.to_string(),
                });
            }
            self.receipts.entry(r.batch_id).or_insert(r);
        }

        // Order and deduplicate. Record ids (blake3 of the signing bytes) are computed in
        // parallel; small keys are sorted, then the rows are moved once (rows are large: sorting
        // them directly spent most of its time in memmove). The index breaks ties as a stable
        // sort would.
        let ids = par::map_slice(&input.rows, |row| row.record.id());
        let mut order: Vec<(u64, Digest, usize)> = input
            .rows
            .iter()
            .zip(ids)
            .enumerate()
            .map(|(i, (row, id))| (row.epoch, id, i))
            .collect();
        order.sort_unstable();
        if let (Some(&(epoch, id, _)), Some((after_epoch, after_id))) = (order.first(), self.last)
            && (epoch, id) < (after_epoch, after_id)
        {
            return Err(DatasetError::OutOfOrder {
                record_id: id.to_string(),
                epoch,
                after_id: after_id.to_string(),
                after_epoch,
            });
        }
        if let Some(&(epoch, id, _)) = order.last() {
            self.last = Some((epoch, id));
        }
        self.rows_in += order.len() as u64;
        let (seen_ids, seen_texts) = (&mut self.seen_ids, &mut self.seen_texts);
        order.retain(|&(_, id, i)| {
            seen_ids.insert(id)
                && input
                    .rows
                    .get(i)
                    .is_some_and(|row| seen_texts.insert(row.record.text_digest))
        });
        let mut slots: Vec<Option<ExportRow>> = input.rows.into_iter().map(Some).collect();
        self.pending.reserve(order.len());
        for (_, id, i) in order {
            let Some(row) = slots.get_mut(i).and_then(Option::take) else {
                continue;
            };
            let next = self.derived.receipt_signatures.len();
            let receipt = match self.used_receipts.get(&row.batch_id) {
                Some(&index) => index,
                None => {
                    let receipt = self.receipts.get(&row.batch_id).ok_or_else(|| {
                        DatasetError::MissingReceipt {
                            record_id: id.to_string(),
                            batch_id: row.batch_id.to_string(),
                        }
                    })?;
                    self.derived
                        .receipt_signatures
                        .push(receipt.signature.to_string());
                    self.used_receipts.insert(row.batch_id, next);
                    next
                }
            };
            self.derived
                .nodes
                .entry(row.record.node)
                .or_insert_with(|| row.record.node.to_string());
            // Rows come in epoch order: the first kept row's epoch is the first.
            let first = self.epochs.map_or(row.epoch, |(first, _)| first);
            self.epochs = Some((first, row.epoch));
            self.rows_out += 1;
            self.pending.push(Prepared { row, id, receipt });
        }
        self.write_groups(false)
    }

    /// Writes the complete row groups among the pending rows: all of them when `all`, else all
    /// but the last (which the next piece may extend).
    fn write_groups(&mut self, all: bool) -> Result<(), DatasetError> {
        let keep = if all {
            0
        } else {
            row_groups(&self.pending).last().map_or(0, |g| g.rows.len())
        };
        let ready = self.pending.len() - keep;
        if ready > 0 {
            let rows = self.pending.get(..ready).unwrap_or_default();
            self.shards.write(rows, &self.derived, &self.config)?;
            self.pending.drain(..ready);
        }
        Ok(())
    }

    /// Writes the last row group, the receipts, the card and the signed manifest, and swaps the
    /// dataset into `config.dir`.
    pub fn finish(mut self) -> Result<ExportSummary, DatasetError> {
        self.write_groups(true)?;
        let (shards, jsonl) = self.shards.close()?;
        let receipts = self
            .used_receipts
            .keys()
            .filter_map(|batch| self.receipts.get(batch));
        let receipts_entry = write_receipts(&self.staging, receipts)?;

        let (epoch_from, epoch_to) = self.epochs.unwrap_or((0, 0));
        let mut manifest = Manifest {
            format: MANIFEST_FORMAT.to_string(),
            name: self.config.name.clone(),
            validator: self.key.public(),
            license: self.config.license.clone(),
            epoch_from,
            epoch_to,
            rows: self.rows_out,
            tokenizer: TOKENIZER_NAME.to_string(),
            language_detector: LANGUAGE_DETECTOR.to_string(),
            shards,
            receipts: receipts_entry,
            card: FileEntry {
                path: CARD_FILE.to_string(),
                rows: 0,
                bytes: 0,
                blake3: Digest::default(),
            },
            jsonl,
            signature: Signature::from_bytes([0; 64]),
        };
        let card = crate::render_card(&manifest);
        let card_path = self.staging.join(CARD_FILE);
        std::fs::write(&card_path, card.as_bytes()).map_err(|e| DatasetError::io(&card_path, e))?;
        manifest.card.bytes = card.len() as u64;
        manifest.card.blake3 = Digest::of(card.as_bytes());
        manifest.sign(self.key);
        let manifest_path = self.staging.join(MANIFEST_FILE);
        std::fs::write(&manifest_path, manifest.to_json()?)
            .map_err(|e| DatasetError::io(&manifest_path, e))?;

        swap_in(&self.staging, &self.config.dir)?;
        self.finished = true;
        let duplicates_dropped = self.rows_in - self.rows_out;
        tracing::info!(
            dataset = %manifest.name,
            rows = manifest.rows,
            shards = manifest.shards.len(),
            duplicates_dropped,
            "dataset exported"
        );
        Ok(ExportSummary {
            manifest,
            dir: self.config.dir.clone(),
            duplicates_dropped,
            counted: std::mem::take(&mut self.shards.counted),
        })
    }
}

impl Drop for ExportWriter<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // Close the open files before removing them; errors no longer matter.
            self.shards.open = None;
            if let Err(e) = remove_dir_if_exists(&self.staging) {
                tracing::warn!(cause = %e, "could not remove an unfinished export");
            }
        }
    }
}

fn sibling(dir: &Path, suffix: &str) -> Result<PathBuf, DatasetError> {
    let name = dir.file_name().ok_or_else(|| DatasetError::UnsafePath {
        path: dir.display().to_string(),
    })?;
    let parent = dir.parent().unwrap_or(Path::new("."));
    Ok(parent.join(format!(".{}.{suffix}", name.to_string_lossy())))
}

fn remove_dir_if_exists(dir: &Path) -> Result<(), DatasetError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DatasetError::io(dir, e)),
    }
}

fn swap_in(staging: &Path, dir: &Path) -> Result<(), DatasetError> {
    if dir.exists() {
        let old = sibling(dir, "old")?;
        remove_dir_if_exists(&old)?;
        std::fs::rename(dir, &old).map_err(|e| DatasetError::io(dir, e))?;
        std::fs::rename(staging, dir).map_err(|e| DatasetError::io(dir, e))?;
        remove_dir_if_exists(&old)
    } else {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DatasetError::io(parent, e))?;
        }
        std::fs::rename(staging, dir).map_err(|e| DatasetError::io(dir, e))
    }
}

fn writer_properties() -> Result<WriterProperties, DatasetError> {
    let level = ZstdLevel::try_new(PARQUET_ZSTD_LEVEL)
        .map_err(|e| DatasetError::parquet("(writer properties)", e))?;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        // Page-level statistics make the writer emit the page index (column and offset indexes).
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(CREATED_BY.to_string())
        .set_dictionary_enabled(false);
    for col in DICTIONARY_COLUMNS {
        props = props.set_column_dictionary_enabled(column_path(col), true);
    }
    for col in NO_STATISTICS_COLUMNS {
        props = props.set_column_statistics_enabled(column_path(col), EnabledStatistics::None);
    }
    Ok(props.build())
}

/// A leaf column's path from its dotted name (`ColumnPath::from(&str)` keeps the dots inside
/// one part, which matches no nested column).
fn column_path(dotted: &str) -> ColumnPath {
    ColumnPath::new(dotted.split('.').map(str::to_string).collect())
}

/// A row group: consecutive rows of one epoch.
struct Group<'a> {
    epoch: u64,
    rows: &'a [Prepared],
}

/// Cuts sorted rows into row groups: same epoch, at most [`ROW_GROUP_ROWS`] rows and
/// [`ROW_GROUP_MAX_TEXT_BYTES`] of text (a single larger text gets a group of its own).
fn row_groups(rows: &[Prepared]) -> impl Iterator<Item = Group<'_>> {
    let mut start = 0;
    std::iter::from_fn(move || {
        let first = rows.get(start)?;
        let epoch = first.row.epoch;
        let mut end = start;
        let mut text_bytes = 0usize;
        while end < rows.len()
            && rows[end].row.epoch == epoch
            && end - start < ROW_GROUP_ROWS
            && (end == start
                || text_bytes + rows[end].row.record.text.len() <= ROW_GROUP_MAX_TEXT_BYTES)
        {
            text_bytes += rows[end].row.record.text.len();
            end += 1;
        }
        let group = Group {
            epoch,
            rows: &rows[start..end],
        };
        start = end;
        Some(group)
    })
}

/// A Parquet file writer with the shards' schema and properties (file metadata included).
fn file_writer<W: Write + Send>(
    out: W,
    props: &WriterProperties,
) -> parquet::errors::Result<(SerializedFileWriter<W>, ArrowRowGroupWriterFactory)> {
    ArrowWriter::try_new(out, arrow_schema(), Some(props.clone()))?.into_serialized_writer()
}

/// Encodes one row group into its column chunks (token counting, Arrow arrays, Parquet encoding
/// and compression) and returns them with the rows' token counts: the part of the export that
/// runs on the worker threads. The chunks do not
/// depend on where they will be written, so row groups are encoded in parallel and appended to
/// the shards in order.
fn encode_group(
    enc: &mut Encoder,
    group: &Group<'_>,
    derived: &Derived,
) -> Result<(Vec<ArrowColumnChunk>, Vec<i64>), DatasetError> {
    let where_ = || format!("(row group of {})", dump_label(group.epoch));
    let tokens: Vec<i64> = group
        .rows
        .iter()
        .map(|p| {
            let n = match p.row.token_count {
                Some(n) => n,
                None => enc.tokens.count(&p.row.record.text),
            };
            i64::try_from(n).unwrap_or(i64::MAX)
        })
        .collect();
    let batch = record_batch(group.rows, &tokens, derived)
        .map_err(|e| DatasetError::parquet(where_(), e))?;
    // The row group index only matters to encrypted files; these are not encrypted.
    let mut writers = enc
        .columns
        .create_column_writers(0)
        .map_err(|e| DatasetError::parquet(where_(), e))?;
    let schema = batch.schema();
    let mut next = writers.iter_mut();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        for leaf in compute_leaves(field, column).map_err(|e| DatasetError::parquet(where_(), e))? {
            let writer = next.next().ok_or_else(|| {
                DatasetError::parquet(where_(), "more leaf columns than column writers")
            })?;
            writer
                .write(&leaf)
                .map_err(|e| DatasetError::parquet(where_(), e))?;
        }
    }
    let chunks = writers
        .into_iter()
        .map(|w| w.close().map_err(|e| DatasetError::parquet(where_(), e)))
        .collect::<Result<_, _>>()?;
    Ok((chunks, tokens))
}

/// The shards of an export: the open Parquet file (with its JSON Lines copy, when asked for) and
/// the entries of those already closed.
struct Shards {
    staging: PathBuf,
    props: WriterProperties,
    /// Counts the rows that come without a token count. The GPT-2 ranks are loaded once per
    /// process, and only when a row needs counting; each worker shares them with its own piece
    /// cache.
    ranks: TokenCounter,
    /// The counts made for rows without one, by record id, until taken
    /// ([`ExportWriter::take_counted`], [`ExportSummary::counted`]).
    counted: Vec<(Digest, u64)>,
    jsonl: bool,
    open: Option<OpenShard>,
    /// The epoch whose shards are being written, and the next part number within it.
    epoch: Option<u64>,
    part: usize,
    entries: Vec<FileEntry>,
    jsonl_entries: Vec<FileEntry>,
}

struct OpenShard {
    writer: SerializedFileWriter<BufWriter<File>>,
    path: PathBuf,
    rel: String,
    rows: u64,
    jsonl: Option<JsonlShard>,
}

/// A shard's rows again as `jsonl/<dump>/part-NNNNN.jsonl.zst` (same order; zstd level
/// [`PARQUET_ZSTD_LEVEL`], written on one thread, so the bytes are deterministic).
struct JsonlShard {
    out: zstd::Encoder<'static, BufWriter<File>>,
    path: PathBuf,
    rel: String,
    rows: u64,
}

impl Shards {
    fn new(staging: &Path, jsonl: bool) -> Result<Self, DatasetError> {
        Ok(Shards {
            staging: staging.to_path_buf(),
            props: writer_properties()?,
            ranks: TokenCounter::new()?,
            counted: Vec::new(),
            jsonl,
            open: None,
            epoch: None,
            part: 0,
            entries: Vec::new(),
            jsonl_entries: Vec::new(),
        })
    }

    /// Writes `rows` (sorted, whole row groups) as row groups appended to the shards: encoded on
    /// the worker threads, appended in order on this one. A shard holds one epoch and is closed
    /// once it reaches `config.shard_max_bytes`.
    fn write(
        &mut self,
        rows: &[Prepared],
        derived: &Derived,
        config: &ExportConfig,
    ) -> Result<(), DatasetError> {
        let Shards {
            staging,
            props,
            ranks,
            counted,
            jsonl,
            open,
            epoch,
            part,
            entries,
            jsonl_entries,
        } = self;
        par::ordered(
            row_groups(rows),
            || {
                Ok(Encoder {
                    tokens: ranks.share(),
                    columns: file_writer(std::io::sink(), props)
                        .map_err(|e| DatasetError::parquet("(writer properties)", e))?
                        .1,
                })
            },
            |enc, group| {
                let (chunks, tokens) = encode_group(enc, &group, derived)?;
                Ok((group, chunks, tokens))
            },
            |(group, chunks, tokens)| {
                if *epoch != Some(group.epoch) {
                    if let Some(shard) = open.take() {
                        close_shard(shard, entries, jsonl_entries)?;
                    }
                    *epoch = Some(group.epoch);
                    *part = 0;
                }
                let shard = match open {
                    Some(s) => s,
                    None => {
                        let shard = open_shard(staging, group.epoch, *part, props, *jsonl)?;
                        *part += 1;
                        open.insert(shard)
                    }
                };
                let mut row_group = shard
                    .writer
                    .next_row_group()
                    .map_err(|e| DatasetError::parquet(&shard.path, e))?;
                for chunk in chunks {
                    chunk
                        .append_to_row_group(&mut row_group)
                        .map_err(|e| DatasetError::parquet(&shard.path, e))?;
                }
                row_group
                    .close()
                    .map_err(|e| DatasetError::parquet(&shard.path, e))?;
                shard.rows += group.rows.len() as u64;
                for (p, &n) in group.rows.iter().zip(&tokens) {
                    if p.row.token_count.is_none() {
                        counted.push((p.id, u64::try_from(n).unwrap_or(0)));
                    }
                }
                if let Some(copy) = shard.jsonl.as_mut() {
                    write_jsonl_rows(copy, group.rows, &tokens, derived)?;
                }
                if shard.writer.bytes_written() as u64 >= config.shard_max_bytes
                    && let Some(shard) = open.take()
                {
                    close_shard(shard, entries, jsonl_entries)?;
                }
                Ok(())
            },
        )
    }

    /// Closes the open shard; returns the entries of the Parquet shards and of their JSON Lines
    /// copies, in writing order.
    fn close(&mut self) -> Result<(Vec<FileEntry>, Vec<FileEntry>), DatasetError> {
        if let Some(shard) = self.open.take() {
            close_shard(shard, &mut self.entries, &mut self.jsonl_entries)?;
        }
        Ok((
            std::mem::take(&mut self.entries),
            std::mem::take(&mut self.jsonl_entries),
        ))
    }
}

fn open_shard(
    staging: &Path,
    epoch: u64,
    part: usize,
    props: &WriterProperties,
    jsonl: bool,
) -> Result<OpenShard, DatasetError> {
    let create = |rel: &str| -> Result<(PathBuf, File), DatasetError> {
        let path = staging.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DatasetError::io(parent, e))?;
        }
        let file = File::create(&path).map_err(|e| DatasetError::io(&path, e))?;
        Ok((path, file))
    };
    let stem = format!("{}/part-{part:05}", dump_label(epoch));
    let rel = format!("data/{stem}.parquet");
    let (path, file) = create(&rel)?;
    let (writer, _) =
        file_writer(BufWriter::new(file), props).map_err(|e| DatasetError::parquet(&path, e))?;
    let jsonl = if jsonl {
        let rel = format!("jsonl/{stem}.jsonl.zst");
        let (path, file) = create(&rel)?;
        let out = zstd::Encoder::new(BufWriter::new(file), PARQUET_ZSTD_LEVEL)
            .map_err(|e| DatasetError::io(&path, e))?;
        Some(JsonlShard {
            out,
            path,
            rel,
            rows: 0,
        })
    } else {
        None
    };
    Ok(OpenShard {
        writer,
        path,
        rel,
        rows: 0,
        jsonl,
    })
}

fn close_shard(
    shard: OpenShard,
    entries: &mut Vec<FileEntry>,
    jsonl_entries: &mut Vec<FileEntry>,
) -> Result<(), DatasetError> {
    let OpenShard {
        writer,
        path,
        rel,
        rows,
        jsonl,
    } = shard;
    let mut inner = writer
        .into_inner()
        .map_err(|e| DatasetError::parquet(&path, e))?;
    inner.flush().map_err(|e| DatasetError::io(&path, e))?;
    drop(inner);
    let (blake3, bytes) = digest_file(&path)?;
    entries.push(FileEntry {
        path: rel,
        rows,
        bytes,
        blake3,
    });
    if let Some(JsonlShard {
        out,
        path,
        rel,
        rows,
    }) = jsonl
    {
        out.finish()
            .and_then(|mut w| w.flush())
            .map_err(|e| DatasetError::io(&path, e))?;
        let (blake3, bytes) = digest_file(&path)?;
        jsonl_entries.push(FileEntry {
            path: rel,
            rows,
            bytes,
            blake3,
        });
    }
    Ok(())
}

/// A string column, its value buffer sized up front: growing it by doubling would copy a row
/// group's texts (megabytes) several times over.
fn strings<'a>(rows: &'a [Prepared], f: impl Fn(&'a Prepared) -> &'a str) -> ArrayRef {
    let bytes = rows.iter().map(|p| f(p).len()).sum();
    let mut column = StringBuilder::with_capacity(rows.len(), bytes);
    for p in rows {
        column.append_value(f(p));
    }
    Arc::new(column.finish())
}

fn owned_strings(rows: &[Prepared], f: impl Fn(&Prepared) -> String) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
}

/// A column of digests in their text form (lowercase hex, as `Digest`'s `Display` writes them)
/// after `prefix`, built through one reused buffer instead of two allocations per row.
fn hex_strings(rows: &[Prepared], prefix: &str, f: impl Fn(&Prepared) -> &Digest) -> ArrayRef {
    let mut column = StringBuilder::with_capacity(rows.len(), rows.len() * (prefix.len() + 64));
    let mut buf = prefix.as_bytes().to_vec();
    buf.resize(prefix.len() + 64, 0);
    for p in rows {
        let digest = f(p);
        let text = buf
            .get_mut(prefix.len()..)
            .and_then(|hex| hex::encode_to_slice(digest.as_bytes(), hex).ok())
            .and_then(|()| std::str::from_utf8(&buf).ok());
        match text {
            Some(text) => column.append_value(text),
            None => column.append_value(format!("{prefix}{digest}")),
        }
    }
    Arc::new(column.finish())
}

/// The `date` column, each value written without an allocation.
fn dates(rows: &[Prepared]) -> ArrayRef {
    let mut column = StringBuilder::with_capacity(rows.len(), rows.len() * 20);
    for p in rows {
        with_iso_date(r(p).fetched_at_ms, |s| column.append_value(s));
    }
    Arc::new(column.finish())
}

/// The `dump` column: one label per epoch, formatted once per run of rows of that epoch (a row
/// group holds one epoch).
fn dump_labels(rows: &[Prepared]) -> ArrayRef {
    let mut column = StringBuilder::with_capacity(rows.len(), rows.len() * 20);
    let mut label: Option<(u64, String)> = None;
    for p in rows {
        let epoch = p.row.epoch;
        let text = match &mut label {
            Some((e, text)) if *e == epoch => text,
            slot => &mut slot.insert((epoch, dump_label(epoch))).1,
        };
        column.append_value(text.as_str());
    }
    Arc::new(column.finish())
}

fn r(p: &Prepared) -> &gleaner_protocol::Record {
    &p.row.record
}

fn record_batch(
    rows: &[Prepared],
    tokens: &[i64],
    derived: &Derived,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut names = Vec::new();
    let mut scores = Vec::new();
    let mut lengths = Vec::with_capacity(rows.len());
    for p in rows {
        lengths.push(p.row.quality.len());
        for (k, v) in &p.row.quality {
            names.push(k.as_str());
            scores.push(*v);
        }
    }
    let quality_values = StructArray::try_new(
        quality_struct(),
        vec![
            Arc::new(StringArray::from_iter_values(names)) as ArrayRef,
            Arc::new(Float64Array::from(scores)) as ArrayRef,
        ],
        None,
    )?;
    let quality = ListArray::try_new(
        quality_item(),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(quality_values),
        None,
    )?;
    let columns: Vec<ArrayRef> = vec![
        strings(rows, |p| &r(p).text),
        hex_strings(rows, "", |p| &p.id),
        dump_labels(rows),
        strings(rows, |p| &r(p).final_url),
        dates(rows),
        hex_strings(rows, FILE_PATH_PREFIX, |p| &p.row.batch_id),
        strings(rows, |p| &r(p).lang),
        Arc::new(Float64Array::from_iter(
            rows.iter()
                .map(|p| p.row.quality.get(LANGUAGE_SCORE_KEY).copied()),
        )),
        Arc::new(Int64Array::from_iter_values(tokens.iter().copied())),
        strings(rows, |p| &r(p).url),
        strings(rows, |p| &r(p).lease_id),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|p| r(p).fetched_at_ms),
        )),
        Arc::new(UInt16Array::from_iter_values(
            rows.iter().map(|p| r(p).status),
        )),
        strings(rows, |p| &r(p).content_type),
        strings(rows, |p| &r(p).charset),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|p| r(p).wire_bytes),
        )),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|p| r(p).body_bytes),
        )),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|p| Some(r(p).truncated)),
        )),
        hex_strings(rows, "", |p| &r(p).raw_digest),
        strings(rows, |p| &r(p).title),
        hex_strings(rows, "", |p| &r(p).text_digest),
        strings(rows, |p| robots_label(r(p).robots)),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|p| r(p).crawl_delay_ms),
        )),
        hex_strings(rows, "", |p| &r(p).outlinks_digest),
        strings(rows, |p| {
            derived.nodes.get(&r(p).node).map_or("", String::as_str)
        }),
        owned_strings(rows, |p| r(p).signature.to_string()),
        hex_strings(rows, "", |p| &p.row.batch_id),
        strings(rows, |_| &derived.validator),
        strings(rows, |p| {
            derived
                .receipt_signatures
                .get(p.receipt)
                .map_or("", String::as_str)
        }),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|p| p.row.epoch),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|p| p.row.accepted_at_ms),
        )),
        Arc::new(quality),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|p| i64::from(p.row.minhash_cluster_size)),
        )),
    ];
    RecordBatch::try_new(arrow_schema(), columns)
}

/// One row of a JSON Lines file: the Parquet columns under the same names, in the same order
/// (`quality` as an object of scores). Mirrors [`record_batch`]; the dataset tests compare the
/// field names with the Arrow schema and the values with the Parquet cells.
#[derive(serde::Serialize)]
struct JsonRow<'a> {
    text: &'a str,
    id: String,
    dump: String,
    url: &'a str,
    date: String,
    file_path: String,
    language: &'a str,
    language_score: Option<f64>,
    token_count: i64,
    requested_url: &'a str,
    lease_id: &'a str,
    fetched_at_ms: i64,
    status: u16,
    content_type: &'a str,
    charset: &'a str,
    wire_bytes: u64,
    body_bytes: u64,
    truncated: bool,
    raw_digest: String,
    title: &'a str,
    text_digest: String,
    robots: &'static str,
    crawl_delay_ms: u32,
    outlinks_digest: String,
    node: &'a str,
    node_signature: String,
    batch_id: String,
    validator: &'a str,
    receipt_signature: &'a str,
    epoch: u64,
    accepted_at_ms: i64,
    quality: &'a BTreeMap<String, f64>,
    minhash_cluster_size: u32,
}

/// Appends `rows` (with their token counts, in order) to a shard's JSON Lines copy.
fn write_jsonl_rows(
    copy: &mut JsonlShard,
    rows: &[Prepared],
    tokens: &[i64],
    derived: &Derived,
) -> Result<(), DatasetError> {
    for (p, &token_count) in rows.iter().zip(tokens) {
        let rec = r(p);
        let row = JsonRow {
            text: &rec.text,
            id: p.id.to_string(),
            dump: dump_label(p.row.epoch),
            url: &rec.final_url,
            date: iso_date(rec.fetched_at_ms),
            file_path: format!("{FILE_PATH_PREFIX}{}", p.row.batch_id),
            language: &rec.lang,
            language_score: p.row.quality.get(LANGUAGE_SCORE_KEY).copied(),
            token_count,
            requested_url: &rec.url,
            lease_id: &rec.lease_id,
            fetched_at_ms: rec.fetched_at_ms,
            status: rec.status,
            content_type: &rec.content_type,
            charset: &rec.charset,
            wire_bytes: rec.wire_bytes,
            body_bytes: rec.body_bytes,
            truncated: rec.truncated,
            raw_digest: rec.raw_digest.to_string(),
            title: &rec.title,
            text_digest: rec.text_digest.to_string(),
            robots: robots_label(rec.robots),
            crawl_delay_ms: rec.crawl_delay_ms,
            outlinks_digest: rec.outlinks_digest.to_string(),
            node: derived.nodes.get(&rec.node).map_or("", String::as_str),
            node_signature: rec.signature.to_string(),
            batch_id: p.row.batch_id.to_string(),
            validator: &derived.validator,
            receipt_signature: derived
                .receipt_signatures
                .get(p.receipt)
                .map_or("", String::as_str),
            epoch: p.row.epoch,
            accepted_at_ms: p.row.accepted_at_ms,
            quality: &p.row.quality,
            minhash_cluster_size: p.row.minhash_cluster_size,
        };
        serde_json::to_writer(&mut copy.out, &row).map_err(|e| DatasetError::Json {
            what: copy.rel.clone(),
            why: e.to_string(),
        })?;
        copy.out
            .write_all(b"\n")
            .map_err(|e| DatasetError::io(&copy.path, e))?;
        copy.rows += 1;
    }
    Ok(())
}

/// The `robots` column's value.
pub(crate) fn robots_label(v: RobotsVerdict) -> &'static str {
    match v {
        RobotsVerdict::Allowed => "allowed",
        RobotsVerdict::Unavailable => "unavailable",
    }
}

fn write_receipts<'a>(
    staging: &Path,
    receipts: impl Iterator<Item = &'a Receipt>,
) -> Result<FileEntry, DatasetError> {
    let path = staging.join(RECEIPTS_FILE);
    let mut out = Vec::new();
    let mut count = 0u64;
    for r in receipts {
        serde_json::to_writer(&mut out, r).map_err(|e| DatasetError::Json {
            what: RECEIPTS_FILE.into(),
            why: e.to_string(),
        })?;
        out.push(b'\n');
        count += 1;
    }
    std::fs::write(&path, &out).map_err(|e| DatasetError::io(&path, e))?;
    Ok(FileEntry {
        path: RECEIPTS_FILE.to_string(),
        rows: count,
        bytes: out.len() as u64,
        blake3: Digest::of(&out),
    })
}
