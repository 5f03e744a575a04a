//! The `Raft` state machine: its state, `step`, timers and getters. The protocol's parts live
//! next door: `role.rs` (the role and its state), `durability.rs` (writes and what waits for
//! them), `election.rs`, `replication.rs`, `client.rs`, `transfer.rs`, `rejoin.rs`, and
//! `members.rs` and `change.rs` (the configuration in force and changes to it).

use super::client::ClientState;
use super::config::{Config, ConfigError};
use super::durability::Writes;
use super::io::{Event, Input, Output, Wake};
use super::log::{RaftLog, Recovered, RecoveryError};
use super::message::{Body, Message};
use super::mutant::Mutant;
use super::rng::Rng;
use super::role::RoleState;
use super::types::{HardState, LogId, NodeId, Role, Seq, Term, Time};
use smallvec::SmallVec;
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

/// A Raft node's protocol state: a pure, deterministic state machine.
///
/// Feed every input to [`step`](Raft::step) with the current time; carry out the outputs.
/// See the crate documentation for the driver's contract.
pub struct Raft {
    pub(super) config: Config,
    pub(super) id: NodeId,
    /// The members of the configuration in force, sorted (see `members.rs`).
    pub(super) nodes: Vec<NodeId>,
    /// The nodes a leader replicates to, sorted: the members of the configurations not known
    /// committed and of the last committed one, but this node.
    pub(super) peers: Vec<NodeId>,
    /// The bootstrap configuration's nodes (`Config::nodes`), sorted.
    pub(super) bootstrap: Vec<NodeId>,
    /// The configuration state `nodes` and `peers` were computed for.
    pub(super) configs_seen: Option<(u64, Option<Seq>)>,
    /// A committed configuration removed this node.
    pub(super) removed: bool,
    /// A configuration in force listed this node (since it started).
    pub(super) was_member: bool,
    /// The seq of the committed configuration saved apart from the log.
    pub(super) saved_config: Option<Seq>,
    pub(super) rng: Rng,

    pub(super) hard_state: HardState,
    pub(super) log: RaftLog,

    /// Storage writes in flight and what waits for them (see `durability.rs`).
    pub(super) writes: Writes,

    pub(super) role: RoleState,
    pub(super) leader: Option<NodeId>,
    pub(super) election_deadline: Time,
    pub(super) last_leader_contact: Option<Time>,
    /// When this node, a member but no voter, last refused a (pre-)vote because its own log
    /// was more up-to-date than the candidate's (see `may_campaign`).
    pub(super) refused_behind_candidate: Option<Time>,
    /// Entries known committed that storage kept past damage, not yet matched by a leader's
    /// (see `Recovered::evidence` and `rejoin.rs`).
    pub(super) evidence: super::rejoin::Evidence,
    /// No leader transfer for priority before this time (one failed: see `transfer.rs`).
    pub(super) priority_backoff_until: Time,
    /// What a catching-up node learns on its way back (see `rejoin.rs`).
    pub(super) rejoining: super::rejoin::Rejoining,

    pub(super) commit: Option<Seq>,
    pub(super) apply_sent: Option<Seq>,
    pub(super) applied: Option<Seq>,
    /// Since when a load of entries has been waiting for the driver's answer.
    pub(super) load_waiting: Option<DriverWait>,
    /// After a failed load: when to try applying again (nothing else would while the commit
    /// point stands still).
    pub(super) load_retry_at: Option<Time>,
    /// Since when applies have been waiting for the state machine's report.
    pub(super) apply_waiting: Option<DriverWait>,

    pub(super) client: ClientState,
    /// Snapshots: the latest, one being taken, received or restored (see `snapshot.rs`).
    pub(super) snapshots: super::snapshot::Snapshots,
    pub(super) failed: bool,
    pub(super) closed: bool,
    pub(super) out: Vec<Output>,
    /// The time of the input being handled.
    pub(super) now: Time,
    /// Whether a step happened yet: timers count from the first step's time.
    pub(super) started: bool,
    /// Whether inputs are being handled; new entries are then sent at the step's end.
    pub(super) in_step: bool,
    /// New entries wait to be sent to followers at the step's end.
    pub(super) broadcast_due: bool,
    /// Bumped whenever a follower's last answer time changes (change events depend on it).
    pub(super) heard_version: u64,
    /// The time and `heard_version` of the last follower-responsiveness computation.
    pub(super) responsive_checked: Option<(Time, u64, u64)>,
    last_change: Option<ChangeSnapshot>,
}

impl Raft {
    /// A core for `config`, starting from what its storage recovered (use
    /// `Recovered::default()` for a brand-new node). Its timers start at its first step, so
    /// step it (with [`Input::Tick`]) when the node opens.
    pub fn new(config: Config, recovered: Recovered) -> Result<Raft, StartError> {
        config.validate().map_err(StartError::Config)?;
        recovered.validate().map_err(StartError::Recovered)?;
        let mut bootstrap = config.nodes.clone();
        bootstrap.sort_unstable();
        // The node's id is mixed in: nodes given one seed (Config::new gives every node 0) still
        // draw different election timeouts, so they do not split every vote forever.
        let mut rng = Rng::new(config.seed ^ Rng::new(config.id.0).next_u64());
        let incarnation = rng.next_u64();
        let log = RaftLog::new(&recovered);
        // Storage holds nothing of the cluster's after the snapshot: have it continue there.
        let reset_storage = recovered.snapshot.as_ref().is_some_and(|s| !RaftLog::continues(&recovered, s));
        let mut snapshots = super::snapshot::Snapshots::new(recovered.snapshot.clone(), recovered.partial_snapshot);
        snapshots.reset_storage = reset_storage;
        // A snapshot covers only committed entries.
        let commit = recovered.snapshot.as_ref().map(|snapshot| snapshot.last.seq);
        let mut raft = Raft {
            id: config.id,
            nodes: Vec::new(),
            peers: Vec::new(),
            bootstrap,
            configs_seen: None,
            removed: false,
            was_member: config.nodes.contains(&config.id),
            // Saved apart from the log, or in the snapshot (durable too).
            saved_config: recovered
                .committed_config
                .iter()
                .chain(recovered.snapshot.iter().filter_map(|snapshot| snapshot.configuration.as_ref()))
                .map(|entry| entry.seq)
                .max(),
            rng,
            hard_state: recovered.hard_state,
            writes: Writes::new(log.last(), log.next_seq()),
            log,
            role: RoleState::Follower,
            leader: None,
            election_deadline: Time(0),
            last_leader_contact: None,
            refused_behind_candidate: None,
            evidence: super::rejoin::Evidence::new(recovered.evidence),
            priority_backoff_until: Time(0),
            rejoining: Default::default(),
            commit,
            apply_sent: config.apply_seq,
            applied: config.apply_seq,
            load_waiting: None,
            load_retry_at: None,
            apply_waiting: None,
            client: ClientState::new(incarnation),
            snapshots,
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
        if let Some(term) = raft.snapshots.latest.as_ref().map(|s| s.last.term).filter(|t| *t > raft.hard_state.term) {
            // Its term and vote were lost, not its snapshot: the term is at least the snapshot's.
            raft.hard_state.term = term;
            raft.hard_state.vote = None;
            raft.save_hard_state();
        }
        if let Some(last) = raft.snapshots.latest.as_ref().map(|s| s.last.seq) {
            raft.evidence_forget_through(last); // The snapshot covers it.
        }
        let emptied = raft.log.first() > Seq(0) && raft.log.last().is_none();
        if emptied && !raft.hard_state.catching_up && !raft.mutant(Mutant::EmptiedLogVotes) {
            // Its prefix was removed and it holds no entry, nor anything that tells what its log
            // continued from (the snapshot that covered the prefix is lost): it lost committed
            // entries it may have acknowledged, and would show candidates an empty log. It votes
            // again only as a node that lost its disk does.
            raft.hard_state.catching_up = true;
            raft.save_hard_state();
        }
        // The configuration in force where the state machine stands.
        raft.snapshots.applied_config = match (&raft.snapshots.latest, raft.apply_sent) {
            (Some(snapshot), Some(at)) if snapshot.last.seq == at => snapshot.configuration.clone(),
            (_, Some(at)) => raft.log.configuration_entry_at(at),
            (_, None) => None,
        };
        raft.sync_configuration();
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
            self.reset_storage_to_snapshot();
            // What a snapshot shows committed is applied (restored) at once.
            self.maybe_apply();
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
        let idle = self.writes.idle();
        self.refresh_commit_hint(now);
        self.flush_hard_state();
        if idle && !self.failed {
            self.flush_entries();
        }
        // After the writes: a driver carries out outputs in order, and a leader's own write
        // then starts before its appends are encoded for the followers (a leader's appends
        // promise nothing durable, so they need not wait for it).
        if std::mem::take(&mut self.broadcast_due) {
            self.broadcast_append();
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
            Input::TransferLeader { id, to } => self.on_transfer_leader(now, id, to),
            Input::ChangeMembership { id, change } => self.on_change_membership(now, id, change),
            Input::SnapshotTaken { meta } => self.on_snapshot_taken(meta),
            Input::SnapshotFailed { error } => self.on_snapshot_failed(&error),
            Input::SnapshotChunkLoaded { to, snapshot, offset, data, done } => {
                self.on_snapshot_chunk_loaded(to, *snapshot, offset, data, done)
            }
            Input::SnapshotLoadFailed { to, error } => self.on_snapshot_load_failed(to, &error),
            Input::Restored { last } => self.on_restored(last),
            Input::RestoreFailed { error } => self.on_restore_failed(&error),
            Input::Snapshot { id } => self.on_client_snapshot(id),
            Input::RemovePrefix { id, through, force } => self.on_client_remove_prefix(id, through, force),
            Input::Close => self.on_close(),
        }
    }

    /// When to call `step(deadline, Input::Tick)` next, and why. Before the first step it is
    /// `Time(0)`: step the node once when it starts, and its timers count from then.
    pub fn deadline(&self) -> Option<(Time, Wake)> {
        if !self.started {
            return Some((Time(0), Wake::Election));
        }
        let role_timer = match self.role.leading() {
            Some(leading) => Some((leading.heartbeat_deadline, Wake::Heartbeat)),
            None if !self.failed => Some((self.election_deadline, Wake::Election)),
            None => None,
        };
        let request = self.client.deadline(self.role.leading()).map(|at| (at, Wake::Request));
        let snapshot = self.role.leading().and_then(|leading| leading.snapshot_wake).map(|at| (at, Wake::Snapshot));
        let storage = self.stall_deadline().into_iter().chain(self.load_retry_at).min().map(|at| (at, Wake::Storage));
        [role_timer, request, storage, snapshot].into_iter().flatten().min_by_key(|(at, _)| *at)
    }

    fn on_tick(&mut self, now: Time) {
        if self.stall_deadline().is_some_and(|at| now >= at) {
            self.storage_stalled(now);
        }
        if self.role.leading().is_some_and(|l| now >= l.heartbeat_deadline) {
            self.heartbeat_tick(now);
        } else if !self.role.is_leader() && !self.failed && now >= self.election_deadline {
            self.election_timeout(now);
        }
        if self.load_retry_at.is_some_and(|at| now >= at) {
            self.load_retry_at = None;
            self.maybe_apply();
        }
        self.snapshot_tick(now);
        self.expire_requests(now);
        self.expire_transfer(now);
        self.expire_change(now);
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
        // Any other node may write: one the configuration in this node's log does not list yet
        // may lead a later configuration, and a vote only counts from a voter anyway.
        if message.to != self.id || message.from == self.id {
            self.event(Event::Warn(format!(
                "dropped a message from {} to {}: not for this node, or from itself",
                message.from, message.to
            )));
            return;
        }
        if matches!(message.body, Body::Vote { .. }) && self.removed_sender(now, message.from) {
            // A node a change removed (which may not know it) must not disrupt a cluster that
            // has a leader with its terms (Raft thesis §4.2.3). Its pre-votes change nothing
            // here, and their answers let a node catching up learn the term.
            return;
        }
        match &message.body {
            // A pre-vote request carries the term its sender would campaign in, one past its own.
            Body::PreVote { last } => self.note_peer_log(message.from, Term(message.term.0.saturating_sub(1)), *last),
            Body::Vote { last, .. } => self.note_peer_log(message.from, message.term, *last),
            _ => {}
        }
        match &message.body {
            Body::Forward { .. } | Body::ForwardReply { .. } => return self.on_client_message(now, message),
            Body::PreVote { last } => return self.on_pre_vote(now, message.from, message.term, *last),
            Body::PreVoteResponse { granted, last } => {
                return self.on_pre_vote_response(now, message.from, message.term, *granted, *last)
            }
            _ => {}
        }
        if message.term > self.hard_state.term {
            let disruptive = matches!(message.body, Body::Vote { transfer: false, .. });
            if disruptive && self.in_lease(now) && !self.mutant(Mutant::NoPreVote) {
                return; // A healthy leader exists: ignore the disruption (Raft thesis §4.2.3).
            }
            if disruptive
                && self.hard_state.catching_up
                && self.heard_leader(now)
                && !self.mutant(Mutant::CatchingUpTakesVoteTerm)
            {
                // A node catching up votes for nobody, so ignoring the request costs no
                // election; taking its term would pass it on to the leader in this node's
                // next answer and depose it. A stranded node (it may never catch up) whose
                // log holds no committed configuration cannot tell a removed node from a
                // member: a removed node campaigning with pre-vote off deposed each leader
                // through it, and no leader lasted (seeds 103289, 127625).
                return;
            }
            let leader = matches!(message.body, Body::Append { .. } | Body::Snapshot { .. }).then_some(message.from);
            let (deadline, was_leader) = (self.election_deadline, self.role.kind() == Role::Leader);
            self.become_follower(now, message.term, leader);
            if !was_leader && matches!(message.body, Body::Vote { .. }) {
                // Only a leader's appends or a granted vote restart the election timer (Raft
                // Figure 2): a candidate this node refuses must not keep it from campaigning.
                // This holds for a candidate too: with pre-vote off, a candidate whose log is
                // behind, campaigning just before the one that could win, restarted the
                // other's timer with each request, so it kept campaigning first, and for 12 s
                // or more no term could elect (seeds 1025183 and 198917, three nodes). A
                // deposed leader's timer is not running: it starts afresh.
                self.election_deadline = deadline;
            }
        } else if message.term < self.hard_state.term {
            return self.on_stale_message(message);
        }
        let Message { from, term, body, .. } = message;
        match body {
            Body::Vote { last, .. } => self.on_vote(now, from, last),
            Body::TimeoutNow => self.on_timeout_now(now, from),
            Body::VoteResponse { granted } => self.on_vote_response(from, granted),
            Body::Append { prev, entries, commit, read_round } => {
                self.on_append(now, from, term, prev, entries, commit, read_round)
            }
            Body::AppendResponse { read_round, result, incarnation } => {
                self.on_append_response(now, from, read_round, result, incarnation)
            }
            Body::CatchUp { commit } => self.on_catch_up(from, commit),
            Body::Snapshot { snapshot, offset, data, done, commit } => {
                self.on_snapshot(now, from, term, *snapshot, offset, data, done, commit)
            }
            Body::SnapshotResponse { last, digest, next, installed } => {
                self.on_snapshot_response(now, from, last, digest, next, installed)
            }
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

    // ---- timers and roles ----

    pub(super) fn reset_election_deadline(&mut self, now: Time) {
        let timeout = duration_nanos(self.config.election_timeout);
        self.election_deadline = now.plus(timeout + self.rng.below(timeout));
    }

    /// With check-quorum on, whether a leader was heard from within the election timeout (then
    /// vote requests are ignored, so a node that cannot hear the leader cannot disrupt the ones
    /// that can; a node catching up ignores them without check-quorum too).
    pub(super) fn in_lease(&self, now: Time) -> bool {
        self.config.check_quorum && self.heard_leader(now)
    }

    /// Whether this node heard from a leader within the election timeout.
    pub(super) fn heard_leader(&self, now: Time) -> bool {
        self.leader.is_some()
            && self.last_leader_contact.is_some_and(|at| now.since(at) < duration_nanos(self.config.election_timeout))
    }

    fn emit_change_if_needed(&mut self, now: Time) {
        let followers = match self.responsive_checked {
            // Same time, no new answers: the responsive set is what it was.
            Some((at, version, mask)) if at == now && version == self.heard_version && self.role.is_leader() => mask,
            _ => {
                let window = duration_nanos(self.config.ping_timeout);
                let mask = self.role.leading().map_or(0, |leading| {
                    let responsive = leading.progress.iter().map(|p| p.answered_within(now, window));
                    responsive.enumerate().take(64).fold(0u64, |mask, (i, yes)| mask | (u64::from(yes) << i))
                });
                self.responsive_checked = Some((now, self.heard_version, mask));
                mask
            }
        };
        let snapshot = (self.role.kind(), self.leader, self.hard_state.term, followers);
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
        match self.role.leading() {
            Some(leading) => leading.progress.iter().filter(|p| p.answered_within(now, window)).map(|p| p.id).collect(),
            None => SmallVec::new(),
        }
    }

    // ---- getters ----

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Every member (voter or learner) of the configuration in force, sorted.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// The configuration in force: the latest configuration entry in the log (committed or
    /// not), `None` while the log holds none and `Config::nodes` is in force.
    pub fn membership(&self) -> Option<&super::Configuration> {
        self.configuration()
    }

    /// The seq of the configuration entry in force, `None` for the bootstrap configuration.
    pub fn membership_seq(&self) -> Option<Seq> {
        self.log.configuration().map(|(seq, _)| seq)
    }

    /// This node's role.
    pub fn role(&self) -> Role {
        self.role.kind()
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.role.is_leader()
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
    /// empty log, a blank or a configuration entry).
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

    /// The first seq the log holds (entries before it were removed: a snapshot covers them).
    pub fn first_seq(&self) -> Seq {
        self.log.first()
    }

    /// The latest durable snapshot this node knows of.
    pub fn snapshot(&self) -> Option<&super::types::SnapshotMeta> {
        self.snapshots.latest.as_ref()
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
        self.writes.durable_last
    }

    /// As leader, the peers that answered within `ping_timeout` (the seed's `followers`).
    pub fn followers(&self, now: Time) -> Vec<NodeId> {
        self.responsive_followers(now).to_vec()
    }

    /// As leader, each peer's highest known matching seq.
    pub fn matches(&self) -> Vec<(NodeId, Option<Seq>)> {
        self.progress().collect()
    }

    /// As leader, each peer's highest known matching seq, without allocating (none otherwise).
    pub fn progress(&self) -> impl ExactSizeIterator<Item = (NodeId, Option<Seq>)> + '_ {
        self.role.leading().map_or(&[][..], |l| &l.progress[..]).iter().map(|p| (p.id, p.matched))
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
            .field("role", &self.role.kind())
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
