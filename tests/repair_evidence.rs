//! Protocol-aware repair on real files: a damaged record in the middle of the log is cut with
//! everything after it, but the entries after it that the node knew committed (up to the
//! commit hint saved with its term and vote) are kept as evidence, durably, until the log holds
//! their seqs again; the core gets them with `recovered()`.

mod common;

use common::{encoder, segment_files};
use std::fs;
use std::path::Path;
use tinyraftplus::core::{Entry, HardState, LogId, NodeId, Payload, Seq, Term};
use tinyraftplus::log::format::{decode_batch, HEADER_BYTES};
use tinyraftplus::log::{FsLog, FsLogOptions};

fn options(which: u8) -> FsLogOptions {
    FsLogOptions { segment_bytes: 200, encoder: encoder(which), ..FsLogOptions::default() }
}

fn entry(seq: u64) -> Entry {
    let term = if seq < 5 { 1 } else { 2 };
    Entry { term: Term(term), seq: Seq(seq), payload: Payload::Data(format!("entry-{seq:02}").into()) }
}

fn evidence(seqs: std::ops::RangeInclusive<u64>) -> Vec<(LogId, u64)> {
    seqs.map(entry).map(|e| (e.id(), e.digest())).collect()
}

/// Twelve entries (terms 1 and 2, across several segments), known committed up to `commit`;
/// then one byte of record `damaged` flipped.
fn damaged_log(dir: &Path, which: u8, commit: u64, damaged: u64) {
    let mut log = FsLog::open(dir, "log", options(which)).unwrap();
    for seq in 0..12 {
        let entry = entry(seq);
        log.append(entry.term, entry.payload.data().map(|d| &d[..])).unwrap();
    }
    let state = HardState { commit: Some(Seq(commit)), ..HardState::new(Term(2), Some(NodeId(1))) };
    log.save_hard_state(state).unwrap();
    drop(log);
    flip(dir, which, damaged);
}

/// Flips the low bit of the first seq of the batch holding `seq` (appended alone: its own
/// batch), found by walking the segments' batches: every encoder sees it (the plain one by the
/// seq).
fn flip(dir: &Path, which: u8, seq: u64) {
    let encoder = encoder(which);
    for path in segment_files(dir) {
        let mut bytes = fs::read(&path).unwrap();
        let mut at = HEADER_BYTES;
        while let Ok(batch) = decode_batch(&bytes[at..], &encoder, 0, 1 << 20) {
            let (first, last, size) = (batch.first, batch.last(), batch.size);
            if (first..=last).contains(&seq) {
                bytes[at + 4] ^= 0x01;
                fs::write(&path, bytes).unwrap();
                return;
            }
            at += size;
        }
    }
    panic!("no batch holds seq {seq}");
}

#[test]
fn a_damaged_middle_record_is_cut_and_the_committed_entries_after_it_kept_as_evidence() {
    // Checksummed, and encrypted (the digests are of the plain entries).
    for which in [1, 2] {
        kept_as_evidence(which);
    }
}

fn kept_as_evidence(which: u8) {
    let dir = tempfile::tempdir().unwrap();
    damaged_log(dir.path(), which, 8, 3);
    let (log, repair) = FsLog::open_repairing(dir.path(), "log", options(which)).unwrap();
    assert_eq!(repair.expect("repaired").from, 3);
    assert_eq!(log.seq(), Some(Seq(2)));
    let recovered = log.recovered(usize::MAX).unwrap();
    // Seqs 4..=8: after the damage, at or below the commit hint (9..11 were not known
    // committed), across segment boundaries, each with the digest of what it held.
    assert_eq!(recovered.evidence, evidence(4..=8));
    assert!(recovered.hard_state.catching_up);
    recovered.validate().unwrap();
    drop(log);

    // Durable: a plain reopen still has it.
    let mut log = FsLog::open(dir.path(), "log", options(which)).unwrap();
    assert_eq!(log.recovered(0).unwrap().evidence, evidence(4..=8));
    // The core wrote seqs 3..=5 (after checking them against the evidence): at the next open,
    // only what is past the log's end is left, and once nothing is, the file goes.
    for seq in 3..6 {
        log.append(entry(seq).term, entry(seq).payload.data().map(|d| &d[..])).unwrap();
    }
    drop(log);
    let mut log = FsLog::open(dir.path(), "log", options(which)).unwrap();
    assert_eq!(log.recovered(0).unwrap().evidence, evidence(6..=8));
    for seq in 6..9 {
        log.append(entry(seq).term, entry(seq).payload.data().map(|d| &d[..])).unwrap();
    }
    drop(log);
    let log = FsLog::open(dir.path(), "log", options(which)).unwrap();
    assert_eq!(log.recovered(0).unwrap().evidence, []);
    assert!(!dir.path().join("log.evidence").exists());
}

#[test]
fn nothing_is_kept_past_the_commit_hint_nor_without_checksums() {
    // Damage past the hint: nothing after it was known committed.
    let dir = tempfile::tempdir().unwrap();
    damaged_log(dir.path(), 1, 4, 6);
    let (log, _) = FsLog::open_repairing(dir.path(), "log", options(1)).unwrap();
    assert_eq!(log.seq(), Some(Seq(5)));
    assert_eq!(log.recovered(0).unwrap().evidence, []);
    assert!(!dir.path().join("log.evidence").exists());

    // The plain encoder has no checksums: what follows damage cannot be trusted, and nothing
    // is taken for evidence (here the flipped byte is in the batch's seq, which it sees).
    let dir = tempfile::tempdir().unwrap();
    damaged_log(dir.path(), 0, 8, 3);
    let (log, repair) = FsLog::open_repairing(dir.path(), "log", options(0)).unwrap();
    assert_eq!(repair.expect("repaired").from, 3);
    assert_eq!(log.recovered(0).unwrap().evidence, []);
}

#[test]
fn a_second_repair_keeps_the_first_ones_evidence() {
    let dir = tempfile::tempdir().unwrap();
    damaged_log(dir.path(), 1, 10, 6);
    let (log, _) = FsLog::open_repairing(dir.path(), "log", options(1)).unwrap();
    assert_eq!(log.recovered(0).unwrap().evidence, evidence(7..=10));
    drop(log);
    // Now seq 2 is damaged too.
    flip(dir.path(), 1, 2);
    let (log, repair) = FsLog::open_repairing(dir.path(), "log", options(1)).unwrap();
    assert_eq!(repair.expect("repaired").from, 2);
    let mut expected = evidence(3..=5);
    expected.extend(evidence(7..=10));
    assert_eq!(log.recovered(0).unwrap().evidence, expected);
}
