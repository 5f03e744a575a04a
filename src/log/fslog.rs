//! `FsLog`: the durable, segmented file log, on top of the pure [`format`](super::format) and
//! [`recovery`](super::recovery).
//!
//! Files, for a log named `n` in directory `d`:
//! - `d/n.<first seq, 20 digits>.seg`: segments, in the batch format (`format.rs`);
//! - `d/n.<first seq, 20 digits>.spare`: files of segments a prefix removal took off, kept to
//!   be recycled as new segments (see `spares.rs`);
//! - `d/n.state`: the term, vote, catching-up flag and segment record (see `manifest`), in two
//!   64-byte checksummed slots written alternately, so a torn write of one leaves the other
//!   (byte by byte in `state.rs`). A log without it is new, or lost it: it opens catching up
//!   (see `HardState::catching_up`), and so does a log opened with `repair_from`;
//! - `d/n.lock`: empty; an open log holds an advisory lock on it (`flock`), so a second open,
//!   in this process or another, fails at once with `LogError::Locked`;
//! - `d/n.trim`: present only during a trim (its target seq and, for a trim inside a batch,
//!   the batch that replaces it, checksummed), so a crash in the middle completes the trim on
//!   the next open (fail-forward, as the seed's lock record did).
//!
//! Durability: every `append`/`append_batch`/transaction is one batch: one write and one
//! fdatasync; creating or deleting a file is followed by a directory fsync. A failed write or
//! sync poisons the log: every later call fails until it is reopened (data not known durable is
//! never assumed so). Opening reads one segment at a time.

use super::deferred::PendingSync;
use super::direct::DirectFile;
use super::error::{io_error, LogError};
use super::format::{
    batch_size, decode_batch, encode_header, BatchBuilder, Encoder, Header, HEADER_BYTES, NONCE_BYTES,
};
use super::iter::{Iter, SegmentView};
use super::recovery::{Case, Scanner, SegmentBytes, SegmentScan};
use super::txn::Txn;
use crate::core::{Entry, HardState, Payload, Seq, Term};
use bytes::Bytes;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::OsRng;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How a log is opened.
#[derive(Clone, Debug)]
pub struct FsLogOptions {
    /// Batch protection (default: xxhash checksums and chain).
    pub encoder: Encoder,
    /// A new segment starts when a batch would take the current one past this size (a batch is
    /// never split, and a segment always takes at least one batch). Default 64 MiB, at most
    /// 2 GiB.
    pub segment_bytes: u64,
    /// The largest payload accepted, in bytes (default 16 MiB, at most 1 GiB).
    pub payload_bytes_max: usize,
    /// Open a corrupt log by dropping the entries from this seq on (see `recovery`).
    pub repair_from: Option<u64>,
    /// How many segment files a prefix removal keeps, to be recycled as new segments (their
    /// appends then overwrite written space, which syncs faster than growing a file: see
    /// `spares.rs`). Default 2; 0 deletes removed segments at once. Not with the plain encoder,
    /// whose logs always delete them.
    pub spare_segments: usize,
    /// Batches of at least this many bytes are written past the page cache (`O_DIRECT`, on
    /// Linux, where the file system takes it), which syncs them faster (see `direct.rs`).
    /// Default 32 KiB; `usize::MAX` never. Not with the plain encoder.
    pub direct_writes_from: usize,
}

impl Default for FsLogOptions {
    fn default() -> FsLogOptions {
        FsLogOptions {
            encoder: Encoder::XxHash,
            segment_bytes: 64 << 20,
            payload_bytes_max: 16 << 20,
            repair_from: None,
            spare_segments: 2,
            direct_writes_from: 32 << 10,
        }
    }
}

pub(super) struct Segment {
    pub(super) first_seq: u64,
    pub(super) path: PathBuf,
    /// Shared with iterators.
    pub(super) file: Arc<File>,
    /// The seed of its batches' checksums (see `spares.rs`).
    pub(super) salt: u32,
    /// The bytes of batches (the file may be longer: zeros written ahead).
    pub(super) len: u64,
    /// The file's length.
    pub(super) allocated: u64,
    /// The byte offset of each entry's batch: 4 bytes per entry.
    pub(super) offsets: Vec<u32>,
    /// The file opened for direct writes, once a batch was written so (see `direct.rs`).
    pub(super) direct: Option<DirectFile>,
}

impl Segment {
    /// A segment of the log: its file, salt and length, and the entries' offsets.
    pub(super) fn new(
        first_seq: u64,
        path: PathBuf,
        file: Arc<File>,
        salt: u32,
        len: u64,
        offsets: Vec<u32>,
    ) -> Segment {
        Segment { first_seq, path, file, salt, len, allocated: len, offsets, direct: None }
    }
}

/// Batches below this size write zeros ahead of them (see `append_bytes`).
const ZERO_AHEAD_BELOW: usize = 256 << 10;
/// How far ahead.
const ZERO_AHEAD_BYTES: u64 = 1 << 20;
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// Makes the directory's entries (created, renamed, deleted files) durable.
pub(super) fn sync_directory(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error("sync directory", dir))
}

/// The files `<name>.<20 decimal digits>.<suffix>` in `dir` (a log's segments, its snapshots),
/// sorted by their number.
pub(super) fn numbered_files(dir: &Path, name: &str, suffix: &str) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let (prefix, suffix) = (format!("{name}."), format!(".{suffix}"));
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("list", dir))? {
        let entry = entry.map_err(io_error("list", dir))?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else { continue };
        let Some(middle) = file_name.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(&suffix)) else {
            continue;
        };
        if middle.len() == 20 && middle.bytes().all(|b| b.is_ascii_digit()) {
            let number = middle.parse::<u64>().map_err(|_| LogError::Damaged {
                path: entry.path(),
                detail: "file name's number out of range".into(),
            })?;
            found.push((number, entry.path()));
        }
    }
    found.sort_unstable_by_key(|(number, _)| *number);
    Ok(found)
}

/// Writes zeros to `file` from byte `from` to byte `to`.
pub(super) fn write_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    let mut at = from;
    while at < to {
        let len = (to - at).min(ZEROS.len() as u64) as usize;
        file.write_all_at(&ZEROS[..len], at)?;
        at += len as u64;
    }
    Ok(())
}

/// Random bytes for nonces, drawn from the OS a page at a time.
#[derive(Default)]
struct Nonces {
    pool: Vec<u8>,
    used: usize,
}

const NONCE_POOL_BYTES: usize = NONCE_BYTES * 170;

/// A durable, segmented log of entries with terms. See the module docs for the files.
pub struct FsLog {
    pub(super) dir: PathBuf,
    pub(super) name: String,
    pub(super) options: FsLogOptions,
    pub(super) segments: Vec<Segment>,
    /// Files of removed segments, to be recycled (see `spares.rs`).
    pub(super) spares: Vec<super::spares::Spare>,
    pub(super) last: Option<(u64, u64)>,
    pub(super) chain: u64,
    /// The first (seq, term) of each run of entries with one term.
    pub(super) term_starts: Vec<(u64, u64)>,
    /// The seqs of the configuration entries, ascending (handed to the core by `recovered`).
    pub(super) configs: Vec<u64>,
    pub(super) hard_state: HardState,
    /// What the state file records about the segments (see `manifest`).
    pub(super) manifest: super::manifest::Manifest,
    pub(super) state_counter: u64,
    pub(super) poisoned: Option<String>,
    /// Reused by transactions: the batch being built and its bytes.
    pub(super) builder: BatchBuilder,
    pub(super) buffer: Vec<u8>,
    nonces: Nonces,
    /// The lock file, held (an advisory `flock`) while the log is open.
    lock: Option<File>,
    /// Bumped before a trim changes the files, so iterators made earlier stop (see `Iter`).
    pub(super) trims: Arc<AtomicU64>,
    /// The batch the last read or load decoded (see `loads.rs`).
    pub(super) loaded: std::sync::Mutex<Option<super::loads::Loaded>>,
    /// Entries known committed that a repair found intact past the damage (see
    /// `open_repairing`), handed to the core with `recovered`.
    pub(super) evidence: Vec<(crate::core::LogId, u64)>,
    /// The committed configuration saved apart from the log (see `saved_config.rs`).
    pub(super) committed_config: Option<Entry>,
    /// Set when the file system refused a direct write: every batch then goes through the
    /// page cache.
    pub(super) direct_refused: bool,
}

impl Drop for FsLog {
    fn drop(&mut self) {
        self.close();
    }
}

impl FsLog {
    /// Opens (or creates) the log `name` in `dir`, recovering from any crash.
    pub fn open(dir: impl AsRef<Path>, name: &str, options: FsLogOptions) -> Result<FsLog, LogError> {
        let dir = dir.as_ref().to_path_buf();
        if name.is_empty() || name.contains(['/', '.']) {
            return Err(LogError::Invalid(format!("log name {name:?} must be non-empty, without '/' or '.'")));
        }
        if options.payload_bytes_max > 1 << 30 || options.segment_bytes > 2 << 30 {
            return Err(LogError::Invalid("payload_bytes_max is at most 1 GiB, segment_bytes 2 GiB".into()));
        }
        fs::create_dir_all(&dir).map_err(io_error("create directory", &dir))?;
        let mut log = FsLog::closed(dir, name, options);
        log.lock = Some(log.lock()?);
        let saved = log.load_hard_state()?;
        if log.options.repair_from.is_some() {
            // A repair may cut entries this node acknowledged: it must catch up before it
            // votes again, and that is durable before anything is cut.
            log.save_hard_state(HardState { catching_up: true, ..log.hard_state })?;
        }
        // New storage, or storage that lost its term and vote, may belong to a node that had
        // acknowledged entries or votes (a wiped directory looks new): it is catching up.
        log.hard_state.catching_up |= !saved;
        // The segment record is checked unless there is none, or a repair accepts losses.
        log.recover(saved && log.options.repair_from.is_none())?;
        log.load_spares()?;
        if let Some(from) = log.options.repair_from {
            // Recovery kept an intact batch holding `from` whole: it is cut like any trim (a crash
            // in between leaves a log the same repair opens again).
            log.trim(from.checked_sub(1).map(Seq))?;
        }
        log.open_evidence()?;
        log.load_committed_config()?;
        if let Some((target, rewrite)) = log.read_trim_intent()? {
            log.trim_files(target, rewrite)?;
        }
        log.record_opened()?;
        Ok(log)
    }

    /// A log with nothing loaded yet.
    pub(super) fn closed(dir: PathBuf, name: &str, options: FsLogOptions) -> FsLog {
        FsLog {
            dir,
            name: name.to_string(),
            options,
            segments: Vec::new(),
            spares: Vec::new(),
            last: None,
            chain: 0,
            term_starts: Vec::new(),
            configs: Vec::new(),
            hard_state: HardState::default(),
            manifest: Default::default(),
            state_counter: 0,
            poisoned: None,
            builder: BatchBuilder::default(),
            buffer: Vec::new(),
            nonces: Nonces::default(),
            lock: None,
            trims: Arc::default(),
            loaded: Default::default(),
            evidence: Vec::new(),
            committed_config: None,
            direct_refused: false,
        }
    }

    /// The largest batch recovery and reads accept: what a segment can hold.
    pub(super) fn batch_bytes_max(&self) -> usize {
        u32::MAX as usize
    }

    /// A fresh random nonce for the encrypting encoder (zeros for the others).
    pub(super) fn nonce(&mut self) -> Result<[u8; NONCE_BYTES], LogError> {
        let mut nonce = [0u8; NONCE_BYTES];
        if !self.options.encoder.needs_nonces() {
            return Ok(nonce);
        }
        let nonces = &mut self.nonces;
        if nonces.used + NONCE_BYTES > nonces.pool.len() {
            nonces.pool.resize(NONCE_POOL_BYTES, 0);
            OsRng.try_fill_bytes(&mut nonces.pool).map_err(|error| LogError::Io {
                op: "draw random nonces",
                path: PathBuf::new(),
                source: io::Error::other(error.to_string()),
            })?;
            nonces.used = 0;
        }
        nonce.copy_from_slice(&nonces.pool[nonces.used..nonces.used + NONCE_BYTES]);
        nonces.used += NONCE_BYTES;
        Ok(nonce)
    }

    /// The bytes of the batch at `offset` in segment `index`, read whole.
    pub(super) fn read_batch(&self, index: usize, offset: u64) -> Result<Bytes, LogError> {
        let segment = &self.segments[index];
        let mut head = [0u8; 4];
        segment.file.read_exact_at(&mut head, offset).map_err(io_error("read", &segment.path))?;
        let size = batch_size(&head).expect("4 bytes") as u64;
        if size < 4 || offset + size > segment.len {
            return Err(LogError::Damaged {
                path: segment.path.clone(),
                detail: format!("batch at byte {offset}: impossible size {size} (the disk changed under the log)"),
            });
        }
        let mut bytes = vec![0u8; size as usize];
        segment.file.read_exact_at(&mut bytes, offset).map_err(io_error("read", &segment.path))?;
        Ok(Bytes::from(bytes))
    }

    /// The term of the entry at `seq` and its batch's checksum, read from the disk (what the
    /// tail reload needs).
    pub(super) fn term_and_chain(&self, seq: u64) -> Result<Option<(u64, u64)>, LogError> {
        let Some((index, offset)) = self.locate(seq) else { return Ok(None) };
        let damaged = |detail: String| LogError::Damaged {
            path: self.segments[index].path.clone(),
            detail: format!("seq {seq} in the batch at byte {offset}: {detail} (the disk changed under the log)"),
        };
        let bytes = self.read_batch(index, offset)?;
        let salt = self.segments[index].salt;
        let batch =
            decode_batch(&bytes, &self.options.encoder, salt, bytes.len()).map_err(|e| damaged(e.to_string()))?;
        let Some(frame) = seq.checked_sub(batch.first).and_then(|i| batch.frames().nth(i as usize)) else {
            return Err(damaged(format!("the batch holds {}..={}", batch.first, batch.last())));
        };
        Ok(Some((frame.term, batch.checksum)))
    }

    pub(super) fn segment_path(&self, first_seq: u64) -> PathBuf {
        self.dir.join(format!("{}.{first_seq:020}.seg", self.name))
    }

    /// The first seq of segment `index`, the path of its file and its salt.
    pub(super) fn segment_at(&self, index: usize) -> (u64, &Path, u32) {
        let segment = &self.segments[index];
        (segment.first_seq, &segment.path, segment.salt)
    }

    /// The salt of the segment a trim writes its batch from `cut_from` into: the last one
    /// starting before `cut_from` (the segment starting there, if any, is deleted), else the
    /// first one (cut to its header).
    pub(super) fn rewrite_salt(&self, cut_from: u64) -> u32 {
        let index = self.segments.partition_point(|s| s.first_seq < cut_from).saturating_sub(1);
        self.segments.get(index).map_or(0, |segment| segment.salt)
    }

    /// The segment files of this log, sorted by first seq (numerically: the seed sorted names).
    pub(super) fn list_segments(&self) -> Result<Vec<(u64, PathBuf)>, LogError> {
        numbered_files(&self.dir, &self.name, "seg")
    }

    /// Scans the segments one at a time, then carries out the decisions: deletions newest
    /// first, then the truncation of the last segment kept.
    fn recover(&mut self, check_manifest: bool) -> Result<(), LogError> {
        let mut listed = self.list_segments()?;
        if check_manifest {
            listed = self.check_manifest(listed)?;
        }
        let encoder = self.options.encoder.clone();
        let mut scanner = Scanner::new(&encoder, self.batch_bytes_max(), self.options.repair_from);
        let mut decisions: Vec<(SegmentScan, PathBuf)> = Vec::with_capacity(listed.len());
        let mut bytes = Vec::new(); // One buffer for every segment: its pages are faulted in once.
        for (index, (first_seq, path)) in listed.iter().enumerate() {
            bytes.clear();
            File::open(path).and_then(|mut file| file.read_to_end(&mut bytes)).map_err(io_error("read", path))?;
            let segment = SegmentBytes { first_seq: *first_seq, bytes: &bytes };
            let scan =
                scanner.segment(segment, index + 1 == listed.len()).map_err(|corruption| match corruption.case {
                    Case::WrongKey => LogError::WrongKey { path: path.clone() },
                    _ => LogError::Corrupt(corruption),
                })?;
            decisions.push((scan, path.clone()));
        }
        let result = scanner.finish();
        let mut deleted = false;
        for (_, path) in decisions.iter().rev().filter(|(scan, _)| scan.delete) {
            fs::remove_file(path).map_err(io_error("delete", path))?;
            deleted = true;
        }
        if deleted {
            self.sync_dir()?;
        }
        for (scan, path) in decisions.into_iter().filter(|(scan, _)| !scan.delete) {
            let file = OpenOptions::new().read(true).write(true).open(&path).map_err(io_error("open", &path))?;
            let on_disk = file.metadata().map_err(io_error("stat", &path))?.len();
            if scan.valid_len < on_disk {
                if self.manifest.newest == Some(scan.first_seq) {
                    self.record_cut(scan.valid_len)?;
                }
                file.set_len(scan.valid_len).map_err(io_error("truncate", &path))?;
                file.sync_all().map_err(io_error("sync", &path))?;
            }
            let len = scan.valid_len.max(HEADER_BYTES as u64);
            let (first_seq, salt, mut offsets) = (scan.first_seq, scan.salt, scan.offsets);
            offsets.shrink_to_fit(); // Grown by doubling: up to twice the memory otherwise.
            let file = Arc::new(file);
            self.segments.push(Segment::new(first_seq, path, file, salt, len, offsets));
        }
        self.chain = result.last_checksum;
        self.term_starts = result.term_starts;
        self.configs = result.configs;
        self.last = result.last;
        Ok(())
    }

    pub(super) fn sync_dir(&self) -> Result<(), LogError> {
        sync_directory(&self.dir)
    }

    pub(super) fn check(&self) -> Result<(), LogError> {
        match &self.poisoned {
            Some(why) => Err(LogError::Poisoned(why.clone())),
            None if self.lock.is_none() => Err(LogError::Closed),
            None => Ok(()),
        }
    }

    /// Closes the log: it releases the directory's lock (another handle may open it now), and
    /// every later write fails with [`LogError::Closed`]. Dropping the log does the same. What
    /// lies past the last batch (zeros written ahead, a recycled file's old bytes) is cut off
    /// first, so the next open has nothing to scan there (if that fails, the open cuts it).
    pub fn close(&mut self) {
        if self.lock.is_some() && self.poisoned.is_none() {
            let _ = self.seal_segment();
        }
        self.lock = None;
    }

    pub(super) fn poison<T>(&mut self, error: LogError) -> Result<T, LogError> {
        self.poisoned = Some(error.to_string());
        Err(error)
    }

    /// The seq of the last entry (the seed's `seq`; `None` for an empty log).
    pub fn seq(&self) -> Option<Seq> {
        self.last.map(|(seq, _)| Seq(seq))
    }

    /// The seq of the first entry held (0, unless a prefix was removed).
    pub fn first(&self) -> Seq {
        Seq(self.segments.first().map_or(0, |s| s.first_seq))
    }

    /// The term of the last entry.
    pub fn last_term(&self) -> Option<Term> {
        self.last.map(|(_, term)| Term(term))
    }

    /// The last entry (the seed's `head`).
    pub fn head(&self) -> Result<Option<Entry>, LogError> {
        match self.last {
            Some((seq, _)) => self.read(Seq(seq)),
            None => Ok(None),
        }
    }

    /// The hash chain's head: with `(seq, last_term)` it fingerprints the whole log.
    pub fn chain(&self) -> u64 {
        self.chain
    }

    /// The seq the next entry gets.
    pub(super) fn next_seq(&self) -> u64 {
        self.last.map_or_else(|| self.first().0, |(seq, _)| seq + 1)
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

    /// Writes one encoded batch of `count` entries at the end of the log and syncs it; with
    /// `defer`, may leave the sync to the caller instead (see `deferred.rs`).
    pub(super) fn write_batch(
        &mut self,
        first: u64,
        buffer: &[u8],
        count: u32,
        defer: bool,
    ) -> Result<Option<PendingSync>, LogError> {
        debug_assert_eq!(first, self.next_seq(), "invariant: a batch starts at the log's next seq");
        self.append_bytes(buffer, count, defer)
    }

    /// Makes sure the last segment takes a batch of `size` bytes starting at the next seq (a
    /// full one is sealed and a new one started); returns its salt, which the batch's checksum
    /// needs.
    pub(super) fn segment_for(&mut self, size: usize) -> Result<u32, LogError> {
        let needs_segment = match self.segments.last() {
            None => true,
            Some(segment) => !segment.offsets.is_empty() && segment.len + size as u64 > self.options.segment_bytes,
        };
        if needs_segment {
            if let Some(full) = self.segments.last_mut() {
                full.offsets.shrink_to_fit(); // It takes no more entries.
                full.direct = None; // Nor writes: its handle and scratch memory go.
            }
            self.seal_segment()?;
            self.create_segment(self.next_seq())?;
        }
        Ok(self.segments.last().expect("a segment exists").salt)
    }

    /// [`write_batch`](FsLog::write_batch) without the check that it continues the log's
    /// entries (a trim writes a cut batch's first entries before it sets them), into the last
    /// segment (see [`segment_for`](FsLog::segment_for)).
    pub(super) fn append_bytes(
        &mut self,
        buffer: &[u8],
        count: u32,
        defer: bool,
    ) -> Result<Option<PendingSync>, LogError> {
        let segment = self.segments.last_mut().expect("a segment exists: see segment_for");
        let base = segment.len;
        if base + buffer.len() as u64 > u64::from(u32::MAX) {
            return Err(LogError::Invalid("a segment cannot pass 4 GiB: lower segment_bytes".into()));
        }
        let end = base + buffer.len() as u64;
        // A batch that would grow the file first writes zeros ahead of it (a MiB), so that the next
        // batches overwrite allocated space and their fdatasync has no file size to commit: on
        // ext4, about twice as many syncs per second for small batches, and 1.0 to 1.4 times the
        // bandwidth for 100 KB writes, although their bytes are written twice (measured with writes
        // alone; for `fslog_append_batch1000` see `benches/fslog.rs`). Batches of a quarter MiB and
        // more grow the file themselves: a MiB ahead would serve only a few of them (not measured).
        // Not with the plain encoder: without checksums only the file's length shows a write cut
        // short, and for the same reason it writes no batch directly (whole blocks, see `direct`).
        let checksummed = self.options.encoder.checksummed();
        let small = buffer.len() < ZERO_AHEAD_BELOW && checksummed;
        let direct = checksummed && buffer.len() >= self.options.direct_writes_from && !self.direct_refused;
        let mut ahead = match small && end > segment.allocated {
            true => (end + ZERO_AHEAD_BYTES).min(self.options.segment_bytes),
            false => end,
        };
        // A batch that fits the space already allocated (zeros written ahead and synced) changes
        // nothing but its bytes: its fdatasync may be left to the caller, outside its lock.
        let deferred = defer && end <= segment.allocated && small;
        let zeros_ahead = ahead > end;
        let mut pending = None;
        let mut refused = false;
        let written = (|| {
            let direct = match direct {
                true => segment.write_direct(buffer, base, &mut ahead, &mut refused)?,
                false => None,
            };
            let reached = match direct {
                Some(stop) => stop,
                None => {
                    if let Some(file) = segment.direct.as_mut() {
                        file.forget_tail(); // Its copy of the last block goes stale (see `direct`).
                    }
                    segment.file.write_all_at(buffer, base)?;
                    // The zeros are only a speed-up: a disk too full for them still takes the batch.
                    match write_zeros(&segment.file, end.max(segment.allocated), ahead) {
                        Err(error) if error.kind() == io::ErrorKind::StorageFull => ahead = end,
                        other => other?,
                    }
                    end
                }
            };
            match deferred.then(|| segment.file.try_clone()) {
                Some(Ok(file)) => {
                    pending = Some(PendingSync::new(file, segment.path.clone()));
                    Ok(reached)
                }
                Some(Err(_)) | None => segment.file.sync_data().map(|()| reached),
            }
        })();
        self.direct_refused |= refused;
        let reached = match written {
            Ok(reached) => reached,
            Err(error) => {
                // Unknown what reached the disk: the next open recovers a prefix.
                let path = segment.path.clone();
                return self.poison(LogError::Io { op: "append", path, source: error });
            }
        };
        segment.allocated = segment.allocated.max(ahead).max(reached);
        segment.len = end;
        segment.offsets.extend(std::iter::repeat_n(base as u32, count as usize));
        let allocated = segment.allocated;
        self.record_growth(allocated, zeros_ahead && ahead > reached)?;
        Ok(pending)
    }

    /// Cuts the zeros written ahead off the last segment before a new one starts: a sealed
    /// segment ends with its last record.
    pub(super) fn seal_segment(&mut self) -> Result<(), LogError> {
        let Some(len) = self.segments.last().filter(|s| s.allocated > s.len).map(|s| s.len) else { return Ok(()) };
        self.record_cut(len)?;
        let segment = self.segments.last_mut().expect("checked above");
        if let Err(source) = segment.file.set_len(segment.len).and_then(|()| segment.file.sync_all()) {
            let path = segment.path.clone();
            return self.poison(LogError::Io { op: "truncate", path, source });
        }
        segment.allocated = segment.len;
        Ok(())
    }

    /// Starts a new last segment at `first_seq`: a recycled spare if one is free, else a new
    /// file (salt 0).
    pub(super) fn create_segment(&mut self, first_seq: u64) -> Result<(), LogError> {
        let path = self.segment_path(first_seq);
        let (file, allocated, salt) = match self.recycle_spare(first_seq, &path)? {
            Some(recycled) => recycled,
            None => {
                let nonce = self.nonce()?;
                let header = encode_header(&self.options.encoder, Header { first_seq, salt: 0 }, nonce);
                let created = (|| {
                    let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
                    file.write_all_at(&header, 0)?;
                    file.sync_all()?;
                    Ok(file)
                })();
                match created {
                    Ok(file) => (Arc::new(file), HEADER_BYTES as u64, 0),
                    Err(source) => return self.poison(LogError::Io { op: "create segment", path, source }),
                }
            }
        };
        if let Err(error) = self.sync_dir() {
            return self.poison(error);
        }
        let (len, offsets) = (HEADER_BYTES as u64, Vec::new());
        let segment = Segment { allocated, ..Segment::new(first_seq, path, file, salt, len, offsets) };
        self.segments.push(segment);
        self.record_new_segment(first_seq)
    }

    /// The segment (index) holding `seq`, and the byte offset of its batch.
    pub(super) fn locate(&self, seq: u64) -> Option<(usize, u64)> {
        let index = self.segments.partition_point(|s| s.first_seq <= seq).checked_sub(1)?;
        let segment = &self.segments[index];
        let offset = *segment.offsets.get((seq - segment.first_seq) as usize)?;
        Some((index, u64::from(offset)))
    }

    /// Reads the entry at `seq`.
    pub fn read(&self, seq: Seq) -> Result<Option<Entry>, LogError> {
        self.check()?;
        if self.locate(seq.0).is_none() {
            return Ok(None);
        }
        Ok(self.load_range(seq, seq)?.pop()) // Through the batch the last read or load kept.
    }

    /// Entries from `from` to the last entry as of now (later appends are not included). The
    /// iterator holds its own file handles: the log stays free for appends meanwhile.
    pub fn iter(&self, from: Seq) -> Iter {
        let end = self.last.map_or(0, |(seq, _)| seq + 1);
        let max = self.batch_bytes_max();
        if from.0 >= end {
            return Iter::new(self.options.encoder.clone(), max, Vec::new(), (from.0, 0), end);
        }
        let Some((index, offset)) = self.locate(from.0) else {
            let first = self.first();
            return Iter::failed(LogError::Invalid(format!("entries before {first} were removed")));
        };
        let views = self.segments[index..]
            .iter()
            .map(|s| SegmentView {
                first_seq: s.first_seq,
                path: s.path.clone(),
                file: s.file.clone(),
                salt: s.salt,
                len: s.len,
            })
            .collect();
        let trims = (Arc::clone(&self.trims), self.trims.load(Ordering::SeqCst));
        Iter::new(self.options.encoder.clone(), max, views, (from.0, offset), end).watching(trims)
    }

    /// Starts a transaction: appends that become durable together at `commit`, with one write
    /// and one fdatasync, or leave no trace if it is dropped or aborted; a crash during the
    /// commit recovers them all or none. An optional trim goes first, durable on its own.
    pub fn txn(&mut self) -> Result<Txn<'_>, LogError> {
        self.check()?;
        let first = self.next_seq();
        let term = self.last.map_or(0, |(_, term)| term);
        let chain = self.chain;
        let mut builder = std::mem::take(&mut self.builder);
        builder.start(first);
        let (term_starts, configs) = (Vec::new(), Vec::new());
        Ok(Txn { log: self, trim: None, builder, term_starts, configs, first, chain, term })
    }

    /// What a Raft core restarted from this log starts with: term and vote, the term runs, and
    /// the last `tail` entries (the core loads older ones when it needs them).
    pub fn recovered(&self, tail: usize) -> Result<crate::core::Recovered, LogError> {
        use crate::core::{LogId, Recovered};
        let end = self.last.map_or(0, |(seq, _)| seq + 1);
        let first = self.segments.first().map_or(0, |s| s.first_seq);
        let from = end.saturating_sub(tail as u64).max(first);
        let entries = self.iter(Seq(from)).collect::<Result<Vec<Entry>, LogError>>()?;
        let configs = self.configs.iter().map(|seq| self.read_config(Seq(*seq))).collect::<Result<_, _>>()?;
        Ok(Recovered {
            hard_state: self.hard_state,
            first: Seq(first),
            term_starts: self.term_starts.iter().map(|(seq, term)| LogId::new(Term(*term), Seq(*seq))).collect(),
            last: self.last.map(|(seq, term)| LogId::new(Term(term), Seq(seq))),
            tail: entries,
            configs,
            committed_config: self.committed_config.clone(),
            evidence: self.evidence.clone(),
            snapshot: None,
            partial_snapshot: None,
        })
    }

    /// The configuration entry at `seq` (which `configs` lists).
    fn read_config(&self, seq: Seq) -> Result<Entry, LogError> {
        match self.read(seq)? {
            Some(entry) if matches!(entry.payload, Payload::Config(_)) => Ok(entry),
            _ => Err(LogError::Invalid(format!("seq {seq} was a configuration entry at open and is not now"))),
        }
    }

    /// Appends a core's entries (configuration entries included) with one write and one
    /// fdatasync; they must continue the log.
    pub(crate) fn append_entries(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        let mut txn = self.txn()?;
        for entry in entries {
            txn.append_entry(entry)?;
        }
        txn.commit().map(|_| ())
    }

    /// The segment record as the segments stand (see `manifest`).
    pub(super) fn actual_manifest(&self) -> super::manifest::Manifest {
        match (self.segments.first(), self.segments.last()) {
            (Some(first), Some(newest)) => super::manifest::Manifest {
                first: first.first_seq,
                newest: Some(newest.first_seq),
                length: newest.allocated,
            },
            _ => super::manifest::Manifest { first: self.manifest.first, newest: None, length: 0 },
        }
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
