//! The node loop: the thread that feeds the core its inputs (requests, messages, the disk
//! thread's reports, ticks) and carries out its outputs.

use super::{configuration_of, learn_addresses, Command, NodeLoop};
use crate::core::{ClientError, Entry, Event, Input, Output, SnapshotMeta, Stepper, Time, WriteId};
use crate::driver::answers::Reply;
use crate::driver::disk;
use crate::driver::snapshots::{self, MachineJob};
use crate::driver::stats::Counters;
use crate::log::LogStore;
use crate::transport::spin_recv;
use bytes::Bytes;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// At most this many waiting commands go to the core in one step.
const BATCH_MAX: usize = 1024;

/// How soon a failed apply is tried again.
const APPLY_RETRY: Duration = Duration::from_millis(100);

impl<L: LogStore> NodeLoop<L> {
    fn now(&self) -> Time {
        since(self.start)
    }

    pub(super) fn run(mut self, inbox: &Receiver<Command>) {
        self.step(vec![Input::Tick]);
        loop {
            let mut wait = match self.raft.deadline() {
                Some((at, _)) => Duration::from_nanos(at.0.saturating_sub(self.now().0)),
                None => Duration::from_secs(3600),
            };
            if !self.unapplied.is_empty() {
                wait = wait.min(APPLY_RETRY);
            }
            let first = match spin_recv(inbox).map_or_else(|| inbox.recv_timeout(wait), Ok) {
                Ok(command) => command,
                Err(RecvTimeoutError::Timeout) => {
                    self.step(vec![Input::Tick]);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            // Everything already waiting goes to the core as one step (one message per
            // follower and one write for many appends).
            let mut inputs = Vec::new();
            let mut close = None;
            for command in std::iter::once(first).chain(inbox.try_iter().take(BATCH_MAX)) {
                match command {
                    Command::Request { input, id, reply } => {
                        self.pending.insert(id, (reply, Instant::now()));
                        inputs.push(input);
                    }
                    Command::Message(message, delivered) => {
                        let counters = &self.shared.counters;
                        Counters::waited(&counters.messages, &counters.message_wait_ns, delivered);
                        inputs.push(Input::Message(message));
                    }
                    Command::WriteDone(id, sent) => {
                        let counters = &self.shared.counters;
                        Counters::waited(&counters.reports, &counters.report_wait_ns, sent);
                        self.written(id);
                        inputs.push(Input::WriteDone { id });
                    }
                    Command::WriteFailed(id, error) => {
                        self.written(id);
                        inputs.push(Input::WriteFailed { id, error });
                    }
                    Command::Warn(text) => self.shared.publish(Event::Warn(text)),
                    Command::SnapshotDone(Ok(meta)) => inputs.push(Input::SnapshotTaken { meta }),
                    Command::SnapshotDone(Err(error)) => inputs.push(Input::SnapshotFailed { error }),
                    Command::Input(input) => inputs.push(input),
                    #[cfg(feature = "tokio")]
                    Command::Dispatch(dispatch) => self.answers.dispatch_through(dispatch),
                    Command::Close(ack) => {
                        close = Some(ack);
                        break;
                    }
                }
            }
            if !inputs.is_empty() {
                self.step(inputs);
            }
            if let Some(ack) = close {
                return self.close(ack, inbox);
            }
        }
    }

    /// Counts the writes up to `last` as done (the disk thread reports a batch by its last).
    fn written(&mut self, last: WriteId) {
        let counters = &self.shared.counters;
        while let Some(&(_, issued)) = self.issued.front().filter(|(id, _)| *id <= last) {
            Counters::add(&counters.writes_done, 1);
            Counters::add(&counters.write_round_ns, issued.elapsed().as_nanos() as u64);
            self.issued.pop_front();
        }
    }

    fn close(mut self, ack: Reply, inbox: &Receiver<Command>) {
        self.step(vec![Input::Close]);
        // The disk thread finishes every queued write, then stops.
        let (writes, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.writes, writes));
        if let Some(disk) = self.disk.take() {
            let _ = disk.join();
        }
        // Its last reports count (a leader that committed on its followers' acknowledgements
        // may close before it took its own); everything else waiting is dropped.
        for command in inbox.try_iter() {
            if let Command::WriteDone(id, _) = command {
                self.written(id);
            }
        }
        self.shared.status().closed = true;
        self.shared.wake();
        // The close's own answer, after the others: everything is durable.
        self.answers.drain();
        self.answers.send(ack, Err(ClientError::Closed));
        self.answers.flush();
    }

    /// Steps the core with `inputs`, then carries out its outputs; the state machine and
    /// loads answer at once, and their answers make the next steps.
    fn step(&mut self, inputs: Vec<Input>) {
        let started = Instant::now();
        self.step_inputs(inputs);
        Counters::add(&self.shared.counters.step_ns, started.elapsed().as_nanos() as u64);
    }

    fn step_inputs(&mut self, inputs: Vec<Input>) {
        Counters::add(&self.shared.counters.steps, 1);
        Counters::add(&self.shared.counters.inputs, inputs.len() as u64);
        let mut stepper = Stepper::new(inputs);
        let mut out = std::mem::take(&mut self.out);
        let mut moved = false;
        loop {
            while stepper.step(&mut self.raft, since(self.start), &mut out) {
                // Before the outputs: a client answered among them that reads the status then
                // sees the commit that answered it.
                moved |= self.show_progress();
                for output in out.drain(..) {
                    if let Some(next) = self.output(output) {
                        stepper.push(next);
                    }
                }
            }
            let applied = self.apply_queued();
            if applied.is_empty() {
                break;
            }
            applied.into_iter().for_each(|input| stepper.push(input));
        }
        self.out = out;
        // Role, leader, term and followers come with the core's change events (see `output`).
        let mut status = self.shared.status();
        // Compared in place: no allocation per step unless a follower's progress changed.
        let progress = self.raft.progress();
        if status.matched.len() != progress.len() || !status.matched.iter().copied().eq(self.raft.progress()) {
            status.matched.clear();
            status.matched.extend(progress);
        }
        let in_force = self.raft.membership_seq().zip(self.raft.membership());
        let reconfigured = status.configuration.as_ref().map(|(seq, c)| (*seq, c)) != in_force;
        if reconfigured {
            status.configuration = configuration_of(&self.raft);
        }
        if reconfigured {
            learn_addresses(&self.raft, &*self.transport);
        }
        let moved = moved || reconfigured || status.removed != self.raft.is_removed();
        status.removed = self.raft.is_removed();
        if self.raft.has_stranded() || !status.stranded.is_empty() {
            status.stranded = self.raft.stranded();
        }
        drop(status);
        if moved {
            self.shared.wake();
        }
        self.answers.flush();
    }

    /// Shows the core's last seq, commit point and catching-up state in the status; whether
    /// they changed.
    fn show_progress(&self) -> bool {
        let mut status = self.shared.status();
        let now = (self.raft.seq(), self.raft.commit(), self.raft.is_catching_up());
        let moved = (status.seq, status.commit, status.catching_up) != now;
        (status.seq, status.commit, status.catching_up) = now;
        moved
    }

    fn output(&mut self, output: Output) -> Option<Input> {
        match output {
            Output::Send(message) => self.transport.send(message),
            Output::SendAfter { write, message } => drop(self.writes.send(disk::Job::Send { after: write, message })),
            Output::Write { id, write } => {
                let now = Instant::now();
                self.issued.push_back((id, now));
                drop(self.writes.send(disk::Job::Write { id, write, handed: now }));
            }
            Output::LoadEntries { from, to } => {
                let asked = Instant::now();
                let log = self.shared.log();
                let counters = &self.shared.counters;
                Counters::add(&counters.loads, 1);
                Counters::add(&counters.load_wait_ns, asked.elapsed().as_nanos() as u64);
                return Some(match log.load(from, to) {
                    Ok(entries) => Input::EntriesLoaded { entries },
                    Err(error) => Input::LoadFailed { error: error.to_string() },
                });
            }
            Output::Apply { entries } => {
                if self.state_machine.is_some() {
                    self.unapplied.push_back(MachineJob::Apply(entries));
                }
            }
            Output::TakeSnapshot { last, configuration } => {
                self.state_machine.as_ref()?;
                self.unapplied.push_back(MachineJob::Snapshot { last, configuration });
            }
            Output::LoadSnapshotChunk { to, snapshot, offset } => {
                self.chunks.load(to, snapshot, offset);
            }
            Output::Restore { snapshot } => {
                self.state_machine.as_ref()?;
                self.unapplied.push_back(MachineJob::Restore(snapshot));
            }
            Output::Read { id, seq, command } => {
                let machine = self.state_machine.as_mut()?;
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| machine.read(Some(seq), &command)));
                let response = match result {
                    Ok(Ok(response)) => response,
                    Ok(Err(error)) => {
                        self.shared.publish(Event::Error(format!("state machine read failed: {error}")));
                        Bytes::new()
                    }
                    Err(_) => {
                        self.shared.publish(Event::Error("state machine read panicked".into()));
                        Bytes::new()
                    }
                };
                return Some(Input::ReadDone { id, response });
            }
            Output::Reply { id, result } => {
                if let Some((reply, arrived)) = self.pending.remove(&id) {
                    // Counted first: a client that reads the counts after its answer sees it.
                    Counters::add(&self.shared.counters.answered, 1);
                    Counters::add(&self.shared.counters.answer_ns, arrived.elapsed().as_nanos() as u64);
                    self.answers.send(reply, result);
                }
            }
            Output::Event(event) => {
                if let Event::Change { role, leader, followers, term, .. } = &event {
                    let mut status = self.shared.status();
                    (status.role, status.leader, status.term) = (*role, *leader, *term);
                    status.followers.clone_from(followers);
                    drop(status);
                    self.shared.wake();
                }
                self.shared.publish(event);
            }
        }
        None
    }

    /// Hands queued committed entries to the state machine, in order; one that fails keeps
    /// its entries (and those after) for the next try, as in the seed. Snapshots to take and
    /// restores come in that order too.
    fn apply_queued(&mut self) -> Vec<Input> {
        let mut applied = Vec::new();
        let Some(machine) = self.state_machine.as_mut() else { return applied };
        while let Some(job) = self.unapplied.front() {
            let entries = match job {
                MachineJob::Apply(entries) => entries,
                MachineJob::Snapshot { last, configuration } => {
                    let meta = SnapshotMeta { last: *last, digest: 0, configuration: configuration.clone() };
                    let store = self.snapshots.as_ref();
                    applied.extend(snapshots::take(machine.as_mut(), store, meta, &self.commands));
                    self.unapplied.pop_front();
                    continue;
                }
                MachineJob::Restore(meta) => {
                    let input = snapshots::restore(machine.as_mut(), self.snapshots.as_ref(), meta);
                    if let Input::Restored { last } = &input {
                        self.machine_applied = Some(*last);
                    }
                    applied.push(input);
                    self.unapplied.pop_front();
                    continue;
                }
            };
            let first = entries[0].seq;
            let payloads: Vec<Option<Bytes>> = entries.iter().map(|e| e.payload.data().cloned()).collect();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| machine.apply(first, &payloads)));
            let problem = match result {
                Ok(Ok(responses)) if responses.len() == entries.len() => {
                    self.machine_applied = entries.last().map(Entry::id);
                    applied.push(Input::Applied { first, responses });
                    self.unapplied.pop_front();
                    continue;
                }
                Ok(Ok(responses)) => format!("{} responses for {} entries", responses.len(), entries.len()),
                Ok(Err(error)) => error,
                Err(_) => "it panicked".to_string(),
            };
            self.shared.publish(Event::Error(format!("state machine apply from {first} failed: {problem}")));
            break;
        }
        applied
    }
}

/// The core's time: nanoseconds since the node started.
fn since(start: Instant) -> Time {
    Time(start.elapsed().as_nanos() as u64)
}
