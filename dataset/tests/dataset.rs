//! Export → third-party readers, determinism, verification and tampering, over real signed data.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use gleaner_dataset::fixtures::{sample, validator_key, with_token_counts};
use gleaner_dataset::{
    ExportConfig, ExportInput, ExportWriter, Manifest, Place, VerifyOptions, export, list_datasets,
    verify_dir,
};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const ROWS: usize = 2_500;

fn export_sample(dir: &Path, rows: usize) -> Manifest {
    let mut config = ExportConfig::new(dir);
    // Small shards so the sample spans several files per epoch.
    config.shard_max_bytes = 200 * 1024;
    export(sample(rows, 1_500), &validator_key(), &config)
        .unwrap()
        .manifest
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn third_party_readers_read_the_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gleaner-sample");
    let manifest = export_sample(&dir, ROWS);
    assert_eq!(manifest.rows, ROWS as u64);
    assert!(
        manifest.shards.len() >= 3,
        "{} shards",
        manifest.shards.len()
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/read_shards.py");
    let out = match Command::new("python3").arg(&script).arg(&dir).output() {
        Ok(o) => o,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: python3 not available ({e}); CI installs it");
            return;
        }
        Err(e) => panic!("python3 is required under CI: {e}"),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{v}");
    let ci = std::env::var_os("CI").is_some();
    for reader in ["pyarrow_rows", "duckdb_rows", "datasets_rows"] {
        if v[reader] == "missing" {
            assert!(
                !ci,
                "{reader}: the Python module must be installed under CI"
            );
            eprintln!(
                "SKIPPED {reader}: module not installed (pip install pyarrow duckdb datasets)"
            );
            continue;
        }
        assert_eq!(v[reader], ROWS, "{reader}");
    }
    if v["pyarrow_rows"] != "missing" {
        assert_eq!(v["files"], manifest.shards.len());
        assert_eq!(v["compression"], "ZSTD");
        assert_eq!(
            v["pyarrow_page_index"], true,
            "every column has an offset index"
        );
        let indexed: Vec<&str> = v["pyarrow_column_index"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        for col in ["id", "url", "date", "language", "token_count", "epoch"] {
            assert!(
                indexed.contains(&col),
                "{col} lacks a column index: {indexed:?}"
            );
        }
        for col in ["text", "node_signature"] {
            assert!(!indexed.contains(&col), "{col} should carry no statistics");
        }
        let schema = v["pyarrow_schema"].as_array().unwrap();
        let names: Vec<&str> = schema.iter().map(|f| f["name"].as_str().unwrap()).collect();
        assert_eq!(
            &names[..9],
            &[
                "text",
                "id",
                "dump",
                "url",
                "date",
                "file_path",
                "language",
                "language_score",
                "token_count"
            ]
        );
        let ty = |n: &str| {
            schema.iter().find(|f| f["name"] == n).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(ty("text"), "string");
        assert_eq!(ty("language_score"), "double");
        assert_eq!(ty("token_count"), "int64");
        assert!(
            ty("quality").starts_with("list<item: struct<name: string"),
            "{}",
            ty("quality")
        );
    }
    if v["duckdb_rows"] != "missing" {
        assert!(v["duckdb_tokens"].as_i64().unwrap() > ROWS as i64 * 200);
        assert_eq!(
            v["duckdb_dumps"],
            serde_json::json!([
                "gleaner-epoch-000001",
                "gleaner-epoch-000002",
                "gleaner-epoch-000003"
            ])
        );
    }
    if v["datasets_rows"] != "missing" {
        assert_eq!(v["datasets_parquet_rows"], ROWS);
        assert!(v["datasets_features"].as_array().unwrap().len() >= 33);
    }
}

#[test]
fn exports_are_byte_identical_and_order_independent() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a").join("ds");
    let b = tmp.path().join("b").join("ds");
    export_sample(&a, 700);
    let mut input = sample(700, 1_500);
    input.rows.reverse();
    input.receipts.reverse();
    // Duplicates are dropped, not exported twice.
    let dup = input.rows[3].clone();
    input.rows.push(dup);
    let mut config = ExportConfig::new(&b);
    config.shard_max_bytes = 200 * 1024;
    let summary = export(input, &validator_key(), &config).unwrap();
    assert_eq!(summary.duplicates_dropped, 1);
    let fa = files_under(&a);
    let fb = files_under(&b);
    assert_eq!(fa.len(), fb.len());
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(x.strip_prefix(&a).unwrap(), y.strip_prefix(&b).unwrap());
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{} differs",
            x.display()
        );
    }
    // Re-exporting over an existing dataset replaces it atomically with the same bytes.
    let again = export_sample(&a, 700);
    assert_eq!(again, Manifest::read(&b).unwrap());
    assert_eq!(list_datasets(&tmp.path().join("a")).unwrap().len(), 1);
}

/// Rows sorted as an export orders them: by epoch, then record id.
fn in_export_order(mut input: ExportInput) -> ExportInput {
    input.rows.sort_by_cached_key(|r| (r.epoch, r.record.id()));
    input
}

/// The rows `rows` of `all` as a piece, with the receipts of their batches only.
fn piece(all: &ExportInput, rows: std::ops::Range<usize>) -> ExportInput {
    let rows = all.rows[rows].to_vec();
    let receipts = all
        .receipts
        .iter()
        .filter(|r| rows.iter().any(|row| row.batch_id == r.batch_id))
        .cloned()
        .collect();
    ExportInput { rows, receipts }
}

/// The validator streams its records into an `ExportWriter` in pieces. Wherever the pieces are
/// cut (inside a row group, inside a shard, at an epoch's end, between a row and its duplicate),
/// the files equal one export of all the rows, JSON Lines copies included.
#[test]
fn an_export_written_in_pieces_equals_one_export() {
    let tmp = tempfile::tempdir().unwrap();
    let mut input = sample(2_500, 1_500);
    // Epoch 2's rows moved into epoch 1, so one epoch spans two full row groups of 1,000 rows.
    // (Their receipts still say epoch 2, which `verify` would report; this test is about bytes.)
    for row in &mut input.rows {
        if row.epoch == 2 {
            row.epoch = 1;
        }
    }
    let mut input = in_export_order(input);
    // A duplicate right after its original: the cut below falls between them.
    let dup = input.rows[1_200].clone();
    input.rows.insert(1_201, dup);
    let config = |dir: &Path| {
        let mut config = ExportConfig::new(dir);
        config.shard_max_bytes = 200 * 1024;
        config.jsonl = true;
        config
    };
    let whole_dir = tmp.path().join("whole").join("ds");
    let whole = export(input.clone(), &validator_key(), &config(&whole_dir)).unwrap();
    assert_eq!(whole.duplicates_dropped, 1);

    let pieces_dir = tmp.path().join("pieces").join("ds");
    let key = validator_key();
    let mut writer = ExportWriter::create(&key, config(&pieces_dir)).unwrap();
    let mut start = 0;
    for size in [1, 998, 3, 197, 2, 1_000, 0, 37].into_iter().cycle() {
        let end = (start + size).min(input.rows.len());
        writer.add(piece(&input, start..end)).unwrap();
        start = end;
        if start == input.rows.len() {
            break;
        }
    }
    let pieces = writer.finish().unwrap();
    assert_eq!(pieces.duplicates_dropped, 1);
    assert_eq!(pieces.manifest, whole.manifest);
    let (fa, fb) = (files_under(&whole_dir), files_under(&pieces_dir));
    assert_eq!(fa.len(), fb.len());
    assert!(fa.len() > 6, "several shards and JSON Lines copies: {fa:?}");
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(
            x.strip_prefix(&whole_dir).unwrap(),
            y.strip_prefix(&pieces_dir).unwrap()
        );
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{} differs",
            y.display()
        );
    }
}

/// The counts the writer makes for rows that came without one are handed back (by record id)
/// as row groups are written: each exactly once, between `take_counted` after the pieces and
/// `ExportSummary::counted` at the end, equal to a fresh counter's, and none for a row whose
/// count was given. The validator stores them so its next export counts nothing.
#[test]
fn the_writer_hands_back_each_count_it_made_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut input = in_export_order(sample(2_500, 300));
    let mut counter = gleaner_dataset::TokenCounter::new().unwrap();
    for row in input.rows.iter_mut().step_by(3) {
        row.token_count = Some(counter.count(&row.record.text));
    }
    let key = validator_key();
    let mut writer = ExportWriter::create(&key, ExportConfig::new(tmp.path().join("ds"))).unwrap();
    let mut handed = Vec::new();
    let mut takes_with_counts = 0;
    let mut start = 0;
    while start < input.rows.len() {
        let end = (start + 700).min(input.rows.len());
        writer.add(piece(&input, start..end)).unwrap();
        let taken = writer.take_counted();
        takes_with_counts += usize::from(!taken.is_empty());
        handed.extend(taken);
        start = end;
    }
    assert!(
        takes_with_counts >= 1,
        "counts come back before the export ends"
    );
    let summary = writer.finish().unwrap();
    assert!(!summary.counted.is_empty(), "the last row groups' counts");
    handed.extend(summary.counted);

    let expected: std::collections::HashMap<_, _> = input
        .rows
        .iter()
        .filter(|r| r.token_count.is_none())
        .map(|r| (r.record.id(), counter.count(&r.record.text)))
        .collect();
    assert_eq!(handed.len(), expected.len(), "each uncounted row once");
    for (id, n) in &handed {
        assert_eq!(expected.get(id), Some(n), "row {id}");
    }
}

/// A piece holding a row that sorts before rows already added is refused with a reason code;
/// a writer dropped unfinished leaves the dataset already in place as it was, and no files.
#[test]
fn a_piece_out_of_order_is_refused_and_an_unfinished_export_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let before = export_sample(&dir, 300);
    let input = in_export_order(sample(300, 1_500));
    let key = validator_key();
    let mut writer = ExportWriter::create(&key, ExportConfig::new(&dir)).unwrap();
    writer.add(piece(&input, 150..300)).unwrap();
    let err = writer.add(piece(&input, 0..150)).unwrap_err();
    assert_eq!(err.code(), "export_out_of_order");
    let message = err.to_string();
    assert!(message.contains("out of order"), "{message}");
    drop(writer);
    assert_eq!(Manifest::read(&dir).unwrap(), before);

    // A row whose batch's receipt came with no piece so far is refused; so is a receipt signed
    // by another validator. A receipt given with an earlier piece serves the later ones.
    let mut writer = ExportWriter::create(&key, ExportConfig::new(&dir)).unwrap();
    // One row, so one batch's receipt.
    writer.add(piece(&input, 0..1)).unwrap();
    let given = [input.rows[0].batch_id];
    let later = input.rows[1..]
        .iter()
        .position(|r| given.contains(&r.batch_id))
        .unwrap()
        + 1;
    let no_receipts = |rows: std::ops::Range<usize>| ExportInput {
        rows: input.rows[rows].to_vec(),
        receipts: Vec::new(),
    };
    writer.add(no_receipts(later..later + 1)).unwrap();
    let orphan = input.rows[later + 1..]
        .iter()
        .position(|r| !given.contains(&r.batch_id))
        .unwrap()
        + later
        + 1;
    let err = writer.add(no_receipts(orphan..orphan + 1)).unwrap_err();
    assert_eq!(err.code(), "missing_receipt");
    let mut foreign = piece(&input, orphan + 1..orphan + 2);
    foreign.receipts[0].validator = gleaner_protocol::SecretKey::from_bytes(&[0xee; 32]).public();
    let err = writer.add(foreign).unwrap_err();
    assert_eq!(err.code(), "foreign_receipt");
    drop(writer);
    assert_eq!(Manifest::read(&dir).unwrap(), before);
    assert!(verify_dir(&dir, &VerifyOptions::default()).is_ok());
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("ds")]);
}

/// Rows the validator counted at acceptance carry their token counts: the export writes them as
/// given and counts only the rows without one, so correct counts give the same bytes as counting.
#[test]
fn token_counts_given_with_the_rows_are_written_as_given() {
    let tmp = tempfile::tempdir().unwrap();
    let counted = tmp.path().join("counted");
    export_sample(&counted, 300);
    let given = tmp.path().join("given");
    let mut input = with_token_counts(sample(300, 1_500)).unwrap();
    // Half the rows without a count: those are counted during the export.
    for row in input.rows.iter_mut().step_by(2) {
        row.token_count = None;
    }
    let mut config = ExportConfig::new(&given);
    config.shard_max_bytes = 200 * 1024;
    export(input, &validator_key(), &config).unwrap();
    let (fa, fb) = (files_under(&counted), files_under(&given));
    assert_eq!(fa.len(), fb.len());
    for (x, y) in fa.iter().zip(&fb) {
        if x.file_name()
            .is_some_and(|n| n == "manifest.json" || n == "README.md")
        {
            continue; // they name the dataset, whose directory names differ
        }
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{} differs",
            x.display()
        );
    }

    // A given count is the validator's word and is not recomputed.
    let seven = tmp.path().join("seven");
    let mut input = sample(40, 1_500);
    for row in &mut input.rows {
        row.token_count = Some(7);
    }
    let manifest = export(input, &validator_key(), &ExportConfig::new(&seven))
        .unwrap()
        .manifest;
    let shard = seven.join(&manifest.shards[0].path);
    for row in 0..manifest.shards[0].rows as usize {
        assert_eq!(cell(&shard, "token_count", row), "7");
    }
}

#[test]
fn an_intact_dataset_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let manifest = export_sample(&dir, 1_200);
    let opts = VerifyOptions {
        trust: vec![validator_key().public()],
        ..VerifyOptions::default()
    };
    let report = verify_dir(&dir, &opts);
    assert!(report.is_ok(), "{:?}", report.failures);
    assert!(report.validator_pinned);
    assert_eq!(report.rows_checked, 1_200);
    assert_eq!(report.receipts_checked, 12);
    assert_eq!(report.files_checked, manifest.shards.len() + 2);

    // Another validator's key is not trusted.
    let other = gleaner_protocol::SecretKey::from_bytes(&[1; 32]).public();
    let report = verify_dir(
        &dir,
        &VerifyOptions {
            trust: vec![other],
            ..opts
        },
    );
    assert!(has(
        &report.failures,
        &Place::Manifest,
        "untrusted_validator"
    ));
}

fn has(failures: &[gleaner_dataset::Failure], place: &Place, code: &str) -> bool {
    failures.iter().any(|f| &f.place == place && f.code == code)
}

/// Rewrites one string cell of a shard (a forger editing a row), keeping everything else.
fn rewrite_cell(path: &Path, column: &str, row: usize, value: impl Fn(&str) -> String) {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let schema = batches[0].schema();
    let out = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(out, schema.clone(), None).unwrap();
    let mut base = 0;
    for batch in batches {
        let n = batch.num_rows();
        let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
        if (base..base + n).contains(&row) {
            let idx = schema.index_of(column).unwrap();
            let old = cols[idx].as_any().downcast_ref::<StringArray>().unwrap();
            let new: StringArray = (0..old.len())
                .map(|i| {
                    if base + i == row {
                        value(old.value(i))
                    } else {
                        old.value(i).to_string()
                    }
                })
                .map(Some)
                .collect();
            cols[idx] = Arc::new(new);
        }
        writer
            .write(&RecordBatch::try_new(schema.clone(), cols).unwrap())
            .unwrap();
        base += n;
    }
    writer.close().unwrap();
}

/// One cell of a string or 64-bit integer column, as text.
fn cell(path: &Path, column: &str, row: usize) -> String {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut base = 0;
    for batch in reader {
        let batch = batch.unwrap();
        if row < base + batch.num_rows() {
            let col = batch.column_by_name(column).unwrap().as_any();
            if let Some(strings) = col.downcast_ref::<StringArray>() {
                return strings.value(row - base).to_string();
            }
            let ints = col
                .downcast_ref::<Int64Array>()
                .unwrap_or_else(|| panic!("{column} is neither strings nor int64"));
            return ints.value(row - base).to_string();
        }
        base += batch.num_rows();
    }
    panic!("no row {row}");
}

/// Repeating columns are dictionary-encoded, unique ones plain; a misspelt column path in the
/// writer's settings would silently fall back to the default, so this reads the encodings back.
#[test]
fn repeating_columns_are_dictionary_encoded() {
    use parquet::basic::Encoding;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let manifest = export_sample(&dir, 300);
    let shard = dir.join(&manifest.shards[0].path);
    let reader = SerializedFileReader::new(std::fs::File::open(&shard).unwrap()).unwrap();
    let group = reader.metadata().row_group(0);
    let dictionary = |path: &str| {
        let column = group
            .columns()
            .iter()
            .find(|c| c.column_path().string() == path)
            .unwrap_or_else(|| panic!("no column {path}"));
        column.encodings().any(|e| e == Encoding::RLE_DICTIONARY)
    };
    for path in ["dump", "node", "batch_id", "quality.list.item.name"] {
        assert!(dictionary(path), "{path} should be dictionary-encoded");
    }
    for path in ["text", "id", "node_signature", "quality.list.item.score"] {
        assert!(!dictionary(path), "{path} should be plain");
    }
}

#[test]
fn tampering_is_detected_and_located() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let manifest = export_sample(&dir, 1_000);
    let opts = VerifyOptions::default();
    let shard = manifest.shards[0].path.clone();
    let shard_path = dir.join(&shard);
    let pristine = std::fs::read(&shard_path).unwrap();

    // 1. One flipped byte in a shard.
    let mut bytes = pristine.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&shard_path, &bytes).unwrap();
    let report = verify_dir(&dir, &opts);
    assert!(!report.is_ok());
    assert!(
        has(
            &report.failures,
            &Place::File {
                path: shard.clone()
            },
            "digest_mismatch"
        ),
        "{:?}",
        report.failures
    );
    std::fs::write(&shard_path, &pristine).unwrap();
    assert!(verify_dir(&dir, &opts).is_ok());

    // 2. A row's text, edited: the shard's digest and the row's text digest both fail.
    rewrite_cell(&shard_path, "text", 5, |t| t.replace("the", "a"));
    let report = verify_dir(&dir, &opts);
    assert!(has(
        &report.failures,
        &Place::File {
            path: shard.clone()
        },
        "digest_mismatch"
    ));
    let row5 = Place::Row {
        shard: shard.clone(),
        row: 5,
    };
    assert!(
        has(&report.failures, &row5, "text_digest_mismatch"),
        "{:?}",
        report.failures
    );
    assert_eq!(
        report
            .failures
            .iter()
            .filter(|f| matches!(f.place, Place::Row { .. }))
            .count(),
        1
    );
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.to_string().contains(&format!("{shard} row 5")))
    );
    std::fs::write(&shard_path, &pristine).unwrap();

    // 3. A row's node signature swapped for another row's.
    let other_sig = cell(&shard_path, "node_signature", 8);
    rewrite_cell(&shard_path, "node_signature", 7, |_| other_sig.clone());
    let report = verify_dir(&dir, &opts);
    let row7 = Place::Row {
        shard: shard.clone(),
        row: 7,
    };
    assert!(
        has(&report.failures, &row7, "bad_record_signature"),
        "{:?}",
        report.failures
    );
    std::fs::write(&shard_path, &pristine).unwrap();

    // 4. A signed field (title) changed without touching the signature: the id no longer matches.
    rewrite_cell(&shard_path, "title", 9, |t| format!("{t}!"));
    let report = verify_dir(&dir, &opts);
    let row9 = Place::Row {
        shard: shard.clone(),
        row: 9,
    };
    assert!(
        has(&report.failures, &row9, "id_mismatch"),
        "{:?}",
        report.failures
    );
    std::fs::write(&shard_path, &pristine).unwrap();

    // 5. The manifest, edited (a forger hiding a shard's new digest).
    let manifest_path = dir.join("manifest.json");
    let original = std::fs::read_to_string(&manifest_path).unwrap();
    let mut m: Manifest = serde_json::from_str(&original).unwrap();
    m.shards[0].bytes += 1;
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let report = verify_dir(&dir, &opts);
    assert!(has(
        &report.failures,
        &Place::Manifest,
        "bad_manifest_signature"
    ));
    std::fs::write(&manifest_path, &original).unwrap();

    // 6. A receipt, edited: its signature fails, and so does every row of its batch.
    let receipts_path = dir.join("receipts.jsonl");
    let original = std::fs::read_to_string(&receipts_path).unwrap();
    let mut lines: Vec<String> = original.lines().map(str::to_string).collect();
    let mut r: gleaner_protocol::Receipt = serde_json::from_str(&lines[1]).unwrap();
    r.issued_at_ms += 1;
    lines[1] = serde_json::to_string(&r).unwrap();
    std::fs::write(&receipts_path, lines.join("\n") + "\n").unwrap();
    let report = verify_dir(&dir, &opts);
    assert!(has(
        &report.failures,
        &Place::Receipt { line: 2 },
        "bad_receipt_signature"
    ));
    assert_eq!(
        report
            .failures
            .iter()
            .filter(|f| f.code == "bad_receipt_signature")
            .count(),
        101,
        "the receipt and its 100 rows"
    );
    std::fs::write(&receipts_path, &original).unwrap();
    assert!(verify_dir(&dir, &opts).is_ok());

    // 7. A missing manifest is a failure, not a panic.
    std::fs::remove_file(&manifest_path).unwrap();
    let report = verify_dir(&dir, &opts);
    assert!(has(&report.failures, &Place::Manifest, "bad_manifest"));
}

/// The lines of a `.jsonl.zst` file.
fn jsonl_lines(path: &Path) -> Vec<String> {
    let bytes = zstd::decode_all(std::fs::File::open(path).unwrap()).unwrap();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn jsonl_rows(path: &Path) -> Vec<serde_json::Value> {
    jsonl_lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn jsonl_copies_hold_the_shards_rows_are_signed_and_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let export_with_jsonl = |dir: &Path| {
        let mut config = ExportConfig::new(dir);
        config.shard_max_bytes = 200 * 1024;
        config.jsonl = true;
        export(sample(900, 1_500), &validator_key(), &config)
            .unwrap()
            .manifest
    };
    let dir = tmp.path().join("a").join("ds");
    let manifest = export_with_jsonl(&dir);
    assert_eq!(manifest.jsonl.len(), manifest.shards.len());
    let columns: Vec<String> = gleaner_dataset::arrow_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut total = 0;
    for (shard, jsonl) in manifest.shards.iter().zip(&manifest.jsonl) {
        assert!(jsonl.path.starts_with("jsonl/") && jsonl.path.ends_with(".jsonl.zst"));
        let rows = jsonl_rows(&dir.join(&jsonl.path));
        assert_eq!(rows.len() as u64, shard.rows);
        // The Parquet columns, under the same names and in the same order (a quote inside a
        // string value is escaped, so `,"name":` only matches keys).
        let mut keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
        let mut expected: Vec<&String> = columns.iter().collect();
        keys.sort();
        expected.sort();
        assert_eq!(keys, expected);
        let raw = jsonl_lines(&dir.join(&jsonl.path)).swap_remove(0);
        let at: Vec<usize> = columns
            .iter()
            .skip(1)
            .map(|c| {
                raw.find(&format!(",\"{c}\":"))
                    .unwrap_or_else(|| panic!("no {c}"))
            })
            .collect();
        assert!(raw.starts_with("{\"text\":"));
        assert!(
            at.windows(2).all(|w| w[0] < w[1]),
            "fields out of order: {raw}"
        );
        assert_eq!(jsonl.rows, shard.rows);
        // Same rows, same order, same values as the Parquet shard.
        for i in [0, rows.len() / 2, rows.len() - 1] {
            for col in ["id", "text", "url", "node_signature", "receipt_signature"] {
                assert_eq!(
                    rows[i][col].as_str().unwrap(),
                    cell(&dir.join(&shard.path), col, i),
                    "{} row {i} {col}",
                    jsonl.path
                );
            }
            assert!(rows[i]["token_count"].as_u64().unwrap() > 0);
            assert_eq!(
                rows[i]["token_count"].to_string(),
                cell(&dir.join(&shard.path), "token_count", i),
                "{} row {i} token_count",
                jsonl.path
            );
        }
        total += rows.len();
    }
    assert_eq!(total, 900);
    let card = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        card.contains("jsonl/"),
        "the card names the JSON Lines files"
    );
    assert!(
        card.contains("gleaner dataset revoked . --validator"),
        "the card tells a lab how to find rows revoked since the export"
    );

    // Verified with the rest, and covered by the manifest's signature.
    let report = verify_dir(&dir, &VerifyOptions::default());
    assert!(report.is_ok(), "{:?}", report.failures);
    assert_eq!(report.files_checked, manifest.shards.len() * 2 + 2);
    let mut forged = Manifest::read(&dir).unwrap();
    forged.jsonl.pop();
    assert!(
        forged.verify_signature().is_err(),
        "dropping a file breaks the signature"
    );

    // Deterministic: a second export is byte-identical.
    let again = tmp.path().join("b").join("ds");
    export_with_jsonl(&again);
    for x in files_under(&dir) {
        let y = again.join(x.strip_prefix(&dir).unwrap());
        assert!(
            std::fs::read(&x).unwrap() == std::fs::read(&y).unwrap(),
            "{} differs",
            x.display()
        );
    }

    // A changed byte in a JSON Lines file is caught and named.
    let victim = dir.join(&manifest.jsonl[0].path);
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&victim, bytes).unwrap();
    let report = verify_dir(&dir, &VerifyOptions::default());
    assert!(
        has(
            &report.failures,
            &Place::File {
                path: manifest.jsonl[0].path.clone()
            },
            "digest_mismatch"
        ),
        "{:?}",
        report.failures
    );
}
