//! The file log's on-disk format, byte by byte. Pure: bytes in, bytes out; the file IO lives
//! elsewhere, so the simulator and the fuzzers run exactly this code.
//!
//! # Segment files
//!
//! A log is a series of segment files, each named by the seq of its first entry
//! (`<name>.<first seq as 20 decimal digits>.seg`), bounded by `segment_bytes`. Each starts with
//! a 32-byte header, then records back to back. All integers are little-endian.
//!
//! ```text
//! header   0..8    magic "TRPLOG" 0x00 0x01 (the last byte is the format version)
//!          8       encoder: 0 plain, 1 xxhash
//!          9..16   zero
//!          16..24  first seq of the segment (u64)
//!          24..32  XXH3-64 of bytes 0..24 (whatever the encoder)
//! ```
//!
//! # Records
//!
//! ```text
//! record   0..4    len (u32): the bytes that follow this field
//!          4       kind: 1 data, 2 blank
//!          5..13   seq (u64)
//!          13..21  term (u64)
//!          21..    payload (len - 17 - trailer bytes; empty for blank)
//!          trailer, xxhash encoder only (16 bytes):
//!                  chain (u64): the checksum of the log's previous record (0 for seq 0)
//!                  checksum (u64): XXH3-64 of every byte of the record before it
//! ```
//!
//! With the xxhash encoder every byte of every record is covered by its checksum, and each
//! record carries its predecessor's checksum, so a lost, stale or misplaced record breaks the
//! chain; `(last seq, term, last checksum)` fingerprints a whole log prefix. The plain encoder
//! has no trailer: it detects a torn tail only by length, and nothing else (see `recovery`).

use std::fmt;
use xxhash_rust::xxh3::xxh3_64;

/// The segment header's size in bytes.
pub const HEADER_BYTES: usize = 32;
/// The bytes of a record before its payload.
pub const RECORD_HEAD_BYTES: usize = 21;
/// The xxhash encoder's trailer: chain and checksum.
pub const TRAILER_BYTES: usize = 16;
const MAGIC: [u8; 8] = *b"TRPLOG\x00\x01";

/// How records are protected on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoder {
    /// No checksum: fastest, detects only torn tails (a record cut short).
    Plain,
    /// An XXH3-64 checksum over every byte of every record, and a hash chain (the default).
    XxHash,
}

impl Encoder {
    fn code(self) -> u8 {
        match self {
            Encoder::Plain => 0,
            Encoder::XxHash => 1,
        }
    }

    /// The trailer's size for this encoder.
    pub fn trailer_bytes(self) -> usize {
        match self {
            Encoder::Plain => 0,
            Encoder::XxHash => TRAILER_BYTES,
        }
    }
}

/// Encodes a segment header.
pub fn encode_header(encoder: Encoder, first_seq: u64) -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[0..8].copy_from_slice(&MAGIC);
    header[8] = encoder.code();
    header[16..24].copy_from_slice(&first_seq.to_le_bytes());
    let checksum = xxh3_64(&header[0..24]);
    header[24..32].copy_from_slice(&checksum.to_le_bytes());
    header
}

/// Why a segment header is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than 32 bytes.
    Short,
    /// All 32 bytes are zero (never written).
    Zero,
    /// Wrong magic or version, or a checksum mismatch.
    Corrupt,
    /// Written with another encoder than the log is opened with.
    WrongEncoder(u8),
}

/// Decodes a segment header: the first seq it names.
pub fn decode_header(bytes: &[u8], encoder: Encoder) -> Result<u64, HeaderError> {
    let header = bytes.get(..HEADER_BYTES).ok_or(HeaderError::Short)?;
    if header.iter().all(|b| *b == 0) {
        return Err(HeaderError::Zero);
    }
    let checksum = u64::from_le_bytes(header[24..32].try_into().expect("8 bytes"));
    if header[0..8] != MAGIC || xxh3_64(&header[0..24]) != checksum || header[9..16].iter().any(|b| *b != 0) {
        return Err(HeaderError::Corrupt);
    }
    if header[8] != encoder.code() {
        return Err(HeaderError::WrongEncoder(header[8]));
    }
    Ok(u64::from_le_bytes(header[16..24].try_into().expect("8 bytes")))
}

/// What a record holds (payload borrowed from the bytes it was decoded from).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The entry's seq.
    pub seq: u64,
    /// The entry's term.
    pub term: u64,
    /// The payload, `None` for a blank entry.
    pub payload: Option<&'a [u8]>,
    /// The previous record's checksum (0 with the plain encoder).
    pub chain: u64,
    /// This record's checksum (0 with the plain encoder).
    pub checksum: u64,
    /// The record's size on disk.
    pub size: usize,
}

/// Appends one record to `out`; returns its checksum (0 with the plain encoder).
pub fn encode_record(
    out: &mut Vec<u8>,
    encoder: Encoder,
    seq: u64,
    term: u64,
    payload: Option<&[u8]>,
    chain: u64,
) -> u64 {
    let start = out.len();
    let body = RECORD_HEAD_BYTES - 4 + payload.map_or(0, <[u8]>::len) + encoder.trailer_bytes();
    let len = u32::try_from(body).expect("payloads are limited far below 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.push(if payload.is_some() { 1 } else { 2 });
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&term.to_le_bytes());
    out.extend_from_slice(payload.unwrap_or_default());
    match encoder {
        Encoder::Plain => 0,
        Encoder::XxHash => {
            out.extend_from_slice(&chain.to_le_bytes());
            let checksum = xxh3_64(&out[start..]);
            out.extend_from_slice(&checksum.to_le_bytes());
            checksum
        }
    }
}

/// Why bytes are not a complete, valid record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The bytes end before the record does (`needed` bytes in all).
    Incomplete {
        /// The record's full size, when the length field could be read.
        needed: Option<usize>,
    },
    /// The length field is zero (never-written, zero-filled space).
    Zero,
    /// The length is impossible (shorter than a record, or over `max_bytes`).
    BadLength(u32),
    /// The kind byte is neither data nor blank.
    BadKind(u8),
    /// The checksum does not match the bytes.
    BadChecksum,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Incomplete { .. } => write!(f, "record cut short"),
            RecordError::Zero => write!(f, "zero-filled space"),
            RecordError::BadLength(len) => write!(f, "impossible record length {len}"),
            RecordError::BadKind(kind) => write!(f, "unknown record kind {kind}"),
            RecordError::BadChecksum => write!(f, "checksum mismatch"),
        }
    }
}

/// Decodes the record at the start of `bytes`; a record longer than `max_bytes` is refused.
pub fn decode_record(bytes: &[u8], encoder: Encoder, max_bytes: usize) -> Result<Record<'_>, RecordError> {
    let Some(len_bytes) = bytes.get(..4) else { return Err(RecordError::Incomplete { needed: None }) };
    let len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes"));
    if len == 0 {
        return Err(RecordError::Zero);
    }
    let size = 4 + len as usize;
    let min = RECORD_HEAD_BYTES + encoder.trailer_bytes();
    if size < min || size > max_bytes {
        return Err(RecordError::BadLength(len));
    }
    let record = bytes.get(..size).ok_or(RecordError::Incomplete { needed: Some(size) })?;
    let word = |at: usize| u64::from_le_bytes(record[at..at + 8].try_into().expect("8 bytes"));
    let (chain, checksum) = match encoder {
        Encoder::Plain => (0, 0),
        Encoder::XxHash => {
            let checksum = word(size - 8);
            if xxh3_64(&record[..size - 8]) != checksum {
                return Err(RecordError::BadChecksum);
            }
            (word(size - 16), checksum)
        }
    };
    let payload_end = size - encoder.trailer_bytes();
    let payload = match record[4] {
        1 => Some(&record[RECORD_HEAD_BYTES..payload_end]),
        2 if payload_end == RECORD_HEAD_BYTES => None,
        kind => return Err(RecordError::BadKind(kind)),
    };
    Ok(Record { seq: word(5), term: word(13), payload, chain, checksum, size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_detect_damage() {
        let header = encode_header(Encoder::XxHash, 42);
        assert_eq!(decode_header(&header, Encoder::XxHash), Ok(42));
        assert_eq!(decode_header(&header, Encoder::Plain), Err(HeaderError::WrongEncoder(1)));
        assert_eq!(decode_header(&header[..31], Encoder::XxHash), Err(HeaderError::Short));
        assert_eq!(decode_header(&[0; 32], Encoder::XxHash), Err(HeaderError::Zero));
        for byte in 0..HEADER_BYTES {
            let mut bad = header;
            bad[byte] ^= 0x10;
            assert!(decode_header(&bad, Encoder::XxHash).is_err(), "byte {byte}");
        }
    }

    #[test]
    fn records_round_trip() {
        for encoder in [Encoder::Plain, Encoder::XxHash] {
            let mut out = Vec::new();
            let checksum = encode_record(&mut out, encoder, 7, 3, Some(b"hello"), 99);
            let record = decode_record(&out, encoder, 1 << 20).unwrap();
            assert_eq!((record.seq, record.term, record.payload), (7, 3, Some(&b"hello"[..])));
            assert_eq!((record.checksum, record.size), (checksum, out.len()));
            let mut blank = Vec::new();
            encode_record(&mut blank, encoder, 8, 3, None, checksum);
            assert_eq!(decode_record(&blank, encoder, 1 << 20).unwrap().payload, None);
        }
    }

    #[test]
    fn every_flipped_byte_of_an_xxhash_record_is_detected() {
        let mut out = Vec::new();
        encode_record(&mut out, Encoder::XxHash, 7, 3, Some(b"payload"), 5);
        for byte in 0..out.len() {
            for bit in 0..8 {
                let mut bad = out.clone();
                bad[byte] ^= 1 << bit;
                assert!(decode_record(&bad, Encoder::XxHash, 1 << 20).is_err(), "byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn short_zero_and_oversized_records_are_named() {
        let mut out = Vec::new();
        encode_record(&mut out, Encoder::XxHash, 0, 1, Some(b"x"), 0);
        let cut = decode_record(&out[..out.len() - 1], Encoder::XxHash, 1 << 20);
        assert_eq!(cut, Err(RecordError::Incomplete { needed: Some(out.len()) }));
        assert_eq!(decode_record(&out[..2], Encoder::XxHash, 1 << 20), Err(RecordError::Incomplete { needed: None }));
        assert_eq!(decode_record(&[0; 40], Encoder::XxHash, 1 << 20), Err(RecordError::Zero));
        assert!(matches!(decode_record(&out, Encoder::XxHash, 10), Err(RecordError::BadLength(_))));
    }
}
