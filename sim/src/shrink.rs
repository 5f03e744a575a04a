//! Shrinking a failing run, in two stages, keeping each change while the run still fails the
//! same invariant:
//!
//! 1. **Parameters**: with the same seed, fault classes off one by one, fewer client operations,
//!    less faulty time, fewer clients, fewer nodes (each kept in no more events). A change moves
//!    every later random draw, so the smaller run is a different run that fails the same way.
//! 2. **Events**: the run's random decisions are recorded, and the decisions that fired a
//!    chance (a fault, a lost or delayed message, a crash) are turned off by delta debugging,
//!    in runs of halving length, replaying the rest as recorded; a change is kept when the run
//!    still fails the same invariant with fewer chances fired, in at most half again the
//!    events it started with. Then client operations are cut the same way (a cut operation is
//!    not issued; its client goes on to the next). What is left is a run with only the faults
//!    and operations the failure needs; its decisions and cuts replay it bit for bit
//!    (`--replay FILE`).

use crate::random::{Decisions, Script, NEVER};
use crate::swarm::{Options, FAULT_CLASSES};
use crate::{Outcome, Simulation};

/// A smaller failing run: its options and the decisions that replay it, with its outcome.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The options (parameters) of the smaller run.
    pub options: Options,
    /// Its decisions and cut operations ([`Simulation::run_script`] with these replays it
    /// exactly).
    pub script: Script,
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

/// How many faults fired in a run.
fn fault_count(outcome: &Outcome) -> u64 {
    outcome.faults.values().sum()
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
            // Kept only if it fails the same way in no more events and with no more faults
            // (a fault class turned off can shorten a run while another class fires more).
            let calmer = fault_count(&result) <= fault_count(&outcome);
            if fails(&result, invariant) && result.steps <= outcome.steps && calmer {
                (best, outcome, improved) = (candidate, result, true);
            }
        }
        if !improved {
            return (best, outcome);
        }
    }
}

/// Stage 2: the run of `seed` with `options`, with as few of its chances firing and as few of
/// its client operations as the failure needs, after at most `budget` trial runs for each.
pub fn shrink_events(simulation: &Simulation, seed: u64, options: &Options, invariant: &str, budget: usize) -> Shrunk {
    let options = Options { record: true, ..options.clone() };
    let mut outcome = simulation.run(seed, &options);
    let limit = outcome.steps + outcome.steps / 2;
    // Faults: the chances that fired, turned off.
    let fired = |outcome: &Outcome| -> Vec<u64> {
        let fired = decisions(outcome).fired.iter().enumerate().filter(|(_, fired)| **fired);
        fired.map(|(i, _)| i as u64).collect()
    };
    let chances_off = |outcome: &Outcome, cut: &[u64]| {
        let mut values = decisions(outcome).values.clone();
        for index in cut {
            values[*index as usize] = NEVER;
        }
        Script::from(values)
    };
    let mut trials = 0;
    outcome = delta_debug(&mut trials, budget, outcome, fired, |outcome, cut| {
        let result = simulation.run_script(seed, &options, chances_off(outcome, cut));
        // One that always fires stays; no fault kind may fire more in all.
        let fewer = fired(&result).len() < fired(outcome).len() && fault_count(&result) <= fault_count(outcome);
        (fewer && fails(&result, invariant) && result.steps <= limit).then_some(result)
    });
    // Operations: cut, the rest of the run replayed as recorded.
    let cuts = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let operations = |outcome: &Outcome| -> Vec<u64> {
        (0..decisions(outcome).operations).filter(|op| !cuts.borrow().contains(op)).collect()
    };
    let mut trials = 0;
    outcome = delta_debug(&mut trials, budget, outcome, operations, |outcome, cut| {
        let mut trial = cuts.borrow().clone();
        trial.extend(cut.iter().copied());
        let script =
            Script { decisions: decisions(outcome).values.clone(), skipped: trial.clone(), after_setup: false };
        let result = simulation.run_script(seed, &options, script);
        let calmer = fired(&result).len() <= fired(outcome).len() && fault_count(&result) <= fault_count(outcome);
        let kept = calmer && fails(&result, invariant) && result.steps <= limit && result.digest != outcome.digest;
        kept.then(|| {
            *cuts.borrow_mut() = trial;
            result
        })
    });
    let script =
        Script { decisions: decisions(&outcome).values.clone(), skipped: cuts.into_inner(), after_setup: false };
    Shrunk { options: Options { record: false, ..options }, script, outcome }
}

/// The decisions a recorded run made.
fn decisions(outcome: &Outcome) -> &Decisions {
    outcome.decisions.as_ref().expect("recorded")
}

/// Delta debugging over the `candidates` of a run: tries cutting runs of them, halving their
/// length down to one; `cut` makes the run with some cut, or says it no longer fails.
fn delta_debug(
    trials: &mut usize,
    budget: usize,
    mut outcome: Outcome,
    candidates: impl Fn(&Outcome) -> Vec<u64>,
    mut cut: impl FnMut(&Outcome, &[u64]) -> Option<Outcome>,
) -> Outcome {
    let mut chunk = candidates(&outcome).len().div_ceil(2).max(1);
    while chunk > 0 {
        let mut start = 0;
        loop {
            let now = candidates(&outcome);
            if start >= now.len() || *trials >= budget {
                break;
            }
            *trials += 1;
            let end = (start + chunk).min(now.len());
            match cut(&outcome, &now[start..end]) {
                Some(smaller) => outcome = smaller, // The same start now points at later ones.
                None => start = end,
            }
        }
        if *trials >= budget {
            break;
        }
        chunk /= 2;
    }
    outcome
}
