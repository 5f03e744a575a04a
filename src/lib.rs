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
//! to the state machine in order and reported; messages may be lost.** The contract in full is
//! on [`core::Output`]; [`core::Stepper`] is the loop that keeps it. Nothing unsafe is ever
//! emitted early: a vote, or an acknowledgement of entries, appears only after the write it
//! depends on has been reported durable.
//!
//! ```
//! use tinyraftplus::core::{Config, Input, NodeId, Output, Raft, Recovered, Stepper, Time};
//!
//! let config = Config::new(NodeId(1), [NodeId(1)]);
//! let mut raft = Raft::new(config, Recovered::default()).expect("valid config");
//! let (mut now, mut out) = (Time(0), Vec::new());
//! while !raft.is_leader() {
//!     // What woke us (here: the deadline passed), then the answers we have at once, in order.
//!     let mut stepper = Stepper::new([Input::Tick]);
//!     while stepper.step(&mut raft, now, &mut out) {
//!         for output in out.drain(..) {
//!             match output {
//!                 // A real driver makes the write durable (fsync) before it reports it.
//!                 Output::Write { id, .. } => stepper.push(Input::WriteDone { id }),
//!                 Output::Send(_message) => { /* hand to the transport */ }
//!                 _ => { /* loads, applies, reads, replies and events: see the contract */ }
//!             }
//!         }
//!     }
//!     now = raft.deadline().expect("a follower always has an election deadline").0;
//! }
//! assert!(raft.is_leader());
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

pub mod core;
pub mod driver;
pub mod log;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transport;
