//! A linearizability checker for histories of any state machine, given a [`Model`] of it:
//! Wing and Gong's search with Lowe's memoisation (the algorithm of Porcupine and Knossos),
//! split per key (a history is linearizable when each key's sub-history is).
//!
//! Each operation has an invocation time and, if it completed, a return time and a response.
//! An operation whose client never heard back may take effect at any point after its invocation,
//! or never; one that some node applied took effect, with the response it produced there, by
//! the time a node first applied it (it had committed by then).
//!
//! When a history fails, [`check`] also explains it: the shortest prefix of the key's history
//! (by invocation time) that already fails, relaxed operation by operation (a read dropped, an
//! update made "may or may not have happened", an answer forgotten) while it still fails. What
//! survives is a small set of operations whose observed results no order explains.

use bytes::Bytes;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification of a state machine, as Porcupine's models are: the state before
/// any operation, and what an operation may do to a state. Commands and responses are the
/// bytes the state machine saw and answered; the model decodes them once.
///
/// Operations on different keys (see [`Op::key`]) must not affect each other: each key's
/// sub-history is checked on its own, from [`Model::init`].
pub trait Model: Send + Sync + 'static {
    /// The state of one key (one partition).
    type State: Clone + Eq + Hash + Debug;
    /// A decoded command.
    type Input: Clone + Debug;
    /// A decoded response.
    type Output: Clone + Debug;
    /// The state of every key before any operation.
    fn init(&self) -> Self::State;
    /// Decodes a command (`read`: it was sent as a read, not appended).
    fn input(&self, command: &[u8], read: bool) -> Result<Self::Input, String>;
    /// Decodes the response to `input`.
    fn output(&self, input: &Self::Input, response: &[u8]) -> Result<Self::Output, String>;
    /// The state after `input` took effect on `state` answering `output` (`None`: its answer is
    /// not known), or `None` if it could not have answered that there.
    fn step(&self, state: &Self::State, input: &Self::Input, output: Option<&Self::Output>) -> Option<Self::State>;
}

/// What a workload asks a client to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The partition it touches (ops on different keys are independent; use one key when
    /// every operation may touch everything).
    pub key: u64,
    /// A read (served by the leader without a log entry) or an append (replicated, applied).
    pub read: bool,
    /// The bytes the state machine gets.
    pub command: Bytes,
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Answered at this time with this response.
    Returned {
        /// When (simulated nanoseconds).
        at: u64,
        /// The state machine's answer.
        response: Bytes,
    },
    /// Never answered, but some node applied it, producing this response.
    Applied {
        /// When a node first applied it (simulated nanoseconds): it had committed, so taken
        /// effect, by then.
        at: u64,
        /// The state machine's answer on the nodes that applied it.
        response: Bytes,
    },
    /// Never answered and no node applied it by the end: it did not happen.
    NotApplied,
    /// Never answered: it may or may not have taken effect (a read: it tells nothing).
    Unknown,
}

/// One client operation in a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Which client ran it (operations of one client never overlap).
    pub client: u64,
    /// Its request id (as in trace lines: `#17`).
    pub request: u64,
    /// The node it was sent to.
    pub node: u64,
    /// Its key, command and whether it was a read.
    pub op: Op,
    /// When it was invoked.
    pub invoke: u64,
    /// How it ended.
    pub completion: Completion,
    /// Where the system says the operation took effect, as a position in one order of all
    /// operations (see [`witness_of_update`] and [`witness_of_read`]), if known. It only orders
    /// the search (candidates with a lower witness are tried first): a correct system's
    /// witness is a linearization, found without backtracking, and a wrong one decides nothing.
    pub witness: Option<u64>,
}

/// The witness of an update the log holds at `seq`: after the reads of the state before it.
pub fn witness_of_update(seq: u64) -> u64 {
    2 * (seq + 1)
}

/// The witness of a read of the state after applying up to `seq` (none: before anything).
pub fn witness_of_read(seq: Option<u64>) -> u64 {
    seq.map_or(1, |seq| 2 * (seq + 1) + 1)
}

impl Operation {
    /// The return time, if it was answered.
    pub fn returned(&self) -> Option<u64> {
        match self.completion {
            Completion::Returned { at, .. } => Some(at),
            _ => None,
        }
    }

    /// The response, if it is known.
    pub fn response(&self) -> Option<&Bytes> {
        match &self.completion {
            Completion::Returned { response, .. } | Completion::Applied { response, .. } => Some(response),
            _ => None,
        }
    }
}

/// What a failing operation contributes to the contradiction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fact {
    /// Its response (and its timing).
    Response,
    /// Only that it took effect before it returned; its answer is not needed.
    Returned,
}

/// Why a history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The key whose operations admit no linearization.
    pub key: u64,
    /// How many operations on that key were checked.
    pub operations: usize,
    /// The operations that cannot be ordered (indices into the history, in invocation order),
    /// and what of each is needed.
    pub culprits: Vec<(usize, Fact)>,
    /// Why: one line per culprit (request id, client, node, key, command, response, times).
    pub lines: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} operations on key {} have no linearization; these {} cannot be ordered: {}",
            self.operations,
            self.key,
            self.culprits.len(),
            self.lines.join("; ")
        )
    }
}

/// A key whose search ran past its step budget (see [`check_within`]): the history was neither
/// linearized nor shown not to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undecided {
    /// The key.
    pub key: u64,
    /// How many operations on that key were checked.
    pub operations: usize,
    /// The budget it ran past (steps: each tries one operation).
    pub steps: usize,
}

impl std::fmt::Display for Undecided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the search of the {} operations on key {} ran past {} steps without deciding",
            self.operations, self.key, self.steps
        )
    }
}

/// What a bounded check of a history found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every key's operations were linearized.
    Linearizable,
    /// A key's operations have no linearization (explained).
    Violation(Violation),
    /// No key fails, but one's search ran out of steps (the first such key).
    Undecided(Undecided),
}

/// A decoded operation as the search sees it.
struct Decoded<M: Model> {
    index: usize,
    witness: Option<u64>,
    input: M::Input,
    output: Option<M::Output>,
    invoke: u64,
    /// `None`: may take effect at any time after its invocation, or never.
    ret: Option<u64>,
    read: bool,
}

impl<M: Model> Clone for Decoded<M> {
    fn clone(&self) -> Self {
        Decoded { input: self.input.clone(), output: self.output.clone(), ..*self }
    }
}

/// Checks a whole history against `model`: every key's operations must be linearizable. A
/// failure is explained (see the module's documentation). The search has no budget: a history
/// that cannot be linearized, with a large burst of concurrent updates, may take long to reject
/// (see [`check_within`]).
pub fn check<M: Model>(model: &M, history: &[Operation]) -> Result<(), Violation> {
    match check_keys(model, history, true, usize::MAX) {
        Verdict::Violation(violation) => Err(violation),
        _ => Ok(()),
    }
}

/// [`check`] without the explanation: a failure names its key only (`culprits` empty). Faster
/// to reject a history: the explanation searches prefixes and relaxations of the failing key.
pub fn linearizable<M: Model>(model: &M, history: &[Operation]) -> Result<(), Violation> {
    match check_keys(model, history, false, usize::MAX) {
        Verdict::Violation(violation) => Err(violation),
        _ => Ok(()),
    }
}

/// [`check`] with each key's search given at most `steps` steps (a step tries one operation
/// in one state): a key whose search runs past them is [`Verdict::Undecided`], neither passed
/// nor failed. A failure found is explained within the same budget per trial (a trial that
/// runs out counts as passing, so the explanation may keep more operations than it needs).
/// Steps are counted, not timed: the same history gets the same verdict on any machine.
pub fn check_within<M: Model>(model: &M, history: &[Operation], steps: usize) -> Verdict {
    check_keys(model, history, true, steps)
}

fn check_keys<M: Model>(model: &M, history: &[Operation], explain_failure: bool, limit: usize) -> Verdict {
    let keys = match decode(model, history) {
        Ok(keys) => keys,
        Err(violation) => return Verdict::Violation(violation),
    };
    let mut undecided = None;
    for (key, mut ops) in keys {
        match search(model, &ops, limit) {
            Some(true) => {}
            None => {
                undecided.get_or_insert(Undecided { key, operations: ops.len(), steps: limit });
            }
            Some(false) if !explain_failure => {
                return Verdict::Violation(Violation {
                    key,
                    operations: ops.len(),
                    culprits: Vec::new(),
                    lines: Vec::new(),
                });
            }
            Some(false) => {
                ops.sort_by_key(|op| op.invoke);
                let culprits = explain(model, ops.clone(), limit);
                let lines = culprits.iter().map(|(index, fact)| describe(model, history, *index, *fact)).collect();
                return Verdict::Violation(Violation { key, operations: ops.len(), culprits, lines });
            }
        }
    }
    undecided.map_or(Verdict::Linearizable, Verdict::Undecided)
}

/// Each key's operations as the search sees them (those that tell nothing left out).
fn decode<M: Model>(model: &M, history: &[Operation]) -> Result<BTreeMap<u64, Vec<Decoded<M>>>, Violation> {
    let mut keys: BTreeMap<u64, Vec<Decoded<M>>> = BTreeMap::new();
    for (index, op) in history.iter().enumerate() {
        let (ret, response) = match &op.completion {
            Completion::Returned { at, response } => (Some(*at), Some(response)),
            // Took effect by the time it was first applied, answering this.
            Completion::Applied { at, response } => (Some(*at), Some(response)),
            Completion::NotApplied => continue,
            Completion::Unknown if op.op.read => continue, // Tells nothing.
            Completion::Unknown => (None, None),
        };
        let undecodable = |error: String| Violation {
            key: op.op.key,
            operations: 1,
            culprits: vec![(index, Fact::Response)],
            lines: vec![format!("{} (the model cannot decode it: {error})", describe_raw(op))],
        };
        let input = model.input(&op.op.command, op.op.read).map_err(undecodable)?;
        let output = match response {
            Some(response) => Some(model.output(&input, response).map_err(undecodable)?),
            None => None,
        };
        let decoded = Decoded { index, witness: op.witness, input, output, invoke: op.invoke, ret, read: op.op.read };
        keys.entry(op.op.key).or_default().push(decoded);
    }
    Ok(keys)
}

fn seconds(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

fn describe_raw(op: &Operation) -> String {
    format!(
        "#{} client {} via n{} key {}: {} {:?}",
        op.request,
        op.client,
        op.node,
        op.op.key,
        if op.op.read { "read" } else { "append" },
        String::from_utf8_lossy(&op.op.command)
    )
}

fn describe<M: Model>(model: &M, history: &[Operation], index: usize, fact: Fact) -> String {
    let op = &history[index];
    let input = model.input(&op.op.command, op.op.read).map_or_else(|e| e, |i| format!("{i:?}"));
    let answer = match (op.response(), fact) {
        (Some(response), Fact::Response) => {
            let decoded = model.input(&op.op.command, op.op.read).and_then(|i| model.output(&i, response));
            decoded.map_or_else(|_| format!("{:?}", String::from_utf8_lossy(response)), |o| format!("{o:?}"))
        }
        _ => "(answer not needed)".into(),
    };
    let times = match &op.completion {
        Completion::Returned { at, .. } => format!("invoked {}, returned {}", seconds(op.invoke), seconds(*at)),
        Completion::Applied { at, .. } => {
            format!("invoked {}, never answered, first applied {}", seconds(op.invoke), seconds(*at))
        }
        _ => format!("invoked {}, never answered", seconds(op.invoke)),
    };
    format!("#{} client {} via n{} key {}: {input} -> {answer}, {times}", op.request, op.client, op.node, op.op.key)
}

/// Shrinks a failing key history (sorted by invocation) to the operations that cannot be
/// ordered: the shortest failing prefix, then each operation relaxed as far as the failure
/// allows. Every relaxation only widens what the checker accepts, so the result fails for the
/// reason the whole history did. Each search of a prefix gets at most `limit` steps (one that
/// runs out counts as passing: the prefix found is one known to fail).
fn explain<M: Model>(model: &M, ops: Vec<Decoded<M>>, limit: usize) -> Vec<(usize, Fact)> {
    // The history up to time `t`: the operations invoked by then, those still running made "may
    // or may not have happened" (a read still running tells nothing). Failing is monotone in
    // `t`: a prefix of a linearizable history is linearizable.
    let prefix = |t: u64| -> Vec<Decoded<M>> {
        let relaxed = ops.iter().filter(|op| op.invoke <= t).filter_map(|op| match op.ret {
            Some(ret) if ret <= t => Some(op.clone()),
            _ if op.read => None,
            _ => Some(Decoded { output: None, ret: None, ..op.clone() }),
        });
        relaxed.collect()
    };
    let mut times: Vec<u64> = ops.iter().filter_map(|op| op.ret).collect();
    times.sort_unstable();
    times.dedup();
    let (mut low, mut high) = (0, times.len().saturating_sub(1));
    while low < high {
        let middle = (low + high) / 2;
        if search(model, &prefix(times[middle]), limit) != Some(false) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    let high = times.get(high).copied().unwrap_or(u64::MAX);
    let mut current = prefix(high);
    // Each trial search gets a bounded number of steps (one that runs out counts as passing,
    // so the relaxation is not kept): relaxed histories can be much harder to search.
    let trial_steps = limit.min(TRIAL_STEPS);
    let fails = |trial: &[Decoded<M>]| search(model, trial, trial_steps) == Some(false);
    // Delta debugging: relax whole runs of operations at once (a read dropped, an update's
    // answer forgotten), halving the runs down to single operations.
    let relaxed = |op: &Decoded<M>| (!op.read).then(|| Decoded { output: None, ..op.clone() });
    let mut chunk = current.len().div_ceil(2);
    while chunk > 0 {
        let mut start = 0;
        while start < current.len() {
            let end = (start + chunk).min(current.len());
            if current[start..end].iter().all(|op| !op.read && op.output.is_none()) {
                start = end;
                continue;
            }
            let mut trial: Vec<Decoded<M>> = current[..start].to_vec();
            trial.extend(current[start..end].iter().filter_map(relaxed));
            trial.extend_from_slice(&current[end..]);
            if fails(&trial) {
                current = trial;
            } else {
                start = end; // Something in this run is needed.
            }
        }
        chunk /= 2;
    }
    // Of the updates left, is it needed that they happened by their return, or could they as
    // well never have happened? Latest first; each one that may not have happened makes the
    // search harder, so this stops once trials keep running out of steps.
    let mut exhausted = 0;
    for i in (0..current.len()).rev() {
        if exhausted >= 3 {
            break;
        }
        if current[i].ret.is_some() && current[i].output.is_none() {
            let mut trial = current.clone();
            trial[i].ret = None;
            match search(model, &trial, trial_steps) {
                Some(false) => current = trial,
                Some(true) => {}
                None => exhausted += 1,
            }
        }
    }
    let culprits = current.iter().filter_map(|op| match (op.ret, &op.output) {
        (None, _) => None,
        (Some(_), Some(_)) => Some((op.index, Fact::Response)),
        (Some(_), None) => Some((op.index, Fact::Returned)),
    });
    culprits.collect()
}

/// Events in a doubly linked list: calls and returns in time order.
struct Events {
    op: Vec<usize>,
    is_call: Vec<bool>,
    /// For a call, the index of its return.
    matching: Vec<usize>,
    prev: Vec<usize>,
    next: Vec<usize>,
}

const NIL: usize = usize::MAX;

impl Events {
    /// Event 0 is the list's head; calls and returns follow in time order, calls before
    /// returns at equal times (so operations that touch are concurrent), and the returns of
    /// operations that may never have happened at the very end.
    fn new<M: Model>(ops: &[Decoded<M>]) -> Events {
        let mut order: Vec<(u64, u8, usize, bool)> = Vec::with_capacity(ops.len() * 2);
        for (index, op) in ops.iter().enumerate() {
            order.push((op.invoke, 0, index, true));
            match op.ret {
                Some(at) => order.push((at, 1, index, false)),
                None => order.push((u64::MAX, 2, index, false)),
            }
        }
        order.sort_unstable();
        let n = order.len() + 1;
        let mut events = Events {
            op: vec![NIL; n],
            is_call: vec![false; n],
            matching: vec![NIL; n],
            prev: (0..n).map(|i| i.wrapping_sub(1)).collect(),
            next: (1..=n).map(|i| if i == n { NIL } else { i }).collect(),
        };
        let mut call_of = vec![NIL; ops.len()];
        for (position, (_, _, index, is_call)) in order.iter().enumerate() {
            let event = position + 1;
            events.op[event] = *index;
            events.is_call[event] = *is_call;
            if *is_call {
                call_of[*index] = event;
            } else {
                events.matching[call_of[*index]] = event;
            }
        }
        events
    }

    fn unlink(&mut self, event: usize) {
        let (prev, next) = (self.prev[event], self.next[event]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, event: usize) {
        let (prev, next) = (self.prev[event], self.next[event]);
        self.next[prev] = event;
        if next != NIL {
            self.prev[next] = event;
        }
    }

    /// Takes an operation (its call and its return) out of the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.matching[call]);
    }

    /// Puts it back (in the reverse order of `lift`).
    fn unlift(&mut self, call: usize) {
        self.relink(self.matching[call]);
        self.relink(call);
    }
}

/// The configurations the search has been in (which operations are linearized, and the state
/// they leave), so that it never explores one twice: Lowe's memoisation. The set of operations
/// is keyed by an incremental hash (the xor of a fixed random word per operation, Zobrist's), so
/// that a step hashes the state and one word, not the whole set (a set of 10,000 operations is
/// 157 words); sets are compared only when their hashes and states meet.
struct Memo<S> {
    seen: HashMap<(u64, S), Vec<Box<[u64]>>>,
}

/// The word operation `op` adds to the hash of a set it is in (splitmix64 of its index).
fn set_word(op: usize) -> u64 {
    let mut z = (op as u64).wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl<S: Hash + Eq> Memo<S> {
    fn new() -> Memo<S> {
        Memo { seen: HashMap::new() }
    }

    /// Records the configuration `set` (whose hash is `hash`) with `state`; false if it was
    /// there already.
    fn insert(&mut self, hash: u64, set: &[u64], state: S) -> bool {
        match self.seen.entry((hash, state)) {
            Entry::Vacant(entry) => {
                entry.insert(vec![set.into()]);
                true
            }
            Entry::Occupied(entry) if entry.get().iter().any(|seen| **seen == *set) => false,
            Entry::Occupied(mut entry) => {
                entry.get_mut().push(set.into());
                true
            }
        }
    }
}

/// Search steps a trial of [`explain`] may take.
const TRIAL_STEPS: usize = 200_000;

/// Whether `ops` can be linearized, or `None` if that takes more than `limit` steps (a step
/// tries one operation).
///
/// The operations that may come next are those invoked before the earliest return among the
/// operations left; they are tried in the order of their witnesses (where the system says they
/// took effect), then earliest return first. A correct system's history is linearized in that
/// order without going back. Tried in order of invocation, a burst of updates applied together
/// after an outage, none of them read, made the search go through the subsets of the burst
/// before the read that had returned first (22 puts: seed 2009346 of four nodes with registers
/// never ended); earliest return first, puts and reads of five nodes and 16 clients still
/// could (seed 6009864, over 10 s and 4.8 GB before it was stopped; 0.02 s in witness order).
fn search<M: Model>(model: &M, ops: &[Decoded<M>], limit: usize) -> Option<bool> {
    let mut events = Events::new(ops);
    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut hash = 0; // Of `linearized` (see `Memo`).
    let mut memo = Memo::new();
    // A frame per operation linearized, and one for the next: the candidates (call events),
    // how many of them were tried, and the state they start from.
    let mut frames: Vec<(Vec<usize>, usize, M::State)> = Vec::new();
    // The candidate lists of frames popped, reused (one allocation per level, not per step).
    let mut spare: Vec<Vec<usize>> = Vec::new();
    let mut state = model.init();
    let mut steps = 0;
    'next: loop {
        let mut candidates = spare.pop().unwrap_or_default();
        candidates.clear();
        let mut entry = events.next[0];
        while entry != NIL && events.is_call[entry] {
            candidates.push(entry);
            entry = events.next[entry];
        }
        if entry == NIL || ops[events.op[entry]].ret.is_none() {
            // Every operation taken out, or only those that may never have happened left.
            return Some(true);
        }
        candidates.sort_unstable_by_key(|call| {
            let op = &ops[events.op[*call]];
            (op.witness.unwrap_or(u64::MAX), op.ret.unwrap_or(u64::MAX), *call)
        });
        frames.push((candidates, 0, state));
        loop {
            let Some((candidates, tried, before)) = frames.last_mut() else { return Some(false) };
            if *tried == candidates.len() {
                // Nothing fits next: undo the choice that led here.
                spare.extend(frames.pop().map(|(candidates, _, _)| candidates));
                let Some((candidates, tried, _)) = frames.last() else { return Some(false) };
                let call = candidates[*tried - 1];
                let undone = events.op[call];
                linearized[undone / 64] &= !(1 << (undone % 64));
                hash ^= set_word(undone);
                events.unlift(call);
                continue;
            }
            let call = candidates[*tried];
            *tried += 1;
            steps += 1;
            if steps > limit {
                return None;
            }
            let op = events.op[call];
            if let Some(next) = model.step(before, &ops[op].input, ops[op].output.as_ref()) {
                linearized[op / 64] |= 1 << (op % 64);
                if memo.insert(hash ^ set_word(op), &linearized, next.clone()) {
                    hash ^= set_word(op);
                    events.lift(call);
                    state = next;
                    continue 'next;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
        }
    }
}

#[cfg(test)]
mod tests;
