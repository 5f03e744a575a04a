//! The file log's on-disk format, byte by byte. Pure: bytes in, bytes out (nonces are passed
//! in); the file IO lives elsewhere, so the simulator and the fuzzers run exactly this code.
//!
//! # Segment files
//!
//! A log is a series of segment files, each named by the seq of its first entry
//! (`<name>.<first seq as 20 decimal digits>.seg`), bounded by `segment_bytes`. Each starts with
//! a 72-byte header, then records back to back. All integers are little-endian.
//!
//! ```text
//! header   0..8    magic "TRPLOG" 0x00 0x02 (the last byte is the format version)
//!          8       encoder: 0 plain, 1 xxhash, 2 XChaCha20-Poly1305
//!          9..16   zero
//!          16..24  first seq of the segment (u64)
//!          24..48  key check nonce (encrypting encoder; zero otherwise)
//!          48..64  key check tag: the AEAD tag of an empty message with bytes 0..48 as
//!                  associated data (encrypting encoder; zero otherwise)
//!          64..72  XXH3-64 of bytes 0..64 (whatever the encoder)
//! ```
//!
//! The key check makes a wrong key a clear error when a log is opened, even a log whose
//! segments hold no record yet.
//!
//! # Records
//!
//! ```text
//! record   0..4    len (u32): the bytes that follow this field
//!          4       kind: bits 0..2 are 1 for data, 2 for blank, 3 for a cluster configuration
//!                  (`core::codec::encode_configuration`'s bytes); bit 7 marks the last record
//!                  of a batch (one write and one fdatasync)
//!          5..9    batch offset (u32): this record's seq minus the seq of its batch's first
//!          9..17   seq (u64)
//!          17..25  term (u64)
//!          25..    body:
//!                    plain, xxhash: the payload (empty for blank)
//!                    encrypting: nonce (24 random bytes), the payload encrypted with
//!                    XChaCha20-Poly1305 (kind bits 0..2, seq and term as associated data),
//!                    then its 16-byte tag; blank entries too (an empty payload)
//!          trailer, xxhash and encrypting encoders (16 bytes):
//!                  chain (u64): the checksum of the log's previous record (0 for seq 0)
//!                  checksum (u64): XXH3-64 of every byte of the record before it
//! ```
//!
//! Every byte of every record is covered by its checksum (xxhash and encrypting encoders), and
//! each record carries its predecessor's checksum, so a lost, stale or misplaced record breaks
//! the chain; `(last seq, term, last checksum)` fingerprints a whole log prefix. The batch mark
//! and offset let recovery drop a batch that was not completely written (a transaction leaves
//! no trace) and tell a hole left by a crash inside the last batch from damage to a durable
//! one. Encryption hides payloads and authenticates them with their position: a record copied
//! to another seq or term fails to decrypt. Lengths, seqs, terms and the batch structure are
//! not hidden. The plain encoder has no trailer: it detects a torn tail only by length, and
//! nothing else (see `recovery`).

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::fmt;
use xxhash_rust::xxh3::xxh3_64;

/// The segment header's size in bytes.
pub const HEADER_BYTES: usize = 72;
/// The bytes of a record before its body.
pub const RECORD_HEAD_BYTES: usize = 25;
/// The trailer of the xxhash and encrypting encoders: chain and checksum.
pub const TRAILER_BYTES: usize = 16;
/// A nonce's size (XChaCha20-Poly1305).
pub const NONCE_BYTES: usize = 24;
/// An authentication tag's size.
pub const TAG_BYTES: usize = 16;
const MAGIC: [u8; 8] = *b"TRPLOG\x00\x02";
const BATCH_END: u8 = 0x80;
const KIND_DATA: u8 = 1;
const KIND_BLANK: u8 = 2;
const KIND_CONFIG: u8 = 3;

/// The kind bits of a record holding `payload` (`config`: a configuration's bytes).
fn kind_of(payload: Option<&[u8]>, config: bool) -> u8 {
    match (payload, config) {
        (None, _) => KIND_BLANK,
        (Some(_), false) => KIND_DATA,
        (Some(_), true) => KIND_CONFIG,
    }
}

/// A 256-bit key for the encrypting encoder. Its `Debug` output does not show the key.
#[derive(Clone)]
pub struct Key(XChaCha20Poly1305);

impl Key {
    /// The key with these bytes (draw them from a secure random source, keep them secret).
    pub fn new(bytes: [u8; 32]) -> Key {
        Key(XChaCha20Poly1305::new(&bytes.into()))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// How records are protected on disk.
#[derive(Clone, Debug)]
pub enum Encoder {
    /// No checksum: fastest, detects only torn tails (a record cut short).
    Plain,
    /// An XXH3-64 checksum over every byte of every record, and a hash chain (the default).
    XxHash,
    /// The xxhash encoder's protection, with payloads encrypted and authenticated by
    /// XChaCha20-Poly1305 under this key.
    Encrypted(Key),
}

impl Encoder {
    fn code(&self) -> u8 {
        match self {
            Encoder::Plain => 0,
            Encoder::XxHash => 1,
            Encoder::Encrypted(_) => 2,
        }
    }

    /// Whether records carry a checksum and chain.
    pub fn checksummed(&self) -> bool {
        !matches!(self, Encoder::Plain)
    }

    /// The bytes a record adds to its payload with this encoder.
    pub fn overhead_bytes(&self) -> usize {
        match self {
            Encoder::Plain => RECORD_HEAD_BYTES,
            Encoder::XxHash => RECORD_HEAD_BYTES + TRAILER_BYTES,
            Encoder::Encrypted(_) => RECORD_HEAD_BYTES + NONCE_BYTES + TAG_BYTES + TRAILER_BYTES,
        }
    }

    /// Whether records need a fresh nonce each.
    pub fn needs_nonces(&self) -> bool {
        matches!(self, Encoder::Encrypted(_))
    }
}

/// Encodes a segment header (`nonce` is used by the encrypting encoder only).
pub fn encode_header(encoder: &Encoder, first_seq: u64, nonce: [u8; NONCE_BYTES]) -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[0..8].copy_from_slice(&MAGIC);
    header[8] = encoder.code();
    header[16..24].copy_from_slice(&first_seq.to_le_bytes());
    if let Encoder::Encrypted(key) = encoder {
        header[24..48].copy_from_slice(&nonce);
        let tag = key
            .0
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &header[0..48], &mut [])
            .expect("an empty message always encrypts");
        header[48..64].copy_from_slice(&tag);
    }
    let checksum = xxh3_64(&header[0..64]);
    header[64..72].copy_from_slice(&checksum.to_le_bytes());
    header
}

/// Why a segment header is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than 72 bytes.
    Short,
    /// All 72 bytes are zero (never written).
    Zero,
    /// Wrong magic or version, or a checksum mismatch.
    Corrupt,
    /// Written with another encoder than the log is opened with (the code found).
    WrongEncoder(u8),
    /// Encrypted with another key than the one given.
    WrongKey,
}

/// Decodes a segment header: the first seq it names.
pub fn decode_header(bytes: &[u8], encoder: &Encoder) -> Result<u64, HeaderError> {
    let header = bytes.get(..HEADER_BYTES).ok_or(HeaderError::Short)?;
    if header.iter().all(|b| *b == 0) {
        return Err(HeaderError::Zero);
    }
    let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
    if header[0..8] != MAGIC || xxh3_64(&header[0..64]) != word(64) || header[9..16].iter().any(|b| *b != 0) {
        return Err(HeaderError::Corrupt);
    }
    if header[8] != encoder.code() {
        return Err(HeaderError::WrongEncoder(header[8]));
    }
    match encoder {
        Encoder::Encrypted(key) => {
            let nonce = XNonce::from_slice(&header[24..48]);
            let tag = header[48..64].into();
            key.0.decrypt_in_place_detached(nonce, &header[0..48], &mut [], tag).map_err(|_| HeaderError::WrongKey)?;
        }
        _ if header[24..64].iter().any(|b| *b != 0) => return Err(HeaderError::Corrupt),
        _ => {}
    }
    Ok(word(16))
}

/// An entry to encode as a record.
#[derive(Clone, Copy, Debug)]
pub struct NewRecord<'a> {
    /// The entry's seq.
    pub seq: u64,
    /// The entry's term.
    pub term: u64,
    /// The payload, `None` for a blank entry.
    pub payload: Option<&'a [u8]>,
    /// Whether the payload is a cluster configuration rather than a client's data.
    pub config: bool,
    /// `seq` minus the seq of the first record of its batch.
    pub batch_offset: u32,
    /// The previous record's checksum (0 for the first record of a log).
    pub chain: u64,
}

impl<'a> NewRecord<'a> {
    /// The record of a core's entry (any kind).
    pub fn of(entry: &'a crate::core::Entry, batch_offset: u32, chain: u64) -> NewRecord<'a> {
        use crate::core::Payload;
        NewRecord {
            seq: entry.seq.0,
            term: entry.term.0,
            payload: (!matches!(entry.payload, Payload::Blank)).then(|| entry.payload.bytes()),
            config: matches!(entry.payload, Payload::Config(_)),
            batch_offset,
            chain,
        }
    }
}

/// An entry's payload from a record's bytes (`None`: blank) and its configuration flag.
pub fn entry_payload(bytes: Option<bytes::Bytes>, config: bool) -> crate::core::Payload {
    use crate::core::Payload;
    match (bytes, config) {
        (None, _) => Payload::Blank,
        (Some(bytes), false) => Payload::Data(bytes),
        (Some(bytes), true) => Payload::Config(bytes),
    }
}

/// What a record holds (payload borrowed from the bytes it was decoded from).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The entry's seq.
    pub seq: u64,
    /// The entry's term.
    pub term: u64,
    /// The payload as stored, `None` for a blank entry: with the encrypting encoder this is
    /// the ciphertext (see [`Record::decrypt`]).
    pub payload: Option<&'a [u8]>,
    /// Whether the payload is a cluster configuration rather than a client's data.
    pub config: bool,
    /// The byte offset of `payload` in the record.
    pub payload_at: usize,
    /// Whether this record ends its batch.
    pub batch_end: bool,
    /// `seq` minus the seq of its batch's first record.
    pub batch_offset: u32,
    /// The previous record's checksum (0 with the plain encoder).
    pub chain: u64,
    /// This record's checksum (0 with the plain encoder).
    pub checksum: u64,
    /// The record's size on disk.
    pub size: usize,
    /// The encrypting encoder's nonce and tag.
    sealed: Option<(&'a [u8], &'a [u8])>,
}

impl Record<'_> {
    /// The seq of the first record of this record's batch.
    pub fn batch_first(&self) -> u64 {
        self.seq - u64::from(self.batch_offset)
    }

    /// Decrypts and authenticates the payload of a record written by the encrypting encoder.
    pub fn decrypt(&self, key: &Key) -> Result<Option<Vec<u8>>, RecordError> {
        let Some((nonce, tag)) = self.sealed else { return Ok(self.payload.map(<[u8]>::to_vec)) };
        let mut plain = self.payload.unwrap_or_default().to_vec();
        let aad = associated_data(kind_of(self.payload, self.config), self.seq, self.term);
        key.0
            .decrypt_in_place_detached(XNonce::from_slice(nonce), &aad, &mut plain, tag.into())
            .map_err(|_| RecordError::Unauthentic)?;
        Ok(self.payload.map(|_| plain))
    }
}

fn associated_data(kind: u8, seq: u64, term: u64) -> [u8; 17] {
    let mut aad = [0u8; 17];
    aad[0] = kind;
    aad[1..9].copy_from_slice(&seq.to_le_bytes());
    aad[9..17].copy_from_slice(&term.to_le_bytes());
    aad
}

/// Appends one record to `out` (not marked as its batch's last: see [`seal_batch`]); returns
/// its checksum (0 with the plain encoder). `nonce` is used by the encrypting encoder only, and
/// must be fresh random bytes for each record.
pub fn encode_record(out: &mut Vec<u8>, encoder: &Encoder, record: NewRecord<'_>, nonce: [u8; NONCE_BYTES]) -> u64 {
    let start = out.len();
    let payload = record.payload.unwrap_or_default();
    let body = encoder.overhead_bytes() - 4 + payload.len();
    let len = u32::try_from(body).expect("payloads are limited far below 4 GiB");
    let kind = kind_of(record.payload, record.config);
    out.extend_from_slice(&len.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&record.batch_offset.to_le_bytes());
    out.extend_from_slice(&record.seq.to_le_bytes());
    out.extend_from_slice(&record.term.to_le_bytes());
    if let Encoder::Encrypted(key) = encoder {
        out.extend_from_slice(&nonce);
        let at = out.len();
        out.extend_from_slice(payload);
        let aad = associated_data(kind, record.seq, record.term);
        let tag = key
            .0
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &aad, &mut out[at..])
            .expect("payloads are far below the cipher's limit");
        out.extend_from_slice(&tag);
    } else {
        out.extend_from_slice(payload);
    }
    if !encoder.checksummed() {
        return 0;
    }
    out.extend_from_slice(&record.chain.to_le_bytes());
    let checksum = xxh3_64(&out[start..]);
    out.extend_from_slice(&checksum.to_le_bytes());
    checksum
}

/// Marks the record in `record` (exactly its bytes) as the last of its batch and renews its
/// checksum; returns the new checksum (0 with the plain encoder).
pub fn seal_batch(record: &mut [u8], encoder: &Encoder) -> u64 {
    record[4] |= BATCH_END;
    if !encoder.checksummed() {
        return 0;
    }
    let end = record.len() - 8;
    let checksum = xxh3_64(&record[..end]);
    record[end..].copy_from_slice(&checksum.to_le_bytes());
    checksum
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
    /// The kind byte is neither data nor blank, or the batch offset exceeds the seq.
    BadKind(u8),
    /// The checksum does not match the bytes.
    BadChecksum,
    /// The payload fails authentication: another key, or bytes changed by someone who
    /// recomputed the checksum.
    Unauthentic,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Incomplete { .. } => write!(f, "record cut short"),
            RecordError::Zero => write!(f, "zero-filled space"),
            RecordError::BadLength(len) => write!(f, "impossible record length {len}"),
            RecordError::BadKind(kind) => write!(f, "bad record kind {kind} or batch offset"),
            RecordError::BadChecksum => write!(f, "checksum mismatch"),
            RecordError::Unauthentic => write!(f, "payload fails authentication (wrong key, or tampered with)"),
        }
    }
}

/// Decodes the record at the start of `bytes`; a record longer than `max_bytes` is refused.
/// Checks the checksum, not the encryption's authentication (see [`Record::decrypt`]).
pub fn decode_record<'a>(bytes: &'a [u8], encoder: &Encoder, max_bytes: usize) -> Result<Record<'a>, RecordError> {
    let Some(len_bytes) = bytes.get(..4) else { return Err(RecordError::Incomplete { needed: None }) };
    let len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes"));
    if len == 0 {
        return Err(RecordError::Zero);
    }
    let size = 4 + len as usize;
    if size < encoder.overhead_bytes() || size > max_bytes {
        return Err(RecordError::BadLength(len));
    }
    let record = bytes.get(..size).ok_or(RecordError::Incomplete { needed: Some(size) })?;
    let kind = record[4];
    if !matches!(kind & !BATCH_END, KIND_DATA | KIND_BLANK | KIND_CONFIG) {
        return Err(RecordError::BadKind(kind)); // Checked first: cheap, and most garbage fails it.
    }
    let word = |at: usize| u64::from_le_bytes(record[at..at + 8].try_into().expect("8 bytes"));
    let (chain, checksum, body_end) = if encoder.checksummed() {
        let checksum = word(size - 8);
        if xxh3_64(&record[..size - 8]) != checksum {
            return Err(RecordError::BadChecksum);
        }
        (word(size - 16), checksum, size - TRAILER_BYTES)
    } else {
        (0, 0, size)
    };
    let (seq, term) = (word(9), word(17));
    let batch_offset = u32::from_le_bytes(record[5..9].try_into().expect("4 bytes"));
    if u64::from(batch_offset) > seq {
        return Err(RecordError::BadKind(kind));
    }
    let (payload_at, payload_end, sealed) = match encoder {
        Encoder::Encrypted(_) => {
            let at = RECORD_HEAD_BYTES + NONCE_BYTES;
            let end = body_end - TAG_BYTES;
            (at, end, Some((&record[RECORD_HEAD_BYTES..at], &record[end..body_end])))
        }
        _ => (RECORD_HEAD_BYTES, body_end, None),
    };
    let payload = match kind & !BATCH_END {
        KIND_DATA | KIND_CONFIG => Some(&record[payload_at..payload_end]),
        KIND_BLANK if payload_end == payload_at => None,
        _ => return Err(RecordError::BadKind(kind)),
    };
    let batch_end = kind & BATCH_END != 0;
    let config = kind & !BATCH_END == KIND_CONFIG;
    Ok(Record { seq, term, payload, config, payload_at, batch_end, batch_offset, chain, checksum, size, sealed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoders() -> [Encoder; 3] {
        [Encoder::Plain, Encoder::XxHash, Encoder::Encrypted(Key::new([7; 32]))]
    }

    fn new(seq: u64, payload: Option<&[u8]>, chain: u64) -> NewRecord<'_> {
        NewRecord { seq, term: 3, payload, config: false, batch_offset: 2, chain }
    }

    #[test]
    fn headers_round_trip_and_detect_damage() {
        for encoder in encoders() {
            let header = encode_header(&encoder, 42, [9; NONCE_BYTES]);
            assert_eq!(decode_header(&header, &encoder), Ok(42));
            assert_eq!(decode_header(&header[..71], &encoder), Err(HeaderError::Short));
            assert_eq!(decode_header(&[0; HEADER_BYTES], &encoder), Err(HeaderError::Zero));
            for byte in 0..HEADER_BYTES {
                let mut bad = header;
                bad[byte] ^= 0x10;
                assert!(decode_header(&bad, &encoder).is_err(), "byte {byte}");
            }
        }
        let header = encode_header(&Encoder::XxHash, 42, [0; NONCE_BYTES]);
        assert_eq!(decode_header(&header, &Encoder::Plain), Err(HeaderError::WrongEncoder(1)));
    }

    #[test]
    fn a_wrong_key_is_named_by_the_header() {
        let header = encode_header(&Encoder::Encrypted(Key::new([1; 32])), 5, [3; NONCE_BYTES]);
        assert_eq!(decode_header(&header, &Encoder::Encrypted(Key::new([2; 32]))), Err(HeaderError::WrongKey));
        assert_eq!(decode_header(&header, &Encoder::Encrypted(Key::new([1; 32]))), Ok(5));
    }

    #[test]
    fn records_round_trip() {
        for encoder in encoders() {
            let mut out = Vec::new();
            let checksum = encode_record(&mut out, &encoder, new(7, Some(b"hello"), 99), [4; NONCE_BYTES]);
            let record = decode_record(&out, &encoder, 1 << 20).unwrap();
            assert_eq!((record.seq, record.term, record.batch_first(), record.batch_end), (7, 3, 5, false));
            assert_eq!((record.checksum, record.size), (checksum, out.len()));
            let payload = match &encoder {
                Encoder::Encrypted(key) => {
                    assert_ne!(record.payload, Some(&b"hello"[..]), "the payload is not stored in the clear");
                    record.decrypt(key).unwrap()
                }
                _ => record.payload.map(<[u8]>::to_vec),
            };
            assert_eq!(payload.as_deref(), Some(&b"hello"[..]));
            let mut blank = Vec::new();
            encode_record(&mut blank, &encoder, new(8, None, checksum), [5; NONCE_BYTES]);
            let resealed = seal_batch(&mut blank, &encoder);
            let record = decode_record(&blank, &encoder, 1 << 20).unwrap();
            assert_eq!((record.payload, record.batch_end, record.checksum), (None, true, resealed));
            if let Encoder::Encrypted(key) = &encoder {
                assert_eq!(record.decrypt(key), Ok(None));
            }
        }
    }

    #[test]
    fn every_flipped_bit_of_a_checksummed_record_is_detected() {
        for encoder in &encoders()[1..] {
            let mut out = Vec::new();
            encode_record(&mut out, encoder, new(7, Some(b"payload"), 5), [1; NONCE_BYTES]);
            for byte in 0..out.len() {
                for bit in 0..8 {
                    let mut bad = out.clone();
                    bad[byte] ^= 1 << bit;
                    assert!(decode_record(&bad, encoder, 1 << 20).is_err(), "byte {byte} bit {bit}");
                }
            }
        }
    }

    #[test]
    fn an_encrypted_record_moved_to_another_seq_or_read_with_another_key_fails_authentication() {
        let encoder = Encoder::Encrypted(Key::new([7; 32]));
        let mut out = Vec::new();
        encode_record(&mut out, &encoder, new(7, Some(b"secret"), 0), [1; NONCE_BYTES]);
        // Move it to seq 8, recomputing the (unkeyed) checksum as an attacker could.
        out[9..17].copy_from_slice(&8u64.to_le_bytes());
        seal_batch(&mut out, &encoder);
        let record = decode_record(&out, &encoder, 1 << 20).unwrap();
        let Encoder::Encrypted(key) = &encoder else { unreachable!() };
        assert_eq!(record.decrypt(key), Err(RecordError::Unauthentic));
        let mut out = Vec::new();
        encode_record(&mut out, &encoder, new(7, Some(b"secret"), 0), [1; NONCE_BYTES]);
        let record = decode_record(&out, &encoder, 1 << 20).unwrap();
        assert_eq!(record.decrypt(&Key::new([8; 32])), Err(RecordError::Unauthentic));
    }

    #[test]
    fn short_zero_and_oversized_records_are_named() {
        let encoder = Encoder::XxHash;
        let mut out = Vec::new();
        encode_record(&mut out, &encoder, new(3, Some(b"x"), 0), [0; NONCE_BYTES]);
        let cut = decode_record(&out[..out.len() - 1], &encoder, 1 << 20);
        assert_eq!(cut, Err(RecordError::Incomplete { needed: Some(out.len()) }));
        assert_eq!(decode_record(&out[..2], &encoder, 1 << 20), Err(RecordError::Incomplete { needed: None }));
        assert_eq!(decode_record(&[0; 60], &encoder, 1 << 20), Err(RecordError::Zero));
        assert!(matches!(decode_record(&out, &encoder, 10), Err(RecordError::BadLength(_))));
        let mut early = Vec::new();
        encode_record(&mut early, &Encoder::Plain, new(1, None, 0), [0; NONCE_BYTES]);
        assert!(matches!(decode_record(&early, &Encoder::Plain, 1 << 20), Err(RecordError::BadKind(_))));
    }
}
