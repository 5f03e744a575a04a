//! Planted bugs (`tinyraftplus::core::Mutant`): the simulator must catch each within 5,000
//! seeds. This is what shows its checkers can fail. Prints the table of seeds needed.

use std::sync::atomic::{AtomicU64, Ordering};
use tinyraftplus_sim::{mutant_name, run, Mutant, Options, Regime};

const SEEDS: u64 = 5000;

/// The first seed (counting from 0) whose run fails with `mutant` planted, and the invariant.
/// A repair that takes entries contradicting what it kept shows only when a leader lacks
/// committed entries: after a majority lost data and an operator forced a rejoin, which only
/// the unbounded regime does.
fn first_failure(mutant: Mutant) -> Option<(u64, String)> {
    let regime = match mutant {
        Mutant::AcceptContradictingRepair => Regime::Unbounded,
        _ => Regime::Recoverable,
    };
    let options = Options { mutant: Some(mutant), regime, ..Options::default() };
    let found = AtomicU64::new(u64::MAX);
    let invariant = std::sync::Mutex::new(String::new());
    std::thread::scope(|scope| {
        for stripe in 0..2u64 {
            let (found, invariant, options) = (&found, &invariant, &options);
            scope.spawn(move || {
                let mut seed = stripe;
                while seed < SEEDS && seed < found.load(Ordering::Relaxed) {
                    if let Some(failure) = run(seed, options).failure {
                        if found.fetch_min(seed, Ordering::Relaxed) > seed {
                            *invariant.lock().unwrap() = failure.invariant().to_string();
                        }
                        return;
                    }
                    seed += 2;
                }
            });
        }
    });
    let seed = found.into_inner();
    (seed < SEEDS).then(|| (seed, invariant.into_inner().unwrap()))
}

#[test]
fn the_simulator_catches_planted_bugs() {
    let mut missed = Vec::new();
    println!("{:<28} {:>16}  invariant", "mutant", "seeds to catch");
    for mutant in Mutant::ALL {
        match first_failure(mutant) {
            Some((seed, invariant)) => println!("{:<28} {:>16}  {invariant}", mutant_name(mutant), seed + 1),
            None => {
                println!("{:<28} {:>16}", mutant_name(mutant), format!("not in {SEEDS}"));
                missed.push(mutant);
            }
        }
    }
    assert_eq!(missed, [], "mutants the simulator misses");
}

#[test]
fn a_failing_run_shrinks_to_a_smaller_one_that_fails_the_same_way() {
    let (seed, invariant) = first_failure(Mutant::ReadWithoutLeadership).expect("the stale-read bug is caught");
    let options = Options { mutant: Some(Mutant::ReadWithoutLeadership), ..Options::default() };
    let (smaller, outcome) = tinyraftplus_sim::shrink::shrink(seed, &options, &invariant, 300);
    assert_eq!(outcome.failure.expect("the smaller run fails").invariant(), invariant);
    assert!(smaller.ops < options.ops || !smaller.disabled.is_empty(), "something was cut");
    assert!(outcome.steps <= run(seed, &options).steps * 2, "a run of comparable size or smaller");
}
