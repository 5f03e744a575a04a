//! The fuzz targets' bodies, shared by the cargo-fuzz crate (`fuzz/fuzz_targets/*.rs`) and by
//! `tests/fuzz_corpus.rs`, which replays the committed corpus under plain `cargo test`.

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use tinyraftplus::core::codec;
use tinyraftplus::core::{
    AppendResult, Body, ClientError, Config, Entry, ForwardId, ForwardRequest, HardState, HeldMessages, Input, LogId,
    Message, NodeId, Output, Payload, Raft, Recovered, RequestId, Response, Role, Seq, SnapshotMeta, Term, Time, Write,
    WriteId,
};

/// Decoding arbitrary bytes never panics; whatever decodes re-encodes to the same bytes. The same
/// bytes as a configuration: never a panic, and what decodes re-encodes to the same bytes.
pub fn decode_message(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(message) = codec::decode(&bytes) {
        let again = codec::encode_to_bytes(&message);
        assert_eq!(again, bytes, "decode then encode gives back the input");
    }
    if let Ok(configuration) = codec::decode_configuration(&bytes) {
        assert_eq!(codec::configuration_bytes(&configuration), bytes, "decode then encode gives back the input");
    }
}

#[derive(Arbitrary, Debug)]
enum Step {
    Tick(u16),
    Message { from_three: bool, term: u8, body: FuzzBody },
    Append(u8),
    Read,
    SyncAll,
    SyncOne,
    Restart,
}

#[derive(Arbitrary, Debug)]
enum FuzzBody {
    PreVote(Option<(u8, u8)>),
    PreVoteResponse(bool, Option<(u8, u8)>),
    Vote(Option<(u8, u8)>, bool),
    VoteResponse(bool),
    TimeoutNow,
    Append { prev: Option<(u8, u8)>, entries: Vec<(u8, bool)>, commit: Option<u8>, read_round: u8 },
    Accepted { matched: Option<u8>, read_round: u8 },
    Rejected { rejected: u8, hint: Option<(u8, u8)> },
    Forward { counter: u8, payloads: u8, read: bool },
    ForwardReply { counter: u8, ok: bool },
    CatchUp(Option<(u8, u8)>),
    Snapshot { last: (u8, u8), digest: u8, offset: u8, len: u8, done: bool, commit: Option<u8> },
    SnapshotResponse { last: (u8, u8), digest: u8, next: u8, installed: bool },
}

/// An entry's payload from fuzz bytes: blank, or (one term in four) a configuration of voters
/// among nodes 1 to 3 (some of them, possibly this node's peers only) and maybe learner 4, or
/// data.
fn payload_of(term: u8, blank: bool) -> Payload {
    if blank {
        return Payload::Blank;
    }
    if term % 4 != 3 {
        return Payload::Data(Bytes::from(format!("{term}")));
    }
    let voters: Vec<NodeId> = (1..=3u64).filter(|i| term & (1 << (i + 1)) != 0).map(NodeId).collect();
    let voters = if voters.is_empty() { vec![NodeId(2), NodeId(3)] } else { voters };
    let learners = if term & 0x40 != 0 { vec![NodeId(4)] } else { Vec::new() };
    let membership = tinyraftplus::core::Membership::new(voters, learners).expect("a valid membership");
    Payload::Config(codec::configuration_bytes(&tinyraftplus::core::Configuration::Single(membership)))
}

fn id((term, seq): (u8, u8)) -> LogId {
    LogId::new(Term(u64::from(term)), Seq(u64::from(seq)))
}

impl FuzzBody {
    fn into_body(self) -> Body {
        match self {
            FuzzBody::PreVote(last) => Body::PreVote { last: last.map(id) },
            FuzzBody::PreVoteResponse(granted, last) => Body::PreVoteResponse { granted, last: last.map(id) },
            FuzzBody::Vote(last, transfer) => Body::Vote { last: last.map(id), transfer },
            FuzzBody::TimeoutNow => Body::TimeoutNow,
            FuzzBody::VoteResponse(granted) => Body::VoteResponse { granted },
            FuzzBody::Append { prev, entries, commit, read_round } => {
                let prev = prev.map(id);
                let first = Seq::after(prev.map(|p| p.seq)).0;
                let entries = entries
                    .into_iter()
                    .take(16)
                    .enumerate()
                    .map(|(i, (term, blank))| Entry {
                        term: Term(u64::from(term)),
                        seq: Seq(first + i as u64),
                        payload: payload_of(term, blank),
                    })
                    .collect();
                Body::Append { prev, entries, commit: commit.map(|c| Seq(u64::from(c))), read_round: read_round.into() }
            }
            FuzzBody::Accepted { matched, read_round } => Body::AppendResponse {
                read_round: read_round.into(),
                // The flag from bits the input has (a field of its own would change how every
                // committed corpus input decodes).
                result: AppendResult::Accepted {
                    matched: matched.map(|m| Seq(u64::from(m))),
                    catching_up: read_round % 3 == 1,
                },
                incarnation: u64::from(read_round % 2),
            },
            FuzzBody::Rejected { rejected, hint } => Body::AppendResponse {
                read_round: 0,
                result: AppendResult::Rejected { rejected: Seq(u64::from(rejected)), hint: hint.map(id) },
                incarnation: u64::from(rejected % 2),
            },
            FuzzBody::Forward { counter, payloads, read } => {
                let id = ForwardId { incarnation: 7, counter: counter.into() };
                let request = if read {
                    ForwardRequest::Read(Bytes::new())
                } else {
                    ForwardRequest::Append((0..payloads % 4).map(|i| Bytes::from(vec![i])).collect())
                };
                Body::Forward { id, request }
            }
            FuzzBody::ForwardReply { counter, ok } => {
                let id = ForwardId { incarnation: 0, counter: counter.into() };
                let result = if ok {
                    Ok(Response::Appended { seq: Seq(u64::from(counter)), responses: Vec::new() })
                } else {
                    Err(ClientError::NotLeader { leader: None })
                };
                Body::ForwardReply { id, result, responder: u64::from(counter % 2) }
            }
            FuzzBody::CatchUp(commit) => Body::CatchUp { commit: commit.map(id) },
            FuzzBody::Snapshot { last, digest, offset, len, done, commit } => {
                let snapshot = SnapshotMeta { last: id(last), digest: digest.into(), configuration: None };
                let data = Bytes::from(vec![offset; usize::from(len % 8)]);
                let commit = commit.map(|c| Seq(u64::from(c)));
                Body::Snapshot { snapshot: Box::new(snapshot), offset: offset.into(), data, done, commit }
            }
            FuzzBody::SnapshotResponse { last, digest, next, installed } => {
                Body::SnapshotResponse { last: id(last), digest: digest.into(), next: next.into(), installed }
            }
        }
    }
}

/// Node 1 of a 3-node cluster, driven correctly (writes made durable in order, loads and
/// applies answered) while its peers' messages are arbitrary. It must never panic, never
/// promise what is not durable, and keep its invariants.
struct Harness {
    config: Config,
    raft: Raft,
    hard_state: HardState,
    entries: Vec<Entry>,
    unsynced: Vec<(WriteId, Write)>,
    /// Messages waiting for a write to be durable (`Output::SendAfter`).
    held: HeldMessages,
    inbox: Vec<Input>,
    now: Time,
    requests: u64,
    term: Term,
    /// Every (term, vote) that was ever durable, and the longest the durable log ever was: a
    /// promise sent later may refer to a state a later write replaced.
    durable_votes: std::collections::BTreeSet<(Term, NodeId)>,
    durable_len_max: usize,
    /// The committed configuration saved apart from the log.
    committed_config: Option<Entry>,
    /// The seq of `entries[0]` (above 0 once a prefix was removed or a snapshot installed).
    base: u64,
    /// The latest snapshot installed, and the one being received with its bytes.
    snapshot: Option<SnapshotMeta>,
    partial: Option<(SnapshotMeta, Vec<u8>)>,
}

impl Harness {
    fn new(config: Config) -> Harness {
        let raft = Raft::new(config.clone(), Recovered::default()).expect("valid config");
        let mut harness = Harness {
            config,
            raft,
            hard_state: HardState::default(),
            entries: Vec::new(),
            unsynced: Vec::new(),
            held: HeldMessages::default(),
            inbox: Vec::new(),
            now: Time(0),
            requests: 0,
            term: Term(0),
            durable_votes: Default::default(),
            durable_len_max: 0,
            committed_config: None,
            base: 0,
            snapshot: None,
            partial: None,
        };
        harness.step(Input::Tick);
        harness
    }

    fn step(&mut self, input: Input) {
        self.inbox.push(input);
        while let Some(input) = self.inbox.pop() {
            let outputs = self.raft.step(self.now, input);
            for output in outputs {
                match output {
                    Output::Send(message) => self.check_sent(&message),
                    Output::SendAfter { write, message } => {
                        if let Some(message) = self.held.hold(write, message) {
                            self.check_sent(&message);
                        }
                    }
                    Output::Write { id, write } => self.unsynced.push((id, write)),
                    Output::LoadEntries { from, to } => {
                        let at = |seq: Seq| seq.0.checked_sub(self.base).map(|i| i as usize);
                        let range = at(from).zip(at(to)).map(|(from, to)| from..=to);
                        match range.and_then(|range| self.entries.get(range)) {
                            Some(entries) => self.inbox.push(Input::EntriesLoaded { entries: entries.to_vec() }),
                            None => self.inbox.push(Input::LoadFailed { error: "not stored".into() }),
                        }
                    }
                    Output::Apply { entries } => {
                        let responses = entries.iter().map(|_| Bytes::new()).collect();
                        self.inbox.push(Input::Applied { first: entries[0].seq, responses });
                    }
                    Output::Read { id, .. } => self.inbox.push(Input::ReadDone { id, response: Bytes::new() }),
                    // No snapshots here: the fuzzed messages hold none, and none are taken.
                    Output::TakeSnapshot { .. } => self.inbox.push(Input::SnapshotFailed { error: "none".into() }),
                    Output::LoadSnapshotChunk { to, .. } => {
                        self.inbox.push(Input::SnapshotLoadFailed { to, error: "none".into() })
                    }
                    Output::Restore { snapshot } => self.inbox.push(Input::Restored { last: snapshot.last }),
                    Output::Reply { .. } | Output::Event(_) => {}
                }
            }
            self.check_state();
        }
    }

    /// Nothing that depends on a write is sent before the write is durable.
    fn check_sent(&self, message: &Message) {
        match message.body {
            Body::VoteResponse { granted: true } => {
                let vote = (message.term, message.to);
                assert!(self.durable_votes.contains(&vote), "a vote is sent only once it is durable");
            }
            Body::AppendResponse { result: AppendResult::Accepted { matched: Some(matched), .. }, .. } => {
                assert!((matched.0 as usize) < self.durable_len_max, "acknowledged seq {matched} was never durable");
            }
            _ => {}
        }
    }

    fn check_state(&mut self) {
        let raft = &self.raft;
        assert!(raft.term() >= self.term, "the term never goes back");
        self.term = raft.term();
        assert!(raft.commit() <= raft.seq(), "commit is within the log");
        assert!(raft.applied() <= raft.commit().max(self.config.apply_seq), "nothing is applied before commit");
        if raft.role() == Role::Leader {
            assert_eq!(raft.leader(), Some(NodeId(1)), "a leader knows it leads");
        }
        if let Some(last) = raft.last() {
            assert_eq!(raft.term_at(last.seq), Some(last.term));
            assert!(last.term <= raft.term(), "no entry from the future");
        }
    }

    fn sync(&mut self, count: usize) {
        let count = count.min(self.unsynced.len());
        let mut last = None;
        for (id, write) in self.unsynced.drain(..count) {
            match write {
                Write::HardState(state) => {
                    self.hard_state = state;
                    if let Some(vote) = state.vote {
                        self.durable_votes.insert((state.term, vote));
                    }
                }
                Write::Entries(entries) => {
                    for entry in entries {
                        assert_eq!(entry.seq.0, self.base + self.entries.len() as u64, "writes append in order");
                        self.entries.push(entry);
                    }
                    self.durable_len_max = self.durable_len_max.max(self.base as usize + self.entries.len());
                }
                Write::Truncate { from } => {
                    let keep = from.0.checked_sub(self.base).expect("no truncation below the log's first");
                    self.entries.truncate(keep as usize);
                }
                Write::Configuration(entry) => {
                    assert!(matches!(entry.payload, Payload::Config(_)), "only a configuration is saved as one");
                    self.committed_config = Some(entry);
                }
                Write::RemovePrefix { through } => {
                    let removed = (through.0 + 1).saturating_sub(self.base).min(self.entries.len() as u64);
                    self.entries.drain(..removed as usize);
                    self.base += removed;
                }
                Write::SnapshotChunk { snapshot, offset, data } => {
                    let mut bytes = match self.partial.take() {
                        Some((meta, bytes)) if meta == *snapshot && offset > 0 => bytes,
                        _ => Vec::new(),
                    };
                    bytes.resize(offset as usize, 0);
                    bytes.extend_from_slice(&data);
                    self.partial = Some((*snapshot, bytes));
                }
                Write::InstallSnapshot { snapshot } => {
                    self.partial = None;
                    self.entries.clear();
                    self.base = snapshot.last.seq.0 + 1;
                    self.durable_len_max = self.durable_len_max.max(self.base as usize);
                    self.snapshot = Some(*snapshot);
                }
            }
            last = Some(id);
        }
        if let Some(id) = last {
            for (_, message) in self.held.durable(id) {
                self.check_sent(&message);
            }
            self.step(Input::WriteDone { id });
        }
    }
}

/// One node fed arbitrary (well-formed) inputs never panics and keeps its invariants.
pub fn core_inputs(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok((pre_vote, state_machine, small)) = <(bool, bool, bool)>::arbitrary(&mut u) else { return };
    let mut config = Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]);
    config.pre_vote = pre_vote;
    config.state_machine = state_machine;
    if small {
        config.memory_entries_max = 2;
        config.rpc_entries_max = 2;
    }
    let mut h = Harness::new(config);
    for _ in 0..256 {
        let Ok(step) = Step::arbitrary(&mut u) else { break };
        match step {
            Step::Tick(millis) => {
                h.now = h.now.plus(u64::from(millis) * 1_000_000);
                h.step(Input::Tick);
            }
            Step::Message { from_three, term, body } => {
                let from = NodeId(if from_three { 3 } else { 2 });
                let message = Message { from, to: NodeId(1), term: Term(u64::from(term)), body: body.into_body() };
                h.step(Input::Message(message));
            }
            Step::Append(count) => {
                h.requests += 1;
                let mut data: Vec<Bytes> = (0..count % 4).map(|i| Bytes::from(vec![i])).collect();
                let id = RequestId(h.requests);
                if data.len() == 1 {
                    h.step(Input::Append { id, data: data.pop().expect("one payload") });
                } else {
                    h.step(Input::AppendBatch { id, data });
                }
            }
            Step::Read => {
                h.requests += 1;
                h.step(Input::Read { id: RequestId(h.requests), command: Bytes::new() });
            }
            Step::SyncAll => h.sync(usize::MAX),
            Step::SyncOne => h.sync(1),
            Step::Restart => {
                h.unsynced.clear();
                // Lost with the crash; the new core numbers its writes anew.
                h.held = HeldMessages::default();
                let mut recovered = Recovered::from_entries(h.hard_state, h.entries.clone());
                recovered.first = Seq(h.base);
                recovered.committed_config = h.committed_config.clone();
                recovered.snapshot = h.snapshot.clone();
                recovered.partial_snapshot = h.partial.as_ref().map(|(meta, bytes)| (meta.clone(), bytes.len() as u64));
                h.raft = Raft::new(h.config.clone(), recovered).expect("durable state recovers");
                // An unsynced term change is lost with the crash; the durable term is the floor.
                assert!(h.hard_state.term <= h.term, "the durable term is never ahead of memory");
                h.term = h.hard_state.term;
                h.step(Input::Tick);
            }
        }
    }
}

/// Recovery from arbitrary bytes (one to three segments) never panics, and returns either a
/// consistent prefix or a precise error.
pub fn recover_bytes(data: &[u8]) {
    use tinyraftplus::log::format::{decode_batch, Encoder, Key, HEADER_BYTES};
    use tinyraftplus::log::recovery::{scan, SegmentBytes};
    let Some((&split, rest)) = data.split_first() else { return };
    let cut = if rest.is_empty() { 0 } else { usize::from(split) * rest.len() / 256 };
    let (a, b) = rest.split_at(cut);
    for encoder in [Encoder::Plain, Encoder::XxHash, Encoder::Encrypted(Key::new([7; 32]))] {
        for segments in [
            vec![SegmentBytes { first_seq: 0, bytes: rest }],
            vec![SegmentBytes { first_seq: 0, bytes: a }, SegmentBytes { first_seq: u64::from(split % 4), bytes: b }],
        ] {
            let Ok(result) = scan(&segments, &encoder, 1 << 16, None) else { continue };
            let mut count = 0u64;
            for (scan, segment) in result.segments.iter().zip(&segments) {
                assert!(
                    scan.valid_len as usize <= segment.bytes.len().max(HEADER_BYTES),
                    "valid length within the file"
                );
                for pair in scan.offsets.windows(2) {
                    assert!(pair[0] <= pair[1], "offsets do not decrease");
                }
                let mut at = HEADER_BYTES;
                let mut index = 0;
                while index < scan.offsets.len() {
                    assert_eq!(scan.offsets[index] as usize, at, "entries are indexed by their batch");
                    let batch = decode_batch(&segment.bytes[at..], &encoder, scan.salt, 1 << 16);
                    let batch = batch.expect("every kept batch decodes");
                    index += batch.count as usize;
                    count += u64::from(batch.count);
                    at += batch.size;
                }
                assert!(index == scan.offsets.len() && at as u64 == scan.valid_len.max(HEADER_BYTES as u64));
            }
            assert_eq!(result.last.is_some(), count > 0, "a last entry exactly when batches were kept");
            for pair in result.term_starts.windows(2) {
                assert!(pair[0].0 < pair[1].0 && pair[0].1 < pair[1].1, "term runs increase");
            }
        }
    }
}
