//! A node that lost data rejoins as a catching-up member (see [`HardState::catching_up`]).
//!
//! Raft assumes a disk never forgets. When one does (a wiped or new directory, a log cut by a
//! repair, a lost term-and-vote file), the node may have acknowledged entries or granted votes
//! it no longer remembers. Were it to vote at once, an entry committed on it and one other node
//! of three could be lost: the node votes for the third, which lacks the entry. So it waits:
//!
//! - it grants no vote and does not campaign;
//! - it takes no entries (so it acknowledges none) until it knows the current term: it may have
//!   promised a later term than any leader it now hears from (a vote, or an acknowledgement in
//!   it), and a stale leader could otherwise commit with its help. It asks every peer with a
//!   pre-vote request, whose refusals carry the peer's term; once the peers that answered meet
//!   every quorum that has this node in it, its term is at least any it could have promised;
//! - then it takes entries from a leader like any follower, and its acknowledgements count;
//! - a leader that finds a follower lacking entries it had acknowledged (its storage went back
//!   without noticing) tells it to catch up too (`CatchUp`);
//! - it votes again once its log holds the leader's commit point and that point is an entry of
//!   the leader's own term: a leader's commit point in its own term covers every entry
//!   committed in earlier terms, as the leader holds them all (Raft §5.4), and entries committed
//!   in the current term count only acknowledgements this leader received.
//!
//! A brand-new cluster has no leader to catch up with: every node's storage is new. A
//! catching-up node with an empty log therefore also rejoins once it has seen every peer's log
//! empty (their pre-vote and vote requests carry their last entry, and it sends such requests
//! itself to let them see its own; a peer's grant of its own probe carries the peer's last
//! entry too: not the grant alone, which may answer a request its previous incarnation made in
//! the same term, with a log that was not empty). Were any entry committed, it would be on a
//! quorum, and the nodes of that quorum other than this one would not all be empty. This
//! assumes a message is not delayed past the restart of the node it is sent to, and that the
//! peers share its bootstrap list: a node whose list lacks this one grants its empty log no
//! pre-vote while that list is in force (see `empty_stranger`), so nodes started with a grown
//! list do not take founders that have not yet elected anyone for a new cluster of their own.
//!
//! [`HardState::catching_up`]: super::HardState::catching_up

use super::durability::AfterWrite;
use super::io::{Event, Output};
use super::message::{Body, Message};
use super::mutant::Mutant;
use super::raft::Raft;
use super::types::{Entry, LogId, NodeId, Seq, Term, Time};
use smallvec::SmallVec;

/// After this many election timeouts without a leader, a catching-up node reports that it may
/// be waiting for data no reachable node has.
const QUIET_TIMEOUTS_REPORTED: u32 = 10;

/// What a catching-up node learns on its way back; forgotten when it rejoins or restarts.
#[derive(Debug, Default)]
pub(super) struct Rejoining {
    /// The peers that answered a term probe of this incarnation.
    probe_answers: SmallVec<[NodeId; 8]>,
    /// Whether those answers meet every quorum with this node in it, so that its term is at
    /// least any it may have promised before it lost data.
    pub(super) term_confirmed: bool,
    /// With an empty log: the peers seen with an empty log too.
    empty_peers: SmallVec<[NodeId; 8]>,
    /// The latest term those peers showed they had saved.
    peer_term_max: Term,
    /// Election timeouts in a row with no leader heard.
    quiet_timeouts: u32,
}

/// Entries known committed that storage kept past damage (`Recovered::evidence`), not yet
/// matched by a leader's entries.
#[derive(Debug, Default)]
pub(super) struct Evidence {
    /// Ascending by seq, each with its `Entry::digest`.
    entries: Vec<(LogId, u64)>,
    /// The term in which a leader's entries were last refused (said once per term).
    refused_in: Option<Term>,
}

impl Evidence {
    pub(super) fn new(entries: Vec<(LogId, u64)>) -> Evidence {
        Evidence { entries, refused_in: None }
    }
}

impl Raft {
    /// Whether this node withholds its vote (and does not campaign): it is catching up.
    pub(super) fn withholds_vote(&self) -> bool {
        self.hard_state.catching_up && !self.mutant(Mutant::CatchingUpVotes)
    }

    /// The election timer fired on a catching-up node: it does not campaign, but with an
    /// empty log it shows the peers its log (a pre-vote request changes no one's state), so
    /// that in a brand-new cluster every node learns that every log is empty.
    pub(super) fn catching_up_timeout(&mut self, now: Time) {
        self.reset_election_deadline(now);
        let timeout = super::raft::duration_nanos(self.config.election_timeout);
        let heard = self.last_leader_contact.is_some_and(|at| now.since(at) < 2 * timeout);
        self.rejoining.quiet_timeouts = if heard { 0 } else { self.rejoining.quiet_timeouts.saturating_add(1) };
        if self.rejoining.quiet_timeouts == QUIET_TIMEOUTS_REPORTED {
            let end = self.log.last().map_or("empty".to_string(), |last| format!("ends at seq {}", last.seq));
            self.event(Event::Error(format!(
                "node {} has been catching up for {QUIET_TIMEOUTS_REPORTED} election timeouts without a leader \
                 catching it up (one must, after enough peers answered to show the current term; its log {end}): \
                 if a quorum of nodes lost data, no leader can be elected without risking committed entries, so \
                 the cluster waits. To accept that risk, clear this node's catching-up flag \
                 (FsLog::save_hard_state with catching_up false) and restart it",
                self.id
            )));
        }
        self.probe_term();
    }

    /// Asks every peer for its term with a pre-vote request (answered with the peer's term when
    /// refused), until the answers show the current term; with an empty log, also so that in a
    /// brand-new cluster every node sees that every log is empty. A node alone in its cluster
    /// has nobody to catch up from: it rejoins at once.
    pub(super) fn probe_term(&mut self) {
        if self.peers.is_empty() {
            if !self.evidence.entries.is_empty() {
                // Nobody can send it the committed entries it knows it lost: starting over would
                // replace them. It stays out until an operator accepts the loss.
                return self.event(Event::Error(format!(
                    "node {} is alone in its cluster and lost committed entries it cannot get back; it stays \
                     catching up (clear the flag to accept the loss)",
                    self.id
                )));
            }
            self.rejoining.term_confirmed = true;
            return self.rejoin("it is alone in its cluster".into());
        }
        if self.rejoining.term_confirmed && self.log.last().is_some() {
            return;
        }
        let (proposed, last) = (Term(self.hard_state.term.0.saturating_add(1)), self.log.last());
        let answered = if self.rejoining.term_confirmed { &[][..] } else { &self.rejoining.probe_answers[..] };
        let unanswered: SmallVec<[NodeId; 8]> = self.peers.iter().copied().filter(|p| !answered.contains(p)).collect();
        for to in unanswered {
            let message = Message { from: self.id, to, term: proposed, body: Body::PreVote { last } };
            self.emit(Output::Send(message));
        }
    }

    /// A peer answered a pre-vote request. While catching up, the answers of this incarnation
    /// tell the current term: a refusal carries the peer's term (adopted if higher), a grant is
    /// for the term this node proposed, one past its own, so the peer's is at most its own.
    /// Once the answering peers meet every quorum that has this node in it, its term is at least
    /// any such quorum reached, including any it promised before it lost data: it may take
    /// entries again.
    pub(super) fn note_probe_answer(&mut self, from: NodeId, term: Term, granted: bool) {
        if !self.hard_state.catching_up || self.rejoining.term_confirmed {
            return;
        }
        if granted && term.0 != self.hard_state.term.0.saturating_add(1) {
            return; // An answer to an older request.
        }
        if !self.rejoining.probe_answers.contains(&from) {
            self.rejoining.probe_answers.push(from);
        }
        // A node that alone is a quorum of its configuration (in a log it may have outgrown:
        // it is catching up) learns nothing more from further answers: one is enough. Else it
        // would wait for ever and ignore the leader that can catch it up.
        let alone = self.is_quorum(|id| id == self.id);
        self.rejoining.term_confirmed =
            alone || !self.is_quorum(|id| id == self.id || !self.rejoining.probe_answers.contains(&id));
    }

    /// A peer's pre-vote or vote request showed its last entry, and that its durable term is
    /// at least `term`. A catching-up node with an empty log that has seen every peer's log
    /// empty is in a brand-new cluster: it rejoins.
    pub(super) fn note_peer_log(&mut self, from: NodeId, term: Term, last: Option<LogId>) {
        // A log that had a prefix removed was never a new cluster's, even with no entry left.
        let empty = self.log.last().is_none() && self.log.first() == Seq(0) && self.evidence.entries.is_empty();
        if !self.hard_state.catching_up || last.is_some() || !empty {
            return;
        }
        if !self.rejoining.empty_peers.contains(&from) {
            self.rejoining.empty_peers.push(from);
        }
        self.rejoining.peer_term_max = self.rejoining.peer_term_max.max(term);
        if self.peers.iter().all(|peer| self.rejoining.empty_peers.contains(peer)) {
            // It may have voted before it lost its storage, in a term no later than a peer's
            // (a candidate saves its term before asking): it takes the latest such term, and
            // holds its vote in it for itself.
            if self.rejoining.peer_term_max > self.hard_state.term {
                self.hard_state.term = self.rejoining.peer_term_max;
                self.hard_state.vote = None;
            }
            self.hard_state.vote.get_or_insert(self.id);
            self.rejoin("its storage is new and every peer's log is empty (a new cluster)".into());
        }
    }

    /// A catching-up follower accepted an append up to `matched`: once its log holds the
    /// leader's commit point, in the leader's term, it rejoins when those entries are durable.
    pub(super) fn maybe_caught_up(&mut self, term: Term, leader_commit: Option<Seq>, matched: Option<Seq>) {
        let Some(commit) = leader_commit else { return };
        if self.hard_state.catching_up && Some(commit) <= matched && self.log.term_at(commit) == Some(term) {
            self.after_writes(AfterWrite::CaughtUp(term, commit));
        }
    }

    /// The entries up to the commit point `commit` of the leader of `term` are durable here.
    pub(super) fn caught_up(&mut self, term: Term, commit: Seq) {
        if !self.hard_state.catching_up || self.hard_state.term != term {
            return; // Rejoined already, or a later term began: the next leader's appends decide.
        }
        let Some(leader) = self.leader else { return };
        if !self.evidence.entries.is_empty() {
            // It knows committed entries past its log that this leader has not sent yet (maybe
            // lacks): it may not vote, nor lead and append over them, until they are verified.
            return;
        }
        // It may have voted in this term before it lost its storage: its vote in it goes to
        // the leader, which cannot make a second leader.
        self.hard_state.vote.get_or_insert(leader);
        self.rejoin(format!("it caught up with leader {leader}'s commit point {commit}"));
    }

    /// Tells a follower that lacks entries it had acknowledged to catch up, until it holds the
    /// commit point `commit` (the one when that was found).
    pub(super) fn send_catch_up(&mut self, to: NodeId, commit: Seq) {
        let commit = self.log.id_at(commit);
        self.send(to, Body::CatchUp { commit });
    }

    /// The leader of this term found this node lacking entries it had acknowledged (unless the
    /// node holds the leader's commit point by now: the message is late).
    pub(super) fn on_catch_up(&mut self, leader: NodeId, commit: Option<LogId>) {
        let holds_commit = commit.is_none_or(|id| self.log.has(id));
        if self.leader != Some(leader) || self.hard_state.catching_up || holds_commit {
            return;
        }
        self.hard_state.catching_up = true;
        // Its storage kept its term and vote; only entries went missing.
        self.rejoining.term_confirmed = true;
        self.save_hard_state();
        self.event(Event::Warn(format!(
            "node {} lacks entries it had acknowledged (leader {leader} says): catching up before it votes again",
            self.id
        )));
    }

    /// Forgets the evidence at or below `seq`: a snapshot from the leader covers it.
    pub(super) fn evidence_forget_through(&mut self, seq: Seq) {
        self.evidence.entries.retain(|(id, _)| id.seq > seq);
    }

    /// Whether `entries`, new to this node's log, contradict an entry it knows committed and
    /// kept past damage to its log (its evidence): one at the same seq with another term or
    /// digest, or one before it with a later term (terms never decrease along a log, so that
    /// leader's log lacks the committed entry). Then the node refuses them, with an error event
    /// naming the seqs, and does not acknowledge them: a leader whose log lacks a committed
    /// entry can only come from data lost on a majority and an operator's forced rejoin, and
    /// adopting its entries would replace committed data. Evidence that matches is dropped:
    /// those seqs are verified.
    pub(super) fn contradicts_evidence(&mut self, from: NodeId, entries: &[Entry]) -> bool {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else { return false };
        let evidence = &self.evidence.entries;
        let mut next = evidence.partition_point(|(id, _)| id.seq < first.seq);
        let mut contradicted: Vec<Seq> = Vec::new();
        for entry in entries {
            while evidence.get(next).is_some_and(|(id, _)| id.seq < entry.seq) {
                next += 1;
            }
            let Some(&(id, digest)) = evidence.get(next) else { break };
            let differs = match id.seq == entry.seq {
                true => entry.term != id.term || entry.digest() != digest,
                false => entry.term > id.term,
            };
            if differs {
                contradicted.push(entry.seq);
            }
        }
        if !contradicted.is_empty() && !self.mutant(Mutant::AcceptContradictingRepair) {
            if self.evidence.refused_in.replace(self.hard_state.term) == Some(self.hard_state.term) {
                return true; // Said already in this term.
            }
            let shown: Vec<String> = contradicted.iter().take(8).map(ToString::to_string).collect();
            let more = match contradicted.len() > 8 {
                true => format!(" and {} more", contradicted.len() - 8),
                false => String::new(),
            };
            self.event(Event::Error(format!(
                "node {} refuses entries from leader {from}: seqs {}{more} contradict entries it holds as committed \
                 (kept past damage to its log); it takes nothing from this leader. A leader without committed \
                 entries can only come from data lost on a majority of nodes and a forced rejoin",
                self.id,
                shown.join(", ")
            )));
            return true;
        }
        let verified = self.evidence.entries.partition_point(|(id, _)| id.seq <= last.seq);
        self.evidence.entries.drain(..verified);
        false
    }

    fn rejoin(&mut self, why: String) {
        self.hard_state.catching_up = false;
        self.rejoining = Rejoining::default();
        self.save_hard_state();
        self.event(Event::Warn(format!("node {} votes again: {why}", self.id)));
    }
}
