//! `gleaner status`.

use std::process::ExitCode;

use anyhow::Context;
use gleaner_collector::Node;

use crate::common::{Global, PID_FILE, bytes, print_json};

pub fn main(g: &Global) -> anyhow::Result<ExitCode> {
    let cfg = g.load_config(&[])?;
    let pid = std::fs::read_to_string(cfg.data_dir.join(PID_FILE))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
    let node = Node::open(cfg).context("opening the node")?;
    let stats = node.stats()?;
    let state = match (node.status(), pid) {
        (gleaner_collector::NodeState::Stopped, Some(_)) => serde_json::json!({"state": "running"}),
        (s, _) => serde_json::to_value(&s)?,
    };
    if g.json {
        print_json(&serde_json::json!({ "state": state, "run_pid": pid, "stats": stats }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("node       {}", stats.node);
    println!(
        "state      {}{}",
        state["state"].as_str().unwrap_or("?"),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    );
    let b = &stats.bandwidth;
    println!(
        "bandwidth  now {}/s, today {}, this month {}",
        bytes(b.now_bytes_per_sec),
        bytes(b.today_bytes),
        bytes(b.month_bytes)
    );
    let p = &stats.pages;
    println!(
        "pages      {} fetched, {} accepted, {} duplicate, {} rejected, {} failed",
        p.fetched, p.accepted, p.duplicate, p.rejected, p.failed
    );
    for (reason, n) in p.failed_by_reason.iter().chain(&p.rejected_by_reason) {
        println!("             {n:>6} {reason}");
    }
    let q = &stats.queue;
    println!(
        "queue      {} fetched, {} batched, {} submitted, {} receipted",
        q.fetched, q.batched, q.submitted, q.receipted
    );
    println!(
        "points     {} credited, {} records pending",
        stats.points.credited, stats.points.pending_records
    );
    for v in &stats.validators {
        println!("validator  {} (not contacted by `status`)", v.url);
    }
    Ok(ExitCode::SUCCESS)
}
