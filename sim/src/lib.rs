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
pub mod shrink;
pub mod swarm;
mod world;

pub use swarm::{Options, Regime, Swarm, FAULT_CLASSES};
pub use world::{Failure, Outcome, World};

pub use tinyraftplus::core::Mutant;

/// The name of a planted bug on the command line.
pub fn mutant_name(mutant: Mutant) -> &'static str {
    match mutant {
        Mutant::AckBeforeFsync => "ack_before_fsync",
        Mutant::VoteBeforeFsync => "vote_before_fsync",
        Mutant::CommitPreviousTerm => "commit_previous_term",
        Mutant::TruncateOnStaleAppend => "truncate_on_stale_append",
        Mutant::ReadWithoutLeadership => "read_without_leadership",
        Mutant::NoPreVote => "no_pre_vote",
        Mutant::ReadErrorAsEndOfLog => "read_error_as_end_of_log",
        Mutant::ApplyPastGap => "apply_past_gap",
        Mutant::CatchingUpVotes => "catching_up_votes",
        Mutant::CatchingUpAcks => "catching_up_acks",
        Mutant::IgnoreRegressedFollower => "ignore_regressed_follower",
        Mutant::AcceptContradictingRepair => "accept_contradicting_repair",
        Mutant::TransferReplyEarly => "transfer_reply_early",
        Mutant::SingleStepChange => "single_step_change",
        Mutant::JointElectionNewOnly => "joint_election_new_only",
        Mutant::LeaveJointEarly => "leave_joint_early",
        Mutant::ChangeBeforeOwnCommit => "change_before_own_commit",
        Mutant::InstallOverNewer => "install_over_newer",
        Mutant::PrefixBeforeSnapshot => "prefix_before_snapshot",
        Mutant::SnapshotPastApplied => "snapshot_past_applied",
        Mutant::ResumeSkipsChunk => "resume_skips_chunk",
    }
}

/// The planted bug with this name.
pub fn mutant_named(name: &str) -> Option<Mutant> {
    Mutant::ALL.into_iter().find(|m| mutant_name(*m) == name)
}

/// Runs one seed.
pub fn run(seed: u64, options: &Options) -> Outcome {
    World::new(seed, options.clone()).run()
}
