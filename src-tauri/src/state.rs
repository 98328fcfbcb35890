//! The app's managed state and the feature functions that the commands and the tray share.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::model::{ActivityQuery, ExportResult, Settings, Status};
use crate::node::NodeApi;

/// What only the app keeps (the node keeps the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AppPrefs {
    pub onboarded: bool,
    pub start_at_login: bool,
    pub notifications: bool,
}

impl Default for AppPrefs {
    fn default() -> Self {
        AppPrefs {
            onboarded: false,
            start_at_login: false,
            notifications: true,
        }
    }
}

/// Turns start-at-login on or off (the autostart plugin in the app; a stand-in in tests).
pub type LoginHook = Box<dyn Fn(bool) -> Result<(), String> + Send + Sync>;

/// Managed with `app.manage()`; commands take `State<'_, AppState>`.
pub struct AppState {
    node: Arc<dyn NodeApi>,
    prefs: Mutex<AppPrefs>,
    prefs_path: PathBuf,
    export_dir: PathBuf,
    login: LoginHook,
}

impl AppState {
    /// `prefs_path`: the app's JSON file; `export_dir`: where CSV exports go.
    pub fn new(
        node: Arc<dyn NodeApi>,
        prefs_path: PathBuf,
        export_dir: PathBuf,
        login: LoginHook,
    ) -> Result<Self, AppError> {
        let prefs = match std::fs::read(&prefs_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| AppError::Corrupt {
                what: "app preferences",
                path: prefs_path.display().to_string(),
                why: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => AppPrefs::default(),
            Err(e) => return Err(AppError::io("app preferences", &prefs_path, e)),
        };
        Ok(AppState {
            node,
            prefs: Mutex::new(prefs),
            prefs_path,
            export_dir,
            login,
        })
    }

    pub fn node(&self) -> &Arc<dyn NodeApi> {
        &self.node
    }

    fn prefs(&self) -> MutexGuard<'_, AppPrefs> {
        self.prefs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The app's preferences now.
    pub fn app_prefs(&self) -> AppPrefs {
        self.prefs().clone()
    }

    fn save_prefs(&self, prefs: &AppPrefs) -> Result<(), AppError> {
        if let Some(dir) = self.prefs_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| AppError::io("config folder", dir, e))?;
        }
        let json = serde_json::to_vec_pretty(prefs).map_err(|e| AppError::Node(e.to_string()))?;
        std::fs::write(&self.prefs_path, json)
            .map_err(|e| AppError::io("app preferences", &self.prefs_path, e))
    }

    pub fn status(&self) -> Status {
        Status {
            node: self.node.status(),
            public_key: self.node.public_key(),
            onboarded: self.prefs().onboarded,
        }
    }

    pub fn pause(&self) -> Result<Status, AppError> {
        self.node.pause()?;
        Ok(self.status())
    }

    pub fn pause_for_minutes(&self, minutes: u32) -> Result<Status, AppError> {
        self.node
            .pause_for(Duration::from_secs(u64::from(minutes) * 60))?;
        Ok(self.status())
    }

    pub fn resume(&self) -> Result<Status, AppError> {
        self.node.resume()?;
        Ok(self.status())
    }

    /// Pause when sharing, resume otherwise (the tray's toggle).
    pub fn toggle(&self) -> Result<Status, AppError> {
        if self.node.status().state.wants_to_share() {
            self.pause()
        } else {
            self.resume()
        }
    }

    pub fn complete_onboarding(&self) -> Result<Status, AppError> {
        let mut prefs = self.app_prefs();
        prefs.onboarded = true;
        self.save_prefs(&prefs)?;
        *self.prefs() = prefs;
        Ok(self.status())
    }

    pub fn settings(&self) -> Result<Settings, AppError> {
        let prefs = self.app_prefs();
        Ok(Settings {
            node: self.node.settings()?,
            start_at_login: prefs.start_at_login,
            notifications: prefs.notifications,
        })
    }

    /// Stores the node's part, then the app's; start-at-login is applied when it changes.
    pub fn update_settings(&self, settings: Settings) -> Result<Settings, AppError> {
        let node = self.node.update_settings(settings.node)?;
        let mut prefs = self.app_prefs();
        if prefs.start_at_login != settings.start_at_login {
            (self.login)(settings.start_at_login).map_err(AppError::Autostart)?;
        }
        prefs.start_at_login = settings.start_at_login;
        prefs.notifications = settings.notifications;
        self.save_prefs(&prefs)?;
        *self.prefs() = prefs.clone();
        Ok(Settings {
            node,
            start_at_login: prefs.start_at_login,
            notifications: prefs.notifications,
        })
    }

    /// Writes the matching activity as CSV into the export folder; a new file each time.
    pub fn export_activity(&self, query: &ActivityQuery) -> Result<ExportResult, AppError> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let path = self
            .export_dir
            .join(format!("gleaner-activity-{stamp}.csv"));
        std::fs::create_dir_all(&self.export_dir)
            .map_err(|e| AppError::io("export folder", &self.export_dir, e))?;
        let file =
            std::fs::File::create(&path).map_err(|e| AppError::io("activity export", &path, e))?;
        let mut out = std::io::BufWriter::new(file);
        let rows = self.node.export_activity_csv(query, &mut out)?;
        std::io::Write::flush(&mut out).map_err(|e| AppError::io("activity export", &path, e))?;
        Ok(ExportResult {
            path: path.display().to_string(),
            rows,
        })
    }

    /// Where CSV exports go.
    pub fn export_dir(&self) -> &Path {
        &self.export_dir
    }
}
