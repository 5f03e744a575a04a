//! The sans-IO Raft core: a pure, deterministic state machine.
//!
//! No clock, no randomness from the OS, no files, sockets or threads live here: time comes in
//! as an argument, randomness from the seed in the [`Config`], storage and network are outputs
//! the driver carries out. The simulator, the fuzzers and both drivers run exactly this code.
//!
//! A tour, in the order a request flows:
//! - [`Raft::step`] takes an [`Input`] (a tick, a message, a client request, a storage
//!   completion) and returns [`Output`]s (messages, storage writes, entries to apply, replies).
//!   [`Stepper`] is the loop around it that every host runs (`stepper.rs`).
//! - `durability.rs`: storage writes in order, and what waits for them to be durable.
//! - `election.rs`: timers, pre-vote, votes persisted before they are sent, check-quorum.
//! - `replication.rs`: the leader's per-follower progress (probe, then pipelined appends), the
//!   follower's side (truncate only on a real conflict), the commit rule of Raft §5.4.2.
//! - `client.rs`: appends and reads, forwarding to the leader, apply and ReadIndex reads.
//! - `role.rs`: the role as an enum of states: what only a candidate or a leader keeps.
//! - `transfer.rs`: leader transfer (the target is caught up, then told to campaign).
//! - `rejoin.rs`: a node that lost data catches up before it votes again.
//! - `snapshot.rs`: snapshots by policy, prefix removal, streamed installs to followers.
//! - `prefix.rs`: prefix removal on request (without a state machine, the user's call).
//! - `log.rs`: the log as the core sees it (terms of all entries, a tail of entries in memory).
//! - `membership.rs`: voters and learners, and joint configurations (their quorums).
//! - `change.rs`: membership changes: learners, catch-up, joint consensus, automatic leave.
//! - `members.rs`: the configuration in force: quorums, voters, the peers a leader replicates to.
//! - `quorum.rs`: majority, numeric, group and custom quorum rules, checked for intersection.
//! - `codec.rs`: the wire format.

mod change;
mod client;
pub mod codec;
mod config;
mod durability;
mod election;
mod held;
mod io;
mod log;
mod members;
mod membership;
mod message;
mod mutant;
mod prefix;
mod quorum;
mod raft;
mod rejoin;
mod replication;
mod rng;
mod role;
mod snapshot;
mod stepper;
mod transfer;
mod types;

pub use change::MembershipChange;
pub use config::{Config, ConfigError};
pub use held::HeldMessages;
pub use io::{ClientError, Event, Input, Output, Response, Wake, Write};
pub use log::{Recovered, RecoveryError};
pub use membership::{Configuration, Membership};
pub use message::{AppendResult, Body, ForwardId, ForwardRequest, Message};
#[cfg(feature = "mutants")]
pub use mutant::Mutant;
pub use quorum::{Quorum, QuorumFn};
pub use raft::{Raft, StartError};
pub use rng::Rng;
pub use stepper::Stepper;
pub use types::{
    Entry, HardState, LogId, NodeId, Payload, ReadId, RequestId, Role, Seq, SnapshotMeta, Term, Time, WriteId,
};
