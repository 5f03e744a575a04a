//! Durable snapshots next to a log: streamed in and out in chunks with every encoder, a damaged
//! newest snapshot falls back to the one before, an unfinished one is never taken for one, old
//! ones go.

use std::fs;
use tinyraftplus::core::codec::configuration_bytes;
use tinyraftplus::core::{Configuration, Entry, LogId, Membership, NodeId, Payload, Seq, Term};
use tinyraftplus::log::{Encoder, Key, LogError, SnapshotMeta, SnapshotStore};

fn meta(seq: u64) -> SnapshotMeta {
    let configuration = Configuration::Single(Membership::new([NodeId(1), NodeId(2)], []).unwrap());
    let entry = Entry { term: Term(2), seq: Seq(3), payload: Payload::Config(configuration_bytes(&configuration)) };
    SnapshotMeta { last: LogId::new(Term(4), Seq(seq)), configuration: Some(entry) }
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
        assert_eq!(write(&store, meta(10), &bytes), meta(10));
        let scan = store.open().unwrap();
        assert_eq!((scan.latest, scan.damaged.len()), (Some(meta(10)), 0), "{encoder:?}");
        assert_eq!(read_all(&store, 10), bytes);
        // An empty snapshot, without a configuration, is a snapshot too.
        let empty = SnapshotMeta { last: LogId::new(Term(5), Seq(11)), configuration: None };
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
            write(&store, meta(seq), &data(2500, salt));
        }
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
        assert_eq!(scan.latest, Some(meta(20)), "{encoder:?}");
        assert_eq!(scan.damaged.len(), 1);
        assert!(matches!(&scan.damaged[0], LogError::Damaged { path: p, .. } if *p == path), "{:?}", scan.damaged);
        assert_eq!(read_all(&store, 20), data(2500, 2));
        // A snapshot cut short (a torn copy), or with bytes after its end, is found too.
        bytes[1500] ^= 0x20;
        fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        assert_eq!(store.open().unwrap().latest, Some(meta(20)));
        bytes.extend_from_slice(b"more");
        fs::write(&path, &bytes).unwrap();
        assert_eq!(store.open().unwrap().latest, Some(meta(20)));
        bytes.truncate(bytes.len() - 4);
        fs::write(&path, &bytes).unwrap();
        assert_eq!(store.open().unwrap().latest, Some(meta(30)), "intact again");
    }
}

#[test]
fn an_unfinished_snapshot_is_never_taken_for_one_and_a_wrong_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(dir.path(), "log", Encoder::Encrypted(Key::new([1; 32])));
    write(&store, meta(10), &data(5000, 1));
    let mut writer = store.writer(meta(20)).unwrap();
    writer.write(&data(5000, 2)).unwrap();
    drop(writer); // A crash before finish.
    assert_eq!(store.open().unwrap().latest, Some(meta(10)));
    let other = SnapshotStore::new(dir.path(), "log", Encoder::Encrypted(Key::new([2; 32])));
    let scan = other.open().unwrap();
    assert_eq!(scan.latest, None);
    assert!(matches!(scan.damaged[..], [LogError::WrongKey { .. }]), "{:?}", scan.damaged);
}
