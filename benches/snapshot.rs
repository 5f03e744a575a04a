//! Snapshot benchmarks: `cargo bench --bench snapshot [FILTER]`, one JSON object per line:
//! - `disk_fdatasync_4k`, `disk_write_bw_1m` (bytes/s of 1 MiB write + fdatasync) and
//!   `net_loopback_bw` (bytes/s through a loopback TCP socket): this machine's limits, measured
//!   in the same run;
//! - `snapshot_transfer_bytes_per_s`: a follower that lost its disk is rebuilt from the leader's
//!   snapshot of `SNAPSHOT_MB` MiB (default 256) over loopback TCP with encryption, from its
//!   restart to its state machine restored (received, written and synced, installed, read back);
//! - `raft3_append_during_snapshot`: appends per second from 64 client threads through the leader
//!   of three nodes while it takes a snapshot and sends one to a follower that needs it;
//!   `raft3_append_no_snapshot`: the same clients in the same run, without (median of 3 rounds);
//! - `restart_ms_compacted`, `restart_ms_full`: a single node whose history is 1,000,000 entries
//!   reopens and applies everything: from a snapshot plus 10,000 entries, or the whole log.

mod common;

use bytes::Bytes;
use common::{appends_during, data_dir, fdatasync_rate, median, median3, report, selection, write_bandwidth};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tinyraftplus::core::{Config, HardState, NodeId, Role, Seq, Term};
use tinyraftplus::driver::{InProcessNetwork, RaftNode, StateMachine};
use tinyraftplus::log::{Encoder, FsLog, FsLogOptions, SnapshotMeta, SnapshotStore};
use tinyraftplus::testkit::Pattern;
use tinyraftplus::transport::{Security, TcpOptions, TcpTransport, Transport};

/// A state machine whose state is `size` bytes (made as they are read, never held); a restore
/// reads the bytes and notes how many.
struct Blob {
    size: u64,
    restored: Arc<AtomicU64>,
}

impl StateMachine for Blob {
    fn apply(&mut self, _first: Seq, entries: &[Option<Bytes>]) -> Result<Vec<Bytes>, String> {
        Ok(vec![Bytes::new(); entries.len()])
    }

    fn read(&mut self, _seq: Option<Seq>, _command: &[u8]) -> Result<Bytes, String> {
        Ok(Bytes::new())
    }

    fn snapshot(&mut self) -> Option<Result<Box<dyn Read + Send>, String>> {
        Some(Ok(Box::new(Pattern::new(self.size))))
    }

    fn restore(&mut self, input: &mut dyn Read) -> Result<(), String> {
        let total = std::io::copy(input, &mut std::io::sink()).map_err(|e| e.to_string())?;
        self.restored.store(total, Ordering::SeqCst);
        Ok(())
    }
}

/// One running node and what its state machine reports.
struct Node {
    node: RaftNode,
    restored: Arc<AtomicU64>,
}

/// Opens node `id` of three in `dir` on `transport`, with a snapshot store and a `size`-byte
/// state.
fn open(dir: &Path, id: NodeId, transport: Arc<dyn Transport>, size: u64) -> Node {
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut config = Config::new(id, ids);
    config.snapshot_keep_entries = 0;
    config.priority = vec![(NodeId(1), 1)];
    let log = FsLog::open(dir, &format!("n{id}"), FsLogOptions::default()).unwrap();
    let store = SnapshotStore::new(dir, &format!("n{id}"), Encoder::XxHash);
    let restored = Arc::new(AtomicU64::new(0));
    let machine = Blob { size, restored: Arc::clone(&restored) };
    let node = RaftNode::open_restoring(config, log, &store, transport, Box::new(machine)).unwrap();
    Node { node, restored }
}

/// Three TCP transports on loopback with a shared key (encrypted), or one in-process network.
fn transports(tcp: bool) -> Vec<Arc<dyn Transport>> {
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    if !tcp {
        let network = InProcessNetwork::new();
        return ids.iter().map(|_| network.clone() as Arc<dyn Transport>).collect();
    }
    let listeners: Vec<TcpListener> = ids.iter().map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let addrs: BTreeMap<_, _> = ids.iter().zip(&listeners).map(|(id, l)| (*id, l.local_addr().unwrap())).collect();
    let security = Security::SharedKey([3; 32]);
    let open = |(id, listener)| {
        TcpTransport::with_listener(id, listener, addrs.clone(), security.clone(), TcpOptions::default()).unwrap()
    };
    ids.iter().copied().zip(listeners).map(|pair| open(pair) as Arc<dyn Transport>).collect()
}

/// Node 1 leads three nodes; it takes two snapshots (so that its log drops what the first
/// covers) with appends before each.
fn compacted_cluster(dir: &Path, transports: &[Arc<dyn Transport>], size: u64) -> Vec<Node> {
    let nodes: Vec<Node> =
        (1..=3).map(|id| open(dir, NodeId(id), Arc::clone(&transports[id as usize - 1]), size)).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while nodes[0].node.status().role != Role::Leader {
        assert!(Instant::now() < deadline, "node 1 never led");
        std::thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..2 {
        nodes[0].node.append_batch(vec![Bytes::from_static(b"x"); 100]).unwrap();
        nodes[0].node.snapshot().unwrap();
    }
    nodes
}

/// Closes node 3, deletes its files, and starts it again on an empty disk.
fn wipe_and_restart(dir: &Path, nodes: &mut Vec<Node>, transport: Arc<dyn Transport>, size: u64) {
    let node = nodes.pop().expect("node 3");
    node.node.close();
    drop(node);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("n3.") {
            std::fs::remove_file(path).unwrap();
        }
    }
    nodes.push(open(dir, NodeId(3), transport, size));
}

/// Waits until node 3 restored a snapshot.
fn await_restored(node: &Node, limit: Duration) {
    let deadline = Instant::now() + limit;
    while node.restored.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "node 3 was not rebuilt: {:?}", node.node.status());
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Bytes per second of a snapshot of `size` bytes sent to a wiped follower over TCP.
fn transfer(dir: &Path, size: u64) -> f64 {
    let sub = tempfile::tempdir_in(dir).unwrap();
    let transports = transports(true);
    let mut nodes = compacted_cluster(sub.path(), &transports, size);
    let start = Instant::now();
    wipe_and_restart(sub.path(), &mut nodes, Arc::clone(&transports[2]), size);
    await_restored(&nodes[2], Duration::from_secs(600));
    let rate = size as f64 / start.elapsed().as_secs_f64();
    assert_eq!(nodes[2].restored.load(Ordering::SeqCst), size);
    nodes.iter().for_each(|n| n.node.close());
    rate
}

/// Bytes per second through a loopback TCP socket (1 MiB writes, the reader discards).
fn loopback(size: u64) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut buffer = vec![0u8; 1 << 20];
        while socket.read(&mut buffer).unwrap() > 0 {}
    });
    let mut socket = TcpStream::connect(address).unwrap();
    let block = vec![7u8; 1 << 20];
    let start = Instant::now();
    for _ in 0..size >> 20 {
        socket.write_all(&block).unwrap();
    }
    drop(socket);
    reader.join().unwrap();
    size as f64 / start.elapsed().as_secs_f64()
}

/// Appends per second from `clients` threads through node 1 of three for `window` (with
/// `snapshot`: node 3 restarts on an empty disk and is sent node 1's snapshot, and node 1 takes
/// one more, meanwhile; measured until both are done). Returns the rate and how long it ran.
fn appends(dir: &Path, clients: usize, size: u64, snapshot: bool, window: Duration) -> (f64, Duration) {
    let sub = tempfile::tempdir_in(dir).unwrap();
    let transports = transports(false);
    let mut nodes = compacted_cluster(sub.path(), &transports, size);
    let mut third = nodes.pop();
    let measured = appends_during(clients, &nodes[0].node, || match snapshot {
        true => {
            let mut rebuilt = vec![third.take().expect("node 3")];
            wipe_and_restart(sub.path(), &mut rebuilt, Arc::clone(&transports[2]), size);
            nodes[0].node.snapshot().expect("a snapshot");
            await_restored(&rebuilt[0], Duration::from_secs(600));
            third = rebuilt.pop();
        }
        false => std::thread::sleep(window),
    });
    nodes.iter().chain(third.as_ref()).for_each(|n| n.node.close());
    measured
}

/// Milliseconds for a single node whose history is `entries` entries to reopen and apply all of
/// it: from a snapshot at `entries - 10,000` plus the log after it (`compacted`), or the log.
fn restart(dir: &Path, entries: u64, compacted: bool) -> f64 {
    let sub = tempfile::tempdir_in(dir).unwrap();
    let options = || FsLogOptions { segment_bytes: 8 << 20, ..FsLogOptions::default() };
    let snapshot_at = entries - 10_000;
    {
        let mut log = FsLog::open(sub.path(), "n1", options()).unwrap();
        let payload = [1u8; 100];
        let batch: Vec<(Term, Option<&[u8]>)> = (0..10_000).map(|_| (Term(1), Some(&payload[..]))).collect();
        for _ in 0..entries / 10_000 {
            log.append_batch(&batch).unwrap();
        }
        let commit = Some(Seq(entries - 1));
        log.save_hard_state(HardState { commit, ..HardState::new(Term(1), Some(NodeId(1))) }).unwrap();
        if compacted {
            let store = SnapshotStore::new(sub.path(), "n1", Encoder::XxHash);
            let last = tinyraftplus::core::LogId::new(Term(1), Seq(snapshot_at));
            let mut writer = store.writer(SnapshotMeta { last, digest: 0, configuration: None }).unwrap();
            writer.write(&(snapshot_at + 1).to_le_bytes()).unwrap();
            writer.finish().unwrap();
            log.remove_prefix(Seq(snapshot_at)).unwrap();
        }
    }
    let start = Instant::now();
    let log = FsLog::open(sub.path(), "n1", options()).unwrap();
    let mut config = Config::new(NodeId(1), [NodeId(1)]);
    config.election_timeout = Duration::from_millis(20);
    let applied = Arc::new(AtomicU64::new(0));
    let machine = Box::new(Count { applied: Arc::clone(&applied) });
    let node = match compacted {
        true => {
            let store = SnapshotStore::new(sub.path(), "n1", Encoder::XxHash);
            RaftNode::open_restoring(config, log, &store, InProcessNetwork::new(), machine).unwrap()
        }
        false => RaftNode::open(config, log, InProcessNetwork::new(), Some(machine)).unwrap(),
    };
    // Everything is applied: the history's entries, and the blank entry of the node's term.
    while applied.load(Ordering::SeqCst) < entries + 1 {
        assert!(start.elapsed() < Duration::from_secs(600), "not applied: {}", applied.load(Ordering::SeqCst));
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = start.elapsed().as_secs_f64() * 1000.0;
    node.close();
    elapsed
}

/// Counts the entries applied; its snapshot is that count.
struct Count {
    applied: Arc<AtomicU64>,
}

impl StateMachine for Count {
    fn apply(&mut self, _first: Seq, entries: &[Option<Bytes>]) -> Result<Vec<Bytes>, String> {
        self.applied.fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok(vec![Bytes::new(); entries.len()])
    }

    fn read(&mut self, _seq: Option<Seq>, _command: &[u8]) -> Result<Bytes, String> {
        Ok(Bytes::new())
    }

    fn restore(&mut self, input: &mut dyn Read) -> Result<(), String> {
        let mut count = [0u8; 8];
        input.read_exact(&mut count).map_err(|e| e.to_string())?;
        self.applied.store(u64::from_le_bytes(count), Ordering::SeqCst);
        Ok(())
    }
}

fn main() {
    let wanted = selection();
    let temp = data_dir();
    let dir = temp.path();
    let mb: u64 = std::env::var("SNAPSHOT_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let size = mb << 20;
    report("disk_fdatasync_4k", median3(|| fdatasync_rate(dir, Duration::from_secs(1))), "syncs/s");
    report("disk_write_bw_1m", median3(|| write_bandwidth(dir, Duration::from_secs(1))), "bytes/s");
    report("net_loopback_bw", median3(|| loopback(size.min(1 << 30))), "bytes/s");
    if wanted("snapshot_transfer_bytes_per_s") {
        report("snapshot_transfer_bytes_per_s", median3(|| transfer(dir, size)), "bytes/s");
    }
    if wanted("raft3_append_during_snapshot") || wanted("raft3_append_no_snapshot") {
        let mut runs = Vec::new();
        for _ in 0..3 {
            let (during, took) = appends(dir, 64, size, true, Duration::ZERO);
            let (without, _) = appends(dir, 64, size, false, took);
            if std::env::var_os("SAMPLES").is_some() {
                eprintln!("sample during {during:.0} without {without:.0} snapshot {took:?}");
            }
            runs.push((during, without));
        }
        report("raft3_append_during_snapshot", median(runs.iter().map(|r| r.0).collect()), "entries/s");
        report("raft3_append_no_snapshot", median(runs.iter().map(|r| r.1).collect()), "entries/s");
        report("raft3_snapshot_ratio_percent", median(runs.iter().map(|r| 100.0 * r.0 / r.1).collect()), "percent");
    }
    if wanted("restart_ms") {
        report("restart_ms_compacted", median3(|| restart(dir, 1_000_000, true)), "ms");
        report("restart_ms_full", median3(|| restart(dir, 1_000_000, false)), "ms");
    }
}
