//! Child processes of the network under test: finding the workspace's binaries, starting them,
//! killing them (SIGKILL, for crash tests) and never leaving one running.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The directory holding the workspace's binaries for the current profile (`target/debug`):
/// the parent of `deps/` for test binaries, the binary's own directory otherwise.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

/// Path to a workspace binary (`gleaner`, `gleaner-validator`), building it if it is missing.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir().join(name);
    if !path.exists() {
        let package = match name {
            "gleaner" => "gleaner-collector",
            "gleaner-validator" => "gleaner-validator",
            other => anyhow::bail!("unknown binary {other}"),
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", package, "--bin", name]);
        if bin_dir().ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status()?;
        anyhow::ensure!(status.success() && path.exists(), "could not build {name}");
    }
    Ok(path)
}

/// A free port on 127.0.0.1 (bound, then released for the child to take).
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Proc> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {name}: {e}"))?;
        Ok(Proc {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, as a crash or a power cut would, and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether it has exited; its exit code if so.
    pub fn try_wait(&mut self) -> Option<Option<i32>> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(status)) => Some(status.code()),
            _ => None,
        }
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<Option<i32>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(code) = self.try_wait() {
                self.child = None;
                return Some(code);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM (graceful stop) and waits up to `timeout`; SIGKILL after that.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        match self.wait_timeout(timeout) {
            Some(code) => code,
            None => {
                self.kill();
                None
            }
        }
    }

    /// The last `n` lines of its log, for error messages.
    pub fn tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP client for talking to the network under test (the node's TLS setup, no proxy).
pub fn http_client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let tls = gleaner_collector::fetch::tls_config().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .timeout(timeout)
        .build()?)
}

/// Polls `GET url` until it answers 200 or `timeout` passes.
pub async fn wait_http_ok(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let client = http_client(Duration::from_secs(2))?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{url} did not come up within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
