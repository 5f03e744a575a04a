//! The `Raft` state machine: its state, `step`, durability tracking and getters. The protocol's
//! parts live next door: `election.rs`, `replication.rs` and `client.rs`.

use super::client::{ClientState, LeaderRequests};
use super::config::{Config, ConfigError};
use super::io::{ClientError, Event, Input, Output, Wake, Write};
use super::log::{RaftLog, Recovered, RecoveryError};
use super::message::{Body, Message};
use super::mutant::Mutant;
use super::replication::Progress;
use super::rng::Rng;
use super::types::{HardState, LogId, NodeId, Role, Seq, Term, Time};
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::fmt;

/// Why a core could not start.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    Config(ConfigError),
    /// The recovered state is inconsistent.
    Recovered(RecoveryError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(error) => error.fmt(f),
            StartError::Recovered(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for StartError {
    /// Transparent: the message is the cause's, so the cause's own source comes next.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Config(error) => error.source(),
            StartError::Recovered(error) => error.source(),
        }
    }
}

/// What the last change event said: role, leader, term, responsive followers (bit i for
/// `peers[i]`; clusters are small, peers past 64 are not tracked in this mask).
type ChangeSnapshot = (Role, Option<NodeId>, Term, u64);

/// Something to do once a write is durable.
#[derive(Clone, Debug)]
pub(super) enum AfterWrite {
    /// Send a message that promises durability (a vote, an append acknowledgement).
    Send(Message),
    /// The candidate's vote for itself in this term is durable: count it.
    SelfVote(Term),
    /// The entries that brought a catching-up node to its leader's commit point are durable:
    /// it may vote again.
    CaughtUp(Term, Seq),
}

/// What only a leader keeps.
#[derive(Debug)]
pub(super) struct LeaderState {
    /// One per peer, in the order of `Raft::peers`.
    pub(super) progress: Vec<Progress>,
    pub(super) heartbeat_deadline: Time,
    /// The seq of the blank entry this leader appended first.
    pub(super) term_start: Seq,
    pub(super) requests: LeaderRequests,
}

/// A Raft node's protocol state: a pure, deterministic state machine.
///
/// Feed every input to [`step`](Raft::step) with the current time; carry out the outputs.
/// See the crate documentation for the driver's contract.
pub struct Raft {
    pub(super) config: Config,
    pub(super) id: NodeId,
    /// Every node, sorted.
    pub(super) nodes: Vec<NodeId>,
    /// Every node but this one, sorted.
    pub(super) peers: Vec<NodeId>,
    pub(super) rng: Rng,

    pub(super) hard_state: HardState,
    pub(super) log: RaftLog,

    pub(super) last_write: u64,
    pub(super) done_write: u64,
    /// Log writes in flight, each with where the log ends on disk once it is done.
    pub(super) pending_writes: VecDeque<(u64, Option<LogId>)>,
    pub(super) pending_truncates: VecDeque<(u64, Seq)>,
    /// The seq after the last entry the writes issued so far leave in storage: where the next
    /// entries write must start (checked in debug builds).
    issued_end: u64,
    pub(super) after_write: VecDeque<(u64, AfterWrite)>,
    pub(super) durable_last: Option<LogId>,
    /// Since when the oldest write in flight is owed (issued, or the one before it completed).
    owed_since: Option<Time>,
    /// Whether that write outlasted `storage_stall_timeout` (and the error event was raised).
    pub(super) stalled: bool,
    /// The hard state changed in memory and its write is not issued yet (coalesces a term
    /// change and a vote in one step into one write).
    hard_state_dirty: bool,
    /// Entries from this seq to the end of the log are in memory but no write carries them yet:
    /// they go out as one write when no write is in flight (group commit in the core).
    pub(super) unwritten_from: Option<Seq>,
    /// Actions waiting for the unwritten entries: bound to their write's id when it is issued,
    /// dropped if the entries are dropped first.
    pub(super) after_unwritten: Vec<AfterWrite>,

    pub(super) role: Role,
    pub(super) leader: Option<NodeId>,
    pub(super) election_deadline: Time,
    pub(super) last_leader_contact: Option<Time>,
    pub(super) votes: SmallVec<[NodeId; 8]>,
    /// What a catching-up node learns on its way back (see `rejoin.rs`).
    pub(super) rejoining: super::rejoin::Rejoining,
    pub(super) leading: Option<Box<LeaderState>>,

    pub(super) commit: Option<Seq>,
    pub(super) apply_sent: Option<Seq>,
    pub(super) applied: Option<Seq>,
    /// Since when a load of entries has been waiting for the driver's answer.
    pub(super) load_waiting: Option<DriverWait>,
    /// Since when applies have been waiting for the state machine's report.
    pub(super) apply_waiting: Option<DriverWait>,

    pub(super) client: ClientState,
    pub(super) failed: bool,
    pub(super) closed: bool,
    pub(super) out: Vec<Output>,
    /// The time of the input being handled.
    pub(super) now: Time,
    /// Whether a step happened yet: timers count from the first step's time.
    started: bool,
    /// Whether inputs are being handled; new entries are then sent at the step's end.
    pub(super) in_step: bool,
    /// New entries wait to be sent to followers at the step's end.
    pub(super) broadcast_due: bool,
    /// Bumped whenever a follower's last answer time changes (change events depend on it).
    pub(super) heard_version: u64,
    /// The time and `heard_version` of the last follower-responsiveness computation.
    responsive_checked: Option<(Time, u64, u64)>,
    last_change: Option<ChangeSnapshot>,
}

impl Raft {
    /// A core for `config`, starting from what its storage recovered (use
    /// `Recovered::default()` for a brand-new node). Its timers start at its first step, so
    /// step it (with [`Input::Tick`]) when the node opens.
    pub fn new(config: Config, recovered: Recovered) -> Result<Raft, StartError> {
        config.validate().map_err(StartError::Config)?;
        recovered.validate().map_err(StartError::Recovered)?;
        let mut nodes = config.nodes.clone();
        nodes.sort_unstable();
        let peers: Vec<NodeId> = nodes.iter().copied().filter(|id| *id != config.id).collect();
        // The node's id is mixed in: nodes given one seed (Config::new gives every node 0) still
        // draw different election timeouts, so they do not split every vote forever.
        let mut rng = Rng::new(config.seed ^ Rng::new(config.id.0).next_u64());
        let incarnation = rng.next_u64();
        let raft = Raft {
            id: config.id,
            nodes,
            peers,
            rng,
            hard_state: recovered.hard_state,
            log: RaftLog::new(&recovered),
            last_write: 0,
            done_write: 0,
            pending_writes: VecDeque::new(),
            pending_truncates: VecDeque::new(),
            issued_end: Seq::after(recovered.last.map(|last| last.seq)).0,
            after_write: VecDeque::new(),
            durable_last: recovered.last,
            owed_since: None,
            stalled: false,
            hard_state_dirty: false,
            unwritten_from: None,
            after_unwritten: Vec::new(),
            role: Role::Follower,
            leader: None,
            election_deadline: Time(0),
            last_leader_contact: None,
            votes: SmallVec::new(),
            rejoining: Default::default(),
            leading: None,
            commit: None,
            apply_sent: config.apply_seq,
            applied: config.apply_seq,
            load_waiting: None,
            apply_waiting: None,
            client: ClientState::new(incarnation),
            failed: false,
            closed: false,
            out: Vec::new(),
            now: Time(0),
            started: false,
            in_step: false,
            broadcast_due: false,
            heard_version: 0,
            responsive_checked: None,
            last_change: None,
            config,
        };
        Ok(raft)
    }

    /// Handles one input at time `now` and returns what to do, in causal order.
    pub fn step(&mut self, now: Time, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        self.step_into(now, input, &mut out);
        out
    }

    /// Like [`step`](Raft::step), appending the outputs to `out` (reuses its allocation).
    pub fn step_into(&mut self, now: Time, input: Input, out: &mut Vec<Output>) {
        self.step_many(now, std::iter::once(input), out);
    }

    /// Handles several inputs at `now` as one step, appending the outputs to `out`. The result
    /// is the same as stepping them one by one, except that what a step does at its end (new
    /// entries sent to followers and written, the change event) is done once, for all of them:
    /// under load, a driver that hands over every input waiting for it gets one message per
    /// follower and one storage write for many client appends.
    pub fn step_many(&mut self, now: Time, inputs: impl IntoIterator<Item = Input>, out: &mut Vec<Output>) {
        std::mem::swap(&mut self.out, out);
        // Time never goes backwards for the core, whatever the driver's clock does.
        let now = now.max(self.now);
        self.now = now;
        if !self.started {
            // A (re)started node waits a whole election timeout for a leader to contact it.
            self.started = true;
            self.reset_election_deadline(now);
            if self.hard_state.catching_up {
                self.event(Event::Warn(format!(
                    "node {} is catching up (its storage is new, was repaired or lost data): it does not vote until \
                     a leader has caught it up, or it has seen every peer's log empty",
                    self.id
                )));
                self.probe_term();
            }
        }
        self.in_step = true;
        for input in inputs {
            self.handle(now, input);
        }
        self.in_step = false;
        if std::mem::take(&mut self.broadcast_due) {
            self.broadcast_append();
        }
        let idle = self.done_write == self.last_write;
        self.flush_hard_state();
        if idle && !self.failed {
            self.flush_entries();
        }
        self.emit_change_if_needed(now);
        std::mem::swap(&mut self.out, out);
    }

    fn handle(&mut self, now: Time, input: Input) {
        match input {
            Input::Tick => self.on_tick(now),
            Input::Message(message) => self.on_message(now, message),
            Input::Append { id, data } => self.on_client_append_one(now, id, data),
            Input::AppendBatch { id, data } => self.on_client_append(now, id, data.into()),
            Input::Read { id, command } => self.on_client_read(now, id, command),
            Input::WriteDone { id } => self.on_write_done(id.0),
            Input::WriteFailed { id, error } => self.on_write_failed(now, id.0, &error),
            Input::EntriesLoaded { entries } => self.on_entries_loaded(entries),
            Input::LoadFailed { error } => self.on_load_failed(now, &error),
            Input::Applied { first, responses } => self.on_applied(first, responses),
            Input::ReadDone { id, response } => self.on_read_done(id, response),
            Input::Close => self.on_close(),
        }
    }

    /// When to call `step(deadline, Input::Tick)` next, and why. Before the first step it is
    /// `Time(0)`: step the node once when it starts, and its timers count from then.
    pub fn deadline(&self) -> Option<(Time, Wake)> {
        if !self.started {
            return Some((Time(0), Wake::Election));
        }
        let role_timer = match &self.leading {
            Some(leading) => Some((leading.heartbeat_deadline, Wake::Heartbeat)),
            None if !self.failed => Some((self.election_deadline, Wake::Election)),
            None => None,
        };
        let request = self.client.deadline(self.leading.as_deref()).map(|at| (at, Wake::Request));
        [role_timer, request, self.stall_deadline().map(|at| (at, Wake::Storage))]
            .into_iter()
            .flatten()
            .min_by_key(|(at, _)| *at)
    }

    /// When the write in flight counts as stalled (if it is not yet).
    fn stall_deadline(&self) -> Option<Time> {
        let timeout = self.config.storage_stall_timeout?;
        let since = self.owed_since.filter(|_| !self.stalled && !self.failed)?;
        Some(Time(since.0.saturating_add(duration_nanos(timeout))))
    }

    fn on_tick(&mut self, now: Time) {
        if self.stall_deadline().is_some_and(|at| now >= at) {
            self.storage_stalled(now);
        }
        if self.leading.as_ref().is_some_and(|l| now >= l.heartbeat_deadline) {
            self.heartbeat_tick(now);
        } else if self.leading.is_none() && !self.failed && now >= self.election_deadline {
            self.election_timeout(now);
        }
        self.expire_requests(now);
        self.warn_if_unanswered(now);
    }

    /// A driver that never answers a load or an apply would stall the node without a word:
    /// after an election timeout, say so once.
    fn warn_if_unanswered(&mut self, now: Time) {
        let timeout = duration_nanos(self.config.election_timeout);
        if let Some(ms) = self.load_waiting.as_mut().and_then(|wait| wait.overdue(now, timeout)) {
            self.event(Event::Warn(format!(
                "the driver has not reported a load of entries (Output::LoadEntries needs Input::EntriesLoaded or \
                 LoadFailed) for {ms} ms: the node waits for it"
            )));
        }
        if let Some(ms) = self.apply_waiting.as_mut().and_then(|wait| wait.overdue(now, timeout)) {
            self.event(Event::Warn(format!(
                "the driver has not reported applied entries (Output::Apply needs Input::Applied) for {ms} ms: the \
                 node waits for it"
            )));
        }
    }

    fn on_message(&mut self, now: Time, message: Message) {
        if self.failed {
            return;
        }
        if message.to != self.id || !self.peers.contains(&message.from) {
            self.event(Event::Warn(format!(
                "dropped a message from {} to {}: not for this node or not from a peer",
                message.from, message.to
            )));
            return;
        }
        match &message.body {
            // A pre-vote request carries the term its sender would campaign in, one past its own.
            Body::PreVote { last } => self.note_peer_log(message.from, Term(message.term.0.saturating_sub(1)), *last),
            Body::Vote { last } => self.note_peer_log(message.from, message.term, *last),
            _ => {}
        }
        match &message.body {
            Body::Forward { .. } | Body::ForwardReply { .. } => return self.on_client_message(now, message),
            Body::PreVote { last } => return self.on_pre_vote(now, message.from, message.term, *last),
            Body::PreVoteResponse { granted } => {
                return self.on_pre_vote_response(now, message.from, message.term, *granted)
            }
            _ => {}
        }
        if message.term > self.hard_state.term {
            if matches!(message.body, Body::Vote { .. }) && self.in_lease(now) && !self.mutant(Mutant::NoPreVote) {
                return; // A healthy leader exists: ignore the disruption (Raft thesis §4.2.3).
            }
            let leader = matches!(message.body, Body::Append { .. }).then_some(message.from);
            let (deadline, was_follower) = (self.election_deadline, self.role == Role::Follower);
            self.become_follower(now, message.term, leader);
            if was_follower && matches!(message.body, Body::Vote { .. }) {
                // Only a leader's appends or a granted vote restart the election timer (Raft
                // Figure 2): a candidate this node refuses must not keep it from campaigning.
                self.election_deadline = deadline;
            }
        } else if message.term < self.hard_state.term {
            return self.on_stale_message(message);
        }
        let Message { from, term, body, .. } = message;
        match body {
            Body::Vote { last } => self.on_vote(now, from, last),
            Body::VoteResponse { granted } => self.on_vote_response(from, granted),
            Body::Append { prev, entries, commit, read_round } => {
                self.on_append(now, from, term, prev, entries, commit, read_round)
            }
            Body::AppendResponse { read_round, result, incarnation } => {
                self.on_append_response(now, from, read_round, result, incarnation)
            }
            Body::CatchUp { commit } => self.on_catch_up(from, commit),
            Body::PreVote { .. } | Body::PreVoteResponse { .. } | Body::Forward { .. } | Body::ForwardReply { .. } => {
                unreachable!("handled above")
            }
        }
    }

    /// Pushes an output.
    pub(super) fn emit(&mut self, output: Output) {
        self.out.push(output);
    }

    /// Pushes an event.
    pub(super) fn event(&mut self, event: Event) {
        self.out.push(Output::Event(event));
    }

    /// Sends a message to a peer now.
    pub(super) fn send(&mut self, to: NodeId, body: Body) {
        let message = Message { from: self.id, to, term: self.hard_state.term, body };
        self.out.push(Output::Send(message));
    }

    // ---- durability ----

    /// Issues a storage write. The in-memory state must already reflect it.
    pub(super) fn write(&mut self, write: Write) {
        if !matches!(write, Write::HardState(_)) {
            self.flush_hard_state();
        }
        if self.done_write == self.last_write {
            self.owed_since = Some(self.now);
        }
        self.last_write += 1;
        let id = self.last_write;
        match &write {
            Write::Truncate { from } => {
                self.pending_truncates.push_back((id, *from));
                self.issued_end = self.issued_end.min(from.0);
            }
            Write::Entries(entries) => {
                let (first, last) = (entries.first().map(|e| e.seq.0), entries.last().map(|e| e.seq.0));
                debug_assert_eq!(first, Some(self.issued_end), "invariant: entries are written where the log ends");
                self.issued_end = last.map_or(self.issued_end, |last| last + 1);
            }
            Write::HardState(_) => {}
        }
        if !matches!(write, Write::HardState(_)) {
            self.pending_writes.push_back((id, self.log.last()));
        }
        self.out.push(Output::Write { id: super::types::WriteId(id), write });
    }

    /// Saves the hard state (after changing it in memory): the write is issued before the next
    /// write or durability-dependent message, or at the end of the step.
    pub(super) fn save_hard_state(&mut self) {
        self.hard_state_dirty = true;
    }

    fn flush_hard_state(&mut self) {
        if self.hard_state_dirty {
            self.hard_state_dirty = false;
            self.write(Write::HardState(self.hard_state));
        }
    }

    /// Marks the log's entries from `from` on as not yet written.
    pub(super) fn mark_unwritten(&mut self, from: Seq) {
        self.unwritten_from = Some(self.unwritten_from.map_or(from, |u| u.min(from)));
    }

    /// Issues one write for every entry not yet written.
    fn flush_entries(&mut self) {
        let Some(from) = self.unwritten_from.take() else { return };
        let entries = self.log.slice(from, usize::MAX, usize::MAX).expect("unwritten entries are never evicted");
        assert!(!entries.is_empty(), "invariant: unwritten_from is cleared when its entries are dropped");
        self.write(Write::Entries(entries));
        let id = self.last_write;
        for action in std::mem::take(&mut self.after_unwritten) {
            self.after_write.push_back((id, action));
        }
    }

    /// Drops the unwritten entries from `from` on (a truncation), and with them every action
    /// waiting for unwritten entries: an acknowledgement is never sent for entries never written.
    pub(super) fn drop_unwritten(&mut self, from: Seq) {
        if self.unwritten_from.is_some_and(|unwritten| from <= unwritten) {
            self.unwritten_from = None;
        }
        self.after_unwritten.clear();
    }

    /// Does `action` once every write issued so far, and the entries not yet written, are
    /// durable (at once if they are).
    pub(super) fn after_writes(&mut self, action: AfterWrite) {
        self.flush_hard_state();
        if self.unwritten_from.is_some() {
            self.after_unwritten.push(action);
        } else if self.done_write == self.last_write {
            self.run_after_write(action);
        } else {
            self.after_write.push_back((self.last_write, action));
        }
    }

    fn run_after_write(&mut self, action: AfterWrite) {
        match action {
            AfterWrite::Send(message) => self.out.push(Output::Send(message)),
            AfterWrite::SelfVote(term) => {
                if self.role == Role::Candidate && self.hard_state.term == term {
                    self.record_vote(self.id);
                }
            }
            AfterWrite::CaughtUp(term, commit) => self.caught_up(term, commit),
        }
    }

    fn on_write_done(&mut self, id: u64) {
        if id <= self.done_write || id > self.last_write {
            self.event(Event::Warn(format!("driver bug: completion of unknown write w{id} ignored")));
            return;
        }
        self.done_write = id;
        if self.stalled {
            self.stalled = false;
            let waited = self.now.0.saturating_sub(self.owed_since.map_or(0, |t| t.0)) as f64 / 1e9;
            self.event(Event::Warn(format!("storage recovered: writes up to w{id} durable after {waited:.1} s")));
            if self.leading.is_none() && !self.failed {
                self.reset_election_deadline(self.now);
            }
        }
        // The writes after `id` are owed from now on (the storage starts on them now).
        self.owed_since = (id < self.last_write).then_some(self.now);
        while let Some((_, last)) = self.pending_writes.front().copied().filter(|(w, _)| *w <= id) {
            self.pending_writes.pop_front();
            self.durable_last = last;
        }
        while self.pending_truncates.front().is_some_and(|(w, _)| *w <= id) {
            self.pending_truncates.pop_front();
        }
        while let Some((w, _)) = self.after_write.front() {
            if *w > id {
                break;
            }
            let (_, action) = self.after_write.pop_front().expect("checked by front()");
            if self.failed {
                continue;
            }
            self.run_after_write(action);
        }
        if self.leading.is_some() {
            self.maybe_commit();
        }
        self.evict();
    }

    /// The write in flight outlasted `storage_stall_timeout`: report it and stop leading (a
    /// leader that cannot make entries durable holds up every commit that needs it).
    fn storage_stalled(&mut self, now: Time) {
        self.stalled = true;
        let waited = now.0.saturating_sub(self.owed_since.map_or(0, |t| t.0)) as f64 / 1e9;
        let write = self.done_write + 1;
        let role = self.role;
        self.event(Event::Error(format!(
            "storage stalled: write w{write} is not durable after {waited:.1} s; not leading until it is"
        )));
        if role != Role::Follower {
            let term = self.hard_state.term;
            self.become_follower(now, term, None);
        }
    }

    /// Entries could not be read back. A leader that cannot read its own log steps down rather
    /// than hold up the followers that need those entries (a leader with intact storage takes
    /// over); the entries are asked for again when they are next needed.
    fn on_load_failed(&mut self, now: Time, error: &str) {
        self.load_waiting = None;
        self.event(Event::Error(format!("loading entries from storage failed: {error}")));
        if self.leading.is_some() {
            let term = self.hard_state.term;
            self.event(Event::Warn(format!(
                "leader {} steps down in term {term}: it cannot read its own log to replicate it",
                self.id
            )));
            self.become_follower(now, term, None);
        }
    }

    fn on_write_failed(&mut self, now: Time, id: u64, error: &str) {
        self.event(Event::Error(format!("storage write w{id} failed, node stops: {error}")));
        self.failed = true;
        self.after_write.clear();
        self.unwritten_from = None;
        self.after_unwritten.clear();
        if self.role != Role::Follower {
            let term = self.hard_state.term;
            self.become_follower(now, term, None);
        }
        self.fail_all_requests(ClientError::StorageFailed);
    }

    /// The highest seq up to which this node's log is durable and agrees with memory.
    pub(super) fn durable_match(&self) -> Option<Seq> {
        let durable = self.durable_last.map(|id| id.seq);
        match self.pending_truncates.iter().map(|(_, from)| *from).min() {
            Some(from) => durable.min(from.prev()),
            None => durable,
        }
    }

    /// Drops applied, durable entries from memory beyond `memory_entries_max`.
    pub(super) fn evict(&mut self) {
        // In chunks of an eighth, so the check costs little per entry.
        let max = self.config.memory_entries_max;
        if self.log.tail_len() > max + max / 8 {
            let upto = self.apply_sent.min(self.durable_match());
            self.log.evict(self.config.memory_entries_max, upto);
        }
    }

    // ---- timers and roles ----

    pub(super) fn reset_election_deadline(&mut self, now: Time) {
        let timeout = duration_nanos(self.config.election_timeout);
        self.election_deadline = now.plus(timeout + self.rng.below(timeout));
    }

    /// Whether a leader was heard from within the election timeout (then vote requests are
    /// ignored, so a node that cannot hear the leader cannot disrupt the ones that can).
    pub(super) fn in_lease(&self, now: Time) -> bool {
        self.config.check_quorum
            && self.leader.is_some()
            && self.last_leader_contact.is_some_and(|at| now.since(at) < duration_nanos(self.config.election_timeout))
    }

    /// Whether the nodes for which `member` is true form a quorum.
    pub(super) fn is_quorum(&self, member: impl Fn(NodeId) -> bool) -> bool {
        self.config.quorum.is_quorum(&self.nodes, member)
    }

    fn emit_change_if_needed(&mut self, now: Time) {
        let followers = match self.responsive_checked {
            // Same time, no new answers: the responsive set is what it was.
            Some((at, version, mask)) if at == now && version == self.heard_version && self.leading.is_some() => mask,
            _ => {
                let window = duration_nanos(self.config.ping_timeout);
                let mask = self.leading.as_ref().map_or(0, |leading| {
                    let responsive = leading.progress.iter().map(|p| p.answered_within(now, window));
                    responsive.enumerate().take(64).fold(0u64, |mask, (i, yes)| mask | (u64::from(yes) << i))
                });
                self.responsive_checked = Some((now, self.heard_version, mask));
                mask
            }
        };
        let snapshot = (self.role, self.leader, self.hard_state.term, followers);
        if self.last_change != Some(snapshot) {
            self.event(Event::Change {
                id: self.id,
                nodes: self.nodes.clone(),
                role: snapshot.0,
                leader: snapshot.1,
                followers: self.responsive_followers(now).to_vec(),
                term: snapshot.2,
            });
            self.last_change = Some(snapshot);
        }
    }

    fn responsive_followers(&self, now: Time) -> SmallVec<[NodeId; 8]> {
        let window = duration_nanos(self.config.ping_timeout);
        match &self.leading {
            Some(leading) => leading.progress.iter().filter(|p| p.answered_within(now, window)).map(|p| p.id).collect(),
            None => SmallVec::new(),
        }
    }

    // ---- getters ----

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Every node of the cluster, sorted.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// This node's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// The leader this node knows of (itself when leading).
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// The latest term this node has seen.
    pub fn term(&self) -> Term {
        self.hard_state.term
    }

    /// The term and vote (possibly not durable yet).
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The last entry of the log (possibly not durable yet).
    pub fn last(&self) -> Option<LogId> {
        self.log.last()
    }

    /// The seq of the last entry of the log (the seed's `seq`).
    pub fn seq(&self) -> Option<Seq> {
        self.log.last_seq()
    }

    /// The payload of the last entry, if it is in memory (the seed's `head`; `None` also for an
    /// empty log or a blank entry).
    pub fn head(&self) -> Option<bytes::Bytes> {
        let last = self.log.last_seq()?;
        self.log.entry(last).and_then(|entry| entry.payload.data().cloned())
    }

    /// The entry at `seq`, if it is held in memory.
    pub fn entry(&self, seq: Seq) -> Option<&super::types::Entry> {
        self.log.entry(seq)
    }

    /// The term of the entry at `seq`, if the log has it (in memory or not).
    pub fn term_at(&self, seq: Seq) -> Option<Term> {
        self.log.term_at(seq)
    }

    /// The highest seq known committed.
    pub fn commit(&self) -> Option<Seq> {
        self.commit
    }

    /// The highest seq the state machine has applied (without one: the commit point).
    pub fn applied(&self) -> Option<Seq> {
        self.applied
    }

    /// The last entry known durable on this node's storage.
    pub fn durable_last(&self) -> Option<LogId> {
        self.durable_last
    }

    /// As leader, the peers that answered within `ping_timeout` (the seed's `followers`).
    pub fn followers(&self, now: Time) -> Vec<NodeId> {
        self.responsive_followers(now).to_vec()
    }

    /// As leader, each peer's highest known matching seq.
    pub fn matches(&self) -> Vec<(NodeId, Option<Seq>)> {
        self.leading.as_ref().map_or_else(Vec::new, |l| l.progress.iter().map(|p| (p.id, p.matched)).collect())
    }

    /// Whether this node is catching up after losing data (see [`HardState::catching_up`]): it
    /// neither votes nor campaigns yet.
    pub fn is_catching_up(&self) -> bool {
        self.hard_state.catching_up
    }

    /// Whether a storage failure stopped this node.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl fmt::Debug for Raft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Raft")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("term", &self.hard_state.term)
            .field("leader", &self.leader)
            .field("last", &self.log.last())
            .field("commit", &self.commit)
            .finish_non_exhaustive()
    }
}

/// Since when the core has waited for an answer from the driver, and whether it said so.
#[derive(Clone, Copy, Debug)]
pub(super) struct DriverWait {
    since: Time,
    warned: bool,
}

impl DriverWait {
    pub(super) fn since(now: Time) -> DriverWait {
        DriverWait { since: now, warned: false }
    }

    /// The milliseconds waited, once, when they reach `timeout` nanoseconds.
    fn overdue(&mut self, now: Time, timeout: u64) -> Option<u64> {
        let waited = now.since(self.since);
        (!self.warned && waited >= timeout).then(|| {
            self.warned = true;
            waited / 1_000_000
        })
    }
}

/// A duration in nanoseconds, saturating (configs are validated to at most a day).
pub(super) fn duration_nanos(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
