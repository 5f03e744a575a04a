//! The file log: the durable segmented log on files ([`FsLog`]), with checksums or encryption
//! at rest ([`Encoder`]), a thread-safe group-committing handle on it ([`GroupLog`]), and a
//! handle with a deadline on every operation ([`TimeoutLog`]); [`MemLog`] keeps the same
//! operations in memory, and [`LogStore`] is what both offer a Raft node. [`SnapshotStore`]
//! keeps durable snapshots next to a log, streamed in and out in chunks.
//!
//! The record format (`format.rs`) and crash recovery as a pure decision table
//! (`recovery.rs`) are public for the simulator and the fuzz targets only: not a stable API.

mod cases;
mod cipher;
mod deferred;
mod direct;
mod error;
mod evidence;
#[doc(hidden)]
pub mod format;
mod fslog;
mod group;
mod iter;
mod loads;
mod manifest;
mod mem;
#[doc(hidden)]
pub mod recovery;
mod repair;
mod saved_config;
mod snapshot;
mod spares;
mod state;
mod store;
mod timeout;
mod trim;
mod txn;

/// What a snapshot covers (the core's type).
pub use crate::core::SnapshotMeta;
pub use deferred::PendingSync;
pub use error::LogError;
pub use format::{Encoder, Key};
pub use fslog::{FsLog, FsLogOptions};
pub use group::GroupLog;
pub use iter::Iter;
pub use mem::{MemLog, MemTxn};
pub use recovery::{Case, Corruption};
pub use repair::Repair;
pub use snapshot::{SnapshotReader, SnapshotReceiver, SnapshotScan, SnapshotStore, SnapshotWriter};
pub use store::LogStore;
pub use timeout::{TimeoutIter, TimeoutLog, Timeouts};
pub use txn::Txn;
