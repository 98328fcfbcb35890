#!/usr/bin/env python3
"""An independent implementation of Gleaner's signed formats, written from the protocol crate's
documentation alone, checked against the golden vectors in this folder.

Needs: blake3 and cryptography (PyPI). Run: python3 verify_vectors.py [DIR]
Prints one line per check and "N passed, N failed" at the end; exits non-zero on any failure.
"""
import hashlib
import json
import struct
import sys
from pathlib import Path

import blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58decode(s: str) -> bytes:
    n = 0
    for ch in s:
        n = n * 58 + ALPHABET.index(ch)
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * (len(s) - len(s.lstrip("1"))) + raw


class Canon:
    """The canonical encoding: domain tag as str, fixed-width LE integers, u32-prefixed strings."""

    def __init__(self, domain: str):
        self.buf = bytearray()
        self.str(domain)

    def u8(self, v): self.buf += struct.pack("<B", v); return self
    def u16(self, v): self.buf += struct.pack("<H", v); return self
    def u32(self, v): self.buf += struct.pack("<I", v); return self
    def u64(self, v): self.buf += struct.pack("<Q", v); return self
    def i64(self, v): self.buf += struct.pack("<q", v); return self
    def bool(self, v): self.buf += b"\x01" if v else b"\x00"; return self
    def bytes(self, b): self.u32(len(b)); self.buf += b; return self
    def str(self, s): return self.bytes(s.encode("utf-8"))
    def raw(self, b): assert len(b) == 32; self.buf += b; return self
    def hex(self, h): return self.raw(bytes.fromhex(h))
    def key(self, k): return self.raw(b58decode(k))


def b3(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


def verify(key_b58: str, msg: bytes, sig_b58: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(b58decode(key_b58)).verify(b58decode(sig_b58), msg)
        return True
    except Exception:
        return False


def outlinks_digest(links):
    c = Canon("gleaner/outlinks/v1").u32(len(links))
    for link in links:
        c.str(link)
    return b3(bytes(c.buf))


ROBOTS = {"allowed": 1, "unavailable": 2}
VERDICT = {"accepted": 1, "duplicate": 2, "rejected": 3}


def record_signing_bytes(r) -> bytes:
    c = Canon("gleaner/record/v1")
    c.str(r["lease_id"]).str(r["url"]).str(r["final_url"]).i64(r["fetched_at_ms"]).u16(r["status"])
    c.str(r["content_type"]).str(r["charset"]).u64(r["wire_bytes"]).u64(r["body_bytes"])
    c.bool(r["truncated"]).hex(r["raw_digest"]).str(r["title"]).hex(r["text_digest"]).str(r["lang"])
    c.u8(ROBOTS[r["robots"]]).u32(r["crawl_delay_ms"]).hex(r["outlinks_digest"]).key(r["node"])
    return bytes(c.buf)


def merkle_root(leaves):
    if not leaves:
        return b3(b"\x02")
    level = [b3(b"\x00" + leaf) for leaf in leaves]
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            pair = level[i:i + 2]
            nxt.append(b3(b"\x01" + pair[0] + pair[1]) if len(pair) == 2 else pair[0])
        level = nxt
    return level[0]


def sha(b): return hashlib.sha256(b).digest()


def reward_leaf(leaf):
    inner = sha(b58decode(leaf["claimant"]) + struct.pack("<QQ", leaf["amount"], leaf["locked"]))
    return sha(b"\x00" + inner)


def sorted_node(a, b):
    lo, hi = (a, b) if a <= b else (b, a)
    return sha(b"\x01" + lo + hi)


def main(folder: Path) -> int:
    results = []

    def check(name, ok):
        results.append(ok)
        print(("ok     " if ok else "FAILED ") + name)

    v = json.loads((folder / "keys.json").read_text())
    check("keys: node signature over the message",
          verify(v["node_public_base58"], v["message_utf8"].encode(), v["node_signature_base58"]))
    check("keys: base58 and hex agree", b58decode(v["node_public_base58"]).hex() == v["node_public_hex"])

    v = json.loads((folder / "record.json").read_text())
    r = v["record_json"]
    sb = record_signing_bytes(r)
    check("record: signing bytes", sb.hex() == v["signing_bytes_hex"])
    check("record: id = blake3(signing bytes)", b3(sb).hex() == v["record_id_hex"])
    check("record: text digest", b3(r["text"].encode()).hex() == r["text_digest"])
    check("record: outlinks digest", outlinks_digest(r["outlinks"]).hex() == r["outlinks_digest"])
    check("record: node signature", verify(r["node"], sb, r["signature"]))
    tampered = dict(r, title=r["title"] + "!")
    check("record: a changed title fails", not verify(r["node"], record_signing_bytes(tampered), r["signature"]))

    v = json.loads((folder / "batch.json").read_text())
    h = v["header_json"]
    root = merkle_root([bytes.fromhex(x) for x in v["record_ids_hex"]])
    check("batch: records root", root.hex() == v["records_root_hex"] == h["records_root"])
    hb = bytes(Canon("gleaner/batch/v1").key(h["node"]).i64(h["created_at_ms"]).u32(h["record_count"])
               .hex(h["records_root"]).buf)
    check("batch: header signing bytes", hb.hex() == v["header_signing_bytes_hex"])
    check("batch: id = blake3(header signing bytes)", b3(hb).hex() == v["batch_id_hex"])
    check("batch: header signature", verify(h["node"], hb, h["signature"]))

    v = json.loads((folder / "receipt.json").read_text())
    rc = v["receipt_json"]
    c = Canon("gleaner/receipt/v1").key(rc["validator"]).hex(rc["batch_id"]).key(rc["node"])
    c.u64(rc["epoch"]).i64(rc["issued_at_ms"]).str(rc["scoring"]).u32(len(rc["verdicts"]))
    for x in rc["verdicts"]:
        c.hex(x["record_id"]).u8(VERDICT[x["verdict"]]).str(x["reason"]).u64(x["points"])
    c.u64(rc["points"])
    check("receipt: signing bytes", bytes(c.buf).hex() == v["signing_bytes_hex"])
    check("receipt: validator signature", verify(rc["validator"], bytes(c.buf), rc["signature"]))
    check("receipt: points add up", sum(x["points"] for x in rc["verdicts"]) == rc["points"])

    v = json.loads((folder / "merkle.json").read_text())
    leaves = [bytes.fromhex(x) for x in v["leaves_hex"]]
    check("merkle: root of 5 leaves", merkle_root(leaves).hex() == v["root_hex"])
    check("merkle: empty root", merkle_root([]).hex() == v["empty_root_hex"])
    acc = b3(b"\x00" + leaves[4])
    for step in v["proof_of_leaf_4"]:
        sib = bytes.fromhex(step["hash"])
        acc = b3(b"\x01" + sib + acc) if step["side"] == "left" else b3(b"\x01" + acc + sib)
    check("merkle: proof of leaf 4", acc.hex() == v["root_hex"])

    v = json.loads((folder / "epoch.json").read_text())
    hashes = [reward_leaf(x) for x in v["leaves"]]
    check("epoch: leaf hashes", [x.hex() for x in hashes] == v["leaf_hashes_hex"])
    level = hashes
    while len(level) > 1:
        level = [sorted_node(level[i], level[i + 1] if i + 1 < len(level) else level[i])
                 for i in range(0, len(level), 2)]
    check("epoch: reward root", level[0].hex() == v["root_hex"])
    node_leaf = next(x for x in v["leaves"] if x["claimant"] == json.loads((folder / "keys.json").read_text())["node_public_base58"])
    acc = reward_leaf(node_leaf)
    for sib in v["proof_for_node_hex"]:
        acc = sorted_node(acc, bytes.fromhex(sib))
    check("epoch: claim proof", acc.hex() == v["root_hex"])
    e = v["epoch_root_json"]
    eb = bytes(Canon("gleaner/epoch/v1").key(e["validator"]).u64(e["epoch"]).i64(e["closed_at_ms"])
               .hex(e["root"]).u64(e["total"]).u32(e["leaf_count"]).buf)
    check("epoch: signing bytes", eb.hex() == v["epoch_signing_bytes_hex"])
    check("epoch: validator signature", verify(e["validator"], eb, e["signature"]))

    v = json.loads((folder / "revocation.json").read_text())
    r = v["revocation_json"]
    vb = bytes(Canon("gleaner/revocation/v1").key(r["validator"]).u64(r["seq"]).hex(r["record_id"])
               .key(r["node"]).str(r["url"]).u64(r["epoch"]).str(r["reason"]).buf)
    check("revocation: signing bytes", vb.hex() == v["signing_bytes_hex"])
    check("revocation: validator signature", verify(r["validator"], vb, r["signature"]))

    v = json.loads((folder / "request.json").read_text())
    hd = v["headers"]
    rb = bytes(Canon("gleaner/request/v1").str(v["method"]).str(v["path_and_query"]).i64(v["timestamp_ms"])
               .str(v["nonce_hex"]).raw(b3(v["body_utf8"].encode())).key(hd["x-gleaner-node"]).buf)
    check("request: signing bytes", rb.hex() == v["signing_bytes_hex"])
    check("request: node signature", verify(hd["x-gleaner-node"], rb, hd["x-gleaner-signature"]))

    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent))
