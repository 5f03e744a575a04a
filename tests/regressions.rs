//! One regression test per safety or liveness bug of the JavaScript tinyraftplus
//! (../shared/SEED-SPEC.md §5, items 1 to 11), each showing it cannot happen here.

use bytes::Bytes;
use std::sync::Arc;
use tinyraftplus::core::{
    Body, ClientError, Config, ConfigError, Entry, Input, LogId, Message, NodeId, Payload, Quorum, QuorumFn, Response,
    Role, Seq, Term,
};
use tinyraftplus::testkit::Cluster;

const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const N3: NodeId = NodeId(3);
const N4: NodeId = NodeId(4);

fn run_until_leader(c: &mut Cluster) -> NodeId {
    for _ in 0..200 {
        if let Some(leader) = c.leader() {
            return leader;
        }
        c.advance(100_000_000);
        c.stabilize();
    }
    panic!("no leader elected");
}

/// §5.1: the default `ceil(n/2)` let a 4-node cluster split 2/2 elect two leaders in one term.
#[test]
fn seed1_a_four_node_cluster_split_in_halves_never_has_two_leaders() {
    let mut c = Cluster::new(4, |_| {});
    c.partition(&[N1, N2], &[N3, N4]);
    for _ in 0..100 {
        c.advance(100_000_000);
        c.stabilize();
        assert_eq!(c.nodes.values().filter(|n| n.raft.as_ref().is_some_and(|r| r.is_leader())).count(), 0);
    }
    let err = Config { quorum: Quorum::Count(2), ..Config::new(N1, [N1, N2, N3, N4]) }.validate().unwrap_err();
    assert_eq!(err, ConfigError::DisjointQuorums(vec![N1, N2], vec![N3, N4]));
}

/// §5.2: term and vote were not persisted, so a voter restarted before writing an entry of the
/// new term could vote again in it.
#[test]
fn seed2_a_voter_restarted_from_its_storage_cannot_vote_twice_in_a_term() {
    let mut c = Cluster::new(3, |config| config.pre_vote = false);
    let vote = |from| Message { from, to: N3, term: Term(6), body: Body::Vote { last: None, transfer: false } };
    c.step(N3, Input::Message(vote(N1)));
    c.sync(N3, None);
    assert_eq!(c.network.pop_front().unwrap().body, Body::VoteResponse { granted: true });
    c.crash(N3);
    c.restart(N3);
    assert_eq!(c.raft(N3).term(), Term(6));
    c.step(N3, Input::Message(vote(N2)));
    c.sync(N3, None);
    assert_eq!(c.network.pop_front().unwrap().body, Body::VoteResponse { granted: false });
}

/// §5.3: commit counted replicas regardless of term (Figure 8). The paper test
/// `s5_4_2_entries_of_earlier_terms_are_not_committed_by_counting_replicas` and the scenario
/// `figure8.txt` drive the exact case; here, a catch-up acknowledgement of old entries alone
/// never commits them.
#[test]
fn seed3_catch_up_acknowledgements_of_old_entries_do_not_commit_them() {
    let mut c = Cluster::new(3, |config| {
        config.pre_vote = false;
        config.rpc_entries_max = 1;
    });
    c.elect(N1);
    c.partition(&[N1], &[N2, N3]);
    c.append(N1, "old");
    c.sync(N1, None);
    c.network.clear();
    c.crash(N1);
    c.restart(N1);
    c.heal();
    c.partition(&[N1, N2], &[N3]);
    c.tick(N1);
    c.sync(N1, None);
    c.deliver(|m| m.to == N2);
    c.sync(N2, None);
    c.deliver(|m| m.to == N1);
    assert!(c.raft(N1).is_leader());
    // Node 2 receives and acknowledges "old" (term 1) alone; the term-2 blank is not durable on
    // the leader yet.
    c.deliver(|m| m.to == N2);
    c.sync(N2, None);
    c.deliver(|m| m.to == N1);
    c.deliver(|m| m.to == N2);
    c.sync(N2, None);
    c.deliver(|m| m.to == N1);
    assert_eq!(c.raft(N1).matches()[0], (N2, Some(Seq(1))), "node 2 holds the old entry");
    assert_eq!(c.raft(N1).commit(), None, "an old-term entry is never committed by counting");
}

/// §5.4: a stale, duplicated append made a follower truncate entries it had acknowledged.
#[test]
fn seed4_a_stale_append_never_truncates_a_follower() {
    let mut c = Cluster::new(3, |config| config.pre_vote = false);
    c.elect(N1);
    c.append(N1, "a");
    let stale: Vec<Message> = c.network.iter().filter(|m| m.to == N2).cloned().collect();
    c.stabilize();
    for text in ["b", "c", "d"] {
        c.append(N1, text);
        c.stabilize();
    }
    assert_eq!(c.raft(N2).last(), Some(LogId::new(Term(1), Seq(4))));
    for message in stale {
        c.step(N2, Input::Message(message));
    }
    // A hand-made two-entry stale append for prev seq 1, as in the seed's verified case.
    let entries = (2..=3).map(|s| c.nodes[&N1].storage.entries()[s].clone()).collect::<Vec<Entry>>();
    let body = Body::Append { prev: Some(LogId::new(Term(1), Seq(1))), entries, commit: None, read_round: 0 };
    c.step(N2, Input::Message(Message { from: N1, to: N2, term: Term(1), body }));
    c.sync(N2, None);
    assert_eq!(c.raft(N2).last(), Some(LogId::new(Term(1), Seq(4))));
    assert_eq!(c.nodes[&N2].storage.entries().len(), 5);
}

/// §5.5: candidates granted votes to rivals of their own term, refused higher-term requests
/// without adopting the term, and without pre-vote a returning node deposed the leader.
#[test]
fn seed5_candidates_keep_their_own_vote_and_pre_vote_protects_the_leader() {
    let mut c = Cluster::new(3, |config| config.pre_vote = false);
    c.tick(N1);
    c.tick(N2);
    c.network.clear();
    let rival = Message { from: N2, to: N1, term: Term(1), body: Body::Vote { last: None, transfer: false } };
    c.step(N1, Input::Message(rival));
    c.sync(N1, None);
    let answer = c.network.iter().find(|m| m.to == N2).unwrap();
    assert_eq!(answer.body, Body::VoteResponse { granted: false }, "a candidate voted for itself");
    // A refused higher-term request still raises the term (Raft §5.1).
    let behind = Message { from: N2, to: N1, term: Term(7), body: Body::Vote { last: None, transfer: false } };
    c.step(N1, Input::Message(behind));
    assert_eq!(c.raft(N1).term(), Term(7));

    let mut c = Cluster::new(3, |_| {});
    let leader = run_until_leader(&mut c);
    let other = c.nodes.keys().copied().find(|id| *id != leader).unwrap();
    c.partition(&[other], &c.nodes.keys().copied().filter(|id| *id != other).collect::<Vec<_>>());
    for _ in 0..60 {
        c.advance(100_000_000);
        c.stabilize();
    }
    let term = c.raft(leader).term();
    c.heal();
    for _ in 0..30 {
        c.advance(100_000_000);
        c.stabilize();
    }
    assert_eq!((c.leader(), c.raft(leader).term()), (Some(leader), term), "the healed node did not depose it");
}

/// §5.6: a fresh leader served reads before its first commit, from a state machine that could lag.
#[test]
fn seed6_reads_wait_for_the_leaders_first_commit_and_for_apply() {
    let mut c = Cluster::new(3, |config| {
        config.pre_vote = false;
        config.state_machine = true;
    });
    c.elect(N1);
    let write = c.append(N1, "x");
    c.stabilize();
    assert!(c.reply(N1, write).is_some());
    c.crash(N1);
    c.tick(N2);
    c.sync(N2, None);
    c.deliver(|m| m.to == N3);
    c.sync(N3, None);
    c.deliver(|m| m.to == N2);
    assert!(c.raft(N2).is_leader());
    let read = c.read(N2);
    c.deliver(|m| m.to == N3);
    c.sync(N3, None);
    c.deliver(|m| m.to == N2);
    assert!(c.reply(N2, read).is_none(), "no read before the new leader's blank entry commits");
    c.sync(N2, None);
    let expected = Response::Read { seq: Some(Seq(2)), response: Bytes::from_static(b"1") };
    assert_eq!(c.reply(N2, read), Some(&Ok(expected)), "the read sees the acknowledged write");
}

/// §5.7: a careless `groupFn` could accept disjoint quorums.
#[test]
fn seed7_custom_quorum_rules_are_checked_for_intersection() {
    let nodes = [N1, N2, N3, N4];
    let any_two: QuorumFn = Arc::new(|set: &[NodeId]| set.len() >= 2);
    let config = Config { quorum: Quorum::Custom(any_two), ..Config::new(N1, nodes) };
    assert!(matches!(config.validate(), Err(ConfigError::DisjointQuorums(..))));
    let cloud_a_and_b: QuorumFn =
        Arc::new(|set: &[NodeId]| set.iter().any(|id| id.0 <= 2) && set.iter().any(|id| id.0 > 2));
    let config = Config { quorum: Quorum::Custom(cloud_a_and_b), ..Config::new(N1, nodes) };
    assert!(matches!(config.validate(), Err(ConfigError::DisjointQuorums(..))), "{{1,3}} and {{2,4}}");
}

/// §5.8: votes were once granted regardless of log freshness.
#[test]
fn seed8_a_candidate_with_a_stale_log_gets_no_vote() {
    let mut c = Cluster::new(3, |config| {
        config.pre_vote = false;
        config.check_quorum = false;
    });
    c.elect(N1);
    c.append(N1, "x");
    c.stabilize();
    let stale = Message {
        from: N3,
        to: N2,
        term: Term(5),
        body: Body::Vote { last: Some(LogId::new(Term(1), Seq(0))), transfer: false },
    };
    c.network.clear();
    c.step(N2, Input::Message(stale));
    c.sync(N2, None);
    assert_eq!(c.network.pop_front().unwrap().body, Body::VoteResponse { granted: false });
}

/// §5.9: concurrent appends on the leader failed although their entries committed.
#[test]
fn seed9_concurrent_appends_all_succeed_with_distinct_seqs() {
    let mut c = Cluster::new(3, |_| {});
    let leader = run_until_leader(&mut c);
    let requests: Vec<_> = (0..5).map(|i| c.append(leader, &format!("{i}"))).collect();
    c.stabilize();
    let seqs: Vec<Seq> = requests
        .iter()
        .map(|r| match c.reply(leader, *r) {
            Some(Ok(Response::Appended { seq, .. })) => *seq,
            other => panic!("append failed: {other:?}"),
        })
        .collect();
    assert_eq!(seqs, (1..=5).map(Seq).collect::<Vec<_>>());
}

/// §5.10: a follower pruned after a silence was never re-admitted.
#[test]
fn seed10_a_silent_follower_is_readmitted_when_it_answers_again() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(N1);
    c.partition(&[N1], &[N3]);
    for _ in 0..30 {
        c.advance(100_000_000);
        c.stabilize();
    }
    assert_eq!(c.raft(N1).followers(c.now), vec![N2]);
    c.append(N1, "later");
    c.stabilize();
    c.heal();
    for _ in 0..10 {
        c.advance(100_000_000);
        c.stabilize();
    }
    assert_eq!(c.raft(N1).followers(c.now), vec![N2, N3]);
    assert_eq!(c.nodes[&N3].storage.entries().last().map(|e| e.payload.clone()), Some(Payload::Data("later".into())));
}

/// §5.11: a one-node cluster never elected itself; two nodes with quorum 1 never finished.
#[test]
fn seed11_a_single_node_elects_itself_and_commits() {
    let mut c = Cluster::new(1, |_| {});
    let leader = run_until_leader(&mut c);
    let request = c.append(leader, "alone");
    c.stabilize();
    assert!(matches!(c.reply(leader, request), Some(Ok(Response::Appended { seq: Seq(1), .. }))));
    let two = Config { quorum: Quorum::Count(1), ..Config::new(N1, [N1, N2]) };
    assert_eq!(two.validate(), Err(ConfigError::DisjointQuorums(vec![N1], vec![N2])));
    assert_eq!(c.raft(leader).role(), Role::Leader);
}

/// Seed §1.2 / §5.17: appending nothing was a ReferenceError; here it is a precise error.
#[test]
fn seed17_an_empty_batch_is_a_clear_error() {
    let mut c = Cluster::new(1, |_| {});
    let leader = run_until_leader(&mut c);
    let id = c.request_id();
    c.step(leader, Input::AppendBatch { id, data: Vec::new() });
    assert!(matches!(c.reply(leader, id), Some(Err(ClientError::Invalid(_)))));
}

/// Seed §5.32: bad bytes from a peer surfaced as an uncaught exception. Here extreme but
/// well-encoded values from a peer are refused or ignored; the node keeps working.
#[test]
fn extreme_values_from_a_peer_never_panic() {
    use tinyraftplus::core::AppendResult;
    let max = Seq::MAX;
    let top = Some(LogId::new(Term(u64::MAX), max));
    let blank = |seq| Entry { term: Term(u64::MAX), seq, payload: Payload::Blank };
    let bodies = vec![
        Body::Append { prev: top, entries: vec![], commit: Some(max), read_round: u64::MAX },
        Body::Append {
            prev: Some(LogId::new(Term(1), Seq(max.0 - 1))),
            entries: vec![blank(max)],
            commit: None,
            read_round: 0,
        },
        Body::Append { prev: None, entries: vec![blank(Seq(0))], commit: Some(max), read_round: 0 },
        Body::AppendResponse {
            read_round: u64::MAX,
            result: AppendResult::Accepted { matched: Some(max), catching_up: false },
            incarnation: u64::MAX,
        },
        Body::AppendResponse {
            read_round: 0,
            result: AppendResult::Rejected { rejected: max, hint: top },
            incarnation: 0,
        },
        Body::Vote { last: top, transfer: false },
        Body::PreVote { last: top },
    ];
    for body in bodies {
        for term in [0, 1, u64::MAX] {
            let mut c = Cluster::new(3, |config| config.pre_vote = false);
            c.elect(N1);
            for to in [N1, N2] {
                let from = if to == N1 { N2 } else { N1 };
                c.step(to, Input::Message(Message { from, to, term: Term(term), body: body.clone() }));
                c.stabilize();
            }
            c.advance(10_000_000_000);
            c.stabilize();
        }
    }
}
