//! Damage after a clean close that a crash cannot cause: every case must be reported (the
//! log opened short before, with no error), with advice that is safe to follow; and two handles
//! never write one log.

mod common;

use common::{payloads, segment_files};
use std::fs;
use std::path::Path;
use tinyraftplus::core::{HardState, NodeId, Term};
use tinyraftplus::log::Encoder;
use tinyraftplus::log::{FsLog, FsLogOptions, LogError};

fn small() -> FsLogOptions {
    FsLogOptions { segment_bytes: 400, ..FsLogOptions::default() }
}

/// A log of 40 entries over several segments, closed; returns its segment files.
fn written(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut log = FsLog::open(dir, "log", small()).unwrap();
    for i in 0..40u32 {
        log.append(Term(1), Some(format!("entry {i:02}").as_bytes())).unwrap();
    }
    log.save_hard_state(HardState::new(Term(5), Some(NodeId(2)))).unwrap();
    drop(log);
    let files = segment_files(dir);
    assert!(files.len() >= 4, "several segments: {files:?}");
    files
}

fn lost(dir: &Path) -> String {
    match FsLog::open(dir, "log", small()) {
        Err(error @ LogError::Lost { .. }) => error.to_string(),
        Err(other) => panic!("expected a loss, got {other}"),
        Ok(log) => panic!("opened with entries missing: {} entries", payloads(&log, log.first().0).len()),
    }
}

/// Opening with a repair accepts the loss: the surviving entries, catching up.
fn repaired(dir: &Path) -> FsLog {
    let term = FsLog::open(dir, "log", FsLogOptions { repair_from: Some(u64::MAX), ..small() })
        .map(|log| log.hard_state())
        .unwrap();
    let log = FsLog::open(dir, "log", small()).unwrap();
    assert!(log.hard_state().catching_up, "a repaired log is catching up, and stays so when reopened");
    assert_eq!(log.hard_state(), term, "as the repair left it");
    log
}

#[test]
fn a_deleted_first_segment_is_a_loss() {
    let dir = tempfile::tempdir().unwrap();
    let files = written(dir.path());
    fs::remove_file(&files[0]).unwrap();
    let message = lost(dir.path());
    assert!(message.contains("missing"), "{message}");
    assert!(!message.contains("seq 0 to drop"), "{message}");
}

#[test]
fn a_deleted_middle_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let files = written(dir.path());
    fs::remove_file(&files[1]).unwrap();
    assert!(FsLog::open(dir.path(), "log", small()).is_err(), "a hole in the segments is never skipped");
}

#[test]
fn a_deleted_last_segment_is_a_loss_and_a_repair_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let files = written(dir.path());
    fs::remove_file(files.last().unwrap()).unwrap();
    let message = lost(dir.path());
    assert!(message.contains("newest segment") && message.contains("missing"), "{message}");
    let log = repaired(dir.path());
    assert_eq!(log.hard_state().term, Term(5), "the term is kept");
    let kept = payloads(&log, 0);
    assert!(!kept.is_empty() && kept.len() < 40);
    assert_eq!(kept[0], "entry 00");
}

#[test]
fn a_zeroed_or_emptied_last_segment_is_a_loss_not_a_torn_header() {
    for zeroed in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let files = written(dir.path());
        let last = files.last().unwrap();
        let len = fs::metadata(last).unwrap().len();
        match zeroed {
            true => fs::write(last, vec![0u8; len as usize]).unwrap(),
            false => fs::write(last, []).unwrap(),
        }
        let message = lost(dir.path());
        assert!(message.contains("no header"), "{message}");
        assert!(last.exists(), "nothing was deleted");
        repaired(dir.path());
    }
}

#[test]
fn a_last_segment_cut_short_is_a_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    for i in 0..100u32 {
        log.append(Term(1), Some(format!("entry {i:02}").as_bytes())).unwrap();
    }
    drop(log);
    let file = segment_files(dir.path()).pop().unwrap();
    let len = fs::metadata(&file).unwrap().len();
    // Well inside the records: dozens of durable batches are gone.
    fs::OpenOptions::new().write(true).open(&file).unwrap().set_len(1000).unwrap();
    assert!(len > 1000);
    let message = lost(dir.path());
    assert!(message.contains("cut"), "{message}");
    let log = repaired(dir.path());
    assert!(log.seq().is_some_and(|s| s.0 < 99));
}

#[test]
fn a_clean_log_still_opens_without_a_loss() {
    // (Every state a crash can leave is checked in fslog_crash.rs.)
    let dir = tempfile::tempdir().unwrap();
    written(dir.path());
    let log = FsLog::open(dir.path(), "log", small()).unwrap();
    assert_eq!(payloads(&log, 0).len(), 40);
    assert!(!log.hard_state().catching_up);
}

#[test]
fn a_lost_term_and_vote_file_reopens_catching_up() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path());
    fs::remove_file(dir.path().join("log.state")).unwrap();
    let log = FsLog::open(dir.path(), "log", small()).unwrap();
    // It voted in term 5 and no longer knows: it must not vote until caught up.
    assert!(log.hard_state().catching_up);
    assert_eq!(payloads(&log, 0).len(), 40, "the entries are still there");
}

#[test]
fn two_opens_of_one_log_are_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    first.append(Term(1), Some(b"a")).unwrap();
    let second = FsLog::open(dir.path(), "log", FsLogOptions::default());
    assert!(matches!(second, Err(LogError::Locked { .. })), "{:?}", second.err());
    assert!(matches!(FsLog::del(dir.path(), "log"), Err(LogError::Locked { .. })), "an open log is not deleted");
    first.close();
    assert!(matches!(first.append(Term(1), Some(b"b")), Err(LogError::Closed)));
    let reopened = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    assert_eq!(payloads(&reopened, 0), ["a"]);
    drop(reopened);
    drop(FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap());
}

#[test]
fn the_wrong_encoder_is_named_with_safe_advice() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path());
    let plain = FsLogOptions { encoder: Encoder::Plain, ..small() };
    let message = FsLog::open(dir.path(), "log", plain).err().expect("refused").to_string();
    assert!(message.contains("another encoder (xxhash)") && message.contains("nothing is damaged"), "{message}");
    assert!(!message.contains("repair"), "never advise a repair for a setting: {message}");
}

/// A segment file named for `first`, holding one batch of one entry at `seq` (as a crafted
/// file would).
fn crafted(dir: &Path, first: u64, seq: u64) {
    use tinyraftplus::log::format::{encode_header, BatchBuilder, Header, Seal, NONCE_BYTES};
    let encoder = Encoder::XxHash;
    let mut bytes = encode_header(&encoder, Header { first_seq: first, salt: 0 }, [0; NONCE_BYTES]).to_vec();
    let mut builder = BatchBuilder::default();
    builder.start(seq);
    builder.push(1, Some(b"crafted"), false);
    builder.finish(&mut bytes, &encoder, Seal { chain: 0, salt: 0, nonce: [0; NONCE_BYTES] });
    fs::write(dir.join(format!("log.{first:020}.seg")), bytes).unwrap();
}

#[test]
fn seqs_read_from_disk_never_wrap() {
    // An entry at u64::MAX: no seq can follow it, so no entry may have it.
    let dir = tempfile::tempdir().unwrap();
    crafted(dir.path(), u64::MAX, u64::MAX);
    let error = FsLog::open(dir.path(), "log", FsLogOptions::default()).err().expect("refused");
    assert!(error.to_string().contains("past the highest seq"), "{error}");
    // At the highest seq an entry may have, the log opens, full: the next append is refused.
    let dir = tempfile::tempdir().unwrap();
    crafted(dir.path(), u64::MAX - 1, u64::MAX - 1);
    let mut log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    assert_eq!(log.seq(), Some(tinyraftplus::core::Seq::MAX));
    assert!(matches!(log.append(Term(1), Some(b"x")), Err(LogError::Invalid(_))));
    log.trim(Some(tinyraftplus::core::Seq(u64::MAX))).unwrap(); // Keeps everything; no overflow.
    assert_eq!(log.seq(), Some(tinyraftplus::core::Seq::MAX));
}

#[test]
fn a_trim_intent_whose_batch_does_not_fit_is_refused_and_changes_nothing() {
    use tinyraftplus::log::format::{BatchBuilder, Seal, NONCE_BYTES};
    let intent = |keep_end: u64, batch: &[u8]| {
        let mut bytes = keep_end.to_le_bytes().to_vec();
        bytes.extend_from_slice(batch);
        bytes.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&bytes).to_le_bytes());
        bytes
    };
    let at_the_end = {
        let mut builder = BatchBuilder::default();
        builder.start(u64::MAX - 1);
        builder.push(1, Some(b"a"), false);
        builder.push(1, Some(b"b"), false);
        let mut out = Vec::new();
        builder.finish(&mut out, &Encoder::XxHash, Seal { chain: 0, salt: 0, nonce: [0; NONCE_BYTES] });
        out
    };
    // Junk where the batch goes; a batch whose last seq is the highest u64 (no seq after it).
    for (keep_end, batch) in [(20, vec![7u8; 30]), (u64::MAX, at_the_end)] {
        let dir = tempfile::tempdir().unwrap();
        written(dir.path());
        fs::write(dir.path().join("log.trim"), intent(keep_end, &batch)).unwrap();
        let error = FsLog::open(dir.path(), "log", small()).err().expect("refused");
        assert!(matches!(error, LogError::Damaged { .. }) && error.to_string().contains("log.trim"), "{error}");
        fs::remove_file(dir.path().join("log.trim")).unwrap();
        assert_eq!(payloads(&FsLog::open(dir.path(), "log", small()).unwrap(), 0).len(), 40, "nothing lost");
    }
}
