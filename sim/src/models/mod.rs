//! What the simulator runs on its nodes and checks its clients' histories against: a state
//! machine (the drivers' [`StateMachine`] trait), a [`Workload`] that says what clients do,
//! and a [`Model`](crate::lincheck::Model) of the state machine for the linearizability
//! checker. Three ship built in: counters ([`counter`]), key-value registers ([`register`]) and a log
//! compacted by empty snapshots ([`log`]).

pub mod counter;
pub mod log;
pub mod register;

use crate::lincheck::Op;
pub use crate::random::Random;
pub use tinyraftplus::driver::StateMachine;

/// What the simulated clients do: each asks for its next operation when its last one ended
/// (answered, failed or timed out). Random choices come from `random`, the run's own source of
/// decisions, so the seed decides them too (and a replay file or a fuzzer can).
pub trait Workload: Send {
    /// The next operation of client `client` while the run goes on.
    fn next(&mut self, random: &mut Random, client: usize) -> Op;
    /// A read for the end of the run, after healing (every client's last operation).
    fn final_read(&mut self, random: &mut Random, client: usize) -> Op;
}

/// Reads all of a snapshot stream (the simulator holds snapshots in memory).
pub(crate) fn read_all(stream: &mut dyn std::io::Read) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Parses a decimal number, naming what was expected.
pub(crate) fn number<T: std::str::FromStr>(word: Option<&str>, what: &str) -> Result<T, String> {
    let word = word.ok_or_else(|| format!("no {what}"))?;
    word.parse().map_err(|_| format!("{what} {word:?} is not a number"))
}
