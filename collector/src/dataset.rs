//! `gleaner dataset pull|verify|revoked`: the lab side of Gleaner datasets. Glue over
//! [`gleaner_dataset`]: download a dataset resumably, verify one offline, and find the rows its
//! validator has revoked since the export.

use std::path::PathBuf;
use std::process::ExitCode;

use gleaner_dataset::pull::{PullOptions, pull, revoked_rows, validator_base};
use gleaner_dataset::{Manifest, VerifyOptions, VerifyReport, dataset_rows, verify_dir};
use gleaner_protocol::PublicKey;

/// `gleaner dataset …`
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

/// The dataset subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Download a dataset from a validator (resuming interrupted transfers), check every file's
    /// digest, then verify every row; also says how many rows the validator has revoked since
    /// the export (`revoked` lists them).
    Pull {
        /// The dataset's URL, e.g. https://validator.example/v1/datasets/NAME
        // A bare URL on purpose: this comment is also the command's help text.
        #[allow(rustdoc::bare_urls)]
        url: String,
        /// Directory to download into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Lab API key, when the validator requires one.
        #[arg(long, env = "GLEANER_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Validator keys to trust (base58); repeat for several.
        #[arg(long = "trust", value_name = "VALIDATOR_KEY")]
        trust: Vec<PublicKey>,
        /// Skip the row-by-row verification after the download.
        #[arg(long)]
        no_verify: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Verify a downloaded dataset offline: the manifest's signature, every file's digest, every
    /// receipt's signature and every row's node signature. Exits non-zero on any failure.
    Verify {
        /// The dataset directory (holding manifest.json).
        dir: PathBuf,
        /// Validator keys to trust (base58); repeat for several. Without any, any validator whose
        /// signatures verify is accepted and the summary says the key was not pinned.
        #[arg(long = "trust", value_name = "VALIDATOR_KEY")]
        trust: Vec<PublicKey>,
    },
    /// List the rows of a dataset that its validator revoked after the export (a failed
    /// cross-check, a page found gone): records it no longer stands by. Exits 0 when there are
    /// none, 1 when there are (`--json` lists their ids, so a pipeline can drop them first), and
    /// 2 when it could not tell (an unreadable dataset, a validator that does not answer).
    Revoked {
        /// The dataset directory (holding manifest.json).
        dir: PathBuf,
        /// The validator's base URL, e.g. https://validator.example
        #[allow(rustdoc::bare_urls)]
        #[arg(long)]
        validator: String,
        /// Lab API key, when the validator requires one.
        #[arg(long, env = "GLEANER_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
    },
}

impl Args {
    /// The exit code when the subcommand fails: 2 for `revoked`, whose 1 means "rows revoked"
    /// (as `diff` answers 1 for "files differ" and 2 for trouble), else 1.
    pub fn failure_exit(&self) -> u8 {
        match self.command {
            Command::Revoked { .. } => 2,
            _ => 1,
        }
    }
}

/// Runs a dataset subcommand; `json` prints machine-readable output.
pub fn main(args: Args, json: bool) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Pull {
            url,
            out,
            api_key,
            trust,
            no_verify,
            quiet,
        } => {
            let opts = PullOptions {
                api_key,
                progress: !quiet && !json,
                ..PullOptions::default()
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let report = rt.block_on(pull(&url, &out, &opts))?;
            // A dataset pulled long after its export may hold rows revoked since: say how many.
            let revoked = validator_base(&url)
                .ok_or_else(|| "the URL names no validator (…/v1/datasets/NAME)".to_string())
                .and_then(|base| {
                    let rows = dataset_rows(&out, &report.manifest).map_err(|e| e.to_string())?;
                    let found = rt
                        .block_on(revoked_rows(base, &report.manifest.validator, &rows, &opts))
                        .map_err(|e| e.to_string())?;
                    Ok((found.rows.len(), base))
                });
            let revoked_json = revoked.as_ref().ok().map(|(n, _)| *n);
            if !json {
                println!(
                    "pulled {} ({} rows, {} files) into {}: {} bytes downloaded, {} files already present, {} resumed",
                    report.manifest.name,
                    report.manifest.rows,
                    report.manifest.files().count(),
                    out.display(),
                    report.bytes_downloaded,
                    report.files_skipped,
                    report.resumed_requests
                );
                match &revoked {
                    Ok((0, _)) => println!("revoked    none of its rows since the export"),
                    Ok((n, base)) => println!(
                        "revoked    {n} rows since the export: `gleaner dataset revoked {} --validator {base}` lists them",
                        out.display()
                    ),
                    Err(e) => println!("revoked    not checked: {e}"),
                }
            }
            if no_verify {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "pulled": report.manifest.name,
                            "rows": report.manifest.rows,
                            "bytes_downloaded": report.bytes_downloaded,
                            "revoked_rows": revoked_json,
                        })
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            Ok(print_verify(
                &out,
                &trust,
                json,
                Some(("revoked_rows", revoked_json.into())),
            ))
        }
        Command::Verify { dir, trust } => Ok(print_verify(&dir, &trust, json, None)),
        Command::Revoked {
            dir,
            validator,
            api_key,
        } => revoked(&dir, &validator, api_key, json),
    }
}

/// `gleaner dataset revoked`.
fn revoked(
    dir: &std::path::Path,
    validator: &str,
    api_key: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let manifest = Manifest::read(dir)?;
    let rows = dataset_rows(dir, &manifest)?;
    let opts = PullOptions {
        api_key,
        progress: false,
        ..PullOptions::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let found = rt.block_on(revoked_rows(validator, &manifest.validator, &rows, &opts))?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "dataset": manifest.name,
                "rows": rows.len(),
                "revocations_listed": found.listed,
                "revoked": found.rows.iter().map(|(row, r)| serde_json::json!({
                    "id": row.id,
                    "url": row.url,
                    "shard": row.shard,
                    "row": row.row,
                    "reason": r.reason,
                    "node": r.node.to_string(),
                    "epoch": r.epoch,
                    "seq": r.seq,
                })).collect::<Vec<_>>(),
            })
        );
    } else {
        println!("dataset    {} ({} rows)", manifest.name, rows.len());
        println!(
            "validator  {validator}: {} revocations listed",
            found.listed
        );
        for (row, r) in &found.rows {
            println!(
                "REVOKED    {} {} ({}, epoch {}; {} row {})",
                row.id, row.url, r.reason, r.epoch, row.shard, row.row
            );
        }
        println!(
            "result     {}",
            match found.rows.len() {
                0 => "no row revoked".to_string(),
                n => format!("{n} rows revoked since the export: drop them"),
            }
        );
    }
    Ok(if found.rows.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Verifies `dir` and prints the report (with `extra`, a field the JSON report gains).
fn print_verify(
    dir: &std::path::Path,
    trust: &[PublicKey],
    json: bool,
    extra: Option<(&str, serde_json::Value)>,
) -> ExitCode {
    let report = verify_dir(
        dir,
        &VerifyOptions {
            trust: trust.to_vec(),
            ..VerifyOptions::default()
        },
    );
    if json {
        let mut out = report_json(&report);
        if let (Some((name, value)), Some(fields)) = (extra, out.as_object_mut()) {
            fields.insert(name.to_string(), value);
        }
        println!("{out}");
    } else {
        print_report(&report);
    }
    if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn report_json(r: &VerifyReport) -> serde_json::Value {
    serde_json::json!({
        "ok": r.is_ok(),
        "dataset": r.manifest.as_ref().map(|m| m.name.clone()),
        "validator": r.manifest.as_ref().map(|m| m.validator.to_string()),
        "validator_pinned": r.validator_pinned,
        "files_checked": r.files_checked,
        "receipts_checked": r.receipts_checked,
        "rows_checked": r.rows_checked,
        "failure_count": r.failure_count,
        "failures": r.failures.iter().map(|f| serde_json::json!({
            "place": f.place.to_string(),
            "code": f.code,
            "detail": f.detail,
        })).collect::<Vec<_>>(),
    })
}

fn print_report(r: &VerifyReport) {
    if let Some(m) = &r.manifest {
        println!(
            "dataset    {} (epochs {}–{})",
            m.name, m.epoch_from, m.epoch_to
        );
        println!(
            "validator  {} ({})",
            m.validator,
            if r.validator_pinned {
                "trusted"
            } else {
                "NOT pinned: pass --trust KEY"
            }
        );
    }
    println!(
        "checked    {} files, {} receipts, {} rows",
        r.files_checked, r.receipts_checked, r.rows_checked
    );
    for f in &r.failures {
        println!("FAIL       {f}");
    }
    if r.failure_count > r.failures.len() as u64 {
        println!(
            "FAIL       … and {} more",
            r.failure_count - r.failures.len() as u64
        );
    }
    if r.is_ok() {
        println!("result     OK");
    } else {
        println!("result     FAILED ({} failures)", r.failure_count);
    }
}
