//! Three nodes over the TCP transport on loopback: they replicate under a shared key and under
//! node keys; a peer with the wrong key, an impostor and garbage bytes are refused with a warn
//! event, and the cluster keeps committing.

use bytes::Bytes;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::Receiver;
use std::time::Duration;
use tinyraftplus::core::{Config, Event, NodeId, Term};
use tinyraftplus::driver::RaftNode;
use tinyraftplus::log::{FsLog, FsLogOptions};
use tinyraftplus::transport::{Keypair, Security, TcpOptions, TcpTransport, Transport};

const WAIT: Duration = Duration::from_secs(30);

fn listeners(n: u64) -> (Vec<TcpListener>, BTreeMap<NodeId, SocketAddr>) {
    let listeners: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let addrs = listeners.iter().enumerate().map(|(i, l)| (NodeId(i as u64 + 1), l.local_addr().unwrap())).collect();
    (listeners, addrs)
}

fn start(
    dir: &std::path::Path,
    security: impl Fn(NodeId) -> Security,
) -> (Vec<RaftNode>, BTreeMap<NodeId, SocketAddr>) {
    let (listeners, addrs) = listeners(3);
    let ids: Vec<NodeId> = addrs.keys().copied().collect();
    let nodes = listeners
        .into_iter()
        .zip(&ids)
        .map(|(listener, id)| {
            let transport =
                TcpTransport::with_listener(*id, listener, addrs.clone(), security(*id), TcpOptions::default());
            let log = FsLog::open(dir, &format!("n{id}"), FsLogOptions::default()).unwrap();
            RaftNode::open(Config::new(*id, ids.clone()), log, transport.unwrap(), None).unwrap()
        })
        .collect();
    (nodes, addrs)
}

fn replicates(nodes: &[RaftNode]) {
    for node in nodes {
        assert!(node.await_leader(WAIT).is_some(), "node {} knows a leader", node.id());
    }
    for (i, node) in nodes.iter().enumerate() {
        // Through the leader and forwarded from followers alike.
        let (seq, _) = node.append(Bytes::from(format!("entry {i}"))).unwrap();
        for other in nodes {
            assert!(other.await_commit(seq, WAIT), "node {} commits {seq}", other.id());
        }
    }
}

fn warned(events: &Receiver<Event>, what: &str) -> String {
    loop {
        match events.recv_timeout(WAIT) {
            Ok(Event::Warn(text)) if text.contains(what) => return text,
            Ok(_) => {}
            Err(_) => panic!("no warning containing {what:?}"),
        }
    }
}

/// A transport that says it is node 2, on a port of its own.
fn posing_as_node_2(addrs: &BTreeMap<NodeId, SocketAddr>, security: Security) -> std::sync::Arc<TcpTransport> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    TcpTransport::with_listener(NodeId(2), listener, addrs.clone(), security, TcpOptions::default()).unwrap()
}

#[test]
fn a_shared_key_cluster_replicates_and_refuses_a_wrong_key_and_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let (nodes, addrs) = start(dir.path(), |_| Security::SharedKey([42; 32]));
    replicates(&nodes);
    let events = nodes[0].events();
    // A peer with the wrong key: node 1 refuses its connection, and nothing it sends arrives.
    let rogue = posing_as_node_2(&addrs, Security::SharedKey([7; 32]));
    let term = nodes[0].status().term;
    let vote = tinyraftplus::core::Body::Vote { last: None, transfer: false };
    let message = tinyraftplus::core::Message { from: NodeId(2), to: NodeId(1), term: Term(term.0 + 5), body: vote };
    rogue.send(message);
    let text = warned(&events, "handshake failed");
    assert!(text.contains("wrong key"), "{text}");
    assert_eq!(nodes[0].status().term, term, "the rogue's vote request did not arrive");
    // Garbage sent to node 1's port: a length, then bytes that are no handshake.
    let mut garbage = TcpStream::connect(addrs[&NodeId(1)]).unwrap();
    garbage.write_all(&[0, 200]).unwrap();
    garbage.write_all(&[0xa5; 200]).unwrap();
    let text = warned(&events, "connection from");
    assert!(text.contains("handshake failed"), "{text}");
    drop(garbage);
    replicates(&nodes);
}

#[test]
fn with_node_keys_a_node_cannot_speak_as_another() {
    let dir = tempfile::tempdir().unwrap();
    let keys: BTreeMap<NodeId, Keypair> = (1..=3).map(|i| (NodeId(i), Keypair::generate().unwrap())).collect();
    let public: BTreeMap<NodeId, [u8; 32]> = keys.iter().map(|(id, pair)| (*id, pair.public)).collect();
    let security = |id: NodeId| Security::NodeKeys { private: keys[&id].private, public: public.clone() };
    let (nodes, addrs) = start(dir.path(), security);
    replicates(&nodes);
    let events = nodes[0].events();
    // Node 3's key, claiming to be node 2.
    let impostor = posing_as_node_2(&addrs, security(NodeId(3)));
    let heartbeat = tinyraftplus::core::Body::PreVote { last: None };
    impostor.send(tinyraftplus::core::Message {
        from: NodeId(2),
        to: NodeId(1),
        term: nodes[0].status().term,
        body: heartbeat,
    });
    let text = warned(&events, "without its key");
    assert!(text.contains("node 2"), "{text}");
    replicates(&nodes);
}
