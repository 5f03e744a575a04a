//! Transactions on an [`FsLog`]: appends (after an optional trim) that become durable together
//! with one write and one fdatasync, or leave no trace.

use super::deferred::PendingSync;
use super::format::{encode_record, seal_batch, NewRecord};
use super::store::check_append;
use super::{FsLog, LogError};
use crate::core::{Entry, Seq, Term};

/// A transaction on an [`FsLog`] (see [`FsLog::txn`]). Nothing reaches the disk before `commit`;
/// appends are encoded at once into the transaction's own buffer, as one batch.
pub struct Txn<'a> {
    pub(super) log: &'a mut FsLog,
    pub(super) trim: Option<Option<Seq>>,
    /// Borrowed from the log (its reusable buffer) and given back on drop.
    pub(super) buffer: Vec<u8>,
    pub(super) starts: Vec<usize>,
    /// The (seq, term) where each new term starts among the appends.
    pub(super) term_starts: Vec<(u64, u64)>,
    /// The seqs of the configuration entries among the appends.
    pub(super) configs: Vec<u64>,
    /// The seq of the transaction's first append.
    pub(super) first: u64,
    pub(super) chain: u64,
    pub(super) term: u64,
}

impl Txn<'_> {
    /// Trims the log to `seq` first (see [`FsLog::trim`]); only before any append.
    pub fn trim(&mut self, seq: Option<Seq>) -> Result<(), LogError> {
        if !self.starts.is_empty() {
            return Err(LogError::Invalid("trim comes before the transaction's appends".into()));
        }
        let end = seq.map_or(0, |s| s.0.saturating_add(1));
        self.log.check_trim(end)?;
        if end < self.log.next_seq() {
            self.trim = Some(seq);
            self.first = end;
            // The chain continues from the last kept record, as the trim will mark it: the end
            // of its batch.
            let first = self.log.first().0;
            self.chain = match end.checked_sub(1).filter(|last| *last >= first) {
                Some(last) => self.log.sealed_checksum(last)?,
                None => 0, // Nothing kept: the chain starts anew, as after a prefix removal.
            };
            let kept = self.log.term_starts.iter().rev().find(|(start, _)| *start < end);
            self.term = kept.map_or(0, |(_, term)| *term);
        }
        Ok(())
    }

    /// Adds an entry; returns the seq it will have. A bad argument changes nothing.
    pub fn append(&mut self, term: Term, payload: Option<&[u8]>) -> Result<Seq, LogError> {
        self.append_record(term, payload, false)
    }

    /// Adds a core's entry of any kind (configuration entries included) at the next seq.
    pub(crate) fn append_entry(&mut self, entry: &Entry) -> Result<Seq, LogError> {
        let record = NewRecord::of(entry, 0, 0);
        self.append_record(entry.term, record.payload, record.config)
    }

    fn append_record(&mut self, term: Term, payload: Option<&[u8]>, config: bool) -> Result<Seq, LogError> {
        let seq = self.first + self.starts.len() as u64;
        check_append(Some(Term(self.term)), seq, term, payload, self.log.options.payload_bytes_max)?;
        let Ok(batch_offset) = u32::try_from(self.starts.len()) else {
            return Err(LogError::Invalid("a transaction holds at most 2^32 - 1 entries".into()));
        };
        let nonce = self.log.nonce()?;
        self.starts.push(self.buffer.len());
        let record = NewRecord { seq, term: term.0, payload, config, batch_offset, chain: self.chain };
        self.chain = encode_record(&mut self.buffer, &self.log.options.encoder, record, nonce);
        if self.term_starts.last().is_none_or(|(_, last)| *last != term.0) {
            self.term_starts.push((seq, term.0));
        }
        if config {
            self.configs.push(seq);
        }
        self.term = term.0;
        Ok(Seq(seq))
    }

    /// Makes the transaction durable: its trim, then its appends in one write and one
    /// fdatasync. Returns the first appended seq, if any.
    pub fn commit(self) -> Result<Option<Seq>, LogError> {
        self.commit_with(false).map(|(first, _)| first)
    }

    /// [`commit`](Txn::commit), leaving the appends' fdatasync to the caller where the log
    /// allows it (see `deferred.rs`).
    pub(super) fn commit_deferred(self) -> Result<Option<PendingSync>, LogError> {
        self.commit_with(true).map(|(_, pending)| pending)
    }

    fn commit_with(mut self, defer: bool) -> Result<(Option<Seq>, Option<PendingSync>), LogError> {
        if let Some(seq) = self.trim.take() {
            self.log.trim(seq)?;
        }
        let Some(&last) = self.starts.last() else { return Ok((None, None)) };
        let log = &mut *self.log;
        let sealed = seal_batch(&mut self.buffer[last..], &log.options.encoder);
        let pending = log.write_batch(self.first, &self.buffer, &self.starts, defer)?;
        log.chain = if log.options.encoder.checksummed() { sealed } else { 0 };
        for (seq, term) in &self.term_starts {
            if log.term_starts.last().map(|t| t.1) != Some(*term) {
                log.term_starts.push((*seq, *term));
            }
        }
        log.configs.append(&mut self.configs);
        log.last = Some((self.first + self.starts.len() as u64 - 1, self.term));
        Ok((Some(Seq(self.first)), pending))
    }

    /// Drops the transaction: nothing changes on disk or in memory (dropping does the same).
    pub fn abort(self) {}
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        self.log.buffer = std::mem::take(&mut self.buffer);
    }
}
