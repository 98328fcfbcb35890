//! The event pump: node events and a once-a-second tick become window events, tray updates and
//! notifications.

use std::time::Duration;

use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::broadcast::error::RecvError;

use crate::node::NodeEvent;
use crate::state::AppState;

/// Event names; keep in step with `EVENTS` in `ui/src/bridge.ts`.
pub const STATUS: &str = "gleaner://status";
pub const STATS: &str = "gleaner://stats";
pub const ACTIVITY: &str = "gleaner://activity";

/// How often stats are pushed while the window is open: smooth enough for the live chart.
const TICK: Duration = Duration::from_secs(1);
/// The tray's "today" line is refreshed every this many ticks: nobody reads it by the second.
const TRAY_EVERY: u64 = 10;

/// Starts the pump on Tauri's async runtime. Needs `AppState` managed.
pub fn spawn<R: Runtime>(app: &AppHandle<R>) {
    let mut events = app.state::<AppState>().node().subscribe();
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => on_node_event(&handle, event),
                Err(RecvError::Lagged(n)) => tracing::debug!(skipped = n, "event pump lagged"),
                Err(RecvError::Closed) => break,
            }
        }
    });
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut n: u64 = 0;
        loop {
            interval.tick().await;
            tick(&handle, n);
            n = n.wrapping_add(1);
        }
    });
}

fn window_visible<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.get_webview_window(crate::MAIN_WINDOW)
        .and_then(|w| w.is_visible().ok())
        .unwrap_or(false)
}

fn tick<R: Runtime>(app: &AppHandle<R>, n: u64) {
    let state = app.state::<AppState>();
    // Reading the status also ends a timed pause whose time has come (that emits an event).
    let _ = state.node().status();
    let visible = window_visible(app);
    if !visible && !n.is_multiple_of(TRAY_EVERY) {
        return;
    }
    match state.node().stats() {
        Ok(stats) => {
            if visible {
                emit(app, STATS, &stats);
            }
            if n.is_multiple_of(TRAY_EVERY) {
                crate::tray::show_today(app, &stats);
            }
        }
        Err(err) => tracing::warn!(code = err.code(), %err, "stats unavailable"),
    }
}

fn emit<R: Runtime, T: serde::Serialize + Clone>(app: &AppHandle<R>, event: &str, payload: &T) {
    if let Err(err) = app.emit(event, payload.clone()) {
        tracing::warn!(event, %err, "could not emit");
    }
}

fn on_node_event<R: Runtime>(app: &AppHandle<R>, event: NodeEvent) {
    let state = app.state::<AppState>();
    match event {
        NodeEvent::Status(_) => {
            let status = state.status();
            crate::tray::show_status(app, &status);
            emit(app, STATUS, &status);
        }
        NodeEvent::Activity => emit(app, ACTIVITY, &()),
        NodeEvent::PointsCredited { accepted, points } => {
            emit(app, ACTIVITY, &());
            notify(
                app,
                "Points credited",
                &format!("{points} points for {accepted} accepted pages."),
            );
        }
        NodeEvent::Revoked { pages, points } => {
            emit(app, ACTIVITY, &());
            notify(app, "Pages revoked", &revoked_message(pages, points));
        }
        NodeEvent::ValidatorUnreachable { url, error } => notify(
            app,
            "Validator unreachable",
            &format!("{url} does not answer ({error}). Gleaner keeps trying."),
        ),
        NodeEvent::CapReached { detail } => {
            let status = state.status();
            crate::tray::show_status(app, &status);
            emit(app, STATUS, &status);
            notify(app, "Sharing paused by your cap", &detail);
        }
    }
}

/// A desktop notification, if the user wants them and the plugin is there.
fn notify<R: Runtime>(app: &AppHandle<R>, title: &str, body: &str) {
    if !app.state::<AppState>().app_prefs().notifications {
        return;
    }
    let Some(n) = app.try_state::<tauri_plugin_notification::Notification<R>>() else {
        return;
    };
    if let Err(err) = n.builder().title(title).body(body).show() {
        tracing::warn!(%err, "notification failed");
    }
}

/// The notification's text when a validator revokes `pages` of this node's accepted pages.
fn revoked_message(pages: u64, points: u64) -> String {
    let what = match pages {
        1 => "1 accepted page was".to_string(),
        n => format!("{n} accepted pages were"),
    };
    format!("{what} revoked by a validator's later check; {points} points were taken back.")
}

#[cfg(test)]
mod tests {
    use super::revoked_message;

    #[test]
    fn a_revocation_is_told_in_words() {
        assert_eq!(
            revoked_message(1, 12),
            "1 accepted page was revoked by a validator's later check; 12 points were taken back."
        );
        assert_eq!(
            revoked_message(3, 0),
            "3 accepted pages were revoked by a validator's later check; 0 points were taken back."
        );
    }
}
