//! Evidence a repair keeps (Protocol-Aware Recovery): when a durable record in the middle of
//! the log is damaged, the records after it that the node knew committed (at or below the
//! commit hint saved with its term and vote) are still there. Before the repair cuts the log,
//! their ids and digests are saved to `n.evidence`; the core then refuses a leader whose
//! entries contradict them (see `core::Recovered::evidence`). The file goes once the log holds
//! every seq it names again (entries the core verified before it wrote them).
//!
//! The file: a little-endian u64 count, then per entry its seq, term and `Entry::digest`
//! (u64 each), then the XXH3-64 of everything before. Written to a temporary file, synced,
//! renamed, the directory synced: a crash leaves the old file or the new one, never a torn one.

use super::error::{io_error, LogError};
use super::format::{batch_size, decode_batch, decode_header, Encoder, HEADER_BYTES};
use super::fslog::{FsLog, FsLogOptions};
use crate::core::{LogId, Seq, Term};
use bytes::Bytes;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::xxh3_64;

impl FsLog {
    fn evidence_path(dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{name}.evidence"))
    }

    /// Before a repair cuts the log named `name` in `dir` at its damaged entry `damaged`: saves
    /// as evidence the entries after it that the log knew committed (with what an earlier
    /// repair kept), under the log's lock.
    pub(super) fn keep_survivors(dir: &Path, name: &str, options: &FsLogOptions, damaged: u64) -> Result<(), LogError> {
        let mut probe = FsLog::closed(dir.to_path_buf(), name, options.clone());
        let _lock = probe.lock()?;
        probe.load_hard_state()?;
        let evidence = probe.survivors(damaged)?;
        probe.save_evidence(&evidence)
    }

    /// The entries after the damaged one at `damaged` that this (closed, locked) log knew
    /// committed, read from its segments: each one's id and digest, in order, each chained to
    /// the one before. With what an earlier repair kept.
    fn survivors(&self, damaged: u64) -> Result<Vec<(LogId, u64)>, LogError> {
        let options = &self.options;
        let mut kept = self.load_evidence()?;
        let hint = self.hard_state.commit.map(|c| c.0).filter(|hint| *hint > damaged);
        // Without checksums, damage cannot be told from data: nothing is kept as evidence.
        let Some(hint) = hint.filter(|_| options.encoder.checksummed()) else { return Ok(kept) };
        let batch_max = self.batch_bytes_max();
        let segments = self.list_segments()?;
        let Some(start) = segments.iter().rposition(|(first, _)| *first <= damaged) else { return Ok(kept) };
        let mut found: Vec<(LogId, u64)> = Vec::new();
        // The seq the next batch must start at: unknown right after the damaged batch (its
        // count may be what is damaged), then each batch's successor.
        let mut expected: Option<u64> = None;
        let mut chain: Option<u64> = None;
        'segments: for (index, (first, path)) in segments.iter().enumerate().skip(start) {
            let bytes = Bytes::from(fs::read(path).map_err(io_error("read", path))?);
            let Some(salt) =
                decode_header(&bytes, &options.encoder).ok().filter(|h| h.first_seq == *first).map(|h| h.salt)
            else {
                break;
            };
            let mut at = HEADER_BYTES;
            if index == start {
                // Walk the valid batches to the damaged one, then find the next batch after it
                // (in the next segment if none follows it in this one).
                at = resync(&bytes, &options.encoder, salt, batch_max, *first, damaged).unwrap_or(bytes.len());
            } else if expected.map_or(*first <= damaged, |seq| *first != seq) {
                break;
            }
            while at < bytes.len() {
                let Ok(batch) = decode_batch(&bytes[at..], &options.encoder, salt, batch_max) else { break 'segments };
                let in_place = expected.map_or(batch.first > damaged, |seq| batch.first == seq);
                let chained = chain.is_none_or(|c| c == batch.chain);
                if !in_place || !chained || found.last().is_some_and(|(id, _)| batch.term < id.term.0) {
                    break 'segments;
                }
                let Ok(entries) = batch.entries(&options.encoder, &bytes, at) else { break 'segments };
                found.extend(entries.iter().filter(|e| e.seq.0 <= hint).map(|e| (e.id(), e.digest())));
                (chain, expected, at) = (Some(batch.checksum), Some(batch.last().saturating_add(1)), at + batch.size);
                if batch.last() >= hint {
                    break 'segments;
                }
            }
        }
        let expected = expected.unwrap_or(damaged + 1);
        // Evidence from an earlier repair lies past the log's end, so past these.
        found.extend(kept.drain(..).filter(|(id, _)| id.seq.0 >= expected));
        Ok(found)
    }

    /// Saves `evidence` durably (replacing any earlier file), or deletes the file if it is
    /// empty.
    pub(super) fn save_evidence(&self, evidence: &[(LogId, u64)]) -> Result<(), LogError> {
        let path = FsLog::evidence_path(&self.dir, &self.name);
        if evidence.is_empty() {
            return match fs::remove_file(&path) {
                Ok(()) => self.sync_dir(),
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(LogError::Io { op: "delete", path, source }),
            };
        }
        let mut bytes = (evidence.len() as u64).to_le_bytes().to_vec();
        for (id, digest) in evidence {
            for word in [id.seq.0, id.term.0, *digest] {
                bytes.extend_from_slice(&word.to_le_bytes());
            }
        }
        bytes.extend_from_slice(&xxh3_64(&bytes).to_le_bytes());
        self.write_atomically("evidence", &bytes)
    }

    /// Replaces the file `<name>.<suffix>` with `bytes` durably: written to a temporary file,
    /// synced, renamed, the directory synced (a crash leaves the old file or the new one).
    pub(super) fn write_atomically(&self, suffix: &str, bytes: &[u8]) -> Result<(), LogError> {
        let path = self.dir.join(format!("{}.{suffix}", self.name));
        let temporary = self.dir.join(format!("{}.{suffix}-new", self.name));
        let written = fs::File::create(&temporary).and_then(|file| {
            use std::io::Write as _;
            let mut file = file;
            file.write_all(bytes)?;
            file.sync_all()
        });
        written.map_err(io_error("write", &temporary))?;
        fs::rename(&temporary, &path).map_err(io_error("rename", &temporary))?;
        self.sync_dir()
    }

    /// The saved evidence (none without a file).
    pub(super) fn load_evidence(&self) -> Result<Vec<(LogId, u64)>, LogError> {
        let path = FsLog::evidence_path(&self.dir, &self.name);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(LogError::Io { op: "read", path, source }),
        };
        let damaged = || LogError::Damaged {
            path: path.clone(),
            detail: "the evidence a repair kept (entries known committed past damage to the log) fails its checksum; \
                     delete this file to go on without it (the node then takes a leader's entries at those seqs \
                     unchecked)"
                .into(),
        };
        let words: Vec<u64> =
            bytes.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().expect("chunks of 8"))).collect();
        let (Some((checksum, body)), true) = (words.split_last(), bytes.len() % 8 == 0) else { return Err(damaged()) };
        let count = body.first().copied().unwrap_or(0);
        if xxh3_64(&bytes[..bytes.len() - 8]) != *checksum || body.len() as u64 != 1 + count.saturating_mul(3) {
            return Err(damaged());
        }
        let mut evidence: Vec<(LogId, u64)> =
            body[1..].chunks_exact(3).map(|w| (LogId::new(Term(w[1]), Seq(w[0])), w[2])).collect();
        evidence.sort_by_key(|(id, _)| id.seq);
        Ok(evidence)
    }

    /// At open: loads the evidence still needed (past the log's end; the rest was verified by
    /// the core before it was written), and drops the file once none is.
    pub(super) fn open_evidence(&mut self) -> Result<(), LogError> {
        let mut evidence = self.load_evidence()?;
        let end = self.seq().map_or(self.first().0, |s| s.0 + 1);
        let before = evidence.len();
        evidence.retain(|(id, _)| id.seq.0 >= end && Some(id.seq) <= self.hard_state.commit);
        if evidence.len() != before {
            self.save_evidence(&evidence)?;
        }
        self.evidence = evidence;
        Ok(())
    }
}

/// The offset of the batch after the damaged one at seq `damaged` in a segment's `bytes`
/// (starting at seq `first`, with the segment's `salt`): the valid batches before it are
/// walked; past it, its own size is tried first, then every later offset (a damaged size
/// field), for a batch that decodes with a later seq.
fn resync(bytes: &[u8], encoder: &Encoder, salt: u32, batch_max: usize, first: u64, damaged: u64) -> Option<usize> {
    let (mut at, mut next) = (HEADER_BYTES, first);
    while next < damaged {
        let batch = decode_batch(bytes.get(at..)?, encoder, salt, batch_max).ok()?;
        (at, next) = (at + batch.size, batch.last().saturating_add(1));
    }
    let is_later = |offset: usize| {
        let batch = bytes.get(offset..).and_then(|rest| decode_batch(rest, encoder, salt, batch_max).ok());
        batch.is_some_and(|batch| batch.first > damaged)
    };
    let size = bytes.get(at..).and_then(batch_size);
    if let Some(after) = size.map(|size| at + size).filter(|after| is_later(*after)) {
        return Some(after);
    }
    (at + 1..bytes.len()).find(|offset| is_later(*offset))
}
