//! The validator's signing identity, kept in the data directory.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use gleaner_protocol::{PublicKey, SecretKey};

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
