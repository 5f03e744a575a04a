//! The file log's on-disk format, byte by byte. Pure: bytes in, bytes out (nonces are passed
//! in); the file IO lives elsewhere, so the simulator and the fuzzers run exactly this code.
//! Format version 3: entries are framed in batches (one header, checksum and, encrypted, one
//! nonce and tag per batch; a few bytes per entry), after Kafka's record batches.
//!
//! # Segment files
//!
//! A log is a series of segment files, each named by the seq of its first entry
//! (`<name>.<first seq as 20 decimal digits>.seg`), bounded by `segment_bytes`. Each starts with
//! a 72-byte header, then batches back to back. All integers are little-endian.
//!
//! ```text
//! header   0..8    magic "TRPLOG" 0x00 0x03 (the last byte is the format version)
//!          8       encoder: 0 plain, 1 xxhash, 2 XChaCha20-Poly1305
//!          9..12   zero
//!          12..16  salt (u32): the seed of this segment's batch checksums (0 in a new file;
//!                  one more each time the file is recycled for a new segment, so stale batches
//!                  left from its earlier lives never pass a checksum: see `FsLog`'s spares)
//!          16..24  first seq of the segment (u64)
//!          24..48  key check nonce (encrypting encoder; zero otherwise)
//!          48..64  key check tag: the AEAD tag of an empty message with bytes 0..48 as
//!                  associated data (encrypting encoder; zero otherwise)
//!          64..72  XXH3-64 of bytes 0..64 (whatever the encoder)
//! ```
//!
//! The key check makes a wrong key a clear error when a log is opened, even a log whose
//! segments hold no batch yet. Snapshot files and the saved configuration use the same header
//! and batches (see `snapshot.rs`, `saved_config.rs`).
//!
//! # Batches
//!
//! One append, `append_batch` or transaction is one batch: one write and one fdatasync.
//!
//! ```text
//! batch    0..4    size (u32): the batch's bytes, this field included
//!          4..12   first seq (u64)
//!          12..20  term of the first entry (u64)
//!          20..24  count of entries (u32, at least 1)
//!          24..32  chain (u64): the checksum of the log's previous batch (0 for the first
//!                  batch of a log, and with the plain encoder)
//!          32..    frames, one per entry: a varint (LEB128) of `len << 3 | new_term << 2 |
//!                  kind` (kind 1 data, 2 blank, 3 a cluster configuration, the bytes of
//!                  `core::codec::encode_configuration`; `new_term`: a varint of the term's
//!                  increase over the previous entry's follows)
//!          then    the payloads, back to back (`len` bytes each; none for blank entries)
//!          then    encrypting encoder only: the nonce (24 random bytes) and the tag (16) of
//!                  XChaCha20-Poly1305 over the payloads, in place, with bytes 0..(end of the
//!                  frames) as associated data: seqs, terms, count, chain and frames
//!          end-12  checksum (u64): XXH3-64 of every byte before it, seeded with the segment's
//!                  salt (0 with the plain encoder)
//!          end-4   batch-end mark (u32): the size XOR 0xB7E5_0A1D
//! ```
//!
//! So a batch of 1,000 entries of 100 bytes costs about 2 bytes per entry more than its
//! payloads, and a single 100-byte append 46 bytes (86 encrypted).
//!
//! Every byte of every batch is covered by its checksum (xxhash and encrypting encoders), and
//! each batch carries its predecessor's checksum, so a lost, stale or misplaced batch breaks the
//! chain; `(last seq, term, last checksum)` fingerprints a whole log prefix. A batch is the unit
//! of durability: recovery keeps it whole or drops it (a transaction leaves no trace), and tells
//! a torn last batch (cut short, zeros, damage with nothing after it) from damage to a durable
//! one (a valid batch follows it). Damage is named by the first seq of its batch, the first
//! entry that cannot be trusted. Encryption hides payloads and authenticates them with their
//! position: a batch copied to another seq or term, or with changed frames, fails to decrypt.
//! Lengths, seqs, terms and kinds are not hidden. The plain encoder has no checksum: it detects
//! a torn tail only by sizes and the end mark, and nothing else (see `recovery`).

use super::cipher::Unauthentic;
pub use super::cipher::{Key, NONCE_BYTES, TAG_BYTES};
use bytes::Bytes;
use std::fmt;
use std::ops::Range;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// The segment header's size in bytes.
pub const HEADER_BYTES: usize = 72;
/// The bytes of a batch before its frames: size, first seq, term, count, chain.
pub const BATCH_HEAD_BYTES: usize = 32;
/// The bytes of a batch after its payloads (nonce and tag aside): checksum and end mark.
pub const BATCH_TAIL_BYTES: usize = 12;
/// The format version this code writes (the last byte of the magic).
pub const FORMAT_VERSION: u8 = 3;
const MAGIC: [u8; 8] = *b"TRPLOG\x00\x03";
const END_MARK: u32 = 0xB7E5_0A1D;
const KIND_DATA: u8 = 1;
const KIND_BLANK: u8 = 2;
const KIND_CONFIG: u8 = 3;
const NEW_TERM: u64 = 4;

/// How batches are protected on disk.
#[derive(Clone, Debug)]
pub enum Encoder {
    /// No checksum: fastest, detects only torn tails (a batch cut short).
    Plain,
    /// An XXH3-64 checksum over every byte of every batch, and a hash chain (the default).
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

    /// Whether batches carry a checksum and chain.
    pub fn checksummed(&self) -> bool {
        !matches!(self, Encoder::Plain)
    }

    /// The bytes a batch adds to its entries' frames and payloads with this encoder.
    pub fn batch_overhead_bytes(&self) -> usize {
        let sealed = if self.needs_nonces() { NONCE_BYTES + TAG_BYTES } else { 0 };
        BATCH_HEAD_BYTES + BATCH_TAIL_BYTES + sealed
    }

    /// The most bytes a batch of one entry with a payload of `payload` bytes takes.
    pub fn single_batch_bytes(&self, payload: usize) -> usize {
        self.batch_overhead_bytes() + FRAME_BYTES_MAX + payload
    }

    /// Whether batches need a fresh nonce each.
    pub fn needs_nonces(&self) -> bool {
        matches!(self, Encoder::Encrypted(_))
    }
}

/// The most bytes one entry's frame takes (two 10-byte varints).
pub const FRAME_BYTES_MAX: usize = 20;

/// A segment header's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The seq of the segment's first entry.
    pub first_seq: u64,
    /// The seed of the segment's batch checksums.
    pub salt: u32,
}

/// Encodes a segment header (`nonce` is used by the encrypting encoder only).
pub fn encode_header(encoder: &Encoder, header: Header, nonce: [u8; NONCE_BYTES]) -> [u8; HEADER_BYTES] {
    let Header { first_seq, salt } = header;
    let mut header = [0u8; HEADER_BYTES];
    header[0..8].copy_from_slice(&MAGIC);
    header[8] = encoder.code();
    header[12..16].copy_from_slice(&salt.to_le_bytes());
    header[16..24].copy_from_slice(&first_seq.to_le_bytes());
    if let Encoder::Encrypted(key) = encoder {
        header[24..48].copy_from_slice(&nonce);
        let tag = key.seal(&nonce, &header[0..48], &mut []);
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
    /// Wrong magic, or a checksum mismatch.
    Corrupt,
    /// Written in an older format version (the version found), which this code does not read.
    OldFormat(u8),
    /// Written with another encoder than the log is opened with (the code found).
    WrongEncoder(u8),
    /// Encrypted with another key than the one given.
    WrongKey,
}

/// Decodes a segment header.
pub fn decode_header(bytes: &[u8], encoder: &Encoder) -> Result<Header, HeaderError> {
    let header = bytes.get(..HEADER_BYTES).ok_or(HeaderError::Short)?;
    if header.iter().all(|b| *b == 0) {
        return Err(HeaderError::Zero);
    }
    let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
    if header[0..7] != MAGIC[0..7] || xxh3_64(&header[0..64]) != word(64) || header[9..12].iter().any(|b| *b != 0) {
        return Err(HeaderError::Corrupt);
    }
    if header[7] != FORMAT_VERSION {
        return Err(HeaderError::OldFormat(header[7]));
    }
    if header[8] != encoder.code() {
        return Err(HeaderError::WrongEncoder(header[8]));
    }
    match encoder {
        Encoder::Encrypted(key) => {
            let nonce = header[24..48].try_into().expect("24 bytes");
            let tag = header[48..64].try_into().expect("16 bytes");
            key.open(nonce, &header[0..48], &mut [], tag).map_err(|Unauthentic| HeaderError::WrongKey)?;
        }
        _ if header[24..64].iter().any(|b| *b != 0) => return Err(HeaderError::Corrupt),
        _ => {}
    }
    let salt = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes"));
    Ok(Header { first_seq: word(16), salt })
}

#[inline]
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a varint at `*at`, moving past it; `None` if it runs past `bytes` or 10 bytes.
fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return (shift < 63 || byte <= 1).then_some(value);
        }
    }
    None
}

/// One batch being built: entries are added one at a time, then [`BatchBuilder::finish`] lays
/// out its bytes. Reusable (`start` clears it).
#[derive(Clone, Debug, Default)]
pub struct BatchBuilder {
    frames: Vec<u8>,
    payloads: Vec<u8>,
    first: u64,
    term: u64,
    last_term: u64,
    count: u32,
}

impl BatchBuilder {
    /// Starts a new batch whose first entry gets `first`.
    pub fn start(&mut self, first: u64) {
        self.frames.clear();
        self.payloads.clear();
        (self.first, self.term, self.last_term, self.count) = (first, 0, 0, 0);
    }

    /// The entries added so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The seq of the first entry.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// Adds an entry (`payload` `None`: blank; `config`: a configuration's bytes). The caller
    /// checks that terms do not decrease and that the count stays below 2^32.
    #[inline]
    pub fn push(&mut self, term: u64, payload: Option<&[u8]>, config: bool) {
        let kind = match (payload, config) {
            (None, _) => KIND_BLANK,
            (Some(_), false) => KIND_DATA,
            (Some(_), true) => KIND_CONFIG,
        };
        let payload = payload.unwrap_or_default();
        if self.count == 0 {
            (self.term, self.last_term) = (term, term);
        }
        let new_term = term > self.last_term;
        let head = (payload.len() as u64) << 3 | if new_term { NEW_TERM } else { 0 } | u64::from(kind);
        put_varint(&mut self.frames, head);
        if new_term {
            put_varint(&mut self.frames, term - self.last_term);
        }
        self.payloads.extend_from_slice(payload);
        self.last_term = term;
        self.count += 1;
    }

    /// The batch's size once finished with `encoder`.
    pub fn size(&self, encoder: &Encoder) -> usize {
        encoder.batch_overhead_bytes() + self.frames.len() + self.payloads.len()
    }

    /// Appends the batch to `out` (at least one entry added), chained to `chain`, its checksum
    /// seeded with `salt` (the segment's); returns the checksum (0 with the plain encoder).
    /// `nonce` is used by the encrypting encoder only, and must be fresh random bytes for each
    /// batch.
    pub fn finish(&self, out: &mut Vec<u8>, encoder: &Encoder, seal: Seal) -> u64 {
        let Seal { chain, salt, nonce } = seal;
        debug_assert!(self.count > 0, "invariant: a batch holds an entry");
        let start = out.len();
        let size = self.size(encoder);
        let size32 = u32::try_from(size).expect("batches are limited far below 4 GiB");
        let chain = if encoder.checksummed() { chain } else { 0 };
        out.reserve(size);
        out.extend_from_slice(&size32.to_le_bytes());
        out.extend_from_slice(&self.first.to_le_bytes());
        out.extend_from_slice(&self.term.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&chain.to_le_bytes());
        out.extend_from_slice(&self.frames);
        let payloads_at = out.len();
        out.extend_from_slice(&self.payloads);
        if let Encoder::Encrypted(key) = encoder {
            let (associated, payloads) = out[start..].split_at_mut(payloads_at - start);
            let tag = key.seal(&nonce, associated, payloads);
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&tag);
        }
        let checksum = if encoder.checksummed() { batch_checksum(&out[start..], salt) } else { 0 };
        out.extend_from_slice(&checksum.to_le_bytes());
        out.extend_from_slice(&(size32 ^ END_MARK).to_le_bytes());
        debug_assert_eq!(out.len() - start, size);
        checksum
    }
}

/// What seals a batch besides its entries: the previous batch's checksum, the segment's salt
/// and, for the encrypting encoder, a fresh nonce.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seal {
    /// The log's previous batch's checksum (0 for its first batch).
    pub chain: u64,
    /// The seed of the checksum: the salt of the segment the batch goes in (0 outside segments).
    pub salt: u32,
    /// Fresh random bytes (the encrypting encoder; ignored by the others).
    pub nonce: [u8; NONCE_BYTES],
}

/// The salt of a recycled segment file whose header had `old`: one more, so that no batch left
/// from any of the file's earlier lives passes a checksum in its new one.
pub fn recycled_salt(old: u32) -> u32 {
    old.wrapping_add(1)
}

/// A batch's checksum: XXH3-64 seeded with the segment's salt (with salt 0, plain XXH3-64).
fn batch_checksum(bytes: &[u8], salt: u32) -> u64 {
    xxh3_64_with_seed(bytes, u64::from(salt))
}

/// Why bytes are not a complete, valid batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchError {
    /// The bytes end before the batch does (`needed` bytes in all).
    Incomplete {
        /// The batch's full size, when the size field could be read.
        needed: Option<usize>,
    },
    /// The size field is zero (never-written, zero-filled space).
    Zero,
    /// The size is impossible (shorter than a batch, or over `max_bytes`).
    BadLength(u32),
    /// The end mark does not match the size.
    BadMark,
    /// The checksum does not match the bytes.
    BadChecksum,
    /// The frames do not describe the payloads (a bad kind, length, term or count).
    BadFrames,
    /// The payloads fail authentication: another key, or bytes changed by someone who
    /// recomputed the checksum.
    Unauthentic,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Incomplete { .. } => write!(f, "batch cut short"),
            BatchError::Zero => write!(f, "zero-filled space"),
            BatchError::BadLength(len) => write!(f, "impossible batch size {len}"),
            BatchError::BadMark => write!(f, "batch-end mark missing"),
            BatchError::BadChecksum => write!(f, "checksum mismatch"),
            BatchError::BadFrames => write!(f, "entry frames do not match the batch"),
            BatchError::Unauthentic => write!(f, "payloads fail authentication (wrong key, or tampered with)"),
        }
    }
}

/// A batch decoded from bytes (borrowed): its header, and its frames checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch<'a> {
    /// The first entry's seq.
    pub first: u64,
    /// The first entry's term.
    pub term: u64,
    /// The last entry's term.
    pub last_term: u64,
    /// The number of entries.
    pub count: u32,
    /// The previous batch's checksum (0 with the plain encoder).
    pub chain: u64,
    /// This batch's checksum (0 with the plain encoder).
    pub checksum: u64,
    /// The batch's size on disk.
    pub size: usize,
    /// Whether it holds a configuration entry.
    pub has_config: bool,
    bytes: &'a [u8],
    frames_end: usize,
    payloads_end: usize,
}

/// One entry of a batch, as its frame describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The entry's seq.
    pub seq: u64,
    /// The entry's term.
    pub term: u64,
    /// Where its payload is among the batch's payloads (`None`: blank).
    pub payload: Option<Range<usize>>,
    /// Whether the payload is a cluster configuration.
    pub config: bool,
}

/// The frames of a batch, in order (see [`Batch::frames`]); the batch's frames were checked
/// when it was decoded.
pub struct Frames<'a> {
    bytes: &'a [u8],
    at: usize,
    seq: u64,
    term: u64,
    payload_at: usize,
    left: u32,
}

impl Frames<'_> {
    fn step(&mut self) -> Option<Frame> {
        let head = get_varint(self.bytes, &mut self.at)?;
        if head & NEW_TERM != 0 {
            let up = get_varint(self.bytes, &mut self.at).filter(|up| *up > 0)?;
            self.term = self.term.checked_add(up)?;
        }
        let len = usize::try_from(head >> 3).ok()?;
        let range = self.payload_at..self.payload_at.checked_add(len)?;
        let (payload, config) = match (head & 3) as u8 {
            KIND_DATA => (Some(range), false),
            KIND_CONFIG => (Some(range), true),
            KIND_BLANK if len == 0 => (None, false),
            _ => return None,
        };
        self.payload_at += len;
        let frame = Frame { seq: self.seq, term: self.term, payload, config };
        self.seq = self.seq.wrapping_add(1); // Past the last entry only (checked at decoding).
        Some(frame)
    }
}

impl Iterator for Frames<'_> {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.step()
    }
}

impl<'a> Batch<'a> {
    /// The last entry's seq.
    pub fn last(&self) -> u64 {
        self.first + (u64::from(self.count) - 1)
    }

    /// The entries' frames, in order.
    pub fn frames(&self) -> Frames<'a> {
        Frames {
            bytes: &self.bytes[..self.frames_end],
            at: BATCH_HEAD_BYTES,
            seq: self.first,
            term: self.term,
            payload_at: 0,
            left: self.count,
        }
    }

    /// Where the payloads are in the batch's bytes (ciphertext with the encrypting encoder).
    pub fn payloads_range(&self) -> Range<usize> {
        self.frames_end..self.payloads_end
    }

    /// The payloads as stored (ciphertext with the encrypting encoder).
    pub fn stored_payloads(&self) -> &'a [u8] {
        &self.bytes[self.payloads_range()]
    }

    /// The payloads, decrypted and authenticated with the encrypting encoder (a copy), or as
    /// stored.
    pub fn payloads(&self, encoder: &Encoder) -> Result<Vec<u8>, BatchError> {
        let mut plain = self.stored_payloads().to_vec();
        if let Encoder::Encrypted(key) = encoder {
            let sealed = &self.bytes[self.payloads_end..self.payloads_end + NONCE_BYTES + TAG_BYTES];
            let (nonce, tag) = sealed.split_at(NONCE_BYTES);
            let (nonce, tag) = (nonce.try_into().expect("24 bytes"), tag.try_into().expect("16 bytes"));
            let associated = &self.bytes[..self.frames_end];
            key.open(nonce, associated, &mut plain, tag).map_err(|Unauthentic| BatchError::Unauthentic)?;
        }
        Ok(plain)
    }

    /// The batch's entries, decrypted with the encrypting encoder. `owner` holds the bytes the
    /// batch was decoded from, at `at`: plain and xxhash payloads are slices of it (no copy).
    pub fn entries(&self, encoder: &Encoder, owner: &Bytes, at: usize) -> Result<Vec<crate::core::Entry>, BatchError> {
        self.entries_in(encoder, owner, at, self.first..self.last().saturating_add(1))
    }

    /// The batch's entries with seqs in `seqs` (see [`Batch::entries`]): only those are made.
    pub fn entries_in(
        &self,
        encoder: &Encoder,
        owner: &Bytes,
        at: usize,
        seqs: Range<u64>,
    ) -> Result<Vec<crate::core::Entry>, BatchError> {
        let payloads = match encoder {
            Encoder::Encrypted(_) => Bytes::from(self.payloads(encoder)?),
            _ => owner.slice(at + self.frames_end..at + self.payloads_end),
        };
        Ok(self
            .frames()
            .skip_while(|frame| frame.seq < seqs.start)
            .take_while(|frame| frame.seq < seqs.end)
            .map(|frame| crate::core::Entry {
                term: crate::core::Term(frame.term),
                seq: crate::core::Seq(frame.seq),
                payload: entry_payload(frame.payload.map(|range| payloads.slice(range)), frame.config),
            })
            .collect())
    }
}

/// An entry's payload from its bytes (`None`: blank) and its configuration flag.
pub fn entry_payload(bytes: Option<Bytes>, config: bool) -> crate::core::Payload {
    use crate::core::Payload;
    match (bytes, config) {
        (None, _) => Payload::Blank,
        (Some(bytes), false) => Payload::Data(bytes),
        (Some(bytes), true) => Payload::Config(bytes),
    }
}

/// Adds a core's entry (any kind) to a batch being built.
pub fn push_entry(builder: &mut BatchBuilder, entry: &crate::core::Entry) {
    use crate::core::Payload;
    let payload = (!matches!(entry.payload, Payload::Blank)).then(|| entry.payload.bytes());
    builder.push(entry.term.0, payload, matches!(entry.payload, Payload::Config(_)));
}

/// The size field of the batch at the start of `bytes`, if 4 bytes are there.
pub fn batch_size(bytes: &[u8]) -> Option<usize> {
    Some(u32::from_le_bytes(bytes.get(..4)?.try_into().expect("4 bytes")) as usize)
}

/// Decodes the batch at the start of `bytes`, from a segment whose header has `salt`; a batch
/// larger than `max_bytes` is refused. Checks the size, end mark, checksum and frames, not the
/// encryption's authentication (see [`Batch::payloads`]).
pub fn decode_batch<'a>(
    bytes: &'a [u8],
    encoder: &Encoder,
    salt: u32,
    max_bytes: usize,
) -> Result<Batch<'a>, BatchError> {
    let size = batch_size(bytes).ok_or(BatchError::Incomplete { needed: None })?;
    if size == 0 {
        return Err(BatchError::Zero);
    }
    if size < encoder.batch_overhead_bytes() + 1 || size > max_bytes {
        return Err(BatchError::BadLength(size as u32));
    }
    let batch = bytes.get(..size).ok_or(BatchError::Incomplete { needed: Some(size) })?;
    let word = |at: usize| u64::from_le_bytes(batch[at..at + 8].try_into().expect("8 bytes"));
    let mark = u32::from_le_bytes(batch[size - 4..].try_into().expect("4 bytes"));
    if mark != size as u32 ^ END_MARK {
        return Err(BatchError::BadMark); // Checked first: cheap, and most garbage fails it.
    }
    let checksum = word(size - BATCH_TAIL_BYTES);
    if encoder.checksummed() && batch_checksum(&batch[..size - BATCH_TAIL_BYTES], salt) != checksum {
        return Err(BatchError::BadChecksum);
    }
    let (first, term, chain) = (word(4), word(12), word(24));
    let count = u32::from_le_bytes(batch[20..24].try_into().expect("4 bytes"));
    let sealed = if encoder.needs_nonces() { NONCE_BYTES + TAG_BYTES } else { 0 };
    let payloads_end = size - BATCH_TAIL_BYTES - sealed;
    if count == 0 || first.checked_add(u64::from(count) - 1).is_none() || (!encoder.checksummed() && checksum != 0) {
        return Err(BatchError::BadFrames);
    }
    // Walk the frames once: they must describe exactly the payloads that follow them.
    let mut frames =
        Frames { bytes: &batch[..payloads_end], at: BATCH_HEAD_BYTES, seq: first, term, payload_at: 0, left: 0 };
    let mut has_config = false;
    for _ in 0..count {
        let frame = frames.step().ok_or(BatchError::BadFrames)?;
        has_config |= frame.config;
    }
    let frames_end = frames.at;
    if frames_end.checked_add(frames.payload_at) != Some(payloads_end) {
        return Err(BatchError::BadFrames);
    }
    let last_term = frames.term;
    Ok(Batch {
        first,
        term,
        last_term,
        count,
        chain,
        checksum,
        size,
        has_config,
        bytes: batch,
        frames_end,
        payloads_end,
    })
}

/// The batch holding `batch`'s entries before `keep_end` (at least one: else `BadFrames`),
/// chained as `batch` was, for a segment with `salt`, with a fresh `nonce`: what a trim inside
/// a batch writes in its place.
pub fn prefix_batch(
    batch: &Batch<'_>,
    encoder: &Encoder,
    keep_end: u64,
    salt: u32,
    nonce: [u8; NONCE_BYTES],
) -> Result<Vec<u8>, BatchError> {
    if keep_end <= batch.first {
        return Err(BatchError::BadFrames);
    }
    let payloads = batch.payloads(encoder)?;
    let mut builder = BatchBuilder::default();
    builder.start(batch.first);
    for frame in batch.frames().take_while(|frame| frame.seq < keep_end) {
        builder.push(frame.term, frame.payload.map(|range| &payloads[range]), frame.config);
    }
    let mut out = Vec::with_capacity(builder.size(encoder));
    builder.finish(&mut out, encoder, Seal { chain: batch.chain, salt, nonce });
    Ok(out)
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
