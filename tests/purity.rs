//! The core is pure: nothing under `src/core/` touches files, sockets, threads, the clock or
//! OS randomness, and iteration order never depends on a hasher's random state.

use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "std::fs",
    "std::net",
    "std::thread",
    "std::process",
    "std::env",
    "Instant",
    "SystemTime",
    "UNIX_EPOCH",
    "rand::",
    "getrandom",
    "RandomState",
    "HashMap",
    "HashSet",
    "tokio",
    "unsafe",
];

#[test]
fn the_core_uses_no_clock_files_sockets_threads_or_os_randomness() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let mut checked = 0;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        checked += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if code.contains(word) {
                    found.push(format!("{}:{}: {word}: {line}", path.display(), number + 1));
                }
            }
        }
    }
    assert!(checked >= 10, "expected the core's files, found {checked}");
    assert!(found.is_empty(), "impure code in the core:\n{}", found.join("\n"));
}
