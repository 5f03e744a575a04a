//! Crash recovery as a pure function: from the bytes of a log's segments to what it holds, with
//! every decision taken from one labelled table (after TigerBeetle's journal recovery cases).
//!
//! The writer's discipline makes the table sound: records are appended and made durable with
//! one fdatasync per batch; a new segment is created only after the previous one is durable
//! and complete; the directory is synced after creating or deleting a segment. So damage that a
//! crash can cause is confined to the end of the last segment (a torn or zero-filled tail, or a
//! header never completed). Anything else is corruption, and a corrupt record may be a
//! committed entry: recovery refuses to drop it silently.
//!
//! | case | where | what the bytes show | decision |
//! |---|---|---|---|
//! | `Accept` | any | a complete record, checksum right, next seq, chain right | keep it |
//! | `TornHeader` | last segment | header short or all zero, no record after it | delete the segment |
//! | `TornRecord` | last segment | a record cut short by the end of the file, nothing valid after | truncate there |
//! | `ZeroTail` | last segment | only zero bytes remain | truncate there |
//! | `DamagedTail` | last segment | a bad record, and no valid record anywhere after it | truncate there |
//! | `BadHeader` | any other | header short, zero, corrupt or naming another first seq | corruption |
//! | `DamagedMiddle` | any | a bad record followed by a valid one, or in a sealed segment | corruption |
//! | `Discontinuity` | any | a valid record whose seq is not the next one | corruption |
//! | `BrokenChain` | any | a valid record whose chain is not the previous checksum | corruption |
//! | `TermDecreases` | any | a valid record whose term is below its predecessor's | corruption |
//!
//! Corruption is an error naming the segment, the byte offset and the seq. Nothing is truncated
//! unless the caller asks to truncate from that seq (`repair_from`); then the log keeps the
//! entries before it and the node is repaired from its peers.
//!
//! The plain encoder has no checksums: it can only recognise `TornRecord` and `ZeroTail`; a
//! flipped bit goes unnoticed, and a damaged length field in its last segment is taken for a
//! torn tail (documented, as in the JavaScript library: use the xxhash encoder).

use super::format::{decode_header, decode_record, Encoder, HeaderError, RecordError, HEADER_BYTES};
use std::fmt;

/// One segment file's bytes, with the first seq its name gives.
#[derive(Clone, Copy, Debug)]
pub struct SegmentBytes<'a> {
    /// The first seq from the file name.
    pub first_seq: u64,
    /// The whole file.
    pub bytes: &'a [u8],
}

/// The labels of the decision table (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// A complete, valid record: kept.
    Accept,
    /// The last segment's header was never completed: the segment is deleted.
    TornHeader,
    /// The last record was cut short: truncated.
    TornRecord,
    /// Zero-filled space at the end: truncated.
    ZeroTail,
    /// A bad record with nothing valid after it, at the end: truncated.
    DamagedTail,
    /// A segment header is damaged: corruption.
    BadHeader,
    /// A bad record before valid ones or in a sealed segment: corruption.
    DamagedMiddle,
    /// A record's seq is not the next one: corruption.
    Discontinuity,
    /// A record's chain does not match its predecessor: corruption.
    BrokenChain,
    /// A record's term is below its predecessor's: corruption.
    TermDecreases,
}

/// What recovery found in one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentScan {
    /// Its first seq.
    pub first_seq: u64,
    /// The byte offset of each valid record (entry `first_seq + i` at `offsets[i]`).
    pub offsets: Vec<u32>,
    /// The bytes to keep: the file is truncated to this length if it is longer.
    pub valid_len: u64,
    /// How the segment ends: `Accept` when intact, else the tail case that was repaired.
    pub ending: Case,
    /// Whether the segment is to be deleted (a torn header, or everything past `repair_from`).
    pub delete: bool,
}

/// What the log holds after recovery.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Every segment, in seq order.
    pub segments: Vec<SegmentScan>,
    /// The last entry's (seq, term).
    pub last: Option<(u64, u64)>,
    /// The last record's checksum (the hash chain's head; 0 with the plain encoder).
    pub last_checksum: u64,
    /// The first (seq, term) of each run of entries with the same term.
    pub term_starts: Vec<(u64, u64)>,
}

/// Corruption that recovery refuses to repair on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// The decision-table case.
    pub case: Case,
    /// The segment's first seq (its file name).
    pub segment: u64,
    /// The byte offset in the segment.
    pub offset: u64,
    /// The seq that was expected there.
    pub seq: u64,
    /// What was wrong, for the message.
    pub detail: String,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "log corrupt ({:?}) in segment {} at byte {} (seq {}): {}; open with repair from seq {} to drop it and \
             everything after, then let the node catch up from its peers",
            self.case, self.segment, self.offset, self.seq, self.detail, self.seq
        )
    }
}

impl std::error::Error for Corruption {}

/// Recovers a log from its segments (in seq order). Records larger than `record_bytes_max` are
/// treated as damaged. With `repair_from`, corruption at that seq (or later) truncates the log
/// before it instead of failing.
pub fn scan(
    segments: &[SegmentBytes<'_>],
    encoder: Encoder,
    record_bytes_max: usize,
    repair_from: Option<u64>,
) -> Result<Scan, Corruption> {
    let mut result = Scan::default();
    let mut expected = segments.first().map_or(0, |s| s.first_seq);
    let mut chain: Option<u64> = None; // Unknown before the first record (a prefix may be gone).
    let mut last_term = 0u64;
    let mut stopped = false;
    for (index, segment) in segments.iter().enumerate() {
        let is_last = index + 1 == segments.len();
        let mut scan = SegmentScan {
            first_seq: segment.first_seq,
            offsets: Vec::new(),
            valid_len: 0,
            ending: Case::Accept,
            delete: stopped,
        };
        if stopped {
            result.segments.push(scan);
            continue;
        }
        let corrupt = |case: Case, offset: usize, seq: u64, detail: String| Corruption {
            case,
            segment: segment.first_seq,
            offset: offset as u64,
            seq,
            detail,
        };
        match decode_header(segment.bytes, encoder) {
            Ok(first) if first == segment.first_seq && first == expected => {}
            Err(HeaderError::Short | HeaderError::Zero)
                if is_last && segment.bytes[HEADER_BYTES.min(segment.bytes.len())..].iter().all(|b| *b == 0) =>
            {
                scan.ending = Case::TornHeader;
                scan.delete = true;
                result.segments.push(scan);
                continue;
            }
            other => {
                let detail = match other {
                    Ok(first) => format!("header names seq {first}, expected {expected}"),
                    Err(error) => format!("header {error:?}"),
                };
                let error = corrupt(Case::BadHeader, 0, expected, detail);
                if repair_from.is_some_and(|from| from <= expected) {
                    scan.delete = true;
                    result.segments.push(scan);
                    stopped = true;
                    continue;
                }
                return Err(error);
            }
        }
        let bytes = segment.bytes;
        let mut at = HEADER_BYTES;
        while at < bytes.len() {
            let verdict = match decode_record(&bytes[at..], encoder, record_bytes_max) {
                Ok(record) if record.seq != expected => Err((Case::Discontinuity, format!("found seq {}", record.seq))),
                Ok(record) if record.term < last_term => {
                    Err((Case::TermDecreases, format!("term {} after {last_term}", record.term)))
                }
                Ok(record) if encoder == Encoder::XxHash && chain.is_some_and(|c| c != record.chain) => {
                    Err((Case::BrokenChain, "chain does not match the previous record".into()))
                }
                Ok(record) => Ok(record),
                Err(error) => Err((tail_case(bytes, at, error, encoder, record_bytes_max, is_last), error.to_string())),
            };
            match verdict {
                Ok(record) => {
                    scan.offsets.push(u32::try_from(at).expect("segments are under 4 GiB"));
                    if result.term_starts.last().map(|t| t.1) != Some(record.term) {
                        result.term_starts.push((record.seq, record.term));
                    }
                    result.last = Some((record.seq, record.term));
                    result.last_checksum = record.checksum;
                    chain = Some(record.checksum);
                    last_term = record.term;
                    expected += 1;
                    at += record.size;
                }
                Err((case @ (Case::TornRecord | Case::ZeroTail | Case::DamagedTail), _)) => {
                    scan.ending = case;
                    break;
                }
                Err((case, detail)) => {
                    if repair_from.is_some_and(|from| from <= expected) {
                        scan.ending = case;
                        stopped = true;
                        break;
                    }
                    return Err(corrupt(case, at, expected, detail));
                }
            }
        }
        scan.valid_len = at as u64;
        if repair_from.is_some_and(|from| from < expected) {
            // The caller asked to drop entries from `from` on: cut this segment there.
            let from = repair_from.expect("checked");
            let keep = (from.saturating_sub(segment.first_seq)) as usize;
            if keep < scan.offsets.len() {
                scan.valid_len = u64::from(scan.offsets[keep]);
                scan.offsets.truncate(keep);
                expected = from;
                stopped = true;
                result.last = None; // Recomputed below.
            }
        }
        result.segments.push(scan);
    }
    if repair_from.is_some() {
        recompute_tail(&mut result, segments, encoder, record_bytes_max);
    }
    Ok(result)
}

/// Decides whether a bad record at `at` is a repairable tail or corruption.
fn tail_case(bytes: &[u8], at: usize, error: RecordError, encoder: Encoder, max: usize, is_last: bool) -> Case {
    if !is_last {
        return Case::DamagedMiddle;
    }
    // A write cut short leaves nothing valid after it; a damaged length field in the middle
    // looks cut short too, but the records after it are still there.
    let damaged_middle = encoder == Encoder::XxHash && valid_record_after(bytes, at, encoder, max);
    match error {
        _ if damaged_middle => Case::DamagedMiddle,
        RecordError::Incomplete { .. } => Case::TornRecord,
        RecordError::Zero if bytes[at..].iter().all(|b| *b == 0) => Case::ZeroTail,
        _ => Case::DamagedTail,
    }
}

/// Whether any complete record with a valid checksum starts after `at`.
fn valid_record_after(bytes: &[u8], at: usize, encoder: Encoder, max: usize) -> bool {
    (at + 1..bytes.len()).any(|offset| decode_record(&bytes[offset..], encoder, max).is_ok())
}

/// After a repair cut, the last entry, checksum and term runs are those of the kept records.
fn recompute_tail(result: &mut Scan, segments: &[SegmentBytes<'_>], encoder: Encoder, max: usize) {
    let mut last = None;
    for (scan, segment) in result.segments.iter().zip(segments).rev() {
        if let Some(offset) = scan.offsets.last().filter(|_| !scan.delete) {
            let record = decode_record(&segment.bytes[*offset as usize..], encoder, max).expect("scanned as valid");
            last = Some((record.seq, record.term, record.checksum));
            break;
        }
    }
    result.last = last.map(|(seq, term, _)| (seq, term));
    result.last_checksum = last.map_or(0, |l| l.2);
    let end = last.map_or(0, |l| l.0 + 1);
    result.term_starts.retain(|(seq, _)| *seq < end);
}

#[cfg(test)]
mod tests {
    use super::super::format::{encode_header, encode_record};
    use super::*;

    const MAX: usize = 1 << 20;

    /// A segment holding entries `first..first+terms.len()` with the given terms.
    fn segment(first: u64, terms: &[u64], chain: &mut u64, encoder: Encoder) -> Vec<u8> {
        let mut bytes = encode_header(encoder, first).to_vec();
        for (i, term) in terms.iter().enumerate() {
            let seq = first + i as u64;
            let payload = format!("entry {seq}");
            *chain = encode_record(&mut bytes, encoder, seq, *term, Some(payload.as_bytes()), *chain);
        }
        bytes
    }

    fn log(encoder: Encoder) -> Vec<Vec<u8>> {
        let mut chain = 0;
        vec![segment(0, &[1, 1, 1], &mut chain, encoder), segment(3, &[1, 2, 2, 3], &mut chain, encoder)]
    }

    /// Scans files named (first seqs) 0 and 3, as `log()` lays them out.
    fn run(files: &[Vec<u8>], repair: Option<u64>) -> Result<Scan, Corruption> {
        let segments: Vec<SegmentBytes<'_>> =
            files.iter().zip([0, 3]).map(|(bytes, first_seq)| SegmentBytes { first_seq, bytes }).collect();
        scan(&segments, Encoder::XxHash, MAX, repair)
    }

    #[test]
    fn an_intact_log_is_accepted_whole() {
        let scan = run(&log(Encoder::XxHash), None).unwrap();
        assert_eq!(scan.last, Some((6, 3)));
        assert_eq!(scan.term_starts, vec![(0, 1), (4, 2), (6, 3)]);
        assert_eq!(scan.segments[1].offsets.len(), 4);
        assert!(scan.segments.iter().all(|s| s.ending == Case::Accept && !s.delete));
    }

    #[test]
    fn every_torn_tail_recovers_to_a_prefix() {
        let files = log(Encoder::XxHash);
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
        let mut files = log(Encoder::XxHash);
        let valid = files[1].len();
        files[1].extend_from_slice(&[0; 4096]);
        let scan = run(&files, None).unwrap();
        assert_eq!((scan.segments[1].ending, scan.segments[1].valid_len), (Case::ZeroTail, valid as u64));
        assert_eq!(scan.last, Some((6, 3)));
    }

    #[test]
    fn a_flipped_byte_in_the_last_record_is_a_damaged_tail() {
        let mut files = log(Encoder::XxHash);
        let end = files[1].len();
        files[1][end - 12] ^= 1;
        let scan = run(&files, None).unwrap();
        assert_eq!(scan.segments[1].ending, Case::DamagedTail);
        assert_eq!(scan.last, Some((5, 2)));
    }

    #[test]
    fn a_flipped_byte_anywhere_else_is_corruption_naming_segment_offset_and_seq() {
        let files = log(Encoder::XxHash);
        let last_record = {
            let scan = run(&files, None).unwrap();
            *scan.segments[1].offsets.last().unwrap() as usize
        };
        for (file, bytes) in files.iter().enumerate() {
            for byte in 0..bytes.len() {
                if file == 1 && byte >= last_record {
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
        let mut files = log(Encoder::XxHash);
        let scan = run(&files, None).unwrap();
        let offset = scan.segments[1].offsets[1] as usize; // seq 4
        files[1][offset + 10] ^= 0xff;
        let error = run(&files, None).unwrap_err();
        assert_eq!((error.case, error.seq), (Case::DamagedMiddle, 4));
        let repaired = run(&files, Some(4)).unwrap();
        assert_eq!(repaired.last, Some((3, 1)));
        assert_eq!(repaired.segments[1].valid_len, offset as u64);
        assert_eq!(repaired.term_starts, vec![(0, 1)]);
    }

    #[test]
    fn a_swapped_or_stale_record_breaks_the_chain_or_the_sequence() {
        let mut chain = 0;
        let good = segment(0, &[1, 1, 1], &mut chain, Encoder::XxHash);
        // A record for seq 2 written with the wrong predecessor (a stale copy from another log).
        let mut stale = encode_header(Encoder::XxHash, 0).to_vec();
        let mut other = 0;
        for seq in 0..2 {
            other = encode_record(&mut stale, Encoder::XxHash, seq, 1, Some(format!("entry {seq}").as_bytes()), other);
        }
        encode_record(&mut stale, Encoder::XxHash, 2, 1, Some(b"entry 2"), 12345);
        let error = run(&[stale], None).unwrap_err();
        assert_eq!(error.seq, 2);
        assert_eq!(error.case, Case::BrokenChain);
        // The same log with a record missing.
        let scan = run(std::slice::from_ref(&good), None).unwrap();
        let (a, b) = (scan.segments[0].offsets[1] as usize, scan.segments[0].offsets[2] as usize);
        let mut missing = good[..a].to_vec();
        missing.extend_from_slice(&good[b..]);
        assert_eq!(run(&[missing], None).unwrap_err().case, Case::Discontinuity);
    }

    #[test]
    fn a_torn_last_segment_header_deletes_the_segment() {
        let mut files = log(Encoder::XxHash);
        files.push(vec![0; 10]);
        let mut first = 0;
        let segments: Vec<SegmentBytes<'_>> = files
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                first = if i == 2 { 7 } else { decode_header(bytes, Encoder::XxHash).unwrap() };
                SegmentBytes { first_seq: first, bytes }
            })
            .collect();
        let scan = scan(&segments, Encoder::XxHash, MAX, None).unwrap();
        assert_eq!((scan.segments[2].ending, scan.segments[2].delete), (Case::TornHeader, true));
        assert_eq!(scan.last, Some((6, 3)));
    }

    #[test]
    fn the_plain_encoder_recovers_torn_tails_but_cannot_see_flipped_bits() {
        let files = log(Encoder::Plain);
        let segments = |files: &[Vec<u8>]| -> Vec<Vec<u8>> { files.to_vec() };
        let mut torn = segments(&files);
        let len = torn[1].len();
        torn[1].truncate(len - 3);
        let views: Vec<SegmentBytes<'_>> =
            torn.iter().zip([0, 3]).map(|(bytes, first_seq)| SegmentBytes { first_seq, bytes }).collect();
        let scan = scan(&views, Encoder::Plain, MAX, None).unwrap();
        assert_eq!((scan.last, scan.segments[1].ending), (Some((5, 2)), Case::TornRecord));
        let mut flipped = segments(&files);
        flipped[0][HEADER_BYTES + 25] ^= 1; // A payload byte of seq 0.
        let views: Vec<SegmentBytes<'_>> =
            flipped.iter().zip([0, 3]).map(|(bytes, first_seq)| SegmentBytes { first_seq, bytes }).collect();
        assert_eq!(super::scan(&views, Encoder::Plain, MAX, None).unwrap().last, Some((6, 3)));
    }
}
