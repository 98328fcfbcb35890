//! The node's control plane kept on disk: settings, pause state and the node key.
//!
//! It does no fetching: it is what the app runs on until the collector's `Node` is wired in, and
//! what the command tests run against. Stats and the activity log stay empty.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gleaner_protocol::SecretKey;
use tokio::sync::broadcast;

use super::{NodeApi, NodeEvent};
use crate::error::AppError;
use crate::model::{
    ActivityPage, ActivityQuery, Bandwidth, NodeSettings, NodeState, NodeStatus, Stats,
    ValidatorHealth, write_csv,
};

/// Events buffered per subscriber: a slow window skips old ones rather than stalling the node.
const EVENT_BUFFER: usize = 64;
/// Longest timed pause: a day covers "pause for the night"; anything longer is a plain pause.
pub const MAX_PAUSE: Duration = Duration::from_secs(24 * 3600);
/// Prefix of the key's backup form, versioned so the format can change.
const KEY_PREFIX: &str = "gleaner-key-v1:";

struct Inner {
    settings: NodeSettings,
    paused: bool,
    paused_until: Option<SystemTime>,
}

/// Settings, pause state and key in `data_dir`.
pub struct LocalNode {
    dir: PathBuf,
    key: SecretKey,
    inner: Mutex<Inner>,
    events: broadcast::Sender<NodeEvent>,
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl LocalNode {
    /// Opens (or creates) the node in `dir`, with `defaults` as the settings of a new node.
    pub fn open(dir: &Path, defaults: NodeSettings) -> Result<Self, AppError> {
        std::fs::create_dir_all(dir).map_err(|e| AppError::io("data folder", dir, e))?;
        let key = load_or_create_key(&dir.join("node.key"))?;
        let settings_path = dir.join("settings.json");
        let settings = match std::fs::read(&settings_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| AppError::Corrupt {
                what: "settings",
                path: settings_path.display().to_string(),
                why: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => defaults,
            Err(e) => return Err(AppError::io("settings", &settings_path, e)),
        };
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Ok(LocalNode {
            dir: dir.to_path_buf(),
            key,
            inner: Mutex::new(Inner {
                settings,
                paused: false,
                paused_until: None,
            }),
            events,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The status, ending a timed pause whose time has come.
    fn current(&self) -> NodeStatus {
        let mut inner = self.lock();
        if inner.paused && inner.paused_until.is_some_and(|t| t <= SystemTime::now()) {
            inner.paused = false;
            inner.paused_until = None;
            let status = status_of(&inner);
            drop(inner);
            let _ = self.events.send(NodeEvent::Status(status.clone()));
            return status;
        }
        status_of(&inner)
    }

    fn set_paused(&self, paused: bool, until: Option<SystemTime>) -> NodeStatus {
        let status = {
            let mut inner = self.lock();
            inner.paused = paused;
            inner.paused_until = until;
            status_of(&inner)
        };
        tracing::info!(paused, until_ms = until.map(unix_ms), "sharing state changed");
        // No subscriber is fine: nobody is listening yet.
        let _ = self.events.send(NodeEvent::Status(status.clone()));
        status
    }
}

fn status_of(inner: &Inner) -> NodeStatus {
    NodeStatus {
        state: if inner.paused {
            NodeState::Paused
        } else {
            NodeState::Sharing
        },
        detail: None,
        paused_until_ms: inner.paused_until.map(unix_ms),
    }
}

fn load_or_create_key(path: &Path) -> Result<SecretKey, AppError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_key(text.trim()).ok_or_else(|| AppError::Corrupt {
            what: "node key",
            path: path.display().to_string(),
            why: "not a gleaner-key-v1 key".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate().map_err(|e| AppError::Node(e.to_string()))?;
            write_private(path, backup_form(&key).as_bytes())?;
            tracing::info!(public = %key.public(), "created a node key");
            Ok(key)
        }
        Err(e) => Err(AppError::io("node key", path, e)),
    }
}

fn backup_form(key: &SecretKey) -> String {
    format!("{KEY_PREFIX}{}", bs58::encode(key.to_bytes()).into_string())
}

fn parse_key(text: &str) -> Option<SecretKey> {
    let mut seed = [0u8; 32];
    let n = bs58::decode(text.strip_prefix(KEY_PREFIX)?)
        .onto(&mut seed)
        .ok()?;
    (n == 32).then(|| SecretKey::from_bytes(&seed))
}

/// Writes a file only its owner can read (the key).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|e| AppError::io("node key", path, e))
}

impl NodeApi for LocalNode {
    fn status(&self) -> NodeStatus {
        self.current()
    }

    fn stats(&self) -> Result<Stats, AppError> {
        let inner = self.lock();
        Ok(Stats {
            bandwidth: Bandwidth {
                rate_cap_bps: inner.settings.rate_cap_bps,
                monthly_cap_bytes: inner.settings.monthly_cap_bytes,
                ..Bandwidth::default()
            },
            validators: inner
                .settings
                .validators
                .iter()
                .map(|url| ValidatorHealth {
                    url: url.clone(),
                    reachable: false,
                    last_error: Some("not contacted yet".into()),
                    last_contact_ms: None,
                })
                .collect(),
            ..Stats::default()
        })
    }

    fn pause(&self) -> Result<NodeStatus, AppError> {
        Ok(self.set_paused(true, None))
    }

    fn pause_for(&self, duration: Duration) -> Result<NodeStatus, AppError> {
        if duration.is_zero() || duration > MAX_PAUSE {
            return Err(AppError::InvalidArgument(format!(
                "a timed pause lasts between 1 minute and {} hours",
                MAX_PAUSE.as_secs() / 3600
            )));
        }
        Ok(self.set_paused(true, Some(SystemTime::now() + duration)))
    }

    fn resume(&self) -> Result<NodeStatus, AppError> {
        Ok(self.set_paused(false, None))
    }

    fn activity(&self, _query: &ActivityQuery) -> Result<ActivityPage, AppError> {
        Ok(ActivityPage::default())
    }

    fn export_activity_csv(
        &self,
        _query: &ActivityQuery,
        out: &mut dyn Write,
    ) -> Result<u64, AppError> {
        write_csv([], out).map_err(|e| AppError::io("activity export", &self.dir, e))
    }

    fn settings(&self) -> Result<NodeSettings, AppError> {
        Ok(self.lock().settings.clone())
    }

    fn update_settings(&self, settings: NodeSettings) -> Result<NodeSettings, AppError> {
        let settings = settings.validated()?;
        let path = self.dir.join("settings.json");
        let tmp = self.dir.join("settings.json.tmp");
        let json = serde_json::to_vec_pretty(&settings).map_err(|e| AppError::Node(e.to_string()))?;
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| AppError::io("settings", &path, e))?;
        self.lock().settings = settings.clone();
        Ok(settings)
    }

    fn public_key(&self) -> String {
        self.key.public().to_string()
    }

    fn export_key(&self) -> Result<String, AppError> {
        Ok(backup_form(&self.key))
    }

    fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    fn set_idle(&self, idle: bool) {
        tracing::debug!(idle, "idle state");
    }

    fn set_metered(&self, metered: bool) {
        tracing::debug!(metered, "metered network");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_settings_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let node = LocalNode::open(dir.path(), NodeSettings::default()).unwrap();
        let public = node.public_key();
        let mut s = node.settings().unwrap();
        s.blocklist = vec!["Example.com".into()];
        node.update_settings(s).unwrap();
        drop(node);

        let again = LocalNode::open(dir.path(), NodeSettings::default()).unwrap();
        assert_eq!(again.public_key(), public);
        assert_eq!(again.settings().unwrap().blocklist, ["example.com"]);
        let backup = again.export_key().unwrap();
        assert!(backup.starts_with(KEY_PREFIX));
        assert_eq!(parse_key(&backup).unwrap().public().to_string(), public);
    }

    #[test]
    fn a_damaged_key_file_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("node.key"), "garbage").unwrap();
        let err = LocalNode::open(dir.path(), NodeSettings::default()).err().unwrap();
        assert_eq!(err.code(), "corrupt_file");
        assert_eq!(std::fs::read_to_string(dir.path().join("node.key")).unwrap(), "garbage");
    }

    #[test]
    fn a_timed_pause_ends_by_itself_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let node = LocalNode::open(dir.path(), NodeSettings::default()).unwrap();
        let mut events = node.subscribe();
        let status = node.pause_for(Duration::from_millis(20)).unwrap();
        assert_eq!(status.state, NodeState::Paused);
        assert!(status.paused_until_ms.is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(node.status().state, NodeState::Sharing);
        assert!(matches!(events.try_recv(), Ok(NodeEvent::Status(s)) if s.state == NodeState::Paused));
        assert!(matches!(events.try_recv(), Ok(NodeEvent::Status(s)) if s.state == NodeState::Sharing));
        assert_eq!(node.pause_for(Duration::ZERO).unwrap_err().code(), "invalid_argument");
    }
}
