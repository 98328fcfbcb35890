//! The node's identity key, stored in the data directory (`node.key`, hex seed, mode 0600),
//! created on first use.

use std::io::Write;
use std::path::{Path, PathBuf};

use gleaner_protocol::SecretKey;
use zeroize::Zeroizing;

/// File name of the identity key inside the data directory.
pub const KEY_FILE: &str = "node.key";

/// Reading or creating the key failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot access key file {path}: {why}")]
    Io { path: PathBuf, why: String },
    #[error("key file {path} is corrupt: {why}")]
    Corrupt { path: PathBuf, why: String },
    #[error("no entropy to create a key: {0}")]
    Entropy(String),
}

impl KeyError {
    pub fn code(&self) -> &'static str {
        match self {
            KeyError::Io { .. } => "key_io",
            KeyError::Corrupt { .. } => "key_corrupt",
            KeyError::Entropy(_) => "no_entropy",
        }
    }
}

/// Loads `dir/node.key`, creating it (0600, fsynced) when missing.
pub fn load_or_create(dir: &Path) -> Result<SecretKey, KeyError> {
    let path = dir.join(KEY_FILE);
    let io = |e: std::io::Error| KeyError::Io {
        path: path.clone(),
        why: e.to_string(),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            let mut seed = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(text.trim(), &mut *seed).map_err(|e| KeyError::Corrupt {
                path: path.clone(),
                why: e.to_string(),
            })?;
            tighten_permissions(&path);
            Ok(SecretKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io)?;
            let key = SecretKey::generate().map_err(|e| KeyError::Entropy(e.to_string()))?;
            let hex = Zeroizing::new(hex::encode(key.to_bytes()));
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let tmp = dir.join(format!("{KEY_FILE}.tmp"));
            let _ = std::fs::remove_file(&tmp);
            let mut f = opts.open(&tmp).map_err(io)?;
            f.write_all(format!("{}\n", hex.as_str()).as_bytes())
                .map_err(io)?;
            f.sync_all().map_err(io)?;
            drop(f);
            // Two first runs racing: the first rename wins, the other reads it back.
            if path.exists() {
                let _ = std::fs::remove_file(&tmp);
                return load_or_create(dir);
            }
            std::fs::rename(&tmp, &path).map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(unix)]
fn tighten_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "key file was readable by others; setting mode 0600");
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

#[cfg(not(unix))]
fn tighten_permissions(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a.public(), b.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
