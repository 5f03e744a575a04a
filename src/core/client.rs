//! Client requests: appends and reads on the leader, forwarding from other nodes, the state
//! machine flow (apply, responses routed back to requests) and linearizable reads (ReadIndex,
//! Raft thesis §6.4).

use super::io::{ClientError, Event, Output, Response};
use super::log::NotInMemory;
use super::message::{Body, ForwardId, ForwardRequest};
use super::mutant::Mutant;
use super::raft::{duration_nanos, DriverWait, Raft};
use super::role::LeaderState;
use super::types::{NodeId, Payload, ReadId, RequestId, Seq, Time};
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};

/// Who is waiting for a request's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A client of this node.
    Local(RequestId),
    /// A request another node forwarded.
    Forwarded(NodeId, ForwardId),
}

/// A leader's append waiting for commit (and apply).
#[derive(Debug)]
pub(crate) struct PendingAppend {
    pub(crate) origin: Origin,
    first: Seq,
    last: Seq,
    responses: Vec<Bytes>,
    deadline: Time,
}

/// A leader's read waiting for its leadership round.
#[derive(Debug)]
pub(crate) struct PendingRead {
    pub(crate) origin: Origin,
    command: Bytes,
    round: u64,
    deadline: Time,
}

/// A confirmed read waiting for the state machine to reach its read index.
#[derive(Debug)]
pub(crate) struct ReadyRead {
    pub(crate) origin: Origin,
    command: Bytes,
    read_index: Option<Seq>,
}

/// The requests a leader tracks; answered `LeaderChanged`/`NotLeader` when it steps down.
#[derive(Debug, Default)]
pub(crate) struct LeaderRequests {
    pub(crate) appends: VecDeque<PendingAppend>,
    pub(crate) reads: VecDeque<PendingRead>,
    pub(crate) ready_reads: VecDeque<ReadyRead>,
    /// The latest leadership round started; appends carry it and followers echo it.
    pub(crate) read_round: u64,
    read_confirmed: u64,
    round_wanted: bool,
    /// A leader transfer under way (see `transfer.rs`).
    pub(crate) transfer: Option<super::transfer::Transfer>,
    /// A membership change under way (see `change.rs`).
    pub(crate) change: Option<super::change::Change>,
}

impl LeaderRequests {
    /// Queues a read for a leadership round that starts after it arrived: the next one, started
    /// now (true: announce it) unless a round is out, else the one after it (started once the
    /// round out is confirmed).
    fn add_read(&mut self, origin: Origin, command: Bytes, deadline: Time) -> bool {
        let start_now = self.read_round == self.read_confirmed;
        let round = if start_now {
            self.read_round += 1;
            self.read_round
        } else {
            self.round_wanted = true;
            self.read_round + 1
        };
        self.reads.push_back(PendingRead { origin, command, round, deadline });
        start_now
    }

    /// A quorum confirmed rounds up to `confirmed`; true if a wanted round starts now.
    fn confirm(&mut self, confirmed: u64) -> bool {
        if confirmed <= self.read_confirmed {
            return false;
        }
        self.read_confirmed = confirmed;
        let start = self.round_wanted && self.read_round == confirmed;
        if start {
            self.round_wanted = false;
            self.read_round += 1;
        }
        start
    }

    /// Moves the reads whose round is confirmed to the ready queue, at `read_index`.
    fn ready_confirmed(&mut self, read_index: Option<Seq>) {
        while self.reads.front().is_some_and(|r| r.round <= self.read_confirmed) {
            let Some(read) = self.reads.pop_front() else { break };
            self.ready_reads.push_back(ReadyRead { origin: read.origin, command: read.command, read_index });
        }
    }
}

/// A request forwarded to the leader, waiting for its reply.
#[derive(Debug)]
struct Forwarded {
    id: RequestId,
    request: ForwardRequest,
    deadline: Time,
    /// The leader it was sent to.
    leader: NodeId,
    /// The incarnation of the node it was sent to, if known then.
    sent_to: Option<u64>,
}

/// A request waiting for a leader to be known.
#[derive(Debug)]
struct Waiting {
    id: RequestId,
    request: ForwardRequest,
    deadline: Time,
}

/// How many incarnations of one forwarder the leader tells apart: a copy of a forward from an
/// earlier one (which crashed and restarted since) may still be on its way.
const DEDUP_INCARNATIONS: usize = 4;

/// Drops duplicated forwards of one forwarder: remembers the last 64 counters of each of its
/// latest `DEDUP_INCARNATIONS` incarnations (incarnations are random, so not ordered: a new
/// one must not make the leader forget an earlier one's forwards).
#[derive(Debug, Default)]
struct Dedup {
    /// The most recent first.
    windows: smallvec::SmallVec<[DedupWindow; 2]>,
}

impl Dedup {
    fn accept(&mut self, id: ForwardId) -> bool {
        if let Some(window) = self.windows.iter_mut().find(|w| w.incarnation == id.incarnation) {
            return window.accept(id.counter);
        }
        self.windows.truncate(DEDUP_INCARNATIONS - 1);
        self.windows.insert(0, DedupWindow { incarnation: id.incarnation, highest: id.counter, seen: 1 });
        true
    }
}

/// The counters seen of one forwarder incarnation: the highest, and a bit per one below it.
#[derive(Debug)]
struct DedupWindow {
    incarnation: u64,
    highest: u64,
    seen: u64,
}

impl DedupWindow {
    fn accept(&mut self, counter: u64) -> bool {
        if counter > self.highest {
            let shift = counter - self.highest;
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.highest = counter;
            return true;
        }
        let age = self.highest - counter;
        if age >= 64 || self.seen & (1 << age) != 0 {
            return false;
        }
        self.seen |= 1 << age;
        true
    }
}

/// Client bookkeeping every node keeps, whatever its role.
#[derive(Debug)]
pub(crate) struct ClientState {
    pub(crate) incarnation: u64,
    next_counter: u64,
    forwarded: BTreeMap<u64, Forwarded>,
    /// Forward deadlines in order, one queue per timeout (appends, reads); stale ones skipped.
    forward_timeouts: [VecDeque<(Time, u64)>; 2],
    waiting: VecDeque<Waiting>,
    dedup: BTreeMap<NodeId, Dedup>,
    state_machine_reads: BTreeMap<u64, (Origin, Option<Seq>)>,
    next_read: u64,
    /// The latest incarnation heard from each peer (in forwards and forward replies).
    peers: BTreeMap<NodeId, u64>,
    /// A leader transfer this node started as leader and stepped down for: the request, the
    /// target and the deadline; answered once a leader is known (see `transfer.rs`).
    pub(crate) transfer_reply: Option<(RequestId, NodeId, Time)>,
}

impl ClientState {
    pub(crate) fn new(incarnation: u64) -> ClientState {
        ClientState {
            incarnation,
            next_counter: 0,
            forwarded: BTreeMap::new(),
            forward_timeouts: [VecDeque::new(), VecDeque::new()],
            waiting: VecDeque::new(),
            dedup: BTreeMap::new(),
            state_machine_reads: BTreeMap::new(),
            next_read: 0,
            peers: BTreeMap::new(),
            transfer_reply: None,
        }
    }

    /// The earliest request deadline.
    pub(crate) fn deadline(&self, leading: Option<&LeaderState>) -> Option<Time> {
        let forwards = self.forward_timeouts.iter().filter_map(|queue| queue.front().map(|(at, _)| *at));
        let waiting = self.waiting.iter().map(|w| w.deadline);
        let leader = leading.into_iter().flat_map(|l| {
            let appends = l.requests.appends.front().map(|a| a.deadline);
            let reads = l.requests.reads.front().map(|r| r.deadline);
            let transfer = l.requests.transfer.as_ref().map(|t| t.deadline);
            appends.into_iter().chain(reads).chain(transfer)
        });
        let transfer = self.transfer_reply.map(|(_, _, deadline)| deadline);
        forwards.chain(waiting).chain(leader).chain(transfer).min()
    }
}

fn kind(request: &ForwardRequest) -> usize {
    match request {
        ForwardRequest::Append(_) => 0,
        ForwardRequest::Read(_) => 1,
    }
}

impl Raft {
    fn timeout_of(&self, request: &ForwardRequest) -> u64 {
        match request {
            ForwardRequest::Append(_) => duration_nanos(self.config.append_timeout),
            ForwardRequest::Read(_) => duration_nanos(self.config.read_timeout),
        }
    }

    fn check_request(&self, request: &ForwardRequest) -> Result<(), ClientError> {
        if self.closed {
            return Err(ClientError::Closed);
        }
        if self.failed {
            return Err(ClientError::StorageFailed);
        }
        if let ForwardRequest::Append(data) = request {
            if data.is_empty() {
                return Err(ClientError::Invalid("append_batch needs at least one payload".into()));
            }
            if let Some(big) = data.iter().find(|d| d.len() > self.config.entry_bytes_max) {
                return Err(ClientError::Invalid(format!(
                    "payload of {} bytes is over entry_bytes_max {}",
                    big.len(),
                    self.config.entry_bytes_max
                )));
            }
        }
        Ok(())
    }

    pub(super) fn on_client_append(&mut self, now: Time, id: RequestId, data: smallvec::SmallVec<[Bytes; 1]>) {
        self.client_request(now, id, ForwardRequest::Append(data));
    }

    /// One payload: on a healthy leader it goes straight into the log (the common case under
    /// load, without the batch and forwarding machinery); otherwise as a batch of one.
    pub(super) fn on_client_append_one(&mut self, now: Time, id: RequestId, data: Bytes) {
        if !self.role.is_leader() || self.closed || self.failed || data.len() > self.config.entry_bytes_max {
            return self.on_client_append(now, id, smallvec::smallvec![data]);
        }
        let deadline = now.plus(duration_nanos(self.config.append_timeout));
        self.leader_append(Origin::Local(id), std::iter::once(data), deadline);
    }

    /// Appends a request's payloads to the leader's log and tracks the request until commit
    /// (or holds them while a leader transfer is under way).
    pub(super) fn leader_append(&mut self, origin: Origin, data: impl ExactSizeIterator<Item = Bytes>, deadline: Time) {
        if self.transferring() {
            return self.hold_append(origin, data.collect(), deadline);
        }
        if self.log.next_seq().checked_add(data.len() as u64 - 1).is_none() {
            return self.reply(origin, Err(ClientError::Invalid("the log is full (Seq::MAX)".into())));
        }
        if !self.role.is_leader() {
            return self.reply(origin, Err(ClientError::NotLeader { leader: self.leader }));
        }
        let (first, last) = self.leader_append_entries(data.map(Payload::Data));
        let Some(leading) = self.role.leading_mut() else { return };
        leading.requests.appends.push_back(PendingAppend { origin, first, last, responses: Vec::new(), deadline });
        // No commit check: the new entries are not durable here yet.
        self.broadcast_append();
    }

    pub(super) fn on_client_read(&mut self, now: Time, id: RequestId, command: Bytes) {
        self.client_request(now, id, ForwardRequest::Read(command));
    }

    fn client_request(&mut self, now: Time, id: RequestId, request: ForwardRequest) {
        if let Err(error) = self.check_request(&request) {
            return self.reply(Origin::Local(id), Err(error));
        }
        let deadline = now.plus(self.timeout_of(&request));
        self.dispatch(id, request, deadline);
    }

    /// Runs a local request on the leader, forwards it, or waits for a leader.
    fn dispatch(&mut self, id: RequestId, request: ForwardRequest, deadline: Time) {
        match self.leader {
            Some(leader) if leader == self.id => self.leader_request(Origin::Local(id), request, deadline),
            Some(leader) => {
                self.client.next_counter += 1;
                let counter = self.client.next_counter;
                let forward_id = ForwardId { incarnation: self.client.incarnation, counter };
                self.client.forward_timeouts[kind(&request)].push_back((deadline, counter));
                self.send(leader, Body::Forward { id: forward_id, request: request.clone() });
                let sent_to = self.client.peers.get(&leader).copied();
                self.client.forwarded.insert(counter, Forwarded { id, request, deadline, leader, sent_to });
            }
            None => self.client.waiting.push_back(Waiting { id, request, deadline }),
        }
    }

    /// Sends a local append again (to the leader, or to wait for one).
    pub(super) fn requeue_append(&mut self, id: RequestId, data: smallvec::SmallVec<[Bytes; 1]>, deadline: Time) {
        self.dispatch(id, ForwardRequest::Append(data), deadline);
    }

    pub(super) fn client_waiting_is_empty(&self) -> bool {
        self.client.waiting.is_empty()
    }

    /// A new leader is known: what was forwarded to another node is answered now rather than
    /// at its timeout. An append there may or may not have happened (outcome unknown); a read
    /// changes nothing, so it goes to the new leader.
    pub(super) fn redirect_forwarded(&mut self, leader: NodeId) {
        let elsewhere: Vec<u64> =
            self.client.forwarded.iter().filter(|(_, f)| f.leader != leader).map(|(counter, _)| *counter).collect();
        for counter in elsewhere {
            let forwarded = self.client.forwarded.remove(&counter).expect("listed above");
            match forwarded.request {
                ForwardRequest::Append(_) => self.reply(Origin::Local(forwarded.id), Err(ClientError::LeaderChanged)),
                ForwardRequest::Read(_) => self.dispatch(forwarded.id, forwarded.request, forwarded.deadline),
            }
        }
    }

    /// A leader is known now: send it what was waiting.
    pub(super) fn redispatch_waiting(&mut self) {
        let waiting = std::mem::take(&mut self.client.waiting);
        if self.mutant(Mutant::ForgetWaitingRequests) {
            return;
        }
        for waiting in waiting {
            self.dispatch(waiting.id, waiting.request, waiting.deadline);
        }
    }

    /// Forwards and forward replies between nodes.
    pub(super) fn on_client_message(&mut self, now: Time, message: super::message::Message) {
        let from = message.from;
        match message.body {
            Body::Forward { id, request } => {
                self.client.peers.insert(from, id.incarnation);
                if !self.client.dedup.entry(from).or_default().accept(id) {
                    return;
                }
                let origin = Origin::Forwarded(from, id);
                if let Err(error) = self.check_request(&request) {
                    return self.reply(origin, Err(error));
                }
                // One sent to the leader of an earlier term (delayed, or a copy the network made)
                // is not taken by a leader of a later term, this node included: that leader may
                // have taken it, and what this node remembers of forwards does not outlive a
                // restart. Not executed here: the forwarder may send it again.
                let stale = message.term < self.hard_state.term && !self.mutant(Mutant::StaleForwardTaken);
                if !self.role.is_leader() || stale {
                    return self.reply(origin, Err(ClientError::NotLeader { leader: self.leader }));
                }
                let deadline = now.plus(self.timeout_of(&request));
                self.leader_request(origin, request, deadline);
            }
            Body::ForwardReply { id, result, responder } => {
                self.client.peers.insert(from, responder);
                if id.incarnation != self.client.incarnation {
                    return;
                }
                let Some(forwarded) = self.client.forwarded.remove(&id.counter) else { return };
                let not_executed = matches!(result, Err(ClientError::NotLeader { .. } | ClientError::NoLeader));
                if not_executed && forwarded.sent_to != Some(responder) {
                    // Not executed by this incarnation, but the node restarted since (or was
                    // never heard from): an earlier copy may have been executed. Outcome unknown.
                    return self.reply(Origin::Local(forwarded.id), Err(ClientError::LeaderChanged));
                }
                if not_executed && now < forwarded.deadline {
                    // Not executed there: try the leader this node knows, or wait for one.
                    if self.leader == Some(from) {
                        self.client.waiting.push_back(Waiting {
                            id: forwarded.id,
                            request: forwarded.request,
                            deadline: forwarded.deadline,
                        });
                    } else {
                        self.dispatch(forwarded.id, forwarded.request, forwarded.deadline);
                    }
                } else {
                    self.reply(Origin::Local(forwarded.id), result);
                }
            }
            _ => unreachable!("only client messages are routed here"),
        }
    }

    fn leader_request(&mut self, origin: Origin, request: ForwardRequest, deadline: Time) {
        match request {
            ForwardRequest::Append(data) => self.leader_append(origin, data.into_iter(), deadline),
            ForwardRequest::Read(command) => {
                let without_leadership = self.mutant(Mutant::ReadWithoutLeadership);
                let Some(requests) = self.role.leading_mut().map(|leading| &mut leading.requests) else {
                    return self.reply(origin, Err(ClientError::NotLeader { leader: self.leader }));
                };
                if without_leadership {
                    requests.ready_reads.push_back(ReadyRead { origin, command, read_index: self.commit });
                    return self.serve_ready_reads();
                }
                if requests.add_read(origin, command, deadline) {
                    self.broadcast_read_round();
                }
                self.confirm_reads();
            }
        }
    }

    /// Sends every follower an empty append carrying the current read round.
    fn broadcast_read_round(&mut self) {
        let Some(leading) = self.role.leading() else { return };
        let targets: Vec<(NodeId, Option<Seq>)> = leading.progress.iter().map(|p| (p.id, p.matched)).collect();
        for (to, matched) in targets {
            // At the match point, which the follower certainly has: it answers at once.
            self.send_entries(to, Seq::after(matched), Vec::new());
        }
    }

    /// Serves reads whose leadership round a quorum confirmed (Raft thesis §6.4).
    pub(super) fn confirm_reads(&mut self) {
        let Some(leading) = self.role.leading() else { return };
        let round = |id: NodeId| match leading.progress.iter().find(|p| p.id == id) {
            Some(p) => Some(Seq(p.read_round)),
            None => (id == self.id).then_some(Seq(leading.requests.read_round)),
        };
        let confirmed = self.quorum_point(round).map_or(0, |seq| seq.0);
        let term_committed = self.commit >= Some(leading.term_start);
        let Some(leading) = self.role.leading_mut() else { return };
        if leading.requests.confirm(confirmed) {
            self.broadcast_read_round();
        }
        // A new leader does not know the commit point until an entry of its term commits.
        let planted = self.mutant(Mutant::ReadIndexBeforeTermCommit) && !self.config.state_machine;
        if !term_committed && !planted {
            return;
        }
        let commit = self.commit;
        let Some(leading) = self.role.leading_mut() else { return };
        leading.requests.ready_confirmed(commit);
        self.serve_ready_reads();
    }

    /// Hands confirmed reads to the state machine once it has applied up to their read index.
    fn serve_ready_reads(&mut self) {
        loop {
            let Some(leading) = self.role.leading_mut() else { return };
            let ready = &mut leading.requests.ready_reads;
            // The state machine must be exactly at `applied`: with entries handed to it and
            // not yet reported applied, the read would see a later state than its seq says.
            if ready.front().is_none_or(|r| r.read_index > self.applied) || self.apply_sent != self.applied {
                return;
            }
            let read = ready.pop_front().expect("checked by front()");
            if self.config.state_machine {
                self.client.next_read += 1;
                let id = self.client.next_read;
                self.client.state_machine_reads.insert(id, (read.origin, self.applied));
                let seq = self.applied.unwrap_or_default();
                self.out.push(Output::Read { id: ReadId(id), seq, command: read.command });
            } else {
                let response = Response::Read { seq: read.read_index, response: Bytes::new() };
                self.reply(read.origin, Ok(response));
            }
        }
    }

    pub(super) fn on_read_done(&mut self, id: ReadId, response: Bytes) {
        match self.client.state_machine_reads.remove(&id.0) {
            Some((origin, seq)) => self.reply(origin, Ok(Response::Read { seq, response })),
            None => self.event(Event::Warn(format!("driver bug: unknown read {id} ignored"))),
        }
    }

    /// Sends committed entries to the state machine (or, without one, marks them applied).
    pub(super) fn maybe_apply(&mut self) {
        if !self.config.state_machine {
            // Applied through the commit point (the log's end, with the planted bug).
            let planted = self.mutant(Mutant::LogOnlyAppliesUncommitted).then(|| self.log.last_seq());
            let through = planted.unwrap_or(self.commit).max(self.commit);
            if through > self.applied {
                self.applied = through;
                self.apply_sent = through;
                self.event(Event::Apply(through.expect("through > applied, so it is some seq")));
                self.after_apply();
            }
            return;
        }
        if self.restore_if_needed() {
            return;
        }
        while self.apply_sent < self.commit {
            let from = Seq::after(self.apply_sent);
            let commit = self.commit.expect("commit > apply_sent, so it is some seq");
            let count = (commit.0 - from.0 + 1).min(self.config.apply_entries_max as u64) as usize;
            match self.log.slice(from, count, usize::MAX) {
                Ok(mut entries) => {
                    self.apply_sent = entries.last().map(|e| e.seq);
                    self.note_applied_bytes(entries.iter().map(|e| e.payload.len() as u64).sum());
                    if let Some(config) = entries.iter().rev().find(|e| matches!(e.payload, Payload::Config(_))) {
                        self.snapshots.applied_config = Some(config.clone());
                    }
                    if self.mutant(Mutant::ApplyPastGap) && entries.len() > 1 {
                        entries.remove(0);
                    }
                    self.out.push(Output::Apply { entries });
                    self.apply_waiting.get_or_insert(DriverWait::since(self.now));
                }
                Err(NotInMemory(seq)) => return self.request_load(seq),
            }
        }
        self.maybe_take_snapshot();
    }

    pub(super) fn on_applied(&mut self, first: Seq, responses: Vec<Bytes>) {
        let count = responses.len() as u64;
        let last = first.checked_add(count.saturating_sub(1));
        let expected = first == Seq::after(self.applied) && count > 0 && last <= self.apply_sent;
        if !self.config.state_machine || !expected {
            self.event(Event::Warn(format!("driver bug: unexpected apply report from seq {first} ignored")));
            return;
        }
        if let Some(leading) = self.role.leading_mut() {
            // Pending appends are in seq order and so are the responses: one cursor serves both.
            let appends = &mut leading.requests.appends;
            let mut index = 0;
            for (offset, response) in responses.into_iter().enumerate() {
                let seq = Seq(first.0 + offset as u64);
                while index < appends.len() && appends[index].last < seq {
                    index += 1;
                }
                match appends.get_mut(index) {
                    Some(pending) if pending.first <= seq => pending.responses.push(response),
                    Some(_) => {}
                    None => break,
                }
            }
        }
        self.applied = last;
        // Progress: what is still out waits from now; nothing out, nothing waits.
        self.apply_waiting = (self.applied < self.apply_sent).then(|| DriverWait::since(self.now));
        self.event(Event::Apply(last.expect("count > 0")));
        self.after_apply();
    }

    /// Answers the appends and reads that the latest apply completed.
    pub(super) fn after_apply(&mut self) {
        while let Some(leading) = self.role.leading_mut() {
            let Some(front) = leading.requests.appends.front() else { break };
            if Some(front.last) > self.applied {
                break;
            }
            let pending = leading.requests.appends.pop_front().expect("checked by front()");
            let response = Response::Appended { seq: pending.first, responses: pending.responses };
            self.reply(pending.origin, Ok(response));
        }
        self.serve_ready_reads();
        self.confirm_reads();
        self.evict();
    }

    /// Why a request only a leader serves (a transfer, a change) is refused here, if it is:
    /// the node is closed, its storage failed, or it does not lead.
    pub(super) fn refuses_leader_request(&self) -> Option<ClientError> {
        match self.refuses_local_request() {
            None if !self.role.is_leader() => Some(ClientError::NotLeader { leader: self.leader }),
            refused => refused,
        }
    }

    /// Why a request this node serves itself (a snapshot, a prefix removal) is refused, if it
    /// is: the node is closed, or its storage failed.
    pub(super) fn refuses_local_request(&self) -> Option<ClientError> {
        if self.closed {
            Some(ClientError::Closed)
        } else if self.failed {
            Some(ClientError::StorageFailed)
        } else {
            None
        }
    }

    /// Sends a request's one reply.
    pub(super) fn reply(&mut self, origin: Origin, result: Result<Response, ClientError>) {
        match origin {
            Origin::Local(id) => self.out.push(Output::Reply { id, result }),
            Origin::Forwarded(node, id) => {
                let responder = self.client.incarnation;
                self.send(node, Body::ForwardReply { id, result, responder })
            }
        }
    }

    /// Answers requests whose deadline passed.
    pub(super) fn expire_requests(&mut self, now: Time) {
        for queue in 0..2 {
            while let Some((at, counter)) = self.client.forward_timeouts[queue].front().copied() {
                if at > now {
                    break;
                }
                self.client.forward_timeouts[queue].pop_front();
                if let Some(forwarded) = self.client.forwarded.remove(&counter) {
                    self.reply(Origin::Local(forwarded.id), Err(ClientError::Timeout));
                }
            }
        }
        let (expired, waiting): (Vec<Waiting>, Vec<Waiting>) =
            std::mem::take(&mut self.client.waiting).into_iter().partition(|w| w.deadline <= now);
        self.client.waiting = waiting.into();
        for waiting in expired {
            self.reply(Origin::Local(waiting.id), Err(ClientError::NoLeader));
        }
        while let Some(leading) = self.role.leading_mut() {
            let requests = &mut leading.requests;
            let origin = if requests.appends.front().is_some_and(|a| a.deadline <= now) {
                requests.appends.pop_front().map(|a| a.origin)
            } else if requests.reads.front().is_some_and(|r| r.deadline <= now) {
                requests.reads.pop_front().map(|r| r.origin)
            } else {
                break;
            };
            if let Some(origin) = origin {
                self.reply(origin, Err(ClientError::Timeout));
            }
        }
    }

    /// Answers every pending request with `error` (closing, or storage failed).
    pub(super) fn fail_all_requests(&mut self, error: ClientError) {
        for (_, forwarded) in std::mem::take(&mut self.client.forwarded) {
            self.reply(Origin::Local(forwarded.id), Err(error.clone()));
        }
        for queue in &mut self.client.forward_timeouts {
            queue.clear();
        }
        for waiting in std::mem::take(&mut self.client.waiting) {
            self.reply(Origin::Local(waiting.id), Err(error.clone()));
        }
        if let Some((id, _, _)) = self.client.transfer_reply.take() {
            self.reply(Origin::Local(id), Err(error.clone()));
        }
        if let Some(transfer) = self.role.leading_mut().and_then(|l| l.requests.transfer.take()) {
            if let Some(id) = transfer.id {
                self.reply(Origin::Local(id), Err(error.clone()));
            }
            for (origin, _, _) in transfer.held {
                self.reply(origin, Err(error.clone()));
            }
        }
        if let Some(leading) = self.role.leading_mut() {
            let requests = std::mem::take(&mut leading.requests);
            // Round numbers go on where they were: followers' echoed rounds are that high, and
            // restarting at 0 would let their old answers confirm new reads without a new round.
            leading.requests.read_round = requests.read_round;
            leading.requests.read_confirmed = requests.read_confirmed;
            let origins = requests.appends.into_iter().map(|a| a.origin);
            let origins = origins.chain(requests.reads.into_iter().map(|r| r.origin));
            let origins: Vec<Origin> = origins.chain(requests.ready_reads.into_iter().map(|r| r.origin)).collect();
            for origin in origins {
                self.reply(origin, Err(error.clone()));
            }
        }
    }

    pub(super) fn on_close(&mut self) {
        self.closed = true;
        if self.mutant(Mutant::CloseDropsForwarded) {
            self.client.forwarded.clear();
        }
        self.fail_all_requests(ClientError::Closed);
        // Reads already handed to the state machine are answered too; a late report is ignored.
        for (_, (origin, _)) in std::mem::take(&mut self.client.state_machine_reads) {
            self.reply(origin, Err(ClientError::Closed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(incarnation: u64, counter: u64) -> ForwardId {
        ForwardId { incarnation, counter }
    }

    #[test]
    fn a_copy_from_an_earlier_incarnation_is_still_dropped() {
        // Found by the simulator (seed 95888, four nodes): node 3 forwarded #207 as its f1,
        // crashed, restarted and forwarded another f1; the network's copy of the first f1
        // then came in, and the leader, which had forgotten the first incarnation, took it.
        let mut dedup = Dedup::default();
        assert!(dedup.accept(id(7, 1)));
        assert!(!dedup.accept(id(7, 1)));
        assert!(dedup.accept(id(9, 1)));
        assert!(!dedup.accept(id(7, 1)), "the earlier incarnation's copy");
        assert!(!dedup.accept(id(9, 1)));
        assert!(dedup.accept(id(7, 2)));
        // Only the latest few incarnations are told apart.
        for incarnation in 10..10 + DEDUP_INCARNATIONS as u64 {
            assert!(dedup.accept(id(incarnation, 1)));
        }
        assert!(dedup.accept(id(7, 1)), "forgotten after {DEDUP_INCARNATIONS} newer ones");
    }

    #[test]
    fn a_window_keeps_the_last_64_counters() {
        let mut window = DedupWindow { incarnation: 1, highest: 0, seen: 1 };
        assert!(window.accept(5));
        assert!(window.accept(3), "late, not seen");
        assert!(!window.accept(3));
        assert!(window.accept(70));
        assert!(!window.accept(6), "too old to tell: dropped");
        assert!(!window.accept(70));
    }
}
