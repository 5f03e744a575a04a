//! The simulator's command line as people expect it: `--help` exits 0 and names every planted
//! bug and fault class; a value it does not know lists the ones it does; every failure, a single
//! seed or many, prints the command that replays it, and that command fails the same way; a
//! shrunk run prints its own FAIL line and replay command.

use std::process::{Command, Output};
use tinyraftplus_sim::{mutant_name, Mutant, FAULT_CLASSES};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tinyraftplus-sim")).args(args).output().expect("the simulator runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The arguments of the first `replay` line of `stdout` that starts with `prefix`.
fn replay_args(stdout: &str, prefix: &str) -> Vec<String> {
    let line = stdout.lines().find(|l| l.trim_start().starts_with(prefix)).expect("a replay line");
    let command = line.split_once("-- ").expect("cargo run ... -- ARGS").1;
    command.split_whitespace().map(String::from).collect()
}

#[test]
fn help_exits_zero_and_names_every_mutant_and_fault_class() {
    let out = sim(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let help = text(&out.stdout);
    for mutant in Mutant::ALL {
        assert!(help.contains(mutant_name(mutant)), "{} missing from --help", mutant_name(mutant));
    }
    for class in FAULT_CLASSES {
        assert!(help.contains(class), "{class} missing from --help");
    }
}

#[test]
fn an_unknown_value_lists_the_valid_ones() {
    for (flag, valid) in [("--mutant", "install_over_newer"), ("--without", "membership"), ("--regime", "unbounded")] {
        let out = sim(&[flag, "bogus"]);
        assert_eq!(out.status.code(), Some(64), "{flag}");
        let error = text(&out.stderr);
        assert!(error.contains("bogus") && error.contains(valid), "{flag}: {error}");
    }
}

#[test]
fn every_failure_prints_a_replay_command_that_fails_the_same_way() {
    let args = ["--seed", "1", "--mutant", "prefix_before_snapshot"];
    let out = sim(&args);
    assert_eq!(out.status.code(), Some(1), "a safety failure");
    let stdout = text(&out.stdout);
    let fail = stdout.lines().find(|l| l.starts_with("FAIL ")).expect("a FAIL line").to_string();
    let replay = replay_args(&stdout, "replay:");
    let replay: Vec<&str> = replay.iter().map(String::as_str).filter(|a| *a != "--trace").collect();
    let again = text(&sim(&replay).stdout);
    assert!(again.lines().any(|l| l == fail), "the replay fails the same way: {fail}");
    // Many seeds: each failure has its replay command too.
    let many = text(&sim(&["--seeds", "0..3", "--mutant", "prefix_before_snapshot"]).stdout);
    let fails = many.lines().filter(|l| l.starts_with("FAIL ")).count();
    assert!(fails > 0);
    assert_eq!(many.lines().filter(|l| l.trim_start().starts_with("replay:")).count(), fails);
}

#[test]
fn a_shrunk_run_prints_its_fail_line_and_a_replay_file_that_reproduces_it_bit_for_bit() {
    let out = sim(&["--seed", "1", "--mutant", "prefix_before_snapshot", "--ops", "60", "--shrink"]);
    let stdout = text(&out.stdout);
    let shrunk = stdout.lines().find(|l| l.starts_with("FAIL ") && l.contains("(shrunk)")).expect("a shrunk FAIL line");
    assert!(shrunk.contains("prefix_covered"), "{stdout}");
    let replay = replay_args(&stdout, "replay (shrunk):");
    assert_eq!(replay[0], "--replay", "the shrunk run is saved as a replay file: {replay:?}");
    let replay: Vec<&str> = replay.iter().map(String::as_str).filter(|a| *a != "--trace").collect();
    let again = text(&sim(&replay).stdout);
    // The same FAIL line: the same step and digest (every event the same).
    let fail = shrunk.replace(" (shrunk)", "");
    assert!(again.lines().any(|l| l == fail), "the replay file reproduces {fail}:\n{again}");
    // A damaged or missing file is refused with a clear error.
    let path = std::env::temp_dir().join(format!("damaged-{}.replay", std::process::id()));
    let file = std::fs::read_to_string(replay[1]).unwrap();
    std::fs::write(&path, file.replacen("decisions ", "decisions 1", 1)).unwrap();
    let damaged = sim(&["--replay", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(damaged.status.code(), Some(64));
    assert!(text(&damaged.stderr).contains("decisions where the file says"), "{}", text(&damaged.stderr));
}

/// The cells of each row of the HTML table `id`.
fn table_rows(page: &str, id: &str) -> Vec<Vec<String>> {
    let start = page.find(&format!("<table id=\"{id}\">")).expect("the table");
    let table = &page[start..start + page[start..].find("</table>").expect("the table's end")];
    let rows = table.split("<tr").skip(1).filter(|row| !row.contains("<th>"));
    let cells = |row: &str| {
        row.split("<td>").skip(1).map(|cell| cell.split("</td>").next().unwrap_or("").to_string()).collect()
    };
    rows.map(cells).collect()
}

#[test]
fn a_linearizability_failure_names_its_operations_in_text_and_in_the_html_report() {
    // The first seed where reads served without leadership are caught as stale.
    let many = text(&sim(&["--seeds", "0..40", "--mutant", "read_without_leadership"]).stdout);
    let fail = many.lines().find(|l| l.starts_with("FAIL linearizability")).expect("a stale read within 40 seeds");
    let seed = fail.split("seed=").nth(1).and_then(|s| s.split(' ').next()).expect("seed=N");
    let path = std::env::temp_dir().join(format!("sim-report-{}.html", std::process::id()));
    let path_text = path.to_str().unwrap();
    let out = sim(&["--seed", seed, "--mutant", "read_without_leadership", "--report", path_text]);
    let stdout = text(&out.stdout);
    // The text names the operations that cannot be ordered: request id, client, node, key,
    // what they did and when.
    let named: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("operations that cannot be ordered"))
        .skip(1)
        .take_while(|l| l.starts_with("  #"))
        .collect();
    assert!(named.len() >= 2, "a stale read and the update it missed: {stdout}");
    assert!(named.iter().any(|l| l.contains("Read -> ")), "{stdout}");
    for line in &named {
        assert!(
            line.contains(" client ") && line.contains(" via n") && line.contains(" key ") && line.contains("invoked")
        );
    }
    let ids: Vec<String> = named.iter().map(|l| l.trim().split(' ').next().unwrap().to_string()).collect();
    // Each of them appears in the events around them (the trace names request ids).
    let events: String = stdout.lines().skip_while(|l| !l.starts_with("events around them")).collect();
    assert!(ids.iter().all(|id| events.contains(&format!("{id} "))), "{events}");
    // The HTML report holds the same operations, needs nothing from outside, and draws them.
    let page = std::fs::read_to_string(&path).expect("the report was written");
    std::fs::remove_file(&path).unwrap();
    let rows = table_rows(&page, "failing");
    let reported: Vec<String> = rows.iter().map(|cells| cells[0].clone()).collect();
    assert_eq!(reported, ids, "the report's failing operations are the text's");
    for needle in ["src=", "href=", "<link", "@import", "url("] {
        assert!(!page.contains(needle), "no external resources: found {needle}");
    }
    assert!(page.matches("class=\"op failing\"").count() >= 2 * ids.len(), "drawn in both timelines");
    assert!(page.contains("FAIL linearizability"));
}

#[test]
fn a_fuzz_input_becomes_a_replay_file_of_the_same_run() {
    let dir = std::env::temp_dir();
    let input = dir.join(format!("schedule-{}.bytes", std::process::id()));
    let saved = dir.join(format!("schedule-{}.replay", std::process::id()));
    // Bytes of 0 fire every chance they decide: a stormy start.
    std::fs::write(&input, [0u8; 300]).unwrap();
    let (input_path, saved_path) = (input.to_str().unwrap(), saved.to_str().unwrap());
    let first = text(&sim(&["--fuzz-input", input_path, "--save", saved_path]).stdout);
    let replayed = text(&sim(&["--replay", saved_path]).stdout);
    std::fs::remove_file(&input).unwrap();
    std::fs::remove_file(&saved).unwrap();
    let last = |out: &str| out.lines().find(|l| l.starts_with("ok seed=") || l.starts_with("FAIL ")).map(String::from);
    assert!(first.contains(&format!("saved: {saved_path}")), "{first}");
    assert_eq!(last(&first).expect("a result line"), last(&replayed).expect("a result line"), "same run, same digest");
}

#[test]
fn a_history_whose_check_runs_out_of_steps_is_undecided_apart_from_failures() {
    // Ten steps are too few for a history of 300 operations (where a key has more than ten): it is
    // undecided, neither passed nor failed, with exit code 5 and a replay command that keeps the budget.
    let out = sim(&["--seed", "3", "--check-steps", "10"]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let stdout = text(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with("UNDECIDED seed=3 ")).expect("an UNDECIDED line");
    assert!(line.contains("ran past 10 steps"), "{line}");
    let replay = replay_args(&stdout, "replay:");
    assert!(replay.windows(2).any(|w| w == ["--check-steps", "10"]), "{replay:?}");
    // Many seeds: counted apart from failures; a planted bug's failure still exits 1.
    let many = sim(&["--seeds", "1..4", "--check-steps", "10"]);
    assert_eq!(many.status.code(), Some(5));
    assert!(text(&many.stdout).contains("0 failed, 3 undecided"), "{}", text(&many.stdout));
    let planted = sim(&["--seeds", "0..3", "--check-steps", "10", "--mutant", "prefix_before_snapshot"]);
    assert_eq!(planted.status.code(), Some(1), "{}", text(&planted.stdout));
    // With the default budget the same seed passes.
    assert!(sim(&["--seed", "3"]).status.success());
}
