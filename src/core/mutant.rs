//! Known bugs, planted on demand so the simulator can prove its checkers catch them. The switch
//! (`Config::mutant`) exists only with the `mutants` feature, which the simulator's tests use;
//! without it every check below is a constant `false` and compiles away, and the enum is not
//! exported (some variants are planted by the simulator, not the core).
#![cfg_attr(not(feature = "mutants"), allow(dead_code))]

/// A planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mutant {
    /// A follower acknowledges entries before they are durable.
    AckBeforeFsync,
    /// A node grants its vote before the vote is durable.
    VoteBeforeFsync,
    /// A leader commits an entry of an earlier term by counting replicas (Raft's Figure 8).
    CommitPreviousTerm,
    /// A follower truncates its log on a stale (already applied) append.
    TruncateOnStaleAppend,
    /// A leader serves reads without confirming it still leads.
    ReadWithoutLeadership,
    /// Elections without pre-vote and without the leader lease (a liveness bug).
    NoPreVote,
    /// A read error in the log at start is taken for its end (the entries after it vanish).
    ReadErrorAsEndOfLog,
    /// Entries are applied past a gap (one is skipped).
    ApplyPastGap,
    /// A node that lost its data (new, wiped or cut storage) votes and campaigns at once.
    CatchingUpVotes,
    /// A node that lost its data acknowledges entries (which count toward commit) before it
    /// has learned the current term: a stale leader's quorum can include it.
    CatchingUpAcks,
    /// A leader ignores a follower that rejects entries it had acknowledged (it went
    /// backwards), so the follower is never rebuilt (a liveness bug).
    IgnoreRegressedFollower,
    /// A node that kept entries known committed past damage to its log (its evidence) takes a
    /// leader's different entries at those seqs (the repair replaces committed data).
    AcceptContradictingRepair,
    /// A leader answers a leader transfer as done once it has told the target to campaign,
    /// before the target has won.
    TransferReplyEarly,
    /// A membership change replaces several voters in one step, without the joint
    /// configuration.
    SingleStepChange,
    /// While joint, elections count only the new configuration's quorum.
    JointElectionNewOnly,
    /// The leader leaves the joint configuration before it has committed.
    LeaveJointEarly,
    /// A new leader proposes a change before an entry of its own term commits, taking the
    /// configuration in its log for committed (the single-server bug from the Raft mailing
    /// list, 2015).
    ChangeBeforeOwnCommit,
    /// A follower installs a snapshot older than what its log holds (a delayed or duplicated
    /// chunk): its state rolls back.
    InstallOverNewer,
    /// The log prefix is removed when a snapshot is asked for, before it is durable.
    PrefixBeforeSnapshot,
    /// A snapshot is labelled with the commit point rather than the last entry applied.
    SnapshotPastApplied,
    /// A follower resuming an install takes a chunk past a gap (one was lost).
    ResumeSkipsChunk,
    /// A candidate counts its own vote before its new term and vote are durable: elected, then
    /// crashed before the write, it restarts in the term before and can lead the same term
    /// again with other entries, or vote for another candidate in it.
    SelfVoteBeforeFsync,
    /// A node that learns who leads drops the requests it held while no leader was known
    /// (they are never answered: a bug that only slows clients down).
    ForgetWaitingRequests,
    /// A segment file recycled for a new segment keeps its salt: the batches left from its
    /// earlier life still pass their checksums (planted in the simulator's disk, which shares
    /// the format and recovery with `FsLog`).
    RecycleKeepsSalt,
    /// A message that promises durability (a vote, an acknowledgement) is handed to the
    /// driver bound to the write before the one it waits for: it goes out once that earlier
    /// write is durable.
    SendAfterEarlierWrite,
    /// The removed-node defence is off: a node outside the committed configuration (one whose
    /// join was lost, or that missed its removal) deposes the leader with vote requests again
    /// and again (a liveness bug, with pre-vote and check-quorum off). It used to spare only
    /// the bootstrap configuration, which a first leader now writes into the log.
    StrangerVotes,
    /// A learner never campaigns, even one holding the only log a quorum would elect (a
    /// liveness bug: see `Raft::may_campaign`).
    LearnerNeverCampaigns,
    /// A leader counts a follower that says it is catching up (its rejoin is not durable yet)
    /// as healthy when it decides to enter a configuration: a crash of that follower then
    /// leaves the configuration's quorum needing nodes that do not vote (a liveness bug).
    HealthyCatchingUp,
    /// A leader takes a client request forwarded to the leader of an earlier term (a copy the
    /// network delivered late): after a restart, which forgets the forwards it took, it
    /// appends the request a second time.
    StaleForwardTaken,
    /// A new leader appends a blank even while the bootstrap configuration is in force, so
    /// the founding configuration is in no log: a node that joined with itself among its
    /// `Config::nodes` and caught up from such a log takes itself for a voter.
    FoundingConfigUnlogged,
    /// Elections and commits count a majority of the voters, whatever the quorum rule (groups,
    /// a count, a custom rule).
    QuorumRuleIgnored,
    /// A node whose bootstrap configuration is in force grants pre-votes and votes to nodes
    /// outside it with empty logs: nodes started with a larger list can take a cluster whose
    /// logs are all empty for a new one of their own.
    BootstrapStrangerVotes,
    /// A node whose log's prefix was removed, restarted with no entry and no snapshot (its
    /// snapshot files were lost), votes as a node with an empty log instead of one that lost
    /// data: it elects a candidate that lacks the committed entries it no longer holds.
    EmptiedLogVotes,
    /// A node catching up with an empty log takes a pre-vote grant for its probe's term as the
    /// granter's log being empty too, whatever last entry the grant carries: a grant answering
    /// a request of its previous incarnation then makes it rejoin a cluster that committed
    /// entries as if it were new.
    GrantShowsEmptyLog,
    /// Without a state machine (where a read waits for nothing to apply), a new leader answers
    /// reads with its commit point once a quorum confirms its leadership, before an entry of
    /// its own term commits: that commit point can lag one an earlier leader reached, and the
    /// reader misses appends already acknowledged.
    ReadIndexBeforeTermCommit,
    /// Without a state machine, entries count as applied once they are in the node's log, not
    /// once committed: a leader answers appends that no quorum holds yet.
    LogOnlyAppliesUncommitted,
    /// A leader never leaves a joint configuration once it commits: the change that entered
    /// it never completes, and the cluster decides by both voter sets for good (a liveness
    /// bug).
    StaysJoint,
    /// A closing node drops the requests it forwarded to the leader instead of answering them
    /// `Closed`: their clients wait until they give up.
    CloseDropsForwarded,
    /// A forced prefix removal skips the check that a durable snapshot covers it, as if
    /// `force` meant "whatever it takes": the node's log then starts past its snapshot, and the
    /// entries in between are gone from it.
    ForcedPastSnapshot,
    /// Without a state machine, a prefix removal has storage drop the entry the log continues
    /// from too: after a restart, the node no longer knows the term an append of its first
    /// entry names, and cannot send it (a liveness bug).
    PrefixBaseForgotten,
    /// A follower whose log does not know the term of the entry before its first (its storage
    /// lost the entry kept there) rejects an append naming that entry, after taking earlier
    /// ones as committed: the leader waits on it forever (a liveness bug).
    UnknownBaseRejected,
    /// A leader sends nothing to a follower that needs entries it removed: the follower never
    /// hears of its leader, and without pre-vote it campaigns forever (a liveness bug).
    StrandedUnheard,
    /// A leader makes a learner a voter although it needs entries the log no longer holds and
    /// there is no snapshot to send it: a voter that never votes counts in every quorum.
    StrandedPromoted,
    /// A leader hands leadership to a learner (asked to, or a change made the voter it was
    /// asked for one since): it wins (voters answer a transfer's vote requests), the client is
    /// answered that it leads, and it hands leadership on to a voter.
    TransferToLearner,
    /// A node whose snapshots are lost past its log's first entry applies from that entry with
    /// a fresh state machine, as if it kept no state (only `LogOnly` may).
    LostStateIgnored,
    /// A stateless machine over a log whose prefix went starts applying at the log's first
    /// entry as soon as it needs the removed ones, before the commit point reaches them:
    /// applied passes commit (and a snapshot installed next rolls it back).
    StatelessPastCommit,
    /// A node catching up takes the term of a vote request although it heard from a leader
    /// within the election timeout: a removed node campaigning with pre-vote off deposes each
    /// leader through a stranded node's next answer.
    CatchingUpTakesVoteTerm,
}

impl Mutant {
    /// Every planted bug.
    pub const ALL: [Mutant; 47] = [
        Mutant::AckBeforeFsync,
        Mutant::VoteBeforeFsync,
        Mutant::CommitPreviousTerm,
        Mutant::TruncateOnStaleAppend,
        Mutant::ReadWithoutLeadership,
        Mutant::NoPreVote,
        Mutant::ReadErrorAsEndOfLog,
        Mutant::ApplyPastGap,
        Mutant::CatchingUpVotes,
        Mutant::CatchingUpAcks,
        Mutant::IgnoreRegressedFollower,
        Mutant::AcceptContradictingRepair,
        Mutant::TransferReplyEarly,
        Mutant::SingleStepChange,
        Mutant::JointElectionNewOnly,
        Mutant::LeaveJointEarly,
        Mutant::ChangeBeforeOwnCommit,
        Mutant::InstallOverNewer,
        Mutant::PrefixBeforeSnapshot,
        Mutant::SnapshotPastApplied,
        Mutant::ResumeSkipsChunk,
        Mutant::SelfVoteBeforeFsync,
        Mutant::ForgetWaitingRequests,
        Mutant::RecycleKeepsSalt,
        Mutant::SendAfterEarlierWrite,
        Mutant::StrangerVotes,
        Mutant::LearnerNeverCampaigns,
        Mutant::HealthyCatchingUp,
        Mutant::StaleForwardTaken,
        Mutant::FoundingConfigUnlogged,
        Mutant::QuorumRuleIgnored,
        Mutant::BootstrapStrangerVotes,
        Mutant::GrantShowsEmptyLog,
        Mutant::ReadIndexBeforeTermCommit,
        Mutant::LogOnlyAppliesUncommitted,
        Mutant::StaysJoint,
        Mutant::CloseDropsForwarded,
        Mutant::ForcedPastSnapshot,
        Mutant::PrefixBaseForgotten,
        Mutant::UnknownBaseRejected,
        Mutant::StrandedUnheard,
        Mutant::StrandedPromoted,
        Mutant::TransferToLearner,
        Mutant::LostStateIgnored,
        Mutant::StatelessPastCommit,
        Mutant::CatchingUpTakesVoteTerm,
        Mutant::EmptiedLogVotes,
    ];
}

impl super::raft::Raft {
    /// Whether `mutant` is planted in this node.
    #[inline(always)]
    pub(crate) fn mutant(&self, mutant: Mutant) -> bool {
        #[cfg(feature = "mutants")]
        {
            self.config.mutant == Some(mutant)
        }
        #[cfg(not(feature = "mutants"))]
        {
            let _ = mutant;
            false
        }
    }
}
