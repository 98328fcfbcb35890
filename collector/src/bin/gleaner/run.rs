//! `gleaner run`.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use gleaner_collector::{Node, NodeEvent, RunOptions};

use crate::common::{Global, PID_FILE, print_json, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Validator base URL (repeatable; overrides the config's list).
    #[arg(long = "validator", value_name = "URL")]
    pub validators: Vec<String>,
    /// Exempt this exact address from the address policy (tests, local development only).
    #[arg(long = "allow-addr", value_name = "IP:PORT")]
    pub allow_addrs: Vec<SocketAddr>,
    /// Stop after storing this many pages.
    #[arg(long)]
    pub max_pages: Option<u64>,
    /// Exit 0 when no validator has jobs and the queue is drained.
    #[arg(long)]
    pub exit_when_idle: bool,
}

pub fn main(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let mut cfg = g.load_config(&a.allow_addrs)?;
    if !a.validators.is_empty() {
        cfg.validators = a.validators.clone();
    }
    cfg.validate()?;
    if cfg.validators.is_empty() {
        anyhow::bail!("no validator: pass --validator URL or set validators in the config");
    }
    let data_dir = cfg.data_dir.clone();
    let node = Node::open(cfg).context("opening the node")?;
    let pid_path = data_dir.join(PID_FILE);
    let _ = std::fs::write(&pid_path, std::process::id().to_string());
    let json = g.json;
    let rt = runtime()?;
    let summary = rt.block_on(async {
        let mut events = node.subscribe();
        if !json {
            eprintln!(
                "gleaner node {} — data in {}",
                node.public_key(),
                data_dir.display()
            );
        }
        let printer = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(ev) => {
                        if json {
                            let _ = print_json(&ev);
                        } else {
                            print_event(&ev);
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => break,
                }
            }
        });
        let opts = RunOptions {
            max_pages: a.max_pages,
            exit_when_idle: a.exit_when_idle,
        };
        let result = node.run(opts, shutdown_signal()).await;
        printer.abort();
        result
    });
    let _ = std::fs::remove_file(&pid_path);
    let summary = summary?;
    if json {
        print_json(&serde_json::json!({ "event": "stopped", "summary": summary }))?;
    } else {
        eprintln!(
            "stopped: {} pages stored, {} failed, {} leases given back",
            summary.pages, summary.failures, summary.released
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_event(ev: &NodeEvent) {
    match ev {
        NodeEvent::Fetched {
            url, wire_bytes, ..
        } => {
            println!("fetched  {url} ({})", crate::common::bytes(*wire_bytes));
        }
        NodeEvent::Failed { url, reason, .. } => println!("failed   {url}: {reason}"),
        NodeEvent::Batched { batch_id, records } => {
            println!(
                "batched  {records} records as {}",
                &batch_id[..12.min(batch_id.len())]
            );
        }
        NodeEvent::Receipted {
            batch_id,
            accepted,
            points,
        } => println!(
            "receipt  {}: {accepted} accepted, {points} points",
            &batch_id[..12.min(batch_id.len())]
        ),
        NodeEvent::StateChanged { state } => {
            println!(
                "state    {}",
                serde_json::to_string(state).unwrap_or_default()
            );
        }
        NodeEvent::ValidatorUnreachable { validator, error } => {
            println!("offline  {validator}: {error}");
        }
        NodeEvent::Revoked {
            validator,
            records,
            points,
        } => println!(
            "revoked  {validator}: {records} accepted records revoked, {points} points taken back \
             (`gleaner status` lists them)"
        ),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down: releasing leases and flushing the queue");
}
