//! Cluster membership: which nodes vote and which only learn, and the joint configuration a
//! change passes through (Raft thesis §4.3). This file holds the data and its rules (quorums,
//! commit points, validation); its encoding is in `codec.rs`. (Issue 13 builds on it: the
//! configuration as a log entry, learners, `set_nodes`.)

use super::config::ConfigError;
use super::quorum::{groups_commit_point, majority_in_each, Quorum};
use super::types::{NodeId, Quoted, Seq};
use bytes::Bytes;
use smallvec::SmallVec;
use std::fmt;

/// One configuration: the voters, who elect leaders and commit entries under a majority in
/// every quorum group (one group of all voters unless groups are given), and the learners, who
/// receive the log and never vote or count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    voters: Vec<NodeId>,
    learners: Vec<NodeId>,
    /// Quorum groups over the voters (`Quorum::Groups`); empty: one group of all voters.
    groups: Vec<Vec<NodeId>>,
    /// An opaque address per member, for transports (sorted by id; members may have none).
    addresses: Vec<(NodeId, Bytes)>,
}

impl Membership {
    /// Voters and learners (any order), with a majority of the voters as quorum. Refuses no
    /// voter, a node listed twice, or a node both voter and learner.
    pub fn new(
        voters: impl IntoIterator<Item = NodeId>,
        learners: impl IntoIterator<Item = NodeId>,
    ) -> Result<Membership, ConfigError> {
        Membership::with_groups(voters, learners, Vec::new())
    }

    /// Like [`new`](Membership::new), with quorum groups over the voters (a majority in every
    /// group decides: every voter in exactly one group, each group non-empty).
    pub fn with_groups(
        voters: impl IntoIterator<Item = NodeId>,
        learners: impl IntoIterator<Item = NodeId>,
        groups: Vec<Vec<NodeId>>,
    ) -> Result<Membership, ConfigError> {
        let sorted = |ids: &mut Vec<NodeId>| -> Result<(), ConfigError> {
            ids.sort_unstable();
            match ids.windows(2).find(|pair| pair[0] == pair[1]) {
                Some(pair) => Err(ConfigError::DuplicateNode(pair[0])),
                None => Ok(()),
            }
        };
        let (mut voters, mut learners): (Vec<NodeId>, Vec<NodeId>) =
            (voters.into_iter().collect(), learners.into_iter().collect());
        sorted(&mut voters)?;
        sorted(&mut learners)?;
        if voters.is_empty() {
            return Err(ConfigError::NoNodes);
        }
        if let Some(both) = learners.iter().find(|id| voters.binary_search(id).is_ok()) {
            return Err(ConfigError::DuplicateNode(*both));
        }
        if !groups.is_empty() {
            Quorum::Groups(groups.clone()).validate(&voters)?;
        }
        Ok(Membership { voters, learners, groups, addresses: Vec::new() })
    }

    /// This membership with `address` as member `id`'s address (an opaque blob the core
    /// stores and replicates with the configuration, for transports: for example
    /// `host:port`). Refuses a node that is not a member.
    pub fn with_address(mut self, id: NodeId, address: Bytes) -> Result<Membership, ConfigError> {
        if !self.is_member(id) {
            return Err(ConfigError::NotAMember(id));
        }
        match self.addresses.binary_search_by_key(&id, |(node, _)| *node) {
            Ok(at) => self.addresses[at].1 = address,
            Err(at) => self.addresses.insert(at, (id, address)),
        }
        Ok(self)
    }

    /// Each member's address, sorted by id (members without one are not listed).
    pub fn addresses(&self) -> &[(NodeId, Bytes)] {
        &self.addresses
    }

    /// Member `id`'s address, if it has one.
    pub fn address(&self, id: NodeId) -> Option<&Bytes> {
        self.addresses.binary_search_by_key(&id, |(node, _)| *node).ok().map(|at| &self.addresses[at].1)
    }

    /// Every voter and learner, sorted.
    pub fn members(&self) -> Vec<NodeId> {
        let mut all: Vec<NodeId> = self.voters.iter().chain(&self.learners).copied().collect();
        all.sort_unstable();
        all
    }

    /// The voters, sorted.
    pub fn voters(&self) -> &[NodeId] {
        &self.voters
    }

    /// The learners, sorted.
    pub fn learners(&self) -> &[NodeId] {
        &self.learners
    }

    /// The quorum groups (empty: one group of all voters).
    pub fn groups(&self) -> &[Vec<NodeId>] {
        &self.groups
    }

    /// Whether `id` votes.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.binary_search(&id).is_ok()
    }

    /// Whether `id` is a voter or a learner.
    pub fn is_member(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.learners.binary_search(&id).is_ok()
    }

    /// Whether the voters for which `member` is true form a quorum (learners never count).
    pub fn is_quorum(&self, member: impl Fn(NodeId) -> bool) -> bool {
        match self.groups.is_empty() {
            true => Quorum::Majority.is_quorum(&self.voters, member),
            false => majority_in_each(&self.groups, member),
        }
    }

    /// The highest seq a quorum of voters hold, given each node's highest matching seq
    /// (`matched`; learners are not asked).
    pub fn commit_point(&self, matched: impl Fn(NodeId) -> Option<Seq>) -> Option<Seq> {
        let matches: SmallVec<[(NodeId, Option<Seq>); 16]> = self.voters.iter().map(|id| (*id, matched(*id))).collect();
        match self.groups.is_empty() {
            true => Quorum::Majority.commit_point(&matches),
            false => groups_commit_point(&self.groups, &matches),
        }
    }
}

/// The configuration in force: one membership, or two while a change is under way, when
/// elections and commits need a quorum of each (joint consensus, Raft thesis §4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Configuration {
    /// No change under way.
    Single(Membership),
    /// Changing from `old` to `new`.
    Joint {
        /// The configuration being left.
        old: Membership,
        /// The configuration being entered.
        new: Membership,
    },
}

impl Configuration {
    /// The memberships whose quorums count: one, or both while joint.
    pub(crate) fn parts(&self) -> impl Iterator<Item = &Membership> {
        let (first, second) = match self {
            Configuration::Single(only) => (only, None),
            Configuration::Joint { old, new } => (old, Some(new)),
        };
        std::iter::once(first).chain(second)
    }

    /// Whether the nodes for which `member` is true form a quorum of every part.
    pub fn is_quorum(&self, member: impl Fn(NodeId) -> bool) -> bool {
        self.parts().all(|part| part.is_quorum(&member))
    }

    /// The highest seq held by a quorum of every part.
    pub fn commit_point(&self, matched: impl Fn(NodeId) -> Option<Seq>) -> Option<Seq> {
        self.parts().map(|part| part.commit_point(&matched)).min().flatten()
    }

    /// Whether `id` votes in some part.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.parts().any(|part| part.is_voter(id))
    }

    /// Whether `id` is a voter or learner of some part.
    pub fn is_member(&self, id: NodeId) -> bool {
        self.parts().any(|part| part.is_member(id))
    }

    /// Every voter and learner of every part, sorted, once each.
    pub fn members(&self) -> Vec<NodeId> {
        let mut all: Vec<NodeId> =
            self.parts().flat_map(|part| part.voters.iter().chain(&part.learners)).copied().collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The configuration a change ends in: the only one, or `new` while joint.
    pub fn target(&self) -> &Membership {
        match self {
            Configuration::Single(only) => only,
            Configuration::Joint { new, .. } => new,
        }
    }

    /// Whether a change is under way (old and new both count).
    pub fn is_joint(&self) -> bool {
        matches!(self, Configuration::Joint { .. })
    }

    /// Member `id`'s address in the newest part that has one.
    pub fn address(&self, id: NodeId) -> Option<&Bytes> {
        match self {
            Configuration::Single(only) => only.address(id),
            Configuration::Joint { old, new } => new.address(id).or_else(|| old.address(id)),
        }
    }
}

impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = |ids: &[NodeId]| ids.iter().map(NodeId::to_string).collect::<Vec<_>>().join(",");
        write!(f, "voters=[{}]", ids(&self.voters))?;
        if !self.learners.is_empty() {
            write!(f, " learners=[{}]", ids(&self.learners))?;
        }
        if !self.groups.is_empty() {
            let groups: Vec<String> = self.groups.iter().map(|group| format!("[{}]", ids(group))).collect();
            write!(f, " groups={}", groups.join(""))?;
        }
        for (id, address) in &self.addresses {
            write!(f, " {id}@{}", Quoted(address))?;
        }
        Ok(())
    }
}

impl fmt::Display for Configuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Configuration::Single(only) => write!(f, "{only}"),
            Configuration::Joint { old, new } => write!(f, "joint old({old}) new({new})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u64]) -> Vec<NodeId> {
        list.iter().copied().map(NodeId).collect()
    }

    fn members(voters: &[u64], learners: &[u64]) -> Membership {
        Membership::new(ids(voters), ids(learners)).unwrap()
    }

    #[test]
    fn bad_memberships_are_refused_by_name() {
        assert_eq!(Membership::new(ids(&[]), ids(&[1])), Err(ConfigError::NoNodes));
        assert_eq!(Membership::new(ids(&[1, 2, 1]), ids(&[])), Err(ConfigError::DuplicateNode(NodeId(1))));
        assert_eq!(Membership::new(ids(&[1, 2]), ids(&[3, 2])), Err(ConfigError::DuplicateNode(NodeId(2))));
        let unknown = Membership::with_groups(ids(&[1, 2, 3]), ids(&[]), vec![ids(&[1, 2]), ids(&[4])]);
        assert!(matches!(unknown, Err(ConfigError::BadGroups(_))), "{unknown:?}");
        let sorted = Membership::new(ids(&[3, 1, 2]), ids(&[5, 4])).unwrap();
        assert_eq!((sorted.voters(), sorted.learners()), (&ids(&[1, 2, 3])[..], &ids(&[4, 5])[..]));
    }

    #[test]
    fn learners_never_count() {
        let m = members(&[1, 2, 3], &[4, 5]);
        assert!(!m.is_quorum(|id| [1, 4, 5].contains(&id.0)), "one voter and two learners");
        assert!(m.is_quorum(|id| [1, 2].contains(&id.0)));
        let matched = |id: NodeId| Some(Seq(if id.0 >= 4 { 100 } else { id.0 }));
        assert_eq!(m.commit_point(matched), Some(Seq(2)), "the learners' 100 does not count");
        assert!(m.is_member(NodeId(4)) && !m.is_voter(NodeId(4)));
    }

    #[test]
    fn joint_needs_a_quorum_of_old_and_of_new() {
        // 1,2,3 -> 3,4,5: {1,2,3} is all of old but one of new; {3,4,5} the reverse.
        let joint = Configuration::Joint { old: members(&[1, 2, 3], &[]), new: members(&[3, 4, 5], &[]) };
        assert!(!joint.is_quorum(|id| [1, 2, 3].contains(&id.0)));
        assert!(!joint.is_quorum(|id| [3, 4, 5].contains(&id.0)));
        assert!(joint.is_quorum(|id| [1, 3, 4].contains(&id.0)));
        // Old holds 9 on a majority (1, 2), new only 4 (on 4 and 5): 4 is committed.
        let matched = |id: NodeId| Some(Seq([0, 9, 9, 1, 4, 4][id.0 as usize]));
        assert_eq!(joint.commit_point(matched), Some(Seq(4)));
        assert_eq!(joint.members(), ids(&[1, 2, 3, 4, 5]));
        assert!(joint.is_voter(NodeId(1)) && joint.is_voter(NodeId(5)));
        let single = Configuration::Single(members(&[1, 2, 3], &[4]));
        assert_eq!(single.commit_point(matched), Some(Seq(9)));
        assert_eq!(single.members(), ids(&[1, 2, 3, 4]));
    }

    #[test]
    fn groups_need_a_majority_in_each_group() {
        let m = Membership::with_groups(ids(&[1, 2, 3, 4]), ids(&[]), vec![ids(&[1, 2]), ids(&[3, 4])]).unwrap();
        assert!(!m.is_quorum(|id| [1, 2, 3].contains(&id.0)), "group 2 has one of two");
        assert!(m.is_quorum(|id| id.0 > 0));
        let matched = |id: NodeId| Some(Seq([0, 8, 7, 6, 5][id.0 as usize]));
        assert_eq!(m.commit_point(matched), Some(Seq(5)));
    }
}
