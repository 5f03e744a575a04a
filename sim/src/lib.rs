//! tinyraftplus-sim: a seeded, deterministic discrete-event simulator for tinyraftplus.
//!
//! One seed decides everything: the fault mix (swarm testing), every latency, loss, crash,
//! partition, pause and disk fault, every client operation. The same seed gives the same run,
//! event for event (a digest of the run proves it). Nodes run the real core; their disks hold
//! real record bytes and recover through the real recovery code. Safety invariants are
//! checked after every step, linearizability of the clients' history at the end, and liveness
//! after the faults heal.
//!
//! The nodes run a state machine of yours (the drivers' [`StateMachine`](models::StateMachine)
//! trait) under a [`Workload`](models::Workload) of yours, and the history is checked against a
//! [`Model`](lincheck::Model) of yours: see [`Simulation`]. [`cli::Cli`] gives your simulation
//! the simulator's whole command line (many seeds, replay, shrinking, reports).

pub mod check;
pub mod cli;
pub mod disk;
pub mod lincheck;
pub mod models;
pub mod quorums;
pub mod random;
pub mod replay;
pub mod report;
pub mod schedule;
pub mod shrink;
mod simulation;
pub mod swarm;
mod world;

pub use random::{Decisions, Random, Script};
pub use simulation::Simulation;
pub use swarm::{classes_since, Options, Regime, Swarm, FAULT_CLASSES};
pub use world::{Failure, Outcome, World};

#[cfg(feature = "mutants")]
pub use tinyraftplus::core::Mutant;

/// The name of a planted bug on the command line.
#[cfg(feature = "mutants")]
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
        Mutant::StaysJoint => "stays_joint",
        Mutant::CloseDropsForwarded => "close_drops_forwarded",
        Mutant::ForcedPastSnapshot => "forced_past_snapshot",
        Mutant::PrefixBaseForgotten => "prefix_base_forgotten",
        Mutant::UnknownBaseRejected => "unknown_base_rejected",
        Mutant::StrandedUnheard => "stranded_unheard",
        Mutant::StrandedPromoted => "stranded_promoted",
        Mutant::TransferToLearner => "transfer_to_learner",
        Mutant::LostStateIgnored => "lost_state_ignored",
        Mutant::StatelessPastCommit => "stateless_past_commit",
        Mutant::CatchingUpTakesVoteTerm => "catching_up_takes_vote_term",
        Mutant::ChangeBeforeOwnCommit => "change_before_own_commit",
        Mutant::InstallOverNewer => "install_over_newer",
        Mutant::PrefixBeforeSnapshot => "prefix_before_snapshot",
        Mutant::SnapshotPastApplied => "snapshot_past_applied",
        Mutant::ResumeSkipsChunk => "resume_skips_chunk",
        Mutant::SelfVoteBeforeFsync => "self_vote_before_fsync",
        Mutant::ForgetWaitingRequests => "forget_waiting_requests",
        Mutant::RecycleKeepsSalt => "recycle_keeps_salt",
        Mutant::SendAfterEarlierWrite => "send_after_earlier_write",
        Mutant::StrangerVotes => "stranger_votes",
        Mutant::LearnerNeverCampaigns => "learner_never_campaigns",
        Mutant::HealthyCatchingUp => "healthy_catching_up",
        Mutant::StaleForwardTaken => "stale_forward_taken",
        Mutant::FoundingConfigUnlogged => "founding_config_unlogged",
        Mutant::QuorumRuleIgnored => "quorum_rule_ignored",
        Mutant::BootstrapStrangerVotes => "bootstrap_stranger_votes",
        Mutant::GrantShowsEmptyLog => "grant_shows_empty_log",
        Mutant::ReadIndexBeforeTermCommit => "read_index_before_term_commit",
        Mutant::LogOnlyAppliesUncommitted => "log_only_applies_uncommitted",
        Mutant::EmptiedLogVotes => "emptied_log_votes",
    }
}

/// The planted bug with this name.
#[cfg(feature = "mutants")]
pub fn mutant_named(name: &str) -> Option<Mutant> {
    Mutant::ALL.into_iter().find(|m| mutant_name(*m) == name)
}

/// Runs one seed of the built-in counter simulation.
pub fn run(seed: u64, options: &Options) -> Outcome {
    Simulation::counter().run(seed, options)
}
