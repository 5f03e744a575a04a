//! The workload: clients that add to and read counters through random nodes, with timeouts,
//! retries and a history of what they saw.

use super::*;

impl World {
    pub(super) fn client(&mut self, c: usize) -> Result<(), Violation> {
        if let Some(call) = self.clients[c].call.clone() {
            if self.now >= call.deadline {
                // No answer in time: the operation may or may not have happened.
                self.note(|| format!("client {c}: timeout"));
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
        let added = |n: &usize| self.nodes[*n].added;
        if (0..self.nodes.len()).filter(added).all(|n| self.clients[c].suspects.contains(&n)) {
            self.clients[c].suspects.clear();
        }
        let trusted: Vec<usize> =
            (0..self.nodes.len()).filter(|n| added(n) && !self.clients[c].suspects.contains(n)).collect();
        let n = trusted[self.rng.below(trusted.len() as u64) as usize];
        let key = self.rng.below(3);
        let read = settling || self.rng.below(10) < 3;
        let request = RequestId(self.next_request);
        self.next_request += 1;
        let (kind, payload, input) = if read {
            let command = Bytes::from(key.to_string());
            (Kind::Read, command.clone(), Input::Read { id: request, command })
        } else {
            let delta = self.rng.below(9) as i64 + 1;
            let payload = Bytes::from(format!("add {key} {delta} c{c}r{}", request.0));
            (Kind::Add(delta), payload.clone(), Input::Append { id: request, data: payload })
        };
        let op = self.history.len();
        self.history.push(Operation { client: c as u64, key, kind, invoke: self.now.0, completed: None });
        self.calls.push((payload.clone(), false));
        let deadline = self.now.plus(CLIENT_TIMEOUT);
        self.clients[c].call = Some(Call { node: n, op, request, payload, deadline });
        self.clients[c].issued += 1;
        self.requests.insert(request, c);
        self.schedule(deadline, Ev::Client(c));
        self.note(|| format!("client {c}: {} via n{}", if read { "read" } else { "add" }, n + 1));
        if self.nodes[n].raft.is_some() && self.nodes[n].paused_until.is_none() {
            self.step(n, input)?;
        }
        Ok(())
    }

    pub(super) fn reply(&mut self, request: RequestId, result: Result<Response, ClientError>) -> Result<(), Violation> {
        let Some(c) = self.requests.remove(&request) else { return Ok(()) };
        let call = self.clients[c].call.take().expect("a client waits for its request");
        self.digest = mix(self.digest, request.0 ^ 0xc1);
        let op = &mut self.history[call.op];
        match result {
            Ok(Response::Appended { seq, responses }) => {
                self.checker.acknowledged(seq, &call.payload)?;
                let value = responses.first().and_then(|r| std::str::from_utf8(r).ok()?.parse().ok());
                let Some(value) = value else {
                    return Err(Violation {
                        invariant: "reply",
                        detail: format!("append {seq} answered {responses:?}"),
                    });
                };
                op.completed = Some((self.now.0, value));
            }
            Ok(Response::Read { response, .. }) => {
                let value = std::str::from_utf8(&response).ok().and_then(|r| r.parse().ok()).unwrap_or(0);
                op.completed = Some((self.now.0, value));
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
        if op.completed.is_some() {
            self.clients[c].suspects.clear();
        } else {
            self.clients[c].suspects.insert(call.node);
        }
        let next = self.now.plus(self.rng.below(50 * MS));
        self.schedule(next, Ev::Client(c));
        Ok(())
    }
}
