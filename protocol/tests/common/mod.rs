//! Deterministic fixtures shared by the protocol tests: fixed seeds, fixed inputs.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gleaner_protocol::{
    Batch, Digest, Receipt, Record, RecordDraft, RecordVerdict, RobotsVerdict, SecretKey, Verdict,
};

pub fn node_key() -> SecretKey {
    SecretKey::from_bytes(&[42; 32])
}

pub fn validator_key() -> SecretKey {
    SecretKey::from_bytes(&[7; 32])
}

/// 2026-11-24T12:00:00Z in Unix milliseconds.
pub const T0: i64 = 1_795_521_600_000;

pub fn draft(n: u32) -> RecordDraft {
    let body = format!(
        "<html><head><title>Page {n}</title></head><body><p>Hello, world {n}.</p></body></html>"
    );
    RecordDraft {
        lease_id: format!("lease-{n}"),
        url: format!("https://example.com/page/{n}"),
        final_url: format!("https://www.example.com/page/{n}"),
        fetched_at_ms: T0 + i64::from(n),
        status: 200,
        content_type: "text/html".into(),
        charset: "utf-8".into(),
        wire_bytes: body.len() as u64 / 2,
        body_bytes: body.len() as u64,
        truncated: false,
        raw_digest: Digest::of(body.as_bytes()),
        title: format!("Page {n}"),
        text: format!("Hello, world {n}.\n\nA second paragraph with ünïcödé."),
        lang: "en".into(),
        robots: RobotsVerdict::Allowed,
        crawl_delay_ms: 1_500,
        outlinks: vec![
            format!("https://example.com/page/{}", n + 1),
            "https://example.org/".into(),
        ],
    }
}

pub fn record(n: u32) -> Record {
    draft(n).sign(&node_key())
}

pub fn batch(count: u32) -> Batch {
    Batch::new(&node_key(), T0 + 60_000, (0..count).map(record).collect())
}

pub fn receipt_for(batch: &Batch) -> Receipt {
    let verdicts = batch
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (verdict, reason, points) = match i % 3 {
                0 => (Verdict::Accepted, "ok", 120),
                1 => (Verdict::Duplicate, "near_duplicate", 0),
                _ => (Verdict::Rejected, "gopher_word_count", 0),
            };
            RecordVerdict {
                record_id: r.id(),
                verdict,
                reason: reason.into(),
                points,
            }
        })
        .collect();
    Receipt::sign(
        &validator_key(),
        batch.id(),
        batch.header.node,
        3,
        T0 + 120_000,
        "points/v1",
        verdicts,
    )
}
