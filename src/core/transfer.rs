//! Leader transfer (Raft thesis §3.10): the leader brings the target's log up to its own, then
//! tells it to campaign at once (`TimeoutNow`); the target's vote requests say so, and voters
//! answer them even while they hear from the leader (its lease would make them ignore any other
//! candidate). Appends wait meanwhile, so the target stays up to date: they run if the transfer
//! fails, and go to the new leader if it succeeds. The client's reply comes when this node
//! hears from the target as leader, or `TransferFailed` after an election timeout.

use super::client::Origin;
use super::io::{ClientError, Event, Response};
use super::message::Body;
use super::mutant::Mutant;
use super::raft::{duration_nanos, Raft};
use super::role::RoleState;
use super::types::{NodeId, RequestId, Time};
use bytes::Bytes;
use smallvec::SmallVec;

/// A leader transfer the leader is carrying out.
#[derive(Debug)]
pub(crate) struct Transfer {
    /// The node leadership goes to.
    pub(crate) to: NodeId,
    /// The client waiting for the outcome (none when the leader hands over for priority).
    pub(crate) id: Option<RequestId>,
    /// When it fails if the target has not taken over.
    pub(crate) deadline: Time,
    /// Whether `TimeoutNow` was sent.
    sent: bool,
    /// Appends that arrived meanwhile, with their deadlines.
    pub(crate) held: Vec<(Origin, SmallVec<[Bytes; 1]>, Time)>,
}

impl Transfer {
    /// A transfer to `to` for the client `id` (none: the leader's own decision).
    pub(crate) fn new(to: NodeId, id: Option<RequestId>, deadline: Time) -> Transfer {
        Transfer { to, id, deadline, sent: false, held: Vec::new() }
    }
}

impl Raft {
    pub(super) fn on_transfer_leader(&mut self, now: Time, id: RequestId, to: NodeId) {
        let refused = if let Some(error) = self.refuses_leader_request() {
            Some(error)
        } else if to != self.id && !self.peers.contains(&to) {
            Some(ClientError::Invalid(format!("node {to} is not in the cluster")))
        } else if to != self.id && !self.is_voter(to) && !self.mutant(Mutant::TransferToLearner) {
            Some(ClientError::Invalid(format!("node {to} is a learner: only a voter can lead (promote it first)")))
        } else if self.stranded().contains(&to) {
            Some(ClientError::Invalid(format!(
                "node {to} cannot take over: it needs entries this log no longer holds, and there is no snapshot to send"
            )))
        } else {
            let busy = self.role.leading().and_then(|l| l.requests.transfer.as_ref()).map(|t| t.to);
            busy.map(|other| ClientError::Invalid(format!("a leader transfer to {other} is in progress")))
        };
        if let Some(error) = refused {
            return self.reply(Origin::Local(id), Err(error));
        }
        if to == self.id {
            return self.reply(Origin::Local(id), Ok(Response::Transferred { to }));
        }
        let deadline = now.plus(duration_nanos(self.config.election_timeout));
        let Some(leading) = self.role.leading_mut() else { return };
        leading.requests.transfer = Some(Transfer::new(to, Some(id), deadline));
        self.advance_transfer();
    }

    /// On a heartbeat: a healthy leader (a quorum answered within `ping_timeout`, an entry of
    /// its term committed, no transfer under way) hands leadership to the caught-up, responsive
    /// node of the highest priority above its own, if any (`Config::priority`).
    pub(super) fn maybe_transfer_for_priority(&mut self, now: Time) {
        let own = self.config.priority_of(self.id);
        if self.config.priority.is_empty() || now < self.priority_backoff_until {
            return;
        }
        let window = duration_nanos(self.config.ping_timeout);
        let (last, committed_own_term) =
            (self.log.last_seq(), self.commit.and_then(|c| self.log.term_at(c)) == Some(self.hard_state.term));
        let Some(leading) = self.role.leading().filter(|l| l.requests.transfer.is_none() && committed_own_term) else {
            return;
        };
        let answered = |id: NodeId| leading.progress.iter().any(|p| p.id == id && p.answered_within(now, window));
        if !self.is_quorum(|id| id == self.id || answered(id)) {
            return; // Unhealthy: leave it be.
        }
        let ready = leading.progress.iter().filter(|p| p.matched == last && p.answered_within(now, window));
        let ready = ready.filter(|p| self.is_voter(p.id));
        let best = ready.map(|p| (self.config.priority_of(p.id), p.id)).filter(|(p, _)| *p > own).max();
        let Some((_, to)) = best else { return };
        let deadline = now.plus(duration_nanos(self.config.election_timeout));
        let Some(leading) = self.role.leading_mut() else { return };
        leading.requests.transfer = Some(Transfer::new(to, None, deadline));
        self.advance_transfer();
    }

    /// Whether appends wait for a leader transfer.
    pub(super) fn transferring(&self) -> bool {
        self.role.leading().is_some_and(|l| l.requests.transfer.is_some())
    }

    /// Holds an append that arrived during a transfer.
    pub(super) fn hold_append(&mut self, origin: Origin, data: SmallVec<[Bytes; 1]>, deadline: Time) {
        if let Some(transfer) = self.role.leading_mut().and_then(|l| l.requests.transfer.as_mut()) {
            transfer.held.push((origin, data, deadline));
        }
    }

    /// Tells the target to campaign once its log matches this leader's; until then, sends it
    /// what it lacks.
    pub(super) fn advance_transfer(&mut self) {
        let last = self.log.last_seq();
        let Some(to) = self.role.leading().and_then(|l| l.requests.transfer.as_ref()).map(|t| t.to) else { return };
        // A change may have made the target a learner since (the transfer then fails at its
        // deadline).
        let voter = self.is_voter(to) || self.mutant(Mutant::TransferToLearner);
        let Some(leading) = self.role.leading_mut() else { return };
        let Some(transfer) = leading.requests.transfer.as_mut().filter(|t| !t.sent) else { return };
        let Some(index) = self.peers.iter().position(|id| *id == to) else { return };
        if leading.progress[index].matched == last && voter {
            transfer.sent = true;
            let early = transfer.id.filter(|_| self.mutant(Mutant::TransferReplyEarly));
            self.send(to, Body::TimeoutNow);
            if let Some(id) = early {
                if let Some(transfer) = self.role.leading_mut().and_then(|l| l.requests.transfer.as_mut()) {
                    transfer.id = None;
                }
                self.reply(Origin::Local(id), Ok(Response::Transferred { to }));
            }
        } else {
            self.send_append(index);
        }
    }

    /// The leader asks this node to take over: it campaigns now (unless it cannot: it is
    /// catching up after a data loss, or its storage failed or stalled).
    pub(super) fn on_timeout_now(&mut self, now: Time, from: NodeId) {
        if self.leader != Some(from) || !matches!(self.role, RoleState::Follower) {
            return; // Late: from a leader this node no longer follows.
        }
        if self.withholds_vote() || self.failed || self.writes.stalled {
            return self.event(Event::Warn(format!(
                "node {} cannot take over from leader {from}: it is catching up or its storage failed",
                self.id
            )));
        }
        self.campaign(now, true);
    }

    /// On a tick: a transfer past its deadline fails, and the held appends run.
    pub(super) fn expire_transfer(&mut self, now: Time) {
        let expired = self.role.leading_mut().and_then(|l| {
            let due = l.requests.transfer.as_ref().is_some_and(|t| t.deadline <= now);
            due.then(|| l.requests.transfer.take()).flatten()
        });
        if let Some(transfer) = expired {
            if let Some(id) = transfer.id {
                self.reply(Origin::Local(id), Err(ClientError::TransferFailed { to: transfer.to }));
            } else {
                // A transfer for priority failed: not again for a while.
                let wait = duration_nanos(self.config.election_timeout).saturating_mul(10);
                self.priority_backoff_until = now.plus(wait);
            }
            for (origin, data, deadline) in transfer.held {
                match deadline > now {
                    true => self.leader_append(origin, data.into_iter(), deadline),
                    // Its time ran out while it waited: it is not appended.
                    false => self.reply(origin, Err(ClientError::Timeout)),
                }
            }
        }
        if let Some((id, to, _)) = self.client.transfer_reply.filter(|(_, _, deadline)| *deadline <= now) {
            self.client.transfer_reply = None;
            self.reply(Origin::Local(id), Err(ClientError::TransferFailed { to }));
        }
    }

    /// This leader stepped down with a transfer under way: the reply waits until a leader is
    /// known; held appends go to whoever leads (a forwarded one is answered "not leader": it
    /// was not executed, and the forwarder's client may send it again).
    pub(super) fn stepped_down_transferring(&mut self, transfer: Transfer) {
        self.client.transfer_reply = transfer.id.map(|id| (id, transfer.to, transfer.deadline));
        for (origin, data, deadline) in transfer.held {
            match origin {
                Origin::Local(id) => self.requeue_append(id, data, deadline),
                Origin::Forwarded(..) => self.reply(origin, Err(ClientError::NotLeader { leader: self.leader })),
            }
        }
        self.transfer_outcome();
    }

    /// A leader is known (or this node leads): a transfer reply waiting for it is given.
    pub(super) fn transfer_outcome(&mut self) {
        let Some(leader) = self.leader else { return };
        let Some((id, to, _)) = self.client.transfer_reply.take() else { return };
        let result =
            if leader == to { Ok(Response::Transferred { to }) } else { Err(ClientError::TransferFailed { to }) };
        self.reply(Origin::Local(id), result);
    }
}
