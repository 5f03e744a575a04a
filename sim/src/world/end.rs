//! The end of a run: whether the healed cluster settled (liveness), and the final safety checks
//! (log matching, acknowledged appends kept, linearizability).

use super::*;
use crate::lincheck::Verdict;
use tinyraftplus::core::Configuration;

impl World {
    /// Whether the healed cluster has settled: one leader, not in a joint configuration, every
    /// client's final read done, every node applied the same commit point (answering the same
    /// at every seq: checked as they apply), but for the ones the leader names stranded (see
    /// `stranded`).
    pub(super) fn settled(&self) -> bool {
        if !self.clients.iter().all(|c| c.settled) || self.now.since(self.max_term.1) < STABLE {
            return false;
        }
        // Nodes a change removed are left alone: nobody replicates to them.
        let members = self.current_members();
        let stranded = self.stranded();
        let healthy: Vec<&Node> = (0..self.nodes.len())
            .filter(|n| Some(*n) != self.isolated && members.contains(&self.nodes[*n].id))
            .map(|n| &self.nodes[n])
            .filter(|node| !stranded.contains(&node.id))
            .collect();
        let rafts: Vec<&Raft> = healthy.iter().filter_map(|n| n.raft.as_ref()).collect();
        let leaders = rafts.iter().filter(|r| r.is_leader()).count();
        let Some(commit) = rafts.first().map(|raft| raft.commit()) else { return false };
        // A joint configuration is left once it commits (Raft thesis §4.3), also by a new
        // leader and after the change that entered it failed: the leader must have left it.
        let single =
            rafts.iter().filter(|r| r.is_leader()).all(|r| !r.membership().is_some_and(Configuration::is_joint));
        leaders == 1 && single && rafts.iter().all(|r| r.commit() == commit && r.applied() == commit)
    }

    /// The nodes the leader names stranded (`Raft::stranded`: they need entries its log no
    /// longer holds, and it has no snapshot to send) that truly are: their logs lack the
    /// committed entry just before the leader's first (so they cannot take the leader's
    /// entries). A node named wrongly is not left out of `settled`: the run then fails for
    /// liveness.
    fn stranded(&self) -> Vec<NodeId> {
        let leaders: Vec<&Raft> = self.nodes.iter().filter_map(|n| n.raft.as_ref()).filter(|r| r.is_leader()).collect();
        let [leader] = leaders[..] else { return Vec::new() };
        let Some(before) = leader.first_seq().prev() else { return Vec::new() };
        let holds = |node: &Node| node.log_entry(before).is_some_and(|entry| self.checker.is_committed(&entry));
        let named = leader.stranded();
        self.nodes.iter().filter(|node| named.contains(&node.id) && !holds(node)).map(|node| node.id).collect()
    }

    /// The first seq node `node` needs from a leader: past the committed entries its log
    /// holds from its first on (those below its first are committed: removed, or covered by a
    /// snapshot).
    pub(super) fn needs_from(&self, node: &Node) -> Option<Seq> {
        let raft = node.raft.as_ref()?;
        let mut seq = raft.first_seq();
        while node.log_entry(seq).is_some_and(|entry| self.checker.is_committed(&entry)) {
            seq = Seq(seq.0 + 1);
        }
        Some(seq)
    }

    /// Without a state machine, the running nodes no other running node can catch up: every
    /// other's log starts past what they need (or just at it, without the term of the entry
    /// before). Prefix removals and lost data make them; nothing rebuilds them.
    fn hopeless(&self) -> Vec<NodeId> {
        let serves = |other: &Node, need: Seq| other.raft.as_ref().is_some_and(|raft| serves(raft, need));
        let hopeless = |node: &Node| {
            let Some(need) = self.needs_from(node) else { return false };
            let others = self.nodes.iter().filter(|other| other.id != node.id);
            let mut running = others.filter(|other| other.raft.is_some()).peekable();
            running.peek().is_some() && running.all(|other| !serves(other, need))
        };
        self.nodes.iter().filter(|node| hopeless(node)).map(|node| node.id).collect()
    }

    /// Whether the cluster cannot settle by design: without a state machine, the voters the
    /// leader names stranded and those no node can catch up, with the node left cut off, leave
    /// no quorum in the newest configuration. An operator's prefix removals, with lost data,
    /// can do that (the core warns of it); nothing but a snapshot could rebuild them.
    pub(super) fn quorum_stranded(&self) -> bool {
        if !self.swarm.log_only {
            return false;
        }
        let mut out: Vec<NodeId> = self.stranded();
        out.extend(self.hopeless());
        if out.is_empty() {
            return false;
        }
        out.extend(self.isolated.map(|n| self.nodes[n].id));
        out.extend(self.nodes.iter().filter(|node| node.raft.is_none()).map(|node| node.id));
        let parts = match self.newest() {
            Some(configuration) => Rule::parts(configuration),
            None => vec![self.founders_rule()],
        };
        !parts.iter().all(|part| part.is_quorum(|id| !out.contains(&id)))
    }

    pub(super) fn unsettled(&self) -> String {
        let mut text = String::from("not settled after healing:");
        for node in &self.nodes {
            match &node.raft {
                Some(raft) => {
                    let _ = write!(text, " {}={:?}/commit {:?}", node.id, raft.role(), raft.commit());
                    if raft.applied() != raft.commit() {
                        let _ = write!(text, "/applied {:?}", raft.applied());
                    }
                    if raft.membership().is_some_and(Configuration::is_joint) {
                        let _ = write!(text, "/joint");
                    }
                }
                None => {
                    let _ = write!(text, " {}=down", node.id);
                }
            }
        }
        let stranded = self.nodes.iter().filter_map(|n| n.raft.as_ref()).filter(|r| r.is_leader()).map(Raft::stranded);
        for named in stranded.filter(|named| !named.is_empty()) {
            let _ = write!(text, "; the leader names {named:?} stranded");
        }
        let waiting = self.clients.iter().filter(|c| !c.settled).count();
        let _ = write!(text, "; {waiting} clients without their final read");
        text
    }

    pub(super) fn finish_safety(&mut self) -> Result<(), Failure> {
        if self.checker.is_forced() {
            // Committed entries may be lost after a forced rejoin: logs and histories may
            // disagree; the checks that hold regardless ran as the run went.
            return Ok(());
        }
        let rafts: Vec<(NodeId, &Raft)> = self.nodes.iter().filter_map(|n| Some((n.id, n.raft.as_ref()?))).collect();
        for (i, a) in rafts.iter().enumerate() {
            for b in &rafts[i + 1..] {
                log_matching(*a, *b).map_err(Failure::Safety)?;
            }
        }
        // An append whose client never heard back happened if some node applied it, with the
        // response it produced there (its return time unknown); if none did, it did not happen.
        for (op, (_, refused)) in self.history.iter().zip(&self.calls) {
            if *refused && !op.op.read && self.applied_responses.contains_key(&op.request) {
                let detail = format!("client {} was told #{} was not appended, yet it was", op.client, op.request);
                return Err(Failure::Safety(Violation { invariant: "error_but_applied", detail }));
            }
        }
        let history = self.final_history();
        match self.simulation.check_within(&history, self.options.check_steps) {
            Verdict::Linearizable => Ok(()),
            Verdict::Undecided(undecided) => {
                self.undecided = Some(undecided);
                Ok(())
            }
            Verdict::Violation(violation) => {
                let detail = violation.to_string();
                self.linearizability = Some(violation);
                Err(Failure::Safety(Violation { invariant: "linearizability", detail }))
            }
        }
    }

    pub(super) fn finish(&mut self) -> Result<(), Failure> {
        let healed = self.healed().unwrap_or(Time(0));
        if self.options.regime == Regime::Recoverable && self.max_term.1.since(healed) > ELECTION_BOUND {
            let after = self.max_term.1.since(healed) as f64 / 1e9;
            return Err(Failure::Liveness(format!(
                "the final term {} began {after:.3} s after healing (or a stall or pause outlasting it; bound {} s)",
                self.max_term.0,
                ELECTION_BOUND / (1_000 * MS)
            )));
        }
        let healthy =
            |n: &usize| Some(*n) != self.isolated && self.nodes[*n].raft.as_ref().is_some_and(Raft::is_leader);
        if let Some(node) = (0..self.nodes.len()).find(healthy).map(|n| &self.nodes[n]) {
            let raft = node.raft.as_ref().expect("found running");
            self.checker.acknowledged_kept(node.id, raft, |seq| node.log_entry(seq)).map_err(Failure::Safety)?;
        }
        self.finish_safety()
    }
}

/// Whether `raft`'s log can send a node entries from `need` on: it holds the entry before
/// `need`, or starts at it knowing that entry's term.
pub(super) fn serves(raft: &Raft, need: Seq) -> bool {
    match need.prev() {
        None => raft.first_seq() == Seq(0),
        Some(before) => raft.first_seq() <= before || raft.term_at(before).is_some(),
    }
}
