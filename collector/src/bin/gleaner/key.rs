//! `gleaner key show|export`.

use std::process::ExitCode;

use anyhow::Context;
use gleaner_collector::Node;

use crate::common::{Global, print_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// The node's public key (its identity and default payout address).
    Show,
    /// The secret key seed (hex) for a backup. Whoever has it can sign as this node.
    Export,
}

pub fn main(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let cfg = g.load_config(&[])?;
    let path = cfg.data_dir.join(gleaner_collector::identity::KEY_FILE);
    let node = Node::open(cfg).context("opening the node")?;
    match a.command {
        KeyCommand::Show => {
            if g.json {
                print_json(&serde_json::json!({
                    "public_key": node.public_key().to_string(),
                    "path": path.display().to_string(),
                }))?;
            } else {
                println!("{}", node.public_key());
            }
        }
        KeyCommand::Export => {
            let seed = node.export_key();
            eprintln!("warning: this is your node's secret key; keep it private");
            if g.json {
                print_json(&serde_json::json!({
                    "public_key": node.public_key().to_string(),
                    "secret_seed_hex": seed.as_str(),
                }))?;
            } else {
                println!("{}", seed.as_str());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
