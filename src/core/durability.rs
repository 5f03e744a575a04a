//! Durability: the storage writes a core issues, in order, and what waits for them (messages
//! that promise durability, handed to the driver bound to their write; a candidate's own vote,
//! a catching-up node's return). New entries are written in one write when none is in flight
//! (group commit); a write that outlasts `storage_stall_timeout` stops the node leading; a
//! failed write stops the node.

use super::io::{ClientError, Event, Output, Write};
use super::message::Message;
use super::mutant::Mutant;
use super::raft::{duration_nanos, Raft};
use super::types::{LogId, Role, Seq, Term, Time, WriteId};
use std::collections::VecDeque;

/// Something to do once a write is durable.
#[derive(Clone, Debug)]
pub(crate) enum AfterWrite {
    /// Send a message that promises durability (a vote, an append acknowledgement).
    Send(Message),
    /// The candidate's vote for itself in this term is durable: count it.
    SelfVote(Term),
    /// The entries that brought a catching-up node to its leader's commit point are durable:
    /// it may vote again.
    CaughtUp(Term, Seq),
    /// A snapshot received from the leader is installed: restore the state machine from it.
    Installed(super::types::SnapshotMeta),
}

/// The writes a core issued and the driver has not yet reported durable.
#[derive(Debug)]
pub(super) struct Writes {
    /// The id of the last write issued.
    last_write: u64,
    /// The id of the last write the driver reported durable.
    done_write: u64,
    /// Log writes in flight, each with where the log ends on disk once it is done.
    pending_writes: VecDeque<(u64, Option<LogId>)>,
    /// Truncations in flight, each with the seq it cuts from.
    pending_truncates: VecDeque<(u64, Seq)>,
    /// The seq after the last entry the writes issued so far leave in storage: where the next
    /// entries write must start (checked in debug builds).
    issued_end: u64,
    /// Actions waiting for a write (by id) to be durable.
    after_write: VecDeque<(u64, AfterWrite)>,
    /// The last entry known durable.
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
    /// When the commit hint was last saved with the hard state.
    hint_saved_at: Time,
    /// Actions waiting for the unwritten entries: bound to their write's id when it is issued,
    /// dropped if the entries are dropped first.
    after_unwritten: Vec<AfterWrite>,
}

impl Writes {
    /// No write in flight; `durable_last` is the recovered log's last entry, and `end` the
    /// seq after it (the log's first, if it holds none: its prefix was removed).
    pub(super) fn new(durable_last: Option<LogId>, end: Seq) -> Writes {
        Writes {
            last_write: 0,
            done_write: 0,
            pending_writes: VecDeque::new(),
            pending_truncates: VecDeque::new(),
            issued_end: end.0,
            after_write: VecDeque::new(),
            durable_last,
            owed_since: None,
            stalled: false,
            hard_state_dirty: false,
            unwritten_from: None,
            after_unwritten: Vec::new(),
            hint_saved_at: Time(0),
        }
    }

    /// Whether every write issued is durable.
    pub(super) fn idle(&self) -> bool {
        self.done_write == self.last_write
    }
}

impl Raft {
    /// Issues a storage write. The in-memory state must already reflect it.
    pub(super) fn write(&mut self, write: Write) {
        debug_assert!(self.started, "writes are issued from steps, never from Raft::new");
        if !matches!(write, Write::HardState(_)) {
            self.flush_hard_state();
        }
        if self.writes.done_write == self.writes.last_write {
            self.writes.owed_since = Some(self.now);
        }
        self.writes.last_write += 1;
        let id = self.writes.last_write;
        match &write {
            Write::Truncate { from } => {
                self.writes.pending_truncates.push_back((id, *from));
                self.writes.issued_end = self.writes.issued_end.min(from.0);
            }
            Write::Entries(entries) => {
                let (first, last) = (entries.first().map(|e| e.seq.0), entries.last().map(|e| e.seq.0));
                debug_assert_eq!(
                    first,
                    Some(self.writes.issued_end),
                    "invariant: entries are written where the log ends"
                );
                self.writes.issued_end = last.map_or(self.writes.issued_end, |last| last + 1);
            }
            Write::InstallSnapshot { snapshot } => {
                // Until it is durable, storage holds none of the log as it now is.
                self.writes.pending_truncates.push_back((id, Seq(0)));
                self.writes.issued_end = snapshot.last.seq.0 + 1;
            }
            Write::HardState(_)
            | Write::Configuration(_)
            | Write::RemovePrefix { .. }
            | Write::SnapshotChunk { .. } => {}
        }
        if matches!(write, Write::Entries(_) | Write::Truncate { .. } | Write::InstallSnapshot { .. }) {
            self.writes.pending_writes.push_back((id, self.log.last()));
        }
        self.out.push(Output::Write { id: WriteId(id), write });
    }

    /// Saves the hard state (after changing it in memory): the write is issued before the next
    /// write or durability-dependent message, or at the end of the step.
    pub(super) fn save_hard_state(&mut self) {
        self.writes.hard_state_dirty = true;
    }

    /// Issues the hard state's write, if it changed since the last one, with the commit hint
    /// brought up to date.
    pub(super) fn flush_hard_state(&mut self) {
        if self.writes.hard_state_dirty {
            self.writes.hard_state_dirty = false;
            self.hard_state.commit = self.hard_state.commit.max(self.hint_now());
            self.writes.hint_saved_at = self.now;
            self.write(Write::HardState(self.hard_state));
        }
    }

    /// The commit hint that may be saved now: the commit point, but no further than what is
    /// durable and agrees with memory, so that every entry storage holds up to it is committed
    /// whatever becomes of the writes in flight.
    pub(super) fn hint_now(&self) -> Option<Seq> {
        self.commit.min(self.durable_match())
    }

    /// Saves the hard state for its commit hint when the hint is behind, at most once per
    /// heartbeat interval (an extra small synced write then, none under a steady load of
    /// hard-state writes).
    pub(super) fn refresh_commit_hint(&mut self, now: Time) {
        let every = duration_nanos(self.config.heartbeat_interval());
        if self.hint_now() > self.hard_state.commit && now.since(self.writes.hint_saved_at) >= every && !self.failed {
            self.save_hard_state();
        }
    }

    /// Marks the log's entries from `from` on as not yet written.
    pub(super) fn mark_unwritten(&mut self, from: Seq) {
        self.writes.unwritten_from = Some(self.writes.unwritten_from.map_or(from, |u| u.min(from)));
    }

    /// Issues one write for every entry not yet written.
    pub(super) fn flush_entries(&mut self) {
        let Some(from) = self.writes.unwritten_from.take() else { return };
        let entries = self.log.slice(from, usize::MAX, usize::MAX).expect("unwritten entries are never evicted");
        assert!(!entries.is_empty(), "invariant: unwritten_from is cleared when its entries are dropped");
        self.write(Write::Entries(entries));
        let id = self.writes.last_write;
        for action in std::mem::take(&mut self.writes.after_unwritten) {
            self.bind_after_write(id, action);
        }
    }

    /// Drops the unwritten entries from `from` on (a truncation), and with them every action
    /// waiting for unwritten entries: an acknowledgement is never sent for entries never written.
    pub(super) fn drop_unwritten(&mut self, from: Seq) {
        if self.writes.unwritten_from.is_some_and(|unwritten| from <= unwritten) {
            self.writes.unwritten_from = None;
        }
        self.writes.after_unwritten.clear();
    }

    /// Does `action` once every write issued so far, and the entries not yet written, are
    /// durable (at once if they are).
    pub(super) fn after_writes(&mut self, action: AfterWrite) {
        self.flush_hard_state();
        if self.writes.unwritten_from.is_some() {
            self.writes.after_unwritten.push(action);
        } else if self.writes.done_write == self.writes.last_write {
            self.run_after_write(action);
        } else {
            self.bind_after_write(self.writes.last_write, action);
        }
    }

    /// Binds `action` to write `id`: a message goes to the driver at once, which sends it when
    /// the write is durable (without a round through the core: a follower's acknowledgement
    /// leaves as soon as its entries are synced); anything else waits here for the report.
    fn bind_after_write(&mut self, id: u64, action: AfterWrite) {
        match action {
            AfterWrite::Send(message) => {
                let id = if self.mutant(Mutant::SendAfterEarlierWrite) { id - 1 } else { id };
                self.out.push(Output::SendAfter { write: WriteId(id), message });
            }
            action => self.writes.after_write.push_back((id, action)),
        }
    }

    fn run_after_write(&mut self, action: AfterWrite) {
        match action {
            AfterWrite::Send(message) => self.out.push(Output::Send(message)),
            AfterWrite::SelfVote(term) => {
                if self.hard_state.term == term {
                    self.record_vote(self.id);
                }
            }
            AfterWrite::CaughtUp(term, commit) => self.caught_up(term, commit),
            AfterWrite::Installed(snapshot) => self.installed(snapshot),
        }
    }

    pub(super) fn on_write_done(&mut self, id: u64) {
        if id <= self.writes.done_write || id > self.writes.last_write {
            self.event(Event::Warn(format!("driver bug: completion of unknown write w{id} ignored")));
            return;
        }
        self.writes.done_write = id;
        if self.writes.stalled {
            self.writes.stalled = false;
            let waited = self.now.0.saturating_sub(self.writes.owed_since.map_or(0, |t| t.0)) as f64 / 1e9;
            self.event(Event::Warn(format!("storage recovered: writes up to w{id} durable after {waited:.1} s")));
            if !self.role.is_leader() && !self.failed {
                self.reset_election_deadline(self.now);
            }
        }
        // The writes after `id` are owed from now on (the storage starts on them now).
        self.writes.owed_since = (id < self.writes.last_write).then_some(self.now);
        while let Some((_, last)) = self.writes.pending_writes.front().copied().filter(|(w, _)| *w <= id) {
            self.writes.pending_writes.pop_front();
            self.writes.durable_last = last;
        }
        while self.writes.pending_truncates.front().is_some_and(|(w, _)| *w <= id) {
            self.writes.pending_truncates.pop_front();
        }
        while let Some((w, _)) = self.writes.after_write.front() {
            if *w > id {
                break;
            }
            let (_, action) = self.writes.after_write.pop_front().expect("checked by front()");
            if self.failed {
                continue;
            }
            self.run_after_write(action);
        }
        if self.role.is_leader() {
            self.maybe_commit();
        }
        self.evict();
    }

    /// The write in flight outlasted `storage_stall_timeout`: report it and stop leading (a
    /// leader that cannot make entries durable holds up every commit that needs it).
    pub(super) fn storage_stalled(&mut self, now: Time) {
        self.writes.stalled = true;
        let waited = now.0.saturating_sub(self.writes.owed_since.map_or(0, |t| t.0)) as f64 / 1e9;
        let write = self.writes.done_write + 1;
        let role = self.role.kind();
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
    /// over); the entries are asked for again when they are next needed, and those the state
    /// machine waits for after a heartbeat interval.
    pub(super) fn on_load_failed(&mut self, now: Time, error: &str) {
        self.load_waiting = None;
        self.load_retry_at = Some(now.plus(duration_nanos(self.config.heartbeat_interval())));
        self.event(Event::Error(format!("loading entries from storage failed: {error}")));
        if self.role.is_leader() {
            let term = self.hard_state.term;
            self.event(Event::Warn(format!(
                "leader {} steps down in term {term}: it cannot read its own log to replicate it",
                self.id
            )));
            self.become_follower(now, term, None);
        }
    }

    pub(super) fn on_write_failed(&mut self, now: Time, id: u64, error: &str) {
        self.event(Event::Error(format!("storage write w{id} failed, node stops: {error}")));
        self.failed = true;
        self.writes.after_write.clear();
        self.writes.unwritten_from = None;
        self.writes.after_unwritten.clear();
        if self.role.kind() != Role::Follower {
            let term = self.hard_state.term;
            self.become_follower(now, term, None);
        }
        self.fail_all_requests(ClientError::StorageFailed);
    }

    /// The highest seq up to which this node's log is durable and agrees with memory.
    pub(super) fn durable_match(&self) -> Option<Seq> {
        let durable = self.writes.durable_last.map(|id| id.seq);
        match self.writes.pending_truncates.iter().map(|(_, from)| *from).min() {
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

    /// When the write in flight counts as stalled (if it is not yet).
    pub(super) fn stall_deadline(&self) -> Option<Time> {
        let timeout = self.config.storage_stall_timeout?;
        let since = self.writes.owed_since.filter(|_| !self.writes.stalled && !self.failed)?;
        Some(Time(since.0.saturating_add(duration_nanos(timeout))))
    }
}
