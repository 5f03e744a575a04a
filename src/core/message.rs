//! The messages nodes exchange. Their binary encoding is in [`codec`](super::codec).

use super::io::{ClientError, Response};
use super::types::{Entry, LogId, NodeId, Quoted, Seq, SnapshotMeta, Term};
use bytes::Bytes;
use smallvec::SmallVec;
use std::fmt;

/// One message from one node to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The sender's term (for a pre-vote request: the term it would campaign in).
    pub term: Term,
    /// What it says.
    pub body: Body,
}

/// What a message says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Could I win an election in `term`? (pre-vote; nobody changes state for it)
    PreVote {
        /// The candidate's last log entry.
        last: Option<LogId>,
    },
    /// The answer to a pre-vote request.
    PreVoteResponse {
        /// Whether the candidate could win.
        granted: bool,
        /// The answerer's last log entry: a node catching up with an empty log learns from it
        /// whether the answerer's log is empty too (see `rejoin.rs`).
        last: Option<LogId>,
    },
    /// Vote for me in `term` (Raft's RequestVote).
    Vote {
        /// The candidate's last log entry.
        last: Option<LogId>,
        /// The leader of the term before asked the candidate to campaign (leader transfer,
        /// Raft thesis §3.10): voters answer even while they hear from that leader.
        transfer: bool,
    },
    /// The answer to a vote request.
    VoteResponse {
        /// Whether the vote was granted.
        granted: bool,
    },
    /// Raft's AppendEntries, also used as heartbeat (no entries) and to confirm leadership for
    /// reads (`read_round`).
    Append {
        /// The entry just before `entries` (`None`: they start at seq 0).
        prev: Option<LogId>,
        /// New entries, with consecutive seqs after `prev`.
        entries: Vec<Entry>,
        /// The leader's commit point.
        commit: Option<Seq>,
        /// The leader's latest read round, echoed in the response.
        read_round: u64,
    },
    /// The answer to an append.
    AppendResponse {
        /// The `read_round` of the append it answers.
        read_round: u64,
        /// Accepted or not.
        result: AppendResult,
        /// The responder's incarnation (random per start): a rejection below what an earlier
        /// incarnation acknowledged shows lost data, while one from the same incarnation is
        /// only an old answer arriving late.
        incarnation: u64,
    },
    /// A client request that a follower forwards to its leader.
    Forward {
        /// Identifies the request at the forwarder, echoed in the reply.
        id: ForwardId,
        /// The request.
        request: ForwardRequest,
    },
    /// The leader found the receiver lacking entries it had acknowledged (its storage went
    /// back without noticing): it must catch up before it votes again (see
    /// [`HardState::catching_up`](super::HardState::catching_up)).
    CatchUp {
        /// The leader's commit point: a follower whose log holds it has caught up already
        /// (the message arrived late) and ignores it.
        commit: Option<LogId>,
    },
    /// The leader hands leadership over: campaign now, without waiting for the election
    /// timeout or a pre-vote (Raft thesis §3.10). Sent once the receiver's log matches the
    /// leader's.
    TimeoutNow,
    /// A chunk of the leader's snapshot, for a follower that needs entries the leader's log
    /// no longer holds (Raft's InstallSnapshot, streamed: chunks of any size, no total known
    /// up front).
    Snapshot {
        /// What the snapshot covers, and its digest (boxed: it keeps every message small).
        snapshot: Box<SnapshotMeta>,
        /// Where `data` starts in the snapshot's stream.
        offset: u64,
        /// The bytes.
        data: Bytes,
        /// Whether the snapshot ends with `data`.
        done: bool,
        /// The leader's commit point: a catching-up follower whose install reaches it in the
        /// leader's term has caught up.
        commit: Option<Seq>,
    },
    /// The answer to a snapshot chunk: how much of the snapshot is durable at the follower.
    SnapshotResponse {
        /// The snapshot's last entry.
        last: LogId,
        /// The snapshot's digest.
        digest: u64,
        /// The follower holds the snapshot's bytes up to here, durably: the next offset it
        /// takes.
        next: u64,
        /// The follower's log now continues after `last` (it installed the snapshot, or held
        /// its entries already).
        installed: bool,
    },
    /// The leader's reply to a forwarded request.
    ForwardReply {
        /// The forwarded request's id.
        id: ForwardId,
        /// Its outcome.
        result: Result<Response, ClientError>,
        /// The replying node's incarnation. A "not leader" answer proves the request was not
        /// executed only if it comes from the incarnation the request was sent to: a node that
        /// restarted meanwhile may have executed an earlier copy and forgotten it.
        responder: u64,
    },
}

/// The outcome of an append at a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendResult {
    /// The follower's log matches the leader's up to `matched` and that is durable.
    Accepted {
        /// The highest seq known to match.
        matched: Option<Seq>,
        /// The follower is catching up after losing data: it does not vote until a leader has
        /// caught it up (and that is durable), so a leader does not count on it to elect the
        /// next leader of a configuration it would enter.
        catching_up: bool,
    },
    /// The follower has no entry matching `prev` at seq `rejected`.
    Rejected {
        /// The seq of the `prev` entry that did not match.
        rejected: Seq,
        /// The follower's last entry at or below `rejected` whose term is at most the `prev`
        /// entry's term (etcd's conflict hint): the leader can resume from there.
        hint: Option<LogId>,
    },
}

/// Identifies a forwarded request: the forwarding node's incarnation (random per start) and a
/// counter, so a leader can drop a duplicated forward without confusing restarts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ForwardId {
    /// Random per start of the forwarding core.
    pub incarnation: u64,
    /// Increases by one per forwarded request.
    pub counter: u64,
}

/// A forwarded client request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardRequest {
    /// Append these payloads (one or more; one is stored inline).
    Append(SmallVec<[Bytes; 1]>),
    /// Run this read command.
    Read(Bytes),
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{} t{} ", self.from, self.to, self.term)?;
        let last = |last: &Option<LogId>| last.map_or("none".to_string(), |id| id.to_string());
        match &self.body {
            Body::PreVote { last: l } => write!(f, "PreVote last={}", last(l)),
            Body::PreVoteResponse { granted, last: l } => {
                write!(f, "PreVoteResponse {} last={}", yes_no(*granted), last(l))
            }
            Body::Vote { last: l, transfer: false } => write!(f, "Vote last={}", last(l)),
            Body::Vote { last: l, transfer: true } => write!(f, "Vote last={} transfer", last(l)),
            Body::VoteResponse { granted } => write!(f, "VoteResponse {}", yes_no(*granted)),
            Body::Append { prev, entries, commit, read_round } => {
                write!(f, "Append prev={} commit={}", last(prev), opt(commit))?;
                if *read_round > 0 {
                    write!(f, " round={read_round}")?;
                }
                if !entries.is_empty() {
                    let shown: Vec<String> = entries.iter().map(Entry::to_string).collect();
                    write!(f, " [{}]", shown.join(", "))?;
                }
                Ok(())
            }
            Body::AppendResponse { read_round, result, .. } => {
                match result {
                    AppendResult::Accepted { matched, catching_up } => {
                        write!(f, "AppendResponse ok match={}", opt(matched))?;
                        if *catching_up {
                            write!(f, " catching-up")?;
                        }
                    }
                    AppendResult::Rejected { rejected, hint } => {
                        write!(f, "AppendResponse reject={rejected} hint={}", last(hint))?
                    }
                }
                if *read_round > 0 {
                    write!(f, " round={read_round}")?;
                }
                Ok(())
            }
            Body::Forward { id, request } => {
                write!(f, "Forward f{} ", id.counter)?;
                match request {
                    ForwardRequest::Append(data) => {
                        let shown: Vec<String> = data.iter().map(|d| Quoted(d).to_string()).collect();
                        write!(f, "append [{}]", shown.join(", "))
                    }
                    ForwardRequest::Read(command) => write!(f, "read {}", Quoted(command)),
                }
            }
            Body::CatchUp { commit } => write!(f, "CatchUp commit={}", last(commit)),
            Body::TimeoutNow => write!(f, "TimeoutNow"),
            Body::Snapshot { snapshot, offset, data, done, .. } => {
                write!(f, "Snapshot {snapshot} at {offset}+{}", data.len())?;
                if *done {
                    write!(f, " done")?;
                }
                Ok(())
            }
            Body::SnapshotResponse { last, digest, next, installed } => {
                write!(f, "SnapshotResponse {last} #{digest:016x} next={next}")?;
                if *installed {
                    write!(f, " installed")?;
                }
                Ok(())
            }
            Body::ForwardReply { id, result, .. } => {
                write!(f, "ForwardReply f{} ", id.counter)?;
                match result {
                    Ok(response) => write!(f, "{response}"),
                    Err(error) => write!(f, "error {error}"),
                }
            }
        }
    }
}

fn yes_no(granted: bool) -> &'static str {
    if granted {
        "granted"
    } else {
        "rejected"
    }
}

/// Formats an optional seq, `none` for an empty log.
pub(crate) fn opt(seq: &Option<Seq>) -> String {
    seq.map_or("none".to_string(), |s| s.to_string())
}
