//! Prometheus metrics in the text exposition format (version 0.0.4), from plain atomic counters:
//! the handful of series the validator exports do not justify a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the latency histograms.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// A latency histogram over [`BUCKETS`].
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, seconds: f64) {
        for (bucket, le) in self.buckets.iter().zip(BUCKETS) {
            if seconds <= le {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (bucket, le) in self.buckets.iter().zip(BUCKETS) {
            let n = bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {n}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Counters and two histograms.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<String, u64>>,
    ingest: Histogram,
    writer_wait: Histogram,
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
        self.ingest.observe(seconds);
    }

    /// Records how long one write waited in the store writer's queue before its group ran it.
    pub fn observe_writer_wait(&self, seconds: f64) {
        self.writer_wait.observe(seconds);
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
        self.ingest.render(
            &mut out,
            "gleaner_ingest_seconds",
            "Time to verify and store one batch.",
        );
        self.writer_wait.render(
            &mut out,
            "gleaner_writer_wait_seconds",
            "Time a write (batch, lease, report, release, registration) waited for the store \
             writer to start it: the rest of the group before it, with that group's commit.",
        );
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {v}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_named() {
        let m = Metrics::default();
        m.observe_writer_wait(0.002);
        m.observe_writer_wait(0.3);
        m.observe_ingest(2.0);
        let text = m.render(&[]);
        for line in [
            "# TYPE gleaner_writer_wait_seconds histogram",
            "gleaner_writer_wait_seconds_bucket{le=\"0.001\"} 0",
            "gleaner_writer_wait_seconds_bucket{le=\"0.0025\"} 1",
            "gleaner_writer_wait_seconds_bucket{le=\"0.25\"} 1",
            "gleaner_writer_wait_seconds_bucket{le=\"0.5\"} 2",
            "gleaner_writer_wait_seconds_bucket{le=\"+Inf\"} 2",
            "gleaner_writer_wait_seconds_sum 0.302",
            "gleaner_writer_wait_seconds_count 2",
            "gleaner_ingest_seconds_bucket{le=\"1\"} 0",
            "gleaner_ingest_seconds_bucket{le=\"+Inf\"} 1",
            "gleaner_ingest_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
    }
}
