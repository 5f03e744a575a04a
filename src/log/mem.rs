//! `MemLog`: the file log's API without a disk (the older README's `TinyRaftLog`), for tests and
//! for users who replicate without persistence.

use super::store::{check_append, LogStore};
use super::LogError;
use crate::core::{Entry, HardState, LogId, Payload, Recovered, Seq, Term};
use bytes::Bytes;

/// A log held in memory: the same operations as [`FsLog`](super::FsLog), nothing durable.
#[derive(Clone, Debug)]
pub struct MemLog {
    /// The seq of `entries[0]` (above 0 after a prefix removal).
    first: u64,
    entries: Vec<Entry>,
    hard_state: HardState,
    payload_bytes_max: usize,
    /// The committed configuration saved apart from the entries.
    committed_config: Option<Entry>,
}

impl Default for MemLog {
    fn default() -> MemLog {
        MemLog::new()
    }
}

impl MemLog {
    /// An empty log, taking payloads up to the file log's default maximum (16 MiB).
    pub fn new() -> MemLog {
        MemLog::with_payload_bytes_max(super::FsLogOptions::default().payload_bytes_max)
    }

    /// An empty log taking payloads up to `max` bytes.
    pub fn with_payload_bytes_max(max: usize) -> MemLog {
        MemLog {
            first: 0,
            entries: Vec::new(),
            hard_state: HardState::default(),
            payload_bytes_max: max,
            committed_config: None,
        }
    }

    /// Appends one entry; returns its seq.
    pub fn append(&mut self, term: Term, payload: Option<&[u8]>) -> Result<Seq, LogError> {
        self.append_batch(&[(term, payload)])
    }

    /// Entries from `from` on (none before [`MemLog::first`]).
    pub fn iter(&self, from: Seq) -> impl Iterator<Item = &Entry> {
        self.entries.iter().skip(from.0.saturating_sub(self.first) as usize)
    }

    /// Every entry held, from [`MemLog::first`].
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The seq of the first entry held.
    pub fn first(&self) -> Seq {
        Seq(self.first)
    }

    /// The last entry.
    pub fn head(&self) -> Option<&Entry> {
        self.entries.last()
    }

    /// Removes the entries up to `seq`, always keeping the last one (as the file log keeps
    /// the segment holding it).
    pub fn remove_prefix(&mut self, seq: Seq) {
        let drop = seq.0.saturating_add(1).saturating_sub(self.first).min(self.entries.len().saturating_sub(1) as u64);
        self.entries.drain(..drop as usize);
        self.first += drop;
    }

    /// A transaction: a trim, then appends, applied together at `commit` or not at all.
    pub fn txn(&mut self) -> MemTxn<'_> {
        MemTxn { log: self, trim: None, appends: Vec::new() }
    }

    fn next_seq(&self) -> u64 {
        self.first + self.entries.len() as u64
    }
}

/// A transaction on a [`MemLog`] (see [`MemLog::txn`]).
pub struct MemTxn<'a> {
    log: &'a mut MemLog,
    trim: Option<Option<Seq>>,
    appends: Vec<(Term, Option<Bytes>)>,
}

impl MemTxn<'_> {
    /// Trims the log to `seq` first; only before any append.
    pub fn trim(&mut self, seq: Option<Seq>) -> Result<(), LogError> {
        if !self.appends.is_empty() {
            return Err(LogError::Invalid("trim comes before the transaction's appends".into()));
        }
        self.log.check_trim(seq)?;
        self.trim = Some(seq);
        Ok(())
    }

    /// Adds an entry; returns the seq it will have. A bad argument changes nothing.
    pub fn append(&mut self, term: Term, payload: Option<&[u8]>) -> Result<Seq, LogError> {
        let kept_end = match self.trim {
            Some(seq) => Seq::after(seq).0.min(self.log.next_seq()),
            None => self.log.next_seq(),
        };
        let last = match self.appends.last() {
            Some((term, _)) => Some(*term),
            None => kept_end.checked_sub(1 + self.log.first).map(|i| self.log.entries[i as usize].term),
        };
        let seq = kept_end + self.appends.len() as u64;
        check_append(last, seq, term, payload, self.log.payload_bytes_max)?;
        self.appends.push((term, payload.map(Bytes::copy_from_slice)));
        Ok(Seq(seq))
    }

    /// Applies the trim and the appends; returns the first appended seq, if any.
    pub fn commit(self) -> Result<Option<Seq>, LogError> {
        if let Some(seq) = self.trim {
            self.log.trim(seq)?;
        }
        let first = self.log.next_seq();
        for (term, payload) in self.appends.iter() {
            let seq = Seq(self.log.next_seq());
            self.log.entries.push(Entry {
                term: *term,
                seq,
                payload: payload.clone().map_or(Payload::Blank, Payload::Data),
            });
        }
        Ok((!self.appends.is_empty()).then_some(Seq(first)))
    }

    /// Drops the transaction (dropping does the same).
    pub fn abort(self) {}
}

impl MemLog {
    fn check_trim(&self, seq: Option<Seq>) -> Result<(), LogError> {
        let keep_end = Seq::after(seq).0;
        match keep_end < self.first {
            true => {
                Err(LogError::Invalid(format!("cannot trim to {keep_end}: entries before {} were removed", self.first)))
            }
            false => Ok(()),
        }
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
        let mut txn = self.txn();
        for (term, payload) in entries {
            txn.append(*term, *payload)?;
        }
        Ok(txn.commit()?.expect("at least one entry was appended"))
    }

    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        let mut last = self.last_term();
        for (offset, entry) in entries.iter().enumerate() {
            let seq = self.next_seq() + offset as u64;
            if entry.seq.0 != seq {
                return Err(LogError::Invalid(format!("entry at seq {} where the log has {seq} next", entry.seq)));
            }
            let payload = Some(entry.payload.bytes()).filter(|_| entry.payload != Payload::Blank);
            check_append(last, seq, entry.term, payload, self.payload_bytes_max)?;
            last = Some(entry.term);
        }
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    fn save_committed_config(&mut self, entry: &Entry) -> Result<(), LogError> {
        self.committed_config = Some(entry.clone());
        Ok(())
    }

    fn trim(&mut self, seq: Option<Seq>) -> Result<(), LogError> {
        self.check_trim(seq)?;
        self.entries.truncate((Seq::after(seq).0 - self.first) as usize);
        Ok(())
    }

    fn remove_prefix(&mut self, through: Seq) -> Result<(), LogError> {
        MemLog::remove_prefix(self, through);
        Ok(())
    }

    fn reset_after(&mut self, last: LogId) -> Result<(), LogError> {
        self.entries.clear();
        self.first = last.seq.0 + 1;
        Ok(())
    }

    fn next_seq(&self) -> Seq {
        Seq(MemLog::next_seq(self))
    }

    fn read(&self, seq: Seq) -> Result<Option<Entry>, LogError> {
        Ok(seq.0.checked_sub(self.first).and_then(|i| self.entries.get(i as usize)).cloned())
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
        recovered.first = Seq(self.first);
        recovered.committed_config = self.committed_config.clone();
        let keep = recovered.tail.len().saturating_sub(tail);
        recovered.tail.drain(..keep);
        Ok(recovered)
    }
}
