//! `gleaner crawl`: a lab's crawl requests to a validator (`gleaner_collector::labs`): add one,
//! list them with how far each has got, cancel one.

use std::process::ExitCode;

use gleaner_collector::labs::{CrawlArgs, LabClient};
use gleaner_protocol::api::CrawlProgress;

use crate::common::{Global, print_json, runtime, utc};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

/// Where the validator is and the lab's key, for every crawl subcommand.
#[derive(Debug, clap::Args)]
pub struct Lab {
    /// The validator's base URL, e.g. https://validator.example
    #[allow(rustdoc::bare_urls)]
    #[arg(long)]
    pub validator: String,
    /// The lab's API key (a bearer token the validator's operator issued).
    #[arg(long, env = "GLEANER_API_KEY", hide_env_values = true)]
    pub api_key: String,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Ask the validator to crawl seed URLs (and their sites' pages within `--max-depth`
    /// links), and the pages sitemaps list. Prints what it queued and what it refused.
    Add {
        #[command(flatten)]
        lab: Lab,
        #[command(flatten)]
        request: CrawlArgs,
    },
    /// The lab's crawl requests, oldest first, with how far each has got.
    List {
        #[command(flatten)]
        lab: Lab,
    },
    /// Stop one of the lab's crawl requests: its queued pages are dropped; pages already out
    /// with nodes finish.
    Cancel {
        #[command(flatten)]
        lab: Lab,
        /// The request's id (`gleaner crawl list`).
        id: i64,
    },
}

pub fn main(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match a.command {
        Command::Add { lab, request } => {
            let client = LabClient::new(&lab.validator, &lab.api_key)?;
            let added = rt.block_on(client.add(&request.into()))?;
            if g.json {
                print_json(&added)?;
            } else {
                println!(
                    "crawl request {}: {} pages queued, {} already seen by the network",
                    added.id, added.queued, added.already_seen
                );
                for (url, why) in &added.refused {
                    println!("  refused  {url}  ({why})");
                }
            }
        }
        Command::Cancel { lab, id } => {
            let client = LabClient::new(&lab.validator, &lab.api_key)?;
            let cancelled = rt.block_on(client.cancel(id))?;
            if g.json {
                print_json(&cancelled)?;
            } else {
                println!(
                    "crawl request {}: cancelled; {} queued pages dropped, {} sitemaps left unread",
                    cancelled.id, cancelled.pages_cancelled, cancelled.sitemaps_cancelled
                );
            }
        }
        Command::List { lab } => {
            let client = LabClient::new(&lab.validator, &lab.api_key)?;
            let requests = rt.block_on(client.list())?;
            if g.json {
                for r in &requests {
                    print_json(r)?;
                }
            } else if requests.is_empty() {
                println!("no crawl requests yet");
            } else {
                for r in &requests {
                    println!("{}", line(r));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One request as a line: id, when, state, its pages by state, its budget, its records by
/// verdict, its scope.
fn line(r: &CrawlProgress) -> String {
    let pages = |state: &str| r.pages.get(state).copied().unwrap_or(0);
    let sitemaps_queued = r.sitemaps.get("queued").copied().unwrap_or(0);
    let state = match (r.finished, pages("cancelled") > 0) {
        (_, true) => "cancelled",
        (true, false) => "finished",
        (false, false) => "running",
    };
    let mut line = format!(
        "#{:<5} {}  {state:<8}  pages: {} done, {} failed, {} in progress, {} queued \
         ({} of at most {} queued so far)",
        r.id,
        utc(r.created_at_ms),
        pages("done"),
        pages("failed"),
        pages("leased"),
        pages("queued"),
        r.pages_queued,
        r.max_pages
    );
    if sitemaps_queued > 0 {
        line.push_str(&format!(", {sitemaps_queued} sitemaps to read"));
    }
    // What the pages brought: accepted into the data, and what was not.
    let records = |verdict: &str| r.records.get(verdict).copied().unwrap_or(0);
    line.push_str(&format!(
        "; records: {} accepted, {} duplicate, {} rejected",
        records("accepted"),
        records("duplicate"),
        records("rejected")
    ));
    if records("revoked") > 0 {
        line.push_str(&format!(", {} revoked", records("revoked")));
    }
    line.push_str(&format!("  scope: {}", r.scope.join(", ")));
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(pages: &[(&str, u64)], finished: bool) -> CrawlProgress {
        CrawlProgress {
            id: 3,
            created_at_ms: 0,
            requester: "lab:0".into(),
            scope: vec!["a.example".into()],
            max_pages: 10,
            max_depth: 1,
            pages_queued: 4,
            pages: pages.iter().map(|(k, v)| ((*k).to_string(), *v)).collect(),
            sitemaps: Default::default(),
            records: [("accepted".to_string(), 2), ("rejected".to_string(), 1)].into(),
            finished,
        }
    }

    #[test]
    fn a_line_says_whether_the_request_runs_finished_or_was_cancelled() {
        let running = line(&progress(&[("queued", 2), ("done", 2)], false));
        assert!(
            running.contains("running   pages: 2 done, 0 failed, 0 in progress, 2 queued"),
            "{running}"
        );
        assert!(
            running.contains("; records: 2 accepted, 0 duplicate, 1 rejected  scope: a.example"),
            "{running}"
        );
        assert!(running.ends_with("scope: a.example"), "{running}");
        assert!(line(&progress(&[("done", 4)], true)).contains(" finished "));
        assert!(line(&progress(&[("done", 1), ("cancelled", 3)], true)).contains(" cancelled "));
    }
}
