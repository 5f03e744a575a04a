//! Attacks on a live TCP cluster, by strangers without the key (loopback only, bounded in time
//! and connections): slow handshakes that hold every handshake slot, and a recorded first
//! handshake message replayed. The cluster must keep committing, a node that starts during the
//! attack must get through, and no established connection may be displaced.

use bytes::Bytes;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tinyraftplus::core::{Config, Event, NodeId};
use tinyraftplus::driver::RaftNode;
use tinyraftplus::log::{FsLog, FsLogOptions};
use tinyraftplus::transport::{Keypair, Security, TcpOptions, TcpTransport};

const WAIT: Duration = Duration::from_secs(30);
const KEY: [u8; 32] = [7; 32];

fn options() -> TcpOptions {
    TcpOptions { handshakes_max: 4, handshake_timeout: Duration::from_secs(2), ..TcpOptions::default() }
}

/// Node `id` of three, listening on `listener`, reaching the others at `peers`.
fn node(dir: &std::path::Path, id: NodeId, listener: TcpListener, peers: BTreeMap<NodeId, SocketAddr>) -> RaftNode {
    secure_node(dir, id, listener, peers, Security::SharedKey(KEY))
}

fn secure_node(
    dir: &std::path::Path,
    id: NodeId,
    listener: TcpListener,
    peers: BTreeMap<NodeId, SocketAddr>,
    security: Security,
) -> RaftNode {
    let transport = TcpTransport::with_listener(id, listener, peers, security, options()).unwrap();
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut config = Config::new(id, ids);
    config.election_timeout = Duration::from_millis(500);
    config.ping_timeout = Duration::from_millis(500);
    let log = FsLog::open(dir, &format!("n{id}"), FsLogOptions::default()).unwrap();
    RaftNode::open(config, log, transport, None).unwrap()
}

fn listeners() -> (Vec<TcpListener>, BTreeMap<NodeId, SocketAddr>) {
    let listeners: Vec<TcpListener> = (0..3).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let addrs = listeners.iter().enumerate().map(|(i, l)| (NodeId(i as u64 + 1), l.local_addr().unwrap())).collect();
    (listeners, addrs)
}

/// Appends through `node` for `span`; returns how many were acknowledged.
fn appends_during(node: &RaftNode, span: Duration) -> usize {
    let start = Instant::now();
    let mut done = 0;
    while start.elapsed() < span {
        if node.append(Bytes::from_static(b"under attack")).is_ok() {
            done += 1;
        }
    }
    done
}

/// Connections to `target` that each send one byte every 100 ms (a handshake that would take
/// seconds), reconnecting when closed, until `stop`.
fn slow_loris(target: SocketAddr, connections: usize, stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    (0..connections)
        .map(|_| {
            let stop = Arc::clone(stop);
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < WAIT {
                    let Ok(mut stream) = TcpStream::connect(target) else { continue };
                    // A length prefix of 48, then the message a byte at a time.
                    let mut bytes = vec![0u8, 48];
                    bytes.resize(50, 0xab);
                    for byte in bytes {
                        if stop.load(Ordering::Relaxed) || stream.write_all(&[byte]).is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect()
}

/// Binds `addr` again once the transport that held it has let it go.
fn rebind(addr: SocketAddr) -> TcpListener {
    let start = Instant::now();
    loop {
        match TcpListener::bind(addr) {
            Ok(listener) => return listener,
            Err(error) if start.elapsed() > WAIT => panic!("cannot bind {addr} again: {error}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[test]
fn slow_handshakes_do_not_keep_a_restarting_node_out() {
    let dir = tempfile::tempdir().unwrap();
    let (listeners, addrs) = listeners();
    let mut nodes: Vec<RaftNode> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, l)| node(dir.path(), NodeId(i as u64 + 1), l, addrs.clone()))
        .collect();
    let leader = nodes[0].await_leader(WAIT).expect("a new cluster elects a leader");
    // A follower goes down; the two others are a quorum.
    let index = nodes.iter().position(|n| n.id() != leader).unwrap();
    let restarting = nodes.remove(index);
    let (id, addr) = (restarting.id(), addrs[&restarting.id()]);
    restarting.close();
    drop(restarting);
    let leader = nodes.iter().find(|n| n.id() == leader).unwrap();
    let before = appends_during(leader, Duration::from_secs(1));
    let stop = Arc::new(AtomicBool::new(false));
    let others: Vec<SocketAddr> = nodes.iter().map(|n| addrs[&n.id()]).collect();
    let attackers: Vec<_> = others.into_iter().flat_map(|addr| slow_loris(addr, 8, &stop)).collect();
    std::thread::sleep(Duration::from_millis(500)); // Every handshake slot is taken.
    let started = Instant::now();
    let joining = node(dir.path(), id, rebind(addr), addrs.clone());
    // Its append is forwarded to the leader over a connection it dials during the attack.
    let appended = joining.append(Bytes::from_static(b"from the new node"));
    let joined_after = started.elapsed();
    let during = appends_during(leader, Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        attacker.join().unwrap();
    }
    let after = appends_during(leader, Duration::from_secs(1));
    println!(
        "appends/s before {before}, during {during}, after {after}; node 3 got through in {} ms",
        joined_after.as_millis()
    );
    let (seq, _) = appended.expect("the node that started during the attack reached the leader");
    assert!(joining.await_commit(seq, WAIT));
    assert!(during > 0 && after > 0, "the cluster kept committing");
}

/// Forwards connections to `target`, recording the first Noise message each client sends; a
/// side that closes closes the other.
fn recording_proxy(target: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&recorded);
    std::thread::spawn(move || {
        for client in listener.incoming().take(16) {
            let Ok(mut client) = client else { continue };
            let Ok(mut server) = TcpStream::connect(target) else { continue };
            let (mut client_back, mut server_back) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server_back, &mut client_back);
                let _ = client_back.shutdown(std::net::Shutdown::Both);
            });
            let record = Arc::clone(&record);
            std::thread::spawn(move || {
                // The first Noise message: a 2-byte length, then that many bytes.
                let mut length = [0u8; 2];
                if client.read_exact(&mut length).is_err() {
                    return;
                }
                let mut first = vec![0u8; u16::from_be_bytes(length) as usize];
                if client.read_exact(&mut first).is_err() {
                    return;
                }
                let mut message = length.to_vec();
                message.extend_from_slice(&first);
                let _ = server.write_all(&message);
                record.lock().unwrap().push(message);
                let _ = std::io::copy(&mut client, &mut server);
                let _ = server.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    (addr, recorded)
}

#[test]
fn a_replayed_first_handshake_message_displaces_no_peer_under_a_shared_key() {
    replay_displaces_no_peer(|_| Security::SharedKey(KEY));
}

#[test]
fn a_replayed_first_handshake_message_displaces_no_peer_under_node_keys() {
    let pairs: Vec<Keypair> = (0..3).map(|_| Keypair::generate().unwrap()).collect();
    let public: BTreeMap<NodeId, [u8; 32]> =
        pairs.iter().enumerate().map(|(i, pair)| (NodeId(i as u64 + 1), pair.public)).collect();
    replay_displaces_no_peer(|id| Security::NodeKeys {
        private: pairs[(id.0 - 1) as usize].private,
        public: public.clone(),
    });
}

fn replay_displaces_no_peer(security: impl Fn(NodeId) -> Security) {
    let dir = tempfile::tempdir().unwrap();
    let (listeners, addrs) = listeners();
    // Node 1 reaches node 2 through a proxy that records what node 1 sends first.
    let (proxy, recorded) = recording_proxy(addrs[&NodeId(2)]);
    let mut via_proxy = addrs.clone();
    via_proxy.insert(NodeId(2), proxy);
    let nodes: Vec<RaftNode> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let id = NodeId(i as u64 + 1);
            let peers = if id == NodeId(1) { via_proxy.clone() } else { addrs.clone() };
            secure_node(dir.path(), id, l, peers, security(id))
        })
        .collect();
    nodes[0].await_leader(WAIT).expect("a leader");
    let (seq, _) = nodes[0].append(Bytes::from_static(b"before")).unwrap();
    assert!(nodes[1].await_commit(seq, WAIT));
    let hello = recorded.lock().unwrap().first().cloned().expect("node 1's first handshake message was recorded");
    let events = nodes[0].events();
    let stop = Arc::new(AtomicBool::new(false));
    let target = addrs[&NodeId(2)];
    let replayer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut replays = 0;
            while !stop.load(Ordering::Relaxed) && replays < 40 {
                if let Ok(mut stream) = TcpStream::connect(target) {
                    let _ = stream.write_all(&hello);
                    replays += 1;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            replays
        })
    };
    let during = appends_during(&nodes[0], Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let replays = replayer.join().unwrap();
    let (seq, _) = nodes[0].append(Bytes::from_static(b"after")).unwrap();
    assert!(nodes[1].await_commit(seq, WAIT), "node 2 still hears node 1");
    let lost: Vec<String> = events
        .try_iter()
        .filter_map(|e| match e {
            Event::Warn(text) if text.contains("connection to node 2 lost") => Some(text),
            _ => None,
        })
        .collect();
    println!(
        "{replays} replays; {during} appends in 2 s meanwhile; node 1's connection to node 2 lost {} times",
        lost.len()
    );
    assert!(replays > 10);
    assert_eq!(lost, Vec::<String>::new(), "a replay displaced node 1's connection");
}

#[test]
fn garbage_and_huge_length_prefixes_leave_the_commit_rate_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (listeners, addrs) = listeners();
    let nodes: Vec<RaftNode> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, l)| node(dir.path(), NodeId(i as u64 + 1), l, addrs.clone()))
        .collect();
    let leader = nodes[0].await_leader(WAIT).expect("a leader");
    let leader = nodes.iter().find(|n| n.id() == leader).unwrap();
    let before = appends_during(leader, Duration::from_secs(1));
    let stop = Arc::new(AtomicBool::new(false));
    let targets: Vec<SocketAddr> = addrs.values().copied().collect();
    let attacker = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut sent, mut x) = (0u32, 0x9e37_79b9_7f4a_7c15u64);
            while !stop.load(Ordering::Relaxed) && sent < 2000 {
                let Ok(mut stream) = TcpStream::connect(targets[sent as usize % targets.len()]) else { continue };
                let bytes: Vec<u8> = match sent % 3 {
                    // The largest Noise message announced, then junk.
                    0 => [0xff, 0xff].into_iter().chain((0..4096).map(|i| i as u8)).collect(),
                    // Random bytes.
                    1 => (0..512)
                        .map(|_| {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            x as u8
                        })
                        .collect(),
                    // A length prefix, and nothing after it.
                    _ => vec![0x01, 0x00],
                };
                let _ = stream.write_all(&bytes);
                sent += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            sent
        })
    };
    let during = appends_during(leader, Duration::from_secs(2)) / 2;
    stop.store(true, Ordering::Relaxed);
    let sent = attacker.join().unwrap();
    let after = appends_during(leader, Duration::from_secs(1));
    println!("{sent} bad connections; appends/s before {before}, during {during}, after {after}");
    assert!(sent > 100);
    // Shared, noisy machines: generous bounds, well above what a stalled node would give. The
    // rate during the attack is held to the lower of the rates around it, as other work on the
    // machine can slow both.
    assert!(during * 3 >= before.min(after), "the commit rate fell: {before} -> {during} -> {after}");
    assert!(after * 10 >= before, "the commit rate did not come back: {before} -> {during} -> {after}");
}
