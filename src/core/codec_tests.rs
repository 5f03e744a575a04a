//! Tests of the wire format (`codec.rs`).

use super::*;

#[test]
fn configurations_round_trip_and_bad_ones_are_errors() {
    let ids = |list: &[u64]| list.iter().copied().map(NodeId).collect::<Vec<_>>();
    let small = Membership::new(ids(&[1, 2, 3]), ids(&[])).unwrap();
    let grouped = Membership::with_groups(ids(&[1, 2, 3, 400]), ids(&[9]), vec![ids(&[1, 2]), ids(&[3, 400])])
        .unwrap()
        .with_address(NodeId(9), Bytes::from_static(b"10.0.0.9:7000"))
        .unwrap()
        .with_address(NodeId(1), Bytes::from_static(b"h1"))
        .unwrap();
    for configuration in [
        Configuration::Single(small.clone()),
        Configuration::Joint { old: small, new: grouped.clone() },
        Configuration::Single(grouped),
    ] {
        let bytes = configuration_bytes(&configuration);
        assert_eq!(decode_configuration(&bytes), Ok(configuration));
        for len in 0..bytes.len() {
            assert!(decode_configuration(&bytes[..len]).is_err(), "prefix {len}");
        }
    }
    // Well-formed bytes that break the rules: no voter; a voter that is also a learner; an
    // address for a non-member; addresses out of order.
    for bad in [
        &[1u8, 0, 0, 0, 0, 0][..],
        &[1, 0, 1, 5, 1, 5, 0, 0],
        &[1, 0, 1, 5, 0, 0, 1, 6, 0],
        &[1, 0, 2, 5, 6, 0, 0, 2, 6, 0, 5, 0],
    ] {
        let error = decode_configuration(bad).unwrap_err();
        assert_eq!(error.problem, Problem::BadMembership, "{bad:?}");
    }
}

fn round_trip(body: Body) {
    let message = Message { from: NodeId(1), to: NodeId(300), term: Term(u64::MAX), body };
    let bytes = encode_to_bytes(&message);
    assert_eq!(decode(&bytes), Ok(message.clone()));
    // Every strict prefix is an error, never a panic.
    for len in 0..bytes.len() {
        assert!(decode(&bytes.slice(..len)).is_err(), "prefix {len} of {message}");
    }
}

#[test]
fn every_message_round_trips() {
    let id = Some(LogId::new(Term(3), Seq(7)));
    round_trip(Body::PreVote { last: None });
    round_trip(Body::PreVoteResponse { granted: true, last: None });
    round_trip(Body::PreVoteResponse { granted: false, last: id });
    round_trip(Body::Vote { last: id, transfer: false });
    round_trip(Body::Vote { last: id, transfer: true });
    round_trip(Body::TimeoutNow);
    round_trip(Body::VoteResponse { granted: false });
    let entries = vec![
        Entry { term: Term(3), seq: Seq(8), payload: Payload::Blank },
        Entry { term: Term(4), seq: Seq(9), payload: Payload::Data(Bytes::from_static(b"x")) },
    ];
    round_trip(Body::Append { prev: id, entries, commit: Some(Seq::MAX), read_round: 9 });
    round_trip(Body::Append { prev: None, entries: vec![], commit: None, read_round: 0 });
    round_trip(Body::CatchUp { commit: id });
    round_trip(Body::CatchUp { commit: None });
    let config = Entry {
        term: Term(2),
        seq: Seq(3),
        payload: Payload::Config(configuration_bytes(&Configuration::Single(
            Membership::new(vec![NodeId(1)], vec![]).unwrap(),
        ))),
    };
    let snapshot = SnapshotMeta { last: LogId::new(Term(3), Seq(9)), digest: u64::MAX, configuration: Some(config) };
    let data = Bytes::from_static(b"chunk");
    round_trip(Body::Snapshot {
        snapshot: Box::new(snapshot.clone()),
        offset: 7,
        data: data.clone(),
        done: true,
        commit: None,
    });
    let bare = SnapshotMeta { configuration: None, ..snapshot };
    round_trip(Body::Snapshot {
        snapshot: Box::new(bare),
        offset: 0,
        data: Bytes::new(),
        done: false,
        commit: Some(Seq(3)),
    });
    round_trip(Body::SnapshotResponse { last: LogId::new(Term(1), Seq(0)), digest: 5, next: 9, installed: true });
    round_trip(Body::AppendResponse {
        read_round: 2,
        result: AppendResult::Accepted { matched: None, catching_up: false },
        incarnation: u64::MAX,
    });
    round_trip(Body::AppendResponse {
        read_round: 0,
        result: AppendResult::Accepted { matched: Some(Seq(7)), catching_up: true },
        incarnation: 3,
    });
    round_trip(Body::AppendResponse {
        read_round: 0,
        result: AppendResult::Rejected { rejected: Seq(4), hint: id },
        incarnation: 0,
    });
    let fid = ForwardId { incarnation: u64::MAX, counter: 5 };
    let data = vec![Bytes::from_static(b"a"), Bytes::new()];
    round_trip(Body::Forward { id: fid, request: ForwardRequest::Append(data.clone().into()) });
    round_trip(Body::Forward { id: fid, request: ForwardRequest::Read(Bytes::from_static(b"q")) });
    let ok = Ok(Response::Appended { seq: Seq(1), responses: data });
    round_trip(Body::ForwardReply { id: fid, result: ok, responder: 9 });
    let read = Ok(Response::Read { seq: None, response: Bytes::new() });
    round_trip(Body::ForwardReply { id: fid, result: read, responder: u64::MAX });
    for error in [
        ClientError::NoLeader,
        ClientError::NotLeader { leader: Some(NodeId(2)) },
        ClientError::NotLeader { leader: None },
        ClientError::LeaderChanged,
        ClientError::Timeout,
        ClientError::Closed,
        ClientError::Invalid("é".into()),
        ClientError::StorageFailed,
    ] {
        round_trip(Body::ForwardReply { id: fid, result: Err(error), responder: 0 });
    }
}

#[test]
fn errors_name_the_field() {
    let bad_version = decode(&Bytes::from_static(&[1])).unwrap_err();
    assert_eq!(bad_version.problem, Problem::UnknownVersion(1));
    // An append claiming 2^40 entries in a few bytes.
    let huge = Bytes::from_static(&[2, 1, 2, 1, 5, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
    let err = decode(&huge).unwrap_err();
    assert_eq!((err.field, err.problem), ("entries", Problem::CountTooLarge(1 << 40)));
    let overlong = Bytes::from_static(&[2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert_eq!(decode(&overlong).unwrap_err().problem, Problem::BadVarint);
    // Found by the fuzzer: an append whose prev is Seq::MAX, with an entry after it.
    let message = Message {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(1),
        body: Body::Append { prev: Some(LogId::new(Term(1), Seq::MAX)), entries: vec![], commit: None, read_round: 0 },
    };
    let mut bytes = encode_to_bytes(&message).to_vec();
    *bytes.last_mut().unwrap() = 1; // One entry...
    bytes.extend_from_slice(&[1, 0]); // ...term 1, blank: its seq would pass Seq::MAX.
    assert_eq!(decode(&Bytes::from(bytes)).unwrap_err().problem, Problem::SeqOutOfRange);
    // Found by the fuzzer: 0xff 0x00 is an overlong encoding of 127.
    let padded = Bytes::from_static(&[2, 0, 0xff, 0xd9, 0xff, 0xff, 0xff, 0, 0, 1, 1, 0, 0]);
    assert_eq!(decode(&padded).unwrap_err().problem, Problem::BadVarint);
    let trailing = Bytes::from_static(&[2, 1, 2, 0, 2, 1, 0, 9]);
    assert_eq!(decode(&trailing).unwrap_err().problem, Problem::TrailingBytes(1));
    assert!(decode(&trailing).unwrap_err().to_string().contains("byte 7"));
}
