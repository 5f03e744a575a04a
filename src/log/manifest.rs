//! What the state file records about the segments, so that recovery can tell a crash from a
//! loss: a crash only ever leaves the last batch torn, while a deleted or zeroed segment, or a
//! segment cut short, loses batches that were durable. Without this record such a log would
//! open short, with no error.
//!
//! The record (in the state file's slots, beside term and vote): the log's first seq, the first
//! seq of its newest segment, and a length that segment's file is known to have reached. Each
//! changes with one more state write, always before the change it allows:
//! - a new segment is recorded once its header is synced (a crash before leaves an unrecorded
//!   newest segment, which recovery takes as it always did);
//! - the length is recorded when zeros are written ahead (about once per MiB of batches below a
//!   quarter MiB) or the file grew a MiB past the recorded length (larger batches), and lowered
//!   before the file is cut (sealing a segment, a trim, recovery's cut of a torn tail);
//! - a trim records its new newest segment before it deletes later ones; a prefix removal
//!   records the new first seq before it deletes segments (the rest is finished at the next
//!   open).
//!
//! Cost: one state write (one fdatasync of a small file) per MiB appended and per segment.
//! Limit: with large batches (a quarter MiB and more, which write no zeros ahead), a cut of less
//! than a MiB at the end of the newest segment is not told from a torn last batch.

use super::error::{io_error, LogError};
use super::format::HEADER_BYTES;
use super::fslog::FsLog;
use std::fs::{self, File};
use std::io::Read;
use std::path::PathBuf;

/// What recovery checks the segments against (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Manifest {
    /// The log's first seq: the first segment's.
    pub(super) first: u64,
    /// The first seq of the newest segment, once one exists.
    pub(super) newest: Option<u64>,
    /// A length the newest segment's file is known to have reached.
    pub(super) length: u64,
}

/// Record the newest segment's length when it passes the recorded one by this much.
const LENGTH_STEP: u64 = 1 << 20;

impl FsLog {
    /// Records a new newest segment (its header is synced).
    pub(super) fn record_new_segment(&mut self, first_seq: u64) -> Result<(), LogError> {
        if self.manifest.newest.is_none() {
            self.manifest.first = first_seq;
        }
        self.manifest.newest = Some(first_seq);
        self.manifest.length = HEADER_BYTES as u64;
        self.write_state()
    }

    /// The newest segment's file grew to `length` (synced); `ahead` if zeros were written
    /// ahead. Recorded now and then (see the module docs).
    pub(super) fn record_growth(&mut self, length: u64, ahead: bool) -> Result<(), LogError> {
        if (ahead && length > self.manifest.length) || length >= self.manifest.length.saturating_add(LENGTH_STEP) {
            self.manifest.length = length;
            return self.write_state();
        }
        Ok(())
    }

    /// The newest segment's file is about to be cut to `length`.
    pub(super) fn record_cut(&mut self, length: u64) -> Result<(), LogError> {
        if self.manifest.length > length {
            self.manifest.length = length;
            return self.write_state();
        }
        Ok(())
    }

    /// A trim is about to delete the segments after the one starting at `newest`, whose file
    /// has `length` bytes.
    pub(super) fn record_trimmed(&mut self, newest: u64, length: u64) -> Result<(), LogError> {
        self.manifest.newest = Some(newest);
        self.manifest.length = length;
        self.write_state()
    }

    /// A prefix removal is about to delete the segments before `first`.
    pub(super) fn record_first(&mut self, first: u64) -> Result<(), LogError> {
        self.manifest.first = first;
        self.write_state()
    }

    /// Checks the listed segments against the record before recovery reads them; deletes the
    /// segments an interrupted prefix removal left. Returns the segments to read.
    pub(super) fn check_manifest(&self, mut listed: Vec<(u64, PathBuf)>) -> Result<Vec<(u64, PathBuf)>, LogError> {
        let record = self.manifest;
        let leftover = listed.windows(2).take_while(|pair| pair[1].0 <= record.first).count();
        for (_, path) in listed.drain(..leftover) {
            fs::remove_file(&path).map_err(io_error("delete segment", &path))?;
        }
        if leftover > 0 {
            self.sync_dir()?;
        }
        let Some(newest) = record.newest else { return Ok(listed) };
        let lost = |detail: String| Err(LogError::Lost { dir: self.dir.clone(), detail, prefix_survives: true });
        let lost_first = |detail: String| Err(LogError::Lost { dir: self.dir.clone(), detail, prefix_survives: false });
        match listed.first() {
            None => return lost_first(format!("every segment is missing (the log ran from seq {})", record.first)),
            Some((first, _)) if *first > record.first => {
                return lost_first(format!("the segments holding seqs {} to {} are missing", record.first, first - 1));
            }
            Some(_) => {}
        }
        let Some((_, path)) = listed.iter().find(|(first, _)| *first == newest) else {
            return lost(format!("the newest segment (from seq {newest}) is missing"));
        };
        let mut header = Vec::with_capacity(HEADER_BYTES);
        let file = File::open(path).map_err(io_error("open", path))?;
        let length = file.metadata().map_err(io_error("stat", path))?.len();
        file.take(HEADER_BYTES as u64).read_to_end(&mut header).map_err(io_error("read", path))?;
        if header.len() < HEADER_BYTES || header.iter().all(|b| *b == 0) {
            return lost(format!(
                "the newest segment (from seq {newest}) has no header, though it was synced when the segment \
                 was created: the file was emptied or zeroed"
            ));
        }
        if length < record.length {
            return lost(format!(
                "the newest segment (from seq {newest}) is {length} bytes, though it had reached {}: it was cut",
                record.length
            ));
        }
        Ok(listed)
    }

    /// After an open: the record matches what is on disk.
    pub(super) fn record_opened(&mut self) -> Result<(), LogError> {
        self.manifest = self.actual_manifest();
        self.write_state()
    }
}
