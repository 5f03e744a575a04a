//! Taking entries off a [`FsLog`]: a trim of its suffix (fail-forward: its intent is durable
//! first, see the `d/n.trim` file in `fslog.rs`), a removal of its prefix (for snapshots), and a
//! reset past an installed snapshot.

use super::error::LogError;
use super::format::{decode_batch, prefix_batch};
use super::fslog::{FsLog, Segment};
use crate::core::Seq;
use std::fs;
use std::io;
use std::sync::atomic::Ordering;

/// A trim, planned before anything changes: the entries kept end before `keep_end`; a trim
/// inside a batch writes `rewrite` (the batch's first entries, as a batch of their own) in its
/// place; the log's chain continues from `chain`.
pub(super) struct TrimPlan {
    pub(super) keep_end: u64,
    pub(super) rewrite: Option<Vec<u8>>,
    pub(super) chain: u64,
}
impl FsLog {
    /// Refuses a trim below the removed prefix.
    pub(super) fn check_trim(&self, keep_end: u64) -> Result<(), LogError> {
        let first = self.first().0;
        match keep_end < first {
            true => Err(LogError::Invalid(format!("cannot trim to {keep_end}: entries before {first} were removed"))),
            false => Ok(()),
        }
    }

    /// Keeps entries up to `seq` (all with `None`), removing those after it. Fail-forward: a
    /// crash in the middle completes the trim at the next open.
    pub fn trim(&mut self, seq: Option<Seq>) -> Result<(), LogError> {
        self.check()?;
        let keep_end = seq.map_or(0, |s| s.0.saturating_add(1));
        self.check_trim(keep_end)?;
        if keep_end >= self.next_seq() {
            return Ok(());
        }
        let plan = self.trim_plan(keep_end)?;
        self.trim_with(plan)
    }

    /// Plans a trim to `keep_end` (below the next seq, at or past the first): for a cut inside
    /// a batch, the batch of its entries before the cut, freshly encoded.
    pub(super) fn trim_plan(&mut self, keep_end: u64) -> Result<TrimPlan, LogError> {
        let kept = keep_end.checked_sub(1).filter(|last| *last >= self.first().0);
        let Some((index, offset)) = kept.and_then(|last| self.locate(last)) else {
            return Ok(TrimPlan { keep_end, rewrite: None, chain: 0 }); // The chain starts anew.
        };
        let bytes = self.read_batch(index, offset)?;
        let encoder = self.options.encoder.clone();
        let path = self.segments[index].path.clone();
        let damaged = |detail: String| LogError::Damaged {
            path: path.clone(),
            detail: format!("the batch at byte {offset}: {detail} (the disk changed under the log)"),
        };
        let batch = decode_batch(&bytes, &encoder, self.segments[index].salt, bytes.len())
            .map_err(|e| damaged(e.to_string()))?;
        if batch.last() < keep_end {
            return Ok(TrimPlan { keep_end, rewrite: None, chain: batch.checksum });
        }
        let salt = self.rewrite_salt(batch.first);
        let nonce = self.nonce()?;
        let prefix = prefix_batch(&batch, &encoder, keep_end, salt, nonce).map_err(|e| damaged(e.to_string()))?;
        let chain = decode_batch(&prefix, &encoder, salt, prefix.len()).expect("just encoded").checksum;
        Ok(TrimPlan { keep_end, rewrite: Some(prefix), chain })
    }

    /// Carries out a planned trim: its intent first (durable), then the files.
    pub(super) fn trim_with(&mut self, plan: TrimPlan) -> Result<(), LogError> {
        self.write_trim_intent(plan.keep_end, plan.rewrite.as_deref())?;
        self.trim_files(plan.keep_end, plan.rewrite)
    }

    /// Removes whole segments whose entries are all at or before `seq` (for snapshots: the
    /// entries were compacted elsewhere). The segment holding the last entry is always kept.
    /// Oldest first, so a crash leaves a suffix of the log.
    pub fn remove_prefix(&mut self, seq: Seq) -> Result<(), LogError> {
        self.check()?;
        let mut removed = false;
        let doomed = self.segments.windows(2).take_while(|pair| pair[1].first_seq <= seq.0.saturating_add(1)).count();
        if doomed > 0 {
            self.record_first(self.segments[doomed].first_seq)?;
        }
        while self.segments.len() > 1 && self.segments[1].first_seq <= seq.0.saturating_add(1) {
            let segment = self.segments.remove(0);
            self.retire_segment(segment)?;
            removed = true;
        }
        if removed {
            self.sync_dir().or_else(|e| self.poison(e))?;
            let first = self.first().0;
            let run = self.term_starts.partition_point(|(start, _)| *start <= first).saturating_sub(1);
            self.term_starts.drain(..run);
            if let Some(start) = self.term_starts.first_mut() {
                start.0 = first;
            }
            // A removed configuration entry is gone: the committed one is saved apart from the
            // log, and a snapshot carries the one in force where it ends.
            self.configs.retain(|seq| *seq >= first);
        }
        Ok(())
    }

    /// Removes every entry: the log continues at `last.seq + 1` (a snapshot ending at `last`
    /// was installed). The new first seq is recorded first, then a segment starting there is
    /// created, then the older segments are deleted: a crash in between opens, and the next open
    /// finishes the job (a crash before the segment exists leaves the old entries, which the
    /// snapshot covers: the core resets the log again).
    pub fn reset_after(&mut self, last: crate::core::LogId) -> Result<(), LogError> {
        self.check()?;
        let next = last.seq.0 + 1;
        if self.last.is_none() && self.first().0 == next && !self.segments.is_empty() {
            return Ok(());
        }
        if self.first().0 > next {
            return Err(LogError::Invalid(format!("the log starts at {}, past {next}", self.first())));
        }
        if self.next_seq() > next {
            self.trim(Some(last.seq))?; // No segment may start at `next` or later.
        }
        self.seal_segment()?;
        self.trims.fetch_add(1, Ordering::SeqCst);
        self.record_first(next)?;
        self.create_segment(next)?;
        let old: Vec<Segment> = self.segments.drain(..self.segments.len() - 1).collect();
        for segment in old {
            self.retire_segment(segment)?;
        }
        self.sync_dir().or_else(|e| self.poison(e))?;
        (self.last, self.chain) = (None, 0);
        self.term_starts.clear();
        self.configs.clear();
        Ok(())
    }

    /// Removes entries from `keep_end` on: later segments first (newest to oldest), then the
    /// tail of the last kept segment from the first batch holding an entry to remove, then, for
    /// a trim inside a batch, `rewrite` (that batch's first entries) is appended in its place,
    /// then the intent is removed. Each step is durable before the next, and every state in
    /// between opens (the intent, which holds `rewrite`, finishes the job).
    pub(super) fn trim_files(&mut self, keep_end: u64, rewrite: Option<Vec<u8>>) -> Result<(), LogError> {
        self.trims.fetch_add(1, Ordering::SeqCst);
        let cut_from = match &rewrite {
            Some(bytes) => u64::from_le_bytes(bytes[4..12].try_into().expect("a batch's first seq")),
            None => keep_end,
        };
        let kept = self.segments.iter().skip(1).take_while(|s| s.first_seq < cut_from).count() + 1;
        if kept < self.segments.len() {
            let newest = &self.segments[kept - 1];
            self.record_trimmed(newest.first_seq, newest.allocated)?;
        }
        while self.segments.len() > 1 && self.segments.last().is_some_and(|s| s.first_seq >= cut_from) {
            let segment = self.segments.pop().expect("checked");
            if let Err(source) = fs::remove_file(&segment.path) {
                return self.poison(LogError::Io { op: "delete segment", path: segment.path, source });
            }
        }
        self.sync_dir().or_else(|e| self.poison(e))?;
        if let Some(segment) = self.segments.last() {
            let keep = cut_from.saturating_sub(segment.first_seq) as usize;
            if keep < segment.offsets.len() {
                let new_len = u64::from(segment.offsets[keep]);
                self.record_cut(new_len)?;
                let segment = self.segments.last_mut().expect("checked");
                let path = segment.path.clone();
                let cut = segment.file.set_len(new_len).and_then(|()| segment.file.sync_all());
                if let Err(source) = cut {
                    return self.poison(LogError::Io { op: "truncate", path, source });
                }
                (segment.len, segment.allocated) = (new_len, new_len);
                segment.offsets.truncate(keep);
            }
        }
        self.reload_tail()?;
        if let Some(bytes) = rewrite {
            if self.next_seq() != cut_from {
                let path = self.trim_path();
                let detail = format!("the log ends before {cut_from}, where the trim's batch goes");
                return Err(LogError::Damaged { path, detail });
            }
            let salt = self.segments.last().map_or(0, |segment| segment.salt);
            let batch = match decode_batch(&bytes, &self.options.encoder, salt, bytes.len()) {
                Ok(batch) => batch,
                Err(error) => {
                    let detail = format!("the trim's batch does not fit its segment: {error}");
                    return Err(LogError::Damaged { path: self.trim_path(), detail });
                }
            };
            self.append_bytes(&bytes, (keep_end - cut_from) as u32, false)?;
            for frame in batch.frames() {
                if self.term_starts.last().map(|t| t.1) != Some(frame.term) {
                    self.term_starts.push((frame.seq, frame.term));
                }
                if frame.config {
                    self.configs.push(frame.seq);
                }
            }
            (self.last, self.chain) = (Some((batch.last(), batch.last_term)), batch.checksum);
        }
        let path = self.trim_path();
        match fs::remove_file(&path) {
            Ok(()) => self.sync_dir().or_else(|e| self.poison(e))?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return self.poison(LogError::Io { op: "delete trim intent", path, source }),
        }
        Ok(())
    }

    /// Recomputes the last entry, chain head and term runs after a trim.
    pub(super) fn reload_tail(&mut self) -> Result<(), LogError> {
        let last_seq =
            self.segments.iter().rev().find_map(|s| s.offsets.len().checked_sub(1).map(|i| s.first_seq + i as u64));
        self.term_starts.retain(|(seq, _)| Some(*seq) <= last_seq);
        self.configs.retain(|seq| Some(*seq) <= last_seq);
        let last = match last_seq {
            Some(seq) => self.term_and_chain(seq)?,
            None => None,
        };
        self.last = last_seq.zip(last.map(|(term, _)| term));
        self.chain = last.map_or(0, |(_, chain)| chain);
        Ok(())
    }
}
