//! Membership changes (Raft thesis §4): the leader walks the configuration from what is in
//! force to the target one entry at a time, each proposed only once the one before has
//! committed and an entry of the leader's own term has (so no change from an earlier term can
//! be half-known to it):
//!
//! 1. nodes new to the cluster join as learners (they receive the log and never count);
//! 2. once every node that is to vote has answered and is within `Config::learner_lag_max`
//!    entries of the leader, and a quorum of the new voters is responsive and holds the commit
//!    point, the joint configuration old+new, where elections and commits need a quorum of
//!    each (§4.3);
//! 3. once that commits, the target alone (leaving joint is automatic, also for a new leader
//!    that finds a committed joint configuration in its log).
//!
//! A change that touches only learners or addresses takes one step. A leader that the target
//! does not list as a voter hands leadership to the most up-to-date voter once the target
//! commits, then steps down; nodes it removes learn so (`Event::Removed`) and never campaign.

use super::client::Origin;
use super::codec::configuration_bytes;
use super::config::ConfigError;
use super::io::{ClientError, Response};
use super::membership::{Configuration, Membership};
use super::mutant::Mutant;
use super::quorum::Quorum;
use super::raft::{duration_nanos, Raft};
use super::role::RoleState;
use super::transfer::Transfer;
use super::types::{NodeId, Payload, RequestId, Seq, Time};
use bytes::Bytes;

/// A membership change a client asks the leader for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// The voters become exactly `nodes` (the seed's `setNodes`): new ones join as learners
    /// and vote once caught up, the others leave (learners not listed leave too).
    SetNodes(Vec<NodeId>),
    /// Adds a learner, with an address for transports if given.
    AddLearner {
        /// The new node.
        id: NodeId,
        /// Its address blob (see [`Membership::with_address`]).
        address: Option<Bytes>,
    },
    /// Makes a learner a voter (once it is caught up).
    Promote(NodeId),
    /// Removes a voter or a learner.
    Remove(NodeId),
    /// The configuration becomes exactly this one (voters, learners, groups, addresses).
    To(Membership),
}

/// A change the leader is carrying out.
#[derive(Debug)]
pub(crate) struct Change {
    /// The client waiting for the outcome.
    id: RequestId,
    /// The configuration it ends in.
    target: Membership,
    /// When it fails if not done.
    deadline: Time,
}

impl Raft {
    pub(super) fn on_change_membership(&mut self, now: Time, id: RequestId, change: MembershipChange) {
        let busy = self.role.leading().is_some_and(|l| l.requests.change.is_some());
        let refused = self.refuses_leader_request().or(busy.then_some(ClientError::ChangeInProgress));
        if let Some(error) = refused {
            return self.reply(Origin::Local(id), Err(error));
        }
        let target = match self.current_membership().and_then(|current| target_of(current, change)) {
            Ok(target) => target,
            Err(why) => return self.reply(Origin::Local(id), Err(ClientError::Invalid(why))),
        };
        let deadline = now.plus(duration_nanos(self.config.change_timeout));
        let Some(leading) = self.role.leading_mut() else { return };
        leading.requests.change = Some(Change { id, target, deadline });
        self.advance_change();
    }

    /// The membership a change starts from: the target of the configuration in force, or the
    /// bootstrap one (which must use a majority or groups: a count or a custom rule cannot be
    /// carried by a configuration entry).
    pub(super) fn current_membership(&self) -> Result<Membership, String> {
        if let Some(configuration) = self.configuration() {
            return Ok(configuration.target().clone());
        }
        let groups = match &self.config.quorum {
            Quorum::Majority => Vec::new(),
            Quorum::Groups(groups) => groups.clone(),
            _ => return Err("membership changes need a Majority or Groups quorum".into()),
        };
        Membership::with_groups(self.bootstrap.clone(), [], groups).map_err(|e| e.to_string())
    }

    /// Takes the next step of the change under way (or leaves a committed joint
    /// configuration), when the configuration in force has committed. Called whenever the
    /// commit point, a follower's progress or the time moves.
    pub(super) fn advance_change(&mut self) {
        let Some(leading) = self.role.leading() else { return };
        let joint = self.configuration().is_some_and(Configuration::is_joint);
        if leading.requests.change.is_none() && !joint && self.is_voter(self.id) {
            return; // Nothing to do (the common case, on every acknowledgement).
        }
        let own_term_committed = self.commit >= Some(leading.term_start);
        let in_force = self.log.configuration().map(|(seq, _)| seq);
        let committed = in_force <= self.commit;
        // Planted bug: before its own term's entry commits, the leader does not know whether
        // the configuration in its log committed, and takes it that it did.
        let assume = !own_term_committed && self.mutant(Mutant::ChangeBeforeOwnCommit);
        if let Some(Configuration::Joint { new, .. }) = self.configuration().filter(|_| !committed) {
            if self.mutant(Mutant::LeaveJointEarly) {
                let single = Configuration::Single(new.clone());
                return self.propose_configuration(&single);
            }
        }
        let ready = (own_term_committed && committed) || assume;
        if !ready {
            return;
        }
        if let Some(Configuration::Joint { new, .. }) = self.configuration() {
            if self.mutant(Mutant::StaysJoint) {
                return;
            }
            let single = Configuration::Single(new.clone());
            return self.propose_configuration(&single);
        }
        let Ok(current) = self.current_membership() else { return };
        let Some(change) = self.role.leading().and_then(|l| l.requests.change.as_ref()) else {
            return self.step_down_if_removed();
        };
        let target = change.target.clone();
        if current == target && in_force.is_none() {
            // Nothing to change, but the configuration is written down (with its addresses).
            return self.propose_configuration(&Configuration::Single(target));
        }
        if current == target {
            let (id, seq) = (change.id, in_force.unwrap_or_default());
            if let Some(leading) = self.role.leading_mut() {
                leading.requests.change = None;
            }
            self.reply(Origin::Local(id), Ok(Response::Changed { seq }));
            return self.step_down_if_removed();
        }
        let next = match next_step(&current, &target) {
            Step::Learners(next) => next,
            // Planted bug: several voters change in one step, without the joint configuration.
            Step::Joint(_, new) if self.mutant(Mutant::SingleStepChange) => Configuration::Single(new),
            Step::Joint(old, new) => {
                let stranded = self.stranded_entering(&new, &old);
                if !stranded.is_empty() {
                    return self.fail_stranded_change(&stranded);
                }
                if !self.entering_caught_up(&new, &old) || !self.healthy_quorum(&new) {
                    return;
                }
                Configuration::Joint { old, new }
            }
            Step::Single(next) => Configuration::Single(next),
        };
        self.propose_configuration(&next);
    }

    /// Whether every voter of `new` that does not vote in `old` answered within `ping_timeout`,
    /// is within `Config::learner_lag_max` entries of this leader's log, and can be caught up
    /// from it (a node that needs entries the log no longer holds, with no snapshot to send,
    /// would count in every quorum and never vote).
    fn entering_caught_up(&self, new: &Membership, old: &Membership) -> bool {
        let Some(leading) = self.role.leading() else { return false };
        let (last, window) = (self.log.last_seq().map_or(0, |seq| seq.0 + 1), duration_nanos(self.config.ping_timeout));
        let entering = new.voters().iter().filter(|id| !old.is_voter(**id) && **id != self.id);
        entering.into_iter().all(|id| {
            let Some(p) = leading.progress.iter().find(|p| p.id == *id) else { return false };
            let answered = p.answered && p.answered_within(self.now, window);
            let lag = last - p.matched.map_or(0, |seq| seq.0 + 1);
            answered
                && lag <= self.config.learner_lag_max
                && (self.can_catch_up(p) || self.mutant(Mutant::StrandedPromoted))
        })
    }

    /// The voters of `new` that do not vote in `old` and that this leader found it cannot catch
    /// up (`Raft::stranded`).
    fn stranded_entering(&self, new: &Membership, old: &Membership) -> Vec<NodeId> {
        let Some(leading) = self.role.leading().filter(|_| !self.mutant(Mutant::StrandedPromoted)) else {
            return Vec::new();
        };
        let entering = |p: &&super::replication::Progress| new.is_voter(p.id) && !old.is_voter(p.id);
        leading.progress.iter().filter(entering).filter(|p| p.needs_removed).map(|p| p.id).collect()
    }

    /// The change under way would make voters of nodes this leader cannot catch up: it fails
    /// now rather than at `change_timeout` (the steps taken stay).
    fn fail_stranded_change(&mut self, stranded: &[NodeId]) {
        let first = self.log.first();
        let Some(change) = self.role.leading_mut().and_then(|l| l.requests.change.take()) else { return };
        let listed: Vec<String> = stranded.iter().map(NodeId::to_string).collect();
        let why = format!(
            "the change to {} would make voters of nodes this leader cannot catch up ({}: they need entries its log \
             no longer holds, its entries before {first} were removed, and there is no snapshot to send); the steps \
             taken stay",
            change.target,
            listed.join(", ")
        );
        self.reply(Origin::Local(change.id), Err(ClientError::ChangeFailed(why)));
    }

    /// Whether the follower of progress `p` can be caught up: the log holds what it lacks, or
    /// a snapshot covers the entries removed.
    fn can_catch_up(&self, p: &super::replication::Progress) -> bool {
        let covered = self.snapshots.latest.as_ref().is_some_and(|meta| meta.last.seq.next() >= self.log.first());
        let from = p.next.min(Seq::after(p.matched));
        !p.needs_removed && (self.log.can_send_from(from) || covered)
    }

    /// Whether the voters of `membership` that answered within `ping_timeout`, hold the commit
    /// point and do not say they are catching up (this leader included) form a quorum of it: a
    /// configuration whose quorum would need nodes that are down, or catching up after losing
    /// data (they do not vote until a leader has caught them up and that is durable), is not
    /// entered. A follower that holds the commit point may still be catching up: its rejoin
    /// is not durable yet, and a crash then leaves it catching up again.
    fn healthy_quorum(&self, membership: &Membership) -> bool {
        let Some(leading) = self.role.leading() else { return false };
        let window = duration_nanos(self.config.ping_timeout);
        let counts_catching_up = self.mutant(Mutant::HealthyCatchingUp);
        let healthy = |id: NodeId| {
            id == self.id
                || leading.progress.iter().any(|p| {
                    p.id == id
                        && p.answered_within(self.now, window)
                        && p.matched >= self.commit
                        && (!p.catching_up || counts_catching_up)
                })
        };
        membership.is_quorum(healthy)
    }

    /// Appends a configuration entry (it is in force at once).
    fn propose_configuration(&mut self, next: &Configuration) {
        self.leader_append_entries(std::iter::once(Payload::Config(configuration_bytes(next))));
        self.broadcast_append();
        self.maybe_commit();
    }

    /// A leader that the committed configuration does not list as a voter hands leadership to
    /// the most up-to-date voter and steps down (at its next heartbeat, if that fails).
    fn step_down_if_removed(&mut self) {
        if self.is_voter(self.id) || self.log.configuration().is_none_or(|(seq, _)| Some(seq) > self.commit) {
            return;
        }
        let Some(leading) = self.role.leading() else { return };
        if leading.requests.transfer.is_some() {
            return;
        }
        let best = leading.progress.iter().filter(|p| self.is_voter(p.id)).max_by_key(|p| (p.matched, p.id));
        let Some(to) = best.map(|p| p.id) else { return };
        let deadline = self.now.plus(duration_nanos(self.config.election_timeout));
        let Some(leading) = self.role.leading_mut() else { return };
        leading.requests.transfer = Some(Transfer::new(to, None, deadline));
        self.advance_transfer();
    }

    /// On a tick: a change past its deadline fails (the steps already committed stay).
    pub(super) fn expire_change(&mut self, now: Time) {
        let Some(leading) = self.role.leading_mut() else { return };
        if leading.requests.change.as_ref().is_some_and(|c| c.deadline <= now) {
            let change = leading.requests.change.take().expect("checked");
            let why = format!(
                "the change to {} did not complete within change_timeout (a new voter did not catch up, or \
                 no quorum committed a step); the steps taken stay",
                change.target
            );
            self.reply(Origin::Local(change.id), Err(ClientError::ChangeFailed(why)));
        }
        // A leader that is no longer a voter and could not hand over steps down.
        let removed =
            !self.is_voter(self.id) && self.log.configuration().is_some_and(|(seq, _)| Some(seq) <= self.commit);
        let transferring = self.role.leading().is_some_and(|l| l.requests.transfer.is_some());
        if removed && !transferring && matches!(self.role, RoleState::Leader(_)) {
            let term = self.hard_state.term;
            self.become_follower(now, term, None);
        }
    }

    /// As leader: the change under way fails when leadership is lost.
    pub(super) fn fail_change(&mut self, change: Option<Change>, leader: Option<NodeId>) {
        if let Some(change) = change {
            self.reply(Origin::Local(change.id), Err(ClientError::NotLeader { leader }));
        }
    }
}

/// The next configuration on the way from `current` to `target`.
enum Step {
    /// Add the target's new nodes as learners first.
    Learners(Configuration),
    /// Voters or their quorum rule change: through the joint configuration (old, new).
    Joint(Membership, Membership),
    /// Only learners or addresses change: at once.
    Single(Membership),
}

fn next_step(current: &Membership, target: &Membership) -> Step {
    let joining: Vec<NodeId> = target.members().into_iter().filter(|id| !current.is_member(*id)).collect();
    let voting_changes = current.voters() != target.voters() || current.groups() != target.groups();
    if !joining.is_empty() && voting_changes {
        let learners = current.learners().iter().copied().chain(joining);
        let mut next = Membership::with_groups(current.voters().to_vec(), learners, current.groups().to_vec())
            .expect("new nodes added as learners to a valid membership");
        for (id, address) in current.addresses().iter().chain(target.addresses()) {
            next = next.with_address(*id, address.clone()).expect("a member's address");
        }
        return Step::Learners(Configuration::Single(next));
    }
    match voting_changes {
        true => Step::Joint(current.clone(), target.clone()),
        false => Step::Single(target.clone()),
    }
}

/// The target membership of `change` applied to `current`.
fn target_of(current: Membership, change: MembershipChange) -> Result<Membership, String> {
    let error = |e: ConfigError| e.to_string();
    let keep_addresses = |mut next: Membership| -> Result<Membership, String> {
        for (id, address) in current.addresses() {
            if next.is_member(*id) {
                next = next.with_address(*id, address.clone()).map_err(error)?;
            }
        }
        Ok(next)
    };
    let (voters, learners) = (current.voters().to_vec(), current.learners().to_vec());
    match change {
        MembershipChange::To(target) => Ok(target),
        MembershipChange::SetNodes(nodes) => {
            if !current.groups().is_empty() {
                return Err(
                    "the cluster uses quorum groups: say which group each node is in (MembershipChange::To)".into()
                );
            }
            keep_addresses(Membership::new(nodes, []).map_err(error)?)
        }
        MembershipChange::AddLearner { id, address } => {
            if current.is_member(id) {
                return Err(format!("node {id} is already a member"));
            }
            let next = keep_addresses(
                Membership::with_groups(voters, learners.into_iter().chain([id]), current.groups().to_vec())
                    .map_err(error)?,
            )?;
            match address {
                Some(address) => next.with_address(id, address).map_err(error),
                None => Ok(next),
            }
        }
        MembershipChange::Promote(id) => {
            if !learners.contains(&id) {
                return Err(format!("node {id} is not a learner"));
            }
            if !current.groups().is_empty() {
                return Err(
                    "the cluster uses quorum groups: say which group the node joins (MembershipChange::To)".into()
                );
            }
            let voters = voters.into_iter().chain([id]);
            keep_addresses(Membership::new(voters, learners.into_iter().filter(|l| *l != id)).map_err(error)?)
        }
        MembershipChange::Remove(id) => {
            if !current.is_member(id) {
                return Err(format!("node {id} is not a member"));
            }
            let groups: Vec<Vec<NodeId>> = current
                .groups()
                .iter()
                .map(|group| group.iter().copied().filter(|node| *node != id).collect::<Vec<_>>())
                .filter(|group| !group.is_empty())
                .collect();
            let voters = voters.into_iter().filter(|v| *v != id);
            let learners = learners.into_iter().filter(|l| *l != id);
            keep_addresses(Membership::with_groups(voters, learners, groups).map_err(error)?)
        }
    }
}
