//! Same seed, same inputs: same outputs, byte for byte. A busy run (elections, partitions,
//! crashes, client traffic) is recorded twice and the transcripts compared.

use bytes::Bytes;
use tinyraftplus::core::{Input, NodeId, Rng};
use tinyraftplus::testkit::Cluster;

fn transcript(seed: u64) -> String {
    let mut c = Cluster::new(5, |config| {
        config.seed = config.seed.wrapping_mul(1_000_003).wrapping_add(seed);
        config.state_machine = true;
    });
    c.trace = true;
    let mut rng = Rng::new(seed);
    for step in 0..3000u64 {
        let node = NodeId(rng.below(5) + 1);
        match rng.below(100) {
            0..=39 if !c.network.is_empty() => {
                let index = rng.below(c.network.len() as u64) as usize;
                let message = c.network.remove(index).expect("in range");
                if c.nodes[&message.to].raft.is_some() && !c.cut.contains(&(message.from, message.to)) {
                    c.step(message.to, Input::Message(message));
                }
            }
            40..=59 => c.sync(node, Some(rng.below(3) as usize)),
            60..=69 => c.advance(rng.below(300) * 1_000_000),
            70..=84 if c.nodes[&node].raft.is_some() => {
                let id = c.request_id();
                c.step(node, Input::Append { id, data: Bytes::from(format!("{step}")) });
            }
            85..=89 if c.nodes[&node].raft.is_some() => {
                c.read(node);
            }
            90..=91 if c.nodes[&node].raft.is_some() => c.crash(node),
            92..=95 if c.nodes[&node].raft.is_none() => c.restart(node),
            96 => c.partition(&[node], &[NodeId(node.0 % 5 + 1)]),
            97 => c.heal(),
            _ => {}
        }
    }
    c.transcript.join("\n")
}

#[test]
fn the_same_seed_gives_a_byte_identical_transcript() {
    let first = transcript(42);
    let second = transcript(42);
    assert!(first.lines().count() > 1000, "the run is busy: {} lines", first.lines().count());
    assert!(first.contains("event commit"), "entries were committed");
    assert_eq!(first, second);
}

#[test]
fn a_different_seed_gives_a_different_run() {
    assert_ne!(transcript(1), transcript(2));
}
