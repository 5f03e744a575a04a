//! A log that is the product, compacted by empty snapshots: the nodes run the library's
//! [`LogOnly`] state machine, clients append fresh entries or read (a linearizable barrier),
//! and every answer is empty. The history has nothing to check beyond that; what these runs
//! test is the rest of the simulator's checks (the logs', the cluster's and liveness) with
//! snapshots that carry no state: a node that lost its disk or joined after compaction must
//! come back from one, where a log without a state machine would strand it.

use super::{Random, Workload};
use crate::lincheck::{Model, Op};
use bytes::Bytes;
pub use tinyraftplus::driver::LogOnly;

/// What a log operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogOp {
    /// Appends an entry.
    Append,
    /// Reads (a barrier).
    Read,
}

/// The log's model: every operation is answered with nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogModel;

impl Model for LogModel {
    type State = ();
    type Input = LogOp;
    type Output = Bytes;

    fn init(&self) {}

    fn input(&self, _command: &[u8], read: bool) -> Result<LogOp, String> {
        Ok(if read { LogOp::Read } else { LogOp::Append })
    }

    fn output(&self, _input: &LogOp, response: &[u8]) -> Result<Bytes, String> {
        Ok(Bytes::copy_from_slice(response))
    }

    fn step(&self, _state: &(), _input: &LogOp, output: Option<&Bytes>) -> Option<()> {
        output.is_none_or(Bytes::is_empty).then_some(())
    }
}

/// Clients append fresh entries, and read one time in five.
#[derive(Clone, Debug, Default)]
pub struct LogWorkload {
    appends: u64,
}

impl Workload for LogWorkload {
    fn next(&mut self, rng: &mut Random, client: usize) -> Op {
        if rng.below(5) == 0 {
            return Op { key: 0, read: true, command: Bytes::new() };
        }
        self.appends += 1;
        Op { key: 0, read: false, command: Bytes::from(format!("c{client}e{}", self.appends)) }
    }

    fn final_read(&mut self, _rng: &mut Random, _client: usize) -> Op {
        Op { key: 0, read: true, command: Bytes::new() }
    }
}
