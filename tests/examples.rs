//! The seed README's examples print what the README shows. `cargo test` builds the examples
//! next to the test binaries; this runs them and compares their output.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-<hash> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    profile.join("examples").join(name)
}

fn run(name: &str) -> String {
    let path = example(name);
    let output = Command::new(&path).output().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("text")
}

#[test]
fn example1_prints_the_seeds_output() {
    let expected = "open\nhave leader\nseq = 1\nseq = 2\nseq = 3\nhead {\"c\":3}\nhead {\"c\":3}\nhead {\"c\":3}\n";
    assert_eq!(run("example1"), expected);
}

#[test]
fn example2_prints_the_seeds_output() {
    assert_eq!(run("example2"), "state 0\nstate 1 1\nstate 2 2\nstate 3 3\nread  3 3\n");
}

#[test]
fn example3_appends_batches_over_encrypted_tcp_with_contiguous_seqs_and_results() {
    let output = Command::new(example("example3")).args(["--seconds", "2"]).output().expect("example3 runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).expect("text");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("listening 127.0.0.1:"), "{text}");
    assert!(lines[1].starts_with("have leader "), "{text}");
    let batches = &lines[2..lines.len() - 1];
    assert!(!batches.is_empty(), "{text}");
    // The leader's blank entry is seq 0 (and counts nothing): entries run from seq 1, and the
    // counter's results match their seqs.
    let mut next = 1u64;
    for line in batches {
        let expected = format!("seq = {next}..{} results = {next}..{}", next + 99, next + 99);
        assert_eq!(*line, expected, "{text}");
        next += 100;
    }
    let done = format!("done {} batches, {} entries in ", batches.len(), batches.len() * 100);
    assert!(lines[lines.len() - 1].starts_with(&done), "{text}");
}
