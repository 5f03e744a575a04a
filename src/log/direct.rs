//! Direct writes: a large batch is written to its segment with `O_DIRECT`, past the page cache,
//! and then synced as any batch is. Measured on this project's machines (ext4 on a virtual
//! disk, 2026-12-04):
//! - write + fdatasync of 100 KB, in C: 1.12 to 1.31 times as fast as through the page cache
//!   into written space (8 of 8 alternating pairs), 1.08 to 1.31 times into a file growing with
//!   zeros written ahead (8 of 8), 1.07 to 1.28 times for 32 and 64 KB (6 of 6); at 8 and 16 KB
//!   the difference was within the noise, hence the default `direct_writes_from` of 32 KiB;
//! - traced with `strace`, the log's batches of 1,000 into recycled segments: the fdatasync
//!   after a direct write took 76 us on average, the write itself 127 us, against 180 to 200 us
//!   and 22 to 24 us through the page cache, whose pages the fdatasync has to write;
//! - `fslog_append_batch1000` (`benches/fslog.rs`), medians of seven back-to-back pairs in each
//!   of three runs: 1.09, 1.14 and 1.09 times a new log's rate through the page cache, and
//!   1.04, 1.05 and 1.09 times into recycled segments.
//!
//! `O_DIRECT` wants the file offset, the length and the memory aligned to the device's logical
//! block size; [`BLOCK`] (4 KiB) covers the usual 512 bytes and 4 KiB. A batch rarely starts on
//! a block, so a direct write starts at the block holding the batch's first byte and carries
//! the bytes already there (the end of the previous batch) in front of the batch, and ends on a
//! block with zeros after it. Those earlier bytes are kept from the previous direct write, or
//! read back once. Rewriting them with the same bytes risks no more than the page cache does,
//! which also writes whole pages. The zeros past the batch are where the log's end is told
//! anyway (zeros written ahead, see `append_bytes`).
//!
//! Where the file system refuses `O_DIRECT` (tmpfs on older kernels, for one), or outside
//! Linux, batches go through the page cache as before.

use super::fslog::{write_zeros, Segment};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The alignment of direct writes: offsets, lengths and memory.
pub(super) const BLOCK: u64 = 4096;

/// The most scratch memory a segment's direct file keeps between writes: what zeros written
/// ahead (a MiB) and batches of up to a MiB need, so that a rare large batch does not hold its
/// size in memory.
const SCRATCH_KEPT: usize = 2 << 20;

/// `n` rounded down to a block.
pub(super) fn block_floor(n: u64) -> u64 {
    n & !(BLOCK - 1)
}

/// `n` rounded up to a block.
pub(super) fn block_ceil(n: u64) -> u64 {
    block_floor(n + BLOCK - 1)
}

/// `len` bytes of `scratch` starting on a block boundary (grown to hold them).
fn aligned(scratch: &mut Vec<u8>, len: usize) -> &mut [u8] {
    scratch.resize(len + BLOCK as usize, 0);
    let align = (scratch.as_ptr() as usize).wrapping_neg() % BLOCK as usize;
    &mut scratch[align..align + len]
}

/// A segment's file opened for direct writes.
pub(super) struct DirectFile {
    file: File,
    /// The bytes of the segment's last partial block (from its start to the segment's end),
    /// while the segment ends at `tail_at`: valid as long as the last write to the segment was
    /// this file's. A cut alone cannot stale it (the segment must be written again to end at
    /// `tail_at` again), and every write goes through `append_bytes`, which forgets it before
    /// writing through the page cache.
    tail: Vec<u8>,
    tail_at: Option<u64>,
    /// Holds each write, from its first byte on a 4 KiB boundary (at most [`SCRATCH_KEPT`]
    /// bytes are kept between writes).
    scratch: Vec<u8>,
}

impl DirectFile {
    /// Opens `path` for direct writes; `None` where the file system or the platform refuses.
    pub(super) fn open(path: &Path) -> io::Result<Option<DirectFile>> {
        #[cfg(test)]
        if tests::REFUSED.with(std::cell::Cell::get) {
            return Ok(None); // This thread's test plays a file system without `O_DIRECT`.
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::OpenOptionsExt;
            match std::fs::OpenOptions::new().write(true).custom_flags(libc::O_DIRECT).open(path) {
                Ok(file) => Ok(Some(DirectFile { file, tail: Vec::new(), tail_at: None, scratch: Vec::new() })),
                Err(error) if error.raw_os_error() == Some(libc::EINVAL) => Ok(None),
                Err(error) => Err(error),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = path;
            Ok(None)
        }
    }

    /// Forgets the cached last block: the segment is about to be written through the page cache.
    pub(super) fn forget_tail(&mut self) {
        self.tail_at = None;
    }

    /// Writes `buffer` at `base`, the segment's end, as whole blocks: the block's bytes before
    /// `base` are read from `cached` (the segment's handle through the page cache) unless kept
    /// from the last write, and zeros follow the buffer to the next block. Returns the end of the
    /// blocks written. After an error of kind `InvalidInput` (EINVAL: an alignment the device does
    /// not take), writing the batch through the page cache overwrites whatever part was written.
    pub(super) fn write(&mut self, cached: &File, buffer: &[u8], base: u64) -> io::Result<u64> {
        let start = block_floor(base);
        let end = base + buffer.len() as u64;
        let stop = block_ceil(end);
        let (before, len) = ((base - start) as usize, (stop - start) as usize);
        let blocks = aligned(&mut self.scratch, len);
        match self.tail_at == Some(base) {
            true => {
                blocks[..before].copy_from_slice(&self.tail);
                #[cfg(debug_assertions)]
                {
                    let mut on_disk = vec![0; before];
                    cached.read_exact_at(&mut on_disk, start)?;
                    debug_assert!(on_disk == self.tail, "invariant: the cached block is the file's");
                }
            }
            false => cached.read_exact_at(&mut blocks[..before], start)?,
        }
        blocks[before..before + buffer.len()].copy_from_slice(buffer);
        blocks[before + buffer.len()..].fill(0);
        self.tail_at = None;
        self.file.write_all_at(blocks, start)?;
        let last = (block_floor(end) - start) as usize;
        self.tail.clear();
        self.tail.extend_from_slice(&blocks[last..last + (end - block_floor(end)) as usize]);
        self.tail_at = Some(end);
        if self.scratch.len() > SCRATCH_KEPT {
            self.scratch = Vec::new();
        }
        Ok(stop)
    }

    /// Writes zeros from `from` to `to`, both on blocks (none if `from >= to`).
    pub(super) fn write_zeros(&mut self, from: u64, to: u64) -> io::Result<()> {
        if from >= to {
            return Ok(());
        }
        debug_assert!(from.is_multiple_of(BLOCK) && to.is_multiple_of(BLOCK), "invariant: zeros on blocks");
        let chunk = (to - from).min(1 << 20) as usize;
        let zeros = aligned(&mut self.scratch, chunk);
        zeros.fill(0);
        let mut at = from;
        while at < to {
            let len = ((to - at) as usize).min(chunk);
            self.file.write_all_at(&zeros[..len], at)?;
            at += len as u64;
        }
        Ok(())
    }
}

impl Segment {
    /// Writes `buffer` at `base` directly, and the zeros up to `ahead` if it passes the file's
    /// end (rounded up to a block: `ahead` is updated, and set back if the disk is too full for
    /// zeros, which are only a speed-up). Returns the end of the blocks written, or `None` if
    /// nothing was written: the file system refused (`refused` is set) or the file did not open
    /// for direct writes this time.
    pub(super) fn write_direct(
        &mut self,
        buffer: &[u8],
        base: u64,
        ahead: &mut u64,
        refused: &mut bool,
    ) -> io::Result<Option<u64>> {
        let file = match &mut self.direct {
            Some(file) => file,
            slot => match DirectFile::open(&self.path) {
                Ok(Some(file)) => slot.insert(file),
                Ok(None) => {
                    *refused = true;
                    return Ok(None);
                }
                Err(_) => return Ok(None),
            },
        };
        let stop = match file.write(&self.file, buffer, base) {
            Ok(stop) => stop,
            Err(error) if error.kind() == io::ErrorKind::InvalidInput => {
                *refused = true;
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        *ahead = block_ceil(*ahead).max(stop);
        // Zeros ahead, if wanted: those of a partial block at `allocated` through the page cache,
        // then whole blocks.
        let from = stop.max(self.allocated);
        if from < *ahead {
            let whole = block_ceil(from);
            match write_zeros(&self.file, from, whole).and_then(|()| file.write_zeros(whole, *ahead)) {
                Err(error) if error.kind() == io::ErrorKind::StorageFull => *ahead = stop,
                other => other?,
            }
        }
        Ok(Some(stop))
    }
}

#[cfg(test)]
mod tests {
    use crate::core::{Payload, Seq, Term};
    use crate::log::{FsLog, FsLogOptions};
    use std::cell::Cell;

    thread_local! {
        /// Set by a test: `DirectFile::open` answers as a file system that refuses `O_DIRECT`.
        pub(super) static REFUSED: Cell<bool> = const { Cell::new(false) };
    }

    fn read_all(log: &FsLog) -> Vec<Vec<u8>> {
        let data = |payload| match payload {
            Payload::Data(data) => data.to_vec(),
            other => panic!("only data was appended: {other:?}"),
        };
        log.iter(Seq(0)).map(|entry| data(entry.unwrap().payload)).collect()
    }

    #[test]
    fn a_file_system_that_refuses_direct_writes_gets_every_batch_through_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let options = FsLogOptions { direct_writes_from: 0, segment_bytes: 16 << 10, ..FsLogOptions::default() };
        let payloads: Vec<Vec<u8>> = (0..30u8).map(|i| vec![i; 100 + 997 * usize::from(i)]).collect();
        for refused in [false, true] {
            REFUSED.with(|cell| cell.set(refused));
            let name = format!("log{refused}");
            let mut log = FsLog::open(dir.path(), &name, options.clone()).unwrap();
            for payload in &payloads {
                log.append(Term(1), Some(payload)).unwrap();
                assert_eq!(log.segments.last().unwrap().direct.is_some(), !refused, "refused: {refused}");
            }
            assert_eq!(log.direct_refused, refused);
            assert_eq!(read_all(&log), payloads);
            drop(log);
            let log = FsLog::open(dir.path(), &name, options.clone()).unwrap();
            assert_eq!(read_all(&log), payloads);
        }
        REFUSED.with(|cell| cell.set(false));
    }
}
