//! # tinyraftplus
//!
//! A Raft consensus library: it elects a leader, replicates a durable log and (optionally)
//! applies it to your state machine, so a cluster keeps working while any quorum of nodes is
//! alive. It is the Rust successor of the JavaScript library tinyraftplus: the same vocabulary
//! (`append`, `append_batch`, `read`, `seq`, `head`, quorum groups), without its safety bugs.
//!
//! What it is not: a network or storage framework. The protocol lives in a pure state machine,
//! [`core::Raft`], which never touches a clock, a file, a socket, a thread or the OS's random
//! numbers. Drivers (and the simulator, and the fuzzers) run exactly that code.
//!
//! ## The run loop: the driver's whole job
//!
//! **Feed every input to [`Raft::step`](core::Raft::step) with the current time; carry out the
//! outputs: writes made durable in order and reported, loads answered, applies and reads handed
//! to the state machine in order and reported; messages may be lost, and those bound to a write
//! wait until it is durable.** The contract in full is on [`core::Output`]; [`core::Stepper`]
//! is the loop that keeps it. Nothing unsafe is ever emitted early: a vote, or an
//! acknowledgement of entries, is bound to the write it depends on
//! ([`SendAfter`](core::Output::SendAfter)), or sent once that write has been reported durable.
//!
//! Three nodes in one loop of your own, each with its storage (here [`log::MemLog`]) and a
//! state machine (a sum of the numbers appended), over a network that is a queue: the loop every
//! embedding needs, correct as written (the crate's drivers do the same with files, sockets and
//! threads).
//!
//! ```
//! use std::collections::VecDeque;
//! use tinyraftplus::bytes::Bytes;
//! use tinyraftplus::core::{ClientError, Config, Input, Message, NodeId, Output, Raft};
//! use tinyraftplus::core::{RequestId, Response, Seq, Stepper, Time};
//! use tinyraftplus::log::{LogStore, MemLog};
//!
//! struct Node {
//!     raft: Raft,
//!     storage: MemLog,
//!     sum: i64,
//!     replies: Vec<(RequestId, Result<Response, ClientError>)>,
//! }
//!
//! impl Node {
//!     /// A start (or restart) builds the core from what the storage holds.
//!     fn start(config: Config, storage: MemLog) -> Node {
//!         let raft = Raft::new(config, storage.recovered(1024).unwrap()).unwrap();
//!         Node { raft, storage, sum: 0, replies: Vec::new() }
//!     }
//!
//!     /// Steps the core with what happened and carries out its outputs in order; what we
//!     /// answer at once goes back in through the stepper.
//!     fn handle(&mut self, now: Time, input: Input, network: &mut VecDeque<Message>) {
//!         let (mut stepper, mut out) = (Stepper::new([input]), Vec::new());
//!         while stepper.step(&mut self.raft, now, &mut out) {
//!             for output in out.drain(..) {
//!                 match output {
//!                     Output::Send(message) => network.push_back(message),
//!                     // Writes are carried out at once and in order here, so the write it
//!                     // waits for is durable already.
//!                     Output::SendAfter { message, .. } => network.push_back(message),
//!                     // Durable first, in order (a file log fsyncs here), then reported.
//!                     Output::Write { id, write } => match self.storage.apply(&write) {
//!                         Ok(()) => stepper.push(Input::WriteDone { id }),
//!                         Err(e) => stepper.push(Input::WriteFailed { id, error: e.to_string() }),
//!                     },
//!                     Output::LoadEntries { from, to } => {
//!                         let entries: Option<Vec<_>> =
//!                             (from.0..=to.0).map(|s| self.storage.read(Seq(s)).ok().flatten()).collect();
//!                         stepper.push(match entries {
//!                             Some(entries) => Input::EntriesLoaded { entries },
//!                             None => Input::LoadFailed { error: "not in storage".into() },
//!                         });
//!                     }
//!                     Output::Apply { entries } => {
//!                         let mut responses = Vec::new();
//!                         for entry in &entries {
//!                             let text = entry.payload.data().map(|d| String::from_utf8_lossy(d).into_owned());
//!                             self.sum += text.and_then(|t| t.parse::<i64>().ok()).unwrap_or(0);
//!                             responses.push(Bytes::from(self.sum.to_string()));
//!                         }
//!                         stepper.push(Input::Applied { first: entries[0].seq, responses });
//!                     }
//!                     Output::Read { id, .. } => {
//!                         stepper.push(Input::ReadDone { id, response: Bytes::from(self.sum.to_string()) })
//!                     }
//!                     Output::Reply { id, result } => self.replies.push((id, result)),
//!                     Output::Event(_) => {}
//!                     // Snapshots are off (`Config::snapshot_entries` is 0) and never asked for.
//!                     Output::TakeSnapshot { .. } | Output::LoadSnapshotChunk { .. } | Output::Restore { .. } => {
//!                         unreachable!("no snapshots in this example")
//!                     }
//!                 }
//!             }
//!         }
//!     }
//! }
//!
//! /// Delivers one message to its node or, with none in flight, moves time to the next
//! /// deadline and ticks the nodes due.
//! fn turn(nodes: &mut [Node], now: &mut Time, network: &mut VecDeque<Message>) {
//!     if let Some(message) = network.pop_front() {
//!         let to = nodes.iter_mut().find(|n| n.raft.id() == message.to).unwrap();
//!         return to.handle(*now, Input::Message(message), network);
//!     }
//!     *now = nodes.iter().filter_map(|n| n.raft.deadline()).map(|(at, _)| at).min().unwrap().max(*now);
//!     assert!(*now < Time(60_000_000_000), "a minute without the outcome awaited");
//!     for node in nodes.iter_mut().filter(|n| n.raft.deadline().is_some_and(|(at, _)| at <= *now)) {
//!         node.handle(*now, Input::Tick, network);
//!     }
//! }
//!
//! let ids = [NodeId(1), NodeId(2), NodeId(3)];
//! let mut nodes: Vec<Node> = ids
//!     .iter()
//!     .map(|id| {
//!         let mut config = Config::new(*id, ids);
//!         config.state_machine = true;
//!         Node::start(config, MemLog::new())
//!     })
//!     .collect();
//! let (mut now, mut network) = (Time(0), VecDeque::new());
//! while !nodes.iter().any(|n| n.raft.is_leader()) {
//!     turn(&mut nodes, &mut now, &mut network);
//! }
//! // Appends through every node (followers forward them to the leader), then a read.
//! for (i, number) in ["5", "7", "30"].into_iter().enumerate() {
//!     nodes[i].handle(now, Input::Append { id: RequestId(1), data: Bytes::from(number) }, &mut network);
//! }
//! nodes[2].handle(now, Input::Read { id: RequestId(2), command: Bytes::new() }, &mut network);
//! while nodes.iter().map(|n| n.replies.len()).sum::<usize>() < 4 {
//!     turn(&mut nodes, &mut now, &mut network);
//! }
//! let read = nodes[2].replies.iter().find(|(id, _)| *id == RequestId(2)).unwrap();
//! assert!(matches!(&read.1, Ok(Response::Read { response, .. }) if response == "42"));
//! ```
//!
//! Time is an argument ([`core::Time`], nanoseconds from any origin); call
//! `step(deadline, Input::Tick)` when [`Raft::deadline`](core::Raft::deadline) passes.
//!
//! ## Ready drivers
//!
//! [`driver::RaftNode`] (blocking) and `driver::AsyncRaftNode` (tokio; feature `tokio`, on by
//! default) run that loop on a node thread and a disk thread, over a [`log::FsLog`] and a
//! [`transport::Transport`]: [`transport::InProcessNetwork`] or [`transport::TcpTransport`]
//! (Noise-encrypted, with a cluster key or per-node keys).
//!
//! ## Panics and errors
//!
//! Bytes from the network or the disk never panic: they are errors ([`core::codec::DecodeError`]).
//! A malformed or unexpected input from a peer or a driver becomes a warn or error event and is
//! ignored. A panic means a bug in this crate: it names the invariant that broke.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use bytes;
pub mod core;
pub mod driver;
pub mod log;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transport;
