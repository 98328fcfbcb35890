//! The activity log: every request made on the user's connection (pages and robots.txt) and
//! every URL refused before a request, with time, URL, status, bytes and verdict. Kept for a
//! configurable number of days, queryable and exportable as JSON Lines or CSV.

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

/// Columns of the CSV export, in order.
pub const CSV_HEADER: &str = "at_ms,kind,url,domain,status,bytes,verdict,detail";

/// Writes entries as JSON Lines or CSV (RFC 4180 quoting).
pub fn write_entries(
    entries: &[ActivityEntry],
    format: ExportFormat,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        ExportFormat::Jsonl => {
            for e in entries {
                serde_json::to_writer(&mut *out, e)?;
                out.write_all(b"\n")?;
            }
        }
        ExportFormat::Csv => {
            writeln!(out, "{CSV_HEADER}")?;
            for e in entries {
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{}",
                    e.at_ms,
                    e.kind.as_str(),
                    csv_field(&e.url),
                    csv_field(&e.domain),
                    e.status.map(|s| s.to_string()).unwrap_or_default(),
                    e.bytes,
                    csv_field(&e.verdict),
                    csv_field(&e.detail)
                )?;
            }
        }
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    // A leading =,+,-,@ would be a formula in spreadsheets; prefix with a quote mark.
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
        write_entries(&[e], ExportFormat::Csv, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.ends_with(
            "1,page,\"http://a.example/?q=1,2\",a.example,200,5,ok,\"say \"\"hi\"\"\"\n"
        ));
    }
}
