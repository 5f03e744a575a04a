//! Counters: `add <key> <delta>` answers the key's new value; a read of `<key>` answers its
//! value (0 before any add). Each key is its own partition.

use super::{number, read_all, Random, StateMachine, Workload};
use crate::lincheck::{Completion, Model, Op, Operation};
use bytes::Bytes;
use std::collections::BTreeMap;
use tinyraftplus::core::Seq;

/// The counters' state machine.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    values: BTreeMap<u64, i64>,
}

impl Counters {
    fn add(&mut self, command: &[u8]) -> Result<i64, String> {
        let text = std::str::from_utf8(command).map_err(|_| "not text".to_string())?;
        let mut words = text.split(' ');
        if words.next() != Some("add") {
            return Err(format!("unknown command {text:?}"));
        }
        let key: u64 = number(words.next(), "key")?;
        let delta: i64 = number(words.next(), "delta")?;
        let value = self.values.entry(key).or_default();
        *value = value.wrapping_add(delta);
        Ok(*value)
    }
}

impl StateMachine for Counters {
    fn apply(&mut self, _first: Seq, entries: &[Option<Bytes>]) -> Result<Vec<Bytes>, String> {
        let answer = |command: &Option<Bytes>| match command {
            None => Bytes::new(),
            // A bad command is answered, not fatal: the state machine must go on applying.
            Some(command) => Bytes::from(self.add(command).map_or_else(|e| e, |v| v.to_string())),
        };
        Ok(entries.iter().map(answer).collect())
    }

    fn read(&mut self, _seq: Option<Seq>, command: &[u8]) -> Result<Bytes, String> {
        let key: u64 = number(std::str::from_utf8(command).ok(), "key")?;
        Ok(Bytes::from(self.values.get(&key).copied().unwrap_or(0).to_string()))
    }

    fn snapshot(&mut self) -> Option<Result<Box<dyn std::io::Read + Send>, String>> {
        let text: String = self.values.iter().map(|(key, value)| format!("{key} {value}\n")).collect();
        Some(Ok(Box::new(std::io::Cursor::new(text.into_bytes()))))
    }

    fn restore(&mut self, input: &mut dyn std::io::Read) -> Result<(), String> {
        let bytes = read_all(input)?;
        let text = String::from_utf8(bytes).map_err(|_| "snapshot is not text".to_string())?;
        let mut values = BTreeMap::new();
        for line in text.lines() {
            let mut words = line.split(' ');
            values.insert(number(words.next(), "key")?, number(words.next(), "value")?);
        }
        self.values = values;
        Ok(())
    }
}

/// What a counter operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterOp {
    /// Adds to the counter; answers the new value.
    Add(i64),
    /// Reads the counter.
    Read,
}

/// The counters' model: one counter per key, starting at 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct CounterModel;

impl Model for CounterModel {
    type State = i64;
    type Input = CounterOp;
    type Output = i64;

    fn init(&self) -> i64 {
        0
    }

    fn input(&self, command: &[u8], read: bool) -> Result<CounterOp, String> {
        if read {
            return Ok(CounterOp::Read);
        }
        let text = std::str::from_utf8(command).map_err(|_| "not text".to_string())?;
        let mut words = text.split(' ').skip(2);
        Ok(CounterOp::Add(number(words.next(), "delta")?))
    }

    fn output(&self, _input: &CounterOp, response: &[u8]) -> Result<i64, String> {
        number(std::str::from_utf8(response).ok(), "value")
    }

    fn step(&self, value: &i64, input: &CounterOp, output: Option<&i64>) -> Option<i64> {
        let next = match input {
            CounterOp::Add(delta) => value.wrapping_add(*delta),
            CounterOp::Read => *value,
        };
        output.is_none_or(|seen| *seen == next).then_some(next)
    }
}

/// Clients add 1 to 9 to one of three counters, or read one (three times in ten).
#[derive(Clone, Copy, Debug)]
pub struct CounterWorkload {
    /// How many counters.
    pub keys: u64,
}

impl Default for CounterWorkload {
    fn default() -> CounterWorkload {
        CounterWorkload { keys: 3 }
    }
}

impl Workload for CounterWorkload {
    fn next(&mut self, rng: &mut Random, _client: usize) -> Op {
        let key = rng.below(self.keys);
        if rng.below(10) < 3 {
            return Op { key, read: true, command: Bytes::from(key.to_string()) };
        }
        let delta = rng.below(9) + 1;
        Op { key, read: false, command: Bytes::from(format!("add {key} {delta}")) }
    }

    fn final_read(&mut self, rng: &mut Random, _client: usize) -> Op {
        let key = rng.below(self.keys);
        Op { key, read: true, command: Bytes::from(key.to_string()) }
    }
}

/// A random history of `ops` counter operations from `clients` clients on `keys` counters (for
/// tests and benchmarks): each operation takes effect at a random point while it runs, so the
/// history is linearizable; with `break_it`, one read in the middle answers -1, which no order
/// explains (the checker must still search every order of the operations around it).
pub fn random_history(seed: u64, ops: usize, clients: u64, keys: u64, break_it: bool) -> Vec<Operation> {
    let mut rng = tinyraftplus::core::Rng::new(seed);
    let mut free = vec![0u64; clients as usize];
    let mut planned: Vec<(u64, Operation, i64)> = Vec::with_capacity(ops);
    for request in 0..ops as u64 {
        let client = rng.below(clients);
        let invoke = free[client as usize] + rng.below(50);
        let ret = invoke + 1 + rng.below(200);
        free[client as usize] = ret + 1;
        let at = invoke + rng.below(ret - invoke + 1);
        let key = rng.below(keys);
        let (read, delta) = match rng.below(2) {
            0 => (false, rng.below(9) as i64 + 1),
            _ => (true, 0),
        };
        let command = Bytes::from(if read { key.to_string() } else { format!("add {key} {delta}") });
        let op = Op { key, read, command };
        let completion = Completion::Returned { at: ret, response: Bytes::new() };
        planned.push((at, Operation { client, request, node: 1, op, invoke, completion, witness: None }, delta));
    }
    planned.sort_by_key(|(at, ..)| *at);
    let mut values: BTreeMap<u64, i64> = BTreeMap::new();
    let mut history: Vec<Operation> = Vec::with_capacity(ops);
    for (_, mut op, delta) in planned {
        let value = values.entry(op.op.key).or_default();
        *value += delta;
        let at = op.returned().expect("planned complete");
        op.completion = Completion::Returned { at, response: Bytes::from(value.to_string()) };
        history.push(op);
    }
    history.sort_by_key(|op| op.invoke);
    if break_it {
        let middle = history.len() / 2;
        if let Some(read) = history[middle..].iter_mut().find(|op| op.op.read) {
            let at = read.returned().expect("complete");
            read.completion = Completion::Returned { at, response: Bytes::from_static(b"-1") };
        }
    }
    history
}
