//! tinyraftplus-sim: a seeded, deterministic discrete-event simulator for tinyraftplus.
//!
//! One seed decides everything: the fault mix (swarm testing), every latency, loss, crash,
//! partition, pause and disk fault, every client operation. The same seed gives the same run,
//! event for event (a digest of the run proves it). Nodes run the real core; their disks hold
//! real record bytes and recover through the real recovery code. Safety invariants are
//! checked after every step, linearizability of the clients' history at the end, and liveness
//! after the faults heal.

pub mod check;
pub mod disk;
pub mod lincheck;
pub mod swarm;
mod world;

pub use swarm::{Options, Regime, Swarm};
pub use world::{Failure, Outcome, World};

/// Runs one seed.
pub fn run(seed: u64, options: &Options) -> Outcome {
    World::new(seed, options.clone()).run()
}
