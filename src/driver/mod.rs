//! Drivers: thin loops that carry out what the core asks for, on real files and real (or
//! in-process) networks. [`RaftNode`] is the blocking driver (std threads); `AsyncRaftNode`
//! (feature `tokio`) is the same node with async calls. Both are thin: the node loop and the
//! disk thread (`node`, `disk`) are theirs in common, and the protocol is the core's.
//!
//! The driver's whole job: feed every input to the core's `step` with the current time; carry out
//! the outputs. Storage writes go to a disk thread, which makes everything queued durable with one
//! write and one fdatasync per batch and reports the last write done; messages go to the transport
//! (those bound to a write, from the disk thread once it is durable); committed entries go to the
//! [`StateMachine`]; replies go back to the callers.

mod answers;
#[cfg(feature = "tokio")]
mod async_node;
mod blocking;
mod disk;
mod log_only;
mod node;
mod snapshots;
mod stats;

pub use crate::transport::{InProcessNetwork, Transport};
#[cfg(feature = "tokio")]
pub use async_node::AsyncRaftNode;
pub use blocking::RaftNode;
pub use log_only::LogOnly;
pub use node::{DriverError, DriverStats, Status};

use crate::core::Seq;
use bytes::Bytes;

/// The user's state machine: committed entries are applied to it in order, and reads are
/// answered by it (after the leader confirmed its leadership and the entries up to the read's
/// seq are applied).
pub trait StateMachine: Send + 'static {
    /// Applies entries from seq `first` on (a blank entry is `None`); returns one response per
    /// entry. An error is reported as an error event and the same entries are offered again.
    fn apply(&mut self, first: Seq, entries: &[Option<Bytes>]) -> Result<Vec<Bytes>, String>;
    /// Answers a read command at `seq` (the last entry applied). An error is reported as an
    /// error event and the read is answered with an empty response (the core has no failed
    /// read yet).
    fn read(&mut self, seq: Option<Seq>, command: &[u8]) -> Result<Bytes, String>;
    /// A point-in-time view of the state after the last entry applied, as a stream of bytes of
    /// any length (`None`: this machine takes no snapshots, the default). The stream is read on
    /// another thread while applying goes on, so later applies must not change what it yields
    /// (a copy-on-write view, a file written for it, a copy).
    fn snapshot(&mut self) -> Option<Result<Box<dyn std::io::Read + Send>, String>> {
        None
    }
    /// Replaces the whole state with the one a [`snapshot`](StateMachine::snapshot) stream
    /// gave (read from `input`, of any length).
    fn restore(&mut self, input: &mut dyn std::io::Read) -> Result<(), String> {
        let _ = input;
        Err("this state machine takes no snapshots".into())
    }
    /// Whether this machine keeps no state at all (as [`LogOnly`]): then a log whose prefix
    /// went with no snapshot covering it (removed before the move to this machine) is applied
    /// from its first entry. Any other machine cannot be rebuilt from such a log, and the node
    /// stops with an error event. Default: `false`.
    fn keeps_no_state(&self) -> bool {
        false
    }
}
