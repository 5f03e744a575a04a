//! Durable snapshots next to a log: a state machine's snapshot is a stream of bytes of unknown
//! length, written as it is produced and read back as it is consumed; no snapshot is ever held
//! in memory whole.
//!
//! A snapshot is a file `<name>.<last seq as 20 digits>.snap` in the log's own format and
//! encoder (`format.rs`): a segment header (its "first seq" is the snapshot's last included
//! seq; with encryption, its key check makes a wrong key a clear error), then records (each a
//! batch of one entry) chained by checksum, with their index and the snapshot's term as
//! (seq, term):
//!
//! ```text
//! record 0        meta: a digest (u64; 0 in a snapshot taken here, the expected one in one
//!                 being received), then the configuration in force at the snapshot's last seq,
//!                 if any (its seq and term as two u64, then `encode_configuration`'s bytes)
//! record 1..=n    the snapshot's bytes, in chunks of at most `chunk_bytes`
//! last record     the trailer (the one configuration-kind record after the meta record): the
//!                 XXH3-64 digest of the bytes; the snapshot is complete
//! ```
//!
//! A snapshot taken here is written to `<...>.snap-new`, synced, renamed, and the directory
//! synced, so a crash leaves no partial snapshot under the final name. One received from a
//! leader ([`SnapshotReceiver`]) is written chunk by chunk, each synced, to `<...>.snap-part`; a
//! crash keeps the chunks written (a torn last one is cut at the next open), and the install
//! resumes from them. Installing checks the digest, adds the trailer, syncs and renames.
//! Opening verifies the newest snapshot from end to end (every checksum, the chain, the trailer
//! and its digest, the decryption); a damaged one is reported and the one before it is used.
//! A new snapshot keeps the one before it (the fallback) and deletes older ones.

use super::error::{io_error, LogError};
use super::format::{batch_size, decode_batch, decode_header, encode_header, BatchBuilder, Encoder, Header, Seal};
use super::format::{HEADER_BYTES, NONCE_BYTES};
use super::fslog::{numbered_files, sync_directory};
use crate::core::{Entry, LogId, Payload, Seq, SnapshotMeta, Term};
use bytes::Bytes;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::OsRng;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

/// The snapshots of one log: where they are and how they are encoded.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    name: String,
    encoder: Encoder,
    /// The largest chunk written (and accepted when read).
    pub chunk_bytes: usize,
    /// A snapshot taken here is written at most this fast (bytes per second; `None`: as fast
    /// as the disk goes). Default 128 MiB/s: a snapshot written at the disk's full speed would
    /// leave the log's synced writes on the same disk waiting (appends fell to a third in
    /// `cargo bench --bench snapshot`). A snapshot received from a leader is not held back.
    pub write_bytes_per_s: Option<u64>,
}

/// What opening the store found: the newest intact snapshot, and the damaged newer ones it
/// skipped (each with why), which are left in place for an operator to look at.
#[derive(Debug)]
pub struct SnapshotScan {
    /// The newest intact snapshot.
    pub latest: Option<SnapshotMeta>,
    /// Damaged snapshots newer than it.
    pub damaged: Vec<LogError>,
}

impl SnapshotStore {
    /// The snapshots of the log `name` in `dir`, encoded like the log (`encoder`).
    pub fn new(dir: impl AsRef<Path>, name: &str, encoder: Encoder) -> SnapshotStore {
        let (dir, name) = (dir.as_ref().to_path_buf(), name.to_string());
        SnapshotStore { dir, name, encoder, chunk_bytes: 1 << 20, write_bytes_per_s: Some(128 << 20) }
    }

    fn path(&self, last: Seq) -> PathBuf {
        self.dir.join(format!("{}.{:020}.snap", self.name, last.0))
    }

    /// The seqs of the snapshot files present, newest first.
    fn list(&self) -> Result<Vec<Seq>, LogError> {
        let listed = numbered_files(&self.dir, &self.name, "snap")?;
        Ok(listed.into_iter().rev().map(|(seq, _)| Seq(seq)).collect())
    }

    /// Finds the newest intact snapshot, verifying each from end to end (newest first).
    pub fn open(&self) -> Result<SnapshotScan, LogError> {
        let mut damaged = Vec::new();
        for seq in self.list()? {
            match self.reader(seq).and_then(|mut reader| {
                while reader.next_chunk()?.is_some() {}
                Ok(reader.meta)
            }) {
                Ok(meta) => return Ok(SnapshotScan { latest: Some(meta), damaged }),
                Err(error) => damaged.push(error),
            }
        }
        Ok(SnapshotScan { latest: None, damaged })
    }

    /// Starts writing the snapshot that covers the log up to `meta.last` (its digest is
    /// computed as the bytes come: the one given is ignored).
    pub fn writer(&self, meta: SnapshotMeta) -> Result<SnapshotWriter<'_>, LogError> {
        let temporary = self.path(meta.last.seq).with_extension("snap-new");
        let file = File::create(&temporary).map_err(io_error("create", &temporary))?;
        let mut sink = RecordSink::new(file, temporary, &self.encoder, &meta)?;
        sink.append(&self.encoder, Some(&meta_payload(0, meta.configuration.as_ref())), false)?;
        let (pending, hasher, started) = (Vec::new(), Xxh3::new(), std::time::Instant::now());
        Ok(SnapshotWriter { store: self, sink, meta, pending, hasher, unsynced: 0, started, written: 0 })
    }

    /// Reads the snapshot whose last seq is `last`, chunk by chunk.
    pub fn reader(&self, last: Seq) -> Result<SnapshotReader, LogError> {
        let path = self.path(last);
        let (reader, _) = SnapshotReader::open(path, self, last)?;
        Ok(reader)
    }

    /// Makes `temporary` (synced, complete) the snapshot at `last`, keeping the one before it
    /// and deleting older ones.
    fn publish(&self, temporary: &Path, last: Seq) -> Result<(), LogError> {
        let path = self.path(last);
        fs::rename(temporary, &path).map_err(io_error("rename", temporary))?;
        sync_directory(&self.dir)?;
        for old in self.list()?.into_iter().filter(|seq| *seq < last).skip(1) {
            let old = self.path(old);
            fs::remove_file(&old).map_err(io_error("delete", &old))?;
        }
        Ok(())
    }
}

/// Records appended to one snapshot file, chained.
struct RecordSink {
    file: File,
    path: PathBuf,
    term: u64,
    next: u64,
    chain: u64,
    /// Reused for every record: the batch being built and its bytes.
    builder: BatchBuilder,
    buffer: Vec<u8>,
}

impl RecordSink {
    /// A new file for the snapshot `meta`: its header is written.
    fn new(mut file: File, path: PathBuf, encoder: &Encoder, meta: &SnapshotMeta) -> Result<RecordSink, LogError> {
        let header = Header { first_seq: meta.last.seq.0, salt: 0 };
        file.write_all(&encode_header(encoder, header, nonce())).map_err(io_error("write", &path))?;
        let (builder, buffer) = (BatchBuilder::default(), Vec::new());
        Ok(RecordSink { file, path, term: meta.last.term.0, next: 0, chain: 0, builder, buffer })
    }

    /// Appends one record: a chunk, or (`trailer`) the sealed trailer.
    fn append(&mut self, encoder: &Encoder, payload: Option<&[u8]>, trailer: bool) -> Result<(), LogError> {
        self.buffer.clear();
        self.builder.start(self.next);
        self.builder.push(self.term, payload, trailer);
        self.chain =
            self.builder.finish(&mut self.buffer, encoder, Seal { chain: self.chain, salt: 0, nonce: nonce() });
        self.next += 1;
        self.file.write_all(&self.buffer).map_err(io_error("write", &self.path))
    }

    fn sync(&self) -> Result<(), LogError> {
        self.file.sync_data().map_err(io_error("sync", &self.path))
    }
}

/// A snapshot being written is synced every this many bytes: the disk then never holds much of
/// it unwritten, which a log's fdatasync on the same file system could have to wait for.
const SYNC_EVERY: u64 = 4 << 20;

/// Writes one snapshot as its bytes come (see [`SnapshotStore::writer`]).
pub struct SnapshotWriter<'a> {
    store: &'a SnapshotStore,
    sink: RecordSink,
    meta: SnapshotMeta,
    /// Bytes not yet in a chunk.
    pending: Vec<u8>,
    hasher: Xxh3,
    /// Bytes written since the last sync.
    unsynced: u64,
    /// When writing started, and the bytes written since (for `write_bytes_per_s`).
    started: std::time::Instant,
    written: u64,
}

impl SnapshotWriter<'_> {
    /// Adds the snapshot's next bytes.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), LogError> {
        self.hasher.update(bytes);
        while !bytes.is_empty() {
            let take = (self.store.chunk_bytes - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == self.store.chunk_bytes {
                let chunk = std::mem::take(&mut self.pending);
                self.sink.append(&self.store.encoder, Some(&chunk), false)?;
                self.unsynced += chunk.len() as u64;
                self.written += chunk.len() as u64;
                if self.unsynced >= SYNC_EVERY {
                    self.sink.sync()?;
                    self.unsynced = 0;
                    self.pace();
                }
            }
        }
        Ok(())
    }

    /// Waits until writing at `write_bytes_per_s` would have written what was written.
    fn pace(&self) {
        let Some(rate) = self.store.write_bytes_per_s.filter(|rate| *rate > 0) else { return };
        let due = std::time::Duration::from_secs_f64(self.written as f64 / rate as f64);
        if let Some(early) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(early);
        }
    }

    /// Makes the snapshot durable under its final name (the previous one stays as the fallback;
    /// older ones go) and returns what it covers, with its digest.
    pub fn finish(mut self) -> Result<SnapshotMeta, LogError> {
        if !self.pending.is_empty() {
            let chunk = std::mem::take(&mut self.pending);
            self.sink.append(&self.store.encoder, Some(&chunk), false)?;
        }
        self.meta.digest = self.hasher.digest();
        self.sink.append(&self.store.encoder, Some(&self.meta.digest.to_le_bytes()), true)?;
        self.sink.file.sync_all().map_err(io_error("sync", &self.sink.path))?;
        self.store.publish(&self.sink.path, self.meta.last.seq)?;
        Ok(self.meta)
    }
}

/// Reads one snapshot chunk by chunk, verifying each (see [`SnapshotStore::reader`]).
pub struct SnapshotReader {
    file: File,
    path: PathBuf,
    encoder: Encoder,
    record_max: usize,
    /// What the snapshot covers; its digest is known once the whole snapshot was read (0
    /// before).
    pub meta: SnapshotMeta,
    next: u64,
    chain: u64,
    done: bool,
    hasher: Xxh3,
    /// Where the record after the last one read starts.
    end: u64,
    /// What `Read` has not handed out yet of the current chunk.
    current: Bytes,
}

/// The snapshot's bytes as one stream (damage is an `InvalidData` error naming the file).
impl Read for SnapshotReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.next_chunk().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))? {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let count = buf.len().min(self.current.len());
        buf[..count].copy_from_slice(&self.current[..count]);
        self.current = self.current.slice(count..);
        Ok(count)
    }
}

/// One record as read: its payload, and whether it is the trailer.
type ReadRecord = (Bytes, bool);

impl SnapshotReader {
    /// Opens the file at `path` for the snapshot at `last`; returns the reader (past the meta
    /// record) and the digest the meta record names.
    fn open(path: PathBuf, store: &SnapshotStore, last: Seq) -> Result<(SnapshotReader, u64), LogError> {
        let mut file = File::open(&path).map_err(io_error("open", &path))?;
        let mut header = [0u8; HEADER_BYTES];
        file.read_exact(&mut header).map_err(io_error("read", &path))?;
        let damaged = |detail: String| LogError::Damaged { path: path.clone(), detail };
        match decode_header(&header, &store.encoder) {
            Ok(header) if header.first_seq == last.0 => {}
            Ok(header) => return Err(damaged(format!("its header names seq {}", header.first_seq))),
            Err(super::format::HeaderError::WrongKey) => return Err(LogError::WrongKey { path }),
            Err(error) => return Err(damaged(format!("header: {error:?}"))),
        }
        let mut reader = SnapshotReader {
            file,
            path: path.clone(),
            encoder: store.encoder.clone(),
            record_max: store.encoder.single_batch_bytes(store.chunk_bytes.max(64 << 10)),
            meta: SnapshotMeta { last: LogId::new(Term(0), last), digest: 0, configuration: None },
            next: 0,
            chain: 0,
            done: false,
            hasher: Xxh3::new(),
            end: HEADER_BYTES as u64,
            current: Bytes::new(),
        };
        let (term, (meta, trailer)) = reader.record()?.ok_or_else(|| damaged("no meta record".into()))?;
        if trailer {
            return Err(damaged("no meta record".into()));
        }
        let (digest, configuration) = parse_meta(meta)?;
        reader.meta.last.term = Term(term);
        reader.meta.configuration = configuration;
        Ok((reader, digest))
    }

    /// The next chunk of the snapshot's bytes; `None` at its end (its trailer, whose digest
    /// must match the bytes). A damaged or cut file is an error naming it.
    pub fn next_chunk(&mut self) -> Result<Option<Bytes>, LogError> {
        match self.record()? {
            None => Ok(None),
            Some((_, (chunk, false))) => {
                self.hasher.update(&chunk);
                Ok(Some(chunk))
            }
            Some((_, (trailer, true))) => {
                let digest = self.hasher.digest();
                if trailer.len() != 8 || trailer[..] != digest.to_le_bytes() || !self.done {
                    return Err(LogError::Damaged {
                        path: self.path.clone(),
                        detail: "its trailer does not match its bytes".into(),
                    });
                }
                self.meta.digest = digest;
                Ok(None)
            }
        }
    }

    /// The next record's term and payload (decrypted), `None` after the sealed one.
    fn record(&mut self) -> Result<Option<(u64, ReadRecord)>, LogError> {
        if self.done {
            return Ok(None);
        }
        let damaged = |detail: String| LogError::Damaged { path: self.path.clone(), detail };
        let mut len = [0u8; 4];
        match self.file.read_exact(&mut len) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(damaged("it ends before its sealed last record".into()))
            }
            Err(source) => return Err(LogError::Io { op: "read", path: self.path.clone(), source }),
        }
        let size = batch_size(&len).expect("4 bytes");
        if size > self.record_max || size < 4 {
            return Err(damaged(format!("a record of {size} bytes, over the chunk size")));
        }
        let mut bytes = vec![0u8; size];
        bytes[..4].copy_from_slice(&len);
        self.file.read_exact(&mut bytes[4..]).map_err(|_| damaged("a record is cut short".into()))?;
        let bytes = Bytes::from(bytes);
        let batch =
            decode_batch(&bytes, &self.encoder, 0, size).map_err(|e| damaged(format!("record {}: {e}", self.next)))?;
        if batch.first != self.next || batch.count != 1 || (self.encoder.checksummed() && batch.chain != self.chain) {
            return Err(damaged(format!("record {} is out of place", self.next)));
        }
        let entries =
            batch.entries(&self.encoder, &bytes, 0).map_err(|e| damaged(format!("record {}: {e}", self.next)))?;
        let entry = entries.into_iter().next().expect("one entry");
        // The trailer is the configuration-kind record after the meta record.
        let trailer = matches!(entry.payload, crate::core::Payload::Config(_));
        (self.next, self.chain, self.done) = (self.next + 1, batch.checksum, trailer);
        self.end += size as u64;
        if self.done && self.file.read(&mut [0u8; 1]).map_err(io_error("read", &self.path))? > 0 {
            return Err(damaged("bytes follow its sealed last record".into()));
        }
        let payload = match entry.payload {
            crate::core::Payload::Data(bytes) | crate::core::Payload::Config(bytes) => bytes,
            crate::core::Payload::Blank => Bytes::new(),
        };
        Ok(Some((entry.term.0, (payload, trailer))))
    }
}

/// Receives a snapshot from a leader, chunk by chunk, into `<name>.<seq>.snap-part` (one at a
/// time: a new snapshot replaces the partial one), then installs it.
pub struct SnapshotReceiver {
    store: SnapshotStore,
    partial: Option<Partial>,
}

/// The snapshot being received.
struct Partial {
    meta: SnapshotMeta,
    sink: RecordSink,
    /// The bytes received (and written).
    written: u64,
    hasher: Xxh3,
    /// Bytes written since the last sync.
    unsynced: u64,
}

impl SnapshotReceiver {
    /// The receiver of `store`, with the partial snapshot a crash left, if any (cut after its
    /// last whole chunk), and how many of its bytes are durable.
    pub fn open(store: &SnapshotStore) -> Result<(SnapshotReceiver, Option<(SnapshotMeta, u64)>), LogError> {
        let mut receiver = SnapshotReceiver { store: store.clone(), partial: None };
        let found = numbered_files(&store.dir, &store.name, "snap-part")?;
        let Some((seq, path)) = found.last().cloned() else { return Ok((receiver, None)) };
        for (_, older) in &found[..found.len() - 1] {
            fs::remove_file(older).map_err(io_error("delete", older))?;
        }
        let Ok((mut reader, digest)) = SnapshotReader::open(path.clone(), store, Seq(seq)) else {
            // Not even its meta record is whole: nothing of it is usable.
            fs::remove_file(&path).map_err(io_error("delete", &path))?;
            return Ok((receiver, None));
        };
        let mut written = 0u64;
        while let Ok(Some((_, (chunk, false)))) = reader.record() {
            reader.hasher.update(&chunk);
            written += chunk.len() as u64;
        }
        let mut meta = reader.meta.clone();
        meta.digest = digest;
        // Keep what was whole; a torn chunk after it goes.
        let mut file = OpenOptions::new().write(true).open(&path).map_err(io_error("open", &path))?;
        file.set_len(reader.end).and_then(|()| file.sync_all()).map_err(io_error("cut", &path))?;
        file.seek(SeekFrom::End(0)).map_err(io_error("seek", &path))?;
        let sink = RecordSink {
            file,
            path,
            term: meta.last.term.0,
            next: reader.next,
            chain: reader.chain,
            builder: BatchBuilder::default(),
            buffer: Vec::new(),
        };
        receiver.partial = Some(Partial { meta: meta.clone(), sink, written, hasher: reader.hasher, unsynced: 0 });
        Ok((receiver, Some((meta, written))))
    }

    /// Writes `data` at `offset` of the snapshot `meta` (synced every few MiB: a crash may lose
    /// the last chunks, and the restarted node reports what it holds): offset 0 starts it
    /// (replacing any partial one); any other offset must be where the partial snapshot ends.
    pub fn chunk(&mut self, meta: &SnapshotMeta, offset: u64, data: &[u8]) -> Result<(), LogError> {
        if offset == 0 {
            self.start(meta)?;
        }
        let partial = match self.partial.as_mut() {
            Some(partial) if partial.meta == *meta && partial.written == offset => partial,
            _ => {
                return Err(LogError::Invalid(format!(
                    "a chunk of {meta} at {offset} does not continue the snapshot being received"
                )))
            }
        };
        for piece in data.chunks(self.store.chunk_bytes.max(1)) {
            partial.sink.append(&self.store.encoder, Some(piece), false)?;
        }
        partial.hasher.update(data);
        partial.written += data.len() as u64;
        partial.unsynced += data.len() as u64;
        if partial.unsynced >= SYNC_EVERY {
            // Synced now and then, not per chunk: what a crash loses of the partial snapshot is
            // only sent again (the restarted node reports what it holds); the install syncs it all.
            partial.sink.sync()?;
            partial.unsynced = 0;
        }
        Ok(())
    }

    /// Starts receiving `meta` (a partial snapshot before it is deleted).
    fn start(&mut self, meta: &SnapshotMeta) -> Result<(), LogError> {
        if let Some(old) = self.partial.take() {
            fs::remove_file(&old.sink.path).map_err(io_error("delete", &old.sink.path))?;
        }
        let path = self.store.path(meta.last.seq).with_extension("snap-part");
        let file = File::create(&path).map_err(io_error("create", &path))?;
        let mut sink = RecordSink::new(file, path, &self.store.encoder, meta)?;
        sink.append(&self.store.encoder, Some(&meta_payload(meta.digest, meta.configuration.as_ref())), false)?;
        sink.sync()?;
        sync_directory(&self.store.dir)?;
        self.partial = Some(Partial { meta: meta.clone(), sink, written: 0, hasher: Xxh3::new(), unsynced: 0 });
        Ok(())
    }

    /// The snapshot `meta` is complete: checks its digest, then makes it the latest snapshot.
    /// Nothing to do if the store holds it already, or a newer one that replaced it: a node
    /// that restarts installs its own latest snapshot (its log restarts after it), and a slow
    /// disk may carry that out only after newer snapshots were taken and this one deleted.
    pub fn install(&mut self, meta: &SnapshotMeta) -> Result<(), LogError> {
        let held = self.store.list()?.first().is_some_and(|newest| *newest >= meta.last.seq);
        if held && self.partial.as_ref().is_none_or(|p| p.meta != *meta) {
            return Ok(());
        }
        let Some(mut partial) = self.partial.take().filter(|partial| partial.meta == *meta) else {
            return Err(LogError::Invalid(format!("{meta} is not the snapshot being received")));
        };
        let digest = partial.hasher.digest();
        if digest != meta.digest {
            let path = partial.sink.path.clone();
            fs::remove_file(&path).map_err(io_error("delete", &path))?;
            return Err(LogError::Damaged {
                path,
                detail: format!("the bytes received have digest {digest:016x}, not {:016x}", meta.digest),
            });
        }
        partial.sink.append(&self.store.encoder, Some(&digest.to_le_bytes()), true)?;
        partial.sink.file.sync_all().map_err(io_error("sync", &partial.sink.path))?;
        self.store.publish(&partial.sink.path, meta.last.seq)
    }
}

/// The meta record's payload: a digest, then the configuration entry, if any.
fn meta_payload(digest: u64, entry: Option<&Entry>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(24 + entry.map_or(0, |e| e.payload.len()));
    bytes.extend_from_slice(&digest.to_le_bytes());
    if let Some(entry) = entry {
        bytes.extend_from_slice(&entry.seq.0.to_le_bytes());
        bytes.extend_from_slice(&entry.term.0.to_le_bytes());
        bytes.extend_from_slice(entry.payload.bytes());
    }
    bytes
}

fn parse_meta(bytes: Bytes) -> Result<(u64, Option<Entry>), LogError> {
    let bad = || LogError::Invalid("a snapshot's meta record is malformed".into());
    let word = |at: usize| bytes.get(at..at + 8).map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")));
    let digest = word(0).ok_or_else(bad)?;
    if bytes.len() == 8 {
        return Ok((digest, None));
    }
    let (Some(seq), Some(term)) = (word(8), word(16)) else { return Err(bad()) };
    let config = bytes.slice(24..);
    crate::core::codec::decode_configuration(&config).map_err(|_| bad())?;
    Ok((digest, Some(Entry { term: Term(term), seq: Seq(seq), payload: Payload::Config(config) })))
}

fn nonce() -> [u8; NONCE_BYTES] {
    let mut nonce = [0u8; NONCE_BYTES];
    OsRng.fill_bytes(&mut nonce);
    nonce
}
