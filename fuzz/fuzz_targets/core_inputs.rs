//! One node fed arbitrary well-formed inputs: never a panic, never a promise before durability.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tinyraftplus_fuzz::core_inputs(data));
