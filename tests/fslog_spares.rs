//! Spare segments (`spares.rs`): the files of removed segments are recycled as new segments, and
//! the batches left in them from their earlier lives never pass for batches of the new segment,
//! nor for damage to it: every state a crash can leave opens to the durable entries.

mod common;

use common::disk_states::{read_all, restore, snapshot, without_recorded_length, Files};
use common::{files_with_extension, segment_files};
use std::fs;
use std::path::{Path, PathBuf};
use tinyraftplus::core::{Seq, Term};
use tinyraftplus::log::format::{decode_batch, HEADER_BYTES};
use tinyraftplus::log::{Encoder, FsLog, FsLogOptions, Key};

fn options(encoder: Encoder) -> FsLogOptions {
    FsLogOptions { encoder, segment_bytes: 16 << 10, ..FsLogOptions::default() }
}

fn checksummed() -> [Encoder; 2] {
    [Encoder::XxHash, Encoder::Encrypted(Key::new([3; 32]))]
}

/// Appends `batches` batches of 10 entries of 100 bytes (each payload names its seq).
fn append(log: &mut FsLog, batches: usize) {
    for _ in 0..batches {
        let first = log.seq().map_or(log.first().0, |s| s.0 + 1);
        let payloads: Vec<Vec<u8>> = (first..first + 10).map(|seq| format!("{seq:0100}").into_bytes()).collect();
        let batch: Vec<(Term, Option<&[u8]>)> = payloads.iter().map(|p| (Term(1), Some(&p[..]))).collect();
        log.append_batch(&batch).unwrap();
    }
}

fn spares(dir: &Path) -> Vec<PathBuf> {
    files_with_extension(dir, "spare")
}

/// The salt in a segment file's header.
fn salt(path: &Path) -> u32 {
    let bytes = fs::read(path).unwrap();
    u32::from_le_bytes(bytes[12..16].try_into().unwrap())
}

/// A log of several segments whose prefix was removed: two spares wait.
fn with_spares(dir: &Path, encoder: Encoder) -> FsLog {
    let mut log = FsLog::open(dir, "log", options(encoder)).unwrap();
    append(&mut log, 60);
    assert!(log.segment_count() >= 4, "{} segments", log.segment_count());
    let last = log.seq().unwrap();
    log.remove_prefix(Seq(last.0 - 50)).unwrap();
    assert_eq!(spares(dir).len(), 2, "two spares kept, the other removed segments deleted");
    log
}

#[test]
fn removed_segments_are_recycled_and_read_back_after_reopening() {
    for encoder in checksummed() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = with_spares(dir.path(), encoder.clone());
        let spare_bytes = log.spare_bytes();
        assert!(spare_bytes > 2 * (8 << 10), "spares keep their length: {spare_bytes}");
        let segments_before = segment_files(dir.path());
        append(&mut log, 30); // Two more segments: both recycled.
        assert!(spares(dir.path()).is_empty());
        let new: Vec<PathBuf> =
            segment_files(dir.path()).into_iter().filter(|p| !segments_before.contains(p)).collect();
        assert_eq!(new.len(), 2, "{new:?}");
        assert!(new.iter().all(|p| salt(p) == 1), "a recycled file's salt is one more");
        let expected = read_all(&log);
        drop(log);
        let log = FsLog::open(dir.path(), "log", options(encoder.clone())).unwrap();
        assert_eq!(read_all(&log), expected);
        let first = log.first().0;
        assert_eq!(expected[0].0, first);
        for (seq, payload) in &expected {
            assert_eq!(payload, &format!("{seq:0100}").into_bytes());
        }
        // Loads go through the batches of recycled segments too.
        let last = log.seq().unwrap().0;
        let entries = tinyraftplus::log::LogStore::load(&log, Seq(last - 25), Seq(last)).unwrap();
        assert_eq!(entries.len(), 26);
    }
}

#[test]
fn the_plain_encoder_deletes_removed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", options(Encoder::Plain)).unwrap();
    append(&mut log, 60);
    log.remove_prefix(Seq(log.seq().unwrap().0 - 50)).unwrap();
    assert!(spares(dir.path()).is_empty());
}

#[test]
fn del_deletes_the_spares() {
    let dir = tempfile::tempdir().unwrap();
    drop(with_spares(dir.path(), Encoder::XxHash));
    FsLog::del(dir.path(), "log").unwrap();
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A recycled segment's last batch torn at every byte, with the stale bytes of the file's
/// earlier life after what landed: each state opens to the log without that batch (or with it,
/// whole), never to an error, and takes appends again.
#[test]
fn a_torn_batch_in_a_recycled_segment_is_cut_off_with_the_stale_bytes_after_it() {
    for encoder in checksummed() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = with_spares(dir.path(), encoder.clone());
        // Into the first recycled segment, which keeps stale bytes after the new batches.
        let newest = segment_files(dir.path()).pop();
        while segment_files(dir.path()).pop() == newest {
            append(&mut log, 1);
        }
        append(&mut log, 3);
        let durable = read_all(&log);
        let last_segment = segment_files(dir.path()).pop().unwrap();
        assert_eq!(salt(&last_segment), 1, "a spare was recycled");
        // Taken while the log is open: closing it cuts the stale bytes off.
        let before: Files = snapshot(dir.path());
        append(&mut log, 1);
        let whole = read_all(&log);
        let after = snapshot(dir.path());
        drop(log);
        let name = last_segment.file_name().unwrap().to_str().unwrap().to_string();
        let closed = fs::metadata(&last_segment).unwrap().len();
        assert!(closed < after[&name].len() as u64, "closing cut the stale bytes off");
        // The new batch: the last one in the file after the append.
        let (old, new) = (&before[&name], &after[&name]);
        let (mut start, mut size) = (HEADER_BYTES, 0);
        while let Ok(batch) = decode_batch(&new[start + size..], &encoder, salt(&last_segment), 1 << 20) {
            (start, size) = (start + size, batch.size);
        }
        assert!(old.len() > start + size, "stale bytes lie past the new batch");
        for landed in (0..=size).step_by(7).chain([size]) {
            let mut files = after.clone();
            // What had not landed of the batch still shows the file's earlier bytes.
            let mut torn = new.clone();
            torn[start + landed..start + size].copy_from_slice(&old[start + landed..start + size]);
            files.insert(name.clone(), torn);
            restore(dir.path(), &files);
            let mut log = FsLog::open(dir.path(), "log", options(encoder.clone()))
                .unwrap_or_else(|e| panic!("{landed} of {size} bytes landed: {e}"));
            // The bytes that did not land may equal the new ones (a stale batch of the same size
            // at the same offset has the same end mark, and a checksum's last byte matches one
            // time in 256): that file is the whole batch, byte for byte.
            let whole_again = old[start + landed..start + size] == new[start + landed..start + size];
            let expected = if whole_again { &whole } else { &durable };
            let read = read_all(&log);
            let last = |entries: &[(u64, Vec<u8>)]| entries.last().map(|e| e.0);
            assert_eq!((read.len(), last(&read)), (expected.len(), last(expected)), "{landed} of {size} landed");
            assert!(read == *expected, "{landed} of {size} bytes landed: other entries");
            append(&mut log, 2);
            drop(log);
            let log = FsLog::open(dir.path(), "log", options(encoder.clone())).unwrap();
            assert_eq!(read_all(&log).len(), expected.len() + 20);
        }
    }
}

/// Recycling writes the new header into the spare and syncs it, renames it, syncs the
/// directory, and only then records the new segment in the state file. A crash before the
/// rename leaves a spare with the new salt; after it, a new segment holding only stale batches.
/// Both open to the entries before, and the log goes on.
#[test]
fn a_crash_while_recycling_a_spare_opens_and_goes_on() {
    for encoder in checksummed() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = with_spares(dir.path(), encoder.clone());
        // A: the files just before the append that starts a segment in a spare; B: after it.
        let (a, b) = loop {
            let count = segment_files(dir.path()).len();
            drop(log);
            let a = snapshot(dir.path());
            log = FsLog::open(dir.path(), "log", options(encoder.clone())).unwrap();
            append(&mut log, 1);
            if segment_files(dir.path()).len() > count {
                drop(log);
                break (a, snapshot(dir.path()));
            }
        };
        let spare = a.keys().find(|name| name.ends_with(".spare") && !b.contains_key(*name)).unwrap().clone();
        let segment = b.keys().find(|name| name.ends_with(".seg") && !a.contains_key(*name)).unwrap().clone();
        let new_header = &b[&segment][..HEADER_BYTES];
        let mut recycled = a[&spare].clone();
        recycled[..HEADER_BYTES].copy_from_slice(new_header);
        let entries_before = {
            restore(dir.path(), &a);
            read_all(&FsLog::open(dir.path(), "log", options(encoder.clone())).unwrap())
        };
        // After the rename: the new segment (recorded) holds the stale batches only.
        let mut renamed = b.clone();
        renamed.insert(segment.clone(), recycled.clone());
        // Before the rename: the spare has its new header; the previous segment is sealed but
        // the state file does not name the new segment yet (nor a length for the sealed one).
        let mut headed = b.clone();
        headed.remove(&segment);
        headed.insert(spare.clone(), recycled);
        let state = a.keys().find(|name| name.ends_with(".state")).unwrap().clone();
        headed.insert(state.clone(), without_recorded_length(&a[&state]));
        for (what, files) in [("renamed", renamed), ("headed", headed)] {
            restore(dir.path(), &files);
            let mut log =
                FsLog::open(dir.path(), "log", options(encoder.clone())).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(read_all(&log), entries_before, "{what}");
            append(&mut log, 40); // Through the spares left, and past them.
            drop(log);
            let log = FsLog::open(dir.path(), "log", options(encoder.clone())).unwrap();
            let entries = read_all(&log);
            assert_eq!(entries[..entries_before.len()], entries_before[..], "{what}");
            assert_eq!(entries.len(), entries_before.len() + 400, "{what}");
            let salts: Vec<u32> = segment_files(dir.path()).iter().map(|p| salt(p)).collect();
            assert!(salts.contains(&2) || what == "renamed", "{what}: the spare's next life has salt 2: {salts:?}");
        }
    }
}

#[test]
fn a_spare_an_iterator_holds_is_not_recycled() {
    let dir = tempfile::tempdir().unwrap();
    let mut log =
        FsLog::open(dir.path(), "log", FsLogOptions { spare_segments: 1, ..options(Encoder::XxHash) }).unwrap();
    append(&mut log, 60);
    let first = log.first();
    let mut old = log.iter(first);
    let first_entry = old.next().unwrap().unwrap();
    log.remove_prefix(Seq(log.seq().unwrap().0 - 50)).unwrap();
    assert_eq!(spares(dir.path()).len(), 1);
    append(&mut log, 30); // New segments: the held spare is not one of them.
    assert_eq!(spares(dir.path()).len(), 1, "the spare the iterator holds is still a spare");
    assert_eq!(first_entry.seq, first);
    let rest: Vec<_> = old.take(40).map(|e| e.unwrap()).collect();
    for entry in rest {
        assert_eq!(entry.payload.data().unwrap().to_vec(), format!("{:0100}", entry.seq.0).into_bytes());
    }
}
