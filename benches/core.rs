//! `cargo bench --bench core`: the core's own speed, without disks or sockets. Three cores in
//! one thread pass messages directly; storage writes become durable as soon as the inputs
//! queued before them are handled (one completion per node per pass, like a group commit).
//! Prints one JSON object per line:
//!
//! - `core_mem_seq_commits`: commits per second for one client that waits for each append;
//! - `core_mem_concurrent256`: entries per second with 256 appends always in flight.
//!
//! Each figure is the median of 5 runs of about a second each. A CPU reference (a fixed loop's
//! rate) goes to stderr, to tell a slower machine from slower code.

use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tinyraftplus::core::{Config, Input, Message, NodeId, Output, Raft, Recovered, RequestId, Time, WriteId};

struct Bench {
    nodes: Vec<Raft>,
    queue: VecDeque<(usize, Input)>,
    /// The last write each node issued and has not reported: like a driver's group commit,
    /// one completion covers every write up to it.
    unsynced: [Option<WriteId>; 3],
    out: Vec<Output>,
    now: Time,
    replies: u64,
    /// Each node's messages waiting for its writes (`Output::SendAfter`).
    held: [Vec<Message>; 3],
}

impl Bench {
    fn new() -> Bench {
        let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
        let nodes = ids
            .iter()
            .map(|id| {
                let mut config = Config::new(*id, ids.clone());
                config.seed = id.0;
                Raft::new(config, Recovered::default()).expect("valid config")
            })
            .collect();
        let mut bench = Bench {
            nodes,
            queue: VecDeque::new(),
            unsynced: [None; 3],
            out: Vec::new(),
            now: Time(0),
            replies: 0,
            held: Default::default(),
        };
        for node in 0..3 {
            bench.queue.push_back((node, Input::Tick));
        }
        bench.run();
        // Elect node 1: time out its election, then let everything settle. Time then stands
        // still, so no timer fires during the measurement.
        bench.now = bench.nodes[0].deadline().expect("followers have a deadline").0;
        bench.queue.push_back((0, Input::Tick));
        bench.run();
        assert!(bench.nodes[0].is_leader(), "node 1 is elected");
        bench.replies = 0;
        bench
    }

    /// Steps one input at a node and queues what it causes.
    fn step(&mut self, node: usize, input: Input) {
        self.out.clear();
        self.nodes[node].step_into(self.now, input, &mut self.out);
        for output in self.out.drain(..) {
            match output {
                Output::Send(message) => self.queue.push_back((message.to.0 as usize - 1, Input::Message(message))),
                Output::SendAfter { message, .. } => self.held[node].push(message),
                Output::Write { id, .. } => self.unsynced[node] = Some(id),
                Output::Reply { result, .. } => {
                    assert!(result.is_ok(), "append failed: {result:?}");
                    self.replies += 1;
                }
                Output::LoadEntries { .. }
                | Output::Apply { .. }
                | Output::Read { .. }
                | Output::TakeSnapshot { .. }
                | Output::LoadSnapshotChunk { .. }
                | Output::Restore { .. } => {
                    unreachable!("no state machine, no snapshots, and the leader keeps what followers need")
                }
                Output::Event(_) => {}
            }
        }
    }

    /// Steps queued inputs until none is left; between passes over the queue, each node's writes
    /// become durable together.
    fn run(&mut self) {
        loop {
            if self.queue.is_empty() {
                for node in 0..3 {
                    if let Some(id) = self.unsynced[node].take() {
                        // Every write of the node is durable now: what waited for them goes.
                        for message in self.held[node].drain(..) {
                            self.queue.push_back((message.to.0 as usize - 1, Input::Message(message)));
                        }
                        self.queue.push_back((node, Input::WriteDone { id }));
                    }
                }
            }
            let Some((node, input)) = self.queue.pop_front() else { return };
            self.step(node, input);
        }
    }
}

const PAYLOAD: &[u8; 100] = &[7; 100];

/// Commits per second for one client that waits for each append.
fn sequential(duration: Duration) -> f64 {
    let mut bench = Bench::new();
    let data = Bytes::from_static(PAYLOAD);
    let start = Instant::now();
    let mut request = 0;
    while start.elapsed() < duration {
        for _ in 0..1000 {
            request += 1;
            bench.step(0, Input::Append { id: RequestId(request), data: data.clone() });
            bench.run();
        }
    }
    assert_eq!(bench.replies, request, "every append was answered");
    request as f64 / start.elapsed().as_secs_f64()
}

/// Entries per second with `window` appends always in flight.
fn concurrent(duration: Duration, window: u64) -> f64 {
    let mut bench = Bench::new();
    let data = Bytes::from_static(PAYLOAD);
    let start = Instant::now();
    let mut request = 0;
    while start.elapsed() < duration {
        for _ in 0..100 {
            // Top the window up, then let the cluster answer what it can in one pass.
            while request - bench.replies < window {
                request += 1;
                bench.step(0, Input::Append { id: RequestId(request), data: data.clone() });
            }
            bench.run();
        }
    }
    bench.replies as f64 / start.elapsed().as_secs_f64()
}

/// A fixed CPU-bound loop (random numbers per second), printed to stderr next to the figures:
/// this machine is shared, and its speed drifts by a third from one hour to the next.
fn cpu_reference(duration: Duration) -> f64 {
    let mut rng = tinyraftplus::core::Rng::new(1);
    let start = Instant::now();
    let mut count = 0u64;
    let mut sink = 0u64;
    while start.elapsed() < duration {
        for _ in 0..100_000 {
            sink ^= rng.next_u64();
        }
        count += 100_000;
    }
    std::hint::black_box(sink);
    count as f64 / start.elapsed().as_secs_f64()
}

fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

fn report(name: &str, value: f64, unit: &str) {
    println!("{{\"name\": \"{name}\", \"value\": {value:.1}, \"unit\": \"{unit}\"}}");
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters by name.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let second = Duration::from_secs(1);
    eprintln!("cpu reference: {:.0} random numbers/s", cpu_reference(second));
    if wanted("core_mem_seq_commits") {
        let value = median((0..5).map(|_| sequential(second)).collect());
        report("core_mem_seq_commits", value, "commits/s");
    }
    if wanted("core_mem_concurrent256") {
        let value = median((0..5).map(|_| concurrent(second, 256)).collect());
        report("core_mem_concurrent256", value, "entries/s");
    }
}
