//! Raft's safety properties, checked as the run goes (after every step that could break one).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound::{Excluded, Unbounded};
use tinyraftplus::core::codec::decode_configuration;
use tinyraftplus::core::{Configuration, Entry, HardState, LogId, Membership, NodeId, Payload, Raft, Role, Seq, Term};

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The invariant's name (one word, for the FAIL line).
    pub invariant: &'static str,
    /// What happened.
    pub detail: String,
}

type Checked = Result<(), Violation>;

fn fail(invariant: &'static str, detail: String) -> Checked {
    Err(Violation { invariant, detail })
}

/// The state the checks need, across nodes and restarts.
#[derive(Debug, Default)]
pub struct Checker {
    /// The leader of each term.
    leaders: BTreeMap<Term, NodeId>,
    /// The node seen sending appends in each term: its leader, also when it led only within
    /// one step (elected and deposed by inputs handled together: no change event shows it).
    appending: BTreeMap<Term, NodeId>,
    /// Each node's granted vote in each term.
    votes: BTreeMap<(NodeId, Term), NodeId>,
    /// Every entry known committed, with the lowest term of a node that reported it committed.
    committed: BTreeMap<Seq, (Term, Payload, Term)>,
    /// Every entry applied by some node.
    applied: BTreeMap<Seq, (Term, Payload)>,
    /// Each node's highest durable term, across restarts.
    durable_terms: BTreeMap<NodeId, Term>,
    /// The terms in which each node granted a vote that could count, or was elected, before it
    /// lost its disk, each with its candidate (itself if it led): the promises it forgot that a
    /// stale leader could otherwise get around.
    forgotten: BTreeMap<NodeId, BTreeMap<Term, NodeId>>,
    /// The votes a node's disk forgot (granted before it was wiped): it may vote again in those
    /// terms, once. Its catching up makes its term at least any that a quorum with it reached,
    /// not any it voted in: a second leader is what must not happen (`election_safety`), and a
    /// candidate that won with the forgotten vote binds it (`ack_in_forgotten_term`).
    revotable: BTreeSet<(NodeId, Term)>,
    /// Acknowledgements a node gave in a term below a forgotten promise whose candidate has not
    /// been elected (yet): (node, term of the acknowledgement, term of the promise).
    suspect_acks: BTreeSet<(NodeId, Term, Term)>,
    /// Each node's commit point in its current incarnation.
    commits: BTreeMap<NodeId, Seq>,
    /// The highest commit point any node reported.
    highest_commit: Option<Seq>,
    /// Each node's last applied seq in its current incarnation.
    last_applied: BTreeMap<NodeId, Seq>,
    /// The granted votes that could count toward their candidate's election (see `vote`).
    counted: BTreeSet<(NodeId, Term)>,
    /// Every vote each node made durable: (node, term) -> candidate.
    durable_votes: BTreeMap<(NodeId, Term), NodeId>,
    /// Every append a client was told succeeded: its seq and payload.
    acknowledged: Vec<(Seq, bytes::Bytes)>,
    /// Whether an operator forced nodes that lost data to rejoin: committed entries may be lost
    /// for good, so the checks that assume none is (marked "not after a forced rejoin") stop.
    forced: bool,
    /// Each repaired node's evidence: entries known committed it kept past damage (id and
    /// digest), which its log must never contradict.
    evidence: BTreeMap<NodeId, Vec<(LogId, u64)>>,
    /// The state machine's state (a digest) after each applied seq, as the first node to apply
    /// it reported.
    states: BTreeMap<Seq, (u64, NodeId)>,
    /// The committed configurations by seq; the initial one at none.
    configs: BTreeMap<Option<Seq>, Configuration>,
}

impl Checker {
    /// The configuration the cluster starts with: the founders, with the seed's quorum groups
    /// (a count or a custom rule is no membership: no configuration entry follows it).
    pub fn initial_configuration(&mut self, initial: Membership) {
        self.configs.insert(None, Configuration::Single(initial));
    }

    /// A configuration committed at `seq`: it follows the committed one before it the only
    /// safe way (Raft thesis §4.3): from a single configuration C to joint (C, D), from joint
    /// (C, D) to D alone, or to one with the same voters and quorum rule (learners changed).
    fn committed_config(&mut self, seq: Seq, configuration: Configuration) -> Checked {
        let before = self.configs.range(..Some(seq)).next_back().map(|(_, c)| c);
        let same_voting = |a: &Membership, b: &Membership| a.voters() == b.voters() && a.groups() == b.groups();
        let safe = match (before, &configuration) {
            (None, _) => true,
            (Some(Configuration::Single(c)), Configuration::Single(d)) => same_voting(c, d),
            (Some(Configuration::Single(c)), Configuration::Joint { old, .. }) => same_voting(c, old),
            (Some(Configuration::Joint { new, .. }), Configuration::Single(d)) => same_voting(new, d),
            (Some(Configuration::Joint { .. }), Configuration::Joint { .. }) => false,
        };
        if !safe {
            let before = before.map_or("none".to_string(), |c| c.to_string());
            return fail(
                "config_transition",
                format!("configuration {configuration} committed at {seq} right after {before}: voters changed without a joint configuration"),
            );
        }
        self.configs.insert(Some(seq), configuration);
        Ok(())
    }

    /// The latest configuration an entry committed; `None` while the founders' configuration,
    /// which no entry carries, is in force (its rule is the seed's, which may be a count or a
    /// custom rule: see `World::founders_rule`).
    pub fn committed_configuration(&self) -> Option<&Configuration> {
        self.configs.iter().next_back().filter(|(seq, _)| seq.is_some()).map(|(_, configuration)| configuration)
    }

    /// The configuration some node reported committed at `seq`.
    pub fn committed_configuration_at(&self, seq: Seq) -> Option<&Configuration> {
        self.configs.get(&Some(seq))
    }

    /// How many entries are known committed.
    pub fn committed(&self) -> usize {
        self.committed.len()
    }

    /// An operator forced nodes that lost data to rejoin (they vote at once): from now on,
    /// committed entries may be lost, and only the checks that do not assume otherwise run.
    pub fn forced_rejoin(&mut self) {
        self.forced = true;
    }

    /// A leader transfer was answered "transferred to `to`" by a node that led `term`: `to`
    /// must have led a later term.
    pub fn transferred(&self, to: NodeId, term: Term) -> Checked {
        let later = Term(term.0.saturating_add(1))..;
        let led = |leaders: &BTreeMap<Term, NodeId>| leaders.range(later.clone()).any(|(_, leader)| *leader == to);
        match led(&self.leaders) || led(&self.appending) {
            true => Ok(()),
            false => fail(
                "transfer_reply",
                format!("a transfer from the leader of term {term} said {to} took over; it never led since"),
            ),
        }
    }

    /// The candidate `voter` granted its vote to in `term`, if any.
    pub fn voted_for(&self, voter: NodeId, term: Term) -> Option<NodeId> {
        self.votes.get(&(voter, term)).copied()
    }

    /// Whether an operator forced a rejoin in this run.
    pub fn is_forced(&self) -> bool {
        self.forced
    }

    /// A repair kept `evidence` on `node`: entries known committed past the damage (with what
    /// an earlier repair kept).
    pub fn repaired(&mut self, node: NodeId, evidence: Vec<(LogId, u64)>) {
        let all = self.evidence.entry(node).or_default();
        all.extend(evidence);
        all.sort_by_key(|(id, _)| id.seq);
        all.dedup_by_key(|(id, _)| id.seq);
    }

    /// `node`'s log lost its entries from `from` on (cut, or a segment lost). Evidence the log
    /// had covered (verified, so dropped from the evidence file) is gone with those entries:
    /// the node cannot know it any more. What its evidence file still holds, `kept`, stays.
    pub fn log_cut(&mut self, node: NodeId, from: Seq, kept: &[(LogId, u64)]) {
        if let Some(evidence) = self.evidence.get_mut(&node) {
            evidence.retain(|entry| entry.0.seq < from || kept.contains(entry));
        }
    }

    /// Entries became durable on `node`: none contradicts the evidence its repair kept (an
    /// entry at an evidence seq is the same entry; one before it has no later term, as terms
    /// never decrease along a log). Holds even after a forced rejoin: that is when it matters.
    pub fn durable_entries(&self, node: NodeId, entries: &[Entry]) -> Checked {
        let Some(evidence) = self.evidence.get(&node) else { return Ok(()) };
        for entry in entries {
            let next = evidence.partition_point(|(id, _)| id.seq < entry.seq);
            let Some((id, digest)) = evidence.get(next) else { continue };
            let contradicts = match id.seq == entry.seq {
                true => id.term != entry.term || *digest != entry.digest(),
                false => entry.term > id.term,
            };
            if contradicts {
                return fail(
                    "repair_keeps_committed",
                    format!("{node} wrote {} where its repair kept committed {} as evidence", entry.id(), id),
                );
            }
        }
        Ok(())
    }

    /// A node lost its disk: its durable term starts over (its votes are still checked: it
    /// must not vote twice in a term across the loss either).
    pub fn wiped(&mut self, node: NodeId) {
        self.durable_terms.remove(&node);
        self.evidence.remove(&node);
        let voted = self.counted.iter().filter(|(voter, _)| *voter == node).map(|key| (key.1, self.votes[key]));
        let led = self.leaders.iter().filter(|(_, leader)| **leader == node).map(|(term, _)| (*term, node));
        let promises: Vec<(Term, NodeId)> = voted.chain(led).collect();
        self.forgotten.entry(node).or_default().extend(promises);
        self.revotable.extend(self.votes.keys().filter(|(voter, _)| *voter == node));
    }

    /// A node restarted: its volatile commit and apply points start over.
    pub fn restarted(&mut self, node: NodeId, applied_from: Option<Seq>) {
        self.commits.remove(&node);
        self.last_applied.remove(&node);
        if let Some(seq) = applied_from {
            self.last_applied.insert(node, seq);
        }
    }

    /// At most one leader per term; a newly elected leader holds every committed entry (a
    /// leader of an old term, cut off, may still report changes: it is not checked again).
    /// Returns whether this is the leader's first report (its election).
    pub fn leader(&mut self, node: NodeId, term: Term, raft: &Raft) -> Result<bool, Violation> {
        match self.leaders.insert(term, node) {
            // A node forced back after losing its votes may vote twice in a term.
            Some(other) if other != node && self.forced => return Ok(false),
            Some(other) if other != node => {
                return Err(Violation {
                    invariant: "election_safety",
                    detail: format!("{node} and {other} both lead term {term}"),
                });
            }
            Some(_) => return Ok(false),
            None => {}
        }
        let promised_to = |acker: &NodeId| self.forgotten.get(acker).and_then(|promises| promises.get(&term));
        let broken = self
            .suspect_acks
            .iter()
            .find(|(acker, _, promised)| *promised == term && promised_to(acker) == Some(&node));
        if let Some((acker, acked, _)) = broken.filter(|_| !self.forced) {
            let detail = forgotten_ack(*acker, *acked, term, node);
            return Err(Violation { invariant: "ack_in_forgotten_term", detail });
        }
        // Raft's Leader Completeness: entries committed in a term hold in the leaders of later
        // terms. (A leader of an older term can be elected late, from delayed votes.) Not
        // after a forced rejoin.
        let binding = self.committed.iter().filter(|(_, (_, _, during))| !self.forced && *during < term);
        let first = raft.first_seq();
        for (seq, (committed_term, _, _)) in binding.filter(|(seq, _)| **seq >= first) {
            if raft.term_at(*seq) != Some(*committed_term) {
                let held = raft.term_at(*seq).map_or("nothing".into(), |t| format!("term {t}"));
                return Err(Violation {
                    invariant: "leader_completeness",
                    detail: format!(
                        "leader {node} of term {term} has {held} at committed seq {seq} (term {committed_term})"
                    ),
                });
            }
        }
        Ok(true)
    }

    /// At most one vote per node per term, and only once it is durable (it may have been
    /// superseded on disk since, by a later term: the answer was held until the write was done).
    /// `counts`: whether the vote can count toward the candidate's election (see
    /// `World::vote_counts`); only such a vote binds the node once its disk forgets it.
    pub fn vote(&mut self, node: NodeId, term: Term, candidate: NodeId, counts: bool) -> Checked {
        if counts {
            self.counted.insert((node, term));
        }
        let forgotten = self.revotable.remove(&(node, term));
        let twice = self.votes.insert((node, term), candidate).filter(|other| *other != candidate && !self.forced);
        let twice = twice.filter(|_| !forgotten);
        if let Some(other) = twice {
            return fail("one_vote_per_term", format!("{node} voted for {other} and {candidate} in term {term}"));
        }
        if self.durable_votes.get(&(node, term)) != Some(&candidate) {
            return fail("ack_after_durable", format!("{node} granted its vote in term {term} before saving it"));
        }
        Ok(())
    }

    /// A node that lost its disk never acknowledges entries in a term below one in which it had
    /// granted its vote to the leader elected in it, or led: a stale leader could commit with its
    /// help what the leader of that term lacks. (Its own vote in a term nobody else took up
    /// binds no one, nor a vote its candidate could not count, see `vote`, nor one for a
    /// candidate never elected: an acknowledgement below it fails once the candidate is.)
    /// Not after a forced rejoin (the operator made such nodes vote at once).
    pub fn ack_term(&mut self, node: NodeId, term: Term) -> Checked {
        let Some(forgotten) = self.forgotten.get(&node).filter(|_| !self.forced) else { return Ok(()) };
        for (promised, candidate) in forgotten.range((Excluded(term), Unbounded)) {
            if self.leaders.get(promised) == Some(candidate) {
                return fail("ack_in_forgotten_term", forgotten_ack(node, term, *promised, *candidate));
            }
            self.suspect_acks.insert((node, term, *promised));
        }
        Ok(())
    }

    /// `node` sent appends in `term`: it led that term.
    pub fn appended(&mut self, node: NodeId, term: Term) {
        self.appending.entry(term).or_insert(node);
    }

    /// An acknowledgement of entries up to `matched` only once they are durable.
    pub fn append_ack(&self, node: NodeId, matched: Option<Seq>, durable_len: u64) -> Checked {
        match matched {
            Some(seq) if seq.0 >= durable_len => fail(
                "ack_after_durable",
                format!("{node} acknowledged entries up to {seq} with only {durable_len} durable"),
            ),
            _ => Ok(()),
        }
    }

    /// A leader never truncates its own log.
    pub fn truncate(&self, node: NodeId, role: Role, from: Seq) -> Checked {
        match role {
            Role::Leader => fail("leader_append_only", format!("leader {node} truncates its log from {from}")),
            _ => Ok(()),
        }
    }

    /// The durable term never goes back, across restarts.
    pub fn durable(&mut self, node: NodeId, state: HardState) -> Checked {
        if let Some(vote) = state.vote {
            self.durable_votes.insert((node, state.term), vote);
        }
        let before = self.durable_terms.insert(node, state.term).unwrap_or_default();
        if state.term < before {
            return fail("term_monotonic", format!("{node} saved term {} after {before}", state.term));
        }
        Ok(())
    }

    /// The commit point never goes back within a run of a node; committed entries never change.
    /// `stored` reads the node's log, on its disk for entries no longer in the core's memory.
    pub fn commit(&mut self, node: NodeId, seq: Seq, raft: &Raft, stored: impl Fn(Seq) -> Option<Entry>) -> Checked {
        let before = self.commits.insert(node, seq);
        self.highest_commit = self.highest_commit.max(Some(seq));
        if before.is_some_and(|before| seq < before) {
            return fail("commit_monotonic", format!("{node} moved its commit from {} to {seq}", before.unwrap()));
        }
        let from = before.map_or(0, |b| b.0 + 1);
        for s in from..=seq.0 {
            let Some(entry) = raft.entry(Seq(s)).cloned().or_else(|| stored(Seq(s))) else { continue };
            self.committed_entry(node, &entry, raft.term())?;
        }
        Ok(())
    }

    /// Committed entries never change (not after a forced rejoin).
    fn committed_entry(&mut self, node: NodeId, entry: &Entry, during: Term) -> Checked {
        if self.forced {
            return Ok(());
        }
        match self.committed.get_mut(&entry.seq) {
            Some((term, payload, _)) if *term != entry.term || *payload != entry.payload => fail(
                "committed_entry_changed",
                format!("{node} committed {} in term {} where term {term} was committed", entry.seq, entry.term),
            ),
            Some((_, _, first_during)) => {
                *first_during = (*first_during).min(during);
                Ok(())
            }
            None => {
                self.committed.insert(entry.seq, (entry.term, entry.payload.clone(), during));
                match &entry.payload {
                    Payload::Config(bytes) => match decode_configuration(bytes) {
                        Ok(configuration) => self.committed_config(entry.seq, configuration),
                        Err(error) => fail("config_entry", format!("committed {} does not decode: {error}", entry.seq)),
                    },
                    _ => Ok(()),
                }
            }
        }
    }

    /// Entries are applied in order, without gaps, and the same everywhere.
    pub fn apply(&mut self, node: NodeId, entries: &[Entry]) -> Checked {
        for entry in entries {
            let expected = Seq::after(self.last_applied.get(&node).copied());
            if entry.seq != expected {
                return fail("apply_in_order", format!("{node} applied {} where {expected} was next", entry.seq));
            }
            self.last_applied.insert(node, entry.seq);
            if self.forced {
                continue; // Nodes may apply different histories after a forced rejoin.
            }
            match self.applied.get(&entry.seq) {
                Some((term, payload)) if *term != entry.term || *payload != entry.payload => {
                    return fail(
                        "state_machine_safety",
                        format!(
                            "{node} applied {} of term {} where another node applied term {term}",
                            entry.seq, entry.term
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    self.applied.insert(entry.seq, (entry.term, entry.payload.clone()));
                }
            }
        }
        Ok(())
    }

    /// A node restored its state machine from a snapshot ending at `seq`: never back over
    /// what it applied since it started.
    pub fn restored(&mut self, node: NodeId, seq: Seq) -> Checked {
        if let Some(applied) = self.last_applied.get(&node).filter(|applied| **applied > seq) {
            return fail("snapshot_rollback", format!("{node} restored a snapshot at {seq} after applying {applied}"));
        }
        self.last_applied.insert(node, seq);
        Ok(())
    }

    /// Node `node`'s state machine reached state `digest` by applying up to `seq`: every node
    /// does at the same seq (state machine safety, by state; not after a forced rejoin).
    pub fn state(&mut self, node: NodeId, seq: Seq, digest: u64) -> Checked {
        if self.forced {
            return Ok(());
        }
        match self.states.get(&seq) {
            Some((known, first)) if *known != digest => {
                fail("state_machine_state", format!("{node}'s state after seq {seq} differs from {first}'s"))
            }
            Some(_) => Ok(()),
            None => {
                self.states.insert(seq, (digest, node));
                Ok(())
            }
        }
    }

    /// A node answered a snapshot asked for at `last`: the entry committed at that seq has that
    /// term (not after a forced rejoin).
    pub fn snapshot_answered(&self, node: NodeId, last: LogId) -> Checked {
        match self.committed.get(&last.seq) {
            _ if self.forced => Ok(()),
            Some((term, _, _)) if *term == last.term => Ok(()),
            found => {
                let found = found.map_or("none known".into(), |(term, _, _)| format!("one of term {term}"));
                fail(
                    "snapshot_reply",
                    format!("{node} answered a snapshot at {last}; the committed entry there is {found}"),
                )
            }
        }
    }

    /// The payload committed at `seq`, as the first node to report it committed held it.
    pub fn committed_payload(&self, seq: Seq) -> Option<&Payload> {
        self.committed.get(&seq).map(|(_, payload, _)| payload)
    }

    /// The highest commit point any node reported.
    pub fn highest_commit(&self) -> Option<Seq> {
        self.highest_commit
    }

    /// Whether `entry` is the one committed at its seq (as the first node to report it
    /// committed held it).
    pub fn is_committed(&self, entry: &Entry) -> bool {
        self.committed
            .get(&entry.seq)
            .is_some_and(|(term, payload, _)| *term == entry.term && *payload == entry.payload)
    }

    /// Without a state machine, a read is answered with a commit point (`seq`), which the
    /// reader then reads the log up to: some node must have committed that far (not after a
    /// forced rejoin).
    pub fn read_point(&self, seq: Option<Seq>) -> Checked {
        if self.forced || seq <= self.highest_commit {
            return Ok(());
        }
        let seq = seq.map_or("none".into(), |s| s.to_string());
        let highest = self.highest_commit.map_or("none".into(), |s| s.to_string());
        fail("read_past_commit", format!("a read was answered at {seq}, past every commit point (highest {highest})"))
    }

    /// A client was told its append is at `seq`: it must be committed there, for good.
    pub fn acknowledged(&mut self, seq: Seq, payload: &bytes::Bytes) -> Checked {
        if self.forced {
            return Ok(()); // Acknowledged entries may be lost after a forced rejoin.
        }
        self.acknowledged.push((seq, payload.clone()));
        let held = self.committed.get(&seq).map(|(_, p, _)| p).or_else(|| self.applied.get(&seq).map(|(_, p)| p));
        match held {
            Some(Payload::Data(data)) if data.as_ref() == payload => Ok(()),
            _ => fail("acknowledged_write_lost", format!("a client was told seq {seq}, which does not hold its entry")),
        }
    }
}

impl Checker {
    /// At the end: every acknowledged append is still where the client was told, in the log
    /// of the leader the cluster settled on (its log in memory, or `stored` on its disk).
    pub fn acknowledged_kept(&self, leader: NodeId, raft: &Raft, stored: impl Fn(Seq) -> Option<Entry>) -> Checked {
        if self.forced {
            return Ok(());
        }
        for (seq, payload) in &self.acknowledged {
            // Not there at all: removed with the prefix a snapshot covers.
            let Some(entry) = raft.entry(*seq).cloned().or_else(|| stored(*seq)) else { continue };
            if entry.payload.data() != Some(payload) {
                return fail(
                    "acknowledged_write_lost",
                    format!("leader {leader} no longer holds acknowledged seq {seq}"),
                );
            }
        }
        Ok(())
    }
}

/// Log matching: two logs that agree on an entry's term agree on everything before it.
pub fn log_matching(a: (NodeId, &Raft), b: (NodeId, &Raft)) -> Checked {
    let last = a.1.seq().min(b.1.seq());
    let Some(last) = last else { return Ok(()) };
    let mut agreed = false;
    let first = a.1.first_seq().max(b.1.first_seq());
    for seq in (first.0..=last.0).rev() {
        let (ta, tb) = (a.1.term_at(Seq(seq)), b.1.term_at(Seq(seq)));
        if ta == tb {
            agreed = true;
        } else if agreed {
            return fail("log_matching", format!("{} and {} agree after seq {seq} but not at it", a.0, b.0));
        }
    }
    Ok(())
}

fn forgotten_ack(node: NodeId, acked: Term, promised: Term, leader: NodeId) -> String {
    format!("{node} acknowledged entries in term {acked} after its disk forgot its vote in term {promised} for {leader}, elected")
}
