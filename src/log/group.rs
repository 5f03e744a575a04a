//! Group commit: a thread-safe handle on an [`FsLog`] on which many concurrent `append` callers
//! share one write and one fdatasync. Each caller returns only once its entry is durable.
//!
//! Callers queue their entries and wait on their batch. A dedicated sync thread takes everything
//! queued, writes it as one batch, syncs, publishes the batch's first seq (as the log assigned
//! it: a write made through [`GroupLog::with_log`] meanwhile moves it) and wakes exactly that
//! batch's callers in one call; the next batch starts at once with whatever queued meanwhile. A failed
//! write or sync poisons the log: every pending and later append fails (nothing not known
//! durable is reported durable).

use super::{FsLog, LogError};
use crate::core::{Seq, Term};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// How a batch ended: the seq the log gave its first entry, or why it failed and whether that
/// poisoned the log.
type Outcome = Result<u64, (bool, String)>;

/// One batch's outcome, shared by its callers: they wait on `ended` until it is set, and the
/// sync thread wakes them all with one notification (not one wake-up call per caller).
#[derive(Default)]
struct Batch {
    outcome: Mutex<Option<Outcome>>,
    ended: Condvar,
}

impl Batch {
    fn end(&self, outcome: Outcome) {
        *self.outcome.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(outcome);
        self.ended.notify_all();
    }

    fn wait(&self) -> Outcome {
        let mut outcome = self.outcome.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        loop {
            if let Some(outcome) = outcome.as_ref() {
                return outcome.clone();
            }
            outcome = self.ended.wait(outcome).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

struct Queue {
    /// Entries waiting for the next batch, in order.
    waiting: Vec<(Term, Option<Vec<u8>>)>,
    /// The outcome of the batch being queued.
    batch: Arc<Batch>,
    /// The last term queued (terms never decrease).
    term: u64,
    failed: Option<String>,
    payload_bytes_max: usize,
    batches: u64,
    closing: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when entries are queued (or the handle closes).
    arrived: Condvar,
    log: Mutex<FsLog>,
}

impl Shared {
    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        // The queue's fields are consistent at every unlock, so a panic elsewhere while the
        // lock was held leaves it usable.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_log(&self) -> MutexGuard<'_, FsLog> {
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The sync thread: one write and one fdatasync per batch, until the handle closes.
    fn sync_loop(&self) {
        let mut queue = self.lock_queue();
        loop {
            while queue.waiting.is_empty() && !queue.closing {
                queue = self.arrived.wait(queue).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            if queue.waiting.is_empty() {
                return; // Closing, and nothing left to write.
            }
            let batch = std::mem::take(&mut queue.waiting);
            let outcome = std::mem::take(&mut queue.batch);
            queue.batches += 1;
            drop(queue);
            let result = {
                let entries: Vec<(Term, Option<&[u8]>)> = batch.iter().map(|(t, p)| (*t, p.as_deref())).collect();
                self.lock_log().append_batch(&entries)
            };
            match result {
                Ok(first) => outcome.end(Ok(first.0)),
                Err(error) => {
                    // A bad argument (terms that a write through `with_log` made decrease)
                    // fails this batch only; anything else poisons the log.
                    let poisons = !matches!(error, LogError::Invalid(_));
                    if poisons {
                        self.lock_queue().failed = Some(error.to_string());
                    }
                    outcome.end(Err((poisons, error.to_string())));
                }
            }
            queue = self.lock_queue();
        }
    }
}

/// A thread-safe, group-committing handle on an [`FsLog`], with its own sync thread.
pub struct GroupLog {
    shared: Arc<Shared>,
    syncer: Option<JoinHandle<()>>,
}

impl GroupLog {
    /// Shares `log` between threads and starts its sync thread.
    pub fn new(log: FsLog) -> GroupLog {
        let queue = Queue {
            waiting: Vec::new(),
            batch: Arc::default(),
            term: log.last_term().map_or(0, |t| t.0),
            failed: None,
            payload_bytes_max: log.payload_bytes_max(),
            batches: 0,
            closing: false,
        };
        let shared = Arc::new(Shared { queue: Mutex::new(queue), arrived: Condvar::new(), log: Mutex::new(log) });
        let worker = Arc::clone(&shared);
        let syncer = std::thread::Builder::new()
            .name("fslog-sync".into())
            .spawn(move || worker.sync_loop())
            .expect("the OS can start one thread");
        GroupLog { shared, syncer: Some(syncer) }
    }

    /// Appends one entry; returns its seq once it is durable.
    pub fn append(&self, term: Term, payload: Option<&[u8]>) -> Result<Seq, LogError> {
        // Copied before taking the lock: the lock is held as briefly as possible.
        let payload = payload.map(<[u8]>::to_vec);
        let mut queue = self.shared.lock_queue();
        if let Some(why) = &queue.failed {
            return Err(LogError::Poisoned(why.clone()));
        }
        // Checked here, so one bad argument never fails a shared batch.
        if term.0 < queue.term {
            return Err(LogError::Invalid(format!("term {term} after term {}", queue.term)));
        }
        if payload.as_ref().is_some_and(|p| p.len() > queue.payload_bytes_max) {
            return Err(LogError::Invalid(format!("payload over {} bytes", queue.payload_bytes_max)));
        }
        let (batch, index) = (Arc::clone(&queue.batch), queue.waiting.len() as u64);
        queue.term = term.0;
        let was_empty = queue.waiting.is_empty();
        queue.waiting.push((term, payload));
        drop(queue);
        if was_empty {
            // The sync thread waits only on an empty queue (checked under the lock), so only
            // the first entry of a batch needs to wake it: one syscall per batch, not per entry.
            self.shared.arrived.notify_one();
        }
        // Waited for on the batch's own lock, not the queue's, so a crowd of woken callers
        // never holds up the next batch.
        match batch.wait() {
            Ok(first) => Ok(Seq(first + index)),
            Err((true, why)) => Err(LogError::Poisoned(why)),
            Err((false, why)) => Err(LogError::Invalid(why)),
        }
    }

    /// How many batches (writes with one fdatasync each) were made.
    pub fn batches(&self) -> u64 {
        self.shared.lock_queue().batches
    }

    /// Runs `f` on the log (for reads, iteration, term and vote, or writes of its own);
    /// batches wait meanwhile, and the next one takes its seqs from the log as `f` left it.
    pub fn with_log<T>(&self, f: impl FnOnce(&mut FsLog) -> T) -> T {
        let mut log = self.shared.lock_log();
        let result = f(&mut log);
        let term = log.last_term().map_or(0, |t| t.0);
        drop(log);
        let mut queue = self.shared.lock_queue();
        queue.term = queue.term.max(term);
        result
    }
}

impl Drop for GroupLog {
    /// Writes what is queued, then stops the sync thread.
    fn drop(&mut self) {
        self.shared.lock_queue().closing = true;
        self.shared.arrived.notify_all();
        if let Some(syncer) = self.syncer.take() {
            // A panic in the sync thread is a bug; surfacing it here would abort a drop.
            let _ = syncer.join();
        }
    }
}
