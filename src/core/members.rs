//! The configuration in force and what follows from it: who votes, what a quorum is, whom a
//! leader replicates to. The latest configuration entry in the log is in force, committed or
//! not (Raft thesis §4.1); with none, the bootstrap configuration (`Config::nodes` under
//! `Config::quorum`). A truncation that removes the latest entry puts the one before back in
//! force.

use super::io::Event;
use super::membership::Configuration;
use super::mutant::Mutant;
use super::quorum::Quorum;
use super::raft::Raft;
use super::replication::Progress;
use super::types::{LogId, NodeId, Seq, Time};
use smallvec::SmallVec;

impl Raft {
    /// The configuration in force, `None` for the bootstrap one.
    pub(super) fn configuration(&self) -> Option<&Configuration> {
        self.log.configuration().map(|(_, configuration)| configuration)
    }

    /// Whether the nodes for which `member` is true form a quorum of the configuration in
    /// force (of both parts while joint; learners never count).
    pub(super) fn is_quorum(&self, member: impl Fn(NodeId) -> bool) -> bool {
        if self.mutant(Mutant::QuorumRuleIgnored) {
            return self.voter_sets().iter().all(|voters| Quorum::Majority.is_quorum(voters, &member));
        }
        match self.configuration() {
            Some(configuration) => configuration.is_quorum(member),
            None => self.config.quorum.is_quorum(&self.bootstrap, member),
        }
    }

    /// Whether `votes` elect a leader: a quorum of the configuration in force.
    pub(super) fn is_election_quorum(&self, votes: &[NodeId]) -> bool {
        if let Some(Configuration::Joint { new, .. }) = self.configuration() {
            if self.mutant(super::mutant::Mutant::JointElectionNewOnly) {
                return new.is_quorum(|id| votes.contains(&id));
            }
        }
        self.is_quorum(|id| votes.contains(&id))
    }

    /// The highest seq a quorum of the configuration in force holds, given each node's
    /// highest matching seq.
    pub(super) fn quorum_point(&self, matched: impl Fn(NodeId) -> Option<Seq>) -> Option<Seq> {
        if self.mutant(Mutant::QuorumRuleIgnored) {
            let point = |voters: &&[NodeId]| {
                let matches: SmallVec<[(NodeId, Option<Seq>); 8]> =
                    voters.iter().map(|id| (*id, matched(*id))).collect();
                Quorum::Majority.commit_point(&matches)
            };
            return self.voter_sets().iter().map(point).min().flatten();
        }
        match self.configuration() {
            Some(configuration) => configuration.commit_point(matched),
            None => {
                let matches: SmallVec<[(NodeId, Option<Seq>); 8]> =
                    self.bootstrap.iter().map(|id| (*id, matched(*id))).collect();
                self.config.quorum.commit_point(&matches)
            }
        }
    }

    /// The voters of each part of the configuration in force (planted bug
    /// `QuorumRuleIgnored`, which counts a majority of them whatever the rule).
    fn voter_sets(&self) -> SmallVec<[&[NodeId]; 2]> {
        match self.configuration() {
            Some(configuration) => configuration.parts().map(|part| part.voters()).collect(),
            None => SmallVec::from_slice(&[&self.bootstrap[..]]),
        }
    }

    /// Whether `id` votes in the configuration in force.
    pub(super) fn is_voter(&self, id: NodeId) -> bool {
        match self.configuration() {
            Some(configuration) => configuration.is_voter(id),
            None => self.bootstrap.binary_search(&id).is_ok(),
        }
    }

    /// Whether a vote request from `from` is ignored as a removed node's (or a stranger's):
    /// the configuration in force is committed (the bootstrap one counts as committed) and
    /// does not list it, and a leader was heard from within the election timeout (without
    /// one, the request is answered as usual: this node's configuration may be older than the
    /// sender's).
    pub(super) fn removed_sender(&self, now: Time, from: NodeId) -> bool {
        let leader_heard = self.heard_leader(now);
        let stranger = match self.log.configuration() {
            Some((seq, configuration)) => Some(seq) <= self.known_committed() && !configuration.is_member(from),
            None => self.bootstrap.binary_search(&from).is_err(),
        };
        leader_heard && stranger && !self.mutant(super::mutant::Mutant::StrangerVotes)
    }

    /// Whether `from`, whose log ends at `last`, is a stranger to the bootstrap configuration
    /// with an empty log while that configuration is in force here (this log holds no
    /// configuration either): this node grants it no pre-vote and no vote. Nodes started with
    /// different bootstrap lists (an operator's mistake: new nodes given a grown list before
    /// the founders first elected a leader) would otherwise see each other's empty logs, each
    /// take the cluster for a new one, and form quorums of different configurations that need
    /// not intersect: say {4, 5} and founder 1 for {1..5}, founders 2 and 3 for {1, 2, 3}. A
    /// node with entries got them from a leader, whose first entry is a configuration: it may
    /// be a voter this node does not know yet, whose vote it may need (say this node lost its
    /// log and kept its old list).
    pub(super) fn empty_stranger(&self, from: NodeId, last: Option<LogId>) -> bool {
        last.is_none()
            && self.log.configuration().is_none()
            && !self.is_voter(from)
            && !self.mutant(Mutant::BootstrapStrangerVotes)
    }

    /// Whether this node starts elections: it votes in the configuration in force; or that
    /// configuration is not known committed and it voted in the one before (Raft thesis
    /// §4.2.2: it may still be needed to commit the new one; its own vote counts only where it
    /// is a voter); or, a learner, it turned down a candidate whose log was behind its own
    /// since it last heard from a leader (see below).
    pub(super) fn may_campaign(&self) -> bool {
        if self.is_voter(self.id) || self.refused_behind_candidate_since_leader() {
            return true;
        }
        let Some((seq, _)) = self.log.configuration() else { return false };
        if Some(seq) <= self.known_committed() {
            return false;
        }
        let mut configurations = self.log.configurations().rev();
        configurations.next();
        match configurations.next() {
            Some(previous) => previous.is_voter(self.id),
            None => self.bootstrap.binary_search(&self.id).is_ok(),
        }
    }

    /// Whether this node, a member but no voter, refused a (pre-)vote to a candidate whose log
    /// was behind its own since it last heard from a leader. It may then hold the only log
    /// that a quorum would elect: say a leader appended a configuration that makes it a voter,
    /// and lost leadership; the next leader's entry replaced that configuration on this node
    /// alone, and that leader crashed. The nodes that keep the configuration need this node's
    /// vote, which their logs cannot get, and the others' logs are behind theirs: without this
    /// node campaigning, no one would ever lead. Its campaign is safe as a removed voter's is:
    /// the quorum is of the voters of its configuration in force, without its own vote, and
    /// once its term's entry commits it hands leadership to a voter (`step_down_if_removed`).
    fn refused_behind_candidate_since_leader(&self) -> bool {
        let Some(refused) = self.refused_behind_candidate else { return false };
        if self.mutant(super::mutant::Mutant::LearnerNeverCampaigns) {
            return false;
        }
        self.last_leader_contact.is_none_or(|contact| contact < refused)
    }

    /// The highest seq known committed, across restarts (the commit hint).
    fn known_committed(&self) -> Option<Seq> {
        self.commit.max(self.hard_state.commit)
    }

    /// Brings the members, the peers and a leader's progress in line with the configuration
    /// entries and the commit point. Call after the log's configurations or the commit point
    /// changed; cheap when neither touched a configuration.
    pub(super) fn sync_configuration(&mut self) {
        self.log.forget_configs_before(self.commit);
        self.save_committed_configuration();
        let first_uncommitted = self.log.configuration_seqs().find(|seq| Some(*seq) > self.commit);
        let version = (self.log.configs_version(), first_uncommitted);
        if self.configs_seen == Some(version) {
            return;
        }
        self.configs_seen = Some(version);
        self.nodes = match self.configuration() {
            Some(configuration) => configuration.members(),
            None => self.bootstrap.clone(),
        };
        // A leader replicates to the members of every configuration not known committed and of
        // the last committed one, so that nodes a change removes receive the entry that
        // removes them (and its commit) and do not campaign.
        let mut targets = self.log.configurations().flat_map(Configuration::members).collect::<Vec<_>>();
        if self.log.configuration_seqs().next().is_none_or(|seq| Some(seq) > self.commit) {
            targets.extend_from_slice(&self.bootstrap);
        }
        targets.retain(|id| *id != self.id);
        targets.sort_unstable();
        targets.dedup();
        if targets != self.peers {
            self.set_peers(targets);
        }
        self.note_removal();
    }

    /// Saves the latest committed configuration apart from the log when it is newer than the
    /// one saved (a repair or a prefix removal may take the log's copy: see
    /// [`Write::Configuration`](super::Write::Configuration)).
    fn save_committed_configuration(&mut self) {
        let committed =
            self.log.configuration_seqs().zip(self.log.configurations()).filter(|(seq, _)| Some(*seq) <= self.commit);
        let Some((seq, _)) = committed.last() else { return };
        if Some(seq) <= self.saved_config {
            return;
        }
        let Some(entry) = self.log.configuration_entry_at(seq) else { return };
        self.saved_config = Some(seq);
        self.write(super::io::Write::Configuration(entry));
    }

    /// Replaces the peers; a leader keeps the progress of those that stay and starts probing
    /// new ones from its log's end. A peer that leaves is sent the commit point first.
    fn set_peers(&mut self, peers: Vec<NodeId>) {
        let (now, next) = (self.now, self.log.next_seq());
        let leaving: SmallVec<[NodeId; 4]> = self.peers.iter().copied().filter(|id| !peers.contains(id)).collect();
        if self.role.is_leader() {
            for id in &leaving {
                let index = self.peers.iter().position(|peer| peer == id).expect("a current peer");
                self.heartbeat_peer(index);
            }
        }
        if let Some(leading) = self.role.leading_mut() {
            let mut old = std::mem::take(&mut leading.progress);
            leading.progress = peers
                .iter()
                .map(|id| match old.iter().position(|p| p.id == *id) {
                    Some(at) => old.swap_remove(at),
                    None => Progress::new(*id, next, now),
                })
                .collect();
            self.heard_version += 1;
        }
        self.peers = peers;
        self.responsive_checked = None;
    }

    /// A node whose committed configuration no longer lists it says so, once (a node that
    /// joins later passes configurations without it first: it says nothing of those).
    fn note_removal(&mut self) {
        let Some((seq, configuration)) = self.log.configuration() else { return };
        let member = configuration.is_member(self.id);
        let removed = Some(seq) <= self.commit && !member && self.was_member;
        if removed && !self.removed {
            self.event(Event::Removed { id: self.id, seq });
        }
        self.was_member |= member;
        self.removed = removed;
    }

    /// Whether a committed configuration removed this node (see [`Event::Removed`]).
    pub fn is_removed(&self) -> bool {
        self.removed
    }
}
