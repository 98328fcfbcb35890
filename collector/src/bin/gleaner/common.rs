//! Shared CLI plumbing: global flags, config loading, output helpers.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use gleaner_collector::NodeConfig;

/// Flags every subcommand accepts.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// State directory (queue, identity key). Default: the OS data directory.
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Config file. Default: `config.toml` in the OS config directory.
    #[arg(long, global = true, value_name = "FILE", env = "GLEANER_CONFIG")]
    pub config: Option<PathBuf>,
}

impl Global {
    pub fn config_path(&self) -> Option<PathBuf> {
        self.config
            .clone()
            .or_else(gleaner_collector::config::default_config_path)
    }

    /// Config file, then `GLEANER_*` variables, then these flags.
    pub fn load_config(&self, allow_addrs: &[SocketAddr]) -> anyhow::Result<NodeConfig> {
        let path = self.config_path();
        let mut cfg = NodeConfig::load(path.as_deref()).context("loading the configuration")?;
        if let Some(d) = &self.data {
            cfg.data_dir = d.clone();
        }
        for a in allow_addrs {
            if !cfg.allow_addrs.contains(a) {
                cfg.allow_addrs.push(*a);
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

pub fn init_tracing(run: bool) {
    let default = if run { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GLEANER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Prints one JSON value on its own line.
pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    out.write_all(b"\n")?;
    Ok(())
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Unix milliseconds as RFC 3339 UTC (to the second), or the raw number if out of range.
pub fn utc(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Human-readable bytes.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// File holding the pid of a running `gleaner run` in the data directory.
pub const PID_FILE: &str = "run.pid";
