//! The network and the disks under the nodes: messages checked against what their senders hold
//! durable, then lost, duplicated or delayed; writes done after a drawn latency, stalled, or
//! failed (which crashes the node).

use super::{Ev, World, MS, STORAGE_STALL};
use crate::check::Violation;
use crate::disk::Pending;
use tinyraftplus::core::{AppendResult, Body, Input, Message, NodeId, Role, Write, WriteId};

impl World {
    /// Whether `voter`'s vote, granted now, can count toward `candidate`'s election in `term`:
    /// only while the candidate campaigns in that term (once it stops, it never does again in
    /// that term), and only if the voter votes in its configuration in force (which does not
    /// change while it campaigns: its log does not).
    fn vote_counts(&self, voter: NodeId, term: tinyraftplus::core::Term, candidate: NodeId) -> bool {
        let Some(c) = (candidate.0 as usize).checked_sub(1) else { return false };
        let Some(raft) = self.nodes.get(c).and_then(|node| node.raft.as_ref()) else { return false };
        if raft.role() != tinyraftplus::core::Role::Candidate || raft.term() != term {
            return false;
        }
        match raft.membership() {
            Some(configuration) => configuration.is_voter(voter),
            None => self.nodes[c].config.nodes.contains(&voter),
        }
    }

    /// Checks what a message claims: granted votes and accepted appends must be durable.
    pub(super) fn check_message(&mut self, n: usize, message: &Message) -> Result<(), Violation> {
        let (id, durable) = (self.nodes[n].id, self.nodes[n].disk.len());
        match &message.body {
            Body::VoteResponse { granted: true } => {
                let counts = self.vote_counts(id, message.term, message.to);
                self.checker.vote(id, message.term, message.to, counts)
            }
            Body::Append { .. } => {
                self.checker.appended(id, message.term);
                Ok(())
            }
            Body::AppendResponse { result: AppendResult::Accepted { matched, .. }, .. } => {
                if let Some(matched) = matched {
                    let acked = self.acks.entry((message.to, message.term, id)).or_default();
                    *acked = (*acked).max(*matched);
                }
                self.checker.ack_term(id, message.term)?;
                self.checker.append_ack(id, *matched, durable)
            }
            _ => Ok(()),
        }
    }

    pub(super) fn send(&mut self, message: Message) {
        if self.blocked.contains(&(message.from, message.to)) {
            return;
        }
        let faults = !self.settling;
        if faults && self.chance(self.swarm.loss) {
            self.fault("message_lost");
            return;
        }
        let copies = if faults && self.chance(self.swarm.duplicate) {
            self.fault("message_duplicated");
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = self.swarm.latency_ns + self.rng.below(self.swarm.jitter_ns + 1);
            if faults && self.chance(self.swarm.slow) {
                self.fault("message_delayed");
                delay += 10 * self.swarm.jitter_ns;
            }
            self.schedule(self.now.plus(delay), Ev::Deliver(message.clone()));
        }
    }

    pub(super) fn write(&mut self, n: usize, id: WriteId, write: Write) {
        let mut latency = self.swarm.disk_ns + self.rng.below(self.swarm.disk_jitter_ns + 1);
        let stalled = !self.settling && self.chance(self.swarm.disk_stall);
        if stalled {
            // A stalled disk (the core must step down when it leads, and not campaign).
            self.fault("disk_stall");
            latency += STORAGE_STALL.as_nanos() as u64 / 2 + self.rng.below(5 * STORAGE_STALL.as_nanos() as u64 / 2);
        }
        if let Write::HardState(state) = &write {
            let candidate = self.nodes[n].raft.as_ref().is_some_and(|raft| raft.role() == Role::Candidate);
            if candidate
                && state.vote == Some(self.nodes[n].id)
                && !self.settling
                && self.chance(self.swarm.candidate_stall)
            {
                // Its new term and own vote take long to become durable; it crashes the moment
                // it is elected if they are not durable by then.
                self.fault("candidate_write_stalled");
                latency += 20 * MS + self.rng.below(300 * MS);
                self.nodes[n].stalled_candidacy = Some(state.term);
            }
        }
        let start = self.nodes[n].disk.pending.back().map_or(self.now, |p| p.done_at.max(self.now));
        let done_at = start.plus(latency);
        if stalled {
            self.lagging_until = self.lagging_until.max(done_at);
        }
        let node = &mut self.nodes[n];
        let first = node.disk.pending.is_empty();
        node.disk.pending.push_back(Pending { id, write, done_at });
        if first {
            let incarnation = node.incarnation;
            self.schedule(done_at, Ev::DiskDone(n, incarnation));
        }
    }

    pub(super) fn disk_done(&mut self, n: usize, incarnation: u64) -> Result<(), Violation> {
        if self.nodes[n].incarnation != incarnation || self.nodes[n].raft.is_none() {
            return Ok(());
        }
        let Some(done) = self.nodes[n].disk.pending.front().cloned() else { return Ok(()) };
        let faults = !self.settling;
        if faults && (self.chance(self.swarm.fsync_fail) || self.chance(self.swarm.disk_full)) {
            // Fatal for the node: it learns of the failure, then stops until restarted
            // (FsLog poisons itself; only reopening, which recovers, makes it usable again).
            self.fault("write_failed");
            self.step(n, Input::WriteFailed { id: done.id, error: "fsync failed".into() })?;
            self.crash(n);
            let later = self.now.plus(100 * MS + self.rng.below(3_000 * MS));
            self.schedule(later, Ev::Restart(n));
            return Ok(());
        }
        self.check_snapshot_write(n, &done.write)?;
        let node = &mut self.nodes[n];
        node.disk.pending.pop_front();
        node.disk.apply(&done.write);
        match &done.write {
            Write::HardState(state) => self.checker.durable(node.id, *state)?,
            Write::Entries(entries) => self.checker.durable_entries(node.id, entries)?,
            _ => {}
        }
        if let Some(next) = node.disk.pending.front() {
            let at = next.done_at.max(self.now);
            self.schedule(at, Ev::DiskDone(n, incarnation));
        }
        for (_, message) in self.nodes[n].held.durable(done.id) {
            self.check_message(n, &message)?;
            self.send(message);
        }
        self.step(n, Input::WriteDone { id: done.id })
    }
}
