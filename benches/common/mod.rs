//! What the benchmark programs share: JSON-lines reporting, medians, the data directory and
//! the disk's raw fdatasync rate (the baseline every disk figure is read against).
#![allow(dead_code)] // Each program uses some of these.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where benchmark data goes: `TINYRAFTPLUS_BENCH_DIR`, else the current directory.
pub fn bench_dir() -> PathBuf {
    std::env::var_os("TINYRAFTPLUS_BENCH_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// Which figures to measure: those whose name contains the first argument (all without one).
pub fn selection() -> impl Fn(&str) -> bool {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    move |name: &str| filter.as_deref().is_none_or(|f| name.contains(f))
}

/// The file log's options for the cluster benchmarks: the defaults, but `direct_writes_from`
/// from `TINYRAFTPLUS_DIRECT_FROM` (bytes; `max` for never) when set, for runs that compare
/// direct writes with writes through the page cache.
pub fn log_options() -> tinyraftplus::log::FsLogOptions {
    let defaults = tinyraftplus::log::FsLogOptions::default();
    let from = std::env::var("TINYRAFTPLUS_DIRECT_FROM").ok().map(|from| match from.as_str() {
        "max" => usize::MAX,
        bytes => bytes.parse().expect("TINYRAFTPLUS_DIRECT_FROM: a number of bytes, or max"),
    });
    tinyraftplus::log::FsLogOptions { direct_writes_from: from.unwrap_or(defaults.direct_writes_from), ..defaults }
}

/// A temporary directory for a benchmark's data, in [`bench_dir`].
pub fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(bench_dir()).expect("a temporary directory for the benchmark")
}

/// Prints one figure as a JSON line.
pub fn report(name: &str, value: f64, unit: &str) {
    println!("{{\"name\": \"{name}\", \"value\": {value:.1}, \"unit\": \"{unit}\"}}");
}

/// The median of some runs.
pub fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

/// The median of three runs of `run`.
pub fn median3(mut run: impl FnMut() -> f64) -> f64 {
    median((0..3).map(|_| run()).collect())
}

/// Appends of `block` bytes, each followed by fdatasync, for `duration`: writes per second.
pub fn synced_writes(dir: &Path, block: usize, duration: Duration) -> f64 {
    let path = dir.join("raw.bin");
    let mut file = OpenOptions::new().create(true).append(true).open(&path).unwrap();
    let block = vec![7u8; block];
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < duration {
        file.write_all(&block).unwrap();
        file.sync_data().unwrap();
        count += 1;
    }
    std::fs::remove_file(path).unwrap();
    count as f64 / start.elapsed().as_secs_f64()
}

/// The disk's raw synced bandwidth, in bytes/s: 128 KiB writes, each followed by fdatasync,
/// into the same preallocated 64 MiB file, wrapping around (no file growth, so no metadata to
/// sync: the data path alone, the bound for batched appends).
pub fn dsync_bandwidth_128k(dir: &Path, duration: Duration) -> f64 {
    dsync_bandwidth(dir, 128 << 10, duration)
}

/// Bytes per second of `block`-byte writes back to back (not aligned to pages unless `block`
/// is), each followed by fdatasync, into a 64 MiB file written before, wrapping around.
pub fn dsync_bandwidth(dir: &Path, block: usize, duration: Duration) -> f64 {
    use std::os::unix::fs::FileExt;
    const AREA: u64 = 64 << 20;
    let path = dir.join("raw-bw.bin");
    let file = OpenOptions::new().create(true).read(true).write(true).truncate(true).open(&path).unwrap();
    let chunk = vec![7u8; 1 << 20];
    for offset in (0..AREA).step_by(chunk.len()) {
        file.write_all_at(&chunk, offset).unwrap();
    }
    file.sync_all().unwrap();
    let data = vec![7u8; block];
    let (start, mut written, mut offset) = (Instant::now(), 0u64, 0u64);
    while start.elapsed() < duration {
        file.write_all_at(&data, offset).unwrap();
        file.sync_data().unwrap();
        written += block as u64;
        offset += block as u64;
        if offset + block as u64 > AREA {
            offset = 0;
        }
    }
    drop(file);
    std::fs::remove_file(path).unwrap();
    written as f64 / start.elapsed().as_secs_f64()
}

/// Raw 4 KiB appends, each followed by fdatasync, per second (the baseline).
pub fn fdatasync_rate(dir: &Path, duration: Duration) -> f64 {
    synced_writes(dir, 4096, duration)
}

/// Sequential 1 MiB appends, each followed by fdatasync: the disk's bandwidth, in bytes/s.
pub fn write_bandwidth(dir: &Path, duration: Duration) -> f64 {
    synced_writes(dir, 1 << 20, duration) * f64::from(1u32 << 20)
}

/// Appends per second from `clients` threads, each appending 100-byte entries through `leader`
/// one after another, while `during` runs (once the clients got going); and how long it ran.
pub fn appends_during(
    clients: usize,
    leader: &tinyraftplus::driver::RaftNode,
    during: impl FnOnce(),
) -> (f64, Duration) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let (count, stop) = (AtomicU64::new(0), AtomicBool::new(false));
    let payload = bytes::Bytes::from(vec![1u8; 100]);
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    if leader.append(payload.clone()).is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(200)); // The clients get going.
        let (before, start) = (count.load(Ordering::Relaxed), Instant::now());
        during();
        let elapsed = start.elapsed();
        let done = count.load(Ordering::Relaxed) - before;
        stop.store(true, Ordering::Relaxed);
        (done as f64 / elapsed.as_secs_f64(), elapsed)
    })
}
