//! Key-value registers: `put <key> <value>` answers `ok`; a read of `<key>` answers the value
//! last put (empty before any put). Each key is its own partition.

use super::{number, read_all, Random, StateMachine, Workload};
use crate::lincheck::{Model, Op};
use bytes::Bytes;
use std::collections::BTreeMap;
use tinyraftplus::core::Seq;

/// The registers' state machine.
#[derive(Clone, Debug, Default)]
pub struct Registers {
    values: BTreeMap<u64, Bytes>,
}

impl Registers {
    fn put(&mut self, command: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(command).map_err(|_| "not text".to_string())?;
        let mut words = text.splitn(3, ' ');
        if words.next() != Some("put") {
            return Err(format!("unknown command {text:?}"));
        }
        let key: u64 = number(words.next(), "key")?;
        let value = words.next().ok_or("no value")?;
        self.values.insert(key, Bytes::copy_from_slice(value.as_bytes()));
        Ok(())
    }
}

impl StateMachine for Registers {
    fn apply(&mut self, _first: Seq, entries: &[Option<Bytes>]) -> Result<Vec<Bytes>, String> {
        let answer = |command: &Option<Bytes>| match command {
            None => Bytes::new(),
            Some(command) => match self.put(command) {
                Ok(()) => Bytes::from_static(b"ok"),
                Err(error) => Bytes::from(error),
            },
        };
        Ok(entries.iter().map(answer).collect())
    }

    fn read(&mut self, _seq: Option<Seq>, command: &[u8]) -> Result<Bytes, String> {
        let key: u64 = number(std::str::from_utf8(command).ok(), "key")?;
        Ok(self.values.get(&key).cloned().unwrap_or_default())
    }

    fn snapshot(&mut self) -> Option<Result<Box<dyn std::io::Read + Send>, String>> {
        let mut bytes = Vec::new();
        for (key, value) in &self.values {
            bytes.extend_from_slice(format!("{key} {}\n", value.len()).as_bytes());
            bytes.extend_from_slice(value);
        }
        Some(Ok(Box::new(std::io::Cursor::new(bytes))))
    }

    fn restore(&mut self, input: &mut dyn std::io::Read) -> Result<(), String> {
        let bytes = read_all(input)?;
        let mut values = BTreeMap::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let end = rest.iter().position(|b| *b == b'\n').ok_or("snapshot line without end")?;
            let line = std::str::from_utf8(&rest[..end]).map_err(|_| "snapshot line is not text")?;
            let mut words = line.split(' ');
            let key: u64 = number(words.next(), "key")?;
            let len: usize = number(words.next(), "length")?;
            let value = rest.get(end + 1..end + 1 + len).ok_or("snapshot value cut short")?;
            values.insert(key, Bytes::copy_from_slice(value));
            rest = &rest[end + 1 + len..];
        }
        self.values = values;
        Ok(())
    }
}

/// What a register operation does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    /// Puts a value; answers `ok`.
    Put(Bytes),
    /// Reads the value.
    Get,
}

/// The registers' model: one register per key, empty at first.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisterModel;

impl Model for RegisterModel {
    type State = Bytes;
    type Input = RegisterOp;
    type Output = Bytes;

    fn init(&self) -> Bytes {
        Bytes::new()
    }

    fn input(&self, command: &[u8], read: bool) -> Result<RegisterOp, String> {
        if read {
            return Ok(RegisterOp::Get);
        }
        let mut words = command.splitn(3, |b| *b == b' ');
        match (words.next(), words.next(), words.next()) {
            (Some(b"put"), Some(_), Some(value)) => Ok(RegisterOp::Put(Bytes::copy_from_slice(value))),
            _ => Err(format!("not a put: {:?}", String::from_utf8_lossy(command))),
        }
    }

    fn output(&self, _input: &RegisterOp, response: &[u8]) -> Result<Bytes, String> {
        Ok(Bytes::copy_from_slice(response))
    }

    fn step(&self, value: &Bytes, input: &RegisterOp, output: Option<&Bytes>) -> Option<Bytes> {
        match input {
            RegisterOp::Put(new) => output.is_none_or(|ok| ok.as_ref() == b"ok").then(|| new.clone()),
            RegisterOp::Get => output.is_none_or(|seen| seen == value).then(|| value.clone()),
        }
    }
}

/// Clients put fresh values into one of three registers, or read one (half the time).
#[derive(Clone, Debug, Default)]
pub struct RegisterWorkload {
    puts: u64,
}

impl Workload for RegisterWorkload {
    fn next(&mut self, rng: &mut Random, client: usize) -> Op {
        let key = rng.below(3);
        if rng.below(2) == 0 {
            return Op { key, read: true, command: Bytes::from(key.to_string()) };
        }
        self.puts += 1;
        Op { key, read: false, command: Bytes::from(format!("put {key} c{client}v{}", self.puts)) }
    }

    fn final_read(&mut self, rng: &mut Random, _client: usize) -> Op {
        let key = rng.below(3);
        Op { key, read: true, command: Bytes::from(key.to_string()) }
    }
}
