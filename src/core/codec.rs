//! The wire format of [`Message`]: compact, versioned, and safe to decode from anybody.
//!
//! Decoding never panics and never trusts a length: every count is checked against the bytes
//! that remain, so a frame of `n` bytes decodes to at most `n / 2` entries or payloads. Payloads
//! are slices of the input [`Bytes`] (no copy).
//!
//! # Format (version 2)
//!
//! Integers are unsigned LEB128 varints ("v" below): at most 10 bytes, no value past 64 bits,
//! and no overlong form (a last byte of 0 after a continuation byte), so a message has exactly
//! one encoding. `opt-seq` is a varint `0` for none or `seq + 1`. `opt-id` is a byte `0` (none) or `1`
//! followed by `seq v`, `term v`. `bytes` is `len v` followed by `len` bytes.
//!
//! ```text
//! message  = version:u8(=2) from:v to:v term:v tag:u8 body
//! tag 1  PreVote          last:opt-id
//! tag 2  PreVoteResponse  granted:u8(0|1) last:opt-id   (the answerer's; version 1 had no last)
//! tag 3  Vote             last:opt-id            (tag 11: the same, asked by a leader transfer)
//! tag 4  VoteResponse     granted:u8(0|1)
//! tag 5  Append           prev:opt-id commit:opt-seq read_round:v count:v entry*count
//!        entry          = term:v kind:u8 (0 blank | 1 data, then payload:bytes
//!                         | 2 configuration, then bytes of `encode_configuration`)
//!                         (seqs are implicit: consecutive after prev, from 0 without prev)
//! tag 6  AppendResponse   read_round:v kind:u8
//!                         (0 accepted, matched:opt-seq | 1 rejected, rejected:v hint:opt-id
//!                         | 2 accepted by a node catching up, matched:opt-seq)
//! tag 7  Forward          incarnation:v counter:v kind:u8
//!                         (0 append, count:v payload:bytes*count | 1 read, command:bytes)
//! tag 8  ForwardReply     incarnation:v counter:v responder:v kind:u8 (0 ok, response | 1 error, error)
//!        response       = 0 appended, seq:v count:v response:bytes*count
//!                       | 1 read, seq:opt-seq response:bytes
//!                       | 2 transferred, to:v | 3 changed, seq:v
//!        error          = 0 no-leader | 1 not-leader, leader:(0 | 1 id:v) | 2 leader-changed
//!                       | 3 timeout | 4 closed | 5 invalid, why:bytes(utf-8) | 6 storage-failed
//!                       | 7 transfer-failed, to:v | 8 change-in-progress | 9 change-failed, why:bytes(utf-8)
//! tag 9  CatchUp          commit:opt-id
//! tag 10 TimeoutNow
//! ```
//! Nothing may follow the message.

use super::io::{ClientError, Response};
use super::membership::{Configuration, Membership};
use super::message::{AppendResult, Body, ForwardId, ForwardRequest, Message};
use super::types::{Entry, LogId, NodeId, Payload, Seq, SnapshotMeta, Term};
use bytes::{Bytes, BytesMut};
use std::fmt;

/// The format version of messages this code writes and reads (version 2: pre-vote answers
/// carry the answerer's last entry).
pub const VERSION: u8 = 2;

/// The format version of configurations (stored in logs and snapshots, so kept apart from the
/// messages' version).
pub const CONFIGURATION_VERSION: u8 = 1;

/// Why bytes are not a valid message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The byte offset where decoding failed.
    pub offset: usize,
    /// The field being decoded.
    pub field: &'static str,
    /// What was wrong.
    pub problem: Problem,
}

/// What was wrong with a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The input ended inside the field.
    Truncated,
    /// A varint is longer than 10 bytes or overflows 64 bits.
    BadVarint,
    /// The version is not one this code reads.
    UnknownVersion(u8),
    /// A tag or kind byte has no meaning.
    UnknownTag(u8),
    /// A count is larger than the remaining bytes could hold.
    CountTooLarge(u64),
    /// A seq is beyond [`Seq::MAX`].
    SeqOutOfRange,
    /// A string is not UTF-8.
    BadUtf8,
    /// Bytes remain after the message.
    TrailingBytes(usize),
    /// A membership that decodes but breaks its rules (see [`Membership::new`]).
    BadMembership,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad message at byte {} ({}): ", self.offset, self.field)?;
        match self.problem {
            Problem::Truncated => write!(f, "input ends early"),
            Problem::BadVarint => write!(f, "varint too long"),
            Problem::UnknownVersion(v) => write!(f, "unknown version {v}"),
            Problem::UnknownTag(t) => write!(f, "unknown tag {t}"),
            Problem::CountTooLarge(n) => write!(f, "count {n} exceeds the remaining bytes"),
            Problem::SeqOutOfRange => write!(f, "seq beyond the maximum"),
            Problem::BadUtf8 => write!(f, "text is not UTF-8"),
            Problem::TrailingBytes(n) => write!(f, "{n} bytes after the message"),
            Problem::BadMembership => write!(f, "the membership breaks its rules"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Encodes `message`, appending to `out`.
pub fn encode(message: &Message, out: &mut BytesMut) {
    let mut w = Writer(out);
    w.u8(VERSION);
    w.varint(message.from.0);
    w.varint(message.to.0);
    w.varint(message.term.0);
    match &message.body {
        Body::PreVote { last } => {
            w.u8(1);
            w.opt_id(*last);
        }
        Body::PreVoteResponse { granted, last } => {
            w.u8(2);
            w.u8(u8::from(*granted));
            w.opt_id(*last);
        }
        Body::Vote { last, transfer } => {
            w.u8(if *transfer { 11 } else { 3 });
            w.opt_id(*last);
        }
        Body::TimeoutNow => w.u8(10),
        Body::VoteResponse { granted } => {
            w.u8(4);
            w.u8(u8::from(*granted));
        }
        Body::Append { prev, entries, commit, read_round } => {
            w.u8(5);
            w.opt_id(*prev);
            w.opt_seq(*commit);
            w.varint(*read_round);
            w.varint(entries.len() as u64);
            for entry in entries {
                w.varint(entry.term.0);
                w.u8(entry.payload.kind());
                if !matches!(entry.payload, Payload::Blank) {
                    w.bytes(entry.payload.bytes());
                }
            }
        }
        Body::CatchUp { commit } => {
            w.u8(9);
            w.opt_id(*commit);
        }
        Body::AppendResponse { read_round, result, incarnation } => {
            w.u8(6);
            w.varint(*read_round);
            w.varint(*incarnation);
            match result {
                AppendResult::Accepted { matched, catching_up } => {
                    w.u8(if *catching_up { 2 } else { 0 });
                    w.opt_seq(*matched);
                }
                AppendResult::Rejected { rejected, hint } => {
                    w.u8(1);
                    w.varint(rejected.0);
                    w.opt_id(*hint);
                }
            }
        }
        Body::Forward { id, request } => {
            w.u8(7);
            w.forward_id(*id);
            match request {
                ForwardRequest::Append(data) => {
                    w.u8(0);
                    w.varint(data.len() as u64);
                    data.iter().for_each(|d| w.bytes(d));
                }
                ForwardRequest::Read(command) => {
                    w.u8(1);
                    w.bytes(command);
                }
            }
        }
        Body::Snapshot { snapshot, offset, data, done, commit } => {
            w.u8(12);
            w.snapshot(snapshot);
            w.varint(*offset);
            w.u8(u8::from(*done));
            w.opt_seq(*commit);
            w.bytes(data);
        }
        Body::SnapshotResponse { last, digest, next, installed } => {
            w.u8(13);
            w.opt_id(Some(*last));
            w.varint(*digest);
            w.varint(*next);
            w.u8(u8::from(*installed));
        }
        Body::ForwardReply { id, result, responder } => {
            w.u8(8);
            w.forward_id(*id);
            w.varint(*responder);
            match result {
                Ok(response) => {
                    w.u8(0);
                    w.response(response);
                }
                Err(error) => {
                    w.u8(1);
                    w.error(error);
                }
            }
        }
    }
}

/// Encodes a configuration (the payload of a configuration entry):
/// `version:u8(=1) kind:u8 (0 single, membership | 1 joint, old:membership new:membership)`,
/// where `membership = voters:ids learners:ids groups:v ids*groups addresses:v (id:v bytes)*`
/// (addresses ascending by id) and `ids = count:v id:v*count`.
pub fn encode_configuration(configuration: &Configuration, out: &mut BytesMut) {
    let mut w = Writer(out);
    w.u8(CONFIGURATION_VERSION);
    match configuration {
        Configuration::Single(only) => {
            w.u8(0);
            w.membership(only);
        }
        Configuration::Joint { old, new } => {
            w.u8(1);
            w.membership(old);
            w.membership(new);
        }
    }
}

/// [`encode_configuration`] into a new buffer.
pub fn configuration_bytes(configuration: &Configuration) -> Bytes {
    let mut out = BytesMut::new();
    encode_configuration(configuration, &mut out);
    out.freeze()
}

/// Decodes a configuration that fills `input` exactly, checking each membership's rules.
pub fn decode_configuration(input: &[u8]) -> Result<Configuration, DecodeError> {
    let input = Bytes::copy_from_slice(input);
    let mut r = Reader { input: &input, at: 0 };
    let version = r.u8("version")?;
    if version != CONFIGURATION_VERSION {
        return Err(r.error("version", Problem::UnknownVersion(version)));
    }
    let configuration = match r.u8("configuration kind")? {
        0 => Configuration::Single(r.membership()?),
        1 => Configuration::Joint { old: r.membership()?, new: r.membership()? },
        other => return Err(r.error("configuration kind", Problem::UnknownTag(other))),
    };
    let trailing = input.len() - r.at;
    if trailing > 0 {
        return Err(r.error("end", Problem::TrailingBytes(trailing)));
    }
    Ok(configuration)
}

/// Encodes `message` into a new buffer.
pub fn encode_to_bytes(message: &Message) -> Bytes {
    let mut out = BytesMut::new();
    encode(message, &mut out);
    out.freeze()
}

/// Decodes one message that fills `input` exactly.
pub fn decode(input: &Bytes) -> Result<Message, DecodeError> {
    let mut r = Reader { input, at: 0 };
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(r.error("version", Problem::UnknownVersion(version)));
    }
    let from = NodeId(r.varint("from")?);
    let to = NodeId(r.varint("to")?);
    let term = Term(r.varint("term")?);
    let body = match r.u8("tag")? {
        1 => Body::PreVote { last: r.opt_id("last")? },
        2 => Body::PreVoteResponse { granted: r.flag("granted")?, last: r.opt_id("last")? },
        3 => Body::Vote { last: r.opt_id("last")?, transfer: false },
        11 => Body::Vote { last: r.opt_id("last")?, transfer: true },
        10 => Body::TimeoutNow,
        4 => Body::VoteResponse { granted: r.flag("granted")? },
        5 => r.append()?,
        6 => {
            let read_round = r.varint("read_round")?;
            let incarnation = r.varint("incarnation")?;
            let result = match r.u8("result")? {
                kind @ (0 | 2) => AppendResult::Accepted { matched: r.opt_seq("matched")?, catching_up: kind == 2 },
                1 => AppendResult::Rejected { rejected: r.seq("rejected")?, hint: r.opt_id("hint")? },
                other => return Err(r.error("result", Problem::UnknownTag(other))),
            };
            Body::AppendResponse { read_round, result, incarnation }
        }
        7 => {
            let id = r.forward_id()?;
            let request = match r.u8("request")? {
                0 => ForwardRequest::Append(r.bytes_list("payloads")?.into()),
                1 => ForwardRequest::Read(r.bytes("command")?),
                other => return Err(r.error("request", Problem::UnknownTag(other))),
            };
            Body::Forward { id, request }
        }
        8 => {
            let id = r.forward_id()?;
            let responder = r.varint("responder")?;
            let result = match r.u8("result")? {
                0 => Ok(r.response()?),
                1 => Err(r.client_error()?),
                other => return Err(r.error("result", Problem::UnknownTag(other))),
            };
            Body::ForwardReply { id, result, responder }
        }
        9 => Body::CatchUp { commit: r.opt_id("commit")? },
        12 => {
            let snapshot = r.snapshot()?;
            let (offset, done, commit) = (r.varint("offset")?, r.flag("done")?, r.opt_seq("commit")?);
            let data = r.bytes("data")?;
            Body::Snapshot { snapshot: Box::new(snapshot), offset, data, done, commit }
        }
        13 => {
            let last = r.opt_id("last")?.ok_or_else(|| r.error("last", Problem::UnknownTag(0)))?;
            let (digest, next, installed) = (r.varint("digest")?, r.varint("next")?, r.flag("installed")?);
            Body::SnapshotResponse { last, digest, next, installed }
        }
        other => return Err(r.error("tag", Problem::UnknownTag(other))),
    };
    let trailing = input.len() - r.at;
    if trailing > 0 {
        return Err(r.error("end", Problem::TrailingBytes(trailing)));
    }
    Ok(Message { from, to, term, body })
}

struct Writer<'a>(&'a mut BytesMut);

impl Writer<'_> {
    fn u8(&mut self, value: u8) {
        self.0.extend_from_slice(&[value]);
    }

    fn varint(&mut self, mut value: u64) {
        let mut buf = [0u8; 10];
        let mut len = 0;
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                buf[len] = byte;
                len += 1;
                break;
            }
            buf[len] = byte | 0x80;
            len += 1;
        }
        self.0.extend_from_slice(&buf[..len]);
    }

    fn opt_seq(&mut self, seq: Option<Seq>) {
        // Seq::MAX is u64::MAX - 1, so seq + 1 always fits.
        self.varint(seq.map_or(0, |s| s.0 + 1));
    }

    fn opt_id(&mut self, id: Option<LogId>) {
        match id {
            None => self.u8(0),
            Some(id) => {
                self.u8(1);
                self.varint(id.seq.0);
                self.varint(id.term.0);
            }
        }
    }

    fn bytes(&mut self, data: &[u8]) {
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
    }

    /// `last:id digest:v configuration:(0 | 1 seq:v term:v bytes)`.
    fn snapshot(&mut self, snapshot: &SnapshotMeta) {
        self.opt_id(Some(snapshot.last));
        self.varint(snapshot.digest);
        match &snapshot.configuration {
            Some(entry) => {
                self.u8(1);
                self.varint(entry.seq.0);
                self.varint(entry.term.0);
                self.bytes(entry.payload.bytes());
            }
            None => self.u8(0),
        }
    }

    fn forward_id(&mut self, id: ForwardId) {
        self.varint(id.incarnation);
        self.varint(id.counter);
    }

    fn response(&mut self, response: &Response) {
        match response {
            Response::Appended { seq, responses } => {
                self.u8(0);
                self.varint(seq.0);
                self.varint(responses.len() as u64);
                responses.iter().for_each(|r| self.bytes(r));
            }
            Response::Read { seq, response } => {
                self.u8(1);
                self.opt_seq(*seq);
                self.bytes(response);
            }
            Response::Transferred { to } => {
                self.u8(2);
                self.varint(to.0);
            }
            Response::Changed { seq } => {
                self.u8(3);
                self.varint(seq.0);
            }
            Response::Snapshot { last } => {
                self.u8(4);
                self.opt_id(Some(*last));
            }
            Response::PrefixRemoved { first } => {
                self.u8(5);
                self.varint(first.0);
            }
        }
    }

    fn error(&mut self, error: &ClientError) {
        match error {
            ClientError::NoLeader => self.u8(0),
            ClientError::NotLeader { leader } => {
                self.u8(1);
                match leader {
                    None => self.u8(0),
                    Some(id) => {
                        self.u8(1);
                        self.varint(id.0);
                    }
                }
            }
            ClientError::LeaderChanged => self.u8(2),
            ClientError::Timeout => self.u8(3),
            ClientError::Closed => self.u8(4),
            ClientError::Invalid(why) => {
                self.u8(5);
                self.bytes(why.as_bytes());
            }
            ClientError::StorageFailed => self.u8(6),
            ClientError::TransferFailed { to } => {
                self.u8(7);
                self.varint(to.0);
            }
            ClientError::ChangeInProgress => self.u8(8),
            ClientError::ChangeFailed(why) => {
                self.u8(9);
                self.bytes(why.as_bytes());
            }
            ClientError::SnapshotFailed(why) => {
                self.u8(10);
                self.bytes(why.as_bytes());
            }
        }
    }

    fn membership(&mut self, membership: &Membership) {
        let mut ids = |ids: &[NodeId]| {
            self.varint(ids.len() as u64);
            ids.iter().for_each(|id| self.varint(id.0));
        };
        ids(membership.voters());
        ids(membership.learners());
        self.varint(membership.groups().len() as u64);
        for group in membership.groups() {
            self.varint(group.len() as u64);
            group.iter().for_each(|id| self.varint(id.0));
        }
        self.varint(membership.addresses().len() as u64);
        for (id, address) in membership.addresses() {
            self.varint(id.0);
            self.bytes(address);
        }
    }
}

struct Reader<'a> {
    input: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn error(&self, field: &'static str, problem: Problem) -> DecodeError {
        DecodeError { offset: self.at, field, problem }
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.at
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        let byte = *self.input.get(self.at).ok_or_else(|| self.error(field, Problem::Truncated))?;
        self.at += 1;
        Ok(byte)
    }

    fn flag(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.error(field, Problem::UnknownTag(other))),
        }
    }

    fn varint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let start = self.at;
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = self.u8(field)?;
            if shift == 63 && byte > 1 {
                self.at = start;
                return Err(self.error(field, Problem::BadVarint));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 {
                    // Overlong: a message has exactly one encoding.
                    self.at = start;
                    return Err(self.error(field, Problem::BadVarint));
                }
                return Ok(value);
            }
        }
        self.at = start;
        Err(self.error(field, Problem::BadVarint))
    }

    fn seq(&mut self, field: &'static str) -> Result<Seq, DecodeError> {
        let seq = Seq(self.varint(field)?);
        if seq > Seq::MAX {
            return Err(self.error(field, Problem::SeqOutOfRange));
        }
        Ok(seq)
    }

    fn opt_seq(&mut self, field: &'static str) -> Result<Option<Seq>, DecodeError> {
        Ok(self.varint(field)?.checked_sub(1).map(Seq))
    }

    fn opt_id(&mut self, field: &'static str) -> Result<Option<LogId>, DecodeError> {
        if !self.flag(field)? {
            return Ok(None);
        }
        let seq = self.seq(field)?;
        let term = Term(self.varint(field)?);
        Ok(Some(LogId::new(term, seq)))
    }

    fn count(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let count = self.varint(field)?;
        // Every counted item takes at least one byte; refuse counts the input cannot hold.
        if count > self.remaining() as u64 {
            return Err(self.error(field, Problem::CountTooLarge(count)));
        }
        Ok(count as usize)
    }

    fn bytes(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.count(field)?;
        let data = self.input.slice(self.at..self.at + len);
        self.at += len;
        Ok(data)
    }

    fn bytes_list(&mut self, field: &'static str) -> Result<Vec<Bytes>, DecodeError> {
        let count = self.count(field)?;
        let mut list = Vec::with_capacity(count);
        for _ in 0..count {
            list.push(self.bytes(field)?);
        }
        Ok(list)
    }

    fn ids(&mut self, field: &'static str) -> Result<Vec<NodeId>, DecodeError> {
        let count = self.count(field)?;
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            ids.push(NodeId(self.varint(field)?));
        }
        Ok(ids)
    }

    fn membership(&mut self) -> Result<Membership, DecodeError> {
        let bad = |r: &Self| r.error("membership", Problem::BadMembership);
        let voters = self.ids("voters")?;
        let learners = self.ids("learners")?;
        let count = self.count("groups")?;
        let mut groups = Vec::with_capacity(count);
        for _ in 0..count {
            groups.push(self.ids("group")?);
        }
        let ascending = |ids: &[NodeId]| ids.windows(2).all(|pair| pair[0] < pair[1]);
        if !ascending(&voters) || !ascending(&learners) {
            return Err(bad(self)); // One encoding per configuration.
        }
        let mut membership = Membership::with_groups(voters, learners, groups).map_err(|_| bad(self))?;
        let mut previous = None;
        for _ in 0..self.count("addresses")? {
            let id = NodeId(self.varint("address id")?);
            let address = self.bytes("address")?;
            if previous >= Some(id) {
                return Err(bad(self)); // Ascending: one encoding per configuration.
            }
            previous = Some(id);
            membership = membership.with_address(id, address).map_err(|_| bad(self))?;
        }
        Ok(membership)
    }

    fn text(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let bytes = self.bytes(field)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| self.error(field, Problem::BadUtf8))?;
        Ok(text.to_string())
    }

    fn snapshot(&mut self) -> Result<SnapshotMeta, DecodeError> {
        let last = self.opt_id("snapshot last")?.ok_or_else(|| self.error("snapshot last", Problem::UnknownTag(0)))?;
        let digest = self.varint("snapshot digest")?;
        let configuration = match self.flag("snapshot configuration")? {
            false => None,
            true => {
                let (seq, term) = (self.seq("configuration seq")?, Term(self.varint("configuration term")?));
                let bytes = self.bytes("configuration")?;
                if let Err(error) = decode_configuration(&bytes) {
                    return Err(self.error("configuration", error.problem));
                }
                Some(Entry { term, seq, payload: Payload::Config(bytes) })
            }
        };
        Ok(SnapshotMeta { last, digest, configuration })
    }

    fn forward_id(&mut self) -> Result<ForwardId, DecodeError> {
        Ok(ForwardId { incarnation: self.varint("incarnation")?, counter: self.varint("counter")? })
    }

    fn append(&mut self) -> Result<Body, DecodeError> {
        let prev = self.opt_id("prev")?;
        let commit = self.opt_seq("commit")?;
        let read_round = self.varint("read_round")?;
        let count = self.count("entries")?;
        let mut entries = Vec::with_capacity(count.min(self.remaining() / 2));
        // prev's seq is at most Seq::MAX = u64::MAX - 1, so this cannot overflow; entries past
        // Seq::MAX are refused below.
        let first = prev.map_or(0, |p| p.seq.0 + 1);
        for offset in 0..count as u64 {
            let seq = Seq(first.saturating_add(offset));
            if seq > Seq::MAX || first.checked_add(offset).is_none() {
                return Err(self.error("entries", Problem::SeqOutOfRange));
            }
            let term = Term(self.varint("entry term")?);
            let payload = match self.u8("entry kind")? {
                0 => Payload::Blank,
                1 => Payload::Data(self.bytes("entry payload")?),
                2 => {
                    let bytes = self.bytes("entry configuration")?;
                    if let Err(error) = decode_configuration(&bytes) {
                        return Err(self.error("entry configuration", error.problem));
                    }
                    Payload::Config(bytes)
                }
                other => return Err(self.error("entry kind", Problem::UnknownTag(other))),
            };
            entries.push(Entry { term, seq, payload });
        }
        Ok(Body::Append { prev, entries, commit, read_round })
    }

    fn response(&mut self) -> Result<Response, DecodeError> {
        match self.u8("response")? {
            0 => Ok(Response::Appended { seq: self.seq("seq")?, responses: self.bytes_list("responses")? }),
            1 => Ok(Response::Read { seq: self.opt_seq("seq")?, response: self.bytes("response")? }),
            2 => Ok(Response::Transferred { to: NodeId(self.varint("to")?) }),
            3 => Ok(Response::Changed { seq: self.seq("seq")? }),
            4 => match self.opt_id("last")? {
                Some(last) => Ok(Response::Snapshot { last }),
                None => Err(self.error("last", Problem::UnknownTag(0))),
            },
            5 => Ok(Response::PrefixRemoved { first: self.seq("first")? }),
            other => Err(self.error("response", Problem::UnknownTag(other))),
        }
    }

    fn client_error(&mut self) -> Result<ClientError, DecodeError> {
        Ok(match self.u8("error")? {
            0 => ClientError::NoLeader,
            1 => {
                let leader = if self.flag("leader")? { Some(NodeId(self.varint("leader")?)) } else { None };
                ClientError::NotLeader { leader }
            }
            2 => ClientError::LeaderChanged,
            3 => ClientError::Timeout,
            4 => ClientError::Closed,
            5 => ClientError::Invalid(self.text("why")?),
            6 => ClientError::StorageFailed,
            7 => ClientError::TransferFailed { to: NodeId(self.varint("to")?) },
            8 => ClientError::ChangeInProgress,
            9 => ClientError::ChangeFailed(self.text("why")?),
            10 => ClientError::SnapshotFailed(self.text("why")?),
            other => return Err(self.error("error", Problem::UnknownTag(other))),
        })
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
