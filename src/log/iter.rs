//! Iteration over an [`FsLog`](super::FsLog) that holds its own file handles, so the log stays
//! free for appends (and the iterator may move to another thread).

use super::format::{batch_size, decode_batch, Encoder, HEADER_BYTES};
use super::LogError;
use crate::core::Entry;
use bytes::Bytes;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One segment as an iterator sees it: its length when the iterator was made.
pub(super) struct SegmentView {
    pub(super) first_seq: u64,
    pub(super) path: PathBuf,
    pub(super) file: Arc<File>,
    pub(super) salt: u32,
    pub(super) len: u64,
}

/// Iterates a log's entries in order, from a seq to the last entry at the time it was made
/// (see [`FsLog::iter`](super::FsLog::iter)); a trim of the log ends it with
/// [`LogError::Trimmed`], so it never yields an entry that did not exist when it was made.
/// Batches are read in 1 MiB chunks (a larger batch whole); plain and xxhash payloads are
/// slices of them (no copy), encrypted ones are decrypted a batch at a time.
pub struct Iter {
    encoder: Encoder,
    /// The largest batch the log accepts (a longer size field is damage).
    batch_bytes_max: u64,
    segments: Vec<SegmentView>,
    /// The segment of the next batch to read, and its byte offset in it.
    segment: usize,
    offset: u64,
    /// Entries of the batch read last, not yielded yet (the next one last).
    ready: Vec<Entry>,
    next: u64,
    end: u64,
    /// Bytes of the current segment from byte `chunk_at` on.
    chunk: Bytes,
    chunk_at: u64,
    /// An error to yield first (the start was invalid).
    failed: Option<LogError>,
    /// The log's trim counter, and its value when the iterator was made.
    trims: Option<(Arc<AtomicU64>, u64)>,
}

const CHUNK_BYTES: u64 = 1 << 20;

impl Iter {
    pub(super) fn new(encoder: Encoder, max: usize, segments: Vec<SegmentView>, at: (u64, u64), end: u64) -> Iter {
        let (next, offset) = at;
        let (chunk, chunk_at, failed) = (Bytes::new(), 0, None);
        let (segment, trims) = (0, None);
        Iter {
            encoder,
            batch_bytes_max: max as u64,
            segments,
            segment,
            offset,
            ready: Vec::new(),
            next,
            end,
            chunk,
            chunk_at,
            failed,
            trims,
        }
    }

    /// Stops the iteration with [`LogError::Trimmed`] once the log's trim counter moves: a
    /// trim may put other entries where this iterator reads.
    pub(super) fn watching(mut self, trims: (Arc<AtomicU64>, u64)) -> Iter {
        self.trims = Some(trims);
        self
    }

    pub(super) fn failed(error: LogError) -> Iter {
        let mut iter = Iter::new(Encoder::Plain, 0, Vec::new(), (0, 0), 0);
        iter.failed = Some(error);
        iter
    }

    fn read(&mut self) -> Result<Option<Entry>, LogError> {
        if self.next >= self.end {
            return Ok(None);
        }
        if self.ready.is_empty() {
            self.read_batch()?;
        }
        let entry = self.ready.pop().expect("a batch holds the next entry");
        // Checked after the read: a trim bumps the counter before it changes a file, so bytes
        // read from a changed file are always caught here.
        if self.trims.as_ref().is_some_and(|(now, then)| now.load(Ordering::SeqCst) != *then) {
            return Err(LogError::Trimmed { seq: self.next });
        }
        self.next += 1;
        Ok(Some(entry))
    }

    /// Reads the batch at the current offset into `ready` (its entries from `next` on, up to
    /// `end`, in reverse).
    fn read_batch(&mut self) -> Result<(), LogError> {
        while self.offset >= self.segments[self.segment].len {
            self.segment += 1;
            self.offset = HEADER_BYTES as u64;
            self.chunk = Bytes::new();
            if self.segments.get(self.segment).is_none_or(|s| s.first_seq != self.next) {
                return Err(LogError::Invalid(format!("seq {} was trimmed while iterating", self.next)));
            }
        }
        let offset = self.offset;
        let at = self.load(offset, 4)?;
        let size = batch_size(&self.chunk[at..]).expect("4 bytes") as u64;
        if size > self.batch_bytes_max || offset + size > self.segments[self.segment].len {
            return Err(self.damaged(offset, format!("impossible batch size {size}")));
        }
        let at = self.load(offset, size)?;
        let bytes = &self.chunk[at..at + size as usize];
        let damaged = |detail: String| self.damaged(offset, detail);
        let salt = self.segments[self.segment].salt;
        let batch = decode_batch(bytes, &self.encoder, salt, bytes.len()).map_err(|e| damaged(e.to_string()))?;
        if batch.first > self.next || batch.last() < self.next {
            return Err(damaged(format!("found seqs {}..={} (trimmed while iterating?)", batch.first, batch.last())));
        }
        let seqs = self.next..self.end;
        let mut entries = batch.entries_in(&self.encoder, &self.chunk, at, seqs).map_err(|e| damaged(e.to_string()))?;
        entries.reverse();
        self.ready = entries;
        self.offset += size;
        Ok(())
    }

    fn damaged(&self, offset: u64, detail: String) -> LogError {
        let path = self.segments[self.segment].path.clone();
        LogError::Damaged { path, detail: format!("seq {} in the batch at byte {offset}: {detail}", self.next) }
    }

    /// Makes sure the chunk holds `len` bytes of the current segment from `offset` (reading
    /// anew if not); returns where they start in it.
    fn load(&mut self, offset: u64, len: u64) -> Result<usize, LogError> {
        let chunk_end = self.chunk_at + self.chunk.len() as u64;
        if offset < self.chunk_at || offset + len > chunk_end {
            let segment = &self.segments[self.segment];
            let want = CHUNK_BYTES.max(len).min(segment.len.saturating_sub(offset)).max(len);
            let mut buffer = vec![0u8; want as usize];
            segment.file.read_exact_at(&mut buffer, offset).map_err(|source| LogError::Io {
                op: "read",
                path: segment.path.clone(),
                source,
            })?;
            self.chunk = Bytes::from(buffer);
            self.chunk_at = offset;
        }
        Ok((offset - self.chunk_at) as usize)
    }
}

impl Iterator for Iter {
    type Item = Result<Entry, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.failed.take() {
            return Some(Err(error));
        }
        let result = self.read();
        if result.is_err() {
            self.next = self.end; // One error ends the iteration.
        }
        result.transpose()
    }
}
