//! Scenario files: one behaviour per file in `tests/scenarios/`, each a list of commands with
//! the expected transcript below each (etcd raft's data-driven tests, toydb's golden scripts).
//!
//! ```text
//! # What this scenario shows, and how.
//! cluster 3 pre_vote=false
//! ----
//! ok
//!
//! campaign 1
//! ----
//! n1: send 1->2 t1 Vote last=none
//! ...
//! ```
//!
//! Run with `UPDATE_SCENARIOS=1 cargo test --test scenarios` to rewrite the expectations, then
//! review the diff. Commands:
//!
//! | command | effect |
//! |---|---|
//! | `cluster N [knob=value ...]` | nodes 1..=N (`fresh`: on new storage, catching up); knobs: `pre_vote`, `check_quorum`, `sm` (state machine), `quorum=K`, `groups=1,2/3,4`, `memory=K`, `rpc=K`, `inflight=K`, `apply_seq=K`, `append_timeout=MS`, `change_timeout=MS`, `stall=MS` |
//! | `config N [knob=value ...]` | only validates such a config and prints the verdict |
//! | `campaign ID` / `tick ID` | moves time to the node's deadline and ticks it |
//! | `advance MS` | moves time forward, ticking every node whose deadline passes |
//! | `run MS` | time passes on a live network (10 ms steps, all delivered); shows events and replies |
//! | `deliver [from=ID] [to=ID] [drop]` | delivers (or drops) the queued messages that match |
//! | `copy [from=ID] [to=ID]` / `replay` | stashes copies of matching queued messages / re-sends them |
//! | `sync ID... \| all` | makes nodes' writes durable (and those their completion releases) |
//! | `sync-one ID` | makes the node's oldest pending write durable |
//! | `stall ID` / `unstall ID` | `stabilize` and `run` leave the node's writes pending / sync them again |
//! | `stabilize` | syncs and delivers until nothing happens |
//! | `append ID TEXT`, `batch ID TEXT...`, `read ID` | client requests at a node |
//! | `partition IDS / IDS`, `cut FROM TO`, `heal` | cuts links both ways / one way, restores all |
//! | `crash ID`, `restart ID` | loses a node's memory and unsynced writes / restarts it from storage |
//! | `wipe ID`, `cut-log ID SEQ` | restarts a node on new storage / on storage cut from SEQ (catching up) |
//! | `lose-silently ID SEQ` | restarts a node on storage cut from SEQ that does not know it lost anything |
//! | `unreadable ID` | the node's loads of entries from storage fail from now on |
//! | `force-rejoin ID` | restarts a node with its catching-up flag cleared (an operator accepting a loss) |
//! | `status`, `log ID` | prints every node's state / a node's durable entries (and the log's first seq) |
//! | `add-node ID IDS` | starts a new node on new storage with IDS as its bootstrap configuration |
//! | `change ID set IDS \| add-learner ID \| promote ID \| remove ID` | a membership change asked of a node |
//! | `members` | prints each node's configuration in force |
//! | `snapshot ID` | a client asks the node for a snapshot (knobs `snapshot=K`, `keep=K`, `chunks=K` set the policy) |
//! | `snapshots` | prints each node's durable snapshots (and the one being received) |
//! | `remove-prefix ID SEQ [force]` | a client asks the node to remove its log's entries up to SEQ |
//! | `damage-snapshot ID` | crashes the node and damages its latest snapshot (the store skips it at open), then restarts it |

use bytes::Bytes;
use std::fmt::Write as _;
use std::path::Path;
use tinyraftplus::core::{Config, Input, MembershipChange, Message, NodeId, Quorum};
use tinyraftplus::testkit::Cluster;

struct Runner {
    cluster: Option<Cluster>,
    stash: Vec<Message>,
}

fn ids(list: &str) -> Vec<NodeId> {
    list.split(',').filter(|s| !s.is_empty()).map(|s| NodeId(s.trim().parse().expect("node id"))).collect()
}

fn configure(config: &mut Config, knobs: &[&str]) {
    for knob in knobs {
        let (key, value) = knob.split_once('=').unwrap_or((knob, "true"));
        match key {
            "pre_vote" => config.pre_vote = value.parse().expect("bool"),
            "check_quorum" => config.check_quorum = value.parse().expect("bool"),
            "sm" => config.state_machine = value.parse().expect("bool"),
            "quorum" => config.quorum = Quorum::Count(value.parse().expect("count")),
            "groups" => config.quorum = Quorum::Groups(value.split('/').map(ids).collect()),
            "priority" => {
                let pair =
                    |p: &str| p.split_once(':').map(|(id, n)| (NodeId(id.parse().expect("id")), n.parse().expect("n")));
                config.priority = value.split(',').map(|p| pair(p).expect("id:priority")).collect();
            }
            "memory" => config.memory_entries_max = value.parse().expect("count"),
            "rpc" => config.rpc_entries_max = value.parse().expect("count"),
            "inflight" => config.inflight_messages_max = value.parse().expect("count"),
            "append_timeout" => config.append_timeout = std::time::Duration::from_millis(value.parse().expect("ms")),
            "change_timeout" => config.change_timeout = std::time::Duration::from_millis(value.parse().expect("ms")),
            "stall" => {
                config.storage_stall_timeout = Some(std::time::Duration::from_millis(value.parse().expect("ms")))
            }
            "apply_seq" => config.apply_seq = Some(tinyraftplus::core::Seq(value.parse().expect("seq"))),
            "snapshot" => config.snapshot_entries = value.parse().expect("count"),
            "keep" => config.snapshot_keep_entries = value.parse().expect("count"),
            "chunks" => config.snapshot_chunks_inflight = value.parse().expect("count"),
            other => panic!("unknown knob {other}"),
        }
    }
}

fn matches(message: &Message, args: &[&str]) -> bool {
    args.iter().all(|arg| match arg.split_once('=') {
        Some(("from", id)) => message.from == NodeId(id.parse().expect("id")),
        Some(("to", id)) => message.to == NodeId(id.parse().expect("id")),
        _ => true,
    })
}

impl Runner {
    fn cluster(&mut self) -> &mut Cluster {
        self.cluster.as_mut().expect("a `cluster` command comes first")
    }

    fn run(&mut self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (command, args) = (words[0], &words[1..]);
        let node = |i: usize| NodeId(args[i].parse().expect("node id"));
        let mut extra = String::new();
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.transcript.clear();
        }
        match command {
            "cluster" => {
                let n: u64 = args[0].parse().expect("node count");
                let fresh = args[1..].contains(&"fresh");
                let knobs: Vec<&str> = args[1..].iter().copied().filter(|knob| *knob != "fresh").collect();
                let mut cluster = match fresh {
                    true => Cluster::new_fresh(n, |config| configure(config, &knobs)),
                    false => Cluster::new(n, |config| configure(config, &knobs)),
                };
                cluster.trace = true;
                self.cluster = Some(cluster);
            }
            "config" => {
                let n: u64 = args[0].parse().expect("node count");
                let mut config = Config::new(NodeId(1), (1..=n).map(NodeId));
                configure(&mut config, &args[1..]);
                match config.validate() {
                    Ok(()) => extra.push_str("valid\n"),
                    Err(error) => writeln!(extra, "rejected: {error}").unwrap(),
                }
            }
            "campaign" | "tick" => self.cluster().tick(node(0)),
            "advance" => {
                let millis: u64 = args[0].parse().expect("milliseconds");
                self.cluster().advance(millis * 1_000_000);
            }
            "run" => {
                // Time passes on a live network: 10 ms steps, everything delivered; only events
                // and replies are shown.
                let millis: u64 = args[0].parse().expect("milliseconds");
                let cluster = self.cluster();
                for _ in 0..millis / 10 {
                    cluster.advance(10_000_000);
                    cluster.stabilize();
                }
                cluster.transcript.retain(|line| line.contains(": event ") || line.contains(": reply "));
            }
            "deliver" => {
                let drop = args.contains(&"drop");
                let cluster = self.cluster();
                if drop {
                    let before = cluster.network.len();
                    cluster.network.retain(|m| !matches(m, args));
                    writeln!(extra, "dropped {}", before - cluster.network.len()).unwrap();
                } else {
                    cluster.deliver(|m| matches(m, args));
                }
            }
            "copy" => {
                let copies: Vec<Message> =
                    self.cluster().network.iter().filter(|m| matches(m, args)).cloned().collect();
                writeln!(extra, "copied {}", copies.len()).unwrap();
                self.stash.extend(copies);
            }
            "replay" => {
                let stash = std::mem::take(&mut self.stash);
                let cluster = self.cluster();
                for message in stash {
                    cluster.step(message.to, Input::Message(message));
                }
            }
            "sync" => {
                let cluster = self.cluster();
                let targets: Vec<NodeId> =
                    if args == ["all"] { cluster.nodes.keys().copied().collect() } else { ids(&args.join(",")) };
                for id in targets {
                    cluster.sync(id, None);
                }
            }
            "stall" => {
                self.cluster().stalled.insert(node(0));
            }
            "unstall" => {
                self.cluster().stalled.remove(&node(0));
            }
            "sync-one" => self.cluster().sync(node(0), Some(1)),
            "stabilize" => self.cluster().stabilize(),
            "append" => {
                let cluster = self.cluster();
                let id = cluster.request_id();
                cluster.step(node(0), Input::Append { id, data: Bytes::from(args[1..].join(" ")) });
            }
            "transfer" => {
                let cluster = self.cluster();
                let id = cluster.request_id();
                cluster.step(node(0), Input::TransferLeader { id, to: node(1) });
            }
            "add-node" => {
                // A new node on empty storage, with this bootstrap list: add-node 4 1,2,3,4
                let bootstrap = ids(args[1]);
                self.cluster().add_node(node(0), &bootstrap);
            }
            "change" => {
                // change LEADER set 1,2,4 | add-learner 4 | promote 4 | remove 2
                let change = match args[1] {
                    "set" => MembershipChange::SetNodes(ids(args[2])),
                    "add-learner" => MembershipChange::AddLearner { id: node(2), address: None },
                    "promote" => MembershipChange::Promote(node(2)),
                    "remove" => MembershipChange::Remove(node(2)),
                    other => panic!("unknown change {other}"),
                };
                self.cluster().change(node(0), change);
            }
            "members" => {
                let cluster = self.cluster();
                for (id, n) in &cluster.nodes {
                    let Some(raft) = &n.raft else { continue };
                    let seq = raft.membership_seq().map_or("bootstrap".into(), |seq| format!("at {seq}"));
                    let bootstrap = || {
                        let shown: Vec<String> = raft.nodes().iter().map(NodeId::to_string).collect();
                        format!("voters=[{}]", shown.join(","))
                    };
                    let configuration = raft.membership().map_or_else(bootstrap, |c| c.to_string());
                    let removed = if raft.is_removed() { " removed" } else { "" };
                    writeln!(extra, "n{id} {seq}: {configuration}{removed}").unwrap();
                }
            }
            "batch" => {
                let cluster = self.cluster();
                let id = cluster.request_id();
                let data = args[1..].iter().map(|s| Bytes::from(s.to_string())).collect();
                cluster.step(node(0), Input::AppendBatch { id, data });
            }
            "read" => {
                self.cluster().read(node(0));
            }
            "partition" => {
                let text = args.join(" ");
                let (a, b) = text.split_once('/').expect("partition A / B");
                let side = |s: &str| s.split_whitespace().map(|x| NodeId(x.parse().expect("id"))).collect::<Vec<_>>();
                self.cluster().partition(&side(a), &side(b));
            }
            "cut" => {
                self.cluster().cut.insert((node(0), node(1)));
            }
            "heal" => self.cluster().heal(),
            "crash" => self.cluster().crash(node(0)),
            "wipe" => self.cluster().wipe(node(0)),
            "force-rejoin" => self.cluster().force_rejoin(node(0)),
            "unreadable" => self.cluster().nodes.get_mut(&node(0)).expect("known node").unreadable = true,
            "cut-log" | "lose-silently" | "repair" => {
                let from = tinyraftplus::core::Seq(args[1].parse().expect("seq"));
                match command {
                    "cut-log" => self.cluster().cut_log(node(0), from),
                    "repair" => self.cluster().repair(node(0), from),
                    _ => self.cluster().lose_silently(node(0), from),
                }
            }
            "restart" => self.cluster().restart(node(0)),
            "snapshot" => {
                let id = self.cluster().request_id();
                self.cluster().step(node(0), Input::Snapshot { id });
            }
            "damage-snapshot" => self.cluster().damage_latest_snapshot(node(0)),
            "remove-prefix" => {
                let through = tinyraftplus::core::Seq(args[1].parse().expect("seq"));
                let (id, force) = (self.cluster().request_id(), args.get(2) == Some(&"force"));
                self.cluster().step(node(0), Input::RemovePrefix { id, through, force });
            }
            "snapshots" => {
                for (id, n) in &self.cluster().nodes {
                    let held: Vec<String> =
                        n.snapshots.iter().map(|(meta, bytes)| format!("{meta} {bytes:?}")).collect();
                    let partial =
                        n.partial.as_ref().map(|(meta, bytes)| format!(" partial {meta} {} bytes", bytes.len()));
                    writeln!(extra, "n{id}: [{}]{}", held.join(", "), partial.unwrap_or_default()).unwrap();
                }
            }
            "status" => {
                let cluster = self.cluster();
                for (id, n) in &cluster.nodes {
                    match &n.raft {
                        None => writeln!(extra, "n{id} crashed").unwrap(),
                        Some(raft) => {
                            let stranded = raft.stranded();
                            if !stranded.is_empty() {
                                writeln!(extra, "n{id} stranded followers: {stranded:?}").unwrap();
                            }
                            let last = raft.last().map_or("none".into(), |l| l.to_string());
                            let commit = raft.commit().map_or("none".into(), |c| c.to_string());
                            let vote = raft.hard_state().vote.map_or("none".into(), |v| v.to_string());
                            writeln!(
                                extra,
                                "n{id} {} t{} leader={} vote={vote} last={last} commit={commit}{}",
                                raft.role(),
                                raft.term(),
                                raft.leader().map_or("none".into(), |l| l.to_string()),
                                if raft.is_catching_up() { " catching-up" } else { "" },
                            )
                            .unwrap();
                        }
                    }
                }
            }
            "log" => {
                let cluster = self.cluster();
                let storage = &cluster.nodes[&node(0)].storage;
                let entries: Vec<String> = storage.entries().iter().map(|e| e.to_string()).collect();
                writeln!(extra, "first={} [{}]", storage.first(), entries.join(", ")).unwrap();
            }
            other => panic!("unknown command {other}"),
        }
        let mut out = String::new();
        if let Some(cluster) = self.cluster.as_mut() {
            for line in cluster.transcript.drain(..) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out.push_str(&extra);
        if out.is_empty() {
            out.push_str("ok\n");
        }
        out
    }
}

/// Runs one file; returns the file as it should be (commands with actual transcripts).
fn run_file(text: &str) -> String {
    let mut runner = Runner { cluster: None, stash: Vec::new() };
    let mut result = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            result.push_str(line);
            result.push('\n');
            continue;
        }
        // A command; skip its old expectation (from `----` to the next blank line).
        if lines.peek() == Some(&"----") {
            lines.next();
            while lines.peek().is_some_and(|l| !l.trim().is_empty()) {
                lines.next();
            }
        }
        result.push_str(line);
        result.push_str("\n----\n");
        result.push_str(&runner.run(line));
    }
    result
}

#[test]
fn scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let update = std::env::var_os("UPDATE_SCENARIOS").is_some();
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "txt"));
    files.sort();
    assert!(!files.is_empty(), "no scenario files in {}", dir.display());
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let actual = run_file(&text);
        if actual != text {
            if update {
                std::fs::write(path, &actual).unwrap();
            } else {
                let first = text.lines().zip(actual.lines()).position(|(a, b)| a != b).unwrap_or(0);
                failures.push(format!(
                    "{}: first difference at line {}\n  expected: {:?}\n  actual:   {:?}",
                    path.display(),
                    first + 1,
                    text.lines().nth(first),
                    actual.lines().nth(first)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "scenarios differ (UPDATE_SCENARIOS=1 rewrites):\n{}", failures.join("\n"));
    println!("{} scenario files", files.len());
}
