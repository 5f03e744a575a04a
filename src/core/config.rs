//! A node's configuration: the JavaScript library's knobs under Rust names, validated once.

use super::quorum::Quorum;
use super::types::{NodeId, Seq};
use std::fmt;
use std::time::Duration;

/// Everything a [`Raft`](super::Raft) core needs to know before it starts.
///
/// `Config::new(id, nodes)` gives the JavaScript library's defaults (1500 ms timeouts, 1024
/// entries per message and per apply batch) with a strict-majority quorum, pre-vote and
/// check-quorum on. [`Raft::new`](super::Raft::new) calls [`Config::validate`].
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's id; must be one of `nodes`.
    pub id: NodeId,
    /// Every node of the cluster, this one included: the bootstrap configuration, in force
    /// until the log holds a configuration entry (the first leader writes this one into the
    /// log, under a majority or groups quorum; membership changes write the next ones). A node
    /// whose storage is new (or lost) must be given the cluster's current members: with an
    /// older list it might think itself alone (a cluster grown from one node) and start over.
    /// Once it has caught up, the configuration in its log is in force, not this list; until
    /// then, it grants no vote to a node outside it whose log is empty (nodes given different
    /// lists before a first leader could otherwise form quorums that do not intersect).
    pub nodes: Vec<NodeId>,
    /// A follower that hears nothing from a leader for a random time in
    /// `[election_timeout, 2 × election_timeout)` starts an election (seed: `electionTimeout`).
    pub election_timeout: Duration,
    /// A leader counts a follower as responsive while it answered within this time; it sends a
    /// heartbeat every `0.3 × ping_timeout` and, with `check_quorum`, steps down when the
    /// responsive followers and itself no longer form a quorum (seed: `pingTimeout`).
    pub ping_timeout: Duration,
    /// How long a client append may wait for a leader, forwarding and commit (seed: `appendTimeout`).
    pub append_timeout: Duration,
    /// How long a client read may wait (seed: `readTimeout`).
    pub read_timeout: Duration,
    /// At most this many entries in one append message (seed: `rpcMax`).
    pub rpc_entries_max: usize,
    /// At most this many payload bytes in one append message (one entry is always allowed).
    pub rpc_bytes_max: usize,
    /// At most this many unacknowledged append messages to one follower (pipelining window).
    pub inflight_messages_max: usize,
    /// At most this many unacknowledged entries to one follower.
    pub inflight_entries_max: usize,
    /// At most this many unacknowledged payload bytes to one follower.
    pub inflight_bytes_max: usize,
    /// At most this many entries in one apply batch (seed: `applyMax`).
    pub apply_entries_max: usize,
    /// The highest seq the state machine already reflects; entries up to it are not applied
    /// again (seed: `applySeq`, with `None` for `-1n`).
    pub apply_seq: Option<Seq>,
    /// Whether a state machine applies committed entries: then appends answer after apply,
    /// with the state machine's responses, and reads run on it. Without one, appends answer at
    /// commit and reads answer with the commit point.
    pub state_machine: bool,
    /// The state machine keeps no state (as the drivers' `LogOnly`): when no snapshot covers
    /// the entries before the log's first (its prefix went without one, before the move to a
    /// state machine), it starts applying at the log's first entry. Otherwise such a node
    /// cannot rebuild its state machine and stops with an error event. The drivers set it
    /// from `StateMachine::keeps_no_state`.
    pub stateless_machine: bool,
    /// Which sets of nodes form a quorum (seed: `quorum`, `group`, `groupFn`).
    pub quorum: Quorum,
    /// Ask before raising the term (Raft thesis §9.6), so a node back from a partition does not
    /// depose a healthy leader.
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a quorum within `ping_timeout`, and
    /// followers that heard from a leader within `election_timeout` ignore vote requests.
    pub check_quorum: bool,
    /// The core keeps at most about this many log entries in memory (older ones are loaded from
    /// storage when a lagging follower or the state machine needs them). The default, 8192
    /// (eight full append messages), keeps the tail in the CPU's cache: at 65,536 the 256-way
    /// concurrent benchmark ran about 15% slower.
    pub memory_entries_max: usize,
    /// The largest payload a client may append, in bytes.
    pub entry_bytes_max: usize,
    /// A storage write not durable this long after it was issued (or after the write before
    /// it completed) marks the storage stalled (the seed's `TimeoutLog` in a node): an error
    /// event, a leader steps down, and the node does not campaign until the write completes
    /// (then a warn event). Acknowledgements wait for durability anyway. `None`: never.
    pub storage_stall_timeout: Option<Duration>,
    /// Leader priorities (the seed's `leaderPriority`; nodes not listed have 0), the same on every
    /// node; they may name nodes that join later. A leader that has committed an entry of its term
    /// and hears from a quorum hands leadership to a caught-up, responsive node of higher priority
    /// (a leader transfer); after a transfer that failed, it waits ten election timeouts before
    /// trying again. An unhealthy cluster is left alone.
    pub priority: Vec<(NodeId, u32)>,
    /// How long a membership change may take, learners' catch-up included, before it fails
    /// with `ChangeFailed` (default 60 s).
    pub change_timeout: Duration,
    /// A node joins the voters once its log is within this many entries of the leader's
    /// (default 1024: one append message behind).
    pub learner_lag_max: u64,
    /// With a state machine: take a snapshot (see [`Output::TakeSnapshot`](super::Output))
    /// once this many entries were applied since the last one (0: only when a client asks,
    /// with [`Input::Snapshot`](super::Input)). The log prefix that snapshots cover is then
    /// removed, but for `snapshot_keep_entries`.
    pub snapshot_entries: u64,
    /// Or once this many payload bytes were applied since the last one (0: no byte limit).
    pub snapshot_bytes: u64,
    /// Entries kept in the log below a new snapshot, for followers that lag a little (they get
    /// entries, not the snapshot). The log also keeps every entry after the previous snapshot,
    /// so that a damaged latest snapshot can be replaced by the previous one plus the log.
    pub snapshot_keep_entries: u64,
    /// At most this many chunks of a snapshot unacknowledged to one follower.
    pub snapshot_chunks_inflight: usize,
    /// While clients' appends wait for commit, a snapshot goes to a follower one chunk at a
    /// time and at most one chunk per this interval (default 8 ms), so that it takes turns with
    /// the clients rather than crowding them out (with 1 MiB chunks: at most 125 MiB/s then;
    /// `cargo bench --bench snapshot` kept 75% of its appends while a snapshot was taken and
    /// sent, against 39% at 4 ms and 67% with no interval).
    pub snapshot_chunk_interval: Duration,
    /// Seeds the core's PRNG (election jitter, request ids), with the node's id mixed in: nodes
    /// given the same seed still draw different timeouts. The same seed and the same inputs
    /// give the same outputs. A driver must pass a fresh seed at each start of a node:
    /// forwarded requests are deduplicated by an incarnation drawn from it, so a node started
    /// twice with one seed would see its first forwards after the restart dropped as
    /// duplicates (the simulator found this when it reused seeds).
    pub seed: u64,
    /// A planted bug, for the simulator's tests (feature `mutants` only).
    #[cfg(feature = "mutants")]
    pub mutant: Option<super::mutant::Mutant>,
}

impl Config {
    /// The defaults for node `id` of the cluster `nodes`.
    pub fn new(id: NodeId, nodes: impl IntoIterator<Item = NodeId>) -> Config {
        Config {
            id,
            nodes: nodes.into_iter().collect(),
            election_timeout: Duration::from_millis(1500),
            ping_timeout: Duration::from_millis(1500),
            append_timeout: Duration::from_millis(1500),
            read_timeout: Duration::from_millis(1500),
            rpc_entries_max: 1024,
            rpc_bytes_max: 1 << 20,
            inflight_messages_max: 8,
            inflight_entries_max: 8192,
            inflight_bytes_max: 16 << 20,
            apply_entries_max: 1024,
            apply_seq: None,
            state_machine: false,
            stateless_machine: false,
            quorum: Quorum::Majority,
            pre_vote: true,
            check_quorum: true,
            memory_entries_max: 1 << 13,
            entry_bytes_max: 16 << 20,
            storage_stall_timeout: Some(Duration::from_secs(5)),
            priority: Vec::new(),
            change_timeout: Duration::from_secs(60),
            learner_lag_max: 1024,
            snapshot_entries: 0,
            snapshot_bytes: 0,
            snapshot_keep_entries: 1024,
            snapshot_chunks_inflight: 4,
            snapshot_chunk_interval: Duration::from_millis(8),
            seed: 0,
            #[cfg(feature = "mutants")]
            mutant: None,
        }
    }

    /// Node `id`'s leader priority (0 unless listed in `priority`).
    pub fn priority_of(&self, id: NodeId) -> u32 {
        self.priority.iter().find(|(node, _)| *node == id).map_or(0, |(_, priority)| *priority)
    }

    /// The leader's heartbeat interval: `0.3 × ping_timeout`, as in the seed.
    pub fn heartbeat_interval(&self) -> Duration {
        self.ping_timeout.mul_f64(0.3)
    }

    /// Checks every knob and the quorum rule (any two quorums must intersect).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut sorted = self.nodes.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return Err(ConfigError::NoNodes);
        }
        if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(ConfigError::DuplicateNode(pair[0]));
        }
        if !sorted.contains(&self.id) {
            return Err(ConfigError::NotAMember(self.id));
        }
        for (name, value) in [
            ("election_timeout", self.election_timeout),
            ("ping_timeout", self.ping_timeout),
            ("append_timeout", self.append_timeout),
            ("read_timeout", self.read_timeout),
            ("change_timeout", self.change_timeout),
            ("storage_stall_timeout", self.storage_stall_timeout.unwrap_or(Duration::from_secs(1))),
        ] {
            if value.is_zero() || value > Duration::from_secs(86_400) {
                return Err(ConfigError::OutOfRange { knob: name, why: "must be between 1 ns and one day" });
            }
        }
        if self.heartbeat_interval().is_zero() {
            return Err(ConfigError::OutOfRange { knob: "ping_timeout", why: "0.3 × it must be at least 1 ns" });
        }
        for (name, value) in [
            ("rpc_entries_max", self.rpc_entries_max),
            ("rpc_bytes_max", self.rpc_bytes_max),
            ("inflight_messages_max", self.inflight_messages_max),
            ("inflight_entries_max", self.inflight_entries_max),
            ("inflight_bytes_max", self.inflight_bytes_max),
            ("apply_entries_max", self.apply_entries_max),
            ("memory_entries_max", self.memory_entries_max),
            ("entry_bytes_max", self.entry_bytes_max),
            ("snapshot_chunks_inflight", self.snapshot_chunks_inflight),
        ] {
            if value == 0 {
                return Err(ConfigError::OutOfRange { knob: name, why: "must be at least 1" });
            }
        }
        if self.apply_seq >= Some(Seq::MAX) {
            return Err(ConfigError::OutOfRange { knob: "apply_seq", why: "must be below Seq::MAX" });
        }
        self.quorum.validate(&sorted)
    }
}

/// Why a [`Config`] was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `nodes` is empty.
    NoNodes,
    /// A node id appears twice in `nodes`.
    DuplicateNode(NodeId),
    /// `id` is not one of `nodes`.
    NotAMember(NodeId),
    /// A knob has a value outside its range.
    OutOfRange {
        /// The knob's field name.
        knob: &'static str,
        /// The allowed range.
        why: &'static str,
    },
    /// Two disjoint sets of nodes would both be quorums, so two leaders could be elected in one
    /// term and commit different entries.
    DisjointQuorums(Vec<NodeId>, Vec<NodeId>),
    /// Not even all nodes together form a quorum, so nothing could ever be elected or committed.
    NoQuorum,
    /// The custom quorum rule accepts a set but rejects a bigger set containing it; quorum rules
    /// must be monotone.
    NotMonotone {
        /// A set the rule accepts.
        set: Vec<NodeId>,
        /// A superset of it the rule rejects.
        superset: Vec<NodeId>,
    },
    /// A group quorum names a node that is not in `nodes`, or leaves one out, or names it twice.
    BadGroups(String),
    /// A custom quorum rule can only be checked for intersection on up to 16 nodes.
    TooManyNodesForCustomQuorum(usize),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = |ids: &[NodeId]| ids.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(",");
        match self {
            ConfigError::NoNodes => write!(f, "config: `nodes` is empty"),
            ConfigError::DuplicateNode(id) => write!(f, "config: node {id} is listed twice in `nodes`"),
            ConfigError::NotAMember(id) => write!(f, "config: `id` {id} is not one of `nodes`"),
            ConfigError::OutOfRange { knob, why } => write!(f, "config: `{knob}` {why}"),
            ConfigError::DisjointQuorums(a, b) => write!(
                f,
                "config: quorum rule accepts two disjoint sets {{{}}} and {{{}}}, which could elect two leaders in one term",
                ids(a),
                ids(b)
            ),
            ConfigError::NoQuorum => write!(f, "config: not even all nodes together form a quorum"),
            ConfigError::NotMonotone { set, superset } => write!(
                f,
                "config: quorum rule accepts {{{}}} but rejects its superset {{{}}}",
                ids(set),
                ids(superset)
            ),
            ConfigError::BadGroups(why) => write!(f, "config: quorum groups: {why}"),
            ConfigError::TooManyNodesForCustomQuorum(n) => write!(
                f,
                "config: a custom quorum rule is checked on at most 16 nodes, got {n}"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(range: std::ops::RangeInclusive<u64>) -> Vec<NodeId> {
        range.map(NodeId).collect()
    }

    #[test]
    fn defaults_are_the_seeds_and_valid() {
        let config = Config::new(NodeId(1), ids(1..=3));
        assert_eq!(config.election_timeout, Duration::from_millis(1500));
        assert_eq!(config.heartbeat_interval(), Duration::from_millis(450));
        assert_eq!(config.rpc_entries_max, 1024);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn membership_is_checked() {
        assert_eq!(Config::new(NodeId(1), []).validate(), Err(ConfigError::NoNodes));
        assert_eq!(Config::new(NodeId(4), ids(1..=3)).validate(), Err(ConfigError::NotAMember(NodeId(4))));
        let twice = [NodeId(1), NodeId(2), NodeId(1)];
        assert_eq!(Config::new(NodeId(1), twice).validate(), Err(ConfigError::DuplicateNode(NodeId(1))));
    }

    #[test]
    fn knobs_are_checked() {
        let mut config = Config::new(NodeId(1), ids(1..=3));
        config.rpc_entries_max = 0;
        assert!(matches!(config.validate(), Err(ConfigError::OutOfRange { knob: "rpc_entries_max", .. })));
        let mut config = Config::new(NodeId(1), ids(1..=3));
        config.election_timeout = Duration::ZERO;
        assert!(matches!(config.validate(), Err(ConfigError::OutOfRange { knob: "election_timeout", .. })));
    }
}
