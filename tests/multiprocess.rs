//! Three nodes as separate OS processes (`examples/node.rs`) over encrypted TCP on loopback,
//! under a write load from every node: the leader is killed with SIGKILL and restarted; every
//! write acknowledged to a client is still in the log afterwards, at its seq, and the cluster
//! keeps committing. A process with the wrong key is refused, and garbage sent to a node's
//! port does not stop it. Leadership is handed over between processes on request. A 1 GiB
//! snapshot is streamed from one process to another with their memory bounded, and resumes
//! after the receiver is killed halfway.

mod common;

use common::nodes::{free_addrs, node_binary};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// The tests take turns: a node restarting on its port while another test picks "free" ports
/// (bound, then let go) could find its port taken.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One node process and the lines it prints.
struct Proc {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// The last lines read, for a failure's message.
    recent: std::collections::VecDeque<String>,
}

impl Proc {
    fn start(id: u64, dir: &Path, key: &str, peers: &BTreeMap<u64, SocketAddr>) -> Proc {
        Proc::start_with(id, dir, key, peers, &[])
    }

    fn start_with(id: u64, dir: &Path, key: &str, peers: &BTreeMap<u64, SocketAddr>, flags: &[&str]) -> Proc {
        let mut command = Command::new(node_binary());
        command.args(["--id", &id.to_string(), "--dir", dir.to_str().unwrap(), "--key", key]);
        command.args(flags);
        for (peer, addr) in peers {
            command.args(["--peer", &format!("{peer}={addr}")]);
        }
        let mut child =
            command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("the node example is built");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let mut proc = Proc { child, stdin, lines, recent: Default::default() };
        proc.expect(|line| line == "ready");
        proc
    }

    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").unwrap();
    }

    /// Waits for a line that `wanted` picks; every line seen is also offered to `seen`.
    fn expect(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!(
                    "node {} printed no expected line in {WAIT:?}; its last lines: {:?}",
                    self.child.id(),
                    self.recent
                )
            };
            if self.recent.len() == 20 {
                self.recent.pop_front();
            }
            self.recent.push_back(line.clone());
            if wanted(&line) {
                return line;
            }
        }
    }

    /// Every line printed so far.
    fn drain(&mut self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

/// Acknowledged writes: seq -> text.
fn acks(lines: &[String], into: &mut BTreeMap<u64, String>) {
    for line in lines {
        if let Some(rest) = line.strip_prefix("ack ") {
            let (seq, text) = rest.split_once(' ').unwrap();
            let previous = into.insert(seq.parse().unwrap(), text.to_string());
            assert!(previous.is_none_or(|p| p == text), "two acknowledged writes at seq {seq}");
        }
    }
}

/// Waits until no node is catching up (see `members` in `tests/chaos.rs`: a new cluster whose
/// leader is lost before every node voted again waits for that leader).
fn members(procs: &mut BTreeMap<u64, Proc>) {
    let deadline = Instant::now() + WAIT;
    for proc in procs.values_mut() {
        loop {
            proc.send("status");
            if proc.expect(|line| line.starts_with("status ")).ends_with(" member") {
                break;
            }
            assert!(Instant::now() < deadline, "a node still catching up after {WAIT:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn leader(procs: &mut BTreeMap<u64, Proc>) -> u64 {
    // Ask every node; the leader is whoever a node names in its status as itself.
    loop {
        for (id, proc) in procs.iter_mut() {
            proc.send("status");
            let status = proc.expect(|line| line.starts_with("status "));
            if status.starts_with("status Leader ") {
                return *id;
            }
        }
    }
}

/// Three node processes under `key`, each having announced a leader: their directory, their
/// addresses and the processes.
fn cluster(key: &str) -> (tempfile::TempDir, BTreeMap<u64, SocketAddr>, BTreeMap<u64, Proc>) {
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_addrs(3);
    let mut procs: BTreeMap<u64, Proc> =
        (1..=3).map(|id| (id, Proc::start(id, &dir.path().join(format!("n{id}")), key, &addrs))).collect();
    for proc in procs.values_mut() {
        proc.expect(|line| line.starts_with("leader "));
    }
    (dir, addrs, procs)
}

#[test]
fn acknowledged_writes_survive_sigkill_of_the_leader_and_the_cluster_goes_on() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let key = "6b".repeat(32);
    let (dir, addrs, mut procs) = cluster(&key);
    let mut acked = BTreeMap::new();
    for proc in procs.values_mut() {
        proc.send("load");
    }
    let until = |procs: &mut BTreeMap<u64, Proc>, acked: &mut BTreeMap<u64, String>, count: usize| {
        let mut logs: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        while acked.len() < count {
            for (id, proc) in procs.iter_mut() {
                let line = proc.expect(|line| line.starts_with("ack ") || line.starts_with("fail "));
                let lines: Vec<String> = std::iter::once(line).chain(proc.drain()).collect();
                acks(&lines, acked);
                logs.entry(*id).or_default().extend(lines);
            }
        }
        logs
    };
    until(&mut procs, &mut acked, 300);
    members(&mut procs);
    // SIGKILL the leader mid-load: no chance to flush or close anything.
    let killed = leader(&mut procs);
    let mut dead = procs.remove(&killed).unwrap();
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    // Everything it printed before it died (the reader ends at the pipe's end).
    acks(&dead.lines.iter().collect::<Vec<_>>(), &mut acked);
    let before = acked.len();
    until(&mut procs, &mut acked, before + 300);
    // It restarts from its files, rejoins, and its own appends commit again.
    let mut back = Proc::start(killed, &dir.path().join(format!("n{killed}")), &key, &addrs);
    back.send("load");
    let mut restarted = BTreeMap::new();
    while restarted.is_empty() {
        let line = back.expect(|line| line.starts_with("ack "));
        acks(&[line], &mut restarted);
    }
    procs.insert(killed, back);

    // A process with the wrong key, claiming to be node 2, is refused by node 1 (or 3).
    let mut rogue_peers = addrs.clone();
    rogue_peers.insert(2, free_addrs(1)[&1]);
    let target = if killed == 1 { 3 } else { 1 };
    let mut rogue = Proc::start(2, &dir.path().join("rogue"), &"00".repeat(32), &rogue_peers);
    procs.get_mut(&target).unwrap().expect(|line| line.starts_with("warn ") && line.contains("handshake failed"));
    rogue.child.kill().unwrap();
    rogue.child.wait().unwrap();
    // Garbage to a node's port.
    let mut garbage = TcpStream::connect(addrs[&target]).unwrap();
    garbage.write_all(&[0, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]).unwrap();
    procs.get_mut(&target).unwrap().expect(|line| line.starts_with("warn ") && line.contains("connection from"));
    drop(garbage);

    let before = acked.len();
    until(&mut procs, &mut acked, before + 100);
    for proc in procs.values_mut() {
        proc.send("stop");
    }
    for proc in procs.values_mut() {
        let lines: Vec<String> = {
            let mut lines = Vec::new();
            loop {
                let line = proc.expect(|_| true);
                if line == "stopped" {
                    break lines;
                }
                lines.push(line);
            }
        };
        acks(&lines, &mut acked);
    }
    acks(&restarted.iter().map(|(s, t)| format!("ack {s} {t}")).collect::<Vec<_>>(), &mut acked);
    // Every acknowledged write is committed on every node, at its seq.
    let newest = *acked.keys().last().unwrap();
    for (id, proc) in procs.iter_mut() {
        let mut entries = BTreeMap::new();
        loop {
            proc.send("dump");
            entries.clear();
            loop {
                let line = proc.expect(|line| line.starts_with("entry ") || line == "dumped");
                let Some(rest) = line.strip_prefix("entry ") else { break };
                let (seq, text) = rest.split_once(' ').unwrap_or((rest, ""));
                entries.insert(seq.parse::<u64>().unwrap(), text.to_string());
            }
            if entries.contains_key(&newest) {
                break;
            }
        }
        for (seq, text) in &acked {
            assert_eq!(entries.get(seq), Some(text), "node {id}: acknowledged write at seq {seq} is missing");
        }
    }
    assert!(acked.len() >= 700, "{} writes acknowledged", acked.len());
    for proc in procs.values_mut() {
        proc.send("quit");
        proc.child.wait().unwrap();
    }
}

/// Failover as a client sees it: from SIGKILL of the leader to the first write acknowledged
/// through each surviving node, over ten kills (each survivor appends in a loop meanwhile).
#[test]
fn failover_after_sigkill_of_the_leader_reaches_every_survivor_promptly() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let key = "5a".repeat(32);
    let (dir, addrs, mut procs) = cluster(&key);
    let start = |id: u64| Proc::start(id, &dir.path().join(format!("n{id}")), &key, &addrs);
    for proc in procs.values_mut() {
        proc.send("load");
    }
    members(&mut procs);
    let (mut samples, mut kills) = (Vec::new(), 0);
    while samples.len() < 20 && kills < 20 {
        kills += 1;
        for proc in procs.values_mut() {
            proc.expect(|line| line.starts_with("ack "));
        }
        let killed = leader(&mut procs);
        let mut dead = procs.remove(&killed).unwrap();
        let old = format!("leader {killed} ");
        // Leadership may have moved since the status said who led: then this kill measures
        // nothing (the survivors announced their new leader before it).
        let moved =
            procs.values_mut().any(|p| p.drain().iter().any(|l| l.starts_with("leader ") && !l.starts_with(&old)));
        dead.child.kill().unwrap();
        let killed_at = Instant::now();
        dead.child.wait().unwrap();
        for proc in procs.values_mut().filter(|_| !moved) {
            proc.expect(|line| line.starts_with("leader ") && !line.starts_with(&old));
            proc.expect(|line| line.starts_with("ack "));
            samples.push(killed_at.elapsed());
        }
        let mut back = start(killed);
        back.expect(|line| line.starts_with("leader "));
        back.send("load");
        procs.insert(killed, back);
    }
    assert!(samples.len() >= 20, "{} samples in {kills} kills", samples.len());
    samples.sort();
    let (median, worst) = (samples[samples.len() / 2], samples[samples.len() - 1]);
    println!("failover over {} kill/survivor samples: median {median:?}, worst {worst:?}", samples.len());
    for proc in procs.values_mut() {
        proc.send("stop");
        proc.expect(|line| line == "stopped");
        proc.send("quit");
        proc.child.wait().unwrap();
    }
    // The append timeout is 3 s: a survivor that waited it out would show it here.
    assert!(median < Duration::from_secs(3), "median failover {median:?}");
}

#[test]
fn leadership_is_handed_over_between_processes_on_request() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (_dir, _addrs, mut procs) = cluster(&"6b".repeat(32));
    members(&mut procs);
    for _ in 0..2 {
        let from = leader(&mut procs);
        let to = from % 3 + 1;
        let proc = procs.get_mut(&from).unwrap();
        proc.send(&format!("transfer {to}"));
        // Its answer, past the other lines it prints meanwhile (the leader change, events).
        let answer = proc.expect(|line| line.starts_with("transferred ") || line.starts_with("fail transfer"));
        assert_eq!(answer, format!("transferred {to}"));
        let target = procs.get_mut(&to).unwrap();
        target.send("append after-transfer");
        target.expect(|line| line.starts_with("ack ") && line.ends_with(" after-transfer"));
    }
    for proc in procs.values_mut() {
        proc.send("quit");
        proc.child.wait().unwrap();
    }
}

#[test]
fn a_dead_node_is_replaced_over_tcp_and_the_others_learn_its_address() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let key = "5c".repeat(32);
    let (dir, addrs, mut procs) = cluster(&key);
    members(&mut procs);
    let first = leader(&mut procs);
    procs.get_mut(&first).unwrap().send("append before");
    procs.get_mut(&first).unwrap().expect(|line| line.starts_with("ack ") && line.ends_with(" before"));
    // A follower dies for good.
    let dead = (1..=3).find(|id| *id != first).unwrap();
    let mut gone = procs.remove(&dead).unwrap();
    gone.child.kill().unwrap();
    gone.child.wait().unwrap();
    // A new machine: empty directory, every current node's address and its own. The others
    // know nothing of it until the configuration that adds it gives them its address.
    let new_addr = free_addrs(1)[&1];
    let mut peers = addrs.clone();
    peers.insert(4, new_addr);
    procs.insert(4, Proc::start(4, &dir.path().join("n4"), &key, &peers));
    let leader_id = leader(&mut procs);
    let keep = (1..=3).find(|id| *id != dead && *id != leader_id).unwrap();
    let leader = procs.get_mut(&leader_id).unwrap();
    leader.send(&format!("add 4 {new_addr}"));
    let added = leader.expect(|line| line.starts_with("changed ") || line.starts_with("fail add"));
    assert!(added.starts_with("changed "), "{added}");
    leader.send(&format!("set {leader_id},{keep},4"));
    let set = leader.expect(|line| line.starts_with("changed ") || line.starts_with("fail set"));
    assert!(set.starts_with("changed "), "{set}");
    leader.send("append after");
    let ack = leader.expect(|line| line.starts_with("ack ") && line.ends_with(" after"));
    let seq: u64 = ack.split(' ').nth(1).unwrap().parse().unwrap();
    // The new node has every committed entry, the one written before it existed included.
    let new_node = procs.get_mut(&4).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        new_node.send("dump");
        let mut entries = BTreeMap::new();
        loop {
            let line = new_node.expect(|line| line.starts_with("entry ") || line == "dumped");
            if line == "dumped" {
                break;
            }
            let (at, text) = line["entry ".len()..].split_once(' ').unwrap_or((&line["entry ".len()..], ""));
            entries.insert(at.parse::<u64>().unwrap(), text.to_string());
        }
        if entries.get(&seq).is_some_and(|text| text == "after") {
            assert!(entries.values().any(|text| text == "before"), "{entries:?}");
            break;
        }
        assert!(Instant::now() < deadline, "node 4 never held seq {seq}: {entries:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for proc in procs.values_mut() {
        proc.send("quit");
        proc.child.wait().unwrap();
    }
}

/// A node's resident memory and its peak so far, in KiB.
fn rss(proc: &mut Proc) -> (u64, u64) {
    proc.send("rss");
    let line = proc.expect(|line| line.starts_with("rss "));
    let numbers: Vec<u64> = line.split_whitespace().skip(1).map(|n| n.parse().unwrap()).collect();
    (numbers[0], numbers[1])
}

/// The size of the snapshot being received in `dir`, if one is.
fn partial_size(dir: &Path) -> Option<u64> {
    let entries = std::fs::read_dir(dir).ok()?;
    let part = entries.filter_map(Result::ok).find(|e| e.file_name().to_string_lossy().ends_with(".snap-part"))?;
    part.metadata().ok().map(|m| m.len())
}

#[test]
fn a_one_gib_snapshot_streams_between_processes_in_bounded_memory_and_resumes_after_the_receiver_is_killed() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let key = "42".repeat(32);
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_addrs(3);
    let node_dir = |id: u64| dir.path().join(format!("n{id}"));
    let start = |id: u64| Proc::start_with(id, &node_dir(id), &key, &addrs, &["--blob"]);
    let mut procs: BTreeMap<u64, Proc> = (1..=3).map(|id| (id, start(id))).collect();
    members(&mut procs);
    let leader = leader(&mut procs);
    let idle_leader = rss(procs.get_mut(&leader).unwrap()).0;
    // The state grows to 1 GiB after a first, small snapshot: once the second is taken, the
    // leader's log no longer holds what the first covers, and a new node needs a snapshot.
    let proc = procs.get_mut(&leader).unwrap();
    for size in ["1", "1024"] {
        proc.send(&format!("append grow {size}"));
        proc.expect(|line| line.starts_with("ack "));
        proc.send("snapshot");
        proc.expect(|line| line.starts_with("snapshot "));
    }
    // A follower loses its disk and comes back empty: it is sent the 1 GiB snapshot.
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let mut old = procs.remove(&follower).unwrap();
    old.child.kill().unwrap();
    old.child.wait().unwrap();
    std::fs::remove_dir_all(node_dir(follower)).unwrap();
    let mut receiver = start(follower);
    let idle_receiver = rss(&mut receiver).0;
    // Killed once half of it is durable; restarted, it takes the rest from there.
    let deadline = Instant::now() + WAIT;
    while partial_size(&node_dir(follower)).unwrap_or(0) < 512 << 20 {
        assert!(Instant::now() < deadline, "the snapshot does not arrive");
        std::thread::sleep(Duration::from_millis(20));
    }
    let peak_before_kill = rss(&mut receiver).1;
    receiver.child.kill().unwrap();
    receiver.child.wait().unwrap();
    let kept = partial_size(&node_dir(follower)).unwrap();
    let mut receiver = start(follower);
    let idle_restarted = rss(&mut receiver).0;
    // The partial snapshot is never started over: it only grows until it is installed.
    let (mut smallest, mut restored) = (u64::MAX, None);
    let deadline = Instant::now() + WAIT;
    while restored.is_none() {
        assert!(Instant::now() < deadline, "the snapshot was not installed");
        if let Some(size) = partial_size(&node_dir(follower)) {
            smallest = smallest.min(size);
        }
        restored = receiver.drain().into_iter().find(|line| line.starts_with("restored "));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(restored.unwrap(), format!("restored {}", 1u64 << 30));
    assert!(smallest >= kept - (1 << 20), "resumed from {kept} bytes, not from the start (saw {smallest})");
    let peak_receiver = rss(&mut receiver).1;
    let peak_leader = rss(procs.get_mut(&leader).unwrap()).1;
    eprintln!(
        "rss KiB: leader idle {idle_leader} peak {peak_leader}; receiver idle {idle_receiver} peak before kill \
         {peak_before_kill}, restarted idle {idle_restarted} peak {peak_receiver}; resumed from {kept} bytes"
    );
    let bound = 64 << 10; // 64 MiB, in KiB.
    assert!(peak_leader - idle_leader < bound, "the leader's memory grew {} KiB", peak_leader - idle_leader);
    assert!(
        peak_before_kill - idle_receiver < bound,
        "the receiver's memory grew {} KiB",
        peak_before_kill - idle_receiver
    );
    assert!(
        peak_receiver - idle_restarted < bound,
        "the receiver's memory grew {} KiB",
        peak_receiver - idle_restarted
    );
    for proc in procs.values_mut().chain([&mut receiver]) {
        proc.send("quit");
    }
}
