//! Spare segments: files of segments a prefix removal took off the log, kept to be recycled as
//! new segments, so that appends overwrite space the file system has already written instead of
//! growing a file. On ext4 an fdatasync that must also commit a file's new size writes its inode
//! too; measured here, 128 KiB synced appends that grow a file reach about half the bandwidth of
//! the same writes into written space. (PostgreSQL recycles its WAL segments, and RocksDB its
//! log files, for the same reason.)
//!
//! A recycled file still holds its earlier batches past the new ones. They must never pass for
//! batches of the new segment, nor for damage to it: each segment's header carries a salt that
//! seeds its batch checksums, and a recycled file's new header has its old salt plus one. So a
//! stale batch fails its checksum like any torn bytes, and recovery cuts it off as the end of
//! the log (a torn tail), never as a valid batch after damage. The plain encoder has no
//! checksums: its logs delete removed segments instead.
//!
//! Files: `d/n.<number, 20 digits>.spare` (the removed segment's first seq). Steps, each safe to
//! crash after:
//! - a removal renames the segment's file to a spare (the state file already records the new
//!   first seq, so the next open finds the log without it either way);
//! - recycling writes the new header (new first seq and salt) into the spare and syncs it, then
//!   renames it to the new segment's name and syncs the directory. A crash before the rename
//!   leaves a spare with a new salt (still one more than every batch in it); after, a new last
//!   segment whose first batch is stale, which recovery cuts off as a torn tail;
//! - opening lists the spares and drops those whose header does not read.
//!
//! A spare an iterator still holds (the iterator's `Arc` of the file) is never recycled: that
//! iterator must go on reading the removed entries, not the new ones.

use super::error::{io_error, LogError};
use super::format::{decode_header, encode_header, recycled_salt, Header, HEADER_BYTES};
use super::fslog::{numbered_files, FsLog, Segment};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A spare segment file and the salt its header has.
pub(super) struct Spare {
    path: PathBuf,
    file: Arc<File>,
    salt: u32,
}

impl FsLog {
    fn spare_path(&self, number: u64) -> PathBuf {
        self.dir.join(format!("{}.{number:020}.spare", self.name))
    }

    /// The spare files of the log named `name` in `dir`.
    pub(super) fn list_spares(&self) -> Result<Vec<(u64, PathBuf)>, LogError> {
        numbered_files(&self.dir, &self.name, "spare")
    }

    /// Whether removed segments become spares: with checksums (see the module docs), up to
    /// `spare_segments`.
    fn keeps_spares(&self) -> bool {
        self.options.encoder.checksummed() && self.spares.len() < self.options.spare_segments
    }

    /// At open: the spares whose header reads, up to `spare_segments`; the others are deleted.
    pub(super) fn load_spares(&mut self) -> Result<(), LogError> {
        let mut deleted = false;
        for (_, path) in self.list_spares()? {
            let mut header = [0u8; HEADER_BYTES];
            let opened = OpenOptions::new().read(true).write(true).open(&path);
            let file = opened.map_err(io_error("open spare", &path))?;
            let salt = match file.read_exact_at(&mut header, 0) {
                Ok(()) => decode_header(&header, &self.options.encoder).ok().map(|header| header.salt),
                Err(_) => None,
            };
            match salt.filter(|_| self.keeps_spares()) {
                Some(salt) => self.spares.push(Spare { path, file: Arc::new(file), salt }),
                None => {
                    fs::remove_file(&path).map_err(io_error("delete spare", &path))?;
                    deleted = true;
                }
            }
        }
        if deleted {
            self.sync_dir()?;
        }
        Ok(())
    }

    /// Takes a segment a prefix removal took off the log: kept as a spare, or deleted. The
    /// caller syncs the directory.
    pub(super) fn retire_segment(&mut self, segment: Segment) -> Result<(), LogError> {
        let spare = self.spare_path(segment.first_seq);
        if self.keeps_spares() && !spare.exists() {
            if let Err(source) = fs::rename(&segment.path, &spare) {
                return self.poison(LogError::Io { op: "rename segment to spare", path: segment.path, source });
            }
            self.spares.push(Spare { path: spare, file: segment.file, salt: segment.salt });
            return Ok(());
        }
        if let Err(source) = fs::remove_file(&segment.path) {
            return self.poison(LogError::Io { op: "delete segment", path: segment.path, source });
        }
        Ok(())
    }

    /// Turns a spare no iterator holds into the file of a new segment starting at `first_seq`,
    /// at `path`: its header written and synced, then renamed (the caller syncs the directory).
    /// Returns the file, its length and its salt; `None` if no spare is free.
    pub(super) fn recycle_spare(
        &mut self,
        first_seq: u64,
        path: &Path,
    ) -> Result<Option<(Arc<File>, u64, u32)>, LogError> {
        let free = self.spares.iter().position(|spare| Arc::strong_count(&spare.file) == 1);
        // A file already at the new segment's name is never overwritten (creating it anew fails
        // with a clear error instead).
        let Some(index) = free.filter(|_| !path.exists()) else { return Ok(None) };
        let spare = self.spares.swap_remove(index);
        let salt = recycled_salt(spare.salt);
        let nonce = self.nonce()?;
        let header = encode_header(&self.options.encoder, Header { first_seq, salt }, nonce);
        let recycled = (|| {
            spare.file.write_all_at(&header, 0)?;
            spare.file.sync_data()?;
            fs::rename(&spare.path, path)?;
            spare.file.metadata().map(|metadata| metadata.len())
        })();
        match recycled {
            Ok(len) => Ok(Some((spare.file, len.max(HEADER_BYTES as u64), salt))),
            Err(source) => self.poison(LogError::Io { op: "recycle spare", path: spare.path, source }),
        }
    }

    /// The bytes of the spare files.
    pub fn spare_bytes(&self) -> u64 {
        self.spares.iter().filter_map(|spare| spare.file.metadata().ok()).map(|metadata| metadata.len()).sum()
    }
}
