//! Gleaner node library.
//!
//! Everything the node does lives here; the `gleaner` binary and the desktop app are thin shells
//! over it.

pub mod clean;
