//! [`LogOnly`]: the state machine of a log that is the product, compacted by snapshots.

use super::StateMachine;
use crate::core::Seq;
use bytes::Bytes;
use std::io::Read;

/// A state machine that keeps nothing, for a log that is the product (the JavaScript library's
/// use, as with no state machine at all) but whose prefix goes by snapshot, as Kafka's log
/// start offset does.
///
/// Without a state machine, removing a log's prefix is the user's call, and a follower that
/// needs removed entries (it lost its disk, or joined since) can never catch up: it is stranded
/// (see [`Status::stranded`](super::Status::stranded)). With `LogOnly`, a node opened with
/// [`RaftNode::open_restoring`](super::RaftNode::open_restoring) takes snapshots by
/// `Config::snapshot_entries` or `snapshot_bytes` (or on `node.snapshot()`), which are empty:
/// the prefix they cover goes, and such a follower installs the leader's latest one and takes
/// the entries after it, so it comes back, or joins, with a log that starts there.
///
/// Appends are answered with an empty response once committed and applied; a read is a
/// linearizable barrier: `node.read(Bytes::new())` answers, empty, the seq the leader had
/// applied when it confirmed its leadership.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogOnly;

impl StateMachine for LogOnly {
    fn apply(&mut self, _first: Seq, entries: &[Option<Bytes>]) -> Result<Vec<Bytes>, String> {
        Ok(vec![Bytes::new(); entries.len()])
    }

    fn read(&mut self, _seq: Option<Seq>, _command: &[u8]) -> Result<Bytes, String> {
        Ok(Bytes::new())
    }

    fn snapshot(&mut self) -> Option<Result<Box<dyn Read + Send>, String>> {
        Some(Ok(Box::new(std::io::empty())))
    }

    /// Takes only an empty snapshot: one with bytes was taken by another state machine, whose
    /// state this one cannot hold.
    fn restore(&mut self, input: &mut dyn Read) -> Result<(), String> {
        let mut byte = [0u8; 1];
        match input.read(&mut byte) {
            Ok(0) => Ok(()),
            Ok(_) => Err("a LogOnly node restores only empty snapshots: this one holds bytes \
                          (taken by another state machine?)"
                .into()),
            Err(error) => Err(format!("reading the snapshot: {error}")),
        }
    }

    fn keeps_no_state(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_empty_and_restores_only_empty_snapshots() {
        let mut machine = LogOnly;
        let answers = machine.apply(Seq(4), &[None, Some(Bytes::from("x"))]).unwrap();
        assert_eq!(answers, vec![Bytes::new(), Bytes::new()]);
        let mut stream = machine.snapshot().unwrap().unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        assert!(bytes.is_empty());
        assert!(machine.restore(&mut std::io::empty()).is_ok());
        let error = machine.restore(&mut &b"state"[..]).unwrap_err();
        assert!(error.contains("only empty snapshots"), "{error}");
    }
}
