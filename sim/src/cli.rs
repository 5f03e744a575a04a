//! The simulator's command line, for the built-in simulations and for yours: run one seed
//! (`--seed 42`) or many (`--seeds 0..5000`, on every core), print each failure with the
//! command that replays it, shrink it, write its history and an HTML report.
//!
//! ```no_run
//! # use tinyraftplus_sim::{cli::Cli, Simulation};
//! fn main() -> std::process::ExitCode {
//!     Cli::new("cargo run --release --example my_simulation").main(&[Simulation::register()])
//! }
//! ```
//!
//! Exit codes: 0 all passed (and `--help`), 1 a safety invariant broke, 2 liveness failed,
//! 3 a panic, 4 a replay gave another digest (nondeterminism), 5 no failure but a history's
//! linearizability search ran past `--check-steps` (undecided), 64 bad arguments.

use crate::random::Script;
use crate::replay::ReplayFile;
use crate::report;
use crate::shrink::shrink;
use crate::swarm::CHECK_STEPS_DEFAULT;
#[cfg(feature = "mutants")]
use crate::{mutant_name, mutant_named, Mutant};
use crate::{Failure, Options, Outcome, Regime, Simulation, FAULT_CLASSES};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The command line for one or more simulations (`--workload NAME` picks one; the first by
/// default).
#[derive(Clone, Debug)]
pub struct Cli {
    /// How to run this program again, before `--` and its arguments (for replay commands).
    command: String,
}

struct Args {
    seeds: std::ops::Range<u64>,
    options: Options,
    history: Option<String>,
    report: Option<String>,
    workload: Option<String>,
    jobs: usize,
    /// Run each seed twice and compare digests.
    twice: bool,
    shrink: bool,
    /// `--replay FILE`: the run's decisions from a replay file.
    replay: Option<String>,
    script: Script,
    /// `--save FILE`: write a replay file of the run (of the shrunk run with `--shrink`).
    save: Option<String>,
    /// `--fuzz-input FILE`: the run the schedule fuzzer makes of these bytes.
    fuzz_input: Option<String>,
}

const USAGE: &str = "usage: [--seed N | --seeds A..B] [--workload NAME] [--nodes N] [--clients N] [--ops N] \
[--fault-ms N] [--settle-ms N] [--regime recoverable|unbounded] [--mutant NAME] [--trace] [--history FILE] \
[--report FILE.html] [--jobs N] [--twice] [--shrink] [--save FILE] [--replay FILE] [--fuzz-input FILE] \
[--without FAULT_CLASS] [--check-steps N]";

/// The planted bugs' names (none without the `mutants` feature).
fn mutant_names() -> Vec<&'static str> {
    #[cfg(feature = "mutants")]
    {
        Mutant::ALL.iter().map(|m| mutant_name(*m)).collect()
    }
    #[cfg(not(feature = "mutants"))]
    {
        Vec::new()
    }
}

/// What `--help` prints: the usage, then every workload, planted bug and fault class by name.
fn help(simulations: &[Simulation]) -> String {
    let workloads: Vec<&str> = simulations.iter().map(Simulation::name).collect();
    let mutants = match mutant_names() {
        names if names.is_empty() => "(built without the mutants feature)".to_string(),
        names => names.join(", "),
    };
    format!(
        "{USAGE}\n\n--workload NAME: {}\n--mutant NAME plants a known bug (the simulator must catch it): {mutants}\n\
         --without FAULT_CLASS turns a fault class off: {}\n--regime: recoverable (the default: faults a correct \
         cluster survives) or unbounded\n--history FILE writes the clients' history (JSON lines); --report FILE.html \
         a page drawing it\n--check-steps N: each key's linearizability search gets N steps (default {}); a \
         history that needs more is undecided\n\nExit codes: 0 passed, 1 safety invariant broken, 2 liveness \
         failed, 3 panic, 4 nondeterministic replay, 5 undecided (and nothing failed), 64 bad arguments.",
        workloads.join(", "),
        FAULT_CLASSES.join(", "),
        CHECK_STEPS_DEFAULT
    )
}

/// Why a command-line value is not one of `valid`.
fn unknown(what: &str, value: &str, valid: &[&str]) -> String {
    format!("unknown {what} {value}; one of: {}", valid.join(", "))
}

/// Parsed arguments, or what to print and exit with (0 for `--help`, 64 for a mistake).
fn parse(words: Vec<String>, simulations: &[Simulation]) -> Result<Args, (String, u8)> {
    parse_words(words).map_err(|message| match message == "help" {
        true => (help(simulations), 0),
        false => (message, 64),
    })
}

fn parse_words(words: Vec<String>) -> Result<Args, String> {
    let mut args = Args {
        seeds: 0..1,
        options: Options::default(),
        history: None,
        report: None,
        workload: None,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        twice: false,
        shrink: false,
        replay: None,
        script: Script::default(),
        save: None,
        fuzz_input: None,
    };
    let mut words = words.into_iter();
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
                #[cfg(feature = "mutants")]
                {
                    let named = mutant_named(&name).ok_or_else(|| unknown("mutant", &name, &mutant_names()))?;
                    args.options.mutant = Some(named);
                }
                #[cfg(not(feature = "mutants"))]
                return Err(format!(
                    "--mutant {name}: built without the mutants feature (cargo ... --features mutants)"
                ));
            }
            "--history" => args.history = Some(value()?),
            "--report" => args.report = Some(value()?),
            "--workload" => args.workload = Some(value()?),
            "--jobs" => args.jobs = number(value()?)?.max(1) as usize,
            "--twice" => args.twice = true,
            "--replay" => args.replay = Some(value()?),
            "--save" => args.save = Some(value()?),
            "--fuzz-input" => args.fuzz_input = Some(value()?),
            "--shrink" => args.shrink = true,
            "--check-steps" => args.options.check_steps = number(value()?)?.max(1) as usize,
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

fn run_seed(simulation: &Simulation, seed: u64, options: &Options, script: &Script, twice: bool) -> SeedRun {
    let ran = catch_unwind(AssertUnwindSafe(|| {
        let outcome = simulation.run_script(seed, options, script.clone());
        let agrees = !twice || simulation.run_script(seed, options, script.clone()).digest == outcome.digest;
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

impl Cli {
    /// A command line whose replay commands start with `command` (how to build and run this
    /// program, without `--`), e.g. `cargo run --release -p tinyraftplus-sim`.
    pub fn new(command: &str) -> Cli {
        Cli { command: command.into() }
    }

    /// Parses the process's arguments, runs, prints, and says how it went.
    pub fn main(&self, simulations: &[Simulation]) -> ExitCode {
        self.main_with(std::env::args().skip(1).collect(), simulations)
    }

    /// [`main`](Cli::main) with these arguments.
    pub fn main_with(&self, words: Vec<String>, simulations: &[Simulation]) -> ExitCode {
        let args = match parse(words, simulations).and_then(|args| with_input_files(args, simulations)) {
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
        let simulation = match &args.workload {
            None => simulations.first().expect("at least one simulation"),
            Some(name) => match simulations.iter().find(|s| s.name() == name) {
                Some(simulation) => simulation,
                None => {
                    let names: Vec<&str> = simulations.iter().map(Simulation::name).collect();
                    eprintln!("{}", unknown("workload", name, &names));
                    return ExitCode::from(64);
                }
            },
        };
        let run = Run { cli: self, simulation, args: &args };
        if args.seeds.end - args.seeds.start == 1 {
            return run.one();
        }
        run.many()
    }
}

/// With `--fuzz-input FILE`: the run the schedule fuzzer makes of the file's bytes (its options;
/// the planted bug, regime and trace from the command line). With `--replay FILE`: the file's
/// seed, options, workload and decisions, and the command line's other arguments (`--trace`,
/// `--report`, ...).
fn with_input_files(mut args: Args, simulations: &[Simulation]) -> Result<Args, (String, u8)> {
    if let Some(path) = args.fuzz_input.clone() {
        let bytes = std::fs::read(&path).map_err(|e| (format!("cannot read {path}: {e}"), 64))?;
        let seed = crate::schedule::seed(&bytes);
        args.seeds = seed..seed + 1;
        args.script = crate::schedule::script(&bytes);
        let given = std::mem::replace(&mut args.options, crate::schedule::options());
        (args.options.trace, args.options.regime) = (given.trace, given.regime);
        #[cfg(feature = "mutants")]
        {
            args.options.mutant = given.mutant;
        }
        return Ok(args);
    }
    let Some(path) = args.replay.clone() else { return Ok(args) };
    let text = std::fs::read_to_string(&path).map_err(|e| (format!("cannot read {path}: {e}"), 64))?;
    let file = ReplayFile::parse(&text).map_err(|e| (format!("{path}: {e}"), 64))?;
    let mut words = file.args.clone();
    words.extend(["--workload".to_string(), file.workload.clone()]);
    let mut replayed = parse(words, simulations).map_err(|(e, code)| (format!("{path}: {e}"), code))?;
    replayed.options.trace = args.options.trace;
    replayed.script = file.script;
    let replay = args.replay;
    Ok(Args {
        history: args.history,
        report: args.report,
        twice: args.twice,
        shrink: args.shrink,
        save: args.save,
        replay,
        ..replayed
    })
}

/// One invocation: the command line, the simulation picked and the arguments.
struct Run<'a> {
    cli: &'a Cli,
    simulation: &'a Simulation,
    args: &'a Args,
}

impl Run<'_> {
    /// The arguments that set `seed` and `options` (not the workload), and the cargo features
    /// they need.
    fn option_args(&self, seed: u64, options: &Options) -> (&'static str, String) {
        let regime = match options.regime {
            Regime::Recoverable => "recoverable",
            Regime::Unbounded => "unbounded",
        };
        #[cfg(feature = "mutants")]
        let (features, mutant) = match options.mutant {
            Some(mutant) => (" --features mutants", format!(" --mutant {}", mutant_name(mutant))),
            None => ("", String::new()),
        };
        #[cfg(not(feature = "mutants"))]
        let (features, mutant) = ("", String::new());
        let mut extra = mutant;
        for class in &options.disabled {
            extra.push_str(&format!(" --without {class}"));
        }
        if options.check_steps != CHECK_STEPS_DEFAULT {
            extra.push_str(&format!(" --check-steps {}", options.check_steps));
        }
        let args = format!(
            "--seed {seed} --nodes {} --clients {} --ops {} --fault-ms {} --settle-ms {} --regime {regime}{extra}",
            options.nodes, options.clients, options.ops, options.fault_ms, options.settle_ms
        );
        (features, args)
    }

    fn replay_command(&self, seed: u64, options: &Options) -> String {
        let (features, args) = self.option_args(seed, options);
        if let Some(path) = &self.args.fuzz_input {
            let mutant = args.split(" --mutant ").nth(1).and_then(|m| m.split(' ').next());
            let mut mutant = mutant.map_or(String::new(), |m| format!(" --mutant {m}"));
            if self.args.options.regime == Regime::Unbounded {
                mutant.push_str(" --regime unbounded");
            }
            return format!("{}{features} -- --fuzz-input {path}{mutant} --trace", self.cli.command);
        }
        match &self.args.replay {
            Some(path) => format!("{}{features} -- --replay {path} --trace", self.cli.command),
            None => {
                let workload = self.args.workload.as_ref().map_or(String::new(), |w| format!(" --workload {w}"));
                format!("{}{features} -- {args}{workload} --trace", self.cli.command)
            }
        }
    }

    /// Writes a replay file of a run of `seed` with `options` and these decisions.
    fn save(&self, path: &str, seed: u64, options: &Options, script: Script) -> Result<(), String> {
        let (_, args) = self.option_args(seed, options);
        let args = args.split_whitespace().map(String::from).collect();
        let file = ReplayFile { workload: self.simulation.name().to_string(), args, script };
        std::fs::write(path, file.to_text()).map_err(|e| format!("cannot write {path}: {e}"))
    }

    fn one(&self) -> ExitCode {
        let args = self.args;
        let seed = args.seeds.start;
        println!("seed={seed}");
        let record = Options { record: args.save.is_some(), ..args.options.clone() };
        let options = &record;
        match run_seed(self.simulation, seed, options, &args.script, args.twice) {
            SeedRun::Panicked(message) => {
                println!("FAIL panic seed={seed}: {message}");
                ExitCode::from(3)
            }
            SeedRun::Ran(outcome, agrees) => {
                for line in &outcome.trace {
                    println!("{line}");
                }
                if let Some(path) = &args.history {
                    if let Err(error) = report::write_history(path, &outcome.history) {
                        eprintln!("cannot write {path}: {error}");
                    }
                }
                let faults: Vec<String> = outcome.faults.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("faults: {}", faults.join(" "));
                if !agrees {
                    println!("FAIL replay seed={seed}: a second run gave another digest");
                    return ExitCode::from(4);
                }
                if let (Some(path), false, Some(decisions)) = (&args.save, args.shrink, &outcome.decisions) {
                    let skipped = args.script.skipped.clone();
                    let script = Script { decisions: decisions.values.clone(), skipped, after_setup: false };
                    match self.save(path, seed, options, script) {
                        Ok(()) => println!("saved: {path}"),
                        Err(error) => eprintln!("{error}"),
                    }
                }
                self.report(&outcome, options)
            }
        }
    }

    /// Prints how a run ended; on failure, what failed and the events around it (from a traced
    /// replay), and writes the HTML report when asked for.
    fn report(&self, outcome: &Outcome, options: &Options) -> ExitCode {
        let shrinking = self.args.shrink;
        let Some(failure) = &outcome.failure else {
            if let Some(undecided) = &outcome.undecided {
                println!("UNDECIDED seed={} digest={:016x}: {undecided}", outcome.seed, outcome.digest);
                println!("replay: {}", self.replay_command(outcome.seed, options));
                return ExitCode::from(5);
            }
            let completed = outcome.history.iter().filter(|op| op.returned().is_some()).count();
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
        let script = self.args.script.clone();
        let traced = match options.trace {
            true => outcome.clone(),
            false => self.simulation.run_script(outcome.seed, &Options { trace: true, ..options.clone() }, script),
        };
        print!("{}", report::text(outcome, &traced.trace));
        if let Some(path) = &self.args.report {
            match report::write_html(path, self.simulation.name(), &traced) {
                Ok(()) => println!("report: {path}"),
                Err(error) => eprintln!("cannot write {path}: {error}"),
            }
        }
        println!("replay: {}", self.replay_command(outcome.seed, options));
        if shrinking {
            let shrunk = shrink(self.simulation, outcome.seed, options, failure.invariant(), 300);
            let smaller = &shrunk.options;
            let traced = Options { trace: true, ..smaller.clone() };
            let traced = self.simulation.run_script(outcome.seed, &traced, shrunk.script.clone());
            println!(
                "shrunk: {} nodes, {} ops ({} of them cut), {} clients, {} ms of faults, without {:?}, {} of {} faults \
                 left; {} events (from {}); it fails the same way, event by event:",
                smaller.nodes,
                smaller.ops,
                shrunk.script.skipped.len(),
                smaller.clients,
                smaller.fault_ms,
                smaller.disabled,
                shrunk.outcome.faults.values().sum::<u64>(),
                outcome.faults.values().sum::<u64>(),
                shrunk.outcome.steps,
                outcome.steps
            );
            for line in &traced.trace {
                println!("  {line}");
            }
            if let Some(failure) = &shrunk.outcome.failure {
                println!(
                    "FAIL {} seed={} step={} digest={:016x} (shrunk): {}",
                    failure.invariant(),
                    shrunk.outcome.seed,
                    shrunk.outcome.steps,
                    shrunk.outcome.digest,
                    failure.detail()
                );
            }
            let default =
                std::env::temp_dir().join(format!("{}-{}-shrunk.replay", self.simulation.name(), outcome.seed));
            let path = self.args.save.clone().unwrap_or_else(|| default.to_string_lossy().into_owned());
            match self.save(&path, outcome.seed, smaller, shrunk.script.clone()) {
                Ok(()) => {
                    let (features, _) = self.option_args(outcome.seed, smaller);
                    println!("replay (shrunk): {}{features} -- --replay {path} --trace", self.cli.command);
                }
                Err(error) => eprintln!("{error}"),
            }
        }
        ExitCode::from(match failure {
            Failure::Safety(_) => 1,
            Failure::Liveness(_) => 2,
        })
    }

    fn many(&self) -> ExitCode {
        let args = self.args;
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
                    let failure = match run_seed(self.simulation, seed, options, &Script::default(), args.twice) {
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
                                (None, true) => outcome.undecided.as_ref().map(|undecided| {
                                    (format!("UNDECIDED seed={seed} digest={:016x}: {undecided}", outcome.digest), 5)
                                }),
                            }
                        }
                    };
                    if let Some((line, code)) = failure {
                        // A closed pipe (`| head`) is no reason to panic.
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "{line}\n  replay: {}", self.replay_command(seed, options));
                        failures.lock().unwrap().push((seed, line, code));
                    }
                });
            }
        });
        let elapsed = start.elapsed().as_secs_f64();
        let count = args.seeds.end - args.seeds.start;
        let (undecided, failures): (Vec<_>, Vec<_>) =
            failures.into_inner().unwrap().into_iter().partition(|(_, _, code)| *code == 5);
        let faults = faults.into_inner().unwrap();
        let kinds: Vec<String> = faults.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{count} seeds in {elapsed:.1} s ({:.1} seeds/s, {} events), {} failed, {} undecided{}",
            count as f64 / elapsed,
            steps.load(Ordering::Relaxed),
            failures.len(),
            undecided.len(),
            if args.twice { ", each run twice with digests compared" } else { "" }
        );
        let _ = writeln!(out, "fault kinds injected ({}): {}", faults.len(), kinds.join(" "));
        match failures.iter().chain(&undecided).map(|(_, _, code)| *code).min() {
            None => ExitCode::SUCCESS,
            Some(code) => ExitCode::from(code),
        }
    }
}
