//! The file log: the on-disk record format ([`format`]), crash recovery as a pure decision
//! table ([`recovery`]), and the durable segmented log on files ([`FsLog`]).

pub mod format;
mod fslog;
pub mod recovery;

pub use fslog::{FsLog, FsLogOptions, Iter, LogError, Txn};
