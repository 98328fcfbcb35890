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
///
/// The check is ed25519-dalek's `verify_batch` equation, with each signature `i` weighted by a
/// 128-bit `zᵢ`:
///
/// `(−Σ zᵢ·sᵢ)·B + Σ zᵢ·Rᵢ + Σ (zᵢ·H(Rᵢ‖Aᵢ‖Mᵢ))·Aᵢ = 0`
///
/// with the same rules: `s` canonical (below the group order), `R` and `A` valid encodings,
/// `H` = SHA-512 of `R`, `A` (as given) and the message, reduced mod the order; no cofactor. As
/// in ed25519-dalek, the `zᵢ` are derived from a hash of every input (here blake3's key
/// derivation over each `H(Rᵢ‖Aᵢ‖Mᵢ)` and `sᵢ`), so they are fixed only once the signatures are,
/// and the result is deterministic.
///
/// One change: the terms of signatures made by the same key are summed into one term per key
/// before the multiscalar multiplication, which is algebraically the same sum. A batch's records
/// almost always share a node's key, so the multiplication has about `n + 2` points instead of
/// `2n + 1`, and the dropped ones are the costly kind (full-width scalars; the `Rᵢ` have 128-bit
/// ones).
pub fn verify_batch(items: &[(&PublicKey, &[u8], &Signature)]) -> Result<(), ProtocolError> {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
    use sha2::{Digest as _, Sha512};

    let fail = || ProtocolError::BadSignature {
        what: "batch of signatures",
    };
    // Per item: s, R, H(R‖A‖M), and the index of its key's point in `points`.
    let mut parsed: Vec<(Scalar, EdwardsPoint, Scalar, usize)> = Vec::with_capacity(items.len());
    // Each distinct key decompressed once, in order of first use, and where it went.
    let mut points: Vec<EdwardsPoint> = Vec::new();
    let mut index_of: std::collections::HashMap<&PublicKey, usize> =
        std::collections::HashMap::new();
    let mut transcript = blake3::Hasher::new_derive_key(BATCH_WEIGHTS_CONTEXT);
    for (key, message, signature) in items {
        let (r_bytes, s_bytes) = signature.0.split_at(32);
        let s_bytes: [u8; 32] = s_bytes.try_into().map_err(|_| fail())?;
        let s: Scalar = Option::from(Scalar::from_canonical_bytes(s_bytes)).ok_or_else(fail)?;
        let r = CompressedEdwardsY::from_slice(r_bytes)
            .ok()
            .and_then(|c| c.decompress())
            .ok_or_else(fail)?;
        let k = match index_of.entry(*key) {
            std::collections::hash_map::Entry::Occupied(e) => *e.get(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let point = ed25519_dalek::VerifyingKey::from_bytes(&key.0)
                    .map_err(|_| fail())?
                    .to_edwards();
                points.push(point);
                *e.insert(points.len() - 1)
            }
        };
        let hram: [u8; 64] = Sha512::new()
            .chain_update(r_bytes)
            .chain_update(key.0)
            .chain_update(message)
            .finalize()
            .into();
        transcript.update(&hram);
        transcript.update(&s_bytes);
        parsed.push((s, r, Scalar::from_bytes_mod_order_wide(&hram), k));
    }
    let mut weights = transcript.finalize_xof();
    let mut b_coefficient = Scalar::ZERO;
    let mut key_coefficients = vec![Scalar::ZERO; points.len()];
    let mut r_scalars = Vec::with_capacity(parsed.len());
    let mut r_points = Vec::with_capacity(parsed.len());
    for (s, r, hram, k) in parsed {
        let mut z = [0u8; 16];
        weights.fill(&mut z);
        let z = Scalar::from(u128::from_le_bytes(z));
        b_coefficient += z * s;
        if let Some(c) = key_coefficients.get_mut(k) {
            *c += z * hram;
        }
        r_scalars.push(z);
        r_points.push(r);
    }
    let sum = EdwardsPoint::vartime_multiscalar_mul(
        std::iter::once(-b_coefficient)
            .chain(r_scalars)
            .chain(key_coefficients),
        std::iter::once(ED25519_BASEPOINT_POINT)
            .chain(r_points)
            .chain(points),
    );
    if sum.is_identity() {
        Ok(())
    } else {
        Err(fail())
    }
}

/// blake3 key-derivation context of [`verify_batch`]'s weights.
const BATCH_WEIGHTS_CONTEXT: &str = "gleaner 2026-12-03 ed25519 batch verification weights";

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// ed25519-dalek's own batch verification, the reference for [`verify_batch`].
    fn dalek(items: &[(&PublicKey, &[u8], &Signature)]) -> bool {
        let keys: Result<Vec<_>, _> = items
            .iter()
            .map(|(k, ..)| ed25519_dalek::VerifyingKey::from_bytes(&k.0))
            .collect();
        let Ok(keys) = keys else { return false };
        let msgs: Vec<&[u8]> = items.iter().map(|(_, m, _)| *m).collect();
        let sigs: Vec<_> = items
            .iter()
            .map(|(_, _, s)| ed25519_dalek::Signature::from_bytes(&s.0))
            .collect();
        ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok()
    }

    type Item = (PublicKey, Vec<u8>, Signature);
    type Forgery<'a> = Box<dyn Fn(&mut Item) + 'a>;

    /// `n` signed messages by `keys` taken in turn.
    fn signed(keys: &[SecretKey], n: usize) -> Vec<Item> {
        (0..n)
            .map(|i| {
                let key = &keys[i % keys.len()];
                let msg = format!("message {i}").into_bytes();
                let sig = key.sign(&msg);
                (key.public(), msg, sig)
            })
            .collect()
    }

    fn check(items: &[Item]) -> (bool, bool) {
        let refs: Vec<(&PublicKey, &[u8], &Signature)> =
            items.iter().map(|(k, m, s)| (k, m.as_slice(), s)).collect();
        (verify_batch(&refs).is_ok(), dalek(&refs))
    }

    /// The group order ℓ, little-endian.
    const ORDER: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    #[test]
    fn batch_verification_agrees_with_ed25519_dalek() {
        let one = [SecretKey::from_bytes(&[1; 32])];
        let three: Vec<SecretKey> = (2..5u8).map(|b| SecretKey::from_bytes(&[b; 32])).collect();
        assert_eq!(check(&[]), (true, true));
        for (keys, n) in [
            (&one[..], 1),
            (&one[..], 100),
            (&three[..], 7),
            (&three[..], 60),
        ] {
            let good = signed(keys, n);
            assert_eq!(check(&good), (true, true), "{n} valid signatures");
            // Every kind of forgery, at the first, a middle and the last item.
            for at in [0, n / 2, n - 1] {
                let other = SecretKey::from_bytes(&[9; 32]);
                let forgeries: Vec<Forgery> = vec![
                    Box::new(|it| it.1.push(b'!')),
                    Box::new(|it| it.2.0[0] ^= 1),
                    Box::new(|it| it.2.0[40] ^= 1),
                    Box::new(|it| it.0 = other.public()),
                    Box::new(|it| it.2 = other.sign(&it.1)),
                    // Another item's signature.
                    Box::new(|it| it.2 = SecretKey::from_bytes(&[1; 32]).sign(b"message x")),
                    // s + ℓ: the same point equation, but not a canonical scalar.
                    Box::new(|it| {
                        let mut carry = 0u16;
                        for (b, o) in it.2.0[32..].iter_mut().zip(ORDER) {
                            let sum = u16::from(*b) + u16::from(o) + carry;
                            *b = sum as u8;
                            carry = sum >> 8;
                        }
                    }),
                ];
                for (f, forge) in forgeries.iter().enumerate() {
                    let mut bad = good.clone();
                    forge(&mut bad[at]);
                    assert_eq!(check(&bad), (false, false), "forgery {f} at {at} of {n}");
                }
            }
        }
    }

    /// Two invalid signatures whose errors cancel in an unweighted sum (`s₁ + δ`, `s₂ − δ`) pass
    /// a batch check whose weights are equal or predictable; the weights must catch them.
    #[test]
    fn errors_that_cancel_out_are_caught() {
        use curve25519_dalek::scalar::Scalar;
        let key = SecretKey::from_bytes(&[1; 32]);
        let other = SecretKey::from_bytes(&[2; 32]);
        for keys in [vec![key.clone()], vec![key, other]] {
            let mut items = signed(&keys, 6);
            let delta = Scalar::from(0x1234_5678_9abc_def0u64);
            let shift = |sig: &mut Signature, by: Scalar| {
                let s_bytes: [u8; 32] = sig.0[32..].try_into().unwrap();
                let s = Scalar::from_canonical_bytes(s_bytes).unwrap() + by;
                sig.0[32..].copy_from_slice(s.as_bytes());
            };
            // Items 1 and 3 (the same key when there are two keys taken in turn).
            shift(&mut items[1].2, delta);
            shift(&mut items[3].2, -delta);
            assert_eq!(check(&items), (false, false), "{} keys", keys.len());
        }
    }

    #[test]
    fn undecodable_points_fail_the_batch() {
        let key = SecretKey::from_bytes(&[1; 32]);
        let good = signed(std::slice::from_ref(&key), 10);
        // An R that is not a point.
        let not_a_point = (0u8..=255)
            .map(|b| [b; 32])
            .find(|y| {
                curve25519_dalek::edwards::CompressedEdwardsY(*y)
                    .decompress()
                    .is_none()
            })
            .unwrap();
        let mut bad = good.clone();
        bad[3].2.0[..32].copy_from_slice(&not_a_point);
        assert_eq!(check(&bad), (false, false));
        // A key that is not a point.
        let mut bad = good.clone();
        bad[3].0 = PublicKey(not_a_point);
        assert_eq!(check(&bad), (false, false));
    }
}
