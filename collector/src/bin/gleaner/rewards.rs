//! `gleaner rewards`: the node's reward claims, checked against each validator's signed epoch
//! roots (`gleaner_collector::rewards`).

use std::process::ExitCode;

use anyhow::Context;
use gleaner_collector::Node;

use crate::common::{Global, print_json, runtime, utc};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Validator base URL (repeatable); default: the configured validators.
    #[arg(long = "validator", value_name = "URL")]
    pub validators: Vec<String>,
    /// How many of the newest closed epochs to show (every listed root is checked anyway).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub last: u16,
}

pub fn main(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let mut cfg = g.load_config(&[])?;
    if !a.validators.is_empty() {
        cfg.validators = a.validators;
    }
    if cfg.validators.is_empty() {
        anyhow::bail!("no validator: pass --validator URL or set validators in the config");
    }
    let node = Node::open(cfg).context("opening the node")?;
    let rt = runtime()?;
    let checked = rt.block_on(node.check_claims(usize::from(a.last)));
    let mut failed = false;
    for (url, result) in checked {
        match result {
            Ok(claims) => {
                if g.json {
                    print_json(&claims)?;
                    continue;
                }
                println!("validator  {url}  ({})", claims.validator);
                if claims.claims.is_empty() {
                    println!("  no closed epoch yet");
                }
                for c in &claims.claims {
                    let status = match (c.leaf, c.proven) {
                        (true, _) => "proof verified against the signed root",
                        (false, true) => {
                            "no leaf for this key (every leaf checked against the signed root)"
                        }
                        (false, false) => {
                            "no leaf for this key (the validator's word: its leaves were not to be had)"
                        }
                    };
                    println!(
                        "  epoch {:>4}  closed {}  claimable {:>10} points  {status}",
                        c.epoch,
                        utc(c.closed_at_ms),
                        c.amount
                    );
                }
                if let Some(c) = claims.claims.first() {
                    println!("  payout key {}  root {}", c.claimant, c.root);
                }
            }
            Err(e) => {
                failed = true;
                if g.json {
                    print_json(&serde_json::json!({
                        "validator_url": url,
                        "code": e.code(),
                        "message": e.to_string(),
                    }))?;
                } else {
                    eprintln!("validator  {url}: {}: {e}", e.code());
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
