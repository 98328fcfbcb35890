//! [`NodeApi`] over the node library (`gleaner-collector`): the only module that knows it.
//!
//! The node's settings live in `<app dir>/config.toml` (the library's format, so the `gleaner` CLI
//! can read the same file) and its state in `<app dir>/node/`. `GLEANER_*` variables override the
//! file, as for the CLI.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use gleaner_collector::governor::{Cap, Schedule as Weekly, Window};
use gleaner_collector::node::ValidatorHealth as NodeHealth;
use gleaner_collector::{ActivityKind, Node, NodeConfig, NodeState as LibState, RunOptions};
use tokio::sync::{broadcast, watch};

use super::{NodeApi, NodeEvent};
use crate::error::AppError;
use crate::model::{
    ActivityEntry, ActivityPage, ActivityQuery, ActivityVerdict, Bandwidth, ClaimCheck,
    EpochPoints, NodeSettings, NodeState, NodeStatus, PageOutcome, Pages, Points, ReasonCount,
    ReceiptSummary, RevokedPage, Schedule, Standing, Stats, ValidatorHealth, write_csv,
};

/// Events buffered per subscriber: a slow window skips old ones rather than stalling the node.
const EVENT_BUFFER: usize = 256;
/// Most log entries scanned for one activity page (filters, paging and the total work on these):
/// about a day of steady sharing, and a fast query on the node's SQLite store.
const ACTIVITY_SCAN: usize = 5_000;
/// Most rows one CSV export writes.
const EXPORT_MAX: usize = 1_000_000;
/// Longest timed pause: a day covers "pause for the night"; anything longer is a plain pause.
pub const MAX_PAUSE: Duration = Duration::from_secs(24 * 3600);

/// Epochs the points panel lists, newest first.
const EPOCHS_SHOWN: usize = 12;
/// Latest receipts listed under their epochs.
const RECEIPTS_SHOWN: usize = 50;
/// Newest revoked pages the pages panel lists.
const REVOKED_SHOWN: usize = 20;

fn node_err(e: gleaner_collector::node::NodeError) -> AppError {
    AppError::Node(format!("{} ({})", e, e.code()))
}

fn store_err(e: gleaner_collector::store::StoreError) -> AppError {
    AppError::Node(format!("{} ({})", e, e.code()))
}

fn receipt_summary(r: &gleaner_protocol::Receipt) -> ReceiptSummary {
    let count =
        |v: gleaner_protocol::Verdict| r.verdicts.iter().filter(|x| x.verdict == v).count() as u64;
    ReceiptSummary {
        batch_id: r.batch_id.to_string(),
        validator: r.validator.to_string(),
        issued_at_ms: r.issued_at_ms,
        accepted: count(gleaner_protocol::Verdict::Accepted),
        duplicate: count(gleaner_protocol::Verdict::Duplicate),
        rejected: count(gleaner_protocol::Verdict::Rejected),
        points: r.points,
    }
}

/// The node library, wired for the app.
pub struct CollectorNode {
    node: Node,
    config_path: PathBuf,
    events: broadcast::Sender<NodeEvent>,
    stop: watch::Sender<bool>,
    running: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
}

impl CollectorNode {
    /// Opens the node: settings from `config_path` (defaults when missing) with `GLEANER_*`
    /// overrides; state in `data_dir`. Contacts nobody until [`CollectorNode::start`].
    pub fn open(config_path: &Path, data_dir: &Path) -> Result<Self, AppError> {
        let mut config = NodeConfig::load(Some(config_path))
            .map_err(|e| AppError::Node(format!("{e} ({})", e.code())))?;
        config.data_dir = data_dir.to_path_buf();
        let node = Node::open(config).map_err(node_err)?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (stop, _) = watch::channel(false);
        Ok(CollectorNode {
            node,
            config_path: config_path.to_path_buf(),
            events,
            stop,
            running: Mutex::new(None),
        })
    }

    /// Forwards the library's events and, when validators are configured, runs the node on
    /// Tauri's async runtime until [`CollectorNode::stop`]. Must be called inside that runtime's
    /// reach (from `setup`, or a test).
    pub fn start(&self) {
        let mut lib_events = self.node.subscribe();
        let events = self.events.clone();
        tauri::async_runtime::spawn(async move {
            loop {
                match lib_events.recv().await {
                    Ok(event) => {
                        if let Some(e) = translate(event) {
                            let _ = events.send(e);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = events.send(NodeEvent::Activity);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        if self.node.settings().validators.is_empty() {
            tracing::info!("no validator configured: the node waits for settings");
            return;
        }
        let node = self.node.clone();
        let mut stop = self.stop.subscribe();
        let handle = tauri::async_runtime::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            match node.run(RunOptions::default(), shutdown).await {
                Ok(summary) => tracing::info!(pages = summary.pages, "node stopped"),
                Err(err) => tracing::error!(code = err.code(), %err, "node stopped"),
            }
        });
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
    }

    /// Asks the node to stop (it releases its leases and flushes what it can) and waits at most
    /// `grace` for that.
    pub async fn stop(&self, grace: Duration) {
        let _ = self.stop.send(true);
        let handle = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(handle) = handle
            && tokio::time::timeout(grace, handle).await.is_err()
        {
            tracing::warn!("node did not stop in time; its queue is kept for the next start");
        }
    }

    /// The library's node (for tools and tests).
    pub fn library(&self) -> &Node {
        &self.node
    }

    /// Points per epoch with each epoch's latest receipts, newest epoch first. An epoch counts as
    /// closed once a validator has credited a later one (the node learns of closes no other way).
    fn epochs(&self) -> Result<Vec<EpochPoints>, AppError> {
        let store = self.node.store();
        let totals = store.epoch_totals(EPOCHS_SHOWN).map_err(store_err)?;
        let receipts = store.recent_receipts(RECEIPTS_SHOWN).map_err(store_err)?;
        let newest = totals.first().map_or(0, |t| t.epoch);
        Ok(totals
            .into_iter()
            .map(|t| EpochPoints {
                epoch: t.epoch,
                closed: t.epoch < newest,
                points: t.points,
                receipts: receipts
                    .iter()
                    .filter(|r| r.epoch == t.epoch)
                    .map(receipt_summary)
                    .collect(),
            })
            .collect())
    }

    fn scan(&self, query: &ActivityQuery, max: usize) -> Result<Vec<ActivityEntry>, AppError> {
        let lib_query = gleaner_collector::ActivityQuery {
            domain: (!query.domain.is_empty()).then(|| query.domain.clone()),
            text: (!query.search.trim().is_empty()).then(|| query.search.trim().to_string()),
            limit: Some(max),
            ..Default::default()
        };
        let entries = self.node.activity(&lib_query).map_err(node_err)?;
        Ok(entries
            .into_iter()
            .enumerate()
            .map(|(i, e)| entry(i, e))
            .filter(|e| query.verdict.is_none_or(|v| v == e.verdict))
            .collect())
    }
}

impl CollectorNode {
    /// What became of each page these entries (newest first) fetched: the newest fetch of a
    /// URL carries its newest record's outcome (a record carries its job's URL, which may be a
    /// redirect's first hop).
    fn add_outcomes(&self, entries: &mut [ActivityEntry]) -> Result<(), AppError> {
        fn fetched(e: &ActivityEntry) -> Option<&str> {
            let page =
                !e.robots && matches!(e.verdict, ActivityVerdict::Ok | ActivityVerdict::Redirect);
            page.then_some(e.url.as_str())
        }
        let pages: Vec<&str> = entries.iter().filter_map(fetched).collect();
        let outcomes = self.node.page_outcomes(&pages).map_err(node_err)?;
        let shown: Vec<Option<PageOutcome>> =
            gleaner_collector::activity::outcomes_by_entry(entries, fetched, &outcomes)
                .into_iter()
                .map(|o| {
                    o.map(|o| PageOutcome {
                        outcome: o.outcome.clone(),
                        reason: o.reason.clone(),
                        points: o.points,
                    })
                })
                .collect();
        for (e, outcome) in entries.iter_mut().zip(shown) {
            e.outcome = outcome;
        }
        Ok(())
    }
}

fn entry(i: usize, e: gleaner_collector::ActivityEntry) -> ActivityEntry {
    let verdict = match (e.kind, e.verdict.as_str()) {
        (ActivityKind::Refused, _) => ActivityVerdict::Refused,
        (_, "ok") => ActivityVerdict::Ok,
        (_, "redirect") => ActivityVerdict::Redirect,
        _ => ActivityVerdict::Failed,
    };
    let reason = match verdict {
        ActivityVerdict::Ok | ActivityVerdict::Redirect => None,
        _ => Some(e.verdict.clone()),
    };
    ActivityEntry {
        id: i as u64,
        at_ms: e.at_ms,
        method: match e.kind {
            ActivityKind::Refused => "—".into(),
            _ => "GET".into(),
        },
        robots: e.kind == ActivityKind::Robots,
        url: e.url,
        domain: e.domain,
        status: e.status,
        bytes: e.bytes,
        verdict,
        reason,
        detail: e.detail,
        outcome: None,
    }
}

/// The library's state in the app's five states, with words for the user.
fn status(state: LibState) -> NodeStatus {
    let (state, detail, until) = match state {
        LibState::Sharing => (NodeState::Sharing, None, None),
        LibState::Waiting => (
            NodeState::Sharing,
            Some("Waiting for work from the validators.".to_string()),
            None,
        ),
        LibState::Stopped => (
            NodeState::Offline,
            Some("Not running: add a validator in Settings, then restart Gleaner.".into()),
            None,
        ),
        LibState::Paused { until_ms } => (NodeState::Paused, None, until_ms),
        LibState::Capped { cap } => (
            NodeState::Capped,
            Some(match cap {
                Cap::Daily => "Today's cap is reached; sharing resumes tomorrow.".into(),
                Cap::Monthly => "This month's cap is reached; sharing resumes on the 1st.".into(),
            }),
            None,
        ),
        LibState::OutsideSchedule => (
            NodeState::Capped,
            Some("Outside your sharing hours.".into()),
            None,
        ),
        LibState::WaitingForIdle => (
            NodeState::Capped,
            Some("Waiting until this computer is idle.".into()),
            None,
        ),
        LibState::Metered => (
            NodeState::Capped,
            Some("Paused on a metered network.".into()),
            None,
        ),
        LibState::Offline => (
            NodeState::Offline,
            Some("No validator answers; Gleaner keeps trying.".into()),
            None,
        ),
        LibState::Error { message } => (NodeState::Error, Some(message), None),
    };
    NodeStatus {
        state,
        detail,
        paused_until_ms: until,
    }
}

fn translate(event: gleaner_collector::NodeEvent) -> Option<NodeEvent> {
    use gleaner_collector::NodeEvent as E;
    Some(match event {
        E::StateChanged { state } => match state {
            LibState::Capped { cap } => NodeEvent::CapReached {
                detail: status(LibState::Capped { cap }).detail.unwrap_or_default(),
            },
            other => NodeEvent::Status(status(other)),
        },
        E::Fetched { .. } | E::Failed { .. } => NodeEvent::Activity,
        E::Receipted {
            accepted, points, ..
        } => NodeEvent::PointsCredited {
            accepted: u64::from(accepted),
            points,
        },
        E::ValidatorUnreachable { validator, error } => NodeEvent::ValidatorUnreachable {
            url: validator,
            error,
        },
        E::Revoked {
            records, points, ..
        } => NodeEvent::Revoked {
            pages: records,
            points,
        },
        E::Batched { .. } => return None,
    })
}

fn health(h: NodeHealth) -> ValidatorHealth {
    ValidatorHealth {
        url: h.url,
        contacted: h.reachable || h.consecutive_failures > 0,
        reachable: h.reachable,
        last_error: h.last_error,
        last_contact_ms: h.last_ok_ms,
        claim: h.claim.map(|c| ClaimCheck {
            epoch: c.epoch,
            amount: c.amount,
            proven: c.proven,
            leaf: c.leaf,
            root: c.root.to_string(),
        }),
        claim_error: h.claim_error,
        standing: h.standing.as_ref().map(|s| Standing {
            credibility: s.credibility,
            checks_passed: s.checks_passed,
            checks_failed: s.checks_failed,
        }),
        suspended: h.standing.and_then(|s| s.suspended),
    }
}

impl NodeApi for CollectorNode {
    fn status(&self) -> NodeStatus {
        status(self.node.status())
    }

    fn stats(&self) -> Result<Stats, AppError> {
        let s = self.node.stats().map_err(node_err)?;
        let mut reasons: Vec<ReasonCount> = s
            .pages
            .rejected_by_reason
            .into_iter()
            .chain(s.pages.failed_by_reason)
            .map(|(code, count)| ReasonCount { code, count })
            .collect();
        reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
        Ok(Stats {
            bandwidth: Bandwidth {
                now_bps: s.bandwidth.now_bytes_per_sec,
                today_bytes: s.bandwidth.today_bytes,
                month_bytes: s.bandwidth.month_bytes,
                rate_cap_bps: s.bandwidth.ceiling_bytes_per_sec,
                monthly_cap_bytes: s.bandwidth.monthly_cap,
            },
            pages: Pages {
                fetched: s.pages.fetched,
                accepted: s.pages.accepted,
                duplicate: s.pages.duplicate,
                rejected: s.pages.rejected,
                revoked: s.pages.revoked,
                failed: s.pages.failed,
                reasons,
                revoked_pages: self
                    .node
                    .revoked(REVOKED_SHOWN)
                    .map_err(node_err)?
                    .into_iter()
                    .map(|r| RevokedPage {
                        url: r.url,
                        reason: r.reason,
                        epoch: r.epoch,
                        points: r.points,
                        at_ms: r.at_ms,
                        validator: r.validator,
                    })
                    .collect(),
            },
            points: Points {
                credited: s.points.credited,
                taken_back: s.points.taken_back,
                pending: s.points.validator_pending,
                pending_records: s.points.pending_records,
                epochs: self.epochs()?,
            },
            validators: s.validators.into_iter().map(health).collect(),
        })
    }

    fn pause(&self) -> Result<NodeStatus, AppError> {
        self.node.pause();
        Ok(self.status())
    }

    fn pause_for(&self, duration: Duration) -> Result<NodeStatus, AppError> {
        if duration.is_zero() || duration > MAX_PAUSE {
            return Err(AppError::InvalidArgument(format!(
                "a timed pause lasts between 1 minute and {} hours",
                MAX_PAUSE.as_secs() / 3600
            )));
        }
        self.node.pause_for(duration);
        Ok(self.status())
    }

    fn resume(&self) -> Result<NodeStatus, AppError> {
        self.node.resume();
        Ok(self.status())
    }

    fn activity(&self, query: &ActivityQuery) -> Result<ActivityPage, AppError> {
        let all = self.scan(query, ACTIVITY_SCAN)?;
        let mut domains: Vec<String> = self
            .scan(&ActivityQuery::default(), ACTIVITY_SCAN)?
            .into_iter()
            .map(|e| e.domain)
            .collect();
        domains.sort();
        domains.dedup();
        let total = all.len() as u64;
        let mut entries: Vec<ActivityEntry> = all
            .into_iter()
            .skip(query.offset as usize)
            .take(query.limit as usize)
            .collect();
        self.add_outcomes(&mut entries)?;
        Ok(ActivityPage {
            entries,
            total,
            domains,
        })
    }

    fn export_activity_csv(
        &self,
        query: &ActivityQuery,
        out: &mut dyn Write,
    ) -> Result<u64, AppError> {
        let mut rows = self.scan(query, EXPORT_MAX)?;
        self.add_outcomes(&mut rows)?;
        write_csv(&rows, out).map_err(|e| AppError::io("activity export", &self.config_path, e))
    }

    fn settings(&self) -> Result<NodeSettings, AppError> {
        let c = self.node.settings();
        Ok(NodeSettings {
            validators: c.validators,
            rate_cap_bps: c.limits.bandwidth_bytes_per_sec,
            monthly_cap_bytes: c.limits.monthly_bytes,
            schedule: c.limits.schedule.windows.first().map(|w| Schedule {
                start: w.start.clone(),
                end: w.end.clone(),
                utc_offset_minutes: c.limits.schedule.utc_offset_minutes,
            }),
            idle_only: c.limits.only_when_idle,
            pause_on_metered: c.limits.pause_on_metered,
            blocklist: c.blocklist,
            payout_address: c.payout,
        })
    }

    fn update_settings(&self, settings: NodeSettings) -> Result<NodeSettings, AppError> {
        let s = settings.validated()?;
        let mut c = self.node.settings();
        c.validators = s.validators;
        c.payout = s.payout_address;
        c.blocklist = s.blocklist;
        c.limits.bandwidth_bytes_per_sec = s.rate_cap_bps;
        c.limits.monthly_bytes = s.monthly_cap_bytes;
        c.limits.only_when_idle = s.idle_only;
        c.limits.pause_on_metered = s.pause_on_metered;
        c.limits.schedule = match s.schedule {
            Some(w) => Weekly {
                windows: vec![Window {
                    days: Vec::new(),
                    start: w.start,
                    end: w.end,
                }],
                utc_offset_minutes: w.utc_offset_minutes,
            },
            None => Weekly::default(),
        };
        self.node
            .update_settings(c.clone())
            .map_err(|e| AppError::InvalidSettings {
                field: "settings",
                why: format!("{e} ({})", e.code()),
            })?;
        c.save(&self.config_path)
            .map_err(|e| AppError::Node(format!("{e} ({})", e.code())))?;
        self.settings()
    }

    fn public_key(&self) -> String {
        self.node.public_key().to_string()
    }

    fn export_key(&self) -> Result<String, AppError> {
        Ok(self.node.export_key().to_string())
    }

    fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    fn set_idle(&self, idle: bool) {
        self.node.set_idle(idle);
    }

    fn set_metered(&self, metered: bool) {
        self.node.set_metered(metered);
    }
}

#[cfg(test)]
mod tests {
    use gleaner_protocol::{Digest, Receipt, RecordVerdict, SecretKey, Verdict};

    use super::{NodeEvent, NodeHealth, Standing, health, receipt_summary, translate};

    /// A validator's revocation reaches the window as pages and points; a batch cut does not.
    #[test]
    fn node_events_translate_for_the_window() {
        let revoked = gleaner_collector::NodeEvent::Revoked {
            validator: "http://v.test".into(),
            records: 2,
            points: 30,
        };
        assert_eq!(
            translate(revoked),
            Some(NodeEvent::Revoked {
                pages: 2,
                points: 30
            })
        );
        let batched = gleaner_collector::NodeEvent::Batched {
            batch_id: "b".into(),
            records: 4,
        };
        assert_eq!(translate(batched), None);
    }

    #[test]
    fn a_receipt_summary_counts_each_verdict() {
        let validator = SecretKey::from_bytes(&[7; 32]);
        let node = SecretKey::from_bytes(&[8; 32]).public();
        let verdict = |i: u8, verdict, points| RecordVerdict {
            record_id: Digest::of(&[i]),
            verdict,
            reason: "ok".into(),
            points,
        };
        let receipt = Receipt::sign(
            &validator,
            Digest::of(b"batch"),
            node,
            3,
            1_700_000_000_000,
            "points/v1",
            vec![
                verdict(1, Verdict::Accepted, 40),
                verdict(2, Verdict::Accepted, 60),
                verdict(3, Verdict::Duplicate, 0),
                verdict(4, Verdict::Rejected, 0),
            ],
        );
        let s = receipt_summary(&receipt);
        assert_eq!(
            (s.accepted, s.duplicate, s.rejected, s.points),
            (2, 1, 1, 100)
        );
        assert_eq!(s.validator, validator.public().to_string());
        assert_eq!(s.batch_id, Digest::of(b"batch").to_string());
    }

    /// A validator this run has not heard from is neither reachable nor unreachable, whatever an
    /// earlier run's answer says; an answer or a failure makes it contacted.
    #[test]
    fn a_validator_is_contacted_once_it_answered_or_failed() {
        let earlier = NodeHealth {
            url: "http://v.test".into(),
            last_ok_ms: Some(1_000),
            ..NodeHealth::default()
        };
        let shown = health(earlier.clone());
        assert_eq!(
            (shown.contacted, shown.reachable, shown.last_contact_ms),
            (false, false, Some(1_000))
        );
        let answered = NodeHealth {
            reachable: true,
            ..earlier.clone()
        };
        assert!(health(answered).contacted);
        let failed = NodeHealth {
            consecutive_failures: 1,
            last_error: Some("connection refused".into()),
            ..earlier
        };
        let shown = health(failed);
        assert_eq!((shown.contacted, shown.reachable), (true, false));
        assert_eq!(shown.suspended, None);
    }

    /// A node its validator's operator suspended shows why, from its last standing.
    #[test]
    fn a_suspension_in_the_standing_is_shown() {
        let key = gleaner_protocol::SecretKey::from_bytes(&[76; 32]).public();
        let standing = gleaner_protocol::api::NodeStatus {
            node: key,
            payout: key,
            credibility: 0.4,
            points_total: 10,
            points_pending: 2,
            epoch: 3,
            records_revoked: 0,
            checks_passed: 12,
            checks_failed: 1,
            suspended: Some("hammered a site".into()),
        };
        let suspended = NodeHealth {
            url: "http://v.test".into(),
            reachable: true,
            standing: Some(standing),
            ..NodeHealth::default()
        };
        let shown = health(suspended);
        assert_eq!(shown.suspended.as_deref(), Some("hammered a site"));
        assert_eq!(
            shown.standing,
            Some(Standing {
                credibility: 0.4,
                checks_passed: 12,
                checks_failed: 1
            })
        );
    }
}
