//! FsLog: encryption at rest, prefix removal, iteration beside appends, trims inside a batch,
//! repairs that cut a batch.

mod common;

use common::{payloads, segment_files};
use std::fs;
use tinyraftplus::core::{HardState, Seq, Term};
use tinyraftplus::log::{Encoder, Key};
use tinyraftplus::log::{FsLog, FsLogOptions, LogError};

fn small() -> FsLogOptions {
    FsLogOptions { segment_bytes: 300, ..FsLogOptions::default() }
}

fn encrypted(key: u8) -> FsLogOptions {
    FsLogOptions { encoder: Encoder::Encrypted(Key::new([key; 32])), ..small() }
}

#[test]
fn an_encrypted_log_hides_payloads_and_refuses_another_key_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", encrypted(1)).unwrap();
    for i in 0..20 {
        log.append(Term(1 + i / 10), Some(format!("secret-{i:02}").as_bytes())).unwrap();
    }
    log.append(Term(2), None).unwrap();
    assert!(log.segment_count() > 1);
    let chain = log.chain();
    drop(log);
    for file in segment_files(dir.path()) {
        let bytes = fs::read(&file).unwrap();
        assert!(!bytes.windows(7).any(|w| w == b"secret-"), "{} holds plaintext", file.display());
    }
    let log = FsLog::open(dir.path(), "log", encrypted(1)).unwrap();
    let mut expected: Vec<String> = (0..20).map(|i| format!("secret-{i:02}")).collect();
    expected.push("-".into());
    assert_eq!((payloads(&log, 0), log.chain()), (expected, chain));
    assert_eq!(log.read(Seq(3)).unwrap().unwrap().payload.data().unwrap().as_ref(), b"secret-03");
    drop(log);
    let wrong = FsLog::open(dir.path(), "log", encrypted(2)).err().expect("another key is refused");
    assert!(matches!(wrong, LogError::WrongKey { .. }), "{wrong}");
    assert!(wrong.to_string().contains("another key"));
    let plain = FsLog::open(dir.path(), "log", small()).err().expect("another encoder is refused");
    assert!(matches!(plain, LogError::Corrupt(_)), "{plain}");
    assert_eq!(FsLog::open(dir.path(), "log", encrypted(1)).unwrap().seq(), Some(Seq(20)), "nothing was lost");
}

#[test]
fn every_flipped_byte_of_an_encrypted_record_is_reported_with_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", FsLogOptions { segment_bytes: 1 << 20, ..encrypted(1) }).unwrap();
    for i in 0..3 {
        log.append(Term(1), Some(format!("entry-{i}").as_bytes())).unwrap();
    }
    let file = segment_files(dir.path()).pop().unwrap();
    drop(log);
    drop(FsLog::open(dir.path(), "log", encrypted(1)).unwrap()); // Cuts the zeros written ahead.
    let good = fs::read(&file).unwrap();
    let record = (good.len() - 72) / 3;
    // Every byte of the first two records (the third, last one is a torn tail when damaged).
    for byte in 72..72 + 2 * record {
        let mut bad = good.clone();
        bad[byte] ^= 0x01;
        fs::write(&file, &bad).unwrap();
        let error = FsLog::open(dir.path(), "log", encrypted(1)).err().expect("damage is found");
        let LogError::Corrupt(corruption) = &error else { panic!("byte {byte}: {error}") };
        assert_eq!(corruption.seq, ((byte - 72) / record) as u64, "byte {byte}");
    }
    fs::write(&file, &good).unwrap();
    assert_eq!(FsLog::open(dir.path(), "log", encrypted(1)).unwrap().seq(), Some(Seq(2)));
}

#[test]
fn removing_a_prefix_deletes_whole_segments_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", small()).unwrap();
    log.save_hard_state(HardState::new(Term(3), None)).unwrap();
    for i in 0..60 {
        log.append(Term(1 + i / 25), Some(format!("entry-{i:02}").as_bytes())).unwrap();
    }
    let segments = log.segment_count();
    log.remove_prefix(Seq(30)).unwrap();
    let first = log.first().0;
    assert!(first > 0 && first <= 31, "first {first}");
    assert!(log.segment_count() < segments);
    assert_eq!(segment_files(dir.path()).len(), log.segment_count());
    assert_eq!(log.read(Seq(first - 1)).unwrap(), None);
    assert_eq!(payloads(&log, first).len() as u64, 60 - first);
    let error = log.iter(Seq(0)).next().unwrap().unwrap_err();
    assert!(error.to_string().contains("were removed"), "{error}");
    assert!(matches!(log.trim(Some(Seq(first - 2))), Err(LogError::Invalid(_))));
    log.recovered(10).unwrap().validate().unwrap();
    let (seq, chain) = (log.seq(), log.chain());
    drop(log);
    let mut log = FsLog::open(dir.path(), "log", small()).unwrap();
    assert_eq!((log.first().0, log.seq(), log.chain()), (first, seq, chain));
    assert_eq!(log.recovered(100).unwrap().term_starts[0].seq, Seq(first));
    assert_eq!(log.append(Term(3), Some(b"next")).unwrap(), Seq(60));
    log.remove_prefix(Seq(1000)).unwrap();
    assert_eq!(log.segment_count(), 1, "the segment holding the last entry stays");
    assert_eq!(log.head().unwrap().unwrap().payload.data().unwrap().as_ref(), b"next");
    drop(log);
    assert_eq!(FsLog::open(dir.path(), "log", small()).unwrap().seq(), Some(Seq(60)));
}

#[test]
fn an_iterator_leaves_the_log_free_for_appends_and_stops_at_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", small()).unwrap();
    for i in 0..10 {
        log.append(Term(1), Some(format!("e{i}").as_bytes())).unwrap();
    }
    let iter = log.iter(Seq(2));
    for i in 10..30 {
        log.append(Term(1), Some(format!("e{i}").as_bytes())).unwrap();
    }
    let read = std::thread::spawn(move || iter.map(|e| e.unwrap().seq.0).collect::<Vec<_>>()).join().unwrap();
    assert_eq!(read, (2..10).collect::<Vec<_>>());
    assert_eq!(log.iter(Seq(25)).count(), 5);
}

#[test]
fn a_trim_inside_a_batch_keeps_its_prefix_across_reopening_and_later_appends_chain_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = FsLogOptions::default();
    let mut log = FsLog::open(dir.path(), "log", options.clone()).unwrap();
    let batch: Vec<(Term, Option<&[u8]>)> = (0..5).map(|_| (Term(1), Some(&b"batch"[..]))).collect();
    log.append_batch(&batch).unwrap();
    log.trim(Some(Seq(2))).unwrap();
    assert_eq!(log.seq(), Some(Seq(2)));
    drop(log);
    let mut log = FsLog::open(dir.path(), "log", options.clone()).unwrap();
    assert_eq!(log.seq(), Some(Seq(2)), "the kept part of the batch was marked whole");
    // A transaction that trims inside a batch, then appends: its records chain to the kept one.
    log.append_batch(&[(Term(2), Some(b"x")), (Term(2), Some(b"y"))]).unwrap();
    let mut txn = log.txn().unwrap();
    txn.trim(Some(Seq(3))).unwrap();
    txn.append(Term(3), Some(b"z")).unwrap();
    assert_eq!(txn.commit().unwrap(), Some(Seq(4)));
    let chain = log.chain();
    drop(log);
    let log = FsLog::open(dir.path(), "log", options).unwrap();
    assert_eq!(
        (payloads(&log, 0), log.chain()),
        (["batch", "batch", "batch", "x", "z"].map(String::from).to_vec(), chain)
    );
}

#[test]
fn a_repair_inside_a_batch_keeps_its_first_entries_and_the_log_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    let batch: Vec<(Term, Option<&[u8]>)> = (0..4).map(|_| (Term(1), Some(&b"first batch"[..]))).collect();
    log.append_batch(&batch).unwrap();
    log.append(Term(1), Some(b"later")).unwrap();
    log.append(Term(1), Some(b"last")).unwrap();
    drop(log);
    drop(FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap()); // Cuts the zeros written ahead.
    let file = segment_files(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&file).unwrap();
    let first_batch = 44 + 4 + 4 * 11;
    bytes[72 + first_batch + 40] ^= 0x40; // Inside the batch of seq 4.
    fs::write(&file, &bytes).unwrap();
    let LogError::Corrupt(corruption) = FsLog::open(dir.path(), "log", FsLogOptions::default()).err().unwrap() else {
        panic!("corruption expected")
    };
    assert_eq!(corruption.seq, 4);
    // A repair from seq 2 cuts the first batch: its entries 0 and 1 are written again.
    let repaired = FsLog::open(dir.path(), "log", FsLogOptions { repair_from: Some(2), ..FsLogOptions::default() });
    assert_eq!(repaired.unwrap().seq(), Some(Seq(1)));
    let mut log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    assert_eq!((log.seq(), payloads(&log, 0)), (Some(Seq(1)), vec!["first batch".to_string(); 2]));
    assert_eq!(log.append(Term(2), Some(b"again")).unwrap(), Seq(2));
    drop(log);
    let log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    assert_eq!(log.seq(), Some(Seq(2)));
}

#[test]
fn small_batches_write_into_zeros_written_ahead_which_sealing_and_reopening_cut() {
    let dir = tempfile::tempdir().unwrap();
    let options = FsLogOptions { segment_bytes: 2 << 20, ..FsLogOptions::default() };
    let mut log = FsLog::open(dir.path(), "log", options.clone()).unwrap();
    log.append(Term(1), Some(b"first")).unwrap();
    let file = segment_files(dir.path()).pop().unwrap();
    let grown = fs::metadata(&file).unwrap().len();
    assert!(grown > log.disk_bytes() + 500_000, "zeros are written ahead");
    log.append(Term(1), Some(b"second")).unwrap();
    assert_eq!(fs::metadata(&file).unwrap().len(), grown, "the next small batch does not grow the file");
    let big = vec![9u8; 3 << 20];
    log.append(Term(1), Some(&big)).unwrap(); // Starts a new segment: the first is cut.
    assert_eq!(log.segment_count(), 2);
    let first_len = fs::metadata(segment_files(dir.path())[0].clone()).unwrap().len();
    assert!(first_len < 1000, "a sealed segment ends with its last record ({first_len} bytes)");
    drop(log);
    let log = FsLog::open(dir.path(), "log", options).unwrap();
    assert_eq!(fs::metadata(segment_files(dir.path())[1].clone()).unwrap().len(), log.disk_bytes() - first_len);
    assert_eq!(log.seq(), Some(Seq(2)));
}

#[test]
fn batches_of_a_hundred_kilobytes_write_zeros_ahead_and_leave_the_next_ones_sync() {
    use tinyraftplus::core::{Entry, Payload};
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    let batch = |first: u64| -> Vec<Entry> {
        let payload = |seq: u64| Payload::Data(bytes::Bytes::from(vec![seq as u8; 100]));
        (first..first + 1000).map(|seq| Entry { term: Term(1), seq: Seq(seq), payload: payload(seq) }).collect()
    };
    assert!(log.append_entries_deferred(&batch(0)).unwrap().is_none(), "the first grows the file");
    let file = segment_files(dir.path()).pop().unwrap();
    let grown = fs::metadata(&file).unwrap().len();
    assert!(grown > log.disk_bytes() + 500_000, "zeros are written ahead ({grown} bytes)");
    let sync = log.append_entries_deferred(&batch(1000)).unwrap().expect("the next fits the zeros: its sync is left");
    assert_eq!(fs::metadata(&file).unwrap().len(), grown, "the next batch does not grow the file");
    sync.sync().unwrap();
    drop(log);
    let log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    assert_eq!(log.seq(), Some(Seq(1999)));
    assert_eq!(log.read(Seq(1500)).unwrap().map(|e| e.payload.bytes()[0]), Some(1500u64 as u8));
}

/// Appends a Raft core makes, one 100-byte entry per batch, with the fdatasync left to the
/// caller where the log allows it.
fn deferred_append(log: &mut FsLog, seq: u64) -> Option<tinyraftplus::log::PendingSync> {
    use tinyraftplus::core::{Entry, Payload};
    let entry =
        Entry { term: Term(1), seq: Seq(seq), payload: Payload::Data(bytes::Bytes::from(vec![seq as u8; 100])) };
    log.append_entries_deferred(&[entry]).unwrap()
}

#[test]
fn small_appends_into_allocated_space_leave_their_sync_and_read_back_before_and_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = || FsLogOptions { segment_bytes: 1 << 20, ..FsLogOptions::default() };
    let mut log = FsLog::open(dir.path(), "log", options()).unwrap();
    // The first batch grows the file (zeros written ahead, the manifest told): synced at once.
    assert!(deferred_append(&mut log, 0).is_none(), "a batch that grows the file syncs itself");
    let mut pending = Vec::new();
    for seq in 1..50 {
        let sync = deferred_append(&mut log, seq).expect("a batch into allocated zeros leaves its sync");
        // In the log (readable) before it is durable.
        assert_eq!(log.read(Seq(seq)).unwrap().map(|e| e.payload.bytes()[0]), Some(seq as u8));
        pending.push(sync);
    }
    for sync in pending {
        sync.sync().unwrap();
    }
    // A large batch (a quarter MiB and more) is not deferred (no zeros ahead of it).
    let big: Vec<tinyraftplus::core::Entry> = (50..3000)
        .map(|seq| tinyraftplus::core::Entry {
            term: Term(1),
            seq: Seq(seq),
            payload: tinyraftplus::core::Payload::Data(bytes::Bytes::from(vec![1u8; 100])),
        })
        .collect();
    assert!(log.append_entries_deferred(&big).unwrap().is_none());
    // Entries that do not continue the log change nothing.
    assert!(matches!(log.append_entries_deferred(&big[..1]), Err(LogError::Invalid(_))));
    drop(log);
    let log = FsLog::open(dir.path(), "log", options()).unwrap();
    assert_eq!(log.seq(), Some(Seq(2999)));
    assert_eq!(log.read(Seq(49)).unwrap().map(|e| e.payload.bytes()[0]), Some(49));
}

#[test]
fn a_failed_deferred_sync_poisons_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    deferred_append(&mut log, 0);
    let error = LogError::Invalid("the disk said no".into());
    log.sync_failed(&error);
    let refused = log.append(Term(1), Some(b"after"));
    assert!(matches!(refused, Err(LogError::Poisoned(why)) if why.contains("the disk said no")));
}

#[test]
fn loads_read_large_batches_once_and_never_serve_a_trimmed_one() {
    use tinyraftplus::log::LogStore;
    let dir = tempfile::tempdir().unwrap();
    for encoder in [Encoder::XxHash, Encoder::Encrypted(Key::new([3; 32]))] {
        let name = if encoder.needs_nonces() { "sealed" } else { "plain" };
        let mut log = FsLog::open(dir.path(), name, FsLogOptions { encoder, ..FsLogOptions::default() }).unwrap();
        let texts: Vec<String> = (0..5000).map(|i| format!("old {i}")).collect();
        let batch: Vec<(Term, Option<&[u8]>)> = texts.iter().map(|t| (Term(1), Some(t.as_bytes()))).collect();
        log.append_batch(&batch).unwrap();
        log.append(Term(1), Some(b"after")).unwrap();
        let text = |entries: &[tinyraftplus::core::Entry]| -> Vec<String> {
            entries.iter().map(|e| String::from_utf8(e.payload.data().unwrap().to_vec()).unwrap()).collect()
        };
        // Ranges inside the batch, one after another (the batch stays decoded), and across it.
        for from in [0u64, 1024, 2048] {
            let loaded = LogStore::load(&log, Seq(from), Seq(from + 1023)).unwrap();
            assert_eq!(text(&loaded), payloads(&log, from)[..1024], "{name} from {from}");
        }
        assert_eq!(text(&LogStore::load(&log, Seq(4998), Seq(5000)).unwrap()), ["old 4998", "old 4999", "after"]);
        assert!(LogStore::load(&log, Seq(4999), Seq(5001)).is_err(), "past the end");
        // A trim inside the batch, then new entries at the same seqs: a load sees the new ones.
        LogStore::load(&log, Seq(2990), Seq(3010)).unwrap();
        log.trim(Some(Seq(2999))).unwrap();
        log.append_batch(&[(Term(2), Some(&b"new 3000"[..])), (Term(2), Some(&b"new 3001"[..]))]).unwrap();
        let loaded = LogStore::load(&log, Seq(2998), Seq(3001)).unwrap();
        assert_eq!(text(&loaded), ["old 2998", "old 2999", "new 3000", "new 3001"], "{name}");
    }
}
