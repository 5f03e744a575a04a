//! A node's role and what only that role keeps: the votes of a (pre-)candidate, the progress,
//! requests and read rounds of a leader. Code that needs a role's state reaches it through the
//! variant (`let RoleState::Leader(leading) = &mut self.role else { ... }`), so it cannot run
//! on a node of another role.

use super::client::LeaderRequests;
use super::replication::Progress;
use super::types::{NodeId, Role, Seq, Time};
use smallvec::SmallVec;

/// The nodes whose (pre-)votes a candidate counted, itself included once its vote is durable.
pub(super) type Votes = SmallVec<[NodeId; 8]>;

/// A node's role with the state only that role has.
#[derive(Debug)]
pub(super) enum RoleState {
    /// Follows a leader, or waits for one.
    Follower,
    /// Asks whether it could win an election, without raising its term (Raft thesis §9.6).
    PreCandidate(Votes),
    /// Campaigns in its term.
    Candidate(Votes),
    /// Leads its term.
    Leader(Box<LeaderState>),
}

/// What only a leader keeps.
#[derive(Debug)]
pub(super) struct LeaderState {
    /// One per peer, in the order of `Raft::peers`.
    pub(super) progress: Vec<Progress>,
    pub(super) heartbeat_deadline: Time,
    /// The seq of the entry this leader appended first (a blank, or the founding configuration).
    pub(super) term_start: Seq,
    pub(super) requests: LeaderRequests,
    /// When a snapshot chunk held back while clients wait may go (see `snapshot.rs`).
    pub(super) snapshot_wake: Option<Time>,
}

impl RoleState {
    /// The role, as the public API names it.
    pub(super) fn kind(&self) -> Role {
        match self {
            RoleState::Follower => Role::Follower,
            RoleState::PreCandidate(_) => Role::PreCandidate,
            RoleState::Candidate(_) => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    /// The leader's state, when leading.
    pub(super) fn leading(&self) -> Option<&LeaderState> {
        match self {
            RoleState::Leader(leading) => Some(leading),
            _ => None,
        }
    }

    /// The leader's state, when leading.
    pub(super) fn leading_mut(&mut self) -> Option<&mut LeaderState> {
        match self {
            RoleState::Leader(leading) => Some(leading),
            _ => None,
        }
    }

    /// Whether this node leads.
    pub(super) fn is_leader(&self) -> bool {
        matches!(self, RoleState::Leader(_))
    }
}
