//! `gleaner config show`.

use std::process::ExitCode;

use crate::common::{Global, print_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// The effective configuration (file, then GLEANER_* variables, then flags).
    Show,
}

pub fn main(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let cfg = g.load_config(&[])?;
    match a.command {
        ConfigCommand::Show => {
            let path = g.config_path().map(|p| p.display().to_string());
            if g.json {
                print_json(&serde_json::json!({ "path": path, "config": cfg }))?;
            } else {
                println!("# {}", path.unwrap_or_else(|| "(no config file)".into()));
                print!("{}", toml::to_string_pretty(&cfg)?);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
