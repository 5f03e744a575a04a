//! Recovery from arbitrary segment bytes: never a panic; a consistent prefix or a precise error.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tinyraftplus_fuzz::recover_bytes(data));
