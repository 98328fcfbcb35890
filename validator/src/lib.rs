//! # Gleaner validator
//!
//! The validator service: node registration and signed-request authentication, the frontier and
//! per-domain leases, verified batch ingest, quality rules, deduplication, cross-check fraud
//! detection, signed receipts, the append-only reward ledger and epoch reward trees.
//!
//! Layout:
//! * [`store`]: all persistent state (SQLite, WAL) behind one small struct API, including the read
//!   API for accepted records ([`Store::accepted_records`]) and network statistics.
//! * [`quality`], [`dedup`], [`frontier`], [`scoring`]: pure logic, no I/O.
//! * [`ingest`]: the CPU part of checking a batch (signatures, digests, quality, MinHash), done
//!   before the store's single write transaction.
//! * [`server`]: the axum HTTP API (`app(state) -> Router`, `run`, `spawn`).
//! * [`identity`], [`config`], [`clock`]: the validator's key, settings and time source.
//!
//! **Architecture invariant:** ingest of one batch is one SQLite transaction; a resubmitted batch
//! gets its stored receipt back byte for byte and credits nothing twice. (Under load several
//! batches share one transaction, each in its own savepoint: see [`store::Group`].) The ledger is
//! append-only; balances are always derived from it.

pub mod clock;
pub mod config;
pub mod console;
pub mod dataset;
pub mod dedup;
pub mod fetching;
pub mod frontier;
pub mod identity;
pub mod ingest;
pub mod lang;
pub mod quality;
pub mod scoring;
pub mod server;
pub mod sitemaps;
pub mod store;
pub mod testkit;
pub mod tiebreak;

pub use clock::Clock;
pub use config::Config;
pub use identity::{Identity, IdentityError};
pub use store::{
    AcceptedRecord, CrawlRequest, EpochSummary, LedgerEntry, NetworkStats, NodeRow, Store,
    StoreError,
};
