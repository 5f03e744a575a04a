//! Membership changes as part of the workload: the nemesis asks the leader to add, remove or
//! replace voters (the leader too), under whatever faults are going on; new nodes start on
//! empty disks and join as learners. The checks: elections and commits use a quorum of every
//! part of the configuration in force, consecutive committed configurations differ only
//! through a joint one, and a change is answered only once its configuration has committed.

use super::*;
use end::serves;
use tinyraftplus::core::codec::decode_configuration;
use tinyraftplus::core::{Configuration, Membership, MembershipChange, Payload, Quorum};

/// Spare node slots a run with membership changes has beyond `Options::nodes`.
pub(super) const SPARES: usize = 2;

impl World {
    /// The configuration in force on the running node whose configuration entry is newest:
    /// (voters of every part, every member); the initial nodes before any change.
    pub(super) fn newest_configuration(&self) -> (Vec<NodeId>, Vec<NodeId>) {
        match self.newest() {
            Some(configuration) => (voters_of(configuration), configuration.members()),
            None => {
                let initial: Vec<NodeId> = (1..=self.options.nodes as u64).map(NodeId).collect();
                (initial.clone(), initial)
            }
        }
    }

    /// The quorum rule of each part of every configuration some running node has in force, of
    /// the latest committed one, and of every change under way: a fault budget that holds in
    /// all of them holds in whichever wins.
    pub(super) fn all_parts(&self) -> Vec<Rule> {
        let founders = self.founders_rule();
        let mut parts = Vec::new();
        let in_force = self.nodes.iter().filter_map(|node| node.raft.as_ref()).map(|raft| raft.membership());
        for configuration in in_force.chain([self.checker.committed_configuration()]) {
            match configuration {
                Some(configuration) => parts.extend(Rule::parts(configuration)),
                None => parts.push(founders.clone()),
            }
        }
        // And the rule of every change asked for and not answered yet: it may be entered.
        parts.extend(self.changes.values().cloned());
        parts.sort();
        parts.dedup();
        parts
    }

    /// The rule of the founders' configuration (the initial nodes under the seed's rule).
    pub(super) fn founders_rule(&self) -> Rule {
        let founders: Vec<NodeId> = (1..=self.options.nodes as u64).map(NodeId).collect();
        self.swarm.quorum.rule(&founders)
    }

    /// The rule of node `n`'s bootstrap configuration (`Config::nodes` and `Config::quorum`).
    pub(super) fn bootstrap_rule(&self, n: usize) -> Rule {
        let config = &self.nodes[n].config;
        match &config.quorum {
            Quorum::Groups(groups) => Rule::groups(&config.nodes, groups),
            Quorum::Count(count) => Rule::Count(config.nodes.clone(), *count),
            Quorum::Custom(_) => self.swarm.quorum.rule(&config.nodes),
            _ => Rule::groups(&config.nodes, &[]),
        }
    }

    /// Whether, in every part of every configuration in force, the voters not `down` form a
    /// quorum that any one of them may leave, and a quorum stays.
    pub(super) fn room_for_one_more(&self, down: impl Fn(NodeId) -> bool) -> bool {
        self.all_parts().iter().all(|part| part.room_for_one_more(&down))
    }

    pub(super) fn newest(&self) -> Option<&Configuration> {
        let configured = self.nodes.iter().filter_map(|node| node.raft.as_ref());
        let newest = configured.filter_map(|raft| Some((raft.membership_seq()?, raft.membership()?)));
        newest.max_by_key(|(seq, _)| *seq).map(|(_, configuration)| configuration)
    }

    /// The members the cluster has now: those of the leader's configuration in force (of the
    /// leader of the highest term, not the node left cut off), else of the newest one.
    pub(super) fn current_members(&self) -> Vec<NodeId> {
        let leader = (0..self.nodes.len())
            .filter(|n| Some(*n) != self.isolated)
            .filter_map(|n| self.nodes[n].raft.as_ref().filter(|raft| raft.is_leader()))
            .max_by_key(|raft| raft.term());
        match leader {
            Some(raft) => match raft.membership() {
                Some(configuration) => configuration.members(),
                None => (1..=self.options.nodes as u64).map(NodeId).collect(),
            },
            None => self.newest_configuration().1,
        }
    }

    /// Asks leader `n` to add, remove or replace a voter (itself possibly). Under quorum
    /// groups, a joiner goes into one of them and a group left empty goes.
    pub(super) fn change_membership(&mut self, n: usize) -> Result<(), Violation> {
        let Some(raft) = self.nodes[n].raft.as_ref() else { return Ok(()) };
        let (mut voters, members, mut groups) = match raft.membership() {
            Some(configuration) => {
                let target = configuration.target();
                (target.voters().to_vec(), configuration.members(), target.groups().to_vec())
            }
            // No configuration entry in its log: its bootstrap voters are in force (after a
            // forced rejoin, not necessarily the newest configuration the cluster had).
            None => {
                let groups = match &self.nodes[n].config.quorum {
                    Quorum::Groups(groups) => groups.clone(),
                    _ => Vec::new(),
                };
                (self.nodes[n].config.nodes.clone(), self.newest_configuration().1, groups)
            }
        };
        let outside: Vec<usize> = (0..self.nodes.len()).filter(|m| !members.contains(&self.nodes[*m].id)).collect();
        if self.swarm.change_steps && self.rng.below(2) == 0 {
            let learners = raft.membership().map(|c| c.target().learners().to_vec()).unwrap_or_default();
            return self.change_step(n, (voters, groups), learners, outside);
        }
        if !outside.is_empty() && self.rng.below(4) == 0 {
            // A learner whose machine never comes up: it never catches up, and must hold up
            // neither commits nor later changes (the next change of voters drops it).
            let m = outside[self.rng.below(outside.len() as u64) as usize];
            let never = self.nodes[m].id;
            self.nodes[m].stranger = false; // An early stranger is up: it joins as learner.
            self.fault("learner_never_up");
            let change = MembershipChange::AddLearner { id: never, address: None };
            return self.ask_change(n, Rule::groups(&voters, &groups), change);
        }
        let fewest = self.fewest_voters();
        let (add, remove) = match self.rng.below(3) {
            0 => (true, false),
            1 => (false, true),
            _ => (true, true),
        };
        if remove && voters.len() > fewest.max(usize::from(add)) {
            let gone = voters.remove(self.rng.below(voters.len() as u64) as usize);
            for group in &mut groups {
                group.retain(|id| *id != gone);
            }
            groups.retain(|group| !group.is_empty());
        }
        if add && !outside.is_empty() {
            let joiner = outside[self.rng.below(outside.len() as u64) as usize];
            let id = self.nodes[joiner].id;
            voters.push(id);
            if !groups.is_empty() {
                let group = self.rng.below(groups.len() as u64) as usize;
                groups[group].push(id);
            }
            self.prepare_joiner(joiner, &voters, &groups)?;
        }
        let rule = Rule::groups(&voters, &groups);
        if !self.healthy_quorum(&rule, &members) {
            return Ok(());
        }
        self.fault("membership_change");
        let change = match groups.is_empty() {
            true => MembershipChange::SetNodes(voters),
            false => MembershipChange::To(
                Membership::with_groups(voters, [], groups).expect("groups over the voters, each in one"),
            ),
        };
        self.ask_change(n, rule, change)
    }

    /// Asks leader `n` for one step of a change from its configuration (its voters and quorum
    /// groups, and its learners), as an operator using the single-step requests would: a
    /// learner added whose machine comes up (one of the nodes `outside` the configuration), a
    /// learner promoted (under groups, into one of them, with `To`), or a voter or learner
    /// removed. A promoted learner that never came up never catches up: the change fails after
    /// `Config::change_timeout`.
    fn change_step(
        &mut self,
        n: usize,
        (voters, mut groups): (Vec<NodeId>, Vec<Vec<NodeId>>),
        learners: Vec<NodeId>,
        outside: Vec<usize>,
    ) -> Result<(), Violation> {
        let members: Vec<NodeId> = voters.iter().chain(&learners).copied().collect();
        let fewest = self.fewest_voters();
        let pick = |rng: &mut Random, len: usize| rng.below(len as u64) as usize;
        let (target, grouped, change, kind) = match self.rng.below(3) {
            0 if !outside.is_empty() => {
                let joiner = outside[pick(&mut self.rng, outside.len())];
                let id = self.nodes[joiner].id;
                // Its machine starts with the voters and itself as its bootstrap list (in a
                // group, under groups), as an operator would start it.
                let (mut with, mut with_groups) = (voters.clone(), groups.clone());
                with.push(id);
                if !with_groups.is_empty() {
                    let group = pick(&mut self.rng, with_groups.len());
                    with_groups[group].push(id);
                }
                self.prepare_joiner(joiner, &with, &with_groups)?;
                let change = MembershipChange::AddLearner { id, address: None };
                (voters, groups, change, "learner_added")
            }
            1 if !learners.is_empty() => {
                let id = learners[pick(&mut self.rng, learners.len())];
                let mut voters = voters;
                voters.push(id);
                let change = match groups.is_empty() {
                    true => MembershipChange::Promote(id),
                    false => {
                        let group = pick(&mut self.rng, groups.len());
                        groups[group].push(id);
                        let others = learners.iter().copied().filter(|learner| *learner != id);
                        let target = Membership::with_groups(voters.clone(), others, groups.clone());
                        MembershipChange::To(target.expect("groups over the voters, each in one"))
                    }
                };
                (voters, groups, change, "learner_promoted")
            }
            _ => {
                let removable: Vec<NodeId> = match voters.len() > fewest {
                    true => voters.iter().chain(&learners).copied().collect(),
                    false => learners.clone(),
                };
                if removable.is_empty() {
                    return Ok(());
                }
                let gone = removable[pick(&mut self.rng, removable.len())];
                let voters: Vec<NodeId> = voters.into_iter().filter(|id| *id != gone).collect();
                for group in &mut groups {
                    group.retain(|id| *id != gone);
                }
                groups.retain(|group| !group.is_empty());
                (voters, groups, MembershipChange::Remove(gone), "member_removed")
            }
        };
        let rule = Rule::groups(&target, &grouped);
        if !self.healthy_quorum(&rule, &members) {
            return Ok(());
        }
        self.fault(kind);
        self.ask_change(n, rule, change)
    }

    /// As an operator would check before a change (etcd's strict reconfiguration check): a
    /// quorum of the voters asked for (`rule`) is up and intact, a node new to the cluster (not
    /// among `members`) counting once it runs (it catches up first).
    fn healthy_quorum(&self, rule: &Rule, members: &[NodeId]) -> bool {
        rule.is_quorum(|id| {
            let node = &self.nodes[id.0 as usize - 1];
            node.raft.is_some() && (!node.disk.hard_state().catching_up || !members.contains(&id))
        })
    }

    /// The fewest voters a change may leave: three (or the cluster's size, if smaller) while
    /// faults keep a quorum intact, one in the unbounded regime.
    fn fewest_voters(&self) -> usize {
        match self.options.regime {
            Regime::Recoverable => self.options.nodes.min(3),
            Regime::Unbounded => 1,
        }
    }

    /// Asks leader `n` for `change`, whose configuration has `rule` as its quorum rule.
    fn ask_change(&mut self, n: usize, rule: Rule, change: MembershipChange) -> Result<(), Violation> {
        let request = RequestId(self.next_request);
        self.next_request += 1;
        self.changes.insert(request, rule);
        let in_force = self.nodes[n].raft.as_ref().and_then(|raft| Some(format!(" from {}", raft.membership()?)));
        let (leader, shown) = (self.nodes[n].id, format!("{change:?}{}", in_force.unwrap_or_default()));
        self.note(|| format!("n{leader}: asked for {shown}"));
        self.step(n, Input::ChangeMembership { id: request, change })
    }

    /// A node about to join: if it is down, it starts as a new machine (an empty disk, the
    /// voters and groups as its bootstrap configuration); a running one (removed earlier) joins
    /// as it is. So does a down one that a configuration in force elsewhere (or the committed
    /// one) counts as a voter: a leader cut off may ask from a configuration the cluster has
    /// left, and the machine the others count on keeps its disk.
    fn prepare_joiner(&mut self, m: usize, voters: &[NodeId], groups: &[Vec<NodeId>]) -> Result<(), Violation> {
        self.nodes[m].added = true;
        self.nodes[m].stranger = false;
        if self.nodes[m].raft.is_some() {
            return Ok(());
        }
        let id = self.nodes[m].id;
        if self.all_parts().iter().any(|part| part.voters().contains(&id)) {
            self.note(|| format!("n{id}: a voter elsewhere, to join with its disk"));
            return self.start(m);
        }
        self.nodes[m].disk = super::faults::new_disk(&self.options);
        self.checker.wiped(id);
        self.nodes[m].config.nodes = voters.to_vec();
        self.nodes[m].config.quorum = match groups.is_empty() {
            true => Quorum::Majority,
            false => Quorum::Groups(groups.to_vec()),
        };
        self.note(|| format!("n{id}: a new machine, to join"));
        self.start(m)
    }

    /// A leader answered a change: it must have committed the configuration it names, with
    /// the voters asked for.
    pub(super) fn changed(
        &mut self,
        n: usize,
        request: RequestId,
        result: &Result<Response, ClientError>,
    ) -> Result<(), Violation> {
        let Some(asked) = self.changes.remove(&request) else { return Ok(()) };
        let Ok(Response::Changed { seq }) = result else { return Ok(()) };
        let raft = self.nodes[n].raft.as_ref().expect("stepping");
        // The configuration at `seq`: the one in force, or an earlier one a later change (taken
        // in the same step, from a new leader) superseded, read from the log; or, where a
        // snapshot installed in that step took the log past `seq`, the one committed there.
        let in_force = raft.membership().filter(|_| raft.membership_seq() == Some(*seq)).cloned();
        let at_seq = in_force
            .or_else(|| match raft.entry(*seq).map(|entry| &entry.payload) {
                Some(Payload::Config(bytes)) => decode_configuration(bytes).ok(),
                _ => None,
            })
            .or_else(|| self.checker.committed_configuration_at(*seq).cloned());
        let asked = asked.voters();
        let done = matches!(at_seq, Some(Configuration::Single(only)) if only.voters() == &asked[..]);
        if !done || raft.commit() < Some(*seq) {
            return Err(Violation {
                invariant: "change_reply",
                detail: format!(
                    "{} answered a change to {asked:?} as done at seq {seq}, with commit {:?} and {:?} in force",
                    self.nodes[n].id,
                    raft.commit(),
                    raft.membership()
                ),
            });
        }
        Ok(())
    }

    /// A node became leader: the votes granted to it form a quorum of every part of its
    /// configuration in force.
    pub(super) fn check_vote_quorum(&self, n: usize) -> Result<(), Violation> {
        let raft = self.nodes[n].raft.as_ref().expect("stepping");
        let (id, term) = (self.nodes[n].id, raft.term());
        let granted = |voter: NodeId| voter == id || self.checker.voted_for(voter, term) == Some(id);
        match self.is_quorum(n, raft.membership(), granted) {
            true => Ok(()),
            false => Err(Violation {
                invariant: "vote_quorum",
                detail: format!(
                    "{id} leads term {term} without the votes of a quorum of {:?}",
                    self.rules(n, raft.membership())
                ),
            }),
        }
    }

    /// A leader committed `seq`: a quorum of every part of the configuration it decided under
    /// had acknowledged it in its term (or, for itself, made it durable). That configuration
    /// is the latest one at or below `seq`, or one appended after it (the step that committed
    /// may have appended the next one since): one of them must show the quorum.
    pub(super) fn check_commit_quorum(&self, n: usize, seq: Seq) -> Result<(), Violation> {
        let raft = self.nodes[n].raft.as_ref().expect("stepping");
        let (id, term) = (self.nodes[n].id, raft.term());
        let held = |node: NodeId| match node == id {
            true => self.nodes[n].disk.len() > seq.0,
            false => self.acks.get(&(id, term, node)).is_some_and(|matched| *matched >= seq),
        };
        let Some(at_or_below) = configuration_before(raft, Seq(seq.0 + 1)) else { return Ok(()) };
        let later =
            (seq.0 + 1..=raft.seq().map_or(0, |last| last.0)).filter_map(|at| match &raft.entry(Seq(at))?.payload {
                Payload::Config(bytes) => tinyraftplus::core::codec::decode_configuration(bytes).ok(),
                _ => None,
            });
        let candidates: Vec<Option<Configuration>> = std::iter::once(at_or_below).chain(later.map(Some)).collect();
        if candidates.iter().any(|configuration| self.is_quorum(n, configuration.as_ref(), held)) {
            return Ok(());
        }
        Err(Violation {
            invariant: "commit_quorum",
            detail: format!(
                "{id} committed {seq} in term {term} without a quorum of {:?}",
                candidates.iter().map(|configuration| self.rules(n, configuration.as_ref())).collect::<Vec<_>>()
            ),
        })
    }

    /// A leader wrote `entries`: a configuration among them follows a committed one (Raft
    /// thesis §4.1: one change at a time; a configuration is proposed only once the one
    /// before it has committed).
    pub(super) fn check_config_proposal(&self, n: usize, entries: &[Entry]) -> Result<(), Violation> {
        let raft = self.nodes[n].raft.as_ref().expect("stepping");
        for entry in entries.iter().filter(|entry| matches!(entry.payload, Payload::Config(_))) {
            let Some(before) = previous_config_seq(raft, entry.seq) else { continue };
            if before.is_some_and(|seq| Some(seq) > raft.commit()) {
                return Err(Violation {
                    invariant: "config_after_commit",
                    detail: format!(
                        "leader {} appended the configuration at {} while the one at {} had not committed (commit {:?})",
                        self.nodes[n].id,
                        entry.seq,
                        before.map_or(0, |seq| seq.0),
                        raft.commit()
                    ),
                });
            }
            self.check_entering_voters(n, entry)?;
        }
        Ok(())
    }

    /// Without a state machine, a joint configuration that makes a node a voter is proposed
    /// only if the leader can catch that node up: its log holds the committed entries the
    /// node lacks (a node no leader can rebuild would count in every quorum and never vote).
    fn check_entering_voters(&self, n: usize, entry: &Entry) -> Result<(), Violation> {
        let Payload::Config(bytes) = &entry.payload else { return Ok(()) };
        // After a forced rejoin the checker no longer knows what committed.
        if !self.swarm.log_only || self.checker.is_forced() {
            return Ok(());
        }
        let Ok(Configuration::Joint { old, new }) = decode_configuration(bytes) else { return Ok(()) };
        let leader = self.nodes[n].raft.as_ref().expect("stepping");
        let entering = new.voters().iter().filter(|id| !old.is_voter(**id) && **id != self.nodes[n].id);
        for id in entering {
            let Some(node) = self.nodes.iter().find(|node| node.id == *id) else { continue };
            let Some(need) = self.needs_from(node) else { continue };
            if !serves(leader, need) {
                return Err(Violation {
                    invariant: "stranded_voter_entered",
                    detail: format!(
                        "leader {} (its log from {}) made {id} a voter at {}, but {id} needs entries from {need}, which \
                         the leader no longer holds",
                        self.nodes[n].id,
                        leader.first_seq(),
                        entry.seq
                    ),
                });
            }
        }
        Ok(())
    }

    /// Node `n` answered that it handed leadership to `to`: a voter, not a learner of its
    /// configuration (a learner elected hands leadership on to a voter at once).
    pub(super) fn check_transferred_to_voter(&self, n: usize, to: NodeId) -> Result<(), Violation> {
        let Some(configuration) = self.nodes[n].raft.as_ref().and_then(Raft::membership) else { return Ok(()) };
        if configuration.is_member(to) && !configuration.is_voter(to) {
            return Err(Violation {
                invariant: "transferred_to_learner",
                detail: format!(
                    "{} answered that it handed leadership to learner {to} ({configuration})",
                    self.nodes[n].id
                ),
            });
        }
        Ok(())
    }

    /// Whether the nodes for which `member` is true form a quorum of every part of
    /// `configuration` (node `n`'s bootstrap configuration for none), by the simulator's own
    /// reading of the rule.
    fn is_quorum(&self, n: usize, configuration: Option<&Configuration>, member: impl Fn(NodeId) -> bool) -> bool {
        self.rules(n, configuration).iter().all(|part| part.is_quorum(&member))
    }

    /// The rules of every part of `configuration` (node `n`'s bootstrap one for none).
    fn rules(&self, n: usize, configuration: Option<&Configuration>) -> Vec<Rule> {
        match configuration {
            Some(configuration) => Rule::parts(configuration),
            None => vec![self.bootstrap_rule(n)],
        }
    }
}

/// The configuration in force just before the entry at `seq`, from the entries in memory:
/// `Some(None)` for the initial one (no configuration entry before it), `None` if memory does
/// not reach back far enough.
fn configuration_before(raft: &tinyraftplus::core::Raft, seq: Seq) -> Option<Option<Configuration>> {
    for at in (0..seq.0).rev() {
        let entry = raft.entry(Seq(at))?;
        if let Payload::Config(bytes) = &entry.payload {
            return tinyraftplus::core::codec::decode_configuration(bytes).ok().map(Some);
        }
    }
    Some(None)
}

/// The seq of the configuration entry before `seq`, from the entries in memory: `Some(None)`
/// when there is none before it, `None` if memory does not reach back far enough.
fn previous_config_seq(raft: &tinyraftplus::core::Raft, seq: Seq) -> Option<Option<Seq>> {
    for at in (0..seq.0).rev() {
        if matches!(raft.entry(Seq(at))?.payload, Payload::Config(_)) {
            return Some(Some(Seq(at)));
        }
    }
    Some(None)
}

/// The voters of every part of a configuration, sorted.
fn voters_of(configuration: &Configuration) -> Vec<NodeId> {
    let mut voters = match configuration {
        Configuration::Single(only) => only.voters().to_vec(),
        Configuration::Joint { old, new } => old.voters().iter().chain(new.voters()).copied().collect(),
    };
    voters.sort_unstable();
    voters.dedup();
    voters
}
