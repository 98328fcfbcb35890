//! The row schema: FineWeb's columns, then every signed field of the record and the receipt's
//! attestation, so that one row verifies alone.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema};
use gleaner_protocol::{Digest, Record};

/// Column names, in file order. FineWeb's nine columns come first, with FineWeb's names and types.
pub mod columns {
    /// Cleaned main text (record `text`).
    pub const TEXT: &str = "text";
    /// Record id: blake3 of the record's signing bytes, lowercase hex.
    pub const ID: &str = "id";
    /// Epoch label, `gleaner-epoch-NNNNNN` (our analogue of a Common Crawl dump).
    pub const DUMP: &str = "dump";
    /// The URL the text came from: the record's `final_url` (after redirects).
    pub const URL: &str = "url";
    /// Fetch time, ISO 8601 UTC with second precision (`2026-11-24T18:54:05Z`).
    pub const DATE: &str = "date";
    /// The batch that delivered the record, `gleaner:batch:<hex>`.
    pub const FILE_PATH: &str = "file_path";
    /// ISO 639-1 code signed by the node (`und` when unknown).
    pub const LANGUAGE: &str = "language";
    /// The validator's language confidence in [0, 1] when it scored one, else null.
    pub const LANGUAGE_SCORE: &str = "language_score";
    /// GPT-2 (r50k_base) token count of `text`.
    pub const TOKEN_COUNT: &str = "token_count";
    /// The URL the node was asked to fetch (record `url`).
    pub const REQUESTED_URL: &str = "requested_url";
    pub const LEASE_ID: &str = "lease_id";
    /// Unix milliseconds UTC (exact; `date` is this, rounded down to the second).
    pub const FETCHED_AT_MS: &str = "fetched_at_ms";
    pub const STATUS: &str = "status";
    pub const CONTENT_TYPE: &str = "content_type";
    pub const CHARSET: &str = "charset";
    pub const WIRE_BYTES: &str = "wire_bytes";
    pub const BODY_BYTES: &str = "body_bytes";
    pub const TRUNCATED: &str = "truncated";
    /// blake3 of the decoded raw body, hex.
    pub const RAW_DIGEST: &str = "raw_digest";
    pub const TITLE: &str = "title";
    /// blake3 of `text`, hex.
    pub const TEXT_DIGEST: &str = "text_digest";
    /// robots.txt verdict: `allowed` or `unavailable`.
    pub const ROBOTS: &str = "robots";
    pub const CRAWL_DELAY_MS: &str = "crawl_delay_ms";
    /// Digest of the (not shipped) outlinks, hex.
    pub const OUTLINKS_DIGEST: &str = "outlinks_digest";
    /// The node's public key, base58.
    pub const NODE: &str = "node";
    /// The node's ed25519 signature over the record's signing bytes, base58.
    pub const NODE_SIGNATURE: &str = "node_signature";
    /// Id of the batch that carried the record, hex.
    pub const BATCH_ID: &str = "batch_id";
    /// The validator's public key, base58.
    pub const VALIDATOR: &str = "validator";
    /// The validator's signature on the batch's receipt (full receipt in `receipts.jsonl`), base58.
    pub const RECEIPT_SIGNATURE: &str = "receipt_signature";
    pub const EPOCH: &str = "epoch";
    /// When the validator accepted the record, Unix milliseconds UTC.
    pub const ACCEPTED_AT_MS: &str = "accepted_at_ms";
    /// The validator's quality scores, a list of `{name, score}` sorted by name.
    pub const QUALITY: &str = "quality";
    /// Size of the record's MinHash near-duplicate cluster at acceptance (1 = no near duplicate).
    pub const MINHASH_CLUSTER_SIZE: &str = "minhash_cluster_size";
}

/// One accepted record as the exporter takes it: the signed record (its `outlinks` may be empty;
/// `outlinks_digest` is what is kept), the batch that carried it, and the validator's verdict data.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub record: Record,
    pub batch_id: Digest,
    pub epoch: u64,
    pub accepted_at_ms: i64,
    pub quality: BTreeMap<String, f64>,
    pub minhash_cluster_size: u32,
    /// The text's GPT-2 token count when the caller has it (the validator stores the count an
    /// earlier export made, [`crate::ExportWriter::take_counted`]); `None` makes the
    /// export count it. The export writes the value as given, like the quality scores.
    pub token_count: Option<u64>,
}

/// The quality key read into FineWeb's `language_score` column, when the validator scored it.
pub const LANGUAGE_SCORE_KEY: &str = "language_score";

/// The `dump` label of an epoch: `gleaner-epoch-` and the epoch, zero-padded to six digits so
/// labels sort by epoch.
pub fn dump_label(epoch: u64) -> String {
    format!("gleaner-epoch-{epoch:06}")
}

/// The struct type of one quality score.
pub(crate) fn quality_struct() -> Fields {
    Fields::from(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("score", DataType::Float64, false),
    ])
}

/// The list item field of the `quality` column.
pub(crate) fn quality_item() -> Arc<Field> {
    Arc::new(Field::new(
        "item",
        DataType::Struct(quality_struct()),
        false,
    ))
}

/// The Arrow schema of every shard.
pub fn arrow_schema() -> Arc<Schema> {
    use columns::*;
    let s = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        s(TEXT),
        s(ID),
        s(DUMP),
        s(URL),
        s(DATE),
        s(FILE_PATH),
        s(LANGUAGE),
        Field::new(LANGUAGE_SCORE, DataType::Float64, true),
        Field::new(TOKEN_COUNT, DataType::Int64, false),
        s(REQUESTED_URL),
        s(LEASE_ID),
        Field::new(FETCHED_AT_MS, DataType::Int64, false),
        Field::new(STATUS, DataType::UInt16, false),
        s(CONTENT_TYPE),
        s(CHARSET),
        Field::new(WIRE_BYTES, DataType::UInt64, false),
        Field::new(BODY_BYTES, DataType::UInt64, false),
        Field::new(TRUNCATED, DataType::Boolean, false),
        s(RAW_DIGEST),
        s(TITLE),
        s(TEXT_DIGEST),
        s(ROBOTS),
        Field::new(CRAWL_DELAY_MS, DataType::UInt32, false),
        s(OUTLINKS_DIGEST),
        s(NODE),
        s(NODE_SIGNATURE),
        s(BATCH_ID),
        s(VALIDATOR),
        s(RECEIPT_SIGNATURE),
        Field::new(EPOCH, DataType::UInt64, false),
        Field::new(ACCEPTED_AT_MS, DataType::Int64, false),
        Field::new(QUALITY, DataType::List(quality_item()), false),
        Field::new(MINHASH_CLUSTER_SIZE, DataType::Int64, false),
    ]))
}

/// ISO 8601 UTC with second precision, FineWeb's `date` format. Years outside 0 to 9999
/// (impossible for records, which are bounded at signing) print with a sign or more digits.
pub(crate) fn iso_date(ms: i64) -> String {
    with_iso_date(ms, str::to_string)
}

/// Calls `f` with [`iso_date`]'s text, written into a stack buffer for years 0 to 9999 (every row
/// of an export or a verification takes one; `format!` cost ~3,000 instructions a row).
pub(crate) fn with_iso_date<R>(ms: i64, f: impl FnOnce(&str) -> R) -> R {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        let mut b = *b"0000-00-00T00:00:00Z";
        let mut put = |at: usize, width: usize, mut v: i64| {
            for k in (at..at + width).rev() {
                if let Some(slot) = b.get_mut(k) {
                    *slot = b'0' + (v % 10) as u8;
                }
                v /= 10;
            }
        };
        put(0, 4, y);
        put(5, 2, m);
        put(8, 2, d);
        put(11, 2, rem / 3600);
        put(14, 2, (rem / 60) % 60);
        put(17, 2, rem % 60);
        if let Ok(s) = std::str::from_utf8(&b) {
            return f(s);
        }
    }
    f(&iso_date_formatted(ms))
}

/// [`iso_date`] through `format!`, for years outside 0 to 9999 (and as the tests' reference).
fn iso_date_formatted(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso_utc() {
        assert_eq!(iso_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_date(1_368_856_134_999), "2013-05-18T05:48:54Z");
        assert_eq!(iso_date(1_764_010_445_000), "2025-11-24T18:54:05Z");
        assert_eq!(iso_date(1_709_210_096_000), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn dates_from_the_buffer_equal_the_formatted_ones() {
        let mut ms = -62_167_219_200_000i64; // 0000-01-01
        while ms < 253_402_300_800_000 {
            // 10000-01-01
            assert_eq!(iso_date(ms), iso_date_formatted(ms), "{ms}");
            ms += 7_777_777_777 + ms.rem_euclid(1_000);
        }
        for ms in [
            i64::MIN,
            -62_167_219_200_001,
            253_402_300_800_000,
            i64::MAX,
            -1,
            999,
            1_000,
        ] {
            assert_eq!(iso_date(ms), iso_date_formatted(ms), "{ms}");
        }
    }

    #[test]
    fn dump_labels_sort_by_epoch() {
        assert_eq!(dump_label(42), "gleaner-epoch-000042");
        assert!(dump_label(9) < dump_label(10));
    }
}
