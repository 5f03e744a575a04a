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
