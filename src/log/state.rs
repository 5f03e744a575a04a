//! The file log's small files: the state (term, vote, catching-up flag and segment record, in
//! two checksummed slots, so a torn write of one leaves the other), the lock, and the trim
//! intent (present only while a trim runs, so a crash in the middle completes it at the next
//! open); and deleting a whole log.

use super::error::io_error;
use super::fslog::{FsLog, FsLogOptions};
use super::manifest::Manifest;
use super::LogError;
use crate::core::{HardState, NodeId, Seq, Term};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::xxh3_64;

/// One slot of the state file: counter, term, vote + 1 (0: none), flags (bit 0: catching
/// up), the segment record (first seq, newest segment's first seq + 1 (0: none), its length;
/// see `manifest`), the commit hint + 1 (0: none), each a little-endian u64, then the XXH3-64
/// of those 64 bytes.
const SLOT_BYTES: usize = 72;

/// A slot of the first version of the state file: the same without the commit hint. A log
/// whose state file has these is rewritten in the new layout when it opens.
const OLD_SLOT_BYTES: usize = 64;

/// A trim's target and the batch that replaces the one it cuts inside, if any.
type TrimIntent = (u64, Option<Vec<u8>>);

impl FsLog {
    pub(super) fn trim_path(&self) -> PathBuf {
        self.dir.join(format!("{}.trim", self.name))
    }

    /// Writes the intent of a trim to `keep_end` (with the batch that replaces the one it cuts
    /// inside, if any), durably: a crash before the trim is done completes it at the next open.
    pub(super) fn write_trim_intent(&mut self, keep_end: u64, rewrite: Option<&[u8]>) -> Result<(), LogError> {
        let path = self.trim_path();
        let mut bytes = keep_end.to_le_bytes().to_vec();
        bytes.extend_from_slice(rewrite.unwrap_or_default());
        bytes.extend_from_slice(&xxh3_64(&bytes).to_le_bytes());
        let written = File::create(&path).and_then(|f| f.write_all_at(&bytes, 0).and_then(|()| f.sync_all()));
        if let Err(source) = written {
            return self.poison(LogError::Io { op: "write trim intent", path, source });
        }
        self.sync_dir().or_else(|e| self.poison(e))
    }

    /// The intent of an unfinished trim: its target and the batch that replaces the one it cuts
    /// inside, if any.
    pub(super) fn read_trim_intent(&self) -> Result<Option<TrimIntent>, LogError> {
        let path = self.trim_path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LogError::Io { op: "read", path, source }),
        };
        // A torn intent was never acted on: the trim had not started.
        let Some(end) = bytes.len().checked_sub(8).filter(|end| *end >= 8) else { return Ok(None) };
        if xxh3_64(&bytes[..end]).to_le_bytes() != bytes[end..] {
            return Ok(None);
        }
        let keep_end = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        let rewrite = &bytes[8..end];
        if rewrite.is_empty() {
            return Ok(Some((keep_end, None)));
        }
        let encoder = &self.options.encoder;
        // Checked with the salt of the segment it goes in.
        let cut_from = rewrite.get(4..12).map_or(0, |bytes| u64::from_le_bytes(bytes.try_into().expect("8 bytes")));
        match super::format::decode_batch(rewrite, encoder, self.rewrite_salt(cut_from), rewrite.len()) {
            Ok(batch)
                if batch.size == rewrite.len()
                    && batch.first < keep_end
                    && batch.last().checked_add(1) == Some(keep_end) =>
            {
                Ok(Some((keep_end, Some(rewrite.to_vec()))))
            }
            _ => Err(LogError::Damaged { path, detail: "its batch does not match its target".into() }),
        }
    }

    /// Takes the log's lock file (an advisory `flock`, released when the file is closed, so
    /// also when the process dies): two handles never write one log.
    pub(super) fn lock(&self) -> Result<File, LogError> {
        let path = self.dir.join(format!("{}.lock", self.name));
        let file = OpenOptions::new().write(true).create(true).truncate(false).open(&path);
        let file = file.map_err(|source| LogError::Io { op: "open lock file", path: path.clone(), source })?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(LogError::Locked { path }),
            Err(std::fs::TryLockError::Error(source)) => Err(LogError::Io { op: "lock", path, source }),
        }
    }

    pub(super) fn state_path(&self) -> PathBuf {
        self.dir.join(format!("{}.state", self.name))
    }

    /// The saved term and vote.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// Saves the term and vote (and the catching-up flag) durably and atomically, into the
    /// older of two slots.
    pub fn save_hard_state(&mut self, state: HardState) -> Result<(), LogError> {
        self.check()?;
        let before = std::mem::replace(&mut self.hard_state, state);
        self.write_state().inspect_err(|_| self.hard_state = before)
    }

    /// Writes the hard state and the segment record (see `manifest`) into the older slot.
    pub(super) fn write_state(&mut self) -> Result<(), LogError> {
        self.write_state_at(self.state_path())
    }

    fn write_state_at(&mut self, path: PathBuf) -> Result<(), LogError> {
        let (state, manifest) = (self.hard_state, self.manifest);
        let counter = self.state_counter + 1;
        let words = [
            counter,
            state.term.0,
            state.vote.map_or(0, |v| v.0.wrapping_add(1)),
            u64::from(state.catching_up),
            manifest.first,
            manifest.newest.map_or(0, |seq| seq.wrapping_add(1)),
            manifest.length,
            state.commit.map_or(0, |seq| seq.0.wrapping_add(1)),
        ];
        let mut slot = [0u8; SLOT_BYTES];
        for (at, word) in words.iter().enumerate() {
            slot[at * 8..at * 8 + 8].copy_from_slice(&word.to_le_bytes());
        }
        let checksum = xxh3_64(&slot[..SLOT_BYTES - 8]);
        slot[SLOT_BYTES - 8..].copy_from_slice(&checksum.to_le_bytes());
        let existed = path.exists();
        let written =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).and_then(|file| {
                file.write_all_at(&slot, (counter % 2) * SLOT_BYTES as u64)?;
                file.sync_data()
            });
        if let Err(source) = written {
            return self.poison(LogError::Io { op: "save term and vote", path, source });
        }
        if !existed {
            self.sync_dir().or_else(|e| self.poison(e))?;
        }
        self.state_counter = counter;
        Ok(())
    }

    /// Loads the term, vote and segment record. Returns whether the state file held them: a
    /// log without them is new, or lost them (then the caller marks the log catching up).
    pub(super) fn load_hard_state(&mut self) -> Result<bool, LogError> {
        let path = self.state_path();
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut file) => {
                file.seek(SeekFrom::Start(0))
                    .and_then(|_| file.read_to_end(&mut bytes))
                    .map_err(io_error("read", &path))?;
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(LogError::Io { op: "open", path, source }),
        }
        let newest = |size: usize| {
            let slots = bytes.chunks(size).filter(|slot| slot.len() == size).filter_map(|slot| {
                let mut words = [0u64; 8];
                for (word, chunk) in words.iter_mut().zip(slot[..size - 8].chunks_exact(8)) {
                    *word = u64::from_le_bytes(chunk.try_into().expect("chunks_exact(8) gives 8 bytes"));
                }
                let checksum = u64::from_le_bytes(slot[size - 8..].try_into().expect("8 bytes"));
                (xxh3_64(&slot[..size - 8]) == checksum).then_some(words)
            });
            slots.max_by_key(|words| words[0])
        };
        // A file of the old layout is exactly two old slots; its slots never pass as new ones
        // (the checksum would have to match at another offset).
        let (found, old) = match newest(SLOT_BYTES) {
            None if bytes.len() == 2 * OLD_SLOT_BYTES => (newest(OLD_SLOT_BYTES), true),
            found => (found, false),
        };
        match found {
            Some([counter, term, vote, flags, first, newest, length, commit]) => {
                self.state_counter = counter;
                let (vote, commit) = (vote.checked_sub(1).map(NodeId), commit.checked_sub(1).map(Seq));
                self.hard_state = HardState { term: Term(term), vote, catching_up: flags & 1 == 1, commit };
                self.manifest = Manifest { first, newest: newest.checked_sub(1), length };
                if old {
                    self.rewrite_state()?;
                }
                Ok(true)
            }
            // A file created and never written (a crash before its first sync) holds nothing.
            None if bytes.iter().all(|b| *b == 0) => Ok(false),
            None => Err(LogError::Damaged {
                path,
                detail: "both term-and-vote slots fail their checksum: the log may have voted in a term it no \
                         longer knows; delete this file to rejoin as a catching-up member (it votes again once a \
                         leader has caught it up)"
                    .into(),
            }),
        }
    }

    /// Replaces a state file of the old layout with one of the new (written to a temporary
    /// file, synced, renamed over it, the directory synced): a crash leaves one or the other.
    fn rewrite_state(&mut self) -> Result<(), LogError> {
        let (path, temporary) = (self.state_path(), self.dir.join(format!("{}.state-new", self.name)));
        let _ = fs::remove_file(&temporary);
        self.write_state_at(temporary.clone())?;
        fs::rename(&temporary, &path).map_err(io_error("rename", &temporary))?;
        self.sync_dir()
    }

    /// Deletes every file of the log `name` in `dir` (the log must not be open).
    pub fn del(dir: impl AsRef<Path>, name: &str) -> Result<(), LogError> {
        let dir = dir.as_ref();
        let probe = FsLog::closed(dir.to_path_buf(), name, FsLogOptions::default());
        if !dir.exists() {
            return Ok(());
        }
        // Refuses to delete a log that is open. The lock file goes last, while held: an open
        // racing with this fails on the lock, or finds no log.
        let _lock = probe.lock()?;
        let mut paths: Vec<PathBuf> = probe.list_segments()?.into_iter().map(|(_, path)| path).collect();
        paths.extend(probe.list_spares()?.into_iter().map(|(_, path)| path));
        paths.push(probe.state_path());
        paths.push(probe.trim_path());
        for leftover in ["state-new", "evidence", "evidence-new"] {
            paths.push(dir.join(format!("{name}.{leftover}")));
        }
        paths.push(dir.join(format!("{name}.lock")));
        for path in paths {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(LogError::Io { op: "delete", path, source }),
            }
        }
        probe.sync_dir()
    }
}
