//! The driver's contract (`core::Output`), seen from the core's side: what it does when a
//! driver's clock goes backwards, when a driver leaves an answer out, and how it binds the
//! messages that promise durability to their writes.

use bytes::Bytes;
use tinyraftplus::core::{
    AppendResult, Body, Config, Entry, Event, HardState, Input, LogId, Message, NodeId, Output, Payload, Raft,
    Recovered, Seq, SnapshotMeta, Term, Time, Write, WriteId,
};

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

/// An acknowledgement of entries comes bound to the write that makes them durable
/// (`Output::SendAfter`), never as a plain message before it: a driver sends it from where it
/// syncs. Entries that arrive while that write is in flight wait for it (group commit), and
/// their acknowledgement is bound to the next write.
#[test]
fn an_acknowledgement_is_bound_to_the_write_of_its_entries() {
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut raft = Raft::new(Config::new(NodeId(2), ids), Recovered::default()).unwrap();
    raft.step(Time(0), Input::Tick);
    let entry = |seq: u64| Entry { term: Term(1), seq: Seq(seq), payload: Payload::Data(Bytes::from("x")) };
    let append = |prev: Option<LogId>, seqs: &[u64]| {
        let body =
            Body::Append { prev, entries: seqs.iter().copied().map(entry).collect(), commit: None, read_round: 0 };
        Input::Message(Message { from: NodeId(1), to: NodeId(2), term: Term(1), body })
    };
    let accepted = |message: &Message| match &message.body {
        Body::AppendResponse { result: AppendResult::Accepted { matched, .. }, .. } => *matched,
        _ => None,
    };
    // A heartbeat of the new term first: its term is made durable.
    for output in raft.step(Time(1), append(None, &[])) {
        if let Output::Write { id, .. } = output {
            raft.step(Time(1), Input::WriteDone { id });
        }
    }
    let first = raft.step(Time(1), append(None, &[0, 1]));
    let entries_write = first.iter().rev().find_map(|o| match o {
        Output::Write { id, write: Write::Entries(_) } => Some(*id),
        _ => None,
    });
    let bound: Vec<(WriteId, Option<Seq>)> = first
        .iter()
        .filter_map(|o| match o {
            Output::SendAfter { write, message } => Some((*write, accepted(message))),
            _ => None,
        })
        .collect();
    assert_eq!(bound, vec![(entries_write.expect("an entries write"), Some(Seq(1)))], "{first:?}");
    assert!(!first.iter().any(|o| matches!(o, Output::Send(m) if accepted(m).is_some())), "{first:?}");
    // More entries while that write is in flight: nothing is written or promised yet.
    let second = raft.step(Time(2), append(Some(LogId { term: Term(1), seq: Seq(1) }), &[2, 3]));
    assert!(!second.iter().any(|o| matches!(o, Output::Write { .. } | Output::SendAfter { .. })), "{second:?}");
    // Its report lets them go, in one write that their acknowledgement is bound to; the first
    // acknowledgement is not sent again.
    let done = raft.step(Time(3), Input::WriteDone { id: entries_write.unwrap() });
    let next = done.iter().find_map(|o| match o {
        Output::Write { id, write: Write::Entries(entries) } if entries.len() == 2 => Some(*id),
        _ => None,
    });
    let bound: Vec<_> = done
        .iter()
        .filter_map(|o| match o {
            Output::SendAfter { write, message } => Some((*write, accepted(message))),
            _ => None,
        })
        .collect();
    assert_eq!(bound, vec![(next.unwrap(), Some(Seq(3)))], "{done:?}");
    assert!(!done.iter().any(|o| matches!(o, Output::Send(m) if accepted(m).is_some())), "{done:?}");
}

/// A granted vote comes bound to the write of the term and vote.
#[test]
fn a_granted_vote_is_bound_to_the_write_of_the_vote() {
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut config = Config::new(NodeId(2), ids);
    config.pre_vote = false;
    let mut raft = Raft::new(config, Recovered::default()).unwrap();
    raft.step(Time(0), Input::Tick);
    let body = Body::Vote { last: None, transfer: false };
    let out = raft.step(Time(1), Input::Message(Message { from: NodeId(1), to: NodeId(2), term: Term(1), body }));
    let vote_write = out.iter().find_map(|o| match o {
        Output::Write { id, write: Write::HardState(state) } if state.vote == Some(NodeId(1)) => Some(*id),
        _ => None,
    });
    let granted = out.iter().find_map(|o| match o {
        Output::SendAfter { write, message } if matches!(message.body, Body::VoteResponse { granted: true }) => {
            Some(*write)
        }
        _ => None,
    });
    assert!(vote_write.is_some() && granted == vote_write, "{out:?}");
    assert!(!out.iter().any(|o| matches!(o, Output::Send(m) if matches!(m.body, Body::VoteResponse { .. }))));
}

/// An append whose entries disagree with the snapshot a follower's log starts after (a faulty
/// or hostile peer: a leader's committed entries match) is refused with an error event; the
/// entries after the snapshot would otherwise have lower terms than its last (found by
/// fuzzing `core_inputs`, which panicked on the log's invariant).
#[test]
fn an_append_that_contradicts_the_snapshot_is_refused() {
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut config = Config::new(NodeId(2), ids);
    config.state_machine = true;
    let last = LogId { term: Term(2), seq: Seq(9) };
    let recovered = Recovered {
        hard_state: HardState { commit: Some(Seq(9)), ..HardState::new(Term(2), None) },
        snapshot: Some(SnapshotMeta { last, digest: 0, configuration: None }),
        ..Recovered::default()
    };
    let mut raft = Raft::new(config, recovered).unwrap();
    raft.step(Time(0), Input::Tick);
    let entries = (4..=11).map(|seq| Entry { term: Term(1), seq: Seq(seq), payload: Payload::Blank }).collect();
    let prev = Some(LogId { term: Term(1), seq: Seq(3) });
    let body = Body::Append { prev, entries, commit: None, read_round: 0 };
    let out = raft.step(Time(1), Input::Message(Message { from: NodeId(1), to: NodeId(2), term: Term(2), body }));
    assert!(out.iter().any(|o| matches!(o, Output::Event(Event::Error(e)) if e.contains("snapshot"))), "{out:?}");
    assert_eq!(raft.seq(), Some(Seq(9)), "nothing taken after the snapshot");
    assert!(!out.iter().any(|o| matches!(o, Output::Write { write: Write::Entries(_), .. })), "{out:?}");
}

/// A node whose snapshot (of the cluster's entries, through 3@2) became durable while its own
/// truncation of a deposed leader's entry there (3@1) did not: at restart its log holds another
/// entry at the snapshot's last seq, so nothing of the cluster's from there on. The core must
/// continue after the snapshot and have storage reset, not apply the log's 3@1 (found by the
/// simulator: seed 843005, four nodes, applied 40@3 where the others applied 40@5).
#[test]
fn a_log_that_contradicts_the_snapshot_at_its_end_is_reset_to_it() {
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut config = Config::new(NodeId(1), ids);
    config.state_machine = true;
    let entries = (0..=3).map(|seq| Entry { term: Term(1), seq: Seq(seq), payload: Payload::Blank }).collect();
    let mut recovered = Recovered::from_entries(HardState::new(Term(2), None), entries);
    let last = LogId { term: Term(2), seq: Seq(3) };
    recovered.snapshot = Some(SnapshotMeta { last, digest: 7, configuration: None });
    let mut raft = Raft::new(config, recovered).unwrap();
    assert_eq!(raft.last(), Some(last), "the log continues after the snapshot");
    assert_eq!(raft.term_at(Seq(3)), Some(Term(2)));
    let out = raft.step(Time(0), Input::Tick);
    let reset = out.iter().any(
        |o| matches!(o, Output::Write { write: Write::InstallSnapshot { snapshot }, .. } if snapshot.last == last),
    );
    assert!(reset, "storage is reset to continue after the snapshot: {out:?}");
}

/// A follower restarted with only the last 2 of its 10 entries in memory (all committed), told
/// the commit point by its leader; the log it was started from.
fn restarted_with_two_in_memory() -> (Raft, Vec<Entry>, Vec<Output>) {
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut config = Config::new(NodeId(2), ids);
    config.state_machine = true;
    config.memory_entries_max = 2;
    config.rpc_entries_max = 2;
    let log: Vec<Entry> =
        (0..=9).map(|seq| Entry { term: Term(1), seq: Seq(seq), payload: Payload::Data(Bytes::from("x")) }).collect();
    let mut recovered = Recovered::from_entries(HardState::new(Term(1), None), log.clone());
    recovered.tail.drain(..8); // What a store keeping 2 in memory gives.
    let mut raft = Raft::new(config, recovered).unwrap();
    let mut out = raft.step(Time(1), Input::Tick);
    let prev = Some(LogId { term: Term(1), seq: Seq(9) });
    let body = Body::Append { prev, entries: Vec::new(), commit: Some(Seq(9)), read_round: 0 };
    out.extend(raft.step(Time(1), Input::Message(Message { from: NodeId(1), to: NodeId(2), term: Term(1), body })));
    (raft, log, out)
}

/// Carries out `outputs` as a driver would (loads from `log`, applies in order, the first
/// `failing` loads failing), and ticks the node at its deadlines, `ticks` times; the seqs
/// applied (within 1,000 steps: a node that loads for ever stops there).
fn drive(raft: &mut Raft, log: &[Entry], outputs: Vec<Output>, mut failing: usize, ticks: usize) -> Vec<u64> {
    let mut applied = Vec::new();
    let mut pending: std::collections::VecDeque<Output> = outputs.into();
    let (mut ticks_left, mut now) = (ticks, Time(1));
    for _ in 0..1000 {
        let input = match pending.pop_front() {
            Some(Output::LoadEntries { .. }) if failing > 0 => {
                failing -= 1;
                Input::LoadFailed { error: "latent sector error".into() }
            }
            Some(Output::LoadEntries { from, to }) => {
                Input::EntriesLoaded { entries: log[from.0 as usize..=to.0 as usize].to_vec() }
            }
            Some(Output::Apply { entries }) => {
                applied.extend(entries.iter().map(|entry| entry.seq.0));
                Input::Applied { first: entries[0].seq, responses: vec![Bytes::new(); entries.len()] }
            }
            Some(_) => continue,
            None if ticks_left > 0 => {
                ticks_left -= 1;
                now = raft.deadline().expect("a node always has a deadline").0;
                pending.extend(raft.step(now, Input::Tick));
                continue;
            }
            None => break,
        };
        pending.extend(raft.step(now, input));
    }
    applied
}

/// A node restarting with only the last 2 entries of its log in memory applies the rest from
/// storage, in loads of `rpc_entries_max` (2) while it applies up to `apply_entries_max`
/// (1024) at a time: each load serves the entries it holds. Before, a load that did not reach
/// the entries in memory served nothing when more were asked for, and the node loaded the
/// same entries again and again, applying none (found by the simulator with few entries in
/// memory: seed 2 of five nodes).
#[test]
fn a_restarted_node_applies_from_storage_in_loads_smaller_than_its_apply_batches() {
    let (mut raft, log, out) = restarted_with_two_in_memory();
    let applied = drive(&mut raft, &log, out, 0, 0);
    assert_eq!(applied, (0..=9).collect::<Vec<u64>>(), "every committed entry applied, once, in order");
    assert_eq!(raft.applied(), Some(Seq(9)));
}

/// A load for the state machine that fails is tried again after a heartbeat interval, though
/// the commit point does not move: before, applying stopped until the next commit, for ever in
/// a cluster that had gone quiet (found by the simulator: seed 4613 of five nodes, with a read
/// error on a restarted node's first load).
#[test]
fn a_failed_load_for_the_state_machine_is_tried_again() {
    let (mut raft, log, out) = restarted_with_two_in_memory();
    let applied = drive(&mut raft, &log, out, 1, 1);
    assert_eq!(applied, (0..=9).collect::<Vec<u64>>(), "every committed entry applied, once, in order");
}

/// A node whose log's prefix was removed (through its snapshot at 1@7), whose later entries
/// were lost in a crash and then its snapshot files: restarted, its log holds nothing past the
/// removed prefix and nothing tells what it continued from. It lost committed entries, so it
/// votes as a node that lost data does: it grants no vote, not even to a candidate whose log
/// looks longer than its empty one (found by the simulator: seeds 4213451 and 4239083, three
/// nodes, the register, where such a node elected a leader lacking the committed entry 1@7).
#[test]
fn a_node_left_with_an_emptied_log_and_no_snapshot_grants_no_vote() {
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut config = Config::new(NodeId(1), ids);
    config.state_machine = true;
    config.pre_vote = false;
    let recovered = Recovered {
        hard_state: HardState { commit: Some(Seq(1)), ..HardState::new(Term(9), None) },
        first: Seq(2),
        ..Recovered::default()
    };
    let mut raft = Raft::new(config, recovered).unwrap();
    assert!(raft.is_catching_up(), "it lost what its log continued from");
    let out = raft.step(Time(0), Input::Tick);
    let saved = out.iter().any(|o| matches!(o, Output::Write { write: Write::HardState(s), .. } if s.catching_up));
    assert!(saved, "it says so durably: {out:?}");
    let body = Body::Vote { last: Some(LogId { term: Term(2), seq: Seq(0) }), transfer: false };
    let out = raft.step(Time(1), Input::Message(Message { from: NodeId(2), to: NodeId(1), term: Term(10), body }));
    let granted = |o: &Output| match o {
        Output::Send(m) | Output::SendAfter { message: m, .. } => {
            matches!(m.body, Body::VoteResponse { granted: true })
        }
        _ => false,
    };
    assert!(!out.iter().any(granted), "{out:?}");
}
