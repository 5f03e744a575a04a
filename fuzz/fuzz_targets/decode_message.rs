//! Arbitrary bytes decoded as a message: never a panic, and what decodes re-encodes exactly.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tinyraftplus_fuzz::decode_message(data));
