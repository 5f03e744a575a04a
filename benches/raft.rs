//! `cargo bench --bench raft`: three nodes in one process with the blocking driver, each on its
//! own FsLog (on the disk of the current directory, or `TINYRAFTPLUS_BENCH_DIR`), 100-byte
//! entries, next to the raw fdatasync rate of the same run. One JSON object per line:
//!
//! - `disk_fdatasync_4k`: raw 4 KiB write + fdatasync per second (the baseline);
//! - `raft3_append_seq`: sequential appends through the leader, each committed before the next;
//! - `raft3_append_batch1000`: entries per second in batches of 1,000 through the leader;
//! - `raft3_concurrent256`: entries per second from 256 threads appending through the leader;
//! - `raft3_forwarded_append_seq`: sequential appends through a follower (forwarded).
//!
//! The TCP figures (`raft3_tcp_*`) come with the TCP transport.

mod common;

use bytes::Bytes;
use common::{data_dir, fdatasync_rate, median, report, selection};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tinyraftplus::core::{Config, NodeId, Role};
use tinyraftplus::driver::{InProcessNetwork, RaftNode};
use tinyraftplus::log::{FsLog, FsLogOptions};

/// A fresh three-node cluster in `dir`; returns the nodes with the leader first.
fn cluster(dir: &Path) -> Vec<RaftNode> {
    let network = InProcessNetwork::new();
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut nodes: Vec<RaftNode> = ids
        .iter()
        .map(|id| {
            let log = FsLog::open(dir, &format!("n{id}"), FsLogOptions::default()).unwrap();
            RaftNode::open(Config::new(*id, ids.clone()), log, network.clone(), None).unwrap()
        })
        .collect();
    for node in &nodes {
        node.await_leader(Duration::from_secs(30)).expect("a leader");
    }
    let leader = nodes.iter().position(|n| n.status().role == Role::Leader).expect("a leader");
    nodes.swap(0, leader);
    nodes
}

fn rate(dir: &Path, duration: Duration, run: impl Fn(&[RaftNode], &AtomicU64, Instant)) -> f64 {
    let sub = tempfile::tempdir_in(dir).unwrap();
    let nodes = cluster(sub.path());
    let count = AtomicU64::new(0);
    let start = Instant::now();
    while start.elapsed() < duration {
        run(&nodes, &count, start);
    }
    let rate = count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    for node in &nodes {
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
    report(
        "disk_fdatasync_4k",
        median((0..3).map(|_| fdatasync_rate(dir, Duration::from_secs(1))).collect()),
        "syncs/s",
    );
    let sequential = |node: usize| {
        let payload = payload.clone();
        move |nodes: &[RaftNode], count: &AtomicU64, _: Instant| {
            nodes[node].append(payload.clone()).unwrap();
            count.fetch_add(1, Ordering::Relaxed);
        }
    };
    if wanted("raft3_append_seq") {
        report("raft3_append_seq", median((0..3).map(|_| rate(dir, second, sequential(0))).collect()), "entries/s");
    }
    if wanted("raft3_append_batch1000") {
        let batch: Vec<Bytes> = (0..1000).map(|_| payload.clone()).collect();
        let run = |nodes: &[RaftNode], count: &AtomicU64, _: Instant| {
            nodes[0].append_batch(batch.clone()).unwrap();
            count.fetch_add(1000, Ordering::Relaxed);
        };
        report("raft3_append_batch1000", median((0..3).map(|_| rate(dir, second, run)).collect()), "entries/s");
    }
    if wanted("raft3_concurrent256") {
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
        report("raft3_concurrent256", median((0..3).map(|_| rate(dir, second, run)).collect()), "entries/s");
    }
    if wanted("raft3_forwarded_append_seq") {
        let value = median((0..3).map(|_| rate(dir, second, sequential(1))).collect());
        report("raft3_forwarded_append_seq", value, "entries/s");
    }
}
