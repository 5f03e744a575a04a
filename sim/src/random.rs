//! Every random decision of a run, from one place: drawn from the seed, or taken from a script
//! (a replay file, the shrinker's edits, a fuzzer's bytes) and, past the script's end, from the
//! seed again. A run can record its decisions: replaying them reproduces it bit for bit.

use std::collections::BTreeSet;
use tinyraftplus::core::Rng;

/// What a scripted run takes instead of drawing: its first decisions, and the client
/// operations it skips (by their index in the order clients start them; the shrinker's cuts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    /// The first decisions (then the seed's).
    pub decisions: Vec<u64>,
    /// The client operations not issued.
    pub skipped: BTreeSet<u64>,
    /// Whether the decisions start after the world's setup (the fault mix and the nodes'
    /// configurations, drawn from the seed), not at its first decision.
    pub after_setup: bool,
}

impl From<Vec<u64>> for Script {
    fn from(decisions: Vec<u64>) -> Script {
        Script { decisions, skipped: BTreeSet::new(), after_setup: false }
    }
}

/// The decisions a run made, in order: each value, and whether it fired a chance (a fault, a
/// lost message: what the shrinker turns off).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decisions {
    /// The raw values, in the order drawn.
    pub values: Vec<u64>,
    /// For each value, whether it fired a chance ([`Random::chance`] returned true).
    pub fired: Vec<bool>,
    /// How many client operations were started (issued or skipped).
    pub operations: u64,
}

/// The source of a run's random decisions (the simulator's, and the workload's).
#[derive(Clone, Debug)]
pub struct Random {
    rng: Rng,
    script: Script,
    position: usize,
    /// Where the script's decisions begin (unknown until the setup is done, with `after_setup`).
    start: Option<usize>,
    operations: u64,
    recorded: Option<Decisions>,
}

/// A decided chance that never fires (the value the shrinker writes to turn a fault off).
pub const NEVER: u64 = u64::MAX;

impl Random {
    /// Decisions drawn from `seed`.
    pub fn new(seed: u64) -> Random {
        Random::scripted(seed, Script::default(), false)
    }

    /// Decisions taken from `script`, then drawn from `seed`; recorded if `record`.
    pub fn scripted(seed: u64, script: Script, record: bool) -> Random {
        let start = (!script.after_setup).then_some(0);
        let recorded = record.then(Decisions::default);
        Random { rng: Rng::new(seed), script, position: 0, start, operations: 0, recorded }
    }

    /// The world's setup is done: a script that starts after it starts here.
    pub(crate) fn setup_done(&mut self) {
        self.start.get_or_insert(self.position);
    }

    /// A client starts an operation: whether the script skips it (no decision is drawn).
    pub(crate) fn skips_operation(&mut self) -> bool {
        self.operations += 1;
        self.script.skipped.contains(&(self.operations - 1))
    }

    fn take(&mut self) -> u64 {
        let index = self.start.and_then(|start| self.position.checked_sub(start));
        let value = match index.and_then(|index| self.script.decisions.get(index)) {
            Some(value) => *value,
            None => self.rng.next_u64(),
        };
        self.position += 1;
        if let Some(recorded) = &mut self.recorded {
            recorded.values.push(value);
            recorded.fired.push(false);
        }
        value
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.take()
    }

    /// A number in `0..bound` (0 when `bound` is 0), as [`Rng::below`] draws it.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.take()) * u128::from(bound)) >> 64) as u64
    }

    /// True with probability `p` (nothing is drawn when `p` is 0).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        let fired = (self.take() >> 11) as f64 / (1u64 << 53) as f64 <= p;
        if let Some(last) = self.recorded.as_mut().and_then(|recorded| recorded.fired.last_mut()) {
            *last = fired;
        }
        fired
    }

    /// The decisions made so far, if recording.
    pub fn recorded(&self) -> Option<Decisions> {
        let recorded = self.recorded.as_ref()?;
        Some(Decisions { operations: self.operations, ..recorded.clone() })
    }

    /// How many decisions were made.
    pub fn count(&self) -> usize {
        self.position
    }
}
