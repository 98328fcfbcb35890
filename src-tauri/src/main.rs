//! The Gleaner desktop app: everything is in the library.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    webview_environment();
    gleaner_app::run();
}

/// Settings WebKitGTK reads from the environment, for this process and the web and network
/// processes it starts. Set first thing in `main`, before any thread exists (the only time
/// changing the environment is sound) and before GTK starts. A variable the user has set is kept.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn webview_environment() {
    for (name, value) in gleaner_app::webview_env_to_set(|name| std::env::var_os(name).is_some()) {
        // SAFETY: `main` calls this before anything else: no other thread exists yet that could
        // read the environment concurrently.
        unsafe { std::env::set_var(name, value) };
    }
}

#[cfg(not(target_os = "linux"))]
fn webview_environment() {}
