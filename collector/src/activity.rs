//! The activity log: every request made on the user's connection (pages and robots.txt) and
//! every URL refused before a request, with time, URL, status, bytes and verdict. Kept for a
//! configurable number of days, queryable and exportable as JSON Lines or CSV.

use std::collections::HashMap;
use std::io::Write;

use serde::{Deserialize, Serialize};

/// What an entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// A page request (or one hop of it).
    Page,
    /// A robots.txt request.
    Robots,
    /// A URL refused before any connection (policy, blocklist).
    Refused,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Page => "page",
            ActivityKind::Robots => "robots",
            ActivityKind::Refused => "refused",
        }
    }

    pub fn from_str_lossy(s: &str) -> Self {
        match s {
            "robots" => ActivityKind::Robots,
            "refused" => ActivityKind::Refused,
            _ => ActivityKind::Page,
        }
    }
}

/// One request made or refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityEntry {
    /// Unix ms UTC.
    pub at_ms: i64,
    pub kind: ActivityKind,
    pub url: String,
    /// Registered domain of the URL's host.
    pub domain: String,
    pub status: Option<u16>,
    /// Body bytes received on the wire.
    pub bytes: u64,
    /// `ok`, `redirect`, or a failure code (`robots_disallowed`, `blocked_address`, …).
    pub verdict: String,
    pub detail: String,
}

/// Filters for [`crate::node::Node::activity`]. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActivityQuery {
    /// Host or registered domain.
    pub domain: Option<String>,
    pub verdict: Option<String>,
    pub kind: Option<ActivityKind>,
    /// Substring of the URL or detail.
    pub text: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Most entries returned (default 1000).
    pub limit: Option<usize>,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

impl ActivityEntry {
    /// Whether this entry fetched a page that may have become a record: a page request that
    /// answered (`ok`, or `redirect` for a job's first hop, whose URL the record carries).
    pub fn fetched_page(&self) -> bool {
        self.kind == ActivityKind::Page && matches!(self.verdict.as_str(), "ok" | "redirect")
    }
}

/// What became of a fetched page's record, by the validator's receipt and revocation log
/// ([`crate::node::Node::page_outcomes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageOutcome {
    /// `queued` until a receipt says; then the receipt's verdict (`accepted`, `duplicate`,
    /// `rejected`), or `revoked` once a validator's revocation log names the record.
    pub outcome: String,
    /// The receipt's reason code (`ok` when accepted), or the revocation's.
    pub reason: Option<String>,
    /// Points the receipt credited (0 once revoked: they were taken back).
    pub points: u64,
}

impl std::fmt::Display for PageOutcome {
    /// `accepted +12`, `queued`, `duplicate`, `rejected: gopher_word_count`, `revoked: …`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.outcome.as_str(), self.reason.as_deref()) {
            ("accepted", _) => write!(f, "accepted +{}", self.points),
            ("rejected" | "revoked", Some(why)) => write!(f, "{}: {why}", self.outcome),
            (outcome, _) => f.write_str(outcome),
        }
    }
}

/// Columns of the CSV export, in order. The last three say what became of a fetched page's
/// record (empty for other entries, and for pages that made no record).
pub const CSV_HEADER: &str =
    "at_ms,kind,url,domain,status,bytes,verdict,detail,outcome,outcome_reason,points";

/// One JSON Lines row: the entry's fields, then `outcome` when the page made a record.
#[derive(Serialize)]
struct JsonRow<'a> {
    #[serde(flatten)]
    entry: &'a ActivityEntry,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'a PageOutcome>,
}

/// The outcome each entry (newest first) shows: the newest fetch of a URL carries the newest
/// record's outcome for that URL; older fetches and entries that fetched no page (`fetched`
/// gives the URL of those that did), none. For any entry type: the app's view has its own.
pub fn outcomes_by_entry<'a, E>(
    entries: &[E],
    fetched: impl Fn(&E) -> Option<&str>,
    outcomes: &'a HashMap<String, PageOutcome>,
) -> Vec<Option<&'a PageOutcome>> {
    let mut shown = std::collections::HashSet::new();
    entries
        .iter()
        .map(|e| {
            fetched(e)
                .filter(|url| shown.insert(*url))
                .and_then(|url| outcomes.get(url))
        })
        .collect()
}

impl ActivityEntry {
    /// The URL of the page this entry fetched ([`ActivityEntry::fetched_page`]), if it did.
    pub fn fetched_url(&self) -> Option<&str> {
        self.fetched_page().then_some(self.url.as_str())
    }
}

/// Writes entries (newest first) as JSON Lines or CSV (RFC 4180 quoting), each fetched page
/// with its outcome from `outcomes` (by URL) as [`outcomes_by_entry`] assigns them.
pub fn write_entries(
    entries: &[ActivityEntry],
    outcomes: &HashMap<String, PageOutcome>,
    format: ExportFormat,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let shown = outcomes_by_entry(entries, ActivityEntry::fetched_url, outcomes);
    match format {
        ExportFormat::Jsonl => {
            for (e, &outcome) in entries.iter().zip(&shown) {
                let row = JsonRow { entry: e, outcome };
                serde_json::to_writer(&mut *out, &row)?;
                out.write_all(b"\n")?;
            }
        }
        ExportFormat::Csv => {
            writeln!(out, "{CSV_HEADER}")?;
            for (e, &o) in entries.iter().zip(&shown) {
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{}",
                    e.at_ms,
                    e.kind.as_str(),
                    csv_field(&e.url),
                    csv_field(&e.domain),
                    e.status.map(|s| s.to_string()).unwrap_or_default(),
                    e.bytes,
                    csv_field(&e.verdict),
                    csv_field(&e.detail),
                    o.map(|o| csv_field(&o.outcome)).unwrap_or_default(),
                    o.and_then(|o| o.reason.as_deref())
                        .map(csv_field)
                        .unwrap_or_default(),
                    o.map(|o| o.points.to_string()).unwrap_or_default(),
                )?;
            }
        }
    }
    Ok(())
}

/// One CSV field: quoted per RFC 4180 where it must be, and with a quote mark put before a
/// leading `=`, `+`, `-` or `@`, which a spreadsheet would run as a formula (a page's detail is
/// partly the server's words).
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes() {
        let e = ActivityEntry {
            at_ms: 1,
            kind: ActivityKind::Page,
            url: "http://a.example/?q=1,2".into(),
            domain: "a.example".into(),
            status: Some(200),
            bytes: 5,
            verdict: "ok".into(),
            detail: "say \"hi\"".into(),
        };
        let mut out = Vec::new();
        write_entries(&[e], &HashMap::new(), ExportFormat::Csv, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.ends_with(
            "1,page,\"http://a.example/?q=1,2\",a.example,200,5,ok,\"say \"\"hi\"\"\",,,\n"
        ));
    }

    fn entry(kind: ActivityKind, url: &str, verdict: &str) -> ActivityEntry {
        ActivityEntry {
            at_ms: 7,
            kind,
            url: url.into(),
            domain: "a.example".into(),
            status: Some(200),
            bytes: 9,
            verdict: verdict.into(),
            detail: String::new(),
        }
    }

    fn outcome(outcome: &str, reason: Option<&str>, points: u64) -> PageOutcome {
        PageOutcome {
            outcome: outcome.into(),
            reason: reason.map(Into::into),
            points,
        }
    }

    #[test]
    fn fetched_pages_carry_their_outcome_and_nothing_else_does() {
        let url = "http://a.example/p";
        let outcomes = HashMap::from([(url.to_string(), outcome("rejected", Some("x,y"), 0))]);
        // The same URL as a page, a failed page, and a robots.txt request: only the page that
        // answered gets the record's outcome.
        let entries = [
            entry(ActivityKind::Page, url, "ok"),
            entry(ActivityKind::Page, url, "timeout"),
            entry(ActivityKind::Robots, url, "ok"),
            // An older fetch of the same page: its record, if any, was not the newest.
            entry(ActivityKind::Page, url, "ok"),
        ];
        let mut csv = Vec::new();
        write_entries(&entries, &outcomes, ExportFormat::Csv, &mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert!(
            lines[1].ends_with(",ok,,rejected,\"x,y\",0"),
            "{}",
            lines[1]
        );
        assert!(lines[2].ends_with(",timeout,,,,"), "{}", lines[2]);
        assert!(lines[3].ends_with(",ok,,,,"), "{}", lines[3]);
        assert!(lines[4].ends_with(",ok,,,,"), "{}", lines[4]);

        let mut jsonl = Vec::new();
        write_entries(&entries, &outcomes, ExportFormat::Jsonl, &mut jsonl).unwrap();
        let rows: Vec<serde_json::Value> = String::from_utf8(jsonl)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows[0]["outcome"]["outcome"], "rejected");
        assert_eq!(rows[0]["outcome"]["reason"], "x,y");
        assert_eq!(rows[0]["verdict"], "ok");
        assert!(rows[1].get("outcome").is_none());
        assert!(rows[2].get("outcome").is_none());
        assert!(rows[3].get("outcome").is_none());
        // A row still reads back as an entry.
        let back: ActivityEntry = serde_json::from_value(rows[0].clone()).unwrap();
        assert_eq!(back, entries[0]);
    }

    #[test]
    fn outcomes_read_as_a_person_would_say_them() {
        assert_eq!(
            outcome("accepted", Some("ok"), 12).to_string(),
            "accepted +12"
        );
        assert_eq!(outcome("queued", None, 0).to_string(), "queued");
        assert_eq!(
            outcome("duplicate", Some("near_duplicate"), 0).to_string(),
            "duplicate"
        );
        assert_eq!(
            outcome("rejected", Some("gopher_word_count"), 0).to_string(),
            "rejected: gopher_word_count"
        );
        assert_eq!(
            outcome("revoked", Some("cross_check_failed"), 0).to_string(),
            "revoked: cross_check_failed"
        );
    }
}
