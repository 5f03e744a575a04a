//! Removing a log prefix on request. With a state machine, snapshots decide it (see
//! `snapshot.rs`); without one (the JavaScript library's use: the log is the product), it is the
//! user's call, as there is nothing to rebuild a follower from but the entries themselves: a
//! prefix removal takes only committed entries, and the leader refuses one that a member
//! (voter or learner) still needs unless forced. A follower that needs removed entries anyway
//! (the leader was forced, a node that removed its prefix became leader, or the follower joined
//! or lost its disk since) cannot catch up from this leader: it is named once in a warn event
//! and listed by [`Raft::stranded`](super::Raft::stranded), still gets heartbeats (it knows its
//! leader, and does not campaign), and is neither made a voter (see `change.rs`) nor handed
//! leadership. Storage keeps the last entry removed (see `Write::RemovePrefix`), so that a
//! restarted node knows the term its log continues from; a follower that lost that entry takes
//! an append naming it as committed.

use super::client::Origin;
use super::io::{ClientError, Response};
use super::mutant::Mutant;
use super::raft::Raft;
use super::types::{NodeId, RequestId, Seq};

impl Raft {
    /// A client asks to remove the entries at or below `through` from this node's log.
    pub(super) fn on_client_remove_prefix(&mut self, id: RequestId, through: Seq, force: bool) {
        let result = self.remove_prefix_checked(through, force);
        self.reply(Origin::Local(id), result);
    }

    fn remove_prefix_checked(&mut self, through: Seq, force: bool) -> Result<Response, ClientError> {
        let invalid = |why: String| Err(ClientError::Invalid(why));
        if let Some(error) = self.refuses_local_request() {
            return Err(error);
        }
        if Some(through) > self.commit {
            let commit = self.commit.map_or("none".into(), |c| c.to_string());
            return invalid(format!(
                "only committed entries can be removed: {through} is past the commit point {commit}"
            ));
        }
        let covered = self.snapshots.latest.as_ref().map(|meta| meta.last.seq);
        let unchecked = force && self.mutant(Mutant::ForcedPastSnapshot);
        if self.config.state_machine && Some(through) > covered && !unchecked {
            let covered = covered.map_or("none".into(), |c| c.to_string());
            return invalid(format!(
                "no durable snapshot covers {through} (the latest ends at {covered}): take one first"
            ));
        }
        let needing = self.members_needing(through);
        if !needing.is_empty() && !force {
            let listed: Vec<String> = needing.iter().map(NodeId::to_string).collect();
            let then = if self.config.state_machine {
                "they then catch up from a snapshot"
            } else {
                "they then cannot catch up from this leader"
            };
            return invalid(format!(
                "members {} still need entries up to {through}; remove them anyway with force ({then})",
                listed.join(", ")
            ));
        }
        self.remove_prefix(through);
        Ok(Response::PrefixRemoved { first: self.log.first() })
    }

    /// As leader: the members (voters and learners: the peers it replicates to) whose logs do
    /// not yet hold the entries up to `through`. A learner stranded without them could never
    /// be made a voter.
    fn members_needing(&self, through: Seq) -> Vec<NodeId> {
        let Some(leading) = self.role.leading() else { return Vec::new() };
        let needing = leading.progress.iter().filter(|p| p.matched < Some(through));
        needing.map(|p| p.id).collect()
    }

    /// Whether [`stranded`](Raft::stranded) names any follower (cheap).
    pub fn has_stranded(&self) -> bool {
        self.role.leading().is_some_and(|leading| leading.progress.iter().any(|p| p.needs_removed))
    }

    /// As leader: the followers that need entries its log no longer holds and that it has no
    /// snapshot to send.
    pub fn stranded(&self) -> Vec<NodeId> {
        let Some(leading) = self.role.leading() else { return Vec::new() };
        leading.progress.iter().filter(|p| p.needs_removed).map(|p| p.id).collect()
    }
}
