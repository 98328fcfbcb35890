//! The CPU side of ingest, done before the store's write transaction: decoding within limits,
//! header and record verification (batch ed25519), freshness, quality rules and MinHash.

use std::collections::HashSet;

use gleaner_protocol::auth::MAX_CLOCK_SKEW_MS;
use gleaner_protocol::{
    Batch, DecodeLimits, Digest, ProtocolError, PublicKey, Record, verify_records_signed,
};

use crate::quality;
pub use crate::store::{
    DedupKeys, Derived, IngestError, IngestOutcome, IngestParams, PreparedRecord,
};

/// Decodes an untrusted batch body within `limits`.
pub fn decode(body: &[u8], limits: &DecodeLimits) -> Result<Batch, IngestError> {
    Batch::decode(body, limits).map_err(|source| IngestError::Batch { source })
}

/// A decoded batch together with the JSON text each record arrived as, which is what gets stored
/// for export: it parses back to the same `Record`, so nothing needs serialising again (base58
/// of keys and signatures, escaping of the text).
#[derive(Debug)]
pub struct Received {
    pub batch: Batch,
    /// The decompressed body, shared by the prepared records (each takes its slice, no copy).
    json: bytes::Bytes,
    /// Where each record's JSON value lies in `json`, in record order.
    spans: Vec<std::ops::Range<usize>>,
}

impl Received {
    /// The JSON text record `index` arrived as (a slice of the shared body, not a copy).
    pub fn record_json(&self, index: usize) -> Option<bytes::Bytes> {
        let span = self.spans.get(index)?;
        (span.end <= self.json.len()).then(|| self.json.slice(span.clone()))
    }
}

/// The batch as [`Batch`]'s JSON, each record kept as raw JSON text until parsed.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBatch<'a> {
    header: gleaner_protocol::BatchHeader,
    #[serde(borrow)]
    records: Vec<&'a serde_json::value::RawValue>,
}

/// [`decode`], keeping each record's received JSON text ([`Received::record_json`]). Accepts and
/// refuses exactly the bodies [`Batch::decode`] does, with the same error codes in the same
/// order of checks.
pub fn decode_received(body: &[u8], limits: &DecodeLimits) -> Result<Received, IngestError> {
    let refuse = |source| IngestError::Batch { source };
    let malformed = |e: serde_json::Error| {
        refuse(ProtocolError::Malformed {
            what: "batch",
            why: e.to_string(),
        })
    };
    let json = Batch::decompress(body, limits).map_err(refuse)?;
    let (header, records, spans) = match decode_canonical(&json) {
        Some(parsed) => parsed,
        None => {
            let wire: WireBatch<'_> = serde_json::from_slice(&json).map_err(malformed)?;
            let base = json.as_ptr() as usize;
            let mut records = Vec::with_capacity(wire.records.len());
            let mut spans = Vec::with_capacity(wire.records.len());
            for raw in &wire.records {
                let text = raw.get();
                let start = (text.as_ptr() as usize).saturating_sub(base);
                spans.push(start..start + text.len());
                records.push(serde_json::from_str::<Record>(text).map_err(malformed)?);
            }
            (wire.header, records, spans)
        }
    };
    Batch::check_count(&header, records.len(), limits).map_err(refuse)?;
    Ok(Received {
        batch: Batch { header, records },
        json: bytes::Bytes::from(json),
        spans,
    })
}

/// The batch JSON in the layout nodes send (`{"header":…,"records":[…]}`, any JSON whitespace
/// between tokens) parsed in one pass: each record straight into a `Record` with its span
/// noted, where [`WireBatch`] scans every record once to find its end and then again to parse
/// it. `None` for anything else, valid or not (another key order, escaped keys, a record that
/// does not parse, …): the caller then decodes with [`WireBatch`], which decides. Whatever this
/// accepts, [`WireBatch`] accepts with the same header, records and spans (same `Deserialize`
/// impls on the same bytes).
type Decoded = (
    gleaner_protocol::BatchHeader,
    Vec<Record>,
    Vec<std::ops::Range<usize>>,
);

fn decode_canonical(json: &[u8]) -> Option<Decoded> {
    /// Past JSON whitespace (serde_json's set) from `at`.
    fn skip_ws(json: &[u8], mut at: usize) -> usize {
        while json
            .get(at)
            .is_some_and(|b| matches!(b, b' ' | b'\n' | b'\t' | b'\r'))
        {
            at += 1;
        }
        at
    }
    /// Past `token` (after whitespace) from `at`.
    fn expect(json: &[u8], at: usize, token: &[u8]) -> Option<usize> {
        let at = skip_ws(json, at);
        json.get(at..)?
            .starts_with(token)
            .then_some(at + token.len())
    }
    /// One value of type `T` starting after whitespace at `at` in `text` (`json` as a `str`):
    /// the value and its span.
    fn value<'de, T: serde::Deserialize<'de>>(
        text: &'de str,
        at: usize,
    ) -> Option<(T, std::ops::Range<usize>)> {
        let start = skip_ws(text.as_bytes(), at);
        // From a `str`, serde_json takes each string as valid UTF-8; checking each one again
        // (a record's text, title, URLs and ~115 outlinks) cost more than the one pass below.
        let mut values = serde_json::Deserializer::from_str(text.get(start..)?).into_iter::<T>();
        let v = values.next()?.ok()?;
        Some((v, start..start + values.byte_offset()))
    }
    // Invalid UTF-8 is for the general decoder to report.
    let text = std::str::from_utf8(json).ok()?;
    let mut at = expect(json, 0, b"{")?;
    at = expect(json, at, br#""header""#)?;
    at = expect(json, at, b":")?;
    let (header, span) = value::<gleaner_protocol::BatchHeader>(text, at)?;
    at = expect(json, span.end, b",")?;
    at = expect(json, at, br#""records""#)?;
    at = expect(json, at, b":")?;
    at = expect(json, at, b"[")?;
    let mut records = Vec::new();
    let mut spans = Vec::new();
    if let Some(end) = expect(json, at, b"]") {
        at = end;
    } else {
        loop {
            let (record, span) = value::<Record>(text, at)?;
            records.push(record);
            at = span.end;
            spans.push(span);
            if let Some(next) = expect(json, at, b",") {
                at = next;
            } else {
                at = expect(json, at, b"]")?;
                break;
            }
        }
    }
    at = expect(json, at, b"}")?;
    (skip_ws(json, at) == json.len()).then_some((header, records, spans))
}

/// Loads what the checks build on first use (language id's profiles, the C4 phrase finders), so
/// that no request pays for it: the server calls this before it listens, the ingest bench before
/// it measures.
pub fn warm_up() {
    crate::quality::warm_up();
}

/// Fewest records worth handing to another thread: below this, spawning costs more than it saves.
const MIN_RECORDS_PER_THREAD: usize = 8;

/// Verifies `batch` as sent by `sender` at `now_ms` and computes everything the transaction
/// needs. Any failure refuses the whole batch, with the same error the records would give checked
/// one by one in order.
///
/// The per-record work (signatures, quality rules, MinHash) is spread over the machine's cores;
/// results do not depend on how it is split.
pub fn prepare(
    batch: &Batch,
    sender: &PublicKey,
    now_ms: i64,
    languages: &[String],
) -> Result<(Digest, Vec<PreparedRecord>), IngestError> {
    let (id, derived) = prepare_with(batch, None, sender, now_ms, languages)?;
    Ok((id, attach(derived, batch.records.iter().cloned())))
}

/// [`prepare`] on a [`Received`] batch, which it consumes: the records move into their prepared
/// forms (no copy of their texts), and their received JSON is what gets stored.
pub fn prepare_received(
    received: Received,
    sender: &PublicKey,
    now_ms: i64,
    languages: &[String],
) -> Result<(Digest, Vec<PreparedRecord>), IngestError> {
    let (id, derived) = prepare_with(&received.batch, Some(&received), sender, now_ms, languages)?;
    Ok((id, attach(derived, received.batch.records)))
}

fn prepare_with(
    batch: &Batch,
    received: Option<&Received>,
    sender: &PublicKey,
    now_ms: i64,
    languages: &[String],
) -> Result<(Digest, Vec<Derived>), IngestError> {
    if &batch.header.node != sender {
        return Err(IngestError::WrongNode {
            header: batch.header.node,
            request: *sender,
        });
    }
    // Each record's signing bytes, built once: the header's Merkle root is over their digests
    // (the records' ids), and the records' signatures are over them.
    let signing: Vec<Vec<u8>> = batch.records.iter().map(Record::signing_bytes).collect();
    let ids: Vec<Digest> = signing.iter().map(|b| Record::id_of(b)).collect();
    batch
        .verify_header_with_ids(&ids)
        .map_err(|source| IngestError::Batch { source })?;
    let verified = par_chunks(&batch.records, |first, part| {
        verify_records_signed(part, signing.get(first..).unwrap_or_default())
    });
    for (index, res) in verified.into_iter().enumerate() {
        res.map_err(|source| IngestError::Record { index, source })?;
    }
    let computed = par_chunks(&batch.records, |first, part| {
        part.iter()
            .enumerate()
            .map(|(i, record)| {
                let json = received.and_then(|r| r.record_json(first + i));
                let id = ids.get(first + i).copied().unwrap_or_else(|| record.id());
                prepare_record(first + i, record, id, json, languages)
            })
            .collect()
    });
    let mut seen = HashSet::with_capacity(batch.records.len());
    let mut out = Vec::with_capacity(batch.records.len());
    for (index, (record, computed)) in batch.records.iter().zip(computed).enumerate() {
        if record.fetched_at_ms > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
            return Err(IngestError::FutureTimestamp {
                index,
                fetched_at_ms: record.fetched_at_ms,
            });
        }
        let derived = match computed {
            Ok(derived) => derived,
            Err(e) => {
                let id = ids.get(index).copied().unwrap_or_else(|| record.id());
                if !seen.insert(id) {
                    return Err(IngestError::DuplicateInBatch { index });
                }
                return Err(e);
            }
        };
        if !seen.insert(derived.id) {
            return Err(IngestError::DuplicateInBatch { index });
        }
        out.push(derived);
    }
    Ok((batch.id(), out))
}

/// Each record beside what was computed about it, in order.
fn attach(derived: Vec<Derived>, records: impl IntoIterator<Item = Record>) -> Vec<PreparedRecord> {
    records
        .into_iter()
        .zip(derived)
        .map(|(record, derived)| PreparedRecord { record, derived })
        .collect()
}

/// What the transaction needs computed about one verified record.
fn prepare_record(
    index: usize,
    record: &Record,
    id: Digest,
    received_json: Option<bytes::Bytes>,
    languages: &[String],
) -> Result<Derived, IngestError> {
    let report = quality::assess(&record.text, &record.lang, languages);
    let mut scores = report.scores;
    scores.retain(|_, v| v.is_finite());
    let punct_ratio = scores
        .get("fineweb_line_punct_ratio")
        .copied()
        .unwrap_or(0.0);
    // Stored compactly: ~150 bytes a row where JSON took ~770, written twice (WAL, then the
    // checkpoint) and read back by every export.
    let quality = quality::StoredScores::of(&scores);
    // What the rules reject is never kept for dedup: no keys (`Derived::keys`). Outlinks are
    // normalised by the store, and only when the record's crawl request can still follow them.
    let keys = report
        .rejection
        .is_none()
        .then(|| DedupKeys::of(&record.text));
    let json = match received_json {
        Some(json) => json,
        None => {
            bytes::Bytes::from(serde_json::to_vec(record).map_err(|e| IngestError::Record {
                index,
                source: ProtocolError::Malformed {
                    what: "record",
                    why: e.to_string(),
                },
            })?)
        }
    };
    Ok(Derived {
        id,
        json,
        rejection: report.rejection,
        quality,
        punct_ratio,
        keys,
    })
}

/// Splits `items` into one contiguous chunk per available core (at least
/// [`MIN_RECORDS_PER_THREAD`] each), runs `f(first_index, chunk)` on each in its own scoped thread
/// and concatenates the results in order. `f` must return one result per item. Falls back to
/// the calling thread when there is one core, few items, or a thread cannot be started.
fn par_chunks<T, R, F>(items: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(usize, &[T]) -> Vec<R> + Sync,
{
    // Read once: `available_parallelism` reads the cgroup's CPU quota from files on every call.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let threads = cores.min(items.len() / MIN_RECORDS_PER_THREAD).max(1);
    if threads == 1 {
        return f(0, items);
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let others: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .skip(1)
            .map(|(c, part)| {
                let first = c * chunk;
                let handle = std::thread::Builder::new()
                    .name("ingest-prepare".into())
                    .spawn_scoped(scope, move || f(first, part));
                (first, part, handle)
            })
            .collect();
        let mut out = f(0, &items[..chunk.min(items.len())]);
        for (first, part, handle) in others {
            match handle {
                Ok(h) => match h.join() {
                    Ok(v) => out.extend(v),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                Err(_) => out.extend(f(first, part)),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{record_for, record_with_outlinks, sample_text};
    use gleaner_protocol::api::Job;
    use gleaner_protocol::{SecretKey, ZSTD_LEVEL};

    fn batch(records: usize) -> Batch {
        let key = SecretKey::from_bytes(&[3; 32]);
        let recs = (0..records)
            .map(|i| {
                let job = Job {
                    lease_id: format!("lease-{i}"),
                    url: format!("https://site{i}.example/a \"quoted\" path"),
                    expires_at_ms: 0,
                    follow_links: true,
                };
                let mut text = sample_text(i as u64, 800);
                text.push_str("\n\n\"Quotes\", tabs\t, back\\slashes, ünïcödé and \u{1}.");
                record_for(&key, &job, text, 1_767_225_600_000)
            })
            .collect();
        Batch::new(&key, 1_767_225_600_000, recs)
    }

    fn zstd(json: &[u8]) -> Vec<u8> {
        zstd::bulk::compress(json, ZSTD_LEVEL).unwrap()
    }

    #[test]
    fn received_records_keep_their_json_and_parse_back_the_same() {
        let b = batch(5);
        let limits = DecodeLimits::default();
        // As a node sends it, and with other spacing and escapes than serde_json writes.
        let compact = serde_json::to_vec(&b).unwrap();
        let pretty = serde_json::to_vec_pretty(&b).unwrap();
        for json in [compact, pretty] {
            let body = zstd(&json);
            let r = decode_received(&body, &limits).unwrap();
            assert_eq!(r.batch, decode(&body, &limits).unwrap());
            for (i, record) in b.records.iter().enumerate() {
                let raw = r.record_json(i).unwrap();
                assert_eq!(&serde_json::from_slice::<Record>(&raw).unwrap(), record);
            }
            assert_eq!(r.record_json(5), None);
            let (id, prepared) = prepare_received(r, &b.header.node, 1_767_225_600_000, &[])
                .unwrap_or_else(|e| panic!("{e}"));
            let (id2, prepared2) = prepare(&b, &b.header.node, 1_767_225_600_000, &[]).unwrap();
            assert_eq!(id, id2);
            for (p, q) in prepared.iter().zip(&prepared2) {
                // Scores in their compact form, not JSON.
                assert!(
                    matches!(p.derived.quality, quality::StoredScores::Compact(_)),
                    "{:?}",
                    p.derived.quality
                );
                let back: Record = serde_json::from_slice(&p.derived.json).unwrap();
                assert_eq!(back, p.record);
                // The moved record is the one copied from the batch.
                assert_eq!(p.record, q.record);
                assert_eq!(
                    (
                        p.derived.id,
                        &p.derived.quality,
                        p.derived.keys.as_ref().map(|k| k.text_key)
                    ),
                    (
                        q.derived.id,
                        &q.derived.quality,
                        q.derived.keys.as_ref().map(|k| k.text_key)
                    )
                );
            }
        }
    }

    /// The rules decide what else is computed: a record they pass gets its dedup keys (those of
    /// its text); one they reject gets none.
    #[test]
    fn only_records_the_rules_pass_get_dedup_keys() {
        let key = SecretKey::from_bytes(&[3; 32]);
        let job = |i: usize| Job {
            lease_id: format!("lease-{i}"),
            url: format!("https://site{i}.example/"),
            expires_at_ms: 0,
            follow_links: true,
        };
        // With an outlink, covered by the signature.
        let with_link = |i: usize, text: &str| {
            let link = vec!["https://site9.example/next".to_string()];
            record_with_outlinks(&key, &job(i), text.to_string(), link, 1_767_225_600_000)
        };
        let good = sample_text(1, 3000);
        let records = vec![with_link(0, &good), with_link(1, "Too short.")];
        let batch = Batch::new(&key, 1_767_225_600_000, records);
        let (_, prepared) = prepare(&batch, &batch.header.node, 1_767_225_600_000, &[]).unwrap();
        let (passed, rejected) = (&prepared[0].derived, &prepared[1].derived);
        assert_eq!(passed.rejection, None);
        let keys = passed
            .keys
            .as_ref()
            .expect("keys for a record the rules pass");
        assert_eq!(keys.text_key, crate::dedup::exact_key(&good));
        assert_eq!(keys.minhash, crate::dedup::MinHash::of(&good));
        assert_eq!(keys.bands, keys.minhash.bands());
        assert_eq!(rejected.rejection, Some("text_too_short"));
        assert!(rejected.keys.is_none());
    }

    #[test]
    fn received_decoding_refuses_what_batch_decoding_refuses() {
        let b = batch(3);
        let json = serde_json::to_string(&b).unwrap();
        let mut more = b.clone();
        more.header.record_count = 4;
        let mut unknown: serde_json::Value = serde_json::to_value(&b).unwrap();
        unknown["records"][1]["extra"] = 1.into();
        let mut unknown_top = serde_json::to_value(&b).unwrap();
        unknown_top["extra"] = 1.into();
        let mut not_utf8_title = json.clone().into_bytes();
        let title = json.find("\"title\":\"").unwrap() + "\"title\":\"".len();
        not_utf8_title.insert(title, 0xff);
        let bodies = [
            zstd(json.as_bytes()),
            zstd(&json.as_bytes()[..json.len() - 1]),
            zstd(serde_json::to_string(&more).unwrap().as_bytes()),
            zstd(unknown.to_string().as_bytes()),
            zstd(unknown_top.to_string().as_bytes()),
            zstd(
                json.replacen("\"lease_id\"", "\"lease_id\":\"x\",\"lease_id\"", 1)
                    .as_bytes(),
            ),
            zstd(b"[]"),
            b"not zstd".to_vec(),
            // Around the one-pass layout: trailing bytes, missing or extra commas, escaped or
            // reordered keys, whitespace everywhere.
            zstd(format!("{json}x").as_bytes()),
            zstd(format!(" \n{json}\t\r ").as_bytes()),
            zstd(json.replacen("\"},{", "\"}{", 1).as_bytes()),
            zstd(json.replacen("\"}]", "\"},]", 1).as_bytes()),
            zstd(
                json.replacen("\"header\"", "\"\\u0068eader\"", 1)
                    .as_bytes(),
            ),
            zstd(reordered(&b).as_bytes()),
            // Not UTF-8, inside a record's string and between tokens.
            zstd(&not_utf8_title),
            zstd(&[json.as_bytes(), b" \xff"].concat()),
            zstd(
                serde_json::to_string(&Batch::new(&SecretKey::from_bytes(&[3; 32]), 1, vec![]))
                    .unwrap()
                    .as_bytes(),
            ),
        ];
        // Each variant differs from the batch as sent.
        for body in &bodies[1..] {
            assert_ne!(body, &bodies[0]);
        }
        for limits in [
            DecodeLimits::default(),
            DecodeLimits {
                max_records: 2,
                ..DecodeLimits::default()
            },
            DecodeLimits {
                max_decompressed_bytes: 100,
                ..DecodeLimits::default()
            },
            DecodeLimits {
                max_compressed_bytes: 10,
                ..DecodeLimits::default()
            },
        ] {
            for body in &bodies {
                let old = decode(body, &limits).map_err(|e| e.code());
                let new = decode_received(body, &limits)
                    .map(|r| r.batch)
                    .map_err(|e| e.code());
                assert_eq!(new, old, "{limits:?}");
            }
        }
    }

    /// The batch's JSON with `records` before `header`, as another encoder may write it.
    fn reordered(b: &Batch) -> String {
        format!(
            "{{\"records\":{},\"header\":{}}}",
            serde_json::to_string(&b.records).unwrap(),
            serde_json::to_string(&b.header).unwrap()
        )
    }

    #[test]
    fn the_nodes_layout_is_read_in_one_pass_and_any_other_the_same_as_before() {
        let b = batch(4);
        let compact = serde_json::to_string(&b).unwrap();
        let pretty = serde_json::to_string_pretty(&b).unwrap();
        let other = reordered(&b);
        // The layouts serde_json writes take the one pass; another order does not, and still
        // decodes to the same batch with the same record spans.
        assert!(decode_canonical(compact.as_bytes()).is_some());
        assert!(decode_canonical(pretty.as_bytes()).is_some());
        assert!(decode_canonical(other.as_bytes()).is_none());
        let limits = DecodeLimits::default();
        for json in [compact, pretty, other] {
            let r = decode_received(&zstd(json.as_bytes()), &limits).unwrap();
            assert_eq!(r.batch, b);
            for (i, record) in b.records.iter().enumerate() {
                let raw = r.record_json(i).unwrap();
                assert!(raw.starts_with(b"{") && raw.ends_with(b"}"), "{raw:?}");
                assert_eq!(&serde_json::from_slice::<Record>(&raw).unwrap(), record);
            }
        }
    }
}
