use super::*;
use crate::core::{Entry, Payload, Seq, Term};

fn encoders() -> [Encoder; 3] {
    [Encoder::Plain, Encoder::XxHash, Encoder::Encrypted(Key::new([7; 32]))]
}

/// A batch from seq 7: data (term 3), blank (term 3), configuration (term 5), data (term 9).
fn sample(encoder: &Encoder, chain: u64) -> Vec<u8> {
    let mut builder = BatchBuilder::default();
    builder.start(7);
    builder.push(3, Some(b"hello"), false);
    builder.push(3, None, false);
    builder.push(5, Some(b"config"), true);
    builder.push(9, Some(&[]), false);
    let mut out = Vec::new();
    builder.finish(&mut out, encoder, Seal { chain, salt: 0, nonce: [4; NONCE_BYTES] });
    out
}

fn sample_entries() -> Vec<Entry> {
    let entry = |seq, term, payload| Entry { seq: Seq(seq), term: Term(term), payload };
    vec![
        entry(7, 3, Payload::Data(Bytes::from_static(b"hello"))),
        entry(8, 3, Payload::Blank),
        entry(9, 5, Payload::Config(Bytes::from_static(b"config"))),
        entry(10, 9, Payload::Data(Bytes::new())),
    ]
}

#[test]
fn headers_round_trip_and_detect_damage() {
    for encoder in encoders() {
        let header = encode_header(&encoder, Header { first_seq: 42, salt: 0 }, [9; NONCE_BYTES]);
        assert_eq!(decode_header(&header, &encoder), Ok(Header { first_seq: 42, salt: 0 }));
        let salted = Header { first_seq: 42, salt: 0xDEAD_BEEF };
        assert_eq!(decode_header(&encode_header(&encoder, salted, [9; NONCE_BYTES]), &encoder), Ok(salted));
        assert_eq!(decode_header(&header[..71], &encoder), Err(HeaderError::Short));
        assert_eq!(decode_header(&[0; HEADER_BYTES], &encoder), Err(HeaderError::Zero));
        for byte in 0..HEADER_BYTES {
            let mut bad = header;
            bad[byte] ^= 0x10;
            assert!(decode_header(&bad, &encoder).is_err(), "byte {byte}");
        }
    }
    let header = encode_header(&Encoder::XxHash, Header { first_seq: 42, salt: 0 }, [0; NONCE_BYTES]);
    assert_eq!(decode_header(&header, &Encoder::Plain), Err(HeaderError::WrongEncoder(1)));
}

#[test]
fn a_header_of_the_previous_format_is_named() {
    let mut header = encode_header(&Encoder::XxHash, Header { first_seq: 42, salt: 0 }, [0; NONCE_BYTES]);
    header[7] = 2;
    let checksum = xxh3_64(&header[0..64]);
    header[64..72].copy_from_slice(&checksum.to_le_bytes());
    assert_eq!(decode_header(&header, &Encoder::XxHash), Err(HeaderError::OldFormat(2)));
}

#[test]
fn a_wrong_key_is_named_by_the_header() {
    let header =
        encode_header(&Encoder::Encrypted(Key::new([1; 32])), Header { first_seq: 5, salt: 0 }, [3; NONCE_BYTES]);
    assert_eq!(decode_header(&header, &Encoder::Encrypted(Key::new([2; 32]))), Err(HeaderError::WrongKey));
    assert_eq!(decode_header(&header, &Encoder::Encrypted(Key::new([1; 32]))).map(|h| h.first_seq), Ok(5));
}

#[test]
fn a_batch_passes_its_checksum_only_under_the_salt_it_was_sealed_with() {
    // Salt 0 is plain XXH3-64: the checksums of segments written before salts existed.
    let bytes = sample(&Encoder::XxHash, 0);
    let end = bytes.len() - BATCH_TAIL_BYTES;
    assert_eq!(decode_batch(&bytes, &Encoder::XxHash, 0, 1 << 20).unwrap().checksum, xxh3_64(&bytes[..end]));
    for encoder in encoders().into_iter().filter(Encoder::checksummed) {
        let mut builder = BatchBuilder::default();
        builder.start(7);
        builder.push(3, Some(b"hello"), false);
        let mut out = Vec::new();
        builder.finish(&mut out, &encoder, Seal { chain: 0, salt: 6, nonce: [4; NONCE_BYTES] });
        assert!(decode_batch(&out, &encoder, 6, 1 << 20).is_ok());
        for other in [0, 5, recycled_salt(6)] {
            assert_eq!(decode_batch(&out, &encoder, other, 1 << 20).err(), Some(BatchError::BadChecksum), "{other}");
        }
    }
    assert_eq!(recycled_salt(u32::MAX), 0);
}

#[test]
fn batches_round_trip_with_terms_kinds_and_chain() {
    for encoder in encoders() {
        let bytes = Bytes::from(sample(&encoder, 99));
        let batch = decode_batch(&bytes, &encoder, 0, 1 << 20).unwrap();
        let chain = if encoder.checksummed() { 99 } else { 0 };
        assert_eq!((batch.first, batch.last(), batch.term, batch.last_term), (7, 10, 3, 9));
        assert_eq!((batch.count, batch.chain, batch.size, batch.has_config), (4, chain, bytes.len(), true));
        assert_eq!(batch.entries(&encoder, &bytes, 0).unwrap(), sample_entries());
        if encoder.needs_nonces() {
            assert!(!bytes.windows(6).any(|w| w == b"config"), "payloads are not stored in the clear");
        }
        assert_eq!(batch.entries_in(&encoder, &bytes, 0, 8..10).unwrap(), sample_entries()[1..3]);
        assert_eq!(batch.entries_in(&encoder, &bytes, 0, 0..8).unwrap(), sample_entries()[..1]);
        // Decoded from the middle of a larger buffer: the payloads are the right slices.
        let mut padded = vec![0u8; 5];
        padded.extend_from_slice(&bytes);
        let padded = Bytes::from(padded);
        let batch = decode_batch(&padded[5..], &encoder, 0, 1 << 20).unwrap();
        assert_eq!(batch.entries(&encoder, &padded, 5).unwrap(), sample_entries());
    }
}

#[test]
fn every_flipped_bit_of_a_checksummed_batch_is_detected() {
    for encoder in &encoders()[1..] {
        let out = sample(encoder, 5);
        for byte in 0..out.len() {
            for bit in 0..8 {
                let mut bad = out.clone();
                bad[byte] ^= 1 << bit;
                assert!(decode_batch(&bad, encoder, 0, 1 << 20).is_err(), "byte {byte} bit {bit}");
            }
        }
    }
}

/// Recomputes a batch's checksum after an edit, as someone without the key could.
fn recompute(bytes: &mut [u8]) {
    let end = bytes.len() - BATCH_TAIL_BYTES;
    let checksum = xxh3_64(&bytes[..end]);
    bytes[end..end + 8].copy_from_slice(&checksum.to_le_bytes());
}

#[test]
fn an_encrypted_batch_moved_edited_or_read_with_another_key_fails_authentication() {
    let encoder = Encoder::Encrypted(Key::new([7; 32]));
    let key = Key::new([7; 32]);
    let original = sample(&encoder, 0);
    let mut moved = original.clone();
    moved[4..12].copy_from_slice(&8u64.to_le_bytes());
    recompute(&mut moved);
    let batch = decode_batch(&moved, &encoder, 0, 1 << 20).unwrap();
    assert_eq!(batch.payloads(&encoder), Err(BatchError::Unauthentic));
    // The first frame's kind changed from data to configuration: the frames are authenticated.
    let mut edited = original.clone();
    assert_eq!(edited[BATCH_HEAD_BYTES] & 3, KIND_DATA);
    edited[BATCH_HEAD_BYTES] |= 3;
    recompute(&mut edited);
    let batch = decode_batch(&edited, &encoder, 0, 1 << 20).unwrap();
    assert_eq!(batch.payloads(&encoder), Err(BatchError::Unauthentic));
    let batch = decode_batch(&original, &encoder, 0, 1 << 20).unwrap();
    assert_eq!(batch.payloads(&Encoder::Encrypted(Key::new([8; 32]))), Err(BatchError::Unauthentic));
    assert!(batch.payloads(&Encoder::Encrypted(key)).is_ok());
}

#[test]
fn short_zero_and_oversized_batches_are_named() {
    let encoder = Encoder::XxHash;
    let out = sample(&encoder, 0);
    let cut = decode_batch(&out[..out.len() - 1], &encoder, 0, 1 << 20);
    assert_eq!(cut, Err(BatchError::Incomplete { needed: Some(out.len()) }));
    assert_eq!(decode_batch(&out[..2], &encoder, 0, 1 << 20), Err(BatchError::Incomplete { needed: None }));
    assert_eq!(decode_batch(&[0; 60], &encoder, 0, 1 << 20), Err(BatchError::Zero));
    assert!(matches!(decode_batch(&out, &encoder, 0, 10), Err(BatchError::BadLength(_))));
    let mut unmarked = out.clone();
    *unmarked.last_mut().unwrap() ^= 1;
    assert_eq!(decode_batch(&unmarked, &Encoder::Plain, 0, 1 << 20), Err(BatchError::BadMark));
}

#[test]
fn frames_cost_a_few_bytes_per_entry() {
    let payload = [1u8; 100];
    let mut builder = BatchBuilder::default();
    builder.start(0);
    builder.push(1, Some(&payload), false);
    assert_eq!(builder.size(&Encoder::XxHash) - 100, 46, "a single append");
    for _ in 1..1000 {
        builder.push(1, Some(&payload), false);
    }
    let overhead = builder.size(&Encoder::XxHash) - 100_000;
    assert_eq!(overhead, 2 * 1000 + 44, "1,000 entries: 2 bytes each, 44 per batch");
    assert_eq!(builder.size(&Encoder::Encrypted(Key::new([0; 32]))) - 100_000, overhead + 40);
}

#[test]
fn a_prefix_keeps_the_entries_before_the_cut_and_the_chain() {
    for encoder in encoders() {
        let bytes = sample(&encoder, 77);
        let batch = decode_batch(&bytes, &encoder, 0, 1 << 20).unwrap();
        let prefix = Bytes::from(prefix_batch(&batch, &encoder, 9, 0, [5; NONCE_BYTES]).unwrap());
        let cut = decode_batch(&prefix, &encoder, 0, 1 << 20).unwrap();
        assert_eq!((cut.first, cut.count, cut.chain, cut.has_config), (7, 2, batch.chain, false));
        assert_eq!(cut.entries(&encoder, &prefix, 0).unwrap(), sample_entries()[..2]);
    }
}

#[test]
fn varints_round_trip_and_overlong_ones_are_refused() {
    for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
        let mut out = Vec::new();
        put_varint(&mut out, value);
        let mut at = 0;
        assert_eq!((get_varint(&out, &mut at), at), (Some(value), out.len()));
    }
    let mut at = 0;
    assert_eq!(get_varint(&[0xff; 10], &mut at), None);
    let mut at = 0;
    assert_eq!(get_varint(&[0x80], &mut at), None, "cut short");
}

#[test]
fn frames_claiming_huge_lengths_are_refused_without_overflow() {
    // A plain batch (no checksum to stop it) whose eight frames claim 2^61 - 1 bytes each: their
    // sum fits a u64, the frames' end plus it does not.
    let mut builder = BatchBuilder::default();
    builder.start(0);
    builder.push(1, Some(b"x"), false);
    let mut out = Vec::new();
    builder.finish(&mut out, &Encoder::Plain, Seal { chain: 0, salt: 0, nonce: [0; NONCE_BYTES] });
    let mut frames = Vec::new();
    for _ in 0..8 {
        put_varint(&mut frames, ((1u64 << 61) - 1) << 3 | u64::from(KIND_DATA));
    }
    let size = BATCH_HEAD_BYTES + frames.len() + BATCH_TAIL_BYTES;
    let mut bad = out[..BATCH_HEAD_BYTES].to_vec();
    bad[0..4].copy_from_slice(&(size as u32).to_le_bytes());
    bad[20..24].copy_from_slice(&8u32.to_le_bytes());
    bad.extend_from_slice(&frames);
    bad.extend_from_slice(&[0; 8]);
    bad.extend_from_slice(&(size as u32 ^ END_MARK).to_le_bytes());
    assert_eq!(decode_batch(&bad, &Encoder::Plain, 0, 1 << 20), Err(BatchError::BadFrames));
}
