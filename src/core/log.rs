//! The core's view of the log: the term of every entry (as runs, a few bytes per term), and the
//! recent tail of entries in memory. Older entries stay in storage and are loaded on demand.

use super::membership::Configuration;
use super::types::{Entry, HardState, LogId, Payload, Seq, SnapshotMeta, Term};
use std::collections::VecDeque;
use std::fmt;

/// What a node starts from: what its storage holds after a restart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The saved term and vote.
    pub hard_state: HardState,
    /// The seq of the first entry in storage (0 unless a prefix was removed).
    pub first: Seq,
    /// The first entry of each run of entries with the same term, ascending, covering the whole
    /// log (a log with entries in terms 1, 1, 1, 3, 3 has `[0@1, 3@3]`).
    pub term_starts: Vec<LogId>,
    /// The last entry in storage.
    pub last: Option<LogId>,
    /// The last entries of the log (any number, possibly none), ending at `last`.
    pub tail: Vec<Entry>,
    /// The log's configuration entries ([`Payload::Config`](super::Payload::Config)),
    /// ascending: every one the log holds, or at least the last one at or below the commit
    /// hint and all after it. None: the log holds no configuration, and `Config::nodes` is in
    /// force.
    pub configs: Vec<Entry>,
    /// The latest committed configuration entry saved apart from the log
    /// ([`Write::Configuration`](super::Write::Configuration)), if any: in force unless the
    /// log holds a later configuration (and again once a truncation takes those), even when
    /// the log no longer holds it.
    pub committed_config: Option<Entry>,
    /// Entries known committed (at or below `hard_state.commit`) that storage found intact
    /// past damage it cut the log before: each one's id and [`Entry::digest`], ascending, all
    /// past `last`. A leader's entries at these seqs must match them, or the node refuses them
    /// (see `rejoin.rs`). Empty unless storage was repaired.
    pub evidence: Vec<(LogId, u64)>,
    /// The latest durable snapshot, if any. Entries it covers may be missing from the log; a
    /// log that holds no entry continues after it. A driver that restored the state machine
    /// from it says so with `Config::apply_seq`; otherwise the core asks for a restore.
    pub snapshot: Option<SnapshotMeta>,
    /// A snapshot being received from a leader, and how many of its bytes are durable: the
    /// install resumes from there.
    pub partial_snapshot: Option<(SnapshotMeta, u64)>,
}

impl Recovered {
    /// The state of a node whose storage holds `entries` (from seq 0) and `hard_state`.
    pub fn from_entries(hard_state: HardState, entries: Vec<Entry>) -> Recovered {
        let mut term_starts: Vec<LogId> = Vec::new();
        for entry in &entries {
            if term_starts.last().map(|start| start.term) != Some(entry.term) {
                term_starts.push(entry.id());
            }
        }
        let last = entries.last().map(Entry::id);
        let configs = entries.iter().filter(|entry| matches!(entry.payload, Payload::Config(_))).cloned().collect();
        let (tail, evidence, committed_config) = (entries, Vec::new(), None);
        let (snapshot, partial_snapshot) = (None, None);
        Recovered {
            hard_state,
            first: Seq(0),
            term_starts,
            last,
            tail,
            configs,
            committed_config,
            evidence,
            snapshot,
            partial_snapshot,
        }
    }

    /// Checks that the parts agree with each other.
    pub fn validate(&self) -> Result<(), RecoveryError> {
        let bad = |why: &str| Err(RecoveryError(why.to_string()));
        for pair in self.term_starts.windows(2) {
            if pair[1].seq <= pair[0].seq || pair[1].term <= pair[0].term {
                return bad("term_starts must increase in both seq and term");
            }
        }
        match (self.term_starts.first(), self.last) {
            (None, None) => {}
            (Some(start), Some(last)) => {
                if start.seq != self.first {
                    return bad("the first term start must be at `first`");
                }
                let last_start = self.term_starts[self.term_starts.len() - 1];
                if last.seq < last_start.seq || last.term != last_start.term {
                    return bad("`last` must be in the last term run");
                }
                if last.term > self.hard_state.term {
                    return bad("the hard state's term is below the last entry's term");
                }
                if last.seq > Seq::MAX {
                    return bad("`last` is past Seq::MAX");
                }
            }
            _ => return bad("term_starts and last must both be empty or both be set"),
        }
        let past_last = |id: &LogId| self.last.is_none_or(|last| id.seq > last.seq);
        let ascending = self.evidence.windows(2).all(|pair| pair[0].0.seq < pair[1].0.seq);
        if !ascending || !self.evidence.iter().all(|(id, _)| past_last(id) && Some(id.seq) <= self.hard_state.commit) {
            return bad("evidence must ascend, past `last`, at or below the commit hint");
        }
        if let Some(snapshot) = &self.snapshot {
            if snapshot.last.seq >= Seq::MAX {
                return bad("the snapshot's last entry is past Seq::MAX");
            }
            if self.last.is_some() && self.first > snapshot.last.seq.next() {
                return bad("entries between the snapshot and the log's first entry are missing");
            }
            let config_ok =
                |entry: &Entry| entry.seq <= snapshot.last.seq && matches!(entry.payload, Payload::Config(_));
            if !snapshot.configuration.as_ref().is_none_or(config_ok) {
                return bad("the snapshot's configuration must be a configuration entry it covers");
            }
        }
        let view = RaftLog::from_runs(self.first, self.term_starts.clone(), self.last);
        let config_ok = |entry: &Entry| matches!(entry.payload, Payload::Config(_)) && view.has(entry.id());
        let ascending = self.configs.windows(2).all(|pair| pair[0].seq < pair[1].seq);
        if !ascending || !self.configs.iter().all(config_ok) {
            return bad("configs must ascend and be configuration entries of the log");
        }
        if !self.committed_config.as_ref().is_none_or(|entry| matches!(entry.payload, Payload::Config(_))) {
            return bad("the committed configuration must be a configuration entry");
        }
        if let (Some(first), Some(last)) = (self.tail.first(), self.tail.last()) {
            if Some(last.id()) != self.last || first.seq < self.first {
                return bad("the tail must end at `last` and start at or after `first`");
            }
            for (offset, entry) in self.tail.iter().enumerate() {
                if entry.seq.0 != first.seq.0 + offset as u64 || view.term_at(entry.seq) != Some(entry.term) {
                    return bad("the tail's seqs or terms disagree with term_starts");
                }
            }
        }
        Ok(())
    }
}

/// Recovered state whose parts disagree: a bug in the storage that produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryError(pub String);

impl fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "recovered state is inconsistent: {}", self.0)
    }
}

impl std::error::Error for RecoveryError {}

/// Why entries could not be read from memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NotInMemory(pub Seq);

/// The log as the core sees it.
#[derive(Clone, Debug)]
pub(crate) struct RaftLog {
    first: Seq,
    /// The entry just before `first`, when its term is known (a snapshot ends there): the
    /// log matches a leader's at it. With no entries, `last` is it.
    base: Option<LogId>,
    /// The last entry, or `base` when the log holds none.
    last: Option<LogId>,
    term_starts: Vec<LogId>,
    /// Entries `tail_first..=last`.
    tail: VecDeque<Entry>,
    /// The latest batch loaded from storage, below the tail.
    loaded: VecDeque<Entry>,
    /// The configuration entries, decoded, ascending: the last one is in force (Raft thesis
    /// §4.1: a node uses the latest configuration in its log, committed or not). It may start
    /// with the committed one saved apart from the log (`pinned`), which no truncation removes.
    configs: Vec<(LogId, Configuration)>,
    /// The seq of the committed configuration restored from outside the log, if any.
    pinned: Option<Seq>,
    /// Bumped whenever `configs` changes.
    configs_version: u64,
}

impl RaftLog {
    fn from_runs(first: Seq, term_starts: Vec<LogId>, last: Option<LogId>) -> RaftLog {
        RaftLog {
            first,
            base: None,
            last,
            term_starts,
            tail: VecDeque::new(),
            loaded: VecDeque::new(),
            configs: Vec::new(),
            pinned: None,
            configs_version: 0,
        }
    }

    /// The log of a recovered node (already validated).
    pub(crate) fn new(recovered: &Recovered) -> RaftLog {
        let mut log = RaftLog::from_runs(recovered.first, recovered.term_starts.clone(), recovered.last);
        log.tail.extend(recovered.tail.iter().cloned());
        // The latest committed configuration saved apart from the log is in force unless the
        // log holds it, or contradicts it (an operator forced a rejoin that gave up committed
        // entries). The snapshot's configuration is committed too; the newer of the two counts.
        let from_snapshot = recovered.snapshot.as_ref().and_then(|snapshot| snapshot.configuration.as_ref());
        let saved = match (recovered.committed_config.as_ref(), from_snapshot) {
            (Some(saved), Some(snapshot)) if snapshot.seq > saved.seq => Some(snapshot),
            (saved, snapshot) => saved.or(snapshot),
        };
        let saved = saved.filter(|entry| !log.contradicts(entry.id()));
        let logged = |entry: &&Entry| recovered.configs.iter().any(|c| c.seq == entry.seq);
        if let Some(entry) = saved.filter(|entry| !logged(entry)) {
            // The log no longer holds it: it is in force until a later one of the log's, and
            // again if a truncation takes those (they may not be committed).
            log.pinned = Some(entry.seq);
            log.note_config(entry);
        }
        let pinned = log.pinned;
        recovered.configs.iter().filter(|c| Some(c.seq) > pinned).for_each(|entry| log.note_config(entry));
        if let Some(snapshot) = &recovered.snapshot {
            if log.last.is_none() || !RaftLog::continues(recovered, snapshot) {
                // The log is empty, ends within the snapshot or holds another entry at its end:
                // it continues after the snapshot (the core has storage reset it where it holds
                // entries, see `Raft::new`).
                log.reset_to(snapshot);
            } else if log.first == snapshot.last.seq.next() {
                log.base = Some(snapshot.last);
            }
        }
        // A prefix was removed, and storage kept the entry the log continued from (see
        // `Write::RemovePrefix`): once the commit hint vouches that it is committed, it is the
        // base again, whose term the next entry's append names.
        let vouched = Some(log.first) <= recovered.hard_state.commit && log.last_seq() >= Some(log.first);
        if log.base.is_none() && log.first > Seq(0) && vouched {
            log.remove_prefix(log.first);
        }
        log
    }

    /// Whether the recovered log continues `snapshot`: it starts right after the snapshot or
    /// holds its last entry. A log that holds another entry there (a deposed leader's, whose
    /// truncation was not durable when a snapshot of the cluster's entries was) holds nothing
    /// of the cluster's from there on (Log Matching).
    pub(crate) fn continues(recovered: &Recovered, snapshot: &SnapshotMeta) -> bool {
        let runs = RaftLog::from_runs(recovered.first, recovered.term_starts.clone(), recovered.last);
        recovered.first == snapshot.last.seq.next() || runs.has(snapshot.last)
    }

    /// Empties the log: it continues after `snapshot`, whose configuration is in force.
    pub(crate) fn reset_to(&mut self, snapshot: &SnapshotMeta) {
        // This log's entries up to the snapshot's last are the cluster's only if it holds that
        // very entry (Log Matching); otherwise they may be a deposed leader's, never committed,
        // and so may its configurations there.
        let matches = self.has(snapshot.last);
        self.first = snapshot.last.seq.next();
        self.base = Some(snapshot.last);
        self.last = Some(snapshot.last);
        self.term_starts.clear();
        self.tail.clear();
        self.loaded.clear();
        // The committed one saved apart from the log stays, even past the snapshot.
        let pinned = self.pinned;
        self.configs.retain(|(id, _)| (matches && id.seq <= snapshot.last.seq) || Some(id.seq) == pinned);
        let newer = |entry: &&Entry| self.configs.iter().all(|(id, _)| id.seq < entry.seq);
        if let Some(entry) = snapshot.configuration.as_ref().filter(newer).cloned() {
            self.note_config(&entry);
        }
        // What remains is committed (the snapshot covers it): no truncation may remove it.
        self.pinned = self.configs.last().map(|(id, _)| id.seq);
        self.configs_version += 1;
    }

    /// Forgets the entries at or below `through` (a durable snapshot covers them).
    pub(crate) fn remove_prefix(&mut self, through: Seq) {
        if through < self.first {
            return;
        }
        assert!(Some(through) <= self.last_seq(), "invariant: a prefix removal stays within the log");
        self.base = self.id_at(through);
        self.first = through.next();
        let keep_from = self.term_starts.partition_point(|start| start.seq <= self.first).saturating_sub(1);
        self.term_starts.drain(..keep_from);
        match self.last.filter(|last| last.seq >= self.first) {
            Some(_) => self.term_starts[0].seq = self.first,
            None => self.term_starts.clear(),
        }
        let below = |queue: &VecDeque<Entry>| queue.iter().take_while(|entry| entry.seq <= through).count();
        let (tail, loaded) = (below(&self.tail), below(&self.loaded));
        self.tail.drain(..tail);
        self.loaded.drain(..loaded);
    }

    /// The first seq the log may hold.
    pub(crate) fn first(&self) -> Seq {
        self.first
    }

    /// Whether entries from `next` on can be sent with their `prev`: the log holds them (or
    /// `next` is past its end) and knows the term of the entry before.
    pub(crate) fn can_send_from(&self, next: Seq) -> bool {
        next >= self.first && next.prev().is_none_or(|prev| self.term_at(prev).is_some())
    }

    /// Keeps `entry`'s configuration if it is a configuration entry. One that does not decode
    /// (never written by a core: the codecs refuse them) is left out.
    fn note_config(&mut self, entry: &Entry) {
        if let Payload::Config(bytes) = &entry.payload {
            if let Ok(configuration) = super::codec::decode_configuration(bytes) {
                if self.configs.last().is_some_and(|(id, _)| id.seq >= entry.seq) {
                    return; // The pinned one, appended again: it is there already.
                }
                self.configs.push((entry.id(), configuration));
                self.configs_version += 1;
            }
        }
    }

    /// The configuration in force and the seq of its entry; `None`: the log holds none (the
    /// bootstrap configuration, `Config::nodes`, is in force).
    pub(crate) fn configuration(&self) -> Option<(Seq, &Configuration)> {
        self.configs.last().map(|(id, configuration)| (id.seq, configuration))
    }

    /// The seqs of the configuration entries kept (the last at or below the commit point and
    /// every one after it), ascending.
    pub(crate) fn configuration_seqs(&self) -> impl Iterator<Item = Seq> + '_ {
        self.configs.iter().map(|(id, _)| id.seq)
    }

    /// The configurations kept, ascending (see `configuration_seqs`).
    pub(crate) fn configurations(&self) -> impl DoubleEndedIterator<Item = &Configuration> {
        self.configs.iter().map(|(_, configuration)| configuration)
    }

    /// The configuration entry in force at `seq` (the last one at or below it), if the log
    /// kept it (it keeps the last committed one and those after).
    pub(crate) fn configuration_entry_at(&self, seq: Seq) -> Option<Entry> {
        let (id, configuration) = self.configs.iter().rev().find(|(id, _)| id.seq <= seq)?;
        let payload = Payload::Config(super::codec::configuration_bytes(configuration));
        Some(Entry { term: id.term, seq: id.seq, payload })
    }

    /// Changes whenever the configuration entries change.
    pub(crate) fn configs_version(&self) -> u64 {
        self.configs_version
    }

    /// Forgets configurations older than the last one at or below `commit` (entries at or below
    /// the commit point are never truncated, so no older one can come back in force).
    pub(crate) fn forget_configs_before(&mut self, commit: Option<Seq>) {
        let committed = self.configs.iter().rposition(|(id, _)| Some(id.seq) <= commit);
        if let Some(keep_from) = committed.filter(|at| *at > 0) {
            self.configs.drain(..keep_from);
        }
    }

    pub(crate) fn last(&self) -> Option<LogId> {
        self.last
    }

    pub(crate) fn last_seq(&self) -> Option<Seq> {
        self.last.map(|id| id.seq)
    }

    /// The seq the next appended entry gets.
    pub(crate) fn next_seq(&self) -> Seq {
        match self.last {
            Some(last) => last.seq.next(),
            None => self.first,
        }
    }

    /// The first seq held in memory (`next_seq` when the tail is empty).
    pub(crate) fn tail_first(&self) -> Seq {
        self.tail.front().map_or_else(|| self.next_seq(), |entry| entry.seq)
    }

    pub(crate) fn tail_len(&self) -> usize {
        self.tail.len()
    }

    /// The term of the entry at `seq`, if the log has it.
    pub(crate) fn term_at(&self, seq: Seq) -> Option<Term> {
        if seq < self.first || Some(seq) > self.last_seq() {
            // Outside the entries: only the base (the entry before the first) is known.
            return self.base.filter(|base| base.seq == seq).map(|base| base.term);
        }
        let run = self.term_starts.partition_point(|start| start.seq <= seq);
        Some(self.term_starts[run - 1].term)
    }

    /// The log id of the entry at `seq`, if the log has it.
    pub(crate) fn id_at(&self, seq: Seq) -> Option<LogId> {
        self.term_at(seq).map(|term| LogId::new(term, seq))
    }

    /// Whether the log has an entry `id`.
    pub(crate) fn has(&self, id: LogId) -> bool {
        self.term_at(id.seq) == Some(id.term)
    }

    /// Whether the log holds another entry at `id.seq` than `id`.
    pub(crate) fn contradicts(&self, id: LogId) -> bool {
        self.term_at(id.seq).is_some_and(|term| term != id.term)
    }

    /// The last entry at or below `seq` whose term is at most `term`: where a leader and a
    /// follower that disagree at `seq` may still agree (etcd's `findConflictByTerm`).
    pub(crate) fn hint(&self, seq: Seq, term: Term) -> Option<LogId> {
        let seq = self.last_seq()?.min(seq);
        if seq < self.first {
            return self.base.filter(|base| base.seq == seq && base.term <= term);
        }
        let mut run = self.term_starts.partition_point(|start| start.seq <= seq) - 1;
        let mut at = seq;
        loop {
            let start = self.term_starts[run];
            if start.term <= term {
                return Some(LogId::new(start.term, at));
            }
            if run == 0 {
                return self.base.filter(|base| base.term <= term);
            }
            at = Seq(start.seq.0 - 1);
            run -= 1;
        }
    }

    /// The entry at `seq` if it is in memory.
    pub(crate) fn entry(&self, seq: Seq) -> Option<&Entry> {
        let tail_first = self.tail_first();
        if seq >= tail_first {
            return self.tail.get((seq.0 - tail_first.0) as usize);
        }
        let loaded_first = self.loaded.front()?.seq;
        if seq < loaded_first {
            return None;
        }
        self.loaded.get((seq.0 - loaded_first.0) as usize)
    }

    /// Up to `entries_max` entries from `from` on, stopping before `bytes_max` payload bytes
    /// (but always at least one), or the first seq that is not in memory (an error only when
    /// that is `from` itself).
    pub(crate) fn slice(&self, from: Seq, entries_max: usize, bytes_max: usize) -> Result<Vec<Entry>, NotInMemory> {
        let Some(last) = self.last_seq() else { return Ok(Vec::new()) };
        if from > last {
            return Ok(Vec::new());
        }
        let wanted = ((last.0 - from.0).saturating_add(1)).min(entries_max as u64) as usize;
        let mut out = Vec::with_capacity(wanted);
        let mut bytes = 0usize;
        let mut take = |entry: &Entry, out: &mut Vec<Entry>| {
            bytes = bytes.saturating_add(entry.payload.len());
            let fits = out.len() < wanted && (out.is_empty() || bytes <= bytes_max);
            if fits {
                out.push(entry.clone());
            }
            fits
        };
        let tail_first = self.tail_first();
        if from < tail_first {
            // The start is below the tail: only a loaded batch can have it.
            let mut seq = from;
            while seq < tail_first && out.len() < wanted {
                // A loaded batch that ends before the tail serves what it holds: asked for
                // more, failing would reload the same batch for ever.
                let entry = match self.entry(seq) {
                    Some(entry) => entry,
                    None if out.is_empty() => return Err(NotInMemory(seq)),
                    None => return Ok(out),
                };
                if !take(entry, &mut out) {
                    return Ok(out);
                }
                seq = Seq(seq.0 + 1);
            }
        }
        let start = (from.max(tail_first).0 - tail_first.0) as usize;
        // Count what fits first, then copy in one go.
        let room = wanted - out.len();
        let mut count = 0;
        for entry in self.tail.range(start..).take(room) {
            bytes = bytes.saturating_add(entry.payload.len());
            if !(out.is_empty() && count == 0) && bytes > bytes_max {
                break;
            }
            count += 1;
        }
        out.extend(self.tail.range(start..start + count).cloned());
        Ok(out)
    }

    /// Appends one entry at `next_seq()`; terms never decrease along the log.
    pub(crate) fn push(&mut self, entry: Entry) {
        assert_eq!(entry.seq, self.next_seq(), "invariant: appended entries are contiguous");
        assert!(self.last.map(|last| last.term) <= Some(entry.term), "invariant: terms never decrease along the log");
        // The run of the last entry (not of the base: with no entry, the first starts a run).
        if self.term_starts.last().map(|start| start.term) != Some(entry.term) {
            self.term_starts.push(entry.id());
        }
        self.last = Some(entry.id());
        self.note_config(&entry);
        self.tail.push_back(entry);
    }

    /// Appends entries that start at `next_seq()`, with consecutive seqs and terms that never
    /// decrease (a follower checked them against the leader's message already), in bulk.
    pub(crate) fn extend(&mut self, entries: std::vec::Drain<'_, Entry>) {
        let (Some(first), Some(last)) = (entries.as_slice().first(), entries.as_slice().last()) else { return };
        assert_eq!(first.seq, self.next_seq(), "invariant: appended entries are contiguous");
        assert_eq!(last.seq.0 - first.seq.0 + 1, entries.len() as u64, "invariant: consecutive seqs");
        let mut last_term = self.last.map(|last| last.term);
        let mut term = self.term_starts.last().map(|start| start.term);
        for entry in entries.as_slice() {
            assert!(last_term <= Some(entry.term), "invariant: terms never decrease along the log");
            if term != Some(entry.term) {
                self.term_starts.push(entry.id());
                term = Some(entry.term);
            }
            last_term = Some(entry.term);
            self.note_config(entry);
        }
        self.last = Some(last.id());
        self.tail.extend(entries);
    }

    /// Removes every entry at or above `from`.
    pub(crate) fn truncate(&mut self, from: Seq) {
        assert!(from >= self.first, "invariant: truncation stays within the log");
        self.last = from.prev().and_then(|prev| self.id_at(prev));
        self.term_starts.retain(|start| start.seq < from);
        let tail_first = self.tail_first();
        if from <= tail_first {
            self.tail.clear();
        } else {
            self.tail.truncate((from.0 - tail_first.0) as usize);
        }
        self.loaded.retain(|entry| entry.seq < from);
        if self.configs.last().is_some_and(|(id, _)| id.seq >= from && Some(id.seq) != self.pinned) {
            let pinned = self.pinned;
            self.configs.retain(|(id, _)| id.seq < from || Some(id.seq) == pinned);
            self.configs_version += 1;
        }
    }

    /// Drops entries from the front of the tail while it holds more than `keep` entries and the
    /// front entry is at or below `upto` (already durable and applied).
    pub(crate) fn evict(&mut self, keep: usize, upto: Option<Seq>) {
        let (Some(front), Some(upto)) = (self.tail.front(), upto) else { return };
        let below = (upto.0 + 1).saturating_sub(front.seq.0) as usize;
        let count = self.tail.len().saturating_sub(keep).min(below);
        self.tail.drain(..count);
    }

    /// Keeps a batch loaded from storage (replacing the previous one). Returns false if the
    /// entries do not agree with the log (a storage bug).
    pub(crate) fn set_loaded(&mut self, entries: Vec<Entry>) -> bool {
        let consistent = entries.windows(2).all(|pair| pair[1].seq.0 == pair[0].seq.0 + 1)
            && entries.iter().all(|entry| self.term_at(entry.seq) == Some(entry.term));
        if consistent {
            self.loaded = entries.into();
        }
        consistent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::membership::Membership;
    use crate::core::NodeId;

    fn log_of(terms: &[u64]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(seq, term)| Entry { term: Term(*term), seq: Seq(seq as u64), payload: Payload::Blank })
            .collect();
        let recovered = Recovered::from_entries(HardState::new(Term(9), None), entries);
        recovered.validate().unwrap();
        RaftLog::new(&recovered)
    }

    #[test]
    fn terms_come_from_runs() {
        let log = log_of(&[1, 1, 2, 4, 4]);
        assert_eq!(log.term_at(Seq(0)), Some(Term(1)));
        assert_eq!(log.term_at(Seq(2)), Some(Term(2)));
        assert_eq!(log.term_at(Seq(4)), Some(Term(4)));
        assert_eq!(log.term_at(Seq(5)), None);
    }

    #[test]
    fn hint_finds_the_last_entry_with_a_term_not_above() {
        let log = log_of(&[1, 1, 2, 4, 4]);
        assert_eq!(log.hint(Seq(4), Term(3)), Some(LogId::new(Term(2), Seq(2))));
        assert_eq!(log.hint(Seq(9), Term(4)), Some(LogId::new(Term(4), Seq(4))));
        assert_eq!(log.hint(Seq(4), Term(1)), Some(LogId::new(Term(1), Seq(1))));
        assert_eq!(log.hint(Seq(4), Term(0)), None);
    }

    /// Storage whose prefix was removed holds entries from seq 3 (terms 1, 2, 2), with the
    /// commit hint `commit`.
    fn removed_prefix(commit: Option<u64>) -> RaftLog {
        let entries: Vec<Entry> = [(3, 1), (4, 2), (5, 2)]
            .iter()
            .map(|(seq, term)| Entry { term: Term(*term), seq: Seq(*seq), payload: Payload::Blank })
            .collect();
        let mut hard_state = HardState::new(Term(2), None);
        hard_state.commit = commit.map(Seq);
        let mut recovered = Recovered::from_entries(hard_state, entries);
        recovered.first = Seq(3);
        recovered.validate().unwrap();
        RaftLog::new(&recovered)
    }

    #[test]
    fn a_removed_prefix_continues_from_the_entry_kept_once_the_hint_vouches_for_it() {
        // Vouched committed: the first entry is the base, whose term an append of seq 4 names.
        let log = removed_prefix(Some(3));
        assert_eq!((log.first(), log.term_at(Seq(3))), (Seq(4), Some(Term(1))));
        assert!(log.can_send_from(Seq(4)));
        assert_eq!(log.last_seq(), Some(Seq(5)));
        // Not vouched (it may be a deposed leader's entry): it stays an entry, and the log
        // cannot name the one before it.
        for commit in [None, Some(2)] {
            let log = removed_prefix(commit);
            assert_eq!((log.first(), log.term_at(Seq(3))), (Seq(3), Some(Term(1))), "hint {commit:?}");
            assert!(!log.can_send_from(Seq(3)));
        }
    }

    #[test]
    fn truncate_and_append_keep_runs_right() {
        let mut log = log_of(&[1, 1, 2, 4, 4]);
        log.truncate(Seq(3));
        assert_eq!(log.last(), Some(LogId::new(Term(2), Seq(2))));
        log.push(Entry { term: Term(5), seq: Seq(3), payload: Payload::Blank });
        assert_eq!(log.term_at(Seq(3)), Some(Term(5)));
        log.truncate(Seq(0));
        assert_eq!(log.last(), None);
        assert_eq!(log.next_seq(), Seq(0));
    }

    #[test]
    fn evicted_entries_are_missing_until_loaded() {
        let mut log = log_of(&[1, 1, 2, 4, 4]);
        log.evict(2, Some(Seq(4)));
        assert_eq!(log.tail_first(), Seq(3));
        assert_eq!(log.slice(Seq(1), 10, 100), Err(NotInMemory(Seq(1))));
        let reloaded = log_of(&[1, 1, 2, 4, 4]).slice(Seq(1), 2, 100).unwrap();
        assert!(log.set_loaded(reloaded));
        assert_eq!(log.slice(Seq(1), 10, 100).unwrap().len(), 4);
        // A loaded batch that does not reach the tail serves what it has, up to the count.
        assert!(log.set_loaded(log_of(&[1, 1, 2, 4, 4]).slice(Seq(0), 2, 100).unwrap()));
        assert_eq!(log.slice(Seq(0), 2, 100).unwrap().len(), 2);
        assert_eq!(log.slice(Seq(0), 3, 100).unwrap().len(), 2, "what the batch holds");
        assert_eq!(log.slice(Seq(2), 3, 100), Err(NotInMemory(Seq(2))));
        assert_eq!(log.term_at(Seq(1)), Some(Term(1)));
    }

    fn config_entry(term: u64, seq: u64, voters: &[u64]) -> Entry {
        let membership = Membership::new(voters.iter().map(|id| NodeId(*id)), []).unwrap();
        let payload = Payload::Config(crate::core::codec::configuration_bytes(&Configuration::Single(membership)));
        Entry { term: Term(term), seq: Seq(seq), payload }
    }

    fn voters(log: &RaftLog) -> Vec<NodeId> {
        match log.configuration() {
            Some((_, Configuration::Single(membership))) => membership.voters().to_vec(),
            other => panic!("a single configuration in force, not {other:?}"),
        }
    }

    #[test]
    fn the_saved_committed_configuration_outlives_a_later_one_truncated() {
        // Committed 1,2,3 at seq 1, saved apart from the log, whose prefix a snapshot took; the
        // log holds 2,3 at seq 2, not committed. Found by the simulator (seed 209108, four
        // nodes): the log's later configuration hid the saved one, and once a new leader
        // truncated it the node fell back to its bootstrap configuration.
        let committed = config_entry(1, 1, &[1, 2, 3]);
        let later = config_entry(1, 2, &[2, 3]);
        let recovered = Recovered {
            hard_state: HardState::new(Term(1), None),
            first: Seq(2),
            term_starts: vec![later.id()],
            last: Some(later.id()),
            tail: vec![later.clone()],
            configs: vec![later],
            committed_config: Some(committed.clone()),
            snapshot: Some(SnapshotMeta { last: committed.id(), digest: 0, configuration: Some(committed) }),
            ..Recovered::default()
        };
        recovered.validate().unwrap();
        let mut log = RaftLog::new(&recovered);
        assert_eq!(voters(&log), [NodeId(2), NodeId(3)]);
        log.truncate(Seq(2));
        assert_eq!(voters(&log), [NodeId(1), NodeId(2), NodeId(3)]);
    }

    #[test]
    fn a_snapshot_over_a_diverging_log_puts_its_own_configuration_in_force() {
        // A deposed leader appended 1,2 at seq 2 in term 1; the cluster committed a blank there
        // in term 2, and its snapshot at 3@2 has 1,2,3 (seq 1) in force. Found by the
        // simulator (seed 214025, seven nodes): the install kept the deposed leader's
        // configuration, which the node then took as committed.
        let entries = vec![
            Entry { term: Term(1), seq: Seq(0), payload: Payload::Blank },
            config_entry(1, 1, &[1, 2, 3]),
            config_entry(1, 2, &[1, 2]),
        ];
        let recovered = Recovered::from_entries(HardState::new(Term(2), None), entries.clone());
        let mut log = RaftLog::new(&recovered);
        assert_eq!(voters(&log), [NodeId(1), NodeId(2)]);
        let snapshot =
            SnapshotMeta { last: LogId::new(Term(2), Seq(3)), digest: 0, configuration: Some(entries[1].clone()) };
        log.reset_to(&snapshot);
        assert_eq!(voters(&log), [NodeId(1), NodeId(2), NodeId(3)]);
        // Over a log that holds the snapshot's last entry, the log's configurations stay.
        let mut log = RaftLog::new(&recovered);
        log.reset_to(&SnapshotMeta {
            last: LogId::new(Term(1), Seq(2)),
            digest: 0,
            configuration: Some(entries[2].clone()),
        });
        assert_eq!(voters(&log), [NodeId(1), NodeId(2)]);
    }

    #[test]
    fn inconsistent_recovered_state_is_rejected() {
        let mut recovered = Recovered::from_entries(HardState::default(), Vec::new());
        recovered.last = Some(LogId::new(Term(1), Seq(0)));
        assert!(recovered.validate().is_err());
    }
}
