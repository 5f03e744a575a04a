//! Quorum rules in the simulator: the one a seed's cluster starts with (a plain majority, quorum
//! groups, a count, or a custom rule of weighted votes), and the simulator's own evaluation of
//! every rule, which the checks and the fault budget use (never the core's code for it: a core
//! that counted the wrong nodes would then pass its own check).

use tinyraftplus::core::{Configuration, Membership, NodeId, Quorum, Rng};

/// The quorum rule a seed's cluster starts with (`Config::quorum`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuorumKind {
    /// More than half of the nodes.
    Majority,
    /// A majority of every group (the seed's `group`); membership changes keep groups, a
    /// joiner going into one of them.
    Groups(Vec<Vec<NodeId>>),
    /// At least this many nodes (the seed's numeric `quorum`): no membership changes.
    Count(usize),
    /// A custom rule (the seed's `groupFn`): more than half of the total weight of votes, each
    /// node weighing 1 to 3. No membership changes.
    Weighted(Vec<(NodeId, u64)>),
}

impl QuorumKind {
    /// Draws the rule for `nodes` nodes, from its own generator (so that seeds keep the rest of
    /// their mix): a majority half the time, else groups, a count or weights.
    pub fn draw(rng: &mut Rng, nodes: usize) -> QuorumKind {
        let ids: Vec<NodeId> = (1..=nodes as u64).map(NodeId).collect();
        match rng.below(6) {
            _ if nodes < 2 => QuorumKind::Majority,
            0 => {
                let mut shuffled = ids;
                for i in (1..shuffled.len()).rev() {
                    shuffled.swap(i, rng.below(i as u64 + 1) as usize);
                }
                let count = 2 + rng.below(2.min(nodes as u64 - 1)) as usize;
                let mut groups = vec![Vec::new(); count];
                for (i, id) in shuffled.into_iter().enumerate() {
                    // Every group gets one node first, then the rest at random.
                    let group = if i < count { i } else { rng.below(count as u64) as usize };
                    groups[group].push(id);
                }
                for group in &mut groups {
                    group.sort_unstable();
                }
                QuorumKind::Groups(groups)
            }
            1 => QuorumKind::Count(nodes / 2 + 1 + rng.below(nodes.div_ceil(2) as u64) as usize),
            2 => QuorumKind::Weighted(ids.iter().map(|id| (*id, 1 + rng.below(3))).collect()),
            _ => QuorumKind::Majority,
        }
    }

    /// Whether membership changes are possible: configuration entries carry a majority or
    /// groups, not a count or a custom rule.
    pub fn changes_membership(&self) -> bool {
        matches!(self, QuorumKind::Majority | QuorumKind::Groups(_))
    }

    /// The rule as the core takes it.
    pub fn core(&self) -> Quorum {
        match self {
            QuorumKind::Majority => Quorum::Majority,
            QuorumKind::Groups(groups) => Quorum::Groups(groups.clone()),
            QuorumKind::Count(count) => Quorum::Count(*count),
            QuorumKind::Weighted(weights) => {
                let weights = weights.clone();
                Quorum::Custom(std::sync::Arc::new(move |set: &[NodeId]| weighted_quorum(&weights, set)))
            }
        }
    }

    /// The rule over the bootstrap configuration `nodes`.
    pub fn rule(&self, nodes: &[NodeId]) -> Rule {
        let mut nodes = nodes.to_vec();
        nodes.sort_unstable();
        match self {
            QuorumKind::Majority => Rule::groups(&nodes, &[]),
            QuorumKind::Groups(groups) => Rule::groups(&nodes, groups),
            QuorumKind::Count(count) => Rule::Count(nodes, *count),
            QuorumKind::Weighted(weights) => Rule::Weighted(weights.clone()),
        }
    }
}

fn weighted_quorum(weights: &[(NodeId, u64)], set: &[NodeId]) -> bool {
    let total: u64 = weights.iter().map(|(_, weight)| weight).sum();
    let held: u64 = weights.iter().filter(|(id, _)| set.contains(id)).map(|(_, weight)| weight).sum();
    2 * held > total
}

/// Which sets of voters are a quorum, evaluated by the simulator itself.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// A majority of every group (one group: a plain majority of the voters).
    Groups(Vec<Vec<NodeId>>),
    /// At least this many of the voters.
    Count(Vec<NodeId>, usize),
    /// More than half of the voters' total weight.
    Weighted(Vec<(NodeId, u64)>),
}

impl Rule {
    /// The rule of a membership (its groups, or a majority of its voters).
    pub fn of(membership: &Membership) -> Rule {
        Rule::groups(membership.voters(), membership.groups())
    }

    /// A majority of every one of `groups` over `voters` (no groups: a majority of the voters),
    /// sorted so that equal rules compare equal.
    pub fn groups(voters: &[NodeId], groups: &[Vec<NodeId>]) -> Rule {
        let mut groups = match groups.is_empty() {
            true => vec![voters.to_vec()],
            false => groups.to_vec(),
        };
        for group in &mut groups {
            group.sort_unstable();
        }
        groups.sort();
        Rule::Groups(groups)
    }

    /// The rules of every part of a configuration (both while joint).
    pub fn parts(configuration: &Configuration) -> Vec<Rule> {
        match configuration {
            Configuration::Single(only) => vec![Rule::of(only)],
            Configuration::Joint { old, new } => vec![Rule::of(old), Rule::of(new)],
        }
    }

    /// The voters, sorted.
    pub fn voters(&self) -> Vec<NodeId> {
        let mut voters: Vec<NodeId> = match self {
            Rule::Groups(groups) => groups.iter().flatten().copied().collect(),
            Rule::Count(voters, _) => voters.clone(),
            Rule::Weighted(weights) => weights.iter().map(|(id, _)| *id).collect(),
        };
        voters.sort_unstable();
        voters
    }

    /// Whether the voters for which `member` is true form a quorum.
    pub fn is_quorum(&self, member: impl Fn(NodeId) -> bool) -> bool {
        match self {
            Rule::Groups(groups) => {
                groups.iter().all(|group| 2 * group.iter().filter(|id| member(**id)).count() > group.len())
            }
            Rule::Count(voters, count) => voters.iter().filter(|id| member(**id)).count() >= *count,
            Rule::Weighted(weights) => {
                let set: Vec<NodeId> = weights.iter().map(|(id, _)| *id).filter(|id| member(*id)).collect();
                weighted_quorum(weights, &set)
            }
        }
    }

    /// Whether the voters not `down` form a quorum that any one of them may leave, and a
    /// quorum stays.
    pub fn room_for_one_more(&self, down: impl Fn(NodeId) -> bool) -> bool {
        let up: Vec<NodeId> = self.voters().into_iter().filter(|id| !down(*id)).collect();
        self.is_quorum(|id| up.contains(&id))
            && up.iter().all(|gone| self.is_quorum(|id| id != *gone && up.contains(&id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u64]) -> Vec<NodeId> {
        list.iter().copied().map(NodeId).collect()
    }

    #[test]
    fn rules_count_what_they_say() {
        let groups = Rule::Groups(vec![ids(&[1, 2]), ids(&[3, 4, 5])]);
        assert!(!groups.is_quorum(|id| id.0 >= 3), "a majority of all, none of the first group");
        assert!(groups.is_quorum(|id| id.0 != 3));
        let count = Rule::Count(ids(&[1, 2, 3, 4, 5]), 4);
        assert!(!count.is_quorum(|id| id.0 <= 3) && count.is_quorum(|id| id.0 <= 4));
        let weighted = Rule::Weighted(vec![(NodeId(1), 3), (NodeId(2), 1), (NodeId(3), 1)]);
        assert!(weighted.is_quorum(|id| id.0 == 1), "3 of 5");
        assert!(!weighted.is_quorum(|id| id.0 != 1));
    }

    #[test]
    fn room_for_one_more_keeps_a_quorum_after_any_one_goes() {
        let majority = Rule::Groups(vec![ids(&[1, 2, 3, 4, 5])]);
        assert!(majority.room_for_one_more(|id| id.0 == 1));
        assert!(!majority.room_for_one_more(|id| id.0 <= 2));
        let weighted = Rule::Weighted(vec![(NodeId(1), 3), (NodeId(2), 1), (NodeId(3), 1)]);
        assert!(!weighted.room_for_one_more(|_| false), "node 1 may not go");
        let count = Rule::Count(ids(&[1, 2, 3]), 3);
        assert!(!count.room_for_one_more(|_| false));
    }

    #[test]
    fn drawn_rules_are_valid_core_rules() {
        let mut rng = Rng::new(7);
        for nodes in 1..=7 {
            let ids: Vec<NodeId> = (1..=nodes as u64).map(NodeId).collect();
            for _ in 0..50 {
                let kind = QuorumKind::draw(&mut rng, nodes);
                let mut config = tinyraftplus::core::Config::new(NodeId(1), ids.clone());
                config.quorum = kind.core();
                assert!(config.validate().is_ok(), "{kind:?} on {nodes} nodes: {:?}", config.validate());
            }
        }
    }
}
