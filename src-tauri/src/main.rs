//! The Gleaner desktop app: everything is in the library.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    gleaner_app::run();
}
