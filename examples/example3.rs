//! The seed's third example: three nodes as separate TCP endpoints on 127.0.0.1, with an
//! encrypted transport (a fresh cluster key), xxhash-checksummed file logs, a storage timeout
//! and the seed's group rule (any two nodes form a quorum), and a producer appending batches
//! for ten seconds (`--seconds N` to change it), printing each batch's seqs and results.
//!
//! ```text
//! listening 127.0.0.1:40613 127.0.0.1:35851 127.0.0.1:46107
//! have leader 2
//! seq = 1..100 results = 1..100
//! seq = 101..200 results = 101..200
//! ...
//! done 412 batches, 41200 entries in 10.0 s
//! ```

use bytes::Bytes;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::OsRng;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tinyraftplus::core::{Config, NodeId, Quorum, Seq};
use tinyraftplus::driver::{RaftNode, StateMachine};
use tinyraftplus::log::Encoder;
use tinyraftplus::log::{FsLog, FsLogOptions};
use tinyraftplus::transport::{Security, TcpOptions, TcpTransport};

/// Counts the entries applied; each answers the count after it.
#[derive(Default)]
struct Counter(u64);

impl StateMachine for Counter {
    fn apply(&mut self, _first: Seq, entries: &[Option<Bytes>]) -> Result<Vec<Bytes>, String> {
        let responses = entries.iter().map(|entry| {
            self.0 += u64::from(entry.is_some());
            Bytes::from(self.0.to_string())
        });
        Ok(responses.collect())
    }

    fn read(&mut self, _seq: Option<Seq>, _command: &[u8]) -> Result<Bytes, String> {
        Ok(Bytes::from(self.0.to_string()))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: f64 = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => 10.0,
        [flag, value] if flag == "--seconds" => value.parse()?,
        _ => return Err("usage: example3 [--seconds N]".into()),
    };
    let dir = tempfile::tempdir()?;
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    // Every node's port is known before any node starts.
    let listeners: Vec<TcpListener> = (0..3).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    let mut addrs = BTreeMap::new();
    for (i, listener) in listeners.iter().enumerate() {
        addrs.insert(NodeId(i as u64 + 1), listener.local_addr()?);
    }
    let shown: Vec<String> = addrs.values().map(|a| a.to_string()).collect();
    println!("listening {}", shown.join(" "));
    let ids: Vec<NodeId> = addrs.keys().copied().collect();
    let mut nodes = Vec::new();
    for (listener, id) in listeners.into_iter().zip(&ids) {
        let transport =
            TcpTransport::with_listener(*id, listener, addrs.clone(), Security::SharedKey(key), TcpOptions::default())?;
        let options = FsLogOptions { encoder: Encoder::XxHash, ..FsLogOptions::default() };
        let log = FsLog::open(dir.path(), &format!("node{id}"), options)?;
        let mut config = Config::new(*id, ids.clone());
        // The seed's groupFn: any two nodes are a quorum.
        config.quorum = Quorum::Custom(Arc::new(|nodes: &[NodeId]| nodes.len() >= 2));
        config.storage_stall_timeout = Some(Duration::from_millis(1500));
        nodes.push(RaftNode::open(config, log, transport, Some(Box::new(Counter::default())))?);
    }
    let leader = nodes[0].await_leader(Duration::from_secs(30)).ok_or("no leader")?;
    println!("have leader {leader}");
    let start = Instant::now();
    let (mut batches, mut entries) = (0u64, 0u64);
    while start.elapsed().as_secs_f64() < seconds {
        let batch: Vec<Bytes> = (0..100).map(|i| Bytes::from(format!("entry {}", entries + i))).collect();
        // Through node 1, leader or not: a follower forwards it.
        let (seq, results) = nodes[0].append_batch(batch)?;
        let last = Seq(seq.0 + results.len() as u64 - 1);
        let show = |r: Option<&Bytes>| String::from_utf8_lossy(r.map_or(&[][..], |r| &r[..])).into_owned();
        println!("seq = {seq}..{last} results = {}..{}", show(results.first()), show(results.last()));
        batches += 1;
        entries += results.len() as u64;
    }
    println!("done {batches} batches, {entries} entries in {:.1} s", start.elapsed().as_secs_f64());
    for node in &nodes {
        node.close();
    }
    Ok(())
}
