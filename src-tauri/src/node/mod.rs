//! What the app needs from a node, as one narrow trait.
//!
//! **API boundary:** the commands, the tray and the event pump see only [`NodeApi`]; only the
//! module that implements it, [`collector`], knows the node library. The trait also keeps the
//! commands testable without the library's background work.

pub mod collector;

use std::io::Write;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::error::AppError;
use crate::model::{ActivityPage, ActivityQuery, NodeSettings, NodeStatus, Stats};

/// A notable thing the node did, pushed to the window, the tray and notifications.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeEvent {
    /// The status changed (pause, resume, cap, network…).
    Status(NodeStatus),
    /// New requests were added to the activity log.
    Activity,
    /// A validator's receipt credited points.
    PointsCredited { accepted: u64, points: u64 },
    /// A validator revoked pages it had accepted; their points were taken back.
    Revoked { pages: u64, points: u64 },
    /// A validator stopped answering.
    ValidatorUnreachable { url: String, error: String },
    /// A cap the user set was reached; sharing paused.
    CapReached { detail: String },
}

/// The node as the app drives it. Calls are quick (no network I/O): they read or change the node's
/// state and return.
pub trait NodeApi: Send + Sync + 'static {
    fn status(&self) -> NodeStatus;
    fn stats(&self) -> Result<Stats, AppError>;
    fn pause(&self) -> Result<NodeStatus, AppError>;
    /// Pauses now; sharing resumes by itself after `duration`.
    fn pause_for(&self, duration: Duration) -> Result<NodeStatus, AppError>;
    fn resume(&self) -> Result<NodeStatus, AppError>;
    fn activity(&self, query: &ActivityQuery) -> Result<ActivityPage, AppError>;
    /// Writes every entry matching `query` (paging ignored) as CSV; returns the row count.
    fn export_activity_csv(
        &self,
        query: &ActivityQuery,
        out: &mut dyn Write,
    ) -> Result<u64, AppError>;
    fn settings(&self) -> Result<NodeSettings, AppError>;
    /// Validates, stores and applies; returns the settings as stored.
    fn update_settings(&self, settings: NodeSettings) -> Result<NodeSettings, AppError>;
    /// The node's public key, base58.
    fn public_key(&self) -> String;
    /// The secret key in its backup form. Handle with care: whoever has it is this node.
    fn export_key(&self) -> Result<String, AppError>;
    fn subscribe(&self) -> broadcast::Receiver<NodeEvent>;
    /// Tells the node whether the computer is idle (for "only when idle").
    fn set_idle(&self, idle: bool);
    /// Tells the node whether the network is metered (for "pause on metered networks").
    fn set_metered(&self, metered: bool);
}
