//! `TimeoutLog`: an [`FsLog`] whose every operation has a deadline (the seed's TimeoutLog,
//! without its bug: there a timed-out operation kept the log's lock and wedged it).
//!
//! The log lives on a worker thread that runs operations one at a time, in call order. A caller
//! waits for its operation up to the deadline, then gets [`LogError::Timeout`]. An operation
//! whose deadline passes before it starts is cancelled (`started: false`: it has no effect); one
//! that had started runs to its end (`started: true`: it may take effect, as with any IO whose
//! outcome is unknown, and `seq()` tells). Either way the log stays consistent, and the next
//! operation runs as soon as the worker is free.

use super::{FsLog, Iter, LogError};
use crate::core::{Entry, HardState, Seq, Term};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce(&mut FsLog) + Send>;

/// The deadline of each kind of operation.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// `append`, `append_batch`, `txn`.
    pub append: Duration,
    /// `read`, `head`, `iter` and each step of an iteration.
    pub read: Duration,
    /// `trim`, `remove_prefix`.
    pub trim: Duration,
    /// `save_hard_state`, `hard_state`, `seq`, `close`.
    pub other: Duration,
}

impl Timeouts {
    /// The same deadline for everything.
    pub fn all(timeout: Duration) -> Timeouts {
        Timeouts { append: timeout, read: timeout, trim: timeout, other: timeout }
    }
}

const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const CANCELLED: u8 = 2;

/// An [`FsLog`] on a worker thread, with a deadline on every operation (see the module docs).
pub struct TimeoutLog {
    jobs: mpsc::Sender<Job>,
    timeouts: Timeouts,
}

impl TimeoutLog {
    /// Moves `log` to a worker thread.
    pub fn new(log: FsLog, timeouts: Timeouts) -> Result<TimeoutLog, LogError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("tinyraftplus-log".into())
            .spawn(move || {
                let mut log = log;
                for job in queue {
                    job(&mut log);
                }
            })
            .map_err(|source| LogError::Io { op: "start the log's worker", path: Default::default(), source })?;
        Ok(TimeoutLog { jobs, timeouts })
    }

    /// Runs `f` on the log within `timeout`; `op` names it in a timeout error.
    pub fn with<T, F>(&self, op: &'static str, timeout: Duration, f: F) -> Result<T, LogError>
    where
        T: Send + 'static,
        F: FnOnce(&mut FsLog) -> Result<T, LogError> + Send + 'static,
    {
        let deadline = Instant::now() + timeout;
        let state = Arc::new(AtomicU8::new(QUEUED));
        let (reply, answer) = mpsc::sync_channel(1);
        let job_state = state.clone();
        let job: Job = Box::new(move |log| {
            if job_state.compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                let _ = reply.send(f(log)); // The caller may have stopped waiting.
            }
        });
        let stopped = || LogError::Poisoned("the log's worker thread stopped".into());
        self.jobs.send(job).map_err(|_| stopped())?;
        match answer.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(stopped()),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let cancelled = state.compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire).is_ok();
                Err(LogError::Timeout { op, started: !cancelled })
            }
        }
    }

    /// Appends one entry durably; returns its seq.
    pub fn append(&self, term: Term, payload: Option<&[u8]>) -> Result<Seq, LogError> {
        let payload = payload.map(<[u8]>::to_vec);
        self.with("append", self.timeouts.append, move |log| log.append(term, payload.as_deref()))
    }

    /// Appends entries with one write and one fdatasync; returns the first seq.
    pub fn append_batch(&self, entries: Vec<(Term, Option<Vec<u8>>)>) -> Result<Seq, LogError> {
        self.with("append_batch", self.timeouts.append, move |log| {
            let entries: Vec<(Term, Option<&[u8]>)> = entries.iter().map(|(t, p)| (*t, p.as_deref())).collect();
            log.append_batch(&entries)
        })
    }

    /// A transaction: an optional trim, then appends, durable together or not at all.
    pub fn txn(
        &self,
        trim: Option<Option<Seq>>,
        entries: Vec<(Term, Option<Vec<u8>>)>,
    ) -> Result<Option<Seq>, LogError> {
        self.with("txn", self.timeouts.append, move |log| {
            let mut txn = log.txn()?;
            if let Some(seq) = trim {
                txn.trim(seq)?;
            }
            for (term, payload) in &entries {
                txn.append(*term, payload.as_deref())?;
            }
            txn.commit()
        })
    }

    /// Reads the entry at `seq`.
    pub fn read(&self, seq: Seq) -> Result<Option<Entry>, LogError> {
        self.with("read", self.timeouts.read, move |log| log.read(seq))
    }

    /// The last entry.
    pub fn head(&self) -> Result<Option<Entry>, LogError> {
        self.with("head", self.timeouts.read, |log| log.head())
    }

    /// The seq of the last entry.
    pub fn seq(&self) -> Result<Option<Seq>, LogError> {
        self.with("seq", self.timeouts.other, |log| Ok(log.seq()))
    }

    /// Keeps entries up to `seq` (see [`FsLog::trim`]).
    pub fn trim(&self, seq: Option<Seq>) -> Result<(), LogError> {
        self.with("trim", self.timeouts.trim, move |log| log.trim(seq))
    }

    /// Removes whole segments up to `seq` (see [`FsLog::remove_prefix`]).
    pub fn remove_prefix(&self, seq: Seq) -> Result<(), LogError> {
        self.with("remove_prefix", self.timeouts.trim, move |log| log.remove_prefix(seq))
    }

    /// The saved term and vote.
    pub fn hard_state(&self) -> Result<HardState, LogError> {
        self.with("hard_state", self.timeouts.other, |log| Ok(log.hard_state()))
    }

    /// Saves the term and vote durably.
    pub fn save_hard_state(&self, state: HardState) -> Result<(), LogError> {
        self.with("save_hard_state", self.timeouts.other, move |log| log.save_hard_state(state))
    }

    /// Entries from `from` to the last one as of now, each step within the read deadline. After
    /// a step times out the iteration ends.
    pub fn iter(&self, from: Seq) -> Result<TimeoutIter<'_>, LogError> {
        let iter = self.with("iter", self.timeouts.read, move |log| Ok(log.iter(from)))?;
        Ok(TimeoutIter { log: self, iter: Some(iter) })
    }

    /// Closes the log: waits (within the deadline) for the operations queued before, then
    /// releases the log's directory (see [`FsLog::close`]).
    pub fn close(self) -> Result<(), LogError> {
        self.with("close", self.timeouts.other, |log| {
            log.close();
            Ok(())
        })
    }
}

/// An iteration through a [`TimeoutLog`] (see [`TimeoutLog::iter`]).
pub struct TimeoutIter<'a> {
    log: &'a TimeoutLog,
    /// With the worker while a step runs; gone after a timeout.
    iter: Option<Iter>,
}

impl Iterator for TimeoutIter<'_> {
    type Item = Result<Entry, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut iter = self.iter.take()?;
        let step = self.log.with("iter", self.log.timeouts.read, move |_| {
            let item = iter.next();
            Ok((iter, item))
        });
        match step {
            Ok((iter, item)) => {
                self.iter = Some(iter);
                item
            }
            Err(error) => Some(Err(error)),
        }
    }
}
