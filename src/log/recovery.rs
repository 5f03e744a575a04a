//! Crash recovery as a pure function: from the bytes of a log's segments to what it holds, with
//! every decision taken from one labelled table (after TigerBeetle's journal recovery cases).
//! [`Scanner`] takes one segment at a time, so opening a log holds one segment in memory.
//!
//! The writer's discipline makes the table sound: entries are appended in batches, each written
//! with one write and made durable with one fdatasync (see `format`); a new segment is created
//! only after the previous one is durable and complete; the directory is synced after creating
//! or deleting a segment; a trim cuts the file before it writes anything new. So a crash can
//! only damage the last batch of the last segment, and in any way: cut short, zero-filled, or
//! with holes where some of its pages never reached the disk while later ones did. A batch's
//! size, end mark and checksum cover all of it, so such a batch is never taken for whole, and a
//! valid batch after a damaged one tells damage to a durable batch (corruption) from a torn
//! last one (repairable). Corruption may hit a committed entry: recovery refuses to drop it
//! silently. A recycled segment file (see `spares.rs`) holds an earlier life's batches past
//! its last one; they were sealed under another salt, so they fail their checksums like any
//! torn bytes, and never count as a valid batch after damage.
//!
//! The decisions are data: [`TABLE`] (in `cases.rs`) gives, for what the bytes at a position
//! show ([`Shows`]) in the last segment or another, the case's name ([`Case`]) and what
//! recovery does ([`Decision`]): keep a valid batch; delete a last segment whose header was
//! never completed; truncate a torn tail of the last segment (a batch cut short, zeros, a bad
//! batch with no valid batch after it); refuse a wrong key, encoder or format version; and
//! report anything else as corruption (a bad header, damage before a later batch or in a sealed
//! segment, a wrong seq, a broken chain, a lower term).
//!
//! Corruption is an error naming the segment, the byte offset and the seq of the damaged
//! batch's first entry. Nothing is truncated unless the caller asks to truncate from a seq at
//! or before it (`repair_from`); then the log keeps the entries before that seq (a batch holding
//! that seq is kept whole when it is intact: the caller trims it, durably, as any trim) and the
//! node is
//! repaired from its peers.
//!
//! The plain encoder has no checksums: it recovers from a write cut short (`TornBatch`,
//! `ZeroTail`, a missing end mark), and in its last segment takes any bad batch, wrong seq or
//! decreasing term for a torn tail. It cannot see a flipped bit, nor a page lost inside the
//! last batch that left its size and end mark readable (documented, as in the JavaScript
//! library: use the xxhash encoder).

pub use super::cases::{decide, Case, Decision, Row, Shows, TABLE};
use super::format::{decode_batch, decode_header, BatchError, Encoder, HeaderError, HEADER_BYTES};
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
    /// The byte offset of each kept entry's batch (entry `first_seq + i` in the batch at
    /// `offsets[i]`).
    pub offsets: Vec<u32>,
    /// The bytes to keep: the file is truncated to this length if it is longer.
    pub valid_len: u64,
    /// How the segment ends: `Accept` when intact, else the tail case that was repaired.
    pub ending: Case,
    /// Whether the segment is to be deleted (a torn header, or everything past `repair_from`).
    pub delete: bool,
    /// The salt its header gives (0 if the header does not read).
    pub salt: u32,
}

/// What the log holds after recovery.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Every segment, in seq order.
    pub segments: Vec<SegmentScan>,
    /// The last entry's (seq, term).
    pub last: Option<(u64, u64)>,
    /// The last batch's checksum (the hash chain's head; 0 with the plain encoder).
    pub last_checksum: u64,
    /// The first (seq, term) of each run of entries with the same term.
    pub term_starts: Vec<(u64, u64)>,
    /// The seqs of the configuration entries, ascending.
    pub configs: Vec<u64>,
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
            Case::OldFormat => {
                return write!(
                    f,
                    "segment {} is in {}, which this version does not read (it writes version {}): nothing is \
                     damaged; convert the log by reading its entries with the release that wrote it (FsLog::iter) \
                     and appending them to a new log with this one, or let the node rejoin with an empty log",
                    self.segment,
                    self.detail,
                    super::format::FORMAT_VERSION
                )
            }
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
    batch_bytes_max: usize,
    repair_from: Option<u64>,
) -> Result<Scan, Corruption> {
    let mut scanner = Scanner::new(encoder, batch_bytes_max, repair_from);
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
    batch_bytes_max: usize,
    repair_from: Option<u64>,
    /// The seq the next batch must start at (from the first segment's name).
    next: Option<u64>,
    /// A repair cut the log: later segments are deleted.
    stopped: bool,
    /// What is kept so far: every complete batch.
    kept: Scan,
}

impl<'e> Scanner<'e> {
    /// A scanner for a log written with `encoder`; batches larger than `batch_bytes_max` are
    /// treated as damaged. With `repair_from`, entries from that seq on are dropped, so
    /// corruption at or after it is no longer an error.
    pub fn new(encoder: &'e Encoder, batch_bytes_max: usize, repair_from: Option<u64>) -> Scanner<'e> {
        Scanner { encoder, batch_bytes_max, repair_from, next: None, stopped: false, kept: Scan::default() }
    }

    /// Scans the next segment (`is_last`: no segment follows it).
    pub fn segment(&mut self, segment: SegmentBytes<'_>, is_last: bool) -> Result<SegmentScan, Corruption> {
        let mut scan = SegmentScan {
            first_seq: segment.first_seq,
            offsets: Vec::new(),
            valid_len: 0,
            ending: Case::Accept,
            delete: true,
            salt: 0,
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
        let salt = match header_shows(bytes, self.encoder, segment.first_seq, next) {
            Ok(salt) => salt,
            Err((shows, detail)) => {
                let row = decide(shows, is_last, self.encoder.checksummed());
                if row.decision != Decision::DeleteSegment {
                    return Err(corrupt(row.case, 0, next, detail));
                }
                scan.ending = row.case;
                return Ok(scan);
            }
        };
        (scan.delete, scan.salt) = (false, salt);
        let (mut at, mut next) = (HEADER_BYTES, next);
        let mut chain = self.kept.last.map(|_| self.kept.last_checksum); // Unknown before the first batch.
        let mut term = self.kept.last.map_or(0, |(_, term)| term);
        while at < bytes.len() {
            if self.repair_from.is_some_and(|from| from <= next) {
                self.stopped = true; // The caller drops everything from here.
                break;
            }
            let verdict = match decode_batch(&bytes[at..], self.encoder, salt, self.batch_bytes_max) {
                Ok(batch) if batch.first != next => Err((Shows::WrongSeq, format!("found seq {}", batch.first))),
                // The highest seq an entry may have (so that the next seq always exists).
                Ok(batch) if batch.last() > crate::core::Seq::MAX.0 => {
                    Err((Shows::WrongSeq, format!("seq {} is past the highest seq an entry may have", batch.last())))
                }
                Ok(_) if u32::try_from(at).is_err() => {
                    Err((Shows::PastSegmentLimit, "a batch starts past 4 GiB, where no segment reaches".into()))
                }
                Ok(batch) if batch.term < term => Err((Shows::LowerTerm, format!("term {} after {term}", batch.term))),
                Ok(batch) if self.encoder.checksummed() && chain.is_some_and(|c| c != batch.chain) => {
                    Err((Shows::WrongChain, "chain does not match the previous batch".into()))
                }
                Ok(batch) => Ok(batch),
                Err(error) => Err((self.bad_batch(bytes, salt, at, error, is_last), error.to_string())),
            };
            match verdict {
                Ok(batch) => {
                    let offset = u32::try_from(at).unwrap_or(u32::MAX); // Checked in the verdict.
                    scan.offsets.extend(std::iter::repeat_n(offset, batch.count as usize));
                    self.keep_frames(&batch);
                    self.kept.last_checksum = batch.checksum;
                    (chain, term, next) = (Some(batch.checksum), batch.last_term, batch.last() + 1);
                    at += batch.size;
                    if self.repair_from.is_some_and(|from| from <= batch.last()) {
                        // Intact, it holds `repair_from`: kept whole (the caller trims it), and
                        // everything after it goes.
                        self.stopped = true;
                        break;
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
        self.next = Some(next);
        scan.valid_len = at as u64;
        Ok(scan)
    }

    /// Keeps the entries of a batch: term runs, configurations, the last one.
    fn keep_frames(&mut self, batch: &super::format::Batch<'_>) {
        let kept = &mut self.kept;
        if batch.has_config || batch.term != batch.last_term || kept.term_starts.last().map(|t| t.1) != Some(batch.term)
        {
            for frame in batch.frames() {
                if kept.term_starts.last().map(|t| t.1) != Some(frame.term) {
                    kept.term_starts.push((frame.seq, frame.term));
                }
                if frame.config {
                    kept.configs.push(frame.seq);
                }
            }
        }
        kept.last = Some((batch.last(), batch.last_term));
    }

    /// What a bad batch at `at` shows: whether a valid batch follows it (only looked for in the
    /// last segment: elsewhere any damage is corruption), else how it is bad.
    fn bad_batch(&self, bytes: &[u8], salt: u32, at: usize, error: BatchError, is_last: bool) -> Shows {
        if is_last && self.later_batch_after(bytes, salt, at) {
            return Shows::BadBatchBeforeLaterBatch;
        }
        match error {
            BatchError::Incomplete { .. } => Shows::CutShort,
            BatchError::Zero if bytes[at..].iter().all(|b| *b == 0) => Shows::Zeros,
            _ => Shows::BadBatch,
        }
    }

    /// Whether a valid batch starts after `at`: the damaged batch had been followed by another,
    /// so it had been made durable. (Never with the plain encoder: without checksums, any bytes
    /// may look like a batch. Batches left from a recycled file's earlier lives fail the
    /// checksum: their salt is another.)
    fn later_batch_after(&self, bytes: &[u8], salt: u32, at: usize) -> bool {
        self.encoder.checksummed()
            && (at + 1..bytes.len().saturating_sub(3)).any(|offset| {
                bytes[offset..offset + 4] != [0; 4]
                    && decode_batch(&bytes[offset..], self.encoder, salt, self.batch_bytes_max).is_ok()
            })
    }

    /// What the log holds once every segment is scanned (its `segments` left empty).
    pub fn finish(self) -> Scan {
        self.kept
    }
}

/// The segment's salt when its header is the one expected, else what the header shows.
fn header_shows(bytes: &[u8], encoder: &Encoder, name_seq: u64, next: u64) -> Result<u32, (Shows, String)> {
    Err(match decode_header(bytes, encoder) {
        Ok(header) if header.first_seq == name_seq && header.first_seq == next => return Ok(header.salt),
        Err(HeaderError::Short | HeaderError::Zero | HeaderError::Corrupt)
            if bytes[HEADER_BYTES.min(bytes.len())..].iter().all(|b| *b == 0) =>
        {
            (Shows::HeaderTorn, "header torn".to_string())
        }
        Err(HeaderError::OldFormat(version)) => (Shows::HeaderOldFormat, format!("format version {version}")),
        Err(HeaderError::WrongKey) => (Shows::HeaderWrongKey, "key check fails".into()),
        Err(HeaderError::WrongEncoder(code)) => {
            let name = match code {
                0 => "plain".to_string(),
                1 => "xxhash".to_string(),
                2 => "encrypted".to_string(),
                other => format!("unknown code {other}"),
            };
            (Shows::HeaderWrongEncoder, name)
        }
        Ok(header) => (Shows::HeaderBad, format!("header names seq {}", header.first_seq)),
        Err(error) => (Shows::HeaderBad, format!("header {error:?}")),
    })
}

#[cfg(test)]
#[path = "recovery_tests.rs"]
mod tests;
