//! Crash recovery as a pure function: from the bytes of a log's segments to what it holds, with
//! every decision taken from one labelled table (after TigerBeetle's journal recovery cases).
//! [`Scanner`] takes one segment at a time, so opening a log holds one segment in memory.
//!
//! The writer's discipline makes the table sound: records are appended in batches, each made
//! durable with one fdatasync, its last record marked (see `format`); a new segment is created
//! only after the previous one is durable and complete; the directory is synced after creating
//! or deleting a segment. So a crash can only damage the last batch of the last segment, and
//! in any way: cut short, zero-filled, or with holes where some of its pages never reached the
//! disk while later ones did. Every record of that batch carries the seq of the batch's first
//! record, which tells a hole in the unfinished batch (repairable) from damage to a durable
//! batch followed by a later one (corruption). Corruption may hit a committed entry: recovery
//! refuses to drop it silently.
//!
//! | case | where | what the bytes show | decision |
//! |---|---|---|---|
//! | `Accept` | any | a complete record, checksum right, next seq, chain right | keep it |
//! | `TornHeader` | last segment | header short, zero or corrupt, nothing but zeros after | delete the segment |
//! | `TornRecord` | last segment | a record cut short by the end of the file | truncate† |
//! | `ZeroTail` | last segment | only zero bytes remain | truncate† |
//! | `DamagedTail` | last segment | a bad record, and no valid record of a later batch after it | truncate† |
//! | `TornBatch` | last segment | valid records to the end, the last one not marked as its batch's last | truncate† |
//! | `BadHeader` | any other | header short, zero, corrupt or naming another first seq | corruption |
//! | `WrongKey` | any | the header's key check fails | error (not corruption) |
//! | `DamagedMiddle` | any | a bad record followed by a valid record of a later batch, or in a sealed segment | corruption |
//! | `UnfinishedBatch` | any other | a sealed segment ends inside a batch | corruption |
//! | `Discontinuity` | any | a valid record whose seq is not the next one | corruption |
//! | `BrokenChain` | any | a valid record whose chain is not the previous checksum | corruption |
//! | `TermDecreases` | any | a valid record whose term is below its predecessor's | corruption |
//!
//! † at the end of the last complete batch: the unfinished batch's valid records go too, so a
//! batch (a transaction) is recovered whole or not at all.
//!
//! Corruption is an error naming the segment, the byte offset and the seq. Nothing is truncated
//! unless the caller asks to truncate from a seq at or before it (`repair_from`); then the log
//! keeps the entries before that seq (the last one becomes the end of a batch) and the node is
//! repaired from its peers.
//!
//! The plain encoder has no checksums: it recovers from a write cut short (`TornRecord`,
//! `ZeroTail`, `TornBatch`), and in its last segment takes any bad record, wrong seq or
//! decreasing term for a torn tail. It cannot see a flipped bit, nor a page lost inside the
//! last batch that left a record readable (documented, as in the JavaScript library: use the
//! xxhash encoder).

use super::format::{decode_header, decode_record, Encoder, HeaderError, Record, RecordError, HEADER_BYTES};
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
    /// The last segment's header was never completed, and no record follows: the segment is
    /// deleted.
    TornHeader,
    /// The last record was cut short: truncated.
    TornRecord,
    /// Zero-filled space at the end: truncated.
    ZeroTail,
    /// A bad record with nothing of a later batch after it, at the end: truncated.
    DamagedTail,
    /// The last batch never got its end mark: truncated.
    TornBatch,
    /// A segment header is damaged: corruption.
    BadHeader,
    /// A segment header's key check fails: the log was written with another key.
    WrongKey,
    /// A segment header names another encoder than the one given: the log was opened with the
    /// wrong settings (nothing is damaged).
    WrongEncoder,
    /// A bad record before a later batch or in a sealed segment: corruption.
    DamagedMiddle,
    /// A sealed segment ends inside a batch: corruption.
    UnfinishedBatch,
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
    /// The byte offset of each kept record (entry `first_seq + i` at `offsets[i]`).
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
    /// Whether the last kept record must be marked as the end of its batch (after a repair cut
    /// the log inside a batch).
    pub needs_seal: bool,
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
        match self.case {
            Case::WrongKey => return write!(f, "segment {} was written with another encryption key", self.segment),
            Case::WrongEncoder => {
                return write!(
                    f,
                    "segment {} was written with another encoder ({}): nothing is damaged; open the log with the \
                     encoder it was written with",
                    self.segment, self.detail
                )
            }
            _ => {}
        }
        write!(
            f,
            "log corrupt ({:?}) in segment {} at byte {} (seq {}): {}; open with repair from seq {} to drop it and \
             everything after, then let the node catch up from its peers",
            self.case, self.segment, self.offset, self.seq, self.detail, self.seq
        )
    }
}

impl std::error::Error for Corruption {}

/// Recovers a whole log at once from its segments (in seq order): [`Scanner`] over each.
pub fn scan(
    segments: &[SegmentBytes<'_>],
    encoder: &Encoder,
    record_bytes_max: usize,
    repair_from: Option<u64>,
) -> Result<Scan, Corruption> {
    let mut scanner = Scanner::new(encoder, record_bytes_max, repair_from);
    let mut scans = Vec::with_capacity(segments.len());
    for (index, segment) in segments.iter().enumerate() {
        scans.push(scanner.segment(*segment, index + 1 == segments.len())?);
    }
    let mut result = scanner.finish();
    result.segments = scans;
    Ok(result)
}

/// Recovery one segment at a time, in seq order (see the module docs for the decisions).
pub struct Scanner<'e> {
    encoder: &'e Encoder,
    record_bytes_max: usize,
    repair_from: Option<u64>,
    /// The seq the next record must have (from the first segment's name).
    next: Option<u64>,
    /// A repair cut the log: later segments are deleted.
    stopped: bool,
    /// What is kept so far: everything through the last complete batch.
    kept: Scan,
}

/// A record of the batch being read, kept only once the batch's end is found.
struct Pending {
    seq: u64,
    term: u64,
    checksum: u64,
}

impl<'e> Scanner<'e> {
    /// A scanner for a log written with `encoder`; records larger than `record_bytes_max` are
    /// treated as damaged. With `repair_from`, entries from that seq on are dropped, so
    /// corruption at or after it is no longer an error.
    pub fn new(encoder: &'e Encoder, record_bytes_max: usize, repair_from: Option<u64>) -> Scanner<'e> {
        Scanner { encoder, record_bytes_max, repair_from, next: None, stopped: false, kept: Scan::default() }
    }

    /// Scans the next segment (`is_last`: no segment follows it).
    pub fn segment(&mut self, segment: SegmentBytes<'_>, is_last: bool) -> Result<SegmentScan, Corruption> {
        let mut scan = SegmentScan {
            first_seq: segment.first_seq,
            offsets: Vec::new(),
            valid_len: 0,
            ending: Case::Accept,
            delete: true,
        };
        let next = *self.next.get_or_insert(segment.first_seq);
        if self.stopped || self.repair_from.is_some_and(|from| from <= next) {
            self.stopped = true;
            return Ok(scan);
        }
        let corrupt = |case: Case, offset: usize, seq: u64, detail: String| Corruption {
            case,
            segment: segment.first_seq,
            offset: offset as u64,
            seq,
            detail,
        };
        let bytes = segment.bytes;
        match decode_header(bytes, self.encoder) {
            Ok(first) if first == segment.first_seq && first == next => {}
            Err(HeaderError::Short | HeaderError::Zero | HeaderError::Corrupt)
                if is_last && bytes[HEADER_BYTES.min(bytes.len())..].iter().all(|b| *b == 0) =>
            {
                scan.ending = Case::TornHeader;
                return Ok(scan);
            }
            Err(HeaderError::WrongKey) => return Err(corrupt(Case::WrongKey, 0, next, "key check fails".into())),
            Err(HeaderError::WrongEncoder(code)) => {
                let name = match code {
                    0 => "plain".to_string(),
                    1 => "xxhash".to_string(),
                    2 => "encrypted".to_string(),
                    other => format!("unknown code {other}"),
                };
                return Err(corrupt(Case::WrongEncoder, 0, next, name));
            }
            Ok(first) => return Err(corrupt(Case::BadHeader, 0, next, format!("header names seq {first}"))),
            Err(error) => return Err(corrupt(Case::BadHeader, 0, next, format!("header {error:?}"))),
        }
        scan.delete = false;
        let mut pending: Vec<Pending> = Vec::new();
        let (mut at, mut sealed_at, mut next) = (HEADER_BYTES, HEADER_BYTES, next);
        let mut chain = self.kept.last.map(|_| self.kept.last_checksum); // Unknown before the first record.
        let mut term = self.kept.last.map_or(0, |(_, term)| term);
        while at < bytes.len() {
            if self.repair_from == Some(next) {
                // The caller drops everything from here: the last record kept ends a batch.
                self.kept.needs_seal = !pending.is_empty();
                self.keep(&mut pending);
                sealed_at = at;
                self.stopped = true;
                break;
            }
            let verdict = match decode_record(&bytes[at..], self.encoder, self.record_bytes_max) {
                Ok(record) if record.seq != next => Err((Case::Discontinuity, format!("found seq {}", record.seq))),
                // The highest seq an entry may have (so that the next seq always exists).
                Ok(record) if record.seq > crate::core::Seq::MAX.0 => {
                    Err((Case::Discontinuity, format!("seq {} is past the highest seq an entry may have", record.seq)))
                }
                Ok(_) if u32::try_from(at).is_err() => {
                    Err((Case::DamagedMiddle, "a record starts past 4 GiB, where no segment reaches".into()))
                }
                Ok(record) if record.term < term => {
                    Err((Case::TermDecreases, format!("term {} after {term}", record.term)))
                }
                Ok(record) if self.encoder.checksummed() && chain.is_some_and(|c| c != record.chain) => {
                    Err((Case::BrokenChain, "chain does not match the previous record".into()))
                }
                Ok(record) => Ok(record),
                Err(error) => {
                    let batch = pending.first().map_or(next, |p| p.seq);
                    Err((self.tail_case(bytes, at, error, batch, is_last), error.to_string()))
                }
            };
            match verdict {
                Ok(record) => {
                    scan.offsets.push(u32::try_from(at).unwrap_or(u32::MAX)); // Checked in the verdict.
                    pending.push(Pending { seq: record.seq, term: record.term, checksum: record.checksum });
                    (chain, term, next) = (Some(record.checksum), record.term, next + 1);
                    at += record.size;
                    if record.batch_end {
                        self.keep(&mut pending);
                        sealed_at = at;
                    }
                }
                Err((case @ (Case::TornRecord | Case::ZeroTail | Case::DamagedTail), _)) => {
                    scan.ending = case;
                    break;
                }
                Err((Case::Discontinuity | Case::TermDecreases, _)) if is_last && !self.encoder.checksummed() => {
                    // Without checksums, damage can look like a record: at the end, a torn tail.
                    scan.ending = Case::DamagedTail;
                    break;
                }
                Err((case, detail)) => return Err(corrupt(case, at, next, detail)),
            }
        }
        if let Some(first) = pending.first() {
            if !is_last {
                let offset = scan.offsets[scan.offsets.len() - pending.len()] as usize;
                let detail = "a sealed segment ends inside a batch".into();
                return Err(corrupt(Case::UnfinishedBatch, offset, first.seq, detail));
            }
            scan.offsets.truncate(scan.offsets.len() - pending.len());
            if scan.ending == Case::Accept {
                scan.ending = Case::TornBatch;
            }
        }
        self.next = Some(self.kept.last.map_or(segment.first_seq, |(seq, _)| seq + 1));
        scan.valid_len = sealed_at as u64;
        Ok(scan)
    }

    /// Keeps the records of a complete batch.
    fn keep(&mut self, pending: &mut Vec<Pending>) {
        for record in pending.drain(..) {
            if self.kept.term_starts.last().map(|t| t.1) != Some(record.term) {
                self.kept.term_starts.push((record.seq, record.term));
            }
            self.kept.last = Some((record.seq, record.term));
            self.kept.last_checksum = record.checksum;
        }
    }

    /// Decides whether a bad record at `at`, inside the batch starting at seq `batch`, is a
    /// repairable tail or corruption.
    fn tail_case(&self, bytes: &[u8], at: usize, error: RecordError, batch: u64, is_last: bool) -> Case {
        if !is_last || self.later_batch_after(bytes, at, batch) {
            return Case::DamagedMiddle;
        }
        match error {
            RecordError::Incomplete { .. } => Case::TornRecord,
            RecordError::Zero if bytes[at..].iter().all(|b| *b == 0) => Case::ZeroTail,
            _ => Case::DamagedTail,
        }
    }

    /// Whether a valid record of a batch other than `batch` starts after `at`: the batch
    /// with the damage was followed by another, so it had been made durable. (Never with the
    /// plain encoder: without checksums, any bytes may look like a record.)
    fn later_batch_after(&self, bytes: &[u8], at: usize, batch: u64) -> bool {
        self.encoder.checksummed()
            && (at + 1..bytes.len().saturating_sub(3)).any(|offset| {
                bytes[offset..offset + 4] != [0; 4]
                    && decode_record(&bytes[offset..], self.encoder, self.record_bytes_max)
                        .is_ok_and(|record: Record<'_>| record.batch_first() != batch)
            })
    }

    /// What the log holds once every segment is scanned (its `segments` left empty).
    pub fn finish(self) -> Scan {
        self.kept
    }
}

#[cfg(test)]
mod tests {
    use super::super::format::{encode_header, encode_record, seal_batch, Key, NewRecord, NONCE_BYTES};
    use super::*;

    const MAX: usize = 1 << 20;

    /// Appends a batch of entries `first..` with the given terms; returns the new chain head.
    fn batch(bytes: &mut Vec<u8>, first: u64, terms: &[u64], chain: u64, encoder: &Encoder) -> u64 {
        let mut chain = chain;
        let mut last_at = 0;
        for (i, term) in terms.iter().enumerate() {
            let seq = first + i as u64;
            let payload = format!("entry {seq}");
            last_at = bytes.len();
            let record =
                NewRecord { seq, term: *term, payload: Some(payload.as_bytes()), batch_offset: i as u32, chain };
            chain = encode_record(bytes, encoder, record, [seq as u8; NONCE_BYTES]);
        }
        let sealed = seal_batch(&mut bytes[last_at..], encoder);
        if encoder.checksummed() {
            sealed
        } else {
            chain
        }
    }

    /// A segment holding entries `first..first+terms.len()`, each its own batch.
    fn segment(first: u64, terms: &[u64], chain: &mut u64, encoder: &Encoder) -> Vec<u8> {
        let mut bytes = encode_header(encoder, first, [1; NONCE_BYTES]).to_vec();
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
    fn a_flipped_byte_in_the_last_record_is_a_damaged_tail() {
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
    fn a_swapped_or_stale_record_breaks_the_chain_or_the_sequence() {
        let mut chain = 0;
        let good = segment(0, &[1, 1, 1], &mut chain, &Encoder::XxHash);
        // A record for seq 2 written with the wrong predecessor (a stale copy from another log).
        let mut stale = encode_header(&Encoder::XxHash, 0, [0; NONCE_BYTES]).to_vec();
        let other = batch(&mut stale, 0, &[1, 1], 0, &Encoder::XxHash);
        batch(&mut stale, 2, &[1], other ^ 1, &Encoder::XxHash);
        let error = run(&[stale], None).unwrap_err();
        assert_eq!((error.seq, error.case), (2, Case::BrokenChain));
        // The same log with a record missing.
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
        assert_eq!((scan.last, scan.segments[1].ending), (Some((5, 2)), Case::TornRecord));
        let mut flipped = files;
        flipped[0][HEADER_BYTES + 30] ^= 1; // A payload byte of seq 0.
        assert_eq!(plain(&flipped).last, Some((6, 3)));
    }

    /// Segment 0 with batches 0..3 and 3..7 (the last one possibly damaged).
    fn two_batches() -> (Vec<u8>, usize) {
        let encoder = Encoder::XxHash;
        let mut bytes = encode_header(&encoder, 0, [0; NONCE_BYTES]).to_vec();
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
    fn a_sealed_segment_that_ends_inside_a_batch_is_corruption() {
        let (bytes, _) = two_batches();
        let offsets = scan_one(&bytes).unwrap().segments[0].offsets.clone();
        let unfinished = bytes[..offsets[5] as usize].to_vec(); // Batch 0..3, then 3 and 4 of the next.
        let mut chain = 0;
        let files = [unfinished, segment(5, &[3], &mut chain, &Encoder::XxHash)];
        let segments: Vec<SegmentBytes<'_>> =
            files.iter().zip([0, 5]).map(|(bytes, first_seq)| SegmentBytes { first_seq, bytes }).collect();
        let error = scan(&segments, &Encoder::XxHash, MAX, None).unwrap_err();
        assert_eq!((error.case, error.seq, error.segment), (Case::UnfinishedBatch, 3, 0));
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
}
