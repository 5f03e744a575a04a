//! The seed README's first example: three nodes in one process, each on its own file log (in a
//! temporary directory), full replication (a quorum of 3), one append through each node.
//!
//! ```text
//! open
//! have leader
//! seq = 1
//! seq = 2
//! seq = 3
//! head {"c":3}
//! head {"c":3}
//! head {"c":3}
//! ```

use bytes::Bytes;
use std::time::Duration;
use tinyraftplus::core::{Config, NodeId, Quorum};
use tinyraftplus::driver::{InProcessNetwork, RaftNode};
use tinyraftplus::log::{FsLog, FsLogOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let network = InProcessNetwork::new();
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut nodes = Vec::new();
    for id in &ids {
        let mut config = Config::new(*id, ids.clone());
        config.quorum = Quorum::Count(3); // Full replication, for the demo.
        let log = FsLog::open(dir.path(), &format!("node{id}"), FsLogOptions::default())?;
        nodes.push(RaftNode::open(config, log, network.clone(), None)?);
    }
    println!("open");
    for node in &nodes {
        node.await_leader(Duration::from_secs(30)).ok_or("no leader")?;
    }
    println!("have leader");
    // An append on any node goes to the leader.
    for (node, body) in nodes.iter().zip([r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#]) {
        let (seq, _) = node.append(Bytes::from(body))?;
        println!("seq = {seq}");
    }
    for node in &nodes {
        let head = node.head()?.unwrap_or_default();
        println!("head {}", String::from_utf8_lossy(&head));
    }
    for node in &nodes {
        node.close();
    }
    Ok(())
}
