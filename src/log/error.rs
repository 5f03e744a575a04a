//! [`LogError`]: why a log operation failed, for the file log and the handles on it.

use super::recovery::Corruption;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why a log operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum LogError {
    /// The file system failed; the log is poisoned if a write or sync was involved.
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The bytes on disk are corrupt (see `recovery` for what to do).
    Corrupt(Corruption),
    /// The log was encrypted with another key than the one given.
    WrongKey {
        /// The segment whose key check failed.
        path: PathBuf,
    },
    /// A file other than segments is damaged beyond its own redundancy, or a record changed
    /// on disk after the log was opened.
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Durable entries are gone: a segment was deleted, emptied, zeroed or cut (see
    /// `manifest`). Nothing was changed.
    Lost {
        /// The log's directory.
        dir: PathBuf,
        /// What was found.
        detail: String,
        /// Whether the entries from the first seq on survive up to some point (a repair can
        /// keep them); if not, the first ones are gone and only an empty log can rejoin.
        prefix_survives: bool,
    },
    /// The log is open elsewhere (another handle, in this process or another): only one may
    /// write it.
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// An earlier write or sync failed: reopen the log.
    Poisoned(String),
    /// The log was closed ([`FsLog::close`](super::FsLog::close)).
    Closed,
    /// An iterator outlived a trim of the log: it stops here, as the entries from this seq on
    /// may not be the ones it was made for.
    Trimmed {
        /// The seq the iterator would have yielded next.
        seq: u64,
    },
    /// A bad argument: nothing was done.
    Invalid(String),
    /// The operation's deadline passed (see [`TimeoutLog`](super::TimeoutLog)).
    Timeout {
        /// The operation.
        op: &'static str,
        /// Whether it may still take effect (it had started when the deadline passed).
        started: bool,
    },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Io { op, path, source } => write!(f, "{op} {}: {source}", path.display()),
            LogError::Corrupt(corruption) => corruption.fmt(f),
            LogError::WrongKey { path } => write!(f, "{} was encrypted with another key", path.display()),
            LogError::Damaged { path, detail } => write!(f, "{} is damaged: {detail}", path.display()),
            LogError::Lost { dir, detail, .. } => write!(
                f,
                "the log in {} lost durable entries: {detail}. To go on without them, open it with repair_from (a \
                 seq at or past its last surviving entry keeps every surviving one) or delete it (FsLog::del): the \
                 node then rejoins catching up, and votes again once its peers have rebuilt it",
                dir.display()
            ),
            LogError::Locked { path } => {
                write!(f, "{} is held: the log is open in another handle or process; close that first", path.display())
            }
            LogError::Poisoned(why) => write!(f, "log unusable after a failed write or sync ({why}); reopen it"),
            LogError::Closed => write!(f, "the log is closed"),
            LogError::Trimmed { seq } => {
                write!(f, "the log was trimmed after this iterator was made: it stops before seq {seq}")
            }
            LogError::Invalid(why) => write!(f, "invalid argument: {why}"),
            LogError::Timeout { op, started: true } => write!(f, "{op} timed out (it may still take effect)"),
            LogError::Timeout { op, started: false } => write!(f, "{op} timed out before it started (no effect)"),
        }
    }
}

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LogError::Io { source, .. } => Some(source),
            LogError::Corrupt(corruption) => corruption.source(),
            _ => None,
        }
    }
}

pub(super) fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LogError + 'a {
    move |source| LogError::Io { op, path: path.to_path_buf(), source }
}
