//! The simulator's command line: run one seed (`--seed 42`) or many (`--seeds 0..5000`, on
//! every core), and print each failure with the command that replays it.
//!
//! Exit codes: 0 all passed (and `--help`), 1 a safety invariant broke, 2 liveness failed,
//! 3 a panic, 4 a replay gave another digest (nondeterminism), 64 bad arguments.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use tinyraftplus_sim::shrink::shrink;
use tinyraftplus_sim::{mutant_name, mutant_named, run, Failure, Mutant, Options, Outcome, Regime, FAULT_CLASSES};

struct Args {
    seeds: std::ops::Range<u64>,
    options: Options,
    history: Option<String>,
    jobs: usize,
    replay: bool,
    shrink: bool,
}

const USAGE: &str = "usage: tinyraftplus-sim [--seed N | --seeds A..B] [--nodes N] [--clients N] [--ops N] \
[--fault-ms N] [--settle-ms N] [--regime recoverable|unbounded] [--mutant NAME] [--trace] [--history FILE] [--jobs N] \
[--replay] [--shrink] [--without FAULT_CLASS]";

/// What `--help` prints: the usage, then every planted bug and fault class by name.
fn help() -> String {
    let mutants: Vec<&str> = Mutant::ALL.iter().map(|m| mutant_name(*m)).collect();
    format!(
        "{USAGE}\n\n--mutant NAME plants a known bug (the simulator must catch it): {}\n--without FAULT_CLASS turns \
         a fault class off: {}\n--regime: recoverable (the default: faults a correct cluster survives) or unbounded\n\
         \nExit codes: 0 passed, 1 safety invariant broken, 2 liveness failed, 3 panic, 4 nondeterministic \
         replay, 64 bad arguments.",
        mutants.join(", "),
        FAULT_CLASSES.join(", ")
    )
}

/// Why a command-line value is not one of `valid`.
fn unknown(what: &str, value: &str, valid: &[&str]) -> String {
    format!("unknown {what} {value}; one of: {}", valid.join(", "))
}

/// Parsed arguments, or what to print and exit with (0 for `--help`, 64 for a mistake).
fn parse() -> Result<Args, (String, u8)> {
    parse_words().map_err(|message| match message == "help" {
        true => (help(), 0),
        false => (message, 64),
    })
}

fn parse_words() -> Result<Args, String> {
    let mut args = Args {
        seeds: 0..1,
        options: Options::default(),
        history: None,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        replay: false,
        shrink: false,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let mut value = || words.next().ok_or(format!("{word} needs a value"));
        let number = |text: String| text.parse::<u64>().map_err(|_| format!("not a number: {text}"));
        match word.as_str() {
            "--seed" => {
                let seed = number(value()?)?;
                args.seeds = seed..seed + 1;
            }
            "--seeds" => {
                let text = value()?;
                let (a, b) = text.split_once("..").ok_or(format!("--seeds wants A..B, not {text}"))?;
                args.seeds = number(a.into())?..number(b.into())?;
            }
            "--nodes" => args.options.nodes = number(value()?)?.clamp(1, 9) as usize,
            "--clients" => args.options.clients = number(value()?)?.clamp(1, 64) as usize,
            "--ops" => args.options.ops = number(value()?)? as usize,
            "--fault-ms" => args.options.fault_ms = number(value()?)?,
            "--settle-ms" => args.options.settle_ms = number(value()?)?,
            "--regime" => {
                args.options.regime = match value()?.as_str() {
                    "recoverable" => Regime::Recoverable,
                    "unbounded" => Regime::Unbounded,
                    other => return Err(unknown("regime", other, &["recoverable", "unbounded"])),
                }
            }
            "--trace" => args.options.trace = true,
            "--mutant" => {
                let name = value()?;
                let names: Vec<&str> = Mutant::ALL.iter().map(|m| mutant_name(*m)).collect();
                args.options.mutant = Some(mutant_named(&name).ok_or_else(|| unknown("mutant", &name, &names))?);
            }
            "--history" => args.history = Some(value()?),
            "--jobs" => args.jobs = number(value()?)?.max(1) as usize,
            "--replay" => args.replay = true,
            "--shrink" => args.shrink = true,
            "--without" => {
                let class = value()?;
                let known = FAULT_CLASSES
                    .iter()
                    .find(|c| **c == class)
                    .ok_or_else(|| unknown("fault class", &class, &FAULT_CLASSES))?;
                args.options.disabled.push(known);
            }
            "--help" | "-h" => return Err("help".into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// How one seed went: its outcome, or the panic's message; and whether a replay agreed.
enum SeedRun {
    Ran(Box<Outcome>, bool),
    Panicked(String),
}

fn run_seed(seed: u64, options: &Options, replay: bool) -> SeedRun {
    let ran = catch_unwind(AssertUnwindSafe(|| {
        let outcome = run(seed, options);
        let agrees = !replay || run(seed, options).digest == outcome.digest;
        (outcome, agrees)
    }));
    match ran {
        Ok((outcome, agrees)) => SeedRun::Ran(Box::new(outcome), agrees),
        Err(panic) => {
            let text =
                panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            SeedRun::Panicked(text.unwrap_or_default())
        }
    }
}

fn replay_command(seed: u64, options: &Options) -> String {
    let regime = match options.regime {
        Regime::Recoverable => "recoverable",
        Regime::Unbounded => "unbounded",
    };
    let mut mutant = options.mutant.map_or(String::new(), |m| format!(" --mutant {}", mutant_name(m)));
    for class in &options.disabled {
        mutant.push_str(&format!(" --without {class}"));
    }
    format!(
        "cargo run --release -p tinyraftplus-sim -- --seed {seed} --nodes {} --clients {} --ops {} --fault-ms {} \
         --settle-ms {} --regime {regime}{mutant} --trace",
        options.nodes, options.clients, options.ops, options.fault_ms, options.settle_ms
    )
}

fn write_history(path: &str, outcome: &Outcome) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    for op in &outcome.history {
        let (operation, argument) = match op.kind {
            tinyraftplus_sim::lincheck::Kind::Add(delta) => ("add", delta.to_string()),
            tinyraftplus_sim::lincheck::Kind::Read => ("read", "null".into()),
        };
        let (result, returned) = match op.completed {
            Some((at, value)) => (value.to_string(), at.to_string()),
            None => ("null".into(), "null".into()),
        };
        writeln!(
            file,
            "{{\"client\": {}, \"operation\": \"{operation}\", \"key\": {}, \"argument\": {argument}, \"result\": {result}, \
             \"invoke_ns\": {}, \"return_ns\": {returned}, \"completed\": {}}}",
            op.client,
            op.key,
            op.invoke,
            op.completed.is_some()
        )?;
    }
    file.flush()
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err((message, 0)) => {
            println!("{message}");
            return ExitCode::SUCCESS;
        }
        Err((message, code)) => {
            eprintln!("{message}");
            return ExitCode::from(code);
        }
    };
    if args.seeds.end - args.seeds.start == 1 {
        return one(args);
    }
    many(args)
}

fn one(args: Args) -> ExitCode {
    let seed = args.seeds.start;
    println!("seed={seed}");
    let options = &args.options;
    match run_seed(seed, options, args.replay) {
        SeedRun::Panicked(message) => {
            println!("FAIL panic seed={seed}: {message}");
            ExitCode::from(3)
        }
        SeedRun::Ran(outcome, agrees) => {
            for line in &outcome.trace {
                println!("{line}");
            }
            if let Some(path) = &args.history {
                if let Err(error) = write_history(path, &outcome) {
                    eprintln!("cannot write {path}: {error}");
                }
            }
            let faults: Vec<String> = outcome.faults.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("faults: {}", faults.join(" "));
            if !agrees {
                println!("FAIL replay seed={seed}: a second run gave another digest");
                return ExitCode::from(4);
            }
            report(&outcome, options, args.shrink)
        }
    }
}

/// Prints how a run ended; on failure, the last events (from a traced replay).
fn report(outcome: &Outcome, options: &Options, shrinking: bool) -> ExitCode {
    let Some(failure) = &outcome.failure else {
        let completed = outcome.history.iter().filter(|op| op.completed.is_some()).count();
        println!(
            "ok seed={} steps={} committed={} ops={} completed={completed} digest={:016x}",
            outcome.seed,
            outcome.steps,
            outcome.committed,
            outcome.history.len(),
            outcome.digest
        );
        return ExitCode::SUCCESS;
    };
    println!(
        "FAIL {} seed={} step={} digest={:016x}: {}",
        failure.invariant(),
        outcome.seed,
        outcome.steps,
        outcome.digest,
        failure.detail()
    );
    if !options.trace {
        let traced = run(outcome.seed, &Options { trace: true, ..options.clone() });
        println!("last events:");
        for line in traced.trace.iter().rev().take(40).rev() {
            println!("  {line}");
        }
    }
    println!("replay: {}", replay_command(outcome.seed, options));
    if shrinking {
        let (smaller, shrunk) = shrink(outcome.seed, options, failure.invariant(), 300);
        let traced = run(outcome.seed, &Options { trace: true, ..smaller.clone() });
        println!(
            "shrunk: {} ops, {} clients, {} ms of faults, without {:?}; it fails the same way, event by event:",
            smaller.ops, smaller.clients, smaller.fault_ms, smaller.disabled
        );
        for line in &traced.trace {
            println!("  {line}");
        }
        if let Some(failure) = &shrunk.failure {
            println!(
                "FAIL {} seed={} step={} digest={:016x} (shrunk): {}",
                failure.invariant(),
                shrunk.seed,
                shrunk.steps,
                shrunk.digest,
                failure.detail()
            );
        }
        println!("replay (shrunk): {}", replay_command(outcome.seed, &smaller));
    }
    ExitCode::from(match failure {
        Failure::Safety(_) => 1,
        Failure::Liveness(_) => 2,
    })
}

fn many(args: Args) -> ExitCode {
    let options = &args.options;
    let start = Instant::now();
    let next = AtomicU64::new(args.seeds.start);
    let failures: Mutex<Vec<(u64, String, u8)>> = Mutex::new(Vec::new());
    let faults: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());
    let steps = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..args.jobs {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= args.seeds.end {
                    return;
                }
                let failure = match run_seed(seed, options, args.replay) {
                    SeedRun::Panicked(message) => Some((format!("FAIL panic seed={seed}: {message}"), 3)),
                    SeedRun::Ran(outcome, agrees) => {
                        steps.fetch_add(outcome.steps, Ordering::Relaxed);
                        let mut all = faults.lock().unwrap();
                        for (kind, count) in &outcome.faults {
                            *all.entry(kind).or_default() += count;
                        }
                        drop(all);
                        match (&outcome.failure, agrees) {
                            (_, false) => Some((format!("FAIL replay seed={seed}: another digest"), 4)),
                            (Some(failure), _) => Some((
                                format!(
                                    "FAIL {} seed={seed} step={} digest={:016x}: {}",
                                    failure.invariant(),
                                    outcome.steps,
                                    outcome.digest,
                                    failure.detail()
                                ),
                                if matches!(failure, Failure::Safety(_)) { 1 } else { 2 },
                            )),
                            (None, true) => None,
                        }
                    }
                };
                if let Some((line, code)) = failure {
                    println!("{line}\n  replay: {}", replay_command(seed, options));
                    failures.lock().unwrap().push((seed, line, code));
                }
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let count = args.seeds.end - args.seeds.start;
    let failures = failures.into_inner().unwrap();
    let faults = faults.into_inner().unwrap();
    let kinds: Vec<String> = faults.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "{count} seeds in {elapsed:.1} s ({:.1} seeds/s, {} events), {} failed{}",
        count as f64 / elapsed,
        steps.load(Ordering::Relaxed),
        failures.len(),
        if args.replay { ", each replayed with digests compared" } else { "" }
    );
    println!("fault kinds injected ({}): {}", faults.len(), kinds.join(" "));
    match failures.iter().map(|(_, _, code)| *code).min() {
        None => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(code),
    }
}
