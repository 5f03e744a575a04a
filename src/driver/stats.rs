//! The counts a node keeps of where its time and work went (see [`DriverStats`]): cheap
//! relaxed counters, bumped by the node loop and the disk thread, read by anyone.

use std::sync::atomic::{AtomicU64, Ordering};

/// Declares [`DriverStats`] and the atomic counters behind it from one list of fields.
macro_rules! driver_stats {
    ($($(#[$doc:meta])* $field:ident,)*) => {
        /// Where a node's time and work went, counted since it started (for finding where
        /// latency goes: fsyncs per committed entry, batching, waits for the log, and the
        /// queues between the node's threads).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct DriverStats {
            $($(#[$doc])* pub $field: u64,)*
        }

        /// The counters behind [`DriverStats`].
        #[derive(Default)]
        pub(super) struct Counters {
            $(pub(super) $field: AtomicU64,)*
        }

        impl Counters {
            /// The counts so far.
            pub(super) fn stats(&self) -> DriverStats {
                DriverStats { $($field: self.$field.load(Ordering::Relaxed),)* }
            }
        }
    };
}

driver_stats! {
    /// Steps of the core (each takes every input waiting).
    steps,
    /// Nanoseconds the node loop spent in those steps (the core, and carrying out its outputs).
    step_ns,
    /// Inputs those steps took (requests, messages, write completions, ticks).
    inputs,
    /// Messages from other nodes that steps took, and nanoseconds from each one's delivery to
    /// the node's inbox to a step taking it (the wait for the node loop to wake up or finish
    /// its step).
    messages,
    /// See `messages`.
    message_wait_ns,
    /// The disk thread's reports that steps took (one per batch), and nanoseconds from each
    /// one's sending to a step taking it.
    reports,
    /// See `reports`.
    report_wait_ns,
    /// Batches the disk thread wrote (each: its writes in order, then one report).
    disk_batches,
    /// Writes the disk thread took, and nanoseconds from each one's hand-over to the disk
    /// thread starting the batch that holds it (the wait for it to wake up or finish the
    /// batch before).
    disk_writes,
    /// See `disk_writes`.
    disk_queue_ns,
    /// Entry writes among them that went to the log (each: one write and one fdatasync).
    entry_writes,
    /// Entries written.
    entries,
    /// Nanoseconds the disk thread spent on its batches: writing under the log's lock, then any
    /// fdatasync the log left to it (see [`LogStore::append_entries_deferred`]).
    ///
    /// [`LogStore::append_entries_deferred`]: crate::log::LogStore::append_entries_deferred
    disk_ns,
    /// Times the node loop loaded entries from the log, and nanoseconds it waited for the log
    /// (held by the disk thread) before loading.
    loads,
    /// See `loads`.
    load_wait_ns,
    /// Writes the node loop handed to the disk thread and saw reported done, and nanoseconds
    /// from each one's hand-over to the node loop taking its report (queueing, writing and
    /// syncing, the report's way back).
    writes_done,
    /// See `writes_done`.
    write_round_ns,
    /// Client requests answered here, and nanoseconds from each one's arrival at the node loop
    /// to its answer (the node's share of a client's latency).
    answered,
    /// See `answered`.
    answer_ns,
}

impl Counters {
    /// Adds `value` to `counter`.
    pub(super) fn add(counter: &AtomicU64, value: u64) {
        counter.fetch_add(value, Ordering::Relaxed);
    }

    /// Counts one more wait of `since`'s age in `count` and `ns`.
    pub(super) fn waited(count: &AtomicU64, ns: &AtomicU64, since: std::time::Instant) {
        Counters::add(count, 1);
        Counters::add(ns, since.elapsed().as_nanos() as u64);
    }
}
