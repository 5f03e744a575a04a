//! Quorum rules: which sets of nodes may elect a leader and commit an entry.
//!
//! The JavaScript library's default, `ceil(n/2)` nodes, lets two disjoint halves of a 4-node
//! cluster both elect a leader. Here every rule is checked at construction: if two disjoint sets
//! could both be quorums the config is rejected, naming them. The commit point is computed from
//! the match indexes directly (sorting), never by enumerating the 2^n subsets.

use super::config::ConfigError;
use super::types::{NodeId, Seq};
use smallvec::SmallVec;
use std::fmt;
use std::sync::Arc;

/// A custom quorum rule: given a set of node ids (sorted ascending), is it a quorum?
/// It must be monotone (adding nodes to a quorum keeps it a quorum) and any two sets it accepts
/// must share a node; both are checked when the config is validated.
pub type QuorumFn = Arc<dyn Fn(&[NodeId]) -> bool + Send + Sync>;

/// Which sets of nodes form a quorum.
#[derive(Clone, Default)]
pub enum Quorum {
    /// More than half of the nodes (`n/2 + 1`). The default.
    #[default]
    Majority,
    /// At least this many nodes, counting the leader or candidate itself (the seed's numeric
    /// `quorum`). Must be more than half of the nodes.
    Count(usize),
    /// A majority within every group, for example "a majority in CloudA and a majority in
    /// CloudB" (the seed's `group` and `groupFn`). Every node belongs to exactly one group.
    Groups(Vec<Vec<NodeId>>),
    /// A rule of the user's own (the seed's `groupFn`), over at most 16 nodes.
    Custom(QuorumFn),
}

impl fmt::Debug for Quorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quorum::Majority => write!(f, "Majority"),
            Quorum::Count(n) => write!(f, "Count({n})"),
            Quorum::Groups(groups) => f.debug_tuple("Groups").field(groups).finish(),
            Quorum::Custom(_) => write!(f, "Custom(..)"),
        }
    }
}

impl Quorum {
    /// Checks the rule against the cluster's nodes (sorted, distinct).
    pub(crate) fn validate(&self, nodes: &[NodeId]) -> Result<(), ConfigError> {
        match self {
            Quorum::Majority => Ok(()),
            Quorum::Count(count) => {
                if *count == 0 || *count > nodes.len() {
                    return Err(ConfigError::NoQuorum);
                }
                if 2 * count <= nodes.len() {
                    let first = nodes[..*count].to_vec();
                    let second = nodes[*count..2 * count].to_vec();
                    return Err(ConfigError::DisjointQuorums(first, second));
                }
                Ok(())
            }
            Quorum::Groups(groups) => validate_groups(groups, nodes),
            Quorum::Custom(rule) => validate_custom(rule, nodes),
        }
    }

    /// Whether the nodes for which `member` is true form a quorum. `nodes` are all the nodes.
    pub fn is_quorum(&self, nodes: &[NodeId], member: impl Fn(NodeId) -> bool) -> bool {
        match self {
            Quorum::Majority => nodes.iter().filter(|id| member(**id)).count() > nodes.len() / 2,
            Quorum::Count(count) => nodes.iter().filter(|id| member(**id)).count() >= *count,
            Quorum::Groups(groups) => majority_in_each(groups, member),
            Quorum::Custom(rule) => {
                let set: SmallVec<[NodeId; 16]> = nodes.iter().copied().filter(|id| member(*id)).collect();
                rule(&set)
            }
        }
    }

    /// The highest seq that a quorum of nodes hold, given each node's highest matching seq
    /// (`matches` pairs node ids with match points; every node appears once).
    pub fn commit_point(&self, matches: &[(NodeId, Option<Seq>)]) -> Option<Seq> {
        match self {
            Quorum::Majority => kth_highest(matches.iter().map(|m| m.1), matches.len() / 2 + 1),
            Quorum::Count(count) => kth_highest(matches.iter().map(|m| m.1), *count),
            Quorum::Groups(groups) => groups_commit_point(groups, matches),
            Quorum::Custom(rule) => {
                let mut values: SmallVec<[Option<Seq>; 16]> = matches.iter().map(|m| m.1).collect();
                values.sort_unstable_by(|a, b| b.cmp(a));
                values.dedup();
                let mut ids: SmallVec<[NodeId; 16]> = matches.iter().map(|m| m.0).collect();
                ids.sort_unstable();
                for value in values {
                    let set: SmallVec<[NodeId; 16]> =
                        ids.iter().copied().filter(|id| matches.iter().any(|m| m.0 == *id && m.1 >= value)).collect();
                    if rule(&set) {
                        return value;
                    }
                }
                None
            }
        }
    }
}

/// Whether the nodes for which `member` is true are a majority of every group.
pub(crate) fn majority_in_each(groups: &[Vec<NodeId>], member: impl Fn(NodeId) -> bool) -> bool {
    groups.iter().all(|group| group.iter().filter(|id| member(**id)).count() > group.len() / 2)
}

/// The highest seq held by a majority of every group.
pub(crate) fn groups_commit_point(groups: &[Vec<NodeId>], matches: &[(NodeId, Option<Seq>)]) -> Option<Seq> {
    let in_group = |group: &Vec<NodeId>| {
        let values = matches.iter().filter(|m| group.contains(&m.0)).map(|m| m.1);
        kth_highest(values, group.len() / 2 + 1)
    };
    groups.iter().map(in_group).min().flatten()
}

/// The k-th highest of `values` (k from 1), or `None` when there are fewer than k.
fn kth_highest(values: impl Iterator<Item = Option<Seq>>, k: usize) -> Option<Seq> {
    let mut values: SmallVec<[Option<Seq>; 16]> = values.collect();
    if k == 0 || k > values.len() {
        return None;
    }
    values.sort_unstable_by(|a, b| b.cmp(a));
    values[k - 1]
}

fn validate_groups(groups: &[Vec<NodeId>], nodes: &[NodeId]) -> Result<(), ConfigError> {
    if groups.iter().any(Vec::is_empty) {
        return Err(ConfigError::BadGroups("a group is empty".into()));
    }
    for node in nodes {
        let count = groups.iter().filter(|group| group.contains(node)).count();
        if count == 0 {
            return Err(ConfigError::BadGroups(format!("node {node} is in no group")));
        }
        if count > 1 || groups.iter().any(|g| g.iter().filter(|id| *id == node).count() > 1) {
            return Err(ConfigError::BadGroups(format!("node {node} is listed more than once")));
        }
    }
    if let Some(unknown) = groups.iter().flatten().find(|id| !nodes.contains(id)) {
        return Err(ConfigError::BadGroups(format!("node {unknown} is not one of `nodes`")));
    }
    // A majority of every group: any two such sets share a node of the first group.
    Ok(())
}

fn validate_custom(rule: &QuorumFn, nodes: &[NodeId]) -> Result<(), ConfigError> {
    let n = nodes.len();
    if n > 16 {
        return Err(ConfigError::TooManyNodesForCustomQuorum(n));
    }
    let set_of =
        |mask: usize| -> Vec<NodeId> { (0..n).filter(|bit| mask & (1 << bit) != 0).map(|bit| nodes[bit]).collect() };
    let full = (1usize << n) - 1;
    let accepted: Vec<bool> = (0..=full).map(|mask| rule(&set_of(mask))).collect();
    if !accepted[full] {
        return Err(ConfigError::NoQuorum);
    }
    for mask in 0..=full {
        if !accepted[mask] {
            continue;
        }
        for bit in 0..n {
            let bigger = mask | (1 << bit);
            if !accepted[bigger] {
                return Err(ConfigError::NotMonotone { set: set_of(mask), superset: set_of(bigger) });
            }
        }
        // For a monotone rule, two disjoint quorums exist iff some quorum's complement is one.
        if accepted[full & !mask] {
            return Err(ConfigError::DisjointQuorums(set_of(mask), set_of(full & !mask)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(range: std::ops::RangeInclusive<u64>) -> Vec<NodeId> {
        range.map(NodeId).collect()
    }

    fn matches(values: &[Option<u64>]) -> Vec<(NodeId, Option<Seq>)> {
        values.iter().enumerate().map(|(i, v)| (NodeId(i as u64 + 1), v.map(Seq))).collect()
    }

    #[test]
    fn majority_commit_point_is_the_median() {
        let q = Quorum::Majority;
        assert_eq!(q.commit_point(&matches(&[Some(5), Some(3), None])), Some(Seq(3)));
        assert_eq!(q.commit_point(&matches(&[Some(5), None, None])), None);
        assert_eq!(q.commit_point(&matches(&[Some(5), Some(7), Some(1), Some(2)])), Some(Seq(2)));
        assert_eq!(q.commit_point(&matches(&[Some(9)])), Some(Seq(9)));
    }

    #[test]
    fn ceil_half_is_rejected_for_even_clusters() {
        // The seed's default for 4 nodes: 2. Two halves could each elect a leader.
        let err = Quorum::Count(2).validate(&ids(1..=4)).unwrap_err();
        assert_eq!(err, ConfigError::DisjointQuorums(ids(1..=2), ids(3..=4)));
        assert_eq!(Quorum::Count(3).validate(&ids(1..=4)), Ok(()));
        assert_eq!(Quorum::Count(5).validate(&ids(1..=4)), Err(ConfigError::NoQuorum));
    }

    #[test]
    fn full_replication_count() {
        let q = Quorum::Count(3);
        assert_eq!(q.commit_point(&matches(&[Some(5), Some(3), Some(4)])), Some(Seq(3)));
        assert!(!q.is_quorum(&ids(1..=3), |id| id != NodeId(2)));
    }

    #[test]
    fn groups_need_a_majority_in_each() {
        let q = Quorum::Groups(vec![ids(1..=3), ids(4..=6)]);
        assert_eq!(q.validate(&ids(1..=6)), Ok(()));
        let all = ids(1..=6);
        assert!(q.is_quorum(&all, |id| [1, 2, 4, 5].contains(&id.0)));
        assert!(!q.is_quorum(&all, |id| [1, 2, 3, 4].contains(&id.0)));
        let m = matches(&[Some(9), Some(8), Some(1), Some(7), Some(2), Some(2)]);
        // Group 1: 8 is on a majority; group 2: only 2. The entry must be on both.
        assert_eq!(q.commit_point(&m), Some(Seq(2)));
    }

    #[test]
    fn bad_groups_are_named() {
        let nodes = ids(1..=4);
        let missing = Quorum::Groups(vec![ids(1..=2), vec![NodeId(3)]]).validate(&nodes);
        assert_eq!(missing, Err(ConfigError::BadGroups("node 4 is in no group".into())));
        let twice = Quorum::Groups(vec![ids(1..=3), ids(3..=4)]).validate(&nodes);
        assert_eq!(twice, Err(ConfigError::BadGroups("node 3 is listed more than once".into())));
    }

    #[test]
    fn custom_rules_are_checked_for_intersection() {
        let nodes = ids(1..=4);
        let two: QuorumFn = Arc::new(|set: &[NodeId]| set.len() >= 2);
        let err = Quorum::Custom(two).validate(&nodes).unwrap_err();
        assert!(matches!(err, ConfigError::DisjointQuorums(..)), "{err}");
        let three: QuorumFn = Arc::new(|set: &[NodeId]| set.len() >= 3);
        assert_eq!(Quorum::Custom(three.clone()).validate(&nodes), Ok(()));
        let q = Quorum::Custom(three);
        assert_eq!(q.commit_point(&matches(&[Some(4), Some(3), Some(9), None])), Some(Seq(3)));
        let odd: QuorumFn = Arc::new(|set: &[NodeId]| set.len() >= 3 || set == [NodeId(1)]);
        assert!(matches!(Quorum::Custom(odd).validate(&nodes), Err(ConfigError::NotMonotone { .. })));
        let nobody: QuorumFn = Arc::new(|_: &[NodeId]| false);
        assert_eq!(Quorum::Custom(nobody).validate(&nodes), Err(ConfigError::NoQuorum));
    }
}
