//! `make demo`: the whole Gleaner network on this machine, with no internet.
//!
//! Starts sample websites on loopback addresses, a validator, several honest `gleaner run` nodes
//! and one dishonest node that fabricates every page; submits a crawl request; shows progress until
//! the crawl is done; then closes the epoch, exports the dataset, verifies it like a lab would, and
//! prints a summary. `--seeds FILE` crawls real URLs instead (one per line; needs internet).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use gleaner_e2e::adversary::{Adversary, Behaviour};
use gleaner_e2e::network::{Network, NetworkConfig, num};
use gleaner_e2e::proc::binary;
use gleaner_e2e::site::Site;

#[derive(Parser)]
#[command(
    name = "gleaner-demo",
    about = "The whole Gleaner network on this machine"
)]
struct Args {
    /// Where everything is written (data dirs, logs, the dataset).
    #[arg(long, default_value = "demo-output")]
    out: PathBuf,
    /// Honest nodes to run.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Crawl these URLs (one per line) instead of the local sample sites. Needs internet.
    #[arg(long)]
    seeds: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 240)]
    timeout: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => {}
        Err(e) => {
            eprintln!("\ndemo failed: {e:#}");
            std::process::exit(1);
        }
    }
}

fn step(text: &str) {
    println!("\n\x1b[1m▶ {text}\x1b[0m");
}

async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    if args.out.exists() {
        std::fs::remove_dir_all(&args.out)?;
    }
    std::fs::create_dir_all(&args.out)?;
    let out = std::fs::canonicalize(&args.out)?;
    // Build (or find) the binaries first, so the timings below are the network's.
    binary("gleaner")?;
    binary("gleaner-validator")?;

    step("Starting sample websites and a validator");
    let mut config = NetworkConfig::new(&out);
    if args.seeds.is_some() {
        config.sites = 0;
    }
    let mut net = Network::start(config).await?;
    for site in &net.sites {
        println!(
            "  site       {}  (robots.txt Crawl-delay {:?})",
            site.origin(),
            site.crawl_delay()
        );
    }
    println!(
        "  validator  {}  (data in {})",
        net.validator_url(),
        net.validator_dir().display()
    );

    let seeds: Vec<String> = match &args.seeds {
        Some(file) => std::fs::read_to_string(file)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect(),
        None => net.sites.iter().flat_map(Site::public_urls).collect(),
    };
    step(&format!(
        "Submitting a crawl request for {} seed URLs",
        seeds.len()
    ));
    let added = net.add_crawl(&seeds, 500).await?;
    println!("  queued {}", num(&added, "queued"));

    step(&format!(
        "Starting {} honest nodes and 1 dishonest node",
        args.nodes
    ));
    for i in 0..args.nodes {
        net.start_node(i, &[])?;
        println!(
            "  node-{i}     gleaner run (log: {})",
            net.config.dir.join(format!("logs/node-{i}.log")).display()
        );
    }
    // The dishonest node joins a moment later, as nodes come and go on a real network.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut liar = Adversary::new(
        &net.validator_url(),
        [0xBA; 32],
        Behaviour::FabricateAll,
        &out.join("dishonest"),
        &net.site_addrs(),
    )?;
    liar.register().await?;
    println!(
        "  dishonest  {} (invents the text of every page it is given)",
        liar.public_key()
    );
    let liar_task = tokio::spawn(async move {
        let mut fabricated = 0usize;
        for _ in 0..400 {
            if let Ok(r) = liar.round(4).await {
                fabricated += r.fabricated;
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        fabricated
    });

    step("Crawling (progress every 2 s)");
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut idle_polls = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let s = net.stats().await?;
        println!(
            "  [{:>4.0}s] received {:>4}  accepted {:>4}  duplicate {:>3}  rejected {:>3}  revoked {:>3}  | queued {:>3}  leased {:>2}",
            started.elapsed().as_secs_f64(),
            num(&s, "records_total"),
            num(&s, "records_accepted"),
            num(&s, "records_duplicate"),
            num(&s, "records_rejected"),
            num(&s, "records_revoked"),
            num(&s, "frontier_queued"),
            num(&s, "leases_open"),
        );
        let nodes_done = net.nodes.iter_mut().all(|n| n.try_wait().is_some());
        if num(&s, "frontier_queued") == 0 && num(&s, "leases_open") == 0 {
            idle_polls += 1;
        } else {
            idle_polls = 0;
        }
        if (nodes_done && idle_polls >= 1) || idle_polls >= 3 {
            break;
        }
        if Instant::now() > deadline {
            println!("  timeout reached; stopping the crawl here");
            break;
        }
    }
    liar_task.abort();
    for n in &mut net.nodes {
        n.terminate(Duration::from_secs(10));
    }

    step("Closing the epoch");
    let epoch = net.close_epoch().await?;
    println!(
        "  epoch {}  root {}  total {} points over {} accounts",
        epoch["epoch"],
        epoch["root"].as_str().unwrap_or("?"),
        epoch["total"],
        epoch["leaf_count"]
    );

    step("Exporting and verifying the dataset");
    let dataset = out.join("dataset");
    let validator_dir = net.validator_dir();
    let export = net.validator_cli(&[
        "dataset",
        "export",
        "--data",
        &validator_dir.display().to_string(),
        "--out",
        &dataset.display().to_string(),
    ])?;
    print_indented(&export.stdout);
    if !export.status.success() {
        print_indented(&export.stderr);
    }
    // The export prints a JSON summary naming the dataset's directory.
    let dataset = String::from_utf8_lossy(&export.stdout)
        .lines()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["dir"].as_str().map(PathBuf::from))
        .unwrap_or(dataset);
    let info = net.get("/v1/info").await?;
    let validator_key = info["validator"].as_str().unwrap_or_default().to_string();
    let verify = std::process::Command::new(binary("gleaner")?)
        .args([
            "dataset",
            "verify",
            &dataset.display().to_string(),
            "--trust",
            &validator_key,
        ])
        .output()?;
    print_indented(&verify.stdout);
    if !verify.status.success() {
        print_indented(&verify.stderr);
    }

    step("Summary");
    let s = net.stats().await?;
    println!("  pages received   {}", num(&s, "records_total"));
    println!("  accepted         {}", num(&s, "records_accepted"));
    println!("  duplicates       {}", num(&s, "records_duplicate"));
    println!("  rejected         {}", num(&s, "records_rejected"));
    println!("  revoked          {}", num(&s, "records_revoked"));
    println!("  why records were not accepted:");
    for r in s["rejection_reasons"].as_array().into_iter().flatten() {
        println!(
            "    {:<28} {}",
            r["reason"].as_str().unwrap_or("?"),
            r["count"]
        );
    }
    for r in s["failure_reasons"].as_array().into_iter().flatten() {
        println!(
            "    job failed: {:<16} {}",
            r["reason"].as_str().unwrap_or("?"),
            r["count"]
        );
    }
    println!(
        "\n  {:<46} {:>8} {:>6} {:>9} {:>8} {:>5} {:>9}",
        "node", "accepted", "dup", "rejected", "revoked", "cred", "points"
    );
    let nodes = net.nodes_view().await?;
    for n in &nodes {
        println!(
            "  {:<46} {:>8} {:>6} {:>9} {:>8} {:>5.2} {:>9}",
            n["node"].as_str().unwrap_or("?"),
            num(n, "records_accepted"),
            num(n, "records_duplicate"),
            num(n, "records_rejected"),
            num(n, "records_revoked"),
            n["credibility"].as_f64().unwrap_or(0.0),
            n["points_total"],
        );
    }
    let liar_key = gleaner_protocol::SecretKey::from_bytes(&[0xBA; 32])
        .public()
        .to_string();
    let liar_points = nodes
        .iter()
        .find(|n| n["node"] == liar_key.as_str())
        .map(|n| num(n, "points_total"))
        .unwrap_or(0);
    let best_honest = nodes
        .iter()
        .filter(|n| n["node"] != liar_key.as_str())
        .map(|n| num(n, "points_total"))
        .max()
        .unwrap_or(0);
    println!(
        "\n  dishonest node {}…: {} points ({:.1}% of the best honest node's {})",
        &liar_key[..8],
        liar_points,
        if best_honest > 0 {
            100.0 * liar_points as f64 / best_honest as f64
        } else {
            0.0
        },
        best_honest
    );
    // What the operator reads to see why: the node's check history.
    let history = net.validator_cli(&[
        "nodes",
        "checks",
        &liar_key,
        "--data",
        &validator_dir.display().to_string(),
    ])?;
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&history.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    println!(
        "  its check history (gleaner-validator nodes checks {}…): {}",
        &liar_key[..8],
        String::from_utf8_lossy(&history.stderr).trim()
    );
    if let Some(j) = rows.iter().find(|j| j["verdict"] != "passed") {
        println!(
            "    e.g. check {} of {} as {}: {} ({}), credibility {:.2} → {:.2}",
            j["check"],
            j["url"].as_str().unwrap_or("?"),
            j["role"].as_str().unwrap_or("?"),
            j["verdict"].as_str().unwrap_or("?"),
            j["outcome"].as_str().unwrap_or("?"),
            j["credibility_before"].as_f64().unwrap_or(0.0),
            j["credibility_after"].as_f64().unwrap_or(0.0)
        );
    }
    println!("\n  dataset   {}", dataset.display());
    println!("  logs      {}", out.join("logs").display());
    println!(
        "  console   gleaner-validator serve --data {} --listen 127.0.0.1:8080, then open http://127.0.0.1:8080/",
        validator_dir.display()
    );
    println!(
        "\n  finished in {:.0} s; nothing is left running.",
        started.elapsed().as_secs_f64()
    );
    net.validator.terminate(Duration::from_secs(10));
    Ok(())
}

fn print_indented(bytes: &[u8]) {
    for line in String::from_utf8_lossy(bytes).lines() {
        println!("  {line}");
    }
}
