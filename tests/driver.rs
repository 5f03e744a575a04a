//! The blocking driver on real files and the in-process network: three nodes replicate, answer
//! with their state machine, survive a restart of the whole cluster, and report events.

use bytes::Bytes;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tinyraftplus::core::{ClientError, Config, Event, NodeId, Quorum, Seq};
use tinyraftplus::driver::{InProcessNetwork, RaftNode, StateMachine};
use tinyraftplus::log::{FsLog, FsLogOptions};

/// Sums the numbers appended; fails its first `failures` applies.
struct Sum {
    total: u64,
    failures: Arc<AtomicU32>,
}

impl StateMachine for Sum {
    fn apply(&mut self, _first: Seq, entries: &[Option<Bytes>]) -> Result<Vec<Bytes>, String> {
        if self.failures.load(Ordering::Relaxed) > 0 {
            self.failures.fetch_sub(1, Ordering::Relaxed);
            return Err("not now".into());
        }
        let mut responses = Vec::new();
        for entry in entries {
            let n: u64 = entry.as_ref().and_then(|d| std::str::from_utf8(d).ok()?.parse().ok()).unwrap_or(0);
            self.total += n;
            responses.push(Bytes::from(self.total.to_string()));
        }
        Ok(responses)
    }

    fn read(&mut self, _seq: Option<Seq>, _command: &[u8]) -> Result<Bytes, String> {
        Ok(Bytes::from(self.total.to_string()))
    }
}

fn fast(id: NodeId, ids: &[NodeId]) -> Config {
    let mut config = Config::new(id, ids.to_vec());
    // Shorter than the defaults for a quick test, long enough that a loaded machine (slow
    // fsyncs, busy cores) does not churn leaders mid-request.
    config.election_timeout = Duration::from_millis(1000);
    config.ping_timeout = Duration::from_millis(1000);
    config
}

/// An append as a client makes it while leadership moves: tried again (until 30 s have passed)
/// when it was not executed or its outcome is unknown (`NoLeader`, `NotLeader`,
/// `LeaderChanged`, `Timeout`), which the API allows during an election or a hand-over. An
/// entry may then be appended twice; the seq returned is the one of the attempt that worked.
fn append_retrying(node: &RaftNode, data: &'static str) -> Seq {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match node.append(Bytes::from(data)) {
            Ok((seq, _)) => return seq,
            Err(
                ClientError::NoLeader
                | ClientError::NotLeader { .. }
                | ClientError::LeaderChanged
                | ClientError::Timeout,
            ) if std::time::Instant::now() < deadline => {}
            Err(error) => panic!("append of {data:?}: {error:?}"),
        }
    }
}

/// A hand-over as an operator makes it: tried again (until 30 s have passed) when it reports
/// `TransferFailed`, which the API allows when the target does not win within an election
/// timeout (a loaded machine can delay its campaign that long). Any other failure panics.
fn transfer_retrying(node: &RaftNode, to: NodeId) -> NodeId {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match node.transfer_leader(to) {
            Err(ClientError::TransferFailed { .. }) if std::time::Instant::now() < deadline => {}
            // The target won after this node gave up waiting: the hand-over happened.
            Err(ClientError::NotLeader { leader: Some(leader) }) if leader == to => return to,
            answer => return answer.unwrap_or_else(|error| panic!("transfer to {to}: {error:?}")),
        }
    }
}

fn cluster(dir: &std::path::Path, failures: &Arc<AtomicU32>, quorum: Quorum) -> Vec<RaftNode> {
    let network = InProcessNetwork::new();
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    ids.iter()
        .map(|id| {
            let mut config = fast(*id, &ids);
            config.quorum = quorum.clone();
            let log = FsLog::open(dir, &format!("n{id}"), FsLogOptions::default()).unwrap();
            // Only node 1's state machine fails (when told to).
            let failures = if *id == NodeId(1) { Arc::clone(failures) } else { Arc::new(AtomicU32::new(0)) };
            let machine = Sum { total: 0, failures };
            RaftNode::open(config, log, network.clone(), Some(Box::new(machine))).unwrap()
        })
        .collect()
}

/// Three nodes without a state machine, each config changed by `tune`.
fn without_state_machine(dir: &std::path::Path, tune: impl Fn(&mut Config)) -> Vec<RaftNode> {
    let network = InProcessNetwork::new();
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    ids.iter()
        .map(|id| {
            let mut config = fast(*id, &ids);
            tune(&mut config);
            let log = FsLog::open(dir, &format!("n{id}"), FsLogOptions::default()).unwrap();
            RaftNode::open(config, log, network.clone(), None).unwrap()
        })
        .collect()
}

#[test]
fn three_nodes_replicate_answer_reads_and_keep_everything_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let failures = Arc::new(AtomicU32::new(0));
    let nodes = cluster(dir.path(), &failures, Quorum::Count(3));
    for node in &nodes {
        assert!(node.await_leader(Duration::from_secs(30)).is_some());
    }
    let mut last = None;
    for (i, node) in nodes.iter().enumerate() {
        let (seq, total) = node.append(Bytes::from((i + 1).to_string())).unwrap();
        assert!(last < Some(seq), "seqs grow");
        last = Some(seq);
        assert_eq!(total, Some(Bytes::from(["1", "3", "6"][i])), "the running sum");
    }
    let (first, totals) = nodes[1].append_batch(vec![Bytes::from("10"), Bytes::from("20")]).unwrap();
    assert_eq!(first, Seq(last.unwrap().0 + 1));
    assert_eq!(totals, [Bytes::from("16"), Bytes::from("36")]);
    assert_eq!(nodes[2].read(Bytes::from("total")).unwrap().1, Bytes::from("36"));
    for node in &nodes {
        assert_eq!(node.head().unwrap(), Some(Bytes::from("20")), "full replication: every node has it");
    }
    for node in &nodes {
        node.close();
    }
    drop(nodes);
    // The whole cluster restarts from its files; state machines start from zero and re-apply.
    let nodes = cluster(dir.path(), &failures, Quorum::Majority);
    for node in &nodes {
        assert!(node.await_leader(Duration::from_secs(30)).is_some());
    }
    let (seq, total) = nodes[0].append(Bytes::from("4")).unwrap();
    assert!(seq.0 > first.0 + 1, "the log went on");
    assert_eq!(total, Some(Bytes::from("40")), "every committed entry was applied again");
}

#[test]
fn events_report_leadership_and_commits_and_a_failing_state_machine_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let failures = Arc::new(AtomicU32::new(0));
    let nodes = cluster(dir.path(), &failures, Quorum::Majority);
    let events = nodes[0].events();
    let leader = nodes[0].await_leader(Duration::from_secs(30)).unwrap();
    failures.store(2, Ordering::Relaxed);
    let (seq, total) = nodes[0].append(Bytes::from("5")).unwrap();
    assert_eq!(total, Some(Bytes::from("5")), "the leader applied it");
    // Node 1 applies it too (maybe after the reply, as a follower): its failing state machine
    // reports errors, then takes the entries again and succeeds.
    let mut seen: Vec<Event> = Vec::new();
    while !seen.contains(&Event::Apply(seq)) {
        seen.push(events.recv_timeout(Duration::from_secs(30)).expect("node 1 applies the entry"));
    }
    assert!(seen.iter().any(|e| matches!(e, Event::Commit(_))), "{seen:?}");
    assert!(seen.iter().any(|e| matches!(e, Event::Error(why) if why.contains("not now"))), "{seen:?}");
    assert!(seen.iter().any(|e| matches!(e, Event::Change { leader: Some(l), .. } if *l == leader)), "{seen:?}");
    assert_eq!(nodes[0].status().leader, Some(leader));
}

#[test]
fn a_leader_whose_log_write_stalls_reports_it_and_steps_down_until_the_write_completes() {
    let dir = tempfile::tempdir().unwrap();
    let nodes =
        without_state_machine(dir.path(), |config| config.storage_stall_timeout = Some(Duration::from_millis(300)));
    let leader = nodes[0].await_leader(Duration::from_secs(30)).unwrap();
    let stalled = &nodes[(leader.0 - 1) as usize];
    let events = stalled.events();
    std::thread::scope(|scope| {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (holding, locked) = std::sync::mpsc::channel::<()>();
        // The leader's disk is stuck while its log is held (as a hung device would leave it).
        scope.spawn(move || {
            stalled.with_log(|_| {
                holding.send(()).unwrap();
                held.recv().unwrap();
            })
        });
        locked.recv().unwrap();
        // The followers' copies commit the entry even though the leader's own write hangs.
        let (seq, _) = stalled.append(Bytes::from("during the stall")).unwrap();
        let error = loop {
            match events.recv_timeout(Duration::from_secs(30)).expect("the stall is reported") {
                Event::Error(text) if text.contains("storage stalled") => break text,
                _ => {}
            }
        };
        assert!(error.contains("not durable"), "{error}");
        // It stepped down, and another node leads while its disk hangs.
        let others: Vec<&RaftNode> = nodes.iter().filter(|n| n.id() != leader).collect();
        let elected = |s: &tinyraftplus::driver::Status| s.leader.is_some_and(|l| l != leader);
        assert!(others[0].await_status(Duration::from_secs(30), elected).is_some(), "another node leads");
        assert_ne!(stalled.status().role, tinyraftplus::core::Role::Leader);
        let (later, _) = others[0].append(Bytes::from("elsewhere")).unwrap();
        assert!(later > seq);
        release.send(()).unwrap();
    });
    loop {
        match events.recv_timeout(Duration::from_secs(30)).expect("the recovery is reported") {
            Event::Warn(text) if text.contains("storage recovered") => break,
            _ => {}
        }
    }
    assert!(stalled.await_commit(Seq(3), Duration::from_secs(30)), "the recovered node catches up");
}

/// An error's causes can be walked (`source()`), as `anyhow` and `eyre` do, down to the OS's
/// error: a log directory that is a file fails to open, with `AlreadyExists` at the bottom.
#[test]
fn errors_name_their_cause_down_to_the_os_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let error = FsLog::open(&file, "log", FsLogOptions::default()).map(drop).unwrap_err();
    let error = tinyraftplus::driver::DriverError::Log(error);
    let mut chain = vec![error.to_string()];
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(&error);
    let mut bottom = None;
    while let Some(next) = cause {
        chain.push(next.to_string());
        bottom = next.downcast_ref::<std::io::Error>().map(std::io::Error::kind).or(bottom);
        cause = next.source();
    }
    assert!(chain.len() >= 3, "driver error, log error, io error: {chain:?}");
    assert_eq!(bottom, Some(std::io::ErrorKind::AlreadyExists), "{chain:?}");
}

/// The drivers take any log store: three nodes on `MemLog` replicate and apply as on files.
#[test]
fn the_blocking_driver_runs_on_a_memory_log() {
    use tinyraftplus::log::MemLog;
    let network = InProcessNetwork::new();
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let nodes: Vec<RaftNode<MemLog>> = ids
        .iter()
        .map(|id| {
            let machine = Sum { total: 0, failures: Arc::new(AtomicU32::new(0)) };
            RaftNode::open(fast(*id, &ids), MemLog::new(), network.clone(), Some(Box::new(machine))).unwrap()
        })
        .collect();
    for node in &nodes {
        assert!(node.await_leader(Duration::from_secs(30)).is_some());
    }
    for (i, node) in nodes.iter().enumerate() {
        assert_eq!(node.append(Bytes::from("5")).unwrap().1, Some(Bytes::from((5 * (i + 1)).to_string())));
    }
    let (seq, _) = nodes[0].append(Bytes::from("0")).unwrap();
    for node in &nodes {
        assert!(node.await_commit(seq, Duration::from_secs(30)));
        assert_eq!(node.with_log(|log| log.entries().len() as u64), seq.0 + 1, "every node holds every entry");
    }
}

#[test]
fn a_leaders_answer_comes_after_its_status_shows_the_commit() {
    use tinyraftplus::log::MemLog;
    let network = InProcessNetwork::new();
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let nodes: Vec<RaftNode<MemLog>> =
        ids.iter().map(|id| RaftNode::open(fast(*id, &ids), MemLog::new(), network.clone(), None).unwrap()).collect();
    let leader = nodes[0].await_leader(Duration::from_secs(30)).expect("a leader");
    let leader = &nodes[leader.0 as usize - 1];
    // The answer leaves the node loop after the status is updated: read right after it, the
    // status already has the entry and its commit (before, this failed within 20 appends).
    for i in 0..300 {
        let (seq, _) = leader.append(Bytes::from(i.to_string())).unwrap();
        let status = leader.status();
        assert!(status.commit >= Some(seq) && status.seq >= Some(seq), "append {i}: {seq:?}, then {status:?}");
    }
}

#[test]
fn leadership_is_handed_over_on_request_and_appends_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), &Arc::new(AtomicU32::new(0)), Quorum::Majority);
    let leader = nodes[0].await_leader(Duration::from_secs(30)).expect("a leader");
    let at = |id: NodeId| &nodes[id.0 as usize - 1];
    nodes[0].append(Bytes::from("1")).unwrap();
    // A follower refuses, naming the leader.
    let follower = [1, 2, 3].map(NodeId).into_iter().find(|id| *id != leader).unwrap();
    let refused = at(follower).transfer_leader(leader).unwrap_err();
    assert_eq!(refused, tinyraftplus::core::ClientError::NotLeader { leader: Some(leader) });
    // Twice around the cluster: each time the target leads, and appends go on.
    let mut current = leader;
    for round in 0..2 {
        let target = NodeId(current.0 % 3 + 1);
        assert_eq!(transfer_retrying(at(current), target), target, "round {round}");
        let led = at(target).await_leader(Duration::from_secs(10));
        assert_eq!(led, Some(target));
        assert!(at(target).status().role == tinyraftplus::core::Role::Leader);
        let (_, total) = at(current).append(Bytes::from("1")).unwrap();
        assert_eq!(total, Some(Bytes::from((round + 2).to_string())), "forwarded to the new leader");
        current = target;
    }
}

#[test]
fn the_node_of_highest_priority_ends_up_leading() {
    let dir = tempfile::tempdir().unwrap();
    let network = InProcessNetwork::new();
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let open = |id: NodeId| {
        let mut config = fast(id, &ids);
        config.priority = vec![(NodeId(3), 10)];
        let log = FsLog::open(dir.path(), &format!("n{id}"), FsLogOptions::default()).unwrap();
        RaftNode::open(config, log, network.clone(), None).unwrap()
    };
    let mut nodes: Vec<RaftNode> = ids.iter().map(|id| open(*id)).collect();
    assert!(nodes[0].await_leader(Duration::from_secs(30)).is_some());
    // Appends may meet a hand-over to node 3, or the election after it stops.
    append_retrying(&nodes[0], "x");
    // Node 3 stops; nodes 1 and 2 go on (one of them leads), then it comes back: without its
    // priority it would never lead a cluster this calm.
    nodes[2].close();
    nodes.pop();
    let seq = append_retrying(&nodes[0], "while 3 is down");
    assert!(nodes[0].await_commit(seq, Duration::from_secs(30)));
    assert_ne!(nodes[0].status().leader, Some(NodeId(3)));
    nodes.push(open(ids[2]));
    // The leader hands over to node 3 once it has caught up (waits for the condition, bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while nodes.iter().any(|n| n.status().leader != Some(NodeId(3))) {
        assert!(std::time::Instant::now() < deadline, "node 3 never led: {:?}", nodes[0].status());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(nodes[2].status().role, tinyraftplus::core::Role::Leader);
    let seq = append_retrying(&nodes[1], "y");
    // The leader's status shows each follower's progress: both reach `y` (waits for it, bounded).
    while nodes[2].status().matched != [(NodeId(1), Some(seq)), (NodeId(2), Some(seq))] {
        assert!(std::time::Instant::now() < deadline, "progress: {:?}", nodes[2].status().matched);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(nodes[0].status().matched.is_empty(), "a follower shows none");
}

#[test]
fn without_a_state_machine_the_log_prefix_is_removed_on_request_and_only_committed_entries() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = without_state_machine(dir.path(), |_| {});
    let leader = nodes[0].await_leader(Duration::from_secs(30)).expect("a leader");
    let leader = &nodes[leader.0 as usize - 1];
    let (seq, _) = leader.append_batch((0..50).map(|i| Bytes::from(i.to_string())).collect()).unwrap();
    let last = Seq(seq.0 + 49);
    for node in &nodes {
        assert!(node.await_commit(last, Duration::from_secs(10)));
    }
    let past = leader.remove_prefix(Seq(last.0 + 1), false).unwrap_err();
    assert!(matches!(past, tinyraftplus::core::ClientError::Invalid(_)), "{past}");
    // Every voter holds the entries: nothing forces it. The log starts after them, and goes on.
    assert_eq!(leader.remove_prefix(Seq(30), false), Ok(Seq(31)));
    let (next, _) = leader.append(Bytes::from("after")).unwrap();
    assert_eq!(next, Seq(last.0 + 1));
    assert!(leader.status().stranded.is_empty());
}

#[test]
fn the_drivers_count_their_steps_writes_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = without_state_machine(dir.path(), |_| {});
    let leader = nodes[0].await_leader(Duration::from_secs(30)).expect("a leader");
    let leader = &nodes[(leader.0 - 1) as usize];
    let before = leader.stats();
    for i in 0..5 {
        leader.append(Bytes::from(format!("entry {i}"))).unwrap();
    }
    let answered = leader.stats();
    assert!(answered.answered >= before.answered + 5, "{before:?} {answered:?}");
    assert!(answered.answer_ns > before.answer_ns && answered.step_ns > before.step_ns, "{answered:?}");
    // A leader may commit on its followers' acknowledgements before its own write is reported:
    // once it is closed, every write is.
    for node in &nodes {
        node.close();
    }
    let after = leader.stats();
    assert!(after.writes_done >= before.writes_done + 5, "each append is one write at least: {after:?}");
    assert!(after.write_round_ns > before.write_round_ns && after.entries >= before.entries + 5, "{after:?}");
    // The queues between the threads: each write waited for the disk thread, each report and
    // each follower's acknowledgement for the node loop.
    assert!(after.disk_writes >= before.disk_writes + 5 && after.disk_queue_ns > before.disk_queue_ns, "{after:?}");
    assert!(after.reports > before.reports && after.report_wait_ns > before.report_wait_ns, "{after:?}");
    assert!(after.messages >= before.messages + 5 && after.message_wait_ns > before.message_wait_ns, "{after:?}");
}
