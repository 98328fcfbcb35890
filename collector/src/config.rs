//! Node configuration: what the user chose (serde, so the app can show and edit it), loaded from
//! a TOML file in the OS config directory with `GLEANER_*` environment overrides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::governor::Limits;

/// Default records per batch: a few hundred KB compressed, well under validators' limits.
pub const DEFAULT_BATCH_RECORDS: usize = 100;
/// Default longest wait before a partial batch is sent.
pub const DEFAULT_BATCH_MAX_AGE_SECS: u64 = 60;
/// Default concurrent fetches: a consumer connection, and politeness per domain, need few.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Default activity log retention.
pub const DEFAULT_ACTIVITY_RETENTION_DAYS: u32 = 30;

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {why}")]
    Read { path: PathBuf, why: String },
    #[error("invalid config {path}: {why}")]
    Parse { path: PathBuf, why: String },
    #[error("invalid value for {name}: {why}")]
    Env { name: String, why: String },
    #[error("invalid setting {field}: {why}")]
    Invalid { field: &'static str, why: String },
    #[error("cannot write {path}: {why}")]
    Write { path: PathBuf, why: String },
    #[error("no home directory to put the config in")]
    NoHome,
}

impl ConfigError {
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "config_read",
            ConfigError::Parse { .. } => "config_parse",
            ConfigError::Env { .. } => "config_env",
            ConfigError::Invalid { .. } => "config_invalid",
            ConfigError::Write { .. } => "config_write",
            ConfigError::NoHome => "no_home",
        }
    }
}

/// Everything a node needs to know. Validators can change none of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// State directory (SQLite queue, identity key).
    pub data_dir: PathBuf,
    /// Validator base URLs, e.g. `https://validator.example`.
    pub validators: Vec<String>,
    /// Payout address (base58 ed25519 key); defaults to the node key.
    pub payout: Option<String>,
    /// Exact socket addresses exempted from the address policy (tests, local development).
    pub allow_addrs: Vec<SocketAddr>,
    /// Domains never fetched (with their subdomains).
    pub blocklist: Vec<String>,
    pub limits: Limits,
    pub concurrency: usize,
    pub batch_max_records: usize,
    pub batch_max_age_secs: u64,
    /// Minimum delay between two requests to one registered domain.
    pub min_domain_delay_ms: u64,
    pub max_body_bytes: u64,
    pub connect_timeout_ms: u64,
    pub total_timeout_ms: u64,
    pub activity_retention_days: u32,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: default_data_dir().unwrap_or_else(|| PathBuf::from("gleaner-data")),
            validators: Vec::new(),
            payout: None,
            allow_addrs: Vec::new(),
            blocklist: Vec::new(),
            limits: Limits::default(),
            concurrency: DEFAULT_CONCURRENCY,
            batch_max_records: DEFAULT_BATCH_RECORDS,
            batch_max_age_secs: DEFAULT_BATCH_MAX_AGE_SECS,
            min_domain_delay_ms: crate::politeness::DEFAULT_MIN_DELAY.as_millis() as u64,
            max_body_bytes: crate::fetch::DEFAULT_MAX_BODY_BYTES,
            connect_timeout_ms: crate::fetch::DEFAULT_CONNECT_TIMEOUT.as_millis() as u64,
            total_timeout_ms: crate::fetch::DEFAULT_TOTAL_TIMEOUT.as_millis() as u64,
            activity_retention_days: DEFAULT_ACTIVITY_RETENTION_DAYS,
        }
    }
}

fn dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "gleaner")
}

/// `<config dir>/config.toml` (e.g. `~/.config/gleaner/config.toml`).
pub fn default_config_path() -> Option<PathBuf> {
    dirs().map(|d| d.config_dir().join("config.toml"))
}

/// `<data dir>` (e.g. `~/.local/share/gleaner`).
pub fn default_data_dir() -> Option<PathBuf> {
    dirs().map(|d| d.data_dir().to_path_buf())
}

impl NodeConfig {
    /// Reads `path` if it exists (defaults otherwise), then applies `GLEANER_*` overrides.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut cfg = match path {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                    path: p.to_path_buf(),
                    why: e.to_string(),
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: p.to_path_buf(),
                    why: e.to_string(),
                })?
            }
            _ => NodeConfig::default(),
        };
        cfg.apply_env(|k| std::env::var(k).ok())?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Applies `GLEANER_*` variables read through `get`: `GLEANER_DATA`, `GLEANER_VALIDATORS`
    /// (comma-separated), `GLEANER_PAYOUT`, `GLEANER_ALLOW_ADDRS`, `GLEANER_BLOCKLIST`,
    /// `GLEANER_BANDWIDTH` (bytes/s), `GLEANER_DAILY_BYTES`, `GLEANER_MONTHLY_BYTES`,
    /// `GLEANER_CONCURRENCY`, `GLEANER_BATCH_RECORDS`, `GLEANER_BATCH_MAX_AGE_SECS`,
    /// `GLEANER_MIN_DOMAIN_DELAY_MS`, `GLEANER_MAX_BODY_BYTES`, `GLEANER_ACTIVITY_RETENTION_DAYS`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.trim().parse().map_err(|e: T::Err| ConfigError::Env {
                name: name.to_string(),
                why: e.to_string(),
            })
        }
        let list = |v: &str| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        if let Some(v) = get("GLEANER_DATA") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("GLEANER_VALIDATORS") {
            self.validators = list(&v);
        }
        if let Some(v) = get("GLEANER_PAYOUT") {
            self.payout = Some(v.trim().to_string());
        }
        if let Some(v) = get("GLEANER_ALLOW_ADDRS") {
            self.allow_addrs = list(&v)
                .iter()
                .map(|a| num("GLEANER_ALLOW_ADDRS", a))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = get("GLEANER_BLOCKLIST") {
            self.blocklist = list(&v);
        }
        if let Some(v) = get("GLEANER_BANDWIDTH") {
            self.limits.bandwidth_bytes_per_sec = Some(num("GLEANER_BANDWIDTH", &v)?);
        }
        if let Some(v) = get("GLEANER_DAILY_BYTES") {
            self.limits.daily_bytes = Some(num("GLEANER_DAILY_BYTES", &v)?);
        }
        if let Some(v) = get("GLEANER_MONTHLY_BYTES") {
            self.limits.monthly_bytes = Some(num("GLEANER_MONTHLY_BYTES", &v)?);
        }
        if let Some(v) = get("GLEANER_CONCURRENCY") {
            self.concurrency = num("GLEANER_CONCURRENCY", &v)?;
        }
        if let Some(v) = get("GLEANER_BATCH_RECORDS") {
            self.batch_max_records = num("GLEANER_BATCH_RECORDS", &v)?;
        }
        if let Some(v) = get("GLEANER_BATCH_MAX_AGE_SECS") {
            self.batch_max_age_secs = num("GLEANER_BATCH_MAX_AGE_SECS", &v)?;
        }
        if let Some(v) = get("GLEANER_MIN_DOMAIN_DELAY_MS") {
            self.min_domain_delay_ms = num("GLEANER_MIN_DOMAIN_DELAY_MS", &v)?;
        }
        if let Some(v) = get("GLEANER_MAX_BODY_BYTES") {
            self.max_body_bytes = num("GLEANER_MAX_BODY_BYTES", &v)?;
        }
        if let Some(v) = get("GLEANER_ACTIVITY_RETENTION_DAYS") {
            self.activity_retention_days = num("GLEANER_ACTIVITY_RETENTION_DAYS", &v)?;
        }
        Ok(())
    }

    /// Range checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, why: &str| {
            Err(ConfigError::Invalid {
                field,
                why: why.to_string(),
            })
        };
        if !(1..=64).contains(&self.concurrency) {
            return bad("concurrency", "must be 1..=64");
        }
        if !(1..=1000).contains(&self.batch_max_records) {
            return bad("batch_max_records", "must be 1..=1000");
        }
        if self.max_body_bytes < 1024 || self.max_body_bytes > 64 * 1024 * 1024 {
            return bad("max_body_bytes", "must be 1 KiB..=64 MiB");
        }
        if self.connect_timeout_ms == 0 || self.total_timeout_ms == 0 {
            return bad("timeouts", "must be positive");
        }
        for v in &self.validators {
            match url::Url::parse(v) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                _ => return bad("validators", &format!("{v:?} is not an http(s) URL")),
            }
        }
        if let Some(p) = &self.payout
            && p.parse::<gleaner_protocol::PublicKey>().is_err()
        {
            return bad("payout", "not a base58 ed25519 public key");
        }
        self.limits
            .schedule
            .validate()
            .map_err(|why| ConfigError::Invalid {
                field: "limits.schedule",
                why,
            })
    }

    /// Writes the config as TOML to `path` (creating its directory).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let err = |e: String| ConfigError::Write {
            path: path.to_path_buf(),
            why: e,
        };
        let text = toml::to_string_pretty(self).map_err(|e| err(e.to_string()))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        std::fs::write(path, text).map_err(|e| err(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_and_round_trip() {
        let mut c = NodeConfig::default();
        c.apply_env(|k| match k {
            "GLEANER_VALIDATORS" => Some("http://a.example, http://b.example".into()),
            "GLEANER_BANDWIDTH" => Some("1000".into()),
            "GLEANER_ALLOW_ADDRS" => Some("127.0.0.1:8080".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.validators.len(), 2);
        assert_eq!(c.limits.bandwidth_bytes_per_sec, Some(1000));
        c.validate().unwrap();
        let text = toml::to_string_pretty(&c).unwrap();
        let back: NodeConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
        assert!(
            c.apply_env(|k| (k == "GLEANER_BANDWIDTH").then(|| "fast".into()))
                .is_err()
        );
    }
}
