//! Property tests: random interleavings of delivery, reordering, loss, duplication, partial
//! fsyncs, timeouts, crashes and partitions on in-memory clusters of 1 to 5 nodes. After every
//! action the checker verifies Raft's safety properties (paper Figure 3):
//!
//! - election safety: at most one leader per term, across restarts;
//! - log matching: two durable logs with the same entry at a seq agree up to it;
//! - leader completeness: every leader holds every committed entry;
//! - state machine safety: no two nodes apply different entries at a seq;
//! - durability: every committed entry is durable on a quorum (so no acknowledged write is lost);
//! - terms never go backwards on a node's storage; commit never goes backwards on a running node;
//! - every append reply names committed entries with the client's payloads, and every read
//!   reflects every append acknowledged before it was issued.

use bytes::Bytes;
use proptest::prelude::*;
use std::collections::BTreeMap;
use tinyraftplus::core::{Entry, Event, Input, NodeId, Quorum, RequestId, Response, Role, Seq, Term};
use tinyraftplus::log::LogStore;
use tinyraftplus::testkit::Cluster;

#[derive(Clone, Debug)]
enum Action {
    Deliver(usize),
    Drop(usize),
    Duplicate(usize),
    Sync(u64, usize),
    Tick(u64),
    Advance(u64),
    Append(u64),
    Batch(u64, usize),
    Read(u64),
    Crash(u64),
    Restart(u64),
    Partition(u64),
    Heal,
    /// Every queued message to the node, as one step (`Raft::step_many`).
    DeliverAll(u64),
    /// Several single appends at the node, as one step.
    Burst(u64, usize),
    /// A leader transfer asked of the first node, to the second.
    Transfer(u64, u64),
    /// A membership change asked of the node: the voters become the nodes of the mask (bit
    /// `i` for node `i + 1`; folded into the cluster, never empty).
    Change(u64, u8),
}

fn action(nodes: u64) -> impl Strategy<Value = Action> {
    let node = 1..=nodes;
    prop_oneof![
        30 => any::<usize>().prop_map(Action::Deliver),
        3 => any::<usize>().prop_map(Action::Drop),
        3 => any::<usize>().prop_map(Action::Duplicate),
        18 => (node.clone(), 0..4usize).prop_map(|(n, c)| Action::Sync(n, c)),
        8 => node.clone().prop_map(Action::Tick),
        4 => (1..2000u64).prop_map(Action::Advance),
        10 => node.clone().prop_map(Action::Append),
        3 => (node.clone(), 1..5usize).prop_map(|(n, c)| Action::Batch(n, c)),
        5 => node.clone().prop_map(Action::Read),
        2 => node.clone().prop_map(Action::Crash),
        4 => node.clone().prop_map(Action::Restart),
        2 => (0..32u64).prop_map(Action::Partition),
        3 => Just(Action::Heal),
        4 => node.clone().prop_map(Action::DeliverAll),
        3 => (node.clone(), 2..6usize).prop_map(|(n, c)| Action::Burst(n, c)),
        2 => (node.clone(), node.clone()).prop_map(|(n, to)| Action::Transfer(n, to)),
        2 => (node.clone(), any::<u8>()).prop_map(|(n, mask)| Action::Change(n, mask)),
    ]
}

#[derive(Clone, Debug)]
struct Knobs {
    nodes: u64,
    pre_vote: bool,
    check_quorum: bool,
    state_machine: bool,
    small: bool,
}

fn knobs() -> impl Strategy<Value = Knobs> {
    (1..=5u64, any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(nodes, pre_vote, check_quorum, state_machine, small)| Knobs {
            nodes,
            pre_vote,
            check_quorum,
            state_machine,
            small,
        },
    )
}

/// What the checker remembers across the run.
#[derive(Default)]
struct Checker {
    leaders: BTreeMap<Term, NodeId>,
    committed: BTreeMap<Seq, Entry>,
    /// For each committed seq, the term of the node that first reported it committed: at least
    /// the term it was committed in (Leader Completeness binds leaders of later terms).
    commit_terms: BTreeMap<Seq, Term>,
    applied: BTreeMap<Seq, Entry>,
    durable_terms: BTreeMap<NodeId, Term>,
    commits: BTreeMap<NodeId, Option<Seq>>,
    applied_checked: BTreeMap<NodeId, usize>,
    replies_checked: BTreeMap<NodeId, usize>,
    appends: BTreeMap<RequestId, Vec<Bytes>>,
    /// For each read: the highest seq acknowledged to any client before it was issued.
    reads: BTreeMap<RequestId, Option<Seq>>,
    acknowledged: Option<Seq>,
    /// Every request: the node it was issued at, and whether that node crashed before replying.
    issued: BTreeMap<RequestId, (NodeId, bool)>,
    replies: BTreeMap<RequestId, usize>,
    /// For each leader transfer: the term of the node it was asked of.
    transfers: BTreeMap<RequestId, Term>,
    /// For each membership change: the voters asked for.
    changes: BTreeMap<RequestId, Vec<NodeId>>,
    /// How many of each node's events were read (leaderships between checks are seen there).
    events_checked: BTreeMap<NodeId, usize>,
}

impl Checker {
    fn check(&mut self, c: &Cluster) -> Result<(), String> {
        let ids: Vec<NodeId> = c.nodes.keys().copied().collect();
        for id in &ids {
            let node = &c.nodes[id];
            let durable_term = node.storage.hard_state().term;
            let seen = self.durable_terms.entry(*id).or_default();
            if durable_term < *seen {
                return Err(format!("n{id}: durable term went back from {seen} to {durable_term}"));
            }
            *seen = durable_term;
            let Some(raft) = node.raft.as_ref() else {
                self.commits.remove(id);
                continue;
            };
            let checked = self.events_checked.entry(*id).or_default();
            let led = node.events[(*checked).min(node.events.len())..].iter().filter_map(|event| match event {
                Event::Change { role: Role::Leader, term, .. } => Some(*term),
                _ => None,
            });
            for term in led.chain(raft.is_leader().then(|| raft.term())) {
                let leader = *self.leaders.entry(term).or_insert(*id);
                if leader != *id {
                    return Err(format!("two leaders in term {term}: n{leader} and n{id}"));
                }
            }
            *checked = node.events.len();
            let before = self.commits.get(id).copied().flatten();
            let commit = raft.commit();
            if commit < before {
                return Err(format!("n{id}: commit went back from {before:?} to {commit:?}"));
            }
            self.commits.insert(*id, commit);
            if let Some(commit) = commit {
                let from = Seq::after(before).0;
                for seq in from..=commit.0 {
                    let seq = Seq(seq);
                    let entry = raft
                        .entry(seq)
                        .cloned()
                        .or_else(|| node.storage.entries().get(seq.0 as usize).cloned())
                        .ok_or_else(|| format!("n{id}: committed seq {seq} is neither in memory nor stored"))?;
                    if raft.term_at(seq) != Some(entry.term) {
                        return Err(format!("n{id}: stored entry {seq} disagrees with the log's terms"));
                    }
                    match self.committed.get(&seq) {
                        Some(known) if *known != entry => {
                            return Err(format!("n{id}: committed {entry} but {known} was committed"))
                        }
                        _ => self.committed.insert(seq, entry),
                    };
                    self.commit_terms.entry(seq).or_insert(raft.term());
                }
            }
        }
        // Leader completeness (Raft §5.4): leaders of terms after an entry's commit hold it.
        for id in &ids {
            let Some(raft) = c.nodes[id].raft.as_ref().filter(|r| r.is_leader()) else { continue };
            for (seq, entry) in &self.committed {
                if raft.term() > self.commit_terms[seq] && raft.term_at(*seq) != Some(entry.term) {
                    return Err(format!("leader n{id} of term {} lacks committed {entry}", raft.term()));
                }
            }
        }
        // Committed entries are durable on a quorum (of the initial configuration: checked
        // while no change was asked); durable logs match.
        let all: Vec<NodeId> = ids.clone();
        for (seq, entry) in self.committed.iter().filter(|_| self.changes.is_empty()) {
            let holds = |id: NodeId| c.nodes[&id].storage.entries().get(seq.0 as usize) == Some(entry);
            if !Quorum::Majority.is_quorum(&all, holds) {
                return Err(format!("committed {entry} is not durable on a quorum"));
            }
        }
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                let (la, lb) = (&c.nodes[a].storage.entries(), &c.nodes[b].storage.entries());
                let common = la.len().min(lb.len());
                if let Some(top) = (0..common).rev().find(|s| la[*s].term == lb[*s].term) {
                    if la[..=top] != lb[..=top] {
                        return Err(format!("logs of n{a} and n{b} share {} but differ below", la[top]));
                    }
                }
            }
        }
        // State machine safety.
        for id in &ids {
            let applied = &c.nodes[id].state.applied;
            let checked = self.applied_checked.entry(*id).or_default();
            if applied.len() < *checked {
                *checked = 0; // Restarted with a fresh state machine.
            }
            for entry in &applied[*checked..] {
                match self.applied.get(&entry.seq) {
                    Some(known) if known != entry => return Err(format!("n{id} applied {entry}, another {known}")),
                    _ => self.applied.insert(entry.seq, entry.clone()),
                };
                if self.committed.get(&entry.seq) != Some(entry) {
                    return Err(format!("n{id} applied {entry}, which is not committed"));
                }
            }
            *checked = applied.len();
        }
        // Client replies.
        for id in &ids {
            let replies = &c.nodes[id].replies;
            let checked = self.replies_checked.entry(*id).or_default();
            for (request, result) in &replies[*checked..] {
                let count = self.replies.entry(*request).or_default();
                *count += 1;
                if *count > 1 {
                    return Err(format!("request {request} got a second reply: {result:?}"));
                }
                match result {
                    Ok(Response::Transferred { to }) => {
                        // The new leader led a term after the one the request was asked in (or,
                        // asked to hand over to itself, that one).
                        let asked = self.transfers.get(request).copied();
                        let itself = self.issued.get(request).is_some_and(|(node, _)| node == to);
                        let led = self.leaders.iter().any(|(term, leader)| {
                            leader == to && (Some(*term) > asked || (itself && Some(*term) == asked))
                        });
                        if asked.is_none() || !led {
                            return Err(format!("transfer {request} answered {to}, which led no later term"));
                        }
                    }
                    Ok(Response::Changed { seq }) => {
                        // The configuration it names is committed, with the voters asked for.
                        let asked = self.changes.get(request).ok_or("a change reply to no change")?;
                        let entry = self
                            .committed
                            .get(seq)
                            .ok_or(format!("change {request} answered at {seq}, not committed"))?;
                        let configuration = match &entry.payload {
                            tinyraftplus::core::Payload::Config(bytes) => {
                                tinyraftplus::core::codec::decode_configuration(bytes).ok()
                            }
                            _ => None,
                        };
                        match configuration {
                            Some(tinyraftplus::core::Configuration::Single(only)) if only.voters() == &asked[..] => {}
                            other => {
                                return Err(format!("change {request} to {asked:?} answered with {other:?} at {seq}"))
                            }
                        }
                    }
                    Ok(other @ (Response::Snapshot { .. } | Response::PrefixRemoved { .. })) => {
                        return Err(format!("request {request} answered {other}; nothing of the kind was asked"));
                    }
                    Ok(Response::Appended { seq, .. }) => {
                        let data = &self.appends[request];
                        for (offset, payload) in data.iter().enumerate() {
                            let at = Seq(seq.0 + offset as u64);
                            let stored = self.committed.get(&at).and_then(|e| e.payload.data());
                            if stored != Some(payload) {
                                return Err(format!("append {request} acknowledged at {at} but not committed there"));
                            }
                            self.acknowledged = self.acknowledged.max(Some(at));
                        }
                    }
                    Ok(Response::Read { seq, response }) => {
                        let floor = self.reads[request];
                        if *seq < floor {
                            return Err(format!("read {request} at {seq:?} misses a write acknowledged at {floor:?}"));
                        }
                        if !response.is_empty() {
                            let upto = seq.map_or(0, |s| s.0 + 1);
                            let count = (0..upto)
                                .filter(|s| self.committed.get(&Seq(*s)).is_some_and(|e| e.payload.data().is_some()))
                                .count();
                            if response.as_ref() != count.to_string().as_bytes() {
                                return Err(format!(
                                    "read {request} at {seq:?} answered {response:?}, expected {count}"
                                ));
                            }
                        }
                    }
                    Err(_) => {}
                }
            }
            *checked = replies.len();
        }
        Ok(())
    }
}

fn run(knobs: &Knobs, actions: &[Action]) -> Result<(), String> {
    let mut c = Cluster::new(knobs.nodes, |config| {
        config.pre_vote = knobs.pre_vote;
        config.check_quorum = knobs.check_quorum;
        config.state_machine = knobs.state_machine;
        if knobs.small {
            config.memory_entries_max = 3;
            config.rpc_entries_max = 2;
            config.inflight_messages_max = 2;
            config.apply_entries_max = 2;
        }
    });
    let mut checker = Checker::default();
    let mut counter = 0u64;
    for (step, action) in actions.iter().enumerate() {
        let running = |c: &Cluster, n: u64| c.nodes[&NodeId(n)].raft.is_some();
        match action {
            Action::Deliver(k) | Action::Drop(k) | Action::Duplicate(k) if !c.network.is_empty() => {
                let index = k % c.network.len();
                match action {
                    Action::Deliver(_) => {
                        let message = c.network.remove(index).expect("index in range");
                        let to = message.to;
                        if !c.cut.contains(&(message.from, to)) && c.nodes[&to].raft.is_some() {
                            c.step(to, Input::Message(message));
                        }
                    }
                    Action::Drop(_) => drop(c.network.remove(index)),
                    _ => {
                        let copy = c.network[index].clone();
                        c.network.push_back(copy);
                    }
                }
            }
            Action::Sync(n, count) => c.sync(NodeId(*n), Some(*count)),
            Action::Tick(n) if running(&c, *n) => c.tick(NodeId(*n)),
            Action::Advance(ms) => c.advance(ms * 1_000_000),
            Action::Append(n) | Action::Batch(n, _) if running(&c, *n) => {
                let size = if let Action::Batch(_, size) = action { *size } else { 1 };
                let id = c.request_id();
                let data: Vec<Bytes> = (0..size)
                    .map(|i| {
                        counter += 1;
                        Bytes::from(format!("n{n}-{counter}-{i}"))
                    })
                    .collect();
                checker.appends.insert(id, data.clone());
                checker.issued.insert(id, (NodeId(*n), false));
                // Both client paths: a single append and a batch.
                if let [one] = data.as_slice() {
                    c.step(NodeId(*n), Input::Append { id, data: one.clone() });
                } else {
                    c.step(NodeId(*n), Input::AppendBatch { id, data });
                }
            }
            Action::DeliverAll(n) if running(&c, *n) => {
                let to = NodeId(*n);
                let (mine, rest): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut c.network).into_iter().partition(|m| m.to == to);
                c.network = rest.into();
                let inputs = mine.into_iter().filter(|m| !c.cut.contains(&(m.from, to))).map(Input::Message).collect();
                c.step_many(to, inputs);
            }
            Action::Burst(n, count) if running(&c, *n) => {
                let mut inputs = Vec::new();
                for _ in 0..*count {
                    let id = c.request_id();
                    counter += 1;
                    let data = Bytes::from(format!("n{n}-{counter}-0"));
                    checker.appends.insert(id, vec![data.clone()]);
                    checker.issued.insert(id, (NodeId(*n), false));
                    inputs.push(Input::Append { id, data });
                }
                c.step_many(NodeId(*n), inputs);
            }
            Action::Transfer(n, to) if running(&c, *n) => {
                let id = c.request_id();
                checker.issued.insert(id, (NodeId(*n), false));
                checker.transfers.insert(id, c.nodes[&NodeId(*n)].raft.as_ref().map_or(Term(0), |r| r.term()));
                c.step(NodeId(*n), Input::TransferLeader { id, to: NodeId(*to) });
            }
            Action::Change(n, mask) if running(&c, *n) => {
                let mut voters: Vec<NodeId> =
                    (1..=knobs.nodes).filter(|i| mask & (1 << (i - 1)) != 0).map(NodeId).collect();
                if voters.is_empty() {
                    voters.push(NodeId(*n));
                }
                let id = c.change(NodeId(*n), tinyraftplus::core::MembershipChange::SetNodes(voters.clone()));
                checker.issued.insert(id, (NodeId(*n), false));
                checker.changes.insert(id, voters);
            }
            Action::Read(n) if running(&c, *n) => {
                let id = c.request_id();
                checker.reads.insert(id, checker.acknowledged);
                checker.issued.insert(id, (NodeId(*n), false));
                c.step(NodeId(*n), Input::Read { id, command: Bytes::new() });
            }
            Action::Crash(n) if running(&c, *n) => {
                c.crash(NodeId(*n));
                for (request, (node, lost)) in checker.issued.iter_mut() {
                    if *node == NodeId(*n) && !checker.replies.contains_key(request) {
                        *lost = true;
                    }
                }
            }
            Action::Restart(n) if !running(&c, *n) => c.restart(NodeId(*n)),
            Action::Partition(mask) => {
                let ids: Vec<NodeId> = c.nodes.keys().copied().collect();
                let (a, b): (Vec<NodeId>, Vec<NodeId>) = ids.iter().partition(|id| mask & (1 << (id.0 - 1)) != 0);
                c.partition(&a, &b);
            }
            Action::Heal => c.heal(),
            _ => {}
        }
        checker.check(&c).map_err(|e| format!("after action {step} ({action:?}): {e}"))?;
    }
    // Heal everything and let time pass on a live network: a leader emerges and every request
    // whose node did not crash since gets exactly one reply. Without pre-vote, a node with a
    // shorter log can keep deposing a better candidate's timer (about even odds per election
    // round), so the network gets 60 s: some 24 rounds.
    c.heal();
    for n in 1..=knobs.nodes {
        if c.nodes[&NodeId(n)].raft.is_none() {
            c.restart(NodeId(n));
        }
    }
    for round in 0..600 {
        c.advance(100_000_000);
        c.stabilize();
        if round % 10 == 9 {
            checker.check(&c).map_err(|e| format!("while settling: {e}"))?;
        }
    }
    if c.leader().is_none() {
        let states: Vec<String> = c.nodes.values().filter_map(|n| n.raft.as_ref().map(|r| format!("{r:?}"))).collect();
        return Err(format!("no leader after 60 s on a healed network: {}", states.join("; ")));
    }
    for (request, (node, lost)) in &checker.issued {
        if !lost && !checker.replies.contains_key(request) {
            return Err(format!("request {request} at n{node} never got a reply"));
        }
    }
    Ok(())
}

proptest! {
    // 3,000 cases take about two seconds; PROPTEST_CASES=20000 finds rarer bugs (it catches a
    // vote sent before it is durable, which 3,000 cases usually miss).
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn random_interleavings_keep_raft_safe(
        knobs in knobs(),
        actions in (1..=5u64).prop_flat_map(|n| prop::collection::vec(action(n), 1..400)),
    ) {
        // Actions name nodes 1..=5; those above the cluster's size are folded into it.
        let actions: Vec<Action> = actions.into_iter().map(|a| fold(a, knobs.nodes)).collect();
        if let Err(error) = run(&knobs, &actions) {
            prop_assert!(false, "{:?}: {}", knobs, error);
        }
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000)
}

fn fold(action: Action, nodes: u64) -> Action {
    let f = |n: u64| (n - 1) % nodes + 1;
    match action {
        Action::Sync(n, c) => Action::Sync(f(n), c),
        Action::Tick(n) => Action::Tick(f(n)),
        Action::Append(n) => Action::Append(f(n)),
        Action::Batch(n, c) => Action::Batch(f(n), c),
        Action::Read(n) => Action::Read(f(n)),
        Action::Crash(n) => Action::Crash(f(n)),
        Action::Restart(n) => Action::Restart(f(n)),
        Action::DeliverAll(n) => Action::DeliverAll(f(n)),
        Action::Burst(n, c) => Action::Burst(f(n), c),
        Action::Transfer(n, to) => Action::Transfer(f(n), f(to)),
        Action::Change(n, mask) => Action::Change(f(n), mask),
        other => other,
    }
}

/// A long run where everything eventually gets delivered: the cluster must also make progress.
#[test]
fn a_healthy_cluster_commits_every_append() {
    let mut c = Cluster::new(5, |_| {});
    while c.leader().is_none() {
        c.advance(100_000_000);
        c.stabilize();
    }
    let mut checker = Checker::default();
    for i in 0..200 {
        let node = NodeId(i % 5 + 1);
        let id = c.request_id();
        let data = vec![Bytes::from(format!("{i}"))];
        checker.appends.insert(id, data.clone());
        c.step(node, Input::AppendBatch { id, data });
        c.stabilize();
        checker.check(&c).unwrap();
        assert!(matches!(c.reply(node, id), Some(Ok(_))), "append {i} at {node} got {:?}", c.reply(node, id));
    }
}

/// Appends handled in one step go to each follower in one message and to storage in one write.
#[test]
fn appends_stepped_together_travel_together() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(NodeId(1));
    let inputs: Vec<Input> =
        (0..100).map(|i| Input::Append { id: RequestId(1000 + i), data: Bytes::from("x") }).collect();
    let before = c.network.len();
    c.trace = true;
    c.step_many(NodeId(1), inputs);
    let appends: Vec<_> = c.network.iter().skip(before).collect();
    assert_eq!(appends.len(), 2, "one message per follower: {appends:?}");
    for message in appends {
        let tinyraftplus::core::Body::Append { entries, .. } = &message.body else { panic!("{message:?}") };
        assert_eq!(entries.len(), 100);
    }
    let writes = c.transcript.iter().filter(|line| line.contains(": write ")).count();
    assert_eq!(writes, 1, "{:?}", c.transcript);
    c.stabilize();
    let replies = &c.nodes[&NodeId(1)].replies;
    assert_eq!(replies.iter().filter(|(id, result)| id.0 >= 1000 && result.is_ok()).count(), 100);
}
