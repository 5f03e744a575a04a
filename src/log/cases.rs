//! Recovery's decision table, as data: what the bytes at a position show ([`Shows`]), where
//! (the last segment or another; with checksums or without), and what recovery names it
//! ([`Case`]) and does ([`Decision`]). `recovery.rs` establishes the facts; [`decide`] reads
//! the answer from [`TABLE`]; a test walks every row with bytes that show it.

/// The labels of the decision table (see `recovery.rs` for the reasoning).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Case {
    /// A complete, valid batch: kept.
    Accept,
    /// The last segment's header was never completed, and no batch follows: the segment is
    /// deleted.
    TornHeader,
    /// The last batch was cut short: truncated.
    TornBatch,
    /// Zero-filled space at the end: truncated.
    ZeroTail,
    /// A bad batch with no valid batch after it, at the end: truncated.
    DamagedTail,
    /// A segment header is damaged: corruption.
    BadHeader,
    /// A segment header names an older format version: the log must be converted (nothing is
    /// damaged).
    OldFormat,
    /// A segment header's key check fails: the log was written with another key.
    WrongKey,
    /// A segment header names another encoder than the one given: the log was opened with the
    /// wrong settings (nothing is damaged).
    WrongEncoder,
    /// A bad batch before a later batch or in a sealed segment: corruption.
    DamagedMiddle,
    /// A batch's first seq is not the next one: corruption.
    Discontinuity,
    /// A batch's chain does not match its predecessor: corruption.
    BrokenChain,
    /// A batch's first term is below its predecessor's last: corruption.
    TermDecreases,
}

/// What the bytes at one position of a segment show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shows {
    /// A complete batch: checksum right, the next seq, the chain right, the term not lower.
    Valid,
    /// The header is short, zero or corrupt, and only zero bytes follow it.
    HeaderTorn,
    /// The header is short, zero or corrupt with bytes after it, or names another first seq.
    HeaderBad,
    /// The header names an older format version.
    HeaderOldFormat,
    /// The header's key check fails.
    HeaderWrongKey,
    /// The header names another encoder.
    HeaderWrongEncoder,
    /// A batch cut short by the end of the file.
    CutShort,
    /// Only zero bytes remain.
    Zeros,
    /// A bad batch (size, end mark, checksum or frames), with no valid batch after it.
    BadBatch,
    /// A bad batch followed by a valid batch: it had been durable.
    BadBatchBeforeLaterBatch,
    /// A batch starting past 4 GiB, where no segment reaches.
    PastSegmentLimit,
    /// A valid batch whose first seq is not the next one (or whose last is past `Seq::MAX`).
    WrongSeq,
    /// A valid batch whose chain is not the previous batch's checksum.
    WrongChain,
    /// A valid batch whose first term is below its predecessor's last.
    LowerTerm,
}

/// What recovery does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Keep the batch.
    Keep,
    /// Delete the segment (nothing in it was ever durable).
    DeleteSegment,
    /// Cut the segment at the end of its last complete batch (a crash's torn tail).
    Truncate,
    /// Stop with an error naming the segment, offset and seq (only `repair_from` goes past it).
    Corruption,
    /// Stop with an error that is not damage: the log was opened with other settings.
    Refuse,
}

/// One row: in which segments and with which encoders it applies (`None`: any), what the bytes
/// show, and the outcome.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// What the bytes show.
    pub shows: Shows,
    /// `Some(true)`: only in the last segment; `Some(false)`: only in another.
    pub last: Option<bool>,
    /// `Some(true)`: only with a checksummed encoder; `Some(false)`: only with the plain one.
    pub checksummed: Option<bool>,
    /// The case's name.
    pub case: Case,
    /// What recovery does.
    pub decision: Decision,
}

const fn row(shows: Shows, last: Option<bool>, checksummed: Option<bool>, case: Case, decision: Decision) -> Row {
    Row { shows, last, checksummed, case, decision }
}

const LAST: Option<bool> = Some(true);
const OTHER: Option<bool> = Some(false);
const ANY: Option<bool> = None;
const PLAIN: Option<bool> = Some(false);

/// The table: the first row that matches decides. A crash can damage only the last batch of
/// the last segment, so only there is damage a torn tail; the plain encoder, which cannot tell
/// damage from a batch, takes a wrong seq or a lower term at the end for a torn tail too.
/// (The scanner keeps a valid batch without looking it up: the first row is there for
/// completeness, and every batch of a log passes that way.)
pub static TABLE: [Row; 20] = [
    row(Shows::Valid, ANY, ANY, Case::Accept, Decision::Keep),
    row(Shows::HeaderTorn, LAST, ANY, Case::TornHeader, Decision::DeleteSegment),
    row(Shows::HeaderTorn, OTHER, ANY, Case::BadHeader, Decision::Corruption),
    row(Shows::HeaderBad, ANY, ANY, Case::BadHeader, Decision::Corruption),
    row(Shows::HeaderOldFormat, ANY, ANY, Case::OldFormat, Decision::Refuse),
    row(Shows::HeaderWrongKey, ANY, ANY, Case::WrongKey, Decision::Refuse),
    row(Shows::HeaderWrongEncoder, ANY, ANY, Case::WrongEncoder, Decision::Refuse),
    row(Shows::CutShort, LAST, ANY, Case::TornBatch, Decision::Truncate),
    row(Shows::Zeros, LAST, ANY, Case::ZeroTail, Decision::Truncate),
    row(Shows::BadBatch, LAST, ANY, Case::DamagedTail, Decision::Truncate),
    row(Shows::WrongSeq, LAST, PLAIN, Case::DamagedTail, Decision::Truncate),
    row(Shows::LowerTerm, LAST, PLAIN, Case::DamagedTail, Decision::Truncate),
    row(Shows::CutShort, OTHER, ANY, Case::DamagedMiddle, Decision::Corruption),
    row(Shows::Zeros, OTHER, ANY, Case::DamagedMiddle, Decision::Corruption),
    row(Shows::BadBatch, OTHER, ANY, Case::DamagedMiddle, Decision::Corruption),
    row(Shows::BadBatchBeforeLaterBatch, ANY, ANY, Case::DamagedMiddle, Decision::Corruption),
    row(Shows::PastSegmentLimit, ANY, ANY, Case::DamagedMiddle, Decision::Corruption),
    row(Shows::WrongSeq, ANY, ANY, Case::Discontinuity, Decision::Corruption),
    row(Shows::WrongChain, ANY, ANY, Case::BrokenChain, Decision::Corruption),
    row(Shows::LowerTerm, ANY, ANY, Case::TermDecreases, Decision::Corruption),
];

/// The first row for what the bytes show, in the last segment or another, with a checksummed
/// encoder or the plain one.
pub fn decide(shows: Shows, last: bool, checksummed: bool) -> &'static Row {
    let fits = |wanted: Option<bool>, actual: bool| wanted.is_none_or(|w| w == actual);
    TABLE
        .iter()
        .find(|r| r.shows == shows && fits(r.last, last) && fits(r.checksummed, checksummed))
        .expect("the table has a row for everything the bytes can show (tested)")
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY_SHOWS: [Shows; 14] = [
        Shows::Valid,
        Shows::HeaderTorn,
        Shows::HeaderBad,
        Shows::HeaderOldFormat,
        Shows::HeaderWrongKey,
        Shows::HeaderWrongEncoder,
        Shows::CutShort,
        Shows::Zeros,
        Shows::BadBatch,
        Shows::BadBatchBeforeLaterBatch,
        Shows::PastSegmentLimit,
        Shows::WrongSeq,
        Shows::WrongChain,
        Shows::LowerTerm,
    ];

    #[test]
    fn every_fact_has_a_row_everywhere_and_every_row_is_reached() {
        let mut reached = std::collections::HashSet::new();
        for shows in EVERY_SHOWS {
            for last in [true, false] {
                for checksummed in [true, false] {
                    let row = decide(shows, last, checksummed);
                    reached.insert((row.shows, row.last, row.checksummed));
                }
            }
        }
        for row in &TABLE {
            assert!(reached.contains(&(row.shows, row.last, row.checksummed)), "row never decides: {row:?}");
        }
    }
}
