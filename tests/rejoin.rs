//! The JavaScript library's "delete a follower" and "delete the leader", on real files through
//! the blocking driver: a node is closed, its log deleted, and it is opened again on an empty
//! directory. It must be rebuilt from the others (it had been left one replica short), vote
//! again only once caught up, and in the end every node's log is the same and holds every
//! acknowledged write at its seq. The same for a node whose log has a damaged batch in the
//! middle, opened with `FsLog::open_repairing`.

use bytes::Bytes;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tinyraftplus::core::{Config, Entry, NodeId, Seq};
use tinyraftplus::driver::{InProcessNetwork, RaftNode};
use tinyraftplus::log::{FsLog, FsLogOptions};

const WAIT: Duration = Duration::from_secs(30);

fn open(dir: &Path, id: NodeId, network: &Arc<InProcessNetwork>) -> RaftNode {
    let log = FsLog::open(dir, &format!("n{id}"), FsLogOptions::default()).unwrap();
    start(id, log, network)
}

fn start(id: NodeId, log: FsLog, network: &Arc<InProcessNetwork>) -> RaftNode {
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut config = Config::new(id, ids);
    config.election_timeout = Duration::from_millis(500);
    config.ping_timeout = Duration::from_millis(500);
    RaftNode::open(config, log, network.clone(), None).unwrap()
}

/// Nodes 1, 2 and 3 of a new cluster in `dir`, and the leader they elected.
fn three_nodes(dir: &Path, network: &Arc<InProcessNetwork>) -> (Vec<RaftNode>, NodeId) {
    let nodes: Vec<RaftNode> = (1..=3).map(|id| open(dir, NodeId(id), network)).collect();
    let leader = nodes[0].await_leader(WAIT).expect("a new cluster elects a leader");
    (nodes, leader)
}

/// Node `id`'s place in the list of nodes 1, 2, 3.
fn index(id: NodeId) -> usize {
    (id.0 - 1) as usize
}

/// Appends `count` entries through `node`; returns each acknowledged (seq, payload).
fn append(node: &RaftNode, tag: &str, count: usize) -> Vec<(Seq, Bytes)> {
    (0..count)
        .map(|i| {
            let payload = Bytes::from(format!("{tag}{i}"));
            let (seq, _) = node.append(payload.clone()).expect("the cluster has a quorum");
            (seq, payload)
        })
        .collect()
}

fn entries(dir: &Path, id: NodeId) -> Vec<Entry> {
    let log = FsLog::open(dir, &format!("n{id}"), FsLogOptions::default()).unwrap();
    log.iter(Seq(0)).map(|entry| entry.unwrap()).collect()
}

/// Deletes node `victim`'s log while it is closed and reopens it; checks it is rebuilt.
fn delete_and_rebuild(pick_leader: bool) {
    let dir = tempfile::tempdir().unwrap();
    let network = InProcessNetwork::new();
    let (mut nodes, leader) = three_nodes(dir.path(), &network);
    let mut acknowledged = append(&nodes[index(leader)], "a", 20);
    let victim = match pick_leader {
        true => leader,
        false => nodes.iter().map(RaftNode::id).find(|id| *id != leader).unwrap(),
    };
    nodes[index(victim)].close();
    FsLog::del(dir.path(), &format!("n{victim}")).unwrap();
    nodes[index(victim)] = open(dir.path(), victim, &network);
    let reopened = &nodes[index(victim)];
    let events = reopened.events();
    assert!(reopened.status().catching_up, "a node on an empty directory is catching up");
    // The two others go on (electing a new leader if the victim led).
    let survivor = nodes.iter().find(|n| n.id() != victim).unwrap();
    let elected = |s: &tinyraftplus::driver::Status| s.leader.is_some_and(|l| l != victim) && s.commit.is_some();
    let leader = survivor.await_status(WAIT, elected).and_then(|s| s.leader).expect("the two others lead");
    acknowledged.extend(append(&nodes[index(leader)], "b", 20));
    let last = acknowledged.last().unwrap().0;
    if !reopened.await_commit(last, WAIT) {
        let seen: Vec<_> = events.try_iter().collect();
        panic!("the emptied node is not rebuilt up to {last}: {:?}; events {seen:?}", reopened.status());
    }
    rejoined_and_identical(dir.path(), nodes, victim, &acknowledged);
}

/// Node `rejoined` votes again; then, closed, every node's log is the same and holds every
/// acknowledged write at its seq.
fn rejoined_and_identical(dir: &Path, nodes: Vec<RaftNode>, rejoined: NodeId, acknowledged: &[(Seq, Bytes)]) {
    let caught_up = |s: &tinyraftplus::driver::Status| !s.catching_up;
    let node = nodes.iter().find(|n| n.id() == rejoined).unwrap();
    assert!(node.await_status(WAIT, caught_up).is_some(), "node {rejoined} votes again once caught up");
    for node in &nodes {
        node.close();
    }
    drop(nodes);
    let logs: Vec<Vec<Entry>> = (1..=3).map(|id| entries(dir, NodeId(id))).collect();
    assert_eq!(logs[0], logs[1], "every log is the same");
    assert_eq!(logs[1], logs[2], "every log is the same");
    for (seq, payload) in acknowledged {
        let entry = &logs[0][seq.0 as usize];
        assert_eq!(entry.payload.data(), Some(payload), "acknowledged seq {seq} holds its write");
    }
}

#[test]
fn a_node_with_a_damaged_batch_in_the_middle_returns_to_service_with_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let network = InProcessNetwork::new();
    let (mut nodes, leader) = three_nodes(dir.path(), &network);
    let mut acknowledged = append(&nodes[index(leader)], "a", 30);
    let victim = nodes.iter().map(RaftNode::id).find(|id| *id != leader).unwrap();
    assert!(nodes[index(victim)].await_commit(acknowledged.last().unwrap().0, WAIT));
    nodes[index(victim)].close();
    // A bit rots in a record of an early batch, with later batches after it.
    let segment = dir.path().join(format!("n{victim}.{:020}.seg", 0));
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[600] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();
    let plain = FsLog::open(dir.path(), &format!("n{victim}"), FsLogOptions::default());
    assert!(matches!(plain, Err(tinyraftplus::log::LogError::Corrupt(_))), "the damage is found and named");
    let (log, repair) = FsLog::open_repairing(dir.path(), &format!("n{victim}"), FsLogOptions::default()).unwrap();
    let repair = repair.expect("the damage was repaired");
    assert!(repair.from > 0 && repair.from < 20, "the valid prefix is kept: {repair:?}");
    assert!(log.hard_state().catching_up, "a repaired log is catching up");
    nodes[index(victim)] = start(victim, log, &network);
    acknowledged.extend(append(&nodes[index(leader)], "b", 5));
    let last = acknowledged.last().unwrap().0;
    assert!(nodes[index(victim)].await_commit(last, WAIT), "the repaired node is rebuilt");
    rejoined_and_identical(dir.path(), nodes, victim, &acknowledged);
}

#[test]
fn a_deleted_follower_is_rebuilt_from_the_others() {
    delete_and_rebuild(false);
}

#[test]
fn a_deleted_leader_is_rebuilt_from_the_others() {
    delete_and_rebuild(true);
}
