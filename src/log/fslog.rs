//! `FsLog`: the durable, segmented file log, on top of the pure [`format`](super::format) and
//! [`recovery`](super::recovery).
//!
//! Files, for a log named `n` in directory `d`:
//! - `d/n.<first seq, 20 digits>.seg`: segments, in the record format;
//! - `d/n.state`: the term and vote, two 32-byte checksummed slots written alternately, so a
//!   torn write of one leaves the other (`counter u64, term u64, vote+1 u64, XXH3-64 of the 24`);
//! - `d/n.trim`: present only during a trim (its target seq, checksummed), so a crash in the
//!   middle completes the trim on the next open (fail-forward, as the seed's lock record did).
//!
//! Durability: every `append`/`append_batch` is one write and one fdatasync; creating or
//! deleting a file is followed by a directory fsync. A failed write or sync poisons the log:
//! every later call fails until it is reopened (data not known durable is never assumed so).

use super::format::{decode_record, encode_header, encode_record, Encoder, HEADER_BYTES, RECORD_HEAD_BYTES};
use super::recovery::{scan, Corruption, SegmentBytes};
use crate::core::{Entry, HardState, NodeId, Payload, Seq, Term};
use bytes::Bytes;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::xxh3_64;

/// How a log is opened.
#[derive(Clone, Debug)]
pub struct FsLogOptions {
    /// Record protection (default: xxhash checksums and chain).
    pub encoder: Encoder,
    /// A new segment starts when a batch would take the current one past this size (a batch is
    /// never split, and a segment always takes at least one batch). Default 64 MiB.
    pub segment_bytes: u64,
    /// The largest payload accepted, in bytes (default 16 MiB).
    pub payload_bytes_max: usize,
    /// Open a corrupt log by dropping the entries from this seq on (see `recovery`).
    pub repair_from: Option<u64>,
}

impl Default for FsLogOptions {
    fn default() -> FsLogOptions {
        FsLogOptions {
            encoder: Encoder::XxHash,
            segment_bytes: 64 << 20,
            payload_bytes_max: 16 << 20,
            repair_from: None,
        }
    }
}

/// Why a log operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum LogError {
    /// The file system failed; the log is poisoned if a write or sync was involved.
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The bytes on disk are corrupt (see `recovery` for what to do).
    Corrupt(Corruption),
    /// A file other than segments is damaged beyond its own redundancy.
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// An earlier write or sync failed: reopen the log.
    Poisoned(String),
    /// A bad argument: nothing was done.
    Invalid(String),
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Io { op, path, source } => write!(f, "{op} {}: {source}", path.display()),
            LogError::Corrupt(corruption) => corruption.fmt(f),
            LogError::Damaged { path, detail } => write!(f, "{} is damaged: {detail}", path.display()),
            LogError::Poisoned(why) => write!(f, "log unusable after a failed write or sync ({why}); reopen it"),
            LogError::Invalid(why) => write!(f, "invalid argument: {why}"),
        }
    }
}

impl std::error::Error for LogError {}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LogError + 'a {
    move |source| LogError::Io { op, path: path.to_path_buf(), source }
}

struct Segment {
    first_seq: u64,
    path: PathBuf,
    file: File,
    len: u64,
    /// Byte offset of each entry: 4 bytes per entry.
    offsets: Vec<u32>,
}

/// A transaction on an [`FsLog`] (see [`FsLog::txn`]). Nothing reaches the disk before `commit`;
/// appends are encoded at once into the transaction's own buffer.
pub struct Txn<'a> {
    log: &'a mut FsLog,
    trim: Option<Option<Seq>>,
    /// Borrowed from the log (its reusable buffer) and given back on drop.
    buffer: Vec<u8>,
    starts: Vec<usize>,
    /// The (seq, term) where each new term starts among the appends.
    term_starts: Vec<(u64, u64)>,
    /// The seq of the transaction's first append.
    first: u64,
    chain: u64,
    term: u64,
}

impl Txn<'_> {
    /// Trims the log to `seq` first (see [`FsLog::trim`]); only before any append.
    pub fn trim(&mut self, seq: Option<Seq>) -> Result<(), LogError> {
        if !self.starts.is_empty() {
            return Err(LogError::Invalid("trim comes before the transaction's appends".into()));
        }
        let end = seq.map_or(0, |s| s.0 + 1);
        if end < self.log.next_seq() {
            // The chain continues from the last kept record.
            let chain = match end.checked_sub(1) {
                Some(last) => self.log.stored(last)?.map_or(0, |stored| stored.checksum),
                None => 0,
            };
            self.trim = Some(seq);
            self.first = end;
            self.chain = chain;
            let kept = self.log.term_starts.iter().rev().find(|(start, _)| *start < end);
            self.term = kept.map_or(0, |(_, term)| *term);
        }
        Ok(())
    }

    /// Adds an entry; returns the seq it will have. A bad argument changes nothing.
    pub fn append(&mut self, term: Term, payload: Option<&[u8]>) -> Result<Seq, LogError> {
        if term.0 < self.term {
            return Err(LogError::Invalid(format!("term {term} after term {}", self.term)));
        }
        if payload.is_some_and(|p| p.len() > self.log.options.payload_bytes_max) {
            return Err(LogError::Invalid(format!("payload over {} bytes", self.log.options.payload_bytes_max)));
        }
        let seq = self.first + self.starts.len() as u64;
        self.starts.push(self.buffer.len());
        self.chain = encode_record(&mut self.buffer, self.log.options.encoder, seq, term.0, payload, self.chain);
        if self.term_starts.last().is_none_or(|(_, last)| *last != term.0) {
            self.term_starts.push((seq, term.0));
        }
        self.term = term.0;
        Ok(Seq(seq))
    }

    /// Makes the transaction durable: its trim, then its appends in one write and one
    /// fdatasync. Returns the first appended seq, if any.
    pub fn commit(mut self) -> Result<Option<Seq>, LogError> {
        if let Some(seq) = self.trim.take() {
            self.log.trim(seq)?;
        }
        if self.starts.is_empty() {
            return Ok(None);
        }
        let log = &mut *self.log;
        log.write_batch(self.first, &self.buffer, &self.starts)?;
        log.chain = self.chain;
        for (seq, term) in &self.term_starts {
            if log.term_starts.last().map(|t| t.1) != Some(*term) {
                log.term_starts.push((*seq, *term));
            }
        }
        log.last = Some((self.first + self.starts.len() as u64 - 1, self.term));
        Ok(Some(Seq(self.first)))
    }

    /// Drops the transaction: nothing changes on disk or in memory (dropping does the same).
    pub fn abort(self) {}
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        self.log.buffer = std::mem::take(&mut self.buffer);
    }
}

/// A record read back: what `read`, the tail reload and a transaction's trim need.
struct Stored {
    seq: u64,
    term: u64,
    checksum: u64,
    payload: Payload,
}

/// Iterates a log's entries in order (see [`FsLog::iter`]).
pub struct Iter<'a> {
    log: &'a FsLog,
    next: u64,
    end: u64,
    /// The segment of `next` (an index into the log's segments).
    segment: usize,
    /// Bytes of that segment from byte `chunk_at` on.
    chunk: Bytes,
    chunk_at: u64,
}

const CHUNK_BYTES: u64 = 1 << 20;

impl Iter<'_> {
    fn read(&mut self) -> Result<Option<Entry>, LogError> {
        if self.next >= self.end {
            return Ok(None);
        }
        let segments = &self.log.segments;
        while self.segment < segments.len() {
            let s = &segments[self.segment];
            if self.next < s.first_seq + s.offsets.len() as u64 {
                break;
            }
            self.segment += 1;
            self.chunk = Bytes::new();
        }
        let Some(segment) = segments.get(self.segment).filter(|s| s.first_seq <= self.next) else {
            return Err(LogError::Invalid(format!("seq {} was trimmed while iterating", self.next)));
        };
        let offset = u64::from(segment.offsets[(self.next - segment.first_seq) as usize]);
        let in_chunk =
            |at: u64, len: u64, iter: &Self| at >= iter.chunk_at && at + len <= iter.chunk_at + iter.chunk.len() as u64;
        if !in_chunk(offset, 4, self) {
            self.fill(segment, offset, 4)?;
        }
        let rel = (offset - self.chunk_at) as usize;
        let size = 4 + u64::from(u32::from_le_bytes(self.chunk[rel..rel + 4].try_into().expect("4 bytes")));
        if !in_chunk(offset, size, self) {
            self.fill(segment, offset, size)?;
        }
        let rel = (offset - self.chunk_at) as usize;
        let record_bytes = &self.chunk[rel..rel + size as usize];
        let record = decode_record(record_bytes, self.log.options.encoder, record_bytes.len()).map_err(|error| {
            LogError::Damaged {
                path: segment.path.clone(),
                detail: format!("seq {} at byte {offset}: {error}", self.next),
            }
        })?;
        let payload = match record.payload {
            Some(data) => {
                let start = rel + RECORD_HEAD_BYTES;
                Payload::Data(self.chunk.slice(start..start + data.len()))
            }
            None => Payload::Blank,
        };
        self.next += 1;
        Ok(Some(Entry { term: Term(record.term), seq: Seq(record.seq), payload }))
    }

    /// Reads at least `min` bytes of `segment` from `offset` (up to a chunk, within the file).
    fn fill(&mut self, segment: &Segment, offset: u64, min: u64) -> Result<(), LogError> {
        let len = CHUNK_BYTES.max(min).min(segment.len.saturating_sub(offset)).max(min);
        let mut buffer = vec![0u8; len as usize];
        segment.file.read_exact_at(&mut buffer, offset).map_err(io_error("read", &segment.path))?;
        self.chunk = Bytes::from(buffer);
        self.chunk_at = offset;
        Ok(())
    }
}

impl Iterator for Iter<'_> {
    type Item = Result<Entry, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        let result = self.read();
        if result.is_err() {
            self.next = self.end; // One error ends the iteration.
        }
        result.transpose()
    }
}

/// A durable, segmented log of entries with terms. See the module docs for the files.
pub struct FsLog {
    dir: PathBuf,
    name: String,
    options: FsLogOptions,
    segments: Vec<Segment>,
    last: Option<(u64, u64)>,
    chain: u64,
    /// The first (seq, term) of each run of entries with one term.
    term_starts: Vec<(u64, u64)>,
    hard_state: HardState,
    state_counter: u64,
    poisoned: Option<String>,
    buffer: Vec<u8>,
}

impl FsLog {
    /// Opens (or creates) the log `name` in `dir`, recovering from any crash.
    pub fn open(dir: impl AsRef<Path>, name: &str, options: FsLogOptions) -> Result<FsLog, LogError> {
        let dir = dir.as_ref().to_path_buf();
        if name.is_empty() || name.contains(['/', '.']) {
            return Err(LogError::Invalid(format!("log name {name:?} must be non-empty, without '/' or '.'")));
        }
        fs::create_dir_all(&dir).map_err(io_error("create directory", &dir))?;
        let mut log = FsLog::closed(dir, name, options);
        log.load_hard_state()?;
        log.recover()?;
        if let Some(target) = log.read_trim_intent()? {
            log.trim_files(target)?;
        }
        Ok(log)
    }

    /// A log with nothing loaded yet.
    fn closed(dir: PathBuf, name: &str, options: FsLogOptions) -> FsLog {
        FsLog {
            dir,
            name: name.to_string(),
            options,
            segments: Vec::new(),
            last: None,
            chain: 0,
            term_starts: Vec::new(),
            hard_state: HardState::default(),
            state_counter: 0,
            poisoned: None,
            buffer: Vec::new(),
        }
    }

    /// The record at `seq`, read and decoded (its payload a slice of the one read buffer).
    fn stored(&self, seq: u64) -> Result<Option<Stored>, LogError> {
        let Some((segment, offset)) = self.locate(seq) else { return Ok(None) };
        let mut head = [0u8; 4];
        segment.file.read_exact_at(&mut head, offset).map_err(io_error("read", &segment.path))?;
        let mut bytes = vec![0u8; 4 + u32::from_le_bytes(head) as usize];
        segment.file.read_exact_at(&mut bytes, offset).map_err(io_error("read", &segment.path))?;
        let bytes = Bytes::from(bytes);
        let record = decode_record(&bytes, self.options.encoder, bytes.len()).map_err(|error| LogError::Damaged {
            path: segment.path.clone(),
            detail: format!("seq {seq} at byte {offset}: {error} (the disk changed under the log)"),
        })?;
        let payload = match record.payload {
            Some(data) => Payload::Data(bytes.slice(RECORD_HEAD_BYTES..RECORD_HEAD_BYTES + data.len())),
            None => Payload::Blank,
        };
        Ok(Some(Stored { seq: record.seq, term: record.term, checksum: record.checksum, payload }))
    }

    fn segment_path(&self, first_seq: u64) -> PathBuf {
        self.dir.join(format!("{}.{first_seq:020}.seg", self.name))
    }

    /// The segment files of this log, sorted by first seq (numerically: the seed sorted names).
    fn list_segments(&self) -> Result<Vec<(u64, PathBuf)>, LogError> {
        let prefix = format!("{}.", self.name);
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_error("list", &self.dir))? {
            let entry = entry.map_err(io_error("list", &self.dir))?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else { continue };
            let Some(middle) = file_name.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(".seg")) else {
                continue;
            };
            if middle.len() == 20 && middle.bytes().all(|b| b.is_ascii_digit()) {
                let first_seq = middle.parse::<u64>().map_err(|_| LogError::Damaged {
                    path: entry.path(),
                    detail: "segment name out of range".into(),
                })?;
                found.push((first_seq, entry.path()));
            }
        }
        found.sort_unstable_by_key(|(first, _)| *first);
        Ok(found)
    }

    fn recover(&mut self) -> Result<(), LogError> {
        let listed = self.list_segments()?;
        let mut contents = Vec::with_capacity(listed.len());
        for (_, path) in &listed {
            contents.push(fs::read(path).map_err(io_error("read", path))?);
        }
        let views: Vec<SegmentBytes<'_>> = listed
            .iter()
            .zip(&contents)
            .map(|((first_seq, _), bytes)| SegmentBytes { first_seq: *first_seq, bytes })
            .collect();
        let max = self.options.payload_bytes_max + RECORD_HEAD_BYTES + self.options.encoder.trailer_bytes();
        let result = scan(&views, self.options.encoder, max, self.options.repair_from).map_err(LogError::Corrupt)?;
        let mut deleted = false;
        for (segment, (first_seq, path)) in result.segments.into_iter().zip(listed) {
            if segment.delete {
                fs::remove_file(&path).map_err(io_error("delete", &path))?;
                deleted = true;
                continue;
            }
            let file = OpenOptions::new().read(true).append(true).open(&path).map_err(io_error("open", &path))?;
            let on_disk = file.metadata().map_err(io_error("stat", &path))?.len();
            if segment.valid_len < on_disk {
                file.set_len(segment.valid_len).map_err(io_error("truncate", &path))?;
                file.sync_all().map_err(io_error("sync", &path))?;
            }
            self.segments.push(Segment {
                first_seq,
                path,
                file,
                len: segment.valid_len.max(HEADER_BYTES as u64),
                offsets: segment.offsets,
            });
        }
        if deleted {
            self.sync_dir()?;
        }
        self.last = result.last;
        self.chain = result.last_checksum;
        self.term_starts = result.term_starts;
        Ok(())
    }

    fn sync_dir(&self) -> Result<(), LogError> {
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io_error("sync directory", &self.dir))
    }

    fn check(&self) -> Result<(), LogError> {
        match &self.poisoned {
            Some(why) => Err(LogError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    fn poison<T>(&mut self, error: LogError) -> Result<T, LogError> {
        self.poisoned = Some(error.to_string());
        Err(error)
    }

    /// The seq of the last entry (the seed's `seq`; `None` for an empty log).
    pub fn seq(&self) -> Option<Seq> {
        self.last.map(|(seq, _)| Seq(seq))
    }

    /// The term of the last entry.
    pub fn last_term(&self) -> Option<Term> {
        self.last.map(|(_, term)| Term(term))
    }

    /// The hash chain's head: with `(seq, last_term)` it fingerprints the whole log.
    pub fn chain(&self) -> u64 {
        self.chain
    }

    /// The seq the next entry gets.
    fn next_seq(&self) -> u64 {
        self.last.map_or_else(|| self.segments.first().map_or(0, |s| s.first_seq), |(seq, _)| seq + 1)
    }

    /// Appends one entry durably; returns its seq.
    pub fn append(&mut self, term: Term, payload: Option<&[u8]>) -> Result<Seq, LogError> {
        self.append_batch(&[(term, payload)])
    }

    /// Appends entries at consecutive seqs with one write and one fdatasync; returns the first
    /// seq. Terms must not decrease. Bad arguments change nothing.
    pub fn append_batch(&mut self, entries: &[(Term, Option<&[u8]>)]) -> Result<Seq, LogError> {
        if entries.is_empty() {
            return Err(LogError::Invalid("append_batch needs at least one entry".into()));
        }
        // A transaction of these entries: validated and encoded once, in one place.
        let mut txn = self.txn()?;
        for (term, payload) in entries {
            txn.append(*term, *payload)?;
        }
        Ok(txn.commit()?.expect("at least one entry was appended"))
    }

    fn write_batch(&mut self, first: u64, buffer: &[u8], starts: &[usize]) -> Result<(), LogError> {
        let needs_segment = match self.segments.last() {
            None => true,
            Some(segment) => {
                !segment.offsets.is_empty() && segment.len + buffer.len() as u64 > self.options.segment_bytes
            }
        };
        if needs_segment {
            self.create_segment(first)?;
        }
        let segment = self.segments.last_mut().expect("a segment exists");
        let base = segment.len;
        if base + buffer.len() as u64 > u64::from(u32::MAX) {
            return Err(LogError::Invalid("a segment cannot pass 4 GiB: lower segment_bytes".into()));
        }
        let path = segment.path.clone();
        if let Err(error) = segment.file.write_all(buffer).and_then(|()| segment.file.sync_data()) {
            // Unknown what reached the disk: the next open recovers a prefix.
            return self.poison(LogError::Io { op: "append", path, source: error });
        }
        segment.len += buffer.len() as u64;
        segment.offsets.extend(starts.iter().map(|s| (base + *s as u64) as u32));
        Ok(())
    }

    fn create_segment(&mut self, first_seq: u64) -> Result<(), LogError> {
        let path = self.segment_path(first_seq);
        let created = (|| {
            let mut file = OpenOptions::new().read(true).append(true).create_new(true).open(&path)?;
            file.write_all(&encode_header(self.options.encoder, first_seq))?;
            file.sync_all()?;
            Ok(file)
        })();
        let file = match created {
            Ok(file) => file,
            Err(source) => return self.poison(LogError::Io { op: "create segment", path, source }),
        };
        if let Err(error) = self.sync_dir() {
            return self.poison(error);
        }
        self.segments.push(Segment { first_seq, path, file, len: HEADER_BYTES as u64, offsets: Vec::new() });
        Ok(())
    }

    fn locate(&self, seq: u64) -> Option<(&Segment, u64)> {
        let index = self.segments.partition_point(|s| s.first_seq <= seq).checked_sub(1)?;
        let segment = &self.segments[index];
        let offset = *segment.offsets.get((seq - segment.first_seq) as usize)?;
        Some((segment, u64::from(offset)))
    }

    /// Reads the entry at `seq`.
    pub fn read(&self, seq: Seq) -> Result<Option<Entry>, LogError> {
        self.check()?;
        let stored = self.stored(seq.0)?;
        Ok(stored.map(|s| Entry { term: Term(s.term), seq: Seq(s.seq), payload: s.payload }))
    }

    /// Entries from `from` to the last entry as of now (a snapshot end: later appends are not
    /// included). Reads go through 1 MiB chunks; payloads are slices of them (no copy).
    pub fn iter(&self, from: Seq) -> Iter<'_> {
        let end = self.last.map_or(0, |(seq, _)| seq + 1);
        Iter { log: self, next: from.0, end, segment: 0, chunk: Bytes::new(), chunk_at: 0 }
    }

    /// Starts a transaction: appends (and optionally a trim first) that become durable together
    /// at `commit`, with one write and one fdatasync, or leave no trace if it is dropped or
    /// aborted.
    pub fn txn(&mut self) -> Result<Txn<'_>, LogError> {
        self.check()?;
        let first = self.next_seq();
        let term = self.last.map_or(0, |(_, term)| term);
        let chain = self.chain;
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        let (starts, term_starts) = (Vec::new(), Vec::new());
        Ok(Txn { log: self, trim: None, buffer, starts, term_starts, first, chain, term })
    }

    /// Keeps entries up to `seq` (all with `None`), removing those after it. Fail-forward: a
    /// crash in the middle completes the trim at the next open.
    pub fn trim(&mut self, seq: Option<Seq>) -> Result<(), LogError> {
        self.check()?;
        let keep_end = seq.map_or(0, |s| s.0 + 1);
        if keep_end >= self.next_seq() {
            return Ok(());
        }
        self.write_trim_intent(keep_end)?;
        self.trim_files(keep_end)
    }

    fn trim_path(&self) -> PathBuf {
        self.dir.join(format!("{}.trim", self.name))
    }

    fn write_trim_intent(&mut self, keep_end: u64) -> Result<(), LogError> {
        let path = self.trim_path();
        let mut bytes = keep_end.to_le_bytes().to_vec();
        bytes.extend_from_slice(&xxh3_64(&bytes).to_le_bytes());
        let written = File::create(&path).and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()));
        if let Err(source) = written {
            return self.poison(LogError::Io { op: "write trim intent", path, source });
        }
        self.sync_dir().or_else(|e| self.poison(e))
    }

    fn read_trim_intent(&self) -> Result<Option<u64>, LogError> {
        let path = self.trim_path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LogError::Io { op: "read", path, source }),
        };
        // A torn intent was never acted on: the trim had not started.
        let valid = bytes.len() == 16 && xxh3_64(&bytes[..8]).to_le_bytes() == bytes[8..16];
        Ok(valid.then(|| u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))))
    }

    /// Removes entries from `keep_end` on: later segments first (newest to oldest), then the
    /// tail of the segment that holds `keep_end`, then the intent.
    fn trim_files(&mut self, keep_end: u64) -> Result<(), LogError> {
        while self.segments.last().is_some_and(|s| s.first_seq >= keep_end && s.first_seq > 0) {
            let segment = self.segments.pop().expect("checked");
            if let Err(source) = fs::remove_file(&segment.path) {
                return self.poison(LogError::Io { op: "delete segment", path: segment.path, source });
            }
        }
        self.sync_dir().or_else(|e| self.poison(e))?;
        if let Some(segment) = self.segments.last_mut() {
            let keep = keep_end.saturating_sub(segment.first_seq) as usize;
            if keep < segment.offsets.len() {
                let new_len = u64::from(segment.offsets[keep]);
                let path = segment.path.clone();
                let cut = segment.file.set_len(new_len).and_then(|()| segment.file.sync_all());
                if let Err(source) = cut {
                    return self.poison(LogError::Io { op: "truncate", path, source });
                }
                segment.len = new_len;
                segment.offsets.truncate(keep);
            }
        }
        let path = self.trim_path();
        match fs::remove_file(&path) {
            Ok(()) => self.sync_dir().or_else(|e| self.poison(e))?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return self.poison(LogError::Io { op: "delete trim intent", path, source }),
        }
        self.reload_tail()
    }

    /// Recomputes the last entry, chain head and term runs after a trim.
    fn reload_tail(&mut self) -> Result<(), LogError> {
        let last_seq =
            self.segments.iter().rev().find_map(|s| s.offsets.len().checked_sub(1).map(|i| s.first_seq + i as u64));
        self.term_starts.retain(|(seq, _)| Some(*seq) <= last_seq);
        let last = match last_seq {
            Some(seq) => self.stored(seq)?,
            None => None,
        };
        self.last = last.as_ref().map(|s| (s.seq, s.term));
        self.chain = last.map_or(0, |s| s.checksum);
        Ok(())
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join(format!("{}.state", self.name))
    }

    /// The saved term and vote.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// Saves the term and vote durably and atomically (into the older of two slots).
    pub fn save_hard_state(&mut self, state: HardState) -> Result<(), LogError> {
        self.check()?;
        let counter = self.state_counter + 1;
        let mut slot = [0u8; 32];
        slot[0..8].copy_from_slice(&counter.to_le_bytes());
        slot[8..16].copy_from_slice(&state.term.0.to_le_bytes());
        slot[16..24].copy_from_slice(&state.vote.map_or(0, |v| v.0.wrapping_add(1)).to_le_bytes());
        let checksum = xxh3_64(&slot[0..24]);
        slot[24..32].copy_from_slice(&checksum.to_le_bytes());
        let path = self.state_path();
        let existed = path.exists();
        let written =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).and_then(|file| {
                file.write_all_at(&slot, (counter % 2) * 32)?;
                file.sync_data()
            });
        if let Err(source) = written {
            return self.poison(LogError::Io { op: "save term and vote", path, source });
        }
        if !existed {
            self.sync_dir().or_else(|e| self.poison(e))?;
        }
        self.state_counter = counter;
        self.hard_state = state;
        Ok(())
    }

    fn load_hard_state(&mut self) -> Result<(), LogError> {
        let path = self.state_path();
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut file) => {
                file.seek(SeekFrom::Start(0))
                    .and_then(|_| file.read_to_end(&mut bytes))
                    .map_err(io_error("read", &path))?;
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(LogError::Io { op: "open", path, source }),
        }
        let slots = bytes.chunks(32).filter(|slot| slot.len() == 32).filter_map(|slot| {
            let word = |at: usize| u64::from_le_bytes(slot[at..at + 8].try_into().expect("8 bytes"));
            (xxh3_64(&slot[0..24]) == word(24)).then(|| (word(0), word(8), word(16)))
        });
        match slots.max_by_key(|(counter, _, _)| *counter) {
            Some((counter, term, vote)) => {
                self.state_counter = counter;
                self.hard_state = HardState { term: Term(term), vote: vote.checked_sub(1).map(NodeId) };
                Ok(())
            }
            None if bytes.iter().all(|b| *b == 0) => Ok(()),
            None => Err(LogError::Damaged { path, detail: "both term-and-vote slots fail their checksum".into() }),
        }
    }

    /// Deletes every file of the log `name` in `dir` (the log must not be open).
    pub fn del(dir: impl AsRef<Path>, name: &str) -> Result<(), LogError> {
        let dir = dir.as_ref();
        let probe = FsLog::closed(dir.to_path_buf(), name, FsLogOptions::default());
        if !dir.exists() {
            return Ok(());
        }
        let mut paths: Vec<PathBuf> = probe.list_segments()?.into_iter().map(|(_, path)| path).collect();
        paths.push(probe.state_path());
        paths.push(probe.trim_path());
        for path in paths {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(LogError::Io { op: "delete", path, source }),
            }
        }
        probe.sync_dir()
    }

    /// What a Raft core restarted from this log starts with: term and vote, the term runs, and
    /// the last `tail` entries (the core loads older ones when it needs them).
    pub fn recovered(&self, tail: usize) -> Result<crate::core::Recovered, LogError> {
        use crate::core::{LogId, Recovered};
        let end = self.last.map_or(0, |(seq, _)| seq + 1);
        let first = self.segments.first().map_or(0, |s| s.first_seq);
        let from = end.saturating_sub(tail as u64).max(first);
        let entries = self.iter(Seq(from)).collect::<Result<Vec<Entry>, LogError>>()?;
        Ok(Recovered {
            hard_state: self.hard_state,
            first: Seq(first),
            term_starts: self.term_starts.iter().map(|(seq, term)| LogId::new(Term(*term), Seq(*seq))).collect(),
            last: self.last.map(|(seq, term)| LogId::new(Term(term), Seq(seq))),
            tail: entries,
        })
    }

    /// The largest payload this log accepts.
    pub fn payload_bytes_max(&self) -> usize {
        self.options.payload_bytes_max
    }

    /// The number of segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The bytes of all segment files.
    pub fn disk_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// The memory the in-memory index takes (4 bytes per entry, plus per segment).
    pub fn index_bytes(&self) -> usize {
        let per_segment = std::mem::size_of::<Segment>();
        self.segments.iter().map(|s| s.offsets.capacity() * 4 + per_segment).sum()
    }
}
