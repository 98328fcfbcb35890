//! The Hugging Face dataset card (`README.md`): a YAML header the Hub and `datasets` read as it is
//! (license, configs with data files, features, split size), then how every column is filled.

use std::fmt::Write;

use arrow_schema::DataType;

use crate::{Manifest, arrow_schema};

/// How each column is filled, for the card's table. Honest about what is approximate.
const COLUMN_DOCS: &[(&str, &str)] = &[
    (
        "text",
        "Main text extracted by the collecting node's cleaner; paragraphs separated by a blank line.",
    ),
    (
        "id",
        "Record id: blake3 of the record's canonical signing bytes (hex). Content-derived and unique.",
    ),
    (
        "dump",
        "Epoch label `gleaner-epoch-NNNNNN`: the validator epoch the record was credited in (our analogue of a Common Crawl dump).",
    ),
    (
        "url",
        "The page the text came from: the record's `final_url`, after redirects.",
    ),
    (
        "date",
        "Fetch time, ISO 8601 UTC rounded down to the second (exact value in `fetched_at_ms`).",
    ),
    (
        "file_path",
        "The batch that delivered the record, `gleaner:batch:<batch_id>` (there are no WARC files).",
    ),
    (
        "language",
        "ISO 639-1 code from the node's detector (whatlang), signed in the record; `und` when unsure.",
    ),
    (
        "language_score",
        "The validator's language confidence in [0, 1] when it computed one (quality score `language_score`), else null. Not fastText: do not compare with FineWeb's threshold.",
    ),
    (
        "token_count",
        "Exact GPT-2 token count (r50k_base BPE, the ranks embedded in tiktoken-rs), no special tokens.",
    ),
    (
        "requested_url",
        "The URL the node was asked to fetch (record `url`).",
    ),
    (
        "lease_id .. outlinks_digest",
        "The remaining signed record fields, verbatim (digests in hex). Outlinks are not shipped; their digest is.",
    ),
    (
        "node, node_signature",
        "The collecting node's ed25519 public key and its signature over the record's signing bytes (base58).",
    ),
    (
        "batch_id, validator, receipt_signature",
        "The batch, the validator's key, and the signature of the validator's receipt for that batch; full receipts are in `receipts.jsonl`.",
    ),
    (
        "epoch, accepted_at_ms",
        "Epoch number and the validator's acceptance time (Unix ms UTC).",
    ),
    (
        "quality",
        "The validator's quality scores as `{name, score}` pairs sorted by name.",
    ),
    (
        "minhash_cluster_size",
        "Size of the record's MinHash near-duplicate cluster (word 5-grams, 14×8 bands) when accepted; 1 = unique.",
    ),
];

fn hf_dtype(t: &DataType) -> &'static str {
    match t {
        DataType::Utf8 => "string",
        DataType::Int64 => "int64",
        DataType::UInt64 => "uint64",
        DataType::UInt32 => "uint32",
        DataType::UInt16 => "uint16",
        DataType::Float64 => "float64",
        DataType::Boolean => "bool",
        _ => "string",
    }
}

/// Renders the card for a manifest (its `card` entry and signature are not used).
pub fn render_card(m: &Manifest) -> String {
    let mut s = String::new();
    // `writeln!` into a String cannot fail; results are ignored deliberately.
    let _ = writeln!(s, "---");
    let _ = writeln!(s, "license: {}", m.license);
    let _ = writeln!(
        s,
        "pretty_name: {}",
        yaml_str(&format!("Gleaner {}", m.name))
    );
    let _ = writeln!(s, "task_categories:\n- text-generation");
    let _ = writeln!(s, "size_categories:\n- {}", size_category(m.rows));
    let _ = writeln!(
        s,
        "configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/*/*.parquet"
    );
    let _ = writeln!(s, "dataset_info:\n  config_name: default\n  features:");
    for field in arrow_schema().fields() {
        let _ = writeln!(s, "  - name: {}", field.name());
        match field.data_type() {
            DataType::List(_) => {
                let _ = writeln!(
                    s,
                    "    list:\n    - name: name\n      dtype: string\n    - name: score\n      dtype: float64"
                );
            }
            t => {
                let _ = writeln!(s, "    dtype: {}", hf_dtype(t));
            }
        }
    }
    let shard_bytes: u64 = m.shards.iter().map(|e| e.bytes).sum();
    let _ = writeln!(
        s,
        "  splits:\n  - name: train\n    num_bytes: {shard_bytes}\n    num_examples: {}",
        m.rows
    );
    let _ = writeln!(s, "  download_size: {shard_bytes}");
    let _ = writeln!(s, "---\n");

    let _ = writeln!(s, "# Gleaner {}\n", m.name);
    let _ = writeln!(
        s,
        "Public web pages fetched by Gleaner nodes, cleaned, signed by each node and accepted by \
         validator `{}` in epochs {} to {}: {} rows in {} Parquet shards (zstd, page index).\n",
        m.validator,
        m.epoch_from,
        m.epoch_to,
        m.rows,
        m.shards.len()
    );
    let _ = writeln!(
        s,
        "Columns follow FineWeb's (`text`, `id`, `dump`, `url`, `date`, `file_path`, `language`, `language_score`, `token_count`), followed by provenance columns that let anyone verify each row alone.\n"
    );
    let _ = writeln!(s, "- Tokenizer: {}", m.tokenizer);
    let _ = writeln!(s, "- Language detector: {}\n", m.language_detector);
    let _ = writeln!(
        s,
        "## Columns\n\n| column | how it is filled |\n| --- | --- |"
    );
    for (col, doc) in COLUMN_DOCS {
        let _ = writeln!(s, "| `{col}` | {doc} |");
    }
    let _ = writeln!(
        s,
        "\n## Loading\n\n```python\nfrom datasets import load_dataset\nds = load_dataset(\"parquet\", data_files=\"data/*/*.parquet\", split=\"train\")\n```\n"
    );
    if !m.jsonl.is_empty() {
        let _ = writeln!(
            s,
            "The same rows, in the same order, are also in `jsonl/*/*.jsonl.zst` (JSON Lines, zstd; \
             the same field names, `quality` as an object), for readers that stream JSON.\n"
        );
    }
    let _ = writeln!(
        s,
        "## Verifying\n\n`manifest.json` lists every file with its size and blake3 digest and is \
         signed by the validator (domain `gleaner/manifest/v1`). Each row carries every signed \
         field of its record, so its node signature can be checked over the recomputed signing \
         bytes (`gleaner/record/v1`), and `receipts.jsonl` holds the validator's signed receipts \
         (`gleaner/receipt/v1`) that list each record as accepted:\n\n```sh\ngleaner dataset verify . --trust {}\n```\n",
        m.validator
    );
    let _ = writeln!(
        s,
        "A record may be revoked after this export (a cross-check it failed, a page found gone): \
         the validator then no longer stands by it, takes its points back and lists it at \
         `GET /v1/revocations`. To find this dataset's rows among them:\n\n```sh\n\
         gleaner dataset revoked . --validator https://VALIDATOR\n```\n"
    );
    let _ = writeln!(
        s,
        "## Files\n\n| file | rows | bytes | blake3 |\n| --- | --- | --- | --- |"
    );
    for e in m.shards.iter().chain([&m.receipts]).chain(m.jsonl.iter()) {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | `{}` |",
            e.path, e.rows, e.bytes, e.blake3
        );
    }
    let _ = writeln!(
        s,
        "\n## License\n\n`{}`. The texts remain subject to their sites' terms; Gleaner nodes fetch only what robots.txt allows.",
        m.license
    );
    s
}

/// A double-quoted YAML scalar.
fn yaml_str(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "\"\"".to_string())
}

/// The Hub's size buckets.
fn size_category(rows: u64) -> &'static str {
    match rows {
        0..1_000 => "n<1K",
        1_000..10_000 => "1K<n<10K",
        10_000..100_000 => "10K<n<100K",
        100_000..1_000_000 => "100K<n<1M",
        1_000_000..10_000_000 => "1M<n<10M",
        10_000_000..100_000_000 => "10M<n<100M",
        100_000_000..1_000_000_000 => "100M<n<1B",
        _ => "1B<n<10B",
    }
}
