//! The HTTP API (axum). The caller binds the socket; [`run`] serves until `shutdown` resolves;
//! [`spawn`] returns a [`ServerHandle`] for tests and embedding. [`app`] builds the router, so
//! other modules (datasets, console) can `merge` their routes into it.
//!
//! Layers, outermost first: request counting and per-IP rate limit → timeout (problem+json 503)
//! → concurrency cap. Bodies are read by handlers with explicit limits (413 `body_too_large`).
//! A batch's checks wait for a slot in [`admission`], which also decides when new leases wait.

pub mod admission;
mod api;
pub mod auth;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod writer;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use gleaner_protocol::PublicKey;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

use crate::clock::Clock;
use crate::config::Config;
use crate::identity::{Identity, RevocationSigner};
use crate::store::Store;
pub use auth::NonceCache;
pub use error::{ApiError, PROBLEM_CONTENT_TYPE};
use metrics::Metrics;

/// Shared state of all handlers. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    identity: Identity,
    /// Signs the revocation log as it is served, keeping the signatures made.
    revocations: RevocationSigner,
    config: Config,
    clock: Clock,
    nonces: auth::NonceMutex,
    known: auth::KnownNodes,
    node_limiter: DefaultKeyedRateLimiter<PublicKey>,
    ip_limiter: DefaultKeyedRateLimiter<IpAddr>,
    metrics: Metrics,
    /// Group-commit writer for ingest and leases; `None` if its thread could not start (then
    /// each write commits on its own).
    writer: Option<writer::Writer>,
    /// Ingest's worker slots and the lease gate.
    ingest_gate: admission::IngestGate,
    /// Jobs waiting in the network as the last lease saw them, for answers that skip the store.
    last_pending: std::sync::atomic::AtomicU64,
    /// The crawl requests' progress as last read, and when ([`AppState::crawl_progress`]).
    crawl_progress: tokio::sync::Mutex<Option<(Instant, Arc<Vec<crate::store::CrawlProgress>>)>>,
}

/// How long the crawl requests' progress is served from one read of the store: the read goes
/// over every job, so callers, however many, cause at most one a period.
pub const CRAWL_PROGRESS_TTL: Duration = Duration::from_secs(5);

fn quota(rps: u32, burst: u32) -> Quota {
    let rps = NonZeroU32::new(rps).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rps).allow_burst(NonZeroU32::new(burst).unwrap_or(rps))
}

impl AppState {
    /// State over an open store, the validator's identity, settings and clock.
    pub fn new(store: Arc<Store>, identity: Identity, config: Config, clock: Clock) -> Self {
        let node_limiter = RateLimiter::keyed(quota(config.per_node_rps, config.per_node_burst));
        let ip_limiter = RateLimiter::keyed(quota(config.per_ip_rps, config.per_ip_burst));
        let writer = match writer::Writer::start(store.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the store writer; committing each write alone");
                None
            }
        };
        let workers = match config.ingest_workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let defer_after = (config.lease_defer_after_ms > 0)
            .then(|| Duration::from_millis(config.lease_defer_after_ms));
        let ingest_gate = admission::IngestGate::new(workers, defer_after);
        AppState {
            inner: Arc::new(Inner {
                store,
                revocations: RevocationSigner::new(identity.clone()),
                identity,
                config,
                clock,
                nonces: Mutex::new(NonceCache::default()),
                known: auth::KnownNodes::default(),
                node_limiter,
                ip_limiter,
                metrics: Metrics::default(),
                writer,
                ingest_gate,
                last_pending: std::sync::atomic::AtomicU64::new(0),
                crawl_progress: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// Drops the crawl requests' progress last read: a request was added, and whoever added it
    /// should see it in the next list.
    pub async fn forget_crawl_progress(&self) {
        *self.inner.crawl_progress.lock().await = None;
    }

    /// Every crawl request's progress ([`Store::crawl_requests`]), read again from the store at
    /// most once per [`CRAWL_PROGRESS_TTL`] (or after a request is added); callers meanwhile
    /// share the last read (those that come while it is made wait for it).
    pub async fn crawl_progress(&self) -> Result<Arc<Vec<crate::store::CrawlProgress>>, ApiError> {
        let mut cached = self.inner.crawl_progress.lock().await;
        if let Some((at, progress)) = cached.as_ref()
            && at.elapsed() < CRAWL_PROGRESS_TTL
        {
            return Ok(progress.clone());
        }
        let store = self.store().clone();
        let progress = Arc::new(blocking(move || store.crawl_requests()).await??);
        *cached = Some((Instant::now(), progress.clone()));
        Ok(progress)
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    /// The validator's identity.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// Signs revocation log entries for serving.
    pub fn revocation_signer(&self) -> &RevocationSigner {
        &self.inner.revocations
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The validator's clock, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Ingest's worker slots and the lease gate.
    pub fn ingest_gate(&self) -> &admission::IngestGate {
        &self.inner.ingest_gate
    }

    /// The store writer's queue: operations waiting for a group, and how long the oldest has
    /// waited so far (`(0, None)` without a writer thread).
    pub fn writer_queue(&self) -> (usize, Option<Duration>) {
        self.inner
            .writer
            .as_ref()
            .map_or((0, None), |w| (w.queued(), w.oldest_wait()))
    }

    /// Whether the store writer is behind: an operation has waited longer than the
    /// lease-deferral target (`lease_defer_after_ms`) for its group to start. Leases go through
    /// the writer too, so new ones are deferred then (see `admission`): each would only add to
    /// the queue in front of the batches already submitted.
    pub fn writer_behind(&self) -> bool {
        self.ingest_gate().writer_behind(self.writer_queue().1)
    }

    /// Runs `f` in the store's next group-committed transaction (see [`writer`]) and returns its
    /// result once the commit is done.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: for<'a, 'c> FnOnce(&'a mut crate::store::Group<'c>) -> T + Send + 'static,
    {
        match &self.inner.writer {
            Some(w) => {
                let (out, waited) = w.write(f).await?;
                self.inner.metrics.observe_writer_wait(waited.as_secs_f64());
                Ok(out)
            }
            None => {
                let store = self.inner.store.clone();
                Ok(blocking(move || store.group(f)).await??)
            }
        }
    }

    /// Closes the open epoch (used by the timer and the admin API).
    pub async fn close_epoch(&self) -> Result<gleaner_protocol::EpochRoot, ApiError> {
        let state = self.clone();
        let now = self.now_ms();
        let root = blocking(move || {
            state
                .inner
                .store
                .close_epoch(state.inner.identity.secret(), now)
        })
        .await??;
        Ok(root)
    }
}

/// Runs blocking work (SQLite, CPU-heavy checks) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal("join_error", &e))
}

/// The router with every route and layer.
pub fn app(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.inner.config.request_timeout_secs.max(1));
    let max_concurrent = state.inner.config.max_concurrent_requests.max(1);
    api::routes()
        .merge(crate::dataset::routes())
        .merge(crate::console::routes())
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(handle_layer_error))
                .timeout(timeout)
                .concurrency_limit(max_concurrent),
        )
        .layer(middleware::from_fn_with_state(state.clone(), edge))
        .with_state(state)
}

async fn handle_layer_error(err: tower::BoxError) -> Response {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(503, "request_timeout", "the request took too long").into_response()
    } else {
        ApiError::internal("layer_error", &err).into_response()
    }
}

/// The address a request came from (absent only when the router is driven without a listener).
fn peer_ip(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Outermost middleware: per-IP rate limit (health and metrics exempt), request metrics.
async fn edge(State(state): State<AppState>, req: Request<Body>, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let exempt = path == "/healthz" || path == "/metrics";
    let ip = peer_ip(req.extensions());
    let started = Instant::now();
    let res = match ip {
        Some(ip) if !exempt && state.inner.ip_limiter.check_key(&ip).is_err() => {
            ApiError::new(429, "rate_limited", "too many requests from this address")
                .into_response()
        }
        _ => next.run(req).await,
    };
    let m = &state.inner.metrics;
    m.add(
        "gleaner_http_requests_total",
        &format!("status=\"{}\"", res.status().as_u16()),
        1,
    );
    if let Some(code) = res.extensions().get::<error::ProblemCode>() {
        m.add("gleaner_problems_total", &format!("code=\"{}\"", code.0), 1);
    }
    tracing::debug!(path = %path, status = res.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    res
}

/// Runs `pass` every `secs` seconds (0: never) on its own task, logging a failed pass as
/// `what`.
fn spawn_every<F, Fut, E>(
    secs: u64,
    what: &'static str,
    mut pass: F,
) -> Option<tokio::task::JoinHandle<()>>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<usize, E>> + Send,
    E: std::fmt::Display,
{
    (secs > 0).then(|| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(secs));
            loop {
                tick.tick().await;
                if let Err(e) = pass().await {
                    tracing::error!(error = %e, "{what} failed");
                }
            }
        })
    })
}

/// Fetches the sitemaps crawl requests name, every `sitemap_interval_secs` (0: never).
fn spawn_sitemap_timer(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    let config = &state.inner.config;
    if config.sitemap_interval_secs == 0 {
        return None;
    }
    let fetcher = match crate::sitemaps::SitemapFetcher::new(&config.fetch_allow_addrs) {
        Ok(f) => Arc::new(f),
        Err(e) => {
            tracing::error!(error = %e, "sitemaps will not be fetched");
            return None;
        }
    };
    let state = state.clone();
    spawn_every(config.sitemap_interval_secs, "sitemap pass", move || {
        let (fetcher, state) = (fetcher.clone(), state.clone());
        async move {
            let clock = state.inner.clock.clone();
            fetcher
                .run_pending(&state.inner.store, || clock.now_ms())
                .await
        }
    })
}

/// Settles disputed cross-checks with the validator's own fetch, every `tiebreak_interval_secs`
/// (0: never; ingest then sends every tie-break to a third node, and the checks a run with the
/// fetches on left waiting are handed on once, at start-up: `Store::hand_on_validator_fetches`).
fn spawn_tiebreak_timer(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    let config = &state.inner.config;
    if !config.validator_fetches() {
        let (store, now) = (state.inner.store.clone(), state.inner.clock.now_ms());
        return Some(tokio::spawn(async move {
            match tokio::task::spawn_blocking(move || store.hand_on_validator_fetches(now)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(
                    checks = n,
                    "validator fetches are off: the checks waiting for one are handed on \
                     (disputes to third nodes, the rest abandoned)"
                ),
                Ok(Err(e)) => tracing::error!(error = %e, "handing on waiting checks failed"),
                Err(e) => tracing::error!(error = %e, "handing on waiting checks failed"),
            }
        }));
    }
    let fetcher = match crate::tiebreak::TiebreakFetcher::new(&config.fetch_allow_addrs) {
        Ok(f) => Arc::new(f.every(Duration::from_secs(config.tiebreak_interval_secs))),
        Err(e) => {
            tracing::error!(error = %e,
                "disputed cross-checks will wait: set tiebreak_interval_secs = 0 to send them to nodes");
            return None;
        }
    };
    let state = state.clone();
    spawn_every(config.tiebreak_interval_secs, "tie-break pass", move || {
        let (fetcher, state) = (fetcher.clone(), state.clone());
        async move {
            let clock = state.inner.clock.clone();
            let delay = state.inner.config.domain_delay_ms;
            fetcher
                .run_pending(&state.inner.store, || clock.now_ms(), delay)
                .await
        }
    })
}

/// Gives up the check and tie-break jobs no node took within `check_wait_secs` (0: never;
/// `Store::give_up_unclaimed_jobs`), looking every tenth of that wait, at least every second and
/// at most every minute, and counts them (`gleaner_check_jobs_given_up_total`).
fn spawn_unclaimed_timer(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    let config = &state.inner.config;
    let wait_secs = config.check_wait_secs;
    if wait_secs == 0 {
        return None;
    }
    let wait_ms = crate::clock::secs_to_ms(wait_secs);
    let validator_fetches = config.validator_fetches();
    let judging = config.judging_rules();
    let state = state.clone();
    spawn_every(
        (wait_secs / 10).clamp(1, 60),
        "unclaimed-check pass",
        move || {
            let (store, now) = (state.inner.store.clone(), state.inner.clock.now_ms());
            let state = state.clone();
            async move {
                let n = tokio::task::spawn_blocking(move || {
                    store.give_up_unclaimed_jobs(now, wait_ms, validator_fetches, judging)
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
                state.inner.metrics.add(
                    "gleaner_check_jobs_given_up_total",
                    "",
                    u64::try_from(n).unwrap_or(0),
                );
                Ok::<_, String>(n)
            }
        },
    )
}

/// Serves `app(state)` on `listener` until `shutdown` resolves, then finishes in-flight requests.
/// Also closes epochs on a timer when `epoch_interval_secs` is set.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let interval = state.inner.config.epoch_interval_secs;
    let timer = (interval > 0).then(|| {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(interval));
            tick.tick().await;
            loop {
                tick.tick().await;
                match state.close_epoch().await {
                    Ok(root) => tracing::info!(epoch = root.epoch, "epoch closed by timer"),
                    Err(e) => tracing::error!(error = %e, "epoch timer failed"),
                }
            }
        })
    });
    let sitemaps = spawn_sitemap_timer(&state);
    let tiebreaks = spawn_tiebreak_timer(&state);
    let unclaimed = spawn_unclaimed_timer(&state);
    // The near-duplicate index is built from the store before the first request, not by it, and
    // so are the checks' tables.
    let store = state.inner.store.clone();
    let started = std::time::Instant::now();
    if let Err(e) = tokio::task::spawn_blocking(crate::ingest::warm_up).await {
        tracing::error!(error = %e, "loading the checks' tables failed");
    }
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "checks' tables loaded"
    );
    match tokio::task::spawn_blocking(move || store.load_band_index()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot build the band index; the first ingest will try again");
        }
        Err(e) => tracing::error!(error = %e, "building the band index failed"),
    }
    tracing::info!(addr = ?listener.local_addr().ok(), validator = %state.inner.identity.public(), "validator listening");
    let res = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    if let Some(t) = timer {
        t.abort();
    }
    for t in [sitemaps, tiebreaks, unclaimed].into_iter().flatten() {
        t.abort();
    }
    tracing::info!("validator stopped");
    res
}

/// A running server: its address, and a way to stop it. Dropping the handle stops the server.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, waits for in-flight requests, and returns the server's result.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(t) => t.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts [`run`] on a task.
pub fn spawn(listener: TcpListener, state: AppState) -> std::io::Result<ServerHandle> {
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run(listener, state, async move {
        let _ = rx.await;
    }));
    Ok(ServerHandle {
        addr,
        stop: Some(tx),
        task: Some(task),
    })
}
