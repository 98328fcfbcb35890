//! Validator settings: defaults, then a TOML file, then `GLEANER_VALIDATOR_*` environment variables.
//!
//! Built once at the edge (the binary) and handed to the server; never re-read while running.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File read from the data directory when no `--config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "validator.toml";

/// Longest [`Config::judging_pause_secs`] and [`Config::check_wait_secs`]: 30 days.
const THIRTY_DAYS_SECS: u64 = 30 * 24 * 60 * 60;

/// Every tunable of the validator. All fields have defaults; a config file lists only overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Bearer token for `/v1/admin/*`. Empty disables the admin API.
    pub admin_token: String,
    /// Bearer tokens labs use to submit crawl requests. Empty list disables the lab API.
    pub lab_tokens: Vec<String>,
    /// Largest request body, bytes (batches included).
    pub max_body_bytes: usize,
    /// Largest decompressed batch, bytes.
    pub max_batch_decompressed_bytes: usize,
    /// Most records in one batch.
    pub max_batch_records: u32,
    /// Seconds before a request is answered with `request_timeout`.
    pub request_timeout_secs: u64,
    /// Requests served at once; more wait in line.
    pub max_concurrent_requests: usize,
    /// Batches whose records are checked at once (decode, signatures, quality, MinHash); more
    /// wait in line, first come first served. 0: one per CPU core.
    pub ingest_workers: usize,
    /// While batches wait for a worker and the last one to start had waited longer than this
    /// (milliseconds), new leases are deferred (an empty answer with `retry_after_ms`), so that
    /// nodes submit no faster than batches are checked. 0 never defers.
    pub lease_defer_after_ms: u64,
    /// Sustained requests per second allowed per client IP address.
    pub per_ip_rps: u32,
    /// Burst allowance per client IP address.
    pub per_ip_burst: u32,
    /// Sustained signed requests per second allowed per node key.
    pub per_node_rps: u32,
    /// Burst allowance per node key.
    pub per_node_burst: u32,
    /// How long a lease lasts, milliseconds.
    pub lease_ttl_ms: i64,
    /// Minimum delay between two fetches of one registered domain across the whole network.
    pub domain_delay_ms: i64,
    /// Leases one registered domain may have open at once across the network.
    pub max_leases_per_domain: u32,
    /// Share of accepted records whose URL is fetched again by a second node (0..=1).
    pub cross_check_rate: f64,
    /// Share for nodes not yet proven (`scoring::is_proven`: new identities, and nodes whose
    /// failed check put their credibility back at the start): they are checked more often so
    /// they can prove themselves (0..=1).
    pub new_node_cross_check_rate: f64,
    /// Share of agreed cross-checks the validator fetches again itself (an audit, with its
    /// fetches on): two nodes that agree on invented text, a colluding pair, are found out only
    /// so (0..=1).
    pub audit_rate: f64,
    /// Seconds a node that gave back a check or tie-break job unfinished (released it, let its
    /// lease expire, or reported a failure that may pass) is given no such jobs, so that it
    /// cannot hand back the checks it does not want until it draws the one it wants (its own
    /// pages still come). 0 turns the pause off; at most 30 days.
    pub judging_pause_secs: u64,
    /// Seconds a check or tie-break job may wait in the queue for a node that may take it (one
    /// independent of the nodes it checks, not paused, not caught; such jobs go before their
    /// domain's pages) before it is given up as no node got it done: a check then goes to the
    /// validator's own fetch (with those on), or is abandoned; a tie-break ends as one given up
    /// by its nodes does. Without it a network with no independent node for a check (a single
    /// node, or all on one network) keeps it queued for good. 0 never gives up; at most 30
    /// days.
    pub check_wait_secs: u64,
    /// How many checks a node may hold that it reported as having no page, while the
    /// validator's own fetch has not settled them, and still be given check or tie-break jobs:
    /// at this many it gets none until one is settled, so that it cannot dump the checks it does
    /// not want faster than the validator looks. 0: no cap.
    pub max_unsettled_unfound: u32,
    /// ISO 639-1 languages accepted; empty accepts every language.
    pub languages: Vec<String>,
    /// Close the open epoch every this many seconds; 0 closes epochs only on command.
    pub epoch_interval_secs: u64,
    /// Directory of exported datasets, served at `/v1/datasets` (empty: `DATA/datasets`).
    pub datasets_dir: PathBuf,
    /// Look for queued sitemaps every this many seconds; 0 leaves them unfetched.
    pub sitemap_interval_secs: u64,
    /// Settle disputed cross-checks with the validator's own fetch, looking for them every this
    /// many seconds; 0 sends every tie-break to a third node instead.
    pub tiebreak_interval_secs: u64,
    /// Socket addresses the validator's own fetcher may reach although they are not public
    /// (local development and tests only; the safety policy refuses every other private address).
    pub fetch_allow_addrs: Vec<std::net::SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            admin_token: String::new(),
            lab_tokens: Vec::new(),
            // A batch is at most 8 MiB compressed (protocol's DecodeLimits); JSON bodies are tiny.
            max_body_bytes: 8 * 1024 * 1024,
            max_batch_decompressed_bytes: 64 * 1024 * 1024,
            max_batch_records: 1_000,
            request_timeout_secs: 30,
            max_concurrent_requests: 1_024,
            ingest_workers: 0,
            lease_defer_after_ms: 20,
            per_ip_rps: 50,
            per_ip_burst: 200,
            per_node_rps: 10,
            per_node_burst: 40,
            lease_ttl_ms: 10 * 60 * 1000,
            domain_delay_ms: 5_000,
            max_leases_per_domain: 1,
            cross_check_rate: 0.07,
            new_node_cross_check_rate: 0.5,
            audit_rate: 0.1,
            judging_pause_secs: crate::store::JUDGING_PAUSE_MS as u64 / 1000,
            check_wait_secs: 24 * 60 * 60,
            max_unsettled_unfound: crate::store::MAX_UNSETTLED_UNFOUND as u32,
            languages: Vec::new(),
            epoch_interval_secs: 0,
            datasets_dir: PathBuf::new(),
            sitemap_interval_secs: 30,
            tiebreak_interval_secs: 10,
            fetch_allow_addrs: Vec::new(),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {why}")]
    Parse { path: String, why: String },
    #[error("environment variable {var} is invalid: {why}")]
    Env { var: &'static str, why: String },
    #[error("setting {field} is out of range: {why}")]
    Range { field: &'static str, why: String },
    #[error("cannot write config file {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ConfigError {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "config_read",
            ConfigError::Parse { .. } => "config_parse",
            ConfigError::Env { .. } => "config_env",
            ConfigError::Range { .. } => "config_range",
            ConfigError::Write { .. } => "config_write",
        }
    }
}

/// Takes `datasets_dir` out of the config file at `path`, a backup's copy whose datasets were
/// copied into the backup's own `datasets/`: a server started on the copy then serves those,
/// not the directory the original named (which a restore on another machine may not have).
/// The rest of the file stays as written, comments included (but those on the lines just above
/// the setting, which go with it), and a comment at its top says what was taken out. Returns
/// the value taken out; `None`, leaving the file untouched, when it set none.
pub fn reset_datasets_dir(path: &Path) -> Result<Option<String>, ConfigError> {
    let shown = || path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown(),
        source,
    })?;
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Parse {
                path: shown(),
                why: e.to_string(),
            })?;
    let Some(old) = doc.remove("datasets_dir") else {
        return Ok(None);
    };
    let old = old
        .as_str()
        .map_or_else(|| old.to_string().trim().to_string(), str::to_string);
    let note = format!(
        "# `gleaner-validator backup` took `datasets_dir = {old:?}` out of this copy: its \
         datasets are in\n# `datasets/` beside this file, where the validator looks by default.\n"
    );
    std::fs::write(path, format!("{note}{doc}")).map_err(|source| ConfigError::Write {
        path: shown(),
        source,
    })?;
    Ok(Some(old))
}

impl Config {
    /// Defaults, then `file` (if given, or `DIR/validator.toml` if it exists), then the environment.
    pub fn load(file: Option<&Path>, data_dir: &Path) -> Result<Self, ConfigError> {
        let default_file = data_dir.join(DEFAULT_CONFIG_FILE);
        let path = match file {
            Some(p) => Some(p.to_path_buf()),
            None if default_file.exists() => Some(default_file),
            None => None,
        };
        let mut config = match path {
            Some(p) => {
                let text = std::fs::read_to_string(&p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                Self::from_toml(&text).map_err(|why| ConfigError::Parse {
                    path: p.display().to_string(),
                    why,
                })?
            }
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        if config.datasets_dir.as_os_str().is_empty() {
            config.datasets_dir = crate::dataset::datasets_root(data_dir);
        }
        config.check()?;
        Ok(config)
    }

    /// Parses a TOML document of overrides.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Applies `GLEANER_VALIDATOR_ADMIN_TOKEN`, `..._LAB_TOKENS` (comma-separated),
    /// `..._DOMAIN_DELAY_MS`, `..._LEASE_TTL_MS`, `..._CROSS_CHECK_RATE`,
    /// `..._NEW_NODE_CROSS_CHECK_RATE`, `..._PER_IP_RPS`, `..._PER_NODE_RPS`,
    /// `..._EPOCH_INTERVAL_SECS`, `..._TIEBREAK_INTERVAL_SECS`, `..._INGEST_WORKERS`,
    /// `..._LEASE_DEFER_AFTER_MS`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(var: &'static str, v: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.trim().parse().map_err(|e: T::Err| ConfigError::Env {
                var,
                why: e.to_string(),
            })
        }
        if let Some(v) = get("GLEANER_VALIDATOR_ADMIN_TOKEN") {
            self.admin_token = v;
        }
        if let Some(v) = get("GLEANER_VALIDATOR_LAB_TOKENS") {
            self.lab_tokens = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
        }
        fn set<T: std::str::FromStr>(
            get: &impl Fn(&str) -> Option<String>,
            var: &'static str,
            field: &mut T,
        ) -> Result<(), ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            if let Some(v) = get(var) {
                *field = parse(var, &v)?;
            }
            Ok(())
        }
        set(
            &get,
            "GLEANER_VALIDATOR_DOMAIN_DELAY_MS",
            &mut self.domain_delay_ms,
        )?;
        set(
            &get,
            "GLEANER_VALIDATOR_LEASE_TTL_MS",
            &mut self.lease_ttl_ms,
        )?;
        set(
            &get,
            "GLEANER_VALIDATOR_CROSS_CHECK_RATE",
            &mut self.cross_check_rate,
        )?;
        set(
            &get,
            "GLEANER_VALIDATOR_NEW_NODE_CROSS_CHECK_RATE",
            &mut self.new_node_cross_check_rate,
        )?;
        set(&get, "GLEANER_VALIDATOR_AUDIT_RATE", &mut self.audit_rate)?;
        set(
            &get,
            "GLEANER_VALIDATOR_JUDGING_PAUSE_SECS",
            &mut self.judging_pause_secs,
        )?;
        set(
            &get,
            "GLEANER_VALIDATOR_CHECK_WAIT_SECS",
            &mut self.check_wait_secs,
        )?;
        set(
            &get,
            "GLEANER_VALIDATOR_MAX_UNSETTLED_UNFOUND",
            &mut self.max_unsettled_unfound,
        )?;
        set(&get, "GLEANER_VALIDATOR_PER_IP_RPS", &mut self.per_ip_rps)?;
        set(
            &get,
            "GLEANER_VALIDATOR_PER_NODE_RPS",
            &mut self.per_node_rps,
        )?;
        set(
            &get,
            "GLEANER_VALIDATOR_EPOCH_INTERVAL_SECS",
            &mut self.epoch_interval_secs,
        )?;
        set(
            &get,
            "GLEANER_VALIDATOR_TIEBREAK_INTERVAL_SECS",
            &mut self.tiebreak_interval_secs,
        )?;
        set(
            &get,
            "GLEANER_VALIDATOR_INGEST_WORKERS",
            &mut self.ingest_workers,
        )?;
        set(
            &get,
            "GLEANER_VALIDATOR_LEASE_DEFER_AFTER_MS",
            &mut self.lease_defer_after_ms,
        )?;
        Ok(())
    }

    /// Whether the validator fetches disputed and unchecked pages itself (its tie-break timer
    /// runs: `tiebreak_interval_secs` > 0); without, such checks go to nodes or are abandoned.
    pub fn validator_fetches(&self) -> bool {
        self.tiebreak_interval_secs > 0
    }

    /// Who may take check and tie-break jobs: for the lease, and for the early give-up, which
    /// must read it the same way.
    pub fn judging_rules(&self) -> crate::store::JudgingRules {
        crate::store::JudgingRules {
            pause_ms: crate::clock::secs_to_ms(self.judging_pause_secs),
            max_unsettled_unfound: i64::from(self.max_unsettled_unfound),
        }
    }

    /// Rejects settings that would make the service unsafe or useless.
    pub fn check(&self) -> Result<(), ConfigError> {
        let range = |field, why: &str| ConfigError::Range {
            field,
            why: why.to_string(),
        };
        if !(0.0..=1.0).contains(&self.cross_check_rate) {
            return Err(range("cross_check_rate", "must be within 0..=1"));
        }
        if !(0.0..=1.0).contains(&self.new_node_cross_check_rate) {
            return Err(range("new_node_cross_check_rate", "must be within 0..=1"));
        }
        if !(0.0..=1.0).contains(&self.audit_rate) {
            return Err(range("audit_rate", "must be within 0..=1"));
        }
        if self.judging_pause_secs > THIRTY_DAYS_SECS {
            return Err(range(
                "judging_pause_secs",
                &format!("must be at most {THIRTY_DAYS_SECS} (30 days)"),
            ));
        }
        if self.check_wait_secs > THIRTY_DAYS_SECS {
            return Err(range(
                "check_wait_secs",
                &format!("must be at most {THIRTY_DAYS_SECS} (30 days)"),
            ));
        }
        if self.lease_ttl_ms < 1_000 {
            return Err(range("lease_ttl_ms", "must be at least 1000"));
        }
        if self.domain_delay_ms < 0 {
            return Err(range("domain_delay_ms", "must not be negative"));
        }
        if self.max_leases_per_domain == 0 {
            return Err(range("max_leases_per_domain", "must be at least 1"));
        }
        if self.per_ip_rps == 0 || self.per_node_rps == 0 {
            return Err(range("per_ip_rps/per_node_rps", "must be at least 1"));
        }
        if self.max_batch_records == 0 || self.max_body_bytes < 1024 {
            return Err(range("max_batch_records/max_body_bytes", "too small"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backup's copy of the config loses its `datasets_dir` and nothing else: the other
    /// settings and the operator's comments stay, a note says what was taken out, and a file
    /// without the setting is left byte for byte. A file that does not parse, or is not there,
    /// is an error with its code.
    #[test]
    fn a_backups_config_is_pointed_at_its_own_datasets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_CONFIG_FILE);
        let original = "# Our validator.\ndomain_delay_ms = 2500 # polite\n\
                        datasets_dir = \"/srv/gleaner/datasets\"\nlab_tokens = [\"lab-a\"]\n";
        std::fs::write(&path, original).unwrap();
        assert_eq!(
            reset_datasets_dir(&path).unwrap().as_deref(),
            Some("/srv/gleaner/datasets")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# `gleaner-validator backup` took"),
            "{text}"
        );
        assert!(
            text.contains("# Our validator.\ndomain_delay_ms = 2500 # polite\n"),
            "{text}"
        );
        let read = Config::from_toml(&text).unwrap();
        assert_eq!(
            read.datasets_dir,
            PathBuf::new(),
            "the default: DATA/datasets"
        );
        assert_eq!(read.domain_delay_ms, 2500);
        assert_eq!(read.lab_tokens, ["lab-a"]);
        assert_eq!(
            Config::load(None, dir.path()).unwrap().datasets_dir,
            crate::dataset::datasets_root(dir.path())
        );

        // Nothing to take out: the file is not rewritten.
        let before = std::fs::read(&path).unwrap();
        assert_eq!(reset_datasets_dir(&path).unwrap(), None);
        assert_eq!(std::fs::read(&path).unwrap(), before);

        std::fs::write(&path, "datasets_dir = [").unwrap();
        assert_eq!(
            reset_datasets_dir(&path).unwrap_err().code(),
            "config_parse"
        );
        assert_eq!(
            reset_datasets_dir(&dir.path().join("absent.toml"))
                .unwrap_err()
                .code(),
            "config_read"
        );
    }

    #[test]
    fn toml_then_env_override_defaults() {
        let mut c = Config::from_toml("domain_delay_ms = 100\nlab_tokens = [\"a\"]\n").unwrap();
        assert_eq!(c.domain_delay_ms, 100);
        assert_eq!(c.lease_ttl_ms, Config::default().lease_ttl_ms);
        c.apply_env(|k| match k {
            "GLEANER_VALIDATOR_DOMAIN_DELAY_MS" => Some("7".into()),
            "GLEANER_VALIDATOR_LAB_TOKENS" => Some("x, y".into()),
            "GLEANER_VALIDATOR_NEW_NODE_CROSS_CHECK_RATE" => Some("0.9".into()),
            "GLEANER_VALIDATOR_AUDIT_RATE" => Some("0.25".into()),
            "GLEANER_VALIDATOR_INGEST_WORKERS" => Some("3".into()),
            "GLEANER_VALIDATOR_LEASE_DEFER_AFTER_MS" => Some("0".into()),
            "GLEANER_VALIDATOR_TIEBREAK_INTERVAL_SECS" => Some("0".into()),
            "GLEANER_VALIDATOR_JUDGING_PAUSE_SECS" => Some("600".into()),
            "GLEANER_VALIDATOR_CHECK_WAIT_SECS" => Some("7200".into()),
            "GLEANER_VALIDATOR_MAX_UNSETTLED_UNFOUND" => Some("5".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!((c.ingest_workers, c.lease_defer_after_ms), (3, 0));
        assert_eq!(c.tiebreak_interval_secs, 0);
        assert_eq!(Config::default().tiebreak_interval_secs, 10);
        let from_file = Config::from_toml(
            "tiebreak_interval_secs = 2\nfetch_allow_addrs = [\"127.0.0.2:8080\"]\n",
        )
        .unwrap();
        assert_eq!(from_file.tiebreak_interval_secs, 2);
        assert_eq!(
            from_file.fetch_allow_addrs,
            ["127.0.0.2:8080".parse().unwrap()]
        );
        assert_eq!(c.domain_delay_ms, 7);
        assert_eq!(c.lab_tokens, vec!["x", "y"]);
        assert_eq!(c.new_node_cross_check_rate, 0.9);
        assert_eq!(c.audit_rate, 0.25);
        let mut bad = c.clone();
        bad.audit_rate = 1.5;
        assert!(bad.check().is_err(), "an audit rate above 1");
        assert_eq!(c.judging_pause_secs, 600);
        assert_eq!(
            Config::default().judging_pause_secs,
            3_600,
            "an hour by default"
        );
        let mut bad = c.clone();
        bad.judging_pause_secs = 31 * 24 * 60 * 60;
        let err = bad.check().unwrap_err();
        assert_eq!(err.code(), "config_range");
        assert!(err.to_string().contains("judging_pause_secs"), "{err}");
        bad.judging_pause_secs = 0;
        assert!(bad.check().is_ok(), "0 turns the pause off");
        assert_eq!(c.check_wait_secs, 7_200);
        assert_eq!(c.max_unsettled_unfound, 5);
        assert_eq!(Config::default().max_unsettled_unfound, 3);
        assert_eq!(
            Config::default().check_wait_secs,
            86_400,
            "a day by default"
        );
        bad.check_wait_secs = 31 * 24 * 60 * 60;
        let err = bad.check().unwrap_err();
        assert!(err.to_string().contains("check_wait_secs"), "{err}");
        bad.check_wait_secs = 0;
        assert!(bad.check().is_ok(), "0 never gives a check up");
        assert!(Config::from_toml("no_such_key = 1").is_err());
        let err = c
            .apply_env(|k| (k == "GLEANER_VALIDATOR_LEASE_TTL_MS").then(|| "soon".into()))
            .unwrap_err();
        assert_eq!(err.code(), "config_env");
    }
}
