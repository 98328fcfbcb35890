//! `gleaner fetch URL`.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use gleaner_collector::Node;

use crate::common::{Global, print_json, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The URL to fetch.
    pub url: String,
    /// Exempt this exact address from the address policy (tests, local development only).
    #[arg(long = "allow-addr", value_name = "IP:PORT")]
    pub allow_addrs: Vec<SocketAddr>,
}

pub fn main(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let mut cfg = g.load_config(&a.allow_addrs)?;
    // A one-off fetch does not wait on the per-domain delay of a running node.
    cfg.min_domain_delay_ms = 0;
    let node = Node::open(cfg).context("opening the node")?;
    let rt = runtime()?;
    match rt.block_on(node.fetch_one(&a.url)) {
        Ok(record) => {
            if g.json {
                print_json(&record)?;
            } else {
                println!("{}", serde_json::to_string_pretty(&record)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if g.json {
                print_json(&serde_json::json!({
                    "refused": true,
                    "code": e.code(),
                    "reason": e.reason().code(),
                    "status": e.status(),
                    "message": e.to_string(),
                }))?;
            } else {
                eprintln!("refused: {}: {e}", e.code());
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
