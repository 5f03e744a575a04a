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
        let id = self.nodes[n].id;
        self.checker.apply(id, &entries)?;
        let first = entries[0].seq;
        self.nodes[n].applied = entries.last().map(|entry| entry.seq);
        let mut requests = Vec::with_capacity(entries.len());
        let commands: Vec<Option<Bytes>> = entries
            .iter()
            .map(|entry| {
                let Payload::Data(data) = &entry.payload else {
                    requests.push(None);
                    return None;
                };
                let (request, command) = clients::split_payload(data);
                requests.push(request);
                Some(command)
            })
            .collect();
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
                self.applied_responses.entry(request).or_insert_with(|| response.clone());
            }
        }
        Ok(Input::Applied { first, responses })
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
