//! Fuzzing a whole cluster's schedule: the fuzzer's bytes are the simulator's first decisions
//! (one byte each: which message is lost, delayed or duplicated, which fault fires and when,
//! which node crashes, what clients do), every invariant is checked, and the decisions past the
//! input's end are drawn from a seed made from the input. A coverage-guided fuzzer
//! (`fuzz/fuzz_targets/cluster_schedule.rs`) thus explores schedules rather than seeds; an input
//! it finds failing becomes a replay file with `--fuzz-input FILE --save OUT`.

use crate::{Options, Outcome, Simulation};

/// The runs a fuzzer makes: five nodes, five clients, 100 operations in 15 s of faults (shorter
/// than the default run, for more runs per second).
pub fn options() -> Options {
    Options { ops: 100, fault_ms: 15_000, ..Options::default() }
}

/// The decisions `bytes` make: one per byte, spread over the whole range (byte 0 decides the
/// smallest choice and fires every chance; byte 255 the largest, firing none).
pub fn script(bytes: &[u8]) -> Vec<u64> {
    bytes.iter().map(|byte| u64::from(*byte) * 0x0101_0101_0101_0101).collect()
}

/// The seed for the decisions past the input's end.
pub fn seed(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// Runs `simulation` with the decisions `bytes` make.
pub fn run(simulation: &Simulation, bytes: &[u8], options: &Options) -> Outcome {
    simulation.run_script(seed(bytes), options, script(bytes))
}
