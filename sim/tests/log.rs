//! The built-in `log` simulation: a log that is the product, compacted by the empty snapshots of
//! the library's `LogOnly` state machine. Its seeds pass; no run of it strands a node (only its
//! runs drawn without a state machine, class `log_only`, may); and planted snapshot bugs fail
//! it, so its snapshots are checked as the counters' are, and so does a stateless machine
//! applying past the commit point (a bug only `LogOnly` can have).

use tinyraftplus_sim::{mutant_name, Mutant, Options, Simulation};

/// Runs `seeds` of the log simulation; returns the failures and the seeds that ended with the
/// voters stranded, each with whether it ran without a state machine.
fn sweep(seeds: std::ops::Range<u64>, options: &Options) -> (Vec<String>, Vec<(u64, bool)>) {
    let simulation = Simulation::log();
    let (mut failures, mut stranded) = (Vec::new(), Vec::new());
    for seed in seeds {
        let outcome = simulation.run(seed, options);
        if let Some(failure) = &outcome.failure {
            failures.push(format!("FAIL {} seed={seed}: {}", failure.invariant(), failure.detail()));
        }
        if let Some(undecided) = &outcome.undecided {
            failures.push(format!("UNDECIDED seed={seed}: {undecided}"));
        }
        if outcome.faults.contains_key("quorum_stranded") {
            stranded.push((seed, outcome.faults.contains_key("log_only")));
        }
    }
    (failures, stranded)
}

#[test]
fn log_seeds_pass_and_only_runs_without_a_state_machine_strand() {
    let (mut failures, mut stranded) = sweep(0..800, &Options::default());
    let (more, more_stranded) = sweep(0..600, &Options { nodes: 3, ..Options::default() });
    failures.extend(more);
    stranded.extend(more_stranded);
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    let compacted: Vec<u64> = stranded.iter().filter(|(_, log_only)| !log_only).map(|(seed, _)| *seed).collect();
    assert_eq!(compacted, [], "runs with LogOnly's snapshots that stranded their voters");
}

#[test]
fn planted_snapshot_bugs_fail_log_runs() {
    let expected = [
        (Mutant::InstallOverNewer, "snapshot_rollback"),
        (Mutant::SnapshotPastApplied, "snapshot_at_applied"),
        (Mutant::PrefixBeforeSnapshot, "prefix_covered"),
        (Mutant::StatelessPastCommit, "apply_in_order"),
    ];
    let simulation = Simulation::log();
    for (mutant, invariant) in expected {
        let options = Options { mutant: Some(mutant), ..Options::default() };
        let failure = (0..1000).find_map(|seed| simulation.run(seed, &options).failure);
        let failure = failure.unwrap_or_else(|| panic!("{} passes 1,000 log seeds", mutant_name(mutant)));
        assert_eq!(failure.invariant(), invariant, "{}", mutant_name(mutant));
    }
}
