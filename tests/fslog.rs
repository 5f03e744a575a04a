//! FsLog on real files: append, read, iterate, segments, trim (fail-forward), term and vote,
//! crash recovery from torn tails, corruption reports, bad arguments.

mod common;

use common::{payloads, segment_files};
use std::fs;
use tinyraftplus::core::{HardState, NodeId, Payload, Seq, Term};
use tinyraftplus::log::format::{Encoder, HEADER_BYTES};
use tinyraftplus::log::{FsLog, FsLogOptions, LogError};
use xxhash_rust::xxh3::xxh3_64;

fn small() -> FsLogOptions {
    FsLogOptions { segment_bytes: 200, ..FsLogOptions::default() }
}

#[test]
fn append_read_iterate_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "node1", FsLogOptions::default()).unwrap();
    assert_eq!(log.seq(), None);
    assert_eq!(log.append(Term(1), None).unwrap(), Seq(0));
    assert_eq!(log.append(Term(1), Some(b"a")).unwrap(), Seq(1));
    assert_eq!(log.append_batch(&[(Term(2), Some(b"bc")), (Term(2), Some(b""))]).unwrap(), Seq(2));
    assert_eq!((log.seq(), log.last_term()), (Some(Seq(3)), Some(Term(2))));
    assert_eq!(payloads(&log, 0), ["-", "a", "bc", ""]);
    let chain = log.chain();
    drop(log);
    let log = FsLog::open(dir.path(), "node1", FsLogOptions::default()).unwrap();
    assert_eq!((log.seq(), log.chain()), (Some(Seq(3)), chain));
    assert_eq!(log.read(Seq(2)).unwrap().unwrap().term, Term(2));
    assert_eq!(log.read(Seq(9)).unwrap(), None);
}

#[test]
fn twelve_and_more_segments_reopen_in_numeric_order() {
    // The seed sorted segment names as strings: with 11 or more, a reopened log was out of order.
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", small()).unwrap();
    for i in 0..60 {
        log.append(Term(1), Some(format!("entry-{i:03}").as_bytes())).unwrap();
    }
    assert!(log.segment_count() >= 12, "{} segments", log.segment_count());
    drop(log);
    let log = FsLog::open(dir.path(), "log", small()).unwrap();
    let expected: Vec<String> = (0..60).map(|i| format!("entry-{i:03}")).collect();
    assert_eq!(payloads(&log, 0), expected);
    assert_eq!(log.seq(), Some(Seq(59)));
}

#[test]
fn a_batch_is_never_split_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", small()).unwrap();
    log.append(Term(1), Some(&[1; 100])).unwrap();
    let batch: Vec<(Term, Option<&[u8]>)> = (0..5).map(|_| (Term(1), Some(&[2u8; 40][..]))).collect();
    log.append_batch(&batch).unwrap();
    assert_eq!(log.segment_count(), 2, "the batch went whole into a new segment");
    assert_eq!(log.iter(Seq(0)).count(), 6);
}

#[test]
fn trim_keeps_a_prefix_across_segments_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", small()).unwrap();
    for i in 0..40 {
        log.append(Term(1 + i / 10), Some(format!("{i}").as_bytes())).unwrap();
    }
    log.trim(Some(Seq(12))).unwrap();
    assert_eq!((log.seq(), log.last_term()), (Some(Seq(12)), Some(Term(2))));
    log.append(Term(7), Some(b"new")).unwrap();
    drop(log);
    let mut log = FsLog::open(dir.path(), "log", small()).unwrap();
    let mut expected: Vec<String> = (0..=12).map(|i| i.to_string()).collect();
    expected.push("new".into());
    assert_eq!(payloads(&log, 0), expected);
    log.trim(None).unwrap();
    assert_eq!(log.seq(), None);
    assert_eq!(log.append(Term(8), None).unwrap(), Seq(0));
}

#[test]
fn an_interrupted_trim_completes_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", small()).unwrap();
    for i in 0..30 {
        log.append(Term(1), Some(format!("{i}").as_bytes())).unwrap();
    }
    drop(log);
    // A crash right after the trim intent was made durable, before any file changed.
    let mut intent = 5u64.to_le_bytes().to_vec();
    intent.extend_from_slice(&xxh3_64(&intent).to_le_bytes());
    fs::write(dir.path().join("log.trim"), intent).unwrap();
    let log = FsLog::open(dir.path(), "log", small()).unwrap();
    assert_eq!(log.seq(), Some(Seq(4)));
    assert!(!dir.path().join("log.trim").exists());
    // A torn intent was never acted on.
    drop(log);
    fs::write(dir.path().join("log.trim"), [1, 2, 3]).unwrap();
    assert_eq!(FsLog::open(dir.path(), "log", small()).unwrap().seq(), Some(Seq(4)));
}

#[test]
fn every_torn_tail_of_the_last_batch_recovers_every_earlier_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    for i in 0..5 {
        log.append(Term(1), Some(format!("durable-{i}").as_bytes())).unwrap();
    }
    let file = segment_files(dir.path()).pop().unwrap();
    let durable_len = fs::metadata(&file).unwrap().len() as usize;
    log.append_batch(&[(Term(1), Some(b"maybe-a")), (Term(1), Some(b"maybe-b"))]).unwrap();
    drop(log);
    let full = fs::read(&file).unwrap();
    for cut in durable_len..full.len() {
        fs::write(&file, &full[..cut]).unwrap();
        let log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
        assert_eq!(log.seq(), Some(Seq(4)), "cut {cut}: the torn batch is gone whole");
        assert_eq!(log.iter(Seq(0)).count(), 5);
        drop(log);
        assert!(fs::metadata(&file).unwrap().len() as usize <= cut, "the torn tail was truncated");
    }
}

#[test]
fn corruption_in_the_middle_fails_open_with_its_place_until_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", small()).unwrap();
    for i in 0..20 {
        log.append(Term(1), Some(format!("entry-{i}").as_bytes())).unwrap();
    }
    drop(log);
    let files_before = segment_files(dir.path());
    let first = files_before[0].clone();
    let mut bytes = fs::read(&first).unwrap();
    bytes[HEADER_BYTES + 27] ^= 0x20; // Inside seq 0's payload.
    fs::write(&first, &bytes).unwrap();
    let error = FsLog::open(dir.path(), "log", small()).err().expect("corruption is reported");
    let LogError::Corrupt(corruption) = &error else { panic!("{error}") };
    assert_eq!((corruption.segment, corruption.offset, corruption.seq), (0, HEADER_BYTES as u64, 0));
    assert_eq!(segment_files(dir.path()), files_before, "no segment was deleted");
    assert_eq!(fs::read(&first).unwrap(), bytes, "nothing was truncated");
    let repaired = FsLog::open(dir.path(), "log", FsLogOptions { repair_from: Some(0), ..small() }).unwrap();
    assert_eq!(repaired.seq(), None);
}

#[test]
fn term_and_vote_survive_a_torn_slot() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    // New storage cannot be told from a wiped one: it is catching up.
    assert_eq!(log.hard_state(), HardState { catching_up: true, ..HardState::default() });
    let older = HardState { commit: Some(Seq(7)), ..HardState::new(Term(3), Some(NodeId(2))) };
    log.save_hard_state(older).unwrap();
    log.save_hard_state(HardState::new(Term(4), None)).unwrap();
    drop(log);
    // Tear the newest slot: the older one is used. Slots are 72 bytes, written alternately,
    // each starting with its counter.
    let path = dir.path().join("log.state");
    let mut bytes = fs::read(&path).unwrap();
    let counter = |slot: usize| u64::from_le_bytes(bytes[slot * 72..slot * 72 + 8].try_into().unwrap());
    let newest = if counter(0) > counter(1) { 0 } else { 1 };
    bytes[newest * 72 + 10] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    assert_eq!(log.hard_state(), older);
}

#[test]
fn a_state_file_of_the_first_layout_opens_and_is_rewritten_in_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    log.append(Term(2), Some(b"kept")).unwrap();
    log.save_hard_state(HardState::new(Term(5), Some(NodeId(1)))).unwrap();
    drop(log);
    // The first layout: two 64-byte slots (counter, term, vote + 1, flags, segment record,
    // XXH3-64), without the commit hint. Build it from the new file's newest slot.
    let path = dir.path().join("log.state");
    let bytes = fs::read(&path).unwrap();
    let counter = |slot: usize| u64::from_le_bytes(bytes[slot * 72..slot * 72 + 8].try_into().unwrap());
    let newest = if counter(0) > counter(1) { 0 } else { 1 };
    let mut old = vec![0u8; 128];
    let slot = (counter(newest) % 2) as usize * 64;
    old[slot..slot + 56].copy_from_slice(&bytes[newest * 72..newest * 72 + 56]);
    let checksum = xxh3_64(&old[slot..slot + 56]);
    old[slot + 56..slot + 64].copy_from_slice(&checksum.to_le_bytes());
    fs::write(&path, &old).unwrap();

    let log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    assert_eq!(log.hard_state(), HardState::new(Term(5), Some(NodeId(1))));
    assert_eq!(log.read(Seq(0)).unwrap().unwrap().payload, Payload::Data(bytes::Bytes::from_static(b"kept")));
    drop(log);
    assert_eq!(fs::read(&path).unwrap().len(), 144, "rewritten in the new layout");
    assert!(!dir.path().join("log.state-new").exists());
    let log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    assert_eq!(log.hard_state(), HardState::new(Term(5), Some(NodeId(1))));
}

#[test]
fn bad_arguments_change_nothing_and_the_next_call_works() {
    // The seed's FsLog kept its lock after a bad argument and hung forever.
    let dir = tempfile::tempdir().unwrap();
    let mut log =
        FsLog::open(dir.path(), "log", FsLogOptions { payload_bytes_max: 8, ..FsLogOptions::default() }).unwrap();
    log.append(Term(2), Some(b"ok")).unwrap();
    assert!(matches!(log.append_batch(&[]), Err(LogError::Invalid(_))));
    assert!(matches!(log.append(Term(1), Some(b"x")), Err(LogError::Invalid(_))), "terms never decrease");
    assert!(matches!(log.append(Term(2), Some(&[0; 9])), Err(LogError::Invalid(_))));
    assert!(matches!(FsLog::open(dir.path(), "a/b", FsLogOptions::default()), Err(LogError::Invalid(_))));
    assert_eq!(log.append(Term(2), Some(b"next")).unwrap(), Seq(1));
}

#[test]
fn the_wrong_encoder_is_refused_and_del_removes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    log.append(Term(1), Some(b"x")).unwrap();
    log.save_hard_state(HardState::new(Term(1), None)).unwrap();
    drop(log);
    let plain = FsLogOptions { encoder: Encoder::Plain, ..FsLogOptions::default() };
    assert!(matches!(FsLog::open(dir.path(), "log", plain), Err(LogError::Corrupt(_))));
    FsLog::del(dir.path(), "log").unwrap();
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn core_writes_applied_to_the_file_log_recover_like_memory() {
    use bytes::Bytes;
    use tinyraftplus::core::{Config, Entry, Raft, Write};
    use tinyraftplus::log::{LogStore, MemLog};
    let entry = |term: u64, seq: u64, data: &str| Entry {
        term: Term(term),
        seq: Seq(seq),
        payload: if data.is_empty() { Payload::Blank } else { Payload::Data(Bytes::from(data.to_string())) },
    };
    let writes = vec![
        Write::HardState(HardState::new(Term(1), Some(NodeId(1)))),
        Write::Entries((0..5).map(|s| entry(1, s, if s == 0 { "" } else { "old" })).collect()),
        Write::HardState(HardState::new(Term(2), None)),
        Write::Truncate { from: Seq(3) },
        Write::Entries(vec![entry(2, 3, ""), entry(2, 4, "new")]),
        Write::HardState(HardState::new(Term(3), Some(NodeId(1)))),
        Write::Entries(vec![entry(3, 5, "later")]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "node", small()).unwrap();
    let mut memory = MemLog::new();
    for write in &writes {
        log.apply(write).unwrap();
        memory.apply(write).unwrap();
    }
    drop(log);
    let log = FsLog::open(dir.path(), "node", small()).unwrap();
    assert_eq!(log.recovered(usize::MAX).unwrap(), memory.recovered(usize::MAX).unwrap());
    let recovered = log.recovered(2).unwrap();
    assert_eq!(recovered.tail.len(), 2);
    let raft = Raft::new(Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]), recovered).unwrap();
    assert_eq!(raft.term(), Term(3));
    let terms: Vec<Option<Term>> = (0..6).map(|s| raft.term_at(Seq(s))).collect();
    assert_eq!(terms, [1, 1, 1, 2, 2, 3].map(|t| Some(Term(t))));
    // A write that does not continue the log is refused and changes nothing.
    let mut log = log;
    assert!(matches!(log.apply(&Write::Entries(vec![entry(3, 9, "gap")])), Err(LogError::Invalid(_))));
    assert_eq!(log.seq(), Some(Seq(5)));
}

#[test]
fn iteration_crosses_chunks_segments_and_payloads_larger_than_a_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let options = || FsLogOptions { segment_bytes: 3 << 20, payload_bytes_max: 4 << 20, ..FsLogOptions::default() };
    let mut log = FsLog::open(dir.path(), "log", options()).unwrap();
    let sizes = [10usize, 2 << 20, 7, (1 << 20) - 3, 0, 1 << 20, 5, 3 << 20, 1];
    let payload = |i: usize, size: usize| (0..size).map(|b| (b * 31 + i) as u8).collect::<Vec<u8>>();
    for (i, size) in sizes.iter().enumerate() {
        log.append(Term(1), Some(&payload(i, *size))).unwrap();
    }
    drop(log);
    let log = FsLog::open(dir.path(), "log", options()).unwrap();
    assert!(log.segment_count() > 2);
    for from in [0, 3, 8] {
        let read: Vec<Vec<u8>> = log.iter(Seq(from)).map(|e| e.unwrap().payload.data().unwrap().to_vec()).collect();
        let expected: Vec<Vec<u8>> =
            sizes.iter().enumerate().skip(from as usize).map(|(i, s)| payload(i, *s)).collect();
        assert_eq!(read, expected, "from {from}");
    }
    assert_eq!(log.iter(Seq(99)).count(), 0);
}

#[test]
fn a_transaction_commits_with_one_sync_or_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", small()).unwrap();
    for i in 0..10 {
        log.append(Term(1), Some(format!("{i}").as_bytes())).unwrap();
    }
    let snapshot: Vec<Vec<u8>> = segment_files(dir.path()).iter().map(|f| fs::read(f).unwrap()).collect();
    // Aborted (or dropped): nothing on disk or in memory.
    let mut txn = log.txn().unwrap();
    assert_eq!(txn.append(Term(1), Some(b"a")).unwrap(), Seq(10));
    txn.abort();
    {
        let mut txn = log.txn().unwrap();
        txn.append(Term(1), Some(b"b")).unwrap();
    }
    assert_eq!(log.seq(), Some(Seq(9)));
    let now: Vec<Vec<u8>> = segment_files(dir.path()).iter().map(|f| fs::read(f).unwrap()).collect();
    assert_eq!(now, snapshot);
    // A bad argument inside a transaction changes nothing and the transaction goes on.
    let mut txn = log.txn().unwrap();
    txn.append(Term(2), Some(b"x")).unwrap();
    assert!(matches!(txn.append(Term(1), Some(b"older term")), Err(LogError::Invalid(_))));
    assert!(matches!(txn.trim(Some(Seq(3))), Err(LogError::Invalid(_))), "trim comes first");
    txn.append(Term(2), Some(b"y")).unwrap();
    assert_eq!(txn.commit().unwrap(), Some(Seq(10)));
    // A trim, then appends, in one transaction (the seed's conflict repair).
    let mut txn = log.txn().unwrap();
    txn.trim(Some(Seq(4))).unwrap();
    assert_eq!(txn.append(Term(3), Some(b"repaired")).unwrap(), Seq(5));
    txn.commit().unwrap();
    drop(log);
    let log = FsLog::open(dir.path(), "log", small()).unwrap();
    assert_eq!(payloads(&log, 0), ["0", "1", "2", "3", "4", "repaired"]);
    assert_eq!(log.last_term(), Some(Term(3)));
}

#[test]
fn concurrent_appends_through_the_group_commit_handle_are_all_durable_once() {
    use std::sync::Arc;
    use tinyraftplus::log::GroupLog;
    let dir = tempfile::tempdir().unwrap();
    let log = FsLog::open(dir.path(), "log", FsLogOptions { payload_bytes_max: 64, ..small() }).unwrap();
    let group = Arc::new(GroupLog::new(log));
    let threads: Vec<_> = (0..8)
        .map(|thread| {
            let group = Arc::clone(&group);
            std::thread::spawn(move || {
                (0..300)
                    .map(|i| {
                        let payload = format!("t{thread}-{i}");
                        (group.append(Term(1), Some(payload.as_bytes())).unwrap(), payload)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut results: Vec<(Seq, String)> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    results.sort();
    assert_eq!(results.iter().map(|(s, _)| s.0).collect::<Vec<_>>(), (0..2400).collect::<Vec<_>>());
    // A bad argument fails alone.
    assert!(matches!(group.append(Term(1), Some(&[0; 65])), Err(LogError::Invalid(_))));
    assert_eq!(group.append(Term(1), Some(b"after")).unwrap(), Seq(2400));
    let stored: Vec<String> = group.with_log(|log| payloads(log, 0));
    for (seq, payload) in &results {
        assert_eq!(&stored[seq.0 as usize], payload, "seq {seq}");
    }
}

#[test]
fn the_group_commit_handle_takes_seqs_from_the_log_after_writes_through_with_log() {
    use tinyraftplus::log::GroupLog;
    let dir = tempfile::tempdir().unwrap();
    let group = GroupLog::new(FsLog::open(dir.path(), "log", small()).unwrap());
    assert_eq!(group.append(Term(1), Some(b"a")).unwrap(), Seq(0));
    group.with_log(|log| log.append_batch(&[(Term(2), Some(b"b")), (Term(2), Some(b"c"))]).unwrap());
    assert_eq!(group.append(Term(2), Some(b"d")).unwrap(), Seq(3), "after the two written through with_log");
    group.with_log(|log| log.trim(Some(Seq(0))).unwrap());
    assert_eq!(group.append(Term(2), Some(b"e")).unwrap(), Seq(1), "after the trim");
    group.with_log(|log| log.append(Term(3), Some(b"f")).unwrap());
    // A term below the log's last fails alone, and the handle goes on.
    assert!(matches!(group.append(Term(2), Some(b"old")), Err(LogError::Invalid(_))));
    assert_eq!(group.append(Term(3), Some(b"g")).unwrap(), Seq(3));
    assert_eq!(group.with_log(|log| payloads(log, 0)), ["a", "e", "f", "g"]);
}

#[test]
fn an_iterator_made_before_a_trim_never_yields_the_entries_written_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    for i in 0..10u8 {
        log.append(Term(1), Some(&[b'a' + i; 8])).unwrap();
    }
    let iter = log.iter(Seq(1));
    // The same byte offsets get other entries.
    log.trim(Some(Seq(0))).unwrap();
    for _ in 1..10 {
        log.append(Term(2), Some(b"zzzzzzzz")).unwrap();
    }
    let rest: Vec<_> = iter.collect();
    assert!(rest.iter().all(|e| !matches!(e, Ok(entry) if entry.term == Term(2))), "{rest:?}");
    assert!(matches!(rest[..], [Err(LogError::Trimmed { seq: 1 })]), "{rest:?}");
    let fresh: Vec<u64> = log.iter(Seq(0)).map(|e| e.unwrap().term.0).collect();
    assert_eq!(fresh, [1, 2, 2, 2, 2, 2, 2, 2, 2, 2], "a new iterator reads the log as it is");
}

#[test]
fn the_memory_log_and_the_file_log_agree_through_the_store_trait() {
    use tinyraftplus::log::{LogStore, MemLog};
    fn exercise(store: &mut impl LogStore) -> Vec<String> {
        let mut seen = Vec::new();
        store.save_hard_state(HardState::new(Term(2), Some(NodeId(3)))).unwrap();
        assert_eq!(
            store.append_batch(&[(Term(1), None), (Term(1), Some(b"a")), (Term(2), Some(b"b"))]).unwrap(),
            Seq(0)
        );
        assert!(matches!(store.append_batch(&[(Term(1), Some(b"older"))]), Err(LogError::Invalid(_))));
        assert!(matches!(store.append_batch(&[]), Err(LogError::Invalid(_))));
        store.trim(Some(Seq(1))).unwrap();
        store.append_batch(&[(Term(2), Some(b"c"))]).unwrap();
        for seq in 0..4 {
            seen.push(format!("{:?}", store.read(Seq(seq)).unwrap()));
        }
        seen.push(format!("{:?} {:?} {:?}", store.seq(), store.last_term(), store.hard_state()));
        seen.push(format!("{:?}", store.recovered(usize::MAX).unwrap()));
        seen.push(format!("{:?}", store.recovered(1).unwrap().tail));
        seen
    }
    let dir = tempfile::tempdir().unwrap();
    let mut file = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    let mut memory = MemLog::new();
    let from_file = exercise(&mut file);
    assert_eq!(from_file, exercise(&mut memory));
    assert_eq!(memory.iter(Seq(0)).count(), 3);
}

/// FsLog and MemLog make the same checks on an append (one function does them for both): a
/// decreasing term and an oversized payload are refused the same way, inside a transaction
/// and out, and change nothing.
#[test]
fn both_logs_refuse_the_same_bad_appends() {
    use tinyraftplus::log::{LogStore, MemLog};
    let dir = tempfile::tempdir().unwrap();
    let options = FsLogOptions { payload_bytes_max: 8, ..FsLogOptions::default() };
    let mut fs = FsLog::open(dir.path(), "log", options).unwrap();
    let mut mem = MemLog::with_payload_bytes_max(8);
    let logs: [&mut dyn LogStore; 2] = [&mut fs, &mut mem];
    let mut errors = Vec::new();
    for log in logs {
        log.append_batch(&[(Term(2), Some(b"ok"))]).unwrap();
        let older = log.append_batch(&[(Term(1), Some(b"older"))]).unwrap_err().to_string();
        let long = log.append_batch(&[(Term(2), Some(b"too long!"))]).unwrap_err().to_string();
        let mixed = log.append_batch(&[(Term(3), None), (Term(3), Some(b"too long!"))]).unwrap_err().to_string();
        assert_eq!(log.seq(), Some(Seq(0)), "a refused append changed the log");
        errors.push((older, long, mixed));
    }
    assert_eq!(errors[0], errors[1]);
    assert!(errors[1].1.contains("payload over 8 bytes"), "{:?}", errors[1]);
}

#[test]
fn configuration_entries_are_stored_recovered_and_cut_by_a_trim() {
    use tinyraftplus::core::codec::configuration_bytes;
    use tinyraftplus::core::{Configuration, Entry, Membership, Write};
    use tinyraftplus::log::{Key, LogStore};
    let members = |voters: &[u64], learners: &[u64]| {
        let ids = |list: &[u64]| list.iter().copied().map(NodeId).collect::<Vec<_>>();
        Configuration::Single(Membership::new(ids(voters), ids(learners)).unwrap())
    };
    let (first, second) = (members(&[1, 2, 3], &[4]), members(&[1, 2, 3, 4], &[]));
    let payloads = [
        Payload::Blank,
        Payload::Config(configuration_bytes(&first)),
        Payload::Data("x".into()),
        Payload::Config(configuration_bytes(&second)),
    ];
    let entries: Vec<Entry> = payloads
        .into_iter()
        .enumerate()
        .map(|(seq, payload)| Entry { term: Term(1), seq: Seq(seq as u64), payload })
        .collect();
    for encoder in [Encoder::Plain, Encoder::XxHash, Encoder::Encrypted(Key::new([3; 32]))] {
        let dir = tempfile::tempdir().unwrap();
        let options = || FsLogOptions { encoder: encoder.clone(), ..FsLogOptions::default() };
        let mut log = FsLog::open(dir.path(), "node1", options()).unwrap();
        log.apply(&Write::Entries(entries.clone())).unwrap();
        drop(log);
        let mut log = FsLog::open(dir.path(), "node1", options()).unwrap();
        assert_eq!(log.recovered(0).unwrap().configs, vec![entries[1].clone(), entries[3].clone()], "{encoder:?}");
        assert_eq!(log.read(Seq(3)).unwrap().as_ref(), Some(&entries[3]));
        assert_eq!(log.iter(Seq(0)).map(Result::unwrap).collect::<Vec<_>>(), entries);
        log.trim(Some(Seq(2))).unwrap();
        drop(log);
        let log = FsLog::open(dir.path(), "node1", options()).unwrap();
        assert_eq!(log.recovered(0).unwrap().configs, vec![entries[1].clone()], "{encoder:?}");
    }
}

#[test]
fn the_committed_configuration_is_saved_apart_and_survives_a_cut_or_damage_is_named() {
    use tinyraftplus::core::codec::configuration_bytes;
    use tinyraftplus::core::{Configuration, Entry, Membership, Write};
    use tinyraftplus::log::{Key, LogStore};
    let configuration = Configuration::Single(Membership::new([NodeId(1), NodeId(2)], []).unwrap());
    let entry = Entry { term: Term(2), seq: Seq(1), payload: Payload::Config(configuration_bytes(&configuration)) };
    for encoder in [Encoder::Plain, Encoder::XxHash, Encoder::Encrypted(Key::new([5; 32]))] {
        let dir = tempfile::tempdir().unwrap();
        let options = || FsLogOptions { encoder: encoder.clone(), ..FsLogOptions::default() };
        let mut log = FsLog::open(dir.path(), "n", options()).unwrap();
        log.append_batch(&[(Term(1), None)]).unwrap();
        log.apply(&Write::Entries(vec![entry.clone()])).unwrap();
        log.apply(&Write::Configuration(entry.clone())).unwrap();
        log.trim(Some(Seq(0))).unwrap(); // The log no longer holds it.
        drop(log);
        let log = FsLog::open(dir.path(), "n", options()).unwrap();
        let recovered = log.recovered(8).unwrap();
        assert_eq!((recovered.configs.len(), recovered.committed_config), (0, Some(entry.clone())), "{encoder:?}");
        drop(log);
        let path = dir.path().join("n.config");
        let mut bytes = fs::read(&path).unwrap();
        if !matches!(encoder, Encoder::Plain) {
            bytes[30] ^= 1;
            fs::write(&path, &bytes).unwrap();
            let error = FsLog::open(dir.path(), "n", options()).err().expect("damage is found");
            assert!(error.to_string().contains("saved committed configuration"), "{error}");
        }
    }
}
