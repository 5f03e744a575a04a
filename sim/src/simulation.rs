//! A simulation of a cluster running a given state machine under a given workload, checked
//! against a given model: the simulator's API for users' own state machines.
//!
//! ```
//! use tinyraftplus_sim::models::counter::{CounterModel, CounterWorkload, Counters};
//! use tinyraftplus_sim::{Options, Simulation};
//!
//! let simulation = Simulation::new("counters", Counters::default, CounterWorkload::default, CounterModel);
//! let options = Options { ops: 40, fault_ms: 5_000, ..Options::default() };
//! let outcome = simulation.run(7, &options);
//! assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
//! ```

use crate::lincheck::{self, Model, Operation, Verdict, Violation};
use crate::models::counter::{CounterModel, CounterWorkload, Counters};
use crate::models::log::{LogModel, LogOnly, LogWorkload};
use crate::models::register::{RegisterModel, RegisterWorkload, Registers};
use crate::models::{StateMachine, Workload};
use crate::random::Script;
use crate::swarm::Options;
use crate::world::{Outcome, World};
use std::sync::Arc;

/// Checks a history (a [`Model`] with its types erased).
trait HistoryCheck: Send + Sync {
    fn check_within(&self, history: &[Operation], steps: usize) -> Verdict;
}

impl<M: Model> HistoryCheck for M {
    fn check_within(&self, history: &[Operation], steps: usize) -> Verdict {
        lincheck::check_within(self, history, steps)
    }
}

type MachineFactory = dyn Fn() -> Box<dyn StateMachine> + Send + Sync;
type WorkloadFactory = dyn Fn() -> Box<dyn Workload> + Send + Sync;

/// What to simulate: a state machine (a fresh one for each node at each start), a workload
/// (one per run) and the model the clients' history is checked against. Cheap to clone.
///
/// The state machine must be deterministic (same entries, same answers; same state, same
/// snapshot bytes): the simulator compares answers and snapshots across nodes.
#[derive(Clone)]
pub struct Simulation {
    name: String,
    machine: Arc<MachineFactory>,
    workload: Arc<WorkloadFactory>,
    model: Arc<dyn HistoryCheck>,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Simulation {
    /// A simulation named `name` (for reports) of `machine` under `workload`, checked against
    /// `model`.
    pub fn new<S, W, M>(
        name: &str,
        machine: impl Fn() -> S + Send + Sync + 'static,
        workload: impl Fn() -> W + Send + Sync + 'static,
        model: M,
    ) -> Simulation
    where
        S: StateMachine,
        W: Workload + 'static,
        M: Model,
    {
        Simulation {
            name: name.into(),
            machine: Arc::new(move || Box::new(machine())),
            workload: Arc::new(move || Box::new(workload())),
            model: Arc::new(model),
        }
    }

    /// The built-in counters (the simulator's own default workload).
    pub fn counter() -> Simulation {
        Simulation::new("counter", Counters::default, CounterWorkload::default, CounterModel)
    }

    /// The built-in key-value registers.
    pub fn register() -> Simulation {
        Simulation::new("register", Registers::default, RegisterWorkload::default, RegisterModel)
    }

    /// A log that is the product, compacted by empty snapshots (the library's `LogOnly`).
    pub fn log() -> Simulation {
        Simulation::new("log", || LogOnly, LogWorkload::default, LogModel)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs one seed.
    pub fn run(&self, seed: u64, options: &Options) -> Outcome {
        World::new(seed, options.clone(), self.clone(), Script::default()).run()
    }

    /// Runs one seed with its first decisions taken from `script` (a recorded run's
    /// [`Decisions::values`], with the operations it skipped, replay it exactly).
    ///
    /// [`Decisions::values`]: crate::Decisions::values
    pub fn run_script(&self, seed: u64, options: &Options, script: impl Into<Script>) -> Outcome {
        World::new(seed, options.clone(), self.clone(), script.into()).run()
    }

    /// Checks a history against the model, for as long as that takes.
    pub fn check(&self, history: &[Operation]) -> Result<(), Violation> {
        match self.model.check_within(history, usize::MAX) {
            Verdict::Violation(violation) => Err(violation),
            _ => Ok(()),
        }
    }

    /// Checks a history against the model, each key's search given at most `steps` steps (see
    /// [`lincheck::check_within`]).
    pub fn check_within(&self, history: &[Operation], steps: usize) -> Verdict {
        self.model.check_within(history, steps)
    }

    pub(crate) fn machine(&self) -> Box<dyn StateMachine> {
        (self.machine)()
    }

    pub(crate) fn workload(&self) -> Box<dyn Workload> {
        (self.workload)()
    }
}
