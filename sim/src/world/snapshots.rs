//! Snapshots in the simulated world: the state machine's snapshot stream as the snapshot's bytes,
//! taken asynchronously (durable after `Swarm::snapshot_ns`, lost with a crash before), sent in
//! chunks read from the disk, received into the disk's partial snapshot (torn by crashes), and
//! restored. The checks: a snapshot is labelled with the entry its state machine applied last
//! (`snapshot_at_applied`); an installed snapshot holds exactly the bytes its leader took
//! (`snapshot_bytes`); the log never removes a prefix that no durable snapshot covers
//! (`prefix_covered`; without a state machine, never an entry not committed:
//! `prefix_committed`); no node installs or restores a snapshot over a newer state
//! (`snapshot_rollback`); two snapshots at one seq hold the same bytes (`state_machine_state`:
//! same state, same snapshot).

use super::*;
use crate::disk::Snapshot;
use tinyraftplus::core::{LogId, SnapshotMeta};

/// An operator's prefix removal: through which seq, and the node's first seq and commit point
/// when asked.
#[derive(Clone, Copy, Debug)]
pub(super) struct Removal {
    through: Seq,
    first: Seq,
    commit: Option<Seq>,
}

impl World {
    /// An operator's request at a random running node: a snapshot now (`Input::Snapshot`), or
    /// the log's prefix removed through a seq of its log (`Input::RemovePrefix`; any node
    /// refuses past its commit point). A quarter of the removals are forced: a leader then
    /// removes entries that members still need, and sends them a snapshot instead, or without
    /// a state machine strands them (see `World::quorum_stranded`), and must not make a voter
    /// of a learner so stranded (see `World::check_entering_voters`).
    pub(super) fn operator_request(&mut self) -> Result<(), Violation> {
        let running: Vec<usize> =
            self.running().into_iter().filter(|n| self.nodes[*n].paused_until.is_none()).collect();
        if running.is_empty() {
            return Ok(());
        }
        let n = running[self.rng.below(running.len() as u64) as usize];
        let (id, node) = (RequestId(self.next_request), self.nodes[n].id);
        self.next_request += 1;
        if self.rng.below(2) == 0 {
            self.fault("operator_snapshot");
            self.operator.insert(id, None);
            self.note(|| format!("n{node}: an operator asks for a snapshot"));
            return self.step(n, Input::Snapshot { id });
        }
        let raft = self.nodes[n].raft.as_ref().expect("running");
        // Up to its last entry: past the commit point, the node must refuse.
        let (first, commit, Some(last)) = (raft.first_seq(), raft.commit(), raft.seq()) else { return Ok(()) };
        let through = Seq(self.rng.below(last.0 + 1));
        let force = self.rng.below(4) == 0;
        self.fault(if force { "operator_remove_prefix_forced" } else { "operator_remove_prefix" });
        self.operator.insert(id, Some(Removal { through, first, commit }));
        let forced = if force { " (forced)" } else { "" };
        self.note(|| format!("n{node}: an operator asks to remove the log through {through}{forced}"));
        self.step(n, Input::RemovePrefix { id, through, force })
    }

    /// Node `n` answered an operator's request (`removal`: none for a snapshot): the snapshot
    /// it names is of committed entries (`snapshot_reply`); a removal past the commit point is
    /// refused, and after one the log starts where the answer says, no later than after
    /// `through` (or where it started already) (`prefix_removed`). It may stop short, before
    /// entries not yet written.
    pub(super) fn operator_answered(
        &self,
        n: usize,
        removal: Option<Removal>,
        result: &Result<Response, ClientError>,
    ) -> Result<(), Violation> {
        let node = self.nodes[n].id;
        let starts = self.nodes[n].raft.as_ref().map(Raft::first_seq);
        match (removal, result) {
            (None, Ok(Response::Snapshot { last })) => self.checker.snapshot_answered(node, *last),
            (Some(asked), Ok(Response::PrefixRemoved { first }))
                if Some(asked.through) > asked.commit
                    || starts != Some(*first)
                    || *first > asked.first.max(Seq(asked.through.0 + 1)) =>
            {
                Err(Violation {
                    invariant: "prefix_removed",
                    detail: format!(
                        "{node}, asked {asked:?}, answered that its log starts at {first}; it starts at {starts:?}"
                    ),
                })
            }
            (Some(_), Ok(Response::PrefixRemoved { .. })) | (_, Err(_)) => Ok(()),
            (_, Ok(other)) => {
                Err(Violation { invariant: "reply", detail: format!("an operator's request answered {other}") })
            }
        }
    }

    /// The state machine takes a snapshot; it becomes durable later, unless the node crashes.
    pub(super) fn take_snapshot(
        &mut self,
        n: usize,
        last: LogId,
        configuration: Option<Entry>,
    ) -> Result<(), Violation> {
        let id = self.nodes[n].id;
        if self.nodes[n].applied != Some(last.seq) {
            let applied = self.nodes[n].applied.map_or("nothing".into(), |seq| seq.to_string());
            return Err(Violation {
                invariant: "snapshot_at_applied",
                detail: format!("{id} asked for a snapshot at {last} with its state machine at {applied}"),
            });
        }
        let stream = match self.nodes[n].machine.snapshot() {
            Some(Ok(mut stream)) => crate::models::read_all(&mut stream),
            Some(Err(error)) => Err(error),
            None => Err("this state machine takes no snapshots".into()),
        };
        let bytes = match stream {
            Ok(bytes) => Bytes::from(bytes),
            Err(error) => {
                self.note(|| format!("n{id}: snapshot failed: {error}"));
                let input = Input::SnapshotFailed { error };
                return self.step(n, input);
            }
        };
        let digest = xxhash_rust::xxh3::xxh3_64(&bytes);
        // Not after a forced rejoin: nodes may then hold different histories.
        let same_seq = self.snapshot_bytes.range((last, 0)..=(last, u64::MAX)).next();
        let differs = same_seq.filter(|((_, other), _)| *other != digest && !self.checker.is_forced());
        if let Some(((_, other), _)) = differs {
            return Err(Violation {
                invariant: "state_machine_state",
                detail: format!(
                    "{id}'s snapshot at {last} (digest {digest:016x}) differs from another's ({other:016x})"
                ),
            });
        }
        let meta = SnapshotMeta { last, digest, configuration };
        self.snapshot_bytes.insert((last, digest), bytes.clone());
        let at = self.now.plus(self.swarm.snapshot_ns + self.rng.below(self.swarm.snapshot_ns + 1));
        let incarnation = self.nodes[n].incarnation;
        self.schedule(at, Ev::SnapshotDone(n, incarnation, Box::new(Snapshot { meta, bytes })));
        Ok(())
    }

    /// A snapshot is durable (or failed to be written).
    pub(super) fn snapshot_done(&mut self, n: usize, incarnation: u64, snapshot: Snapshot) -> Result<(), Violation> {
        if self.nodes[n].incarnation != incarnation || self.nodes[n].raft.is_none() {
            return Ok(()); // Lost with a crash: its temporary file never became the snapshot.
        }
        if !self.settling && self.chance(self.swarm.fsync_fail) {
            self.fault("snapshot_failed");
            return self.step(n, Input::SnapshotFailed { error: "fsync failed".into() });
        }
        let meta = snapshot.meta.clone();
        self.nodes[n].disk.add_snapshot(snapshot);
        let id = self.nodes[n].id;
        self.note(|| format!("n{id}: {meta} durable"));
        self.step(n, Input::SnapshotTaken { meta })
    }

    /// A chunk of a durable snapshot, for a follower.
    pub(super) fn load_snapshot_chunk(&mut self, n: usize, to: NodeId, snapshot: SnapshotMeta, offset: u64) -> Input {
        if !self.settling && self.chance(self.swarm.read_error) {
            self.fault("snapshot_read_error");
            return Input::SnapshotLoadFailed { to, error: "latent sector error".into() };
        }
        let found = self.nodes[n].disk.snapshots.iter().find(|s| s.meta == snapshot);
        let Some(bytes) = found.map(|s| s.bytes.clone()) else {
            return Input::SnapshotLoadFailed { to, error: "no such snapshot (replaced)".into() };
        };
        let start = (offset as usize).min(bytes.len());
        let end = (start + self.swarm.snapshot_chunk_bytes).min(bytes.len());
        let (data, done) = (bytes.slice(start..end), end == bytes.len());
        Input::SnapshotChunkLoaded { to, snapshot: Box::new(snapshot), offset, data, done }
    }

    /// Restores the state machine from a durable snapshot.
    pub(super) fn restore(&mut self, n: usize, snapshot: SnapshotMeta) -> Result<Input, Violation> {
        let id = self.nodes[n].id;
        let found = self.nodes[n].disk.snapshots.iter().find(|s| s.meta == snapshot);
        let Some(bytes) = found.map(|s| s.bytes.clone()) else {
            return Err(Violation {
                invariant: "restore",
                detail: format!("{id} restores {snapshot}, not on its disk"),
            });
        };
        let last = snapshot.last;
        // Into the machine as it is, as the drivers do: a restore replaces the whole state.
        self.nodes[n].machine.restore(&mut &bytes[..]).map_err(|error| Violation {
            invariant: "restore",
            detail: format!("{id}'s state machine cannot restore {snapshot}: {error}"),
        })?;
        self.nodes[n].applied = Some(last.seq);
        self.checker.restored(id, last.seq)?;
        Ok(Input::Restored { last })
    }

    /// Checks a snapshot-related write as it becomes durable.
    pub(super) fn check_snapshot_write(&self, n: usize, write: &Write) -> Result<(), Violation> {
        let (id, disk) = (self.nodes[n].id, &self.nodes[n].disk);
        match write {
            // Without snapshots, only committed entries may go (the user read them).
            Write::RemovePrefix { through }
                if self.swarm.log_only && Some(*through) > self.checker.highest_commit() =>
            {
                let highest = self.checker.highest_commit().map_or("none".into(), |s| s.to_string());
                return Err(Violation {
                    invariant: "prefix_committed",
                    detail: format!("{id} removes its log through {through}; the highest commit point is {highest}"),
                });
            }
            Write::RemovePrefix { .. } if self.swarm.log_only => {}
            Write::RemovePrefix { through } => {
                let covered = disk.latest_snapshot().is_some_and(|s| s.meta.last.seq >= *through);
                if !covered {
                    let latest = disk.latest_snapshot().map_or("none".into(), |s| s.meta.to_string());
                    return Err(Violation {
                        invariant: "prefix_covered",
                        detail: format!(
                            "{id} removes its log through {through}; its latest durable snapshot: {latest}"
                        ),
                    });
                }
            }
            Write::InstallSnapshot { snapshot } if !disk.holds_snapshot(snapshot) => {
                let taken = self.snapshot_bytes.get(&(snapshot.last, snapshot.digest));
                let received = disk.partial.as_ref().filter(|(meta, _)| *meta == **snapshot).map(|(_, bytes)| bytes);
                if taken.map(|b| &b[..]) != received.map(|b| &b[..]) {
                    return Err(Violation {
                        invariant: "snapshot_bytes",
                        detail: format!("{id} installs {snapshot} with other bytes than its leader took"),
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }
}
