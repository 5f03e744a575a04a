//! Log replication (Raft §5.3) and commitment (§5.4.2): the leader's per-follower progress,
//! pipelined appends with conflict hints, the follower's side, and the commit point.

use super::durability::AfterWrite;
use super::io::{Event, Output, Write};
use super::log::NotInMemory;
use super::message::{AppendResult, Body};
use super::mutant::Mutant;
use super::raft::{DriverWait, Raft};
use super::types::{Entry, LogId, NodeId, Payload, Seq, Term, Time};
use std::collections::VecDeque;

/// What the leader knows of one follower.
#[derive(Debug)]
pub(crate) struct Progress {
    pub(crate) id: NodeId,
    /// The highest seq known to match the leader's log (durable on the follower).
    pub(crate) matched: Option<Seq>,
    /// The next seq to send.
    pub(crate) next: Seq,
    /// Probing: one append at a time until the follower's log is found to match.
    pub(crate) probing: bool,
    /// While probing, an append is out and unanswered.
    pub(crate) paused: bool,
    /// Unacknowledged appends while replicating: (last seq, payload bytes).
    pub(crate) inflight: VecDeque<(Seq, usize)>,
    pub(crate) inflight_bytes: usize,
    /// When the follower last answered in this term (when it started being tracked, before).
    pub(crate) last_heard: Time,
    /// Whether it answered at all in this term.
    pub(crate) answered: bool,
    /// The highest read round the follower echoed.
    pub(crate) read_round: u64,
    /// It rejected entries it had acknowledged: it is told to catch up (with each heartbeat)
    /// until it holds this, the commit point when that was found.
    pub(crate) lost_data: Option<Seq>,
    /// The incarnation of its latest acknowledgement.
    pub(crate) incarnation: Option<u64>,
    /// It needs entries the log no longer holds: the snapshot being sent to it.
    pub(crate) snapshot: Option<super::snapshot::Sending>,
    /// It needs entries the log no longer holds and there is no snapshot (said once).
    pub(crate) needs_removed: bool,
    /// Its latest acknowledgement said it is catching up after losing data (it does not vote).
    pub(crate) catching_up: bool,
}

impl Progress {
    pub(crate) fn new(id: NodeId, next: Seq, now: Time) -> Progress {
        Progress {
            id,
            matched: None,
            next,
            probing: true,
            paused: false,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            last_heard: now,
            answered: false,
            read_round: 0,
            lost_data: None,
            incarnation: None,
            snapshot: None,
            needs_removed: false,
            catching_up: false,
        }
    }

    /// Whether the follower answered within the last `window` nanoseconds.
    pub(crate) fn answered_within(&self, now: Time, window: u64) -> bool {
        now.since(self.last_heard) < window
    }

    /// The follower answered at `now`; returns whether its last answer time changed.
    pub(crate) fn heard(&mut self, now: Time) -> bool {
        self.answered = true;
        std::mem::replace(&mut self.last_heard, now) != now
    }

    fn inflight_entries(&self) -> u64 {
        match self.inflight.front() {
            Some(_) => self.next.0 - Seq::after(self.matched).0,
            None => 0,
        }
    }

    fn acknowledge(&mut self, matched: Option<Seq>) {
        self.matched = self.matched.max(matched);
        while let Some((last, bytes)) = self.inflight.front().copied() {
            if Some(last) > self.matched {
                break;
            }
            self.inflight.pop_front();
            self.inflight_bytes -= bytes;
        }
        self.next = self.next.max(Seq::after(self.matched));
    }

    fn start_probe(&mut self, next: Seq) {
        self.probing = true;
        self.paused = false;
        self.inflight.clear();
        self.inflight_bytes = 0;
        self.next = next;
    }
}

impl Raft {
    /// Appends payloads to the leader's log in its term and writes them. Returns their seqs.
    pub(super) fn leader_append_entries(&mut self, payloads: impl Iterator<Item = Payload>) -> (Seq, Seq) {
        let term = self.hard_state.term;
        let first = self.log.next_seq();
        for (offset, payload) in payloads.enumerate() {
            self.log.push(Entry { term, seq: Seq(first.0 + offset as u64), payload });
        }
        self.sync_configuration();
        let last = self.log.last_seq().filter(|last| *last >= first).expect("leader appends at least one entry");
        self.mark_unwritten(first);
        (first, last)
    }

    /// Sends whatever each follower's window allows (at the end of the step: the entries of
    /// every input handled in it go together).
    pub(super) fn broadcast_append(&mut self) {
        if self.in_step {
            self.broadcast_due = true;
            return;
        }
        for index in 0..self.peers.len() {
            if self.may_send(index) {
                self.send_append(index);
            }
        }
    }

    /// Whether a follower can take entries now: it is not waiting on a probe, has room in its
    /// message window, and lacks some. Cheap, as under load most windows are full.
    #[inline]
    fn may_send(&self, index: usize) -> bool {
        let Some(leading) = self.role.leading() else { return false };
        let p = &leading.progress[index];
        let full = p.paused || (!p.probing && p.inflight.len() >= self.window(leading, p));
        !full && p.snapshot.is_none() && Some(p.next) <= self.log.last_seq()
    }

    /// How many appends may be out to follower `p`: `Config::inflight_messages_max`, but one
    /// to a learner that lags behind the commit point while clients wait for commits (its
    /// catch-up then takes turns with the clients' appends instead of crowding them out).
    #[inline]
    fn window(&self, leading: &super::role::LeaderState, p: &Progress) -> usize {
        match self.throttled(leading, p) {
            true => 1,
            false => self.config.inflight_messages_max,
        }
    }

    /// Whether follower `p` is a learner behind the commit point while clients wait.
    #[inline]
    fn throttled(&self, leading: &super::role::LeaderState, p: &Progress) -> bool {
        p.matched < self.commit && !leading.requests.appends.is_empty() && !self.is_voter(p.id)
    }

    /// Sends appends to one follower while its window has room.
    pub(super) fn send_append(&mut self, index: usize) {
        while self.may_send(index) {
            let Some(p) = self.role.leading().map(|leading| &leading.progress[index]) else { return };
            let window_entries = self.config.inflight_entries_max as u64;
            let window_full =
                p.inflight_entries() >= window_entries || p.inflight_bytes >= self.config.inflight_bytes_max;
            if !p.probing && window_full {
                return;
            }
            let room = (window_entries - p.inflight_entries().min(window_entries)).max(1) as usize;
            let throttled = self.role.leading().is_some_and(|leading| self.throttled(leading, p));
            let per_message =
                if throttled { (self.config.rpc_entries_max / 4).max(1) } else { self.config.rpc_entries_max };
            let count = per_message.min(room);
            let (to, next, probing) = (p.id, p.next, p.probing);
            if !self.log.can_send_from(next) {
                return self.send_snapshot(index);
            }
            let entries = match self.log.slice(next, count, self.config.rpc_bytes_max) {
                Ok(entries) => entries,
                Err(NotInMemory(seq)) => return self.request_load(seq),
            };
            let sent_last = entries.last().expect("next <= last, so at least one entry").seq;
            let bytes: usize = entries.iter().map(|e| e.payload.len()).sum();
            self.send_entries(to, next, entries);
            let Some(p) = self.role.leading_mut().map(|leading| &mut leading.progress[index]) else { return };
            if probing {
                p.paused = true;
                return;
            }
            p.inflight.push_back((sent_last, bytes));
            p.inflight_bytes += bytes;
            p.next = sent_last.next();
        }
    }

    /// Sends entries starting at `first` (or none: a heartbeat just before `first`).
    pub(super) fn send_entries(&mut self, to: NodeId, first: Seq, entries: Vec<Entry>) {
        let prev = first.prev().and_then(|seq| self.log.id_at(seq));
        let Some(leading) = self.role.leading() else { return };
        let read_round = leading.requests.read_round;
        self.send(to, Body::Append { prev, entries, commit: self.commit, read_round });
    }

    /// A heartbeat to one follower: an empty append just before the next entry it would get
    /// (a follower that lost some of the pipelined appends rejects it, which starts a probe), or
    /// a new probe, plus whatever new entries its window allows.
    pub(super) fn heartbeat_peer(&mut self, index: usize) {
        let Some(p) = self.role.leading_mut().map(|leading| &mut leading.progress[index]) else { return };
        p.lost_data = p.lost_data.filter(|commit| p.matched < Some(*commit));
        if let Some(commit) = p.lost_data {
            let to = p.id;
            self.send_catch_up(to, commit);
        }
        let Some(p) = self.role.leading_mut().map(|leading| &mut leading.progress[index]) else { return };
        p.paused = false;
        let (to, probing, next) = (p.id, p.probing, p.next);
        if p.snapshot.is_some() {
            return self.heartbeat_snapshot(index);
        }
        if !self.log.can_send_from(next) {
            self.send_snapshot(index);
            return self.heartbeat_stranded(index);
        }
        if probing && Some(next) <= self.log.last_seq() {
            return self.send_append(index);
        }
        self.send_entries(to, next, Vec::new());
        if probing {
            if let Some(leading) = self.role.leading_mut() {
                leading.progress[index].paused = true;
            }
        } else {
            self.send_append(index);
        }
    }

    /// A heartbeat to a follower that needs entries this log no longer holds, with no snapshot
    /// to send it: an empty append just before the log's first entry. It rejects it, but knows
    /// its leader (it forwards requests to it and does not campaign), and its answer counts as
    /// contact for check-quorum and read rounds; if it holds that entry after all (the leader
    /// probed too low), it takes appends again from there.
    fn heartbeat_stranded(&mut self, index: usize) {
        let Some(p) = self.role.leading().map(|leading| &leading.progress[index]) else { return };
        let (to, first) = (p.id, self.log.first());
        if p.needs_removed && self.log.can_send_from(first) && !self.mutant(Mutant::StrandedUnheard) {
            self.send_entries(to, first, Vec::new());
        }
    }

    /// A follower (or candidate) receives an append from the leader of its term.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_append(
        &mut self,
        now: Time,
        from: NodeId,
        term: Term,
        prev: Option<LogId>,
        entries: Vec<Entry>,
        leader_commit: Option<Seq>,
        read_round: u64,
    ) {
        if !self.heard_from_leader(now, from, term) {
            return;
        }
        if let Err(why) = check_entries(term, prev, &entries) {
            self.event(Event::Warn(format!("dropped a malformed append from {from}: {why}")));
            return;
        }
        let matched = entries.last().map(|e| e.seq).or(prev.map(|p| p.seq));
        let mut entries = entries;
        // The entry just before the log's first, when the log does not know its term (a log
        // without a state machine whose storage lost the entry it kept there, see
        // `Write::RemovePrefix`): removed, so committed, so the leader's agrees.
        let unknown_base = prev.is_some_and(|p| p.seq.next() == self.log.first() && self.log.term_at(p.seq).is_none())
            && !self.mutant(Mutant::UnknownBaseRejected);
        if Seq::after(prev.map(|p| p.seq)) < self.log.first() || unknown_base {
            // Entries below the log's first are committed here (a snapshot covers them, or
            // they were removed, which only committed entries are), so they match the
            // leader's: only the rest is new.
            let first = self.log.first();
            let below = entries.iter().take_while(|e| e.seq < first).count();
            // The last of them is the snapshot's last entry: a leader's agrees (it is committed).
            let sent = entries[..below].last().map(Entry::id);
            let disagreeing = sent.and_then(|sent| Some((sent, self.log.term_at(sent.seq)?)));
            if let Some((sent, kept)) = disagreeing.filter(|(sent, kept)| sent.term != *kept) {
                // A faulty or hostile peer: keeping the rest would put lower terms after the
                // snapshot's.
                let error = format!("leader {from} sent entry {sent} where the snapshot has term {kept}; ignored");
                self.event(Event::Error(error));
                return;
            }
            entries.drain(..below);
        } else if let Some(prev) = prev {
            if !self.log.has(prev) {
                let hint = self.log.hint(prev.seq, prev.term);
                let result = AppendResult::Rejected { rejected: prev.seq, hint };
                let incarnation = self.client.incarnation;
                self.send(from, Body::AppendResponse { read_round, result, incarnation });
                return;
            }
        }
        // Skip what the log already has: a stale or duplicated append must never truncate.
        let known = match self.mutant(Mutant::TruncateOnStaleAppend) {
            true => 0,
            false => entries.iter().take_while(|e| self.log.term_at(e.seq) == Some(e.term)).count(),
        };
        if known < entries.len() {
            let first_new = entries[known].seq;
            if self.contradicts_evidence(from, &entries[known..]) {
                return;
            }
            if Some(first_new) <= self.log.last_seq() {
                if Some(first_new) <= self.commit.max(self.hard_state.commit) {
                    self.event(Event::Error(format!(
                        "leader {from} sent an entry conflicting with committed seq {first_new}; ignored"
                    )));
                    return;
                }
                self.truncate_log(first_new);
            }
            let mut entries = entries;
            self.log.extend(entries.drain(known..));
            self.mark_unwritten(first_new);
            self.sync_configuration();
        }
        let commit = leader_commit.min(matched);
        if commit > self.commit {
            self.advance_commit(commit);
        }
        self.maybe_caught_up(term, leader_commit, matched);
        let result = AppendResult::Accepted { matched, catching_up: self.hard_state.catching_up };
        let incarnation = self.client.incarnation;
        let body = Body::AppendResponse { read_round, result, incarnation };
        if self.mutant(Mutant::AckBeforeFsync) {
            return self.send(from, body);
        }
        let response = self.message(from, body);
        self.after_writes(AfterWrite::Send(response));
    }

    /// Removes entries from `from` on, in memory and (if any may be there) on disk.
    fn truncate_log(&mut self, from: Seq) {
        self.log.truncate(from);
        self.sync_configuration();
        // When only entries no write carried yet are dropped, there is nothing to undo on disk.
        let only_unwritten = self.writes.unwritten_from.is_some_and(|unwritten| from >= unwritten);
        self.drop_unwritten(from);
        if !only_unwritten {
            self.write(Write::Truncate { from });
        }
    }

    /// The leader hears back from a follower of its term.
    pub(super) fn on_append_response(
        &mut self,
        now: Time,
        from: NodeId,
        read_round: u64,
        result: AppendResult,
        incarnation: u64,
    ) {
        let Some(index) = self.peers.iter().position(|id| *id == from) else { return };
        let ignore_regressed = self.mutant(Mutant::IgnoreRegressedFollower);
        let Some(leading) = self.role.leading_mut() else { return };
        let p = &mut leading.progress[index];
        if p.heard(now) {
            self.heard_version += 1;
        }
        p.read_round = p.read_round.max(read_round);
        if p.snapshot.is_some() {
            // An answer from before the snapshot was found needed: the snapshot's answers decide.
            self.confirm_reads();
            return;
        }
        match result {
            AppendResult::Accepted { matched, catching_up } => {
                if matched > self.log.last_seq() {
                    self.event(Event::Warn(format!("follower {from} acknowledged seqs the leader does not have")));
                    return;
                }
                // The incarnation that acknowledged the match point: a later one that only
                // acknowledges less (an old append, delivered late) does not take it over, so
                // that its rejection of what the earlier one held shows it lost data.
                if matched >= p.matched {
                    p.incarnation = Some(incarnation);
                }
                // Still stranded if what it holds ends before what the log can send from (it
                // answered a heartbeat at its match point, as read rounds send).
                p.needs_removed = p.needs_removed && !self.log.can_send_from(Seq::after(matched));
                p.catching_up = catching_up;
                p.acknowledge(matched);
                // Only the answer to the probe itself (at next - 1 or beyond) ends probing.
                if p.probing && matched >= p.next.prev() {
                    p.probing = false;
                    p.paused = false;
                    p.next = Seq::after(p.matched);
                }
            }
            AppendResult::Rejected { rejected, hint } => {
                if p.probing && Some(rejected) != p.next.prev() {
                    return; // Stale: answers an append sent before the current probe.
                }
                if Some(rejected) <= p.matched {
                    // Only a restarted node can lack an entry it acknowledged (it lost data);
                    // from the incarnation that acknowledged it, this answer is an old one.
                    if ignore_regressed || p.incarnation == Some(incarnation) {
                        return;
                    }
                    // A probe finds where it stands; its match no longer counts toward commit.
                    let matched = p.matched.expect("rejected <= matched, so matched is some seq");
                    p.matched = None;
                    p.lost_data = self.commit;
                    self.event(Event::Warn(format!(
                        "follower {from} restarted without entries it had acknowledged (it rejected seq {rejected}, \
                         it had acknowledged up to {matched}): it lost data; rebuilding it, and it catches up before \
                         it votes"
                    )));
                    if let Some(commit) = self.commit {
                        self.send_catch_up(from, commit);
                    }
                }
                let Some(p) = self.role.leading_mut().map(|l| &mut l.progress[index]) else { return };
                let resume = hint.and_then(|h| self.log.hint(h.seq, h.term));
                let next = Seq::after(resume.map(|id| id.seq)).min(rejected).max(Seq::after(p.matched));
                p.start_probe(next);
            }
        }
        self.maybe_commit();
        self.confirm_reads();
        // A commit may have changed the peers (a configuration that removed some committed).
        if let Some(index) = self.peers.iter().position(|id| *id == from) {
            self.send_append(index);
        }
        self.advance_transfer();
        self.advance_change();
    }

    /// Recomputes the leader's commit point from the match points (Raft §5.3, §5.4.2).
    pub(super) fn maybe_commit(&mut self) {
        let Some(leading) = self.role.leading() else { return };
        let own = self.durable_match();
        let matched = |id: NodeId| match leading.progress.iter().find(|p| p.id == id) {
            Some(p) => p.matched,
            None if id == self.id => own,
            None => None,
        };
        let point = self.quorum_point(matched);
        // Only an entry of the leader's own term is committed by counting (Figure 8).
        let own_term = point.and_then(|seq| self.log.term_at(seq)) == Some(self.hard_state.term);
        if point > self.commit && (own_term || self.mutant(Mutant::CommitPreviousTerm)) {
            self.advance_commit(point);
        }
    }

    /// Moves the commit point forward and lets the state machine catch up.
    pub(super) fn advance_commit(&mut self, commit: Option<Seq>) {
        let seq = commit.expect("a commit point that advanced is some seq");
        self.commit = commit;
        self.event(Event::Commit(seq));
        self.sync_configuration();
        self.advance_change();
        self.maybe_take_snapshot();
        self.maybe_apply();
    }

    /// Asks storage for entries that are no longer in memory.
    pub(super) fn request_load(&mut self, from: Seq) {
        if self.load_waiting.is_some() {
            return;
        }
        let below_tail = self.log.tail_first().prev().unwrap_or(from);
        let to = Seq(from.0.saturating_add(self.config.rpc_entries_max as u64 - 1)).min(below_tail);
        self.load_waiting = Some(DriverWait::since(self.now));
        self.emit(Output::LoadEntries { from, to });
    }

    pub(super) fn on_entries_loaded(&mut self, entries: Vec<Entry>) {
        self.load_waiting = None;
        if !self.log.set_loaded(entries) {
            self.event(Event::Error("storage returned entries that disagree with the log; ignored".into()));
            return;
        }
        self.maybe_apply();
        if self.role.is_leader() {
            self.broadcast_append();
        }
    }
}

/// Checks an append's entries: consecutive seqs after `prev`, terms never decreasing and never
/// above the leader's term.
fn check_entries(term: Term, prev: Option<LogId>, entries: &[Entry]) -> Result<(), &'static str> {
    if prev.is_some_and(|p| p.term > term) {
        return Err("prev entry's term is above the leader's");
    }
    // Plain integers: a peer's prev may be Seq::MAX, whose successor is no valid seq.
    let first = prev.map_or(0, |p| u128::from(p.seq.0) + 1);
    let mut last_term = prev.map_or(Term(0), |p| p.term);
    for (expected, entry) in (first..).zip(entries) {
        if u128::from(entry.seq.0) != expected || entry.seq > Seq::MAX {
            return Err("entry seqs are not consecutive after prev, or pass Seq::MAX");
        }
        if entry.term < last_term || entry.term > term {
            return Err("entry terms decrease or pass the leader's term");
        }
        last_term = entry.term;
    }
    Ok(())
}
