//! A bank simulated under faults: the simulator's command line for a state machine of your own.
//!
//! ```text
//! cargo run --release -p tinyraftplus-sim --example bank -- --seeds 0..1000
//! cargo run --release -p tinyraftplus-sim --example bank -- --workload bank_buggy --seeds 0..1000
//! cargo run --release -p tinyraftplus-sim --example bank -- --workload bank_buggy --seed N --shrink --report bank.html
//! ```
//!
//! See `bank.rs` for the state machine, its model and its workload.

mod bank;

use std::process::ExitCode;
use tinyraftplus_sim::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::new("cargo run --release -p tinyraftplus-sim --example bank");
    cli.main(&[bank::simulation(false), bank::simulation(true)])
}
