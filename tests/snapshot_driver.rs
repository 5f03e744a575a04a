//! Snapshots through the drivers: a state machine's snapshot is streamed into the snapshot
//! store while the node goes on; a restart restores the latest intact snapshot and applies only
//! the entries after it; a damaged latest snapshot falls back to the one before; a follower that
//! lost its disk after the others compacted their logs is rebuilt from a snapshot plus the log.

use bytes::Bytes;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tinyraftplus::core::{Config, NodeId, Seq};
use tinyraftplus::driver::{InProcessNetwork, RaftNode, StateMachine};
use tinyraftplus::log::{Encoder, FsLog, FsLogOptions, SnapshotStore};

/// Sums the numbers appended; counts the entries it applies (blank ones too).
struct Sum {
    total: Arc<AtomicU64>,
    applied: Arc<AtomicU64>,
}

impl StateMachine for Sum {
    fn apply(&mut self, _first: Seq, entries: &[Option<Bytes>]) -> Result<Vec<Bytes>, String> {
        let mut responses = Vec::new();
        for entry in entries {
            let n: u64 = entry.as_ref().and_then(|d| std::str::from_utf8(d).ok()?.parse().ok()).unwrap_or(0);
            let total = self.total.fetch_add(n, Ordering::SeqCst) + n;
            self.applied.fetch_add(1, Ordering::SeqCst);
            responses.push(Bytes::from(total.to_string()));
        }
        Ok(responses)
    }

    fn read(&mut self, _seq: Option<Seq>, _command: &[u8]) -> Result<Bytes, String> {
        Ok(Bytes::from(self.total.load(Ordering::SeqCst).to_string()))
    }

    fn snapshot(&mut self) -> Option<Result<Box<dyn Read + Send>, String>> {
        // A copy: later applies do not change it. Padded, so the snapshot spans chunks.
        let mut state = self.total.load(Ordering::SeqCst).to_le_bytes().to_vec();
        state.resize(5000, 7);
        Some(Ok(Box::new(std::io::Cursor::new(state))))
    }

    fn restore(&mut self, input: &mut dyn Read) -> Result<(), String> {
        let mut state = Vec::new();
        input.read_to_end(&mut state).map_err(|e| e.to_string())?;
        let total = state.get(..8).ok_or("a short snapshot")?;
        self.total.store(u64::from_le_bytes(total.try_into().unwrap()), Ordering::SeqCst);
        Ok(())
    }
}

struct Node {
    node: RaftNode,
    total: Arc<AtomicU64>,
    applied: Arc<AtomicU64>,
}

fn store(dir: &std::path::Path, id: NodeId) -> SnapshotStore {
    let mut store = SnapshotStore::new(dir, &format!("n{id}"), Encoder::XxHash);
    store.chunk_bytes = 1024;
    store
}

/// Opens node `id` of three, its log and snapshots in `dir`; snapshots every `every` entries
/// (0: only when asked).
fn open(dir: &std::path::Path, network: &Arc<InProcessNetwork>, id: NodeId, every: u64) -> Node {
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut config = Config::new(id, ids);
    config.election_timeout = Duration::from_millis(1000);
    config.ping_timeout = Duration::from_millis(1000);
    (config.snapshot_entries, config.snapshot_keep_entries) = (every, 0);
    let log = FsLog::open(dir, &format!("n{id}"), FsLogOptions::default()).unwrap();
    let (total, applied) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let machine = Box::new(Sum { total: Arc::clone(&total), applied: Arc::clone(&applied) });
    let node = RaftNode::open_restoring(config, log, &store(dir, id), network.clone(), machine).unwrap();
    Node { node, total, applied }
}

/// Appends `count` ones through the leader; returns the seq of the last.
fn append_ones(nodes: &[Node], count: usize) -> Seq {
    // A node just closed may still be the leader the others know, until they elect another.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let leader = loop {
        let leader = nodes[0].node.await_leader(Duration::from_secs(30)).expect("a leader");
        if let Some(leader) = nodes.iter().find(|n| n.node.id() == leader) {
            break leader;
        }
        assert!(std::time::Instant::now() < deadline, "no leader among the running nodes");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut last = Seq(0);
    for _ in 0..count {
        last = leader.node.append(Bytes::from("1")).unwrap().0;
    }
    last
}

/// Waits until node `n` has applied up to `seq`, with `total` as its sum.
fn await_total(node: &Node, seq: Seq, total: u64) {
    assert!(node.node.await_commit(seq, Duration::from_secs(10)));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while node.total.load(Ordering::SeqCst) != total {
        assert!(std::time::Instant::now() < deadline, "total {} not {total}", node.total.load(Ordering::SeqCst));
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_restart_restores_the_latest_snapshot_and_applies_only_the_entries_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let network = InProcessNetwork::new();
    let mut nodes: Vec<Node> = (1..=3).map(|id| open(dir.path(), &network, NodeId(id), 0)).collect();
    let seq = append_ones(&nodes, 30);
    await_total(&nodes[0], seq, 30);
    let last = nodes[0].node.snapshot().unwrap();
    assert!(last.seq >= seq, "the snapshot covers what node 1 applied: {last:?}");
    let seq = append_ones(&nodes, 10);
    await_total(&nodes[0], seq, 40);
    // Node 1 restarts from the snapshot: its sum comes back without applying the first 30.
    nodes[0].node.close();
    drop(nodes.remove(0));
    let restarted = open(dir.path(), &network, NodeId(1), 0);
    nodes.insert(0, restarted);
    let seq = append_ones(&nodes, 5);
    await_total(&nodes[0], seq, 45);
    let applied = nodes[0].applied.load(Ordering::SeqCst);
    assert_eq!(applied, seq.0 - last.seq.0, "only the entries after the snapshot ({last:?}) are applied");
}

#[test]
fn a_damaged_latest_snapshot_falls_back_to_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let network = InProcessNetwork::new();
    let mut nodes: Vec<Node> = (1..=3).map(|id| open(dir.path(), &network, NodeId(id), 0)).collect();
    let seq = append_ones(&nodes, 20);
    await_total(&nodes[0], seq, 20);
    let first = nodes[0].node.snapshot().unwrap();
    let seq = append_ones(&nodes, 20);
    await_total(&nodes[0], seq, 40);
    let second = nodes[0].node.snapshot().unwrap();
    nodes[0].node.close();
    drop(nodes.remove(0));
    let path = dir.path().join(format!("n1.{:020}.snap", second.seq.0));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[2000] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let restarted = open(dir.path(), &network, NodeId(1), 0);
    nodes.insert(0, restarted);
    let seq = append_ones(&nodes, 1);
    await_total(&nodes[0], seq, 41);
    let applied = nodes[0].applied.load(Ordering::SeqCst);
    assert_eq!(applied, seq.0 - first.seq.0, "restored from the first snapshot ({first:?})");
}

#[test]
fn a_follower_that_lost_its_disk_after_compaction_is_rebuilt_from_a_snapshot_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let network = InProcessNetwork::new();
    let mut nodes: Vec<Node> = (1..=3).map(|id| open(dir.path(), &network, NodeId(id), 25)).collect();
    let mut seq = Seq(0);
    for _ in 0..8 {
        seq = append_ones(&nodes, 20);
    }
    nodes.iter().for_each(|node| await_total(node, seq, 160));
    // Node 3 loses its disk; the others took snapshots and removed the prefixes they cover.
    nodes[2].node.close();
    drop(nodes.remove(2));
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("n3.") {
            std::fs::remove_file(path).unwrap();
        }
    }
    append_ones(&nodes, 5);
    nodes.push(open(dir.path(), &network, NodeId(3), 25));
    let seq = append_ones(&nodes, 5);
    await_total(&nodes[2], seq, 170);
    let applied = nodes[2].applied.load(Ordering::SeqCst);
    assert!(applied < 60, "node 3 applied {applied} of {} entries: it was restored from a snapshot", seq.0 + 1);
    // Rebuilt, it votes again once the leader's commit point it reached is durable.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while nodes[2].node.status().catching_up {
        assert!(std::time::Instant::now() < deadline, "node 3 still catching up");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_driver_takes_and_restores_snapshots_too() {
    use tinyraftplus::driver::AsyncRaftNode;
    let dir = tempfile::tempdir().unwrap();
    let network = InProcessNetwork::new();
    let store = SnapshotStore::new(dir.path(), "n1", Encoder::XxHash);
    let open = || {
        let log = FsLog::open(dir.path(), "n1", FsLogOptions::default()).unwrap();
        let (total, applied) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let machine = Box::new(Sum { total: Arc::clone(&total), applied: Arc::clone(&applied) });
        let config = Config::new(NodeId(1), [NodeId(1)]);
        let node = AsyncRaftNode::open_restoring(config, log, &store, network.clone(), machine).unwrap();
        (node, total, applied)
    };
    let (node, total, _) = open();
    node.await_leader(Duration::from_secs(10)).await.expect("a leader");
    for _ in 0..10 {
        node.append(Bytes::from("2")).await.unwrap();
    }
    assert_eq!(total.load(Ordering::SeqCst), 20);
    let last = node.snapshot().await.unwrap();
    node.close().await;
    drop(node);
    let (node, total, applied) = open();
    assert_eq!(total.load(Ordering::SeqCst), 20, "restored");
    node.await_leader(Duration::from_secs(10)).await.expect("a leader");
    let (seq, _) = node.append(Bytes::from("2")).await.unwrap();
    assert_eq!(total.load(Ordering::SeqCst), 22);
    assert_eq!(applied.load(Ordering::SeqCst), seq.0 - last.seq.0, "only what follows the snapshot");
    node.close().await;
}
