//! An in-memory cluster for tests, examples and benchmarks: cores with in-memory storage, a
//! message queue you deliver from by hand (or all at once), and a counting state machine.
//!
//! Nothing here is durable or timed: writes become durable when you call [`Cluster::sync`],
//! messages arrive when you call [`Cluster::deliver`], time moves when you say. That makes
//! every interleaving reproducible, which is what the scenario and property tests need.

use crate::core::{
    ClientError, Config, Entry, Event, HardState, HeldMessages, Input, LogId, Message, NodeId, Output, Payload, Raft,
    RequestId, Response, Seq, SnapshotMeta, Stepper, Time, Write, WriteId,
};
use crate::log::{LogStore, MemLog};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The seed README's counting state machine: each non-blank entry adds one and answers the new
/// count; a read answers the count.
#[derive(Clone, Debug, Default)]
pub struct Counter {
    /// The count so far.
    pub count: u64,
    /// Every entry applied, in order (for safety checks).
    pub applied: Vec<Entry>,
}

/// The size of the chunks a node's snapshots are read in: tiny, so that even the counter's
/// few bytes take several messages.
pub const SNAPSHOT_CHUNK_BYTES: usize = 2;

impl Counter {
    /// The counter's snapshot: `count=N`.
    pub fn snapshot(&self) -> Bytes {
        Bytes::from(format!("count={}", self.count))
    }

    /// The counter a snapshot holds.
    pub fn restore(snapshot: &[u8]) -> Option<Counter> {
        let count = std::str::from_utf8(snapshot).ok()?.strip_prefix("count=")?.parse().ok()?;
        Some(Counter { count, applied: Vec::new() })
    }

    fn apply(&mut self, entry: &Entry) -> Bytes {
        self.applied.push(entry.clone());
        match entry.payload {
            Payload::Blank | Payload::Config(_) => Bytes::new(),
            Payload::Data(_) => {
                self.count += 1;
                Bytes::from(self.count.to_string())
            }
        }
    }
}

/// One node of the cluster.
#[derive(Debug)]
pub struct Node {
    /// The core; `None` while crashed.
    pub raft: Option<Raft>,
    /// What is durable.
    pub storage: MemLog,
    /// Writes issued but not yet durable, in order.
    pub unsynced: VecDeque<(WriteId, Write)>,
    /// Messages waiting for a write to be durable ([`Output::SendAfter`]).
    pub held: HeldMessages,
    /// The state machine (rebuilt from scratch on restart).
    pub state: Counter,
    /// Replies to this node's clients, in order.
    pub replies: Vec<(RequestId, Result<Response, ClientError>)>,
    /// Events, in order.
    pub events: Vec<Event>,
    /// Whether loading entries from its storage fails (an unreadable sector).
    pub unreadable: bool,
    config: Config,
    restarts: u64,
    /// Evidence a repair kept, handed to the core at the next restart (see `repair`).
    evidence: Vec<(LogId, u64)>,
    /// Durable snapshots with their bytes, oldest first (the latest two are kept).
    pub snapshots: Vec<(SnapshotMeta, Bytes)>,
    /// The snapshot being received and its durable bytes.
    pub partial: Option<(SnapshotMeta, Vec<u8>)>,
}

impl Node {
    /// A node on empty memory storage (`fresh`: catching up, as a new directory opens).
    fn open(config: Config, fresh: bool) -> Node {
        let mut storage = MemLog::default();
        set_catching_up(&mut storage, fresh);
        let recovered = storage.recovered(usize::MAX).expect("memory always recovers");
        let raft = Raft::new(config.clone(), recovered).expect("test configs are valid");
        Node {
            raft: Some(raft),
            storage,
            unsynced: VecDeque::new(),
            held: HeldMessages::default(),
            state: Counter::default(),
            replies: Vec::new(),
            events: Vec::new(),
            unreadable: false,
            config,
            restarts: 0,
            evidence: Vec::new(),
            snapshots: Vec::new(),
            partial: None,
        }
    }
}

/// A cluster of cores connected by a queue of messages.
#[derive(Debug)]
pub struct Cluster {
    /// The current time.
    pub now: Time,
    /// The nodes by id.
    pub nodes: BTreeMap<NodeId, Node>,
    /// Messages sent and not yet delivered or dropped, oldest first.
    pub network: VecDeque<Message>,
    /// Links that drop messages: (from, to).
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Nodes whose storage stalls: `stabilize` leaves their writes unsynced.
    pub stalled: BTreeSet<NodeId>,
    /// Every output, as `n<id>: <output>`, while `trace` is on.
    pub transcript: Vec<String>,
    /// Whether to record the transcript.
    pub trace: bool,
    next_request: u64,
}

impl Cluster {
    /// Nodes `1..=n`, each configured by `configure` (which sees the defaults and the id),
    /// bootstrapped (not catching up, as if an operator had set them up together).
    pub fn new(n: u64, configure: impl Fn(&mut Config)) -> Cluster {
        Cluster::with_storage(n, configure, false)
    }

    /// Nodes `1..=n` on new storage, as the file log opens them: each is catching up until it
    /// has seen every peer's log empty (see `HardState::catching_up`).
    pub fn new_fresh(n: u64, configure: impl Fn(&mut Config)) -> Cluster {
        Cluster::with_storage(n, configure, true)
    }

    fn with_storage(n: u64, configure: impl Fn(&mut Config), fresh: bool) -> Cluster {
        let ids: Vec<NodeId> = (1..=n).map(NodeId).collect();
        let mut nodes = BTreeMap::new();
        for id in &ids {
            let mut config = Config::new(*id, ids.clone());
            config.seed = id.0;
            configure(&mut config);
            nodes.insert(*id, Node::open(config, fresh));
        }
        let mut cluster = Cluster {
            now: Time(0),
            nodes,
            network: VecDeque::new(),
            cut: BTreeSet::new(),
            stalled: BTreeSet::new(),
            transcript: Vec::new(),
            trace: false,
            next_request: 0,
        };
        for id in ids {
            cluster.step(id, Input::Tick); // Opens the node: its timers start now.
        }
        cluster
    }

    /// The core of node `id` (panics if it is crashed).
    pub fn raft(&self, id: NodeId) -> &Raft {
        self.nodes[&id].raft.as_ref().expect("node is running")
    }

    /// Steps node `id` with `input`, then with whatever its state machine and storage answer
    /// at once (applies, reads, loads). Writes wait for [`sync`](Cluster::sync), messages for
    /// [`deliver`](Cluster::deliver). Does nothing if the node is crashed.
    pub fn step(&mut self, id: NodeId, input: Input) {
        self.step_many(id, vec![input]);
    }

    /// Like [`step`](Cluster::step), with several inputs handled as one step
    /// ([`Raft::step_many`]).
    pub fn step_many(&mut self, id: NodeId, inputs: Vec<Input>) {
        let mut stepper = Stepper::new(inputs);
        let mut out = Vec::new();
        let mut rounds = 0u32;
        loop {
            rounds += 1;
            assert!(rounds < 1_000_000, "node {id} keeps asking for loads, applies or reads: a loop in the core");
            let node = self.nodes.get_mut(&id).expect("known node");
            let Some(raft) = node.raft.as_mut() else { return };
            if !stepper.step(raft, self.now, &mut out) {
                return;
            }
            for output in out.drain(..) {
                if self.trace {
                    self.transcript.push(format!("n{id}: {output}"));
                }
                match output {
                    Output::Send(message) => self.network.push_back(message),
                    Output::SendAfter { write, message } => self.network.extend(node.held.hold(write, message)),
                    Output::Write { id, write } => node.unsynced.push_back((id, write)),
                    Output::LoadEntries { from, to } => match node.unreadable {
                        true => stepper.push(Input::LoadFailed { error: "unreadable sector".into() }),
                        false => stepper.push(match node.storage.load(from, to) {
                            Ok(entries) => Input::EntriesLoaded { entries },
                            Err(error) => Input::LoadFailed { error: error.to_string() },
                        }),
                    },
                    Output::TakeSnapshot { last, configuration } => {
                        let bytes = node.state.snapshot();
                        let digest = xxhash_rust::xxh3::xxh3_64(&bytes);
                        let meta = SnapshotMeta { last, digest, configuration };
                        node.snapshots.push((meta.clone(), bytes));
                        let excess = node.snapshots.len().saturating_sub(2);
                        node.snapshots.drain(..excess);
                        stepper.push(Input::SnapshotTaken { meta });
                    }
                    Output::LoadSnapshotChunk { to, snapshot, offset } => {
                        stepper.push(match node.snapshots.iter().find(|(meta, _)| *meta == snapshot) {
                            Some((_, bytes)) => {
                                let start = (offset as usize).min(bytes.len());
                                let end = (start + SNAPSHOT_CHUNK_BYTES).min(bytes.len());
                                let (data, done) = (bytes.slice(start..end), end == bytes.len());
                                Input::SnapshotChunkLoaded { to, snapshot: Box::new(snapshot), offset, data, done }
                            }
                            None => Input::SnapshotLoadFailed { to, error: "no such snapshot".into() },
                        });
                    }
                    Output::Restore { snapshot } => {
                        let found = node.snapshots.iter().find(|(meta, _)| *meta == snapshot);
                        let restored = found.and_then(|(_, bytes)| Counter::restore(bytes));
                        node.state = restored.expect("a restore names a durable snapshot of the counter");
                        stepper.push(Input::Restored { last: snapshot.last });
                    }
                    Output::Apply { entries } => {
                        let first = entries[0].seq;
                        let responses = entries.iter().map(|e| node.state.apply(e)).collect();
                        stepper.push(Input::Applied { first, responses });
                    }
                    Output::Read { id, .. } => {
                        let response = Bytes::from(node.state.count.to_string());
                        stepper.push(Input::ReadDone { id, response });
                    }
                    Output::Reply { id, result } => node.replies.push((id, result)),
                    Output::Event(event) => node.events.push(event),
                }
            }
        }
    }

    /// Makes node `id`'s writes durable and reports it: the first `count` of them, or (with
    /// `None`) all of them and every write their completion releases, until none is left.
    pub fn sync(&mut self, id: NodeId, count: Option<usize>) {
        loop {
            let node = self.nodes.get_mut(&id).expect("known node");
            let limit = count.unwrap_or(node.unsynced.len()).min(node.unsynced.len());
            let mut last = None;
            for (write_id, write) in node.unsynced.drain(..limit).collect::<Vec<_>>() {
                match write {
                    Write::SnapshotChunk { snapshot, offset, data } => {
                        let partial = match (offset, node.partial.take()) {
                            (0, _) => (*snapshot, data.to_vec()),
                            (_, Some((meta, mut bytes))) if meta == *snapshot => {
                                bytes.extend_from_slice(&data);
                                (meta, bytes)
                            }
                            _ => panic!("a chunk at {offset} continues no partial snapshot"),
                        };
                        node.partial = Some(partial);
                    }
                    Write::InstallSnapshot { snapshot } => {
                        if node.snapshots.last().is_none_or(|(meta, _)| *meta != *snapshot) {
                            let (meta, bytes) = node.partial.take().expect("an install follows its chunks");
                            assert_eq!(meta, *snapshot, "the install names the partial snapshot");
                            assert_eq!(xxhash_rust::xxh3::xxh3_64(&bytes), meta.digest, "the bytes match the digest");
                            node.snapshots.push((meta, Bytes::from(bytes)));
                            let excess = node.snapshots.len().saturating_sub(2);
                            node.snapshots.drain(..excess);
                        }
                        node.storage.reset_after(snapshot.last).expect("memory storage never fails");
                    }
                    write => node.storage.apply(&write).expect("the core's writes continue the log"),
                }
                last = Some(write_id);
            }
            let Some(write_id) = last else { return };
            for (after, message) in node.held.durable(write_id) {
                if self.trace {
                    self.transcript.push(format!("n{id}: {after} durable, send {message}"));
                }
                self.network.push_back(message);
            }
            self.step(id, Input::WriteDone { id: write_id });
            if count.is_some() {
                return;
            }
        }
    }

    /// Delivers queued messages that `select` picks (in order), dropping those on cut links
    /// or to crashed nodes. Returns how many were delivered.
    pub fn deliver(&mut self, mut select: impl FnMut(&Message) -> bool) -> usize {
        let (chosen, kept): (VecDeque<Message>, VecDeque<Message>) =
            std::mem::take(&mut self.network).into_iter().partition(|m| select(m));
        self.network = kept;
        let mut delivered = 0;
        for message in chosen {
            if self.cut.contains(&(message.from, message.to)) {
                continue;
            }
            let to = message.to;
            if self.nodes.get(&to).is_some_and(|n| n.raft.is_some()) {
                delivered += 1;
                self.step(to, Input::Message(message));
            }
        }
        delivered
    }

    /// Syncs every node (but stalled ones) and delivers every message until nothing more happens (time stands).
    pub fn stabilize(&mut self) {
        loop {
            let mut busy = false;
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in ids {
                if !self.nodes[&id].unsynced.is_empty() && !self.stalled.contains(&id) {
                    self.sync(id, None);
                    busy = true;
                }
            }
            if !self.network.is_empty() {
                self.deliver(|_| true);
                busy = true;
            }
            if !busy {
                return;
            }
        }
    }

    /// Moves time to node `id`'s deadline (if later) and ticks it.
    pub fn tick(&mut self, id: NodeId) {
        if let Some((at, _)) = self.nodes[&id].raft.as_ref().and_then(Raft::deadline) {
            self.now = self.now.max(at);
        }
        self.step(id, Input::Tick);
    }

    /// Moves time forward by `nanos` and ticks every running node whose deadline passed, in id
    /// order, repeatedly until none is due.
    pub fn advance(&mut self, nanos: u64) {
        let until = self.now.plus(nanos);
        loop {
            let due = self
                .nodes
                .iter()
                .filter_map(|(id, n)| n.raft.as_ref().and_then(Raft::deadline).map(|(at, _)| (at, *id)))
                .filter(|(at, _)| *at <= until)
                .min();
            let Some((at, id)) = due else { break };
            self.now = self.now.max(at);
            self.step(id, Input::Tick);
        }
        self.now = until;
    }

    /// Elects node `id`: times it out and stabilizes.
    pub fn elect(&mut self, id: NodeId) {
        self.tick(id);
        self.stabilize();
    }

    /// A new request id, unique in this cluster.
    pub fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// A client appends `data` at node `id`; returns the request's id.
    pub fn append(&mut self, id: NodeId, data: &str) -> RequestId {
        let request = self.request_id();
        self.step(id, Input::Append { id: request, data: Bytes::copy_from_slice(data.as_bytes()) });
        request
    }

    /// A client asks node `id` for a membership change; returns the request's id.
    pub fn change(&mut self, id: NodeId, change: crate::core::MembershipChange) -> RequestId {
        let request = self.request_id();
        self.step(id, Input::ChangeMembership { id: request, change });
        request
    }

    /// Starts a new node `id` on empty storage (catching up, as a new directory opens),
    /// configured like node 1 but with `nodes` as its bootstrap configuration: a node that is
    /// to join the cluster.
    pub fn add_node(&mut self, id: NodeId, nodes: &[NodeId]) {
        let template = self.nodes.values().next().expect("a cluster has nodes").config.clone();
        let config = Config { id, nodes: nodes.to_vec(), seed: id.0, ..template };
        self.nodes.insert(id, Node::open(config, true));
        self.step(id, Input::Tick);
    }

    /// A client reads at node `id`; returns the request's id.
    pub fn read(&mut self, id: NodeId) -> RequestId {
        let request = self.request_id();
        self.step(id, Input::Read { id: request, command: Bytes::new() });
        request
    }

    /// The reply to `request` at node `id`, if it came.
    pub fn reply(&self, id: NodeId, request: RequestId) -> Option<&Result<Response, ClientError>> {
        self.nodes[&id].replies.iter().find(|(r, _)| *r == request).map(|(_, result)| result)
    }

    /// Crashes node `id`: its core and unsynced writes are lost; storage stays.
    pub fn crash(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        node.raft = None;
        node.unsynced.clear();
        node.held = HeldMessages::default();
        self.network.retain(|m| m.to != id);
    }

    /// Crashes node `id`, loses everything its storage held (a wiped disk), and restarts it on
    /// new storage, which is catching up (as the file log opens a new directory).
    pub fn wipe(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        (node.snapshots, node.partial) = (Vec::new(), None);
        self.restart_after(id, |storage| {
            *storage = MemLog::default();
            set_catching_up(storage, true);
        });
    }

    /// Crashes node `id`, cuts its storage from `from` on (a repair), marks it catching up (as
    /// the file log's `repair_from` does), and restarts it.
    pub fn cut_log(&mut self, id: NodeId, from: Seq) {
        self.restart_after(id, |storage| {
            set_catching_up(storage, true);
            storage.apply(&Write::Truncate { from }).expect("memory storage never fails");
        });
    }

    /// Crashes node `id` whose entry at `damaged` is corrupt, and restarts it repaired as
    /// `FsLog::open_repairing` does: the log is cut before the damage, the node is catching up,
    /// and the entries after the damage known committed (up to the commit hint) are kept as
    /// evidence.
    pub fn repair(&mut self, id: NodeId, damaged: Seq) {
        let node = self.nodes.get_mut(&id).expect("known node");
        let hint = node.storage.hard_state().commit;
        let kept = node.storage.entries().iter().filter(|e| e.seq > damaged && Some(e.seq) <= hint);
        node.evidence = kept.map(|e| (e.id(), e.digest())).collect();
        self.cut_log(id, damaged);
    }

    /// Crashes node `id`, cuts its storage from `from` on without marking it catching up (a
    /// disk that silently lost its last writes), and restarts it.
    pub fn lose_silently(&mut self, id: NodeId, from: Seq) {
        self.restart_after(id, |storage| storage.apply(&Write::Truncate { from }).expect("memory never fails"));
    }

    /// What an operator does to accept that entries may be lost: crashes node `id`, clears its
    /// catching-up flag and restarts it (it votes at once).
    pub fn force_rejoin(&mut self, id: NodeId) {
        self.restart_after(id, |storage| set_catching_up(storage, false));
    }

    /// Crashes node `id`, lets `change` do to its storage what a damaged disk or an operator
    /// would, and restarts it.
    fn restart_after(&mut self, id: NodeId, change: impl FnOnce(&mut MemLog)) {
        self.crash(id);
        change(&mut self.nodes.get_mut(&id).expect("known node").storage);
        self.restart(id);
    }

    /// Crashes node `id`, damages its latest snapshot (the snapshot store finds it damaged at
    /// open and falls back to the one before: here it is dropped), and restarts it.
    pub fn damage_latest_snapshot(&mut self, id: NodeId) {
        self.crash(id);
        self.nodes.get_mut(&id).expect("known node").snapshots.pop();
        self.restart(id);
    }

    /// Restarts node `id` from its storage with a fresh state machine and a new seed.
    pub fn restart(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        node.restarts += 1;
        let mut config = node.config.clone();
        config.seed = config.seed.wrapping_add(node.restarts.wrapping_mul(0x9e37_79b9));
        node.state = Counter::default();
        let mut recovered = node.storage.recovered(usize::MAX).expect("memory always recovers");
        recovered.evidence = std::mem::take(&mut node.evidence);
        recovered.snapshot = node.snapshots.last().map(|(meta, _)| meta.clone());
        recovered.partial_snapshot = node.partial.as_ref().map(|(meta, bytes)| (meta.clone(), bytes.len() as u64));
        let raft = Raft::new(config, recovered).expect("storage recovers consistently");
        node.raft = Some(raft);
        node.held = HeldMessages::default(); // A new core numbers its writes anew.
        self.step(id, Input::Tick);
    }

    /// Cuts both directions between every node of `a` and every node of `b`.
    pub fn partition(&mut self, a: &[NodeId], b: &[NodeId]) {
        for x in a {
            for y in b {
                self.cut.insert((*x, *y));
                self.cut.insert((*y, *x));
            }
        }
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// The leaders of the highest term that has one, if exactly one node leads in it.
    pub fn leader(&self) -> Option<NodeId> {
        let leaders: Vec<(crate::core::Term, NodeId)> = self
            .nodes
            .iter()
            .filter_map(|(id, n)| n.raft.as_ref().filter(|r| r.is_leader()).map(|r| (r.term(), *id)))
            .collect();
        leaders.iter().max().map(|(_, id)| *id)
    }
}

/// Sets the storage's catching-up flag, keeping its term and vote.
fn set_catching_up(storage: &mut MemLog, catching_up: bool) {
    let state = HardState { catching_up, ..storage.hard_state() };
    storage.save_hard_state(state).expect("memory storage never fails");
}

/// `size` bytes of a fixed pattern (a 64 KiB block, repeated), made as they are read: the state
/// of a state machine whose snapshots are as large as wanted and cost no memory (the snapshot
/// benchmark, the `node` example's `--blob` state).
#[derive(Debug)]
pub struct Pattern {
    left: u64,
    at: usize,
    block: Vec<u8>,
}

impl Pattern {
    /// A stream of `size` bytes.
    pub fn new(size: u64) -> Pattern {
        let block = (0..1u64 << 16).map(|i| (i.wrapping_mul(0x9E37_79B9) >> 13) as u8).collect();
        Pattern { left: size, at: 0, block }
    }
}

impl std::io::Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let count = (buf.len() as u64).min(self.left).min((self.block.len() - self.at) as u64) as usize;
        buf[..count].copy_from_slice(&self.block[self.at..self.at + count]);
        self.at = (self.at + count) % self.block.len();
        self.left -= count as u64;
        Ok(count)
    }
}
