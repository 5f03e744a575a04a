//! One test per claim of the Raft paper's Figure 2 and section 5 (Ongaro and Ousterhout,
//! "In Search of an Understandable Consensus Algorithm", 2014). Figure 3's properties are also
//! checked after every action of the property tests (`tests/properties.rs`).

use bytes::Bytes;
use tinyraftplus::core::{
    AppendResult, Body, Entry, Event, Input, LogId, Message, NodeId, Output, Payload, Raft, Recovered, Role, Seq, Term,
    Write,
};
use tinyraftplus::testkit::Cluster;

const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const N3: NodeId = NodeId(3);

fn id(term: u64, seq: u64) -> LogId {
    LogId::new(Term(term), Seq(seq))
}

fn entry(term: u64, seq: u64, data: &'static str) -> Entry {
    Entry { term: Term(term), seq: Seq(seq), payload: Payload::Data(Bytes::from_static(data.as_bytes())) }
}

/// Three nodes, node 1 elected in term 1 with its first entry committed, no pre-vote.
fn elected() -> Cluster {
    let mut c = Cluster::new(3, |config| config.pre_vote = false);
    c.elect(N1);
    assert_eq!(c.leader(), Some(N1));
    c
}

/// Delivers a message to `to` and returns the messages it sent back.
fn inject(c: &mut Cluster, to: NodeId, from: NodeId, term: u64, body: Body) -> Vec<Message> {
    c.network.clear();
    c.step(to, Input::Message(Message { from, to, term: Term(term), body }));
    c.sync(to, None);
    c.network.drain(..).collect()
}

fn append(prev: Option<LogId>, entries: Vec<Entry>, commit: Option<u64>) -> Body {
    Body::Append { prev, entries, commit: commit.map(Seq), read_round: 0 }
}

#[test]
fn s5_1_a_higher_term_in_any_message_makes_a_leader_step_down() {
    let mut c = elected();
    let body = Body::AppendResponse {
        read_round: 0,
        result: AppendResult::Accepted { matched: None, catching_up: false },
        incarnation: 0,
    };
    inject(&mut c, N1, N2, 5, body);
    let raft = c.raft(N1);
    assert_eq!((raft.role(), raft.term()), (Role::Follower, Term(5)));
}

#[test]
fn s5_1_requests_from_an_older_term_are_refused_with_the_current_term() {
    let mut c = elected();
    let replies = inject(&mut c, N2, N3, 0, append(None, vec![entry(0, 0, "old")], None));
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].term, Term(1));
    assert!(matches!(replies[0].body, Body::AppendResponse { result: AppendResult::Rejected { .. }, .. }));
    let replies = inject(&mut c, N2, N3, 0, Body::Vote { last: None, transfer: false });
    assert_eq!(replies[0].body, Body::VoteResponse { granted: false });
}

#[test]
fn s5_2_a_follower_that_hears_from_its_leader_does_not_start_an_election() {
    let mut c = elected();
    for _ in 0..20 {
        c.advance(200_000_000); // Heartbeats every 450 ms, election timeout at least 1500 ms.
        c.stabilize();
    }
    assert_eq!(c.leader(), Some(N1));
    assert_eq!(c.raft(N2).term(), Term(1));
}

#[test]
fn s5_2_a_follower_that_hears_nothing_becomes_candidate_with_a_new_term_and_its_own_vote() {
    let mut c = elected();
    c.crash(N1);
    c.tick(N2);
    let raft = c.raft(N2);
    assert_eq!((raft.role(), raft.term(), raft.hard_state().vote), (Role::Candidate, Term(2), Some(N2)));
    let requests: Vec<&Message> = c.network.iter().filter(|m| matches!(m.body, Body::Vote { .. })).collect();
    assert_eq!(requests.len(), 2, "vote requests go to every other node");
}

#[test]
fn s5_2_a_candidate_with_votes_from_a_majority_becomes_leader() {
    let mut c = Cluster::new(5, |config| config.pre_vote = false);
    c.tick(N1);
    c.sync(N1, None);
    // Only nodes 2 and 3 answer: with node 1's own vote that is 3 of 5.
    c.deliver(|m| m.to == N2 || m.to == N3);
    c.sync(N2, None);
    c.sync(N3, None);
    c.deliver(|m| m.to == N1 && matches!(m.body, Body::VoteResponse { .. }));
    assert!(c.raft(N1).is_leader());
}

#[test]
fn s5_2_a_candidate_that_hears_from_a_leader_of_its_term_becomes_follower() {
    let mut c = Cluster::new(3, |config| config.pre_vote = false);
    c.tick(N1);
    c.tick(N2); // Both candidates in term 1.
    assert_eq!(c.raft(N2).role(), Role::Candidate);
    inject(&mut c, N2, N1, 1, append(None, vec![], None));
    assert_eq!((c.raft(N2).role(), c.raft(N2).leader()), (Role::Follower, Some(N1)));
}

#[test]
fn s5_2_a_candidate_whose_election_times_out_starts_a_new_one() {
    let mut c = Cluster::new(3, |config| config.pre_vote = false);
    c.tick(N1);
    c.network.clear(); // The votes are lost.
    c.tick(N1);
    assert_eq!((c.raft(N1).role(), c.raft(N1).term()), (Role::Candidate, Term(2)));
}

#[test]
fn s5_2_a_vote_request_refused_does_not_restart_a_candidates_election_timer() {
    // Figure 2: only a leader's appends or a granted vote restart the timer. Node 3 campaigns
    // in term 2; node 2, whose log is behind, asks for votes in term 3. Node 3 refuses and
    // follows term 3, and still campaigns when its own timer runs out: had the request
    // restarted it, a stale candidate could keep node 3 from ever campaigning first (with
    // pre-vote off, the simulator's seeds 1025183 and 198917 went 12 s without a leader).
    let mut c = elected();
    c.tick(N3);
    assert_eq!((c.raft(N3).role(), c.raft(N3).term()), (Role::Candidate, Term(2)));
    let deadline = c.raft(N3).deadline().expect("a candidate's timer runs").0;
    c.advance(1_000_000); // A millisecond later.
    let answer = inject(&mut c, N3, N2, 3, Body::Vote { last: None, transfer: false });
    assert_eq!(answer[0].body, Body::VoteResponse { granted: false }, "node 2's log is behind");
    assert_eq!((c.raft(N3).role(), c.raft(N3).term()), (Role::Follower, Term(3)));
    assert_eq!(c.raft(N3).deadline().expect("the timer runs").0, deadline, "the timer was not restarted");
}

#[test]
fn s5_2_a_new_leader_sends_appends_at_once_and_heartbeats_when_idle() {
    let mut c = Cluster::new(3, |config| config.pre_vote = false);
    c.tick(N1);
    c.sync(N1, None);
    c.deliver(|_| true);
    c.sync(N2, None);
    c.sync(N3, None);
    c.network.retain(|m| m.to == N1);
    c.deliver(|_| true);
    assert!(c.raft(N1).is_leader());
    let appends = c.network.iter().filter(|m| matches!(m.body, Body::Append { .. })).count();
    assert_eq!(appends, 2, "an append to each follower upon election");
    c.stabilize();
    c.network.clear();
    c.advance(500_000_000);
    let heartbeats = c.network.iter().filter(|m| matches!(&m.body, Body::Append { entries, .. } if entries.is_empty()));
    assert_eq!(heartbeats.count(), 2, "idle heartbeats to each follower");
}

#[test]
fn s5_2_election_timeouts_are_randomized() {
    let deadlines: Vec<u64> = (0..8)
        .map(|seed| {
            let mut config = tinyraftplus::core::Config::new(N1, [N1, N2, N3]);
            config.seed = seed;
            let mut raft = Raft::new(config, Recovered::default()).unwrap();
            raft.step(tinyraftplus::core::Time(0), Input::Tick);
            raft.deadline().unwrap().0 .0
        })
        .collect();
    let mut distinct = deadlines.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() >= 7, "{deadlines:?}");
    assert!(deadlines.iter().all(|d| (1_500_000_000..3_000_000_000).contains(d)), "{deadlines:?}");
}

#[test]
fn s5_2_each_node_votes_for_at_most_one_candidate_per_term() {
    let mut c = Cluster::new(3, |config| config.pre_vote = false);
    let first = inject(&mut c, N3, N1, 1, Body::Vote { last: None, transfer: false });
    assert_eq!(first[0].body, Body::VoteResponse { granted: true });
    let second = inject(&mut c, N3, N2, 1, Body::Vote { last: None, transfer: false });
    assert_eq!(second[0].body, Body::VoteResponse { granted: false });
    let again = inject(&mut c, N3, N1, 1, Body::Vote { last: None, transfer: false });
    assert_eq!(again[0].body, Body::VoteResponse { granted: true }, "the same candidate may ask again");
}

#[test]
fn s5_3_a_leader_appends_client_commands_and_answers_once_they_are_committed() {
    let mut c = elected();
    let request = c.append(N1, "x");
    assert_eq!(c.raft(N1).last(), Some(id(1, 1)), "appended to the leader's log at once");
    assert!(c.reply(N1, request).is_none(), "not answered before commit");
    c.stabilize();
    assert!(matches!(c.reply(N1, request), Some(Ok(_))));
    assert_eq!(c.raft(N1).commit(), Some(Seq(1)));
}

#[test]
fn s5_3_appends_are_refused_when_the_log_lacks_the_previous_entry() {
    let mut c = elected();
    let replies = inject(&mut c, N2, N1, 1, append(Some(id(1, 5)), vec![entry(1, 6, "x")], None));
    assert!(matches!(replies[0].body, Body::AppendResponse { result: AppendResult::Rejected { .. }, .. }));
    let replies = inject(&mut c, N2, N1, 1, append(Some(id(0, 0)), vec![entry(1, 1, "x")], None));
    assert!(matches!(replies[0].body, Body::AppendResponse { result: AppendResult::Rejected { .. }, .. }));
    assert_eq!(c.raft(N2).last(), Some(id(1, 0)), "nothing was appended");
}

#[test]
fn s5_3_a_conflicting_entry_and_all_after_it_are_deleted() {
    let mut c = Cluster::new(3, |config| config.pre_vote = false);
    inject(&mut c, N2, N1, 1, append(None, vec![entry(1, 0, "a"), entry(1, 1, "b"), entry(1, 2, "c")], None));
    inject(&mut c, N2, N3, 2, append(Some(id(1, 0)), vec![entry(2, 1, "B")], None));
    let stored: Vec<Entry> = c.nodes[&N2].storage.entries().to_vec();
    assert_eq!(stored, vec![entry(1, 0, "a"), entry(2, 1, "B")]);
}

#[test]
fn s5_3_new_entries_not_already_in_the_log_are_appended_and_present_ones_kept() {
    let mut c = Cluster::new(3, |config| config.pre_vote = false);
    inject(&mut c, N2, N1, 1, append(None, vec![entry(1, 0, "a"), entry(1, 1, "b")], None));
    let replies =
        inject(&mut c, N2, N1, 1, append(None, vec![entry(1, 0, "a"), entry(1, 1, "b"), entry(1, 2, "c")], None));
    assert_eq!(c.nodes[&N2].storage.entries().len(), 3);
    let truncations = c.transcript.iter().filter(|l| l.contains("truncate")).count();
    assert_eq!(truncations, 0);
    let ok = AppendResult::Accepted { matched: Some(Seq(2)), catching_up: false };
    assert!(matches!(replies[0].body, Body::AppendResponse { read_round: 0, result, .. } if result == ok));
}

#[test]
fn s5_3_a_follower_commits_up_to_the_leaders_commit_within_the_entries_it_verified() {
    let mut c = Cluster::new(3, |config| config.pre_vote = false);
    inject(&mut c, N2, N1, 1, append(None, vec![entry(1, 0, "a"), entry(1, 1, "b")], Some(9)));
    assert_eq!(c.raft(N2).commit(), Some(Seq(1)), "min(leader commit, index of last new entry)");
}

#[test]
fn s5_3_a_leader_backs_up_next_index_after_a_refusal_and_repairs_the_follower() {
    let mut c = elected();
    c.partition(&[N1], &[N3]);
    for i in 0..5 {
        c.append(N1, &format!("e{i}"));
    }
    c.stabilize();
    c.heal();
    c.advance(500_000_000);
    c.stabilize();
    assert_eq!(c.nodes[&N3].storage.entries(), c.nodes[&N1].storage.entries());
    assert_eq!(c.raft(N1).matches(), vec![(N2, Some(Seq(5))), (N3, Some(Seq(5)))]);
}

#[test]
fn s5_3_committed_entries_are_applied_in_order_exactly_once() {
    let mut c = Cluster::new(3, |config| config.state_machine = true);
    c.elect(N1);
    for i in 0..10 {
        c.append(NodeId(i % 3 + 1), &format!("{i}"));
        c.stabilize();
    }
    c.advance(500_000_000);
    c.stabilize();
    for node in c.nodes.values() {
        let seqs: Vec<u64> = node.state.applied.iter().map(|e| e.seq.0).collect();
        assert_eq!(seqs, (0..=10).collect::<Vec<_>>());
    }
}

#[test]
fn s5_3_leader_append_only_a_leader_never_overwrites_its_log() {
    let mut c = elected();
    c.append(N1, "mine");
    let before = c.raft(N1).last();
    // A follower claims a conflicting entry; the leader keeps its own log.
    let result = AppendResult::Rejected { rejected: Seq(1), hint: None };
    let body = Body::AppendResponse { read_round: 0, result, incarnation: 0 };
    inject(&mut c, N1, N2, 1, body);
    inject(&mut c, N1, N2, 1, append(Some(id(1, 0)), vec![entry(1, 1, "theirs")], None));
    assert_eq!(c.raft(N1).last(), before);
    assert!(c.nodes[&N1].events.iter().any(|e| matches!(e, Event::Error(m) if m.contains("two leaders"))));
}

#[test]
fn s5_4_1_votes_go_only_to_candidates_at_least_as_up_to_date() {
    // Without check-quorum, so the leader lease does not hide the votes.
    let mut c = Cluster::new(3, |config| {
        config.pre_vote = false;
        config.check_quorum = false;
    });
    inject(&mut c, N3, N1, 2, append(None, vec![entry(1, 0, "a"), entry(2, 1, "b")], None));
    // Later term wins over a longer log; a shorter log of the same term loses.
    let longer_older = inject(&mut c, N3, N2, 3, Body::Vote { last: Some(id(1, 9)), transfer: false });
    assert_eq!(longer_older[0].body, Body::VoteResponse { granted: false });
    let shorter_same = inject(&mut c, N3, N2, 4, Body::Vote { last: Some(id(2, 0)), transfer: false });
    assert_eq!(shorter_same[0].body, Body::VoteResponse { granted: false });
    let equal = inject(&mut c, N3, N2, 5, Body::Vote { last: Some(id(2, 1)), transfer: false });
    assert_eq!(equal[0].body, Body::VoteResponse { granted: true });
}

#[test]
fn s5_4_2_entries_of_earlier_terms_are_not_committed_by_counting_replicas() {
    // Node 1 leads term 3 with "x" (term 1) at seq 1 on a majority but its own term-3 entry
    // on itself only: the commit point must not move (Figure 8).
    let log = vec![entry(1, 0, "a"), entry(1, 1, "x")];
    let mut config = tinyraftplus::core::Config::new(N1, [N1, N2, N3]);
    config.pre_vote = false;
    let hard_state = tinyraftplus::core::HardState::new(Term(2), None);
    let mut raft = Raft::new(config, Recovered::from_entries(hard_state, log)).unwrap();
    let now = tinyraftplus::core::Time(0);
    raft.step(now, Input::Tick);
    let at = raft.deadline().unwrap().0;
    let mut writes = Vec::new();
    for output in raft.step(at, Input::Tick) {
        if let Output::Write { id, .. } = output {
            writes.push(id);
        }
    }
    raft.step(at, Input::WriteDone { id: *writes.last().unwrap() });
    let vote = |from| Message { from, to: N1, term: Term(3), body: Body::VoteResponse { granted: true } };
    raft.step(at, Input::Message(vote(N2)));
    assert!(raft.is_leader());
    assert_eq!(raft.last(), Some(id(3, 2)), "the leader appended its first entry");
    let ack = |matched| Message {
        from: N2,
        to: N1,
        term: Term(3),
        body: Body::AppendResponse {
            read_round: 0,
            result: AppendResult::Accepted { matched: Some(Seq(matched)), catching_up: false },
            incarnation: 0,
        },
    };
    raft.step(at, Input::Message(ack(1)));
    assert_eq!(raft.commit(), None, "seq 1 (term 1) is on nodes 1 and 2 but must not commit");
    raft.step(at, Input::Message(ack(2)));
    let outputs = raft.step(at, Input::WriteDone { id: tinyraftplus::core::WriteId(writes.last().unwrap().0 + 1) });
    assert_eq!(raft.commit(), Some(Seq(2)), "once the term-3 entry is on a majority, all before it commit");
    assert!(outputs.contains(&Output::Event(Event::Commit(Seq(2)))));
}

#[test]
fn s5_4_3_leader_completeness_a_new_leader_holds_every_committed_entry() {
    let mut c = elected();
    for i in 0..3 {
        c.append(N1, &format!("{i}"));
    }
    c.stabilize();
    let committed = c.raft(N1).commit();
    c.crash(N1);
    // Node 3 misses nothing; either survivor may win, and must hold all committed entries.
    c.tick(N2);
    c.stabilize();
    let leader = c.leader().unwrap();
    assert!(c.raft(leader).last().map(|l| l.seq) >= committed);
    for seq in 0..=committed.unwrap().0 {
        assert_eq!(c.raft(leader).term_at(Seq(seq)), Some(Term(1)));
    }
}

#[test]
fn s5_5_retried_and_duplicated_appends_are_harmless() {
    let mut c = elected();
    c.append(N1, "a");
    let copies: Vec<Message> = c.network.iter().cloned().collect();
    c.stabilize();
    let before = c.nodes[&N2].storage.entries().to_vec();
    for message in copies {
        let to = message.to;
        c.step(to, Input::Message(message));
    }
    c.stabilize();
    assert_eq!(c.nodes[&N2].storage.entries(), before);
}

#[test]
fn figure2_persistent_state_is_durable_before_answering() {
    let mut c = Cluster::new(3, |config| config.pre_vote = false);
    c.step(
        N3,
        Input::Message(Message { from: N1, to: N3, term: Term(1), body: Body::Vote { last: None, transfer: false } }),
    );
    assert!(c.network.is_empty(), "no vote before its write is durable");
    let write = &c.nodes[&N3].unsynced[0].1;
    assert_eq!(*write, Write::HardState(tinyraftplus::core::HardState::new(Term(1), Some(N1))));
    c.sync(N3, None);
    assert_eq!(c.network.len(), 1);
}
