//! View models: what the dashboard and the tray show. Serialised in camelCase to match
//! `ui/src/bridge.ts`; keep both in step.

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::AppError;

/// What the node is doing; the tray icon has one picture per state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    Sharing,
    Paused,
    Capped,
    Offline,
    Error,
}

impl NodeState {
    /// A short label for people ("Sharing", "Paused", …).
    pub fn label(self) -> &'static str {
        match self {
            NodeState::Sharing => "Sharing",
            NodeState::Paused => "Paused",
            NodeState::Capped => "Paused by your cap",
            NodeState::Offline => "Offline",
            NodeState::Error => "Error",
        }
    }

    /// True unless the user paused: the node may still be held back by a cap, a rule or the
    /// network, but the toggle offers "Pause".
    pub fn wants_to_share(self) -> bool {
        self != NodeState::Paused
    }
}

/// The node's own status, as the node library reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    pub state: NodeState,
    pub detail: Option<String>,
    /// Unix ms at which a timed pause ends.
    pub paused_until_ms: Option<i64>,
}

/// The status the dashboard shows: the node's plus what only the app knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(flatten)]
    pub node: NodeStatus,
    pub public_key: String,
    pub onboarded: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bandwidth {
    pub now_bps: u64,
    pub today_bytes: u64,
    pub month_bytes: u64,
    pub rate_cap_bps: Option<u64>,
    pub monthly_cap_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonCount {
    pub code: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pages {
    pub fetched: u64,
    pub accepted: u64,
    pub duplicate: u64,
    pub rejected: u64,
    /// Accepted, then revoked by a validator's later check (counted in `accepted` too).
    pub revoked: u64,
    pub failed: u64,
    pub reasons: Vec<ReasonCount>,
    /// The newest revoked pages the node has read from its validators' revocation logs.
    pub revoked_pages: Vec<RevokedPage>,
}

/// One accepted page a validator revoked later.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokedPage {
    pub url: String,
    /// The validator's reason code, e.g. `failed_cross_check`, `page_not_found`.
    pub reason: String,
    /// The epoch the page was credited in.
    pub epoch: u64,
    /// Points its receipt credited, taken back (0 when this install holds no such receipt).
    pub points: u64,
    /// When the node learned of it.
    pub at_ms: i64,
    pub validator: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptSummary {
    pub batch_id: String,
    pub validator: String,
    pub issued_at_ms: i64,
    pub accepted: u64,
    pub duplicate: u64,
    pub rejected: u64,
    pub points: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochPoints {
    pub epoch: u64,
    pub closed: bool,
    pub points: u64,
    pub receipts: Vec<ReceiptSummary>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Points {
    pub credited: u64,
    /// Of `credited`, the points of pages revoked since.
    pub taken_back: u64,
    /// Points the validators report as pending in the open epoch.
    pub pending: u64,
    /// Records sent or queued without a receipt yet.
    pub pending_records: u64,
    pub epochs: Vec<EpochPoints>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorHealth {
    pub url: String,
    /// Whether this run has had an answer or a failure from it yet; before that, `reachable`
    /// says nothing (the node may be paused), and `last_contact_ms` is an earlier run's.
    pub contacted: bool,
    pub reachable: bool,
    pub last_error: Option<String>,
    pub last_contact_ms: Option<i64>,
    /// This node's claim in the validator's newest closed epoch, checked against its signed
    /// root; `None` before the first close or when the check failed (`claim_error`).
    pub claim: Option<ClaimCheck>,
    /// Why the claim did not verify (`code: message`).
    pub claim_error: Option<String>,
    /// Why the validator's operator suspended this node, while it is suspended (its last
    /// standing says so): the validator gives it no work and takes none of its pages.
    pub suspended: Option<String>,
    /// This node's standing with the validator as its last answer gave it; `None` before one.
    pub standing: Option<Standing>,
}

/// How far a validator trusts this node, from its last standing (`GET /v1/nodes/me`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Standing {
    /// In [0, 1]: a new node starts at 0 and rises as cross-checks pass; the points a page
    /// earns grow steeply with it.
    pub credibility: f64,
    /// Cross-checks that found this node's fetches right, and wrong.
    pub checks_passed: u64,
    pub checks_failed: u64,
}

/// A reward claim the node checked (`gleaner_collector::rewards`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimCheck {
    pub epoch: u64,
    /// Cumulative points claimable through `epoch`.
    pub amount: u64,
    /// True when `amount` was verified against the signed root: the leaf's proof, or with no
    /// leaf, every published leaf rebuilding the root without one; false only when the tree has
    /// no leaf for this node and its leaves could not be fetched (the validator's word).
    pub proven: bool,
    /// Whether the tree holds a leaf for this node.
    pub leaf: bool,
    pub root: String,
}

/// Everything the overview shows, pushed about once a second while the window is open.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub bandwidth: Bandwidth,
    pub pages: Pages,
    pub points: Points,
    pub validators: Vec<ValidatorHealth>,
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityVerdict {
    /// Fetched.
    Ok,
    /// Answered with a redirect (the next hop is its own entry).
    Redirect,
    /// Refused before any connection (safety policy, blocklist): no request was made.
    Refused,
    /// Failed; `reason` says why (robots.txt, timeout, size…).
    Failed,
}

impl ActivityVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityVerdict::Ok => "ok",
            ActivityVerdict::Redirect => "redirect",
            ActivityVerdict::Refused => "refused",
            ActivityVerdict::Failed => "failed",
        }
    }
}

/// One request made on this connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityEntry {
    pub id: u64,
    pub at_ms: i64,
    pub method: String,
    pub url: String,
    pub domain: String,
    /// A robots.txt request (not a page).
    pub robots: bool,
    pub status: Option<u16>,
    pub bytes: u64,
    pub verdict: ActivityVerdict,
    pub reason: Option<String>,
    pub detail: String,
    /// For a page fetched: what became of its record (none for robots.txt, refusals and
    /// failures, or a request whose URL no stored record carries).
    pub outcome: Option<PageOutcome>,
}

/// What became of a fetched page's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageOutcome {
    /// `queued` (no receipt yet), `accepted`, `duplicate`, `rejected` or `revoked`.
    pub outcome: String,
    /// The receipt's or the revocation's reason code.
    pub reason: Option<String>,
    /// Points credited (0 once revoked).
    pub points: u64,
}

/// Most rows one activity page returns: the UI shows 25; this bounds a hostile or buggy caller.
pub const MAX_ACTIVITY_PAGE: u32 = 500;

/// A search of the activity log. The UI sends `""` for "any" domain or verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityQuery {
    #[serde(default)]
    pub search: String,
    #[serde(default)]
    pub domain: String,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub verdict: Option<ActivityVerdict>,
    #[serde(default)]
    pub offset: u32,
    /// Rows wanted; 0 means all (used by the export).
    #[serde(default)]
    pub limit: u32,
}

fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ActivityVerdict>, D::Error> {
    let raw = Option::<String>::deserialize(d)?;
    match raw.as_deref() {
        None | Some("") => Ok(None),
        Some(v) => serde_json::from_value(serde_json::Value::String(v.to_string()))
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

impl ActivityQuery {
    /// Does `entry` match this query's filters (not its paging)?
    pub fn matches(&self, entry: &ActivityEntry) -> bool {
        let needle = self.search.trim().to_lowercase();
        (self.domain.is_empty() || entry.domain == self.domain)
            && self.verdict.is_none_or(|v| v == entry.verdict)
            && (needle.is_empty()
                || entry.url.to_lowercase().contains(&needle)
                || entry.reason.as_deref().is_some_and(|r| r.contains(&needle))
                || entry.detail.to_lowercase().contains(&needle))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ActivityPage {
    pub entries: Vec<ActivityEntry>,
    pub total: u64,
    pub domains: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportResult {
    pub path: String,
    pub rows: u64,
}

/// Local-time window in which sharing is allowed, "HH:MM" each; `end < start` spans midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub start: String,
    pub end: String,
    /// The user's local time minus UTC, in minutes (the dashboard knows it).
    #[serde(default)]
    pub utc_offset_minutes: i32,
}

/// The node's settings (the part the node library owns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSettings {
    pub validators: Vec<String>,
    pub rate_cap_bps: Option<u64>,
    pub monthly_cap_bytes: Option<u64>,
    pub schedule: Option<Schedule>,
    pub idle_only: bool,
    pub pause_on_metered: bool,
    pub blocklist: Vec<String>,
    pub payout_address: Option<String>,
}

/// Most validators and blocklist entries: far above real use, low enough to keep the files small.
pub const MAX_LIST_LEN: usize = 1_000;

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            validators: Vec::new(),
            rate_cap_bps: None,
            monthly_cap_bytes: None,
            schedule: None,
            idle_only: false,
            pause_on_metered: true,
            blocklist: Vec::new(),
            payout_address: None,
        }
    }
}

impl NodeSettings {
    /// Checks and normalises (trims, lower-cases domains, drops duplicates).
    pub fn validated(mut self) -> Result<Self, AppError> {
        let bad = |field, why: String| AppError::InvalidSettings { field, why };
        if self.validators.len() > MAX_LIST_LEN || self.blocklist.len() > MAX_LIST_LEN {
            return Err(bad("validators", format!("at most {MAX_LIST_LEN} entries")));
        }
        for v in &mut self.validators {
            *v = v.trim().trim_end_matches('/').to_string();
            let rest = v
                .strip_prefix("https://")
                .or_else(|| v.strip_prefix("http://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
                return Err(bad(
                    "validators",
                    format!("{v:?} is not an http(s) address"),
                ));
            }
        }
        for d in &mut self.blocklist {
            *d = d
                .trim()
                .trim_start_matches("*.")
                .trim_end_matches('.')
                .to_lowercase();
            let ok = !d.is_empty()
                && d.len() <= 253
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if !ok {
                return Err(bad("blocklist", format!("{d:?} is not a domain name")));
            }
        }
        self.blocklist.sort();
        self.blocklist.dedup();
        if self.rate_cap_bps == Some(0) || self.monthly_cap_bytes == Some(0) {
            return Err(bad(
                "caps",
                "a cap must be above zero (empty: no cap)".into(),
            ));
        }
        if let Some(s) = &self.schedule {
            for t in [&s.start, &s.end] {
                if !is_hh_mm(t) {
                    return Err(bad("schedule", format!("{t:?} is not a time like 22:00")));
                }
            }
        }
        if let Some(p) = &self.payout_address {
            let p = p.trim();
            if p.parse::<gleaner_protocol::PublicKey>().is_err() {
                return Err(bad(
                    "payoutAddress",
                    format!("{p:?} is not a Gleaner public key"),
                ));
            }
            self.payout_address = Some(p.to_string());
        }
        Ok(self)
    }
}

fn is_hh_mm(t: &str) -> bool {
    let Some((h, m)) = t.split_once(':') else {
        return false;
    };
    h.len() == 2
        && m.len() == 2
        && h.parse::<u8>().is_ok_and(|h| h < 24)
        && m.parse::<u8>().is_ok_and(|m| m < 60)
}

/// The settings the dashboard edits: the node's, plus the app's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    #[serde(flatten)]
    pub node: NodeSettings,
    pub start_at_login: bool,
    pub notifications: bool,
}

/// Columns of the activity export, in order; the last three say what became of a fetched
/// page's record (empty where there is none).
pub const ACTIVITY_CSV_HEADER: &str = "time_ms,method,url,domain,robots,status,bytes,verdict,\
     reason,detail,outcome,outcome_reason,points";

/// Writes activity rows as CSV (RFC 4180 quoting, spreadsheet formulas defused) to `out`;
/// returns the number of rows.
pub fn write_csv<'a>(
    rows: impl IntoIterator<Item = &'a ActivityEntry>,
    out: &mut dyn std::io::Write,
) -> std::io::Result<u64> {
    use gleaner_collector::activity::csv_field as field;
    writeln!(out, "{ACTIVITY_CSV_HEADER}")?;
    let mut n = 0;
    for e in rows {
        let o = e.outcome.as_ref();
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            e.at_ms,
            field(&e.method),
            field(&e.url),
            field(&e.domain),
            e.robots,
            e.status.map(|s| s.to_string()).unwrap_or_default(),
            e.bytes,
            e.verdict.as_str(),
            field(e.reason.as_deref().unwrap_or("")),
            field(&e.detail),
            o.map(|o| field(&o.outcome)).unwrap_or_default(),
            o.and_then(|o| o.reason.as_deref())
                .map(field)
                .unwrap_or_default(),
            o.map(|o| o.points.to_string()).unwrap_or_default(),
        )?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_normalised_and_checked() {
        let s = NodeSettings {
            validators: vec![" https://v.example/ ".into()],
            blocklist: vec![
                "Example.COM".into(),
                "*.ads.net".into(),
                "example.com".into(),
            ],
            schedule: Some(Schedule {
                start: "22:00".into(),
                end: "07:30".into(),
                utc_offset_minutes: 60,
            }),
            ..NodeSettings::default()
        }
        .validated()
        .unwrap();
        assert_eq!(s.validators, ["https://v.example"]);
        assert_eq!(s.blocklist, ["ads.net", "example.com"]);

        for (bad, code_field) in [
            (
                NodeSettings {
                    validators: vec!["ftp://x".into()],
                    ..NodeSettings::default()
                },
                "validators",
            ),
            (
                NodeSettings {
                    blocklist: vec!["not a domain".into()],
                    ..NodeSettings::default()
                },
                "blocklist",
            ),
            (
                NodeSettings {
                    rate_cap_bps: Some(0),
                    ..NodeSettings::default()
                },
                "caps",
            ),
            (
                NodeSettings {
                    schedule: Some(Schedule {
                        start: "25:00".into(),
                        end: "07:00".into(),
                        utc_offset_minutes: 0,
                    }),
                    ..NodeSettings::default()
                },
                "schedule",
            ),
            (
                NodeSettings {
                    payout_address: Some("nope".into()),
                    ..NodeSettings::default()
                },
                "payoutAddress",
            ),
        ] {
            match bad.validated() {
                Err(AppError::InvalidSettings { field, .. }) => assert_eq!(field, code_field),
                other => panic!("expected invalid {code_field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn settings_json_matches_the_ui() {
        let json = serde_json::json!({
            "validators": ["https://v.example"], "rateCapBps": 2048, "monthlyCapBytes": null,
            "schedule": {"start": "22:00", "end": "07:00", "utcOffsetMinutes": -300}, "idleOnly": true, "pauseOnMetered": false,
            "blocklist": [], "payoutAddress": null, "startAtLogin": true, "notifications": false
        });
        let s: Settings = serde_json::from_value(json.clone()).unwrap();
        assert!(s.start_at_login && s.node.idle_only);
        assert_eq!(serde_json::to_value(&s).unwrap(), json);
    }

    #[test]
    fn activity_query_accepts_the_ui_empty_strings() {
        let q: ActivityQuery =
            serde_json::from_str(r#"{"search":"","domain":"","verdict":"","offset":0,"limit":25}"#)
                .unwrap();
        assert_eq!(q.verdict, None);
        let q: ActivityQuery = serde_json::from_str(r#"{"verdict":"refused"}"#).unwrap();
        assert_eq!(q.verdict, Some(ActivityVerdict::Refused));
        assert!(serde_json::from_str::<ActivityQuery>(r#"{"verdict":"nope"}"#).is_err());
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let e = ActivityEntry {
            id: 1,
            at_ms: 5,
            method: "GET".into(),
            url: "https://a.example/x,\"y\"".into(),
            domain: "a.example".into(),
            robots: false,
            status: None,
            bytes: 10,
            verdict: ActivityVerdict::Failed,
            reason: Some("robots_disallowed".into()),
            detail: "Disallow: /x".into(),
            outcome: None,
        };
        // A fetched page with its record's outcome, and a detail a spreadsheet would run.
        let page = ActivityEntry {
            verdict: ActivityVerdict::Ok,
            reason: None,
            status: Some(200),
            detail: "=HYPERLINK(\"x\")".into(),
            outcome: Some(PageOutcome {
                outcome: "revoked".into(),
                reason: Some("failed_cross_check".into()),
                points: 0,
            }),
            ..e.clone()
        };
        let mut out = Vec::new();
        assert_eq!(write_csv([&e, &page], &mut out).unwrap(), 2);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], ACTIVITY_CSV_HEADER);
        assert_eq!(lines[0].split(',').count(), 13);
        assert_eq!(
            lines[1],
            r#"5,GET,"https://a.example/x,""y""",a.example,false,,10,failed,robots_disallowed,Disallow: /x,,,"#
        );
        assert_eq!(
            lines[2],
            r#"5,GET,"https://a.example/x,""y""",a.example,false,200,10,ok,,"'=HYPERLINK(""x"")",revoked,failed_cross_check,0"#
        );
    }
}
