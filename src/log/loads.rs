//! Loads of entry ranges for a Raft core (`LogStore::load`) and single reads (`FsLog::read`): a
//! range is read a batch at a time, and the last batch read stays decoded, so consecutive loads
//! or reads inside one large batch (a leader sending a follower 1,024 entries at a time from
//! batches of 10,000, a restart applying its log) read, check and decrypt it once, not once
//! each.

use super::error::LogError;
use super::format::decode_batch;
use super::fslog::FsLog;
use crate::core::{Entry, Seq};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A batch decoded by a load: where it was (segment's first seq, byte offset, the log's trim
/// count then) and its entries.
pub(super) struct Loaded {
    at: (u64, u64, u64),
    entries: Arc<Vec<Entry>>,
}

/// The largest batch kept decoded between loads.
const KEPT_BYTES_MAX: usize = 8 << 20;

impl FsLog {
    /// The entries from `from` to `to`, inclusive; an error if the log does not hold them all.
    pub(super) fn load_range(&self, from: Seq, to: Seq) -> Result<Vec<Entry>, LogError> {
        let count = to.0.checked_sub(from.0).map_or(0, |n| n as usize + 1);
        let mut out = Vec::with_capacity(count);
        let mut seq = from.0;
        while seq <= to.0 {
            let missing = || LogError::Invalid(format!("{} of {count} entries in the log", out.len()));
            let (index, offset) = self.locate(seq).ok_or_else(missing)?;
            let entries = self.batch_entries(index, offset)?;
            let first = entries.first().map_or(seq, |entry| entry.seq.0);
            let Some(skip) = seq.checked_sub(first).map(|skip| skip as usize).filter(|skip| *skip < entries.len())
            else {
                let (_, path, _) = self.segment_at(index);
                let detail =
                    format!("the batch at byte {offset} does not hold seq {seq} (the disk changed under the log)");
                return Err(LogError::Damaged { path: path.to_path_buf(), detail });
            };
            let take = (entries.len() - skip).min((to.0 - seq + 1) as usize);
            out.extend(entries[skip..skip + take].iter().cloned());
            seq += take as u64;
        }
        Ok(out)
    }

    /// The entries of the batch at `offset` in segment `index`: the last one loaded, or read,
    /// checked and decoded now (and kept for the next load).
    fn batch_entries(&self, index: usize, offset: u64) -> Result<Arc<Vec<Entry>>, LogError> {
        let (first_seq, path, salt) = self.segment_at(index);
        let at = (first_seq, offset, self.trims.load(Ordering::SeqCst));
        let mut loaded = self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(hit) = loaded.as_ref().filter(|loaded| loaded.at == at) {
            return Ok(Arc::clone(&hit.entries));
        }
        let bytes = self.read_batch(index, offset)?;
        let encoder = &self.options.encoder;
        let damaged = |detail: String| LogError::Damaged {
            path: path.to_path_buf(),
            detail: format!("the batch at byte {offset}: {detail} (the disk changed under the log)"),
        };
        let batch = decode_batch(&bytes, encoder, salt, bytes.len()).map_err(|e| damaged(e.to_string()))?;
        let entries = Arc::new(batch.entries(encoder, &bytes, 0).map_err(|e| damaged(e.to_string()))?);
        // A huge batch (a large transaction) is not kept: its entries hold its bytes.
        *loaded = (bytes.len() <= KEPT_BYTES_MAX).then(|| Loaded { at, entries: Arc::clone(&entries) });
        Ok(entries)
    }
}
