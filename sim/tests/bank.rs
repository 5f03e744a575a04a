//! A user's own state machine under the simulator (the bank of `examples/bank`): the correct
//! bank passes under faults, and the bank with a planted snapshot bug is found, shrunk to a
//! smaller run failing the same way, and reported (text and HTML) naming what went wrong.

#[path = "../examples/bank/bank.rs"]
mod bank;

use tinyraftplus_sim::lincheck::{Completion, Operation};
use tinyraftplus_sim::shrink::shrink;
use tinyraftplus_sim::{report, Options};

/// The first failing seed below `limit`, with its outcome.
fn first_failure(buggy: bool, limit: u64, options: &Options) -> Option<tinyraftplus_sim::Outcome> {
    let simulation = bank::simulation(buggy);
    (0..limit).map(|seed| simulation.run(seed, options)).find(|outcome| outcome.failure.is_some())
}

#[test]
fn the_bank_keeps_its_money_under_faults() {
    let simulation = bank::simulation(false);
    let options = Options::default();
    for seed in 0..150 {
        let outcome = simulation.run(seed, &options);
        assert!(outcome.failure.is_none(), "seed {seed}: {:?}", outcome.failure);
        let answered = outcome.history.iter().filter(|op| op.returned().is_some()).count();
        assert!(answered > 0, "seed {seed}: no operation completed");
    }
}

#[test]
fn a_bank_whose_restore_keeps_stale_balances_is_found_shrunk_and_reported() {
    let options = Options::default();
    let found = first_failure(true, 400, &options).expect("the planted bug is found in 400 seeds");
    let failure = found.failure.clone().expect("failed");
    println!(
        "found: seed {} fails {} in {} events: {}",
        found.seed,
        failure.invariant(),
        found.steps,
        failure.detail()
    );
    // The same seeds pass without the bug: the failure is the bug's.
    assert!(bank::simulation(false).run(found.seed, &options).failure.is_none());

    let simulation = bank::simulation(true);
    let shrunk = shrink(&simulation, found.seed, &options, failure.invariant(), 60);
    let shrunk_failure = shrunk.outcome.failure.clone().expect("the shrunk run fails");
    assert_eq!(shrunk_failure.invariant(), failure.invariant());
    let faults = |outcome: &tinyraftplus_sim::Outcome| outcome.faults.values().sum::<u64>();
    assert!(faults(&shrunk.outcome) < faults(&found), "fewer faults");
    assert!(shrunk.outcome.steps <= found.steps * 3 / 2, "hardly longer");
    println!(
        "shrunk: {} -> {} events, {} -> {} faults ({} ops, without {:?})",
        found.steps,
        shrunk.outcome.steps,
        faults(&found),
        faults(&shrunk.outcome),
        shrunk.options.ops,
        shrunk.options.disabled
    );

    let traced = simulation.run_script(found.seed, &Options { trace: true, ..shrunk.options.clone() }, shrunk.script);
    assert_eq!(traced.digest, shrunk.outcome.digest, "a traced replay is the same run");
    let text = report::text(&traced, &traced.trace);
    let page = report::html(simulation.name(), &traced);
    assert!(page.contains(&format!("FAIL {}", failure.invariant())));
    if traced.linearizability.is_none() {
        // The planted bug is in restoring: the report shows the restores.
        assert!(text.contains("snapshots restored and installed:") && text.contains(": restore snapshot"), "{text}");
    }
    if let Some(violation) = &traced.linearizability {
        for (index, _) in &violation.culprits {
            let op: &Operation = &traced.history[*index];
            assert!(text.contains(&format!("#{} client {}", op.request, op.client)), "{text}");
            assert!(page.contains(&format!("<td>#{}</td>", op.request)));
        }
    }
    println!("{text}");
}

#[test]
fn the_history_file_records_what_unanswered_transfers_did() {
    let simulation = bank::simulation(false);
    let outcome = (0..50)
        .map(|seed| simulation.run(seed, &Options::default()))
        .find(|outcome| outcome.history.iter().any(|op| matches!(op.completion, Completion::Applied { .. })))
        .expect("some seed has a transfer applied whose client never heard back");
    let path = std::env::temp_dir().join(format!("bank-history-{}.jsonl", std::process::id()));
    report::write_history(path.to_str().unwrap(), &outcome.history).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(text.lines().count(), outcome.history.len());
    let applied = text.lines().find(|line| line.contains("\"status\": \"applied\"")).expect("an applied line");
    assert!(
        applied.contains("\"response\": \"ok\"") || applied.contains("\"response\": \"insufficient\""),
        "{applied}"
    );
    // Its return is when a node first applied it: after it was invoked.
    let number = |field: &str| -> u64 {
        let after = applied.split(&format!("\"{field}\": ")).nth(1).expect(field);
        after.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().expect(field)
    };
    assert!(number("return_ns") > number("invoke_ns"), "{applied}");
    // Its witness is where the log holds it (an even position: after the reads before it), as
    // the history in memory has it.
    let op = outcome.history.iter().find(|op| matches!(op.completion, Completion::Applied { .. })).expect("applied");
    assert_eq!(Some(number("witness")), op.witness);
    assert_eq!(op.witness.map(|w| w % 2), Some(0), "{applied}");
    // The simulator's own check of the same history passes.
    assert_eq!(simulation.check(&outcome.history), Ok(()));
}

#[test]
fn bank_seeds_that_once_failed_pass() {
    // 427 and 751, unbounded: after a forced rejoin, a node whose log holds no configuration
    // was asked to add a learner; the simulator expected the voters of the cluster's newest
    // configuration (from before the rejoin) instead of the bootstrap voters in force on that
    // node, and reported a correct answer as a broken change reply.
    let options = Options { regime: tinyraftplus_sim::Regime::Unbounded, ..Options::default() };
    for seed in [427, 751] {
        let outcome = bank::simulation(false).run(seed, &options);
        assert!(outcome.failure.is_none(), "seed {seed}: {:?}", outcome.failure);
    }
}
