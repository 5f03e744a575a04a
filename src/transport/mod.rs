//! Transports: how messages reach peers. [`InProcessNetwork`] connects nodes in one process
//! (every message goes through the wire codec, as over a socket); [`TcpTransport`] connects
//! them over TCP with authenticated encryption (Noise).

use crate::core::{codec, Message, NodeId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

mod noise;
mod tcp;

pub use noise::{ChannelError, Keypair, Security};
pub use tcp::{TcpOptions, TcpTransport};

/// Where a node's messages go. Sending is best effort and never blocks: Raft retries what is
/// lost.
pub trait Transport: Send + Sync + 'static {
    /// Sends `message` to `message.to`.
    fn send(&self, message: Message);
    /// From now on, messages for `id` (and the transport's warnings) go to `inbox`.
    fn register(&self, id: NodeId, inbox: Arc<dyn Inbox>);
    /// Stops delivering to `id` (its messages are dropped, as a crashed node's would be).
    fn unregister(&self, id: NodeId);
    /// The configuration in force names node `id` with this address blob (see
    /// [`Membership::with_address`](crate::core::Membership::with_address)): a transport that
    /// dials peers by address learns a new one here. The default does nothing.
    fn learn(&self, id: NodeId, address: &[u8]) {
        let _ = (id, address);
    }
}

/// A node's side of a transport.
pub trait Inbox: Send + Sync {
    /// A message arrived.
    fn deliver(&self, message: Message);
    /// Something went wrong that the node should report (a refused connection, garbage bytes).
    fn warn(&self, text: String);
}

type Deliver = Arc<dyn Inbox>;

/// The next item if one comes within a few hundred yields: under load the next one usually does,
/// and taking it without parking spares the sender a wake-up (a syscall and a context switch)
/// and the receiver the wait to be scheduled again, which on a busy machine is the longer.
/// Measured with the storage on tmpfs, where only the drivers' costs remain: sequential
/// appends went from 8,500 to 32,000 per second with 16 yields (on the node loop and the disk
/// thread). With 64 instead of 16, 256 tasks appending through three nodes on one disk
/// (`raft3_concurrent256`) reached 106-120x the raw fdatasync rate against 63-91x, in five
/// alternating runs each (79-147x in seven more); sequential appends and batches measured
/// the same then. With 256 instead of 64 (2026-12-04, on the disk): 256 tasks 81-91x (median
/// 89x) against 80-87x (85x) in five alternating runs each; sequential appends 4,450-5,020 per
/// second against 4,180-4,220 (three pairs), over TCP 4,100-4,400 against 3,700-3,870 (two);
/// batches of 1,000, growing, 0.53-0.56 of the synced bandwidth against 0.48-0.50, compacting
/// 0.79-0.86 against 0.66-0.69 (three pairs); 256 threads the same. 512 measured as 256 for
/// the tasks, and 1,024 as 256 for batches.
pub(crate) fn spin_recv<T>(inbox: &std::sync::mpsc::Receiver<T>) -> Option<T> {
    for _ in 0..256 {
        if let Ok(item) = inbox.try_recv() {
            return Some(item);
        }
        std::thread::yield_now();
    }
    None
}

/// Nodes in one process, connected directly.
#[derive(Default)]
pub struct InProcessNetwork {
    nodes: Mutex<BTreeMap<NodeId, Deliver>>,
}

impl InProcessNetwork {
    /// An empty network.
    pub fn new() -> Arc<InProcessNetwork> {
        Arc::new(InProcessNetwork::default())
    }
}

impl Transport for InProcessNetwork {
    fn send(&self, message: Message) {
        let deliver = self.nodes.lock().unwrap_or_else(|p| p.into_inner()).get(&message.to).cloned();
        let Some(deliver) = deliver else { return };
        // Through the codec, as over a socket: what a peer receives is what it would decode.
        let bytes = codec::encode_to_bytes(&message);
        if let Ok(decoded) = codec::decode(&bytes) {
            deliver.deliver(decoded);
        }
    }

    fn register(&self, id: NodeId, inbox: Arc<dyn Inbox>) {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner()).insert(id, inbox);
    }

    fn unregister(&self, id: NodeId) {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}
