//! Golden test vectors: fixed keys from fixed seeds, fixed inputs, and the expected hex of signing
//! bytes, digests and signatures, checked in under `tests/vectors/` so that any other
//! implementation can be tested against them.
//!
//! Regenerate (only when a format version changes on purpose) with
//! `GLEANER_BLESS=1 cargo test -p gleaner-protocol --test golden`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::*;
use gleaner_protocol::{
    Digest, EpochRoot, MerkleTree, RequestAuth, Revocation, RewardLeaf, RewardTree, SecretKey,
    merkle_root, outlinks_digest, verify_proof, verify_reward_proof,
};
use serde_json::{Value, json};

fn check(name: &str, actual: Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(format!("{name}.json"));
    let pretty = serde_json::to_string_pretty(&actual).unwrap() + "\n";
    if std::env::var_os("GLEANER_BLESS").is_some() {
        std::fs::write(&path, pretty).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "missing golden file {}: {e}; run with GLEANER_BLESS=1",
            path.display()
        )
    });
    assert_eq!(
        serde_json::from_str::<Value>(&expected).unwrap(),
        actual,
        "golden vector {name} changed: a signed format changed without a version bump"
    );
}

#[test]
fn keys() {
    let node = node_key();
    let validator = validator_key();
    let msg = b"gleaner golden message";
    check(
        "keys",
        json!({
            "node_seed_hex": hex::encode([42u8; 32]),
            "node_public_base58": node.public().to_string(),
            "node_public_hex": hex::encode(node.public().as_bytes()),
            "validator_seed_hex": hex::encode([7u8; 32]),
            "validator_public_base58": validator.public().to_string(),
            "message_utf8": "gleaner golden message",
            "node_signature_base58": node.sign(msg).to_string(),
            "node_signature_hex": hex::encode(node.sign(msg).as_bytes()),
        }),
    );
    assert_eq!(SecretKey::from_bytes(&[42; 32]).public(), node.public());
}

#[test]
fn record() {
    let r = common::record(1);
    r.verify().unwrap();
    check(
        "record",
        json!({
            "record_json": r,
            "signing_bytes_hex": hex::encode(r.signing_bytes()),
            "text_digest_hex": r.text_digest.to_string(),
            "outlinks_digest_hex": outlinks_digest(&r.outlinks).to_string(),
            "record_id_hex": r.id().to_string(),
            "signature_base58": r.signature.to_string(),
        }),
    );
}

#[test]
fn batch() {
    let b = common::batch(3);
    b.verify().unwrap();
    let encoded = b.encode().unwrap();
    let decoded = gleaner_protocol::Batch::decode(&encoded, &Default::default()).unwrap();
    assert_eq!(decoded, b);
    check(
        "batch",
        json!({
            "header_json": b.header,
            "record_ids_hex": b.records.iter().map(|r| r.id().to_string()).collect::<Vec<_>>(),
            "records_root_hex": b.header.records_root.to_string(),
            "header_signing_bytes_hex": hex::encode(b.header.signing_bytes()),
            "batch_id_hex": b.id().to_string(),
        }),
    );
}

#[test]
fn receipt() {
    let b = common::batch(3);
    let r = receipt_for(&b);
    r.verify_for(&validator_key().public(), &b.id()).unwrap();
    check(
        "receipt",
        json!({
            "receipt_json": r,
            "signing_bytes_hex": hex::encode(r.signing_bytes()),
        }),
    );
}

#[test]
fn merkle() {
    let leaves: Vec<_> = (0..5u8)
        .map(|i| gleaner_protocol::Digest::of(&[i]))
        .collect();
    let tree = MerkleTree::new(&leaves);
    let proof = tree.proof(4).unwrap();
    verify_proof(&tree.root(), &leaves[4], &proof).unwrap();
    check(
        "merkle",
        json!({
            "leaves_hex": leaves.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "root_hex": tree.root().to_string(),
            "empty_root_hex": merkle_root(&[]).to_string(),
            "proof_of_leaf_4": proof,
        }),
    );
}

#[test]
fn epoch() {
    let claimants = [node_key(), validator_key(), SecretKey::from_bytes(&[1; 32])];
    let leaves = claimants
        .iter()
        .enumerate()
        .map(|(i, k)| RewardLeaf {
            claimant: k.public(),
            amount: 1_000 * (i as u64 + 1),
            locked: 0,
        })
        .collect();
    let tree = RewardTree::new(leaves).unwrap();
    let (leaf, proof) = tree.proof(&node_key().public()).unwrap();
    verify_reward_proof(&tree.root(), &leaf, &proof).unwrap();
    let root = EpochRoot::sign(
        &validator_key(),
        3,
        T0 + 3_600_000,
        tree.root(),
        tree.total(),
        3,
    );
    root.verify().unwrap();
    check(
        "epoch",
        json!({
            "leaves": tree.leaves(),
            "leaf_hashes_hex": tree.leaves().iter().map(|l| hex::encode(l.hash())).collect::<Vec<_>>(),
            "root_hex": hex::encode(tree.root()),
            "total": tree.total(),
            "proof_for_node_hex": proof.iter().map(hex::encode).collect::<Vec<_>>(),
            "epoch_root_json": root,
            "epoch_signing_bytes_hex": hex::encode(root.signing_bytes()),
        }),
    );
}

#[test]
fn revocation() {
    let r = Revocation::sign(
        &validator_key(),
        17,
        Digest::of(b"a revoked record"),
        node_key().public(),
        "https://example.org/a".into(),
        3,
        "failed_cross_check".into(),
    );
    r.verify().unwrap();
    let mut forged = r.clone();
    forged.reason = "page_not_found".into();
    assert!(forged.verify().is_err(), "every field is signed");
    check(
        "revocation",
        json!({
            "revocation_json": r,
            "signing_bytes_hex": hex::encode(r.signing_bytes()),
        }),
    );
}

#[test]
fn request() {
    let body = br#"{"max":8}"#;
    let auth = RequestAuth::sign(&node_key(), "POST", "/v1/jobs/lease", T0, [9; 16], body);
    auth.verify("POST", "/v1/jobs/lease", body, T0 + 1_000)
        .unwrap();
    check(
        "request",
        json!({
            "method": "POST",
            "path_and_query": "/v1/jobs/lease",
            "timestamp_ms": T0,
            "nonce_hex": auth.nonce,
            "body_utf8": std::str::from_utf8(body).unwrap(),
            "signing_bytes_hex": hex::encode(gleaner_protocol::auth::request_signing_bytes(
                "POST", "/v1/jobs/lease", T0, &auth.nonce, body, &auth.node)),
            "headers": auth.headers().iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<std::collections::BTreeMap<_, _>>(),
        }),
    );
}
