//! The file log: the on-disk record format ([`mod@format`]), crash recovery as a pure decision
//! table ([`recovery`]), the durable segmented log on files ([`FsLog`]), and a thread-safe
//! group-committing handle on it ([`GroupLog`]), a handle with a deadline on every operation
//! ([`TimeoutLog`]); [`MemLog`] keeps the same operations in memory,
//! and [`LogStore`] is what both offer a Raft node.

pub mod format;
mod fslog;
mod group;
mod iter;
mod manifest;
mod mem;
pub mod recovery;
mod repair;
mod state;
mod timeout;
mod txn;

pub use fslog::{FsLog, FsLogOptions, LogError};
pub use group::GroupLog;
pub use iter::Iter;
pub use mem::{LogStore, MemLog, MemTxn};
pub use repair::Repair;
pub use timeout::{TimeoutIter, TimeoutLog, Timeouts};
pub use txn::Txn;
