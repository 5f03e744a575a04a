//! The committed corpus of the cluster_schedule fuzz target (`fuzz/corpus/cluster_schedule`),
//! replayed under plain `cargo test`: each input is a run of the counter simulation that passes
//! every check, and replays to the same digest.

use tinyraftplus_sim::{schedule, Simulation};

#[test]
fn the_committed_schedule_corpus_passes() {
    let dir = schedule::corpus_dir();
    let simulation = Simulation::counter();
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus directory") {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let outcome = schedule::run(&simulation, &bytes, &schedule::options());
        assert!(outcome.failure.is_none(), "{}: {:?}", path.display(), outcome.failure);
        assert_eq!(schedule::run(&simulation, &bytes, &schedule::options()).digest, outcome.digest);
        count += 1;
    }
    assert!(count > 0, "an empty corpus");
}

#[test]
fn input_bytes_decide_the_run() {
    let simulation = Simulation::counter();
    let options = schedule::options();
    let quiet = schedule::run(&simulation, &[255; 64], &options);
    let other = schedule::run(&simulation, &[0; 64], &options);
    assert_ne!(quiet.digest, other.digest);
    // The same bytes, the same run.
    assert_eq!(schedule::run(&simulation, &[0; 64], &options).digest, other.digest);
}
