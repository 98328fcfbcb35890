//! Gleaner's desktop tray app: a thin Tauri shell over the node.
//!
//! Layers: `commands` (a few lines each) and the tray menu call the feature functions on
//! [`state::AppState`], which drive a [`node::NodeApi`]. `events` pushes the node's events to the
//! window, the tray and notifications. The dashboard itself is `ui/` (TypeScript).

pub mod commands;
pub mod error;
pub mod events;
pub mod model;
pub mod node;
pub mod state;
#[cfg(target_os = "linux")]
pub mod system;
pub mod tray;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tauri::{App, AppHandle, Manager, RunEvent, Runtime};
use tauri_plugin_autostart::{MacosLauncher, ManagerExt};

use crate::node::collector::CollectorNode;
use crate::state::AppState;

/// The dashboard window's label (see `tauri.conf.json`).
pub const MAIN_WINDOW: &str = "main";
/// Start in the tray without opening the window (passed by start-at-login).
pub const HIDDEN_ARG: &str = "--hidden";
/// Overrides where the app keeps its files (tests use a temporary folder).
pub const DIR_ENV: &str = "GLEANER_APP_DIR";
/// How long Quit waits for the node to release its leases and submit what it has; whatever is
/// left stays queued on disk for the next start.
pub const QUIT_GRACE: Duration = Duration::from_secs(3);

/// Environment for WebKitGTK that `main` sets for the app and its WebKit processes (unless the
/// user set it). Measured with `src-tauri/scripts/bench.sh`; see the README's figures.
///
/// `WEBKIT_DISABLE_COMPOSITING_MODE`: the dashboard is a static page (a few panels and one small
/// canvas) that gains nothing from GPU compositing, and compositing costs the web process ~90 MiB
/// (its layers and GL buffers) and two thirds of the window's idle CPU.
///
/// `JSC_useJIT=false`: JavaScriptCore interprets instead of compiling; the dashboard runs little
/// script (one render a second at most), and the JIT's code and data cost the web process ~8 MiB.
pub const WEBVIEW_ENV: &[(&str, &str)] = &[
    ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
    ("JSC_useJIT", "false"),
];

/// The variables of [`WEBVIEW_ENV`] that `main` sets: those the user has not set. `is_set` tells
/// whether a variable is in the environment (a parameter, so the tests need not change the real
/// environment).
pub fn webview_env_to_set(
    is_set: impl Fn(&str) -> bool,
) -> impl Iterator<Item = (&'static str, &'static str)> {
    WEBVIEW_ENV
        .iter()
        .copied()
        .filter(move |(name, _)| !is_set(name))
}

/// Quits the app after letting the node stop cleanly (at most [`QUIT_GRACE`]).
pub fn quit<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        if let Some(node) = app.try_state::<Arc<CollectorNode>>() {
            let node = node.inner().clone();
            node.stop(QUIT_GRACE).await;
        }
        app.exit(0);
    });
}

/// Registers the commands on `builder`; the rest of the wiring is in [`run`] (and in the tests).
pub fn with_commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        commands::status,
        commands::stats,
        commands::pause,
        commands::pause_for,
        commands::resume,
        commands::activity,
        commands::export_activity,
        commands::settings,
        commands::update_settings,
        commands::complete_onboarding,
        commands::export_key,
    ])
}

/// Shows, un-minimises and focuses the dashboard, creating it when it is not open.
///
/// The window exists only while it is open: closing it destroys the webview, so the app idles
/// in the tray without WebKit's web process (most of its memory).
pub fn show_main<R: Runtime>(app: &AppHandle<R>) {
    let shown = match app.get_webview_window(MAIN_WINDOW) {
        Some(window) => window
            .show()
            .and_then(|()| window.unminimize())
            .and_then(|()| window.set_focus()),
        None => match app
            .config()
            .app
            .windows
            .iter()
            .find(|w| w.label == MAIN_WINDOW)
        {
            Some(config) => tauri::WebviewWindowBuilder::from_config(app, config)
                .and_then(|b| b.build())
                .and_then(|w| w.set_focus()),
            None => Ok(()),
        },
    };
    if let Err(err) = shown {
        tracing::warn!(%err, "could not show the dashboard");
    }
}

/// Runs the app until the user quits from the tray.
pub fn run() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();

    let builder = tauri::Builder::default()
        // First: a second launch hands over to this one, which shows its window.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            show_main(app)
        }))
        .plugin(tauri_plugin_autostart::init(
            MacosLauncher::LaunchAgent,
            Some(vec![HIDDEN_ARG]),
        ))
        .plugin(tauri_plugin_notification::init())
        .setup(|app| setup(app).map_err(Into::into));
    let app = match with_commands(builder).build(tauri::generate_context!()) {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(%err, "the app could not start");
            std::process::exit(1);
        }
    };
    app.run(|_app, event| {
        // Only an explicit exit (Quit) ends the app; closing the window keeps it in the tray.
        if let RunEvent::ExitRequested {
            code: None, api, ..
        } = event
        {
            api.prevent_exit();
        }
    });
}

/// Where the app keeps its files: `$GLEANER_APP_DIR`, else the platform's data folder.
fn app_dir<R: Runtime>(app: &App<R>) -> Result<PathBuf, error::AppError> {
    if let Some(dir) = std::env::var_os(DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    app.path()
        .app_data_dir()
        .map_err(|e| error::AppError::Node(format!("no data folder: {e}")))
}

fn setup(app: &mut App) -> Result<(), error::AppError> {
    let dir = app_dir(app)?;
    tracing::info!(dir = %dir.display(), "starting");
    let node = Arc::new(CollectorNode::open(
        &dir.join("config.toml"),
        &dir.join("node"),
    )?);
    node.start();
    app.manage(node.clone());
    // "Only when idle" and "pause on metered networks" need the desktop's answers.
    #[cfg(target_os = "linux")]
    system::spawn(node.clone());
    let export_dir = app
        .path()
        .download_dir()
        .unwrap_or_else(|_| dir.join("exports"));
    let handle = app.handle().clone();
    let login: state::LoginHook = Box::new(move |on| {
        let launcher = handle.autolaunch();
        if on {
            launcher.enable()
        } else {
            launcher.disable()
        }
        .map_err(|e| e.to_string())
    });
    let state = AppState::new(node, dir.join("app.json"), export_dir, login)?;
    let status = state.status();
    app.manage(state);
    // Without a tray host (no session bus) the app still runs, window only.
    if let Err(err) = tray::create(app.handle(), &status) {
        tracing::warn!(%err, "no tray icon");
    }
    events::spawn(app.handle());
    if !std::env::args().any(|a| a == HIDDEN_ARG) {
        show_main(app.handle());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webview_env_sets_every_variable_in_a_clean_environment() {
        let set: Vec<_> = webview_env_to_set(|_| false).collect();
        assert_eq!(set, WEBVIEW_ENV);
    }

    #[test]
    fn webview_env_keeps_what_the_user_set() {
        let user = WEBVIEW_ENV[0].0;
        let set: Vec<_> = webview_env_to_set(|name| name == user).collect();
        assert!(set.iter().all(|(name, _)| *name != user));
        assert_eq!(set.len(), WEBVIEW_ENV.len() - 1);
        assert_eq!(webview_env_to_set(|_| true).count(), 0);
    }

    #[test]
    fn webview_env_names_are_unique() {
        let mut names: Vec<_> = WEBVIEW_ENV.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), WEBVIEW_ENV.len());
    }
}
