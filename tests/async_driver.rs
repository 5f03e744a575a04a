//! The async driver: three nodes on real files and the in-process network, many concurrent
//! appends from tasks, reads, events and close.

use bytes::Bytes;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tinyraftplus::core::{ClientError, Config, Event, NodeId, Seq};
use tinyraftplus::driver::{AsyncRaftNode, InProcessNetwork, StateMachine};
use tinyraftplus::log::{FsLog, FsLogOptions};

/// Counts the entries applied.
struct Count(u64);

impl StateMachine for Count {
    fn apply(&mut self, _first: Seq, entries: &[Option<Bytes>]) -> Result<Vec<Bytes>, String> {
        Ok(entries
            .iter()
            .map(|entry| {
                self.0 += u64::from(entry.is_some());
                Bytes::from(self.0.to_string())
            })
            .collect())
    }

    fn read(&mut self, _seq: Option<Seq>, _command: &[u8]) -> Result<Bytes, String> {
        Ok(Bytes::from(self.0.to_string()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tasks_append_through_every_node_and_read_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let network = InProcessNetwork::new();
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let nodes: Vec<Arc<AsyncRaftNode>> = ids
        .iter()
        .map(|id| {
            let log = FsLog::open(dir.path(), &format!("n{id}"), FsLogOptions::default()).unwrap();
            let node =
                AsyncRaftNode::open(Config::new(*id, ids.clone()), log, network.clone(), Some(Box::new(Count(0))));
            Arc::new(node.unwrap())
        })
        .collect();
    let mut events = nodes[0].events();
    for node in &nodes {
        assert!(node.await_leader(Duration::from_secs(30)).await.is_some());
    }
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let node = Arc::clone(&nodes[i % 3]);
            tokio::spawn(async move { node.append(Bytes::from(format!("entry {i}"))).await })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    let mut counts = BTreeSet::new();
    for task in tasks {
        let (seq, count) = task.await.unwrap().unwrap();
        seqs.insert(seq);
        counts.insert(count.unwrap());
    }
    assert_eq!(seqs.len(), 300, "every append has its own seq");
    assert_eq!(counts.len(), 300, "and its own place in the state machine");
    let (first, counts) = nodes[1].append_batch(vec![Bytes::from("a"), Bytes::from("b")]).await.unwrap();
    assert!(first > *seqs.last().unwrap());
    assert_eq!(counts, [Bytes::from("301"), Bytes::from("302")]);
    assert_eq!(nodes[2].read(Bytes::new()).await.unwrap().1, Bytes::from("302"));
    assert!(nodes[0].await_commit(Seq(first.0 + 1), Duration::from_secs(30)).await);
    assert_eq!(nodes[0].head().await.unwrap(), Some(Bytes::from("b")));
    // Leadership handed over on request: asked of the leader, it names the new one.
    let leader = nodes[0].status().leader.expect("a leader");
    let target = NodeId(leader.0 % 3 + 1);
    let index = |id: NodeId| id.0 as usize - 1;
    // `TransferFailed` (the target did not win within an election timeout, which a loaded
    // machine allows) is tried again, as an operator would; any other answer fails the test.
    let mut tries = 0;
    let transferred = loop {
        tries += 1;
        match nodes[index(leader)].transfer_leader(target).await {
            Err(ClientError::TransferFailed { .. }) if tries < 10 => {}
            Err(ClientError::NotLeader { leader: Some(now) }) if now == target => break Ok(now),
            answer => break answer,
        }
    };
    assert_eq!(transferred, Ok(target));
    assert_eq!(nodes[index(target)].append(Bytes::from("c")).await.unwrap().1, Some(Bytes::from("303")));
    let mut commits = 0;
    while let Ok(event) = events.try_recv() {
        commits += usize::from(matches!(event, Event::Commit(_)));
    }
    assert!(commits > 0, "node 1 reported commits");
    for node in &nodes {
        node.close().await;
        assert!(node.status().closed);
    }
    let after = nodes[0].append(Bytes::from("late")).await;
    assert_eq!(after, Err(tinyraftplus::core::ClientError::Closed));
}

/// A node first called from a current-thread runtime that is then left alone, and afterwards
/// from another runtime: its answers must not wait for the first runtime to run again.
#[test]
fn a_node_called_from_a_runtime_left_idle_answers_calls_from_another() {
    let dir = tempfile::tempdir().unwrap();
    let log = FsLog::open(dir.path(), "n1", FsLogOptions::default()).unwrap();
    let ids = vec![NodeId(1)];
    let first = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (node, seq) = first.block_on(async {
        let node = AsyncRaftNode::open(Config::new(NodeId(1), ids), log, InProcessNetwork::new(), None).unwrap();
        assert!(node.await_leader(Duration::from_secs(30)).await.is_some());
        let (seq, _) = node.append(Bytes::from("first")).await.unwrap();
        (node, seq)
    });
    // `first` is not driven any more (and not dropped).
    let second = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    second.block_on(async {
        let answered = tokio::time::timeout(Duration::from_secs(10), node.append(Bytes::from("second"))).await;
        assert_eq!(answered.expect("answered without the first runtime").unwrap().0, Seq(seq.0 + 1));
        node.close().await;
    });
    drop(first);
}
