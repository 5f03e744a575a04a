//! A log that is the product, compacted by snapshots ([`LogOnly`], empty snapshots): a follower
//! that lost its disk after the others removed their prefixes comes back, and a node added
//! since joins and becomes a voter, each with a log that starts after the leader's snapshot.
//! Without a state machine the same removal strands such a node (the contrast is checked).

use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tinyraftplus::core::{ClientError, Config, Event, NodeId, Role, Seq};
use tinyraftplus::driver::{InProcessNetwork, LogOnly, RaftNode, StateMachine};
use tinyraftplus::log::{Encoder, FsLog, FsLogOptions, SnapshotStore};

/// Opens node `id` with `nodes` as its bootstrap configuration; with `compacted`, a `LogOnly`
/// node that snapshots every 20 entries (keeping none), else a node without a state machine.
fn open(
    dir: &std::path::Path,
    network: &Arc<InProcessNetwork>,
    id: NodeId,
    nodes: &[NodeId],
    compacted: bool,
) -> RaftNode {
    let mut config = Config::new(id, nodes.to_vec());
    config.election_timeout = Duration::from_millis(1000);
    config.ping_timeout = Duration::from_millis(1000);
    (config.snapshot_entries, config.snapshot_keep_entries) = (20, 0);
    // Small segments, so that removing a prefix removes files.
    let options = FsLogOptions { segment_bytes: 512, ..FsLogOptions::default() };
    let log = FsLog::open(dir, &format!("n{id}"), options).unwrap();
    if !compacted {
        return RaftNode::open(config, log, network.clone(), None).unwrap();
    }
    let store = SnapshotStore::new(dir, &format!("n{id}"), Encoder::XxHash);
    RaftNode::open_restoring(config, log, &store, network.clone(), Box::new(LogOnly)).unwrap()
}

fn ids(list: &[u64]) -> Vec<NodeId> {
    list.iter().copied().map(NodeId).collect()
}

/// The running leader among `nodes`.
fn leader(nodes: &[RaftNode]) -> &RaftNode {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(leader) = nodes.iter().find(|n| n.status().role == Role::Leader) {
            return leader;
        }
        assert!(Instant::now() < deadline, "no leader among the running nodes");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Appends `count` entries `"{tag}{i}"` through the leader; returns the last seq.
fn append(nodes: &[RaftNode], tag: &str, count: usize) -> Seq {
    let leader = leader(nodes);
    (0..count).map(|i| leader.append(Bytes::from(format!("{tag}{i}"))).unwrap().0).last().unwrap()
}

/// Node `node`'s log starts after `at` (its prefix went) and holds the leader's entries from
/// its first to `last`, byte for byte.
fn holds_from_snapshot(node: &RaftNode, leader: &RaftNode, at: Seq, last: Seq) {
    assert!(node.await_commit(last, Duration::from_secs(10)), "node {} reached {last}: {:?}", node.id(), node.status());
    // Committed may come before written: wait until its log holds `last`.
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.with_log(|log| log.seq()) < Some(last) {
        assert!(Instant::now() < deadline, "node {}'s log never held {last}", node.id());
        std::thread::sleep(Duration::from_millis(5));
    }
    let first = node.with_log(|log| log.first());
    assert!(first > at, "node {}'s log starts at {first}, after the prefix the snapshots removed", node.id());
    for seq in first.0..=last.0 {
        let mine = node.with_log(|log| log.read(Seq(seq)).unwrap());
        let mine = mine.unwrap_or_else(|| panic!("seq {seq} is held (the log starts at {first}, {last} committed)"));
        let theirs = leader.with_log(|log| log.read(Seq(seq)).unwrap()).expect("the leader holds it");
        assert_eq!(mine, theirs, "seq {seq}");
    }
}

#[test]
fn a_follower_that_lost_its_disk_comes_back_from_an_empty_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let network = InProcessNetwork::new();
    let three = ids(&[1, 2, 3]);
    let mut nodes: Vec<RaftNode> = three.iter().map(|id| open(dir.path(), &network, *id, &three, true)).collect();
    let last = append(&nodes, "a", 120);
    assert!(nodes.iter().all(|n| n.await_commit(last, Duration::from_secs(10))));
    // A follower loses its disk; the others' snapshots removed the prefix it would need.
    let lost = nodes.iter().position(|n| n.status().role != Role::Leader).unwrap();
    let id = nodes[lost].id();
    nodes.remove(lost).close();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with(&format!("n{id}.")) {
            std::fs::remove_file(path).unwrap();
        }
    }
    append(&nodes, "b", 30);
    let removed = leader(&nodes).with_log(|log| log.first());
    assert!(removed > Seq(20), "the leader's log no longer holds its first entries (starts at {removed})");
    nodes.push(open(dir.path(), &network, id, &three, true));
    let last = append(&nodes, "c", 5);
    let back = nodes.last().unwrap();
    // A read through any node is a barrier: answered empty, at a seq no earlier than `last`.
    let (at, answer) = back.read(Bytes::new()).unwrap();
    assert!(at >= Some(last) && answer.is_empty(), "read at {at:?}: {answer:?}");
    holds_from_snapshot(back, leader(&nodes), Seq(0), last);
    assert!(leader(&nodes).status().stranded.is_empty());
    let deadline = Instant::now() + Duration::from_secs(10);
    while back.status().catching_up {
        assert!(Instant::now() < deadline, "node {id} still catching up");
        std::thread::sleep(Duration::from_millis(5));
    }
    nodes.iter().for_each(RaftNode::close);
}

/// Adds node 4 as a learner to a three-node cluster whose leader removed its first entries
/// (by snapshots with `compacted`, else by `remove_prefix`), then promotes it.
fn join_after_removal(compacted: bool) -> (Result<Seq, ClientError>, Vec<RaftNode>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let network = InProcessNetwork::new();
    let three = ids(&[1, 2, 3]);
    let mut nodes: Vec<RaftNode> = three.iter().map(|id| open(dir.path(), &network, *id, &three, compacted)).collect();
    let last = append(&nodes, "a", 120);
    assert!(nodes.iter().all(|n| n.await_commit(last, Duration::from_secs(10))));
    if !compacted {
        let first = leader(&nodes).remove_prefix(Seq(100), false).unwrap();
        assert!(first > Seq(100));
    }
    nodes.push(open(dir.path(), &network, NodeId(4), &ids(&[1, 2, 3, 4]), compacted));
    let leader = leader(&nodes[..3]);
    leader.add_learner(NodeId(4), None).unwrap();
    let last = append(&nodes[..3], "b", 5);
    if compacted {
        holds_from_snapshot(&nodes[3], leader, Seq(20), last);
    } else {
        let stranded = leader.await_status(Duration::from_secs(10), |s| s.stranded.contains(&NodeId(4)));
        assert!(stranded.is_some(), "node 4 cannot catch up from a log without its first entries");
    }
    (leader.promote(NodeId(4)), nodes, dir)
}

#[test]
fn a_node_added_after_compaction_catches_up_and_is_promoted() {
    let (promoted, nodes, _dir) = join_after_removal(true);
    let seq = promoted.expect("node 4 is promoted");
    assert!(nodes[3].await_commit(seq, Duration::from_secs(10)));
    let voters = nodes[3].await_status(Duration::from_secs(10), |s| {
        s.configuration.as_ref().is_some_and(|(_, c)| c.is_voter(NodeId(4)))
    });
    assert!(voters.is_some(), "node 4 votes: {:?}", nodes[3].status());
    nodes.iter().for_each(RaftNode::close);
}

#[test]
fn without_a_state_machine_the_same_node_is_stranded_and_refused() {
    let (promoted, nodes, _dir) = join_after_removal(false);
    match promoted {
        Err(ClientError::ChangeFailed(why)) => assert!(why.contains("(4: they need entries"), "{why}"),
        other => panic!("promoting a stranded learner: {other:?}"),
    }
    nodes.iter().for_each(RaftNode::close);
}

/// A one-node log whose prefix was removed by hand (no state machine), reopened as `opened`
/// after appending 50 entries and removing the first 30; returns the node, its events from
/// the start, and the last seq appended.
fn compacted_by_hand(
    dir: &std::path::Path,
    reopen: impl FnOnce(Config, FsLog) -> RaftNode,
) -> (RaftNode, std::sync::mpsc::Receiver<Event>, Seq) {
    let network = InProcessNetwork::new();
    let node = open(dir, &network, NodeId(1), &ids(&[1]), false);
    let last = append(std::slice::from_ref(&node), "x", 50);
    assert_eq!(node.remove_prefix(Seq(30), false).unwrap(), Seq(31));
    node.close();
    drop(node);
    let log = FsLog::open(dir, "n1", FsLogOptions { segment_bytes: 512, ..FsLogOptions::default() }).unwrap();
    let first = log.first();
    assert!(first > Seq(1) && first <= Seq(31), "the prefix went: the log starts at {first}");
    let node = reopen(Config::new(NodeId(1), ids(&[1])), log);
    let events = node.events();
    (node, events, last)
}

/// The first error event within ten seconds, or the events seen when none came.
fn error_event(events: &std::sync::mpsc::Receiver<Event>) -> Result<String, Vec<Event>> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Ok(event) = events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        match event {
            Event::Error(why) => return Ok(why),
            other => seen.push(other),
        }
    }
    Err(seen)
}

/// A log compacted by hand moves to `LogOnly`: no snapshot covers its removed prefix, and a
/// machine that keeps no state needs none, so it applies from the log's first entry (with a
/// warning), answers appends, and takes snapshots from then on. Before this, applying waited
/// for a snapshot that could never come and every append timed out, with no event.
#[test]
fn a_log_compacted_by_hand_moves_to_log_only() {
    let dir = tempfile::tempdir().unwrap();
    let (node, events, last) = compacted_by_hand(dir.path(), |config, log| {
        let store = SnapshotStore::new(dir.path(), "n1", Encoder::XxHash);
        RaftNode::open_restoring(config, log, &store, InProcessNetwork::new(), Box::new(LogOnly)).unwrap()
    });
    node.await_leader(Duration::from_secs(10)).expect("a leader");
    let (seq, answers) = node.append(Bytes::from("after")).unwrap();
    assert!(seq > last, "appended at {seq}, after {last}");
    assert_eq!(answers, Some(Bytes::new()));
    let warned = events.try_iter().any(|e| matches!(&e, Event::Warn(w) if w.contains("no snapshot covers")));
    assert!(warned, "a warning says the machine starts at the log's first entry");
    assert!(node.snapshot().unwrap().seq >= seq, "snapshots work from then on");
    assert_eq!(node.read(Bytes::new()).unwrap().0, Some(seq));
    node.close();
}

/// A machine that keeps state cannot be rebuilt from a log whose prefix went with no snapshot:
/// the node stops at once with an error event that says so and how to recover, refuses
/// requests, and loses nothing of its log. Before this, it waited silently forever.
#[test]
fn a_stateful_machine_over_a_log_compacted_by_hand_stops_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (node, events, last) = compacted_by_hand(dir.path(), |config, log| {
        RaftNode::open(config, log, InProcessNetwork::new(), Some(Box::new(Count::default()))).unwrap()
    });
    let why = error_event(&events).expect("an error event");
    assert!(why.contains("cannot be rebuilt") && why.contains("no snapshot covers"), "{why}");
    assert!(matches!(node.append(Bytes::from("after")), Err(ClientError::StorageFailed)));
    let (first, end) = node.with_log(|log| (log.first(), log.seq()));
    assert!(first <= Seq(31) && end >= Some(last), "the log is kept: {first}..{end:?}");
    node.close();
}

/// Counts the entries it applies (state a log without its prefix cannot rebuild).
#[derive(Default)]
struct Count(u64);

impl StateMachine for Count {
    fn apply(&mut self, _first: Seq, entries: &[Option<Bytes>]) -> Result<Vec<Bytes>, String> {
        self.0 += entries.len() as u64;
        Ok(vec![Bytes::from(self.0.to_string()); entries.len()])
    }

    fn read(&mut self, _seq: Option<Seq>, _command: &[u8]) -> Result<Bytes, String> {
        Ok(Bytes::from(self.0.to_string()))
    }
}

/// A stateless machine starts at its log's first entry only once the commit point reaches the
/// entries before it: applied never passes commit. Before this, a restarted follower that
/// learnt a lower commit point (an append that matched only up to an old entry) applied
/// through its removed prefix at once, and a snapshot the leader sent next rolled it back.
#[test]
fn a_stateless_machine_never_applies_past_the_commit_point() {
    use tinyraftplus::core::{Body, Input, LogId, Message, Write};
    use tinyraftplus::log::LogStore;
    use tinyraftplus::testkit::Cluster;
    let (n1, n3) = (NodeId(1), NodeId(3));
    let mut c = Cluster::new(3, |config| {
        (config.state_machine, config.stateless_machine) = (true, true);
    });
    c.elect(n1);
    for i in 0..10 {
        c.append(n1, &format!("e{i}"));
    }
    c.stabilize();
    c.advance(500_000_000); // A heartbeat carries the commit point.
    c.stabilize();
    assert!(c.raft(n3).commit() >= Some(Seq(10)), "{:?}", c.raft(n3).commit());
    c.crash(n3);
    c.nodes.get_mut(&n3).unwrap().storage.apply(&Write::RemovePrefix { through: Seq(6) }).unwrap();
    c.restart(n3);
    let first = c.raft(n3).first_seq();
    assert!(first > Seq(4), "the prefix went: the log starts at {first}");
    // The leader's append matches only up to seq 3, below the removed prefix.
    let term = c.raft(n1).term();
    let prev = Some(LogId::new(c.raft(n1).term_at(Seq(3)).unwrap(), Seq(3)));
    let body = Body::Append { prev, entries: vec![], commit: c.raft(n1).commit(), read_round: 0 };
    c.step(n3, Input::Message(Message { from: n1, to: n3, term, body }));
    let raft = c.raft(n3);
    assert_eq!(raft.commit(), Some(Seq(3)));
    assert!(raft.applied() <= raft.commit(), "applied {:?} past commit {:?}", raft.applied(), raft.commit());
    // Once the commit point passes the prefix, it applies from the log's first entry.
    c.advance(1_000_000_000);
    c.stabilize();
    let (raft, leader) = (c.raft(n3), c.raft(n1));
    assert_eq!((raft.applied(), raft.commit()), (leader.commit(), leader.commit()));
}
