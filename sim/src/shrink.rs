//! Shrinking a failing run: with the same seed, turn off fault classes one by one, then cut
//! the client operations, the faulty time and the clients, keeping each change while the run
//! still fails the same invariant. What is left is the smaller run to read event by event.
//!
//! This shrinks the run's parameters, not its individual events: a change moves every later
//! random draw, so the smaller run is a different run that fails the same way.

use crate::swarm::{Options, FAULT_CLASSES};
use crate::{Outcome, Simulation};

/// A smaller run failing like `outcome` did (the options, and its outcome), after at most
/// `budget` trial runs.
pub fn shrink(
    simulation: &Simulation,
    seed: u64,
    options: &Options,
    invariant: &str,
    budget: usize,
) -> (Options, Outcome) {
    let fails = |options: &Options| {
        let outcome = simulation.run(seed, options);
        let same = outcome.failure.as_ref().is_some_and(|f| f.invariant() == invariant);
        (same, outcome)
    };
    let (mut best, mut outcome) = (options.clone(), simulation.run(seed, options));
    let mut trials = 0;
    loop {
        let mut improved = false;
        let mut candidates: Vec<Options> = Vec::new();
        for class in FAULT_CLASSES {
            if !best.disabled.contains(&class) {
                let mut fewer = best.clone();
                fewer.disabled.push(class);
                candidates.push(fewer);
            }
        }
        if best.ops / 2 >= 5 {
            candidates.push(Options { ops: best.ops / 2, ..best.clone() });
        }
        if best.fault_ms / 2 >= 1_000 {
            candidates.push(Options { fault_ms: best.fault_ms / 2, ..best.clone() });
        }
        if best.clients > 1 {
            candidates.push(Options { clients: best.clients - 1, ..best.clone() });
        }
        for candidate in candidates {
            if trials >= budget {
                return (best, outcome);
            }
            trials += 1;
            let (same, result) = fails(&candidate);
            // Kept only if it fails the same way in no more events.
            if same && result.steps <= outcome.steps {
                (best, outcome, improved) = (candidate, result, true);
            }
        }
        if !improved {
            return (best, outcome);
        }
    }
}
