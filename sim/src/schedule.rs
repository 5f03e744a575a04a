//! Fuzzing a whole cluster's schedule: the input's first 8 bytes are the seed of the run's setup
//! (its fault mix and the nodes' configurations, as a seed decides them) and of the decisions
//! past the input's end; each byte after them is one decision of the run (which message is
//! lost, delayed or duplicated, which fault fires and when, which node crashes, what clients
//! do). Every invariant is checked. A coverage-guided fuzzer
//! (`fuzz/fuzz_targets/cluster_schedule.rs`) thus explores schedules rather than seeds; an input
//! it finds failing becomes a replay file with `--fuzz-input FILE --save OUT`.

use crate::random::Script;
use crate::{Options, Outcome, Simulation};

/// The runs a fuzzer makes: five nodes, five clients, 100 operations in 15 s of faults (shorter
/// than the default run, for more runs per second).
pub fn options() -> Options {
    Options { ops: 100, fault_ms: 15_000, ..Options::default() }
}

/// The committed corpus of inputs (`fuzz/corpus/cluster_schedule`), which the tests replay.
pub fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/cluster_schedule")
}

/// The decisions `bytes` make after the seed's 8: one per byte, spread over the whole range
/// (byte 0 decides the smallest choice and fires every chance; byte 255 the largest, firing
/// none), from the end of the setup on.
pub fn script(bytes: &[u8]) -> Script {
    let decisions = bytes.iter().skip(8).map(|byte| u64::from(*byte) * 0x0101_0101_0101_0101).collect();
    Script { decisions, skipped: Default::default(), after_setup: true }
}

/// The seed: the first 8 bytes (little-endian, missing ones 0).
pub fn seed(bytes: &[u8]) -> u64 {
    let mut seed = [0u8; 8];
    for (to, from) in seed.iter_mut().zip(bytes) {
        *to = *from;
    }
    u64::from_le_bytes(seed)
}

/// Runs `simulation` with the decisions `bytes` make.
pub fn run(simulation: &Simulation, bytes: &[u8], options: &Options) -> Outcome {
    simulation.run_script(seed(bytes), options, script(bytes))
}
