//! `gleaner log`: query and export the activity log, each fetched page with what became of its
//! record.

use std::process::ExitCode;

use anyhow::Context;
use gleaner_collector::{ActivityKind, ActivityQuery, ExportFormat, Node};

use crate::common::{Global, utc};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Kind {
    Page,
    Robots,
    Refused,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Export format (default: a table, or JSON Lines with --json).
    #[arg(long)]
    pub format: Option<Format>,
    /// Only this host or registered domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// Only this verdict (`ok`, `redirect`, `robots_disallowed`, `blocked_address`, …).
    #[arg(long)]
    pub verdict: Option<String>,
    /// Only this kind of entry.
    #[arg(long)]
    pub kind: Option<Kind>,
    /// URL or detail contains this text.
    #[arg(long)]
    pub text: Option<String>,
    /// Since: Unix ms, or a duration ago such as `30m`, `12h`, `7d`.
    #[arg(long)]
    pub since: Option<String>,
    /// Until: Unix ms, or a duration ago.
    #[arg(long)]
    pub until: Option<String>,
    /// Most entries (default 1000; exports: all).
    #[arg(long)]
    pub limit: Option<usize>,
}

fn when(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().with_context(|| format!("bad time {s:?}"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => anyhow::bail!("bad time {s:?}: use Unix ms or 30m, 12h, 7d"),
    };
    Ok(gleaner_collector::now_ms() - secs * 1000)
}

pub fn main(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let cfg = g.load_config(&[])?;
    let node = Node::open(cfg).context("opening the node")?;
    let q = ActivityQuery {
        domain: a.domain,
        verdict: a.verdict,
        kind: a.kind.map(|k| match k {
            Kind::Page => ActivityKind::Page,
            Kind::Robots => ActivityKind::Robots,
            Kind::Refused => ActivityKind::Refused,
        }),
        text: a.text,
        since_ms: a.since.as_deref().map(when).transpose()?,
        until_ms: a.until.as_deref().map(when).transpose()?,
        limit: a.limit,
    };
    let format = match (a.format, g.json) {
        (Some(Format::Csv), _) => Some(ExportFormat::Csv),
        (Some(Format::Jsonl), _) | (None, true) => Some(ExportFormat::Jsonl),
        (None, false) => None,
    };
    let mut out = std::io::stdout().lock();
    match format {
        Some(f) => node.export_activity(&q, f, &mut out)?,
        None => {
            use std::io::Write;
            let entries = node.activity(&q)?;
            let outcomes = node.outcomes_of(&entries)?;
            let shown = gleaner_collector::activity::outcomes_by_entry(
                &entries,
                gleaner_collector::ActivityEntry::fetched_url,
                &outcomes,
            );
            for (e, o) in entries.iter().zip(shown) {
                let t = utc(e.at_ms);
                // What became of the page's record, by its validator: "-" where the request
                // made none.
                let outcome = o.map_or_else(|| "-".to_string(), ToString::to_string);
                writeln!(
                    out,
                    "{t}  {:<7} {:<4} {:>9}  {:<18} {:<24} {}",
                    e.kind.as_str(),
                    e.status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into()),
                    e.bytes,
                    e.verdict,
                    outcome,
                    e.url
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
