//! The core's vocabulary: sequence numbers, terms, node ids, time, log entries.

use bytes::Bytes;
use std::fmt;

/// The position of an entry in the log: 0-based and contiguous, as in the JavaScript library.
///
/// "No entry" (the JavaScript `-1n`) is `Option<Seq>::None`; `Option`'s ordering puts `None`
/// below every `Some`, which is exactly the order `-1 < 0 < 1 ...` the protocol needs.
/// Arithmetic is checked: [`Seq::MAX`] is the highest seq the library will ever store, so the
/// seq after any stored entry always exists and wrapping is impossible.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

impl Seq {
    /// The highest seq an entry may have. One below `u64::MAX`, so that `Option<Seq>` can be
    /// encoded as `seq + 1` in one varint and `next()` of any stored seq never overflows.
    pub const MAX: Seq = Seq(u64::MAX - 1);

    /// The seq after this one, or `None` past [`Seq::MAX`].
    pub fn checked_next(self) -> Option<Seq> {
        self.checked_add(1)
    }

    /// This seq plus `n`, or `None` past [`Seq::MAX`].
    pub fn checked_add(self, n: u64) -> Option<Seq> {
        self.0.checked_add(n).map(Seq).filter(|s| *s <= Seq::MAX)
    }

    /// The position after this one. Only for seqs of stored entries, which are at most
    /// [`Seq::MAX`], so it never overflows (the position after `Seq::MAX` holds no entry: an
    /// append there is refused).
    pub(crate) fn next(self) -> Seq {
        assert!(self <= Seq::MAX, "invariant: stored seqs are at most Seq::MAX");
        Seq(self.0 + 1)
    }

    /// The seq that follows `last`: 0 for an empty log.
    pub fn after(last: Option<Seq>) -> Seq {
        last.map_or(Seq(0), Seq::next)
    }

    /// The seq before this one, `None` for seq 0.
    pub fn prev(self) -> Option<Seq> {
        self.0.checked_sub(1).map(Seq)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A Raft term: a logical clock that increases with every election.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Term(pub u64);

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A node's id, unique in its cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A point in time: nanoseconds from an origin the driver chooses (the core only subtracts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub u64);

impl Time {
    /// A time `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Time {
        Time(nanos)
    }

    /// A time `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Time {
        Time(millis * 1_000_000)
    }

    /// This time plus `nanos`, saturating at the end of time.
    pub fn plus(self, nanos: u64) -> Time {
        Time(self.0.saturating_add(nanos))
    }

    /// Nanoseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub fn since(self, earlier: Time) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0 / 1_000_000;
        let rest = self.0 % 1_000_000;
        if rest == 0 {
            write!(f, "{millis}ms")
        } else {
            write!(f, "{}ns", self.0)
        }
    }
}

/// A client request's id, chosen by the driver and echoed in the request's one reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The id of a storage write, in the order the core issued them (from 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriteId(pub u64);

impl fmt::Display for WriteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{}", self.0)
    }
}

/// The id of a read the core hands to the state machine (see `Output::Read`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadId(pub u64);

impl fmt::Display for ReadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// An entry's identity: its seq and the term it was created in. Two logs that hold an entry
/// with the same `LogId` hold the same entries up to it (Raft's log matching property).
///
/// Ordered by term first, then seq: the "at least as up-to-date" order of Raft §5.4.1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogId {
    /// The term the entry was created in.
    pub term: Term,
    /// The entry's position.
    pub seq: Seq,
}

impl LogId {
    /// The log id of the entry at `seq` created in `term`.
    pub const fn new(term: Term, seq: Seq) -> LogId {
        LogId { term, seq }
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.seq, self.term)
    }
}

/// A snapshot of the state machine: what it covers, and which bytes it is.
///
/// Two snapshots with the same `last` hold the same state, but not necessarily the same bytes
/// (a state machine may encode one state in several ways): `digest`, a checksum of the bytes,
/// tells them apart, so that an install resumes only on the very bytes it started with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SnapshotMeta {
    /// The last entry the snapshot includes.
    pub last: LogId,
    /// A checksum of the snapshot's bytes (XXH3-64 of the whole stream).
    pub digest: u64,
    /// The configuration entry in force at `last`, if the log had one by then.
    pub configuration: Option<Entry>,
}

impl fmt::Display for SnapshotMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "snapshot {} #{:016x}", self.last, self.digest)?;
        match &self.configuration {
            Some(entry) => write!(f, " config@{}", entry.seq),
            None => Ok(()),
        }
    }
}

/// What an entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Payload {
    /// The empty entry each new leader appends first (the JavaScript "null buffer"); a state
    /// machine sees it as `None`.
    Blank,
    /// The bytes a client appended.
    Data(Bytes),
    /// A cluster configuration (membership change, Raft thesis §4): a [`Configuration`]
    /// encoded with [`encode_configuration`](super::codec::encode_configuration). A node uses
    /// the latest one in its log, committed or not; a state machine sees it as `None`.
    ///
    /// [`Configuration`]: super::Configuration
    Config(Bytes),
}

impl Payload {
    /// A client's bytes, `None` for a blank or configuration entry.
    pub fn data(&self) -> Option<&Bytes> {
        match self {
            Payload::Data(data) => Some(data),
            Payload::Blank | Payload::Config(_) => None,
        }
    }

    /// The entry's kind as stored and sent: 0 blank, 1 data, 2 configuration.
    pub fn kind(&self) -> u8 {
        match self {
            Payload::Blank => 0,
            Payload::Data(_) => 1,
            Payload::Config(_) => 2,
        }
    }

    /// The bytes stored for the entry: a client's data or an encoded configuration (empty for
    /// a blank entry).
    pub fn bytes(&self) -> &[u8] {
        match self {
            Payload::Blank => &[],
            Payload::Data(bytes) | Payload::Config(bytes) => bytes,
        }
    }

    /// The number of bytes stored for the entry (0 for a blank entry).
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Whether the payload has no bytes (blank, or empty data).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The term the entry was created in.
    pub term: Term,
    /// The entry's position in the log.
    pub seq: Seq,
    /// What it carries.
    pub payload: Payload,
}

impl Entry {
    /// The entry's identity.
    pub fn id(&self) -> LogId {
        LogId::new(self.term, self.seq)
    }

    /// A digest of what the entry carries (XXH3-64 of its kind and bytes), whatever the
    /// storage's encoding: what [`Recovered::evidence`](super::Recovered::evidence) keeps.
    pub fn digest(&self) -> u64 {
        match &self.payload {
            Payload::Blank => xxhash_rust::xxh3::xxh3_64(&[0]),
            payload => {
                let mut hasher = xxhash_rust::xxh3::Xxh3::new();
                hasher.update(&[payload.kind()]);
                hasher.update(payload.bytes());
                hasher.digest()
            }
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.id())?;
        match &self.payload {
            Payload::Blank => write!(f, " blank"),
            Payload::Data(data) => write!(f, " {}", Quoted(data)),
            Payload::Config(bytes) => match super::codec::decode_configuration(bytes) {
                Ok(configuration) => write!(f, " config {configuration}"),
                Err(_) => write!(f, " config {}", Quoted(bytes)),
            },
        }
    }
}

/// Shows bytes as a quoted string when they are printable ASCII, else as hex.
pub(crate) struct Quoted<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.iter().all(|b| (0x20..0x7f).contains(b) && *b != b'"') {
            write!(f, "\"{}\"", String::from_utf8_lossy(self.0))
        } else {
            f.write_str("0x")?;
            for b in self.0 {
                write!(f, "{b:02x}")?;
            }
            Ok(())
        }
    }
}

/// What Raft must persist before it answers: the current term, the vote cast in it, whether
/// the node is catching up after losing data, and a seq it knew committed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate this node voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// The node may have lost entries or votes it had made durable (its storage is new, was
    /// cut by a repair, or lost its term and vote; or its log holds no entry past a removed
    /// prefix and the snapshot that covered it is lost): it neither votes nor campaigns until a
    /// leader has brought its log up to that leader's commit point in the leader's own term,
    /// or, with an empty log from seq 0, until it has seen every peer's log empty too (a new
    /// cluster). Storage sets it (the core too, for such an emptied log); the core clears it.
    pub catching_up: bool,
    /// A seq up to which the entries in this node's storage were known committed when the
    /// state was saved (the core refreshes it now and then, never past what is durable): a
    /// lower bound of the commit point that survives a restart. A node refuses to replace an
    /// entry at or below it, and after a repair, keeps the surviving entries below it as
    /// evidence that a leader's entries must match (see `Recovered::evidence`).
    pub commit: Option<Seq>,
}

impl HardState {
    /// A hard state with `term` and `vote`, not catching up.
    pub const fn new(term: Term, vote: Option<NodeId>) -> HardState {
        HardState { term, vote, catching_up: false, commit: None }
    }
}

impl fmt::Display for HardState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "term={}", self.term)?;
        match self.vote {
            Some(vote) => write!(f, " vote={vote}")?,
            None => write!(f, " vote=none")?,
        }
        if self.catching_up {
            write!(f, " catching-up")?;
        }
        if let Some(commit) = self.commit {
            write!(f, " commit>={commit}")?;
        }
        Ok(())
    }
}

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks the others whether an election could succeed, without raising its term (pre-vote).
    PreCandidate,
    /// Raised its term and asks for votes.
    Candidate,
    /// Replicates the log and serves clients.
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Follower => "follower",
            Role::PreCandidate => "precandidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_arithmetic_is_checked() {
        assert_eq!(Seq(1).checked_add(2), Some(Seq(3)));
        assert_eq!(Seq::MAX.checked_next(), None);
        assert_eq!(Seq(u64::MAX - 2).checked_next(), Some(Seq::MAX));
        assert_eq!(Seq(5).checked_add(u64::MAX), None);
        assert_eq!(Seq::after(None), Seq(0));
        assert_eq!(Seq::after(Some(Seq(4))), Seq(5));
        assert_eq!(Seq(0).prev(), None);
    }

    #[test]
    fn option_seq_orders_like_the_seed() {
        // The JavaScript library's -1n (empty) sorts below 0.
        assert!(None < Some(Seq(0)));
        assert!(Some(Seq(0)) < Some(Seq(1)));
    }

    #[test]
    fn log_ids_order_by_term_then_seq() {
        let older_longer = LogId::new(Term(1), Seq(9));
        let newer_shorter = LogId::new(Term(2), Seq(1));
        assert!(newer_shorter > older_longer);
        assert!(LogId::new(Term(2), Seq(2)) > newer_shorter);
    }

    #[test]
    fn quoted_shows_text_or_hex() {
        assert_eq!(Quoted(b"abc").to_string(), "\"abc\"");
        assert_eq!(Quoted(&[0, 255]).to_string(), "0x00ff");
    }
}
