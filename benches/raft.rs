//! `cargo bench --bench raft`: three nodes in one process with the blocking driver, each on its
//! own FsLog (on the disk of the current directory, or `TINYRAFTPLUS_BENCH_DIR`), 100-byte
//! entries, next to the raw fdatasync rate of the same run. One JSON object per line:
//!
//! - `disk_fdatasync_4k`: raw 4 KiB write + fdatasync per second (the baseline);
//! - `raft3_append_seq`: sequential appends through the leader, each committed before the next;
//! - `raft3_append_batch1000`: entries per second in batches of 1,000 through the leader;
//! - `raft3_concurrent256`: entries per second from 256 tasks appending through the leader
//!   with the async driver (`raft3_threads_concurrent256`: 256 threads, blocking driver);
//! - `raft3_forwarded_append_seq`: sequential appends through a follower (forwarded);
//! - `raft_catchup_entries_per_s`: entries per second a node with an empty disk receives from
//!   two nodes whose logs hold 1,000,000 100-byte entries;
//! - `raft3_tcp_append_seq`, `raft3_tcp_append_batch1000`: the same as the first two with the
//!   nodes connected by the TCP transport on loopback, encrypted under a shared key.
//!
//! `SAMPLES=1` prints each run's figure (with the leader's id) to stderr.

mod common;

use bytes::Bytes;
use common::{data_dir, fdatasync_rate, median3, report, selection};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tinyraftplus::core::{Config, HardState, NodeId, Role, Seq, Term};
use tinyraftplus::driver::{AsyncRaftNode, InProcessNetwork, RaftNode};
use tinyraftplus::log::{FsLog, FsLogOptions};
use tinyraftplus::transport::{Security, TcpOptions, TcpTransport, Transport};

/// How the nodes are connected.
#[derive(Clone, Copy)]
enum Net {
    InProcess,
    Tcp,
}

/// One transport per node.
fn transports(net: Net, ids: &[NodeId]) -> Vec<Arc<dyn Transport>> {
    match net {
        Net::InProcess => {
            let network = InProcessNetwork::new();
            ids.iter().map(|_| network.clone() as Arc<dyn Transport>).collect()
        }
        Net::Tcp => {
            let listeners: Vec<TcpListener> = ids.iter().map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
            let addrs: BTreeMap<_, _> =
                ids.iter().zip(&listeners).map(|(id, l)| (*id, l.local_addr().unwrap())).collect();
            let security = Security::SharedKey([3; 32]);
            let options = TcpOptions::default;
            let open =
                |(id, listener)| TcpTransport::with_listener(id, listener, addrs.clone(), security.clone(), options());
            ids.iter().copied().zip(listeners).map(|pair| open(pair).unwrap() as Arc<dyn Transport>).collect()
        }
    }
}

/// A fresh three-node cluster in `dir`; returns the nodes with the leader first.
fn cluster(dir: &Path, net: Net) -> Vec<RaftNode> {
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut nodes: Vec<RaftNode> = ids
        .iter()
        .zip(transports(net, &ids))
        .map(|(id, transport)| {
            let log = FsLog::open(dir, &format!("n{id}"), FsLogOptions::default()).unwrap();
            RaftNode::open(Config::new(*id, ids.clone()), log, transport, None).unwrap()
        })
        .collect();
    for node in &nodes {
        node.await_leader(Duration::from_secs(30)).expect("a leader");
    }
    let leader = nodes.iter().position(|n| n.status().role == Role::Leader).expect("a leader");
    nodes.swap(0, leader);
    nodes
}

fn rate(dir: &Path, net: Net, duration: Duration, run: impl Fn(&[RaftNode], &AtomicU64, Instant)) -> f64 {
    let sub = tempfile::tempdir_in(dir).unwrap();
    let nodes = cluster(sub.path(), net);
    let count = AtomicU64::new(0);
    let start = Instant::now();
    while start.elapsed() < duration {
        run(&nodes, &count, start);
    }
    let rate = count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    if std::env::var_os("SAMPLES").is_some() {
        eprintln!("sample {rate:.0} leader={} first={}", nodes[0].id(), nodes[1].id());
    }
    for node in &nodes {
        node.close();
    }
    rate
}

/// Entries per second from `tasks` tasks appending through the leader of an async cluster.
fn concurrent_async(dir: &Path, tasks: usize, duration: Duration) -> f64 {
    let sub = tempfile::tempdir_in(dir).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let network = InProcessNetwork::new();
    let nodes: Vec<Arc<AsyncRaftNode>> = ids
        .iter()
        .map(|id| {
            let log = FsLog::open(sub.path(), &format!("n{id}"), FsLogOptions::default()).unwrap();
            Arc::new(AsyncRaftNode::open(Config::new(*id, ids.clone()), log, network.clone(), None).unwrap())
        })
        .collect();
    runtime.block_on(async move {
        let leader = nodes[0].await_leader(Duration::from_secs(30)).await.expect("a leader");
        let leader = Arc::clone(&nodes[(leader.0 - 1) as usize]);
        let count = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let payload = Bytes::from(vec![1u8; 100]);
        let workers: Vec<_> = (0..tasks)
            .map(|_| {
                let (leader, count, payload) = (Arc::clone(&leader), Arc::clone(&count), payload.clone());
                tokio::spawn(async move {
                    while start.elapsed() < duration {
                        leader.append(payload.clone()).await.unwrap();
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.unwrap();
        }
        let rate = count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
        for node in &nodes {
            node.close().await;
        }
        rate
    })
}

/// Entries per second that a node with an empty disk receives from a running two-node cluster
/// whose logs hold `entries` 100-byte entries (the catch-up path a new learner will take: loads
/// from the leader's log, pipelined appends, the follower's writes).
fn catch_up(dir: &Path, entries: u64) -> f64 {
    let sub = tempfile::tempdir_in(dir).unwrap();
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let payload = [1u8; 100];
    for id in &ids[..2] {
        let mut log = FsLog::open(sub.path(), &format!("n{id}"), FsLogOptions::default()).unwrap();
        let batch: Vec<(Term, Option<&[u8]>)> = (0..10_000).map(|_| (Term(1), Some(&payload[..]))).collect();
        for _ in 0..entries / 10_000 {
            log.append_batch(&batch).unwrap();
        }
        let committed = Some(Seq(entries - 1));
        log.save_hard_state(HardState { commit: committed, ..HardState::new(Term(1), Some(NodeId(1))) }).unwrap();
    }
    let network = InProcessNetwork::new();
    let open = |id: NodeId| {
        let log = FsLog::open(sub.path(), &format!("n{id}"), FsLogOptions::default()).unwrap();
        RaftNode::open(Config::new(id, ids.clone()), log, network.clone(), None).unwrap()
    };
    let running: Vec<RaftNode> = ids[..2].iter().map(|id| open(*id)).collect();
    running[0].await_leader(Duration::from_secs(60)).expect("a leader");
    let target = running.iter().map(|n| n.status().seq).max().flatten();
    let start = Instant::now();
    let new = open(ids[2]);
    while new.status().seq < target {
        assert!(start.elapsed() < Duration::from_secs(300), "no catch-up: {:?}", new.status());
        std::thread::sleep(Duration::from_millis(5));
    }
    let rate = entries as f64 / start.elapsed().as_secs_f64();
    for node in running.iter().chain([&new]) {
        node.close();
    }
    rate
}

fn main() {
    let wanted = selection();
    let temp = data_dir();
    let dir = temp.path();
    let second = Duration::from_secs(2);
    let payload = Bytes::from(vec![1u8; 100]);
    report("disk_fdatasync_4k", median3(|| fdatasync_rate(dir, Duration::from_secs(1))), "syncs/s");
    let sequential = |node: usize| {
        let payload = payload.clone();
        move |nodes: &[RaftNode], count: &AtomicU64, _: Instant| {
            nodes[node].append(payload.clone()).unwrap();
            count.fetch_add(1, Ordering::Relaxed);
        }
    };
    let batch: Vec<Bytes> = (0..1000).map(|_| payload.clone()).collect();
    let batches = |nodes: &[RaftNode], count: &AtomicU64, _: Instant| {
        nodes[0].append_batch(batch.clone()).unwrap();
        count.fetch_add(1000, Ordering::Relaxed);
    };
    for (name, net) in [("raft3_append_seq", Net::InProcess), ("raft3_tcp_append_seq", Net::Tcp)] {
        if wanted(name) {
            report(name, median3(|| rate(dir, net, second, sequential(0))), "entries/s");
        }
    }
    for (name, net) in [("raft3_append_batch1000", Net::InProcess), ("raft3_tcp_append_batch1000", Net::Tcp)] {
        if wanted(name) {
            report(name, median3(|| rate(dir, net, second, batches)), "entries/s");
        }
    }
    if wanted("raft3_concurrent256") {
        let value = median3(|| concurrent_async(dir, 256, second));
        report("raft3_concurrent256", value, "entries/s");
    }
    if wanted("raft3_threads_concurrent256") {
        let run = |nodes: &[RaftNode], count: &AtomicU64, start: Instant| {
            std::thread::scope(|scope| {
                for _ in 0..256 {
                    scope.spawn(|| {
                        while start.elapsed() < second {
                            nodes[0].append(payload.clone()).unwrap();
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
            });
        };
        let value = median3(|| rate(dir, Net::InProcess, second, run));
        report("raft3_threads_concurrent256", value, "entries/s");
    }
    if wanted("raft_catchup_entries_per_s") {
        report("raft_catchup_entries_per_s", median3(|| catch_up(dir, 1_000_000)), "entries/s");
    }
    if wanted("raft3_forwarded_append_seq") {
        let value = median3(|| rate(dir, Net::InProcess, second, sequential(1)));
        report("raft3_forwarded_append_seq", value, "entries/s");
    }
}
