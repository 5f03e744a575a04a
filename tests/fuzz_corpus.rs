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

#[test]
fn decode_message_corpus_and_random_bytes() {
    let inputs = corpus("decode_message");
    assert!(inputs.len() >= 10, "the committed corpus is there");
    for input in inputs.iter().chain(&random_inputs(1, 5000)) {
        targets::decode_message(input);
    }
}

#[test]
fn core_inputs_corpus_and_random_bytes() {
    let inputs = corpus("core_inputs");
    assert!(inputs.len() >= 10, "the committed corpus is there");
    for input in inputs.iter().chain(&random_inputs(2, 2000)) {
        targets::core_inputs(input);
    }
}

#[test]
fn recover_bytes_corpus_and_random_bytes() {
    let inputs = corpus("recover_bytes");
    assert!(inputs.len() >= 8, "the committed corpus is there");
    for input in inputs.iter().chain(&random_inputs(3, 3000)) {
        targets::recover_bytes(input);
    }
}
