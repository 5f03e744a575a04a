//! What both drivers share: the node loop thread around the core (its state here, its steps in
//! `node_loop.rs`, its disk thread in `disk`), and the client side that submits requests to
//! it. The blocking and the async driver differ only in how a caller waits for its answer.

#[cfg(feature = "tokio")]
use super::answers::Dispatch;
use super::answers::{Answers, Reply};
use super::disk;
use super::snapshots::{ChunkReader, MachineJob};
use super::stats::Counters;
pub use super::stats::DriverStats;
use super::StateMachine;
use crate::core::{
    ClientError, Config, Configuration, Event, Input, LogId, Message, NodeId, Output, Raft, RequestId, Response, Role,
    Seq, SnapshotMeta, StartError, Term, WriteId,
};
use crate::log::{LogError, LogStore, SnapshotReceiver, SnapshotStore};
use crate::transport::{Inbox, Transport};
use bytes::Bytes;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::OsRng;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[path = "node_loop.rs"]
mod node_loop;

/// Why a node could not be opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum DriverError {
    /// The log failed.
    Log(LogError),
    /// The core refused the configuration or the recovered state.
    Start(StartError),
    /// A thread could not be started.
    Thread(std::io::Error),
    /// The state machine could not take or restore a snapshot, or the node could not take one
    /// now (why).
    Snapshot(String),
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::Log(error) => write!(f, "log: {error}"),
            DriverError::Start(error) => write!(f, "cannot start: {error}"),
            DriverError::Thread(error) => write!(f, "cannot start a thread: {error}"),
            DriverError::Snapshot(why) => write!(f, "snapshot: {why}"),
        }
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DriverError::Log(error) => Some(error),
            DriverError::Start(error) => Some(error),
            DriverError::Thread(error) => Some(error),
            DriverError::Snapshot(_) => None,
        }
    }
}

/// What a node knows of itself and the cluster (the seed's getters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Its role (the seed's `state`).
    pub role: Role,
    /// The leader it follows (itself when leading).
    pub leader: Option<NodeId>,
    /// As leader, the followers that answered recently.
    pub followers: Vec<NodeId>,
    /// As leader, each follower's progress: the highest seq known to match the leader's log
    /// (`None`: nothing yet). Empty on other nodes.
    pub matched: Vec<(NodeId, Option<Seq>)>,
    /// Its current term.
    pub term: Term,
    /// The seq of its last entry.
    pub seq: Option<Seq>,
    /// The highest seq known committed.
    pub commit: Option<Seq>,
    /// Whether the node is catching up after losing data (new, wiped or repaired storage): it
    /// does not vote yet (see `HardState::catching_up`).
    pub catching_up: bool,
    /// The configuration in force (voters, learners; joint while a change is under way), and
    /// the seq of its entry; `None` while the log holds none and `Config::nodes` is in force.
    pub configuration: Option<(Seq, Configuration)>,
    /// Whether a committed configuration removed this node (see `Event::Removed`).
    pub removed: bool,
    /// As leader: the followers that need entries its log no longer holds and that it has no
    /// snapshot to send (without a state machine, after a forced `remove_prefix`, or a node
    /// that joined or lost its disk after the prefix was removed); they cannot catch up from
    /// this leader, which neither makes them voters nor hands them leadership (with the
    /// [`LogOnly`](super::LogOnly) state machine they install an empty snapshot instead). Empty
    /// on other nodes.
    pub stranded: Vec<NodeId>,
    /// Whether the node is closed.
    pub closed: bool,
}

impl Default for Status {
    fn default() -> Status {
        Status {
            role: Role::Follower,
            leader: None,
            followers: Vec::new(),
            matched: Vec::new(),
            term: Term(0),
            seq: None,
            commit: None,
            catching_up: false,
            configuration: None,
            removed: false,
            stranded: Vec::new(),
            closed: false,
        }
    }
}

impl Status {
    /// The leader, once it has committed an entry in its term (the seed's `awaitLeader`).
    pub(super) fn ready_leader(&self) -> Option<NodeId> {
        self.leader.filter(|_| self.commit.is_some())
    }
}

/// Where events go.
pub(super) enum Subscriber {
    Blocking(Sender<Event>),
    #[cfg(feature = "tokio")]
    Async(tokio::sync::mpsc::UnboundedSender<Event>),
}

impl Subscriber {
    fn send(&self, event: &Event) -> bool {
        match self {
            Subscriber::Blocking(sender) => sender.send(event.clone()).is_ok(),
            #[cfg(feature = "tokio")]
            Subscriber::Async(sender) => sender.send(event.clone()).is_ok(),
        }
    }
}

pub(super) enum Command {
    Request {
        input: Input,
        id: RequestId,
        reply: Reply,
    },
    /// A message from another node, with its delivery.
    Message(Message, Instant),
    /// The disk thread's report that the writes up to this one are durable, with its sending.
    WriteDone(WriteId, Instant),
    WriteFailed(WriteId, String),
    Warn(String),
    Close(Reply),
    /// A snapshot the core asked for is durable (or could not be taken).
    SnapshotDone(Result<SnapshotMeta, String>),
    /// An input for the core from one of the node's threads (a chunk of a snapshot read).
    Input(Input),
    /// Async callers' answers go through this task from now on.
    #[cfg(feature = "tokio")]
    Dispatch(Dispatch),
}

/// The node's inbox at its transport: messages and warnings join the loop's commands.
struct TransportInbox(Sender<Command>);

impl Inbox for TransportInbox {
    fn deliver(&self, message: Message) {
        let _ = self.0.send(Command::Message(message, Instant::now()));
    }

    fn warn(&self, text: String) {
        let _ = self.0.send(Command::Warn(text));
    }
}

/// What the node's threads and its callers share.
pub(super) struct Shared<L> {
    pub(super) counters: Counters,
    status: Mutex<Status>,
    changed: Condvar,
    /// Threads waiting on `changed` (counted under the status lock): a wake with none is free.
    waiters: AtomicUsize,
    #[cfg(feature = "tokio")]
    pub(super) notify: tokio::sync::Notify,
    subscribers: Mutex<Vec<Subscriber>>,
    log: Mutex<L>,
}

impl<L: LogStore> Shared<L> {
    pub(super) fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn log(&self) -> MutexGuard<'_, L> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The counts so far.
    pub(super) fn stats(&self) -> DriverStats {
        self.counters.stats()
    }

    pub(super) fn subscribe(&self, subscriber: Subscriber) {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).push(subscriber);
    }

    fn publish(&self, event: Event) {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).retain(|s| s.send(&event));
    }

    fn wake(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.changed.notify_all();
        }
        #[cfg(feature = "tokio")]
        self.notify.notify_waiters();
    }

    /// Waits (blocking) until `ready` says something of the status, or `timeout` passes.
    pub(super) fn wait_for<T>(&self, timeout: Duration, ready: impl Fn(&Status) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut status = self.status();
        loop {
            if let Some(value) = ready(&status) {
                return Some(value);
            }
            if status.closed {
                return None;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.waiters.fetch_add(1, Ordering::SeqCst);
            status = self.changed.wait_timeout(status, left).unwrap_or_else(|p| p.into_inner()).0;
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The callers' side of a node: submits requests to its loop.
pub(super) struct Handle<L> {
    pub(super) id: NodeId,
    commands: Sender<Command>,
    pub(super) shared: Arc<Shared<L>>,
    next_request: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
    transport: Arc<dyn Transport>,
}

impl<L: LogStore + Send + 'static> Handle<L> {
    /// Recovers the node's state from `log`, connects it to `transport`, and starts its
    /// threads. The config's seed is replaced by a fresh random one (the core's contract).
    pub(super) fn open(
        mut config: Config,
        log: L,
        transport: Arc<dyn Transport>,
        mut state_machine: Option<Box<dyn StateMachine>>,
        snapshots: Option<&SnapshotStore>,
    ) -> Result<Handle<L>, DriverError> {
        config.seed = OsRng.next_u64();
        config.state_machine = state_machine.is_some();
        config.stateless_machine = state_machine.as_ref().is_some_and(|machine| machine.keeps_no_state());
        let snapshots = snapshots.filter(|_| state_machine.is_some());
        if snapshots.is_none() {
            (config.snapshot_entries, config.snapshot_bytes) = (0, 0); // Nowhere to keep them.
        }
        // The latest intact snapshot restores the state machine, which then applies only the
        // entries after it.
        let mut restored = None;
        let mut warnings = Vec::new();
        let mut recovered = log.recovered(config.memory_entries_max).map_err(DriverError::Log)?;
        let mut receiver = None;
        if let (Some(store), Some(machine)) = (snapshots, state_machine.as_mut()) {
            let scan = store.open().map_err(DriverError::Log)?;
            warnings.extend(scan.damaged.iter().map(|e| format!("a snapshot is damaged and was skipped: {e}")));
            if let Some(meta) = &scan.latest {
                let mut reader = store.reader(meta.last.seq).map_err(DriverError::Log)?;
                machine.restore(&mut reader).map_err(|why| DriverError::Snapshot(format!("restore: {why}")))?;
                config.apply_seq = config.apply_seq.max(Some(meta.last.seq));
                restored = Some(meta.last);
            }
            let (opened, partial) = SnapshotReceiver::open(store).map_err(DriverError::Log)?;
            (recovered.snapshot, recovered.partial_snapshot, receiver) = (scan.latest, partial, Some(opened));
        }
        let raft = Raft::new(config, recovered).map_err(DriverError::Start)?;
        let id = raft.id();
        // What the recovered core knows, from the start: a caller may ask before the loop runs.
        let status = Status {
            role: raft.role(),
            leader: raft.leader(),
            term: raft.term(),
            seq: raft.seq(),
            commit: raft.commit(),
            catching_up: raft.is_catching_up(),
            configuration: configuration_of(&raft),
            ..Status::default()
        };
        let shared = Arc::new(Shared {
            status: Mutex::new(status),
            changed: Condvar::new(),
            waiters: AtomicUsize::new(0),
            #[cfg(feature = "tokio")]
            notify: tokio::sync::Notify::new(),
            subscribers: Mutex::new(Vec::new()),
            log: Mutex::new(log),
            counters: Counters::default(),
        });
        let (commands, inbox) = mpsc::channel();
        for text in warnings {
            let _ = commands.send(Command::Warn(text)); // Warn events once the loop runs.
        }
        let (writes, disk_jobs) = mpsc::channel();
        let disk = {
            let (shared, done, transport) = (Arc::clone(&shared), commands.clone(), Arc::clone(&transport));
            std::thread::Builder::new()
                .name(format!("raft-{id}-disk"))
                .spawn(move || disk::run(&shared, &disk_jobs, &done, &*transport, receiver))
                .map_err(DriverError::Thread)?
        };
        transport.register(id, Arc::new(TransportInbox(commands.clone())));
        learn_addresses(&raft, &*transport);
        let node = NodeLoop {
            raft,
            start: Instant::now(),
            shared: Arc::clone(&shared),
            transport: Arc::clone(&transport),
            state_machine,
            pending: BTreeMap::new(),
            answers: Answers::new(id),
            issued: std::collections::VecDeque::new(),
            writes,
            disk: Some(disk),
            out: Vec::new(),
            unapplied: VecDeque::new(),
            machine_applied: restored,
            snapshots: snapshots.cloned(),
            chunks: ChunkReader::new(snapshots.cloned(), commands.clone()),
            commands: commands.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("raft-{id}"))
            .spawn(move || node.run(&inbox))
            .map_err(DriverError::Thread)?;
        Ok(Handle {
            id,
            commands,
            shared,
            next_request: AtomicU64::new(1),
            thread: Mutex::new(Some(thread)),
            transport,
        })
    }

    /// Hands a request to the loop; its answer goes to `reply` (`Closed` if the node is).
    pub(super) fn submit(&self, make: impl FnOnce(RequestId) -> Input, reply: Reply) {
        let id = RequestId(self.next_request.fetch_add(1, Ordering::Relaxed));
        let command = Command::Request { input: make(id), id, reply };
        if let Err(mpsc::SendError(Command::Request { reply, .. })) = self.commands.send(command) {
            reply.send(Err(ClientError::Closed));
        }
    }

    /// Async callers' answers go through `dispatch` (a task on their runtime).
    #[cfg(feature = "tokio")]
    pub(super) fn dispatch_answers(&self, dispatch: Dispatch) {
        let _ = self.commands.send(Command::Dispatch(dispatch));
    }

    /// Asks the loop to close; `done` hears when everything is durable. False if it is gone.
    pub(super) fn close(&self, done: Reply) -> bool {
        self.commands.send(Command::Close(done)).is_ok()
    }

    /// Waits for the loop thread to end and detaches the node from the transport, once: a
    /// handle closed, then dropped after a new node with its id opened on the same transport,
    /// must not detach the new one.
    pub(super) fn finish(&self) {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
            self.transport.unregister(self.id);
            // Everything is durable: the log's directory is free for another handle.
            self.shared.log().close();
        }
    }

    /// The last entry's payload (the seed's `head`).
    pub(super) fn head(&self) -> Result<Option<Bytes>, LogError> {
        let log = self.shared.log();
        let Some(seq) = log.seq() else { return Ok(None) };
        Ok(log.read(seq)?.and_then(|entry| entry.payload.data().cloned()))
    }
}

impl<L> Drop for Handle<L> {
    /// A node dropped without `close` still stops: its loop is told to close (without
    /// waiting here, which may be inside an async runtime) and the transport forgets it.
    fn drop(&mut self) {
        if self.thread.get_mut().unwrap_or_else(|p| p.into_inner()).take().is_some() {
            let (ack, _) = mpsc::sync_channel(1);
            let _ = self.commands.send(Command::Close(Reply::Blocking(ack)));
            self.transport.unregister(self.id);
        }
    }
}

/// An append's answer: its seq and, with a state machine, its response.
pub(super) fn appended(response: Response) -> Result<(Seq, Option<Bytes>), ClientError> {
    let (seq, mut responses) = appended_batch(response)?;
    Ok((seq, responses.pop()))
}

/// A batch's answer: its first seq and the responses.
pub(super) fn appended_batch(response: Response) -> Result<(Seq, Vec<Bytes>), ClientError> {
    match response {
        Response::Appended { seq, responses } => Ok((seq, responses)),
        other => Err(ClientError::Invalid(format!("an append was answered: {other}"))),
    }
}

/// A read's answer: the seq it was answered at, and the state machine's answer.
pub(super) fn read_answer(response: Response) -> Result<(Option<Seq>, Bytes), ClientError> {
    match response {
        Response::Read { seq, response } => Ok((seq, response)),
        other => Err(ClientError::Invalid(format!("a read was answered: {other}"))),
    }
}

/// Tells the transport the address of every member the configuration in force gives one.
fn learn_addresses(raft: &Raft, transport: &dyn Transport) {
    let Some(configuration) = raft.membership() else { return };
    for id in configuration.members() {
        if let Some(address) = configuration.address(id) {
            transport.learn(id, address);
        }
    }
}

/// The configuration in force on `raft`, with the seq of its entry.
fn configuration_of(raft: &Raft) -> Option<(Seq, Configuration)> {
    raft.membership_seq().zip(raft.membership().cloned())
}

/// A membership change's answer: the seq of the configuration entry now in force.
pub(super) fn changed(response: Response) -> Result<Seq, ClientError> {
    match response {
        Response::Changed { seq } => Ok(seq),
        other => Err(ClientError::Invalid(format!("a membership change was answered: {other}"))),
    }
}

/// A snapshot's answer: the last entry it covers.
pub(super) fn snapshotted(response: Response) -> Result<LogId, ClientError> {
    match response {
        Response::Snapshot { last } => Ok(last),
        other => Err(ClientError::Invalid(format!("a snapshot was answered: {other}"))),
    }
}

/// A prefix removal's answer: the log's new first seq.
pub(super) fn prefix_removed(response: Response) -> Result<Seq, ClientError> {
    match response {
        Response::PrefixRemoved { first } => Ok(first),
        other => Err(ClientError::Invalid(format!("a prefix removal was answered: {other}"))),
    }
}

/// A leader transfer's answer: the new leader.
pub(super) fn transferred(response: Response) -> Result<NodeId, ClientError> {
    match response {
        Response::Transferred { to } => Ok(to),
        other => Err(ClientError::Invalid(format!("a leader transfer was answered: {other}"))),
    }
}

/// The node loop's state (on its own thread).
struct NodeLoop<L> {
    raft: Raft,
    start: Instant,
    shared: Arc<Shared<L>>,
    transport: Arc<dyn Transport>,
    state_machine: Option<Box<dyn StateMachine>>,
    /// Requests waiting for their answer, with their arrival.
    pending: BTreeMap<RequestId, (Reply, Instant)>,
    /// Where their answers go.
    answers: Answers,
    /// Writes handed to the disk thread, in order, with the time of the hand-over.
    issued: std::collections::VecDeque<(WriteId, Instant)>,
    writes: Sender<disk::Job>,
    disk: Option<JoinHandle<()>>,
    out: Vec<Output>,
    /// What the state machine has not done yet: committed entries (it failed: retried
    /// shortly), snapshots to take and restores, in order.
    unapplied: VecDeque<MachineJob>,
    /// The last entry the state machine applied (or a restored snapshot covers).
    machine_applied: Option<LogId>,
    /// Where snapshots are kept (with a state machine only).
    snapshots: Option<SnapshotStore>,
    /// Reads the snapshots sent to followers.
    chunks: ChunkReader,
    /// The loop's own inbox, for the threads that take snapshots.
    commands: Sender<Command>,
}
