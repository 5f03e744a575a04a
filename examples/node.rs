//! One node as its own process, over encrypted TCP: the multi-process test runs three of these,
//! and it is how a real deployment would start a node.
//!
//! ```text
//! cargo run --release --example node -- --id 1 --dir /tmp/n1 --key <64 hex digits> \
//!     --peer 1=127.0.0.1:9001 --peer 2=127.0.0.1:9002 --peer 3=127.0.0.1:9003
//! ```
//!
//! `--key` is the cluster's shared key. With per-node keys instead, give this node's private
//! key with `--node-key <64 hex digits>` and every node's public key with `--public ID=<hex>`.
//! It listens on its own `--peer` address. Commands on standard input, one per line:
//! `append TEXT`, `load` (append `<id>-<pid>-<n>` entries one after another until `stop`), `stop`,
//! `status`, `dump` (every committed entry), `transfer ID` (hand leadership to node ID; on the
//! leader), `add ID HOST:PORT` (a new node joins as a learner; the others' transports learn its
//! address from the configuration), `set ID,ID,...` (the voters become exactly these), `quit`.
//! It prints, one line each: `ready`, `leader ID term T`, `ack SEQ TEXT`, `fail TEXT: WHY`,
//! `warn TEXT`, `error TEXT`, `status ROLE LEADER TERM SEQ COMMIT member|catching-up`,
//! `entry SEQ TEXT`, `dumped`, `stopped`, `transferred ID`, `changed SEQ`.
//!
//! With `--blob`, the node has a state machine whose state is a block of bytes (an entry
//! `grow MIB` sets its size; the bytes are made as a snapshot is read, never held), and keeps
//! snapshots in its directory (written as fast as the disk goes): `snapshot` takes one
//! (`snapshot SEQ`), a restore prints `restored BYTES`, and `rss` prints the process's resident
//! memory and its peak so far, in KiB (`rss NOW PEAK`): the multi-process test sends a 1 GiB
//! snapshot between two processes this way.
//!
//! A node that joins a running cluster is started with every current node's `--peer` and its
//! own (its storage is new: it waits until the leader has added it and caught it up).

use bytes::Bytes;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tinyraftplus::core::{Config, Event, NodeId, Seq};
use tinyraftplus::driver::{RaftNode, StateMachine};
use tinyraftplus::log::{Encoder, FsLog, FsLogOptions, SnapshotStore};
use tinyraftplus::transport::{Security, TcpOptions, TcpTransport};

struct Args {
    id: NodeId,
    dir: std::path::PathBuf,
    security: Security,
    peers: BTreeMap<NodeId, SocketAddr>,
    blob: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut id, mut dir, mut key, mut peers) = (None, None, None, BTreeMap::new());
    let (mut node_key, mut public) = (None, BTreeMap::new());
    let mut blob = false;
    while let Some(flag) = args.next() {
        if flag == "--blob" {
            blob = true;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--id" => id = Some(NodeId(value.parse().map_err(|e| format!("--id: {e}"))?)),
            "--dir" => dir = Some(value.into()),
            "--key" => key = Some(hex_key(&value)?),
            "--node-key" => node_key = Some(hex_key(&value)?),
            "--public" => {
                let (peer, hex) = value.split_once('=').ok_or("--public takes ID=KEY")?;
                public.insert(NodeId(peer.parse().map_err(|e| format!("--public id: {e}"))?), hex_key(hex)?);
            }
            "--peer" => {
                let (peer, addr) = value.split_once('=').ok_or("--peer takes ID=ADDRESS")?;
                let peer = NodeId(peer.parse().map_err(|e| format!("--peer id: {e}"))?);
                peers.insert(peer, addr.parse().map_err(|e| format!("--peer address: {e}"))?);
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let id = id.ok_or("--id is required")?;
    if !peers.contains_key(&id) {
        return Err("--peer must give this node's own address too".into());
    }
    let security = match (key, node_key) {
        (Some(key), None) => Security::SharedKey(key),
        (None, Some(private)) => Security::NodeKeys { private, public },
        _ => return Err("give either --key or --node-key".into()),
    };
    Ok(Args { id, dir: dir.ok_or("--dir is required")?, security, peers, blob })
}

fn hex_key(text: &str) -> Result<[u8; 32], String> {
    let digits: Vec<u8> = text
        .bytes()
        .map(|b| (b as char).to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()
        .ok_or("a key: not hex")?;
    let mut key = [0u8; 32];
    if digits.len() != 64 {
        return Err("a key: 64 hex digits".into());
    }
    for (byte, pair) in key.iter_mut().zip(digits.chunks(2)) {
        *byte = pair[0] << 4 | pair[1];
    }
    Ok(key)
}

fn main() {
    if let Err(error) = run() {
        eprintln!("node: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse()?;
    let ids: Vec<NodeId> = args.peers.keys().copied().collect();
    let listen = args.peers[&args.id];
    let transport = TcpTransport::bind(args.id, listen, args.peers, args.security, TcpOptions::default())?;
    // A damaged log is cut before the damage and rejoins catching up: its peers rebuild it.
    let (log, repair) = FsLog::open_repairing(&args.dir, "log", FsLogOptions::default())?;
    if let Some(repair) = repair {
        eprintln!("node {}: log repaired, entries from seq {} dropped: {}", args.id, repair.from, repair.found);
    }
    let mut config = Config::new(args.id, ids);
    config.election_timeout = Duration::from_millis(500);
    config.ping_timeout = Duration::from_millis(500);
    config.append_timeout = Duration::from_secs(3);
    let node = Arc::new(match args.blob {
        true => {
            let mut store = SnapshotStore::new(&args.dir, "log", Encoder::XxHash);
            store.write_bytes_per_s = None;
            RaftNode::open_restoring(config, log, &store, transport, Box::new(Blob { size: 0 }))?
        }
        false => RaftNode::open(config, log, transport, None)?,
    });
    let events = node.events();
    std::thread::spawn(move || {
        for event in events {
            match event {
                Event::Change { leader: Some(leader), term, .. } => println!("leader {leader} term {term}"),
                Event::Warn(text) => println!("warn {text}"),
                Event::Error(text) => println!("error {text}"),
                _ => {}
            }
        }
    });
    println!("ready");
    let loading = Arc::new(AtomicBool::new(false));
    let mut loader: Option<std::thread::JoinHandle<()>> = None;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let (command, rest) = line.split_once(' ').unwrap_or((&line, ""));
        match command {
            "append" => match node.append(Bytes::from(rest.to_string())) {
                Ok((seq, _)) => println!("ack {seq} {rest}"),
                Err(error) => println!("fail {rest}: {error}"),
            },
            "transfer" => match rest.parse().map(NodeId) {
                Ok(to) => match node.transfer_leader(to) {
                    Ok(leader) => println!("transferred {leader}"),
                    Err(error) => println!("fail transfer {rest}: {error}"),
                },
                Err(_) => println!("fail transfer {rest}: not a node id"),
            },
            "add" => {
                // add ID ADDRESS: a learner the other nodes' transports learn to reach.
                let (id, address) = rest.split_once(' ').unwrap_or((rest, ""));
                match id.parse().map(NodeId) {
                    Ok(id) => match node.add_learner(id, Some(Bytes::from(address.to_string()))) {
                        Ok(seq) => println!("changed {seq}"),
                        Err(error) => println!("fail add {rest}: {error}"),
                    },
                    Err(_) => println!("fail add {rest}: not a node id"),
                }
            }
            "set" => {
                // set ID,ID,...: the voters become exactly these.
                let ids: Result<Vec<NodeId>, _> = rest.split(',').map(|id| id.trim().parse().map(NodeId)).collect();
                match ids {
                    Ok(ids) => match node.set_nodes(ids) {
                        Ok(seq) => println!("changed {seq}"),
                        Err(error) => println!("fail set {rest}: {error}"),
                    },
                    Err(_) => println!("fail set {rest}: not a list of node ids"),
                }
            }
            "load" if loader.is_none() => {
                loading.store(true, Ordering::SeqCst);
                let (node, loading) = (Arc::clone(&node), Arc::clone(&loading));
                loader = Some(std::thread::spawn(move || load(&node, &loading)));
            }
            "stop" => {
                loading.store(false, Ordering::SeqCst);
                if let Some(loader) = loader.take() {
                    let _ = loader.join();
                }
                println!("stopped");
            }
            "status" => {
                let s = node.status();
                let show = |seq: Option<Seq>| seq.map_or("none".to_string(), |s| s.to_string());
                let leader = s.leader.map_or("none".to_string(), |l| l.to_string());
                let member = if s.catching_up { "catching-up" } else { "member" };
                println!("status {:?} {leader} {} {} {} {member}", s.role, s.term, show(s.seq), show(s.commit));
            }
            "dump" => {
                let commit = node.status().commit;
                let entries = node.with_log(|log| {
                    log.iter(Seq(0))
                        .take_while(|e| e.as_ref().map_or(true, |e| Some(e.seq) <= commit))
                        .collect::<Result<Vec<_>, _>>()
                })?;
                for entry in entries {
                    let text =
                        entry.payload.data().map(|d| String::from_utf8_lossy(d).into_owned()).unwrap_or_default();
                    println!("entry {} {text}", entry.seq);
                }
                println!("dumped");
            }
            "snapshot" => match node.snapshot() {
                Ok(last) => println!("snapshot {}", last.seq),
                Err(error) => println!("fail snapshot: {error}"),
            },
            "rss" => {
                let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
                let kib = |key: &str| {
                    let line = status.lines().find(|l| l.starts_with(key)).unwrap_or("");
                    line.split_whitespace().nth(1).unwrap_or("0").to_string()
                };
                println!("rss {} {}", kib("VmRSS:"), kib("VmHWM:"));
            }
            "quit" => break,
            _ => println!("fail {line}: unknown command"),
        }
    }
    loading.store(false, Ordering::SeqCst);
    node.close();
    Ok(())
}

/// A state machine whose state is `size` bytes of a pattern (`grow MIB` entries set it), made
/// as a snapshot is read and counted as one is restored: snapshots of any size, no memory.
struct Blob {
    size: u64,
}

impl StateMachine for Blob {
    fn apply(&mut self, _first: Seq, entries: &[Option<Bytes>]) -> Result<Vec<Bytes>, String> {
        for entry in entries.iter().flatten() {
            let text = String::from_utf8_lossy(entry);
            if let Some(mib) = text.strip_prefix("grow ").and_then(|n| n.parse::<u64>().ok()) {
                self.size = mib << 20;
            }
        }
        Ok(vec![Bytes::new(); entries.len()])
    }

    fn read(&mut self, _seq: Option<Seq>, _command: &[u8]) -> Result<Bytes, String> {
        Ok(Bytes::from(self.size.to_string()))
    }

    fn snapshot(&mut self) -> Option<Result<Box<dyn std::io::Read + Send>, String>> {
        let pattern = tinyraftplus::testkit::Pattern::new(self.size);
        Some(Ok(Box::new(std::io::Read::chain(std::io::Cursor::new(self.size.to_le_bytes()), pattern))))
    }

    fn restore(&mut self, input: &mut dyn std::io::Read) -> Result<(), String> {
        let mut size = [0u8; 8];
        input.read_exact(&mut size).map_err(|e| e.to_string())?;
        let total = std::io::copy(input, &mut std::io::sink()).map_err(|e| e.to_string())?;
        if total != u64::from_le_bytes(size) {
            return Err(format!("{total} bytes, not {}", u64::from_le_bytes(size)));
        }
        self.size = total;
        println!("restored {total}");
        Ok(())
    }
}

/// Appends `<id>-<pid>-<n>` entries (unique across restarts) one after another while
/// `loading` holds.
fn load(node: &RaftNode, loading: &AtomicBool) {
    let mut n = 0u64;
    while loading.load(Ordering::SeqCst) {
        n += 1;
        let text = format!("{}-{}-{n}", node.id(), std::process::id());
        match node.append(Bytes::from(text.clone())) {
            Ok((seq, _)) => println!("ack {seq} {text}"),
            Err(error) => println!("fail {text}: {error}"),
        }
    }
}
