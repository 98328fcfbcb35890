//! The canonical byte encoding used for everything that is hashed or signed.
//!
//! This is the *only* place that turns protocol values into signed bytes. The rules, which another
//! implementation must follow exactly:
//!
//! * Every message starts with its domain tag (for example `gleaner/record/v1`) encoded as a
//!   `str` field (below). The tag names the object and the format version, so a signature over one
//!   kind of object can never be replayed as another.
//! * Integers are fixed width, little-endian: `u8`, `u16`, `u32`, `u64`, `i64` (two's complement).
//! * `bool` is one byte, `0x00` or `0x01`.
//! * `str` and `bytes` are a `u32` little-endian byte length followed by the bytes (UTF-8 for `str`,
//!   never normalised: the bytes are signed as they are).
//! * Digests, public keys are their raw 32 bytes; signatures are raw 64 bytes.
//! * Fields appear in the order the object's `signing_bytes` documents; there are no optional fields
//!   and no floats.

use crate::{Digest, PublicKey};

/// A writer of canonical bytes. Start one with [`Canon::new`] and the object's domain tag.
#[derive(Debug, Clone)]
pub struct Canon(Vec<u8>);

impl Canon {
    /// Starts a message with its domain tag.
    pub fn new(domain: &str) -> Self {
        let mut c = Canon(Vec::with_capacity(256));
        c.str(domain);
        c
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.0.push(u8::from(v));
        self
    }

    /// Length-prefixed bytes. Lengths above `u32::MAX` cannot occur: every field is bounded far below
    /// that by the protocol's limits, and encoding saturates rather than wrapping.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.0.extend_from_slice(v);
        self
    }

    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    pub fn digest(&mut self, d: &Digest) -> &mut Self {
        self.0.extend_from_slice(d.as_bytes());
        self
    }

    pub fn key(&mut self, k: &PublicKey) -> &mut Self {
        self.0.extend_from_slice(k.as_bytes());
        self
    }

    /// The finished message.
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}
