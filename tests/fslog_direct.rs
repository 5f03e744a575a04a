//! FsLog's direct writes (`direct_writes_from`, see `src/log/direct.rs`): a direct write
//! rewrites the end of the previous batch from a copy it keeps, so that copy must never outlive
//! the bytes it copied. The model and crash tests draw direct writes too (`common::direct`).

mod common;

use common::payloads;
use tinyraftplus::core::{Seq, Term};
use tinyraftplus::log::{FsLog, FsLogOptions};

fn options() -> FsLogOptions {
    FsLogOptions { direct_writes_from: 300, ..FsLogOptions::default() }
}

fn bytes(len: usize, fill: u8) -> Vec<u8> {
    vec![fill; len]
}

#[test]
fn a_direct_write_after_the_end_was_rewritten_through_the_page_cache_keeps_the_new_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", options()).unwrap();
    log.append(Term(1), Some(&bytes(10, b'a'))).unwrap();
    let start = log.disk_bytes();
    let overhead = {
        log.append(Term(1), Some(&bytes(20, b'b'))).unwrap();
        let size = log.disk_bytes() - start;
        log.trim(Some(Seq(0))).unwrap();
        size - 20
    };
    // A direct batch that ends inside a block: the log keeps that block's first bytes.
    log.append(Term(1), Some(&bytes(400, b'c'))).unwrap();
    let end = log.disk_bytes();
    assert_ne!(end % 4096, 0, "the batch ends inside a block");
    // Cut off, and the same length written again with other bytes, through the page cache.
    log.trim(Some(Seq(0))).unwrap();
    assert_eq!(log.disk_bytes(), start);
    let second = 400 - overhead - 150;
    log.append(Term(1), Some(&bytes(150, b'd'))).unwrap();
    log.append(Term(1), Some(&bytes(second as usize, b'e'))).unwrap();
    assert_eq!(log.disk_bytes(), end, "the end is where the direct batch ended");
    // The next direct write carries the end of the last batch: the new bytes, not the copy.
    log.append(Term(1), Some(&bytes(400, b'f'))).unwrap();
    let expected = ["a".repeat(10), "d".repeat(150), "e".repeat(second as usize), "f".repeat(400)];
    assert_eq!(payloads(&log, 0), expected);
    drop(log);
    let log = FsLog::open(dir.path(), "log", options()).unwrap();
    assert_eq!(payloads(&log, 0), expected);
}

#[test]
fn direct_and_cached_batches_alternate_across_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let options = FsLogOptions { segment_bytes: 64 << 10, ..options() };
    let mut log = FsLog::open(dir.path(), "log", options.clone()).unwrap();
    let mut expected = Vec::new();
    for i in 0..200usize {
        // Sizes from 1 byte to 9 KB: both sides of the threshold, some batches across blocks.
        let len = (i * 7919) % 9000 + 1;
        let fill = b'a' + (i % 26) as u8;
        log.append(Term(1 + i as u64 / 50), Some(&bytes(len, fill))).unwrap();
        expected.push(String::from_utf8(bytes(len, fill)).unwrap());
        if i % 37 == 36 {
            let last = log.seq().unwrap().0;
            log.trim(Some(Seq(last - 3))).unwrap();
            expected.truncate(last as usize - 2);
        }
    }
    assert_eq!(payloads(&log, 0), expected);
    drop(log);
    let log = FsLog::open(dir.path(), "log", options).unwrap();
    assert_eq!(payloads(&log, 0), expected);
}

/// The open handles of this process on files in `dir`.
fn handles_in(dir: &std::path::Path) -> usize {
    let fds = std::fs::read_dir("/proc/self/fd").unwrap();
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok()).filter(|target| target.starts_with(dir)).count()
}

#[test]
fn a_full_segment_lets_go_of_its_direct_handle() {
    let dir = tempfile::tempdir().unwrap();
    let options = FsLogOptions { segment_bytes: 64 << 10, ..options() };
    let mut log = FsLog::open(dir.path(), "log", options).unwrap();
    for i in 0..40u8 {
        log.append(Term(1), Some(&bytes(40 << 10, i))).unwrap();
    }
    let segments = log.segment_count();
    assert!(segments >= 40, "one 40 KB batch per segment: {segments}");
    // One handle per segment (reads), the lock file, and the last segment's direct handle.
    assert!(handles_in(dir.path()) <= segments + 2, "{} handles for {segments} segments", handles_in(dir.path()));
}
