//! A simulated disk that stores a node's log as real bytes in the real batch format
//! (`tinyraftplus::log::format`) and recovers through the real recovery code
//! (`tinyraftplus::log::recovery`): what a crash leaves is exactly what the file log would find.
//!
//! Writes queue in order; each completes after its latency, and only then is it durable. A
//! crash drops what has not completed and may tear the write in progress (a prefix of its bytes
//! lands). Term and vote live in their own slot, written atomically (as FsLog's two slots).
//!
//! Installing a snapshot starts the segment anew in a recycled file, as FsLog does with a spare
//! segment: the file keeps its earlier bytes past the new batches, under a header with the next
//! salt, so recovery meets stale batches after every torn or clean end.

use bytes::Bytes;
use std::collections::VecDeque;
use tinyraftplus::core::{Entry, HardState, LogId, Recovered, Seq, SnapshotMeta, Term, Time, Write, WriteId};
use tinyraftplus::log::format::{
    decode_batch, encode_header, prefix_batch, push_entry, recycled_salt, BatchBuilder, Encoder, Header, Seal,
    HEADER_BYTES, NONCE_BYTES,
};
use tinyraftplus::log::recovery::{scan, Corruption, SegmentBytes};

const BATCH_MAX: usize = u32::MAX as usize;

/// A write waiting to become durable.
#[derive(Clone, Debug)]
pub struct Pending {
    /// The core's id for it.
    pub id: WriteId,
    /// What to write.
    pub write: Write,
    /// When it completes.
    pub done_at: Time,
}

/// A durable snapshot: what it covers and its bytes.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// What it covers and its digest.
    pub meta: SnapshotMeta,
    /// The state machine's bytes.
    pub bytes: Bytes,
}

/// One node's disk.
#[derive(Clone, Debug)]
pub struct Disk {
    /// The durable bytes of the log's one segment.
    bytes: Vec<u8>,
    /// The segment file's bytes from earlier lives (it was recycled): the file holds them past
    /// `bytes`, until a cut (a trim or recovery) shortens it.
    stale: Vec<u8>,
    /// The seed of the segment's checksums (its header's).
    salt: u32,
    /// A planted bug (the simulator's, with the `mutants` feature): a recycled file keeps its
    /// salt, so its stale batches still pass their checksums.
    pub recycle_keeps_salt: bool,
    /// The seq of the segment's first entry (its header names it).
    seg_first: u64,
    /// The log's first seq: entries before it were removed (a snapshot covers them), as
    /// FsLog's manifest records.
    first: u64,
    /// The byte offset of each durable entry's batch, from `seg_first` on.
    offsets: Vec<u32>,
    /// The durable term and vote.
    hard_state: HardState,
    /// The chain head (checksum of the last batch).
    chain: u64,
    /// Writes issued and not yet durable, in order.
    pub pending: VecDeque<Pending>,
    encoder: Encoder,
    /// Entries known committed that a repair kept past the damage (as `FsLog::open_repairing`
    /// does, in its evidence file): id and digest, until the log covers them.
    evidence: Vec<(LogId, u64)>,
    /// The committed configuration saved apart from the log (`FsLog`'s config file).
    committed_config: Option<Entry>,
    /// Durable snapshots, oldest first (the latest two are kept, as the snapshot store does).
    pub snapshots: Vec<Snapshot>,
    /// A snapshot being received and its durable bytes.
    pub partial: Option<(SnapshotMeta, Vec<u8>)>,
}

impl Default for Disk {
    fn default() -> Disk {
        Disk::new()
    }
}

impl Disk {
    /// An empty disk (an xxhash-checksummed log). Like a new `FsLog`, it is catching up: a
    /// new disk cannot be told from a wiped one.
    pub fn new() -> Disk {
        let encoder = Encoder::XxHash;
        let bytes = encode_header(&encoder, Header { first_seq: 0, salt: 0 }, [0; NONCE_BYTES]).to_vec();
        Disk {
            bytes,
            stale: Vec::new(),
            salt: 0,
            recycle_keeps_salt: false,
            seg_first: 0,
            first: 0,
            offsets: Vec::new(),
            hard_state: HardState { catching_up: true, ..HardState::default() },
            chain: 0,
            pending: VecDeque::new(),
            encoder,
            evidence: Vec::new(),
            committed_config: None,
            snapshots: Vec::new(),
            partial: None,
        }
    }

    /// The durable term and vote.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The seq after the last durable entry.
    pub fn len(&self) -> u64 {
        self.seg_first + self.offsets.len() as u64
    }

    /// Whether the disk holds nothing: no entry was ever durable and no snapshot.
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.snapshots.is_empty()
    }

    /// The index in `offsets` of the entry at `seq`, if the log holds it.
    fn index(&self, seq: u64) -> Option<usize> {
        (seq >= self.first && seq < self.len()).then(|| (seq - self.seg_first) as usize)
    }

    /// The durable entry at `seq`.
    pub fn entry(&self, seq: Seq) -> Option<Entry> {
        let offset = self.offsets[self.index(seq.0)?] as usize;
        let batch = decode_batch(&self.bytes[offset..], &self.encoder, self.salt, BATCH_MAX).ok()?;
        let bytes = Bytes::copy_from_slice(&self.bytes[offset..offset + batch.size]);
        let entries = batch.entries(&self.encoder, &bytes, 0).ok()?;
        entries.into_iter().nth((seq.0 - batch.first) as usize)
    }

    /// Loses the snapshot files (not the log, nor a snapshot being received), if the log's
    /// prefix went (else there is nothing they alone hold): returns them.
    pub fn lose_snapshots(&mut self) -> Vec<Snapshot> {
        match self.first {
            0 => Vec::new(),
            _ => std::mem::take(&mut self.snapshots),
        }
    }

    /// The latest durable snapshot.
    pub fn latest_snapshot(&self) -> Option<&Snapshot> {
        self.snapshots.last()
    }

    /// Keeps a durable snapshot; the two newest are kept (by seq, as the store names them).
    pub fn add_snapshot(&mut self, snapshot: Snapshot) {
        let at = self.snapshots.partition_point(|s| s.meta.last.seq <= snapshot.meta.last.seq);
        self.snapshots.insert(at, snapshot);
        let excess = self.snapshots.len().saturating_sub(2);
        self.snapshots.drain(..excess);
    }

    /// Whether installing `snapshot` has nothing to store, as for `SnapshotReceiver::install`:
    /// the disk holds it, or (when it is not the snapshot being received) a newer one that
    /// replaced it (a restart's install of its own snapshot, carried out late).
    pub fn holds_snapshot(&self, snapshot: &SnapshotMeta) -> bool {
        let receiving = self.partial.as_ref().is_some_and(|(meta, _)| meta == snapshot);
        let newest = self.snapshots.last().map(|held| held.meta.last.seq);
        self.snapshots.iter().any(|held| held.meta == *snapshot)
            || (!receiving && newest.is_some_and(|newest| newest >= snapshot.last.seq))
    }

    /// Makes `write` durable.
    pub fn apply(&mut self, write: &Write) {
        match write {
            Write::HardState(state) => self.hard_state = *state,
            Write::Entries(entries) => {
                let Some(first) = entries.first() else { return };
                assert_eq!(first.seq.0, self.len(), "the core's writes continue the log");
                let at = self.bytes.len() as u32;
                let mut builder = BatchBuilder::default();
                builder.start(first.seq.0);
                for entry in entries {
                    push_entry(&mut builder, entry);
                }
                let seal = Seal { chain: self.chain, salt: self.salt, nonce: [0; NONCE_BYTES] };
                self.chain = builder.finish(&mut self.bytes, &self.encoder, seal);
                self.offsets.extend(std::iter::repeat_n(at, entries.len()));
            }
            Write::Truncate { from } => self.truncate(from.0),
            Write::Configuration(entry) => self.committed_config = Some(entry.clone()),
            Write::RemovePrefix { through } => self.first = self.first.max((through.0 + 1).min(self.len())),
            Write::SnapshotChunk { snapshot, offset, data } => {
                let offset = *offset as usize;
                let partial = match self.partial.take() {
                    Some((meta, bytes)) if meta == **snapshot && offset > 0 => (meta, bytes),
                    _ => ((**snapshot).clone(), Vec::new()),
                };
                let (meta, mut bytes) = partial;
                // Written at its offset, as into a file (a gap would read as zeros).
                bytes.resize(offset, 0);
                bytes.extend_from_slice(data);
                self.partial = Some((meta, bytes));
            }
            Write::InstallSnapshot { snapshot } => {
                if !self.holds_snapshot(snapshot) {
                    let (meta, bytes) = self.partial.take().expect("an install follows its chunks");
                    assert_eq!(meta, **snapshot, "the install names the partial snapshot");
                    self.add_snapshot(Snapshot { meta, bytes: Bytes::from(bytes) });
                }
                self.reset_after(snapshot.last.seq.0);
            }
        }
    }

    /// The segment file's bytes: the durable batches, then what is left from its earlier lives.
    fn file(&self) -> Vec<u8> {
        let mut file = self.bytes.clone();
        file.extend_from_slice(self.stale.get(self.bytes.len()..).unwrap_or_default());
        file
    }

    /// Removes every entry: the log continues at `last + 1`, in the segment's file recycled.
    fn reset_after(&mut self, last: u64) {
        self.seg_first = last + 1;
        self.first = last + 1;
        self.stale = self.file();
        self.salt = if self.recycle_keeps_salt { self.salt } else { recycled_salt(self.salt) };
        let header = Header { first_seq: self.seg_first, salt: self.salt };
        self.bytes = encode_header(&self.encoder, header, [0; NONCE_BYTES]).to_vec();
        self.offsets.clear();
        self.chain = 0;
    }

    /// Cuts the log before `from` (never below its first), as FsLog's trim does: a batch cut
    /// inside is written again holding its entries before `from`.
    fn truncate(&mut self, from: u64) {
        let from = from.max(self.first);
        let Some(index) = self.index(from) else { return };
        let cut = self.offsets[index];
        let start = self.offsets.partition_point(|at| *at < cut);
        let salt = self.salt;
        let batch = decode_batch(&self.bytes[cut as usize..], &self.encoder, salt, BATCH_MAX).ok();
        let prefix = batch
            .filter(|_| start < index)
            .map(|batch| prefix_batch(&batch, &self.encoder, from, salt, [0; NONCE_BYTES]).expect("a durable batch"));
        self.bytes.truncate(cut as usize);
        self.stale.clear(); // The file is cut.
        self.offsets.truncate(start);
        self.chain = match self.offsets.last() {
            Some(at) => {
                decode_batch(&self.bytes[*at as usize..], &self.encoder, salt, BATCH_MAX).map_or(0, |b| b.checksum)
            }
            None => 0,
        };
        if let Some(prefix) = prefix {
            self.chain = decode_batch(&prefix, &self.encoder, salt, BATCH_MAX).expect("just encoded").checksum;
            self.bytes.extend_from_slice(&prefix);
            self.offsets.extend(std::iter::repeat_n(cut, index - start));
        }
    }

    /// What `FsLog::open_repairing` does with a damaged entry at `seq`: keeps the entries after
    /// it known committed (up to the commit hint) as evidence, marks the log catching up, and
    /// cuts it before `seq`. Evidence from an earlier repair (past the log's end) is kept too.
    /// Returns the evidence.
    pub fn repair_keeping(&mut self, seq: u64) -> Vec<(LogId, u64)> {
        let hint = self.hard_state.commit.map_or(0, |c| c.0 + 1).min(self.len());
        let mut kept: Vec<(LogId, u64)> =
            (seq + 1..hint).filter_map(|s| self.entry(Seq(s))).map(|e| (e.id(), e.digest())).collect();
        kept.extend(self.evidence.iter().filter(|(id, _)| id.seq.0 >= self.len()));
        self.evidence = kept.clone();
        self.repair_from(seq);
        kept
    }

    /// The evidence file: entries known committed that a repair kept and the log does not
    /// cover yet.
    pub fn evidence(&self) -> &[(LogId, u64)] {
        &self.evidence
    }

    /// What an operator does to accept that committed entries may be lost: clears the
    /// catching-up flag (the node votes at once when it restarts).
    pub fn force_rejoin(&mut self) {
        self.hard_state.catching_up = false;
    }

    /// What `FsLog`'s `repair_from` does: marks the log catching up, then cuts it before `seq`.
    pub fn repair_from(&mut self, seq: u64) {
        self.hard_state.catching_up = true;
        self.truncate(seq);
    }

    /// Drops the entries from `seq` on, as if the log ended there (what taking a read error for
    /// the end of the log does).
    pub fn lose_from(&mut self, seq: u64) {
        self.truncate(seq);
    }

    /// Flips one bit inside a batch before the last one (so recovery must see corruption, not a
    /// torn tail); returns the batch's first seq (what recovery names), or `None` if the log has
    /// no such batch.
    pub fn flip_bit(&mut self, pick: u64) -> Option<u64> {
        // (first seq, start, end) of each batch wholly at or past the log's first seq.
        let mut batches: Vec<(u64, usize, usize)> = Vec::new();
        for (index, at) in self.offsets.iter().enumerate() {
            let seq = self.seg_first + index as u64;
            match batches.last_mut() {
                Some(last) if last.1 == *at as usize => {}
                _ => batches.push((seq, *at as usize, 0)),
            }
        }
        for i in 0..batches.len() {
            batches[i].2 = batches.get(i + 1).map_or(self.bytes.len(), |next| next.1);
        }
        batches.pop(); // The last batch: damage there is a torn tail.
        batches.retain(|(seq, _, _)| *seq >= self.first);
        let count = batches.len() as u64;
        let (seq, start, end) = *batches.get((pick % count.max(1)) as usize)?;
        let byte = start + (pick / count) as usize % (end - start);
        self.bytes[byte] ^= 1 << (pick % 8);
        Some(seq)
    }

    /// A crash: writes not yet durable are lost; the one in progress (the first pending) may
    /// leave `torn` of its bytes (a fraction in 0..1) when it is an append or a snapshot chunk.
    pub fn crash(&mut self, torn: Option<f64>) {
        if let (Some(fraction), Some(first)) = (torn, self.pending.pop_front()) {
            match &first.write {
                Write::Entries(_) => {
                    // A prefix of the append lands: encode it whole, then cut the bytes; the
                    // index and chain stay those of the durable entries (recovery reads the rest).
                    let (before, entries, chain) = (self.bytes.len(), self.offsets.len(), self.chain);
                    self.apply(&first.write);
                    let keep = before + ((self.bytes.len() - before) as f64 * fraction) as usize;
                    self.bytes.truncate(keep);
                    self.offsets.truncate(entries);
                    self.chain = chain;
                }
                Write::SnapshotChunk { snapshot, offset, data } => {
                    // A prefix of the chunk lands in the partial snapshot file.
                    let data = data.slice(..(data.len() as f64 * fraction) as usize);
                    self.apply(&Write::SnapshotChunk { snapshot: snapshot.clone(), offset: *offset, data });
                }
                _ => {}
            }
        }
        self.pending.clear();
    }

    /// Recovers from the bytes, as FsLog's open does: the state a restarted core starts from.
    /// Keeps the last `tail` entries in memory.
    pub fn recover(&mut self, tail: usize) -> Result<Recovered, Corruption> {
        let file = self.file();
        let segments = [SegmentBytes { first_seq: self.seg_first, bytes: &file }];
        let result = scan(&segments, &self.encoder, BATCH_MAX, None)?;
        let segment = &result.segments[0];
        // As FsLog's open, the file is cut where the valid batches end.
        self.bytes = file[..segment.valid_len.max(HEADER_BYTES as u64) as usize].to_vec();
        self.stale.clear();
        self.offsets = segment.offsets.clone();
        self.chain = result.last_checksum;
        self.first = self.first.min(self.len());
        let first = self.first;
        let mut term_starts: Vec<LogId> =
            result.term_starts.iter().map(|(seq, term)| LogId::new(Term(*term), Seq(*seq))).collect();
        let keep_from = term_starts.partition_point(|start| start.seq.0 <= first).saturating_sub(1);
        term_starts.drain(..keep_from);
        let last = result.last.map(|(seq, term)| LogId::new(Term(term), Seq(seq))).filter(|last| last.seq.0 >= first);
        match (term_starts.first_mut(), last) {
            (Some(start), Some(_)) => start.seq = Seq(first),
            _ => term_starts.clear(),
        }
        // Evidence the log covers now was checked by the core before it was written.
        let end = self.len();
        self.evidence.retain(|(id, _)| id.seq.0 >= end);
        let from = self.len().saturating_sub(tail as u64).max(first);
        let tail = (from..self.len()).filter_map(|seq| self.entry(Seq(seq))).collect();
        let configs =
            result.configs.iter().filter(|seq| **seq >= first).filter_map(|seq| self.entry(Seq(*seq))).collect();
        Ok(Recovered {
            hard_state: self.hard_state,
            first: Seq(first),
            term_starts,
            last,
            tail,
            configs,
            committed_config: self.committed_config.clone(),
            evidence: self.evidence.clone(),
            snapshot: self.latest_snapshot().map(|snapshot| snapshot.meta.clone()),
            partial_snapshot: self.partial.as_ref().map(|(meta, bytes)| (meta.clone(), bytes.len() as u64)),
        })
    }

    /// The durable bytes (for tests).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(first: u64, term: u64, count: u64) -> Vec<Entry> {
        (first..first + count)
            .map(|seq| Entry {
                term: Term(term),
                seq: Seq(seq),
                payload: tinyraftplus::core::Payload::Data(Bytes::from(format!("e{seq}"))),
            })
            .collect()
    }

    #[test]
    fn writes_truncations_and_recovery_round_trip_through_the_real_format() {
        let mut disk = Disk::new();
        disk.apply(&Write::Entries(entries(0, 1, 3)));
        disk.apply(&Write::Entries(entries(3, 2, 2)));
        disk.apply(&Write::Truncate { from: Seq(4) });
        disk.apply(&Write::HardState(HardState::new(Term(2), None)));
        let recovered = disk.recover(10).unwrap();
        assert_eq!(recovered.last, Some(LogId::new(Term(2), Seq(3))));
        assert_eq!(recovered.tail.len(), 4);
        recovered.validate().unwrap();
        disk.apply(&Write::Entries(entries(4, 3, 1)));
        assert_eq!(disk.recover(1).unwrap().last, Some(LogId::new(Term(3), Seq(4))));
    }

    #[test]
    fn a_torn_append_recovers_to_the_entries_before_it() {
        for tenth in 0..10 {
            let mut disk = Disk::new();
            disk.apply(&Write::Entries(entries(0, 1, 2)));
            disk.pending.push_back(Pending {
                id: WriteId(1),
                write: Write::Entries(entries(2, 1, 3)),
                done_at: Time(0),
            });
            disk.crash(Some(f64::from(tenth) / 10.0));
            assert_eq!(disk.recover(10).unwrap().last, Some(LogId::new(Term(1), Seq(1))), "{tenth}/10");
        }
    }
}
