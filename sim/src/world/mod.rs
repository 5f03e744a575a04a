//! The simulated world: nodes (cores, disks, state machines), a network, clients and a nemesis,
//! driven by one queue of timed events. Everything random comes from one seed.

mod clients;
mod end;
mod faults;
mod io;
mod machine;
mod membership;
mod snapshots;

use crate::check::{log_matching, Checker, Violation};
use crate::disk::{Disk, Pending, Snapshot};
use crate::lincheck::{Completion, Operation};
use crate::models::{StateMachine, Workload};
use crate::quorums::{QuorumKind, Rule};
use crate::random::{Decisions, Random, Script};
use crate::simulation::Simulation;
use crate::swarm::{Options, Regime, Swarm};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use tinyraftplus::core::{
    ClientError, Config, Entry, Event, HeldMessages, Input, Membership, Message, NodeId, Output, Payload, Raft,
    RequestId, Response, Rng, Role, Seq, Stepper, Time, Write,
};

const MS: u64 = 1_000_000;
/// How long a client waits for a reply before it counts the operation as unknown.
const CLIENT_TIMEOUT: u64 = 5_000 * MS;
/// How long terms must stand still before the healed cluster counts as settled.
const STABLE: u64 = 6_000 * MS;
/// After healing, every node answers every request within this (twice the cores' request
/// timeouts: an answer may be a timeout, never silence).
const ANSWER_BOUND: u64 = 3_000 * MS;
/// After healing, the cluster's final term begins within this (a few election timeouts).
const ELECTION_BOUND: u64 = 12_000 * MS;
/// The cores' storage stall timeout (shorter than the default, so stalls happen within a run).
const STORAGE_STALL: std::time::Duration = std::time::Duration::from_secs(1);

/// What ended a run badly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A safety invariant broke.
    Safety(Violation),
    /// The cluster did not settle after the faults healed.
    Liveness(String),
}

impl Failure {
    /// The invariant's name.
    pub fn invariant(&self) -> &str {
        match self {
            Failure::Safety(violation) => violation.invariant,
            Failure::Liveness(_) => "liveness",
        }
    }

    /// What happened.
    pub fn detail(&self) -> &str {
        match self {
            Failure::Safety(violation) => &violation.detail,
            Failure::Liveness(detail) => detail,
        }
    }
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// A digest of every event: equal for equal seeds.
    pub digest: u64,
    /// Events processed.
    pub steps: u64,
    /// How the run ended.
    pub failure: Option<Failure>,
    /// The clients' history.
    pub history: Vec<Operation>,
    /// How many times each kind of fault was injected.
    pub faults: BTreeMap<&'static str, u64>,
    /// Entries known committed at the end.
    pub committed: usize,
    /// The event trace (with `Options::trace`).
    pub trace: Vec<String>,
    /// Every fault injected: when (simulated nanoseconds) and its kind, in order.
    pub fault_log: Vec<(u64, &'static str)>,
    /// The linearizability failure, when that is how the run failed: the operations that
    /// cannot be ordered (indices into `history`).
    pub linearizability: Option<crate::lincheck::Violation>,
    /// The history's check ran past `Options::check_steps` without deciding (and nothing else
    /// failed): the run is neither passed nor failed.
    pub undecided: Option<crate::lincheck::Undecided>,
    /// Every random decision of the run (with `Options::record`): replaying them reproduces it.
    pub decisions: Option<Decisions>,
}

#[derive(Clone, Debug)]
enum Ev {
    Deliver(Message),
    Tick(usize),
    DiskDone(usize, u64),
    Client(usize),
    Fault,
    Restart(usize),
    Crash(usize),
    Resume(usize),
    /// A leader elected before its own vote was durable crashes (node, incarnation).
    CrashElected(usize, u64),
    /// The stale-leader plot: node, stale leader.
    Forget(usize, usize),
    /// A node that stopped, its state machine not to be rebuilt (its snapshot files lost), gets
    /// them back from an operator and restarts (node, incarnation).
    Rebuild(usize, u64),
    Heal,
    /// A snapshot a node was asked for is durable (node, incarnation, snapshot).
    SnapshotDone(usize, u64, Box<Snapshot>),
}

struct Node {
    id: NodeId,
    raft: Option<Raft>,
    disk: Disk,
    incarnation: u64,
    /// A paused process: events for it wait until this time.
    paused_until: Option<Time>,
    /// Clock rate: local time runs `1 + ppm/1e6` times global time.
    ppm: i64,
    config: Config,
    /// When its next tick is scheduled (global time).
    tick_at: Option<Time>,
    /// The state machine (a fresh one at each start).
    machine: Box<dyn StateMachine>,
    /// The last entry the state machine applied (or a restored snapshot covers).
    applied: Option<Seq>,
    /// A durable entry that cannot be read back (a latent sector error).
    unreadable: Option<u64>,
    /// A durable entry with a flipped bit.
    flipped: Option<u64>,
    /// Whether it is part of the run: the initial nodes, and spares once a change adds them
    /// (a spare never added never starts).
    added: bool,
    /// Whether it started with a bootstrap list the founders do not share and no change has
    /// added it yet (`Swarm::early_strangers`): it must not lead.
    stranger: bool,
    /// The term of its candidacy whose write of term and own vote was stalled on purpose.
    stalled_candidacy: Option<tinyraftplus::core::Term>,
    /// Messages waiting for a write of this start to be durable (`Output::SendAfter`).
    held: HeldMessages,
    /// Without a state machine, what its user applied at each seq (the command, none for a
    /// blank or a configuration), kept across restarts: the user's own record, from which
    /// it rebuilds its state through a removed prefix (see `World::restore_log_user`).
    user_record: Vec<Option<Bytes>>,
    /// Its snapshot files, lost (its state machine keeps state): it stops at its next start
    /// once it learns the commit point, and an operator puts them back from a backup.
    lost_snapshots: Vec<Snapshot>,
}

impl Node {
    /// The entry at `seq` of the running core's log: from its memory, else read from the disk,
    /// if the log still holds it (not covered by a snapshot) with the term the core knows there
    /// (a write replacing it may be pending).
    fn log_entry(&self, seq: Seq) -> Option<Entry> {
        let raft = self.raft.as_ref()?;
        if let Some(entry) = raft.entry(seq) {
            return Some(entry.clone());
        }
        let entry = self.disk.entry(seq)?;
        (seq >= raft.first_seq() && raft.term_at(seq) == Some(entry.term)).then_some(entry)
    }
}

/// An appended request as the first node to apply it did.
struct AppliedEntry {
    /// What its state machine answered.
    response: Bytes,
    /// When (simulated nanoseconds).
    at: u64,
    /// The entry's seq.
    seq: Seq,
}

#[derive(Clone, Debug)]
struct Call {
    /// The node it went to.
    node: usize,
    /// The incarnation of that node that took it (none: the node was down or paused, and
    /// never got it).
    taken_by: Option<u64>,
    /// Index into the history.
    op: usize,
    request: RequestId,
    payload: Bytes,
    deadline: Time,
}

struct Client {
    call: Option<Call>,
    /// Nodes that let this client down (timed out or failed): tried again only when every
    /// node has.
    suspects: BTreeSet<usize>,
    issued: usize,
    /// In the settle phase: whether its final read succeeded.
    settled: bool,
}

/// One simulated run.
pub struct World {
    seed: u64,
    options: Options,
    simulation: Simulation,
    workload: Box<dyn Workload>,
    /// Each appended request as the first node to apply it did, by request id.
    applied_responses: BTreeMap<u64, AppliedEntry>,
    /// Without a state machine (`Swarm::log_only`): the reads answered, each with the commit
    /// point it names (history index, seq); their responses are folded from the committed log
    /// at the end.
    log_reads: Vec<(usize, Option<Seq>)>,
    fault_log: Vec<(u64, &'static str)>,
    linearizability: Option<crate::lincheck::Violation>,
    undecided: Option<crate::lincheck::Undecided>,
    swarm: Swarm,
    rng: Random,
    now: Time,
    events: BTreeMap<(Time, u64), Ev>,
    counter: u64,
    nodes: Vec<Node>,
    clients: Vec<Client>,
    /// Which client call each request id belongs to.
    requests: BTreeMap<RequestId, usize>,
    next_request: u64,
    history: Vec<Operation>,
    /// Beside each history entry: its payload (for appends) and whether the client was told it
    /// did not happen (such entries leave the history at the end).
    calls: Vec<(Bytes, bool)>,
    /// Blocked links: (from, to).
    blocked: BTreeSet<(NodeId, NodeId)>,
    checker: Checker,
    digest: u64,
    steps: u64,
    faults: BTreeMap<&'static str, u64>,
    settling: bool,
    /// When the faults healed.
    healed_at: Option<Time>,
    /// When the last effect of a fault that outlasts healing ends: a write slowed by a disk
    /// stall completes, a node paused before healing handles the events it put off. The bounds
    /// after healing count from here if it is later.
    lagging_until: Time,
    /// The node left cut off (it can send, not receive) while the others settle.
    isolated: Option<usize>,
    /// The (leader, term) pairs whose first commit was seen.
    first_commits: BTreeSet<(NodeId, tinyraftplus::core::Term)>,
    /// Leader transfers asked for, with the term of the leader asked.
    transfers: BTreeMap<RequestId, tinyraftplus::core::Term>,
    /// Membership changes asked for, with the quorum rule of the configuration asked for.
    changes: BTreeMap<RequestId, Rule>,
    /// An operator's requests: a snapshot (none) or a prefix removal.
    operator: BTreeMap<RequestId, Option<snapshots::Removal>>,
    /// The highest seq each node acknowledged to each leader in its term: (leader, term, node).
    acks: BTreeMap<(NodeId, tinyraftplus::core::Term, NodeId), Seq>,
    /// The highest term any node reached, and when.
    max_term: (tinyraftplus::core::Term, Time),
    trace: Vec<String>,
    out: Vec<Output>,
    /// The bytes of every snapshot taken, by last entry and digest.
    snapshot_bytes: BTreeMap<(tinyraftplus::core::LogId, u64), Bytes>,
}

fn mix(hash: u64, value: u64) -> u64 {
    (hash ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
}

impl World {
    /// A world for `seed`.
    pub fn new(seed: u64, options: Options, simulation: Simulation, script: Script) -> World {
        let mut rng = Random::scripted(seed, script, options.record);
        let mut swarm = Swarm::draw(&mut rng);
        swarm.draw_snapshots(&mut Rng::new(seed ^ 0x5a9_5a9_5a9));
        swarm.draw_targeted(&mut Rng::new(seed ^ 0x7a2_9e7_ed0));
        swarm.draw_changes(&mut Rng::new(seed ^ 0xc4a_29e_5e7));
        swarm.quorum = QuorumKind::draw(&mut Rng::new(seed ^ 0x9e0_4a7_51e), options.nodes);
        let stateless = simulation.machine().keeps_no_state();
        if simulation.machine().snapshot().is_none() {
            swarm.disable("snapshot"); // This state machine takes no snapshots.
            swarm.disable("operator");
        }
        for class in &options.disabled {
            swarm.disable(class);
        }
        if !swarm.quorum.changes_membership() {
            swarm.disable("membership"); // The core refuses changes under this rule.
        }
        if swarm.membership == 0.0 {
            swarm.disable("change_steps"); // No changes asked for.
            swarm.disable("change_timeout");
        }
        if swarm.log_only {
            swarm.disable("snapshot"); // Without a state machine there is nothing to snapshot.
        }
        let ids: Vec<NodeId> = (1..=options.nodes as u64).map(NodeId).collect();
        let spares = if swarm.membership > 0.0 || swarm.early_strangers { membership::SPARES } else { 0 };
        let slots: Vec<NodeId> = (1..=(options.nodes + spares) as u64).map(NodeId).collect();
        let priority: Vec<(NodeId, u32)> = match swarm.priority {
            true => ids.iter().map(|id| (*id, rng.below(4) as u32)).collect(),
            false => Vec::new(),
        };
        let nodes = slots
            .iter()
            .map(|id| {
                let founder = ids.contains(id);
                let stranger = !founder && swarm.early_strangers;
                let added = founder || stranger;
                let bootstrap = match (founder, stranger) {
                    (true, _) => ids.clone(),
                    (false, true) => slots.clone(),
                    (false, false) => vec![*id],
                };
                let mut config = Config::new(*id, bootstrap);
                config.seed = rng.next_u64();
                config.state_machine = !swarm.log_only;
                config.stateless_machine = config.state_machine && stateless;
                #[cfg(feature = "mutants")]
                {
                    config.mutant = options.mutant;
                }
                config.rpc_entries_max = swarm.rpc_entries_max;
                config.memory_entries_max = swarm.memory_entries_max;
                config.pre_vote = swarm.pre_vote;
                config.check_quorum = swarm.check_quorum;
                if founder {
                    config.quorum = swarm.quorum.core();
                }
                config.storage_stall_timeout = Some(STORAGE_STALL);
                config.change_timeout = std::time::Duration::from_nanos(swarm.change_timeout_ns);
                config.snapshot_entries = swarm.snapshot_entries;
                config.snapshot_keep_entries = swarm.snapshot_keep;
                config.snapshot_chunks_inflight = swarm.snapshot_chunks_inflight;
                config.snapshot_chunk_interval = std::time::Duration::from_nanos(swarm.snapshot_interval_ns);
                config.priority = priority.iter().copied().filter(|(node, _)| founder || node == id).collect();
                let ppm = match swarm.skew_ppm {
                    0 => 0,
                    skew => rng.below(2 * skew + 1) as i64 - skew as i64,
                };
                Node {
                    id: *id,
                    raft: None,
                    disk: faults::new_disk(&options),
                    incarnation: 0,
                    paused_until: None,
                    ppm,
                    config,
                    tick_at: None,
                    machine: simulation.machine(),
                    applied: None,
                    unreadable: None,
                    flipped: None,
                    added,
                    stranger,
                    stalled_candidacy: None,
                    held: HeldMessages::default(),
                    user_record: Vec::new(),
                    lost_snapshots: Vec::new(),
                }
            })
            .collect();
        // Counted with the faults, so that a sweep's report shows how many seeds drew each rule.
        let rule = match &swarm.quorum {
            QuorumKind::Majority => None,
            QuorumKind::Groups(_) => Some("quorum_groups"),
            QuorumKind::Count(_) => Some("quorum_count"),
            QuorumKind::Weighted(_) => Some("quorum_custom"),
        };
        let swarm_strangers = swarm.early_strangers.then_some("early_strangers");
        let log_only = swarm.log_only.then_some("log_only");
        let small_memory = (swarm.memory_entries_max < crate::swarm::MEMORY_ENTRIES_DEFAULT).then_some("small_memory");
        let change_steps = swarm.change_steps.then_some("change_steps");
        let short_changes =
            (swarm.change_timeout_ns < crate::swarm::CHANGE_TIMEOUT_DEFAULT).then_some("change_timeout_short");
        let clients = (0..options.clients)
            .map(|_| Client { call: None, suspects: BTreeSet::new(), issued: 0, settled: false })
            .collect();
        let groups = match &swarm.quorum {
            QuorumKind::Groups(groups) => groups.clone(),
            _ => Vec::new(),
        };
        let initial = Membership::with_groups(ids.clone(), [], groups);
        let initial = initial.expect("the founders and their groups form a membership");
        World {
            seed,
            options,
            workload: simulation.workload(),
            simulation,
            applied_responses: BTreeMap::new(),
            log_reads: Vec::new(),
            fault_log: Vec::new(),
            linearizability: None,
            undecided: None,
            swarm,
            rng,
            now: Time(0),
            events: BTreeMap::new(),
            counter: 0,
            nodes,
            clients,
            requests: BTreeMap::new(),
            next_request: 1,
            history: Vec::new(),
            calls: Vec::new(),
            blocked: BTreeSet::new(),
            checker: {
                let mut checker = Checker::default();
                checker.initial_configuration(initial);
                checker
            },
            digest: seed,
            steps: 0,
            faults: rule
                .into_iter()
                .chain(swarm_strangers)
                .chain(log_only)
                .chain(small_memory)
                .chain(change_steps)
                .chain(short_changes)
                .map(|kind| (kind, 1))
                .collect(),
            settling: false,
            healed_at: None,
            lagging_until: Time(0),
            isolated: None,
            first_commits: BTreeSet::new(),
            transfers: BTreeMap::new(),
            changes: BTreeMap::new(),
            operator: BTreeMap::new(),
            acks: BTreeMap::new(),
            max_term: (tinyraftplus::core::Term(0), Time(0)),
            trace: Vec::new(),
            out: Vec::new(),
            snapshot_bytes: BTreeMap::new(),
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.chance(p)
    }

    fn schedule(&mut self, at: Time, event: Ev) {
        self.counter += 1;
        self.events.insert((at, self.counter), event);
    }

    fn note(&mut self, line: impl FnOnce() -> String) {
        if self.options.trace {
            let text = line();
            self.trace.push(format!("{:>10.3}ms {text}", self.now.0 as f64 / MS as f64));
        }
    }

    fn fault(&mut self, kind: &'static str) {
        *self.faults.entry(kind).or_default() += 1;
        self.fault_log.push((self.now.0, kind));
        self.digest = mix(self.digest, kind.len() as u64 ^ self.now.0);
    }

    /// Local time on node `n` at global time `t`.
    fn local(&self, n: usize, t: Time) -> Time {
        let ppm = self.nodes[n].ppm;
        Time((t.0 as i128 + t.0 as i128 * ppm as i128 / 1_000_000) as u64)
    }

    /// The global time at which node `n`'s clock reads `local` (rounded up).
    fn global(&self, n: usize, local: Time) -> Time {
        let ppm = self.nodes[n].ppm as i128;
        let t = (local.0 as i128 * 1_000_000 + (1_000_000 + ppm) - 1) / (1_000_000 + ppm);
        Time(t as u64)
    }

    /// Runs to the end; returns how it went.
    pub fn run(mut self) -> Outcome {
        let failure = self.run_inner().err();
        Outcome {
            seed: self.seed,
            digest: self.digest,
            steps: self.steps,
            failure,
            history: self.final_history(),
            faults: self.faults,
            committed: self.checker.committed(),
            trace: self.trace,
            fault_log: self.fault_log,
            linearizability: self.linearizability,
            undecided: self.undecided,
            decisions: self.rng.recorded(),
        }
    }

    fn run_inner(&mut self) -> Result<(), Failure> {
        self.rng.setup_done();
        for n in 0..self.nodes.len() {
            if self.nodes[n].added {
                self.start(n).map_err(Failure::Safety)?;
            }
        }
        for c in 0..self.clients.len() {
            let at = Time(self.rng.below(100 * MS));
            self.schedule(at, Ev::Client(c));
        }
        let first_fault = Time(self.rng.below(self.swarm.fault_every_ns * 2));
        self.schedule(first_fault, Ev::Fault);
        let heal_at = Time(self.options.fault_ms * MS);
        self.schedule(heal_at, Ev::Heal);
        let settle = self.options.settle_ms * MS;
        while let Some(((at, _), event)) = self.events.pop_first() {
            // The time to settle counts from healing, or from the end of a fault's effect that
            // outlasts it (a paused node's put-off disk completion: see `healed`).
            if at > self.healed().unwrap_or(heal_at).plus(settle) {
                break;
            }
            self.now = at;
            self.steps += 1;
            self.digest = mix(self.digest, at.0);
            self.handle(event).map_err(|violation| match violation.invariant {
                "answer_bound" => Failure::Liveness(violation.detail),
                _ => Failure::Safety(violation),
            })?;
            if self.settling && self.settled() {
                return self.finish();
            }
        }
        if self.options.regime == Regime::Recoverable && !self.quorum_stranded() {
            return Err(Failure::Liveness(self.unsettled()));
        }
        if self.options.regime == Regime::Recoverable {
            self.fault("quorum_stranded");
            self.note(|| "the stranded voters leave no quorum: the cluster cannot settle (not checked)".into());
        }
        self.finish_safety()
    }

    fn handle(&mut self, event: Ev) -> Result<(), Violation> {
        let node_of = |event: &Ev| match event {
            Ev::Deliver(message) => Some(message.to.0 as usize - 1),
            Ev::Tick(n) | Ev::DiskDone(n, _) => Some(*n),
            _ => None,
        };
        if let Some(n) = node_of(&event) {
            if let Some(until) = self.nodes[n].paused_until.filter(|until| *until > self.now) {
                // A paused process handles nothing; it finds the event when it wakes.
                self.schedule(until, event);
                return Ok(());
            }
        }
        match event {
            Ev::Deliver(message) => {
                let n = message.to.0 as usize - 1;
                let mut messages = vec![message];
                if self.chance(self.swarm.batch) {
                    messages.extend(self.take_deliveries(messages[0].to, self.now.plus(2 * MS)));
                }
                let mut inputs = Vec::new();
                for message in messages {
                    self.digest = mix(self.digest, message.from.0 << 8 | message.to.0 | message.term.0 << 16);
                    self.note(|| format!("n{}: recv {message}", message.to));
                    inputs.push(Input::Message(message));
                }
                if self.nodes[n].raft.is_some() {
                    self.step_many(n, inputs)?;
                }
                Ok(())
            }
            Ev::Tick(n) => {
                if self.nodes[n].tick_at == Some(self.now) {
                    self.nodes[n].tick_at = None;
                    self.step(n, Input::Tick)?;
                }
                Ok(())
            }
            Ev::DiskDone(n, incarnation) => self.disk_done(n, incarnation),
            Ev::Client(c) => self.client(c),
            Ev::Fault => self.nemesis(),
            Ev::Restart(n) => self.start(n),
            Ev::Crash(n) => {
                if !self.settling && self.room_for_crash() && self.nodes[n].raft.is_some() {
                    self.fault("leader_crash_after_election");
                    self.crash(n);
                    // It may have been the only node of its quorum to lose data: the newest
                    // term's leader forgetting that term is what a catching-up node must survive.
                    self.maybe_lose_data(n);
                    let later = self.now.plus(self.rng.below(2 * self.swarm.fault_every_ns) + MS);
                    self.schedule(later, Ev::Restart(n));
                }
                Ok(())
            }
            Ev::CrashElected(n, incarnation) => {
                let running = self.nodes[n].raft.is_some() && self.nodes[n].incarnation == incarnation;
                if running && !self.settling && self.room_for_crash() {
                    self.fault("crash_before_own_vote_durable");
                    self.crash(n);
                    let later = self.now.plus(self.rng.below(2 * self.swarm.fault_every_ns) + MS);
                    self.schedule(later, Ev::Restart(n));
                }
                Ok(())
            }
            Ev::Rebuild(n, incarnation) => {
                if self.nodes[n].raft.is_some() && self.nodes[n].incarnation == incarnation {
                    self.crash(n);
                    self.restore_snapshot_files(n);
                    let later = self.now.plus(100 * MS + self.rng.below(1_000 * MS));
                    self.schedule(later, Ev::Restart(n));
                }
                Ok(())
            }
            Ev::Resume(n) => {
                self.nodes[n].paused_until = None;
                Ok(())
            }
            Ev::Forget(n, stale) => self.forget(n, stale),
            Ev::Heal => self.heal(),
            Ev::SnapshotDone(n, incarnation, snapshot) => self.snapshot_done(n, incarnation, *snapshot),
        }
    }

    /// Starts (or restarts) node `n` from what its disk holds.
    fn start(&mut self, n: usize) -> Result<(), Violation> {
        if self.nodes[n].raft.is_some() || !self.nodes[n].added {
            return Ok(()); // Running, or a spare no change has added.
        }
        if let Some(seq) = self.nodes[n].unreadable.take() {
            let id = self.nodes[n].id;
            if self.read_error_as_end_of_log() {
                self.nodes[n].disk.lose_from(seq);
            } else {
                // The repair: the log is cut before the unreadable entry (what it knew committed
                // after it is kept as evidence) and the node rejoins catching up; its peers
                // send it the rest.
                let evidence = self.nodes[n].disk.repair_keeping(seq);
                let kept = evidence.len();
                self.checker.repaired(id, evidence);
                self.note(|| {
                    format!("n{id}: read error at seq {seq}: repaired from it, {kept} entries kept as evidence")
                });
            }
        }
        if self.nodes[n].disk.is_empty() && self.nodes[n].disk.hard_state().catching_up && !self.nodes[n].stranger {
            // A machine that lost its disk comes back with the voters of the committed
            // configuration as its bootstrap one (what an operator gives it; with the founders'
            // list it could think itself alone, in a cluster grown from one node; with learners
            // that never came up among them, it could wait for their answers forever).
            // Before an entry commits a configuration (always, under a count or a custom rule,
            // which no entry carries), the founders are the members, with the seed's groups: a
            // founder's first start comes here too. An early stranger comes back with the list
            // it had.
            let target = self.checker.committed_configuration().map(|c| c.target().clone());
            let (mut members, mut groups) = match (target, &self.swarm.quorum) {
                (Some(target), _) => (target.voters().to_vec(), target.groups().to_vec()),
                (None, kind) => {
                    let founders: Vec<NodeId> = (1..=self.options.nodes as u64).map(NodeId).collect();
                    let groups = if let QuorumKind::Groups(groups) = kind { groups.clone() } else { Vec::new() };
                    (founders, groups)
                }
            };
            let id = self.nodes[n].id;
            if !members.contains(&id) {
                members.push(id);
                if let Some(group) = groups.first_mut() {
                    group.push(id); // Not a voter: until it catches up, any group does.
                }
            }
            self.nodes[n].config.nodes = members;
            if self.swarm.quorum.changes_membership() {
                self.nodes[n].config.quorum = match groups.is_empty() {
                    true => tinyraftplus::core::Quorum::Majority,
                    false => tinyraftplus::core::Quorum::Groups(groups),
                };
            }
        }
        let node = &mut self.nodes[n];
        let recovered = match node.disk.recover(node.config.memory_entries_max) {
            Ok(recovered) => recovered,
            Err(corruption) if node.flipped == Some(corruption.seq) => {
                // Found and named, as it must be; the repair cuts the log before it.
                let id = node.id;
                node.flipped = None;
                let evidence = node.disk.repair_keeping(corruption.seq);
                let kept = evidence.len();
                self.checker.repaired(id, evidence);
                self.note(|| {
                    format!(
                        "n{id}: {corruption}: repaired from seq {}, {kept} entries kept as evidence",
                        corruption.seq
                    )
                });
                return self.start(n);
            }
            Err(corruption) => {
                return Err(Violation {
                    invariant: "recovery",
                    detail: format!("{} cannot open: {corruption}", node.id),
                });
            }
        };
        node.incarnation += 1;
        // A new core numbers its writes anew.
        node.held = HeldMessages::default();
        node.machine = self.simulation.machine();
        node.applied = None;
        if node.incarnation > 1 {
            // The driver's contract: a fresh seed at each start (forwarded requests are
            // deduplicated per start by an incarnation drawn from it).
            node.config.seed = self.rng.next_u64();
        }
        let raft = Raft::new(node.config.clone(), recovered)
            .map_err(|e| Violation { invariant: "recovery", detail: format!("{} cannot start: {e:?}", node.id) })?;
        node.raft = Some(raft);
        let id = node.id;
        let applied_from = self.restore_log_user(n)?;
        self.checker.restarted(id, applied_from);
        self.note(|| format!("n{id}: start"));
        self.step(n, Input::Tick)
    }

    /// A crash: the core and its memory are gone; unsynced writes are lost or torn.
    fn crash(&mut self, n: usize) {
        let torn = self.chance(self.swarm.torn).then(|| (self.rng.next_u64() % 1000) as f64 / 1000.0);
        let node = &mut self.nodes[n];
        node.raft = None;
        node.tick_at = None;
        node.paused_until = None;
        node.held = HeldMessages::default(); // Never sent: their writes are not durable.
        node.disk.crash(torn);
        let id = node.id;
        self.note(|| format!("n{id}: crash"));
        if self.chance(self.swarm.lost_outbox) {
            // What it had sent was still in its socket buffers: gone with it.
            let before = self.events.len();
            self.events.retain(|_, event| !matches!(event, Ev::Deliver(m) if m.from == id));
            if self.events.len() < before {
                self.fault("crash_lost_outbox");
            }
        }
    }

    /// The messages to `to` due by `horizon`, taken out of the queue (in their order).
    fn take_deliveries(&mut self, to: NodeId, horizon: Time) -> Vec<Message> {
        let due: Vec<(Time, u64)> = self
            .events
            .range(..(horizon, u64::MAX))
            .filter(|(_, event)| matches!(event, Ev::Deliver(m) if m.to == to))
            .map(|(key, _)| *key)
            .collect();
        let taken = due.into_iter().filter_map(|key| match self.events.remove(&key) {
            Some(Ev::Deliver(message)) => Some(message),
            _ => None,
        });
        taken.collect()
    }

    /// Steps node `n`, then carries out its outputs (state machine, loads and reads at once).
    fn step(&mut self, n: usize, input: Input) -> Result<(), Violation> {
        self.step_many(n, vec![input])
    }

    /// Steps node `n` with several inputs as one step; what its outputs answer at once
    /// (applies, reads, loads) makes the next steps.
    fn step_many(&mut self, n: usize, first: Vec<Input>) -> Result<(), Violation> {
        let mut stepper = Stepper::new(first);
        let mut out = std::mem::take(&mut self.out);
        loop {
            let local = self.local(n, self.now);
            let Some(raft) = self.nodes[n].raft.as_mut() else { break };
            if !stepper.step(raft, local, &mut out) {
                break;
            }
            for output in out.drain(..) {
                self.digest = mix(self.digest, n as u64 + 1);
                if self.options.trace {
                    let id = self.nodes[n].id;
                    self.note(|| format!("n{id}: {output}"));
                }
                if let Some(next) = self.output(n, output)? {
                    stepper.push(next);
                }
            }
        }
        self.out = out;
        self.reschedule_tick(n);
        Ok(())
    }

    fn reschedule_tick(&mut self, n: usize) {
        let Some((deadline, _)) = self.nodes[n].raft.as_ref().and_then(Raft::deadline) else { return };
        let at = self.global(n, deadline).max(self.now);
        if self.nodes[n].tick_at.is_none_or(|t| at < t || t < self.now) {
            self.nodes[n].tick_at = Some(at);
            self.schedule(at, Ev::Tick(n));
        }
    }

    fn output(&mut self, n: usize, output: Output) -> Result<Option<Input>, Violation> {
        let id = self.nodes[n].id;
        match output {
            Output::Send(message) => {
                self.check_message(n, &message)?;
                self.send(message);
                Ok(None)
            }
            Output::SendAfter { write, message } => {
                let Some(message) = self.nodes[n].held.hold(write, message) else { return Ok(None) };
                self.check_message(n, &message)?;
                self.send(message);
                Ok(None)
            }
            Output::Write { id: write_id, write } => {
                if let Write::InstallSnapshot { snapshot } = &write {
                    let applied = self.nodes[n].applied;
                    if applied > Some(snapshot.last.seq) {
                        return Err(Violation {
                            invariant: "snapshot_rollback",
                            detail: format!(
                                "{id} installs {snapshot} after applying up to {}",
                                applied.unwrap_or(Seq(0))
                            ),
                        });
                    }
                }
                if let Write::Truncate { from } = &write {
                    let role = self.nodes[n].raft.as_ref().map_or(Role::Follower, Raft::role);
                    self.checker.truncate(id, role, *from)?;
                }
                if let (Write::Entries(entries), true) =
                    (&write, self.nodes[n].raft.as_ref().is_some_and(Raft::is_leader))
                {
                    self.check_config_proposal(n, entries)?;
                }
                self.write(n, write_id, write);
                Ok(None)
            }
            Output::LoadEntries { from, to } => {
                if !self.settling && self.chance(self.swarm.read_error) {
                    self.fault("read_error");
                    return Ok(Some(Input::LoadFailed { error: "latent sector error".into() }));
                }
                let disk = &self.nodes[n].disk;
                let entries: Option<Vec<Entry>> = (from.0..=to.0).map(|s| disk.entry(Seq(s))).collect();
                Ok(Some(match entries {
                    Some(entries) => Input::EntriesLoaded { entries },
                    None => Input::LoadFailed { error: "not on disk".into() },
                }))
            }
            Output::Apply { entries } => self.apply(n, entries).map(Some),
            Output::TakeSnapshot { last, configuration } => self.take_snapshot(n, last, configuration).map(|_| None),
            Output::LoadSnapshotChunk { to, snapshot, offset } => {
                Ok(Some(self.load_snapshot_chunk(n, to, snapshot, offset)))
            }
            Output::Restore { snapshot } => self.restore(n, snapshot).map(Some),
            Output::Read { id: read, seq, command } => self.read(n, read, seq, &command).map(Some),
            Output::Reply { id: request, result } => {
                if self.changes.contains_key(&request) {
                    return self.changed(n, request, &result).map(|_| None);
                }
                if let Some(removal) = self.operator.remove(&request) {
                    return self.operator_answered(n, removal, &result).map(|_| None);
                }
                if let Some(term) = self.transfers.remove(&request) {
                    if let Ok(Response::Transferred { to }) = result {
                        self.checker.transferred(to, term)?;
                        self.check_transferred_to_voter(n, to)?;
                    }
                    return Ok(None);
                }
                self.reply(request, result)?;
                Ok(None)
            }
            Output::Event(Event::Change { term, role, .. }) => {
                // A node a change removed may campaign on its own (nobody answers it): its
                // terms do not keep the cluster from settling.
                if term > self.max_term.0 && self.current_members().contains(&id) {
                    self.max_term = (term, self.now);
                }
                if role == Role::Leader {
                    let raft = self.nodes[n].raft.as_ref().expect("stepping");
                    if self.nodes[n].stranger {
                        let detail = format!(
                            "{id}, started with the list {:?} and never added, leads term {term}",
                            self.nodes[n].config.nodes
                        );
                        return Err(Violation { invariant: "stranger_leads", detail });
                    }
                    let elected = self.checker.leader(id, term, raft)?;
                    let stalled = self.nodes[n].stalled_candidacy.take() == Some(term);
                    let pending = |p: &Pending| matches!(&p.write, Write::HardState(state) if state.term == term);
                    if stalled && self.nodes[n].disk.pending.iter().any(pending) {
                        // Right after this step, before the write is durable.
                        let incarnation = self.nodes[n].incarnation;
                        self.schedule(self.now, Ev::CrashElected(n, incarnation));
                    }
                    if elected && !self.checker.is_forced() {
                        self.check_vote_quorum(n)?;
                    }
                    if elected && self.chance(self.swarm.leader_crash) {
                        let soon = self.now.plus(self.rng.below(4 * MS));
                        self.schedule(soon, Ev::Crash(n));
                    }
                }
                Ok(None)
            }
            Output::Event(Event::Commit(seq)) => {
                let raft = self.nodes[n].raft.as_ref().expect("stepping");
                let first_as_leader = raft.is_leader() && self.first_commits.insert((id, raft.term()));
                self.checker.commit(id, seq, raft, |seq| self.nodes[n].log_entry(seq))?;
                if raft.is_leader() {
                    self.check_commit_quorum(n, seq)?;
                }
                if first_as_leader && self.chance(self.swarm.leader_crash) {
                    // A leader lost right after its first commit: the moment Figure 8 is about.
                    let soon = self.now.plus(self.rng.below(2 * MS));
                    self.schedule(soon, Ev::Crash(n));
                }
                Ok(None)
            }
            Output::Event(Event::Apply(seq)) if self.swarm.log_only => self.apply_log(n, seq).map(|_| None),
            Output::Event(Event::Apply(seq)) if Some(seq) > self.nodes[n].applied => {
                // Past what its machine applied or restored: a stateless machine starting at
                // its log's first entry, no snapshot covering those before it.
                let node = &mut self.nodes[n];
                let (before_first, commit) =
                    node.raft.as_ref().map_or((None, None), |raft| (raft.first_seq().prev(), raft.commit()));
                if !node.config.stateless_machine || before_first != Some(seq) || Some(seq) > commit {
                    let detail =
                        format!("{id} reports {seq} applied (commit {commit:?}), its machine at {:?}", node.applied);
                    return Err(Violation { invariant: "apply_in_order", detail });
                }
                node.applied = Some(seq);
                self.checker.restored(id, seq)?;
                Ok(None)
            }
            Output::Event(Event::Error(why)) if why.contains("cannot be rebuilt") => {
                if self.nodes[n].lost_snapshots.is_empty() {
                    let detail = format!("{id} stopped, its state machine not to be rebuilt: {why}");
                    return Err(Violation { invariant: "state_machine", detail });
                }
                let incarnation = self.nodes[n].incarnation;
                self.schedule(self.now, Ev::Rebuild(n, incarnation));
                Ok(None)
            }
            Output::Event(_) => Ok(None),
        }
    }

    /// When the bounds after healing start: healing, or the end of a fault's effect that outlasts
    /// it (see `lagging_until`).
    fn healed(&self) -> Option<Time> {
        self.healed_at.map(|healed| healed.max(self.lagging_until))
    }
}
