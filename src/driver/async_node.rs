//! The async driver (feature `tokio`): the same node as [`RaftNode`](super::RaftNode), with
//! async calls. The node loop and the disk keep their own threads (disk IO never runs on the
//! runtime's workers); a call awaits its answer without holding a thread, so thousands of
//! concurrent appends cost thousands of small tasks, not threads.

use super::answers::{Dispatch, Reply};
use super::node::{self, DriverError, DriverStats, Handle, Status, Subscriber};
use super::StateMachine;
use crate::core::{ClientError, Config, Event, Input, LogId, MembershipChange, NodeId, RequestId, Response, Seq};
use crate::log::{FsLog, LogError, LogStore, SnapshotStore};
use crate::transport::Transport;
use bytes::Bytes;
use std::sync::{Arc, Once};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A Raft node on a log (an [`FsLog`] unless another [`LogStore`] is given: a `MemLog`, or a
/// store of your own) and a transport, with an async API. Cheap to share: wrap it in an
/// `Arc` and call it from many tasks.
pub struct AsyncRaftNode<L: LogStore + Send + 'static = FsLog> {
    handle: Arc<Handle<L>>,
    /// Started on the first request's runtime: the task that completes the answers.
    dispatching: Once,
}

impl<L: LogStore + Send + 'static> AsyncRaftNode<L> {
    /// Opens a node (see [`RaftNode::open`](super::RaftNode::open)). It does not block on
    /// anything but the log's recovery, which `log` already did when it was opened.
    pub fn open(
        config: Config,
        log: L,
        transport: Arc<dyn Transport>,
        state_machine: Option<Box<dyn StateMachine>>,
    ) -> Result<AsyncRaftNode<L>, DriverError> {
        Ok(AsyncRaftNode {
            handle: Arc::new(Handle::open(config, log, transport, state_machine, None)?),
            dispatching: Once::new(),
        })
    }

    /// Opens a node restoring its state machine from the latest intact snapshot (see
    /// [`RaftNode::open_restoring`](super::RaftNode::open_restoring)); reading the snapshot
    /// blocks: call it where blocking is allowed.
    pub fn open_restoring(
        config: Config,
        log: L,
        snapshots: &SnapshotStore,
        transport: Arc<dyn Transport>,
        state_machine: Box<dyn StateMachine>,
    ) -> Result<AsyncRaftNode<L>, DriverError> {
        let handle = Handle::open(config, log, transport, Some(state_machine), Some(snapshots))?;
        Ok(AsyncRaftNode { handle: Arc::new(handle), dispatching: Once::new() })
    }

    /// Takes a snapshot of the state machine and makes it durable in the node's snapshot store
    /// (see [`RaftNode::snapshot`](super::RaftNode::snapshot)); returns the last entry it covers.
    pub async fn snapshot(&self) -> Result<LogId, ClientError> {
        node::snapshotted(self.request(|id| Input::Snapshot { id }).await?)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.handle.id
    }

    async fn request(&self, make: impl FnOnce(RequestId) -> Input) -> Result<Response, ClientError> {
        self.dispatching.call_once(|| Dispatch::spawn().into_iter().for_each(|d| self.handle.dispatch_answers(d)));
        let (reply, answer) = oneshot::channel();
        self.handle.submit(make, Reply::Async(reply));
        answer.await.unwrap_or(Err(ClientError::Closed))
    }

    /// Appends one entry (forwarded to the leader from any node); its seq and, with a state
    /// machine, its response.
    pub async fn append(&self, data: Bytes) -> Result<(Seq, Option<Bytes>), ClientError> {
        node::appended(self.request(|id| Input::Append { id, data }).await?)
    }

    /// Appends entries at consecutive seqs; the first seq and the responses.
    pub async fn append_batch(&self, data: Vec<Bytes>) -> Result<(Seq, Vec<Bytes>), ClientError> {
        node::appended_batch(self.request(|id| Input::AppendBatch { id, data }).await?)
    }

    /// A linearizable read through the state machine (forwarded to the leader).
    pub async fn read(&self, command: Bytes) -> Result<(Option<Seq>, Bytes), ClientError> {
        node::read_answer(self.request(|id| Input::Read { id, command }).await?)
    }

    /// Hands leadership to node `to` (see [`RaftNode::transfer_leader`](super::RaftNode::transfer_leader)).
    pub async fn transfer_leader(&self, to: NodeId) -> Result<NodeId, ClientError> {
        node::transferred(self.request(|id| Input::TransferLeader { id, to }).await?)
    }

    /// Removes this node's log entries at or below `through` (see
    /// [`RaftNode::remove_prefix`](super::RaftNode::remove_prefix)).
    pub async fn remove_prefix(&self, through: Seq, force: bool) -> Result<Seq, ClientError> {
        node::prefix_removed(self.request(|id| Input::RemovePrefix { id, through, force }).await?)
    }

    /// Changes the cluster's membership (see
    /// [`RaftNode::change_membership`](super::RaftNode::change_membership)).
    pub async fn change_membership(&self, change: MembershipChange) -> Result<Seq, ClientError> {
        node::changed(self.request(|id| Input::ChangeMembership { id, change }).await?)
    }

    /// The voters become exactly `nodes` (see [`RaftNode::set_nodes`](super::RaftNode::set_nodes)).
    pub async fn set_nodes(&self, nodes: Vec<NodeId>) -> Result<Seq, ClientError> {
        self.change_membership(MembershipChange::SetNodes(nodes)).await
    }

    /// Adds a learner (see [`RaftNode::add_learner`](super::RaftNode::add_learner)).
    pub async fn add_learner(&self, id: NodeId, address: Option<Bytes>) -> Result<Seq, ClientError> {
        self.change_membership(MembershipChange::AddLearner { id, address }).await
    }

    /// Makes a learner a voter (see [`RaftNode::promote`](super::RaftNode::promote)).
    pub async fn promote(&self, id: NodeId) -> Result<Seq, ClientError> {
        self.change_membership(MembershipChange::Promote(id)).await
    }

    /// Removes a node (see [`RaftNode::remove`](super::RaftNode::remove)).
    pub async fn remove(&self, id: NodeId) -> Result<Seq, ClientError> {
        self.change_membership(MembershipChange::Remove(id)).await
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

    /// The last entry's payload (the seed's `head`), read on a blocking thread.
    pub async fn head(&self) -> Result<Option<Bytes>, LogError> {
        let handle = Arc::clone(&self.handle);
        match tokio::task::spawn_blocking(move || handle.head()).await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(LogError::Invalid("the runtime is shutting down".into())),
        }
    }

    async fn wait_for<T>(&self, timeout: Duration, ready: impl Fn(&Status) -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Created before the check: a change between the check and the wait still wakes it.
            let changed = self.handle.shared.notify.notified();
            {
                let status = self.handle.shared.status();
                if let Some(value) = ready(&status) {
                    return Some(value);
                }
                if status.closed {
                    return None;
                }
            }
            tokio::time::timeout_at(deadline, changed).await.ok()?;
        }
    }

    /// Waits until the node knows a leader whose term has a committed entry (the seed's
    /// `awaitLeader`); `None` after `timeout` or once the node is closed.
    pub async fn await_leader(&self, timeout: Duration) -> Option<NodeId> {
        self.wait_for(timeout, Status::ready_leader).await
    }

    /// Waits until the commit point reaches `seq`; false after `timeout` or once closed.
    pub async fn await_commit(&self, seq: Seq, timeout: Duration) -> bool {
        self.wait_for(timeout, |status| (status.commit >= Some(seq)).then_some(())).await.is_some()
    }

    /// Waits until the node's status satisfies `ready`; the status then, or `None` after
    /// `timeout` or once the node is closed.
    pub async fn await_status(&self, timeout: Duration, ready: impl Fn(&Status) -> bool) -> Option<Status> {
        self.wait_for(timeout, |status| ready(status).then(|| status.clone())).await
    }

    /// Events from now on: change, commit, apply, warn, error.
    pub fn events(&self) -> mpsc::UnboundedReceiver<Event> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.handle.shared.subscribe(Subscriber::Async(sender));
        receiver
    }

    /// Closes the node: pending requests get `Closed`; returns once every write the node
    /// issued is durable.
    pub async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.handle.close(Reply::Async(ack)) {
            let _ = done.await;
        }
        // The loop thread has answered its last command; joining it does not wait on IO.
        let handle = Arc::clone(&self.handle);
        let _ = tokio::task::spawn_blocking(move || handle.finish()).await;
    }
}
