//! The channel over loopback sockets: messages of every size arrive; wrong keys, impostors,
//! replayed and tampered bytes and oversized frames are refused with their reason.

use super::*;
use crate::core::{Body, Entry, Payload, Seq, Term};
use std::net::{TcpListener, TcpStream};
use std::thread;

fn message(from: u64, to: u64, bytes: usize) -> Message {
    let entry = Entry { seq: Seq(0), term: Term(1), payload: Payload::Data(Bytes::from(vec![7u8; bytes])) };
    let body = Body::Append { prev: None, commit: None, entries: vec![entry], read_round: 0 };
    Message { from: NodeId(from), to: NodeId(to), term: Term(1), body }
}

fn shared(key: u8) -> Security {
    Security::SharedKey([key; 32])
}

/// Runs a responder for node 2 on one accepted connection; `client` talks to it.
fn exchange(
    responder: Security,
    frame_max: usize,
    client: impl FnOnce(&mut TcpStream),
) -> Result<(NodeId, Vec<Message>), ChannelError> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let (peer, mut receiver) = respond(&mut stream, &responder, NodeId(2), |id| id.0 <= 3, frame_max)?;
        let mut received = Vec::new();
        loop {
            match receiver.next(&mut stream) {
                Ok(message) => received.push(message),
                Err(ChannelError::Closed) => return Ok((peer, received)),
                Err(error) => return Err(error),
            }
        }
    });
    let mut stream = TcpStream::connect(addr).unwrap();
    client(&mut stream);
    drop(stream);
    server.join().unwrap()
}

#[test]
fn messages_of_every_size_arrive_in_order_under_a_shared_key() {
    let sent = vec![message(1, 2, 0), message(1, 2, 200_000), message(1, 2, 65_000), message(1, 2, 3)];
    let copy = sent.clone();
    let (peer, received) = exchange(shared(9), 1 << 20, move |stream| {
        let mut sender = initiate(stream, &shared(9), NodeId(1), NodeId(2)).unwrap();
        sender.send(stream, &copy[..1]).unwrap();
        sender.send(stream, &copy[1..]).unwrap();
    })
    .unwrap();
    assert_eq!(peer, NodeId(1));
    assert_eq!(received, sent);
}

#[test]
fn a_wrong_shared_key_fails_the_handshake() {
    let result = exchange(shared(9), 1 << 20, |stream| {
        assert!(initiate(stream, &shared(8), NodeId(1), NodeId(2)).is_err());
    });
    assert!(matches!(result, Err(ChannelError::Handshake(_))), "{result:?}");
}

#[test]
fn garbage_bytes_fail_the_handshake() {
    let result = exchange(shared(9), 1 << 20, |stream| {
        stream.write_all(b"\x00\x40GET / HTTP/1.1\r\nHost: example\r\n\r\n and more bytes that are not noise").unwrap();
    });
    assert!(matches!(result, Err(ChannelError::Handshake(_) | ChannelError::Closed)), "{result:?}");
}

#[test]
fn a_handshake_message_longer_than_any_pattern_makes_is_refused_unread() {
    // A 60,000-byte length prefix and no body: refused at once, not read (which would wait).
    let mut stream = Replay(io::Cursor::new(vec![0xea, 0x60]));
    let result = respond(&mut stream, &shared(9), NodeId(2), |_| true, 1 << 20);
    assert!(matches!(&result, Err(ChannelError::Handshake(why)) if why.contains("60000 bytes")), "{:?}", result.err());
}

#[test]
fn a_connection_meant_for_another_node_or_from_a_stranger_is_refused() {
    let to_other = exchange(shared(9), 1 << 20, |stream| drop(initiate(stream, &shared(9), NodeId(1), NodeId(3))));
    assert!(matches!(&to_other, Err(ChannelError::Refused(why)) if why.contains("meant to reach")), "{to_other:?}");
    let stranger = exchange(shared(9), 1 << 20, |stream| drop(initiate(stream, &shared(9), NodeId(7), NodeId(2))));
    assert!(matches!(&stranger, Err(ChannelError::Refused(why)) if why.contains("not a peer")), "{stranger:?}");
}

/// Records what goes through a socket.
struct Recorder<'a> {
    stream: &'a mut TcpStream,
    written: Vec<u8>,
}

impl Read for Recorder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for Recorder<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

#[test]
fn a_recorded_stream_replayed_on_a_new_connection_delivers_nothing() {
    let mut recorded = Vec::new();
    let (_, first) = exchange(shared(9), 1 << 20, |stream| {
        let mut recorder = Recorder { stream, written: Vec::new() };
        let mut sender = initiate(&mut recorder, &shared(9), NodeId(1), NodeId(2)).unwrap();
        sender.send(&mut recorder, &[message(1, 2, 10)]).unwrap();
        recorded = recorder.written;
    })
    .unwrap();
    assert_eq!(first.len(), 1);
    let replayed = exchange(shared(9), 1 << 20, |stream| {
        stream.write_all(&recorded).unwrap();
        let mut answer = [0u8; 64];
        let _ = stream.read(&mut answer); // The responder's fresh reply, useless to a replayer.
    });
    assert!(matches!(replayed, Err(ChannelError::Decrypt)), "{replayed:?}");
}

#[test]
fn a_flipped_byte_in_a_transport_message_is_refused() {
    let result = exchange(shared(9), 1 << 20, |stream| {
        let mut sender = initiate(stream, &shared(9), NodeId(1), NodeId(2)).unwrap();
        let mut wire = Vec::new();
        sender.send(&mut wire, &[message(1, 2, 100)]).unwrap();
        wire[40] ^= 1;
        stream.write_all(&wire).unwrap();
    });
    assert!(matches!(result, Err(ChannelError::Decrypt)), "{result:?}");
}

#[test]
fn an_oversized_frame_is_refused_before_it_is_buffered() {
    let result = exchange(shared(9), 1000, |stream| {
        let mut sender = initiate(stream, &shared(9), NodeId(1), NodeId(2)).unwrap();
        let _ = sender.send(stream, &[message(1, 2, 5000)]);
    });
    assert!(matches!(result, Err(ChannelError::Oversized { max: 1000, .. })), "{result:?}");
}

fn node_keys(me: &Keypair, keys: &[(u64, &Keypair)]) -> Security {
    let public = keys.iter().map(|(id, pair)| (NodeId(*id), pair.public)).collect();
    Security::NodeKeys { private: me.private, public }
}

#[test]
fn with_node_keys_a_node_proves_its_id_and_cannot_speak_as_another() {
    let (one, two, three) = (Keypair::generate().unwrap(), Keypair::generate().unwrap(), Keypair::generate().unwrap());
    let all = [(1, &one), (2, &two), (3, &three)];
    let (peer, received) = exchange(node_keys(&two, &all), 1 << 20, |stream| {
        let mut sender = initiate(stream, &node_keys(&one, &all), NodeId(1), NodeId(2)).unwrap();
        sender.send(stream, &[message(1, 2, 10)]).unwrap();
    })
    .unwrap();
    assert_eq!((peer, received.len()), (NodeId(1), 1));
    // Node 3 claims to be node 1: its key is not node 1's.
    let impostor = exchange(node_keys(&two, &all), 1 << 20, |stream| {
        drop(initiate(stream, &node_keys(&three, &all), NodeId(1), NodeId(2)));
    });
    assert!(matches!(&impostor, Err(ChannelError::Refused(why)) if why.contains("without its key")), "{impostor:?}");
    // A node that dials with a wrong idea of node 2's key fails the handshake.
    let stranger = Keypair::generate().unwrap();
    let wrong = [(1, &one), (2, &stranger), (3, &three)];
    let result = exchange(node_keys(&two, &all), 1 << 20, |stream| {
        drop(initiate(stream, &node_keys(&one, &wrong), NodeId(1), NodeId(2)));
    });
    assert!(matches!(result, Err(ChannelError::Handshake(_))), "{result:?}");
}

/// Reads from a fixed buffer, writes to nowhere.
struct Replay(io::Cursor<Vec<u8>>);

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Whatever bytes a stranger sends, the responder refuses them with an error.
    #[test]
    fn any_bytes_before_the_handshake_are_refused(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let mut stream = Replay(io::Cursor::new(bytes));
        let security = if stream.0.get_ref().first() == Some(&0) { shared(9) } else {
            let pair = Keypair { private: [5; 32], public: [6; 32] };
            node_keys(&pair, &[(1, &pair)])
        };
        proptest::prop_assert!(respond(&mut stream, &security, NodeId(2), |_| true, 1 << 20).is_err());
    }
}

#[test]
fn any_bytes_after_a_handshake_deliver_nothing() {
    use proptest::strategy::{Strategy, ValueTree};
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..32 {
        let bytes =
            proptest::collection::vec(proptest::prelude::any::<u8>(), 1..2000).new_tree(&mut runner).unwrap().current();
        let result = exchange(shared(9), 1 << 20, |stream| {
            drop(initiate(stream, &shared(9), NodeId(1), NodeId(2)).unwrap());
            stream.write_all(&bytes).unwrap();
        });
        // Refused, or (cut short before a whole Noise message) closed; never a message.
        match result {
            Ok((_, messages)) => assert!(messages.is_empty(), "{messages:?}"),
            Err(error) => assert!(matches!(error, ChannelError::Decrypt | ChannelError::Io(_)), "{error}"),
        }
    }
}
