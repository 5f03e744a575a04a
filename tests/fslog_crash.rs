//! Crash tests: a log is written by a random history, then one more batch. Every state the
//! disk could be left in by a crash during that batch's write (cut at every byte; every
//! combination of its 32-byte pages lost, as zeros or as junk, while later ones were written;
//! the new segment file missing or its header torn) must open, hold every entry acknowledged before the batch, and
//! hold the batch whole or not at all. Then the log must take appends again.

mod common;

use common::disk_states::{read_all, restore, snapshot, without_recorded_length, Files};
use common::{cases, direct, encoder};
use proptest::prelude::*;
use tinyraftplus::core::{Seq, Term};
use tinyraftplus::log::format::{Encoder, HEADER_BYTES};
use tinyraftplus::log::{FsLog, FsLogOptions};

/// The disk states a crash while writing `after` over `before` can leave, and whether each is the
/// complete write. A batch writes records where the file ends, over zeros written ahead (and maybe
/// more zeros after them) or over a recycled file's old bytes. A new segment's header is synced
/// before any batch goes into it, so junk can only land after it; with `holes` false (the plain
/// encoder, which has no checksums to find them), only writes cut short. `disk` is the log's record
/// bytes (`FsLog::disk_bytes`) before and after the batch.
fn crash_states(before: &Files, after: &Files, disk: (u64, u64), holes: bool, seed: u64) -> Vec<(Files, bool)> {
    // Starting a new segment first cuts what lies past the last one's batches (zeros written
    // ahead, a recycled file's old bytes) off it, durably (and records the lower length in the
    // state file first: here, no length is recorded at all).
    let mut before = before.clone();
    let mut states = Vec::new();
    // A new segment may recycle a spare: its new header is synced and it is renamed before any
    // batch goes into it (a crash before the rename leaves the spare with its new header).
    let gone = before.keys().find(|name| name.ends_with(".spare") && !after.contains_key(*name)).cloned();
    let fresh = after.keys().find(|name| name.ends_with(".seg") && !before.contains_key(*name)).cloned();
    if let Some((spare, segment)) = gone.zip(fresh.clone()) {
        let mut bytes = before.remove(&spare).expect("listed");
        bytes[..HEADER_BYTES].copy_from_slice(&after[&segment][..HEADER_BYTES]);
        let mut headed = before.clone();
        headed.insert(spare, bytes.clone());
        states.push((headed, false));
        before.insert(segment, bytes);
    }
    for (name, bytes) in before.iter_mut().filter(|(name, _)| name.ends_with(".state")) {
        *bytes = without_recorded_length(bytes);
        assert_eq!(Some(name), after.keys().find(|n| n.ends_with(".state")));
    }
    for (name, old) in before.iter_mut().filter(|(name, _)| !name.ends_with(".state")) {
        let new = &after[name];
        if new.len() < old.len() && old.starts_with(new) {
            *old = new.clone();
        }
    }
    let before = &before;
    // The state file changes only after the batch is synced (the complete state, added last).
    let changed: Vec<&String> =
        after.keys().filter(|name| !name.ends_with(".state") && before.get(*name) != after.get(*name)).collect();
    assert_eq!(changed.len(), 1, "one batch writes one segment");
    let name = changed[0];
    let new = &after[name];
    let with = |bytes: Option<Vec<u8>>| {
        let mut files = before.clone();
        match bytes {
            Some(bytes) => files.insert(name.clone(), bytes),
            None => files.remove(name),
        };
        files
    };
    states.push((with(before.get(name).cloned()), false));
    let old = match before.get(name) {
        Some(old) => old.clone(),
        None => {
            for cut in 0..HEADER_BYTES {
                let mut torn = new[..cut].to_vec();
                torn.resize(HEADER_BYTES, 0);
                states.push((with(Some(new[..cut].to_vec())), false));
                states.push((with(Some(torn)), false));
            }
            new[..HEADER_BYTES].to_vec()
        }
    };
    // What the file holds where the batch has not landed: zeros, or a recycled file's old bytes.
    let mut base = old.clone();
    base.resize(new.len().max(old.len()), 0);
    // Where the batch's records are: after the records of the other (sealed, exact) segments.
    let sealed: u64 =
        before.iter().filter(|(n, _)| n.ends_with(".seg") && *n != name).map(|(_, b)| b.len() as u64).sum();
    let start = match fresh.as_ref() != Some(name) {
        true => (disk.0 - sealed) as usize,
        false => HEADER_BYTES,
    };
    let end = (disk.1 - sealed) as usize;
    assert!(start < end && end <= new.len() && new[..start] == base[..start], "the batch is at {start}..{end}");
    // Whether a state holds every byte of the batch: a byte "not written" may already have had
    // the value the batch wrote there (a zero over zeros written ahead, say).
    let whole = |bytes: &[u8]| bytes.len() >= end && bytes[start..end] == new[start..end];
    for cut in (start..=end).chain([new.len()]) {
        let mut bytes = new[..cut].to_vec();
        bytes.extend_from_slice(&base[cut..old.len().max(cut)]);
        let complete = whole(&bytes);
        states.push((with(Some(bytes)), complete));
    }
    states.push((after.clone(), true));
    if !holes {
        return states;
    }
    let pages = (end - start).div_ceil(32);
    let masks: Vec<u64> = if pages <= 9 {
        (0..1u64 << pages).collect()
    } else {
        let mut x = seed | 1;
        (0..400)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .collect()
    };
    for (index, mask) in masks.into_iter().enumerate() {
        let mut bytes = new.clone();
        for page in 0..pages {
            if mask >> (page % 64) & 1 == 0 {
                let range = start + page * 32..(start + (page + 1) * 32).min(end);
                match index % 3 {
                    0 => bytes[range].fill(0),
                    1 => bytes[range].fill(0xa5),
                    _ => bytes[range.clone()].copy_from_slice(&base[range]),
                }
            }
        }
        let complete = whole(&bytes);
        states.push((with(Some(bytes)), complete));
    }
    states
}

#[derive(Clone, Debug)]
enum Op {
    Append(u8),
    Batch(Vec<u8>),
    Trim(u8),
    RemovePrefix(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..90).prop_map(Op::Append),
        3 => prop::collection::vec(0u8..90, 1..6).prop_map(Op::Batch),
        1 => (0u8..5).prop_map(Op::Trim),
        1 => any::<u8>().prop_map(Op::RemovePrefix),
    ]
}

fn payload(seq: u64, len: u8) -> Vec<u8> {
    (0..len).map(|i| (seq as u8) ^ i).collect()
}

/// `direct_writes_from` 0 writes every batch of a checksummed log past the page cache.
fn run(
    encoder: Encoder,
    direct_writes_from: usize,
    history: Vec<Op>,
    last: Vec<u8>,
    seed: u64,
) -> Result<(), TestCaseError> {
    let holes = encoder.checksummed();
    let dir = tempfile::tempdir().unwrap();
    let options = FsLogOptions { encoder, segment_bytes: 500, direct_writes_from, ..FsLogOptions::default() };
    let mut log = FsLog::open(dir.path(), "crash", options.clone()).unwrap();
    for op in history {
        let next = log.seq().map_or(log.first().0, |s| s.0 + 1);
        match op {
            Op::Append(len) => drop(log.append(Term(1), Some(&payload(next, len))).unwrap()),
            Op::Batch(lens) => {
                let payloads: Vec<Vec<u8>> =
                    lens.iter().enumerate().map(|(i, len)| payload(next + i as u64, *len)).collect();
                let batch: Vec<(Term, Option<&[u8]>)> = payloads.iter().map(|p| (Term(1), Some(&p[..]))).collect();
                log.append_batch(&batch).unwrap();
            }
            Op::Trim(back) => {
                let end = next.saturating_sub(u64::from(back)).max(log.first().0);
                log.trim(end.checked_sub(1).map(Seq)).unwrap();
            }
            Op::RemovePrefix(at) => log.remove_prefix(Seq(u64::from(at) % (next + 1))).unwrap(),
        }
    }
    let acknowledged = read_all(&log);
    let before = snapshot(dir.path());
    let disk_before = log.disk_bytes();
    let next = log.seq().map_or(log.first().0, |s| s.0 + 1);
    let payloads: Vec<Vec<u8>> = last.iter().enumerate().map(|(i, len)| payload(next + i as u64, *len)).collect();
    let batch: Vec<(Term, Option<&[u8]>)> = payloads.iter().map(|p| (Term(2), Some(&p[..]))).collect();
    log.append_batch(&batch).unwrap();
    let complete = read_all(&log);
    let after = snapshot(dir.path());
    let disk = (disk_before, log.disk_bytes());
    drop(log);
    let scratch = tempfile::tempdir().unwrap();
    for (index, (files, whole)) in crash_states(&before, &after, disk, holes, seed).into_iter().enumerate() {
        restore(scratch.path(), &files);
        let mut log = FsLog::open(scratch.path(), "crash", options.clone())
            .unwrap_or_else(|e| panic!("state {index} (complete: {whole}) does not open: {e}"));
        let recovered = read_all(&log);
        let expected = if whole { &complete } else { &acknowledged };
        prop_assert_eq!(&recovered, expected, "state {} (complete: {})", index, whole);
        if index % 16 == 0 {
            let seq = log.append(Term(3), Some(b"after the crash")).unwrap();
            drop(log);
            let log = FsLog::open(scratch.path(), "crash", options.clone()).unwrap();
            prop_assert_eq!(log.seq(), Some(seq));
        }
    }
    Ok(())
}

/// Cases per run (about ten seconds: each case opens the log over a thousand times); `PROPTEST_CASES` overrides.
const DEFAULT_CASES: u32 = 24;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(DEFAULT_CASES)))]

    #[test]
    fn a_crash_during_a_batch_keeps_every_acknowledged_entry_and_the_batch_whole_or_not_at_all(
        which in any::<u8>(),
        history in prop::collection::vec(op(), 0..14),
        last in prop::collection::vec(0u8..90, 1..6),
        seed in any::<u64>(),
    ) {
        run(encoder(which), direct(which), history, last, seed)?;
    }
}
