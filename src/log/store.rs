//! [`LogStore`]: what a Raft node needs from its storage, and the checks every log makes on an
//! append.

use super::{FsLog, LogError, PendingSync};
use crate::core::{Entry, HardState, LogId, Recovered, Seq, Term, Write};

/// What a Raft node needs from its storage; implemented by [`FsLog`](super::FsLog) (durable) and
/// [`MemLog`](super::MemLog) (in memory).
pub trait LogStore {
    /// The seq of the last entry.
    fn seq(&self) -> Option<Seq>;
    /// The term of the last entry.
    fn last_term(&self) -> Option<Term>;
    /// Appends entries at consecutive seqs; returns the first seq.
    fn append_batch(&mut self, entries: &[(Term, Option<&[u8]>)]) -> Result<Seq, LogError>;
    /// Appends a Raft core's entries (of every kind, configuration entries included) at
    /// consecutive seqs with one write; they must continue the log.
    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), LogError>;
    /// Saves a committed configuration entry apart from the log (see
    /// [`Write::Configuration`]); [`recovered`](LogStore::recovered) returns it.
    fn save_committed_config(&mut self, entry: &Entry) -> Result<(), LogError>;
    /// Keeps entries up to `seq` (none with `None`).
    fn trim(&mut self, seq: Option<Seq>) -> Result<(), LogError>;
    /// Removes entries at or below `through`, or some of them (a file log removes whole
    /// segments): a snapshot covers them.
    fn remove_prefix(&mut self, through: Seq) -> Result<(), LogError>;
    /// Removes every entry; the log continues at `last.seq + 1` (a snapshot ending at `last`
    /// was installed).
    fn reset_after(&mut self, last: LogId) -> Result<(), LogError>;
    /// The seq the next appended entry gets.
    fn next_seq(&self) -> Seq;
    /// The entry at `seq`.
    fn read(&self, seq: Seq) -> Result<Option<Entry>, LogError>;
    /// The saved term and vote.
    fn hard_state(&self) -> HardState;
    /// Saves the term and vote.
    fn save_hard_state(&mut self, state: HardState) -> Result<(), LogError>;
    /// Carries out a storage write the Raft core asked for ([`crate::core::Output::Write`]).
    /// Entries must continue the log; nothing changes if they do not.
    fn apply(&mut self, write: &Write) -> Result<(), LogError> {
        match write {
            Write::HardState(state) => self.save_hard_state(*state),
            Write::Entries(entries) => {
                continues(self.next_seq(), entries)?;
                self.append_entries(entries)
            }
            Write::Truncate { from } => self.trim(from.prev()),
            Write::Configuration(entry) => self.save_committed_config(entry),
            Write::RemovePrefix { through } => self.remove_prefix(*through),
            Write::InstallSnapshot { snapshot } => self.reset_after(snapshot.last),
            Write::SnapshotChunk { .. } => {
                Err(LogError::Invalid("snapshot chunks go to a snapshot store, not to the log".into()))
            }
        }
    }
    /// Carries out [`Write::Entries`] as [`apply`](LogStore::apply) does, but may leave the
    /// fdatasync to the caller, to be done outside any lock around the store; the entries are
    /// durable once it is. The default syncs at once.
    fn append_entries_deferred(&mut self, entries: &[Entry]) -> Result<Option<PendingSync>, LogError> {
        continues(self.next_seq(), entries)?;
        self.append_entries(entries).map(|()| None)
    }
    /// A sync [`append_entries_deferred`](LogStore::append_entries_deferred) left failed: the
    /// store must refuse every later write. The default does nothing (it never leaves one).
    fn sync_failed(&mut self, error: &LogError) {
        let _ = error;
    }
    /// What a Raft core restarted from this store starts with (the last `tail` entries in memory).
    fn recovered(&self, tail: usize) -> Result<Recovered, LogError>;
    /// The entries `from..=to` ([`crate::core::Output::LoadEntries`]); an error if any is
    /// missing. The default reads them one by one.
    fn load(&self, from: Seq, to: Seq) -> Result<Vec<Entry>, LogError> {
        (from.0..=to.0)
            .map(|seq| self.read(Seq(seq))?.ok_or_else(|| LogError::Invalid(format!("no entry at seq {seq}"))))
            .collect()
    }
    /// Lets go of the store once a driver is done with it (a file log frees its directory for
    /// another handle). The default does nothing.
    fn close(&mut self) {}
}

/// Whether a Raft core's `entries` continue a log whose next seq is `next` (a write that does
/// not changes nothing).
pub(crate) fn continues(next: Seq, entries: &[Entry]) -> Result<(), LogError> {
    match entries.first().filter(|entry| entry.seq != next) {
        Some(first) => Err(LogError::Invalid(format!("entries start at {}, the log at {next}", first.seq))),
        None => Ok(()),
    }
}

/// The checks every log makes on an append at `seq`, before anything changes: terms never
/// decrease (`last` is the term of the entry before it), a payload is at most `payload_bytes_max`
/// bytes, and the seq is at most [`Seq::MAX`].
#[inline]
pub(crate) fn check_append(
    last: Option<Term>,
    seq: u64,
    term: Term,
    payload: Option<&[u8]>,
    payload_bytes_max: usize,
) -> Result<(), LogError> {
    if let Some(last) = last.filter(|last| term < *last) {
        return Err(LogError::Invalid(format!("term {term} after term {last}")));
    }
    if payload.is_some_and(|p| p.len() > payload_bytes_max) {
        return Err(LogError::Invalid(format!("payload over {payload_bytes_max} bytes")));
    }
    if seq > Seq::MAX.0 {
        return Err(LogError::Invalid("the log is full (seq past Seq::MAX)".into()));
    }
    Ok(())
}

impl LogStore for FsLog {
    fn seq(&self) -> Option<Seq> {
        FsLog::seq(self)
    }

    fn last_term(&self) -> Option<Term> {
        FsLog::last_term(self)
    }

    fn append_batch(&mut self, entries: &[(Term, Option<&[u8]>)]) -> Result<Seq, LogError> {
        FsLog::append_batch(self, entries)
    }

    fn append_entries_deferred(&mut self, entries: &[Entry]) -> Result<Option<PendingSync>, LogError> {
        FsLog::append_entries_deferred(self, entries)
    }

    fn sync_failed(&mut self, error: &LogError) {
        FsLog::sync_failed(self, error);
    }

    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        FsLog::append_entries(self, entries)
    }

    fn save_committed_config(&mut self, entry: &Entry) -> Result<(), LogError> {
        FsLog::save_committed_config(self, entry)
    }

    fn trim(&mut self, seq: Option<Seq>) -> Result<(), LogError> {
        FsLog::trim(self, seq)
    }

    fn remove_prefix(&mut self, through: Seq) -> Result<(), LogError> {
        FsLog::remove_prefix(self, through)
    }

    fn reset_after(&mut self, last: LogId) -> Result<(), LogError> {
        FsLog::reset_after(self, last)
    }

    fn next_seq(&self) -> Seq {
        Seq(FsLog::next_seq(self))
    }

    fn read(&self, seq: Seq) -> Result<Option<Entry>, LogError> {
        FsLog::read(self, seq)
    }

    fn hard_state(&self) -> HardState {
        FsLog::hard_state(self)
    }

    fn save_hard_state(&mut self, state: HardState) -> Result<(), LogError> {
        FsLog::save_hard_state(self, state)
    }

    fn recovered(&self, tail: usize) -> Result<Recovered, LogError> {
        FsLog::recovered(self, tail)
    }

    /// Reads a batch at a time, keeping the last one decoded (see `loads.rs`).
    fn load(&self, from: Seq, to: Seq) -> Result<Vec<Entry>, LogError> {
        self.load_range(from, to)
    }

    fn close(&mut self) {
        FsLog::close(self);
    }
}
