//! What goes into the core ([`Input`]) and what comes out ([`Output`]).

use super::message::{opt, Message};
use super::types::{
    Entry, HardState, LogId, NodeId, Quoted, ReadId, RequestId, Role, Seq, SnapshotMeta, Term, WriteId,
};
use bytes::Bytes;
use std::fmt;

/// One cause for the core to act. Feed each to [`Raft::step`](super::Raft::step) with the
/// current time.
#[derive(Clone, Debug)]
pub enum Input {
    /// Time passed: call with `now` at or after [`Raft::deadline`](super::Raft::deadline).
    Tick,
    /// A message from a peer.
    Message(Message),
    /// A client appends one payload.
    Append {
        /// Echoed in the reply.
        id: RequestId,
        /// The payload.
        data: Bytes,
    },
    /// A client appends several payloads at consecutive seqs.
    AppendBatch {
        /// Echoed in the reply.
        id: RequestId,
        /// The payloads, at least one.
        data: Vec<Bytes>,
    },
    /// A client asks for a linearizable read.
    Read {
        /// Echoed in the reply.
        id: RequestId,
        /// Passed to the state machine.
        command: Bytes,
    },
    /// The storage write `id` (and every write before it) is durable.
    WriteDone {
        /// The write's id.
        id: WriteId,
    },
    /// The storage write `id` failed. The node stops: it will not vote, acknowledge or lead
    /// again until it is restarted from what is durable.
    WriteFailed {
        /// The write's id.
        id: WriteId,
        /// What went wrong, for the error event.
        error: String,
    },
    /// Entries asked for with [`Output::LoadEntries`].
    EntriesLoaded {
        /// Consecutive entries starting at the requested `from`.
        entries: Vec<Entry>,
    },
    /// A load asked for with [`Output::LoadEntries`] failed.
    LoadFailed {
        /// What went wrong.
        error: String,
    },
    /// The state machine applied entries from `first` on, in order, one response each (blank
    /// entries get an ignored response).
    Applied {
        /// The seq of the first entry applied.
        first: Seq,
        /// One response per applied entry.
        responses: Vec<Bytes>,
    },
    /// A client asks the leader to hand leadership to `to` (Raft thesis §3.10): the leader
    /// brings `to` up to date, then tells it to campaign at once. Appends wait meanwhile. The
    /// reply comes once this node hears from `to` as leader, or with
    /// [`ClientError::TransferFailed`] if that does not happen within an election timeout.
    /// Refused (`Invalid`) if `to` is not a voter, or is stranded (`Raft::stranded`).
    TransferLeader {
        /// Echoed in the reply.
        id: RequestId,
        /// The node to hand leadership to.
        to: NodeId,
    },
    /// A client asks the leader to change the cluster's membership (see
    /// [`MembershipChange`](super::MembershipChange)): new voters join as learners and are
    /// caught up, then the joint configuration, then the new one. The reply comes once the new
    /// configuration has committed, or with `ChangeFailed` after `Config::change_timeout`.
    ChangeMembership {
        /// Echoed in the reply.
        id: RequestId,
        /// What to change.
        change: super::MembershipChange,
    },
    /// The state machine answered the read `id`.
    ReadDone {
        /// The read's id from [`Output::Read`].
        id: ReadId,
        /// The state machine's answer.
        response: Bytes,
    },
    /// The snapshot asked for with [`Output::TakeSnapshot`] (or [`Input::Snapshot`]) is
    /// durable. The core removes the log prefix that snapshots cover (see
    /// [`Write::RemovePrefix`]) and sends this snapshot to followers that need it.
    SnapshotTaken {
        /// What it covers and its digest.
        meta: SnapshotMeta,
    },
    /// Taking the snapshot asked for failed; the core asks again later.
    SnapshotFailed {
        /// What went wrong, for the warn event.
        error: String,
    },
    /// A chunk of a durable snapshot asked for with [`Output::LoadSnapshotChunk`].
    SnapshotChunkLoaded {
        /// The follower it is for (echoed).
        to: NodeId,
        /// The snapshot's last entry and digest (echoed; boxed, as it keeps inputs small).
        snapshot: Box<SnapshotMeta>,
        /// Where the chunk starts in the snapshot's stream (echoed).
        offset: u64,
        /// The bytes from `offset` on: at least one unless the snapshot ends at `offset`.
        data: Bytes,
        /// Whether the snapshot ends with these bytes.
        done: bool,
    },
    /// The chunk could not be read (the snapshot was replaced by a newer one, or storage
    /// failed): the follower gets the latest snapshot from the start.
    SnapshotLoadFailed {
        /// The follower it was for.
        to: NodeId,
        /// What went wrong.
        error: String,
    },
    /// The state machine was restored from the snapshot of [`Output::Restore`].
    Restored {
        /// The snapshot's last entry (echoed).
        last: LogId,
    },
    /// Restoring the state machine failed: the node stops (like a failed write), as it can
    /// apply nothing more until restarted.
    RestoreFailed {
        /// What went wrong.
        error: String,
    },
    /// A client asks for a snapshot now (on top of `Config::snapshot_entries`). Answered with
    /// `Response::Snapshot` once it is durable. Without a state machine: `Invalid`.
    Snapshot {
        /// Echoed in the reply.
        id: RequestId,
    },
    /// A client asks to remove the log's entries at or below `through` (committed ones only;
    /// with a state machine, only what a durable snapshot covers). As leader, refused while a
    /// member (voter or learner) still needs them, unless `force`. Answered `Response::PrefixRemoved`.
    RemovePrefix {
        /// Echoed in the reply.
        id: RequestId,
        /// The last seq to remove.
        through: Seq,
        /// Remove them even if a member still needs them (without a state machine it then
        /// cannot catch up from this leader, see `Raft::stranded`; with one, it gets a snapshot).
        force: bool,
    },
    /// The node is closing: every pending request is answered `Closed`, new ones too.
    Close,
}

/// One thing the driver must do.
///
/// # The driver's contract
///
/// This is the whole of it; [`Stepper`](super::Stepper) is the loop that keeps it.
///
/// - **Time** is the `now` of every step: nanoseconds from any origin, never going backwards (a
///   `now` earlier than the last is taken as the last). Step with [`Input::Tick`] once
///   [`Raft::deadline`](super::Raft::deadline) has passed; a tick before it (a spurious wake-up)
///   does nothing, and a late one only delays timers.
/// - **Writes** ([`Output::Write`]) become durable in the order given. Report each with
///   [`Input::WriteDone`] (reporting one reports every write before it, so a batch of writes
///   made durable with one sync is reported once), or its failure with [`Input::WriteFailed`]
///   (the node then stops; restart it from what is durable).
/// - **Loads** ([`Output::LoadEntries`]) must be answered, with [`Input::EntriesLoaded`] or
///   [`Input::LoadFailed`]: the follower they are for gets nothing until then.
/// - **Applies and reads** ([`Output::Apply`], [`Output::Read`]) go to the state machine in the
///   order given, a read after every apply given before it, and are reported
///   ([`Input::Applied`], [`Input::ReadDone`]) in that order. An apply that fails may be retried
///   later: the core waits for it (the drivers retry at their next step).
/// - **Messages** ([`Output::Send`]) may be sent at once, late, out of order, twice or never:
///   Raft expects the network to do all of that. A message that promises durability comes as
///   [`Output::SendAfter`], bound to a write: it may be sent only once that write (and so
///   every write before it) is durable, and never if a write fails or the node stops first.
///   Sending it straight from where the write is synced spares it a round through the core.
/// - **Replies and events** ([`Output::Reply`], [`Output::Event`]) may be handed on at once;
///   each request gets exactly one reply. Events may be dropped.
/// - **Inputs** from clients and peers may come at any time, between or within steps (several
///   at once with [`Raft::step_many`](super::Raft::step_many)).
/// - **A start** (and every restart) builds the core from what storage made durable
///   ([`Recovered`](super::Recovered)), with a fresh [`Config::seed`](super::Config::seed):
///   forwarded requests are deduplicated per start.
///
/// Nothing unsafe is ever emitted early: a vote, or an acknowledgement of entries, is bound to
/// the write it depends on ([`Output::SendAfter`]), or sent as a plain [`Output::Send`] once
/// that write is reported durable. A leader may send entries before its own write is durable;
/// it counts itself toward a commit only once it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send a message to a peer.
    Send(Message),
    /// Send a message to a peer once write `write` (and so every write before it) is durable;
    /// never if a write fails or the node stops first.
    SendAfter {
        /// The write it waits for.
        write: WriteId,
        /// What to send.
        message: Message,
    },
    /// Make a write durable, then report [`Input::WriteDone`] with its id.
    Write {
        /// The write's id, increasing by one per write.
        id: WriteId,
        /// What to write.
        write: Write,
    },
    /// Read entries `from..=to` from storage and report [`Input::EntriesLoaded`].
    LoadEntries {
        /// The first seq to load.
        from: Seq,
        /// The last seq to load.
        to: Seq,
    },
    /// Apply these committed entries to the state machine in order, then report
    /// [`Input::Applied`].
    Apply {
        /// Consecutive committed entries.
        entries: Vec<Entry>,
    },
    /// Take a snapshot of the state machine once it has applied every entry handed to it so
    /// far (they end at `last`), store it durably next to the log, then report
    /// [`Input::SnapshotTaken`] (or [`Input::SnapshotFailed`]). The state machine keeps
    /// applying meanwhile: the snapshot must be a point-in-time view.
    TakeSnapshot {
        /// The last entry applied when the snapshot is taken: the snapshot's `last`.
        last: LogId,
        /// The configuration entry in force at `last`, for the snapshot's metadata.
        configuration: Option<Entry>,
    },
    /// Read a chunk of the durable snapshot `snapshot` from byte `offset` on (any length up to
    /// a driver's chunk size) and report [`Input::SnapshotChunkLoaded`] (or
    /// [`Input::SnapshotLoadFailed`]). The core wraps it in a message to `to`.
    LoadSnapshotChunk {
        /// The follower it is for.
        to: NodeId,
        /// The snapshot.
        snapshot: SnapshotMeta,
        /// Where to read from.
        offset: u64,
    },
    /// Replace the state machine's state with the durable snapshot `snapshot` (every entry
    /// handed to it before was applied), then report [`Input::Restored`]. The entries after
    /// `snapshot.last` follow with [`Output::Apply`].
    Restore {
        /// The snapshot.
        snapshot: SnapshotMeta,
    },
    /// Run a read on the state machine, which has applied exactly up to `seq` (every entry
    /// handed to it was reported applied), then report [`Input::ReadDone`].
    Read {
        /// Echo in [`Input::ReadDone`].
        id: ReadId,
        /// The state machine has applied up to here.
        seq: Seq,
        /// The client's command.
        command: Bytes,
    },
    /// The one reply to a client request.
    Reply {
        /// The request's id.
        id: RequestId,
        /// Its outcome.
        result: Result<Response, ClientError>,
    },
    /// Something happened that users may want to know.
    Event(Event),
}

/// A storage write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Save the term and vote (atomically).
    HardState(HardState),
    /// Append entries; the first one's seq is one past the log's last entry.
    Entries(Vec<Entry>),
    /// Remove every entry with a seq at or above `from`.
    Truncate {
        /// The first seq to remove.
        from: Seq,
    },
    /// Save this committed configuration entry apart from the log, replacing the one saved
    /// before: it comes back as [`Recovered::committed_config`](super::Recovered) even when the
    /// log no longer holds it (a repair cut the log, or a prefix was removed).
    Configuration(Entry),
    /// Entries at or below `through` may be removed from the log: they are committed, and a
    /// durable snapshot covers them (see [`Input::SnapshotTaken`]) or a client asked for it
    /// ([`Input::RemovePrefix`]). Storage may keep some of them (FsLog removes whole
    /// segments); the core no longer asks for them. Without a state machine (no snapshot to
    /// continue from), the core itself has dropped one entry more, the one after `through`,
    /// but storage keeps it: after a restart the log continues from it, as its term is what
    /// an append of the next entry names (a hard state written before vouches that it is
    /// committed, see [`HardState::commit`]).
    RemovePrefix {
        /// The last seq that may be removed.
        through: Seq,
    },
    /// Bytes of a snapshot a leader is sending: store them at `offset` of the partial
    /// snapshot `snapshot` (at offset 0, a new partial snapshot replaces any other), in order.
    /// They need not be synced before the install: a restarted node reports what it holds in
    /// [`Recovered::partial_snapshot`](super::Recovered::partial_snapshot), and the leader
    /// sends the rest from there.
    SnapshotChunk {
        /// The snapshot being received (boxed: it keeps writes small).
        snapshot: Box<SnapshotMeta>,
        /// Where these bytes go: the partial snapshot's length so far.
        offset: u64,
        /// The bytes.
        data: Bytes,
    },
    /// The partial snapshot `snapshot` is complete: check its bytes against
    /// `snapshot.digest`, make it the latest snapshot, and reset the log to continue after
    /// `snapshot.last` (every entry is removed: the log holds no entry `snapshot.last`). A
    /// digest that does not match fails the write.
    InstallSnapshot {
        /// The snapshot.
        snapshot: Box<SnapshotMeta>,
    },
}

/// A successful client request's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The payloads were committed (and applied, with a state machine) from seq `seq` on.
    Appended {
        /// The seq of the first payload.
        seq: Seq,
        /// The state machine's response for each payload (empty without a state machine).
        responses: Vec<Bytes>,
    },
    /// The read ran on a state machine that had applied everything committed before it started.
    Read {
        /// The state machine had applied up to here (without one: the commit point).
        seq: Option<Seq>,
        /// The state machine's answer (empty without one).
        response: Bytes,
    },
    /// Leadership went to `to`: this node heard from it as the leader of a later term.
    Transferred {
        /// The new leader.
        to: NodeId,
    },
    /// The membership change committed: the configuration entry at `seq` is in force.
    Changed {
        /// The seq of the final configuration entry.
        seq: Seq,
    },
    /// A snapshot asked for with [`Input::Snapshot`] is durable.
    Snapshot {
        /// The last entry it covers.
        last: LogId,
    },
    /// A prefix removal ([`Input::RemovePrefix`]) is done: the log now starts here (storage
    /// may still hold some of the entries before, until it can drop them). That is after the
    /// seq asked for, or before it if this node had not yet written entries up to it: the
    /// removal stops before the first entry no write carries yet, and without a state machine
    /// before the first one not yet durable (ask again later).
    PrefixRemoved {
        /// The log's first seq.
        first: Seq,
    },
}

/// Why a client request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// No leader was known within the request's timeout; the request was not executed.
    NoLeader,
    /// The node that received the request is not the leader; it was not executed.
    NotLeader {
        /// The leader it knows of, if any.
        leader: Option<NodeId>,
    },
    /// The leader lost its leadership before the entries committed: they may or may not commit.
    LeaderChanged,
    /// No outcome within the request's timeout: an append may or may not have happened.
    Timeout,
    /// The node closed before the request finished: an append may or may not have happened.
    Closed,
    /// The request was malformed (an empty batch, a payload over `entry_bytes_max`, or a seq
    /// that would pass `Seq::MAX`); nothing was executed.
    Invalid(String),
    /// The node's storage failed; it serves nothing until restarted.
    StorageFailed,
    /// A leader transfer to `to` did not complete within an election timeout (`to` was not
    /// caught up, is catching up after a data loss, or unreachable; or another node won).
    TransferFailed {
        /// The node leadership was to go to.
        to: NodeId,
    },
    /// Another membership change is under way; one at a time.
    ChangeInProgress,
    /// A membership change did not complete within `Config::change_timeout`; the steps it
    /// committed stay (for example new nodes remain learners).
    ChangeFailed(String),
    /// Taking a snapshot failed (the driver's reason).
    SnapshotFailed(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NoLeader => write!(f, "no leader"),
            ClientError::NotLeader { leader: Some(leader) } => write!(f, "not leader (leader is {leader})"),
            ClientError::NotLeader { leader: None } => write!(f, "not leader (leader unknown)"),
            ClientError::LeaderChanged => write!(f, "leader changed before commit; outcome unknown"),
            ClientError::Timeout => write!(f, "timeout; outcome unknown"),
            ClientError::Closed => write!(f, "node closed; outcome unknown"),
            ClientError::Invalid(why) => write!(f, "invalid request: {why}"),
            ClientError::StorageFailed => write!(f, "storage failed"),
            ClientError::TransferFailed { to } => write!(f, "leader transfer to {to} did not complete"),
            ClientError::ChangeInProgress => write!(f, "another membership change is under way"),
            ClientError::ChangeFailed(why) => write!(f, "membership change failed: {why}"),
            ClientError::SnapshotFailed(why) => write!(f, "snapshot failed: {why}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Response::Appended { seq, responses } => {
                write!(f, "appended seq={seq}")?;
                if !responses.is_empty() {
                    let shown: Vec<String> = responses.iter().map(|r| Quoted(r).to_string()).collect();
                    write!(f, " [{}]", shown.join(", "))?;
                }
                Ok(())
            }
            Response::Read { seq, response } => write!(f, "read seq={} {}", opt(seq), Quoted(response)),
            Response::Transferred { to } => write!(f, "transferred to {to}"),
            Response::Changed { seq } => write!(f, "changed seq={seq}"),
            Response::Snapshot { last } => write!(f, "snapshot at {last}"),
            Response::PrefixRemoved { first } => write!(f, "prefix removed, first={first}"),
        }
    }
}

/// What users may want to know (the seed's events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Role, leader, term or responsive followers changed (the seed's `change`).
    Change {
        /// This node.
        id: NodeId,
        /// Every node of the cluster.
        nodes: Vec<NodeId>,
        /// Its role.
        role: Role,
        /// The leader it knows of.
        leader: Option<NodeId>,
        /// As leader: the peers that answered within `ping_timeout` (not itself).
        followers: Vec<NodeId>,
        /// Its term.
        term: Term,
    },
    /// The commit point advanced to this seq.
    Commit(Seq),
    /// A committed configuration (its entry at `seq`) no longer lists this node: it was
    /// removed from the cluster. It no longer campaigns; the driver may shut it down.
    Removed {
        /// This node.
        id: NodeId,
        /// The seq of the configuration entry that removed it.
        seq: Seq,
    },
    /// The state machine has applied up to this seq.
    Apply(Seq),
    /// Something went wrong that the protocol recovers from.
    Warn(String),
    /// Something went wrong that needs attention: storage failures, protocol violations.
    Error(String),
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Send(message) => write!(f, "send {message}"),
            Output::SendAfter { write, message } => write!(f, "send after {write} {message}"),
            Output::Write { id, write } => write!(f, "write {id} {write}"),
            Output::LoadEntries { from, to } => write!(f, "load {from}..={to}"),
            Output::Apply { entries } => {
                let shown: Vec<String> = entries.iter().map(Entry::to_string).collect();
                write!(f, "apply [{}]", shown.join(", "))
            }
            Output::Read { id, seq, command } => write!(f, "read {id} seq={seq} {}", Quoted(command)),
            Output::TakeSnapshot { last, .. } => write!(f, "take snapshot at {last}"),
            Output::LoadSnapshotChunk { to, snapshot, offset } => write!(f, "load {snapshot} from {offset} for {to}"),
            Output::Restore { snapshot } => write!(f, "restore {snapshot}"),
            Output::Reply { id, result: Ok(response) } => write!(f, "reply {id} {response}"),
            Output::Reply { id, result: Err(error) } => write!(f, "reply {id} error {error}"),
            Output::Event(event) => write!(f, "event {event}"),
        }
    }
}

impl fmt::Display for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Write::HardState(state) => write!(f, "hardstate {state}"),
            Write::Entries(entries) => {
                let shown: Vec<String> = entries.iter().map(Entry::to_string).collect();
                write!(f, "entries [{}]", shown.join(", "))
            }
            Write::Truncate { from } => write!(f, "truncate from={from}"),
            Write::Configuration(entry) => write!(f, "configuration {entry}"),
            Write::RemovePrefix { through } => write!(f, "remove prefix through={through}"),
            Write::SnapshotChunk { snapshot, offset, data } => write!(f, "{snapshot} chunk {offset}+{}", data.len()),
            Write::InstallSnapshot { snapshot } => write!(f, "install {snapshot}"),
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Change { role, leader, followers, term, .. } => {
                write!(f, "change {role} t{term} leader={}", leader.map_or("none".into(), |l| l.to_string()))?;
                if *role == Role::Leader {
                    let shown: Vec<String> = followers.iter().map(NodeId::to_string).collect();
                    write!(f, " followers=[{}]", shown.join(","))?;
                }
                Ok(())
            }
            Event::Commit(seq) => write!(f, "commit {seq}"),
            Event::Removed { id, seq } => write!(f, "removed {id} by the configuration at {seq}"),
            Event::Apply(seq) => write!(f, "apply {seq}"),
            Event::Warn(what) => write!(f, "warn {what}"),
            Event::Error(what) => write!(f, "error {what}"),
        }
    }
}

/// Why the core wants to be woken at its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// A follower or candidate's election timer.
    Election,
    /// A leader's heartbeat timer.
    Heartbeat,
    /// A client request's timeout.
    Request,
    /// A storage write's stall timeout.
    Storage,
    /// A snapshot chunk held back while clients wait (`Config::snapshot_chunk_interval`).
    Snapshot,
}
