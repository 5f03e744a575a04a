//! Helpers for the tests that run `examples/node` processes.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

/// The `node` example, built beside the test binary.
pub fn node_binary() -> PathBuf {
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/examples/node
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent().and_then(Path::parent).expect("target/<profile>").join("examples").join("node")
}

/// `n` loopback addresses free a moment ago, for nodes 1..=n.
pub fn free_addrs(n: u64) -> BTreeMap<u64, SocketAddr> {
    let listeners: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    (1..=n).zip(listeners.iter().map(|l| l.local_addr().unwrap())).collect()
}
