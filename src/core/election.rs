//! Leader election (Raft §5.2, §5.4.1) with pre-vote and check-quorum (Raft thesis §9.6, §6.2).

use super::codec::configuration_bytes;
use super::durability::AfterWrite;
use super::io::{ClientError, Event};
use super::membership::Configuration;
use super::message::{AppendResult, Body, Message};
use super::mutant::Mutant;
use super::raft::Raft;
use super::replication::Progress;
use super::role::{LeaderState, RoleState, Votes};
use super::types::{LogId, NodeId, Payload, Term, Time};
use smallvec::SmallVec;

impl Raft {
    /// The election timer fired: ask for votes (first a pre-vote, when enabled).
    pub(super) fn election_timeout(&mut self, now: Time) {
        if self.writes.stalled {
            // A node whose storage stalled does not campaign until the write completes.
            self.reset_election_deadline(now);
            return;
        }
        if self.hard_state.term.0 == u64::MAX {
            // Only a peer could have pushed the term this far; there is no next term to use.
            self.reset_election_deadline(now);
            self.event(Event::Error("the term reached u64::MAX: this node cannot campaign".into()));
            return;
        }
        if self.withholds_vote() {
            return self.catching_up_timeout(now);
        }
        if !self.may_campaign() {
            // A learner (unless a candidate behind it asked for its vote: see `may_campaign`),
            // or a node a committed configuration no longer lists, does not campaign.
            self.reset_election_deadline(now);
            return;
        }
        if self.config.pre_vote && !self.mutant(Mutant::NoPreVote) {
            self.become_pre_candidate(now);
        } else {
            self.campaign(now, false);
        }
    }

    fn become_pre_candidate(&mut self, now: Time) {
        self.role = RoleState::PreCandidate(Votes::from_slice(&[self.id]));
        self.leader = None;
        self.reset_election_deadline(now);
        let proposed = Term(self.hard_state.term.0 + 1);
        let last = self.log.last();
        for to in self.peers.clone() {
            let message = Message { from: self.id, to, term: proposed, body: Body::PreVote { last } };
            self.emit(super::io::Output::Send(message));
        }
        if self.is_quorum(|id| id == self.id) {
            self.campaign(now, false);
        }
    }

    /// Raises the term, votes for itself and asks the others (Raft §5.2); `transfer`: the
    /// leader asked it to (see `transfer.rs`).
    pub(super) fn campaign(&mut self, now: Time, transfer: bool) {
        self.role = RoleState::Candidate(Votes::new());
        self.leader = None;
        self.hard_state.term = Term(self.hard_state.term.0 + 1);
        self.hard_state.vote = Some(self.id);
        self.save_hard_state();
        self.reset_election_deadline(now);
        let last = self.log.last();
        for to in self.peers.clone() {
            self.send(to, Body::Vote { last, transfer });
        }
        // Its own vote counts once it is durable, like anybody else's.
        if self.mutant(Mutant::SelfVoteBeforeFsync) {
            return self.record_vote(self.id);
        }
        self.after_writes(AfterWrite::SelfVote(self.hard_state.term));
    }

    /// Whether a candidate whose log ends at `last` is at least as up-to-date as this node
    /// (Raft §5.4.1): a later last term, or the same last term and at least as long.
    fn is_up_to_date(&self, last: Option<LogId>) -> bool {
        last >= self.log.last()
    }

    /// A member that is no voter notes a candidate whose log is behind its own: it may be the
    /// only node able to lead (see `may_campaign`).
    fn note_candidate_behind(&mut self, now: Time, up_to_date: bool) {
        if !up_to_date && !self.is_voter(self.id) && self.nodes.binary_search(&self.id).is_ok() {
            self.refused_behind_candidate = Some(now);
        }
    }

    pub(super) fn on_pre_vote(&mut self, now: Time, from: NodeId, term: Term, last: Option<LogId>) {
        // In a leader's lease the answer is no, with this node's term: a node catching up
        // learns the current term from such answers (see `rejoin.rs`).
        let up_to_date = self.is_up_to_date(last);
        self.note_candidate_behind(now, up_to_date);
        let granted = !self.in_lease(now)
            && term > self.hard_state.term
            && up_to_date
            && !self.withholds_vote()
            && !self.empty_stranger(from, last);
        let reply_term = if granted { term } else { self.hard_state.term };
        let body = Body::PreVoteResponse { granted, last: self.log.last() };
        let message = Message { from: self.id, to: from, term: reply_term, body };
        self.emit(super::io::Output::Send(message));
    }

    pub(super) fn on_pre_vote_response(
        &mut self,
        now: Time,
        from: NodeId,
        term: Term,
        granted: bool,
        last: Option<LogId>,
    ) {
        if !granted && term > self.hard_state.term {
            self.become_follower(now, term, None);
        }
        self.note_probe_answer(from, term, granted);
        if !granted || Some(term.0) != self.hard_state.term.0.checked_add(1) {
            return;
        }
        // A grant carries the peer's last entry: a catching-up node with an empty log learns
        // from its own probe, one round trip after it asks, whether the peer's log is empty too
        // (see `rejoin.rs`). Not from the grant alone: one of this term may answer a request of
        // this node's previous incarnation, whose log was not empty (seed 232917 of three
        // nodes). Refusals do not count (a peer refuses an empty stranger so that the stranger
        // does not count it: see `empty_stranger`), and a grant shows no term the peer saved.
        let last = if self.mutant(Mutant::GrantShowsEmptyLog) { None } else { last };
        self.note_peer_log(from, Term(0), last);
        let RoleState::PreCandidate(votes) = &mut self.role else { return };
        if !votes.contains(&from) {
            votes.push(from);
        }
        let votes = votes.clone();
        if self.is_election_quorum(&votes) {
            self.campaign(now, false);
        }
    }

    pub(super) fn on_vote(&mut self, now: Time, from: NodeId, last: Option<LogId>) {
        let vote = self.hard_state.vote;
        let can_vote = (vote == Some(from) || (vote.is_none() && self.leader.is_none())) && !self.withholds_vote();
        let up_to_date = self.is_up_to_date(last);
        self.note_candidate_behind(now, up_to_date);
        if can_vote && up_to_date && !self.empty_stranger(from, last) {
            if vote.is_none() {
                self.hard_state.vote = Some(from);
                self.save_hard_state();
            }
            self.reset_election_deadline(now);
            if self.mutant(Mutant::VoteBeforeFsync) {
                return self.send(from, Body::VoteResponse { granted: true });
            }
            let message = self.message(from, Body::VoteResponse { granted: true });
            // Never promise a vote before it is durable (the seed could vote twice in a term).
            self.after_writes(AfterWrite::Send(message));
        } else {
            self.send(from, Body::VoteResponse { granted: false });
        }
    }

    pub(super) fn on_vote_response(&mut self, from: NodeId, granted: bool) {
        if granted {
            self.record_vote(from);
        }
    }

    /// As candidate, counts a granted vote; with a quorum that includes its own vote (durable:
    /// see `campaign`), becomes leader. Without its own, a candidate that crashed before its
    /// term was durable could restart in the term before, campaign again in the same term, be
    /// granted the same votes again and lead that term twice, with different entries.
    pub(super) fn record_vote(&mut self, from: NodeId) {
        let RoleState::Candidate(votes) = &mut self.role else { return };
        if !votes.contains(&from) {
            votes.push(from);
        }
        let votes = votes.clone();
        if votes.contains(&self.id) && self.is_election_quorum(&votes) {
            self.become_leader();
        }
    }

    fn become_leader(&mut self) {
        // The vote that completes the quorum arrives in a step; its time is the deadline base.
        let now = self.now;
        self.leader = Some(self.id);
        self.heard_version += 1; // New progress: the responsive set is recomputed.
        self.last_leader_contact = Some(now);
        let next = self.log.next_seq();
        let progress = self.peers.iter().map(|id| Progress::new(*id, next, now)).collect();
        let heartbeat = super::raft::duration_nanos(self.config.heartbeat_interval());
        self.role = RoleState::Leader(Box::new(LeaderState {
            progress,
            heartbeat_deadline: now.plus(heartbeat),
            term_start: next,
            requests: Default::default(),
            snapshot_wake: None,
        }));
        // The seed's "null buffer": an entry of the new term, so earlier ones can commit.
        self.leader_append_entries(std::iter::once(self.first_entry_of_term()));
        self.broadcast_append();
        self.maybe_commit();
        self.redirect_forwarded(self.id);
        self.redispatch_waiting();
        self.transfer_outcome();
    }

    /// The entry a new leader appends first: a blank; or, while the bootstrap configuration is
    /// in force (the log and snapshot hold no configuration), that configuration, when an entry
    /// can carry it (a majority or groups quorum). Then every node that catches up learns the
    /// configuration the cluster has, not the one it was started with: a node that joined with
    /// itself among `Config::nodes` and caught up from a log without a configuration entry
    /// took itself for a voter, won an election and changed voters from a configuration the
    /// cluster never had (the simulator's seed 60075, four nodes). Etcd raft and openraft
    /// write the founding configuration into the log the same way.
    fn first_entry_of_term(&self) -> Payload {
        if self.configuration().is_some() || self.mutant(Mutant::FoundingConfigUnlogged) {
            return Payload::Blank;
        }
        match self.current_membership() {
            Ok(membership) => Payload::Config(configuration_bytes(&Configuration::Single(membership))),
            Err(_) => Payload::Blank,
        }
    }

    /// Follows `leader` (or nobody) in `term`, persisting a newer term.
    pub(super) fn become_follower(&mut self, now: Time, term: Term, leader: Option<NodeId>) {
        if term > self.hard_state.term {
            self.hard_state.term = term;
            self.hard_state.vote = None;
            self.save_hard_state();
        }
        let was = std::mem::replace(&mut self.role, RoleState::Follower);
        self.heard_version += 1;
        self.leader = leader;
        if leader.is_some() {
            self.last_leader_contact = Some(now);
        }
        self.reset_election_deadline(now);
        if let RoleState::Leader(mut leading) = was {
            let transfer = leading.requests.transfer.take();
            let change = leading.requests.change.take();
            self.fail_change(change, leader);
            self.fail_leader_requests(leading.requests, leader);
            if let Some(transfer) = transfer {
                self.stepped_down_transferring(transfer);
            }
        }
        self.transfer_outcome();
        if let Some(leader) = leader {
            self.redirect_forwarded(leader);
            self.redispatch_waiting();
        }
    }

    /// A message from an older term: tell the sender the current term so it steps down.
    pub(super) fn on_stale_message(&mut self, message: Message) {
        match message.body {
            Body::Append { prev, .. } => {
                let rejected = prev.map_or(super::types::Seq(0), |p| p.seq);
                let result = AppendResult::Rejected { rejected, hint: None };
                let incarnation = self.client.incarnation;
                self.send(message.from, Body::AppendResponse { read_round: 0, result, incarnation });
            }
            Body::Vote { .. } => self.send(message.from, Body::VoteResponse { granted: false }),
            _ => {}
        }
    }

    /// The leader's periodic duty: check it still has a quorum, then heartbeat everyone.
    pub(super) fn heartbeat_tick(&mut self, now: Time) {
        let window = super::raft::duration_nanos(self.config.ping_timeout);
        let RoleState::Leader(leading) = &mut self.role else { return };
        leading.heartbeat_deadline = now.plus(super::raft::duration_nanos(self.config.heartbeat_interval()));
        let answered: SmallVec<[NodeId; 8]> =
            leading.progress.iter().filter(|p| p.answered_within(now, window)).map(|p| p.id).collect();
        if self.config.check_quorum && !self.is_quorum(|id| id == self.id || answered.contains(&id)) {
            self.event(Event::Warn(format!(
                "leader {} stepping down in term {}: no quorum answered within ping_timeout",
                self.id, self.hard_state.term
            )));
            let term = self.hard_state.term;
            self.become_follower(now, term, None);
            return;
        }
        self.last_leader_contact = Some(now);
        for index in 0..self.peers.len() {
            self.heartbeat_peer(index);
        }
        self.maybe_transfer_for_priority(now);
        self.advance_change();
    }

    /// Builds a message from this node in the current term.
    pub(super) fn message(&self, to: NodeId, body: Body) -> Message {
        Message { from: self.id, to, term: self.hard_state.term, body }
    }

    /// Answers every request a leader was tracking when it stops leading.
    fn fail_leader_requests(&mut self, requests: super::client::LeaderRequests, leader: Option<NodeId>) {
        for pending in requests.appends {
            self.reply(pending.origin, Err(ClientError::LeaderChanged));
        }
        for read in requests.reads {
            self.reply(read.origin, Err(ClientError::NotLeader { leader }));
        }
        for read in requests.ready_reads {
            self.reply(read.origin, Err(ClientError::NotLeader { leader }));
        }
    }
}
