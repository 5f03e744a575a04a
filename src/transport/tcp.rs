//! The TCP transport: one outgoing connection per peer, each fed by a bounded queue and
//! re-dialled with backoff; incoming connections are authenticated (see [`noise`](super::noise))
//! and each read on its own thread.
//!
//! Strangers cannot hold a node's door shut: an incoming connection has one deadline for its
//! whole handshake and its first message (`handshake_timeout`), however slowly its bytes come;
//! at most `handshakes_max` connections wait for their first handshake message at once, and a
//! new one evicts the oldest (a peer's own handshake message arrives at once, so it never waits
//! long enough to be evicted); and a connection replaces a peer's established one only once its
//! first transport message has authenticated, which a replayed handshake message cannot give.

use super::noise::{self, ChannelError, Security};
use super::{Inbox, Transport};
use crate::core::{Message, NodeId};
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The read buffer of a connection until its first message authenticated, and after.
const PROVING_BUFFER: usize = 4 << 10;
const READ_BUFFER: usize = 256 << 10;

/// How the TCP transport behaves.
#[derive(Clone, Debug)]
pub struct TcpOptions {
    /// The longest frame (one encoded message) accepted; a longer one closes the connection.
    /// Default 64 MiB (above the core's default largest message).
    pub frame_bytes_max: usize,
    /// Messages queued per peer while its connection is slow or down; more are dropped (Raft
    /// sends again what is lost). Default 4096.
    pub queue_messages_max: usize,
    /// The first wait before re-dialling a peer; doubled after each failure up to
    /// `backoff_max`. Defaults 50 ms and 2 s.
    pub backoff_min: Duration,
    /// The longest wait between dials.
    pub backoff_max: Duration,
    /// How long dialling, the handshake and an incoming connection's first message may take
    /// together. Default 5 s.
    pub handshake_timeout: Duration,
    /// Incoming connections waiting for their first handshake message at once; a new one
    /// evicts the oldest. As many again may wait for their first message after the handshake;
    /// more are closed. Default 64.
    pub handshakes_max: usize,
}

impl Default for TcpOptions {
    fn default() -> TcpOptions {
        TcpOptions {
            frame_bytes_max: 64 << 20,
            queue_messages_max: 4096,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(5),
            handshakes_max: 64,
        }
    }
}

/// Nodes connected over TCP with authenticated encryption. One per node; sending never blocks.
pub struct TcpTransport {
    shared: Arc<Shared>,
}

struct Shared {
    id: NodeId,
    security: Security,
    /// Every peer's address: those given at the start, and those learned from configurations.
    peers: RwLock<BTreeMap<NodeId, SocketAddr>>,
    options: TcpOptions,
    local: SocketAddr,
    queues: Mutex<BTreeMap<NodeId, SyncSender<Message>>>,
    inbox: RwLock<Option<Arc<dyn Inbox>>>,
    closed: AtomicBool,
    /// The connection each peer sends on, to shut it down when the peer dials again (its old
    /// one may be dead without a FIN, its reader blocked for good) or the transport closes.
    accepted: Mutex<BTreeMap<NodeId, (u64, TcpStream)>>,
    next_accepted: AtomicU64,
    /// Incoming connections waiting for their first handshake message, oldest first.
    waiting: Mutex<VecDeque<(u64, TcpStream)>>,
    /// Incoming connections past the handshake, waiting for their first message.
    proving: AtomicUsize,
}

impl Shared {
    fn warn(&self, text: String) {
        if let Some(inbox) = self.inbox.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            inbox.warn(text);
        }
    }
}

impl TcpTransport {
    /// Listens on `listen` for node `id` and dials the `peers` (every other node's address;
    /// this node's own entry is ignored) when there is something to send.
    pub fn bind(
        id: NodeId,
        listen: SocketAddr,
        peers: BTreeMap<NodeId, SocketAddr>,
        security: Security,
        options: TcpOptions,
    ) -> io::Result<Arc<TcpTransport>> {
        TcpTransport::with_listener(id, TcpListener::bind(listen)?, peers, security, options)
    }

    /// [`bind`](TcpTransport::bind) on a listener already bound (so that every node's port
    /// can be known before any transport starts).
    pub fn with_listener(
        id: NodeId,
        listener: TcpListener,
        peers: BTreeMap<NodeId, SocketAddr>,
        security: Security,
        options: TcpOptions,
    ) -> io::Result<Arc<TcpTransport>> {
        if let Security::NodeKeys { public, .. } = &security {
            if let Some(peer) = peers.keys().find(|peer| **peer != id && !public.contains_key(peer)) {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("no public key for node {peer}")));
            }
        }
        let local = listener.local_addr()?;
        let peers: BTreeMap<NodeId, SocketAddr> = peers.into_iter().filter(|(peer, _)| *peer != id).collect();
        let shared = Arc::new(Shared {
            id,
            security,
            peers: RwLock::new(peers.clone()),
            options: options.clone(),
            local,
            queues: Mutex::new(BTreeMap::new()),
            inbox: RwLock::new(None),
            closed: AtomicBool::new(false),
            accepted: Mutex::new(BTreeMap::new()),
            next_accepted: AtomicU64::new(0),
            waiting: Mutex::new(VecDeque::new()),
            proving: AtomicUsize::new(0),
        });
        for (peer, addr) in peers {
            start_sender(&shared, peer, addr)?;
        }
        let accepting = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("tcp-{id}-accept"))
            .spawn(move || accept_loop(&accepting, &listener))?;
        Ok(Arc::new(TcpTransport { shared }))
    }

    /// The address it listens on (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }
}

impl Transport for TcpTransport {
    fn send(&self, message: Message) {
        let queues = self.shared.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(queue) = queues.get(&message.to) {
            // A full queue drops the message: Raft sends again what is lost.
            if let Err(TrySendError::Disconnected(_)) = queue.try_send(message) {
                drop(queues);
                self.shared.warn("tcp: a peer's sender thread is gone".into());
            }
        }
    }

    fn register(&self, id: NodeId, inbox: Arc<dyn Inbox>) {
        if id != self.shared.id {
            inbox.warn(format!("tcp: this transport is node {}'s, not node {id}'s", self.shared.id));
            return;
        }
        *self.shared.inbox.write().unwrap_or_else(|p| p.into_inner()) = Some(inbox);
    }

    fn unregister(&self, id: NodeId) {
        if id == self.shared.id {
            *self.shared.inbox.write().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    /// A peer new to this transport, named by a configuration with its address (UTF-8
    /// `host:port`), is dialled and accepted from then on. A known peer keeps its address; with
    /// per-node keys, a peer whose public key this transport lacks is refused (with a warning).
    fn learn(&self, id: NodeId, address: &[u8]) {
        let shared = &self.shared;
        if id == shared.id || shared.peers.read().unwrap_or_else(|p| p.into_inner()).contains_key(&id) {
            return;
        }
        let Some(addr) = std::str::from_utf8(address).ok().and_then(|text| text.parse::<SocketAddr>().ok()) else {
            return shared.warn(format!("tcp: node {id}'s address in the configuration is not host:port"));
        };
        if let Security::NodeKeys { public, .. } = &shared.security {
            if !public.contains_key(&id) {
                return shared.warn(format!("tcp: node {id} joined, but this node has no public key for it"));
            }
        }
        if shared.peers.write().unwrap_or_else(|p| p.into_inner()).insert(id, addr).is_some() {
            return; // Learned meanwhile.
        }
        if let Err(error) = start_sender(shared, id, addr) {
            shared.warn(format!("tcp: cannot start a thread for node {id}: {error}"));
        }
    }
}

/// Starts sending to `peer` at `addr`: a queue and the thread that dials and drains it.
fn start_sender(shared: &Arc<Shared>, peer: NodeId, addr: SocketAddr) -> io::Result<()> {
    let (sender, receiver) = mpsc::sync_channel(shared.options.queue_messages_max);
    let dialing = Arc::clone(shared);
    std::thread::Builder::new()
        .name(format!("tcp-{}-to-{peer}", shared.id))
        .spawn(move || dial_loop(&dialing, peer, addr, &receiver))?;
    shared.queues.lock().unwrap_or_else(|p| p.into_inner()).insert(peer, sender);
    Ok(())
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        let shared = &self.shared;
        shared.closed.store(true, Ordering::SeqCst);
        // The dialling threads end when their queues close; the accepting one at its next
        // connection (made here); readers when their sockets shut down.
        shared.queues.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let _ = TcpStream::connect_timeout(&shared.local, Duration::from_secs(1));
        for (_, stream) in shared.accepted.lock().unwrap_or_else(|p| p.into_inner()).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        for (_, stream) in shared.waiting.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    for stream in listener.incoming() {
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            // Out of file descriptors, say: back off rather than spin on the error.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let key = shared.next_accepted.fetch_add(1, Ordering::Relaxed);
        let Ok(copy) = stream.try_clone() else { continue };
        let evicted = {
            let mut waiting = shared.waiting.lock().unwrap_or_else(|p| p.into_inner());
            let evicted = (waiting.len() >= shared.options.handshakes_max).then(|| waiting.pop_front()).flatten();
            waiting.push_back((key, copy));
            evicted
        };
        if let Some((_, old)) = evicted {
            let from = old.peer_addr().map_or_else(|_| "?".to_string(), |a| a.to_string());
            shared.warn(format!("tcp: closed the connection from {from}: the oldest of too many handshakes"));
            let _ = old.shutdown(Shutdown::Both);
        }
        let reading = Arc::clone(shared);
        let spawned = std::thread::Builder::new().name(format!("tcp-{}-read", shared.id)).spawn(move || {
            let from = stream.peer_addr().map_or_else(|_| "?".to_string(), |a| a.to_string());
            if let Err(error) = serve(&reading, key, stream) {
                reading.warn(format!("tcp: connection from {from} closed: {error}"));
            }
        });
        if spawned.is_err() {
            shared.stop_waiting(key);
        }
    }
}

impl Shared {
    /// The connection `key` no longer waits for its first handshake message.
    fn stop_waiting(&self, key: u64) {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).retain(|(k, _)| *k != key);
    }
}

/// A socket whose reads and writes fail once `deadline` passes, however slowly bytes trickle
/// (a socket timeout alone restarts with every byte).
struct Deadline<'a> {
    stream: &'a TcpStream,
    deadline: Option<Instant>,
}

impl Deadline<'_> {
    fn left(&self) -> io::Result<Option<Duration>> {
        let Some(deadline) = self.deadline else { return Ok(None) };
        match deadline.checked_duration_since(Instant::now()).filter(|left| !left.is_zero()) {
            Some(left) => Ok(Some(left)),
            None => Err(io::Error::new(io::ErrorKind::TimedOut, "the handshake's deadline passed")),
        }
    }
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(left) = self.left()? {
            self.stream.set_read_timeout(Some(left))?;
        }
        (&*self.stream).read(buf)
    }
}

impl Write for Deadline<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(left) = self.left()? {
            self.stream.set_write_timeout(Some(left))?;
        }
        (&*self.stream).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.stream).flush()
    }
}

/// Authenticates an incoming connection, then delivers its messages until it closes. It
/// replaces the peer's established connection only once its first message authenticated.
fn serve(shared: &Shared, key: u64, stream: TcpStream) -> Result<(), ChannelError> {
    let deadline = Instant::now() + shared.options.handshake_timeout;
    let mut socket = Deadline { stream: &stream, deadline: Some(deadline) };
    let member = |id: NodeId| shared.peers.read().unwrap_or_else(|p| p.into_inner()).contains_key(&id);
    let handshake = stream.set_nodelay(true).map_err(ChannelError::from).and_then(|()| {
        noise::respond(&mut socket, &shared.security, shared.id, member, shared.options.frame_bytes_max)
    });
    shared.stop_waiting(key);
    let (peer, mut receiver) = handshake?;
    if shared.proving.fetch_add(1, Ordering::SeqCst) >= shared.options.handshakes_max {
        shared.proving.fetch_sub(1, Ordering::SeqCst);
        return Err(ChannelError::Refused("too many connections waiting for their first message".into()));
    }
    // A small buffer until the peer has proven itself: a replayed handshake costs little.
    let mut proving = BufReader::with_capacity(PROVING_BUFFER, socket);
    let first = receiver.next(&mut proving);
    shared.proving.fetch_sub(1, Ordering::SeqCst);
    let first = first?;
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(None)?;
    let unread = io::Cursor::new(proving.buffer().to_vec());
    let mut reader = BufReader::with_capacity(READ_BUFFER, unread.chain(&stream));
    let copy = stream.try_clone()?;
    let previous = shared.accepted.lock().unwrap_or_else(|p| p.into_inner()).insert(peer, (key, copy));
    if let Some((_, old)) = previous {
        let _ = old.shutdown(Shutdown::Both);
    }
    let result = match shared.closed.load(Ordering::SeqCst) {
        true => Ok(()),
        false => deliver(shared, peer, Some(first), &mut receiver, &mut reader),
    };
    let mut accepted = shared.accepted.lock().unwrap_or_else(|p| p.into_inner());
    if accepted.get(&peer).is_some_and(|(k, _)| *k == key) {
        accepted.remove(&peer);
    }
    result
}

fn deliver(
    shared: &Shared,
    peer: NodeId,
    mut first: Option<Message>,
    receiver: &mut noise::Receiver,
    reader: &mut impl Read,
) -> Result<(), ChannelError> {
    loop {
        let message = match first.take().map_or_else(|| receiver.next(reader), Ok) {
            Ok(message) => message,
            Err(ChannelError::Closed) => return Ok(()),
            Err(error) => return Err(error),
        };
        if message.from != peer || message.to != shared.id {
            let (from, to) = (message.from, message.to);
            return Err(ChannelError::Refused(format!("node {peer} sent a message from {from} to {to}")));
        }
        let inbox = shared.inbox.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(inbox) = inbox {
            inbox.deliver(message);
        }
    }
}

/// Sends one peer's queue: dials when there is something to send, re-dials with backoff.
fn dial_loop(shared: &Shared, peer: NodeId, addr: SocketAddr, queue: &Receiver<Message>) {
    let options = &shared.options;
    let mut backoff = options.backoff_min;
    let mut batch = Vec::new();
    let mut warned = false;
    loop {
        if batch.is_empty() {
            match queue.recv() {
                Ok(message) => batch.push(message),
                Err(_) => return, // The transport closed.
            }
        }
        let (stream, mut sender) = match dial(shared, peer, addr) {
            Ok(connection) => connection,
            Err(error) => {
                // Handshake refusals are always worth a warning; a peer that is down once per outage.
                if !warned || !matches!(error, ChannelError::Io(_)) {
                    shared.warn(format!("tcp: cannot reach node {peer} at {addr}: {error}"));
                    warned = true;
                }
                // What waited is stale by the next attempt (Raft will send afresh): drop it.
                batch.clear();
                queue.try_iter().for_each(drop);
                if shared.closed.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(options.backoff_max);
                continue;
            }
        };
        warned = false;
        backoff = options.backoff_min;
        let mut socket = &stream;
        loop {
            batch.extend(queue.try_iter().take(1024));
            if let Err(error) = sender.send(&mut socket, &batch) {
                shared.warn(format!("tcp: connection to node {peer} lost: {error}"));
                batch.clear();
                break;
            }
            batch.clear();
            match super::spin_recv(queue).ok_or(()).or_else(|()| queue.recv()) {
                Ok(message) => batch.push(message),
                Err(_) => return,
            }
        }
    }
}

fn dial(shared: &Shared, peer: NodeId, addr: SocketAddr) -> Result<(TcpStream, noise::Sender), ChannelError> {
    let timeout = shared.options.handshake_timeout;
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    // Also after the handshake: a peer that stops reading for this long is treated as gone
    // (the connection is re-dialled).
    stream.set_write_timeout(Some(timeout))?;
    let mut socket = &stream;
    let sender = noise::initiate(&mut socket, &shared.security, shared.id, peer)?;
    Ok((stream, sender))
}
