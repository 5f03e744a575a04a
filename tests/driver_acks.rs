//! The drivers send a message bound to a write (`Output::SendAfter`: a follower's
//! acknowledgement, a vote) from the disk thread once the write is durable, and never when the
//! write fails.

use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tinyraftplus::core::{Config, Entry, HardState, LogId, NodeId, Recovered, Seq, Term};
use tinyraftplus::driver::{InProcessNetwork, RaftNode};
use tinyraftplus::log::{LogError, LogStore, MemLog};

/// A log in memory whose entry writes fail once `failing` is set (a disk that broke).
struct BreakingLog {
    inner: MemLog,
    failing: Arc<AtomicBool>,
}

impl LogStore for BreakingLog {
    fn seq(&self) -> Option<Seq> {
        LogStore::seq(&self.inner)
    }
    fn last_term(&self) -> Option<Term> {
        LogStore::last_term(&self.inner)
    }
    fn append_batch(&mut self, entries: &[(Term, Option<&[u8]>)]) -> Result<Seq, LogError> {
        LogStore::append_batch(&mut self.inner, entries)
    }
    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        match self.failing.load(Ordering::SeqCst) {
            true => Err(LogError::Invalid("the disk broke".into())),
            false => LogStore::append_entries(&mut self.inner, entries),
        }
    }
    fn save_committed_config(&mut self, entry: &Entry) -> Result<(), LogError> {
        LogStore::save_committed_config(&mut self.inner, entry)
    }
    fn trim(&mut self, seq: Option<Seq>) -> Result<(), LogError> {
        LogStore::trim(&mut self.inner, seq)
    }
    fn remove_prefix(&mut self, through: Seq) -> Result<(), LogError> {
        LogStore::remove_prefix(&mut self.inner, through)
    }
    fn reset_after(&mut self, last: LogId) -> Result<(), LogError> {
        LogStore::reset_after(&mut self.inner, last)
    }
    fn next_seq(&self) -> Seq {
        LogStore::next_seq(&self.inner)
    }
    fn read(&self, seq: Seq) -> Result<Option<Entry>, LogError> {
        LogStore::read(&self.inner, seq)
    }
    fn hard_state(&self) -> HardState {
        LogStore::hard_state(&self.inner)
    }
    fn save_hard_state(&mut self, state: HardState) -> Result<(), LogError> {
        LogStore::save_hard_state(&mut self.inner, state)
    }
    fn recovered(&self, tail: usize) -> Result<Recovered, LogError> {
        LogStore::recovered(&self.inner, tail)
    }
}

/// Once both followers' disks break, their acknowledgements (bound to the writes that failed)
/// never leave: the leader's next append does not commit (it fails once the leader steps
/// down). A driver that sent them without waiting for their writes lets it commit (checked).
#[test]
fn an_acknowledgement_bound_to_a_failed_write_is_never_sent() {
    let network = InProcessNetwork::new();
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let failing: Vec<Arc<AtomicBool>> = ids.iter().map(|_| Arc::new(AtomicBool::new(false))).collect();
    let nodes: Vec<RaftNode<BreakingLog>> = ids
        .iter()
        .zip(&failing)
        .map(|(id, failing)| {
            let mut config = Config::new(*id, ids.clone());
            config.election_timeout = Duration::from_millis(1000);
            config.ping_timeout = Duration::from_millis(1000);
            let log = BreakingLog { inner: MemLog::default(), failing: Arc::clone(failing) };
            RaftNode::open(config, log, network.clone(), None).unwrap()
        })
        .collect();
    let leader = nodes[0].await_leader(Duration::from_secs(30)).expect("a leader");
    let at = (leader.0 - 1) as usize;
    nodes[at].append(Bytes::from("before")).expect("committed while every disk works");
    for (i, failing) in failing.iter().enumerate() {
        failing.store(i != at, Ordering::SeqCst);
    }
    let result = nodes[at].append(Bytes::from("after"));
    assert!(result.is_err(), "no follower made it durable, yet it committed: {result:?}");
    let status = nodes[at].status();
    assert!(status.commit < status.seq, "the entry is not committed: {status:?}");
}
