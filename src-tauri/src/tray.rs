//! The tray icon and its menu. The menu calls the same feature functions as the commands; the icon
//! and labels follow the node's events (see `events.rs`), never the clicks directly.

use std::sync::Mutex;

use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Runtime};

use crate::model::{NodeState, Stats, Status};
use crate::state::AppState;

/// The tray's id (its D-Bus object is `/org/ayatana/NotificationItem/<id>`).
pub const TRAY_ID: &str = "gleaner";
/// Length of the tray's timed pause.
pub const PAUSE_MINUTES: u32 = 60;

/// Menu item ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuId {
    Status,
    Toggle,
    PauseHour,
    Today,
    Open,
    Quit,
}

impl MenuId {
    pub const ALL: [MenuId; 6] = [
        MenuId::Status,
        MenuId::Toggle,
        MenuId::PauseHour,
        MenuId::Today,
        MenuId::Open,
        MenuId::Quit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MenuId::Status => "status",
            MenuId::Toggle => "toggle",
            MenuId::PauseHour => "pause_hour",
            MenuId::Today => "today",
            MenuId::Open => "open",
            MenuId::Quit => "quit",
        }
    }

    pub fn parse(id: &str) -> Option<MenuId> {
        MenuId::ALL.into_iter().find(|m| m.as_str() == id)
    }
}

/// The tray's handles, managed so events can update it.
pub struct TrayUi<R: Runtime> {
    tray: TrayIcon<R>,
    status: MenuItem<R>,
    toggle: MenuItem<R>,
    pause_hour: MenuItem<R>,
    today: MenuItem<R>,
    shown: Mutex<Option<NodeState>>,
}

fn icon(state: NodeState) -> tauri::Result<Image<'static>> {
    Image::from_bytes(match state {
        NodeState::Sharing => include_bytes!("../icons/tray/sharing.png"),
        NodeState::Paused => include_bytes!("../icons/tray/paused.png"),
        NodeState::Capped => include_bytes!("../icons/tray/capped.png"),
        NodeState::Offline => include_bytes!("../icons/tray/offline.png"),
        NodeState::Error => include_bytes!("../icons/tray/error.png"),
    })
}

/// Creates the tray from the current status and manages its handles.
pub fn create<R: Runtime>(app: &AppHandle<R>, status: &Status) -> tauri::Result<()> {
    let item = |id: MenuId, text: &str, enabled: bool| {
        MenuItem::with_id(app, id.as_str(), text, enabled, None::<&str>)
    };
    let status_item = item(MenuId::Status, status.node.state.label(), false)?;
    let toggle = item(MenuId::Toggle, toggle_label(status.node.state), true)?;
    let pause_hour = item(
        MenuId::PauseHour,
        "Pause for 1 hour",
        status.node.state.wants_to_share(),
    )?;
    let today = item(MenuId::Today, "Today: 0 B · 0 points", false)?;
    let open = item(MenuId::Open, "Open dashboard", true)?;
    let quit = item(MenuId::Quit, "Quit", true)?;
    let menu = Menu::with_items(
        app,
        &[
            &status_item,
            &toggle,
            &pause_hour,
            &PredefinedMenuItem::separator(app)?,
            &today,
            &PredefinedMenuItem::separator(app)?,
            &open,
            &quit,
        ],
    )?;
    let tray = TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(status.node.state)?)
        .tooltip(format!("Gleaner: {}", status.node.state.label()))
        .menu(&menu)
        .on_menu_event(|app, event| on_menu(app, event.id().as_ref()))
        .build(app)?;
    app.manage(TrayUi {
        tray,
        status: status_item,
        toggle,
        pause_hour,
        today,
        shown: Mutex::new(Some(status.node.state)),
    });
    Ok(())
}

fn toggle_label(state: NodeState) -> &'static str {
    if state.wants_to_share() {
        "Pause sharing"
    } else {
        "Resume sharing"
    }
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let Some(id) = MenuId::parse(id) else {
        return;
    };
    tracing::info!(item = id.as_str(), "tray menu");
    let state = app.state::<AppState>();
    let result = match id {
        MenuId::Toggle => state.toggle().map(drop),
        MenuId::PauseHour => state.pause_for_minutes(PAUSE_MINUTES).map(drop),
        MenuId::Open => {
            crate::show_main(app);
            Ok(())
        }
        MenuId::Quit => {
            crate::quit(app);
            Ok(())
        }
        MenuId::Status | MenuId::Today => Ok(()),
    };
    if let Err(err) = result {
        tracing::warn!(code = err.code(), %err, "tray action failed");
    }
}

/// Brings the icon and labels in line with `status` (no-op without a tray).
pub fn show_status<R: Runtime>(app: &AppHandle<R>, status: &Status) {
    let Some(ui) = app.try_state::<TrayUi<R>>() else {
        return;
    };
    let state = status.node.state;
    let result = (|| -> tauri::Result<()> {
        let mut shown = ui.shown.lock().unwrap_or_else(|p| p.into_inner());
        if *shown != Some(state) {
            ui.tray.set_icon(Some(icon(state)?))?;
            ui.tray
                .set_tooltip(Some(format!("Gleaner: {}", state.label())))?;
            *shown = Some(state);
        }
        ui.status
            .set_text(status.node.detail.as_deref().unwrap_or(state.label()))?;
        ui.toggle.set_text(toggle_label(state))?;
        ui.pause_hour.set_enabled(state.wants_to_share())?;
        Ok(())
    })();
    if let Err(err) = result {
        tracing::warn!(%err, "could not update the tray");
    }
}

/// Updates the "today" line (no-op without a tray).
pub fn show_today<R: Runtime>(app: &AppHandle<R>, stats: &Stats) {
    if let Some(ui) = app.try_state::<TrayUi<R>>()
        && let Err(err) = ui.today.set_text(today_line(stats))
    {
        tracing::warn!(%err, "could not update the tray");
    }
}

/// The tray's "today" line: today's traffic, and the points the validators stand by (credited
/// by receipts, less what revocations took back; the open epoch's receipts are among them).
/// Validators' numbers may be anything, so nothing here can overflow.
fn today_line(stats: &Stats) -> String {
    format!(
        "Today: {} · {} points",
        format_bytes(stats.bandwidth.today_bytes),
        stats
            .points
            .credited
            .saturating_sub(stats.points.taken_back)
    )
}

/// 1536 → "1.5 KB", as the dashboard writes it.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 {
        format!("{} {}", value.round(), UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menu_ids_round_trip() {
        for id in MenuId::ALL {
            assert_eq!(MenuId::parse(id.as_str()), Some(id));
        }
        assert_eq!(MenuId::parse("nope"), None);
    }

    #[test]
    fn the_today_line_counts_what_validators_stand_by() {
        let mut stats = Stats::default();
        stats.bandwidth.today_bytes = 1536;
        stats.points.credited = 10_930;
        stats.points.taken_back = 23;
        stats.points.pending = 412;
        assert_eq!(today_line(&stats), "Today: 1.5 KB · 10907 points");
        stats.points.credited = u64::MAX;
        stats.points.pending = u64::MAX;
        stats.points.taken_back = 0;
        assert_eq!(
            today_line(&stats),
            format!("Today: 1.5 KB · {} points", u64::MAX)
        );
    }

    #[test]
    fn bytes_read_like_the_dashboard() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1536), "1.5 KB");
        assert_eq!(format_bytes(734 * 1024 * 1024), "734 MB");
    }
}
