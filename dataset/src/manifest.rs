//! `manifest.json`: what a dataset contains, each file's size and blake3 digest, signed by the
//! validator over canonical bytes.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use gleaner_protocol::{Canon, Digest, PublicKey, SecretKey, Signature};
use serde::{Deserialize, Serialize};

use crate::DatasetError;

/// Domain tag of a manifest's signing bytes.
pub const MANIFEST_DOMAIN: &str = "gleaner/manifest/v1";
/// The `format` field of version-1 manifests.
pub const MANIFEST_FORMAT: &str = "gleaner-dataset/v1";
/// File name of the manifest in a dataset directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the receipts in a dataset directory.
pub const RECEIPTS_FILE: &str = "receipts.jsonl";
/// File name of the dataset card.
pub const CARD_FILE: &str = "README.md";

/// Largest manifest read: a manifest lists shards of hundreds of MB each, so even a huge dataset's
/// manifest is a few hundred KB; this bounds what an untrusted server can make a lab allocate.
pub const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// One file of the dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path relative to the dataset directory, `/`-separated.
    pub path: String,
    /// Rows (shards), receipts (receipts file) or 0 (card).
    pub rows: u64,
    pub bytes: u64,
    pub blake3: Digest,
}

/// A dataset's signed table of contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    pub name: String,
    /// The validator that accepted the rows, signed the receipts and signs this manifest.
    pub validator: PublicKey,
    /// SPDX-style license identifier of the dataset, as in the card.
    pub license: String,
    /// First and last epoch of the rows (both 0 for an empty dataset).
    pub epoch_from: u64,
    pub epoch_to: u64,
    /// Total rows over all shards.
    pub rows: u64,
    pub tokenizer: String,
    pub language_detector: String,
    pub shards: Vec<FileEntry>,
    pub receipts: FileEntry,
    pub card: FileEntry,
    /// Optional JSON Lines + zstd copies of the shards (same rows, same order, one file per
    /// shard). Absent from manifests exported without them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jsonl: Vec<FileEntry>,
    /// The validator's ed25519 signature over [`Manifest::signing_bytes`].
    pub signature: Signature,
}

impl Manifest {
    /// Domain tag `gleaner/manifest/v1`, then `format` str, `name` str, `validator` 32 bytes,
    /// `license` str, `epoch_from` u64, `epoch_to` u64, `rows` u64, `tokenizer` str,
    /// `language_detector` str, the shard count u32 and each shard, then the receipts entry and the
    /// card entry, then — only when there are JSON Lines files — their count u32 and each entry.
    /// A file entry is `path` str, `rows` u64, `bytes` u64, `blake3` 32 bytes. Encoding per
    /// [`gleaner_protocol::canon`]. Every field but the signature is covered.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut c = Canon::new(MANIFEST_DOMAIN);
        c.str(&self.format)
            .str(&self.name)
            .key(&self.validator)
            .str(&self.license)
            .u64(self.epoch_from)
            .u64(self.epoch_to)
            .u64(self.rows)
            .str(&self.tokenizer)
            .str(&self.language_detector)
            .u32(u32::try_from(self.shards.len()).unwrap_or(u32::MAX));
        for entry in self.shards.iter().chain([&self.receipts, &self.card]) {
            c.str(&entry.path)
                .u64(entry.rows)
                .u64(entry.bytes)
                .digest(&entry.blake3);
        }
        if !self.jsonl.is_empty() {
            c.u32(u32::try_from(self.jsonl.len()).unwrap_or(u32::MAX));
            for entry in &self.jsonl {
                c.str(&entry.path)
                    .u64(entry.rows)
                    .u64(entry.bytes)
                    .digest(&entry.blake3);
            }
        }
        c.finish()
    }

    /// Signs in place with the validator's key (which must be `self.validator`'s).
    pub fn sign(&mut self, key: &SecretKey) {
        self.validator = key.public();
        self.signature = key.sign(&self.signing_bytes());
    }

    /// The format is known and the signature verifies against `self.validator`.
    pub fn verify_signature(&self) -> Result<(), DatasetError> {
        if self.format != MANIFEST_FORMAT {
            return Err(DatasetError::BadManifest {
                why: format!("unknown format {:?}", self.format),
            });
        }
        self.validator
            .verify(&self.signing_bytes(), &self.signature, "manifest")
            .map_err(|e| DatasetError::BadManifest { why: e.to_string() })
    }

    /// Every file entry: shards, then receipts, then the card, then any JSON Lines files.
    pub fn files(&self) -> impl Iterator<Item = &FileEntry> {
        self.shards
            .iter()
            .chain([&self.receipts, &self.card])
            .chain(self.jsonl.iter())
    }

    /// Pretty JSON with a trailing newline (deterministic: struct field order).
    pub fn to_json(&self) -> Result<Vec<u8>, DatasetError> {
        let mut out = serde_json::to_vec_pretty(self).map_err(|e| DatasetError::Json {
            what: MANIFEST_FILE.into(),
            why: e.to_string(),
        })?;
        out.push(b'\n');
        Ok(out)
    }

    /// Parses a manifest (no signature check).
    pub fn from_json(bytes: &[u8]) -> Result<Self, DatasetError> {
        serde_json::from_slice(bytes).map_err(|e| DatasetError::Json {
            what: MANIFEST_FILE.into(),
            why: e.to_string(),
        })
    }

    /// Reads `dir/manifest.json`, bounded by `MAX_MANIFEST_BYTES` (no signature check).
    pub fn read(dir: &Path) -> Result<Self, DatasetError> {
        let path = dir.join(MANIFEST_FILE);
        let file = std::fs::File::open(&path).map_err(|e| DatasetError::io(&path, e))?;
        let mut bytes = Vec::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| DatasetError::io(&path, e))?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(DatasetError::BadManifest {
                why: format!("larger than {MAX_MANIFEST_BYTES} bytes"),
            });
        }
        Self::from_json(&bytes)
    }
}

/// Joins a manifest path onto the dataset directory, refusing anything but plain relative
/// components (no `..`, no absolute paths, no backslashes, no empty segments).
pub fn safe_join(dir: &Path, rel: &str) -> Result<PathBuf, DatasetError> {
    let unsafe_path = || DatasetError::UnsafePath {
        path: rel.to_string(),
    };
    if rel.is_empty() || rel.contains('\\') || rel.split('/').any(str::is_empty) {
        return Err(unsafe_path());
    }
    let p = Path::new(rel);
    if !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(unsafe_path());
    }
    Ok(dir.join(p))
}

/// blake3 and length of a file, streamed.
pub(crate) fn digest_file(path: &Path) -> Result<(Digest, u64), DatasetError> {
    let mut file = std::fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let mut hasher = blake3::Hasher::new();
    let n = std::io::copy(&mut file, &mut hasher).map_err(|e| DatasetError::io(path, e))?;
    Ok((Digest::from_bytes(*hasher.finalize().as_bytes()), n))
}

/// The datasets under `root`: each subdirectory holding a `manifest.json`, sorted by name. Entries
/// whose manifest does not parse are skipped with a warning.
pub fn list_datasets(root: &Path) -> Result<Vec<Manifest>, DatasetError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(DatasetError::io(root, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| DatasetError::io(root, e))?;
        let dir = entry.path();
        if !dir.join(MANIFEST_FILE).is_file() {
            continue;
        }
        match Manifest::read(&dir) {
            Ok(m) => out.push(m),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), cause = %e, "skipping unreadable dataset")
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_refused() {
        let dir = Path::new("/tmp/x");
        for bad in [
            "../a",
            "/etc/passwd",
            "a/../../b",
            "a//b",
            "",
            "a\\b",
            "./a",
        ] {
            assert!(safe_join(dir, bad).is_err(), "{bad}");
        }
        assert_eq!(
            safe_join(dir, "data/e/part-00000.parquet").unwrap(),
            Path::new("/tmp/x/data/e/part-00000.parquet")
        );
    }
}
