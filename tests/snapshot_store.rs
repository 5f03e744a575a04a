//! Durable snapshots next to a log: streamed in and out in chunks with every encoder, a damaged
//! newest snapshot falls back to the one before, an unfinished one is never taken for one, old
//! ones go; one received from a leader resumes after a crash from its durable chunks, and is
//! installed only with the bytes its digest names.

use std::fs;
use tinyraftplus::core::codec::configuration_bytes;
use tinyraftplus::core::{Configuration, Entry, LogId, Membership, NodeId, Payload, Seq, Term};
use tinyraftplus::log::{Encoder, Key, LogError, SnapshotMeta, SnapshotReceiver, SnapshotStore};

/// The snapshot at `seq` holding `bytes`.
fn meta(seq: u64, bytes: &[u8]) -> SnapshotMeta {
    let configuration = Configuration::Single(Membership::new([NodeId(1), NodeId(2)], []).unwrap());
    let entry = Entry { term: Term(2), seq: Seq(3), payload: Payload::Config(configuration_bytes(&configuration)) };
    let digest = xxhash_rust::xxh3::xxh3_64(bytes);
    SnapshotMeta { last: LogId::new(Term(4), Seq(seq)), digest, configuration: Some(entry) }
}

fn data(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt)).collect()
}

/// Writes `bytes` as the snapshot for `meta`, in pieces of odd sizes.
fn write(store: &SnapshotStore, meta: SnapshotMeta, bytes: &[u8]) -> SnapshotMeta {
    let mut writer = store.writer(meta).unwrap();
    for piece in bytes.chunks(777) {
        writer.write(piece).unwrap();
    }
    writer.finish().unwrap()
}

fn read_all(store: &SnapshotStore, seq: u64) -> Vec<u8> {
    let mut reader = store.reader(Seq(seq)).unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = reader.next_chunk().unwrap() {
        assert!(chunk.len() <= store.chunk_bytes);
        out.extend_from_slice(&chunk);
    }
    out
}

fn encoders() -> [Encoder; 3] {
    [Encoder::Plain, Encoder::XxHash, Encoder::Encrypted(Key::new([9; 32]))]
}

#[test]
fn snapshots_stream_in_and_out_in_chunks_with_every_encoder() {
    for encoder in encoders() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SnapshotStore::new(dir.path(), "log", encoder.clone());
        store.chunk_bytes = 1000;
        let bytes = data(3500, 1);
        assert_eq!(write(&store, meta(10, &[]), &bytes), meta(10, &bytes), "the digest is the bytes'");
        let scan = store.open().unwrap();
        assert_eq!((scan.latest, scan.damaged.len()), (Some(meta(10, &bytes)), 0), "{encoder:?}");
        assert_eq!(read_all(&store, 10), bytes);
        // An empty snapshot, without a configuration, is a snapshot too.
        let digest = xxhash_rust::xxh3::xxh3_64(&[]);
        let empty = SnapshotMeta { last: LogId::new(Term(5), Seq(11)), digest, configuration: None };
        write(&store, empty.clone(), &[]);
        assert_eq!(store.open().unwrap().latest, Some(empty));
        assert_eq!(read_all(&store, 11), Vec::<u8>::new());
        if let Encoder::Encrypted(_) = encoder {
            let raw = fs::read(dir.path().join(format!("log.{:020}.snap", 10))).unwrap();
            assert!(!raw.windows(64).any(|w| w == &bytes[..64]), "the bytes are not stored in the clear");
        }
    }
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_one_before_and_old_ones_go() {
    for encoder in &encoders()[1..] {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SnapshotStore::new(dir.path(), "log", encoder.clone());
        store.chunk_bytes = 1000;
        for (seq, salt) in [(10, 1), (20, 2), (30, 3)] {
            write(&store, meta(seq, &[]), &data(2500, salt));
        }
        let (twenty, thirty) = (meta(20, &data(2500, 2)), meta(30, &data(2500, 3)));
        // The one before the newest stays as the fallback; older ones go.
        let snaps = |dir: &std::path::Path| {
            let mut names: Vec<String> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".snap"))
                .collect();
            names.sort();
            names
        };
        assert_eq!(snaps(dir.path()), [format!("log.{:020}.snap", 20), format!("log.{:020}.snap", 30)]);
        let path = dir.path().join(format!("log.{:020}.snap", 30));
        let mut bytes = fs::read(&path).unwrap();
        bytes[1500] ^= 0x20;
        fs::write(&path, &bytes).unwrap();
        let scan = store.open().unwrap();
        assert_eq!(scan.latest, Some(twenty.clone()), "{encoder:?}");
        assert_eq!(scan.damaged.len(), 1);
        assert!(matches!(&scan.damaged[0], LogError::Damaged { path: p, .. } if *p == path), "{:?}", scan.damaged);
        assert_eq!(read_all(&store, 20), data(2500, 2));
        // A snapshot cut short (a torn copy), or with bytes after its end, is found too.
        bytes[1500] ^= 0x20;
        fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        assert_eq!(store.open().unwrap().latest, Some(twenty.clone()));
        bytes.extend_from_slice(b"more");
        fs::write(&path, &bytes).unwrap();
        assert_eq!(store.open().unwrap().latest, Some(twenty));
        bytes.truncate(bytes.len() - 4);
        fs::write(&path, &bytes).unwrap();
        assert_eq!(store.open().unwrap().latest, Some(thirty), "intact again");
    }
}

#[test]
fn an_unfinished_snapshot_is_never_taken_for_one_and_a_wrong_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(dir.path(), "log", Encoder::Encrypted(Key::new([1; 32])));
    write(&store, meta(10, &[]), &data(5000, 1));
    let mut writer = store.writer(meta(20, &[])).unwrap();
    writer.write(&data(5000, 2)).unwrap();
    drop(writer); // A crash before finish.
    assert_eq!(store.open().unwrap().latest, Some(meta(10, &data(5000, 1))));
    let other = SnapshotStore::new(dir.path(), "log", Encoder::Encrypted(Key::new([2; 32])));
    let scan = other.open().unwrap();
    assert_eq!(scan.latest, None);
    assert!(matches!(scan.damaged[..], [LogError::WrongKey { .. }]), "{:?}", scan.damaged);
}

#[test]
fn a_received_snapshot_resumes_from_its_durable_chunks_after_a_crash_and_installs_only_its_own_bytes() {
    for encoder in encoders() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SnapshotStore::new(dir.path(), "log", encoder.clone());
        store.chunk_bytes = 1000;
        let bytes = data(4500, 7);
        let wanted = meta(40, &bytes);
        let (mut receiver, partial) = SnapshotReceiver::open(&store).unwrap();
        assert_eq!(partial, None);
        receiver.chunk(&wanted, 0, &bytes[..1500]).unwrap();
        receiver.chunk(&wanted, 1500, &bytes[1500..2000]).unwrap();
        assert!(receiver.chunk(&wanted, 2500, &bytes[2500..3000]).is_err(), "a gap is refused");
        drop(receiver); // A crash, tearing the chunk being written: a record cut short follows.
        let part = dir.path().join(format!("log.{:020}.snap-part", 40));
        let mut torn = fs::read(&part).unwrap();
        torn.extend_from_slice(&[0x40, 0x01, 0, 0, 1, 2, 3]);
        fs::write(&part, &torn).unwrap();
        let (mut receiver, partial) = SnapshotReceiver::open(&store).unwrap();
        assert_eq!(partial, Some((wanted.clone(), 2000)), "{encoder:?}: the durable chunks, not the torn one");
        receiver.chunk(&wanted, 2000, &bytes[2000..]).unwrap();
        receiver.install(&wanted).unwrap();
        assert_eq!(store.open().unwrap().latest, Some(wanted.clone()));
        assert_eq!(read_all(&store, 40), bytes);
        assert!(!part.exists(), "the partial file became the snapshot");
        // Bytes that are not the snapshot's (a chunk skipped) are refused at install.
        let other = meta(50, &data(100, 1));
        let (mut receiver, _) = SnapshotReceiver::open(&store).unwrap();
        receiver.chunk(&other, 0, &data(100, 2)).unwrap();
        assert!(matches!(receiver.install(&other), Err(LogError::Damaged { .. })));
        assert_eq!(store.open().unwrap().latest, Some(wanted));
    }
}

#[test]
fn installing_a_snapshot_that_newer_ones_replaced_changes_nothing() {
    // A node that restarts installs its own latest snapshot (its log restarts after it). On a
    // slow disk that write may be carried out only after newer snapshots were taken and this
    // one deleted: the install must not fail the node (the simulator found it, seed 279).
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(dir.path(), "log", Encoder::XxHash);
    let own = write(&store, meta(25, &data(100, 1)), &data(100, 1));
    let (mut receiver, partial) = SnapshotReceiver::open(&store).unwrap();
    assert_eq!(partial, None);
    write(&store, meta(44, &data(100, 2)), &data(100, 2));
    let newest = write(&store, meta(54, &data(100, 3)), &data(100, 3));
    assert!(!dir.path().join(format!("log.{:020}.snap", 25)).exists(), "replaced, and deleted");
    receiver.install(&own).unwrap();
    assert_eq!(store.open().unwrap().latest, Some(newest));
    // A snapshot neither held, nor replaced, nor being received is still refused.
    assert!(matches!(receiver.install(&meta(60, &data(10, 4))), Err(LogError::Invalid(_))));
}
