//! The encrypted channel under the TCP transport: a Noise handshake (the `snow` crate), then
//! Raft messages in length-prefixed frames carried by Noise transport messages.
//!
//! On the wire every Noise message (handshake or transport) is a 2-byte big-endian length and
//! that many bytes (at most 65,535, Noise's limit). Inside the transport messages the plaintext
//! is a stream of frames: a 4-byte big-endian length and one message in the core's codec. A
//! frame may span several Noise messages; one longer than the configured maximum closes the
//! connection before it is buffered.
//!
//! Each connection carries messages one way, from the node that dialled (the initiator). Its
//! first handshake message carries the initiator's node id and the id it means to reach, under
//! the handshake's encryption.
//!
//! - **Shared key** (`Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s`): the cluster's 32-byte key is the
//!   pre-shared key; both sides add fresh ephemeral keys, so every connection has its own
//!   session keys, and bytes recorded from one connection are refused on any other (the
//!   seed's transport could be replayed). Anyone holding the key can claim any node id.
//! - **Node keys** (`Noise_IK_25519_ChaChaPoly_BLAKE2s`, as WireGuard): each node has its own
//!   X25519 key pair and knows every peer's public key. The initiator must know the
//!   responder's key to start, and the responder checks that the initiator's static key is the
//!   one configured for the id it claims: a node cannot speak as another.
//!
//! A replayed first handshake message can make a responder answer, but the session keys also
//! come from the responder's fresh ephemeral key, so nothing after it decrypts; the transport
//! therefore waits for the first transport message before it takes a connection for the peer's.

use crate::core::{codec, Message, NodeId};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use snow::{Builder, HandshakeState, TransportState};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};

const SHARED_KEY_PATTERN: &str = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s";
const NODE_KEY_PATTERN: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
/// Both sides mix this into the handshake: a peer speaking another protocol fails it.
const PROLOGUE: &[u8] = b"tinyraftplus tcp 1";
/// Noise's largest message, and the plaintext one carries.
const NOISE_MAX: usize = 65_535;
/// The largest handshake message either pattern makes (IK's first: 112 bytes), with room to
/// spare. A longer one is refused before anything is allocated for it: a stranger's
/// connection costs a few hundred bytes until it has proven itself.
const HANDSHAKE_MAX: usize = 256;
const TAG: usize = 16;
const CHUNK: usize = NOISE_MAX - TAG;

/// How peers prove they belong to the cluster.
#[derive(Clone)]
pub enum Security {
    /// One 32-byte key for the whole cluster (the seed's model).
    SharedKey([u8; 32]),
    /// This node's X25519 private key, and every node's public key by id.
    NodeKeys {
        /// This node's private key.
        private: [u8; 32],
        /// The public key of every node (this one may be included).
        public: BTreeMap<NodeId, [u8; 32]>,
    },
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Security::SharedKey(_) => write!(f, "SharedKey(..)"),
            Security::NodeKeys { public, .. } => write!(f, "NodeKeys {{ peers: {:?} }}", public.keys()),
        }
    }
}

/// An X25519 key pair for [`Security::NodeKeys`].
#[derive(Clone)]
pub struct Keypair {
    /// Keep it secret.
    pub private: [u8; 32],
    /// Give it to the other nodes.
    pub public: [u8; 32],
}

impl Keypair {
    /// A fresh key pair from the OS's randomness.
    pub fn generate() -> Result<Keypair, ChannelError> {
        let pair = Builder::new(params(NODE_KEY_PATTERN)).generate_keypair().map_err(noise)?;
        let mut keypair = Keypair { private: [0; 32], public: [0; 32] };
        keypair.private.copy_from_slice(&pair.private);
        keypair.public.copy_from_slice(&pair.public);
        Ok(keypair)
    }
}

/// Why a connection was refused or closed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ChannelError {
    /// The socket failed.
    Io(io::Error),
    /// The peer closed the connection between frames.
    Closed,
    /// The handshake failed: a wrong key, or not a tinyraftplus peer.
    Handshake(String),
    /// The peer authenticated but is not who it must be (an unknown id, another node's key, or
    /// a connection meant for another node).
    Refused(String),
    /// A frame longer than the maximum.
    Oversized {
        /// Its announced length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A transport message failed authentication (tampered, replayed or garbage bytes).
    Decrypt,
    /// A frame that is not a message.
    Malformed(codec::DecodeError),
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Io(error) => write!(f, "{error}"),
            ChannelError::Closed => write!(f, "closed by the peer"),
            ChannelError::Handshake(why) => write!(f, "handshake failed (wrong key or not a tinyraftplus peer): {why}"),
            ChannelError::Refused(why) => write!(f, "refused: {why}"),
            ChannelError::Oversized { len, max } => write!(f, "a frame of {len} bytes is over the maximum of {max}"),
            ChannelError::Decrypt => write!(f, "a message failed authentication"),
            ChannelError::Malformed(error) => write!(f, "a malformed message: {error}"),
        }
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ChannelError::Io(error) => error.source(),
            ChannelError::Malformed(error) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for ChannelError {
    fn from(error: io::Error) -> ChannelError {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            ChannelError::Closed
        } else {
            ChannelError::Io(error)
        }
    }
}

fn noise(error: snow::Error) -> ChannelError {
    ChannelError::Handshake(error.to_string())
}

fn params(pattern: &str) -> snow::params::NoiseParams {
    pattern.parse().expect("the patterns are valid constants")
}

fn write_noise(stream: &mut impl Write, message: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(2 + message.len());
    out.extend_from_slice(&(message.len() as u16).to_be_bytes());
    out.extend_from_slice(message);
    stream.write_all(&out)
}

fn read_length(stream: &mut impl Read) -> Result<usize, ChannelError> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    Ok(u16::from_be_bytes(len) as usize)
}

/// Reads one handshake message into `buf`; its length.
fn read_handshake(stream: &mut impl Read, buf: &mut [u8; HANDSHAKE_MAX]) -> Result<usize, ChannelError> {
    let len = read_length(stream)?;
    if len > HANDSHAKE_MAX {
        return Err(ChannelError::Handshake(format!("a handshake message of {len} bytes (at most {HANDSHAKE_MAX})")));
    }
    stream.read_exact(&mut buf[..len])?;
    Ok(len)
}

/// Reads one transport message into `buf`, which grows to the longest seen.
fn read_noise(stream: &mut impl Read, buf: &mut Vec<u8>) -> Result<usize, ChannelError> {
    let len = read_length(stream)?;
    if buf.len() < len {
        buf.resize(len, 0);
    }
    stream.read_exact(&mut buf[..len])?;
    Ok(len)
}

/// Dials: proves this node is `me` to the node `to`; the sending half of the channel.
pub(super) fn initiate(
    stream: &mut (impl Read + Write),
    security: &Security,
    me: NodeId,
    to: NodeId,
) -> Result<Sender, ChannelError> {
    let mut handshake = match security {
        Security::SharedKey(key) => {
            Builder::new(params(SHARED_KEY_PATTERN)).prologue(PROLOGUE).and_then(|b| b.psk(0, key))?.build_initiator()
        }
        Security::NodeKeys { private, public } => {
            let Some(remote) = public.get(&to) else {
                return Err(ChannelError::Refused(format!("no public key for node {to}")));
            };
            let builder = Builder::new(params(NODE_KEY_PATTERN)).prologue(PROLOGUE);
            builder
                .and_then(|b| b.local_private_key(private))
                .and_then(|b| b.remote_public_key(remote))?
                .build_initiator()
        }
    }
    .map_err(noise)?;
    let mut buf = [0u8; HANDSHAKE_MAX];
    let mut hello = [0u8; 16];
    hello[..8].copy_from_slice(&me.0.to_be_bytes());
    hello[8..].copy_from_slice(&to.0.to_be_bytes());
    let len = handshake.write_message(&hello, &mut buf[..]).map_err(noise)?;
    write_noise(stream, &buf[..len])?;
    let len = read_handshake(stream, &mut buf)?;
    let mut payload = [0u8; HANDSHAKE_MAX];
    handshake.read_message(&buf[..len], &mut payload).map_err(noise)?;
    Ok(Sender { noise: handshake.into_transport_mode().map_err(noise)?, plain: BytesMut::new(), wire: Vec::new() })
}

impl From<snow::Error> for ChannelError {
    fn from(error: snow::Error) -> ChannelError {
        noise(error)
    }
}

/// Answers a dial: the initiator's proven id and the receiving half of the channel. `member`
/// says whether an id belongs to the cluster.
pub(super) fn respond(
    stream: &mut (impl Read + Write),
    security: &Security,
    me: NodeId,
    member: impl Fn(NodeId) -> bool,
    frame_max: usize,
) -> Result<(NodeId, Receiver), ChannelError> {
    let mut handshake: HandshakeState = match security {
        Security::SharedKey(key) => {
            Builder::new(params(SHARED_KEY_PATTERN)).prologue(PROLOGUE).and_then(|b| b.psk(0, key))
        }
        Security::NodeKeys { private, .. } => {
            Builder::new(params(NODE_KEY_PATTERN)).prologue(PROLOGUE).and_then(|b| b.local_private_key(private))
        }
    }
    .and_then(|b| b.build_responder())
    .map_err(noise)?;
    let mut buf = [0u8; HANDSHAKE_MAX];
    let mut hello = [0u8; HANDSHAKE_MAX];
    let len = read_handshake(stream, &mut buf)?;
    let hello_len = handshake.read_message(&buf[..len], &mut hello[..]).map_err(noise)?;
    if hello_len != 16 {
        return Err(ChannelError::Refused(format!("a hello of {hello_len} bytes, not 16")));
    }
    let from = NodeId(u64::from_be_bytes(hello[..8].try_into().expect("8 bytes")));
    let to = NodeId(u64::from_be_bytes(hello[8..16].try_into().expect("8 bytes")));
    if to != me {
        return Err(ChannelError::Refused(format!("node {from} meant to reach node {to}, this is node {me}")));
    }
    if from == me || !member(from) {
        return Err(ChannelError::Refused(format!("node {from} is not a peer")));
    }
    if let Security::NodeKeys { public, .. } = security {
        if public.get(&from).map(|key| &key[..]) != handshake.get_remote_static() {
            return Err(ChannelError::Refused(format!("the peer claims to be node {from} without its key")));
        }
    }
    let len = handshake.write_message(&[], &mut buf[..]).map_err(noise)?;
    write_noise(stream, &buf[..len])?;
    let noise = handshake.into_transport_mode().map_err(noise)?;
    Ok((from, Receiver { noise, plain: BytesMut::new(), buf: Vec::new(), frame_max }))
}

/// The sending half: frames messages and encrypts them.
pub(super) struct Sender {
    noise: TransportState,
    plain: BytesMut,
    wire: Vec<u8>,
}

impl Sender {
    /// Sends `messages` with one write.
    pub(super) fn send(&mut self, stream: &mut impl Write, messages: &[Message]) -> Result<(), ChannelError> {
        self.plain.clear();
        for message in messages {
            let at = self.plain.len();
            self.plain.put_u32(0);
            codec::encode(message, &mut self.plain);
            let len = (self.plain.len() - at - 4) as u32;
            self.plain[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        self.wire.clear();
        for chunk in self.plain.chunks(CHUNK) {
            let at = self.wire.len();
            self.wire.resize(at + 2 + chunk.len() + TAG, 0);
            let len = self.noise.write_message(chunk, &mut self.wire[at + 2..])?;
            self.wire[at..at + 2].copy_from_slice(&(len as u16).to_be_bytes());
        }
        stream.write_all(&self.wire)?;
        Ok(())
    }
}

/// The receiving half: decrypts and splits frames.
pub(super) struct Receiver {
    noise: TransportState,
    plain: BytesMut,
    buf: Vec<u8>,
    frame_max: usize,
}

impl Receiver {
    /// The next message.
    pub(super) fn next(&mut self, stream: &mut impl Read) -> Result<Message, ChannelError> {
        loop {
            if self.plain.len() >= 4 {
                let len = u32::from_be_bytes(self.plain[..4].try_into().expect("4 bytes")) as usize;
                if len > self.frame_max {
                    return Err(ChannelError::Oversized { len, max: self.frame_max });
                }
                if self.plain.len() >= 4 + len {
                    self.plain.advance(4);
                    let frame: Bytes = self.plain.split_to(len).freeze();
                    return codec::decode(&frame).map_err(ChannelError::Malformed);
                }
            }
            let len = read_noise(stream, &mut self.buf)?;
            let at = self.plain.len();
            self.plain.resize(at + len, 0);
            match self.noise.read_message(&self.buf[..len], &mut self.plain[at..]) {
                Ok(plain) => self.plain.truncate(at + plain),
                Err(_) => return Err(ChannelError::Decrypt),
            }
        }
    }
}

#[cfg(test)]
#[path = "noise_tests.rs"]
mod tests;
