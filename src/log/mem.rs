//! `MemLog`: the file log's API without a disk (the older README's `TinyRaftLog`), for tests and
//! for users who replicate without persistence, and the [`LogStore`] trait both logs implement.

use super::LogError;
use crate::core::{Entry, HardState, Payload, Recovered, Seq, Term, Write};
use bytes::Bytes;

/// What a Raft node needs from its storage; implemented by [`FsLog`](super::FsLog) (durable) and
/// [`MemLog`] (in memory).
pub trait LogStore {
    /// The seq of the last entry.
    fn seq(&self) -> Option<Seq>;
    /// The term of the last entry.
    fn last_term(&self) -> Option<Term>;
    /// Appends entries at consecutive seqs; returns the first seq.
    fn append_batch(&mut self, entries: &[(Term, Option<&[u8]>)]) -> Result<Seq, LogError>;
    /// Keeps entries up to `seq` (none with `None`).
    fn trim(&mut self, seq: Option<Seq>) -> Result<(), LogError>;
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
                let next = Seq::after(self.seq());
                if let Some(first) = entries.first().filter(|e| e.seq != next) {
                    return Err(LogError::Invalid(format!("entries start at {}, the log at {next}", first.seq)));
                }
                let batch: Vec<(Term, Option<&[u8]>)> =
                    entries.iter().map(|e| (e.term, e.payload.data().map(|d| d.as_ref()))).collect();
                self.append_batch(&batch).map(|_| ())
            }
            Write::Truncate { from } => self.trim(from.prev()),
        }
    }
    /// What a Raft core restarted from this store starts with (the last `tail` entries in memory).
    fn recovered(&self, tail: usize) -> Result<Recovered, LogError>;
}

/// A log held in memory: the same operations as [`FsLog`](super::FsLog), nothing durable.
#[derive(Clone, Debug, Default)]
pub struct MemLog {
    entries: Vec<Entry>,
    hard_state: HardState,
}

impl MemLog {
    /// An empty log.
    pub fn new() -> MemLog {
        MemLog::default()
    }

    /// Appends one entry; returns its seq.
    pub fn append(&mut self, term: Term, payload: Option<&[u8]>) -> Result<Seq, LogError> {
        self.append_batch(&[(term, payload)])
    }

    /// Entries from `from` on.
    pub fn iter(&self, from: Seq) -> impl Iterator<Item = &Entry> {
        self.entries.iter().skip(from.0 as usize)
    }

    /// Every entry, from seq 0.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

impl LogStore for MemLog {
    fn seq(&self) -> Option<Seq> {
        self.entries.last().map(|e| e.seq)
    }

    fn last_term(&self) -> Option<Term> {
        self.entries.last().map(|e| e.term)
    }

    fn append_batch(&mut self, entries: &[(Term, Option<&[u8]>)]) -> Result<Seq, LogError> {
        if entries.is_empty() {
            return Err(LogError::Invalid("append_batch needs at least one entry".into()));
        }
        let mut term = self.last_term().unwrap_or_default();
        for (entry_term, _) in entries {
            if *entry_term < term {
                return Err(LogError::Invalid(format!("term {entry_term} after term {term}")));
            }
            term = *entry_term;
        }
        let first = self.entries.len() as u64;
        for (offset, (term, payload)) in entries.iter().enumerate() {
            let payload = payload.map_or(Payload::Blank, |p| Payload::Data(Bytes::copy_from_slice(p)));
            self.entries.push(Entry { term: *term, seq: Seq(first + offset as u64), payload });
        }
        Ok(Seq(first))
    }

    fn trim(&mut self, seq: Option<Seq>) -> Result<(), LogError> {
        self.entries.truncate(seq.map_or(0, |s| s.0 as usize + 1));
        Ok(())
    }

    fn read(&self, seq: Seq) -> Result<Option<Entry>, LogError> {
        Ok(self.entries.get(seq.0 as usize).cloned())
    }

    fn hard_state(&self) -> HardState {
        self.hard_state
    }

    fn save_hard_state(&mut self, state: HardState) -> Result<(), LogError> {
        self.hard_state = state;
        Ok(())
    }

    fn recovered(&self, tail: usize) -> Result<Recovered, LogError> {
        let mut recovered = Recovered::from_entries(self.hard_state, self.entries.clone());
        let keep = recovered.tail.len().saturating_sub(tail);
        recovered.tail.drain(..keep);
        Ok(recovered)
    }
}

impl LogStore for super::FsLog {
    fn seq(&self) -> Option<Seq> {
        super::FsLog::seq(self)
    }

    fn last_term(&self) -> Option<Term> {
        super::FsLog::last_term(self)
    }

    fn append_batch(&mut self, entries: &[(Term, Option<&[u8]>)]) -> Result<Seq, LogError> {
        super::FsLog::append_batch(self, entries)
    }

    fn trim(&mut self, seq: Option<Seq>) -> Result<(), LogError> {
        super::FsLog::trim(self, seq)
    }

    fn read(&self, seq: Seq) -> Result<Option<Entry>, LogError> {
        super::FsLog::read(self, seq)
    }

    fn hard_state(&self) -> HardState {
        super::FsLog::hard_state(self)
    }

    fn save_hard_state(&mut self, state: HardState) -> Result<(), LogError> {
        super::FsLog::save_hard_state(self, state)
    }

    fn recovered(&self, tail: usize) -> Result<Recovered, LogError> {
        super::FsLog::recovered(self, tail)
    }
}
