//! Prometheus metrics in the text exposition format (version 0.0.4), from plain atomic counters:
//! the handful of series the validator exports do not justify a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the batch-ingest latency histogram.
const INGEST_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Counters and one histogram.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<String, u64>>,
    ingest_buckets: [AtomicU64; INGEST_BUCKETS.len()],
    ingest_count: AtomicU64,
    ingest_sum_micros: AtomicU64,
}

impl Metrics {
    /// Adds `by` to the counter `name{labels}` (labels already formatted, e.g. `code="ok"`).
    pub fn add(&self, name: &str, labels: &str, by: u64) {
        let key = if labels.is_empty() {
            name.to_string()
        } else {
            format!("{name}{{{labels}}}")
        };
        if let Ok(mut c) = self.counters.lock() {
            *c.entry(key).or_insert(0) += by;
        }
    }

    /// Records one batch ingest duration.
    pub fn observe_ingest(&self, seconds: f64) {
        for (i, le) in INGEST_BUCKETS.iter().enumerate() {
            if seconds <= *le {
                self.ingest_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.ingest_count.fetch_add(1, Ordering::Relaxed);
        self.ingest_sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The exposition text, with `gauges` appended.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let counters = self.counters.lock().map(|c| c.clone()).unwrap_or_default();
        let mut last = "";
        for (key, v) in &counters {
            let name = key.split('{').next().unwrap_or(key);
            if name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
            }
            let _ = writeln!(out, "{key} {v}");
            last = name;
        }
        let _ = writeln!(
            out,
            "# HELP gleaner_ingest_seconds Time to verify and store one batch."
        );
        let _ = writeln!(out, "# TYPE gleaner_ingest_seconds histogram");
        for (i, le) in INGEST_BUCKETS.iter().enumerate() {
            let n = self.ingest_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "gleaner_ingest_seconds_bucket{{le=\"{le}\"}} {n}");
        }
        let count = self.ingest_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "gleaner_ingest_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.ingest_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "gleaner_ingest_seconds_sum {sum}");
        let _ = writeln!(out, "gleaner_ingest_seconds_count {count}");
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {v}");
        }
        out
    }
}
