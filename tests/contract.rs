//! The driver's contract (`core::Output`), seen from the core's side: what it does when a
//! driver's clock goes backwards, and when a driver leaves an answer out.

use tinyraftplus::core::{Body, Config, Event, Input, Message, NodeId, Output, Raft, Recovered, Term, Time};

const SECOND: u64 = 1_000_000_000;

/// A driver's clock that jumps back does not make the core's timers fire early: a leader's
/// message stamped with an earlier time than the last step does not move the election
/// deadline back, and the follower does not campaign while its leader keeps in touch.
#[test]
fn a_clock_that_goes_backwards_does_not_start_an_election() {
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut raft = Raft::new(Config::new(NodeId(2), ids), Recovered::default()).unwrap();
    let heartbeat = |raft: &mut Raft, at: u64| {
        let body = Body::Append { prev: None, entries: Vec::new(), commit: None, read_round: 0 };
        let message = Message { from: NodeId(1), to: NodeId(2), term: Term(1), body };
        raft.step(Time(at), Input::Message(message))
    };
    raft.step(Time(0), Input::Tick);
    heartbeat(&mut raft, 10 * SECOND);
    heartbeat(&mut raft, 0); // The clock jumped back ten seconds.
    let out = raft.step(Time(10 * SECOND + SECOND / 10), Input::Tick);
    let campaigns =
        out.iter().any(|o| matches!(o, Output::Send(m) if matches!(m.body, Body::PreVote { .. } | Body::Vote { .. })));
    assert!(!campaigns, "campaigned 100 ms after its leader's last message: {out:?}");
}

/// A driver that never reports an apply (or a load) stalls the node: after an election timeout
/// the core says so, once, with a warn event.
#[test]
fn an_apply_left_unanswered_is_reported_once() {
    let mut config = Config::new(NodeId(1), [NodeId(1)]);
    config.state_machine = true;
    let mut raft = Raft::new(config, Recovered::default()).unwrap();
    let (mut now, mut applies, mut warnings) = (Time(0), 0, Vec::new());
    while now < Time(20 * SECOND) {
        let mut pending = vec![Input::Tick];
        while let Some(input) = pending.pop() {
            for output in raft.step(now, input) {
                match output {
                    Output::Write { id, .. } => pending.push(Input::WriteDone { id }),
                    Output::Apply { .. } => applies += 1, // Never reported.
                    Output::Event(Event::Warn(text)) if text.contains("has not reported") => warnings.push(text),
                    _ => {}
                }
            }
        }
        now = raft.deadline().map_or(Time(now.0 + SECOND), |(at, _)| at.max(Time(now.0 + 1)));
    }
    assert!(applies >= 1 && raft.is_leader(), "a leader with an entry to apply");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("Output::Apply needs Input::Applied"), "{warnings:?}");
}
