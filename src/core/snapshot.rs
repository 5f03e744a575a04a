//! Snapshots (Raft §7), streamed: taken by policy or on request, the log prefix they cover
//! removed once one is durable, and sent in chunks to followers that need entries the log no
//! longer holds.
//!
//! The core never holds a snapshot: it asks the driver for one chunk at a time
//! ([`Output::LoadSnapshotChunk`]), wraps it in a message, and forgets it. A follower writes
//! each chunk it takes in order ([`Write::SnapshotChunk`]) and answers with how much is
//! durable, so a lost chunk, a restart of either side, or a new leader with the same snapshot
//! (same last entry and digest) resumes where the follower stands. At most
//! `Config::snapshot_chunks_inflight` chunks are out to one follower; the first goes alone (it
//! learns where the follower stands). Appends to other followers, and heartbeats, go on.

use super::client::Origin;
use super::durability::AfterWrite;
use super::io::{ClientError, Event, Output, Response, Write};
use super::message::Body;
use super::mutant::Mutant;
use super::raft::{DriverWait, Raft};
use super::types::{LogId, NodeId, RequestId, Seq, SnapshotMeta, Term, Time};
use bytes::Bytes;
use std::collections::VecDeque;

/// What a node knows of its snapshots.
#[derive(Debug, Default)]
pub(crate) struct Snapshots {
    /// The latest durable snapshot.
    pub(crate) latest: Option<SnapshotMeta>,
    /// The last entry of the one before it (storage keeps it until the next is durable): the
    /// log keeps every entry after it, so a damaged latest snapshot costs nothing.
    previous: Option<LogId>,
    /// A snapshot asked of the driver and not reported yet: its last entry.
    taking: Option<LogId>,
    /// Clients waiting for the snapshot being taken.
    waiting: Vec<RequestId>,
    /// Payload bytes applied since the latest snapshot (for `Config::snapshot_bytes`).
    applied_bytes: u64,
    /// No snapshot is taken by policy before this time (one failed).
    retry_after: Time,
    /// A snapshot being received from a leader.
    receiving: Option<Receiving>,
    /// Installs written and not durable yet (a second may be written before the first is).
    installing: u32,
    /// The configuration entry in force at the last entry handed to the state machine (what
    /// a snapshot taken there records).
    pub(crate) applied_config: Option<super::types::Entry>,
    /// A restore asked of the driver and not reported yet: the snapshot's last entry.
    pub(crate) restoring: Option<LogId>,
    /// Storage holds entries the latest snapshot covers past its log's end: reset it at start.
    pub(crate) reset_storage: bool,
}

/// A snapshot a follower is receiving.
#[derive(Debug)]
struct Receiving {
    meta: SnapshotMeta,
    /// Bytes written (durable once the writes issued so far are).
    written: u64,
    /// The last chunk was taken: the install is written.
    done: bool,
}

impl Snapshots {
    pub(crate) fn new(latest: Option<SnapshotMeta>, partial: Option<(SnapshotMeta, u64)>) -> Snapshots {
        let receiving = partial.map(|(meta, written)| Receiving { meta, written, done: false });
        Snapshots { latest, receiving, ..Snapshots::default() }
    }
}

/// A leader's sending of its snapshot to one follower.
#[derive(Debug)]
pub(crate) struct Sending {
    meta: SnapshotMeta,
    /// The follower holds the bytes up to here.
    acked: u64,
    /// The next offset to load and send.
    next: u64,
    /// The end offsets of the chunks sent and not acknowledged.
    chunks: VecDeque<u64>,
    /// A chunk load is out to the driver.
    loading: bool,
    /// The stream's end, once its last chunk was loaded.
    end: Option<u64>,
    /// No answer yet: one chunk at a time.
    probing: bool,
    /// `acked` at the last heartbeat: no progress over a whole interval resends from it.
    acked_at_heartbeat: u64,
    /// Where the last gap answer rewound to (answers to the same gap rewind once).
    rewound: Option<u64>,
    /// While clients wait, no chunk is loaded before this time.
    not_before: Time,
}

impl Sending {
    fn new(meta: SnapshotMeta) -> Sending {
        Sending {
            meta,
            acked: 0,
            next: 0,
            chunks: VecDeque::new(),
            loading: false,
            end: None,
            probing: true,
            acked_at_heartbeat: 0,
            rewound: None,
            not_before: Time(0),
        }
    }

    fn rewind(&mut self, to: u64) {
        self.next = to;
        self.chunks.clear();
        self.end = None;
    }
}

impl Raft {
    // ---- taking snapshots, compaction ----

    /// Takes a snapshot when `Config::snapshot_entries` or `snapshot_bytes` say so.
    pub(super) fn maybe_take_snapshot(&mut self) {
        let (entries, bytes) = (self.config.snapshot_entries, self.config.snapshot_bytes);
        if !self.config.state_machine || (entries == 0 && bytes == 0) || self.now < self.snapshots.retry_after {
            return;
        }
        let Some(at) = self.apply_sent else { return };
        let since = Seq::after(self.snapshots.latest.as_ref().map(|m| m.last.seq));
        let due_entries = entries > 0 && (at.0 + 1).saturating_sub(since.0) >= entries;
        let due_bytes = bytes > 0 && self.snapshots.applied_bytes >= bytes;
        if due_entries || due_bytes {
            self.take_snapshot();
        }
    }

    /// Asks the driver for a snapshot at the last entry handed to the state machine. Returns
    /// false if none can be taken (one is being taken, nothing new was applied, or the state
    /// machine is being restored).
    fn take_snapshot(&mut self) -> bool {
        let at = match self.mutant(Mutant::SnapshotPastApplied) {
            true => self.commit,
            false => self.apply_sent,
        };
        let fresh = at > self.snapshots.latest.as_ref().map(|m| m.last.seq);
        if self.snapshots.taking.is_some() || self.snapshots.restoring.is_some() || !fresh {
            return false;
        }
        let Some(last) = at.and_then(|seq| self.log.id_at(seq)) else { return false };
        let configuration = match at == self.apply_sent {
            true => self.snapshots.applied_config.clone(),
            false => self.log.configuration_entry_at(last.seq),
        };
        self.snapshots.taking = Some(last);
        self.snapshots.applied_bytes = 0;
        self.emit(Output::TakeSnapshot { last, configuration });
        if self.mutant(Mutant::PrefixBeforeSnapshot) {
            self.remove_prefix(Seq(last.seq.0.saturating_sub(self.config.snapshot_keep_entries)));
        }
        true
    }

    /// Counts applied payload bytes toward `Config::snapshot_bytes`.
    pub(super) fn note_applied_bytes(&mut self, bytes: u64) {
        self.snapshots.applied_bytes = self.snapshots.applied_bytes.saturating_add(bytes);
    }

    /// A client asks for a snapshot.
    pub(super) fn on_client_snapshot(&mut self, id: RequestId) {
        if let Some(error) = self.refuses_local_request() {
            return self.reply(Origin::Local(id), Err(error));
        }
        if !self.config.state_machine {
            let why = "no state machine: the log is the product; remove its prefix with remove_prefix";
            return self.reply(Origin::Local(id), Err(ClientError::Invalid(why.into())));
        }
        if self.snapshots.taking.is_some() || self.take_snapshot() {
            return self.snapshots.waiting.push(id);
        }
        let result = match &self.snapshots.latest {
            Some(latest) if self.apply_sent <= Some(latest.last.seq) => Ok(Response::Snapshot { last: latest.last }),
            _ => Err(ClientError::Invalid("nothing applied to snapshot yet".into())),
        };
        self.reply(Origin::Local(id), result);
    }

    /// The driver made the snapshot durable: it is the latest, and the prefix that snapshots
    /// cover goes (all but `snapshot_keep_entries`, and nothing after the previous snapshot).
    pub(super) fn on_snapshot_taken(&mut self, meta: SnapshotMeta) {
        if self.snapshots.taking != Some(meta.last) {
            self.event(Event::Warn(format!("driver bug: {meta} was not asked for; ignored")));
            return;
        }
        self.snapshots.taking = None;
        let last = meta.last;
        let newest = self.snapshots.latest.as_ref().is_none_or(|latest| latest.last.seq < last.seq);
        self.note_snapshot(meta);
        for id in std::mem::take(&mut self.snapshots.waiting) {
            self.reply(Origin::Local(id), Ok(Response::Snapshot { last }));
        }
        if let Some(previous) = self.snapshots.previous.filter(|_| newest) {
            let through = previous.seq.min(Seq(last.seq.0.saturating_sub(self.config.snapshot_keep_entries)));
            self.remove_prefix(through);
        }
    }

    /// Keeps `meta` as the latest durable snapshot (the one before becomes the previous),
    /// unless a newer one is (an install overtook a snapshot being taken).
    fn note_snapshot(&mut self, meta: SnapshotMeta) {
        if self.snapshots.latest.as_ref().is_some_and(|latest| latest.last.seq >= meta.last.seq) {
            return;
        }
        if let Some(latest) = self.snapshots.latest.replace(meta) {
            self.snapshots.previous = Some(latest.last);
        }
    }

    pub(super) fn on_snapshot_failed(&mut self, error: &str) {
        self.snapshots.taking = None;
        self.snapshots.retry_after = self.now.plus(super::raft::duration_nanos(self.config.election_timeout));
        self.event(Event::Warn(format!("taking a snapshot failed (tried again later): {error}")));
        for id in std::mem::take(&mut self.snapshots.waiting) {
            self.reply(Origin::Local(id), Err(ClientError::SnapshotFailed(error.to_string())));
        }
    }

    /// Removes the log's entries at or below `through` (never entries no write carries yet).
    pub(super) fn remove_prefix(&mut self, through: Seq) {
        let mut through = through.min(self.log.last_seq().unwrap_or(Seq(0)));
        if let Some(unwritten) = self.writes.unwritten_from {
            let Some(before) = unwritten.prev() else { return };
            through = through.min(before);
        }
        if !self.config.state_machine {
            // Only what the commit hint can vouch for (committed and durable), so that after
            // a restart the entry kept at `through` is known committed (see `RaftLog::new`).
            let Some(hint) = self.hint_now() else { return };
            through = through.min(hint);
        }
        if through < self.log.first() || self.log.last_seq() < Some(through) {
            return;
        }
        self.log.remove_prefix(through);
        if self.config.state_machine || self.mutant(Mutant::PrefixBaseForgotten) {
            // A snapshot covers the entries removed: restarted, the log continues from it.
            return self.write(Write::RemovePrefix { through });
        }
        // Storage keeps the entry at `through`: restarted, the log continues from it (its
        // term is what an append of the next entry names), once a hard state vouches that it
        // is committed.
        if self.hard_state.commit < Some(through) {
            self.save_hard_state();
            self.flush_hard_state();
        }
        if let Some(before) = through.prev() {
            self.write(Write::RemovePrefix { through: before });
        }
    }

    // ---- restoring ----

    /// The state machine needs entries below the log's first: restore the latest snapshot
    /// (once durable); the entries after it are applied after the restore. Returns whether
    /// applying must wait (an install is being written).
    pub(super) fn restore_if_needed(&mut self) -> bool {
        let from = Seq::after(self.apply_sent);
        if from >= self.log.first() || Some(from) > self.commit {
            return false;
        }
        if self.snapshots.installing > 0 {
            return true; // An install is being written.
        }
        let covers = |meta: &&SnapshotMeta| meta.last.seq.next() >= self.log.first();
        let Some(meta) = self.snapshots.latest.as_ref().filter(covers) else {
            return self.nothing_to_restore(from);
        };
        let meta = meta.clone();
        self.apply_sent = Some(meta.last.seq);
        self.snapshots.applied_config.clone_from(&meta.configuration);
        self.snapshots.restoring = Some(meta.last);
        self.apply_waiting.get_or_insert(DriverWait::since(self.now));
        self.emit(Output::Restore { snapshot: meta });
        true
    }

    /// The state machine needs entries from `from`, below the log's first, and no snapshot
    /// covers them (the prefix went without one, or the snapshots were lost): a stateless
    /// machine starts at the log's first; any other cannot be rebuilt, and the node stops.
    /// Returns whether applying must wait.
    fn nothing_to_restore(&mut self, from: Seq) -> bool {
        if self.failed {
            return true; // Stopped already (said once).
        }
        let first = self.log.first();
        let latest = self.snapshots.latest.as_ref().map_or("none".into(), |meta| meta.last.to_string());
        if self.config.stateless_machine || self.mutant(Mutant::LostStateIgnored) {
            if self.commit < first.prev() && !self.mutant(Mutant::StatelessPastCommit) {
                // Removed entries were committed, but applied never passes the commit point:
                // until it reaches them, an install may still come (and cover them).
                return true;
            }
            self.event(Event::Warn(format!(
                "the log starts at {first} and no snapshot covers the entries before it (latest: {latest}): the \
                 stateless state machine starts applying there"
            )));
            self.apply_sent = first.prev();
            // What a snapshot taken next records: the configuration in force there.
            self.snapshots.applied_config = first.prev().and_then(|seq| self.log.configuration_entry_at(seq));
            if self.applied < self.apply_sent {
                self.applied = self.apply_sent;
                self.event(Event::Apply(first.prev().expect("first > from, so it has a previous")));
                self.after_apply();
            }
            return false;
        }
        self.stop(format!(
            "the state machine needs entries from {from}, but the log starts at {first} and no snapshot covers the \
             entries before it (latest: {latest}): it cannot be rebuilt, node stops (restore the snapshot files, \
             or wipe this node's storage so that it is rebuilt from the leader)"
        ));
        true
    }

    pub(super) fn on_restored(&mut self, last: LogId) {
        if self.snapshots.restoring != Some(last) {
            self.event(Event::Warn(format!("driver bug: unexpected restore report at {last} ignored")));
            return;
        }
        self.snapshots.restoring = None;
        self.applied = self.applied.max(Some(last.seq));
        if self.applied >= self.apply_sent {
            self.apply_waiting = None;
        }
        self.event(Event::Apply(last.seq));
        self.after_apply();
        self.maybe_apply();
    }

    pub(super) fn on_restore_failed(&mut self, error: &str) {
        self.stop(format!("restoring the state machine from a snapshot failed, node stops: {error}"));
    }

    /// The state machine cannot be rebuilt: the node stops (like a failed write), with `why`
    /// as an error event.
    fn stop(&mut self, why: String) {
        self.event(Event::Error(why));
        self.failed = true;
        self.fail_all_requests(ClientError::StorageFailed);
        if self.role.is_leader() {
            let term = self.hard_state.term;
            self.become_follower(self.now, term, None);
        }
    }

    // ---- the leader's side ----

    /// Follower `index` needs entries the log no longer holds: send it the latest snapshot.
    pub(super) fn send_snapshot(&mut self, index: usize) {
        let latest = self.snapshots.latest.clone();
        let first = self.log.first();
        let Some(p) = self.role.leading_mut().map(|leading| &mut leading.progress[index]) else { return };
        if p.snapshot.is_some() {
            return self.pump_snapshot(index);
        }
        match latest.filter(|meta| meta.last.seq.next() >= first) {
            Some(meta) => {
                p.snapshot = Some(Sending::new(meta));
                p.needs_removed = false;
                self.pump_snapshot(index);
            }
            None if !p.needs_removed => {
                p.needs_removed = true;
                let (to, next) = (p.id, p.next);
                self.event(Event::Warn(format!(
                    "follower {to} needs entries from seq {next}, which this log no longer holds (its entries before \
                     {first} were removed), and there is no snapshot to send it: it cannot catch up from this leader"
                )));
            }
            None => {}
        }
    }

    /// Loads the next chunk for follower `index` if its window has room: while clients' appends
    /// wait for commit, one chunk at a time and one per `snapshot_chunk_interval` (the install
    /// takes turns with them).
    fn pump_snapshot(&mut self, index: usize) {
        let (now, interval) = (self.now, super::raft::duration_nanos(self.config.snapshot_chunk_interval));
        let Some(leading) = self.role.leading_mut() else { return };
        let busy = !leading.requests.appends.is_empty();
        let window = if busy { 1 } else { self.config.snapshot_chunks_inflight };
        let p = &mut leading.progress[index];
        let to = p.id;
        let Some(s) = p.snapshot.as_mut() else { return };
        let room = if s.probing { s.chunks.is_empty() } else { s.chunks.len() < window };
        if s.loading || !room || s.end.is_some_and(|end| s.next >= end) {
            return;
        }
        if busy && now < s.not_before {
            let wake = s.not_before;
            leading.snapshot_wake = Some(leading.snapshot_wake.map_or(wake, |at| at.min(wake)));
            return;
        }
        s.not_before = now.plus(interval);
        s.loading = true;
        let (snapshot, offset) = (s.meta.clone(), s.next);
        self.emit(Output::LoadSnapshotChunk { to, snapshot, offset });
    }

    pub(super) fn on_snapshot_chunk_loaded(
        &mut self,
        to: NodeId,
        snapshot: SnapshotMeta,
        offset: u64,
        data: Bytes,
        done: bool,
    ) {
        let Some(index) = self.peers.iter().position(|id| *id == to) else { return };
        let Some(p) = self.role.leading_mut().map(|leading| &mut leading.progress[index]) else { return };
        let Some(s) = p.snapshot.as_mut().filter(|s| s.meta == snapshot && s.loading) else { return };
        s.loading = false;
        if offset != s.next {
            return self.pump_snapshot(index); // It rewound meanwhile.
        }
        s.next = offset + data.len() as u64;
        s.chunks.push_back(s.next);
        if done {
            s.end = Some(s.next);
        }
        let commit = self.commit;
        self.send(to, Body::Snapshot { snapshot: Box::new(snapshot), offset, data, done, commit });
        self.pump_snapshot(index);
    }

    pub(super) fn on_snapshot_load_failed(&mut self, to: NodeId, error: &str) {
        let Some(index) = self.peers.iter().position(|id| *id == to) else { return };
        let Some(p) = self.role.leading_mut().map(|leading| &mut leading.progress[index]) else { return };
        if p.snapshot.take().is_some() {
            self.event(Event::Warn(format!("loading a snapshot chunk for {to} failed (it starts over): {error}")));
        }
    }

    /// Chunks held back while clients waited may go now.
    pub(super) fn snapshot_tick(&mut self, now: Time) {
        let Some(leading) = self.role.leading_mut() else { return };
        if leading.snapshot_wake.is_none_or(|at| now < at) {
            return;
        }
        leading.snapshot_wake = None;
        for index in 0..self.peers.len() {
            self.pump_snapshot(index);
        }
    }

    /// A heartbeat to a follower being sent a snapshot: with no progress over a whole
    /// interval, the chunks out are taken as lost and sent again from what it holds.
    pub(super) fn heartbeat_snapshot(&mut self, index: usize) {
        let Some(p) = self.role.leading_mut().map(|leading| &mut leading.progress[index]) else { return };
        let Some(s) = p.snapshot.as_mut() else { return };
        if s.acked == s.acked_at_heartbeat && !s.loading {
            let acked = s.acked;
            s.rewind(acked);
            s.probing = true;
        }
        s.acked_at_heartbeat = s.acked;
        self.pump_snapshot(index);
    }

    /// A follower answers a snapshot chunk.
    pub(super) fn on_snapshot_response(
        &mut self,
        now: Time,
        from: NodeId,
        last: LogId,
        digest: u64,
        next: u64,
        installed: bool,
    ) {
        let Some(index) = self.peers.iter().position(|id| *id == from) else { return };
        let first = self.log.first();
        let known = self.log.has(last) || last.seq < first;
        let Some(leading) = self.role.leading_mut() else { return };
        let p = &mut leading.progress[index];
        if p.heard(now) {
            self.heard_version += 1;
        }
        let same = p.snapshot.as_ref().is_some_and(|s| s.meta.last == last && s.meta.digest == digest);
        if installed && known {
            // Its log continues after `last`, which is committed: appends go on from there.
            p.snapshot = None;
            p.matched = p.matched.max(Some(last.seq));
            p.probing = false;
            p.paused = false;
            p.inflight.clear();
            p.inflight_bytes = 0;
            p.next = Seq::after(p.matched);
            self.maybe_commit();
            self.send_append(index);
            return;
        }
        let Some(s) = p.snapshot.as_mut().filter(|_| same) else { return };
        s.probing = false;
        let progressed = next > s.acked;
        if progressed {
            s.acked = next;
            s.rewound = None;
            while s.chunks.front().is_some_and(|end| *end <= next) {
                s.chunks.pop_front();
            }
        }
        if next > s.next || next < s.acked {
            // It holds more than was sent (a resumed install), or lost what it had (a restart).
            s.acked = next;
            s.rewind(next);
        } else if !progressed && next < s.next && s.rewound != Some(next) && !s.chunks.is_empty() {
            // No progress: a chunk was lost and what follows it was refused. Once per gap.
            s.rewound = Some(next);
            s.rewind(next);
        }
        self.pump_snapshot(index);
    }

    // ---- the follower's side ----

    /// A chunk of the leader's snapshot; `done` with the leader's commit point.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_snapshot(
        &mut self,
        now: Time,
        from: NodeId,
        term: Term,
        snapshot: SnapshotMeta,
        offset: u64,
        data: Bytes,
        done: bool,
        leader_commit: Option<Seq>,
    ) {
        if !self.heard_from_leader(now, from, term) {
            return;
        }
        let config_ok = snapshot.configuration.as_ref().is_none_or(|entry| entry.seq <= snapshot.last.seq);
        if snapshot.last.term > term || !config_ok || offset.checked_add(data.len() as u64).is_none() {
            self.event(Event::Warn(format!("dropped a malformed snapshot chunk from {from}")));
            return;
        }
        let last = snapshot.last;
        let (digest, covered) = (snapshot.digest, self.covered(last));
        if covered && !self.mutant(Mutant::InstallOverNewer) {
            // Its log holds the snapshot's entries already (or a later snapshot of its own).
            return self.answer_snapshot(from, last, digest, 0, true);
        }
        let same = self.snapshots.receiving.as_ref().is_some_and(|r| r.meta == snapshot);
        if !same && offset == 0 {
            self.snapshots.receiving = Some(Receiving { meta: snapshot.clone(), written: 0, done: false });
        }
        let skips = self.mutant(Mutant::ResumeSkipsChunk);
        let Some(r) = self.snapshots.receiving.as_mut().filter(|r| r.meta == snapshot) else {
            return self.answer_snapshot(from, last, digest, 0, false);
        };
        let takes = offset == r.written || (offset > r.written && skips);
        if r.done || !takes {
            let (written, done) = (r.written, r.done);
            return self.answer_snapshot(from, last, digest, written, done);
        }
        r.written = offset + data.len() as u64;
        r.done = done;
        let written = r.written;
        if offset == 0 || !data.is_empty() {
            self.write(Write::SnapshotChunk { snapshot: Box::new(snapshot.clone()), offset, data });
        }
        if done {
            self.install_snapshot(snapshot);
            // A catching-up node whose install reaches the leader's commit point (in the
            // leader's term) has caught up, once the install is durable.
            self.maybe_caught_up(term, leader_commit, Some(last.seq));
        }
        self.answer_snapshot(from, last, digest, written, done);
    }

    /// What every message from the leader of `term` does first; false if the node takes
    /// nothing from it: it may have promised a later term before it lost data, so it takes
    /// nothing until its peers' answers show the current term (see `rejoin.rs`); it asks
    /// again those that have not answered.
    pub(super) fn heard_from_leader(&mut self, now: Time, from: NodeId, term: Term) -> bool {
        if self.role.is_leader() {
            self.event(Event::Error(format!("two leaders in term {term}: {} and {from}", self.id)));
            return false;
        }
        if self.hard_state.catching_up && !self.rejoining.term_confirmed && !self.mutant(Mutant::CatchingUpAcks) {
            self.probe_term();
            return false;
        }
        if self.leader != Some(from) || self.role.kind() != super::types::Role::Follower {
            self.become_follower(now, term, Some(from));
        }
        self.last_leader_contact = Some(now);
        self.reset_election_deadline(now);
        if !self.client_waiting_is_empty() {
            self.redispatch_waiting();
        }
        true
    }

    /// Whether this node's log (or its own snapshot) covers a snapshot ending at `last`.
    fn covered(&self, last: LogId) -> bool {
        let own = self.snapshots.latest.as_ref().is_some_and(|meta| meta.last.seq >= last.seq);
        self.log.has(last) || Some(last.seq) <= self.commit || own
    }

    /// Answers a snapshot chunk once what was written so far is durable.
    fn answer_snapshot(&mut self, to: NodeId, last: LogId, digest: u64, next: u64, installed: bool) {
        let response = self.message(to, Body::SnapshotResponse { last, digest, next, installed });
        self.after_writes(AfterWrite::Send(response));
    }

    /// The last chunk of `snapshot` is written: the log continues after it (every entry it
    /// holds is covered by it, or does not follow it), its configuration is in force, and the
    /// state machine is restored from it once the install is durable.
    fn install_snapshot(&mut self, snapshot: SnapshotMeta) {
        let last = snapshot.last;
        self.drop_unwritten(self.log.first());
        self.log.reset_to(&snapshot);
        self.snapshots.installing += 1;
        self.write(Write::InstallSnapshot { snapshot: Box::new(snapshot.clone()) });
        self.evidence_forget_through(last.seq);
        if Some(last.seq) > self.commit {
            self.commit = Some(last.seq);
            self.event(Event::Commit(last.seq));
        }
        self.sync_configuration();
        self.after_writes(AfterWrite::Installed(snapshot));
    }

    /// The install is durable.
    pub(super) fn installed(&mut self, snapshot: SnapshotMeta) {
        self.snapshots.installing = self.snapshots.installing.saturating_sub(1);
        self.snapshots.receiving = None;
        let last = snapshot.last;
        self.note_snapshot(snapshot);
        self.event(Event::Warn(format!("node {} installed the leader's snapshot at {last}", self.id)));
        self.maybe_apply();
    }

    /// At the first step: storage holds only entries the latest snapshot covers (the log was
    /// not durable past them when the node stopped): reset it to continue after the snapshot.
    pub(super) fn reset_storage_to_snapshot(&mut self) {
        if std::mem::take(&mut self.snapshots.reset_storage) {
            if let Some(snapshot) = self.snapshots.latest.clone() {
                self.write(Write::InstallSnapshot { snapshot: Box::new(snapshot) });
            }
        }
    }
}
