//! `cargo bench --bench fslog`: the file log against the disk's own limit, measured in the same
//! run. Data goes to a temporary directory in the current directory (override with
//! `TINYRAFTPLUS_BENCH_DIR`). Prints one JSON object per line; each figure is a median of 3.
//!
//! - `disk_fdatasync_4k`: raw 4 KiB write + fdatasync per second (the baseline; the disk's
//!   bandwidth with 1 MiB appends goes to stderr);
//! - `disk_dsync_bw_128k`: raw bytes per second of 128 KiB write + fdatasync into the same
//!   preallocated file (the disk's synced bandwidth: the bound for large batches; the same
//!   with 128 KiB appends that grow the file, as a log's do, goes to stderr);
//! - `fslog_append_seq`: 100-byte appends per second, each durable before the next;
//! - `fslog_append_batch1000`: entries per second in durable batches of 1,000 (100-byte
//!   payloads) into a new log, and `fslog_append_batch1000_encrypted` the same with the
//!   encrypting encoder (and, on stderr, the ratio of the two from back-to-back pairs, and its
//!   bound: the time sealing adds to a batch on one core, against a plain batch's). A new
//!   log writes into space its files never held, which costs more per sync on some file
//!   systems (on ext4 without a journal, about 1.6 times written space for writes of a batch's
//!   size): its bound there is the 128 KiB appends that grow a file, on stderr. The log writes
//!   a MiB of zeros ahead of such batches, which raised this figure 1.05 to 1.37 times in six
//!   alternating pairs on two machines (2026-12-02) although every byte is written twice;
//!   extending the file without writing it (`fallocate`, `set_len`) did not help there, nor
//!   O_DIRECT then (measured earlier; for today's direct writes see below), nor starting the
//!   write-back of part of a batch while the rest is prepared (`sync_file_range`, writes alone
//!   with 100 us of work per 100 KB: 349-356 MB/s in halves and 285-294 in quarters, against
//!   345-369 in one write, 2026-12-02), nor much preparing the next segment in the background
//!   (a thread writing its 64 MiB of zeros while the current one fills: etcd's file pipeline
//!   makes its next file ready ahead too, with `fallocate`, which did not help here): with
//!   writes alone, one batch's size at a time, 3.25 to 3.69 million entries/s against 2.75
//!   to 3.33 growing with zeros a MiB ahead and 4.83 to 5.37 into written space with nothing in the background
//!   (three alternating runs of 3 s, 2026-12-03): the zeros take the disk's time too. Batches
//!   of 32 KiB and more are written past the page cache (`direct_writes_from`, see
//!   `src/log/direct.rs`); on stderr, the ratio of that to writing them through the page
//!   cache, from back-to-back pairs, here and for the recycled log below;
//! - `fslog_append_batch1000_recycled`: the same into a log in its steady state, whose prefix
//!   is removed as it grows (as snapshots do), so that new segments recycle removed ones and
//!   appends overwrite written space (see `spares.rs`): the bound is `disk_dsync_bw_128k`, and
//!   for one batch at a time writes of a batch's size into written space (on stderr);
//! - `fslog_record_overhead_bytes`: bytes on disk (the segment files' sizes) per entry beyond
//!   its 100-byte payload, in batches of 1,000 (single appends, and encrypted, on stderr);
//! - `fslog_txn20000`: entries per second in transactions of 20,000 appends, then commit;
//! - `fslog_group_commit64`: entries per second from 64 threads appending through `GroupLog`;
//! - `fslog_open_scan`: bytes per second recovered when opening a 1 GiB log;
//! - `fslog_iter`: entries per second read back in order;
//! - `fslog_index_bytes_per_entry`: memory of the in-memory index per entry.
//!

mod common;

use common::{
    data_dir, dsync_bandwidth, dsync_bandwidth_128k, fdatasync_rate, median, median3, report, selection, synced_writes,
};
use std::path::Path;
use std::time::{Duration, Instant};
use tinyraftplus::core::{Seq, Term};
use tinyraftplus::log::format::{BatchBuilder, Encoder, Key, Seal, NONCE_BYTES};
use tinyraftplus::log::{FsLog, FsLogOptions};

/// The bytes of a batch of 1,000 entries of 100 bytes (2 bytes of frame each, 44 per batch).
const BATCH1000_BYTES: usize = 1000 * 102 + 44;

fn append_seq_rate(dir: &Path, duration: Duration) -> f64 {
    let mut log = FsLog::open(dir, "seq", FsLogOptions::default()).unwrap();
    let payload = [1u8; 100];
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < duration {
        log.append(Term(1), Some(&payload)).unwrap();
        count += 1;
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    drop(log);
    FsLog::del(dir, "seq").unwrap();
    rate
}

fn encrypted() -> FsLogOptions {
    FsLogOptions { encoder: Encoder::Encrypted(Key::new([7; 32])), ..FsLogOptions::default() }
}

/// Every batch through the page cache (the default writes batches of 32 KiB and more directly).
fn cached() -> FsLogOptions {
    FsLogOptions { direct_writes_from: usize::MAX, ..FsLogOptions::default() }
}

/// Seven back-to-back pairs of `base` and `other`, alternating which goes first, since two
/// medians measured seconds apart on a shared disk whose rate drifts say little about their
/// ratio; prints the ratios `other / base` to stderr and returns the pairs.
fn alternating(what: &str, base: impl Fn() -> f64, other: impl Fn() -> f64) -> Vec<(f64, f64)> {
    let pairs: Vec<(f64, f64)> = (0..7)
        .map(|pair| match pair % 2 {
            0 => {
                let base = base();
                (base, other())
            }
            _ => {
                let other = other();
                (base(), other)
            }
        })
        .collect();
    let ratios: Vec<f64> = pairs.iter().map(|(base, other)| other / base).collect();
    let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    eprintln!("{what}, 7 back-to-back pairs of 0.5 s: {} (median {:.2})", shown.join(" "), median(ratios));
    pairs
}

/// Entries per second in batches of 1,000 (100-byte payloads). With `compacting`, the log's
/// prefix is removed as it grows (all but its last segment, which then recycles the removed
/// ones), after a warm-up that leaves two spares waiting.
fn append_batch_rate(dir: &Path, duration: Duration, options: FsLogOptions, compacting: bool) -> f64 {
    let mut log = FsLog::open(dir, "batch", options).unwrap();
    let payload = [1u8; 100];
    let batch: Vec<(Term, Option<&[u8]>)> = (0..1000).map(|_| (Term(1), Some(&payload[..]))).collect();
    let compact = |log: &mut FsLog| {
        if compacting && log.segment_count() > 1 {
            let last = log.seq().expect("entries").0;
            log.remove_prefix(Seq(last - 1)).unwrap(); // All but the last segment.
        }
    };
    while compacting && log.segment_count() < 3 {
        log.append_batch(&batch).unwrap();
    }
    compact(&mut log);
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < duration {
        log.append_batch(&batch).unwrap();
        compact(&mut log);
        count += 1000;
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    drop(log);
    FsLog::del(dir, "batch").unwrap();
    rate
}

/// Seconds to finish (frame, checksum and, encrypted, seal) a batch of 1,000 entries of 100
/// bytes in memory, on one core. (Sealing the two halves of a batch on two threads took longer
/// than the whole on one here: 79-99 us against 73-74 us for 100 KB, 2026-12-02.)
fn finish_seconds(encoder: &Encoder) -> f64 {
    let mut builder = BatchBuilder::default();
    builder.start(1);
    for _ in 0..1000 {
        builder.push(1, Some(&[1u8; 100]), false);
    }
    let mut out = Vec::with_capacity(builder.size(encoder));
    let rounds = 2000;
    let start = Instant::now();
    for _ in 0..rounds {
        out.clear();
        let seal = Seal { nonce: [9; NONCE_BYTES], ..Default::default() };
        std::hint::black_box(builder.finish(&mut out, encoder, seal));
    }
    start.elapsed().as_secs_f64() / f64::from(rounds)
}

/// Bytes on disk per entry beyond its 100-byte payload, from the segment files' sizes, after
/// `count` entries in batches of `batch` (closed first: closing cuts zeros written ahead).
fn overhead_bytes(dir: &Path, options: FsLogOptions, batch: usize, count: usize) -> f64 {
    let mut log = FsLog::open(dir, "overhead", options).unwrap();
    let payload = [1u8; 100];
    let entries: Vec<(Term, Option<&[u8]>)> = (0..batch).map(|_| (Term(1), Some(&payload[..]))).collect();
    for _ in 0..count / batch {
        log.append_batch(&entries).unwrap();
    }
    drop(log);
    let bytes: u64 = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    FsLog::del(dir, "overhead").unwrap();
    bytes as f64 / (count / batch * batch) as f64 - 100.0
}

fn txn_rate(dir: &Path, duration: Duration) -> f64 {
    let mut log = FsLog::open(dir, "txn", FsLogOptions::default()).unwrap();
    let payload = [1u8; 100];
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < duration {
        let mut txn = log.txn().unwrap();
        for _ in 0..20_000 {
            txn.append(Term(1), Some(&payload)).unwrap();
        }
        txn.commit().unwrap();
        count += 20_000;
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    drop(log);
    FsLog::del(dir, "txn").unwrap();
    rate
}

fn group_commit_rate(dir: &Path, duration: Duration, threads: usize) -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tinyraftplus::log::GroupLog;
    let group = GroupLog::new(FsLog::open(dir, "group", FsLogOptions::default()).unwrap());
    let count = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let payload = [1u8; 100];
                while start.elapsed() < duration {
                    group.append(Term(1), Some(&payload)).unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let rate = count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    let batches = group.batches();
    eprintln!(
        "group commit: {:.1} entries per batch, {batches} batches",
        count.load(Ordering::Relaxed) as f64 / batches as f64
    );
    drop(group);
    FsLog::del(dir, "group").unwrap();
    rate
}

fn main() {
    let wanted = selection();
    let temp = data_dir();
    let dir = temp.path();
    let second = Duration::from_secs(1);
    report("disk_fdatasync_4k", median3(|| fdatasync_rate(dir, second)), "syncs/s");
    report("disk_dsync_bw_128k", median3(|| dsync_bandwidth_128k(dir, second)), "bytes/s");
    // A second reference for the large batches, which the disk's bandwidth bounds: stderr, so
    // stdout keeps to the names in DESIGN.md.
    let bandwidth = median3(|| synced_writes(dir, 1 << 20, second)) * f64::from(1u32 << 20);
    eprintln!("disk reference: 1 MiB writes with fdatasync at {:.0} MB/s", bandwidth / 1e6);
    let growing = median3(|| synced_writes(dir, 128 << 10, second)) * f64::from(128u32 << 10);
    eprintln!("disk reference: 128 KiB appends growing the file, with fdatasync, at {:.0} MB/s", growing / 1e6);
    if wanted("fslog_append_seq") {
        report("fslog_append_seq", median3(|| append_seq_rate(dir, second)), "entries/s");
    }
    if wanted("fslog_append_batch1000") {
        let value = median3(|| append_batch_rate(dir, second, FsLogOptions::default(), false));
        report("fslog_append_batch1000", value, "entries/s");
        let half = second / 2;
        alternating(
            "direct writes against through the page cache, growing",
            || append_batch_rate(dir, half, cached(), false),
            || append_batch_rate(dir, half, FsLogOptions::default(), false),
        );
    }
    if wanted("fslog_append_batch1000_recycled") {
        let value = median3(|| append_batch_rate(dir, second, FsLogOptions::default(), true));
        report("fslog_append_batch1000_recycled", value, "entries/s");
        let half = second / 2;
        alternating(
            "direct writes against through the page cache, recycled",
            || append_batch_rate(dir, half, cached(), true),
            || append_batch_rate(dir, half, FsLogOptions::default(), true),
        );
        // The bound for one such batch at a time: writes of its size into written space.
        let batch_sized = median3(|| dsync_bandwidth(dir, BATCH1000_BYTES, second));
        eprintln!(
            "disk reference: {BATCH1000_BYTES}-byte writes (a batch of 1,000) into written space, with fdatasync, \
             at {:.0} MB/s",
            batch_sized / 1e6
        );
    }
    if wanted("fslog_append_batch1000_encrypted") {
        let value = median3(|| append_batch_rate(dir, second, encrypted(), false));
        report("fslog_append_batch1000_encrypted", value, "entries/s");
        // The ratio itself, from pairs (see `alternating`).
        let half = second / 2;
        let pairs = alternating(
            "encrypted against plain",
            || append_batch_rate(dir, half, FsLogOptions::default(), false),
            || append_batch_rate(dir, half, encrypted(), false),
        );
        // The ratio's bound on this machine: the time sealing adds to each batch, on the one
        // core that appends, against the time of a plain batch in the pairs.
        let sealing = median3(|| finish_seconds(&encrypted().encoder) - finish_seconds(&Encoder::XxHash));
        let plain_batch = 1000.0 / median(pairs.iter().map(|(plain, _)| *plain).collect());
        eprintln!(
            "encryption's bound: sealing adds {:.0} us to a batch of 1,000 on one core, a plain one takes {:.0} us \
             to append: the ratio is at most {:.2}",
            sealing * 1e6,
            plain_batch * 1e6,
            plain_batch / (plain_batch + sealing)
        );
    }
    if wanted("fslog_record_overhead_bytes") {
        report("fslog_record_overhead_bytes", overhead_bytes(dir, FsLogOptions::default(), 1000, 100_000), "bytes");
        let single = overhead_bytes(dir, FsLogOptions::default(), 1, 1000);
        let sealed = overhead_bytes(dir, encrypted(), 1000, 100_000);
        let sealed_single = overhead_bytes(dir, encrypted(), 1, 1000);
        eprintln!(
            "record overhead: {single:.1} bytes per single append; encrypted {sealed:.1} in batches of 1,000, \
             {sealed_single:.1} per single append"
        );
    }
    if wanted("fslog_txn20000") {
        report("fslog_txn20000", median3(|| txn_rate(dir, second)), "entries/s");
    }
    if wanted("fslog_group_commit64") {
        let value = median3(|| group_commit_rate(dir, second, 64));
        report("fslog_group_commit64", value, "entries/s");
    }
    if wanted("fslog_open_scan") || wanted("fslog_iter") || wanted("fslog_index_bytes_per_entry") {
        // A 1 GiB log of 100-byte entries, written in batches.
        let options = || FsLogOptions { segment_bytes: 256 << 20, ..FsLogOptions::default() };
        let mut log = FsLog::open(dir, "big", options()).unwrap();
        let payload = [3u8; 100];
        let batch: Vec<(Term, Option<&[u8]>)> = (0..10_000).map(|_| (Term(1), Some(&payload[..]))).collect();
        let mut bytes = 0u64;
        while bytes < 1 << 30 {
            log.append_batch(&batch).unwrap();
            bytes = log.disk_bytes();
        }
        drop(log);
        let mut scans = Vec::new();
        let mut last = None;
        for _ in 0..3 {
            drop(last.take()); // One handle at a time: the log's directory is locked.
            let start = Instant::now();
            let log = FsLog::open(dir, "big", options()).unwrap();
            scans.push(bytes as f64 / start.elapsed().as_secs_f64());
            last = Some(log);
        }
        let log = last.expect("opened three times");
        if wanted("fslog_open_scan") {
            report("fslog_open_scan", median(scans), "bytes/s");
        }
        let entries = log.seq().map_or(0, |s| s.0 + 1);
        if wanted("fslog_iter") {
            let runs = (0..3)
                .map(|_| {
                    let start = Instant::now();
                    let mut count = 0u64;
                    for entry in log.iter(Seq(0)).take(2_000_000) {
                        std::hint::black_box(entry.expect("the log reads back"));
                        count += 1;
                    }
                    count as f64 / start.elapsed().as_secs_f64()
                })
                .collect();
            report("fslog_iter", median(runs), "entries/s");
        }
        if wanted("fslog_index_bytes_per_entry") {
            report("fslog_index_bytes_per_entry", log.index_bytes() as f64 / entries as f64, "bytes");
        }
        drop(log);
        FsLog::del(dir, "big").unwrap();
    }
}
