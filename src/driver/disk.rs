//! The disk thread of a node: it carries out the writes the core issues, in order, and
//! reports each batch done once it is durable.

use super::node::{Command, Shared};
use super::stats::Counters;
use crate::core::{Entry, Message, Write, WriteId};
use crate::log::{LogError, LogStore, PendingSync, SnapshotReceiver};
use crate::transport::{spin_recv, Transport};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Instant;

/// What the node loop hands to the disk thread.
pub(super) enum Job {
    /// A write, with its hand-over.
    Write { id: WriteId, write: Write, handed: Instant },
    /// A message to send once write `after` is durable.
    Send { after: WriteId, message: Message },
}

/// The disk thread: everything queued goes to the log together (consecutive entry writes as one
/// batch: one write, one fdatasync), then the messages bound to those writes are sent (a
/// follower's acknowledgement leaves the moment its entries are synced) and the last write is
/// reported done. After a failure nothing more is sent or written. Chunks of a snapshot being
/// received go to `receiver`, in order with the log's writes.
pub(super) fn run<L: LogStore>(
    shared: &Shared<L>,
    jobs: &Receiver<Job>,
    done: &Sender<Command>,
    transport: &dyn Transport,
    mut receiver: Option<SnapshotReceiver>,
) {
    let mut durable = WriteId(0);
    let mut held = Vec::new();
    while let Some(first) = spin_recv(jobs).or_else(|| jobs.recv().ok()) {
        let mut batch = Vec::new();
        for job in std::iter::once(first).chain(jobs.try_iter()) {
            match job {
                Job::Write { id, write, handed } => batch.push((id, write, handed)),
                Job::Send { after, message } if after <= durable => transport.send(message),
                Job::Send { message, .. } => held.push(message),
            }
        }
        if batch.is_empty() {
            continue;
        }
        let counters = &shared.counters;
        Counters::add(&counters.disk_batches, 1);
        for (_, _, handed) in &batch {
            Counters::waited(&counters.disk_writes, &counters.disk_queue_ns, *handed);
        }
        let mut log = shared.log();
        let started = Instant::now();
        let mut last = None;
        let mut entries: Vec<Entry> = Vec::new();
        let mut result = Ok(());
        for (id, write, _) in batch {
            match write {
                Write::Entries(more) => entries.extend(more),
                Write::SnapshotChunk { snapshot, offset, data } => {
                    result =
                        result.and_then(|()| flush(&mut *log, &mut entries, counters)).and_then(
                            |()| match &mut receiver {
                                Some(receiver) => receiver.chunk(&snapshot, offset, &data),
                                None => Err(LogError::Invalid("a snapshot chunk, and no snapshot store".into())),
                            },
                        );
                }
                Write::InstallSnapshot { snapshot } => {
                    let mut install = |log: &mut L| match &mut receiver {
                        Some(receiver) => receiver.install(&snapshot).and_then(|()| log.reset_after(snapshot.last)),
                        None => Err(LogError::Invalid("a snapshot to install, and no snapshot store".into())),
                    };
                    result =
                        result.and_then(|()| flush(&mut *log, &mut entries, counters)).and_then(|()| install(&mut log));
                }
                other => {
                    result =
                        result.and_then(|()| flush(&mut *log, &mut entries, counters)).and_then(|()| log.apply(&other));
                }
            }
            if let Err(error) = &result {
                let _ = done.send(Command::WriteFailed(id, error.to_string()));
                return; // The log is poisoned: nothing more is durable.
            }
            last = Some(id);
        }
        // The last entries are synced after the log is let go (when the log allows it), so
        // that the node loop can load entries meanwhile; they are reported durable only after.
        let last = last.expect("a batch has a write");
        let synced = match flush_deferred(&mut *log, &mut entries, counters) {
            Ok(pending) => {
                drop(log);
                pending.map_or(Ok(()), |pending| pending.sync().inspect_err(|error| shared.log().sync_failed(error)))
            }
            Err(error) => Err(error),
        };
        Counters::add(&counters.disk_ns, started.elapsed().as_nanos() as u64);
        if let Err(error) = synced {
            let _ = done.send(Command::WriteFailed(last, error.to_string()));
            return;
        }
        durable = last;
        held.drain(..).for_each(|message| transport.send(message));
        let _ = done.send(Command::WriteDone(last, Instant::now()));
    }
}

/// [`flush`], leaving the fdatasync to the caller where the log allows it.
fn flush_deferred<L: LogStore>(
    log: &mut L,
    entries: &mut Vec<Entry>,
    counters: &Counters,
) -> Result<Option<PendingSync>, LogError> {
    if entries.is_empty() {
        return Ok(None);
    }
    Counters::add(&counters.entry_writes, 1);
    Counters::add(&counters.entries, entries.len() as u64);
    log.append_entries_deferred(&std::mem::take(entries))
}

fn flush<L: LogStore>(log: &mut L, entries: &mut Vec<Entry>, counters: &Counters) -> Result<(), LogError> {
    if entries.is_empty() {
        return Ok(());
    }
    Counters::add(&counters.entry_writes, 1);
    Counters::add(&counters.entries, entries.len() as u64);
    let write = Write::Entries(std::mem::take(entries));
    log.apply(&write)
}
