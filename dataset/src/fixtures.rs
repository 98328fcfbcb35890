//! Deterministic, really signed sample data for tests, benchmarks and demos: records signed by a
//! node key, assembled into signed batches, and receipts signed by a validator key. Nothing here
//! is faked; only the page contents are synthetic.

use std::collections::BTreeMap;

use gleaner_protocol::{
    Batch, Digest, Receipt, RecordDraft, RecordVerdict, RobotsVerdict, SecretKey, Verdict,
};

use crate::{ExportInput, ExportRow};

/// Records per sample batch (a node's batches hold a few hundred).
pub const SAMPLE_BATCH_RECORDS: usize = 100;
/// Batches per sample epoch.
pub const SAMPLE_BATCHES_PER_EPOCH: usize = 10;
/// First fetch time of the sample (2026-01-01T00:00:00Z).
const SAMPLE_START_MS: i64 = 1_767_225_600_000;

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "it",
    "with",
    "as",
    "was",
    "on",
    "be",
    "by",
    "this",
    "are",
    "from",
    "at",
    "or",
    "have",
    "an",
    "they",
    "which",
    "one",
    "you",
    "were",
    "all",
    "we",
    "their",
    "can",
    "there",
    "has",
    "more",
    "about",
    "data",
    "web",
    "page",
    "network",
    "validator",
    "record",
    "garden",
    "river",
    "mountain",
    "history",
    "science",
    "music",
    "library",
    "station",
    "weather",
    "market",
    "village",
    "engine",
    "language",
    "school",
    "public",
    "question",
    "answer",
    "morning",
    "evening",
    "recipe",
    "butter",
    "window",
    "paper",
];

/// A small deterministic generator (SplitMix64), so samples are identical everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A page of about `approx_bytes` bytes of English-like text, in paragraphs.
fn page_text(rng: &mut Rng, index: usize, approx_bytes: usize) -> String {
    let mut text = format!("Document {index}.");
    let mut sentence_words = 0;
    while text.len() < approx_bytes {
        let word = WORDS[rng.below(WORDS.len())];
        if sentence_words == 0 {
            text.push(' ');
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                text.extend(first.to_uppercase());
                text.push_str(chars.as_str());
            }
        } else {
            text.push(' ');
            text.push_str(word);
        }
        sentence_words += 1;
        if sentence_words > 6 + rng.below(10) {
            text.push('.');
            sentence_words = 0;
            if rng.below(5) == 0 {
                text.push_str("\n\n");
            }
        }
    }
    text
}

/// The sample's node key (seed `[7; 32]`).
pub fn node_key() -> SecretKey {
    SecretKey::from_bytes(&[7; 32])
}

/// The sample's validator key (seed `[9; 32]`).
pub fn validator_key() -> SecretKey {
    SecretKey::from_bytes(&[9; 32])
}

/// `input` with each row's token count filled in, as the validator's stored counts come, so the
/// export does not count them.
pub fn with_token_counts(mut input: ExportInput) -> Result<ExportInput, crate::DatasetError> {
    let mut counter = crate::TokenCounter::new()?;
    for row in &mut input.rows {
        row.token_count = Some(counter.count(&row.record.text));
    }
    Ok(input)
}

/// `records` accepted rows of about `text_bytes` bytes of text each, with their receipts. Batches
/// hold [`SAMPLE_BATCH_RECORDS`] records; each receipt also rejects one extra record that is not
/// exported (as real receipts do), so receipts cover more than the rows.
pub fn sample(records: usize, text_bytes: usize) -> ExportInput {
    let node = node_key();
    let validator = validator_key();
    let mut rng = Rng(0x0067_6C65_616E_6572);
    let mut input = ExportInput::default();
    let mut index = 0;
    let mut batch_no = 0usize;
    while index < records {
        let n = SAMPLE_BATCH_RECORDS.min(records - index);
        let epoch = (batch_no / SAMPLE_BATCHES_PER_EPOCH) as u64 + 1;
        let mut recs = Vec::with_capacity(n + 1);
        for k in 0..=n {
            let i = index + k;
            let text = if k == n {
                "too short".to_string()
            } else {
                page_text(&mut rng, i, text_bytes)
            };
            let fetched_at_ms = SAMPLE_START_MS + i as i64 * 1_000 + 7;
            let url = format!("https://site{}.example/page/{i}", i % 37);
            let body = format!("<html><title>Page {i}</title><p>{text}</p></html>");
            recs.push(
                RecordDraft {
                    lease_id: format!("lease-{i}"),
                    url: url.clone(),
                    final_url: if i % 5 == 0 {
                        format!("{url}?r=1")
                    } else {
                        url
                    },
                    fetched_at_ms,
                    status: 200,
                    content_type: "text/html".into(),
                    charset: "utf-8".into(),
                    wire_bytes: body.len() as u64 / 3,
                    body_bytes: body.len() as u64,
                    truncated: false,
                    raw_digest: Digest::of(body.as_bytes()),
                    title: format!("Page {i}"),
                    text,
                    lang: "en".into(),
                    robots: if i % 3 == 0 {
                        RobotsVerdict::Unavailable
                    } else {
                        RobotsVerdict::Allowed
                    },
                    crawl_delay_ms: if i % 4 == 0 { 1_000 } else { 0 },
                    outlinks: vec![format!("https://site{}.example/", (i + 1) % 37)],
                }
                .sign(&node),
            );
        }
        let created = SAMPLE_START_MS + (index + n) as i64 * 1_000 + 500;
        let batch = Batch::new(&node, created, recs);
        let batch_id = batch.id();
        let verdicts: Vec<RecordVerdict> = batch
            .records
            .iter()
            .enumerate()
            .map(|(k, r)| RecordVerdict {
                record_id: r.id(),
                verdict: if k == n {
                    Verdict::Rejected
                } else {
                    Verdict::Accepted
                },
                reason: if k == n {
                    "gopher_word_count".into()
                } else {
                    "ok".into()
                },
                points: if k == n { 0 } else { 10 },
            })
            .collect();
        let receipt = Receipt::sign(
            &validator,
            batch_id,
            node.public(),
            epoch,
            created + 250,
            "points/v1",
            verdicts,
        );
        for (k, mut record) in batch.records.into_iter().take(n).enumerate() {
            record.outlinks.clear();
            let mut quality = BTreeMap::new();
            quality.insert("gopher_quality".to_string(), 0.5 + (k % 5) as f64 / 10.0);
            quality.insert("language_score".to_string(), 0.9 + (k % 10) as f64 / 100.0);
            input.rows.push(ExportRow {
                record,
                batch_id,
                epoch,
                accepted_at_ms: created + 250,
                quality,
                minhash_cluster_size: 1 + (k % 3) as u32,
                token_count: None,
            });
        }
        input.receipts.push(receipt);
        index += n;
        batch_no += 1;
    }
    input
}
