//! Offline verification of a dataset directory: the manifest's signature, every file's size and
//! digest, every receipt's signature, and every row's node signature over its recomputed signing
//! bytes plus its receipt's verdict.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use arrow_array::{
    Array, BooleanArray, Int64Array, RecordBatch, StringArray, UInt16Array, UInt32Array,
    UInt64Array,
};
use gleaner_protocol::{
    Digest, PublicKey, Receipt, Record, RobotsVerdict, Signature, Verdict, verify_batch,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::manifest::{digest_file, safe_join};
use crate::par;
use crate::schema::{columns as c, with_iso_date};
use crate::{Failure, Manifest, Place, dump_label};

/// Rows decoded per Arrow batch while verifying (also the ed25519 batch-verification size).
const VERIFY_BATCH_ROWS: usize = 1_024;
/// Failures kept in the report by default; the rest are only counted, so a wholly corrupt
/// dataset cannot exhaust memory.
pub const DEFAULT_MAX_REPORTED_FAILURES: usize = 1_000;

/// What to check against.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Validator keys the lab trusts. Empty: any validator whose signatures verify (the report
    /// says the key was not pinned).
    pub trust: Vec<PublicKey>,
    /// Failures kept in the report (the total is always counted).
    pub max_reported_failures: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            trust: Vec::new(),
            max_reported_failures: DEFAULT_MAX_REPORTED_FAILURES,
        }
    }
}

/// The outcome of [`verify_dir`].
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub manifest: Option<Manifest>,
    /// Whether the manifest's validator is one of the trusted keys (false when none were given).
    pub validator_pinned: bool,
    pub files_checked: usize,
    pub receipts_checked: u64,
    pub rows_checked: u64,
    /// The first failures found, in order.
    pub failures: Vec<Failure>,
    /// All failures, including those not kept.
    pub failure_count: u64,
}

impl VerifyReport {
    /// No failure at all.
    pub fn is_ok(&self) -> bool {
        self.failure_count == 0
    }

    fn fail(&mut self, max: usize, place: Place, code: &'static str, detail: impl Into<String>) {
        self.failure_count += 1;
        if self.failures.len() < max {
            self.failures.push(Failure {
                place,
                code,
                detail: detail.into(),
            });
        }
    }
}

fn points_total_ok(r: &Receipt) -> Result<(), gleaner_protocol::ProtocolError> {
    let sum = r
        .verdicts
        .iter()
        .map(|v| v.points)
        .fold(0u64, u64::saturating_add);
    if sum == r.points {
        Ok(())
    } else {
        Err(gleaner_protocol::ProtocolError::CountMismatch {
            what: "receipt points",
            declared: r.points,
            actual: sum,
        })
    }
}

/// What a row needs from its batch's receipt.
struct ReceiptFacts {
    /// The receipt's signature, base58, as rows carry it.
    signature: String,
    node: PublicKey,
    epoch: u64,
    accepted: HashSet<Digest>,
    valid: bool,
}

/// Verifies the dataset in `dir`. Never stops at the first failure: every file and row is checked
/// and each failure is reported with its place (file, receipt line, or shard and row).
pub fn verify_dir(dir: &Path, opts: &VerifyOptions) -> VerifyReport {
    let max = opts.max_reported_failures;
    let mut report = VerifyReport::default();
    let manifest = match Manifest::read(dir) {
        Ok(m) => m,
        Err(e) => {
            report.fail(max, Place::Manifest, "bad_manifest", e.to_string());
            return report;
        }
    };
    if let Err(e) = manifest.verify_signature() {
        report.fail(
            max,
            Place::Manifest,
            "bad_manifest_signature",
            e.to_string(),
        );
    }
    report.validator_pinned = opts.trust.contains(&manifest.validator);
    if !opts.trust.is_empty() && !report.validator_pinned {
        report.fail(
            max,
            Place::Manifest,
            "untrusted_validator",
            format!(
                "signed by {}, which is not among the trusted keys",
                manifest.validator
            ),
        );
    }
    let shard_rows: u64 = manifest.shards.iter().map(|s| s.rows).sum();
    if shard_rows != manifest.rows {
        report.fail(
            max,
            Place::Manifest,
            "row_count_mismatch",
            format!(
                "manifest says {} rows, its shards {shard_rows}",
                manifest.rows
            ),
        );
    }

    for entry in manifest.files() {
        let place = Place::File {
            path: entry.path.clone(),
        };
        let path = match safe_join(dir, &entry.path) {
            Ok(p) => p,
            Err(e) => {
                report.fail(max, place, "unsafe_path", e.to_string());
                continue;
            }
        };
        report.files_checked += 1;
        match digest_file(&path) {
            Err(e) => report.fail(max, place, "file_unreadable", e.to_string()),
            Ok((digest, bytes)) => {
                if bytes != entry.bytes {
                    report.fail(
                        max,
                        place.clone(),
                        "size_mismatch",
                        format!("manifest says {} bytes, file has {bytes}", entry.bytes),
                    );
                }
                if digest != entry.blake3 {
                    report.fail(
                        max,
                        place,
                        "digest_mismatch",
                        format!("manifest says blake3 {}, file has {digest}", entry.blake3),
                    );
                }
            }
        }
    }

    let receipts = check_receipts(dir, &manifest, &mut report, max);
    check_shards(dir, &manifest, &receipts, &mut report, max);
    report.manifest = Some(manifest);
    report
}

fn check_receipts(
    dir: &Path,
    manifest: &Manifest,
    report: &mut VerifyReport,
    max: usize,
) -> HashMap<Digest, ReceiptFacts> {
    let mut facts = HashMap::new();
    let place = Place::File {
        path: manifest.receipts.path.clone(),
    };
    let text = match safe_join(dir, &manifest.receipts.path)
        .map_err(|e| e.to_string())
        .and_then(|p| std::fs::read_to_string(p).map_err(|e| e.to_string()))
    {
        Ok(t) => t,
        Err(e) => {
            report.fail(max, place, "receipts_unreadable", e);
            return facts;
        }
    };
    let mut parsed: Vec<(usize, Receipt)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let place = Place::Receipt { line: i + 1 };
        match serde_json::from_str::<Receipt>(line) {
            Ok(r) => {
                if r.validator != manifest.validator {
                    report.fail(
                        max,
                        place,
                        "foreign_receipt",
                        format!(
                            "signed by {}, manifest by {}",
                            r.validator, manifest.validator
                        ),
                    );
                    continue;
                }
                parsed.push((i + 1, r));
            }
            Err(e) => report.fail(max, place, "bad_receipt", e.to_string()),
        }
    }
    report.receipts_checked = parsed.len() as u64;
    if parsed.len() as u64 != manifest.receipts.rows {
        report.fail(
            max,
            place,
            "row_count_mismatch",
            format!(
                "manifest says {} receipts, file has {}",
                manifest.receipts.rows,
                parsed.len()
            ),
        );
    }
    let bytes: Vec<Vec<u8>> = parsed.iter().map(|(_, r)| r.signing_bytes()).collect();
    let items: Vec<(&PublicKey, &[u8], &Signature)> = parsed
        .iter()
        .zip(&bytes)
        .map(|((_, r), b)| (&r.validator, b.as_slice(), &r.signature))
        .collect();
    let all_ok = verify_batch(&items).is_ok();
    for (line, r) in parsed {
        // Batch verification covers the signatures; `verify` alone also checks the points total,
        // so it runs for every receipt only when the batch failed.
        let check = if all_ok {
            points_total_ok(&r)
        } else {
            r.verify()
        };
        let valid = check.is_ok();
        if !valid {
            let why = check.err().map(|e| e.to_string()).unwrap_or_default();
            report.fail(max, Place::Receipt { line }, "bad_receipt_signature", why);
        }
        let accepted = r
            .verdicts
            .iter()
            .filter(|v| v.verdict == Verdict::Accepted)
            .map(|v| v.record_id)
            .collect();
        facts.insert(
            r.batch_id,
            ReceiptFacts {
                signature: r.signature.to_string(),
                node: r.node,
                epoch: r.epoch,
                accepted,
                valid,
            },
        );
    }
    facts
}

/// The columns a row is rebuilt from.
struct Cols<'a> {
    text: &'a StringArray,
    id: &'a StringArray,
    dump: &'a StringArray,
    url: &'a StringArray,
    date: &'a StringArray,
    requested_url: &'a StringArray,
    lease_id: &'a StringArray,
    fetched_at_ms: &'a Int64Array,
    status: &'a UInt16Array,
    content_type: &'a StringArray,
    charset: &'a StringArray,
    wire_bytes: &'a UInt64Array,
    body_bytes: &'a UInt64Array,
    truncated: &'a BooleanArray,
    raw_digest: &'a StringArray,
    title: &'a StringArray,
    text_digest: &'a StringArray,
    language: &'a StringArray,
    robots: &'a StringArray,
    crawl_delay_ms: &'a UInt32Array,
    outlinks_digest: &'a StringArray,
    node: &'a StringArray,
    node_signature: &'a StringArray,
    batch_id: &'a StringArray,
    validator: &'a StringArray,
    receipt_signature: &'a StringArray,
    epoch: &'a UInt64Array,
}

fn col<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, String> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| format!("column `{name}` is missing"))?;
    if array.null_count() > 0 {
        return Err(format!("column `{name}` has nulls"));
    }
    array
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| format!("column `{name}` has type {}", array.data_type()))
}

impl<'a> Cols<'a> {
    fn of(b: &'a RecordBatch) -> Result<Self, String> {
        Ok(Cols {
            text: col(b, c::TEXT)?,
            id: col(b, c::ID)?,
            dump: col(b, c::DUMP)?,
            url: col(b, c::URL)?,
            date: col(b, c::DATE)?,
            requested_url: col(b, c::REQUESTED_URL)?,
            lease_id: col(b, c::LEASE_ID)?,
            fetched_at_ms: col(b, c::FETCHED_AT_MS)?,
            status: col(b, c::STATUS)?,
            content_type: col(b, c::CONTENT_TYPE)?,
            charset: col(b, c::CHARSET)?,
            wire_bytes: col(b, c::WIRE_BYTES)?,
            body_bytes: col(b, c::BODY_BYTES)?,
            truncated: col(b, c::TRUNCATED)?,
            raw_digest: col(b, c::RAW_DIGEST)?,
            title: col(b, c::TITLE)?,
            text_digest: col(b, c::TEXT_DIGEST)?,
            language: col(b, c::LANGUAGE)?,
            robots: col(b, c::ROBOTS)?,
            crawl_delay_ms: col(b, c::CRAWL_DELAY_MS)?,
            outlinks_digest: col(b, c::OUTLINKS_DIGEST)?,
            node: col(b, c::NODE)?,
            node_signature: col(b, c::NODE_SIGNATURE)?,
            batch_id: col(b, c::BATCH_ID)?,
            validator: col(b, c::VALIDATOR)?,
            receipt_signature: col(b, c::RECEIPT_SIGNATURE)?,
            epoch: col(b, c::EPOCH)?,
        })
    }

    /// Rebuilds the signed record of row `i` (empty outlinks, stored outlinks digest).
    fn record(&self, i: usize, nodes: &mut NodeCache) -> Result<Record, String> {
        let digest = |a: &StringArray, what: &str| {
            a.value(i)
                .parse::<Digest>()
                .map_err(|e| format!("{what}: {e}"))
        };
        let robots = match self.robots.value(i) {
            "allowed" => RobotsVerdict::Allowed,
            "unavailable" => RobotsVerdict::Unavailable,
            other => return Err(format!("robots: unknown verdict {other:?}")),
        };
        Ok(Record {
            lease_id: self.lease_id.value(i).to_string(),
            url: self.requested_url.value(i).to_string(),
            final_url: self.url.value(i).to_string(),
            fetched_at_ms: self.fetched_at_ms.value(i),
            status: self.status.value(i),
            content_type: self.content_type.value(i).to_string(),
            charset: self.charset.value(i).to_string(),
            wire_bytes: self.wire_bytes.value(i),
            body_bytes: self.body_bytes.value(i),
            truncated: self.truncated.value(i),
            raw_digest: digest(self.raw_digest, "raw_digest")?,
            title: self.title.value(i).to_string(),
            // The text itself is checked against the digest separately, without copying it.
            text: String::new(),
            lang: self.language.value(i).to_string(),
            text_digest: digest(self.text_digest, "text_digest")?,
            robots,
            crawl_delay_ms: self.crawl_delay_ms.value(i),
            outlinks: gleaner_protocol::Outlinks::new(),
            outlinks_digest: digest(self.outlinks_digest, "outlinks_digest")?,
            node: nodes.parse(self.node.value(i))?,
            signature: self
                .node_signature
                .value(i)
                .parse()
                .map_err(|e| format!("node_signature: {e}"))?,
        })
    }
}

/// What the reading thread hands on: shards are read (decompressed and decoded) in order on the
/// calling thread, and their batches are checked on worker threads.
enum Item {
    /// A decoded batch whose columns have the expected types, and its first row's index.
    Batch {
        shard: usize,
        row_base: u64,
        batch: RecordBatch,
    },
    /// The shard could not be opened or read further, or its columns are wrong; its remaining
    /// rows are not checked.
    Stop {
        place: Place,
        code: &'static str,
        detail: String,
    },
    /// The shard was read to the end: `rows` rows.
    End { shard: usize, rows: u64 },
}

/// A batch's outcome, in the order the checks ran.
enum Event {
    Fail {
        row: u64,
        code: &'static str,
        detail: String,
    },
    /// The row's record id, for the duplicate check (which spans batches and shards, so it runs
    /// on the consuming thread, in order).
    Seen { row: u64, id: Digest },
}

/// Checks what each item stands for, on the worker threads.
enum Outcome {
    Batch {
        shard: usize,
        rows: u64,
        events: Vec<Event>,
    },
    Stop {
        place: Place,
        code: &'static str,
        detail: String,
    },
    End {
        shard: usize,
        rows: u64,
    },
}

/// Reads the shards in manifest order, yielding their batches and how each shard ended.
fn shard_items<'a>(dir: &'a Path, manifest: &'a Manifest) -> impl Iterator<Item = Item> + 'a {
    manifest
        .shards
        .iter()
        .enumerate()
        .filter_map(move |(shard, entry)| Some((shard, entry, safe_join(dir, &entry.path).ok()?)))
        .flat_map(move |(shard, entry, path)| {
            let file_place = || Place::File {
                path: entry.path.clone(),
            };
            let reader = std::fs::File::open(&path)
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    ParquetRecordBatchReaderBuilder::try_new(f)
                        .and_then(|b| b.with_batch_size(VERIFY_BATCH_ROWS).build())
                        .map_err(|e| e.to_string())
                });
            let mut reader = match reader {
                Ok(r) => Some(r),
                Err(detail) => {
                    return Box::new(std::iter::once(Item::Stop {
                        place: file_place(),
                        code: "unreadable_shard",
                        detail,
                    })) as Box<dyn Iterator<Item = Item>>;
                }
            };
            let mut row_base = 0u64;
            Box::new(std::iter::from_fn(move || {
                let next = reader.as_mut()?.next();
                let item = match next {
                    None => Item::End {
                        shard,
                        rows: row_base,
                    },
                    Some(Err(e)) => Item::Stop {
                        place: Place::Row {
                            shard: entry.path.clone(),
                            row: row_base,
                        },
                        code: "unreadable_shard",
                        detail: e.to_string(),
                    },
                    Some(Ok(batch)) => match Cols::of(&batch) {
                        Err(detail) => Item::Stop {
                            place: file_place(),
                            code: "bad_schema",
                            detail,
                        },
                        Ok(_) => {
                            let item = Item::Batch {
                                shard,
                                row_base,
                                batch,
                            };
                            row_base += batch_rows(&item);
                            return Some(item);
                        }
                    },
                };
                reader = None;
                Some(item)
            }))
        })
}

fn batch_rows(item: &Item) -> u64 {
    match item {
        Item::Batch { batch, .. } => batch.num_rows() as u64,
        _ => 0,
    }
}

/// Checks every row of every shard: batches are checked in parallel, and their failures are
/// reported in shard and row order, as a sequential check would.
fn check_shards(
    dir: &Path,
    manifest: &Manifest,
    receipts: &HashMap<Digest, ReceiptFacts>,
    report: &mut VerifyReport,
    max: usize,
) {
    let validator = manifest.validator.to_string();
    let mut seen_ids = HashSet::new();
    let result: Result<(), std::convert::Infallible> = par::ordered(
        shard_items(dir, manifest),
        || Ok(()),
        |(), item| {
            Ok(match item {
                Item::Batch {
                    shard,
                    row_base,
                    batch,
                } => Outcome::Batch {
                    shard,
                    rows: batch.num_rows() as u64,
                    events: check_batch(&batch, row_base, &validator, receipts),
                },
                Item::Stop {
                    place,
                    code,
                    detail,
                } => Outcome::Stop {
                    place,
                    code,
                    detail,
                },
                Item::End { shard, rows } => Outcome::End { shard, rows },
            })
        },
        |outcome| {
            match outcome {
                Outcome::Batch {
                    shard,
                    rows,
                    events,
                } => {
                    let path = manifest.shards.get(shard).map_or("", |e| e.path.as_str());
                    let place = |row| Place::Row {
                        shard: path.to_string(),
                        row,
                    };
                    for event in events {
                        match event {
                            Event::Fail { row, code, detail } => {
                                report.fail(max, place(row), code, detail);
                            }
                            Event::Seen { row, id } => {
                                if !seen_ids.insert(id) {
                                    report.fail(
                                        max,
                                        place(row),
                                        "duplicate_row",
                                        format!("record {id} appears twice"),
                                    );
                                }
                            }
                        }
                    }
                    report.rows_checked += rows;
                }
                Outcome::Stop {
                    place,
                    code,
                    detail,
                } => report.fail(max, place, code, detail),
                Outcome::End { shard, rows } => {
                    if let Some(entry) = manifest.shards.get(shard)
                        && rows != entry.rows
                    {
                        report.fail(
                            max,
                            Place::File {
                                path: entry.path.clone(),
                            },
                            "row_count_mismatch",
                            format!("manifest says {} rows, shard has {rows}", entry.rows),
                        );
                    }
                }
            }
            Ok(())
        },
    );
    if let Err(never) = result {
        match never {}
    }
}

/// Checks every row of one batch (everything but duplicates across batches); returns the
/// failures and record ids in check order.
fn check_batch(
    batch: &RecordBatch,
    row_base: u64,
    validator: &str,
    receipts: &HashMap<Digest, ReceiptFacts>,
) -> Vec<Event> {
    let mut events = Vec::new();
    let cols = match Cols::of(batch) {
        Ok(c) => c,
        Err(detail) => {
            // The reading thread checked the columns already; kept for robustness.
            events.push(Event::Fail {
                row: row_base,
                code: "bad_schema",
                detail,
            });
            return events;
        }
    };
    let mut nodes = NodeCache::default();
    // (row index, record, signing bytes) of rows whose non-signature checks passed.
    let mut signed: Vec<(u64, Record, Vec<u8>)> = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let row = row_base + i as u64;
        let mut fail = |code, detail: String| events.push(Event::Fail { row, code, detail });
        let record = match cols.record(i, &mut nodes) {
            Ok(r) => r,
            Err(e) => {
                fail("bad_encoding", e);
                continue;
            }
        };
        let text_digest = Digest::of(cols.text.value(i).as_bytes());
        if text_digest != record.text_digest {
            fail(
                "text_digest_mismatch",
                format!(
                    "text hashes to {text_digest}, row says {}",
                    record.text_digest
                ),
            );
            continue;
        }
        let bytes = record.signing_bytes();
        let id = Digest::of_canonical(&bytes);
        if !hex_eq(cols.id.value(i), &id) {
            fail(
                "id_mismatch",
                format!("row says id {}, its fields give {id}", cols.id.value(i)),
            );
            continue;
        }
        events.push(Event::Seen { row, id });
        let epoch = cols.epoch.value(i);
        if cols.dump.value(i) != dump_label(epoch)
            || with_iso_date(record.fetched_at_ms, |s| cols.date.value(i) != s)
        {
            events.push(Event::Fail {
                row,
                code: "derived_column_mismatch",
                detail: "`dump` or `date` disagrees with `epoch` or `fetched_at_ms`".to_string(),
            });
        }
        if let Err((code, detail)) = check_receipt(&cols, i, &id, &record, validator, receipts) {
            events.push(Event::Fail { row, code, detail });
            continue;
        }
        signed.push((row, record, bytes));
    }
    let items: Vec<(&PublicKey, &[u8], &Signature)> = signed
        .iter()
        .map(|(_, r, b)| (&r.node, b.as_slice(), &r.signature))
        .collect();
    if verify_batch(&items).is_err() {
        for (row, r, b) in &signed {
            if let Err(e) = r.node.verify(b, &r.signature, "record") {
                events.push(Event::Fail {
                    row: *row,
                    code: "bad_record_signature",
                    detail: e.to_string(),
                });
            }
        }
    }
    events
}

/// Whether `text` is `digest` in lowercase hex (as `Digest`'s `Display` prints it), without
/// allocating.
fn hex_eq(text: &str, digest: &Digest) -> bool {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let text = text.as_bytes();
    text.len() == 64
        && digest.as_bytes().iter().enumerate().all(|(k, b)| {
            text.get(2 * k) == HEX.get(usize::from(b >> 4))
                && text.get(2 * k + 1) == HEX.get(usize::from(b & 0xf))
        })
}

/// The last node key parsed: rows of a batch mostly come from few nodes, and base58 decoding is
/// slow.
#[derive(Default)]
struct NodeCache {
    last: Option<(String, PublicKey)>,
}

impl NodeCache {
    fn parse(&mut self, text: &str) -> Result<PublicKey, String> {
        if let Some((t, key)) = &self.last
            && t == text
        {
            return Ok(*key);
        }
        let key: PublicKey = text.parse().map_err(|e| format!("node: {e}"))?;
        self.last = Some((text.to_string(), key));
        Ok(key)
    }
}

/// The row's receipt exists, is valid, is the one the row names, and lists the record as accepted.
fn check_receipt(
    cols: &Cols<'_>,
    i: usize,
    id: &Digest,
    record: &Record,
    validator: &str,
    receipts: &HashMap<Digest, ReceiptFacts>,
) -> Result<(), (&'static str, String)> {
    if cols.validator.value(i) != validator {
        return Err((
            "foreign_validator",
            format!("row names validator {}", cols.validator.value(i)),
        ));
    }
    let batch_id: Digest = cols
        .batch_id
        .value(i)
        .parse()
        .map_err(|e| ("bad_encoding", format!("batch_id: {e}")))?;
    let facts = receipts.get(&batch_id).ok_or_else(|| {
        (
            "missing_receipt",
            format!("no receipt for batch {batch_id}"),
        )
    })?;
    if !facts.valid {
        return Err((
            "bad_receipt_signature",
            format!("the receipt for batch {batch_id} does not verify"),
        ));
    }
    if cols.receipt_signature.value(i) != facts.signature {
        return Err((
            "receipt_signature_mismatch",
            format!("row's receipt signature differs from batch {batch_id}'s receipt"),
        ));
    }
    if facts.node != record.node {
        return Err((
            "receipt_node_mismatch",
            format!("receipt for batch {batch_id} is for node {}", facts.node),
        ));
    }
    if facts.epoch != cols.epoch.value(i) {
        return Err((
            "epoch_mismatch",
            format!(
                "row says epoch {}, receipt {}",
                cols.epoch.value(i),
                facts.epoch
            ),
        ));
    }
    if !facts.accepted.contains(id) {
        return Err((
            "not_accepted",
            format!("receipt for batch {batch_id} does not accept record {id}"),
        ));
    }
    Ok(())
}
