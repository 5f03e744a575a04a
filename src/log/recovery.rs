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
//! The decisions are data: [`TABLE`] (in `cases.rs`) gives, for what the bytes at a position
//! show ([`Shows`]) in the last segment or another, the case's name ([`Case`]) and what
//! recovery does ([`Decision`]): keep a valid record; delete a last segment whose header was
//! never completed; truncate† a torn tail of the last segment (a record cut short, zeros, a bad
//! record with no later batch after it, a batch never marked complete); refuse a wrong key or
//! encoder; and report anything else as corruption (a bad header, damage before a later batch
//! or in a sealed segment, a sealed segment ending inside a batch, a wrong seq, a broken chain,
//! a lower term).
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

pub use super::cases::{decide, Case, Decision, Row, Shows, TABLE};
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
    /// The seqs of the configuration entries, ascending.
    pub configs: Vec<u64>,
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
    config: bool,
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
        let header = match decode_header(bytes, self.encoder) {
            Ok(first) if first == segment.first_seq && first == next => None,
            Err(HeaderError::Short | HeaderError::Zero | HeaderError::Corrupt)
                if bytes[HEADER_BYTES.min(bytes.len())..].iter().all(|b| *b == 0) =>
            {
                Some((Shows::HeaderTorn, "header torn".to_string()))
            }
            Err(HeaderError::WrongKey) => Some((Shows::HeaderWrongKey, "key check fails".into())),
            Err(HeaderError::WrongEncoder(code)) => {
                let name = match code {
                    0 => "plain".to_string(),
                    1 => "xxhash".to_string(),
                    2 => "encrypted".to_string(),
                    other => format!("unknown code {other}"),
                };
                Some((Shows::HeaderWrongEncoder, name))
            }
            Ok(first) => Some((Shows::HeaderBad, format!("header names seq {first}"))),
            Err(error) => Some((Shows::HeaderBad, format!("header {error:?}"))),
        };
        if let Some((shows, detail)) = header {
            let row = decide(shows, is_last, self.encoder.checksummed());
            if row.decision != Decision::DeleteSegment {
                return Err(corrupt(row.case, 0, next, detail));
            }
            scan.ending = row.case;
            return Ok(scan);
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
                Ok(record) if record.seq != next => Err((Shows::WrongSeq, format!("found seq {}", record.seq))),
                // The highest seq an entry may have (so that the next seq always exists).
                Ok(record) if record.seq > crate::core::Seq::MAX.0 => {
                    Err((Shows::WrongSeq, format!("seq {} is past the highest seq an entry may have", record.seq)))
                }
                Ok(_) if u32::try_from(at).is_err() => {
                    Err((Shows::PastSegmentLimit, "a record starts past 4 GiB, where no segment reaches".into()))
                }
                Ok(record) if record.term < term => {
                    Err((Shows::LowerTerm, format!("term {} after {term}", record.term)))
                }
                Ok(record) if self.encoder.checksummed() && chain.is_some_and(|c| c != record.chain) => {
                    Err((Shows::WrongChain, "chain does not match the previous record".into()))
                }
                Ok(record) => Ok(record),
                Err(error) => {
                    let batch = pending.first().map_or(next, |p| p.seq);
                    Err((self.bad_record(bytes, at, error, batch, is_last), error.to_string()))
                }
            };
            match verdict {
                Ok(record) => {
                    scan.offsets.push(u32::try_from(at).unwrap_or(u32::MAX)); // Checked in the verdict.
                    pending.push(Pending {
                        seq: record.seq,
                        term: record.term,
                        checksum: record.checksum,
                        config: record.config,
                    });
                    (chain, term, next) = (Some(record.checksum), record.term, next + 1);
                    at += record.size;
                    if record.batch_end {
                        self.keep(&mut pending);
                        sealed_at = at;
                    }
                }
                Err((shows, detail)) => {
                    let row = decide(shows, is_last, self.encoder.checksummed());
                    if row.decision != Decision::Truncate {
                        return Err(corrupt(row.case, at, next, detail));
                    }
                    scan.ending = row.case;
                    break;
                }
            }
        }
        if let Some(first) = pending.first() {
            let row = decide(Shows::EndsInsideBatch, is_last, self.encoder.checksummed());
            if row.decision != Decision::Truncate {
                let offset = scan.offsets[scan.offsets.len() - pending.len()] as usize;
                let detail = "a sealed segment ends inside a batch".into();
                return Err(corrupt(row.case, offset, first.seq, detail));
            }
            scan.offsets.truncate(scan.offsets.len() - pending.len());
            if scan.ending == Case::Accept {
                scan.ending = row.case;
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
            if record.config {
                self.kept.configs.push(record.seq);
            }
            self.kept.last = Some((record.seq, record.term));
            self.kept.last_checksum = record.checksum;
        }
    }

    /// What a bad record at `at`, inside the batch starting at seq `batch`, shows: whether a
    /// later batch follows it (only looked for in the last segment: elsewhere any damage is
    /// corruption), else how it is bad.
    fn bad_record(&self, bytes: &[u8], at: usize, error: RecordError, batch: u64, is_last: bool) -> Shows {
        if is_last && self.later_batch_after(bytes, at, batch) {
            return Shows::BadRecordBeforeLaterBatch;
        }
        match error {
            RecordError::Incomplete { .. } => Shows::CutShort,
            RecordError::Zero if bytes[at..].iter().all(|b| *b == 0) => Shows::Zeros,
            _ => Shows::BadRecord,
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
#[path = "recovery_tests.rs"]
mod tests;
