//! The main job until the drivers land: three cores in one process, connected by an in-memory
//! network and in-memory storage, elect a leader and replicate one append through each node
//! (the seed README's first example), then print what each node holds.

use bytes::Bytes;
use tinyraftplus::core::{Input, NodeId, Response, Role};
use tinyraftplus::testkit::Cluster;

fn main() {
    let mut cluster = Cluster::new(3, |config| config.state_machine = true);
    // Run the clock until a leader is elected.
    while cluster.leader().is_none() {
        cluster.advance(100_000_000);
        cluster.stabilize();
    }
    let leader = cluster.leader().expect("checked above");
    println!("have leader: node {leader} in term {}", cluster.raft(leader).term());

    // Append to any node: followers forward to the leader.
    for (node, text) in [(1, r#"{"a":1}"#), (2, r#"{"b":2}"#), (3, r#"{"c":3}"#)] {
        let id = cluster.request_id();
        let data = Bytes::from_static(text.as_bytes());
        cluster.step(NodeId(node), Input::Append { id, data });
        cluster.stabilize();
        match cluster.reply(NodeId(node), id) {
            Some(Ok(Response::Appended { seq, responses })) => {
                let count = String::from_utf8_lossy(&responses[0]);
                println!("seq = {seq} (via node {node}, state machine count {count})");
            }
            other => println!("append via node {node} failed: {other:?}"),
        }
    }
    // Followers learn the commit point with the next heartbeat.
    cluster.advance(500_000_000);
    cluster.stabilize();
    for (id, node) in &cluster.nodes {
        let raft = node.raft.as_ref().expect("running");
        let head = raft.head().map(|h| String::from_utf8_lossy(&h).into_owned()).unwrap_or_default();
        let role = match raft.role() {
            Role::Leader => "leader",
            _ => "follower",
        };
        println!(
            "node {id} ({role}): seq {} commit {} applied {} head {head}",
            raft.seq().map_or(-1, |s| s.0 as i64),
            raft.commit().map_or(-1, |s| s.0 as i64),
            raft.applied().map_or(-1, |s| s.0 as i64),
        );
    }
}
