//! The nodes' state machines in the simulated world: entries applied without their request ids,
//! every node answering the same at every seq (`state_machine_state`).

use super::*;
use tinyraftplus::core::ReadId;

impl World {
    /// Whether the planted bug that takes a read error for the end of the log is in (only with
    /// the `mutants` feature: the simulator plants it, not the core).
    pub(super) fn read_error_as_end_of_log(&self) -> bool {
        #[cfg(feature = "mutants")]
        {
            self.options.mutant == Some(tinyraftplus::core::Mutant::ReadErrorAsEndOfLog)
        }
        #[cfg(not(feature = "mutants"))]
        {
            false
        }
    }

    /// Applies entries to node `n`'s state machine (commands without their request ids);
    /// every node must answer the same at the same seq.
    pub(super) fn apply(&mut self, n: usize, entries: Vec<Entry>) -> Result<Input, Violation> {
        let first = entries[0].seq;
        let responses = self.apply_entries(n, &entries)?;
        Ok(Input::Applied { first, responses })
    }

    /// Without a state machine (`Swarm::log_only`), node `n` reports its entries committed
    /// through `through` (`Event::Apply`), and its user reads them from its log: the world
    /// applies them to the node's machine as that user would, with the same checks.
    pub(super) fn apply_log(&mut self, n: usize, through: Seq) -> Result<(), Violation> {
        let node = &self.nodes[n];
        let from = Seq::after(node.applied);
        let entries: Option<Vec<Entry>> = (from.0..=through.0).map(|s| node.log_entry(Seq(s))).collect();
        match entries {
            Some(entries) if entries.is_empty() => Ok(()),
            Some(entries) => self.apply_entries(n, &entries).map(|_| ()),
            None => Err(Violation {
                invariant: "apply_in_order",
                detail: format!("{} reported {through} committed, but its log lacks entries from {from}", node.id),
            }),
        }
    }

    /// Without a state machine, a node whose log starts past seq 0 (an operator removed its
    /// prefix) restarts with its user's own state through the removed entries: the user read
    /// them before they were removed (they were committed, so it applied them) and kept a
    /// record, as a user of the JavaScript library does before trimming. Rebuilt here from
    /// that record; returns the last seq it covers.
    pub(super) fn restore_log_user(&mut self, n: usize) -> Result<Option<Seq>, Violation> {
        let node = &self.nodes[n];
        let first = node.raft.as_ref().map_or(Seq(0), Raft::first_seq);
        if !self.swarm.log_only || first == Seq(0) {
            return Ok(None);
        }
        let Some(record) = node.user_record.get(..first.0 as usize) else {
            let detail = format!("{} removed its log through {}, before its user applied it", node.id, first.0 - 1);
            return Err(Violation { invariant: "prefix_applied", detail });
        };
        let mut machine = self.simulation.machine();
        machine.apply(Seq(0), record).map_err(|error| Violation {
            invariant: "state_machine",
            detail: format!("{}'s user could not rebuild its state: {error}", node.id),
        })?;
        self.nodes[n].machine = machine;
        self.nodes[n].applied = first.prev();
        Ok(first.prev())
    }

    /// Applies `entries` to node `n`'s machine (checked as `apply` says): their responses.
    fn apply_entries(&mut self, n: usize, entries: &[Entry]) -> Result<Vec<Bytes>, Violation> {
        let id = self.nodes[n].id;
        self.checker.apply(id, entries)?;
        let first = entries[0].seq;
        self.nodes[n].applied = entries.last().map(|entry| entry.seq);
        let (requests, commands): (Vec<Option<u64>>, Vec<Option<Bytes>>) =
            entries.iter().map(|entry| command_of(&entry.payload)).unzip();
        if self.swarm.log_only {
            let record = &mut self.nodes[n].user_record;
            record.truncate(first.0 as usize);
            record.extend(commands.iter().cloned());
        }
        let failed = |detail: String| Violation { invariant: "state_machine", detail };
        let responses = self.nodes[n]
            .machine
            .apply(first, &commands)
            .map_err(|error| failed(format!("{id}'s state machine failed to apply from {first}: {error}")))?;
        if responses.len() != entries.len() {
            let count = responses.len();
            return Err(failed(format!("{id}'s state machine answered {count} of {} entries", entries.len())));
        }
        for ((entry, request), response) in entries.iter().zip(requests).zip(&responses) {
            self.checker.state(id, entry.seq, xxhash_rust::xxh3::xxh3_64(response))?;
            if let Some(request) = request {
                let applied = || AppliedEntry { response: response.clone(), at: self.now.0, seq: entry.seq };
                self.applied_responses.entry(request).or_insert_with(applied);
            }
        }
        Ok(responses)
    }

    /// Without a state machine, the response to each read answered (by history index): what a
    /// fresh machine answers after folding the committed log up to the read's seq, as its
    /// reader would, from the entries the checker recorded committed. `None` for a read past
    /// an entry it did not record (none in 3,000 seeds): it tells nothing.
    pub(super) fn log_read_responses(&self) -> BTreeMap<usize, Option<Bytes>> {
        let mut reads = self.log_reads.clone();
        reads.sort_by_key(|(_, seq)| *seq);
        let mut machine = self.simulation.machine();
        let mut applied: Option<Seq> = None;
        let mut known = true;
        let mut responses = BTreeMap::new();
        for (op, seq) in reads {
            while known && applied < seq {
                let next = Seq::after(applied);
                let payload = self.checker.committed_payload(next);
                known = payload.is_some_and(|payload| machine.apply(next, &[command_of(payload).1]).is_ok());
                applied = Some(next);
            }
            let response = known.then(|| machine.read(seq, &self.history[op].op.command).ok()).flatten();
            responses.insert(op, response);
        }
        responses
    }

    /// Node `n`'s state machine answers a read at `seq`.
    pub(super) fn read(&mut self, n: usize, read: ReadId, seq: Seq, command: &[u8]) -> Result<Input, Violation> {
        match self.nodes[n].machine.read(Some(seq), command) {
            Ok(response) => Ok(Input::ReadDone { id: read, response }),
            Err(error) => Err(Violation {
                invariant: "state_machine",
                detail: format!("{}'s state machine failed to read {read}: {error}", self.nodes[n].id),
            }),
        }
    }
}

/// The request id (if any) and the command a state machine gets for an entry's payload (none
/// for a blank or a configuration).
fn command_of(payload: &Payload) -> (Option<u64>, Option<Bytes>) {
    match payload {
        Payload::Data(data) => {
            let (request, command) = clients::split_payload(data);
            (request, Some(command))
        }
        _ => (None, None),
    }
}
