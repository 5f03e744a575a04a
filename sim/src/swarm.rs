//! The run's parameters: options from the user, and fault probabilities drawn from the seed
//! (swarm testing: each seed stresses its own mix of faults).

use crate::quorums::QuorumKind;
use crate::random::Random;
use tinyraftplus::core::Rng;

/// Whether faults leave a quorum with a good copy of everything (then liveness is checked
/// too) or anything goes (only safety is checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    /// Faults keep a quorum intact: safety and liveness are checked.
    Recoverable,
    /// Anything goes: only safety is checked.
    Unbounded,
}

/// What a run looks like.
#[derive(Clone, Debug)]
pub struct Options {
    /// Cluster size.
    pub nodes: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Client operations to issue before healing.
    pub ops: usize,
    /// Simulated time with faults, in milliseconds; then everything heals.
    pub fault_ms: u64,
    /// How long after healing the cluster has to settle, in milliseconds (the liveness bound:
    /// 20 election timeouts by default).
    pub settle_ms: u64,
    /// The fault regime.
    pub regime: Regime,
    /// Record every event as text.
    pub trace: bool,
    /// Record every random decision (`Outcome::decisions`: for replay files and shrinking).
    pub record: bool,
    /// A planted bug in every node (to prove the checkers catch it; feature `mutants`).
    #[cfg(feature = "mutants")]
    pub mutant: Option<tinyraftplus::core::Mutant>,
    /// Fault classes turned off after the seed's mix is drawn (see [`FAULT_CLASSES`]); the
    /// shrinker turns them off one by one.
    pub disabled: Vec<&'static str>,
    /// The step budget of each key's linearizability search (see
    /// [`check_within`](crate::lincheck::check_within)): a history that runs past it is
    /// reported undecided (`Outcome::undecided`), apart from passes and failures.
    pub check_steps: usize,
}

/// The fault classes that can be turned off (`Options::disabled`), in the order they were
/// added: a new class goes at the end (see [`classes_since`]).
pub const FAULT_CLASSES: [&str; 35] = [
    "crash",
    "partition",
    "pause",
    "leader_crash",
    "loss",
    "duplicate",
    "slow",
    "fsync_fail",
    "disk_full",
    "read_error",
    "latent",
    "bit_flip",
    "lingering",
    "skew",
    "lost_outbox",
    "disk_stall",
    "wipe",
    "disk_cut",
    "segment_lost",
    "stale_leader",
    "forced_rejoin",
    "transfer",
    "priority",
    "membership",
    "snapshot",
    "candidate_stall",
    "quorum",
    "early_strangers",
    "log_only",
    "small_memory",
    "change_steps",
    "change_timeout",
    "close",
    "operator",
    "snapshots_lost",
];

/// The classes added since `class` (it included): turned off, a seed found before `class` was
/// drawn replays the run that found it. An unknown class gives none.
pub fn classes_since(class: &str) -> Vec<&'static str> {
    let from = FAULT_CLASSES.iter().position(|known| *known == class).unwrap_or(FAULT_CLASSES.len());
    FAULT_CLASSES[from..].to_vec()
}

impl Default for Options {
    fn default() -> Options {
        Options {
            nodes: 5,
            clients: 5,
            ops: 300,
            fault_ms: 40_000,
            settle_ms: 30_000,
            regime: Regime::Recoverable,
            trace: false,
            record: false,
            #[cfg(feature = "mutants")]
            mutant: None,
            disabled: Vec::new(),
            check_steps: CHECK_STEPS_DEFAULT,
        }
    }
}

/// The default `Options::check_steps`: under a second and about 150 MB of memoised states for
/// a key's search of a burst of 40 concurrent puts (measured on 2026-12-03); a correct run's
/// history is linearized in about one step per operation (see [`lincheck`](crate::lincheck)).
pub const CHECK_STEPS_DEFAULT: usize = 2_000_000;

/// The core's default `Config::memory_entries_max`: more than a run appends.
pub(crate) const MEMORY_ENTRIES_DEFAULT: usize = 1 << 13;

/// Fault probabilities and rates, drawn from the seed.
#[derive(Clone, Debug)]
pub struct Swarm {
    /// Probability a message is lost.
    pub loss: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
    /// Message latency: a base, plus up to `jitter` (reordering comes from the jitter).
    pub latency_ns: u64,
    /// The jitter.
    pub jitter_ns: u64,
    /// Probability a message is slow (ten times the jitter more).
    pub slow: f64,
    /// Mean time between faults (crashes, partitions, pauses, heals), in ns.
    pub fault_every_ns: u64,
    /// Weights of the fault kinds: crash, partition, pause, heal, restart.
    pub weights: [u64; 5],
    /// A disk write's latency: base plus up to jitter.
    pub disk_ns: u64,
    /// The jitter.
    pub disk_jitter_ns: u64,
    /// Probability that a crash tears the write in progress.
    pub torn: f64,
    /// Probability a write's fsync fails (fatal for that node until it restarts).
    pub fsync_fail: f64,
    /// Probability a write finds the disk full.
    pub disk_full: f64,
    /// Probability that loading entries from disk fails (a latent sector error).
    pub read_error: f64,
    /// How far each node's clock rate may stray from 1, in parts per million.
    pub skew_ppm: u64,
    /// Probability that a crash leaves an unreadable record in the node's log (a latent
    /// sector error found at restart: the node opens repaired, cut before it, catching up).
    pub latent: f64,
    /// Probability that a crash leaves a flipped bit in a durable record (found at restart,
    /// where recovery must name it; the node opens repaired, cut before it, catching up).
    pub bit_flip: f64,
    /// Probability that one node stays cut off (it can send, not receive) after the healing.
    pub lingering: f64,
    /// Probability that a newly elected leader crashes within milliseconds (Figure 8's timing).
    pub leader_crash: f64,
    /// Probability that a crash also loses the messages the node had sent and that had not
    /// arrived yet (unsent socket buffers).
    pub lost_outbox: f64,
    /// Probability that a disk write stalls (for half to three times the storage stall timeout).
    pub disk_stall: f64,
    /// Probability that a delivery takes along every other message for the same node due in
    /// the next 2 ms, all handled as one step (`Raft::step_many`, as the drivers do under load).
    pub batch: f64,
    /// Probability that a crash wipes the node's disk (it restarts on new storage).
    pub wipe: f64,
    /// Probability that a crash leaves the node's log cut at a random seq, as an operator's
    /// `repair_from` does (it restarts catching up).
    pub disk_cut: f64,
    /// Probability that a crash deletes or zeroes one segment of the node's log (segments of
    /// [`SEGMENT_ENTRIES`] entries here). The file log reports it as lost and
    /// `FsLog::open_repairing` keeps what comes before it: nothing, for the first segment (the
    /// log, term and vote are deleted, as a wipe), or the entries before the segment, catching up.
    pub segment_lost: f64,
    /// Probability that pausing the leader is the stale-leader plot: the leader pauses for
    /// several election timeouts, and just before it resumes another node loses its disk and
    /// restarts hearing only that leader.
    pub stale_leader: f64,
    /// Probability that a crash in the unbounded regime is the forced-rejoin plot: the node's
    /// log is damaged (repaired, keeping what it knew committed past the damage as evidence),
    /// a majority of the others lose their disks, and an operator forces them to rejoin; the
    /// leader they elect may lack committed entries, which the repaired node must refuse.
    pub forced_rejoin: f64,
    /// Probability that healing the network also asks the leader to hand leadership to a
    /// random other node (leader transfer).
    pub transfer: f64,
    /// Probability that healing the network also asks the leader for a membership change (add,
    /// remove or replace a voter; two spare nodes can join).
    pub membership: f64,
    /// Whether nodes have leader priorities (random, 0 to 3: leaders hand over to caught-up
    /// nodes of higher priority).
    pub priority: bool,
    /// Whether nodes run pre-vote (off in some seeds: the protocol under the defence is tested
    /// too).
    pub pre_vote: bool,
    /// Whether leaders step down without a quorum and followers ignore votes while they hear a
    /// leader (off in some seeds, like `pre_vote`).
    pub check_quorum: bool,
    /// The most entries per append message (small values split catch-up into many appends).
    pub rpc_entries_max: usize,
    /// Probability that a candidate's write of its new term and own vote stalls (tens to
    /// hundreds of milliseconds), and that it crashes the moment it is elected if that write is
    /// not durable by then: the moment a candidate must not count its own vote early. Drawn
    /// from its own generator (`draw_targeted`), so that seeds keep the rest of their mix.
    pub candidate_stall: f64,
    /// Snapshots: taken every this many applied entries (0: none), the log keeping this many
    /// entries below them, sent in chunks of this many bytes, this many chunks in flight, each
    /// taking this long to make durable. Drawn from their own generator (`draw_snapshots`), so
    /// that seeds keep the rest of their mix.
    pub snapshot_entries: u64,
    /// See `snapshot_entries`.
    pub snapshot_keep: u64,
    /// See `snapshot_entries`.
    pub snapshot_chunk_bytes: usize,
    /// See `snapshot_entries`.
    pub snapshot_chunks_inflight: usize,
    /// See `snapshot_entries`.
    pub snapshot_ns: u64,
    /// `Config::snapshot_chunk_interval`.
    pub snapshot_interval_ns: u64,
    /// The cluster's quorum rule (turning the class `quorum` off leaves a majority). Drawn
    /// from its own generator (`QuorumKind::draw`), so that seeds keep the rest of their mix.
    pub quorum: QuorumKind,
    /// Whether the spare nodes start with the founders, each given the founders and the spares
    /// as its bootstrap list (an operator's mistake: the grown list before the cluster first
    /// elected a leader). They must not lead, nor take the cluster for theirs, until a change
    /// adds them. Drawn from the targeted generator (`draw_targeted`).
    pub early_strangers: bool,
    /// The nodes run without a state machine (`Config::state_machine` off, the core's
    /// default): appends are answered at commit, reads with the commit point, and the world
    /// folds each node's committed log into its machine as a user of the log would. No
    /// snapshots then. Drawn from the targeted generator (`draw_targeted`).
    pub log_only: bool,
    /// How many log entries each core keeps in memory (`Config::memory_entries_max`): a few in
    /// some seeds, so that lagging followers, restarts and applying load entries from the disk
    /// (`Output::LoadEntries`, where read errors strike). Drawn from the targeted generator.
    pub memory_entries_max: usize,
    /// Whether membership changes also come as single steps (`AddLearner` of a machine that
    /// comes up, `Promote`, `Remove`), not only as whole target configurations. Drawn from its
    /// own generator (`draw_changes`), so that seeds keep the rest of their mix.
    pub change_steps: bool,
    /// `Config::change_timeout`: the core's default (60 s, longer than a run) or short, so
    /// that changes fail (a promoted learner that never catches up, a change cut off by a
    /// partition). Drawn from `draw_changes`'s generator.
    pub change_timeout_ns: u64,
    /// Probability that a crash is a graceful stop first (`Input::Close`: the node answers
    /// every request it holds `Closed`, then its process ends as in a crash). Drawn from the
    /// targeted generator.
    pub close: f64,
    /// Probability that a fault comes with an operator's request at a running node: a
    /// snapshot now, or removing the log's prefix up to a seq of its log (refused past its
    /// commit point; a quarter of them forced). With a state machine that takes snapshots, or
    /// without a state machine (a snapshot is then refused, and a forced removal strands
    /// voters). Drawn from the targeted generator.
    pub operator: f64,
    /// Probability that a crash loses the node's snapshot files (not its log) once its log's
    /// prefix went: a stateless machine (`LogOnly`) starts applying at the log's first entry;
    /// any other cannot be rebuilt, the node stops with an error event, and an operator wipes
    /// it so that it is rebuilt from the leader. Drawn from the snapshots' generator.
    pub snapshots_lost: f64,
}

const MS: u64 = 1_000_000;

/// The core's default `Config::change_timeout`.
pub(crate) const CHANGE_TIMEOUT_DEFAULT: u64 = 60_000 * MS;

/// Entries per segment of a simulated log, for the `segment_lost` fault.
pub const SEGMENT_ENTRIES: u64 = 16;

impl Swarm {
    /// Turns off a fault class.
    pub fn disable(&mut self, class: &str) {
        match class {
            "crash" => self.weights[0] = 0,
            "partition" => self.weights[1] = 0,
            "pause" => self.weights[2] = 0,
            "leader_crash" => self.leader_crash = 0.0,
            "loss" => self.loss = 0.0,
            "duplicate" => self.duplicate = 0.0,
            "slow" => self.slow = 0.0,
            "fsync_fail" => self.fsync_fail = 0.0,
            "disk_full" => self.disk_full = 0.0,
            "read_error" => self.read_error = 0.0,
            "latent" => self.latent = 0.0,
            "bit_flip" => self.bit_flip = 0.0,
            "lingering" => self.lingering = 0.0,
            "skew" => self.skew_ppm = 0,
            "lost_outbox" => self.lost_outbox = 0.0,
            "disk_stall" => self.disk_stall = 0.0,
            "wipe" => self.wipe = 0.0,
            "disk_cut" => self.disk_cut = 0.0,
            "segment_lost" => self.segment_lost = 0.0,
            "stale_leader" => self.stale_leader = 0.0,
            "forced_rejoin" => self.forced_rejoin = 0.0,
            "transfer" => self.transfer = 0.0,
            "priority" => self.priority = false,
            "membership" => self.membership = 0.0,
            "snapshot" => self.snapshot_entries = 0,
            "candidate_stall" => self.candidate_stall = 0.0,
            "quorum" => self.quorum = QuorumKind::Majority,
            "early_strangers" => self.early_strangers = false,
            "log_only" => self.log_only = false,
            "small_memory" => self.memory_entries_max = MEMORY_ENTRIES_DEFAULT,
            "change_steps" => self.change_steps = false,
            "change_timeout" => self.change_timeout_ns = CHANGE_TIMEOUT_DEFAULT,
            "close" => self.close = 0.0,
            "operator" => self.operator = 0.0,
            "snapshots_lost" => self.snapshots_lost = 0.0,
            _ => {}
        }
        if self.weights.iter().all(|w| *w == 0) {
            self.weights[3] = 1; // Only heals left: the nemesis still needs one kind.
        }
    }

    /// The mix for this seed's generator.
    pub fn draw(rng: &mut Random) -> Swarm {
        let mut pick = |choices: &[f64]| choices[rng.below(choices.len() as u64) as usize];
        let loss = pick(&[0.0, 0.0, 0.01, 0.05, 0.2]);
        let duplicate = pick(&[0.0, 0.01, 0.05]);
        let slow = pick(&[0.0, 0.01, 0.05]);
        let torn = pick(&[0.0, 0.5, 1.0]);
        let fsync_fail = pick(&[0.0, 0.0, 0.0005, 0.002]);
        let disk_full = pick(&[0.0, 0.0, 0.0005]);
        let read_error = pick(&[0.0, 0.0, 0.01]);
        let latency_ns = [MS / 10, MS, 5 * MS][rng.below(3) as usize];
        let jitter_ns = [MS / 10, 2 * MS, 20 * MS][rng.below(3) as usize];
        let fault_every_ns = [500 * MS, 2_000 * MS, 8_000 * MS][rng.below(3) as usize];
        let weights = [rng.below(4) + 1, rng.below(4), rng.below(3), rng.below(3) + 1, rng.below(3) + 1];
        let disk_ns = [MS / 20, MS / 2, 3 * MS][rng.below(3) as usize];
        let disk_jitter_ns = [MS / 20, MS, 10 * MS][rng.below(3) as usize];
        let skew_ppm = [0, 1_000, 50_000][rng.below(3) as usize];
        let latent = [0.0, 0.0, 0.3][rng.below(3) as usize];
        let bit_flip = [0.0, 0.0, 0.3][rng.below(3) as usize];
        let lingering = [0.0, 0.5][rng.below(2) as usize];
        let leader_crash = [0.0, 0.1, 0.4, 0.8][rng.below(4) as usize];
        let rpc_entries_max = [1, 3, 64, 1024][rng.below(4) as usize];
        let lost_outbox = [0.0, 0.5, 1.0][rng.below(3) as usize];
        let disk_stall = [0.0, 0.0, 0.001, 0.01][rng.below(4) as usize];
        let batch = [0.0, 0.3, 1.0][rng.below(3) as usize];
        let wipe = [0.0, 0.0, 0.2, 0.5][rng.below(4) as usize];
        let disk_cut = [0.0, 0.0, 0.2, 0.5][rng.below(4) as usize];
        let pre_vote = rng.below(4) != 0;
        let check_quorum = rng.below(4) != 0;
        let segment_lost = [0.0, 0.0, 0.2, 0.5][rng.below(4) as usize];
        let stale_leader = [0.0, 0.3, 1.0][rng.below(3) as usize];
        let forced_rejoin = [0.0, 0.1, 0.5][rng.below(3) as usize];
        let transfer = [0.0, 0.3, 1.0][rng.below(3) as usize];
        let priority = rng.below(3) == 0;
        let membership = [0.0, 0.3, 1.0][rng.below(3) as usize];
        Swarm {
            loss,
            duplicate,
            latency_ns,
            jitter_ns,
            slow,
            fault_every_ns,
            weights,
            disk_ns,
            disk_jitter_ns,
            torn,
            fsync_fail,
            disk_full,
            read_error,
            skew_ppm,
            latent,
            bit_flip,
            lingering,
            leader_crash,
            lost_outbox,
            disk_stall,
            batch,
            wipe,
            disk_cut,
            segment_lost,
            stale_leader,
            forced_rejoin,
            transfer,
            membership,
            priority,
            pre_vote,
            check_quorum,
            rpc_entries_max,
            candidate_stall: 0.0,
            snapshot_entries: 0,
            snapshot_keep: 0,
            snapshot_chunk_bytes: 1,
            snapshot_chunks_inflight: 1,
            snapshot_ns: 0,
            snapshot_interval_ns: 0,
            quorum: QuorumKind::Majority,
            early_strangers: false,
            log_only: false,
            memory_entries_max: MEMORY_ENTRIES_DEFAULT,
            change_steps: false,
            change_timeout_ns: CHANGE_TIMEOUT_DEFAULT,
            close: 0.0,
            operator: 0.0,
            snapshots_lost: 0.0,
        }
    }

    /// Draws the targeted faults' knobs from their own generator (seeded from the run's seed).
    pub fn draw_targeted(&mut self, rng: &mut Rng) {
        self.candidate_stall = [0.0, 0.0, 0.3, 1.0][rng.below(4) as usize];
        self.early_strangers = rng.below(4) == 0;
        self.log_only = rng.below(6) == 0;
        self.memory_entries_max = [MEMORY_ENTRIES_DEFAULT, MEMORY_ENTRIES_DEFAULT, 16, 3][rng.below(4) as usize];
        self.close = [0.0, 0.0, 0.5][rng.below(3) as usize];
        self.operator = [0.0, 0.0, 0.2, 0.6][rng.below(4) as usize];
    }

    /// Draws the knobs of membership changes from their own generator (seeded from the run's
    /// seed).
    pub fn draw_changes(&mut self, rng: &mut Rng) {
        self.change_steps = rng.below(2) == 0;
        self.change_timeout_ns =
            [CHANGE_TIMEOUT_DEFAULT, CHANGE_TIMEOUT_DEFAULT, 3_000 * MS, 800 * MS][rng.below(4) as usize];
    }

    /// Draws the snapshot knobs from their own generator (seeded from the run's seed).
    pub fn draw_snapshots(&mut self, rng: &mut Rng) {
        self.snapshot_entries = [0, 0, 5, 20, 80][rng.below(5) as usize];
        self.snapshot_keep = [0, 3, 30][rng.below(3) as usize];
        self.snapshot_chunk_bytes = [7, 32, 4096][rng.below(3) as usize];
        self.snapshot_chunks_inflight = [1, 2, 4][rng.below(3) as usize];
        self.snapshot_ns = [MS / 2, 5 * MS, 40 * MS][rng.below(3) as usize];
        self.snapshot_interval_ns = [0, 2 * MS, 8 * MS][rng.below(3) as usize];
        self.snapshots_lost = [0.0, 0.0, 0.0, 0.3][rng.below(4) as usize];
    }
}
