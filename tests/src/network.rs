//! A whole Gleaner network on this machine: sample sites on loopback addresses (127.0.0.1,
//! 127.0.0.2, … — each its own "domain" for politeness), a `gleaner-validator` process on the
//! embedded SQLite default, and `gleaner run` node processes. Used by `make demo` and the
//! end-to-end tests.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::proc::{Proc, binary, free_addr, wait_http_ok};
use crate::site::{Site, SiteConfig};

/// The admin token the network's validator is started with.
pub const ADMIN_TOKEN: &str = "demo-admin-token";
/// The one lab API key the validator accepts.
pub const LAB_TOKEN: &str = "demo-lab-key";

/// How the network is set up.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Everything the network writes (data dirs, logs) goes under here.
    pub dir: PathBuf,
    /// Sample sites to start (each on its own loopback address).
    pub sites: usize,
    /// Articles per site.
    pub articles_per_site: usize,
    /// robots.txt `Crawl-delay` of the sites, seconds.
    pub crawl_delay_secs: f64,
    /// The validator's network-wide minimum delay per domain.
    pub domain_delay_ms: u64,
    /// Share of a proven node's jobs also given to a second node.
    pub cross_check_rate: f64,
    /// The same share for nodes not yet proven (new, or caught fabricating).
    pub new_node_cross_check_rate: f64,
    /// Each node's own minimum delay per domain.
    pub node_domain_delay_ms: u64,
}

impl NetworkConfig {
    pub fn new(dir: &Path) -> Self {
        NetworkConfig {
            dir: dir.to_path_buf(),
            sites: 3,
            articles_per_site: 12,
            crawl_delay_secs: 0.2,
            domain_delay_ms: 250,
            cross_check_rate: 0.3,
            new_node_cross_check_rate: 0.5,
            node_domain_delay_ms: 200,
        }
    }
}

/// The running network. Dropping it stops every process it started.
pub struct Network {
    pub config: NetworkConfig,
    pub sites: Vec<Site>,
    pub validator: Proc,
    pub validator_addr: SocketAddr,
    pub nodes: Vec<Proc>,
    http: reqwest::Client,
}

impl Network {
    /// Starts the sites and the validator (no nodes yet).
    pub async fn start(config: NetworkConfig) -> anyhow::Result<Network> {
        std::fs::create_dir_all(&config.dir)?;
        let mut sites = Vec::new();
        let names = [
            "The Riverside Gazette",
            "Hillcrest Community Forum",
            "Valley Science Notes",
            "Harbour Times",
        ];
        for i in 0..config.sites {
            let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + i as u8));
            let site_config = SiteConfig {
                seed: 100 + i as u64,
                articles: config.articles_per_site,
                crawl_delay_secs: config.crawl_delay_secs,
                name: names[i % names.len()].to_string(),
                ..SiteConfig::default()
            };
            sites.push(Site::start(site_config, ip).await?);
        }
        // The validator's own fetches (sitemaps, tie-breaks of disputed checks) may reach the
        // sites, as the nodes may (`--allow-addr`); it settles disputes every 2 s.
        let validator_dir = config.dir.join("validator");
        std::fs::create_dir_all(&validator_dir)?;
        let allow: Vec<String> = sites.iter().map(|s| format!("\"{}\"", s.addr())).collect();
        std::fs::write(
            validator_dir.join("validator.toml"),
            format!(
                "fetch_allow_addrs = [{}]\ntiebreak_interval_secs = 2\n",
                allow.join(", ")
            ),
        )?;
        let validator_addr = free_addr()?;
        let validator = spawn_validator(&config, validator_addr)?;
        let http = crate::proc::http_client(Duration::from_secs(30))?;
        let net = Network {
            config,
            sites,
            validator,
            validator_addr,
            nodes: Vec::new(),
            http,
        };
        net.wait_validator().await?;
        Ok(net)
    }

    pub fn validator_url(&self) -> String {
        format!("http://{}", self.validator_addr)
    }

    async fn wait_validator(&self) -> anyhow::Result<()> {
        wait_http_ok(
            &format!("{}/healthz", self.validator_url()),
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}\nvalidator log:\n{}", self.validator.tail(30)))
    }

    /// SIGKILLs the validator and starts it again on the same data and port.
    pub async fn restart_validator(&mut self, kill: bool) -> anyhow::Result<()> {
        if kill {
            self.validator.kill();
        } else {
            self.validator.terminate(Duration::from_secs(10));
        }
        self.validator = spawn_validator(&self.config, self.validator_addr)?;
        self.wait_validator().await
    }

    /// The socket addresses of the sites (for the nodes' `--allow-addr`).
    pub fn site_addrs(&self) -> Vec<SocketAddr> {
        self.sites.iter().map(Site::addr).collect()
    }

    /// Data directory of node `i`.
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.config.dir.join(format!("node-{i}"))
    }

    /// Starts `gleaner run` node `i` (its data dir survives restarts).
    pub fn start_node(&mut self, i: usize, extra: &[&str]) -> anyhow::Result<usize> {
        let mut cmd = Command::new(binary("gleaner")?);
        cmd.arg("--data").arg(self.node_dir(i));
        cmd.args([
            "run",
            "--validator",
            &self.validator_url(),
            "--exit-when-idle",
        ]);
        for a in self.site_addrs() {
            cmd.args(["--allow-addr", &a.to_string()]);
        }
        cmd.args(extra);
        cmd.env(
            "GLEANER_MIN_DOMAIN_DELAY_MS",
            self.config.node_domain_delay_ms.to_string(),
        )
        .env("GLEANER_BATCH_RECORDS", "8")
        .env("GLEANER_BATCH_MAX_AGE_SECS", "2")
        .env("RUST_LOG", "info");
        let log = self.config.dir.join(format!("logs/node-{i}.log"));
        self.nodes
            .push(Proc::spawn(&format!("node-{i}"), cmd, &log)?);
        Ok(self.nodes.len() - 1)
    }

    /// `gleaner rewards --json` on node `i`'s data dir against this validator: its checked
    /// claims (the command fails on anything that does not verify).
    pub fn node_rewards(&self, i: usize) -> anyhow::Result<Value> {
        self.rewards_of(&self.node_dir(i))
    }

    /// `gleaner --json rewards` against this network's validator for the node whose data
    /// directory is `data` (one of this network's, or any other: a new one makes a new key).
    pub fn rewards_of(&self, data: &Path) -> anyhow::Result<Value> {
        let out = Command::new(binary("gleaner")?)
            .arg("--data")
            .arg(data)
            .env("GLEANER_CONFIG", data.join("no-such-config.toml"))
            .args(["--json", "rewards", "--validator", &self.validator_url()])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "gleaner rewards failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// Kills node `i` (if still running) and starts it again in place, on the same data dir.
    pub fn restart_node(&mut self, i: usize) -> anyhow::Result<()> {
        self.nodes[i].kill();
        let idx = self.start_node(i, &[])?;
        self.nodes.swap(i, idx);
        self.nodes.pop();
        Ok(())
    }

    fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.validator_url()))
            .bearer_auth(ADMIN_TOKEN)
    }

    async fn json(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = req.send().await?;
        let status = resp.status();
        let body = resp.text().await?;
        anyhow::ensure!(status.is_success(), "validator answered {status}: {body}");
        Ok(serde_json::from_str(&body)?)
    }

    /// Submits a crawl request for `seeds` (admin API), following links within their domains.
    pub async fn add_crawl(&self, seeds: &[String], max_pages: u32) -> anyhow::Result<Value> {
        let body = serde_json::json!({ "seeds": seeds, "max_pages": max_pages, "max_depth": 3 });
        self.json(
            self.admin(reqwest::Method::POST, "/v1/admin/crawl-requests")
                .json(&body),
        )
        .await
    }

    /// The validator's network statistics (admin API).
    pub async fn stats(&self) -> anyhow::Result<Value> {
        self.json(self.admin(reqwest::Method::GET, "/v1/admin/stats"))
            .await
    }

    /// Every node the validator knows, with credibility, counts and points (admin API).
    pub async fn nodes_view(&self) -> anyhow::Result<Vec<Value>> {
        let v = self
            .json(self.admin(reqwest::Method::GET, "/v1/admin/nodes"))
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// A node's ledger entries (admin API), every page: each response's `Link: <…>;
    /// rel="next"` names the next one.
    pub async fn ledger(&self, node: &str) -> anyhow::Result<Vec<Value>> {
        let mut entries = Vec::new();
        let mut next = Some(format!("/v1/admin/nodes/{node}/ledger"));
        while let Some(path) = next.take() {
            let resp = self.admin(reqwest::Method::GET, &path).send().await?;
            let status = resp.status();
            next = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_suffix(">; rel=\"next\""))
                .and_then(|v| v.strip_prefix('<'))
                .map(str::to_string);
            let body = resp.text().await?;
            anyhow::ensure!(status.is_success(), "validator answered {status}: {body}");
            let page: Vec<Value> = serde_json::from_str(&body)?;
            entries.extend(page);
        }
        Ok(entries)
    }

    /// Closes the open epoch and returns the signed root (admin API).
    pub async fn close_epoch(&self) -> anyhow::Result<Value> {
        self.json(self.admin(reqwest::Method::POST, "/v1/admin/epochs/close"))
            .await
    }

    /// GET a public validator path as JSON.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.json(self.http.get(format!("{}{path}", self.validator_url())))
            .await
    }

    /// Whether the crawl is finished: nothing queued and no lease open.
    pub async fn crawl_done(&self) -> anyhow::Result<bool> {
        let s = self.stats().await?;
        Ok(num(&s, "frontier_queued") == 0 && num(&s, "leases_open") == 0)
    }

    /// Runs a validator admin subcommand on the validator's data dir (e.g. `dataset export`).
    pub fn validator_cli(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        let mut cmd = Command::new(binary("gleaner-validator")?);
        cmd.args(args)
            .env("GLEANER_VALIDATOR_ADMIN_TOKEN", ADMIN_TOKEN);
        Ok(cmd.output()?)
    }

    /// The validator's data directory.
    pub fn validator_dir(&self) -> PathBuf {
        self.config.dir.join("validator")
    }

    /// Runs `gleaner-validator check` on the validator's data directory (beside the running
    /// server) and returns its JSON report; fails unless it found nothing wrong.
    pub fn check_validator_store(&self) -> anyhow::Result<Value> {
        let data = self.validator_dir().display().to_string();
        let out = self.validator_cli(&["check", "--data", &data])?;
        let report: Value = serde_json::from_slice(&out.stdout)?;
        anyhow::ensure!(
            out.status.success() && report["problems"] == 0,
            "the validator's store does not check: {report} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(report)
    }

    /// `gleaner --json crawl COMMAND ARGS` (the lab CLI) against this network's validator with
    /// the lab's key: its JSON lines; fails unless it exited 0.
    pub fn lab_crawl(&self, command: &str, args: &[&str]) -> anyhow::Result<Vec<Value>> {
        let out = Command::new(binary("gleaner")?)
            .args([
                "--json",
                "crawl",
                command,
                "--validator",
                &self.validator_url(),
            ])
            .args(args)
            .env("GLEANER_API_KEY", LAB_TOKEN)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "gleaner crawl {command} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| Ok(serde_json::from_str(l)?))
            .collect()
    }

    /// `gleaner --json dataset revoked DIR` against this network's validator: whether it
    /// exited 0 (no row revoked) and its report.
    pub fn dataset_revoked(&self, dir: &Path) -> anyhow::Result<(bool, Value)> {
        let out = Command::new(binary("gleaner")?)
            .args(["--json", "dataset", "revoked"])
            .arg(dir)
            .args(["--validator", &self.validator_url()])
            .output()?;
        let report = serde_json::from_slice(&out.stdout).map_err(|e| {
            anyhow::anyhow!(
                "dataset revoked printed no JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        Ok((out.status.success(), report))
    }

    /// Exports the validator's accepted records as a dataset under `out` (with the real
    /// `gleaner-validator dataset export`), then verifies it as a lab would (with the real
    /// `gleaner dataset verify --trust KEY --json`). Returns the dataset's directory and the
    /// verifier's JSON report; fails unless the export succeeded and the report says `ok`.
    pub async fn export_and_verify_dataset(&self, out: &Path) -> anyhow::Result<(PathBuf, Value)> {
        let data = self.validator_dir().display().to_string();
        let export = self.validator_cli(&[
            "dataset",
            "export",
            "--data",
            &data,
            "--out",
            &out.display().to_string(),
        ])?;
        anyhow::ensure!(
            export.status.success(),
            "dataset export failed: {}",
            String::from_utf8_lossy(&export.stderr)
        );
        let dir = String::from_utf8_lossy(&export.stdout)
            .lines()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
            .and_then(|v| v["dir"].as_str().map(PathBuf::from))
            .unwrap_or_else(|| out.to_path_buf());
        let info = self.get("/v1/info").await?;
        let key = info["validator"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("/v1/info has no validator key: {info}"))?
            .to_string();
        let verify = Command::new(binary("gleaner")?)
            .args(["--json", "dataset", "verify"])
            .arg(&dir)
            .args(["--trust", &key])
            .output()?;
        let report: Value = serde_json::from_slice(&verify.stdout).map_err(|e| {
            anyhow::anyhow!(
                "verify printed no JSON ({e}): {}{}",
                String::from_utf8_lossy(&verify.stdout),
                String::from_utf8_lossy(&verify.stderr)
            )
        })?;
        anyhow::ensure!(
            verify.status.success() && report["ok"] == true,
            "dataset verify failed: {report}"
        );
        Ok((dir, report))
    }
}

/// An integer field of a JSON object, 0 when absent.
pub fn num(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(|x| x.as_u64().or_else(|| x.as_i64().map(|i| i.max(0) as u64)))
        .unwrap_or(0)
}

fn spawn_validator(config: &NetworkConfig, addr: SocketAddr) -> anyhow::Result<Proc> {
    let mut cmd = Command::new(binary("gleaner-validator")?);
    cmd.args(["serve", "--listen", &addr.to_string(), "--data"])
        .arg(config.dir.join("validator"))
        .env("GLEANER_VALIDATOR_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("GLEANER_VALIDATOR_LAB_TOKENS", LAB_TOKEN)
        .env(
            "GLEANER_VALIDATOR_DOMAIN_DELAY_MS",
            config.domain_delay_ms.to_string(),
        )
        .env(
            "GLEANER_VALIDATOR_CROSS_CHECK_RATE",
            config.cross_check_rate.to_string(),
        )
        .env(
            "GLEANER_VALIDATOR_NEW_NODE_CROSS_CHECK_RATE",
            config.new_node_cross_check_rate.to_string(),
        )
        .env("GLEANER_VALIDATOR_LEASE_TTL_MS", "20000")
        // Every node of the demo shares one IP address (127.0.0.1).
        .env("GLEANER_VALIDATOR_PER_IP_RPS", "2000")
        .env("RUST_LOG", "info");
    Proc::spawn("validator", cmd, &config.dir.join("logs/validator.log"))
}
