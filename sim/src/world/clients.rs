//! The workload's clients: each runs the workload's operations one at a time through a random
//! node, with timeouts, retries and a history of what it saw. An appended command goes into the
//! log behind its request id (`#17 `, stripped before the state machine sees it), so what some
//! node applied can be told apart from what it did not, and trace lines show whose entry it is.

use super::*;
use crate::lincheck::{witness_of_read, witness_of_update};

/// The request id an entry's payload starts with (`#17 `), and the command after it.
pub(super) fn split_payload(data: &Bytes) -> (Option<u64>, Bytes) {
    let space = data.iter().take(22).position(|b| *b == b' ');
    let id = space.and_then(|end| std::str::from_utf8(data.get(1..end)?).ok()?.parse().ok());
    match (data.first(), id, space) {
        (Some(b'#'), Some(id), Some(end)) => (Some(id), data.slice(end + 1..)),
        _ => (None, data.clone()),
    }
}

impl World {
    pub(super) fn client(&mut self, c: usize) -> Result<(), Violation> {
        if let Some(call) = self.clients[c].call.clone() {
            if self.now >= call.deadline {
                // No answer in time: the operation may or may not have happened.
                self.note(|| format!("client {c}: #{} timeout", call.request.0));
                self.check_answer_bound(&call)?;
                self.requests.remove(&call.request);
                self.clients[c].call = None;
                self.clients[c].suspects.insert(call.node);
            } else {
                self.schedule(call.deadline, Ev::Client(c));
                return Ok(());
            }
        }
        let settling = self.settling;
        let client = &self.clients[c];
        if (!settling && client.issued >= self.options.ops.div_ceil(self.options.clients)) || client.settled {
            return Ok(());
        }
        if !settling && self.rng.skips_operation() {
            // Cut by the shrinker: the client goes on to its next operation.
            self.clients[c].issued += 1;
            self.schedule(self.now.plus(MS), Ev::Client(c));
            return Ok(());
        }
        let added = |n: &usize| self.nodes[*n].added;
        if (0..self.nodes.len()).filter(added).all(|n| self.clients[c].suspects.contains(&n)) {
            self.clients[c].suspects.clear();
        }
        let trusted: Vec<usize> =
            (0..self.nodes.len()).filter(|n| added(n) && !self.clients[c].suspects.contains(n)).collect();
        let n = trusted[self.rng.below(trusted.len() as u64) as usize];
        let op = match settling {
            true => self.workload.final_read(&mut self.rng, c),
            false => self.workload.next(&mut self.rng, c),
        };
        let request = RequestId(self.next_request);
        self.next_request += 1;
        let (payload, input) = if op.read {
            (op.command.clone(), Input::Read { id: request, command: op.command.clone() })
        } else {
            let mut payload = format!("#{} ", request.0).into_bytes();
            payload.extend_from_slice(&op.command);
            let payload = Bytes::from(payload);
            (payload.clone(), Input::Append { id: request, data: payload })
        };
        let index = self.history.len();
        let (key, read) = (op.key, op.read);
        self.note(|| {
            let what = if read { "read" } else { "append" };
            format!(
                "client {c}: #{} {what} key {key} via n{}: {:?}",
                request.0,
                n + 1,
                String::from_utf8_lossy(&op.command)
            )
        });
        self.history.push(Operation {
            client: c as u64,
            request: request.0,
            node: n as u64 + 1,
            op,
            invoke: self.now.0,
            completion: Completion::Unknown,
            witness: None,
        });
        self.calls.push((payload.clone(), false));
        let deadline = self.now.plus(CLIENT_TIMEOUT);
        let taken = self.nodes[n].raft.is_some() && self.nodes[n].paused_until.is_none();
        let taken_by = taken.then_some(self.nodes[n].incarnation);
        self.clients[c].call = Some(Call { node: n, taken_by, op: index, request, payload, deadline });
        self.clients[c].issued += 1;
        self.requests.insert(request, c);
        self.schedule(deadline, Ev::Client(c));
        if taken {
            self.step(n, input)?;
        }
        Ok(())
    }

    pub(super) fn reply(&mut self, request: RequestId, result: Result<Response, ClientError>) -> Result<(), Violation> {
        let Some(c) = self.requests.remove(&request) else { return Ok(()) };
        let call = self.clients[c].call.take().expect("a client waits for its request");
        self.check_answer_bound(&call)?;
        self.digest = mix(self.digest, request.0 ^ 0xc1);
        let at = self.now.0;
        match result {
            Ok(Response::Appended { seq, responses }) => {
                self.checker.acknowledged(seq, &call.payload)?;
                // Without a state machine, the answer is the seq alone, and the client's response
                // is what folding the log gives there: the leader's machine applied it as the
                // commit was reported, before this answer.
                let response = match self.swarm.log_only {
                    true => self.applied_responses.get(&request.0).map(|applied| applied.response.clone()),
                    false => responses.first().cloned(),
                };
                let Some(response) = response else {
                    return Err(Violation { invariant: "reply", detail: format!("append {seq} answered nothing") });
                };
                self.history[call.op].completion = Completion::Returned { at, response };
                self.history[call.op].witness = Some(witness_of_update(seq.0));
            }
            Ok(Response::Read { seq, response }) => {
                self.history[call.op].witness = Some(witness_of_read(seq.map(|seq| seq.0)));
                if self.swarm.log_only {
                    // The commit point the reader reads the log up to: its response comes from
                    // the committed log at the end (`log_read_responses`).
                    self.checker.read_point(seq)?;
                    self.log_reads.push((call.op, seq));
                }
                self.history[call.op].completion = Completion::Returned { at, response };
                if self.settling {
                    self.clients[c].settled = true;
                }
            }
            Ok(
                other @ (Response::Transferred { .. }
                | Response::Changed { .. }
                | Response::Snapshot { .. }
                | Response::PrefixRemoved { .. }),
            ) => {
                return Err(Violation { invariant: "reply", detail: format!("a client's request answered {other}") });
            }
            Err(ClientError::NoLeader | ClientError::NotLeader { .. } | ClientError::Invalid(_)) => {
                // Definitely not done: it leaves the history.
                self.calls[call.op].1 = true;
            }
            Err(_) => {} // Outcome unknown: stays pending.
        }
        if matches!(self.history[call.op].completion, Completion::Returned { .. }) {
            self.clients[c].suspects.clear();
        } else {
            self.clients[c].suspects.insert(call.node);
        }
        let next = self.now.plus(self.rng.below(50 * MS));
        self.schedule(next, Ev::Client(c));
        Ok(())
    }

    /// After healing, a node answers every request within `ANSWER_BOUND` (not only the cluster
    /// as a whole: a bug that only slows one node down shows here).
    fn check_answer_bound(&self, call: &Call) -> Result<(), Violation> {
        let invoked = self.history[call.op].invoke;
        let after_healing = self.healed().is_some_and(|healed| invoked >= healed.0);
        if !after_healing || self.options.regime != Regime::Recoverable || self.now.0 - invoked <= ANSWER_BOUND {
            return Ok(());
        }
        let waited = (self.now.0 - invoked) as f64 / 1e9;
        Err(Violation {
            invariant: "answer_bound",
            detail: format!(
                "n{} left #{} unanswered for {waited:.3} s after healing (bound {} s)",
                call.node + 1,
                call.request.0,
                ANSWER_BOUND / (1_000 * MS)
            ),
        })
    }

    /// The history as the checker sees it: refused operations left out, appends whose clients
    /// never heard back marked applied (with the response some node produced) or not, and
    /// without a state machine, reads given what folding the committed log up to their seq
    /// gives.
    pub(super) fn final_history(&self) -> Vec<Operation> {
        let mut history = Vec::with_capacity(self.history.len());
        let mut reads = self.log_read_responses();
        for (index, (op, (_, refused))) in self.history.iter().zip(&self.calls).enumerate() {
            if *refused {
                continue;
            }
            let mut op = op.clone();
            if let Some(response) = reads.remove(&index) {
                op.completion = match (response, op.completion) {
                    (Some(response), Completion::Returned { at, .. }) => Completion::Returned { at, response },
                    _ => Completion::Unknown,
                };
            }
            if let (false, Completion::Unknown) = (op.op.read, &op.completion) {
                op.completion = match self.applied_responses.get(&op.request) {
                    Some(applied) => {
                        op.witness = Some(witness_of_update(applied.seq.0));
                        Completion::Applied { at: applied.at, response: applied.response.clone() }
                    }
                    None => Completion::NotApplied,
                };
            }
            history.push(op);
        }
        history
    }
}
