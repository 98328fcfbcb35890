//! The node: leases jobs from validators, fetches each page safely and politely, cleans, signs and
//! stores it, batches and submits, and reports failures. [`Node`] is a cheap cloneable handle; the
//! CLI and the desktop app drive it with [`Node::run`] and the control methods.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use gleaner_protocol::api::{Job, JobFailure, NodeStatus};
use gleaner_protocol::{
    Digest, MAX_SHORT_FIELD_BYTES, MAX_TEXT_BYTES, MAX_TITLE_BYTES, MAX_URL_BYTES, OUTLINKS_READ,
    PublicKey, Record, RecordDraft, RobotsVerdict, SecretKey,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use url::Url;

use crate::activity::{ActivityEntry, ActivityKind, ActivityQuery, ExportFormat};
use crate::config::{ConfigError, NodeConfig};
use crate::fetch::{FetchConfig, FetchError, FetchHooks, Fetcher, HopEvent, Purpose};
use crate::governor::{Cap, Gate, Governor, day_of};
use crate::identity::KeyError;
use crate::policy::{AddressPolicy, Resolver};
use crate::politeness::Politeness;
use crate::robots::{RobotsCache, RobotsDecision};
use crate::store::{RevokedRecord, Store, StoreError};
use crate::submit::{SubmitError, ValidatorClient, backoff};
use crate::util::{cut, now_ms, registered_domain};

/// Longest a job waits for its domain's politeness slot before its lease is given back.
pub const MAX_POLITENESS_WAIT: Duration = Duration::from_secs(60);
/// How long in-flight fetches may finish after a shutdown request before they are abandoned
/// (and their leases released).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long the final flush (batch and submit) may take at shutdown.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(20);
/// Interval between submitter rounds.
const SUBMIT_TICK: Duration = Duration::from_millis(500);
/// Interval between refreshes of the node's standing (`GET /v1/nodes/me`).
const STANDING_REFRESH: Duration = Duration::from_secs(60);
/// Most entries asked for in one page of a validator's revocation log, and most pages read at
/// one standing refresh (the rest wait for the next).
const REVOCATION_PAGE: u32 = 500;
const MAX_REVOCATION_PAGES: usize = 4;
/// Most revocation log entries kept of one validator: far more than an honest one sends a node,
/// and a bound on the store when a hostile one lists records without end.
const MAX_KEPT_REVOCATIONS: u64 = 100_000;
/// Bounds on how long to wait before asking a validator with no jobs again.
const LEASE_RETRY_MIN: Duration = Duration::from_millis(200);
const LEASE_RETRY_MAX: Duration = Duration::from_secs(60);
/// Longest failure detail sent to a validator.
const MAX_DETAIL_CHARS: usize = 500;
/// Batch size limit when the validator does not say (matches the protocol's decode default).
const DEFAULT_MAX_BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// Errors of the node as a whole (single jobs fail with [`FetchError`] and are reported).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot create data directory {path}: {why}")]
    DataDir { path: String, why: String },
    #[error("setup failed: {0}")]
    Setup(String),
    #[error("no validator configured")]
    NoValidators,
    #[error(transparent)]
    Validator(#[from] SubmitError),
}

impl NodeError {
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::Config(e) => e.code(),
            NodeError::Store(e) => e.code(),
            NodeError::Key(e) => e.code(),
            NodeError::DataDir { .. } => "data_dir",
            NodeError::Setup(_) => "setup",
            NodeError::NoValidators => "no_validators",
            NodeError::Validator(e) => e.code(),
        }
    }
}

/// What the node is doing, for the tray icon and `gleaner status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum NodeState {
    /// Not running.
    Stopped,
    /// Fetching pages.
    Sharing,
    /// Running, but no validator has jobs right now.
    Waiting,
    Paused {
        until_ms: Option<i64>,
    },
    Capped {
        cap: Cap,
    },
    OutsideSchedule,
    WaitingForIdle,
    Metered,
    /// No validator reachable.
    Offline,
    Error {
        message: String,
    },
}

/// Things that happened, for the app's dashboard (via [`Node::subscribe`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum NodeEvent {
    Fetched {
        url: String,
        record_id: String,
        wire_bytes: u64,
    },
    Failed {
        url: String,
        reason: String,
        detail: String,
    },
    Batched {
        batch_id: String,
        records: u32,
    },
    Receipted {
        batch_id: String,
        accepted: u32,
        points: u64,
    },
    StateChanged {
        state: NodeState,
    },
    ValidatorUnreachable {
        validator: String,
        error: String,
    },
    /// A validator revoked records it had accepted from this node (a failed cross-check, a page
    /// found gone): `points` of theirs were taken back.
    Revoked {
        validator: String,
        records: u64,
        points: u64,
    },
}

/// Options of one [`Node::run`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Stop after this many records were stored.
    pub max_pages: Option<u64>,
    /// Stop when no validator has jobs and everything was submitted.
    pub exit_when_idle: bool,
}

/// What one run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub pages: u64,
    pub failures: u64,
    pub released: u64,
}

/// Health of one validator, as seen by this node. What the validator reported (its key, the
/// standing, the claim, when it last answered) is saved in the node's store and shown by the
/// next run and by `gleaner status` until it is refreshed; the connection state is this run's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ValidatorHealth {
    pub url: String,
    pub validator_key: Option<String>,
    pub registered: bool,
    pub reachable: bool,
    pub last_ok_ms: Option<i64>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    /// From the validator's last `GET /v1/nodes/me`.
    pub standing: Option<NodeStatus>,
    /// The node's claim in the validator's newest closed epoch, checked against its signed root
    /// ([`crate::rewards`]); checked again once a newer epoch closes. `None` before the first
    /// close, or when the check failed (`claim_error`).
    pub claim: Option<crate::rewards::Claim>,
    /// Why the last claim check failed, `code: message`, when the validator published something
    /// that does not verify.
    pub claim_error: Option<String>,
    /// The open epoch the claim was last checked under (a newer one means a newer close) and
    /// the payout key it was checked for.
    #[serde(skip)]
    pub claim_checked_in: Option<(u64, PublicKey)>,
    /// The revoked count (`standing.records_revoked`) at which the validator refused to list
    /// its revocation log for good (an older validator): asked again only once it grows.
    #[serde(skip)]
    pub revocations_refused_at: Option<u64>,
}

/// Bandwidth figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BandwidthStats {
    pub now_bytes_per_sec: u64,
    pub today_bytes: u64,
    pub month_bytes: u64,
    pub ceiling_bytes_per_sec: Option<u64>,
    pub daily_cap: Option<u64>,
    pub monthly_cap: Option<u64>,
}

/// Page outcomes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PageStats {
    /// Records stored (all states).
    pub fetched: u64,
    pub accepted: u64,
    pub duplicate: u64,
    pub rejected: u64,
    /// Accepted, then revoked by a validator (its points taken back): per validator, the larger
    /// of what it last reported (`GET /v1/nodes/me`) and the entries of its revocation log this
    /// node keeps ([`Node::revoked`] lists those). Counted among `accepted` too, which is what
    /// the receipts said.
    pub revoked: u64,
    /// Jobs that ended without a record.
    pub failed: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub failed_by_reason: BTreeMap<String, u64>,
}

/// Queue by state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueueStats {
    pub fetched: u64,
    pub batched: u64,
    pub submitted: u64,
    pub receipted: u64,
}

/// Points.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PointsStats {
    /// Sum of verified receipts.
    pub credited: u64,
    /// Of `credited`, the points of records revoked since (from the validators' revocation
    /// logs): what the validators stand by is `credited - taken_back`.
    pub taken_back: u64,
    /// Records sent or queued without a receipt yet.
    pub pending_records: u64,
    /// As reported by validators (`/v1/nodes/me`), summed.
    pub validator_total: u64,
    pub validator_pending: u64,
}

/// Everything the dashboard shows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub node: String,
    pub bandwidth: BandwidthStats,
    pub pages: PageStats,
    pub queue: QueueStats,
    pub points: PointsStats,
    /// Body bytes downloaded for stored records, and compressed batch bytes uploaded.
    pub download_bytes: u64,
    pub upload_bytes: u64,
    pub validators: Vec<ValidatorHealth>,
}

struct Validator {
    url: String,
    client: ValidatorClient,
    registered: AtomicBool,
    health: Mutex<ValidatorHealth>,
    max_batch_records: AtomicU64,
    max_batch_bytes: AtomicU64,
}

#[derive(Default)]
struct RunFlags {
    running: bool,
    waiting: bool,
    error: Option<String>,
    last_state: Option<NodeState>,
}

struct Inner {
    config: RwLock<NodeConfig>,
    key: SecretKey,
    store: Store,
    fetcher: RwLock<Fetcher>,
    resolver: Option<Arc<dyn Resolver>>,
    robots: RobotsCache,
    politeness: Politeness,
    governor: Governor,
    events: broadcast::Sender<NodeEvent>,
    validators: Vec<Validator>,
    flags: Mutex<RunFlags>,
    flush: Notify,
}

/// The node handle. Cheap to clone; all methods take `&self`.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("key", &self.inner.key.public())
            .finish_non_exhaustive()
    }
}

fn fetch_config(cfg: &NodeConfig, resolver: &Option<Arc<dyn Resolver>>) -> FetchConfig {
    let mut policy = AddressPolicy::new(&cfg.allow_addrs, &cfg.blocklist);
    if let Some(r) = resolver {
        policy = policy.with_resolver(r.clone());
    }
    FetchConfig {
        policy,
        max_body_bytes: cfg.max_body_bytes,
        connect_timeout: Duration::from_millis(cfg.connect_timeout_ms),
        total_timeout: Duration::from_millis(cfg.total_timeout_ms),
        ..FetchConfig::default()
    }
}

/// First day (see [`day_of`]) of the month containing `now_ms`.
fn month_start_day(now_ms: i64) -> i64 {
    match time::OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000)) {
        Ok(t) => day_of(now_ms) - i64::from(t.day()) + 1,
        Err(_) => day_of(now_ms),
    }
}

/// What an earlier run last saw of each validator, by URL: the facts the validator reported
/// (its key, the node's standing, the checked claim, when it last answered). The live connection
/// state (reachable, registered, the last error) starts afresh; an unreadable entry is skipped.
fn remembered_health(store: &Store) -> HashMap<String, ValidatorHealth> {
    let rows = store.validator_health().unwrap_or_else(|e| {
        tracing::warn!(cause = %e, "reading the validators' last health failed");
        Vec::new()
    });
    rows.into_iter()
        .filter_map(|(url, json)| {
            let seen: ValidatorHealth = serde_json::from_str(&json)
                .inspect_err(
                    |e| tracing::warn!(validator = %url, cause = %e, "unreadable saved health"),
                )
                .ok()?;
            let kept = ValidatorHealth {
                url: url.clone(),
                validator_key: seen.validator_key,
                last_ok_ms: seen.last_ok_ms,
                standing: seen.standing,
                claim: seen.claim,
                claim_error: seen.claim_error,
                ..ValidatorHealth::default()
            };
            Some((url, kept))
        })
        .collect()
}

impl Node {
    /// Opens the node's state in `config.data_dir` (creating the directory, the identity key and
    /// the database on first use). Does not contact any validator.
    pub fn open(config: NodeConfig) -> Result<Node, NodeError> {
        Node::open_with_resolver(config, None)
    }

    /// Like [`Node::open`] with a custom DNS resolver (tests map names to chosen addresses).
    pub fn open_with_resolver(
        config: NodeConfig,
        resolver: Option<Arc<dyn Resolver>>,
    ) -> Result<Node, NodeError> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|e| NodeError::DataDir {
            path: config.data_dir.display().to_string(),
            why: e.to_string(),
        })?;
        let key = crate::identity::load_or_create(&config.data_dir)?;
        let store = Store::open(&config.data_dir.join("node.sqlite"))?;
        let now = now_ms();
        let today = store.usage(day_of(now), day_of(now))?;
        let month = store.usage(month_start_day(now), day_of(now))?;
        let retention_ms = i64::from(config.activity_retention_days) * 86_400_000;
        store.prune_activity(now - retention_ms)?;
        let governor = Governor::new(config.limits.clone(), now, today, month);
        let fetcher = Fetcher::new(fetch_config(&config, &resolver))
            .map_err(|e| NodeError::Setup(e.to_string()))?;
        let mut remembered = remembered_health(&store);
        let mut validators = Vec::new();
        for url in &config.validators {
            validators.push(Validator {
                url: url.clone(),
                client: ValidatorClient::new(url, key.clone())?,
                registered: AtomicBool::new(false),
                health: Mutex::new(remembered.remove(url).unwrap_or_else(|| ValidatorHealth {
                    url: url.clone(),
                    ..ValidatorHealth::default()
                })),
                max_batch_records: AtomicU64::new(config.batch_max_records as u64),
                max_batch_bytes: AtomicU64::new(DEFAULT_MAX_BATCH_BYTES),
            });
        }
        let (events, _) = broadcast::channel(1024);
        Ok(Node {
            inner: Arc::new(Inner {
                politeness: Politeness::new(Duration::from_millis(config.min_domain_delay_ms)),
                config: RwLock::new(config),
                key,
                store,
                fetcher: RwLock::new(fetcher),
                resolver,
                robots: RobotsCache::new(),
                governor,
                events,
                validators,
                flags: Mutex::new(RunFlags::default()),
                flush: Notify::new(),
            }),
        })
    }

    /// Stores what this node now knows of each validator (see [`remembered_health`]).
    fn save_health(&self) {
        let seen: Vec<(String, String)> = self
            .inner
            .validators
            .iter()
            .filter_map(|v| {
                let h = v.health.lock().ok()?;
                Some((v.url.clone(), serde_json::to_string(&*h).ok()?))
            })
            .collect();
        if let Err(e) = self.inner.store.save_validator_health(&seen, now_ms()) {
            tracing::warn!(cause = %e, "saving the validators' health failed");
        }
    }

    /// The node's public key (its identity and default payout address).
    pub fn public_key(&self) -> PublicKey {
        self.inner.key.public()
    }

    /// The key rewards are paid to: the configured payout address, else the node's key.
    pub fn payout_key(&self) -> PublicKey {
        self.settings()
            .payout
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| self.public_key())
    }

    /// Checks this node's claim in `v`'s newest closed epoch, unless it was checked for the same
    /// payout key under the same open epoch already (no epoch has closed since). A validator that
    /// cannot be reached (or answers 5xx, 429) is tried again at the next refresh; one that refuses
    /// the question for good (4xx, e.g. an older validator without epochs) is asked again only
    /// after its next close; one whose answer does not verify is recorded as such.
    async fn refresh_claim(&self, v: &Validator, open_epoch: u64) {
        let payout = self.payout_key();
        let due = v
            .health
            .lock()
            .is_ok_and(|h| h.claim_checked_in != Some((open_epoch, payout)));
        if !due {
            return;
        }
        let checked = self.claims_of(v, &payout, 1).await;
        let Ok(mut h) = v.health.lock() else {
            return;
        };
        match checked {
            Ok(claims) => {
                h.claim = claims.claims.into_iter().next();
                h.claim_error = None;
            }
            Err(crate::rewards::ClaimError::Validator(e)) if e.is_transient() => {
                tracing::debug!(validator = %v.url, cause = %e, "claim check failed; will retry");
                return;
            }
            Err(crate::rewards::ClaimError::Validator(e)) => {
                // A refusal that asking again will not change, such as a validator older than
                // `GET /v1/epochs` (404): no claim to show, and no question until the next close.
                tracing::debug!(validator = %v.url, cause = %e, "validator publishes no claims");
                h.claim = None;
                h.claim_error = None;
            }
            Err(e) => {
                tracing::warn!(validator = %v.url, code = e.code(), cause = %e, "claim does not verify");
                h.claim = None;
                h.claim_error = Some(format!("{}: {e}", e.code()));
            }
        }
        h.claim_checked_in = Some((open_epoch, payout));
    }

    /// Reads the new entries of `v`'s revocation log for this node, when the validator says it
    /// revoked more of the node's records (`reported`) than the store keeps. Only entries for this
    /// node, signed by the validator's key, past the stored cursor and in increasing order, are
    /// kept; whatever else a validator sends is skipped. A validator that cannot be reached is
    /// asked at the next refresh; one that refuses for good (older, without the log) only once
    /// its count grows.
    async fn refresh_revocations(&self, v: &Validator, reported: u64) -> Result<(), NodeError> {
        let store = &self.inner.store;
        let kept = store.revoked_totals()?.get(&v.url).map_or(0, |t| t.records);
        if reported <= kept
            || kept >= MAX_KEPT_REVOCATIONS
            || v.health
                .lock()
                .is_ok_and(|h| h.revocations_refused_at == Some(reported))
        {
            return Ok(());
        }
        let Some(validator) = v.client.validator_key() else {
            return Ok(()); // not registered yet: nothing to check the entries' signatures by
        };
        let me = self.public_key();
        let mut after = store.revocation_cursor(&v.url)?;
        let mut new = Vec::new();
        for _ in 0..MAX_REVOCATION_PAGES {
            let page = match v.client.revocations(&me, after, REVOCATION_PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::debug!(validator = %v.url, cause = %e, "revocation log not read");
                    if !e.is_transient()
                        && let Ok(mut h) = v.health.lock()
                    {
                        h.revocations_refused_at = Some(reported);
                    }
                    break;
                }
            };
            let mut last = after;
            let mine: Vec<_> = page
                .iter()
                .filter(|r| {
                    let next = r.seq > last;
                    last = last.max(r.seq);
                    next && r.node == me && r.validator == validator && r.verify().is_ok()
                })
                .cloned()
                .collect();
            if last == after {
                break; // nothing past the cursor: the end of the log, or a log going backwards
            }
            new.extend(store.add_revocations(
                &v.url,
                &mine,
                last,
                MAX_KEPT_REVOCATIONS,
                now_ms(),
            )?);
            after = last;
            if page.len() < REVOCATION_PAGE as usize {
                break;
            }
        }
        if !new.is_empty() {
            let points = new.iter().fold(0u64, |p, r| p.saturating_add(r.points));
            tracing::warn!(validator = %v.url, records = new.len(), points, "records revoked");
            self.emit(NodeEvent::Revoked {
                validator: v.url.clone(),
                records: new.len() as u64,
                points,
            });
        }
        Ok(())
    }

    /// What became of the newest record of each of `urls` (pages fetched on this connection):
    /// queued, the receipt's verdict, or revoked since. URLs without a record are absent.
    pub fn page_outcomes(
        &self,
        urls: &[&str],
    ) -> Result<HashMap<String, crate::store::PageOutcome>, NodeError> {
        Ok(self.inner.store.page_outcomes(urls)?)
    }

    /// [`Node::page_outcomes`] for the pages these activity entries fetched
    /// ([`ActivityEntry::fetched_page`]).
    pub fn outcomes_of(
        &self,
        entries: &[ActivityEntry],
    ) -> Result<HashMap<String, crate::store::PageOutcome>, NodeError> {
        let mut urls: Vec<&str> = entries
            .iter()
            .filter_map(ActivityEntry::fetched_url)
            .collect();
        urls.sort_unstable();
        urls.dedup();
        self.page_outcomes(&urls)
    }

    /// This node's records that validators revoked after accepting them, newest first, at most
    /// `max` (as kept from their revocation logs at each standing refresh).
    pub fn revoked(&self, max: usize) -> Result<Vec<RevokedRecord>, NodeError> {
        Ok(self.inner.store.revoked_records(max)?)
    }

    /// Each configured validator's reward claims for [`Node::payout_key`] in its `last` newest
    /// closed epochs, checked ([`crate::rewards::check_claims`]) against the validator key this
    /// node's stored receipts from it carry, if it has any. In configuration order.
    pub async fn check_claims(
        &self,
        last: usize,
    ) -> Vec<(
        String,
        Result<crate::rewards::Claims, crate::rewards::ClaimError>,
    )> {
        let payout = self.payout_key();
        let mut out = Vec::with_capacity(self.inner.validators.len());
        for v in &self.inner.validators {
            out.push((v.url.clone(), self.claims_of(v, &payout, last).await));
        }
        out
    }

    /// `payout`'s claims in `v`'s `last` newest closed epochs, checked against the validator
    /// key on this node's newest stored receipt from `v`, if it has one.
    async fn claims_of(
        &self,
        v: &Validator,
        payout: &PublicKey,
        last: usize,
    ) -> Result<crate::rewards::Claims, crate::rewards::ClaimError> {
        let expected = match self.inner.store.receipt_validator(&v.url) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(validator = %v.url, cause = %e, "reading the receipts' key");
                None
            }
        };
        crate::rewards::check_claims(&v.client, payout, expected, last).await
    }

    /// The secret key's 32-byte seed as hex, for backups. Whoever has it can sign as this node.
    pub fn export_key(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(hex::encode(self.inner.key.to_bytes()))
    }

    /// The underlying store (for tools and tests).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Subscribes to node events.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
    }

    fn emit(&self, e: NodeEvent) {
        let _ = self.inner.events.send(e);
    }

    /// Pauses sharing until [`Node::resume`].
    pub fn pause(&self) {
        self.inner.governor.pause();
        self.refresh_state();
    }

    /// Pauses sharing for `d`.
    pub fn pause_for(&self, d: Duration) {
        self.inner.governor.pause_for(d, now_ms());
        self.refresh_state();
    }

    pub fn resume(&self) {
        self.inner.governor.resume();
        self.refresh_state();
    }

    /// The app reports whether the computer is idle (used with `limits.only_when_idle`).
    pub fn set_idle(&self, idle: bool) {
        self.inner.governor.set_idle(idle);
        self.refresh_state();
    }

    /// The app reports whether the network is metered (used with `limits.pause_on_metered`).
    pub fn set_metered(&self, metered: bool) {
        self.inner.governor.set_metered(metered);
        self.refresh_state();
    }

    /// The current settings.
    pub fn settings(&self) -> NodeConfig {
        self.inner
            .config
            .read()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// Applies new settings: limits, schedule, blocklist, allowed addresses, batch size, caps
    /// and time-outs take effect at once. `validators`, `data_dir`, `concurrency` and
    /// `min_domain_delay_ms` take effect at the next start. The caller persists the config.
    pub fn update_settings(&self, new: NodeConfig) -> Result<(), NodeError> {
        new.validate()?;
        self.inner.governor.set_limits(new.limits.clone());
        if let Ok(mut f) = self.inner.fetcher.write() {
            *f = f.with_config(fetch_config(&new, &self.inner.resolver));
        }
        if let Ok(mut c) = self.inner.config.write() {
            *c = new;
        }
        self.refresh_state();
        Ok(())
    }

    fn fetcher(&self) -> Fetcher {
        match self.inner.fetcher.read() {
            Ok(f) => f.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The node's state now.
    pub fn status(&self) -> NodeState {
        let (running, waiting, error) = self
            .inner
            .flags
            .lock()
            .map(|f| (f.running, f.waiting, f.error.clone()))
            .unwrap_or((false, false, None));
        if let Some(message) = error {
            return NodeState::Error { message };
        }
        match self.inner.governor.gate(now_ms()) {
            Gate::Open => {}
            Gate::Paused { until_ms } => return NodeState::Paused { until_ms },
            Gate::Capped { cap } => return NodeState::Capped { cap },
            Gate::OutsideSchedule => return NodeState::OutsideSchedule,
            Gate::WaitingForIdle => return NodeState::WaitingForIdle,
            Gate::Metered => return NodeState::Metered,
        }
        if !running {
            return NodeState::Stopped;
        }
        let all_down = !self.inner.validators.is_empty()
            && self.inner.validators.iter().all(|v| {
                v.health
                    .lock()
                    .map(|h| h.consecutive_failures > 0)
                    .unwrap_or(false)
            });
        if all_down {
            NodeState::Offline
        } else if waiting {
            NodeState::Waiting
        } else {
            NodeState::Sharing
        }
    }

    fn refresh_state(&self) {
        let state = self.status();
        let changed = self
            .inner
            .flags
            .lock()
            .map(|mut f| {
                let changed = f.last_state.as_ref() != Some(&state);
                f.last_state = Some(state.clone());
                changed
            })
            .unwrap_or(false);
        if changed {
            self.emit(NodeEvent::StateChanged { state });
        }
    }

    fn set_flags(&self, f: impl FnOnce(&mut RunFlags)) {
        if let Ok(mut g) = self.inner.flags.lock() {
            f(&mut g);
        }
        self.refresh_state();
    }

    /// Dashboard figures.
    pub fn stats(&self) -> Result<Stats, NodeError> {
        let now = now_ms();
        let c = self.inner.store.counts()?;
        let limits = self.inner.governor.limits();
        let (today, month) = self.inner.governor.used(now);
        let validators: Vec<ValidatorHealth> = self
            .inner
            .validators
            .iter()
            .filter_map(|v| v.health.lock().ok().map(|h| h.clone()))
            .collect();
        // Saturating: these are validators' numbers, and a hostile one may send any.
        let (vt, vp) = validators.iter().filter_map(|h| h.standing.as_ref()).fold(
            (0u64, 0u64),
            |(t, p), s| {
                (
                    t.saturating_add(s.points_total),
                    p.saturating_add(s.points_pending),
                )
            },
        );
        let kept = self.inner.store.revoked_totals()?;
        let revoked = validators.iter().fold(0u64, |sum, h| {
            let listed = kept.get(&h.url).map_or(0, |t| t.records);
            let reported = h.standing.as_ref().map_or(0, |s| s.records_revoked);
            sum.saturating_add(listed.max(reported))
        });
        let taken_back = kept
            .values()
            .fold(0u64, |sum, t| sum.saturating_add(t.points));
        Ok(Stats {
            node: self.public_key().to_string(),
            bandwidth: BandwidthStats {
                now_bytes_per_sec: self.inner.governor.rate_now(),
                today_bytes: today,
                month_bytes: month,
                ceiling_bytes_per_sec: limits.bandwidth_bytes_per_sec,
                daily_cap: limits.daily_bytes,
                monthly_cap: limits.monthly_bytes,
            },
            pages: PageStats {
                fetched: c.fetched + c.batched + c.submitted + c.receipted,
                accepted: c.accepted,
                duplicate: c.duplicate,
                rejected: c.rejected,
                revoked,
                failed: c.failures_by_reason.iter().map(|(_, n)| n).sum(),
                rejected_by_reason: c.rejected_by_reason.into_iter().collect(),
                failed_by_reason: c.failures_by_reason.into_iter().collect(),
            },
            queue: QueueStats {
                fetched: c.fetched,
                batched: c.batched,
                submitted: c.submitted,
                receipted: c.receipted,
            },
            points: PointsStats {
                credited: c.points,
                taken_back,
                pending_records: c.fetched + c.batched + c.submitted,
                validator_total: vt,
                validator_pending: vp,
            },
            download_bytes: c.wire_bytes,
            upload_bytes: c.upload_bytes,
            validators,
        })
    }

    /// Queries the activity log (newest first).
    pub fn activity(&self, query: &ActivityQuery) -> Result<Vec<ActivityEntry>, NodeError> {
        Ok(self.inner.store.activity(query)?)
    }

    /// Writes the matching activity as JSON Lines or CSV.
    pub fn export_activity(
        &self,
        query: &ActivityQuery,
        format: ExportFormat,
        out: &mut dyn std::io::Write,
    ) -> Result<(), NodeError> {
        let mut q = query.clone();
        if q.limit.is_none() {
            q.limit = Some(1_000_000);
        }
        let entries = self.inner.store.activity(&q)?;
        let outcomes = self.outcomes_of(&entries)?;
        crate::activity::write_entries(&entries, &outcomes, format, out)
            .map_err(|e| NodeError::Setup(format!("export: {e}")))
    }

    /// Runs the whole pipeline on one URL without a validator (lease id `local`): policy,
    /// robots.txt, fetch, clean, hash, sign. Nothing is stored except the activity log.
    pub async fn fetch_one(&self, url: &str) -> Result<Record, FetchError> {
        self.process(url, "local", true).await
    }

    /// The pipeline for one job. Without `follow_links` ([`Job::follow_links`]: the validator
    /// will not follow them) the record carries no outlinks.
    async fn process(
        &self,
        url: &str,
        lease_id: &str,
        follow_links: bool,
    ) -> Result<Record, FetchError> {
        let fetcher = self.fetcher();
        let hooks = NodeHooks {
            node: self.clone(),
            fetcher: fetcher.clone(),
            decision: Mutex::new(None),
        };
        let result = fetcher.fetch_with(url, Purpose::Page, &hooks).await;
        let domain = Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(registered_domain))
            .unwrap_or_default();
        let fetched = match result {
            Ok(f) => {
                self.inner.politeness.outcome(&domain, true);
                f
            }
            Err(e) => {
                match &e {
                    FetchError::Http {
                        retry_after: Some(wait),
                        ..
                    } => self.inner.politeness.retry_after(&domain, *wait),
                    // A missing page (404, 410, …) says nothing about the host's health; only
                    // server errors, time-outs and network failures make the node back off.
                    FetchError::Http { status, .. } if *status < 500 => {
                        self.inner.politeness.outcome(&domain, true)
                    }
                    FetchError::Http { .. }
                    | FetchError::Timeout { .. }
                    | FetchError::Network { .. } => self.inner.politeness.outcome(&domain, false),
                    FetchError::RobotsDisallowed { .. }
                    | FetchError::RobotsUnreachable { .. }
                    | FetchError::Busy { .. } => {
                        self.log(&[ActivityEntry {
                            at_ms: now_ms(),
                            kind: ActivityKind::Refused,
                            url: cut(url, 2048).to_string(),
                            domain: domain.clone(),
                            status: None,
                            bytes: 0,
                            verdict: e.code().to_string(),
                            detail: e.to_string(),
                        }]);
                    }
                    _ => {}
                }
                return Err(e);
            }
        };
        if fetched.x_robots.noindex {
            return Err(FetchError::NoIndex {
                url: url.to_string(),
                source_of: "X-Robots-Tag",
            });
        }
        let decision = hooks
            .decision
            .lock()
            .ok()
            .and_then(|d| *d)
            .unwrap_or(RobotsDecision {
                verdict: RobotsVerdict::Unavailable,
                crawl_delay: None,
            });
        let final_url = fetched.final_url.clone();
        let (fetched, cleaned) = tokio::task::spawn_blocking(move || {
            let cleaned = crate::clean::clean(&fetched.text, Some(&fetched.final_url));
            (fetched, cleaned)
        })
        .await
        .map_err(|e| FetchError::Other {
            url: url.to_string(),
            what: format!("cleaner crashed: {e}"),
        })?;
        if cleaned.robots.noindex {
            return Err(FetchError::NoIndex {
                url: url.to_string(),
                source_of: "meta robots",
            });
        }
        let outlinks = if !follow_links || cleaned.robots.nofollow || fetched.x_robots.nofollow {
            Vec::new()
        } else {
            outlinks_to_send(cleaned.outlinks)
        };
        let single_line = |s: &str, max: usize| -> String {
            let s: String = s
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            cut(s.trim(), max).to_string()
        };
        let draft = RecordDraft {
            lease_id: single_line(lease_id, MAX_SHORT_FIELD_BYTES),
            url: url.to_string(),
            final_url,
            fetched_at_ms: fetched.fetched_at_ms,
            status: fetched.status,
            content_type: single_line(&fetched.content_type, MAX_SHORT_FIELD_BYTES),
            charset: single_line(&fetched.charset, MAX_SHORT_FIELD_BYTES),
            wire_bytes: fetched.wire_bytes,
            body_bytes: fetched.body.len() as u64,
            truncated: fetched.truncated,
            raw_digest: Digest::of(&fetched.body),
            title: single_line(&cleaned.title, MAX_TITLE_BYTES),
            text: cut(&cleaned.text, MAX_TEXT_BYTES).to_string(),
            lang: single_line(&cleaned.lang, 16),
            robots: decision.verdict,
            crawl_delay_ms: decision
                .crawl_delay
                .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX))
                .unwrap_or(0),
            outlinks,
        };
        let record = draft.sign(&self.inner.key);
        record.check_fields().map_err(|e| FetchError::Other {
            url: url.to_string(),
            what: format!("record invalid: {e}"),
        })?;
        Ok(record)
    }

    fn log(&self, entries: &[ActivityEntry]) {
        if let Err(e) = self.inner.store.log_activity(entries) {
            tracing::warn!(cause = %e, "activity log write failed");
        }
    }

    fn health_ok(&self, v: &Validator) {
        if let Ok(mut h) = v.health.lock() {
            h.reachable = true;
            h.last_ok_ms = Some(now_ms());
            h.consecutive_failures = 0;
            h.last_error = None;
        }
    }

    fn health_err(&self, v: &Validator, e: &SubmitError) {
        let first = v
            .health
            .lock()
            .map(|mut h| {
                h.reachable = !matches!(e, SubmitError::Unreachable { .. });
                h.consecutive_failures += 1;
                h.last_error = Some(e.to_string());
                h.consecutive_failures == 1
            })
            .unwrap_or(false);
        if first {
            tracing::warn!(validator = %v.url, cause = %e, "validator call failed");
            self.emit(NodeEvent::ValidatorUnreachable {
                validator: v.url.clone(),
                error: e.to_string(),
            });
        }
    }

    async fn ensure_registered(&self, v: &Validator) -> Result<(), SubmitError> {
        if v.registered.load(Ordering::Acquire) {
            return Ok(());
        }
        let info = v.client.info().await?;
        let cfg_records = self.settings().batch_max_records as u64;
        v.max_batch_records.store(
            cfg_records.min(u64::from(info.max_batch_records.max(1))),
            Ordering::Release,
        );
        v.max_batch_bytes
            .store(info.max_batch_bytes.max(64 * 1024), Ordering::Release);
        v.client.register(self.payout_key()).await?;
        v.registered.store(true, Ordering::Release);
        if let Ok(mut h) = v.health.lock() {
            h.registered = true;
            h.validator_key = Some(info.validator.to_string());
        }
        Ok(())
    }

    /// Releases leases left open by a previous run that crashed.
    async fn recover_leases(&self) {
        let Ok(open) = self.inner.store.open_leases() else {
            return;
        };
        let mut by_validator: HashMap<String, Vec<String>> = HashMap::new();
        for (v, id) in open {
            by_validator.entry(v).or_default().push(id);
        }
        for (vurl, ids) in by_validator {
            if let Some(v) = self.inner.validators.iter().find(|v| v.url == vurl) {
                let _ = self.ensure_registered(v).await;
                if let Err(e) = v.client.release(ids.clone()).await {
                    tracing::info!(cause = %e, "could not release stale leases; they will expire");
                }
            }
            let _ = self.inner.store.drop_leases(&vurl, &ids);
        }
    }

    async fn release(&self, vi: usize, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let Some(v) = self.inner.validators.get(vi) else {
            return;
        };
        match v.client.release(ids.clone()).await {
            Ok(_) => self.health_ok(v),
            Err(e) => self.health_err(v, &e),
        }
        let _ = self.inner.store.drop_leases(&v.url, &ids);
    }

    /// One job, start to end: process, then store the record or queue the failure.
    async fn run_job(self, vi: usize, job: Job) -> JobOutcome {
        let Some(v) = self.inner.validators.get(vi) else {
            return JobOutcome::Released;
        };
        if job.expires_at_ms <= now_ms() {
            let _ = self
                .inner
                .store
                .drop_leases(&v.url, std::slice::from_ref(&job.lease_id));
            return JobOutcome::Released;
        }
        match self
            .process(&job.url, &job.lease_id, job.follow_links)
            .await
        {
            Ok(record) => match self.inner.store.insert_record(&v.url, &record) {
                Ok(_) => {
                    self.emit(NodeEvent::Fetched {
                        url: record.url.clone(),
                        record_id: record.id().to_string(),
                        wire_bytes: record.wire_bytes,
                    });
                    JobOutcome::Record
                }
                Err(e) => {
                    tracing::error!(cause = %e, "storing a record failed");
                    self.set_flags(|f| f.error = Some(format!("storage: {e}")));
                    JobOutcome::Released
                }
            },
            Err(FetchError::Busy { .. }) => {
                self.release(vi, vec![job.lease_id]).await;
                JobOutcome::Released
            }
            Err(e) => {
                let failure = JobFailure {
                    lease_id: job.lease_id.clone(),
                    reason: e.reason(),
                    detail: e.to_string().chars().take(MAX_DETAIL_CHARS).collect(),
                    status: e.status(),
                    crawl_delay_ms: None,
                };
                if let Err(se) =
                    self.inner
                        .store
                        .insert_failure(&v.url, &job.url, &failure, now_ms())
                {
                    tracing::error!(cause = %se, "storing a failure failed");
                }
                self.emit(NodeEvent::Failed {
                    url: job.url.clone(),
                    reason: e.reason().code().to_string(),
                    detail: failure.detail,
                });
                JobOutcome::Failed
            }
        }
    }

    /// Runs until `shutdown` resolves (or the run options say stop): leases jobs, fetches,
    /// stores, batches and submits. On shutdown: stops leasing, releases unstarted leases, lets
    /// in-flight fetches finish for [`SHUTDOWN_GRACE`], then batches and submits what is left
    /// (for at most [`FLUSH_TIMEOUT`]). Whatever is not sent stays queued for the next run.
    pub async fn run(
        &self,
        opts: RunOptions,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<RunSummary, NodeError> {
        if self.inner.validators.is_empty() {
            return Err(NodeError::NoValidators);
        }
        self.set_flags(|f| {
            f.running = true;
            f.error = None;
        });
        self.recover_leases().await;
        let (stop_tx, stop_rx) = watch::channel(false);
        let submitter = tokio::spawn(self.clone().submitter(stop_rx));
        let mut shutdown = std::pin::pin!(shutdown);
        let mut gov = self.inner.governor.watch();
        let mut summary = RunSummary::default();
        let mut queue: VecDeque<(usize, Job)> = VecDeque::new();
        let mut workers: JoinSet<(usize, String, JobOutcome)> = JoinSet::new();
        let mut in_flight: HashMap<tokio::task::Id, (usize, String)> = HashMap::new();
        let nv = self.inner.validators.len();
        let mut next_lease_at: Vec<Instant> = vec![Instant::now(); nv];
        let mut no_jobs: Vec<bool> = vec![false; nv];
        let mut failures: Vec<u32> = vec![0; nv];
        let mut rr = 0usize;

        loop {
            let concurrency = self.settings().concurrency.max(1);
            let gate = self.inner.governor.gate(now_ms());
            let stored = summary.pages;
            let limit_reached = opts
                .max_pages
                .is_some_and(|m| stored + workers.len() as u64 >= m);
            if gate != Gate::Open {
                // Give back jobs not started; in-flight ones finish.
                let mut by_v: HashMap<usize, Vec<String>> = HashMap::new();
                for (vi, job) in queue.drain(..) {
                    by_v.entry(vi).or_default().push(job.lease_id);
                }
                for (vi, ids) in by_v {
                    summary.released += ids.len() as u64;
                    self.release(vi, ids).await;
                }
            } else if queue.is_empty() && !limit_reached && workers.len() < concurrency {
                let now = Instant::now();
                if let Some(vi) = (0..nv)
                    .map(|k| (rr + k) % nv)
                    .find(|&vi| next_lease_at[vi] <= now)
                {
                    rr = vi + 1;
                    let v = &self.inner.validators[vi];
                    let want = (concurrency * 2) as u64;
                    let want = match opts.max_pages {
                        Some(m) => want.min(m.saturating_sub(stored + workers.len() as u64)),
                        None => want,
                    }
                    .max(1);
                    let res = match self.ensure_registered(v).await {
                        Ok(()) => v.client.lease(want as u32).await,
                        Err(e) => Err(e),
                    };
                    match res {
                        Ok(resp) if !resp.jobs.is_empty() => {
                            self.health_ok(v);
                            failures[vi] = 0;
                            no_jobs[vi] = false;
                            if let Err(e) = self.inner.store.add_leases(&v.url, &resp.jobs) {
                                tracing::error!(cause = %e, "storing leases failed");
                            }
                            queue.extend(resp.jobs.into_iter().map(|j| (vi, j)));
                        }
                        Ok(resp) => {
                            self.health_ok(v);
                            failures[vi] = 0;
                            // Idle only when the network has nothing left; otherwise the
                            // validator is pacing domains and more jobs will come.
                            no_jobs[vi] = resp.pending == 0;
                            let wait = Duration::from_millis(resp.retry_after_ms)
                                .clamp(LEASE_RETRY_MIN, LEASE_RETRY_MAX);
                            next_lease_at[vi] = Instant::now() + wait;
                            self.inner.flush.notify_one();
                        }
                        Err(e) => {
                            self.health_err(v, &e);
                            if matches!(
                                e,
                                SubmitError::Status {
                                    status: 401 | 403,
                                    ..
                                }
                            ) {
                                v.registered.store(false, Ordering::Release);
                            }
                            no_jobs[vi] = false;
                            next_lease_at[vi] = Instant::now() + backoff(failures[vi]);
                            failures[vi] = failures[vi].saturating_add(1);
                        }
                    }
                }
            }
            if gate == Gate::Open {
                while workers.len() < concurrency
                    && opts
                        .max_pages
                        .is_none_or(|m| summary.pages + (workers.len() as u64) < m)
                {
                    let Some((vi, job)) = queue.pop_front() else {
                        break;
                    };
                    let lease = job.lease_id.clone();
                    let handle = workers.spawn({
                        let node = self.clone();
                        async move {
                            let lease = job.lease_id.clone();
                            (vi, lease, node.run_job(vi, job).await)
                        }
                    });
                    in_flight.insert(handle.id(), (vi, lease));
                }
            }
            let waiting = queue.is_empty() && workers.is_empty() && no_jobs.iter().all(|b| *b);
            self.set_flags(|f| f.waiting = waiting);
            if opts.max_pages.is_some_and(|m| summary.pages >= m) && workers.is_empty() {
                break;
            }
            if opts.exit_when_idle && waiting && self.inner.store.queue_drained()? {
                break;
            }
            let next_lease = next_lease_at
                .iter()
                .min()
                .copied()
                .unwrap_or_else(Instant::now)
                .max(Instant::now() + Duration::from_millis(20));
            let tick = if gate == Gate::Open {
                next_lease.min(Instant::now() + Duration::from_secs(1))
            } else {
                Instant::now() + Duration::from_secs(1)
            };
            let can_lease_now = gate == Gate::Open
                && queue.is_empty()
                && workers.len() < concurrency
                && !limit_reached
                && next_lease_at.iter().any(|t| *t <= Instant::now());
            if can_lease_now {
                continue;
            }
            tokio::select! {
                _ = &mut shutdown => break,
                Some(res) = workers.join_next_with_id(), if !workers.is_empty() => {
                    self.handle_done(res, &mut in_flight, &mut summary);
                }
                _ = gov.changed() => {}
                _ = tokio::time::sleep_until(tick) => {}
            }
        }

        // Graceful stop: release what was not started, let in-flight jobs finish a little.
        let mut by_v: HashMap<usize, Vec<String>> = HashMap::new();
        for (vi, job) in queue.drain(..) {
            by_v.entry(vi).or_default().push(job.lease_id);
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !workers.is_empty() {
            match tokio::time::timeout_at(deadline, workers.join_next_with_id()).await {
                Ok(Some(res)) => self.handle_done(res, &mut in_flight, &mut summary),
                Ok(None) => break,
                Err(_) => {
                    workers.abort_all();
                    while workers.join_next().await.is_some() {}
                    for (_, (vi, lease)) in in_flight.drain() {
                        by_v.entry(vi).or_default().push(lease);
                    }
                    break;
                }
            }
        }
        for (vi, ids) in by_v {
            summary.released += ids.len() as u64;
            self.release(vi, ids).await;
        }
        let _ = stop_tx.send(true);
        match tokio::time::timeout(FLUSH_TIMEOUT, submitter).await {
            Ok(_) => {}
            Err(_) => tracing::warn!("flush timed out; the queue resumes on the next start"),
        }
        self.set_flags(|f| {
            f.running = false;
            f.waiting = false;
        });
        Ok(summary)
    }

    fn handle_done(
        &self,
        res: Result<(tokio::task::Id, (usize, String, JobOutcome)), tokio::task::JoinError>,
        in_flight: &mut HashMap<tokio::task::Id, (usize, String)>,
        summary: &mut RunSummary,
    ) {
        match res {
            Ok((id, (_, _, outcome))) => {
                in_flight.remove(&id);
                match outcome {
                    JobOutcome::Record => summary.pages += 1,
                    JobOutcome::Failed => summary.failures += 1,
                    JobOutcome::Released => summary.released += 1,
                }
            }
            Err(e) => {
                tracing::error!(cause = %e, "job task failed");
                in_flight.remove(&e.id());
            }
        }
    }

    /// Background loop: report failures, cut batches, send due batches, refresh standing.
    async fn submitter(self, mut stop: watch::Receiver<bool>) {
        let mut last_standing: Option<Instant> = None;
        loop {
            let stopping = *stop.borrow();
            let refresh = last_standing.is_none_or(|t| t.elapsed() >= STANDING_REFRESH);
            if refresh {
                last_standing = Some(Instant::now());
            }
            if let Err(e) = self.submit_round(stopping, refresh).await {
                tracing::error!(cause = %e, "submit round failed");
            }
            if stopping {
                // What the validators last said outlives the run (`gleaner status`, next start).
                self.save_health();
                break;
            }
            let force = tokio::select! {
                _ = stop.changed() => true,
                _ = self.inner.flush.notified() => true,
                _ = tokio::time::sleep(SUBMIT_TICK) => false,
            };
            if force && let Err(e) = self.submit_round(true, false).await {
                tracing::error!(cause = %e, "submit round failed");
            }
        }
    }

    /// One round of reporting, batching and sending. `force`: batch whatever is fetched.
    pub async fn submit_round(&self, force: bool, refresh_standing: bool) -> Result<(), NodeError> {
        let cfg = self.settings();
        let now = now_ms();
        for v in &self.inner.validators {
            if let Err(e) = self.ensure_registered(v).await {
                self.health_err(v, &e);
                continue;
            }
            loop {
                let pending = self.inner.store.pending_failures(&v.url, 500)?;
                if pending.is_empty() {
                    break;
                }
                let rows: Vec<i64> = pending.iter().map(|p| p.row).collect();
                match v
                    .client
                    .report(pending.into_iter().map(|p| p.failure).collect())
                    .await
                {
                    Ok(_) => {
                        self.health_ok(v);
                        self.inner.store.mark_failures_reported(&rows)?;
                    }
                    Err(e) => {
                        self.health_err(v, &e);
                        if !e.is_transient() {
                            // A report the validator refuses (expired leases…) is not retried.
                            self.inner.store.mark_failures_reported(&rows)?;
                        }
                        break;
                    }
                }
            }
            let max_records = v.max_batch_records.load(Ordering::Acquire).max(1) as usize;
            let max_bytes = v.max_batch_bytes.load(Ordering::Acquire);
            loop {
                let (count, oldest) = self.inner.store.fetched_backlog(&v.url)?;
                let old = oldest.is_some_and(|t| {
                    now - t
                        >= i64::try_from(cfg.batch_max_age_secs.saturating_mul(1000))
                            .unwrap_or(i64::MAX)
                });
                if count == 0 || (count < max_records as u64 && !force && !old) {
                    break;
                }
                match self.inner.store.create_batch(
                    &v.url,
                    &self.inner.key,
                    max_records,
                    max_bytes,
                    now,
                )? {
                    Some(b) => self.emit(NodeEvent::Batched {
                        batch_id: b.id.to_string(),
                        records: b.record_count,
                    }),
                    None => break,
                }
            }
            if refresh_standing {
                match v.client.me().await {
                    Ok(s) => {
                        let (open, revoked) = (s.epoch, s.records_revoked);
                        if let Ok(mut h) = v.health.lock() {
                            h.standing = Some(s);
                        }
                        self.refresh_claim(v, open).await;
                        self.refresh_revocations(v, revoked).await?;
                    }
                    Err(e) => tracing::debug!(cause = %e, "standing refresh failed"),
                }
            }
        }
        if refresh_standing {
            self.save_health();
            // Keep the activity log within its retention during long runs too.
            let retention_ms = i64::from(cfg.activity_retention_days) * 86_400_000;
            self.inner.store.prune_activity(now - retention_ms)?;
        }
        for b in self.inner.store.due_batches(now, 16)? {
            let Some(v) = self.inner.validators.iter().find(|v| v.url == b.validator) else {
                continue;
            };
            self.inner.store.mark_submitted(&b.id)?;
            match v.client.submit(&b.id, b.body, b.record_count).await {
                Ok(receipt) => {
                    self.health_ok(v);
                    self.inner.store.store_receipt(&receipt, now_ms())?;
                    let accepted = receipt
                        .verdicts
                        .iter()
                        .filter(|x| x.verdict == gleaner_protocol::Verdict::Accepted)
                        .count() as u32;
                    self.emit(NodeEvent::Receipted {
                        batch_id: b.id.to_string(),
                        accepted,
                        points: receipt.points,
                    });
                }
                Err(e) => {
                    self.health_err(v, &e);
                    let next = now_ms()
                        + i64::try_from(backoff(b.attempts).as_millis()).unwrap_or(i64::MAX / 2);
                    self.inner
                        .store
                        .mark_failed(&b.id, &e.to_string(), next, !e.is_transient())?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobOutcome {
    Record,
    Failed,
    Released,
}

/// The node's fetch hooks: robots.txt and politeness before each hop, the governor per chunk,
/// the activity log per request.
struct NodeHooks {
    node: Node,
    fetcher: Fetcher,
    /// robots.txt decision for the first page hop (recorded in the record).
    decision: Mutex<Option<RobotsDecision>>,
}

impl FetchHooks for NodeHooks {
    fn before_hop<'a>(
        &'a self,
        url: &'a Url,
        purpose: Purpose,
    ) -> Pin<Box<dyn Future<Output = Result<(), FetchError>> + Send + 'a>> {
        Box::pin(async move {
            let domain = url.host_str().map(registered_domain).unwrap_or_default();
            let mut crawl_delay = None;
            if purpose == Purpose::Page {
                let d = self
                    .node
                    .inner
                    .robots
                    .check(&self.fetcher, self, url)
                    .await?;
                crawl_delay = d.crawl_delay;
                if let Ok(mut g) = self.decision.lock()
                    && g.is_none()
                {
                    *g = Some(d);
                }
            }
            let pol = &self.node.inner.politeness;
            let wait = pol
                .next_free(&domain)
                .saturating_duration_since(Instant::now());
            if wait > MAX_POLITENESS_WAIT {
                return Err(FetchError::Busy {
                    url: url.to_string(),
                    wait_ms: wait.as_millis() as u64,
                });
            }
            let start = pol.reserve(&domain, crawl_delay);
            tokio::time::sleep_until(start).await;
            Ok(())
        })
    }

    fn on_bytes(&self, n: u64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.node.inner.governor.throttle(n, now_ms()))
    }

    fn on_hop(&self, e: HopEvent) {
        let domain = Url::parse(&e.url)
            .ok()
            .and_then(|u| u.host_str().map(registered_domain))
            .unwrap_or_default();
        let kind = if e.refused {
            ActivityKind::Refused
        } else if e.purpose == Purpose::Robots {
            ActivityKind::Robots
        } else {
            ActivityKind::Page
        };
        if e.wire_bytes > 0
            && let Err(err) = self
                .node
                .inner
                .store
                .add_usage(day_of(e.at_ms), e.wire_bytes)
        {
            tracing::warn!(cause = %err, "usage write failed");
        }
        self.node.log(&[ActivityEntry {
            at_ms: e.at_ms,
            kind,
            url: e.url,
            domain,
            status: e.status,
            bytes: e.wire_bytes,
            verdict: e.verdict,
            detail: e.detail,
        }]);
    }
}

/// The links a record sends of those the cleaner `found` on a page, in page order: each one a
/// record may carry (no longer than a URL may be, no control characters), and only as many as a
/// validator reads ([`OUTLINKS_READ`], the first ones): the rest would cost the user's upload
/// and be dropped unread.
pub fn outlinks_to_send(found: Vec<String>) -> Vec<String> {
    found
        .into_iter()
        .filter(|l| l.len() <= MAX_URL_BYTES && !l.chars().any(char::is_control))
        .take(OUTLINKS_READ)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_sends_the_first_links_a_validator_reads_and_only_those() {
        let link = |i: usize| format!("https://a.example/{i}");
        let mut found: Vec<String> = (0..OUTLINKS_READ + 50).map(link).collect();
        // Unsendable links are skipped, not counted.
        found.insert(3, "https://a.example/\n\u{85}".to_owned());
        found.insert(
            5,
            format!("https://a.example/{}", "x".repeat(MAX_URL_BYTES)),
        );
        let sent = outlinks_to_send(found);
        assert_eq!(sent, (0..OUTLINKS_READ).map(link).collect::<Vec<_>>());
        let few: Vec<String> = (0..7).map(link).collect();
        assert_eq!(outlinks_to_send(few.clone()), few);
        assert!(outlinks_to_send(Vec::new()).is_empty());
    }
}
