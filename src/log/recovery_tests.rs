//! Recovery on crafted segment bytes: every row of the decision table, torn tails, corruption.

use super::super::format::{encode_header, BatchBuilder, Header, Key, Seal, NONCE_BYTES};
use super::*;

const MAX: usize = 1 << 20;

/// Appends a batch of entries `first..` with the given terms; returns the new chain head.
fn batch(bytes: &mut Vec<u8>, first: u64, terms: &[u64], chain: u64, encoder: &Encoder) -> u64 {
    let mut builder = BatchBuilder::default();
    builder.start(first);
    for (i, term) in terms.iter().enumerate() {
        let payload = format!("entry {}", first + i as u64);
        builder.push(*term, Some(payload.as_bytes()), false);
    }
    builder.finish(bytes, encoder, Seal { chain, salt: 0, nonce: [first as u8; NONCE_BYTES] })
}

/// A segment holding entries `first..first+terms.len()`, each its own batch.
fn segment(first: u64, terms: &[u64], chain: &mut u64, encoder: &Encoder) -> Vec<u8> {
    let mut bytes = encode_header(encoder, Header { first_seq: first, salt: 0 }, [1; NONCE_BYTES]).to_vec();
    for (i, term) in terms.iter().enumerate() {
        *chain = batch(&mut bytes, first + i as u64, &[*term], *chain, encoder);
    }
    bytes
}

fn log(encoder: &Encoder) -> Vec<Vec<u8>> {
    let mut chain = 0;
    vec![segment(0, &[1, 1, 1], &mut chain, encoder), segment(3, &[1, 2, 2, 3], &mut chain, encoder)]
}

/// Scans files named (first seqs) 0 and 3, as `log()` lays them out.
fn run(files: &[Vec<u8>], repair: Option<u64>) -> Result<Scan, Corruption> {
    let segments: Vec<SegmentBytes<'_>> =
        files.iter().zip([0, 3]).map(|(bytes, first_seq)| SegmentBytes { first_seq, bytes }).collect();
    scan(&segments, &Encoder::XxHash, MAX, repair)
}

#[test]
fn an_intact_log_is_accepted_whole() {
    let scan = run(&log(&Encoder::XxHash), None).unwrap();
    assert_eq!(scan.last, Some((6, 3)));
    assert_eq!(scan.term_starts, vec![(0, 1), (4, 2), (6, 3)]);
    assert_eq!(scan.segments[1].offsets.len(), 4);
    assert!(scan.segments.iter().all(|s| s.ending == Case::Accept && !s.delete));
}

#[test]
fn every_torn_tail_recovers_to_a_prefix() {
    let files = log(&Encoder::XxHash);
    let full = files[1].len();
    for cut in 0..full {
        let mut torn = files.clone();
        torn[1].truncate(cut);
        let scan = run(&torn, None).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let kept = scan.last.map_or(0, |l| l.0 + 1);
        let expected = if cut < HEADER_BYTES { 3 } else { 3 + scan.segments[1].offsets.len() as u64 };
        assert_eq!(kept, expected, "cut at {cut}");
        assert!(scan.segments[1].valid_len as usize <= cut.max(HEADER_BYTES));
    }
}

#[test]
fn a_zero_filled_tail_is_truncated() {
    let mut files = log(&Encoder::XxHash);
    let valid = files[1].len();
    files[1].extend_from_slice(&[0; 4096]);
    let scan = run(&files, None).unwrap();
    assert_eq!((scan.segments[1].ending, scan.segments[1].valid_len), (Case::ZeroTail, valid as u64));
    assert_eq!(scan.last, Some((6, 3)));
}

#[test]
fn a_flipped_byte_in_the_last_batch_is_a_damaged_tail() {
    let mut files = log(&Encoder::XxHash);
    let end = files[1].len();
    files[1][end - 12] ^= 1;
    let scan = run(&files, None).unwrap();
    assert_eq!(scan.segments[1].ending, Case::DamagedTail);
    assert_eq!(scan.last, Some((5, 2)));
}

#[test]
fn a_flipped_byte_anywhere_else_is_corruption_naming_segment_offset_and_seq() {
    let files = log(&Encoder::XxHash);
    let last_batch = {
        let scan = run(&files, None).unwrap();
        *scan.segments[1].offsets.last().unwrap() as usize
    };
    for (file, bytes) in files.iter().enumerate() {
        for byte in 0..bytes.len() {
            if file == 1 && byte >= last_batch {
                continue;
            }
            let mut bad = files.clone();
            bad[file][byte] ^= 0x04;
            let error = run(&bad, None).expect_err(&format!("file {file} byte {byte}"));
            assert_eq!(error.segment, [0, 3][file], "file {file} byte {byte}");
            assert!(error.offset <= byte as u64, "file {file} byte {byte}: {error}");
            assert!(error.to_string().contains("repair from seq"));
        }
    }
}

#[test]
fn repair_from_drops_the_corrupt_entry_and_everything_after() {
    let mut files = log(&Encoder::XxHash);
    let scan = run(&files, None).unwrap();
    let offset = scan.segments[1].offsets[1] as usize; // seq 4
    files[1][offset + 10] ^= 0xff;
    let error = run(&files, None).unwrap_err();
    assert_eq!((error.case, error.seq), (Case::DamagedMiddle, 4));
    assert_eq!(run(&files, Some(5)).unwrap_err().seq, 4, "repair must start at or before the damage");
    let repaired = run(&files, Some(4)).unwrap();
    assert_eq!(repaired.last, Some((3, 1)));
    assert_eq!(repaired.segments[1].valid_len, offset as u64);
    assert_eq!(repaired.term_starts, vec![(0, 1)]);
    let everything = run(&files, Some(2)).unwrap();
    assert_eq!((everything.last, everything.segments[1].delete), (Some((1, 1)), true));
}

#[test]
fn a_swapped_or_stale_batch_breaks_the_chain_or_the_sequence() {
    let mut chain = 0;
    let good = segment(0, &[1, 1, 1], &mut chain, &Encoder::XxHash);
    // A batch for seq 2 written with the wrong predecessor (a stale copy from another log).
    let mut stale = encode_header(&Encoder::XxHash, Header { first_seq: 0, salt: 0 }, [0; NONCE_BYTES]).to_vec();
    let other = batch(&mut stale, 0, &[1, 1], 0, &Encoder::XxHash);
    batch(&mut stale, 2, &[1], other ^ 1, &Encoder::XxHash);
    let error = run(&[stale], None).unwrap_err();
    assert_eq!((error.seq, error.case), (2, Case::BrokenChain));
    // The same log with a batch missing.
    let scan = run(std::slice::from_ref(&good), None).unwrap();
    let (a, b) = (scan.segments[0].offsets[1] as usize, scan.segments[0].offsets[2] as usize);
    let mut missing = good[..a].to_vec();
    missing.extend_from_slice(&good[b..]);
    assert_eq!(run(&[missing], None).unwrap_err().case, Case::Discontinuity);
}

#[test]
fn a_torn_last_segment_header_deletes_the_segment() {
    let mut files = log(&Encoder::XxHash);
    files.push(vec![0; 10]);
    let segments: Vec<SegmentBytes<'_>> =
        files.iter().zip([0, 3, 7]).map(|(bytes, first_seq)| SegmentBytes { first_seq, bytes }).collect();
    let scan = scan(&segments, &Encoder::XxHash, MAX, None).unwrap();
    assert_eq!((scan.segments[2].ending, scan.segments[2].delete), (Case::TornHeader, true));
    assert_eq!(scan.last, Some((6, 3)));
}

#[test]
fn the_plain_encoder_recovers_torn_tails_but_cannot_see_flipped_bits() {
    let files = log(&Encoder::Plain);
    let plain = |files: &[Vec<u8>]| {
        let views: Vec<SegmentBytes<'_>> =
            files.iter().zip([0, 3]).map(|(bytes, first_seq)| SegmentBytes { first_seq, bytes }).collect();
        scan(&views, &Encoder::Plain, MAX, None).unwrap()
    };
    let mut torn = files.clone();
    let len = torn[1].len();
    torn[1].truncate(len - 3);
    let scan = plain(&torn);
    assert_eq!((scan.last, scan.segments[1].ending), (Some((5, 2)), Case::TornBatch));
    let mut flipped = files;
    flipped[0][HEADER_BYTES + 35] ^= 1; // A payload byte of seq 0 (after a one-byte frame).
    assert_eq!(plain(&flipped).last, Some((6, 3)));
}

/// Segment 0 with batches 0..3 and 3..7 (the last one possibly damaged).
fn two_batches() -> (Vec<u8>, usize) {
    let encoder = Encoder::XxHash;
    let mut bytes = encode_header(&encoder, Header { first_seq: 0, salt: 0 }, [0; NONCE_BYTES]).to_vec();
    let chain = batch(&mut bytes, 0, &[1, 1, 1], 0, &encoder);
    let first_batch_end = bytes.len();
    batch(&mut bytes, 3, &[1, 2, 2, 2], chain, &encoder);
    (bytes, first_batch_end)
}

fn scan_one(bytes: &[u8]) -> Result<Scan, Corruption> {
    scan(&[SegmentBytes { first_seq: 0, bytes }], &Encoder::XxHash, MAX, None)
}

#[test]
fn an_unfinished_last_batch_is_dropped_whole_whatever_reached_the_disk() {
    let (bytes, durable) = two_batches();
    assert_eq!(scan_one(&bytes).unwrap().last, Some((6, 2)));
    // Cut anywhere in the last batch, or any 64-byte "page" of it lost while later ones
    // were written (zeroed, or left with stale bytes).
    for cut in durable..bytes.len() {
        let scan = scan_one(&bytes[..cut]).unwrap();
        assert_eq!((scan.last, scan.segments[0].valid_len), (Some((2, 1)), durable as u64), "cut {cut}");
        assert_eq!(scan.term_starts, vec![(0, 1)]);
    }
    for page in (durable..bytes.len()).step_by(64) {
        for fill in [0u8, 0xa5] {
            let mut holed = bytes.clone();
            holed[page..(page + 64).min(bytes.len())].fill(fill);
            let scan = scan_one(&holed).unwrap_or_else(|e| panic!("page at {page}: {e}"));
            assert_eq!(scan.last, Some((2, 1)), "page at {page}");
        }
    }
}

#[test]
fn a_hole_in_a_durable_batch_followed_by_a_later_batch_is_corruption() {
    let (bytes, durable) = two_batches();
    for page in (HEADER_BYTES..durable).step_by(16) {
        let mut holed = bytes.clone();
        holed[page..(page + 16).min(durable)].fill(0);
        let error = scan_one(&holed).expect_err(&format!("hole at {page}"));
        assert_eq!(error.case, Case::DamagedMiddle, "hole at {page}");
    }
}

#[test]
fn a_sealed_segment_cut_inside_a_batch_is_corruption() {
    let (bytes, durable) = two_batches();
    let unfinished = bytes[..durable + 20].to_vec(); // Batch 0..3, then part of 3..7.
    let mut chain = 0;
    let files = [unfinished, segment(7, &[3], &mut chain, &Encoder::XxHash)];
    let segments: Vec<SegmentBytes<'_>> =
        files.iter().zip([0, 7]).map(|(bytes, first_seq)| SegmentBytes { first_seq, bytes }).collect();
    let error = scan(&segments, &Encoder::XxHash, MAX, None).unwrap_err();
    assert_eq!((error.case, error.seq, error.segment), (Case::DamagedMiddle, 3, 0));
}

#[test]
fn a_repair_inside_an_intact_batch_keeps_the_batch_whole_for_the_caller_to_trim() {
    let (bytes, _) = two_batches();
    let scan = scan(&[SegmentBytes { first_seq: 0, bytes: &bytes }], &Encoder::XxHash, MAX, Some(5)).unwrap();
    assert_eq!((scan.last, scan.segments[0].valid_len), (Some((6, 2)), bytes.len() as u64));
    assert_eq!((scan.segments[0].offsets.len(), scan.term_starts.clone()), (7, vec![(0, 1), (4, 2)]));
    // Damage after the repair point goes with everything after it.
    let mut damaged = bytes.clone();
    damaged.extend_from_slice(&[0xa5; 40]);
    let scan = scan_one_repairing(&damaged, 5);
    assert_eq!((scan.last, scan.segments[0].valid_len), (Some((6, 2)), bytes.len() as u64));
}

fn scan_one_repairing(bytes: &[u8], from: u64) -> Scan {
    scan(&[SegmentBytes { first_seq: 0, bytes }], &Encoder::XxHash, MAX, Some(from)).unwrap()
}

#[test]
fn a_segment_of_the_previous_format_is_refused_with_how_to_convert() {
    let mut files = log(&Encoder::XxHash);
    files[0][7] = 2;
    let checksum = xxhash_rust::xxh3::xxh3_64(&files[0][0..64]);
    files[0][64..72].copy_from_slice(&checksum.to_le_bytes());
    let error = run(&files, None).unwrap_err();
    assert_eq!(error.case, Case::OldFormat);
    assert!(error.to_string().contains("format version 2") && error.to_string().contains("convert"), "{error}");
}

#[test]
fn a_log_encrypted_with_another_key_is_refused_by_name() {
    let written = Encoder::Encrypted(Key::new([1; 32]));
    let files = log(&written);
    let views: Vec<SegmentBytes<'_>> =
        files.iter().zip([0, 3]).map(|(bytes, first_seq)| SegmentBytes { first_seq, bytes }).collect();
    assert_eq!(scan(&views, &written, MAX, None).unwrap().last, Some((6, 3)));
    let error = scan(&views, &Encoder::Encrypted(Key::new([2; 32])), MAX, None).unwrap_err();
    assert_eq!(error.case, Case::WrongKey);
    assert!(error.to_string().contains("another encryption key"));
}

/// Scans `files` (first seqs 0, 3, 7, ...) with `encoder`: the case it ends on (the last
/// segment's ending, or the error's case).
fn case_of(files: &[Vec<u8>], encoder: &Encoder) -> Case {
    let views: Vec<SegmentBytes<'_>> =
        files.iter().zip([0, 3, 7]).map(|(bytes, first_seq)| SegmentBytes { first_seq, bytes }).collect();
    match scan(&views, encoder, MAX, None) {
        Ok(scan) => scan.segments.iter().map(|s| s.ending).find(|c| *c != Case::Accept).unwrap_or(Case::Accept),
        Err(corruption) => corruption.case,
    }
}

/// The byte offset of batch `index` (one entry each) of segment `file` in an intact
/// `log(encoder)`.
fn batch_at(encoder: &Encoder, file: usize, index: usize) -> usize {
    let files = log(encoder);
    let views: Vec<SegmentBytes<'_>> =
        files.iter().zip([0, 3]).map(|(bytes, first_seq)| SegmentBytes { first_seq, bytes }).collect();
    scan(&views, encoder, MAX, None).unwrap().segments[file].offsets[index] as usize
}

/// Bytes that show what each row of the table is about, and the case recovery names them.
/// Every row is reached (but the one for a batch past 4 GiB, which takes 4 GiB of bytes:
/// `decide` alone shows it), and its case asserted by name.
#[test]
fn every_row_of_the_decision_table_is_reached_by_bytes_that_show_it() {
    let (xx, plain) = (Encoder::XxHash, Encoder::Plain);
    let mut reached: Vec<(Shows, bool, bool, Case)> = Vec::new();
    let mut check = |shows: Shows, last: bool, written: &Encoder, read: &Encoder, files: Vec<Vec<u8>>| {
        reached.push((shows, last, written.checksummed(), case_of(&files, read)));
    };
    check(Shows::Valid, true, &xx, &xx, log(&xx));
    check(Shows::Valid, true, &plain, &plain, log(&plain));
    check(Shows::HeaderTorn, true, &xx, &xx, [log(&xx), vec![vec![0; 10]]].concat());
    check(Shows::HeaderTorn, false, &xx, &xx, [vec![vec![0; 10]], log(&xx)[1..].to_vec()].concat());
    let mut bad_header = log(&xx);
    bad_header[0][3] ^= 0x10;
    check(Shows::HeaderBad, false, &xx, &xx, bad_header);
    let keyed = log(&Encoder::Encrypted(Key::new([1; 32])));
    let mut old = log(&xx);
    old[0][7] = 2;
    let checksum = xxhash_rust::xxh3::xxh3_64(&old[0][0..64]);
    old[0][64..72].copy_from_slice(&checksum.to_le_bytes());
    check(Shows::HeaderOldFormat, false, &xx, &xx, old);
    check(Shows::HeaderWrongKey, false, &xx, &Encoder::Encrypted(Key::new([2; 32])), keyed);
    check(Shows::HeaderWrongEncoder, false, &xx, &plain, log(&xx));
    // The same damage to the last segment (a torn tail) and to the first (corruption).
    for (file, last, index) in [(1, true, 3), (0, false, 1)] {
        let edited = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut files = log(&xx);
            edit(&mut files[file]);
            files
        };
        check(Shows::CutShort, last, &xx, &xx, edited(&|bytes| bytes.truncate(bytes.len() - 3)));
        check(Shows::Zeros, last, &xx, &xx, edited(&|bytes| bytes.extend_from_slice(&[0; 100])));
        let at = batch_at(&xx, file, index);
        check(Shows::BadBatch, last, &xx, &xx, edited(&|bytes| bytes[at + 12] ^= 1));
    }
    let mut skipped = log(&plain);
    let (four, five) = (batch_at(&plain, 1, 1), batch_at(&plain, 1, 2));
    skipped[1].drain(four..five);
    check(Shows::WrongSeq, true, &plain, &plain, skipped.clone());
    let mut chain = 0;
    let lower = vec![segment(0, &[1, 1, 1], &mut chain, &plain), segment(3, &[2, 1], &mut chain, &plain)];
    check(Shows::LowerTerm, true, &plain, &plain, lower);
    let mut bad_middle = log(&xx);
    let at = batch_at(&xx, 1, 0);
    bad_middle[1][at + 12] ^= 1;
    check(Shows::BadBatchBeforeLaterBatch, true, &xx, &xx, bad_middle);
    let mut skipped = log(&xx);
    let (four, five) = (batch_at(&xx, 1, 1), batch_at(&xx, 1, 2));
    skipped[1].drain(four..five);
    check(Shows::WrongSeq, true, &xx, &xx, skipped);
    let mut stale = encode_header(&xx, Header { first_seq: 0, salt: 0 }, [0; NONCE_BYTES]).to_vec();
    let other = batch(&mut stale, 0, &[1, 1], 0, &xx);
    batch(&mut stale, 2, &[1], other ^ 1, &xx);
    check(Shows::WrongChain, true, &xx, &xx, vec![stale]);
    let mut chain = 0;
    let lower = vec![segment(0, &[1, 1, 1], &mut chain, &xx), segment(3, &[2, 1], &mut chain, &xx)];
    check(Shows::LowerTerm, true, &xx, &xx, lower);

    for row in &TABLE {
        if row.shows == Shows::PastSegmentLimit {
            assert_eq!(decide(row.shows, true, true).case, Case::DamagedMiddle);
            continue;
        }
        let fits = |wanted: Option<bool>, actual: bool| wanted.is_none_or(|w| w == actual);
        let hit = reached.iter().find(|(shows, last, checksummed, _)| {
            *shows == row.shows
                && fits(row.last, *last)
                && fits(row.checksummed, *checksummed)
                && std::ptr::eq(decide(*shows, *last, *checksummed), row)
        });
        let Some((_, _, _, case)) = hit else { panic!("no bytes reach the row {row:?}") };
        assert_eq!(*case, row.case, "bytes showing {:?} were named {case:?}", row.shows);
    }
}
