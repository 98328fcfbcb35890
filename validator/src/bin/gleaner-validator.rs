//! `gleaner-validator`: the validator service and its admin commands.
//!
//! Admin commands (`crawl add`, `nodes list`, `nodes suspend`, `nodes checks`, `ledger show`,
//! `key show`, `epoch close`, `stats`, `backup`, `check`) work directly on the data directory;
//! SQLite's WAL lets them run next to a serving validator. The same operations (but the backup
//! and the check) are available over HTTP at `/v1/admin/*` with the admin bearer token.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gleaner_protocol::PublicKey;
use gleaner_validator::server::{self, AppState};
use gleaner_validator::store::{CheckVerdict, NodePage};
use gleaner_validator::{Clock, Config, Identity, Store, clock, config};

#[derive(Parser)]
#[command(
    name = "gleaner-validator",
    version,
    about = "Gleaner validator service"
)]
struct Cli {
    /// Data directory (database, key, optional validator.toml).
    #[arg(
        long,
        global = true,
        env = "GLEANER_VALIDATOR_DATA",
        default_value = "validator-data"
    )]
    data: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Config file (TOML); default DATA/validator.toml when present.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Crawl requests.
    Crawl {
        #[command(subcommand)]
        command: CrawlCommand,
    },
    /// Registered nodes.
    Nodes {
        #[command(subcommand)]
        command: NodesCommand,
    },
    /// The reward ledger.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// The validator's key.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Epochs.
    Epoch {
        #[command(subcommand)]
        command: EpochCommand,
    },
    /// Network statistics (JSON).
    Stats,
    /// Datasets for AI labs: export, list.
    Dataset(gleaner_validator::dataset::Args),
    /// Copy the data directory (a database snapshot, the bodies it names, the key, the config
    /// file and the exported datasets) into a new directory; safe while the validator serves.
    /// Prints what was copied.
    Backup {
        /// The backup's directory: must not exist yet, or be empty.
        #[arg(long)]
        to: PathBuf,
        /// Leave the exported datasets out (they can be exported again from the store, though
        /// not as the same signed files labs may hold).
        #[arg(long)]
        no_datasets: bool,
    },
    /// Check the data directory end to end: every record body, batch receipt, ledger total and
    /// epoch root, and every exported dataset as a lab verifies it (read-only; safe while
    /// serving). Prints a JSON report; fails when anything is wrong.
    Check {
        /// Leave the exported datasets unchecked.
        #[arg(long)]
        no_datasets: bool,
    },
}

#[derive(Subcommand)]
enum CrawlCommand {
    /// Queue seed URLs; outlinks within their registered domains (and --domain) are followed.
    Add(gleaner_collector::labs::CrawlArgs),
    /// Every crawl request with how far it has got: pages queued, its jobs and sitemaps by
    /// state, finished or not (JSON lines, oldest first; reads every job once).
    List,
    /// Stop a crawl request: its queued pages leave the frontier (and the seen-set), nothing
    /// more is queued for it, its unread sitemaps are dropped; pages out with nodes finish.
    Cancel {
        /// The request's id (`crawl list`).
        id: i64,
    },
}

#[derive(Subcommand)]
enum NodesCommand {
    /// Every node with credibility, counts and points (JSON lines).
    List,
    /// Suspend a node: no lease and no batch of its taken until it is resumed; its open leases
    /// are given back at once. Its records, credibility and points stay; it sees the reason in
    /// its standing. Safe while the validator serves
    Suspend {
        /// The node's key (base58)
        node: String,
        /// Why, for the node's owner (at most 200 bytes)
        #[arg(long)]
        reason: String,
    },
    /// Lift a node's suspension
    Resume {
        /// The node's key (base58)
        node: String,
    },
    /// A node's check history (JSON lines, oldest first): each cross-check's verdict on it
    /// (passed, failed, page_gone), its part, the page, how the check ended, and its
    /// credibility before and after. Kept since schema version 25
    Checks {
        /// The node's key (base58)
        node: String,
    },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// A node's ledger entries (JSON lines).
    Show { node: String },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Print the validator's public key (creates the key if missing).
    Show,
}

#[derive(Subcommand)]
enum EpochCommand {
    /// Close the open epoch and print its signed root.
    Close,
    /// List closed epochs.
    List,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => Ok(()),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

fn node_key(text: &str) -> anyhow::Result<PublicKey> {
    text.parse()
        .map_err(|e| anyhow::anyhow!("node key {text:?}: {e}"))
}

/// Prints every row `read` gives of `node` as JSON lines, a page of 1,000 at a time so that a
/// long history is never held whole; `each` sees each row and gives its `seq`, where the next
/// page starts after.
fn print_pages<T: serde::Serialize>(
    data: &Path,
    node: &str,
    read: NodePage<T>,
    mut each: impl FnMut(&T) -> i64,
) -> anyhow::Result<()> {
    let key = node_key(node)?;
    let store = open_store(data)?;
    let mut after = 0;
    loop {
        let page = read(&store, &key, after, 1_000)?;
        if page.is_empty() {
            return Ok(());
        }
        for row in &page {
            print_json(row)?;
            after = each(row);
        }
    }
}

fn open_store(data: &Path) -> anyhow::Result<Store> {
    Store::open(data).with_context(|| format!("opening the store in {}", data.display()))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let data = cli.data;
    match cli.command {
        Command::Serve { listen, config } => serve(&data, &listen, config.as_deref()),
        Command::Crawl {
            command: CrawlCommand::Add(request),
        } => {
            let store = open_store(&data)?;
            let req = request.into();
            print_json(&store.add_crawl_request("operator-cli", &req, clock::system_now_ms())?)
        }
        Command::Crawl {
            command: CrawlCommand::Cancel { id },
        } => print_json(&open_store(&data)?.cancel_crawl_request(
            id,
            None,
            clock::system_now_ms(),
        )?),
        Command::Crawl {
            command: CrawlCommand::List,
        } => {
            for request in open_store(&data)?.crawl_requests()? {
                print_json(&request)?;
            }
            Ok(())
        }
        Command::Nodes {
            command: NodesCommand::List,
        } => {
            for n in open_store(&data)?.nodes()? {
                print_json(&n)?;
            }
            Ok(())
        }
        Command::Nodes {
            command: NodesCommand::Suspend { node, reason },
        } => print_json(&open_store(&data)?.suspend_node(
            &node_key(&node)?,
            &reason,
            clock::system_now_ms(),
        )?),
        Command::Nodes {
            command: NodesCommand::Resume { node },
        } => print_json(&open_store(&data)?.resume_node(&node_key(&node)?)?),
        Command::Nodes {
            command: NodesCommand::Checks { node },
        } => {
            let (mut passed, mut failed, mut gone) = (0, 0, 0);
            print_pages(&data, &node, Store::judgements_page, |j| {
                *match j.verdict {
                    CheckVerdict::Passed => &mut passed,
                    CheckVerdict::Failed => &mut failed,
                    CheckVerdict::PageGone => &mut gone,
                } += 1;
                j.seq
            })?;
            eprintln!("{passed} passed, {failed} failed, {gone} page gone");
            Ok(())
        }
        Command::Ledger {
            command: LedgerCommand::Show { node },
        } => {
            let (mut count, mut total) = (0usize, 0i64);
            print_pages(&data, &node, Store::ledger_page, |e| {
                count += 1;
                total += e.amount;
                e.seq
            })?;
            eprintln!("{count} entries, balance {total}");
            Ok(())
        }
        Command::Key {
            command: KeyCommand::Show,
        } => {
            println!("{}", Identity::load_or_create(&data)?.public());
            Ok(())
        }
        Command::Epoch {
            command: EpochCommand::Close,
        } => {
            let id = Identity::load_or_create(&data)?;
            let root = open_store(&data)?.close_epoch(id.secret(), clock::system_now_ms())?;
            print_json(&root)
        }
        Command::Epoch {
            command: EpochCommand::List,
        } => {
            for e in open_store(&data)?.epochs()? {
                print_json(&e)?;
            }
            Ok(())
        }
        Command::Stats => print_json(&open_store(&data)?.network_stats(clock::system_now_ms())?),
        Command::Dataset(a) => gleaner_validator::dataset::main(&data, a),
        Command::Backup { to, no_datasets } => {
            let beside = [
                gleaner_validator::identity::KEY_FILE,
                config::DEFAULT_CONFIG_FILE,
            ];
            let datasets = (!no_datasets)
                .then(|| gleaner_validator::dataset::served_root(&data))
                .transpose()?;
            let mut report =
                Store::backup(&data, &to, &beside, datasets.as_deref()).map_err(|e| {
                    anyhow::anyhow!(
                        "backing up {} to {}: {e} ({})",
                        data.display(),
                        to.display(),
                        e.code()
                    )
                })?;
            // The copy's datasets are in its own `datasets/`: a server started on it serves
            // those, not the directory the original's config names.
            let config_copied = report
                .files
                .iter()
                .any(|f| f == config::DEFAULT_CONFIG_FILE);
            if datasets.is_some() && config_copied {
                let copy = to.join(config::DEFAULT_CONFIG_FILE);
                report.datasets_dir_reset = config::reset_datasets_dir(&copy).map_err(|e| {
                    anyhow::anyhow!(
                        "the backup in {} is complete, but its config still names the \
                         original's datasets directory: {e} ({})",
                        to.display(),
                        e.code()
                    )
                })?;
            }
            print_json(&report)
        }
        Command::Check { no_datasets } => {
            let identity = Identity::load(&data)?;
            let store = Store::open_read_only(&data)
                .with_context(|| format!("opening the store in {}", data.display()))?;
            let failed = |e: gleaner_validator::store::StoreError| {
                anyhow::anyhow!("checking {}: {e} ({})", data.display(), e.code())
            };
            let mut report = store.check(&identity.public()).map_err(failed)?;
            if !no_datasets {
                report
                    .check_datasets(
                        &gleaner_validator::dataset::served_root(&data)?,
                        &identity.public(),
                    )
                    .map_err(failed)?;
            }
            print_json(&report)?;
            if report.ok() {
                return Ok(());
            }
            let codes: std::collections::BTreeSet<&str> =
                report.listed.iter().map(|p| p.code).collect();
            anyhow::bail!(
                "the check found {} problem(s) in {}: {}",
                report.problems,
                data.display(),
                codes.into_iter().collect::<Vec<_>>().join(", ")
            )
        }
    }
}

fn serve(data: &Path, listen: &str, config: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config, data)?;
    // Held until the process ends: one server ingests into a data directory at a time.
    let _serving = Store::lock_for_serving(data)
        .with_context(|| format!("claiming {} for this server", data.display()))?;
    let identity = Identity::load_or_create(data)?;
    let store = Arc::new(open_store(data)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let state = AppState::new(store, identity, config, Clock::System);
        let _export = gleaner_validator::dataset::spawn_export_timer(state.clone());
        server::run(listener, state, shutdown_signal()).await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down");
}
