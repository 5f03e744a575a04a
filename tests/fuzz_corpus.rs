//! Replays the fuzz targets' committed corpus (`fuzz/corpus/<target>/`) under plain
//! `cargo test`, plus a few thousand pseudo-random inputs, so the targets' properties are
//! checked on every CI run without a nightly toolchain.

#[path = "../fuzz/targets.rs"]
#[allow(dead_code)]
mod targets;

use std::path::Path;
use tinyraftplus::core::Rng;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().map(|path| std::fs::read(path).unwrap()).collect()
}

fn random_inputs(seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let len = rng.below(2048) as usize;
            (0..len).map(|_| rng.next_u64() as u8).collect()
        })
        .collect()
}

/// Runs `target` on its committed corpus (at least 8 inputs) and `count` random inputs.
fn replay(name: &str, seed: u64, count: usize, target: fn(&[u8])) {
    let inputs = corpus(name);
    assert!(inputs.len() >= 8, "the committed corpus of {name} is there");
    for input in inputs.iter().chain(&random_inputs(seed, count)) {
        target(input);
    }
}

#[test]
fn decode_message_corpus_and_random_bytes() {
    replay("decode_message", 1, 5000, targets::decode_message);
}

#[test]
fn core_inputs_corpus_and_random_bytes() {
    replay("core_inputs", 2, 2000, targets::core_inputs);
}

#[test]
fn recover_bytes_corpus_and_random_bytes() {
    replay("recover_bytes", 3, 3000, targets::recover_bytes);
}
