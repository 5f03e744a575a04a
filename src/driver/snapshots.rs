//! Snapshots in the drivers: the core decides what to take, send, install and restore; this
//! moves the bytes between the state machine, the snapshot store and the network, never holding
//! a whole snapshot in memory. A snapshot is taken on a thread of its own (the state machine's
//! stream is read while the node goes on), sent one chunk at a time (at most two chunks of a
//! follower's snapshot are in memory: the one asked for and the one after, read ahead to know
//! where the snapshot ends), received chunk by chunk on the disk thread (in order with the log's
//! writes), and restored on the node loop, in order with the entries applied.

use super::node::{Command, DriverError};
use super::StateMachine;
use crate::core::{Entry, Input, LogId, NodeId, SnapshotMeta};
use crate::log::{LogError, SnapshotReader, SnapshotStore};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::mpsc::Sender;

/// What the state machine does next, in the order the core asked.
pub(super) enum MachineJob {
    /// Apply committed entries.
    Apply(Vec<Entry>),
    /// Take a snapshot here (every entry before it applied).
    Snapshot { last: LogId, configuration: Option<Entry> },
    /// Replace the state with a durable snapshot's.
    Restore(SnapshotMeta),
}

/// Starts taking a snapshot: the state machine's stream is written into `store` on a thread of
/// its own, which reports to the node loop. Returns the core's input at once if there is
/// nothing to wait for (no store, or the state machine takes no snapshots).
pub(super) fn take(
    machine: &mut dyn StateMachine,
    store: Option<&SnapshotStore>,
    meta: SnapshotMeta,
    commands: &Sender<Command>,
) -> Option<Input> {
    let failed = |error: String| Some(Input::SnapshotFailed { error });
    let Some(store) = store else { return failed("the node has no snapshot store".into()) };
    let stream = match machine.snapshot() {
        None => return failed("the state machine takes no snapshots".into()),
        Some(Err(error)) => return failed(format!("the state machine's snapshot failed: {error}")),
        Some(Ok(stream)) => stream,
    };
    let (store, commands) = (store.clone(), commands.clone());
    let started = std::thread::Builder::new().name("raft-snapshot".into()).spawn(move || {
        let result = write(&store, meta, stream).map_err(|error| error.to_string());
        let _ = commands.send(Command::SnapshotDone(result));
    });
    match started {
        Ok(_) => None,
        Err(error) => failed(format!("cannot start the snapshot thread: {error}")),
    }
}

/// Streams a state machine's snapshot into `store`, durably; returns it with its digest.
pub(super) fn write(
    store: &SnapshotStore,
    meta: SnapshotMeta,
    mut stream: Box<dyn std::io::Read + Send>,
) -> Result<SnapshotMeta, DriverError> {
    let mut writer = store.writer(meta).map_err(DriverError::Log)?;
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        let count = match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(DriverError::Snapshot(format!("reading the state machine's stream: {error}"))),
        };
        writer.write(&buffer[..count]).map_err(DriverError::Log)?;
    }
    writer.finish().map_err(DriverError::Log)
}

/// Restores the state machine from the durable snapshot `meta`, checking that what it read is
/// that snapshot (its digest).
pub(super) fn restore(machine: &mut dyn StateMachine, store: Option<&SnapshotStore>, meta: &SnapshotMeta) -> Input {
    let result = (|| {
        let store = store.ok_or("the node has no snapshot store")?;
        let mut reader = store.reader(meta.last.seq).map_err(|e| e.to_string())?;
        machine.restore(&mut reader)?;
        while reader.next_chunk().map_err(|e| e.to_string())?.is_some() {}
        match reader.meta.digest == meta.digest {
            true => Ok(()),
            false => Err(not_on_disk(meta)),
        }
    })();
    match result {
        Ok(()) => Input::Restored { last: meta.last },
        Err(error) => Input::RestoreFailed { error },
    }
}

/// Reads chunks of snapshots for followers on a thread of its own (started when first
/// needed), so that the node loop never waits on the disk for them; each chunk goes back to the
/// loop as the core's input.
pub(super) struct ChunkReader {
    store: Option<SnapshotStore>,
    commands: Sender<Command>,
    requests: Option<Sender<(NodeId, SnapshotMeta, u64)>>,
}

impl ChunkReader {
    pub(super) fn new(store: Option<SnapshotStore>, commands: Sender<Command>) -> ChunkReader {
        ChunkReader { store, commands, requests: None }
    }

    /// Asks for the chunk of `snapshot` at `offset`, for follower `to`.
    pub(super) fn load(&mut self, to: NodeId, snapshot: SnapshotMeta, offset: u64) {
        if self.requests.is_none() {
            let (requests, inbox) = std::sync::mpsc::channel::<(NodeId, SnapshotMeta, u64)>();
            let (store, commands) = (self.store.clone(), self.commands.clone());
            let started = std::thread::Builder::new().name("raft-chunks".into()).spawn(move || {
                let mut chunks = Chunks::default();
                for (to, snapshot, offset) in inbox {
                    let input = chunks.load(store.as_ref(), to, snapshot, offset);
                    if commands.send(Command::Input(input)).is_err() {
                        return;
                    }
                }
            });
            if let Err(error) = started {
                let error = format!("cannot start the chunk reader: {error}");
                let _ = self.commands.send(Command::Input(Input::SnapshotLoadFailed { to, error }));
                return;
            }
            self.requests = Some(requests);
        }
        if let Some(requests) = &self.requests {
            let _ = requests.send((to, snapshot, offset));
        }
    }
}

/// Why a snapshot read from the store is not the one asked for.
fn not_on_disk(snapshot: &SnapshotMeta) -> String {
    format!("the snapshot at {} on disk is not {snapshot} (another one replaced it)", snapshot.last)
}

/// The snapshots being read for followers, one cursor each.
#[derive(Default)]
struct Chunks {
    cursors: HashMap<NodeId, Cursor>,
}

/// Where a follower's snapshot is being read: `current` is the chunk at `offset`, read ahead.
struct Cursor {
    meta: SnapshotMeta,
    reader: SnapshotReader,
    offset: u64,
    current: Option<Bytes>,
}

impl Chunks {
    /// The core's answer to `Output::LoadSnapshotChunk`.
    fn load(&mut self, store: Option<&SnapshotStore>, to: NodeId, snapshot: SnapshotMeta, offset: u64) -> Input {
        match self.read(store, to, &snapshot, offset) {
            Ok((data, done)) => Input::SnapshotChunkLoaded { to, snapshot: Box::new(snapshot), offset, data, done },
            Err(error) => {
                self.cursors.remove(&to);
                Input::SnapshotLoadFailed { to, error: error.to_string() }
            }
        }
    }

    /// The bytes of `snapshot` from `offset` to the end of the chunk holding it, and whether
    /// the snapshot ends there.
    fn read(
        &mut self,
        store: Option<&SnapshotStore>,
        to: NodeId,
        snapshot: &SnapshotMeta,
        offset: u64,
    ) -> Result<(Bytes, bool), LogError> {
        let store = store.ok_or_else(|| LogError::Invalid("the node has no snapshot store".into()))?;
        let reusable = |c: &Cursor| c.meta == *snapshot && c.offset <= offset;
        let mut cursor = match self.cursors.remove(&to).filter(reusable) {
            Some(cursor) => cursor,
            None => {
                let mut reader = store.reader(snapshot.last.seq)?;
                let current = reader.next_chunk()?;
                Cursor { meta: snapshot.clone(), reader, offset: 0, current }
            }
        };
        loop {
            let Some(chunk) = cursor.current.clone() else {
                if cursor.reader.meta.digest != snapshot.digest {
                    return Err(LogError::Invalid(not_on_disk(snapshot)));
                }
                return match offset == cursor.offset {
                    true => Ok((Bytes::new(), true)),
                    false => Err(LogError::Invalid(format!("{snapshot} ends before offset {offset}"))),
                };
            };
            let end = cursor.offset + chunk.len() as u64;
            cursor.current = cursor.reader.next_chunk()?;
            cursor.offset = end;
            if offset < end {
                let data = chunk.slice((offset + chunk.len() as u64 - end) as usize..);
                let done = cursor.current.is_none();
                if done && cursor.reader.meta.digest != snapshot.digest {
                    return Err(LogError::Invalid(not_on_disk(snapshot)));
                }
                self.cursors.insert(to, cursor);
                return Ok((data, done));
            }
        }
    }
}
