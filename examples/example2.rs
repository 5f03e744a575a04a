//! The seed README's second example: a counting state machine on three nodes. Appends answer
//! the count after them; a read (on any node, forwarded to the leader) answers the count.
//!
//! ```text
//! state 0
//! state 1 1
//! state 2 2
//! state 3 3
//! read  3 3
//! ```

use bytes::Bytes;
use std::time::Duration;
use tinyraftplus::core::{Config, NodeId, Role, Seq};
use tinyraftplus::driver::{InProcessNetwork, RaftNode, StateMachine};
use tinyraftplus::log::{FsLog, FsLogOptions};

/// Counts the non-blank entries applied.
#[derive(Default)]
struct Counter {
    count: u64,
}

impl StateMachine for Counter {
    fn apply(&mut self, _first: Seq, entries: &[Option<Bytes>]) -> Result<Vec<Bytes>, String> {
        let responses = entries.iter().map(|entry| match entry {
            Some(_) => {
                self.count += 1;
                Bytes::from(self.count.to_string())
            }
            None => Bytes::new(),
        });
        Ok(responses.collect())
    }

    fn read(&mut self, _seq: Option<Seq>, _command: &[u8]) -> Result<Bytes, String> {
        Ok(Bytes::from(self.count.to_string()))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let network = InProcessNetwork::new();
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut nodes = Vec::new();
    for id in &ids {
        let log = FsLog::open(dir.path(), &format!("node{id}"), FsLogOptions::default())?;
        let config = Config::new(*id, ids.clone());
        nodes.push(RaftNode::open(config, log, network.clone(), Some(Box::new(Counter::default())))?);
    }
    for node in &nodes {
        node.await_leader(Duration::from_secs(30)).ok_or("no leader")?;
    }
    let leader = nodes.iter().find(|node| node.status().role == Role::Leader).ok_or("no leader")?;
    println!("state {}", leader.status().seq.map_or("none".into(), |seq| seq.to_string()));
    for (node, body) in nodes.iter().zip([r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#]) {
        let (seq, result) = node.append(Bytes::from(body))?;
        println!("state {seq} {}", String::from_utf8_lossy(&result.unwrap_or_default()));
    }
    // A read on any node goes to the leader.
    let (seq, result) = nodes[0].read(Bytes::from(r#"{"any":"type"}"#))?;
    println!("read  {} {}", seq.map_or("none".into(), |seq| seq.to_string()), String::from_utf8_lossy(&result));
    for node in &nodes {
        node.close();
    }
    Ok(())
}
