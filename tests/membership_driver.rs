//! Membership changes through the blocking driver, on real files and the in-process network:
//! the seed's `10update` scenarios (5 → 7 nodes, 7 → 5 nodes) through `set_nodes`, and a dead
//! node replaced by a new one on an empty disk while appends go on.

use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tinyraftplus::core::{ClientError, Config, Configuration, NodeId, Role, Seq};
use tinyraftplus::driver::{InProcessNetwork, RaftNode};
use tinyraftplus::log::{FsLog, FsLogOptions};

fn ids(list: &[u64]) -> Vec<NodeId> {
    list.iter().copied().map(NodeId).collect()
}

/// A node of the test clusters: `nodes` is its bootstrap configuration (a joining node gets
/// the members it joins plus itself).
fn open(dir: &std::path::Path, network: &Arc<InProcessNetwork>, id: NodeId, nodes: &[NodeId]) -> RaftNode {
    let mut config = Config::new(id, nodes.to_vec());
    config.election_timeout = Duration::from_millis(1000);
    config.ping_timeout = Duration::from_millis(1000);
    let log = FsLog::open(dir, &format!("n{id}"), FsLogOptions::default()).unwrap();
    RaftNode::open(config, log, network.clone(), None).unwrap()
}

/// The leader among `nodes`, once one has committed an entry of its term.
fn leader_of(nodes: &BTreeMap<NodeId, RaftNode>) -> NodeId {
    let any = nodes.values().next().expect("a node");
    any.await_leader(Duration::from_secs(30)).expect("a leader")
}

/// Waits (bounded) until the leader of `nodes` reports exactly `followers` as responsive and
/// every node has `voters` as its single configuration in force.
fn await_settled(nodes: &BTreeMap<NodeId, RaftNode>, voters: &[NodeId]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let leaders: Vec<&RaftNode> = nodes.values().filter(|n| n.status().role == Role::Leader).collect();
        let settled = leaders.len() == 1
            && {
                let status = leaders[0].status();
                let mut followers = status.followers.clone();
                followers.sort_unstable();
                let others: Vec<NodeId> = voters.iter().copied().filter(|id| Some(*id) != status.leader).collect();
                followers == others
                && nodes.values().all(|n| {
                    matches!(n.status().configuration, Some((_, Configuration::Single(only))) if only.voters() == voters)
                })
            };
        if settled {
            return;
        }
        let shown: Vec<String> =
            nodes.iter().map(|(id, n)| format!("{id}: {:?} {:?}", n.status().role, n.status().configuration)).collect();
        assert!(Instant::now() < deadline, "not settled on {voters:?} within 20 s: {shown:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ten_update_five_nodes_become_seven_then_five_again() {
    let dir = tempfile::tempdir().unwrap();
    let network = InProcessNetwork::new();
    let five = ids(&[1, 2, 3, 4, 5]);
    let seven = ids(&[1, 2, 3, 4, 5, 6, 7]);
    let mut nodes: BTreeMap<NodeId, RaftNode> =
        five.iter().map(|id| (*id, open(dir.path(), &network, *id, &five))).collect();
    let leader = leader_of(&nodes);
    nodes[&leader].append(Bytes::from("before")).unwrap();
    // Two new nodes open, on empty disks, knowing the cluster they join.
    for id in [NodeId(6), NodeId(7)] {
        nodes.insert(id, open(dir.path(), &network, id, &seven));
    }
    let seq = nodes[&leader].set_nodes(seven.clone()).unwrap();
    assert!(nodes[&leader].await_commit(seq, Duration::from_secs(1)));
    await_settled(&nodes, &seven);
    for id in [NodeId(6), NodeId(7)] {
        assert!(nodes[&id].await_commit(seq, Duration::from_secs(10)), "node {id} caught up");
        assert!(!nodes[&id].status().catching_up);
    }
    // Back to five: two nodes close (the leader's among them if it is 6 or 7), the list is
    // set back, one leader with four followers.
    let leader = leader_of(&nodes);
    let seq = nodes[&leader].set_nodes(five.clone()).unwrap();
    assert!(nodes[&leader].await_commit(seq, Duration::from_secs(1)));
    for id in [NodeId(6), NodeId(7)] {
        let removed = nodes[&id].await_status(Duration::from_secs(10), |s| s.removed || s.commit >= Some(seq));
        assert!(removed.is_some(), "node {id} learned the change");
        nodes.remove(&id).unwrap().close();
    }
    await_settled(&nodes, &five);
    let leader = leader_of(&nodes);
    let (after, _) = nodes[&leader].append(Bytes::from("after")).unwrap();
    assert!(nodes.values().all(|n| n.await_commit(after, Duration::from_secs(10))));
    // A second change while one is under way is refused; a change on a follower names the leader.
    let follower = five.iter().copied().find(|id| *id != leader).unwrap();
    assert_eq!(nodes[&follower].set_nodes(five.clone()), Err(ClientError::NotLeader { leader: Some(leader) }));
}

#[test]
fn a_dead_node_is_replaced_by_a_new_one_while_appends_go_on() {
    type Nodes = Arc<Mutex<BTreeMap<NodeId, Arc<RaftNode>>>>;
    let dir = tempfile::tempdir().unwrap();
    let network = InProcessNetwork::new();
    let three = ids(&[1, 2, 3]);
    let nodes: Nodes =
        Arc::new(Mutex::new(three.iter().map(|id| (*id, Arc::new(open(dir.path(), &network, *id, &three)))).collect()));
    let node = |id: NodeId| Arc::clone(&nodes.lock().unwrap()[&id]);
    let leader = node(NodeId(1)).await_leader(Duration::from_secs(30)).expect("a leader");
    // A client appends throughout, through whichever node leads; it remembers every append it
    // was told succeeded.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (nodes, stop) = (Arc::clone(&nodes), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut acknowledged: Vec<(Seq, Bytes)> = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let data = Bytes::from(format!("w{i}"));
                let leading = nodes.lock().unwrap().values().find(|n| n.status().role == Role::Leader).cloned();
                let Some(leading) = leading else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                if let Ok((seq, _)) = leading.append(data.clone()) {
                    acknowledged.push((seq, data));
                    i += 1;
                }
            }
            acknowledged
        })
    };
    // A follower dies for good.
    let dead = three.iter().copied().find(|id| *id != leader).unwrap();
    let gone = nodes.lock().unwrap().remove(&dead).unwrap();
    gone.close();
    std::thread::sleep(Duration::from_millis(300));
    // A new machine, empty disk, joins; the dead one is removed; appends go on meanwhile.
    let replacement = NodeId(4);
    let target: Vec<NodeId> = three.iter().copied().filter(|id| *id != dead).chain([replacement]).collect();
    let mut bootstrap = three.clone();
    bootstrap.push(replacement);
    nodes.lock().unwrap().insert(replacement, Arc::new(open(dir.path(), &network, replacement, &bootstrap)));
    let leader = node(leader).await_leader(Duration::from_secs(30)).expect("a leader");
    let seq = node(leader).set_nodes(target.clone()).expect("the replacement completes");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let acknowledged = writer.join().unwrap();
    assert!(acknowledged.len() > 10, "appends went on: {}", acknowledged.len());
    for id in &target {
        let status = node(*id).await_status(Duration::from_secs(10), |s| {
            matches!(&s.configuration, Some((at, Configuration::Single(only))) if *at >= seq && only.voters() == &target[..])
        });
        assert!(status.is_some(), "node {id} has the new configuration: {:?}", node(*id).status());
    }
    // No acknowledged write is lost: each is in the new node's log, where the client was told.
    let last = acknowledged.last().map(|(seq, _)| *seq).unwrap();
    let new_node = node(replacement);
    assert!(new_node.await_commit(last, Duration::from_secs(10)));
    new_node.with_log(|log| {
        for (seq, data) in &acknowledged {
            let entry = log.read(*seq).unwrap().expect("the entry is there");
            assert_eq!(entry.payload.data(), Some(data), "seq {seq}");
        }
    });
}
