//! [`HeldMessages`]: the messages a loop holds for [`Output::SendAfter`](super::Output::SendAfter)
//! until their writes are durable (the simulator, the test kit and the fuzzers share it; the
//! drivers' disk thread keeps its own, one batch at a time).

use super::message::Message;
use super::types::WriteId;
use std::collections::VecDeque;

/// Messages waiting for their writes ([`Output::SendAfter`](super::Output::SendAfter)), in order,
/// and the last write made durable since the core started. A loop that restarts its core starts a
/// new one: write ids start again.
#[derive(Debug)]
pub struct HeldMessages {
    held: VecDeque<(WriteId, Message)>,
    durable: WriteId,
}

impl Default for HeldMessages {
    fn default() -> HeldMessages {
        HeldMessages { held: VecDeque::new(), durable: WriteId(0) }
    }
}

impl HeldMessages {
    /// Holds `message` until write `write` is durable; returns it at once if it is already.
    pub fn hold(&mut self, write: WriteId, message: Message) -> Option<Message> {
        if write <= self.durable {
            return Some(message);
        }
        self.held.push_back((write, message));
        None
    }

    /// Write `write` (and every one before it) is durable: the messages it releases, in order.
    pub fn durable(&mut self, write: WriteId) -> Vec<(WriteId, Message)> {
        self.durable = self.durable.max(write);
        let released = self.held.iter().take_while(|(after, _)| *after <= write).count();
        self.held.drain(..released).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Body, NodeId, Term};

    fn message(n: u64) -> Message {
        Message { from: NodeId(2), to: NodeId(1), term: Term(n), body: Body::VoteResponse { granted: true } }
    }

    #[test]
    fn messages_wait_for_their_write_and_leave_in_order() {
        let mut held = HeldMessages::default();
        assert_eq!(held.hold(WriteId(2), message(1)), None);
        assert_eq!(held.hold(WriteId(3), message(2)), None);
        assert_eq!(held.durable(WriteId(1)), vec![], "an earlier write releases nothing");
        assert_eq!(held.durable(WriteId(3)), vec![(WriteId(2), message(1)), (WriteId(3), message(2))]);
        assert_eq!(held.hold(WriteId(3), message(3)), Some(message(3)), "its write is durable already");
    }
}
