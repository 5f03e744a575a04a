//! Durable snapshots next to a log (issue 14, groundwork): a state machine's snapshot is a stream
//! of bytes of unknown length, written as it is produced and read back as it is consumed; no
//! snapshot is ever held in memory whole.
//!
//! A snapshot is a file `<name>.<last seq as 20 digits>.snap` in the log's own format and
//! encoder (`format.rs`): a segment header (its "first seq" is the snapshot's last included
//! seq; with encryption, its key check makes a wrong key a clear error), then records chained by
//! checksum, with the snapshot's term and their index as (seq, term):
//!
//! ```text
//! record 0        meta: the configuration in force at the snapshot's last seq, if any
//!                 (its seq and term as two u64, then `encode_configuration`'s bytes), or blank
//! record 1..=n    the snapshot's bytes, in chunks of at most `chunk_bytes`
//! last record     sealed (the batch-end mark): the snapshot is complete
//! ```
//!
//! It is written to `<...>.snap-new`, synced, renamed, and the directory synced, so a crash
//! leaves no partial snapshot under the final name. Opening verifies the newest snapshot from end
//! to end (every checksum, the chain, the seal, the decryption); a damaged one is reported and the
//! one before it is used. Finishing a snapshot keeps the one before it (the fallback) and
//! deletes older ones.

use super::format::{decode_header, decode_record, encode_header, encode_record, seal_batch, Encoder, NewRecord};
use super::format::{HEADER_BYTES, NONCE_BYTES};
use super::fslog::{io_error, numbered_files, sync_directory, LogError};
use crate::core::{Entry, LogId, Payload, Seq, Term};
use bytes::Bytes;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::OsRng;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// What a snapshot covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// The last entry the snapshot includes.
    pub last: LogId,
    /// The configuration entry in force at `last`, if the log had one.
    pub configuration: Option<Entry>,
}

/// The snapshots of one log: where they are and how they are encoded.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    name: String,
    encoder: Encoder,
    /// The largest chunk written (and accepted when read).
    pub chunk_bytes: usize,
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
        SnapshotStore { dir: dir.as_ref().to_path_buf(), name: name.to_string(), encoder, chunk_bytes: 1 << 20 }
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

    /// Starts writing the snapshot that covers the log up to `meta.last`.
    pub fn writer(&self, meta: SnapshotMeta) -> Result<SnapshotWriter<'_>, LogError> {
        let temporary = self.path(meta.last.seq).with_extension("snap-new");
        let mut file = File::create(&temporary).map_err(io_error("create", &temporary))?;
        file.write_all(&encode_header(&self.encoder, meta.last.seq.0, nonce()))
            .map_err(io_error("write", &temporary))?;
        let mut writer = SnapshotWriter {
            store: self,
            file,
            temporary,
            meta,
            pending: Vec::new(),
            record: Vec::new(),
            next: 0,
            chain: 0,
        };
        let payload = writer.meta.configuration.as_ref().map(meta_payload);
        writer.emit(payload.as_deref())?;
        Ok(writer)
    }

    /// Reads the snapshot whose last seq is `last`, chunk by chunk.
    pub fn reader(&self, last: Seq) -> Result<SnapshotReader, LogError> {
        let path = self.path(last);
        let mut file = File::open(&path).map_err(io_error("open", &path))?;
        let mut header = [0u8; HEADER_BYTES];
        file.read_exact(&mut header).map_err(io_error("read", &path))?;
        let damaged = |detail: String| LogError::Damaged { path: path.clone(), detail };
        match decode_header(&header, &self.encoder) {
            Ok(seq) if seq == last.0 => {}
            Ok(seq) => return Err(damaged(format!("its header names seq {seq}"))),
            Err(super::format::HeaderError::WrongKey) => return Err(LogError::WrongKey { path }),
            Err(error) => return Err(damaged(format!("header: {error:?}"))),
        }
        let mut reader = SnapshotReader {
            file,
            path: path.clone(),
            encoder: self.encoder.clone(),
            record_max: self.chunk_bytes + self.encoder.overhead_bytes(),
            meta: SnapshotMeta { last: LogId::new(Term(0), last), configuration: None },
            next: 0,
            chain: 0,
            done: false,
            current: Bytes::new(),
        };
        let (term, meta) = reader.record()?.ok_or_else(|| damaged("no meta record".into()))?;
        reader.meta = SnapshotMeta { last: LogId::new(Term(term), last), configuration: parse_meta(meta)? };
        Ok(reader)
    }
}

/// Writes one snapshot as its bytes come (see [`SnapshotStore::writer`]).
pub struct SnapshotWriter<'a> {
    store: &'a SnapshotStore,
    file: File,
    temporary: PathBuf,
    meta: SnapshotMeta,
    /// Bytes not yet in a chunk.
    pending: Vec<u8>,
    /// The last record encoded, not yet written (it is sealed if it is the last).
    record: Vec<u8>,
    next: u64,
    chain: u64,
}

impl SnapshotWriter<'_> {
    /// Adds the snapshot's next bytes.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), LogError> {
        while !bytes.is_empty() {
            let take = (self.store.chunk_bytes - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == self.store.chunk_bytes {
                let chunk = std::mem::take(&mut self.pending);
                self.emit(Some(&chunk))?;
            }
        }
        Ok(())
    }

    /// Encodes a record; the one before it goes to the file.
    fn emit(&mut self, payload: Option<&[u8]>) -> Result<(), LogError> {
        self.flush_record()?;
        let record = NewRecord {
            seq: self.next,
            term: self.meta.last.term.0,
            payload,
            config: false,
            batch_offset: 0,
            chain: self.chain,
        };
        self.chain = encode_record(&mut self.record, &self.store.encoder, record, nonce());
        self.next += 1;
        Ok(())
    }

    fn flush_record(&mut self) -> Result<(), LogError> {
        self.file.write_all(&self.record).map_err(io_error("write", &self.temporary))?;
        self.record.clear();
        Ok(())
    }

    /// Makes the snapshot durable under its final name (the previous one stays as the fallback;
    /// older ones go) and returns what it covers.
    pub fn finish(mut self) -> Result<SnapshotMeta, LogError> {
        if !self.pending.is_empty() {
            let chunk = std::mem::take(&mut self.pending);
            self.emit(Some(&chunk))?;
        }
        seal_batch(&mut self.record, &self.store.encoder);
        self.flush_record()?;
        self.file.sync_all().map_err(io_error("sync", &self.temporary))?;
        let path = self.store.path(self.meta.last.seq);
        fs::rename(&self.temporary, &path).map_err(io_error("rename", &self.temporary))?;
        sync_directory(&self.store.dir)?;
        for old in self.store.list()?.into_iter().filter(|seq| *seq < self.meta.last.seq).skip(1) {
            let old = self.store.path(old);
            fs::remove_file(&old).map_err(io_error("delete", &old))?;
        }
        Ok(self.meta.clone())
    }
}

/// Reads one snapshot chunk by chunk, verifying each (see [`SnapshotStore::reader`]).
pub struct SnapshotReader {
    file: File,
    path: PathBuf,
    encoder: Encoder,
    record_max: usize,
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    next: u64,
    chain: u64,
    done: bool,
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

impl SnapshotReader {
    /// The next chunk of the snapshot's bytes; `None` at its sealed end. A damaged or cut file is
    /// an error naming it.
    pub fn next_chunk(&mut self) -> Result<Option<Bytes>, LogError> {
        Ok(self.record()?.map(|(_, payload)| payload))
    }

    /// The next record's term and payload (decrypted), `None` after the sealed one.
    fn record(&mut self) -> Result<Option<(u64, Bytes)>, LogError> {
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
        let size = 4 + u32::from_le_bytes(len) as usize;
        if size > self.record_max {
            return Err(damaged(format!("a record of {size} bytes, over the chunk size")));
        }
        let mut bytes = vec![0u8; size];
        bytes[..4].copy_from_slice(&len);
        self.file.read_exact(&mut bytes[4..]).map_err(|_| damaged("a record is cut short".into()))?;
        let record =
            decode_record(&bytes, &self.encoder, size).map_err(|e| damaged(format!("record {}: {e}", self.next)))?;
        if record.seq != self.next || (self.encoder.checksummed() && record.chain != self.chain) {
            return Err(damaged(format!("record {} is out of place", self.next)));
        }
        let payload = match &self.encoder {
            Encoder::Encrypted(key) => {
                record.decrypt(key).map_err(|e| damaged(format!("record {}: {e}", self.next)))?
            }
            _ => record.payload.map(<[u8]>::to_vec),
        };
        (self.next, self.chain, self.done) = (self.next + 1, record.checksum, record.batch_end);
        if self.done && self.file.read(&mut [0u8; 1]).map_err(io_error("read", &self.path))? > 0 {
            return Err(damaged("bytes follow its sealed last record".into()));
        }
        Ok(Some((record.term, Bytes::from(payload.unwrap_or_default()))))
    }
}

/// The meta record's payload for a configuration entry.
fn meta_payload(entry: &Entry) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16 + entry.payload.len());
    bytes.extend_from_slice(&entry.seq.0.to_le_bytes());
    bytes.extend_from_slice(&entry.term.0.to_le_bytes());
    bytes.extend_from_slice(entry.payload.bytes());
    bytes
}

fn parse_meta(bytes: Bytes) -> Result<Option<Entry>, LogError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let bad = || LogError::Invalid("a snapshot's meta record does not hold a configuration".into());
    let word = |at: usize| bytes.get(at..at + 8).map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")));
    let (Some(seq), Some(term)) = (word(0), word(8)) else { return Err(bad()) };
    let config = bytes.slice(16..);
    crate::core::codec::decode_configuration(&config).map_err(|_| bad())?;
    Ok(Some(Entry { term: Term(term), seq: Seq(seq), payload: Payload::Config(config) }))
}

fn nonce() -> [u8; NONCE_BYTES] {
    let mut nonce = [0u8; NONCE_BYTES];
    OsRng.fill_bytes(&mut nonce);
    nonce
}
