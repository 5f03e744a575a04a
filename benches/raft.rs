//! `cargo bench --bench raft`: three nodes in one process with the blocking driver, each on its
//! own FsLog (on the disk of the current directory, or `TINYRAFTPLUS_BENCH_DIR`), 100-byte
//! entries, next to the raw fdatasync rate of the same run. One JSON object per line:
//!
//! - `disk_fdatasync_4k`: raw 4 KiB write + fdatasync per second (the baseline);
//! - `disk_dsync_bw_128k`: raw bytes per second of 128 KiB write + fdatasync into the same
//!   preallocated file (the bound for batched appends: three logs share it);
//! - `raft3_append_seq`: sequential appends through the leader, each committed before the next;
//! - `raft3_append_batch1000`: entries per second in batches of 1,000 through the leader;
//! - `raft3_append_batch1000_compacting`: the same in a cluster whose nodes remove their log
//!   prefix as it grows (as snapshots do), so that new segments recycle removed ones;
//! - `raft3_concurrent256`: entries per second from 256 tasks appending through the leader
//!   with the async driver (`raft3_threads_concurrent256`: 256 threads, blocking driver);
//! - `raft3_forwarded_append_seq`: sequential appends through a follower (forwarded);
//! - `raft_catchup_entries_per_s`: entries per second a new learner (added with `add_learner`,
//!   on an empty disk) receives from two nodes whose logs hold 1,000,000 100-byte entries;
//! - `raft3_append_during_change`: appends per second from 64 client threads while one node of
//!   three is replaced with `set_nodes` (the new one catching up 100,000 entries, then joint,
//!   then leave), measured over the change; `raft3_append_no_change`: the same clients for the
//!   same time with no change, in the same run; `raft3_change_seconds`: how long the change took;
//!   `raft3_change_ratio_percent`: the first over the second (the median of the runs' ratios);
//! - `raft3_tcp_append_seq`, `raft3_tcp_append_batch1000`: the same as the first two with the
//!   nodes connected by the TCP transport on loopback, encrypted under a shared key.
//!
//! `SAMPLES=1` prints each run's figure (with the leader's id) to stderr; `STATS=1` prints, for
//! each run of the append figures (all but catch-up and membership change), each node's counts
//! (core steps, disk batches, fdatasyncs per append, entries per fdatasync, time the disk thread
//! held the log, waits to load from it, the time from a write's hand-over to its report, the
//! waits in the queues between the threads (writes for the disk thread, its reports and other
//! nodes' messages for the node loop), and the time from a request's arrival to its answer).

mod common;

use bytes::Bytes;
use common::{
    appends_during, data_dir, dsync_bandwidth_128k, fdatasync_rate, log_options, median, median3, report, selection,
};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tinyraftplus::core::{Config, HardState, NodeId, Role, Seq, Term};
use tinyraftplus::driver::{AsyncRaftNode, DriverStats, InProcessNetwork, RaftNode, Status};
use tinyraftplus::log::FsLog;
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
            let log = FsLog::open(dir, &format!("n{id}"), log_options()).unwrap();
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
    warmed_rate(dir, net, 0, duration, run)
}

/// `rate` after `warm_up` calls of `run` that are not measured.
fn warmed_rate(
    dir: &Path,
    net: Net,
    warm_up: usize,
    duration: Duration,
    run: impl Fn(&[RaftNode], &AtomicU64, Instant),
) -> f64 {
    let sub = tempfile::tempdir_in(dir).unwrap();
    let nodes = cluster(sub.path(), net);
    let (unmeasured, now) = (AtomicU64::new(0), Instant::now());
    for _ in 0..warm_up {
        run(&nodes, &unmeasured, now);
    }
    let count = AtomicU64::new(0);
    let start = Instant::now();
    while start.elapsed() < duration {
        run(&nodes, &count, start);
    }
    let (done, elapsed) = (count.load(Ordering::Relaxed), start.elapsed().as_secs_f64());
    let rate = done as f64 / elapsed;
    if std::env::var_os("STATS").is_some() {
        print_stats(done, elapsed, nodes.iter().map(|node| (node.status(), node.stats())));
    }
    if std::env::var_os("SAMPLES").is_some() {
        eprintln!("sample {rate:.0} leader={} first={}", nodes[0].id(), nodes[1].id());
    }
    for node in &nodes {
        node.close();
    }
    rate
}

/// Where the time went, per node (counts, for the latency hunt), on stderr: `done` appends
/// acknowledged in `elapsed` seconds.
fn print_stats(done: u64, elapsed: f64, nodes: impl Iterator<Item = (Status, DriverStats)>) {
    for (status, stats) in nodes {
        let per = |value: u64| value as f64 / done.max(1) as f64;
        let mean_us = |ns: u64, count: u64| ns as f64 / 1e3 / count.max(1) as f64;
        eprintln!(
            "{:?} {:?}: {done} appends acknowledged in {elapsed:.2} s; {} steps taking {:.1} inputs and {:.0} us \
             each; {} disk batches, {} fdatasyncs of entries ({:.4} per append, {:.1} entries each), disk busy \
             {:.0}% of the time ({:.0} us per batch); {} loads waiting {:.0} us in all for the log; writes \
             reported done {:.0} us after they were handed over (waiting {:.0} us for the disk thread, and their \
             reports {:.0} us for the node loop); {} messages waiting {:.0} us each for the node loop; {} requests \
             answered {:.0} us after they arrived",
            status.role,
            status.term,
            stats.steps,
            stats.inputs as f64 / stats.steps.max(1) as f64,
            stats.step_ns as f64 / 1e3 / stats.steps.max(1) as f64,
            stats.disk_batches,
            stats.entry_writes,
            per(stats.entry_writes),
            stats.entries as f64 / stats.entry_writes.max(1) as f64,
            stats.disk_ns as f64 / 1e9 / elapsed * 100.0,
            stats.disk_ns as f64 / 1e3 / stats.disk_batches.max(1) as f64,
            stats.loads,
            stats.load_wait_ns as f64 / 1e3,
            mean_us(stats.write_round_ns, stats.writes_done),
            mean_us(stats.disk_queue_ns, stats.disk_writes),
            mean_us(stats.report_wait_ns, stats.reports),
            stats.messages,
            mean_us(stats.message_wait_ns, stats.messages),
            stats.answered,
            mean_us(stats.answer_ns, stats.answered)
        );
    }
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
            let log = FsLog::open(sub.path(), &format!("n{id}"), log_options()).unwrap();
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
        let elapsed = start.elapsed().as_secs_f64();
        let (done, rate) = (count.load(Ordering::Relaxed), count.load(Ordering::Relaxed) as f64 / elapsed);
        if std::env::var_os("STATS").is_some() {
            print_stats(done, elapsed, nodes.iter().map(|node| (node.status(), node.stats())));
        }
        for node in &nodes {
            node.close().await;
        }
        rate
    })
}

/// Three-node logs (or two: `nodes`) holding `entries` 100-byte entries, all committed in
/// term 1 under node 1, in `dir`.
fn prefill(dir: &Path, nodes: u64, entries: u64) {
    let payload = [1u8; 100];
    for id in 1..=nodes {
        let mut log = FsLog::open(dir, &format!("n{id}"), log_options()).unwrap();
        let batch: Vec<(Term, Option<&[u8]>)> = (0..10_000).map(|_| (Term(1), Some(&payload[..]))).collect();
        for _ in 0..entries / 10_000 {
            log.append_batch(&batch).unwrap();
        }
        let committed = Some(Seq(entries - 1));
        log.save_hard_state(HardState { commit: committed, ..HardState::new(Term(1), Some(NodeId(1))) }).unwrap();
    }
}

/// Opens node `id` of `dir` on `network` with `nodes` as its bootstrap configuration.
fn open(dir: &Path, network: &Arc<InProcessNetwork>, id: NodeId, nodes: &[NodeId]) -> RaftNode {
    let log = FsLog::open(dir, &format!("n{id}"), log_options()).unwrap();
    RaftNode::open(Config::new(id, nodes.to_vec()), log, network.clone(), None).unwrap()
}

/// Entries per second that a new learner with an empty disk receives from a running two-node
/// cluster whose logs hold `entries` 100-byte entries (loads from the leader's log, pipelined
/// appends, the learner's writes), from `add_learner` until it holds the leader's last entry.
fn catch_up(dir: &Path, entries: u64) -> f64 {
    let sub = tempfile::tempdir_in(dir).unwrap();
    prefill(sub.path(), 2, entries);
    let network = InProcessNetwork::new();
    let two = [NodeId(1), NodeId(2)];
    let running: Vec<RaftNode> = two.iter().map(|id| open(sub.path(), &network, *id, &two)).collect();
    let leader = running[0].await_leader(Duration::from_secs(60)).expect("a leader");
    let leader = &running[(leader.0 - 1) as usize];
    let learner = open(sub.path(), &network, NodeId(3), &[NodeId(1), NodeId(2), NodeId(3)]);
    let start = Instant::now();
    leader.add_learner(NodeId(3), None).unwrap();
    let target = leader.status().seq;
    while learner.status().seq < target {
        assert!(start.elapsed() < Duration::from_secs(300), "no catch-up: {:?}", learner.status());
        std::thread::sleep(Duration::from_millis(5));
    }
    let rate = entries as f64 / start.elapsed().as_secs_f64();
    for node in running.iter().chain([&learner]) {
        node.close();
    }
    rate
}

/// Appends per second from `clients` threads through the leader of three nodes whose logs hold
/// `entries` entries, while (with `change`) a follower is replaced by a new node 4 on an empty
/// disk with `set_nodes`, measured over the change; without, over `window`. Returns the rate
/// and the time measured.
fn append_while_changing(dir: &Path, clients: usize, entries: u64, change: bool, window: Duration) -> (f64, Duration) {
    let sub = tempfile::tempdir_in(dir).unwrap();
    prefill(sub.path(), 3, entries);
    let network = InProcessNetwork::new();
    let three = [NodeId(1), NodeId(2), NodeId(3)];
    let nodes: Vec<RaftNode> = three.iter().map(|id| open(sub.path(), &network, *id, &three)).collect();
    let leader = nodes[0].await_leader(Duration::from_secs(60)).expect("a leader");
    let leader = &nodes[(leader.0 - 1) as usize];
    let replaced = three.iter().copied().find(|id| *id != leader.id()).expect("a follower");
    // The new machine is up (its log opened) before the measure starts; the replacement is what
    // is measured.
    let bootstrap = [NodeId(1), NodeId(2), NodeId(3), NodeId(4)];
    let newcomer = change.then(|| open(sub.path(), &network, NodeId(4), &bootstrap));
    let measured = appends_during(clients, leader, || match change {
        true => {
            let target: Vec<NodeId> = three.iter().copied().filter(|id| *id != replaced).chain([NodeId(4)]).collect();
            leader.set_nodes(target).expect("the replacement completes");
        }
        false => std::thread::sleep(window),
    });
    for node in nodes.iter().chain(newcomer.as_ref()) {
        node.close();
    }
    measured
}

fn main() {
    let wanted = selection();
    let temp = data_dir();
    let dir = temp.path();
    let second = Duration::from_secs(2);
    let payload = Bytes::from(vec![1u8; 100]);
    report("disk_fdatasync_4k", median3(|| fdatasync_rate(dir, Duration::from_secs(1))), "syncs/s");
    report("disk_dsync_bw_128k", median3(|| dsync_bandwidth_128k(dir, Duration::from_secs(1))), "bytes/s");
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
    // The same with the nodes removing their log prefix as it grows (every 100 batches, all but
    // the last 1,000 entries), as snapshots would, after 2,000 batches (three segments per log)
    // so that spares wait.
    let compacting = |nodes: &[RaftNode], count: &AtomicU64, _: Instant| {
        let (first, _) = nodes[0].append_batch(batch.clone()).unwrap();
        count.fetch_add(1000, Ordering::Relaxed);
        let next = first.0 + 1000;
        if next % 100_000 < 1000 {
            for node in nodes {
                // Refused on a node that has not committed that far yet: it tries again later.
                let _ = node.remove_prefix(Seq(next.saturating_sub(1001)), false);
            }
        }
    };
    if wanted("raft3_append_batch1000_compacting") {
        let value = median3(|| warmed_rate(dir, Net::InProcess, 2000, second, compacting));
        report("raft3_append_batch1000_compacting", value, "entries/s");
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
    if wanted("raft3_append_during_change") || wanted("raft3_append_no_change") {
        // Back to back in each round: the change, then as long without one.
        let mut runs = Vec::new();
        for _ in 0..3 {
            let (during, took) = append_while_changing(dir, 64, 100_000, true, Duration::ZERO);
            let (without, _) = append_while_changing(dir, 64, 100_000, false, took);
            if std::env::var_os("SAMPLES").is_some() {
                eprintln!("sample during {during:.0} without {without:.0} change {took:?}");
            }
            runs.push((during, without, took.as_secs_f64()));
        }
        let pick = |f: fn(&(f64, f64, f64)) -> f64| median(runs.iter().map(f).collect());
        report("raft3_append_during_change", pick(|r| r.0), "entries/s");
        report("raft3_append_no_change", pick(|r| r.1), "entries/s");
        report("raft3_change_seconds", pick(|r| r.2), "s");
        report("raft3_change_ratio_percent", pick(|r| 100.0 * r.0 / r.1), "percent");
    }
    if wanted("raft3_forwarded_append_seq") {
        let value = median3(|| rate(dir, Net::InProcess, second, sequential(1)));
        report("raft3_forwarded_append_seq", value, "entries/s");
    }
}
