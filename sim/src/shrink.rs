//! Shrinking a failing run, in two stages, keeping each change while the run still fails the
//! same invariant:
//!
//! 1. **Parameters**: with the same seed, fault classes off one by one, fewer client
//!    operations, less faulty time, fewer clients, fewer nodes (each kept in no more events). A change moves every later
//!    random draw, so the smaller run is a different run that fails the same way.
//! 2. **Events**: the run's random decisions are recorded, and the decisions that fired a
//!    chance (a fault, a lost or delayed message, a crash) are turned off by delta debugging,
//!    in runs of halving length, replaying the rest as recorded; a change is kept when the run
//!    still fails the same invariant with fewer chances fired, in at most half again the
//!    events it started with. What is left is a run with only the faults the failure needs; its
//!    decisions replay it bit for bit (`--replay FILE`).

use crate::random::NEVER;
use crate::swarm::{Options, FAULT_CLASSES};
use crate::{Outcome, Simulation};

/// A smaller failing run: its options and the decisions that replay it, with its outcome.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The options (parameters) of the smaller run.
    pub options: Options,
    /// Its decisions ([`Simulation::run_script`] with these replays it exactly).
    pub script: Vec<u64>,
    /// How it ended.
    pub outcome: Outcome,
}

/// Shrinks a run of `seed` that fails `invariant`, parameters first, then events, in at most
/// `budget` trial runs for each stage.
pub fn shrink(simulation: &Simulation, seed: u64, options: &Options, invariant: &str, budget: usize) -> Shrunk {
    let (options, _) = shrink_parameters(simulation, seed, options, invariant, budget);
    shrink_events(simulation, seed, &options, invariant, budget)
}

/// Whether `outcome` fails `invariant`.
fn fails(outcome: &Outcome, invariant: &str) -> bool {
    outcome.failure.as_ref().is_some_and(|f| f.invariant() == invariant)
}

/// Stage 1: a run with smaller parameters failing like `options` does (the options and its
/// outcome), after at most `budget` trial runs.
pub fn shrink_parameters(
    simulation: &Simulation,
    seed: u64,
    options: &Options,
    invariant: &str,
    budget: usize,
) -> (Options, Outcome) {
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
        if best.nodes > 1 {
            candidates.push(Options { nodes: best.nodes - 1, ..best.clone() });
        }
        for candidate in candidates {
            if trials >= budget {
                return (best, outcome);
            }
            trials += 1;
            let result = simulation.run(seed, &candidate);
            // Kept only if it fails the same way in no more events.
            if fails(&result, invariant) && result.steps <= outcome.steps {
                (best, outcome, improved) = (candidate, result, true);
            }
        }
        if !improved {
            return (best, outcome);
        }
    }
}

/// Stage 2: the run of `seed` with `options`, with as few of its chances firing as the failure
/// needs, after at most `budget` trial runs.
pub fn shrink_events(simulation: &Simulation, seed: u64, options: &Options, invariant: &str, budget: usize) -> Shrunk {
    let options = Options { record: true, ..options.clone() };
    let mut outcome = simulation.run(seed, &options);
    let limit = outcome.steps + outcome.steps / 2;
    let mut trials = 0;
    let chances = |outcome: &Outcome| -> Vec<usize> {
        let decisions = outcome.decisions.as_ref().expect("recorded");
        decisions.fired.iter().enumerate().filter(|(_, fired)| **fired).map(|(i, _)| i).collect()
    };
    let mut chunk = chances(&outcome).len().div_ceil(2).max(1);
    'chunks: while chunk > 0 {
        let mut start = 0;
        loop {
            let candidates = chances(&outcome);
            if start >= candidates.len() {
                break;
            }
            if trials >= budget {
                break 'chunks;
            }
            trials += 1;
            let end = (start + chunk).min(candidates.len());
            let mut script = outcome.decisions.as_ref().expect("recorded").values.clone();
            for index in &candidates[start..end] {
                script[*index] = NEVER;
            }
            let result = simulation.run_script(seed, &options, script);
            // Kept if fewer chances fired (one that always fires stays) and the run is not much
            // longer than the one this stage started from: fewer faults is worth a few events.
            let fewer = chances(&result).len() < candidates.len();
            if fewer && fails(&result, invariant) && result.steps <= limit {
                outcome = result; // The same run start now points at later chances.
            } else {
                start = end;
            }
        }
        chunk /= 2;
    }
    let script = outcome.decisions.as_ref().expect("recorded").values.clone();
    Shrunk { options: Options { record: false, ..options }, script, outcome }
}
