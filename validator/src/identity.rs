//! The validator's signing identity, kept in the data directory.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use gleaner_protocol::{Digest, PublicKey, Revocation, SecretKey, Signature};

use crate::store::RevocationEntry;

/// File name of the validator's secret key inside the data directory: 64 hex digits (the ed25519
/// seed) and a newline, readable by the owner only.
pub const KEY_FILE: &str = "validator.key";

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read or write key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} is malformed: {why}")]
    Malformed { path: PathBuf, why: String },
    #[error("no entropy source for a new key: {0}")]
    Entropy(String),
}

impl IdentityError {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::Io { .. } => "key_io",
            IdentityError::Malformed { .. } => "key_malformed",
            IdentityError::Entropy(_) => "key_entropy",
        }
    }
}

/// The validator's ed25519 key: signs receipts, epoch roots and revocations.
#[derive(Debug, Clone)]
pub struct Identity {
    key: SecretKey,
}

impl Identity {
    /// Wraps an existing key (tests use fixed seeds).
    pub fn from_key(key: SecretKey) -> Self {
        Identity { key }
    }

    /// Loads `DIR/validator.key`, creating the directory and a fresh random key if absent.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, IdentityError> {
        let path = data_dir.join(KEY_FILE);
        if path.exists() {
            return Self::load(data_dir);
        }
        fs::create_dir_all(data_dir).map_err(|source| IdentityError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let key = SecretKey::generate().map_err(|e| IdentityError::Entropy(e.to_string()))?;
        let io = |source| IdentityError::Io {
            path: path.clone(),
            source,
        };
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(&path).map_err(io)?;
        file.write_all(format!("{}\n", hex::encode(key.to_bytes())).as_bytes())
            .map_err(io)?;
        file.sync_all().map_err(io)?;
        tracing::info!(path = %path.display(), validator = %key.public(), "created validator key");
        Ok(Identity { key })
    }

    /// Loads `DIR/validator.key`; never creates one (for read-only tools).
    pub fn load(data_dir: &Path) -> Result<Self, IdentityError> {
        let path = data_dir.join(KEY_FILE);
        let text = fs::read_to_string(&path).map_err(|source| IdentityError::Io {
            path: path.clone(),
            source,
        })?;
        let mut seed = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut seed).map_err(|e| IdentityError::Malformed {
            path: path.clone(),
            why: e.to_string(),
        })?;
        Ok(Identity {
            key: SecretKey::from_bytes(&seed),
        })
    }

    /// The secret key, for signing.
    pub fn secret(&self) -> &SecretKey {
        &self.key
    }

    /// The validator's public key (its identity on receipts and epoch roots).
    pub fn public(&self) -> PublicKey {
        self.key.public()
    }

    /// The key that decides which records are cross-checked and which agreed checks audited
    /// ([`crate::store::IngestParams::sample_key`]), derived from the secret key: the same
    /// across restarts, unknown to nodes.
    pub fn sampling_key(&self) -> [u8; 32] {
        blake3::derive_key(SAMPLING_KEY_CONTEXT, &self.key.to_bytes())
    }
}

/// blake3 key-derivation context of [`Identity::sampling_key`].
const SAMPLING_KEY_CONTEXT: &str = "gleaner validator 2026-12-06 cross-check sampling key";

/// Most revocation signatures a [`RevocationSigner`] keeps: the log's first 200,000 entries
/// (~20 MB), the ones every lab's full read starts with.
const MAX_KEPT_SIGNATURES: usize = 200_000;

/// Signs the revocation log's entries as they are served ([`crate::store::RevocationEntry`]).
/// Entries never change and ed25519 signatures are deterministic, so each entry's signature is
/// kept once made (the first 200,000): a page asked for again costs a read, not a
/// thousand signatures, and a client asking for pages in a loop cannot make the validator sign
/// without end.
#[derive(Debug)]
pub struct RevocationSigner {
    identity: Identity,
    /// `seq` → the record id it was signed for, and the signature.
    signed: std::sync::Mutex<std::collections::HashMap<u64, (Digest, Signature)>>,
    max_kept: usize,
}

impl RevocationSigner {
    pub fn new(identity: Identity) -> Self {
        RevocationSigner::keeping(identity, MAX_KEPT_SIGNATURES)
    }

    /// A signer that keeps at most `max_kept` signatures.
    fn keeping(identity: Identity, max_kept: usize) -> Self {
        RevocationSigner {
            identity,
            signed: std::sync::Mutex::default(),
            max_kept,
        }
    }

    /// How many signatures are kept.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.signed.lock().map_or(0, |s| s.len())
    }

    /// `entries`, each signed; the signing happens outside the lock.
    pub fn sign(&self, entries: Vec<RevocationEntry>) -> Vec<Revocation> {
        let lock = || self.signed.lock().unwrap_or_else(|p| p.into_inner());
        let kept: Vec<Option<Signature>> = {
            let signed = lock();
            entries
                .iter()
                .map(|e| {
                    signed
                        .get(&e.seq)
                        .filter(|(id, _)| *id == e.record_id)
                        .map(|&(_, s)| s)
                })
                .collect()
        };
        let validator = self.identity.public();
        let out: Vec<Revocation> = entries
            .into_iter()
            .zip(kept)
            .map(|(e, kept)| match kept {
                Some(signature) => e.with_signature(validator, signature),
                None => e.signed(self.identity.secret()),
            })
            .collect();
        let mut signed = lock();
        for r in &out {
            if signed.len() >= self.max_kept {
                break;
            }
            signed.entry(r.seq).or_insert((r.record_id, r.signature));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn entry(seq: u64, record: &[u8]) -> RevocationEntry {
        RevocationEntry {
            seq,
            record_id: Digest::of(record),
            node: SecretKey::from_bytes(&[1; 32]).public(),
            url: format!("https://example.org/{seq}"),
            epoch: 1,
            reason: "failed_cross_check".into(),
        }
    }

    #[test]
    fn revocations_are_signed_once_and_alike_every_time() {
        let identity = Identity::from_key(SecretKey::from_bytes(&[3; 32]));
        let signer = RevocationSigner::keeping(identity.clone(), 2);
        let first = signer.sign(vec![entry(1, b"a"), entry(2, b"b"), entry(3, b"c")]);
        assert_eq!(signer.kept(), 2, "no more than it may keep");
        for r in &first {
            r.verify().unwrap();
            assert_eq!(r.validator, identity.public());
        }
        // Asked again (kept or not), the same bytes: ed25519 is deterministic.
        let again = signer.sign(vec![entry(1, b"a"), entry(2, b"b"), entry(3, b"c")]);
        assert_eq!(again, first);
        // A kept signature is never put on other content.
        let other = signer.sign(vec![entry(1, b"not a")]).remove(0);
        other.verify().unwrap();
        assert_ne!(other.signature, first[0].signature);
    }
}
