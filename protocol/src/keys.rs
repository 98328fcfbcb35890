//! Identities: ed25519 keys and signatures in newtypes that hide the crypto library.
//!
//! Public keys and signatures print as base58 (Bitcoin alphabet), as Solana does: an ed25519 public
//! key is also a valid Solana address, so a node's key can be its payout account.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::Signer;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

use crate::ProtocolError;

/// An ed25519 public key (a node's or a validator's identity).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; 64]);

/// An ed25519 secret key. Zeroized on drop; never printed (`Debug` shows `SecretKey(..)`).
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    /// A key from its 32-byte seed. Deterministic: tests use fixed seeds such as `[42; 32]`.
    pub fn from_bytes(seed: &[u8; 32]) -> Self {
        SecretKey(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// A fresh random key from the operating system's CSPRNG. Fails only when the OS has no
    /// entropy source, which the caller must treat as fatal.
    pub fn generate() -> Result<Self, rand_core::Error> {
        use rand_core::RngCore;
        let mut seed = [0u8; 32];
        rand_core::OsRng.try_fill_bytes(&mut seed)?;
        let key = SecretKey::from_bytes(&seed);
        seed.zeroize();
        Ok(key)
    }

    /// The 32-byte seed, for backups. Handle with care: whoever has it can sign as this identity.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `msg` (always canonical bytes from [`crate::Canon`]).
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.0.sign(msg).to_bytes())
    }
}

impl Clone for SecretKey {
    fn clone(&self) -> Self {
        SecretKey(self.0.clone())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl PublicKey {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        PublicKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Verifies `sig` over `msg`. Uses strict verification (rejects small-order keys and
    /// non-canonical signatures), so a signature is never malleable.
    pub fn verify(
        &self,
        msg: &[u8],
        sig: &Signature,
        what: &'static str,
    ) -> Result<(), ProtocolError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(&self.0)
            .map_err(|_| ProtocolError::BadSignature { what })?;
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        key.verify_strict(msg, &sig)
            .map_err(|_| ProtocolError::BadSignature { what })?;
        Ok(())
    }

    /// Whether the bytes are a valid point (a usable ed25519 key).
    pub fn is_valid(&self) -> bool {
        ed25519_dalek::VerifyingKey::from_bytes(&self.0).is_ok()
    }
}

impl Signature {
    pub const fn from_bytes(bytes: [u8; 64]) -> Self {
        Signature(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

/// Verifies many `(key, message, signature)` triples at once with ed25519 batch verification,
/// which is several times faster than one by one. On failure, callers that need to know *which*
/// signature failed verify individually.
pub fn verify_batch(items: &[(&PublicKey, &[u8], &Signature)]) -> Result<(), ProtocolError> {
    let what = "batch of signatures";
    let mut keys = Vec::with_capacity(items.len());
    let mut sigs = Vec::with_capacity(items.len());
    let mut msgs = Vec::with_capacity(items.len());
    // Decompressing a key takes a square root in the field, a sizeable share of each item's
    // cost; a batch's items usually all carry the same node key, so a key equal to the previous
    // item's is reused instead of decompressed again. Same keys, same result.
    let mut last: Option<(&PublicKey, ed25519_dalek::VerifyingKey)> = None;
    for (k, m, s) in items {
        let key = match last {
            Some((prev, key)) if prev == *k => key,
            _ => ed25519_dalek::VerifyingKey::from_bytes(&k.0)
                .map_err(|_| ProtocolError::BadSignature { what })?,
        };
        last = Some((*k, key));
        keys.push(key);
        sigs.push(ed25519_dalek::Signature::from_bytes(&s.0));
        msgs.push(*m);
    }
    ed25519_dalek::verify_batch(&msgs, &sigs, &keys)
        .map_err(|_| ProtocolError::BadSignature { what })
}

macro_rules! base58_text {
    ($ty:ident, $len:expr, $what:expr) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(crate::base58::encode(&self.0).as_str())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($ty), self)
            }
        }

        impl FromStr for $ty {
            type Err = ProtocolError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                // Plain canonical text (every well-formed message) takes the fast path; `bs58`
                // decides everything else and says why it fails.
                if let Some(bytes) = crate::base58::decode::<$len>(s.trim()) {
                    return Ok($ty(bytes));
                }
                let mut out = [0u8; $len];
                let n = bs58::decode(s.trim()).onto(&mut out).map_err(|e| {
                    ProtocolError::BadEncoding {
                        what: $what,
                        why: e.to_string(),
                    }
                })?;
                if n != $len {
                    return Err(ProtocolError::BadEncoding {
                        what: $what,
                        why: format!("expected {} bytes, got {n}", $len),
                    });
                }
                Ok($ty(out))
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(crate::base58::encode(&self.0).as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

base58_text!(PublicKey, 32, "public key");
base58_text!(Signature, 64, "signature");
