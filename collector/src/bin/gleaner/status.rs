//! `gleaner status`.

use std::process::ExitCode;

use anyhow::Context;
use gleaner_collector::Node;
use gleaner_collector::node::ValidatorHealth;

use crate::common::{Global, PID_FILE, bytes, print_json, utc};

/// Most revoked records `status` lists (newest first).
const MAX_REVOKED_SHOWN: usize = 10;

pub fn main(g: &Global) -> anyhow::Result<ExitCode> {
    let cfg = g.load_config(&[])?;
    let pid = std::fs::read_to_string(cfg.data_dir.join(PID_FILE))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
    let node = Node::open(cfg).context("opening the node")?;
    let stats = node.stats()?;
    let revoked = node.revoked(MAX_REVOKED_SHOWN)?;
    let state = match (node.status(), pid) {
        (gleaner_collector::NodeState::Stopped, Some(_)) => serde_json::json!({"state": "running"}),
        (s, _) => serde_json::to_value(&s)?,
    };
    if g.json {
        print_json(&serde_json::json!({
            "state": state,
            "run_pid": pid,
            "stats": stats,
            "revoked": revoked,
        }))?;
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
    if p.revoked > 0 {
        println!(
            "           {} accepted records revoked later by validators' checks{}",
            p.revoked,
            if revoked.is_empty() {
                " (the validators' count; not listed yet)"
            } else {
                ", the newest:"
            }
        );
    }
    for r in &revoked {
        println!(
            "             {} {} ({}, epoch {}, {} points taken back)",
            utc(r.at_ms),
            r.url,
            r.reason,
            r.epoch,
            r.points
        );
    }
    for (reason, n) in p.failed_by_reason.iter().chain(&p.rejected_by_reason) {
        println!("             {n:>6} {reason}");
    }
    let q = &stats.queue;
    println!(
        "queue      {} fetched, {} batched, {} submitted, {} receipted",
        q.fetched, q.batched, q.submitted, q.receipted
    );
    let pts = &stats.points;
    if pts.taken_back > 0 {
        println!(
            "points     {} credited, {} of them taken back by revocations, {} records pending",
            pts.credited, pts.taken_back, pts.pending_records
        );
    } else {
        println!(
            "points     {} credited, {} records pending",
            pts.credited, pts.pending_records
        );
    }
    for v in &stats.validators {
        validator(v);
    }
    Ok(ExitCode::SUCCESS)
}

/// One validator as the node last saw it: `status` contacts nobody, so these are the facts a
/// running node saved (every minute and when it stops).
fn validator(v: &ValidatorHealth) {
    let Some(last) = v.last_ok_ms else {
        println!("validator  {} (no answer seen yet)", v.url);
        return;
    };
    println!("validator  {} (last answer {})", v.url, utc(last));
    if let Some(s) = &v.standing {
        println!(
            "           credibility {:.2} ({} cross-checks passed, {} failed), {} points ({} in open \
             epoch {}), {} records revoked",
            s.credibility,
            s.checks_passed,
            s.checks_failed,
            s.points_total,
            s.points_pending,
            s.epoch,
            s.records_revoked
        );
        if let Some(reason) = &s.suspended {
            println!(
                "           SUSPENDED by the validator's operator (no jobs, no batches taken): {reason}"
            );
        }
    }
    match (&v.claim, &v.claim_error) {
        (_, Some(e)) => println!("           claim does not verify: {e}"),
        (Some(c), None) if c.leaf => println!(
            "           claim in epoch {}: {} points, proof verified against the signed root",
            c.epoch, c.amount
        ),
        (Some(c), None) => println!(
            "           claim in epoch {}: nothing claimable yet (no leaf for this key{})",
            c.epoch,
            if c.proven {
                ", every leaf checked"
            } else {
                ", the validator's word"
            }
        ),
        (None, None) => println!("           claim: no closed epoch checked yet"),
    }
}
