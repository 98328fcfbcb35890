//! The resource governor: a bandwidth ceiling (token bucket), daily and monthly byte caps, pause
//! and resume (also for a duration), a weekly schedule, and the desktop app's idle-only and
//! metered-network hooks. The node asks [`Governor::gate`] before each job and calls
//! [`Governor::throttle`] for every chunk received.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

/// Window over which "bandwidth now" is averaged.
pub const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Smallest token bucket: a ceiling below one chunk per second would stall every read.
const MIN_BURST_BYTES: f64 = 16.0 * 1024.0;

/// A weekly window during which sharing is allowed. Times are minutes after midnight in the
/// schedule's time zone; `end <= start` wraps past midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// ISO weekdays, 1 = Monday … 7 = Sunday; empty means every day.
    #[serde(default)]
    pub days: Vec<u8>,
    /// `"HH:MM"`.
    pub start: String,
    /// `"HH:MM"`.
    pub end: String,
}

/// When sharing is allowed. No windows means always.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schedule {
    pub windows: Vec<Window>,
    /// Offset of the schedule's local time from UTC, in minutes (the app fills in the user's).
    #[serde(default)]
    pub utc_offset_minutes: i32,
}

fn hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
}

impl Schedule {
    /// Checks that every window parses.
    pub fn validate(&self) -> Result<(), String> {
        for w in &self.windows {
            if hhmm(&w.start).is_none() || hhmm(&w.end).is_none() {
                return Err(format!("bad time in window {}–{}", w.start, w.end));
            }
            if w.days.iter().any(|d| !(1..=7).contains(d)) {
                return Err("weekdays are 1 (Monday) to 7 (Sunday)".into());
            }
        }
        Ok(())
    }

    /// Whether `now_ms` (Unix ms UTC) falls in a window.
    pub fn allows(&self, now_ms: i64) -> bool {
        if self.windows.is_empty() {
            return true;
        }
        let local_min = now_ms.div_euclid(60_000) + i64::from(self.utc_offset_minutes);
        let minute = local_min.rem_euclid(24 * 60) as u32;
        let day_index = local_min.div_euclid(24 * 60); // days since 1970-01-01 (a Thursday)
        let weekday = |d: i64| ((d + 3).rem_euclid(7) + 1) as u8; // ISO: Monday = 1
        let today = weekday(day_index);
        let yesterday = weekday(day_index - 1);
        self.windows.iter().any(|w| {
            let (Some(s), Some(e)) = (hhmm(&w.start), hhmm(&w.end)) else {
                return false;
            };
            let on = |d: u8| w.days.is_empty() || w.days.contains(&d);
            if s < e {
                on(today) && minute >= s && minute < e
            } else {
                (on(today) && minute >= s) || (on(yesterday) && minute < e)
            }
        })
    }
}

/// The user's resource limits (part of [`crate::config::NodeConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Download ceiling in bytes per second.
    pub bandwidth_bytes_per_sec: Option<u64>,
    /// Bytes per calendar day (UTC).
    pub daily_bytes: Option<u64>,
    /// Bytes per calendar month (UTC).
    pub monthly_bytes: Option<u64>,
    pub schedule: Schedule,
    /// Share only while the computer is idle (the app reports idleness with `set_idle`).
    pub only_when_idle: bool,
    /// Pause while the network is metered (the app reports it with `set_metered`).
    pub pause_on_metered: bool,
}

impl Default for Limits {
    /// No caps, any time; pause on metered networks (a phone's hotspot is not idle bandwidth).
    fn default() -> Self {
        Limits {
            bandwidth_bytes_per_sec: None,
            daily_bytes: None,
            monthly_bytes: None,
            schedule: Schedule::default(),
            only_when_idle: false,
            pause_on_metered: true,
        }
    }
}

/// Which cap was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cap {
    Daily,
    Monthly,
}

/// Whether the governor lets work start now, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "gate", rename_all = "snake_case")]
pub enum Gate {
    Open,
    /// Paused by the user; `until_ms` when paused for a duration.
    Paused {
        until_ms: Option<i64>,
    },
    Capped {
        cap: Cap,
    },
    OutsideSchedule,
    WaitingForIdle,
    Metered,
}

#[derive(Debug)]
struct State {
    limits: Limits,
    paused: bool,
    pause_until: Option<(Instant, i64)>,
    idle: bool,
    metered: bool,
    tokens: f64,
    refilled: Instant,
    day: (i64, u64),
    month: (i64, u64),
    recent: VecDeque<(Instant, u64)>,
}

/// Shared governor. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Governor {
    state: Arc<Mutex<State>>,
    changed: Arc<watch::Sender<u64>>,
}

/// Day number (UTC) of a Unix ms time.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(86_400_000)
}

/// Month number (UTC, `year * 12 + month0`) of a Unix ms time.
pub fn month_of(ms: i64) -> i64 {
    match time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(t) => i64::from(t.year()) * 12 + i64::from(u8::from(t.month())) - 1,
        Err(_) => 0,
    }
}

impl Governor {
    /// `used_today` and `used_month`: bytes already used (from the store) at `now_ms`.
    pub fn new(limits: Limits, now_ms: i64, used_today: u64, used_month: u64) -> Self {
        let (tx, _) = watch::channel(0);
        Governor {
            state: Arc::new(Mutex::new(State {
                limits,
                paused: false,
                pause_until: None,
                idle: false,
                metered: false,
                tokens: 0.0,
                refilled: Instant::now(),
                day: (day_of(now_ms), used_today),
                month: (month_of(now_ms), used_month),
                recent: VecDeque::new(),
            })),
            changed: Arc::new(tx),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> Option<R> {
        let mut g = self.state.lock().ok()?;
        Some(f(&mut g))
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver that changes whenever pause, limits, idle or metered state change.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn limits(&self) -> Limits {
        self.with(|s| s.limits.clone()).unwrap_or_default()
    }

    pub fn set_limits(&self, limits: Limits) {
        self.with(|s| s.limits = limits);
        self.notify();
    }

    pub fn pause(&self) {
        self.with(|s| {
            s.paused = true;
            s.pause_until = None;
        });
        self.notify();
    }

    /// Pauses for `d`, then resumes by itself.
    pub fn pause_for(&self, d: Duration, now_ms: i64) {
        let until_ms = now_ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.with(|s| {
            s.paused = true;
            s.pause_until = Some((Instant::now() + d, until_ms));
        });
        self.notify();
    }

    pub fn resume(&self) {
        self.with(|s| {
            s.paused = false;
            s.pause_until = None;
        });
        self.notify();
    }

    /// The app reports whether the computer is idle.
    pub fn set_idle(&self, idle: bool) {
        self.with(|s| s.idle = idle);
        self.notify();
    }

    /// The app reports whether the network is metered.
    pub fn set_metered(&self, metered: bool) {
        self.with(|s| s.metered = metered);
        self.notify();
    }

    /// Whether work may start at `now_ms`.
    pub fn gate(&self, now_ms: i64) -> Gate {
        self.with(|s| {
            if let Some((until, _)) = s.pause_until
                && Instant::now() >= until
            {
                s.paused = false;
                s.pause_until = None;
            }
            if s.paused {
                return Gate::Paused {
                    until_ms: s.pause_until.map(|(_, ms)| ms),
                };
            }
            roll(s, now_ms);
            if s.limits.daily_bytes.is_some_and(|cap| s.day.1 >= cap) {
                return Gate::Capped { cap: Cap::Daily };
            }
            if s.limits.monthly_bytes.is_some_and(|cap| s.month.1 >= cap) {
                return Gate::Capped { cap: Cap::Monthly };
            }
            if !s.limits.schedule.allows(now_ms) {
                return Gate::OutsideSchedule;
            }
            if s.limits.pause_on_metered && s.metered {
                return Gate::Metered;
            }
            if s.limits.only_when_idle && !s.idle {
                return Gate::WaitingForIdle;
            }
            Gate::Open
        })
        .unwrap_or(Gate::Paused { until_ms: None })
    }

    /// Counts `n` bytes against the caps and waits as long as the bandwidth ceiling requires.
    pub async fn throttle(&self, n: u64, now_ms: i64) {
        let wait = self
            .with(|s| {
                roll(s, now_ms);
                s.day.1 = s.day.1.saturating_add(n);
                s.month.1 = s.month.1.saturating_add(n);
                let now = Instant::now();
                s.recent.push_back((now, n));
                while s
                    .recent
                    .front()
                    .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
                {
                    s.recent.pop_front();
                }
                let rate = s.limits.bandwidth_bytes_per_sec?;
                if rate == 0 {
                    return None;
                }
                let rate = rate as f64;
                let burst = rate.max(MIN_BURST_BYTES);
                let elapsed = now.duration_since(s.refilled).as_secs_f64();
                s.refilled = now;
                s.tokens = (s.tokens + elapsed * rate).min(burst) - n as f64;
                (s.tokens < 0.0).then(|| Duration::from_secs_f64(-s.tokens / rate))
            })
            .flatten();
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }

    /// Bytes per second over the last [`RATE_WINDOW`].
    pub fn rate_now(&self) -> u64 {
        self.with(|s| {
            let now = Instant::now();
            let sum: u64 = s
                .recent
                .iter()
                .filter(|(t, _)| now.duration_since(*t) <= RATE_WINDOW)
                .map(|(_, n)| n)
                .sum();
            sum / RATE_WINDOW.as_secs().max(1)
        })
        .unwrap_or(0)
    }

    /// Bytes used today and this month (UTC).
    pub fn used(&self, now_ms: i64) -> (u64, u64) {
        self.with(|s| {
            roll(s, now_ms);
            (s.day.1, s.month.1)
        })
        .unwrap_or((0, 0))
    }
}

fn roll(s: &mut State, now_ms: i64) {
    let d = day_of(now_ms);
    if d != s.day.0 {
        s.day = (d, 0);
    }
    let m = month_of(now_ms);
    if m != s.month.0 {
        s.month = (m, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-24T12:00:00Z, a Tuesday.
    const NOON: i64 = 1_795_521_600_000;

    fn limits() -> Limits {
        Limits::default()
    }

    #[tokio::test(start_paused = true)]
    async fn bandwidth_ceiling_is_a_token_bucket() {
        let g = Governor::new(
            Limits {
                bandwidth_bytes_per_sec: Some(100_000),
                ..limits()
            },
            NOON,
            0,
            0,
        );
        let t0 = Instant::now();
        // 1 MB in 16 KB chunks at 100 KB/s: about 10 s of (virtual) time.
        for _ in 0..64 {
            g.throttle(16_384, NOON).await;
        }
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(9_400) && took <= Duration::from_millis(10_600),
            "{took:?}"
        );
        assert_eq!(g.used(NOON), (64 * 16_384, 64 * 16_384));
        // Without a ceiling nothing waits.
        let free = Governor::new(limits(), NOON, 0, 0);
        let t1 = Instant::now();
        free.throttle(50_000_000, NOON).await;
        assert_eq!(t1.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn pause_for_expires_by_itself() {
        let g = Governor::new(limits(), NOON, 0, 0);
        assert_eq!(g.gate(NOON), Gate::Open);
        g.pause();
        assert_eq!(g.gate(NOON), Gate::Paused { until_ms: None });
        g.resume();
        assert_eq!(g.gate(NOON), Gate::Open);
        let rx = g.watch();
        g.pause_for(Duration::from_secs(600), NOON);
        assert!(rx.has_changed().unwrap());
        assert_eq!(
            g.gate(NOON),
            Gate::Paused {
                until_ms: Some(NOON + 600_000)
            }
        );
        tokio::time::advance(Duration::from_secs(599)).await;
        assert!(matches!(g.gate(NOON), Gate::Paused { .. }));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(g.gate(NOON), Gate::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn daily_and_monthly_caps_reset_on_new_periods() {
        let g = Governor::new(
            Limits {
                daily_bytes: Some(1_000),
                monthly_bytes: Some(2_500),
                ..limits()
            },
            NOON,
            900,
            900,
        );
        assert_eq!(g.gate(NOON), Gate::Open);
        g.throttle(200, NOON).await;
        assert_eq!(g.gate(NOON), Gate::Capped { cap: Cap::Daily });
        let tomorrow = NOON + 86_400_000;
        assert_eq!(g.gate(tomorrow), Gate::Open);
        g.throttle(1_500, tomorrow).await;
        assert_eq!(g.gate(tomorrow), Gate::Capped { cap: Cap::Daily });
        let day_after = tomorrow + 86_400_000;
        assert_eq!(g.gate(day_after), Gate::Capped { cap: Cap::Monthly });
        let next_month = NOON + 8 * 86_400_000; // 2026-12-02
        assert_eq!(g.gate(next_month), Gate::Open);
    }

    #[test]
    fn schedule_windows() {
        let s = Schedule {
            windows: vec![
                Window {
                    days: vec![2],
                    start: "09:00".into(),
                    end: "17:00".into(),
                },
                Window {
                    days: vec![],
                    start: "22:00".into(),
                    end: "06:00".into(),
                },
            ],
            utc_offset_minutes: 0,
        };
        s.validate().unwrap();
        assert!(s.allows(NOON)); // Tuesday 12:00
        assert!(!s.allows(NOON + 86_400_000)); // Wednesday 12:00
        assert!(s.allows(NOON + 86_400_000 + 11 * 3_600_000)); // Wednesday 23:00
        assert!(s.allows(NOON + 2 * 86_400_000 - 7 * 3_600_000)); // Thursday 05:00
        // Same instant, two hours east: 14:00 local, still inside 09–17.
        let east = Schedule {
            utc_offset_minutes: 120,
            ..s.clone()
        };
        assert!(east.allows(NOON));
        assert!(!east.allows(NOON + 4 * 3_600_000)); // 18:00 local
        let bad = Schedule {
            windows: vec![Window {
                days: vec![9],
                start: "25:00".into(),
                end: "x".into(),
            }],
            utc_offset_minutes: 0,
        };
        assert!(bad.validate().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_metered_and_schedule_gates() {
        let g = Governor::new(
            Limits {
                only_when_idle: true,
                pause_on_metered: true,
                ..limits()
            },
            NOON,
            0,
            0,
        );
        assert_eq!(g.gate(NOON), Gate::WaitingForIdle);
        g.set_idle(true);
        assert_eq!(g.gate(NOON), Gate::Open);
        g.set_metered(true);
        assert_eq!(g.gate(NOON), Gate::Metered);
        g.set_metered(false);
        g.set_limits(Limits {
            schedule: Schedule {
                windows: vec![Window {
                    days: vec![],
                    start: "01:00".into(),
                    end: "02:00".into(),
                }],
                utc_offset_minutes: 0,
            },
            ..limits()
        });
        assert_eq!(g.gate(NOON), Gate::OutsideSchedule);
    }
}
