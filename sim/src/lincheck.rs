//! A linearizability checker for histories of counters: Wing and Gong's search with Lowe's
//! memoisation (the algorithm of Porcupine and Knossos), split per key (a history is
//! linearizable when each key's sub-history is).
//!
//! Each operation has an invocation time and, if it completed, a return time and a result.
//! An operation that never completed (a timeout: it may or may not have happened) may take
//! effect at any point after its invocation, or never.

use std::collections::{BTreeMap, HashSet};

/// What an operation does to its key's counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Adds to the counter; the result is the new value.
    Add(i64),
    /// Reads the counter; the result is its value.
    Read,
}

/// One client operation in a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Which client ran it (operations of one client never overlap).
    pub client: u64,
    /// The counter it touches.
    pub key: u64,
    /// Add or read.
    pub kind: Kind,
    /// When it was invoked.
    pub invoke: u64,
    /// When it returned, with its result; `None` if it never completed.
    pub completed: Option<(u64, i64)>,
}

/// Why a history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The key whose operations admit no linearization.
    pub key: u64,
    /// How many completed operations on that key.
    pub operations: usize,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the {} operations on key {} have no linearization", self.operations, self.key)
    }
}

/// Checks a whole history: every key's operations must be linearizable (counters start at 0).
pub fn check(history: &[Operation]) -> Result<(), Violation> {
    let mut keys: BTreeMap<u64, Vec<&Operation>> = BTreeMap::new();
    for op in history {
        // A read that never returned tells nothing.
        if op.completed.is_some() || matches!(op.kind, Kind::Add(_)) {
            keys.entry(op.key).or_default().push(op);
        }
    }
    for (key, ops) in keys {
        if !check_key(&ops) {
            let operations = ops.iter().filter(|op| op.completed.is_some()).count();
            return Err(Violation { key, operations });
        }
    }
    Ok(())
}

/// The model's step: the new value if `op` can take effect on `value`.
fn step(value: i64, op: &Operation) -> Option<i64> {
    match (op.kind, op.completed) {
        (Kind::Add(delta), Some((_, result))) => (value.wrapping_add(delta) == result).then_some(result),
        (Kind::Add(delta), None) => Some(value.wrapping_add(delta)),
        (Kind::Read, Some((_, result))) => (value == result).then_some(value),
        (Kind::Read, None) => Some(value),
    }
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
    /// operations that never completed at the very end.
    fn new(ops: &[&Operation]) -> Events {
        let mut order: Vec<(u64, u8, usize, bool)> = Vec::with_capacity(ops.len() * 2);
        for (index, op) in ops.iter().enumerate() {
            order.push((op.invoke, 0, index, true));
            match op.completed {
                Some((at, _)) => order.push((at, 1, index, false)),
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

fn check_key(ops: &[&Operation]) -> bool {
    let mut events = Events::new(ops);
    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut seen: HashSet<(Vec<u64>, i64)> = HashSet::new();
    let mut stack: Vec<(usize, i64)> = Vec::new();
    let mut value = 0i64;
    let mut entry = events.next[0];
    loop {
        if entry == NIL {
            return true; // Every operation taken out.
        }
        let op = events.op[entry];
        if !events.is_call[entry] {
            if ops[op].completed.is_none() {
                // Only operations that may never have happened are left.
                return true;
            }
            // This operation had to be linearized by its return: undo the last choice.
            let Some((call, previous)) = stack.pop() else { return false };
            let undone = events.op[call];
            linearized[undone / 64] &= !(1 << (undone % 64));
            value = previous;
            events.unlift(call);
            entry = events.next[call];
            continue;
        }
        if let Some(new_value) = step(value, ops[op]) {
            linearized[op / 64] |= 1 << (op % 64);
            if seen.insert((linearized.clone(), new_value)) {
                stack.push((entry, value));
                value = new_value;
                events.lift(entry);
                entry = events.next[0];
                continue;
            }
            linearized[op / 64] &= !(1 << (op % 64));
        }
        entry = events.next[entry];
    }
}

/// A random history of `ops` operations from `clients` clients on `keys` counters (for tests
/// and benchmarks): each operation takes effect at a random point while it runs, so the history
/// is linearizable; with `break_it`, one read in the middle answers -1, which no order explains
/// (the checker must still search every order of the operations around it).
pub fn random_history(seed: u64, ops: usize, clients: u64, keys: u64, break_it: bool) -> Vec<Operation> {
    let mut rng = tinyraftplus::core::Rng::new(seed);
    let mut free = vec![0u64; clients as usize];
    let mut planned: Vec<(u64, Operation)> = Vec::with_capacity(ops);
    for _ in 0..ops {
        let client = rng.below(clients);
        let invoke = free[client as usize] + rng.below(50);
        let ret = invoke + 1 + rng.below(200);
        free[client as usize] = ret + 1;
        let at = invoke + rng.below(ret - invoke + 1);
        let kind = if rng.below(2) == 0 { Kind::Add(rng.below(9) as i64 + 1) } else { Kind::Read };
        let key = rng.below(keys);
        planned.push((at, Operation { client, key, kind, invoke, completed: Some((ret, 0)) }));
    }
    planned.sort_by_key(|(at, _)| *at);
    let mut values: BTreeMap<u64, i64> = BTreeMap::new();
    let mut history: Vec<Operation> = Vec::with_capacity(ops);
    for (_, mut op) in planned {
        let value = values.entry(op.key).or_default();
        if let Kind::Add(delta) = op.kind {
            *value += delta;
        }
        let ret = op.completed.expect("planned complete").0;
        op.completed = Some((ret, *value));
        history.push(op);
    }
    history.sort_by_key(|op| op.invoke);
    if break_it {
        let middle = history.len() / 2;
        if let Some(read) = history[middle..].iter_mut().find(|op| op.kind == Kind::Read) {
            let (ret, _) = read.completed.expect("complete");
            read.completed = Some((ret, -1));
        }
    }
    history
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(client: u64, key: u64, delta: i64, invoke: u64, ret: u64, result: i64) -> Operation {
        Operation { client, key, kind: Kind::Add(delta), invoke, completed: Some((ret, result)) }
    }

    fn read(client: u64, key: u64, invoke: u64, ret: u64, result: i64) -> Operation {
        Operation { client, key, kind: Kind::Read, invoke, completed: Some((ret, result)) }
    }

    #[test]
    fn sequential_and_concurrent_histories_that_make_sense_pass() {
        assert_eq!(check(&[add(0, 0, 2, 0, 1, 2), read(1, 0, 2, 3, 2), add(0, 0, 3, 4, 5, 5)]), Ok(()));
        // Two overlapping adds may take effect in either order.
        assert_eq!(check(&[add(0, 0, 1, 0, 10, 3), add(1, 0, 2, 1, 9, 2), read(2, 0, 11, 12, 3)]), Ok(()));
        // A read concurrent with an add may see it or not.
        assert_eq!(check(&[add(0, 0, 1, 0, 10, 1), read(1, 0, 1, 2, 0)]), Ok(()));
        assert_eq!(check(&[add(0, 0, 1, 0, 10, 1), read(1, 0, 1, 2, 1)]), Ok(()));
    }

    #[test]
    fn a_stale_read_or_an_impossible_result_fails_naming_the_key() {
        let stale = [add(0, 7, 1, 0, 1, 1), read(1, 7, 2, 3, 0)];
        assert_eq!(check(&stale), Err(Violation { key: 7, operations: 2 }));
        let impossible = [add(0, 0, 1, 0, 1, 1), add(1, 0, 1, 2, 3, 1)];
        assert!(check(&impossible).is_err());
        // Keys are independent: a good key does not hide a bad one.
        assert!(check(&[add(0, 1, 5, 0, 1, 5), add(0, 2, 1, 2, 3, 1), read(1, 2, 4, 5, 2)]).is_err());
    }

    #[test]
    fn large_random_histories_pass_and_one_wrong_read_fails() {
        for seed in 0..5 {
            assert_eq!(check(&random_history(seed, 2000, 5, 1, false)), Ok(()), "seed {seed}");
            assert!(check(&random_history(seed, 2000, 5, 1, true)).is_err(), "seed {seed}");
        }
    }

    #[test]
    fn an_operation_that_never_completed_may_or_may_not_have_happened() {
        let pending = Operation { client: 0, key: 0, kind: Kind::Add(5), invoke: 0, completed: None };
        assert_eq!(check(&[pending.clone(), read(1, 0, 10, 11, 5)]), Ok(()));
        assert_eq!(check(&[pending.clone(), read(1, 0, 10, 11, 0)]), Ok(()));
        assert_eq!(check(&[pending.clone(), read(1, 0, 10, 11, 0), read(1, 0, 12, 13, 5)]), Ok(()));
        // Once seen, it cannot be unseen.
        assert!(check(&[pending.clone(), read(1, 0, 10, 11, 5), read(1, 0, 12, 13, 0)]).is_err());
        // Nor can it take effect before it was invoked.
        let late = Operation { invoke: 20, ..pending };
        assert!(check(&[late, read(1, 0, 10, 11, 5)]).is_err());
    }
}
