//! The blocking driver: callers wait on their own thread for the node loop's answer.

use super::answers::Reply;
use super::node::{self, DriverError, DriverStats, Handle, Status, Subscriber};
use super::StateMachine;
use crate::core::{ClientError, Config, Event, Input, LogId, MembershipChange, NodeId, Response, Seq};
use crate::log::{FsLog, LogError, LogStore, SnapshotStore};
use crate::transport::Transport;
use bytes::Bytes;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

/// A Raft node on a log (an [`FsLog`] unless another [`LogStore`] is given: a
/// [`MemLog`](crate::log::MemLog), or a store of your own) and a transport, run by its own
/// threads (the seed's `RaftNode`);
/// every call blocks the calling thread until it is answered.
pub struct RaftNode<L: LogStore + Send + 'static = FsLog> {
    handle: Handle<L>,
}

impl<L: LogStore + Send + 'static> RaftNode<L> {
    /// Opens a node: recovers its state from `log`, connects it to `transport`, and starts its
    /// threads. With a state machine, committed entries are applied to it and appends answer its
    /// responses. The config's seed is replaced by a fresh random one (the core's contract).
    pub fn open(
        config: Config,
        log: L,
        transport: Arc<dyn Transport>,
        state_machine: Option<Box<dyn StateMachine>>,
    ) -> Result<RaftNode<L>, DriverError> {
        Ok(RaftNode { handle: Handle::open(config, log, transport, state_machine, None)? })
    }

    /// Like [`open`](RaftNode::open), with snapshots kept in `snapshots`: the state machine is
    /// restored from the latest intact one (one that fails its checks is skipped for the one
    /// before, with a warn event as the node starts) and applies only the entries after it;
    /// snapshots are taken as `Config::snapshot_entries` and `snapshot_bytes` say (or with
    /// [`snapshot`](RaftNode::snapshot)), the log prefix they cover is removed, and followers
    /// that need removed entries are sent the latest snapshot, streamed in chunks.
    pub fn open_restoring(
        config: Config,
        log: L,
        snapshots: &SnapshotStore,
        transport: Arc<dyn Transport>,
        state_machine: Box<dyn StateMachine>,
    ) -> Result<RaftNode<L>, DriverError> {
        Ok(RaftNode { handle: Handle::open(config, log, transport, Some(state_machine), Some(snapshots))? })
    }

    /// Takes a snapshot of the state machine at the last entry handed to it and makes it
    /// durable in the node's snapshot store (the state machine's stream is read on a thread of
    /// its own while the node goes on applying); the log prefix snapshots cover is then removed.
    /// Returns the last entry it covers. Needs a node opened with
    /// [`open_restoring`](RaftNode::open_restoring).
    pub fn snapshot(&self) -> Result<LogId, ClientError> {
        node::snapshotted(self.request(|id| Input::Snapshot { id })?)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.handle.id
    }

    fn request(&self, make: impl FnOnce(crate::core::RequestId) -> Input) -> Result<Response, ClientError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.handle.submit(make, Reply::Blocking(reply));
        // The core answers every request exactly once (or the node closes).
        answer.recv().unwrap_or(Err(ClientError::Closed))
    }

    /// Appends one entry (forwarded to the leader from any node); returns its seq and, with a
    /// state machine, its response.
    pub fn append(&self, data: Bytes) -> Result<(Seq, Option<Bytes>), ClientError> {
        node::appended(self.request(|id| Input::Append { id, data })?)
    }

    /// Appends entries at consecutive seqs; returns the first seq and the responses.
    pub fn append_batch(&self, data: Vec<Bytes>) -> Result<(Seq, Vec<Bytes>), ClientError> {
        node::appended_batch(self.request(|id| Input::AppendBatch { id, data })?)
    }

    /// A linearizable read through the state machine (forwarded to the leader): the seq it was
    /// answered at, and the answer.
    pub fn read(&self, command: Bytes) -> Result<(Option<Seq>, Bytes), ClientError> {
        node::read_answer(self.request(|id| Input::Read { id, command })?)
    }

    /// Hands leadership to node `to` (Raft thesis §3.10): the leader brings it up to date and
    /// tells it to campaign at once; appends wait meanwhile. Call it on the leader (another
    /// node answers `NotLeader` with the leader it knows). Returns the new leader once this
    /// node hears from it; `TransferFailed` if that does not happen within an election timeout.
    /// `Invalid` at once if `to` is not a voter, or needs entries the leader's log no longer
    /// holds with no snapshot to send (see [`Status::stranded`]).
    pub fn transfer_leader(&self, to: NodeId) -> Result<NodeId, ClientError> {
        node::transferred(self.request(|id| Input::TransferLeader { id, to })?)
    }

    /// Removes this node's log entries at or below `through` (the seed's log trimming from the
    /// front; committed entries only). Without a state machine this is the only way the log
    /// shrinks, and the user's call: on the leader it is refused while a member (voter or
    /// learner) still needs those entries, unless `force` (such a member then cannot catch up
    /// from this leader, and a learner so stranded is never made a voter: see
    /// [`Status::stranded`]). With a state machine, snapshots remove the prefix (and only what
    /// a durable one covers can be removed; [`LogOnly`](super::LogOnly) is the state machine
    /// of a log that is the product, whose empty snapshots let such a member catch up). Returns
    /// the log's new first seq.
    pub fn remove_prefix(&self, through: Seq, force: bool) -> Result<Seq, ClientError> {
        node::prefix_removed(self.request(|id| Input::RemovePrefix { id, through, force })?)
    }

    /// Changes the cluster's membership (Raft thesis §4; call it on the leader, as
    /// `transfer_leader`): nodes new to the cluster join as learners and receive the log, join
    /// the voters through the joint configuration once caught up (never a node the leader
    /// cannot catch up: see [`Status::stranded`]), and nodes left out leave.
    /// Returns the seq of the configuration entry now committed and in force; `ChangeFailed`
    /// after `Config::change_timeout` (the steps taken stay); `ChangeInProgress` while another
    /// change is under way.
    pub fn change_membership(&self, change: MembershipChange) -> Result<Seq, ClientError> {
        node::changed(self.request(|id| Input::ChangeMembership { id, change })?)
    }

    /// The voters become exactly `nodes` (the seed's `setNodes`): see
    /// [`change_membership`](RaftNode::change_membership).
    pub fn set_nodes(&self, nodes: Vec<NodeId>) -> Result<Seq, ClientError> {
        self.change_membership(MembershipChange::SetNodes(nodes))
    }

    /// Adds node `id` as a learner (it receives the log and never votes), with an address
    /// for transports if given.
    pub fn add_learner(&self, id: NodeId, address: Option<Bytes>) -> Result<Seq, ClientError> {
        self.change_membership(MembershipChange::AddLearner { id, address })
    }

    /// Makes learner `id` a voter, once it is caught up.
    pub fn promote(&self, id: NodeId) -> Result<Seq, ClientError> {
        self.change_membership(MembershipChange::Promote(id))
    }

    /// Removes node `id`, voter or learner.
    pub fn remove(&self, id: NodeId) -> Result<Seq, ClientError> {
        self.change_membership(MembershipChange::Remove(id))
    }

    /// What the node knows now. An answer this node gives from its own commit (an append or
    /// a batch on the leader) comes after the status shows that commit.
    pub fn status(&self) -> Status {
        self.handle.shared.status().clone()
    }

    /// Where its time and work went so far (counts: steps, disk batches, fdatasyncs, waits).
    pub fn stats(&self) -> DriverStats {
        self.handle.shared.stats()
    }

    /// The last entry's payload (the seed's `head`).
    pub fn head(&self) -> Result<Option<Bytes>, LogError> {
        self.handle.head()
    }

    /// Runs `f` on the node's log (to read it). The disk thread waits meanwhile: keep it short.
    pub fn with_log<T>(&self, f: impl FnOnce(&mut L) -> T) -> T {
        f(&mut self.handle.shared.log())
    }

    /// Waits until the node knows a leader whose term has a committed entry (the seed's
    /// `awaitLeader`); `None` after `timeout` or once the node is closed.
    pub fn await_leader(&self, timeout: Duration) -> Option<NodeId> {
        self.handle.shared.wait_for(timeout, Status::ready_leader)
    }

    /// Waits until the commit point reaches `seq` (the seed's `awaitLeader(seq)`); false after
    /// `timeout` or once the node is closed.
    pub fn await_commit(&self, seq: Seq, timeout: Duration) -> bool {
        self.handle.shared.wait_for(timeout, |status| (status.commit >= Some(seq)).then_some(())).is_some()
    }

    /// Waits until the node's status satisfies `ready`; the status then, or `None` after
    /// `timeout` or once the node is closed.
    pub fn await_status(&self, timeout: Duration, ready: impl Fn(&Status) -> bool) -> Option<Status> {
        self.handle.shared.wait_for(timeout, |status| ready(status).then(|| status.clone()))
    }

    /// Events from now on: change, commit, apply, warn, error.
    pub fn events(&self) -> Receiver<Event> {
        let (sender, receiver) = mpsc::channel();
        self.handle.shared.subscribe(Subscriber::Blocking(sender));
        receiver
    }

    /// Closes the node: pending requests get `Closed`, and it returns once every write the
    /// node issued is durable.
    pub fn close(&self) {
        let (ack, done) = mpsc::sync_channel(1);
        if self.handle.close(Reply::Blocking(ack)) {
            let _ = done.recv();
        }
        self.handle.finish();
    }
}

impl<L: LogStore + Send + 'static> Drop for RaftNode<L> {
    fn drop(&mut self) {
        self.close();
    }
}
