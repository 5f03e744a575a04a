//! The loop every host runs around a core: step it, carry out its outputs in order, and step
//! it again with the answers the host has at once. The drivers, the test kit and the simulator
//! all use it; so can a loop of your own.

use super::io::{Input, Output};
use super::raft::Raft;
use super::types::Time;
use std::collections::VecDeque;

/// Feeds a core what happened and the answers its outputs get at once, in order.
///
/// Hand it the inputs that woke the host ([`Stepper::new`]), then call [`Stepper::step`] until it
/// returns `false`, carrying out the outputs it leaves in `out` in their order. An output the
/// host answers at once (a [`Output::LoadEntries`] with [`Input::EntriesLoaded`], an
/// [`Output::Apply`] with [`Input::Applied`], an [`Output::Read`] with [`Input::ReadDone`])
/// goes back with [`Stepper::push`]: answers are stepped first in, first out, each after every
/// earlier one, so two applies from one step are reported in their order.
///
/// ```
/// # use tinyraftplus::core::{Config, Input, NodeId, Output, Raft, Recovered, Stepper, Time};
/// # let mut raft = Raft::new(Config::new(NodeId(1), vec![NodeId(1)]), Recovered::default()).unwrap();
/// let mut stepper = Stepper::new([Input::Tick]);
/// let mut out = Vec::new();
/// while stepper.step(&mut raft, Time(0), &mut out) {
///     for output in out.drain(..) {
///         match output {
///             Output::Apply { entries } => {
///                 let responses = entries.iter().map(|_| bytes::Bytes::new()).collect();
///                 stepper.push(Input::Applied { first: entries[0].seq, responses });
///             }
///             _ => { /* send, write, reply, ... */ }
///         }
///     }
/// }
/// ```
#[derive(Debug, Default)]
pub struct Stepper {
    /// Inputs to step, one step per batch.
    queue: VecDeque<Vec<Input>>,
}

impl Stepper {
    /// A stepper whose first step takes `inputs` together ([`Raft::step_many`]).
    pub fn new(inputs: impl IntoIterator<Item = Input>) -> Stepper {
        Stepper { queue: VecDeque::from([inputs.into_iter().collect()]) }
    }

    /// Queues an answer; it is stepped after everything queued before it.
    pub fn push(&mut self, answer: Input) {
        self.queue.push_back(vec![answer]);
    }

    /// Steps `raft` with the oldest queued inputs at `now`, appending its outputs to `out`;
    /// `false` (and no step) once nothing is queued.
    pub fn step(&mut self, raft: &mut Raft, now: Time, out: &mut Vec<Output>) -> bool {
        let Some(inputs) = self.queue.pop_front() else { return false };
        raft.step_many(now, inputs, out);
        true
    }
}
