//! `gleaner`: the headless node and lab CLI. Glue only: parse arguments, build the library
//! objects, run, map the outcome to an exit code. One module per subcommand; add a subcommand by
//! adding a module and a variant of [`Command`].

mod clean;
mod common;
mod config;
mod crawl;
mod fetch;
mod key;
mod log;
mod rewards;
mod run;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use common::Global;

/// Gleaner node: share idle bandwidth to fetch public web pages for verifiable AI datasets.
#[derive(Debug, Parser)]
#[command(name = "gleaner", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the node: lease jobs, fetch, clean, sign, queue and submit.
    Run(run::Args),
    /// The full pipeline on one URL (policy, robots.txt, fetch, clean, hash, sign); prints the
    /// signed record.
    Fetch(fetch::Args),
    /// Clean HTML files (plain or .gz); one JSON line per file.
    Clean(clean::Args),
    /// The node's state, bandwidth, pages, points and validator health.
    Status,
    /// Query or export the activity log: every request made on this connection, and what
    /// became of each fetched page (queued, accepted, duplicate, rejected or revoked).
    Log(log::Args),
    /// The node's reward claims, checked against each validator's signed epoch roots.
    Rewards(rewards::Args),
    /// The node's identity key.
    Key(key::Args),
    /// The effective configuration.
    Config(config::Args),
    /// Datasets for AI labs: download resumably, verify offline.
    Dataset(gleaner_collector::dataset::Args),
    /// Crawl requests for AI labs: ask a validator to crawl pages, follow how far each got,
    /// cancel one.
    Crawl(crawl::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::init_tracing(matches!(cli.command, Command::Run(_)));
    let failure = match &cli.command {
        Command::Dataset(a) => ExitCode::from(a.failure_exit()),
        _ => ExitCode::FAILURE,
    };
    let result = match cli.command {
        Command::Run(a) => run::main(&cli.global, a),
        Command::Fetch(a) => fetch::main(&cli.global, a),
        Command::Clean(a) => clean::main(&cli.global, a),
        Command::Status => status::main(&cli.global),
        Command::Log(a) => log::main(&cli.global, a),
        Command::Rewards(a) => rewards::main(&cli.global, a),
        Command::Key(a) => key::main(&cli.global, a),
        Command::Config(a) => config::main(&cli.global, a),
        Command::Dataset(a) => gleaner_collector::dataset::main(a, cli.global.json),
        Command::Crawl(a) => crawl::main(&cli.global, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if common::is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            if cli.global.json {
                let code = e
                    .downcast_ref::<gleaner_collector::NodeError>()
                    .map(|n| n.code())
                    .or_else(|| {
                        e.downcast_ref::<gleaner_dataset::DatasetError>()
                            .map(|d| d.code())
                    })
                    .or_else(|| {
                        e.downcast_ref::<gleaner_collector::labs::LabError>()
                            .map(|l| l.code())
                    })
                    .unwrap_or("error");
                println!(
                    "{}",
                    serde_json::json!({ "error": code, "message": format!("{e:#}") })
                );
            } else {
                eprintln!("gleaner: {e:#}");
            }
            failure
        }
    }
}
