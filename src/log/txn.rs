//! Transactions on an [`FsLog`]: appends (after an optional trim) that become durable together
//! as one batch, with one write and one fdatasync, or leave no trace.

use super::deferred::PendingSync;
use super::format::{BatchBuilder, Seal};
use super::store::check_append;
use super::trim::TrimPlan;
use super::{FsLog, LogError};
use crate::core::{Entry, Seq, Term};

/// A transaction on an [`FsLog`] (see [`FsLog::txn`]). Nothing reaches the disk before `commit`;
/// appends are added at once to the transaction's batch.
pub struct Txn<'a> {
    pub(super) log: &'a mut FsLog,
    pub(super) trim: Option<TrimPlan>,
    /// Borrowed from the log (its reusable one) and given back on drop.
    pub(super) builder: BatchBuilder,
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
        if self.builder.count() > 0 {
            return Err(LogError::Invalid("trim comes before the transaction's appends".into()));
        }
        let end = seq.map_or(0, |s| s.0.saturating_add(1));
        self.log.check_trim(end)?;
        if end < self.log.next_seq() {
            // The chain continues from the last kept batch, as the trim will leave it.
            let plan = self.log.trim_plan(end)?;
            self.chain = plan.chain;
            self.trim = Some(plan);
            self.first = end;
            self.builder.start(end);
            let kept = self.log.term_starts.iter().rev().find(|(start, _)| *start < end);
            self.term = kept.map_or(0, |(_, term)| *term);
        }
        Ok(())
    }

    /// Adds an entry; returns the seq it will have. A bad argument changes nothing.
    // Called once per entry, as are the checks and `BatchBuilder::push`: inlined into the loop of
    // `append_batch`, a batch of 1,000 took 46-48 us on tmpfs instead of 53-62 (in alternation,
    // 2026-12-03).
    #[inline]
    pub fn append(&mut self, term: Term, payload: Option<&[u8]>) -> Result<Seq, LogError> {
        self.check(term, payload)?;
        self.builder.push(term.0, payload, false);
        Ok(self.added(term, false))
    }

    /// Adds a core's entry of any kind (configuration entries included) at the next seq.
    #[inline]
    pub(crate) fn append_entry(&mut self, entry: &Entry) -> Result<Seq, LogError> {
        let config = matches!(entry.payload, crate::core::Payload::Config(_));
        let payload = (!matches!(entry.payload, crate::core::Payload::Blank)).then(|| entry.payload.bytes());
        self.check(entry.term, payload)?;
        self.builder.push(entry.term.0, payload, config);
        Ok(self.added(entry.term, config))
    }

    fn next(&self) -> u64 {
        self.first + u64::from(self.builder.count())
    }

    #[inline]
    fn check(&self, term: Term, payload: Option<&[u8]>) -> Result<(), LogError> {
        check_append(Some(Term(self.term)), self.next(), term, payload, self.log.options.payload_bytes_max)?;
        if self.builder.count() == u32::MAX {
            return Err(LogError::Invalid("a transaction holds at most 2^32 - 1 entries".into()));
        }
        Ok(())
    }

    /// Notes the entry just added; returns its seq.
    #[inline]
    fn added(&mut self, term: Term, config: bool) -> Seq {
        let seq = self.next() - 1;
        if self.term_starts.last().is_none_or(|(_, last)| *last != term.0) {
            self.term_starts.push((seq, term.0));
        }
        if config {
            self.configs.push(seq);
        }
        self.term = term.0;
        Seq(seq)
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
        if let Some(plan) = self.trim.take() {
            self.log.trim_with(plan)?;
        }
        let count = self.builder.count();
        if count == 0 {
            return Ok((None, None));
        }
        let nonce = self.log.nonce()?;
        let salt = self.log.segment_for(self.builder.size(&self.log.options.encoder))?;
        let log = &mut *self.log;
        let mut buffer = std::mem::take(&mut log.buffer);
        buffer.clear();
        let seal = Seal { chain: self.chain, salt, nonce };
        let checksum = self.builder.finish(&mut buffer, &log.options.encoder, seal);
        let written = log.write_batch(self.first, &buffer, count, defer);
        log.buffer = buffer;
        let pending = written?;
        log.chain = checksum;
        for (seq, term) in &self.term_starts {
            if log.term_starts.last().map(|t| t.1) != Some(*term) {
                log.term_starts.push((*seq, *term));
            }
        }
        log.configs.append(&mut self.configs);
        log.last = Some((self.first + u64::from(count) - 1, self.term));
        Ok((Some(Seq(self.first)), pending))
    }

    /// Drops the transaction: nothing changes on disk or in memory (dropping does the same).
    pub fn abort(self) {}
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        self.log.builder = std::mem::take(&mut self.builder);
    }
}
