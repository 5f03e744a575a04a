//! `cargo bench -p tinyraftplus-sim --bench sim`: the simulator's speed and the
//! linearizability checker's. One JSON object per line on stdout:
//!
//! - `sim_seeds_per_s`: default 5-node runs (about 300 client operations, the default fault
//!   mix) per second, on every core, each seed run once;
//! - `lincheck_10k_5c_valid_ms`: checking a linearizable 10,000-operation history from 5
//!   clients on one counter (the hardest split: one key);
//! - `lincheck_10k_5c_invalid_ms`: the same history with one read in the middle answering a
//!   value no order explains (rejected, without the explanation);
//! - `lincheck_10k_5c_explained_ms`: rejecting it and explaining why (the operations that cannot
//!   be ordered).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tinyraftplus_sim::lincheck::{check, linearizable};
use tinyraftplus_sim::models::counter::{random_history, CounterModel};
use tinyraftplus_sim::{run, Options};

fn report(name: &str, value: f64, unit: &str) {
    println!("{{\"name\": \"{name}\", \"value\": {value:.1}, \"unit\": \"{unit}\"}}");
}

fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

fn seeds_per_second(count: u64) -> f64 {
    let options = Options::default();
    let next = AtomicU64::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= count {
                    return;
                }
                let outcome = run(seed, &options);
                assert!(outcome.failure.is_none(), "seed {seed} fails");
            });
        }
    });
    count as f64 / start.elapsed().as_secs_f64()
}

fn check_ms(valid: bool, explain: bool) -> f64 {
    let runs = (0..5)
        .map(|seed| {
            let history = random_history(seed, 10_000, 5, 1, !valid);
            let start = Instant::now();
            let result = match explain {
                true => check(&CounterModel, &history),
                false => linearizable(&CounterModel, &history),
            };
            let ms = start.elapsed().as_secs_f64() * 1e3;
            assert_eq!(result.is_ok(), valid, "the generated history is as intended");
            ms
        })
        .collect();
    median(runs)
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if wanted("sim_seeds_per_s") {
        report("sim_seeds_per_s", median((0..3).map(|_| seeds_per_second(2000)).collect()), "seeds/s");
    }
    if wanted("lincheck_10k_5c_valid_ms") {
        report("lincheck_10k_5c_valid_ms", check_ms(true, false), "ms");
    }
    if wanted("lincheck_10k_5c_invalid_ms") {
        report("lincheck_10k_5c_invalid_ms", check_ms(false, false), "ms");
    }
    if wanted("lincheck_10k_5c_explained_ms") {
        report("lincheck_10k_5c_explained_ms", check_ms(false, true), "ms");
    }
}
