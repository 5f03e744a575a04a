//! The blocking driver: a node loop thread around the core, a disk thread around the file log.

use super::{StateMachine, Transport};
use crate::core::{
    ClientError, Config, Entry, Event, Input, Message, NodeId, Output, Raft, RequestId, Response, Role, Seq,
    StartError, Term, Time, Write, WriteId,
};
use crate::log::{FsLog, LogError, LogStore};
use bytes::Bytes;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::OsRng;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::Log(error) => write!(f, "log: {error}"),
            DriverError::Start(error) => write!(f, "cannot start: {error}"),
            DriverError::Thread(error) => write!(f, "cannot start a thread: {error}"),
        }
    }
}

impl std::error::Error for DriverError {}

/// What a node knows of itself and the cluster (the seed's getters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Its role (the seed's `state`).
    pub role: Role,
    /// The leader it follows (itself when leading).
    pub leader: Option<NodeId>,
    /// As leader, the followers that answered recently.
    pub followers: Vec<NodeId>,
    /// Its current term.
    pub term: Term,
    /// The seq of its last entry.
    pub seq: Option<Seq>,
    /// The highest seq known committed.
    pub commit: Option<Seq>,
    /// Whether the node is closed.
    pub closed: bool,
}

impl Default for Status {
    fn default() -> Status {
        Status {
            role: Role::Follower,
            leader: None,
            followers: Vec::new(),
            term: Term(0),
            seq: None,
            commit: None,
            closed: false,
        }
    }
}

type Reply = SyncSender<Result<Response, ClientError>>;

enum Command {
    Request { input: Input, id: RequestId, reply: Reply },
    Message(Message),
    WriteDone(WriteId),
    WriteFailed(WriteId, String),
    Close(SyncSender<()>),
}

struct Shared {
    status: Mutex<Status>,
    changed: Condvar,
    subscribers: Mutex<Vec<Sender<Event>>>,
    log: Mutex<FsLog>,
}

impl Shared {
    fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log(&self) -> MutexGuard<'_, FsLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A Raft node on a file log and a transport, run by its own threads (the seed's `RaftNode`).
pub struct RaftNode {
    id: NodeId,
    commands: Sender<Command>,
    shared: Arc<Shared>,
    next_request: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
    transport: Arc<dyn Transport>,
}

impl RaftNode {
    /// Opens a node: recovers its state from `log`, connects it to `transport`, and starts its
    /// threads. With a state machine, committed entries are applied to it and appends answer its
    /// responses. The config's seed is replaced by a fresh random one (the core's contract).
    pub fn open(
        config: Config,
        log: FsLog,
        transport: Arc<dyn Transport>,
        state_machine: Option<Box<dyn StateMachine>>,
    ) -> Result<RaftNode, DriverError> {
        RaftNode::open_with(config, log, transport, state_machine, NodeOptions::default())
    }

    /// [`RaftNode::open`] with options.
    pub fn open_with(
        mut config: Config,
        log: FsLog,
        transport: Arc<dyn Transport>,
        state_machine: Option<Box<dyn StateMachine>>,
        options: NodeOptions,
    ) -> Result<RaftNode, DriverError> {
        config.seed = OsRng.next_u64();
        config.state_machine = state_machine.is_some();
        let recovered = log.recovered(config.memory_entries_max).map_err(DriverError::Log)?;
        let raft = Raft::new(config, recovered).map_err(DriverError::Start)?;
        let id = raft.id();
        let shared = Arc::new(Shared {
            status: Mutex::new(Status::default()),
            changed: Condvar::new(),
            subscribers: Mutex::new(Vec::new()),
            log: Mutex::new(log),
        });
        let (commands, inbox) = mpsc::channel();
        let (writes, disk_jobs) = mpsc::channel();
        let disk = {
            let (shared, done) = (Arc::clone(&shared), commands.clone());
            std::thread::Builder::new()
                .name(format!("raft-{id}-disk"))
                .spawn(move || disk_loop(&shared, &disk_jobs, &done))
                .map_err(DriverError::Thread)?
        };
        let deliver = commands.clone();
        transport.register(id, Box::new(move |message| drop(deliver.send(Command::Message(message)))));
        let node = NodeLoop {
            raft,
            start: Instant::now(),
            shared: Arc::clone(&shared),
            transport: Arc::clone(&transport),
            state_machine,
            pending: BTreeMap::new(),
            writes,
            disk: Some(disk),
            out: Vec::new(),
            unapplied: VecDeque::new(),
            last_write: None,
            owed_since: None,
            stall_reported: false,
            options,
        };
        let thread = std::thread::Builder::new()
            .name(format!("raft-{id}"))
            .spawn(move || node.run(&inbox))
            .map_err(DriverError::Thread)?;
        Ok(RaftNode {
            id,
            commands,
            shared,
            next_request: AtomicU64::new(1),
            thread: Mutex::new(Some(thread)),
            transport,
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    fn request(&self, make: impl FnOnce(RequestId) -> Input) -> Result<Response, ClientError> {
        let id = RequestId(self.next_request.fetch_add(1, Ordering::Relaxed));
        let (reply, answer) = mpsc::sync_channel(1);
        let input = make(id);
        self.commands.send(Command::Request { input, id, reply }).map_err(|_| ClientError::Closed)?;
        // The core answers every request exactly once (or the node closes).
        answer.recv().unwrap_or(Err(ClientError::Closed))
    }

    /// Appends one entry (forwarded to the leader from any node); returns its seq and, with a
    /// state machine, its response.
    pub fn append(&self, data: Bytes) -> Result<(Seq, Option<Bytes>), ClientError> {
        match self.request(|id| Input::Append { id, data })? {
            Response::Appended { seq, mut responses } => Ok((seq, responses.pop())),
            Response::Read { .. } => Err(ClientError::Invalid("a read answered an append".into())),
        }
    }

    /// Appends entries at consecutive seqs; returns the first seq and the responses.
    pub fn append_batch(&self, data: Vec<Bytes>) -> Result<(Seq, Vec<Bytes>), ClientError> {
        match self.request(|id| Input::AppendBatch { id, data })? {
            Response::Appended { seq, responses } => Ok((seq, responses)),
            Response::Read { .. } => Err(ClientError::Invalid("a read answered an append".into())),
        }
    }

    /// A linearizable read through the state machine (forwarded to the leader): the seq it was
    /// answered at, and the answer.
    pub fn read(&self, command: Bytes) -> Result<(Option<Seq>, Bytes), ClientError> {
        match self.request(|id| Input::Read { id, command })? {
            Response::Read { seq, response } => Ok((seq, response)),
            Response::Appended { .. } => Err(ClientError::Invalid("an append answered a read".into())),
        }
    }

    /// What the node knows now.
    pub fn status(&self) -> Status {
        self.shared.status().clone()
    }

    /// The last entry's payload (the seed's `head`).
    pub fn head(&self) -> Result<Option<Bytes>, LogError> {
        Ok(self.shared.log().head()?.and_then(|entry| entry.payload.data().cloned()))
    }

    /// Runs `f` on the node's log (to read it). The disk thread waits meanwhile: keep it short.
    pub fn with_log<T>(&self, f: impl FnOnce(&mut FsLog) -> T) -> T {
        f(&mut self.shared.log())
    }

    /// Waits until the node knows a leader whose term has a committed entry (the seed's
    /// `awaitLeader`); `None` after `timeout`.
    pub fn await_leader(&self, timeout: Duration) -> Option<NodeId> {
        let deadline = Instant::now() + timeout;
        let mut status = self.shared.status();
        loop {
            if status.closed {
                return None;
            }
            if let (Some(leader), Some(_)) = (status.leader, status.commit) {
                return Some(leader);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            status = self.shared.changed.wait_timeout(status, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Events from now on: change, commit, apply, warn, error.
    pub fn events(&self) -> Receiver<Event> {
        let (sender, receiver) = mpsc::channel();
        self.shared.subscribers.lock().unwrap_or_else(|p| p.into_inner()).push(sender);
        receiver
    }

    /// Closes the node: pending requests get `Closed`, and it returns once every write the
    /// node issued is durable.
    pub fn close(&self) {
        let (ack, done) = mpsc::sync_channel(1);
        if self.commands.send(Command::Close(ack)).is_ok() {
            let _ = done.recv();
        }
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
        self.transport.unregister(self.id);
    }
}

impl Drop for RaftNode {
    fn drop(&mut self) {
        self.close();
    }
}

/// The node loop's state (on its own thread).
struct NodeLoop {
    raft: Raft,
    start: Instant,
    shared: Arc<Shared>,
    transport: Arc<dyn Transport>,
    state_machine: Option<Box<dyn StateMachine>>,
    pending: BTreeMap<RequestId, Reply>,
    writes: Sender<(WriteId, Write)>,
    disk: Option<JoinHandle<()>>,
    out: Vec<Output>,
    /// Committed entries the state machine has not taken yet (it failed: retried shortly).
    unapplied: VecDeque<Vec<Entry>>,
    /// The last write handed to the disk thread, and since when the disk owes one.
    last_write: Option<WriteId>,
    owed_since: Option<Instant>,
    /// Whether the current stall was reported.
    stall_reported: bool,
    options: NodeOptions,
}

/// How a node runs, beyond the core's config.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// A log write not durable after this long raises an error event (the seed's storage
    /// timeout); a warn event follows when it completes. Default 5 s.
    pub storage_stall: Duration,
}

impl Default for NodeOptions {
    fn default() -> NodeOptions {
        NodeOptions { storage_stall: Duration::from_secs(5) }
    }
}

/// How soon a failed apply is tried again.
const APPLY_RETRY: Duration = Duration::from_millis(100);

impl NodeLoop {
    fn now(&self) -> Time {
        Time(self.start.elapsed().as_nanos() as u64)
    }

    fn run(mut self, inbox: &Receiver<Command>) {
        self.step(Input::Tick);
        loop {
            let mut wait = match self.raft.deadline() {
                Some((at, _)) => Duration::from_nanos(at.0.saturating_sub(self.now().0)),
                None => Duration::from_secs(3600),
            };
            if !self.unapplied.is_empty() {
                wait = wait.min(APPLY_RETRY);
            }
            if let Some(since) = self.owed_since.filter(|_| !self.stall_reported) {
                match (since + self.options.storage_stall).checked_duration_since(Instant::now()) {
                    Some(left) => wait = wait.min(left),
                    None => {
                        self.stall_reported = true;
                        let waited = since.elapsed().as_secs_f64();
                        let text = format!("storage stalled: a log write is not durable after {waited:.1} s");
                        publish(&self.shared, Event::Error(text));
                    }
                }
            }
            let command = match inbox.recv_timeout(wait) {
                Ok(command) => command,
                Err(RecvTimeoutError::Timeout) => {
                    self.step(Input::Tick);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            match command {
                Command::Request { input, id, reply } => {
                    self.pending.insert(id, reply);
                    self.step(input);
                }
                Command::Message(message) => self.step(Input::Message(message)),
                Command::WriteDone(id) => {
                    self.written(id);
                    self.step(Input::WriteDone { id });
                }
                Command::WriteFailed(id, error) => self.step(Input::WriteFailed { id, error }),
                Command::Close(ack) => return self.close(ack),
            }
        }
    }

    fn close(mut self, ack: SyncSender<()>) {
        self.step(Input::Close);
        // The disk thread finishes every queued write, then stops.
        let (writes, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.writes, writes));
        if let Some(disk) = self.disk.take() {
            let _ = disk.join();
        }
        self.shared.status().closed = true;
        self.shared.changed.notify_all();
        let _ = ack.send(());
    }

    /// Steps the core, then carries out its outputs (the state machine and loads answer at once).
    fn step(&mut self, input: Input) {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            let now = self.now();
            let mut out = std::mem::take(&mut self.out);
            self.raft.step_into(now, input, &mut out);
            for output in out.drain(..) {
                if let Some(next) = self.output(output) {
                    inputs.push_back(next);
                }
            }
            self.out = out;
            if inputs.is_empty() {
                inputs.extend(self.apply_queued());
            }
        }
        // Role, leader, term and followers come with the core's change events (see `output`).
        let mut status = self.shared.status();
        let moved = (status.seq, status.commit) != (self.raft.seq(), self.raft.commit());
        status.seq = self.raft.seq();
        status.commit = self.raft.commit();
        drop(status);
        if moved {
            self.shared.changed.notify_all();
        }
    }

    fn output(&mut self, output: Output) -> Option<Input> {
        match output {
            Output::Send(message) => self.transport.send(message),
            Output::Write { id, write } => {
                self.last_write = Some(id);
                self.owed_since.get_or_insert_with(Instant::now);
                let _ = self.writes.send((id, write));
            }
            Output::LoadEntries { from, to } => {
                // The log's iterator reads in chunks (one read per entry would be a syscall each).
                let count = (to.0 - from.0 + 1) as usize;
                let entries: Result<Vec<Entry>, LogError> = self.shared.log().iter(from).take(count).collect();
                return Some(match entries {
                    Ok(entries) if entries.len() == count => Input::EntriesLoaded { entries },
                    Ok(entries) => {
                        Input::LoadFailed { error: format!("{} of {count} entries in the log", entries.len()) }
                    }
                    Err(error) => Input::LoadFailed { error: error.to_string() },
                });
            }
            Output::Apply { entries } => {
                if self.state_machine.is_some() {
                    self.unapplied.push_back(entries);
                }
            }
            Output::Read { id, seq, command } => {
                let machine = self.state_machine.as_mut()?;
                return match machine.read(Some(seq), &command) {
                    Ok(response) => Some(Input::ReadDone { id, response }),
                    Err(error) => {
                        publish(&self.shared, Event::Error(format!("state machine read failed: {error}")));
                        Some(Input::ReadDone { id, response: Bytes::new() })
                    }
                };
            }
            Output::Reply { id, result } => {
                if let Some(reply) = self.pending.remove(&id) {
                    let _ = reply.send(result);
                }
            }
            Output::Event(event) => {
                if let Event::Change { role, leader, followers, term, .. } = &event {
                    let mut status = self.shared.status();
                    (status.role, status.leader, status.term) = (*role, *leader, *term);
                    status.followers.clone_from(followers);
                    drop(status);
                    self.shared.changed.notify_all();
                }
                publish(&self.shared, event);
            }
        }
        None
    }

    /// The disk made everything up to `id` durable.
    fn written(&mut self, id: WriteId) {
        if self.stall_reported {
            let waited = self.owed_since.map_or(0.0, |since| since.elapsed().as_secs_f64());
            publish(
                &self.shared,
                Event::Warn(format!("storage recovered: a stalled write became durable after {waited:.1} s")),
            );
        }
        self.stall_reported = false;
        // Writes after `id` are owed from now on (the disk starts on them now).
        self.owed_since = (self.last_write != Some(id)).then(Instant::now);
    }

    /// Hands queued committed entries to the state machine, in order; one that fails keeps
    /// its entries (and those after) for the next try, as in the seed.
    fn apply_queued(&mut self) -> Vec<Input> {
        let mut applied = Vec::new();
        let Some(machine) = self.state_machine.as_mut() else { return applied };
        while let Some(entries) = self.unapplied.front() {
            let first = entries[0].seq;
            let payloads: Vec<Option<Bytes>> = entries.iter().map(|e| e.payload.data().cloned()).collect();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| machine.apply(first, &payloads)));
            let problem = match result {
                Ok(Ok(responses)) if responses.len() == entries.len() => {
                    applied.push(Input::Applied { first, responses });
                    self.unapplied.pop_front();
                    continue;
                }
                Ok(Ok(responses)) => format!("{} responses for {} entries", responses.len(), entries.len()),
                Ok(Err(error)) => error,
                Err(_) => "it panicked".to_string(),
            };
            publish(&self.shared, Event::Error(format!("state machine apply from {first} failed: {problem}")));
            break;
        }
        applied
    }
}

fn publish(shared: &Shared, event: Event) {
    shared.subscribers.lock().unwrap_or_else(|p| p.into_inner()).retain(|s| s.send(event.clone()).is_ok());
}

/// The disk thread: everything queued goes to the log together (consecutive entry writes as one
/// batch: one write, one fdatasync), then the last write is reported done.
fn disk_loop(shared: &Shared, jobs: &Receiver<(WriteId, Write)>, done: &Sender<Command>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        batch.extend(jobs.try_iter());
        let mut log = shared.log();
        let mut last = None;
        let mut entries: Vec<Entry> = Vec::new();
        let mut result = Ok(());
        for (id, write) in batch {
            match write {
                Write::Entries(more) => entries.extend(more),
                other => {
                    result = result.and_then(|()| flush(&mut log, &mut entries)).and_then(|()| log.apply(&other));
                }
            }
            if let Err(error) = &result {
                let _ = done.send(Command::WriteFailed(id, error.to_string()));
                return; // The log is poisoned: nothing more is durable.
            }
            last = Some(id);
        }
        if let Err(error) = flush(&mut log, &mut entries) {
            let _ = done.send(Command::WriteFailed(last.expect("a batch has a write"), error.to_string()));
            return;
        }
        drop(log);
        if let Some(id) = last {
            let _ = done.send(Command::WriteDone(id));
        }
    }
}

fn flush(log: &mut FsLog, entries: &mut Vec<Entry>) -> Result<(), LogError> {
    if entries.is_empty() {
        return Ok(());
    }
    let write = Write::Entries(std::mem::take(entries));
    log.apply(&write)
}
