//! Crash tests for a trim inside a batch: the batch is cut off the file and its first entries
//! are written again as a batch of their own, with the trim's intent (holding that batch) durable
//! first. Every state a crash can leave on the way (the intent alone; later segments deleted
//! and the batch cut off; its replacement cut at every byte; everything done but the intent's
//! removal) must open to the trimmed log; without the intent, to the log before the trim. Then
//! the log must take appends again.

mod common;

use common::disk_states::{read_all, restore, snapshot, without_recorded_length, Files};
use common::{cases, encoder};
use proptest::prelude::*;
use tinyraftplus::core::{Seq, Term};
use tinyraftplus::log::format::{decode_batch, HEADER_BYTES};
use tinyraftplus::log::{FsLog, FsLogOptions};
use xxhash_rust::xxh3::xxh3_64;

/// Entries read back: seq and payload.
type Entries = [(u64, Vec<u8>)];

/// The segment (file name) holding `seq`, and the offset of its batch: found by walking batches.
fn batch_of(files: &Files, options: &FsLogOptions, seq: u64) -> (String, usize) {
    let mut names: Vec<&String> = files.keys().filter(|n| n.ends_with(".seg")).collect();
    names.sort();
    for name in names {
        let bytes = &files[name];
        let mut at = HEADER_BYTES;
        while let Ok(batch) = decode_batch(&bytes[at..], &options.encoder, 0, 1 << 20) {
            if (batch.first..=batch.last()).contains(&seq) {
                return (name.clone(), at);
            }
            at += batch.size;
        }
    }
    panic!("no batch holds {seq}");
}

fn run(which: u8, batches: Vec<Vec<u8>>, cut: (usize, usize)) -> Result<(), TestCaseError> {
    let options = FsLogOptions { encoder: encoder(which), segment_bytes: 300, ..FsLogOptions::default() };
    let dir = tempfile::tempdir().unwrap();
    let mut log = FsLog::open(dir.path(), "trim", options.clone()).unwrap();
    let mut firsts = Vec::new();
    for lens in &batches {
        let first = log.seq().map_or(0, |s| s.0 + 1);
        firsts.push((first, lens.len()));
        let payloads: Vec<Vec<u8>> = lens.iter().map(|len| vec![first as u8; usize::from(*len)]).collect();
        let batch: Vec<(Term, Option<&[u8]>)> = payloads.iter().map(|p| (Term(1), Some(&p[..]))).collect();
        log.append_batch(&batch).unwrap();
    }
    // A cut inside a batch of at least two entries.
    let multi: Vec<(u64, usize)> = firsts.iter().copied().filter(|(_, n)| *n > 1).collect();
    let Some(&(first, count)) = multi.get(cut.0 % multi.len().max(1)) else { return Ok(()) };
    let keep_end = first + 1 + (cut.1 % (count - 1)) as u64;
    let full = read_all(&log);
    drop(log);
    let before = snapshot(dir.path());
    let mut log = FsLog::open(dir.path(), "trim", options.clone()).unwrap();
    log.trim(Some(Seq(keep_end - 1))).unwrap();
    let trimmed = read_all(&log);
    prop_assert_eq!(&trimmed[..], &full[..(keep_end - full[0].0) as usize]);
    drop(log);
    let after = snapshot(dir.path());
    prop_assert!(!after.keys().any(|n| n.ends_with(".trim")), "the intent is gone");

    let (name, at) = batch_of(&after, &options, keep_end - 1);
    let batch = decode_batch(&after[&name][at..], &options.encoder, 0, 1 << 20).unwrap();
    prop_assert_eq!((batch.first, batch.last()), (first, keep_end - 1));
    let rewrite = after[&name][at..at + batch.size].to_vec();
    let mut intent = keep_end.to_le_bytes().to_vec();
    intent.extend_from_slice(&rewrite);
    intent.extend_from_slice(&xxh3_64(&intent).to_le_bytes());
    let with_intent = |files: &Files| {
        let mut files = files.clone();
        files.insert("trim.trim".into(), intent.clone());
        files
    };
    // Later segments deleted, the batch cut off its segment; the state file as after the trim
    // but without a recorded length (the lengths recorded between the cut and the next growth
    // are not rebuilt here).
    let mut cut_off: Files = before
        .iter()
        .filter(|(n, _)| !n.ends_with(".seg") || **n <= name)
        .map(|(n, b)| (n.clone(), b.clone()))
        .collect();
    cut_off.get_mut(&name).unwrap().truncate(at);
    let state = after.keys().find(|n| n.ends_with(".state")).unwrap().clone();
    cut_off.insert(state.clone(), without_recorded_length(&after[&state]));

    let mut states: Vec<(Files, &Entries)> = vec![(before.clone(), &full), (after.clone(), &trimmed)];
    states.push((with_intent(&before), &trimmed));
    states.push((with_intent(&after), &trimmed));
    for len in 0..=rewrite.len() {
        let mut torn = with_intent(&cut_off);
        torn.get_mut(&name).unwrap().extend_from_slice(&rewrite[..len]);
        states.push((torn, &trimmed));
    }
    let scratch = tempfile::tempdir().unwrap();
    for (index, (files, expected)) in states.iter().enumerate() {
        restore(scratch.path(), files);
        let mut log = FsLog::open(scratch.path(), "trim", options.clone())
            .unwrap_or_else(|e| panic!("state {index} does not open: {e}"));
        prop_assert_eq!(&read_all(&log)[..], *expected, "state {}", index);
        prop_assert!(!scratch.path().join("trim.trim").exists(), "state {}: the intent is done", index);
        let seq = log.append(Term(2), Some(b"after the crash")).unwrap();
        drop(log);
        let log = FsLog::open(scratch.path(), "trim", options.clone()).unwrap();
        prop_assert_eq!(log.seq(), Some(seq), "state {}", index);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(24)))]

    #[test]
    fn a_crash_during_a_trim_inside_a_batch_opens_to_the_trimmed_log_or_the_whole_one(
        which in 0u8..3,
        batches in prop::collection::vec(prop::collection::vec(0u8..60, 1..6), 1..10),
        cut in (any::<usize>(), any::<usize>()),
    ) {
        run(which, batches, cut)?;
    }
}
