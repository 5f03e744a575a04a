//! The nemesis: crashes, partitions, pauses, disk damage and restarts during the faulty part
//! of a run, then the healing.

use super::*;
use crate::swarm::SEGMENT_ENTRIES;

/// How long the stale-leader plot pauses a leader: several election timeouts, so that the
/// others elect a new one meanwhile.
const STALE_LEADER_PAUSE: u64 = 8_000 * MS;

/// A new disk, with the planted bug of a recycled file that keeps its salt when the options
/// plant it (only with the `mutants` feature).
pub(super) fn new_disk(options: &crate::Options) -> Disk {
    #[cfg(feature = "mutants")]
    {
        let mut disk = Disk::new();
        disk.recycle_keeps_salt = options.mutant == Some(tinyraftplus::core::Mutant::RecycleKeepsSalt);
        disk
    }
    #[cfg(not(feature = "mutants"))]
    {
        let _ = options;
        Disk::new()
    }
}

impl World {
    pub(super) fn running(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|n| self.nodes[*n].raft.is_some()).collect()
    }

    /// Injects one fault, then schedules the next.
    pub(super) fn nemesis(&mut self) -> Result<(), Violation> {
        if self.settling {
            return Ok(());
        }
        let next = self.now.plus(self.rng.below(self.swarm.fault_every_ns * 2) + 1);
        self.schedule(next, Ev::Fault);
        let total: u64 = self.swarm.weights.iter().sum();
        let mut pick = self.rng.below(total);
        let kind = self.swarm.weights.iter().position(|w| {
            if pick < *w {
                return true;
            }
            pick -= w;
            false
        });
        let size = self.nodes.len();
        let n = self.rng.below(size as u64) as usize;
        let ids: Vec<NodeId> = self.nodes.iter().map(|node| node.id).collect();
        match kind {
            Some(0) => {
                let unbounded = self.options.regime == Regime::Unbounded;
                if unbounded && !self.checker.is_forced() && self.chance(self.swarm.forced_rejoin) {
                    self.forced_rejoin(n);
                } else if self.nodes[n].raft.is_some() && self.room_for_crash() {
                    if self.nodes[n].paused_until.is_none() && self.chance(self.swarm.close) {
                        self.close(n)?;
                    }
                    self.fault("crash");
                    self.crash(n);
                    self.maybe_lose_data(n);
                    let later = self.now.plus(self.rng.below(4 * self.swarm.fault_every_ns) + MS);
                    self.schedule(later, Ev::Restart(n));
                }
            }
            Some(1) => {
                self.blocked.clear();
                let leader = self.leader_index();
                match self.rng.below(4) {
                    0 => {
                        self.fault("partition_leader_isolated");
                        let isolated = ids[leader.unwrap_or(n)];
                        for other in &ids {
                            self.blocked.insert((isolated, *other));
                            self.blocked.insert((*other, isolated));
                        }
                    }
                    1 => {
                        self.fault("partition_split");
                        let cut = 1 + self.rng.below(size as u64 - 1) as usize;
                        let mut shuffled = ids.clone();
                        for i in (1..shuffled.len()).rev() {
                            shuffled.swap(i, self.rng.below(i as u64 + 1) as usize);
                        }
                        for a in &shuffled[..cut] {
                            for b in &shuffled[cut..] {
                                self.blocked.insert((*a, *b));
                                self.blocked.insert((*b, *a));
                            }
                        }
                    }
                    2 => {
                        self.fault("partition_one_way");
                        let to = ids[self.rng.below(size as u64) as usize];
                        for other in &ids {
                            self.blocked.insert((*other, to));
                        }
                    }
                    _ => {
                        self.fault("partition_links");
                        for a in &ids {
                            for b in &ids {
                                if a != b && self.rng.below(3) == 0 {
                                    self.blocked.insert((*a, *b));
                                }
                            }
                        }
                    }
                }
                let blocked = self.blocked.len();
                self.note(|| format!("fault: partition, {blocked} links blocked"));
            }
            Some(2) => {
                // Half the time the leader: it resumes as a stale leader, after a new election.
                let leader = match self.rng.below(2) {
                    0 => self.leader_index(),
                    _ => None,
                };
                let n = leader.unwrap_or(n);
                if self.nodes[n].raft.is_some() && self.nodes[n].paused_until.is_none() {
                    let plot = leader.is_some() && self.chance(self.swarm.stale_leader);
                    self.fault(match (leader, plot) {
                        (_, true) => "stale_leader",
                        (Some(_), false) => "pause_leader",
                        (None, _) => "pause",
                    });
                    let span = match plot {
                        true => STALE_LEADER_PAUSE,
                        false => self.rng.below(3 * self.swarm.fault_every_ns) + MS,
                    };
                    let until = self.now.plus(span);
                    self.nodes[n].paused_until = Some(until);
                    self.schedule(until, Ev::Resume(n));
                    let id = ids[n];
                    self.note(|| format!("n{id}: paused"));
                    let others: Vec<usize> = (0..size).filter(|m| *m != n && self.nodes[*m].added).collect();
                    if plot && !others.is_empty() {
                        let voter = others[self.rng.below(others.len() as u64) as usize];
                        self.schedule(self.now.plus(span - MS), Ev::Forget(voter, n));
                    }
                }
            }
            Some(3) => {
                self.fault("heal_network");
                self.blocked.clear();
                self.note(|| "fault: network healed".into());
                if let Some(leader) = self.leader_index().filter(|_| self.chance(self.swarm.transfer)) {
                    self.transfer(leader)?;
                }
                if let Some(leader) = self.leader_index().filter(|_| self.chance(self.swarm.membership)) {
                    self.change_membership(leader)?;
                }
            }
            _ => {
                if let Some(down) = (0..size).find(|n| self.nodes[*n].raft.is_none() && self.nodes[*n].added) {
                    self.start(down)?;
                }
            }
        }
        if self.chance(self.swarm.operator) {
            self.operator_request()?;
        }
        Ok(())
    }

    /// At a crash, the node's disk may lose data too (wiped, cut, an unreadable or flipped
    /// record), while every other node holds what it acknowledged.
    pub(super) fn maybe_lose_data(&mut self, n: usize) {
        let id = self.nodes[n].id;
        let len = self.nodes[n].disk.len();
        if !self.may_lose_data(n) {
            // Another node is still catching up after a loss: two at once could lose
            // committed entries for good, which no protocol can undo.
        } else if self.chance(self.swarm.wipe) {
            self.fault("wipe");
            self.wipe(n);
            self.note(|| format!("n{id}: disk wiped"));
        } else if len > 0 && self.chance(self.swarm.disk_cut) {
            self.fault("disk_cut");
            let from = self.rng.below(len);
            self.nodes[n].disk.repair_from(from);
            self.checker.log_cut(id, Seq(from), self.nodes[n].disk.evidence());
            self.note(|| format!("n{id}: log cut from seq {from} (repair_from)"));
        } else if len > 0 && self.chance(self.swarm.segment_lost) {
            self.fault("segment_lost");
            let segment = self.rng.below(len.div_ceil(SEGMENT_ENTRIES));
            let how = if self.rng.below(2) == 0 { "deleted" } else { "zeroed" };
            if segment == 0 {
                self.wipe(n);
            } else {
                self.nodes[n].disk.repair_from(segment * SEGMENT_ENTRIES);
                self.checker.log_cut(id, Seq(segment * SEGMENT_ENTRIES), self.nodes[n].disk.evidence());
            }
            let from = segment * SEGMENT_ENTRIES;
            self.note(|| format!("n{id}: log segment from seq {from} {how}; the log keeps what comes before it"));
        } else if len > 0 && self.chance(self.swarm.latent) {
            self.fault("latent_sector_error");
            self.nodes[n].unreadable = Some(self.rng.below(len));
        } else if self.nodes[n].flipped.is_none() && self.chance(self.swarm.bit_flip) {
            let pick = self.rng.next_u64();
            if let Some(seq) = self.nodes[n].disk.flip_bit(pick) {
                self.fault("bit_flip");
                self.nodes[n].flipped = Some(seq);
            }
        } else if self.chance(self.swarm.snapshots_lost) {
            let lost = self.nodes[n].disk.lose_snapshots();
            if !lost.is_empty() {
                self.fault("snapshots_lost");
                let stateless = self.nodes[n].config.stateless_machine;
                if !stateless {
                    self.nodes[n].lost_snapshots.extend(lost);
                }
                let then = if stateless { "its stateless machine needs none" } else { "its state cannot be rebuilt" };
                self.note(|| format!("n{id}: snapshot files lost, its log kept ({then})"));
            }
        }
    }

    /// The stale-leader plot's second half: node `n` (which has likely voted in the term that
    /// replaced the paused leader `stale`'s) crashes, loses its disk and restarts at once, able
    /// to hear only the stale leader, which resumes a moment later. A node that forgot its vote
    /// must not help that leader commit.
    pub(super) fn forget(&mut self, n: usize, stale: usize) -> Result<(), Violation> {
        if self.settling || !self.room_for_crash() || self.nodes[n].raft.is_none() || !self.may_lose_data(n) {
            return Ok(());
        }
        self.crash(n);
        let (id, stale_id) = (self.nodes[n].id, self.nodes[stale].id);
        self.wipe(n);
        self.note(|| format!("n{id}: disk wiped; it hears only n{stale_id}, about to resume"));
        for other in self.nodes.iter().map(|node| node.id).filter(|other| *other != id && *other != stale_id) {
            self.blocked.insert((id, other));
            self.blocked.insert((other, id));
        }
        self.start(n)
    }

    /// The forced-rejoin plot (unbounded regime, once a run): node `n` crashes with a damaged
    /// entry (at seq 0 half the time) and restarts repaired, keeping the entries after it that
    /// it knew committed as evidence; a majority of the other nodes lose their disks, and an
    /// operator forces them to rejoin (they vote at once). The leader they elect may lack the
    /// committed entries: node `n` must refuse its entries rather than replace them.
    pub(super) fn forced_rejoin(&mut self, n: usize) {
        self.fault("forced_rejoin");
        let (id, len) = (self.nodes[n].id, self.nodes[n].disk.len());
        if self.nodes[n].raft.is_some() {
            self.crash(n);
        }
        if len > 0 {
            let damaged = if self.rng.below(2) == 0 { 0 } else { self.rng.below(len) };
            // Damage found earlier (a flipped or unreadable record) is where recovery stops
            // first: the repair starts there if it comes before.
            let node = &mut self.nodes[n];
            let damaged = [node.flipped.take(), node.unreadable.take()].into_iter().flatten().fold(damaged, u64::min);
            let evidence = self.nodes[n].disk.repair_keeping(damaged);
            let kept = evidence.len();
            self.checker.repaired(id, evidence);
            self.note(|| format!("n{id}: entry {damaged} damaged: repaired, {kept} entries kept as evidence"));
        }
        let mut others: Vec<usize> = (0..self.nodes.len()).filter(|m| *m != n && self.nodes[*m].added).collect();
        for i in (1..others.len()).rev() {
            others.swap(i, self.rng.below(i as u64 + 1) as usize);
        }
        others.truncate(others.len().div_ceil(2));
        self.checker.forced_rejoin();
        for m in others {
            if self.nodes[m].raft.is_some() {
                self.crash(m);
            }
            self.wipe(m);
            self.nodes[m].disk.force_rejoin();
            let other = self.nodes[m].id;
            self.note(|| format!("n{other}: disk wiped; an operator forces it to rejoin"));
            let later = self.now.plus(self.rng.below(500 * MS) + MS);
            self.schedule(later, Ev::Restart(m));
        }
        let later = self.now.plus(self.rng.below(500 * MS) + MS);
        self.schedule(later, Ev::Restart(n));
    }

    /// Asks leader `n` to hand leadership to a random other node.
    fn transfer(&mut self, n: usize) -> Result<(), Violation> {
        let others: Vec<usize> = (0..self.nodes.len()).filter(|m| *m != n).collect();
        let Some(&to) = others.get(self.rng.below(others.len().max(1) as u64) as usize) else { return Ok(()) };
        let Some(term) = self.nodes[n].raft.as_ref().map(Raft::term) else { return Ok(()) };
        self.fault("transfer");
        let (id, to) = (RequestId(self.next_request), self.nodes[to].id);
        self.next_request += 1;
        self.transfers.insert(id, term);
        let from = self.nodes[n].id;
        self.note(|| format!("n{from}: asked to hand leadership to n{to}"));
        self.step(n, Input::TransferLeader { id, to })
    }

    /// A graceful stop (`Input::Close`), before the process ends: the node answers every
    /// request its clients are waiting on (`Closed`: the outcome is unknown).
    fn close(&mut self, n: usize) -> Result<(), Violation> {
        self.fault("close");
        self.step(n, Input::Close)?;
        let incarnation = Some(self.nodes[n].incarnation);
        let holds = |call: &Call| call.node == n && call.taken_by == incarnation;
        let waiting = self.clients.iter().position(|client| client.call.as_ref().is_some_and(holds));
        match waiting {
            Some(c) => Err(Violation {
                invariant: "close_answers",
                detail: format!("n{} closed leaving client {c}'s request unanswered", self.nodes[n].id),
            }),
            None => Ok(()),
        }
    }

    /// The running leader, if any.
    fn leader_index(&self) -> Option<usize> {
        self.running().into_iter().find(|n| self.nodes[*n].raft.as_ref().is_some_and(Raft::is_leader))
    }

    /// Whether one more node may crash: in the recoverable regime, a majority of the voters of
    /// every part of the newest configuration stays up.
    pub(super) fn room_for_crash(&self) -> bool {
        let down = |id: NodeId| self.nodes[id.0 as usize - 1].raft.is_none();
        self.room_for_one_more(down) || self.options.regime == Regime::Unbounded
    }

    /// Node `n` restarts on new storage: its disk is new, and the terms it voted in forgotten.
    pub(super) fn wipe(&mut self, n: usize) {
        self.nodes[n].disk = new_disk(&self.options);
        self.nodes[n].lost_snapshots.clear();
        self.checker.wiped(self.nodes[n].id);
    }

    /// An operator puts node `n`'s lost snapshot files back from a backup.
    pub(super) fn restore_snapshot_files(&mut self, n: usize) {
        for snapshot in std::mem::take(&mut self.nodes[n].lost_snapshots) {
            self.nodes[n].disk.add_snapshot(snapshot);
        }
        let id = self.nodes[n].id;
        self.note(|| format!("n{id}: an operator puts its snapshot files back"));
    }

    /// Whether node `n` may lose data now: every other voter holds what it acknowledged (none
    /// is catching up after a loss, or waiting to be repaired), and in every configuration in
    /// force the other voters are a majority (a cluster down to one voter keeps its disk).
    fn may_lose_data(&self, n: usize) -> bool {
        let parts = self.all_parts();
        let holds =
            |node: &Node| !node.disk.hard_state().catching_up && node.unreadable.is_none() && node.flipped.is_none();
        let id = self.nodes[n].id;
        let others_hold = self
            .nodes
            .iter()
            .enumerate()
            .all(|(m, node)| m == n || holds(node) || !parts.iter().any(|part| part.voters().contains(&node.id)));
        let quorum_without = parts.iter().all(|part| {
            !part.voters().contains(&id)
                || part.is_quorum(|voter| voter != id && holds(&self.nodes[voter.0 as usize - 1]))
        });
        others_hold && quorum_without
    }

    /// The faults end: the network heals, every node runs, clients make one final read each.
    pub(super) fn heal(&mut self) -> Result<(), Violation> {
        self.settling = true;
        self.healed_at = Some(self.now);
        self.blocked.clear();
        self.note(|| "heal: network healed, all nodes restart".into());
        for n in 0..self.nodes.len() {
            // Its events put off until then are handled then (the node runs again at once).
            let paused = self.nodes[n].paused_until.take().unwrap_or(Time(0));
            self.lagging_until = self.lagging_until.max(paused);
            if !self.nodes[n].lost_snapshots.is_empty() {
                // It would stop at its next start: the operator puts the files back first.
                if self.nodes[n].raft.is_some() {
                    self.crash(n);
                }
                self.restore_snapshot_files(n);
            }
            if self.nodes[n].added {
                self.start(n)?;
            }
        }
        for c in 0..self.clients.len() {
            if self.clients[c].call.is_none() {
                self.schedule(self.now, Ev::Client(c));
            }
        }
        let voters: Vec<NodeId> = self.all_parts().iter().flat_map(Rule::voters).collect();
        let lost = |id: NodeId| self.nodes[id.0 as usize - 1].disk.hard_state().catching_up;
        let room = self.room_for_one_more(lost) || self.options.regime == Regime::Unbounded;
        // A node that hears nothing disrupts the others forever without pre-vote and
        // check-quorum (Raft thesis §9.6): that is what they are for, so it lingers only with both.
        let defended = self.swarm.pre_vote && self.swarm.check_quorum;
        if voters.len() >= 3 && room && defended && self.chance(self.swarm.lingering) {
            // A minority fault that stays: one node hears nothing (it can still send).
            self.fault("lingering_one_way_partition");
            let n = self.rng.below(self.nodes.len() as u64) as usize;
            let to = self.nodes[n].id;
            for node in &self.nodes {
                self.blocked.insert((node.id, to));
            }
            self.isolated = Some(n);
        }
        Ok(())
    }
}
