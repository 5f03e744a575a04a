//! The simulator's command line for its built-in simulations (`--workload counter`, the
//! default, `register` or `log`); see [`tinyraftplus_sim::cli`].

use std::process::ExitCode;
use tinyraftplus_sim::cli::Cli;
use tinyraftplus_sim::Simulation;

fn main() -> ExitCode {
    Cli::new("cargo run --release -p tinyraftplus-sim").main(&[
        Simulation::counter(),
        Simulation::register(),
        Simulation::log(),
    ])
}
