//! Gleaner node library.
//!
//! Everything the node does lives here; the `gleaner` binary and the desktop app are thin shells
//! over it.
//!
//! # Using the node (CLI, desktop app)
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use gleaner_collector::{Node, NodeConfig, RunOptions};
//! let mut config = NodeConfig::load(gleaner_collector::config::default_config_path().as_deref())?;
//! config.validators = vec!["https://validator.example".into()];
//! let node = Node::open(config)?;          // data dir, identity key, SQLite queue
//! let mut events = node.subscribe();      // NodeEvent: fetched, receipted, state changes…
//! let handle = node.clone();              // cheap handle for the UI thread
//! handle.pause_for(std::time::Duration::from_secs(3600));
//! handle.resume();
//! handle.set_idle(true);                  // idle-only and metered hooks
//! let _stats = handle.stats()?;           // bandwidth, pages, points, validator health
//! let _state = handle.status();           // sharing / paused / capped / offline / …
//! node.run(RunOptions::default(), async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! [`Node`] methods: `open`, `run(options, shutdown)`, `pause`, `pause_for`, `resume`,
//! `set_idle`, `set_metered`, `status`, `stats`, `activity(query)`,
//! `export_activity(query, format, writer)`, `settings`, `update_settings`, `subscribe`,
//! `public_key`, `export_key`, `fetch_one(url)`.
//!
//! # Modules by concern
//! * [`policy`]: URL and address safety (public addresses only, ports, blocklist, odd spellings).
//! * [`fetch`]: the safe fetcher (pinned addresses, manual redirects, caps, decoding, charset);
//!   usable standalone: `Fetcher::new(FetchConfig)?.fetch(url).await`.
//! * [`robots`]: robots.txt per RFC 9309 with a 24 h cache; [`politeness`]: per-domain delays.
//! * [`governor`]: bandwidth ceiling, daily/monthly caps, pause, schedule, idle/metered.
//! * [`store`]: the crash-safe SQLite queue (fetched → batched → submitted → receipted).
//! * [`submit`]: the validator client (signed requests, receipts verified).
//! * [`rewards`]: the node's reward claims checked against the validators' signed epoch roots.
//! * [`activity`]: the log of every request on the user's connection, query and export.
//! * [`node`]: ties it together; [`config`]: settings; [`identity`]: the key file.
//! * [`clean`]: main-content extraction (pure, no I/O).
//!
//! **Architecture invariant:** the safety policy and limits come only from [`NodeConfig`]; no
//! validator answer reaches [`fetch::FetchConfig`] or [`policy::AddressPolicy`].

pub mod activity;
pub mod clean;
pub mod config;
pub mod dataset;
pub mod fetch;
pub mod governor;
pub mod identity;
pub mod labs;
pub mod node;
pub mod policy;
pub mod politeness;
pub mod rewards;
pub mod robots;
pub mod store;
pub mod submit;
mod util;

pub use activity::{ActivityEntry, ActivityKind, ActivityQuery, ExportFormat, PageOutcome};
pub use config::NodeConfig;
pub use fetch::{FetchConfig, FetchError, Fetched, Fetcher};
pub use node::{Node, NodeError, NodeEvent, NodeState, RunOptions, RunSummary, Stats};
pub use util::{cut, now_ms, registered_domain};
