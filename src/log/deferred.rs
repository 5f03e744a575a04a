//! Appends whose fdatasync is left to the caller, so that a lock around the log need not be
//! held across it: the drivers' disk thread writes under the log's lock, lets go, syncs, and
//! only then reports the entries durable, while the node loop loads entries meanwhile.
//!
//! Only a batch that fits the space a segment already has allocated (zeros written ahead and
//! synced before) leaves its sync: such a write changes the file's bytes and nothing else (no
//! size, no new segment, no manifest), so the states a crash can leave are those of a synced
//! append cut short, which recovery already tells apart. Any other batch syncs as usual.

use super::store::continues;
use super::{FsLog, LogError};
use crate::core::{Entry, Seq};
use std::fs::File;
use std::path::PathBuf;

/// An fdatasync an append left to its caller: until it is done, the entries are in the log
/// (readable) but not durable.
#[derive(Debug)]
pub struct PendingSync {
    file: File,
    path: PathBuf,
}

impl PendingSync {
    pub(super) fn new(file: File, path: PathBuf) -> PendingSync {
        PendingSync { file, path }
    }

    /// Makes the append durable. On an error, call [`FsLog::sync_failed`]: what reached the disk
    /// is unknown.
    pub fn sync(self) -> Result<(), LogError> {
        self.file.sync_data().map_err(|source| LogError::Io { op: "append", path: self.path, source })
    }
}

impl FsLog {
    /// Appends a Raft core's entries, which must continue the log (nothing changes if they do
    /// not), as [`LogStore::apply`](crate::log::LogStore::apply) does, but may leave the
    /// fdatasync to the caller (`Some`): the entries are durable only once it is done.
    pub fn append_entries_deferred(&mut self, entries: &[Entry]) -> Result<Option<PendingSync>, LogError> {
        continues(Seq(self.next_seq()), entries)?;
        let mut txn = self.txn()?;
        for entry in entries {
            txn.append_entry(entry)?;
        }
        txn.commit_deferred()
    }

    /// A sync left by [`append_entries_deferred`](FsLog::append_entries_deferred) failed: the log
    /// is poisoned (every later call fails until it is reopened, which recovers what is durable).
    pub fn sync_failed(&mut self, error: &LogError) {
        self.poisoned = Some(error.to_string());
    }
}
