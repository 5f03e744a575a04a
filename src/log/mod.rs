//! The file log: the on-disk record format ([`format`]), crash recovery as a pure decision
//! table ([`recovery`]), the durable segmented log on files ([`FsLog`]), and a thread-safe
//! group-committing handle on it ([`GroupLog`]).

pub mod format;
mod fslog;
mod group;
pub mod recovery;

pub use fslog::{FsLog, FsLogOptions, Iter, LogError, Txn};
pub use group::GroupLog;
