//! Tampering with any signed field, any byte of a signature, or any encoded byte makes
//! verification fail with a typed reason; decoding respects its limits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gleaner_protocol::{
    Batch, DecodeLimits, Digest, ProtocolError, PublicKey, RequestAuth, RobotsVerdict, SecretKey,
    Signature, auth::MAX_CLOCK_SKEW_MS,
};
use proptest::prelude::*;

fn code(r: Result<(), ProtocolError>) -> &'static str {
    r.err().map(|e| e.code()).unwrap_or("ok")
}

type RecordMutation = Box<dyn Fn(&mut gleaner_protocol::Record)>;
type DraftMutation = Box<dyn Fn(&mut gleaner_protocol::RecordDraft)>;

/// Every field of a record, changed one at a time.
fn record_mutations() -> Vec<(&'static str, RecordMutation)> {
    vec![
        ("lease_id", Box::new(|r| r.lease_id.push('x'))),
        ("url", Box::new(|r| r.url.push('x'))),
        ("final_url", Box::new(|r| r.final_url.push('x'))),
        ("fetched_at_ms", Box::new(|r| r.fetched_at_ms += 1)),
        ("status", Box::new(|r| r.status = 203)),
        (
            "content_type",
            Box::new(|r| r.content_type = "application/xhtml+xml".into()),
        ),
        ("charset", Box::new(|r| r.charset = "windows-1252".into())),
        ("wire_bytes", Box::new(|r| r.wire_bytes += 1)),
        ("body_bytes", Box::new(|r| r.body_bytes += 1)),
        ("truncated", Box::new(|r| r.truncated = !r.truncated)),
        (
            "raw_digest",
            Box::new(|r| r.raw_digest = Digest::of(b"other")),
        ),
        ("title", Box::new(|r| r.title.push('!'))),
        ("lang", Box::new(|r| r.lang = "de".into())),
        (
            "robots",
            Box::new(|r| r.robots = RobotsVerdict::Unavailable),
        ),
        ("crawl_delay_ms", Box::new(|r| r.crawl_delay_ms += 1)),
        (
            "node",
            Box::new(|r| r.node = SecretKey::from_bytes(&[1; 32]).public()),
        ),
        // Content changed together with its digest: only the signature catches it.
        (
            "text+digest",
            Box::new(|r| {
                r.text.push_str(" fabricated");
                r.text_digest = Digest::of(r.text.as_bytes());
            }),
        ),
        (
            "outlinks+digest",
            Box::new(|r| {
                r.outlinks.push("https://evil.example/");
                r.outlinks_digest = gleaner_protocol::outlinks_digest(&r.outlinks);
            }),
        ),
    ]
}

#[test]
fn every_record_field_is_covered_by_the_signature() {
    for (field, mutate) in record_mutations() {
        let mut r = record(1);
        let id = r.id();
        mutate(&mut r);
        assert_eq!(
            code(r.verify()),
            "bad_signature",
            "changing {field} must break the signature"
        );
        assert_ne!(r.id(), id, "changing {field} must change the record id");
    }
}

#[test]
fn text_or_outlinks_without_digest_is_a_digest_mismatch() {
    let mut r = record(1);
    r.text.push_str(" fabricated");
    assert_eq!(code(r.verify()), "digest_mismatch");
    let mut r = record(1);
    r.outlinks.pop();
    assert_eq!(code(r.verify()), "digest_mismatch");
}

#[test]
fn absurd_fields_are_invalid() {
    let cases: Vec<(&str, DraftMutation, &str)> = vec![
        (
            "huge url",
            Box::new(|d| d.url = format!("https://a.example/{}", "a".repeat(9_000))),
            "too_large",
        ),
        (
            "control char",
            Box::new(|d| d.title = "a\u{0}b".into()),
            "invalid_field",
        ),
        (
            "newline in url",
            Box::new(|d| d.url = "https://a.example/\nx".into()),
            "invalid_field",
        ),
        (
            "ftp url",
            Box::new(|d| d.url = "ftp://a.example/".into()),
            "invalid_field",
        ),
        ("status", Box::new(|d| d.status = 42), "invalid_field"),
        (
            "old time",
            Box::new(|d| d.fetched_at_ms = 0),
            "invalid_field",
        ),
        (
            "empty lease",
            Box::new(|d| d.lease_id.clear()),
            "invalid_field",
        ),
        (
            "newline in a link",
            Box::new(|d| {
                d.outlinks = vec!["https://a.example/".into(), "https://b.example/\nx".into()]
            }),
            "invalid_field",
        ),
        (
            "C1 control in a link",
            Box::new(|d| d.outlinks = vec!["https://b.example/\u{85}x".into()]),
            "invalid_field",
        ),
        (
            "huge link",
            Box::new(|d| d.outlinks = vec![format!("https://a.example/{}", "a".repeat(9_000))]),
            "too_large",
        ),
        // The links are checked in order: the first link's fault is the one reported.
        (
            "control char, then a huge link",
            Box::new(|d| {
                d.outlinks = vec![
                    "https://a.example/\u{7f}".into(),
                    format!("https://a.example/{}", "a".repeat(9_000)),
                ]
            }),
            "invalid_field",
        ),
        (
            "huge link, then a control char",
            Box::new(|d| {
                d.outlinks = vec![
                    format!("https://a.example/{}", "a".repeat(9_000)),
                    "https://a.example/\u{7f}".into(),
                ]
            }),
            "too_large",
        ),
        (
            "too many links",
            Box::new(|d| d.outlinks = vec!["https://a.example/".into(); 1_001]),
            "too_large",
        ),
    ];
    for (name, mutate, expected) in cases {
        let mut d = draft(1);
        mutate(&mut d);
        let r = d.sign(&node_key());
        assert_eq!(code(r.verify()), expected, "{name}");
    }
}

#[test]
fn batch_tampering_fails_with_a_reason() {
    let b = batch(4);
    b.verify().unwrap();

    let mut dropped = b.clone();
    dropped.records.pop();
    assert_eq!(code(dropped.verify_header()), "count_mismatch");

    let mut swapped = b.clone();
    swapped.records.swap(0, 1);
    assert_eq!(code(swapped.verify_header()), "digest_mismatch");

    let mut replaced = b.clone();
    replaced.records[2] = record(99);
    assert_eq!(code(replaced.verify_header()), "digest_mismatch");

    let mut foreign = b.clone();
    foreign.records[0] = draft(0).sign(&SecretKey::from_bytes(&[3; 32]));
    assert_eq!(code(foreign.verify_header()), "invalid_field");

    let mut resigned_by_other = b.clone();
    resigned_by_other.header.node = SecretKey::from_bytes(&[3; 32]).public();
    assert_ne!(code(resigned_by_other.verify_header()), "ok");

    let mut time = b.clone();
    time.header.created_at_ms += 1;
    assert_eq!(code(time.verify_header()), "bad_signature");
    assert_ne!(time.id(), b.id(), "the batch id covers the header");

    let mut forged_record = b.clone();
    forged_record.records[3].signature = Signature::from_bytes([1; 64]);
    // The record id covers only signing bytes, so the header still matches; the record fails.
    forged_record.verify_header().unwrap();
    assert_eq!(code(forged_record.verify()), "bad_signature");
    let per_record = gleaner_protocol::verify_records(&forged_record.records);
    assert!(per_record[..3].iter().all(Result::is_ok));
    assert_eq!(per_record[3].as_ref().unwrap_err().code(), "bad_signature");
}

#[test]
fn ids_and_signing_bytes_handed_in_are_checked_like_computed_ones() {
    let b = batch(4);
    let signing: Vec<Vec<u8>> = b.records.iter().map(|r| r.signing_bytes()).collect();
    let ids: Vec<Digest> = signing
        .iter()
        .map(|s| gleaner_protocol::Record::id_of(s))
        .collect();
    assert_eq!(ids, b.records.iter().map(|r| r.id()).collect::<Vec<_>>());
    b.verify_header_with_ids(&ids).unwrap();
    // A wrong id is a wrong root; a missing one is a count mismatch.
    let mut wrong = ids.clone();
    wrong[1] = Digest::of(b"another record");
    assert_eq!(code(b.verify_header_with_ids(&wrong)), "digest_mismatch");
    assert_eq!(code(b.verify_header_with_ids(&ids[..3])), "count_mismatch");

    let all = gleaner_protocol::verify_records_signed(&b.records, &signing);
    assert!(all.iter().all(Result::is_ok));
    // Signing bytes of another record fail that record's signature; none at all fails too.
    let mut swapped = signing.clone();
    swapped.swap(0, 1);
    let per_record = gleaner_protocol::verify_records_signed(&b.records, &swapped);
    assert_eq!(per_record[0].as_ref().unwrap_err().code(), "bad_signature");
    assert_eq!(per_record[1].as_ref().unwrap_err().code(), "bad_signature");
    assert!(per_record[2..].iter().all(Result::is_ok));
    let short = gleaner_protocol::verify_records_signed(&b.records, &signing[..2]);
    assert!(short[..2].iter().all(Result::is_ok));
    assert!(
        short[2..]
            .iter()
            .all(|r| r.as_ref().unwrap_err().code() == "bad_signature")
    );
}

#[test]
fn resubmitted_batch_has_the_same_id() {
    assert_eq!(batch(3).id(), batch(3).id());
    assert_ne!(batch(3).id(), batch(4).id());
}

#[test]
fn receipt_tampering_fails() {
    let b = batch(3);
    let r = receipt_for(&b);
    r.verify().unwrap();
    let mut more = r.clone();
    more.verdicts[1].points = 500;
    more.points += 500;
    assert_eq!(code(more.verify()), "bad_signature");
    let mut sum = r.clone();
    sum.points += 1;
    assert_eq!(code(sum.verify()), "count_mismatch");
    let mut reason = r.clone();
    reason.verdicts[2].reason = "ok".into();
    assert_eq!(code(reason.verify()), "bad_signature");
    let other = SecretKey::from_bytes(&[8; 32]).public();
    assert_eq!(code(r.verify_for(&other, &b.id())), "invalid_field");
    assert_eq!(
        code(r.verify_for(&validator_key().public(), &Digest::of(b"x"))),
        "invalid_field"
    );
}

#[test]
fn request_auth_rejects_tampering_and_stale_times() {
    let body = b"{}";
    let a = RequestAuth::sign(&node_key(), "POST", "/v1/batches", T0, [1; 16], body);
    a.verify("POST", "/v1/batches", body, T0).unwrap();
    assert_eq!(
        code(a.verify("GET", "/v1/batches", body, T0)),
        "bad_signature"
    );
    assert_eq!(
        code(a.verify("POST", "/v1/jobs/lease", body, T0)),
        "bad_signature"
    );
    assert_eq!(
        code(a.verify("POST", "/v1/batches", b"{ }", T0)),
        "bad_signature"
    );
    assert_eq!(
        code(a.verify("POST", "/v1/batches", body, T0 + MAX_CLOCK_SKEW_MS + 1)),
        "stale_request"
    );
    assert_eq!(
        code(a.verify("POST", "/v1/batches", body, T0 - MAX_CLOCK_SKEW_MS - 1)),
        "stale_request"
    );
    let [(_, node), (_, ts), (_, nonce), (_, sig)] = a.headers();
    let parsed = RequestAuth::from_headers(&node, &ts, &nonce, &sig).unwrap();
    assert_eq!(parsed, a);
    assert_eq!(
        RequestAuth::from_headers(&node, "soon", &nonce, &sig)
            .unwrap_err()
            .code(),
        "bad_encoding"
    );
    assert_eq!(
        RequestAuth::from_headers(&node, &ts, "00", &sig)
            .unwrap_err()
            .code(),
        "bad_encoding"
    );
    assert_eq!(
        RequestAuth::from_headers("0OIl", &ts, &nonce, &sig)
            .unwrap_err()
            .code(),
        "bad_encoding"
    );
}

#[test]
fn keys_print_base58_and_secrets_never_print() {
    let k = node_key();
    let text = k.public().to_string();
    assert_eq!(text.parse::<PublicKey>().unwrap(), k.public());
    assert_eq!(format!("{k:?}"), "SecretKey(..)");
    assert!("abc".parse::<PublicKey>().is_err());
    let json = serde_json::to_string(&k.public()).unwrap();
    assert_eq!(json, format!("\"{text}\""));
}

#[test]
fn zstd_bomb_is_refused_within_the_limit() {
    // 64 MiB of zeroes compress to a few KB.
    let bomb = zstd::bulk::compress(&vec![0u8; 64 * 1024 * 1024], 19).unwrap();
    assert!(bomb.len() < 64 * 1024);
    let limits = DecodeLimits {
        max_decompressed_bytes: 1024 * 1024,
        ..Default::default()
    };
    let err = Batch::decode(&bomb, &limits).unwrap_err();
    assert_eq!(err.code(), "too_large");
    let ProtocolError::TooLarge { actual, limit, .. } = err else {
        unreachable!()
    };
    assert_eq!(actual, limit + 1, "decoding stops one byte past the limit");
}

/// `decompress_limited` takes a one-shot path when the frame declares its size; frames that
/// declare nothing, several frames, and headers that lie get the streaming decoder's answers.
#[test]
fn declared_sizes_are_not_trusted() {
    use gleaner_protocol::decompress_limited;
    let a = b"first frame, with its size in the header ".repeat(20);
    let b = b"and a second one".repeat(20);
    let frame_a = zstd::bulk::compress(&a, 3).unwrap();
    let frame_b = zstd::bulk::compress(&b, 3).unwrap();
    assert_eq!(decompress_limited(&frame_a, a.len()).unwrap(), a);
    let too_large = decompress_limited(&frame_a, a.len() - 1).unwrap_err();
    assert_eq!(too_large.code(), "too_large");
    // Two frames: the first declares less than the body holds.
    let both = [frame_a.clone(), frame_b].concat();
    let whole = [a.clone(), b.clone()].concat();
    assert_eq!(decompress_limited(&both, whole.len()).unwrap(), whole);
    assert_eq!(
        decompress_limited(&both, whole.len() - 1)
            .unwrap_err()
            .code(),
        "too_large"
    );
    // A frame with no declared size (a streaming encoder's).
    let mut streamed = Vec::new();
    {
        let mut enc = zstd::stream::write::Encoder::new(&mut streamed, 3).unwrap();
        std::io::Write::write_all(&mut enc, &a).unwrap();
        enc.finish().unwrap();
    }
    assert!(matches!(
        zstd::zstd_safe::get_frame_content_size(&streamed),
        Ok(None)
    ));
    assert_eq!(decompress_limited(&streamed, a.len()).unwrap(), a);
    // A header that lies about the size, in either direction, is malformed, never a partial body.
    let small = zstd::bulk::compress(b"a short text of less than 256 bytes", 3).unwrap();
    assert!(matches!(
        zstd::zstd_safe::get_frame_content_size(&small),
        Ok(Some(35))
    ));
    // Magic (4 bytes), frame header descriptor (single segment), then a 1-byte content size.
    assert_eq!(small[5], 35);
    for lie in [10u8, 34, 36, 200] {
        let mut lying = small.clone();
        lying[5] = lie;
        let err = decompress_limited(&lying, 1024).unwrap_err();
        assert_eq!(err.code(), "malformed", "declared {lie}");
    }
    // Garbage after a valid frame is refused too.
    let trailing = [frame_a, b"junk".to_vec()].concat();
    assert_eq!(
        decompress_limited(&trailing, 1 << 20).unwrap_err().code(),
        "malformed"
    );
}

#[test]
fn decode_rejects_oversize_counts_and_garbage() {
    let b = batch(5);
    let enc = b.encode().unwrap();
    let small = DecodeLimits {
        max_compressed_bytes: 10,
        ..Default::default()
    };
    assert_eq!(Batch::decode(&enc, &small).unwrap_err().code(), "too_large");
    let few = DecodeLimits {
        max_records: 4,
        ..Default::default()
    };
    assert_eq!(Batch::decode(&enc, &few).unwrap_err().code(), "too_large");
    let mut lie = b.clone();
    lie.header.record_count = 6;
    assert_eq!(
        Batch::decode(&lie.encode().unwrap(), &Default::default())
            .unwrap_err()
            .code(),
        "count_mismatch"
    );
    assert_eq!(
        Batch::decode(b"not zstd", &Default::default())
            .unwrap_err()
            .code(),
        "malformed"
    );
    let not_json = zstd::bulk::compress(b"{\"header\":", 3).unwrap();
    assert_eq!(
        Batch::decode(&not_json, &Default::default())
            .unwrap_err()
            .code(),
        "malformed"
    );
    let truncated = &enc[..enc.len() / 2];
    assert_eq!(
        Batch::decode(truncated, &Default::default())
            .unwrap_err()
            .code(),
        "malformed"
    );
    let unknown = zstd::bulk::compress(
        serde_json::to_string(&b)
            .unwrap()
            .replacen("{\"header\"", "{\"extra\":1,\"header\"", 1)
            .as_bytes(),
        3,
    )
    .unwrap();
    assert_eq!(
        Batch::decode(&unknown, &Default::default())
            .unwrap_err()
            .code(),
        "malformed"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn batch_round_trips(n in 0u32..12, title in "\\PC{0,40}", text in "\\PC{0,400}") {
        let records = (0..n).map(|i| {
            let mut d = draft(i);
            d.title = title.clone();
            d.text = text.clone();
            d.body_bytes = 1 << 20;
            d.sign(&node_key())
        }).collect();
        let b = Batch::new(&node_key(), T0, records);
        let decoded = Batch::decode(&b.encode().unwrap(), &DecodeLimits::default()).unwrap();
        prop_assert_eq!(&decoded, &b);
        prop_assert_eq!(decoded.id(), b.id());
        prop_assert!(decoded.verify().is_ok());
    }

    #[test]
    fn flipping_any_signing_byte_breaks_the_record_signature(pos in 0usize..10_000, bit in 0u8..8) {
        let r = record(3);
        let mut bytes = r.signing_bytes();
        let pos = pos % bytes.len();
        bytes[pos] ^= 1 << bit;
        prop_assert!(r.node.verify(&bytes, &r.signature, "record").is_err());
    }

    #[test]
    fn flipping_any_signature_byte_fails(pos in 0usize..64, bit in 0u8..8) {
        let mut r = record(3);
        let mut sig = *r.signature.as_bytes();
        sig[pos] ^= 1 << bit;
        r.signature = Signature::from_bytes(sig);
        prop_assert_eq!(code(r.verify()), "bad_signature");
    }

    #[test]
    fn flipping_any_encoded_byte_never_panics_and_never_verifies_as_changed(pos in 0usize..100_000, bit in 0u8..8) {
        let b = batch(3);
        let mut enc = b.encode().unwrap();
        let pos = pos % enc.len();
        enc[pos] ^= 1 << bit;
        if let Ok(decoded) = Batch::decode(&enc, &DecodeLimits::default()) {
            // Either it decodes to the same batch (a flip in JSON whitespace cannot exist here, but
            // zstd may ignore some bits) or verification fails.
            prop_assert!(decoded == b || decoded.verify().is_err());
        }
    }

    #[test]
    fn merkle_proofs_verify_for_every_leaf(n in 1usize..40) {
        let leaves: Vec<Digest> = (0..n).map(|i| Digest::of(&i.to_le_bytes())).collect();
        let tree = gleaner_protocol::MerkleTree::new(&leaves);
        for (i, leaf) in leaves.iter().enumerate() {
            let proof = tree.proof(i).unwrap();
            prop_assert!(gleaner_protocol::verify_proof(&tree.root(), leaf, &proof).is_ok());
            let other = Digest::of(b"not a leaf");
            prop_assert!(gleaner_protocol::verify_proof(&tree.root(), &other, &proof).is_err());
        }
        prop_assert!(tree.proof(n).is_none());
    }

    #[test]
    fn reward_proofs_verify_and_reject_inflated_amounts(n in 1u8..30) {
        let leaves: Vec<_> = (0..n).map(|i| gleaner_protocol::RewardLeaf {
            claimant: SecretKey::from_bytes(&[i; 32]).public(),
            amount: u64::from(i) * 10 + 1,
            locked: 0,
        }).collect();
        let tree = gleaner_protocol::RewardTree::new(leaves.clone()).unwrap();
        for l in &leaves {
            let (leaf, proof) = tree.proof(&l.claimant).unwrap();
            prop_assert_eq!(leaf, *l);
            prop_assert!(gleaner_protocol::verify_reward_proof(&tree.root(), &leaf, &proof).is_ok());
            let inflated = gleaner_protocol::RewardLeaf { amount: leaf.amount + 1, ..leaf };
            prop_assert!(gleaner_protocol::verify_reward_proof(&tree.root(), &inflated, &proof).is_err());
        }
    }
}

#[test]
fn duplicate_claimants_are_refused() {
    let k = node_key().public();
    let leaf = gleaner_protocol::RewardLeaf {
        claimant: k,
        amount: 1,
        locked: 0,
    };
    assert_eq!(
        gleaner_protocol::RewardTree::new(vec![leaf, leaf])
            .unwrap_err()
            .code(),
        "invalid_field"
    );
}
