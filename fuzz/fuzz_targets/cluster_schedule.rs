//! A whole cluster's schedule from the fuzzer's bytes: they make the simulator's decisions
//! (`tinyraftplus_sim::schedule`), every invariant is checked, and a failing run is a crash.
//! `SIM_MUTANT=NAME` plants a known bug (to measure how fast the fuzzer finds it) and
//! `SIM_REGIME=unbounded` lets faults hit a majority; the message of a crash counts the
//! executions it took. Turn a crashing input into a replay file with
//! `cargo run --release -p tinyraftplus-sim --features mutants -- --fuzz-input CRASH [--mutant NAME]
//! [--regime unbounded] --save OUT`.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use tinyraftplus_sim::{mutant_named, schedule, Options, Regime, Simulation};

static SETUP: OnceLock<(Simulation, Options)> = OnceLock::new();
static EXECUTIONS: AtomicU64 = AtomicU64::new(0);

fn setup() -> &'static (Simulation, Options) {
    SETUP.get_or_init(|| {
        let mut options = schedule::options();
        if let Ok(name) = std::env::var("SIM_MUTANT") {
            options.mutant = Some(mutant_named(&name).unwrap_or_else(|| panic!("SIM_MUTANT: no planted bug {name}")));
        }
        if std::env::var("SIM_REGIME").is_ok_and(|regime| regime == "unbounded") {
            options.regime = Regime::Unbounded;
        }
        (Simulation::counter(), options)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (simulation, options) = setup();
    let outcome = schedule::run(simulation, data, options);
    let executions = EXECUTIONS.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some(failure) = outcome.failure {
        let detail: String = failure.detail().chars().take(300).collect();
        panic!("FAIL {} after {executions} executions: {detail}", failure.invariant());
    }
});
